"""The one dtype vocabulary of every command: TRL's `ModelConfig.dtype` words.

`profit-rl sft` and `profit-rl grpo` take `--dtype` through TRL's own `ModelConfig`, so its words are the ones a TRL
user already types; `profit-rl eval`, `curves` and `inspect` accept exactly the same words and resolve them here.
"""

from __future__ import annotations

DTYPES = ("auto", "bfloat16", "float16", "float32")
DTYPE_HELP = ("auto (float32 on CPU, bfloat16 on an accelerator), bfloat16, float16 or float32: the words of TRL's "
              "ModelConfig.dtype")


def check_dtype(name: str) -> str:
    """`name` if it is one of DTYPES, else a ValueError naming the choices."""
    if name not in DTYPES:
        raise ValueError(f"dtype {name!r} is not one of {', '.join(DTYPES)}")
    return name


def dtype_name(name: str, device: str) -> str:
    """The concrete dtype word for inference on `device` ("cpu", "cuda", "cuda:1", "mps", ...).

    "auto" is float32 on CPU, where half-precision matmuls are slow and lose accuracy, and bfloat16 elsewhere, where
    it is what the models are trained and served in. Both samplers use this, so a transformers and a vLLM evaluation
    with the same settings run in the same dtype.
    """
    check_dtype(name)
    if name != "auto":
        return name
    return "float32" if str(device).split(":")[0] == "cpu" else "bfloat16"


def torch_dtype(name: str, device: str | None = None):
    """The `torch.dtype` for `name`. "auto" resolves with `dtype_name` when a device is given; without one it stays
    "auto", which transformers reads as the checkpoint's own dtype (what TRL does with `--dtype auto` in training)."""
    import torch

    if name == "auto" and device is None:
        return "auto"
    return getattr(torch, dtype_name(check_dtype(name), device or "cpu"))
