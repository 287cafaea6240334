"""Writing a model archive in AllenNLP's layout, for importer tests whose archive AllenNLP
never published (tests/fixtures/allennlp holds the ones it did)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import torch


def pack_directory(root: Path, archive: Path) -> Path:
    """``root``'s files as a gzipped tar, paths relative to ``root``, as AllenNLP packs one."""
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(root.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(root)), recursive=False)
    return archive


def write_allennlp_archive(
    directory: Path,
    *,
    config: dict[str, Any],
    state: dict[str, torch.Tensor],
    vocabulary: dict[str, list[str]],
    meta: dict[str, Any] | None,
) -> Path:
    """``directory/model.tar.gz`` with config.json, weights.th (``torch.save`` of ``state``,
    under AllenNLP's names), vocabulary/ as AllenNLP writes it (a padded namespace's file
    leaves out @@PADDING@@, index 0; ``*tags`` and ``*labels`` are not padded) and, unless
    ``meta`` is None, meta.json (AllenNLP 2.5 and later)."""
    root = directory / "allennlp"
    (root / "vocabulary").mkdir(parents=True)
    for namespace, entries in vocabulary.items():
        text = "\n".join(entries) + "\n"
        (root / "vocabulary" / f"{namespace}.txt").write_text(text, encoding="utf-8")
    (root / "vocabulary" / "non_padded_namespaces.txt").write_text(
        "*tags\n*labels\n", encoding="utf-8"
    )
    (root / "config.json").write_text(json.dumps(config), encoding="utf-8")
    torch.save(state, root / "weights.th")
    if meta is not None:
        (root / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return pack_directory(root, directory / "model.tar.gz")
