"""Output folders: one run at a time, nothing left behind by a run that fails before writing, names kept inside roots.

    with output_folder(out_dir, "profit-rl eval"):      # FolderInUseError if another live run holds it
        ...                                             # a failure here removes the folder if it is still empty

The lock is `fcntl.flock` on `<folder>/.lock`, which the kernel releases when its process dies however it dies, so a
killed run never blocks the next one; the file holds the holder's pid, host, command and start time, for the message a
second run gets and for the line the next run logs when it takes over what a killed run left.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from .io import InputError

logger = logging.getLogger(__name__)

LOCK_FILE = ".lock"
_held: dict[Path, list] = {}  # folder -> [fd, depth]: a process may enter a folder it already holds


class FolderInUseError(InputError):
    """Another live run holds the output folder; the message names it."""


def _holder_text(info: dict) -> str:
    if not info:
        return "an unknown process"
    return (f"pid {info.get('pid')} on {info.get('host')} (command: {info.get('command')}; started "
            f"{info.get('started')})")


def _pid_alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError, TypeError):
        return False
    except PermissionError:
        return True
    return True


def _read_info(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 65536)
    try:
        info = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {"command": f"unreadable lock file ({len(raw)} bytes)"}
    return info if isinstance(info, dict) else {}


def acquire(folder: str | os.PathLike, command: str | None = None) -> Path:
    """Take the lock of `folder` (made if missing) for this process, or raise FolderInUseError naming its holder."""
    folder = Path(folder).resolve()
    if folder in _held:
        _held[folder][1] += 1
        return folder
    for _ in range(10):
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:  # the folder was removed in between (a failed run cleaning up): make it again
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = _read_info(fd)
            os.close(fd)
            raise FolderInUseError(
                f"{folder} is in use by {_holder_text(info)}. Wait for it to finish, or use another --output-dir; if "
                "that process is gone, the lock is released by itself."
            ) from None
        try:
            same_file = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same_file = False
        if not same_file:  # the previous holder removed the file while we opened it: lock the new one instead
            os.close(fd)
            continue
        previous = _read_info(fd)
        if previous:
            gone = "is no longer running" if not _pid_alive(previous.get("pid")) else "no longer holds it"
            logger.warning("%s: taking over the lock left by %s, which %s", folder, _holder_text(previous), gone)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": command or " ".join(sys.argv),
                "started": time.strftime("%Y-%m-%d %H:%M:%S %z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        _held[folder] = [fd, 1]
        return folder
    raise FolderInUseError(f"{folder}: could not take its lock (the folder kept disappearing)")


def release(folder: str | os.PathLike) -> None:
    """Drop one hold on `folder`'s lock (`acquire`); the last one removes the lock file and unlocks it. A folder this
    process does not hold is left alone."""
    folder = Path(folder).resolve()
    entry = _held.get(folder)
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] > 0:
        return
    del _held[folder]
    try:
        os.unlink(folder / LOCK_FILE)  # while still holding it: the next run starts from a clean folder
    except FileNotFoundError:
        pass
    os.close(entry[0])


def _first_missing(path: Path) -> Path | None:
    """The outermost folder of `path` that does not exist yet (what this run would create), or None."""
    missing = None
    for candidate in [path, *path.parents]:
        if candidate.exists():
            break
        missing = candidate
    return missing


def _remove_if_empty(folder: Path) -> bool:
    """Remove `folder` and its sub-folders if none holds a file; True when removed."""
    if not folder.is_dir():
        return False
    children = list(folder.iterdir())
    if any(not (child.is_dir() and not child.is_symlink()) for child in children):
        return False
    if all(_remove_if_empty(child) for child in children):
        try:
            folder.rmdir()
            return True
        except OSError:
            return False
    return False


@contextmanager
def output_folder(folder: str | os.PathLike, command: str | None = None):
    """Hold `folder`'s lock for the block; if the block raises and the folder holds nothing, remove what it created."""
    folder = Path(folder)
    created = _first_missing(folder.resolve())
    held = acquire(folder, command)
    try:
        yield held
    except BaseException:
        release(held)
        if created is not None and _remove_if_empty(created):
            logger.info("removed %s: the run stopped before writing anything", created)
        raise
    release(held)


# ---------------------------------------------------------------------------------------------------------------------
# Names that become folders


_NAME = re.compile(r"[A-Za-z0-9][\w.+-]*")


def is_plain_name(name: str) -> bool:
    """Letters, digits and `_ . + -`, starting with a letter or digit, without `..`: safe as one folder name."""
    return bool(_NAME.fullmatch(name)) and ".." not in name


def check_name(name: str, what: str) -> str:
    """A user-given name used as one folder name (a method, a recipe): `name` itself if plain, else an InputError."""
    if not is_plain_name(name):
        raise InputError(f"{what} {name!r}: expected a plain name (letters, digits, '_', '.', '+', '-'; no '/' and no "
                         "'..'), as it names a folder")
    return name


def folder_name(text: str, what: str) -> str:
    """A label as one folder name: path separators become '__'; a name that is empty, '.' or '..' is refused."""
    name = text.replace("/", "__").replace("\\", "__").strip()
    if name in ("", ".", "..") or name.startswith(".."):
        raise InputError(f"{what} {text!r}: cannot name a folder (it would be {name!r})")
    return name


def inside(root: str | os.PathLike, path: str | os.PathLike, what: str) -> Path:
    """`path` resolved, refused when it is not inside `root` (a name with `..` would write elsewhere)."""
    root, resolved = Path(root).resolve(), Path(path).resolve()
    if resolved != root and not resolved.is_relative_to(root):
        raise InputError(f"{what} {path} resolves to {resolved}, outside {root}; use a name without '..'")
    return resolved
