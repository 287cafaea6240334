"""A linear-chain conditional random field: forward-algorithm log-likelihood, Viterbi decoding.

Both are vectorised over the batch and the tag pairs; only time is looped over. Masks must be
left-aligned (every sequence's real positions come first), as text-field masks are.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from keel.common import errors
from keel.common.errors import ConfigurationError, ModelError
from keel.data.span_utils import split_tag
from keel.data.vocabulary import DEFAULT_OOV_TOKEN, DEFAULT_PADDING_TOKEN

VITERBI_TAGS = list[tuple[list[int], float]]


def is_transition_allowed(
    constraint_type: str, from_tag: str, from_entity: str, to_tag: str, to_entity: str
) -> bool:
    """Whether ``from_tag-from_entity`` may be followed by ``to_tag-to_entity`` in a scheme.

    ``START`` and ``END`` are the sequence boundaries; their entity is ``""``.
    """
    if to_tag == "START" or from_tag == "END":
        return False
    same = from_entity == to_entity
    if constraint_type == "BIOUL":
        if from_tag == "START":
            return to_tag in ("O", "B", "U")
        if to_tag == "END":
            return from_tag in ("O", "L", "U")
        if from_tag in ("O", "L", "U"):
            return to_tag in ("O", "B", "U")
        # Inside a span (B or I): only I or L of the same type may follow.
        return to_tag in ("I", "L") and same
    if constraint_type == "BIO":
        if from_tag == "START":
            return to_tag in ("O", "B")
        if to_tag == "END":
            return True
        if to_tag in ("O", "B"):
            return True
        # I-X continues a span of type X only.
        return to_tag == "I" and from_tag in ("B", "I") and same
    if constraint_type == "IOB1":
        if from_tag == "START":
            return to_tag in ("O", "I")
        if to_tag == "END":
            return True
        if to_tag in ("O", "I"):
            return True
        # B-X only separates two adjacent spans of type X.
        return to_tag == "B" and from_tag in ("B", "I") and same
    raise ConfigurationError(
        f"unknown constraint type {constraint_type!r}; expected one of BIOUL, BIO, IOB1",
        code=errors.BAD_VALUE,
    )


def allowed_transitions(constraint_type: str, labels: Mapping[int, str]) -> list[tuple[int, int]]:
    """Allowed ``(from, to)`` index pairs for the labels of a tag vocabulary (index -> tag).

    Index ``len(labels)`` stands for START and ``len(labels) + 1`` for END, as in AllenNLP.
    """
    num_labels = len(labels)
    start_tag, end_tag = num_labels, num_labels + 1
    parsed: list[tuple[int, str, str]] = []
    for index, label in labels.items():
        if label in (DEFAULT_PADDING_TOKEN, DEFAULT_OOV_TOKEN):
            continue  # a padded tag namespace's specials: never part of a decoded path
        try:
            tag, entity = split_tag(label)
        except ValueError as error:
            raise ConfigurationError(
                f"label {label!r} cannot be constrained as {constraint_type}: {error}",
                code=errors.BAD_VALUE,
            ) from error
        # split_tag reads BIOUL's L/U as conlleval's E/S; constraints speak BIOUL.
        tag = {"E": "L", "S": "U"}.get(tag, tag)
        parsed.append((index, tag, entity))
    parsed += [(start_tag, "START", ""), (end_tag, "END", "")]
    allowed = []
    for from_index, from_tag, from_entity in parsed:
        for to_index, to_tag, to_entity in parsed:
            if is_transition_allowed(constraint_type, from_tag, from_entity, to_tag, to_entity):
                allowed.append((from_index, to_index))
    return allowed


class ConditionalRandomField(torch.nn.Module):
    """A CRF over ``num_tags`` tags.

    ``constraints`` (from :func:`allowed_transitions`) restrict decoding only: the likelihood is
    computed over all transitions, as AllenNLP does, so an ill-formed gold sequence never gives an
    infinite loss.
    """

    _constraint_mask: torch.Tensor  # a buffer: (num_tags + 2, num_tags + 2) allowed transitions

    def __init__(
        self,
        num_tags: int,
        constraints: list[tuple[int, int]] | None = None,
        include_start_end_transitions: bool = True,
    ) -> None:
        super().__init__()
        self.num_tags = num_tags
        self.include_start_end_transitions = include_start_end_transitions
        self.transitions = torch.nn.Parameter(torch.empty(num_tags, num_tags))
        if include_start_end_transitions:
            self.start_transitions = torch.nn.Parameter(torch.zeros(num_tags))
            self.end_transitions = torch.nn.Parameter(torch.zeros(num_tags))
        if constraints is None:
            mask = torch.ones(num_tags + 2, num_tags + 2, dtype=torch.bool)
        else:
            mask = torch.zeros(num_tags + 2, num_tags + 2, dtype=torch.bool)
            for from_index, to_index in constraints:
                mask[from_index, to_index] = True
        # Derived from config + vocabulary, so it is rebuilt, not stored with the weights.
        self.register_buffer("_constraint_mask", mask, persistent=False)
        torch.nn.init.xavier_normal_(self.transitions)

    def forward(
        self, inputs: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Summed log-likelihood of ``tags`` (B, T) given emission scores ``inputs`` (B, T, N)."""
        if mask is None:
            mask = torch.ones(tags.shape, dtype=torch.bool, device=tags.device)
        mask = mask.bool()
        self._check(inputs, mask)
        # Sums over many steps: keep them in float32 even when the emissions come in half.
        inputs = inputs.float()
        if inputs.shape[1] == 0:
            return inputs.new_zeros(())
        log_partition = self._log_partition(inputs, mask)
        gold = self._gold_score(inputs, tags, mask)
        # An empty sequence has nothing to score.
        return torch.where(mask[:, 0], gold - log_partition, 0.0).sum()

    def _check(self, inputs: torch.Tensor, mask: torch.Tensor) -> None:
        if inputs.dim() != 3 or inputs.shape[2] != self.num_tags:
            raise ModelError(
                f"CRF expects emission scores (batch, time, {self.num_tags}); "
                f"got shape {tuple(inputs.shape)}",
                code=errors.SHAPE_MISMATCH,
            )
        if mask.shape != inputs.shape[:2]:
            raise ModelError(
                f"CRF mask shape {tuple(mask.shape)} does not match inputs "
                f"{tuple(inputs.shape[:2])}",
                code=errors.SHAPE_MISMATCH,
            )

    def _log_partition(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        _, length, _ = logits.shape
        alpha = logits[:, 0]
        if self.include_start_end_transitions:
            alpha = alpha + self.start_transitions
        transitions = self.transitions.unsqueeze(0)
        for t in range(1, length):
            # (B, from, 1) + (1, from, to) + (B, 1, to), summed out over ``from``.
            scores = alpha.unsqueeze(2) + transitions + logits[:, t].unsqueeze(1)
            alpha = torch.where(mask[:, t : t + 1], torch.logsumexp(scores, dim=1), alpha)
        if self.include_start_end_transitions:
            alpha = alpha + self.end_transitions
        return torch.logsumexp(alpha, dim=1)

    def _gold_score(
        self, logits: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        tags = tags.long() * mask
        emissions = logits.gather(2, tags.unsqueeze(2)).squeeze(2)
        score = (emissions * mask).sum(dim=1)
        if tags.shape[1] > 1:
            steps = self.transitions[tags[:, :-1], tags[:, 1:]]
            score = score + (steps * mask[:, 1:]).sum(dim=1)
        if self.include_start_end_transitions:
            last = (mask.sum(dim=1) - 1).clamp(min=0)
            last_tags = tags.gather(1, last.unsqueeze(1)).squeeze(1)
            score = score + self.start_transitions[tags[:, 0]] + self.end_transitions[last_tags]
        return score

    @torch.no_grad()
    def viterbi_tags(
        self, logits: torch.Tensor, mask: torch.Tensor | None = None, top_k: int | None = None
    ) -> list[VITERBI_TAGS] | VITERBI_TAGS:
        """Best tag sequences and their scores, per instance.

        Without ``top_k``: one ``(tags, score)`` per instance. With ``top_k``: a list of up to
        ``top_k`` of them per instance, best first (fewer when fewer allowed paths exist).
        """
        if mask is None:
            mask = torch.ones(logits.shape[:2], dtype=torch.bool, device=logits.device)
        mask = mask.bool()
        self._check(logits, mask)
        k = 1 if top_k is None else top_k
        paths, scores = self._viterbi(logits.float(), mask, k)
        lengths = mask.sum(dim=1).tolist()
        paths_list, scores_list = paths.tolist(), scores.tolist()
        results: list[VITERBI_TAGS] = []
        for b, length in enumerate(lengths):
            best = [
                (paths_list[b][i][:length], scores_list[b][i])
                for i in range(k)
                if scores_list[b][i] != float("-inf")
            ]
            results.append(best)
        if top_k is None:
            return [result[0] if result else ([], float("-inf")) for result in results]
        return results

    @torch.no_grad()
    def decode(self, logits: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The best path per instance as tensors: tags (B, T) (padding positions hold a copy of
        the last real tag) and scores (B,)."""
        mask = mask.bool()
        self._check(logits, mask)
        paths, scores = self._viterbi(logits.float(), mask, 1)
        return paths[:, 0], scores[:, 0]

    def _viterbi(
        self, logits: torch.Tensor, mask: torch.Tensor, k: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """k-best Viterbi: paths (B, k, T) and scores (B, k)."""
        batch, length, num_tags = logits.shape
        if length == 0:
            empty = torch.zeros(batch, k, 0, dtype=torch.long, device=logits.device)
            return empty, logits.new_zeros(batch, k)
        neg_inf = torch.tensor(float("-inf"), device=logits.device)
        allowed = self._constraint_mask
        transitions = torch.where(allowed[:num_tags, :num_tags], self.transitions.float(), neg_inf)
        start = torch.where(allowed[num_tags, :num_tags], 0.0, neg_inf)
        end = torch.where(allowed[:num_tags, num_tags + 1], 0.0, neg_inf)
        if self.include_start_end_transitions:
            start = start + self.start_transitions.float()
            end = end + self.end_transitions.float()

        # State (B, N*k): slot n*k + j is the j-th best path ending in tag n; at t=0 only j=0.
        first = logits[:, 0] + start
        score = torch.full((batch, num_tags, k), float("-inf"), device=logits.device)
        score[:, :, 0] = first
        score = score.reshape(batch, num_tags * k)
        stay = torch.arange(num_tags * k, device=logits.device).reshape(num_tags, k).T
        stay = stay.unsqueeze(0).expand(batch, k, num_tags)
        # Per tag the k best predecessors, laid out (B, k, to): ids into the (N*k) state.
        backpointers = []
        step_transitions = transitions.repeat_interleave(k, dim=0).unsqueeze(0)
        for t in range(1, length):
            candidates = score.unsqueeze(2) + step_transitions + logits[:, t].unsqueeze(1)
            best, index = candidates.topk(k, dim=1)
            live = mask[:, t].view(batch, 1, 1)
            # A padded step keeps every path as it is.
            new_score = torch.where(live, best, score.reshape(batch, num_tags, k).transpose(1, 2))
            backpointers.append(torch.where(live, index, stay))
            score = new_score.transpose(1, 2).reshape(batch, num_tags * k)
        final = score + end.repeat_interleave(k)
        best_scores, best_states = final.topk(k, dim=1)

        paths = torch.empty(batch, k, length, dtype=torch.long, device=logits.device)
        state = best_states  # (B, k) ids into the (N*k) state
        paths[:, :, length - 1] = state // k
        for t in range(length - 2, -1, -1):
            # backpointers[t] is (B, k, N): slot j of tag n at t+1 -> its state at t.
            flat = backpointers[t].transpose(1, 2).reshape(batch, num_tags * k)
            state = flat.gather(1, state)
            paths[:, :, t] = state // k
        return paths, best_scores
