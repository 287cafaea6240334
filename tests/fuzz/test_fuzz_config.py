"""Fuzzing config parsing and validation: only keel's own errors may escape.

``load_config`` gets arbitrary bytes (as JSON and as Jsonnet files); ``validate(Experiment, ...)``
and ``validate_experiment`` get JSON-ish dicts built from the real schema's keys and registered
names, so the fuzzer reaches deep into component configs rather than failing at the top level.
"""

from __future__ import annotations

import contextlib
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keel.common.errors import ConfigurationError, KeelError
from keel.common.from_params import validate
from keel.common.params import load_config
from keel.common.plugins import import_builtin_components
from keel.common.registry import registry_snapshot
from keel.training.experiment import Experiment, validate_experiment

FUZZ = settings(
    max_examples=200,
    deadline=timedelta(seconds=10),  # a hang guard, not a speed check
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)

import_builtin_components()
REGISTERED_NAMES = sorted({name for names in registry_snapshot().values() for name in names})
KEYS = [
    "type",
    "dataset_reader",
    "train_data_path",
    "model",
    "trainer",
    "data_loader",
    "text_field_embedder",
    "token_embedders",
    "tokens",
    "embedding_dim",
    "seq2vec_encoder",
    "input_size",
    "hidden_size",
    "optimizer",
    "lr",
    "batch_size",
    "batch_sampler",
    "num_epochs",
    "tokenizer",
    "token_indexers",
    "vocabulary",
    "random_seed",
    "max_instances",
]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(REGISTERED_NAMES)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=30,
)
CONFIGS = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), VALUES, max_size=8)


@pytest.mark.slow
@FUZZ
@given(config=CONFIGS)
def test_fuzz_config_validate_experiment_raises_only_keel_errors(config) -> None:
    try:
        validation = validate(Experiment, config)
    except KeelError:
        return
    assert isinstance(validation.issues, list)
    with contextlib.suppress(KeelError):
        validate_experiment(config)


@pytest.mark.slow
@FUZZ
@given(text=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_fuzz_config_load_config_of_arbitrary_bytes(text) -> None:
    with tempfile.TemporaryDirectory() as directory:
        for name in ("config.json", "config.jsonnet"):
            path = Path(directory) / name
            path.write_bytes(text)
            try:
                config = load_config(path, overrides='{"x": 1}')
            except KeelError:
                continue
            assert isinstance(config, dict) and config["x"] == 1


def test_fuzz_config_invalid_utf8_is_a_configuration_error(tmp_path) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(b'{"model": "\xff"}')
    try:
        load_config(path)
    except ConfigurationError as error:
        assert str(path) in str(error)
    else:
        raise AssertionError("invalid UTF-8 was accepted")
