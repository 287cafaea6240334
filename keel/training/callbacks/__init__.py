"""Trainer callbacks: hooks into the training loop (AllenNLP's names) and the loggers on them."""

from keel.training.callbacks.callback import TrainerCallback
from keel.training.callbacks.console_logger import ConsoleLoggerCallback
from keel.training.callbacks.mlflow import MlflowCallback
from keel.training.callbacks.tensorboard import TensorBoardCallback

__all__ = ["ConsoleLoggerCallback", "MlflowCallback", "TensorBoardCallback", "TrainerCallback"]
