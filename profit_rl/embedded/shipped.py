"""The shipped base model: its files and MANIFEST.json, checked and installed into a build, and made from a build.

The repository ships its pretrained base model in `profit_rl/embedded/base_model/`, with `MANIFEST.json` beside it:
each file's sha256, the settings and seed, the command that rebuilds it bit for bit, and its health check
(`profit_rl.embedded.build` explains why a model is shipped rather than pretrained on each machine).
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from profit_rl.core.state import write_json_atomic

if TYPE_CHECKING:  # annotations only: the build imports this module
    from .build import EmbeddedPaths

SHIPPED_DIR = Path(__file__).parent / "base_model"
SHIPPED_REL = "profit_rl/embedded/base_model"  # SHIPPED_DIR in the repository, for the manifest's rebuild command
MANIFEST = "MANIFEST.json"
# The model and tokenizer files a build saves (save_pretrained), and the shipped folder holds.
MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
               "chat_template.jinja")


def sha256(path: Path) -> str:
    """The sha256 hex digest of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def shipped_manifest(folder: Path = SHIPPED_DIR) -> dict:
    """The shipped base model's MANIFEST.json (file digests, seed, settings, rebuild command); a missing one stops
    with how to get it back."""
    path = folder / MANIFEST
    if not path.is_file():
        raise SystemExit(f"{path}: the shipped base model's manifest is missing; reinstall the package, or build one "
                         "with `profit-rl embedded build --pretrain`")
    return json.loads(path.read_text())


def load_shipped(model_dir: Path, folder: Path = SHIPPED_DIR):
    """Copy the shipped model's files into `model_dir`, each checked against the manifest, and load them."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    manifest = shipped_manifest(folder)
    model_dir.mkdir(parents=True, exist_ok=True)
    for name, digest in manifest["files"].items():
        if not (folder / name).is_file() or sha256(folder / name) != digest:
            raise SystemExit(f"{folder / name}: missing, or its sha256 is not the one in {folder / MANIFEST}; "
                             "reinstall the package (git checkout the folder), or rebuild it with the manifest's "
                             f"command: {manifest['rebuild']}")
        shutil.copyfile(folder / name, model_dir / name)
    return AutoModelForCausalLM.from_pretrained(model_dir).eval(), AutoTokenizer.from_pretrained(model_dir)


def ship(paths: EmbeddedPaths, rebuild: str, folder: Path = SHIPPED_DIR) -> Path:
    """Make the build in `paths` the shipped base model: copy its files into `folder` and write the manifest.

    The manifest holds only what the same command reproduces bit for bit (no timings), so a rebuild that matches
    leaves the folder unchanged. The health check is measured here under 1 and 2 torch threads.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .build import FORMAT_VERSION, EmbeddedConfig, make_splits_for  # the build's settings (it imports this module)
    from .premise import plain_format_accuracy

    info = json.loads(paths.build_info.read_text())
    config = EmbeddedConfig.from_dict(info["config"])
    model = AutoModelForCausalLM.from_pretrained(paths.model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(paths.model_dir)
    problems = make_splits_for(config, info["seed"]).test[: config.check_problems]
    threads, health = torch.get_num_threads(), {}
    for n in (1, 2):
        torch.set_num_threads(n)
        health[f"torch_threads_{n}"] = plain_format_accuracy(model, tokenizer, problems)
    torch.set_num_threads(threads)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name in MODEL_FILES:
        shutil.copyfile(paths.model_dir / name, folder / name)
    import tokenizers
    import transformers

    manifest = {
        "what": "the embedded default's pretrained base model (profit_rl.embedded.build)",
        "format_version": FORMAT_VERSION,
        "seed": info["seed"],
        "config": info["config"],
        "files": {name: sha256(folder / name) for name in MODEL_FILES},
        "rebuild": rebuild,
        "built_with": {"torch": torch.__version__, "transformers": transformers.__version__,
                       "tokenizers": tokenizers.__version__, "python": platform.python_version(),
                       "machine": platform.machine(), "torch_threads": info["timings"]["torch_threads"]},
        "n_params": info["n_params"],
        "pretrain_tokens": info["pretrain_tokens"],
        "pretrain_log": [{"step": e["step"], "loss": e["loss"]} for e in info["pretrain_log"]],
        "health": {"check": "greedy accuracy on the first check_problems test problems, in the pretraining layout",
                   "check_problems": config.check_problems, "base_plain_greedy_accuracy": health},
        "premise_base_model": info["premise_base_model"],
    }
    write_json_atomic(folder / MANIFEST, manifest)
    return folder

