"""The checks that stop a comparison which cannot mean anything, their place in the plan, and what the reports say."""

import json
import subprocess
import sys
from pathlib import Path

from profit_rl.pipeline import checks
from profit_rl.pipeline.plan import plan
from profit_rl.pipeline.profiles import resolve_profile
from profit_rl.pipeline.runner import parse_args

from conftest import REPO  # noqa: E402  (the repository root, defined once)


def build_info(accuracy, origin="shipped:abc"):
    return {"base_plain_greedy_accuracy": accuracy, "config": {"check_problems": 64}, "origin": origin}


def write_eval(folder: Path, avg: float, pass_k: float = 0.5) -> Path:
    folder.mkdir(parents=True)
    bench = {"avg_at_k": avg, "pass_at_k": pass_k, "k": 4}
    (folder / "results.json").write_text(json.dumps({"benchmarks": {"embedded": bench}, "average": None}))
    return folder


def write_checkpoint_eval(run: Path, step: int, avg: float) -> None:
    """What `curves` leaves for a GRPO checkpoint: <run>/eval/checkpoint-N/<benchmark>/results.json."""
    folder = run / "eval" / f"checkpoint-{step}" / "embedded"
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"avg_at_k": avg, "pass_at_k": 0.5, "k": 4}))


def test_base_model_check_passes_at_the_threshold_and_fails_below_it_saying_what_to_do():
    assert checks.base_model(build_info(0.2)).passed
    verdict = checks.base_model(build_info(0.19))
    assert not verdict.passed and "19% of 64 held-out problems" in verdict.message
    assert "pass --allow-unhealthy" in verdict.message and "shipped" in verdict.message
    assert "use the shipped model" in checks.base_model(build_info(0.0, origin="pretrained")).message


def test_sft_band_fails_only_when_every_sft_model_is_outside_it():
    assert checks.sft_band({"profit": 0.05, "sft": 0.5}).passed
    assert checks.sft_band({"profit": 0.9, "sft": 0.1}).passed  # the bounds are inside
    low = checks.sft_band({"profit": 0.035, "sft": 0.042})
    assert not low.passed and "below the 10-90% Avg@k band (profit 3.5%, sft 4.2%)" in low.message
    assert "above" in checks.sft_band({"profit": 0.95, "sft": 0.99}).message
    assert "outside" in checks.sft_band({"profit": 0.01, "sft": 0.99}).message


def test_the_check_command_exits_1_with_the_message_unless_allowed_and_the_report_says_so(tmp_path):
    from profit_rl.pipeline.report import write_report

    root = tmp_path / "run"
    evals = f"profit={write_eval(tmp_path / 'profit', 0.03)},sft={write_eval(tmp_path / 'sft', 0.95)}"
    cmd = [sys.executable, "-m", "profit_rl.pipeline.checks", "sft-band", "--evals", evals, "--output-dir",
           str(root / "checks" / "sft-band")]
    stopped = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert stopped.returncode == 1 and "every SFT model scores outside the 10-90% Avg@k band" in stopped.stderr
    assert write_report(root, ["profit", "sft"]).read_text().startswith("**Not a meaningful comparison:** every SFT")

    allowed = subprocess.run(cmd + ["--allow-unhealthy"], cwd=REPO, capture_output=True, text=True)
    assert allowed.returncode == 0
    verdict = json.loads((root / "checks" / "sft-band" / checks.VERDICT).read_text())
    assert verdict["allowed"] and not verdict["passed"] and verdict["figures"]["avg_at_k"] == {"profit": 0.03, "sft": 0.95}

    write_eval(tmp_path / "fine", 0.5)
    passed = subprocess.run(cmd[:5] + [f"profit={tmp_path / 'fine'}", "--output-dir", str(root / "checks" / "sft-band")],
                            cwd=REPO, capture_output=True, text=True)
    assert passed.returncode == 0 and "check passed" in passed.stdout
    assert write_report(root, ["profit", "sft"]).read_text().startswith("# profit-rl report")


def test_checks_gate_the_plan_training_waits_for_them_without_reading_them(tmp_path):
    steps = {s.name: s for s in plan(resolve_profile(parse_args(["--output-root", str(tmp_path)])), ["profit", "sft"])}
    base = steps["check/base-model"]
    assert base.inputs == ("data",) and base.argv[base.argv.index("--build-info") + 1] == str(
        tmp_path / "embedded" / "base" / "build.json")
    assert steps["sft/profit"].after == ("check/base-model",) and steps["eval/base"].after == ("check/base-model",)
    assert steps["check/sft-band"].inputs == ("eval/profit-sft", "eval/sft-sft")
    assert steps["grpo/profit-init"].after == ("check/base-model", "check/sft-band")
    assert {"check/base-model", "check/sft-band"} <= set(steps["report"].inputs)  # the report reads the verdicts
    assert "--allow-unhealthy" not in base.argv

    allowed = plan(resolve_profile(parse_args(["--allow-unhealthy", "--output-root", str(tmp_path)])), ["profit", "sft"])
    assert all("--allow-unhealthy" in s.argv for s in allowed if s.name.startswith("check/"))
    smoke = {s.name for s in plan(resolve_profile(parse_args(["--smoke", "--output-root", str(tmp_path)])), ["profit"])}
    assert "check/base-model" in smoke and "check/sft-band" not in smoke  # 3 SFT steps: no band to check
    gpu = {s.name for s in plan(resolve_profile(parse_args(["--model", "Qwen3-0.6B-Base", "--output-root",
                                                            str(tmp_path)])), ["profit", "sft"])}
    assert "check/sft-band" in gpu and "check/base-model" not in gpu  # a hub model has no build to check


def test_seed_table_has_each_seed_its_checks_and_the_mean_difference(tmp_path):
    from profit_rl.pipeline.report import aggregate_seeds

    roots = {}
    for seed, (profit, sft) in enumerate([(0.70, 0.80), (0.75, 0.78), (0.60, 0.66)]):
        root = roots[seed] = tmp_path / ("embedded" if seed == 0 else f"embedded/seed-{seed}")
        write_eval(root / "profit" / "eval" / "sft", profit)
        write_eval(root / "sft" / "eval" / "sft", sft)
        for method, value in (("profit", profit + 0.05), ("sft", sft + 0.01)):
            write_checkpoint_eval(root / method / "grpo", 60, value)
    checks.write_verdict(checks.Verdict("base-model", False, "too weak", allowed=True), roots[2] / "checks" / "base-model")
    text = aggregate_seeds(roots, ["profit", "sft"], tmp_path / "seeds.md").read_text()
    assert text.startswith("**Not a meaningful comparison for seed(s) 2:**")
    assert "| 0 | passed | 70.0 / 50.0 | 80.0 / 50.0 | 75.0 / 50.0 | 81.0 / 50.0 | -10.0 | -6.0 |" in text
    assert "| 2 | FAILED: base-model |" in text
    # SFT: -10, -3, -6 -> mean -6.3, sample std 3.5; GRPO: -6, +1, -2 -> -2.3 ± 3.5
    assert "profit − sft after SFT: **-6.3 ± 3.5** points over 3 seeds (-10.0, -3.0, -6.0)" in text
    assert "profit − sft after GRPO: **-2.3 ± 3.5** points over 3 seeds" in text
