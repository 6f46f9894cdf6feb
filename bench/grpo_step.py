"""GRPO step time through profit-rl against a bare TRL GRPOTrainer, same tiny model, same batch, one run.

    python bench/grpo_step.py [--steps 8] [--rounds 3] [--max-completion-length 64]

Bare TRL: `GRPOTrainer(model=path, reward_funcs=[trl.rewards.accuracy_reward], ...)` (math-verify in the training
process). profit-rl: the trainer `profit_rl.grpo.build_trainer` builds from the CPU recipe, with
`rewards.accuracy_reward` (math-verify in the deadline pool). Same GRPOConfig values, seed, prompts and golds, one
reward function each. The two alternate for `--rounds` rounds (so that machine load drifts hit both); each run's first
step is a warm-up and is not counted. Prints the median step time of each and their ratio (target <= 1.05).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PROBLEMS = [(f"Compute {a} + {b}.", str(a + b)) for a, b in [(2, 3), (7, 6), (10, 4), (9, 9), (12, 30), (5, 8), (1, 1), (40, 2)]]


def step_timer():
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.durations, self._start = [], None

        def on_step_begin(self, args, state, control, **kwargs):
            self._start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.durations.append(time.perf_counter() - self._start)

    return StepTimer()


def common_args(model_dir: Path, data: Path, out: Path, steps: int, completion_len: int) -> list[str]:
    return [
        "--config", str(REPO / "recipes/Qwen3-0.6B-Base/grpo/math_cpu.yaml"),
        "--model_name_or_path", str(model_dir), "--dataset_name", str(data), "--decontaminate_against", "none",
        "--output_dir", str(out), "--max_steps", str(steps), "--save_strategy", "no", "--logging_steps", "1",
        "--num_generations", "4", "--per_device_train_batch_size", "8", "--max_completion_length", str(completion_len),
        "--reward_funcs", "accuracy", "--reward_weights", "1.0", "--max_train_samples", str(len(PROBLEMS)),
        "--log_level", "error", "--disable_tqdm", "true",
    ]


def run_profit_rl(argv: list[str]) -> list[float]:
    from profit_rl.grpo import build_trainer, parse_args

    script_args, training_args, model_args = parse_args(argv)
    trainer, _, pool = build_trainer(script_args, training_args, model_args)
    timer = step_timer()
    trainer.add_callback(timer)
    trainer.train()
    pool.close()
    return timer.durations


def run_bare_trl(argv: list[str]) -> list[float]:
    import datasets
    from transformers import AutoTokenizer
    from trl import GRPOTrainer
    from trl.rewards import accuracy_reward

    from profit_rl.grpo import parse_args
    from profit_rl.data.rl import build_prompt

    script_args, training_args, model_args = parse_args(argv)
    rows = [{"prompt": build_prompt(p), "solution": a} for p, a in PROBLEMS]
    tokenizer = AutoTokenizer.from_pretrained(model_args.model_name_or_path, padding_side="left")
    trainer = GRPOTrainer(
        model=model_args.model_name_or_path,
        reward_funcs=[accuracy_reward],
        args=training_args,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    timer = step_timer()
    trainer.add_callback(timer)
    trainer.train()
    return timer.durations


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-completion-length", type=int, default=64)
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import logging

    import torch

    from profit_rl.embedded.tiny import build_tiny_model

    logging.disable(logging.WARNING)
    torch.set_num_threads(1)  # two runs alternate on a shared machine: one thread each keeps timings comparable
    tmp = Path(tempfile.mkdtemp(prefix="grpo-step-"))
    model_dir = build_tiny_model(tmp / "tiny", seed=0)
    data = tmp / "train.jsonl"
    data.write_text("".join(json.dumps({"problem": p, "answer": a}) + "\n" for p, a in PROBLEMS))

    bare, ours = [], []
    for r in range(args.rounds):
        bare += run_bare_trl(common_args(model_dir, data, tmp / f"bare{r}", args.steps, args.max_completion_length))[1:]
        ours += run_profit_rl(common_args(model_dir, data, tmp / f"ours{r}", args.steps, args.max_completion_length))[1:]
    b, o = statistics.median(bare), statistics.median(ours)
    print(f"tiny Qwen3 ({model_dir.name}), CPU, {args.rounds} rounds x {args.steps - 1} timed steps each; "
          f"8 completions of <= {args.max_completion_length} tokens per step")
    print(f"  bare TRL GRPOTrainer + trl.rewards.accuracy_reward: median step {b * 1e3:8.1f} ms "
          f"(min {min(bare) * 1e3:.1f}, max {max(bare) * 1e3:.1f})")
    print(f"  profit-rl build_trainer + rewards (deadline pool):  median step {o * 1e3:8.1f} ms "
          f"(min {min(ours) * 1e3:.1f}, max {max(ours) * 1e3:.1f})")
    # Same seed, same prompts: step i of both runs samples the same completions, so step-by-step ratios pair equal work.
    paired = statistics.median(x / y for x, y in zip(ours, bare))
    print(f"  ratio profit-rl / bare TRL: {o / b:.3f}x of medians, {paired:.3f}x median of paired steps "
          f"(target <= 1.05x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
