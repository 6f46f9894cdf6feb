"""Grouped sampling vs k separate calls, transformers backend on CPU, tiny Qwen3: the ratios from one run.

    .venv/bin/python bench/sampling.py [--prompts 32] [--k 8] [--batch-size 8] [--new-tokens 128] [--threads N]

Every arm generates exactly the same number of tokens (min_new_tokens = max_new_tokens, so an early EOS cannot
favour any) for the same 32 MATH-500 prompts (synthetic prompts if ../shared/data is absent), k=8 samples each:
- grouped:  one call per prompt group (a prompt's k samples): the prompt is prefilled once, its KV cache copied k
            times, then k rows decode together (TransformersSampler.generate; the row layout of num_return_sequences=k)
- separate: k calls per prompt, one sample each
- sampler:  what `profit-rl eval` does: `batch_size` length-sorted prompts per call, k samples each
- unshared: the same calls with each prompt sent k times, one sample each: the same rows and samples, but generate()
            prefills every row (what the shared prefill saves)
- unseeded: the same calls drawing from torch's global generator, as transformers' own sampling does (what seeding
            each sample by (problem, index, seed) costs)
Every arm but the last draws each sample from its own seeded generator, as `profit-rl eval` does.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's profit_rl, whatever is installed
DATA = REPO.parent / "shared" / "data" / "math500" / "test.jsonl"


def load_prompts(n: int) -> list[list[dict]]:
    from profit_rl.evals.benchmarks import get_benchmark

    if DATA.is_file():
        bench = get_benchmark("math500")
        problems = bench.load(DATA)[:n]
        return [bench.prompt(p) for p in problems]
    return [[{"role": "user", "content": f"Compute {i} + {i * 7}. Put the answer in \\boxed{{}}."}] for i in range(n)]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prompts", type=int, default=32)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=8, help="prompts per call in the eval-sampler arm")
    p.add_argument("--new-tokens", type=int, default=128, help="tokens per sample")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice; on a shared, loaded machine 1 is steadier)")
    p.add_argument("--model", default=None, help="default: a freshly built tiny Qwen3 (profit_rl.embedded.tiny)")
    args = p.parse_args()

    import torch

    from profit_rl.evals.sampling import SamplingSettings, TransformersSampler, sample_seed

    if args.threads:
        torch.set_num_threads(args.threads)

    model = args.model
    if model is None:
        from profit_rl.embedded.tiny import build_tiny_model

        model = str(build_tiny_model(Path(tempfile.mkdtemp()) / "tiny", seed=0))
    settings = SamplingSettings(max_new_tokens=args.new_tokens, batch_size=args.batch_size)
    sampler = TransformersSampler(model, settings, device="cpu")
    # Prompts longest first, as TransformersSampler.sample orders them; every arm sees the same prompts.
    texts = sorted((sampler.render(m) for m in load_prompts(args.prompts)),
                   key=lambda t: -len(sampler.tokenizer(t)["input_ids"]))
    batches = [texts[i : i + args.batch_size] for i in range(0, len(texts), args.batch_size)]
    fixed = dict(min_new_tokens=args.new_tokens)
    k = args.k

    def seeds(batch, n, first=0):
        return [[sample_seed(t, first + j, 0) for j in range(n)] for t in batch]

    # The arms are interleaved batch by batch (sampler, grouped, separate on the same 8 prompts, then the next 8), so
    # a change in machine load during the run hits every arm alike; each arm's time is the sum over batches.
    arms = {
        # the GRPO sense of a group: one prompt's k samples in one call (prefill once, decode k rows)
        "grouped": (lambda batch: [sampler.generate([t], k, settings, seeds=seeds([t], k), **fixed) for t in batch],
                    len(texts)),
        # the same k samples as k calls of one sample each
        "separate": (lambda batch: [sampler.generate([t], 1, settings, seeds=seeds([t], 1, j), **fixed)
                                    for t in batch for j in range(k)], len(texts) * k),
        # what `profit-rl eval` does: batch_size prompts per call, k samples each
        "sampler": (lambda batch: sampler.generate(batch, k, settings, seeds=seeds(batch, k), **fixed), len(batches)),
        # the same rows, each prompt repeated k times with one sample each: no prefill is shared
        "unshared": (lambda batch: sampler.generate([t for t in batch for _ in range(k)], 1, settings,
                                                    seeds=[[s] for row in seeds(batch, k) for s in row], **fixed),
                     len(batches)),
        # the same calls, unseeded
        "unseeded": (lambda batch: sampler.generate(batch, k, settings, **fixed), len(batches)),
    }
    torch.manual_seed(0)
    sampler.generate(texts[:2], 2, settings, **fixed)  # warm-up (first-call allocations)
    timings = dict.fromkeys(arms, 0.0)
    for batch in batches:
        for name, (fn, _) in arms.items():
            start = time.perf_counter()
            fn(batch)
            timings[name] += time.perf_counter() - start
    n_samples = len(texts) * k
    result = {
        "prompts": len(texts), "k": k, "batch_size": args.batch_size, "new_tokens": args.new_tokens,
        "torch_threads": torch.get_num_threads(),
        **{f"{name}_s": round(t, 2) for name, t in timings.items()},
        "speedup_grouped_vs_separate": round(timings["separate"] / timings["grouped"], 2),
        "speedup_sampler_vs_separate": round(timings["separate"] / timings["sampler"], 2),
        "seeded_vs_unseeded_time": round(timings["sampler"] / timings["unseeded"], 2),
        "speedup_shared_prefill": round(timings["unshared"] / timings["sampler"], 2),
    }
    print(f"{n_samples} samples ({len(texts)} prompts x k={k}, {args.new_tokens} new tokens each, CPU, "
          f"{torch.get_num_threads()} threads)")
    labels = {"grouped": f"grouped: one call per prompt, k={k} samples", "separate": f"separate: k={k} calls per prompt",
              "sampler": f"eval sampler: {args.batch_size} prompts x k={k} per call",
              "unshared": "the same, each prompt prefilled k times",
              "unseeded": "the same, unseeded (torch's global generator)"}
    for name, (_, calls) in arms.items():
        print(f"  {labels[name]:<44} {calls:>4} calls  {timings[name]:7.2f} s  {n_samples / timings[name]:6.1f} samples/s")
    print(f"  grouped vs separate: {result['speedup_grouped_vs_separate']:.2f}x   "
          f"eval sampler vs separate: {result['speedup_sampler_vs_separate']:.2f}x   "
          f"seeded / unseeded time: {result['seeded_vs_unseeded_time']:.2f}x   "
          f"shared prefill: {result['speedup_shared_prefill']:.2f}x")
    print(json.dumps(result))

if __name__ == "__main__":
    main()
