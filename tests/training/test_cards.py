"""Model cards: every SFT and GRPO folder names ProFit's rule, tau, protection, normaliser, data, recipe and paper in
TRL's card layout, the GRPO card its initial checkpoint and rewards; a push that cannot reach the Hub is one line."""

import json
import shutil
import sys

import pytest
from huggingface_hub import ModelCard

from tests.training.test_grpo import grpo_args, rl_files  # noqa: F401  (rl_files is a fixture)
from tests.training.test_trainer import MIXED_TAU, config, sft_rows

BASE = "Qwen/Qwen3-0.6B-Base"


@pytest.fixture(scope="module")
def sft_run(tiny_model_dir, tmp_path_factory):
    """`profit-rl sft --config recipe.yaml` on a copy of the tiny model whose own card names a hub base model."""
    from profit_rl import sft

    root = tmp_path_factory.mktemp("card-sft")
    model = shutil.copytree(tiny_model_dir, root / "base")
    (model / "README.md").write_text(f"---\nbase_model: {BASE}\n---\n# a local copy\n")
    data = root / "sft.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"Add {i} and 3.", "completion": f"{i + 3}. \\boxed{{{i + 3}}}"})
                            + "\n" for i in range(8)))
    recipe = root / "recipe.yaml"
    recipe.write_text(f"model_name_or_path: {model}\ndataset_name: {data}\nselection: profit\ntau: {MIXED_TAU}\n"
                      "keep_end_of_turn: true\nprotected_strings: ['\\boxed']\nuse_cpu: true\nbf16: false\n"
                      "report_to: none\nmax_steps: 2\nsave_steps: 1\nper_device_train_batch_size: 4\nmax_length: 64\n"
                      "learning_rate: 1.0e-3\ndisable_tqdm: true\ndataloader_num_workers: 0\n")
    out = root / "out"
    argv = ["--config", str(recipe), "--output_dir", str(out)]
    saved_argv = sys.argv
    sys.argv = ["profit-rl", "sft", *argv]  # the recipe the card names is the one on the command line
    try:
        assert sft.main(argv) == 0
    finally:
        sys.argv = saved_argv
    return out, model, data, recipe


def test_sft_card_names_the_rule_tau_protection_normaliser_data_recipe_and_paper(sft_run):
    out, model, data, recipe = sft_run
    for folder in (out, out / "checkpoint-1", out / "checkpoint-2"):
        card = ModelCard.load(folder / "README.md")
        meta = card.data.to_dict()
        assert meta["tags"][:4] == ["profit-rl", "profit", "trl", "sft"], folder
        assert meta["base_model"] == BASE and meta["profit_rl"]["tau"] == MIXED_TAU
        assert meta["profit_rl"]["protected_strings"] == ["\\boxed"] and meta["profit_rl"]["keep_end_of_turn"]
        text = card.text
        base = f"fine-tuned version of [{BASE}](https://huggingface.co/{BASE}) (through the local checkpoint `{model}`)"
        assert base in text and f"on the local data `{data}`" in text
        assert "[None]" not in text and "None" not in text.split("## Quick start")[0]
        for said in (f"Selection rule: `profit`: tokens with p > tau (ProFit); tau = {MIXED_TAU}",
                     "the end-of-turn tokens (`<|im_end|>`", "the tokens of `\\boxed`", "Loss normaliser: every "
                     "supervised token of the optimizer step", f"Recipe: `{recipe}`", "8 training rows",
                     "https://huggingface.co/papers/2601.09195", "@article{profit2026", "@software{vonwerra2020trl",
                     "### Framework versions", f'model="{out.resolve()}"'):
            assert said in text, (said, folder)
    # the final card knows where training ended
    assert "Steps: 2 of 2 optimizer steps" in ModelCard.load(out / "README.md").text


def test_a_plain_sft_config_card_says_trls_loss_and_the_rule(tiny_model_dir, tmp_path):
    from trl import SFTConfig

    from profit_rl import ProFitSFTTrainer

    trainer = ProFitSFTTrainer(str(tiny_model_dir), args=config(tmp_path, SFTConfig, loss_type="dft"),
                               train_dataset=sft_rows(4))
    trainer.create_model_card(dataset_name="trl-lib/Capybara")
    card = ModelCard.load(tmp_path / "out" / "README.md")
    assert card.data.tags[:4] == ["profit-rl", "dft", "trl", "sft"] and card.data.datasets == "trl-lib/Capybara"
    assert "Loss: TRL's own loss (SFTConfig loss_type='dft')" in card.text
    assert f"fine-tuned version of the local model `{tiny_model_dir}`" in card.text and "[None]" not in card.text


@pytest.mark.slow
def test_grpo_card_names_the_initial_checkpoint_its_rule_and_the_rewards(sft_run, rl_files, tmp_path,  # noqa: F811
                                                                           monkeypatch):
    from profit_rl.grpo import main

    sft_out = sft_run[0]
    out = tmp_path / "grpo"
    argv = grpo_args(sft_out, rl_files, out, max_steps=1, save_steps=1)
    monkeypatch.setattr(sys, "argv", ["profit-rl", "grpo", *argv])
    assert main(argv) == 0
    for folder in (out, out / "checkpoint-1"):
        card = ModelCard.load(folder / "README.md")
        meta = card.data.to_dict()
        assert meta["tags"][:4] == ["profit-rl", "profit", "trl", "grpo"], folder
        assert meta["base_model"] == BASE and meta["profit_rl"]["initial"]["tau"] == MIXED_TAU
        text = card.text
        assert f"Initial checkpoint: `{sft_out}`: SFT with the selection rule `profit` with tau = {MIXED_TAU}" in text
        assert "Rewards: `accuracy_reward` (weight" in text and "Recipe: `" in text and "math_cpu.yaml" in text
        assert "https://huggingface.co/papers/2402.03300" in text and "@article{profit2026" in text
        assert "@article{shao2024deepseekmath" in text and "[None]" not in text


def test_a_push_that_cannot_reach_the_hub_is_one_line(tiny_model_dir, tmp_path, monkeypatch):
    import huggingface_hub.constants

    from profit_rl import ProFitSFTTrainer
    from profit_rl.cards import HubUnreachableError

    trainer = ProFitSFTTrainer(str(tiny_model_dir), args=config(tmp_path, hub_model_id="me/tiny"),
                               train_dataset=sft_rows(4))
    # online mode against an endpoint where nothing listens: the connection itself fails
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_token")
    with pytest.raises(HubUnreachableError) as err:
        trainer.push_to_hub()
    message = str(err.value)
    assert "\n" not in message and "cannot reach the Hugging Face Hub" in message
    assert f"hf upload me/tiny {(tmp_path / 'out').resolve()}" in message
    assert err.value.__cause__ is None and (err.value.__context__ is None or err.value.__suppress_context__)  # no chain
    assert (tmp_path / "out" / "README.md").is_file()  # the card was saved before the push failed


def test_push_to_hub_on_the_command_line_without_network_is_one_line(tiny_model_dir, tmp_path, capsys):
    from profit_rl import sft

    data = tmp_path / "sft.jsonl"
    data.write_text(json.dumps({"prompt": "Add 1 and 3.", "completion": "4"}) + "\n")
    code = sft.main(["--model_name_or_path", str(tiny_model_dir), "--dataset_name", str(data), "--output_dir",
                     str(tmp_path / "out"), "--use_cpu", "true", "--bf16", "false", "--report_to", "none",
                     "--max_steps", "1", "--push_to_hub", "true", "--hub_model_id", "me/tiny"])  # HF_HUB_OFFLINE=1
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1].startswith("profit-rl sft: push_to_hub: cannot reach the Hugging Face Hub to create "
                                            "the repository me/tiny (OfflineModeIsEnabled)"), err[-3:]
    assert "Traceback" not in "\n".join(err)
