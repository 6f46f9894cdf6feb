"""ProFit SFT through each accelerate config of recipes/accelerate_configs on the GPUs of this machine.

    python bench/distributed_sft.py [--configs ddp zero2 zero3 fsdp] [--steps 8]

For each config: `accelerate launch --config_file recipes/accelerate_configs/<config>.yaml --num_processes <GPUs>
-m profit_rl.sft` on a tiny Qwen3 (built here, no download) with bf16 and selection=profit, then reloads the saved
model and prints the logged loss and kept fraction of the first and last steps. Not a test: it needs GPUs
(and `deepspeed` for the ZeRO configs); the CPU 2-rank DDP check is tests/training/test_ddp.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def command(config: str, model, data, out, gpus: int, steps: int) -> list[str]:
    """`accelerate launch` of ProFit SFT under recipes/accelerate_configs/<config>.yaml (make gpu-check parses it)."""
    return [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file",
        str(REPO / "recipes" / "accelerate_configs" / f"{config}.yaml"), "--num_processes", str(gpus),
        "-m", "profit_rl.sft", "--model_name_or_path", str(model), "--dataset_name", str(data),
        "--num_samples", "256", "--output_dir", str(out), "--max_steps", str(steps), "--bf16", "true",
        "--per_device_train_batch_size", "8", "--learning_rate", "1e-3", "--max_length", "64",
        "--selection", "profit", "--tau", "0.002", "--logging_steps", "1", "--save_strategy", "no",
        "--report_to", "none", "--disable_tqdm", "true",
    ]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", nargs="+", default=["ddp", "zero2", "zero3", "fsdp"])
    p.add_argument("--steps", type=int, default=8)
    args = p.parse_args()
    import torch

    from profit_rl.embedded.tiny import build_tiny_model

    gpus = torch.cuda.device_count()
    if not gpus:
        print("no GPU visible: nothing to check (tests/training/test_ddp.py covers 2-rank DDP on CPU)")
        return 1
    work = Path(tempfile.mkdtemp(prefix="distributed_sft_"))
    model = build_tiny_model(work / "tiny", hidden_size=128, intermediate_size=256, num_hidden_layers=4)
    data = work / "data.jsonl"
    data.write_text("".join(
        json.dumps({"instruction": f"Add {i} and {i + 3}.", "input": "", "output": f"{i} + {i + 3} = {2 * i + 3}."}) + "\n"
        for i in range(256)
    ))
    print(f"{gpus} GPU(s): {torch.cuda.get_device_name()}; tiny Qwen3 at {model}")
    for config in args.configs:
        out = work / config
        cmd = command(config, model, data, out, gpus, args.steps)
        t0 = time.time()
        result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        seconds = time.time() - t0
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            print(f"{config:6s} FAILED after {seconds:.0f}s: {' | '.join(tail)[:400]}")
            continue
        state = json.loads((out / "trainer_state.json").read_text()) if (out / "trainer_state.json").exists() else None
        logs = [h for h in (state or {}).get("log_history", []) if "loss" in h]
        if not logs:  # trainer_state.json is written with checkpoints; fall back to the printed logs
            logs = [json.loads(line.replace("'", '"')) for line in result.stdout.splitlines()
                    if line.startswith("{'loss'")]
        from transformers import AutoModelForCausalLM

        try:
            AutoModelForCausalLM.from_pretrained(out)  # the saved model must reload for eval and GRPO
        except Exception as err:  # noqa: BLE001 - report and go on to the next config
            print(f"{config:6s} trained in {seconds:.0f}s but its saved model does not reload: {err}")
            continue
        first, last = logs[0], logs[-1]
        print(f"{config:6s} ok in {seconds:.0f}s: loss {float(first['loss']):.3f} -> {float(last['loss']):.3f}, "
              f"kept fraction {float(first['profit/kept_fraction']):.2f} -> {float(last['profit/kept_fraction']):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
