"""Metrics: accumulate over batches during training and evaluation, report named floats."""

from keel.training.metrics.average import Average
from keel.training.metrics.categorical_accuracy import CategoricalAccuracy
from keel.training.metrics.fbeta_measure import FBetaMeasure
from keel.training.metrics.metric import Metric

__all__ = ["Average", "CategoricalAccuracy", "FBetaMeasure", "Metric"]
