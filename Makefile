# Set-up and everyday jobs. Override the torch build for your platform, e.g.
#   make test TORCH_SPEC="torch==2.9.1 torchvision==0.24.1"
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
EXTRAS ?= train,serve,dist,sam,dev
DATA ?= ../shared/data
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
SEAGULL := $(VENV)/bin/seagull
export HF_HUB_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export SEAGULL_DATA := $(DATA)

.PHONY: install run test lint format bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install $(TORCH_SPEC)
	$(PIP) install -e ".[$(EXTRAS)]"
	touch $@

install: $(VENV)/.installed

# The main job: the shipped default model on the bundled example.
run: install
	$(SEAGULL) assess examples/coffee.jpg --rois examples/coffee_rois.json

test: install
	$(PY) -m pytest -q --durations=15

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

format: install
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

bench: install
	$(PY) benchmarks/synth_throughput.py --refs $(DATA)/kodak/images --save

clean:
	rm -rf runs .pytest_cache
