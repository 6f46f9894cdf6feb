"""Score each supervised token of the inspected rows: the model's p and entropy, every rule's weight, and the
protection, class and kept marks the report shows.

Rows are tokenised by TRL's SFTTrainer itself (the trainer's dataset preparation and collator) and scored through TRL's
fused LM head, so the supervised tokens, the chat template and the truncation are exactly those ProFit trains on. The
weights come from `profit_rl.losses.token_weights`, the trainer's own function, with the trainer's protection.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from profit_rl.core.dtypes import torch_dtype

from ..losses import SELECTIONS, protect, token_weights
from ..protected import TokenText, string_token_mask
from .options import InspectConfig
from .stats import TABLE_TAUS, token_core_labels

logger = logging.getLogger(__name__)

# Rules whose keep/drop decision moves with tau: the table lists them at every tau, the others once.
TAU_RULES = ("profit", "inverse", "band")


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
    """The SFT rows to inspect, through the trainer's own loader (`profit_rl.data.sft_rows`), with their source row and id.

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
