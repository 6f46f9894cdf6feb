"""Run any importable function over many items on the verifier pool's workers, each item under a hard deadline.

    runner = DeadlineRunner("profit_rl.evals.benchmarks.opencompass:math_verify_verdict", timeout_s=30)
    runner.run([(gold, response), ...])   # -> [("ok", value) | ("timeout", detail) | ("error", detail), ...]

Why: the `paper` protocol scores MATH-500 and AIME'24 with math-verify over the whole response, as the reference's
MATHVerifyEvaluator does, math-verify's own 5-second timeouts included. Those are `signal.alarm`s, which a long C call
inside sympy never sees, so one pathological response could stall a long evaluation. The runner hands the calls to a
`VerifierPool` of its own (`VerifierPool.call`: the reward's workers, fork server and deadline machinery, with the
paper protocol's 30-second deadline): a worker still busy at the deadline is SIGKILLed and replaced, that item is a
"timeout" (0 for its caller, counted in `counts`) and the run goes on. The function is imported by name in the workers;
its arguments and results are pickled.
"""

from __future__ import annotations

import importlib
import os

from .pool import DEFAULT_MEMORY_MB, VerifierPool
from .verify import Outcome

DEFAULT_TIMEOUT_S = 30.0  # per item: math-verify's own parse and verify limits are 5 s each
MEMORY_MB = DEFAULT_MEMORY_MB  # address space a worker may add for one item before its allocation fails ("error")


def default_runner_workers() -> int:
    """Half the cores, 1 to 4: scoring shares the machine with the sampler."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))


class DeadlineRunner:
    """One function's calls on a pool of its own; see the module docstring. One `run` at a time."""

    def __init__(self, function: str, timeout_s: float = DEFAULT_TIMEOUT_S, num_workers: int | None = None,
                 memory_mb: int = MEMORY_MB):
        module, sep, name = function.partition(":")
        if not sep or not hasattr(importlib.import_module(module), name):  # a wrong name fails here, not per item
            raise ValueError(f"{function!r}: expected 'module:function' naming an importable function")
        self.function, self.timeout_s, self.memory_mb = function, timeout_s, memory_mb
        self.num_workers = num_workers or default_runner_workers()
        self.counts = {"ok": 0, "timeout": 0, "error": 0}
        self._pool: VerifierPool | None = None

    @property
    def pool(self) -> VerifierPool:
        """The workers (started on first use; `close` stops them and the next `run` starts new ones)."""
        if self._pool is None:
            self._pool = VerifierPool(num_workers=self.num_workers, timeout=self.timeout_s, memory_mb=self.memory_mb)
        return self._pool

    def run(self, items: list[tuple]) -> list[tuple[str, object]]:
        """(outcome, value) per item, in order: ("ok", the function's result), ("timeout", detail) or ("error",
        detail). Never raises for an item."""
        results = []
        for outcome, value in self.pool.call(self.function, items)[0]:
            if outcome == Outcome.TIMEOUT:
                value = f"no verdict within {self.timeout_s:.0f} s; worker killed"
            results.append((outcome.value, value))
            self.counts[outcome.value] += 1
        return results

    def close(self) -> None:
        """Kills every worker process; the next `run` starts new ones."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None


_RUNNERS: dict[str, DeadlineRunner] = {}


def get_runner(function: str) -> DeadlineRunner:
    """The process-wide runner of `function` (workers start on first use and stop at exit)."""
    if function not in _RUNNERS:
        _RUNNERS[function] = DeadlineRunner(function)
    return _RUNNERS[function]
