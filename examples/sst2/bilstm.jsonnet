// SST-2 (GLUE) with a 16-d BiLSTM and randomly initialised embeddings, the configuration of
// AllenNLP's published baseline on this machine class. Data is not shipped; point at it with
//   keel train examples/sst2/bilstm.jsonnet -s runs/sst2-bilstm --ext-var sst2_dir=../shared/data/sst2
local sst2_dir = std.extVar('sst2_dir');
local embedding_dim = 16;
local hidden_size = 16;

{
  dataset_reader: {
    type: 'tsv',
    tokenizer: { type: 'whitespace' },
    token_indexers: { tokens: { type: 'single_id' } },
  },
  train_data_path: sst2_dir + '/train.tsv',
  validation_data_path: sst2_dir + '/dev.tsv',
  model: {
    type: 'basic_classifier',
    text_field_embedder: {
      token_embedders: { tokens: { type: 'embedding', embedding_dim: embedding_dim } },
    },
    seq2vec_encoder: {
      type: 'lstm',
      input_size: embedding_dim,
      hidden_size: hidden_size,
      bidirectional: true,
    },
    dropout: 0.2,
  },
  data_loader: {
    batch_sampler: { type: 'bucket', batch_size: 64, sorting_keys: ['tokens'] },
  },
  trainer: {
    type: 'gradient_descent',
    optimizer: { type: 'adam', lr: 0.003 },
    num_epochs: 4,
    patience: 2,
    validation_metric: '+accuracy',
  },
}
