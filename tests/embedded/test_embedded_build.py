"""The embedded build: the shipped base model checked and installed, and a miniature pretraining build (seconds) that
loads, generates, is cached, and rebuilds when settings change."""

import dataclasses
import json

import pytest

from profit_rl.embedded import task as T
from profit_rl.embedded import build as B
from profit_rl.embedded.build import EmbeddedConfig, build_embedded, cached_key

# Same code path as the default build, scaled down to a few seconds.
MINI = EmbeddedConfig(
    n_test=6, n_grpo=5, n_sft=12, vocab_size=400, tokenizer_documents=300, hidden_size=32, num_hidden_layers=2,
    intermediate_size=64, num_attention_heads=2, num_key_value_heads=1, head_dim=16, pretrain_steps=8, batch_size=4,
    seq_len=64, warmup_steps=2, premise_rows=6, check_problems=4,
)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models are all small-op overhead, and spin-waiting OpenMP threads on a shared machine slow them down many
    times over (docs/results.md, "Threads"), so this module runs with 1 thread, as the embedded build itself does."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def mini_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("embedded") / "base"
    return build_embedded(out, seed=0, config=MINI, pretrain=True)


def read_jsonl(path):
    return [json.loads(line) for line in open(path)]


def test_build_writes_model_data_and_measurements(mini_build):
    sft, grpo, test = read_jsonl(mini_build.sft), read_jsonl(mini_build.grpo), read_jsonl(mini_build.test)
    assert (len(sft), len(grpo), len(test)) == (12, 5, 6)
    assert set(sft[0]) == {"prompt", "completion"} and sft[0]["completion"][0]["role"] == "assistant"
    assert set(grpo[0]) == set(test[0]) == {"problem", "answer", "id"}
    info = json.loads(mini_build.build_info.read_text())
    assert info["cache_key"] == MINI.cache_key(0) and EmbeddedConfig.from_dict(info["config"]) == MINI
    assert len(info["pretrain_log"]) >= 1 and all(e["loss"] > 0 for e in info["pretrain_log"])
    premise = info["premise_base_model"]
    assert premise["n_core_tokens"] > 0 and premise["n_trivial_tokens"] > 0
    assert 0 <= premise["mean_p_core"] <= 1 and 0 <= premise["mean_p_trivial"] <= 1
    assert 0 <= info["base_plain_greedy_accuracy"] <= 1
    # The jsonl files are exactly the task's splits for this seed.
    splits = T.make_splits(0, MINI.task, MINI.n_test, MINI.n_grpo, MINI.n_sft)
    assert [r["answer"] for r in test] == [str(p.answer) for p in splits.test]


def test_built_model_loads_and_generates_from_a_chat_prompt(mini_build):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(mini_build.model_dir)
    model = AutoModelForCausalLM.from_pretrained(mini_build.model_dir)
    prompt = read_jsonl(mini_build.sft)[0]["prompt"]
    ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    torch.manual_seed(0)
    out = model.generate(**ids, max_new_tokens=8, do_sample=True, pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] > ids["input_ids"].shape[1]
    assert tokenizer.eos_token == "<|im_end|>" and model.config.eos_token_id == tokenizer.eos_token_id
    # The corpus-trained tokenizer covers the task's words and round-trips them.
    text = read_jsonl(mini_build.sft)[0]["completion"][0]["content"]
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text


def test_cached_build_is_reused_and_other_settings_rebuild(mini_build, tmp_path):
    weights = mini_build.model_dir / "model.safetensors"
    mtime = weights.stat().st_mtime_ns
    again = build_embedded(mini_build.root, seed=0, config=MINI, pretrain=True)
    assert again == mini_build and weights.stat().st_mtime_ns == mtime
    other = dataclasses.replace(MINI, pretrain_steps=MINI.pretrain_steps + 1)
    assert other.cache_key(0) != MINI.cache_key(0) and MINI.cache_key(1) != MINI.cache_key(0)
    assert dataclasses.replace(MINI, task=T.TaskConfig(max_ops=3)).cache_key(0) != MINI.cache_key(0)
    # A stale build in the same folder is replaced, not reused.
    copy = tmp_path / "base"
    build_embedded(copy, seed=0, config=MINI, pretrain=True)
    rebuilt = build_embedded(copy, seed=0, config=other, pretrain=True)
    assert cached_key(copy) == other.cache_key(0) and rebuilt.root == copy
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folders left behind


def test_the_cache_key_is_settings_seed_origin_and_format_version_not_source(monkeypatch):
    key = MINI.cache_key(0)
    assert MINI.cache_key(0, "shipped:abc") != key
    monkeypatch.setattr(B, "FORMAT_VERSION", B.FORMAT_VERSION + 1)  # what a change of the build's outputs bumps
    assert MINI.cache_key(0) != key


def test_eval_benchmark_reads_the_test_set_and_prompts_like_the_sft_set(mini_build):
    from profit_rl.evals.benchmarks import get_benchmark

    bench = get_benchmark("embedded")
    problems = bench.load(mini_build.root)  # --data-dir layout: <dir>/test.jsonl
    assert problems == bench.load(mini_build.test)
    test = read_jsonl(mini_build.test)
    assert [p.id for p in problems] == [r["id"] for r in test] and [p.gold for p in problems] == [r["answer"] for r in test]
    # The eval prompt of a problem is exactly the user turn the SFT set trains on.
    sft_user = read_jsonl(mini_build.sft)[0]["prompt"]
    statement = sft_user[0]["content"].split("\n")[0]
    assert bench.prompt(type(problems[0])(id="x", question=statement, gold="0")) == sft_user
    right = f"So the answer is \\boxed{{{problems[0].gold}}}."
    wrong = f"So the answer is \\boxed{{{int(problems[0].gold) + 1}}}."
    scores = [score for _, score, _ in bench.score_many([(problems[0], right), (problems[0], wrong)])]
    assert scores == [1.0, 0.0]


def test_data_only_writes_the_builds_exact_files_and_no_model(mini_build, tmp_path):
    """`--data-only` (the SmolLM2 profile's data step) gives a pretrained model the embedded default's problems."""
    from profit_rl.embedded.build import main, paths_for, write_task_data

    only = paths_for(tmp_path / "mini")
    write_task_data(only, MINI, seed=0)
    for name in ("sft", "grpo", "test"):
        assert getattr(only, name).read_bytes() == getattr(mini_build, name).read_bytes(), name
    assert not only.model_dir.exists() and not only.build_info.exists()

    assert main(["--data-only", "--out-dir", str(tmp_path / "default")]) == 0  # the CLI, default task sizes
    default = EmbeddedConfig()
    sizes = [sum(1 for _ in open(tmp_path / "default" / f"{n}.jsonl")) for n in ("sft", "grpo", "test")]
    assert sizes == [default.n_sft, default.n_grpo, default.n_test]
    assert not (tmp_path / "default" / "model").exists()


def test_task_overrides_change_the_problems_and_bad_ones_fail_by_name(tmp_path):
    from profit_rl.embedded.build import main, task_config

    assert task_config(["max_ops=3", "start_min=10", "start_max=90", "max_value=99"]) == T.TaskConfig(
        max_ops=3, start_min=10, start_max=90, max_value=99)
    assert main(["--data-only", "--out-dir", str(tmp_path), "--task", "max_ops=2", "--task", "start_min=10",
                 "--task", "start_max=90", "--task", "max_value=99"]) == 0
    rows = read_jsonl(tmp_path / "test.jsonl")
    assert all(0 <= int(r["answer"]) <= 99 and r["problem"].count(". ") <= 3 for r in rows)
    for bad, message in ((["nope=1"], "FIELD=VALUE"), (["max_ops=x"], "not a number"), (["max_ops=9"], "max_ops"),
                         (["start_max=90"], "start_min <= start_max")):
        with pytest.raises(SystemExit, match=message):
            task_config(bad)


def test_shipped_model_matches_its_manifest_and_installs_with_this_machines_checks(tmp_path):
    manifest = B.shipped_manifest()
    assert set(manifest["files"]) == set(B.MODEL_FILES) and manifest["format_version"] == B.FORMAT_VERSION
    assert EmbeddedConfig.from_dict(manifest["config"]) == EmbeddedConfig()  # the default settings' model
    assert sum((B.SHIPPED_DIR / name).stat().st_size for name in manifest["files"]) < 2_000_000
    assert manifest["rebuild"].startswith("OMP_NUM_THREADS=1 python -m profit_rl.embedded.build --pretrain --seed ")
    for threads, accuracy in manifest["health"]["base_plain_greedy_accuracy"].items():
        assert accuracy >= 0.4, threads  # passes the pipeline's check (20%) with room to spare

    paths = build_embedded(tmp_path / "base")
    info = json.loads(paths.build_info.read_text())
    assert info["origin"] == "shipped:" + manifest["files"]["model.safetensors"] and info["seed"] == manifest["seed"]
    for name, digest in manifest["files"].items():
        assert B.sha256(paths.model_dir / name) == digest
    # the health check measured here is the one the manifest recorded when the model was shipped (same files)
    assert info["base_plain_greedy_accuracy"] == pytest.approx(
        manifest["health"]["base_plain_greedy_accuracy"]["torch_threads_1"], abs=3 / 64)
    test = read_jsonl(paths.test)
    splits = T.make_splits(manifest["seed"], T.TaskConfig(), 200, 1000, 2000)
    assert [r["answer"] for r in test] == [str(p.answer) for p in splits.test]  # the problems of the model's seed


def test_a_damaged_shipped_file_or_other_settings_stop_with_what_to_do(tmp_path):
    import shutil

    folder = tmp_path / "shipped"
    shutil.copytree(B.SHIPPED_DIR, folder)
    with open(folder / "tokenizer.json", "a") as f:
        f.write(" ")
    with pytest.raises(SystemExit, match=r"tokenizer.json: missing, or its sha256 is not the one in"):
        B.load_shipped(tmp_path / "model", folder)
    with pytest.raises(SystemExit, match="pretrain one: --pretrain"):
        build_embedded(tmp_path / "other", config=dataclasses.replace(EmbeddedConfig(), pretrain_steps=5))
