"""Strict and loose scoring of one response, and the four IFEval metrics over many.

Strict: an instruction is followed if the response is not blank and its checker passes on the response as given.
Loose: it is followed if the checker passes on any of the reference's 8 variants of the response (as given, without
its first line, without its last line, without both; each also with every `*` removed). Metric names are lm-eval's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterable

from profit_rl.evals.ifeval.data import IFEvalPrompt

logger = logging.getLogger(__name__)

METRIC_NAMES = ("prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc", "inst_level_loose_acc")


def loose_variants(response: str) -> list[str]:
    """The reference's 8 loose variants, in its order."""
    lines = response.split("\n")
    remove_first = "\n".join(lines[1:]).strip()
    remove_last = "\n".join(lines[:-1]).strip()
    remove_both = "\n".join(lines[1:-1]).strip()
    return [
        response,
        response.replace("*", ""),
        remove_first,
        remove_last,
        remove_both,
        remove_first.replace("*", ""),
        remove_last.replace("*", ""),
        remove_both.replace("*", ""),
    ]


@dataclass
class PromptScore:
    """Scores of one response to one prompt; the lists are aligned with `instruction_id_list`."""

    key: int
    instruction_id_list: list[str]
    strict: list[bool]  # the reference's `follow_instruction_list`, strict mode
    loose: list[bool]  # ... loose mode
    errors: list[str] = field(default_factory=list)  # checker crashes, each scored as not followed

    @property
    def strict_all(self) -> bool:
        """The reference's `follow_all_instructions`, strict mode."""
        return all(self.strict)

    @property
    def loose_all(self) -> bool:
        """The reference's `follow_all_instructions`, loose mode."""
        return all(self.loose)

    def to_dict(self) -> dict:
        """The score as a JSON-ready dict: the reference's fields for strict and loose mode, and the checker errors."""
        return {
            "key": self.key,
            "instruction_id_list": self.instruction_id_list,
            "strict": {"follow_all_instructions": self.strict_all, "follow_instruction_list": self.strict},
            "loose": {"follow_all_instructions": self.loose_all, "follow_instruction_list": self.loose},
            "errors": self.errors,
        }


def _follows(checker, candidate: str, instruction_id: str, errors: list[str]) -> bool:
    if not candidate.strip():
        return False
    try:
        return bool(checker(candidate))
    except Exception as error:  # a checker bug must not lose a long run: score 0, count it, log it
        errors.append(f"{instruction_id}: {type(error).__name__}: {error}")
        logger.warning("IFEval checker %s crashed (scored as not followed): %r", instruction_id, error)
        return False


def score_response(prompt: IFEvalPrompt, response: str) -> PromptScore:
    """Score one response against every instruction of `prompt`, strict and loose."""
    if not isinstance(response, str):
        raise TypeError(f"IFEval key {prompt.key}: response must be a string, got {type(response).__name__}")
    errors: list[str] = []
    variants = loose_variants(response)
    strict, loose = [], []
    for instruction_id, checker in zip(prompt.instruction_id_list, prompt.checkers()):
        strict_followed = _follows(checker, response, instruction_id, errors)
        strict.append(strict_followed)
        # variants[0] is the response itself, so a strict pass is a loose pass without re-checking it.
        loose.append(strict_followed or any(_follows(checker, v, instruction_id, errors) for v in variants[1:]))
    return PromptScore(prompt.key, list(prompt.instruction_id_list), strict, loose, errors)


def aggregate(scores: Iterable[PromptScore]) -> dict[str, float | int]:
    """The four metrics (fractions in [0, 1]) plus the counts behind them."""
    scores = list(scores)
    if not scores:
        raise ValueError("IFEval: no scored prompts to aggregate")
    strict_instructions = [followed for score in scores for followed in score.strict]
    loose_instructions = [followed for score in scores for followed in score.loose]
    return {
        "prompt_level_strict_acc": sum(score.strict_all for score in scores) / len(scores),
        "inst_level_strict_acc": sum(strict_instructions) / len(strict_instructions),
        "prompt_level_loose_acc": sum(score.loose_all for score in scores) / len(scores),
        "inst_level_loose_acc": sum(loose_instructions) / len(loose_instructions),
        "num_prompts": len(scores),
        "num_instructions": len(strict_instructions),
        "num_checker_errors": sum(len(score.errors) for score in scores),
    }
