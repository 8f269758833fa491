# Two commands on a fresh machine:  make demo   and   make test
# Both create .venv (Python 3.10-3.12) and install what they need first.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# CPU build of torch pinned for the test path (a bare "torch" pulls a multi-GB CUDA build).
TORCH_PIN ?= torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: demo test install benchmark clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_PIN)"
	$(BIN)/python -m pip install --quiet -e ".[test,plot]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/anatomy-inr demo --output-dir demo-output

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

benchmark: $(STAMP)
	$(BIN)/python benchmarks/points_to_surface.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache
