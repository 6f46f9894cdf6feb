"""What every sampler shares: its settings, the seed of each sample, and how a prompt is rendered and where it stops.

`SamplingSettings` (the paper's defaults) with the `fingerprint` that decides whether cached samples are reusable;
`sample_seed` keys each sample's randomness by (problem, sample index, seed) (`profit_rl.evals.sampling` says why);
`chat_format`, `render` and `stop_token_ids` give both backends the same prompt text and the same stop tokens, asked of
the tokenizer's chat format (core.chat), or of the reference's (`OpenCompassChat`) under `--protocol paper`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from profit_rl.core.chat import ChatFormat, ChatFormatError, eos_token_ids
from profit_rl.core.dtypes import DTYPE_HELP, check_dtype
from profit_rl.evals.benchmarks.opencompass import OpenCompassChat

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
    """Every token that ends a completion: the chat format's stop ids (the end of turn, the tokenizer's EOS, the model's
    EOS ids), or for raw prompts (`chat` None) the EOS ids alone; both from core.chat."""
    if chat is not None:
        return chat.stop_token_ids(generation_config)
    return eos_token_ids(tokenizer, generation_config)


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
