"""The commands people reach for: --version, env, docs, embedded build, help that names its command, and what the
terminal and the errors say."""

import pytest

from profit_rl.cli import COMMANDS, main

from conftest import REPO  # noqa: E402  (the repository root, defined once)


def test_version_is_the_package_version(capsys):
    import profit_rl

    assert main(["--version"]) == 0 and capsys.readouterr().out == f"profit-rl {profit_rl.__version__}\n"


def test_env_lists_what_a_bug_report_needs(capsys):
    from importlib.metadata import version

    assert main(["env"]) == 0
    out = capsys.readouterr().out
    fields = dict(line[2:].split(": ", 1) for line in out.splitlines() if line.startswith("- "))
    assert fields["TRL version"] == version("trl") and fields["math-verify version"] == version("math-verify")
    assert fields["PyTorch version"] == version("torch") and fields["DeepSpeed version"]  # or "not installed"
    assert {"vLLM version", "Accelerate version", "CUDA (torch build)", "accelerator(s)", "HF hub cache",
            "HF datasets cache", "profit-rl version", "offline"} <= set(fields)
    assert "Copy-paste" in out


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_commands_help_names_the_command(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"]) if command != "embedded" else main([command, "build", "--help"])
    assert done.value.code == 0
    usage = capsys.readouterr().out.splitlines()[0]
    expected = "usage: profit-rl embedded build" if command == "embedded" else f"usage: profit-rl {command}"
    assert usage.startswith(expected + " ") or usage == expected


@pytest.mark.parametrize("command, flag", [("sft", "gradient_checkpointing"), ("grpo", "resume")])
def test_a_no_flag_says_what_it_does_not_what_its_twin_does(command, flag, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"--no_{flag}, --no-{flag.replace('_', '-')} Turn --{flag} off (sets {flag} to false" in text


def test_embedded_without_an_action_lists_build():
    assert main(["embedded"]) == 2 and main(["embedded", "nope"]) == 2


def test_docs_lists_and_finds_the_guides(capsys):
    from profit_rl.guides import doc_path, docs_root

    assert docs_root() == REPO / "docs" and doc_path("sft") == doc_path("docs/sft.md") == REPO / "docs" / "sft.md"
    assert doc_path("readme") == REPO / "README.md"
    assert main(["docs"]) == 0 and "evals" in capsys.readouterr().out.splitlines()
    assert main(["docs", "nope"]) == 1 and "no guide 'nope'; the guides: readme," in capsys.readouterr().err


def test_accelerate_configs_by_name_or_path(tmp_path):
    from profit_rl.recipes import accelerate_config, recipes_root

    shipped = recipes_root() / "accelerate_configs" / "zero2.yaml"
    assert accelerate_config("zero2") == accelerate_config("zero2.yaml") == shipped
    assert accelerate_config("accelerate_configs/zero2.yaml") == shipped
    mine = tmp_path / "mine.yaml"
    mine.write_text("distributed_type: MULTI_GPU\n")
    assert accelerate_config(mine) == mine
    with pytest.raises(FileNotFoundError, match=r"'zero9': no such file, nor a shipped config \(ddp, fsdp, zero2, zero3"):
        accelerate_config("zero9")
    with pytest.raises(FileNotFoundError):
        accelerate_config("Qwen3-0.6B-Base/zero2")  # a name, not any path ending in one


def test_a_missing_embedded_build_names_the_command_that_makes_it(tmp_path, monkeypatch):
    from profit_rl.core.model_folders import build_hint

    monkeypatch.chdir(tmp_path)  # relative paths: a checkout that ran `make sft-then-rl` holds outputs/embedded/base

    assert build_hint("outputs/embedded/base/model") == "profit-rl embedded build --out-dir outputs/embedded/base"
    assert build_hint("x/embedded/base/sft.jsonl") == "profit-rl embedded build --out-dir x/embedded/base"
    assert build_hint("outputs/other/model") is None and build_hint(str(tmp_path)) is None


def test_the_terminal_reads_markdown_without_its_escapes():
    from profit_rl.evals import markdown as md

    line = md.text(r"answers in \boxed{} | a_b") + " " + md.code(r"x\[y] \{")
    assert line == r"answers in \\boxed\{\} \| a\_b `x\[y] \{`"
    assert md.terminal(line) == r"answers in \boxed{} | a_b `x\[y] \{`"  # code spans stay as written


@pytest.mark.parametrize("command, recipe", [("sft", "embedded/sft/profit.yaml"), ("grpo", "embedded/grpo/math.yaml")])
def test_a_copied_embedded_recipe_before_the_build_names_the_command(command, recipe, tmp_path, monkeypatch, capsys):
    from profit_rl.recipes import copy_recipe

    monkeypatch.chdir(tmp_path)
    copied = copy_recipe(recipe, tmp_path / "mine")
    assert main([command, "--config", str(copied)]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"profit-rl {command}: ") and err.endswith(
        "the embedded recipes read the embedded build: run `profit-rl embedded build --out-dir outputs/embedded/base` "
        "first")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # nothing left behind
