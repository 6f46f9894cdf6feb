"""The reward registry (names and dotted paths -> reward functions) and the runnable examples in the rewards'
docstrings."""

from __future__ import annotations

import doctest
import importlib
import re

import pytest

from profit_rl.rewards import accuracy_reward, format_reward
from profit_rl.rewards.registry import REWARD_BUILDERS, REWARD_FUNCS, get_reward_func, get_reward_funcs


@pytest.mark.parametrize("module", ["profit_rl.rewards.accuracy", "profit_rl.rewards.format"])
def test_every_reward_docstring_example_runs(module):
    """Each reward module's `>>>` examples give the output they show (the accuracy example scores on the pool)."""
    found = doctest.testmod(importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert found.attempted >= 2, f"{module} shows no runnable example"
    assert found.failed == 0


def test_every_reward_function_has_an_example():
    for name, func in REWARD_FUNCS.items():
        assert ">>> " in (func.__doc__ or ""), f"reward {name!r} ({func.__qualname__}) has no runnable example"


def test_names_and_dotted_paths_give_the_same_functions():
    assert get_reward_funcs(["accuracy", "format"]) == [accuracy_reward, format_reward]
    assert get_reward_func("profit_rl.rewards.format_reward") is format_reward
    assert get_reward_func("profit_rl.rewards.accuracy.accuracy_reward") is accuracy_reward


def test_an_unknown_name_lists_the_names():
    with pytest.raises(ValueError) as err:
        get_reward_funcs(["accurracy"])
    message = str(err.value)
    assert "'accurracy'" in message
    assert all(re.search(rf"\b{name}\b", message) for name in [*REWARD_FUNCS, *REWARD_BUILDERS])


def test_a_builder_reads_the_run_settings_and_refuses_impossible_ones():
    overlong, = get_reward_funcs(["overlong"], max_completion_length=10, overlong_buffer=4)
    assert overlong(completion_ids=[[0] * 6, [0] * 8]) == [0.0, -0.5]
    with pytest.raises(ValueError, match=re.escape("0 < --overlong_buffer <= max_completion_length (10), got 11")):
        get_reward_funcs(["overlong"], max_completion_length=10, overlong_buffer=11)
    with pytest.raises(ValueError, match="'overlong' is not in --reward_funcs"):
        get_reward_funcs(["format"], max_completion_length=10, overlong_buffer=4)
    with pytest.raises(ValueError, match="reward_weights has 1 entries for 2 reward_funcs"):
        get_reward_funcs(["accuracy", "format"], reward_weights=[1.0])
