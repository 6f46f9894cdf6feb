"""IFEval (google/IFEval) through the Benchmark interface; the checkers and scoring live in `evals.ifeval`.

A sample's score is prompt-level strict accuracy (1 when every instruction of the prompt is followed by the response
as given), so Avg@k is IFEval's `prompt_level_strict_acc` averaged over k samples and Pass@k asks whether any of k
samples follows every instruction. This is the IFEval number OpenCompass's summarizers put in an average
(`Prompt-level-strict-accuracy`; with n = 8 its evaluator reports it as "Prompt-level-strict-accuracy (8 runs
average)", the mean over the 8 replicas, which is Avg@8); the reference's IFEval_gen_353ae7 sends the prompt text as
it is (`paper` as the reference's message list, whose user turn ends with one extra "\\n"; `boxed` the bare prompt). The recorded "extracted" field keeps the instruction-level detail
("strict 2/3 loose 3/3"), from which `own_metrics` gives the reference's four metrics, each averaged over the k
samples: with one response per prompt (`profit-rl eval --responses` on the reference's own file) they are exactly
those of `python -m profit_rl.evals.ifeval`.
"""

from __future__ import annotations

import re
from pathlib import Path

from .base import Benchmark, Budget, MissingDataError, Problem

# The instruction-level detail a sample records in its "extracted" field, and how own_metrics reads it back.
DETAIL = "strict {strict}/{n} loose {loose}/{n}"
DETAIL_RE = re.compile(r"strict (?P<strict>\d+)/(?P<n>\d+) loose (?P<loose>\d+)/(?P=n)")


class IFEval(Benchmark):
    """IFEval: a sample scores 1 when it follows every instruction of its prompt (prompt-level strict); `own_metrics`
    gives the reference's four metrics."""

    name = "ifeval"
    title = "IFEval"
    hub_id = "google/IFEval"
    hub_split = "train"
    local_path = "ifeval/input_data.jsonl"
    budgets = {"paper": Budget(8, 8192), "boxed": Budget(8, 2048)}
    metric = "Prompt-level-strict-accuracy"
    scorer = "evals.ifeval.prompt_level_strict-v1"

    def load(self, source=None) -> list[Problem]:
        """The IFEval prompts, read by `evals.ifeval.data.load_prompts` and kept whole in meta["prompt"] for the
        checkers; no gold. A missing file or an unreachable hub is a MissingDataError."""
        from profit_rl.evals.ifeval.data import load_prompts
        from profit_rl.core.io import DataError

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
        """The prompt text unchanged: under `paper` as the reference's message list (its user turn ends with one extra
        "\\n"), under `boxed` as the bare user turn."""
        if self.protocol == "paper":  # IFEval_gen_353ae7: '{prompt}' from IFEvalDataset's row (prompt, reference)
            from .opencompass import fill, reference_messages

            fields = [("prompt", problem.question), ("reference", None)]
            return reference_messages([(fill("{prompt}", fields, "reference"), None)])
        return [{"role": "user", "content": problem.question}]  # IFEval prompts are sent as they are

    def score_many(self, pairs):
        """Per pair: the instruction-level detail ("strict 2/3 loose 3/3"), the prompt-level strict score and the
        checkers' errors; a sample whose scoring raises scores 0 with its error."""
        from profit_rl.evals.ifeval.scoring import score_response

        out = []
        for problem, completion in pairs:
            try:
                result = score_response(problem.meta["prompt"], completion)
            except Exception as err:  # one bad sample never ends a run
                out.append((None, 0.0, f"{type(err).__name__}: {err}"[:500]))
                continue
            detail = DETAIL.format(strict=sum(result.strict), loose=sum(result.loose), n=len(result.strict))
            error = "; ".join(result.errors)[:500] if result.errors else None
            out.append((detail, 1.0 if result.strict_all else 0.0, error))
        return out

    def own_metrics(self, problems: list[Problem], samples: dict[str, list[dict]], k: int) -> dict[str, float]:
        """The reference's four metrics (fractions) over the first k samples of each problem, averaged over k. A
        sample whose scoring failed (no detail recorded) follows none of its instructions."""
        from profit_rl.evals.ifeval.scoring import METRIC_NAMES
        from profit_rl.evals.results import CacheMismatchError

        totals = dict.fromkeys(METRIC_NAMES, 0.0)
        for i in range(k):
            prompts_strict = prompts_loose = inst_strict = inst_loose = inst_total = 0
            for problem in problems:
                n = len(problem.meta["prompt"].instruction_id_list)
                match = DETAIL_RE.fullmatch(samples[problem.id][i].get("extracted") or "")
                if match and int(match["n"]) != n:
                    raise CacheMismatchError(f"IFEval problem {problem.id}: a cached sample records {match['n']} "
                                             f"instructions, the prompt has {n}; rerun with --overwrite")
                strict, loose = (int(match["strict"]), int(match["loose"])) if match else (0, 0)
                prompts_strict += strict == n
                prompts_loose += loose == n
                inst_strict, inst_loose, inst_total = inst_strict + strict, inst_loose + loose, inst_total + n
            totals["prompt_level_strict_acc"] += prompts_strict / len(problems)
            totals["inst_level_strict_acc"] += inst_strict / inst_total
            totals["prompt_level_loose_acc"] += prompts_loose / len(problems)
            totals["inst_level_loose_acc"] += inst_loose / inst_total
        return {name: value / k for name, value in totals.items()}

    def extract(self, problem: Problem, completion: str) -> str | None:
        """The instruction-level detail `score_many` records, e.g. "strict 2/3 loose 3/3"."""
        return self.score_many([(problem, completion)])[0][0]

    def score(self, problem: Problem, completion: str) -> float:
        """Prompt-level strict: 1.0 when the response follows every instruction of the prompt."""
        return self.score_many([(problem, completion)])[0][1]
