"""GSM8K (openai/gsm8k, main/test): grade-school word problems; the gold is the number after the last `####`."""

from __future__ import annotations

from .base import Problem, Row
from .mathlike import MathBenchmark


class GSM8K(MathBenchmark):
    name = "gsm8k"
    title = "GSM8K"
    hub_id = "openai/gsm8k"
    hub_config = "main"
    hub_split = "test"
    local_path = "gsm8k/test.jsonl"
    max_new_tokens = 2048

    def to_problem(self, index: int, row: Row) -> Problem:
        solution = row.text("answer")
        if "####" not in solution:
            raise row.wrong("answer", "a solution ending in '#### <number>'", solution[-60:])
        gold = solution.rsplit("####", 1)[1].strip().replace(",", "")
        # GSM8K has no ids; the row index in the test split is stable (the hub and the upstream file share the order)
        return Problem(id=row.scalar("id", required=False) or str(index), question=row.text("question"), gold=gold)
