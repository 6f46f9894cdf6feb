"""The accuracy reward for GRPO (TRL's signature): 1.0 when math-verify judges the final answer equal to the gold.

TRL's GRPOTrainer calls a reward function with the batch's `prompts` and `completions` (plain strings, or for
conversational data lists of messages), every other dataset column as a keyword list (here `answer` or `solution`),
and the helpers `log_metric` / `log_extra`. Scoring goes through the shared `rewards.pool` (hard deadline per item),
and the pool's counters reach the trainer's metrics as `rewards/timeouts`, `rewards/errors`, `rewards/no_answer` and
`rewards/gold_unparseable`.
"""

from __future__ import annotations

import logging

from .answers import completion_text, extract_answer
from .pool import VerifierPool, get_default_pool

logger = logging.getLogger(__name__)

# Where the reward looks for the answer: the box (or ####) only. Evals may be more lenient (see rewards.answers).
REWARD_FALLBACK = "none"


def accuracy_reward(
    completions: list,
    answer: list[str] | None = None,
    solution: list[str] | None = None,
    *,
    log_metric=None,
    pool: VerifierPool | None = None,
    **kwargs,
) -> list[float | None]:
    """1.0 when math-verify judges the completion's final answer equivalent to the gold, else 0.0.

    The gold comes from the dataset's `answer` column (this toolkit's RL data) or, as in TRL's and open-r1's math
    datasets, its `solution` column. It is read as math-verify reads it (`rewards.answers.answer_readings`): a bare
    answer as LaTeX (`\\frac{1}{2}`, `-2,1`), the number after a GSM8K `#### `, and a worked solution with its boxes, or
    prose ("The total is 42."), whole, as TRL's own `accuracy_reward` does, so several boxes make one set. The
    completion's final answer is its last `\\boxed{}` (or a GSM8K `####` line), the form the prompt asks for: an answer
    written any other way earns nothing here (`fallback="none"` in `rewards.answers`), so the policy is never paid for
    ignoring the instruction. None only when math-verify reads nothing in the gold (TRL treats None as "no reward from
    this function"); such items are logged with their gold and counted (`rewards/gold_unparseable`). An item over the
    pool's deadline or whose scoring fails scores 0.0 and is counted in the logged metrics.

    Example:

    >>> from profit_rl.rewards import accuracy_reward
    >>> completions = [[{"role": "assistant", "content": "Half of it: \\\\boxed{\\\\frac{1}{2}}"}],
    ...                [{"role": "assistant", "content": "The answer is 0.5"}]]
    >>> accuracy_reward(completions, answer=["0.5", "0.5"])
    [1.0, 0.0]
    """
    golds = gold_column(answer, solution)
    texts = [completion_text(c) for c in completions]
    scores, stats = (pool or get_default_pool()).score(list(golds), texts, fallback=REWARD_FALLBACK)
    unread = [i for i, score in enumerate(scores) if score is None]
    if unread:
        logger.warning("accuracy_reward: math-verify reads no answer in the gold of %d of %d items (no reward from "
                       "them); first: item %d, gold=%r", len(unread), len(scores), unread[0], str(golds[unread[0]])[:120])
    if log_metric is not None:
        log_metric("rewards/timeouts", float(stats.timeouts))
        log_metric("rewards/errors", float(stats.errors))
        log_metric("rewards/no_answer", stats.no_answer / max(1, stats.items))
        log_metric("rewards/gold_unparseable", float(stats.gold_unparseable))
        log_metric("rewards/verify_seconds", stats.seconds)
    return scores


def gold_column(answer: list[str] | None, solution: list[str] | None) -> list[str]:
    """The batch's gold column: `answer` when the dataset has one, else `solution`."""
    if answer is not None:
        return answer
    if solution is not None:
        return solution
    raise ValueError("accuracy_reward needs the gold in a dataset column named 'answer' or 'solution'; the dataset has "
                     "neither (GRPOTrainer passes every column other than 'prompt' by name)")


def has_answer(completion) -> bool:
    """Whether a completion states a final answer the accuracy reward can read."""
    return extract_answer(completion_text(completion), fallback=REWARD_FALLBACK) is not None
