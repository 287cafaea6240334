"""``keel rebuild``: retrain an archive here and prove the new model equivalent."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from keel.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    HtmlOption,
    IncludePackage,
    configure_logging,
    console,
    keel_errors_exit,
    write_html,
)
from keel.cli.train import TrustBundledCode


@keel_errors_exit
def rebuild(
    archive: Annotated[Path, typer.Argument(help="The archive to rebuild.")],
    serialization_dir: Annotated[
        Path, typer.Option("--serialization-dir", "-s", help="Where the rebuild trains.")
    ],
    data_dir: Annotated[
        list[Path],
        typer.Option(
            "--data-dir",
            help="A folder holding the run's data files, found by their recorded sha256 "
            "(repeatable; the recorded paths are tried first).",
        ),
    ] = [],  # noqa: B006
    allow_data_change: Annotated[
        bool,
        typer.Option(
            "--allow-data-change",
            help="Retrain on data whose bytes differ from the run's, and record the difference.",
        ),
    ] = False,
    metric_tolerance: Annotated[
        float,
        typer.Option("--metric-tolerance", help="Largest move of any validation metric."),
    ] = 0.01,
    min_agreement: Annotated[
        float,
        typer.Option("--min-agreement", help="Smallest share of identical decoded outputs."),
    ] = 0.99,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the directory.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    html: HtmlOption = None,
    include_package: IncludePackage = [],  # noqa: B006
    trust_bundled_code: TrustBundledCode = False,
) -> None:
    """Retrain ARCHIVE's model here (same config, data and seeds) and compare it with the
    original: metrics, decoded outputs, score distances, environments, weights. Exit 0 when
    equivalent, 1 when it drifted."""
    from keel.pipeline.rebuild import rebuild_archive

    configure_logging(quiet=True)
    report = rebuild_archive(
        archive,
        serialization_dir,
        data_dirs=data_dir,
        allow_data_change=allow_data_change,
        metric_tolerance=metric_tolerance,
        min_agreement=min_agreement,
        include_packages=include_package,
        trust_bundled_code=trust_bundled_code,
        force=force,
    )
    if html is not None:
        from keel.guard.html_report import rebuild_html

        write_html(html, lambda: rebuild_html(report.to_dict()))
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        _print(report.to_dict())
    raise typer.Exit(EXIT_OK if report.equivalent else EXIT_FAILED)


def _print(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Console(file=sys.stdout, soft_wrap=False)
    table = Table(title=f"keel rebuild {report['original']}", title_justify="left")
    for column in ("metric", "original", "rebuilt", "delta"):
        table.add_column(column)
    for name, delta in report["metric_deltas"].items():
        table.add_row(
            escape(name),
            f"{delta['original']:.4f}",
            f"{delta['rebuilt']:.4f}",
            f"{delta['delta']:+.4f}",
        )
    out.print(table)
    for label in ("golden", "validation"):
        section = report[label]
        if section.get("compared"):
            scores = section["score_difference"]
            out.print(
                f"{label}: {section['agreement']:.2%} of {section['compared']} decoded outputs "
                f"agree; |score difference| max {scores['max']:.3g}, p99 {scores['p99']:.3g}"
            )
    out.print(f"weights bit-identical: {report['weights_bit_identical']}")
    for cause in report["causes"]:
        out.print(f"cause: {escape(cause)}")
    for reason in report["reasons"]:
        out.print(f"[bold red]drift[/]: {escape(reason)}")
    verdict = (
        "[green]equivalent[/]" if report["verdict"] == "equivalent" else "[bold red]drifted[/]"
    )
    out.print(f"verdict: {verdict}")
    console.print(f"rebuilt archive: {escape(report['rebuilt'])}")
