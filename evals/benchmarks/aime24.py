"""AIME 2024 (HuggingFaceH4/aime_2024): 30 problems, integer answers 0-999 (local golds are padded: "025")."""

from __future__ import annotations

from .base import Problem, Row
from .mathlike import MathBenchmark


class AIME24(MathBenchmark):
    name = "aime24"
    title = "AIME'24"
    hub_id = "HuggingFaceH4/aime_2024"
    hub_split = "train"  # the hub dataset ships its 30 problems as a single "train" split
    local_path = "aime24/test.jsonl"
    default_k = 32  # the paper samples 32 on AIME: 30 problems make Avg@8 too noisy
    max_new_tokens = 8192

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
