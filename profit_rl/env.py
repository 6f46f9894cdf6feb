"""`profit-rl env`: the versions, accelerators and cache folders to paste into a bug report (as `trl env` does).

    profit-rl env

Versions are read from the installed distributions' metadata, so an optional package (DeepSpeed, vLLM) that is missing
or broken reads "not installed" instead of failing the command; torch is imported for CUDA and the GPUs.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

# (label, distribution name), in the order a bug report reads them
PACKAGES = (
    ("profit-rl", "profit-rl"),
    ("PyTorch", "torch"),
    ("TRL", "trl"),
    ("Transformers", "transformers"),
    ("Accelerate", "accelerate"),
    ("PEFT", "peft"),
    ("Datasets", "datasets"),
    ("HF Hub", "huggingface_hub"),
    ("DeepSpeed", "deepspeed"),
    ("vLLM", "vllm"),
    ("math-verify", "math-verify"),
)


def installed_version(distribution: str) -> str:
    """The installed version of `distribution`, or "not installed"."""
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "not installed"


def profit_rl_version() -> str:
    """profit-rl's version: the installed distribution's, else the source tree's `__version__` (a bare checkout)."""
    found = installed_version("profit-rl")
    if found != "not installed":
        return found
    from profit_rl import __version__

    return __version__


def accelerators() -> tuple[str, str]:
    """(CUDA as torch sees it, the devices): e.g. ("12.8 (cuDNN 91002)", "2 x NVIDIA H100 80GB HBM3"), or
    ("none (CPU build of torch)", "cpu")."""
    try:
        import torch
    except ImportError as err:
        return f"unknown (torch does not import: {err})", "unknown"
    cuda = torch.version.cuda
    if cuda is None:
        cuda_text = "none (CPU build of torch)"
    else:
        cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        cuda_text = f"{cuda} (cuDNN {cudnn})" if cudnn else cuda
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        devices = ", ".join(f"{names.count(n)} x {n}" for n in dict.fromkeys(names))
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices = "MPS"
    else:
        devices = "cpu"
        if cuda is not None:
            devices += f" (a CUDA {cuda} build of torch sees no GPU)"
    return cuda_text, devices


def cache_folders() -> dict[str, str]:
    """Where downloads go: the Hugging Face hub and datasets caches, and torch's, as the environment sets them."""
    from huggingface_hub import constants  # resolves HF_HOME, HF_HUB_CACHE and their older spellings

    home = Path(constants.HF_HOME)
    hub = constants.HF_HUB_CACHE
    folders = {
        "HF home": str(home),
        "HF hub cache": hub,
        "HF datasets cache": os.environ.get("HF_DATASETS_CACHE", str(home / "datasets")),
        "torch home": os.environ.get("TORCH_HOME", str(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                                                       / "torch")),
    }
    offline = [name for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
               if os.environ.get(name, "").lower() in ("1", "true", "yes", "on")]
    folders["offline"] = ", ".join(offline) if offline else "no"
    return folders


def report() -> dict[str, str]:
    """The `profit-rl env` fields, label -> value."""
    info = {"Platform": platform.platform(), "Python version": platform.python_version(),
            "Python executable": sys.executable}
    versions = {f"{label} version": installed_version(dist) for label, dist in PACKAGES}
    versions["profit-rl version"] = profit_rl_version()
    info.update(versions)
    info["CUDA (torch build)"], info["accelerator(s)"] = accelerators()
    info["profit-rl location"] = str(Path(__file__).resolve().parent)
    info.update(cache_folders())
    return info


def main(argv: list[str] | None = None) -> int:
    """`profit-rl env`: print the versions, GPUs and cache folders as a list to paste into a bug report."""
    argparse.ArgumentParser(prog="profit-rl env", description=__doc__.split("\n\n")[0]).parse_args(argv)
    lines = "\n".join(f"- {label}: {value}" for label, value in report().items())
    print(f"\nCopy-paste the following information when reporting an issue:\n\n{lines}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
