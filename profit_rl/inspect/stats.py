"""Pure statistics behind `profit-rl inspect`: token classes, the Mann-Whitney U test, a rank correlation, kept
fractions at several tau, and the tokens worth protecting.

No model and no I/O here: every function takes arrays (or text) and returns numbers, so each one is tested on
hand-made cases. The selection rule itself is NOT here: it is `profit_rl.losses.token_weights`, the trainer's own.

The paper's premise (arXiv 2601.09195, Sec. 3) is that semantically trivial tokens of a single reference answer sit in
the low-probability tail while core tokens (numbers, operators, math) do not. `core_char_mask` is a transparent
heuristic for "core"; `class_stats` and `mann_whitney_u` then test the premise on any model and data.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np

# The tau values every report tabulates (the user's own taus are added to these).
TABLE_TAUS = (0.05, 0.1, 0.2, 0.3, 0.5)

# Display math first ($$...$$, \[...\]), then inline math. Inline `$...$` follows pandoc's rule (the opening `$` is
# followed by a non-space, the closing one preceded by a non-space and not followed by a digit), so the currency
# signs of GSM8K-style text ("$100 and $15") are not read as a formula.
MATH_SPAN = re.compile(
    r"\$\$.+?\$\$|\\\[.+?\\\]|\\\(.+?\\\)|\$(?=\S)(?:[^$\n\\]|\\.)+?(?<=\S)\$(?!\d)",
    re.DOTALL,
)
LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")
# Operators that are math wherever they appear, and those that are math only next to a number or a bracket
# ("48-24", "12/60", "0.2 * 50") but not in prose ("well-known", "and/or", "**bold**").
ALWAYS_OPERATORS = set("=+^×÷±−≤≥≠√∑∫")
NEAR_NUMBER_OPERATORS = set("-*/%<>")


def _neighbour(text: str, i: int, step: int) -> str:
    """The nearest non-space character from position i in direction step, or ''."""
    j = i + step
    while 0 <= j < len(text) and text[j] in " \t":
        j += step
    return text[j] if 0 <= j < len(text) else ""


def core_char_mask(text: str) -> np.ndarray:
    """Built-in heuristic: True for each character of `text` that is "core" (digits, operators, LaTeX math)."""
    core = np.zeros(len(text), dtype=bool)
    for match in MATH_SPAN.finditer(text):
        core[match.start() : match.end()] = True
    for match in LATEX_COMMAND.finditer(text):
        core[match.start() : match.end()] = True
    for i, ch in enumerate(text):
        if ch.isdigit() or ch in ALWAYS_OPERATORS:
            core[i] = True
        elif ch in NEAR_NUMBER_OPERATORS:
            around = _neighbour(text, i, -1) + _neighbour(text, i, 1)
            core[i] = any(c.isdigit() or c in "()[]{}" for c in around)
    return core


def token_core_labels(pieces: list[str]) -> list[bool]:
    """Core/trivial per token, from the token texts of one completion (in order, concatenating to its text).

    A token is core when any non-space character it covers is core: a token " 72" is core, a token " the" is not.
    A whitespace-only token is core only inside math (a space in `$a + b$`).
    """
    text = "".join(pieces)
    core = core_char_mask(text)
    labels, start = [], 0
    for piece in pieces:
        end = start + len(piece)
        chars = [i for i in range(start, end) if not text[i].isspace()] or list(range(start, end))
        labels.append(bool(chars) and bool(core[chars].any()))
        start = end
    return labels


def average_ranks(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """1-based ranks with ties given their average rank, and the size of each tie group."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    starts = np.r_[True, sorted_values[1:] != sorted_values[:-1]] if len(values) else np.zeros(0, dtype=bool)
    first = np.flatnonzero(starts)
    counts = np.diff(np.r_[first, len(values)])
    group = np.cumsum(starts) - 1
    ranks = np.empty(len(values))
    ranks[order] = (first + (counts + 1) / 2.0)[group]
    return ranks, counts


def mann_whitney_u(x, y) -> dict:
    """Two-sided Mann-Whitney U test of x against y, normal approximation with tie and continuity correction.

    This is scipy.stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic") (same U, z and p), written
    out so the toolkit does not depend on scipy. With tens of thousands of tokens the normal approximation is exact
    for all practical purposes.

    Returns:
        u: U statistic of x (number of (x, y) pairs with x > y, ties counted one half).
        effect: u / (n_x * n_y), the probability that a random x exceeds a random y (0.5: no difference).
        z: the standardised statistic (>= 0), p: two-sided p-value; nan when a sample is empty or all values tie.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n_x, n_y = len(x), len(y)
    result = {"n_x": n_x, "n_y": n_y, "u": math.nan, "effect": math.nan, "z": math.nan, "p": math.nan}
    if n_x == 0 or n_y == 0:
        return result
    ranks, ties = average_ranks(np.concatenate([x, y]))
    u = float(ranks[:n_x].sum() - n_x * (n_x + 1) / 2.0)
    n = n_x + n_y
    mean = n_x * n_y / 2.0
    tie_term = float((ties.astype(np.float64) ** 3 - ties).sum()) / (n * (n - 1)) if n > 1 else 0.0
    variance = n_x * n_y / 12.0 * ((n + 1) - tie_term)
    result.update(u=u, effect=u / (n_x * n_y))
    if variance <= 0:  # every value equal: no evidence either way
        return result
    z = max(abs(u - mean) - 0.5, 0.0) / math.sqrt(variance)
    result.update(z=z, p=min(1.0, math.erfc(z / math.sqrt(2.0))))
    return result


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Rank correlation of p and entropy (how much the `entropy` rule and the p rules overlap)."""
    if len(x) < 2:
        return math.nan
    rx, ry = average_ranks(x)[0], average_ranks(y)[0]
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = math.sqrt(float((rx * rx).sum() * (ry * ry).sum()))
    return float((rx * ry).sum() / denominator) if denominator else math.nan


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else math.nan


def class_stats(p: np.ndarray, is_core: np.ndarray, kept: np.ndarray) -> dict:
    """The paper's analysis: mean/median p of core and trivial tokens, the U test between them, who the rule drops.

    Args:
        p: probability of every supervised token; is_core: its class; kept: whether the rule keeps it (weight > 0).
    """
    p, is_core, kept = np.asarray(p, dtype=np.float64), np.asarray(is_core, dtype=bool), np.asarray(kept, dtype=bool)
    classes = {}
    for name, member in (("core", is_core), ("trivial", ~is_core)):
        values = p[member]
        classes[name] = {
            "tokens": int(member.sum()),
            "mean_p": _mean(values),
            "median_p": float(np.median(values)) if len(values) else math.nan,
            "dropped_fraction": _mean(~kept[member]),
        }
    dropped = ~kept
    return {
        **classes,
        "trivial_share_of_dropped": _mean(~is_core[dropped]),
        "trivial_share_of_all": _mean(~is_core),
        "mann_whitney": mann_whitney_u(p[is_core], p[~is_core]),
    }


def kept_summary(p: np.ndarray, weights: np.ndarray, is_core: np.ndarray | None = None) -> dict:
    """What one rule at one tau keeps, over all supervised tokens.

    `weight_mass` is sum(w) / N, the trainer's `profit/weight_mass` metric (equal to the kept fraction for 0/1 rules).
    `loss_mass_kept` is the share of the plain SFT loss, sum(-log p), that kept tokens carry, weighted by w: the
    low-probability tokens ProFit drops carry most of the SFT gradient, so this is far below the kept fraction.
    """
    p, weights = np.asarray(p, dtype=np.float64), np.asarray(weights, dtype=np.float64)
    kept = weights > 0
    nll = -np.log(np.clip(p, 1e-45, 1.0))
    summary = {
        "tokens": len(p),
        "kept_fraction": _mean(kept),
        "weight_mass": _mean(weights),
        "loss_mass_kept": float((weights * nll).sum() / nll.sum()) if nll.sum() > 0 else math.nan,
        "mean_p_kept": _mean(p[kept]),
        "mean_p_dropped": _mean(p[~kept]),
    }
    if is_core is not None:
        is_core = np.asarray(is_core, dtype=bool)
        summary["core_dropped_fraction"] = _mean(~kept[is_core])
        summary["trivial_dropped_fraction"] = _mean(~kept[~is_core])
    return summary


def protection_candidates(token_ids: list, kept: list, min_rows: float = 0.9, min_dropped: float = 0.5) -> list[dict]:
    """Tokens that nearly every row contains and that a rule drops in most of those rows.

    These are format markers a p rule never trains: the model gives them a low p, yet every reference has them. The
    paper's rule makes no exception for them; `ProFitConfig.protected_strings` does.

    Args:
        token_ids: per row, the ids of its supervised tokens; kept: per row, whether the rule keeps each one.
        min_rows: a candidate occurs in at least this share of the rows;
        min_dropped: and the rule drops it in at least this share of those rows. A row drops a token when it keeps
            none of the token's occurrences there.

    Returns:
        One dict per candidate (token_id, rows, row_share, dropped_rows, dropped_share), the most often dropped first.
    """
    n = len(token_ids)
    contains, dropped = Counter(), Counter()
    for ids, keep in zip(token_ids, kept):
        ids, keep = np.asarray(ids), np.asarray(keep, dtype=bool)
        present = set(ids.tolist())
        contains.update(present)
        dropped.update(present - set(ids[keep].tolist()))
    found = [
        {
            "token_id": int(token),
            "rows": rows,
            "row_share": rows / n,
            "dropped_rows": dropped[token],
            "dropped_share": dropped[token] / rows,
        }
        for token, rows in contains.items()
        if rows >= min_rows * n and dropped[token] >= min_dropped * rows
    ]
    return sorted(found, key=lambda c: (-c["dropped_share"], -c["rows"], c["token_id"]))
