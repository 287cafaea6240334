// UPOS tagging of UD English EWT: 100-d word embeddings + a 64-filter character CNN, a 2-layer
// BiLSTM, and a softmax per token (simple_tagger). Target: dev UPOS accuracy >= 0.93.
// The treebank is not shipped; name the directory holding en_ewt-ud-{train,dev}.conllu:
//   keel train examples/ud_pos/bilstm_char_cnn.jsonnet -s runs/ud-pos \
//     --ext-var data_dir=../shared/data/ud_en_ewt
// (keel reads no environment variables in configs: only --ext-var name=value.)
// For XPOS: --overrides '{"dataset_reader.tag_label": "xpos"}'.
local lib = import 'tagger.libsonnet';
local data_dir = std.extVar('data_dir');

{
  dataset_reader: lib.reader('upos'),
  train_data_path: data_dir + '/en_ewt-ud-train.conllu',
  validation_data_path: data_dir + '/en_ewt-ud-dev.conllu',
  // Words seen once share the unknown-word vector, so it is trained for unseen dev words.
  vocabulary: { type: 'from_instances', min_count: { tokens: 2 } },
  model: lib.model(word_dim=100, char_dim=16, char_filters=64, hidden_size=200, num_layers=2,
                   dropout=0.33),
  data_loader: {
    batch_sampler: { type: 'bucket', batch_size: 32, sorting_keys: ['tokens'] },
  },
  trainer: {
    type: 'gradient_descent',
    optimizer: { type: 'adam', lr: 0.002 },
    num_epochs: 12,
    patience: 3,
    grad_norm: 5.0,
    validation_metric: '+accuracy',
  },
}
