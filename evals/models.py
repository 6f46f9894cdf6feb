"""Model folders, shared by training (profit_rl) and evals: what a local model folder is, checked before any hub lookup.

A name that exists on disk must be a model folder (`config.json`) or a LoRA adapter folder (`adapter_config.json`);
a name that does not exist is a hub id only when it looks like one (`org/name`), and a path otherwise, so a mistyped
folder says "no such folder" instead of a hub error about repo ids.
"""

from __future__ import annotations

import os
from pathlib import Path

from .io import InputError, looks_like_hub_id


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
        return name
    if looks_like_hub_id(name):
        return name  # the hub (or its local cache) decides
    raise ModelPathError(f"{what} {name}: no such folder (and not a hub id of the form org/name)")
