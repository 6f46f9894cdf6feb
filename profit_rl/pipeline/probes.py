"""`make probes`: where the paper predicts a gain for ProFit, measured with a seed spread and a verdict per claim, on
the embedded default or SmolLM2-135M (docs/probes.md).

    profit-rl probes --seeds 5 [--dry-run]           # = make probes [DRY_RUN=1]
    profit-rl probes --methods profit,sft --grpo-methods profit,sft --seeds 2 --eval-limit 50
    profit-rl probes --model smollm2-135m [--dry-run]   # = make probes-smollm2: profit-protected, sft x 3 seeds, no GRPO

Per seed, every method of `--methods` is fine-tuned from the shipped base model (the sweep's cells, study `probes`),
then every model is probed: the in-distribution test set (the sweep's own eval step), the longer-chain and
unseen-surface sets (one `profit-rl eval` of `embedded-long,embedded-surface`), retention (`embedded-retention`,
`--no-chat-template`), forgetting (`python -m profit_rl.embedded.probe_sets forgetting`, NLL and KL from the base
model) and the reference solutions' NLL on three of those sets (`python -m profit_rl.embedded.reference_nll`). GRPO runs from the methods of `--grpo-methods` only, and its final model is probed the same way. The base
model is probed once. The last step (`profit_rl.pipeline.probes_report`) writes `probes.md`, `probes.json` and
`report/probes.png`.

The steps are the sweep's and the pipeline's (`profit_rl.pipeline.plan`, run by `profit_rl.pipeline.scheduler`: markers,
resume, the CPU budget, the dry run); runs land in `outputs/<model>/sweep/probes/<method>/seed-<s>/`.

On `--model smollm2-135m` only two probes apply (`probes_report.PROBE_SETS`): in distribution (its task's test set)
and forgetting on held-out general text (`python -m profit_rl.data.heldout_text`: CPython's `pydoc_data.topics`, no
end token appended); the others are built from the embedded base model's pretraining corpus.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from pathlib import Path

from profit_rl.core.flags import positive_int
from profit_rl.core.errors import UsageError, command_errors
from profit_rl.core.flags import accept_snake_case
from profit_rl.core.folders import check_name

from .plan import check_steps, eval_step, heavy, sampling_args
from .probes_report import SMOLLM2
from .profiles import Profile, add_profile_args, resolve_profile
from .scheduler import run_grid
from .steps import Step
from .sweep import Cell, cell_steps, grpo_steps, split, sweep_root

STUDY = "probes"
METHODS = ("profit", "sft", "dft", "profit-protected")
# GRPO from every method over 5 seeds passes the hour on 2 cores (docs/probes.md, the budget): profit and sft only.
GRPO_METHODS = ("profit", "sft")
# model -> (methods, GRPO methods, seeds) by default. SmolLM2: ProFit with `\boxed` protected (without it ProFit never
# learns the answer format, docs/smollm2.md) against plain SFT, 3 seeds, no GRPO: ~1.5 h of SFT and probes on 2 cores.
DEFAULTS = {"embedded": (METHODS, GRPO_METHODS, 5), SMOLLM2: (("profit-protected", "sft"), (), 3)}
# SmolLM2's forgetting text: documents per model, and per forward pass (a batch's full-vocabulary log-probabilities,
# 49,152 per position, for two models)
SMOLLM2_DOCUMENTS, SMOLLM2_BATCH = 100, 2
# Rough CPU-s on one idle core of the probe steps of one model, beside its in-distribution eval (20-28): measured on
# the base model at load ~7 (93, 34 and 9 CPU-s) and scaled by 25/34, the retention eval's ratio to an idle
# in-distribution eval of the same size (docs/probes.md, the budget). Only the banner's ETA and the dry run use them.
# SmolLM2's forgetting: two 135M models over the 100 documents' 19,932 tokens, timed at 15 ms a token on 1 thread of a
# loaded machine (a random-weight model of its shape): ~75-150 s on 2 idle threads (docs/probes.md).
# The reference likelihood: ~8 CPU-s a model (imports 2, drawing the problems again 1, loading 2, scoring 600 problems 3).
PROBE_ETA = {"probes": 70, "retention": 25, "forgetting": 10, "reference_nll": 8, "forgetting_smollm2": 150}
STAGE_FOLDER = {"sft": "probes-sft", "grpo": "probes-grpo"}


def probe_data_dir(root: Path) -> Path:
    """Where the probe sets are written, under the sweep root."""
    return root / STUDY / "probe-data"


def base_folder(root: Path) -> Path:
    """Where the base model's evals and probes are written, under the sweep root."""
    return root / STUDY / "base-model"


def forgetting_step(profile: Profile, model: str, folder: Path, name: str, inputs: tuple[str, ...],
                    probes: Path, base_model: str) -> Step:
    """SmolLM2's one probe beside its in-distribution eval: NLL and KL from the base model on the general text."""
    return Step("eval", f"{name}/forgetting", [
        sys.executable, "-m", "profit_rl.embedded.probe_sets", "forgetting", "--model", model, "--base-model",
        base_model, "--data", str(probes / "general.jsonl"), "--output-dir", str(folder / "forgetting"),
        "--end-token", "none", "--batch-size", str(SMOLLM2_BATCH), "--threads", str(profile.cpus)],
        folder / "forgetting", inputs, eta_s=PROBE_ETA["forgetting_smollm2"], **heavy(profile))


def probe_steps(profile: Profile, model: str, folder: Path, name: str, inputs: tuple[str, ...],
                probes: Path, base_model: str) -> list[Step]:
    """The four probe steps of one model (`folder`: where they write): the two generation probes in one eval, the
    retention probe without the chat template, the NLL / KL on held-out pretraining text, and the reference solutions'
    NLL; SmolLM2's forgetting step alone."""
    if profile.name.startswith(SMOLLM2):
        return [forgetting_step(profile, model, folder, name, inputs, probes, base_model)]
    s = profile.sampling
    sampled = dataclasses.replace(profile, sampling=dataclasses.replace(s, data_dir=str(probes)))
    common = ["--k", str(s.k or 4), *sampling_args(sampled)]
    evals = [sys.executable, "-m", "profit_rl.evals.evaluate", "--model", model]
    return [
        Step("eval", f"{name}/probes", [*evals, "--benchmarks", "embedded-long,embedded-surface", "--output-dir",
                                        str(folder / "probes"), *common],
             folder / "probes", inputs, eta_s=PROBE_ETA["probes"], **heavy(profile)),
        Step("eval", f"{name}/retention", [*evals, "--benchmarks", "embedded-retention", "--no-chat-template",
                                           "--output-dir", str(folder / "retention"), *common],
             folder / "retention", inputs, eta_s=PROBE_ETA["retention"], **heavy(profile)),
        Step("eval", f"{name}/forgetting", [
            sys.executable, "-m", "profit_rl.embedded.probe_sets", "forgetting", "--model", model, "--base-model",
            base_model, "--data", str(probes / "forgetting.jsonl"), "--output-dir", str(folder / "forgetting")],
            folder / "forgetting", inputs, eta_s=PROBE_ETA["forgetting"], **heavy(profile)),
        Step("eval", f"{name}/reference-nll", [
            sys.executable, "-m", "profit_rl.embedded.reference_nll", "--model", model, "--probes-dir", str(probes),
            "--base-dir", str(Path(base_model).parent), "--output-dir", str(folder / "reference-nll")],
            folder / "reference-nll", inputs, eta_s=PROBE_ETA["reference_nll"], **heavy(profile)),
    ]


def plan(args, methods: tuple[str, ...], grpo_methods: tuple[str, ...], seeds: int) -> list[Step]:
    """The data and check steps once, the probe sets, the base model's probes, every cell's SFT (+ GRPO) and probes,
    then the report."""
    if args.model not in DEFAULTS:
        raise UsageError(f"--model {args.model}: the probes are sets of the embedded task, built for the embedded "
                         f"default's base model (--model embedded), or its task and general text on {SMOLLM2}")
    missing = [m for m in grpo_methods if m not in methods]
    if missing:
        raise UsageError(f"--grpo-methods {','.join(missing)}: not in --methods ({','.join(methods)})")
    root = sweep_root(args)
    profiles = {seed: resolve_profile(args, seed) for seed in range(seeds)}
    first = profiles[0]
    steps = list(first.data)
    data = tuple(step.name for step in first.data)
    checks = check_steps(first, data)
    steps += checks
    gate = tuple(c.name for c in checks)
    probes = probe_data_dir(root)
    if args.model == SMOLLM2:  # held-out general text, from the interpreter's own pydoc_data
        steps.append(Step("data", f"data/{STUDY}", [
            sys.executable, "-m", "profit_rl.data.heldout_text", "--out-dir", str(probes),
            "--n-documents", str(SMOLLM2_DOCUMENTS)], probes, (), eta_s=2))
    else:
        build_dir = Path(first.base_model).parent  # the embedded build: model/, build.json, test.jsonl
        steps.append(Step("data", f"data/{STUDY}", [
            sys.executable, "-m", "profit_rl.embedded.probe_sets", "build", "--base-dir", str(build_dir),
            "--out-dir", str(probes)], probes, data, eta_s=5))
    data_probes = (*data, f"data/{STUDY}")

    base = base_folder(root)
    steps.append(eval_step(first, f"eval/{STUDY}/base", first.base_model, base / "eval", data, gate))
    steps += probe_steps(first, first.base_model, base, f"eval/{STUDY}/base", data_probes, probes, first.base_model)
    for seed in range(seeds):
        for method in methods:
            cell = Cell(STUDY, method, seed)
            folder, name = cell.folder(root), f"{STUDY}/{cell.label}/seed-{seed}"
            steps += cell_steps(profiles[seed], cell, root, data, (), gate)
            steps += probe_steps(profiles[seed], str(folder / "sft"), folder / STAGE_FOLDER["sft"],
                                 f"eval/{name}/sft", (*data_probes, f"sft/{name}"), probes, first.base_model)
            if method in grpo_methods:
                steps += grpo_steps(profiles[seed], cell, root, data)
                steps += probe_steps(profiles[seed], str(folder / "grpo"), folder / STAGE_FOLDER["grpo"],
                                     f"eval/{name}/grpo", (*data_probes, f"grpo/{name}"), probes, first.base_model)
    steps.append(Step("report", f"{STUDY}/report", [
        sys.executable, "-m", "profit_rl.pipeline.probes_report", str(root / STUDY), "--methods", ",".join(methods),
        "--grpo-methods", ",".join(grpo_methods), "--seeds", str(seeds),
        *(["--model", args.model] if args.model != "embedded" else []),
    ], root / STUDY / "report", tuple(s.name for s in steps if s.stage == "eval"), eta_s=2))
    return steps


def parse_args(argv):
    """The `profit-rl probes` flags: the pipeline's profile flags, the SFT methods, the GRPO methods and the seeds."""
    p = argparse.ArgumentParser(prog="profit-rl probes", description=__doc__.split("\n\n")[0])
    add_profile_args(p)
    p.add_argument("--methods", default=None, help="SFT methods (default: embedded " + ",".join(METHODS)
                   + f"; {SMOLLM2} " + ",".join(DEFAULTS[SMOLLM2][0]) + ")")
    p.add_argument("--grpo-methods", default=None,
                   help="the methods GRPO runs from, a subset of --methods ('' or none for none; default: embedded "
                        + ",".join(GRPO_METHODS) + f"; {SMOLLM2} none)")
    p.add_argument("--seeds", type=positive_int, default=None, help=f"seeds 0..N-1 (default: embedded 5, {SMOLLM2} 3)")
    return accept_snake_case(p).parse_args(argv)


@command_errors("probes")
def main(argv: list[str] | None = None) -> int:
    """`profit-rl probes`: plan and run the probe study (each method and seed: SFT, GRPO, the probes, the report)
    under the pipeline's lock on its output folder, and return the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    args.seed = None  # resolve_profile's per-seed argument decides
    default_methods, default_grpo, default_seeds = DEFAULTS.get(args.model, DEFAULTS["embedded"])
    methods = split(args.methods) if args.methods is not None else default_methods
    grpo_methods = split(args.grpo_methods) if args.grpo_methods is not None else default_grpo
    grpo_methods = () if grpo_methods == ("none",) else grpo_methods
    args.seeds = args.seeds or default_seeds
    for method in methods:
        check_name(method, "--methods entry")  # each names a folder under sweep/probes/
    steps = plan(args, methods, grpo_methods, args.seeds)
    return run_grid(args, steps, "profit-rl probes " + shlex.join(argv), "probes",
                    sweep_root(args) / STUDY / "probes.md")


if __name__ == "__main__":
    sys.exit(main())
