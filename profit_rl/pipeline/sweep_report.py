"""The sweep's last step: `sweep/ablations.md`, `ablations.json` and one figure per study, shaped like the paper's.

    python -m profit_rl.pipeline.sweep_report outputs/embedded/sweep --studies tau,epochs --seeds 3 ...   (the grid's flags)

It only reads what the sweep's eval steps wrote, so it can be rerun at any time. Every point is the mean over seeds
± their sample standard deviation (one seed: no spread, and the table says so in its first line). Differences
against `sft` are paired by seed (and by tau, epoch or rank where the study varies it).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from profit_rl.core.errors import command_errors
from profit_rl.core.io import InputError
from profit_rl.evals.results import read_run
from profit_rl.core.state import write_text_atomic

from .report import SMOKE_BANNER
from .sweep import BASELINE, Cell, Grid, add_grid_args, grid_from_args

X_NAME = {"tau": "τ", "epochs": "epoch", "rank": "LoRA rank"}
METRICS = ("avg_at_k", "pass_at_k")


class MissingResultError(InputError, FileNotFoundError):
    """A cell of the grid has no eval result: the table would silently leave it out."""


def benchmark_result(run_dir: Path) -> dict:
    """The one benchmark's result of an eval run (the sweep evaluates one benchmark, the profile's curve benchmark)."""
    try:
        benchmarks = read_run(run_dir)["benchmarks"]
    except FileNotFoundError as err:
        raise MissingResultError(f"{run_dir}: no eval result ({err}); rerun the sweep to finish it") from err
    if len(benchmarks) != 1:
        raise InputError(f"{run_dir}: the sweep reads one benchmark per eval, found {sorted(benchmarks)}")
    return next(iter(benchmarks.values()))


def point(cell: Cell, stage: str, x, result: dict) -> dict:
    """One point of the report: the cell, stage and x (tau, epoch or rank) with the result's k, problem count and
    metrics."""
    return {"study": cell.study, "method": cell.method, "seed": cell.seed, "stage": stage, "x": x,
            "k": result["k"], "n_problems": result["n_problems"],
            **{m: result[m] for m in METRICS}}


def checkpoint_epoch(checkpoint: Path) -> int:
    """The epoch a checkpoint-N ends, from its trainer_state.json (an epoch-end save holds a whole number)."""
    state = checkpoint / "trainer_state.json"
    if not state.is_file():
        raise MissingResultError(f"{state} not found: the epochs study needs each epoch's checkpoint")
    epoch = json.loads(state.read_text())["epoch"]
    if abs(epoch - round(epoch)) > 1e-6:
        raise InputError(f"{state}: epoch {epoch} is not an epoch end (save_strategy must be 'epoch')")
    return int(round(epoch))


def epoch_points(cell: Cell, folder: Path) -> list[dict]:
    """One point per epoch of an epochs-study cell, read from its curves.csv; every epoch 1..N must be there."""
    curves = folder / "eval" / "curves.csv"
    if not curves.is_file():
        raise MissingResultError(f"{curves} not found; rerun the sweep to finish it")
    points = []
    for row in csv.DictReader(curves.open()):
        result = {"k": int(row["k"]), "n_problems": int(row["n_problems"]),
                  **{m: float(row[m]) for m in METRICS}}
        points.append(point(cell, "sft", checkpoint_epoch(Path(row["checkpoint"])), result))
    epochs = sorted(p["x"] for p in points)
    if epochs != list(range(1, cell.epochs + 1)):
        raise InputError(f"{curves}: evaluated epochs {epochs}, expected 1..{cell.epochs}")
    return points


def collect(root: Path, grid: Grid) -> list[dict]:
    """One point per cell, stage and x (tau, epoch or rank; None where the cell does not vary it)."""
    points = []
    for cell in grid.cells():
        folder = cell.folder(root)
        if cell.study == "epochs":
            points += epoch_points(cell, folder)
        else:
            x = cell.rank if cell.study == "rank" else cell.tau
            points.append(point(cell, "sft", x, benchmark_result(folder / "eval")))
        if grid.grpo:
            x = cell.epochs if cell.study == "epochs" else (cell.rank if cell.study == "rank" else cell.tau)
            points.append(point(cell, "grpo", x, benchmark_result(folder / "eval-grpo")))
    return points


def spread(values: list[float]) -> dict:
    """The mean, sample std (NaN for one value), count and values of one point's seeds."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else math.nan,
            "n": len(values), "values": values}


def summarize(points: list[dict]) -> list[dict]:
    """Mean ± sample std over seeds of each (study, stage, method, x)."""
    groups = defaultdict(list)
    for p in points:
        groups[p["study"], p["stage"], p["method"], p["x"]].append(p)
    return [{"study": study, "stage": stage, "method": method, "x": x,
             **{m: spread([p[m] for p in sorted(group, key=lambda p: p["seed"])]) for m in METRICS}}
            for (study, stage, method, x), group in groups.items()]


def differences(points: list[dict], baseline: str = BASELINE) -> list[dict]:
    """Each method − the baseline on the same seed: at the same x where the baseline varies it too (epochs, rank),
    else against the baseline's one run (the tau study's sft)."""
    base = {(p["study"], p["stage"], p["seed"], p["x"]): p for p in points if p["method"] == baseline}
    groups = defaultdict(list)
    for p in points:
        if p["method"] == baseline:
            continue
        key = (p["study"], p["stage"], p["seed"])
        other = base.get((*key, p["x"])) or base.get((*key, None))
        if other is not None:
            groups[p["study"], p["stage"], p["method"], p["x"]].append(
                {m: p[m] - other[m] for m in METRICS})
    return [{"study": study, "stage": stage, "method": method, "x": x, "baseline": baseline,
             **{m: spread([d[m] for d in group]) for m in METRICS}}
            for (study, stage, method, x), group in groups.items()]


def fmt(s: dict, signed: bool = False) -> str:
    """A spread in percent for the tables: `mean ± std`, or the mean alone for one seed."""
    mean = f"{100 * s['mean']:+.1f}" if signed else f"{100 * s['mean']:.1f}"
    return mean if math.isnan(s["std"]) else f"{mean} ± {100 * s['std']:.1f}"


def x_label(x) -> str:
    """An x value as the tables and figures show it; `-` where the cell does not vary it."""
    return "-" if x is None else f"{x:g}"


def study_table(rows: list[dict], study: str, stage: str, metric: str, signed: bool = False) -> list[str]:
    """The markdown lines of one study's table at one stage: a row per method, a column per x (and `(one run)` for
    methods that do not vary it); empty when the study has no points there."""
    mine = [r for r in rows if r["study"] == study and r["stage"] == stage]
    if not mine:
        return []
    xs = sorted({r["x"] for r in mine if r["x"] is not None})
    methods = list(dict.fromkeys(r["method"] for r in mine))
    head = ["method", *(f"{X_NAME[study]} {x_label(x)}" for x in xs)] if xs else ["method"]
    if any(r["x"] is None for r in mine):
        head.append("(one run)")
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    cells = {(r["method"], r["x"]): r[metric] for r in mine}
    for method in methods:
        row = [method] + [fmt(cells[method, x], signed) if (method, x) in cells else "" for x in xs]
        if any(r["x"] is None for r in mine):
            row.append(fmt(cells[method, None], signed) if (method, None) in cells else "")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def markdown(points: list[dict], grid: Grid, figures: dict[str, str], smoke: bool = False) -> str:
    """ablations.md: the smoke and one-seed warnings first where they apply, then each study's figure, Avg@k table,
    paired differences against the baseline and Pass@k table."""
    summary, diffs = summarize(points), differences(points)
    k, n = points[0]["k"], points[0]["n_problems"]
    single = sum(r["avg_at_k"]["n"] < 2 for r in summary)
    lines = [SMOKE_BANNER, ""] if smoke else []  # a smoke grid's numbers mean nothing: its first line says so
    if single:  # the first line: a point without a spread cannot be told from seed noise
        lines += [f"**{single} of {len(summary)} points rest on one seed: they have no spread, and no difference "
                  "there can be told from seed noise.**", ""]
    lines += ["# Ablations", "",
              f"Avg@{k} in % on {n} problems, mean ± sample std over {grid.seeds} seed(s) (SFT, sampling and GRPO "
              f"seeds 0..{grid.seeds - 1}). Differences are paired by seed against `{BASELINE}`.", ""]
    for study in grid.studies:
        for stage in ("sft", "grpo") if grid.grpo else ("sft",):
            title = {"tau": "Threshold sweep (Fig. 5)", "epochs": "Epochs (Sec. 5)", "rank": "LoRA rank"}[study]
            lines += [f"## {title}" + (" after GRPO" if stage == "grpo" else ""), ""]
            if stage == "sft" and study in figures:
                lines += [f"![{title}]({figures[study]})", ""]
            lines += study_table(summary, study, stage, "avg_at_k") + [""]
            table = study_table(diffs, study, stage, "avg_at_k", signed=True)
            if table:
                lines += [f"Difference against `{BASELINE}` (points, paired by seed):", ""] + table + [""]
            lines += [f"Pass@{k}:", ""] + study_table(summary, study, stage, "pass_at_k") + [""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------------ figures

LABELS = {"profit": "p > τ (profit)", "inverse": "p ≤ τ (inverse)", "sft": "SFT"}


def plot_study(summary: list[dict], study: str, k: int, path: Path) -> None:
    """Plot one study's Avg@k after SFT against its x (mean ± std over seeds per method; methods run once drawn as
    bands) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in summary if r["study"] == study and r["stage"] == "sft"]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    varied = [m for m in dict.fromkeys(r["method"] for r in rows) if any(r["x"] is not None for r in rows
                                                                         if r["method"] == m)]
    xs = sorted({r["x"] for r in rows if r["x"] is not None})
    for method in varied:
        pts = sorted((r for r in rows if r["method"] == method and r["x"] is not None), key=lambda r: r["x"])
        std = [0.0 if math.isnan(r["avg_at_k"]["std"]) else 100 * r["avg_at_k"]["std"] for r in pts]
        ax.errorbar([r["x"] for r in pts], [100 * r["avg_at_k"]["mean"] for r in pts], yerr=std, marker="o",
                    capsize=3, label=LABELS.get(method, method))
    # methods with one run across the x axis (the tau study's sft, dft, entropy, random): a band at mean ± std
    for i, r in enumerate(r for r in rows if r["x"] is None):
        mean, std = 100 * r["avg_at_k"]["mean"], r["avg_at_k"]["std"]
        baseline = r["method"] == BASELINE
        color = "grey" if baseline else f"C{len(varied) + i}"
        ax.axhline(mean, color=color, linestyle="-" if baseline else "--", linewidth=1.2,
                   label=LABELS.get(r["method"], r["method"]))
        if not math.isnan(std):
            ax.axhspan(mean - 100 * std, mean + 100 * std, color=color, alpha=0.2 if baseline else 0.08)
    if study == "tau":
        ax.set_xscale("log")
    if study == "rank":
        ax.set_xscale("log", base=2)
    if xs:
        ax.set_xticks(xs)
        ax.set_xticklabels([x_label(x) for x in xs])
        ax.minorticks_off()
    ax.set_xlabel(X_NAME[study])
    ax.set_ylabel(f"Avg@{k} (%)")
    ax.set_title({"tau": "Accuracy against τ", "epochs": "Accuracy per epoch", "rank": "Accuracy against LoRA rank"}
                 [study] + " (mean ± std over seeds)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def no_nan(value):
    """JSON has no NaN: a spread of one seed is written as null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: no_nan(v) for key, v in value.items()}
    if isinstance(value, list):
        return [no_nan(v) for v in value]
    return value


def write(root: Path, grid: Grid, smoke: bool = False) -> Path:
    """Collect the grid's results under `root` and write the figures, ablations.json and ablations.md; returns the
    path of ablations.md."""
    points = collect(root, grid)
    summary = summarize(points)
    out = root / "report"
    figures = {}
    for study in grid.studies:
        plot_study(summary, study, points[0]["k"], out / f"{study}.png")
        figures[study] = f"report/{study}.png"
    write_text_atomic(root / "ablations.json", json.dumps(no_nan(
        {"grid": grid.argv(), "points": points, "summary": summary, "differences": differences(points)}), indent=1))
    path = root / "ablations.md"
    write_text_atomic(path, markdown(points, grid, figures, smoke=smoke))
    return path


@command_errors("sweep")
def main(argv: list[str] | None = None) -> int:
    """`python -m profit_rl.pipeline.sweep_report ROOT`: write the ablations report and print its path; a missing
    result exits 1."""
    p = argparse.ArgumentParser(prog="python -m profit_rl.pipeline.sweep_report", description=__doc__.split("\n\n")[0])
    p.add_argument("root", help="outputs/<model>/sweep")
    add_grid_args(p)
    p.add_argument("--smoke", action="store_true", help="the grid ran with --smoke: the first line says so")
    args = p.parse_args(argv)
    path = write(Path(args.root), grid_from_args(args), smoke=args.smoke)
    print(f"ablations: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
