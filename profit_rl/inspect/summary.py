"""Every number of the `profit-rl inspect` report (summary.json), from the inspected rows: the kept-fraction table,
core-vs-trivial statistics, the end-of-turn token and the tokens worth protecting."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict

import numpy as np

from .options import InspectConfig
from .stats import class_stats, kept_summary, protection_candidates, spearman
from .token_scores import InspectedRow


def concat(rows: list[InspectedRow], name: str) -> np.ndarray:
    """One field of every row, end to end: an array over all the inspected tokens."""
    return np.concatenate([getattr(r, name) for r in rows])


def summarize(
    config: InspectConfig, rows: list[InspectedRow], taus: list, eos_token_id: int | None = None, eos_token=None
) -> dict:
    """Every number of the report (summary.json); the kept marks come from the rows, the rule is not rerun."""
    if not rows or sum(len(r.log_p) for r in rows) == 0:
        raise ValueError("no supervised tokens to inspect (every row empty after tokenisation)")
    p = np.exp(concat(rows, "log_p"))
    is_core, labelled, entropy = concat(rows, "is_core"), concat(rows, "labelled"), concat(rows, "entropy")
    kept = concat(rows, "kept")
    shown = np.concatenate([r.weights[config.selection] for r in rows])

    table = []
    for i, tau in enumerate(taus):
        # a rule with tau keeps 0/1 weights, so its marks are its weights; a rule without tau has one column
        w = shown if tau is None else kept[:, i].astype(np.float64)
        row = {"tau": tau, **kept_summary(p[labelled], w[labelled], is_core[labelled])}
        row.update(kept_summary(p, w))  # kept/weight/loss over every token, labelled or not
        table.append(row)
    return {
        "config": asdict(config),
        "rows": len(rows),
        "supervised_tokens": len(p),
        "mean_p": float(p.mean()),
        "median_p": float(np.median(p)),
        "mean_entropy": float(entropy.mean()),
        "table": table,
        "classes": class_stats(p[labelled], is_core[labelled], shown[labelled] > 0),
        "labelling": "built-in heuristic (digits, operators, LaTeX math = core)"
        if config.labels is None
        else config.labels,
        "unlabelled_tokens": int((~labelled).sum()),
        "p_entropy_spearman": spearman(p, entropy),
        "eos": eos_summary(rows, config.selection, eos_token_id, eos_token),
        "protected_tokens": int(concat(rows, "protected").sum()),
        "protect_candidates": candidates(config, rows),
    }


def eos_summary(rows: list[InspectedRow], selection: str, eos_token_id: int | None, eos_token=None) -> dict:
    """The end-of-turn token: a base model often gives it a low p, and a rule that drops it never teaches stopping."""
    if eos_token_id is None:
        return {"tokens": 0}
    is_eos = concat(rows, "token_ids") == eos_token_id
    p = np.exp(concat(rows, "log_p"))[is_eos]
    kept = (np.concatenate([r.weights[selection] for r in rows]) > 0)[is_eos]
    return {
        "token_id": int(eos_token_id),
        "token": eos_token,
        "tokens": int(is_eos.sum()),
        "mean_p": float(p.mean()) if len(p) else math.nan,
        "dropped_fraction": float((~kept).mean()) if len(p) else math.nan,
    }


def candidates(config: InspectConfig, rows: list[InspectedRow]) -> list[dict]:
    """Tokens worth protecting: nearly every row contains them, and the shown rule drops them in most of those rows.

    Each comes with its text, mean p and its most frequent context (the token with its neighbours), from which a
    protected string is easy to write.
    """
    found = protection_candidates(
        [r.token_ids for r in rows],
        [r.weights[config.selection] > 0 for r in rows],
        config.candidate_min_rows,
        config.candidate_min_dropped,
    )
    ids = {c["token_id"] for c in found}
    texts, contexts, p = {t: Counter() for t in ids}, {t: Counter() for t in ids}, {t: [] for t in ids}
    for r in rows:
        for j, token in enumerate(r.token_ids.tolist()):
            if token in ids:
                texts[token][r.pieces[j]] += 1
                contexts[token]["".join(r.pieces[max(0, j - 1) : j + 2])] += 1
                p[token].append(math.exp(r.log_p[j]))
    for c in found:
        token = c["token_id"]
        c.update(
            token=texts[token].most_common(1)[0][0],
            context=contexts[token].most_common(1)[0][0],
            mean_p=float(np.mean(p[token])),
        )
    return found

