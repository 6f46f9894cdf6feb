"""ProFit / baseline SFT from a YAML recipe.

    profit-rl sft --config recipes/Qwen3-0.6B-Base/sft/profit.yaml [--tau 0.2 ...]
    accelerate launch --config_file recipes/accelerate_configs/zero2.yaml -m profit_rl.sft --config ...

The recipe holds the fields of three dataclasses: `SFTDataArguments` (data), `ProFitConfig` (TRL's SFTConfig plus
`selection`, `tau`, ...) and TRL's `ModelConfig` (model id or path, dtype, LoRA, 4/8-bit loading). Command-line flags
override it. The script follows TRL's own `trl/scripts/sft.py`: `--load_in_4bit` / `--load_in_8bit` load the model
quantised (QLoRA with `--use_peft`), `--dataset_train_split` / `--dataset_test_split` choose the splits, an eval set is
read when `--eval_strategy` is not `no`, and `trainer.end()` closes the trackers and the process group.
"""

from __future__ import annotations

import logging
import sys
from contextlib import nullcontext

from trl import ModelConfig, TrlParser, get_peft_config, get_quantization_config

from evals.folders import output_folder
from evals.io import InputError
from evals.models import check_model_path, resolve_resume

from .data import SFTDataArguments, load_sft_dataset, load_sft_eval_dataset
from .trainer import ProFitConfig, ProFitSFTTrainer

logger = logging.getLogger(__name__)


def run(data_args: SFTDataArguments, training_args: ProFitConfig, model_args: ModelConfig) -> str:
    """Train and save; returns the output directory (model, tokenizer, trainer state)."""
    if model_args.model_name_or_path is None:
        raise ValueError("model_name_or_path is required (a hub id or a local checkpoint folder)")
    check_model_path(model_args.model_name_or_path, "model_name_or_path")
    training_args.model_init_kwargs = {
        **(training_args.model_init_kwargs or {}),
        "revision": model_args.model_revision,
        "dtype": model_args.dtype,
        **({"attn_implementation": model_args.attn_implementation} if model_args.attn_implementation else {}),
    }
    # `last` (what the pipeline passes): the newest COMPLETE checkpoint-N; one killed mid-save is skipped
    resume = resolve_resume(training_args.resume_from_checkpoint, training_args.output_dir)
    dataset = load_sft_dataset(data_args)
    eval_dataset = load_sft_eval_dataset(data_args) if training_args.eval_strategy != "no" else None
    trainer = ProFitSFTTrainer(
        model=model_args.model_name_or_path,
        args=training_args,
        train_dataset=dataset,
        eval_dataset=eval_dataset,
        quantization_config=get_quantization_config(model_args),
        peft_config=get_peft_config(model_args),
    )
    if resume:
        logger.info("Resuming from %s", resume)
    trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(training_args.output_dir)
    trainer.end()  # finish the trackers (TensorBoard, W&B) and destroy the process group, as TRL's script does
    return training_args.output_dir


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
    except InputError as err:
        print(f"profit-rl sft: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
