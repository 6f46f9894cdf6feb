"""IFEval (Zhou et al. 2023): the 25 instruction checks of google-research `instruction_following_eval`, strict and
loose, with lm-eval's metric names, fully offline.

    prompts = load_prompts("google/IFEval")            # or a local input_data.jsonl / a directory holding one
    score = score_response(prompts[0], "some response")  # PromptScore: .strict / .loose lists, .strict_all, ...
    metrics = aggregate([score, ...])                   # prompt_level_strict_acc, inst_level_strict_acc, ...

`score_response_file(path, input_data)` (and `python -m profit_rl.evals.ifeval --responses FILE`) scores a
reference-format response file of {"prompt": ..., "response": ...} rows.
"""

from profit_rl.evals.ifeval.data import HUB_ID, IFEvalDataError, IFEvalPrompt, load_prompts, read_responses
from profit_rl.evals.ifeval.instructions import INSTRUCTION_IDS, LETTER_FALLBACK_SEED, InstructionError, build_checker
from profit_rl.evals.ifeval.response_file import score_response_file
from profit_rl.evals.ifeval.scoring import METRIC_NAMES, PromptScore, aggregate, loose_variants, score_response
from profit_rl.evals.ifeval.text import LANGDETECT_SEED

__all__ = [
    "HUB_ID", "IFEvalDataError", "IFEvalPrompt", "load_prompts", "read_responses",
    "INSTRUCTION_IDS", "LETTER_FALLBACK_SEED", "InstructionError", "build_checker",
    "METRIC_NAMES", "PromptScore", "aggregate", "loose_variants", "score_response", "score_response_file",
    "LANGDETECT_SEED",
]  # fmt: skip
