"""One chat format per tokenizer: what a model is trained on, what it is prompted with, and the token ending its turn.

    fmt = ChatFormat(tokenizer)                      # or ChatFormat(tokenizer, end_of_turn="<|eot|>")
    fmt.prompt(messages)                             # the generation prompt (eval, curves, GRPO)
    fmt.conversation(messages + [assistant])         # the training render (SFT)
    fmt.template_kwargs                              # what both pass to apply_chat_template ({} or thinking off)
    fmt.stop_token_ids(model.generation_config)      # end of turn, the tokenizer's EOS, the model's EOS ids
    fmt.bake()                                       # training: the saved template defaults to these settings
    end_of_turn_ids(tokenizer, generation_config)    # the trainer: those stop ids, or the EOS ids with no chat format
    checkpoint_eos_ids(stop_ids, generation_config)  # what a saved checkpoint's generation_config lists

The contract (docs/qwen3.md): the generation prompt is exactly the prefix of the training render up to where the
supervised tokens start. Qwen3's chat template breaks it by default: it renders the last assistant message as
`<think>\\n\\n</think>\\n\\n` + content, while its generation prompt ends at `<|im_start|>assistant\\n`. The template's own
switch for that (`enable_thinking=False`) puts the empty think block into the generation prompt, and then the two
agree. So the empty think block is part of the prompt, never of the supervised tokens: a ProFit run would drop those
tokens anyway (a base model gives them p ~ 0), leaving a model trained with the block in its context but prompted
without it. Training (`profit-rl sft`, `profit-rl grpo`) bakes that setting into the tokenizer's template as its
default, so a saved checkpoint's plain `apply_chat_template(add_generation_prompt=True)` (vLLM, lm-eval, a user's
script) gives the prompt it was trained under.

The end-of-turn token is read from the template: the token it renders right after an assistant message's content
(`<|im_end|>` for ChatML and Qwen3, `<|eot_id|>` for Llama 3). A template that closes a turn with no special token
there does not say where a turn ends; then the caller must name the token, never a guess. This module is the one place
that decides where a turn ends: every generator (GRPO, curves, eval under the toolkit's own protocol), the SFT
trainer's end-of-turn tokens and the EOS ids a checkpoint's generation_config lists all come from it.

The reference's way to render and stop, for `--protocol paper`, is `profit_rl.evals.benchmarks.opencompass.
OpenCompassChat` (no template setting, so no empty think block for Qwen3; it stops only at the EOS ids OpenCompass
collects, not at the end of the turn).
"""

from __future__ import annotations

import json

from .io import InputError

SENTINEL = "ProFitRLCompletionSentinel"  # plain text that no template rewrites (templates strip only whitespace)
PROBE = [{"role": "user", "content": "What is 1 + 1?"}]
# Tried in order: the template's default, then thinking off (Qwen3's switch that moves the empty think block into the
# generation prompt). The first under which the generation prompt is a prefix of the training render is used.
TEMPLATE_KWARGS_CANDIDATES = ({}, {"enable_thinking": False})


class ChatFormatError(InputError):
    """A chat template that cannot give one consistent format for training and generation, or no end of turn."""


def unique_ids(ids) -> list[int]:
    """`ids` in their order, each once, without the Nones (a tokenizer without an EOS)."""
    return list(dict.fromkeys(i for i in ids if i is not None))


def eos_token_ids(tokenizer, generation_config=None) -> list[int]:
    """The ids that end a whole sequence: the tokenizer's EOS, then the EOS ids of a model's generation config. Where
    no chat turn is rendered (raw prompts), these alone end a completion."""
    model_eos = getattr(generation_config, "eos_token_id", None)
    return unique_ids([getattr(tokenizer, "eos_token_id", None),
                       *([model_eos] if isinstance(model_eos, int) else model_eos or [])])


def end_of_turn_ids(tokenizer, generation_config=None) -> list[int]:
    """Every token id that ends an assistant turn of `tokenizer`: its chat format's stop ids (`ChatFormat.
    stop_token_ids`), or its EOS ids when it has no chat format to read one from (no template, or one that does not
    close a turn with a special token: the sequence is the turn). For the SFT trainer, which protects and watches
    these tokens and may be given any tokenizer, so it never stops for want of a chat format."""
    from jinja2 import TemplateError

    try:
        return ChatFormat(tokenizer).stop_token_ids(generation_config)
    except (ChatFormatError, TemplateError):
        return eos_token_ids(tokenizer, generation_config)


def checkpoint_eos_ids(stop_ids: list[int], generation_config) -> list[int]:
    """The EOS ids a saved checkpoint's generation config lists: a generator's stop ids (`ChatFormat.stop_token_ids`,
    the end of turn first), then the ids the config listed already, so that any tool (transformers, vLLM, lm-eval)
    stops where the turn ends, as TRL's SFTTrainer lists `eos_token` first."""
    return unique_ids([*stop_ids, *eos_token_ids(None, generation_config)])


def apply_template(tokenizer, messages: list[dict], generation: bool, kwargs: dict) -> str:
    """`apply_chat_template` as text, with or without the generation prompt, under the template settings `kwargs`."""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation, **kwargs)


def tokenizer_name(tokenizer) -> str:
    """The tokenizer's folder or hub id for messages (its class name when it has neither)."""
    return getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__


class ChatFormat:
    """The chat format of one tokenizer (see the module docstring). Raises `ChatFormatError` when the tokenizer has no
    chat template, when no template setting makes the generation prompt a prefix of the training render, or when the
    template does not close an assistant turn with a special token and `end_of_turn` is not given."""

    def __init__(self, tokenizer, end_of_turn: str | None = None):
        if not getattr(tokenizer, "chat_template", None):
            raise ChatFormatError(f"{tokenizer_name(tokenizer)}: the tokenizer has no chat template")
        self.tokenizer = tokenizer
        self.template_kwargs, tail = self._find_template_kwargs()
        self.end_of_turn = end_of_turn or self._end_of_turn_from(tail)
        ids = tokenizer(self.end_of_turn, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise ChatFormatError(f"{tokenizer_name(tokenizer)}: the end-of-turn token {self.end_of_turn!r} is not one token of "
                                  f"the vocabulary (it encodes as {ids})")
        self.end_of_turn_id = ids[0]

    def _find_template_kwargs(self) -> tuple[dict, str]:
        tried = []
        for kwargs in TEMPLATE_KWARGS_CANDIDATES:
            full = apply_template(self.tokenizer, PROBE + [{"role": "assistant", "content": SENTINEL}], False, kwargs)
            if SENTINEL not in full:
                raise ChatFormatError(f"{tokenizer_name(self.tokenizer)}: the chat template drops the assistant message's "
                                      f"content (rendered {full!r})")
            before, tail = full.split(SENTINEL, 1)
            prompt = apply_template(self.tokenizer, PROBE, True, kwargs)
            if prompt == before:
                return dict(kwargs), tail
            tried.append(f"{kwargs or 'defaults'}: generation prompt {prompt[-40:]!r} vs training text before the "
                         f"answer {before[-40:]!r}")
        raise ChatFormatError(
            f"{tokenizer_name(self.tokenizer)}: with no setting of its chat template is the generation prompt the text that "
            f"precedes the answer in training, so the model would be prompted differently from how it was trained "
            f"({'; '.join(tried)})"
        )

    def _end_of_turn_from(self, tail: str) -> str:
        ids = self.tokenizer(tail, add_special_tokens=False)["input_ids"]
        special = set(self.tokenizer.all_special_ids) | set(self.tokenizer.get_added_vocab().values())
        if ids and ids[0] in special:
            return self.tokenizer.convert_ids_to_tokens(ids[0])
        raise ChatFormatError(
            f"{tokenizer_name(self.tokenizer)}: the chat template does not close an assistant turn with a special token (after "
            f"the answer it renders {tail!r}), so the token that ends a turn is unknown and generation would not stop "
            "at the end of the answer. Name it: --eos_token TOKEN (profit-rl sft / grpo) or "
            "--end-of-turn-token TOKEN (profit-rl eval / curves)."
        )

    def bake(self) -> "ChatFormat":
        """Make the template settings the tokenizer's own defaults (prepended `{% set %}`s, each only where the caller
        passes no value), so that the checkpoints a training run saves render the trained format with no arguments;
        afterwards `template_kwargs` is empty. Returns self."""
        if not self.template_kwargs:
            return self
        template = self.tokenizer.chat_template
        if not isinstance(template, str):
            raise ChatFormatError(f"{tokenizer_name(self.tokenizer)}: the tokenizer holds several named chat templates; "
                                  f"cannot make {self.template_kwargs} their default")
        defaults = "".join(f"{{%- if {key} is not defined %}}{{%- set {key} = {json.dumps(value)} %}}{{%- endif %}}"
                           for key, value in self.template_kwargs.items())
        self.tokenizer.chat_template = defaults + template
        baked, _ = self._find_template_kwargs()
        if baked:  # the defaults did not take: the template reads these settings some other way
            raise ChatFormatError(f"{tokenizer_name(self.tokenizer)}: setting {self.template_kwargs} as the chat template's "
                                  "defaults does not change how it renders")
        self.template_kwargs = {}
        return self

    def prompt(self, messages: list[dict]) -> str:
        """The generation prompt: what eval, curves and GRPO send to the model."""
        return apply_template(self.tokenizer, messages, True, self.template_kwargs)

    def conversation(self, messages: list[dict]) -> str:
        """The training render of a conversation ending with the assistant message that SFT supervises."""
        return apply_template(self.tokenizer, messages, False, self.template_kwargs)

    def prompt_is_prefix(self, prompt: list[dict], completion: list[dict]) -> bool:
        """Token-level contract check for one row: the tokenized generation prompt starts the tokenized training
        render (what TRL's SFTTrainer takes as the unsupervised part)."""
        encode = lambda text: self.tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
        prompt_ids, full_ids = encode(self.prompt(prompt)), encode(self.conversation(prompt + completion))
        return full_ids[: len(prompt_ids)] == prompt_ids and len(full_ids) > len(prompt_ids)

    def stop_token_ids(self, generation_config=None) -> list[int]:
        """Token ids any of which ends a completion: the end of turn first, then the tokenizer's EOS and the EOS ids of
        a model's generation config (a base model's EOS alone does not end a chat turn)."""
        return unique_ids([self.end_of_turn_id, *eos_token_ids(self.tokenizer, generation_config)])

