"""AIME 2024 (HuggingFaceH4/aime_2024): 30 problems, integer answers 0-999 (local golds are padded: "025")."""

from __future__ import annotations

from .base import Budget, Problem, Row
from .mathlike import MathBenchmark


class AIME24(MathBenchmark):
    name = "aime24"
    title = "AIME'24"
    hub_id = "HuggingFaceH4/aime_2024"
    hub_split = "train"  # the hub dataset ships its 30 problems as a single "train" split
    local_path = "aime24/test.jsonl"
    # The paper reports AIME'24 as Avg@32 (30 problems make Avg@8 too noisy). Its eval file leaves AIME commented out,
    # so under `paper` the prompt, answer rule and budget are MATH-500's: our choice (docs/protocol.md).
    budgets = {"paper": Budget(32, 8192), "boxed": Budget(32, 8192)}

    def to_problem(self, index: int, row: Row) -> Problem:
        answer = row.scalar("answer").strip()
        if not answer.lstrip("-").isdigit():
            raise row.wrong("answer", "an integer", answer)
        return Problem(
            id=row.scalar("id", required=False) or str(index),
            question=row.text("problem", "question"),
            gold=str(int(answer)),  # "025" -> "25": AIME answers compare as integers
            meta={"url": row.get("url")},
        )
