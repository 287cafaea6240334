"""``keel train``, ``keel evaluate`` and ``keel predict``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from keel.cli.common import (
    ExtVar,
    IncludePackage,
    Overrides,
    configure_logging,
    console,
    keel_errors_exit,
    write_json_lines,
)
from keel.common import errors
from keel.common.errors import DataError

# A JSON input of one sentence or document is kilobytes; a megabyte line is a mistake or an attack.
DEFAULT_MAX_LINE_BYTES = 1024 * 1024

TrustBundledCode = Annotated[
    bool,
    typer.Option(
        "--trust-bundled-code",
        help="Import the custom code stored in the archive (after checking its hashes).",
    ),
]
RequireSignature = Annotated[
    bool,
    typer.Option(
        "--require-signature",
        help="Refuse the archive unless it carries a valid signature by a trusted key.",
    ),
]
TrustedKeys = Annotated[
    list[Path],
    typer.Option(
        "--trusted-keys",
        help="A trusted public key (PEM) or a folder of *.pub keys (repeatable); implies "
        "--require-signature.",
    ),
]


def _load(
    archive: Path,
    include_package: list[str],
    trust_bundled_code: bool,
    require_signature: bool,
    trusted_keys: list[Path],
) -> Any:
    """``load_archive`` with the command's trust options: a signature, when asked for, is
    checked on the same bytes that are then loaded."""
    from keel.archive.model_archive import load_archive
    from keel.archive.signing import keys_from_paths

    keys = keys_from_paths(trusted_keys)
    if require_signature and not keys:
        raise DataError(
            "--require-signature needs --trusted-keys (a public key or a folder of them)",
            code=errors.ARCHIVE_SIGNATURE,
        )
    return load_archive(
        archive,
        include_packages=include_package,
        trust_bundled_code=trust_bundled_code,
        require_signature=require_signature,
        trusted_keys=keys,
    )


@keel_errors_exit
def train(
    config: Annotated[Path, typer.Argument(help="Jsonnet or JSON training config.")],
    serialization_dir: Annotated[
        Path, typer.Option("--serialization-dir", "-s", help="Where outputs and the archive go.")
    ],
    overrides: Overrides = None,
    ext_var: ExtVar = [],  # noqa: B006 (typer needs a literal default)
    include_package: IncludePackage = [],  # noqa: B006
    recover: Annotated[bool, typer.Option("--recover", help="Resume an interrupted run.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the directory.")] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", help="No progress bars or progress log lines.")
    ] = False,
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", help="Preprocessing cache (default ~/.cache/keel)."),
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Always tokenize and index from scratch.")
    ] = False,
    bundle_code: Annotated[
        bool,
        typer.Option("--bundle-code", help="Store the source of custom packages in the archive."),
    ] = False,
) -> None:
    """Train a model from a config and archive it as SERIALIZATION_DIR/model.tar.gz."""
    from keel.common.params import load_config, parse_ext_vars
    from keel.common.plugins import import_plugins
    from keel.guard.preprocessing_cache import PreprocessingCache
    from keel.pipeline.train import train_model

    configure_logging(quiet)
    import_plugins(include_package)
    params = load_config(config, overrides=overrides, ext_vars=parse_ext_vars(ext_var))
    result = train_model(
        params,
        serialization_dir,
        recover=recover,
        force=force,
        include_packages=include_package,
        quiet=quiet,
        cache=None if no_cache else PreprocessingCache(cache_dir),
        bundle_code=bundle_code,
    )
    _print_metrics("training finished", result.metrics)
    console.print(f"archive: {result.archive_path}")


@keel_errors_exit
def evaluate(
    archive: Annotated[Path, typer.Argument(help="A model.tar.gz.")],
    data: Annotated[Path, typer.Argument(help="Data file the archive's reader can read.")],
    output_file: Annotated[
        Path | None, typer.Option("--output-file", help="Write the metrics here as JSON.")
    ] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size")] = None,
    include_package: IncludePackage = [],  # noqa: B006
    trust_bundled_code: TrustBundledCode = False,
    require_signature: RequireSignature = False,
    trusted_keys: TrustedKeys = [],  # noqa: B006
) -> None:
    """Evaluate an archived model on DATA; prints and optionally writes the metrics."""
    from keel.common.file_utils import atomic_write_json
    from keel.training.evaluation import evaluate as run_evaluation
    from keel.training.experiment import evaluation_batch_size

    loaded = _load(archive, include_package, trust_bundled_code, require_signature, trusted_keys)
    reader = loaded.validation_dataset_reader
    instances = list(reader.read(data))
    try:
        metrics = run_evaluation(
            loaded.model,
            instances,
            loaded.vocab,
            batch_size=batch_size or evaluation_batch_size(loaded.config),
        )
    except DataError as error:
        if error.code != errors.UNSEEN_LABEL:
            raise
        from keel.guard.data_validation import locate_unseen_label

        raise locate_unseen_label(reader, data, loaded.vocab, error) from error
    _print_metrics(f"evaluation of {archive.name} on {data.name}", metrics)
    sys.stdout.write(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    if output_file:
        atomic_write_json(output_file, metrics)


@keel_errors_exit
def predict(
    archive: Annotated[Path, typer.Argument(help="A model.tar.gz.")],
    input_file: Annotated[str, typer.Argument(help="JSON lines, or - for stdin.")],
    output_file: Annotated[
        str | None, typer.Option("--output-file", help="JSON lines out; - or absent: stdout.")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 32,
    predictor: Annotated[str | None, typer.Option("--predictor")] = None,
    max_line_bytes: Annotated[
        int,
        typer.Option("--max-line-bytes", min=1, help="Refuse input lines longer than this."),
    ] = DEFAULT_MAX_LINE_BYTES,
    include_package: IncludePackage = [],  # noqa: B006
    trust_bundled_code: TrustBundledCode = False,
    require_signature: RequireSignature = False,
    trusted_keys: TrustedKeys = [],  # noqa: B006
) -> None:
    """Predict with an archived model: one JSON object per input line, one per output line."""
    from keel.predict.predictor import Predictor

    loaded = _load(archive, include_package, trust_bundled_code, require_signature, trusted_keys)
    chosen = Predictor.from_archive(loaded, predictor)
    source_name = "<stdin>" if input_file == "-" else input_file
    inputs: list[tuple[int, dict[str, Any]]] = []
    for number, line in _input_lines(input_file, source_name, max_line_bytes):
        if not line.strip():
            continue
        try:
            inputs.append((number, json.loads(line)))
        except json.JSONDecodeError as error:
            raise DataError(
                f"not valid JSON ({error.msg})", path=source_name, line=number, excerpt=line
            ) from error
        except RecursionError:
            raise DataError(
                "JSON nested too deeply to read", path=source_name, line=number, excerpt=line
            ) from None
    outputs: list[dict[str, Any]] = []
    for start in range(0, len(inputs), batch_size):
        chunk = inputs[start : start + batch_size]
        try:
            outputs.extend(chosen.predict_batch_json([item for _, item in chunk]))
        except DataError:
            # Name the offending line: predict the chunk's lines one at a time.
            for number, item in chunk:
                try:
                    chosen.predict_json(item)
                except DataError as inner:
                    raise DataError(
                        inner.message,
                        path=source_name,
                        line=number,
                        excerpt=json.dumps(item),
                        code=inner.code,
                    ) from inner
            raise
    write_json_lines(outputs, output_file)


def _input_lines(input_file: str, source_name: str, max_line_bytes: int) -> Any:
    """(number, text) of each input line, read in bounded pieces: a line over
    ``max_line_bytes`` or one that is not UTF-8 is refused with its line number."""
    stream = sys.stdin.buffer if input_file == "-" else open(input_file, "rb")  # noqa: SIM115
    with stream:
        number = 0
        while raw := stream.readline(max_line_bytes + 1):
            number += 1
            if len(raw.rstrip(b"\r\n")) > max_line_bytes:
                raise DataError(
                    f"line is longer than the {max_line_bytes}-byte limit (--max-line-bytes)",
                    path=source_name,
                    line=number,
                    code=errors.INPUT_TOO_LARGE,
                )
            try:
                yield number, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as error:
                raise DataError(
                    f"not valid UTF-8 ({error.reason} at byte {error.start} of the line)",
                    path=source_name,
                    line=number,
                    excerpt=raw.decode("utf-8", errors="replace"),
                ) from None


def _print_metrics(title: str, metrics: dict[str, Any]) -> None:
    table = Table(title=title, show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in sorted(metrics.items()):
        if isinstance(value, float):
            table.add_row(key, f"{value:.4f}")
        elif isinstance(value, int | str):
            table.add_row(key, str(value))
    console.print(table)
