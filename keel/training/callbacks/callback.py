"""The ``TrainerCallback`` base class: what the trainer calls, and when.

AllenNLP's hooks and arguments: ``on_start`` before the first epoch, ``on_batch`` after each
optimizer step (training) and each validation batch, ``on_epoch`` after each epoch's
validation, ``on_end`` after the last epoch. keel adds ``on_error`` (training failed: close
what you opened) and ``on_archive`` (the train pipeline wrote the archive, and with
``wants_verdict`` ran ``keel verify`` on it). ``state_dict``/``load_state_dict`` travel in the
checkpoints, so a ``--recover`` run continues where the interrupted one stopped. In a
distributed run every rank calls the hooks; ``is_primary`` is True on rank 0 only, where files
are written.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar

from keel.common.constraints import Supplied
from keel.common.registry import Registrable


class TrainerCallback(Registrable):
    """A hook into the training loop; ``serialization_dir`` is supplied by the trainer."""

    #: whether ``on_archive`` wants the verify verdict of the new archive (costs a verify run)
    wants_verdict: ClassVar[bool] = False

    def __init__(self, serialization_dir: Annotated[str, Supplied]) -> None:
        self.serialization_dir = Path(serialization_dir)

    def on_start(self, trainer: Any, is_primary: bool = True, **kwargs: Any) -> None:
        """Before the first epoch (also of a recovered run)."""

    def on_batch(
        self,
        trainer: Any,
        batch_inputs: list[dict[str, Any]],
        batch_outputs: list[dict[str, Any]],
        batch_metrics: dict[str, Any],
        epoch: int,
        batch_number: int,
        is_training: bool,
        is_primary: bool = True,
        batch_grad_norm: float | None = None,
        **kwargs: Any,
    ) -> None:
        """After each optimizer step (``batch_number`` counts steps from 1 in the epoch) and,
        with ``is_training=False``, after each validation batch."""

    def on_epoch(
        self,
        trainer: Any,
        metrics: dict[str, Any],
        epoch: int,
        is_primary: bool = True,
        **kwargs: Any,
    ) -> None:
        """After an epoch's validation, with the epoch's metrics (``metrics_epoch_N.json``)."""

    def on_end(
        self,
        trainer: Any,
        metrics: dict[str, Any] | None = None,
        epoch: int | None = None,
        is_primary: bool = True,
        **kwargs: Any,
    ) -> None:
        """After the last epoch."""

    def on_error(self, error: BaseException, is_primary: bool = True) -> None:
        """Training (or archiving) failed or was interrupted."""

    def on_archive(
        self,
        archive_path: Path,
        manifest: Mapping[str, Any],
        verdict: Mapping[str, Any] | None,
        is_primary: bool = True,
    ) -> None:
        """The train pipeline wrote ``archive_path``; ``verdict`` is ``keel verify``'s (ok, the
        failed steps) when ``wants_verdict``."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass
