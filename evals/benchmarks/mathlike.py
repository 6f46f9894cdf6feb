"""Shared prompt and scoring for the answer-in-a-box benchmarks (MATH-500, GSM8K under `boxed`, AIME'24).

The prompt text is OpenCompass's math_500_gen (and aime2024_gen_17d799) prompt under both protocols; `paper` sends it
as the reference's message list (`opencompass.reference_messages`: the user turn ends with one extra "\\n").

- `boxed`: `rewards.answers.extract_answer` is the one extractor (the GRPO reward uses it too, stopping at the box or
  `####` line), with "the answer is X" and the last number as fallbacks; equivalence by math-verify in the
  hard-deadline process pool of `rewards.pool`.
- `paper`: the reference's MATHVerifyEvaluator (`opencompass.math_verify_verdict`): math-verify over the whole
  response against the gold the reference reads (`reference_gold`: MATH-500's `solution`, AIME's `answer`), on the
  verifier pool's workers with a 30 s deadline (`rewards.deadline_runner`), so one pathological response scores 0
  ("timeout", counted and logged) and never stalls the run.
"""

from __future__ import annotations

from .base import Benchmark, Problem

PAPER_VERDICT = "profit_rl.evals.benchmarks.opencompass:math_verify_verdict"
# {problem} for MATH-500, {question} for AIME'24; the rest is the two configs' common text
PAPER_PROMPT = "{%s}\nPlease reason step by step, and put your final answer within \\boxed{}."


class MathBenchmark(Benchmark):
    """The answer-in-a-box benchmarks' shared prompt and scoring (see the module docstring); a subclass gives to_problem
    and the columns its `paper` config reads."""

    fallback = "last_number"  # `boxed`: where extract_answer looks when there is no box
    input_column = "problem"  # the config's reader input column (the field its prompt names)
    output_column = "solution"  # the config's reader output column: the gold MATHVerifyEvaluator parses

    @property
    def scorer(self) -> str:
        """Names the scoring rule: MATHVerifyEvaluator against reference_gold under `paper`, extract_answer then
        math-verify under `boxed`."""
        if self.protocol == "paper":
            return "opencompass.MATHVerifyEvaluator(reference_gold)-v1"
        return f"rewards.answers.extract_answer(fallback={self.fallback})+rewards.pool(math-verify)"

    def prompt(self, problem: Problem) -> list[dict]:
        """`paper`: the math_500_gen prompt filled from the row's fields, as the reference's message list; `boxed`:
        `math_user_message`, the user turn SFT and GRPO train on."""
        if self.protocol == "paper":
            from .opencompass import fill, reference_messages

            fields = problem.meta.get("fields") or [(self.input_column, problem.question)]  # a Problem built by hand
            text = fill(PAPER_PROMPT % self.input_column, fields, self.output_column)
            return reference_messages([(text, None)])
        from profit_rl.rewards.answers import math_user_message

        return [{"role": "user", "content": math_user_message(problem.question)}]

    def extract(self, problem: Problem, completion: str) -> str | None:
        """`paper`: what math-verify parses from the response (by scoring it); `boxed`: `extract_answer` with this
        benchmark's fallback."""
        if self.protocol == "paper":
            return self.score_many([(problem, completion)])[0][0]
        from profit_rl.rewards.answers import extract_answer

        return extract_answer(completion, fallback=self.fallback)

    def score(self, problem: Problem, completion: str) -> float:
        """One completion's score through `score_many`; an error it records (a timeout, a gold that does not parse) is
        raised as a RuntimeError."""
        extracted, score, error = self.score_many([(problem, completion)])[0]
        if error:
            raise RuntimeError(error)
        return score

    def score_many(self, pairs: list[tuple[Problem, str]]) -> list[tuple[str | None, float, str | None]]:
        """`paper`: `score_paper`; `boxed`: `extract_answer` on each completion, then math-verify against the gold in
        the shared process pool. A failure scores 0 with its reason; it never raises."""
        if self.protocol == "paper":
            return self.score_paper(pairs)
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

    def score_paper(self, pairs: list[tuple[Problem, str]]) -> list[tuple[str | None, float, str | None]]:
        """MATHVerifyEvaluator on each (problem, response): (what math-verify parsed, score, error)."""
        from profit_rl.rewards.deadline_runner import get_runner

        # a Problem built by hand (no reference_gold) is scored against its gold
        verdicts = get_runner(PAPER_VERDICT).run([(str(p.meta.get("reference_gold", p.gold)), c) for p, c in pairs])
        out = []
        for (problem, _), (outcome, value) in zip(pairs, verdicts):
            if outcome != "ok":  # a timeout or a crash: 0, with the reason recorded on the sample
                out.append((None, 0.0, f"math-verify {outcome}: {value}"[:500]))
                continue
            status, score, parsed = value
            if status == "gold_unparseable":  # the reference skips the row and still counts it: 0 on every sample
                out.append((None, 0.0, f"the reference gold of problem {problem.id} does not parse"))
            else:
                out.append((parsed if parsed != "[]" else None, score, None))
        return out

    def reference_fields(self, row) -> list[tuple[str, object]]:
        """The row as OpenCompass's dataset gives it to the prompt template: every column, in file order."""
        return list(row.items())
