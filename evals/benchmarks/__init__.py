"""Benchmark registry: `--benchmarks` names -> Benchmark classes, imported on demand.

To add a benchmark, write a module with a `Benchmark` subclass and add one line here.
"""

from __future__ import annotations

import importlib

from .base import Benchmark, MissingDataError, Problem, RowError

# name -> "module:Class"
REGISTRY = {
    "math500": "evals.benchmarks.math500:MATH500",
    "gsm8k": "evals.benchmarks.gsm8k:GSM8K",
    "aime24": "evals.benchmarks.aime24:AIME24",
    "gpqa": "evals.benchmarks.gpqa:GPQADiamond",
    # IFEval is built on its own branch in evals/ifeval/; see get_benchmark below.
    "ifeval": "evals.ifeval:IFEval",
}
DEFAULT_BENCHMARKS = ["math500", "gsm8k", "aime24", "gpqa"]


def get_benchmark(name: str) -> Benchmark:
    if name not in REGISTRY:
        raise ValueError(f"unknown benchmark {name!r}; choose from {', '.join(REGISTRY)}")
    module_name, class_name = REGISTRY[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if name == "ifeval" and err.name and err.name.startswith("evals.ifeval"):
            raise ValueError("the ifeval benchmark is not installed in this checkout (evals/ifeval/ is missing)") from err
        raise
    return getattr(module, class_name)()


__all__ = ["Benchmark", "MissingDataError", "Problem", "RowError", "REGISTRY", "DEFAULT_BENCHMARKS", "get_benchmark"]
