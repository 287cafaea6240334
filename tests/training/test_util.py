import random

import numpy
import pytest
import torch

from keel.training.util import (
    get_rng_state,
    peak_cpu_memory_mb,
    prepare_environment,
    set_deterministic,
    set_rng_state,
)


def _draws() -> tuple[float, float, list[float]]:
    return random.random(), float(numpy.random.rand()), torch.rand(3).tolist()


def test_util_prepare_environment_reproduces_every_generator():
    prepare_environment(1, 2, 3)
    first = _draws()
    prepare_environment(1, 2, 3)
    assert _draws() == first
    prepare_environment(1, 2, 4)
    other = _draws()
    assert other[:2] == first[:2]
    assert other[2] != first[2]


def test_util_none_seed_leaves_generator_alone():
    prepare_environment(1, 2, 3)
    random.random()
    expected_next = random.getstate()
    prepare_environment(None, 2, 3)
    assert random.getstate() == expected_next


def test_util_deterministic_switch():
    try:
        prepare_environment(deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic
        assert not torch.backends.cudnn.benchmark
    finally:
        set_deterministic(False)
    assert not torch.are_deterministic_algorithms_enabled()


def test_util_rng_state_round_trips_through_weights_only_file(tmp_path):
    prepare_environment(5, 6, 7)
    numpy.random.randn()  # leaves a cached gaussian in numpy's state
    state = get_rng_state()
    path = tmp_path / "rng.pt"
    torch.save(state, path)
    expected = _draws()
    _draws()
    set_rng_state(torch.load(path, weights_only=True))
    assert _draws() == expected


def test_util_peak_memory_is_positive():
    assert peak_cpu_memory_mb() > 1.0


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only code path")
def test_util_rng_state_without_cuda_has_no_cuda_entry():
    assert "cuda" not in get_rng_state()
