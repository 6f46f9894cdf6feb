"""A tiny Qwen3-architecture model and a locally trained tokenizer: no download, ever.

The tests and the embedded default both need a real causal LM that TRL, PEFT and the samplers accept as they would
Qwen3-0.6B-Base. This module builds one from a config, with a byte-level BPE tokenizer trained by `tokenizers` on a
corpus we pass in (or a small built-in one), and a Qwen-style ChatML chat template.
"""

from __future__ import annotations

import random
from pathlib import Path

# The same ChatML layout as Qwen3's template (without the thinking blocks), so prompts look like the real model's.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def builtin_corpus(n: int = 400, seed: int = 0) -> list[str]:
    """A small deterministic corpus (arithmetic, LaTeX, plain English) for the test tokenizer."""
    rng = random.Random(seed)
    words = (
        "the a of to and in is it you that he was for on are as with his they at be this have from or one had by "
        "word but not what all were we when your can said there use an each which she do how their if will up "
        "other about out many then them these so some her would make like him into time has look two more write "
        "go see number no way could people my than first water been call who oil its now find long down day did "
        "get come made may part answer question problem solve step final boxed therefore so total"
    ).split()
    texts = []
    for _ in range(n):
        a, b = rng.randint(0, 999), rng.randint(1, 99)
        op = rng.choice(["+", "-", "*", "/"])
        sentence = " ".join(rng.choice(words) for _ in range(rng.randint(5, 15)))
        texts.append(f"{sentence.capitalize()}. Compute {a} {op} {b}. The answer is \\boxed{{{a}{op}{b}}}.")
        texts.append(f"$\\frac{{{a}}}{{{b}}}$ and $x^{{{b % 7}}} + \\sqrt{{{a}}}$; #### {a + b}")
    return texts


def train_tokenizer(texts: list[str], vocab_size: int = 512):
    """Train a byte-level BPE tokenizer (digits split one by one, as Qwen's are) and wrap it for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte is encodable: no <unk>, any UTF-8 text
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.padding_side = "right"
    return fast


def tiny_qwen3_config(vocab_size: int, **overrides):
    """A Qwen3Config small enough to train in seconds on two CPU cores."""
    from transformers import Qwen3Config

    kwargs = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        rms_norm_eps=1e-6,
    )
    kwargs.update(overrides)
    return Qwen3Config(**kwargs)


def build_tiny_model(
    out_dir: str | Path, texts: list[str] | None = None, vocab_size: int = 512, seed: int = 0, **config_overrides
) -> Path:
    """Build (or reuse) a tiny Qwen3 + tokenizer under `out_dir`, loadable with `from_pretrained(out_dir)`."""
    import torch
    from transformers import AutoModelForCausalLM

    out_dir = Path(out_dir)
    if (out_dir / "config.json").exists() and (out_dir / "tokenizer.json").exists():
        return out_dir
    tokenizer = train_tokenizer(texts if texts is not None else builtin_corpus(seed=seed), vocab_size=vocab_size)
    config = tiny_qwen3_config(
        len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        **config_overrides,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    model.save_pretrained(out_dir)
    return out_dir
