"""`profit-rl pipeline --launcher slurm`: the scripts parse, run the local plan's commands apart from the launcher, are
submitted in plan order with afterok dependencies (a fake `sbatch` records them), and a resubmission skips finished
steps."""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from profit_rl.pipeline import slurm
from profit_rl.pipeline.plan import plan
from profit_rl.pipeline.profiles import resolve_profile
from profit_rl.pipeline.runner import main as pipeline_main, parse_args

CLUSTER = ["--model", "Qwen3-0.6B-Base", "--num-gpus", "8", "--nodes", "2"]  # the acceptance command


def step_command(script: Path) -> str:
    """The STEP_COMMAND the script runs (one shell line with $VARIABLES left to each node's shell)."""
    line = next(l for l in script.read_text().splitlines() if l.startswith("export STEP_COMMAND="))
    return shlex.split(line.removeprefix("export STEP_COMMAND="))[0]


def on_node(command: str, **env) -> list[str]:
    """The argv a node's shell runs for `command`, with SLURM's variables set as on that node."""
    out = subprocess.run(["bash", "-c", f'eval "set -- $STEP_COMMAND"; printf "%s\\0" "$@"'], capture_output=True,
                         env={**os.environ, "STEP_COMMAND": command, **env}, check=True).stdout
    return out.decode().split("\0")[:-1]


def write(tmp_path, monkeypatch, extra=(), model_args=CLUSTER):
    monkeypatch.chdir(tmp_path)
    argv = ["--launcher", "slurm", *model_args, "--output-root", str(tmp_path / "outputs"), *extra]
    assert pipeline_main(argv) == 0
    args = parse_args(argv)
    profile = resolve_profile(args)
    return plan(profile, ["profit", "sft"]), profile.root / "slurm"


def test_scripts_parse_and_run_the_local_commands_apart_from_the_launcher(tmp_path, monkeypatch):
    local, folder = write(tmp_path, monkeypatch)
    scripts = sorted(folder.glob("*.sbatch"))
    assert [s.name.split("-", 1)[1].removesuffix(".sbatch") for s in scripts] == \
        [step.name.replace("/", "-") for step in local]  # one script per step, in plan order
    for step, script in zip(local, scripts):
        subprocess.run(["bash", "-n", str(script)], check=True)
        text = script.read_text()
        assert "# written by: profit-rl pipeline --launcher slurm --model Qwen3-0.6B-Base --num-gpus 8" in text
        node1 = on_node(step_command(script), SLURM_NODEID="1", MAIN_PROCESS_IP="gpu-node-a", MAIN_PROCESS_PORT="29500")
        if step.stage in ("sft", "grpo"):  # the launcher differs; the program and every argument after it do not
            program = step.argv.index("-m", 3)
            assert node1[node1.index("-m", 3):] == step.argv[program:]
            launch = node1[:node1.index("-m", 3)]
            assert launch[:5] == step.argv[:5]  # python -m accelerate.commands.launch --config_file <the profile's>
            assert launch[5:] == ["--num_processes", "16", "--num_machines", "2", "--machine_rank", "1",
                                  "--main_process_ip", "gpu-node-a", "--main_process_port", "29500"]
            assert "#SBATCH --nodes=2" in text and "#SBATCH --gpus-per-node=8" in text
            assert 'srun --nodes=2 --ntasks-per-node=1 bash -c "$STEP_COMMAND"' in text
            assert 'scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1' in text
        else:
            assert node1 == step.argv, step.name
            assert "#SBATCH --nodes=1" in text and "srun" not in text
            assert ("#SBATCH --gpus-per-node=8" in text) == (step.gpus == 8)


def test_grpo_in_server_mode_puts_vllm_on_its_own_gpu(tmp_path, monkeypatch):
    local, folder = write(tmp_path, monkeypatch, ["--vllm-server-gpus", "1"])
    grpo = next(s for s in local if s.name == "grpo/profit-init")
    script = next(folder.glob("*-grpo-profit-init.sbatch"))
    subprocess.run(["bash", "-n", str(script)], check=True)
    argv = on_node(step_command(script), SLURM_NODEID="0", MAIN_PROCESS_IP="gpu-node-a", MAIN_PROCESS_PORT="1")
    assert argv[argv.index("--num_processes") + 1] == "14"  # 7 training GPUs on each of 2 nodes
    assert argv[argv.index("-m", 3):] == grpo.argv[grpo.argv.index("-m", 3):] + [
        "--vllm_mode", "server", "--vllm_server_host", "gpu-node-a", "--vllm_server_port", "8000",
        "--vllm_server_timeout", "900"]
    text = script.read_text()
    assert "trl.scripts.vllm_serve --model " + str(grpo.argv[grpo.argv.index("--model_name_or_path") + 1]) in text
    # the node function (what srun runs on each node) splits the job's GPUs: the first to the server, on the head
    # node only, the rest to training (the training step sleeps, so the server prints before it is stopped)
    lines = text.splitlines()
    body = "\n".join(lines[lines.index("run_node() {"):lines.index("export -f run_node")])
    probe = (body + '\nVLLM_COMMAND="echo server on \\$CUDA_VISIBLE_DEVICES"; '
             'STEP_COMMAND="sleep 1; echo train on \\$CUDA_VISIBLE_DEVICES"; run_node; wait')
    for node, expected in (("0", ["server on 3", "train on 4,5,6,7,8,9,10,11"]), ("1", ["train on 4,5,6,7,8,9,10,11"])):
        out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True, env={
            **os.environ, "SLURM_NODEID": node, "CUDA_VISIBLE_DEVICES": "3,4,5,6,7,8,9,10,11"}).stdout
        assert sorted(out.splitlines()) == sorted(expected)


def test_fake_sbatch_records_order_and_dependencies_and_a_resubmission_skips_finished_steps(tmp_path, monkeypatch):
    fake = tmp_path / "bin"
    fake.mkdir()
    log = tmp_path / "sbatch.log"
    (fake / "sbatch").write_text(  # job ids 101, 102, ...; one log line per call: its arguments
        f'#!/bin/bash\necho "$*" >> {log}\necho $(( 100 + $(wc -l < {log}) ))\n')
    (fake / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")

    local, folder = write(tmp_path, monkeypatch, ["--submit"])
    calls = log.read_text().splitlines()
    jobs = {step.name: str(101 + i) for i, step in enumerate(local)}
    assert len(calls) == len(local)
    for step, call in zip(local, calls):
        args = call.split()
        assert args[-1].endswith(slurm.script_name(local.index(step) + 1, step))  # plan order
        deps = [a.removeprefix("--dependency=afterok:").split(":") for a in args if a.startswith("--dependency")]
        assert sorted(deps[0] if deps else []) == sorted(jobs[n] for n in step.waits_for), step.name
    assert json.loads((folder / "jobs.json").read_text())["jobs"] == jobs

    # data and the ProFit SFT finished (their scripts' mark-done); the resubmission leaves them out and no job waits
    # for them. A step it reads that reruns makes a finished step run again: after `data` reran, `sft/profit` would.
    for name in ("data", "sft/profit"):
        assert slurm._cli(["mark-done", "--plan", str(folder / "plan.json"), "--step", name]) == 0
        assert slurm._cli(["done", "--plan", str(folder / "plan.json"), "--step", name]) == 0
    log.unlink()
    write(tmp_path, monkeypatch, ["--submit"])
    calls = log.read_text().splitlines()
    submitted = [c.split()[-1] for c in calls]
    assert not any(s.endswith(("-data.sbatch", "-sft-profit.sbatch")) for s in submitted)
    assert len(calls) == len(local) - 2
    grpo = next(c for c in calls if c.endswith("-grpo-profit-init.sbatch"))
    dep = grpo.split()[1].removeprefix("--dependency=afterok:").split(":")
    assert len(dep) == 1  # only check/sft-band is still to run of what it waits for

    steps = slurm.load_plan(folder / "plan.json")
    (steps[0].output / ".done.json").unlink()  # data must run again: so must everything that reads it
    assert [s.name for s in slurm.to_submit(steps)] == [s.name for s in steps]


def test_a_script_runs_its_step_on_cpu_and_a_rerun_skips_it(tmp_path, monkeypatch):
    """The embedded default's data step (seconds), through its script as SLURM would run it: then done, skipped."""
    _, folder = write(tmp_path, monkeypatch, model_args=["--model", "embedded"])
    script = next(folder.glob("01-data.sbatch"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, cwd="/")
    assert first.returncode == 0, first.stderr[-3000:]
    marker = json.loads((tmp_path / "outputs" / "embedded" / "base" / ".done.json").read_text())
    assert marker["argv"][:3] == [sys.executable, "-m", "profit_rl.embedded.build"]
    again = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, cwd="/")
    assert again.returncode == 0 and "data: done, skipped" in again.stdout


def test_bad_resources_name_the_step(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for extra, words in ((["--slurm-resources", "eval=2x8"], "runs on one node"),
                         (["--slurm-resources", "eval=two"], "expected STEP_OR_STAGE=NODESxGPUS"),
                         (["--vllm-server-gpus", "8"], "training needs at least one")):
        code = pipeline_main(["--launcher", "slurm", *CLUSTER, "--output-root", str(tmp_path), *extra])
        assert code == 1 and words in capsys.readouterr().err, extra
    # a local run with a SLURM option stops before running anything
    assert pipeline_main(CLUSTER + ["--output-root", str(tmp_path), "--dry-run"]) == 1
    assert "--nodes: SLURM options; add --launcher slurm" in capsys.readouterr().err
