"""Every old import path of profit_rl.deprecated still gives the new object, with a DeprecationWarning naming the new
path; `python -m OLD` runs the new module; real modules are never shadowed."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest

from profit_rl import deprecated
from tests.test_docstrings import REPO


@pytest.mark.parametrize("old, new", sorted(deprecated.MOVED_MODULES.items()))
def test_an_old_module_path_gives_the_new_objects_with_a_warning(old, new):
    new_module = importlib.import_module(new)
    old_module = importlib.import_module(old)
    public = [n for n in dir(new_module) if not n.startswith("_") and getattr(getattr(new_module, n), "__module__", None) == new]
    assert public, f"{new} defines nothing public"
    for name in public:
        with pytest.warns(DeprecationWarning, match=rf"{old}\.{name} is deprecated .* use {new}\.{name}"):
            assert getattr(old_module, name) is getattr(new_module, name)


@pytest.mark.parametrize("old_module, name", sorted(deprecated.MOVED_NAMES))
def test_a_moved_name_comes_from_its_new_home(old_module, name):
    home, _, new_name = deprecated.MOVED_NAMES[(old_module, name)].partition(":")  # "module:new_name": renamed
    new_name = new_name or name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = importlib.import_module(old_module)
    with pytest.warns(DeprecationWarning, match=rf"use {home}\.{new_name}"):
        assert getattr(module, name) is getattr(importlib.import_module(home), new_name)


def test_from_import_of_an_old_path_warns_and_works():
    from profit_rl.core.io import DataError

    with pytest.warns(DeprecationWarning, match="profit_rl.core.io"):
        from profit_rl.evals.io import DataError as old

    assert old is DataError


def test_an_unknown_name_of_an_old_module_is_an_attribute_error():
    module = importlib.import_module(next(iter(deprecated.MOVED_MODULES)))
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018


def test_python_dash_m_of_an_old_path_runs_the_new_module():
    old = next(o for o, n in deprecated.MOVED_MODULES.items() if n == "profit_rl.core.flags")
    done = subprocess.run([sys.executable, "-W", "always::DeprecationWarning", "-c",
                           f"import profit_rl, runpy; runpy.run_module({old!r}, run_name='__main__', alter_sys=True)"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "use python -m profit_rl.core.flags" in done.stderr


def test_the_finder_answers_only_for_old_paths():
    finder = deprecated.MovedModuleFinder()
    assert finder.find_spec("profit_rl.core.io") is None
    assert finder.find_spec("profit_rl.evals.no_such_module") is None
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("profit_rl.evals.no_such_module")


def test_setting_a_name_through_an_old_path_sets_it_in_the_new_module(monkeypatch):
    """monkeypatch (or a user's registry entry) through an old path must reach the code that reads the new one."""
    from profit_rl.core import state

    old = importlib.import_module("profit_rl.evals.state")
    sentinel = object()
    with pytest.warns(DeprecationWarning, match="use profit_rl.core.state.write_bytes_atomic"):
        monkeypatch.setattr(old, "write_bytes_atomic", sentinel)
    assert state.write_bytes_atomic is sentinel
    monkeypatch.undo()
    assert state.write_bytes_atomic is not sentinel
