"""GRPO warm start from an SFT checkpoint, rewarded by math-verify (TRL GRPOTrainer).

    profit-rl grpo --config recipes/Qwen3-0.6B-Base/grpo/math.yaml --model_name_or_path outputs/.../sft
    accelerate launch --config_file recipes/accelerate_configs/zero2.yaml -m profit_rl.grpo --config ...
    python -m profit_rl.grpo --config recipes/Qwen3-0.6B-Base/grpo/math_cpu.yaml --max_steps 2

Arguments come from three dataclasses, as in TRL's and open-r1's scripts: `GRPOScriptArguments` (below: data,
rewards, adapters), TRL's `GRPOConfig` (training and generation) and TRL's `ModelConfig` (dtype, attention, optional
LoRA, 4/8-bit loading). A YAML recipe sets their values; `--key value` on the command line overrides it. As in TRL's
own `trl/scripts/grpo.py`: `--reward_funcs` takes registry names or dotted import paths, `--load_in_4bit` /
`--load_in_8bit` load the policy quantised, `--dataset_test_split` gives an eval set when `--eval_strategy` is not
`no`, and `trainer.end()` closes the trackers and the process group.

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

import importlib
import logging
import os
import sys
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from profit_rl.core.model_folders import build_hint
from profit_rl.core.dtypes import torch_dtype
from profit_rl.core.errors import command_errors, config_path
from profit_rl.core.flags import describe_negations
from profit_rl.core.folders import output_folder
from profit_rl.core.io import InputError
from profit_rl.core.model_folders import check_model_path, is_adapter_dir, resolve_resume
from profit_rl.core.state import write_json_atomic
from profit_rl.rewards.answers import BOXED_INSTRUCTION

from .runs import (at_last_step, finish_from_checkpoint, mark_finished, prepare_output_dir, record_inputs,
                   refuse_fresh_start_over_checkpoints, training_inputs)

logger = logging.getLogger("profit_rl.grpo")

# --reward_funcs names; anything else with a dot is imported (`my_pkg.rewards.my_reward`), as TRL's script does.
REWARD_FUNCS = ("accuracy", "format", "overlong")


@dataclass
class GRPOScriptArguments:
    """What `profit-rl grpo` adds to TRL's GRPOConfig and ModelConfig."""

    dataset_name: str = field(
        default="agentica-org/DeepScaleR-Preview-Dataset",
        metadata={"help": "Training problems: hub dataset id, or a local .jsonl/.json/.parquet file or folder "
                  "(e.g. data/math_train12k/train.jsonl). The paper used DeepScaleR-Preview."},
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Hub dataset configuration name, if any."})
    dataset_train_split: str = field(
        default="train", metadata={"help": "Training split: a hub split, or the file stem in a local folder."}
    )
    dataset_test_split: str = field(
        default="test",
        metadata={"help": "Eval split (read when eval_strategy is not 'no'): a hub split, or the file stem in a local "
                  "folder."},
    )
    eval_dataset_name: str | None = field(
        default=None,
        metadata={"help": "Eval problems, when they are not dataset_name's test split: a hub id or a local file."},
    )
    problem_field: str | None = field(
        default=None, metadata={"help": "Column with the problem. Default: first of problem, question, prompt."}
    )
    answer_field: str | None = field(
        default=None,
        metadata={"help": "Column with the gold. Default: answer, else solution (its last \\boxed{} or #### N)."},
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Keep only the first N rows after decontamination (smoke runs)."}
    )
    decontaminate_against: list[str] = field(
        default_factory=lambda: ["HuggingFaceH4/MATH-500"],
        metadata={"help": "Evaluation sets (hub ids or local files) whose problems are removed from the training "
                  "data, matched on normalised problem text. Pass 'none' to disable."},
    )
    decontamination_split: str = field(default="test", metadata={"help": "Split of the decontamination sets."})
    bad_gold: str = field(
        default="drop",
        metadata={"help": "A row whose gold answer is empty: 'drop' (warn, name the row, count it in "
                  "rl_data_report.json) or 'error' (stop with the file, row and field)."},
    )
    instruction: str = field(
        default=BOXED_INSTRUCTION, metadata={"help": "Appended to every problem in the user message."}
    )
    prompt_format: str = field(
        default="chat",
        metadata={"help": "'chat': messages rendered by the model's chat template (required for SFT checkpoints); "
                  "'plain': 'Problem: ... Solution:' text for a tokenizer without a chat template."},
    )
    reward_funcs: list[str] = field(
        default_factory=lambda: ["accuracy", "format"],
        metadata={"help": "Reward functions, weighted by GRPOConfig.reward_weights: accuracy (math-verify), format "
                  "(a closed \\boxed{}), overlong (DAPO's soft length penalty, TRL's get_soft_overlong_punishment; "
                  "needs overlong_buffer > 0), or a dotted import path of any TRL reward function "
                  "(my_pkg.rewards.my_reward; the current directory is importable)."},
    )
    overlong_buffer: int = field(
        default=0,
        metadata={"help": "Tokens before max_completion_length where the overlong penalty starts (0: no penalty)."},
    )
    reward_timeout: float = field(
        default=5.0, metadata={"help": "Hard deadline per scored completion, seconds; over it the item scores 0."}
    )
    reward_workers: int | None = field(
        default=None, metadata={"help": "Verifier processes per rank. Default: CPU cores / ranks on the node."}
    )
    adapter: str = field(
        default="merge",
        metadata={"help": "When model_name_or_path holds a LoRA adapter: 'merge' it into the base model and train "
                  "the full model, or 'load' it and keep training the adapter."},
    )
    eos_token: str | None = field(
        default=None,
        metadata={"help": "The token that ends an assistant turn (TRL SFTConfig's name), for a chat template that does "
                  "not show it; None reads it from the template."},
    )
    resume: bool = field(
        default=True,
        metadata={"help": "Resume from the newest complete checkpoint in output_dir when there is one (unless "
                  "resume_from_checkpoint names another)."},
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Empty output_dir and train afresh when it holds another run (one made from other inputs, "
                  "or a finished one). Without it, such a folder is refused (docs/reruns.md)."},
    )


# ---------------------------------------------------------------------------------------------------------------------


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
    """The reward functions named by --reward_funcs: registry names (REWARD_FUNCS) or dotted import paths."""
    import profit_rl.rewards
    from trl.rewards import get_soft_overlong_punishment

    funcs = []
    for name in script_args.reward_funcs:
        if name == "accuracy":
            funcs.append(profit_rl.rewards.accuracy_reward)
        elif name == "format":
            funcs.append(profit_rl.rewards.format_reward)
        elif name == "overlong":
            buffer, limit = script_args.overlong_buffer, training_args.max_completion_length
            if not 0 < buffer <= limit:
                raise ValueError(f"reward 'overlong' needs 0 < --overlong_buffer <= max_completion_length ({limit}), "
                                 f"got {buffer}")
            # TRL's DAPO penalty: 0 up to limit - buffer tokens, then falling linearly to -1 at the limit. A callable
            # object, not a closure, so it pickles into TRL's spawned rollout workers.
            funcs.append(get_soft_overlong_punishment(max_completion_len=limit, soft_punish_cache=buffer))
        elif "." in name:
            funcs.append(import_reward(name))
        else:
            raise ValueError(f"unknown reward_funcs entry {name!r}; choose from {list(REWARD_FUNCS)} or give a dotted "
                             "import path (my_pkg.rewards.my_reward)")
    if script_args.overlong_buffer > 0 and "overlong" not in script_args.reward_funcs:
        raise ValueError("--overlong_buffer is set but 'overlong' is not in --reward_funcs")
    weights = training_args.reward_weights
    if weights is not None and len(weights) != len(funcs):
        raise ValueError(f"reward_weights has {len(weights)} entries for {len(funcs)} reward_funcs {script_args.reward_funcs}")
    return funcs


def import_reward(dotted: str):
    """`pkg.module.function` -> the function, importable from the current directory as in TRL's script."""
    module_name, _, attr = dotted.rpartition(".")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        func = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"--reward_funcs {dotted!r}: cannot import it ({type(err).__name__}: {err})") from None
    if not callable(func):
        raise ValueError(f"--reward_funcs {dotted!r} is a {type(func).__name__}, not a function")
    return func


def parse_args(argv: list[str] | None):
    """(script args, GRPOConfig, ModelConfig) from the command line and any `--config` recipe; a bad flag or file is a
    one-line UsageError."""
    from trl import GRPOConfig, ModelConfig, TrlParser

    from profit_rl.core.errors import parse_command_line

    parser = describe_negations(TrlParser((GRPOScriptArguments, GRPOConfig, ModelConfig), prog="profit-rl grpo"))
    return parse_command_line(parser.parse_args_and_config, list(sys.argv[1:] if argv is None else argv))


def build_trainer(script_args, training_args, model_args):
    """Everything up to `trainer.train()`: (trainer, checkpoint to resume from or None, reward pool)."""
    import datasets
    import transformers
    from trl import get_peft_config, get_quantization_config

    from profit_rl.cards import CardInfo, ProFitGRPOTrainer
    from profit_rl.rewards.pool import configure_default_pool, get_default_pool

    from .data.sft import eval_source
    from .data.rl import load_rl_dataset

    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        level=training_args.get_process_log_level(),
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    transformers.utils.logging.set_verbosity(training_args.get_process_log_level())
    rank, world = training_args.process_index, training_args.world_size
    # Our own progress messages (data counts, resume point) on the main process; warnings from every rank.
    logging.getLogger("profit_rl").setLevel(logging.INFO if training_args.should_log else logging.WARNING)
    logger.info("GRPO process rank %d of %d on %s", rank, world, training_args.device)
    if model_args.model_name_or_path is None:
        raise InputError("--model_name_or_path is required: an SFT output folder (or a hub id)")
    hint = build_hint(script_args.dataset_name) if script_args.dataset_name else None
    if hint:  # the embedded recipe run before the embedded build
        raise InputError(f"--dataset_name {script_args.dataset_name}: no such file; the embedded recipes read the "
                         f"embedded build: run `{hint}` first")
    check_model_path(model_args.model_name_or_path, "--model_name_or_path")

    sources = [s for s in script_args.decontaminate_against if s.lower() != "none"]
    shared = dict(config=script_args.dataset_config, problem_field=script_args.problem_field,
                  answer_field=script_args.answer_field, bad_gold=script_args.bad_gold,
                  instruction=script_args.instruction, prompt_format=script_args.prompt_format)
    rows, report = load_rl_dataset(
        script_args.dataset_name,
        script_args.dataset_train_split,
        decontaminate_against=sources,
        decontamination_split=script_args.decontamination_split,
        max_rows=script_args.max_train_samples,
        **shared,
    )
    train_dataset = datasets.Dataset.from_list(rows)
    eval_dataset = None
    if training_args.eval_strategy != "no":
        source = eval_source(script_args.dataset_name, script_args.eval_dataset_name, script_args.dataset_test_split)
        eval_rows, _ = load_rl_dataset(source, script_args.dataset_test_split, **shared)
        eval_dataset = datasets.Dataset.from_list(eval_rows)

    # Bad data stops the run above, before any worker starts. The verifier workers start before the model takes
    # memory: forking a small process is cheap.
    configure_default_pool(num_workers=script_args.reward_workers, timeout=script_args.reward_timeout)
    pool = get_default_pool().start()

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
        os.makedirs(training_args.output_dir, exist_ok=True)
        write_json_atomic(os.path.join(training_args.output_dir, "rl_data_report.json"), report.as_dict())
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
    rank, world = training_args.process_index, training_args.world_size
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
        # Each rank scores its own completions on its own pool: one file per rank, so nothing is hidden by a mean.
        totals = {"rank": rank, "world_size": world, **pool.totals.as_dict()}
        logger.info("reward verifier totals (rank %d): %s", rank, totals)
        stats_dir = Path(training_args.output_dir) / "reward_stats"
        stats_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(stats_dir / f"rank{rank}.json", totals)
        pool.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
