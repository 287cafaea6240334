// CoNLL-2003 NER with a CRF: 50-d word embeddings + a character CNN, a 2-layer BiLSTM, tags
// converted to BIOUL and decoded under BIOUL transition constraints; validated on span F1.
// The data is not shipped (its license does not allow it). Point at any files in the
// four-column CoNLL-2003 layout ("word POS chunk NER", blank lines between sentences):
//   keel train examples/conll2003/crf_tagger.jsonnet -s runs/conll2003 \
//     --ext-var train_path=data/eng.train --ext-var validation_path=data/eng.testa
// The original release tags NER in IOB1. Copies retagged in BIO (most downloads today) need
//   --overrides '{"dataset_reader.original_coding_scheme": "BIO"}'
local train_path = std.extVar('train_path');
local validation_path = std.extVar('validation_path');
local word_dim = 50;
local char_dim = 16;
local char_filters = 128;
local dropout = 0.5;

{
  dataset_reader: {
    type: 'conll2003',
    tag_label: 'ner',
    original_coding_scheme: 'IOB1',
    coding_scheme: 'BIOUL',
    token_indexers: {
      tokens: { type: 'single_id', lowercase_tokens: true },
      token_characters: { type: 'characters', min_padding_length: 3 },
    },
  },
  train_data_path: train_path,
  validation_data_path: validation_path,
  vocabulary: { type: 'from_instances', min_count: { tokens: 2 } },
  model: {
    type: 'crf_tagger',
    label_encoding: 'BIOUL',
    constrain_crf_decoding: true,
    calculate_span_f1: true,
    dropout: dropout,
    include_start_end_transitions: false,
    text_field_embedder: {
      token_embedders: {
        tokens: { type: 'embedding', embedding_dim: word_dim },
        token_characters: {
          type: 'character_encoding',
          embedding: { embedding_dim: char_dim },
          encoder: {
            type: 'cnn',
            embedding_dim: char_dim,
            num_filters: char_filters,
            ngram_filter_sizes: [3],
            conv_layer_activation: 'relu',
          },
        },
      },
    },
    encoder: {
      type: 'lstm',
      input_size: word_dim + char_filters,
      hidden_size: 200,
      num_layers: 2,
      dropout: dropout,
      bidirectional: true,
    },
  },
  data_loader: {
    batch_sampler: { type: 'bucket', batch_size: 64, sorting_keys: ['tokens'] },
  },
  trainer: {
    type: 'gradient_descent',
    optimizer: { type: 'adam', lr: 0.001 },
    num_epochs: 50,
    patience: 10,
    grad_norm: 5.0,
    validation_metric: '+f1-measure-overall',
  },
}
