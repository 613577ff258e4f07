# Everything runs from the repository's own virtual environment; reference data comes from ZSDIST_DATA.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export ZSDIST_DATA ?= $(abspath ../shared/data)

# torch/torchvision are pinned to the pair this project is tested with; timm needs torchvision.
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: setup quickstart test bench clean

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

test: setup
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) results
