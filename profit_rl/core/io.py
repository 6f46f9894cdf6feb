"""THE reader for every data file the toolkit takes in: SFT and RL data, benchmark files, `--responses`, sample caches.

    rows = read_rows("data/math_train12k/train.jsonl")     # a local file or folder, or a hub dataset id
    for row in rows:
        problem = row.text("problem", "question")                    # a non-empty string, else a DataError
        gold = row.scalar("answer")                                  # a string or a number, else a DataError

Files are .jsonl, .json (a list, `{"data": [...]}`, or JSON lines), .csv or .parquet, read here rather than by
`datasets`, so that every failure is one `DataError` naming the file, the 1-based line (text files) or row (parquet,
a JSON list, a hub dataset), the field, what was expected and what was found. Bytes that are not UTF-8 name their line;
an empty file says it is empty; a value of the wrong type is an error, never converted to a string.

It lives in `profit_rl.core`, the base layer: training, evals, the pipeline and the commands all read data through it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
MISSING = object()  # a field the row lacks, as opposed to one that holds null


class InputError(ValueError):
    """Bad input that a command reports in one line, without a traceback: the message says what to fix."""


class DataError(InputError):
    """A data file that cannot be used. The message names the file, the 1-based line or row, the field, what was
    expected and what was found; the parts are kept as attributes (`source`, `row`, `unit`, `field`) for callers."""

    def __init__(self, source: str, problem: str, *, row: int | None = None, unit: str = "line",
                 field: str | None = None):
        self.source, self.row, self.unit, self.field, self.problem = str(source), row, unit, field, problem
        where = self.source + (f", {unit} {row}" if row is not None else "") + (f", field {field!r}" if field else "")
        super().__init__(f"{where}: {problem}")


def describe(value: Any, limit: int = 60) -> str:
    """A found value for an error message: its type, and a short repr."""
    if value is None:
        return "null"
    text = repr(value)
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(value).__name__} {text}"


class Row(dict):
    """One record (a dict) that knows where it came from, with typed getters that raise a `DataError` naming it."""

    def __init__(self, data: dict, source: str, number: int, unit: str = "line"):
        super().__init__(data)
        self.source, self.number, self.unit = source, number, unit

    @property
    def where(self) -> str:
        """Where the row came from, for messages: `<source>, <unit> <number>`."""
        return f"{self.source}, {self.unit} {self.number}"

    def error(self, field: str | None, problem: str) -> DataError:
        """A DataError about this row, naming its source, number and `field` (None: the row as a whole)."""
        return DataError(self.source, problem, row=self.number, unit=self.unit, field=field)

    def wrong(self, field: str, expected: str, value: Any = MISSING) -> DataError:
        """`field`: expected <expected>, found <value> (or 'missing' when the row lacks it)."""
        found = "the field is missing" if value is MISSING else f"found {describe(value)}"
        return self.error(field, f"expected {expected}, {found}")

    def pick(self, *names: str, expected: str = "a value", required: bool = True) -> tuple[str | None, Any]:
        """(name, value) of the first of `names` the row has with a non-null value: local files and hub datasets spell
        some fields differently. Missing and required: a DataError naming every accepted spelling."""
        for name in names:
            if self.get(name) is not None:
                return name, self[name]
        if required:
            present = [name for name in names if name in self]  # present, but null
            raise self.wrong(present[0], expected, None) if present else self.wrong(" or ".join(names), expected)
        return None, None

    def text(self, *names: str, required: bool = True, empty: bool = False) -> str | None:
        """A string field (the first of `names` present); non-empty unless `empty`."""
        expected = "a string" if empty else "a non-empty string"
        name, value = self.pick(*names, expected=expected, required=required)
        if name is not None and (not isinstance(value, str) or not (empty or value.strip())):
            raise self.wrong(name, expected, value)
        return value

    def scalar(self, *names: str, required: bool = True) -> str | None:
        """A string or a number (an id, a gold answer), as a string; lists, dicts and booleans are errors."""
        expected = "a non-empty string or a number"
        name, value = self.pick(*names, expected=expected, required=required)
        if name is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) or not str(value).strip():
            raise self.wrong(name, expected, value)
        return value if isinstance(value, str) else str(value)

    def integer(self, *names: str, minimum: int | None = None) -> int:
        """An integer: a JSON number without a fraction, or a string of digits (CSV holds only strings)."""
        expected = "an integer" + (f" >= {minimum}" if minimum is not None else "")
        name, value = self.pick(*names, expected=expected)
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            number = int(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            raise self.wrong(name, expected, value)
        if minimum is not None and number < minimum:
            raise self.wrong(name, expected, value)
        return number

    def real(self, *names: str) -> float:
        """A number: a JSON number, or a string that reads as one (CSV holds only strings)."""
        name, value = self.pick(*names, expected="a number")
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        raise self.wrong(name, "a number", value)

    def string_list(self, *names: str) -> list[str]:
        """A non-empty list of strings."""
        name, value = self.pick(*names, expected="a list of strings")
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise self.wrong(name, "a non-empty list of strings", value)
        return value


class Rows(Sequence):
    """The records of one source, as `Row`s: a list read from local files, or a hub dataset read row by row (hub
    datasets can hold millions of rows; selection picks indices before any row is converted)."""

    def __init__(self, source: str, items, unit: str = "row"):
        self.source, self._items, self._unit = source, items, unit

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        item = self._items[index]
        if isinstance(item, Row):
            return item
        return Row(dict(item), self.source, index + 1, self._unit)

    def __iter__(self) -> Iterator[Row]:
        for index in range(len(self)):
            yield self[index]

    @property
    def columns(self) -> list[str]:
        """The column names: a hub dataset's own, or the keys of every row of a local file in first-seen order."""
        names = getattr(self._items, "column_names", None)
        if names is not None:
            return list(names)
        return list(dict.fromkeys(key for row in self._items for key in row))

    def column(self, name: str) -> list:
        """The values of one column, in row order; None where a row (or the whole dataset) lacks it."""
        if hasattr(self._items, "column_names"):
            return list(self._items[name]) if name in self._items.column_names else [None] * len(self)
        return [row.get(name) for row in self._items]


# ---------------------------------------------------------------------------------------------------------------------
# Local files


def _decode(raw: bytes, source: str) -> str:
    """UTF-8 text (a leading BOM dropped); bytes that are not UTF-8 name their line and column."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise DataError(source, f"not UTF-8 text: byte 0x{raw[err.start]:02x} at column {column} ({err.reason}); "
                        "save the file as UTF-8", row=line) from None


def parse_jsonl(raw: bytes, source: str) -> list[Row]:
    """JSON Lines: one object per line, blank lines skipped; each Row keeps its line number."""
    rows = []
    for number, line in enumerate(_decode(raw, source).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            csv_like = "," in line and not line.lstrip().startswith(("{", "["))
            found = "CSV-like text" if csv_like else describe(line, 40)
            raise DataError(source, f"expected a JSON object, found {found} (not valid JSON: {err.msg} at column "
                            f"{err.colno})", row=number) from None
        if not isinstance(value, dict):
            raise DataError(source, f"expected a JSON object, found {describe(value)}", row=number)
        rows.append(Row(value, source, number, "line"))
    return rows


def _parse_json(raw: bytes, source: str) -> list[Row]:
    text = _decode(raw, source)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        if err.msg == "Extra data":  # JSON lines in a .json file (what `Dataset.to_json` writes)
            return parse_jsonl(raw, source)
        raise DataError(source, f"not valid JSON: {err.msg} at column {err.colno}", row=err.lineno) from None
    if isinstance(data, dict):
        lists = [key for key in ("data", "rows") if isinstance(data.get(key), list)]
        if not lists:
            raise DataError(source, "expected a JSON list of objects, or an object with a 'data' list; found an "
                            f"object with keys {sorted(data)[:8]}")
        data = data[lists[0]]
    if not isinstance(data, list):
        raise DataError(source, f"expected a JSON list of objects, found {describe(data)}")
    rows = []
    for number, value in enumerate(data, start=1):
        if not isinstance(value, dict):
            raise DataError(source, f"expected a JSON object, found {describe(value)}", row=number, unit="row")
        rows.append(Row(value, source, number, "row"))
    return rows


def _parse_csv(raw: bytes, source: str) -> list[Row]:
    text = _decode(raw, source)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
        rows, start = [], reader.line_num + 1
        for values in reader:
            if values:
                if len(values) != len(header):
                    raise DataError(source, f"expected {len(header)} comma-separated values (the header's "
                                    f"{header}), found {len(values)}", row=start)
                rows.append(Row(dict(zip(header, values)), source, start, "line"))
            start = reader.line_num + 1
    except csv.Error as err:
        raise DataError(source, f"not valid CSV ({err})", row=reader.line_num) from None
    return rows


def _parse_parquet(path: Path, source: str) -> list[Row]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise DataError(source, f"expected a Parquet file, found other bytes ({err})") from None
    return [Row(value, source, number, "row") for number, value in enumerate(table.to_pylist(), start=1)]


_BINARY = ((b"PAR1", "Parquet"), (b"\x1f\x8b", "gzip-compressed"), (b"PK\x03\x04", "zip"))


def read_file(path: str | os.PathLike) -> Rows:
    """The records of one .jsonl / .json / .csv / .parquet file. An empty file, or one without records, is an error."""
    path = Path(path)
    source = str(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(source, f"expected a {', '.join(SUFFIXES)} file, found {suffix or 'no suffix'}")
    if not path.is_file():
        raise DataError(source, "no such file")
    if suffix == ".parquet":
        rows = _parse_parquet(path, source)
    else:
        raw = path.read_bytes()
        if not raw.strip():
            raise DataError(source, "the file is empty")
        for magic, kind in _BINARY:
            if raw.startswith(magic):
                raise DataError(source, f"expected {suffix} text, found {kind} bytes", row=1)
        rows = {".jsonl": parse_jsonl, ".json": _parse_json, ".csv": _parse_csv}[suffix](raw, source)
    if not rows:
        raise DataError(source, "the file holds no records (it is empty apart from blank lines or a header)")
    return Rows(source, rows)


def local_files(path: Path, split: str = "train") -> list[Path]:
    """A file, or in a folder its `<split>` file (`train.jsonl`, ...), else every data file it holds."""
    if path.is_file():
        return [path]
    own = [path / f"{split}{suffix}" for suffix in SUFFIXES if (path / f"{split}{suffix}").is_file()]
    if own:
        return own[:1]
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not files:
        raise DataError(str(path), f"expected {split}.jsonl or other {', '.join(SUFFIXES)} files in this folder, "
                        f"found {sorted(p.name for p in path.iterdir())[:10]}")
    return files


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def looks_like_hub_id(name: str) -> bool:
    """`org/name` or `name`: what the hub accepts. A path (`./x`, `/x`, `a/b/c`, `x/..`, `x.jsonl`) is not one."""
    return bool(_HUB_ID.fullmatch(name)) and ".." not in name and not name.endswith(SUFFIXES)


def read_url(url: str) -> Rows:
    """The records of a data file at an http(s) URL, read through `datasets` (which caches the download)."""
    suffix = Path(urlparse(url).path).suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(url, f"expected the URL of a {', '.join(SUFFIXES)} file, found {suffix or 'no suffix'}")
    from datasets import load_dataset

    try:
        dataset = load_dataset({".jsonl": "json", ".json": "json"}.get(suffix, suffix[1:]), data_files=url,
                               split="train")
    except Exception as err:  # offline, a moved file, a broken download: one message, with the cause
        offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("0", "", "false")
        hint = " (HF_HUB_OFFLINE is set: download it once, then pass the local file instead)" if offline else ""
        raise DataError(url, f"could not load this file{hint}: {type(err).__name__}: {err}"[:800]) from err
    if len(dataset) == 0:
        raise DataError(url, "the file holds no records")
    return Rows(url, dataset, unit="row")


def read_rows(source: str | os.PathLike, split: str = "train", config: str | None = None) -> Rows:
    """Records from a local file or folder, an http(s) URL of a data file, or a hub dataset id (`split`, optional
    `config`)."""
    name = str(source)
    if name.startswith(("http://", "https://")):
        return read_url(name)
    path = Path(os.path.expanduser(name))
    if path.exists():
        files = local_files(path, split)
        if len(files) == 1:
            return read_file(files[0])
        parts = [read_file(f) for f in files]
        return Rows(str(path), [row for part in parts for row in part])
    if not looks_like_hub_id(name):
        raise DataError(name, "no such file or folder")
    from datasets import load_dataset

    where = f"{name}[{split}]" if config is None else f"{name}/{config}[{split}]"
    try:
        dataset = load_dataset(name, config, split=split)
    except Exception as err:  # offline, unknown id, gated, a broken file on the hub: one message, with the cause
        offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("0", "", "false")
        hint = " (HF_HUB_OFFLINE is set: pass a local .jsonl/.json/.csv/.parquet path instead)" if offline else ""
        raise DataError(where, f"could not load this hub dataset{hint}: {type(err).__name__}: {err}"[:800]) from err
    if len(dataset) == 0:
        raise DataError(where, "the dataset is empty")
    return Rows(where, dataset, unit="row")


# ---------------------------------------------------------------------------------------------------------------------
# YAML recipes

MAX_YAML_NODES = 100_000  # a recipe has ~100 nodes; a "billion laughs" alias chain expands to millions


def check_yaml(path: str | os.PathLike, what: str = "--config") -> None:
    """Refuse a YAML file whose aliases expand beyond MAX_YAML_NODES nodes (an alias bomb), before any parser builds
    it: the expanded size is counted on the composed node graph, where an alias is one shared node."""
    import yaml

    try:
        root = yaml.compose(Path(path).read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        raise InputError(f"{what} {path}: not valid YAML: {err}") from None
    sizes: dict[int, int] = {}

    def size(node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        sizes[id(node)] = 1  # a node that contains itself counts once, then the expansion below bounds it
        if isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(key) + size(value) for key, value in node.value)
        else:
            total = 1
        sizes[id(node)] = min(total, MAX_YAML_NODES + 1)
        return sizes[id(node)]

    if root is not None and size(root) > MAX_YAML_NODES:
        raise InputError(f"{what} {path}: its aliases (*name) expand to more than {MAX_YAML_NODES:,} values; a recipe "
                         "never needs that many (an alias bomb?). Write the values out, or use fewer nested aliases")


def load_yaml(path: str | os.PathLike, what: str = "recipe") -> Any:
    """A YAML file's contents (`check_yaml` first); errors name the file."""
    import yaml

    check_yaml(path, what)
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
