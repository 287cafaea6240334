"""Metrics: accumulate over batches during training and evaluation, report named floats."""

from keel.training.metrics.average import Average
from keel.training.metrics.categorical_accuracy import CategoricalAccuracy
from keel.training.metrics.fbeta_measure import FBetaMeasure
from keel.training.metrics.metric import Metric
from keel.training.metrics.span_based_f1 import SpanBasedF1Measure

__all__ = ["Average", "CategoricalAccuracy", "FBetaMeasure", "Metric", "SpanBasedF1Measure"]
