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


def test_grpo_part_fails_when_completions_run_past_the_end_of_turn(tmp_path):
    """The part's gate, on the trainer_state.json it reads: 5 logged steps, clipped ratio 0 and ~2-token completions
    (the rig's Hello<|im_end|>); a run that ignored the stop at <|im_end|> fills max_completion_length and fails."""
    import json

    gpu_check = load_gpu_check()
    grpo = next(p for p in gpu_check.parts(tmp_path, tmp_path) if p.name == "grpo-vllm")
    (tmp_path / "grpo").mkdir()

    def state(clipped, length, steps=5):
        history = [{"step": i + 1, "reward": 0.0, "completions/clipped_ratio": clipped,
                    "completions/mean_length": length} for i in range(steps)]
        (tmp_path / "grpo" / "trainer_state.json").write_text(json.dumps({"log_history": history}))
        return gpu_check.figures(grpo, tmp_path, "")

    ok, found = state(0.0, 2.0)
    assert ok and found["stops_at_end_of_turn"] and found["steps_logged"] == 5
    assert state(1.0, 64.0)[0] is False  # every completion clipped at max_completion_length
    assert state(0.0, 2.0, steps=4)[0] is False  # a step without its reward logged


def test_without_a_gpu_every_part_is_reported_not_run(tmp_path, shared_data):
    """On a machine without CUDA the real run writes its JSON and table, says INCOMPLETE first, and exits 1."""
    import json

    gpu_check = load_gpu_check()
    code = gpu_check.main(["--out", str(tmp_path), "--data-dir", str(shared_data), "--parts", "loss,sft-fsdp"])
    assert code == 1
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert [(r["part"], r["status"]) for r in report["parts"]] == [("loss", "not run"), ("sft-fsdp", "not run")]
    table = (tmp_path / "gpu_check.md").read_text()
    assert table.splitlines()[0] == "# make gpu-check: INCOMPLETE, 2 of 2 parts did not pass (loss, sft-fsdp)"
    assert "no CUDA device visible" in table
