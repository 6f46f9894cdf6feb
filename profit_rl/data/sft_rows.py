"""SFT data: any common layout -> TRL's conversational prompt/completion rows, with row-level errors.

Layouts understood (detected per dataset from its columns):
- `prompt`/`completion` (strings or message lists; TRL's own form),
- `messages` (OpenAI/TRL chat),
- `conversations` (ShareGPT: `{"from": "human"|"gpt"|"system", "value": ...}`; Infinity-Instruct, and Shadow_2k, the
  paper's SFT set),
- `instruction`/`input`/`output` (Alpaca).

A conversation (`messages`, `conversations`) with several assistant turns supervises every one of them by default, as
LLaMA-Factory does (`mask_history=False`), which the reference trains with: each assistant turn becomes one
prompt/completion row whose prompt is the whole conversation before it. Every assistant token is then supervised
once, in the context the model sees at inference, through TRL's own prompt/completion path. `supervised_turns="last"`
keeps only the last turn. Unlike one sequence per conversation, the earlier turns are encoded again in each later
row's prompt (more compute) and each turn is its own row in the batches.

A source is a hub id, an http(s) URL of a data file, or a local .jsonl/.json/.csv/.parquet file or folder, read by
`core.io` (the toolkit's one reader). A row with a missing, empty or wrongly typed field raises `DataError` naming
the file, the line (the row of a parquet file or hub dataset) and the field, unless the caller asks to skip bad rows;
skipped rows are counted and logged, never dropped silently.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from profit_rl.configs import SUPERVISED_TURNS, SFTDataArguments
from profit_rl.core.io import MISSING, DataError, InputError, Row, Rows, read_rows

logger = logging.getLogger(__name__)

SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
LAYOUTS = (
    ("prompt_completion", {"prompt", "completion"}),
    ("messages", {"messages"}),
    ("sharegpt", {"conversations"}),
    ("alpaca", {"instruction", "output"}),
)


def detect_layout(columns, source: str = "the SFT data") -> str:
    """The SFT layout that `columns` hold (prompt_completion, messages, sharegpt or alpaca, the first that fits);
    none is a DataError naming the columns found."""
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


def _split_chat(row: Row, messages: list[dict], name: str, turns: str) -> list[dict]:
    """One prompt/completion row per supervised assistant turn (`turns`: "all" or "last")."""
    if messages[-1]["role"] != "assistant":
        raise row.error(name, f"expected a last message from the assistant, found one from {messages[-1]['role']!r}")
    ends = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    if turns == "last":
        ends = ends[-1:]
    if ends[0] == 0:
        raise row.error(name, "expected a prompt before the assistant message, found the assistant message first")
    return [{"prompt": messages[:i], "completion": [messages[i]]} for i in ends]


def to_prompt_completion(row: Row, layout: str, turns: str = "all") -> list[dict]:
    """One row in any supported layout -> its training examples, `{"prompt": [messages], "completion": [assistant
    message]}`: one per supervised assistant turn of a conversation (`turns`: "all" or "last"), else one."""
    if turns not in SUPERVISED_TURNS:
        raise ValueError(f"supervised_turns must be one of {SUPERVISED_TURNS}, got {turns!r}")
    if layout == "prompt_completion":
        return [{"prompt": _messages(row, "prompt", "user"), "completion": _messages(row, "completion", "assistant")}]
    if layout == "messages":
        return _split_chat(row, _messages(row, "messages", "user"), "messages", turns)
    if layout == "sharegpt":
        conversation = row.get("conversations", MISSING)
        if not isinstance(conversation, list) or not conversation:
            raise row.wrong("conversations", "a non-empty list of turns", conversation)
        messages = []
        for i, turn in enumerate(conversation):
            if not isinstance(turn, dict):
                raise row.wrong(f"conversations[{i}]", "a turn object {from, value}", turn)
            speaker = turn.get("from", MISSING)
            if not isinstance(speaker, str) or speaker not in SHAREGPT_ROLES:
                raise row.wrong(f"conversations[{i}].from", f"one of {sorted(SHAREGPT_ROLES)}", speaker)
            content = turn.get("value", MISSING)
            if not isinstance(content, str) or not content.strip():
                raise row.wrong(f"conversations[{i}].value", "a non-empty string", content)
            messages.append({"role": SHAREGPT_ROLES[speaker], "content": content})
        return _split_chat(row, messages, "conversations", turns)
    # alpaca: `input` is optional, but a string when present
    instruction = row.text("instruction")
    extra = row.text("input", required=False, empty=True) or ""
    user = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    return [{
        "prompt": [{"role": "user", "content": user}],
        "completion": [{"role": "assistant", "content": row.text("output")}],
    }]


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
    if not args.dataset_name:
        raise InputError("dataset_name is required: a hub id, an http(s) URL of a .parquet/.json/.jsonl file, or a "
                         "local file or folder")
    if args.supervised_turns not in SUPERVISED_TURNS:
        raise ValueError(f"supervised_turns must be one of {SUPERVISED_TURNS}, got {args.supervised_turns!r}")
    rows = read_rows(args.dataset_name, args.dataset_train_split, args.dataset_config)
    layout = detect_layout(rows.columns, rows.source)
    # Selection first: the paper picks rows from the pool, and converting millions of hub rows to pick 2,000 is waste.
    scores = score_values(rows, args.score_column) if args.score_column is not None else None
    chosen = select_indices(len(rows), args.num_samples, scores, args.sample_seed)
    return convert_rows(rows, chosen, layout, args.skip_bad_rows, keep_source, args.supervised_turns)


def load_sft_eval_dataset(args: SFTDataArguments):
    """The eval set: every row of the test split (of `eval_dataset_name` when given), converted like training rows."""
    source = eval_source(args.dataset_name, args.eval_dataset_name, args.dataset_test_split)
    rows = read_rows(source, args.dataset_test_split, args.dataset_config)
    return convert_rows(rows, range(len(rows)), detect_layout(rows.columns, rows.source), args.skip_bad_rows,
                        turns=args.supervised_turns)


def convert_rows(rows: Rows, indices, layout: str, skip_bad_rows: bool, keep_source: bool = False,
                 turns: str = "all"):
    """The rows at `indices`, converted to prompt/completion (one example per supervised assistant turn of a
    conversation, `turns`: "all" or "last"): a `datasets.Dataset`."""
    from datasets import Dataset

    out, skipped, multi_turn = [], [], 0
    for index in indices:
        row = rows[index]
        try:
            examples = to_prompt_completion(row, layout, turns)
        except DataError as err:
            if not skip_bad_rows:
                raise
            skipped.append(err)
            continue
        multi_turn += len(examples) > 1
        for turn, converted in enumerate(examples, start=1):
            if keep_source:
                converted["source_row"] = row.number
                row_id = row.scalar("id", required=False) or str(row.number)
                converted["id"] = f"{row_id}#{turn}" if len(examples) > 1 else row_id  # one id per example
            out.append(converted)
    if skipped:
        logger.warning("%s: skipped %d bad rows (skip_bad_rows=True); first: %s", rows.source, len(skipped), skipped[0])
    logger.info("%s: %d SFT rows from %d source rows (%s layout; %d conversations with several supervised assistant "
                "turns, one row each; supervised_turns=%s), %d skipped", rows.source, len(out),
                len(indices) - len(skipped), layout, multi_turn, turns, len(skipped))
    if not out:
        raise DataError(rows.source, f"expected usable SFT rows, found none ({len(skipped)} skipped as bad)")
    return Dataset.from_list(out)


def apply_chat_format(dataset, chat):
    """Rows that TRL renders in `chat`'s format (core.chat.ChatFormat): the template settings go with each row
    (`chat_template_kwargs`, which SFTTrainer passes to apply_chat_template), and every row is checked to hold the
    contract that its generation prompt is a token prefix of its training render, so that the supervised tokens start
    where generation will start."""
    from profit_rl.core.chat import ChatFormatError

    for index, row in enumerate(dataset):
        if not chat.prompt_is_prefix(row["prompt"], row["completion"]):
            where = f"source row {row['source_row']}" if "source_row" in row else f"selected row {index + 1}"
            raise ChatFormatError(
                f"SFT data, {where}: the chat template renders this row so that the generation prompt is not where "
                "the answer starts in training (a token merges across the boundary, or the template rewrites the "
                f"prompt); completion starts {row['completion'][0]['content'][:60]!r}"
            )
    if not chat.template_kwargs:
        return dataset
    return dataset.map(lambda _: {"chat_template_kwargs": dict(chat.template_kwargs)})


def truncation_report(dataset, chat, max_length: int | None, mode: str = "keep_start") -> list[dict]:
    """The rows that `max_length` cuts, as TRL's SFTTrainer cuts them (`truncation_mode` keep_start: the end goes;
    keep_end: the start goes): `{"row", "prompt_tokens", "tokens", "completion_tokens", "completion_kept"}`, where
    `completion_kept` is 0 for a row that loses its whole completion (TRL then drops the row: it carries no loss)."""
    if max_length is None:
        return []
    encode = lambda texts: chat.tokenizer(texts, add_special_tokens=False)["input_ids"]  # noqa: E731
    cut = []
    for start in range(0, len(dataset), 256):
        batch = dataset[start : start + 256]
        prompts = encode([chat.prompt(p) for p in batch["prompt"]])
        fulls = encode([chat.conversation(p + c) for p, c in zip(batch["prompt"], batch["completion"])])
        rows = ([f"source row {n}" for n in batch["source_row"]] if "source_row" in batch
                else [f"selected row {n}" for n in range(start + 1, start + 1 + len(fulls))])
        for row, prompt, full in zip(rows, prompts, fulls):
            if len(full) <= max_length:
                continue
            completion = len(full) - len(prompt)
            kept = max(0, max_length - len(prompt)) if mode == "keep_start" else min(completion, max_length)
            cut.append({"row": row, "prompt_tokens": len(prompt), "tokens": len(full), "completion_tokens": completion,
                        "completion_kept": kept})
    return cut


def check_truncation(cut: list[dict], n_rows: int, max_length: int, max_fraction: float, source: str) -> None:
    """Log every truncated row (counts, and each row up to 20) and stop with an InputError naming --max_length when more
    than `max_fraction` of the rows lose their whole completion."""
    if not cut:
        return
    lost = [c for c in cut if c["completion_kept"] == 0]
    logger.warning("%s: %d of %d SFT rows are longer than --max_length %d: %d lose their whole completion (TRL drops "
                   "them: they carry no loss) and %d lose the end of it", source, len(cut), n_rows, max_length,
                   len(lost), len(cut) - len(lost))
    for c in cut[:20]:
        logger.warning("  %s: %d tokens (prompt %d, completion %d): %d completion tokens kept", c["row"],
                       c["tokens"], c["prompt_tokens"], c["completion_tokens"], c["completion_kept"])
    if len(cut) > 20:
        logger.warning("  ... and %d more rows", len(cut) - 20)
    if len(lost) > max_fraction * n_rows:
        longest = max(c["tokens"] for c in cut)
        raise DataError(source, f"{len(lost)} of {n_rows} SFT rows lose their whole completion to --max_length "
                        f"{max_length} (first: {lost[0]['row']}, prompt {lost[0]['prompt_tokens']} tokens): "
                        f"training would see {'none' if len(lost) == n_rows else 'few'} of them. Raise --max_length "
                        f"(the longest row has {longest} tokens)"
                        + ("" if len(lost) == n_rows else ", or pass --max_truncated_fraction 1 to train on the rest"))
