"""The format reward for GRPO (TRL's signature): 1.0 when the completion ends with its answer in a closed `\\boxed{}`.

The prompt asks for the final answer within `\\boxed{}` (`rewards.answers.BOXED_INSTRUCTION`); this reward pays for
that form alone, whatever the answer, as TRL's `think_format_reward` pays for the think block.
"""

from __future__ import annotations

from .answers import completion_text, last_boxed, tail


def format_reward(completions: list, **kwargs) -> list[float]:
    """1.0 when the completion ends its work with a non-empty, closed `\\boxed{...}` (the form the prompt asks for).

    Example:

    >>> from profit_rl.rewards import format_reward
    >>> completions = [[{"role": "assistant", "content": "So x = \\\\boxed{3}."}],
    ...                [{"role": "assistant", "content": "So x = \\\\boxed{3"}],
    ...                [{"role": "assistant", "content": "So x = 3."}]]
    >>> format_reward(completions)
    [1.0, 0.0, 0.0]
    """
    return [1.0 if last_boxed(tail(completion_text(c))) else 0.0 for c in completions]
