"""Benchmarks, samplers and metrics for `profit-rl eval`, `compare` and `curves` (see README.md).

Imports only `rewards` (for answer extraction and math-verify), never `profit_rl`.
"""
