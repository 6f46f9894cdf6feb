"""The last step of `make probes`: `probes.md`, `probes.json` and `report/probes.png`, a verdict per claim.

    python -m profit_rl.pipeline.probes_report outputs/embedded/sweep/probes --methods profit,sft,dft,profit-protected \
        --grpo-methods profit,sft --seeds 5

It only reads what the probe steps wrote, so it can be rerun at any time. Every claim is a paired difference,
`method(seed) − baseline(seed)` on one probe (or that difference on a probe minus the same on the in-distribution
set: the generalisation gap), over seeds; the verdict follows from its 95% t interval by `verdict` (docs/probes.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from profit_rl.core.errors import command_errors
from profit_rl.evals.results import read_run
from profit_rl.core.state import write_json_atomic, write_text_atomic

from .sweep import Cell, split
from .sweep_report import MissingResultError, no_nan

STUDY = "probes"
STAGES = ("sft", "grpo")
STAGE_FOLDER = {"sft": "probes-sft", "grpo": "probes-grpo"}
ID_EVAL = {"sft": "eval", "grpo": "eval-grpo"}
# probe -> (result folder under the stage's probe folder, benchmark), the accuracy probes; "in_distribution" is the
# sweep's own eval of the test set
ACCURACY = {"in_distribution": (None, "embedded"), "long": ("probes", "embedded-long"),
            "surface": ("probes", "embedded-surface"), "retention": ("retention", "embedded-retention")}
# probe -> (folder, benchmark, own metric): a benchmark's own figure beside Avg@k (a fraction, as Avg@k)
OWN = {"long_full_chain": ("probes", "embedded-long", "full_chain")}
PERCENT = (*ACCURACY, *OWN)  # shown in %, differences in points
FORGETTING = {"nll": "nll_per_token", "kl": "kl_from_base_per_token"}
# probe -> (set of reference_nll.json, step): the teacher-forced NLL per core token of each set's reference solutions,
# or of one step of them (index into core_nll_by_step: 5, the tokens after five equations, is the sixth event, a step
# no SFT row has)
REFERENCE = {"ref_in_distribution": ("in_distribution", None), "ref_long": ("long", None),
             "ref_long_sixth_step": ("long", 5), "ref_surface": ("surface", None)}
PROBES = (*PERCENT, *FORGETTING, *REFERENCE)
SMOLLM2 = "smollm2-135m"


@dataclass(frozen=True)
class ProbeSet:
    """What a model's probe study measures: its probes, what its protected variant protects, the forgetting text, and
    the first lines of its report (which probes run and which do not, and why)."""

    probes: tuple[str, ...]
    protected: str
    forgetting_text: str
    note: str = ""


PROBE_SETS = {
    "embedded": ProbeSet(PROBES, "numbers protected", "pretraining text"),
    SMOLLM2: ProbeSet(
        ("in_distribution", *FORGETTING), "\\boxed protected", "general text",
        "Probes run: in distribution (the smollm2-135m task's test set, benchmark `embedded`) and forgetting (NLL "
        "and KL(base ‖ model) per token on held-out general text: documents of CPython's `pydoc_data.topics`, the "
        "Python reference manual's topics, PSF licence, no end token). Not run: longer chains, unseen surface and "
        "retention, which are built from the embedded default's pretraining corpus and its base model's layout; "
        "SmolLM2 was not pretrained on them (docs/probes.md)."),
}
PROBE_TITLES = {"in_distribution": "in distribution (test set)", "long": "longer chains (6 events)",
                "long_full_chain": "longer chains: samples writing every step", "surface": "unseen surface",
                "retention": "retention (pretraining layout)",
                "nll": "forgetting: NLL per token", "kl": "forgetting: KL(base ‖ model) per token",
                "ref_in_distribution": "in distribution (reference NLL per core token)",
                "ref_long": "longer chains (reference NLL per core token)",
                "ref_long_sixth_step": "longer chains, the sixth step (reference NLL per core token)",
                "ref_surface": "unseen surface (reference NLL per core token)"}
# two-sided 95% Student t quantiles, df 1..30 (beyond: the normal's 1.96)
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


@dataclass(frozen=True)
class Claim:
    """One prediction: `method − baseline` on `probe` has sign `sign` (+1 above, −1 below); with `gap_probe`, the
    prediction is about that difference on `probe` minus the same difference on `gap_probe`."""

    name: str
    text: str
    probe: str
    sign: int
    method: str = "profit"
    baseline: str = "sft"
    gap_probe: str | None = None
    source: str = "paper"  # "paper": the paper's claim; "variant": the paper's ProFit claim applied to our variant
    unit: str = "seeds"  # what is paired: "seeds" (the rule's unit) or "documents" (forgetting, mean over seeds)


PAPER_CLAIMS = (
    Claim("in-distribution", "ProFit above SFT on the SFT task's own test set (Table 1's claim, where the premise "
          "predicts the least)", "in_distribution", +1),
    Claim("longer-chains", "ProFit above SFT on chains longer than any SFT row", "long", +1),
    Claim("longer-chains-steps", "ProFit writes every step of a longer chain more often than SFT (the same claim, "
          "right or wrong answers alike)", "long_full_chain", +1),
    Claim("unseen-surface", "ProFit above SFT on names, items and phrasings no SFT row uses", "surface", +1),
    Claim("longer-chains-gap", "ProFit's gain over SFT larger on longer chains than in distribution", "long", +1,
          gap_probe="in_distribution"),
    Claim("unseen-surface-gap", "ProFit's gain over SFT larger on unseen surface than in distribution", "surface", +1,
          gap_probe="in_distribution"),
    Claim("retention", "ProFit keeps more of the base model's own layout than SFT", "retention", +1),
    Claim("in-distribution-likelihood", "ProFit gives the test set's right solutions a lower NLL than SFT (core "
          "tokens)", "ref_in_distribution", -1),
    Claim("longer-chains-likelihood", "ProFit gives the longer chains' right solutions a lower NLL than SFT (core "
          "tokens, teacher-forced: no floor)", "ref_long", -1),
    Claim("longer-chains-sixth-step", "ProFit gives the sixth step of a longer chain, a step no SFT row has, a lower "
          "NLL than SFT", "ref_long_sixth_step", -1),
    Claim("longer-chains-likelihood-gap", "ProFit's NLL advantage over SFT larger on longer chains than in "
          "distribution", "ref_long", -1, gap_probe="ref_in_distribution"),
    Claim("unseen-surface-likelihood", "ProFit gives the unseen-surface problems' right solutions a lower NLL than "
          "SFT (core tokens)", "ref_surface", -1),
    Claim("unseen-surface-likelihood-gap", "ProFit's NLL advantage over SFT larger on unseen surface than in "
          "distribution", "ref_surface", -1, gap_probe="ref_in_distribution"),
    Claim("forgetting-nll", "ProFit's NLL on held-out pretraining text below SFT's", "nll", -1),
    Claim("forgetting-kl", "ProFit's KL from the base model on held-out pretraining text below SFT's", "kl", -1),
    Claim("above-dft-long", "ProFit above DFT beyond the SFT data (Table 1: ProFit beats DFT)", "long", +1,
          baseline="dft"),
    Claim("above-dft-surface", "ProFit above DFT beyond the SFT data (Table 1: ProFit beats DFT)", "surface", +1,
          baseline="dft"),
)


def claims_for(methods: tuple[str, ...], probe_set: ProbeSet = PROBE_SETS["embedded"]) -> list[Claim]:
    """The paper's claims whose methods and probes ran, its ProFit-vs-SFT claims applied to `profit-protected` (ours),
    and each forgetting claim again paired by document (`unit` "documents")."""
    ran = [dataclasses.replace(c, text=c.text.replace("pretraining text", probe_set.forgetting_text))
           for c in PAPER_CLAIMS if c.probe in probe_set.probes and c.gap_probe in (None, *probe_set.probes)]
    out = [c for c in ran if c.method in methods and c.baseline in methods]
    if "profit-protected" in methods and "sft" in methods:
        out += [Claim(f"{c.name} (protected)", c.text.replace("ProFit", f"ProFit ({probe_set.protected})"), c.probe,
                      c.sign, "profit-protected", c.baseline, c.gap_probe, "variant")
                for c in ran if c.baseline == "sft"]
    return out + [dataclasses.replace(c, name=f"{c.name} (per document)", unit="documents")
                  for c in out if c.probe in FORGETTING]


# ------------------------------------------------------------------------------------------------------ statistics


def interval(values: list[float]) -> dict:
    """Mean, sample std and the 95% Student t interval of the mean; one value has no interval (NaN bounds)."""
    n, mean = len(values), statistics.fmean(values)
    if n < 2:
        return {"mean": mean, "std": math.nan, "low": math.nan, "high": math.nan, "n": n, "values": values}
    std = statistics.stdev(values)
    half = (T975[n - 2] if n - 1 <= len(T975) else 1.96) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "low": mean - half, "high": mean + half, "n": n, "values": values}


def verdict(ci: dict, sign: int) -> str:
    """The rule of docs/probes.md: `agrees` when the 95% interval of the mean paired difference lies wholly on the
    predicted side of 0, `disagrees` when wholly on the other side, `cannot tell` when it holds 0 or has no width
    (one seed)."""
    if ci["n"] < 2 or math.isnan(ci["low"]):
        return "cannot tell"
    low, high = (ci["low"], ci["high"]) if sign > 0 else (-ci["high"], -ci["low"])
    if low > 0:
        return "agrees"
    if high < 0:
        return "disagrees"
    return "cannot tell"


def paired_documents(documents: dict, claim: Claim, stage: str, seeds: int) -> list[float] | None:
    """Per document, the claim's difference averaged over seeds (each seed's two models on the same document); None
    when a model has no per-document figures (a forgetting.json of an older build)."""
    per_seed = []
    for seed in range(seeds):
        a = documents.get((claim.method, stage, seed, claim.probe))
        b = documents.get((claim.baseline, stage, seed, claim.probe))
        if a is None or b is None:
            return None
        if list(a) != list(b):
            raise MissingResultError(f"{claim.method} and {claim.baseline}, seed {seed}: forgetting scored on "
                                     "different documents; rerun their forgetting steps")
        per_seed.append([a[d] - b[d] for d in a])
    return [statistics.fmean(column) for column in zip(*per_seed)]


def paired(values: dict, claim: Claim, stage: str, seeds: int) -> list[float] | None:
    """Per seed, the claim's difference; None when a method of it did not run at this stage."""
    def diff(probe, seed):
        a, b = values.get((claim.method, stage, seed, probe)), values.get((claim.baseline, stage, seed, probe))
        return None if a is None or b is None else a - b

    out = []
    for seed in range(seeds):
        d = diff(claim.probe, seed)
        if d is not None and claim.gap_probe:
            g = diff(claim.gap_probe, seed)
            d = None if g is None else d - g
        if d is None:
            return None
        out.append(d)
    return out


def judge(values: dict, claims: list[Claim], seeds: int, documents: dict | None = None) -> list[dict]:
    """Each claim at each stage where both its methods ran: the paired difference over seeds (or documents), its 95% t
    interval and the verdict."""
    rows = []
    for claim in claims:
        for stage in STAGES:
            if claim.unit == "documents":
                diffs = paired_documents(documents or {}, claim, stage, seeds)
            else:
                diffs = paired(values, claim, stage, seeds)
            if diffs is None:
                continue
            ci = interval(diffs)
            rows.append({"claim": asdict(claim), "stage": stage, "difference": ci, "verdict": verdict(ci, claim.sign)})
    return rows


# ------------------------------------------------------------------------------------------------------- collect


def accuracy(run_dir: Path, benchmark: str, metric: str | None = None) -> float:
    """Avg@k of `benchmark` in the eval run `run_dir`, or its own `metric`."""
    try:
        result = read_run(run_dir)["benchmarks"][benchmark]
    except FileNotFoundError as err:
        raise MissingResultError(f"{run_dir}: no eval result ({err}); rerun `make probes` to finish it") from err
    except KeyError:
        raise MissingResultError(f"{run_dir}: no {benchmark} result; rerun `make probes` to finish it") from None
    if metric is None:
        return result["avg_at_k"]
    if metric not in result.get("own_metrics", {}):
        raise MissingResultError(f"{run_dir}: the {benchmark} result has no {metric!r} (made by an older probe "
                                 "build?); rebuild the probe sets and rerun: delete its probe-data folder, then "
                                 "rerun `make probes`")
    return result["own_metrics"][metric]


def read_result(path: Path) -> dict:
    """A probe step's JSON result (forgetting.json, reference_nll.json); a missing one is a MissingResultError that
    says to rerun the probes."""
    if not path.is_file():
        raise MissingResultError(f"{path} not found; rerun `make probes` to finish it")
    return json.loads(path.read_text())


DOCUMENT_KEY = {"nll": "nll", "kl": "kl"}  # forgetting probe -> its per-document figure in forgetting.json


def model_values(id_eval: Path, probe_folder: Path, probes: tuple[str, ...] = PROBES) -> tuple[dict, dict]:
    """Every probe's figure for one model (Avg@k, a fraction, of the accuracy probes; nats per token of the others),
    and the forgetting probes' per-document figures by document id (empty when forgetting.json has none)."""
    out, documents = {}, {}
    for probe, (sub, benchmark) in ACCURACY.items():
        if probe in probes:
            out[probe] = accuracy(id_eval if sub is None else probe_folder / sub, benchmark)
    for probe, (sub, benchmark, metric) in OWN.items():
        if probe in probes:
            out[probe] = accuracy(probe_folder / sub, benchmark, metric)
    if any(p in probes for p in REFERENCE):
        path = probe_folder / "reference-nll" / "reference_nll.json"
        sets = read_result(path)["sets"]
        for probe, (name, step) in REFERENCE.items():
            if step is not None and len(sets[name].get("core_nll_by_step", ())) <= step:
                raise MissingResultError(f"{path}: no {name} figure for step {step + 1} (made by an older "
                                         f"reference_nll?); delete {path.parent} and rerun `make probes`")
            out[probe] = sets[name]["core_nll_per_token"] if step is None else sets[name]["core_nll_by_step"][step]
    if any(p in probes for p in FORGETTING):
        stats = read_result(probe_folder / "forgetting" / "forgetting.json")
        out.update({probe: stats[key] for probe, key in FORGETTING.items()})
        if stats.get("documents"):
            documents = {probe: {d["id"]: d[DOCUMENT_KEY[probe]] for d in stats["documents"]} for probe in FORGETTING}
    return out, documents


def collect(root: Path, methods: tuple[str, ...], grpo_methods: tuple[str, ...], seeds: int,
            probes: tuple[str, ...] = PROBES) -> tuple[dict, dict, dict]:
    """(method, stage, seed, probe) -> value for every model, the base model's value per probe, and (method, stage,
    seed, probe) -> {document id: value} of the forgetting probes."""
    base, _ = model_values(root / "base-model" / "eval", root / "base-model", probes)
    values, documents = {}, {}
    for seed in range(seeds):
        for method in methods:
            folder = root / Cell(STUDY, method, seed).label / f"seed-{seed}"  # Cell.folder of the sweep's root
            for stage in STAGES:
                if stage == "grpo" and method not in grpo_methods:
                    continue
                figures, docs = model_values(folder / ID_EVAL[stage], folder / STAGE_FOLDER[stage], probes)
                for probe, value in figures.items():
                    values[method, stage, seed, probe] = value
                for probe, value in docs.items():
                    documents[method, stage, seed, probe] = value
    return values, base, documents


# ------------------------------------------------------------------------------------------------------ markdown


def scale(probe: str) -> float:
    """The display factor of a probe's figures: 100 for accuracies (shown in %), 1 for nats per token."""
    return 100.0 if probe in PERCENT else 1.0


def fmt_value(probe: str, x: float, signed: bool = False) -> str:
    """A probe's figure for the tables: 1 decimal in % for accuracies, 4 decimals for nats; `-` for NaN."""
    if math.isnan(x):
        return "-"
    v = x * scale(probe)
    if probe in PERCENT:
        return f"{v:+.1f}" if signed else f"{v:.1f}"
    if 0 < abs(v) < 5e-5:  # a bound that 4 decimals would show as 0, on the side the verdict reads
        return f"{v:+.0e}" if signed else f"{v:.0e}"
    return f"{v:+.4f}" if signed else f"{v:.4f}"


def fmt_ci(probe: str, ci: dict) -> str:
    """A signed mean difference with its 95% interval, or `(1 seed)` where there is no interval."""
    head = f"{fmt_value(probe, ci['mean'], True)}"
    if ci["n"] < 2:
        return head + " (1 seed)"
    return f"{head} [{fmt_value(probe, ci['low'], True)}, {fmt_value(probe, ci['high'], True)}]"


def probe_table(values: dict, base: dict, methods, grpo_methods, seeds: int, probes=PROBES) -> list[str]:
    """The markdown lines of the probe table: one row per probe, the base model's figure, then each method's mean and
    sample std over seeds after SFT and after GRPO."""
    head = ["probe", "base model", *(f"{m} after SFT" for m in methods), *(f"{m} after GRPO" for m in grpo_methods)]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for probe in probes:
        row = [PROBE_TITLES[probe], fmt_value(probe, base[probe])]
        for stage, group in (("sft", methods), ("grpo", grpo_methods)):
            for m in group:
                xs = [values[m, stage, s, probe] for s in range(seeds)]
                sd = statistics.stdev(xs) * scale(probe) if len(xs) > 1 else math.nan
                row.append(fmt_value(probe, statistics.fmean(xs))
                           + ("" if math.isnan(sd) else f" ± {sd:.{1 if probe in PERCENT else 4}f}"))
        lines.append("| " + " | ".join(row) + " |")
    return lines


def claim_table(judged: list[dict]) -> list[str]:
    """The markdown lines of the claim table: what each claim predicts, the paired difference with its interval, and
    the verdict."""
    lines = ["| claim | source | stage | difference | mean [95% CI] | verdict |", "|---|---|---|---|---|---|"]
    for r in judged:
        c = r["claim"]
        what = f"{c['method']} − {c['baseline']}, {PROBE_TITLES[c['probe']]}"
        if c.get("unit") == "documents":
            what += f", paired by document ({r['difference']['n']}), mean over seeds"
        if c["gap_probe"]:
            what += f" minus the same {PROBE_TITLES[c['gap_probe']].split(' (')[0]}"
        expect = "> 0" if c["sign"] > 0 else "< 0"
        lines.append(f"| {c['text']} | {c['source']} | after {r['stage'].upper()} | {what} (predicted {expect}) | "
                     f"{fmt_ci(c['probe'], r['difference'])} | **{r['verdict']}** |")
    return lines


def step_seconds(root: Path) -> float:
    """CPU-s of every finished step under `root` (their .done.json markers)."""
    total = 0.0
    for marker in root.rglob(".done.json"):
        total += json.loads(marker.read_text()).get("cpu_seconds", 0.0)
    return total


def markdown(values, base, judged, methods, grpo_methods, seeds: int, cpu_s: float, figure: str,
             probe_set: ProbeSet = PROBE_SETS["embedded"]) -> str:
    """probes.md: which probes ran (where not all of them), a one-seed warning where it applies, the verdict counts,
    the figure, then the claim and probe tables."""
    lines = [probe_set.note, ""] if probe_set.note else []
    if seeds < 2:
        lines += ["**One seed: no interval, so every verdict is 'cannot tell'.**", ""]
    counts = {v: sum(r["verdict"] == v for r in judged) for v in ("agrees", "disagrees", "cannot tell")}
    lines += ["# Probes: where ProFit should help", "",
              f"{seeds} seed(s), methods {', '.join(methods)}; GRPO from {', '.join(grpo_methods) or 'none'}. "
              f"Verdicts: {counts['agrees']} agree, {counts['disagrees']} disagree, {counts['cannot tell']} cannot "
              f"tell. CPU-s in the steps: {cpu_s:.0f}.", "",
              "Each difference is paired by seed; the interval is the 95% Student t interval of its mean over seeds. "
              "Verdict: **agrees** when the interval lies wholly on the predicted side of 0, **disagrees** when wholly "
              "on the other side, **cannot tell** otherwise (docs/probes.md). Accuracy in points of Avg@k, "
              "forgetting and reference NLL in nats per token. A forgetting claim is judged twice: paired by seed "
              "(the rule's unit), and paired by document (each document's difference averaged over seeds; the interval "
              "over documents leaves out the spread between training runs).", "",
              f"![paired differences]({figure})", "", "## Claims", ""]
    lines += claim_table(judged) + ["", "## Probes", "",
                                    "Mean ± sample std over seeds (the base model: one run). Accuracy: Avg@k in %.",
                                    ""]
    lines += probe_table(values, base, methods, grpo_methods, seeds, probe_set.probes) + [""]
    return "\n".join(lines)


def write(root: Path, methods: tuple[str, ...], grpo_methods: tuple[str, ...], seeds: int,
          model: str = "embedded") -> Path:
    """Collect the probe results under `root` (the probes of `model`'s PROBE_SETS entry), judge the claims, and write
    report/probes.png, probes.json and probes.md; returns the path of probes.md."""
    probe_set = PROBE_SETS[model]
    values, base, documents = collect(root, methods, grpo_methods, seeds, probe_set.probes)
    judged = judge(values, claims_for(methods, probe_set), seeds, documents)
    from .probes_plot import plot  # here: probes_plot reads this module's tables

    plot(judged, root / "report" / "probes.png", probe_set.probes)
    md = markdown(values, base, judged, methods, grpo_methods, seeds, step_seconds(root), "report/probes.png",
                  probe_set)
    write_json_atomic(root / "probes.json", no_nan({
        "model": model, "probes": list(probe_set.probes),
        "methods": list(methods), "grpo_methods": list(grpo_methods), "seeds": seeds, "base": base,
        "values": [{"method": m, "stage": st, "seed": s, "probe": p, "value": v}
                   for (m, st, s, p), v in sorted(values.items())],
        "claims": judged}))
    return write_text_atomic(root / "probes.md", md)


@command_errors("probes")
def main(argv: list[str] | None = None) -> int:
    """`python -m profit_rl.pipeline.probes_report ROOT`: write the probes report and print its path; a missing
    result exits 1 with what to rerun."""
    p = argparse.ArgumentParser(prog="python -m profit_rl.pipeline.probes_report", description=__doc__.split("\n\n")[0])
    p.add_argument("root", help="outputs/embedded/sweep/probes")
    p.add_argument("--methods", required=True)
    p.add_argument("--grpo-methods", default="")
    p.add_argument("--seeds", type=int, required=True)
    p.add_argument("--model", default="embedded", choices=sorted(PROBE_SETS), help="whose probes (%(default)s)")
    args = p.parse_args(argv)
    path = write(Path(args.root), split(args.methods), split(args.grpo_methods), args.seeds, args.model)
    print(f"probes: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
