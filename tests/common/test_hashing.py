import hashlib
import shutil
import subprocess

import pytest

from keel.common import errors
from keel.common.errors import DataError
from keel.common.hashing import FileHash, hash_file, hash_stream, sha256sum_line

SHA256_ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
SHA256_EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_hashing_known_digest_and_size(tmp_path):
    path = tmp_path / "abc.txt"
    path.write_bytes(b"abc")
    result = hash_file(path)
    assert result == FileHash(path=str(path), sha256=SHA256_ABC, size=3)


def test_hashing_empty_file(tmp_path):
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert hash_file(path).sha256 == SHA256_EMPTY
    assert hash_file(path).size == 0


def test_hashing_streams_through_a_buffer_smaller_than_the_file(tmp_path):
    data = bytes(range(256)) * 41 + b"tail"
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    result = hash_file(path, buffer_size=7)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.size == len(data)


def test_hashing_stream_without_readinto():
    class Chunks:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def read(self, size: int) -> bytes:
            chunk, self.data = self.data[:size], self.data[size:]
            return chunk

    assert hash_stream(Chunks(b"abc" * 1000), buffer_size=10) == (
        hashlib.sha256(b"abc" * 1000).hexdigest(),
        3000,
    )


def test_hashing_missing_file_is_a_data_not_found_error(tmp_path):
    with pytest.raises(DataError) as raised:
        hash_file(tmp_path / "nope.tsv")
    assert raised.value.code == errors.DATA_NOT_FOUND
    assert "nope.tsv" in str(raised.value)


def test_hashing_directory_is_an_error(tmp_path):
    with pytest.raises(DataError) as raised:
        hash_file(tmp_path)
    assert raised.value.code == errors.DATA_NOT_FOUND


def test_hashing_file_hash_round_trips_through_dict(tmp_path):
    record = FileHash(path="train.tsv", sha256=SHA256_ABC, size=3)
    assert FileHash.from_dict(record.to_dict()) == record
    assert record.to_dict() == {"path": "train.tsv", "sha256": SHA256_ABC, "size": 3}


@pytest.mark.parametrize(
    ("name", "line"),
    [
        ("plain.txt", f"{SHA256_ABC}  plain.txt"),
        ("with space", f"{SHA256_ABC}  with space"),
        ("back\\slash", f"\\{SHA256_ABC}  back\\\\slash"),
        ("new\nline", f"\\{SHA256_ABC}  new\\nline"),
        ("carriage\rreturn", f"\\{SHA256_ABC}  carriage\\rreturn"),
    ],
)
def test_hashing_sha256sum_line_escapes_like_gnu_coreutils(name, line):
    assert sha256sum_line(SHA256_ABC, name) == line


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="needs GNU sha256sum")
def test_hashing_lines_match_and_pass_sha256sum_check(tmp_path):
    names = ["a.txt", "sp ace", "back\\slash", "new\nline", "ünï"]
    for index, name in enumerate(names):
        (tmp_path / name).write_bytes(b"x" * index)
    lines = [sha256sum_line(hash_file(tmp_path / n).sha256, n) + "\n" for n in names]
    ours = "".join(lines)
    gnu = subprocess.run(
        ["sha256sum", *names], cwd=tmp_path, capture_output=True, check=True
    ).stdout.decode("utf-8")
    assert ours == gnu
    (tmp_path / "SUMS").write_text(ours, encoding="utf-8")
    check = subprocess.run(["sha256sum", "-c", "SUMS"], cwd=tmp_path, capture_output=True)
    assert check.returncode == 0, check.stdout + check.stderr
