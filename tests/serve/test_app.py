"""``keel serve``: a real uvicorn server on 127.0.0.1 (ephemeral port), real HTTP requests."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

import keel  # noqa: E402
from keel.archive.model_archive import load_archive  # noqa: E402
from keel.archive.signing import generate_keypair, sign_archive  # noqa: E402
from keel.common import errors  # noqa: E402
from keel.pipeline.train import train_model  # noqa: E402
from keel.predict.predictor import Predictor  # noqa: E402
from keel.serve.app import create_app  # noqa: E402
from tests.conftest import SST2_SAMPLE, TINY_CLASSIFIER  # noqa: E402

KEEL = [sys.executable, "-m", "keel.cli.main"]
LOOPBACK = "127.0.0.1"
REQUEST_TIMEOUT = 30
SENTENCES = ["a gripping , beautifully made film", "dull and lifeless", "it is a movie"]


@pytest.fixture(scope="module")
def archive_path(tmp_path_factory) -> Path:
    from keel.common.params import load_config

    config = load_config(TINY_CLASSIFIER, ext_vars={"data_dir": str(SST2_SAMPLE), "epochs": "1"})
    root = tmp_path_factory.mktemp("serve")
    return train_model(config, root / "run", quiet=True).archive_path


@contextlib.contextmanager
def running(app, ready: bool = True) -> Iterator[str]:
    """``app`` behind a real uvicorn server on loopback in a thread; yields its base URL once
    ``/readyz`` answers 200 (or at once with ``ready=False``)."""
    config = uvicorn.Config(app, host=LOOPBACK, port=0, log_level="warning", lifespan="on")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not instance.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    port = instance.servers[0].sockets[0].getsockname()[1]
    url = f"http://{LOOPBACK}:{port}"
    while ready and request(f"{url}/readyz")[0] != 200:
        assert time.monotonic() < deadline, request(f"{url}/readyz")
        time.sleep(0.05)
    try:
        yield url
    finally:
        instance.should_exit = True
        thread.join(timeout=30)
    assert not thread.is_alive()


@pytest.fixture(scope="module")
def server(archive_path) -> Iterator[str]:
    with running(create_app(archive_path, max_batch_size=2)) as url:
        yield url


def request(url: str, body: bytes | None = None) -> tuple[int, object]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    req = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def post(server: str, payload: object) -> tuple[int, object]:
    return request(f"{server}/predict", json.dumps(payload).encode())


def test_serve_health_and_info(server, archive_path) -> None:
    assert request(f"{server}/health") == (200, {"status": "alive"})
    assert request(f"{server}/healthz") == (200, {"status": "alive"})
    status, info = request(f"{server}/info")
    assert status == 200
    assert info["model_type"] == "basic_classifier"
    assert info["keel_version"] == keel.__version__
    assert info["created_at"]
    assert "best_validation_accuracy" in info["validation_metrics"]
    names = {entry["name"] for entry in info["components"]}
    assert {"basic_classifier", "tsv", "lstm"} <= names
    text = json.dumps(info)
    assert str(SST2_SAMPLE) not in text and "environment" not in info


def test_serve_predict_matches_the_library_predictor(server, archive_path) -> None:
    expected = Predictor.from_archive(load_archive(archive_path)).predict_batch_json(
        [{"text": sentence} for sentence in SENTENCES]
    )
    status, single = post(server, {"text": SENTENCES[0]})
    assert status == 200
    assert single["label"] == expected[0]["label"]
    assert single["probs"] == pytest.approx(expected[0]["probs"], abs=1e-6)
    status, batch = post(server, [{"text": sentence} for sentence in SENTENCES])
    assert status == 200 and len(batch) == 3
    for got, want in zip(batch, expected, strict=True):
        assert got["label"] == want["label"]
        assert got["probs"] == pytest.approx(want["probs"], abs=1e-6)


@pytest.mark.parametrize(
    ("body", "status", "code", "fragment"),
    [
        (b"{not json", 400, errors.CONFIG_SYNTAX, "not valid JSON"),
        (b'"just a string"', 422, errors.WRONG_TYPE, "expected a JSON object or a list"),
        (b'[{"text": "fine"}, 3]', 422, errors.WRONG_TYPE, "input 1: expected a JSON object"),
        (b'{"words": "no text key"}', 422, errors.MISSING_COLUMN, "'text'"),
        (b'[{"text": "ok"}, {"text": "ok"}, {"text": 5}]', 422, errors.BAD_DATA_LINE, "input 2"),
    ],
)
def test_serve_bad_input_gets_keel_error_code_and_message(
    server, body, status, code, fragment
) -> None:
    got_status, payload = request(f"{server}/predict", body)
    assert got_status == status, payload
    assert payload["error"]["code"] == code
    assert fragment in payload["error"]["message"]


def test_serve_too_many_inputs_is_refused(archive_path) -> None:
    with running(create_app(archive_path, max_items=2)) as url:
        status, payload = post(url, [{"text": "a"}] * 3)
    assert status == 413
    assert payload["error"]["code"] == errors.INPUT_TOO_LARGE
    assert "the limit is 2" in payload["error"]["message"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def wait_for_health(url: str, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()
        try:
            if request(f"{url}/health")[0] == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("keel serve did not answer /health in time")


@pytest.mark.slow
def test_serve_cli_requires_a_trusted_signature(archive_path, tmp_path) -> None:
    archive = tmp_path / "model.tar.gz"
    shutil.copy(archive_path, archive)
    keys = tmp_path / "keys"
    generate_keypair(keys)
    port = free_port()
    command = [
        *KEEL,
        "serve",
        str(archive),
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--require-signature",
        "--trusted-keys",
        str(keys),
    ]
    unsigned = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert unsigned.returncode == 2
    assert "unsigned" in unsigned.stderr
    sign_archive(archive, keys / "keel_signing.key")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://{LOOPBACK}:{port}"
        wait_for_health(url, process)
        while request(f"{url}/readyz")[0] != 200:
            assert process.poll() is None
            time.sleep(0.1)
        status, output = post(url, {"text": SENTENCES[0]})
        assert status == 200 and output["label"] in {"0", "1"}
    finally:
        process.terminate()
        process.wait(timeout=30)
