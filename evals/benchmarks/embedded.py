"""The embedded default's held-out synthetic test set (built by `python -m profit_rl.embedded.build`).

Rows are `{"id", "problem", "answer"}`, the layout of the GRPO set; prompts and scoring are the MATH-500 ones, so the
same extractor and math-verify rule count a correct answer. There is no hub copy: the data is made on this machine.
"""

from __future__ import annotations

from pathlib import Path

from .base import Problem, first_field
from .mathlike import MathBenchmark


class EmbeddedTest(MathBenchmark):
    name = "embedded"
    title = "Embedded test"
    local_path = "test.jsonl"  # --data-dir is the embedded build folder (outputs/embedded/base), or the file itself
    default_k = 4
    max_new_tokens = 160  # references are 50-110 tokens of the embedded tokenizer

    def read_hub(self):
        raise self._missing(None)

    def missing_message(self, looked_at: Path | None, reason: str = "") -> str:
        where = f"  looked for: {looked_at}\n" if looked_at is not None else "  (it has no hub copy)\n"
        return (
            f"{self.title} ({self.name}): no data found.\n{where}"
            "  to get it: python -m profit_rl.embedded.build --out-dir outputs/embedded/base, "
            "then pass --data-dir outputs/embedded/base"
        )

    def _missing(self, looked_at):
        from .base import MissingDataError

        return MissingDataError(self.missing_message(looked_at))

    def to_problem(self, index: int, row: dict) -> Problem:
        return Problem(id=str(first_field(row, "id")), question=str(first_field(row, "problem")),
                       gold=str(first_field(row, "answer")))
