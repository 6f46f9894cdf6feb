"""What a pool call keeps: its counts (`PoolStats`, also a pool's lifetime totals) and the state of one batch.

A call's items are jobs (`rewards.worker`): the state holds which are not handed out yet, and each item's `Result` as
it comes back; an item that ends in a timeout or an error is logged with what it was.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import asdict, dataclass, field

from .verify import Outcome
from .worker import Job, Result

logger = logging.getLogger(f"{__package__}.pool")  # the pool's log: its bookkeeping lives here


@dataclass
class PoolStats:
    """Counts for one call (or, on `VerifierPool.totals`, the pool's lifetime)."""

    items: int = 0
    correct: int = 0
    no_answer: int = 0  # the completion had no final answer
    gold_unparseable: int = 0  # scored None
    too_long: int = 0  # extracted answer over MAX_ANSWER_CHARS, scored 0 without sympy
    timeouts: int = 0  # hit the deadline: worker killed and replaced, scored 0
    errors: int = 0  # raised or worker died, scored 0
    seconds: float = 0.0  # wall time of the call
    max_item_seconds: float = 0.0  # slowest item, from its start on a worker to its answer (or kill)

    def count(self, result: Result) -> None:
        """Count one result under its outcome: correct (OK scoring 1.0), no answer, unparseable gold, too long,
        timeout or error; a wrong answer adds to none of them."""
        outcome = result.outcome
        if outcome == Outcome.OK and result.score == 1.0:
            self.correct += 1
        elif outcome == Outcome.NO_ANSWER:
            self.no_answer += 1
        elif outcome == Outcome.GOLD_UNPARSEABLE:
            self.gold_unparseable += 1
        elif outcome == Outcome.TOO_LONG:
            self.too_long += 1
        elif outcome == Outcome.TIMEOUT:
            self.timeouts += 1
        elif outcome == Outcome.ERROR:
            self.errors += 1

    def add(self, other: "PoolStats") -> None:
        """Add another call's counts to these; the slowest item is the slower of the two."""
        for name in ("items", "correct", "no_answer", "gold_unparseable", "too_long", "timeouts", "errors"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.seconds += other.seconds
        self.max_item_seconds = max(self.max_item_seconds, other.max_item_seconds)

    def as_dict(self) -> dict:
        """The counts as a plain dict, for logs and JSON."""
        return asdict(self)


@dataclass
class PoolCall:
    """One batch being scored: the jobs, those not handed out yet, and the results so far."""

    jobs: list  # of Job or FunctionJob
    todo: deque[int] = field(init=False)  # not handed out, or handed back by a worker that was lost
    results: list[Result | None] = field(init=False)
    left: int = field(init=False)
    stats: PoolStats = field(init=False)

    def __post_init__(self):
        self.todo = deque(range(len(self.jobs)))
        self.results = [None] * len(self.jobs)
        self.left = len(self.jobs)
        self.stats = PoolStats(items=len(self.jobs))

    def give_back(self, indices) -> None:
        """Items a lost worker held but had not started: first in line again, in their order."""
        self.todo.extendleft(reversed(list(indices)))

    def finish(self, result: Result, seconds: float) -> None:
        """Record one item's result, count it, and log it when it timed out or errored; `seconds`: how long it ran."""
        self.results[result.index] = result
        self.left -= 1
        self.stats.count(result)
        self.stats.max_item_seconds = max(self.stats.max_item_seconds, seconds)
        if result.outcome in (Outcome.TIMEOUT, Outcome.ERROR):
            job = self.jobs[result.index]
            if isinstance(job, Job):
                logger.warning("reward item %d scored 0 (%s: %s); gold=%r, answer tail=%r",
                               result.index, result.outcome, result.detail, job.gold[:80], job.text[-120:])
            else:
                logger.warning("item %d of %s scored 0 (%s: %s)", result.index, job.function, result.outcome,
                               result.detail)
