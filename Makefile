# Everything runs from the repository's own virtual environment. Reference data: the package embeds what the
# quickstart and the core tests need; a full data folder (../shared/data when it exists, or ZSDIST_DATA) adds the
# rest, and so does `zsdist data fetch`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ifneq ($(wildcard ../shared/data),)
export ZSDIST_DATA ?= $(abspath ../shared/data)
endif

# torch/torchvision are pinned to the pair this project is tested with; timm needs torchvision.
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: setup quickstart lint test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[test]' $(TORCH)
	touch $@

quickstart: setup
	$(BIN)/zsdist ingest --results results --source nb201
	$(BIN)/zsdist launch --workflow workflows/quickstart.toml --output results

# Everything that can run here (slow tests too); what cannot (no full data, GPU or Chromium) is skipped with reasons.
# Lint (ruff) and types (mypy), as configured in pyproject.toml.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

# The venv's bin comes first on PATH: a Ray Job's entrypoint runs `python -m zsdist` as a cluster node would.
test: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q -m ""

clean:
	rm -rf $(VENV) results
