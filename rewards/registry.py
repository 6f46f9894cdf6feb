"""The reward registry: `--reward_funcs` names -> GRPO reward functions, and dotted import paths for any other.

    get_reward_funcs(["accuracy", "format"])                           # the recipes' rewards, by name
    get_reward_funcs(["overlong"], max_completion_length=1024, overlong_buffer=256)
    get_reward_funcs(["profit_rl.rewards.format_reward", "my_pkg.rewards.brevity"])   # dotted paths, as TRL's script

A name is looked up in REWARD_FUNCS (ready functions) or REWARD_BUILDERS (built from the run's settings); anything
else with a dot is imported, from the current directory too, as TRL's `trl/scripts/grpo.py` does. An unknown name is a
ValueError listing the names. A new reward of the toolkit goes in its own module here (one module per kind, as TRL's
`trl/rewards/`) and gets its name below.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable

from .accuracy import accuracy_reward
from .format import format_reward


def soft_overlong_reward(max_completion_length: int | None = None, overlong_buffer: int = 0, **settings):
    """DAPO's soft overlong penalty: 0 up to `max_completion_length - overlong_buffer` tokens, then falling linearly
    to -1 at `max_completion_length` (TRL's own `get_soft_overlong_punishment`)."""
    from trl.rewards import get_soft_overlong_punishment

    if max_completion_length is None or not 0 < overlong_buffer <= max_completion_length:
        raise ValueError(f"reward 'overlong' needs 0 < --overlong_buffer <= max_completion_length "
                         f"({max_completion_length}), got {overlong_buffer}")
    # A callable object, not a closure, so it pickles into TRL's spawned rollout workers.
    return get_soft_overlong_punishment(max_completion_len=max_completion_length, soft_punish_cache=overlong_buffer)


# name -> reward function (TRL's signature: f(prompts, completions, **columns) -> list[float | None])
REWARD_FUNCS: dict[str, Callable] = {
    "accuracy": accuracy_reward,
    "format": format_reward,
}
# name -> builder(**settings) -> reward function, for the rewards that depend on the run's settings
REWARD_BUILDERS: dict[str, Callable] = {
    "overlong": soft_overlong_reward,
}


def reward_names() -> list[str]:
    """Every registered name."""
    return [*REWARD_FUNCS, *REWARD_BUILDERS]


def get_reward_func(name: str, **settings) -> Callable:
    """The reward function called `name` (a registry name or a dotted import path); `settings` feed the builders."""
    if name in REWARD_FUNCS:
        return REWARD_FUNCS[name]
    if name in REWARD_BUILDERS:
        return REWARD_BUILDERS[name](**settings)
    if "." in name:
        return import_reward(name)
    raise ValueError(f"unknown reward_funcs entry {name!r}; choose from {reward_names()} or give a dotted import path "
                     "(my_pkg.rewards.my_reward)")


def get_reward_funcs(names: list[str], *, max_completion_length: int | None = None, overlong_buffer: int = 0,
                     reward_weights: list[float] | None = None) -> list[Callable]:
    """The reward functions for `names`, in order; stops on a setting that no chosen reward reads and on a weight list
    of another length."""
    funcs = [get_reward_func(name, max_completion_length=max_completion_length, overlong_buffer=overlong_buffer)
             for name in names]
    if overlong_buffer > 0 and "overlong" not in names:
        raise ValueError("--overlong_buffer is set but 'overlong' is not in --reward_funcs")
    if reward_weights is not None and len(reward_weights) != len(funcs):
        raise ValueError(f"reward_weights has {len(reward_weights)} entries for {len(funcs)} reward_funcs "
                         f"{list(names)}")
    return funcs


def import_reward(dotted: str) -> Callable:
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
