"""One step of a pipeline run: its shell command, the steps it reads, and the markers that say it started or finished.

A step writes under its `output` folder. While it runs, `.started.json` holds its command and inputs; when its command
exits 0, `.done.json` holds the command, a new run id, the run ids of the steps it read, and the sha256 of the recipe
and data files the command names. `profit_rl.pipeline.scheduler` reads them to skip, continue or redo a step.
"""

from __future__ import annotations

import os
import shlex
import uuid
from dataclasses import dataclass
from pathlib import Path

from profit_rl.core.identity import file_digest
from profit_rl.core.state import StateFileError, read_json_state, write_json_atomic
from profit_rl.deprecated import MOVED_MODULES

STAGES = ("data", "sft", "eval", "grpo", "curves", "report")
DONE = ".done.json"
# files named in a step's command whose content its marker records (recipes, data); not the interpreter, not models
TRACKED_SUFFIXES = (".yaml", ".yml", ".jsonl", ".json", ".csv", ".parquet", ".jinja")
STARTED = ".started.json"  # a step's command and inputs while it runs: a killed step resumes only on the same ones


def current_modules(argv: list) -> list:
    """argv with each `-m MODULE` named by its current path (profit_rl.deprecated.MOVED_MODULES)."""
    return [MOVED_MODULES.get(arg, arg) if i and argv[i - 1] == "-m" else arg for i, arg in enumerate(argv)]


@dataclass
class Step:
    """One shell command of the run, and what it needs from the others.

    Args:
        stage: one of STAGES (the banner's "stage i/6").
        name: unique within a plan; other steps name it in their `inputs`.
        argv: the command, run from the repository root.
        output: the folder this step fills; its DONE marker says it is complete.
        inputs: names of the steps whose outputs this one reads. It starts only after they finished, and a finished
            run of it is stale (reruns) when one of them finished after it did.
        after: names of steps it only waits for (the checks): they never make it stale.
        cpus: CPU slots it holds while running (on CPU, its OpenMP threads).
        gpus: GPUs it holds while running.
        eta_s: rough expected seconds, for the banner's ETA and the dry run's schedule.
    """

    stage: str
    name: str
    argv: list[str]
    output: Path
    inputs: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    cpus: int = 1
    gpus: int = 0
    eta_s: float = 0.0

    def marker(self, name: str = DONE) -> dict | None:
        """The step's done marker (or its start record), None when it has none; an unreadable one names itself."""
        path = self.output / name
        if not path.is_file():
            return None
        info = read_json_state(path, "pipeline step's marker",
                               f"Delete it to run the step again: rm {shlex.quote(str(path))}")
        if not isinstance(info, dict):
            raise StateFileError(f"{path}: this pipeline step's marker is not a JSON object. Delete it to run the step "
                                 "again.")
        return info

    def done(self) -> bool:
        """Finished with this command (whether what it read is still current is `changed_inputs`' question)."""
        info = self.marker()
        return info is not None and self.same_command(info.get("argv"))

    def same_command(self, recorded) -> bool:
        """A recorded command equals this step's when they differ at most in a module that moved (`python -m
        profit_rl.evals.cli` is `python -m profit_rl.evals.evaluate`): a rename reruns nothing."""
        return isinstance(recorded, list) and current_modules(recorded) == current_modules(self.argv)

    def run_id(self) -> str | None:
        """The id of the finished run of this step: a new one each time it runs, so its readers see that it ran."""
        info = self.marker()
        return info.get("run_id") if info else None

    def files(self) -> dict[str, str]:
        """sha256 of each recipe and data file the command names: an edited recipe, or data changed in place, makes
        the step's output stale as a changed command does."""
        return {arg: file_digest(arg) for arg in self.argv[1:]
                if arg.endswith(TRACKED_SUFFIXES) and os.path.isfile(arg)}

    def mark_started(self, inputs: dict | None = None) -> None:
        """Write the start record (the command, the run ids of the steps it reads, the digests of the files it
        names): a killed step resumes only on the same ones."""
        write_json_atomic(self.output / STARTED, {"argv": self.argv, "inputs": inputs or {}, "files": self.files()},
                          indent=1)

    def mark_done(self, seconds: float, cpu_seconds: float | None = None, inputs: dict | None = None) -> None:
        """Write the done marker: the command, a new run id, the run ids of the steps it read (`inputs`), and the
        digests of the files it names."""
        info = {"argv": self.argv, "run_id": uuid.uuid4().hex, "inputs": inputs or {}, "files": self.files(),
                "seconds": round(seconds, 1)}
        if cpu_seconds is not None:
            info["cpu_seconds"] = round(cpu_seconds, 1)
        write_json_atomic(self.output / DONE, info, indent=1)  # a disk that fills mid-write leaves no empty marker
        try:
            (self.output / STARTED).unlink()
        except FileNotFoundError:
            pass

    def shell(self) -> str:
        """The step's command as a shell line."""
        return shlex.join(self.argv)

    @property
    def waits_for(self) -> tuple[str, ...]:
        """The steps this one waits for: those it reads, then those it only runs after."""
        return self.inputs + self.after
