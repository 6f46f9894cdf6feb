"""The Qwen3-Base path at the real vocabulary, on the twin: one chat format, and every generator stops at the end of the
turn. The rigged model says "Hello", then <|im_end|>, then " world", then "Hello" again, so a generator that ignores
the end of the turn runs on ("Hello worldHello world...")."""

import json
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from profit_rl.core.chat import ChatFormat, ChatFormatError
from tests.helpers_qwen3 import ENDOFTEXT, HELLO, IM_END, rig

from conftest import REPO  # noqa: E402  (the repository root, defined once)
QWEN3_SFT = REPO / "recipes" / "Qwen3-0.6B-Base" / "sft"
CPU = ["--use_cpu", "true", "--bf16", "false", "--dtype", "float32", "--report_to", "none", "--disable_tqdm", "true"]
ROWS = [  # prompt/completion pairs in the shapes SFT data comes in: plain, with a system turn, multi-turn
    ([{"role": "user", "content": "Say hello."}], "Hello"),
    ([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2 + 2?"}], "It is \\boxed{4}."),
    ([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Again"}],
     "Hello again"),
    ([{"role": "user", "content": "Indent"}], "  indented answer\nwith two lines"),
]


@pytest.fixture(scope="module")
def rigged(qwen3_twin_dir, tmp_path_factory) -> Path:
    return rig(qwen3_twin_dir, tmp_path_factory.mktemp("rigged"))


def test_twin_has_qwen3_base_tokenizer_vocabulary_and_stop_settings(qwen3_twin_dir):
    tokenizer = AutoTokenizer.from_pretrained(qwen3_twin_dir)
    model = AutoModelForCausalLM.from_pretrained(qwen3_twin_dir)
    assert tokenizer("Hello, world!")["input_ids"] == [9707, 11, 1879, 0] and len(tokenizer) == 151669
    assert tokenizer.eos_token_id == ENDOFTEXT and tokenizer.convert_tokens_to_ids("<|im_end|>") == IM_END
    assert model.get_input_embeddings().weight.shape[0] == 151936 and model.config.num_hidden_layers == 2
    assert model.generation_config.eos_token_id == ENDOFTEXT  # the base model's: the trap the issue is about
    chat = ChatFormat(tokenizer)
    assert chat.end_of_turn == "<|im_end|>" and chat.template_kwargs == {"enable_thinking": False}
    assert chat.stop_token_ids(model.generation_config) == [IM_END, ENDOFTEXT]


@pytest.mark.parametrize("which", ["qwen3-twin", "embedded"])
def test_generation_prompt_is_the_training_render_up_to_the_supervised_tokens(which, request, tmp_path):
    """What `profit-rl sft` supervises starts exactly where the eval sampler's prompt ends, token for token."""
    from profit_rl.evals.sampling import SamplingSettings, TransformersSampler
    from profit_rl import sft

    model_dir = request.getfixturevalue("qwen3_twin_dir" if which == "qwen3-twin" else "tiny_model_dir")
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"messages": p + [{"role": "assistant", "content": c}]}) + "\n" for p, c in ROWS))
    trainer = sft.build_trainer(*sft.parse([
        "--config", str(QWEN3_SFT / "sft.yaml"), "--model_name_or_path", str(model_dir), "--dataset_name", str(data),
        "--num_samples", str(len(ROWS)), "--output_dir", str(tmp_path / "out"), "--max_length", "256", *CPU]))
    sampler = TransformersSampler(str(model_dir), SamplingSettings(), device="cpu")
    tokenizer = trainer.processing_class
    # one example per supervised assistant turn (the multi-turn row gives two), each keeping its prompt and completion
    assert sorted(e["completion"][0]["content"] for e in trainer.train_dataset) == sorted([c for _, c in ROWS] + ["Hello"])
    for example in trainer.train_dataset:
        prompt, completion = example["prompt"], example["completion"][0]["content"]
        ids, supervised = example["input_ids"], [label != -100 for label in example["labels"]]
        start = supervised.index(True)
        assert not any(supervised[:start]) and all(supervised[start:])
        prompt_ids = tokenizer(sampler.render(prompt), add_special_tokens=False)["input_ids"]
        assert ids[:start] == prompt_ids  # the eval prompt is the unsupervised prefix, exactly
        # the supervised tokens are the answer and the end of the turn: no think block, nothing invented
        assert tokenizer.decode(ids[start:]) == completion + "<|im_end|>\n"
    if which == "qwen3-twin":
        assert sampler.render(ROWS[0][0]).endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_a_template_that_hides_its_end_of_turn_needs_it_named(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = ("{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\n\n' }}{% endfor %}"
                               "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}")
    with pytest.raises(ChatFormatError, match="--eos_token TOKEN"):
        ChatFormat(tokenizer)
    assert ChatFormat(tokenizer, "<|im_end|>").end_of_turn_id == tokenizer.convert_tokens_to_ids("<|im_end|>")
    with pytest.raises(ChatFormatError, match="not one token"):
        ChatFormat(tokenizer, "two words")
    tokenizer.chat_template = ("{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '<|im_end|>' }}{% endfor %}"
                               "{% if add_generation_prompt %}{{ 'assistant says: ' }}{% endif %}")
    with pytest.raises(ChatFormatError, match="prompted differently from how it was trained"):
        ChatFormat(tokenizer)


def test_greedy_eval_of_the_rig_says_hello_and_stops(rigged, shared_data, tmp_path):
    from profit_rl.evals import evaluate

    out = tmp_path / "eval"
    assert evaluate.main(["--model", str(rigged), "--benchmarks", "math500", "--k", "1", "--temperature", "0",
                     "--max-new-tokens", "12", "--data-dir", str(shared_data), "--limit", "2",
                     "--output-dir", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "math500" / "samples.jsonl").read_text().splitlines()]
    assert [r["completion"] for r in rows] == ["Hello", "Hello"]


def test_vllm_requests_stop_at_the_end_of_turn(rigged):
    from profit_rl.evals.sampling import SamplingSettings, chat_format, sampling_params_dict, stop_token_ids

    tokenizer = AutoTokenizer.from_pretrained(rigged)
    stop = stop_token_ids(tokenizer, chat_format(tokenizer))
    params = sampling_params_dict(SamplingSettings(), 7, stop)
    assert params["stop_token_ids"] == [IM_END, ENDOFTEXT] and params["seed"] == 7


def test_profit_sft_model_of_the_rig_stops_in_plain_generate(rigged, tmp_path):
    """`profit-rl sft` with the Qwen3 ProFit recipe saves checkpoints that end their turn in any tool: the tokenizer's
    EOS and the generation config name <|im_end|>, and the template prompts in the trained format by default."""
    from profit_rl import sft

    data = tmp_path / "hello.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"Say hello {i}.", "completion": "Hello"}) + "\n" for i in range(4)))
    out = tmp_path / "sft"
    assert sft.main(["--config", str(QWEN3_SFT / "profit.yaml"), "--model_name_or_path", str(rigged),
                     "--dataset_name", str(data), "--num_samples", "4", "--output_dir", str(out), "--max_steps", "1",
                     "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "1", "--max_length", "64",
                     "--save_steps", "1", *CPU]) == 0
    for folder in (out, out / "checkpoint-1"):
        saved = json.loads((folder / "generation_config.json").read_text())
        assert IM_END in saved["eos_token_id"] and ENDOFTEXT in saved["eos_token_id"], folder
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert tokenizer.eos_token == "<|im_end|>"
    inputs = tokenizer.apply_chat_template([{"role": "user", "content": "Say hello."}], add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True)
    new = model.generate(**inputs, max_new_tokens=16)[0, inputs["input_ids"].shape[1]:].tolist()
    assert new == [HELLO, IM_END]


def test_grpo_on_the_rig_generates_in_the_chat_format_and_stops(rigged, tmp_path):
    """TRL's transformers generation inside `profit-rl grpo`: every completion is Hello<|im_end|>, and the GRPO
    checkpoint carries the end of turn like the SFT ones."""
    from profit_rl.grpo import build_trainer, parse_args

    data = tmp_path / "problems.jsonl"
    data.write_text("".join(json.dumps({"problem": f"Compute {i} + 1.", "answer": str(i + 1)}) + "\n" for i in range(4)))
    out = tmp_path / "grpo"
    argv = ["--config", str(REPO / "recipes" / "Qwen3-0.6B-Base" / "grpo" / "math_cpu.yaml"),
            "--model_name_or_path", str(rigged), "--dataset_name", str(data), "--decontaminate_against", "none",
            "--output_dir", str(out), "--max_steps", "1", "--save_steps", "1", "--num_generations", "2",
            "--per_device_train_batch_size", "2", "--max_completion_length", "8", "--reward_workers", "1",
            "--logging_steps", "1"]
    trainer, _, pool = build_trainer(*parse_args(argv))
    seen = []
    scorer = trainer.reward_funcs[0]

    def recording(prompts, completions, completion_ids, **kwargs):
        seen.extend(zip([c[0]["content"] for c in completions], completion_ids))
        return scorer(prompts=prompts, completions=completions, completion_ids=completion_ids, **kwargs)

    trainer.reward_funcs[0] = recording
    try:
        trainer.train()
    finally:
        pool.close()
    assert seen and all(text == "Hello" and ids == [HELLO, IM_END] for text, ids in seen), seen
    saved = json.loads((out / "checkpoint-1" / "generation_config.json").read_text())
    assert IM_END in saved["eos_token_id"]
    assert AutoTokenizer.from_pretrained(out / "checkpoint-1").eos_token == "<|im_end|>"


@pytest.mark.parametrize("recipe", sorted(REPO.glob("recipes/Qwen3-*/sft/*.yaml")), ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_qwen3_recipes_that_select_tokens_always_train_the_end_of_turn(recipe):
    from profit_rl import sft

    _, training_args, _ = sft.parse(["--config", str(recipe), *CPU])
    assert training_args.keep_end_of_turn or training_args.selection == "all"


@pytest.mark.slow
def test_twin_smoke_pipeline_runs_every_stage_at_the_real_vocabulary(qwen3_twin_dir, shared_data, tmp_path):
    """`make sft-then-rl MODEL=<twin> SMOKE=1` (its python command, one benchmark): data, ProFit and plain SFT,
    evals, GRPO, curves and the report on CPU, through the Qwen3-0.6B-Base recipes, at vocab 151,936."""
    import csv
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "profit_rl.pipeline", "--model", str(qwen3_twin_dir), "--smoke", "--benchmarks",
           "math500", "--data-dir", str(shared_data), "--output-root", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    root = tmp_path / qwen3_twin_dir.name
    assert "--config recipes/Qwen3-0.6B-Base/sft/profit.yaml" in proc.stdout
    assert "--config recipes/Qwen3-0.6B-Base/grpo/math_cpu.yaml" in proc.stdout
    for method in ("profit", "sft"):
        for model in (root / method / "sft", root / method / "grpo" / "checkpoint-2"):
            assert IM_END in json.loads((model / "generation_config.json").read_text())["eos_token_id"], model
            assert json.loads((model / "config.json").read_text())["vocab_size"] == 151936
            assert AutoTokenizer.from_pretrained(model).eos_token == "<|im_end|>"
        assert json.loads((root / method / "eval" / "sft" / "results.json").read_text())["benchmarks"]["math500"]
    rows = list(csv.DictReader((root / "curves" / "curves.csv").open()))
    assert sorted((r["run"], r["step"]) for r in rows) == [
        (run, step) for run in ("profit-init", "sft-init") for step in ("0", "1", "2")]
    assert "After SFT (Table 1)" in (root / "report.md").read_text()
