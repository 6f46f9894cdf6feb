"""The probes' reference likelihood (docs/probes.md): the references are the probe files' problems, the core tokens are
what the problem determines, and the NLL is the teacher-forced one of the chat layout SFT trains on."""

import dataclasses
import json

import pytest

from profit_rl.embedded import probe_sets as P
from profit_rl.embedded import reference_nll as R
from profit_rl.embedded import task as T
from profit_rl.embedded.build import EmbeddedConfig, make_splits_for

SMALL = P.ProbeConfig(n_long=12, n_surface=12, n_retention=4, n_forgetting=4)


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """A small build's build.json and test.jsonl, and its probe files."""
    from profit_rl.data.prepare import write_jsonl

    config = dataclasses.replace(EmbeddedConfig(), n_test=10, n_grpo=10, n_sft=20, pretrain_steps=20)
    base = tmp_path_factory.mktemp("base")
    (base / "build.json").write_text(json.dumps({"config": dataclasses.asdict(config), "seed": 0, "cache_key": "k"}))
    write_jsonl(base / "test.jsonl", T.test_rows(make_splits_for(config, 0).test))
    probes = base.parent / (base.name + "-probes")
    P.write_probes(base, probes, SMALL)
    return base, probes


def test_the_references_are_the_probe_files_problems_with_their_core_marked(build):
    base, probes = build
    refs = R.probe_references(probes, base)
    for name, path in (("long", probes / "long.jsonl"), ("surface", probes / "surface.jsonl"),
                       ("in_distribution", base / "test.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        assert [r.id for r in refs[name]] == [row["id"] for row in rows]
        for ref, row in zip(refs[name], rows):
            assert ref.prompt[0]["content"] == T.user_message(row["problem"])
            core = "".join(c if k else "_" for c, k in zip(ref.completion, ref.core_chars))
            assert f"\\boxed{{{row['answer']}}}" in core and len(ref.core_chars) == len(ref.completion)
    assert all(r.completion.count(" = ") == 6 for r in refs["long"])
    # drawn again, not read: a probe file from other settings is refused, naming the file
    other = probes.parent / "other-probes"
    P.write_probes(base, other, dataclasses.replace(SMALL, seed=1))
    (other / "build.json").write_text((probes / "build.json").read_text())
    with pytest.raises(SystemExit, match="long.jsonl: its problem ids"):
        R.probe_references(other, base)
    # a row without an id is named by file, row and field
    from profit_rl.core.io import DataError

    (other / "long.jsonl").write_text('{"problem": "x", "answer": "1"}\n')
    with pytest.raises(DataError, match=r"long.jsonl, line 1, field 'id'"):
        R.probe_references(other, base)


def test_the_nll_is_the_teacher_forced_one_over_the_completion_and_its_end_of_turn(tiny_model_dir, build):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base, probes = build
    refs = R.probe_references(probes, base)["long"][:5]
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    stats = R.reference_stats(model, tokenizer, refs, batch_size=2)
    one = R.reference_stats(model, tokenizer, refs, batch_size=1)  # padding and batching change nothing
    assert [p["nll"] for p in stats["problems"]] == pytest.approx([p["nll"] for p in one["problems"]], rel=1e-4)

    ref = refs[0]
    messages = ref.prompt + [{"role": "assistant", "content": ref.completion}]
    prompt_ids = tokenizer.apply_chat_template(ref.prompt, add_generation_prompt=True, tokenize=False)
    prompt_ids = tokenizer(prompt_ids, add_special_tokens=False)["input_ids"]
    full = tokenizer(tokenizer.apply_chat_template(messages, tokenize=False), add_special_tokens=False)["input_ids"]
    end = full.index(tokenizer.convert_tokens_to_ids("<|im_end|>"), len(prompt_ids))
    with torch.no_grad():
        logp = model(input_ids=torch.tensor([full[: end + 1]])).logits[0].log_softmax(-1)
    by_hand = [-logp[i - 1, full[i]].item() for i in range(len(prompt_ids), end + 1)]
    first = stats["problems"][0]
    assert first["n_tokens"] == len(by_hand) and first["nll"] == pytest.approx(sum(by_hand) / len(by_hand), rel=1e-4)
    # core and phrasing split the tokens; the set's figure is the token-weighted mean of the problems'
    assert 0 < first["n_core"] < first["n_tokens"]
    assert first["core_nll"] * first["n_core"] + first["phrasing_nll"] * (first["n_tokens"] - first["n_core"]) == \
        pytest.approx(sum(by_hand), rel=1e-4)
    weighted = sum(p["core_nll"] * p["n_core"] for p in stats["problems"]) / stats["n_core_tokens"]
    assert stats["core_nll_per_token"] == pytest.approx(weighted)
    # by step: six events, then the conclusion; every core token in one step, the steps' sums the whole's
    assert len(stats["core_nll_by_step"]) == 7 and sum(stats["core_tokens_by_step"]) == stats["n_core_tokens"]
    assert sum(first["core_nll_sum_by_step"]) == pytest.approx(first["core_nll"] * first["n_core"], rel=1e-4)
    # the sixth step's core tokens spell the sixth event and its equation: "He buys 3" ... "14 + 3 = 17"
    from profit_rl.core.chat import ChatFormat

    ids, scored, core, step = R.scored_tokens(tokenizer, ChatFormat(tokenizer), ref)
    text = {n: tokenizer.decode([ids[i] for i, c, k in zip(scored, core, step) if c and k == n]) for n in range(7)}
    config = EmbeddedConfig.from_dict(json.loads((base / "build.json").read_text())["config"])
    problem = P.make_probes(config, 0, SMALL)[0].long[0]
    assert "long-" + problem.id == ref.id
    (role, b), (op, _), v = problem.events[5], problem.ops[5], problem.values
    assert f"{role} {b}" in text[5] and f"{v[5]} {op} {b} = {v[6]}" in text[5]
    assert f"{role} {b}" not in text[4] and f"= {v[6]}" not in text[4] and f"{{{v[6]}}}" in text[6]


def test_the_command_writes_every_set(tiny_model_dir, build, tmp_path):
    base, probes = build
    assert R.main(["--model", str(tiny_model_dir), "--probes-dir", str(probes), "--base-dir", str(base),
                   "--output-dir", str(tmp_path)]) == 0
    stats = json.loads((tmp_path / "reference_nll.json").read_text())
    assert {name: s["n_problems"] for name, s in stats["sets"].items()} == {
        "in_distribution": 10, "long": 12, "surface": 12}
    assert all(s["core_nll_per_token"] > 0 for s in stats["sets"].values())
