"""Reruns of SFT and GRPO (docs/reruns.md): a finished run is left as it is, a run killed after its last checkpoint
ends where the uninterrupted run ended without training past max_steps, and a folder of another run is refused."""

import json

import pytest
from safetensors.torch import load_file

from profit_rl import cli
from profit_rl.core.identity import INPUTS_FILE

from test_grpo import grpo_args, rl_files  # noqa: F401  (the module's RL data fixture)
from test_resume import write_sft_data


def sft_argv(model_dir, data, out, *extra):
    return [
        "sft", "--model_name_or_path", str(model_dir), "--dataset_name", str(data), "--num_samples", "8",
        "--output_dir", str(out), "--use_cpu", "true", "--bf16", "false", "--report_to", "none", "--max_length", "64",
        "--per_device_train_batch_size", "4", "--max_steps", "2", "--save_strategy", "steps", "--save_steps", "1",
        "--learning_rate", "1e-2", "--optim", "adamw_torch", "--seed", "0", "--disable_tqdm", "true",
        "--dataloader_num_workers", "0",
        "--selection", "all",  # the random tiny model gives every token p << tau: ProFit would keep none, and stop
        "--resume_from_checkpoint", "last", *extra,  # last: the tests drop these two to ask for no resume
    ]


def weights(folder, name="model.safetensors"):
    return load_file(folder / name)


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key] - b[key]).abs().max() <= 1e-6, key


def checkpoints(folder):
    return sorted(p.name for p in folder.glob("checkpoint-*"))


def as_if_killed_after_the_last_checkpoint(out, model_files):
    """What a kill between the last checkpoint's save and the final save leaves: no final model, an unfinished
    record."""
    for name in model_files:
        (out / name).unlink()
    record = json.loads((out / INPUTS_FILE).read_text())
    record.pop("finished")
    (out / INPUTS_FILE).write_text(json.dumps(record))


@pytest.fixture(scope="module")
def sft_data(tmp_path_factory):
    data = tmp_path_factory.mktemp("sft-data") / "sft.jsonl"
    write_sft_data(data, n=8)
    return data


def test_sft_rerun_of_a_finished_run_does_nothing_and_a_kill_after_the_last_checkpoint_ends_there(
        tiny_model_dir, sft_data, tmp_path, capsys):
    out = tmp_path / "sft"
    argv = sft_argv(tiny_model_dir, sft_data, out)
    assert cli.main(argv) == 0
    uninterrupted = weights(out)
    assert checkpoints(out) == ["checkpoint-1", "checkpoint-2"]
    capsys.readouterr()

    # the same command again (it resumes from `last`): nothing trains, nothing is added, and it says so
    assert cli.main(argv) == 0
    assert "already holds this run, finished at step 2: nothing to do" in capsys.readouterr().out
    assert checkpoints(out) == ["checkpoint-1", "checkpoint-2"]
    assert_same_weights(weights(out), uninterrupted)

    # killed after checkpoint-2 was saved, before the final model: the rerun ends at step 2, as the uninterrupted run
    as_if_killed_after_the_last_checkpoint(out, ["model.safetensors", "config.json"])
    capsys.readouterr()
    assert cli.main(argv[:-2]) == 1  # not asked to resume: it would overwrite the checkpoints one by one
    err = capsys.readouterr().err
    assert "holds an interrupted run of this command (checkpoint-2, not finished)" in err
    assert "--resume_from_checkpoint last" in err and "--overwrite_output_dir" in err
    assert cli.main(argv) == 0
    assert checkpoints(out) == ["checkpoint-1", "checkpoint-2"]
    assert_same_weights(weights(out), uninterrupted)
    assert json.loads((out / INPUTS_FILE).read_text())["finished"] == {"global_step": 2}


def test_sft_into_a_folder_of_another_run_is_refused_and_overwrite_starts_clean(tiny_model_dir, sft_data, tmp_path,
                                                                                 capsys):
    out = tmp_path / "sft"
    lora = ["--use_peft", "true", "--lora_r", "4", "--lora_target_modules", "q_proj", "v_proj"]
    assert cli.main(sft_argv(tiny_model_dir, sft_data, out, *lora)) == 0
    assert (out / "adapter_config.json").is_file()
    capsys.readouterr()

    # a full SFT into the LoRA run's folder: refused, naming what differs and the flag
    assert cli.main(sft_argv(tiny_model_dir, sft_data, out)) == 1
    err = capsys.readouterr().err
    assert "holds a run made from other inputs" in err and "settings.use_peft: true -> false" in err
    assert "--overwrite_output_dir" in err
    assert (out / "adapter_config.json").is_file() and not (out / "model.safetensors").exists()  # left as it was

    # other data (same path, new content) is another input too
    other = tmp_path / "other.jsonl"
    write_sft_data(other, n=12)
    assert cli.main(sft_argv(tiny_model_dir, other, out, *lora)) == 1
    assert "data.sha256" in capsys.readouterr().err

    # --overwrite_output_dir empties the folder: no stale adapter is left for an eval to load
    assert cli.main(sft_argv(tiny_model_dir, sft_data, out, "--overwrite_output_dir", "true")) == 0
    assert not (out / "adapter_config.json").exists() and not (out / "adapter_model.safetensors").exists()
    assert (out / "model.safetensors").is_file()
    assert checkpoints(out) == ["checkpoint-1", "checkpoint-2"]
    assert not (out / "checkpoint-2" / "adapter_config.json").exists()


def test_grpo_rerun_refuses_another_models_folder_does_nothing_when_finished_and_ends_at_max_steps(
        tiny_model_dir, rl_files, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "grpo"
    argv = ["grpo", *grpo_args(tiny_model_dir, rl_files, out, max_steps=2, save_steps=1)]
    assert cli.main(argv) == 0
    uninterrupted = weights(out)
    assert checkpoints(out) == ["checkpoint-1", "checkpoint-2"]
    capsys.readouterr()

    # the same command again: GRPO resumes by default, but a finished run has nothing left to train
    assert cli.main(argv) == 0
    assert "already holds this run, finished at step 2: nothing to do" in capsys.readouterr().out
    assert checkpoints(out) == ["checkpoint-1", "checkpoint-2"]
    assert_same_weights(weights(out), uninterrupted)

    # killed after checkpoint-2: the rerun does not train a step 3; its final model is the uninterrupted one's
    as_if_killed_after_the_last_checkpoint(out, ["model.safetensors", "trainer_state.json"])
    assert cli.main(argv) == 0
    assert checkpoints(out) == ["checkpoint-1", "checkpoint-2"]
    assert_same_weights(weights(out), uninterrupted)
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 2

    # another model into this folder: refused, not resumed from the first model's checkpoints
    other_model = tmp_path / "other-model"
    other_model.mkdir()
    for file in tiny_model_dir.iterdir():
        if file.is_file():
            (other_model / file.name).write_bytes(file.read_bytes())
    tensors = weights(other_model)
    from safetensors.torch import save_file

    save_file({k: v + 0.01 for k, v in tensors.items()}, other_model / "model.safetensors", metadata={"format": "pt"})
    capsys.readouterr()
    assert cli.main(["grpo", *grpo_args(other_model, rl_files, out, max_steps=2, save_steps=1)]) == 1
    err = capsys.readouterr().err
    assert "holds a run made from other inputs" in err and "model.sha256" in err and "--overwrite_output_dir" in err
    assert_same_weights(weights(out), uninterrupted)
