"""`make gpu-check DRY_RUN=1` (bench/gpu_check.py --dry-run, which .ci/run calls) fails on a command that would not
parse on the GPU machine or a file it needs that is missing, naming the part."""

import importlib.util
import sys

from conftest import REPO


def load_gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "bench" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_dry_run_fails_on_an_unknown_flag_or_a_missing_file(tmp_path, capsys, shared_data):
    gpu_check = load_gpu_check()
    grpo = next(p for p in gpu_check.parts(tmp_path, shared_data) if p.name == "grpo-vllm")
    assert gpu_check.dry_run([grpo]) == 0  # the shipped command parses
    grpo.argv += ["--vllm_mod", "server"]  # a misspelt flag: TRL's parser would stop the GRPO run on the GPU machine
    eval_part = next(p for p in gpu_check.parts(tmp_path, tmp_path / "no-data") if p.name == "eval-vllm")
    capsys.readouterr()
    assert gpu_check.dry_run([grpo, eval_part]) == 1
    out = capsys.readouterr().out
    assert "FAILED grpo-vllm" in out and "--vllm_mod" in out
    assert "FAILED eval-vllm: missing files" in out and "no-data" in out
