"""Training: the trainer, optimizers, schedulers, checkpoints, seeding and evaluation."""

from keel.training.callbacks import (
    ConsoleLoggerCallback,
    MlflowCallback,
    TensorBoardCallback,
    TrainerCallback,
)
from keel.training.checkpointer import Checkpoint, Checkpointer
from keel.training.learning_rate_schedulers import (
    LearningRateScheduler,
    LinearWithWarmup,
    ReduceOnPlateau,
)
from keel.training.optimizers import (
    AdamOptimizer,
    AdamWOptimizer,
    Optimizer,
    SgdOptimizer,
)
from keel.training.trainer import GradientDescentTrainer, Trainer
from keel.training.util import prepare_environment

__all__ = [
    "ConsoleLoggerCallback",
    "MlflowCallback",
    "TensorBoardCallback",
    "TrainerCallback",
    "AdamOptimizer",
    "AdamWOptimizer",
    "Checkpoint",
    "Checkpointer",
    "GradientDescentTrainer",
    "LearningRateScheduler",
    "LinearWithWarmup",
    "Optimizer",
    "ReduceOnPlateau",
    "SgdOptimizer",
    "Trainer",
    "prepare_environment",
]
