"""Torch building blocks: token and text-field embedders, encoders, feedforward, CRF."""

# Importing the subpackages registers their components under their config names.
from keel.modules import seq2vec_encoders, text_field_embedders, token_embedders
from keel.modules.feedforward import FeedForward

__all__ = ["FeedForward", "seq2vec_encoders", "text_field_embedders", "token_embedders"]
