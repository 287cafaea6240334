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
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
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
from keel.data.vocabulary import Vocabulary
from keel.models.model import Model
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
) -> Path:
    """Convert an AllenNLP ``model.tar.gz`` (config.json, weights.th, vocabulary/) to keel's.

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
        plan = _allennlp_layout_migrations(config, str(source))
        validation = validate_experiment(migrate_config(config, plan), check_files=False)
        vocab = Vocabulary.from_files(str(root / VOCABULARY_DIR))
        built: dict[str, object] = {}
        model = build(
            Model,
            validation.resolved["model"],
            path="model",
            extras={"vocab": vocab},
            built=built,
        )
        state = read_allennlp_weights(root / ALLENNLP_WEIGHTS)
        load_weights_strictly(model, migrate_weights(state, model, built, plan))
        work = Path(directory) / "work"
        work.mkdir()
        manifest = Manifest.new()
        manifest.components = describe_components(validation.components)
        manifest.imported_from = {"format": "allennlp", "sha256": sha256_file(source)}
        manifest.migrations = [
            {**planned.to_dict(), "applied_by": f"keel {keel.__version__}", "when": "import"}
            for planned in plan
        ]
        return archive_model(
            work,
            model=model,
            vocab=vocab,
            config=validation.resolved,
            manifest=manifest,
            include_packages=list(include_packages),
            archive_path=destination,
        )
