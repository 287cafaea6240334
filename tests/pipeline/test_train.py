from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from keel.archive.model_archive import load_archive
from keel.common import errors
from keel.common.errors import ConfigurationError, TrainingError
from keel.pipeline.train import train_model
from keel.training.evaluation import evaluate
from keel.training.experiment import validate_experiment


def test_experiment_validates_the_whole_config_before_any_work(tmp_path, tiny_classifier_config):
    config = tiny_classifier_config()
    config["model"]["seq2vec_encoder"]["hiden_size"] = 8
    config["trainer"]["num_epochs"] = "two"
    config["dataset_reader"]["type"] = "tvs"
    with pytest.raises(ConfigurationError) as raised:
        train_model(config, tmp_path / "run", quiet=True)
    paths = {issue.path for issue in raised.value.issues}
    assert paths == {
        "model.seq2vec_encoder.hiden_size",
        "trainer.num_epochs",
        "dataset_reader.type",
    }
    assert not (tmp_path / "run").exists()


def test_experiment_resolved_config_is_a_fixed_point(tiny_classifier_config):
    resolved = validate_experiment(tiny_classifier_config()).resolved
    assert validate_experiment(resolved).resolved == resolved
    assert resolved["model"]["seq2vec_encoder"]["num_layers"] == 1
    assert resolved["data_loader"]["seed"] == resolved["random_seed"]


def test_experiment_trains_archives_and_evaluates_to_the_recorded_accuracy(
    tmp_path, tiny_classifier_config
):
    result = train_model(tiny_classifier_config(epochs=2), tmp_path / "run", quiet=True)
    directory = tmp_path / "run"
    for name in ("config.json", "env.json", "metrics.json", "model.tar.gz", "vocabulary"):
        assert (directory / name).exists(), name
    archive = load_archive(result.archive_path)
    assert not archive.model.training
    instances = list(archive.validation_dataset_reader.read(archive.config["validation_data_path"]))
    metrics = evaluate(archive.model, instances, archive.vocab, batch_size=16)
    assert metrics["accuracy"] == result.metrics["best_validation_accuracy"]
    assert archive.manifest.validation_metrics["best_validation_accuracy"] == metrics["accuracy"]


def test_experiment_same_config_twice_gives_bit_identical_weights(tmp_path, tiny_classifier_config):
    first = train_model(tiny_classifier_config(), tmp_path / "a", quiet=True)
    second = train_model(tiny_classifier_config(), tmp_path / "b", quiet=True)
    a = load_file(str(first.serialization_dir / "best.safetensors"))
    b = load_file(str(second.serialization_dir / "best.safetensors"))
    assert a.keys() == b.keys()
    assert all(a[key].equal(b[key]) for key in a)


def test_experiment_refuses_to_overwrite_without_force(tmp_path, tiny_classifier_config):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("precious")
    with pytest.raises(TrainingError) as raised:
        train_model(tiny_classifier_config(), tmp_path / "run", quiet=True)
    assert raised.value.code == errors.SERIALIZATION_DIR_EXISTS
    assert (tmp_path / "run" / "keep.txt").read_text() == "precious"


def test_experiment_recover_needs_the_same_config(tmp_path, tiny_classifier_config):
    with pytest.raises(TrainingError) as raised:
        train_model(tiny_classifier_config(), tmp_path / "none", recover=True, quiet=True)
    assert raised.value.code == errors.NOTHING_TO_RECOVER
    train_model(tiny_classifier_config(epochs=1), tmp_path / "run", quiet=True)
    changed = tiny_classifier_config(epochs=1)
    changed["trainer"]["optimizer"]["lr"] = 0.5
    with pytest.raises(TrainingError) as raised:
        train_model(changed, tmp_path / "run", recover=True, quiet=True)
    assert raised.value.code == errors.RECOVER_CONFIG_MISMATCH
    assert "trainer" in str(raised.value)
    assert (
        json.loads((tmp_path / "run" / "config.json").read_text())["trainer"]["optimizer"]["lr"]
        == 0.01
    )


def test_experiment_second_run_takes_instances_from_the_cache(tmp_path, tiny_classifier_config):
    from keel.guard.preprocessing_cache import PreprocessingCache
    from keel.pipeline.train import prepare_data
    from keel.training.experiment import validate_experiment

    cache = PreprocessingCache(tmp_path / "cache")
    first = train_model(tiny_classifier_config(1), tmp_path / "a", quiet=True, cache=cache)
    second = train_model(tiny_classifier_config(1), tmp_path / "b", quiet=True, cache=cache)
    assert first.metrics["best_validation_accuracy"] == second.metrics["best_validation_accuracy"]
    a = load_file(str(first.serialization_dir / "best.safetensors"))
    b = load_file(str(second.serialization_dir / "best.safetensors"))
    assert all(a[key].equal(b[key]) for key in a)

    from keel.common.from_params import build
    from keel.training.experiment import Experiment

    def hits(config, name):
        resolved = validate_experiment(config).resolved
        data = prepare_data(
            build(Experiment, resolved), resolved, tmp_path / name, recover=False, cache=cache
        )
        return data.cache_hits

    (tmp_path / "c").mkdir()
    assert hits(tiny_classifier_config(1), "c") == {"train": True, "validation": True}
    # Only the validation reader changed: the vocabulary (from train) and train entries hold.
    changed = tiny_classifier_config(1)
    changed["validation_dataset_reader"]["max_instances"] = 100
    (tmp_path / "d").mkdir()
    assert hits(changed, "d") == {"train": True, "validation": False}
    # A tokenizer change alters the vocabulary, so every entry keyed by it misses.
    changed = tiny_classifier_config(1)
    changed["dataset_reader"]["tokenizer"] = {"type": "word", "lowercase": True}
    (tmp_path / "e").mkdir()
    assert hits(changed, "e") == {"train": False, "validation": False}


def test_experiment_manifest_fingerprints_equal_the_standalone_ones(
    tmp_path, tiny_classifier_config
):
    """Training fingerprints the instances it packs for its loaders; a cache hit reuses the
    stored fingerprint. Both must equal fingerprinting the file from scratch."""
    from keel.guard.fingerprint import preprocessing_fingerprint
    from keel.guard.preprocessing_cache import PreprocessingCache

    cache = PreprocessingCache(tmp_path / "cache")
    runs = [
        train_model(tiny_classifier_config(1), tmp_path / name, quiet=True, cache=run_cache)
        for name, run_cache in (("plain", None), ("miss", cache), ("hit", cache))
    ]
    archive = load_archive(runs[0].archive_path)
    recorded = [load_archive(run.archive_path).manifest.preprocessing_fingerprints for run in runs]
    assert recorded[0] == recorded[1] == recorded[2]
    readers = {"train": archive.dataset_reader, "validation": archive.validation_dataset_reader}
    for role, reader in readers.items():
        path = archive.config[f"{role}_data_path"]
        expected = preprocessing_fingerprint(reader.read(path), archive.vocab)
        assert recorded[0][role] == expected.to_dict()


def test_experiment_hands_packs_only_to_loaders_that_take_them():
    """A custom loader written against the one-argument index_with keeps working."""
    from keel.data import MultiProcessDataLoader
    from keel.data.batch import PackedInstances
    from keel.pipeline.train import _index_loader
    from tests.training.test_trainer import TRAIN, VOCAB

    class OneArgumentLoader:
        def index_with(self, vocab):
            self.vocab = vocab

    packed = PackedInstances.build(TRAIN, VOCAB)
    old_style = OneArgumentLoader()
    _index_loader(old_style, VOCAB, packed)
    assert old_style.vocab is VOCAB
    loader = MultiProcessDataLoader(TRAIN, batch_size=4)
    _index_loader(loader, VOCAB, packed)
    assert loader._packed is packed


def test_experiment_value_constraints_are_config_errors_before_any_work(
    tmp_path, tiny_classifier_config
):
    config = tiny_classifier_config()
    config["trainer"]["num_epochs"] = 0
    config["data_loader"] = {"batch_size": 0}
    config["model"]["seq2vec_encoder"]["hidden_size"] = -1
    config["trainer"]["optimizer"]["lr"] = float("nan")
    config["model"]["dropout"] = 1.5
    config["validation_data_path"] = str(tmp_path / "no-such-dev.tsv")
    with pytest.raises(ConfigurationError) as raised:
        train_model(config, tmp_path / "run", quiet=True)
    found = {issue.path: issue for issue in raised.value.issues}
    assert set(found) == {
        "trainer.num_epochs",
        "data_loader.batch_size",
        "model.seq2vec_encoder.hidden_size",
        "trainer.optimizer.lr",
        "model.dropout",
        "validation_data_path",
    }
    assert all(issue.code == errors.BAD_VALUE for issue in found.values())
    assert "integer, a number > 0" in found["trainer.num_epochs"].render()
    assert "NaN" in found["trainer.optimizer.lr"].message
    assert found["validation_data_path"].message == "no such file"
    assert not (tmp_path / "run").exists()  # nothing created, nothing read


def test_experiment_resolved_config_of_an_archive_validates_without_its_data_files(
    tiny_classifier_config,
):
    config = tiny_classifier_config()
    config["train_data_path"] = "/the/training/machine/train.tsv"
    assert validate_experiment(config, check_files=False).ok
    with pytest.raises(ConfigurationError, match="train_data_path: no such file"):
        validate_experiment(config)


def test_experiment_run_folder_is_locked_while_a_run_uses_it(tmp_path, tiny_classifier_config):
    """Regression: two ``keel train --recover`` on one folder used to run side by side."""
    from keel.pipeline.train import RunLock, prepare_serialization_dir

    config = validate_experiment(tiny_classifier_config()).resolved
    directory = tmp_path / "run"
    lock = prepare_serialization_dir(directory, config, recover=False, force=False)
    try:
        (directory / "config.json").write_text(json.dumps(config))
        with pytest.raises(TrainingError) as raised:
            train_model(tiny_classifier_config(), directory, recover=True, quiet=True)
        assert raised.value.code == errors.RUN_IN_PROGRESS
        assert f"pid {__import__('os').getpid()}" in str(raised.value)
        with pytest.raises(TrainingError, match="in use"):
            train_model(tiny_classifier_config(), directory, force=True, quiet=True)
        assert (directory / "config.json").is_file()  # --force deleted nothing in use
    finally:
        lock.release()
    second = RunLock(directory)
    second.acquire()  # free again once the first run ends
    second.release()


def test_experiment_force_with_a_missing_data_file_deletes_nothing(
    tmp_path, tiny_classifier_config
):
    """Regression: --force deleted an unrelated folder before noticing the missing data file."""
    directory = tmp_path / "precious"
    directory.mkdir()
    (directory / "notes.txt").write_text("keep me")
    config = tiny_classifier_config()
    config["train_data_path"] = str(tmp_path / "missing.tsv")
    with pytest.raises(ConfigurationError, match="train_data_path: no such file"):
        train_model(config, directory, force=True, quiet=True)
    assert (directory / "notes.txt").read_text() == "keep me"


def test_experiment_failed_fresh_run_leaves_no_folder_to_block_the_rerun(
    tmp_path, tiny_classifier_config
):
    """Regression: a misspelled validation metric failed after the run folder was made, and the
    half-made folder then blocked the corrected re-run."""
    config = tiny_classifier_config(epochs=1)
    config["trainer"]["validation_metric"] = "+acuracy"
    with pytest.raises(ConfigurationError) as raised:
        train_model(config, tmp_path / "run", quiet=True)
    [issue] = raised.value.issues
    assert (issue.path, issue.suggestion) == ("trainer.validation_metric", "accuracy")
    assert not (tmp_path / "run").exists()  # a config error: nothing was made
    config["trainer"]["validation_metric"] = "+0_f1"  # per label: known once data is read
    assert validate_experiment(config).ok


def test_experiment_failure_at_the_first_validation_removes_the_half_made_folder(
    tmp_path, tiny_classifier_config, monkeypatch
):
    """When a model does not declare its metrics, a wrong name is found at the first validation;
    the fresh run's folder is then removed so the corrected re-run needs no --force."""
    from keel.models.basic_classifier import BasicClassifier

    monkeypatch.setattr(BasicClassifier, "metric_names", classmethod(lambda cls, config: None))
    config = tiny_classifier_config(epochs=1)
    config["trainer"]["validation_metric"] = "+acuracy"
    with pytest.raises(TrainingError, match="acuracy"):
        train_model(config, tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()
    config["trainer"]["validation_metric"] = "+accuracy"
    assert train_model(config, tmp_path / "run", quiet=True).archive_path.is_file()


def test_experiment_run_writes_out_log_and_records_source_and_model_name(
    tmp_path, tiny_classifier_config
):
    config = tiny_classifier_config(epochs=1)
    config["model_name"], config["model_version"] = "sentiment", "1.4.0"
    run = train_model(config, tmp_path / "run", quiet=True)
    log = (tmp_path / "run" / "out.log").read_text(encoding="utf-8")
    assert "INFO keel.pipeline.train: train: 240 instances" in log
    manifest = load_archive(run.archive_path).manifest
    assert (manifest.model_name, manifest.model_version) == ("sentiment", "1.4.0")
    from keel.pipeline.train import git_source

    assert manifest.source == git_source(__import__("pathlib").Path.cwd())
    if (__import__("pathlib").Path.cwd() / ".git").exists():  # a checkout, as in CI
        assert len(manifest.source["git_commit"]) == 40
        assert isinstance(manifest.source["git_dirty"], bool)
    assert git_source(tmp_path) is None  # not a checkout
