"""Every script's argument classes (as open-r1's configs.py): one shared dataset base, SFT's data and GRPO's script.

    profit-rl sft   SFTDataArguments     + trainer.ProFitConfig (TRL's SFTConfig + ProFit) + TRL's ModelConfig
    profit-rl grpo  GRPOScriptArguments  + TRL's GRPOConfig                                 + TRL's ModelConfig

ProFitConfig stays beside its trainer in trainer.py, TRL's config/trainer pair. A YAML recipe sets the fields; `--key
value` on the command line overrides it. The classes are plain dataclasses with nothing heavy imported, so that
`--help`, the data stage (`profit_rl.data.prepare`) and the tools read them without loading a model library.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from profit_rl.rewards.answers import BOXED_INSTRUCTION

SUPERVISED_TURNS = ("all", "last")
# The word that turns a list option off (`--decontaminate_against none`), as TRL's `report_to none`.
NONE = "none"


def without_none(values: list[str]) -> list[str]:
    """`values` without the word "none" (any case): `["none"]` is the empty list that a flag or a recipe can spell."""
    return [value for value in values if value.lower() != NONE]


@dataclass
class DatasetArguments:
    """Where a script's data comes from: the source, its hub config, and the train and eval splits."""

    dataset_name: str | None = field(
        default=None, metadata={"help": "Hub id, or a local .jsonl/.json/.parquet file or folder."}
    )
    dataset_config: str | None = field(
        default=None, metadata={"help": "Hub dataset configuration name, if any (ignored for files)."}
    )
    dataset_train_split: str = field(
        default="train", metadata={"help": "Training split: a hub split, or the file stem in a local folder of splits."}
    )
    dataset_test_split: str = field(
        default="test",
        metadata={"help": "Eval split (read when eval_strategy is not 'no'): a hub split, or the file stem in a local "
                  "folder of splits."},
    )
    eval_dataset_name: str | None = field(
        default=None,
        metadata={"help": "Eval data, when it is not dataset_name's test split: a hub id or a local file or folder."},
    )


@dataclass
class SFTDataArguments(DatasetArguments):
    """Where the SFT data comes from and how rows are chosen. The defaults suit any dataset; what only makes sense for
    one (a hub config, a row count) is set by the recipe that names it."""

    dataset_name: str | None = field(
        default=None,
        metadata={"help": "Hub id, http(s) URL of a .parquet/.json/.jsonl file, or a local .jsonl/.json/.parquet file "
                          "or folder (e.g. data/sft_mix/train.jsonl). Required."},
    )
    num_samples: int | None = field(
        default=None, metadata={"help": "Keep this many rows (conversations), chosen as below; None keeps all."}
    )
    score_column: str | None = field(
        default=None,
        metadata={"help": "Keep the top num_samples rows by this column (e.g. a reward score); None: a seeded sample."},
    )
    sample_seed: int = field(default=0, metadata={"help": "Seed of the sample drawn when there is no score_column."})
    skip_bad_rows: bool = field(
        default=False, metadata={"help": "Skip (and count and log) rows with missing/empty fields instead of failing."}
    )
    max_truncated_fraction: float = field(
        default=0.5,
        metadata={"help": "Stop before training when more than this fraction of SFT rows lose their whole completion "
                          "to max_length (TRL drops such rows); each truncated row is counted and logged either way."},
    )
    supervised_turns: str = field(
        default="all",
        metadata={"help": "Which assistant turns of a multi-turn conversation carry loss: all (LLaMA-Factory's "
                          "default, mask_history=False; one row per turn) or last.", "choices": list(SUPERVISED_TURNS)},
    )


@dataclass
class GRPOScriptArguments(DatasetArguments):
    """What `profit-rl grpo` adds to TRL's GRPOConfig and ModelConfig."""

    dataset_name: str = field(
        default="agentica-org/DeepScaleR-Preview-Dataset",
        metadata={"help": "Training problems: hub dataset id, or a local .jsonl/.json/.parquet file or folder "
                  "(e.g. data/math_train12k/train.jsonl). The paper used DeepScaleR-Preview."},
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

    @property
    def decontamination_sources(self) -> list[str]:
        """The evaluation sets to decontaminate against: `decontaminate_against` without "none"."""
        return without_none(self.decontaminate_against)


def recipe_arguments(cls, recipe: str, what: str = "recipe"):
    """`cls` with the values a YAML recipe sets for its fields; the recipe's other keys (the training config's) are
    left alone, so that reading data settings needs no training config (nor its GPU checks)."""
    from dataclasses import fields

    from profit_rl.core.io import load_yaml

    config = load_yaml(recipe, what) or {}
    names = {f.name for f in fields(cls)}
    return cls(**{key: value for key, value in config.items() if key in names})
