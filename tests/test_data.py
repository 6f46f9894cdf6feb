"""SFT data: layouts, row errors that name file/row/field, selection, and every shipped recipe parses."""

import json
from pathlib import Path

import pytest

from evals.io import DataError, Row
from profit_rl.data import SFTDataArguments, detect_layout, load_sft_dataset, select_indices, to_prompt_completion

REPO = Path(__file__).resolve().parents[1]
USER = {"role": "user", "content": "hi"}
BOT = {"role": "assistant", "content": "hello"}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    "row",
    [
        {"prompt": "hi", "completion": "hello"},
        {"prompt": [USER], "completion": [BOT]},
        {"messages": [USER, BOT]},
        {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]},
        {"instruction": "hi", "input": "", "output": "hello"},
    ],
)
def test_every_layout_becomes_conversational_prompt_completion(row):
    out = to_prompt_completion(Row(row, "f.jsonl", 1), detect_layout(row))
    assert out == {"prompt": [USER], "completion": [BOT]}


def test_system_and_multi_turn_prompts_are_kept():
    row = {"messages": [{"role": "system", "content": "be brief"}, USER, BOT, USER, BOT]}
    out = to_prompt_completion(Row(row, "f", 1), "messages")
    assert [m["role"] for m in out["prompt"]] == ["system", "user", "assistant", "user"]
    alpaca = to_prompt_completion(Row({"instruction": "Sum", "input": "1 2", "output": "3"}, "f", 1), "alpaca")
    assert alpaca["prompt"][0]["content"] == "Sum\n\n1 2"


def test_unknown_layout_lists_the_supported_ones():
    with pytest.raises(DataError, match="Alpaca"):
        detect_layout(["question", "answer"])


def test_bad_row_error_names_file_row_and_field(tmp_path):
    path = write_jsonl(
        tmp_path / "sft.jsonl",
        [{"instruction": "a", "input": "", "output": "b"}, {"instruction": "c", "input": "", "output": "  "}],
    )
    args = SFTDataArguments(dataset_name=str(path), num_samples=None)
    with pytest.raises(DataError) as err:
        load_sft_dataset(args)
    assert (err.value.source, err.value.row, err.value.field) == (str(path), 2, "output")  # rows are file lines
    assert str(path) in str(err.value) and "line 2" in str(err.value) and "'output'" in str(err.value)


def test_sharegpt_bad_speaker_names_the_turn(tmp_path):
    path = write_jsonl(tmp_path / "s.jsonl", [{"conversations": [{"from": "robot", "value": "x"}]}])
    with pytest.raises(DataError, match=r"line 1, field 'conversations\[0\]\.from'"):
        load_sft_dataset(SFTDataArguments(dataset_name=str(path), num_samples=None))


def test_skip_bad_rows_counts_and_logs(tmp_path, caplog):
    rows = [{"prompt": "p", "completion": "c"}] * 3 + [{"prompt": "p", "completion": ""}]
    path = write_jsonl(tmp_path / "pc.jsonl", rows)
    with caplog.at_level("WARNING"):
        ds = load_sft_dataset(SFTDataArguments(dataset_name=str(path), num_samples=None, skip_bad_rows=True))
    assert len(ds) == 3
    assert "skipped 1 bad rows" in caplog.text


def test_top_n_by_score_and_seeded_sample(tmp_path):
    rows = [{"instruction": f"q{i}", "input": "", "output": f"a{i}", "reward": float(i % 7)} for i in range(50)]
    path = write_jsonl(tmp_path / "scored.jsonl", rows)
    top = load_sft_dataset(SFTDataArguments(dataset_name=str(path), num_samples=5, score_column="reward"))
    kept = {r["completion"][0]["content"] for r in top}
    assert kept <= {f"a{i}" for i in range(50) if i % 7 == 6} and len(kept) == 5
    sample = lambda seed: [r["prompt"][0]["content"] for r in load_sft_dataset(  # noqa: E731
        SFTDataArguments(dataset_name=str(path), num_samples=10, sample_seed=seed))]
    assert sample(0) == sample(0) and sample(0) != sample(1)


def test_selection_is_the_datasets_shuffle_and_a_stable_top_n():
    from datasets import Dataset

    assert select_indices(50, 10, seed=3) == Dataset.from_dict({"i": list(range(50))}).shuffle(seed=3)["i"][:10]
    assert select_indices(5, 3, scores=[1, 3, 3, 0, 3]) == [1, 2, 4]  # ties keep file order
    assert select_indices(5, None) == select_indices(5, 9) == [0, 1, 2, 3, 4]


def test_missing_local_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_sft_dataset(SFTDataArguments(dataset_name=str(tmp_path / "nope.jsonl")))


def test_shared_sft_mix_loads(shared_data):
    ds = load_sft_dataset(SFTDataArguments(dataset_name=str(shared_data / "sft_mix" / "train.jsonl"), num_samples=200))
    assert len(ds) == 200 and ds[0]["completion"][0]["role"] == "assistant"


@pytest.mark.parametrize("recipe", sorted(str(p.relative_to(REPO)) for p in (REPO / "recipes").glob("*/sft/*.yaml")))
def test_sft_recipes_parse(recipe):
    from profit_rl.sft import parse

    data_args, training_args, model_args = parse(["--config", str(REPO / recipe), "--use_cpu", "true", "--bf16", "false"])
    assert model_args.model_name_or_path
    if "Qwen3" in recipe:  # the paper's settings
        assert training_args.learning_rate == 1e-5 and training_args.lr_scheduler_type == "cosine"
        assert training_args.gradient_accumulation_steps == 4 and training_args.max_length == 8192
        assert data_args.num_samples == 2000
