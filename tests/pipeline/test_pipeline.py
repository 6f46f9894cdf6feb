"""The pipeline: the dry-run plan of a multi-GPU model, skip-when-done, and a smoke run of every stage."""

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from profit_rl.pipeline.plan import plan
from profit_rl.pipeline.profiles import PAPER_BENCHMARKS, resolve_profile
from profit_rl.pipeline.report import SMOKE_BANNER
from profit_rl.pipeline.runner import main as pipeline_main, parse_args
from profit_rl.pipeline.steps import DONE, Step

from conftest import REPO  # noqa: E402  (the repository root, defined once)


def test_dry_run_prints_the_multi_gpu_plan_through_make():
    out = subprocess.run(
        ["make", "-s", "sft-then-rl", "MODEL=Qwen3-0.6B-Base", "NUM_GPUS=8", "DRY_RUN=1"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if line and not line.startswith("#")]
    commands = [line for line in lines if " -m " in line]
    assert len(commands) == 13, out.stdout
    sft = [c for c in commands if "profit_rl.sft" in c]
    assert len(sft) == 2 and all("accelerate.commands.launch --config_file recipes/accelerate_configs/zero2.yaml "
                                 "--num_processes 8" in c for c in sft)
    assert any("--config recipes/Qwen3-0.6B-Base/sft/profit.yaml" in c for c in sft)
    assert any("--config recipes/Qwen3-0.6B-Base/sft/sft.yaml" in c for c in sft)
    grpo = [c for c in commands if "profit_rl.grpo" in c]
    assert len(grpo) == 2 and all("--config recipes/Qwen3-0.6B-Base/grpo/math.yaml" in c for c in grpo)
    evals = [c for c in commands if "profit_rl.evals.evaluate" in c or "profit_rl.evals.curves" in c]
    assert len(evals) == 6 and all("--backend vllm --data-parallel-size 8" in c for c in evals)
    # the paper's eval protocol, and the paper's SFT data named in the data step's command
    assert all("--protocol paper" in c for c in evals)
    data, = [c for c in commands if "profit_rl.data.prepare" in c]
    assert "--sft-dataset https://raw.githubusercontent.com/Utaotao/ProFit/main/data/Shadow_2k.parquet" in data
    band = [c for c in commands if "profit_rl.pipeline.checks sft-band" in c]  # GRPO waits for an SFT model in the band
    assert len(band) == 1 and "--band 0.1,0.9" in band[0]
    # the GPU recipe really samples with vLLM (colocated with training)
    assert "use_vllm: true" in (REPO / "recipes/Qwen3-0.6B-Base/grpo/math.yaml").read_text()


def test_smollm2_plan_converts_the_wheel_and_reuses_the_embedded_task(tmp_path):
    args = parse_args(["--model", "smollm2-135m", "--output-root", str(tmp_path)])
    profile = resolve_profile(args)
    steps = plan(profile, ["profit", "sft"])
    root = tmp_path / "smollm2-135m"
    convert, data = steps[0], steps[1]
    assert convert.argv[1:] == ["-m", "profit_rl.models.smollm2", "--out-dir", str(root / "model")]
    assert data.argv[1:4] == ["-m", "profit_rl.embedded.build", "--data-only"] and data.output == root / "data"
    assert data.argv[-8:] == ["--task", "max_ops=3", "--task", "start_min=10", "--task", "start_max=90",
                              "--task", "max_value=99"]  # two-digit problems: the band SmolLM2 learns in 64 steps
    sft = {s.name: s.argv for s in steps if s.stage == "sft"}
    assert "recipes/smollm2-135m/sft/profit.yaml" in sft["sft/profit"]
    assert "recipes/smollm2-135m/sft/sft.yaml" in sft["sft/sft"]
    grpo = [s.argv for s in steps if s.stage == "grpo"]
    assert all("recipes/smollm2-135m/grpo/math.yaml" in argv for argv in grpo)
    assert grpo[0][grpo[0].index("--model_name_or_path") + 1] == str(root / "profit" / "sft")  # the SFT adapter
    evals = [s.argv for s in steps if s.name.startswith(("eval/", "curves"))]
    assert all(argv[argv.index("--data-dir") + 1] == str(root / "data") for argv in evals)
    assert all("--backend" not in argv for argv in evals)  # transformers on CPU
    assert profile.cpus == 2 and profile.num_gpus == 0
    assert {s.cpus for s in steps if s.name.startswith(("sft/", "eval/", "grpo/"))} == {2}  # one at a time on 2 cores
    seeded = resolve_profile(parse_args(["--model", "smollm2-135m", "--seed", "1", "--output-root", str(tmp_path)]))
    assert seeded.name == "smollm2-135m/seed-1" and seeded.base_model == profile.base_model  # one converted model
    curves = {s.name: s.argv for s in steps if s.stage == "curves"}  # step 0 reuses the SFT evals' samples
    assert curves["curves/profit-init"][curves["curves/profit-init"].index("--base-cache-dirs") + 1] == str(
        root / "profit" / "eval" / "sft")
    assert curves["curves"][curves["curves"].index("--base-cache-dirs") + 1] == (
        f"{root / 'profit' / 'eval' / 'sft'},{root / 'sft' / 'eval' / 'sft'}")

    harder = parse_args(["--model", "smollm2-135m", "--task", "max_ops=5", "--output-root", str(tmp_path)])
    data_argv = plan(resolve_profile(harder), ["profit"])[1].argv
    assert data_argv[-2:] == ["--task", "max_ops=5"] and data_argv.count("--task") == 1  # replaces the profile's
    with pytest.raises(SystemExit, match="--task changes the embedded task"):
        resolve_profile(parse_args(["--model", "Qwen3-0.6B-Base", "--task", "max_ops=3"]))


def test_dry_run_is_the_plan_the_real_run_executes(tmp_path, capsys):
    pipeline_main(["--model", "Qwen3-4B-Base", "--num-gpus", "4", "--dry-run", "--output-root", str(tmp_path)])
    printed = [line for line in capsys.readouterr().out.splitlines() if line and not line.startswith("#")]
    args = parse_args(["--model", "Qwen3-4B-Base", "--num-gpus", "4", "--output-root", str(tmp_path)])
    steps = plan(resolve_profile(args), ["profit", "sft"])
    assert printed == [step.shell() for step in steps]
    assert not any(tmp_path.iterdir())  # nothing was run or written


def test_real_models_eval_the_papers_benchmarks_in_the_order_their_commands_always_had(tmp_path):
    """`--benchmarks`' default is the paper protocol's set, in the pipeline's own order: each eval step's command spells
    the list out, so another order (the protocol's, or evals' boxed DEFAULT_BENCHMARKS) would rerun finished evals."""
    from profit_rl.evals.protocols import get_protocol

    assert sorted(PAPER_BENCHMARKS.split(",")) == sorted(get_protocol("paper").benchmarks)
    args = parse_args(["--model", "Qwen3-0.6B-Base", "--output-root", str(tmp_path)])
    assert args.benchmarks == PAPER_BENCHMARKS
    base = next(s for s in plan(resolve_profile(args), ["sft"]) if s.name == "eval/base")
    assert base.argv[base.argv.index("--benchmarks") + 1] == "math500,gsm8k,aime24,gpqa,ifeval"
    assert base.argv[base.argv.index("--protocol") + 1] == "paper"


def test_methods_without_a_recipe_use_the_baseline_recipe_with_their_rule(tmp_path):
    args = parse_args(["--model", "Qwen3-0.6B-Base", "--output-root", str(tmp_path)])
    steps = plan(resolve_profile(args), ["band", "sft"])
    band = next(s for s in steps if s.name == "sft/band")
    assert "recipes/Qwen3-0.6B-Base/sft/sft.yaml" in band.argv and band.argv[band.argv.index("--selection") + 1] == "band"
    with pytest.raises(SystemExit, match="unknown method"):
        plan(resolve_profile(args), ["nonsense"])


def test_the_zero_stage_comes_from_the_profile(tmp_path):
    def config_of(model):
        profile = resolve_profile(parse_args(["--model", model, "--num-gpus", "8", "--output-root", str(tmp_path)]))
        sft = next(s for s in plan(profile, ["profit"]) if s.stage == "sft")
        return sft.argv[sft.argv.index("--config_file") + 1]

    assert config_of("Qwen3-14B-Base") == "recipes/accelerate_configs/zero3.yaml"  # 14B: sharded weights
    assert config_of("Qwen3-4B-Base") == config_of("Qwen/Qwen3-8B-Base") == "recipes/accelerate_configs/zero2.yaml"


def test_step_is_done_only_with_a_marker_for_the_same_command(tmp_path):
    step = Step("sft", "x", ["python", "-c", "pass"], tmp_path / "out")
    assert not step.done()
    step.mark_done(1.0)
    assert step.done()
    changed = Step("sft", "x", ["python", "-c", "pass", "--tau", "0.2"], tmp_path / "out")
    assert not changed.done()  # a changed command reruns


@pytest.mark.slow
def test_smoke_run_stops_on_a_failed_check_goes_on_when_allowed_and_a_rerun_skips_everything(tmp_path):
    cmd = [sys.executable, "-m", "profit_rl.pipeline", "--smoke", "--output-root", str(tmp_path)]
    root = tmp_path / "embedded"
    # A base model below the health check's threshold (forced here) stops the run before anything trains on it.
    stopped = subprocess.run(cmd + ["--min-base-accuracy", "1.01"], cwd=REPO, capture_output=True, text=True,
                             timeout=600)
    assert stopped.returncode != 0
    assert "step 'check/base-model' failed" in stopped.stderr and "health check needs >= 101%" in stopped.stderr
    assert "pass --allow-unhealthy" in stopped.stderr  # ... and says what to do
    assert (root / "base" / DONE).is_file() and not (root / "profit" / "sft").exists()

    # --allow-unhealthy goes on, and the report's first line says the comparison means nothing
    first = subprocess.run(cmd + ["--min-base-accuracy", "1.01", "--allow-unhealthy"], cwd=REPO, capture_output=True,
                           text=True, timeout=900)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert (root / "base" / "model" / "config.json").is_file()
    assert sum(1 for _ in (root / "base" / "sft.jsonl").open()) >= 1000
    for method in ("profit", "sft"):
        assert (root / method / "sft" / "model.safetensors").is_file()
        assert json.loads((root / method / "eval" / "sft" / "results.json").read_text())["benchmarks"]["embedded"]
        assert (root / method / "grpo" / "checkpoint-1" / "config.json").is_file()
        assert (root / method / "grpo" / "checkpoint-2" / "config.json").is_file()
    assert (root / "base" / "eval" / "results.json").is_file()
    rows = list(csv.DictReader((root / "curves" / "curves.csv").open()))
    assert sorted((r["run"], r["step"]) for r in rows) == [  # step 0 is the SFT model each run started from
        (run, step) for run in ("profit-init", "sft-init") for step in ("0", "1", "2")]
    assert (root / "curves" / "curves.png").stat().st_size > 5000
    report = (root / "report.md").read_text()
    assert report.startswith(f"{SMOKE_BANNER}\n\n**Not a meaningful comparison:** the embedded base model solves")
    for section in ("After SFT (Table 1)", "profit SFT − sft SFT", "GRPO from each SFT checkpoint",
                    "Final GRPO checkpoint: profit-init − sft-init", "Settings", "report/curves.png"):
        assert section in report
    assert (root / "report" / "curves.png").is_file()
    assert f"report: {root / 'report.md'}" in first.stdout

    # The default threshold: the check reruns and passes; the steps after it stay done (they only waited for it);
    # the report, which reads it, is written again without the warning.
    healthy = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert healthy.returncode == 0, healthy.stdout[-3000:] + healthy.stderr[-3000:]
    assert healthy.stdout.count("done, skipped") == 11
    assert (root / "report.md").read_text().startswith(f"{SMOKE_BANNER}\n\n# profit-rl report")

    second = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0
    assert second.stdout.count("done, skipped") == 13
    assert len(list(root.rglob(DONE))) == 13


def test_a_smoke_runs_report_says_so_in_its_first_line_and_a_real_runs_does_not(tmp_path):
    from profit_rl.pipeline.report import write_report

    root = tmp_path / "embedded"
    root.mkdir()
    assert write_report(root, ["profit", "sft"], smoke=True).read_text().splitlines()[0] == SMOKE_BANNER
    assert write_report(root, ["profit", "sft"]).read_text().startswith("# profit-rl report: embedded")
    smoke = resolve_profile(parse_args(["--smoke", "--output-root", str(tmp_path)]))
    assert next(s for s in plan(smoke, ["profit", "sft"]) if s.stage == "report").argv[-1] == "--smoke"


def test_report_lists_only_its_own_runs_commands_not_a_nested_seed_runs(tmp_path):
    """Seed N > 0 runs in <root>/seed-N/ (make reproduce-embedded): its steps must not appear in seed 0's report."""
    from profit_rl.pipeline.report import commands

    root = tmp_path / "embedded"
    Step("sft", "sft/profit", ["python", "-m", "profit_rl.sft", "--seed", "0"], root / "profit" / "sft").mark_done(1.0)
    Step("sft", "sft/profit", ["python", "-m", "profit_rl.sft", "--seed", "1"],
         root / "seed-1" / "profit" / "sft").mark_done(1.0)
    listed = commands(root)
    assert "--seed 0" in listed and "--seed 1" not in listed and "profit/sft (1.0 s)" in listed
    assert "--seed 1" in commands(root / "seed-1")


def test_a_step_reruns_when_a_step_it_reads_ran_again(tmp_path):
    """Markers key on the command and on the run ids of the steps read; a rerun upstream step (other data) must not
    leave downstream models silently stale, whatever the clocks say."""
    from profit_rl.pipeline.scheduler import changed_inputs

    data = Step("data", "data", ["python", "-m", "build", "--out-dir", str(tmp_path / "data")], tmp_path / "data")
    sft = Step("sft", "sft", ["python", "-m", "sft", "--dataset_name", str(tmp_path / "data" / "sft.jsonl"),
                              "--output_dir", str(tmp_path / "sft")], tmp_path / "sft", inputs=("data",))
    other = Step("eval", "eval/base", ["python", "-m", "eval", "--output-dir", str(tmp_path / "base")], tmp_path / "base")
    data.mark_done(1.0)
    sft.mark_done(1.0, inputs={"data": data.run_id()})
    other.mark_done(1.0)
    assert changed_inputs(sft, [data]) == [] and changed_inputs(other, [data, sft]) == []
    data.mark_done(1.0)  # the data step ran again
    assert changed_inputs(sft, [data]) == [data]
    assert changed_inputs(other, [data, sft]) == []  # a step that does not read the data stays done


def _py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _rendezvous(me: Path, other: Path) -> list[str]:
    """Announce that this step started, then wait for the other one's announcement: both can finish only if they
    ran at the same time (alone, it gives up after 60 s and fails)."""
    return _py(f"import pathlib, sys, time; pathlib.Path({str(me)!r}).touch(); t = time.time()\n"
               f"while not pathlib.Path({str(other)!r}).exists():\n"
               "    time.sleep(0.02)\n"
               "    if time.time() - t > 60: sys.exit(3)")


def test_steps_with_no_path_between_them_run_at_the_same_time(tmp_path, capsys):
    from profit_rl.pipeline.scheduler import run

    a = Step("sft", "sft/a", _rendezvous(tmp_path / "a-started", tmp_path / "b-started"), tmp_path / "a")
    b = Step("sft", "sft/b", _rendezvous(tmp_path / "b-started", tmp_path / "a-started"), tmp_path / "b")
    # c reads a and b: it starts only once both finished
    c = Step("eval", "eval/c", _py(f"import pathlib; assert pathlib.Path({str(tmp_path / 'a' / DONE)!r}).is_file() "
                                   f"and pathlib.Path({str(tmp_path / 'b' / DONE)!r}).is_file()"),
             tmp_path / "c", inputs=("sft/a", "sft/b"))
    run([a, b, c], cpus=2)
    assert a.done() and b.done() and c.done()
    assert json.loads((a.output / DONE).read_text())["cpu_seconds"] >= 0  # each step's CPU time is recorded

    run([a, b, c], cpus=2)  # a rerun skips finished steps
    assert capsys.readouterr().out.count("done, skipped") == 3


def test_the_summary_counts_the_cpu_time_of_the_steps_this_run_ran(tmp_path, capsys):
    from profit_rl.pipeline.scheduler import run

    burn = _py("import time\nwhile time.process_time() < 1.0:\n    pass")  # a step that costs 1 CPU-s
    steps = [Step("sft", "sft/a", burn, tmp_path / "a"), Step("sft", "sft/b", burn, tmp_path / "b")]
    run(steps, cpus=2)
    marked = sum(json.loads((s.output / DONE).read_text())["cpu_seconds"] for s in steps)
    summary = re.search(r"\((\d+) CPU-s in the steps it ran\)", capsys.readouterr().out)
    assert marked >= 2 and summary and abs(int(summary.group(1)) - marked) <= 1  # the markers round to 0.1 s
    run(steps, cpus=2)  # a seed study runs the next plan in the same process: it ran nothing, it costs nothing
    assert "(0 CPU-s in the steps it ran)" in capsys.readouterr().out


def test_steps_that_do_not_fit_the_budget_together_run_one_after_another(tmp_path):
    from profit_rl.pipeline.scheduler import run

    log = tmp_path / "log"

    def exclusive(name):  # records its start and end; finds another step running if they overlap
        return _py(f"import pathlib, time; log = pathlib.Path({str(log)!r}); lock = log.with_suffix('.running')\n"
                   "assert not lock.exists(), 'two steps ran at once'\n"
                   f"lock.touch(); open(log, 'a').write('start {name}\\n'); time.sleep(0.3)\n"
                   f"open(log, 'a').write('end {name}\\n'); lock.unlink()")

    steps = [Step("sft", "sft/a", exclusive("a"), tmp_path / "a"), Step("sft", "sft/b", exclusive("b"), tmp_path / "b")]
    run(steps, cpus=1)
    assert log.read_text().split("\n")[:4] == ["start a", "end a", "start b", "end b"]
    log.unlink()
    wide = [Step("sft", "sft/a", exclusive("a"), tmp_path / "c", cpus=2),  # holds both slots
            Step("sft", "sft/b", exclusive("b"), tmp_path / "d")]
    run(wide, cpus=2)
    assert log.read_text().split("\n")[:4] == ["start a", "end a", "start b", "end b"]
    gpu = [Step("sft", "sft/a", exclusive("a"), tmp_path / "e", gpus=8),  # both hold every GPU
           Step("sft", "sft/b", exclusive("b"), tmp_path / "f", gpus=8)]
    log.unlink()
    run(gpu, cpus=2, gpus=8, cpu_threads=False)
    assert log.read_text().split("\n")[:4] == ["start a", "end a", "start b", "end b"]


def test_a_failed_step_stops_what_reads_it_and_lets_running_steps_finish(tmp_path):
    from profit_rl.pipeline.scheduler import run

    bad = Step("sft", "sft/bad", _py("print('the loss is nan'); raise SystemExit(2)"), tmp_path / "bad")
    other = Step("sft", "sft/other", _py("import time; time.sleep(0.5)"), tmp_path / "other")
    after = Step("eval", "eval/after", _py("pass"), tmp_path / "after", inputs=("sft/bad",))
    with pytest.raises(SystemExit, match=r"(?s)step 'sft/bad' failed \(exit 2\).*the loss is nan.*Rerun the same"):
        run([bad, other, after], cpus=2)
    assert other.done() and not bad.done() and not after.done()
    with pytest.raises(ValueError, match="reads"):
        run([after, bad], cpus=2)  # a step may read only steps planned before it


def test_dry_run_shows_what_runs_beside_what(tmp_path, capsys):
    pipeline_main(["--dry-run", "--cpus", "2", "--output-root", str(tmp_path)])
    lines = capsys.readouterr().out.splitlines()
    comment = {line.split("] ", 1)[1].split(" -> ")[0]: line for line in lines if line.startswith("# [")}
    beside = {name: line.split("runs beside: ")[1].split(", ") if "runs beside" in line else []
              for name, line in comment.items()}
    assert "sft/sft" in beside["sft: sft/profit"] and "reads: data;" in comment["sft: sft/profit"]
    assert "grpo/sft-init" in beside["grpo: grpo/profit-init"]
    assert "runs beside" not in comment["data: data"]  # everything reads the data step
    pipeline_main(["--dry-run", "--cpus", "1", "--output-root", str(tmp_path)])
    assert "runs beside" not in capsys.readouterr().out
    assert not any(tmp_path.iterdir())


def test_seed_study_dry_run_plans_each_seed_in_its_own_folder(tmp_path, capsys):
    pipeline_main(["--seeds", "2", "--dry-run", "--output-root", str(tmp_path)])
    out = capsys.readouterr().out
    assert f"# seed 0 of 0-1: {tmp_path / 'embedded'}\n" in out and f"# seed 1 of 0-1: {tmp_path / 'embedded' / 'seed-1'}\n" in out
    seed1 = out.split("# seed 1 of 0-1")[1]
    sft = [line for line in seed1.splitlines() if "profit_rl.sft" in line]
    assert len(sft) == 2 and all(line.endswith("--seed 1") for line in sft)
    assert f"--out-dir {tmp_path / 'embedded' / 'base'}" in seed1  # one base model for every seed
    assert not any(tmp_path.iterdir())
