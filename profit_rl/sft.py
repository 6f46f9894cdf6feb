"""ProFit / baseline SFT from a YAML recipe.

    profit-rl sft --config recipes/Qwen3-0.6B-Base/sft/profit.yaml [--tau 0.2 ...]
    accelerate launch --config_file recipes/accelerate_configs/zero2.yaml -m profit_rl.sft --config ...

The recipe holds the fields of three dataclasses: `SFTDataArguments` (data), `ProFitConfig` (TRL's SFTConfig plus
`selection`, `tau`, ...) and TRL's `ModelConfig` (model id or path, dtype, LoRA, 4/8-bit loading). Command-line flags
override it. The script follows TRL's own `trl/scripts/sft.py`: `--load_in_4bit` / `--load_in_8bit` load the model
quantised (QLoRA with `--use_peft`), `--dataset_train_split` / `--dataset_test_split` choose the splits, an eval set is
read when `--eval_strategy` is not `no`, and `trainer.end()` closes the trackers and the process group.

Rows are rendered in the tokenizer's chat format (evals.chat: for Qwen3-Base, the empty think block is part of the
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

from profit_rl.evals.chat import ChatFormat
from profit_rl.evals.folders import output_folder
from profit_rl.evals.io import InputError
from profit_rl.evals.models import check_model_path, resolve_resume

from .cards import CardInfo, recipe_from_argv
from .data.sft import SFTDataArguments, apply_chat_format, load_sft_dataset, load_sft_eval_dataset
from .trainer import EmptySelectionError, ProFitConfig, ProFitSFTTrainer

logger = logging.getLogger(__name__)


def build_trainer(data_args: SFTDataArguments, training_args: ProFitConfig, model_args: ModelConfig) -> ProFitSFTTrainer:
    """Everything up to `trainer.train()`: the data in the tokenizer's chat format, its end of turn as the EOS."""
    if model_args.model_name_or_path is None:
        raise ValueError("model_name_or_path is required (a hub id or a local checkpoint folder)")
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
    trainer.card_info = CardInfo(dataset=data_args.dataset_name, recipe=recipe_from_argv(sys.argv),
                                 initial_checkpoint=model_args.model_name_or_path)
    return trainer


def run(data_args: SFTDataArguments, training_args: ProFitConfig, model_args: ModelConfig) -> str:
    """Train and save; returns the output directory (model, tokenizer, trainer state)."""
    # `last` (what the pipeline passes): the newest COMPLETE checkpoint-N; one killed mid-save is skipped
    resume = resolve_resume(training_args.resume_from_checkpoint, training_args.output_dir)
    trainer = build_trainer(data_args, training_args, model_args)
    if resume:
        logger.info("Resuming from %s", resume)
    trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(training_args.output_dir)
    trainer.end()  # finish the trackers (TensorBoard, W&B) and destroy the process group, as TRL's script does
    return training_args.output_dir


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
    parser = TrlParser((SFTDataArguments, ProFitConfig, ModelConfig))
    return parser.parse_args_and_config(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    data_args, training_args, model_args = parse(argv)
    try:
        # the main process holds output_dir for the run: a second run on it stops instead of mixing checkpoints
        with output_folder(training_args.output_dir, "profit-rl sft " + " ".join(argv)) \
                if training_args.process_index == 0 else nullcontext():
            run(data_args, training_args, model_args)
    except (InputError, EmptySelectionError) as err:
        print(f"profit-rl sft: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
