"""Torch building blocks: token and text-field embedders, encoders, feedforward, CRF,
regularizers."""

# Importing the subpackages registers their components under their config names.
from keel.modules import (
    regularizers,
    seq2seq_encoders,
    seq2vec_encoders,
    text_field_embedders,
    token_embedders,
)
from keel.modules.conditional_random_field import ConditionalRandomField, allowed_transitions
from keel.modules.feedforward import FeedForward

__all__ = [
    "ConditionalRandomField",
    "FeedForward",
    "allowed_transitions",
    "regularizers",
    "seq2seq_encoders",
    "seq2vec_encoders",
    "text_field_embedders",
    "token_embedders",
]
