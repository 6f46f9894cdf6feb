"""Score MATH-500's own reference solutions as responses: the scorer should give 100% Avg@1. Lists every miss.

    .venv/bin/python bench/reference_solutions.py [--data-dir ../shared/data] [--output-dir outputs/eval/math500-reference]

It writes the 500 solutions as a --responses file (one row per problem: {"id", "completion"}) and runs exactly what a
user runs, `profit-rl eval --responses FILE --benchmarks math500 --k 1`, so the figure covers the whole scoring path:
rewards.answers.extract_answer (last box) -> rewards.pool (math-verify under a deadline) -> metrics.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's profit_rl, whatever is installed


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--output-dir", default="outputs/eval/math500-reference")
    p.add_argument("--benchmark", default="math500", choices=["math500", "gsm8k"],
                   help="gsm8k scores its reference solutions (ending in '#### N') the same way")
    args = p.parse_args()

    from profit_rl.evals import evaluate
    from profit_rl.evals.benchmarks import get_benchmark
    from profit_rl.core.io import read_file

    bench = get_benchmark(args.benchmark)
    rows = read_file(Path(args.data_dir) / bench.local_path)
    problems = bench.load(args.data_dir)  # ids and golds as the benchmark defines them, in file order
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    responses = out / "reference_responses.jsonl"
    with open(responses, "w", encoding="utf-8") as f:
        for problem, row in zip(problems, rows):
            solution = row["solution"] if args.benchmark == "math500" else row["answer"]
            f.write(json.dumps({"id": problem.id, "completion": solution}) + "\n")
    code = evaluate.main(["--responses", str(responses), "--benchmarks", args.benchmark, "--k", "1", "--data-dir", args.data_dir,
                     "--output-dir", str(out)])
    if code:
        raise SystemExit(code)
    summary = json.loads((out / args.benchmark / "results.json").read_text())
    samples = [json.loads(line) for line in (out / args.benchmark / "samples.jsonl").read_text().splitlines()]
    gold = {problem.id: problem.gold for problem in problems}
    misses = [s for s in samples if s["score"] < 1.0]
    print(f"{bench.title} reference solutions: Avg@1 = {100 * summary['avg_at_k']:.1f}% "
          f"({summary['n_problems'] - len(misses)}/{summary['n_problems']}), errors: {summary['n_errors']}")
    for s in misses:
        print(f"  miss {s['problem_id']}: gold {gold[s['problem_id']]!r}, extracted {s['extracted']!r}, error {s['error']}")
    # Negative control: each solution scored against the NEXT problem's gold must (almost always) fail; a scorer that
    # accepted anything would also print 100% above.
    by_id = {s["problem_id"]: s for s in samples}
    pairs = [(problems[(i + 1) % len(problems)], by_id[p.id]["completion"]) for i, p in enumerate(problems)]
    wrong = sum(score for _, score, _ in bench.score_many(pairs))
    print(f"control, solutions paired with the wrong problem: {100 * wrong / len(pairs):.1f}% "
          f"({int(wrong)}/{len(pairs)} coincidental matches)")


if __name__ == "__main__":
    main()
