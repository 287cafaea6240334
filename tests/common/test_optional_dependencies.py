"""Tests for keel/common/optional_dependencies.py."""

from __future__ import annotations

import json
import os
import sys

import pytest

from keel.common import errors
from keel.common.errors import KeelError
from keel.common.optional_dependencies import (
    MissingDependencyError,
    require,
    require_transformers,
)


def test_require_returns_the_installed_module() -> None:
    assert require("json", extra="unused") is json


def test_require_missing_module_names_the_pip_extra() -> None:
    with pytest.raises(MissingDependencyError) as caught:
        require("keel_no_such_module_for_tests", extra="transformers", needed_by="the embedder")
    assert isinstance(caught.value, KeelError)
    assert caught.value.code == errors.MISSING_DEPENDENCY
    message = str(caught.value)
    assert "pip install 'keel[transformers]'" in message
    assert "the embedder needs" in message
    assert "'keel_no_such_module_for_tests'" in message


def test_require_transformers_without_the_package_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A None entry in sys.modules makes `import transformers` fail as if it were not installed.
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'keel\[transformers\]'"):
        require_transformers(needed_by="the pretrained_transformer embedder")


def test_require_transformers_switches_the_hub_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("transformers")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")  # an explicit user choice is kept
    require_transformers()
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["TRANSFORMERS_OFFLINE"] == "0"
