"""Old import paths that still work for one release (until 0.3), each with a DeprecationWarning naming the new one.

    MOVED_MODULES["profit_rl.evals.io"] == "profit_rl.core.io"       # import the old path, get the new module's names
    MOVED_NAMES[("profit_rl.evals.chat", "OpenCompassChat")]         # a name that went to another module than the rest
    MOVED_NAMES[("profit_rl.evals.results", "write_json")]           # "module:new_name" for a name that was renamed

`import profit_rl` installs a finder at the end of `sys.meta_path` that answers only for the old paths below (real
modules always win), so no old file stays in the tree. An old module is a stand-in whose attributes are looked up in
the new module on first use, with the warning; `python -m OLD` runs the new module as `__main__`. This table is also
the migration guide: docs/development.md points here.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

REMOVED_IN = "0.3"

MOVED_MODULES: dict[str, str] = {
    # the base layer left evals/ for profit_rl/core/ (training imports nothing from evals)
    "profit_rl.evals.io": "profit_rl.core.io",
    "profit_rl.evals.state": "profit_rl.core.state",
    "profit_rl.evals.errors": "profit_rl.core.errors",
    "profit_rl.evals.folders": "profit_rl.core.folders",
    "profit_rl.evals.identity": "profit_rl.core.identity",
    "profit_rl.evals.dtypes": "profit_rl.core.dtypes",
    "profit_rl.evals.flags": "profit_rl.core.flags",
    "profit_rl.evals.chat": "profit_rl.core.chat",
    "profit_rl.evals.models": "profit_rl.core.model_folders",
    # a module name no other module has (profit_rl/sft.py is the SFT script); its argument class went to configs
    "profit_rl.data.sft": "profit_rl.data.sft_rows",
    # rewards split by kind, as TRL's trl/rewards/: accuracy here, format_reward in profit_rl.rewards.format
    "profit_rl.rewards.math": "profit_rl.rewards.accuracy",
    # distinct module names: one cli.py (the `profit-rl` dispatcher), no two runner.py or probes.py
    "profit_rl.evals.cli": "profit_rl.evals.evaluate",
    "profit_rl.embedded.cli": "profit_rl.embedded.commands",
    "profit_rl.inspect.cli": "profit_rl.inspect.command",
    "profit_rl.evals.runner": "profit_rl.evals.benchmark_runner",
    "profit_rl.evals.ifeval.runner": "profit_rl.evals.ifeval.response_file",
    "profit_rl.embedded.probes": "profit_rl.embedded.probe_sets",
    "profit_rl.evals.benchmarks.probes": "profit_rl.evals.benchmarks.embedded_probes",
    "profit_rl.resources": "profit_rl.recipes",
    # one hard-deadline pool: the paper protocol's scorer runs on the reward's verifier pool
    "profit_rl.evals.benchmarks.deadline": "profit_rl.rewards.deadline_runner",
}

MOVED_NAMES: dict[tuple[str, str], str] = {
    ("profit_rl.evals.chat", "OpenCompassChat"): "profit_rl.evals.benchmarks.opencompass",
    ("profit_rl.embedded.cli", "build_hint"): "profit_rl.core.model_folders",
    # every script's argument classes live in profit_rl.configs
    ("profit_rl.data.sft", "SFTDataArguments"): "profit_rl.configs",
    ("profit_rl.data.sft", "SUPERVISED_TURNS"): "profit_rl.configs",
    # the reward registry: names and dotted paths -> reward functions
    ("profit_rl.grpo", "REWARD_FUNCS"): "profit_rl.rewards.registry",
    ("profit_rl.grpo", "import_reward"): "profit_rl.rewards.registry",
    ("profit_rl.rewards.math", "format_reward"): "profit_rl.rewards.format",
    ("profit_rl.rewards.math", "completion_text"): "profit_rl.rewards.answers",
    # inspect/cli.py split: the command (parsing, files) apart from scoring and statistics
    ("profit_rl.inspect.cli", "InspectConfig"): "profit_rl.inspect.options",
    ("profit_rl.inspect.cli", "TAU_RULES"): "profit_rl.inspect.token_scores",
    ("profit_rl.inspect.cli", "TokenScores"): "profit_rl.inspect.token_scores",
    ("profit_rl.inspect.cli", "InspectedRow"): "profit_rl.inspect.token_scores",
    ("profit_rl.inspect.cli", "load_rows"): "profit_rl.inspect.token_scores",
    ("profit_rl.inspect.cli", "prepare"): "profit_rl.inspect.token_scores",
    ("profit_rl.inspect.cli", "rules_to_record"): "profit_rl.inspect.token_scores",
    ("profit_rl.inspect.cli", "score"): "profit_rl.inspect.token_scores",
    ("profit_rl.inspect.cli", "table_taus"): "profit_rl.inspect.token_scores",
    ("profit_rl.inspect.cli", "kept_marks"): "profit_rl.inspect.token_scores",
    ("profit_rl.inspect.cli", "token_classes"): "profit_rl.inspect.token_scores",
    ("profit_rl.inspect.cli", "inspect_rows"): "profit_rl.inspect.token_scores",
    ("profit_rl.inspect.cli", "summarize"): "profit_rl.inspect.summary",
    ("profit_rl.inspect.cli", "eos_summary"): "profit_rl.inspect.summary",
    ("profit_rl.inspect.cli", "candidates"): "profit_rl.inspect.summary",
    ("profit_rl.inspect.cli", "spearman"): "profit_rl.inspect.stats",
    # a wrapper that added nothing: callers use the atomic writer itself
    ("profit_rl.evals.results", "write_json"): "profit_rl.core.state:write_json_atomic",
}

# profit_rl.pipeline.runner split along its seams; runner.py keeps the command (parse_args, main), and every public
# name it held answers from its new home (PROFILES included: registering a profile there still registers it)
_PIPELINE_RUNNER_SPLIT: dict[str, tuple[str, ...]] = {
    "profit_rl.pipeline.steps": ("STAGES", "DONE", "TRACKED_SUFFIXES", "STARTED", "Step"),
    "profit_rl.pipeline.profiles": (
        "CODE_ROOT", "RECIPES", "SHARED_DATA", "SMOKE_ARGS", "SMOKE_K", "SMOKE_LIMIT", "Sampling", "Checks", "Profile",
        "sampling_for", "checks_for", "task_args", "no_task", "embedded_profile", "SMOLLM2", "SMOLLM2_TASK",
        "smollm2_profile", "QWEN3_ACCELERATE", "recipe_profile", "model_profile", "PROFILES", "resolve_profile",
        "recipe_model", "recipe_value", "rel", "add_profile_args"),
    "profit_rl.pipeline.plan": (
        "METHOD_SELECTION", "launcher", "sft_recipe", "seed_args", "sampling_args", "heavy", "override", "smoke_args",
        "eval_step", "sft_step", "grpo_step", "curve_args", "check_steps", "band_check_step", "plan"),
    "profit_rl.pipeline.scheduler": (
        "check_graph", "input_ids", "changed_inputs", "changed_files", "skippable", "stale_reason", "eta_seconds",
        "by_priority", "startable", "simulate", "print_plan", "STOP_SIGNALS", "STOP_GRACE_S", "stop_on_signals",
        "stop_steps", "run", "run_steps", "next_result"),
}
MOVED_NAMES.update({("profit_rl.pipeline.runner", name): home
                    for home, names in _PIPELINE_RUNNER_SPLIT.items() for name in names})


def new_home(old_module: str, name: str) -> str:
    """The module that now holds `old_module.name` (with ":new_name" when the name was renamed)."""
    return MOVED_NAMES.get((old_module, name)) or MOVED_MODULES[old_module]


def _moved(old: str, home: str, name: str):
    """The object `old` now is, at `home` ("module" or "module:new_name"), after the warning."""
    module, _, new_name = home.partition(":")
    new_name = new_name or name
    _warn(old, f"{module}.{new_name}")
    return getattr(importlib.import_module(module), new_name)


def _warn(old: str, new: str) -> None:
    warnings.warn(f"{old} is deprecated and is removed in profit-rl {REMOVED_IN}: use {new}", DeprecationWarning,
                  stacklevel=4)  # the line that used the old name (above _moved and the module's __getattr__)


_UNSET = object()


class _MovedModule(types.ModuleType):
    """The stand-in for an old module path: each attribute comes from its new home, with a DeprecationWarning."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _moved(f"{self.__name__}.{name}", new_home(self.__name__, name), name)

    def __setattr__(self, name: str, value) -> None:
        """Setting a name through the old path sets it in its new home too (a test's monkeypatch, a registry entry),
        so code reading the new module sees it; deleting it again restores the new home's own value."""
        if name.startswith("__"):  # the import system's own attributes (__spec__, __loader__, ...)
            super().__setattr__(name, value)
            return
        module, _, new_name = new_home(self.__name__, name).partition(":")
        warnings.warn(f"{self.__name__}.{name} is deprecated and is removed in profit-rl {REMOVED_IN}: use "
                      f"{module}.{new_name or name}", DeprecationWarning, stacklevel=2)
        home = importlib.import_module(module)
        originals = self.__dict__.setdefault("__originals__", {})
        originals.setdefault(name, home.__dict__.get(new_name or name, _UNSET))
        setattr(home, new_name or name, value)
        super().__setattr__(name, value)

    def __delattr__(self, name: str) -> None:
        """Undo a set through the old path (monkeypatch's undo deletes what it set): the new home gets back its own."""
        originals = self.__dict__.get("__originals__", {})
        super().__delattr__(name)
        if name in originals:
            original = originals.pop(name)
            module, _, new_name = new_home(self.__name__, name).partition(":")
            home = importlib.import_module(module)
            if original is _UNSET:
                delattr(home, new_name or name)
            else:
                setattr(home, new_name or name, original)

    def __dir__(self):
        """The new module's names."""
        return sorted(set(dir(importlib.import_module(MOVED_MODULES[self.__name__]))))


class MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old paths of MOVED_MODULES, and nothing else."""

    def find_spec(self, fullname, path=None, target=None):
        """A spec for an old path of MOVED_MODULES; None for every other name, which the real finders answer."""
        if fullname not in MOVED_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        """The stand-in module, whose attributes come from the new module."""
        return _MovedModule(spec.name)

    def exec_module(self, module):
        """Nothing to run: the stand-in looks each name up when it is used."""
        pass

    def get_code(self, fullname):
        """`python -m OLD`: run the new module as __main__, after the warning (runpy asks the loader for code)."""
        new = MOVED_MODULES[fullname]
        source = (f"import runpy, sys, warnings\n"
                  f"warnings.warn('python -m {fullname} is deprecated and is removed in profit-rl {REMOVED_IN}: "
                  f"use python -m {new}', DeprecationWarning)\n"
                  f"runpy.run_module({new!r}, run_name='__main__', alter_sys=True)\n")
        return compile(source, f"<moved: {fullname} -> {new}>", "exec")

    def is_package(self, fullname):
        """An old path is a module, never a package."""
        return False


def module_getattr(module_name: str):
    """A module-level `__getattr__` for a module that still exists but gave names away (MOVED_NAMES)."""

    def __getattr__(name: str):
        home = MOVED_NAMES.get((module_name, name))
        if home is None:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        return _moved(f"{module_name}.{name}", home, name)

    return __getattr__


class CheckoutHintFinder(importlib.abc.MetaPathFinder):
    """Last on sys.meta_path: `profit_rl.evals` or `profit_rl.rewards` that no finder found means a checkout on
    sys.path that was never installed (pyproject.toml's package-dir maps those names to the top-level folders only in
    an install). It says so, instead of Python's bare "No module named"."""

    def find_spec(self, fullname, path=None, target=None):
        """Raise for the two mapped packages; None for every other name."""
        if fullname not in ("profit_rl.evals", "profit_rl.rewards"):
            return None
        folder = fullname.split(".")[1]
        raise ModuleNotFoundError(f"No module named {fullname!r}: in a checkout, {fullname} is the top-level {folder}/ "
                                  "folder, which only an install maps there; run `make install` in the checkout",
                                  name=fullname)


def install_checkout_hint() -> None:
    """Append CheckoutHintFinder to sys.meta_path once."""
    if not any(isinstance(finder, CheckoutHintFinder) for finder in sys.meta_path):
        sys.meta_path.append(CheckoutHintFinder())


def install() -> None:
    """Append the finder to sys.meta_path once (after the real finders, so a real module of that name wins)."""
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())
