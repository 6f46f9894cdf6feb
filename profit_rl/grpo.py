"""GRPO warm start from an SFT checkpoint, rewarded by math-verify (TRL GRPOTrainer).

    profit-rl grpo --config recipes/Qwen3-0.6B-Base/grpo/math.yaml --model_name_or_path outputs/.../sft
    accelerate launch --config_file recipes/accelerate_configs/zero2.yaml -m profit_rl.grpo --config ...
    python -m profit_rl.grpo --config recipes/Qwen3-0.6B-Base/grpo/math_cpu.yaml --max_steps 2

Arguments come from three dataclasses, as in TRL's and open-r1's scripts: `GRPOScriptArguments` (profit_rl.configs:
data, rewards, adapters), TRL's `GRPOConfig` (training and generation) and TRL's `ModelConfig` (dtype, attention,
optional LoRA, 4/8-bit loading). A YAML recipe sets their values; `--key value` on the command line overrides it. As
in TRL's own `trl/scripts/grpo.py`: `--reward_funcs` takes registry names (profit_rl.rewards.registry) or dotted
import paths, `--load_in_4bit` / `--load_in_8bit` load the policy quantised, `--dataset_test_split` gives an eval set
when `--eval_strategy` is not `no`, and `trainer.end()` closes the trackers and the process group.

The model is an SFT output folder (or any hub id). A folder holding a LoRA adapter (adapter_config.json) is merged
into its base model (`--adapter merge`, the default: GRPO then trains the full model) or loaded as a trainable
adapter (`--adapter load`: GRPO trains the adapter; checkpoints are adapters). Prompts are chat messages that the
model's chat template renders in its chat format (core.chat: the generation prompt SFT trained under), asking for the
final answer in `\\boxed{}`. Generation stops at the end of the assistant's turn on both backends: the end-of-turn
token becomes the tokenizer's EOS and joins the model's generation-config EOS ids (saved with every checkpoint), and
vLLM gets it as a stop token. Checkpoints land in
`output_dir/checkpoint-N` every `save_steps` (these feed the Pass@k curves); a rerun of the same command resumes
from the newest complete checkpoint.

Heavy imports stay inside functions, so that `--help` and argument errors come back at once.
"""

from __future__ import annotations

import logging
import sys
from contextlib import nullcontext
from pathlib import Path

from profit_rl.configs import GRPOScriptArguments
from profit_rl.core.dtypes import torch_dtype
from profit_rl.core.errors import command_errors, config_path
from profit_rl.core.flags import describe_negations
from profit_rl.core.folders import output_folder
from profit_rl.core.io import InputError
from profit_rl.core.logs import setup_training_logging
from profit_rl.core.model_folders import build_hint, check_model_path, is_adapter_dir, resolve_resume
from profit_rl.deprecated import module_getattr
from profit_rl.rewards.registry import get_reward_funcs
from profit_rl.rewards.run_pool import close_run_pool, start_run_pool

from .data.rl import load_grpo_datasets, write_rl_data_report
from .runs import (at_last_step, finish_from_checkpoint, mark_finished, prepare_output_dir, record_inputs,
                   refuse_fresh_start_over_checkpoints, training_inputs)

logger = logging.getLogger("profit_rl.grpo")

__getattr__ = module_getattr(__name__)  # REWARD_FUNCS, import_reward moved to profit_rl.rewards.registry


def load_policy(model_args, script_args, training_args):
    """The model to train: a path string for TRL to load, or a loaded model when the path holds a LoRA adapter."""
    from trl import get_quantization_config

    path = model_args.model_name_or_path
    dtype = torch_dtype(model_args.dtype or "auto")  # TRL's words; "auto" stays the checkpoint's own dtype
    init_kwargs = {"dtype": dtype, "revision": model_args.model_revision}
    if model_args.attn_implementation:
        init_kwargs["attn_implementation"] = model_args.attn_implementation
    if not is_adapter_dir(path):
        # TRL loads the path itself; build_trainer hands it get_quantization_config(model_args)
        training_args.model_init_kwargs = {**init_kwargs, **(training_args.model_init_kwargs or {})}
        return path
    from peft import PeftConfig, PeftModel
    from transformers import AutoModelForCausalLM

    if script_args.adapter not in ("merge", "load"):
        raise ValueError(f"--adapter must be 'merge' or 'load', got {script_args.adapter!r}")
    quantization = get_quantization_config(model_args)
    if quantization is not None and script_args.adapter == "merge":
        raise ValueError(f"{path} is a LoRA adapter and --load_in_4bit/--load_in_8bit is set: merging an adapter "
                         "into quantised weights is lossy. Pass --adapter load to keep training the adapter on the "
                         "quantised base (QLoRA), or drop the quantisation flag.")
    base_path = PeftConfig.from_pretrained(path).base_model_name_or_path
    logger.info("%s is a LoRA adapter on %s: %s", path, base_path, script_args.adapter)
    base_kwargs = {k: v for k, v in init_kwargs.items() if k != "revision"}
    if quantization is not None:
        base_kwargs["quantization_config"] = quantization
    base = AutoModelForCausalLM.from_pretrained(base_path, **base_kwargs)
    model = PeftModel.from_pretrained(base, path, is_trainable=script_args.adapter == "load")
    if script_args.adapter == "load":
        return model
    merged = model.merge_and_unload()
    merged.requires_grad_(True)  # PEFT froze the base weights; after merging, GRPO trains all of them
    return merged


def load_tokenizer(model_args):
    """The model's tokenizer, padding and truncating on the left as generation needs; an adapter folder saved without
    one gets its base model's."""
    from transformers import AutoTokenizer

    path = model_args.model_name_or_path
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left", truncation_side="left")
    except (OSError, ValueError):
        if not is_adapter_dir(path):
            raise
        from peft import PeftConfig  # an adapter folder saved without its tokenizer: use the base model's

        base_path = PeftConfig.from_pretrained(path).base_model_name_or_path
        tokenizer = AutoTokenizer.from_pretrained(base_path, padding_side="left", truncation_side="left")
    return tokenizer


def stop_at_end_of_turn(tokenizer, script_args, training_args) -> list[int]:
    """Make GRPO generate in the tokenizer's chat format and stop at the end of the turn; returns the stop token ids.

    Chat prompts use the format SFT trained under (made the tokenizer template's default, as SFT saves it). The
    end-of-turn token becomes the tokenizer's EOS, as TRL's SFTConfig.eos_token makes it in SFT: TRL's transformers
    generation stops at the tokenizer's EOS and the model's generation-config EOS ids. vLLM (colocated or server)
    reads the model folder's own files, so it is given the stop tokens per request (generation_kwargs)."""
    from profit_rl.core.chat import ChatFormat

    if script_args.prompt_format == "chat":
        # the format as the template's default: GRPO's prompts and its saved checkpoints both use it
        chat = ChatFormat(tokenizer, script_args.eos_token).bake()
        end_of_turn, stop_ids = chat.end_of_turn, chat.stop_token_ids()
    else:  # plain text: the turn is the whole sequence
        end_of_turn = script_args.eos_token or tokenizer.eos_token
        stop_ids = [tokenizer.convert_tokens_to_ids(end_of_turn)]
    if tokenizer.eos_token != end_of_turn:
        logger.info("EOS: %s -> %s (the token that ends an assistant turn)", tokenizer.eos_token, end_of_turn)
        tokenizer.eos_token = end_of_turn
    if training_args.use_vllm:
        kwargs = dict(training_args.generation_kwargs or {})
        kwargs["stop_token_ids"] = list(dict.fromkeys([*kwargs.get("stop_token_ids", []), *stop_ids]))
        training_args.generation_kwargs = kwargs
    return stop_ids


def add_eos_ids(model, tokenizer, stop_ids: list[int]) -> None:
    """The end-of-turn EOS (`stop_at_end_of_turn`'s stop ids) on the model's config and generation config, as TRL's
    SFTTrainer writes `eos_token`: every checkpoint GRPO saves stops at the end of the turn in any tool."""
    from profit_rl.core.chat import checkpoint_eos_ids

    model.config.get_text_config().eos_token_id = tokenizer.eos_token_id
    model.generation_config.eos_token_id = checkpoint_eos_ids(stop_ids, model.generation_config)


def build_reward_funcs(script_args, training_args) -> list:
    """The reward functions named by --reward_funcs (profit_rl.rewards.registry: names or dotted import paths)."""
    return get_reward_funcs(script_args.reward_funcs, max_completion_length=training_args.max_completion_length,
                            overlong_buffer=script_args.overlong_buffer, reward_weights=training_args.reward_weights)


def parse_args(argv: list[str] | None):
    """(script args, GRPOConfig, ModelConfig) from the command line and any `--config` recipe; a bad flag or file is a
    one-line UsageError."""
    from trl import GRPOConfig, ModelConfig, TrlParser

    from profit_rl.core.errors import parse_command_line

    parser = describe_negations(TrlParser((GRPOScriptArguments, GRPOConfig, ModelConfig), prog="profit-rl grpo"))
    return parse_command_line(parser.parse_args_and_config, list(sys.argv[1:] if argv is None else argv))


def build_trainer(script_args, training_args, model_args):
    """Everything up to `trainer.train()`: (trainer, checkpoint to resume from or None, reward pool)."""
    from trl import get_peft_config, get_quantization_config

    from profit_rl.cards import CardInfo, ProFitGRPOTrainer

    setup_training_logging(training_args)
    logger.info("GRPO process rank %d of %d on %s", training_args.process_index, training_args.world_size,
                training_args.device)
    if model_args.model_name_or_path is None:
        raise InputError("--model_name_or_path is required: an SFT output folder (or a hub id)")
    hint = build_hint(script_args.dataset_name) if script_args.dataset_name else None
    if hint:  # the embedded recipe run before the embedded build
        raise InputError(f"--dataset_name {script_args.dataset_name}: no such file; the embedded recipes read the "
                         f"embedded build: run `{hint}` first")
    check_model_path(model_args.model_name_or_path, "--model_name_or_path")

    train_dataset, eval_dataset, report = load_grpo_datasets(script_args, training_args.eval_strategy != "no")
    # Bad data stops the run above, before any worker starts. The verifier workers start before the model takes
    # memory: forking a small process is cheap.
    pool = start_run_pool(script_args.reward_workers, script_args.reward_timeout)

    tokenizer = load_tokenizer(model_args)
    if script_args.prompt_format == "chat" and tokenizer.chat_template is None:
        raise ValueError(
            f"{model_args.model_name_or_path} has no chat template; GRPO prompts are chat messages. Start from an SFT "
            "checkpoint (it saves the template) or pass --prompt_format plain."
        )
    stop_ids = stop_at_end_of_turn(tokenizer, script_args, training_args)
    model = load_policy(model_args, script_args, training_args)
    reward_funcs = build_reward_funcs(script_args, training_args)

    resume_from = resume_point(script_args, training_args)
    if resume_from:
        if not (Path(resume_from) / "optimizer.pt").exists():
            logger.warning("%s has no optimizer state (save_only_model?): resuming weights and step count only, the "
                           "optimizer restarts from zero", resume_from)
        logger.info("Resuming from %s", resume_from)

    trainer = ProFitGRPOTrainer(  # TRL's GRPOTrainer, with a profit-rl model card in every saved folder
        card_info=CardInfo(script_args.dataset_name, config_path(sys.argv), model_args.model_name_or_path),
        model=model,
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        # a policy loaded here (a LoRA folder) is already quantised or not: TRL only quantises a path it loads
        quantization_config=get_quantization_config(model_args) if isinstance(model, str) else None,
        peft_config=get_peft_config(model_args),
    )
    add_eos_ids(trainer.model, tokenizer, stop_ids)
    if trainer.is_world_process_zero():
        write_rl_data_report(report, training_args.output_dir)
    return trainer, resume_from, pool


def resume_point(script_args, training_args) -> str | None:
    """The checkpoint this run resumes from: --resume_from_checkpoint, else (--resume) the newest complete one."""
    requested = training_args.resume_from_checkpoint
    return resolve_resume("last" if requested is None and script_args.resume else requested, training_args.output_dir)


@command_errors("grpo")
def main(argv: list[str] | None = None) -> int:
    """`profit-rl grpo`: train with the output folder locked by the main process, and return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    script_args, training_args, model_args = parse_args(argv)
    # the main process holds output_dir for the run: a second run on it stops instead of mixing checkpoints
    with output_folder(training_args.output_dir, "profit-rl grpo " + " ".join(argv)) \
            if training_args.process_index == 0 else nullcontext():
        return train(script_args, training_args, model_args)


def train(script_args, training_args, model_args) -> int:
    """Train and save, unless the output folder's record of its inputs says otherwise (profit_rl.runs): a finished
    run is left as it is, a run made from other inputs is refused, a checkpoint at the last step becomes the final
    model without training."""
    output_dir, is_main = training_args.output_dir, training_args.process_index == 0
    inputs = training_inputs("grpo", model_args.model_name_or_path, script_args.dataset_name, script_args,
                             training_args, model_args, skip=("reward_workers",))
    state = prepare_output_dir(output_dir, inputs, script_args.overwrite_output_dir, is_main)
    if state.finished:
        logger.info("%s", state.message)
        print(f"profit-rl grpo: {state.message}")
        return 0
    resume = resume_point(script_args, training_args)
    if not script_args.overwrite_output_dir:
        requested = training_args.resume_from_checkpoint or script_args.resume
        refuse_fresh_start_over_checkpoints(output_dir, requested, "--resume true")
    last = at_last_step(resume)
    if last:  # killed after its last checkpoint: resuming would train one step past max_steps
        checkpoint = Path(output_dir) / f"checkpoint-{last['global_step']}"
        logger.info("%s is at the run's last step: saving it as the final model, without training", checkpoint)
        if is_main:
            finish_from_checkpoint(checkpoint, output_dir)
            mark_finished(output_dir, inputs, last["global_step"])
        return 0
    trainer, resume_from, pool = build_trainer(script_args, training_args, model_args)
    if is_main:
        record_inputs(output_dir, inputs)
    try:
        result = trainer.train(resume_from_checkpoint=resume_from)
        trainer.log_metrics("train", result.metrics)
        trainer.save_metrics("train", result.metrics)
        trainer.save_state()
        trainer.save_model(output_dir)
        if trainer.is_world_process_zero():
            mark_finished(output_dir, inputs, result.global_step)
        trainer.end()  # finish the trackers (TensorBoard, W&B) and destroy the process group, as TRL's script does
    finally:
        close_run_pool(pool, output_dir, training_args.process_index, training_args.world_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
