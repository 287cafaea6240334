"""Regularizers: AllenNLP's l1/l2 penalties and the regex applicator (first match wins)."""

from __future__ import annotations

import pytest
import torch

from keel.common.errors import ConfigurationError
from keel.common.from_params import build
from keel.modules.regularizers import RegularizerApplicator


def _module() -> torch.nn.Module:
    module = torch.nn.Module()
    module.transitions = torch.nn.Parameter(torch.tensor([[1.0, -2.0], [3.0, 0.5]]))
    module.weight = torch.nn.Parameter(torch.tensor([-1.0, 4.0]))
    module.frozen = torch.nn.Parameter(torch.tensor([100.0]), requires_grad=False)
    return module


def test_l1_and_l2_penalties_with_allennlps_formulas():
    applicator = build(
        RegularizerApplicator,
        {
            "regexes": [
                ["transitions$", {"type": "l2", "alpha": 0.01}],
                ["weight|transitions", {"type": "l1", "alpha": 0.5}],
            ]
        },
    )
    penalty = applicator(_module())
    # transitions: l2 only (first match wins): 0.01 * (1 + 4 + 9 + 0.25); weight: 0.5 * (1 + 4)
    assert penalty.item() == pytest.approx(0.01 * 14.25 + 0.5 * 5.0)


def test_parameters_without_gradient_and_without_a_match_add_nothing():
    applicator = build(RegularizerApplicator, {"regexes": [["frozen", {"type": "l2"}]]})
    assert applicator(_module()).item() == 0.0
    assert build(RegularizerApplicator, {})(_module()).item() == 0.0


def test_a_bad_regex_or_alpha_is_a_config_error_naming_its_path():
    with pytest.raises(ConfigurationError, match=r"regexes\[0\]\[0\]"):
        build(RegularizerApplicator, {"regexes": [["(unclosed", {"type": "l1"}]]})
    with pytest.raises(ConfigurationError, match="alpha"):
        build(RegularizerApplicator, {"regexes": [["w", {"type": "l2", "alpha": -1}]]})
