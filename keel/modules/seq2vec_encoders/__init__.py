"""Seq2vec encoders: summarise a (B, T, D) sequence as one (B, O) vector per instance."""

from keel.modules.seq2vec_encoders.bert_pooler import BertPooler
from keel.modules.seq2vec_encoders.boe_encoder import BagOfEmbeddingsEncoder
from keel.modules.seq2vec_encoders.cls_pooler import ClsPooler
from keel.modules.seq2vec_encoders.cnn_encoder import CnnEncoder
from keel.modules.seq2vec_encoders.rnn_encoders import GruSeq2VecEncoder, LstmSeq2VecEncoder
from keel.modules.seq2vec_encoders.seq2vec_encoder import Seq2VecEncoder

__all__ = [
    "ClsPooler",
    "BertPooler",
    "BagOfEmbeddingsEncoder",
    "CnnEncoder",
    "GruSeq2VecEncoder",
    "LstmSeq2VecEncoder",
    "Seq2VecEncoder",
]
