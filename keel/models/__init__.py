"""Models: the Model base class, classifiers and taggers."""

from keel.models.basic_classifier import BasicClassifier
from keel.models.crf_tagger import CrfTagger
from keel.models.model import Model
from keel.models.simple_tagger import SimpleTagger

__all__ = ["BasicClassifier", "CrfTagger", "Model", "SimpleTagger"]
