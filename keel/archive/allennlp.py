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
from keel.common.errors import ArchiveError, KeelError
from keel.common.filenames import CONFIG_NAME, VOCABULARY_DIR
from keel.common.from_params import build, constructor_parameters, validate
from keel.common.hashing import sha256_file
from keel.common.plugins import import_plugins
from keel.data.dataset_readers.dataset_reader import DatasetReader
from keel.data.vocabulary import Vocabulary
from keel.models.model import Model
from keel.modules.conditional_random_field import ConditionalRandomField
from keel.modules.token_embedders.embedding import remove_pretrained_files
from keel.training.allennlp_defaults import (
    allennlp_defaults,
    upgrade_legacy_layout,
    uses_cnn_encoder,
)
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
#: model keys that shape only the training loss or the initial weights (the imported weights
#: replace those): AllenNLP's ``initializer``, and allennlp-models' crf_tagger loss options.
MODEL_TRAINING_KEYS = ("initializer", "ignore_loss_on_o_tags", "label_weights", "weight_strategy")


def split_training_sections(config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the config keel builds the model from, the AllenNLP training sections kept apart).

    The readers, model and data paths are kept; a training section that keel builds as is
    stays too, and one it does not (an optimizer keel lacks, the pre-1.0 ``iterator``) is
    replaced by keel's default and recorded in the manifest, so it never blocks an import."""
    inference = {key: value for key, value in config.items() if key not in TRAINING_KEYS}
    training = {key: config[key] for key in TRAINING_KEYS if key in config}
    model = inference.get("model")
    if isinstance(model, dict):
        accepted = _model_parameters(model.get("type"))
        kept = {}
        for key, value in model.items():
            if key in MODEL_TRAINING_KEYS and key not in accepted:
                training[f"model.{key}"] = value
            else:
                kept[key] = value
        inference["model"] = kept
    for key in ("trainer", "data_loader"):
        section = config.get(key)
        candidate = {**inference, key: section} if isinstance(section, dict) else None
        if candidate is not None and not _issues_under(candidate, key):
            inference[key] = section
    inference.setdefault("trainer", {})
    inference.setdefault("data_loader", {"batch_size": 32})
    inference.setdefault("train_data_path", "<training data of the AllenNLP run>")
    return inference, training


def _model_parameters(name: Any) -> set[str]:
    try:
        model_class = Model.by_name(str(name))
    except KeelError:
        return set()  # validation names the unknown model
    return {parameter for parameter, _, _ in constructor_parameters(model_class)}


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

    - ``TimeDistributed`` wrappers add ``._module`` (``tag_projection_layer._module.weight``,
      a character encoder's ``_embedding._module.weight`` and ``_encoder._module.*``); it is
      removed wherever keel's module at that path has no ``_module`` of its own (an RNN
      wrapper does);
    - ``FeedForward`` keeps its linear layers in ``_linear_layers.N``, keel's in one
      ``Sequential`` (``_layers.K``, K the position of the N-th linear layer);
    - the CRF's ``_constraint_mask`` is a parameter in AllenNLP; keel derives it from the
      label encoding, so the archive's must equal keel's (else the import is refused) and is
      then dropped.
    """
    expected = set(model.state_dict())
    modules = dict(model.named_modules())
    adapted: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        new = key
        if key not in expected:
            new = _without_time_distributed(key, modules)
            new = _feedforward_key(new, modules) or new
        prefix, _, name = new.rpartition(".")
        if name == "_constraint_mask" and isinstance(modules.get(prefix), ConditionalRandomField):
            _check_constraint_mask(new, tensor, modules[prefix])
            continue
        adapted[new] = tensor
    return adapted


def _without_time_distributed(key: str, modules: Mapping[str, torch.nn.Module]) -> str:
    marker = "._module."
    start = 0
    while (position := key.find(marker, start)) != -1:
        prefix = key[:position]
        module = modules.get(prefix)
        if module is not None and not hasattr(module, "_module"):
            key = prefix + "." + key[position + len(marker) :]
            start = position
        else:
            start = position + 1
    return key


def _check_constraint_mask(key: str, stored: torch.Tensor, crf: ConditionalRandomField) -> None:
    derived = crf._constraint_mask
    if stored.shape != derived.shape or not torch.equal(stored.bool(), derived.bool()):
        raise ArchiveError(
            f"{key}: the archive's allowed CRF transitions differ from those keel derives from "
            "the config's label_encoding and the label vocabulary; decoding would differ",
            code=errors.WEIGHTS_MISMATCH,
        )


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


def _allennlp_version(
    source: Path, config: Mapping[str, Any], meta: Mapping[str, Any] | None, given: str | None
) -> str | None:
    """The AllenNLP release that wrote the archive: ``meta.json``'s, or the one the user gave.

    Archives before AllenNLP 2.5 carry no ``meta.json``; where the release changes what a
    component computes (the CNN encoder, allenai/allennlp#4746), an import without it would
    have to guess, so it is refused instead, naming the component and the option."""
    recorded = str(meta["version"]) if meta and meta.get("version") else None
    if recorded and given and recorded != given:
        raise ArchiveError(
            f"{source}: --allennlp-version {given} contradicts the archive's meta.json, which "
            f"says AllenNLP {recorded} wrote it",
            code=errors.BAD_VALUE,
        )
    version = recorded or given
    cnn = uses_cnn_encoder(config)
    if version is None and cnn:
        raise ArchiveError(
            f"{source}: {cnn[0]} is a 'cnn' encoder, whose outputs depend on the AllenNLP "
            "release (1.2.1 stopped pooling windows that reach into padding), and the archive "
            "has no meta.json saying which release wrote it (AllenNLP < 2.5); give the release "
            "with --allennlp-version (e.g. 2.4.0 or 1.1.0); refusing to guess",
            code=errors.BAD_VALUE,
        )
    return version


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
    allennlp_version: str | None = None,
) -> Path:
    """Convert an AllenNLP ``model.tar.gz`` (config.json, weights.th, vocabulary/) to keel's.

    ``describe(model, vocab, validation_reader, manifest)``, when given, fills in what the
    importing run knows (environment, tokenizer fingerprint) and returns golden predictions to
    store, or None (``keel.pipeline.imports`` does this for ``--golden-input``).

    Wherever keel's defaults differ from AllenNLP's (``keel.training.allennlp_defaults``), the
    AllenNLP value is written into the imported config, for the release that wrote the archive:
    its ``meta.json`` says which (AllenNLP 2.5 and later), or ``allennlp_version`` where that
    matters and the archive does not say.

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
        meta = _meta(root)
        config, upgraded = upgrade_legacy_layout(config)
        version = _allennlp_version(source, config, meta, allennlp_version)
        inference, training = split_training_sections(config)
        inference, filled = allennlp_defaults(inference, allennlp_version=version)
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
            "meta": meta,
            "allennlp_version": version,
            # AllenNLP's defaults where keel's differ, written into the config explicitly
            "defaults_filled": [item.render() for item in filled],
            "layout_upgraded": upgraded,
            # Kept for reference: what the AllenNLP run trained with, which inference does
            # not need (and keel may not build).
            "training_sections": training,
        }
        manifest.migrations = [
            {**planned.to_dict(), "applied_by": f"keel {keel.__version__}", "when": "import"}
            for planned in plan
        ]
        # Built even when nothing is described: a reader this machine cannot run (a tokenizer
        # whose package is missing) refuses the import here, naming what to install.
        section = (
            validation.resolved.get("validation_dataset_reader")
            or validation.resolved["dataset_reader"]
        )
        reader = build(DatasetReader, section, path="validation_dataset_reader")
        golden = None
        if describe is not None:
            model.eval()
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
