#!/usr/bin/env bash
# TRL's own SFT test module against ProFitSFTTrainer, offline, on local stand-ins of its tiny hub models and datasets.
#
#   scripts/trl_sft_tests.sh TRL_TESTS_DIR [WORK_DIR]      (make trl-sft-tests TRL_TESTS=...)
#
# TRL_TESTS_DIR holds TRL's tests/test_sft_trainer.py and tests/testing_utils.py at the installed TRL's version (its
# sdist ships no tests, and they are never committed here). Fetch them where there is network:
#   v=$(python -c "import trl; print(trl.__version__)")
#   for f in test_sft_trainer.py testing_utils.py; do
#     curl -fsSL -o "$TRL_TESTS_DIR/$f" "https://raw.githubusercontent.com/huggingface/trl/v$v/tests/$f"; done
#
# It builds the stand-ins (scripts/trl_sft_tests/standins.py) once in WORK_DIR, then runs the module four times:
# with TRL's SFTTrainer, and with ProFitSFTTrainer given TRL's SFTConfig, ProFitConfig(selection="all") and
# ProFitConfig as it is (selection="profit"), and prints which tests pass with TRL and not with each of ours.
# PYTEST_K="expr" selects tests, MODES="trl profit-all" the runs. A test that fails with TRL too (a stand-in it cannot use, an API of another TRL version) says nothing about ours.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
TRL_TESTS=$(cd "${1:?usage: $0 TRL_TESTS_DIR [WORK_DIR]}" && pwd)
WORK=${2:-/tmp/profit-rl-trl-sft-tests}
PY=${PY:-python}
MODES=${MODES:-"trl profit-sftconfig profit-all profit"}
for f in test_sft_trainer.py testing_utils.py; do
  [ -f "$TRL_TESTS/$f" ] || { echo "missing $TRL_TESTS/$f: fetch it from TRL's repository (see $0)" >&2; exit 1; }
done
mkdir -p "$WORK"
[ -f "$WORK/standins/.built" ] || { $PY "$REPO/scripts/trl_sft_tests/standins.py" "$WORK/standins" && touch "$WORK/standins/.built"; }
# a package beside the stand-ins' conftest, so that TRL's `from .testing_utils import ...` resolves
RUN="$WORK/run"; rm -rf "$RUN"; mkdir -p "$RUN/trl_tests"
touch "$RUN/trl_tests/__init__.py"
cp "$TRL_TESTS/test_sft_trainer.py" "$TRL_TESTS/testing_utils.py" "$RUN/trl_tests/"
cp "$REPO/scripts/trl_sft_tests/conftest.py" "$RUN/trl_tests/conftest.py"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_HUB_CACHE="$WORK/standins/hub" TRL_STANDINS="$WORK/standins" \
  WANDB_DISABLED=true TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} \
  PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
for mode in $MODES; do
  echo "== TRL_SFT_TRAINER=$mode"
  (cd "$RUN" && TRL_SFT_TRAINER=$mode $PY -m pytest -q -p no:cacheprovider -c /dev/null --rootdir "$RUN" \
     -W ignore::DeprecationWarning --junitxml "$WORK/$mode.xml" trl_tests/test_sft_trainer.py ${PYTEST_K:+-k "$PYTEST_K"} \
     > "$WORK/$mode.log" 2>&1) || true
  grep -aE "[0-9]+ (passed|failed)" "$WORK/$mode.log" | tail -n 1
done
$PY "$REPO/scripts/trl_sft_tests/compare.py" "$WORK" $MODES
