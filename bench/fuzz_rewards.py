"""Fuzz the reward scorer: >= 200 adversarial completions, none may take longer than the deadline + 0.5 s, none may
crash the caller.

    python bench/fuzz_rewards.py [--timeout 2.0] [--workers N] [--seed 0]

The corpus is generated deterministically from `--seed`: exponent and factorial towers, huge integers, deep nested
braces / fractions / roots, 1 MB completions, huge sums, products and powers to expand, large matrices and sets,
malformed and random LaTeX, control characters. Each item is scored against a plain gold by `VerifierPool.score`
(as the GRPO reward does). Prints per-family counts (timeouts, errors, slowest item) and exits 1 if any item took
longer than its deadline + 0.5 s, 0 otherwise.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SLACK_S = 0.5


def boxed(s: str) -> str:
    return f"Some reasoning first. So the final answer is $\\boxed{{{s}}}$."


def corpus(seed: int = 0) -> list[tuple[str, str, str]]:
    """(family, gold, completion) triples."""
    rng = random.Random(seed)
    items: list[tuple[str, str, str]] = []

    def add(family, completion, gold="1"):
        items.append((family, gold, completion))

    for base in range(2, 10):  # exponent towers: CPython big-int power in one C call
        for height in (4, 5, 6):
            add("tower", boxed("^{".join([str(base)] * height) + "}" * (height - 1)))
    for n in (10, 100, 1000):
        add("tower", boxed(f"{n}^{{{n}^{{{n}}}}}"))
        add("factorial", boxed(f"({n}^{{{n}}})!"))
        add("factorial", boxed(f"{n}!!!!"))
        add("factorial", boxed(f"(({n}!)!)!"))
    add("factorial", boxed("\\Gamma(10^{100})"))
    add("factorial", boxed("\\binom{10^{20}}{10^{10}}"))
    for digits in (500, 1999, 2500, 100_000):  # huge literals (over MAX_ANSWER_CHARS: scored 0 without sympy)
        add("huge-integer", boxed("9" * digits), gold="9" * min(digits, 50))
        add("huge-integer", boxed("0." + "3" * digits), gold="\\frac{1}{3}")
    for depth in (50, 200, 1000, 5000):  # deep nesting
        add("nested-braces", boxed("{" * depth + "1" + "}" * depth))
        add("nested-frac", boxed("\\frac{1}{" * depth + "2" + "}" * depth))
        add("nested-sqrt", boxed("\\sqrt{" * depth + "2" + "}" * depth))
        add("nested-parens", boxed("(" * depth + "1" + ")" * depth))
        add("unclosed", "\\boxed{" * depth)
    for size in (1 << 20, 3 << 20):  # 1 MB and 3 MB completions
        add("long-completion", "x" * size + boxed("1"))
        add("long-completion", boxed("1") + "y" * size)
        add("long-completion", ("\\boxed{" + "1}" * 2) * (size // 10))
    for bound in ("10^{10}", "10^{100}", "10^{10^{10}}"):  # big symbolic work
        add("big-sum", boxed(f"\\sum_{{k=1}}^{{{bound}}} k^k"))
        add("big-sum", boxed(f"\\prod_{{k=1}}^{{{bound}}} k"))
        add("big-sum", boxed(f"\\lim_{{n\\to\\infty}} (1+1/n)^{{{bound}}}"))
    for exponent in (100, 1000, 10000):
        add("expand", boxed(f"(x+1)^{{{exponent}}}"), gold="(1+x)^{%d}" % exponent)
        add("expand", boxed(f"(a+b+c)^{{{exponent // 10}}}"))
        add("expand", boxed(f"x^{{{exponent}}} - 1 = 0"), gold="x=1")
        add("expand", boxed(f"\\int_0^1 x^{{{exponent}}} e^{{x^x}} dx"))
    for n in (10, 30, 60):
        entries = " \\\\ ".join(" & ".join(f"x_{{{i}{j}}}" for j in range(n)) for i in range(n))
        add("matrix", boxed(f"\\det\\begin{{pmatrix}}{entries}\\end{{pmatrix}}"))
        add("matrix", boxed(f"\\begin{{pmatrix}}{entries}\\end{{pmatrix}}^{{{n}}}"))
        add("set", boxed("\\{" + ", ".join(str(rng.randint(0, 10**6)) for _ in range(n * 10)) + "\\}"),
            gold="\\{1, 2\\}")
        add("set", boxed(" \\cup ".join(f"[{k}, {k}.5)" for k in range(n * 5))), gold="[0, 1)")
    latex_tokens = ["\\frac", "{", "}", "^", "_", "\\sqrt", "[", "]", "(", ")", "\\left(", "\\right)", "\\begin{pmatrix}",
                    "\\end{matrix}", "&", "\\\\", "x", "2", "\\pi", "\\infty", "=", "\\le", ",", "\\{", "\\}", "$",
                    "\\text{", "\\boxed{", "!", "\\cdot", "\\int", "\\sum", "e^", "\\ln", "%", "#", "\\", "\\mathbb{R}"]
    for k in range(60):  # random LaTeX token soup: malformed in every way
        length = rng.choice([3, 10, 40, 200, 800])
        add("random-latex", boxed("".join(rng.choice(latex_tokens) for _ in range(length))))
    for k in range(20):  # random bytes and control characters
        length = rng.choice([5, 50, 500])
        add("garbage", boxed("".join(chr(rng.randint(0, 0x2FFF)) for _ in range(length))))
    malformed = ["\\frac{1}{}", "\\frac{}{}", "\\sqrt[}{2}", "\\begin{pmatrix} 1 & 2 \\\\ 3 \\end{matrix}",
                 "\\left( 1, 2 \\right.", ")(][", "1/0", "0/0", "\\infty - \\infty", "0^0", "\\log 0",
                 "x = y = z = ", "=", "\\\\\\\\", "\\text{}", "\\boxed{}", "\\frac{1}{2", "2^", "_", "^{", "\x00",
                 "\\mathrm{undefined}", "\\operatorname{foo}(x)", "1e100000", "1e-100000", "nan", "NaN", "-oo",
                 "\\tan(\\pi/2)", "\\sin^{-1}(2)", "i^{i^{i^{i}}}", "e^{e^{e^{e^{e}}}}", "\\pi^{\\pi^{\\pi^{\\pi}}}"]
    for m in malformed:
        add("malformed", boxed(m))
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=2.0, help="per-item deadline, seconds")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from profit_rl.rewards.pool import VerifierPool

    items = corpus(args.seed)
    families = defaultdict(list)
    for i, (family, _, _) in enumerate(items):
        families[family].append(i)
    with VerifierPool(num_workers=args.workers, timeout=args.timeout) as pool:
        print(f"{len(items)} adversarial completions in {len(families)} families; deadline {args.timeout:g} s; "
              f"{pool.num_workers} workers")
        per_item_s, per_item_outcome = [], []
        start = time.perf_counter()
        # One item per call: each item's own wall time as the caller sees it (queueing excluded, kill included).
        for family, gold, completion in items:
            scores, stats = pool.score([gold], [completion])
            per_item_s.append(stats.max_item_seconds)
            per_item_outcome.append("timeout" if stats.timeouts else "error" if stats.errors else "ok")
        serial_s = time.perf_counter() - start
        start = time.perf_counter()
        batch_scores, batch_stats = pool.score([g for _, g, _ in items], [c for _, _, c in items])
        batch_s = time.perf_counter() - start
        pids_alive = len(pool.worker_pids())
    print(f"{'family':<16}{'items':>6}{'timeouts':>10}{'errors':>8}{'slowest s':>11}")
    for family, indices in families.items():
        slowest = max(per_item_s[i] for i in indices)
        timeouts = sum(per_item_outcome[i] == "timeout" for i in indices)
        errors = sum(per_item_outcome[i] == "error" for i in indices)
        print(f"{family:<16}{len(indices):>6}{timeouts:>10}{errors:>8}{slowest:>11.2f}")
    worst = max(per_item_s)
    over = [i for i, s in enumerate(per_item_s) if s > args.timeout + SLACK_S]
    print(f"one at a time: {serial_s:.1f} s; as one batch: {batch_s:.1f} s "
          f"({batch_stats.timeouts} timeouts, {batch_stats.errors} errors, slowest item {batch_stats.max_item_seconds:.2f} s); "
          f"{pids_alive} workers alive after")
    print(f"slowest item {worst:.2f} s vs deadline {args.timeout:g} s + {SLACK_S} s: "
          f"{'PASS' if not over and batch_stats.max_item_seconds <= args.timeout + SLACK_S else 'FAIL'}"
          f"{'' if not over else f' ({len(over)} items over: {[items[i][0] for i in over][:5]})'}")
    return 0 if not over and batch_stats.max_item_seconds <= args.timeout + SLACK_S else 1


if __name__ == "__main__":
    sys.exit(main())
