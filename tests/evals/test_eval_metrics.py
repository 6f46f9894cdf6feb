"""evals.metrics against exact combinatorics and hand-computed values."""

import math
import random

import numpy as np
import pytest

from profit_rl.evals import metrics


def exact_pass_at_k(n, c, k):
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def test_pass_at_k_matches_exact_combinatorics():
    cases = [(n, c, k) for n in range(1, 41) for c in range(0, n + 1) for k in range(1, n + 1)]
    rng = random.Random(0)
    cases += [(n, rng.randint(0, n), rng.randint(1, n)) for n in (64, 100, 128, 200, 256) for _ in range(200)]
    for n, c, k in cases:
        assert metrics.pass_at_k(n, c, k) == pytest.approx(exact_pass_at_k(n, c, k), abs=1e-12), (n, c, k)


def test_pass_at_k_edge_cases():
    assert metrics.pass_at_k(8, 0, 8) == 0.0
    assert metrics.pass_at_k(8, 8, 1) == 1.0
    assert metrics.pass_at_k(8, 1, 8) == 1.0  # n - c < k: every draw of 8 holds the correct one
    assert metrics.pass_at_k(10, 3, 1) == pytest.approx(0.3)  # pass@1 is the fraction correct
    # large n where the naive binomial ratio overflows a float
    assert 0.0 < metrics.pass_at_k(2000, 1, 1000) == pytest.approx(0.5)


@pytest.mark.parametrize("n, c, k", [(4, 1, 5), (0, 0, 1), (8, 9, 2), (8, 2, 0), (8, -1, 2), (8.5, 1, 2)])
def test_pass_at_k_rejects_bad_arguments(n, c, k):
    with pytest.raises(ValueError):
        metrics.pass_at_k(n, c, k)


def test_pass_at_k_error_names_k_and_n():
    with pytest.raises(ValueError, match=r"k=5 is larger than the number of samples n=4"):
        metrics.pass_at_k(4, 1, 5)


def test_avg_at_k_weighs_problems_equally():
    assert metrics.avg_at_k([[1, 0, 0, 0], [1, 1]]) == pytest.approx((0.25 + 1.0) / 2)
    with pytest.raises(ValueError):
        metrics.avg_at_k([])


def test_summarize_and_bootstrap():
    scores = {"a": [1, 0, 0, 0], "b": [0, 0, 0, 0], "c": [1, 1, 1, 1], "d": [0, 1, 0, 0]}
    s = metrics.summarize(scores, k=4, n_boot=500)
    assert s["avg_at_k"] == pytest.approx((0.25 + 0 + 1 + 0.25) / 4)
    assert s["pass_at_k"] == pytest.approx(3 / 4)
    lo, hi = s["avg_at_k_ci"]
    assert 0.0 <= lo <= s["avg_at_k"] <= hi <= 1.0 and hi - lo > 0.1
    assert s["per_problem"]["a"] == {"avg": 0.25, "pass": 1.0}
    assert list(s["pass_at"]) == ["1", "2", "4"] and s["pass_at"]["1"] == pytest.approx(s["avg_at_k"])
    assert s["pass_at"]["2"] == pytest.approx((0.5 + 0 + 1 + 0.5) / 4)  # 1 - C(3,2)/C(4,2) = 0.5 for one correct
    # a constant benchmark has a zero-width interval
    assert metrics.bootstrap_ci([0.5] * 20) == (0.5, 0.5)


def test_bootstrap_ci_covers_truth_about_95_percent():
    rng = np.random.default_rng(1)
    hits = 0
    for trial in range(200):
        values = rng.binomial(1, 0.3, size=100)
        lo, hi = metrics.bootstrap_ci(values, n_boot=400, seed=trial)
        hits += lo <= 0.3 <= hi
    assert 0.88 <= hits / 200 <= 0.99


def test_paired_difference():
    a = {"p1": 0.0, "p2": 0.5, "p3": 1.0, "p4": 0.25}
    b = {"p1": 0.5, "p2": 0.5, "p3": 1.0, "p4": 0.75, "extra": 1.0}
    d = metrics.paired_difference(a, b, n_boot=500)
    assert d["delta"] == pytest.approx(0.25) and d["n_problems"] == 4
    assert d["ci"][0] <= 0.25 <= d["ci"][1]
    same = metrics.paired_difference(a, a)
    assert same["delta"] == 0.0 and same["ci"] == [0.0, 0.0]
    with pytest.raises(ValueError, match="share no problem"):
        metrics.paired_difference({"x": 1.0}, {"y": 1.0})


def test_average_over_benchmarks_is_unweighted_mean():
    s1 = metrics.summarize({str(i): [1.0] for i in range(10)}, k=1, n_boot=100)
    s2 = metrics.summarize({str(i): [0.0] for i in range(90)}, k=1, n_boot=100)
    avg = metrics.average_over_benchmarks({"x": s1, "y": s2}, n_boot=100)
    assert avg["avg_at_k"] == pytest.approx(0.5) and avg["avg_at_k_ci"] == [0.5, 0.5]
