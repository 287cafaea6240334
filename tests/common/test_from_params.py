from __future__ import annotations

from typing import Annotated

import pytest

from keel.common import errors
from keel.common.constraints import Supplied
from keel.common.errors import ConfigIssue, ConfigurationError
from keel.common.from_params import Lazy, build, describe, resolve, validate
from keel.common.registry import Registrable


class Shape(Registrable):
    default_implementation = "square"


@Shape.register("square")
class Square(Shape):
    def __init__(self, side: float = 1.0, label: str | None = None) -> None:
        self.side = side
        self.label = label


@Shape.register("polygon")
class Polygon(Shape):
    def __init__(self, sides: list[int], scale: dict[str, float] | None = None) -> None:
        self.sides = sides
        self.scale = scale or {}


class Canvas(Registrable):
    pass


@Canvas.register("basic")
class BasicCanvas(Canvas):
    def __init__(
        self,
        shapes: dict[str, Shape],
        background: Shape | None = None,
        hidden_size: int = 16,
        vocab: Annotated[object, Supplied] = None,
        later: Lazy[Shape] | None = None,
    ) -> None:
        self.shapes = shapes
        self.background = background
        self.hidden_size = hidden_size
        self.vocab = vocab
        self.later = later


def test_from_params_builds_nested_components_and_passes_extras() -> None:
    canvas = build(
        Canvas,
        {
            "type": "basic",
            "shapes": {"a": {"type": "polygon", "sides": [3, 4]}, "b": {"side": 2}},
            "later": {"type": "square"},
        },
        extras={"vocab": "the-vocab"},
    )
    assert isinstance(canvas, BasicCanvas)
    assert canvas.shapes["a"].sides == [3, 4]
    assert isinstance(canvas.shapes["b"], Square) and canvas.shapes["b"].side == 2.0
    assert canvas.vocab == "the-vocab"
    assert isinstance(canvas.later, Lazy)
    built_later = canvas.later.construct()
    assert isinstance(built_later, Square)


def test_from_params_reports_every_error_with_path_expected_found_and_suggestion() -> None:
    result = validate(
        Canvas,
        {
            "type": "basic",
            "hiden_size": 3,
            "shapes": {
                "a": {"type": "polgon", "sides": [3]},
                "b": {"type": "polygon", "sides": "x"},
            },
            "background": {"type": "square", "side": "wide"},
        },
    )
    by_path = {issue.path: issue for issue in result.issues}
    assert set(by_path) == {"hiden_size", "shapes.a.type", "shapes.b.sides", "background.side"}
    assert by_path["hiden_size"].code == errors.UNKNOWN_KEY
    assert by_path["hiden_size"].suggestion == "hidden_size"
    assert by_path["shapes.a.type"].code == errors.UNKNOWN_COMPONENT
    assert "did you mean 'polygon'" in by_path["shapes.a.type"].message
    assert "--include-package" in by_path["shapes.a.type"].message
    assert by_path["shapes.b.sides"].code == errors.WRONG_TYPE
    assert by_path["shapes.b.sides"].expected == "list of integer"
    assert by_path["background.side"].found == "wide"
    with pytest.raises(ConfigurationError) as raised:
        result.raise_if_invalid()
    text = str(raised.value)
    assert "4 problems" in text and "background.side" in text and "expected number" in text


def test_from_params_missing_required_key_names_path_and_type() -> None:
    result = validate(Canvas, {"type": "basic", "shapes": {"p": {"type": "polygon"}}})
    assert [(i.path, i.code, i.expected) for i in result.issues] == [
        ("shapes.p.sides", errors.MISSING_KEY, "list of integer")
    ]


def test_from_params_resolved_config_makes_defaults_explicit_and_rebuilds_identically() -> None:
    config = {"type": "basic", "shapes": {"a": {}}}
    resolved = resolve(Canvas, config)
    assert resolved == {
        "type": "basic",
        "shapes": {"a": {"type": "square", "side": 1.0, "label": None}},
        "background": None,
        "hidden_size": 16,
        "later": None,
    }
    assert resolve(Canvas, resolved) == resolved
    first, second = build(Canvas, config), build(Canvas, resolved)
    assert vars(first.shapes["a"]) == vars(second.shapes["a"])
    assert first.hidden_size == second.hidden_size


def test_from_params_bool_is_not_an_int_and_int_is_a_float() -> None:
    assert validate(Square, {"side": 3}).ok
    issues = validate(BasicCanvas, {"shapes": {}, "hidden_size": True}).issues
    assert [issue.code for issue in issues] == [errors.WRONG_TYPE]


def test_from_params_missing_type_without_default_lists_choices() -> None:
    issues = validate(Canvas, {"shapes": {}}).issues
    assert issues[0].code == errors.MISSING_TYPE
    assert "basic" in issues[0].expected


def test_from_params_constructor_failure_is_wrapped_with_path() -> None:
    class Picky(Registrable):
        pass

    @Picky.register("strict")
    class Strict(Picky):
        def __init__(self, size: int) -> None:
            if size < 0:
                raise ValueError("size must be >= 0")

    with pytest.raises(ConfigurationError) as raised:
        build(dict[str, Picky], {"x": {"type": "strict", "size": -1}})
    assert raised.value.issues[0].path == "x"
    assert raised.value.issues[0].code == errors.CONSTRUCTION_FAILED
    assert "size must be >= 0" in str(raised.value)


def test_from_params_describe_names_types_for_people() -> None:
    assert describe(int | list[int]) == "integer or list of integer"
    assert (
        describe(dict[str, Shape])
        == "object mapping names to Shape config (an object with a 'type')"
    )


class Needy(Registrable):
    pass


@Needy.register("needs_params")
class NeedsParams(Needy):
    def __init__(self, model_parameters: Annotated[list[str], Supplied], rate: float = 0.1) -> None:
        self.model_parameters = model_parameters
        self.rate = rate


class Holder:
    def __init__(self, part: Lazy[Needy] | None = None) -> None:
        self.part = part


def test_from_params_optional_lazy_defers_run_time_arguments_to_construct() -> None:
    holder = build(Holder, {"part": {"type": "needs_params", "rate": 0.5}})
    assert holder.part is not None
    built = holder.part.construct(model_parameters=["w"])
    assert built.model_parameters == ["w"] and built.rate == 0.5


def test_from_params_validation_lists_every_component_used() -> None:
    result = validate(
        Canvas, {"type": "basic", "shapes": {"a": {"type": "polygon", "sides": [3]}, "b": {}}}
    )
    used = {(c.path, c.name, c.qualname) for c in result.components}
    assert used == {
        ("", "basic", "BasicCanvas"),
        ("shapes.a", "polygon", "Polygon"),
        ("shapes.b", "square", "Square"),
    }
    assert all(c.module == __name__ for c in result.components)


class Checked(Registrable):
    pass


@Checked.register("checked")
class CheckedPart(Checked):
    def __init__(self, model_name: str) -> None:
        raise ConfigurationError([ConfigIssue(errors.BAD_VALUE, "model_name", "no such folder")])


def test_from_params_constructor_config_errors_get_the_full_path() -> None:
    with pytest.raises(ConfigurationError) as raised:
        build(dict[str, Checked], {"encoder": {"type": "checked", "model_name": "x"}})
    assert [issue.path for issue in raised.value.issues] == ["encoder.model_name"]
