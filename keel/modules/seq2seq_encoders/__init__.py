"""Seq2seq encoders: (B, T, D) token vectors and a (B, T) mask in, (B, T, O) vectors out."""

from keel.modules.seq2seq_encoders.pass_through_encoder import PassThroughEncoder
from keel.modules.seq2seq_encoders.pytorch_seq2seq_wrapper import (
    GruSeq2SeqEncoder,
    LstmSeq2SeqEncoder,
    PytorchSeq2SeqWrapper,
)
from keel.modules.seq2seq_encoders.seq2seq_encoder import Seq2SeqEncoder

__all__ = [
    "GruSeq2SeqEncoder",
    "LstmSeq2SeqEncoder",
    "PassThroughEncoder",
    "PytorchSeq2SeqWrapper",
    "Seq2SeqEncoder",
]
