"""Scoring that cannot hang: math-verify in worker processes with a hard per-item deadline.

Why a process pool: math-verify's own timeout is `signal.alarm`, which works only on the main thread of the main
interpreter and can still hang inside sympy (Math-Verify #65; `2^{2^{2^{2^{2^{2}}}}}` makes CPython compute a giant
integer in one C call that no signal interrupts). Here every item runs in a worker process on that worker's main
thread, with math-verify's own timeouts switched off. The pool is the only guard:

- an item still running at its deadline gets its worker SIGKILLed and replaced; the item scores 0.0 and is counted in
  `stats.timeouts` (the GRPO reward logs it as `rewards/timeouts`);
- an item whose scoring raises (or whose worker dies, e.g. out of its memory limit) scores 0.0 and counts in
  `stats.errors`; the exception text is logged;
- items run in parallel on `num_workers` processes;
- no process outlives the caller: workers are daemonic (closed at exit, and by `atexit`), ignore Ctrl-C (the caller
  handles it and closes the pool), and on Linux ask the kernel to SIGKILL them when their parent (the fork server,
  which exits with the caller) dies, so a SIGKILLed trainer leaves no worker behind, even one stuck in a C call.

Workers are started with the 'forkserver' method by default: the fork server is a fresh interpreter that imports
sympy and math-verify once, so a replacement worker is a cheap fork, and it is safe in a process that has CUDA or
many threads (plain `fork` is not). Like 'spawn', a forkserver child re-imports the caller's `__main__` module, so
entry scripts keep heavy imports inside functions (`profit_rl.grpo` does).

`score_answer` is the whole per-item computation; `benchmarks/rewards.py` times it in-process against the pool.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from multiprocessing.connection import wait as wait_for_any

from .answers import MAX_COMPLETION_CHARS, extract_answer, gold_answer, normalize_answer, tail

logger = logging.getLogger(__name__)

# An extracted answer longer than this is scored 0.0 without sympy. The longest gold answer in the 12,500 MATH
# problems is 159 characters; 2,000 leaves room for matrices and long expressions while keeping sympy away from
# kilobytes of nested LaTeX.
MAX_ANSWER_CHARS = 2_000
DEFAULT_TIMEOUT_S = 5.0  # per item; math-verify's own defaults are 5 s to parse and 5 s to compare
DEFAULT_MEMORY_MB = 4_096  # extra address space a worker may take for one item before MemoryError

# Outcome of one item, as the worker reports it.
OK, NO_ANSWER, GOLD_UNPARSEABLE, TOO_LONG, ERROR, TIMEOUT = "ok", "no_answer", "gold_unparseable", "too_long", "error", "timeout"


# ---------------------------------------------------------------------------------------------------------------------
# The per-item computation (runs inside a worker; also callable in-process, without a deadline)


@lru_cache(maxsize=8192)
def _parse_gold(gold: str):
    from math_verify import parse

    return parse("\\boxed{" + gold + "}", parsing_timeout=None)


def _parse_pred(pred: str):
    from math_verify import parse

    return parse("\\boxed{" + pred + "}", parsing_timeout=None)


def score_answer(
    gold: str, completion: str, *, extracted: bool = False, fallback: str = "answer_is", shortcut: bool = True
) -> tuple[str, float | None]:
    """Score one completion against one gold answer, in this process, with no deadline: (outcome, score).

    `gold` may be a bare answer or a GSM8K/MATH solution (see `answers.gold_answer`). `completion` is a model
    completion, or an already extracted answer when `extracted=True`. Score 1.0 when math-verify judges the answers
    equivalent (or their normalised strings are equal), 0.0 when not or when the completion has no answer, None when
    the gold itself cannot be parsed. `shortcut=False` skips the equal-strings shortcut, so that every item goes
    through sympy (benchmarks use it to time math-verify itself).
    """
    from math_verify import verify

    gold_norm = gold_answer(gold)
    if not gold_norm:
        return GOLD_UNPARSEABLE, None
    pred = completion if extracted else extract_answer(completion, fallback=fallback)
    if pred is None:
        return NO_ANSWER, 0.0
    pred_norm = normalize_answer(pred)
    if not pred_norm:
        return NO_ANSWER, 0.0
    if shortcut and pred_norm == gold_norm:
        return OK, 1.0
    if len(pred_norm) > MAX_ANSWER_CHARS:
        return TOO_LONG, 0.0
    gold_parsed = _parse_gold(gold_norm)
    if not gold_parsed:
        return GOLD_UNPARSEABLE, None
    pred_parsed = _parse_pred(pred_norm)
    if not pred_parsed:
        return OK, 0.0
    return OK, float(verify(gold_parsed, pred_parsed, timeout_seconds=None))


# One of each kind of answer, so that sympy's lazily imported parts load once in the fork server, not in every worker.
_WARM_UP_ITEMS = [
    ("\\frac{1}{2}", "0.5"),
    ("2\\sqrt{3}", "\\sqrt{12}"),
    ("(1, 2]", "x \\in (1,2]"),
    ("\\{1, 2\\}", "\\{2, 1\\}"),
    ("x = 5", "5"),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"),
    ("\\frac{\\pi}{3}", "60^\\circ"),
    ("3x^2 + 2\\sin(x)", "2\\sin x + 3x^{2}"),
    ("10\\%", "0.1"),
    ("x > 2", "(2, \\infty)"),
    ("\\log_2 8", "3"),
    ("2 + 3i", "3i + 2"),
]


def warm_up() -> None:
    """Import math-verify and build its parsers by scoring one item (a cold first item can take over a second)."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)  # we disable its timeouts on purpose; don't warn
    for gold, pred in _WARM_UP_ITEMS:
        score_answer(gold, pred, extracted=True, shortcut=False)


# ---------------------------------------------------------------------------------------------------------------------
# Worker process


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent exits (PR_SET_PDEATHSIG); a no-op elsewhere."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        parent = os.getppid()
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl: nobody will send the signal
            os._exit(0)
    except Exception:  # pragma: no cover - best effort; daemonic workers and atexit still apply
        pass


def _release_fork_server() -> None:
    """Close the fork server's keep-alive pipe that multiprocessing hands every forkserver child.

    The fork server exits when the last holder of that pipe goes away. Were a worker to hold it, a SIGKILLed caller
    would leave the fork server alive (the worker holds the pipe) and the worker alive (its parent, the fork server,
    never dies, so PR_SET_PDEATHSIG never fires) for as long as sympy keeps it busy. Workers start no processes, so
    they do not need it.
    """
    try:
        from multiprocessing import forkserver

        fd = forkserver._forkserver._forkserver_alive_fd
        if fd is not None:
            os.close(fd)
            forkserver._forkserver._forkserver_alive_fd = None
    except (AttributeError, OSError):
        pass


def _watch_caller(caller_pid: int) -> None:
    """Exit when the process that owns the pool is gone (a second guard for when the fork server outlives it)."""

    def watch():
        while True:
            time.sleep(1.0)
            try:
                os.kill(caller_pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:  # pid reused by another user's process: the caller is gone
                os._exit(0)

    threading.Thread(target=watch, daemon=True, name="watch-caller").start()


def _limit_memory(extra_mb: int | None) -> None:
    if not extra_mb:
        return
    try:
        import resource

        with open("/proc/self/statm") as f:
            current = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = current + extra_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (OSError, ValueError, ImportError):  # pragma: no cover - not Linux: rely on the deadline alone
        pass


def _worker_main(conn, caller_pid: int, memory_mb: int | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's; the caller closes the pool
    _release_fork_server()
    _die_with_parent()
    _watch_caller(caller_pid)
    _limit_memory(memory_mb)
    warm_up()  # a no-op cost when the fork server already did it
    conn.send(("ready", os.getpid()))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        index, gold, completion, extracted, fallback, shortcut = job
        try:
            outcome, score = score_answer(gold, completion, extracted=extracted, fallback=fallback, shortcut=shortcut)
            reply = (index, outcome, score, None)
        except BaseException as exc:  # MemoryError, RecursionError, sympy internals: the item scores 0, we go on
            reply = (index, ERROR, 0.0, f"{type(exc).__name__}: {str(exc)[:200]}")
        try:
            conn.send(reply)
        except (EOFError, OSError):
            return


class _Worker:
    def __init__(self, ctx, memory_mb: int | None):
        self.conn, child_conn = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_worker_main, args=(child_conn, os.getpid(), memory_mb), daemon=True, name="verifier")
        self.process.start()
        child_conn.close()
        self.ready = False
        self.started = time.monotonic()
        self.job: int | None = None  # index of the item in flight
        self.deadline = 0.0
        self.dispatched = 0.0

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


# ---------------------------------------------------------------------------------------------------------------------
# The pool


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
    max_item_seconds: float = 0.0  # slowest item, from dispatch to answer (or kill)

    def add(self, other: "PoolStats") -> None:
        for name in ("items", "correct", "no_answer", "gold_unparseable", "too_long", "timeouts", "errors"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.seconds += other.seconds
        self.max_item_seconds = max(self.max_item_seconds, other.max_item_seconds)

    def as_dict(self) -> dict:
        return asdict(self)


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

    Use as a context manager or call `close()`; an unclosed pool is closed at interpreter exit. Not thread-safe: one
    caller at a time (calls are serialised by a lock).
    """

    num_workers: int | None = None
    """Worker processes. Default: `default_num_workers()` (cores / ranks on this node; env PROFIT_RL_REWARD_WORKERS)."""
    timeout: float = DEFAULT_TIMEOUT_S
    """Hard per-item deadline in seconds, from the moment the item reaches a worker."""
    memory_mb: int | None = DEFAULT_MEMORY_MB
    """Address space a worker may add while scoring (RLIMIT_AS, Linux); beyond it the item errors. None: no limit."""
    start_method: str = "forkserver"
    """multiprocessing start method: 'forkserver' (default), 'spawn', or 'fork' (unsafe with CUDA or threads)."""
    startup_timeout: float = 120.0
    """Seconds a new worker may take to start (it re-imports the caller's __main__ module)."""
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
        self._ctx = multiprocessing.get_context(self.start_method)
        if self.start_method == "forkserver":
            # Only effective if this process has not started its fork server yet; then workers fork with sympy loaded.
            self._ctx.set_forkserver_preload(["rewards._preload"])
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        atexit.register(self.close)

    # -- lifecycle ----------------------------------------------------------------------------------------------------

    def start(self) -> "VerifierPool":
        """Start the workers and wait until they are ready (otherwise the first call does it)."""
        if self._closed:
            raise RuntimeError("this VerifierPool is closed")
        for worker in list(self._workers):  # an item left in flight by an interrupted call: state unknown, replace
            if worker.job is not None:
                self._replace(worker)
        while len(self._workers) < self.num_workers:
            self._workers.append(_Worker(self._ctx, self.memory_mb))
        for worker in self._workers:
            self._await_ready(worker)
        return self

    def _await_ready(self, worker: _Worker) -> None:
        if worker.ready:
            return
        remaining = worker.started + self.startup_timeout - time.monotonic()
        if not worker.conn.poll(max(0.0, remaining)):
            worker.kill()
            raise RuntimeError(f"a verifier worker did not start within {self.startup_timeout:.0f} s")
        try:
            message = worker.conn.recv()
        except (EOFError, OSError) as exc:
            worker.kill()
            raise RuntimeError(f"a verifier worker died while starting (exit code {worker.process.exitcode})") from exc
        assert message[0] == "ready", message
        worker.ready = True

    def _replace(self, worker: _Worker) -> _Worker:
        worker.kill()
        fresh = _Worker(self._ctx, self.memory_mb)
        self._workers[self._workers.index(worker)] = fresh
        return fresh

    def close(self) -> None:
        """Stop every worker (politely, then SIGKILL). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for worker in self._workers:
            try:
                if worker.job is None:
                    worker.conn.send(None)
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + 1.0
        for worker in self._workers:
            worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
            worker.kill()
        self._workers.clear()
        atexit.unregister(self.close)

    def __enter__(self) -> "VerifierPool":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def worker_pids(self) -> list[int]:
        return [w.process.pid for w in self._workers]

    # -- scoring ------------------------------------------------------------------------------------------------------

    def score(
        self, golds: list[str], completions: list[str], *, fallback: str = "answer_is"
    ) -> tuple[list[float | None], PoolStats]:
        """Score each completion against its gold: (scores, stats). See `score_answer` for what a score means."""
        if len(golds) != len(completions):
            raise ValueError(f"{len(golds)} golds but {len(completions)} completions")
        jobs = [(str(g), tail(c) if isinstance(c, str) else "", False, fallback) for g, c in zip(golds, completions)]
        return self._run(jobs)[:2]

    def verify(self, pairs: list[tuple[str, str]]) -> list[float | None]:
        """Score already extracted answers: `pairs` is [(gold, predicted_answer), ...]. Counts go to `totals`."""
        return self.verify_detailed(pairs)[0]

    def verify_detailed(self, pairs: list[tuple[str, str]]) -> tuple[list[float | None], list[tuple[str, str | None]], PoolStats]:
        """`verify` plus each item's (outcome, detail): outcome is one of "ok", "no_answer", "gold_unparseable",
        "too_long", "timeout", "error"; detail says why for the last two. For evals that record it per sample."""
        jobs = [(str(g), tail(str(p)), True, "none") for g, p in pairs]
        scores, stats, outcomes = self._run(jobs)
        return scores, outcomes, stats

    def _run(self, jobs: list[tuple]) -> tuple[list[float | None], PoolStats, list[tuple[str, str | None]]]:
        with self._lock:
            if self._closed:
                raise RuntimeError("this VerifierPool is closed")
            stats = PoolStats(items=len(jobs))
            scores: list[float | None] = [0.0] * len(jobs)
            outcomes: list[tuple[str, str | None]] = [(OK, None)] * len(jobs)
            if jobs:
                started = time.monotonic()
                self.start()
                # If this raises (Ctrl-C mid-batch), workers keep their item in flight; the next start() replaces them.
                self._dispatch(jobs, scores, stats, outcomes)
                stats.seconds = time.monotonic() - started
            self.totals.add(stats)
            return scores, stats, outcomes

    def _dispatch(self, jobs: list[tuple], scores: list, stats: PoolStats, outcomes: list) -> None:
        queue = deque(range(len(jobs)))
        busy: dict = {}  # conn -> worker with an item in flight
        starting: dict = {}  # conn -> replacement worker not ready yet
        while queue or busy:
            for worker in self._workers:  # hand out items to idle, ready workers
                if not queue:
                    break
                if worker.ready and worker.job is None:
                    index = queue.popleft()
                    gold, completion, extracted, fallback = jobs[index]
                    worker.job, worker.dispatched = index, time.monotonic()
                    worker.deadline = worker.dispatched + self.timeout
                    try:
                        worker.conn.send((index, gold, completion, extracted, fallback, self.shortcut))
                    except (OSError, ValueError):  # died while idle: replace it, retry the item
                        queue.appendleft(index)
                        worker.job = None
                        fresh = self._replace(worker)
                        starting[fresh.conn] = fresh
                        continue
                    busy[worker.conn] = worker
            now = time.monotonic()
            for worker in starting.values():
                if now > worker.started + self.startup_timeout:
                    raise RuntimeError(f"a verifier worker did not start within {self.startup_timeout:.0f} s")
            wait_s = min((w.deadline for w in busy.values()), default=now + 1.0) - now
            ready = wait_for_any(list(busy) + list(starting), timeout=max(0.0, wait_s))
            for conn in ready:
                if conn in starting:  # a replacement is ready (a worker that cannot start is a setup error: raise)
                    self._await_ready(starting.pop(conn))
                    continue
                worker = busy.pop(conn)
                index, worker.job = worker.job, None
                elapsed = time.monotonic() - worker.dispatched
                stats.max_item_seconds = max(stats.max_item_seconds, elapsed)
                try:
                    _, outcome, score, detail = conn.recv()
                except (EOFError, OSError):  # the worker died (segfault, OOM killer): item errors, worker replaced
                    outcome, score, detail = ERROR, 0.0, f"worker exited with code {worker.process.exitcode}"
                    fresh = self._replace(worker)
                    starting[fresh.conn] = fresh
                self._record(index, outcome, score, detail, jobs, scores, stats)
                outcomes[index] = (outcome, detail)
            now = time.monotonic()
            for conn, worker in list(busy.items()):  # deadlines: kill, replace, score 0
                if now >= worker.deadline:
                    del busy[conn]
                    index, worker.job = worker.job, None
                    stats.max_item_seconds = max(stats.max_item_seconds, now - worker.dispatched)
                    fresh = self._replace(worker)
                    starting[fresh.conn] = fresh
                    detail = f"over the {self.timeout:g} s deadline"
                    self._record(index, TIMEOUT, 0.0, detail, jobs, scores, stats)
                    outcomes[index] = (TIMEOUT, detail)
        # Replacements that are still starting become ready in the background; the next call waits for them.

    @staticmethod
    def _record(index, outcome, score, detail, jobs, scores, stats) -> None:
        scores[index] = score
        if outcome == OK and score == 1.0:
            stats.correct += 1
        elif outcome == NO_ANSWER:
            stats.no_answer += 1
        elif outcome == GOLD_UNPARSEABLE:
            stats.gold_unparseable += 1
        elif outcome == TOO_LONG:
            stats.too_long += 1
        elif outcome in (TIMEOUT, ERROR):
            if outcome == TIMEOUT:
                stats.timeouts += 1
            else:
                stats.errors += 1
            gold, completion = jobs[index][0], jobs[index][1]
            logger.warning(
                "reward item %d scored 0 (%s: %s); gold=%r, answer tail=%r",
                index, outcome, detail, gold[:80], completion[-120:],
            )


# ---------------------------------------------------------------------------------------------------------------------
# The shared default pool


_default_pool: VerifierPool | None = None
_default_lock = threading.Lock()
_default_settings: dict = {}


def configure_default_pool(**settings) -> None:
    """Set `VerifierPool` arguments (num_workers, timeout, memory_mb, start_method) for the shared pool.

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
    golds: list[str], completions: list[str], *, fallback: str = "answer_is", pool: VerifierPool | None = None
) -> tuple[list[float | None], PoolStats]:
    """Score model completions against golds on the shared pool (or `pool`): (scores, stats).

    The convenience entry point for evals: `scores, stats = verify_batch(golds, completions, fallback="last_number")`.
    """
    return (pool or get_default_pool()).score(golds, completions, fallback=fallback)


__all__ = [
    "MAX_ANSWER_CHARS",
    "MAX_COMPLETION_CHARS",
    "PoolStats",
    "VerifierPool",
    "configure_default_pool",
    "default_num_workers",
    "get_default_pool",
    "score_answer",
    "verify_batch",
]
