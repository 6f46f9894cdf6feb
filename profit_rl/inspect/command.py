"""`profit-rl inspect`: see which tokens each selection rule keeps on your model and data, and choose tau from evidence.

    profit-rl inspect --model Qwen/Qwen3-0.6B-Base --data data/sft_mix/train.jsonl --tau 0.1 0.2 --limit 200

For every supervised token of `--limit` SFT rows it records the model's p and entropy (TRL's fused LM head, as in
training) and the weight of every selection rule (`profit_rl.losses.token_weights`, the trainer's own function, with
the trainer's protection of `--protected-strings` and `--keep-end-of-turn`), then writes to `--output-dir`:

- `token_stats.csv`: one line per supervised token (row, position, token, p, entropy, class, protected, one weight
  per rule);
- `p_histogram.png`: the histogram of p, core and trivial tokens stacked, each tau marked;
- `inspect.html`: one self-contained page (no network): the kept-fraction table at several tau, the histogram,
  core-vs-trivial statistics with a Mann-Whitney U test, the tokens worth protecting, and each shown example token by
  token, shaded by p, the tokens the rule drops struck through, p and entropy on hover;
- `summary.json`: every number of the page, for scripts.

Rows are tokenised by TRL's SFTTrainer itself (the trainer's dataset preparation and collator), so the supervised
tokens, the chat template and the truncation are exactly those ProFit trains on.

The command parses its options and writes the files; `token_scores` scores the tokens, `summary` and `stats` compute
the numbers, and `html` renders the page.
"""

from __future__ import annotations

import csv
import logging
import math
import sys
from pathlib import Path

import numpy as np

from profit_rl.core.errors import command_errors
from profit_rl.core.flags import accept_snake_case
from profit_rl.core.folders import output_folder
from profit_rl.core.io import read_file
from profit_rl.core.model_folders import check_model_path
from profit_rl.core.state import write_json_atomic, write_text_atomic

from .options import InspectConfig
from .summary import concat, summarize
from .token_scores import InspectedRow, inspect_rows, load_rows, prepare, score, table_taus

logger = logging.getLogger(__name__)

LABELS = ("core", "trivial")


def read_labels(path: str) -> dict[tuple[int, int], bool]:
    """A labelling file: CSV with columns `row`, `position`, `class` (core|trivial), e.g. an edited token_stats.csv.

    Returns {(row, position): is_core}. A bad line raises a DataError naming the file, line and field.
    """
    labels = {}
    for record in read_file(path):
        row, position = record.integer("row", minimum=0), record.integer("position", minimum=0)
        label = record.text("class").strip().lower()
        if label not in LABELS:
            raise record.wrong("class", f"one of {LABELS}", record["class"])
        labels[(row, position)] = label == "core"
    return labels


def _finite(value):
    """NaN (a class with no tokens, a test without data) -> null, so summary.json is strict JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_csv(path: Path, source_rows: list[dict], rows: list[InspectedRow]) -> None:
    """Write one CSV line per supervised token: row, position, token, p, log p, entropy, core or trivial label,
    protection and each rule's weight."""
    rules = list(rows[0].weights) if rows else []
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["row", "id", "position", "token_id", "token", "p", "log_p", "entropy", "class", "protected"]
            + [f"w_{r}" for r in rules]
        )
        for r in rows:
            row_id = source_rows[r.row]["id"]
            for j, pos in enumerate(r.positions):
                label = ("core" if r.is_core[j] else "trivial") if r.labelled[j] else ""
                writer.writerow(
                    [
                        r.row,
                        row_id,
                        int(pos),
                        int(r.token_ids[j]),
                        r.pieces[j],
                        f"{math.exp(r.log_p[j]):.6g}",
                        f"{r.log_p[j]:.6g}",
                        f"{r.entropy[j]:.6g}",
                        label,
                        int(r.protected[j]),
                    ]
                    + [f"{r.weights[name][j]:.6g}" for name in rules]
                )


def plot_histogram(path: Path, rows: list[InspectedRow], taus: list[float], bins: int = 50) -> None:
    """Plot the histogram of p over the supervised tokens, core, trivial and unlabelled overlaid on a log scale, with
    a line at each tau."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = np.exp(concat(rows, "log_p"))
    is_core, labelled = concat(rows, "is_core"), concat(rows, "labelled")
    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=110)
    edges = np.linspace(0, 1, bins + 1)
    groups = [p[labelled & is_core], p[labelled & ~is_core]]
    names = [f"core ({len(groups[0])})", f"trivial ({len(groups[1])})"]
    if (~labelled).any():
        groups.append(p[~labelled])
        names.append(f"unlabelled ({len(groups[-1])})")
    # Overlaid outlines, not stacked bars: on a log axis a stacked bar hides how the classes compare.
    for values, name, colour in zip(groups, names, ["#1f77b4", "#ff7f0e", "#888888"]):
        ax.hist(values, bins=edges, histtype="stepfilled", alpha=0.18, color=colour)
        ax.hist(values, bins=edges, histtype="step", linewidth=1.6, color=colour, label=name)
    for tau in taus:
        ax.axvline(tau, color="#d62728", linestyle="--", linewidth=1.2)
        ax.text(tau, 1.0, f" τ={tau:g}", color="#d62728", transform=ax.get_xaxis_transform(), va="top", fontsize=9)
    ax.set_yscale("log")
    ax.set_xlim(0, 1)
    ax.set_xlabel("p(reference token)")
    ax.set_ylabel("supervised tokens (log scale)")
    ax.set_title(f"p over {len(p)} supervised tokens")
    ax.legend(loc="upper center", fontsize=9, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run(config: InspectConfig) -> dict[str, Path]:
    """Inspect and write the outputs; returns their paths."""
    from .html import render_report
    from ..trainer import end_of_turn_ids

    check_model_path(config.model)
    labels = read_labels(config.labels) if config.labels else None
    source_rows = load_rows(config)
    model, tokenizer, collator, examples = prepare(config, source_rows)
    scores = score(model, collator, examples, config)
    taus = table_taus(config)
    rows = inspect_rows(config, scores, tokenizer, labels, taus, end_of_turn_ids(tokenizer, model))
    summary = summarize(config, rows, taus, tokenizer.eos_token_id, tokenizer.eos_token)
    if summary["unlabelled_tokens"]:
        logger.warning(
            "%s: %d supervised tokens have no label; they are left out of the core/trivial statistics",
            config.labels,
            summary["unlabelled_tokens"],
        )

    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "html": out / "inspect.html",
        "csv": out / "token_stats.csv",
        "png": out / "p_histogram.png",
        "json": out / "summary.json",
    }
    write_csv(paths["csv"], source_rows, rows)
    plot_histogram(paths["png"], rows, config.taus)
    write_json_atomic(paths["json"], _finite(summary))
    html = render_report(config, summary, source_rows, rows, paths["png"].read_bytes())
    write_text_atomic(paths["html"], html)
    return paths


def build_parser():
    """The command line, one option per `InspectConfig` field (`transformers.HfArgumentParser`)."""
    from transformers import HfArgumentParser

    return accept_snake_case(HfArgumentParser(
        InspectConfig,
        prog="profit-rl inspect",
        description="Which supervised tokens does each selection rule keep on this model and data? "
        "Writes inspect.html, token_stats.csv, p_histogram.png and summary.json.",
    ))


@command_errors("inspect")
def main(argv: list[str] | None = None) -> int:
    """`profit-rl inspect`: inspect the rows with the output folder locked, print the paths written, and return the
    exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    try:
        (config,) = parser.parse_args_into_dataclasses(args=argv, look_for_args_file=False)
    except ValueError as err:  # InspectConfig's own checks: a usage error, like argparse's, before anything runs
        parser.error(str(err))
    with output_folder(config.output_dir, "profit-rl inspect " + " ".join(argv)):
        paths = run(config)
    for kind in ("html", "csv", "png", "json"):
        print(paths[kind])
    return 0


if __name__ == "__main__":
    sys.exit(main())
