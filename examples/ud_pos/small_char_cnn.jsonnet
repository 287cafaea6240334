// UPOS tagging of UD English EWT with a small model: 50-d word embeddings + a 32-filter
// character CNN and a 1-layer BiLSTM of 100 (simple_tagger). Faster to train than
// bilstm_char_cnn.jsonnet, for a little less accuracy. Data is not shipped:
//   keel train examples/ud_pos/small_char_cnn.jsonnet -s runs/ud-pos-small \
//     --ext-var data_dir=../shared/data/ud_en_ewt
local lib = import 'tagger.libsonnet';
local data_dir = std.extVar('data_dir');

{
  dataset_reader: lib.reader('upos'),
  train_data_path: data_dir + '/en_ewt-ud-train.conllu',
  validation_data_path: data_dir + '/en_ewt-ud-dev.conllu',
  vocabulary: { type: 'from_instances', min_count: { tokens: 2 } },
  model: lib.model(word_dim=50, char_dim=16, char_filters=32, hidden_size=100, num_layers=1,
                   dropout=0.25),
  data_loader: {
    batch_sampler: { type: 'bucket', batch_size: 32, sorting_keys: ['tokens'] },
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
