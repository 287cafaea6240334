"""``keel config check``: everything a config asks that keel cannot build, before any data is
read."""

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
    ExtVar,
    IncludePackage,
    Overrides,
    console,
    keel_errors_exit,
)

app = typer.Typer(
    name="config",
    help="Check training configs (keel's or AllenNLP's) against the installed components.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command("check")
@keel_errors_exit
def check(
    config: Annotated[Path, typer.Argument(help="Jsonnet or JSON training config.")],
    overrides: Overrides = None,
    ext_var: ExtVar = [],  # noqa: B006
    include_package: IncludePackage = [],  # noqa: B006
    check_files: Annotated[
        bool,
        typer.Option("--check-files/--no-check-files", help="Check that the data files exist."),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the issues as JSON.")] = False,
    allennlp: Annotated[
        bool,
        typer.Option(
            "--allennlp",
            help="Check the config as keel train --allennlp trains it (AllenNLP 0.9's layout "
            "upgraded, AllenNLP's defaults written).",
        ),
    ] = False,
) -> None:
    """List every problem of CONFIG with its dotted path (unknown keys and components, wrong
    values, missing data files), and where keel's defaults differ from AllenNLP's for what it
    leaves out. Exit 0 when it trains as is, 1 when it does not."""
    from keel.common.errors import ConfigIssue
    from keel.common.from_params import validate
    from keel.common.params import load_config, parse_ext_vars
    from keel.common.plugins import import_plugins
    from keel.training.allennlp_defaults import allennlp_defaults, upgrade_legacy_layout
    from keel.training.experiment import Experiment, validation_metric_issues

    import_plugins(include_package)
    params = load_config(config, overrides=overrides, ext_vars=parse_ext_vars(ext_var))
    upgraded, layout_changes = upgrade_legacy_layout(params)
    if allennlp:
        params, _ = allennlp_defaults(upgraded)
    validation = validate(Experiment, params, check_files=check_files)
    issues: list[ConfigIssue] = list(validation.issues)
    if validation.ok:
        issues += validation_metric_issues(validation.resolved)
    _, differing = allennlp_defaults(params)
    rows: list[dict[str, Any]] = [issue.to_dict() for issue in issues]
    if as_json:
        notes = [
            {"path": item.path, "allennlp": item.value, "keel": item.keel_default}
            for item in differing
        ]
        document = {
            "config": str(config),
            "issues": rows,
            "allennlp_defaults_differ": notes,
            "allennlp_0_9_layout": [] if allennlp else layout_changes,
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    elif not issues:
        how = " with keel train --allennlp" if allennlp else ""
        console.print(f"{escape(str(config))}: no problems; it trains as is{how}")
    else:
        console.print(f"{escape(str(config))}: {len(issues)} problem(s)")
        for issue in issues:
            console.print(f"  {escape(issue.render())}", highlight=False)
    if layout_changes and not allennlp and not as_json:
        console.print("AllenNLP 0.9's layout, which keel train --allennlp upgrades:")
        for change in layout_changes:
            console.print(f"  {escape(change)}", highlight=False)
    if differing and not as_json:
        console.print(
            "keel's defaults differ from AllenNLP's where this config leaves values out; keel "
            "train uses keel's, keel train --allennlp writes AllenNLP's:"
        )
        for item in differing:
            console.print(f"  {escape(item.render())}", highlight=False)
    raise typer.Exit(EXIT_FAILED if issues else EXIT_OK)
