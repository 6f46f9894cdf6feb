"""RL data for GRPO: MATH-style problems with gold answers, from the hub or local files, decontaminated.

    rows = load_math_rows("agentica-org/DeepScaleR-Preview-Dataset")        # hub id (respects HF_HUB_OFFLINE)
    rows = load_math_rows("data/math_train12k/train.jsonl")       # or .json / .parquet / a folder
    rows, dropped = decontaminate(rows, load_reference_problems(["HuggingFaceH4/MATH-500"]))
    dataset_rows = to_prompt_rows(rows)                                       # {"prompt": [messages], "answer": gold}
    train, eval_set, report = load_grpo_datasets(script_args, with_eval=False)  # all of it, from `profit-rl grpo`'s
    write_rl_data_report(report, output_dir)                                    # flags; the counts beside the run

A row needs a problem (field `problem`, `question` or `prompt`) and a gold answer (field `answer`, else the last
`\\boxed{}` of `solution`, else a GSM8K `#### N`), normalised by `rewards.answers.gold_answer`. Files are read by
`core.io`, the toolkit's one reader: a row without a problem, or with a field of the wrong type, is a `DataError`
naming the file, line (or row) and field. A row whose gold is empty after normalisation (MATH has two: `\\boxed{}` in
the source) is either an error or dropped with a warning naming it (`bad_gold="error" | "drop"`); the count is always
reported. Nothing is dropped silently.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from profit_rl.configs import GRPOScriptArguments
from profit_rl.core.io import DataError, read_rows
from profit_rl.core.state import write_json_atomic
from profit_rl.rewards.answers import BOXED_INSTRUCTION, gold_answer, math_user_message

logger = logging.getLogger(__name__)

PROBLEM_FIELDS = ("problem", "question", "prompt")
RL_DATA_REPORT = "rl_data_report.json"  # beside the GRPO run's checkpoints
ANSWER_FIELDS = ("answer", "solution")


@dataclass
class MathRow:
    """One RL problem with its normalised gold answer, and where it came from."""
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
        """The report as a plain dict, for data_report.json."""
        return dict(self.__dict__)


# ---------------------------------------------------------------------------------------------------------------------
# Rows


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
    records = read_rows(source, split, config)
    name = records.source
    if report is not None:
        report.source = name
    rows: list[MathRow] = []
    for record in records:
        row_no = record.number
        problem = record.text(*((problem_field,) if problem_field else PROBLEM_FIELDS))
        expected = "a gold answer (a string or a number)"
        a_field, raw_gold = record.pick(*((answer_field,) if answer_field else ANSWER_FIELDS), expected=expected)
        if isinstance(raw_gold, bool) or not isinstance(raw_gold, (str, int, float)):
            raise record.wrong(a_field, expected, raw_gold)
        raw_gold = str(raw_gold)  # a number is a gold answer as it stands; an empty string is a bad gold, below
        gold = gold_answer(raw_gold)
        if not gold:
            if bad_gold == "error":
                raise record.wrong(a_field, "a gold answer (a final answer, a \\boxed{} or '#### N')", raw_gold[-80:])
            logger.warning("%s, field %r: no gold answer (%r); row dropped", record.where, a_field, raw_gold[-60:])
            if report is not None:
                report.bad_gold.append(row_no)
            continue
        rows.append(MathRow(problem=problem, answer=gold, source=name, row=row_no))
        if max_rows is not None and len(rows) >= max_rows:
            break
    if report is not None:
        report.loaded = len(rows) + len(report.bad_gold)
    if not rows:
        raise DataError(name, "expected usable rows, found none (every gold answer was empty)")
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
        for record in read_rows(source, split):
            problems.add(normalize_problem(record.text(*PROBLEM_FIELDS)))
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
        raise DataError(report.source, "expected rows left after decontamination, found none")
    return to_prompt_rows(rows, instruction, prompt_format), report


def load_grpo_datasets(args: GRPOScriptArguments, with_eval: bool):
    """`profit-rl grpo`'s data: (training set, eval set or None, the training data's DataReport), as
    `datasets.Dataset`s. The eval set (`with_eval`: eval_strategy is not 'no') is the test split of
    `eval_dataset_name`, else of `dataset_name`, read like the training rows but neither decontaminated nor cut."""
    import datasets

    from .sft_rows import eval_source

    shared = dict(config=args.dataset_config, problem_field=args.problem_field, answer_field=args.answer_field,
                  bad_gold=args.bad_gold, instruction=args.instruction, prompt_format=args.prompt_format)
    rows, report = load_rl_dataset(
        args.dataset_name,
        args.dataset_train_split,
        decontaminate_against=args.decontamination_sources,
        decontamination_split=args.decontamination_split,
        max_rows=args.max_train_samples,
        **shared,
    )
    train_dataset = datasets.Dataset.from_list(rows)
    eval_dataset = None
    if with_eval:
        source = eval_source(args.dataset_name, args.eval_dataset_name, args.dataset_test_split)
        eval_rows, _ = load_rl_dataset(source, args.dataset_test_split, **shared)
        eval_dataset = datasets.Dataset.from_list(eval_rows)
    return train_dataset, eval_dataset, report


def write_rl_data_report(report: DataReport, output_dir: str | Path) -> Path:
    """`output_dir/rl_data_report.json`: what the training data kept and dropped, and why, beside the checkpoints."""
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    return write_json_atomic(Path(output_dir) / RL_DATA_REPORT, report.as_dict())
