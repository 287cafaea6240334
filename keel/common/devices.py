"""``--device cpu|cuda|cuda:N``: one parser and one clear refusal for every command."""

from __future__ import annotations

import re

import torch

from keel.common import errors
from keel.common.errors import ConfigurationError

_PATTERN = re.compile(r"^(cpu|cuda)(?::(\d+))?$")


def resolve_device(spec: str, option: str = "--device") -> torch.device:
    """The torch device ``spec`` names; a ConfigurationError (exit 2) naming ``option`` (the
    flag or config key it came from) when it is malformed or names a GPU this machine does not
    have, before any work."""
    match = _PATTERN.match(spec.strip())
    if match is None or (match.group(1) == "cpu" and match.group(2) is not None):
        raise ConfigurationError(
            f"{option} {spec!r}: expected cpu, cuda or cuda:N", code=errors.BAD_VALUE
        )
    if match.group(1) == "cpu":
        return torch.device("cpu")
    index = int(match.group(2) or 0)
    if not torch.cuda.is_available():
        raise ConfigurationError(
            f"{option} {spec}: CUDA is not available here (torch {torch.__version__}); run on "
            "the CPU, or check the GPU stack with `keel env check`",
            code=errors.BAD_VALUE,
        )
    if index >= torch.cuda.device_count():
        raise ConfigurationError(
            f"{option} {spec}: only {torch.cuda.device_count()} GPU(s) are visible",
            code=errors.BAD_VALUE,
        )
    return torch.device("cuda", index)
