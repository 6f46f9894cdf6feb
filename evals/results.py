"""Per-sample JSONL cache (append as made, resume), per-benchmark and run-level results.json, markdown tables.

Layout of an eval run directory (`--output-dir`):

    <run>/<benchmark>/samples.jsonl   one line per sample: problem id, sample index, completion, extracted answer,
                                      score, correct, error, settings, fingerprint (appended and flushed per batch)
    <run>/<benchmark>/results.json    Avg@k / Pass@k with CIs, per-problem values (what compare and curves read)
    <run>/results.json                every benchmark plus the average column
    <run>/results.md                  the same as a markdown table

A sample is reused when its fingerprint (model, benchmark, settings that change the completion distribution) matches.
k and --limit are not in the fingerprint: asking for k=8 after k=4 draws only the 4 missing samples per problem.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from . import markdown as md
from profit_rl.core.identity import differences
from profit_rl.core.io import DataError, InputError, describe, parse_jsonl
from profit_rl.core.state import read_json_state
from profit_rl.deprecated import module_getattr

__getattr__ = module_getattr(__name__)  # write_json: callers use profit_rl.core.state.write_json_atomic

logger = logging.getLogger(__name__)

SAMPLES_FILE = "samples.jsonl"
RESULTS_FILE = "results.json"
TABLE_FILE = "results.md"


class CacheMismatchError(InputError):
    """samples.jsonl holds samples made with other settings; mixing them would corrupt the metrics."""


def fingerprint_hash(fingerprint: dict) -> str:
    """A short (16 hex digit) sha256 of a settings fingerprint, stable across key order: the key cached samples are
    matched by."""
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]


class SampleCache:
    """Append-only per-sample JSONL for one benchmark of one run."""

    def __init__(self, path: str | os.PathLike, fingerprint: dict, overwrite: bool = False):
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.key = fingerprint_hash(fingerprint)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if overwrite and self.path.exists():
            self.path.unlink()
        self.rows: dict[str, dict[int, dict]] = {}
        self.n_dropped_partial = 0
        if self.path.exists():
            self._load()

    def _load(self):
        raw = self.path.read_bytes()
        if raw and not raw.endswith(b"\n"):
            # a kill -9 during a write leaves a partial last line: drop it (and only it) so appends stay valid JSONL
            cut = raw.rfind(b"\n") + 1
            logger.warning("%s: dropping a partial last line (%d bytes) left by an interrupted write",
                           self.path, len(raw) - cut)
            with open(self.path, "r+b") as f:
                f.truncate(cut)
            raw = raw[:cut]
            self.n_dropped_partial = 1
        first_line: dict[tuple[str, int], int] = {}
        for row in parse_jsonl(raw, str(self.path)):
            if row.get("fingerprint") != self.key:
                theirs = row.get("settings") if isinstance(row.get("settings"), dict) else {}
                diff = differences(theirs, self.fingerprint) or ["the fingerprint"]
                raise CacheMismatchError(
                    f"{row.where} was made from another model or with other settings (cached -> now: "
                    + "; ".join(diff) + "). Use another --output-dir for these settings, or pass --overwrite to "
                    "discard the cached samples."
                )
            score = row.get("score")
            if not (isinstance(score, (int, float)) and not isinstance(score, bool) and 0.0 <= score <= 1.0):
                # NaN and infinity fail this too: a mean over them would be NaN, and results.json could not hold it
                raise DataError(self.path, f"expected a score in [0, 1], found {describe(score)}: the cache is "
                                "corrupt; delete the file or pass --overwrite", row=row.number, field="score")
            key = (row.scalar("problem_id"), row.integer("sample_index", minimum=0))
            if key in first_line:
                # two runs wrote into one unlocked folder, or files were concatenated: which completion is the sample
                # cannot be known, so the cache is refused rather than silently deduplicated
                raise DataError(self.path, f"sample {key[1]} of problem {key[0]!r} appears twice (first at line "
                                f"{first_line[key]}); delete the file or pass --overwrite", row=row.number,
                                field="sample_index")
            first_line[key] = row.number
            self.rows.setdefault(key[0], {})[key[1]] = row

    def done(self, problem_id: str) -> int:
        """How many consecutive samples (0, 1, ...) this problem already has."""
        have = self.rows.get(problem_id, {})
        n = 0
        while n in have:
            n += 1
        return n

    def append(self, rows: list[dict]):
        """Write rows and flush them to disk before returning."""
        with open(self.path, "a", encoding="utf-8") as f:
            for row in rows:
                row = dict(row, settings=self.fingerprint, fingerprint=self.key)
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                self.rows.setdefault(str(row["problem_id"]), {})[int(row["sample_index"])] = row
            f.flush()
            os.fsync(f.fileno())

    def scores(self, problem_ids: list[str], k: int) -> dict[str, list[float]]:
        """The first k scores of each problem (problems must have them)."""
        out = {}
        for pid in problem_ids:
            have = self.rows.get(pid, {})
            missing = [i for i in range(k) if i not in have]
            if missing:
                raise ValueError(f"{self.path}: problem {pid!r} lacks samples {missing}")
            out[pid] = [float(have[i]["score"]) for i in range(k)]
        return out

    def errors(self, problem_ids: list[str], k: int) -> list[dict]:
        """The cached rows of the first k samples of each problem that ended with an error, in problem order."""
        return [self.rows[pid][i] for pid in problem_ids for i in range(k)
                if self.rows.get(pid, {}).get(i, {}).get("error")]


def read_run(run_dir: str | os.PathLike) -> dict:
    """A run's results.json; for a folder with only per-benchmark results (a checkpoint evaluated by `curves`),
    the run is assembled from `<benchmark>/results.json`."""
    path = Path(run_dir) / RESULTS_FILE
    if path.is_file():
        return read_json_state(path, "eval run's results", RERUN_EVAL)
    per_benchmark = sorted(Path(run_dir).glob(f"*/{RESULTS_FILE}"))
    if not per_benchmark:
        raise FileNotFoundError(f"{path} not found: is {run_dir} an eval run directory (made by `profit-rl eval`)?")
    return {"benchmarks": {p.parent.name: read_json_state(p, "benchmark's results", RERUN_EVAL) for p in per_benchmark}}


# the way out of an unreadable results.json: the samples are cached, so a rerun only summarizes them again
RERUN_EVAL = "Rerun the command that wrote it (its samples are cached: only the results are computed again)."


def ci_text(ci) -> str:
    """A confidence interval as markdown percentages: `[lo%, hi%]`."""
    return f"[{md.pct(ci[0])}, {md.pct(ci[1])}]"


def markdown_table(run: dict) -> str:
    """The protocol line first (evals.protocols.header), then one row per benchmark (Avg@k, Pass@k with 95% CIs,
    samples that errored), then the average over benchmarks."""
    lines = []
    if run.get("protocol"):
        from .protocols import header

        lines = [header(run["protocol"], run.get("not_comparable_because", [])), ""]
    if run.get("responses"):
        lines += [f"Responses scored from {md.code(run['responses'])} (no generation)", ""]
    else:
        lines += [
            f"Model: {md.code(run.get('model'))} (backend: {md.text(run.get('backend'))})  ",
            f"Settings: {md.code(json.dumps(run.get('settings', {}), sort_keys=True))}",
            "",
        ]
    lines += [
        "| Benchmark | k | Problems | Avg@k | 95% CI | Pass@k | 95% CI | Errors (scored 0) | Max new tokens |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, s in run["benchmarks"].items():
        lines.append(
            f"| {md.text(s.get('title', name))} | {s['k']} | {s['n_problems']} | {md.pct(s['avg_at_k'])}"
            f" | {ci_text(s['avg_at_k_ci'])} | {md.pct(s['pass_at_k'])} | {ci_text(s['pass_at_k_ci'])}"
            f" | {s.get('n_errors', 0)}"
            f" | {(s.get('settings') or {}).get('max_new_tokens', '-')} |"
        )
    avg = run.get("average")
    if avg and len(run["benchmarks"]) > 1:
        lines.append(
            f"| **Average ({len(avg['benchmarks'])})** | | | {md.pct(avg['avg_at_k'])} | {ci_text(avg['avg_at_k_ci'])}"
            f" | {md.pct(avg['pass_at_k'])} | {ci_text(avg['pass_at_k_ci'])} | | |"
        )
    lines.append("")
    for name, s in run["benchmarks"].items():  # a benchmark's own metrics (IFEval's four reference metrics)
        if s.get("own_metrics"):
            own = ", ".join(f"{metric} {md.pct(value)}" for metric, value in s["own_metrics"].items())
            lines += [f"{md.text(s.get('title', name))} (mean over the k samples): {own}", ""]
    lines.append("Avg@k: mean score over k samples; Pass@k: unbiased estimator (Chen et al. 2021); "
                 "CIs: 95% bootstrap over problems. Values in %.")
    metrics = {s.get("title", name): s["metric"] for name, s in run["benchmarks"].items()
               if s.get("metric") not in (None, "accuracy")}
    if metrics:
        lines.append("Per-sample score where it is not accuracy: "
                     + "; ".join(f"{title}: {metric}" for title, metric in metrics.items()) + ".")
    return "\n".join(lines) + "\n"
