"""``keel serve`` under load and under attack, against a real uvicorn server on 127.0.0.1:
dynamic batching, bounded queue, deadlines, isolated model failures, verified readiness,
metrics, structured logs and a draining SIGTERM."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import tarfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("prometheus_client")

from keel.archive.model_archive import load_archive  # noqa: E402
from keel.common import errors  # noqa: E402
from keel.pipeline.train import train_model  # noqa: E402
from keel.predict.predictor import Predictor  # noqa: E402
from keel.serve.app import create_app  # noqa: E402
from tests.conftest import SST2_SAMPLE, TINY_CLASSIFIER, install_plugin_package  # noqa: E402
from tests.serve.test_app import (  # noqa: E402
    KEEL,
    LOOPBACK,
    free_port,
    running,
    wait_for_health,
)

WORDS = [
    "good",
    "bad",
    "film",
    "movie",
    "plot",
    "acting",
    "dull",
    "gripping",
    "slow",
    "sharp",
    "warm",
    "cold",
    "long",
    "short",
]
POISON_SOURCE = """
import time

import torch

from keel.models.basic_classifier import BasicClassifier
from keel.models.model import Model


@Model.register("poisonable_classifier")
class PoisonableClassifier(BasicClassifier):
    \"\"\"A classifier whose forward raises on a text of exactly 17 unknown words: a model bug
    that only some inputs trigger (never the training data).\"\"\"

    def forward(self, **batch):
        tokens = next(iter(batch["tokens"].values()))
        unknown = ((tokens["tokens"] == 1) & tokens["mask"]).sum(dim=1)
        if bool((unknown == 17).any()):
            raise RuntimeError("poisoned input")
        if bool((unknown == 16).any()):
            time.sleep(2.0)  # a slow forward pass
        return super().forward(**batch)
"""


def call(url: str, body: object = None, headers: dict | None = None, method: str | None = None):
    """(status, headers, JSON body) of one HTTP request."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def sentence(index: int) -> str:
    return " ".join(WORDS[(index * 7 + k) % len(WORDS)] for k in range(3 + index % 9))


@pytest.fixture(scope="module")
def archive_path(tmp_path_factory) -> Path:
    from keel.common.params import load_config

    config = load_config(TINY_CLASSIFIER, ext_vars={"data_dir": str(SST2_SAMPLE), "epochs": "1"})
    return train_model(config, tmp_path_factory.mktemp("prod") / "run", quiet=True).archive_path


@pytest.fixture(scope="module")
def poison_archive(tmp_path_factory) -> Path:
    from keel.common.params import load_config

    root = tmp_path_factory.mktemp("poison")
    install_plugin_package(root, "poisonpkg", POISON_SOURCE)
    config = load_config(TINY_CLASSIFIER, ext_vars={"data_dir": str(SST2_SAMPLE), "epochs": "1"})
    config["model"]["type"] = "poisonable_classifier"
    return train_model(
        config, root / "run", quiet=True, include_packages=["poisonpkg"]
    ).archive_path


def test_serve_concurrent_requests_get_their_own_outputs_from_shared_batches(archive_path):
    expected_predictor = Predictor.from_archive(load_archive(archive_path))
    texts = [sentence(index) for index in range(48)]
    expected = [expected_predictor.predict_json({"text": text}) for text in texts]
    app = create_app(archive_path, max_batch_size=16, max_wait_ms=20)
    with running(app) as url, ThreadPoolExecutor(32) as pool:
        results = list(pool.map(lambda t: call(f"{url}/predict", {"text": t}), texts))
        batches = app.state.keel.batcher.stats.batches
    for (status, _, got), want in zip(results, expected, strict=True):
        assert status == 200
        assert got["label"] == want["label"]
        assert got["logits"] == pytest.approx(want["logits"], abs=1e-5)
    assert batches < len(texts), "concurrent requests were never batched together"


def test_serve_full_queue_answers_503_with_retry_after_at_once(archive_path):
    app = create_app(archive_path, queue_size=1, max_batch_size=64, max_wait_ms=1500)
    with running(app) as url, ThreadPoolExecutor(2) as pool:
        first = pool.submit(call, f"{url}/predict", {"text": "a good film"})
        time.sleep(0.3)  # the first item now waits in the batch window
        started = time.monotonic()
        status, headers, body = call(f"{url}/predict", {"text": "another film"})
        assert time.monotonic() - started < 1.0, "a full queue must refuse at once"
        assert status == 503 and headers.get("retry-after") == "1"
        assert body["error"]["code"] == errors.INPUT_TOO_LARGE and body["error"]["request_id"]
        assert first.result()[0] == 200


def test_serve_deadline_answers_504_and_the_work_is_dropped(archive_path):
    app = create_app(archive_path, max_batch_size=64, max_wait_ms=1500)
    with running(app) as url:
        started = time.monotonic()
        status, _, body = call(
            f"{url}/predict", {"text": "a good film"}, {"x-keel-timeout-ms": "200"}
        )
        assert status == 504 and time.monotonic() - started < 1.2
        assert "deadline of 200 ms" in body["error"]["message"]
        time.sleep(1.6)  # the batch window closes: the expired item is dropped, not computed
        stats = app.state.keel.batcher.stats
        assert stats.items == 0 and stats.batches == 0


def test_serve_input_limits_are_413_and_422_naming_the_limit(archive_path):
    app = create_app(archive_path, max_body_bytes=2000, max_input_characters=50)
    with running(app) as url:
        status, _, body = call(f"{url}/predict", {"text": "x" * 5000})
        assert status == 413 and "2000-byte limit" in body["error"]["message"]
        status, _, body = call(f"{url}/predict", {"text": "word " * 20})
        assert status == 422 and body["error"]["code"] == errors.INPUT_TOO_LARGE
        assert "over the limit of 50" in body["error"]["message"]
        status, _, body = call(f"{url}/predict", {"sentence": "fine"})
        assert status == 200  # AllenNLP's key is accepted


def test_serve_model_failure_fails_only_its_own_request(poison_archive):
    poisoned = " ".join(["zqxjv"] * 17)  # 17 unknown words: the model raises
    texts = [sentence(index) for index in range(15)]
    app = create_app(
        poison_archive, include_packages=("poisonpkg",), max_batch_size=32, max_wait_ms=50
    )
    with running(app) as url, ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(call, f"{url}/predict", {"text": text}) for text in texts]
        bad = pool.submit(call, f"{url}/predict", {"text": poisoned})
        results = [future.result() for future in futures]
        status, _, body = bad.result()
        assert status == 500, body
        assert body["error"]["error_id"] and "inside the model" in body["error"]["message"]
        assert all(result[0] == 200 for result in results)
        assert call(f"{url}/predict", {"text": "still serving"})[0] == 200


def test_serve_tampered_archive_never_becomes_ready(archive_path, tmp_path):
    tampered = tmp_path / "model.tar.gz"
    with tarfile.open(archive_path) as source, tarfile.open(tampered, "w:gz") as out:
        for member in source:
            data = source.extractfile(member).read()
            if member.name == "weights.safetensors":
                data = data[:-8] + bytes(8)
            member.size = len(data)
            out.addfile(member, __import__("io").BytesIO(data))
    app = create_app(tampered)
    with running(app, ready=False) as url:
        deadline = time.monotonic() + 30
        while app.state.keel.status == "verifying" and time.monotonic() < deadline:
            time.sleep(0.05)
        status, _, body = call(f"{url}/readyz")
        assert status == 503 and body["status"] == "verify failed"
        assert "integrity" in body["reason"]
        assert call(f"{url}/predict", {"text": "a film"})[0] == 503
        assert call(f"{url}/healthz")[0] == 200
        metrics = urllib.request.urlopen(f"{url}/metrics").read().decode()
        assert "keel_verify_passed 0.0" in metrics and "keel_ready 0.0" in metrics


def test_serve_metadata_metrics_and_json_logs(archive_path, caplog):
    app = create_app(archive_path, log_json=True)
    with running(app) as url, caplog.at_level(logging.INFO, logger="keel.serve.access"):
        status, headers, _ = call(f"{url}/predict", {"text": "a film"}, {"x-request-id": "r-42"})
        assert status == 200 and headers["x-request-id"] == "r-42"
        status, _, metadata = call(f"{url}/metadata")
        metrics = urllib.request.urlopen(f"{url}/metrics").read().decode()
    assert status == 200 and len(metadata["archive_sha256"]) == 64
    assert metadata["verify"]["verdict"] == "PASS" and metadata["verify"]["verified_at"]
    assert metadata["versions"]["training"]["keel"] and metadata["versions"]["now"]["torch"]
    assert "train" in metadata["data_files"]
    for name in (
        'keel_requests_total{route="/predict",status="200"} 1.0',
        "keel_request_latency_seconds_bucket",
        "keel_batch_size_bucket",
        "keel_queue_depth",
        "keel_verify_passed 1.0",
    ):
        assert name in metrics, name
    lines = [
        json.loads(record.message)
        for record in caplog.records
        if record.name == "keel.serve.access" and record.message.startswith("{")
    ]
    [line] = [line for line in lines if line["request_id"] == "r-42"]
    assert line["request_id"] == "r-42" and line["status"] == 200 and line["batch_ids"]
    assert line["latency_ms"] > 0


@pytest.mark.slow
def test_serve_sigterm_drains_in_flight_requests_then_exits_0(archive_path, tmp_path):
    archive = tmp_path / "model.tar.gz"
    shutil.copy(archive_path, archive)
    port = free_port()
    process = subprocess.Popen(
        [
            *KEEL,
            "serve",
            str(archive),
            "--host",
            LOOPBACK,
            "--port",
            str(port),
            "--max-wait-ms",
            "1500",
            "--max-batch-size",
            "64",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    url = f"http://{LOOPBACK}:{port}"
    try:
        wait_for_health(url, process)
        while call(f"{url}/readyz")[0] != 200:
            assert process.poll() is None
            time.sleep(0.1)
        outcome: list = []
        in_flight = threading.Thread(
            target=lambda: outcome.append(call(f"{url}/predict", {"text": "a good film"}))
        )
        in_flight.start()
        time.sleep(0.5)  # the request waits in its batch window
        process.send_signal(signal.SIGTERM)
        in_flight.join(timeout=30)
        assert outcome and outcome[0][0] == 200, outcome
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_serve_probes_answer_within_milliseconds_while_a_batch_runs(poison_archive):
    slow = " ".join(["zqxjv"] * 16)  # 16 unknown words: a 2-second forward pass
    app = create_app(poison_archive, include_packages=("poisonpkg",), max_wait_ms=0)
    with running(app) as url, ThreadPoolExecutor(1) as pool:
        running_batch = pool.submit(call, f"{url}/predict", {"text": slow})
        time.sleep(0.5)  # the forward pass is under way
        assert not running_batch.done()
        for probe in ("/healthz", "/readyz"):
            started = time.monotonic()
            assert call(f"{url}{probe}")[0] == 200
            assert time.monotonic() - started < 0.25, probe
        assert running_batch.result()[0] == 200
