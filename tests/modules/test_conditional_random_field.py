"""The CRF against brute-force enumeration of every tag sequence on tiny inputs."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from keel.common.errors import ConfigurationError, ModelError
from keel.modules.conditional_random_field import ConditionalRandomField, allowed_transitions

TOL = 1e-5


def _crf(num_tags: int, seed: int = 0, **kwargs) -> ConditionalRandomField:
    torch.manual_seed(seed)
    crf = ConditionalRandomField(num_tags, **kwargs)
    with torch.no_grad():
        crf.transitions.normal_()
        if crf.include_start_end_transitions:
            crf.start_transitions.normal_()
            crf.end_transitions.normal_()
    return crf


def _path_score(crf, logits, path, allowed=None) -> float:
    """Score of one path by direct summation; -inf when it uses a forbidden transition."""
    n = crf.num_tags
    logits = logits.detach()
    transitions = crf.transitions.detach()
    score = sum(float(logits[t, tag]) for t, tag in enumerate(path))
    score += sum(float(transitions[a, b]) for a, b in itertools.pairwise(path))
    if crf.include_start_end_transitions:
        score += float(crf.start_transitions.detach()[path[0]])
        score += float(crf.end_transitions.detach()[path[-1]])
    if allowed is not None:
        steps = [(n, path[0])] + list(itertools.pairwise(path)) + [(path[-1], n + 1)]
        if any(step not in allowed for step in steps):
            return float("-inf")
    return score


def _all_paths(crf, logits, length, allowed=None):
    paths = itertools.product(range(crf.num_tags), repeat=length)
    return sorted(
        ((_path_score(crf, logits, p, allowed), list(p)) for p in paths),
        key=lambda item: -item[0],
    )


@pytest.mark.parametrize("include_start_end", [True, False])
def test_conditional_random_field_log_likelihood_matches_brute_force(include_start_end):
    crf = _crf(3, include_start_end_transitions=include_start_end)
    torch.manual_seed(1)
    logits = torch.randn(2, 4, 3)
    tags = torch.tensor([[0, 2, 1, 1], [2, 0, 0, 0]])
    mask = torch.tensor([[True] * 4, [True, True, False, False]])
    expected = 0.0
    for b, length in enumerate([4, 2]):
        scores = [s for s, _ in _all_paths(crf, logits[b], length)]
        log_z = math.log(sum(math.exp(s) for s in scores))
        gold = _path_score(crf, logits[b], tags[b, :length].tolist())
        expected += gold - log_z
    got = crf(logits, tags, mask)
    assert got.item() == pytest.approx(expected, abs=TOL)


def test_conditional_random_field_log_likelihood_is_differentiable_and_negative():
    crf = _crf(4)
    logits = torch.randn(3, 5, 4, requires_grad=True)
    tags = torch.randint(0, 4, (3, 5))
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]]).bool()
    log_likelihood = crf(logits, tags, mask)
    assert log_likelihood.item() < 0
    log_likelihood.backward()
    assert crf.transitions.grad is not None and logits.grad is not None
    # Padded positions do not influence the likelihood.
    assert torch.all(logits.grad[1, 3:] == 0) and torch.all(logits.grad[2, 1:] == 0)


def test_conditional_random_field_padding_values_do_not_change_results():
    crf = _crf(3)
    logits = torch.randn(1, 5, 3)
    tags = torch.tensor([[1, 2, 0, 0, 0]])
    mask = torch.tensor([[True, True, False, False, False]])
    other = logits.clone()
    other[:, 2:] = 100.0
    other_tags = tags.clone()
    other_tags[:, 2:] = 2
    assert crf(logits, tags, mask).item() == pytest.approx(crf(other, other_tags, mask).item())
    assert crf.viterbi_tags(logits, mask) == crf.viterbi_tags(other, mask)


@pytest.mark.parametrize("include_start_end", [True, False])
def test_conditional_random_field_viterbi_matches_brute_force(include_start_end):
    crf = _crf(3, seed=3, include_start_end_transitions=include_start_end)
    torch.manual_seed(4)
    logits = torch.randn(3, 5, 3)
    lengths = [5, 3, 1]
    mask = torch.arange(5).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    decoded = crf.viterbi_tags(logits, mask)
    for b, length in enumerate(lengths):
        best_score, best_path = _all_paths(crf, logits[b], length)[0]
        path, score = decoded[b]
        assert path == best_path
        assert score == pytest.approx(best_score, abs=TOL)


def test_conditional_random_field_top_k_matches_brute_force():
    crf = _crf(3, seed=5)
    torch.manual_seed(6)
    logits = torch.randn(2, 4, 3)
    mask = torch.tensor([[True] * 4, [True, True, True, False]])
    k = 5
    decoded = crf.viterbi_tags(logits, mask, top_k=k)
    for b, length in enumerate([4, 3]):
        expected = _all_paths(crf, logits[b], length)[:k]
        assert [path for path, _ in decoded[b]] == [path for _, path in expected]
        for (_, score), (expected_score, _) in zip(decoded[b], expected, strict=True):
            assert score == pytest.approx(expected_score, abs=TOL)


def test_conditional_random_field_top_k_returns_fewer_when_fewer_paths_exist():
    crf = _crf(2)
    logits = torch.randn(1, 2, 2)
    decoded = crf.viterbi_tags(logits, top_k=10)
    assert len(decoded[0]) == 4  # 2 tags ** 2 positions
    assert len({tuple(path) for path, _ in decoded[0]}) == 4


LABELS_BIO = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}


def test_conditional_random_field_constrained_viterbi_matches_constrained_brute_force():
    allowed = allowed_transitions("BIO", LABELS_BIO)
    crf = _crf(5, seed=7, constraints=allowed)
    torch.manual_seed(8)
    logits = torch.randn(2, 4, 5)
    # Push the unconstrained best toward illegal I- tags.
    logits[:, :, 2] += 1.5
    logits[:, :, 4] += 1.5
    mask = torch.tensor([[True] * 4, [True, True, True, False]])
    allowed_set = set(allowed)
    decoded = crf.viterbi_tags(logits, mask, top_k=3)
    for b, length in enumerate([4, 3]):
        expected = _all_paths(crf, logits[b], length, allowed_set)[:3]
        assert [path for path, _ in decoded[b]] == [path for _, path in expected]
        unconstrained_best = _all_paths(crf, logits[b], length)[0][1]
        assert unconstrained_best != expected[0][1]  # the constraint really bit


def test_conditional_random_field_constraints_do_not_change_the_likelihood():
    allowed = allowed_transitions("BIO", LABELS_BIO)
    free, constrained = _crf(5, seed=9), _crf(5, seed=9, constraints=allowed)
    logits = torch.randn(1, 3, 5)
    illegal_gold = torch.tensor([[0, 2, 4]])  # O I-PER I-LOC: ill-formed, still finite
    assert torch.isfinite(constrained(logits, illegal_gold))
    assert constrained(logits, illegal_gold).item() == pytest.approx(
        free(logits, illegal_gold).item()
    )


def test_conditional_random_field_constraint_mask_is_not_saved_with_weights():
    crf = _crf(5, constraints=allowed_transitions("BIO", LABELS_BIO))
    assert set(crf.state_dict()) == {"transitions", "start_transitions", "end_transitions"}


def test_allowed_transitions_bio():
    allowed = set(allowed_transitions("BIO", LABELS_BIO))
    start, end = 5, 6
    assert (start, 1) in allowed and (start, 0) in allowed
    assert (start, 2) not in allowed  # I-PER cannot open a sentence
    assert (0, 2) not in allowed  # O -> I-PER
    assert (1, 2) in allowed and (2, 2) in allowed  # B-PER/I-PER -> I-PER
    assert (1, 4) not in allowed  # B-PER -> I-LOC
    assert (2, end) in allowed and (0, end) in allowed
    assert not any(to == start for _, to in allowed)
    assert not any(frm == end for frm, _ in allowed)


def test_allowed_transitions_bioul():
    labels = {0: "O", 1: "B-PER", 2: "I-PER", 3: "L-PER", 4: "U-PER", 5: "U-LOC"}
    allowed = set(allowed_transitions("BIOUL", labels))
    start, end = 6, 7
    assert {(start, 0), (start, 1), (start, 4)} <= allowed
    assert (start, 2) not in allowed and (start, 3) not in allowed
    assert (1, 2) in allowed and (1, 3) in allowed and (2, 3) in allowed
    assert (1, 0) not in allowed and (1, end) not in allowed  # an open span must close with L
    assert (2, 5) not in allowed
    assert (3, 4) in allowed and (4, 5) in allowed and (3, end) in allowed
    assert (0, 3) not in allowed and (4, 2) not in allowed


def test_allowed_transitions_iob1():
    labels = {0: "O", 1: "I-PER", 2: "B-PER", 3: "I-LOC", 4: "B-LOC"}
    allowed = set(allowed_transitions("IOB1", labels))
    start, end = 5, 6
    assert (start, 1) in allowed and (start, 2) not in allowed
    assert (0, 1) in allowed and (0, 2) not in allowed  # B-X only after an X span
    assert (1, 2) in allowed and (2, 2) in allowed
    assert (1, 4) not in allowed  # B-LOC may not follow a PER span
    assert (1, 3) in allowed  # I-LOC after I-PER starts a new span
    assert (3, end) in allowed


def test_allowed_transitions_rejects_unknown_scheme_and_bad_labels():
    with pytest.raises(ConfigurationError, match="unknown constraint type"):
        allowed_transitions("BMESX", LABELS_BIO)
    with pytest.raises(ConfigurationError, match="NOUN"):
        allowed_transitions("BIO", {0: "NOUN", 1: "VERB"})


def test_conditional_random_field_rejects_wrong_shapes():
    crf = _crf(3)
    with pytest.raises(ModelError, match="emission scores"):
        crf(torch.randn(1, 2, 4), torch.zeros(1, 2, dtype=torch.long))


def test_conditional_random_field_handles_empty_batches_of_time():
    crf = _crf(3)
    logits = torch.zeros(2, 0, 3)
    mask = torch.zeros(2, 0, dtype=torch.bool)
    assert crf(logits, torch.zeros(2, 0, dtype=torch.long), mask).item() == 0.0
    assert crf.viterbi_tags(logits, mask) == [([], 0.0), ([], 0.0)]
