"""What a run was made from: the identity of a model's weights, of a data file, and the record an output folder keeps.

    weights_identity("outputs/embedded/profit/sft")   # {"sha256": "9f1c...", "files": 7}; a hub id: the id itself
    data_identity("data/sft/train.jsonl")
    check_inputs(out_dir, inputs, way_out="pass --overwrite_output_dir to start over")   # refuses other inputs
    write_inputs(out_dir, inputs, finished=...)

A model is identified by what it computes, not by its path: the sha256 over the files that decide its outputs (weights,
config, generation config, tokenizer, chat template; a LoRA adapter's base model too). Files up to 64 MiB are hashed
whole, so the tiny and embedded models (and most adapters) are identified exactly. A larger file (a 14B model's 5 GB
shards) is identified by its size, its first MiB (the safetensors JSON header: every tensor's name, dtype, shape and
offset) and 64 blocks of 64 KiB spread evenly over the rest: about 5 MB read per shard instead of 28 GB per 14B model,
which would take minutes of every eval and every curve point. The header alone would not do: a retrained model has the
same header and size; but training changes every tensor it touches, so it changes the sampled blocks too (a LoRA merge
that touches a fifth of the bytes leaves all 64 blocks alike with probability 0.8^64, about 1e-6).

An output folder records its inputs in `inputs.json` (written atomically, core.state). A run that finds the record
of other inputs refuses, naming each field that differs and the flag that starts over; a run that finds a folder
holding a run but no record refuses too, since what made it cannot be known.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .io import InputError
from .state import read_json_state, write_json_atomic

INPUTS_FILE = "inputs.json"
WHOLE_FILE_LIMIT = 64 << 20  # hashed whole up to this size
HEAD_BYTES = 1 << 20  # a large file's first MiB: the safetensors header
BLOCK_BYTES, N_BLOCKS = 64 << 10, 64  # sampled blocks of a large file
# the files of a model folder that decide what it computes (trainer_state.json, optimizer.pt, training_args.bin,
# logs and our own records do not)
MODEL_FILES = ("config.json", "generation_config.json", "adapter_config.json", "tokenizer.json",
               "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt",
               "tokenizer.model", "chat_template.jinja", "chat_template.json")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
NOT_WEIGHTS = ("training_args.bin", "optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state.pth")


class InputsChangedError(InputError):
    """An output folder holds a run made from other inputs; the message names the fields and the way out."""


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a file: whole up to WHOLE_FILE_LIMIT, else of its size, first MiB and N_BLOCKS sampled blocks."""
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256()
    with open(path, "rb") as f:
        if size <= WHOLE_FILE_LIMIT:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
            return h.hexdigest()
        h.update(f"sampled:{size}:".encode())
        h.update(f.read(HEAD_BYTES))
        span = size - HEAD_BYTES - BLOCK_BYTES
        for i in range(N_BLOCKS + 1):  # the last block ends at the file's end
            f.seek(HEAD_BYTES + span * i // N_BLOCKS)
            h.update(f.read(BLOCK_BYTES))
    return h.hexdigest()


def is_model_file(name: str) -> bool:
    """Whether a file of a model folder decides what the model computes (config, tokenizer, chat template or weights),
    and so goes into its identity; optimizer, scheduler, RNG state and training args do not."""
    return name in MODEL_FILES or (name.endswith(WEIGHT_SUFFIXES) and name not in NOT_WEIGHTS
                                   and not name.startswith("rng_state"))


def weights_identity(model: str | os.PathLike) -> dict:
    """{"sha256", "files"} of a local model folder (a LoRA adapter's base model included); a hub id: {"hub": id}."""
    path = Path(os.path.expanduser(str(model)))
    if not path.is_dir():
        return {"hub": str(model)}
    files = sorted(p for p in path.iterdir() if p.is_file() and is_model_file(p.name))
    h = hashlib.sha256()
    for p in files:
        h.update(f"{p.name}\x00{file_digest(p)}\x00".encode())
    identity = {"sha256": h.hexdigest(), "files": len(files)}
    adapter = path / "adapter_config.json"
    if adapter.is_file():
        try:
            base = json.loads(adapter.read_text(encoding="utf-8")).get("base_model_name_or_path")
        except (ValueError, AttributeError):
            base = None
        if base:
            identity["base_model"] = weights_identity(base)
    return identity


def data_identity(source: str | os.PathLike) -> dict:
    """{"sha256"} of a local data file or of a folder's data files; a hub dataset (or URL): {"hub": id}."""
    path = Path(os.path.expanduser(str(source)))
    if path.is_file():
        return {"sha256": file_digest(path)}
    if path.is_dir():
        h = hashlib.sha256()
        for p in sorted(q for q in path.rglob("*") if q.is_file() and not q.name.startswith(".")):
            h.update(f"{p.relative_to(path)}\x00{file_digest(p)}\x00".encode())
        return {"sha256": h.hexdigest()}
    return {"hub": str(source)}


# ---------------------------------------------------------------------------------------------------------------------
# The record of an output folder


def read_inputs(folder: str | os.PathLike, way_out: str) -> dict | None:
    """The folder's inputs record, or None when it has none."""
    path = Path(folder) / INPUTS_FILE
    if not path.is_file():
        return None
    record = read_json_state(path, "record of the run's inputs", way_out)
    if not isinstance(record, dict) or not isinstance(record.get("inputs"), dict):
        raise InputsChangedError(f"{path}: this record of the run's inputs holds no 'inputs' object. {way_out}")
    return record


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: value}


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text[:12] + "..." if isinstance(value, str) and len(value) == 64 else text[:60]


def differences(recorded: dict, now: dict) -> list[str]:
    """`field: recorded -> now` for every field of two inputs records that differs (nested fields dotted)."""
    old, new = _flat(recorded), _flat(now)
    return [f"{key}: {_short(old.get(key, '(none)'))} -> {_short(new.get(key, '(none)'))}"
            for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]


def check_inputs(folder: str | os.PathLike, inputs: dict, way_out: str, holds_a_run: bool) -> dict | None:
    """The folder's record when it was made from `inputs` (None when the folder holds no run yet); an
    InputsChangedError naming each field that differs and `way_out` when it was made from other inputs, or holds a
    run (`holds_a_run`) that recorded none."""
    record = read_inputs(folder, way_out)
    if record is None:
        if holds_a_run:
            raise InputsChangedError(f"{folder} holds a run that recorded no inputs ({INPUTS_FILE} is missing: "
                                     f"another tool or an older profit-rl made it), so it cannot be resumed or reused. "
                                     f"Use another output folder, or {way_out}")
        return None
    diff = differences(record["inputs"], inputs)
    if diff:
        raise InputsChangedError(f"{folder} holds a run made from other inputs (" + "; ".join(diff) + "). Use another "
                                 f"output folder, or {way_out}")
    return record


def write_inputs(folder: str | os.PathLike, inputs: dict, **extra) -> Path:
    """Record `inputs` (and `extra` fields such as `finished`) in the folder, atomically."""
    return write_json_atomic(Path(folder) / INPUTS_FILE, {"inputs": inputs, **extra})
