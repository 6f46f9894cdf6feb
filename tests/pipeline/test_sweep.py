"""`profit-rl sweep`: the grid's commands, the table's seed statistics, and a smoke grid run end to end."""

import json
import math
import subprocess
import sys

import pytest

from profit_rl.pipeline.report import SMOKE_BANNER
from profit_rl.pipeline.steps import DONE
from profit_rl.pipeline.sweep import Cell, Grid, grid_from_args, main as sweep_main, parse_args, plan
from profit_rl.pipeline.sweep_report import differences, markdown, summarize

from conftest import REPO, folder_held_by_another_pipeline  # noqa: E402  (defined once)


def flag(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def test_make_ablations_runs_three_seeds_whatever_the_seed_study_uses():
    # `make -n` prints the recipes without running them (the install step included)
    out = subprocess.run(["make", "-n", "ablations", "SEEDS=5"], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    sweep = out.stdout[out.stdout.index("-m profit_rl.pipeline.sweep"):].split()
    assert flag(sweep, "--seeds") == "3" and flag(sweep, "--studies") == "tau,epochs"
    out = subprocess.run(["make", "-n", "ablations", "ABLATION_SEEDS=2"], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert flag(out.stdout[out.stdout.index("-m profit_rl.pipeline.sweep"):].split(), "--seeds") == "2"


def test_dry_run_prints_the_full_grid_of_make_ablations(tmp_path, capsys):
    sweep_main(["--dry-run", "--cpus", "2", "--output-root", str(tmp_path)])
    out = capsys.readouterr().out
    commands = [line.split() for line in out.splitlines() if line and not line.startswith("#")]
    assert not any(tmp_path.iterdir())  # nothing was run or written
    sft = [c for c in commands if "profit_rl.sft" in c]
    evals = [c for c in commands if "profit_rl.evals.evaluate" in c or "profit_rl.evals.curves" in c]
    # per seed: tau 5 x (profit, inverse) + sft, dft, entropy, random; epochs 3 runs; rank 3 x 3
    assert len(sft) == len(evals) == 3 * (10 + 4 + 3 + 9)
    assert len(commands) == 1 + 1 + 2 * 78 + 1  # the data build, its health check, SFT + eval per cell, the report
    check, = [c for c in commands if "profit_rl.pipeline.checks" in c]
    assert check[check.index("profit_rl.pipeline.checks") + 1] == "base-model"  # the pipeline's: no SFT on a broken base
    assert {flag(c, "--seed") for c in sft} == {"0", "1", "2"}

    tau = [c for c in sft if "/sweep/tau/" in flag(c, "--output_dir")]
    profit = [c for c in tau if "recipes/embedded/sft/profit.yaml" in c]
    inverse = [c for c in tau if flag(c, "--selection") == "inverse"]
    assert sorted({flag(c, "--tau") for c in profit}) == sorted({flag(c, "--tau") for c in inverse}) == [
        "0.01", "0.05", "0.1", "0.2", "0.4"]
    once = [c for c in tau if flag(c, "--tau") is None]  # the rules without a threshold, once per seed
    assert sorted(flag(c, "--selection") or flag(c, "--config") for c in once if flag(c, "--seed") == "0") == [
        "dft", "entropy", "random", "recipes/embedded/sft/sft.yaml"]
    assert len(tau) == 3 * 14

    epochs = [c for c in sft if "/sweep/epochs/" in flag(c, "--output_dir")]
    assert len(epochs) == 9 and all(flag(c, "--num_train_epochs") == "5" and flag(c, "--save_strategy") == "epoch"
                                    and flag(c, "--save_total_limit") == "5" for c in epochs)
    curves = [c for c in evals if "profit_rl.evals.curves" in c]  # every epoch's checkpoint, from one run
    curve_dirs = sorted(c[c.index("profit_rl.evals.curves") + 1] for c in curves)
    assert curve_dirs == sorted(flag(c, "--output_dir") for c in epochs)

    rank = [c for c in sft if "/sweep/rank/" in flag(c, "--output_dir")]
    assert sorted({flag(c, "--lora_r") for c in rank}) == ["16", "4", "64"] and len(rank) == 27
    assert all(flag(c, "--use_peft") == "true" and int(flag(c, "--lora_alpha")) == 2 * int(flag(c, "--lora_r"))
               for c in rank)
    assert all(flag(c, "--use_peft") is None for c in tau + epochs)  # full fine-tuning outside the rank study
    assert {flag(c, "--tau") for c in epochs + rank if "profit.yaml" in " ".join(c)} == {"0.1"}
    assert "ETA ~" in out.splitlines()[0]  # the budget estimate make ablations DRY_RUN=1 shows


def test_grid_round_trips_through_the_report_command_and_rejects_bad_values():
    grid = Grid(studies=("tau", "rank"), taus=(0.05, 0.3), tau_methods=("profit", "sft"), ranks=(8,), seeds=2,
                grpo=True, lora_learning_rate=0.01)
    assert grid_from_args(parse_args(grid.argv())) == grid  # the report step rebuilds the same cells
    assert [c.label for c in grid.cells() if c.seed == 0] == [
        "profit-tau0.05", "profit-tau0.3", "sft", "profit-r8", "inverse-r8", "sft-r8"]
    assert [c.learning_rate for c in grid.cells() if c.study == "rank"] == [0.01] * 6
    assert "--learning_rate" not in Cell("tau", "profit", 0, 0.1).sft_args()  # only the rank study's cells
    with pytest.raises(SystemExit, match="unknown"):
        Grid(studies=("depth",))
    with pytest.raises(SystemExit, match=r"in \(0, 1\)"):
        Grid(taus=(0.0,))


def test_grpo_adds_a_run_and_an_eval_per_cell(tmp_path):
    args = parse_args(["--studies", "tau", "--tau-methods", "profit", "--taus", "0.1", "--seeds", "1", "--grpo",
                       "--output-root", str(tmp_path)])
    args.seed = None
    steps = plan(args, grid_from_args(args))
    assert [s.name for s in steps] == ["data", "check/base-model", "sft/tau/profit-tau0.1/seed-0",
                                       "eval/tau/profit-tau0.1/seed-0", "grpo/tau/profit-tau0.1/seed-0",
                                       "eval/tau/profit-tau0.1/seed-0/grpo", "sweep/report"]
    assert steps[2].after == ("check/base-model",)  # no SFT on a base model that failed its health check
    grpo = steps[4].argv
    assert flag(grpo, "--model_name_or_path") == str(Cell("tau", "profit", 0, 0.1).folder(
        tmp_path / "embedded" / "sweep") / "sft")
    assert "eval/tau/profit-tau0.1/seed-0/grpo" in steps[-1].inputs


def _point(study, method, seed, x, avg):
    return {"study": study, "method": method, "seed": seed, "stage": "sft", "x": x, "k": 4, "n_problems": 200,
            "avg_at_k": avg, "pass_at_k": min(1.0, avg + 0.1)}


def test_points_are_mean_and_sample_std_over_seeds_and_differences_pair_by_seed():
    points = [_point("tau", "profit", 0, 0.1, 0.50), _point("tau", "profit", 1, 0.1, 0.70),
              _point("tau", "sft", 0, None, 0.60), _point("tau", "sft", 1, None, 0.90),
              _point("epochs", "profit", 0, 1, 0.40), _point("epochs", "sft", 0, 1, 0.45),
              _point("epochs", "profit", 0, 2, 0.50), _point("epochs", "sft", 0, 2, 0.40)]
    summary = {(r["study"], r["method"], r["x"]): r["avg_at_k"] for r in summarize(points)}
    assert summary["tau", "profit", 0.1]["mean"] == pytest.approx(0.60)
    assert summary["tau", "profit", 0.1]["std"] == pytest.approx(math.sqrt(0.02))  # sample std (n - 1)
    diffs = {(r["study"], r["method"], r["x"]): r["avg_at_k"] for r in differences(points)}
    # paired: seed 0 -0.10, seed 1 -0.20 (unpaired means would also give -0.15, but a spread of 0.0707, not 0.212)
    assert diffs["tau", "profit", 0.1]["values"] == pytest.approx([-0.10, -0.20])
    assert diffs["epochs", "profit", 1]["values"] == pytest.approx([-0.05])  # against sft at the same epoch
    assert diffs["epochs", "profit", 2]["values"] == pytest.approx([+0.10])
    assert math.isnan(diffs["epochs", "profit", 2]["std"])
    text = markdown(points, Grid(studies=("tau", "epochs"), seeds=2), {})
    assert "60.0 ± 14.1" in text and "-15.0 ± 7.1" in text
    assert text.startswith("**4 of 6 points rest on one seed")  # the epochs points: the first line says so
    smoke = markdown(points, Grid(studies=("tau", "epochs"), seeds=2), {}, smoke=True)
    assert smoke.startswith(f"{SMOKE_BANNER}\n\n**4 of 6 points rest on one seed")  # a smoke grid says so first


@pytest.mark.slow
def test_smoke_grid_writes_the_table_and_figures_and_a_rerun_skips_everything(tmp_path):
    cmd = [sys.executable, "-m", "profit_rl.pipeline.sweep", "--smoke", "--studies", "tau,epochs", "--taus", "0.1,0.4",
           "--tau-methods", "profit", "--methods", "profit", "--epochs", "2", "--seeds", "1", "--cpus", "2",
           "--output-root", str(tmp_path)]
    first = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    root = tmp_path / "embedded" / "sweep"
    result = json.loads((root / "ablations.json").read_text())
    got = sorted((p["study"], p["x"]) for p in result["points"])
    assert got == [("epochs", 1), ("epochs", 2), ("tau", 0.1), ("tau", 0.4)]
    assert all(0.0 <= p["avg_at_k"] <= 1.0 and p["k"] == 2 for p in result["points"])
    epoch_run = root / "epochs" / "profit" / "seed-0" / "sft"
    assert len(list(epoch_run.glob("checkpoint-*"))) == 2  # one training run, saved at each epoch end
    table = (root / "ablations.md").read_text()
    assert table.startswith(f"{SMOKE_BANNER}\n\n**4 of 4 points rest on one seed") and "## Threshold sweep" in table
    assert "| profit |" in table and "report/tau.png" in table and "report/epochs.png" in table
    for study in ("tau", "epochs"):
        assert (root / "report" / f"{study}.png").stat().st_size > 5000
    assert f"ablations: {root / 'ablations.md'}" in first.stdout

    second = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.count("done, skipped") == 9 == len(list(tmp_path.rglob(DONE)))


def test_a_sweep_refuses_while_a_pipeline_holds_the_models_folder(tmp_path, capsys):
    """They share outputs/<model>/base (the data step): running both at once would race on it."""
    with folder_held_by_another_pipeline(tmp_path / "embedded"):
        code = sweep_main(["--studies", "tau", "--tau-methods", "sft", "--seeds", "1", "--output-root", str(tmp_path)])
    assert code == 1 and "in use by" in capsys.readouterr().err
    assert not (tmp_path / "embedded" / "base").exists()  # nothing ran
    assert sweep_main(["--methods", "../x", "--dry-run", "--output-root", str(tmp_path)]) == 1
    assert "plain name" in capsys.readouterr().err
