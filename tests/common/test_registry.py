from __future__ import annotations

import sys

import pytest

from keel.common import errors
from keel.common.errors import RegistryError
from keel.common.registry import Registrable, import_module_and_submodules


class Animal(Registrable):
    default_implementation = "dog"


@Animal.register("dog")
class Dog(Animal):
    pass


@Animal.register("cat")
class Cat(Animal):
    pass


def test_registry_resolves_names_and_lists_default_first() -> None:
    assert Animal.by_name("cat") is Cat
    assert Animal.list_available() == ["dog", "cat"]
    assert Animal.name_of(Cat) == "cat"


def test_registry_unknown_name_suggests_close_match_and_include_package() -> None:
    with pytest.raises(RegistryError) as raised:
        Animal.by_name("cta")
    assert raised.value.code == errors.UNKNOWN_COMPONENT
    assert "did you mean 'cat'" in str(raised.value)
    assert "--include-package" in str(raised.value)


def test_registry_refuses_a_second_class_under_the_same_name() -> None:
    with pytest.raises(RegistryError) as raised:

        @Animal.register("dog")
        class OtherDog(Animal):
            pass

    assert raised.value.code == errors.DUPLICATE_NAME


def test_registry_accepts_fully_qualified_class_path() -> None:
    assert Animal.by_name(f"{__name__}.Cat") is Cat


def test_registry_include_package_imports_submodules(tmp_path, monkeypatch) -> None:
    package = tmp_path / "myplugins"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "bird.py").write_text(
        f"from {__name__} import Animal\n\n"
        "@Animal.register('bird')\nclass Bird(Animal):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import_module_and_submodules("myplugins")
    assert Animal.by_name("bird").__module__ == "myplugins.sub.bird"
    sys.modules.pop("myplugins.sub.bird", None)


def test_registry_include_package_missing_module_is_a_clear_error() -> None:
    with pytest.raises(RegistryError) as raised:
        import_module_and_submodules("no_such_package_here")
    assert raised.value.code == errors.INCLUDE_PACKAGE_FAILED


def test_registry_include_package_finds_packages_in_the_working_directory(tmp_path) -> None:
    import subprocess

    (tmp_path / "localplug").mkdir()
    (tmp_path / "localplug" / "__init__.py").write_text("LOADED = True\n")
    code = (
        "import sys; sys.path = [p for p in sys.path if p not in ('', '.')]\n"
        "from keel.common.registry import import_module_and_submodules\n"
        "import_module_and_submodules('localplug'); print('ok')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.stdout.strip() == "ok", result.stderr
