"""The train pipeline: validate a config, read and index the data (through the preprocessing
cache), train, record how the model was made, and archive it.

This is the one place that ties the layers below together (data, training, archive, guard), so
none of them needs to import another's upper neighbour.
"""

from __future__ import annotations

import contextlib
import fcntl
import inspect
import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from keel.archive.archive import read_manifest
from keel.archive.components import describe_components
from keel.archive.manifest import DataFileRecord, Manifest
from keel.archive.model_archive import archive_model
from keel.common import errors
from keel.common.errors import ConfigurationError, KeelError, TrainingError
from keel.common.file_utils import atomic_write_json, atomic_write_text
from keel.common.filenames import (
    ARCHIVE_NAME,
    CHECKPOINTS_DIR,
    CONFIG_NAME,
    LOG_FILE,
    METRICS_FILE,
    VOCABULARY_DIR,
)
from keel.common.from_params import Lazy, Validation, build
from keel.common.hashing import FileHash, hash_file
from keel.common.params import dump_config
from keel.data.batch import PackedInstances
from keel.data.data_loaders.data_loader import DataLoader
from keel.data.instance import Instance
from keel.data.vocabulary import Vocabulary
from keel.guard.cluster import cluster_gate
from keel.guard.environment import save_environment
from keel.guard.fingerprint import (
    PreprocessingFingerprint,
    preprocessing_fingerprint,
    reader_tokenizer_fingerprint,
    vocabulary_hash,
)
from keel.guard.golden import record_golden
from keel.guard.preprocessing_cache import PreprocessingCache, instances_key, vocabulary_key
from keel.guard.verify import verify_archive
from keel.models.model import Model
from keel.training.distributed import (
    DistributedConfig,
    DistributedContext,
    init_distributed,
    shutdown_distributed,
)
from keel.training.evaluation import evaluate
from keel.training.experiment import Experiment, evaluation_batch_size, validate_experiment
from keel.training.util import deterministic_mode_restored, prepare_environment

logger = logging.getLogger(__name__)


@dataclass
class TrainingResult:
    serialization_dir: Path
    archive_path: Path
    metrics: dict[str, Any]
    model: Model
    vocab: Vocabulary


LOCK_FILE = ".lock"


class RunLock:
    """An exclusive lock on a serialization directory for the lifetime of a run.

    ``fcntl.flock`` on ``<directory>/.lock``: the kernel releases it when the process ends,
    however it ends, so a crashed run never leaves a stale lock. A second ``keel train`` (or
    ``--recover``) on the same folder is refused while the first runs.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._handle: Any = None

    def acquire(self) -> None:
        path = self.directory / LOCK_FILE
        handle = open(path, "a+")  # noqa: SIM115 - held open for the lock's lifetime
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise TrainingError(
                f"{self.directory} is in use by another keel train ({holder}); wait for it to "
                "end or choose another serialization directory",
                code=errors.RUN_IN_PROGRESS,
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the file releases the flock
            self._handle = None


def prepare_serialization_dir(
    directory: Path, config: Mapping[str, Any], *, recover: bool, force: bool
) -> RunLock:
    """Check the directory suits the run (a fresh one, ``--force`` over an old one, or the
    interrupted run's for ``--recover``), lock it, and return the held lock."""
    config_file = directory / CONFIG_NAME
    if recover and force:
        raise TrainingError(
            "--recover and --force cannot be used together", code=errors.TRAINING_FAILED
        )
    if recover and not config_file.is_file():
        raise TrainingError(
            f"{directory}: nothing to recover (no {CONFIG_NAME}); run without --recover",
            code=errors.NOTHING_TO_RECOVER,
        )
    existing = (
        [path for path in directory.iterdir() if path.name != LOCK_FILE]
        if (directory.is_dir())
        else []
    )
    if existing and not recover and not force:
        raise TrainingError(
            f"{directory} already exists and is not empty; use --force to overwrite it or "
            "--recover to resume",
            code=errors.SERIALIZATION_DIR_EXISTS,
        )
    directory.mkdir(parents=True, exist_ok=True)
    lock = RunLock(directory)
    lock.acquire()  # before anything is read or deleted: a running job's folder stays intact
    try:
        if recover:
            previous = json.loads(config_file.read_text(encoding="utf-8"))
            if previous != config:
                changed = sorted(
                    key
                    for key in set(previous) | set(config)
                    if previous.get(key) != config.get(key)
                )
                raise TrainingError(
                    f"{directory}: the config differs from the interrupted run's in "
                    f"{', '.join(changed)}; --recover needs the same config",
                    code=errors.RECOVER_CONFIG_MISMATCH,
                )
        elif existing:  # --force: everything but the lock we hold
            for path in existing:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
    except BaseException:
        lock.release()
        raise
    return lock


@dataclass
class PreparedData:
    """Indexed instances per role (train, validation, test), the vocabulary, and their records."""

    vocab: Vocabulary
    paths: dict[str, str]
    instances: dict[str, list[Instance]]
    hashes: dict[str, FileHash]
    fingerprints: dict[str, PreprocessingFingerprint]
    cache_hits: dict[str, bool]
    #: per role, the instances packed with ``vocab`` (None for mixed field layouts)
    packed: dict[str, PackedInstances | None]


def prepare_data(
    experiment: Experiment,
    resolved: Mapping[str, Any],
    directory: Path,
    *,
    recover: bool,
    cache: PreprocessingCache | None,
    write: bool = True,
) -> PreparedData:
    """Read (or take from ``cache``), build or load the vocabulary, index, and fingerprint.

    ``write=False`` (a distributed run's ranks but 0) saves no vocabulary into ``directory``."""

    validation_reader = experiment.validation_dataset_reader or experiment.dataset_reader
    reader_section = resolved["dataset_reader"]
    validation_section = resolved.get("validation_dataset_reader") or reader_section
    paths = {
        role: path
        for role, path in (
            ("train", experiment.train_data_path),
            ("validation", experiment.validation_data_path),
            ("test", experiment.test_data_path),
        )
        if path
    }
    readers = {
        role: experiment.dataset_reader if role == "train" else validation_reader for role in paths
    }
    sections = {role: reader_section if role == "train" else validation_section for role in paths}
    hashes = {role: hash_file(path) for role, path in paths.items()}
    read: dict[str, list[Instance]] = {}

    def instances_of(role: str) -> list[Instance]:
        if role not in read:
            read[role] = list(readers[role].read(paths[role]))
        return read[role]

    chosen = experiment.datasets_for_vocab_creation or ["train"]
    unknown = [name for name in chosen if name not in paths]
    if unknown:
        raise ConfigurationError(
            f"datasets_for_vocab_creation: {unknown} not among the data paths given "
            f"({', '.join(paths)})",
            code=errors.BAD_VALUE,
        )
    vocab_dir = directory / VOCABULARY_DIR
    vocab: Vocabulary | None = None
    if recover and vocab_dir.is_dir():
        vocab = Vocabulary.from_files(str(vocab_dir))
    else:
        vocab_key = vocabulary_key(
            [hashes[role] for role in chosen],
            {role: sections[role] for role in chosen},
            resolved.get("vocabulary"),
        )
        vocab = cache.load_vocabulary(vocab_key) if cache else None
        if vocab is None:
            lazy_vocab = experiment.vocabulary or Lazy(Vocabulary, {})
            vocab = lazy_vocab.construct(
                instances=[instance for role in chosen for instance in instances_of(role)]
            )
            if cache:
                _best_effort(lambda: cache.store_vocabulary(vocab_key, vocab))
        if write:
            vocab.save_to_files(str(vocab_dir))

    instances: dict[str, list[Instance]] = {}
    packed: dict[str, PackedInstances | None] = {}
    fingerprints: dict[str, PreprocessingFingerprint] = {}
    hits: dict[str, bool] = {}
    for role in paths:
        key = instances_key(hashes[role], sections[role], vocab)
        indexers = getattr(readers[role], "token_indexers", {})  # a reader without text: {}
        cached = cache.load_packed(key, indexers) if cache else None
        hits[role] = cached is not None
        if cached is not None:  # neither tokenized nor indexed again
            instances[role], packed[role] = cached
        else:
            instances[role] = instances_of(role)
            # Packed once here: the fingerprint hashes the packed arrays, the data loaders
            # batch from them.
            packed[role] = PackedInstances.build(instances[role], vocab)
        fingerprint = cache.fingerprint(key) if cached is not None and cache else None
        if fingerprint is None:
            fingerprint = preprocessing_fingerprint(instances[role], vocab, packed[role])
        fingerprints[role] = fingerprint
        if cache and cached is None:
            _best_effort(
                lambda role=role, key=key, fingerprint=fingerprint: cache.store(
                    key, instances[role], vocab, fingerprint, packed[role]
                )
            )
        logger.info(
            "%s: %d instances%s",
            role,
            len(instances[role]),
            " (from the preprocessing cache)" if hits[role] else "",
        )
    return PreparedData(vocab, paths, instances, hashes, fingerprints, hits, packed)


def _index_loader(loader: DataLoader, vocab: Vocabulary, packed: PackedInstances | None) -> None:
    # A custom loader written against the one-argument index_with still works; it packs itself.
    if packed is not None and "packed" in inspect.signature(loader.index_with).parameters:
        loader.index_with(vocab, packed=packed)
    else:
        loader.index_with(vocab)


def _best_effort(write: Any) -> None:
    # A cache that cannot be written (full disk, read-only home) must not stop training.
    try:
        write()
    except OSError as error:
        logger.warning("preprocessing cache not written: %s", error)


def train_model(
    config: Mapping[str, Any],
    serialization_dir: str | Path,
    *,
    recover: bool = False,
    force: bool = False,
    include_packages: Iterable[str] = (),
    quiet: bool = False,
    cache: PreprocessingCache | None = None,
    bundle_code: bool = False,
) -> TrainingResult:
    """Validate the whole config, then read, index, train and archive into the directory.

    With ``cache``, tokenized and indexed instances (and the vocabulary) are reused across runs
    on the same data and preprocessing config. ``bundle_code`` stores the source of custom
    (non-keel) packages in the archive.

    Started by torchrun, this is one rank of a distributed run (``keel.training.distributed``):
    every rank reads and indexes the data, the cluster gate compares the ranks, training runs
    under DistributedDataParallel, and rank 0 alone prepares and writes the directory.
    """

    started = time.perf_counter()
    validation = validate_experiment(config)
    section = validation.resolved.get("distributed")
    context = init_distributed(build(DistributedConfig, section) if section else None)
    run = _Run(
        config=validation.resolved,
        validation=validation,
        directory=Path(serialization_dir),
        started=started,
        recover=recover,
        force=force,
        include_packages=tuple(include_packages),
        quiet=quiet,
        cache=cache,
        bundle_code=bundle_code,
    )
    try:
        if context is None or context.is_primary:
            return _train_in_directory(run, context)
        return _train_on_other_rank(run, context)
    finally:
        if context is not None:
            shutdown_distributed()


@dataclass(frozen=True)
class _Run:
    """One call of ``train_model``: what every stage of it reads."""

    config: Mapping[str, Any]  # resolved
    validation: Validation
    directory: Path
    started: float
    recover: bool
    force: bool
    include_packages: tuple[str, ...]
    quiet: bool
    cache: PreprocessingCache | None
    bundle_code: bool


def _train_on_other_rank(run: _Run, context: DistributedContext) -> TrainingResult:
    """A rank other than 0: trains beside rank 0, writes nothing of the run's."""
    # Rank 0 checks and locks the directory; the others learn whether it could, so a refused
    # directory stops every rank at once instead of leaving them waiting for it.
    refusal = context.all_gather(None)[0]
    if refusal is not None:
        raise TrainingError(f"rank 0 could not start: {refusal}", code=errors.TRAINING_FAILED)
    with deterministic_mode_restored():
        # Quiet, and without the shared cache, which rank 0 alone writes.
        return _train(replace(run, quiet=True, cache=None), context)


def _train_in_directory(run: _Run, context: DistributedContext | None) -> TrainingResult:
    """The run that owns the serialization directory: one process, or rank 0."""
    directory = run.directory
    existed = directory.exists()
    try:
        lock = prepare_serialization_dir(
            directory, run.config, recover=run.recover, force=run.force
        )
    except KeelError as error:
        if context is not None:
            context.all_gather(error.message)
        raise
    if context is not None:
        context.all_gather(None)
    try:
        with run_log(directory), deterministic_mode_restored():
            return _train(run, context)
    except BaseException:
        if not run.recover and not any((directory / CHECKPOINTS_DIR).glob("epoch_*")):
            # A fresh run that failed before its first checkpoint leaves nothing to resume, and
            # a half-made folder would only block the corrected re-run.
            _remove_run_files(directory, remove_directory=not existed)
        raise
    finally:
        lock.release()


def _remove_run_files(directory: Path, *, remove_directory: bool) -> None:
    for path in directory.iterdir():
        if path.name == LOCK_FILE:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    if remove_directory:
        (directory / LOCK_FILE).unlink(missing_ok=True)
        directory.rmdir()


def _train(run: _Run, context: DistributedContext | None) -> TrainingResult:
    resolved, validation, directory = run.config, run.validation, run.directory
    recover, quiet, cache = run.recover, run.quiet, run.cache
    include_packages, started, bundle_code = run.include_packages, run.started, run.bundle_code
    primary = context is None or context.is_primary
    if primary:
        atomic_write_text(directory / CONFIG_NAME, dump_config(resolved))
        save_environment(directory)

    experiment: Experiment = build(Experiment, resolved)
    prepare_environment(
        random_seed=experiment.random_seed,
        numpy_seed=experiment.numpy_seed,
        pytorch_seed=experiment.pytorch_seed,
        deterministic=experiment.deterministic,
    )

    reader = experiment.dataset_reader
    validation_reader = experiment.validation_dataset_reader or reader
    data = prepare_data(
        experiment, resolved, directory, recover=recover, cache=cache, write=primary
    )
    vocab = data.vocab
    train_instances = data.instances["train"]
    validation_instances = data.instances.get("validation")
    test_instances = data.instances.get("test")
    manifest = _manifest(experiment, resolved, validation, data)
    if context is not None:
        manifest.distributed = cluster_gate(context, manifest).to_manifest()
    model = experiment.model.construct(vocab=vocab)
    data_loader = experiment.data_loader.construct(instances=train_instances)
    _index_loader(data_loader, vocab, data.packed["train"])
    validation_loader = None
    if validation_instances is not None:
        lazy_loader = experiment.validation_data_loader or experiment.data_loader
        validation_loader = lazy_loader.construct(instances=validation_instances)
        _index_loader(validation_loader, vocab, data.packed["validation"])

    trainer = experiment.trainer.construct(
        model=model,
        data_loader=data_loader,
        validation_data_loader=validation_loader,
        serialization_dir=str(directory),
        **({"quiet": True} if quiet else {}),
        **({"distributed": context} if context is not None else {}),
    )
    metrics = trainer.train(recover=recover)
    if not primary:
        assert context is not None
        context.barrier()  # rank 0 evaluates, records golden predictions and archives
        return TrainingResult(directory, directory / ARCHIVE_NAME, metrics, model, vocab)

    if test_instances is not None and experiment.evaluate_on_test:
        test_metrics = evaluate(
            model, test_instances, vocab, batch_size=evaluation_batch_size(resolved)
        )
        metrics.update({f"test_{key}": value for key, value in test_metrics.items()})
    metrics["training_duration_total_seconds"] = round(time.perf_counter() - started, 3)
    atomic_write_json(directory / METRICS_FILE, metrics)

    golden = None
    if experiment.validation_data_path and experiment.golden_sample_size > 0:
        golden = record_golden(
            model,
            validation_reader,
            vocab,
            experiment.validation_data_path,
            sample_size=experiment.golden_sample_size,
            seed=experiment.random_seed,
        )
    callbacks = list(getattr(trainer, "callbacks", []))
    try:
        archive_path = archive_model(
            directory,
            model=model,
            vocab=vocab,
            config=resolved,
            metrics=metrics,
            manifest=manifest,
            include_packages=list(include_packages),
            golden=golden,
            bundle_code=bundle_code,
        )
        if callbacks:
            _report_archive(archive_path, callbacks, include_packages)
    except BaseException as error:
        for callback in callbacks:
            callback.on_error(error)
        raise
    if context is not None:
        context.barrier()
    return TrainingResult(directory, archive_path, metrics, model, vocab)


def _report_archive(
    archive_path: Path, callbacks: list[Any], include_packages: Iterable[str]
) -> None:
    """Hand the new archive (its manifest, and keel verify's verdict when a callback wants it)
    to the trainer's callbacks."""
    verdict = None
    if any(callback.wants_verdict for callback in callbacks):
        report = verify_archive(archive_path, include_packages=tuple(include_packages))
        verdict = {"ok": report.ok, "failed": list(report.failed)}
    manifest = read_manifest(archive_path).to_dict()
    for callback in callbacks:
        callback.on_archive(archive_path, manifest, verdict)


def _manifest(
    experiment: Experiment,
    resolved: Mapping[str, Any],
    validation: Validation,
    data: PreparedData,
) -> Manifest:
    """What the manifest records about how this model was made (see keel.guard)."""
    hashes = dict(data.hashes)
    for index, path in enumerate(_pretrained_files(resolved)):
        hashes[f"pretrained_{index}"] = hash_file(path)
    reader = experiment.validation_dataset_reader or experiment.dataset_reader
    tokenizer = reader_tokenizer_fingerprint(reader, data.vocab)
    manifest = Manifest.new()
    manifest.components = describe_components(validation.components)
    manifest.data_files = {
        role: DataFileRecord(file_hash.path, file_hash.sha256, file_hash.size)
        for role, file_hash in hashes.items()
    }
    manifest.preprocessing_fingerprints = {
        role: fingerprint.to_dict() for role, fingerprint in data.fingerprints.items()
    }
    manifest.vocabulary_sha256 = vocabulary_hash(data.vocab)
    manifest.tokenizer_fingerprint = tokenizer.to_dict() if tokenizer is not None else None
    manifest.source = git_source(Path.cwd())
    manifest.model_name = experiment.model_name
    manifest.model_version = experiment.model_version
    manifest.reproducibility = {
        "random_seed": experiment.random_seed,
        "numpy_seed": experiment.numpy_seed,
        "pytorch_seed": experiment.pytorch_seed,
        "deterministic": experiment.deterministic,
    }
    return manifest


def git_source(directory: Path) -> dict[str, Any] | None:
    """The commit checked out in ``directory`` and whether the work tree differs from it; None
    outside a git checkout (or without git)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"git_commit": commit, "git_dirty": bool(status.strip())}


@contextlib.contextmanager
def run_log(directory: Path) -> Iterator[None]:
    """Copy keel's log records (INFO and up) into ``<directory>/out.log`` for the run."""
    package_logger = logging.getLogger("keel")
    handler = logging.FileHandler(directory / LOG_FILE, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    previous = package_logger.level
    effective = package_logger.getEffectiveLevel()
    # The file wants INFO; the handlers already there keep the threshold they had (--quiet).
    others = [(other, other.level) for other in package_logger.handlers]
    if effective > logging.INFO:
        for other, level in others:
            other.setLevel(max(level, effective))
        package_logger.setLevel(logging.INFO)
    package_logger.addHandler(handler)
    try:
        yield
    finally:
        package_logger.removeHandler(handler)
        package_logger.setLevel(previous)
        for other, level in others:
            other.setLevel(level)
        handler.close()


def _pretrained_files(config: Any) -> list[str]:
    if isinstance(config, dict):
        found = (
            [config["pretrained_file"]] if isinstance(config.get("pretrained_file"), str) else []
        )
        return found + [path for value in config.values() for path in _pretrained_files(value)]
    if isinstance(config, list):
        return [path for item in config for path in _pretrained_files(item)]
    return []
