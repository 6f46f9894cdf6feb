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
"""

from __future__ import annotations

import csv
import logging
import math
import sys
import tempfile
from collections import Counter
from dataclasses import MISSING, asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from profit_rl.core.dtypes import DTYPE_HELP, DTYPES, torch_dtype
from profit_rl.core.errors import command_errors
from profit_rl.core.flags import accept_snake_case
from profit_rl.core.folders import output_folder
from profit_rl.core.io import read_file
from profit_rl.core.model_folders import check_model_path
from profit_rl.core.state import write_json_atomic, write_text_atomic

from ..losses import SELECTIONS, protect, token_weights, validate_selection
from ..protected import TokenText, string_token_mask, validate_protected_strings
from .stats import TABLE_TAUS, class_stats, kept_summary, protection_candidates, token_core_labels

logger = logging.getLogger(__name__)

# Rules whose keep/drop decision moves with tau: the table lists them at every tau, the others once.
TAU_RULES = ("profit", "inverse", "band")
LABELS = ("core", "trivial")


def _option(default=MISSING, help="", factory=MISSING, **argparse):
    """A config field whose help text (and argparse extras: `aliases`, `choices`) the command line is built from."""
    return field(default=default, default_factory=factory, metadata={"help": help, **argparse})


@dataclass
class InspectConfig:
    """Options of `profit-rl inspect`. The command line is built from these fields (`--help` lists them)."""

    model: str = _option(help="Hub id or local checkpoint folder (model + tokenizer).")
    data: str = _option(help="SFT data: hub id or local .jsonl/.json/.parquet (any layout profit-rl sft reads).")
    taus: list[float] = _option(
        factory=lambda: [0.1],
        aliases=["--tau"],
        help="Threshold(s): the first drives the kept/dropped marks; all are tabulated and marked on the histogram.",
    )
    selection: str = _option("profit", "Rule whose kept/dropped tokens the report shows.", choices=list(SELECTIONS))
    tau_high: float | None = _option(None, "Upper threshold of the band rule.")
    top_ratio: float = _option(0.2, "Fraction kept by the entropy and random rules.")
    protected_strings: list[str] = _option(
        factory=list, help="Strings whose tokens every rule keeps, as ProFitConfig.protected_strings (not the paper's)."
    )
    keep_end_of_turn: bool = _option(False, "Keep the end-of-turn token(s), as ProFitConfig.keep_end_of_turn.")
    candidate_min_rows: float = _option(0.9, "A token is proposed for protection when this share of rows has it...")
    candidate_min_dropped: float = _option(0.5, "...and the rule drops it in at least this share of those rows.")
    limit: int | None = _option(200, "Rows to inspect (a seeded sample, as the trainer's num_samples).")
    show: int = _option(12, "Rows rendered token by token in the HTML.")
    labels: str | None = _option(
        None, "CSV with row, position, class (core|trivial), e.g. an edited token_stats.csv; default: a heuristic."
    )
    output_dir: str = _option("outputs/inspect", "Where the four files go.")
    data_config: str | None = _option(None, "Hub dataset config.")
    split: str = _option("train", "Hub dataset split.")
    skip_bad_rows: bool = _option(False, "Skip (and count) rows with missing fields instead of failing.")
    batch_size: int = _option(8, "Rows per forward pass.")
    max_length: int | None = _option(1024, "The trainer's max_length (truncation).")
    device: str = _option("cpu", "cpu, cuda, cuda:1, mps, ...")
    dtype: str = _option("auto", DTYPE_HELP + ".", choices=list(DTYPES))
    seed: int = _option(0, "Seed of the row sample and of the random rule.")

    @property
    def tau(self) -> float:
        """The tau the report's kept/dropped marks use: the first one given."""
        return self.taus[0]

    def __post_init__(self):
        # Fail when the config is built (the command line included), before any model is loaded.
        if not self.taus:
            raise ValueError("--tau needs at least one value")
        for tau in self.taus:
            validate_selection(self.selection, tau, self.tau_high, self.top_ratio)
        validate_protected_strings(self.protected_strings)
        for name in ("candidate_min_rows", "candidate_min_dropped"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"--{name.replace('_', '-')} must be in (0, 1], got {getattr(self, name)}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"--limit must be >= 1, got {self.limit}")
        if self.batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1, got {self.batch_size}")


@dataclass
class TokenScores:
    """What the model gives one row's supervised tokens; the arrays are aligned, one entry per token."""

    row: int  # index into the loaded rows
    input_ids: list[int]
    positions: np.ndarray  # position of each supervised token in input_ids
    token_ids: np.ndarray
    log_p: np.ndarray
    entropy: np.ndarray
    rule_weights: dict[str, np.ndarray]  # each rule at the report's tau, before protection


@dataclass
class InspectedRow:
    """One row as the report shows it; every array is aligned with the row's supervised tokens."""

    row: int  # index into the loaded rows
    positions: np.ndarray
    token_ids: np.ndarray
    log_p: np.ndarray
    entropy: np.ndarray
    pieces: list[str]  # each token's text as it reads in the completion
    protected: np.ndarray  # kept by every rule (protected strings, end-of-turn preset)
    weights: dict[str, np.ndarray]  # each rule's weight at the report's tau, protection applied: what training uses
    is_core: np.ndarray
    labelled: np.ndarray  # False where a user labelling file has no line for the token
    kept: np.ndarray  # (tokens, tabulated taus): whether the shown rule keeps the token at each tau of the table


# ---------------------------------------------------------------------------------------------------------------------
# 1. Rows: any SFT layout -> conversational prompt/completion, keeping where each row came from.


def load_rows(config: InspectConfig) -> list[dict]:
    """The SFT rows to inspect, through the trainer's own loader (`profit_rl.data.sft_rows`), with their source row
    and id.

    `--limit` draws the same seeded sample as the trainer's `num_samples`: a file sorted by source is seen across its
    sources."""
    from ..configs import SFTDataArguments
    from ..data.sft_rows import load_sft_dataset

    args = SFTDataArguments(dataset_name=config.data, dataset_config=config.data_config,
                            dataset_train_split=config.split, num_samples=config.limit, sample_seed=config.seed,
                            skip_bad_rows=config.skip_bad_rows)
    return list(load_sft_dataset(args, keep_source=True))


# ---------------------------------------------------------------------------------------------------------------------
# 2. Model: TRL's own tokenisation and fused LM head, then p, entropy and every rule's weights per supervised token.


def prepare(config: InspectConfig, rows: list[dict]):
    """Load the model and tokenise the rows with TRL's SFTTrainer, exactly as ProFit training would.

    Returns (model, tokenizer, collator, examples): `examples` are the trainer's prepared rows (input_ids, labels with
    -100 outside the completion, after the trainer's truncation) with the index of the row they come from; the model
    carries TRL's fused LM head.
    """
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from profit_rl.core.chat import ChatFormat

    from ..data.sft_rows import apply_chat_format

    tokenizer = AutoTokenizer.from_pretrained(config.model)
    chat = ChatFormat(tokenizer).bake()  # the chat format and end-of-turn token that `profit-rl sft` trains with
    model = AutoModelForCausalLM.from_pretrained(config.model, dtype=torch_dtype(config.dtype, config.device))
    model.eval()
    dataset = apply_chat_format(Dataset.from_list(
        [{"prompt": r["prompt"], "completion": r["completion"], "_row": i} for i, r in enumerate(rows)]
    ), chat)
    with tempfile.TemporaryDirectory() as scratch:
        args = SFTConfig(
            output_dir=scratch,
            max_length=config.max_length,
            use_cpu=True,  # the trainer only prepares data here; the model is moved to --device below
            report_to="none",
            per_device_train_batch_size=config.batch_size,
            eos_token=chat.end_of_turn,
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
def score(model, collator, examples: list[dict], config: InspectConfig) -> list[TokenScores]:
    """p, entropy and each rule's weight for every supervised token, one `TokenScores` per row (input order).

    Rows are batched by length (less padding); `entropy` and `random` weights are drawn per batch, as the trainer
    draws them per micro-batch of the same size.
    """
    rules = rules_to_record(config)
    generator = torch.Generator(device="cpu").manual_seed(config.seed)
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]["input_ids"]))
    results: dict[int, TokenScores] = {}
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
            results[ex["_row"]] = TokenScores(
                row=ex["_row"],
                input_ids=list(ex["input_ids"]),
                positions=(torch.nonzero(m).flatten() + 1).numpy(),  # the predicted token's position in input_ids
                token_ids=next_ids[b][m].numpy(),
                log_p=log_probs[b][m].numpy().astype(np.float64),
                entropy=entropy[b][m].numpy().astype(np.float64),
                rule_weights={name: w[b][m].numpy() for name, w in weights.items()},
            )
        bar.update(len(chunk))
    bar.close()
    return [results[ex["_row"]] for ex in examples]


# ---------------------------------------------------------------------------------------------------------------------
# 3. Rows as the report shows them: token texts, protection, classes, and the shown rule's marks at every tau.


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


def table_taus(config: InspectConfig) -> list[float | None]:
    """The taus the report tabulates for the shown rule: the standard ones and the user's; [None] for a rule without
    tau."""
    if config.selection not in TAU_RULES:
        return [None]
    taus = sorted(set(TABLE_TAUS) | set(config.taus))
    if config.selection == "band":
        taus = [t for t in taus if t < config.tau_high]
    return taus


def kept_marks(config: InspectConfig, log_p: np.ndarray, protected: np.ndarray, weights: np.ndarray, taus):
    """(tokens, taus) bool: whether the shown rule, with protection, keeps each token at each tabulated tau.

    `weights` are the shown rule's protected weights at the report's tau, the marks of a rule without tau (whose
    `entropy` and `random` draws depend on the batch and are not redrawn here).
    """
    if taus == [None]:
        return (weights > 0)[:, None]
    ones = torch.ones(1, len(log_p), dtype=torch.bool)
    columns = []
    for tau in taus:
        w = token_weights(torch.from_numpy(log_p)[None], ones, config.selection, tau=tau, tau_high=config.tau_high)
        columns.append((w[0].numpy() > 0) | protected)
    return np.stack(columns, axis=1)


def token_classes(s: TokenScores, pieces: list[str], labels: dict | None) -> tuple[np.ndarray, np.ndarray]:
    """(is_core, labelled) per token: the built-in heuristic on the token texts, or the user's labelling file."""
    if labels is None:
        return np.array(token_core_labels(pieces), dtype=bool), np.ones(len(pieces), dtype=bool)
    keys = [(s.row, int(pos)) for pos in s.positions]
    return np.array([labels.get(k, False) for k in keys], dtype=bool), np.array([k in labels for k in keys], dtype=bool)


def inspect_rows(
    config: InspectConfig, scores: list[TokenScores], tokenizer, labels: dict | None, taus: list, end_of_turn_ids
) -> list[InspectedRow]:
    """Each scored row with its token texts, protection, classes and kept marks, each computed once."""
    text, rows = TokenText(tokenizer), []
    for s in scores:
        # Supervised positions are one contiguous run from the completion start (TRL's completion mask).
        first = int(s.positions[0]) if len(s.positions) else len(s.input_ids)
        pieces = text.pieces(s.input_ids, first)[: len(s.positions)]
        protected = string_token_mask(pieces, config.protected_strings)
        if config.keep_end_of_turn:
            protected |= np.isin(s.token_ids, end_of_turn_ids)
        everywhere = torch.ones(len(pieces), dtype=torch.bool)  # every token here is supervised
        weights = {
            name: protect(torch.from_numpy(w), torch.from_numpy(protected), everywhere).numpy()
            for name, w in s.rule_weights.items()
        }
        is_core, labelled = token_classes(s, pieces, labels)
        rows.append(
            InspectedRow(
                row=s.row,
                positions=s.positions,
                token_ids=s.token_ids,
                log_p=s.log_p,
                entropy=s.entropy,
                pieces=pieces,
                protected=protected,
                weights=weights,
                is_core=is_core,
                labelled=labelled,
                kept=kept_marks(config, s.log_p, protected, weights[config.selection], taus),
            )
        )
    return rows


# ---------------------------------------------------------------------------------------------------------------------
# 4. Numbers, files, report.


def _concat(rows: list[InspectedRow], name: str) -> np.ndarray:
    return np.concatenate([getattr(r, name) for r in rows])


def summarize(
    config: InspectConfig, rows: list[InspectedRow], taus: list, eos_token_id: int | None = None, eos_token=None
) -> dict:
    """Every number of the report (summary.json); the kept marks come from the rows, the rule is not rerun."""
    if not rows or sum(len(r.log_p) for r in rows) == 0:
        raise ValueError("no supervised tokens to inspect (every row empty after tokenisation)")
    p = np.exp(_concat(rows, "log_p"))
    is_core, labelled, entropy = _concat(rows, "is_core"), _concat(rows, "labelled"), _concat(rows, "entropy")
    kept = _concat(rows, "kept")
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
        "protected_tokens": int(_concat(rows, "protected").sum()),
        "protect_candidates": candidates(config, rows),
    }


def eos_summary(rows: list[InspectedRow], selection: str, eos_token_id: int | None, eos_token=None) -> dict:
    """The end-of-turn token: a base model often gives it a low p, and a rule that drops it never teaches stopping."""
    if eos_token_id is None:
        return {"tokens": 0}
    is_eos = _concat(rows, "token_ids") == eos_token_id
    p = np.exp(_concat(rows, "log_p"))[is_eos]
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


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Rank correlation of p and entropy (how much the `entropy` rule and the p rules overlap)."""
    from .stats import average_ranks

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

    p = np.exp(_concat(rows, "log_p"))
    is_core, labelled = _concat(rows, "is_core"), _concat(rows, "labelled")
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
