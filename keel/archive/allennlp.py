"""AllenNLP archives: ``weights.th`` read without ever unpickling objects, and an importer.

``weights.th`` is a pickled state dict. keel reads it only with
``torch.load(weights_only=True)``, whose restricted unpickler accepts tensors, plain containers
and numbers and refuses everything else (including the ``__reduce__`` payloads that would run
code), so a hostile file is an error, never an execution.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

import keel
from keel.archive.archive import ArchiveLimits, extract_archive
from keel.archive.components import describe_components
from keel.archive.manifest import Manifest
from keel.archive.migration import (
    PlannedMigration,
    migrate_config,
    migrate_weights,
    plan_migrations,
)
from keel.archive.model_archive import archive_model, load_weights_strictly
from keel.common import errors
from keel.common.errors import ArchiveError
from keel.common.filenames import CONFIG_NAME, VOCABULARY_DIR
from keel.common.from_params import build, validate
from keel.common.hashing import sha256_file
from keel.common.plugins import import_plugins
from keel.data.dataset_readers.dataset_reader import DatasetReader
from keel.data.vocabulary import Vocabulary
from keel.models.model import Model
from keel.modules.token_embedders.embedding import remove_pretrained_files
from keel.training.experiment import Experiment, validate_experiment

ALLENNLP_WEIGHTS = "weights.th"


def read_allennlp_weights(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The state dict in an AllenNLP ``weights.th``, loaded on CPU with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise ArchiveError(f"{path}: no such weights file", code=errors.ARCHIVE_NOT_FOUND)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ArchiveError(
            f"{path}: refused: the file holds pickled objects other than tensors, which keel "
            f"never unpickles (torch.load weights_only=True said: {_first_line(error)})",
            code=errors.ARCHIVE_UNSAFE_MEMBER,
        ) from error
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as error:
        raise ArchiveError(
            f"{path}: not a readable torch weights file ({type(error).__name__}: "
            f"{_first_line(error)})",
            code=errors.ARCHIVE_CORRUPT,
        ) from error
    if not isinstance(state, Mapping) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state.items()
    ):
        raise ArchiveError(
            f"{path}: expected a state dict (parameter name -> tensor), found "
            f"{type(state).__name__}",
            code=errors.ARCHIVE_CORRUPT,
        )
    return dict(state)


#: AllenNLP components keel does not reproduce, by config key and name: importing one would
#: change what the model computes, so the import refuses and says why.
UNREPRODUCIBLE = {
    ("tokenizer", "spacy"): "spaCy's tokenizer (AllenNLP's default for text_classification_json) "
    "is not reproduced by keel; keel's whitespace or word tokenizer would split text "
    'differently ("isn\'t", punctuation, URLs), so predictions would change silently',
}
#: top-level keys that only training reads
TRAINING_KEYS = (
    "trainer",
    "iterator",
    "data_loader",
    "validation_data_loader",
    "validation_iterator",
    "distributed",
    "evaluate_on_test",
)


def unreproducible(config: Any, path: str = "") -> list[tuple[str, str, str]]:
    """Every component of ``config`` keel cannot reproduce: (dotted path, name, reason)."""
    found: list[tuple[str, str, str]] = []
    if isinstance(config, dict):
        for key, value in config.items():
            here = f"{path}.{key}" if path else str(key)
            kind = value.get("type") if isinstance(value, dict) else None
            reason = UNREPRODUCIBLE.get((str(key), str(kind)))
            if reason is not None:
                found.append((here, str(kind), reason))
            elif key not in TRAINING_KEYS or path:
                found += unreproducible(value, here)
    elif isinstance(config, list):
        for index, item in enumerate(config):
            found += unreproducible(item, f"{path}[{index}]")
    return found


def refuse_unreproducible(config: Any, where: str) -> None:
    """ArchiveError naming the first component keel cannot reproduce, with the reason."""
    for here, kind, reason in unreproducible(config):
        raise ArchiveError(
            f"{where}: {here} is {kind!r}: {reason}; refusing to import",
            code=errors.UNKNOWN_COMPONENT,
        )


def split_training_sections(config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the config keel builds the model from, the AllenNLP training sections kept apart).

    The readers, model and data paths are kept; a training section that keel builds as is
    stays too, and one it does not (an optimizer keel lacks, the pre-1.0 ``iterator``) is
    replaced by keel's default and recorded in the manifest, so it never blocks an import."""
    inference = {key: value for key, value in config.items() if key not in TRAINING_KEYS}
    training = {key: config[key] for key in TRAINING_KEYS if key in config}
    for key in ("trainer", "data_loader"):
        section = config.get(key)
        candidate = {**inference, key: section} if isinstance(section, dict) else None
        if candidate is not None and not _issues_under(candidate, key):
            inference[key] = section
    inference.setdefault("trainer", {})
    inference.setdefault("data_loader", {"batch_size": 32})
    inference.setdefault("train_data_path", "<training data of the AllenNLP run>")
    return inference, training


def _issues_under(config: Mapping[str, Any], key: str) -> bool:
    issues = validate(
        Experiment,
        {
            **config,
            "trainer": config.get("trainer", {}),
            "data_loader": config.get("data_loader", {}),
        },
        check_files=False,
    ).issues
    return any(issue.path == key or issue.path.startswith(f"{key}.") for issue in issues)


def adapt_allennlp_state(
    state: Mapping[str, torch.Tensor], model: torch.nn.Module
) -> dict[str, torch.Tensor]:
    """AllenNLP's state-dict names where keel's differ (every other key is kept as it is, and
    ``load_weights_strictly`` names any that still does not fit):

    - ``TimeDistributed`` wrappers add ``._module``: ``tag_projection_layer._module.weight``;
    - ``FeedForward`` keeps its linear layers in ``_linear_layers.N``, keel's in one
      ``Sequential`` (``_layers.K``, K the position of the N-th linear layer).
    """
    expected = set(model.state_dict())
    modules = dict(model.named_modules())
    adapted: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        new = key
        if key not in expected:
            new = _feedforward_key(key, modules) or key
            if new not in expected and "._module." in new:
                stripped = new.replace("._module.", ".", 1)
                new = stripped if stripped in expected else new
        adapted[new] = tensor
    return adapted


def _feedforward_key(key: str, modules: Mapping[str, torch.nn.Module]) -> str | None:
    match = re.match(r"^(.*)\._linear_layers\.(\d+)\.(.+)$", key)
    if match is None:
        return None
    prefix, index, rest = match.group(1), int(match.group(2)), match.group(3)
    layers = modules.get(f"{prefix}._layers")
    if not isinstance(layers, torch.nn.Sequential):
        return None
    linear = [
        position for position, layer in enumerate(layers) if isinstance(layer, torch.nn.Linear)
    ]
    if index >= len(linear):
        return None
    return f"{prefix}._layers.{linear[index]}.{rest}"


def _meta(root: Path) -> dict[str, Any] | None:
    """AllenNLP 2.x's ``meta.json`` (the versions that wrote the archive), when present."""
    path = root / "meta.json"
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return meta if isinstance(meta, dict) else None


def _allennlp_layout_migrations(config: Any, where: str) -> list[PlannedMigration]:
    """The migrations an AllenNLP config and state dict need: AllenNLP's layouts are version 1
    of the keel components of the same names (a later keel version of a component migrates
    from it, exactly as for a keel archive made with version 1)."""
    uses = validate(Experiment, config, check_files=False).components
    components = [replace(record, version=1) for record in describe_components(uses)]
    return plan_migrations(Manifest(components=components), where)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def import_allennlp_archive(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    include_packages: Iterable[str] = (),
    limits: ArchiveLimits | None = None,
    describe: Callable[[Model, Vocabulary, DatasetReader, Manifest], dict[str, Any] | None]
    | None = None,
) -> Path:
    """Convert an AllenNLP ``model.tar.gz`` (config.json, weights.th, vocabulary/) to keel's.

    ``describe(model, vocab, validation_reader, manifest)``, when given, fills in what the
    importing run knows (environment, tokenizer fingerprint) and returns golden predictions to
    store, or None (``keel.pipeline.imports`` does this for ``--golden-input``).

    The source is unpacked with keel's safe extraction and its weights read without
    unpickling; the config must validate against keel's components, and the weights must fit
    the model it builds exactly. The new archive records where it was imported from.
    """
    source = Path(source)
    import_plugins(include_packages)
    with tempfile.TemporaryDirectory(prefix="keel-allennlp-") as directory:
        root = Path(directory) / "source"
        extract_archive(source, root, limits or ArchiveLimits())
        for required in (CONFIG_NAME, ALLENNLP_WEIGHTS, VOCABULARY_DIR):
            if not (root / required).exists():
                raise ArchiveError(
                    f"{source}: no {required}; not an AllenNLP model archive",
                    code=errors.ARCHIVE_MISSING_MEMBER,
                )
        try:
            config = json.loads((root / CONFIG_NAME).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ArchiveError(
                f"{source}: {CONFIG_NAME} is not valid JSON ({error})", code=errors.ARCHIVE_CORRUPT
            ) from error
        refuse_unreproducible(config, str(source))
        inference, training = split_training_sections(config)
        plan = _allennlp_layout_migrations(inference, str(source))
        validation = validate_experiment(migrate_config(inference, plan), check_files=False)
        vocab = Vocabulary.from_files(str(root / VOCABULARY_DIR))
        built: dict[str, object] = {}
        # The weights come from weights.th: the vectors an embedding started from are not read.
        model = build(
            Model,
            remove_pretrained_files(validation.resolved["model"]),
            path="model",
            extras={"vocab": vocab},
            built=built,
        )
        state = adapt_allennlp_state(read_allennlp_weights(root / ALLENNLP_WEIGHTS), model)
        load_weights_strictly(model, migrate_weights(state, model, built, plan))
        work = Path(directory) / "work"
        work.mkdir()
        manifest = Manifest.new()
        manifest.components = describe_components(validation.components)
        manifest.imported_from = {
            "format": "allennlp",
            "sha256": sha256_file(source),
            "meta": _meta(root),
            # Kept for reference: what the AllenNLP run trained with, which inference does
            # not need (and keel may not build).
            "training_sections": training,
        }
        manifest.migrations = [
            {**planned.to_dict(), "applied_by": f"keel {keel.__version__}", "when": "import"}
            for planned in plan
        ]
        golden = None
        if describe is not None:
            model.eval()
            section = (
                validation.resolved.get("validation_dataset_reader")
                or validation.resolved["dataset_reader"]
            )
            reader = build(DatasetReader, section, path="validation_dataset_reader")
            golden = describe(model, vocab, reader, manifest)
        return archive_model(
            work,
            model=model,
            vocab=vocab,
            config=validation.resolved,
            manifest=manifest,
            include_packages=list(include_packages),
            archive_path=destination,
            golden=golden,
        )
