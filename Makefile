# Two commands do all the set-up: `make run` (the main job) and `make test` (the suite).
# Both create .venv on first use. Activate it (`source .venv/bin/activate`) for `synthgen` and `dvc`.
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_HUB_DISABLE_TELEMETRY ?= 1
export DVC_NO_ANALYTICS ?= 1
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 90

.PHONY: setup run test lint repro bench

.venv/.installed: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $@

setup: .venv/.installed

run: .venv/.installed
	synthgen run

test: .venv/.installed
	python -m pytest -q -ra --durations=15

# Lint gates (CI runs them before the tests): ruff (pyflakes, bugbear incl. zip(strict=), import
# order, complexity, unused noqa) and mypy on synthgen/ with the config in pyproject.toml.
lint: .venv/.installed
	ruff check synthgen flows tests benchmarks scripts
	mypy

repro: .venv/.installed
	dvc repro

bench: .venv/.installed
	python benchmarks/bench_render.py
	python benchmarks/bench_shards.py
	python benchmarks/bench_query.py
	python benchmarks/bench_label.py
	python benchmarks/bench_controllability.py
	python benchmarks/bench_shift.py
	python benchmarks/bench_train.py
	python benchmarks/bench_diffusion.py --cpu-tiny
