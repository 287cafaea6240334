"""A tagger end to end through the CLI: the CoNLL-2003 example config, then keel predict."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

FIXTURE = REPO / "tests" / "fixtures" / "tagging" / "conll2003_iob1.txt"
CONFIG = REPO / "examples" / "conll2003" / "crf_tagger.jsonnet"


def keel(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "keel.cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.slow
def test_cli_tagger_trains_from_the_example_and_predicts_tags_and_spans(tmp_path) -> None:
    run = tmp_path / "ner"
    keel(
        "train",
        str(CONFIG),
        "-s",
        str(run),
        "--quiet",
        "--ext-var",
        f"train_path={FIXTURE}",
        "--ext-var",
        f"validation_path={FIXTURE}",
        "--overrides",
        '{"trainer": {"num_epochs": 40, "patience": null}, '
        '"vocabulary": {"min_count": {"tokens": 1}}}',
    )
    lines = '{"sentence": "Maria Lopez visited Oslo ."}\n{"tokens": ["Acme", "Corp", "hired"]}\n'
    rows = [
        json.loads(line)
        for line in keel("predict", str(run / "model.tar.gz"), "-", stdin=lines).stdout.splitlines()
    ]
    assert rows[0]["words"] == ["Maria", "Lopez", "visited", "Oslo", "."]
    assert rows[1]["words"] == ["Acme", "Corp", "hired"]
    for row in rows:
        assert len(row["tags"]) == len(row["words"])
        assert all(tag == "O" or tag[:2] in {"B-", "I-", "L-", "U-"} for tag in row["tags"])
        for span in row["spans"]:
            assert row["words"][span["start"] : span["end"] + 1] == span["text"].split()
    # The spans are exactly the ones the BIOUL tags encode.
    from keel.data.span_utils import bioul_tags_to_spans

    for row in rows:
        expected = {(label, start, end) for label, (start, end) in bioul_tags_to_spans(row["tags"])}
        assert {(s["label"], s["start"], s["end"]) for s in row["spans"]} == expected
