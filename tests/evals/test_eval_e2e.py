"""End to end on the tiny model: eval CLI on every benchmark, resume after a crash, --responses, compare, curves."""

import csv
import json

import pytest

from profit_rl.evals import benchmark_runner, compare, curves, evaluate
from profit_rl.evals.benchmarks import get_benchmark
from profit_rl.evals.results import CacheMismatchError, SampleCache, fingerprint_hash
from profit_rl.evals.sampling import SamplingSettings, TransformersSampler

FAST = ["--max-new-tokens", "8", "--batch-size", "2"]


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_eval_cli_all_benchmarks(tiny_model_dir, shared_data, tmp_path):
    out = tmp_path / "run"
    argv = ["--model", str(tiny_model_dir), "--benchmarks", "math500,gsm8k,aime24,gpqa", "--k", "2",
            "--data-dir", str(shared_data), "--limit", "2", "--output-dir", str(out), "--bootstrap", "200", *FAST]
    assert evaluate.main(argv) == 0
    run = json.loads((out / "results.json").read_text())
    assert list(run["benchmarks"]) == ["math500", "gsm8k", "aime24", "gpqa"]
    assert set(run["average"]) >= {"avg_at_k", "pass_at_k", "avg_at_k_ci", "pass_at_k_ci"}
    for name in run["benchmarks"]:
        rows = read_jsonl(out / name / "samples.jsonl")
        assert len(rows) == 4 and {(r["problem_id"], r["sample_index"]) for r in rows} == {
            (p.id, i) for p in get_benchmark(name).load(shared_data)[:2] for i in range(2)}
        for r in rows:
            assert {"completion", "extracted", "score", "correct", "error", "settings"} <= set(r)
            assert r["settings"]["temperature"] == 0.7 and r["settings"]["top_k"] == 20
        summary = json.loads((out / name / "results.json").read_text())
        assert summary["k"] == 2 and summary["n_problems"] == 2 and 0 <= summary["avg_at_k"] <= 1
    table = (out / "results.md").read_text()
    assert "| MATH-500 | 2 | 2 |" in table and "Average (4)" in table

    # a rerun with the same settings loads no model and generates nothing
    def no_model(*args, **kwargs):
        raise AssertionError("a finished eval must not load the model again")

    import profit_rl.evals.evaluate

    original = profit_rl.evals.evaluate.build_sampler
    profit_rl.evals.evaluate.build_sampler = no_model
    try:
        assert evaluate.main(argv) == 0
    finally:
        profit_rl.evals.evaluate.build_sampler = original


class CountingSampler:
    """The real transformers sampler, counting samples and optionally crashing after `crash_after` batches."""

    def __init__(self, model, settings, crash_after=None):
        self.inner = TransformersSampler(str(model), settings)
        self.generated = 0
        self.crash_after = crash_after

    def context_error(self, messages, prompt_budget=None):
        return self.inner.context_error(messages, prompt_budget)

    def sample(self, prompts, k, settings, on_batch=None, desc="", **seeding):
        batches = 0

        def counting(indices, completions):
            nonlocal batches
            self.generated += sum(len(c) for c in completions)
            on_batch(indices, completions)
            batches += 1
            if self.crash_after is not None and batches >= self.crash_after:
                raise KeyboardInterrupt("simulated kill after a saved batch")

        return self.inner.sample(prompts, k, settings, on_batch=counting, desc=desc, **seeding)


@pytest.mark.slow
def test_resume_after_interruption_generates_each_sample_once(tiny_model_dir, shared_data, tmp_path):
    bench = get_benchmark("gsm8k")
    problems = bench.load(shared_data)[:5]
    settings = SamplingSettings(max_new_tokens=6, batch_size=2)
    k = 3

    first = CountingSampler(tiny_model_dir, settings, crash_after=1)
    with pytest.raises(KeyboardInterrupt):
        benchmark_runner.run_benchmark(bench, problems, str(tiny_model_dir), settings, k, tmp_path, lambda: first)
    samples = tmp_path / "gsm8k" / "samples.jsonl"
    assert first.generated == 2 * k and len(read_jsonl(samples)) == 2 * k  # the saved batch survived
    with open(samples, "a") as f:
        f.write('{"problem_id": "4", "sample_ind')  # a kill -9 in the middle of a write

    second = CountingSampler(tiny_model_dir, settings)
    summary = benchmark_runner.run_benchmark(bench, problems, str(tiny_model_dir), settings, k, tmp_path, lambda: second)
    assert second.generated == (5 - 2) * k  # only what was missing
    rows = read_jsonl(samples)
    keys = [(r["problem_id"], r["sample_index"]) for r in rows]
    assert len(keys) == len(set(keys)) == 5 * k
    assert summary["n_problems"] == 5 and summary["n_samples"] == 5 * k

    # asking for more samples draws only the extra ones; asking for fewer draws none
    third = CountingSampler(tiny_model_dir, settings)
    benchmark_runner.run_benchmark(bench, problems, str(tiny_model_dir), settings, k + 2, tmp_path, lambda: third)
    assert third.generated == 5 * 2
    summary = benchmark_runner.run_benchmark(bench, problems, str(tiny_model_dir), settings, 2, tmp_path, lambda: 1 / 0)
    assert summary["k"] == 2 and summary["n_samples"] == 10

    # other sampling settings never mix with these samples
    with pytest.raises(CacheMismatchError, match="temperature"):
        benchmark_runner.run_benchmark(bench, problems, str(tiny_model_dir), SamplingSettings(temperature=1.0, max_new_tokens=6),
                             k, tmp_path, lambda: 1 / 0)
    with pytest.raises(CacheMismatchError, match="end_of_turn_token"):
        benchmark_runner.run_benchmark(bench, problems, str(tiny_model_dir),
                             SamplingSettings(max_new_tokens=6, end_of_turn_token="<|endoftext|>"), k, tmp_path,
                             lambda: 1 / 0)

    # a cache written before completions stopped at the end of the turn has no stop rule in its settings: refused
    rows = read_jsonl(samples)
    old_settings = {key: value for key, value in rows[0]["settings"].items() if key not in ("stop", "end_of_turn_token")}
    old_key = fingerprint_hash(old_settings)
    samples.write_text("".join(json.dumps(dict(r, settings=old_settings, fingerprint=old_key)) + "\n" for r in rows))
    with pytest.raises(CacheMismatchError, match="stop: \\(none\\) -> end_of_turn"):
        benchmark_runner.run_benchmark(bench, problems, str(tiny_model_dir), settings, k, tmp_path, lambda: 1 / 0)


@pytest.mark.slow
def test_prompts_longer_than_the_context_score_zero_and_are_counted(tiny_model_dir, shared_data, tmp_path):
    bench = get_benchmark("math500")
    problems = bench.load(shared_data)[:4]
    settings = SamplingSettings(max_new_tokens=4, batch_size=4)
    sampler = CountingSampler(tiny_model_dir, settings)
    lengths = sorted(len(sampler.inner.tokenizer(sampler.inner.render(bench.prompt(p)))["input_ids"]) for p in problems)
    sampler.inner.max_positions = lengths[1] + 2  # a model whose context holds only the two shortest prompts
    summary = benchmark_runner.run_benchmark(bench, problems, str(tiny_model_dir), settings, 2, tmp_path, lambda: sampler)
    rows = read_jsonl(tmp_path / "math500" / "samples.jsonl")
    unfit = [r for r in rows if r["error"]]
    assert len(rows) == 8 and len(unfit) == 4 and sampler.generated == 4
    assert all(r["completion"] == "" and r["score"] == 0.0 and "context" in r["error"] for r in unfit)
    assert summary["n_errors"] == 4 and summary["n_problems"] == 4


def test_sample_cache_truncates_only_a_partial_last_line(tmp_path):
    path = tmp_path / "samples.jsonl"
    cache = SampleCache(path, {"model": "m"})
    cache.append([{"problem_id": "a", "sample_index": 0, "score": 1.0}])
    with open(path, "a") as f:
        f.write('{"problem_id": "a", "sample_index": 1, "sco')
    again = SampleCache(path, {"model": "m"})
    assert again.done("a") == 1 and again.n_dropped_partial == 1
    assert path.read_text().count("\n") == 1


def test_a_grouped_call_gives_the_samples_drawn_one_at_a_time(tiny_model_dir, shared_data):
    """One generate() call for 3 prompts of different lengths (left padding) x k=3 gives, for every sample, what a call
    drawing that sample alone gives; unseeded sampling (torch's global generator) repeats under the same torch seed."""
    import torch

    bench = get_benchmark("math500")
    settings = SamplingSettings(max_new_tokens=12, temperature=1.0, top_k=0, top_p=1.0)
    sampler = TransformersSampler(str(tiny_model_dir), settings)
    texts = [sampler.render(bench.prompt(p)) for p in bench.load(shared_data)[:3]]
    seeds = [[10 * i + j for j in range(3)] for i in range(3)]
    grouped = sampler.generate(texts, 3, settings, seeds=seeds)
    alone = [[sampler.generate([t], 1, settings, seeds=[[s]])[0][0] for s in row] for t, row in zip(texts, seeds)]
    torch.manual_seed(0)
    unseeded = sampler.generate(texts, 3, settings)
    torch.manual_seed(0)
    assert sampler.generate(texts, 3, settings) == unseeded and [len(s) for s in unseeded] == [3, 3, 3]
    assert grouped == alone and len(grouped) == 3 and all(len(s) == 3 for s in grouped)
    assert len({c for s in grouped for c in s}) > 3  # really sampled: the seeds differ, so do the completions


@pytest.mark.slow
def test_a_sample_depends_only_on_its_problem_index_and_seed(tiny_model_dir, shared_data, tmp_path):
    """Sample j of problem p is the same whatever the batch size, and whether samples 0..j-1 were drawn in this call
    or an earlier one; another seed draws other samples."""
    bench = get_benchmark("gsm8k")
    problems = bench.load(shared_data)[:5]

    def samples(out, k, batch_size, seed=0):
        settings = SamplingSettings(max_new_tokens=10, temperature=1.0, batch_size=batch_size, seed=seed)
        sampler = CountingSampler(tiny_model_dir, settings)
        benchmark_runner.run_benchmark(bench, problems, str(tiny_model_dir), settings, k, tmp_path / out, lambda: sampler)
        rows = read_jsonl(tmp_path / out / "gsm8k" / "samples.jsonl")
        return {(r["problem_id"], r["sample_index"]): r["completion"] for r in rows}, sampler.generated

    reference, _ = samples("ref", k=4, batch_size=3)
    one_at_a_time, _ = samples("bs1", k=4, batch_size=1)
    assert one_at_a_time == reference
    samples("extend", k=2, batch_size=2)
    extended, generated = samples("extend", k=4, batch_size=2)  # samples 2 and 3 drawn later, in another call
    assert generated == 5 * 2 and extended == reference
    other_seed, _ = samples("seed1", k=4, batch_size=3, seed=1)
    assert sum(other_seed[key] != reference[key] for key in reference) > len(reference) // 2


def test_seeded_draws_follow_the_filtered_distribution():
    """The per-row draw samples softmax(logits / temperature) after top-k / top-p, as transformers' sampling does."""
    import torch

    from profit_rl.evals.sampling import seeded_sampling

    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, -30.0]])
    n = 4000
    for settings, allowed in [(SamplingSettings(temperature=1.0, top_k=0, top_p=1.0), 4),
                              (SamplingSettings(temperature=0.5, top_k=2, top_p=1.0), 2)]:
        processors = seeded_sampling(settings, list(range(n)), "cpu")
        chosen = processors(None, logits.repeat(n, 1)).argmax(-1)
        counts = torch.bincount(chosen, minlength=5).double() / n
        top = (logits[0] / settings.temperature)[:allowed]
        expected = torch.cat([torch.softmax(top, -1), torch.zeros(5 - allowed, dtype=top.dtype)]).double()
        assert torch.allclose(counts, expected, atol=0.03), (counts, expected)
        assert counts[allowed:].sum() == 0  # filtered-out tokens are never drawn
    again = seeded_sampling(SamplingSettings(temperature=1.0, top_k=0, top_p=1.0), list(range(n)), "cpu")
    first = seeded_sampling(SamplingSettings(temperature=1.0, top_k=0, top_p=1.0), list(range(n)), "cpu")
    assert torch.equal(again(None, logits.repeat(n, 1)), first(None, logits.repeat(n, 1)))  # a seed, a draw


def write_responses(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_responses_scoring_and_compare(shared_data, tmp_path, capsys):
    golds = {p.id: p.gold for p in get_benchmark("gsm8k").load(shared_data)[:3]}
    ids = list(golds)
    # run A, one row per completion: problem 0 right twice, problem 1 once, problem 2 never
    rows_a = [{"id": ids[0], "completion": f"#### {golds[ids[0]]}"}, {"id": ids[0], "completion": f"\\boxed{{{golds[ids[0]]}}}"},
              {"id": ids[1], "completion": f"#### {golds[ids[1]]}"}, {"id": ids[1], "completion": "#### -1"},
              {"id": ids[2], "completion": "no answer"}, {"id": ids[2], "completion": "#### -1"}]
    # run B, one row per problem: everything right
    rows_b = [{"problem_id": pid, "completions": [f"#### {golds[pid]}"] * 2, "benchmark": "gsm8k"} for pid in ids]
    write_responses(tmp_path / "a.jsonl", rows_a)
    write_responses(tmp_path / "b.jsonl", rows_b)
    for name in ("a", "b"):
        assert evaluate.main(["--responses", str(tmp_path / f"{name}.jsonl"), "--benchmarks", "gsm8k", "--data-dir",
                         str(shared_data), "--output-dir", str(tmp_path / f"run_{name}"), "--bootstrap", "200"]) == 0
    a = json.loads((tmp_path / "run_a" / "gsm8k" / "results.json").read_text())
    assert a["k"] == 2 and a["n_problems"] == 3
    assert a["avg_at_k"] == pytest.approx((1 + 0.5 + 0) / 3) and a["pass_at_k"] == pytest.approx(2 / 3)
    b = json.loads((tmp_path / "run_b" / "gsm8k" / "results.json").read_text())
    assert b["avg_at_k"] == 1.0 and b["pass_at_k"] == 1.0

    out = tmp_path / "cmp.md"
    assert compare.main([str(tmp_path / "run_a"), str(tmp_path / "run_b"), "--output", str(out),
                         "--bootstrap", "200"]) == 0
    table = out.read_text()
    assert "GSM8K Avg@2" in table and "GSM8K Pass@2" in table and "Avg Avg@k" in table
    assert "+50.0 [" in table  # Avg@2: 100 - 50
    numbers = json.loads(out.with_suffix(".json").read_text())
    assert numbers["benchmarks"]["gsm8k"]["pass_at_k"]["delta"] == pytest.approx(1 / 3)

    # an id the benchmark does not have is an error naming the file
    write_responses(tmp_path / "bad.jsonl", [{"id": "no-such-id", "completion": "#### 1"}])
    assert evaluate.main(["--responses", str(tmp_path / "bad.jsonl"), "--benchmarks", "gsm8k", "--data-dir",
                     str(shared_data), "--output-dir", str(tmp_path / "bad")]) == 1
    assert "bad.jsonl" in capsys.readouterr().err


def test_missing_data_cli_error(tmp_path, capsys):
    assert evaluate.main(["--model", "unused", "--benchmarks", "aime24", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "AIME'24 (aime24)" in err and str(tmp_path / "aime24" / "test.jsonl") in err


@pytest.mark.slow
def test_curves_over_two_checkpoints(tiny_model_dir, shared_data, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = tmp_path / "grpo"
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    for step in (5, 10):
        with torch.no_grad():
            model.model.norm.weight.mul_(1.1)  # a different model per checkpoint
        model.save_pretrained(run / f"checkpoint-{step}")
        tokenizer.save_pretrained(run / f"checkpoint-{step}")
    out = tmp_path / "curves"
    argv = [str(run), "--benchmark", "gsm8k", "--k", "2", "--limit", "2", "--data-dir", str(shared_data),
            "--output-dir", str(out), "--bootstrap", "100", "--base-models", str(tiny_model_dir), *FAST]
    assert curves.main(argv) == 0
    with open(out / "curves.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["step"], r["benchmark"], r["k"], r["n_problems"]) for r in rows] == [
        ("0", "gsm8k", "2", "2"), ("5", "gsm8k", "2", "2"), ("10", "gsm8k", "2", "2")]
    assert rows[0]["checkpoint"] == str(tiny_model_dir) and (run / "eval" / "base" / "gsm8k").is_dir()
    assert all(0.0 <= float(r["avg_at_k"]) <= 1.0 for r in rows)
    png = (out / "curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert (run / "eval" / "checkpoint-10" / "gsm8k" / "samples.jsonl").is_file()

    # the rerun is served from the per-checkpoint caches
    import profit_rl.evals.curves

    original = profit_rl.evals.curves.build_sampler
    profit_rl.evals.curves.build_sampler = lambda *a, **k: (_ for _ in ()).throw(AssertionError("cache not used"))
    try:
        assert curves.main(argv) == 0
    finally:
        profit_rl.evals.curves.build_sampler = original


def test_lora_adapter_checkpoints_are_evaluated_merged_into_their_base(tiny_model_dir, shared_data, tmp_path):
    """LoRA SFT outputs and GRPO checkpoints that trained an adapter hold adapter_config.json, not config.json: the
    curves find them, and the sampler evaluates base + adapter (not the bare base, not a load error)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from profit_rl.evals.sampling import SamplingSettings, TransformersSampler

    run = tmp_path / "grpo"
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    peft_model.save_pretrained(run / "checkpoint-3")
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(run / "checkpoint-3")
    assert not (run / "checkpoint-3" / "config.json").exists()
    assert curves.find_checkpoints(run) == [(3, run / "checkpoint-3")]

    sampler = TransformersSampler(str(run / "checkpoint-3"), SamplingSettings(), device="cpu")
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        merged = sampler.model(ids).logits
        expected = peft_model.eval()(ids).logits
        bare = AutoModelForCausalLM.from_pretrained(tiny_model_dir)(ids).logits
    assert not hasattr(sampler.model, "peft_config")  # merged into plain weights: full-model sampling speed
    assert torch.allclose(merged, expected, atol=1e-4) and not torch.allclose(merged, bare, atol=1e-3)

    out = tmp_path / "curves"
    argv = [str(run), "--benchmark", "gsm8k", "--k", "2", "--limit", "2", "--data-dir", str(shared_data),
            "--output-dir", str(out), "--bootstrap", "100", *FAST]
    assert curves.main(argv) == 0
    with open(out / "curves.csv") as f:
        assert [(r["step"], r["n_problems"]) for r in csv.DictReader(f)] == [("3", "2")]


def test_vllm_backend_refuses_an_adapter_folder_by_name(tmp_path):
    from profit_rl.evals.sampling import SamplingSettings, make_llm

    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(ValueError, match="LoRA adapter.*--backend transformers"):
        make_llm(str(tmp_path), SamplingSettings())


def test_curves_step_zero_reuses_the_eval_output_of_the_start_model(tiny_model_dir, shared_data, tmp_path, monkeypatch):
    """The pipeline evaluates each SFT model, then draws it again at step 0 of its GRPO curve: --base-cache-dirs
    serves step 0 from that eval's samples, so only the GRPO checkpoints are sampled."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    common = ["--k", "2", "--limit", "2", "--data-dir", str(shared_data), "--bootstrap", "100", *FAST]
    eval_dir = tmp_path / "sft-eval"
    assert evaluate.main(["--model", str(tiny_model_dir), "--benchmarks", "gsm8k", "--output-dir", str(eval_dir), *common]) == 0
    eval_rows = read_jsonl(eval_dir / "gsm8k" / "samples.jsonl")
    run = tmp_path / "grpo"
    AutoModelForCausalLM.from_pretrained(tiny_model_dir).save_pretrained(run / "checkpoint-4")
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(run / "checkpoint-4")

    sampled = []
    original = curves.build_sampler
    monkeypatch.setattr(curves, "build_sampler", lambda backend, model, settings: sampled.append(model) or
                        original(backend, model, settings))
    argv = [str(run), "--benchmark", "gsm8k", "--base-models", str(tiny_model_dir), "--base-cache-dirs",
            str(eval_dir), "--output-dir", str(tmp_path / "curves"), *common]
    assert curves.main(argv) == 0
    assert sampled == [str(run / "checkpoint-4")]  # step 0 came from the eval's cache
    assert read_jsonl(eval_dir / "gsm8k" / "samples.jsonl") == eval_rows  # and the cache was only read
    with open(tmp_path / "curves" / "curves.csv") as f:
        assert [r["step"] for r in csv.DictReader(f)] == ["0", "4"]

    # settings that differ from the eval's are refused by the cache, not silently mixed
    other = [a if a != "8" else "9" for a in argv]  # --max-new-tokens 9
    assert curves.main(other) == 1
    assert curves.main(argv[:-len(common)] + ["--base-cache-dirs", "a,b"] + common) == 2
