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

from keel.archive.model_archive import load_archive
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
