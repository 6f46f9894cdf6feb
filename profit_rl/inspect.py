"""`profit-rl inspect`: see which tokens each selection rule keeps on your model and data, and choose tau from evidence.

    profit-rl inspect --model Qwen/Qwen3-0.6B-Base --data ../shared/data/sft_mix/train.jsonl --tau 0.1 0.2 --limit 200

For every supervised token of `--limit` SFT rows it records the model's p and entropy (TRL's fused LM head, as in
training) and the weight of every selection rule (`profit_rl.losses.token_weights`, the trainer's own function), then
writes to `--output-dir`:

- `token_stats.csv`: one line per supervised token (row, position, token, p, entropy, class, one weight per rule);
- `p_histogram.png`: the histogram of p, core and trivial tokens stacked, each tau marked;
- `inspect.html`: one self-contained page (no network): the kept-fraction table at several tau, the histogram,
  core-vs-trivial statistics with a Mann-Whitney U test, and each shown example token by token, shaded by p, the
  tokens the rule drops struck through, p and entropy on hover;
- `summary.json`: every number of the page, for scripts.

Rows are tokenised by TRL's SFTTrainer itself (the trainer's dataset preparation and collator), so the supervised
tokens, the chat template and the truncation are exactly those ProFit trains on.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from evals.cli import positive_int
from evals.folders import output_folder
from evals.io import InputError, read_file
from evals.models import check_model_path

from .losses import SELECTIONS, token_weights, validate_selection
from .protected import token_pieces
from .token_stats import TABLE_TAUS, class_stats, kept_summary, token_core_labels

logger = logging.getLogger(__name__)

# Rules whose keep/drop decision moves with tau: the table lists them at every tau, the others once.
TAU_RULES = ("profit", "inverse", "band")
LABELS = ("core", "trivial")


@dataclass
class InspectConfig:
    """Options of `profit-rl inspect` (see `--help` for each)."""

    model: str
    data: str
    taus: list[float] = field(default_factory=lambda: [0.1])
    selection: str = "profit"
    tau_high: float | None = None
    top_ratio: float = 0.2
    limit: int | None = 200
    show: int = 12
    labels: str | None = None
    output_dir: str = "outputs/inspect"
    data_config: str | None = None
    split: str = "train"
    skip_bad_rows: bool = False
    batch_size: int = 8
    max_length: int | None = 1024
    device: str = "cpu"
    dtype: str = "auto"
    seed: int = 0

    @property
    def tau(self) -> float:
        """The tau the report's kept/dropped marks use: the first one given."""
        return self.taus[0]

    def validate(self) -> None:
        if not self.taus:
            raise ValueError("--tau needs at least one value")
        for tau in self.taus:
            validate_selection(self.selection, tau, self.tau_high, self.top_ratio)
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"--limit must be >= 1, got {self.limit}")
        if self.batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1, got {self.batch_size}")


# ---------------------------------------------------------------------------------------------------------------------
# 1. Rows: any SFT layout -> conversational prompt/completion, keeping where each row came from.


def load_rows(config: InspectConfig) -> list[dict]:
    """The SFT rows to inspect, through the trainer's own loader (`profit_rl.data`), with their source row and id.

    `--limit` draws the same seeded sample as the trainer's `num_samples`: a file sorted by source is seen across its
    sources."""
    from .data import SFTDataArguments, load_sft_dataset

    args = SFTDataArguments(dataset_name=config.data, dataset_config=config.data_config, dataset_split=config.split,
                            num_samples=config.limit, sample_seed=config.seed, skip_bad_rows=config.skip_bad_rows)
    return list(load_sft_dataset(args, keep_source=True))


# ---------------------------------------------------------------------------------------------------------------------
# 2. Model: TRL's own tokenisation and fused LM head, then p, entropy and every rule's weights per supervised token.


def resolve_dtype(name: str, device: str) -> torch.dtype:
    if name == "auto":  # float32 on CPU (bf16 matmuls are slow there), bfloat16 on accelerators
        return torch.float32 if device == "cpu" else torch.bfloat16
    if name not in ("float32", "bfloat16", "float16"):
        raise ValueError(f"--dtype must be auto, float32, bfloat16 or float16, got {name!r}")
    return getattr(torch, name)


def prepare(config: InspectConfig, rows: list[dict]):
    """Load the model and tokenise the rows with TRL's SFTTrainer, exactly as ProFit training would.

    Returns (model, tokenizer, collator, examples): `examples` are the trainer's prepared rows (input_ids, labels with
    -100 outside the completion, after the trainer's truncation) with the index of the row they come from; the model
    carries TRL's fused LM head.
    """
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(config.model)
    model = AutoModelForCausalLM.from_pretrained(config.model, dtype=resolve_dtype(config.dtype, config.device))
    model.eval()
    dataset = Dataset.from_list(
        [{"prompt": r["prompt"], "completion": r["completion"], "_row": i} for i, r in enumerate(rows)]
    )
    with tempfile.TemporaryDirectory() as scratch:
        args = SFTConfig(
            output_dir=scratch,
            max_length=config.max_length,
            use_cpu=True,  # the trainer only prepares data here; the model is moved to --device below
            report_to="none",
            per_device_train_batch_size=config.batch_size,
        )
        trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    prepared = trainer.train_dataset
    kept_rows = set(prepared["_row"])
    if len(kept_rows) < len(rows):
        # TRL drops rows whose completion is cut off entirely by max_length: say so, never silently.
        lost = [rows[i]["id"] for i in range(len(rows)) if i not in kept_rows]
        logger.warning(
            "%d rows have no supervised token left after truncation to max_length=%s and are not inspected: %s",
            len(lost),
            config.max_length,
            lost[:10],
        )
    examples = [{"input_ids": ex["input_ids"], "labels": ex["labels"], "_row": ex["_row"]} for ex in prepared]
    return trainer.model.to(config.device), tokenizer, trainer.data_collator, examples


def rules_to_record(config: InspectConfig) -> dict[str, dict]:
    """Every rule the CSV records, with its parameters at the report's tau (band only when tau_high is given)."""
    rules = {}
    for name in SELECTIONS:
        if name == "band" and (config.tau_high is None or not config.tau < config.tau_high):
            continue
        rules[name] = {"tau": config.tau, "tau_high": config.tau_high, "top_ratio": config.top_ratio}
    return rules


@torch.no_grad()
def score(model, collator, examples: list[dict], config: InspectConfig) -> list[dict]:
    """p, entropy and each rule's weight for every supervised token, one dict of arrays per row (input order).

    Rows are batched by length (less padding); `entropy` and `random` weights are drawn per batch, as the trainer
    draws them per micro-batch of the same size.
    """
    rules = rules_to_record(config)
    generator = torch.Generator(device="cpu").manual_seed(config.seed)
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]["input_ids"]))
    results: dict[int, dict] = {}
    bar = tqdm(total=len(examples), desc="inspect", unit="row")
    for start in range(0, len(order), config.batch_size):
        chunk = [examples[i] for i in order[start : start + config.batch_size]]
        batch = collator([{"input_ids": ex["input_ids"], "labels": ex["labels"]} for ex in chunk])
        batch = {k: v.to(config.device) for k, v in batch.items() if isinstance(v, torch.Tensor)}
        out = model(**batch, fused_lm_head=True)
        log_probs, entropy, mask = out.log_probs.float().cpu(), out.entropy.float().cpu(), out.label_mask.cpu()
        weights = {
            name: token_weights(
                log_probs, mask, name, entropy=entropy, generator=generator if name == "random" else None, **params
            )
            for name, params in rules.items()
        }
        next_ids = batch["input_ids"][:, 1:].cpu()
        for b, ex in enumerate(chunk):
            m = mask[b]
            positions = torch.nonzero(m).flatten() + 1  # the position of the predicted token in input_ids
            results[ex["_row"]] = {
                "row": ex["_row"],
                "input_ids": ex["input_ids"],
                "positions": positions.numpy(),
                "token_ids": next_ids[b][m].numpy(),
                "log_p": log_probs[b][m].numpy().astype(np.float64),
                "entropy": entropy[b][m].numpy().astype(np.float64),
                "weights": {name: w[b][m].numpy() for name, w in weights.items()},
            }
        bar.update(len(chunk))
    bar.close()
    return [results[ex["_row"]] for ex in examples]


# ---------------------------------------------------------------------------------------------------------------------
# 3. Labels: the built-in core/trivial heuristic, or the user's own.


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


def attach_text_and_classes(scored: list[dict], tokenizer, labels: dict | None) -> int:
    """Adds each row's token texts and core/trivial classes; returns how many tokens the labelling file lacks."""
    unlabelled = 0
    for r in scored:
        if len(r["positions"]) == 0:
            r["pieces"], r["is_core"], r["labelled"] = [], np.zeros(0, bool), np.zeros(0, bool)
            continue
        first = int(r["positions"][0])
        pieces = token_pieces(tokenizer, list(r["input_ids"]), first)
        # Supervised positions are one contiguous run from the completion start (TRL's completion mask).
        r["pieces"] = [pieces[int(pos) - first] for pos in r["positions"]]
        if labels is None:
            r["is_core"] = np.array(token_core_labels(r["pieces"]), dtype=bool)
            r["labelled"] = np.ones(len(r["pieces"]), dtype=bool)
        else:
            keys = [(r["row"], int(pos)) for pos in r["positions"]]
            r["labelled"] = np.array([k in labels for k in keys], dtype=bool)
            r["is_core"] = np.array([labels.get(k, False) for k in keys], dtype=bool)
            unlabelled += int((~r["labelled"]).sum())
    return unlabelled


# ---------------------------------------------------------------------------------------------------------------------
# 4. Numbers, files, report.


def summarise(config: InspectConfig, scored: list[dict], unlabelled: int, eos_token_id: int | None = None) -> dict:
    log_p = np.concatenate([r["log_p"] for r in scored])
    p = np.exp(log_p)
    is_core = np.concatenate([r["is_core"] for r in scored])
    labelled = np.concatenate([r["labelled"] for r in scored])
    entropy = np.concatenate([r["entropy"] for r in scored])
    if len(p) == 0:
        raise ValueError("no supervised tokens to inspect (every row empty after tokenisation)")

    def rule_weights(tau: float) -> np.ndarray:
        params = {"tau": tau, "tau_high": config.tau_high, "top_ratio": config.top_ratio}
        return token_weights(
            torch.from_numpy(log_p)[None], torch.ones(1, len(p), dtype=torch.bool), config.selection, **params
        )[0].numpy()

    table = []
    if config.selection in TAU_RULES:
        taus = sorted(set(TABLE_TAUS) | set(config.taus))
        if config.selection == "band":
            taus = [t for t in taus if t < config.tau_high]
        for tau in taus:
            row = {"tau": tau, **kept_summary(p[labelled], rule_weights(tau)[labelled], is_core[labelled])}
            row.update(kept_summary(p, rule_weights(tau)))  # kept/weight/loss over every token, labelled or not
            table.append(row)
    else:  # the rule ignores tau: one line, from the per-batch weights the CSV holds
        w = np.concatenate([r["weights"][config.selection] for r in scored])
        table.append({"tau": None, **kept_summary(p[labelled], w[labelled], is_core[labelled]), **kept_summary(p, w)})
    shown_weights = np.concatenate([r["weights"][config.selection] for r in scored])
    return {
        "config": asdict(config),
        "rows": len(scored),
        "supervised_tokens": len(p),
        "mean_p": float(p.mean()),
        "median_p": float(np.median(p)),
        "mean_entropy": float(entropy.mean()),
        "table": table,
        "classes": class_stats(p[labelled], is_core[labelled], shown_weights[labelled] > 0),
        "labelling": "built-in heuristic (digits, operators, LaTeX math = core)"
        if config.labels is None
        else config.labels,
        "unlabelled_tokens": unlabelled,
        "p_entropy_spearman": spearman(p, entropy),
        "eos": eos_summary(scored, config.selection, eos_token_id),
    }


def eos_summary(scored: list[dict], selection: str, eos_token_id: int | None) -> dict:
    """The end-of-turn token: a base model often gives it a low p, and a rule that drops it never teaches stopping."""
    if eos_token_id is None:
        return {"tokens": 0}
    is_eos = np.concatenate([r["token_ids"] == eos_token_id for r in scored])
    p = np.exp(np.concatenate([r["log_p"] for r in scored]))[is_eos]
    kept = (np.concatenate([r["weights"][selection] for r in scored]) > 0)[is_eos]
    return {
        "token_id": int(eos_token_id),
        "tokens": int(is_eos.sum()),
        "mean_p": float(p.mean()) if len(p) else math.nan,
        "dropped_fraction": float((~kept).mean()) if len(p) else math.nan,
    }


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Rank correlation of p and entropy (how much the `entropy` rule and the p rules overlap)."""
    from .token_stats import average_ranks

    if len(x) < 2:
        return math.nan
    rx, ry = average_ranks(x)[0], average_ranks(y)[0]
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = math.sqrt(float((rx * rx).sum() * (ry * ry).sum()))
    return float((rx * ry).sum() / denominator) if denominator else math.nan


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


def write_csv(path: Path, rows: list[dict], scored: list[dict]) -> None:
    rules = list(scored[0]["weights"]) if scored else []
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["row", "id", "position", "token_id", "token", "p", "log_p", "entropy", "class"] + [f"w_{r}" for r in rules]
        )
        for r in scored:
            row_id = rows[r["row"]]["id"]
            for j, pos in enumerate(r["positions"]):
                label = ("core" if r["is_core"][j] else "trivial") if r["labelled"][j] else ""
                writer.writerow(
                    [
                        r["row"],
                        row_id,
                        int(pos),
                        int(r["token_ids"][j]),
                        r["pieces"][j],
                        f"{math.exp(r['log_p'][j]):.6g}",
                        f"{r['log_p'][j]:.6g}",
                        f"{r['entropy'][j]:.6g}",
                        label,
                    ]
                    + [f"{r['weights'][name][j]:.6g}" for name in rules]
                )


def plot_histogram(path: Path, scored: list[dict], taus: list[float], bins: int = 50) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = np.exp(np.concatenate([r["log_p"] for r in scored]))
    is_core = np.concatenate([r["is_core"] for r in scored])
    labelled = np.concatenate([r["labelled"] for r in scored])
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
    from .inspect_html import render_report

    config.validate()
    check_model_path(config.model)
    labels = read_labels(config.labels) if config.labels else None
    rows = load_rows(config)
    model, tokenizer, collator, examples = prepare(config, rows)
    scored = score(model, collator, examples, config)
    unlabelled = attach_text_and_classes(scored, tokenizer, labels)
    if unlabelled:
        logger.warning(
            "%s: %d supervised tokens have no label; they are left out of the core/trivial statistics",
            config.labels,
            unlabelled,
        )
    summary = summarise(config, scored, unlabelled, tokenizer.eos_token_id)
    summary["eos"]["token"] = tokenizer.eos_token

    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "html": out / "inspect.html",
        "csv": out / "token_stats.csv",
        "png": out / "p_histogram.png",
        "json": out / "summary.json",
    }
    write_csv(paths["csv"], rows, scored)
    plot_histogram(paths["png"], scored, config.taus)
    paths["json"].write_text(json.dumps(_finite(summary), indent=2, allow_nan=False) + "\n")
    paths["html"].write_text(render_report(config, summary, rows, scored, paths["png"].read_bytes()), encoding="utf-8")
    return paths


def build_parser() -> argparse.ArgumentParser:
    d = InspectConfig(model="", data="")
    parser = argparse.ArgumentParser(
        prog="profit-rl inspect",
        description="Which supervised tokens does each selection rule keep on this model and data? "
        "Writes inspect.html, token_stats.csv, p_histogram.png and summary.json.",
    )
    parser.add_argument("--model", required=True, help="hub id or local checkpoint folder (model + tokenizer)")
    parser.add_argument(
        "--data", required=True, help="SFT data: hub id or local .jsonl/.json/.parquet (any layout profit-rl sft reads)"
    )
    parser.add_argument(
        "--tau",
        dest="taus",
        type=float,
        nargs="+",
        default=d.taus,
        help="threshold(s); the first drives the kept/dropped marks, all are marked on the histogram and tabulated",
    )
    parser.add_argument(
        "--selection",
        default=d.selection,
        choices=list(SELECTIONS),
        help="rule whose kept/dropped tokens the report shows",
    )
    parser.add_argument("--tau-high", type=float, default=d.tau_high, help="upper threshold of the band rule")
    parser.add_argument(
        "--top-ratio", type=float, default=d.top_ratio, help="fraction kept by the entropy and random rules"
    )
    parser.add_argument(
        "--limit", type=positive_int, default=d.limit, help="rows to inspect (a seeded sample; default %(default)s)"
    )
    parser.add_argument(
        "--show", type=int, default=d.show, help="rows rendered token by token in the HTML (default %(default)s)"
    )
    parser.add_argument(
        "--labels",
        default=d.labels,
        help="CSV with row, position, class (core|trivial), e.g. an edited token_stats.csv; default: built-in heuristic",
    )
    parser.add_argument("--output-dir", default=d.output_dir)
    parser.add_argument("--data-config", default=d.data_config, help="hub dataset config")
    parser.add_argument("--split", default=d.split, help="hub dataset split")
    parser.add_argument(
        "--skip-bad-rows", action="store_true", help="skip (and count) rows with missing fields instead of failing"
    )
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--max-length", type=int, default=d.max_length, help="the trainer's max_length (truncation)")
    parser.add_argument("--device", default=d.device, help="cpu (default), cuda, cuda:1, mps, ...")
    parser.add_argument(
        "--dtype", default=d.dtype, help="auto (float32 on CPU, bfloat16 elsewhere), float32, bfloat16, float16"
    )
    parser.add_argument("--seed", type=int, default=d.seed, help="row sample and random-rule seed")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    try:
        with output_folder(args.output_dir, "profit-rl inspect " + " ".join(argv)):
            paths = run(InspectConfig(**vars(args)))
    except InputError as err:
        print(f"profit-rl inspect: {err}", file=sys.stderr)
        return 1
    for kind in ("html", "csv", "png", "json"):
        print(paths[kind])
    return 0


if __name__ == "__main__":
    sys.exit(main())
