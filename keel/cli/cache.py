"""``keel cache info|prune|clear``: the preprocessing cache on disk."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from keel.cli.common import keel_errors_exit

app = typer.Typer(
    name="cache",
    help="Inspect, prune or clear the preprocessing cache (tokenized and indexed data).",
    no_args_is_help=True,
    add_completion=False,
)

CacheDir = Annotated[
    Path | None,
    typer.Option("--cache-dir", help="The cache (default: $KEEL_CACHE_DIR or ~/.cache/keel)."),
]


def _cache(cache_dir: Path | None, max_bytes: int | None = None):
    from keel.guard.preprocessing_cache import DEFAULT_MAX_BYTES, PreprocessingCache

    return PreprocessingCache(cache_dir, max_bytes=max_bytes or DEFAULT_MAX_BYTES)


@app.command("info")
@keel_errors_exit
def info(
    cache_dir: CacheDir = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Where the cache is, its entries, their size and the limit."""
    cache = _cache(cache_dir)
    entries = cache.entries()
    document = {
        "directory": str(cache.directory),
        "entries": len(entries),
        "bytes": sum(entry.size for entry in entries),
        "max_bytes": cache.max_bytes,
        "by_kind": {
            kind: sum(entry.kind == kind for entry in entries)
            for kind in ("instances", "vocabularies")
        },
    }
    if as_json:
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return
    typer.echo(
        f"{document['directory']}: {document['entries']} entries "
        f"({document['by_kind']['instances']} instance sets, "
        f"{document['by_kind']['vocabularies']} vocabularies), "
        f"{document['bytes'] / 1024**2:.1f} MiB of {cache.max_bytes / 1024**3:.0f} GiB"
    )


@app.command("prune")
@keel_errors_exit
def prune(
    cache_dir: CacheDir = None,
    max_bytes: Annotated[
        int | None,
        typer.Option("--max-bytes", min=0, help="Keep at most this much (default: the limit)."),
    ] = None,
) -> None:
    """Remove the least recently used entries until the cache fits its limit."""
    cache = _cache(cache_dir)
    removed = cache.prune(max_bytes)
    typer.echo(
        f"removed {len(removed)} entries ({sum(e.size for e in removed) / 1024**2:.1f} MiB); "
        f"{cache.size() / 1024**2:.1f} MiB left"
    )


@app.command("clear")
@keel_errors_exit
def clear(cache_dir: CacheDir = None) -> None:
    """Remove every entry."""
    typer.echo(f"removed {_cache(cache_dir).clear()} entries")
