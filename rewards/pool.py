"""Scoring that cannot hang: `score_answer` (rewards.verify) in worker processes, with a hard deadline per item.

Why processes: math-verify's own timeout is `signal.alarm`, which works only on the main thread of the main
interpreter and can still hang inside sympy (Math-Verify #65; `2^{2^{2^{2^{2^{2}}}}}` makes CPython compute a giant
integer in one C call that no signal interrupts). Here every item runs in a worker process, with math-verify's own
timeouts switched off, and the pool is the only guard:

- an item still running at its deadline gets its worker SIGKILLed and replaced; the item scores 0.0 and is counted in
  `stats.timeouts` (the GRPO reward logs it as `rewards/timeouts`);
- an item whose scoring raises (or whose worker dies, e.g. out of its memory limit) scores 0.0 and counts in
  `stats.errors`; the exception text is logged;
- items run in parallel on `num_workers` processes, handed out in chunks that shrink as the call drains (guided
  scheduling), so a worker goes from one item to the next without waiting for the caller and the workers finish
  together. An item's deadline runs from when its worker starts it (the worker answers each item as it is done), and
  items queued behind one that times out go back in line for the next free worker;
- no process outlives the caller, and none ever imports the caller's `__main__` (see `rewards.worker`): the rewards
  work the same from a guarded script, an unguarded one, stdin, a notebook or a trainer under accelerate.

The workers are forks of one fork server per process (`rewards.fork_server`, started on first use and shared by
every pool of the process), a fresh interpreter that loads math-verify once. POSIX only (it forks). `call` runs any
importable function in the same machinery: the `paper` protocol's scorer does (`rewards.deadline_runner`).

Thread safety: a pool may be called from several threads; a lock serialises the calls, so they run one at a time.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import wait as wait_for_any

from .answers import DEFAULT_FALLBACK, Fallback, tail
from .fork_server import WorkerProcess, fork_server
from .pool_stats import PoolCall, PoolStats
from .verify import MAX_ANSWER_CHARS, Outcome
from .worker import FunctionJob, Job, Result


DEFAULT_TIMEOUT_S = 5.0  # per item; math-verify's own defaults are 5 s to parse and 5 s to compare
DEFAULT_MEMORY_MB = 4_096  # extra address space a worker may take for one item before MemoryError
# A worker holding fewer items than this gets its next chunk: it then has the rest of its queue's time to wait for a
# caller that the machine schedules late.
REFILL_BELOW = 3


# ---------------------------------------------------------------------------------------------------------------------
# The pool


def default_num_workers() -> int:
    """CPU cores this process may use, shared among the ranks on this node (LOCAL_WORLD_SIZE), at least 1."""
    if "PROFIT_RL_REWARD_WORKERS" in os.environ:
        return max(1, int(os.environ["PROFIT_RL_REWARD_WORKERS"]))
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        cores = os.cpu_count() or 1
    ranks_here = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(1, cores // max(1, ranks_here))


@dataclass
class VerifierPool:
    """Worker processes that score (gold, completion) pairs with math-verify under a hard per-item deadline.

    Use as a context manager or call `close()`; an unclosed pool is closed at interpreter exit. Safe to call from
    several threads: calls are serialised by a lock.
    """

    num_workers: int | None = None
    """Worker processes. Default: `default_num_workers()` (cores / ranks on this node; env PROFIT_RL_REWARD_WORKERS)."""
    timeout: float = DEFAULT_TIMEOUT_S
    """Hard per-item deadline in seconds, from the moment a worker starts the item."""
    memory_mb: int | None = DEFAULT_MEMORY_MB
    """Address space a worker may add while scoring (RLIMIT_AS, Linux); beyond it the item errors. None: no limit."""
    chunk: int | None = None
    """Items handed to a worker in one message. None: guided, 1 / (2 * num_workers) of what is left, so chunks shrink
    as the call drains. 1: one item per message."""
    startup_timeout: float = 120.0
    """Seconds the fork server may take to start (it imports sympy and math-verify), and a worker to report ready."""
    shortcut: bool = True
    """Score equal normalised strings 1.0 without sympy. False: every item through math-verify (for benchmarks)."""
    totals: PoolStats = field(default_factory=PoolStats, init=False)

    def __post_init__(self):
        if self.num_workers is None:
            self.num_workers = default_num_workers()
        if self.num_workers < 1:
            raise ValueError(f"num_workers must be >= 1, got {self.num_workers}")
        if not self.timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {self.timeout}")
        if self.chunk is not None and self.chunk < 1:
            raise ValueError(f"chunk must be >= 1 or None, got {self.chunk}")
        self._workers: list[WorkerProcess] = []
        self._lock = threading.Lock()
        self._closed = False
        self._owner = os.getpid()
        atexit.register(self.close)

    # -- lifecycle ----------------------------------------------------------------------------------------------------

    def start(self) -> "VerifierPool":
        """Start the workers and wait until they are ready (otherwise the first call does it)."""
        if self._closed:
            raise RuntimeError("this VerifierPool is closed")
        if self._owner != os.getpid():  # a forked copy of the pool: the workers are the parent's, leave them be
            self._workers, self._owner = [], os.getpid()
        for worker in list(self._workers):  # items left held by an interrupted call: state unknown, replace
            if worker.held:
                self._replace(worker)
        while len(self._workers) < self.num_workers:
            self._workers.append(WorkerProcess(fork_server(self.startup_timeout), self.memory_mb))
        for worker in self._workers:
            self._await_ready(worker)
        return self

    def _await_ready(self, worker: WorkerProcess) -> None:
        if worker.ready:
            return
        remaining = worker.started + self.startup_timeout - time.monotonic()
        if not worker.conn.poll(max(0.0, remaining)):
            worker.kill()
            raise RuntimeError(f"a verifier worker did not start within {self.startup_timeout:.0f} s")
        try:
            message = worker.conn.recv()
        except (EOFError, OSError) as exc:
            code = worker.kill()
            raise RuntimeError(f"a verifier worker died while starting (exit code {code})") from exc
        if message[0] != "ready":
            raise RuntimeError(f"a verifier worker sent {message!r} instead of 'ready'")
        worker.ready = True

    def _replace(self, worker: WorkerProcess) -> int | None:
        """Kill a worker and start another in its place; the killed one's exit code."""
        code = worker.kill()
        self._workers[self._workers.index(worker)] = WorkerProcess(fork_server(self.startup_timeout), self.memory_mb)
        return code

    def close(self) -> None:
        """Stop every worker. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._owner == os.getpid():
            for worker in self._workers:
                worker.kill()
        self._workers.clear()
        atexit.unregister(self.close)

    def __enter__(self) -> "VerifierPool":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def worker_pids(self) -> list[int]:
        """The process ids of the current workers (a killed worker's replacement has a new one)."""
        return [w.pid for w in self._workers]

    # -- scoring ------------------------------------------------------------------------------------------------------

    def score(
        self, golds: list[str], completions: list[str], *, fallback: Fallback = DEFAULT_FALLBACK
    ) -> tuple[list[float | None], PoolStats]:
        """Score each completion against its gold: (scores, stats). `fallback`: where to look for the answer
        (`rewards.answers.extract_answer`). See `rewards.verify.score_answer`."""
        if len(golds) != len(completions):
            raise ValueError(f"{len(golds)} golds but {len(completions)} completions")
        jobs = [Job(i, str(g), tail(c) if isinstance(c, str) else "", False, fallback, self.shortcut)
                for i, (g, c) in enumerate(zip(golds, completions))]
        results, stats = self._run(jobs)
        return [r.score for r in results], stats

    def verify(self, pairs: list[tuple[str, str]]) -> list[float | None]:
        """Score already extracted answers: `pairs` is [(gold, predicted_answer), ...]. Counts go to `totals`."""
        return self.verify_detailed(pairs)[0]

    def verify_detailed(
        self, pairs: list[tuple[str, str]]
    ) -> tuple[list[float | None], list[tuple[Outcome, str | None]], PoolStats]:
        """`verify` plus each item's (outcome, detail); detail says why for timeouts and errors. For evals that
        record it per sample."""
        jobs = [Job(i, str(g), tail(str(p)), True, "none", self.shortcut) for i, (g, p) in enumerate(pairs)]
        results, stats = self._run(jobs)
        return [r.score for r in results], [(Outcome(r.outcome), r.detail) for r in results], stats

    def call(self, function: str, items: list[tuple]) -> tuple[list[tuple[Outcome, object]], PoolStats]:
        """Call `function` ("module:name", imported in the workers) on each item's positional arguments, under the
        same deadline: ((outcome, value) per item, stats). OK gives the return value; TIMEOUT and ERROR give why. For
        scorers other than `score_answer` (`rewards.deadline_runner`); arguments and results are pickled."""
        results, stats = self._run([FunctionJob(i, function, tuple(args)) for i, args in enumerate(items)])
        return [(Outcome(r.outcome), r.value if r.outcome == Outcome.OK else r.detail) for r in results], stats

    def _run(self, jobs: list) -> tuple[list[Result], PoolStats]:
        with self._lock:
            if self._closed:
                raise RuntimeError("this VerifierPool is closed")
            call = PoolCall(jobs)
            if jobs:
                started = time.monotonic()
                self.start()
                # If this raises (Ctrl-C mid-batch), workers keep their held items; the next start() replaces them.
                while call.left:
                    self._hand_out(call)
                    self._collect(call, self._wait(call))
                    self._enforce_deadlines(call)
                call.stats.seconds = time.monotonic() - started
                # Replacements still starting become ready in the background; the next call waits for them.
            self.totals.add(call.stats)
            return call.results, call.stats

    def _hand_out(self, call: PoolCall) -> None:
        """Send a chunk to every ready worker that is running low (see `chunk` and REFILL_BELOW)."""
        for worker in list(self._workers):
            if not call.todo:
                return
            if not worker.ready or len(worker.held) >= REFILL_BELOW:
                continue
            size = self.chunk or -(-len(call.todo) // (2 * len(self._workers)))
            batch = [call.todo.popleft() for _ in range(min(size, len(call.todo)))]
            try:
                worker.conn.send([call.jobs[i] for i in batch])
            except (OSError, ValueError):  # died while idle or mid-queue: what it held is lost, these are not
                call.give_back(batch)
                self._lost(worker, call)
                continue
            if not worker.held:
                worker.since = time.monotonic()
            worker.held.extend(batch)

    def _wait(self, call: PoolCall) -> list:
        """Connections with something to read: results, a replacement's ready message, or a death (EOF)."""
        now = time.monotonic()
        for worker in self._workers:
            if not worker.ready and now > worker.started + self.startup_timeout:
                raise RuntimeError(f"a verifier worker did not start within {self.startup_timeout:.0f} s")
        busy = [w for w in self._workers if w.held]
        watched = [w.conn for w in self._workers if w.held or not w.ready]
        next_deadline = min((w.deadline(self.timeout) for w in busy), default=now + 1.0)
        return wait_for_any(watched, timeout=max(0.0, next_deadline - now))

    def _collect(self, call: PoolCall, ready_conns: list) -> None:
        by_conn = {w.conn: w for w in self._workers}
        for conn in ready_conns:
            worker = by_conn[conn]
            if not worker.ready:  # a replacement (one that cannot start is a setup error: this raises)
                self._await_ready(worker)
                continue
            try:
                while worker.held and conn.poll(0):
                    result: Result = conn.recv()
                    now = time.monotonic()
                    worker.held.popleft()
                    call.finish(result, now - worker.since)
                    worker.since = now  # the next held item started when this answer was sent
            except (EOFError, OSError):  # the worker died (segfault, OOM killer)
                self._lost(worker, call)

    def _lost(self, worker: WorkerProcess, call: PoolCall) -> None:
        """A worker died: the item it was scoring errors, the ones queued behind it go back in line."""
        if worker.held:
            index = worker.held.popleft()
            call.give_back(worker.held)
            worker.held.clear()
            seconds = time.monotonic() - worker.since
            code = self._replace(worker)
            call.finish(Result(index, Outcome.ERROR.value, 0.0, f"worker exited with code {code}"), seconds)
        else:
            self._replace(worker)

    def _enforce_deadlines(self, call: PoolCall) -> None:
        now = time.monotonic()
        for worker in list(self._workers):
            if worker.held and now >= worker.deadline(self.timeout):
                index = worker.held.popleft()
                call.give_back(worker.held)
                worker.held.clear()
                self._replace(worker)
                call.finish(Result(index, Outcome.TIMEOUT.value, 0.0, f"over the {self.timeout:g} s deadline"),
                            now - worker.since)


# ---------------------------------------------------------------------------------------------------------------------
# The shared default pool


_default_pool: VerifierPool | None = None
_default_lock = threading.Lock()
_default_settings: dict = {}


def configure_default_pool(**settings) -> None:
    """Set `VerifierPool` arguments (num_workers, timeout, memory_mb, chunk) for the shared pool.

    Closes the current shared pool if there is one; the next `get_default_pool()` builds a new one.
    """
    global _default_pool
    with _default_lock:
        _default_settings.clear()
        _default_settings.update({k: v for k, v in settings.items() if v is not None})
        if _default_pool is not None:
            _default_pool.close()
            _default_pool = None


def get_default_pool() -> VerifierPool:
    """The process-wide pool used by the rewards and by evals (built on first use; env PROFIT_RL_REWARD_TIMEOUT)."""
    global _default_pool
    with _default_lock:
        if _default_pool is None or _default_pool._closed:
            settings = dict(_default_settings)
            if "timeout" not in settings and "PROFIT_RL_REWARD_TIMEOUT" in os.environ:
                settings["timeout"] = float(os.environ["PROFIT_RL_REWARD_TIMEOUT"])
            _default_pool = VerifierPool(**settings)
        return _default_pool


def verify_batch(
    golds: list[str], completions: list[str], *, fallback: Fallback = DEFAULT_FALLBACK,
    pool: VerifierPool | None = None
) -> tuple[list[float | None], PoolStats]:
    """Score model completions against golds on the shared pool (or `pool`): (scores, stats). A one-call entry point
    for scripts: `scores, stats = verify_batch(golds, completions, fallback="none")`."""
    return (pool or get_default_pool()).score(golds, completions, fallback=fallback)


__all__ = [
    "MAX_ANSWER_CHARS",
    "PoolStats",
    "VerifierPool",
    "configure_default_pool",
    "default_num_workers",
    "get_default_pool",
    "verify_batch",
]
