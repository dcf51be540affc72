# The two commands a new machine needs: `make train` and `make test`; `make serve` needs neither.
# Both create .venv on first use; constraints.txt pins torch to the local CPU wheel.
PYTHON ?= python3
VENV := .venv
PIP := $(VENV)/bin/pip install --quiet --constraint constraints.txt
CORE := $(VENV)/.core-installed
DEV := $(VENV)/.dev-installed
WEB := $(VENV)/.web-installed

# The pretrained weights that ship inside the package: the lab recipe, on the CPU with 2 threads
# so the same machine makes the same bits. `make weights` retrains them and replaces the file.
PRETRAINED := src/lenet5/pretrained/lab.safetensors
WEIGHTS_RUN := runs/weights/lab
WEIGHTS_FLAGS := --recipe lab --threads 2 --device cpu

.PHONY: train test serve weights clean

train: $(CORE)
	$(VENV)/bin/lenet5 train

serve: $(WEB)
	$(VENV)/bin/lenet5 serve

weights: $(CORE)
	rm -rf $(WEIGHTS_RUN)
	$(VENV)/bin/lenet5 train $(WEIGHTS_FLAGS) --project $(dir $(WEIGHTS_RUN)) --name $(notdir $(WEIGHTS_RUN))
	cp $(WEIGHTS_RUN)/best.safetensors $(PRETRAINED)

test: $(DEV)
	$(VENV)/bin/python -m pytest -q

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(CORE): $(VENV)/bin/python pyproject.toml constraints.txt
	$(PIP) -e .
	touch $@

$(WEB): $(CORE)
	$(PIP) -e '.[web]'
	touch $@

$(DEV): $(CORE)
	$(PIP) -e '.[onnx,web,compare,postgres,dev]'
	touch $@

clean:
	rm -rf $(VENV) runs
