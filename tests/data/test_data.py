"""SFT data: layouts, row errors that name file/row/field, selection, and every shipped recipe parses."""

import json

import pytest

from profit_rl.core.io import DataError, Row
from profit_rl.configs import SFTDataArguments
from profit_rl.data.sft_rows import detect_layout, load_sft_dataset, select_indices, to_prompt_completion

from conftest import REPO  # noqa: E402  (the repository root, defined once)
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
    assert out == [{"prompt": [USER], "completion": [BOT]}]


def test_every_assistant_turn_is_supervised_unless_last_only():
    system = {"role": "system", "content": "be brief"}
    second = {"role": "assistant", "content": "bye"}
    row = Row({"messages": [system, USER, BOT, {"role": "user", "content": "thanks"}, second]}, "f", 1)
    first_turn, last_turn = to_prompt_completion(row, "messages")
    assert first_turn == {"prompt": [system, USER], "completion": [BOT]}
    assert last_turn["prompt"] == row["messages"][:4] and last_turn["completion"] == [second]
    assert to_prompt_completion(row, "messages", turns="last") == [last_turn]
    alpaca, = to_prompt_completion(Row({"instruction": "Sum", "input": "1 2", "output": "3"}, "f", 1), "alpaca")
    assert alpaca["prompt"][0]["content"] == "Sum\n\n1 2"
    with pytest.raises(DataError, match="expected a prompt before the assistant message"):
        to_prompt_completion(Row({"messages": [BOT, USER, BOT]}, "f", 3), "messages")


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
    if "Qwen3" in recipe:  # the paper's settings and data: every row of the reference's Shadow_2k, every turn
        assert training_args.learning_rate == 1e-5 and training_args.lr_scheduler_type == "cosine"
        assert training_args.gradient_accumulation_steps == 4 and training_args.max_length == 8192
        assert data_args.dataset_name == SHADOW_2K_URL and data_args.supervised_turns == "all"
        assert data_args.num_samples is None and data_args.dataset_config is None


SHADOW_2K_URL = "https://raw.githubusercontent.com/Utaotao/ProFit/main/data/Shadow_2k.parquet"


def shadow_like_rows():
    """Rows laid out as Shadow_2k is (ShareGPT `conversations` of {from, value}, LLaMA-Factory's sharegpt format with
    messages in `conversations`), with made-up text: one single-turn, one two-turn with a system turn."""
    turn = lambda who, text: {"from": who, "value": text}  # noqa: E731
    return [
        {"id": "a", "conversations": [turn("human", "Name a prime."), turn("gpt", "7")]},
        {"id": "b", "conversations": [turn("system", "Be brief."), turn("human", "2+2?"), turn("gpt", "4"),
                                      turn("human", "And 3+3?"), turn("gpt", "6")]},
    ]


def test_shadow_2k_layout_from_a_local_parquet_copy(tmp_path):
    from datasets import Dataset

    path = tmp_path / "Shadow_2k.parquet"
    Dataset.from_list(shadow_like_rows()).to_parquet(str(path))
    rows = load_sft_dataset(SFTDataArguments(dataset_name=str(path)), keep_source=True)
    assert [r["id"] for r in rows] == ["a", "b#1", "b#2"]  # every assistant turn, one row each
    assert [r["completion"][0]["content"] for r in rows] == ["7", "4", "6"]
    assert [m["role"] for m in rows[2]["prompt"]] == ["system", "user", "assistant", "user"]
    last = load_sft_dataset(SFTDataArguments(dataset_name=str(path), supervised_turns="last"), keep_source=True)
    assert [r["id"] for r in last] == ["a", "b"] and last[1]["completion"][0]["content"] == "6"
    with pytest.raises(ValueError, match="supervised_turns"):
        load_sft_dataset(SFTDataArguments(dataset_name=str(path), supervised_turns="first"))


def test_a_url_is_read_through_datasets_by_its_file_type(tmp_path, monkeypatch):
    import datasets

    local = write_jsonl(tmp_path / "copy.jsonl", shadow_like_rows())
    real, calls = datasets.load_dataset, []

    def offline_load_dataset(builder, *args, data_files=None, split=None, **kwargs):
        calls.append((builder, data_files, args))
        if isinstance(data_files, str) and data_files.startswith("https://"):  # stands in for the download
            return real("json", data_files=str(local), split=split)
        return real(builder, *args, data_files=data_files, split=split, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", offline_load_dataset)
    rows = load_sft_dataset(SFTDataArguments(dataset_name=SHADOW_2K_URL))
    assert calls[0] == ("parquet", SHADOW_2K_URL, ()) and len(rows) == 3
    with pytest.raises(DataError, match="expected the URL of a .jsonl, .json, .csv, .parquet file"):
        load_sft_dataset(SFTDataArguments(dataset_name="https://example.org/data"))


def test_no_dataset_specific_defaults_leak_into_another_dataset(monkeypatch, tmp_path):
    import datasets

    from profit_rl.sft import parse

    data_args, _, _ = parse(["--dataset_name", "trl-lib/Capybara", "--model_name_or_path", "m",
                             "--output_dir", str(tmp_path), "--use_cpu", "true", "--bf16", "false"])
    assert (data_args.dataset_config, data_args.num_samples) == (None, None)
    calls = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: calls.append((a, k)) or datasets.Dataset.from_list(
        [{"messages": [USER, BOT]}] * 2500))
    assert len(load_sft_dataset(data_args)) == 2500  # no 2,000-row cut
    assert calls == [(("trl-lib/Capybara", None), {"split": "train"})]  # no config "0625"
    with pytest.raises(ValueError, match="dataset_name is required"):
        load_sft_dataset(SFTDataArguments())


def test_prepare_takes_the_sft_data_named_on_its_command_line(tmp_path, monkeypatch):
    """The pipeline's data step names the recipe's SFT data in its command (--sft-dataset): a local Shadow_2k-layout
    copy here, read with the Qwen3 recipe's settings (every row, every assistant turn)."""
    from datasets import Dataset

    from profit_rl.data import prepare

    copy = tmp_path / "Shadow_2k.parquet"
    Dataset.from_list(shadow_like_rows()).to_parquet(str(copy))
    problems = write_jsonl(tmp_path / "rl.jsonl", [{"problem": "What is 2+2?", "answer": "4"},
                                                    {"problem": "What is 3+3?", "answer": "6"}])
    rl_recipe = tmp_path / "grpo.yaml"  # the CPU GRPO recipe on two local problems, to keep the test fast
    rl_recipe.write_text((REPO / "recipes/Qwen3-0.6B-Base/grpo/math_cpu.yaml").read_text().replace(
        "dataset_name: data/math_train12k/train.jsonl", f"dataset_name: {problems}"))
    out = tmp_path / "data"
    monkeypatch.chdir(REPO)
    assert prepare.main(["--sft-recipe", "recipes/Qwen3-0.6B-Base/sft/sft.yaml", "--sft-dataset", str(copy),
                         "--rl-recipe", str(rl_recipe), "--decontaminate-against", "none", "--out-dir", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "sft.jsonl").read_text().splitlines()]
    assert [r["completion"][0]["content"] for r in rows] == ["7", "4", "6"]
    report = json.loads((out / "data_report.json").read_text())["sft"]
    assert report["source"] == str(copy) and report["rows"] == 3 and report["supervised_turns"] == "all"
