"""The embedded task's probes (docs/probes.md): new problems only, the surface they claim, loadable as benchmarks, and
the forgetting measure."""

import dataclasses
import json
import re

import pytest

from profit_rl.embedded import probe_sets as P
from profit_rl.embedded import task as T
from profit_rl.embedded.build import EmbeddedConfig, make_splits_for, task_data

SMALL = P.ProbeConfig(n_long=40, n_surface=40, n_retention=40, n_forgetting=20)
SEED = 3  # the shipped model's


@pytest.fixture(scope="module")
def default_probes():
    """The probes of the embedded default (seconds: the pretraining corpus bound is ~34k problems)."""
    config = EmbeddedConfig()
    sets, info = P.make_probes(config, SEED, SMALL)
    return config, sets, info


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def test_no_probe_shares_a_problem_with_the_splits_the_corpus_or_another_probe(default_probes):
    config, sets, info = default_probes
    splits = make_splits_for(config, SEED)
    split_keys = {p.key for p in splits.test + splits.grpo + splits.sft}
    split_texts = {p.statement for p in splits.test + splits.grpo + splits.sft}
    corpus = T.corpus_problems(SEED, config.task, split_keys)
    corpus_keys = {next(corpus).key for _ in range(P.corpus_bound(config))}
    seen_keys, seen_texts = set(), set()
    for name, problems in sets.all().items():
        keys, texts = {p.key for p in problems}, {p.statement for p in problems}
        assert len(keys) == len(problems) == getattr(SMALL, f"n_{name}"), name
        assert not keys & split_keys and not texts & split_texts, name  # by arithmetic and by problem text
        assert not keys & corpus_keys, name
        assert not keys & seen_keys and not texts & seen_texts, name
        seen_keys |= keys
        seen_texts |= texts
    # the bound covers the corpus the shipped model was pretrained on: 4.1M tokens of >= 95-token documents
    assert P.corpus_bound(config) * config.task.phrasings_per_problem * 95 > 1000 * 32 * 128
    assert info["reserved_keys"] >= len(split_keys)


def test_longer_chains_have_more_events_than_any_sft_row_and_correct_answers(default_probes):
    config, sets, _ = default_probes
    assert max(len(p.events) for p in make_splits_for(config, SEED).sft) == config.task.max_ops == 5
    for p in sets.long:
        assert len(p.events) == 6 and [r for r, _ in p.events] == T.ROLE_ORDER
        assert all(0 <= v <= config.task.max_value for v in p.values)
        assert [int(n) for n in re.findall(r"\d+", p.statement)] == [p.start] + [b for _, b in p.events]
    with pytest.raises(ValueError, match="long_ops"):
        P.make_probes(config, SEED, dataclasses.replace(SMALL, long_ops=5))


def test_unseen_surface_uses_no_name_item_verb_or_sentence_of_any_sft_row(default_probes):
    config, sets, _ = default_probes
    sft = [e.row for e in task_data(config, SEED).sft]
    sft_text = [r["prompt"][0]["content"] + "\n" + r["completion"][0]["content"] for r in sft]
    vocabulary = set().union(*(words(t) for t in sft_text))
    surface_words = {n.lower() for n, _ in P.SURFACE_NAMES} | set(P.SURFACE_ITEMS) | set(P.SURFACE_VERBS)
    assert not surface_words & vocabulary
    prompts = "\n".join(r["prompt"][0]["content"] for r in sft)
    for p in sets.surface:
        sentences = re.split(r"(?<=[.?])\s", p.statement)
        first, question = sentences[0], sentences[-1]
        assert first not in prompts and question not in prompts
        assert p.name in {n for n, _ in P.SURFACE_NAMES} and p.items in P.SURFACE_ITEMS
        assert any(v in first + question for v in P.SURFACE_VERBS)
    # the arithmetic is the task's own: same events, same answers
    assert all(1 <= len(p.events) <= 5 and p.answer == p.values[-1] for p in sets.surface)


@pytest.fixture(scope="module")
def probe_dir(tmp_path_factory):
    """The probe files of a small build (a build.json with its settings is all `write_probes` reads)."""
    config = dataclasses.replace(EmbeddedConfig(), n_test=30, n_grpo=30, n_sft=60, pretrain_steps=20)
    base = tmp_path_factory.mktemp("base")
    (base / "build.json").write_text(json.dumps({"config": dataclasses.asdict(config), "seed": 0, "cache_key": "k"}))
    out = base.parent / (base.name + "-probes")
    P.write_probes(base, out, SMALL)
    return config, out


def test_the_probe_files_load_as_benchmarks_with_their_own_ids(probe_dir):
    from profit_rl.evals.benchmarks import get_benchmark

    config, out = probe_dir
    test_ids = {p.id for p in make_splits_for(config, 0).test}
    loaded = {name: get_benchmark(name).load(out) for name in ("embedded-long", "embedded-surface",
                                                                "embedded-retention")}
    assert [len(v) for v in loaded.values()] == [40, 40, 40]
    for problems in loaded.values():
        assert not {p.id for p in problems} & test_ids
    long = get_benchmark("embedded-long")
    assert long.max_new_tokens > get_benchmark("embedded").max_new_tokens
    # full_chain: samples with one equation per event, whatever their answer
    first = loaded["embedded-long"][0]
    values = [int(v) for v in re.findall(r"\d+", first.question)]
    six = " ".join(f"{a} + {b} = {a + b}." for a, b in zip(values, values[1:]))
    five = six.rsplit(" ", 4)[0]
    samples = {p.id: [{"completion": five}, {"completion": six}] for p in loaded["embedded-long"]}
    assert long.own_metrics(loaded["embedded-long"], samples, 2) == {"full_chain": 0.5}
    retention = loaded["embedded-retention"][0]
    bench = get_benchmark("embedded-retention")
    assert bench.prompt(retention) == [{"role": "user", "content": T.pretraining_prompt(retention.question)}]
    assert bench.extract(retention, f"... So the answer is \\boxed{{{retention.gold}}}.") == retention.gold
    info = json.loads((out / "build.json").read_text())
    assert info["sizes"] == {"long": 40, "surface": 40, "retention": 40, "forgetting": 20} and info["seed"] == 0
    # each probe states what the paper predicts for it
    assert set(info["predictions"]) == {"in_distribution", "long", "surface", "retention", "forgetting", "reference"}


def test_the_retention_probe_refuses_the_chat_template(probe_dir, tmp_path):
    from profit_rl.evals.benchmarks import get_benchmark
    from profit_rl.core.io import InputError
    from profit_rl.evals.benchmark_runner import run_benchmark
    from profit_rl.evals.sampling import SamplingSettings

    _, out = probe_dir
    bench = get_benchmark("embedded-retention")
    problems = bench.load(out)[:2]

    def no_sampler():
        raise AssertionError("the refusal comes before any model is loaded")

    with pytest.raises(InputError, match="--no-chat-template"):
        run_benchmark(bench, problems, "m", SamplingSettings(), 1, tmp_path, no_sampler)


def test_forgetting_is_zero_kl_against_itself_and_grows_when_the_model_moves(tiny_model_dir, probe_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, out = probe_dir
    texts = [json.loads(line)["text"] for line in (out / "forgetting.jsonl").read_text().splitlines()][:6]
    assert all(t.startswith("Problem: ") and "\nSolution: " in t and "\\boxed{" in t for t in texts)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    same = P.forgetting_stats(base, base, tokenizer, texts, batch_size=4)
    assert abs(same["kl_from_base_per_token"]) < 1e-6 and same["nll_per_token"] == pytest.approx(
        same["base_nll_per_token"])
    moved = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    with torch.no_grad():
        for p in moved.parameters():
            p.add_(0.05 * torch.randn_like(p))
    # batching pads: the figures must not depend on it
    a = P.forgetting_stats(moved, base, tokenizer, texts, batch_size=4)
    b = P.forgetting_stats(moved, base, tokenizer, texts, batch_size=1)
    assert a["kl_from_base_per_token"] > 1e-3 and a["n_tokens"] == b["n_tokens"] == same["n_tokens"]
    assert a["kl_from_base_per_token"] == pytest.approx(b["kl_from_base_per_token"], rel=1e-4)
    assert a["nll_per_token"] == pytest.approx(b["nll_per_token"], rel=1e-4)
    # the documents' figures are per-token means whose token-weighted mean is the whole's
    docs = a["documents"]
    assert [d["id"] for d in docs] == [str(i) for i in range(6)] and sum(d["n_tokens"] for d in docs) == a["n_tokens"]
    assert sum(d["kl"] * d["n_tokens"] for d in docs) / a["n_tokens"] == pytest.approx(a["kl_from_base_per_token"])
    # the command writes the same figures
    stats = P.score_forgetting(str(tiny_model_dir), str(tiny_model_dir), out / "forgetting.jsonl", tmp_path)
    assert json.loads((tmp_path / "forgetting.json").read_text()) == stats and stats["n_documents"] == 20


def test_the_protected_recipe_is_profit_with_the_digits_protected():
    from conftest import REPO
    from profit_rl.sft import parse

    sft = REPO / "recipes" / "embedded" / "sft"
    _, protected, _ = parse(["--config", str(sft / "profit-protected.yaml")])
    _, profit, _ = parse(["--config", str(sft / "profit.yaml")])
    assert protected.protected_strings == list("0123456789") and profit.protected_strings == []
    for field in ("selection", "tau", "learning_rate", "per_device_train_batch_size", "num_train_epochs", "max_length",
                  "seed", "keep_end_of_turn"):
        assert getattr(protected, field) == getattr(profit, field), field


def test_forgetting_nll_is_the_hand_computed_one_with_each_end_token(tiny_model_dir):
    """NLL per token = the mean of -log p(next token) over every position of every document, with the end token the
    caller names (the embedded corpus's `<|im_end|>`, the tokenizer's EOS) appended, or none (general text)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    texts = ["The assert statement is a convenient way to insert debugging assertions.", "x = 1"]
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]

    def by_hand(seq):  # one document alone, no padding, no batching
        with torch.no_grad():
            logp = model(input_ids=torch.tensor([seq])).logits[0].float().log_softmax(-1)
        return [-logp[i, seq[i + 1]].item() for i in range(len(seq) - 1)]

    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    for end, tail in ((None, []), ("eos", [tokenizer.eos_token_id]), ("<|im_end|>", [im_end])):
        docs = [by_hand(x + tail) for x in ids]
        stats = P.forgetting_stats(model, model, tokenizer, texts, batch_size=2, end=end, ids=["a", "b"])
        n = sum(map(len, docs))
        assert stats["n_tokens"] == n and stats["end_token"] == end
        assert stats["nll_per_token"] == pytest.approx(sum(map(sum, docs)) / n, rel=1e-5)
        assert stats["base_nll_per_token"] == stats["nll_per_token"] and stats["kl_from_base_per_token"] == 0
        assert [d["id"] for d in stats["documents"]] == ["a", "b"]
        assert [d["nll"] for d in stats["documents"]] == pytest.approx([sum(d) / len(d) for d in docs], rel=1e-5)
    with pytest.raises(SystemExit, match="not a token"):
        P.forgetting_stats(model, model, tokenizer, texts, end="<|no-such-token|>")
