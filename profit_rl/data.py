"""SFT data: any common layout -> TRL's conversational prompt/completion rows, with row-level errors.

Layouts understood (detected per dataset from its columns):
- `prompt`/`completion` (strings or message lists; TRL's own form),
- `messages` (OpenAI/TRL chat: the last assistant message is the completion, everything before it the prompt),
- `conversations` (ShareGPT: `{"from": "human"|"gpt"|"system", "value": ...}`; Infinity-Instruct, the paper's data),
- `instruction`/`input`/`output` (Alpaca; `../shared/data/sft_mix`).

A source is a hub id or a local .jsonl/.json/.csv/.parquet file or folder, read by `evals.io` (the toolkit's one
reader). A row with a missing, empty or wrongly typed field raises `DataError` naming the file, the line (the row of
a parquet file or hub dataset) and the field, unless the caller asks to skip bad rows; skipped rows are counted and
logged, never dropped silently.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evals.io import MISSING, DataError, InputError, Row, Rows, read_rows

logger = logging.getLogger(__name__)

SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
LAYOUTS = (
    ("prompt_completion", {"prompt", "completion"}),
    ("messages", {"messages"}),
    ("sharegpt", {"conversations"}),
    ("alpaca", {"instruction", "output"}),
)


def detect_layout(columns, source: str = "the SFT data") -> str:
    columns = set(columns)
    for layout, needed in LAYOUTS:
        if needed <= columns:
            return layout
    raise DataError(
        source, "expected the columns of one SFT layout: prompt+completion, messages, conversations (ShareGPT) or "
        f"instruction+input+output (Alpaca); found columns {sorted(columns)}"
    )


def _messages(row: Row, name: str, role: str) -> list[dict]:
    """A string (one message of `role`) or a non-empty list of {role, content} messages."""
    value = row.get(name, MISSING)
    if isinstance(value, str):
        return [{"role": role, "content": row.text(name)}]
    if not isinstance(value, list) or not value:
        raise row.wrong(name, "a non-empty string or a non-empty list of messages", value)
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            raise row.wrong(f"{name}[{i}]", "a message object {role, content}", message)
        if not isinstance(message.get("role"), str):
            raise row.wrong(f"{name}[{i}].role", "a string", message.get("role", MISSING))
        content = message.get("content", MISSING)
        if not isinstance(content, str) or not content.strip():
            raise row.wrong(f"{name}[{i}].content", "a non-empty string", content)
    return [{"role": m["role"], "content": m["content"]} for m in value]


def _split_chat(row: Row, messages: list[dict], name: str) -> dict:
    if messages[-1]["role"] != "assistant":
        raise row.error(name, f"expected a last message from the assistant, found one from {messages[-1]['role']!r}")
    if len(messages) < 2:
        raise row.error(name, "expected a prompt before the assistant message, found the assistant message alone")
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def to_prompt_completion(row: Row, layout: str) -> dict:
    """One row in any supported layout -> `{"prompt": [messages], "completion": [assistant message]}`."""
    if layout == "prompt_completion":
        return {"prompt": _messages(row, "prompt", "user"), "completion": _messages(row, "completion", "assistant")}
    if layout == "messages":
        return _split_chat(row, _messages(row, "messages", "user"), "messages")
    if layout == "sharegpt":
        turns = row.get("conversations", MISSING)
        if not isinstance(turns, list) or not turns:
            raise row.wrong("conversations", "a non-empty list of turns", turns)
        messages = []
        for i, turn in enumerate(turns):
            if not isinstance(turn, dict):
                raise row.wrong(f"conversations[{i}]", "a turn object {from, value}", turn)
            speaker = turn.get("from", MISSING)
            if not isinstance(speaker, str) or speaker not in SHAREGPT_ROLES:
                raise row.wrong(f"conversations[{i}].from", f"one of {sorted(SHAREGPT_ROLES)}", speaker)
            content = turn.get("value", MISSING)
            if not isinstance(content, str) or not content.strip():
                raise row.wrong(f"conversations[{i}].value", "a non-empty string", content)
            messages.append({"role": SHAREGPT_ROLES[speaker], "content": content})
        return _split_chat(row, messages, "conversations")
    # alpaca: `input` is optional, but a string when present
    instruction = row.text("instruction")
    extra = row.text("input", required=False, empty=True) or ""
    user = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    return {
        "prompt": [{"role": "user", "content": user}],
        "completion": [{"role": "assistant", "content": row.text("output")}],
    }


@dataclass
class SFTDataArguments:
    """Where the SFT data comes from and how rows are chosen (the paper trains on 2,000 selected rows)."""

    dataset_name: str = field(
        default="BAAI/Infinity-Instruct",
        metadata={"help": "Hub id, or a local .jsonl/.json/.parquet file or folder (e.g. ../shared/data/sft_mix/train.jsonl)."},
    )
    dataset_config: str | None = field(default="0625", metadata={"help": "Hub dataset config (ignored for local files)."})
    dataset_train_split: str = field(
        default="train", metadata={"help": "Training split: a hub split, or the file stem in a local folder of splits."}
    )
    dataset_test_split: str = field(
        default="test",
        metadata={"help": "Eval split (read when eval_strategy is not 'no'): a hub split, or the file stem in a local "
                  "folder of splits."},
    )
    eval_dataset_name: str | None = field(
        default=None,
        metadata={"help": "Eval data, when it is not dataset_name's test split: a hub id or a local file or folder."},
    )
    num_samples: int | None = field(
        default=2000, metadata={"help": "Keep this many rows (the paper's 2,000); None keeps all."}
    )
    score_column: str | None = field(
        default=None,
        metadata={"help": "Keep the top num_samples rows by this column (e.g. a reward score); None: a seeded sample."},
    )
    sample_seed: int = field(default=0, metadata={"help": "Seed of the sample drawn when there is no score_column."})
    skip_bad_rows: bool = field(
        default=False, metadata={"help": "Skip (and count and log) rows with missing/empty fields instead of failing."}
    )


def select_indices(n: int, num_samples: int | None, scores: list[float] | None = None, seed: int = 0) -> list[int]:
    """The paper's selection, as row indices: the top-N by score (ties keep file order), or a seeded random N (the
    permutation `datasets.Dataset.shuffle(seed=...)` draws)."""
    if num_samples is None or num_samples >= n:
        if num_samples is not None and num_samples > n:
            logger.warning("asked for %d rows, the dataset has only %d: keeping all", num_samples, n)
        return list(range(n))
    if scores is not None:
        return sorted(range(n), key=lambda i: scores[i], reverse=True)[:num_samples]
    return [int(i) for i in np.random.default_rng(seed).permutation(n)[:num_samples]]


def score_values(rows: Rows, column: str) -> list[float]:
    """The numbers of `column` (the top-N selection's key); a missing column or a non-number names the row."""
    if column not in rows.columns:
        raise DataError(rows.source, f"expected a column {column!r} (score_column), found columns {rows.columns}",
                        field=column)
    values = rows.column(column)
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            values[i] = rows[i].real(column)  # a CSV's numbers are text; anything else names its row
    return values


def eval_source(dataset_name: str, eval_dataset_name: str | None, test_split: str) -> str:
    """Where the eval set comes from: `eval_dataset_name`, else the training source (whose `test_split` is read).

    A single local file has no splits, so its "test split" would be the training rows themselves: that is refused."""
    if eval_dataset_name is None and Path(dataset_name).is_file():
        raise InputError(
            f"an eval set was asked for (eval_strategy is not 'no'), but {dataset_name} is a single file: it has no "
            f"{test_split!r} split, and evaluating on the training rows means nothing. Pass --eval_dataset_name "
            f"(a file or hub id), or a folder holding train and {test_split} files."
        )
    return eval_dataset_name or dataset_name


def load_sft_dataset(args: SFTDataArguments, keep_source: bool = False):
    """Load, select and convert SFT rows to conversational prompt/completion. Returns a `datasets.Dataset`.

    With `keep_source`, each row also carries `source_row` (the line of a text file, the row of a parquet file or hub
    dataset) and `id` (the source's, else that number), for tools that point back into the file (`profit-rl inspect`)."""
    rows = read_rows(args.dataset_name, args.dataset_train_split, args.dataset_config)
    layout = detect_layout(rows.columns, rows.source)
    # Selection first: the paper picks rows from the pool, and converting millions of hub rows to pick 2,000 is waste.
    scores = score_values(rows, args.score_column) if args.score_column is not None else None
    chosen = select_indices(len(rows), args.num_samples, scores, args.sample_seed)
    return convert_rows(rows, chosen, layout, args.skip_bad_rows, keep_source)


def load_sft_eval_dataset(args: SFTDataArguments):
    """The eval set: every row of the test split (of `eval_dataset_name` when given), converted like training rows."""
    source = eval_source(args.dataset_name, args.eval_dataset_name, args.dataset_test_split)
    rows = read_rows(source, args.dataset_test_split, args.dataset_config)
    return convert_rows(rows, range(len(rows)), detect_layout(rows.columns, rows.source), args.skip_bad_rows)


def convert_rows(rows: Rows, indices, layout: str, skip_bad_rows: bool, keep_source: bool = False):
    """The rows at `indices`, converted to prompt/completion: a `datasets.Dataset`."""
    from datasets import Dataset

    out, skipped = [], []
    for index in indices:
        row = rows[index]
        try:
            converted = to_prompt_completion(row, layout)
        except DataError as err:
            if not skip_bad_rows:
                raise
            skipped.append(err)
            continue
        if keep_source:
            converted["source_row"] = row.number
            converted["id"] = row.scalar("id", required=False) or str(row.number)
        out.append(converted)
    if skipped:
        logger.warning("%s: skipped %d bad rows (skip_bad_rows=True); first: %s", rows.source, len(skipped), skipped[0])
    logger.info("%s: %d SFT rows (%s layout), %d skipped", rows.source, len(out), layout, len(skipped))
    if not out:
        raise DataError(rows.source, f"expected usable SFT rows, found none ({len(skipped)} skipped as bad)")
    return Dataset.from_list(out)
