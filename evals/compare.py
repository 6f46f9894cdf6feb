"""`profit-rl compare RUN_A RUN_B`: the paper's Table 1 for two eval runs, with paired deltas and their CIs.

Each RUN is an output directory of `profit-rl eval`. For every benchmark both runs scored, the table shows Avg@k and
Pass@k of each run and the delta B - A with a paired bootstrap 95% CI over the problems both runs share (pairing by
problem removes problem difficulty from the noise, so the CI is much tighter than two separate CIs would suggest).
The last columns are the average over benchmarks, each benchmark weighing the same.

Only comparable runs are paired: runs that scored other problems under the same ids (another benchmark file), or
sampled with other settings (temperature, top-p, top-k, chat template, end of turn) or token budgets
(max_new_tokens), are refused with the field named; `--allow-mismatch` pairs them anyway, and the table's first line
then says what differs. Runs of two different base models are paired (that is a comparison of two models), and the
first line says so. The output never replaces a file that another command wrote (an eval's results.json) unless
`--force` is given.
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
from profit_rl.core.errors import UsageError, command_errors
from profit_rl.core.flags import accept_snake_case
from profit_rl.core.io import InputError
from .results import RESULTS_FILE, read_run
from profit_rl.core.state import write_json_atomic, write_text_atomic

logger = logging.getLogger(__name__)

METRICS = (("avg_at_k", "avg", "Avg@{k}"), ("pass_at_k", "pass", "Pass@{k}"))
MADE_BY = "profit-rl compare"  # in the .json it writes: a file without it was written by another command
# sampling settings that change what a model answers (the seed does not: another seed draws equally good samples)
SAMPLING_FIELDS = ("temperature", "top_p", "top_k", "chat_template", "end_of_turn_token")


def differences(name: str, ra: dict, rb: dict) -> tuple[list[str], list[str]]:
    """(what makes benchmark `name`'s two results incomparable, what only needs saying), each naming the field.

    Incomparable: shared problem ids whose question or answer differ (the runs read other benchmark files), other
    sampling settings, other token budgets. Said: other base models, and what a run does not record."""
    refuse, notes = [], []
    ha, hb = ra.get("problem_hashes"), rb.get("problem_hashes")
    if ha is None or hb is None:
        which = " and ".join(x for x, h in (("A", ha), ("B", hb)) if h is None)
        notes.append(f"{name}: run {which} does not record its problems' content (made by an older profit-rl), so "
                     "the benchmark files are not checked")
    else:
        other = sorted(pid for pid in set(ha) & set(hb) if ha[pid] != hb[pid])
        if other:
            refuse.append(f"{name}: benchmark files differ: {len(other)} of {len(set(ha) & set(hb))} shared problem "
                          f"ids hold another question or answer in A than in B (first: {other[0]!r})")
    sa, sb = ra.get("settings") or {}, rb.get("settings") or {}
    for run, settings in (("A", sa), ("B", sb)):
        if "responses" in settings:
            notes.append(f"{name}: run {run} scored responses from {settings['responses']}; their sampling settings "
                         "are not recorded")
    if "responses" not in sa and "responses" not in sb:
        for field in SAMPLING_FIELDS:
            if sa.get(field) != sb.get(field):
                refuse.append(f"{name}: sampling settings differ: {field} {sa.get(field)!r} (A) vs {sb.get(field)!r} (B)")
        if sa.get("max_new_tokens") != sb.get("max_new_tokens"):
            refuse.append(f"{name}: token budgets differ: max_new_tokens {sa.get('max_new_tokens')!r} (A) vs "
                          f"{sb.get('max_new_tokens')!r} (B)")
    ba, bb = ra.get("base_model"), rb.get("base_model")
    if ba and bb and ba != bb:
        fields = ", ".join(f"{key} {ba.get(key)!r} (A) vs {bb.get(key)!r} (B)" for key in ba if ba.get(key) != bb.get(key))
        notes.append(f"{name}: base models differ: {fields}")
    return refuse, notes


def load_benchmark(run_dir: Path, name: str) -> dict:
    """One benchmark's results.json in a run folder; a missing one names the run that lists it."""
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


def compare(run_a: Path, run_b: Path, n_boot: int = metrics.DEFAULT_BOOTSTRAP, allow_mismatch: bool = False) -> dict:
    """The paired comparison of two eval runs. Raises ValueError naming the field when the runs are not comparable
    (`differences`), unless `allow_mismatch`; what differs is then in `not_comparable_because`."""
    a, b = read_run(run_a), read_run(run_b)
    names = [n for n in a["benchmarks"] if n in b["benchmarks"]]
    only = sorted(set(a["benchmarks"]) ^ set(b["benchmarks"]))
    if only:
        logger.warning("benchmarks in only one run are left out of the comparison: %s", only)
    if not names:
        raise ValueError(f"{run_a} and {run_b} share no benchmark")
    rows, per_a, per_b = {}, {m: [] for m, _, _ in METRICS}, {m: [] for m, _, _ in METRICS}
    reasons, notes = [], []
    for name in names:
        ra, rb = load_benchmark(run_a, name), load_benchmark(run_b, name)
        refuse, said = differences(name, ra, rb)
        if refuse and not allow_mismatch:
            raise ValueError(f"{run_a} and {run_b} are not comparable: {'; '.join(refuse)}. Compare runs made "
                             "from the same benchmark files and settings, or pass --allow-mismatch to pair them anyway "
                             "(the table's first line then says what differs)")
        reasons += refuse
        notes += said
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
    return {"run_a": str(run_a), "run_b": str(run_b), "benchmarks": rows, "average": average,
            "not_comparable_because": reasons, "notes": notes}


def markdown(result: dict, label_a: str, label_b: str) -> str:
    """The comparison as a markdown table: a row for A, one for B and one for the delta B - A with its paired 95% CI,
    for each benchmark and the average; a `Not comparable` line comes first when the runs differ."""
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
    lines = []
    if result.get("not_comparable_because"):  # first: a reader who stops at the first line still sees it
        lines += [f"**Not comparable:** {md.text('; '.join(result['not_comparable_because']))}.", ""]
    if result.get("notes"):
        lines += [f"**Note:** {md.text('; '.join(result['notes']))}.", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(cells[key]) + " |" for key in ("a", "b", "d")]
    lines += [
        "",
        f"A = {md.code(result['run_a'])}, B = {md.code(result['run_b'])}. Values in %. Avg@k: mean accuracy over k samples; "
        "Pass@k: unbiased estimator (Chen et al. 2021). Δ CI: paired bootstrap over shared problems; the average "
        "columns weigh every benchmark equally.",
    ]
    return "\n".join(lines) + "\n"


def default_output(run_a: Path, run_b: Path) -> Path:
    """compare.md in the runs' common parent folder; refused when that is the file system's root (`/`), a folder
    that holds the runs only in the sense that it holds everything."""
    parent = Path(os.path.commonpath([run_a.resolve(), run_b.resolve()]))
    if parent == Path(parent.anchor):
        raise UsageError(f"{run_a} and {run_b} share no folder but {parent}, and nothing is written there: pass "
                         "--output FILE.md")
    return parent / "compare.md"


def check_output(table: Path, numbers: Path, runs: list[str], force: bool) -> None:
    """Refuse to replace a file that is not this command's earlier output for the same two runs (an eval's
    results.json, another comparison, any other file), unless `force`."""
    if table.resolve() == numbers.resolve():
        raise UsageError(f"--output {table}: name the markdown file (e.g. compare.md); the numbers go to a .json "
                         "beside it")
    if force:
        return
    ours = False
    if numbers.is_file():
        try:
            data = json.loads(numbers.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            data = None
        ours = isinstance(data, dict) and data.get("made_by") == MADE_BY and data.get("runs") == runs
    taken = [str(path) for path in (table, numbers) if path.exists()]
    if taken and not ours:
        raise InputError(f"{' and '.join(taken)} already exist{'s' if len(taken) == 1 else ''} and hold another "
                         "command's results (not this comparison of these two runs); choose another --output, or pass "
                         "--force to replace them")


@command_errors("compare")
def main(argv: list[str] | None = None) -> int:
    """`profit-rl compare RUN_A RUN_B`: write the paired comparison as markdown and JSON, print the table, and return
    the exit code."""
    from profit_rl.core.flags import positive_int

    p = argparse.ArgumentParser(prog="profit-rl compare", description=__doc__.split("\n\n")[0])
    p.add_argument("run_a", help="eval output dir of the baseline (A)")
    p.add_argument("run_b", help="eval output dir of the other model (B); deltas are B - A")
    p.add_argument("--labels", default=None, help="comma-separated names for A and B (default: from the paths)")
    p.add_argument("--output", default=None,
                   help="markdown file to write (default: compare.md in the runs' common parent directory); "
                        "a .json with the numbers is written beside it")
    p.add_argument("--bootstrap", type=positive_int, default=metrics.DEFAULT_BOOTSTRAP, help="bootstrap replicates")
    p.add_argument("--force", action="store_true",
                   help="replace an --output file that another command wrote (default: refuse)")
    p.add_argument("--allow-mismatch", action="store_true",
                   help="pair runs whose benchmark files, sampling settings or token budgets differ; the table's "
                        "first line says what differs (default: refuse, naming the field)")
    args = accept_snake_case(p).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run_a, run_b = Path(args.run_a), Path(args.run_b)
    labels = args.labels.split(",") if args.labels else unique_labels([run_a, run_b])
    if len(labels) != 2:
        print("profit-rl compare: --labels needs exactly two names", file=sys.stderr)
        return 2
    out = Path(args.output) if args.output else default_output(run_a, run_b)
    runs = [str(run_a.resolve()), str(run_b.resolve())]
    check_output(out, out.with_suffix(".json"), runs, args.force)
    try:
        result = compare(run_a, run_b, n_boot=args.bootstrap, allow_mismatch=args.allow_mismatch)
    except (FileNotFoundError, ValueError) as err:
        raise InputError(str(err)) from err
    table = markdown(result, *labels)
    write_text_atomic(out, table)
    write_json_atomic(out.with_suffix(".json"), dict(result, labels=labels, made_by=MADE_BY, runs=runs))
    print(md.terminal(table))  # the file keeps the markdown escapes
    print(f"written: {out} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
