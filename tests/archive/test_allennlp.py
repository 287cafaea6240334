"""AllenNLP ``weights.th``: tensors load, anything else is refused without being unpickled."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

from keel.archive.allennlp import import_allennlp_archive, read_allennlp_weights
from keel.archive.archive import read_manifest
from keel.archive.model_archive import load_archive
from keel.common import errors
from keel.common.errors import ArchiveError
from keel.pipeline.train import train_model
from keel.predict.predictor import Predictor
from tests.conftest import SST2_SAMPLE, TINY_CLASSIFIER

SENTENCES = [{"text": "a gripping , beautifully made film"}, {"text": "dull and lifeless"}]


class _RunsCode:
    """Unpickling this calls os.system: the payload a hostile weights.th carries."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def write_hostile_weights(path, marker) -> None:
    """A torch zip checkpoint whose pickle would create ``marker`` if it were unpickled."""
    torch.save({"weight": torch.ones(2), "payload": _RunsCode(str(marker))}, path)


def test_allennlp_state_dict_of_tensors_loads_on_cpu(tmp_path) -> None:
    state = {"encoder.weight": torch.arange(6.0).reshape(2, 3), "bias": torch.zeros(3)}
    torch.save(state, tmp_path / "weights.th")
    loaded = read_allennlp_weights(tmp_path / "weights.th")
    assert loaded.keys() == state.keys()
    assert torch.equal(loaded["encoder.weight"], state["encoder.weight"])
    assert loaded["bias"].device.type == "cpu"


def test_allennlp_pickle_payload_is_refused_and_never_runs(tmp_path) -> None:
    marker = tmp_path / "MARKER"
    write_hostile_weights(tmp_path / "weights.th", marker)
    with pytest.raises(ArchiveError) as raised:
        read_allennlp_weights(tmp_path / "weights.th")
    assert raised.value.code == errors.ARCHIVE_UNSAFE_MEMBER
    assert "never unpickles" in str(raised.value)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_allennlp_legacy_pickle_file_with_payload_is_refused(tmp_path) -> None:
    marker = tmp_path / "MARKER"
    with open(tmp_path / "weights.th", "wb") as handle:
        pickle.dump({"payload": _RunsCode(str(marker))}, handle)
    with pytest.raises(ArchiveError):
        read_allennlp_weights(tmp_path / "weights.th")
    assert not marker.exists()


def test_allennlp_non_state_dict_and_garbage_are_clear_errors(tmp_path) -> None:
    torch.save([torch.ones(1)], tmp_path / "list.th")
    with pytest.raises(ArchiveError, match="expected a state dict"):
        read_allennlp_weights(tmp_path / "list.th")
    (tmp_path / "garbage.th").write_bytes(b"\x00not a checkpoint")
    with pytest.raises(ArchiveError) as raised:
        read_allennlp_weights(tmp_path / "garbage.th")
    assert raised.value.code in (errors.ARCHIVE_CORRUPT, errors.ARCHIVE_UNSAFE_MEMBER)
    with pytest.raises(ArchiveError) as raised:
        read_allennlp_weights(tmp_path / "absent.th")
    assert raised.value.code == errors.ARCHIVE_NOT_FOUND


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from keel.common.params import load_config

    config = load_config(TINY_CLASSIFIER, ext_vars={"data_dir": str(SST2_SAMPLE), "epochs": "1"})
    return train_model(config, tmp_path_factory.mktemp("allennlp") / "run", quiet=True)


def allennlp_archive(trained, path: Path, weights: dict | None = None) -> Path:
    """AllenNLP's layout: config.json, a pickled state dict in weights.th, vocabulary/."""
    run = trained.serialization_dir
    staging = path.parent / (path.name + ".d")
    staging.mkdir()
    torch.save(
        weights if weights is not None else trained.model.state_dict(), staging / "weights.th"
    )
    with tarfile.open(path, "w:gz") as tar:
        tar.add(run / "config.json", arcname="config.json")
        tar.add(staging / "weights.th", arcname="weights.th")
        tar.add(run / "vocabulary", arcname="vocabulary")
    return path


def test_allennlp_import_gives_an_archive_that_predicts_the_same(trained, tmp_path) -> None:
    source = allennlp_archive(trained, tmp_path / "allennlp.tar.gz")
    imported = import_allennlp_archive(source, tmp_path / "keel.tar.gz")
    manifest = read_manifest(imported)
    assert manifest.imported_from["format"] == "allennlp"
    assert "weights.safetensors" in manifest.files and "weights.th" not in manifest.files
    assert {component.name for component in manifest.components} >= {"basic_classifier", "tsv"}
    original = Predictor.from_archive(load_archive(trained.archive_path))
    converted = Predictor.from_archive(load_archive(imported))
    for want, got in zip(
        original.predict_batch_json(SENTENCES), converted.predict_batch_json(SENTENCES), strict=True
    ):
        assert got["label"] == want["label"]
        assert got["logits"] == pytest.approx(want["logits"], abs=1e-6)


def test_allennlp_import_refuses_a_pickle_payload(trained, tmp_path) -> None:
    marker = tmp_path / "MARKER"
    hostile = {**trained.model.state_dict(), "payload": _RunsCode(str(marker))}
    source = allennlp_archive(trained, tmp_path / "hostile.tar.gz", hostile)
    with pytest.raises(ArchiveError) as raised:
        import_allennlp_archive(source, tmp_path / "keel.tar.gz")
    assert raised.value.code == errors.ARCHIVE_UNSAFE_MEMBER
    assert not marker.exists()
    assert not (tmp_path / "keel.tar.gz").exists()


def test_allennlp_import_weights_that_do_not_fit_are_named(trained, tmp_path) -> None:
    weights = dict(trained.model.state_dict())
    removed = sorted(weights)[0]
    del weights[removed]
    source = allennlp_archive(trained, tmp_path / "short.tar.gz", weights)
    with pytest.raises(ArchiveError) as raised:
        import_allennlp_archive(source, tmp_path / "keel.tar.gz")
    assert raised.value.code == errors.WEIGHTS_MISMATCH
    assert f"missing: {removed}" in str(raised.value)


@pytest.mark.slow
def test_allennlp_import_cli(trained, tmp_path) -> None:
    source = allennlp_archive(trained, tmp_path / "allennlp.tar.gz")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "keel.cli.main",
            "archive",
            "import-allennlp",
            str(source),
            "-o",
            str(tmp_path / "keel.tar.gz"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert read_manifest(tmp_path / "keel.tar.gz").imported_from["format"] == "allennlp"


def test_allennlp_cnn_layout_imports_through_the_cnn_migration(tmp_path) -> None:
    # AllenNLP names the CNN encoder's convolutions conv_layer_N: keel's cnn version 1. An
    # import migrates them to version 2 like a keel archive made with version 1.
    from keel.archive.archive import opened_archive
    from keel.common.weights import read_weights

    fixture = (
        Path(__file__).parents[1] / "fixtures" / "archives" / "components1-cnn-classifier.tar.gz"
    )
    with opened_archive(fixture) as (root, _):
        weights = read_weights(root / "weights.safetensors")
        assert any(key.endswith("conv_layer_2.weight") for key in weights)
        torch.save(weights, tmp_path / "weights.th")
        source = tmp_path / "allennlp-cnn.tar.gz"
        with tarfile.open(source, "w:gz") as tar:
            tar.add(root / "config.json", arcname="config.json")
            tar.add(tmp_path / "weights.th", arcname="weights.th")
            tar.add(root / "vocabulary", arcname="vocabulary")
        golden = json.loads((root / "golden" / "predictions.json").read_text())
    # No meta.json: the release is given (every golden text is at least as long as the widest
    # filter, where AllenNLP's window pooling and keel's agree).
    imported = import_allennlp_archive(source, tmp_path / "keel.tar.gz", allennlp_version="2.10.1")
    manifest = read_manifest(imported)
    assert [(m["name"], m["from_version"], m["to_version"]) for m in manifest.migrations] == [
        ("cnn", 1, 2)
    ]
    assert [c.version for c in manifest.components if c.name == "cnn"] == [2]
    outputs = Predictor.from_archive(load_archive(imported)).predict_batch_json(golden["records"])
    assert [output["label"] for output in outputs] == [item["label"] for item in golden["decoded"]]
    for output, expected in zip(outputs, golden["scores"], strict=True):
        assert output["logits"] == pytest.approx(expected["logits"], abs=1e-6)
