"""verify end to end: a real archive on small data, then exactly one thing changed per test."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from keel.common.params import load_config
from keel.guard.verify import FAIL, PASS, SKIPPED, verify_archive
from keel.pipeline.train import train_model
from tests.conftest import SST2_SAMPLE, TINY_CLASSIFIER, install_plugin_package

PLUGIN_SOURCE = """
import torch

from keel.data.vocabulary import Vocabulary
from keel.models.basic_classifier import BasicClassifier
from keel.models.model import Model
from keel.modules.seq2vec_encoders.seq2vec_encoder import Seq2VecEncoder
from keel.modules.text_field_embedders.text_field_embedder import TextFieldEmbedder


@Model.register("scaled_classifier")
class ScaledClassifier(BasicClassifier):
    def __init__(
        self,
        vocab: Vocabulary,
        text_field_embedder: TextFieldEmbedder,
        seq2vec_encoder: Seq2VecEncoder,
        **kwargs,
    ) -> None:
        super().__init__(vocab, text_field_embedder, seq2vec_encoder, **kwargs)
        self.output_scale = torch.nn.Parameter(torch.ones(1))
"""


def mixed_case_data(directory: Path) -> Path:
    """The SST-2 sample with every sentence title-cased, so lowercasing matters."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("train.tsv", "dev.tsv"):
        lines = (SST2_SAMPLE / name).read_text(encoding="utf-8").splitlines()
        body = [line.split("\t")[0].title() + "\t" + line.split("\t")[1] for line in lines[1:]]
        (directory / name).write_text("\n".join([lines[0], *body]) + "\n", encoding="utf-8")
    return directory


def tiny_config(data_dir: Path, model_type: str = "basic_classifier") -> dict:
    config = load_config(TINY_CLASSIFIER, ext_vars={"data_dir": str(data_dir), "epochs": "1"})
    for reader in ("dataset_reader", "validation_dataset_reader"):
        config[reader]["tokenizer"] = {"type": "word", "lowercase": True}
    config["model"]["type"] = model_type
    config["golden_sample_size"] = 64
    return config


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("verify")
    data = mixed_case_data(root / "data")
    return train_model(tiny_config(data), root / "run", quiet=True).archive_path


@pytest.fixture(scope="module")
def plugin_archive(tmp_path_factory) -> tuple[Path, Path]:
    """An archive whose model comes from a package outside keel: (archive, package folder)."""
    root = tmp_path_factory.mktemp("plugin")
    src = install_plugin_package(root, "scaledpkg", PLUGIN_SOURCE)
    try:
        data = mixed_case_data(root / "data")
        result = train_model(
            tiny_config(data, "scaled_classifier"),
            root / "run",
            quiet=True,
            include_packages=["scaledpkg"],
        )
    finally:
        sys.path.remove(str(src))
    return result.archive_path, src


def statuses(report) -> dict[str, str]:
    return {step.name: step.status for step in report.checks}


def repack(source: Path, destination: Path, edit: Callable[[Path], None]) -> Path:
    """Extract ``source``, apply ``edit`` to the folder, and pack it again as it is."""
    folder = destination.parent / (destination.name + ".d")
    with tarfile.open(source) as tar:
        tar.extractall(folder, filter="data")
    edit(folder)
    with tarfile.open(destination, "w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=path.relative_to(folder).as_posix())
    return destination


def verify_in_subprocess(archive: Path, *args: str, pythonpath: Path | None = None) -> dict:
    env = {"PATH": "/usr/bin:/bin"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    result = subprocess.run(
        [sys.executable, "-m", "keel.cli.main", "verify", str(archive), "--json", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    assert (result.returncode == 0) == report["ok"]
    return report


def test_verify_unchanged_archive_passes_every_step(archive, tmp_path) -> None:
    data = mixed_case_data(tmp_path / "data") / "dev.tsv"
    report = verify_archive(archive, data=str(data))
    assert statuses(report) == {name: PASS for name in statuses(report)}, report.to_dict()
    assert report.check("predictions").details["differences"]["max"] == 0.0
    junit = report.to_junit_xml()
    assert 'tests="9"' in junit and 'failures="0"' in junit


def test_verify_corrupt_weight_byte_fails_integrity(archive, tmp_path) -> None:
    def corrupt(folder: Path) -> None:
        weights = folder / "weights.safetensors"
        data = bytearray(weights.read_bytes())
        data[-3] ^= 0xFF
        weights.write_bytes(bytes(data))

    report = verify_archive(repack(archive, tmp_path / "corrupt.tar.gz", corrupt))
    assert report.failed == ["integrity"] or report.failed[0] == "integrity"
    assert "weights.safetensors" in report.check("integrity").reason


def test_verify_changed_vocabulary_line_fails_integrity_naming_the_file(archive, tmp_path) -> None:
    def change(folder: Path) -> None:
        tokens = folder / "vocabulary" / "tokens.txt"
        lines = tokens.read_text(encoding="utf-8").splitlines()
        lines[5], lines[6] = lines[6], lines[5]
        tokens.write_text("\n".join(lines) + "\n", encoding="utf-8")

    report = verify_archive(repack(archive, tmp_path / "vocab.tar.gz", change))
    assert report.check("integrity").status == FAIL
    assert "vocabulary/tokens.txt" in report.check("integrity").reason
    # Nothing is built from bytes that are not the archived ones: every later step is skipped.
    assert all(
        check.status == "skipped" and "integrity check failed" in check.reason
        for check in report.checks[1:]
    ), report.to_dict()


def test_verify_edited_manifest_torch_version_fails_environment(archive, tmp_path) -> None:
    def edit(folder: Path) -> None:
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["environment"]["key_packages"]["torch"] = "1.13.1"
        manifest["environment"]["distributions"]["torch"] = "1.13.1"
        (folder / "manifest.json").write_text(json.dumps(manifest))

    report = verify_archive(repack(archive, tmp_path / "torch.tar.gz", edit))
    assert report.failed == ["environment"], report.to_dict()
    assert "torch" in report.check("environment").reason
    allowed = verify_archive(tmp_path / "torch.tar.gz", allow_env_drift=True)
    assert allowed.ok


def test_verify_flipped_tokenizer_lowercasing_fails_tokenizer_and_predictions(
    archive, monkeypatch
) -> None:
    from keel.data.tokenizers.word_tokenizer import WordTokenizer

    original = WordTokenizer.__init__

    def no_longer_lowercases(self, lowercase: bool = False) -> None:
        original(self, lowercase=False)

    monkeypatch.setattr(WordTokenizer, "__init__", no_longer_lowercases)
    report = verify_archive(archive)
    assert statuses(report)["tokenizer"] == FAIL
    assert statuses(report)["predictions"] == FAIL
    assert statuses(report)["preprocessing"] == FAIL
    assert (
        "old (" in report.check("tokenizer").reason and "new (" in report.check("tokenizer").reason
    )
    assert "decoded outputs changed" in report.check("predictions").reason or "score" in (
        report.check("predictions").reason
    )


@pytest.mark.slow
def test_verify_plugin_archive_passes_with_the_package(plugin_archive) -> None:
    archive, source = plugin_archive
    report = verify_in_subprocess(archive, "--include-package", "scaledpkg", pythonpath=source)
    assert report["ok"], report


@pytest.mark.slow
def test_verify_removed_plugin_package_fails_components_naming_the_fix(plugin_archive) -> None:
    archive, _ = plugin_archive
    report = verify_in_subprocess(archive)
    steps = {step["name"]: step for step in report["checks"]}
    assert steps["components"]["status"] == FAIL
    assert "scaled_classifier" in steps["components"]["reason"]
    assert "--include-package scaledpkg" in steps["components"]["reason"]


@pytest.mark.slow
def test_verify_renamed_parameter_fails_weights_and_reports_changed_source(
    plugin_archive, tmp_path
) -> None:
    archive, source = plugin_archive
    edited = tmp_path / "src" / "scaledpkg"
    edited.mkdir(parents=True)
    (edited / "__init__.py").write_text(PLUGIN_SOURCE.replace("output_scale", "scale"))
    report = verify_in_subprocess(
        archive, "--include-package", "scaledpkg", pythonpath=tmp_path / "src"
    )
    steps = {step["name"]: step for step in report["checks"]}
    assert steps["weights"]["status"] == FAIL
    assert "missing: scale" in steps["weights"]["reason"]
    assert "unexpected: output_scale" in steps["weights"]["reason"]
    assert "source of scaledpkg differs" in steps["components"]["reason"]
    assert steps["predictions"]["status"] == SKIPPED


@pytest.mark.slow
def test_verify_new_required_constructor_argument_fails_config(plugin_archive, tmp_path) -> None:
    archive, _ = plugin_archive
    edited = tmp_path / "src" / "scaledpkg"
    edited.mkdir(parents=True)
    (edited / "__init__.py").write_text(
        PLUGIN_SOURCE.replace(
            "        **kwargs,\n", "        temperature: float,\n        **kwargs,\n"
        )
    )
    report = verify_in_subprocess(
        archive, "--include-package", "scaledpkg", pythonpath=tmp_path / "src"
    )
    steps = {step["name"]: step for step in report["checks"]}
    assert steps["config"]["status"] == FAIL
    assert "model.temperature" in steps["config"]["reason"]
    assert steps["weights"]["status"] == SKIPPED


def test_verify_data_step_checks_the_recorded_preprocessing(archive, tmp_path) -> None:
    data = mixed_case_data(tmp_path / "data") / "dev.tsv"  # same bytes as the training run's
    report = verify_archive(archive, data=str(data))
    preprocessing = report.check("data").details["preprocessing"]
    assert (preprocessing["status"], preprocessing["role"]) == ("match", "validation")
    assert "same preprocessing as the training run's validation data" in report.check("data").reason


def test_verify_data_step_fails_when_the_same_data_is_preprocessed_differently(
    archive, tmp_path, monkeypatch
) -> None:
    from keel.data.tokenizers.word_tokenizer import WordTokenizer

    original = WordTokenizer.__init__

    def no_longer_lowercases(self, lowercase: bool = False) -> None:
        original(self, lowercase=False)

    monkeypatch.setattr(WordTokenizer, "__init__", no_longer_lowercases)
    data = mixed_case_data(tmp_path / "data") / "dev.tsv"
    step = verify_archive(archive, data=str(data)).check("data")
    assert step.status == FAIL
    assert "same bytes as the training run's validation file, but preprocessed differently" in (
        step.reason
    )
    assert "tokens OOV rate" in step.reason
    assert set(step.details["preprocessing"]["differences"]) == {"oov"}


# -- fail closed: a step that could not check is not a pass -----------------------------------

CUSTOM_OUTPUTS_SOURCE = """
from keel.models.basic_classifier import BasicClassifier
from keel.models.model import GoldenOutputs, Model

SCALE = 1.0


@Model.register("renamed_output_classifier")
class RenamedOutputs(BasicClassifier):
    golden_outputs = GoldenOutputs(scores=("class_scores",), decoded=("verdict",))

    def forward(self, **batch):
        output = super().forward(**batch)
        output["class_scores"] = output.pop("logits") * SCALE
        output.pop("probs")
        return output

    def make_output_human_readable(self, output):
        ids = output["class_scores"].argmax(-1).tolist()
        output["verdict"] = [self.vocab.get_token_from_index(i, "labels") for i in ids]
        return output


@Model.register("undeclared_output_classifier")
class UndeclaredOutputs(RenamedOutputs):
    golden_outputs = None
"""


@pytest.fixture(scope="module")
def custom_outputs_archives(tmp_path_factory):
    """Archives of two models whose outputs are neither logits nor label: one declares its
    golden outputs, one does not."""
    root = tmp_path_factory.mktemp("custom-outputs")
    src = install_plugin_package(root, "renamedpkg", CUSTOM_OUTPUTS_SOURCE)
    data = mixed_case_data(root / "data")
    archives = {
        name: train_model(
            tiny_config(data, name), root / name, quiet=True, include_packages=["renamedpkg"]
        ).archive_path
        for name in ("renamed_output_classifier", "undeclared_output_classifier")
    }
    yield archives, sys.modules["renamedpkg"]
    sys.path.remove(str(src))


@pytest.mark.parametrize(
    ("model", "outputs"),
    [
        ("renamed_output_classifier", ["class_scores", "verdict"]),
        # Undeclared: every per-instance output but the loss (token ids included) is compared.
        ("undeclared_output_classifier", ["class_scores", "token_ids", "verdict"]),
    ],
)
def test_verify_custom_model_outputs_are_compared_not_skipped(
    custom_outputs_archives, model, outputs, monkeypatch
) -> None:
    archives, package = custom_outputs_archives
    report = verify_archive(archives[model], include_packages=("renamedpkg",))
    predictions = report.check("predictions")
    assert report.ok and predictions.status == PASS, report.to_dict()
    assert predictions.details["outputs"] == outputs
    # The comparison is real: the same weights computing slightly different scores fail it.
    monkeypatch.setattr(package, "SCALE", 1.01)
    drifted = verify_archive(archives[model], include_packages=("renamedpkg",))
    assert drifted.check("predictions").status == FAIL
    assert "score difference" in drifted.check("predictions").reason


def repack_refreshing_hashes(source: Path, destination: Path, edit) -> Path:
    """``repack`` that also refreshes the manifest's hashes, as a careless repackager would."""
    from keel.archive.archive import describe_files
    from keel.archive.manifest import Manifest

    def edit_and_rehash(folder: Path) -> None:
        edit(folder)
        manifest = Manifest.from_dict(json.loads((folder / "manifest.json").read_text()))
        manifest.files = describe_files(folder)
        (folder / "manifest.json").write_text(manifest.to_json())

    return repack(source, destination, edit_and_rehash)


def test_verify_tokenizer_step_that_cannot_fingerprint_is_not_checked_and_fails(
    archive, monkeypatch, tmp_path
) -> None:
    import keel.guard.verify as verify_module

    monkeypatch.setattr(verify_module, "reader_tokenizer_fingerprint", lambda *args: None)
    report = verify_archive(archive)
    assert report.check("tokenizer").status == "not_checked"
    assert not report.ok and report.failed == ["tokenizer"]
    junit = report.to_junit_xml()
    assert 'failures="1"' in junit and "not checked:" in junit
    allowed = verify_archive(archive, allow_unchecked=("tokenizer",))
    assert allowed.ok and allowed.check("tokenizer").status == "not_checked"
    assert allowed.escapes == [
        {
            "check": "tokenizer",
            "status": "not_checked",
            "allowed_by": "--allow-unchecked tokenizer",
        }
    ]
    document = allowed.to_dict()
    assert (
        document["escapes"] and document["checks"][5]["allowed_by"] == "--allow-unchecked tokenizer"
    )
    assert "allowed by --allow-unchecked tokenizer" in allowed.to_junit_xml()


def test_verify_golden_file_without_outputs_is_not_checked(archive, tmp_path) -> None:
    def empty_outputs(folder: Path) -> None:
        path = folder / "golden" / "predictions.json"
        golden = json.loads(path.read_text())
        golden["scores"] = [{} for _ in golden["scores"]]
        golden["decoded"] = [{} for _ in golden["decoded"]]
        path.write_text(json.dumps(golden))

    edited = repack_refreshing_hashes(archive, tmp_path / "empty.tar.gz", empty_outputs)
    report = verify_archive(edited)
    assert report.check("integrity").status == PASS
    assert report.check("predictions").status == "not_checked"
    assert "golden_outputs" in report.check("predictions").reason
    assert report.failed == ["predictions"]


def test_verify_archive_without_golden_predictions_is_not_checked(archive, tmp_path) -> None:
    def drop_golden(folder: Path) -> None:
        (folder / "golden" / "predictions.json").unlink()

    report = verify_archive(repack_refreshing_hashes(archive, tmp_path / "g.tar.gz", drop_golden))
    assert statuses(report)["preprocessing"] == statuses(report)["predictions"] == "not_checked"
    assert not report.ok


def test_verify_data_step_with_an_older_fingerprint_format_is_not_checked(
    archive, tmp_path
) -> None:
    def older_format(folder: Path) -> None:
        manifest = json.loads((folder / "manifest.json").read_text())
        for entry in manifest["preprocessing_fingerprints"].values():
            entry["format"] = "keel-preprocessing-fingerprint/1"
        (folder / "manifest.json").write_text(json.dumps(manifest))

    edited = repack_refreshing_hashes(archive, tmp_path / "old.tar.gz", older_format)
    data = mixed_case_data(tmp_path / "data") / "dev.tsv"  # same bytes as the run's validation
    step = verify_archive(edited, data=str(data)).check("data")
    assert step.status == "not_checked", step.to_dict()
    assert "keel-preprocessing-fingerprint/1" in step.reason
    assert verify_archive(edited, data=str(data), allow_unchecked=("data",)).ok


def test_verify_refuses_an_unknown_step_name_in_allow_unchecked(archive) -> None:
    from keel.common.errors import KeelError

    with pytest.raises(KeelError, match="names no verify step: tokeniser"):
        verify_archive(archive, allow_unchecked=("tokeniser",))


def test_verify_after_a_failed_integrity_check_nothing_is_built(archive, tmp_path) -> None:
    """The config names a type by dotted path to a module beside the archive: with the
    integrity check failed, no step imports or builds anything."""

    def hostile_config(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        config["model"]["type"] = "planted_module.Evil"
        (folder / "config.json").write_text(json.dumps(config))

    edited = repack(archive, tmp_path / "hostile.tar.gz", hostile_config)
    report = verify_archive(edited)
    assert report.check("integrity").status == FAIL
    assert {check.status for check in report.checks[1:]} == {SKIPPED}
    assert "planted_module" not in sys.modules
