"""IFEval prompts and response files.

Prompts come from the hub (`google/IFEval`, the default) or from a local copy of the reference's `input_data.jsonl`
(a file, or a directory holding one). Every row is validated when loaded, by building its checkers, so a bad row fails
before any scoring with the file, row and field named.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from profit_rl.evals.ifeval.instructions import InstructionError, build_checker
from profit_rl.core.io import DataError, Row, Rows, read_file

logger = logging.getLogger(__name__)

HUB_ID = "google/IFEval"
INPUT_FILENAME = "input_data.jsonl"
_HUB_ID_PATTERN = re.compile(r"[\w.-]+/[\w.-]+")


# A prompt or response row that cannot be used: the toolkit's one data error, naming the file, line and field.
IFEvalDataError = DataError


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
        """The prompt as a row of the reference's input_data.jsonl."""
        return {"key": self.key, "prompt": self.prompt, "instruction_id_list": self.instruction_id_list,
                "kwargs": self.kwargs}  # fmt: skip


def _prompt_from_row(row: Row) -> IFEvalPrompt:
    for name, kind in (("key", int), ("prompt", str), ("instruction_id_list", list), ("kwargs", list)):
        if name not in row:
            raise row.wrong(name, f"a {kind.__name__}")
        if not isinstance(row[name], kind) or isinstance(row[name], bool):
            raise row.wrong(name, f"a {kind.__name__}", row[name])
    if len(row["instruction_id_list"]) != len(row["kwargs"]):
        raise row.error("kwargs", f"expected one entry per instruction ({len(row['instruction_id_list'])} in "
                        f"'instruction_id_list'), found {len(row['kwargs'])}")
    # The hub dataset stores every instruction's every key, unused ones as null: keep only the real ones.
    if not all(isinstance(kw, dict) or kw is None for kw in row["kwargs"]):
        raise row.wrong("kwargs", "a list of objects", row["kwargs"])
    kwargs = [{k: v for k, v in (kw or {}).items() if v is not None} for kw in row["kwargs"]]
    prompt = IFEvalPrompt(row["key"], row["prompt"], list(row["instruction_id_list"]), kwargs)
    for index, (instruction_id, kw) in enumerate(zip(prompt.instruction_id_list, kwargs)):
        try:
            build_checker(instruction_id, kw)
        except InstructionError as error:
            raise row.error(f"kwargs[{index}]", f"{error} (instruction_id_list[{index}] = {instruction_id!r})") from None
    return prompt


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
        rows = read_file(path)
    elif not _HUB_ID_PATTERN.fullmatch(str(source)) or str(source).endswith((".jsonl", ".json")):
        raise FileNotFoundError(f"IFEval: prompt file {source} does not exist (and it is not a hub dataset id)")
    else:
        import datasets

        try:
            dataset = datasets.load_dataset(str(source), split="train")
        except Exception as error:  # offline, unknown id, no access: say how to use a local copy instead
            raise ConnectionError(
                f"IFEval: could not load hub dataset {source!r} ({type(error).__name__}: {error}). Pass a local copy "
                f"of the reference's {INPUT_FILENAME} instead, e.g. --input-data data/ifeval/{INPUT_FILENAME}"
            ) from error
        rows = Rows(f"{source}[train]", dataset)
    prompts = [_prompt_from_row(row) for row in rows]
    if not prompts:
        raise DataError(str(source), "expected IFEval prompts, found none")
    seen: dict[str, int] = {}
    for prompt in prompts:
        if prompt.prompt in seen:  # responses are matched to prompts by text, as in the reference
            raise DataError(str(source), f"keys {seen[prompt.prompt]} and {prompt.key} have the same prompt text")
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
    for row in read_file(path):
        prompt, response = row.text("prompt"), row.text("response", empty=True)
        replaced += prompt in responses
        responses[prompt] = response
    if replaced:
        logger.warning("%s: %d rows repeat an earlier prompt; the later response is used, as the reference does",
                       path, replaced)  # fmt: skip
    return responses
