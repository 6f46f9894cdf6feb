"""Prompt lengths per benchmark and protocol, in tokens of a model's chat-template render.

    python bench/prompt_lengths.py --data-dir ../shared/data --model ../shared/models/qwen3-base-twin

Shows how far each benchmark's longest prompt is from the `paper` protocol's 4096-token prompt budget (a prompt over
it is not sampled; OpenCompass never cuts one in these configs). Needs a tokenizer only, no weights.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's profit_rl, whatever is installed


def main() -> None:
    from transformers import AutoTokenizer

    from profit_rl.evals.benchmarks import get_benchmark
    from profit_rl.evals.protocols import PROTOCOLS, get_protocol
    from profit_rl.evals.sampling import render_prompt

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--model", required=True, help="a folder or hub id with the tokenizer and its chat template")
    args = p.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    print(f"{'protocol':<8} {'benchmark':<10} {'prompts':>7} {'median':>7} {'max':>6}  budget")
    for name in PROTOCOLS:
        budget = get_protocol(name).max_prompt_tokens
        for bench_name in get_protocol(name).benchmarks:
            bench = get_benchmark(bench_name, name)
            texts = [render_prompt(tokenizer, bench.prompt(problem), opencompass=name == "paper")  # as the samplers do
                     for problem in bench.load(args.data_dir)]
            lengths = sorted(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])
            print(f"{name:<8} {bench_name:<10} {len(lengths):>7} {lengths[len(lengths) // 2]:>7} {lengths[-1]:>6}  "
                  f"{budget or '-'}")


if __name__ == "__main__":
    main()
