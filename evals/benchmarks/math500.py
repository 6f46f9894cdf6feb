"""MATH-500 (HuggingFaceH4/MATH-500): the PRM800K test split of MATH; scored with math-verify."""

from __future__ import annotations

from .base import Budget, Problem, Row
from .mathlike import MathBenchmark


class MATH500(MathBenchmark):
    """MATH-500: the PRM800K test split of MATH, Avg@8."""

    name = "math500"
    title = "MATH-500"
    hub_id = "HuggingFaceH4/MATH-500"
    hub_split = "test"
    local_path = "math500/test.jsonl"
    budgets = {"paper": Budget(8, 8192), "boxed": Budget(8, 4096)}

    def to_problem(self, index: int, row: Row) -> Problem:
        """MATH-500's gold: the `answer` column; `paper` scores against the full `solution` instead (reference_gold), as
        math_500_gen does."""
        return Problem(
            id=row.scalar("unique_id", "id"),
            question=row.text("problem"),
            gold=row.scalar("answer"),
            meta={"subject": row.get("subject"), "level": row.get("level"),
                  # `paper`: the gold MATHVerifyEvaluator parses (math_500_gen's output column) and the prompt's fields
                  "reference_gold": row.text("solution"), "fields": self.reference_fields(row)},
        )
