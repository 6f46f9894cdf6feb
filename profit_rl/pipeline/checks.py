"""Whether a comparison can mean anything: the pipeline's check steps, and what the report says about them.

    python -m profit_rl.pipeline.checks base-model --build-info outputs/embedded/base/build.json --output-dir DIR
    python -m profit_rl.pipeline.checks sft-band --evals profit=DIR,sft=DIR --output-dir DIR

- `base-model`: the embedded base model passes its health check, greedy accuracy in its pretraining layout
  (`build.json`'s `base_plain_greedy_accuracy`). A base model below it writes fluent solutions with made-up amounts:
  it never learned to read the problem, and SFT or GRPO on it measure nothing.
- `sft-band`: at least one SFT model scores inside the band (Avg@k, on the average over benchmarks). When every SFT
  model sits at the floor or at the ceiling, no difference between them, or after GRPO, can show.

A failed check exits 1 with a message that says what failed and what to do, and the pipeline stops. With
`--allow-unhealthy` it exits 0, and the report's first line says that the comparison is not meaningful. Either way
the verdict goes to `<output-dir>/verdict.json`, which the report reads.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from profit_rl.core.state import read_json_state, write_json_atomic

VERDICT = "verdict.json"
# Between the base models that have not learned to copy the amounts and those that have, which the pretraining seeds
# split into two clusters (docs/results.md, "Pretraining seeds on this machine").
MIN_BASE_ACCURACY = 0.2
SFT_BAND = (0.10, 0.90)
ALLOW_FLAG = "--allow-unhealthy"


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check, as verdict.json records it: passed or not, the message, the figures it judged, and
    whether a failure was allowed to go on."""
    check: str
    passed: bool
    message: str
    figures: dict = field(default_factory=dict)
    allowed: bool = False  # failed, and the user chose to go on


def base_model(build_info: dict, min_accuracy: float = MIN_BASE_ACCURACY) -> Verdict:
    """The `base-model` check: the embedded base model's greedy accuracy in its pretraining layout (build.json) is at
    least `min_accuracy`; a failure says what to do, depending on whether the model is the shipped one."""
    accuracy = build_info["base_plain_greedy_accuracy"]
    n = build_info["config"]["check_problems"]
    figures = {"base_plain_greedy_accuracy": accuracy, "min_accuracy": min_accuracy, "problems": n}
    if accuracy >= min_accuracy:
        return Verdict("base-model", True, f"base model: {100 * accuracy:.0f}% greedy on {n} problems in its "
                       f"pretraining layout (needs >= {100 * min_accuracy:.0f}%)", figures)
    origin = build_info.get("origin", "pretrained")
    fix = ("its files are the shipped ones, so this machine computes differently from the one that shipped it: "
           "report it, with the manifest's `built_with`" if origin.startswith("shipped") else
           "it was pretrained here and missed the transition: use the shipped model (drop --task / --pretrain-steps), "
           "or pretrain longer or with another seed")
    return Verdict("base-model", False, (
        f"the embedded base model solves {100 * accuracy:.0f}% of {n} held-out problems greedily in its pretraining "
        f"layout (the health check needs >= {100 * min_accuracy:.0f}%): it has not learned to read the amounts from "
        f"the problem, so SFT and GRPO on it measure nothing. What to do: {fix}. To run anyway, pass {ALLOW_FLAG}; "
        "the report then says the comparison is not meaningful."), figures)


def sft_band(scores: dict[str, float], band: tuple[float, float] = SFT_BAND) -> Verdict:
    """`scores`: each SFT model's Avg@k (the average over benchmarks)."""
    low, high = band
    shown = ", ".join(f"{name} {100 * value:.1f}%" for name, value in scores.items())
    figures = {"avg_at_k": scores, "band": list(band)}
    if any(low <= value <= high for value in scores.values()):
        return Verdict("sft-band", True, f"SFT models' Avg@k: {shown} (band {100 * low:.0f}-{100 * high:.0f}%)",
                       figures)
    side = "below" if all(v < low for v in scores.values()) else "above" if all(v > high for v in scores.values()) \
        else "outside"
    return Verdict("sft-band", False, (
        f"every SFT model scores {side} the {100 * low:.0f}-{100 * high:.0f}% Avg@k band ({shown}): at the floor or "
        "the ceiling no difference between them, or after GRPO, can show. What to do: make the task harder or easier "
        f"(--task), or the SFT longer or shorter (its recipe). To run anyway, pass {ALLOW_FLAG}; the report then "
        "says the comparison is not meaningful."), figures)


def write_verdict(verdict: Verdict, output_dir: Path) -> Path:
    """Write the verdict to `output_dir/verdict.json` atomically; returns its path."""
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / VERDICT
    write_json_atomic(path, asdict(verdict), indent=1)
    return path


def failed(root: Path) -> list[Verdict]:
    """The failed checks of a run (`<root>/checks/*/verdict.json`), for the report's first line."""
    verdicts = [Verdict(**read_json_state(p, "check's verdict", f"Delete {p.parent} and rerun the pipeline to check "
                                          "again."))
                for p in sorted((root / "checks").glob(f"*/{VERDICT}"))]
    return [v for v in verdicts if not v.passed]


def sft_scores(evals: list[str]) -> dict[str, float]:
    """Each SFT model's Avg@k (averaged over benchmarks, or else its first benchmark's), from `NAME=EVAL_DIR` items."""
    from profit_rl.evals.results import read_run

    scores = {}
    for item in evals:
        name, sep, folder = item.partition("=")
        if not sep:
            raise SystemExit(f"--evals {item!r}: expected NAME=EVAL_DIR")
        run = read_run(Path(folder))
        average = run.get("average") or {}
        scores[name] = average["avg_at_k"] if "avg_at_k" in average else \
            next(iter(run["benchmarks"].values()))["avg_at_k"]
    return scores


def main(argv: list[str] | None = None) -> int:
    """`python -m profit_rl.pipeline.checks base-model | sft-band`: run one check and write its verdict; exits 1 on a
    failure unless `--allow-unhealthy`."""
    p = argparse.ArgumentParser(prog="python -m profit_rl.pipeline.checks", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="check", required=True)
    base = sub.add_parser("base-model", help="the embedded base model's health check")
    base.add_argument("--build-info", required=True, help="the build's build.json")
    base.add_argument("--min-accuracy", type=float, default=MIN_BASE_ACCURACY)
    band = sub.add_parser("sft-band", help="at least one SFT model inside the Avg@k band")
    band.add_argument("--evals", required=True, help="comma-separated NAME=EVAL_DIR, one per SFT model")
    band.add_argument("--band", default=f"{SFT_BAND[0]},{SFT_BAND[1]}", help="LOW,HIGH as fractions")
    for sp in (base, band):
        sp.add_argument("--output-dir", required=True, help=f"where {VERDICT} goes")
        sp.add_argument(ALLOW_FLAG, action="store_true", help="record a failure and exit 0")
    args = p.parse_args(argv)
    if args.check == "base-model":
        info = read_json_state(args.build_info, "base model's build record",
                               f"Delete {Path(args.build_info).parent} and rerun the pipeline to build it again.")
        verdict = base_model(info, args.min_accuracy)
    else:
        low, high = (float(x) for x in args.band.split(","))
        verdict = sft_band(sft_scores(args.evals.split(",")), (low, high))
    if not verdict.passed and args.allow_unhealthy:
        verdict = Verdict(verdict.check, False, verdict.message, verdict.figures, allowed=True)
    write_verdict(verdict, Path(args.output_dir))
    if verdict.passed:
        print(f"check passed: {verdict.message}")
        return 0
    print(f"check FAILED: {verdict.message}", file=sys.stderr)
    return 0 if verdict.allowed else 1


if __name__ == "__main__":
    sys.exit(main())
