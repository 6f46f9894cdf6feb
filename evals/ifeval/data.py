"""IFEval prompts and response files.

Prompts come from the hub (`google/IFEval`, the default) or from a local copy of the reference's `input_data.jsonl`
(a file, or a directory holding one). Every row is validated when loaded, by building its checkers, so a bad row fails
before any scoring with the file, row and field named.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from evals.ifeval.instructions import InstructionError, build_checker

logger = logging.getLogger(__name__)

HUB_ID = "google/IFEval"
INPUT_FILENAME = "input_data.jsonl"
_HUB_ID_PATTERN = re.compile(r"[\w.-]+/[\w.-]+")


class IFEvalDataError(ValueError):
    """A prompt or response row that cannot be used; the message names the file, row and field."""


@dataclass
class IFEvalPrompt:
    """One IFEval prompt: the reference's `InputExample`."""

    key: int
    prompt: str
    instruction_id_list: list[str]
    kwargs: list[dict[str, Any]]
    _checkers: list[Callable[[str], bool]] | None = field(default=None, init=False, repr=False, compare=False)

    def checkers(self) -> list[Callable[[str], bool]]:
        """One `response -> bool` checker per instruction (built once)."""
        if self._checkers is None:
            self._checkers = [build_checker(i, kw) for i, kw in zip(self.instruction_id_list, self.kwargs)]
        return self._checkers

    def to_dict(self) -> dict:
        return {"key": self.key, "prompt": self.prompt, "instruction_id_list": self.instruction_id_list,
                "kwargs": self.kwargs}  # fmt: skip


def _prompt_from_row(row: Any, where: str) -> IFEvalPrompt:
    if not isinstance(row, dict):
        raise IFEvalDataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    for name, kind in (("key", int), ("prompt", str), ("instruction_id_list", list), ("kwargs", list)):
        if name not in row:
            raise IFEvalDataError(f"{where}: missing field {name!r}")
        if not isinstance(row[name], kind) or isinstance(row[name], bool):
            raise IFEvalDataError(f"{where}: field {name!r} must be {kind.__name__}, got {type(row[name]).__name__}")
    if len(row["instruction_id_list"]) != len(row["kwargs"]):
        raise IFEvalDataError(
            f"{where}: 'instruction_id_list' has {len(row['instruction_id_list'])} entries but 'kwargs' has "
            f"{len(row['kwargs'])}"
        )
    # The hub dataset stores every instruction's every key, unused ones as null: keep only the real ones.
    kwargs = [{k: v for k, v in (kw or {}).items() if v is not None} for kw in row["kwargs"]]
    prompt = IFEvalPrompt(row["key"], row["prompt"], list(row["instruction_id_list"]), kwargs)
    for index, (instruction_id, kw) in enumerate(zip(prompt.instruction_id_list, kwargs)):
        try:
            build_checker(instruction_id, kw)
        except InstructionError as error:
            raise IFEvalDataError(
                f"{where}: field 'kwargs'[{index}] / 'instruction_id_list'[{index}]: {error}"
            ) from None
    return prompt


def _read_jsonl(path: Path) -> list[tuple[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_number}"
            try:
                rows.append((where, json.loads(line)))
            except json.JSONDecodeError as error:
                raise IFEvalDataError(f"{where}: not valid JSON ({error})") from None
    return rows


def load_prompts(source: str | os.PathLike = HUB_ID) -> list[IFEvalPrompt]:
    """Load and validate the IFEval prompts.

    `source` is a local `input_data.jsonl`, a directory containing one, or a hub dataset id (its `train` split).
    """
    path = Path(source)
    if path.is_dir():
        path = path / INPUT_FILENAME
        if not path.is_file():
            raise FileNotFoundError(f"IFEval: no {INPUT_FILENAME} in directory {source}")
    if path.is_file():
        located = _read_jsonl(path)
    elif not _HUB_ID_PATTERN.fullmatch(str(source)) or str(source).endswith((".jsonl", ".json")):
        raise FileNotFoundError(f"IFEval: prompt file {source} does not exist (and it is not a hub dataset id)")
    else:
        import datasets

        try:
            dataset = datasets.load_dataset(str(source), split="train")
        except Exception as error:  # offline, unknown id, no access: say how to use a local copy instead
            raise ConnectionError(
                f"IFEval: could not load hub dataset {source!r} ({type(error).__name__}: {error}). Pass a local copy "
                f"of the reference's {INPUT_FILENAME} instead, e.g. --input-data ../shared/data/ifeval/{INPUT_FILENAME}"
            ) from error
        located = [(f"{source}[train][{index}]", row) for index, row in enumerate(dataset)]
    prompts = [_prompt_from_row(row, where) for where, row in located]
    if not prompts:
        raise IFEvalDataError(f"IFEval: {source} holds no prompts")
    seen: dict[str, int] = {}
    for prompt in prompts:
        if prompt.prompt in seen:  # responses are matched to prompts by text, as in the reference
            raise IFEvalDataError(f"{source}: keys {seen[prompt.prompt]} and {prompt.key} have the same prompt text")
        seen[prompt.prompt] = prompt.key
    return prompts


def read_responses(path: str | os.PathLike) -> dict[str, str]:
    """Read the reference's response file: JSONL rows `{"prompt": ..., "response": ...}`, keyed by prompt text.

    As in the reference a later row for the same prompt replaces an earlier one; we log how many did.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IFEval: response file {path} does not exist")
    responses: dict[str, str] = {}
    replaced = 0
    for where, row in _read_jsonl(path):
        if not isinstance(row, dict):
            raise IFEvalDataError(f"{where}: expected a JSON object, got {type(row).__name__}")
        for name in ("prompt", "response"):
            if name not in row:
                raise IFEvalDataError(f"{where}: missing field {name!r}")
            if not isinstance(row[name], str):
                raise IFEvalDataError(f"{where}: field {name!r} must be a string, got {type(row[name]).__name__}")
        replaced += row["prompt"] in responses
        responses[row["prompt"]] = row["response"]
    if not responses:
        raise IFEvalDataError(f"{path}: no response rows")
    if replaced:
        logger.warning("%s: %d rows repeat an earlier prompt; the later response is used, as the reference does",
                       path, replaced)  # fmt: skip
    return responses
