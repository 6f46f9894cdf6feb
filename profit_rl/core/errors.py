"""User errors as one line, `profit-rl CMD: message`, and an exit code; the traceback only behind `--debug`.

    @command_errors("sft")
    def main(argv: list[str] | None = None) -> int:
        ...                                  # raise InputError(...) (or UsageError) for anything the user can fix

Every command's `main` goes through `command_errors`, so a user error reads the same everywhere: a bad input file or
flag (`InputError`, `UsageError` for a flag or argument: exit 2), a folder that cannot be written (read-only, no
permission), a full disk, a missing file. Anything else is a bug and keeps its traceback. `--debug` (or
`PROFIT_RL_DEBUG=1`) shows the traceback of user errors too. It lives in core/, the lowest layer every command imports.
"""

from __future__ import annotations

import errno
import functools
import os
import re
import signal
import sys
from collections.abc import Callable

from .io import InputError

DEBUG_FLAG = "--debug"
DEBUG_ENV = "PROFIT_RL_DEBUG"


class UsageError(InputError):
    """A bad flag or argument value, found while parsing (`--tau 1.5`, `--config nope.yaml`): exit code 2, as
    argparse's own usage errors."""


class CommandStopped(Exception):
    """A command stopped by SIGTERM or SIGINT after stopping what it ran; exit code 128 + the signal's number, as a
    shell reports a process killed by it. `stopped` names what was running."""

    def __init__(self, signum: int, stopped: list[str] | None = None):
        self.signum, self.stopped = signum, stopped or []
        super().__init__(signum)

    def __str__(self) -> str:
        name = signal.Signals(self.signum).name
        what = (f"stopped {', '.join(self.stopped)} and waited for {'it' if len(self.stopped) == 1 else 'them'} to "
                "exit. " if self.stopped else "")
        return (f"{name} received: {what}Rerun the same command to continue: finished steps are skipped, stopped "
                "ones rerun")


def pop_debug(argv: list[str]) -> tuple[list[str], bool]:
    """`argv` without a standalone `--debug`, and whether it (or PROFIT_RL_DEBUG=1) was there. `--debug VALUE` is left
    alone: it is TrainingArguments' own option (`--debug underflow_overflow`)."""
    argv, debug = list(argv), os.environ.get(DEBUG_ENV, "").lower() in ("1", "true", "yes")
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == DEBUG_FLAG and (i + 1 == len(argv) or argv[i + 1].startswith("-")):
            del argv[i]
            return argv, True
    return argv, debug


def _where(err: OSError) -> str:
    name = err.filename if err.filename is not None else ""
    return f"{name}: " if name else ""


def user_message(err: BaseException) -> str | None:
    """The one line a user reads for `err`, or None when `err` is not a user error (a bug: its traceback stays)."""
    if isinstance(err, (InputError, CommandStopped)):
        return str(err)
    if isinstance(err, OSError):
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            return (f"{_where(err)}no space left on the device (disk full). Free space or write to another folder, "
                    "then rerun the same command: finished work is kept")
        if err.errno == errno.EROFS:
            return f"{_where(err)}the folder is on a read-only file system; write to another folder"
        if err.errno in (errno.EACCES, errno.EPERM):
            return f"{_where(err)}permission denied; write to a folder you own, or fix its permissions"
        if isinstance(err, FileNotFoundError) and err.filename is not None:
            return f"{err.filename}: no such file or folder"
    return None


def config_path(argv: list[str]) -> str | None:
    """The value of `--config` in `argv` (TRL's parsers read the recipe from it), or None."""
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return None


def _flag_of(message: str, argv: list[str]) -> str | None:
    """`--tau 1.5` when `message` starts with a field that argv sets (`tau must be in (0, 1), got 1.5`)."""
    word = re.match(r"[A-Za-z_][\w]*", message)
    if not word:
        return None
    name = word.group(0)
    for i, arg in enumerate(argv):
        flag, _, inline = arg.partition("=")
        if flag.lstrip("-").replace("-", "_") == name and arg.startswith("--"):
            value = inline or (argv[i + 1] if i + 1 < len(argv) and not inline else "")
            return f"{flag} {value}".strip()
    return None


def parse_command_line(parse: Callable[[list[str]], object], argv: list[str]):
    """`parse(argv)` (a TrlParser's `parse_args_and_config`), with its errors as one UsageError naming the flag or the
    file: `--config nope.yaml: no such file`, `--tau 1.5: tau must be in (0, 1), got 1.5`. The recipe is checked for
    alias bombs first (`core.io.check_yaml`)."""
    from .io import check_yaml

    config = config_path(argv)
    if config is not None:
        if not os.path.isfile(config):
            raise UsageError(f"--config {config}: no such file")
        try:
            check_yaml(config, "--config")
        except InputError as err:
            raise UsageError(str(err)) from None
    try:
        return parse(argv)
    except InputError:
        raise
    except (ValueError, TypeError) as err:
        flag = _flag_of(str(err), argv)
        where = flag or (f"--config {config}" if config else "arguments")
        raise UsageError(f"{where}: {err}") from err


def exit_code(err: BaseException) -> int:
    """The exit code for `err`: 128 + the signal number for a command stopped by a signal, 2 for a usage error, 1 for
    any other error."""
    if isinstance(err, CommandStopped):
        return 128 + err.signum
    return 2 if isinstance(err, UsageError) else 1


def report(command: str, err: BaseException) -> int:
    """Print `profit-rl COMMAND: message` for a user error and return its exit code; re-raise anything else."""
    message = user_message(err)
    if message is None:
        raise err
    print(f"profit-rl {command}: {message}", file=sys.stderr)
    return exit_code(err)


def command_errors(command: str) -> Callable:
    """Decorate a command's `main(argv)`: user errors become one line and an exit code (`report`), the traceback
    only with `--debug` or PROFIT_RL_DEBUG=1 (which is passed on to the processes the command starts)."""

    def decorate(main: Callable[[list[str]], int]) -> Callable[[list[str] | None], int]:
        @functools.wraps(main)
        def wrapper(argv: list[str] | None = None) -> int:
            argv, debug = pop_debug(sys.argv[1:] if argv is None else argv)
            before = os.environ.get(DEBUG_ENV)
            if debug:  # for the processes this command starts (the pipeline's steps)
                os.environ[DEBUG_ENV] = "1"
            try:
                return main(argv)
            except Exception as err:
                if debug or user_message(err) is None:
                    raise
                return report(command, err)
            finally:
                if before is None:
                    os.environ.pop(DEBUG_ENV, None)
                else:
                    os.environ[DEBUG_ENV] = before

        return wrapper

    return decorate
