# One-command run and test. The virtual environment is (re)installed only when the
# dependency files change (stamp file), so repeated runs start immediately.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install.stamp
export DO_NOT_TRACK := true
export KEDRO_DISABLE_TELEMETRY := true
export MLFLOW_DISABLE_TELEMETRY := true
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run test lint bench mlflow-ui viz clean-data

$(STAMP): requirements.lock pyproject.toml
	@echo "Installing the pinned dependencies into $(VENV) (torch CPU, kedro, mlflow, ...):"
	@echo "about 2 minutes with a warm pip cache, longer on a first download (~1 GB)."
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch is pinned exactly in the lock: a looser spec pulls a multi-GB CUDA build
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/kedro run

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

bench: $(STAMP)
	$(BIN)/python bench/parse_ntu.py
	$(BIN)/python bench/relation_net.py
	$(BIN)/python bench/stgcn_throughput.py

mlflow-ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --port 5000

viz: $(STAMP)
	$(BIN)/kedro viz run --pipeline one_variant
