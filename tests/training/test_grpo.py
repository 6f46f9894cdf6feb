"""profit_rl.grpo end to end on CPU with the tiny model: 2 steps, 2 ranks (gloo), resume after SIGKILL, adapters."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO  # noqa: E402  (the repository root, defined once)
RECIPE = REPO / "recipes" / "Qwen3-0.6B-Base" / "grpo" / "math_cpu.yaml"

PROBLEMS = [
    {"problem": "Compute 2 + 3.", "answer": "5"},
    {"problem": "Compute 7 * 6.", "answer": "42"},
    {"problem": "What is $\\frac{1}{2} + \\frac{1}{4}$?", "answer": "\\frac{3}{4}"},
    {"problem": "Compute 10 - 4.", "answer": "6"},
    {"problem": "Compute 9 + 9.", "answer": "18"},
    {"problem": "Compute 3 * 3.", "answer": "9"},
]


@pytest.fixture(scope="module")
def rl_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("rl-data")
    train = root / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in PROBLEMS))
    test = root / "test.jsonl"  # plays MATH-500: one training problem is in it and must be dropped
    test.write_text(json.dumps({"problem": "Compute 9+9.", "answer": "18"}) + "\n")
    return train, test


def grpo_args(model_dir, rl_files, output_dir, **overrides) -> list[str]:
    train, test = rl_files
    args = {
        "model_name_or_path": str(model_dir),
        "dataset_name": str(train),
        "decontaminate_against": str(test),
        "max_train_samples": "8",
        "output_dir": str(output_dir),
        "max_steps": "2",
        "save_steps": "2",
        "num_generations": "2",
        "per_device_train_batch_size": "2",
        "max_completion_length": "8",
        "logging_steps": "1",
        "reward_workers": "1",
        "dataloader_num_workers": "0",
    }
    args.update({k: str(v) for k, v in overrides.items()})
    return ["--config", str(RECIPE)] + [item for key, value in args.items() for item in (f"--{key}", value)]


def subprocess_env() -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def reload_and_generate(path: Path) -> str:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Compute 1 + 1."}], tokenize=False, add_generation_prompt=True)
    ids = tokenizer(prompt, return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] == ids["input_ids"].shape[1] + 5 or out[0, -1].item() in (tokenizer.eos_token_id,)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1] :])


@pytest.mark.slow
def test_two_steps_write_a_checkpoint_that_reloads(tiny_model_dir, rl_files, tmp_path, monkeypatch):
    from profit_rl.grpo import main

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "grpo"
    assert main(grpo_args(tiny_model_dir, rl_files, out)) == 0

    checkpoint = out / "checkpoint-2"
    assert (checkpoint / "model.safetensors").is_file() and (checkpoint / "optimizer.pt").is_file()
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    logged = state["log_history"][0]
    assert "rewards/timeouts" in logged and "rewards/accuracy_reward/mean" in logged
    report = json.loads((out / "rl_data_report.json").read_text())
    assert report["loaded"] == 6 and report["decontaminated"] == 1 and report["kept"] == 5
    stats = json.loads((out / "reward_stats" / "rank0.json").read_text())
    assert stats["items"] == 2 * 2 and stats["timeouts"] == 0 and stats["errors"] == 0
    assert isinstance(reload_and_generate(checkpoint), str)


@pytest.mark.slow
def test_two_ranks_with_gloo(tiny_model_dir, rl_files, tmp_path):
    """torchrun, not `accelerate launch --cpu --num_processes 2` (which silently runs one process)."""
    out = tmp_path / "grpo-ddp"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
           "-m", "profit_rl.grpo", *grpo_args(tiny_model_dir, rl_files, out, per_device_train_batch_size=1)]
    proc = subprocess.run(cmd, cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = {json.loads(p.read_text())["rank"]: json.loads(p.read_text()) for p in (out / "reward_stats").glob("rank*.json")}
    assert sorted(ranks) == [0, 1] and all(r["world_size"] == 2 for r in ranks.values())
    assert all(r["items"] == 2 for r in ranks.values())  # each rank scored its own half of 2 steps x 2 completions
    assert json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())["global_step"] == 2
    reload_and_generate(out / "checkpoint-2")


@pytest.mark.slow
def test_killed_run_resumes_from_last_checkpoint(tiny_model_dir, rl_files, tmp_path):
    out = tmp_path / "grpo-resume"
    cmd = [sys.executable, "-m", "profit_rl.grpo", *grpo_args(tiny_model_dir, rl_files, out, max_steps=6, save_steps=2)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not (out / "checkpoint-2" / "trainer_state.json").exists():
            assert proc.poll() is None, "the run ended before writing checkpoint-2"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # the run and its verifier workers, mid-training
    finally:
        proc.wait()
    assert not (out / "checkpoint-6").exists(), "the run finished before the kill: nothing was tested"
    killed_at = max(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*") if (p / "trainer_state.json").exists())

    again = subprocess.run(cmd, cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert f"Resuming from {out / f'checkpoint-{killed_at}'}" in again.stdout + again.stderr
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    steps_logged = [entry["step"] for entry in state["log_history"] if "loss" in entry]
    assert steps_logged == list(range(1, 7))  # the resumed run continued the history, not restarted it


@pytest.mark.slow
def test_lora_adapter_is_merged_or_loaded(tiny_model_dir, rl_files, tmp_path, monkeypatch):
    """An SFT run that saved a LoRA adapter: --adapter merge trains a full model, --adapter load trains the adapter."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    adapter_dir = tmp_path / "sft-lora"
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    lora = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    lora.save_pretrained(adapter_dir)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(adapter_dir)

    from profit_rl.grpo import build_trainer, parse_args

    merged = tmp_path / "merged"
    trainer, _, pool = build_trainer(*parse_args(grpo_args(adapter_dir, rl_files, merged, max_steps=1, save_steps=1)))
    params = dict(trainer.model.named_parameters())
    assert not any("lora" in name for name in params) and all(p.requires_grad for p in params.values())
    trainer.train()
    assert (merged / "checkpoint-1" / "model.safetensors").is_file()
    assert not (merged / "checkpoint-1" / "adapter_config.json").exists()

    loaded = tmp_path / "loaded"
    trainer, _, pool = build_trainer(
        *parse_args(grpo_args(adapter_dir, rl_files, loaded, max_steps=1, save_steps=1, adapter="load"))
    )
    trainable = [name for name, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora" in name for name in trainable)
    trainer.train()
    assert (loaded / "checkpoint-1" / "adapter_config.json").is_file()


@pytest.mark.parametrize("recipe", sorted(REPO.glob("recipes/*/grpo/*.yaml")), ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_recipes_parse(recipe):
    """Every GRPO recipe parses into GRPOScriptArguments + GRPOConfig + ModelConfig (no typo, no removed field)."""
    from profit_rl.grpo import build_reward_funcs, parse_args

    script_args, training_args, model_args = parse_args(["--config", str(recipe), "--use_cpu", "true", "--bf16", "false"])
    assert training_args.num_generations >= 2 and training_args.max_completion_length > 0
    assert training_args.loss_type and training_args.beta >= 0
    funcs = build_reward_funcs(script_args, training_args)
    assert funcs and (training_args.reward_weights is None or len(funcs) == len(training_args.reward_weights))
    assert model_args.model_name_or_path
