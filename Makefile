# The two commands a new machine needs: `make train` and `make test`.
# Both create .venv on first use; constraints.txt pins torch to the local CPU wheel.
PYTHON ?= python3
VENV := .venv
PIP := $(VENV)/bin/pip install --quiet --constraint constraints.txt
CORE := $(VENV)/.core-installed
DEV := $(VENV)/.dev-installed

.PHONY: train test clean

train: $(CORE)
	$(VENV)/bin/lenet5 train

test: $(DEV)
	$(VENV)/bin/python -m pytest -q

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(CORE): $(VENV)/bin/python pyproject.toml constraints.txt
	$(PIP) -e .
	touch $@

$(DEV): $(CORE)
	$(PIP) -e '.[onnx,web,compare,postgres,dev]'
	touch $@

clean:
	rm -rf $(VENV) runs
