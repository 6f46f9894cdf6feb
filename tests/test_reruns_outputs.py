"""compare, curves and report never overwrite what another command finished, pair only comparable runs, and user
errors read as one line (issue 23 items 4-8, issue 27 item 6, issue 24's one error helper). Every test goes through
a command as a user types it.
"""

import errno
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from profit_rl import cli as profit_cli
from profit_rl.core import state

from conftest import REPO  # noqa: E402

FAST = ["--batch-size", "4", "--bootstrap", "50"]


def run_cli(argv, capsys) -> tuple[int, str]:
    """(exit status, stderr) of `profit-rl ARGV`, argparse's exits included."""
    try:
        code = profit_cli.main(argv)
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err


def write_rows(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def benchmark_dir(root: Path, answers=("2", "3", "4")) -> Path:
    """A --data-dir for the `embedded` benchmark: problems p0.. with the given answers."""
    return write_rows(root / "test.jsonl", [{"id": f"p{i}", "problem": f"Compute {i} + 1.", "answer": answer}
                                            for i, answer in enumerate(answers)]).parent


def scored_run(tmp_path: Path, name: str, data_dir: Path, capsys) -> Path:
    """An eval run made by scoring responses (no model): every problem answered "2"."""
    responses = write_rows(tmp_path / f"{name}.jsonl", [{"id": f"p{i}", "completion": "\\boxed{2}"} for i in range(3)])
    out = tmp_path / name
    code, err = run_cli(["eval", "--responses", str(responses), "--benchmarks", "embedded", "--data-dir",
                         str(data_dir), "--output-dir", str(out), "--bootstrap", "50"], capsys)
    assert code == 0, err
    return out


@pytest.fixture
def two_runs(tmp_path, capsys) -> tuple[Path, Path]:
    data = benchmark_dir(tmp_path / "data")
    return scored_run(tmp_path, "a", data, capsys), scored_run(tmp_path, "b", data, capsys)


# ---------------------------------------------------------------------------------------------------------------------
# 4. Nothing finished is overwritten


def test_compare_never_replaces_an_eval_runs_results(two_runs, capsys):
    a, b = two_runs
    before = {name: (a / name).read_bytes() for name in ("results.json", "results.md")}
    code, err = run_cli(["compare", str(b), str(a), "--output", str(a / "results.md"), "--bootstrap", "50"], capsys)
    assert code == 1 and "--force" in err and "results.json" in err and "Traceback" not in err, err
    assert {name: (a / name).read_bytes() for name in before} == before


def test_compare_output_json_is_refused_and_its_own_rerun_is_not(two_runs, tmp_path, capsys):
    a, b = two_runs
    other = tmp_path / "x.json"
    other.write_text('{"mine": 1}')
    code, err = run_cli(["compare", str(a), str(b), "--output", str(other), "--bootstrap", "50"], capsys)
    assert code == 2 and "name the markdown file" in err, err
    assert other.read_text() == '{"mine": 1}'
    table = tmp_path / "cmp.md"
    for _ in range(2):  # a rerun of the same comparison replaces its own output
        code, err = run_cli(["compare", str(a), str(b), "--output", str(table), "--bootstrap", "50"], capsys)
        assert code == 0, err
    assert json.loads(table.with_suffix(".json").read_text())["made_by"] == "profit-rl compare"
    # another comparison into the same file is refused without --force, done with it
    argv = ["compare", str(b), str(a), "--output", str(table), "--bootstrap", "50"]
    code, err = run_cli(argv, capsys)
    assert code == 1 and "--force" in err, err
    assert run_cli(argv + ["--force"], capsys)[0] == 0


@pytest.mark.skipif(not Path("/dev/shm").is_dir() or Path("/compare.md").exists() or Path("/curves").exists(),
                    reason="needs a second top-level folder, and no /compare.md or /curves already")
def test_runs_that_share_only_the_root_write_nothing_there(tmp_path, capsys):
    data = benchmark_dir(tmp_path / "data")
    a = scored_run(tmp_path, "a", data, capsys)
    elsewhere = Path("/dev/shm") / f"profit-rl-test-{os.getpid()}"
    try:
        b = scored_run(elsewhere, "b", data, capsys)
        code, err = run_cli(["compare", str(a), str(b), "--bootstrap", "50"], capsys)
        assert code == 2 and "--output" in err, err
        code, err = run_cli(["curves", str(a), str(b), "--benchmark", "embedded", "--data-dir", str(data)], capsys)
        assert code == 2 and "--output-dir" in err, err
    finally:
        shutil.rmtree(elsewhere, ignore_errors=True)
    assert not Path("/compare.md").exists() and not Path("/compare.json").exists() and not Path("/curves").exists()


def test_curves_refuse_an_output_folder_holding_other_runs_curves(tmp_path, capsys):
    out = tmp_path / "figure"
    out.mkdir()
    theirs = "run,run_dir,step\nother,/somewhere/else,1\n"
    (out / "curves.csv").write_text(theirs)
    code, err = run_cli(["curves", str(tmp_path / "run"), "--benchmark", "embedded", "--output-dir", str(out)], capsys)
    assert code == 1 and "curves of other runs" in err and "--force" in err, err
    assert (out / "curves.csv").read_text() == theirs


def test_report_keeps_a_file_it_did_not_write_and_quotes_its_commands(tmp_path, capsys):
    root = tmp_path / "out dir é" / "embedded"
    step = root / "profit" / "sft"
    step.mkdir(parents=True)
    argv = [sys.executable, "-m", "profit_rl.sft", "--output_dir", str(step), "--note", "it's $HOME"]
    (step / ".done.json").write_text(json.dumps({"argv": argv, "seconds": 1}))
    (root / "report.md").write_text("my notes\n")
    report = [sys.executable, "-m", "profit_rl.pipeline.report", str(root), "--methods", "profit"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(report, capture_output=True, text=True, env=env)
    assert done.returncode == 1 and "not a profit-rl report" in done.stderr and "Traceback" not in done.stderr
    assert (root / "report.md").read_text() == "my notes\n"
    (root / "report.md").unlink()
    done = subprocess.run(report, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    text = (root / "report.md").read_text()
    command = next(line for line in text.splitlines() if "profit_rl.sft" in line)
    assert shlex.split(command) == ["python", *argv[1:]]  # pasted into a shell, it is the command that ran


# ---------------------------------------------------------------------------------------------------------------------
# 5. Comparisons only of comparable runs


def test_compare_refuses_runs_on_other_benchmark_files_with_the_same_ids(tmp_path, capsys):
    a = scored_run(tmp_path, "a", benchmark_dir(tmp_path / "data-a", ("2", "3", "4")), capsys)
    b = scored_run(tmp_path, "b", benchmark_dir(tmp_path / "data-b", ("9", "9", "9")), capsys)
    code, err = run_cli(["compare", str(a), str(b), "--bootstrap", "50"], capsys)
    assert code == 1 and "benchmark files differ" in err and "--allow-mismatch" in err, err
    assert not (tmp_path / "compare.md").exists()


def test_compare_refuses_other_sampling_settings_and_budgets_naming_the_field(tiny_model_dir, tmp_path, capsys):
    data = benchmark_dir(tmp_path / "data")
    runs = []
    for name, temperature, tokens in (("hot", "0.7", "8"), ("greedy", "0", "4")):
        out = tmp_path / name
        code, err = run_cli(["eval", "--model", str(tiny_model_dir), "--benchmarks", "embedded", "--data-dir",
                             str(data), "--output-dir", str(out), "--k", "1", "--limit", "2", "--temperature",
                             temperature, "--max-new-tokens", tokens, *FAST], capsys)
        assert code == 0, err
        runs.append(str(out))
    code, err = run_cli(["compare", *runs, "--bootstrap", "50"], capsys)
    assert code == 1 and "temperature 0.7 (A) vs 0.0 (B)" in err and "max_new_tokens 8 (A) vs 4 (B)" in err, err
    code, err = run_cli(["compare", *runs, "--bootstrap", "50", "--allow-mismatch"], capsys)
    assert code == 0, err
    first = (tmp_path / "compare.md").read_text().splitlines()[0]
    assert first.startswith("**Not comparable:**") and "temperature" in first and "token budgets differ" in first


def model_of_another_shape(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest)
    config = json.loads((dest / "config.json").read_text())
    config["num_hidden_layers"] += 1
    (dest / "config.json").write_text(json.dumps(config))
    return dest


def test_curves_never_draw_two_base_models_as_one_line(tiny_model_dir, tmp_path, capsys):
    run = tmp_path / "grpo"
    shutil.copytree(tiny_model_dir, run / "checkpoint-1")
    model_of_another_shape(tiny_model_dir, run / "checkpoint-2")  # another model's run wrote into the folder
    data = benchmark_dir(tmp_path / "data")
    argv = ["curves", str(run), "--benchmark", "embedded", "--data-dir", str(data), "--k", "1", "--limit", "1",
            "--max-new-tokens", "2", "--output-dir", str(tmp_path / "figure"), *FAST]
    code, err = run_cli(argv, capsys)
    assert code == 1 and "different base models" in err and "num_hidden_layers" in err, err
    assert "checkpoint-1" in err and "checkpoint-2" in err
    assert not (tmp_path / "figure" / "curves.csv").exists()
    shutil.rmtree(run / "checkpoint-2")  # one model's checkpoints, but --base-models names another model
    other = model_of_another_shape(tiny_model_dir, tmp_path / "other")
    code, err = run_cli(argv + ["--base-models", str(other)], capsys)
    assert code == 1 and "different base models" in err, err


# ---------------------------------------------------------------------------------------------------------------------
# 6. Signals


def descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        for path in Path(f"/proc/{todo.pop()}/task").glob("*/children"):
            for child in map(int, path.read_text().split()):
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads process trees from /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_pipeline_stops_its_steps_and_leaves_a_rerunnable_folder(tmp_path, signum):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    runner = subprocess.Popen([sys.executable, "-m", "profit_rl.cli", "pipeline", "--model", "embedded", "--smoke",
                               "--output-root", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              env=env, text=True)
    children: set[int] = set()
    deadline = time.time() + 120
    while not children and time.time() < deadline:  # the first step (the embedded build) has started
        time.sleep(0.2)
        children = descendants(runner.pid)
    assert children, "the pipeline started no step"
    time.sleep(1)
    children |= descendants(runner.pid)
    runner.send_signal(signum)
    output, _ = runner.communicate(timeout=120)
    assert runner.returncode == 128 + signum, output
    assert "Rerun the same command" in output and "Traceback" not in output, output
    assert [pid for pid in children if alive(pid)] == []  # no step outlives the runner
    root = tmp_path / "embedded"
    assert not (root / ".lock").exists()
    assert not list(root.rglob(".done.json")) if root.exists() else True  # the stopped step is not marked done


# ---------------------------------------------------------------------------------------------------------------------
# 7. Inputs


def test_a_mistyped_local_path_is_no_such_folder_not_a_hub_id(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs" / "embedded").mkdir(parents=True)
    for argv in (["eval", "--model", "outputs/embeded", "--benchmarks", "embedded"],
                 ["sft", "--model_name_or_path", "outputs/embeded", "--dataset_name", "x.jsonl", "--output_dir",
                  "out", "--use_cpu", "true", "--report_to", "none"]):
        code, err = run_cli(argv, capsys)
        assert code == 1 and "outputs/embeded: no such folder" in err and "outputs/ is a folder here" in err, err
        assert "Traceback" not in err


def long_rows(n_long: int, n_short: int) -> list[dict]:
    long_prompt = " ".join(f"word{i}" for i in range(200))
    return ([{"prompt": long_prompt, "completion": "The answer is 5."}] * n_long
            + [{"prompt": "Add 2 and 3.", "completion": "The answer is 5."}] * n_short)


def sft_argv(model: Path, data: Path, out: Path, *extra) -> list[str]:
    return ["sft", "--model_name_or_path", str(model), "--dataset_name", str(data), "--output_dir", str(out),
            "--use_cpu", "true", "--bf16", "false", "--report_to", "none", "--max_steps", "1", "--max_length", "64",
            "--per_device_train_batch_size", "4", "--selection", "all", *extra]


def test_sft_stops_when_most_rows_lose_their_completion_to_max_length(tiny_model_dir, tmp_path, capsys):
    data = write_rows(tmp_path / "long.jsonl", long_rows(14, 2))
    code, err = run_cli(sft_argv(tiny_model_dir, data, tmp_path / "out"), capsys)
    assert code == 1 and "14 of 16 SFT rows lose their whole completion to --max_length 64" in err, err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_sft_counts_and_logs_truncated_rows_per_row(tiny_model_dir, tmp_path, capsys, caplog):
    data = write_rows(tmp_path / "mixed.jsonl", long_rows(8, 8))
    caplog.set_level("WARNING", logger="profit_rl.data.sft_rows")
    code, err = run_cli(sft_argv(tiny_model_dir, data, tmp_path / "out"), capsys)
    assert code == 0, err
    assert "8 of 16 SFT rows are longer than --max_length 64: 8 lose their whole completion" in caplog.text
    assert "selected row 1:" in caplog.text and "selected row 8:" in caplog.text and "row 9:" not in caplog.text


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path, capsys):
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 7)]  # 10^7 values
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    started = time.time()
    code, err = run_cli(["sft", "--config", str(bomb)], capsys)
    assert code == 2 and f"--config {bomb}" in err and "aliases" in err, err
    assert time.time() - started < 10


# ---------------------------------------------------------------------------------------------------------------------
# 8. Messages, not tracebacks (and issue 27: parser errors name the flag or the file)


@pytest.mark.parametrize("argv, words", [
    (["sft", "--config", "nope.yaml"], "profit-rl sft: --config nope.yaml: no such file"),
    (["grpo", "--config", "nope.yaml"], "profit-rl grpo: --config nope.yaml: no such file"),
    (["sft", "--config", str(REPO / "recipes/embedded/sft/profit.yaml"), "--tau", "1.5"],
     "profit-rl sft: --tau 1.5: tau must be in (0, 1), got 1.5"),
])
def test_parser_errors_are_one_line_naming_the_flag_or_file(argv, words, capsys):
    code, err = run_cli(argv, capsys)
    assert code == 2 and err.strip() == words, err
    with pytest.raises(Exception, match="nope.yaml|tau"):  # --debug: the traceback
        profit_cli.main(argv + ["--debug"])


@pytest.mark.parametrize("error, words", [
    (errno.ENOSPC, "no space left on the device (disk full)"),
    (errno.EROFS, "read-only file system"),
    (errno.EACCES, "permission denied"),
])
def test_disk_full_and_read_only_folders_are_one_line(two_runs, tmp_path, capsys, monkeypatch, error, words):
    a, b = two_runs

    def fail(path, data):
        raise OSError(error, os.strerror(error), str(path))

    monkeypatch.setattr(state, "write_bytes_atomic", fail)
    code, err = run_cli(["compare", str(a), str(b), "--output", str(tmp_path / "cmp.md"), "--bootstrap", "50"], capsys)
    assert code == 1 and words in err and str(tmp_path / "cmp.md") in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1


def test_a_model_without_chat_template_is_one_line(tiny_model_dir, tmp_path, capsys):
    model = tmp_path / "no-template"
    shutil.copytree(tiny_model_dir, model)
    for path in model.glob("*.jinja"):
        path.unlink()
    config = json.loads((model / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (model / "tokenizer_config.json").write_text(json.dumps(config))
    code, err = run_cli(["eval", "--model", str(model), "--benchmarks", "embedded", "--data-dir",
                         str(benchmark_dir(tmp_path / "data")), "--output-dir", str(tmp_path / "out"), "--k", "1",
                         "--max-new-tokens", "2", *FAST], capsys)
    assert code == 1 and "no chat template" in err and "--no-chat-template" in err and "Traceback" not in err, err
