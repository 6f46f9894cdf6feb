"""`profit-rl pipeline --launcher slurm`: the pipeline's steps as sbatch jobs, chained with `--dependency=afterok`.

    profit-rl pipeline --launcher slurm --model Qwen3-0.6B-Base --num-gpus 8 --nodes 2            # write the scripts
    profit-rl pipeline --launcher slurm --model Qwen3-0.6B-Base --num-gpus 8 --nodes 2 --submit   # and sbatch them

SLURM is the scheduler: this writes one sbatch script per step of the same plan the local runner runs
(`profit_rl.pipeline.plan`), into `<output root>/<model>/slurm/`, and with `--submit` submits them in plan order, each
with `--dependency=afterok:<the job ids of the steps it waits for>`. A step's command is the local one apart from its
launcher: a training step (SFT, GRPO) on N nodes runs `accelerate launch --num_machines N --machine_rank
$SLURM_NODEID --main_process_ip <head node>` through `srun`, one task per node. Every other step runs on one node,
exactly as locally.

Done markers are the local runner's (`<step output>/.done.json`, `Step.done`, `scheduler.skippable`): a step whose
marker holds its command, with nothing it reads finished after it, is not submitted, and each script checks its marker
again when it starts (`python -m profit_rl.pipeline.slurm done`) and writes it when its command exits 0 (`mark-done`),
so a resubmission continues where the last one stopped. `plan.json` beside the scripts holds the steps for both.

GRPO with `--vllm-server-gpus K` runs TRL's vLLM server (`trl vllm-serve`) on the first K GPUs of the head node and
trains on the other GPUs of every node (`--vllm_mode server`); without it, vLLM runs colocated as the recipe says.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from profit_rl.core.flags import positive_int
from profit_rl.core.io import InputError
from profit_rl.core.state import read_json_state, write_json_atomic, write_text_atomic

from . import scheduler
from .plan import plan
from .profiles import CODE_ROOT
from .steps import DONE, Step

LAUNCH_MODULE = "accelerate.commands.launch"
VLLM_PORT = 8000
TRAINING_STAGES = ("sft", "grpo")  # the steps that `accelerate launch` starts, and that may span nodes


@dataclass(frozen=True)
class Resources:
    """What one step's job asks SLURM for: nodes, and GPUs on each (0: a CPU-only job)."""

    nodes: int = 1
    gpus_per_node: int = 0


def add_args(p: argparse.ArgumentParser) -> None:
    """`profit-rl pipeline`'s SLURM options (the runner adds them to its parser)."""
    g = p.add_argument_group("SLURM (--launcher slurm)")
    g.add_argument("--launcher", choices=("local", "slurm"), default="local",
                   help="local: run the steps here (default); slurm: write one sbatch script per step")
    g.add_argument("--nodes", type=positive_int, default=1,
                   help="nodes of each training step (SFT, GRPO); --num-gpus is GPUs per node (default 1)")
    g.add_argument("--slurm-resources", action="append", default=[], metavar="STEP_OR_STAGE=NODESxGPUS",
                   help="one step's (e.g. grpo/profit-init) or one stage's (e.g. eval) nodes and GPUs per node, "
                        "e.g. eval=1x4 (repeatable; a step's own entry wins over its stage's)")
    g.add_argument("--vllm-server-gpus", type=int, default=0, metavar="K",
                   help="GRPO: TRL's vLLM server on K GPUs of the head node, training on the rest (default 0: "
                        "vLLM colocated, as the recipe says)")
    g.add_argument("--sbatch-arg", action="append", default=[], metavar="ARG",
                   help="an extra #SBATCH line for every script, e.g. --sbatch-arg=--partition=gpu (repeatable)")
    g.add_argument("--main-process-port", type=int, default=29500, help="accelerate's rendezvous port on the head node")
    g.add_argument("--submit", action="store_true", help="sbatch the written scripts (default: only write them; "
                   "--dry-run writes them and submits nothing)")


def refuse_slurm_options(args) -> None:
    """A local run given SLURM-only options stops instead of running without them."""
    given = [flag for flag, value, default in (
        ("--nodes", args.nodes, 1), ("--slurm-resources", args.slurm_resources, []),
        ("--vllm-server-gpus", args.vllm_server_gpus, 0), ("--sbatch-arg", args.sbatch_arg, []),
        ("--main-process-port", args.main_process_port, 29500), ("--submit", args.submit, False)) if value != default]
    if given:
        raise InputError(f"{', '.join(given)}: SLURM options; add --launcher slurm (make: LAUNCHER=slurm)")


# ----------------------------------------------------------------------------------------------------------- commands


def split_launcher(argv: list[str]) -> tuple[list[str], list[str]] | None:
    """(`accelerate launch` and its options, `-m module ...`) of a training step's argv; None for any other step."""
    if len(argv) < 3 or argv[1:3] != ["-m", LAUNCH_MODULE]:
        return None
    module = argv.index("-m", 3)
    return argv[:module], argv[module:]


def launcher_option(launch: list[str], flag: str) -> str | None:
    """The value of `flag` in a launcher's argv, or None when it is absent."""
    return launch[launch.index(flag) + 1] if flag in launch else None


def resources_for(step: Step, args) -> Resources:
    """The step's nodes and GPUs per node: --slurm-resources for it or its stage, else --nodes for training steps
    and one node for the rest, with the GPUs the local plan gives it."""
    wanted = dict(parse_resource(item) for item in args.slurm_resources)
    default = Resources(args.nodes if step.stage in TRAINING_STAGES and step.gpus else 1, step.gpus)
    res = wanted.get(step.name) or wanted.get(step.stage) or default
    if res.nodes > 1 and split_launcher(step.argv) is None:
        raise InputError(f"--slurm-resources: step {step.name!r} runs on one node (only `accelerate launch` steps "
                         f"span nodes: {', '.join(TRAINING_STAGES)} on GPUs)")
    if res.gpus_per_node != step.gpus and (step.gpus == 0 or res.gpus_per_node == 0):
        raise InputError(f"--slurm-resources: step {step.name!r} runs on {'GPUs' if step.gpus else 'CPU'} in this "
                         f"plan; set --num-gpus to change that, then its GPUs per node here")
    return res


def parse_resource(item: str) -> tuple[str, Resources]:
    """A `--slurm-resources` item `STEP_OR_STAGE=NODESxGPUS` as (name, Resources); anything else is an InputError."""
    match = re.fullmatch(r"([\w./-]+)=(\d+)x(\d+)", item)
    if not match or int(match[2]) < 1:
        raise InputError(f"--slurm-resources {item!r}: expected STEP_OR_STAGE=NODESxGPUS, e.g. eval=1x4")
    return match[1], Resources(int(match[2]), int(match[3]))


def slurm_argv(step: Step, res: Resources, args) -> list[str]:
    """The step's command on SLURM: the local argv with its launcher for `res` (shell variables, set in the
    script, name the head node and each node's rank). Steps without a launcher keep their argv."""
    parts = split_launcher(step.argv)
    if parts is None:
        # vLLM sampling on other GPUs than the plan's (--slurm-resources): one replica per GPU of the job. The curves
        # figure step names the eval settings too (the cached samples' key) and holds no GPU: it keeps them.
        if "--data-parallel-size" in step.argv and step.gpus and res.gpus_per_node != step.gpus:
            i = step.argv.index("--data-parallel-size") + 1
            return step.argv[:i] + [str(res.gpus_per_node)] + step.argv[i + 1:]
        return list(step.argv)
    launch, program = parts
    server = args.vllm_server_gpus if step.stage == "grpo" else 0
    if server < 0 or server and server >= res.gpus_per_node:
        raise InputError(f"--vllm-server-gpus {server}: step {step.name!r} has {res.gpus_per_node} GPUs per node, "
                         "and training needs at least one")
    processes = res.nodes * (res.gpus_per_node - server)
    new = [*launch[:3], "--config_file", launcher_option(launch, "--config_file"), "--num_processes", str(processes)]
    if res.nodes > 1:
        new += ["--num_machines", str(res.nodes), "--machine_rank", "$SLURM_NODEID",
                "--main_process_ip", "$MAIN_PROCESS_IP", "--main_process_port", "$MAIN_PROCESS_PORT"]
    if server:
        # TRL's default wait for the server (240 s) is short for a large model's first load
        program = program + ["--vllm_mode", "server", "--vllm_server_host", "$MAIN_PROCESS_IP",
                             "--vllm_server_port", str(VLLM_PORT), "--vllm_server_timeout", "900"]
    return new + program


def shell_command(argv: list[str]) -> str:
    """`argv` as one shell line; `$NAME` items stay shell variables (double-quoted), everything else is quoted."""
    return " ".join(f'"{a}"' if re.fullmatch(r"\$[A-Z_]+", a) else shlex.quote(a) for a in argv)


def vllm_server_argv(step: Step, gpus: int) -> list[str]:
    """TRL's vLLM server for a GRPO step, serving the model it starts from (its --model_name_or_path)."""
    model = step.argv[step.argv.index("--model_name_or_path") + 1]
    return [sys.executable, "-m", "trl.scripts.vllm_serve", "--model", model, "--data_parallel_size", str(gpus),
            "--port", str(VLLM_PORT)]


# ------------------------------------------------------------------------------------------------------------ scripts


def script_name(index: int, step: Step) -> str:
    """The file name of a step's sbatch script: its position in the plan, then its name."""
    return f"{index:02d}-{step.name.replace('/', '-')}.sbatch"


def write_script(path: Path, index: int, total: int, step: Step, res: Resources, args, plan_file: Path,
                 command_line: str) -> None:
    """Write one step's executable sbatch script: it skips a step already done, runs the step's command on its nodes
    (with a vLLM server on the head node's first GPUs for a GRPO step that uses one), then marks the step done."""
    server = args.vllm_server_gpus if step.stage == "grpo" and split_launcher(step.argv) else 0
    py = shlex.quote(sys.executable)
    done_args = f'--plan "$PLAN" --step {shlex.quote(step.name)}'
    lines = [
        "#!/bin/bash",
        f"# profit-rl pipeline step {index}/{total}: {step.name} ({step.stage}) -> {step.output}",
        f"# reads: {', '.join(step.inputs) or '-'}; after: {', '.join(step.after) or '-'}",
        f"# written by: {command_line}",
        f"#SBATCH --job-name=profit-rl-{step.name.replace('/', '-')}",
        f"#SBATCH --nodes={res.nodes}",
        "#SBATCH --ntasks-per-node=1",
        *([f"#SBATCH --gpus-per-node={res.gpus_per_node}"] if res.gpus_per_node else []),
        f"#SBATCH --output={path.parent.resolve() / 'logs'}/%x-%j.out",
        "#SBATCH --kill-on-invalid-dep=yes",  # a failed step cancels what waits for it instead of leaving it pending
        *[f"#SBATCH {arg}" for arg in args.sbatch_arg],
        "set -euo pipefail",
        f"cd {shlex.quote(str(Path.cwd()))}",  # the commands' relative paths start where the pipeline was written
        "export PYTHONUNBUFFERED=1",
    ]
    if (CODE_ROOT / "pyproject.toml").is_file():  # a checkout: the steps import this code without an install
        lines.append(f'export PYTHONPATH={shlex.quote(str(CODE_ROOT))}"${{PYTHONPATH:+:$PYTHONPATH}}"')
    lines += [
        f"PLAN={shlex.quote(str(plan_file.resolve()))}",
        f"if {py} -m profit_rl.pipeline.slurm done {done_args}; then",
        f"    echo {shlex.quote(f'{step.name}: done, skipped ({step.output}/{DONE})')}",
        "    exit 0",
        "fi",
    ]
    if res.nodes > 1 or server:  # the head node: accelerate's rendezvous and the vLLM server
        lines += ['export MAIN_PROCESS_IP="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)"',
                  f"export MAIN_PROCESS_PORT={args.main_process_port}"]
    lines += [
        f"export STEP_COMMAND={shlex.quote(shell_command(slurm_argv(step, res, args)))}",
        "start=$(date +%s)",
    ]
    if server:
        lines += [
            f"export VLLM_COMMAND={shlex.quote(shell_command(vllm_server_argv(step, server)))}",
            "# each node: its first GPUs to the vLLM server (head node only), the rest to training",
            "run_node() {",
            f'    local all; IFS=, read -ra all <<< "${{CUDA_VISIBLE_DEVICES:-{",".join(map(str, range(res.gpus_per_node)))}}}"',
            f'    local server_gpus train_gpus; server_gpus=$(IFS=,; echo "${{all[*]:0:{server}}}"); '
            f'train_gpus=$(IFS=,; echo "${{all[*]:{server}}}")',
            '    if [ "$SLURM_NODEID" = 0 ]; then CUDA_VISIBLE_DEVICES=$server_gpus bash -c "exec $VLLM_COMMAND" & '
            'local server=$!; fi',
            '    CUDA_VISIBLE_DEVICES=$train_gpus bash -c "$STEP_COMMAND"; local status=$?',
            '    if [ -n "${server:-}" ]; then kill "$server" 2>/dev/null || true; fi',
            "    return $status",
            "}",
            "export -f run_node",
            f"srun --nodes={res.nodes} --ntasks-per-node=1 bash -c run_node",
        ]
    elif res.nodes > 1:
        lines.append(f'srun --nodes={res.nodes} --ntasks-per-node=1 bash -c "$STEP_COMMAND"')
    else:
        lines.append('bash -c "$STEP_COMMAND"')
    lines.append(f'{py} -m profit_rl.pipeline.slurm mark-done {done_args} --seconds $(( $(date +%s) - start ))')
    write_text_atomic(path, "\n".join(lines) + "\n")
    path.chmod(0o755)


def slurm_steps(steps: list[Step], args) -> list[tuple[Step, Resources]]:
    """Each step with its SLURM command (what its done marker holds) and resources."""
    out = []
    for step in steps:
        res = resources_for(step, args)
        out.append((dataclasses.replace(step, argv=slurm_argv(step, res, args), gpus=res.gpus_per_node), res))
    return out


def save_plan(path: Path, steps: list[Step]) -> None:
    """Write the steps to the plan file that the scripts' `done` and `mark-done` read, atomically."""
    write_json_atomic(path, [{"stage": s.stage, "name": s.name, "argv": s.argv, "output": str(s.output),
                              "inputs": list(s.inputs), "after": list(s.after)} for s in steps])


def load_plan(path: Path) -> list[Step]:
    """The steps of a plan file that `save_plan` wrote."""
    rows = read_json_state(path, "the SLURM plan", "rewrite it: rerun the `profit-rl pipeline --launcher slurm` command")
    return [Step(r["stage"], r["name"], r["argv"], Path(r["output"]), tuple(r["inputs"]), tuple(r["after"]))
            for r in rows]


def to_submit(steps: list[Step]) -> list[Step]:
    """The steps a submission runs: those not done, and those reading a step that runs again (its output changes)."""
    chosen: set[str] = set()
    for step in steps:
        if not scheduler.skippable(step, steps) or any(name in chosen for name in step.inputs):
            chosen.add(step.name)
    return [s for s in steps if s.name in chosen]


def submit(scripts: dict[str, Path], steps: list[Step], sbatch: str = "sbatch") -> dict[str, str]:
    """sbatch each script in plan order, after the submitted steps it waits for; returns step name -> job id."""
    jobs: dict[str, str] = {}
    for step in steps:
        needs = [jobs[name] for name in step.waits_for if name in jobs]
        cmd = [sbatch, "--parsable", *([f"--dependency=afterok:{':'.join(needs)}"] if needs else []),
               str(scripts[step.name])]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        job = proc.stdout.strip().split(";")[0]
        if proc.returncode != 0 or not job.isdigit():
            raise InputError(f"`{shlex.join(cmd)}` failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()}"
                             + (f"\nalready submitted, cancel with: scancel {' '.join(jobs.values())}" if jobs else ""))
        jobs[step.name] = job
        print(f"submitted {step.name}: job {job}" + (f" after {','.join(needs)}" if needs else ""), flush=True)
    return jobs


def write_pipeline(steps: list[Step], args, folder: Path, command_line: str) -> tuple[list[Step], dict[str, Path]]:
    """Write plan.json and one script per step under `folder`; returns (the SLURM steps, step name -> script)."""
    scheduler.check_graph(steps)
    pairs = slurm_steps(steps, args)
    plan_file = folder / "plan.json"
    save_plan(plan_file, [s for s, _ in pairs])
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    scripts = {}
    for index, (step, res) in enumerate(pairs, 1):
        path = scripts[step.name] = folder / script_name(index, step)
        write_script(path, index, len(pairs), next(s for s in steps if s.name == step.name), res, args, plan_file,
                     command_line)
    return [s for s, _ in pairs], scripts


def main(args, methods: list[str], profiles: list, command_line: str) -> int:
    """The runner's `--launcher slurm` branch: write (and with --submit, submit) every profile's scripts. A user error
    (an InputError) reaches the runner's `command_errors` as every command's does."""
    for profile in profiles:
        folder = profile.root / "slurm"
        steps, scripts = write_pipeline(plan(profile, methods), args, folder, command_line)
        todo = to_submit(steps)
        print(f"# {len(scripts)} sbatch scripts in {folder}; {len(todo)} to run, "
              f"{len(steps) - len(todo)} done (skipped)")
        if args.submit and args.dry_run:
            print("# --dry-run: nothing submitted")
        if args.submit and not args.dry_run:
            jobs = submit(scripts, todo)
            write_json_atomic(folder / "jobs.json", {"submitted": time.strftime("%Y-%m-%d %H:%M:%S"), "jobs": jobs})
        else:
            for step in todo:
                needs = [f"${{{shell_var(n)}}}" for n in step.waits_for if n in {s.name for s in todo}]
                dep = f"--dependency=afterok:{':'.join(needs)} " if needs else ""
                print(f"{shell_var(step.name)}=$(sbatch --parsable {dep}{scripts[step.name]})")
    return 0


def shell_var(name: str) -> str:
    """The shell variable that holds a step's SLURM job id in the submit script."""
    return "JOB_" + re.sub(r"\W", "_", name).upper()


# ------------------------------------------------------------------------------------------- the scripts' helpers


def _cli(argv: list[str] | None = None) -> int:
    """`done`: exit 0 when the step is finished and nothing it reads changed since; else prepare its folder as the
    local runner does (emptied when it holds a run of another command or other inputs, then a start record) and
    exit 1. `mark-done`: the done marker, with the run ids of the steps it read."""
    p = argparse.ArgumentParser(prog="python -m profit_rl.pipeline.slurm")
    p.add_argument("action", choices=("done", "mark-done"))
    p.add_argument("--plan", required=True, type=Path)
    p.add_argument("--step", required=True)
    p.add_argument("--seconds", type=float, default=0.0)
    a = p.parse_args(argv)
    steps = load_plan(a.plan)
    step = next((s for s in steps if s.name == a.step), None)
    if step is None:
        raise SystemExit(f"{a.plan}: no step named {a.step!r}")
    if a.action == "done":
        if scheduler.skippable(step, steps):
            return 0
        reason = scheduler.stale_reason(step, steps)
        if reason:
            print(f"{step.name}: {reason}: emptying {step.output} and running it again", file=sys.stderr)
            shutil.rmtree(step.output, ignore_errors=True)
        step.mark_started(scheduler.input_ids(step, steps))
        return 1
    step.mark_done(a.seconds, None, scheduler.input_ids(step, steps))
    return 0


if __name__ == "__main__":
    sys.exit(_cli())
