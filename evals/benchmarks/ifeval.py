"""IFEval (google/IFEval) through the Benchmark interface; the checkers and scoring live in `evals.ifeval`.

A sample's score is prompt-level strict accuracy (1 when every instruction of the prompt is followed by the response
as given), so Avg@k is IFEval's `prompt_level_strict_acc` averaged over k samples and Pass@k asks whether any of k
samples follows every instruction. The recorded "extracted" field keeps the instruction-level detail
("strict 2/3 loose 3/3"). For the four reference metrics on one response per prompt, use `python -m evals.ifeval`.
"""

from __future__ import annotations

from pathlib import Path

from .base import Benchmark, MissingDataError, Problem


class IFEval(Benchmark):
    name = "ifeval"
    title = "IFEval"
    hub_id = "google/IFEval"
    hub_split = "train"
    local_path = "ifeval/input_data.jsonl"
    max_new_tokens = 2048
    scorer = "evals.ifeval.prompt_level_strict-v1"

    def load(self, source=None) -> list[Problem]:
        from evals.ifeval.data import load_prompts
        from evals.io import DataError

        if source is None:
            where = self.hub_id
        else:
            path = Path(source)
            where = path / self.local_path if path.is_dir() else path
            if not Path(where).is_file():
                raise MissingDataError(self.missing_message(Path(where)))
        try:
            prompts = load_prompts(where)
        except DataError:
            raise
        except Exception as err:  # hub unreachable / offline
            if source is None:
                raise MissingDataError(self.missing_message(None, reason=f"{type(err).__name__}: {err}")) from err
            raise
        return [Problem(id=str(p.key), question=p.prompt, gold=None, meta={"prompt": p}) for p in prompts]

    def prompt(self, problem: Problem) -> list[dict]:
        return [{"role": "user", "content": problem.question}]  # IFEval prompts are sent as they are

    def score_many(self, pairs):
        from evals.ifeval.scoring import score_response

        out = []
        for problem, completion in pairs:
            try:
                result = score_response(problem.meta["prompt"], completion)
            except Exception as err:  # one bad sample never ends a run
                out.append((None, 0.0, f"{type(err).__name__}: {err}"[:500]))
                continue
            n = len(result.strict)
            detail = f"strict {sum(result.strict)}/{n} loose {sum(result.loose)}/{n}"
            error = "; ".join(result.errors)[:500] if result.errors else None
            out.append((detail, 1.0 if result.strict_all else 0.0, error))
        return out

    def extract(self, problem: Problem, completion: str) -> str | None:
        return self.score_many([(problem, completion)])[0][0]

    def score(self, problem: Problem, completion: str) -> float:
        return self.score_many([(problem, completion)])[0][1]
