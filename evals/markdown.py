"""Markdown for results.md, compare.md and report.md: numbers as percentages, and user strings escaped.

A model path, a label or a benchmark title comes from the user: written raw, a `|` adds a table cell, a newline ends
the table, a `#` starts a heading and a backtick ends a code span. Every user string goes through `text` (table cells
and prose) or `code` (an inline code span); a command block goes inside `fence`.
"""

from __future__ import annotations

import re

_SPECIAL = re.compile(r"([\\`*_\[\]{}<>#|!~])")


def pct(x: float) -> str:
    """0.254 -> '25.4' (tables give values in %)."""
    return f"{100 * x:.1f}"


def signed(x: float) -> str:
    """A difference in points: 0.02 -> '+2.0'."""
    return f"{100 * x:+.1f}"


def _one_line(value) -> str:
    return " ".join(str(value).split())


def text(value) -> str:
    """A user string as literal markdown text on one line (safe in a table cell)."""
    return _SPECIAL.sub(r"\\\1", _one_line(value))


def code(value) -> str:
    """A user string as one inline code span: the fence is longer than any run of backticks inside it."""
    value = _one_line(value)
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", value)), default=0) + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{ticks}{pad}{value}{pad}{ticks}"


def fence(body: str, info: str = "") -> str:
    """A fenced block around `body`, fenced with more backticks than any line of it starts with."""
    longest = max((len(m) for m in re.findall(r"^\s*(`{3,})", body, flags=re.M)), default=2)
    ticks = "`" * (longest + 1)
    return f"{ticks}{info}\n{body}\n{ticks}\n"


_ESCAPED = re.compile(r"\\([\\`*_\[\]{}<>#|!~])")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)


def terminal(markdown: str) -> str:
    """Markdown written by this module, for a terminal: the backslash escapes `text` added are taken out again (the
    file keeps them), so `\\boxed{}` prints as it reads; code spans are left as they are."""
    out, last = [], 0
    for span in _CODE_SPAN.finditer(markdown):
        out += [_ESCAPED.sub(r"\1", markdown[last:span.start()]), span.group(0)]
        last = span.end()
    out.append(_ESCAPED.sub(r"\1", markdown[last:]))
    return "".join(out)
