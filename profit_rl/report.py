"""The pipeline's last stage: `outputs/<model>/report.md`, answering "does ProFit initialisation beat the baseline's?"

    python -m profit_rl.report outputs/embedded --methods profit,sft

It only reads what earlier stages wrote (eval results, the curves' CSV/PNG and per-checkpoint samples, the steps'
`.done.json` markers), so it can be rerun at any time. The paired differences come from `evals.compare`.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import statistics
import sys
from pathlib import Path

from evals import markdown as md
from evals.compare import compare
from evals.folders import check_name
from evals.io import InputError
from evals.markdown import pct
from evals.results import read_run

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
    with csv_path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    lines = ["| run | step | Avg@k | Pass@k |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {md.text(r['run'])} | {md.text(r['step'])} | {pct(float(r['avg_at_k']))} "
                     f"| {pct(float(r['pass_at_k']))} |")
    return "\n".join(lines) + "\n"


def commands(root: Path) -> str:
    # Seeds other than 0 run as their own pipelines in <root>/seed-N/: their steps belong to their own reports.
    found = sorted((m for m in root.rglob(DONE) if not any(SEED_ROOT.match(part) for part in m.relative_to(root).parts)),
                   key=lambda p: p.stat().st_mtime)
    lines = []
    for marker in found:
        info = json.loads(marker.read_text())
        argv = ["python" if a.endswith(("python", "python3")) else a for a in info["argv"]]
        lines.append(f"# {marker.parent.relative_to(root)} ({info.get('seconds', '?')} s)\n" + " ".join(argv))
    return md.fence("\n".join(lines)) if lines else "_no finished steps_\n"


def protocol_line(eval_dirs: list[Path]) -> str:
    """The report's first line after its title: the eval protocol, and whether Table 1 is the right comparison."""
    from evals.protocols import header

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


def write_report(root: Path, methods: list[str]) -> Path:
    for method in methods:
        check_name(method, "method")  # each names a folder under root
    out = root / "report"
    out.mkdir(parents=True, exist_ok=True)
    baseline, others = (methods[-1], methods[:-1]) if len(methods) > 1 else (methods[0], [])
    evals = [root / "base" / "eval", *[root / m / "eval" / "sft" for m in methods]]
    parts = [f"# profit-rl report: {md.text(root.name)}", "", protocol_line(evals), "",
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
        shutil.copy(curves / "curves.png", out / "curves.png")
        parts += ["![Avg@k and Pass@k against GRPO step](report/curves.png)", "", curve_table(curves / "curves.csv")]
    final = {m: last_checkpoint_eval(root / m / "grpo") for m in methods}
    for m in others:
        if final[m] and final[baseline]:
            parts += [f"### Final GRPO checkpoint: {m}-init − {baseline}-init ({final[m].name} vs {final[baseline].name})",
                      "", paired(final[baseline], final[m], f"{baseline}-init", f"{m}-init")[0]]

    parts += ["## Settings", "", "Every command the pipeline ran, in order (from the steps' `.done.json` markers):", "",
              commands(root)]
    path = root / "report.md"
    path.write_text("\n".join(parts))
    return path


def aggregate_seeds(roots: list[Path], methods: list[str], path: Path) -> Path:
    """`make reproduce-embedded`: per-seed final numbers and the mean difference over seeds, whatever its sign."""
    baseline, others = methods[-1], methods[:-1]
    lines = ["# Embedded seed study", "", "| seed | stage | " + " | ".join(f"{m} Avg@4 / Pass@4" for m in methods) + " |",
             "|---" * (len(methods) + 2) + "|"]
    diffs = {(m, stage): [] for m in others for stage in ("sft", "grpo")}
    for root in roots:
        for stage in ("sft", "grpo"):
            runs = {}
            for m in methods:
                run_dir = root / m / "eval" / "sft" if stage == "sft" else last_checkpoint_eval(root / m / "grpo")
                if run_dir is not None:
                    bench = next(iter(read_run(run_dir)["benchmarks"].values()))
                    runs[m] = (bench["avg_at_k"], bench["pass_at_k"])
            cells = [f"{pct(runs[m][0])} / {pct(runs[m][1])}" if m in runs else "-" for m in methods]
            lines.append(f"| {root.name} | {stage} | " + " | ".join(cells) + " |")
            for m in others:
                if m in runs and baseline in runs:
                    diffs[m, stage].append(runs[m][0] - runs[baseline][0])
    lines += ["", f"Mean over seeds of Avg@4 difference (method − {baseline}), ± sample std:", ""]
    for (m, stage), values in diffs.items():
        if values:
            sd = statistics.stdev(values) if len(values) > 1 else float("nan")
            lines.append(f"- {m} − {baseline} after {stage}: {md.signed(statistics.mean(values))} ± {pct(sd)} "
                         f"points over {len(values)} seeds ({', '.join(md.signed(v) for v in values)})")
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("root", help="outputs/<model>")
    p.add_argument("--methods", default="profit,sft", help="comma-separated; the last one is the baseline")
    args = p.parse_args(argv)
    try:
        path = write_report(Path(args.root), [m for m in args.methods.split(",") if m])
    except InputError as err:
        print(f"profit-rl report: {err}", file=sys.stderr)
        return 1
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
