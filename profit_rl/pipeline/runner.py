"""`make sft-then-rl`: data -> SFT per method -> eval -> GRPO per SFT checkpoint -> Pass@k curves -> report.

    profit-rl pipeline                                    # the embedded default: offline, CPU
    profit-rl pipeline --model smollm2-135m               # SmolLM2-135M-Instruct, offline, LoRA, CPU
    profit-rl pipeline --model Qwen3-0.6B-Base --num-gpus 8 --dry-run
    profit-rl pipeline --model Qwen/Qwen3-0.6B-Base --data-dir /path/to/data        # hub id or local path + recipes

The run is a graph of `Step`s (`profit_rl.pipeline.steps`), each one shell command that names the steps it reads
(`profit_rl.pipeline.plan`). Steps with no path between them run at the same time within a budget of CPU slots
(`--cpus`, default: the machine's cores) and GPUs (`--num-gpus`; every training or sampling step holds all of them, so
GPU steps run one after another: `profit_rl.pipeline.scheduler`). `--dry-run` prints exactly the commands a real run
executes (the same `Step.argv`), in plan order, with what each reads and what runs beside it.

A step writes under `outputs/<model>/<method>/<stage>/`; when its command exits 0 the pipeline writes a `.done.json`
marker holding the command, a run id, and the run ids of the steps it read, so a rerun skips finished steps. A step
reruns, from an emptied folder, when its command changed, when a recipe or data file the command names changed (the
marker holds their sha256), or when a step it reads ran again since (its run id changed), and then so does
everything downstream of it; clocks play no part. A killed step reruns from its own
checkpoints (SFT and GRPO resume from their last complete checkpoint-N, and never train past max_steps) when its
command and inputs are those it started with (`.started.json`), from an emptied folder otherwise (docs/reruns.md).

Check steps (`profit_rl.pipeline.checks`) stop the run when the comparison could not mean anything: a built base model that
fails its health check (before anything trains on it), or every SFT model outside the Avg@k band (before GRPO).
`--allow-unhealthy` goes on, and the report's first line then says the comparison is not meaningful.

A profile says how one model runs (recipes, base model, data stage, sampling, CPU slots and GPUs per step): one
factory per profile in `profit_rl.pipeline.profiles.PROFILES`, plus the recipe-folder and hub-id fallbacks. To add a
model, write a factory that returns a `Profile` and register it there.

This module parses the command line and runs each seed's plan; the names that lived here before the split answer
through `__getattr__` with a DeprecationWarning (`profit_rl.deprecated.MOVED_NAMES`).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from contextlib import nullcontext
from pathlib import Path

from profit_rl.core.errors import command_errors
from profit_rl.core.flags import accept_snake_case, positive_int
from profit_rl.core.folders import check_name, inside, output_folder
from profit_rl.deprecated import module_getattr

# the modules, not their names: a name that left this module reaches `runner.NAME` only through `__getattr__`, with
# its deprecation warning
from . import plan as step_graph, profiles as model_profiles, scheduler


def parse_args(argv):
    """The `profit-rl pipeline` flags: the profile flags, the SFT methods, the seeds and the SLURM options."""
    p = argparse.ArgumentParser(prog="profit-rl pipeline", description=__doc__.split("\n\n")[0])
    model_profiles.add_profile_args(p)
    p.add_argument("--methods", default="profit sft", help="SFT methods (space or comma separated): recipe names "
                   "or selection rules (default: 'profit sft')")
    p.add_argument("--seed", type=int, default=None, help="default: 0 for the embedded model, the recipes' own otherwise")
    p.add_argument("--seeds", type=positive_int, default=None,
                   help="run seeds 0..N-1 and aggregate (make reproduce-embedded)")
    from .slurm import add_args as add_slurm_args

    add_slurm_args(p)
    return accept_snake_case(p).parse_args(argv)


@command_errors("pipeline")
def main(argv: list[str] | None = None) -> int:
    """`profit-rl pipeline`: plan and run each seed's pipeline (or write SLURM scripts) under a lock on its output
    folder, then print the report's path (the seed study's with `--seeds`); returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    methods = [m for m in args.methods.replace(",", " ").split() if m]
    seeds = list(range(args.seeds)) if args.seeds else [args.seed]
    roots = {}
    for method in methods:
        check_name(method, "--methods entry")  # each names a folder under outputs/<model>/
    profiles = [model_profiles.resolve_profile(args, seed) for seed in seeds]
    for profile in profiles:
        inside(args.output_root, profile.root, f"--model {args.model}: the output folder")
    command = "profit-rl pipeline " + shlex.join(argv)
    from .slurm import main as slurm_main, refuse_slurm_options

    if args.launcher == "slurm":  # the same plans as sbatch scripts (profit_rl.pipeline.slurm)
        return slurm_main(args, methods, profiles, command)
    refuse_slurm_options(args)
    for profile in profiles:
        if args.seeds:
            lead = "#" if args.dry_run else "\n==="
            print(f"{lead} seed {profile.seed} of 0-{args.seeds - 1}: {profile.root}", flush=True)
        # one pipeline per outputs/<model>: a second one stops, naming the first, instead of racing it step by step
        with nullcontext() if args.dry_run else output_folder(profile.root, command):
            scheduler.run(step_graph.plan(profile, methods), cpus=args.cpus, gpus=profile.num_gpus,
                          dry_run=args.dry_run, cpu_threads=not profile.num_gpus)
        roots[profile.seed] = profile.root
    if args.seeds and not args.dry_run:
        from .report import aggregate_seeds

        study = Path(args.output_root) / args.model / "seeds.md"
        print(f"seed study: {aggregate_seeds(roots, methods, study)}")
    elif not args.dry_run:
        print(f"report: {next(iter(roots.values())) / 'report.md'}")
    return 0


__getattr__ = module_getattr(__name__)

if __name__ == "__main__":
    sys.exit(main())
