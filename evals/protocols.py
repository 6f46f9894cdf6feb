"""Evaluation protocols: one name for the prompts, few-shot turns, answer extraction, budgets and k of every benchmark.

- `paper`: the evaluation the ProFit authors ran (`Evaluation/eval-qwen3-0.6B-Base.py` in github.com/Utaotao/ProFit:
  OpenCompass with the dataset configs gsm8k_gen_1d7fe4, math_500_gen, gpqa_openai_simple_evals_gen_5aeece and
  IFEval_gen_353ae7, n = 8 samples, temperature 0.7 / top-p 0.8 / top-k 20, 8192 new tokens, the model's chat
  template), bug for bug: the reference's message lists, rendering, stop words and scorers
  (`evals.benchmarks.opencompass`, `evals.benchmarks.opencompass.OpenCompassChat`). AIME'24, which that file leaves commented out, runs
  its config aime2024_gen_17d799 at Avg@32.
- `boxed`: the toolkit's own judgement. Every math answer goes in a \\boxed{} (the format the GRPO reward reads), GPQA asks for a
  boxed letter, every benchmark is 0-shot, and budgets are shorter. Its numbers are not comparable with Table 1.

A benchmark is built for one protocol (`get_benchmark(name, protocol)`), because the protocol decides its scoring as
well as its prompt (GPQA's option order, GSM8K's answer rule). docs/protocol.md sets each benchmark's settings beside
the reference's, with the reason for every difference.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Protocol:
    """What a protocol fixes beyond each benchmark's own prompt, extraction, k and budget."""

    name: str
    summary: str
    comparable_to_paper: bool  # its numbers can stand next to the paper's Table 1
    benchmarks: tuple[str, ...]  # the default `--benchmarks` (the paper's Table 1 columns under `paper`)
    temperature: float = 0.7
    top_p: float = 0.8
    top_k: int = 20
    chat_template: bool = True
    # The prompt budget. OpenCompass's max_seq_len (4096 in the reference) only drops retrieved in-context examples,
    # and these configs retrieve none, so it never cuts a prompt there; here a longer prompt is not sampled at all
    # (scored 0, counted as an error), never silently cut.
    max_prompt_tokens: int | None = None


PAPER = Protocol(
    name="paper",
    summary="the ProFit reference's OpenCompass settings (profit-rl docs protocol)",
    comparable_to_paper=True,
    benchmarks=("gpqa", "gsm8k", "math500", "aime24", "ifeval"),
    max_prompt_tokens=4096,
)
BOXED = Protocol(
    name="boxed",
    summary="the toolkit's own: 0-shot, answers in \\boxed{}, shorter budgets",
    comparable_to_paper=False,
    benchmarks=("math500", "gsm8k", "aime24", "gpqa"),
)
PROTOCOLS = {p.name: p for p in (PAPER, BOXED)}
DEFAULT_PROTOCOL = "boxed"


def get_protocol(name: str) -> Protocol:
    """The Protocol named `name`; a ValueError listing the known names for any other."""
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}; choose from {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def deviations(protocol: Protocol, settings: dict, ks: dict[str, tuple[int, int]], limit: int | None,
               max_new_tokens_given: bool) -> list[str]:
    """Why a run's numbers cannot stand next to the paper's Table 1, or [] when they can.

    `settings`: the run's sampling settings (temperature, top_p, top_k, chat_template); `ks`: benchmark -> (k used,
    the protocol's k), for every benchmark of the run; `limit`: --limit; `max_new_tokens_given`: a budget was forced
    over the protocol's."""
    if not protocol.comparable_to_paper:
        return [f"protocol {protocol.name!r} is not the paper's (--protocol paper is)"]
    reasons = []
    missing = [name for name in protocol.benchmarks if name not in ks]
    if missing and len(ks) > 1:
        reasons.append(f"the average leaves out {', '.join(missing)} (paper: {', '.join(protocol.benchmarks)})")
    for key in ("temperature", "top_p", "top_k", "chat_template"):
        if key in settings and settings[key] != getattr(protocol, key):
            reasons.append(f"{key}={settings[key]} (paper: {getattr(protocol, key)})")
    if max_new_tokens_given:
        reasons.append(f"max_new_tokens={settings.get('max_new_tokens')} (paper: each benchmark's own)")
    for name, (k, paper_k) in ks.items():
        if k != paper_k:
            reasons.append(f"{name} k={k} (paper: {paper_k})")
    if limit:
        reasons.append(f"--limit {limit} (paper: every problem)")
    return reasons


def header(protocol_name: str, reasons: list[str]) -> str:
    """The first line of results.md and report.md: which protocol, and whether Table 1 is the right comparison.
    The reasons may quote user input (a file name), so they are escaped as markdown text."""
    from . import markdown as md

    protocol = get_protocol(protocol_name)
    if not reasons:
        return f"Protocol: `{protocol.name}`, {md.text(protocol.summary)}. Comparable to the paper's Table 1."
    return (f"Protocol: `{protocol.name}`, {md.text(protocol.summary)}. **Not comparable to the paper's Table 1**: "
            + "; ".join(md.text(reason) for reason in reasons) + ".")
