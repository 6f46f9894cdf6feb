"""Eval reruns (docs/reruns.md): samples belong to the model's weights, not its path; a cache with impossible scores
and a model whose config does not match its weights stop with a message instead of a wrong table."""

import json
import shutil

import pytest
from safetensors.torch import load_file, save_file

from profit_rl import cli


def eval_argv(model, data_dir, out, *extra):
    return ["eval", "--model", str(model), "--benchmarks", "gsm8k", "--data-dir", str(data_dir), "--limit", "4",
            "--k", "2", "--max-new-tokens", "4", "--batch-size", "4", "--output-dir", str(out), "--bootstrap", "20",
            *extra]


@pytest.fixture
def model_copy(tiny_model_dir, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    return model


def test_new_weights_at_the_same_path_never_reuse_the_old_models_samples(model_copy, shared_data, tmp_path, capsys):
    out = tmp_path / "eval"
    assert cli.main(eval_argv(model_copy, shared_data, out)) == 0
    first = json.loads((out / "results.json").read_text())

    tensors = load_file(model_copy / "model.safetensors")  # retrained in place: same path, same shapes
    save_file({k: v * 1.5 for k, v in tensors.items()}, model_copy / "model.safetensors", metadata={"format": "pt"})
    capsys.readouterr()
    assert cli.main(eval_argv(model_copy, shared_data, out)) == 1
    err = capsys.readouterr().err
    assert "made from another model or with other settings" in err and "weights.sha256" in err
    assert "--overwrite" in err

    assert cli.main(eval_argv(model_copy, shared_data, out, "--overwrite")) == 0
    second = json.loads((out / "results.json").read_text())
    assert first["weights"]["sha256"] and second["weights"] != first["weights"]
    rows = [json.loads(line) for line in (out / "gsm8k" / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and all(row["settings"]["weights"] == second["weights"] for row in rows)


@pytest.fixture(scope="module")
def clean_samples(tiny_model_dir, shared_data, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("eval")
    assert cli.main(eval_argv(tiny_model_dir, shared_data, out)) == 0
    return (out / "gsm8k" / "samples.jsonl").read_text()


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "1.5", "-0.25", '"1"'])
def test_a_cached_score_outside_0_1_is_named_not_averaged(tiny_model_dir, shared_data, clean_samples, tmp_path,
                                                          capsys, bad):
    out = tmp_path / "eval"
    samples = out / "gsm8k" / "samples.jsonl"
    samples.parent.mkdir(parents=True, exist_ok=True)
    lines = clean_samples.splitlines()
    row = json.loads(lines[2])
    lines[2] = json.dumps(row).replace(f'"score": {json.dumps(row["score"])}', f'"score": {bad}')
    samples.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert cli.main(eval_argv(tiny_model_dir, shared_data, out)) == 1
    err = capsys.readouterr().err
    assert f"{samples}, line 3, field 'score': expected a score in [0, 1]" in err and "--overwrite" in err
    assert not (out / "results.json").exists()


def test_a_config_that_does_not_match_the_weights_stops_naming_the_keys(model_copy, shared_data, tmp_path, capsys):
    config = json.loads((model_copy / "config.json").read_text())
    config.update(model_type="llama", architectures=["LlamaForCausalLM"],
                  num_hidden_layers=config["num_hidden_layers"] + 1)
    config.pop("layer_types", None)
    (model_copy / "config.json").write_text(json.dumps(config))
    out = tmp_path / "eval"
    assert cli.main(eval_argv(model_copy, shared_data, out)) == 1
    err = capsys.readouterr().err
    layer = config["num_hidden_layers"] - 1
    assert "the weights do not match config.json" in err
    assert "missing from the weights (they would be random)" in err and f"model.layers.{layer}." in err
    assert "in the weights but not in the model its config describes" in err and "q_norm" in err
    assert not (out / "results.json").exists()
