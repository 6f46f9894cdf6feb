"""`profit-rl embedded build`: the embedded default's base model and task data, built offline into a folder.

    profit-rl embedded build [--out-dir outputs/embedded/base]   # what the embedded recipes' model_name_or_path reads

The same as `python -m profit_rl.embedded.build` (its options follow `build`).
"""

from __future__ import annotations

import sys

from profit_rl.core.errors import UsageError, command_errors

ACTIONS = {"build": "the shipped base model and the task data (seconds), or --pretrain one here (minutes)"}



@command_errors("embedded")
def main(argv: list[str] | None = None) -> int:
    """`profit-rl embedded ACTION`: list the actions, or run one (`build`) with the rest of the arguments."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: profit-rl embedded build [options]\n\n" + __doc__.split("\n\n")[0] + "\n\nactions:\n"
              + "\n".join(f"  {name:<7} {help_}" for name, help_ in ACTIONS.items())
              + "\n\nRun `profit-rl embedded build --help` for its options.")
        return 0 if argv else 2
    if argv[0] not in ACTIONS:
        raise UsageError(f"unknown action {argv[0]!r}; choose from {', '.join(ACTIONS)}")
    from .build import main as build

    return build(argv[1:], prog="profit-rl embedded build")


if __name__ == "__main__":
    sys.exit(main())
