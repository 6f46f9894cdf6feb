"""State files written atomically, and read back with errors that name the file and the way out.

Every file a run records its state in (done markers, results, reports, caches' headers, identity records) is written
with `write_text_atomic` / `write_json_atomic`: a temporary file in the same folder, fsync, rename. A reader never sees
half a file, and a disk that fills mid-write leaves the old file (or none), never an empty or truncated one.

    write_json_atomic(folder / "results.json", results)
    results = read_json_state(folder / "results.json", "eval results", way_out="rerun `profit-rl eval` with --overwrite")
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .io import InputError


class StateFileError(InputError):
    """A state file (a done marker, results, a cache header) is unreadable; the message names it and the way out."""


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file in the same folder, fsync'd, then renamed over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # the rename itself survives a crash only once the folder's entry is on disk
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """`write_bytes_atomic` of UTF-8 text."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, data: Any, indent: int | None = 2) -> Path:
    """`data` as JSON, atomically. NaN and infinity are refused: they are not JSON, and no reader parses them."""
    return write_text_atomic(path, json.dumps(data, indent=indent, ensure_ascii=False, allow_nan=False) + "\n")


def read_json_state(path: str | os.PathLike, what: str, way_out: str) -> Any:
    """The JSON in `path`, or StateFileError naming the file, what it is and `way_out` (the command or flag that
    starts over) when it is empty, truncated or not JSON. A missing file raises FileNotFoundError as usual."""
    path = Path(path)
    raw = path.read_bytes()
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        problem = "is empty" if not raw.strip() else f"is not valid JSON ({error})"
        raise StateFileError(f"{path}: this {what} {problem}. {way_out}") from None
