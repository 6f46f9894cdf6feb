"""The pipeline's last stage: `outputs/<model>/report.md`, answering "does ProFit initialisation beat the baseline's?"

    python -m profit_rl.pipeline.report outputs/embedded --methods profit,sft

It only reads what earlier stages wrote (eval results, the curves' CSV/PNG and per-checkpoint samples, the steps'
`.done.json` markers), so it can be rerun at any time. The paired differences come from `evals.compare`.
"""

from __future__ import annotations

import argparse
import csv
import re
import shlex
import statistics
import sys
from pathlib import Path

from profit_rl.evals import markdown as md
from profit_rl.evals.compare import compare
from profit_rl.core.errors import command_errors
from profit_rl.core.folders import check_name
from profit_rl.core.io import InputError
from profit_rl.evals.markdown import pct
from profit_rl.evals.results import read_run
from profit_rl.core.state import read_json_state, write_bytes_atomic, write_text_atomic

from .checks import failed as failed_checks

DONE = ".done.json"
SEED_ROOT = re.compile(r"^seed-\d+$")


def table_one(rows: dict[str, Path]) -> str:
    """Avg@k (Pass@k) per benchmark and the average column, one row per model, as in the paper's Table 1."""
    runs = {label: read_run(path) for label, path in rows.items() if (path / "results.json").is_file()}
    if not runs:
        return "_no eval results yet_\n"
    names = list(next(iter(runs.values()))["benchmarks"])
    k = next(iter(runs.values()))["benchmarks"][names[0]]["k"]
    head = "| model | " + " | ".join(md.text(runs[next(iter(runs))]["benchmarks"][n].get("title", n)) for n in names)
    head += " | Avg |"
    lines = [f"Avg@{k} (Pass@{k}), %", "", head, "|---" * (len(names) + 2) + "|"]
    for label, run in runs.items():
        cells = [f"{pct(run['benchmarks'][n]['avg_at_k'])} ({pct(run['benchmarks'][n]['pass_at_k'])})" for n in names]
        avg = run.get("average") or {}
        cells.append(f"{pct(avg['avg_at_k'])} ({pct(avg['pass_at_k'])})" if "avg_at_k" in avg else "-")
        lines.append(f"| {md.text(label)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def last_checkpoint_eval(run_dir: Path) -> Path | None:
    """The curves stage's evaluation of the last checkpoint-N of a GRPO run (`<run>/eval/checkpoint-N`)."""
    evals = [p for p in (run_dir / "eval").glob("checkpoint-*") if any(p.glob("*/results.json"))]
    return max(evals, key=lambda p: int(p.name.split("-")[1]), default=None)


def paired(a: Path, b: Path, label_a: str, label_b: str) -> tuple[str, dict]:
    """The paired comparison of two eval runs as a markdown table (each benchmark and the average: both Avg@k, the
    deltas with 95% CIs), and the comparison itself."""
    result = compare(a, b)
    lines = [f"| benchmark | {md.text(label_a)} Avg@k | {md.text(label_b)} Avg@k | Δ Avg@k [95% CI] "
             "| Δ Pass@k [95% CI] | problems |",
             "|---|---|---|---|---|---|"]
    rows = list(result["benchmarks"].items()) + [("average", {**result["average"], "title": "Average"})]
    for name, row in rows:
        avg, pas = row["avg_at_k"], row["pass_at_k"]
        lines.append(
            f"| {md.text(row.get('title', name))} | {pct(avg['a'])} | {pct(avg['b'])} | "
            f"{md.signed(avg['delta'])} [{md.signed(avg['ci'][0])}, {md.signed(avg['ci'][1])}] | "
            f"{md.signed(pas['delta'])} [{md.signed(pas['ci'][0])}, {md.signed(pas['ci'][1])}] "
            f"| {row.get('n_shared', '')} |"
        )
    return "\n".join(lines) + "\n", result


def curve_table(csv_path: Path) -> str:
    """A curves.csv as a markdown table: run, step, Avg@k, Pass@k."""
    with csv_path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    lines = ["| run | step | Avg@k | Pass@k |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {md.text(r['run'])} | {md.text(r['step'])} | {pct(float(r['avg_at_k']))} "
                     f"| {pct(float(r['pass_at_k']))} |")
    return "\n".join(lines) + "\n"


def commands(root: Path) -> str:
    """The commands of the finished steps under `root` (seed-N pipelines left out), oldest first with their seconds,
    as a fenced shell block ready to paste."""
    # Seeds other than 0 run as their own pipelines in <root>/seed-N/: their steps belong to their own reports.
    found = sorted((m for m in root.rglob(DONE) if not any(SEED_ROOT.match(part) for part in m.relative_to(root).parts)),
                   key=lambda p: p.stat().st_mtime)
    lines = []
    for marker in found:
        info = read_json_state(marker, "pipeline step's marker", f"Delete it to run the step again: rm {marker}")
        argv = ["python" if a.endswith(("python", "python3")) else a for a in info["argv"]]
        # quoted as a shell reads it: an output root with spaces or non-ASCII letters still runs when pasted
        lines.append(f"# {marker.parent.relative_to(root)} ({info.get('seconds', '?')} s)\n" + shlex.join(argv))
    return md.fence("\n".join(lines)) if lines else "_no finished steps_\n"


def protocol_line(eval_dirs: list[Path]) -> str:
    """The report's first line after its title: the eval protocol, and whether Table 1 is the right comparison."""
    from profit_rl.evals.protocols import header

    runs = [read_run(d) for d in eval_dirs if (d / "results.json").is_file()]
    protocols = {(r.get("protocol"), tuple(r.get("not_comparable_because", []))) for r in runs}
    if not runs:
        return "Protocol: no eval results yet."
    if len(protocols) > 1:
        names = sorted({md.text(p) for p, _ in protocols})
        return f"Protocol: the eval runs differ ({', '.join(names)}). **Not comparable to the paper's Table 1.**"
    (name, reasons), = protocols
    if name is None:
        return ("Protocol: not recorded (results made before protocols existed). "
                "**Not comparable to the paper's Table 1.**")
    return header(name, list(reasons))


REPORT_TITLE = "# profit-rl report: "
SMOKE_BANNER = ("**Smoke run (`--smoke`): a few tiny steps per stage to check the wiring; its numbers mean nothing.** "
                "Run without `--smoke` for results.")


def check_report_path(path: Path, force: bool) -> None:
    """Refuse to replace a report.md that this command did not write (its title line is missing), unless `force`."""
    if force or not path.exists():
        return
    try:
        ours = any(line.startswith(REPORT_TITLE) for line in path.read_text(encoding="utf-8").splitlines()[:5])
    except (OSError, UnicodeDecodeError):
        ours = False
    if not ours:
        raise InputError(f"{path} already exists and is not a profit-rl report (another command's file); move it, or "
                         "pass --force to replace it")


def write_report(root: Path, methods: list[str], force: bool = False, smoke: bool = False) -> Path:
    """`<root>/report.md`; a smoke run's report says so in its first line."""
    for method in methods:
        check_name(method, "method")  # each names a folder under root
    if not root.is_dir():
        raise InputError(f"{root}: no such folder (the pipeline's output folder, outputs/<model>)")
    check_report_path(root / "report.md", force)
    out = root / "report"
    out.mkdir(parents=True, exist_ok=True)
    baseline, others = (methods[-1], methods[:-1]) if len(methods) > 1 else (methods[0], [])
    evals = [root / "base" / "eval", *[root / m / "eval" / "sft" for m in methods]]
    # A run that went on past a failed check says so before anything else (profit_rl.pipeline.checks).
    failed = failed_checks(root)
    parts = [SMOKE_BANNER, ""] if smoke else []
    if failed:
        parts += [f"**Not a meaningful comparison:** {' Also: '.join(v.message for v in failed)}", ""]
    parts += [f"{REPORT_TITLE}{md.text(root.name)}", "", protocol_line(evals), "",
             f"Methods: {', '.join(methods)}; paired differences are `<method> − {baseline}` on the same problems.", ""]

    parts += ["## After SFT (Table 1)", "",
              table_one({"base": root / "base" / "eval", **{f"{m} SFT": root / m / "eval" / "sft" for m in methods}})]
    for m in others:
        a, b = root / baseline / "eval" / "sft", root / m / "eval" / "sft"
        if (a / "results.json").is_file() and (b / "results.json").is_file():
            parts += [f"### {m} SFT − {baseline} SFT", "", paired(a, b, baseline, m)[0]]

    parts += ["## GRPO from each SFT checkpoint", ""]
    curves = root / "curves"
    if (curves / "curves.png").is_file():
        write_bytes_atomic(out / "curves.png", (curves / "curves.png").read_bytes())
        parts += ["![Avg@k and Pass@k against GRPO step](report/curves.png)", "", curve_table(curves / "curves.csv")]
    final = {m: last_checkpoint_eval(root / m / "grpo") for m in methods}
    for m in others:
        if final[m] and final[baseline]:
            parts += [f"### Final GRPO checkpoint: {m}-init − {baseline}-init ({final[m].name} vs {final[baseline].name})",
                      "", paired(final[baseline], final[m], f"{baseline}-init", f"{m}-init")[0]]

    parts += ["## Settings", "", "Every command the pipeline ran, in order (from the steps' `.done.json` markers):", "",
              commands(root)]
    path = root / "report.md"
    write_text_atomic(path, "\n".join(parts))
    return path


def seed_numbers(root: Path, methods: list[str]) -> dict[tuple[str, str], tuple[float, float, int]]:
    """(method, "sft" | "grpo") -> (Avg@k, Pass@k, k) of a run's SFT model and of its last GRPO checkpoint."""
    numbers = {}
    for m in methods:
        for stage, run_dir in (("sft", root / m / "eval" / "sft"), ("grpo", last_checkpoint_eval(root / m / "grpo"))):
            if run_dir is not None and (any(run_dir.glob("*/results.json")) or (run_dir / "results.json").is_file()):
                bench = next(iter(read_run(run_dir)["benchmarks"].values()))
                numbers[m, stage] = (bench["avg_at_k"], bench["pass_at_k"], bench["k"])
    return numbers


def aggregate_seeds(roots: dict[int, Path], methods: list[str], path: Path) -> Path:
    """`make reproduce-embedded`: per-seed numbers, each seed's checks, and the mean ± sample std over seeds of each
    method's Avg@k difference from the baseline (the last method), after SFT and after GRPO, whatever its sign."""
    baseline, others = methods[-1], methods[:-1]
    numbers = {seed: seed_numbers(root, methods) for seed, root in roots.items()}
    failed = {seed: failed_checks(root) for seed, root in roots.items()}
    k = next((n[2] for per_seed in numbers.values() for n in per_seed.values()), 4)
    columns = [(m, stage) for stage in ("sft", "grpo") for m in methods]
    head = ["seed", "checks"] + [f"{m} {stage.upper()}" for m, stage in columns] + \
        [f"{m} − {baseline} after {stage.upper()}" for stage in ("sft", "grpo") for m in others]
    lines = []
    if any(failed.values()):
        bad = ", ".join(str(seed) for seed, verdicts in failed.items() if verdicts)
        lines += [f"**Not a meaningful comparison for seed(s) {bad}:** a check failed (the checks column; each "
                  "seed's report.md says what failed).", ""]
    lines += ["# Embedded seed study", "",
              f"Avg@{k} / Pass@{k} in %; SFT: the SFT model, GRPO: the last GRPO checkpoint; the differences are "
              f"paired on the same test problems, in Avg@{k} points.", "",
              "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    diffs: dict[tuple[str, str], list[float]] = {(m, stage): [] for stage in ("sft", "grpo") for m in others}
    for seed, per_seed in numbers.items():
        cells = [str(seed), "FAILED: " + ", ".join(v.check for v in failed[seed]) if failed[seed] else "passed"]
        cells += [f"{pct(per_seed[c][0])} / {pct(per_seed[c][1])}" if c in per_seed else "-" for c in columns]
        for stage in ("sft", "grpo"):
            for m in others:
                if (m, stage) in per_seed and (baseline, stage) in per_seed:
                    diff = per_seed[m, stage][0] - per_seed[baseline, stage][0]
                    diffs[m, stage].append(diff)
                    cells.append(md.signed(diff))
                else:
                    cells.append("-")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Mean ± sample std over seeds of the Avg@{k} difference (method − {baseline}):", ""]
    for (m, stage), values in diffs.items():
        if values:
            sd = pct(statistics.stdev(values)) if len(values) > 1 else "n/a (one seed)"
            lines.append(f"- {m} − {baseline} after {stage.upper()}: **{md.signed(statistics.mean(values))} ± {sd}** "
                         f"points over {len(values)} seeds ({', '.join(md.signed(v) for v in values)})")
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path


@command_errors("report")
def main(argv: list[str] | None = None) -> int:
    """`python -m profit_rl.pipeline.report ROOT`: write the run's report.md and print its path."""
    p = argparse.ArgumentParser(prog="python -m profit_rl.pipeline.report", description=__doc__.split("\n\n")[0])
    p.add_argument("root", help="outputs/<model>")
    p.add_argument("--methods", default="profit,sft", help="comma-separated; the last one is the baseline")
    p.add_argument("--force", action="store_true", help="replace a report.md that profit-rl report did not write")
    p.add_argument("--smoke", action="store_true", help="the run was a smoke run: the first line says so")
    args = p.parse_args(argv)
    path = write_report(Path(args.root), [m for m in args.methods.split(",") if m], force=args.force, smoke=args.smoke)
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
