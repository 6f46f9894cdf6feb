"""The embedded task's probes beyond the SFT data (docs/probes.md): held-out sets `profit-rl eval` scores like the
`embedded` test set, from the folder `python -m profit_rl.embedded.probe_sets build --out-dir DIR` writes
(`--data-dir DIR`).

- `embedded-long`: chains of more events than any SFT row (6 against 2-5), so a longer budget;
- `embedded-surface`: names, items, start sentences and questions no SFT row uses;
- `embedded-retention`: the base model's own pretraining layout ("Problem: ...\\nSolution:"), sent as raw text: each
  row's `prompt` is that text, and a run with the chat template is refused (`raw_prompt`), since it would score
  another layout under this name.

Prompt and scoring are otherwise the math benchmarks' own (the last box against the gold answer).
"""

from __future__ import annotations

import re

from .base import Budget, MissingDataError, Problem, Row
from .embedded import EmbeddedMath


class EmbeddedProbe(EmbeddedMath):
    """Base of the embedded probes: local only, like the test set."""

    def read_hub(self):
        """Always a MissingDataError: the probes have no hub copy; the message says how to write them."""
        raise MissingDataError(
            f"{self.title} ({self.name}) exists only locally: write the probes with `python -m "
            "profit_rl.embedded.probe_sets build --base-dir outputs/embedded/base --out-dir DIR`, then pass --data-dir DIR"
        )


EQUATION = re.compile(r"\d+ [+-] \d+ = \d+")


class EmbeddedLong(EmbeddedProbe):
    """Probe: chains of 6 events (SFT rows have 2-5), with a 224-token budget and a `full_chain` metric."""

    name = "embedded-long"
    title = "Embedded probe: longer chains"
    local_path = "long.jsonl"
    # references of 6 events are up to ~160 tokens (5 events: ~136, within the test set's 160)
    budgets = {"boxed": Budget(4, 224)}

    def to_problem(self, index: int, row: Row) -> Problem:
        """The embedded row plus its `n_events`, which `full_chain` counts equations against."""
        problem = super().to_problem(index, row)
        problem.meta["n_events"] = row.scalar("n_events")
        return problem

    def own_metrics(self, problems: list[Problem], samples: dict[str, list[dict]], k: int) -> dict[str, float]:
        """`full_chain`: the share of samples that write one equation per event, right or wrong. A model that learnt
        "at most five steps" from its SFT rows scores near 0 here and on accuracy alike; this tells a model that
        takes every step and errs from one that stops short."""
        full = sum(len(EQUATION.findall(samples[p.id][i].get("completion") or "")) == int(p.meta["n_events"])
                   for p in problems for i in range(k))
        return {"full_chain": full / max(1, k * len(problems))}


class EmbeddedSurface(EmbeddedProbe):
    """Probe: names, items, start sentences and questions no SFT row uses; the test set's prompt and scoring."""

    name = "embedded-surface"
    title = "Embedded probe: unseen surface"
    local_path = "surface.jsonl"


class EmbeddedRetention(EmbeddedProbe):
    """Probe: the base model's pretraining layout, sent as raw text; a run with the chat template is refused
    (`raw_prompt`)."""

    name = "embedded-retention"
    title = "Embedded probe: retention (pretraining layout)"
    local_path = "retention.jsonl"
    raw_prompt = True  # evals.benchmark_runner refuses a run that would wrap the prompt in the chat template

    def to_problem(self, index: int, row: Row) -> Problem:
        """The embedded row plus its `prompt`: the text in the pretraining layout, to send as it is."""
        problem = super().to_problem(index, row)
        problem.meta["prompt"] = row.text("prompt")
        return problem

    def prompt(self, problem: Problem) -> list[dict]:
        """The row's own `prompt` text as the one user turn (without a chat template it is sent unchanged)."""
        return [{"role": "user", "content": problem.meta["prompt"]}]
