"""The transformers sampler: batched, left-padded generate() on CPU or one GPU, each sample drawn from its own seed.

`TransformersSampler` implements the Sampler interface of `profit_rl.evals.sampling`; `load_causal_lm` loads a full
checkpoint or merges a LoRA adapter folder into its base, and refuses weights that do not fit their config.json.
"""

from __future__ import annotations

import logging

from profit_rl.core.dtypes import torch_dtype
from profit_rl.core.io import InputError
from profit_rl.core.model_folders import is_adapter_dir

from .sampler_settings import (OnBatch, SamplingSettings, chat_format, context_error, progress_bar, render, sample_keys,
                               sample_seed, stop_token_ids)

logger = logging.getLogger("profit_rl.evals.sampling")  # the public front's name, which log filters name


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
