"""Run a scoring function over many items in worker processes, each item under a hard deadline.

    runner = DeadlineRunner("profit_rl.evals.benchmarks.opencompass:math_verify_verdict", timeout_s=30)
    runner.run([(gold, response), ...])   # -> [("ok", value) | ("timeout", detail) | ("error", detail), ...]

Why: the `paper` protocol scores MATH-500 and AIME'24 with math-verify over the whole response, as the reference's
MATHVerifyEvaluator does. math-verify's own timeouts are `signal.alarm`s, which a long C call inside sympy never sees,
so one pathological response could stall a long evaluation. Here each worker is a fresh interpreter (it never imports
the caller's `__main__`, and forks nothing from a caller that holds a GPU); the caller waits on its answer, and a
worker still busy at the deadline is SIGKILLed and replaced: that item is a "timeout" and the run goes on. The GRPO
reward has its own pool (`rewards.pool`), bound to its own scoring function.

Workers speak one JSON line per item on stdin/stdout, so the function's arguments and result must be JSON values.
"""

from __future__ import annotations

import atexit
import importlib
import json
import logging
import os
import selectors
import subprocess
import sys
import time

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 30.0  # per item: math-verify's own parse and verify limits are 5 s each
STARTUP_TIMEOUT_S = 120.0  # a fresh worker imports sympy and math-verify: seconds on a loaded machine
MEMORY_MB = 4_096  # address space a worker may add for one item before its allocation fails (a MemoryError: "error")


def _limit_memory(extra_mb: int) -> None:
    try:
        import resource

        with open("/proc/self/statm") as f:
            current = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = current + extra_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (OSError, ValueError, ImportError):  # not Linux: no limit
        pass


def serve(function: str, memory_mb: int = MEMORY_MB) -> None:
    """The worker's loop: import `module:function`, say ready, then answer each JSON line of arguments."""
    module, name = function.split(":")
    func = getattr(importlib.import_module(module), name)
    out = sys.stdout
    sys.stdout = sys.stderr  # a print inside the function must not corrupt the protocol
    _limit_memory(memory_mb)
    out.write('{"ready": true}\n')
    out.flush()
    for line in sys.stdin:
        try:
            reply = {"ok": func(*json.loads(line))}
        except BaseException as err:  # MemoryError, RecursionError, sympy internals: the item errors, the worker lives
            reply = {"error": f"{type(err).__name__}: {str(err)[:300]}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()


class _Worker:
    def __init__(self, function: str, memory_mb: int):
        package = __package__ or "profit_rl.evals.benchmarks"
        code = (f"import sys; sys.path[:] = {sys.path!r}; from {package}.deadline import serve; "
                f"serve({function!r}, {memory_mb})")
        self.process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self.item: int | None = None
        self.started = time.monotonic()
        self.ready = False

    def send(self, index: int, args) -> None:
        self.item, self.started = index, time.monotonic()
        self.process.stdin.write(json.dumps(list(args)) + "\n")
        self.process.stdin.flush()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass


class DeadlineRunner:
    """Worker processes for one function; see the module docstring. Not thread-safe: one `run` at a time."""

    def __init__(self, function: str, timeout_s: float = DEFAULT_TIMEOUT_S, num_workers: int | None = None,
                 memory_mb: int = MEMORY_MB):
        self.function, self.timeout_s, self.memory_mb = function, timeout_s, memory_mb
        self.num_workers = num_workers or max(1, min(4, (os.cpu_count() or 2) // 2))
        self.workers: list[_Worker] = []
        self.counts = {"ok": 0, "timeout": 0, "error": 0}
        atexit.register(self.close)

    def _start(self) -> _Worker:
        worker = _Worker(self.function, self.memory_mb)
        self.workers.append(worker)
        return worker

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        self.workers.remove(worker)
        self._start()

    def run(self, items: list[tuple]) -> list[tuple[str, object]]:
        """(outcome, value) per item, in order: ("ok", the function's result), ("timeout", detail) or ("error",
        detail). Never raises for an item."""
        results: list[tuple[str, object] | None] = [None] * len(items)
        todo = list(range(len(items)))[::-1]  # popped from the end: first item first
        while len(self.workers) < min(self.num_workers, max(1, len(items))):
            self._start()
        while todo or any(w.item is not None for w in self.workers):
            for worker in self.workers:
                if worker.ready and worker.item is None and todo:
                    index = todo.pop()
                    worker.send(index, items[index])
            now = time.monotonic()
            waits = [(STARTUP_TIMEOUT_S if not w.ready else self.timeout_s) - (now - w.started)
                     for w in self.workers if not w.ready or w.item is not None]
            with selectors.DefaultSelector() as selector:  # a few workers: a fresh selector per wait is cheap
                for worker in self.workers:
                    selector.register(worker.process.stdout, selectors.EVENT_READ, worker)
                events = selector.select(timeout=max(0.0, min(waits)) if waits else None)
            for key, _ in events:
                self._read(key.data, results)
            self._enforce_deadlines(results)
        for outcome, _ in results:
            self.counts[outcome] += 1
        return results

    def _read(self, worker: _Worker, results) -> None:
        line = worker.process.stdout.readline()
        if not line:  # the worker died (killed for memory, a crash in C): its item errors
            if worker.item is not None:
                results[worker.item] = ("error", f"worker exited with code {worker.process.poll()}")
                logger.warning("scoring item %d: its worker died; scored 0", worker.item)
            elif not worker.ready:
                raise RuntimeError(f"a scoring worker for {self.function} did not start (exit code "
                                   f"{worker.process.poll()})")
            self._replace(worker)
            return
        reply = json.loads(line)
        if reply.get("ready"):
            worker.ready = True
            return
        results[worker.item] = ("ok", reply["ok"]) if "ok" in reply else ("error", reply["error"])
        worker.item = None

    def _enforce_deadlines(self, results) -> None:
        now = time.monotonic()
        for worker in list(self.workers):
            if worker.item is not None and now - worker.started > self.timeout_s:
                results[worker.item] = ("timeout", f"no verdict within {self.timeout_s:.0f} s; worker killed")
                logger.warning("scoring item %d: no verdict within %.0f s, worker killed; scored 0", worker.item,
                               self.timeout_s)
                self._replace(worker)
            elif not worker.ready and now - worker.started > STARTUP_TIMEOUT_S:
                raise RuntimeError(f"a scoring worker for {self.function} did not start within "
                                   f"{STARTUP_TIMEOUT_S:.0f} s")

    def close(self) -> None:
        """Kills every worker process; the next `run` starts new ones."""
        for worker in self.workers:
            worker.kill()
        self.workers = []


_RUNNERS: dict[str, DeadlineRunner] = {}


def get_runner(function: str) -> DeadlineRunner:
    """The process-wide runner of `function` (workers start on first use and stop at exit)."""
    if function not in _RUNNERS:
        _RUNNERS[function] = DeadlineRunner(function)
    return _RUNNERS[function]
