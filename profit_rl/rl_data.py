"""RL data for GRPO: MATH-style problems with gold answers, from the hub or local files, decontaminated.

    rows = load_math_rows("agentica-org/DeepScaleR-Preview-Dataset")        # hub id (respects HF_HUB_OFFLINE)
    rows = load_math_rows("../shared/data/math_train12k/train.jsonl")       # or .json / .parquet / a folder
    rows, dropped = decontaminate(rows, load_reference_problems(["HuggingFaceH4/MATH-500"]))
    dataset_rows = to_prompt_rows(rows)                                       # {"prompt": [messages], "answer": gold}

A row needs a problem (field `problem`, `question` or `prompt`) and a gold answer (field `answer`, else the last
`\\boxed{}` of `solution`, else a GSM8K `#### N`), normalised by `rewards.answers.gold_answer`. A row without a
problem, or with a non-string field, is an error naming the file, row and field. A row whose gold is empty after
normalisation (MATH has two: `\\boxed{}` in the source) is either an error or dropped with a warning naming it
(`bad_gold="error" | "drop"`); the count is always reported. Nothing is dropped silently.

`RowError` is the SFT loader's (profit_rl.data): one error type, file/row/field, for all training data.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from rewards.answers import BOXED_INSTRUCTION, gold_answer, math_user_message

from .data import RowError  # one row error for all training data (re-exported here)

logger = logging.getLogger(__name__)

PROBLEM_FIELDS = ("problem", "question", "prompt")
ANSWER_FIELDS = ("answer", "solution")
LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet")


@dataclass
class MathRow:
    problem: str
    answer: str  # normalised gold (rewards.answers.gold_answer)
    source: str
    row: int  # 1-based position in the source


@dataclass
class DataReport:
    """What happened to the rows: written next to the checkpoints so that nothing is dropped silently."""

    source: str
    loaded: int = 0
    bad_gold: list[int] = field(default_factory=list)  # rows dropped because their gold was empty
    decontaminated: int = 0  # rows dropped because their problem is in a reference (test) set
    decontamination_sources: list[str] = field(default_factory=list)
    kept: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


# ---------------------------------------------------------------------------------------------------------------------
# Reading records


def is_local(source: str) -> bool:
    return os.path.exists(os.path.expanduser(source))


def _resolve_local(path: Path, split: str) -> Path:
    if path.is_file():
        return path
    for suffix in LOCAL_SUFFIXES:  # a folder: <split>.jsonl, <split>.json, <split>.parquet
        candidate = path / f"{split}{suffix}"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{path}: no {split}.jsonl, {split}.json or {split}.parquet in this folder")


def read_records(source: str, split: str = "train", config: str | None = None) -> tuple[list[dict], str]:
    """Records from a local file/folder or a hub dataset id (with an optional hub `config`), and a name for errors."""
    if is_local(source):
        path = _resolve_local(Path(os.path.expanduser(source)), split)
        name = str(path)
        if path.suffix == ".jsonl":
            records = []
            with path.open(encoding="utf-8") as f:
                for line_no, line in enumerate(f, start=1):
                    if not line.strip():
                        continue
                    try:
                        records.append((line_no, json.loads(line)))
                    except json.JSONDecodeError as exc:
                        raise RowError(name, line_no, None, f"invalid JSON ({exc.msg})") from None
            return _check_objects(records, name), name
        if path.suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and isinstance(data.get("data"), list):
                data = data["data"]
            if not isinstance(data, list):
                raise ValueError(f"{name}: expected a JSON list of objects (or {{'data': [...]}})")
            return _check_objects(list(enumerate(data, start=1)), name), name
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pylist(), name
        raise ValueError(f"{name}: unsupported file type (use {', '.join(LOCAL_SUFFIXES)})")
    from datasets import load_dataset

    try:
        dataset = load_dataset(source, config, split=split)
    except Exception as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false")
        hint = " (HF_HUB_OFFLINE is set: pass a local .jsonl/.json/.parquet path instead)" if offline else ""
        raise RuntimeError(f"could not load dataset {source!r} split {split!r} from the hub{hint}: {exc}") from exc
    return list(dataset), f"{source}[{split}]" if config is None else f"{source}/{config}[{split}]"


def _check_objects(numbered: list[tuple[int, object]], name: str) -> list[dict]:
    for row, record in numbered:
        if not isinstance(record, dict):
            raise RowError(name, row, None, f"expected a JSON object, got {type(record).__name__}")
    return [record for _, record in numbered]


# ---------------------------------------------------------------------------------------------------------------------
# Rows


def _pick(record: dict, wanted: str | None, candidates: tuple[str, ...]) -> str | None:
    if wanted:
        return wanted
    return next((name for name in candidates if name in record), None)


def load_math_rows(
    source: str,
    split: str = "train",
    *,
    config: str | None = None,
    problem_field: str | None = None,
    answer_field: str | None = None,
    bad_gold: str = "drop",
    max_rows: int | None = None,
    report: DataReport | None = None,
) -> list[MathRow]:
    """Problems and normalised gold answers from `source` (hub id, file or folder). See the module docstring."""
    if bad_gold not in ("drop", "error"):
        raise ValueError(f"bad_gold must be 'drop' or 'error', got {bad_gold!r}")
    records, name = read_records(source, split, config)
    if report is not None:
        report.source = name
    rows: list[MathRow] = []
    for row_no, record in enumerate(records, start=1):
        p_field = _pick(record, problem_field, PROBLEM_FIELDS)
        a_field = _pick(record, answer_field, ANSWER_FIELDS)
        if p_field is None or p_field not in record:
            raise RowError(name, row_no, problem_field or "/".join(PROBLEM_FIELDS), "missing problem field")
        if a_field is None or a_field not in record:
            raise RowError(name, row_no, answer_field or "/".join(ANSWER_FIELDS), "missing answer field")
        problem, raw_gold = record[p_field], record[a_field]
        if not isinstance(problem, str) or not problem.strip():
            raise RowError(name, row_no, p_field, f"expected a non-empty string, got {problem!r:.60}")
        if isinstance(raw_gold, (int, float)) and not isinstance(raw_gold, bool):
            raw_gold = str(raw_gold)
        if not isinstance(raw_gold, str):
            raise RowError(name, row_no, a_field, f"expected a string, got {type(raw_gold).__name__}")
        gold = gold_answer(raw_gold)
        if not gold:
            if bad_gold == "error":
                raise RowError(name, row_no, a_field, f"no gold answer can be read from {raw_gold[-80:]!r}")
            logger.warning("%s, row %d, field %r: no gold answer (%r); row dropped", name, row_no, a_field, raw_gold[-60:])
            if report is not None:
                report.bad_gold.append(row_no)
            continue
        rows.append(MathRow(problem=problem, answer=gold, source=name, row=row_no))
        if max_rows is not None and len(rows) >= max_rows:
            break
    if report is not None:
        report.loaded = len(rows) + len(report.bad_gold)
    if not rows:
        raise ValueError(f"{name}: no usable rows")
    return rows


# ---------------------------------------------------------------------------------------------------------------------
# Decontamination


def normalize_problem(text: str) -> str:
    """Problem text reduced to lowercase letters and digits (`\\dfrac` -> `\\frac`), for matching across copies that
    differ in whitespace, `$` delimiters, punctuation or LaTeX spacing."""
    text = text.lower().replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    text = re.sub(r"\\(?:left|right|displaystyle)(?![a-z])", "", text)
    return re.sub(r"[^a-z0-9]", "", text)


def load_reference_problems(sources: list[str], split: str = "test") -> set[str]:
    """Normalised problem texts of the evaluation sets to keep out of training (e.g. MATH-500)."""
    problems: set[str] = set()
    for source in sources:
        records, name = read_records(source, split)
        for row_no, record in enumerate(records, start=1):
            p_field = _pick(record, None, PROBLEM_FIELDS)
            if p_field is None or not isinstance(record[p_field], str):
                raise RowError(name, row_no, "/".join(PROBLEM_FIELDS), "missing problem text")
            problems.add(normalize_problem(record[p_field]))
    return problems


def decontaminate(rows: list[MathRow], reference: set[str]) -> tuple[list[MathRow], int]:
    """Drop rows whose normalised problem is in `reference`: (kept rows, number dropped)."""
    kept = [row for row in rows if normalize_problem(row.problem) not in reference]
    return kept, len(rows) - len(kept)


# ---------------------------------------------------------------------------------------------------------------------
# Prompts


def build_prompt(problem: str, instruction: str = BOXED_INSTRUCTION, prompt_format: str = "chat"):
    """One prompt: chat messages (TRL applies the model's chat template) or plain text for template-less models."""
    if prompt_format == "chat":
        return [{"role": "user", "content": math_user_message(problem, instruction)}]
    if prompt_format == "plain":
        return f"Problem: {problem}\n{instruction}\nSolution:"
    raise ValueError(f"prompt_format must be 'chat' or 'plain', got {prompt_format!r}")


def to_prompt_rows(rows: list[MathRow], instruction: str = BOXED_INSTRUCTION, prompt_format: str = "chat") -> list[dict]:
    """GRPOTrainer rows: `prompt` plus the `answer` column that `rewards.accuracy_reward` reads."""
    return [{"prompt": build_prompt(r.problem, instruction, prompt_format), "answer": r.answer} for r in rows]


def load_rl_dataset(
    source: str,
    split: str = "train",
    *,
    config: str | None = None,
    decontaminate_against: list[str] | None = None,
    decontamination_split: str = "test",
    problem_field: str | None = None,
    answer_field: str | None = None,
    bad_gold: str = "drop",
    max_rows: int | None = None,
    instruction: str = BOXED_INSTRUCTION,
    prompt_format: str = "chat",
) -> tuple[list[dict], DataReport]:
    """Everything above in order: load, decontaminate, build prompts. Returns (rows, report); logs the counts."""
    report = DataReport(source=source)
    rows = load_math_rows(
        source, split, config=config, problem_field=problem_field, answer_field=answer_field, bad_gold=bad_gold,
        report=report,
    )
    if decontaminate_against:
        reference = load_reference_problems(decontaminate_against, decontamination_split)
        rows, report.decontaminated = decontaminate(rows, reference)
        report.decontamination_sources = list(decontaminate_against)
    if max_rows is not None:
        rows = rows[:max_rows]
    report.kept = len(rows)
    logger.info(
        "RL data %s: %d rows loaded, %d dropped for an empty gold, %d dropped as in %s, %d kept",
        report.source, report.loaded, len(report.bad_gold), report.decontaminated,
        ", ".join(report.decontamination_sources) or "(no decontamination)", report.kept,
    )
    if not rows:
        raise ValueError(f"{report.source}: no rows left after decontamination")
    return to_prompt_rows(rows, instruction, prompt_format), report
