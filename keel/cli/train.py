"""``keel train``, ``keel evaluate`` and ``keel predict``."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
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
from keel.common.devices import resolve_device
from keel.common.errors import DataError

# A JSON input of one sentence or document is kilobytes; a megabyte line is a mistake or an attack.
DEFAULT_MAX_LINE_BYTES = 1024 * 1024

logger = logging.getLogger("keel.cli.predict")

TrustBundledCode = Annotated[
    bool,
    typer.Option(
        "--trust-bundled-code",
        help="Import the custom code stored in the archive (after checking its hashes).",
    ),
]


class OnError(StrEnum):
    """What ``keel predict`` does with a bad input line."""

    fail = "fail"
    record = "record"


Device = Annotated[str, typer.Option("--device", help="cpu, cuda or cuda:N: where the model runs.")]

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
    nproc_per_node: Annotated[
        int | None,
        typer.Option(
            "--nproc-per-node",
            min=1,
            help="Train with this many processes on this machine (torch.distributed: gloo on "
            "CPU, nccl on GPUs), started by torch's elastic launcher as torchrun would.",
        ),
    ] = None,
    allennlp: Annotated[
        bool,
        typer.Option(
            "--allennlp",
            help="Train an AllenNLP config with AllenNLP's semantics: where the config leaves "
            "out a value whose default differs in keel (vocabulary datasets, embedding padding "
            "row, text_classification_json's tokenizer, cnn window pooling), AllenNLP's value "
            "is written into the config (and the archive's); AllenNLP 0.9's flat "
            "text_field_embedder layout is upgraded.",
        ),
    ] = False,
) -> None:
    """Train a model from a config and archive it as SERIALIZATION_DIR/model.tar.gz.

    Under torchrun, this process is one rank of a distributed run. With --nproc-per-node N, or
    a config whose ``distributed`` section asks for several processes on one node, keel starts
    the ranks itself.
    """
    from keel.common.params import load_config, parse_ext_vars
    from keel.common.plugins import import_plugins
    from keel.guard.preprocessing_cache import PreprocessingCache
    from keel.pipeline.train import train_model
    from keel.training.distributed import launch_local, launched_by_torchrun
    from keel.training.experiment import validate_experiment

    configure_logging(quiet)
    import_plugins(include_package)
    params = load_config(config, overrides=overrides, ext_vars=parse_ext_vars(ext_var))
    if allennlp:
        from keel.training.allennlp_defaults import allennlp_defaults, upgrade_legacy_layout

        params, upgraded = upgrade_legacy_layout(params)
        params, filled = allennlp_defaults(params)
        if _primary_rank():
            for change in upgraded:
                console.print(f"AllenNLP 0.9 layout: {escape(change)}", highlight=False)
            for item in filled:
                console.print(f"AllenNLP default: {escape(item.render())}", highlight=False)
    if not launched_by_torchrun():
        processes = nproc_per_node or _configured_processes(validate_experiment(params).resolved)
        if processes is not None:
            # Every config error is reported here, once, before any process starts.
            arguments = ["train", str(config), "-s", str(serialization_dir)]
            arguments += ["--overrides", overrides] if overrides else []
            for value in ext_var:
                arguments += ["--ext-var", value]
            for package in include_package:
                arguments += ["--include-package", package]
            if cache_dir is not None:
                arguments += ["--cache-dir", str(cache_dir)]
            flags = (
                ("--recover", recover),
                ("--force", force),
                ("--quiet", quiet),
                ("--no-cache", no_cache),
                ("--bundle-code", bundle_code),
                ("--allennlp", allennlp),
            )
            arguments += [flag for flag, given in flags if given]
            console.print(f"starting {processes} training processes (torch.distributed)")
            launch_local(processes, arguments)  # rank 0 printed the metrics and the archive
            return
    elif nproc_per_node is not None:
        raise typer.BadParameter(
            "this process was started by torchrun already; give --nproc-per-node to torchrun"
        )
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
    if _primary_rank():
        _print_metrics("training finished", result.metrics)
        console.print(f"archive: {result.archive_path}")


def _reader_with_overrides(loaded: Any, overrides: str) -> Any:
    """The archive's validation reader rebuilt with ``overrides`` merged into its section."""
    from keel.common.errors import ConfigIssue, ConfigurationError
    from keel.common.from_params import build
    from keel.common.params import apply_overrides, parse_overrides
    from keel.data.dataset_readers.dataset_reader import DatasetReader

    parsed = parse_overrides(overrides)
    allowed = {"dataset_reader", "validation_dataset_reader"}
    other = sorted({key.split(".")[0] for key in parsed} - allowed)
    if other:
        raise ConfigurationError(
            [
                ConfigIssue(
                    errors.BAD_OVERRIDE,
                    "--overrides",
                    f"evaluate can override the dataset readers only, not {', '.join(other)}",
                    expected=" or ".join(sorted(allowed)),
                )
            ]
        )
    config = apply_overrides(loaded.config, parsed)
    name = (
        "validation_dataset_reader" if config.get("validation_dataset_reader") else "dataset_reader"
    )
    return build(DatasetReader, config[name], path=name)


def _configured_processes(resolved: dict[str, Any]) -> int | None:
    """The processes per node the config's ``distributed`` section asks for, when more than one
    on a single node (several nodes are started by torchrun on each of them)."""
    section = resolved.get("distributed")
    if not section:
        return None
    from keel.common.from_params import build
    from keel.training.distributed import DistributedConfig

    distributed = build(DistributedConfig, section, path="distributed")
    if distributed.num_nodes > 1:
        raise typer.BadParameter(
            "distributed.num_nodes > 1: start keel train with torchrun on every node (see the "
            "README, 'Training on several GPUs or machines')"
        )
    return distributed.processes_per_node


def _primary_rank() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


@keel_errors_exit
def evaluate(
    archive: Annotated[Path, typer.Argument(help="A model.tar.gz.")],
    data: Annotated[Path, typer.Argument(help="Data file the archive's reader can read.")],
    output_file: Annotated[
        Path | None, typer.Option("--output-file", help="Write the metrics here as JSON.")
    ] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size")] = None,
    device: Device = "cpu",
    predictions_output_file: Annotated[
        Path | None,
        typer.Option(
            "--predictions-output-file",
            help="Write one JSON line per instance: its index, line, gold value and prediction.",
        ),
    ] = None,
    include_package: IncludePackage = [],  # noqa: B006
    trust_bundled_code: TrustBundledCode = False,
    require_signature: RequireSignature = False,
    trusted_keys: TrustedKeys = [],  # noqa: B006
    overrides: Annotated[
        str | None,
        typer.Option(
            "--overrides",
            "-o",
            help="A JSON/Jsonnet object merged over the archive's dataset reader sections, "
            'e.g. \'{"validation_dataset_reader": {"id_column": "uid"}}\' (readers only: the '
            "model is the archived one).",
        ),
    ] = None,
) -> None:
    """Evaluate an archived model on DATA; prints and optionally writes the metrics, with
    per-class precision/recall/F1 and a confusion matrix for labels and tags."""
    from keel.common.file_utils import atomic_write_json
    from keel.predict.predictor import Predictor, to_jsonable
    from keel.training.evaluation import class_report, gold_and_predicted
    from keel.training.evaluation import evaluate as run_evaluation
    from keel.training.experiment import evaluation_batch_size

    target = resolve_device(device)
    loaded = _load(archive, include_package, trust_bundled_code, require_signature, trusted_keys)
    loaded.model.to(target)
    reader = _reader_with_overrides(loaded, overrides) if overrides else None
    reader = reader or loaded.validation_dataset_reader
    instances = list(reader.read(data))
    outputs: list[dict[str, Any]] = []
    try:
        metrics = run_evaluation(
            loaded.model,
            instances,
            loaded.vocab,
            batch_size=batch_size or evaluation_batch_size(loaded.config),
            collect=outputs.extend,
        )
    except DataError as error:
        if error.code != errors.UNSEEN_LABEL:
            raise
        from keel.guard.data_validation import locate_unseen_label

        raise locate_unseen_label(reader, data, loaded.vocab, error) from error
    pairs = [
        pair
        for instance, output in zip(instances, outputs, strict=True)
        for pair in gold_and_predicted(instance, output)
    ]
    _print_metrics(f"evaluation of {archive.name} on {data.name}", metrics)
    if pairs:
        metrics.update(class_report(pairs))
    sys.stdout.write(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    if output_file:
        atomic_write_json(output_file, metrics)
    if predictions_output_file:
        chosen = Predictor.from_archive(loaded)
        rows = []
        for index, (instance, output) in enumerate(zip(instances, outputs, strict=True)):
            gold = [gold for gold, _ in gold_and_predicted(instance, output)]
            rows.append(
                {
                    "index": index,
                    **({"id": instance.source_id} if instance.source_id is not None else {}),
                    "line": instance.source_line,
                    "gold": gold[0] if "label" in output else gold,
                    **to_jsonable(chosen.to_json(output)),
                }
            )
        write_json_lines(rows, str(predictions_output_file))


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
    device: Device = "cpu",
    on_error: Annotated[
        OnError,
        typer.Option("--on-error", help="fail: stop at a bad line; record: an error record."),
    ] = OnError.fail,
    include_package: IncludePackage = [],  # noqa: B006
    trust_bundled_code: TrustBundledCode = False,
    require_signature: RequireSignature = False,
    trusted_keys: TrustedKeys = [],  # noqa: B006
    use_dataset_reader: Annotated[
        bool,
        typer.Option(
            "--use-dataset-reader",
            help="Read INPUT_FILE with the archive's validation dataset reader (a data file, "
            "as for evaluate) instead of JSON lines, as allennlp predict does; one output line "
            "per instance, with its id and line when the data has them.",
        ),
    ] = False,
) -> None:
    """Predict with an archived model: one JSON object per input line, one per output line.

    Output line N always answers input line N. Input keys the predictor does not read (an
    ``id``) are passed through. A blank or bad line stops the command with its file:line
    (``--on-error fail``), or gives an ``{"error": ...}`` record on its line (``record``).
    """
    from keel.predict.predictor import Predictor

    configure_logging()
    target = resolve_device(device)
    loaded = _load(archive, include_package, trust_bundled_code, require_signature, trusted_keys)
    loaded.model.to(target)
    chosen = Predictor.from_archive(loaded, predictor)
    if use_dataset_reader:
        _predict_with_reader(chosen, loaded, input_file, batch_size, output_file)
        return
    source_name = "<stdin>" if input_file == "-" else input_file
    record = on_error == OnError.record
    rows: list[dict[str, Any] | None] = []
    pending: list[tuple[int, int, dict[str, Any]]] = []  # (row index, line number, input)
    for number, line in _input_lines(input_file, source_name, max_line_bytes, record):
        rows.append(None)
        try:
            if isinstance(line, DataError):
                raise line
            pending.append((len(rows) - 1, number, _parse_input(line, source_name, number)))
        except DataError as error:
            if not record:
                raise
            rows[-1] = _error_record(error, number)
    with _progress(len(pending)) as advance:
        for start in range(0, len(pending), batch_size):
            chunk = pending[start : start + batch_size]
            outputs = _predict_chunk(
                chosen, [(number, item) for _, number, item in chunk], source_name, record
            )
            for (row, _, _), output in zip(chunk, outputs, strict=True):
                rows[row] = output
            advance(len(chunk))
    write_json_lines([row for row in rows if row is not None], output_file)


def _predict_with_reader(
    chosen: Any, loaded: Any, input_file: str, batch_size: int, output_file: str | None
) -> None:
    """``--use-dataset-reader``: the file read by the archive's validation reader (its errors
    name file:line), predicted in batches, one line per instance."""
    if input_file == "-":
        raise DataError("--use-dataset-reader reads a data file, not standard input")
    instances = list(loaded.validation_dataset_reader.read(input_file))
    rows: list[dict[str, Any]] = []
    with _progress(len(instances)) as advance:
        for start in range(0, len(instances), batch_size):
            chunk = instances[start : start + batch_size]
            for instance, output in zip(chunk, chosen.predict_batch_instances(chunk), strict=True):
                where = {"line": instance.source_line}
                if instance.source_id is not None:
                    where = {"id": instance.source_id, **where}
                rows.append({**where, **output})
            advance(len(chunk))
    write_json_lines(rows, output_file)


def _parse_input(line: str, source_name: str, number: int) -> dict[str, Any]:
    from keel.data.dataset_readers.dataset_reader import parse_json_object

    if not line.strip():
        raise DataError(
            "blank line: every input line needs a JSON object (--on-error record writes an "
            "error record in its place)",
            path=source_name,
            line=number,
        )
    return parse_json_object(line, source_name, number)


def _error_record(error: DataError, number: int) -> dict[str, Any]:
    return {"error": {"code": error.code, "message": error.message, "line": number}}


def _predict_chunk(
    chosen: Any, chunk: list[tuple[int, dict[str, Any]]], source_name: str, record: bool
) -> list[dict[str, Any]]:
    """The chunk's outputs in order; a bad input fails with its file:line or, with
    ``record``, becomes an error record (the chunk is then predicted one input at a time)."""
    try:
        return list(chosen.predict_batch_json_with_passthrough([item for _, item in chunk]))
    except DataError:
        pass
    outputs = []
    for number, item in chunk:
        try:
            outputs.extend(chosen.predict_batch_json_with_passthrough([item]))
        except DataError as inner:
            error = DataError(
                inner.message,
                path=source_name,
                line=number,
                excerpt=json.dumps(item)[:200],
                code=inner.code,
            )
            if not record:
                raise error from inner
            outputs.append(_error_record(error, number))
    return outputs


@contextlib.contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar with rate and ETA on a terminal; a log line every 30 s otherwise."""
    if sys.stderr.isatty() and total:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TimeRemainingColumn,
        )

        with Progress(
            "predicting",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("predict", total=total)
            yield lambda count: bar.advance(task, count)
        return
    started = last = time.monotonic()
    done = 0

    def advance(count: int) -> None:
        nonlocal done, last
        done += count
        now = time.monotonic()
        if now - last >= 30 or done == total:
            rate = done / max(now - started, 1e-9)
            left = (total - done) / rate if rate else 0.0
            logger.info("predicted %d of %d inputs (%.0f/s, %.0f s left)", done, total, rate, left)
            last = now

    yield advance


def _input_lines(
    input_file: str, source_name: str, max_line_bytes: int, keep_going: bool = False
) -> Any:
    """(number, text) of each input line, read in bounded pieces: a line over
    ``max_line_bytes`` or one that is not UTF-8 is refused with its line number (with
    ``keep_going``, yielded in its place as the DataError, and reading goes on)."""
    stream = sys.stdin.buffer if input_file == "-" else open(input_file, "rb")  # noqa: SIM115
    with stream:
        number = 0
        while raw := stream.readline(max_line_bytes + 1):
            number += 1
            if len(raw.rstrip(b"\r\n")) > max_line_bytes:
                while raw and not raw.endswith(b"\n"):  # the rest of the line, unkept
                    raw = stream.readline(1024 * 1024)
                too_long = DataError(
                    f"line is longer than the {max_line_bytes}-byte limit (--max-line-bytes)",
                    path=source_name,
                    line=number,
                    code=errors.INPUT_TOO_LARGE,
                )
                if not keep_going:
                    raise too_long
                yield number, too_long
                continue
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as error:
                bad = DataError(
                    f"not valid UTF-8 ({error.reason} at byte {error.start} of the line)",
                    path=source_name,
                    line=number,
                    excerpt=raw.decode("utf-8", errors="replace"),
                )
                if not keep_going:
                    raise bad from None
                yield number, bad
                continue
            yield number, text


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
