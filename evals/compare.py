"""`profit-rl compare RUN_A RUN_B`: the paper's Table 1 for two eval runs, with paired deltas and their CIs.

Each RUN is an output directory of `profit-rl eval`. For every benchmark both runs scored, the table shows Avg@k and
Pass@k of each run and the delta B - A with a paired bootstrap 95% CI over the problems both runs share (pairing by
problem removes problem difficulty from the noise, so the CI is much tighter than two separate CIs would suggest).
The last columns are the average over benchmarks, each benchmark weighing the same.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from . import markdown as md
from . import metrics
from .flags import accept_snake_case
from .results import RESULTS_FILE, read_run, write_json

logger = logging.getLogger(__name__)

METRICS = (("avg_at_k", "avg", "Avg@{k}"), ("pass_at_k", "pass", "Pass@{k}"))


def load_benchmark(run_dir: Path, name: str) -> dict:
    path = run_dir / name / RESULTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (run {run_dir} lists {name} but has no per-benchmark results)")
    return json.loads(path.read_text(encoding="utf-8"))


def unique_labels(paths: list[Path]) -> list[str]:
    """The shortest trailing path parts that tell the runs apart (outputs/X/profit/eval vs outputs/X/sft/eval ->
    profit/eval, sft/eval)."""
    parts = [Path(p).resolve().parts for p in paths]
    for depth in range(1, max(len(p) for p in parts) + 1):
        labels = ["/".join(p[-depth:]) for p in parts]
        if len(set(labels)) == len(labels):
            return labels
    return [str(p) for p in paths]


def compare(run_a: Path, run_b: Path, n_boot: int = metrics.DEFAULT_BOOTSTRAP) -> dict:
    a, b = read_run(run_a), read_run(run_b)
    names = [n for n in a["benchmarks"] if n in b["benchmarks"]]
    only = sorted(set(a["benchmarks"]) ^ set(b["benchmarks"]))
    if only:
        logger.warning("benchmarks in only one run are left out of the comparison: %s", only)
    if not names:
        raise ValueError(f"{run_a} and {run_b} share no benchmark")
    rows, per_a, per_b = {}, {m: [] for m, _, _ in METRICS}, {m: [] for m, _, _ in METRICS}
    for name in names:
        ra, rb = load_benchmark(run_a, name), load_benchmark(run_b, name)
        if ra["k"] != rb["k"]:
            raise ValueError(f"{name}: run A used k={ra['k']} and run B k={rb['k']}; compare runs with the same k")
        if ra.get("protocol") != rb.get("protocol"):  # other prompts and answer rules: the delta would mean nothing
            raise ValueError(f"{name}: run A used protocol {ra.get('protocol')!r} and run B {rb.get('protocol')!r}; "
                             "compare runs made under the same protocol")
        ids_a, ids_b = set(ra["per_problem"]), set(rb["per_problem"])
        if ids_a != ids_b:
            logger.warning("%s: the runs scored different problems (%d vs %d); deltas use the %d they share",
                           name, len(ids_a), len(ids_b), len(ids_a & ids_b))
        row = {"title": ra.get("title", name), "k": ra["k"], "n_shared": len(ids_a & ids_b)}
        for metric, field, _ in METRICS:
            va = {pid: v[field] for pid, v in ra["per_problem"].items()}
            vb = {pid: v[field] for pid, v in rb["per_problem"].items()}
            row[metric] = {"a": ra[metric], "b": rb[metric], **metrics.paired_difference(va, vb, n_boot=n_boot)}
            per_a[metric].append(va)
            per_b[metric].append(vb)
        rows[name] = row
    average = {}
    for metric, _, _ in METRICS:
        average[metric] = {
            "a": sum(r[metric]["a"] for r in rows.values()) / len(rows),
            "b": sum(r[metric]["b"] for r in rows.values()) / len(rows),
            **metrics.paired_difference(per_a[metric], per_b[metric], n_boot=n_boot),
        }
    return {"run_a": str(run_a), "run_b": str(run_b), "benchmarks": rows, "average": average}


def markdown(result: dict, label_a: str, label_b: str) -> str:
    rows = result["benchmarks"]
    header = ["Model"]
    for row in rows.values():
        header += [f"{md.text(row['title'])} {template.format(k=row['k'])}" for _, _, template in METRICS]
    header += ["Avg Avg@k", "Avg Pass@k"]
    cells = {"a": [f"A: {md.text(label_a)}"], "b": [f"B: {md.text(label_b)}"], "d": ["Δ (B − A) [95% CI]"]}
    for entry in [*rows.values(), result["average"]]:
        for metric, _, _ in METRICS:
            m = entry[metric]
            cells["a"].append(md.pct(m["a"]))
            cells["b"].append(md.pct(m["b"]))
            cells["d"].append(f"{md.signed(m['delta'])} [{md.signed(m['ci'][0])}, {md.signed(m['ci'][1])}]")
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(cells[key]) + " |" for key in ("a", "b", "d")]
    lines += [
        "",
        f"A = {md.code(result['run_a'])}, B = {md.code(result['run_b'])}. Values in %. Avg@k: mean accuracy over k samples; "
        "Pass@k: unbiased estimator (Chen et al. 2021). Δ CI: paired bootstrap over shared problems; the average "
        "columns weigh every benchmark equally.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from .cli import positive_int

    p = argparse.ArgumentParser(prog="profit-rl compare", description=__doc__.split("\n\n")[0])
    p.add_argument("run_a", help="eval output dir of the baseline (A)")
    p.add_argument("run_b", help="eval output dir of the other model (B); deltas are B - A")
    p.add_argument("--labels", default=None, help="comma-separated names for A and B (default: from the paths)")
    p.add_argument("--output", default=None,
                   help="markdown file to write (default: compare.md in the runs' common parent directory); "
                        "a .json with the numbers is written beside it")
    p.add_argument("--bootstrap", type=positive_int, default=metrics.DEFAULT_BOOTSTRAP, help="bootstrap replicates")
    args = accept_snake_case(p).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run_a, run_b = Path(args.run_a), Path(args.run_b)
    labels = args.labels.split(",") if args.labels else unique_labels([run_a, run_b])
    if len(labels) != 2:
        print("profit-rl compare: --labels needs exactly two names", file=sys.stderr)
        return 2
    try:
        result = compare(run_a, run_b, n_boot=args.bootstrap)
    except (FileNotFoundError, ValueError) as err:
        print(f"profit-rl compare: {err}", file=sys.stderr)
        return 1
    table = markdown(result, *labels)
    if args.output:
        out = Path(args.output)
    else:
        out = Path(os.path.commonpath([run_a.resolve(), run_b.resolve()])) / "compare.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table, encoding="utf-8")
    write_json(out.with_suffix(".json"), dict(result, labels=labels))
    print(md.terminal(table))  # the file keeps the markdown escapes
    print(f"written: {out} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
