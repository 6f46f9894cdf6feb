"""Answer extraction, math-verify scoring under a hard deadline, and GRPO reward functions (TRL signature).

Installed and imported as `profit_rl.rewards` (the repository's rewards/ folder, through the profit_rl/rewards
symlink). Layering: it imports neither `profit_rl.evals` nor the rest of `profit_rl` (nor torch or TRL).
    rewards.answers  extract_answer, gold_answer, normalize_answer: pure string functions, shared with evals
    rewards.verify   score_answer, Outcome: what a verdict is (math-verify in this process, no deadline)
    rewards.pool     VerifierPool, verify_batch, get_default_pool: score_answer in worker processes, hard deadlines
    rewards.worker   the verifier processes (a fork server and its workers); runs outside the caller
    rewards.math     accuracy_reward, format_reward: TRL reward functions (DAPO's overlong penalty is TRL's
                     own `trl.rewards.get_soft_overlong_punishment`, which `profit-rl grpo` uses)
"""

if __name__ == "rewards":
    # A checkout's root on sys.path also shows this folder under its bare name. Importing it that way would load a
    # second copy of every module (and a second verifier pool), so it stops here.
    raise ImportError(
        "profit-rl's rewards package is `profit_rl.rewards`: import it as `profit_rl.rewards` "
        "(`from profit_rl.rewards import accuracy_reward`, `--reward_funcs profit_rl.rewards.format_reward`)"
    )

from .answers import extract_answer, gold_answer, normalize_answer
from .math import accuracy_reward, completion_text, format_reward
from .pool import PoolStats, VerifierPool, configure_default_pool, get_default_pool, verify_batch

__all__ = [
    "PoolStats",
    "VerifierPool",
    "accuracy_reward",
    "completion_text",
    "configure_default_pool",
    "extract_answer",
    "format_reward",
    "get_default_pool",
    "gold_answer",
    "normalize_answer",
    "verify_batch",
]
