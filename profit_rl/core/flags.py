"""Argument helpers for every argparse command: `--snake_case` beside `--kebab-case`, and the shared value types.

One command-line dialect: every `--kebab-case` flag of an argparse command also answers to `--snake_case`.

`profit-rl sft` and `profit-rl grpo` parse with TRL's parser, which takes `--output_dir`; the argparse commands
(`eval`, `compare`, `curves`, `inspect`, `pipeline`) spell their flags `--output-dir`. Each of them passes its parser
through `accept_snake_case`, so a TRL user's spelling works everywhere and `--help` still shows one name per flag.
"""

from __future__ import annotations

import argparse


def snake_case_aliases(parser: argparse.ArgumentParser) -> dict[str, str]:
    """`{"--output_dir": "--output-dir", ...}`: the snake_case spelling of each kebab-case flag of `parser`."""
    aliases = {}
    for action in parser._actions:  # argparse keeps no public list of its actions
        for option in action.option_strings:
            if option.startswith("--") and "-" in option[2:]:
                aliases[option.replace("-", "_").replace("__", "--", 1)] = option
    return aliases


def accept_snake_case(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register the snake_case spelling of every kebab-case flag as the same option. Returns `parser`.

    The alias is registered as a lookup name only (not added to the action's option strings), so usage and error
    messages name the flag as documented. A spelling the parser already has (a flag defined both ways) is left alone.
    """
    for alias, option in snake_case_aliases(parser).items():
        if alias not in parser._option_string_actions:
            parser._option_string_actions[alias] = parser._option_string_actions[option]
    if parser.epilog is None:
        parser.epilog = "Every --kebab-case flag may also be written --snake_case (as TRL's commands spell them)."
    return parser


def describe_negations(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give every `--no_X` flag its own help. transformers' HfArgumentParser adds `--no_X` for a boolean field that
    defaults to True and copies `--X`'s help onto it, so `--help` says the opposite of what `--no_X` does. Returns
    `parser`."""
    positive = {option: action for action in parser._actions for option in action.option_strings}
    for action in parser._actions:
        negative = next((o for o in action.option_strings if o.startswith("--no_")), None)
        if negative is None:
            continue
        name = negative[len("--no_"):]
        twin = positive.get(f"--{name}")
        if twin is not None and twin.dest == action.dest:
            action.help = f"Turn --{name} off (sets {name} to false; see --{name})."
    return parser


def positive_int(text: str) -> int:
    """argparse type of --k, --limit and other counts: an integer >= 1, checked before anything runs."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, found {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, found {value}")
    return value
