import hashlib
import json
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from keel.cli.data import app
from keel.data import Vocabulary, WordTokenizer
from keel.data.dataset_readers import TsvReader
from keel.guard.fingerprint import preprocessing_fingerprint

runner = CliRunner()

DATA = "sentence\tlabel\nThe movie was great .\t1\nA dull film\t0\n"


@pytest.fixture
def files(tmp_path):
    train = tmp_path / "train.tsv"
    train.write_text(DATA, encoding="utf-8")
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "dataset_reader": {"type": "tsv", "tokenizer": {"type": "word"}},
                "train_data_path": str(train),
            }
        ),
        encoding="utf-8",
    )
    return tmp_path, train, config


def test_data_cli_hash_prints_sha256sum_lines(tmp_path):
    one, two = tmp_path / "one.txt", tmp_path / "back\\slash"
    one.write_bytes(b"abc")
    two.write_bytes(b"")
    result = runner.invoke(app, ["hash", str(one), str(two)])
    assert result.exit_code == 0
    assert result.stdout == (
        f"{hashlib.sha256(b'abc').hexdigest()}  {one}\n"
        f"\\{hashlib.sha256(b'').hexdigest()}  {str(two).replace(chr(92), chr(92) * 2)}\n"
    )


def test_data_cli_hash_reads_stdin():
    result = runner.invoke(app, ["hash"], input=b"abc")
    assert result.stdout == f"{hashlib.sha256(b'abc').hexdigest()}  -\n"


def test_data_cli_hash_missing_file_fails_but_hashes_the_rest(tmp_path):
    one = tmp_path / "one.txt"
    one.write_bytes(b"abc")
    result = runner.invoke(app, ["hash", str(tmp_path / "missing"), str(one)])
    assert result.exit_code == 1
    assert f"{tmp_path / 'missing'}: No such file or directory" in result.stderr
    assert result.stdout == f"{hashlib.sha256(b'abc').hexdigest()}  {one}\n"


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="needs GNU sha256sum")
def test_data_cli_hash_output_passes_sha256sum_check(tmp_path, monkeypatch):
    names = ["plain.txt", "new\nline", "back\\slash", "sp ace"]
    for name in names:
        (tmp_path / name).write_bytes(name.encode())
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["hash", *names])
    assert result.exit_code == 0
    gnu = subprocess.run(["sha256sum", *names], capture_output=True, check=True).stdout
    assert result.stdout_bytes == gnu
    (tmp_path / "SUMS").write_bytes(result.stdout_bytes)
    check = subprocess.run(["sha256sum", "-c", "SUMS"], capture_output=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_data_cli_fingerprint_json_matches_the_library(files):
    tmp_path, train, config = files
    result = runner.invoke(app, ["fingerprint", str(config), str(train), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    reader = TsvReader(tokenizer=WordTokenizer())
    vocab = Vocabulary.from_instances(reader.read(train))
    expected = preprocessing_fingerprint(reader.read(train), vocab)
    assert document["preprocessing"] == expected.to_dict()
    assert document["file"]["sha256"] == hashlib.sha256(DATA.encode()).hexdigest()
    assert document["vocabulary_source"] == "data"
    assert len(document["tokenizer"]["token_counts"]) == 292


def test_data_cli_fingerprint_summary_and_output_file(files):
    tmp_path, train, config = files
    output = tmp_path / "fp.json"
    result = runner.invoke(app, ["fingerprint", str(config), str(train), "--output", str(output)])
    assert result.exit_code == 0, result.output
    document = json.loads(output.read_text())
    assert f"preprocessing {document['preprocessing']['digest']}  2 instances" in result.stdout
    assert "labels label: 0=1, 1=1" in result.stdout


def test_data_cli_fingerprint_missing_data_exits_2(files):
    tmp_path, _, config = files
    result = runner.invoke(app, ["fingerprint", str(config), str(tmp_path / "nope.tsv")])
    assert result.exit_code == 2
    assert "KD004" in result.output


def test_data_cli_validate_reports_bad_lines_and_unseen_labels(files):
    tmp_path, _, config = files
    dev = tmp_path / "dev.tsv"
    dev.write_text("sentence\tlabel\nfine\t1\nodd\t5\n", encoding="utf-8")
    result = runner.invoke(app, ["validate", str(config), str(dev)])
    assert result.exit_code == 1
    assert f"{dev}:3: [KD006] label '5' (1 instance) never occurs" in result.stdout
    assert "2 instances read; 1 error(s) (KD006: 1)" in result.stdout
    broken = tmp_path / "broken.tsv"
    broken.write_text("sentence\tlabel\nfine\t1\nno tab here\n", encoding="utf-8")
    result = runner.invoke(app, ["validate", str(config), str(broken), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["errors"][0]["line"] == 3 and report["errors"][0]["code"] == "KD002"


def test_data_cli_validate_clean_file_exits_0(files):
    _, train, config = files
    result = runner.invoke(app, ["validate", str(config), str(train), "--max-errors", "5"])
    assert result.exit_code == 0, result.output
    assert "2 instances read; ok" in result.stdout


def _title_cased(directory):
    """The SST-2 sample, title-cased: a lowercasing tokenizer then matters."""
    from tests.conftest import SST2_SAMPLE

    directory.mkdir(parents=True, exist_ok=True)
    for name in ("train.tsv", "dev.tsv"):
        header, *rows = (SST2_SAMPLE / name).read_text(encoding="utf-8").splitlines()
        body = [row.split("\t")[0].title() + "\t" + row.split("\t")[1] for row in rows]
        (directory / name).write_text("\n".join([header, *body]) + "\n", encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(archive, data folder): trained with a lowercasing word tokenizer on title-cased data."""
    from keel.common.params import load_config
    from keel.pipeline.train import train_model
    from tests.conftest import TINY_CLASSIFIER

    root = tmp_path_factory.mktemp("fingerprint_archive")
    data = _title_cased(root / "data")
    config = load_config(TINY_CLASSIFIER, ext_vars={"data_dir": str(data), "epochs": "1"})
    for reader in ("dataset_reader", "validation_dataset_reader"):
        config[reader]["tokenizer"] = {"type": "word", "lowercase": True}
    return train_model(config, root / "run", quiet=True).archive_path, data


def test_data_cli_fingerprint_of_a_recorded_file_matches_the_archive(trained, tmp_path):
    archive, data = trained
    copy = tmp_path / "copied-dev.tsv"  # another path, same bytes: still recognised
    shutil.copy(data / "dev.tsv", copy)
    result = runner.invoke(app, ["fingerprint", str(archive), str(copy)])
    assert result.exit_code == 0, result.output
    assert "recorded      MATCH (validation): same preprocessing" in result.stdout
    # The train file is read with the train reader (240 instances, not the validation's 120).
    result = runner.invoke(app, ["fingerprint", str(archive), str(data / "train.tsv")])
    assert "recorded      MATCH (train)" in result.stdout, result.output
    other = tmp_path / "other.tsv"
    other.write_text(DATA, encoding="utf-8")
    result = runner.invoke(app, ["fingerprint", str(archive), str(other), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["recorded"]["status"] == "unrecorded"


def test_data_cli_fingerprint_exits_1_when_recorded_data_is_preprocessed_differently(
    trained, monkeypatch
):
    from keel.data.tokenizers.word_tokenizer import WordTokenizer

    archive, data = trained
    original = WordTokenizer.__init__

    def no_longer_lowercases(self, lowercase: bool = False) -> None:
        original(self, lowercase=False)

    monkeypatch.setattr(WordTokenizer, "__init__", no_longer_lowercases)
    result = runner.invoke(app, ["fingerprint", str(archive), str(data / "train.tsv")])
    assert result.exit_code == 1, result.output
    assert "recorded      DIFFERS (train): same bytes as the training run's train file" in (
        result.stdout
    )
    assert "tokens OOV rate" in result.stdout
