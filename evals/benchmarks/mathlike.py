"""Shared prompt and scoring for the answer-in-a-box benchmarks (MATH-500, GSM8K, AIME'24).

Extraction and equivalence are NOT implemented here: `rewards.answers.extract_answer` is the one extractor (the GRPO
reward uses it too, so what training rewards is exactly what evaluation counts), and math-verify runs in the
hard-deadline process pool of `rewards.pool`, so one pathological answer cannot hang a long evaluation.
"""

from __future__ import annotations

from .base import Benchmark, Problem

INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


class MathBenchmark(Benchmark):
    def prompt(self, problem: Problem) -> list[dict]:
        return [{"role": "user", "content": f"{problem.question}\n{INSTRUCTION}"}]

    def extract(self, problem: Problem, completion: str) -> str | None:
        from rewards.answers import extract_answer

        return extract_answer(completion)

    def score(self, problem: Problem, completion: str) -> float:
        extracted, score, error = self.score_many([(problem, completion)])[0]
        if error:
            raise RuntimeError(error)
        return score

    def score_many(self, pairs: list[tuple[Problem, str]]) -> list[tuple[str | None, float, str | None]]:
        from rewards.answers import extract_answer, gold_answer
        from rewards.pool import verify_many

        extracted, errors = [], []
        for _, completion in pairs:
            try:
                extracted.append(extract_answer(completion))
                errors.append(None)
            except Exception as err:  # a sample that breaks the extractor scores 0, with the reason recorded
                extracted.append(None)
                errors.append(f"extract: {type(err).__name__}: {err}"[:500])
        todo = [i for i, e in enumerate(extracted) if e is not None]
        verdicts = verify_many([(gold_answer(pairs[i][0].gold), extracted[i]) for i in todo]) if todo else []
        scores = [0.0] * len(pairs)
        for i, verdict in zip(todo, verdicts):
            ok, error = verdict
            scores[i] = 1.0 if ok else 0.0
            if error:
                errors[i] = f"verify: {error}"[:500]
        return list(zip(extracted, scores, errors))
