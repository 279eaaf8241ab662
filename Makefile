# signpipe: every target creates the project's own virtual environment (.venv) on first use,
# from the committed lock file (uv.lock), with nothing pre-installed but Python 3.11/3.12.

PYTHON ?= python3
VENV   := .venv
TOOLS  := .tools
UV     := $(TOOLS)/bin/uv
UV_VERSION := 0.13.8
STAMP  := $(VENV)/.signpipe-synced
RUN_DIR ?= runs/smoke-$(shell date +%Y%m%d-%H%M%S)
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.DEFAULT_GOAL := help
.PHONY: help setup run test test-guards test-slow test-main-job test-all bench lock clean video-env images-check tensorboard

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --extra dev --python $(PYTHON)
	@touch $@

setup: $(STAMP) ## Create/refresh .venv from uv.lock
	@echo "environment ready: $(VENV)"

run: $(STAMP) ## Run the main job: the fingerspelling recipe on this machine, preset local; fails when the model fails its gate
	$(VENV)/bin/signpipe run fingerspelling --local --preset local

test: $(STAMP) ## Run the default test suite: no slow tests, the fast guards included (every component, gate vs champion, kill-and-resume)
	$(VENV)/bin/python -m pytest -q

test-guards: $(STAMP) ## Run the slow tests CI runs anyway (marker `guards`): the smoke local run, whose failed gate keeps the champion
	$(VENV)/bin/python -m pytest -q -m guards

test-slow: $(STAMP) ## Run only the slow tests (end-to-end runs)
	$(VENV)/bin/python -m pytest -q -m slow

test-main-job: $(STAMP) ## Score the bundle `make run` published (runs/) on unseen signers; run the isolated-signs local run
	SIGNPIPE_MAIN_JOB_RUNS=runs $(VENV)/bin/python -m pytest -q -m slow tests/test_main_job.py

test-all: $(STAMP) ## Run every test, slow ones included
	$(VENV)/bin/python -m pytest -q -m "slow or not slow"

bench: $(STAMP) ## Run every benchmark under benchmarks/ (prints figures)
	@for b in benchmarks/*.py; do echo "== $$b"; $(VENV)/bin/python $$b || exit 1; done

video-env: | $(UV) ## Build .venv-video: mediapipe 0.10.14 + protobuf<5 for `signpipe extract` (docs/video.md)
	$(UV) venv --allow-existing --python $(PYTHON) .venv-video
	$(UV) pip sync --python .venv-video/bin/python --require-hashes video/requirements-test.txt
	$(UV) pip install --python .venv-video/bin/python --no-deps -e .
	@echo "video environment ready: .venv-video (signpipe extract finds it by itself)"

TENSORBOARD_PORT ?= 6006
RUNS ?= runs
tensorboard: | $(UV) ## Show every run's training curves (RUNS=runs, TENSORBOARD_PORT=6006): installs TensorBoard into .venv-tensorboard on first use
	$(UV) venv --allow-existing --python $(PYTHON) .venv-tensorboard
	$(UV) pip install --python .venv-tensorboard/bin/python "tensorboard==2.20.0" "setuptools<81"
	.venv-tensorboard/bin/tensorboard --logdir $(RUNS) --port $(TENSORBOARD_PORT)

images-check: $(STAMP) video-env ## Build the cpu and video images for real (buildah, no Docker engine; root, ~15 GB disk) and run them offline: version, a pipeline step as Vertex runs it, TFLite export, extract (docs/images.md)
	UV=$(UV) bash docker/images-check.sh

lock: | $(UV) ## Re-resolve uv.lock after editing pyproject.toml
	$(UV) lock

clean: ## Remove the environments and generated runs
	rm -rf $(VENV) $(TOOLS) .venv-tensorboard runs .pytest_cache
