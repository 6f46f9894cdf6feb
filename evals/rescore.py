"""Score saved completions again, under both protocols, without generating: `profit-rl eval --rescore RUN_DIR`.

    profit-rl eval --rescore outputs/eval/my-model --data-dir /path/to/data      # -> outputs/eval/my-model/rescore/

Reads every `<benchmark>/samples.jsonl` of an eval run (or of a curves checkpoint folder) and scores the same
completions under `paper` (the reference's OpenCompass rules) and under `boxed` (the toolkit's own), each benchmark
under the protocols it has. Writes `<out>/<protocol>/` as `profit-rl eval --responses` would (per-benchmark samples
and results, results.json, results.md), and `<out>/comparison.md`: per benchmark, Avg under each protocol and how many
samples the two judge differently. The completions keep the prompts they were made with: the first line of each
results.md says so, since a `paper` score of completions sampled under `boxed` prompts is not the paper's protocol.

GPQA's letters name options in the order of the protocol the samples were made under (the reference's rotation, or
the toolkit's seeded shuffle), so its problems are loaded under that protocol, read from the samples' recorded
settings; both scorers then read the same letters against the same gold.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

from . import markdown as md
from . import metrics
from .benchmarks import REGISTRY, get_benchmark
from profit_rl.core.io import DataError, InputError, read_file
from .protocols import PROTOCOLS, deviations, get_protocol
from .results import RESULTS_FILE, SAMPLES_FILE, TABLE_FILE, markdown_table
from profit_rl.core.state import write_json_atomic
from .benchmark_runner import score_responses

logger = logging.getLogger(__name__)

COMPARISON_FILE = "comparison.md"


def saved_completions(path: Path) -> tuple[str | None, dict[str, list[str]]]:
    """(the protocol the samples were made under, or None when not recorded; problem id -> completions by index)."""
    protocols, by_problem = set(), defaultdict(dict)
    for row in read_file(path):
        protocols.add((row.get("settings") or {}).get("protocol"))
        index = row.integer("sample_index", minimum=0)
        by_problem[row.scalar("problem_id")][index] = row.text("completion", empty=True)
    if len(protocols) > 1:
        raise DataError(path, f"expected samples made under one protocol, found {sorted(map(str, protocols))}")
    return next(iter(protocols), None), {pid: [c[i] for i in sorted(c)] for pid, c in by_problem.items()}


def rescore(run_dir: str | Path, data_dir: str | None, out_dir: str | Path, names: list[str] | None = None,
            n_boot: int = metrics.DEFAULT_BOOTSTRAP) -> list[dict]:
    """Score every benchmark's saved completions under every protocol it has; write `out_dir`; return one comparison
    row per benchmark (see `comparison_table`)."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    found = sorted(p.parent.name for p in run_dir.glob(f"*/{SAMPLES_FILE}") if p.parent.name in REGISTRY)
    names = names or found
    missing = [n for n in names if n not in found]
    if not found or missing:
        raise InputError(f"{run_dir}: expected <benchmark>/{SAMPLES_FILE} for {', '.join(missing or ['a benchmark'])}"
                         f" (an eval run folder made by `profit-rl eval` or `profit-rl curves`)")
    summaries: dict[str, dict[str, dict]] = defaultdict(dict)
    rows = []
    for name in names:
        path = run_dir / name / SAMPLES_FILE
        made_under, completions = saved_completions(path)
        if made_under is None and name == "gpqa":
            raise DataError(path, "expected the protocol the samples were made under (settings.protocol): GPQA's "
                            "letters name options in that protocol's order; rescore samples made by `profit-rl eval`")
        problems = get_benchmark(name, made_under or "boxed").load(data_dir)
        known = {p.id for p in problems}
        unknown = [pid for pid in completions if pid not in known]
        if unknown:
            raise DataError(path, f"expected problem ids of {name} as --data-dir loads it, found {len(unknown)} others "
                            f"(first: {unknown[:3]})", field="problem_id")
        verdicts = {}
        for protocol in PROTOCOLS:
            try:
                bench = get_benchmark(name, protocol)
            except ValueError:  # a benchmark without this protocol (the embedded set has no `paper`)
                continue
            summary = score_responses(bench, problems, completions, out_dir / protocol, None, str(path), n_boot=n_boot)
            summaries[protocol][name] = summary
            verdicts[protocol] = {(r["problem_id"], r["sample_index"]): float(r["score"])
                                  for r in read_file(out_dir / protocol / name / SAMPLES_FILE)}
        rows.append(compare_verdicts(name, made_under, verdicts))
    for protocol, by_name in summaries.items():
        write_run(out_dir / protocol, protocol, by_name, run_dir, n_boot)
    (out_dir / COMPARISON_FILE).write_text(comparison_table(rows, run_dir), encoding="utf-8")
    return rows


def compare_verdicts(name: str, made_under: str | None, verdicts: dict[str, dict]) -> dict:
    """One comparison-table row for benchmark `name`: each protocol's Avg over the (problem id, sample index) keys every
    protocol scored, and with both protocols, how many samples they judge differently and which way."""
    row = {"benchmark": name, "made_under": made_under}
    keys = sorted(set.intersection(*(set(v) for v in verdicts.values()))) if verdicts else []
    row["samples"] = len(keys)
    for protocol, scores in verdicts.items():
        row[protocol] = sum(scores[k] for k in keys) / len(keys) if keys else None
    if {"paper", "boxed"} <= set(verdicts):
        paper, boxed = verdicts["paper"], verdicts["boxed"]
        row["differ"] = sum(paper[k] != boxed[k] for k in keys)
        row["only_paper"] = sum(paper[k] > boxed[k] for k in keys)
        row["only_boxed"] = sum(boxed[k] > paper[k] for k in keys)
    return row


def write_run(out: Path, protocol: str, summaries: dict, run_dir: Path, n_boot: int) -> None:
    """Writes one protocol's rescore to `out` as an eval run (results.json, results.md); the first of its reasons not to
    stand next to the paper: the completions keep the prompts they were sampled with."""
    ks = {name: (s["k"], get_benchmark(name, protocol).default_k) for name, s in summaries.items()}
    reasons = [f"completions rescored from {run_dir}: they keep the prompts they were sampled with",
               *deviations(get_protocol(protocol), {}, ks, None, False)]
    run = {"protocol": protocol, "not_comparable_because": reasons, "model": None, "responses": str(run_dir),
           "backend": None, "settings": {},
           "benchmarks": {n: {k: v for k, v in s.items() if k != "per_problem"} for n, s in summaries.items()},
           "average": metrics.average_over_benchmarks(summaries, n_boot=n_boot)}
    write_json_atomic(out / RESULTS_FILE, run)
    (out / TABLE_FILE).write_text(markdown_table(run), encoding="utf-8")


def comparison_table(rows: list[dict], run_dir: Path) -> str:
    """One line per benchmark: Avg under each protocol on the same samples, and the samples judged differently."""
    pct = lambda v: "-" if v is None else md.pct(v)  # noqa: E731
    lines = [f"Completions of {md.code(str(run_dir))} scored under both protocols (no generation).", "",
             "| Benchmark | made under | samples | Avg `paper` | Avg `boxed` | judged differently | correct only under "
             "`paper` | correct only under `boxed` |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {md.text(r['benchmark'])} | {md.text(str(r['made_under']))} | {r['samples']} | "
                     f"{pct(r.get('paper'))} | {pct(r.get('boxed'))} | {r.get('differ', '-')} | "
                     f"{r.get('only_paper', '-')} | {r.get('only_boxed', '-')} |")
    return "\n".join(lines) + "\n"


def main(args) -> int:
    """`profit-rl eval --rescore RUN_DIR`: see the module docstring."""
    names = [n.strip() for n in args.benchmarks.split(",") if n.strip()] if args.benchmarks else None
    out_dir = Path(args.output_dir) if args.output_dir else Path(args.rescore) / "rescore"
    from profit_rl.core.folders import output_folder

    with output_folder(out_dir, "profit-rl eval --rescore " + str(args.rescore)):
        rows = rescore(args.rescore, args.data_dir, out_dir, names, n_boot=args.bootstrap)
    print(comparison_table(rows, Path(args.rescore)))
    print(f"per protocol: {', '.join(str(out_dir / p / TABLE_FILE) for p in PROTOCOLS if (out_dir / p).is_dir())}"
          f"  comparison: {out_dir / COMPARISON_FILE}")
    return 0
