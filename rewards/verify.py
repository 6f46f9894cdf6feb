"""What a verdict is: one completion scored against one gold answer with math-verify, in this process, no deadline.

`score_answer` is the whole per-item computation. `rewards.pool` runs it in worker processes under a hard deadline
(math-verify's own timeouts are switched off here: they rely on `signal.alarm`, which only the main thread of the main
interpreter can use, and which cannot interrupt a long C call); `bench/rewards.py` also times it in-process.
"""

from __future__ import annotations

import logging
from enum import Enum
from functools import lru_cache

from .answers import DEFAULT_FALLBACK, Fallback, extract_answer, gold_answer, normalize_answer

# An extracted answer longer than this is scored 0.0 without sympy. The longest gold answer in the 12,500 MATH
# problems is 159 characters; 2,000 leaves room for matrices and long expressions while keeping sympy away from
# kilobytes of nested LaTeX.
MAX_ANSWER_CHARS = 2_000


class Outcome(str, Enum):
    """How scoring one item ended. A `str` enum: it compares equal to its value ("ok", "timeout", ...)."""

    OK = "ok"  # scored: 1.0 when equivalent, 0.0 when not
    NO_ANSWER = "no_answer"  # the completion has no final answer: 0.0
    GOLD_UNPARSEABLE = "gold_unparseable"  # the gold cannot be parsed: None (no reward from this item)
    TOO_LONG = "too_long"  # the extracted answer is over MAX_ANSWER_CHARS: 0.0 without sympy
    ERROR = "error"  # scoring raised, or its worker died: 0.0 (only the pool reports it)
    TIMEOUT = "timeout"  # over the pool's deadline, worker killed: 0.0 (only the pool reports it)

    def __str__(self) -> str:  # "timeout", not "Outcome.TIMEOUT", in messages and f-strings
        return self.value


@lru_cache(maxsize=8192)
def _parse_gold(gold: str):
    from math_verify import parse

    return parse("\\boxed{" + gold + "}", parsing_timeout=None)


def _parse_pred(pred: str):
    from math_verify import parse

    return parse("\\boxed{" + pred + "}", parsing_timeout=None)


def score_answer(
    gold: str, completion: str, *, extracted: bool = False, fallback: Fallback = DEFAULT_FALLBACK, shortcut: bool = True
) -> tuple[Outcome, float | None]:
    """Score one completion against one gold answer, in this process, with no deadline: (outcome, score).

    `gold` may be a bare answer or a GSM8K/MATH solution (see `answers.gold_answer`). `completion` is a model
    completion, or an already extracted answer when `extracted=True`; `fallback` says where `extract_answer` looks
    for the answer in a completion. Score 1.0 when math-verify judges the answers
    equivalent (or their normalised strings are equal), 0.0 when not or when the completion has no answer, None when
    the gold itself cannot be parsed. `shortcut=False` skips the equal-strings shortcut, so that every item goes
    through sympy (benchmarks use it to time math-verify itself).
    """
    from math_verify import verify

    gold_norm = gold_answer(gold)
    if not gold_norm:
        return Outcome.GOLD_UNPARSEABLE, None
    pred = completion if extracted else extract_answer(completion, fallback=fallback)
    if pred is None:
        return Outcome.NO_ANSWER, 0.0
    pred_norm = normalize_answer(pred)
    if not pred_norm:
        return Outcome.NO_ANSWER, 0.0
    if shortcut and pred_norm == gold_norm:
        return Outcome.OK, 1.0
    if len(pred_norm) > MAX_ANSWER_CHARS:
        return Outcome.TOO_LONG, 0.0
    gold_parsed = _parse_gold(gold_norm)
    if not gold_parsed:
        return Outcome.GOLD_UNPARSEABLE, None
    pred_parsed = _parse_pred(pred_norm)
    if not pred_parsed:
        return Outcome.OK, 0.0
    return Outcome.OK, float(verify(gold_parsed, pred_parsed, timeout_seconds=None))


# One of each kind of answer, so that sympy's lazily imported parts load once (in the pool's fork server, before any
# worker is forked), not in every worker.
_WARM_UP_ITEMS = [
    ("\\frac{1}{2}", "0.5"),
    ("2\\sqrt{3}", "\\sqrt{12}"),
    ("(1, 2]", "x \\in (1,2]"),
    ("\\{1, 2\\}", "\\{2, 1\\}"),
    ("x = 5", "5"),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"),
    ("\\frac{\\pi}{3}", "60^\\circ"),
    ("3x^2 + 2\\sin(x)", "2\\sin x + 3x^{2}"),
    ("10\\%", "0.1"),
    ("x > 2", "(2, \\infty)"),
    ("\\log_2 8", "3"),
    ("2 + 3i", "3i + 2"),
]


def warm_up() -> None:
    """Import math-verify and build its parsers by scoring one item of each kind (a cold first item can take over a
    second)."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)  # its timeouts are off on purpose; don't warn about it
    for gold, pred in _WARM_UP_ITEMS:
        score_answer(gold, pred, extracted=True, shortcut=False)


__all__ = ["MAX_ANSWER_CHARS", "Outcome", "score_answer", "warm_up"]
