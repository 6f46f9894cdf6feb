"""Interrupted runs resume exactly: SFT from its last complete checkpoint, evals sample for sample."""

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from profit_rl import cli

REPO = Path(__file__).resolve().parents[1]


def write_sft_data(path, n=16):
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"instruction": f"Add {i} and {i + 3}.", "input": "", "output": f"{i} + {i + 3} = {2 * i + 3}"}) + "\n")


def sft_argv(model_dir, data, out):
    return [
        "sft", "--model_name_or_path", str(model_dir), "--dataset_name", str(data), "--num_samples", "16",
        "--output_dir", str(out), "--use_cpu", "true", "--bf16", "false", "--report_to", "none", "--max_length", "64",
        "--per_device_train_batch_size", "4", "--max_steps", "4", "--save_strategy", "steps", "--save_steps", "2",
        "--learning_rate", "1e-2", "--lr_scheduler_type", "linear", "--optim", "adamw_torch", "--selection", "profit",
        "--tau", "0.002", "--seed", "0", "--disable_tqdm", "true", "--dataloader_num_workers", "0",
        "--resume_from_checkpoint", "last",  # what the pipeline passes
    ]


def test_sft_resumes_from_the_last_complete_checkpoint_past_a_half_written_one(tiny_model_dir, tmp_path, caplog):
    from safetensors.torch import load_file

    data = tmp_path / "sft.jsonl"
    write_sft_data(data)
    out = tmp_path / "sft"
    argv = sft_argv(tiny_model_dir, data, out)
    assert cli.main(argv) == 0  # the uninterrupted run: checkpoint-2, checkpoint-4, the final model
    uninterrupted = load_file(out / "model.safetensors")

    # Now as if killed while writing checkpoint-4: weights cut short, no trainer_state.json (the Trainer writes it
    # last), and no final model.
    ckpt4 = out / "checkpoint-4"
    (ckpt4 / "trainer_state.json").unlink()
    weights = ckpt4 / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])
    (out / "model.safetensors").unlink()

    caplog.set_level(logging.INFO)
    assert cli.main(argv) == 0  # the same command again
    log = caplog.text
    assert f"skipping {ckpt4}: no trainer_state.json" in log
    assert f"Resuming from {out / 'checkpoint-2'}" in log
    assert json.loads((ckpt4 / "trainer_state.json").read_text())["global_step"] == 4  # written again, completely
    resumed = load_file(out / "model.safetensors")
    assert resumed.keys() == uninterrupted.keys()
    for name, tensor in uninterrupted.items():  # the resumed run ends where the uninterrupted one did
        assert (resumed[name] - tensor).abs().max() <= 1e-5, name


def test_resume_from_an_incomplete_checkpoint_by_name_is_refused(tmp_path):
    from evals.models import resolve_resume

    (tmp_path / "checkpoint-6").mkdir()
    (tmp_path / "checkpoint-6" / "trainer_state.json").write_text('{"global_st')
    with pytest.raises(ValueError, match=r"checkpoint-6: cannot resume from this checkpoint: trainer_state.json is "
                                         r"incomplete"):
        resolve_resume(str(tmp_path / "checkpoint-6"), tmp_path)
    assert resolve_resume("last", tmp_path) is None  # nothing complete: start afresh
    assert resolve_resume("false", tmp_path) is None
