"""The self-contained HTML page of `profit-rl inspect`, rendered from `templates/inspect.html.j2` with jinja2.

Each shown supervised token is exactly one `<span class="tok">` carrying its p, entropy and class as data attributes,
and one flag per tabulated tau ("1" kept, "0" dropped): the row's `kept` marks, computed once by
`profit_rl.losses.token_weights` (and `protect`). The page's tau buttons only switch between those marks, so the
browser never re-implements the rule. This module turns numbers into display values; the template holds the layout.
"""

from __future__ import annotations

import base64
import math

import numpy as np
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from ..losses import SELECTIONS


def p_colour(p: float) -> str:
    """Background of a token: red at p = 0, through amber, to pale green at p = 1 (readable black text throughout)."""
    hue = 120.0 * p
    lightness = 80.0 + 8.0 * p
    return f"hsl({hue:.0f},85%,{lightness:.0f}%)"


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _fmt(x, digits: int = 3) -> str:
    return "–" if _missing(x) else f"{x:.{digits}f}"


def _tau(tau) -> str:
    return "–" if tau is None else f"{tau:g}"


def _pct(x) -> str:
    return "–" if _missing(x) else f"{100 * x:.1f}%"


def _p_value(p) -> str:
    if _missing(p):
        return "–"
    return "< 1e-300" if p == 0 else f"{p:.2g}"


def _visible(text: str) -> str:
    """A token's text with its spaces and line breaks shown (a leading space is what tells ' \\' from '\\')."""
    return text.replace(" ", "␣").replace("\n", "↵")


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("profit_rl.inspect", "templates"), autoescape=True, undefined=StrictUndefined)
    env.filters.update(fmt=_fmt, tau=_tau, pct=_pct, p_value=_p_value, p_colour=p_colour, visible=_visible)
    return env


def _prompt_text(prompt: list[dict], limit: int = 2000) -> str:
    text = "\n\n".join(f"[{m['role']}] {m['content']}" for m in prompt)
    return text if len(text) <= limit else text[:limit] + f" … ({len(text) - limit} more characters)"


def _example(r, source: dict, tau_index: int) -> dict:
    """What the template shows of one row: its header numbers and one entry per token."""
    flags = ["".join("1" if k else "0" for k in marks) for marks in r.kept]
    labels = np.where(r.labelled, np.where(r.is_core, "core", "trivial"), "unlabelled")
    tokens = [
        {
            "text": piece.replace("\n", "↵\n") if piece.strip() or "\n" in piece else piece,
            "p": math.exp(r.log_p[j]),
            "h": r.entropy[j],
            "label": labels[j],
            "flags": flags[j],
            "kept": bool(r.kept[j, tau_index]),
            "protected": bool(r.protected[j]),
        }
        for j, piece in enumerate(r.pieces)
    ]
    return {
        "row": r.row,
        "id": source["id"],
        "source_row": source["source_row"],
        "n": len(tokens),
        "kept": int(r.kept[:, tau_index].sum()),
        "mean_p": float(np.exp(r.log_p).mean()) if tokens else math.nan,
        "prompt": _prompt_text(source["prompt"]),
        "tokens": tokens,
    }


def render_report(config, summary: dict, source_rows: list[dict], rows: list, histogram_png: bytes) -> str:
    """The page: `summary` (summarize's numbers), the first `config.show` of `rows` (InspectedRow) token by token."""
    taus = [row["tau"] for row in summary["table"]]
    tau_index = taus.index(config.tau) if config.tau in taus else 0
    current = summary["table"][tau_index]
    classes, mwu = summary["classes"], summary["classes"]["mann_whitney"]
    cards = [
        (_pct(current["kept_fraction"]), f"tokens kept at τ={config.tau:g}" if taus != [None] else "tokens kept"),
        (_pct(current["loss_mass_kept"]), "share of the SFT loss Σ−log p they carry"),
        (f"{_fmt(classes['core']['mean_p'])} / {_fmt(classes['trivial']['mean_p'])}", "mean p: core / trivial"),
        (_p_value(mwu["p"]), f"Mann-Whitney p (core vs trivial), P(core>trivial)={_fmt(mwu['effect'], 2)}"),
    ]
    return _environment().get_template("inspect.html.j2").render(
        config=config,
        summary=summary,
        rule=f"{config.selection} ({SELECTIONS[config.selection]})",
        cards=cards,
        taus=taus,
        tau_index=tau_index,
        classes=classes,
        mwu=mwu,
        verdict=premise_sentence(classes, mwu),
        eos=summary.get("eos", {}),
        examples=[_example(r, source_rows[r.row], tau_index) for r in rows[: config.show]],
        ramp=", ".join(p_colour(x / 10) for x in range(11)),
        histogram=base64.b64encode(histogram_png).decode("ascii"),
    )


def premise_sentence(classes: dict, mwu: dict) -> Markup:
    """One plain sentence on whether this model and data agree with the paper's premise."""
    core, trivial = classes["core"]["mean_p"], classes["trivial"]["mean_p"]
    if _missing(core) or _missing(trivial) or _missing(mwu["p"]):
        return Markup("Not enough tokens of both classes to compare.")
    if mwu["p"] < 0.01 and mwu["effect"] > 0.5:
        return Markup(
            f"Core tokens are predicted with higher probability than trivial ones ({_fmt(core)} vs {_fmt(trivial)}): "
            "the premise holds here, so a p threshold drops mostly phrasing."
        )
    if mwu["p"] < 0.01:
        return Markup(
            f"Core tokens have <b>lower</b> p than trivial ones ({_fmt(core)} vs {_fmt(trivial)}): a p threshold "
            "would drop content first. Check the labels, or prefer a lower τ."
        )
    return Markup(
        f"No significant difference between core and trivial tokens ({_fmt(core)} vs {_fmt(trivial)}): on this "
        "model and data, p does not separate content from phrasing."
    )
