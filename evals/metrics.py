"""Avg@k, unbiased Pass@k, bootstrap confidence intervals and paired differences. Pure functions, no I/O.

Conventions used throughout `evals`:
- A sample's score is a float in [0, 1]; a sample is *correct* when its score is 1 (full credit).
- Avg@k of a problem is the mean score of its first k samples; Avg@k of a benchmark is the mean over problems.
- Pass@k of a problem with n samples, c of them correct, is Chen et al. (2021)'s unbiased estimator
  1 - C(n-c, k) / C(n, k); Pass@k of a benchmark is the mean over problems.
- Confidence intervals resample *problems* (not samples), since problems are the unit the benchmark draws.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

DEFAULT_BOOTSTRAP = 2000
DEFAULT_CONFIDENCE = 0.95


def is_correct(score: float) -> bool:
    """Full credit counts as correct for Pass@k (scores are 0/1 for every benchmark here; partial credit never passes)."""
    return score >= 1.0 - 1e-9


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased Pass@k estimator (Chen et al. 2021): probability that at least one of k samples, drawn without
    replacement from n of which c are correct, is correct: 1 - C(n-c, k) / C(n, k).

    Computed as 1 - prod_{i=n-c+1}^{n} (1 - k/i), which never forms the huge binomials (n=200, k=100 overflows floats
    when done naively) and is exact up to float rounding.
    """
    for name, value in (("n", n), ("c", c), ("k", k)):
        if int(value) != value or value < 0:
            raise ValueError(f"pass_at_k: {name} must be a non-negative integer, got {value!r}")
    n, c, k = int(n), int(c), int(k)
    if k == 0:
        raise ValueError("pass_at_k: k must be >= 1")
    if k > n:
        raise ValueError(
            f"pass_at_k: k={k} is larger than the number of samples n={n}; Pass@k needs at least k samples per "
            f"problem (sample with k >= {k}, or report a smaller k)"
        )
    if c > n:
        raise ValueError(f"pass_at_k: c={c} correct samples out of n={n} is impossible")
    if n - c < k:  # every k-subset contains a correct sample
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=np.float64)))


def avg_at_k(scores_per_problem: Sequence[Sequence[float]]) -> float:
    """Mean score over samples, averaged over problems (each problem weighs the same whatever its sample count)."""
    if len(scores_per_problem) == 0:
        raise ValueError("avg_at_k: no problems")
    return float(np.mean([problem_avg(scores) for scores in scores_per_problem]))


def problem_avg(scores: Sequence[float]) -> float:
    """One problem's mean score over its samples; a problem with no samples is an error, not a 0."""
    if len(scores) == 0:
        raise ValueError("avg_at_k: a problem has no samples")
    return float(np.mean(scores))


def problem_pass(scores: Sequence[float], k: int) -> float:
    """One problem's unbiased Pass@k estimate from all its samples (`pass_at_k`), a sample counting as correct by
    `is_correct`."""
    return pass_at_k(len(scores), sum(is_correct(s) for s in scores), k)


def mean_pass_at_k(scores_per_problem: Sequence[Sequence[float]], k: int) -> float:
    """Pass@k averaged over problems (each problem weighs the same); no problems is an error."""
    if len(scores_per_problem) == 0:
        raise ValueError("pass_at_k: no problems")
    return float(np.mean([problem_pass(scores, k) for scores in scores_per_problem]))


def bootstrap_ci(
    groups: Sequence[Sequence[float]] | Sequence[float],
    n_boot: int = DEFAULT_BOOTSTRAP,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap CI of a mean over problems.

    `groups` is either one list of per-problem values (one benchmark) or several lists (several benchmarks); with
    several, each replicate resamples every benchmark's problems independently and takes the mean of the benchmark
    means, which is the paper's average column with each benchmark weighing the same.
    """
    if len(groups) == 0:
        raise ValueError("bootstrap_ci: no values")
    if not isinstance(groups[0], (Sequence, np.ndarray)):
        groups = [groups]  # a single benchmark
    arrays = [np.asarray(g, dtype=np.float64) for g in groups]
    if any(a.size == 0 for a in arrays):
        raise ValueError("bootstrap_ci: a benchmark has no problems")
    rng = np.random.default_rng(seed)
    replicates = np.zeros(n_boot)
    for values in arrays:
        idx = rng.integers(0, values.size, size=(n_boot, values.size))
        replicates += values[idx].mean(axis=1)
    replicates /= len(arrays)
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(replicates, [alpha, 1.0 - alpha])
    return float(low), float(high)


def paired_differences(a: Mapping[str, float], b: Mapping[str, float]) -> list[float]:
    """Per-problem b - a over the problems both runs scored (an empty overlap is an error, not a zero)."""
    shared = [pid for pid in a if pid in b]
    if not shared:
        raise ValueError("paired difference: the two runs share no problem ids")
    return [b[pid] - a[pid] for pid in shared]


def paired_difference(
    a: Mapping[str, float] | Sequence[Mapping[str, float]],
    b: Mapping[str, float] | Sequence[Mapping[str, float]],
    n_boot: int = DEFAULT_BOOTSTRAP,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> dict:
    """Mean of b - a over shared problems with a paired bootstrap CI (problems resampled jointly for both models,
    which is much tighter than two independent CIs since problem difficulty cancels).

    `a` and `b` map problem id -> per-problem value (Avg@k or Pass@k of that problem), or are lists of such maps, one
    per benchmark, in which case the difference is of the mean of benchmark means (the average column).
    """
    if isinstance(a, Mapping):
        a, b = [a], [b]
    if len(a) != len(b):
        raise ValueError("paired difference: both runs need the same benchmarks")
    diffs = [paired_differences(x, y) for x, y in zip(a, b)]
    delta = float(np.mean([np.mean(d) for d in diffs]))
    low, high = bootstrap_ci(diffs, n_boot=n_boot, confidence=confidence, seed=seed)
    return {"delta": delta, "ci": [low, high], "n_problems": sum(len(d) for d in diffs)}


def summarize(
    scores_per_problem: Mapping[str, Sequence[float]],
    k: int,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> dict:
    """Avg@k and Pass@k of one benchmark with bootstrap CIs, plus the per-problem values compare/curves need."""
    if not scores_per_problem:
        raise ValueError("summarize: no problems were scored")
    ids = list(scores_per_problem)
    avgs = [problem_avg(scores_per_problem[pid]) for pid in ids]
    passes = [problem_pass(scores_per_problem[pid], k) for pid in ids]
    return {
        "k": k,
        "n_problems": len(ids),
        "n_samples": int(sum(len(s) for s in scores_per_problem.values())),
        "avg_at_k": float(np.mean(avgs)),
        "avg_at_k_ci": list(bootstrap_ci(avgs, n_boot=n_boot, seed=seed)),
        "pass_at_k": float(np.mean(passes)),
        "pass_at_k_ci": list(bootstrap_ci(passes, n_boot=n_boot, seed=seed)),
        # Pass@j for j = 1, 2, 4, ... up to k from the same samples (the unbiased estimator allows any j <= n)
        "pass_at": {str(j): mean_pass_at_k([scores_per_problem[pid] for pid in ids], j)
                    for j in sorted({2**e for e in range(k.bit_length()) if 2**e <= k} | {k})},
        "per_problem": {pid: {"avg": a, "pass": p} for pid, a, p in zip(ids, avgs, passes)},
    }


def average_over_benchmarks(summaries: Mapping[str, dict], n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0) -> dict:
    """The paper's Avg column: the unweighted mean over benchmarks of Avg@k and of Pass@k, with a bootstrap CI that
    resamples problems within each benchmark."""
    if not summaries:
        raise ValueError("average_over_benchmarks: no benchmarks")
    out = {"benchmarks": list(summaries)}
    for metric, field in (("avg_at_k", "avg"), ("pass_at_k", "pass")):
        groups = [[p[field] for p in s["per_problem"].values()] for s in summaries.values()]
        out[metric] = float(np.mean([s[metric] for s in summaries.values()]))
        out[f"{metric}_ci"] = list(bootstrap_ci(groups, n_boot=n_boot, seed=seed))
    return out
