"""Local stand-ins for the hub models and datasets that TRL's tests/test_sft_trainer.py loads.

Models: `trl-internal-testing/tiny-*` ids are written as random tiny models, from configs, into a Hugging Face hub
cache (`<cache>/models--trl-internal-testing--tiny-X/snapshots/<rev>/`, `refs/main`), so that `from_pretrained(id)`
finds them offline exactly as it finds a downloaded model. Their tokenizer is profit-rl's tiny byte-level BPE with
a ChatML template (`profit_rl.embedded.tiny`), trained on the Zen and a built-in corpus: a 512-token vocabulary keeps
each test at seconds on a CPU (Qwen's 151,936 made it ~30 s); `--tokenizer DIR` uses another one.

Datasets: `trl-internal-testing/zen` configs are JSON files built from the Zen of Python (17 train rows, 2 test rows,
as the hub dataset has); `conftest.py` maps `load_dataset("trl-internal-testing/zen", config, ...)` to them.

    python scripts/trl_sft_tests/standins.py OUT_DIR [--tokenizer DIR]
"""

from __future__ import annotations

import argparse
import codecs
import json
import shutil
from pathlib import Path

REVISION = "0" * 40  # the snapshot name; refs/main points at it

# hub id -> (transformers config class, extra config fields). Small enough that a default SFTConfig run (3 epochs of
# 17 rows) takes seconds on one CPU core.
MODELS = {
    "trl-internal-testing/tiny-Qwen2ForCausalLM-2.5": ("Qwen2Config", {}),
    "trl-internal-testing/tiny-Qwen3ForCausalLM": ("Qwen3Config", {"head_dim": 8}),
    "trl-internal-testing/tiny-Qwen3MoeForCausalLM": ("Qwen3MoeConfig", {"head_dim": 8, "num_experts": 4,
                                                                         "num_experts_per_tok": 2,
                                                                         "moe_intermediate_size": 16,
                                                                         "router_aux_loss_coef": 0.01}),
}
TEXT = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
            max_position_embeddings=512, tie_word_embeddings=True)


def zen_lines() -> list[str]:
    """The 19 aphorisms of the Zen of Python (CPython's `this` module holds them ROT13-encoded)."""
    import this  # noqa: F401  (prints the Zen on import; its text is this.s)

    text = codecs.decode(this.s, "rot13")
    return [line for line in text.splitlines()[2:] if line.strip()]


def zen_rows(config: str, lines: list[str]) -> list[dict]:
    rows = []
    for line in lines:
        head, _, tail = line.partition(" is ") if " is " in line else line.partition(" ")
        prompt, completion = (head + " is", " " + tail) if tail else (line[: len(line) // 2], line[len(line) // 2:])
        if config == "standard_language_modeling":
            rows.append({"text": line})
        elif config == "conversational_language_modeling":
            rows.append({"messages": [{"role": "user", "content": "What is better than ugly?"},
                                      {"role": "assistant", "content": line}]})
        elif config == "standard_prompt_completion":
            rows.append({"prompt": prompt, "completion": completion})
        elif config == "conversational_prompt_completion":
            rows.append({"prompt": [{"role": "user", "content": prompt}],
                         "completion": [{"role": "assistant", "content": completion}]})
        elif config == "standard_implicit_prompt_preference":
            rows.append({"chosen": line, "rejected": line[::-1]})
        else:
            raise ValueError(config)
    return rows


ZEN_CONFIGS = ("standard_language_modeling", "conversational_language_modeling", "standard_prompt_completion",
               "conversational_prompt_completion", "standard_implicit_prompt_preference")


def build_datasets(root: Path) -> None:
    lines = zen_lines()
    train, test = lines[:17], lines[17:19]
    for config in ZEN_CONFIGS:
        folder = root / "datasets" / "zen" / config
        folder.mkdir(parents=True, exist_ok=True)
        for split, part in (("train", train), ("test", test)):
            with open(folder / f"{split}.jsonl", "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in zen_rows(config, part))


def build_models(root: Path, tokenizer_dir: Path | None) -> None:
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if tokenizer_dir is None:
        from profit_rl.embedded.tiny import builtin_corpus, train_tokenizer

        tokenizer = train_tokenizer(zen_lines() * 4 + builtin_corpus(), vocab_size=512)
    else:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    for i, (model_id, (config_name, extra)) in enumerate(MODELS.items()):
        torch.manual_seed(i)
        config = getattr(transformers, config_name)(vocab_size=len(tokenizer), **{**TEXT, **extra},
                                                    bos_token_id=tokenizer.bos_token_id,
                                                    eos_token_id=tokenizer.eos_token_id,
                                                    pad_token_id=tokenizer.pad_token_id)
        model = AutoModelForCausalLM.from_config(config)
        repo = root / "hub" / ("models--" + model_id.replace("/", "--"))
        snapshot = repo / "snapshots" / REVISION
        if snapshot.exists():
            shutil.rmtree(snapshot)
        model.save_pretrained(snapshot)
        tokenizer.save_pretrained(snapshot)
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(REVISION)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--tokenizer", type=Path, default=None, help="a tokenizer folder (default: a tiny BPE)")
    args = parser.parse_args()
    build_datasets(args.out)
    build_models(args.out, args.tokenizer)
    print(f"stand-ins in {args.out}: {', '.join(MODELS)}; zen configs {', '.join(ZEN_CONFIGS)}")


if __name__ == "__main__":
    main()
