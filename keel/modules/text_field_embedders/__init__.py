"""Text field embedders: combine a text field's token embedders into one (B, T, D) tensor."""

from keel.modules.text_field_embedders.basic_text_field_embedder import BasicTextFieldEmbedder
from keel.modules.text_field_embedders.text_field_embedder import TextFieldEmbedder

__all__ = ["BasicTextFieldEmbedder", "TextFieldEmbedder"]
