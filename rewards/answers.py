"""The one answer extractor: what a completion's final answer is, and what a dataset's gold answer is.

Used by the GRPO rewards (`rewards.accuracy` through `rewards.pool`, `rewards.format`) and by every benchmark in
`evals/`, so that training and evaluation read answers the same way. Pure string functions: no sympy here, nothing
that can hang. Every function runs in time linear in its input, and completions are cut to their last
`MAX_COMPLETION_CHARS` characters first.

Extraction order for a completion (`extract_answer`):
  1. the content of the LAST top-level `\\boxed{...}` / `\\fbox{...}` (balanced braces, `\\{`/`\\}` are literal
     braces, a box that only wraps another box is unwrapped). A box that is opened but never closed (a completion cut
     off while writing its answer) means "no answer": we do not fall back to an earlier box or to any fallback.
  2. GSM8K style: the text after the last `#### ` up to the end of its line.
  3. fallback="answer_is" or "last_number": the last "final answer is X" / "answer: X" phrase, up to the end of its
     line.
  4. fallback="last_number" (`DEFAULT_FALLBACK`): the last number in the text.
Each step runs only if the ones before found nothing. The GRPO reward uses fallback="none" (`rewards.accuracy`: only the
box or `####` line the prompt asks for earns credit); each eval protocol picks its own (`evals.benchmarks.mathlike`).
The default, used wherever a caller names none (`extract_answer`, `rewards.verify.score_answer`, `rewards.pool`),
reads the most: GSM8K's usual protocol accepts the last number.

What math-verify parses for an answer (`answer_readings`, `gold_text`) is decided here too, as string rules: a text with
delimiters, boxes or prose as it stands, a bare answer as LaTeX in a box (see the section "Readings").
"""

from __future__ import annotations

import re
from typing import Literal

# A completion longer than this (in characters) is cut to its tail: the final answer is at the end, and a 1 MB
# completion must never reach a regex or sympy whole. 64 Ki characters is far above any max_completion_length in use.
MAX_COMPLETION_CHARS = 64 * 1024

# What the GRPO prompts (and the math benchmarks' prompts) ask for, so that `extract_answer` and `format_reward` find
# the answer where the model was told to put it. The wording is Qwen2.5-Math's / DeepSeek-R1's.
BOXED_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


def math_user_message(problem: str, instruction: str = BOXED_INSTRUCTION) -> str:
    """THE user turn of every math prompt: SFT data, the GRPO prompts and the evals all build it here, so a model is
    evaluated on exactly the prompt it was trained on (Qwen2.5-Math's evaluation format: one newline)."""
    return f"{problem}\n{instruction}"

Fallback = Literal["none", "answer_is", "last_number"]
FALLBACKS = ("none", "answer_is", "last_number")
DEFAULT_FALLBACK: Fallback = "last_number"
_MAX_UNWRAP = 4

_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_GSM8K_RE = re.compile(r"####[ \t]*([^\n]*)")
_CALC_ANNOTATION_RE = re.compile(r"<<[^<>]*>>")
_ANSWER_IS_RE = re.compile(r"(?:final\s+answer|answer)\s*(?:is\s*:?|:|=)\s*", re.IGNORECASE)
_NUMBER_RE = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:/\d+)?")


def tail(text: str, limit: int = MAX_COMPLETION_CHARS) -> str:
    """The last `limit` characters of `text` (the whole text when it is shorter)."""
    return text if len(text) <= limit else text[-limit:]


def _balanced_group(text: str, open_index: int) -> int | None:
    """Index just past the `}` that closes the `{` at `open_index`, or None if it never closes.

    A backslash escapes the next character, so `\\{` and `\\}` (literal braces in LaTeX set notation) do not count, and
    `\\\\{` (a line break, then a group) does.
    """
    depth = 0
    i, n = open_index, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def _box_content(text: str, start: int) -> tuple[str | None, int]:
    """Parse the argument of the box command ending at `start`: (content, end) or (None, len(text)) if unclosed."""
    i = start
    while i < len(text) and text[i] in " \t":
        i += 1
    if i < len(text) and text[i] == "{":
        end = _balanced_group(text, i)
        if end is None:
            return None, len(text)
        return text[i + 1 : end - 1], end
    # `\boxed 5`: TeX takes the next token as the argument. Accept it when a space separates it from the command.
    if i > start:
        m = re.match(r"[^\s$]+", text[i:])
        if m:
            return m.group(0), i + m.end()
    return "", i


def last_boxed(text: str) -> str | None:
    """Content of the last top-level `\\boxed{}`/`\\fbox{}` in `text`, or None (no box, or the last box is unclosed)."""
    content: str | None = None
    cursor = 0
    for match in _BOX_RE.finditer(text):
        if match.start() < cursor:  # inside the previous box: only top-level boxes count
            continue
        inner, cursor = _box_content(text, match.end())
        if inner is None:  # opened and never closed: the completion was cut off mid-answer
            return None
        content = inner
    if content is None:
        return None
    content = content.strip()
    # `\boxed{\boxed{5}}`: unwrap a box that only wraps another box. Bounded, so that 20k nested boxes stay linear.
    for _ in range(_MAX_UNWRAP):
        m = _BOX_RE.match(content)
        if not m:
            break
        inner, end = _box_content(content, m.end())
        if inner is None or content[end:].strip():
            break
        content = inner.strip()
    return content


def _strip_math_delimiters(s: str) -> str:
    s = s.strip()
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if len(s) >= len(left) + len(right) and s.startswith(left) and s.endswith(right):
            s = s[len(left) : len(s) - len(right)].strip()
    return s


def _gsm8k_answer(text: str) -> str | None:
    matches = _GSM8K_RE.findall(text)
    if not matches:
        return None
    answer = _CALC_ANNOTATION_RE.sub("", matches[-1]).strip()
    return answer or None


def _answer_is(text: str) -> str | None:
    # The LAST phrase wins, also when one line holds two ("the answer is 1/2... wait, the answer is 5"): the anchors
    # are found first, then the answer runs from the last one that has text after it to the end of its line.
    answer = ""
    for match in reversed(list(_ANSWER_IS_RE.finditer(text))):
        line_end = text.find("\n", match.end())
        answer = text[match.end() : line_end if line_end >= 0 else len(text)].strip()
        if answer:
            break
    if not answer:
        return None
    # "The answer is $\frac{1}{2}$." -> "\frac{1}{2}"
    answer = answer.rstrip(" .")
    if answer.startswith("$") and not answer.startswith("$$") and answer.count("$") >= 2:
        answer = answer[: answer.index("$", 1) + 1]  # "$5$ dollars" -> "$5$"
    answer = _strip_math_delimiters(answer).rstrip(" .")
    return answer or None


def _last_number(text: str) -> str | None:
    last = None
    for last in _NUMBER_RE.finditer(text):
        pass
    return last.group(0) if last else None


def extract_answer(text: str, *, fallback: Fallback = DEFAULT_FALLBACK) -> str | None:
    """The final answer of a model completion, as written (LaTeX kept), or None when there is none.

    See the module docstring for the order of rules. `fallback` picks how far to go when there is neither a box nor a
    `####` line: "none" stops there, "answer_is" also reads "the answer is X", "last_number" (the default) also
    takes the last number. Whitespace and surrounding `$...$` are stripped; use `normalize_answer` to compare strings.
    """
    if fallback not in FALLBACKS:
        raise ValueError(f"fallback must be one of {FALLBACKS}, got {fallback!r}")
    if not isinstance(text, str) or not text:
        return None
    text = tail(text)
    if _BOX_RE.search(text):
        boxed = last_boxed(text)
        return _strip_math_delimiters(boxed) if boxed else None
    answer = _gsm8k_answer(text)
    if answer is None and fallback in ("answer_is", "last_number"):
        answer = _answer_is(text)
    if answer is None and fallback == "last_number":
        answer = _last_number(text)
    return answer


# ---------------------------------------------------------------------------------------------------------------------
# Normalisation: cheap, conservative string clean-up. math-verify does the real equivalence (fractions vs decimals,
# sets, intervals); this only removes what is not part of the value (units, degree marks, currency, spacing,
# zero padding) so that exact string matches and string-compared benchmarks work.

_TEXT_CMD = r"\\(?:text|textbf|textit|mbox|mathrm|mathbf|operatorname)"
_UNIT_AFTER_VALUE_RE = re.compile(
    r"(?<=[0-9})\]])\s*" + _TEXT_CMD + r"\s*\{\s*[A-Za-z][A-Za-z .\-/]*\}(?:\s*\^\s*\{?\s*[23]\s*\}?)?\s*$"
)
_WHOLE_TEXT_RE = re.compile(r"^" + _TEXT_CMD + r"\s*\{([^{}]*)\}$")
_DEGREE_RE = re.compile(r"\s*(?:\^\s*\{?\s*\\circ\s*\}?|\\circ|°|\\degree(?![A-Za-z])|\^\s*\{\s*\\text\{\s*o\s*\}\s*\})")
_SPACING_RE = re.compile(r"\\[,;:!](?![A-Za-z])|\\quad(?![A-Za-z])|\\qquad(?![A-Za-z])|~")
_LEFT_RIGHT_RE = re.compile(r"\\(?:left|right)(?![A-Za-z])")
# Digit groups, as math-verify's own number grammar reads plain text (its tests settle it: "7,425,000", "1 000",
# "1,000.99" are thousands; "0,111", "1,22", "1000,99" are not). A group separator is ONE comma or space, and the
# first group starts with a non-zero digit, so "0,111" (0.111 to math-verify) never becomes 111 and "32, 349" (two
# numbers) never becomes 32349.
_THOUSANDS_RE = re.compile(r"^-?[1-9]\d{0,2}(?:[ ,]\d{3})+(?:\.\d+)?$")
# Digits, one comma, digits, and not thousands: a decimal comma in plain text ("1,22" is 1.22 to math-verify's
# number grammar), a list in LaTeX ("\\boxed{1,22}" is the set {1, 22} to its LaTeX grammar; MATH writes lists
# like "-2,1" and "0,1"). Such an answer is read both ways (`answer_readings`).
_DECIMAL_COMMA_RE = re.compile(r"^-?\d+,\d+$")
_PADDED_INT_RE = re.compile(r"^(-?)0+(\d+)$")


def strip_units(answer: str) -> str:
    """Drop a trailing unit written as text (`5\\text{ cm}`, `5 \\mbox{inches}^2`) and degree marks (`30^\\circ`).

    A string that is only `\\text{...}` keeps its text (`\\text{Evelyn}` -> `Evelyn`): that is the answer itself.
    """
    s = _DEGREE_RE.sub("", answer)
    previous = None
    while previous != s:  # `5\text{ m}\text{/s}`: strip repeatedly
        previous = s
        s = _UNIT_AFTER_VALUE_RE.sub("", s).strip()
    whole = _WHOLE_TEXT_RE.match(s)
    if whole:
        s = whole.group(1).strip()
    return s


def normalize_answer(answer: str) -> str:
    """Canonical string form of an answer (prediction or gold) for exact comparison. Never changes the value."""
    s = _strip_math_delimiters(answer)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = s.replace("{,}", ",")
    s = re.sub(r",\s*\\!\s*", ",", s)  # MATH's thousands separator `10,\!080` (also `11,\! 111`): one comma
    s = _SPACING_RE.sub(lambda m: "" if m.group(0) == "\\!" else " ", s)
    s = _LEFT_RIGHT_RE.sub("", s)
    s = strip_units(s)
    s = re.sub(r"^\\\$\s*|^\$\s*", "", s)  # currency: \$18
    s = s.strip().rstrip(".").strip()
    s = re.sub(r"\s+", " ", s)
    if _THOUSANDS_RE.match(s):
        s = s.replace(",", "").replace(" ", "")
    padded = _PADDED_INT_RE.match(s)
    if padded:  # AIME "025" -> "25"
        s = padded.group(1) + padded.group(2)
        if s == "-0":
            s = "0"
    return s


def gold_answer(gold: str) -> str:
    """Normalise a gold answer from any dataset to the form `normalize_answer` gives a prediction.

    Accepts a bare answer ("025", "\\frac{1}{2}", "5\\text{ cm}"), a GSM8K solution ending in `#### N` (calculator
    annotations `<<...>>` removed), or a MATH-style solution with `\\boxed{}` (its last box). Returns "" when nothing is
    left; loaders reject such rows with an error naming the row. (The reward reads a gold through `gold_text` and
    `answer_readings` instead, as math-verify does: there a solution's several boxes make one set.)
    """
    if not isinstance(gold, str):
        gold = str(gold)
    text = tail(gold)
    if "####" in text:
        answer = _gsm8k_answer(text) or ""
    elif _BOX_RE.search(text):
        answer = last_boxed(text) or ""
    else:
        answer = text
    return normalize_answer(answer)


# ---------------------------------------------------------------------------------------------------------------------
# Readings: the texts math-verify parses for a gold or a predicted answer (`rewards.verify`). Pure string work here.
#
# math-verify reads two grammars. Plain text goes through its number grammar (decimal commas, spaced thousands, "the
# final answer is 42"); LaTeX goes through its LaTeX grammar, inside `$...$`, `\(...\)`, `\[...\]` or a box. A bare
# answer such as MATH's `2\sqrt{3}` or `(1,2]` is LaTeX without delimiters: read as plain text it becomes 2 (or
# nothing), so a bare answer is read inside a box, as LaTeX. A text that already has delimiters or a box (a worked
# solution, "$\boxed{1}\boxed{2}$") is read as math-verify reads it, whole: several boxes make one set.

# `\$` is a dollar sign (currency), not a delimiter.
_DELIMITED_RE = re.compile(r"(?<!\\)\$|\\\(|\\\[|\\(?:boxed|fbox)(?![A-Za-z])")
_TEXT_GROUP_RE = re.compile(_TEXT_CMD + r"\s*\{[^{}]*\}")
# Two words in a row, outside LaTeX commands and \text{}: "The total is 42", "5 square units" (not "x y", "\sin x").
_PROSE_RE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}[ \t]+[A-Za-z]{2,}(?![A-Za-z])")


def is_delimited(text: str) -> bool:
    """Whether `text` holds math delimiters or a box: math-verify reads such a text as it stands."""
    return _DELIMITED_RE.search(text) is not None


def is_prose(text: str) -> bool:
    """Whether `text` has words in a row outside LaTeX commands and `\\text{}` ("The total is 42.")."""
    return _PROSE_RE.search(_TEXT_GROUP_RE.sub(" ", text)) is not None


def gold_text(gold) -> str:
    """The part of a dataset's gold that is read: the answer after a GSM8K `####` (calculator annotations removed),
    else the whole gold (a bare answer, a worked solution with its boxes, or prose). "" when nothing is there."""
    text = tail(gold if isinstance(gold, str) else str(gold)).strip()
    if "####" in text:
        return _gsm8k_answer(text) or ""
    return text


def answer_readings(text: str) -> tuple[str, ...]:
    """The texts math-verify parses for one answer (a gold from `gold_text`, or a completion's extracted answer); its
    verdict credits a match between any reading of the gold and any reading of the prediction.

    - delimited (`$`, `\\(`, `\\[`, a box) or prose ("The total is 42."): the text as it stands, as math-verify reads
      it (42 here; nothing at all in "Nothing to see here", which then scores None, never a silent 0);
    - bare: `\\boxed{normalize_answer(text)}`, LaTeX. A decimal comma also keeps math-verify's plain-text reading
      ("1,22": 1.22 as text, the list 1, 22 as LaTeX; both stay, so neither reading is lost).
    () when nothing is left to read.
    """
    text = text.strip()
    if not text:
        return ()
    if is_delimited(text) or is_prose(text):
        return (text,)
    normalized = normalize_answer(text)
    if not normalized:
        return ()
    if _DECIMAL_COMMA_RE.match(normalized):
        return ("\\boxed{" + normalized + "}", normalized)
    return ("\\boxed{" + normalized + "}",)


def completion_text(completion) -> str:
    """The text of one completion: a string, or the content of the last message of a conversational completion."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    if isinstance(completion, list) and completion:
        content = completion[-1].get("content", "") if isinstance(completion[-1], dict) else completion[-1]
        if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
            return "".join(part.get("text", "") for part in content if isinstance(part, dict))
        return content if isinstance(content, str) else ""
    return ""
