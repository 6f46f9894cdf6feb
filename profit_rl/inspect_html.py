"""The self-contained HTML page of `profit-rl inspect`: inline CSS and JS, the histogram as a base64 PNG, no network.

Each shown supervised token is exactly one `<span class="tok">` carrying its p, entropy and class as data attributes,
and one flag per tabulated tau ("1" kept, "0" dropped) computed by `profit_rl.losses.token_weights`: the page's tau
buttons only switch between those precomputed marks, so the browser never re-implements the rule.
"""

from __future__ import annotations

import base64
import html
import math

import numpy as np
import torch

from .losses import SELECTIONS, token_weights

CSS = """
:root { --fg:#1d2330; --muted:#687082; --line:#e3e6ec; --accent:#c0392b; }
* { box-sizing:border-box; }
body { font:14px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color:var(--fg);
       margin:0; background:#f6f7f9; }
main { max-width:1180px; margin:0 auto; padding:20px 28px 60px; }
h1 { font-size:22px; margin:4px 0 2px; } h2 { font-size:17px; margin:28px 0 8px; border-bottom:1px solid var(--line);
     padding-bottom:4px; } h3 { font-size:14px; margin:0 0 6px; }
.meta { color:var(--muted); margin:0; } code { font-size:12.5px; background:#eef0f4; padding:1px 4px; border-radius:3px; }
.cards { display:flex; gap:12px; flex-wrap:wrap; margin:14px 0 4px; }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:10px 14px; min-width:170px; flex:1; }
.card .v { font-size:21px; font-weight:600; } .card .k { color:var(--muted); font-size:12px; }
table { border-collapse:collapse; background:#fff; border:1px solid var(--line); font-variant-numeric:tabular-nums; }
th, td { padding:3px 9px; border-bottom:1px solid var(--line); text-align:right; white-space:nowrap; font-size:13px; }
th { background:#f0f2f5; font-weight:600; }
td:first-child, th:first-child { text-align:left; } tr.current td { background:#fff4e5; font-weight:600; }
.twocol { display:flex; gap:20px; flex-wrap:wrap; align-items:flex-start; } .twocol > * { flex:1 1 440px; }
img.hist { width:100%; max-width:880px; background:#fff; border:1px solid var(--line); border-radius:6px; }
.note { color:var(--muted); font-size:12.5px; max-width:900px; }
.warn { color:#8a4b00; background:#fff4e5; border:1px solid #f3d19c; border-radius:6px; padding:6px 10px; font-size:13px; }
.controls { position:sticky; top:0; z-index:2; background:#f6f7f9; padding:8px 0; display:flex; gap:14px;
            align-items:center; flex-wrap:wrap; border-bottom:1px solid var(--line); }
.controls button { border:1px solid #c8ccd4; background:#fff; border-radius:4px; padding:2px 9px; cursor:pointer; font:inherit; }
.controls button.on { background:var(--fg); color:#fff; border-color:var(--fg); }
.legend { display:inline-flex; align-items:center; gap:6px; color:var(--muted); font-size:12px; }
.ramp { width:160px; height:12px; border-radius:2px; border:1px solid var(--line); }
.example { background:#fff; border:1px solid var(--line); border-radius:8px; padding:12px 14px; margin:12px 0; }
.example .stats { color:var(--muted); font-size:12px; font-weight:normal; margin-left:8px; }
details { margin:0 0 8px; } summary { cursor:pointer; color:var(--muted); font-size:12.5px; }
pre.prompt { white-space:pre-wrap; background:#f6f7f9; padding:8px; border-radius:4px; font-size:12.5px; margin:6px 0 0;
             max-height:220px; overflow:auto; }
.completion { white-space:pre-wrap; font:13px/1.75 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; word-break:break-word; }
.tok { border-radius:2px; padding:1px 0; cursor:default; }
.tok.dropped { color:#8a8f99; text-decoration:line-through; text-decoration-color:#c0392b; text-decoration-thickness:1.5px; }
.tok:hover { outline:1.5px solid #1d2330; }
#tip { position:fixed; pointer-events:none; background:#1d2330; color:#fff; font-size:12px; padding:5px 8px;
       border-radius:4px; display:none; z-index:5; white-space:pre; font-family:ui-monospace, Menlo, Consolas, monospace; }
"""

JS = """
const taus = JSON.parse(document.getElementById('taus').textContent);
const tip = document.getElementById('tip');
let current = 0;
function mark(i) {
  current = i;
  document.querySelectorAll('.completion .tok').forEach(t => t.classList.toggle('dropped', t.dataset.k[i] === '0'));
  document.querySelectorAll('.controls button').forEach((b, j) => b.classList.toggle('on', j === i));
  document.querySelectorAll('tr[data-tau-index]').forEach(r => r.classList.toggle('current', +r.dataset.tauIndex === i));
  document.querySelectorAll('.example').forEach(ex => {
    const toks = ex.querySelectorAll('.tok'); let kept = 0;
    toks.forEach(t => { if (t.dataset.k[i] === '1') kept++; });
    ex.querySelector('.kept').textContent = kept + '/' + toks.length;
  });
}
document.querySelectorAll('.controls button').forEach((b, j) => b.addEventListener('click', () => mark(j)));
// A link to the page with #tau=0.2 opens with that tau's marks (and the headless-browser check uses it).
const wanted = parseFloat((location.hash.match(/tau=([0-9.]+)/) || [])[1]);
if (!isNaN(wanted) && taus.indexOf(wanted) >= 0) mark(taus.indexOf(wanted));
document.addEventListener('mouseover', e => {
  const t = e.target.closest('.completion .tok'); if (!t) { tip.style.display = 'none'; return; }
  const kept = t.dataset.k[current] === '1';
  tip.textContent = 'p        ' + t.dataset.p + '\\nentropy  ' + t.dataset.h + ' nats\\nclass    ' + t.dataset.c +
    '\\n' + (kept ? 'kept' : 'dropped') + (taus[current] === null ? '' : ' at tau=' + taus[current]);
  tip.style.display = 'block';
});
document.addEventListener('mousemove', e => {
  tip.style.left = Math.min(e.clientX + 14, window.innerWidth - 190) + 'px'; tip.style.top = (e.clientY + 16) + 'px';
});
"""


def p_colour(p: float) -> str:
    """Background of a token: red at p = 0, through amber, to pale green at p = 1 (readable black text throughout)."""
    hue = 120.0 * p
    lightness = 80.0 + 8.0 * p
    return f"hsl({hue:.0f},85%,{lightness:.0f}%)"


def _fmt(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{digits}f}"


def _tau(tau) -> str:
    return "–" if tau is None else f"{tau:g}"


def _pct(x) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def _p_value(p) -> str:
    if p is None or math.isnan(p):
        return "–"
    return "< 1e-300" if p == 0 else f"{p:.2g}"


def kept_flags(config, summary: dict, r: dict) -> list[str]:
    """Per token, one '1'/'0' per tabulated tau: kept by `config.selection` there (the trainer's token_weights)."""
    taus = [row["tau"] for row in summary["table"]]
    if taus == [None]:  # a rule without tau: the per-batch weights recorded while scoring
        columns = [r["weights"][config.selection] > 0]
    else:
        log_p = torch.from_numpy(r["log_p"])[None]
        mask = torch.ones_like(log_p, dtype=torch.bool)
        columns = [
            token_weights(log_p, mask, config.selection, tau=t, tau_high=config.tau_high, top_ratio=config.top_ratio)[
                0
            ].numpy()
            > 0
            for t in taus
        ]
    return ["".join("1" if col[j] else "0" for col in columns) for j in range(len(r["log_p"]))]


def render_tokens(config, summary: dict, r: dict, tau_index: int) -> str:
    flags = kept_flags(config, summary, r)
    spans = []
    for j, piece in enumerate(r["pieces"]):
        p = math.exp(r["log_p"][j])
        label = ("core" if r["is_core"][j] else "trivial") if r["labelled"][j] else "unlabelled"
        state = "tok" if flags[j][tau_index] == "1" else "tok dropped"
        text = html.escape(piece.replace("\n", "↵\n") if piece.strip() or "\n" in piece else piece)
        spans.append(
            f'<span class="{state}" style="background:{p_colour(p)}" data-p="{p:.4f}" data-h="{r["entropy"][j]:.3f}" '
            f'data-c="{label}" data-k="{flags[j]}">{text}</span>'
        )
    return "".join(spans)


def _prompt_text(prompt: list[dict], limit: int = 2000) -> str:
    text = "\n\n".join(f"[{m['role']}] {m['content']}" for m in prompt)
    return text if len(text) <= limit else text[:limit] + f" … ({len(text) - limit} more characters)"


def render_report(config, summary: dict, rows: list[dict], scored: list[dict], histogram_png: bytes) -> str:
    taus = [row["tau"] for row in summary["table"]]
    tau_index = taus.index(config.tau) if config.tau in taus else 0
    current = summary["table"][tau_index]
    classes, mwu = summary["classes"], summary["classes"]["mann_whitney"]
    rule = f"{config.selection} ({SELECTIONS[config.selection]})"
    esc = html.escape

    cards = [
        (_pct(current["kept_fraction"]), f"tokens kept at τ={config.tau:g}" if taus != [None] else "tokens kept"),
        (_pct(current["loss_mass_kept"]), "share of the SFT loss Σ−log p they carry"),
        (f"{_fmt(classes['core']['mean_p'])} / {_fmt(classes['trivial']['mean_p'])}", "mean p: core / trivial"),
        (_p_value(mwu["p"]), f"Mann-Whitney p (core vs trivial), P(core&gt;trivial)={_fmt(mwu['effect'], 2)}"),
    ]
    card_html = "".join(f'<div class="card"><div class="v">{v}</div><div class="k">{k}</div></div>' for v, k in cards)

    head = (
        "<tr><th>τ</th><th>kept</th><th>weight mass</th><th>loss kept</th><th>p̄ kept</th>"
        "<th>p̄ dropped</th><th>core dropped</th><th>trivial dropped</th></tr>"
    )
    body = "".join(
        f'<tr data-tau-index="{i}"{" class=current" if i == tau_index else ""}><td>{_tau(row["tau"])}</td>'
        f"<td>{_pct(row['kept_fraction'])}</td><td>{_fmt(row['weight_mass'])}</td><td>{_pct(row['loss_mass_kept'])}</td>"
        f"<td>{_fmt(row['mean_p_kept'])}</td><td>{_fmt(row['mean_p_dropped'])}</td>"
        f"<td>{_pct(row.get('core_dropped_fraction'))}</td><td>{_pct(row.get('trivial_dropped_fraction'))}</td></tr>"
        for i, row in enumerate(summary["table"])
    )
    class_rows = "".join(
        f"<tr><td>{name}</td><td>{c['tokens']}</td><td>{_fmt(c['mean_p'])}</td><td>{_fmt(c['median_p'])}</td>"
        f"<td>{_pct(c['dropped_fraction'])}</td></tr>"
        for name, c in ((n, classes[n]) for n in ("core", "trivial"))
    )
    verdict = premise_sentence(classes, mwu)
    eos = summary.get("eos", {})
    eos_note = ""
    if eos.get("tokens"):
        eos_note = (
            f'<p class="{"warn" if eos["dropped_fraction"] > 0 else "note"}">The end-of-turn token '
            f"<code>{esc(str(eos.get('token')))}</code> ({eos['tokens']} in these rows, mean p {_fmt(eos['mean_p'])}) "
            f"is dropped in {_pct(eos['dropped_fraction'])} of the rows at τ={config.tau:g}"
            + (
                ": a dropped end-of-turn token is never trained, so the model does not learn to stop there."
                if eos["dropped_fraction"] > 0
                else "."
            )
            + "</p>"
        )

    examples = []
    for r in scored[: config.show]:
        row = rows[r["row"]]
        n = len(r["pieces"])
        kept = sum(1 for f in kept_flags(config, summary, r) if f[tau_index] == "1")
        p_mean = float(np.exp(r["log_p"]).mean()) if n else math.nan
        examples.append(
            f'<article class="example" data-row="{r["row"]}"><h3>{esc(row["id"])}'
            f'<span class="stats">source row {row["source_row"]} · {n} supervised tokens · kept '
            f'<span class="kept">{kept}/{n}</span> · mean p {_fmt(p_mean)}</span></h3>'
            f'<details><summary>prompt</summary><pre class="prompt">{esc(_prompt_text(row["prompt"]))}</pre></details>'
            f'<div class="completion">{render_tokens(config, summary, r, tau_index)}</div></article>'
        )
    buttons = "".join(
        f"<button{' class=on' if i == tau_index else ''}>τ={t:g}</button>" for i, t in enumerate(taus) if t is not None
    )
    ramp = ", ".join(p_colour(x / 10) for x in range(11))
    png = base64.b64encode(histogram_png).decode("ascii")
    unlabelled = (
        f"<p class=note>{summary['unlabelled_tokens']} supervised tokens have no label in the labelling file and are "
        "left out of these statistics.</p>"
        if summary["unlabelled_tokens"]
        else ""
    )
    taus_json = "[" + ", ".join("null" if t is None else repr(float(t)) for t in taus) + "]"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>profit-rl inspect: {esc(config.model)}</title><style>{CSS}</style></head>
<body><main>
<h1>Which tokens does the rule keep?</h1>
<p class="meta">model <code>{esc(config.model)}</code> · data <code>{esc(config.data)}</code> · {summary["rows"]} rows ·
{summary["supervised_tokens"]} supervised tokens · rule <code>{esc(rule)}</code> · mean p {_fmt(summary["mean_p"])} ·
mean entropy {_fmt(summary["mean_entropy"])} nats</p>
<div class="cards">{card_html}</div>

<h2>Choosing τ</h2>
<div class="twocol">
<div><table>{head}{body}</table>
<p class="note"><b>kept</b>: share of supervised tokens with weight &gt; 0. <b>weight mass</b>: Σw / N, the
trainer's <code>profit/weight_mass</code>. <b>loss kept</b>: share of the plain SFT loss Σ−log p that the kept tokens
carry (low-p tokens carry most of it, so it falls much faster than the kept fraction). <b>p̄</b>: mean p.
<b>core / trivial dropped</b>: share of each class the rule drops. Click a τ above the examples to move the marks.</p></div>
<div><img class="hist" alt="histogram of p" src="data:image/png;base64,{png}"></div>
</div>
{eos_note}

<h2>Core vs trivial tokens</h2>
<div class="twocol"><div>
<table><tr><th>class</th><th>tokens</th><th>mean p</th><th>median p</th><th>dropped at τ={config.tau:g}</th></tr>{class_rows}</table>
{unlabelled}</div><div>
<p><b>Mann-Whitney U</b> (p of core vs trivial tokens, two-sided, normal approximation with tie correction):
U = {_fmt(mwu["u"], 1)}, z = {_fmt(mwu["z"], 2)}, p = {_p_value(mwu["p"])};
P(a core token has higher p than a trivial one) = {_fmt(mwu["effect"], 3)}.</p>
<p>{verdict}</p>
<p class="note">Labels: {esc(summary["labelling"])}. Of the tokens the rule drops, {_pct(classes["trivial_share_of_dropped"])}
are trivial (they are {_pct(classes["trivial_share_of_all"])} of all supervised tokens). The paper (arXiv 2601.09195)
reports mean p 0.485 for trivial and 0.768 for core tokens.</p>
</div></div>

<h2>Examples</h2>
<div class="controls"><span>marks at</span>{buttons}
<span class="legend">p = 0 <span class="ramp" style="background:linear-gradient(to right, {ramp})"></span> p = 1</span>
<span class="legend"><span class="tok dropped" style="background:{p_colour(0.05)}">dropped</span>
<span class="tok" style="background:{p_colour(0.9)}">kept</span> · hover a token for p and entropy</span></div>
{"".join(examples)}
<p class="note">{len(examples)} of {summary["rows"]} rows shown (<code>--show</code>); every row is in token_stats.csv.</p>
</main><div id="tip"></div>
<script id="taus" type="application/json">{taus_json}</script>
<script>{JS}</script>
</body></html>
"""


def premise_sentence(classes: dict, mwu: dict) -> str:
    """One plain sentence on whether this model and data agree with the paper's premise."""
    core, trivial = classes["core"]["mean_p"], classes["trivial"]["mean_p"]
    if math.isnan(core) or math.isnan(trivial) or math.isnan(mwu["p"]):
        return "Not enough tokens of both classes to compare."
    if mwu["p"] < 0.01 and mwu["effect"] > 0.5:
        return (
            f"Core tokens are predicted with higher probability than trivial ones ({_fmt(core)} vs {_fmt(trivial)}): "
            "the premise holds here, so a p threshold drops mostly phrasing."
        )
    if mwu["p"] < 0.01:
        return (
            f"Core tokens have <b>lower</b> p than trivial ones ({_fmt(core)} vs {_fmt(trivial)}): a p threshold "
            "would drop content first. Check the labels, or prefer a lower τ."
        )
    return (
        f"No significant difference between core and trivial tokens ({_fmt(core)} vs {_fmt(trivial)}): on this "
        "model and data, p does not separate content from phrasing."
    )
