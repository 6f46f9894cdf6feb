"""Model folders and training checkpoints, shared by training (profit_rl) and evals: what a local model folder is,
checked before any hub lookup, and which `checkpoint-N` a run resumes from.

A name that exists on disk must be a model folder (`config.json`) or a LoRA adapter folder (`adapter_config.json`);
a name that does not exist is a hub id only when it looks like one (`org/name`), and a path otherwise, so a mistyped
folder says "no such folder" instead of a hub error about repo ids.

SFT and GRPO resume from the last *complete* checkpoint (`resolve_resume`): one whose save was killed is skipped, with
a log line. The curves list every checkpoint with `checkpoint_dirs`.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

from .io import InputError, looks_like_hub_id

logger = logging.getLogger(__name__)


class ModelPathError(InputError, FileNotFoundError):
    """A model path that is not a model folder; the message says what is missing."""


def is_adapter_dir(path: str | os.PathLike) -> bool:
    """A LoRA adapter folder (PEFT's adapter_config.json), not a full model: what LoRA SFT saves, and every checkpoint
    of a GRPO run that trains an adapter. GRPO (profit_rl.grpo), the samplers and the curves all ask here."""
    return (Path(path) / "adapter_config.json").is_file()


def check_model_path(name: str | os.PathLike, what: str = "--model") -> str:
    """`name` unchanged when it is a model folder or looks like a hub id; a ModelPathError otherwise."""
    name = str(name)
    path = Path(os.path.expanduser(name))
    if path.exists():
        if not path.is_dir():
            raise ModelPathError(f"{what} {name}: not a model folder: it is a file")
        if not (path / "config.json").is_file() and not is_adapter_dir(path):
            raise ModelPathError(f"{what} {name}: not a model folder: no config.json (nor a LoRA adapter's "
                                 f"adapter_config.json) in {path.resolve()}")
        for weights in sorted(path.glob("*.safetensors")):
            problem = safetensors_problem(weights)
            if problem:
                raise ModelPathError(f"{what} {name}: {weights}: {problem}; copy or save the model again")
        return name
    if looks_like_hub_id(name) and not looks_local(name):
        return name  # the hub (or its local cache; HF_HUB_OFFLINE keeps it offline) decides
    hint = " (and not a hub id of the form org/name)"
    if looks_like_hub_id(name):
        hint = (f" ({name.split('/')[0]}/ is a folder here, so this names a local folder, not the hub id; to load "
                "the hub model of that name, run from another folder)")
    raise ModelPathError(f"{what} {name}: no such folder{hint}")


def safetensors_problem(path: Path) -> str | None:
    """Why a .safetensors file cannot be loaded (truncated, not safetensors), or None. Reads only its header: an
    8-byte length, then JSON naming each tensor's byte range; a file shorter than the ranges it declares was cut short
    (a copy or save that was killed), and the loader's own error would name no file."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return f"truncated ({len(head)} bytes): not a safetensors file"
            length = int.from_bytes(head, "little")
            size = path.stat().st_size
            if length > size - 8:
                return f"truncated: its header declares {length} bytes, the file holds {size}"
            header = json.loads(f.read(length))
    except (OSError, ValueError) as err:
        return f"unreadable safetensors header ({err})"
    if not isinstance(header, dict):
        return "not a safetensors file (its header is not a JSON object)"
    end = max((entry["data_offsets"][1] for key, entry in header.items()
               if key != "__metadata__" and isinstance(entry, dict) and "data_offsets" in entry), default=0)
    if 8 + length + end > size:
        return f"truncated: {size} bytes, where its tensors end at byte {8 + length + end}"
    return None


def looks_local(name: str) -> bool:
    """A name of the form `a/b` whose first part is a folder in the current directory (`outputs/embeded`) is a
    mistyped local path, never a hub id: looking it up would send a local path to the network."""
    first = name.split("/")[0]
    return "/" in name and Path(first).is_dir()


BASE_MODEL_FIELDS = ("model_type", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size")


def base_model_identity(model: str | os.PathLike | None) -> dict | None:
    """What a checkpoint was trained from, as far as its files tell: its config's architecture and shape (every
    checkpoint of one base model shares them; a LoRA adapter's come from the base its adapter_config.json names).
    None when no config is at hand (a hub id that is not cached). `compare` and `curves` refuse to pair or join
    checkpoints whose identities differ."""
    if model is None:
        return None
    path = Path(os.path.expanduser(str(model)))
    if is_adapter_dir(path):
        try:
            base = json.loads((path / "adapter_config.json").read_text(encoding="utf-8")).get("base_model_name_or_path")
        except (OSError, ValueError):
            return None
        return base_model_identity(base) if base and str(base) != str(model) else None
    config = path / "config.json"
    if not config.is_file() and looks_like_hub_id(str(model)):
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(str(model), "config.json")
        except ImportError:
            cached = None
        config = Path(cached) if isinstance(cached, str) else config
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    data = data.get("text_config", data) if "vocab_size" not in data else data
    return {key: data.get(key) for key in BASE_MODEL_FIELDS}


# ---------------------------------------------------------------------------------------------------------------------
# Checkpoints


CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")  # what transformers' Trainer names them
TRAINER_STATE = "trainer_state.json"
RESUME_LAST = ("last", "true", "yes", "auto")
RESUME_NEVER = ("", "false", "no", "none")


class CheckpointError(InputError):
    """A checkpoint named for resuming that cannot be resumed from; the message says why."""


def checkpoint_dirs(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """(step, path) of every `checkpoint-N` folder in a training output folder, by step; complete or not."""
    root = Path(run_dir)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = CHECKPOINT_NAME.match(child.name)
        if match and child.is_dir():
            found.append((int(match.group(1)), child))
    return sorted(found)


def incomplete_reason(checkpoint: str | os.PathLike) -> str | None:
    """Why a `checkpoint-N` folder cannot be resumed from, or None when it is complete.

    The Trainer writes trainer_state.json last, after the weights, optimizer, scheduler and RNG states: a folder whose
    save was killed lacks it, or holds a truncated one. (transformers' `get_last_checkpoint` only compares names, so
    it picks such a folder and the resume then fails, every time.)"""
    state = Path(checkpoint) / TRAINER_STATE
    if not state.is_file():
        return f"no {TRAINER_STATE} (the Trainer writes it last: the save was interrupted)"
    try:
        json.loads(state.read_text(encoding="utf-8"))["global_step"]
    except (ValueError, KeyError, TypeError):
        return f"{TRAINER_STATE} is incomplete (the save was interrupted)"
    return None


def last_complete_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete `checkpoint-N` in `run_dir`, or None. Each newer, incomplete one is skipped with a log
    line saying why (a rerun then overwrites it when it reaches that step)."""
    for step, path in reversed(checkpoint_dirs(run_dir)):
        reason = incomplete_reason(path)
        if reason is None:
            return path
        logger.warning("skipping %s: %s", path, reason)
    return None


def resolve_resume(value: str | bool | None, output_dir: str | os.PathLike) -> str | None:
    """What `--resume_from_checkpoint` means: nothing or false, start afresh; `last` (or true), the newest complete
    `checkpoint-N` in `output_dir` (afresh when there is none); a path, that checkpoint, which must be complete."""
    if value is None or value is False or str(value).lower() in RESUME_NEVER:
        return None
    if value is True or str(value).lower() in RESUME_LAST:
        last = last_complete_checkpoint(output_dir)
        return str(last) if last else None
    path = Path(value)
    if not path.is_dir():
        raise CheckpointError(f"--resume_from_checkpoint {value}: no such folder")
    reason = incomplete_reason(path)
    if reason:
        raise CheckpointError(f"--resume_from_checkpoint {value}: cannot resume from this checkpoint: {reason}. "
                         "Pass another checkpoint, or 'last' for the newest complete one.")
    return str(path)


def build_hint(path: str) -> str | None:
    """For a missing `<DIR>/model` or `<DIR>/{sft,grpo,test}.jsonl` of an embedded build (what the embedded recipes
    read), the command that builds DIR; else None."""
    path = Path(path)
    built = {"model", "sft.jsonl", "grpo.jsonl", "test.jsonl"}
    if path.exists() or path.name not in built or "embedded" not in path.parts:
        return None
    return f"profit-rl embedded build --out-dir {path.parent}"
