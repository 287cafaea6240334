"""Predictors: JSON objects in, model outputs as JSON-ready dicts out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, ClassVar

import numpy
import torch

from keel.common import errors
from keel.common.constraints import Supplied
from keel.common.errors import DataError
from keel.common.registry import Registrable
from keel.data.dataset_readers.dataset_reader import DatasetReader
from keel.data.instance import Instance
from keel.models.model import Model

#: The longest text (characters) or token list a predictor takes by default: a request of
#: megabytes would hold a worker for minutes and gigabytes of memory before failing.
MAX_INPUT_CHARACTERS = 100_000
MAX_INPUT_TOKENS = 10_000


class Predictor(Registrable):
    """Turns JSON inputs into instances, runs the model, and returns JSON-ready outputs.

    ``max_input_characters`` and ``max_input_tokens`` bound one input; a larger one is refused
    (``KS002``) before it is tokenized. Set them on an instance (``keel serve`` does, from its
    flags) or on a subclass.
    """

    max_input_characters: int = MAX_INPUT_CHARACTERS
    max_input_tokens: int = MAX_INPUT_TOKENS
    #: the input keys the predictor reads; every other key of an input (an ``id``, say) is
    #: passed through to its output
    input_keys: ClassVar[tuple[str, ...]] = ()

    def check_text(self, text: str, key: str = "text") -> str:
        """``text`` when within ``max_input_characters``, else a DataError naming the limit."""
        if len(text) > self.max_input_characters:
            raise DataError(
                f"{key!r} has {len(text)} characters, over the limit of "
                f"{self.max_input_characters}",
                code=errors.INPUT_TOO_LARGE,
            )
        return text

    def check_tokens(self, tokens: list[Any], key: str = "tokens") -> list[Any]:
        """``tokens`` when within ``max_input_tokens``, else a DataError naming the limit."""
        if len(tokens) > self.max_input_tokens:
            raise DataError(
                f"{key!r} has {len(tokens)} tokens, over the limit of {self.max_input_tokens}",
                code=errors.INPUT_TOO_LARGE,
            )
        return tokens

    def __init__(
        self, model: Annotated[Model, Supplied], dataset_reader: Annotated[DatasetReader, Supplied]
    ) -> None:
        self.model = model
        self.dataset_reader = dataset_reader

    def json_to_instance(self, inputs: dict[str, Any]) -> Instance:
        raise NotImplementedError

    def predict_json(self, inputs: dict[str, Any]) -> dict[str, Any]:
        return self.predict_batch_json([inputs])[0]

    def predict_batch_json(self, inputs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        instances = [self.json_to_instance(item) for item in inputs]
        return self.predict_batch_instances(instances)

    def predict_batch_json_with_passthrough(
        self, inputs: Sequence[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """``predict_batch_json``, each output preceded by its input's keys the predictor does
        not read (an ``id``, a source): a pipeline can join outputs to inputs. An input key the
        output also has is kept as ``input_<key>``."""
        outputs = self.predict_batch_json(inputs)
        return [
            passthrough(item, output, self.input_keys)
            for item, output in zip(inputs, outputs, strict=True)
        ]

    def predict_batch_instances(self, instances: Sequence[Instance]) -> list[dict[str, Any]]:
        self.model.eval()
        outputs = self.model.forward_on_instances(instances)
        return [to_jsonable(self.to_json(output)) for output in outputs]

    def to_json(self, output: dict[str, Any]) -> dict[str, Any]:
        """The parts of one instance's output a caller sees; override to choose."""
        return output

    @classmethod
    def from_archive(cls, archive: Any, predictor_name: str | None = None) -> Predictor:
        """The archive model's default predictor, or the one named."""
        name = predictor_name or getattr(archive.model, "default_predictor", None)
        if name is None:
            raise DataError(
                f"{type(archive.model).__name__} names no default predictor; pass one explicitly",
                code=errors.BAD_VALUE,
            )
        predictor_class = Predictor.by_name(name)
        return predictor_class(archive.model, archive.validation_dataset_reader)


def passthrough(
    item: dict[str, Any], output: dict[str, Any], consumed: Sequence[str]
) -> dict[str, Any]:
    """``output`` preceded by ``item``'s keys not in ``consumed`` (see
    ``Predictor.predict_batch_json_with_passthrough``)."""
    carried = {
        (f"input_{key}" if key in output else key): value
        for key, value in item.items()
        if key not in consumed
    }
    return {**carried, **output}


def to_jsonable(value: Any) -> Any:
    """Numpy arrays and scalars, tensors and tuples as plain JSON values."""
    if isinstance(value, dict):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist()
    if isinstance(value, numpy.ndarray | numpy.generic):
        return value.tolist()
    return value


def require_key(inputs: dict[str, Any], *keys: str) -> Any:
    """The first of ``keys`` present in ``inputs``, or a DataError naming what was expected."""
    if not isinstance(inputs, dict):
        raise DataError(f"expected a JSON object, got {type(inputs).__name__}")
    for key in keys:
        if key in inputs:
            return inputs[key]
    raise DataError(
        f"input has none of the keys {', '.join(repr(k) for k in keys)}; "
        f"found {', '.join(repr(k) for k in inputs) or 'no keys'}",
        code=errors.MISSING_COLUMN,
    )
