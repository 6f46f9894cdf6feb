"""Measure the embedded default's premise and its SFT-vs-ProFit comparison, with wall times, in one run.

    python bench/embedded_premise.py [--base outputs/embedded/base] [--out outputs/embedded-premise] [--seed 0]

1. installs (or reuses) the embedded base model, the shipped one unless `--as-is` names another build;
2. prints the base model's mean p on core vs trivial tokens of the SFT references (the premise);
3. trains "all tokens" SFT and ProFit (tau 0.1) from the recipes in recipes/embedded/sft/ (ProFitSFTTrainer);
4. scores base, SFT and ProFit on the held-out test set: Avg@k and Pass@k with the eval sampling settings
   (temperature 0.7, top_p 0.8, top_k 20), answer = content of the last \\boxed{}.

It samples with a plain `model.generate` loop, not `evals`, so it runs before and apart from the eval stack.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import torch

BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


def last_boxed(text: str) -> str | None:
    found = BOXED.findall(text)
    return found[-1].strip() if found else None


@torch.no_grad()
def sample_scores(model_dir, rows, k, max_new_tokens, seed, batch_prompts=50):
    """Per problem, the k 0/1 scores of sampled completions."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from profit_rl.embedded.task import user_message

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    torch.manual_seed(seed)
    scores, examples = [], []
    for lo in range(0, len(rows), batch_prompts):
        chunk = rows[lo : lo + batch_prompts]
        texts = [
            tokenizer.apply_chat_template(
                [{"role": "user", "content": user_message(r["problem"])}], tokenize=False, add_generation_prompt=True
            )
            for r in chunk
        ]
        enc = tokenizer(texts, return_tensors="pt", padding=True)
        out = model.generate(
            **enc, do_sample=True, temperature=0.7, top_p=0.8, top_k=20, max_new_tokens=max_new_tokens,
            num_return_sequences=k, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        )
        completions = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        for i, row in enumerate(chunk):
            mine = completions[i * k : (i + 1) * k]
            scores.append([float(last_boxed(c) == row["answer"]) for c in mine])
            if len(examples) < 2:
                examples.append(mine[0])
    return scores, examples


def summarize(scores):
    n = len(scores)
    return {
        "avg_at_k": sum(sum(s) / len(s) for s in scores) / n,
        "pass_at_k": sum(float(any(s)) for s in scores) / n,
        "n_problems": n,
    }


def premise_of(model_dir, sft_rows, segments, n):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from profit_rl.embedded.premise import premise_stats, reference_token_probs

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    probs, is_core = reference_token_probs(model, tokenizer, [r["prompt"] for r in sft_rows[:n]], segments[:n])
    return premise_stats(probs, is_core)


def train_sft(recipe: str, base, out_dir: Path, overrides: list[str]) -> tuple[float, float]:
    from profit_rl import sft

    start, cpu = time.time(), time.process_time()
    sft.run(*sft.parse([
        "--config", recipe,
        "--model_name_or_path", str(base.model_dir),
        "--dataset_name", str(base.sft),
        "--output_dir", str(out_dir),
        *overrides,
    ]))
    return time.time() - start, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="outputs/embedded/base")
    parser.add_argument("--out", default="outputs/embedded-premise")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--test-n", type=int, default=200)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--methods", default="sft,profit")
    parser.add_argument("--skip-base-eval", action="store_true")
    parser.add_argument("--as-is", action="store_true",
                        help="use the build in --base as it is, whatever its settings (design studies)")
    parser.add_argument("overrides", nargs="*", help="extra SFT flags, e.g. --learning_rate 5e-4")
    args, extra = parser.parse_known_args()
    torch.set_num_threads(args.threads)

    from profit_rl.embedded import task as T
    from profit_rl.embedded.build import EmbeddedConfig, build_embedded, make_splits_for, paths_for

    t0 = time.time()
    base = paths_for(Path(args.base)) if args.as_is else build_embedded(args.base)  # the shipped base model
    info = json.loads(base.build_info.read_text())
    build_s = time.time() - t0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    test_rows = [json.loads(line) for line in open(base.test)][: args.test_n]
    sft_rows = [json.loads(line) for line in open(base.sft)]
    splits = make_splits_for(EmbeddedConfig.from_dict(info["config"]), info["seed"])
    segments = [example.segments for example in T.sft_examples(splits.sft, info["seed"])]
    assert [T.solution_text(s) for s in segments] == [r["completion"][0]["content"] for r in sft_rows]

    report = {"build_s": round(build_s, 1), "build": info["timings"], "premise": {"base": info["premise_base_model"]}}
    models = {} if args.skip_base_eval else {"base": base.model_dir}
    for method in args.methods.split(","):
        recipe = f"recipes/embedded/sft/{method}.yaml"
        seconds, cpu_seconds = train_sft(recipe, base, out / method, extra + args.overrides)
        report.setdefault("sft_s", {})[method] = round(seconds, 1)
        report.setdefault("sft_cpu_s", {})[method] = round(cpu_seconds, 1)
        models[method] = out / method
        report["premise"][method] = premise_of(out / method, sft_rows, segments, 256)
    for name, model_dir in models.items():
        start, cpu = time.time(), time.process_time()
        scores, examples = sample_scores(model_dir, test_rows, args.k, args.max_new_tokens, args.seed)
        report.setdefault("eval", {})[name] = {**summarize(scores), "seconds": round(time.time() - start, 1),
                                               "cpu_seconds": round(time.process_time() - cpu, 1),
                                               "example": examples[0]}
        (out / f"scores-{name}.json").write_text(json.dumps(scores))
    (out / "report.json").write_text(json.dumps(report, indent=2))

    print(f"\nbuild: {report['build']} (this call {build_s:.0f}s)")
    print("\n| model | mean p core | mean p trivial | core <= tau | trivial <= tau | trivial share of p <= tau |")
    print("|---|---|---|---|---|---|")
    for name, p in report["premise"].items():
        print(f"| {name} | {p['mean_p_core']:.3f} | {p['mean_p_trivial']:.3f} | {p['frac_core_at_or_below_tau']:.3f} "
              f"| {p['frac_trivial_at_or_below_tau']:.3f} | {p['trivial_share_of_dropped']:.3f} |")
    print(f"\n| model | Avg@{args.k} | Pass@{args.k} | problems | SFT wall s (CPU s) | eval wall s (CPU s) |")
    print("|---|---|---|---|---|---|")
    for name, e in report["eval"].items():
        train = f"{report['sft_s'][name]} ({report['sft_cpu_s'][name]})" if name in report.get("sft_s", {}) else "-"
        print(f"| {name} | {e['avg_at_k']:.3f} | {e['pass_at_k']:.3f} | {e['n_problems']} | {train} | "
              f"{e['seconds']} ({e['cpu_seconds']}) |")
    for name, e in report["eval"].items():
        print(f"\n[{name}] {e['example'][:300]!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
