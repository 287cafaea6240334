"""``keel env capture|diff|check|export``: environment drift, from one command.

Exit codes follow keel.cli.common: 0 fine; 1 a verdict failed (breaking differences, or the
``--fail-on`` level; a failed GPU check); 2 the command could not run (unreadable document).
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from keel.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    AllowUnchecked,
    JunitOption,
    console,
    emit_report,
    keel_errors_exit,
)

app = typer.Typer(
    name="env",
    help="Capture, compare, check and export the environment models are trained and run in.",
    no_args_is_help=True,
    add_completion=False,
)

SOURCE_HELP = "'current', an env .json file, a serialization directory or a model.tar.gz."
_STYLES = {
    "breaking": "bold red",
    "risky": "yellow",
    "info": "dim",
}


class FailOn(StrEnum):
    breaking = "breaking"
    risky = "risky"
    info = "info"


class ExportFormat(StrEnum):
    requirements = "requirements"
    conda = "conda"
    dockerfile = "dockerfile"


@app.command("capture")
@keel_errors_exit
def capture(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Capture this environment as a versioned JSON document."""
    from keel.guard.environment import capture_environment, save_environment

    env = capture_environment()
    if output is None:
        _print_json(env)
        return
    path = save_environment(output, env)
    console.print(
        f"environment captured to {path} ({len(env['distributions'])} distributions)",
        highlight=False,
    )


@app.command("diff")
@keel_errors_exit
def diff(
    a: Annotated[str, typer.Argument(help=f"Reference environment: {SOURCE_HELP}")],
    b: Annotated[str, typer.Argument(help=f"Environment to compare: {SOURCE_HELP}")] = "current",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    fail_on: Annotated[
        FailOn, typer.Option("--fail-on", help="Exit 1 on differences of this severity or worse.")
    ] = FailOn.breaking,
    require: Annotated[
        list[str],
        typer.Option(
            "--require",
            help="A distribution providing components the model uses (repeatable). An archive "
            "source adds the distributions its components come from (as verify does); with "
            "neither, every tokenization library is assumed to be used.",
        ),
    ] = [],  # noqa: B006 (typer needs a literal default)
    show_info: Annotated[
        bool, typer.Option("--show-info/--hide-info", help="List info-level differences.")
    ] = True,
) -> None:
    """Compare environment B against reference A, grouped by severity with a reason for each."""
    from keel.guard.env_diff import diff_environments
    from keel.guard.environment import load_environment, required_distributions

    # An archive says which distributions its model depends on, exactly as verify reads it.
    required = [*require]
    from_archives = [required_distributions(source) for source in (a, b)]
    for names in from_archives:
        required += names or []
    any_known = bool(require) or any(names is not None for names in from_archives)
    result = diff_environments(
        load_environment(a),
        load_environment(b),
        required_distributions=sorted(set(required)) if any_known else None,
        a_label=a,
        b_label=b,
    )
    failed = result.fails(fail_on.value)
    if as_json:
        document = result.to_dict()
        document["fail_on"] = fail_on.value
        document["failed"] = failed
        document["code"] = result.code(fail_on.value)
        _print_json(document)
    else:
        _render_diff(result, show_info)
        if failed:
            code = result.code(fail_on.value)
            prefix = escape(f"[{code}] ") if code else ""
            console.print(
                f"[bold red]{prefix}differences at or above {fail_on.value!r} found[/]",
                highlight=False,
            )
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


@app.command("check")
@keel_errors_exit
def check(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    junit: JunitOption = None,
    allow_unchecked: AllowUnchecked = [],  # noqa: B006
    tolerance: Annotated[
        float, typer.Option("--tolerance", help="Relative tolerance of the numerics checks.")
    ] = 1e-4,
    distributed: Annotated[
        bool,
        typer.Option(
            "--distributed",
            help="Also run one all-reduce across the ranks of this torchrun job (start with "
            "torchrun --nproc-per-node N -m keel.cli.main env check --distributed).",
        ),
    ] = False,
) -> None:
    """Check the GPU stack (driver, CUDA build, kernels, cuDNN, numerics) or the CPU path."""
    import os

    from keel.guard.gpu_check import check_gpu_stack

    result = check_gpu_stack(tolerance=tolerance)
    report = result.to_report()
    if distributed:
        from keel.guard.cluster import check_distributed

        report.checks.append(check_distributed())
    report.allow_unchecked(allow_unchecked)
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 speaks for the job
        raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILED)
    if as_json:
        document = report.to_dict()
        document.update({"code": result.code, "gpu_present": result.gpu_present})
        _print_json(document)
        if junit is not None:
            from keel.common.file_utils import atomic_write_text

            atomic_write_text(junit, report.to_junit_xml())
        raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILED)
    raise typer.Exit(emit_report(report, junit=junit))


@app.command("export")
@keel_errors_exit
def export(
    source: Annotated[str, typer.Argument(help=f"Environment to export: {SOURCE_HELP}")],
    format: Annotated[
        ExportFormat,
        typer.Option("--format", "-f", help="requirements.txt, conda YAML or a Dockerfile."),
    ] = ExportFormat.requirements,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    all_distributions: Annotated[
        bool,
        typer.Option(
            "--all-distributions",
            help="For an archive: every distribution of the training environment, not only "
            "the runtime closure of the model's components.",
        ),
    ] = False,
    hashes: Annotated[
        bool,
        typer.Option(
            "--hashes",
            help="Add the sha256 of every file of each pin, read from the package index "
            "(needs network access to it); pip install --require-hashes then checks them.",
        ),
    ] = False,
    index_url: Annotated[
        str, typer.Option("--index-url", help="The package index's JSON API, for --hashes.")
    ] = "https://pypi.org/pypi",
) -> None:
    """Pin the distributions of a captured environment (e.g. an archive's training env).

    For an archive, only the runtime closure of the model's components (keel, the extras and
    plugins it uses, and their dependencies) is pinned, unless --all-distributions."""
    from keel.common.file_utils import atomic_write_text
    from keel.guard.env_export import (
        export_environment,
        installed_requirements,
        model_roots,
        runtime_closure,
    )
    from keel.guard.environment import load_environment

    environment = load_environment(source)
    only: set[str] | None = None
    notes: list[str] = []
    path = Path(source)
    if not all_distributions and path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
        from keel.archive.archive import read_manifest

        manifest = read_manifest(path)
        components = [component.name for component in manifest.components or []]
        roots = model_roots(manifest.required_distributions(), components)
        only, notes = runtime_closure(roots, installed_requirements)
    text = export_environment(
        environment,
        format.value,
        only=only,
        notes=notes,
        hashes_from=index_url if hashes else None,
    )
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        atomic_write_text(output, text)
        console.print(f"{format.value} written to {output}", highlight=False)


def _render_diff(result: Any, show_info: bool) -> None:
    out = _stdout()
    summary = result.to_dict()["summary"]
    out.print(
        f"{escape(result.a_label)} -> {escape(result.b_label)}: "
        + ", ".join(f"[{_STYLES[name]}]{count} {name}[/]" for name, count in summary.items()),
        highlight=False,
        soft_wrap=True,
    )
    if not result.differences:
        out.print("no differences", highlight=False)
    for severity in ("breaking", "risky", "info"):
        rows = result.by_severity(severity)
        if not rows or (severity == "info" and not show_info):
            continue
        table = Table(title=f"[{_STYLES[severity]}]{severity}[/]", title_justify="left")
        for column in ("key", "A", "B", "reason"):
            table.add_column(column, overflow="fold")
        for row in rows:
            data = row.to_dict()
            cells = (row.key, _cell(data["old"]), _cell(data["new"]), row.reason)
            table.add_row(*(escape(cell) for cell in cells))
        out.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def _stdout() -> Console:
    # Created per call so tests that swap sys.stdout (CliRunner) capture the output.
    return Console(file=sys.stdout, soft_wrap=False)
