"""The embedded recipes parse with the real entry points' parsers and hold the budgets the docs quote."""

from pathlib import Path

RECIPES = Path(__file__).resolve().parents[1] / "recipes" / "embedded"


def test_sft_recipes_parse_and_differ_only_in_the_selection_rule():
    from profit_rl.sft import parse

    parsed = {}
    for method in ("profit", "sft"):
        data_args, config, model_args = parse(["--config", str(RECIPES / "sft" / f"{method}.yaml")])
        assert config.use_cpu and not config.bf16
        assert data_args.dataset_name.endswith("sft.jsonl") and model_args.model_name_or_path.endswith("model")
        parsed[method] = config
    assert (parsed["profit"].selection, parsed["profit"].tau) == ("profit", 0.1)
    assert parsed["sft"].selection == "all"
    for field in ("learning_rate", "per_device_train_batch_size", "num_train_epochs", "max_length", "seed"):
        assert getattr(parsed["profit"], field) == getattr(parsed["sft"], field), field


def test_grpo_recipe_parses_and_checkpoints_for_the_curves():
    from profit_rl.grpo import parse_args

    script_args, config, _ = parse_args(["--config", str(RECIPES / "grpo" / "math.yaml")])
    assert config.use_cpu and not config.bf16 and script_args.reward_funcs == ["accuracy"]
    assert config.per_device_train_batch_size % config.num_generations == 0
    assert config.max_steps // config.save_steps >= 3 and not config.save_only_model  # >= 3 curve points, resumable
