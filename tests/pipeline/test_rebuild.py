"""keel rebuild: retrain from an archive, find its data by hash, compare, judge."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
import uuid

import pytest

from keel.archive.archive import read_manifest
from keel.common import errors
from keel.common.errors import DataError
from keel.common.hashing import sha256_file
from keel.pipeline.rebuild import rebuild_archive
from keel.pipeline.train import train_model
from tests.conftest import REPO, SST2_SAMPLE, install_plugin_package


@pytest.fixture
def original(tmp_path, tiny_classifier_config):
    """A tiny classifier trained on copies of the SST-2 sample in tmp_path/data."""
    data = tmp_path / "data"
    shutil.copytree(SST2_SAMPLE, data)
    config = tiny_classifier_config(epochs=1)
    config["train_data_path"] = str(data / "train.tsv")
    config["validation_data_path"] = str(data / "dev.tsv")
    config["golden_sample_size"] = 24
    return train_model(config, tmp_path / "original", quiet=True)


def test_rebuild_in_the_same_environment_is_equivalent_and_bit_identical(original, tmp_path):
    report = rebuild_archive(original.archive_path, tmp_path / "rebuilt")
    assert report.verdict == "equivalent", report.reasons
    assert report.weights_bit_identical
    assert report.reasons == [] and report.causes == []
    assert all(delta["delta"] == 0 for delta in report.metric_deltas.values())
    assert report.golden["compared"] == 24 and report.golden["agreement"] == 1.0
    assert report.validation["compared"] == 120 and report.validation["agreement"] == 1.0
    assert report.validation["score_difference"]["max"] == 0.0
    assert report.environment is not None
    assert report.environment["summary"]["breaking"] == 0
    rebuilt_from = read_manifest(tmp_path / "rebuilt" / "model.tar.gz").rebuilt_from
    assert rebuilt_from is not None
    assert rebuilt_from["sha256"] == sha256_file(original.archive_path)
    assert rebuilt_from["comparison"]["verdict"] == "equivalent"


def test_rebuild_finds_moved_data_by_hash_and_names_what_it_cannot_find(original, tmp_path):
    moved = tmp_path / "elsewhere" / "nested"
    moved.mkdir(parents=True)
    for name in ("train.tsv", "dev.tsv"):
        (tmp_path / "data" / name).rename(moved / f"renamed-{name}")
    with pytest.raises(DataError) as raised:
        rebuild_archive(original.archive_path, tmp_path / "rebuilt")
    assert raised.value.code == errors.DATA_NOT_FOUND
    assert "cannot find the train data" in str(raised.value) and "--data-dir" in str(raised.value)
    report = rebuild_archive(
        original.archive_path, tmp_path / "rebuilt", data_dirs=[tmp_path / "elsewhere"]
    )
    assert {item["path"] for item in report.data} == {
        str(moved / "renamed-train.tsv"),
        str(moved / "renamed-dev.tsv"),
    }
    assert report.equivalent and report.weights_bit_identical


def test_rebuild_refuses_changed_data_unless_allowed_and_then_names_it(original, tmp_path):
    train = tmp_path / "data" / "train.tsv"
    lines = train.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[5] = (
        lines[5].replace("\t1", "\t0") if "\t1" in lines[5] else lines[5].replace("\t0", "\t1")
    )
    train.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(DataError) as raised:
        rebuild_archive(original.archive_path, tmp_path / "rebuilt")
    assert raised.value.code == errors.DATA_NOT_FOUND
    assert f"the train data is {train}, but its bytes differ" in str(raised.value)
    assert "--allow-data-change" in str(raised.value)
    assert not (tmp_path / "rebuilt").exists()  # refused before any training
    report = rebuild_archive(original.archive_path, tmp_path / "rebuilt", allow_data_change=True)
    assert not report.weights_bit_identical
    assert any("the train data changed" in cause for cause in report.causes)
    assert [item["changed"] for item in report.data if item["role"] == "train"] == [True]


_TOKENIZER = """
from keel.data.tokenizers.token import Token
from keel.data.tokenizers.tokenizer import Tokenizer


@Tokenizer.register("{name}")
class CasingTokenizer(Tokenizer):
    def tokenize(self, text):
        return [Token(word{lower}) for word in text.split()]
"""


def test_rebuild_after_a_plugin_tokenizer_change_drifts_naming_the_tokenizer(
    tmp_path, tiny_classifier_config
) -> None:
    name = f"casing_{uuid.uuid4().hex[:8]}"
    src = install_plugin_package(tmp_path, name, _TOKENIZER.format(name=name, lower=""))
    try:
        config = tiny_classifier_config(epochs=1)
        for section in ("dataset_reader", "validation_dataset_reader"):
            config[section]["tokenizer"] = {"type": name}
        original = train_model(config, tmp_path / "original", quiet=True)
        # The plugin's next release lowercases.
        (src / name / "__init__.py").write_text(
            _TOKENIZER.format(name=name, lower=".lower()"), encoding="utf-8"
        )
        importlib.reload(sys.modules[name])
        report = rebuild_archive(original.archive_path, tmp_path / "rebuilt")
    finally:
        sys.path.remove(str(src))
    assert report.verdict == "drifted"
    assert any("tokenizer fingerprint changed" in reason for reason in report.reasons)
    assert any(f"the source of {name} differs" in cause for cause in report.causes)
    # SST-2 is lowercased already, so this data trains the same weights; the probe corpus
    # (mixed case) shows the tokenizer is no longer the archived one.
    assert report.weights_bit_identical


@pytest.mark.slow
def test_rebuild_cli_exit_codes_and_json(original, tmp_path) -> None:
    def keel(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "keel.cli.main", *args],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=REPO,
        )

    same = keel("rebuild", str(original.archive_path), "-s", str(tmp_path / "a"), "--json")
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)["verdict"] == "equivalent"
    (tmp_path / "data" / "dev.tsv").unlink()
    missing = keel("rebuild", str(original.archive_path), "-s", str(tmp_path / "b"))
    assert missing.returncode == 2 and "[KD004]" in missing.stderr
    assert "cannot find the validation data" in missing.stderr
