"""Tagging components: the character encoder's bulk path and the CRF, on real UD sentences.

Figures (words or sentences per second, forward + backward unless noted):

- ``character_encoding``: keel's embedder, which encodes only the real words of a batch in one
  call, against the AllenNLP-style way of running the encoder over every (B*T) slot, padding
  words included;
- ``crf log-likelihood`` and ``crf viterbi`` (no backward) with 17 tags (UPOS), and constrained
  BIOUL Viterbi with 17 tags (the CoNLL-2003 NER tag set).

Run: ``.venv/bin/python benchmarks/tagging.py [--data PATH.conllu] [--threads 2] [--batch 32]``.
The default data is the shipped EWT dev sample; pass the full ``en_ewt-ud-dev.conllu`` for
steadier numbers.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from keel.common.from_params import build
from keel.data.batch import collate
from keel.data.dataset_readers.conllu import ConlluDatasetReader
from keel.data.token_indexers.token_characters_indexer import TokenCharactersIndexer
from keel.data.vocabulary import Vocabulary
from keel.modules.conditional_random_field import ConditionalRandomField, allowed_transitions
from keel.modules.token_embedders.character_encoding import TokenCharactersEncoder
from keel.modules.token_embedders.token_embedder import TokenEmbedder

SAMPLE = Path(__file__).parent.parent / "examples/data/ud-ewt-sample/en_ewt-ud-dev.sample.conllu"
CHARACTER_ENCODER = {
    "type": "character_encoding",
    "embedding": {"embedding_dim": 16},
    "encoder": {"type": "cnn", "embedding_dim": 16, "num_filters": 64, "ngram_filter_sizes": [3]},
}
NER_TAGS = ["O"] + [f"{p}-{t}" for t in ("PER", "LOC", "ORG", "MISC") for p in "BILU"]


def _batches(path: str, batch_size: int):
    reader = ConlluDatasetReader(
        token_indexers={"token_characters": TokenCharactersIndexer(min_padding_length=3)}
    )
    instances = list(reader.read(path))
    vocab = Vocabulary.from_instances(instances)
    for instance in instances:
        instance.index_fields(vocab)
    # Unsorted, so batches carry the padding real shuffled training sees.
    batches = [collate(instances[i : i + batch_size]) for i in range(0, len(instances), batch_size)]
    return batches, vocab


def _timed(function, repeats: int) -> float:
    function()  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - started) / repeats


def _padded_everywhere(embedder: TokenCharactersEncoder, chars: torch.Tensor) -> torch.Tensor:
    batch, length, width = chars.shape
    flat = chars.reshape(batch * length, width)
    encoded = embedder._encoder(embedder._embedding(flat), flat != 0)
    return encoded.view(batch, length, -1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(SAMPLE))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    batches, vocab = _batches(args.data, args.batch)
    chars = [b["tokens"]["token_characters"]["token_characters"] for b in batches]
    masks = [b["tokens"]["token_characters"]["mask"] for b in batches]
    words = sum(int(m.sum()) for m in masks)
    slots = sum(m.numel() for m in masks)
    sentences = sum(m.shape[0] for m in masks)
    print(f"{sentences} sentences, {words} words in {slots} padded slots, batch {args.batch}")

    embedder = build(TokenEmbedder, CHARACTER_ENCODER, extras={"vocab": vocab})

    def bulk() -> None:
        for c in chars:
            embedder(c).sum().backward()

    def everywhere() -> None:
        for c in chars:
            _padded_everywhere(embedder, c).sum().backward()

    fast = _timed(bulk, args.repeats)
    slow = _timed(everywhere, args.repeats)
    print(f"character_encoding (real words only): {words / fast:10.0f} words/s")
    print(f"encoder over every slot (padding too): {words / slow:10.0f} words/s")
    print(f"speed-up: {slow / fast:.2f}x")

    for name, num_tags, constraints in [
        ("upos", 17, None),
        ("ner bioul, constrained", 17, allowed_transitions("BIOUL", dict(enumerate(NER_TAGS)))),
    ]:
        crf = ConditionalRandomField(num_tags, constraints)
        logits = [torch.randn(*m.shape, num_tags, requires_grad=True) for m in masks]
        tags = [torch.randint(0, num_tags, m.shape) for m in masks]

        def likelihood(crf=crf, logits=logits, tags=tags) -> None:
            for emissions, gold, mask in zip(logits, tags, masks, strict=True):
                crf(emissions, gold, mask).backward()

        def viterbi(crf=crf, logits=logits) -> None:
            for emissions, mask in zip(logits, masks, strict=True):
                crf.viterbi_tags(emissions.detach(), mask)

        print(
            f"crf log-likelihood ({name}): {sentences / _timed(likelihood, args.repeats):8.0f} "
            "sentences/s"
        )
        print(
            f"crf viterbi ({name}):        {sentences / _timed(viterbi, args.repeats):8.0f} "
            "sentences/s"
        )


if __name__ == "__main__":
    main()
