"""Models: the Model base class, classifiers and taggers."""

from keel.models.basic_classifier import BasicClassifier
from keel.models.model import Model

__all__ = ["BasicClassifier", "Model"]
