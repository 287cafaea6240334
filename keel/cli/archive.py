"""``keel archive``: inspect, diff, migrate and import archives."""

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
    SignerOption,
    TrustedKeysDirOption,
    configure_logging,
    console,
    keel_errors_exit,
    write_html,
)
from keel.cli.train import TrustBundledCode

app = typer.Typer(
    name="archive",
    help="Inspect, compare, migrate and import model archives.",
    no_args_is_help=True,
    add_completion=False,
)

AsJson = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]


@app.command("inspect")
@keel_errors_exit
def inspect(
    archive: Annotated[Path, typer.Argument(help="The model.tar.gz to look into.")],
    as_json: AsJson = False,
    signer: SignerOption = [],  # noqa: B006
    trusted_keys: TrustedKeysDirOption = [],  # noqa: B006
    include_package: IncludePackage = [],  # noqa: B006
) -> None:
    """What is inside ARCHIVE, without building its model: format, components (recorded and
    installed versions), files, weights, environment, data, golden sample, signature."""
    from keel.archive.inspect import inspect_archive
    from keel.archive.signing import trusted_public_keys
    from keel.common.plugins import import_plugins

    import_plugins(include_package)
    keys = trusted_public_keys(tuple(map(str, signer)), tuple(map(str, trusted_keys)))
    description = inspect_archive(archive, trusted_keys=keys)
    if as_json:
        sys.stdout.write(json.dumps(description, indent=2, sort_keys=True) + "\n")
        return
    _print_inspection(description)


@app.command("diff")
@keel_errors_exit
def diff(
    a: Annotated[Path, typer.Argument(help="The reference archive.")],
    b: Annotated[Path, typer.Argument(help="The archive compared with it.")],
    threshold: Annotated[
        float,
        typer.Option(
            "--threshold", help="Show shared weights whose RMS distance is above this (default 0)."
        ),
    ] = 0.0,
    as_json: AsJson = False,
    html: HtmlOption = None,
    include_package: IncludePackage = [],  # noqa: B006
    trust_bundled_code: TrustBundledCode = False,
) -> None:
    """Compare two archives: config, vocabulary, weights, environment and predictions on their
    golden inputs. Exit 0 when identical, 1 when they differ."""
    from keel.guard.archive_diff import diff_archives

    result = diff_archives(
        a,
        b,
        threshold=threshold,
        include_packages=include_package,
        trust_bundled_code=trust_bundled_code,
    )
    if html is not None:
        from keel.guard.html_report import diff_html

        write_html(html, lambda: diff_html(result.to_dict()))
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
    else:
        _print_diff(result.to_dict())
    raise typer.Exit(EXIT_OK if result.identical else EXIT_FAILED)


@app.command("migrate")
@keel_errors_exit
def migrate(
    source: Annotated[Path, typer.Argument(help="The archive made with older components.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The migrated archive to write.")],
    allow_unverified: Annotated[
        bool,
        typer.Option(
            "--allow-unverified",
            help="Migrate an archive without golden predictions (nothing shows the migrated "
            "model predicts as before; recorded in the manifest).",
        ),
    ] = False,
    as_json: AsJson = False,
    include_package: IncludePackage = [],  # noqa: B006
    trust_bundled_code: TrustBundledCode = False,
) -> None:
    """Apply the registered component migrations to SOURCE and write OUTPUT: migrated config and
    weights, components at the installed versions, the migration history in the manifest and
    fresh golden predictions. Refused when the migrated model does not reproduce SOURCE's
    golden predictions."""
    from keel.guard.migrate import migrate_archive

    configure_logging(quiet=as_json)
    result = migrate_archive(
        source,
        output,
        include_packages=include_package,
        trust_bundled_code=trust_bundled_code,
        allow_unverified=allow_unverified,
    )
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
        return
    if not result.migrated:
        console.print(
            f"{escape(str(source))}: every component is at its installed version; "
            "nothing to migrate, nothing written"
        )
        return
    for planned in result.applied:
        console.print(f"migrated {escape(planned.describe())}")
    console.print(f"golden check: {escape(result.golden_check)}")
    console.print(f"keel archive: {escape(str(result.destination))} (unsigned: sign it again)")


@app.command("import-allennlp")
@keel_errors_exit
def import_allennlp(
    source: Annotated[Path, typer.Argument(help="An AllenNLP model.tar.gz.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The keel archive to write.")],
    golden_input: Annotated[
        Path | None,
        typer.Option(
            "--golden-input",
            help="A data file the archive's reader reads (e.g. the validation data): golden "
            "predictions are computed from it at import, so keel verify checks predictions "
            "from then on (recommended).",
        ),
    ] = None,
    allennlp_version: Annotated[
        str | None,
        typer.Option(
            "--allennlp-version",
            help="The AllenNLP release that wrote the archive, for archives without meta.json "
            "(before 2.5) whose components computed differently across releases (cnn).",
        ),
    ] = None,
    include_package: IncludePackage = [],  # noqa: B006
) -> None:
    """Convert an AllenNLP archive (weights.th read with weights_only=True) to a keel archive,
    recording the importing environment, the tokenizer fingerprint and, with --golden-input,
    golden predictions."""
    from keel.pipeline.imports import import_allennlp

    destination = import_allennlp(
        source,
        output,
        golden_input=golden_input,
        include_packages=include_package,
        allennlp_version=allennlp_version,
    )
    console.print(f"keel archive: {destination}")
    if golden_input is None:
        console.print(
            "no --golden-input: keel verify will report the predictions step as not checked"
        )


# -- rendering -------------------------------------------------------------------------------


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(escape("" if cell is None else str(cell)) for cell in row))
    Console(file=sys.stdout, soft_wrap=False).print(table)


def _print_inspection(description: dict[str, Any]) -> None:
    info = dict(description["archive"])
    imported = info.pop("imported_from", None)
    rows = [[key, value] for key, value in info.items() if value is not None]
    if imported:
        release = imported.get("allennlp_version") or "version not recorded"
        digest = str(imported.get("sha256"))[:16]
        rows.append(
            [
                "imported from",
                f"{imported.get('format')} {release}, sha256 {digest}..., "
                f"{len(imported.get('defaults_filled') or [])} AllenNLP default(s) written "
                "into the config (--json shows them and the training sections kept)",
            ]
        )
    integrity = description["integrity"]
    rows.append(["integrity", "ok" if integrity["ok"] else f"FAILS: {integrity['problems']}"])
    signature = description["signature"]
    rows.append(
        [
            "signature",
            signature["status"]
            + (f" (key {str(signature['key_id'])[:16]}...)" if signature.get("key_id") else "")
            + (f": {signature['reason']}" if signature.get("reason") else ""),
        ]
    )
    golden = description["golden"]
    rows.append(
        [
            "golden",
            "none (verify cannot check predictions)"
            if golden is None
            else f"{golden.get('sample_size')} inputs, format {golden.get('format')}, outputs "
            f"{', '.join(golden.get('outputs') or [])}, recorded on {golden.get('device')}",
        ]
    )
    state = description["state_dict"]
    rows.append(
        ["weights", f"{state['tensors']} tensors, {state['values']:,} values, {state['dtypes']}"]
    )
    environment = description["environment"]
    if environment is None:
        rows.append(["environment", "not recorded"])
    else:
        rows.append(
            [
                "environment",
                f"python {environment['python']}, torch {environment['torch']}, cuda "
                f"{environment['cuda']}, {environment['platform']}",
            ]
        )
    _table("archive", ["field", "value"], rows)
    _table(
        "components",
        ["component", "name", "version", "installed", "status", "used at"],
        [
            [
                item["component"],
                item["name"],
                item["version"],
                item["installed_version"],
                item["status"],
                (item["paths"][0] if item["paths"] else "")
                + (f" (+{len(item['paths']) - 1})" if len(item["paths"]) > 1 else ""),
            ]
            for item in description["components"]
        ],
    )
    if description["migrations"]:
        _table(
            "migration history",
            ["path", "name", "from", "to", "applied"],
            [
                [
                    m.get("path"),
                    m.get("name"),
                    m.get("from_version"),
                    m.get("to_version"),
                    f"{m.get('applied_by')} {m.get('applied_at', m.get('when', ''))}",
                ]
                for m in description["migrations"]
            ],
        )
    _table(
        "files",
        ["file", "size", "sha256", "matches manifest"],
        [
            [item["name"], item["size"], item["sha256"][:16] + "...", item["matches_manifest"]]
            for item in description["files"]
        ],
    )
    _table(
        "weights by module",
        ["module", "tensors", "values"],
        [
            [name, group["tensors"], f"{group['values']:,}"]
            for name, group in state["modules"].items()
        ],
    )
    if description["data_files"]:
        _table(
            "data",
            ["role", "path", "sha256", "size"],
            [
                [role, entry["path"], entry["sha256"][:16] + "...", entry["size"]]
                for role, entry in description["data_files"].items()
            ],
        )


def _print_diff(result: dict[str, Any]) -> None:
    if result["config"]:
        _table(
            "config",
            ["path", "change", "A", "B"],
            [[c["path"], c["change"], _short(c["a"]), _short(c["b"])] for c in result["config"]],
        )
    if result["vocabulary"]:
        _table(
            "vocabulary",
            ["namespace", "size A", "size B", "added", "removed", "moved", "examples"],
            [
                [
                    namespace,
                    v["size_a"],
                    v["size_b"],
                    v["added"],
                    v["removed"],
                    v["moved"],
                    _short({"+": v["added_examples"][:3], "-": v["removed_examples"][:3]}),
                ]
                for namespace, v in result["vocabulary"].items()
            ],
        )
    if result["weights"]:
        _table(
            "weights",
            ["change", "key", "detail"],
            [
                [
                    w["change"],
                    w["key"],
                    _weight_detail(w),
                ]
                for w in result["weights"]
            ],
        )
    environment = result["environment"]
    if environment is None:
        console.print("environment: not recorded in both archives")
    else:
        shown = [d for d in environment["differences"] if d["severity"] != "info"]
        if shown:
            _table(
                "environment",
                ["severity", "key", "A", "B", "reason"],
                [[d["severity"], d["key"], d["old"], d["new"], d["reason"]] for d in shown],
            )
    predictions = result["predictions"]
    if predictions.get("compared"):
        console.print(
            f"predictions on {predictions['compared']} golden inputs: agreement "
            f"{predictions['agreement']:.1%} ({predictions['disagreements']} differ), max |score "
            f"difference| {predictions['max_score_difference']}"
        )
    else:
        console.print(f"predictions: {escape(str(predictions.get('note')))}")
    out = "[green]identical[/]" if result["identical"] else "[bold red]differ[/]"
    console.print(f"{escape(result['a'])} vs {escape(result['b'])}: {out}")


def _weight_detail(entry: dict[str, Any]) -> str:
    change = entry["change"]
    if change == "~":
        return f"rms {entry['rms']:.4g}"
    if change == "shape":
        return f"{entry['shape_a']} -> {entry['shape_b']}"
    return f"shape {entry.get('shape_a') or entry.get('shape_b')}"


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."
