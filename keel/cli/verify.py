"""``keel verify`` and ``keel doctor``: verdicts with exit codes for pipelines."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from keel.cli.common import EXIT_FAILED, EXIT_OK, IncludePackage, console, keel_errors_exit
from keel.cli.train import TrustBundledCode

_STYLE = {"pass": "green", "fail": "bold red", "skipped": "yellow"}


@keel_errors_exit
def verify(
    archive: Annotated[Path, typer.Argument(help="The model.tar.gz to verify.")],
    data: Annotated[
        Path | None, typer.Option("--data", help="A labelled file: check the metric on it.")
    ] = None,
    tolerance: Annotated[
        float | None,
        typer.Option("--tolerance", help="Max |logit difference| (default 1e-5 same device)."),
    ] = None,
    metric_tolerance: Annotated[
        float, typer.Option("--metric-tolerance", help="Allowed metric difference with --data.")
    ] = 0.005,
    allow_env_drift: Annotated[
        bool, typer.Option("--allow-env-drift", help="Do not fail on breaking env differences.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    junit: Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML here.")] = None,
    include_package: IncludePackage = [],  # noqa: B006
    signer: Annotated[
        list[Path],
        typer.Option("--signer", help="A trusted public key (PEM): check the signature."),
    ] = [],  # noqa: B006
    trusted_keys: Annotated[
        list[Path],
        typer.Option("--trusted-keys", help="A folder of trusted *.pub keys: check the signature."),
    ] = [],  # noqa: B006
    trust_bundled_code: TrustBundledCode = False,
) -> None:
    """Check that ARCHIVE still behaves here exactly as when it was trained (exit 1 if not)."""
    from keel.common.file_utils import atomic_write_text
    from keel.common.plugins import import_plugins
    from keel.guard.verify import verify_archive

    import_plugins(include_package)
    if trust_bundled_code:
        _import_bundled_code(archive, signer, trusted_keys)
    report = verify_archive(
        archive,
        data=str(data) if data else None,
        tolerance=tolerance,
        metric_tolerance=metric_tolerance,
        allow_env_drift=allow_env_drift,
        include_packages=tuple(include_package),
        signers=tuple(str(path) for path in signer),
        trusted_keys_dirs=tuple(str(path) for path in trusted_keys),
    )
    if junit:
        atomic_write_text(junit, report.to_junit_xml())
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    else:
        render_steps(f"keel verify {archive}", [(s.name, s.status, s.reason) for s in report.steps])
        verdict = (
            "[green]PASS[/]" if report.ok else f"[bold red]FAIL[/] ({', '.join(report.failed)})"
        )
        console.print(f"verdict: {verdict}")
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILED)


def _import_bundled_code(archive: Path, signers: list[Path], trusted_dirs: list[Path]) -> None:
    """Import the archive's bundled code; a signature, when asked for, is checked first."""
    from keel.archive.archive import opened_archive
    from keel.archive.bundled_code import load_bundled_code
    from keel.archive.signing import trusted_public_keys, verify_signature

    if signers or trusted_dirs:
        verify_signature(archive, trusted_public_keys(signers, trusted_dirs))
    with opened_archive(archive) as (root, manifest):
        load_bundled_code(root, manifest)


@keel_errors_exit
def doctor(
    archive: Annotated[Path | None, typer.Argument(help="An archive to verify too.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    include_package: IncludePackage = [],  # noqa: B006
) -> None:
    """env check + verify (with an archive) + a reproducibility checklist, one exit code."""
    from keel.common.plugins import import_plugins
    from keel.guard.doctor import run_doctor

    import_plugins(include_package)
    report = run_doctor(str(archive) if archive else None, include_packages=tuple(include_package))
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    else:
        render_steps("keel doctor", [(c.name, c.status, c.reason) for c in report.checks])
        console.print(f"verdict: {'[green]PASS[/]' if report.ok else '[bold red]FAIL[/]'}")
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILED)


def render_steps(title: str, rows: list[tuple[str, str, str]]) -> None:
    table = Table(title=title, show_lines=False)
    table.add_column("check")
    table.add_column("result")
    table.add_column("reason", overflow="fold")
    for name, status, reason in rows:
        table.add_row(name, f"[{_STYLE.get(status, '')}]{status}[/]", reason)
    console.print(table)
