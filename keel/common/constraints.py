"""Value constraints and parameter roles, written in constructor signatures with ``Annotated``.

The constructor signature is the config schema, constraints included::

    def __init__(
        self,
        vocab: Annotated[Vocabulary, Supplied],        # passed at run time, never in a config
        hidden_size: Annotated[int, Positive],           # > 0
        dropout: Annotated[float, Range(ge=0, lt=1)] = 0.0,
        train_data_path: Annotated[str, DataFile],       # must name an existing file
    ) -> None:

``validate`` checks every constraint before anything is built and reports a violation like any
other config error: with its dotted path, what was expected and the value found.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any


class Constraint:
    """A check on a config value; ``problem`` says what is wrong, or None when nothing is."""

    #: what a valid value looks like, for error messages and generated docs
    description = "a valid value"

    def problem(self, value: Any) -> str | None:
        raise NotImplementedError


@dataclass(frozen=True)
class Range(Constraint):
    """A number within bounds; NaN is never within any. ``gt``/``ge``/``lt``/``le`` as in
    pydantic's ``Field``."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None

    @property
    def description(self) -> str:  # type: ignore[override]
        parts = [
            f"{symbol} {bound:g}"
            for symbol, bound in ((">", self.gt), (">=", self.ge), ("<", self.lt), ("<=", self.le))
            if bound is not None
        ]
        return "a number " + " and ".join(parts) if parts else "a number"

    def problem(self, value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None  # a wrong type is reported by the type check
        if isinstance(value, float) and math.isnan(value):
            return "NaN is not a number here"
        if (
            (self.gt is not None and not value > self.gt)
            or (self.ge is not None and not value >= self.ge)
            or (self.lt is not None and not value < self.lt)
            or (self.le is not None and not value <= self.le)
        ):
            return f"out of range (must be {self.description.removeprefix('a number ')})"
        return None


@dataclass(frozen=True)
class ExistingFile(Constraint):
    """A path to a file that must exist when the config is validated, so a missing data file
    is reported with the other config errors, before any folder is created or data read."""

    description = "the path of an existing file"

    def problem(self, value: Any) -> str | None:
        if not isinstance(value, str | os.PathLike):
            return None
        if not os.path.exists(value):
            return "no such file"
        if os.path.isdir(value):
            return "is a directory, not a file"
        return None


@dataclass(frozen=True)
class _Supplied:
    """Marks a parameter the framework passes at run time (the vocabulary, the model, the
    training instances, ...): a config never gives it, and validation treats it as given."""

    def __repr__(self) -> str:
        return "Supplied"


Supplied = _Supplied()
#: a data file the config names; checked when a training config is validated
DataFile = ExistingFile()
Positive = Range(gt=0)
NonNegative = Range(ge=0)
#: a probability, e.g. a dropout rate
Probability = Range(ge=0, le=1)
#: a learning rate or similar: zero (frozen) or positive, and representable in float32 (the
#: optimizers multiply float32 tensors by it; a larger value fails inside torch)
NonNegativeFinite = Range(ge=0, le=3.4e38)


def constraints_of(metadata: tuple[Any, ...]) -> list[Constraint]:
    """The constraints among ``Annotated`` metadata."""
    return [item for item in metadata if isinstance(item, Constraint)]


def is_supplied(metadata: tuple[Any, ...]) -> bool:
    """Whether ``Annotated`` metadata marks a run-time-supplied parameter."""
    return any(item is Supplied for item in metadata)
