"""Every command that opens an archive, against every archive of the hostile corpus.

Whatever the archive, a command ends with its documented exit status (1: a verdict failed,
2: it could not run), never a traceback; nothing from the archive is imported or run, even with
a planted module importable from the working directory; ``--json`` output stays JSON; and no
temporary folder is left behind.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keel.cli.main import app
from tests.conftest import SST2_SAMPLE
from tests.fixtures.hostile.corpus import MARKER_NAME, PLANTED_MODULE, build

FIXTURES = Path(__file__).parents[1] / "fixtures" / "archives"
runner = CliRunner()


@pytest.fixture(scope="module", params=["format1", "format2"])
def corpus(request, tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    """The corpus built from a good archive of each format keel reads."""
    directory = tmp_path_factory.mktemp(f"hostile-{request.param}")
    return directory, build(FIXTURES / f"{request.param}-classifier.tar.gz", directory)


def _commands(archive: Path, work: Path) -> dict[str, tuple[list[str], set[int]]]:
    """Command -> (arguments, allowed exit codes). The env commands read only the manifest, so
    an archive whose manifest is intact is fine for them (exit 0 or a diff's 1)."""
    predict_input = work / "input.jsonl"
    predict_input.write_text('{"text": "a fine film"}\n', encoding="utf-8")
    data = str(SST2_SAMPLE / "dev.tsv")
    a = str(archive)
    return {
        "verify": (["verify", a, "--json"], {1}),
        "doctor": (["doctor", a, "--json"], {1}),
        "predict": (["predict", a, str(predict_input)], {2}),
        "evaluate": (["evaluate", a, data], {2}),
        "data fingerprint": (["data", "fingerprint", a, data], {2}),
        "data validate": (["data", "validate", a, data], {2}),
        "env diff": (["env", "diff", a, "current"], {0, 1, 2}),
        "env export": (["env", "export", a], {0, 2}),
    }


CASES = [
    "traversal",
    "absolute_path",
    "symlink",
    "hardlink",
    "device",
    "duplicate_member",
    "bad_gzip_crc",
    "truncated",
    "huge_declared_member",
    "zeros_bomb",
    "manifest_not_json",
    "manifest_is_a_list",
    "manifest_newer_format",
    "manifest_components_malformed",
    "config_not_json",
    "config_without_model",
    "config_type_imports_planted_module",
    "manifest_base_imports_planted_module",
    "weights_not_safetensors",
    "tampered_weights",
]


# The reason a loading command gives, for the cases where one reason is the right one.
EXPECTED_CODES = {
    "traversal": "KA003",
    "absolute_path": "KA003",
    "symlink": "KA003",
    "hardlink": "KA003",
    "device": "KA003",
    "duplicate_member": "KA003",
    "bad_gzip_crc": "KA002",
    "truncated": "KA002",
    "huge_declared_member": "KA006",
    "zeros_bomb": "KA006",
    "manifest_not_json": "KA002",
    "manifest_is_a_list": "KA002",
    "manifest_newer_format": "KA007",
    "manifest_components_malformed": "KA002",
    "config_not_json": "KA002",
    "config_without_model": "KA002",
    "tampered_weights": "KA008",
}


def test_hostile_corpus_has_every_case(corpus):
    _, archives = corpus
    assert sorted(archives) == sorted(CASES)


@pytest.mark.parametrize("case", sorted(EXPECTED_CODES))
def test_hostile_archive_is_refused_for_the_right_reason(corpus, case):
    _, archives = corpus
    from tests.conftest import SST2_SAMPLE as data

    result = runner.invoke(app, ["evaluate", str(archives[case]), str(data / "dev.tsv")])
    assert result.exit_code == 2, result.output
    assert f"[{EXPECTED_CODES[case]}]" in result.output, result.output


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_hostile_archive_is_refused_cleanly_by_every_command(corpus, case, monkeypatch, tmp_path):
    directory, archives = corpus
    # The worst case of the issue: the planted module is importable from the working directory.
    monkeypatch.chdir(directory)
    monkeypatch.syspath_prepend(str(directory))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    for command, (args, allowed) in _commands(archives[case], tmp_path).items():
        result = runner.invoke(app, args)
        where = f"{case} / keel {command}: exit {result.exit_code}\n{result.output[-2000:]}"
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            where + f"\n{result.exception!r}"
        )
        assert result.exit_code in allowed, where
        assert "Traceback" not in result.output, where
        if "--json" in args:
            document = json.loads(result.stdout)
            assert document["ok"] is False, where
        assert not (directory / MARKER_NAME).exists(), f"{where}: the planted module ran"
        assert PLANTED_MODULE not in sys.modules, f"{where}: the planted module was imported"
        assert list(scratch.iterdir()) == [], f"{where}: left {list(scratch.iterdir())}"
