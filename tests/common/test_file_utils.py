import json
import os

import pytest

from keel.common.file_utils import (
    atomic_directory,
    atomic_open,
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    remove_stale_temporaries,
)


class Interrupted(Exception):
    pass


def test_file_utils_atomic_write_text_replaces_content(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    atomic_write_text(target, "first")
    atomic_write_text(target, "second")
    assert target.read_text() == "second"
    assert os.listdir(target.parent) == ["a.txt"]


def test_file_utils_atomic_write_json_and_bytes(tmp_path):
    atomic_write_json(tmp_path / "m.json", {"epoch": 3, "loss": 0.5})
    assert json.loads((tmp_path / "m.json").read_text()) == {"epoch": 3, "loss": 0.5}
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"


def test_file_utils_interrupted_write_leaves_old_file_and_no_partial(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(Interrupted), atomic_open(target) as handle:
        handle.write("half of the new cont")
        handle.flush()
        raise Interrupted
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_file_utils_interrupted_first_write_creates_nothing(tmp_path):
    target = tmp_path / "weights.safetensors"
    with pytest.raises(Interrupted), atomic_path(target) as temp:
        temp.write_bytes(b"partial")
        raise Interrupted
    assert os.listdir(tmp_path) == []


def test_file_utils_unserializable_json_leaves_nothing(tmp_path):
    with pytest.raises(TypeError):
        atomic_write_json(tmp_path / "m.json", {"bad": object()})
    assert os.listdir(tmp_path) == []


def test_file_utils_atomic_directory_appears_complete_or_not_at_all(tmp_path):
    target = tmp_path / "checkpoints" / "epoch_0"
    with pytest.raises(Interrupted), atomic_directory(target) as temp:
        (temp / "model.safetensors").write_bytes(b"x")
        raise Interrupted
    assert not target.exists()
    assert os.listdir(tmp_path / "checkpoints") == []
    with atomic_directory(target) as temp:
        (temp / "model.safetensors").write_bytes(b"x")
        (temp / "training_state.pt").write_bytes(b"y")
    assert sorted(os.listdir(target)) == ["model.safetensors", "training_state.pt"]
    assert os.listdir(tmp_path / "checkpoints") == ["epoch_0"]


def test_file_utils_atomic_open_rejects_append(tmp_path):
    with pytest.raises(ValueError), atomic_open(tmp_path / "a.txt", "a"):
        pass


def test_file_utils_remove_stale_temporaries(tmp_path):
    (tmp_path / ".epoch_3.abc.tmp").mkdir()
    (tmp_path / ".best.safetensors.x1.tmp").write_bytes(b"")
    (tmp_path / "epoch_2").mkdir()
    removed = remove_stale_temporaries(tmp_path)
    assert len(removed) == 2
    assert os.listdir(tmp_path) == ["epoch_2"]


def test_file_utils_published_files_honour_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        with atomic_directory(tmp_path / "d") as temp:
            (temp / "f").write_text("y")
    finally:
        os.umask(previous)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755
