"""A real 2-process DDP run on CPU (gloo) through the user-facing entry point matches one process.

`accelerate launch --cpu --num_processes 2` silently runs ONE process; `--multi_gpu` on a machine without GPUs runs
two gloo ranks. We check the world size the run recorded, so a silent single-process run fails this test.
"""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

pytestmark = pytest.mark.slow


def write_data(path, n=16):
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"instruction": f"Add {i} and {i + 3}.", "input": "", "output": f"{i} + {i + 3} = {2 * i + 3}"}) + "\n")


def sft_command(model_dir, data, out, per_device, accum):
    return [
        "-m", "profit_rl.sft",
        "--model_name_or_path", str(model_dir), "--dataset_name", str(data), "--num_samples", "16",
        "--output_dir", str(out), "--use_cpu", "true", "--bf16", "false", "--report_to", "none",
        "--max_length", "64", "--per_device_train_batch_size", str(per_device),
        "--gradient_accumulation_steps", str(accum), "--max_steps", "2", "--optim", "sgd", "--learning_rate", "1.0",
        "--lr_scheduler_type", "constant", "--save_strategy", "no", "--selection", "profit", "--tau", "0.002",
        "--seed", "0", "--disable_tqdm", "true", "--dataloader_num_workers", "0",
    ]


def run(cmd, env):
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]


def test_two_process_ddp_matches_one_process(tiny_model_dir, tmp_path):
    data = tmp_path / "data.jsonl"
    write_data(data)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    ddp_out, single_out = tmp_path / "ddp", tmp_path / "single"
    # 2 ranks x batch 2 (one global batch of 4) against 1 process x batch 2 x accumulation 2
    run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
         "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29517",
         *sft_command(tiny_model_dir, data, ddp_out, 2, 1)], env)
    run([sys.executable, *sft_command(tiny_model_dir, data, single_out, 2, 2)], env)

    ddp_args = torch.load(ddp_out / "training_args.bin", weights_only=False)
    single_args = torch.load(single_out / "training_args.bin", weights_only=False)
    assert (ddp_args.world_size, single_args.world_size) == (2, 1)

    ddp, single = load_file(ddp_out / "model.safetensors"), load_file(single_out / "model.safetensors")
    initial = load_file(tiny_model_dir / "model.safetensors")
    assert any((ddp[k] - initial[k]).abs().max() > 1e-4 for k in initial)  # both really trained
    for name in single:
        torch.testing.assert_close(ddp[name], single[name], atol=1e-5, rtol=1e-4, msg=name)
