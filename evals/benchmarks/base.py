"""The Benchmark interface: load problems (hub id or local file), build the chat prompt, score one completion.

A benchmark never samples and never aggregates: `evals.sampling` makes completions, `evals.metrics` aggregates.
Loaders accept three sources: None (the hub id, the default users get), a directory laid out like
`../shared/data` (`--data-dir`), or a path to a .jsonl/.json/.csv/.parquet file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class MissingDataError(FileNotFoundError):
    """The benchmark's data is neither at the local path nor reachable on the hub; the message says how to get it."""


class RowError(ValueError):
    """A data row lacks a field or has a malformed one; the message names the file, row and field."""


@dataclass
class Problem:
    """One benchmark question. `id` is stable across runs (it keys the sample cache and paired comparisons)."""

    id: str
    question: str
    gold: Any
    meta: dict = field(default_factory=dict)


class Benchmark:
    """Subclasses set the class attributes and implement `to_problem`, `prompt`, `extract` and `score`."""

    name: str = ""  # the --benchmarks key, e.g. "math500"
    title: str = ""  # how tables show it, e.g. "MATH-500"
    hub_id: str = ""
    hub_config: str | None = None
    hub_split: str = "test"
    local_path: str = ""  # relative to --data-dir, e.g. "math500/test.jsonl"
    gated: bool = False
    default_k: int = 8
    max_new_tokens: int = 4096
    prompt_version: str = "1"  # bump when prompt() changes: cached samples made with the old prompt are then refused
    scorer: str = "1"  # names the scoring rule; cached scores made under another rule are refused

    # ---- loading -------------------------------------------------------------------------------------------------
    def load(self, source: str | os.PathLike | None = None) -> list[Problem]:
        rows, where = self.read_rows(source)
        problems = []
        for index, row in enumerate(rows):
            try:
                problems.append(self.to_problem(index, row))
            except KeyError as err:
                raise RowError(f"{self.title}: {where} row {index}: missing field {err.args[0]!r}") from None
            except (TypeError, ValueError) as err:
                raise RowError(f"{self.title}: {where} row {index}: {err}") from None
        ids = [p.id for p in problems]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise RowError(f"{self.title}: {where}: problem id {dup!r} appears more than once")
        return problems

    def read_rows(self, source) -> tuple[list[dict], str]:
        """Rows as dicts, and a description of where they came from (for error messages)."""
        if source is None:
            return self.read_hub()
        path = Path(source)
        if path.is_dir():
            path = path / self.local_path
        if not path.is_file():
            raise MissingDataError(self.missing_message(path))
        return read_table(path), str(path)

    def read_hub(self) -> tuple[list[dict], str]:
        where = f"hub dataset {self.hub_id}" + (f" ({self.hub_config})" if self.hub_config else "")
        try:
            import datasets

            dataset = datasets.load_dataset(self.hub_id, self.hub_config, split=self.hub_split)
        except Exception as err:  # offline, gated, no network: all end the same way for the user
            raise MissingDataError(self.missing_message(None, reason=f"{type(err).__name__}: {err}")) from err
        return [dict(row) for row in dataset], where

    def missing_message(self, looked_at: Path | None, reason: str = "") -> str:
        export = (
            f"python -c \"from datasets import load_dataset; load_dataset('{self.hub_id}'"
            + (f", '{self.hub_config}'" if self.hub_config else "")
            + f", split='{self.hub_split}').to_json('DATA_DIR/{self.local_path}')\""
        )
        lines = [f"{self.title} ({self.name}): no data found."]
        if looked_at is not None:
            lines.append(f"  looked for: {looked_at}")
        else:
            lines.append(f"  tried the hub dataset {self.hub_id}" + (f" ({self.hub_config})" if self.hub_config else ""))
            if reason:
                lines.append(f"  which failed with: {reason[:300]}")
        lines.append("  to get it:")
        gated = " (gated: accept its terms on the hub page, then `hf auth login`)" if self.gated else ""
        if looked_at is not None:
            lines.append(f"    - with network: drop --data-dir to read {self.hub_id} from the hub{gated}")
        else:
            lines.append(f"    - with network (HF_HUB_OFFLINE unset): it is read from {self.hub_id}{gated}")
        lines.append(f"    - or export it once to a data dir (layout DATA_DIR/{self.local_path}):")
        lines.append(f"        {export}")
        lines.append("      then pass --data-dir DATA_DIR")
        return "\n".join(lines)

    # ---- per problem ---------------------------------------------------------------------------------------------
    def to_problem(self, index: int, row: dict) -> Problem:
        raise NotImplementedError

    def prompt(self, problem: Problem) -> list[dict]:
        """Chat messages; the sampler applies the model's chat template."""
        raise NotImplementedError

    def extract(self, problem: Problem, completion: str) -> str | None:
        """The answer the completion commits to (recorded in the sample cache), or None."""
        raise NotImplementedError

    def score(self, problem: Problem, completion: str) -> float:
        """1.0 for a correct completion, 0.0 otherwise. May raise; the runner turns an exception into 0 and counts it."""
        raise NotImplementedError

    def score_many(self, pairs: list[tuple[Problem, str]]) -> list[tuple[str | None, float, str | None]]:
        """(extracted, score, error) per (problem, completion). A failure scores 0 with its error; it never raises."""
        out = []
        for problem, completion in pairs:
            try:
                extracted = self.extract(problem, completion)
                out.append((extracted, float(self.score(problem, completion)), None))
            except Exception as err:  # one bad sample must never end a long run
                out.append((None, 0.0, f"{type(err).__name__}: {err}"[:500]))
        return out


def read_table(path: Path) -> list[dict]:
    """Rows of a .jsonl / .json / .csv / .parquet file. Bad JSON names the line."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows = []
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise RowError(f"{path} line {lineno}: not valid JSON ({err})") from None
        return rows
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, list) else data.get("data", data.get("rows"))
    if suffix == ".csv":
        import csv

        with open(path, encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))
    if suffix == ".parquet":
        import datasets

        return [dict(r) for r in datasets.load_dataset("parquet", data_files=str(path), split="train")]
    raise RowError(f"{path}: unsupported file type {suffix!r} (use .jsonl, .json, .csv or .parquet)")


def first_field(row: dict, *names: str):
    """The first of `names` present in the row: local files and hub datasets spell some fields differently."""
    for name in names:
        if name in row and row[name] is not None:
            return row[name]
    raise KeyError(" or ".join(names))
