"""``Lazy[T]``: a component whose construction waits for run-time objects."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Lazy(Generic[T]):
    """A validated config for a ``T`` that is built later with extras, e.g. model parameters.

    ``Lazy[Optimizer]`` in a constructor signature receives one of these; call
    ``construct(model_parameters=...)`` when the parameters exist.
    """

    def __init__(self, annotation: Any, config: Any, path: str = "") -> None:
        self.annotation = annotation
        self.config = config
        self.path = path

    def construct(self, **extras: Any) -> T:
        from keel.common.from_params import build

        return build(self.annotation, self.config, path=self.path, extras=extras)

    def __repr__(self) -> str:
        name = getattr(self.annotation, "__name__", repr(self.annotation))
        return f"Lazy[{name}]({self.config!r})"
