"""The embedded default's held-out synthetic test set (profit_rl.embedded): story problems with integer answers.

It has no hub copy: `profit-rl embedded build` writes it as `<out-dir>/test.jsonl` (`id`, `problem`,
`answer`), and `--data-dir <out-dir>` or the file path reads it. Prompt and scoring are the math benchmarks' own, which
is the layout the embedded SFT set was written in, so what SFT trains is what this measures.
"""

from __future__ import annotations

from .base import Budget, MissingDataError, Problem, Row
from .mathlike import MathBenchmark


class EmbeddedMath(MathBenchmark):
    """The embedded task's synthetic test set: local only, `boxed` only (k=4, 160 new tokens)."""

    name = "embedded"
    title = "Embedded (synthetic)"
    local_path = "test.jsonl"
    # references are 40-110 tokens; the synthetic task is not in the paper, so it has no `paper` protocol
    budgets = {"boxed": Budget(4, 160)}

    def read_hub(self):
        """Always a MissingDataError: the set has no hub copy, and the message says how to build it."""
        raise MissingDataError(
            f"{self.title} ({self.name}) exists only locally: build it with `profit-rl embedded build "
            "--out-dir outputs/embedded/base`, then pass --data-dir outputs/embedded/base"
        )

    def to_problem(self, index: int, row: Row) -> Problem:
        """A row's `id`, `problem` and `answer`, taken as they are."""
        return Problem(id=row.scalar("id"), question=row.text("problem"), gold=row.scalar("answer"))
