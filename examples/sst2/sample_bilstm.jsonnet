// The README's main job: a 16-d BiLSTM sentiment classifier on the SST-2 sample shipped in
// examples/data/sst2-sample (run from the repository root). About a minute on 2 CPU cores.
local embedding_dim = 16;
local hidden_size = 16;

{
  dataset_reader: {
    type: 'tsv',
    tokenizer: { type: 'whitespace' },
    token_indexers: { tokens: { type: 'single_id' } },
  },
  train_data_path: 'examples/data/sst2-sample/train.tsv',
  validation_data_path: 'examples/data/sst2-sample/dev.tsv',
  vocabulary: { type: 'from_instances', min_count: { tokens: 1 } },
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
    batch_sampler: { type: 'bucket', batch_size: 32, sorting_keys: ['tokens'] },
  },
  trainer: {
    type: 'gradient_descent',
    optimizer: { type: 'adam', lr: 0.005 },
    num_epochs: 8,
    patience: 3,
    validation_metric: '+accuracy',
  },
  random_seed: 13370,
  numpy_seed: 1337,
  pytorch_seed: 133,
  deterministic: true,
}
