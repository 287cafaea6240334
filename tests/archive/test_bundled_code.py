"""A real custom model in a temporary package: trained with --include-package, loaded elsewhere.

Archives are trained and loaded by ``keel`` subprocesses, so this test process never imports
the package, and "without the package" really means a Python that cannot import it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from keel.archive.archive import read_manifest
from keel.archive.bundled_code import (
    bundled_packages,
    custom_packages,
    describe_custom_code,
    source_differences,
    stage_code,
)
from keel.archive.manifest import ComponentRecord, Manifest
from keel.common import errors
from keel.common.errors import ArchiveError
from tests.conftest import SST2_SAMPLE, TINY_CLASSIFIER

KEEL = [sys.executable, "-m", "keel.cli.main"]
PACKAGE = "bundledpkg"
MODEL_NAME = "bundled_scaled_classifier"
SOURCES = {
    "__init__.py": "from bundledpkg import model  # noqa: F401\n",
    "scale.py": "def initial_scale() -> float:\n    return 1.0\n",
    "model.py": f'''
import torch

from bundledpkg.scale import initial_scale
from keel.data.vocabulary import Vocabulary
from keel.models.basic_classifier import BasicClassifier
from keel.models.model import Model
from keel.modules.seq2vec_encoders.seq2vec_encoder import Seq2VecEncoder
from keel.modules.text_field_embedders.text_field_embedder import TextFieldEmbedder


@Model.register("{MODEL_NAME}")
class ScaledClassifier(BasicClassifier):
    def __init__(
        self,
        vocab: Vocabulary,
        text_field_embedder: TextFieldEmbedder,
        seq2vec_encoder: Seq2VecEncoder,
        **kwargs,
    ) -> None:
        super().__init__(vocab, text_field_embedder, seq2vec_encoder, **kwargs)
        self.output_scale = torch.nn.Parameter(torch.full((1,), initial_scale()))
''',
}
INPUT = '{"text": "a gripping , beautifully made film"}\n'


def write_package(root: Path, sources: dict[str, str] = SOURCES) -> Path:
    package = root / PACKAGE
    package.mkdir(parents=True)
    for name, text in sources.items():
        (package / name).write_text(text, encoding="utf-8")
    return root


def keel(*args: str, pythonpath: Path | None, cwd: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [*KEEL, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


def train(root: Path, *extra: str) -> Path:
    source = write_package(root / "src")
    overrides = json.dumps({"model": {"type": MODEL_NAME}})
    result = keel(
        "train",
        str(TINY_CLASSIFIER),
        "-s",
        str(root / "run"),
        "--quiet",
        "--ext-var",
        f"data_dir={SST2_SAMPLE}",
        "--ext-var",
        "epochs=1",
        "--overrides",
        overrides,
        "--include-package",
        PACKAGE,
        *extra,
        pythonpath=source,
        cwd=root,
    )
    assert result.returncode == 0, result.stderr
    return root / "run" / "model.tar.gz"


@pytest.fixture(scope="module")
def plain_archive(tmp_path_factory) -> Path:
    return train(tmp_path_factory.mktemp("plain"))


@pytest.fixture(scope="module")
def bundled_archive(tmp_path_factory) -> Path:
    return train(tmp_path_factory.mktemp("bundled"), "--bundle-code")


def predict(archive: Path, cwd: Path, *args: str, pythonpath: Path | None = None):
    (cwd / "input.jsonl").write_text(INPUT, encoding="utf-8")
    return keel(
        "predict", str(archive), str(cwd / "input.jsonl"), *args, pythonpath=pythonpath, cwd=cwd
    )


@pytest.mark.slow
def test_bundled_code_manifest_hashes_every_source_file_of_the_package(
    plain_archive, bundled_archive
) -> None:
    plain, bundled = read_manifest(plain_archive), read_manifest(bundled_archive)
    expected = {f"{PACKAGE}/{name}" for name in SOURCES}
    assert set(plain.custom_code["packages"][PACKAGE]) == expected
    assert plain.custom_code["bundled"] is False
    assert not any(name.startswith("code/") for name in plain.files)
    assert bundled.custom_code["bundled"] is True
    assert {f"code/{name}" for name in expected} <= set(bundled.files)
    model_entry = next(entry for entry in bundled.components if entry.name == MODEL_NAME)
    assert model_entry.module == f"{PACKAGE}.model"
    assert model_entry.distribution == "local source"


@pytest.mark.slow
def test_bundled_code_missing_module_fails_naming_name_module_and_fix(
    plain_archive, tmp_path
) -> None:
    result = predict(plain_archive, tmp_path)
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "[KC004]" in message
    assert MODEL_NAME in message
    assert f"{PACKAGE}.model" in message
    assert f"--include-package {PACKAGE}" in message
    assert "--trust-bundled-code" not in message


@pytest.mark.slow
def test_bundled_code_loads_with_the_package_included(plain_archive, tmp_path) -> None:
    source = write_package(tmp_path / "src")
    result = predict(plain_archive, tmp_path, "--include-package", PACKAGE, pythonpath=source)
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["label"] in {"0", "1"}
    assert "differs" not in result.stderr


@pytest.mark.slow
def test_bundled_code_needs_explicit_trust_and_then_loads(bundled_archive, tmp_path) -> None:
    refused = predict(bundled_archive, tmp_path)
    assert refused.returncode == 2
    message = " ".join(refused.stderr.split())
    assert MODEL_NAME in message and "--trust-bundled-code" in message
    trusted = predict(bundled_archive, tmp_path, "--trust-bundled-code")
    assert trusted.returncode == 0, trusted.stderr
    assert json.loads(trusted.stdout)["label"] in {"0", "1"}
    evaluated = keel(
        "evaluate",
        str(bundled_archive),
        str(SST2_SAMPLE / "dev.tsv"),
        "--trust-bundled-code",
        pythonpath=None,
        cwd=tmp_path,
    )
    assert evaluated.returncode == 0, evaluated.stderr
    verified = keel(
        "verify",
        str(bundled_archive),
        "--json",
        "--trust-bundled-code",
        pythonpath=None,
        cwd=tmp_path,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["ok"]


@pytest.mark.slow
def test_bundled_code_edited_source_is_reported(plain_archive, tmp_path) -> None:
    # Only scale.py changes: not the module defining the class, so only the package-wide
    # hashes can notice.
    edited = dict(SOURCES)
    edited["scale.py"] = SOURCES["scale.py"].replace("1.0", "2.0")
    source = write_package(tmp_path / "src", edited)
    result = predict(plain_archive, tmp_path, "--include-package", PACKAGE, pythonpath=source)
    assert result.returncode == 0, result.stderr
    message = " ".join(result.stderr.split())
    assert f"the source of package {PACKAGE} differs" in message
    assert f"changed: {PACKAGE}/scale.py" in message


@pytest.mark.slow
def test_bundled_code_tampered_code_is_refused_and_never_imported(
    bundled_archive, tmp_path
) -> None:
    marker = tmp_path / "MARKER"
    tampered = tmp_path / "tampered.tar.gz"
    with tarfile.open(bundled_archive) as source, tarfile.open(tampered, "w:gz") as out:
        for member in source:
            data = source.extractfile(member).read()
            if member.name == f"code/{PACKAGE}/scale.py":
                data += f"\nimport pathlib\npathlib.Path({str(marker)!r}).touch()\n".encode()
                member.size = len(data)
            out.addfile(member, __import__("io").BytesIO(data))
    result = predict(tampered, tmp_path, "--trust-bundled-code")
    assert result.returncode == 2
    assert "[KA008]" in result.stderr and "scale.py" in result.stderr
    assert not marker.exists()


def test_bundled_code_helpers_on_an_importable_package(tmp_path, monkeypatch) -> None:
    source = tmp_path / "src" / "helperpkg"
    (source / "sub").mkdir(parents=True)
    (source / "__init__.py").write_text("")
    (source / "sub" / "__init__.py").write_text("")
    (source / "sub" / "layer.py").write_text("X = 1\n")
    (source / "sub" / "__pycache__").mkdir()
    (source / "sub" / "__pycache__" / "junk.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    components = [
        ComponentRecord("keel.models.model.Model", "x", module, "X", None)
        for module in ("keel.models.basic_classifier", "helperpkg.sub.layer")
    ]
    assert custom_packages(components, ["helperpkg"]) == ["helperpkg"]
    hashes = describe_custom_code(["helperpkg"])["helperpkg"]
    assert set(hashes) == {
        "helperpkg/__init__.py",
        "helperpkg/sub/__init__.py",
        "helperpkg/sub/layer.py",
    }
    manifest = Manifest(custom_code={"bundled": True, "packages": {"helperpkg": hashes}})
    assert bundled_packages(manifest) == ["helperpkg"]
    assert source_differences(manifest) == []
    (source / "sub" / "layer.py").write_text("X = 2\n")
    (source / "new.py").write_text("")
    (source / "sub" / "__init__.py").unlink()
    [risk] = source_differences(manifest)
    assert "changed: helperpkg/sub/layer.py" in risk
    assert "new: helperpkg/new.py" in risk
    assert "gone: helperpkg/sub/__init__.py" in risk
    staged = stage_code(["helperpkg"], tmp_path / "staging")
    assert "code/helperpkg/sub/layer.py" in staged
    assert (
        tmp_path / "staging" / "code" / "helperpkg" / "sub" / "layer.py"
    ).read_text() == "X = 2\n"
    # A namespace package (no __init__.py) and a single-module plugin are covered too.
    (tmp_path / "src" / "nspkg_for_keel").mkdir()
    (tmp_path / "src" / "nspkg_for_keel" / "layer.py").write_text("")
    (tmp_path / "src" / "single_module_for_keel.py").write_text("")
    described = describe_custom_code(["nspkg_for_keel", "single_module_for_keel"])
    assert set(described["nspkg_for_keel"]) == {"nspkg_for_keel/layer.py"}
    assert set(described["single_module_for_keel"]) == {"single_module_for_keel.py"}
    with pytest.raises(ArchiveError) as raised:
        stage_code(["no_such_pkg_for_keel"], tmp_path / "staging")
    assert raised.value.code == errors.ARCHIVE_MISSING_MEMBER


def test_bundled_code_missing_component_error_names_the_distribution_fix() -> None:
    from keel.archive.model_archive import check_archive_components

    manifest = Manifest.from_dict(
        {
            "format_version": 1,
            "components": [
                {
                    "base": "keel.models.model.Model",
                    "name": "acme_classifier",
                    "module": "acme_models.classifier",
                    "class": "AcmeClassifier",
                    "distribution": "acme-models==1.2.0",
                    "paths": ["model"],
                },
                {
                    "base": "keel.data.tokenizers.tokenizer.Tokenizer",
                    "name": "whitespace",
                    "module": "keel.data.tokenizers.whitespace_tokenizer",
                    "class": "WhitespaceTokenizer",
                    "distribution": "keel==0.1.0",
                    "paths": ["dataset_reader.tokenizer"],
                },
            ],
            "custom_code": {"bundled": True, "packages": {"acme_models": {}}},
        }
    )
    with pytest.raises(ArchiveError) as raised:
        check_archive_components("model.tar.gz", manifest, trusted_code=False)
    message = str(raised.value)
    assert raised.value.code == errors.UNKNOWN_COMPONENT
    assert "1 component(s)" in message
    assert "model: registered name 'acme_classifier' (Model)" in message
    assert "acme_models.classifier.AcmeClassifier" in message
    assert "pip install 'acme-models==1.2.0'" in message
    assert "bundles the source of acme_models" in message and "--trust-bundled-code" in message
    manifest.components = manifest.components[1:]
    assert check_archive_components("model.tar.gz", manifest, trusted_code=False) == []
