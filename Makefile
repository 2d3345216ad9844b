# The README's two commands:  `make run` (set up + main job) and `make test` (set up + tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Installed before the project so pip keeps this build (a bare `torch` pulls a multi-GB CUDA build
# on Linux). Override it for another build, e.g. `make test TORCH_SPEC="torch==2.9.1"`.
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev

.PHONY: setup run test test-marl lint bench docs clean

$(BIN)/.setup-done: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

setup: $(BIN)/.setup-done

## Main job: a short training + comparison on Pendulum-v1 (a few minutes on 2 cores): a random
## policy, SB3 DDPG and the default local learner (feedback alignment) with its hidden layers
## learning and frozen, same network, same budget; compare prints the normalized scores once and
## writes results.csv, scores.md and curves.png to runs/main.
MAIN_STEPS ?= 5000
run: setup
	$(BIN)/neuron-env info --task Pendulum-v1 --hidden 64 64
	$(BIN)/neuron-env compare --tasks Pendulum-v1 --methods random sb3-ddpg local-feedback local-feedback-frozen \
		--steps $(MAIN_STEPS) --seeds 1 --workers 2 --learning-starts 1000 --eval-every 1000 --eval-episodes 3 \
		--no-tensorboard --out runs/main

## Fast test suite (learning runs marked slow are excluded) plus lint.
test: setup
	$(BIN)/ruff check .
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir build/site
	$(BIN)/python -m pytest -q

## BenchMARL integration in its own venv (not part of `make test`): benchmarl 1.5.2 needs torchrl 0.11.1
## (the dev extra has 0.14) and a torch/torchvision pair that import together. Builds .venv-marl once
## (about 75 s and 5.7 GB: PyPI's x86_64 torch 2.14.1 is the CUDA build; it runs on the CPU),
## then runs the integration's tests there, tiny end-to-end MAPPO and MADDPG runs included.
MARL_VENV ?= .venv-marl
MARL_BIN := $(MARL_VENV)/bin
MARL_TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
$(MARL_BIN)/.setup-done: pyproject.toml
	$(PYTHON) -m venv $(MARL_VENV)
	$(MARL_BIN)/python -m pip install --quiet --upgrade pip
	$(MARL_BIN)/python -m pip install --quiet $(MARL_TORCH_SPEC)
	$(MARL_BIN)/python -m pip install --quiet $(MARL_TORCH_SPEC) -e ".[benchmarl]" pytest
	touch $@

test-marl: $(MARL_BIN)/.setup-done
	$(MARL_BIN)/python -m pytest -q -p no:cacheprovider tests/test_integrations_benchmarl.py tests/test_episode_clock.py \
		tests/test_marl_study.py tests/test_marl_study_run.py

lint: setup
	$(BIN)/ruff check .

## Throughput benchmarks (not in CI): print tables, write JSON under benchmarks/results/.
bench: setup
	$(BIN)/python benchmarks/env_throughput.py

## Documentation site on http://127.0.0.1:8000 (sources in docs/).
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
