"""The top-level config schema (AllenNLP's shape); the train pipeline is keel.pipeline.train."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, cast

from keel.common import errors
from keel.common.constraints import DataFile, NonNegative
from keel.common.errors import ConfigIssue, ConfigurationError, RegistryError, did_you_mean
from keel.common.from_params import Lazy, Validation, validate
from keel.data.data_loaders.data_loader import DataLoader
from keel.data.dataset_readers.dataset_reader import DatasetReader
from keel.data.vocabulary import Vocabulary
from keel.models.model import Model
from keel.training.distributed import DistributedConfig
from keel.training.trainer import Trainer

logger = logging.getLogger(__name__)


@dataclass
class Experiment:
    """Everything a training config may say at its top level (AllenNLP's keys and keel's own).

    The dataclass fields are the schema: ``validate(Experiment, config)`` checks a whole config.
    """

    dataset_reader: DatasetReader
    train_data_path: Annotated[str, DataFile]
    model: Lazy[Model]
    trainer: Lazy[Trainer]
    data_loader: Lazy[DataLoader]
    validation_dataset_reader: DatasetReader | None = None
    validation_data_path: Annotated[str, DataFile] | None = None
    test_data_path: Annotated[str, DataFile] | None = None
    validation_data_loader: Lazy[DataLoader] | None = None
    vocabulary: Lazy[Vocabulary] | None = None
    datasets_for_vocab_creation: list[str] | None = None
    evaluate_on_test: bool = False
    random_seed: int = 13370
    numpy_seed: int = 1337
    pytorch_seed: int = 133
    deterministic: bool = True
    golden_sample_size: Annotated[int, NonNegative] = 256
    #: recorded in the manifest for model registries and experiment trackers
    model_name: str | None = None
    model_version: str | None = None
    #: AllenNLP's section: how many processes, which backend (see keel.training.distributed)
    distributed: DistributedConfig | None = None


def validate_experiment(config: Mapping[str, Any], *, check_files: bool = True) -> Validation:
    """Every problem of a training config at once (raised), or its resolved form and components.

    ``check_files=False`` leaves out the existence of the data files (a config read from an
    archive names the files of the machine that trained it)."""
    config = dict(config)
    # The shuffling seed follows the experiment's seed unless a loader sets its own.
    seed = config.get("random_seed", Experiment.random_seed)
    for key in ("data_loader", "validation_data_loader"):
        section = config.get(key)
        if isinstance(section, dict) and "seed" not in section:
            config[key] = {**section, "seed": seed}
    validation = validate(Experiment, config, check_files=check_files)
    validation.raise_if_invalid()
    issues = validation_metric_issues(validation.resolved)
    if issues:
        raise ConfigurationError(issues)
    return validation


def validation_metric_issues(resolved: Mapping[str, Any]) -> list[ConfigIssue]:
    """``trainer.validation_metric`` against the metrics the model says it reports (when its
    class says: ``Model.metric_names``), so a misspelling fails before any work."""
    model = resolved.get("model") or {}
    try:
        model_class = cast(type[Model], Model.by_name(str(model.get("type"))))
    except RegistryError:
        return []
    if "metric_names" not in vars(model_class):
        return []
    declared = model_class.metric_names(model)
    if declared is None:
        return []
    wanted = (resolved.get("trainer") or {}).get("validation_metric", "-loss")
    names = [wanted] if isinstance(wanted, str) else list(wanted)
    known = sorted({"loss", *declared.exact})
    issues = []
    for signed in names:
        name = signed.lstrip("+-")
        if name == "loss" or declared.covers(name):
            continue
        per_label = (
            f" (or per label/type: {', '.join(declared.patterns)})" if declared.patterns else ""
        )
        issues.append(
            ConfigIssue(
                errors.BAD_VALUE,
                "trainer.validation_metric",
                f"{model.get('type')} reports no metric {name!r}",
                expected=f"'+' or '-' and one of: {', '.join(known)}{per_label}",
                found=signed,
                suggestion=did_you_mean(name, known),
            )
        )
    return issues


def evaluation_batch_size(config: Mapping[str, Any]) -> int:
    """The batch size to evaluate a resolved config's model with: its validation loader's."""
    loader = config.get("validation_data_loader") or config.get("data_loader") or {}
    sampler = loader.get("batch_sampler") or {}
    return int(sampler.get("batch_size") or loader.get("batch_size") or 32)
