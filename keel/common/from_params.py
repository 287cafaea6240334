"""Construction from config: a constructor's type hints are its schema.

``validate`` walks a config against the type hints of the constructors it names and returns every
problem at once, each located by its dotted path, together with the *resolved* config in which
every default is explicit. ``build`` validates, then constructs from the resolved config, so
building from a resolved config gives the same object graph as building from the original.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Generic, Literal, TypeVar, Union, cast

from keel.common import errors
from keel.common.constraints import ExistingFile, Supplied, constraints_of, is_supplied
from keel.common.errors import (
    ConfigIssue,
    ConfigurationError,
    KeelError,
    RegistryError,
    did_you_mean,
)
from keel.common.registry import Registrable, unknown_name_message

_MISSING = object()


T = TypeVar("T")


class Lazy(Generic[T]):
    """A validated config for a ``T`` that is built later with extras, e.g. model parameters.

    ``Lazy[Optimizer]`` in a constructor signature receives one of these; call
    ``construct(model_parameters=...)`` when the parameters exist.
    """

    def __init__(self, annotation: Any, config: Any, path: str = "") -> None:
        self.annotation = annotation
        self.config = config
        self.path = path

    def construct(self, **extras: Any) -> T:
        return build(self.annotation, self.config, path=self.path, extras=extras)

    def __repr__(self) -> str:
        name = getattr(self.annotation, "__name__", repr(self.annotation))
        return f"Lazy[{name}]({self.config!r})"


@dataclasses.dataclass(frozen=True)
class ComponentUse:
    """A registered name a config uses, where, and the class it resolved to."""

    path: str
    base: str
    name: str
    module: str
    qualname: str
    version: int = 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Validation:
    """The outcome of validating a config: every issue, and the config with defaults explicit."""

    issues: list[ConfigIssue]
    resolved: Any
    components: list[ComponentUse] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.issues

    def raise_if_invalid(self) -> None:
        if self.issues:
            raise ConfigurationError(self.issues)


def validate(
    annotation: Any,
    config: Any,
    *,
    path: str = "",
    supplied: collections.abc.Iterable[str] = (),
    check_files: bool = True,
) -> Validation:
    """Check ``config`` against ``annotation`` without constructing anything.

    Parameters marked ``Supplied`` (and any named in ``supplied``) are passed at run time, so a
    config need not give them. ``check_files=False`` skips the existence check of ``DataFile``
    paths (an archived config names files of the machine that trained it).
    """
    walker = _Walker(build=False, extras={}, injected=frozenset(supplied), check_files=check_files)
    resolved = walker.walk(annotation, config, path)
    return Validation(walker.issues, resolved, walker.components)


def resolve(annotation: Any, config: Any, *, path: str = "") -> Any:
    """The config with every default explicit; raises ConfigurationError listing every problem."""
    validation = validate(annotation, config, path=path)
    validation.raise_if_invalid()
    return validation.resolved


def build(
    annotation: Any,
    config: Any,
    *,
    path: str = "",
    extras: Mapping[str, Any] | None = None,
    built: dict[str, Any] | None = None,
) -> Any:
    """Validate ``config`` as a whole, then construct it; ``extras`` are run-time arguments.

    ``built``, when given, receives every registered component constructed, by config path
    (``model.seq2vec_encoder``): how a migration finds the module a config section became.
    """
    extras = dict(extras or {})
    validation = validate(annotation, config, path=path, supplied=extras, check_files=False)
    validation.raise_if_invalid()
    walker = _Walker(
        build=True, extras=extras, injected=frozenset(extras), check_files=False, built=built
    )
    return walker.walk(annotation, validation.resolved, path)


def describe(annotation: Any) -> str:
    """A short human name for a type hint: ``list[int]``, ``int or null``, ``Tokenizer``."""
    if annotation is Any or annotation is inspect.Parameter.empty:
        return "any value"
    if annotation is type(None):
        return "null"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        constraints = constraints_of(args[1:])
        inner = describe(args[0])
        return ", ".join([inner, *(c.description for c in constraints)])
    if origin in (Union, types.UnionType):
        return " or ".join(describe(arg) for arg in args)
    if origin is Literal:
        return " or ".join(repr(arg) for arg in args)
    if origin is Lazy:
        return describe(args[0])
    if origin in (list, tuple, set, frozenset, collections.abc.Sequence):
        inner = describe(args[0]) if args else "any value"
        return f"list of {inner}"
    if origin in (dict, collections.abc.Mapping):
        inner = describe(args[1]) if len(args) == 2 else "any value"
        return f"object mapping names to {inner}"
    if annotation is Lazy:
        return "component config"
    if isinstance(annotation, type):
        if annotation is bool:
            return "boolean"
        if annotation in (int, float, str):
            return {int: "integer", float: "number", str: "string"}[annotation]
        if issubclass(annotation, Registrable):
            return f"{annotation.__name__} config (an object with a 'type')"
        return f"{annotation.__name__} config (an object)"
    return str(annotation)


def constructor_parameters(cls_or_callable: Any) -> list[tuple[str, inspect.Parameter, Any]]:
    """(name, parameter, resolved type hint) for a constructor, following ``**kwargs`` upward."""
    seen: set[str] = set()
    result: list[tuple[str, inspect.Parameter, Any]] = []
    if isinstance(cls_or_callable, type):
        owners: list[Any] = [
            klass for klass in cls_or_callable.__mro__ if "__init__" in vars(klass)
        ] or [cls_or_callable]
        functions = [(owner, owner.__init__) for owner in owners]
    else:
        functions = [(None, cls_or_callable)]
    for _owner, function in functions:
        if function is object.__init__:
            break
        signature = inspect.signature(function)
        hints = _type_hints(function)
        has_var_keyword = False
        for name, parameter in signature.parameters.items():
            if name == "self" or parameter.kind is inspect.Parameter.VAR_POSITIONAL:
                continue
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                has_var_keyword = True
                continue
            if name in seen:
                continue
            seen.add(name)
            result.append((name, parameter, hints.get(name, Any)))
        if not has_var_keyword:
            break
    if isinstance(cls_or_callable, type):
        # A run-time parameter stays one in subclasses that re-declare it without the marker
        # (``def __init__(self, vocab: Vocabulary, ...)`` in a plugin model).
        inherited = _supplied_in_bases(cls_or_callable)
        result = [
            (name, parameter, Annotated[hint, Supplied])
            if name in inherited and not is_supplied_hint(hint)
            else (name, parameter, hint)
            for name, parameter, hint in result
        ]
    return result


def _supplied_in_bases(cls: type) -> set[str]:
    """Names that some constructor in ``cls``'s MRO marks ``Supplied``."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = vars(klass).get("__init__")
        if init is None or init is object.__init__:
            continue
        names.update(name for name, hint in _type_hints(init).items() if is_supplied_hint(hint))
    return names


def _type_hints(function: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(function, include_extras=True)
    except Exception:  # names imported only for type checking: they read as Any
        hints: dict[str, Any] = {}
        module = inspect.getmodule(function)
        lenient = _LenientNamespace(vars(module) if module else {})
        for name, raw in getattr(function, "__annotations__", {}).items():
            try:
                hints[name] = eval(raw, {}, lenient) if isinstance(raw, str) else raw  # noqa: S307
            except Exception:
                hints[name] = Any
        return hints


class _LenientNamespace(dict[str, Any]):
    """A module's names, builtins, and ``Any`` for any other name, so that an annotation such
    as ``Annotated[Vocabulary, Supplied] | None`` keeps its markers when ``Vocabulary`` is
    imported only under ``TYPE_CHECKING``."""

    def __init__(self, namespace: Mapping[str, Any]) -> None:
        super().__init__(namespace)

    def __missing__(self, key: str) -> Any:
        import builtins

        return getattr(builtins, key, Any)


def _is_json_value(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list | tuple):
        return all(_is_json_value(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json_value(v) for k, v in value.items())
    return False


def _json_copy(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_json_copy(item) for item in value]
    if isinstance(value, dict):
        return {key: _json_copy(item) for key, item in value.items()}
    return value


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class _Walker:
    """One pass over a config: collects issues (validate) or constructs objects (build)."""

    def __init__(
        self,
        *,
        build: bool,
        extras: dict[str, Any],
        injected: frozenset[str],
        check_files: bool = True,
        built: dict[str, Any] | None = None,
    ) -> None:
        self.building = build
        self.built = built
        self.extras = extras
        self.injected = injected
        self.check_files = check_files
        self.issues: list[ConfigIssue] = []
        self.components: list[ComponentUse] = []

    def issue(self, code: str, path: str, message: str, **details: Any) -> None:
        self.issues.append(ConfigIssue(code, path, message, **details))

    def walk(self, annotation: Any, value: Any, path: str) -> Any:
        if annotation is Any or annotation is inspect.Parameter.empty:
            return value
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if annotation is type(None):
            if value is not None:
                self._wrong_type(annotation, value, path)
            return None
        if origin is Annotated:
            return self._walk_annotated(args[0], args[1:], value, path)
        if origin in (Union, types.UnionType):
            return self._walk_union(annotation, args, value, path)
        if origin is Literal:
            if value not in args:
                self.issue(
                    errors.BAD_VALUE,
                    path,
                    "value not allowed",
                    expected=describe(annotation),
                    found=value,
                    suggestion=did_you_mean(str(value), [str(arg) for arg in args]),
                )
            return value
        if origin is Lazy or annotation is Lazy:
            inner = args[0] if args else Any
            if self.building:
                return Lazy(inner, value, path)
            return self.walk(inner, value, path)
        if origin in (list, tuple, set, frozenset, collections.abc.Sequence) or annotation in (
            list,
            tuple,
        ):
            return self._walk_sequence(annotation, origin or annotation, args, value, path)
        if origin in (dict, collections.abc.Mapping) or annotation is dict:
            return self._walk_mapping(annotation, args, value, path)
        if isinstance(annotation, type):
            return self._walk_class(annotation, value, path)
        return value

    def _walk_annotated(self, inner: Any, metadata: tuple[Any, ...], value: Any, path: str) -> Any:
        """The inner type's checks, then each constraint on a value of the right type."""
        before = len(self.issues)
        result = self.walk(inner, value, path)
        if len(self.issues) > before:
            return result
        for constraint in constraints_of(metadata):
            if isinstance(constraint, ExistingFile) and not self.check_files:
                continue
            problem = constraint.problem(value)
            if problem is not None:
                self.issue(
                    errors.BAD_VALUE,
                    path,
                    problem,
                    expected=f"{describe(inner)}, {constraint.description}",
                    found=value,
                )
        return result

    # -- scalars and containers ----------------------------------------------------------------

    def _wrong_type(self, annotation: Any, value: Any, path: str) -> None:
        self.issue(
            errors.WRONG_TYPE,
            path,
            f"wrong type ({type(value).__name__})",
            expected=describe(annotation),
            found=value,
        )

    def _walk_union(self, annotation: Any, args: tuple[Any, ...], value: Any, path: str) -> Any:
        if value is None:
            if type(None) in args:
                return None
            self._wrong_type(annotation, value, path)
            return None
        candidates = [arg for arg in args if arg is not type(None)]
        best: _Walker | None = None
        for candidate in candidates:
            # Trials only choose the alternative, so run-time arguments count as supplied.
            trial = _Walker(
                build=False,
                extras=self.extras,
                injected=self.injected,
                check_files=self.check_files,
            )
            trial.walk(candidate, value, path)
            if not trial.issues:
                return self.walk(candidate, value, path)
            if best is None or _depth(trial.issues) > _depth(best.issues):
                best = trial
        if len(candidates) == 1 or (best is not None and _depth(best.issues) > len(path)):
            # The value clearly aimed at one alternative (a component config, say): its
            # own issues are more useful than "wrong type".
            assert best is not None
            self.issues.extend(best.issues)
        else:
            self._wrong_type(annotation, value, path)
        return value

    def _walk_sequence(
        self, annotation: Any, container: Any, args: tuple[Any, ...], value: Any, path: str
    ) -> Any:
        if not isinstance(value, list | tuple):
            self._wrong_type(annotation, value, path)
            return value
        if container is tuple and len(args) >= 1 and args[-1] is not Ellipsis:
            if len(value) != len(args):
                self.issue(
                    errors.BAD_VALUE,
                    path,
                    f"needs exactly {len(args)} items, got {len(value)}",
                    expected=describe(annotation),
                )
                return value
            items = [
                self.walk(arg, item, _join(path, i))
                for i, (arg, item) in enumerate(zip(args, value, strict=True))
            ]
        else:
            inner = args[0] if args else Any
            items = [self.walk(inner, item, _join(path, i)) for i, item in enumerate(value)]
        if self.building and container is tuple:
            return tuple(items)
        return items

    def _walk_mapping(self, annotation: Any, args: tuple[Any, ...], value: Any, path: str) -> Any:
        if not isinstance(value, Mapping):
            self._wrong_type(annotation, value, path)
            return value
        key_type, value_type = args if len(args) == 2 else (Any, Any)
        result = {}
        for key, item in value.items():
            if key_type is str and not isinstance(key, str):
                self._wrong_type(key_type, key, _join(path, str(key)))
            result[key] = self.walk(value_type, item, _join(path, str(key)))
        return result

    # -- classes -------------------------------------------------------------------------------

    def _walk_class(self, annotation: type, value: Any, path: str) -> Any:
        if annotation is bool:
            if not isinstance(value, bool):
                self._wrong_type(annotation, value, path)
            return value
        if annotation is int:
            if isinstance(value, bool) or not isinstance(value, int):
                self._wrong_type(annotation, value, path)
            return value
        if annotation is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                self._wrong_type(annotation, value, path)
                return value
            return float(value) if self.building else value
        if annotation is str:
            if not isinstance(value, str):
                self._wrong_type(annotation, value, path)
            return value
        if isinstance(value, annotation) and not isinstance(value, Mapping):
            return value  # an already-built object handed over programmatically
        if issubclass(annotation, Registrable):
            return self._walk_registrable(annotation, value, path)
        if _is_constructible(annotation):
            if not isinstance(value, Mapping):
                self._wrong_type(annotation, value, path)
                return value
            return self._walk_constructor(annotation, annotation, dict(value), path, type_name=None)
        self._wrong_type(annotation, value, path)
        return value

    def _walk_registrable(self, annotation: type[Registrable], value: Any, path: str) -> Any:
        if isinstance(value, str):
            value = {"type": value}
        if not isinstance(value, Mapping):
            self._wrong_type(annotation, value, path)
            return value
        config = dict(value)
        base = _registry_base(annotation)
        type_name = config.pop("type", None)
        if type_name is None:
            type_name = annotation.default_implementation
        if type_name is None:
            if base is not annotation and not inspect.isabstract(annotation):
                # A concrete class named directly in a signature: no "type" needed.
                return self._walk_constructor(annotation, annotation, config, path, None)
            available = ", ".join(base.list_available()) if base else ""
            self.issue(
                errors.MISSING_TYPE,
                _join(path, "type"),
                f"a {annotation.__name__} needs a 'type'",
                expected=f"one of: {available}" if available else "a registered name",
            )
            return value
        if not isinstance(type_name, str):
            self._wrong_type(str, type_name, _join(path, "type"))
            return value
        try:
            registration = (base or annotation).resolve(type_name)
        except RegistryError:
            lookup = base or annotation
            self.issue(
                errors.UNKNOWN_COMPONENT,
                _join(path, "type"),
                unknown_name_message(lookup, type_name),
                suggestion=None,
            )
            return value
        subclass = registration.cls
        if not issubclass(subclass, annotation):
            self.issue(
                errors.WRONG_TYPE,
                _join(path, "type"),
                f"{type_name!r} builds {subclass.__name__}, which is not a {annotation.__name__}",
                expected=annotation.__name__,
                found=type_name,
            )
            return value
        constructor = (
            getattr(subclass, registration.constructor) if registration.constructor else subclass
        )
        lookup = base or annotation
        self.components.append(
            ComponentUse(
                path=path,
                base=f"{lookup.__module__}.{lookup.__qualname__}",
                name=type_name,
                module=subclass.__module__,
                qualname=subclass.__qualname__,
                version=registration.version,
            )
        )
        built = self._walk_constructor(subclass, constructor, config, path, type_name)
        if self.building and self.built is not None:
            self.built[path] = built
        return built

    def _walk_constructor(
        self,
        cls: type,
        constructor: Callable[..., Any],
        config: dict[str, Any],
        path: str,
        type_name: str | None,
    ) -> Any:
        parameters = constructor_parameters(constructor)
        names = [name for name, _, _ in parameters]
        resolved: dict[str, Any] = {} if type_name is None else {"type": type_name}
        kwargs: dict[str, Any] = {}
        for key in config:
            if key not in names:
                self.issue(
                    errors.UNKNOWN_KEY,
                    _join(path, key),
                    f"{cls.__name__} has no parameter {key!r}",
                    expected="one of: "
                    + ", ".join(
                        n
                        for n, _, h in parameters
                        if n not in self.injected and not is_supplied_hint(h)
                    ),
                    suggestion=did_you_mean(key, names),
                )
        for name, parameter, hint in parameters:
            where = _join(path, name)
            if name in config:
                item = self.walk(hint, config[name], where)
                resolved[name] = item if not self.building else config[name]
                kwargs[name] = item
            elif name in self.extras:
                kwargs[name] = self.extras[name]
            elif name in self.injected or is_supplied_hint(hint):
                continue
            elif parameter.default is not inspect.Parameter.empty:
                if _is_json_value(parameter.default):
                    resolved[name] = _json_copy(parameter.default)
            else:
                self.issue(
                    errors.MISSING_KEY,
                    where,
                    f"{cls.__name__} requires {name!r}",
                    expected=describe(hint),
                )
        if not self.building:
            return resolved
        if self.issues:
            # Only run-time arguments can be missing here: the config itself was validated.
            raise ConfigurationError(self.issues, code=errors.MISSING_EXTRA)
        try:
            return constructor(**kwargs)
        except ConfigurationError as error:
            # A constructor's own check names its parameter; locate it in the whole config.
            raise ConfigurationError(
                [_under(path, issue) for issue in error.issues], code=error.code
            ) from error
        except KeelError:
            raise
        except Exception as error:
            raise ConfigurationError(
                [
                    ConfigIssue(
                        errors.CONSTRUCTION_FAILED,
                        path,
                        f"building {cls.__name__} failed: {type(error).__name__}: {error}",
                    )
                ]
            ) from error


def _under(path: str, issue: ConfigIssue) -> ConfigIssue:
    if not path or issue.path == path or issue.path.startswith((f"{path}.", f"{path}[")):
        return issue
    return dataclasses.replace(issue, path=_join(path, issue.path) if issue.path else path)


def is_supplied_hint(hint: Any) -> bool:
    """Whether a parameter's hint marks it as passed at run time (``Annotated[T, Supplied]``,
    possibly inside ``Optional``)."""
    if typing.get_origin(hint) is Annotated:
        return is_supplied(typing.get_args(hint)[1:])
    if typing.get_origin(hint) in (Union, types.UnionType):
        return any(is_supplied_hint(arg) for arg in typing.get_args(hint))
    return False


def _depth(issues: list[ConfigIssue]) -> int:
    return max((len(issue.path) for issue in issues), default=0)


def _registry_base(cls: type) -> type[Registrable] | None:
    """The class whose registry holds ``cls``'s name: itself or its nearest registering ancestor."""
    for klass in cls.__mro__:
        if klass in Registrable._registry and klass is not Registrable:
            return cast(type[Registrable], klass)
    return None


def _is_constructible(cls: type) -> bool:
    if dataclasses.is_dataclass(cls):
        return True
    init = vars(cls).get("__init__") or getattr(cls, "__init__")  # noqa: B009
    if init is object.__init__:
        return False
    try:
        hints = _type_hints(init)
    except Exception:
        return False
    parameters = [p for p in inspect.signature(init).parameters if p != "self"]
    return bool(parameters) and all(p in hints for p in parameters)
