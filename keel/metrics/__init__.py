"""Metrics: accumulate over batches during training and evaluation, report named floats."""

from keel.metrics.average import Average
from keel.metrics.categorical_accuracy import CategoricalAccuracy
from keel.metrics.fbeta_measure import FBetaMeasure
from keel.metrics.metric import Metric
from keel.metrics.span_based_f1 import SpanBasedF1Measure

__all__ = ["Average", "CategoricalAccuracy", "FBetaMeasure", "Metric", "SpanBasedF1Measure"]
