"""The embedded task's probes beyond the SFT data (docs/probes.md): held-out sets `profit-rl eval` scores like the
`embedded` test set, from the folder `python -m profit_rl.embedded.probes build --out-dir DIR` writes
(`--data-dir DIR`).

- `embedded-long`: chains of more events than any SFT row (6 against 2-5), so a longer budget;
- `embedded-surface`: names, items, start sentences and questions no SFT row uses;
- `embedded-retention`: the base model's own pretraining layout ("Problem: ...\\nSolution:"), sent as raw text: each
  row's `prompt` is that text, and a run with the chat template is refused (`raw_prompt`), since it would score
  another layout under this name.

Prompt and scoring are otherwise the math benchmarks' own (the last box against the gold answer).
"""

from __future__ import annotations

from .base import Budget, MissingDataError, Problem, Row
from .embedded import EmbeddedMath


class EmbeddedProbe(EmbeddedMath):
    def read_hub(self):
        raise MissingDataError(
            f"{self.title} ({self.name}) exists only locally: write the probes with `python -m "
            "profit_rl.embedded.probes build --base-dir outputs/embedded/base --out-dir DIR`, then pass --data-dir DIR"
        )


class EmbeddedLong(EmbeddedProbe):
    name = "embedded-long"
    title = "Embedded probe: longer chains"
    local_path = "long.jsonl"
    # references of 6 events are up to ~160 tokens (5 events: ~136, within the test set's 160)
    budgets = {"boxed": Budget(4, 224)}


class EmbeddedSurface(EmbeddedProbe):
    name = "embedded-surface"
    title = "Embedded probe: unseen surface"
    local_path = "surface.jsonl"


class EmbeddedRetention(EmbeddedProbe):
    name = "embedded-retention"
    title = "Embedded probe: retention (pretraining layout)"
    local_path = "retention.jsonl"
    raw_prompt = True  # evals.runner refuses a run that would wrap the prompt in the chat template

    def to_problem(self, index: int, row: Row) -> Problem:
        problem = super().to_problem(index, row)
        problem.meta["prompt"] = row.text("prompt")
        return problem

    def prompt(self, problem: Problem) -> list[dict]:
        return [{"role": "user", "content": problem.meta["prompt"]}]
