"""Benchmark registry: `--benchmarks` names -> Benchmark classes, imported on demand.

To add a benchmark, write a module with a `Benchmark` subclass and add one line here. Each is built for one protocol
(`evals.protocols`): `get_benchmark("gsm8k", "paper")`.
"""

from __future__ import annotations

import importlib

from profit_rl.core.io import DataError
from ..protocols import DEFAULT_PROTOCOL, get_protocol
from .base import Benchmark, Budget, MissingDataError, Problem

# name -> "module:Class"
REGISTRY = {
    "math500": "profit_rl.evals.benchmarks.math500:MATH500",
    "gsm8k": "profit_rl.evals.benchmarks.gsm8k:GSM8K",
    "aime24": "profit_rl.evals.benchmarks.aime24:AIME24",
    "gpqa": "profit_rl.evals.benchmarks.gpqa:GPQADiamond",
    # IFEval: checkers and scoring in evals/ifeval/, adapted to this interface in evals/benchmarks/ifeval.py
    "ifeval": "profit_rl.evals.benchmarks.ifeval:IFEval",
    # the embedded default's synthetic test set (built by profit_rl.embedded.build; no hub copy)
    "embedded": "profit_rl.evals.benchmarks.embedded:EmbeddedMath",
    # its probes beyond the SFT data (profit_rl.embedded.probe_sets, docs/probes.md)
    "embedded-long": "profit_rl.evals.benchmarks.embedded_probes:EmbeddedLong",
    "embedded-surface": "profit_rl.evals.benchmarks.embedded_probes:EmbeddedSurface",
    "embedded-retention": "profit_rl.evals.benchmarks.embedded_probes:EmbeddedRetention",
}
DEFAULT_BENCHMARKS = list(get_protocol(DEFAULT_PROTOCOL).benchmarks)


def get_benchmark(name: str, protocol: str = DEFAULT_PROTOCOL) -> Benchmark:
    """The benchmark registered as `name`, built for `protocol` (its module is imported only now); a ValueError for an
    unknown name or a protocol the benchmark does not support."""
    if name not in REGISTRY:
        raise ValueError(f"unknown benchmark {name!r}; choose from {', '.join(REGISTRY)}")
    module_name, class_name = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)(protocol)


__all__ = ["Benchmark", "Budget", "DataError", "MissingDataError", "Problem", "REGISTRY", "DEFAULT_BENCHMARKS",
           "get_benchmark"]
