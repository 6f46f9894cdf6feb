"""AIME 2024 (HuggingFaceH4/aime_2024): 30 problems, integer answers 0-999 (local golds are padded: "025")."""

from __future__ import annotations

from .base import Budget, Problem, Row
from .mathlike import MathBenchmark


class AIME24(MathBenchmark):
    """AIME 2024: 30 problems with integer answers, Avg@32 under both protocols."""

    name = "aime24"
    title = "AIME'24"
    hub_id = "HuggingFaceH4/aime_2024"
    hub_split = "train"  # the hub dataset ships its 30 problems as a single "train" split
    local_path = "aime24/test.jsonl"
    # The paper reports AIME'24 as Avg@32 (30 problems make Avg@8 too noisy). Its eval file leaves its AIME config
    # (aime2024_gen_17d799) commented out; `paper` runs that config: MATH-500's prompt text on the `question` column,
    # MATHVerifyEvaluator against the `answer` column (docs/protocol.md).
    input_column = "question"
    output_column = "answer"
    budgets = {"paper": Budget(32, 8192), "boxed": Budget(32, 8192)}

    def to_problem(self, index: int, row: Row) -> Problem:
        """AIME's gold: the answer as an integer string ("025" -> "25"); `paper` scores against the raw answer
        (reference_gold) and fills its prompt from the row with `question` and `answer` set as Aime2024Dataset does."""
        raw = row.scalar("answer")
        answer = raw.strip()
        if not answer.lstrip("-").isdigit():
            raise row.wrong("answer", "an integer", answer)
        question = row.text("problem", "question")
        # Aime2024Dataset (opencompass/datasets/aime2024.py) sets `question` and `answer` on the row it read: a column
        # already there keeps its place, a new one goes last
        fields = dict(row)
        fields["question"], fields["answer"] = row.text("question", "problem"), raw
        return Problem(
            id=row.scalar("id", required=False) or str(index),
            question=question,
            gold=str(int(answer)),  # "025" -> "25": AIME answers compare as integers
            meta={"url": row.get("url"), "reference_gold": raw, "fields": list(fields.items())},
        )
