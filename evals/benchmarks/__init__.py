"""Benchmark registry: `--benchmarks` names -> Benchmark classes, imported on demand.

To add a benchmark, write a module with a `Benchmark` subclass and add one line here.
"""

from __future__ import annotations

import importlib

from ..io import DataError
from .base import Benchmark, MissingDataError, Problem

# name -> "module:Class"
REGISTRY = {
    "math500": "evals.benchmarks.math500:MATH500",
    "gsm8k": "evals.benchmarks.gsm8k:GSM8K",
    "aime24": "evals.benchmarks.aime24:AIME24",
    "gpqa": "evals.benchmarks.gpqa:GPQADiamond",
    # IFEval: checkers and scoring in evals/ifeval/, adapted to this interface in evals/benchmarks/ifeval.py
    "ifeval": "evals.benchmarks.ifeval:IFEval",
    # the embedded default's synthetic test set (built by profit_rl.embedded.build; no hub copy)
    "embedded": "evals.benchmarks.embedded:EmbeddedMath",
}
DEFAULT_BENCHMARKS = ["math500", "gsm8k", "aime24", "gpqa"]


def get_benchmark(name: str) -> Benchmark:
    if name not in REGISTRY:
        raise ValueError(f"unknown benchmark {name!r}; choose from {', '.join(REGISTRY)}")
    module_name, class_name = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)()


__all__ = ["Benchmark", "DataError", "MissingDataError", "Problem", "REGISTRY", "DEFAULT_BENCHMARKS", "get_benchmark"]
