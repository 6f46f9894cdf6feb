"""The figure of `make probes`: each method's paired difference against SFT, mean and 95% CI over seeds, on every
accuracy probe (points of Avg@k) and every NLL / KL probe (nats per token), after SFT and after GRPO."""

from __future__ import annotations

import math
from pathlib import Path

from .probes_report import FORGETTING, PERCENT, PROBES, REFERENCE, STAGES, scale


def plot(judged: list[dict], path: Path, probes: tuple[str, ...] = PROBES) -> None:
    """Plot each method's paired difference against SFT (mean and 95% CI over seeds) on the accuracy and NLL / KL
    probes, after SFT and after GRPO (where a GRPO model was probed), to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in judged if r["claim"]["baseline"] == "sft" and not r["claim"]["gap_probe"]
            and r["claim"]["unit"] == "seeds"]
    methods = list(dict.fromkeys(r["claim"]["method"] for r in rows))
    stages = [stage for stage in STAGES if any(r["stage"] == stage for r in rows)] or ["sft"]  # no GRPO: one row
    fig, axes = plt.subplots(len(stages), 2, figsize=(10, 3 * len(stages)), gridspec_kw={"width_ratios": [2, 1]},
                             squeeze=False)
    for i, stage in enumerate(stages):
        for j, shown in enumerate((PERCENT, (*FORGETTING, *REFERENCE))):
            shown = tuple(p for p in shown if p in probes)
            ax = axes[i][j]
            for k, method in enumerate(methods):
                pts = [r for r in rows if r["stage"] == stage and r["claim"]["method"] == method
                       and r["claim"]["probe"] in shown]
                xs = [shown.index(r["claim"]["probe"]) + 0.25 * (k - (len(methods) - 1) / 2) for r in pts]
                cis = [(r["difference"], scale(r["claim"]["probe"])) for r in pts]
                mean = [d["mean"] * f for d, f in cis]
                # one seed has no interval: no whisker
                err = [[0 if math.isnan(d["low"]) else (d["mean"] - d["low"]) * f for d, f in cis],
                       [0 if math.isnan(d["high"]) else (d["high"] - d["mean"]) * f for d, f in cis]]
                if pts:
                    ax.errorbar(xs, mean, yerr=err, fmt="o", capsize=3, label=f"{method} − sft", color=f"C{k}")
            ax.axhline(0, color="grey", linewidth=1)
            ax.set_xticks(range(len(shown)))
            ax.set_xticklabels([p.replace("_", " ") for p in shown], fontsize=7, rotation=20)
            ax.set_ylabel("points of Avg@k" if j == 0 else "nats / token")
            ax.set_title(f"after {stage.upper()}: " + ("accuracy" if j == 0 else "teacher-forced NLL / KL"), fontsize=9)
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Paired difference against SFT, mean and 95% CI over seeds", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
