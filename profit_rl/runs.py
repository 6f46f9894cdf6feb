"""What a training run's output folder holds, and what a rerun of the same command does with it (docs/reruns.md).

    inputs = training_inputs(model, dataset, data_args, training_args, model_args)
    state = prepare_output_dir(output_dir, inputs, overwrite=...)
    if state.finished: ...                 # a finished run: nothing to do
    ...load, record_inputs(output_dir, inputs), train, save...
    mark_finished(output_dir, inputs, global_step)

SFT and GRPO record their inputs (the model's weights and the data by content, core.identity, and every setting that
changes the weights) in `output_dir/inputs.json` before they train. A rerun of the same command:
- finds the run finished (the record says so): does nothing, and says so;
- finds it interrupted after its last checkpoint (a checkpoint at the run's last step, no final model): saves that
  checkpoint's model as the final one, without training;
- finds it interrupted earlier: resumes (as the resume flags say);
- finds a run made from other inputs, or a run that recorded none: refuses, naming the fields that differ and
  `--overwrite_output_dir`, which empties the folder and starts over.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from profit_rl.core.identity import InputsChangedError, check_inputs, data_identity, weights_identity, write_inputs
from profit_rl.core.model_folders import RESUME_NEVER, TRAINER_STATE, checkpoint_dirs, incomplete_reason
from profit_rl.core.state import read_json_state

logger = logging.getLogger(__name__)

OVERWRITE_FLAG = "--overwrite_output_dir"
# TrainingArguments fields that say where and how a run logs or saves, not what it computes: a rerun may change them
BOOKKEEPING_PREFIXES = ("output_dir", "logging_", "save_", "report_to", "run_name", "resume_from_checkpoint",
                        "disable_tqdm", "dataloader_num_workers", "dataloader_persistent_workers",
                        "dataloader_prefetch_factor", "push_to_hub", "hub_", "overwrite_output_dir", "log_level",
                        "log_on_each_node", "eval_", "per_device_eval_batch_size", "model_init_kwargs",
                        "trackio_", "project", "print_", "log_completions", "num_completions_to_print",
                        "wandb_", "resume", "overwrite", "local_rank", "ddp_timeout", "skip_memory_metrics", "debug")
# files a run writes into its output folder beside checkpoint-N: a folder holding any of them holds a run
RUN_FILES = ("config.json", "adapter_config.json", "model.safetensors", "adapter_model.safetensors",
             "pytorch_model.bin", TRAINER_STATE, "training_args.bin")
# the final model's weights: a finished record without them (deleted since) is not a finished run
FINAL_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors", "pytorch_model.bin",
                 "pytorch_model.bin.index.json")
# what a checkpoint holds only to resume training; the rest is the model as `save_model` writes it
RESUME_ONLY = ("optimizer.pt", "scheduler.pt", "scaler.pt", "training_args.bin", TRAINER_STATE)


def _json_safe(value):
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def settings_of(*configs, skip: tuple[str, ...] = ()) -> dict:
    """The fields of the argument dataclasses that change what a run computes (bookkeeping and `skip` left out)."""
    out = {}
    for config in configs:
        fields = config.to_dict() if hasattr(config, "to_dict") else dataclasses.asdict(config)
        for key, value in fields.items():
            if key in skip or key.startswith(BOOKKEEPING_PREFIXES):
                continue
            out[key] = value
    return _json_safe(out)


def training_inputs(command: str, model: str, dataset: str, *configs, skip: tuple[str, ...] = ()) -> dict:
    """The record of what a training run is made from: the model's weights and the data by content, the settings."""
    return {
        "command": command,
        "model": weights_identity(model),
        "data": data_identity(dataset),
        "settings": settings_of(*configs, skip=("model_name_or_path", "dataset_name", *skip)),
    }


@dataclass
class OutputState:
    """What `prepare_output_dir` found: whether the folder holds this run, finished, and the message that says so."""
    finished: bool = False
    message: str = ""


def holds_a_run(folder: Path) -> bool:
    """Whether `folder` holds a training run: a checkpoint-N folder, or a model config, weights, trainer state or
    training args."""
    return folder.is_dir() and (any(True for _ in checkpoint_dirs(folder))
                                or any((folder / name).exists() for name in RUN_FILES))


def empty_folder(folder: Path, keep: tuple[str, ...] = (".lock",)) -> None:
    """Remove everything in `folder` but `keep` (the lock this run holds)."""
    for child in folder.iterdir():
        if child.name in keep:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def checkpoint_state(checkpoint: str | Path) -> dict:
    """A checkpoint's trainer_state.json; an unreadable one is a StateFileError that says to delete the checkpoint."""
    return read_json_state(Path(checkpoint) / TRAINER_STATE, "checkpoint's trainer state",
                           f"delete {checkpoint} to resume from the one before it")


def at_last_step(checkpoint: str | Path | None) -> dict | None:
    """The trainer state of `checkpoint` when it is at the run's last step (its global_step reached the max_steps the
    Trainer computed from max_steps or the epoch count): resuming from it would train past the end."""
    if not checkpoint:
        return None
    state = checkpoint_state(checkpoint)
    if state.get("max_steps") and state.get("global_step", 0) >= state["max_steps"]:
        return state
    return None


def prepare_output_dir(output_dir: str | Path, inputs: dict, overwrite: bool, is_main: bool = True) -> OutputState:
    """Check `output_dir` against `inputs` before anything loads (`--overwrite_output_dir`: empty it); see the
    module doc. Nothing is written: `record_inputs` records them once the run starts."""
    folder = Path(output_dir)
    way_out = f"pass {OVERWRITE_FLAG} to delete it and start over."
    if overwrite:
        if is_main and folder.is_dir():
            if any(child.name != ".lock" for child in folder.iterdir()):
                logger.info("%s: emptying the folder (%s)", folder, OVERWRITE_FLAG)
            empty_folder(folder)
        return OutputState()
    # a record binds only a folder that holds a run: one stopped before its first checkpoint left nothing to mix with
    record = check_inputs(folder, inputs, way_out, True) if holds_a_run(folder) else None
    if record and record.get("finished") and any((folder / name).is_file() for name in FINAL_WEIGHTS):
        done = record["finished"]
        return OutputState(True, f"{folder} already holds this run, finished at step {done.get('global_step')}: "
                                 f"nothing to do. To train it again, pass {OVERWRITE_FLAG}.")
    return OutputState()


def refuse_fresh_start_over_checkpoints(output_dir: str | Path, resume_value, resume_flag: str) -> None:
    """A run not asked to resume (`resume_value`: its resume flag, unresolved) that would start from step 0 in a folder
    holding an interrupted run's complete checkpoints would overwrite them one by one, and a second kill would leave
    checkpoints of two runs side by side: it must say which it wants."""
    if resume_value is True or str(resume_value).lower() not in (*RESUME_NEVER, "none"):
        return
    found = [(step, path) for step, path in checkpoint_dirs(output_dir) if incomplete_reason(path) is None]
    if found:
        raise InputsChangedError(f"{output_dir} holds an interrupted run of this command ({found[-1][1].name}, not "
                                 f"finished). Pass {resume_flag} to continue it, or {OVERWRITE_FLAG} to start over.")


def record_inputs(output_dir: str | Path, inputs: dict) -> None:
    """Record what the run is made from, once its data and model have loaded and before the first step: a run that
    stops on bad input leaves no record (and its folder, if it made it, is removed)."""
    write_inputs(output_dir, inputs)


def finish_from_checkpoint(checkpoint: str | Path, output_dir: str | Path) -> None:
    """Save `checkpoint`'s model (weights, config, tokenizer) as the run's final model: what `save_model` would have
    written at that step."""
    checkpoint, output_dir = Path(checkpoint), Path(output_dir)
    for child in checkpoint.iterdir():
        if child.is_file() and child.name not in RESUME_ONLY and not child.name.startswith("rng_state"):
            shutil.copy2(child, output_dir / child.name)
    shutil.copy2(checkpoint / TRAINER_STATE, output_dir / TRAINER_STATE)


def mark_finished(output_dir: str | Path, inputs: dict, global_step: int) -> None:
    """Record the run's inputs as finished at `global_step`, so that a rerun of the same command does nothing."""
    write_inputs(output_dir, inputs, finished={"global_step": int(global_step)})

