"""Build (once) and cache the embedded base model and its data: the offline default of `make sft-then-rl`.

    python -m profit_rl.embedded.build [--out-dir outputs/embedded/base] [--seed 0]

Steps, all seeded:
1. draw the disjoint test / GRPO / SFT problems (`task.make_splits`) and a pretraining corpus on other problems;
2. train a byte-level BPE tokenizer on that corpus (`tiny.train_tokenizer`);
3. build a small Qwen3 (`tiny.tiny_qwen3_config`) and pretrain it on the packed plain-text corpus (a plain torch
   loop: next-token loss, AdamW, warmup + cosine);
4. save it with `save_pretrained`, write `sft.jsonl`, `grpo.jsonl`, `test.jsonl`, and measure the premise (mean p of
   core vs trivial tokens of the SFT references under the base model) into `build.json`.

The result lives in `out_dir` (default `outputs/embedded/base`): `model/`, `sft.jsonl`, `grpo.jsonl`, `test.jsonl` and
`build.json`. `build.json` records a cache key that hashes every setting that changes the model or data (task, model
shape, pretraining budget, seed) and the source of the task, tokenizer and builder modules: a folder built with another
key is rebuilt, one with the same key is reused. The build happens in a staging folder that replaces `out_dir` only
when complete, so a killed build is rebuilt, never half-used.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..prepare import write_jsonl  # atomic: a killed build never leaves half a file
from . import task as T

logger = logging.getLogger(__name__)

# Bump when the build's outputs change in a way neither the settings nor the sources below capture.
FORMAT_VERSION = 1
# The code that defines the data, tokenizer, model and pretraining: any edit to it changes the cache key, so a cached
# base model is never reused after its task wording or training loop changed underneath it.
KEY_SOURCES = ("task.py", "tiny.py", "build.py")


def _sources_digest() -> str:
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for name in KEY_SOURCES:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()
DEFAULT_OUT_DIR = Path("outputs/embedded/base")
# A base model below this plain-layout accuracy has not (fully) learned to copy the amounts from the problem (measured
# on earlier task layouts: 1-8% without the copying, 46-98% with it).
MIN_BASE_ACCURACY = 0.2


@dataclass(frozen=True)
class EmbeddedConfig:
    """Everything that defines the embedded base model and its data; it is hashed into the cache key.

    Args:
        task: the problem distribution (`task.TaskConfig`).
        n_test, n_grpo, n_sft: sizes of the held-out test set, the GRPO prompt set and the single-reference SFT set.
        vocab_size: BPE vocabulary trained on the corpus (plus the chat special tokens).
        tokenizer_documents: corpus documents the tokenizer is trained on.
        hidden_size, num_hidden_layers, intermediate_size, num_attention_heads, num_key_value_heads, head_dim:
            the Qwen3 shape.
        pretrain_steps, batch_size, seq_len: pretraining budget, in packed sequences of `seq_len` tokens. Learning to
            copy the amounts from the problem is a phase transition: at 1,000 steps seeds 0 and 1 had made it, seed 2
            had not (5% on the health check) and still had not at 1,500 (9%), at 50% more build time; the health
            check in `build.json` says which case a build is.
        learning_rate, warmup_steps, min_lr_ratio, weight_decay: AdamW with linear warmup and cosine decay to
            `min_lr_ratio * learning_rate`.
        premise_rows: SFT references scored for the premise measurement in `build.json`.
        check_problems: test problems the base model solves greedily, in its pretraining layout, as a health check
            (`base_plain_greedy_accuracy` in `build.json`; a warning below MIN_BASE_ACCURACY).
    """

    task: T.TaskConfig = field(default_factory=T.TaskConfig)
    n_test: int = 200
    n_grpo: int = 1000
    n_sft: int = 2000
    vocab_size: int = 768
    tokenizer_documents: int = 4000
    hidden_size: int = 128
    num_hidden_layers: int = 2
    intermediate_size: int = 256
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 32
    pretrain_steps: int = 1000
    batch_size: int = 32
    seq_len: int = 128
    learning_rate: float = 3e-3
    warmup_steps: int = 40
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    premise_rows: int = 256
    check_problems: int = 64

    @classmethod
    def from_dict(cls, values: dict) -> "EmbeddedConfig":
        """Inverse of `dataclasses.asdict` (as stored in `build.json`)."""
        return cls(**{**values, "task": T.TaskConfig(**values["task"])})

    def cache_key(self, seed: int) -> str:
        blob = json.dumps(
            {"config": dataclasses.asdict(self), "seed": seed, "format": FORMAT_VERSION, "sources": _sources_digest()},
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class EmbeddedPaths:
    """Where a finished build put things."""

    root: Path
    model_dir: Path
    sft: Path
    grpo: Path
    test: Path
    build_info: Path


def paths_for(root: Path) -> EmbeddedPaths:
    return EmbeddedPaths(
        root=root,
        model_dir=root / "model",
        sft=root / "sft.jsonl",
        grpo=root / "grpo.jsonl",
        test=root / "test.jsonl",
        build_info=root / "build.json",
    )


def make_splits_for(config: EmbeddedConfig, seed: int) -> T.Splits:
    """The test / GRPO / SFT problems of a build (the same ones its jsonl files hold)."""
    return T.make_splits(seed, config.task, config.n_test, config.n_grpo, config.n_sft)


def write_task_data(paths: EmbeddedPaths, config: EmbeddedConfig, seed: int) -> tuple[T.Splits, list[dict]]:
    """Write the task's SFT, GRPO and test files (no model): what `--data-only` gives a pretrained model such as
    SmolLM2-135M, so it trains and is evaluated on exactly the problems of the embedded default with the same seed."""
    splits = make_splits_for(config, seed)
    sft_rows = T.sft_rows(splits.sft, seed)
    paths.root.mkdir(parents=True, exist_ok=True)
    write_jsonl(paths.sft, sft_rows)
    write_jsonl(paths.grpo, T.grpo_rows(splits.grpo))
    write_jsonl(paths.test, T.test_rows(splits.test))
    return splits, sft_rows


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
    answer, so ProFit (which never trains a token with p <= tau) would never learn to stop (measured: without it,
    ProFit SFT runs on past the answer into a made-up next problem and loses 21 points to SFT).
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


def cached_key(out_dir: str | Path) -> str | None:
    """The cache key of a finished build in `out_dir`, or None."""
    info = Path(out_dir) / "build.json"
    return json.loads(info.read_text()).get("cache_key") if info.exists() else None


def build_embedded(
    out_dir: str | Path = DEFAULT_OUT_DIR, seed: int = 0, config: EmbeddedConfig | None = None, force: bool = False
) -> EmbeddedPaths:
    """Build the embedded base model and data into `out_dir`, or return the finished build already there.

    Returns the paths of the model folder (for `from_pretrained`), the three jsonl files and `build.json`.
    """
    import torch
    from transformers import AutoModelForCausalLM

    from .premise import plain_format_accuracy, premise_stats, reference_token_probs
    from .tiny import tiny_qwen3_config, train_tokenizer

    config = config or EmbeddedConfig()
    final = Path(out_dir)
    paths = paths_for(final)
    key = config.cache_key(seed)
    found = cached_key(final)
    if found == key and not force:
        logger.info("embedded model %s already built in %s", key, final)
        return paths
    if found is not None:
        logger.info("%s holds embedded build %s, settings now give %s: rebuilding", final, found, key)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.parent / f".{final.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staged = paths_for(staging)
    staged.model_dir.mkdir(parents=True)
    timings: dict[str, float] = {}
    t0 = time.time()

    # 1. Data. Test first so resizing the SFT or GRPO set never changes the test problems.
    splits, sft_rows = write_task_data(staged, config, seed)
    reserved = {p.key for p in splits.test + splits.grpo + splits.sft}

    # 2. Tokenizer, on corpus text plus the chat prompt's instruction (so it is a few tokens, not dozens).
    tokenizer_texts = list(T.pretraining_corpus(seed + 10_000, config.task, config.tokenizer_documents, reserved))
    tokenizer_texts += [T.user_message(p.statement) for p in splits.sft[:200]]
    tokenizer = train_tokenizer(tokenizer_texts, vocab_size=config.vocab_size)
    timings["data_and_tokenizer_s"] = round(time.time() - t0, 1)

    # 3. Model and pretraining. CPU seconds are logged beside wall seconds: on a shared machine they are the figure
    # that does not depend on the neighbours.
    t1, c1 = time.time(), time.process_time()
    n_tokens = config.pretrain_steps * config.batch_size * config.seq_len
    # Enough documents for one pass without repeats; pack_corpus stops once it has n_tokens.
    tokens = pack_corpus(tokenizer, T.pretraining_corpus(seed, config.task, 10**9, reserved), n_tokens)
    model_config = tiny_qwen3_config(
        len(tokenizer),
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers,
        intermediate_size=config.intermediate_size,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads,
        head_dim=config.head_dim,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(model_config)
    n_params = sum(p.numel() for p in model.parameters())
    logger.info("pretraining a %.2fM-parameter Qwen3 on %d tokens", n_params / 1e6, n_tokens)
    log = pretrain(model, tokens, config, seed)
    timings["pretrain_s"] = round(time.time() - t1, 1)
    timings["pretrain_cpu_s"] = round(time.process_time() - c1, 1)
    timings["torch_threads"] = torch.get_num_threads()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    tokenizer.save_pretrained(staged.model_dir)
    model.save_pretrained(staged.model_dir)

    # 4. The premise, measured on the SFT references in the chat layout ProFit scores them in.
    t2 = time.time()
    n = min(config.premise_rows, len(splits.sft))
    probs, is_core = reference_token_probs(
        model, tokenizer, [r["prompt"] for r in sft_rows[:n]], T.sft_segments(splits.sft, seed)[:n]
    )
    premise = premise_stats(probs, is_core)
    # ...and whether pretraining taught the model to read the problem at all (see plain_format_accuracy).
    base_accuracy = plain_format_accuracy(model, tokenizer, splits.test[: config.check_problems])
    if base_accuracy < MIN_BASE_ACCURACY:
        logger.warning(
            "the embedded base model solves only %.0f%% of %d test problems in its pretraining layout (expected >= "
            "%.0f%%): pretraining was too short for it to learn to read the amounts from the problem. Raise "
            "pretrain_steps; the SFT/GRPO comparison on this model measures little.",
            100 * base_accuracy, config.check_problems, 100 * MIN_BASE_ACCURACY,
        )
    timings["premise_s"] = round(time.time() - t2, 1)
    info = {
        "seed": seed,
        "cache_key": key,
        "config": dataclasses.asdict(config),
        "n_params": n_params,
        "pretrain_tokens": n_tokens,
        "pretrain_log": log,
        "premise_base_model": premise,
        "base_plain_greedy_accuracy": base_accuracy,
        "timings": timings,
        "files": {"model_dir": "model", "sft": "sft.jsonl", "grpo": "grpo.jsonl", "test": "test.jsonl"},
    }
    staged.build_info.write_text(json.dumps(info, indent=2) + "\n")
    if final.exists():  # an older build: move it aside first so `final` never holds a mix of two builds
        old = final.parent / f".{final.name}.old-{os.getpid()}"
        final.rename(old)
        shutil.rmtree(old)
    staging.rename(final)
    logger.info("embedded model built at %s in %.0fs; premise: %s", final, time.time() - t0, premise)
    return paths


def task_config(overrides: list[str]) -> T.TaskConfig:
    """`["max_ops=3", "max_value=99"]` -> a TaskConfig with those fields changed (and validated by it)."""
    fields = {f.name: f.type for f in dataclasses.fields(T.TaskConfig)}
    values = {}
    for item in overrides:
        name, sep, value = item.partition("=")
        if not sep or name not in fields:
            raise SystemExit(f"--task {item!r}: expected FIELD=VALUE with FIELD one of {', '.join(fields)}")
        try:
            values[name] = float(value) if "float" in str(fields[name]) else int(value)
        except ValueError:
            raise SystemExit(f"--task {item!r}: {value!r} is not a number") from None
    try:
        return T.TaskConfig(**values)
    except ValueError as err:
        raise SystemExit(f"--task: {err}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", default=str(DEFAULT_OUT_DIR), help="where the model and data go (%(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pretrain-steps", type=int, default=None, help="override the pretraining budget")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument("--task", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a task.TaskConfig field (repeatable), e.g. --task max_ops=3 --task max_value=99")
    parser.add_argument("--data-only", action="store_true",
                        help="write only sft.jsonl, grpo.jsonl and test.jsonl (seconds; for a pretrained model)")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch intra-op threads (default 1: on a shared 2-core machine, 2 OpenMP threads spin-wait and run ~10x slower)",
    )
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    config = EmbeddedConfig()
    if args.pretrain_steps is not None:
        config = dataclasses.replace(config, pretrain_steps=args.pretrain_steps)
    if args.task:
        config = dataclasses.replace(config, task=task_config(args.task))
    if args.data_only:
        paths = paths_for(Path(args.out_dir))
        splits, _ = write_task_data(paths, config, args.seed)
        print(f"{len(splits.sft)} SFT, {len(splits.grpo)} GRPO, {len(splits.test)} test problems -> {paths.root}")
        return 0
    paths = build_embedded(args.out_dir, seed=args.seed, config=config, force=args.force)
    print(json.dumps({k: str(v) for k, v in dataclasses.asdict(paths).items()}, indent=2))
    print(json.dumps(json.loads(paths.build_info.read_text())["premise_base_model"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
