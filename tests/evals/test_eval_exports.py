"""`profit-rl eval` on the IFEval reference's own response format, the lm-eval-style export, TensorBoard logging."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from profit_rl.evals.cli import main as eval_main
from profit_rl.evals.export import LM_EVAL_FILE, log_scalars, run_step, training_run_dir
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


@pytest.mark.slow
def test_lm_eval_export_has_results_by_task_and_metric_and_a_config_block(scored_run):
    exported = json.loads((scored_run / LM_EVAL_FILE).read_text())
    ours = json.loads((scored_run / "ifeval" / "results.json").read_text())
    task = exported["results"]["ifeval"]
    assert task["alias"] == "IFEval" and task["avg@1,none"] == ours["avg_at_k"]
    assert task["prompt_level_strict_acc,none"] == ours["own_metrics"]["prompt_level_strict_acc"]
    values = [p["avg"] for p in ours["per_problem"].values()]
    mean = sum(values) / len(values)
    expected_se = (sum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values)) ** 0.5
    assert task["avg@1_stderr,none"] == pytest.approx(expected_se)
    assert exported["n-samples"]["ifeval"] == {"original": 541, "effective": 541}
    assert exported["higher_is_better"]["ifeval"]["avg@1"] is True
    config = exported["config"]
    import transformers

    assert config["versions"]["transformers"] == transformers.__version__ and "trl" in config["versions"]
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert config["git_hash"] == exported["git_hash"] == head


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
