"""The source of custom (non-keel) packages a model uses: hashed always, bundled on request.

Every archive's manifest has a ``custom_code`` section: for each top-level package outside keel
that defines a registered component the config uses, the sha256 of each of its ``.py`` files.
``keel train --bundle-code`` also stores those files in the archive under ``code/`` (hashed in
the manifest like every member). Loading imports bundled code only when the caller trusts it
(``--trust-bundled-code``), only after checking every file against the manifest, and only for
packages that are not imported already.
"""

from __future__ import annotations

import atexit
import importlib.util
import shutil
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from keel.archive.manifest import ComponentRecord, Manifest
from keel.common import errors
from keel.common.errors import ArchiveError
from keel.common.filenames import CODE_DIR  # noqa: E402  (re-exported)
from keel.common.hashing import sha256_file
from keel.common.registry import import_module_and_submodules

SECTION = "custom_code"


def custom_packages(
    components: Iterable[ComponentRecord], include_packages: Iterable[str] = ()
) -> list[str]:
    """Top-level packages outside keel that define used components or were included."""
    modules = [component.module for component in components]
    modules += list(include_packages)
    tops = {module.split(".")[0] for module in modules if module}
    return sorted(top for top in tops if top != "keel")


def package_source_files(top: str) -> dict[str, Path]:
    """Every ``.py`` file of an importable top-level package (or module), by archive path."""
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return {}
    if spec.submodule_search_locations:  # a package, namespace packages included
        files: dict[str, Path] = {}
        for location in spec.submodule_search_locations:
            root = Path(location)
            for path in sorted(root.rglob("*.py")):
                if "__pycache__" not in path.parts:
                    files[f"{top}/{path.relative_to(root).as_posix()}"] = path
        return files
    if spec.origin in (None, "built-in", "frozen"):
        return {}
    origin = Path(spec.origin)
    return {origin.name: origin} if origin.suffix == ".py" else {}


def describe_custom_code(packages: Iterable[str]) -> dict[str, dict[str, str]]:
    """For each package, the sha256 of each of its source files (the manifest section)."""
    return {
        top: {name: sha256_file(path) for name, path in package_source_files(top).items()}
        for top in packages
    }


def stage_code(packages: Iterable[str], staging: Path) -> list[str]:
    """Copy the packages' source files into ``staging/code/``; the archive paths written."""
    written = []
    for top in packages:
        files = package_source_files(top)
        if not files:
            raise ArchiveError(
                f"--bundle-code: package {top!r} has no Python source files to bundle",
                code=errors.ARCHIVE_MISSING_MEMBER,
            )
        for name, path in files.items():
            destination = staging / CODE_DIR / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)
            written.append(f"{CODE_DIR}/{name}")
    return written


def bundled_packages(manifest: Manifest) -> list[str]:
    """The packages whose source the archive holds under ``code/``."""
    section = manifest.custom_code
    if not isinstance(section, dict) or not section.get("bundled"):
        return []
    packages = section.get("packages")
    return sorted(packages) if isinstance(packages, dict) else []


def source_differences(manifest: Manifest) -> list[str]:
    """Custom packages whose importable source differs from the recorded one, file by file."""
    section = manifest.custom_code
    if not isinstance(section, dict) or not isinstance(section.get("packages"), dict):
        return []
    risks = []
    for top, recorded in sorted(section["packages"].items()):
        if not isinstance(recorded, dict):
            continue
        current = describe_custom_code([top])[top]
        if not current:
            continue  # not importable here: the components check reports that
        changed = sorted(
            name for name in recorded.keys() & current.keys() if recorded[name] != current[name]
        )
        added = sorted(current.keys() - recorded.keys())
        removed = sorted(recorded.keys() - current.keys())
        parts = [
            f"{label}: {', '.join(names)}"
            for label, names in (("changed", changed), ("new", added), ("gone", removed))
            if names
        ]
        if parts:
            risks.append(
                f"the source of package {top} differs from the one the archive was made with "
                f"({'; '.join(parts)})"
            )
    return risks


_EXTRACTED: list[Path] = []


def _cleanup() -> None:
    for path in _EXTRACTED:
        shutil.rmtree(path, ignore_errors=True)


def load_bundled_code(root: Path, manifest: Manifest) -> list[str]:
    """Import the bundled packages from an extracted archive; return the ones imported.

    Each file is checked against the manifest's hash before anything is imported. The code is
    copied to a folder that lives as long as the process, so tracebacks and ``inspect`` work.
    Packages already imported (for instance through ``--include-package``) are left alone.
    """
    packages = bundled_packages(manifest)
    if not packages:
        return []
    files = manifest.files
    source = root / CODE_DIR
    bundled = sorted(
        path.relative_to(root).as_posix() for path in source.rglob("*") if path.is_file()
    )
    for name in bundled:
        entry = files.get(name)
        if entry is None or entry.sha256 != sha256_file(root / name):
            raise ArchiveError(
                f"bundled code {name} does not match the manifest's sha256; refusing to import it",
                code=errors.ARCHIVE_HASH_MISMATCH,
            )
    wanted = [top for top in packages if top not in sys.modules]
    if not wanted:
        return []
    if not _EXTRACTED:
        atexit.register(_cleanup)
    destination = Path(tempfile.mkdtemp(prefix="keel-bundled-code-"))
    _EXTRACTED.append(destination)
    shutil.copytree(source, destination, dirs_exist_ok=True)
    sys.path.insert(0, str(destination))
    try:
        for top in wanted:
            import_module_and_submodules(top)
    finally:
        sys.path.remove(str(destination))
    return wanted
