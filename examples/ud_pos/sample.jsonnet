// The UD POS tagger, small, on the EWT sample shipped in examples/data/ud-ewt-sample
// (600 train / 200 dev sentences; run from the repository root). About 2 s of compute per
// epoch on one idle CPU core; expect dev UPOS accuracy near 0.86 after the 10 epochs (so little
// data caps it). The full-data config is bilstm_char_cnn.jsonnet.
local lib = import 'tagger.libsonnet';

{
  dataset_reader: lib.reader('upos'),
  train_data_path: 'examples/data/ud-ewt-sample/en_ewt-ud-train.sample.conllu',
  validation_data_path: 'examples/data/ud-ewt-sample/en_ewt-ud-dev.sample.conllu',
  vocabulary: { type: 'from_instances', min_count: { tokens: 2 } },
  model: lib.model(word_dim=50, char_dim=16, char_filters=32, hidden_size=64, num_layers=1,
                   dropout=0.25),
  data_loader: {
    batch_sampler: { type: 'bucket', batch_size: 16, sorting_keys: ['tokens'] },
  },
  trainer: {
    type: 'gradient_descent',
    optimizer: { type: 'adam', lr: 0.003 },
    num_epochs: 10,
    patience: 3,
    grad_norm: 5.0,
    validation_metric: '+accuracy',
  },
}
