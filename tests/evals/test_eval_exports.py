"""`profit-rl eval` on the IFEval reference's own response format, lm-eval's own files, TensorBoard logging."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from profit_rl.evals.evaluate import main as eval_main
from profit_rl.evals.export import log_scalars, run_step, training_run_dir
from profit_rl.evals.ifeval.scoring import METRIC_NAMES

from conftest import REPO  # noqa: E402  (the repository root, defined once)
GPT4_FIXTURE = REPO / "tests" / "fixtures" / "ifeval_gpt4_reference.jsonl"


def read_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


@pytest.fixture(scope="module")
def reference_format_responses(shared_data, tmp_path_factory) -> Path:
    """One {"prompt", "response"} row per IFEval prompt: the published GPT-4 responses where the fixture has them,
    varied made-up ones elsewhere, plus a repeated prompt whose later row must win (as in the reference)."""
    prompts = [json.loads(line)["prompt"] for line in (shared_data / "ifeval" / "input_data.jsonl").open()]
    gpt4 = {row["prompt"]: row["response"] for row in map(json.loads, GPT4_FIXTURE.open())}
    made_up = ["A short answer, with a comma.", "ALL CAPITALS HERE", "<<Title>>\n\nFirst paragraph.\n\n***\n\nSecond.",
               "* one\n* two\n* three", "Yes. No. Maybe? Sure!", ""]
    rows = [{"prompt": p, "response": gpt4.get(p, made_up[i % len(made_up)])} for i, p in enumerate(prompts)]
    rows.insert(3, {"prompt": prompts[10], "response": "an earlier response that a later row replaces"})
    path = tmp_path_factory.mktemp("ifeval") / "responses.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def scored_run(reference_format_responses, shared_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("eval-ifeval")
    assert eval_main(["--benchmarks", "ifeval", "--responses", str(reference_format_responses),
                      "--data_dir", str(shared_data), "--output_dir", str(out)]) == 0  # snake_case, as TRL's CLIs
    return out


@pytest.mark.slow
def test_eval_responses_in_the_reference_format_give_the_reference_metrics(scored_run, reference_format_responses,
                                                                           shared_data, tmp_path):
    reference = tmp_path / "reference.json"
    done = subprocess.run([sys.executable, "-m", "profit_rl.evals.ifeval", "--responses",
                           str(reference_format_responses), "--data-dir", str(shared_data), "--output", str(reference)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    expected = json.loads(reference.read_text())
    ours = json.loads((scored_run / "ifeval" / "results.json").read_text())
    assert ours["n_problems"] == expected["num_prompts"] == 541 and ours["k"] == 1
    assert ours["own_metrics"] == {name: expected[name] for name in METRIC_NAMES}  # exactly equal, all four
    assert 0 < expected["prompt_level_strict_acc"] < expected["inst_level_loose_acc"] < 1  # a file that tells apart
    assert ours["avg_at_k"] == expected["prompt_level_strict_acc"]
    table = (scored_run / "results.md").read_text()
    assert f"inst_level_loose_acc {100 * expected['inst_level_loose_acc']:.1f}" in table


def test_a_reference_row_with_an_unknown_prompt_names_file_line_and_field(shared_data, tmp_path, capsys):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"prompt": "not an IFEval prompt", "response": "x"}) + "\n")
    assert eval_main(["--benchmarks", "ifeval", "--responses", str(path), "--data-dir", str(shared_data),
                      "--output-dir", str(tmp_path / "out")]) == 1
    assert f"{path}, line 1, field 'prompt': expected the exact text of a prompt of ifeval" in capsys.readouterr().err


# lm-evaluation-harness 0.4.13's schema, from its source (lm-eval is not a test dependency: it pulls ~60 packages and
# changes python-dateutil). The keys of lm_eval/result_schema.py's EvalResults that its EvaluationTracker writes for a
# generate_until run (less the optional groups, pretty_env_info, lm_eval_version and tokenizer fields); SampleResult's
# fixed keys; the TaskConfig keys its W&B logger and scripts/zeno_visualize.py read; and the naming rules of
# lm_eval.utils (get_results_filenames, get_sample_results_filenames, get_file_task_name, get_file_datetime,
# sanitize_model_name).
LM_EVAL_RESULTS_KEYS = {
    "results", "group_subtasks", "configs", "versions", "n-shot", "higher_is_better", "n-samples", "config",
    "git_hash", "date", "transformers_version", "upper_git_hash", "task_hashes", "model_source", "model_name",
    "model_name_sanitized", "system_instruction", "system_instruction_sha", "fewshot_as_multiturn", "chat_template",
    "chat_template_sha", "total_evaluation_time_seconds",
}
LM_EVAL_SAMPLE_KEYS = {"doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "filter", "metrics",
                       "doc_hash", "prompt_hash", "target_hash"}
LM_EVAL_CONFIG_KEYS = {"task", "output_type", "metric_list", "num_fewshot", "filter_list", "generation_kwargs", "repeats"}


def lm_eval_task_name(filename: str) -> str:  # lm_eval.utils.get_file_task_name
    return filename[filename.find("_") + 1: filename.rfind("_")]


def lm_eval_datetime(filename: str) -> str:  # lm_eval.utils.get_file_datetime
    return filename[filename.rfind("_") + 1:].replace(".jsonl", "")


@pytest.fixture(scope="module")
def gsm8k_run(shared_data, tmp_path_factory) -> Path:
    """gsm8k scored from responses, twice (a rerun): per problem one right and one wrong completion."""
    from profit_rl.evals.benchmarks import get_benchmark

    problems = get_benchmark("gsm8k").load(shared_data)[:3]
    root = tmp_path_factory.mktemp("lm-eval")
    path = root / "completions.jsonl"
    path.write_text("".join(json.dumps({"id": p.id, "completions": [f"\\boxed{{{p.gold}}}", "#### -1"]}) + "\n"
                            for p in problems))
    here = os.getcwd()
    os.chdir(root)  # the file named as a user names it: lm-eval names the folder after the name as given
    try:
        for _ in range(2):
            assert eval_main(["--benchmarks", "gsm8k", "--responses", "completions.jsonl", "--data-dir",
                              str(shared_data), "--limit", "3", "--output-dir", "out", "--export", "lm-eval"]) == 0
    finally:
        os.chdir(here)
    return root / "out"


def test_lm_eval_export_is_laid_out_and_keyed_as_lm_eval_writes_it(gsm8k_run, tmp_path):
    model_dirs = [d for d in gsm8k_run.rglob("*") if d.is_dir() and any(d.glob("results_*.json"))]
    assert model_dirs == [gsm8k_run / "completions.jsonl"]  # <output>/<model_name_sanitized>/, as zeno discovers it
    files = sorted(f"{model_dirs[0].name}/{p.name}" for p in model_dirs[0].iterdir())
    results_files = [f for f in files if "/results_" in f and ".json" in f]
    sample_files = [f for f in files if "/samples_" in f and ".json" in f]
    assert len(results_files) == 2 and len(sample_files) == 2  # a rerun adds a timestamped pair, as lm-eval does
    latest = max(results_files, key=lm_eval_datetime)
    document = json.loads((gsm8k_run / latest).read_text())
    assert LM_EVAL_RESULTS_KEYS <= set(document) and document["model_name_sanitized"] == "completions.jsonl"
    assert float(document["total_evaluation_time_seconds"]) >= 0 and document["end_time"] >= document["start_time"]
    import transformers

    assert document["config"]["versions"]["transformers"] == transformers.__version__
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert document["config"]["git_hash"] == document["git_hash"] == head
    task = document["results"]["gsm8k"]
    assert task["alias"] == "GSM8K" and task["avg@2,none"] == 0.5 and task["pass@2,none"] == 1.0
    assert task["avg@2_stderr,none"] == 0.0 and task["pass@1,none"] == 0.5 and task["sample_len"] == 3
    assert document["n-shot"] == {"gsm8k": 0} and document["group_subtasks"] == {"gsm8k": []}
    assert document["n-samples"]["gsm8k"] == {"original": 3, "effective": 3}
    config = document["configs"]["gsm8k"]
    assert LM_EVAL_CONFIG_KEYS <= set(config) and config["output_type"] == "generate_until" and config["repeats"] == 2
    assert [m["metric"] for m in config["metric_list"]] == ["avg@2", "pass@2", "pass@1"]
    assert config["filter_list"][0]["name"] == "none"
    assert (gsm8k_run / config["metadata"]["profit_rl_samples"]).is_file()  # relative to --output-dir
    # the latest samples file of the task, found as zeno_visualize finds it
    samples = max((f for f in sample_files if lm_eval_task_name(Path(f).name) == "gsm8k"), key=lm_eval_datetime)
    assert lm_eval_datetime(samples) == lm_eval_datetime(latest).removesuffix(".json")  # one run, one stamp
    rows = [json.loads(line) for line in (gsm8k_run / samples).read_text().splitlines()]
    assert len(rows) == 3 and all(LM_EVAL_SAMPLE_KEYS <= set(row) for row in rows)
    first = rows[0]
    assert first["doc_id"] == 0 and first["filter"] == "none" and first["metrics"] == ["avg@2", "pass@2", "pass@1"]
    assert first["resps"] == first["filtered_resps"] and len(first["resps"][0]) == 2 and first["scores"] == [1.0, 0.0]
    assert "\\boxed{}" in first["arguments"]["gen_args_0"]["arg_0"] and first["target"] == first["doc"]["gold"]
    assert all(row["avg@2"] == 0.5 and row["pass@2"] == 1.0 for row in rows)  # zeno and W&B read x[metric]
    import hashlib

    joined = "".join(r["doc_hash"] + r["prompt_hash"] + r["target_hash"] for r in rows)
    assert document["task_hashes"]["gsm8k"] == hashlib.sha256(joined.encode()).hexdigest()
    assert first["prompt_hash"] == hashlib.sha256(first["arguments"]["gen_args_0"]["arg_0"].encode()).hexdigest()


def test_export_none_writes_no_lm_eval_files_and_the_terminal_is_not_markdown_escaped(shared_data, tmp_path, capsys):
    from profit_rl.evals.benchmarks import get_benchmark

    problem = get_benchmark("gsm8k").load(shared_data)[0]
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"id": problem.id, "completion": f"\\boxed{{{problem.gold}}}"}) + "\n")
    assert eval_main(["--benchmarks", "gsm8k", "--responses", str(path), "--data-dir", str(shared_data),
                      "--limit", "1", "--output-dir", str(tmp_path / "out"), "--export", "none"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["gsm8k", "results.json", "results.md"]
    printed = capsys.readouterr().out
    assert "answers in \\boxed{}" in printed and "\\{" not in printed  # the terminal reads plain text
    assert "answers in \\\\boxed\\{\\}" in (tmp_path / "out" / "results.md").read_text()  # the file stays markdown


def test_eval_numbers_reach_tensorboard(shared_data, tmp_path):
    from profit_rl.evals.benchmarks import get_benchmark

    problems = get_benchmark("gsm8k").load(shared_data)[:3]
    path = tmp_path / "r.jsonl"  # each problem: one right and one wrong completion
    path.write_text("".join(json.dumps({"id": p.id, "completions": [f"#### {p.gold}", "#### -1"]}) + "\n"
                            for p in problems))
    logdir = tmp_path / "tb"
    assert eval_main(["--benchmarks", "gsm8k", "--responses", str(path), "--data-dir", str(shared_data), "--limit", "3",
                      "--output-dir", str(tmp_path / "out"), "--logging-dir", str(logdir)]) == 0
    scalars = read_scalars(logdir)
    assert scalars["eval/gsm8k/avg@2"] == [(0, pytest.approx(0.5))] and scalars["eval/gsm8k/pass@2"] == [(0, 1.0)]


def test_a_training_runs_folder_and_step_are_found(tmp_path):
    run = tmp_path / "grpo"
    (run / "runs" / "Jan01_host").mkdir(parents=True)
    (run / "checkpoint-20").mkdir()
    (run / "checkpoint-40").mkdir()
    assert training_run_dir(run) == run and training_run_dir(run / "checkpoint-20") == run
    assert training_run_dir(tmp_path) is None and training_run_dir(tmp_path / "checkpoint-3") is None
    assert run_step(run / "checkpoint-20") == 20 and run_step(run) == 40 and run_step(tmp_path) == 0
    (run / "trainer_state.json").write_text(json.dumps({"global_step": 45}))
    assert run_step(run) == 45


def test_curves_go_to_each_runs_tensorboard_folder(tmp_path):
    from profit_rl.evals.curves import log_curves

    with_tb, without = tmp_path / "profit" / "grpo", tmp_path / "sft" / "grpo"
    (with_tb / "runs").mkdir(parents=True)
    without.mkdir(parents=True)
    rows = [{"run": label, "step": step, "benchmark": "math500", "k": 4, "avg_at_k": value, "pass_at_k": 2 * value}
            for label in ("profit", "sft") for step, value in ((0, 0.1), (20, 0.25), (40, 0.3))]
    written = log_curves(rows, [with_tb, without], ["profit", "sft"], None)
    assert written == [with_tb / "runs" / "profit-rl-eval"]
    scalars = read_scalars(written[0])
    assert scalars["eval/math500/avg@4"] == [(0, pytest.approx(0.1)), (20, 0.25), (40, pytest.approx(0.3))]
    assert [v for _, v in scalars["eval/math500/pass@4"]] == pytest.approx([0.2, 0.5, 0.6])
    assert log_curves(rows, [with_tb, without], ["profit", "sft"], str(tmp_path / "tb"))[1] == tmp_path / "tb" / "sft"


def test_log_scalars_writes_what_it_is_given(tmp_path):
    log_scalars(tmp_path, [(3, {"eval/x/avg@4": 0.5}), (7, {"eval/x/avg@4": 0.75})])
    assert read_scalars(tmp_path)["eval/x/avg@4"] == [(3, 0.5), (7, 0.75)]
