"""Answer extraction, math-verify scoring under a hard deadline, and GRPO reward functions (TRL signature).

Installed and imported as `profit_rl.rewards` (the repository's rewards/ folder, mapped there by pyproject.toml's
package-dir). Layering: it imports only the base layer `profit_rl.core`, never `profit_rl.evals` nor the rest of
`profit_rl` (nor torch, nor TRL outside the one reward TRL makes).
    rewards.answers  extract_answer, gold_answer, normalize_answer: pure string functions, shared with evals
    rewards.verify   score_answer, Outcome: what a verdict is (math-verify in this process, no deadline)
    rewards.pool     VerifierPool, verify_batch, get_default_pool: score_answer in worker processes, hard deadlines
    rewards.fork_server  the fork server and the worker handles the pool drives
    rewards.worker   the verifier processes (a fork server and its workers); runs outside the caller
    rewards.pool_stats   the pool's counts and one call's state
    rewards.deadline_runner  any importable scorer on the same pool under its own deadline (--protocol paper's)
    rewards.accuracy accuracy_reward: math-verify's verdict on the final answer (TRL reward function)
    rewards.format   format_reward: a closed `\\boxed{}` at the end (TRL reward function)
    rewards.registry get_reward_funcs: `--reward_funcs` names (accuracy, format, overlong: DAPO's penalty, TRL's own
                     `trl.rewards.get_soft_overlong_punishment`) and dotted import paths -> reward functions
    rewards.run_pool start_run_pool, close_run_pool: a training run's verifier pool and its per-rank totals
"""

if __name__ == "rewards":
    # A checkout's root on sys.path also shows this folder under its bare name. Importing it that way would load a
    # second copy of every module (and a second verifier pool), so it stops here.
    raise ImportError(
        "profit-rl's rewards package is `profit_rl.rewards`: import it as `profit_rl.rewards` "
        "(`from profit_rl.rewards import accuracy_reward`, `--reward_funcs profit_rl.rewards.format_reward`)"
    )

from .accuracy import accuracy_reward
from .answers import completion_text, extract_answer, gold_answer, normalize_answer
from .format import format_reward
from .pool import PoolStats, VerifierPool, configure_default_pool, get_default_pool, verify_batch
from .registry import REWARD_FUNCS, get_reward_funcs

__all__ = [
    "PoolStats",
    "REWARD_FUNCS",
    "VerifierPool",
    "accuracy_reward",
    "completion_text",
    "configure_default_pool",
    "extract_answer",
    "format_reward",
    "get_default_pool",
    "get_reward_funcs",
    "gold_answer",
    "normalize_answer",
    "verify_batch",
]
