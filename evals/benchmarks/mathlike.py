"""Shared prompt and scoring for the answer-in-a-box benchmarks (MATH-500, GSM8K under `boxed`, AIME'24).

Extraction and equivalence are NOT implemented here: `rewards.answers.extract_answer` is the one extractor (the GRPO
reward uses it too, stopping at the box or `####` line with `fallback="none"`, so every answer training rewards,
evaluation counts), and math-verify runs in the hard-deadline process pool of `rewards.pool`, so one pathological
answer cannot hang a long evaluation.

The prompt is the same under both protocols: it is OpenCompass's math_500_gen prompt word for word. The protocols
differ in what counts as an answer when there is neither a box nor a `####` line (where the reward finds none):
- `boxed`: then "the answer is X", then the last number (the usual GSM8K-style fallback);
- `paper`: then "the answer is X", never the bare last number. OpenCompass's MATHEvaluator reads the completion with
  math-verify, boxed answers first, and takes nothing without a LaTeX anchor (`try_extract_without_anchor=False`).
"""

from __future__ import annotations

from .base import Benchmark, Problem

FALLBACKS = {"boxed": "last_number", "paper": "answer_is"}


class MathBenchmark(Benchmark):
    @property
    def fallback(self) -> str:
        return FALLBACKS[self.protocol]

    @property
    def scorer(self) -> str:
        return f"rewards.answers.extract_answer(fallback={self.fallback})+rewards.pool(math-verify)"

    def prompt(self, problem: Problem) -> list[dict]:
        from profit_rl.rewards.answers import math_user_message

        return [{"role": "user", "content": math_user_message(problem.question)}]

    def extract(self, problem: Problem, completion: str) -> str | None:
        from profit_rl.rewards.answers import extract_answer

        return extract_answer(completion, fallback=self.fallback)

    def score(self, problem: Problem, completion: str) -> float:
        extracted, score, error = self.score_many([(problem, completion)])[0]
        if error:
            raise RuntimeError(error)
        return score

    def score_many(self, pairs: list[tuple[Problem, str]]) -> list[tuple[str | None, float, str | None]]:
        from profit_rl.rewards.answers import extract_answer, gold_answer

        extracted, errors = [], []
        for _, completion in pairs:
            try:
                extracted.append(extract_answer(completion, fallback=self.fallback))
                errors.append(None)
            except Exception as err:  # a sample that breaks the extractor scores 0, with the reason recorded
                extracted.append(None)
                errors.append(f"extract: {type(err).__name__}: {err}"[:500])
        todo = [i for i, e in enumerate(extracted) if e is not None]
        scores = [0.0] * len(pairs)
        if todo:
            from profit_rl.rewards.pool import get_default_pool

            # the process-wide pool (workers start on first use); outcomes say which item timed out or errored
            verdicts, outcomes, _ = get_default_pool().verify_detailed(
                [(gold_answer(pairs[i][0].gold), extracted[i]) for i in todo])
            for i, score, (outcome, detail) in zip(todo, verdicts, outcomes):
                if score is None:  # the gold itself does not parse: a data problem, counted on every sample
                    scores[i], errors[i] = 0.0, f"gold answer {pairs[i][0].gold!r} could not be parsed"
                else:
                    scores[i] = float(score)
                    if outcome in ("timeout", "error"):
                        errors[i] = f"verify {outcome}: {detail}"[:500]
        return list(zip(extracted, scores, errors))
