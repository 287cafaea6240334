import copy
import json

import pytest
from typer.testing import CliRunner

from keel.cli.env import app
from keel.common import errors
from keel.guard.environment import capture_environment

runner = CliRunner()


@pytest.fixture(scope="module")
def env():
    return capture_environment()


@pytest.fixture
def pair(env, tmp_path):
    """Write env A and a function that writes a changed copy as env B."""
    a = tmp_path / "a.json"
    a.write_text(json.dumps(env))

    def write_b(change):
        other = copy.deepcopy(env)
        change(other)
        b = tmp_path / "b.json"
        b.write_text(json.dumps(other))
        return str(a), str(b)

    return write_b


def test_env_cli_capture_to_file(tmp_path):
    target = tmp_path / "env.json"
    result = runner.invoke(app, ["capture", "--output", str(target)])
    assert result.exit_code == 0, result.output
    document = json.loads(target.read_text())
    assert document["schema_version"] == 1 and "torch" in document["distributions"]
    assert "environment captured" in result.stderr


def test_env_cli_capture_to_stdout():
    result = runner.invoke(app, ["capture"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["kind"] == "keel-environment"


def test_env_cli_diff_identical_exits_zero(pair):
    a, b = pair(lambda env: None)
    result = runner.invoke(app, ["diff", a, b])
    assert result.exit_code == 0, result.output
    assert "0 breaking, 0 risky, 0 info" in result.stdout


def test_env_cli_diff_breaking_exits_one_with_reason(pair):
    a, b = pair(lambda env: env["python"].update(version="3.12.1"))
    result = runner.invoke(app, ["diff", a, b])
    assert result.exit_code == 1
    assert "python.version" in result.stdout and "breaking" in result.stdout
    assert errors.ENV_BREAKING in result.stderr


def test_env_cli_diff_fail_on_risky(pair):
    a, b = pair(lambda env: env["gpu"].update(driver_version="999.1"))
    assert runner.invoke(app, ["diff", a, b]).exit_code == 0
    strict = runner.invoke(app, ["diff", a, b, "--fail-on", "risky"])
    assert strict.exit_code == 1
    assert errors.ENV_RISKY in strict.stderr


def test_env_cli_diff_json(pair):
    a, b = pair(lambda env: env["distributions"].update(torch="99.0.0"))
    result = runner.invoke(app, ["diff", a, b, "--json"])
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["failed"] is True and document["code"] == errors.ENV_BREAKING
    assert document["summary"]["breaking"] == 1
    assert document["differences"][0]["key"] == "distributions.torch"


def test_env_cli_diff_require_narrows_tokenization_rules(env, tmp_path):
    # Both sides name transformers, whether or not this machine has it installed.
    env = copy.deepcopy(env)
    env["distributions"]["transformers"] = "4.50.0"
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(env))
    env["distributions"]["transformers"] = "4.51.0"
    b.write_text(json.dumps(env))
    a, b = str(a), str(b)
    assert runner.invoke(app, ["diff", a, b]).exit_code == 1
    narrowed = runner.invoke(app, ["diff", a, b, "--require", "keel", "--json"])
    assert narrowed.exit_code == 0
    assert json.loads(narrowed.stdout)["differences"][0]["severity"] == "info"


def test_env_cli_diff_defaults_to_current(tmp_path, env):
    a = tmp_path / "a.json"
    a.write_text(json.dumps(env))
    result = runner.invoke(app, ["diff", str(a), "--json", "--hide-info"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["b"] == "current"


def test_env_cli_diff_unreadable_document_exits_two(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    result = runner.invoke(app, ["diff", str(bad), "current"])
    assert result.exit_code == 2
    assert errors.BAD_ENV_DOCUMENT in result.stderr


def test_env_cli_check_json_matches_exit_code():
    result = runner.invoke(app, ["check", "--json"])
    report = json.loads(result.stdout)
    assert result.exit_code == (0 if report["ok"] else 1)
    assert any(item["name"].startswith("numerics") for item in report["checks"])


def test_env_cli_check_renders_table():
    result = runner.invoke(app, ["check"])
    assert "keel env check" in result.stdout
    assert "numerics matmul cpu" in result.stdout


def test_env_cli_export_requirements(tmp_path, env):
    source = tmp_path / "env.json"
    source.write_text(json.dumps(env))
    result = runner.invoke(app, ["export", str(source), "--format", "requirements"])
    assert result.exit_code == 0, result.output
    assert f"numpy=={env['distributions']['numpy']}" in result.stdout.splitlines()


def test_env_cli_export_conda_to_file(tmp_path, env):
    source = tmp_path / "env.json"
    source.write_text(json.dumps(env))
    target = tmp_path / "environment.yml"
    result = runner.invoke(app, ["export", str(source), "-f", "conda", "-o", str(target)])
    assert result.exit_code == 0, result.output
    text = target.read_text()
    assert "dependencies:" in text and f"python={env['python']['version']}" in text


def test_env_cli_export_rejects_unknown_format(tmp_path):
    result = runner.invoke(app, ["export", "current", "--format", "poetry"])
    assert result.exit_code == 2


def test_env_cli_export_and_diff_read_an_archive(tmp_path, env):
    import io
    import tarfile

    manifest = json.dumps({"format_version": 1, "environment": env}).encode()
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    exported = runner.invoke(app, ["export", str(archive)])
    assert exported.exit_code == 0, exported.output
    assert f"torch=={env['distributions']['torch']}" in exported.stdout.splitlines()
    same = runner.invoke(app, ["diff", str(archive), str(archive), "--json"])
    assert same.exit_code == 0
    assert json.loads(same.stdout)["differences"] == []


def _archive_with(tmp_path, env, components):
    import io
    import tarfile

    manifest = json.dumps(
        {"format_version": 2, "environment": env, "components": components}
    ).encode()
    archive = tmp_path / f"model-{len(components)}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    return archive


WHITESPACE_MODEL = [
    {
        "base": "keel.data.tokenizers.tokenizer.Tokenizer",
        "name": "whitespace",
        "module": "keel.data.tokenizers.whitespace_tokenizer",
        "class": "WhitespaceTokenizer",
        "distribution": "keel==0.1.0",
        "paths": ["dataset_reader.tokenizer"],
    }
]


def test_env_cli_diff_of_an_archive_judges_by_its_components_as_verify_does(tmp_path, env):
    """Regression: a tokenizers upgrade was 'breaking' for a whitespace-tokenized model in
    ``env diff ARCHIVE current`` while verify, which reads the archive's components, passed."""
    from keel.archive.archive import read_manifest

    trained = copy.deepcopy(env)
    trained["distributions"]["tokenizers"] = "0.19.1"
    archive = _archive_with(tmp_path, trained, WHITESPACE_MODEL)
    assert read_manifest(archive).required_distributions() == ["keel"]
    now = tmp_path / "now.json"
    now.write_text(json.dumps(env))
    result = runner.invoke(app, ["diff", str(archive), str(now), "--json", "--fail-on", "risky"])
    assert result.exit_code == 0, result.stdout
    [difference] = [
        d
        for d in json.loads(result.stdout)["differences"]
        if d["key"] == "distributions.tokenizers"
    ]
    assert difference["severity"] == "info"
    # The same two environments as plain documents: every tokenization library counts.
    plain = tmp_path / "trained.json"
    plain.write_text(json.dumps(trained))
    assert runner.invoke(app, ["diff", str(plain), str(now)]).exit_code == 1
