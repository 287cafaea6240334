// SST-2 with a bag-of-embeddings encoder (averaged), 16-d random embeddings.
//   keel train examples/sst2/boe.jsonnet -s runs/sst2-boe --ext-var sst2_dir=../shared/data/sst2
local sst2_dir = std.extVar('sst2_dir');
local embedding_dim = 16;

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
    seq2vec_encoder: { type: 'boe', embedding_dim: embedding_dim, averaged: true },
  },
  data_loader: {
    batch_sampler: { type: 'bucket', batch_size: 64, sorting_keys: ['tokens'] },
  },
  trainer: {
    type: 'gradient_descent',
    optimizer: { type: 'adam', lr: 0.003 },
    num_epochs: 5,
    patience: 2,
    validation_metric: '+accuracy',
  },
}
