"""Declared migrations: each kind of change, applied to a config section and to weights."""

from __future__ import annotations

import pytest
import torch

from keel.common import errors
from keel.common.errors import RegistryError
from keel.common.migrations import (
    LibraryMigration,
    Migration,
    MigrationError,
    migration_chain,
    missing_link,
    register_migration,
)
from keel.common.registry import Registrable


class _Base(Registrable):
    pass


def test_migration_renames_adds_and_removes_arguments() -> None:
    migration = Migration(
        from_version=1,
        description="width renamed to size; gated added; legacy removed",
        rename_arguments={"width": "size"},
        add_arguments={"gated": False},
        remove_arguments={"legacy": None},
    )
    section = {"type": "thing", "width": 3, "legacy": None}
    assert migration.migrate_section(section, "model.thing") == {
        "type": "thing",
        "size": 3,
        "gated": False,
    }
    assert section == {"type": "thing", "width": 3, "legacy": None}  # the original is untouched
    # An argument already present keeps its value (only absent ones get the old behaviour).
    assert migration.migrate_section({"size": 4, "gated": True}, "p") == {"size": 4, "gated": True}


def test_migration_refuses_a_removed_argument_with_a_value_it_cannot_reproduce() -> None:
    migration = Migration(1, "legacy mode removed", remove_arguments={"legacy": False})
    with pytest.raises(MigrationError) as raised:
        migration.migrate_section({"legacy": True}, "model.encoder")
    assert raised.value.code == errors.MIGRATION_FAILED
    assert "model.encoder.legacy" in str(raised.value) and "True" in str(raised.value)


def test_migration_refuses_a_config_with_both_old_and_new_names() -> None:
    migration = Migration(1, "renamed", rename_arguments={"width": "size"})
    with pytest.raises(MigrationError, match="both 'width' and its new name 'size'"):
        migration.migrate_section({"width": 1, "size": 2}, "model.x")


def test_migration_renames_drops_and_converts_weights() -> None:
    migration = Migration(
        from_version=2,
        description="layers moved; buffer dropped; weight transposed",
        rename_weights={"old_layer.": "layers.0.", "scale": "gain"},
        drop_weights=("cache.",),
        convert_weights={"layers.0.weight": lambda tensor: tensor.t()},
    )
    state = {
        "old_layer.weight": torch.arange(6.0).reshape(2, 3),
        "old_layer.bias": torch.zeros(2),
        "scale": torch.ones(1),
        "cache.table": torch.zeros(4),
        "other": torch.ones(2),
    }
    migrated = migration.migrate_weights(state, "model.x")
    assert sorted(migrated) == ["gain", "layers.0.bias", "layers.0.weight", "other"]
    assert migrated["layers.0.weight"].shape == (3, 2)
    assert migration.to_version == 3 and migration.changes_weights


def test_migration_converting_an_absent_weight_is_an_error() -> None:
    migration = Migration(1, "reshape", convert_weights={"w": lambda tensor: tensor})
    with pytest.raises(MigrationError, match="'w' this migration converts is not in the archive"):
        migration.migrate_weights({"v": torch.ones(1)}, "model.x")


def test_library_migration_drops_only_declared_keys_whose_value_it_checks() -> None:
    migration = LibraryMigration(
        distribution="transformers",
        before="4.31",
        description="position_ids became a non-persistent buffer",
        drop_weights=("transformer_model.embeddings.position_ids",),
        check=lambda _key, tensor: torch.equal(
            tensor.flatten(), torch.arange(tensor.numel(), dtype=tensor.dtype)
        ),
    )
    state = {
        "transformer_model.embeddings.position_ids": torch.arange(8).unsqueeze(0),
        "transformer_model.embeddings.word_embeddings.weight": torch.ones(3, 2),
    }
    assert list(migration.migrate_weights(state, "p")) == [
        "transformer_model.embeddings.word_embeddings.weight"
    ]
    state["transformer_model.embeddings.position_ids"] = torch.tensor([[3, 1, 2]])
    with pytest.raises(MigrationError, match="refusing to drop it"):
        migration.migrate_weights(state, "model.embedder")


def test_register_migration_builds_a_chain_and_finds_gaps() -> None:
    first = Migration(1, "one")
    second = Migration(2, "two")
    register_migration(_Base, "chained", first)
    register_migration(_Base, "chained", second)
    register_migration(_Base, "chained", Migration(1, "one"))  # the same again: harmless
    assert migration_chain(_Base, "chained", 1, 3) == [first, second]
    assert missing_link(_Base, "chained", 1, 3) is None
    assert missing_link(_Base, "chained", 1, 4) == 3
    assert missing_link(_Base, "unknown", 1, 2) == 1
    with pytest.raises(RegistryError) as raised:
        register_migration(_Base, "chained", Migration(1, "a different one"))
    assert raised.value.code == errors.BAD_REGISTRATION


def test_registered_versions_must_be_positive_integers() -> None:
    @_Base.register("versioned", version=3)
    class Versioned(_Base):
        pass

    assert _Base.resolve("versioned").version == 3
    assert _Base.resolve("versioned").cls is Versioned
    for bad in (0, -1, 1.5, True):
        with pytest.raises(RegistryError) as raised:
            _Base.register("bad", version=bad)  # type: ignore[arg-type]
        assert raised.value.code == errors.BAD_REGISTRATION
