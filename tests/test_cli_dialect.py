"""One command-line dialect: snake_case for every kebab-case flag, and one dtype vocabulary across the commands."""

import argparse
import dataclasses
import importlib

import pytest

from profit_rl.core.dtypes import DTYPES, dtype_name, torch_dtype
from profit_rl.cli import COMMANDS

ARGPARSE_COMMANDS = ("eval", "compare", "curves", "inspect", "pipeline")


class ParserSeen(Exception):
    def __init__(self, parser):
        self.parser = parser


def command_parser(name: str, monkeypatch) -> argparse.ArgumentParser:
    """The parser a command builds, caught as it parses (commands build their parser inside main)."""

    def catch(self, *args, **kwargs):
        raise ParserSeen(self)

    with monkeypatch.context() as patch:  # parse_args and HfArgumentParser's dataclass parsing both come here
        patch.setattr(argparse.ArgumentParser, "parse_known_args", catch)
        with pytest.raises(ParserSeen) as seen:
            importlib.import_module(COMMANDS[name][0]).main([])
    return seen.value.parser


def value_for(action) -> list[str]:
    """A value the option takes (a value its type accepts; none for a plain switch)."""
    if action.nargs == 0:
        return []
    if action.choices:
        return [str(list(action.choices)[-1])]
    if getattr(action.type, "__name__", "") == "string_to_bool":  # HfArgumentParser's booleans
        return ["true"]
    return ["some/value"] if action.type in (None, str) else ["3"]  # int, float and the positive-count type


def required_args(parser) -> list[str]:
    args = []
    for action in parser._actions:
        if not action.option_strings:  # a positional: RUN_DIR, RUN_A, RUN_B
            args.append("some/dir")
        elif action.required:
            args += [action.option_strings[0], *value_for(action)]
    return args


@pytest.mark.parametrize("name", ARGPARSE_COMMANDS)
def test_every_kebab_flag_also_takes_snake_case(name, monkeypatch):
    parser = command_parser(name, monkeypatch)
    kebab = [(action, option) for action in parser._actions for option in action.option_strings
             if option.startswith("--") and "-" in option[2:]]
    assert kebab or name == "compare"
    base = required_args(parser)
    for action, option in kebab:
        snake = "--" + option[2:].replace("-", "_")
        value = value_for(action)
        via_kebab = vars(parser.parse_args(base + [option, *value]))
        via_snake = vars(parser.parse_args(base + [snake, *value]))
        assert via_snake == via_kebab and via_snake != vars(parser.parse_args(base)), (name, snake)
    assert "--snake_case" in parser.format_help()


def test_snake_case_with_equals_and_unknown_spelling(monkeypatch):
    parser = command_parser("eval", monkeypatch)
    assert parser.parse_args(["--max_new_tokens=12"]).max_new_tokens == 12
    with pytest.raises(SystemExit):
        parser.parse_args(["--max__new_tokens", "12"])


def test_one_dtype_vocabulary_across_commands(monkeypatch):
    from trl import ModelConfig

    trl_choices = next(f for f in dataclasses.fields(ModelConfig) if f.name == "dtype").metadata["choices"]
    assert tuple(trl_choices) == DTYPES  # sft and grpo take --dtype through TRL's ModelConfig
    for name in ("eval", "curves", "inspect"):
        dtype = next(a for a in command_parser(name, monkeypatch)._actions if a.dest == "dtype")
        assert tuple(dtype.choices) == DTYPES, name


def test_dtype_words_resolve_the_same_way_everywhere():
    import torch

    from profit_rl.evals.sampling import SamplingSettings

    assert dtype_name("auto", "cpu") == "float32" and dtype_name("auto", "cuda:1") == "bfloat16"
    assert torch_dtype("auto", "cpu") is torch.float32 and torch_dtype("float16", "cpu") is torch.float16
    assert torch_dtype("auto") == "auto"  # training: the checkpoint's own dtype, as TRL reads "auto"
    with pytest.raises(ValueError, match="'bf16' is not one of auto, bfloat16, float16, float32"):
        SamplingSettings(dtype="bf16")
