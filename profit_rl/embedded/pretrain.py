"""Pretraining the embedded base model from scratch: its tokenizer, the packed corpus and the training loop.

What `profit-rl embedded build --pretrain` runs (stage 2 of `profit_rl.embedded.build`), on plain-text documents of
problems outside every split of the seed.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING

from . import task as T

if TYPE_CHECKING:  # annotations only: the build imports this module
    from .build import EmbeddedConfig, TaskData

logger = logging.getLogger("profit_rl.embedded.build")  # the build's log: its lines name the build


def train_base_tokenizer(data: TaskData, config: EmbeddedConfig, seed: int):
    """A byte-level BPE on corpus text plus the chat prompt's instruction (so it is a few tokens, not dozens)."""
    from .tiny import train_tokenizer

    texts = list(T.pretraining_corpus(seed + 10_000, config.task, config.tokenizer_documents, data.reserved))
    texts += [T.user_message(p.statement) for p in data.splits.sft[:200]]
    return train_tokenizer(texts, vocab_size=config.vocab_size)


def _lr_at(step: int, config: EmbeddedConfig) -> float:
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.pretrain_steps - config.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return config.learning_rate * (config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine)


def pack_corpus(tokenizer, documents, n_tokens: int):
    """Concatenate tokenized documents until `n_tokens` ids exist; each ends with <|im_end|> <|endoftext|>.

    <|im_end|> closes every solution, as it closes every assistant turn of the chat template: a real base model has
    seen its chat template's end-of-turn token in pretraining, and one that has not gives it p ~ 0 after the
    answer, so ProFit (which never trains a token with p <= tau) would never learn to stop.
    """
    import torch

    end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
    separator = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    eos = [end_of_turn, separator]
    ids: list[int] = []
    chunk: list[str] = []
    for doc in documents:
        chunk.append(doc)
        if len(chunk) == 512:
            for encoded in tokenizer(chunk)["input_ids"]:
                ids.extend(encoded + eos)
            chunk = []
            if len(ids) >= n_tokens:
                break
    if chunk and len(ids) < n_tokens:
        for encoded in tokenizer(chunk)["input_ids"]:
            ids.extend(encoded + eos)
    if len(ids) < n_tokens:
        raise ValueError(f"corpus too small: {len(ids)} tokens, need {n_tokens}")
    return torch.tensor(ids[:n_tokens])


def pretrain(model, tokens, config: EmbeddedConfig, seed: int, log_every: int = 50) -> list[dict]:
    """Next-token pretraining on packed sequences; returns the logged losses."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    sequences = tokens.view(-1, config.seq_len)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
        betas=(0.9, 0.95),
    )
    model.train()
    log, start, running = [], time.time(), 0.0
    order = torch.randperm(len(sequences), generator=generator)
    for step in range(config.pretrain_steps):
        idx = order[(step * config.batch_size) % len(order) :][: config.batch_size]
        if len(idx) < config.batch_size:  # wrapped around the corpus: reshuffle
            order = torch.randperm(len(sequences), generator=generator)
            idx = order[: config.batch_size]
        batch = sequences[idx]
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, config)
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        running += loss.item()
        if (step + 1) % log_every == 0 or step + 1 == config.pretrain_steps:
            n = (step % log_every) + 1
            entry = {"step": step + 1, "loss": running / n, "elapsed_s": round(time.time() - start, 1)}
            logger.info("pretrain step %(step)d loss %(loss).3f (%(elapsed_s).0fs)", entry)
            log.append(entry)
            running = 0.0
    model.eval()
    return log


def pretrain_base_model(tokenizer, data: TaskData, config: EmbeddedConfig, seed: int) -> tuple[object, dict]:
    """A small Qwen3 pretrained from scratch on plain-text documents of problems outside every split.

    Returns the model and what to record of it: size, tokens, the loss log, and under "timings" wall and CPU seconds
    (on a shared machine CPU seconds are the figure that does not depend on the neighbours).
    """
    import torch
    from transformers import AutoModelForCausalLM

    from .tiny import tiny_qwen3_config

    t0, c0 = time.time(), time.process_time()
    n_tokens = config.pretrain_steps * config.batch_size * config.seq_len
    # Enough documents for one pass without repeats; pack_corpus stops once it has n_tokens.
    tokens = pack_corpus(tokenizer, T.pretraining_corpus(seed, config.task, 10**9, data.reserved), n_tokens)
    model_config = tiny_qwen3_config(
        len(tokenizer), hidden_size=config.hidden_size, num_hidden_layers=config.num_hidden_layers,
        intermediate_size=config.intermediate_size, num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads, head_dim=config.head_dim, max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(model_config)
    n_params = sum(p.numel() for p in model.parameters())
    logger.info("pretraining a %.2fM-parameter Qwen3 on %d tokens", n_params / 1e6, n_tokens)
    log = pretrain(model, tokens, config, seed)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model, {"n_params": n_params, "pretrain_tokens": n_tokens, "pretrain_log": log,
                   "timings": {"pretrain_s": round(time.time() - t0, 1),
                               "pretrain_cpu_s": round(time.process_time() - c0, 1),
                               "torch_threads": torch.get_num_threads()}}

