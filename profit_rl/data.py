"""SFT data: any common layout -> TRL's conversational prompt/completion rows, with row-level errors.

Layouts understood (detected per dataset from its columns):
- `prompt`/`completion` (strings or message lists; TRL's own form),
- `messages` (OpenAI/TRL chat: the last assistant message is the completion, everything before it the prompt),
- `conversations` (ShareGPT: `{"from": "human"|"gpt"|"system", "value": ...}`; Infinity-Instruct, the paper's data),
- `instruction`/`input`/`output` (Alpaca; `../shared/data/sft_mix`).

A source is a hub id (loaded with `datasets.load_dataset`) or a local `.jsonl`/`.json`/`.parquet` file or folder.
A row with a missing or empty field raises `RowError` naming the file, row number and field, unless the caller asks
to skip bad rows; skipped rows are counted and logged, never dropped silently.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

LOCAL_FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


class RowError(ValueError):
    """A training row that cannot be used: the message names the source, the row (1-based, the line of a .jsonl file)
    and the field. The SFT and RL loaders both raise it."""

    def __init__(self, source: str, row: int, field_name: str | None, problem: str):
        self.source, self.row, self.field = source, row, field_name
        where = f"{source}, row {row}" + (f", field {field_name!r}" if field_name else "")
        super().__init__(f"{where}: {problem}")


def load_rows(source: str, split: str = "train", config: str | None = None):
    """Load a dataset from a local file/folder or the hub, as a `datasets.Dataset`."""
    from datasets import load_dataset

    path = Path(source)
    if path.exists():
        files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.suffix in LOCAL_FORMATS)
        if not files or any(f.suffix not in LOCAL_FORMATS for f in files):
            raise ValueError(f"{source}: expected .jsonl, .json or .parquet file(s), found {[f.name for f in files]}")
        return load_dataset(LOCAL_FORMATS[files[0].suffix], data_files=[str(f) for f in files], split="train")
    if source.startswith((".", "/", "~")) or source.endswith(tuple(LOCAL_FORMATS)):
        raise FileNotFoundError(f"{source}: no such file or folder")
    return load_dataset(source, config, split=split)


def detect_layout(columns) -> str:
    columns = set(columns)
    for layout, needed in (
        ("prompt_completion", {"prompt", "completion"}),
        ("messages", {"messages"}),
        ("sharegpt", {"conversations"}),
        ("alpaca", {"instruction", "output"}),
    ):
        if needed <= columns:
            return layout
    raise ValueError(
        f"unrecognised SFT layout with columns {sorted(columns)}; expected one of: prompt+completion, messages, "
        "conversations (ShareGPT), instruction+input+output (Alpaca)"
    )


def _text(value, source: str, row: int, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RowError(source, row, name, "is missing or empty")
    return value


def _as_messages(value, role: str, source: str, row: int, name: str) -> list[dict]:
    if isinstance(value, str):
        return [{"role": role, "content": _text(value, source, row, name)}]
    if not isinstance(value, list) or not value:
        raise RowError(source, row, name, "is missing or empty")
    for i, message in enumerate(value):
        if not isinstance(message, dict) or "role" not in message:
            raise RowError(source, row, f"{name}[{i}].role", "is missing")
        _text(message.get("content"), source, row, f"{name}[{i}].content")
    return [{"role": m["role"], "content": m["content"]} for m in value]


def _split_chat(messages: list[dict], source: str, row: int, name: str) -> dict:
    if not messages or messages[-1]["role"] != "assistant":
        raise RowError(source, row, name, "does not end with an assistant message")
    if len(messages) < 2:
        raise RowError(source, row, name, "has no prompt before the assistant message")
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def to_prompt_completion(example: dict, layout: str, source: str, row: int) -> dict:
    """One row in any supported layout -> `{"prompt": [messages], "completion": [assistant message]}`."""
    if layout == "prompt_completion":
        return {
            "prompt": _as_messages(example.get("prompt"), "user", source, row, "prompt"),
            "completion": _as_messages(example.get("completion"), "assistant", source, row, "completion"),
        }
    if layout == "messages":
        return _split_chat(_as_messages(example.get("messages"), "user", source, row, "messages"), source, row, "messages")
    if layout == "sharegpt":
        turns = example.get("conversations")
        if not isinstance(turns, list) or not turns:
            raise RowError(source, row, "conversations", "is missing or empty")
        messages = []
        for i, turn in enumerate(turns):
            speaker = turn.get("from") if isinstance(turn, dict) else None
            if speaker not in SHAREGPT_ROLES:
                raise RowError(source, row, f"conversations[{i}].from", f"is {speaker!r}, not one of {sorted(SHAREGPT_ROLES)}")
            content = _text(turn.get("value"), source, row, f"conversations[{i}].value")
            messages.append({"role": SHAREGPT_ROLES[speaker], "content": content})
        return _split_chat(messages, source, row, "conversations")
    # alpaca
    instruction = _text(example.get("instruction"), source, row, "instruction")
    extra = example.get("input") or ""
    user = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    return {
        "prompt": [{"role": "user", "content": user}],
        "completion": [{"role": "assistant", "content": _text(example.get("output"), source, row, "output")}],
    }


@dataclass
class SFTDataArguments:
    """Where the SFT data comes from and how rows are chosen (the paper trains on 2,000 selected rows)."""

    dataset_name: str = field(
        default="BAAI/Infinity-Instruct",
        metadata={"help": "Hub id, or a local .jsonl/.json/.parquet file or folder (e.g. ../shared/data/sft_mix/train.jsonl)."},
    )
    dataset_config: str | None = field(default="0625", metadata={"help": "Hub dataset config (ignored for local files)."})
    dataset_split: str = field(default="train", metadata={"help": "Split to read (hub datasets)."})
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


def select_rows(dataset, num_samples: int | None, score_column: str | None = None, seed: int = 0):
    """The paper's selection: the top-N rows by a score column, or a seeded random N when there is no score."""
    if num_samples is None or num_samples >= len(dataset):
        if num_samples is not None and num_samples > len(dataset):
            logger.warning("asked for %d rows, the dataset has only %d: keeping all", num_samples, len(dataset))
        return dataset
    if score_column is not None:
        if score_column not in dataset.column_names:
            raise ValueError(f"score_column {score_column!r} not in the dataset's columns {dataset.column_names}")
        return dataset.sort(score_column, reverse=True).select(range(num_samples))
    return dataset.shuffle(seed=seed).select(range(num_samples))


def load_sft_dataset(args: SFTDataArguments, keep_source: bool = False):
    """Load, select and convert SFT rows to conversational prompt/completion. Returns a `datasets.Dataset`.

    With `keep_source`, each row also carries `source_row` (1-based) and `id` (the source's, else the row number),
    for tools that point back into the file (`profit-rl inspect`)."""
    from datasets import Dataset

    source = args.dataset_name
    raw = load_rows(source, args.dataset_split, args.dataset_config)
    layout = detect_layout(raw.column_names)
    # Selection first: the paper picks rows from the pool, and converting millions of hub rows to pick 2,000 is waste.
    # The row numbers in errors are those of the source file (1-based), kept through the selection.
    raw = raw.add_column("_source_row", list(range(1, len(raw) + 1)))
    raw = select_rows(raw, args.num_samples, args.score_column, args.sample_seed)
    rows, skipped = [], []
    for example in raw:
        try:
            row = to_prompt_completion(example, layout, source, example["_source_row"])
        except RowError as err:
            if not args.skip_bad_rows:
                raise
            skipped.append(err)
            continue
        if keep_source:
            row["source_row"] = example["_source_row"]
            row["id"] = str(example.get("id", example["_source_row"]))
        rows.append(row)
    if skipped:
        logger.warning("%s: skipped %d bad rows (skip_bad_rows=True); first: %s", source, len(skipped), skipped[0])
    logger.info("%s: %d SFT rows (%s layout), %d skipped", source, len(rows), layout, len(skipped))
    if not rows:
        raise ValueError(f"{source}: no usable SFT rows")
    return Dataset.from_list(rows)
