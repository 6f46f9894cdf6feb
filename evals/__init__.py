"""Benchmarks, samplers and metrics for `profit-rl eval`, `compare` and `curves` (docs/evals.md).

Installed and imported as `profit_rl.evals` (the repository's evals/ folder, mapped there by pyproject.toml's
package-dir).
Imports only `profit_rl.rewards` (for answer extraction and math-verify), never the rest of `profit_rl`.
"""

if __name__ == "evals":
    # A checkout's root on sys.path also shows this folder under its bare name. Importing it that way would load a
    # second copy of every module (two DataError classes, which `except` clauses then miss), so it stops here.
    raise ImportError(
        "profit-rl's evals package is `profit_rl.evals`: import it as `profit_rl.evals`, and run its commands as "
        "`python -m profit_rl.evals.<module>` (`python -m profit_rl.evals.evaluate`, `python -m profit_rl.evals.ifeval`) "
        "or `profit-rl eval`"
    )
