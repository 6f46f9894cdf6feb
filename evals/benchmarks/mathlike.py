"""Shared prompt and scoring for the answer-in-a-box benchmarks (MATH-500, GSM8K, AIME'24).

Extraction and equivalence are NOT implemented here: `rewards.answers.extract_answer` is the one extractor (the GRPO
reward uses it too, so what training rewards is exactly what evaluation counts), and math-verify runs in the
hard-deadline process pool of `rewards.pool`, so one pathological answer cannot hang a long evaluation.
"""

from __future__ import annotations

from .base import Benchmark, Problem



# Completions without a box or "####" line fall back to "the answer is X", then the last number: the usual protocol
# for GSM8K-style evals (rewards.answers documents the order; the GRPO reward stops at "answer_is").
FALLBACK = "last_number"

_pool = None


def verifier_pool():
    """One math-verify pool per process (workers start on first use, close at exit)."""
    global _pool
    if _pool is None or _pool._closed:
        from rewards.pool import VerifierPool

        class OutcomePool(VerifierPool):
            """The shared pool, remembering each item's outcome so a timeout or error is recorded on its sample."""

            def verify_with_outcomes(self, pairs):
                self.outcomes = {}
                scores = self.verify(pairs)
                return [(score, *self.outcomes.get(i, ("ok", ""))) for i, score in enumerate(scores)]

            def _record(self, index, outcome, score, detail, jobs, scores, stats):
                self.outcomes[index] = (outcome, detail)
                VerifierPool._record(index, outcome, score, detail, jobs, scores, stats)

        _pool = OutcomePool()
    return _pool


class MathBenchmark(Benchmark):
    scorer = f"rewards.answers.extract_answer(fallback={FALLBACK})+rewards.pool(math-verify)"

    def prompt(self, problem: Problem) -> list[dict]:
        from rewards.answers import math_user_message

        return [{"role": "user", "content": math_user_message(problem.question)}]

    def extract(self, problem: Problem, completion: str) -> str | None:
        from rewards.answers import extract_answer

        return extract_answer(completion, fallback=FALLBACK)

    def score(self, problem: Problem, completion: str) -> float:
        extracted, score, error = self.score_many([(problem, completion)])[0]
        if error:
            raise RuntimeError(error)
        return score

    def score_many(self, pairs: list[tuple[Problem, str]]) -> list[tuple[str | None, float, str | None]]:
        from rewards.answers import extract_answer, gold_answer

        extracted, errors = [], []
        for _, completion in pairs:
            try:
                extracted.append(extract_answer(completion, fallback=FALLBACK))
                errors.append(None)
            except Exception as err:  # a sample that breaks the extractor scores 0, with the reason recorded
                extracted.append(None)
                errors.append(f"extract: {type(err).__name__}: {err}"[:500])
        todo = [i for i, e in enumerate(extracted) if e is not None]
        scores = [0.0] * len(pairs)
        if todo:
            verdicts = verifier_pool().verify_with_outcomes([(gold_answer(pairs[i][0].gold), extracted[i]) for i in todo])
            for i, (score, outcome, detail) in zip(todo, verdicts):
                if score is None:  # the gold itself does not parse: a data problem, counted on every sample
                    scores[i], errors[i] = 0.0, f"gold answer {pairs[i][0].gold!r} could not be parsed"
                else:
                    scores[i] = float(score)
                    if outcome in ("timeout", "error"):
                        errors[i] = f"verify {outcome}: {detail}"[:500]
        return list(zip(extracted, scores, errors))
