from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

try:
    import torch
except ImportError:  # `make test-py312` runs the torch-free tests where torch has no wheel
    torch = None

# Subprocesses inherit this: no test writes into the user's real preprocessing cache.
os.environ.setdefault("KEEL_CACHE_DIR", tempfile.mkdtemp(prefix="keel-test-cache-"))
# Tests run two at a time on two cores; more threads per process only contend (OpenMP spins).
os.environ.setdefault("OMP_NUM_THREADS", "1")
if torch is not None:
    torch.set_num_threads(1)

REPO = Path(__file__).resolve().parent.parent
SST2_SAMPLE = REPO / "examples" / "data" / "sst2-sample"
UD_SAMPLE = REPO / "examples" / "data" / "ud-ewt-sample"
TINY_CLASSIFIER = REPO / "tests" / "fixtures" / "configs" / "tiny_classifier.jsonnet"


@pytest.fixture
def tiny_classifier_config():
    """The tiny classifier config, loaded, with the number of epochs to train."""
    from keel.common.params import load_config

    def load(epochs: int = 2) -> dict:
        return load_config(
            TINY_CLASSIFIER, ext_vars={"data_dir": str(SST2_SAMPLE), "epochs": str(epochs)}
        )

    return load


def install_plugin_package(root: Path, name: str, source: str) -> Path:
    """Write ``source`` as package ``name`` under ``root/src``, put that folder on ``sys.path``
    and import the package so its components register; returns the ``src`` folder (the caller
    removes it from ``sys.path`` when the package must disappear)."""
    import sys

    from keel.common.registry import import_module_and_submodules

    src = root / "src"
    package = src / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(source, encoding="utf-8")
    sys.path.insert(0, str(src))
    import_module_and_submodules(name)
    return src
