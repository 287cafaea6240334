"""allennlp-models' ``crf_tagger`` archives import with AllenNLP's predictions.

No crf_tagger archive is published in allennlp-models' fixtures, so the test writes one in
AllenNLP's archive layout around allennlp-models' own fixture config
(tests/fixtures/allennlp/crf_tagger_experiment.json: word embeddings, a character encoder that
is a 2-layer bidirectional GRU, a 2-layer bidirectional GRU encoder, a constrained CRF over IOB1
labels, an l2 regularizer): weights.th under AllenNLP's state-dict names (the TimeDistributed
``._module`` wrappers, the CRF's ``_constraint_mask`` parameter), vocabulary files as AllenNLP
writes them. The imported model must compute what those layers compute, written out in torch
here from AllenNLP's documented behaviour, and decode the best allowed tag sequence.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from keel.archive.allennlp import import_allennlp_archive
from keel.archive.archive import read_manifest
from keel.archive.model_archive import load_archive
from keel.common import errors
from keel.common.errors import ArchiveError
from keel.modules.conditional_random_field import allowed_transitions
from tests.archive.allennlp_layout import write_allennlp_archive

CONFIG = (
    Path(__file__).resolve().parents[1] / "fixtures" / "allennlp" / "crf_tagger_experiment.json"
)
WORDS = ["@@UNKNOWN@@", "the", "eu", "rejects", "german", "call", "peter", "."]
CHARACTERS = ["@@UNKNOWN@@", *sorted(set("theEUrjcsGmanlPt."))]
LABELS = ["O", "I-PER", "I-ORG", "I-MISC", "B-MISC"]
SENTENCES = [["EU", "rejects", "German", "call", "."], ["Peter", "Zyx", "the"]]


def _gru_state(prefix: str, input_size: int, hidden: int, generator) -> dict[str, torch.Tensor]:
    gru = torch.nn.GRU(input_size, hidden, num_layers=2, bidirectional=True, batch_first=True)
    with torch.no_grad():
        for parameter in gru.parameters():
            # the scale of torch's own initialisation, 1/sqrt(hidden)
            parameter.copy_(torch.randn(parameter.shape, generator=generator) / hidden**0.5)
    return {f"{prefix}{key}": value for key, value in gru.state_dict().items()}


#: allennlp-models' NER configs use a character CNN instead of the fixture's GRU
CHARACTER_CNN = {
    "type": "cnn",
    "embedding_dim": 25,
    "num_filters": 40,
    "ngram_filter_sizes": [3],
    "conv_layer_activation": "relu",
}


def _config(character_encoder: str) -> dict:
    config = json.loads(CONFIG.read_text(encoding="utf-8"))
    if character_encoder == "cnn":
        embedders = config["model"]["text_field_embedder"]["token_embedders"]
        embedders["token_characters"]["encoder"] = CHARACTER_CNN
        config["model"]["encoder"]["input_size"] = 50 + 40
    return config


def _character_encoder_state(kind: str, prefix: str, generator) -> dict[str, torch.Tensor]:
    if kind == "gru":  # TimeDistributed(PytorchSeq2VecWrapper(GRU))
        return _gru_state(f"{prefix}_module._module.", 25, 80, generator)
    return {  # TimeDistributed(CnnEncoder): AllenNLP's conv_layer_N attributes
        f"{prefix}_module.conv_layer_0.weight": torch.randn(40, 25, 3, generator=generator) / 8,
        f"{prefix}_module.conv_layer_0.bias": torch.randn(40, generator=generator) / 8,
    }


def _allennlp_state(generator, character_encoder: str = "gru") -> dict[str, torch.Tensor]:
    num_tags = len(LABELS)
    mask = torch.zeros(num_tags + 2, num_tags + 2)
    for i, j in allowed_transitions("IOB1", dict(enumerate(LABELS))):
        mask[i, j] = 1.0
    characters = "text_field_embedder.token_embedder_token_characters."
    return {
        "text_field_embedder.token_embedder_tokens.weight": torch.randn(
            len(WORDS) + 1, 50, generator=generator
        ),
        f"{characters}_embedding._module.weight": torch.randn(
            len(CHARACTERS) + 1, 25, generator=generator
        ),
        **_character_encoder_state(character_encoder, f"{characters}_encoder.", generator),
        **_gru_state("encoder._module.", 210 if character_encoder == "gru" else 90, 300, generator),
        "tag_projection_layer._module.weight": torch.randn(num_tags, 600, generator=generator)
        * 0.1,
        "tag_projection_layer._module.bias": torch.randn(num_tags, generator=generator),
        "crf.transitions": torch.randn(num_tags, num_tags, generator=generator),
        "crf._constraint_mask": mask,
        "crf.start_transitions": torch.randn(num_tags, generator=generator),
        "crf.end_transitions": torch.randn(num_tags, generator=generator),
    }


def _write_archive(
    directory: Path, state: dict[str, torch.Tensor], character_encoder: str = "gru"
) -> Path:
    return write_allennlp_archive(
        directory,
        config=_config(character_encoder),
        state=state,
        vocabulary={"tokens": WORDS, "token_characters": CHARACTERS, "labels": LABELS},
        meta={"version": "2.10.1"},
    )


def _gru(state: dict[str, torch.Tensor], prefix: str, input_size: int, hidden: int):
    gru = torch.nn.GRU(input_size, hidden, num_layers=2, bidirectional=True, batch_first=True)
    gru.load_state_dict(
        {key.removeprefix(prefix): value for key, value in state.items() if key.startswith(prefix)}
    )
    return gru


def _character_cnn(state: dict[str, torch.Tensor], prefix: str, embedded: torch.Tensor):
    """AllenNLP >= 1.2.1's CnnEncoder on one word's characters (L, 25): relu of the width-3
    convolution, max over the windows inside the word; 0 for a word shorter than the width."""
    weight = state[f"{prefix}conv_layer_0.weight"]
    if embedded.size(0) < weight.size(-1):
        return torch.zeros(weight.size(0))
    windows = torch.nn.functional.conv1d(
        embedded.T.unsqueeze(0), weight, state[f"{prefix}conv_layer_0.bias"]
    )
    return torch.relu(windows)[0].max(dim=-1).values


def _allennlp_logits(
    state: dict[str, torch.Tensor], words: list[str], character_encoder: str = "gru"
) -> torch.Tensor:
    """crf_tagger's emissions, from allennlp-models' documented forward: the text field
    embedder concatenates its embedders in sorted key order (token_characters, then tokens);
    token_characters is TimeDistributed(Embedding) then TimeDistributed(GRU seq2vec: the last
    layer's final forward and backward states); the encoder is the GRU over the words; the
    TimeDistributed tag projection gives the logits (dropout is off at inference)."""
    word_index = {word: position + 1 for position, word in enumerate(WORDS)}
    char_index = {char: position + 1 for position, char in enumerate(CHARACTERS)}
    characters = "text_field_embedder.token_embedder_token_characters."
    char_gru = (
        _gru(state, f"{characters}_encoder._module._module.", 25, 80)
        if (character_encoder == "gru")
        else None
    )
    vectors = []
    for word in words:
        ids = torch.tensor([[char_index.get(char, 1) for char in word]])
        embedded = torch.nn.functional.embedding(
            ids, state[f"{characters}_embedding._module.weight"]
        )
        if char_gru is not None:
            _, final = char_gru(embedded)
            by_characters = torch.cat([final[-2], final[-1]], dim=-1)[0]
        else:
            by_characters = _character_cnn(state, f"{characters}_encoder._module.", embedded[0])
        word_id = torch.tensor(word_index.get(word.lower(), 1))
        by_word = state["text_field_embedder.token_embedder_tokens.weight"][word_id]
        vectors.append(torch.cat([by_characters, by_word]))
    encoder = _gru(state, "encoder._module.", 210 if character_encoder == "gru" else 90, 300)
    encoded, _ = encoder(torch.stack(vectors).unsqueeze(0))
    return torch.nn.functional.linear(
        encoded[0],
        state["tag_projection_layer._module.weight"],
        state["tag_projection_layer._module.bias"],
    )


def _best_allowed_path(state: dict[str, torch.Tensor], logits: torch.Tensor) -> list[int]:
    """AllenNLP's constrained viterbi_tags, by enumeration: the highest-scoring sequence whose
    transitions, START and END included, the constraint mask allows."""
    num_tags = len(LABELS)
    allowed = state["crf._constraint_mask"].bool()
    start, end = num_tags, num_tags + 1
    best, best_score = None, float("-inf")
    for path in (
        torch.cartesian_prod(*[torch.arange(num_tags)] * len(logits)).view(-1, len(logits)).tolist()
    ):
        steps = [(start, path[0]), *zip(path, path[1:], strict=False), (path[-1], end)]
        if not all(allowed[i, j] for i, j in steps):
            continue
        score = state["crf.start_transitions"][path[0]] + state["crf.end_transitions"][path[-1]]
        score += sum(logits[i, tag] for i, tag in enumerate(path))
        score += sum(state["crf.transitions"][i, j] for i, j in zip(path, path[1:], strict=False))
        if float(score) > best_score:
            best, best_score = path, float(score)
    assert best is not None
    return best


@pytest.fixture(scope="module")
def allennlp_state() -> dict[str, torch.Tensor]:
    return _allennlp_state(torch.Generator().manual_seed(11))


@pytest.mark.parametrize("character_encoder", ["gru", "cnn"])
def test_crf_tagger_archive_imports_and_decodes_what_allennlp_decoded(tmp_path, character_encoder):
    allennlp_state = _allennlp_state(torch.Generator().manual_seed(11), character_encoder)
    source = _write_archive(tmp_path, allennlp_state, character_encoder)
    imported = import_allennlp_archive(source, tmp_path / "keel.tar.gz")
    archive = load_archive(imported)
    reader = archive.validation_dataset_reader
    outputs = archive.model.forward_on_instances(
        [reader.text_to_instance(words) for words in SENTENCES]  # one padded batch
    )
    with torch.no_grad():
        for words, output in zip(SENTENCES, outputs, strict=True):
            expected = _allennlp_logits(allennlp_state, words, character_encoder)
            got = torch.as_tensor(output["logits"])[: len(words)]
            assert torch.allclose(got, expected, atol=1e-5), words
            best = _best_allowed_path(allennlp_state, expected)
            assert output["tags"] == [LABELS[index] for index in best]
    # keel reproduces AllenNLP's regularizer, so it stays in the model for fine-tuning
    assert archive.config["model"]["regularizer"] == {
        "regexes": [["transitions$", {"type": "l2", "alpha": 0.01}]]
    }
    manifest = read_manifest(imported)
    assert manifest.imported_from["meta"] == {"version": "2.10.1"}
    assert "trainer" in manifest.imported_from["training_sections"]


def test_crf_tagger_archive_whose_constraints_differ_from_keels_is_refused(
    tmp_path, allennlp_state
):
    state = dict(allennlp_state)
    mask = state["crf._constraint_mask"].clone()
    mask[0, 1] = 1 - mask[0, 1]  # one transition allowed differently
    state["crf._constraint_mask"] = mask
    with pytest.raises(ArchiveError) as raised:
        import_allennlp_archive(_write_archive(tmp_path, state), tmp_path / "keel.tar.gz")
    assert raised.value.code == errors.WEIGHTS_MISMATCH
    assert "crf._constraint_mask" in str(raised.value)


def test_crf_tagger_archive_with_an_unmapped_key_is_refused_naming_it(tmp_path, allennlp_state):
    state = {**allennlp_state, "crf.extra_parameter": torch.zeros(3)}
    with pytest.raises(ArchiveError, match="crf.extra_parameter"):
        import_allennlp_archive(_write_archive(tmp_path, state), tmp_path / "keel.tar.gz")
