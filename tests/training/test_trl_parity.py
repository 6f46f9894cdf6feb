"""`profit-rl sft` / `profit-rl grpo` behave like TRL's own scripts, and our rewards work in a plain TRL script."""

import json
import os
import pickle
import re
import subprocess
import sys

import pytest

from conftest import REPO  # noqa: E402  (the repository root, defined once)
GRPO_RECIPE = REPO / "recipes" / "Qwen3-0.6B-Base" / "grpo" / "math_cpu.yaml"


class TrainerBuilt(Exception):
    """Raised by a stand-in trainer class: the test only needs the arguments the script built."""


def capture_trainer(monkeypatch, module, name):
    seen = {}

    def fake(*args, **kwargs):
        seen.update(kwargs)
        raise TrainerBuilt

    monkeypatch.setattr(module, name, fake)
    return seen


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def alpaca_rows(n, offset=0):
    return [{"instruction": f"Add {i} and {i + 3}.", "input": "", "output": f"{i} + {i + 3} = {2 * i + 3}"}
            for i in range(offset, offset + n)]


# ---------------------------------------------------------------------------------------------------------------------
# SFT


def sft_args(model, data, out, *extra):
    return ["--model_name_or_path", str(model), "--dataset_name", str(data), "--num_samples", "8",
            "--output_dir", str(out), "--use_cpu", "true", "--bf16", "false", "--report_to", "none",
            "--max_length", "64", "--per_device_train_batch_size", "4", "--max_steps", "2",
            "--disable_tqdm", "true", "--dataloader_num_workers", "0", *extra]


def test_sft_passes_quantization_config_as_trl_does(monkeypatch, tmp_path, tiny_model_dir):
    from profit_rl import sft

    data = write_jsonl(tmp_path / "sft.jsonl", alpaca_rows(8))
    seen = capture_trainer(monkeypatch, sft, "ProFitSFTTrainer")
    with pytest.raises(TrainerBuilt):
        sft.run(*sft.parse(sft_args(str(tiny_model_dir), data, tmp_path / "out", "--load_in_4bit", "true",
                                    "--dtype", "bfloat16")))
    quantization = seen["quantization_config"]
    assert quantization.load_in_4bit and str(quantization.bnb_4bit_compute_dtype) == "torch.bfloat16"
    assert seen["eval_dataset"] is None  # eval_strategy "no": no eval set, as in TRL's script
    with pytest.raises(TrainerBuilt):
        sft.run(*sft.parse(sft_args(str(tiny_model_dir), data, tmp_path / "out")))
    assert seen["quantization_config"] is None


@pytest.mark.slow
def test_sft_reads_train_and_test_splits_evaluates_and_ends(tiny_model_dir, tmp_path, monkeypatch):
    """A folder of splits: train.jsonl trains, test.jsonl is the eval set, eval_loss is logged, trainer.end() runs."""
    from profit_rl import sft
    from profit_rl.trainer import ProFitSFTTrainer

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    folder = tmp_path / "data"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", alpaca_rows(8))
    write_jsonl(folder / "test.jsonl", alpaca_rows(3, offset=100))
    ended = []
    real_end = ProFitSFTTrainer.end
    monkeypatch.setattr(ProFitSFTTrainer, "end", lambda self: (ended.append(True), real_end(self)))
    out = tmp_path / "out"
    # selection "all": on the random tiny model ProFit drops every token, and its eval loss would be 0
    sft.run(*sft.parse(sft_args(tiny_model_dir, folder, out, "--eval_strategy", "steps", "--eval_steps", "2",
                                "--save_strategy", "steps", "--save_steps", "2", "--selection", "all")))
    history = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())["log_history"]
    evals = [entry for entry in history if "eval_loss" in entry]
    assert len(evals) == 1 and evals[0]["step"] == 2 and evals[0]["eval_loss"] > 0
    assert ended == [True]


def test_an_eval_set_from_a_single_training_file_is_refused(tmp_path):
    from profit_rl.configs import SFTDataArguments
    from profit_rl.data.sft_rows import load_sft_eval_dataset

    data = write_jsonl(tmp_path / "sft.jsonl", alpaca_rows(4))
    with pytest.raises(ValueError, match="single file.*--eval_dataset_name"):
        load_sft_eval_dataset(SFTDataArguments(dataset_name=str(data)))
    other = write_jsonl(tmp_path / "held_out.jsonl", alpaca_rows(2, offset=50))
    rows = load_sft_eval_dataset(SFTDataArguments(dataset_name=str(data), eval_dataset_name=str(other)))
    assert len(rows) == 2 and "50" in rows[0]["prompt"][0]["content"]


def test_a_folder_of_splits_gives_each_split_its_own_rows(tmp_path):
    from profit_rl.configs import SFTDataArguments
    from profit_rl.data.sft_rows import load_sft_dataset, load_sft_eval_dataset

    write_jsonl(tmp_path / "train.jsonl", alpaca_rows(5))
    write_jsonl(tmp_path / "test.jsonl", alpaca_rows(2, offset=100))
    args = SFTDataArguments(dataset_name=str(tmp_path), num_samples=None)
    assert len(load_sft_dataset(args)) == 5 and len(load_sft_eval_dataset(args)) == 2


# ---------------------------------------------------------------------------------------------------------------------
# GRPO


def grpo_argv(model, train, out, *extra):
    return ["--config", str(GRPO_RECIPE), "--model_name_or_path", str(model), "--dataset_name", str(train),
            "--decontaminate_against", "none", "--output_dir", str(out), "--reward_workers", "1", *extra]


def test_grpo_rewards_by_name_dotted_path_and_trl_overlong(tmp_path, monkeypatch):
    from trl.rewards import accuracy_reward as trl_accuracy

    from profit_rl.grpo import build_reward_funcs, parse_args

    module = tmp_path / "my_rewards.py"
    module.write_text("def brevity(completions, **kwargs):\n    return [-len(str(c)) / 100 for c in completions]\n")
    monkeypatch.chdir(tmp_path)  # TRL's script imports dotted paths from the current directory too
    funcs = ["accuracy", "overlong", "my_rewards.brevity", "trl.rewards.accuracy_reward"]
    script_args, training_args, _ = parse_args(grpo_argv("m", "d.jsonl", tmp_path, "--reward_funcs", *funcs,
                                                         "--overlong_buffer", "4", "--max_completion_length", "10",
                                                         "--reward_weights", "1", "1", "1", "1"))
    accuracy, overlong, brevity, trl_reward = build_reward_funcs(script_args, training_args)
    assert brevity(["abc"]) == [-0.03] and trl_reward is trl_accuracy
    ids = [[0] * n for n in (3, 6, 8, 10, 12)]
    assert overlong(completion_ids=ids) == [0.0, 0.0, -0.5, -1.0, -1.0]  # DAPO: linear from 6 to 10 tokens
    assert pickle.loads(pickle.dumps(overlong))(completion_ids=ids) == overlong(completion_ids=ids)
    for bad, message in ((["nope"], "unknown reward_funcs entry 'nope'"),
                         (["my_rewards.missing"], "cannot import it"),
                         (["overlong"], "0 < --overlong_buffer")):
        script_args.reward_funcs = bad
        script_args.overlong_buffer = 0 if bad == ["overlong"] else script_args.overlong_buffer
        training_args.reward_weights = None
        with pytest.raises(ValueError, match=re.escape(message)):
            build_reward_funcs(script_args, training_args)


@pytest.mark.slow
def test_grpo_passes_quantization_splits_and_eval_set(tiny_model_dir, tmp_path, monkeypatch):
    from profit_rl import cards
    from profit_rl.grpo import build_trainer, parse_args

    folder = tmp_path / "rl"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", [{"problem": f"Compute {i} + 1.", "answer": str(i + 1)} for i in range(4)])
    write_jsonl(folder / "test.jsonl", [{"problem": "Compute 50 + 1.", "solution": "So \\boxed{51}."}])
    seen = capture_trainer(monkeypatch, cards, "ProFitGRPOTrainer")  # TRL's GRPOTrainer with profit-rl's card
    with pytest.raises(TrainerBuilt):
        build_trainer(*parse_args(grpo_argv(tiny_model_dir, folder, tmp_path / "out", "--load_in_8bit", "true",
                                            "--eval_strategy", "steps", "--eval_steps", "1")))
    assert seen["quantization_config"].load_in_8bit
    assert [r["answer"] for r in seen["train_dataset"]] == ["1", "2", "3", "4"]
    assert [r["answer"] for r in seen["eval_dataset"]] == ["51"]


# ---------------------------------------------------------------------------------------------------------------------
# The README's plain-TRL script


def readme_script() -> str:
    text = (REPO / "README.md").read_text()
    match = re.search(r"<!-- plain-trl-grpo -->\n```python\n(.*?)```", text, re.S)
    assert match, "README.md lost its plain-TRL GRPO script (marked <!-- plain-trl-grpo -->)"
    return match.group(1)


def swap(script: str, old: str, new: str) -> str:
    assert script.count(old) == 1, f"the README script no longer contains {old!r} exactly once"
    return script.replace(old, new)


@pytest.mark.slow
def test_readme_plain_trl_grpo_script_runs_one_step(tiny_model_dir, tmp_path):
    """The README's script as written, with only the model and the config swapped for a one-step CPU run."""
    out = tmp_path / "grpo"
    script = swap(readme_script(), '"Qwen/Qwen3-0.6B-Base"', repr(str(tiny_model_dir)))
    script = swap(script, 'GRPOConfig(output_dir="Qwen3-0.6B-GRPO", reward_weights=[1.0, 0.1])',
                  f"GRPOConfig(output_dir={str(out)!r}, reward_weights=[1.0, 0.1], max_steps=1, "
                  "per_device_train_batch_size=2, num_generations=2, max_completion_length=8, use_cpu=True, "
                  "bf16=False, report_to='none', logging_steps=1, save_steps=1, disable_tqdm=True)")
    path = tmp_path / "plain_trl.py"
    path.write_text(script)
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
               PROFIT_RL_REWARD_WORKERS="1",  # each verifier process imports the script's trl: one is enough here
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = json.loads((out / "checkpoint-1" / "trainer_state.json").read_text())["log_history"]
    step = next(entry for entry in log if "rewards/accuracy_reward/mean" in entry)
    assert step["step"] == 1 and 0.0 <= step["rewards/accuracy_reward/mean"] <= 1.0
    assert "rewards/format_reward/mean" in step and "rewards/timeouts" in step  # our pool's metrics reached TRL
