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

The parts: `sampler_settings` (settings, seeding, rendering and stop tokens), `hf_sampler` (the transformers backend),
`vllm_sampler` (the vLLM backend). This module is their public front: import from here.
"""

from __future__ import annotations

from .hf_sampler import TransformersSampler, WeightsMismatchError, check_loading_info, load_causal_lm, seeded_sampling
from .sampler_settings import (OPENCOMPASS_STOP_RULE, STOP_RULE, OnBatch, SamplingSettings, chat_format, context_error,
                               progress_bar, render, render_prompt, sample_keys, sample_seed, stop_token_ids)
from .vllm_sampler import (DataParallelWorkers, VLLMSampler, make_llm, max_model_len, sampling_params_dict,
                           vllm_generate)

__all__ = [
    "OPENCOMPASS_STOP_RULE", "STOP_RULE", "DataParallelWorkers", "OnBatch", "SamplingSettings", "TransformersSampler",
    "VLLMSampler", "WeightsMismatchError", "build_sampler", "chat_format", "check_loading_info", "context_error",
    "load_causal_lm", "make_llm", "max_model_len", "progress_bar", "render", "render_prompt", "sample_keys",
    "sample_seed", "sampling_params_dict", "seeded_sampling", "stop_token_ids", "vllm_generate",
]


def build_sampler(backend: str, model: str, settings: SamplingSettings):
    """The sampler of `backend` ("transformers" or "vllm") for `model`; a ValueError for any other backend."""
    if backend == "transformers":
        return TransformersSampler(model, settings)
    if backend == "vllm":
        return VLLMSampler(model, settings)
    raise ValueError(f"unknown backend {backend!r} (choose transformers or vllm)")
