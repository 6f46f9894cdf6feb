"""The end-of-turn rule is defined once, in core.chat.ChatFormat: change it there and every generator follows (the eval
sampler, which curves use too, vLLM's requests, GRPO's generation, the SFT trainer's end-of-turn tokens, and the
generation_config every SFT and GRPO checkpoint saves), while `--protocol paper` keeps the reference's own rule.

On the Qwen3 twin (EOS <|endoftext|>, a turn ends with <|im_end|>), the rule is moved by patching the one method that
reads the end-of-turn token from the template, so that it names <|im_start|> instead."""

import json
from types import SimpleNamespace

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from profit_rl.core.chat import ChatFormat
from tests.helpers_qwen3 import ENDOFTEXT, IM_END

from conftest import REPO  # noqa: E402  (the repository root, defined once)

IM_START = 151644  # Qwen's id of <|im_start|>
CPU = ["--use_cpu", "true", "--bf16", "false", "--dtype", "float32", "--report_to", "none", "--disable_tqdm", "true"]


@pytest.fixture
def moved_rule(monkeypatch) -> int:
    """ChatFormat's rule changed to end a turn with <|im_start|>; its id."""
    monkeypatch.setattr(ChatFormat, "_end_of_turn_from", lambda self, tail: "<|im_start|>")
    return IM_START


@pytest.fixture(params=["template", "moved"])
def end_id(request) -> int:
    """The end-of-turn id every generator must stop at: the template's <|im_end|>, or <|im_start|> once the rule in
    ChatFormat says so."""
    return IM_END if request.param == "template" else request.getfixturevalue("moved_rule")


def test_eval_samplers_follow_the_chat_format(qwen3_twin_dir, end_id):
    from profit_rl.evals.sampling import (SamplingSettings, build_sampler, chat_format, sampling_params_dict,
                                          stop_token_ids)

    sampler = build_sampler("transformers", str(qwen3_twin_dir), SamplingSettings())  # curves build the same one
    assert sampler.stop_ids == [end_id, ENDOFTEXT]
    tokenizer = sampler.tokenizer
    vllm_stops = stop_token_ids(tokenizer, chat_format(tokenizer))  # what VLLMSampler sends with every request
    assert sampling_params_dict(SamplingSettings(), 0, vllm_stops)["stop_token_ids"] == [end_id, ENDOFTEXT]
    # --protocol paper stops where the reference does (its EOS ids only), whatever our rule says
    assert stop_token_ids(tokenizer, chat_format(tokenizer, opencompass=True)) == [ENDOFTEXT]


def test_grpo_generation_and_its_checkpoints_follow_the_chat_format(qwen3_twin_dir, end_id, tmp_path):
    from profit_rl.grpo import add_eos_ids, stop_at_end_of_turn

    tokenizer = AutoTokenizer.from_pretrained(qwen3_twin_dir)
    training_args = SimpleNamespace(use_vllm=True, generation_kwargs=None)
    stop_ids = stop_at_end_of_turn(tokenizer, SimpleNamespace(prompt_format="chat", eos_token=None), training_args)
    assert stop_ids == [end_id, ENDOFTEXT]
    assert tokenizer.eos_token_id == end_id  # TRL's transformers generation stops at the tokenizer's EOS
    assert training_args.generation_kwargs["stop_token_ids"] == [end_id, ENDOFTEXT]  # vLLM's, colocated or server
    model = AutoModelForCausalLM.from_pretrained(qwen3_twin_dir)
    add_eos_ids(model, tokenizer, stop_ids)
    model.generation_config.save_pretrained(tmp_path)  # what every checkpoint's save_pretrained writes
    assert json.loads((tmp_path / "generation_config.json").read_text())["eos_token_id"] == [end_id, ENDOFTEXT]
    assert model.config.eos_token_id == end_id


def test_sft_trainer_and_its_checkpoints_follow_the_chat_format(qwen3_twin_dir, moved_rule, tmp_path):
    """The moved rule only (the template's is tests/models/test_qwen3.py's): building an SFT trainer takes seconds."""
    from profit_rl import sft

    end_id = moved_rule

    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"Say hello {i}.", "completion": "Hello"}) + "\n" for i in range(2)))
    trainer = sft.build_trainer(*sft.parse([
        "--config", str(REPO / "recipes" / "Qwen3-0.6B-Base" / "sft" / "profit.yaml"),
        "--model_name_or_path", str(qwen3_twin_dir), "--dataset_name", str(data), "--num_samples", "2",
        "--output_dir", str(tmp_path / "out"), "--max_length", "64", *CPU]))
    assert trainer.args.keep_end_of_turn  # the recipe protects exactly these tokens
    assert trainer._end_of_turn_ids == sorted([end_id, ENDOFTEXT])  # no <|im_end|> of its own once the rule moves
    assert trainer.processing_class.eos_token_id == end_id
    trainer.model.generation_config.save_pretrained(tmp_path / "saved")  # what every checkpoint's save_pretrained writes
    assert json.loads((tmp_path / "saved" / "generation_config.json").read_text())["eos_token_id"] == [end_id, ENDOFTEXT]
