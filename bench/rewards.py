"""Reward scoring speed: the deadline pool against plain single-process math-verify, from one run.

    python bench/rewards.py [--data ../shared/data/math500/test.jsonl] [--workers N] [--repeat 2]

Workload: the 500 MATH-500 reference solutions scored against their own answers (every item should score 1.0),
measured in steady state: each scorer first scores one half (warm-up), then the other half is timed; both halves
are timed that way and summed. Every timing runs in a child forked from this process after `warm_up()` only, so every
scorer starts from the state the pool's fork server gives its workers: math-verify's parsers (ANTLR's decision
cache above all) learn from every input they see, and a process that has scored the timed items before would time a
warmer parser. Printed:
  1. plain math-verify, one process, the usual call (`verify(parse(gold), parse(solution))`, its own signal timeouts);
  2. our per-item function in one process, every item through sympy (`score_answer(..., shortcut=False)`);
  3. the pool, every item through sympy (same work as 2, in N workers, with the hard deadline);
  3b. the same, one item per message (`chunk=1`: what guided chunks save);
  4. the pool as the reward uses it (equal normalised strings short-cut sympy);
  and the ratios of 3 and 4 to 1 (items/s), next to the machine's ceiling for N processes at that moment. Then the
  pool's added latency on one batch of 64 completions: pool wall time minus the in-process time of the same 64 items
  divided by N (what perfect parallelism would take), and the pure dispatch cost (64 items that short-cut sympy).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "math500" / "test.jsonl"


def plain_math_verify(golds: list[str], solutions: list[str]) -> list[float]:
    from math_verify import parse, verify

    return [float(verify(parse("$" + g + "$"), parse(s))) for g, s in zip(golds, solutions)]


def in_process(golds: list[str], solutions: list[str]) -> list[float]:
    from profit_rl.rewards.verify import score_answer

    return [score_answer(g, s, shortcut=False)[1] for g, s in zip(golds, solutions)]


def in_fresh_process(fn, *args):
    """fn(*args) in a child forked from this process, which has run `warm_up()` and scored nothing else."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            data = pickle.dumps(fn(*args))
        except BaseException as exc:  # report it to the parent, which raises it
            data = pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))
        with os.fdopen(write_end, "wb") as f:
            f.write(data)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        result = pickle.loads(f.read())
    os.waitpid(pid, 0)
    if isinstance(result, BaseException):
        raise result
    return result


def _time_once(make_scorer, warm: tuple, timed: tuple):
    scorer, close = make_scorer()
    scorer(*warm)
    start = time.perf_counter()
    out = scorer(*timed)
    seconds = time.perf_counter() - start
    close()
    return seconds, out


def timed_after_warmup(make_scorer, warm: tuple, timed: tuple, repeat: int):
    """Best-of-`repeat` wall time of scoring `timed` with a scorer that has just scored `warm`, each repeat in a fresh
    child process (a pool is started afresh in it)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        seconds, out = in_fresh_process(_time_once, make_scorer, warm, timed)
        best = min(best, seconds)
    return best, out


def _burn(n: int) -> float:
    start, x = time.perf_counter(), 0
    for i in range(n):
        x += i * i
    return time.perf_counter() - start


def parallel_capacity(workers: int, n: int = 3_000_000) -> float:
    """How much faster `workers` processes finish `workers` pure-Python loops than one process does: the ceiling any
    process pool can reach on this machine right now (below `workers` when cores are shared or throttled)."""
    import multiprocessing

    one = _burn(n)
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        start = time.perf_counter()
        pool.map(_burn, [n] * workers)
        many = time.perf_counter() - start
    return workers * one / many


def in_process_scorer(fn):
    return lambda: (fn, lambda: None)


def pool_scorer(**kwargs):
    from profit_rl.rewards.pool import VerifierPool

    def make():
        pool = VerifierPool(**kwargs).start()
        return (lambda golds, completions: pool.score(golds, completions)[0]), pool.close

    return make


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="MATH-500 jsonl (problem, solution, answer)")
    parser.add_argument("--workers", type=int, default=None, help="pool workers (default: cores on this machine)")
    parser.add_argument("--repeat", type=int, default=3, help="best of N timings")
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args(argv)

    import logging

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    from profit_rl.rewards.pool import default_num_workers
    from profit_rl.rewards.verify import warm_up

    rows = [json.loads(line) for line in open(args.data)]
    golds, solutions = [r["answer"] for r in rows], [r["solution"] for r in rows]
    workers = args.workers or default_num_workers()
    n = len(rows)
    print(f"{n} MATH-500 reference solutions vs their answers; {workers} pool workers; "
          f"{len(os.sched_getaffinity(0))} cores; best of {args.repeat}")

    warm_up()
    capacity_before = parallel_capacity(workers)
    halves = [(slice(n // 2, n), slice(0, n // 2)), (slice(0, n // 2), slice(n // 2, n))]  # (warm-up, timed)
    scorers = {
        "plain": in_process_scorer(plain_math_verify),
        "inproc": in_process_scorer(in_process),
        "pool": pool_scorer(num_workers=workers, timeout=args.timeout, shortcut=False),
        "pool1": pool_scorer(num_workers=workers, timeout=args.timeout, shortcut=False, chunk=1),
        "reward": pool_scorer(num_workers=workers, timeout=args.timeout),
    }
    # The arms take turns within every repeat, so that a change in the machine's load falls on all of them.
    best = {(name, h): (float("inf"), None) for name in scorers for h in range(len(halves))}
    for _ in range(args.repeat):
        for h, (warm, timed) in enumerate(halves):
            for name, make in scorers.items():
                t, out = timed_after_warmup(make, (golds[warm], solutions[warm]), (golds[timed], solutions[timed]), 1)
                best[name, h] = min(best[name, h], (t, out), key=lambda pair: pair[0])
    seconds = {name: sum(best[name, h][0] for h in range(len(halves))) for name in scorers}
    scores = {name: [s for h in range(len(halves)) for s in best[name, h][1]] for name in scorers}
    t_plain, t_inproc, t_pool, t_fast = (seconds[k] for k in ("plain", "inproc", "pool", "reward"))
    plain_scores, inproc_scores, pool_scores, fast_scores = (scores[k] for k in ("plain", "inproc", "pool", "reward"))
    warm, batch = (golds[64:], solutions[64:]), (golds[:64], solutions[:64])
    t_inproc64, _ = timed_after_warmup(scorers["inproc"], warm, batch, args.repeat)
    t_pool64, _ = timed_after_warmup(scorers["pool"], warm, batch, args.repeat)
    t_dispatch64, _ = timed_after_warmup(scorers["reward"], warm, batch, args.repeat)

    capacity_after = parallel_capacity(workers)

    def line(name, seconds, scores):
        correct = sum(1 for s in scores if s == 1.0)
        print(f"  {name:<52} {n / seconds:8.1f} items/s  ({seconds:6.2f} s, {correct}/{n} scored 1.0)")

    print("throughput")
    line("1. plain math-verify, 1 process", t_plain, plain_scores)
    line("2. score_answer in-process, all through sympy", t_inproc, inproc_scores)
    line(f"3. VerifierPool x{workers}, all through sympy", t_pool, pool_scores)
    line("3b. the same, one item per message", seconds["pool1"], scores["pool1"])
    line(f"4. VerifierPool x{workers}, as the reward runs it", t_fast, fast_scores)
    print(f"  this machine's ceiling for {workers} processes (pure-Python loops), before and after the timings: "
          f"{capacity_before:.2f}x, {capacity_after:.2f}x")
    print(f"  ratio 3/1 (pool vs plain math-verify, same sympy work): {t_plain / t_pool:.2f}x "
          f"(one item per message: {t_plain / seconds['pool1']:.2f}x)")
    print(f"  ratio 3/2 (pool vs the same function in-process):        {t_inproc / t_pool:.2f}x")
    print(f"  ratio 4/1 (pool as used by the reward vs plain):          {t_plain / t_fast:.2f}x")
    ideal = t_inproc64 / workers
    print("latency, one batch of 64 completions")
    print(f"  in-process: {t_inproc64 * 1e3:7.1f} ms   pool: {t_pool64 * 1e3:7.1f} ms   "
          f"perfect {workers}-way split: {ideal * 1e3:7.1f} ms")
    print(f"  pool's added latency over a perfect split: {(t_pool64 - ideal) * 1e3:+.1f} ms; "
          f"pure dispatch cost (64 short-cut items): {t_dispatch64 * 1e3:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
