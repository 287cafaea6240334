"""Data loaders: instances -> batches of tensors, epoch by epoch (``multiprocess``)."""

from keel.data.data_loaders.data_loader import DataLoader
from keel.data.data_loaders.multiprocess_data_loader import MultiProcessDataLoader

__all__ = ["DataLoader", "MultiProcessDataLoader"]
