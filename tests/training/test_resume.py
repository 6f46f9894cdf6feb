"""Interrupted runs resume exactly: SFT from its last complete checkpoint, evals sample for sample."""

import json
import logging
import os
import signal
import subprocess
import sys
import time

import pytest

from profit_rl import cli

from conftest import REPO  # noqa: E402  (the repository root, defined once)


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
    from profit_rl.core.model_folders import resolve_resume

    (tmp_path / "checkpoint-6").mkdir()
    (tmp_path / "checkpoint-6" / "trainer_state.json").write_text('{"global_st')
    with pytest.raises(ValueError, match=r"checkpoint-6: cannot resume from this checkpoint: trainer_state.json is "
                                         r"incomplete"):
        resolve_resume(str(tmp_path / "checkpoint-6"), tmp_path)
    assert resolve_resume("last", tmp_path) is None  # nothing complete: start afresh
    assert resolve_resume("false", tmp_path) is None


def eval_argv(model_dir, data_dir, out):
    return ["eval", "--model", str(model_dir), "--benchmarks", "gsm8k", "--data-dir", str(data_dir), "--limit", "16",
            "--k", "2", "--batch-size", "2", "--max-new-tokens", "16", "--temperature", "1.0", "--seed", "3",
            "--output-dir", str(out), "--bootstrap", "100"]


def sample_rows(out):
    rows = [json.loads(line) for line in (out / "gsm8k" / "samples.jsonl").read_text().splitlines() if line.strip()]
    return {(r["problem_id"], r["sample_index"]): r["completion"] for r in rows}


@pytest.mark.slow
def test_an_eval_killed_and_resumed_equals_an_uninterrupted_one(tiny_model_dir, shared_data, tmp_path):
    killed = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.Popen([sys.executable, "-m", "profit_rl.cli", *eval_argv(tiny_model_dir, shared_data, killed)],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    samples = killed / "gsm8k" / "samples.jsonl"
    try:
        deadline = time.monotonic() + 240
        while not (samples.is_file() and samples.stat().st_size > 0):  # the first batch is on disk
            assert proc.poll() is None, "the eval ended before writing a batch"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        os.killpg(proc.pid, signal.SIGKILL)  # the eval and its verifier workers, mid-run
    finally:
        proc.wait()
    partial = sample_rows(killed)
    assert 0 < len(partial) < 32, "the kill did not land mid-run: nothing was tested"

    assert cli.main(eval_argv(tiny_model_dir, shared_data, killed)) == 0  # the same command again: resumes
    uninterrupted = tmp_path / "uninterrupted"
    assert cli.main(eval_argv(tiny_model_dir, shared_data, uninterrupted)) == 0
    resumed, expected = sample_rows(killed), sample_rows(uninterrupted)
    assert len(expected) == 32 and resumed == expected  # sample for sample, the cached ones and the new ones
    assert len(set(expected.values())) > 16  # really sampled at temperature 1, not one greedy text per problem
    results = [json.loads((d / "gsm8k" / "results.json").read_text()) for d in (killed, uninterrupted)]
    assert results[0]["avg_at_k"] == results[1]["avg_at_k"] and results[0]["pass_at_k"] == results[1]["pass_at_k"]
