"""ProFit / baseline SFT from a YAML recipe.

    profit-rl sft --config recipes/Qwen3-0.6B-Base/sft/profit.yaml [--tau 0.2 ...]
    accelerate launch --config_file recipes/accelerate_configs/zero2.yaml -m profit_rl.sft --config ...

The recipe holds the fields of three dataclasses: `SFTDataArguments` (profit_rl.configs: data), `ProFitConfig`
(TRL's SFTConfig plus `selection`, `tau`, ...) and TRL's `ModelConfig` (model id or path, dtype, LoRA, 4/8-bit
loading). Command-line flags override it. The script follows TRL's own `trl/scripts/sft.py`: `--load_in_4bit` /
`--load_in_8bit` load the model quantised (QLoRA with `--use_peft`), `--dataset_train_split` / `--dataset_test_split`
choose the splits, an eval set is read when `--eval_strategy` is not `no`, and `trainer.end()` closes the trackers
and the process group.

Rows are rendered in the tokenizer's chat format (core.chat: for Qwen3-Base, the empty think block is part of the
prompt, never supervised; the saved template makes that its default), and the token that ends an assistant turn
becomes the saved tokenizer's EOS and joins the EOS ids of every checkpoint's generation_config (TRL's `eos_token`),
so that any tool generating from the SFT model stops at the end of its turn. A template that does not show its
end-of-turn token needs `--eos_token TOKEN`.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import nullcontext

from trl import ModelConfig, TrlParser, get_peft_config, get_quantization_config

from profit_rl.core.model_folders import build_hint
from profit_rl.core.chat import ChatFormat
from profit_rl.core.errors import command_errors, config_path, parse_command_line
from profit_rl.core.flags import describe_negations
from profit_rl.core.folders import output_folder
from profit_rl.core.io import InputError
from profit_rl.core.model_folders import ModelPathError, check_model_path, resolve_resume

from .cards import CardInfo
from .configs import SFTDataArguments
from .data.sft_rows import (apply_chat_format, check_truncation, load_sft_dataset, load_sft_eval_dataset,
                             truncation_report)
from .runs import (at_last_step, finish_from_checkpoint, mark_finished, prepare_output_dir, record_inputs,
                   refuse_fresh_start_over_checkpoints, training_inputs)
from .trainer import ProFitConfig, ProFitSFTTrainer

logger = logging.getLogger(__name__)


def build_trainer(data_args: SFTDataArguments, training_args: ProFitConfig, model_args: ModelConfig) -> ProFitSFTTrainer:
    """Everything up to `trainer.train()`: the data in the tokenizer's chat format, its end of turn as the EOS."""
    if model_args.model_name_or_path is None:
        raise InputError("model_name_or_path is required (a hub id or a local checkpoint folder)")
    for what, path in (("model_name_or_path", model_args.model_name_or_path), ("dataset_name", data_args.dataset_name)):
        hint = build_hint(str(path)) if path else None
        if hint:  # an embedded recipe run before its base model and data are built
            raise ModelPathError(f"{what} {path}: no such file or folder; the embedded recipes read the embedded "
                                 f"build: run `{hint}` first")
    check_model_path(model_args.model_name_or_path, "model_name_or_path")
    training_args.model_init_kwargs = {
        **(training_args.model_init_kwargs or {}),
        "revision": model_args.model_revision,
        "dtype": model_args.dtype,
        **({"attn_implementation": model_args.attn_implementation} if model_args.attn_implementation else {}),
    }
    tokenizer = load_tokenizer(model_args.model_name_or_path, model_args.model_revision, training_args)
    chat = ChatFormat(tokenizer, training_args.eos_token).bake()  # checkpoints then prompt as trained, by default
    # TRL's eos_token: the tokenizer's EOS and the generation config's EOS ids, saved with every checkpoint
    training_args.eos_token = chat.end_of_turn
    dataset = apply_chat_format(load_sft_dataset(data_args), chat)
    if not training_args.packing:  # packing chunks rows to max_length instead of cutting them
        cut = truncation_report(dataset, chat, training_args.max_length, training_args.truncation_mode)
        check_truncation(cut, len(dataset), training_args.max_length, data_args.max_truncated_fraction,
                         data_args.dataset_name)
    eval_dataset = None
    if training_args.eval_strategy != "no":
        eval_dataset = apply_chat_format(load_sft_eval_dataset(data_args), chat)
    trainer = ProFitSFTTrainer(
        model=model_args.model_name_or_path,
        args=training_args,
        train_dataset=dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        quantization_config=get_quantization_config(model_args),
        peft_config=get_peft_config(model_args),
    )
    trainer.card_info = CardInfo(dataset=data_args.dataset_name, recipe=config_path(sys.argv),
                                 initial_checkpoint=model_args.model_name_or_path)
    return trainer


def run(data_args: SFTDataArguments, training_args: ProFitConfig, model_args: ModelConfig) -> str:
    """Train and save; returns the output directory (model, tokenizer, trainer state).

    The folder's record of its inputs decides what a rerun does (profit_rl.runs): a finished run is left as it is, a
    run made from other inputs is refused, a checkpoint at the last step becomes the final model without training."""
    output_dir = training_args.output_dir
    is_main = training_args.process_index == 0
    inputs = training_inputs("sft", model_args.model_name_or_path, data_args.dataset_name, data_args, training_args,
                             model_args)
    state = prepare_output_dir(output_dir, inputs, training_args.overwrite_output_dir, is_main)
    if state.finished:
        logger.info("%s", state.message)
        print(f"profit-rl sft: {state.message}")
        return output_dir
    # `last` (what the pipeline passes): the newest COMPLETE checkpoint-N; one killed mid-save is skipped
    resume = resolve_resume(training_args.resume_from_checkpoint, output_dir)
    if not training_args.overwrite_output_dir:
        refuse_fresh_start_over_checkpoints(output_dir, training_args.resume_from_checkpoint,
                                            "--resume_from_checkpoint last")
    last = at_last_step(resume)
    if last:  # killed after its last checkpoint: resuming would train one step past max_steps
        logger.info("%s is at the run's last step (%d): saving it as the final model, without training", resume,
                    last["global_step"])
        if is_main:
            finish_from_checkpoint(resume, output_dir)
            mark_finished(output_dir, inputs, last["global_step"])
        return output_dir
    trainer = build_trainer(data_args, training_args, model_args)
    if is_main:
        record_inputs(output_dir, inputs)
    if resume:
        logger.info("Resuming from %s", resume)
    result = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(output_dir)
    if trainer.is_world_process_zero():
        mark_finished(output_dir, inputs, result.global_step)
    trainer.end()  # finish the trackers (TensorBoard, W&B) and destroy the process group, as TRL's script does
    return output_dir


def load_tokenizer(model: str, revision: str | None, training_args: ProFitConfig):
    """The model's tokenizer, with the recipe's chat template file (chat_template_path) when it names one."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model, revision=revision)
    path = training_args.chat_template_path
    if path is not None:
        if not (os.path.isfile(path) and path.endswith((".jinja", ".j2"))):
            raise InputError(f"chat_template_path {path!r}: profit-rl sft takes a .jinja template file (a model to "
                             "clone the template from would add tokens after the chat format is read)")
        with open(path, encoding="utf-8") as f:
            tokenizer.chat_template = f.read()
        training_args.chat_template_path = None  # set here; TRL setting it again would undo the chat format's defaults
    return tokenizer


def parse(argv: list[str] | None = None):
    """(data args, ProFitConfig, ModelConfig) from the command line and any `--config` recipe; a bad flag or file is a
    one-line UsageError."""
    parser = describe_negations(TrlParser((SFTDataArguments, ProFitConfig, ModelConfig), prog="profit-rl sft"))
    return parse_command_line(parser.parse_args_and_config, list(sys.argv[1:] if argv is None else argv))


@command_errors("sft")
def main(argv: list[str] | None = None) -> int:
    """`profit-rl sft`: train with the output folder locked by the main process, and return the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    data_args, training_args, model_args = parse(argv)
    # one line per rank: a multi-node launch shows here whether every rank joined the expected world
    logger.info("SFT process rank %d of %d on %s", training_args.process_index, training_args.world_size,
                training_args.device)
    # the main process holds output_dir for the run: a second run on it stops instead of mixing checkpoints
    with output_folder(training_args.output_dir, "profit-rl sft " + " ".join(argv)) \
            if training_args.process_index == 0 else nullcontext():
        run(data_args, training_args, model_args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
