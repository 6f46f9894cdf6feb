"""The caller's end of the verifier processes: one fork server per process (`rewards.worker.serve`), and handles on
the workers it forks and kills.

The server is a fresh interpreter started on first use and shared by every pool of the process (`fork_server`); it
loads math-verify once, so a worker (an `os.fork()` of it) starts in milliseconds. A child process the caller forks
starts its own server. The server stops at interpreter exit, and its workers with it (see `rewards.worker`).
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time
from collections import deque

from .worker import recv_message, send_message


class ForkServer:
    """The caller's end of `rewards.worker.serve`: forks workers and kills them, one request at a time."""

    def __init__(self, startup_timeout: float):
        ours, theirs = socket.socketpair()
        package = __package__ or "profit_rl.rewards"
        # The server must import this very package (and the same math-verify): give it the caller's import path.
        code = f"import sys; sys.path[:] = {sys.path!r}; from {package}.worker import serve; serve({theirs.fileno()})"
        self.process = subprocess.Popen([sys.executable, "-c", code], pass_fds=[theirs.fileno()],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        theirs.close()
        self.sock = ours
        self.owner = os.getpid()
        self.lock = threading.Lock()
        self.sock.settimeout(startup_timeout)  # loading sympy takes seconds; a fork or a kill takes milliseconds
        try:
            reply, _ = recv_message(self.sock)
        except socket.timeout:
            self.stop()
            raise RuntimeError(f"the verifier fork server did not start within {startup_timeout:.0f} s") from None
        except OSError:
            reply = None
        if reply is None:
            code = self.process.wait()
            raise RuntimeError(f"the verifier fork server exited while starting (exit code {code}; see its error above)")

    def alive(self) -> bool:
        """Whether the server process still runs."""
        return self.process.poll() is None

    def _request(self, message: dict, fds: tuple[int, ...] = ()) -> dict:
        with self.lock:
            try:
                send_message(self.sock, message, fds)
                reply, _ = recv_message(self.sock)
            except OSError as exc:
                raise RuntimeError(f"the verifier fork server is gone (exit code {self.process.poll()})") from exc
            if reply is None:
                raise RuntimeError(f"the verifier fork server is gone (exit code {self.process.poll()})")
            return reply

    def fork(self, fd: int, memory_mb: int | None) -> int:
        """Fork a worker that talks on socket `fd` and may add `memory_mb` of address space; its pid."""
        return self._request({"op": "fork", "memory_mb": memory_mb}, (fd,))["pid"]

    def kill(self, pid: int) -> int | None:
        """SIGKILL a worker and reap it; its exit code (None when the server no longer knows it)."""
        return self._request({"op": "kill", "pid": pid})["exitcode"]

    def stop(self) -> None:
        """Close the control socket and wait for the server (and so its workers) to exit; kill it after 5 s."""
        self.sock.close()  # the server exits at EOF, and its workers with it
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_server: ForkServer | None = None
_server_lock = threading.Lock()


def fork_server(startup_timeout: float) -> ForkServer:
    """This process's fork server, started on first use (again in a forked child of the caller, or after it died)."""
    global _server
    with _server_lock:
        if _server is None or _server.owner != os.getpid() or not _server.alive():
            if _server is not None and _server.owner == os.getpid():
                _server.stop()
            _server = ForkServer(startup_timeout)  # a forked child of the caller starts its own
        return _server


@atexit.register
def _stop_fork_server() -> None:
    if _server is not None and _server.owner == os.getpid():
        _server.stop()


class WorkerProcess:
    """One worker process: its connection, and the items of the current call it holds, in the order it scores them."""

    def __init__(self, server: ForkServer, memory_mb: int | None):
        self.conn, theirs = multiprocessing.Pipe(duplex=True)
        self.server = server
        try:
            self.pid = server.fork(theirs.fileno(), memory_mb)
        finally:
            theirs.close()
        self.ready = False
        self.started = time.monotonic()
        self.held: deque[int] = deque()  # job indices sent and not answered; the first is being scored
        self.since = 0.0  # when the worker started the first held item

    def deadline(self, timeout: float) -> float:
        """When the item the worker is scoring runs out of time (monotonic clock)."""
        return self.since + timeout

    def kill(self) -> int | None:
        """Kill and reap the process (if the server still runs); its exit code."""
        code = None
        try:
            if self.server.alive():
                code = self.server.kill(self.pid)
        except RuntimeError:
            pass
        self.conn.close()
        return code

