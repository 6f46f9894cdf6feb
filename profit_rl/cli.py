"""`profit-rl <command> ...`: parsing and dispatch only. Each command lives in its own module with a `main(argv)`."""

from __future__ import annotations

import importlib
import sys

# command -> (module, one-line help). Modules are imported only when their command runs.
COMMANDS = {
    "sft": ("profit_rl.sft", "ProFit / baseline SFT from a YAML recipe (TRL SFTTrainer subclass)"),
    "grpo": ("profit_rl.grpo", "GRPO warm start from an SFT checkpoint, math-verify rewards"),
    "eval": ("profit_rl.evals.evaluate", "sample and score benchmarks: Avg@k, Pass@k (or score --responses)"),
    "compare": ("profit_rl.evals.compare", "Table-1-style comparison of two eval runs, paired deltas with CIs"),
    "curves": ("profit_rl.evals.curves", "Avg@k / Pass@k against step over a run's checkpoint-N folders"),
    "inspect": ("profit_rl.inspect.command", "see which tokens each selection rule keeps; choose tau from evidence"),
    "pipeline": ("profit_rl.pipeline.runner", "SFT -> eval -> GRPO -> curves -> report (what make sft-then-rl runs)"),
    "probes": ("profit_rl.pipeline.probes", "probes beyond the SFT data, a verdict per claim of the paper (make probes)"),
    "recipes": ("profit_rl.recipes", "list the shipped recipes; `recipes copy NAME DIR` copies one out to edit"),
    "sweep": ("profit_rl.pipeline.sweep", "the paper's ablations: a grid over tau, epochs and LoRA rank (make ablations)"),
    "twin": ("profit_rl.models.twin", "write a random-weight Qwen3 with Qwen3-Base's real tokenizer, for CPU runs"),
    "embedded": ("profit_rl.embedded.commands", "`embedded build`: the embedded default's base model and data, offline"),
    "docs": ("profit_rl.guides", "list the guides that ship with the package; `docs NAME` prints one"),
    "env": ("profit_rl.env", "versions, GPUs and cache folders to paste into a bug report"),
}


def usage() -> str:
    """The top-level help: every command with its one-line description."""
    lines = ["usage: profit-rl <command> [options]", "       profit-rl --version", "", "commands:"]
    lines += [f"  {name:<9} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `profit-rl <command> --help` for a command's options. A user error prints one line; add --debug "
              "(any command) for its traceback."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """The `profit-rl` console script: run the command named by the first argument with the rest, and return its exit
    code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from .env import profit_rl_version

        print(f"profit-rl {profit_rl_version()}")
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"profit-rl: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    return module.main(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
