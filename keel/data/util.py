"""Small helpers shared by the data layer."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small acyclic objects.

    Reading creates ~10 objects per token (tokens, lists, fields); with the collector on,
    its repeated passes over the growing heap cost 5-8x the work itself. Nothing built here
    forms reference cycles, and the previous state is restored on exit, so any cyclic garbage
    made elsewhere is still collected afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
