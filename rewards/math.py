"""GRPO reward functions for math with TRL's signature: `f(prompts, completions, **columns) -> list[float | None]`.

TRL's GRPOTrainer calls each function with the batch's `prompts` and `completions` (plain strings, or for
conversational data lists of messages), every other dataset column as a keyword list (here `answer`), and the
helpers `log_metric` / `log_extra`. Scoring goes through the shared `rewards.pool` (hard deadline per item), and the
pool's counters reach the trainer's metrics as `rewards/timeouts`, `rewards/errors` and `rewards/no_answer`.
"""

from __future__ import annotations

from .answers import extract_answer, last_boxed, tail
from .pool import VerifierPool, get_default_pool

# Where the reward looks for the answer: the box (or ####) only. Evals may be more lenient (see rewards.answers).
REWARD_FALLBACK = "none"


def completion_text(completion) -> str:
    """The text of one completion: a string, or the content of the last message of a conversational completion."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    if isinstance(completion, list) and completion:
        content = completion[-1].get("content", "") if isinstance(completion[-1], dict) else completion[-1]
        if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
            return "".join(part.get("text", "") for part in content if isinstance(part, dict))
        return content if isinstance(content, str) else ""
    return ""


def accuracy_reward(
    completions: list, answer: list[str], *, log_metric=None, pool: VerifierPool | None = None, **kwargs
) -> list[float | None]:
    """1.0 when math-verify judges the completion's final answer equivalent to the gold in `answer`, else 0.0.

    The final answer is the last `\\boxed{}` (or a GSM8K `####` line), the form the prompt asks for: an answer
    written any other way earns nothing here (`fallback="none"` in `rewards.answers`), so the policy is never paid for
    ignoring the instruction, and free text never reaches sympy. None when the gold itself cannot be parsed (the RL
    loader rejects such rows, so this is rare; TRL treats None as "no reward from this function"). An item over the
    pool's deadline or whose scoring fails scores 0.0 and is counted in the logged metrics.
    """
    texts = [completion_text(c) for c in completions]
    scores, stats = (pool or get_default_pool()).score(list(answer), texts, fallback=REWARD_FALLBACK)
    if log_metric is not None:
        log_metric("rewards/timeouts", float(stats.timeouts))
        log_metric("rewards/errors", float(stats.errors))
        log_metric("rewards/no_answer", stats.no_answer / max(1, stats.items))
        log_metric("rewards/verify_seconds", stats.seconds)
    return scores


def format_reward(completions: list, **kwargs) -> list[float]:
    """1.0 when the completion ends its work with a non-empty, closed `\\boxed{...}` (the form the prompt asks for)."""
    return [1.0 if last_boxed(tail(completion_text(c))) else 0.0 for c in completions]


def make_overlong_penalty(max_completion_length: int, buffer: int):
    """DAPO's soft overlong penalty as a reward function: 0 up to `max_completion_length - buffer` tokens, then
    falling linearly to -1 at `max_completion_length` (and -1 beyond). Off unless the recipe asks for it."""
    if not 0 < buffer <= max_completion_length:
        raise ValueError(f"need 0 < buffer <= max_completion_length, got {buffer} and {max_completion_length}")
    free = max_completion_length - buffer

    def overlong_penalty(completions: list, completion_ids: list | None = None, **kwargs) -> list[float]:
        if completion_ids is None:
            raise ValueError("overlong_penalty needs completion_ids (TRL's GRPOTrainer passes them)")
        return [max(-1.0, min(0.0, (free - len(ids)) / buffer)) for ids in completion_ids]

    return overlong_penalty


def has_answer(completion) -> bool:
    """Whether a completion states a final answer the accuracy reward can read."""
    return extract_answer(completion_text(completion), fallback=REWARD_FALLBACK) is not None
