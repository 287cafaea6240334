"""Training checkpoints that are complete or invisible, never half-written.

A checkpoint is the directory ``<serialization_dir>/checkpoints/epoch_<N>/`` (epoch N finished)
or ``epoch_<N>_batch_<K>/`` (inside epoch N, after K batches) holding

- ``model.safetensors``: the model's weights;
- ``training_state.pt``: everything else (optimizer and scheduler state, RNG states, epoch,
  metrics history, best-so-far bookkeeping) as tensors and plain values, written with
  ``torch.save`` and read with ``torch.load(weights_only=True)``, which refuses arbitrary objects.

The directory is assembled under a temporary name, every file is fsynced, and one atomic rename
publishes it; so a process killed at any moment leaves either the previous checkpoints or the new
one, and ``latest()`` only ever sees complete checkpoints.
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from keel.common import errors
from keel.common.errors import TrainingError
from keel.common.file_utils import atomic_directory, remove_stale_temporaries
from keel.common.filenames import CHECKPOINT_MODEL_FILE, CHECKPOINT_STATE_FILE, CHECKPOINTS_DIR
from keel.common.weights import read_weights, save_weights

logger = logging.getLogger(__name__)

_CHECKPOINT_NAME = re.compile(r"^epoch_(\d+)(?:_batch_(\d+))?$")


@dataclass(frozen=True)
class Checkpoint:
    """A complete checkpoint on disk: of finished epoch ``epoch`` (0-based), or, with
    ``batches``, taken inside epoch ``epoch`` after that many batches."""

    epoch: int
    path: Path
    batches: int | None = None

    @property
    def order(self) -> tuple[int, float]:
        return (self.epoch, float("inf") if self.batches is None else self.batches)

    @property
    def model_path(self) -> Path:
        return self.path / CHECKPOINT_MODEL_FILE

    @property
    def state_path(self) -> Path:
        return self.path / CHECKPOINT_STATE_FILE


class Checkpointer:
    """Writes, finds, loads and prunes the checkpoints of one serialization directory."""

    def __init__(self, serialization_dir: str | Path, keep_most_recent: int | None = 2) -> None:
        if keep_most_recent is not None and keep_most_recent < 1:
            raise TrainingError(
                f"keep_most_recent must be at least 1 (or null to keep all), got {keep_most_recent}"
            )
        self.directory = Path(serialization_dir) / CHECKPOINTS_DIR
        self.keep_most_recent = keep_most_recent

    def save(
        self,
        epoch: int,
        model_state: dict[str, torch.Tensor],
        training_state: dict[str, Any],
        *,
        batches: int | None = None,
    ) -> Checkpoint:
        """Write the checkpoint of finished epoch ``epoch`` (or, with ``batches``, of epoch
        ``epoch`` that far in); then prune old checkpoints."""
        self.directory.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.directory)
        name = f"epoch_{epoch}" if batches is None else f"epoch_{epoch}_batch_{batches}"
        target = self.directory / name
        if target.exists():
            # A rerun of this epoch after a crash between the rename and pruning: replace it.
            shutil.rmtree(target)
        with atomic_directory(target) as temp:
            save_weights(model_state, temp / CHECKPOINT_MODEL_FILE)
            torch.save(training_state, temp / CHECKPOINT_STATE_FILE)
        self._prune()
        return Checkpoint(epoch, target, batches)

    def all(self) -> list[Checkpoint]:
        """Complete checkpoints, oldest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for child in self.directory.iterdir():
            match = _CHECKPOINT_NAME.match(child.name)
            if (
                match
                and (child / CHECKPOINT_MODEL_FILE).is_file()
                and (child / CHECKPOINT_STATE_FILE).is_file()
            ):
                batches = int(match.group(2)) if match.group(2) is not None else None
                found.append(Checkpoint(int(match.group(1)), child, batches))
        return sorted(found, key=lambda checkpoint: checkpoint.order)

    def latest(self) -> Checkpoint | None:
        """The most recent complete checkpoint, or None."""
        checkpoints = self.all()
        return checkpoints[-1] if checkpoints else None

    def load(
        self, checkpoint: Checkpoint, device: str | torch.device = "cpu"
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(model weights, training state) of a checkpoint; refuses anything but plain data."""
        try:
            weights = read_weights(checkpoint.model_path, device)
            state = torch.load(checkpoint.state_path, map_location="cpu", weights_only=True)
        except Exception as error:  # a truncated or tampered file, or pickled objects
            raise TrainingError(
                f"cannot read checkpoint {checkpoint.path}: {type(error).__name__}: {error}",
                code=errors.NOTHING_TO_RECOVER,
            ) from error
        return weights, state

    def _prune(self) -> None:
        if self.keep_most_recent is None:
            return
        for old in self.all()[: -self.keep_most_recent]:
            logger.debug("removing old checkpoint %s", old.path)
            shutil.rmtree(old.path, ignore_errors=True)
