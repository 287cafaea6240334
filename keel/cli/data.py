"""``keel data hash|fingerprint|validate``: a model's data, byte for byte and token for token.

Exit codes follow keel.cli.common, except ``hash``, which exits as ``sha256sum`` does (1 when a
file cannot be read) so it can replace it in scripts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from keel.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    AllowUnchecked,
    ExtVar,
    IncludePackage,
    JunitOption,
    Overrides,
    keel_errors_exit,
)

app = typer.Typer(
    name="data",
    help="Hash data files, fingerprint their preprocessing and validate them against a config.",
    no_args_is_help=True,
    add_completion=False,
)

SOURCE_HELP = "A training config (Jsonnet/JSON) or a model archive (model.tar.gz)."


def _write_bytes(data: bytes) -> None:
    stream = getattr(sys.stdout, "buffer", None)
    if stream is None:
        sys.stdout.write(data.decode("utf-8", "surrogateescape"))
    else:
        stream.write(data)


@app.command("hash")
def hash_command(
    files: Annotated[
        list[str] | None, typer.Argument(help="Files to hash; none or '-' reads standard input.")
    ] = None,
) -> None:
    """Print the sha256 of each FILE exactly as sha256sum does (sha256sum -c accepts it)."""
    from keel.common.errors import DataError
    from keel.common.hashing import hash_file, sha256sum_line, stdin_hash

    failed = False
    for name in files or ["-"]:
        try:
            result = stdin_hash() if name == "-" else hash_file(name)
        except DataError as error:
            reason = error.message.split(": ", 1)[-1]
            if reason == "no such file":
                reason = "No such file or directory"
            elif reason.startswith("is a directory"):
                reason = "Is a directory"
            sys.stdout.flush()
            sys.stderr.write(f"keel data hash: {name}: {reason}\n")
            failed = True
            continue
        # Names are bytes on POSIX; surrogateescape gives back exactly what the shell passed.
        line = sha256sum_line(result.sha256, name) + "\n"
        _write_bytes(line.encode("utf-8", "surrogateescape"))
    sys.stdout.flush()
    if failed:
        raise typer.Exit(EXIT_FAILED)


def _is_archive(path: Path) -> bool:
    return path.is_file() and path.name.endswith((".tar.gz", ".tgz"))


def _load_source(
    source: Path, overrides: str | None, ext_var: list[str], include_package: list[str]
) -> tuple[Any, Any, dict[str, Any]]:
    """(dataset reader, archive vocabulary or None, config) from a config or an archive."""
    from keel.common.plugins import import_plugins

    if _is_archive(source):
        from keel.archive.model_archive import load_archive

        archive = load_archive(source, include_packages=include_package)
        return archive.dataset_reader, archive.vocab, dict(archive.config)
    from keel.common.from_params import build
    from keel.common.params import load_config, parse_ext_vars
    from keel.data.dataset_readers.dataset_reader import DatasetReader

    import_plugins(include_package)
    config = load_config(source, overrides=overrides, ext_vars=parse_ext_vars(ext_var))
    reader = build(DatasetReader, config.get("dataset_reader", {}), path="dataset_reader")
    return reader, None, config


@app.command("fingerprint")
@keel_errors_exit
def fingerprint_command(
    source: Annotated[Path, typer.Argument(help=SOURCE_HELP)],
    data: Annotated[Path, typer.Argument(help="The data file to fingerprint.")],
    output: Annotated[
        Path | None, typer.Option("--output", help="Also write the full JSON document here.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the full JSON document to stdout.")
    ] = False,
    allow_unchecked: AllowUnchecked = [],  # noqa: B006
    overrides: Overrides = None,
    ext_var: ExtVar = [],  # noqa: B006 (typer needs a literal default)
    include_package: IncludePackage = [],  # noqa: B006
) -> None:
    """Fingerprint DATA as the config's (or archive's) reader, tokenizer and indexers see it.

    With an archive the ids come from the model's vocabulary, and when DATA has the same bytes
    as one of the training run's data files, its preprocessing is compared with what the run
    recorded: exit 1 when it differs (same data, preprocessed differently here), and when the
    record cannot be compared (another fingerprint format) unless --allow-unchecked
    "recorded preprocessing". With a config
    the vocabulary is built from DATA itself (using the config's "vocabulary" section), so the
    digest is comparable only with other config-based fingerprints of the same file.
    """
    from keel.common.file_utils import atomic_write_json
    from keel.common.hashing import hash_file
    from keel.guard.fingerprint import compare_with_recorded, fingerprint_data_file
    from keel.guard.results import Report

    comparison = None
    if _is_archive(source):
        from keel.archive.model_archive import load_archive

        archive = load_archive(source, include_packages=include_package)
        # The split DATA was recorded as decides the reader: validation may differ from train.
        role = archive.manifest.recorded_role(hash_file(data).sha256)
        reader = archive.validation_dataset_reader if role not in (None, "train") else None
        result = fingerprint_data_file(reader or archive.dataset_reader, data, vocab=archive.vocab)
        comparison = compare_with_recorded(archive.manifest, result.file, result.preprocessing)
    else:
        reader, _, config = _load_source(source, overrides, ext_var, include_package)
        result = fingerprint_data_file(reader, data, vocabulary_config=config.get("vocabulary"))
    document = result.to_dict()
    failed = False
    if comparison is not None:
        document["recorded"] = comparison.to_dict()
        verdict = Report("data fingerprint", str(data), [comparison.to_check()])
        verdict.allow_unchecked(allow_unchecked)
        document["verdict"] = verdict.to_dict()
        failed = not verdict.ok
    if output is not None:
        atomic_write_json(output, document)
    if as_json:
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        if failed:
            raise typer.Exit(EXIT_FAILED)
        return
    pre = result.preprocessing
    lines = [
        f"file          {result.file.sha256}  {result.file.size} bytes",
        f"preprocessing {pre.digest}  {pre.instances} instances",
        f"vocabulary    {result.vocabulary_sha256}  (from {result.vocabulary_source})",
    ]
    if result.tokenizer is not None:
        tokenizer = result.tokenizer
        lines.append(f"tokenizer     {tokenizer.digest}  (probe corpus {tokenizer.corpus_version})")
    summary = pre.to_dict()
    for name, stats in summary["lengths"].items():
        lines.append(f"length {name}: min {stats['min']} mean {stats['mean']} max {stats['max']}")
    for namespace, stats in summary["oov"].items():
        lines.append(f"oov {namespace}: {stats['oov']}/{stats['items']} ({stats['rate']:.4%})")
    for name, counts in summary["labels"].items():
        shown = ", ".join(f"{label}={count}" for label, count in list(counts.items())[:20])
        more = " ..." if len(counts) > 20 else ""
        lines.append(f"labels {name}: {shown}{more}")
    if comparison is not None:
        role = f" ({comparison.role})" if comparison.role else ""
        lines.append(f"recorded      {comparison.status.upper()}{role}: {comparison.message}")
    typer.echo("\n".join(lines))
    if failed:
        raise typer.Exit(EXIT_FAILED)


@app.command("validate")
@keel_errors_exit
def validate_command(
    source: Annotated[Path, typer.Argument(help=SOURCE_HELP)],
    data: Annotated[Path, typer.Argument(help="The data file to check.")],
    max_errors: Annotated[
        int | None,
        typer.Option("--max-errors", min=1, help="Stop after this many errors."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    junit: JunitOption = None,
    overrides: Overrides = None,
    ext_var: ExtVar = [],  # noqa: B006
    include_package: IncludePackage = [],  # noqa: B006
) -> None:
    """Read every line of DATA with the reader and report all bad lines and unseen labels.

    Labels "seen in training" come from the archive's vocabulary, or from reading the config's
    train_data_path. Exits 1 when anything is wrong.
    """
    from keel.guard.data_validation import (
        labels_from_instances,
        labels_from_vocabulary,
        validate_data,
    )

    reader, vocab, config = _load_source(source, overrides, ext_var, include_package)
    known = None
    if vocab is not None:
        known = labels_from_vocabulary(vocab)
    elif config.get("train_data_path"):
        train_path = Path(config["train_data_path"])
        if train_path.resolve() != data.resolve():
            known = labels_from_instances(_read_training_labels(reader, train_path))
    report = validate_data(reader, data, known_labels=known, max_errors=max_errors)
    if junit is not None:
        from keel.common.file_utils import atomic_write_text
        from keel.guard.results import Report

        junit_report = Report("data validate", str(data), [report.to_check()])
        atomic_write_text(junit, junit_report.to_junit_xml())
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n")
    else:
        for error in report.errors:
            typer.echo(error.render())
        counts = ", ".join(f"{code}: {n}" for code, n in sorted(report.error_counts.items()))
        verdict = "ok" if report.ok else f"{report.error_count} error(s) ({counts})"
        typer.echo(f"{data}: {report.instances} instances read; {verdict}")
        for note in report.notes:
            typer.echo(f"note: {note}")
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)
    raise typer.Exit(EXIT_OK)


def _read_training_labels(reader: Any, path: Path) -> Any:
    """The training instances, skipping bad lines when the reader can (they are not ours)."""
    from keel.guard.data_validation import reader_supports_on_error

    if reader_supports_on_error(reader):
        return reader.read(path, on_error=lambda error: None)
    return reader.read(path)
