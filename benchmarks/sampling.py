"""Grouped sampling vs k separate calls, transformers backend on CPU, tiny Qwen3: the ratio from one run.

    .venv/bin/python benchmarks/sampling.py [--prompts 32] [--k 8] [--batch-size 8] [--new-tokens 256] [--threads N]

Both arms generate exactly the same number of tokens (min_new_tokens = max_new_tokens, so an early EOS cannot
favour either) for the same 32 MATH-500 prompts (synthetic prompts if ../shared/data is absent):
- grouped:  one call per group of `batch_size` prompts returning k samples each: what TransformersSampler does
            (each prompt prefilled once, its KV cache copied k times, then one batched decode of batch_size*k rows)
- separate: k calls per group, each returning one sample per prompt (num_return_sequences=1)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "math500" / "test.jsonl"


def load_prompts(n: int) -> list[list[dict]]:
    from evals.benchmarks import get_benchmark

    if DATA.is_file():
        bench = get_benchmark("math500")
        problems = bench.load(DATA)[:n]
        return [bench.prompt(p) for p in problems]
    return [[{"role": "user", "content": f"Compute {i} + {i * 7}. Put the answer in \\boxed{{}}."}] for i in range(n)]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prompts", type=int, default=32)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=8, help="prompts per group")
    p.add_argument("--new-tokens", type=int, default=256, help="tokens per sample (evals generate thousands; 64 understates decode)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice; on a shared, loaded machine 1 is steadier)")
    p.add_argument("--model", default=None, help="default: a freshly built tiny Qwen3 (profit_rl.embedded.tiny)")
    args = p.parse_args()

    import torch

    from evals.sampling import SamplingSettings, TransformersSampler

    if args.threads:
        torch.set_num_threads(args.threads)

    model = args.model
    if model is None:
        from profit_rl.embedded.tiny import build_tiny_model

        model = str(build_tiny_model(Path(tempfile.mkdtemp()) / "tiny", seed=0))
    settings = SamplingSettings(max_new_tokens=args.new_tokens, batch_size=args.batch_size)
    sampler = TransformersSampler(model, settings, device="cpu")
    # Groups of similar-length prompts, as TransformersSampler.sample forms them; both arms use the same groups.
    texts = sorted((sampler.render(m) for m in load_prompts(args.prompts)), key=lambda t: -len(sampler.tokenizer(t)["input_ids"]))
    groups = [texts[i : i + args.batch_size] for i in range(0, len(texts), args.batch_size)]
    fixed = dict(min_new_tokens=args.new_tokens)

    def grouped():
        for group in groups:
            sampler.generate(group, args.k, settings, **fixed)

    def separate():
        for group in groups:
            for _ in range(args.k):
                sampler.generate(group, 1, settings, **fixed)

    torch.manual_seed(0)
    sampler.generate(groups[0][:2], 2, settings, **fixed)  # warm-up (first-call allocations)
    timings = {}
    for name, fn in (("grouped", grouped), ("separate", separate)):
        start = time.perf_counter()
        fn()
        timings[name] = time.perf_counter() - start
    n_samples = args.prompts * args.k
    result = {
        "prompts": args.prompts, "k": args.k, "batch_size": args.batch_size, "new_tokens": args.new_tokens,
        "torch_threads": torch.get_num_threads(),
        "grouped_s": round(timings["grouped"], 2), "separate_s": round(timings["separate"], 2),
        "grouped_samples_per_s": round(n_samples / timings["grouped"], 1),
        "separate_samples_per_s": round(n_samples / timings["separate"], 1),
        "speedup": round(timings["separate"] / timings["grouped"], 2),
    }
    print(f"{n_samples} samples ({args.prompts} prompts x k={args.k}, {args.new_tokens} new tokens each, "
          f"groups of {args.batch_size} prompts, CPU, {torch.get_num_threads()} threads)")
    print(f"  grouped  (num_return_sequences={args.k}, {len(groups)} calls): {timings['grouped']:.2f} s")
    print(f"  separate (num_return_sequences=1, {len(groups) * args.k} calls): {timings['separate']:.2f} s")
    print(f"  speedup: {result['speedup']:.2f}x")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
