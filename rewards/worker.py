"""The verifier processes: a fork server that loads math-verify once, and the workers it forks. Nothing here runs in
the caller; `rewards.pool` is the caller's side.

The server is a fresh interpreter (`python -c "from profit_rl.rewards.worker import serve; ..."`): it imports this
package and math-verify, and none of the caller's code. Workers are `os.fork()`s of the server, so they never import
the caller's `__main__` either (multiprocessing's 'spawn' and 'forkserver' children re-import it, which breaks callers
whose main module is a script without an `if __name__ == "__main__":` guard, a script read from stdin, or a notebook).
A fork of a warm, single-threaded server is cheap, so a worker killed at its deadline is replaced in milliseconds.

Lifetimes: the server exits when its control socket closes (the caller exited or was killed) or when it is orphaned;
each worker asks Linux to SIGKILL it when the server exits (PR_SET_PDEATHSIG), even while stuck in a C call. So no
verifier process outlives its caller.

Messages: the caller sends a worker a list of jobs; the worker answers each with a `Result` as soon as it is done, so
the caller knows when the next one starts (its deadline runs from then). A `Job` scores one answer (`score_answer`); a
`FunctionJob` calls any importable function, for scorers other than the reward's (the `paper` protocol's
MATHVerifyEvaluator, `rewards.deadline_runner`).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import signal
import socket
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Callable, NamedTuple

from .verify import Outcome, score_answer, warm_up


class Job(NamedTuple):
    """One item to score."""

    index: int  # position in the caller's batch
    gold: str
    text: str  # a model completion, or an already extracted answer when `extracted`
    extracted: bool
    fallback: str  # where to look for an answer in a completion (see rewards.answers.extract_answer)
    shortcut: bool  # equal normalised strings score 1.0 without sympy


class FunctionJob(NamedTuple):
    """One call of an importable function ("module:name") on positional arguments; they and its result are pickled."""

    index: int  # position in the caller's batch
    function: str
    args: tuple


class Result(NamedTuple):
    """How one item ended: an `Outcome` value, the score, why for errors and timeouts, and a `FunctionJob`'s return
    value."""

    index: int
    outcome: str
    score: float | None
    detail: str | None = None
    value: object = None


def score_job(job: Job) -> Result:
    """Score one job in this process; anything it raises (sympy internals, MemoryError, RecursionError) becomes an ERROR
    result scoring 0, so one bad item never stops the worker."""
    try:
        outcome, score = score_answer(job.gold, job.text, extracted=job.extracted, fallback=job.fallback,
                                      shortcut=job.shortcut)
        return Result(job.index, outcome.value, score)
    except BaseException as exc:  # MemoryError, RecursionError, sympy internals: the item scores 0, the worker goes on
        return Result(job.index, Outcome.ERROR.value, 0.0, f"{type(exc).__name__}: {str(exc)[:200]}")


_functions: dict[str, Callable] = {}  # "module:name" -> the function, imported once per worker


def call_job(job: FunctionJob) -> Result:
    """Call one function job in this process: OK with its return value, or an ERROR result (scoring 0) with what it
    raised, so one bad item never stops the worker. What the function prints or logs is dropped."""
    try:
        function = _functions.get(job.function)
        if function is None:
            module, name = job.function.split(":")
            function = _functions[job.function] = getattr(importlib.import_module(module), name)
        # The caller's terminal shows its run, not a library's per-item warnings (the paper protocol's math-verify
        # settings log one on every item).
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            value = function(*job.args)
        return Result(job.index, Outcome.OK.value, None, None, value)
    except BaseException as exc:  # MemoryError, RecursionError, sympy internals: the item errors, the worker goes on
        return Result(job.index, Outcome.ERROR.value, 0.0, f"{type(exc).__name__}: {str(exc)[:300]}")


# ---------------------------------------------------------------------------------------------------------------------
# A worker


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent (the server) exits; elsewhere, poll for being orphaned."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    else:  # pragma: no cover - no PDEATHSIG: a thread notices the orphaning (a worker stuck in a C call that
        # holds the GIL lingers until the call returns)
        _exit_when_orphaned(parent)
    if os.getppid() != parent:  # the parent died before prctl: nobody will send the signal
        os._exit(0)


def _exit_when_orphaned(parent: int) -> None:
    """Exit (from a daemon thread) once this process is re-parented: its parent is gone."""

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="watch-parent").start()


def _limit_memory(extra_mb: int | None) -> None:
    """Let this process add at most `extra_mb` of address space (RLIMIT_AS): beyond it an item raises MemoryError."""
    if not extra_mb:
        return
    try:
        import resource

        with open("/proc/self/statm") as f:
            current = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = current + extra_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (OSError, ValueError, ImportError):  # pragma: no cover - not Linux: the deadline is the only guard
        pass


def _work(conn: Connection, memory_mb: int | None) -> None:
    _die_with_parent()
    _limit_memory(memory_mb)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            jobs = conn.recv()
        except (EOFError, OSError):
            return
        if jobs is None:
            return
        for job in jobs:
            result = call_job(job) if isinstance(job, FunctionJob) else score_job(job)
            try:
                conn.send(result)
            except (EOFError, OSError):
                return


# ---------------------------------------------------------------------------------------------------------------------
# The server: one JSON line per request on its control socket, one reply each


def send_message(sock: socket.socket, message: dict, fds: tuple[int, ...] = ()) -> None:
    """Send one JSON line on a control socket, with `fds` passed along with its first bytes (SCM_RIGHTS)."""
    data = json.dumps(message).encode() + b"\n"
    sent = socket.send_fds(sock, [data], list(fds)) if fds else 0
    sock.sendall(data[sent:])


def recv_message(sock: socket.socket) -> tuple[dict | None, list[int]]:
    """One message and the file descriptors sent with it; (None, []) when the other side has closed the socket."""
    data, fds = b"", []
    while not data.endswith(b"\n"):
        chunk, new_fds, _, _ = socket.recv_fds(sock, 65536, 4)
        fds += new_fds
        if not chunk:
            return None, fds
        data += chunk
    return json.loads(data), fds


def serve(control_fd: int) -> None:
    """The server's main loop. Requests: {"op": "fork", "memory_mb": N} with a worker's socket attached -> {"pid"};
    {"op": "kill", "pid": P} -> {"exitcode"} (SIGKILL, then reap: the caller never signals a reaped pid)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group; the caller handles it
    control = socket.socket(fileno=control_fd)
    warm_up()
    gc.freeze()  # workers share the warm heap: keep their collector from walking (and so copying) its pages
    # The control socket's EOF is the usual signal to exit. A child the caller forked may hold the caller's end too:
    # then being re-parented says the caller is gone.
    _exit_when_orphaned(os.getppid())
    send_message(control, {"ready": os.getpid()})
    children: set[int] = set()
    while True:
        request, fds = recv_message(control)
        if request is None:
            break
        if request["op"] == "fork":
            pid = os.fork()
            if pid == 0:  # the worker: it only needs its own socket
                try:
                    control.close()
                    _work(Connection(fds[0]), request.get("memory_mb"))
                finally:
                    os._exit(0)
            os.close(fds[0])
            children.add(pid)
            send_message(control, {"pid": pid})
        elif request["op"] == "kill":
            send_message(control, {"exitcode": _kill(request["pid"], children)})
    for pid in list(children):
        _kill(pid, children)


def _kill(pid: int, children: set[int]) -> int | None:
    if pid not in children:
        return None
    children.discard(pid)
    try:
        os.kill(pid, signal.SIGKILL)  # an unreaped child keeps its pid: this never hits another process
    except ProcessLookupError:
        pass
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
