# tf2pt — the two set-up commands are `make install` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH_WHEELS ?= /opt/wheels

.PHONY: install test lint demo bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	# torch first, pinned, so nothing later pulls a multi-GB CUDA build.
	$(BIN)/pip install $(if $(wildcard $(TORCH_WHEELS)),--find-links $(TORCH_WHEELS)) torch==2.13.0
	$(BIN)/pip install $(if $(wildcard $(TORCH_WHEELS)),--find-links $(TORCH_WHEELS)) -e '.[test]'
	touch $@

test: install
	$(BIN)/ruff check converter tests scripts
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check converter tests scripts
	$(BIN)/ruff format --check converter tests scripts

demo: install
	$(BIN)/python scripts/demo.py

bench: install
	$(BIN)/python scripts/bench.py

clean:
	rm -rf $(VENV) build *.egg-info
