"""The CPU recipes (embedded default, SmolLM2-135M) parse with the real entry points' parsers and hold the budgets the
docs quote."""


import pytest

from conftest import REPO  # noqa: E402  (the repository root, defined once)

RECIPES = REPO / "recipes"
CPU_PROFILES = ("embedded", "smollm2-135m")


@pytest.mark.parametrize("profile", CPU_PROFILES)
def test_sft_recipes_parse_and_differ_only_in_the_selection_rule(profile):
    from profit_rl.sft import parse

    parsed = {}
    for method in ("profit", "sft"):
        data_args, config, model_args = parse(["--config", str(RECIPES / profile / "sft" / f"{method}.yaml")])
        assert config.use_cpu and not config.bf16
        assert data_args.dataset_name.endswith("sft.jsonl") and model_args.model_name_or_path.endswith("model")
        parsed[method] = (data_args, config, model_args)
    assert (parsed["profit"][1].selection, parsed["profit"][1].tau) == ("profit", 0.1)
    assert parsed["sft"][1].selection == "all"
    for field in ("learning_rate", "per_device_train_batch_size", "num_train_epochs", "max_length", "seed"):
        assert getattr(parsed["profit"][1], field) == getattr(parsed["sft"][1], field), field
    for field in ("dataset_name", "num_samples", "sample_seed"):
        assert getattr(parsed["profit"][0], field) == getattr(parsed["sft"][0], field), field
    for field in ("use_peft", "lora_r", "lora_alpha", "lora_dropout", "lora_target_modules"):
        assert getattr(parsed["profit"][2], field) == getattr(parsed["sft"][2], field), field


def test_smollm2_trains_a_lora_adapter_without_dropout():
    """LoRA keeps 135M parameters trainable on 2 cores; dropout 0, because ProFit's rule reads p from the training
    forward pass and dropout would make the kept set depend on a noise draw."""
    from profit_rl.sft import parse

    _, config, model_args = parse(["--config", str(RECIPES / "smollm2-135m" / "sft" / "profit.yaml")])
    assert model_args.use_peft and model_args.lora_dropout == 0.0 and model_args.lora_target_modules == "all-linear"
    assert config.save_strategy == "steps"  # a killed SFT resumes from its checkpoint


@pytest.mark.parametrize("profile, min_checkpoints", [("embedded", 3), ("smollm2-135m", 2)])
def test_grpo_recipe_parses_and_checkpoints_for_the_curves(profile, min_checkpoints):
    from profit_rl.grpo import parse_args

    script_args, config, model_args = parse_args(["--config", str(RECIPES / profile / "grpo" / "math.yaml")])
    assert config.use_cpu and not config.bf16 and script_args.reward_funcs == ["accuracy"]
    assert config.per_device_train_batch_size % config.num_generations == 0
    # >= min_checkpoints curve points after step 0 (the SFT model), and resumable
    assert config.max_steps // config.save_steps >= min_checkpoints and not config.save_only_model
    if profile == "smollm2-135m":
        # keep training the SFT adapter: merging it would give adapter checkpoints on the bare base model
        assert script_args.adapter == "load" and not model_args.use_peft
