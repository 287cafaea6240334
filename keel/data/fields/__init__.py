"""Fields: the named parts of an instance, each indexing itself and batching in bulk."""

from keel.data.fields.field import Field
from keel.data.fields.label_field import LabelField
from keel.data.fields.metadata_field import MetadataField
from keel.data.fields.sequence_label_field import SequenceLabelField
from keel.data.fields.text_field import TextField, TextFieldTensors

__all__ = [
    "Field",
    "LabelField",
    "MetadataField",
    "SequenceLabelField",
    "TextField",
    "TextFieldTensors",
]
