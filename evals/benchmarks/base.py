"""The Benchmark interface: load problems (hub id or local file), build the chat prompt, score one completion.

A benchmark never samples and never aggregates: `evals.sampling` makes completions, `evals.metrics` aggregates.
Loaders accept three sources: None (the hub id, the default users get), a directory laid out like
a local data folder, one folder per benchmark (`--data-dir`), or a path to a .jsonl/.json/.csv/.parquet file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from profit_rl.core.io import DataError, InputError, Row, Rows, read_file
from ..protocols import DEFAULT_PROTOCOL, get_protocol


class MissingDataError(InputError, FileNotFoundError):
    """The benchmark's data is neither at the local path nor reachable on the hub; the message says how to get it."""


@dataclass
class Problem:
    """One benchmark question. `id` is stable across runs (it keys the sample cache and paired comparisons)."""

    id: str
    question: str
    gold: Any
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Budget:
    """How many samples per problem, and how many new tokens per sample, a benchmark gets under one protocol."""

    k: int
    max_new_tokens: int


class Benchmark:
    """Subclasses set the class attributes and implement `to_problem`, `prompt`, `extract` and `score`.

    An instance belongs to one protocol (`self.protocol`, see `evals.protocols`): the protocol decides the prompt, the
    answer rule, k and the budget, so every method reads it from there.
    """

    name: str = ""  # the --benchmarks key, e.g. "math500"
    title: str = ""  # how tables show it, e.g. "MATH-500"
    hub_id: str = ""
    hub_config: str | None = None
    hub_split: str = "test"
    local_path: str = ""  # relative to --data-dir, e.g. "math500/test.jsonl"
    gated: bool = False
    # protocol -> Budget; a protocol missing here is one this benchmark does not support
    budgets: dict[str, Budget] = {"paper": Budget(8, 8192), "boxed": Budget(8, 4096)}
    metric: str = "accuracy"  # what one sample's score is, in OpenCompass's words
    # bump when prompt() changes under a protocol: cached samples made with the old prompt are then refused
    prompt_versions: dict[str, str] = {"paper": "opencompass-messages-1", "boxed": "1"}
    scorer: str = "1"  # names the scoring rule; cached scores made under another rule are refused

    def __init__(self, protocol: str = DEFAULT_PROTOCOL):
        get_protocol(protocol)  # an unknown name fails here, listing the known ones
        if protocol not in self.budgets:
            raise ValueError(f"{self.title} ({self.name}) has no {protocol!r} protocol; it supports "
                             f"{', '.join(self.budgets)}")
        self.protocol = protocol

    @property
    def prompt_version(self) -> str:
        """The version of prompt() under this protocol; it keys the sample cache, so samples made with an older prompt
        are refused."""
        return self.prompt_versions.get(self.protocol, "1")

    @property
    def default_k(self) -> int:
        """Samples per problem under this protocol, unless --k says otherwise."""
        return self.budgets[self.protocol].k

    @property
    def max_new_tokens(self) -> int:
        """New tokens per sample under this protocol, unless --max-new-tokens says otherwise."""
        return self.budgets[self.protocol].max_new_tokens

    def describe(self) -> str:
        """One line for `--print-prompts`: k, budget and how an answer is read under this protocol."""
        return f"k={self.default_k}, max_new_tokens={self.max_new_tokens}, scorer: {self.scorer}"

    # ---- loading -------------------------------------------------------------------------------------------------
    def load(self, source: str | os.PathLike | None = None) -> list[Problem]:
        """Every problem, validated: a row with a missing field or a value of the wrong type is a `DataError` naming
        the file, line and field; so is a problem id that appears twice."""
        problems, first_seen = [], {}
        for index, row in enumerate(self.read_rows(source)):
            try:
                problem = self.to_problem(index, row)
            except DataError:
                raise
            except (KeyError, TypeError, ValueError) as err:  # a subclass reading the row without its getters
                problem = f"cannot be read as a {self.title} problem ({type(err).__name__}: {err})"
                raise row.error(None, problem) from None
            if problem.id in first_seen:
                raise row.error(None, f"problem id {problem.id!r} appears twice (first at {first_seen[problem.id]}); "
                                "ids key the sample cache and must be unique")
            first_seen[problem.id] = f"{row.unit} {row.number}"
            problems.append(problem)
        return problems

    def read_rows(self, source) -> Rows:
        """The records of the local file (or `--data-dir` folder) or, for None, of the hub dataset."""
        if source is None:
            return self.read_hub()
        path = Path(source)
        if path.is_dir():
            path = path / self.local_path
        if not path.is_file():
            raise MissingDataError(self.missing_message(path))
        return read_file(path)

    def read_hub(self) -> Rows:
        """The records of the hub dataset (`hub_id`, `hub_config`, `hub_split`); any failure to load it (offline, gated,
        no network) is a MissingDataError saying how to get the data."""
        where = f"hub dataset {self.hub_id}" + (f" ({self.hub_config})" if self.hub_config else "")
        try:
            import datasets

            dataset = datasets.load_dataset(self.hub_id, self.hub_config, split=self.hub_split)
        except Exception as err:  # offline, gated, no network: all end the same way for the user
            raise MissingDataError(self.missing_message(None, reason=f"{type(err).__name__}: {err}")) from err
        return Rows(where, dataset)

    def missing_message(self, looked_at: Path | None, reason: str = "") -> str:
        """The error text for data not found at `looked_at` (or, for None, not loadable from the hub, because of
        `reason`): where it looked and how to get the data, including a one-line export command."""
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
    def to_problem(self, index: int, row: Row) -> Problem:
        """One record -> a Problem; `row.text(...)` / `row.scalar(...)` raise a DataError naming the row and field."""
        raise NotImplementedError

    def prompt(self, problem: Problem) -> list[dict]:
        """Chat messages under `self.protocol` (few-shot examples are earlier turns); the sampler applies the model's
        chat template."""
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

    def own_metrics(self, problems: list[Problem], samples: dict[str, list[dict]], k: int) -> dict[str, float]:
        """The benchmark's own metrics beside Avg@k and Pass@k, from each problem's first k cached sample rows
        (`samples[problem.id]`); {} for most benchmarks. IFEval reports its four reference metrics here."""
        return {}
