"""Running a plan's steps: each as soon as the steps it reads have finished, within the CPU slots and GPUs it shares.

The done markers (`profit_rl.pipeline.steps`) decide what a rerun does with each step: skip it (`skippable`), continue
it, or empty its folder and run it again (`stale_reason`). A step reruns when its command changed, when a recipe or
data file the command names changed, or when a step it reads ran again since (its run id changed), and then so does
everything downstream of it; clocks play no part. `--dry-run` prints the same commands with the schedule
(`print_plan`); SIGTERM and SIGINT stop the running steps (`run`). `run_grid` runs the sweep's and the probes' grids
under the pipeline's lock on `outputs/<model>`.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path

from profit_rl.core.errors import CommandStopped
from profit_rl.core.folders import inside, output_folder

from .profiles import CODE_ROOT, resolve_profile
from .steps import DONE, STAGES, STARTED, Step


def check_graph(steps: list[Step]) -> None:
    """Names are unique and every step reads only steps listed before it (so plan order is a valid run order)."""
    seen: set[str] = set()
    for step in steps:
        if step.name in seen:
            raise ValueError(f"two steps are named {step.name!r}")
        unknown = [name for name in step.waits_for if name not in seen]
        if unknown:
            raise ValueError(f"step {step.name!r} reads {unknown}, which no earlier step is")
        seen.add(step.name)


def input_ids(step: Step, steps: list[Step]) -> dict[str, str | None]:
    """The run id of each step this one reads (its `inputs`; the steps it only waits `after` do not count)."""
    return {other.name: other.run_id() for other in steps if other.name in step.inputs}


def changed_inputs(step: Step, steps: list[Step], record: dict | None = None) -> list[Step]:
    """The steps this one reads that ran again since it last ran (e.g. the data step, with other --task values): the
    run ids it recorded (`record`: its done marker by default) are not theirs now. A marker that recorded none
    (written before markers held their inputs) counts as changed: what it was made from cannot be known."""
    record = step.marker() if record is None else record
    recorded = (record or {}).get("inputs")
    if not isinstance(recorded, dict):
        return [other for other in steps if other.name in step.inputs]
    now = input_ids(step, steps)
    return [other for other in steps if other.name in now and recorded.get(other.name) != now[other.name]]


def changed_files(step: Step, record: dict | None = None) -> list[str]:
    """The recipe and data files named in the command whose content differs from when the step ran."""
    recorded = (record or {}).get("files")
    now = step.files()
    if not isinstance(recorded, dict):
        return sorted(now)
    return sorted(path for path in set(now) | set(recorded) if recorded.get(path) != now.get(path))


def skippable(step: Step, steps: list[Step]) -> bool:
    """Finished with the same command and files, and nothing it reads ran again since."""
    return step.done() and not changed_inputs(step, steps) and not changed_files(step, step.marker())


def stale_reason(step: Step, steps: list[Step]) -> str | None:
    """Why the step's folder holds a run this one must not continue or reuse (it is emptied first), or None: a
    finished run with another command or other inputs, or a killed run that started with them. A killed run of this
    command on these inputs is continued: SFT and GRPO resume from their checkpoints, an eval from its samples."""
    for name, what in ((DONE, "finished"), (STARTED, "started")):
        record = step.marker(name)
        if record is None:
            continue
        if not step.same_command(record.get("argv")):
            return f"its {what} run had another command"
        changed = changed_inputs(step, steps, record)
        if changed:
            return f"its {what} run read an earlier run of {', '.join(other.name for other in changed)}"
        files = changed_files(step, record)
        if files:
            return f"{', '.join(files)} changed since its {what} run"
        return None
    return None


def eta_seconds(step: Step) -> float:
    """A step's expected seconds for scheduling; an unknown duration counts as 1."""
    return step.eta_s or 1.0  # unknown durations count alike, which still shows what can overlap


def by_priority(steps: list[Step], seconds: Callable[[Step], float]) -> list[Step]:
    """The steps, those on the longest remaining chain of work first (ties in plan order): starting them first keeps
    the critical path (data -> SFT -> GRPO -> curves) moving while the evals fill the slots left over."""
    tail: dict[str, float] = {}
    for step in reversed(steps):
        readers = [tail[other.name] for other in steps if step.name in other.waits_for]
        tail[step.name] = seconds(step) + max(readers, default=0.0)
    return sorted(steps, key=lambda step: -tail[step.name])


def startable(pending: list[Step], finished: set[str], running: list[Step], cpus: int, gpus: int) -> list[Step]:
    """The pending steps that can start now, in the order given: all they read has finished, and they fit in the CPU
    slots and GPUs the running steps leave free. A step asking for more than the whole budget gets the whole budget."""
    free_cpus = cpus - sum(min(s.cpus, cpus) for s in running)
    free_gpus = gpus - sum(min(s.gpus, gpus) for s in running)
    chosen = []
    for step in pending:
        need_cpus, need_gpus = min(step.cpus, cpus), min(step.gpus, gpus)
        if all(name in finished for name in step.waits_for) and need_cpus <= free_cpus and need_gpus <= free_gpus:
            chosen.append(step)
            free_cpus, free_gpus = free_cpus - need_cpus, free_gpus - need_gpus
    return chosen


def simulate(steps: list[Step], cpus: int, gpus: int, seconds: Callable[[Step], float],
             finished: set[str] = frozenset()) -> dict[str, tuple[float, float]]:
    """(start, end) of each step under the runner's rule (`startable`) if each took `seconds(step)`."""
    pending = by_priority([s for s in steps if s.name not in finished], eta_seconds)
    running, done = {}, set(finished)
    times: dict[str, tuple[float, float]] = {}
    now = 0.0
    while pending or running:
        for step in startable(pending, done, [s for s, _ in running.values()], cpus, gpus):
            pending.remove(step)
            times[step.name] = (now, now + seconds(step))
            running[step.name] = (step, times[step.name][1])
        if not running:
            raise ValueError(f"steps {[s.name for s in pending]} can never start")
        now = min(end for _, end in running.values())
        for name in [n for n, (_, end) in running.items() if end <= now]:
            del running[name]
            done.add(name)
    return times


def print_plan(steps: list[Step], cpus: int, gpus: int) -> None:
    """The dry run: every command in plan order, each with what it reads and the steps it runs beside."""
    times = simulate(steps, cpus, gpus, eta_seconds)
    budget = f"{cpus} CPU slot{'s' * (cpus != 1)}" + (f" and {gpus} GPUs" if gpus else "")
    print(f"# {len(steps)} steps on {budget}; a step starts once the steps it reads have finished"
          + (f"; ETA ~{max(end for _, end in times.values()) / 60:.0f} min" if any(s.eta_s for s in steps) else ""))
    for index, step in enumerate(steps):
        start, end = times[step.name]
        beside = [o.name for o in steps if o is not step and times[o.name][0] < end and start < times[o.name][1]]
        print(f"# [{index + 1}/{len(steps)}] {step.stage}: {step.name} -> {step.output}"
              f"; reads: {', '.join(step.inputs) or '-'}" + (f"; after: {', '.join(step.after)}" if step.after else "")
              + f"; {step.cpus} CPU" + (f", {step.gpus} GPUs" if step.gpus else "")
              + (f"; runs beside: {', '.join(beside)}" if beside else ""))
        print(step.shell())


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
STOP_GRACE_S = 30  # how long a stopped step has to exit after SIGTERM before its process group is killed
_stop_requested: list[int] = []  # the signals received while `run` runs; `next_result` acts on them


@contextmanager
def stop_on_signals():
    """SIGTERM and SIGINT are recorded, and `next_result` (where `run` waits for its steps) raises CommandStopped, so
    that the steps are stopped and the output folder's lock is released on the way out. The handler only records:
    raising inside it could leave a lock (the output's) held or a just-started step unrecorded. The previous handlers
    come back after."""
    _stop_requested.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        _stop_requested.append(signum)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def stop_steps(running: dict[str, tuple[subprocess.Popen, threading.Thread]]) -> None:
    """SIGTERM to each running step's process group (the step and whatever it started), wait until each has exited
    (SIGKILL to a group still there after STOP_GRACE_S), and SIGKILL what a step left behind in its group."""
    for name, (proc, _) in running.items():
        print(f"=== stopping {name} (pid {proc.pid})", flush=True)
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.time() + STOP_GRACE_S
    for name, (proc, watcher) in running.items():
        watcher.join(max(0.0, deadline - time.time()))
        if watcher.is_alive():
            print(f"=== {name} did not exit {STOP_GRACE_S} s after SIGTERM: killing it", flush=True)
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            watcher.join(5)  # a process that left the group may still hold the output pipe open
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def run(steps: list[Step], cpus: int | None = None, gpus: int = 0, dry_run: bool = False,
        cpu_threads: bool = True) -> None:
    """`run_steps`, stopping on SIGTERM or SIGINT: the running steps are sent SIGTERM (each step's process group) and
    waited for, then CommandStopped is raised. A stopped step has no done marker, so rerunning the same command
    redoes it and skips what finished."""
    running: dict[str, tuple[subprocess.Popen, threading.Thread]] = {}
    with stop_on_signals():
        try:
            run_steps(steps, cpus, gpus, dry_run, cpu_threads, running)
        except CommandStopped as stop:
            stop.stopped = list(running)
            stop_steps(running)
            raise


def run_steps(steps: list[Step], cpus: int | None = None, gpus: int = 0, dry_run: bool = False,
              cpu_threads: bool = True, processes: dict | None = None) -> None:
    """Run every step that is not done, each as soon as what it reads has finished and it fits in the budget.

    Each step's output goes to this process's stdout, every line prefixed with the step's name. On CPU
    (`cpu_threads`), a step gets as many OpenMP threads as it holds CPU slots; an explicit OMP_NUM_THREADS wins.
    When a step fails, no new step starts; the running ones finish (a rerun skips them), then this exits.
    `processes` (step name -> (process, the thread reaping it)) holds the running steps, for `run` to stop them.
    """
    check_graph(steps)
    cpus = max(1, cpus or os.cpu_count() or 1)
    if dry_run:
        print_plan(steps, cpus, gpus)
        return
    started = time.time()
    base_env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if (CODE_ROOT / "pyproject.toml").is_file():  # a checkout: the steps import this code without an install
        base_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CODE_ROOT), os.environ.get("PYTHONPATH")]))
    number = {step.name: i + 1 for i, step in enumerate(steps)}
    pending, finished, running = by_priority(steps, eta_seconds), set(), {}
    results: queue.Queue = queue.Queue()
    failed: list[str] = []
    cpu_in_steps = 0.0  # of the steps this call ran: one process runs several plans (a seed study)
    lock = threading.Lock()
    processes = {} if processes is None else processes

    def say(text: str) -> None:
        with lock:
            print(text, flush=True)

    def launch(step: Step) -> None:
        reason = stale_reason(step, steps)
        if reason:  # SFT and GRPO refuse a folder made from other inputs, an eval a cache of another model: start over
            say(f"=== {step.name}: {reason}: emptying {step.output} and running it again")
            shutil.rmtree(step.output, ignore_errors=True)
        step.mark_started(input_ids(step, steps))
        env = dict(base_env)
        if cpu_threads:
            env.setdefault("OMP_NUM_THREADS", str(min(step.cpus, cpus)))
        remaining = simulate([s for s in steps if s.name not in finished], cpus, gpus,
                             lambda s: 0.0 if s.done() else s.eta_s, finished)
        eta = max((end for _, end in remaining.values()), default=0)
        say(f"\n=== [{number[step.name]}/{len(steps)}] stage {STAGES.index(step.stage) + 1}/{len(STAGES)} "
            f"{step.stage}: {step.name} (elapsed {(time.time() - started) / 60:.1f} min"
            + (f", ETA ~{eta / 60:.0f} min" if eta else "") + ") ===\n$ " + step.shell())
        # in the current directory, like the printed commands (their relative paths start there)
        # in a process group of its own: a stop reaches the step and all it started (accelerate's workers, vLLM's)
        proc = subprocess.Popen(step.argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        watcher = threading.Thread(target=watch, args=(step, proc, time.time()), daemon=True)
        processes[step.name] = (proc, watcher)
        watcher.start()

    def watch(step: Step, proc: subprocess.Popen, t0: float) -> None:
        tail: deque[str] = deque(maxlen=20)
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            tail.append(line)
            say(f"[{step.name}] {line}")
        proc.stdout.close()
        _, status, usage = os.wait4(proc.pid, 0)  # the child's CPU time, its reaped workers included
        proc.returncode = os.waitstatus_to_exitcode(status)
        results.put((step, proc.returncode, time.time() - t0, usage.ru_utime + usage.ru_stime, list(tail)))

    while pending or running:
        if not failed:
            settled = True
            while settled:  # skip finished steps as soon as what they read is settled
                settled = False
                for step in [s for s in pending if all(n in finished for n in s.waits_for)]:
                    if skippable(step, steps):
                        say(f"=== [{number[step.name]}/{len(steps)}] {step.stage}: {step.name}: done, skipped "
                            f"({step.output}/{DONE})")
                        pending.remove(step)
                        finished.add(step.name)
                        settled = True
            for step in startable(pending, finished, list(running.values()), cpus, gpus):
                pending.remove(step)
                running[step.name] = step
                launch(step)
        if not running:
            if pending and not failed:  # unreachable after check_graph: kept so a bug cannot end the run silently
                raise RuntimeError(f"steps {[s.name for s in pending]} can never start")
            break
        step, code, seconds, cpu_seconds, tail = next_result(results)
        del running[step.name]
        processes.pop(step.name, None)
        if code == 0:
            step.mark_done(seconds, cpu_seconds, input_ids(step, steps))
            cpu_in_steps += cpu_seconds
            finished.add(step.name)
            say(f"=== {step.name}: done in {seconds:.0f} s ({cpu_seconds:.0f} CPU-s)")
        else:
            failed.append(f"step {step.name!r} failed (exit {code}); its last lines:\n"
                          + "\n".join(f"  | {line}" for line in tail) + f"\n$ {step.shell()}")
            if running:
                say(f"=== {step.name} failed: waiting for {', '.join(running)} to finish, then stopping")
    if failed:
        raise SystemExit("\n\n".join(failed) + "\n\nRerun the same command to continue (finished steps are skipped).")
    say(f"\nall {len(steps)} steps done in {(time.time() - started) / 60:.1f} min "
        f"({cpu_in_steps:.0f} CPU-s in the steps it ran)")


def next_result(results: queue.Queue):
    """The next finished step's result; waits in slices, and raises CommandStopped once SIGTERM or SIGINT came."""
    while True:
        if _stop_requested:
            raise CommandStopped(_stop_requested[0])
        try:
            return results.get(timeout=0.5)
        except queue.Empty:
            continue


def run_grid(args, steps: list[Step], command: str, label: str, result: Path) -> int:
    """`profit-rl sweep` and `profit-rl probes`: run a grid's steps (print them with `--dry-run`) under the pipeline's
    lock on `outputs/<model>`, then print `label: result` (where the grid's report is); returns the exit code.

    A grid shares the pipeline's data step, so the lock keeps the two from ever running at once: a second command on
    the same folder stops, naming the first (`command` is what the lock records)."""
    profile = resolve_profile(args, 0)
    inside(args.output_root, profile.root, f"--model {args.model}: the output folder")
    with nullcontext() if args.dry_run else output_folder(profile.root, command):
        run(steps, cpus=args.cpus, gpus=profile.num_gpus, dry_run=args.dry_run, cpu_threads=not profile.num_gpus)
    if not args.dry_run:
        print(f"{label}: {result}")
    return 0
