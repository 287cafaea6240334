"""Every archive format keel ever wrote keeps loading, verifying and predicting.

The archives under tests/fixtures/archives/ were written by earlier keel versions (see the
README there) and are never rewritten; a format change adds new ones beside them.
"""

from __future__ import annotations

import gzip
import json
import tarfile
from pathlib import Path

import pytest

from keel.archive.archive import read_manifest
from keel.archive.model_archive import load_archive
from keel.common.hashing import sha256_file
from keel.guard.archive_diff import diff_archives
from keel.guard.migrate import migrate_archive
from keel.guard.verify import verify_archive
from keel.predict.predictor import Predictor

ARCHIVES = sorted((Path(__file__).parents[1] / "fixtures" / "archives").glob("*.tar.gz"))


def _golden(path: Path) -> dict:
    with gzip.open(path) as raw, tarfile.open(fileobj=raw) as tar:
        member = tar.extractfile("golden/predictions.json")
        assert member is not None
        return json.loads(member.read())


def test_fixture_archives_cover_every_format_this_keel_reads():
    from keel.archive.manifest import READABLE_FORMATS

    names = {path.name for path in ARCHIVES}
    for version in READABLE_FORMATS:
        assert {f"format{version}-classifier.tar.gz", f"format{version}-tagger.tar.gz"} <= names


@pytest.mark.parametrize("path", ARCHIVES, ids=lambda path: path.name)
def test_fixture_archive_verifies_every_step(path):
    # The environment moves on by design (newer keel, torch, ...); every other step must pass.
    report = verify_archive(path, allow_env_drift=True)
    statuses = {step.name: step.status for step in report.checks}
    assert report.ok, [step.to_dict() for step in report.checks if step.status != "pass"]
    assert statuses == {
        "integrity": "pass",
        "environment": "pass",
        "components": "pass",
        "config": "pass",
        "weights": "pass",
        "tokenizer": "pass",
        "preprocessing": "pass",
        "predictions": "pass",
        "data": "skipped",  # no --data given
    }


@pytest.mark.parametrize("path", ARCHIVES, ids=lambda path: path.name)
def test_fixture_archive_loads_and_predicts_its_golden_outputs(path):
    archive = load_archive(path)
    golden = _golden(path)
    predictor = Predictor.from_archive(archive)
    outputs = predictor.predict_batch_json(golden["records"][:8])
    decoded_key = "label" if "label" in outputs[0] else "tags"
    expected = golden["decoded"][:8]
    if golden["format"] >= 2:  # decoded outputs by name
        expected = [item[decoded_key] for item in expected]
    assert [output[decoded_key] for output in outputs] == expected


# -- component migrations: archives written before `cnn` version 2 -----------------------------

BEFORE_CNN_V2 = [path for path in ARCHIVES if "tagger" in path.name or "cnn" in path.name]


def test_fixture_archives_before_cnn_v2_are_the_ones_holding_cnn_v1():
    assert {path.name for path in BEFORE_CNN_V2} >= {
        "components1-cnn-classifier.tar.gz",
        "format1-tagger.tar.gz",
        "format2-tagger.tar.gz",
    }
    for path in BEFORE_CNN_V2:
        cnn = [c for c in read_manifest(path).components or [] if c.name == "cnn"]
        assert cnn and all(component.version == 1 for component in cnn), path.name


@pytest.mark.parametrize("path", BEFORE_CNN_V2, ids=lambda path: path.name)
def test_fixture_archive_with_cnn_v1_is_migrated_on_load(path):
    archive = load_archive(path)
    assert [(m.name, m.from_version, m.to_version) for m in archive.migrations] == [("cnn", 1, 2)]
    assert any(".convolutions.0.weight" in key for key in archive.model.state_dict())


@pytest.mark.parametrize("path", BEFORE_CNN_V2, ids=lambda path: path.name)
def test_fixture_archive_migrates_to_an_archive_that_predicts_identically(path, tmp_path):
    target = tmp_path / "migrated.tar.gz"
    result = migrate_archive(path, target)
    assert result.migrated and "reproduced; max |score difference| 0 " in result.golden_check
    manifest = read_manifest(target)
    assert [c.version for c in manifest.components or [] if c.name == "cnn"] == [2]
    history = manifest.migrations
    assert [(m["name"], m["from_version"], m["to_version"]) for m in history] == [("cnn", 1, 2)]
    assert history[0]["source_sha256"] == sha256_file(path)
    # The environment and data it was trained with are still the original run's.
    assert manifest.environment == read_manifest(path).environment
    assert manifest.data_files == read_manifest(path).data_files
    report = verify_archive(target, allow_env_drift=True)
    assert report.ok, [step.to_dict() for step in report.checks if step.status != "pass"]
    assert load_archive(target).migrations == []
    # Same predictions (labels and logits) as the original archive's golden file.
    golden, migrated_golden = _golden(path), _golden(target)
    assert migrated_golden["records"] == golden["records"]
    key = "label" if "label" in str(migrated_golden["decoded"][0]) else "tags"
    if golden["format"] >= 2:
        assert migrated_golden["decoded"] == golden["decoded"]
        assert migrated_golden["scores"] == golden["scores"]
    else:
        assert [item[key] for item in migrated_golden["decoded"]] == golden["decoded"]
    assert diff_archives(path, target).identical
