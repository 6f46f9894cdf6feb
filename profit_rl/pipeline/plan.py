"""The step graph of one pipeline run: every stage's steps, their commands, and what each reads and writes.

`plan(profile, methods)`: data -> SFT per method -> eval -> GRPO per SFT checkpoint -> Pass@k curves -> report, each
step after the steps it reads, with the check steps (`profit_rl.pipeline.checks`) gating training and GRPO. The step
builders (`sft_step`, `eval_step`, `grpo_step`, `check_steps`, `curve_args`) also build the sweep's and the probes'
grids, so a step shared with them has the same command, and a rerun of either skips it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .checks import ALLOW_FLAG
from .profiles import SMOKE_ARGS, Profile, rel
from .steps import Step
from ..recipes import accelerate_config

METHOD_SELECTION = {"sft": "all"}  # method name -> ProFitConfig.selection, where they differ


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
