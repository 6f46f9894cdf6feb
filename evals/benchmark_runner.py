"""Evaluate one benchmark: draw the samples the cache lacks, score each batch as it lands, summarize.

Used by `profit-rl eval` (evals.evaluate) and `profit-rl curves` (evals.curves). The sampler is built lazily, only when
some sample is missing, so re-running a finished evaluation loads no model at all.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from . import metrics
from .benchmarks.base import Benchmark, Problem
from profit_rl.core.identity import weights_identity
from profit_rl.core.io import DataError, InputError
from profit_rl.core.model_folders import base_model_identity
from .protocols import get_protocol
from .results import RESULTS_FILE, SAMPLES_FILE, SampleCache
from profit_rl.core.state import write_json_atomic
from .sampling import SamplingSettings

logger = logging.getLogger(__name__)


def model_identity(model: str) -> str:
    """Local checkpoints are identified by absolute path (so `cd` does not invalidate a cache), hub ids as given."""
    return str(Path(model).resolve()) if Path(model).exists() else model


def resolved_settings(benchmark: Benchmark, settings: SamplingSettings) -> SamplingSettings:
    """`settings` with the benchmark's own max_new_tokens where none was given (--max-new-tokens)."""
    return replace(settings, max_new_tokens=settings.max_new_tokens or benchmark.max_new_tokens)


def fingerprint(benchmark: Benchmark, model: str, settings: SamplingSettings) -> dict:
    """What decides a sample: the model (its path and its weights' content: new weights at the same path are another
    model, core.identity), the benchmark, its prompt and scorer, and the sampling settings."""
    return {"model": model_identity(model), "weights": weights_identity(model), "benchmark": benchmark.name,
            "protocol": benchmark.protocol,
            "prompt_version": benchmark.prompt_version, "scorer": benchmark.scorer, **settings.fingerprint()}


def problem_hash(problem: Problem) -> str:
    """A short digest of a problem's question and reference answer: two runs that scored problem `id` against
    different benchmark files (same ids, other content) are told apart by it."""
    text = json.dumps([problem.question, problem.gold], sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def score_rows(benchmark: Benchmark, pairs: list[tuple[Problem, str]], first_index: list[int]) -> list[dict]:
    """Cache rows for (problem, completion) pairs; sample indices start at first_index[i] per pair."""
    scored = benchmark.score_many(pairs)
    rows = []
    for (problem, completion), (extracted, score, error), index in zip(pairs, scored, first_index):
        if not error and not (isinstance(score, (int, float)) and 0.0 <= score <= 1.0):  # NaN fails this too
            score, error = 0.0, f"the scorer returned {score!r}, outside [0, 1]"
        if error:
            logger.warning("%s problem %s sample %d: scoring failed (scored 0): %s", benchmark.name, problem.id,
                           index, error)
        rows.append({
            "problem_id": problem.id,
            "sample_index": index,
            "completion": completion,
            "extracted": extracted,
            "score": score,
            "correct": metrics.is_correct(score),
            "error": error,
        })
    return rows


def run_benchmark(
    benchmark: Benchmark,
    problems: list[Problem],
    model: str,
    settings: SamplingSettings,
    k: int,
    out_dir: str | os.PathLike,
    sampler_factory: Callable[[], object],
    overwrite: bool = False,
    n_boot: int = metrics.DEFAULT_BOOTSTRAP,
) -> dict:
    """Sample what is missing (k per problem), score, write <out_dir>/<benchmark>/{samples.jsonl,results.json}."""
    if getattr(benchmark, "raw_prompt", False) and settings.chat_template:
        # its prompts are a base model's raw-text layout: inside the chat template they would be another benchmark
        raise InputError(f"{benchmark.name}: its prompts are raw text in the base model's own layout; run it with "
                        "--no-chat-template")
    settings = resolved_settings(benchmark, settings)
    bench_dir = Path(out_dir) / benchmark.name
    cache = SampleCache(bench_dir / SAMPLES_FILE, fingerprint(benchmark, model, settings), overwrite=overwrite)

    # Problems that already have s samples need k - s more; group them by s so each group is one sample() call.
    by_start: dict[int, list[Problem]] = {}
    for problem in problems:
        have = cache.done(problem.id)
        if have < k:
            by_start.setdefault(have, []).append(problem)
    n_missing = sum((k - s) * len(group) for s, group in by_start.items())
    n_cached = len(problems) * k - n_missing
    if n_cached:
        logger.info("%s: %d of %d samples already in %s", benchmark.name, n_cached, len(problems) * k, cache.path)

    if by_start:
        sampler = sampler_factory()
        prompt_budget = get_protocol(benchmark.protocol).max_prompt_tokens
        for start, group in sorted(by_start.items()):
            # A prompt that fills the model's whole context, or exceeds the protocol's prompt budget, is not sampled:
            # its samples are recorded as empty, scored 0 and counted as errors, so the run goes on and the table says
            # how many there were. A cut prompt would be scored as if it were the benchmark's.
            unfit = [(p, sampler.context_error(benchmark.prompt(p), prompt_budget)) for p in group]
            unfit = [(p, reason) for p, reason in unfit if reason]
            if unfit:
                logger.warning("%s: %d of %d prompts do not fit the model's context or the prompt budget and score 0 "
                               "(first: problem %s, %s)", benchmark.name, len(unfit), len(group), unfit[0][0].id,
                               unfit[0][1])
                cache.append([{"problem_id": p.id, "sample_index": start + j, "completion": "", "extracted": None,
                               "score": 0.0, "correct": False, "error": reason}
                              for p, reason in unfit for j in range(k - start)])
                skip = {p.id for p, _ in unfit}
                group = [p for p in group if p.id not in skip]
                if not group:
                    continue
            prompts = [benchmark.prompt(p) for p in group]

            def on_batch(positions, completions, group=group, start=start):
                pairs, indices = [], []
                for problem, samples in zip([group[i] for i in positions], completions):
                    for j, completion in enumerate(samples):
                        pairs.append((problem, completion))
                        indices.append(start + j)
                cache.append(score_rows(benchmark, pairs, indices))

            # samples start..k-1 of each problem, each seeded by (problem id, sample index, seed): the same draws
            # whether this run is the first or resumes an interrupted one
            sampler.sample(prompts, k - start, settings, on_batch=on_batch, desc=f"{benchmark.name} (k={k})",
                           keys=[p.id for p in group], first_index=start)

    return summarize(benchmark, problems, cache, k, model, settings, bench_dir, n_boot=n_boot)


def summarize(benchmark, problems, cache: SampleCache, k: int, model: str, settings, bench_dir: Path,
              n_boot: int = metrics.DEFAULT_BOOTSTRAP) -> dict:
    """The benchmark's summary from the first k cached samples of each problem: Avg@k and Pass@k with bootstrap CIs, its
    own metrics, error and no-answer counts, and what compare and curves check before pairing runs (problem hashes, base
    model); also written to bench_dir/results.json."""
    ids = [p.id for p in problems]
    scores = cache.scores(ids, k)
    errors = cache.errors(ids, k)
    if errors:
        logger.warning("%s: %d of %d samples could not be sampled or scored and count as 0 (see 'error' in %s)",
                       benchmark.name, len(errors), len(ids) * k, cache.path)
    summary = metrics.summarize(scores, k, n_boot=n_boot)
    own = benchmark.own_metrics(problems, {pid: [cache.rows[pid][i] for i in range(k)] for pid in ids}, k)
    if own:
        summary["own_metrics"] = own
    summary.update(
        benchmark=benchmark.name,
        title=benchmark.title,
        protocol=benchmark.protocol,
        metric=benchmark.metric,
        model=model_identity(model) if model else None,
        weights=cache.fingerprint.get("weights"),
        settings=settings.to_dict() if hasattr(settings, "to_dict") else settings,
        n_errors=len(errors),
        n_no_answer=sum(1 for pid in ids for i in range(k) if cache.rows[pid][i].get("extracted") is None),
        samples=str(cache.path),
        # what `compare` and `curves` check before pairing two runs: the problems' content, the base model
        problem_hashes={p.id: problem_hash(p) for p in problems},
        base_model=base_model_identity(model) if model else None,
    )
    write_json_atomic(bench_dir / RESULTS_FILE, summary)
    return summary


def score_responses(
    benchmark: Benchmark,
    problems: list[Problem],
    responses: dict[str, list[str]],
    out_dir: str | os.PathLike,
    k: int | None,
    source: str,
    n_boot: int = metrics.DEFAULT_BOOTSTRAP,
) -> dict:
    """Score completions produced elsewhere (no generation). Problems without responses are left out, loudly."""
    by_id = {p.id: p for p in problems}
    unknown = [pid for pid in responses if pid not in by_id]
    if unknown:
        raise DataError(source, f"expected problem ids of {benchmark.title}, found {len(unknown)} others (first: "
                        f"{unknown[:3]})", field="problem_id")
    scored_problems = [p for p in problems if p.id in responses]
    if not scored_problems:
        raise DataError(source, f"expected responses for {benchmark.title}, found none")
    if len(scored_problems) < len(problems):
        logger.warning("%s: %d of %d problems have no response in %s; metrics cover the %d that do",
                       benchmark.name, len(problems) - len(scored_problems), len(problems), source,
                       len(scored_problems))
    n_min = min(len(responses[p.id]) for p in scored_problems)
    k = k or n_min
    if k > n_min:
        short = next(p.id for p in scored_problems if len(responses[p.id]) < k)
        raise DataError(source, f"expected --k {k} responses per problem, found {len(responses[short])} for problem "
                        f"{short!r}")
    bench_dir = Path(out_dir) / benchmark.name
    cache = SampleCache(bench_dir / SAMPLES_FILE,
                        {"responses": str(Path(source).resolve()), "benchmark": benchmark.name}, overwrite=True)
    pairs, indices = [], []
    for problem in scored_problems:
        for i, completion in enumerate(responses[problem.id][:k]):
            pairs.append((problem, completion))
            indices.append(i)
    for start in range(0, len(pairs), 512):  # score in slices so progress is visible on long files
        cache.append(score_rows(benchmark, pairs[start : start + 512], indices[start : start + 512]))
    return summarize(benchmark, scored_problems, cache, k, None, {"responses": str(source)}, bench_dir, n_boot=n_boot)
