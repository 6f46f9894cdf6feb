"""Runs TRL's tests/test_sft_trainer.py offline, on local stand-ins, with the trainer that TRL_SFT_TRAINER names.

Copied by scripts/trl_sft_tests.sh next to TRL's test files; the environment (HF_HUB_OFFLINE, HF_HUB_CACHE pointing at
the stand-ins' hub cache, TRL_STANDINS) is set there. This file:
- maps `load_dataset("trl-internal-testing/zen", config, split=..., streaming=...)` to the stand-ins' JSON files;
- gives `trl.trainer.sft_trainer` a `dft_loss` that raises when the installed TRL lacks it (TRL 1.16 computes DFT in
  its fused head; a test module of a TRL that still exports it then imports, and only its own dft_loss test fails);
- on a machine without a GPU, makes TRL's bf16 default (True when fp16 is not set) False, for both trainers alike:
  transformers refuses bf16 without a GPU unless use_cpu is set, which TRL's tests do not set;
- swaps the trainer before the test module imports `from trl import SFTConfig, SFTTrainer`:
    trl               TRL's SFTTrainer and SFTConfig (the reference run)
    profit-sftconfig  ProFitSFTTrainer, with TRL's own SFTConfig
    profit-all        ProFitSFTTrainer, with ProFitConfig whose selection defaults to "all"
    profit            ProFitSFTTrainer, with ProFitConfig as it is (selection "profit", tau 0.1)
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import torch
import trl
import trl.trainer.sft_trainer

MODE = os.environ.get("TRL_SFT_TRAINER", "trl")
STANDINS = Path(os.environ["TRL_STANDINS"])

_load_dataset = datasets.load_dataset


def load_dataset(path, name=None, *args, split=None, streaming=False, **kwargs):
    if path == "trl-internal-testing/zen":
        folder = STANDINS / "datasets" / "zen" / name
        if not folder.is_dir():
            raise FileNotFoundError(f"no stand-in for trl-internal-testing/zen config {name!r} in {folder.parent}")
        files = {s: str(folder / f"{s}.jsonl") for s in ("train", "test")}
        return _load_dataset("json", data_files=files, split=split, streaming=streaming)
    return _load_dataset(path, name, *args, split=split, streaming=streaming, **kwargs)


datasets.load_dataset = load_dataset

if not torch.cuda.is_available():
    from trl.trainer.base_config import _BaseConfig

    _post_init = _BaseConfig.__post_init__

    def _cpu_post_init(self):
        if self.bf16 is None and not self.fp16:
            self.bf16 = False
        _post_init(self)

    _BaseConfig.__post_init__ = _cpu_post_init

if not hasattr(trl.trainer.sft_trainer, "dft_loss"):
    def dft_loss(*args, **kwargs):
        raise NotImplementedError(f"trl {trl.__version__} has no trl.trainer.sft_trainer.dft_loss")

    trl.trainer.sft_trainer.dft_loss = dft_loss

if MODE != "trl":
    from profit_rl import ProFitConfig, ProFitSFTTrainer

    trl.SFTTrainer = ProFitSFTTrainer
    if MODE == "profit-all":
        @dataclass
        class ProFitConfigAll(ProFitConfig):
            selection: str = field(default="all", metadata={"help": "Token-selection rule."})

        trl.SFTConfig = ProFitConfigAll
    elif MODE == "profit":
        trl.SFTConfig = ProFitConfig
    elif MODE != "profit-sftconfig":
        raise ValueError(f"TRL_SFT_TRAINER={MODE!r}: one of trl, profit-sftconfig, profit-all, profit")
