"""A random-weight Qwen3 with Qwen3-Base's real tokenizer, chat template, EOS settings and vocabulary, shrunk for CPU.

    python -m profit_rl.models.twin OUT                       # 2 layers, hidden 64, vocab 151,936
    python -m profit_rl.models.twin OUT --layers 1 --hidden 128 --heads 4 --head-dim 32
    profit-rl twin OUT

The files come from a twin source folder, `--source` (Qwen3-Base's exact tokenizer and Qwen3-0.6B-Base's config and
generation_config, no weights; its PROVENANCE.md says how they were made; a checkout finds the one in the
`shared/models` folder beside it). Any Qwen3-*-Base checkpoint's folder serves as a source too: only its config,
generation config and tokenizer files are read. The tokenizer files and the generation
config are copied as they are, so every token id, template string and stop rule is a real Qwen3-*-Base checkpoint's;
only the transformer is shrunk. What the model generates is noise: it exists to run the Qwen3 path of every stage at
the real vocabulary (151,936 rows), where toy models with their own tokenizers hide Qwen3's settings.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from profit_rl.core.errors import command_errors
from profit_rl.core.io import InputError

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SOURCE = REPO.parent / "shared" / "models" / "qwen3-base-twin"
COPIED = ("tokenizer.json", "tokenizer_config.json", "generation_config.json")
MARKER = "twin.json"  # the build settings; a folder with the same settings is reused


@dataclass
class TwinShape:
    """The shrunk transformer. vLLM's CPU attention needs head_dim >= 32; Qwen3 needs heads % kv_heads == 0."""

    layers: int = 2
    hidden: int = 64
    intermediate: int = 128
    heads: int = 2
    kv_heads: int = 1
    head_dim: int = 32
    seed: int = 0


def build_twin(out: str | Path, shape: TwinShape | None = None, source: str | Path = DEFAULT_SOURCE) -> Path:
    """Write the twin to `out` (reused when `out` already holds one built with the same shape and source)."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig, Qwen3Config

    shape = shape or TwinShape()
    out, source = Path(out), Path(source)
    settings = {"source": str(source.resolve()), **asdict(shape)}
    if (out / MARKER).is_file() and json.loads((out / MARKER).read_text()) == settings:
        return out
    missing = [name for name in ("config.json", *COPIED) if not (source / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{source}: not a Qwen3 twin source folder (missing {', '.join(missing)}); pass "
                                "--source with a Qwen3-*-Base checkpoint's folder (its config.json, "
                                "generation_config.json and tokenizer files)")
    config = json.loads((source / "config.json").read_text())
    config.update(num_hidden_layers=shape.layers, max_window_layers=shape.layers, hidden_size=shape.hidden,
                  intermediate_size=shape.intermediate, num_attention_heads=shape.heads,
                  num_key_value_heads=shape.kv_heads, head_dim=shape.head_dim, torch_dtype="float32")
    for key in ("architectures", "model_type", "torch_dtype"):
        config.pop(key, None)
    torch.manual_seed(shape.seed)
    model = AutoModelForCausalLM.from_config(Qwen3Config(**config), dtype=torch.float32)
    model.generation_config = GenerationConfig.from_pretrained(source)  # the base checkpoint's: EOS 151643 only
    out.parent.mkdir(parents=True, exist_ok=True)
    # built beside `out` and renamed into place: a killed build never leaves a folder that looks complete
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    tmp.chmod(0o755)
    try:
        model.save_pretrained(tmp)
        for name in COPIED:
            shutil.copyfile(source / name, tmp / name)
        (tmp / MARKER).write_text(json.dumps(settings, indent=1) + "\n")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


@command_errors("twin")
def main(argv: list[str] | None = None) -> int:
    """`profit-rl twin OUT`: write a shrunk random-weight Qwen3 with Qwen3-Base's real tokenizer, chat template and
    generation config, and return the exit code."""
    d = TwinShape()
    p = argparse.ArgumentParser(prog="profit-rl twin", description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="folder to write (a from_pretrained-loadable checkpoint)")
    p.add_argument("--source", default=str(DEFAULT_SOURCE), help="the twin's files (default: %(default)s)")
    p.add_argument("--layers", type=int, default=d.layers, help="default: %(default)s")
    p.add_argument("--hidden", type=int, default=d.hidden, help="default: %(default)s")
    p.add_argument("--intermediate", type=int, default=d.intermediate, help="default: %(default)s")
    p.add_argument("--heads", type=int, default=d.heads, help="default: %(default)s")
    p.add_argument("--kv-heads", type=int, default=d.kv_heads, help="default: %(default)s")
    p.add_argument("--head-dim", type=int, default=d.head_dim, help="default: %(default)s (vLLM on CPU needs >= 32)")
    p.add_argument("--seed", type=int, default=d.seed, help="default: %(default)s")
    args = p.parse_args(argv)
    shape = TwinShape(layers=args.layers, hidden=args.hidden, intermediate=args.intermediate, heads=args.heads,
                      kv_heads=args.kv_heads, head_dim=args.head_dim, seed=args.seed)
    try:
        out = build_twin(args.out, shape, args.source)
    except (FileNotFoundError, ValueError) as err:  # a bad --source or shape: one line, exit 1 (command_errors)
        raise InputError(str(err)) from err
    print(f"Qwen3 twin: {out} ({shape.layers} layers, hidden {shape.hidden}, vocab 151,936)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
