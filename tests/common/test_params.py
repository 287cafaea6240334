from __future__ import annotations

import os

import pytest

from keel.common import errors
from keel.common.errors import ConfigurationError
from keel.common.params import apply_overrides, dump_config, load_config, parse_ext_vars


def test_params_loads_jsonnet_with_explicit_ext_vars(tmp_path) -> None:
    path = tmp_path / "config.jsonnet"
    path.write_text('local dim = 8; {model: {dim: dim * 2, data: std.extVar("data_dir") + "/x"}}')
    config = load_config(path, ext_vars={"data_dir": "/d"})
    assert config == {"model": {"dim": 16, "data": "/d/x"}}


def test_params_never_reads_environment_variables(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("data_dir", "/from-environment")  # noqa: SIM112 (jsonnet names are lowercase)
    path = tmp_path / "config.jsonnet"
    path.write_text('{data: std.extVar("data_dir")}')
    with pytest.raises(ConfigurationError) as raised:
        load_config(path)
    assert raised.value.code == errors.CONFIG_SYNTAX
    assert "--ext-var data_dir=VALUE" in str(raised.value)
    assert os.environ["data_dir"] == "/from-environment"  # noqa: SIM112


def test_params_overrides_merge_deeply_and_accept_dotted_keys(tmp_path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"trainer": {"num_epochs": 5, "optimizer": {"type": "adam", "lr": 0.1}}}')
    config = load_config(
        path, overrides='{"trainer": {"optimizer": {"lr": 0.01}}, "trainer.patience": 2}'
    )
    assert config == {
        "trainer": {"num_epochs": 5, "patience": 2, "optimizer": {"type": "adam", "lr": 0.01}}
    }


def test_params_syntax_error_names_the_file(tmp_path) -> None:
    path = tmp_path / "broken.jsonnet"
    path.write_text("{model: }")
    with pytest.raises(ConfigurationError) as raised:
        load_config(path)
    assert "broken.jsonnet" in str(raised.value)


def test_params_bad_overrides_and_ext_vars_have_their_own_codes(tmp_path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{}")
    with pytest.raises(ConfigurationError) as raised:
        load_config(path, overrides="[1, 2]")
    assert raised.value.code == errors.BAD_OVERRIDE
    with pytest.raises(ConfigurationError) as raised:
        parse_ext_vars(["novalue"])
    assert raised.value.code == errors.BAD_EXT_VAR
    assert parse_ext_vars(["a=b=c"]) == {"a": "b=c"}


def test_params_apply_overrides_does_not_mutate_the_original() -> None:
    original = {"a": {"b": 1}}
    merged = apply_overrides(original, {"a": {"c": 2}})
    assert original == {"a": {"b": 1}} and merged == {"a": {"b": 1, "c": 2}}
    assert dump_config(merged).endswith("}\n")


def test_params_override_with_another_type_replaces_the_whole_object():
    from keel.common.params import apply_overrides

    config = {"model": {"encoder": {"type": "lstm", "input_size": 8, "hidden_size": 8}}}
    switched = apply_overrides(config, {"model": {"encoder": {"type": "boe", "embedding_dim": 8}}})
    assert switched["model"]["encoder"] == {"type": "boe", "embedding_dim": 8}
    same_type = apply_overrides(config, {"model.encoder": {"type": "lstm", "hidden_size": 16}})
    assert same_type["model"]["encoder"] == {"type": "lstm", "input_size": 8, "hidden_size": 16}
    no_type = apply_overrides(config, {"model": {"encoder": {"hidden_size": 4}}})
    assert no_type["model"]["encoder"]["input_size"] == 8  # merged, as before
    # A bare type switch (a subclass taking the same settings) keeps the other settings.
    subclass = apply_overrides(config, {"model": {"encoder": {"type": "my_lstm"}}})
    assert subclass["model"]["encoder"] == {"type": "my_lstm", "input_size": 8, "hidden_size": 8}
