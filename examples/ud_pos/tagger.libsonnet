// Shared parts of the UD POS configs: a reader, and a tagger over word embeddings plus a
// character CNN, contextualised by a BiLSTM.
{
  reader(tag_label='upos'):: {
    type: 'conllu',
    tag_label: tag_label,
    token_indexers: {
      tokens: { type: 'single_id', lowercase_tokens: true },
      // Wide enough for the widest CNN filter, so one-letter words still fill a window.
      token_characters: { type: 'characters', min_padding_length: 3 },
    },
  },

  model(word_dim, char_dim, char_filters, hidden_size, num_layers, dropout):: {
    type: 'simple_tagger',
    text_field_embedder: {
      token_embedders: {
        tokens: { type: 'embedding', embedding_dim: word_dim },
        token_characters: {
          type: 'character_encoding',
          // vocab_namespace defaults to "token_characters" under character_encoding.
          embedding: { embedding_dim: char_dim },
          encoder: {
            type: 'cnn',
            embedding_dim: char_dim,
            num_filters: char_filters,
            ngram_filter_sizes: [3],
          },
          dropout: dropout,
        },
      },
    },
    encoder: {
      type: 'lstm',
      input_size: word_dim + char_filters,
      hidden_size: hidden_size,
      num_layers: num_layers,
      dropout: if num_layers > 1 then dropout else 0.0,
      bidirectional: true,
    },
    dropout: dropout,
  },
}
