"""AIME 2024 (HuggingFaceH4/aime_2024): 30 problems, integer answers 0-999 (local golds are padded: "025")."""

from __future__ import annotations

from .base import Problem, first_field
from .mathlike import MathBenchmark


class AIME24(MathBenchmark):
    name = "aime24"
    title = "AIME'24"
    hub_id = "HuggingFaceH4/aime_2024"
    hub_split = "train"  # the hub dataset ships its 30 problems as a single "train" split
    local_path = "aime24/test.jsonl"
    default_k = 32  # the paper samples 32 on AIME: 30 problems make Avg@8 too noisy
    max_new_tokens = 8192

    def to_problem(self, index: int, row: dict) -> Problem:
        answer = str(first_field(row, "answer")).strip()
        if not answer.lstrip("-").isdigit():
            raise ValueError(f"field 'answer' is not an integer: {answer!r}")
        return Problem(
            id=str(row.get("id", index)),
            question=str(first_field(row, "problem", "question")),
            gold=str(int(answer)),  # "025" -> "25": AIME answers compare as integers
            meta={"url": row.get("url")},
        )
