"""AllenNLP ``weights.th``: tensors load, anything else is refused without being unpickled."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from keel.archive.allennlp import read_allennlp_weights
from keel.common import errors
from keel.common.errors import ArchiveError


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
