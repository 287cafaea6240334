"""Predictors: JSON in, instances through the model, JSON out."""

from keel.predict import sentence_tagger, text_classifier
from keel.predict.predictor import Predictor

__all__ = ["Predictor", "sentence_tagger", "text_classifier"]
