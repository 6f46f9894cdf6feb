"""The math reward against plain math-verify on Math-Verify's own test cases (tests/fixtures/math_verify_cases.jsonl).

    python bench/math_verify_parity.py [--workers N] [--timeout S]

Each case is (gold, prediction, expected verdict). Printed: how many verdicts are right for
  1. plain math-verify with its default settings: `verify(parse(gold), parse(pred))`, in this process;
  2. TRL's own `trl.rewards.accuracy_reward`, called on `\\boxed{pred}` with the gold as `solution`;
  3. our `accuracy_reward`, called the same way (the shared pool: worker processes, hard deadline per item);
then every case where 1 and 3 disagree, with the expected verdict, and our None count (the issue's acceptance: 3 is
right at least as often as 1, and never None).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CASES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "math_verify_cases.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=None, help="reward workers (default: one per core)")
    parser.add_argument("--timeout", type=float, default=None, help="per-item deadline in s (default: the reward's)")
    args = parser.parse_args()
    logging.getLogger("math_verify").setLevel(logging.ERROR)

    from math_verify import parse, verify
    from trl.rewards import accuracy_reward as trl_accuracy_reward

    from profit_rl.rewards import accuracy_reward
    from profit_rl.rewards.pool import VerifierPool

    rows = [json.loads(line) for line in CASES.read_text(encoding="utf-8").splitlines()]
    golds, preds = [r["gold"] for r in rows], [r["pred"] for r in rows]
    expected = [float(r["expected"]) for r in rows]
    completions = [[{"role": "assistant", "content": "\\boxed{" + p + "}"}] for p in preds]

    started = time.perf_counter()
    plain = [float(verify(parse(g), parse(p))) for g, p in zip(golds, preds)]
    t_plain = time.perf_counter() - started
    started = time.perf_counter()
    trl = trl_accuracy_reward(completions, golds)
    t_trl = time.perf_counter() - started
    settings = {k: v for k, v in (("num_workers", args.workers), ("timeout", args.timeout)) if v is not None}
    with VerifierPool(**settings).start() as pool:
        logged = {}
        started = time.perf_counter()
        ours = accuracy_reward(completions, solution=golds, pool=pool, log_metric=lambda k, v: logged.__setitem__(k, v))
        t_ours = time.perf_counter() - started
        workers = pool.num_workers

    def right(scores):
        return sum(s == e for s, e in zip(scores, expected))

    n = len(rows)
    print(f"Math-Verify's own test cases: {n} ({CASES.relative_to(CASES.parents[2])})")
    print(f"  plain math-verify (default settings)  right {right(plain)}/{n}   {t_plain:6.1f} s, one process")
    print(f"  TRL accuracy_reward on \\boxed{{pred}}   right {right(trl)}/{n}   {t_trl:6.1f} s, one process "
          f"(None: {sum(s is None for s in trl)})")
    print(f"  our accuracy_reward on \\boxed{{pred}}   right {right(ours)}/{n}   {t_ours:6.1f} s, {workers} workers "
          f"(None: {sum(s is None for s in ours)}, timeouts: {logged['rewards/timeouts']:.0f}, "
          f"errors: {logged['rewards/errors']:.0f})")
    disagree = [i for i in range(n) if ours[i] != plain[i]]
    print(f"Disagreements, ours vs plain math-verify: {len(disagree)}")
    for i in disagree:
        who = "ours" if ours[i] == expected[i] else "plain" if plain[i] == expected[i] else "neither"
        print(f"  #{i} {rows[i]['source']}: expected {expected[i]:.0f}, plain {plain[i]:.0f}, ours {ours[i]}, "
              f"right: {who}")
        print(f"      gold {rows[i]['gold'][:100]!r}")
        print(f"      pred {rows[i]['pred'][:100]!r}")
    wrong_both = [i for i in range(n) if ours[i] != expected[i] and plain[i] != expected[i]]
    print(f"Wrong for both: {len(wrong_both)} {wrong_both}")


if __name__ == "__main__":
    main()
