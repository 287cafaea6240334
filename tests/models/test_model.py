"""Model base class: defaults and forward_on_instances splitting."""

from __future__ import annotations

import numpy as np
import torch

from keel.data.dataset_readers import DatasetReader
from keel.data.vocabulary import Vocabulary
from keel.models.model import Model, split_outputs


class _Lengths(Model):
    """A minimal real model: per-instance token counts, a 2-d output and a scalar loss."""

    def __init__(self, vocab: Vocabulary) -> None:
        super().__init__(vocab)
        self.scale = torch.nn.Parameter(torch.tensor(2.0))

    def forward(self, tokens, label=None):  # type: ignore[override]
        mask = tokens["tokens"]["mask"]
        lengths = mask.sum(dim=1).float() * self.scale
        return {"lengths": lengths, "mask": mask, "loss": lengths.sum(), "words": ["x"] * len(mask)}


def test_model_defaults():
    model = _Lengths(Vocabulary())
    assert model.get_metrics() == {}
    assert model.make_output_human_readable({"a": 1}) == {"a": 1}
    assert model.get_device() == torch.device("cpu")
    assert Model.default_predictor is None


def test_model_forward_on_instances_indexes_and_splits_per_instance():
    reader = DatasetReader.by_name("text_classification_json")()
    instances = [reader.text_to_instance("a b c"), reader.text_to_instance("d")]
    vocab = Vocabulary.from_instances(instances)
    model = _Lengths(vocab)
    outputs = model.forward_on_instances(instances)
    assert len(outputs) == 2
    assert outputs[0]["lengths"] == 6.0 and outputs[1]["lengths"] == 2.0
    assert isinstance(outputs[0]["lengths"], float)
    assert isinstance(outputs[1]["mask"], np.ndarray)
    assert outputs[1]["mask"].tolist() == [True, False, False]
    assert outputs[0]["words"] == "x"
    assert "loss" not in outputs[0]  # a batch-level scalar is not per instance
    assert model.scale.grad is None  # no gradients were recorded
    assert model.forward_on_instance(instances[1])["lengths"] == 2.0
    assert model.forward_on_instances([]) == []


def test_model_split_outputs_skips_values_not_per_instance():
    outputs = {"a": torch.zeros(3, 2), "b": torch.zeros(4), "c": [1, 2], "d": torch.tensor(1.0)}
    split = split_outputs(outputs, 3)
    assert [sorted(item) for item in split] == [["a"], ["a"], ["a"]]
    assert split[2]["a"].shape == (2,)
