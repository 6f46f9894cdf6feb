"""Cost of `protected_strings`: TRL's collator alone vs wrapped in `ProtectingCollator`, per batch, on the CPU.

The protected tokens are found in the data loader (decoding each supervised run and mapping the string's occurrences
back to tokens), so the cost lands on the CPU that builds batches, not on the training step. Rows are real SFT rows
(Alpaca layout, chat-templated by the tokenizer, prompt tokens masked) cut to --max-length.

    python bench/protected_collator.py --data ../shared/data/sft_mix/train.jsonl \
        --tokenizer ../shared/models/qwen3-base-twin
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--strings", nargs="+", default=["\\boxed"])
    args = parser.parse_args()

    from transformers import AutoTokenizer
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from profit_rl.configs import SFTDataArguments
    from profit_rl.data.sft_rows import load_sft_dataset
    from profit_rl.protected import ProtectingCollator, TokenText

    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    rows = load_sft_dataset(SFTDataArguments(dataset_name=args.data, num_samples=args.rows))
    examples = []
    for row in rows:
        prompt = tok.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=True, return_dict=True)
        full = tok.apply_chat_template(row["prompt"] + row["completion"], tokenize=True, return_dict=True)
        ids = full["input_ids"][: args.max_length]
        n_prompt = min(len(prompt["input_ids"]), len(ids))
        examples.append({"input_ids": ids, "labels": [-100] * n_prompt + ids[n_prompt:]})
    batches = [examples[i : i + args.batch_size] for i in range(0, len(examples), args.batch_size)]
    plain = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id)
    text, general = TokenText(tok), TokenText(tok)
    general.token_bytes = None  # token_pieces, the path of tokenizers that are not byte-level BPE
    collators = {
        "trl": plain,
        "protected": ProtectingCollator(plain, text, args.strings),
        "general path": ProtectingCollator(plain, general, args.strings),
        "absent": ProtectingCollator(plain, text, ["\u2603never-in-the-data"]),
    }
    times = {name: [] for name in collators}
    for _ in range(3):  # interleaved, so load drift hits each alike
        for name, collator in collators.items():
            start = time.perf_counter()
            for batch in batches:
                out = collator(batch)
            times[name].append((time.perf_counter() - start) / len(batches))
    protected = sum(int(collators["protected"](b)["protected_mask"].sum()) for b in batches)
    tokens = sum(sum(label != -100 for label in ex["labels"]) for ex in examples)
    ms = {name: 1e3 * statistics.median(t) for name, t in times.items()}
    print(f"{len(examples)} rows, batch {args.batch_size}, max_length {args.max_length}, strings {args.strings}")
    print(f"protected tokens: {protected} of {tokens} supervised; last batch shape {tuple(out['input_ids'].shape)}")
    for name in collators:
        print(f"{name:>10}: {ms[name]:7.2f} ms per batch  ({ms[name] / ms['trl']:.1f}x TRL's collator)")


if __name__ == "__main__":
    main()
