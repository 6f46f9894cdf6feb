"""What a verdict is: one completion scored against one gold answer with math-verify, in this process, no deadline.

`score_answer` is the whole per-item computation. `rewards.pool` runs it in worker processes under a hard deadline
(math-verify's own timeouts are switched off here: they rely on `signal.alarm`, which only the main thread of the main
interpreter can use, and which cannot interrupt a long C call); `bench/rewards.py` also times it in-process.
"""

from __future__ import annotations

import logging
from enum import Enum
from functools import lru_cache

from .answers import (DEFAULT_FALLBACK, Fallback, answer_readings, extract_answer, gold_text, is_delimited,
                      is_prose, normalize_answer)

# An extracted answer longer than this is scored 0.0 without sympy. The longest gold answer in the 12,500 MATH
# problems is 159 characters; 2,000 leaves room for matrices and long expressions while keeping sympy away from
# kilobytes of nested LaTeX.
MAX_ANSWER_CHARS = 2_000
# The same for an answer that math-verify reads as text (`answers.answer_readings`: delimiters, a box, prose), from
# which it extracts spans itself. Math-Verify's own test predictions run to 11,422 characters.
MAX_TEXT_CHARS = 16_000


class Outcome(str, Enum):
    """How scoring one item ended. A `str` enum: it compares equal to its value ("ok", "timeout", ...)."""

    OK = "ok"  # scored: 1.0 when equivalent, 0.0 when not
    NO_ANSWER = "no_answer"  # the completion has no final answer: 0.0
    GOLD_UNPARSEABLE = "gold_unparseable"  # the gold cannot be parsed: None (no reward from this item)
    TOO_LONG = "too_long"  # the extracted answer is over MAX_ANSWER_CHARS (MAX_TEXT_CHARS): 0.0 without sympy
    ERROR = "error"  # scoring raised, or its worker died: 0.0 (only the pool reports it)
    TIMEOUT = "timeout"  # over the pool's deadline, worker killed: 0.0 (only the pool reports it)

    def __str__(self) -> str:  # "timeout", not "Outcome.TIMEOUT", in messages and f-strings
        return self.value


def _parse(readings: tuple[str, ...]) -> list:
    """Everything math-verify extracts from the readings of one answer (`answers.answer_readings`), in order."""
    from math_verify import parse

    parsed: list = []
    for reading in readings:
        parsed.extend(parse(reading, parsing_timeout=None))
    return parsed


# A gold is parsed once per worker however many completions share it (a GRPO group shares one).
_parse_gold = lru_cache(maxsize=8192)(_parse)


def score_answer(
    gold: str, completion: str, *, extracted: bool = False, fallback: Fallback = DEFAULT_FALLBACK, shortcut: bool = True
) -> tuple[Outcome, float | None]:
    """Score one completion against one gold answer, in this process, with no deadline: (outcome, score).

    `gold` is what a dataset holds: a bare answer, a GSM8K solution (`#### N`), a worked solution with its box(es), or
    prose; it is read as `answers.gold_text` and `answers.answer_readings` say, so a gold math-verify can read is never
    lost. `completion` is a model completion, or an already extracted answer when `extracted=True`; `fallback` says
    where `extract_answer` looks for the answer in a completion. Score 1.0 when math-verify judges the answers
    equivalent (or a bare gold and the answer have equal normalised strings), 0.0 when not or when the completion has
    no answer, None when math-verify can read nothing in the gold. `shortcut=False` skips the equal-strings shortcut,
    so that every item goes through sympy (benchmarks use it to time math-verify itself).
    """
    from math_verify import verify

    gold_str = gold_text(gold)
    # A bare gold is read as its normalised string; a delimited one (a worked solution, several boxes) is whatever
    # math-verify extracts from it, so only a bare gold takes the equal-strings shortcut.
    gold_norm = None if is_delimited(gold_str) else normalize_answer(gold_str)
    if not gold_str or gold_norm == "":
        return Outcome.GOLD_UNPARSEABLE, None
    pred = completion if extracted else extract_answer(completion, fallback=fallback)
    if pred is None:
        return Outcome.NO_ANSWER, 0.0
    pred_norm = normalize_answer(pred)
    if not pred_norm:
        return Outcome.NO_ANSWER, 0.0
    if shortcut and pred_norm == gold_norm:
        return Outcome.OK, 1.0
    gold_readings = answer_readings(gold_str)
    if not gold_readings:
        return Outcome.GOLD_UNPARSEABLE, None
    if is_delimited(pred) or is_prose(pred):
        if len(pred) > MAX_TEXT_CHARS:
            return Outcome.TOO_LONG, 0.0
    elif len(pred_norm) > MAX_ANSWER_CHARS:
        return Outcome.TOO_LONG, 0.0
    pred_readings = answer_readings(pred)
    gold_parsed = _parse_gold(gold_readings)
    if not gold_parsed:
        return Outcome.GOLD_UNPARSEABLE, None
    pred_parsed = _parse(pred_readings)
    if not pred_parsed:
        return Outcome.OK, 0.0
    return Outcome.OK, float(verify(gold_parsed, pred_parsed, timeout_seconds=None))


# Equivalent answers in different forms: sympy's comparison machinery (sets, intervals, matrices, units) imports lazily.
_WARM_UP_PAIRS = [
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
    ("1,22", "1.22"),  # a decimal comma: math-verify's plain-text number grammar
    ("The total is 42.", "42"),  # prose
    ("$\\boxed{1}\\boxed{2}$", "1,2"),  # a delimited text, read whole
]

# One answer of each construct the answer grammar has. The fork server scores each against itself and against its
# neighbour before any worker is forked, so that the LaTeX parser has already made its decisions for these constructs:
# ANTLR caches each parsing decision (its DFA) in the process that makes it, so workers forked cold would each learn the
# same decisions again, on the caller's time. `bench/rewards.py` measures what this saves (docs/results.md).
_WARM_UP_ANSWERS = r"""
7
-12
3.25
-0.5
1,000
2^{10}
10^{-3}
\frac{3}{4}
-\frac{5}{12}
\dfrac{7}{2}
\tfrac{1}{3}
\frac{\sqrt{3}}{2}
\frac{1+\sqrt{5}}{2}
3\sqrt{2}
\sqrt[3]{4}
2\sqrt{6}-\sqrt{3}
\pi
\frac{3\pi}{4}
2\pi r^2
45^\circ
120^{\circ}
15\%
\$12.50
(2,-3)
\left( \frac{1}{2}, 3 \right)
[0, 1)
(-\infty, -2] \cup [3, \infty)
\{1, 2, 3\}
\emptyset
x^2 + 3x - 4
(x-1)(x+2)^2
y = -2x + 5
x \le 4
-1 < x < 3
a = 3, b = -1
\begin{pmatrix} 1 & 0 \\ -2 & 3 \end{pmatrix}
\begin{pmatrix} -1 \\ 4 \\ 2 \end{pmatrix}
\text{(C)}
\text{Tuesday}
\textbf{(B) } 12
\mbox{odd}
3 + 4i
e^{2x}
\ln 2
\log_{3} 81
\sin \frac{\pi}{6}
\cos^2 \theta
\tan 30^\circ
\binom{8}{3}
5!
|x - 2|
\left| -3 \right|
1011_2
\pm 3
2 \cdot 3^4
6 \times 10^{5}
\infty
\sqrt{x^2+y^2}
\frac{x+1}{x-1}
\sum_{k=1}^{n} k
f(x) = 2x
\overline{AB}
\angle ABC
x_1 + x_2
\frac{a+b}{c-d}
-\sqrt{2}, \sqrt{2}
1 \text{ and } 2
""".strip().splitlines()


def warm_up() -> None:
    """Import math-verify, load sympy's comparisons (`_WARM_UP_PAIRS`) and fill the parser's decision caches by
    scoring every `_WARM_UP_ANSWERS` entry against itself and its neighbour (a cold first item can take over a
    second)."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)  # its timeouts are off on purpose; don't warn about it
    for gold, pred in _WARM_UP_PAIRS:
        score_answer(gold, pred, extracted=True, shortcut=False)
    for i, answer in enumerate(_WARM_UP_ANSWERS):
        score_answer(answer, answer, extracted=True, shortcut=False)
        score_answer(answer, _WARM_UP_ANSWERS[i - 1], extracted=True, shortcut=False)


__all__ = ["MAX_ANSWER_CHARS", "MAX_TEXT_CHARS", "Outcome", "score_answer", "warm_up"]
