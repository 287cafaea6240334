"""Plugins: --include-package, the ``keel.plugins`` entry-point group and ``.keel_plugins``.

Each test writes a real package (and, for entry points, a real ``*.dist-info`` that
importlib.metadata discovers on sys.path, as it does for any installed distribution) under a
unique name, so the registrations they add cannot collide with each other or with keel's.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from keel.archive import components
from keel.common import errors
from keel.common.errors import RegistryError
from keel.common.plugins import ENTRY_POINT_GROUP, discover_plugins, import_plugins
from keel.modules.seq2vec_encoders.seq2vec_encoder import Seq2VecEncoder

COMPONENT_SOURCE = """
from keel.modules.seq2vec_encoders.seq2vec_encoder import Seq2VecEncoder


@Seq2VecEncoder.register("{name}")
class PluginEncoder(Seq2VecEncoder):
    def __init__(self, input_dim: int = 4) -> None:
        super().__init__()
        self.input_dim = input_dim
"""


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def write_package(root: Path, package: str, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / package / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def write_distribution(root: Path, name: str, version: str, module: str) -> None:
    """The metadata pip writes for an installed wheel, with a ``keel.plugins`` entry point."""
    # pip names the folder after the normalized name, as importlib.metadata expects.
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n{name} = {module}\n", encoding="utf-8"
    )
    (info / "top_level.txt").write_text(f"{module}\n", encoding="utf-8")


def test_plugins_include_package_imports_every_submodule(tmp_path, monkeypatch) -> None:
    package, name = unique("incpkg"), unique("deep_encoder")
    write_package(
        tmp_path,
        package,
        {
            "__init__.py": "",
            "encoders/__init__.py": "",
            "encoders/deep/__init__.py": "",
            "encoders/deep/bag.py": COMPONENT_SOURCE.format(name=name),
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert not Seq2VecEncoder.is_registered(name)
    assert package in import_plugins([package])
    cls = Seq2VecEncoder.by_name(name)
    assert cls.__module__ == f"{package}.encoders.deep.bag"


def test_plugins_include_package_that_cannot_be_imported_names_it() -> None:
    with pytest.raises(RegistryError) as raised:
        import_plugins(["no_such_package_for_keel"])
    assert raised.value.code == errors.INCLUDE_PACKAGE_FAILED
    assert "no_such_package_for_keel" in str(raised.value)


def test_plugins_entry_point_of_an_installed_distribution_is_imported(
    tmp_path, monkeypatch
) -> None:
    module, name = unique("epplug"), unique("entry_point_encoder")
    distribution = module.replace("_", "-")
    write_package(tmp_path, module, {"__init__.py": COMPONENT_SOURCE.format(name=name)})
    write_distribution(tmp_path, distribution, "1.2.3", module)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert module in discover_plugins(tmp_path / "elsewhere")
    assert module in import_plugins()
    assert Seq2VecEncoder.by_name(name).__module__ == module
    # The archive manifest records the distribution that provided the module.
    components._module_distributions.cache_clear()
    try:
        assert components.distribution_of(module) == f"{distribution}==1.2.3"
    finally:
        components._module_distributions.cache_clear()


def test_plugins_local_file_in_the_working_directory_is_read(tmp_path, monkeypatch) -> None:
    first, second = unique("localplug"), unique("localplug")
    names = {first: unique("local_encoder"), second: unique("local_encoder")}
    for module, name in names.items():
        write_package(tmp_path / "src", module, {"__init__.py": COMPONENT_SOURCE.format(name=name)})
    work = tmp_path / "work"
    work.mkdir()
    (work / ".keel_plugins").write_text(
        f"# plugins for this project\n{first}\n\n   {second}   # trailing comment\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    assert discover_plugins(work)[-2:] == [first, second]
    monkeypatch.chdir(work)
    imported = import_plugins()
    assert imported[-2:] == [first, second]
    for module, name in names.items():
        assert Seq2VecEncoder.by_name(name).__module__ == module
    # Included twice (file and flag): imported once, listed once.
    assert import_plugins([first]).count(first) == 1


def test_plugins_nothing_discovered_without_entry_points_or_file(tmp_path) -> None:
    found = discover_plugins(tmp_path)
    assert all(not module.startswith(("localplug_", "epplug_")) for module in found)
