"""Bad input, through the commands as a user types them: every failure exits non-zero with a message naming the file,
the line and the field (issue 14). The next bad input found belongs here, next to its kind.

Sections: data files (one reader, one error), model paths, arguments, shared output folders, markdown, names and paths.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from profit_rl.evals import evaluate as eval_cli
from profit_rl.evals import compare as compare_cli
from profit_rl.evals import curves as curves_cli
from profit_rl.core.io import DataError, read_rows
from profit_rl.core.model_folders import check_model_path
from profit_rl import cli as profit_cli
from profit_rl.inspect import command as inspect_cli
from profit_rl.pipeline import runner as pipeline_cli

from conftest import REPO  # noqa: E402  (the repository root, defined once)
FAST = ["--max-new-tokens", "4", "--batch-size", "4", "--bootstrap", "50"]
SFT_ROW = {"prompt": "Add 2 and 3.", "completion": "5"}
RL_ROW = {"problem": "Compute 2 + 3.", "answer": "5"}
TEST_ROWS = [{"id": f"p{i}", "problem": f"Compute {i} + 1.", "answer": str(i + 1)} for i in range(4)]


def write_lines(path: Path, lines) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join((line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n"
                              for line in lines))
    return path


def embedded_data(root: Path, rows=TEST_ROWS) -> Path:
    """A --data-dir for the `embedded` benchmark (test.jsonl: id, problem, answer)."""
    write_lines(root / "test.jsonl", rows)
    return root


def run_cli(main, argv, capsys) -> tuple[int, str]:
    """(exit status, stderr) of a command's main, argparse's exits included."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err


def sft(model, data, out, capsys, *extra):
    argv = ["sft", "--model_name_or_path", str(model), "--dataset_name", str(data), "--output_dir", str(out),
            "--use_cpu", "true", "--bf16", "false", "--report_to", "none", "--max_steps", "1", *extra]
    return run_cli(profit_cli.main, argv, capsys)


def grpo(model, data, out, capsys):
    argv = ["grpo", "--model_name_or_path", str(model), "--dataset_name", str(data), "--output_dir", str(out),
            "--decontaminate_against", "none", "--use_cpu", "true", "--bf16", "false", "--report_to", "none",
            "--max_steps", "1", "--num_generations", "2", "--per_device_train_batch_size", "2"]
    return run_cli(profit_cli.main, argv, capsys)


def evaluate(model, data_dir, out, capsys, *extra):
    argv = ["eval", "--model", str(model), "--benchmarks", "embedded", "--data-dir", str(data_dir),
            "--output-dir", str(out), "--k", "1", "--limit", "2", *FAST, *extra]
    return run_cli(profit_cli.main, argv, capsys)


def score_responses(responses, data_dir, out, capsys, *extra):
    argv = ["eval", "--responses", str(responses), "--benchmarks", "embedded", "--data-dir", str(data_dir),
            "--output-dir", str(out), "--bootstrap", "50", *extra]
    return run_cli(profit_cli.main, argv, capsys)


# ---------------------------------------------------------------------------------------------------------------------
# Data files: one reader, one error (file, 1-based line, field, expected, found)


@pytest.mark.parametrize("bad, line, words", [
    (b'{"prompt": "a", "completion": ', 10, "not valid JSON"),
    (b"prompt,completion", 10, "found CSV-like text"),
    (b"PAR1\x15\x04\x15\x80\x01", 1, "found Parquet bytes"),
])
def test_sft_bad_line_names_the_file_and_its_line(tiny_model_dir, tmp_path, capsys, bad, line, words):
    """Issue 14.1: a malformed line, CSV text or parquet bytes in a .jsonl (formerly DatasetGenerationError)."""
    lines = [bad] if line == 1 else [SFT_ROW] * (line - 1) + [bad]
    data = write_lines(tmp_path / "sft.jsonl", lines)
    code, err = sft(tiny_model_dir, data, tmp_path / "out", capsys)
    assert code == 1
    assert f"{data}, line {line}: expected " in err and words in err
    assert not (tmp_path / "out").exists()  # nothing left behind


@pytest.mark.parametrize("value, found", [(["a", "b"], "found list ['a', 'b']"), (7, "found int 7")])
def test_sft_alpaca_input_of_the_wrong_type(tiny_model_dir, tmp_path, capsys, value, found):
    """Issue 14.2: an Alpaca `input` that is a list or a number (formerly AttributeError: .strip)."""
    rows = [{"instruction": "Add.", "input": "2 3", "output": "5"},
            {"instruction": "Add.", "input": value, "output": "5"}]
    data = write_lines(tmp_path / "alpaca.jsonl", rows)
    code, err = sft(tiny_model_dir, data, tmp_path / "out", capsys)
    assert code == 1
    assert f"{data}, line 2, field 'input': expected a string, {found}" in err


@pytest.mark.parametrize("command", ["sft", "grpo", "eval", "responses"])
def test_a_byte_that_is_not_utf8_names_its_line(tiny_model_dir, tmp_path, capsys, command):
    """Issue 14.3: a non-UTF-8 byte in a data or responses file (formerly UnicodeDecodeError at position N)."""
    bad = b'{"x": "caf\xe9"}'
    column = bad.index(b"\xe9") + 1
    if command == "sft":
        data = write_lines(tmp_path / "sft.jsonl", [SFT_ROW, SFT_ROW, bad])
        code, err = sft(tiny_model_dir, data, tmp_path / "out", capsys)
    elif command == "grpo":
        data = write_lines(tmp_path / "rl.jsonl", [RL_ROW, RL_ROW, bad])
        code, err = grpo(tiny_model_dir, data, tmp_path / "out", capsys)
    elif command == "eval":
        data = write_lines(tmp_path / "data" / "test.jsonl", [*TEST_ROWS[:2], bad])
        code, err = evaluate(tiny_model_dir, data.parent, tmp_path / "out", capsys)
    else:
        rows = [{"id": "p0", "completion": "1"}, {"id": "p1", "completion": "2"}, bad]
        data = write_lines(tmp_path / "responses.jsonl", rows)
        code, err = score_responses(data, embedded_data(tmp_path / "data"), tmp_path / "out", capsys)
    assert code == 1
    assert f"{data}, line 3: not UTF-8 text: byte 0xe9 at column {column}" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["sft", "grpo", "eval", "responses"])
def test_an_empty_file_says_it_is_empty(tiny_model_dir, tmp_path, capsys, command):
    """Issue 14.4: empty files (formerly a bare StopIteration in SFT; 'no problems were scored' and an empty folder in
    eval)."""
    empty = tmp_path / "data" / ("test.jsonl" if command == "eval" else f"{command}.jsonl")
    empty.parent.mkdir()
    empty.write_text("\n" if command == "grpo" else "")
    if command == "sft":
        code, err = sft(tiny_model_dir, empty, tmp_path / "out", capsys)
    elif command == "grpo":
        code, err = grpo(tiny_model_dir, empty, tmp_path / "out", capsys)
    elif command == "eval":
        code, err = evaluate(tiny_model_dir, empty.parent, tmp_path / "out", capsys)
    else:
        code, err = score_responses(empty, embedded_data(tmp_path / "bench"), tmp_path / "out", capsys)
    assert code == 1
    assert f"{empty}: the file is empty" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("row, words", [
    ({"id": "q", "problem": ["What is", "1 + 1?"], "answer": "2"},
     "field 'problem': expected a non-empty string, found list"),
    ({"id": "q", "problem": "1 + 1?", "answer": {"value": 2}},
     "field 'answer': expected a non-empty string or a number, found dict"),
    ({"id": "p0", "problem": "1 + 1?", "answer": "2"}, "problem id 'p0' appears twice (first at line 1)"),
])
def test_benchmark_values_of_the_wrong_type_are_errors(tiny_model_dir, tmp_path, capsys, row, words):
    """Issue 14.6: a benchmark `problem` that is a list or an `answer` that is a dict (formerly scored stringified)."""
    data = embedded_data(tmp_path / "data", [TEST_ROWS[0], row])
    code, err = evaluate(tiny_model_dir, data, tmp_path / "out", capsys)
    assert code == 1
    assert f"{data / 'test.jsonl'}, line 2, {words}" in err or f"{data / 'test.jsonl'}, line 2: {words}" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("line, words", [
    (["p0", "1"], "line 2: expected a JSON object, found list ['p0', '1']"),
    ({"id": "p9", "completion": "1"}, "line 2, field 'id': expected a problem id of embedded"),
    ({"id": "p1", "completions": "1"}, "line 2, field 'completions': expected a non-empty list of strings, found str"),
    ({"id": "p1", "completion": 1}, "line 2, field 'completion': expected a string, found int 1"),
])
def test_responses_rows_of_the_wrong_shape_are_errors(tmp_path, capsys, line, words):
    """Issue 14.6: a --responses row that is a JSON array (formerly a crash), an unknown id, a wrong type."""
    responses = write_lines(tmp_path / "responses.jsonl", [{"id": "p0", "completion": "1"}, line])
    code, err = score_responses(responses, embedded_data(tmp_path / "data"), tmp_path / "out", capsys)
    assert code == 1 and f"{responses}, {words}" in err
    assert not (tmp_path / "out").exists()


def test_one_reader_for_every_format(tmp_path):
    """Issue 16.7: .jsonl, JSON-lines in a .json, a JSON list, .csv and .parquet read alike, numbered alike."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"problem": "a", "answer": "1"}, {"problem": "b", "answer": "2"}]
    write_lines(tmp_path / "x.jsonl", rows)
    write_lines(tmp_path / "lines.json", rows)
    (tmp_path / "list.json").write_text(json.dumps(rows))
    (tmp_path / "x.csv").write_text("problem,answer\na,1\nb,2\n")
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "x.parquet")
    for name, unit, numbers in [("x.jsonl", "line", [1, 2]), ("lines.json", "line", [1, 2]),
                                ("list.json", "row", [1, 2]), ("x.csv", "line", [2, 3]), ("x.parquet", "row", [1, 2])]:
        read = read_rows(tmp_path / name)
        assert [dict(r) for r in read] == rows, name
        assert [r.number for r in read] == numbers and {r.unit for r in read} == {unit}, name
    (tmp_path / "short.csv").write_text("problem,answer\na,1\nb\n")
    with pytest.raises(DataError, match=r"short.csv, line 3: expected 2 comma-separated values"):
        read_rows(tmp_path / "short.csv")
    (tmp_path / "obj.json").write_text('{"problems": []}')
    with pytest.raises(DataError, match=r"obj.json: expected a JSON list of objects"):
        read_rows(tmp_path / "obj.json")
    with pytest.raises(DataError, match=r"missing.jsonl: no such file or folder"):
        read_rows(tmp_path / "missing.jsonl")


# ---------------------------------------------------------------------------------------------------------------------
# Model paths: checked before any hub lookup


@pytest.fixture
def not_a_model(tmp_path) -> Path:
    folder = tmp_path / "just-a-folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("no model here")
    return folder


@pytest.mark.parametrize("command", ["sft", "grpo", "eval", "inspect", "curves"])
def test_model_path_that_is_missing_or_not_a_model(tmp_path, capsys, not_a_model, command):
    """Issue 14.5: 'no such folder' (formerly "Repo id must be in the form...") and 'not a model folder' (formerly a
    sentencepiece error), in every command that loads a model."""
    data = embedded_data(tmp_path / "data")
    sft_data = write_lines(tmp_path / "sft.jsonl", [SFT_ROW] * 2)
    rl_data = write_lines(tmp_path / "rl.jsonl", [RL_ROW] * 2)
    runs = tmp_path / "grpo"
    (runs / "checkpoint-1").mkdir(parents=True)
    (runs / "checkpoint-1" / "config.json").write_text("{}")
    for model, words in [(tmp_path / "no" / "such" / "model", "no such folder"),
                         (not_a_model, "not a model folder: no config.json")]:
        out = tmp_path / f"out-{command}"
        if command == "sft":
            code, err = sft(model, sft_data, out, capsys)
        elif command == "grpo":
            code, err = grpo(model, rl_data, out, capsys)
        elif command == "eval":
            code, err = evaluate(model, data, out, capsys)
        elif command == "inspect":
            code, err = run_cli(inspect_cli.main, ["--model", str(model), "--data", str(sft_data),
                                                   "--output-dir", str(out)], capsys)
        else:
            code, err = run_cli(curves_cli.main, [str(runs), "--base-models", str(model), "--benchmark", "embedded",
                                                  "--data-dir", str(data), "--output-dir", str(out)], capsys)
        assert code == 1, (command, model)
        assert str(model) in err and words in err, err
        assert not out.exists()


@pytest.mark.parametrize("command", ["sft", "eval"])
def test_truncated_weights_name_the_file(tiny_model_dir, tmp_path, capsys, command):
    """Issue 23: a model.safetensors cut short (a killed copy) stops with its path named, not SafetensorError."""
    import shutil

    model = tmp_path / "cut-model"
    shutil.copytree(tiny_model_dir, model)
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    out = tmp_path / f"out-{command}"
    if command == "sft":
        code, err = sft(model, write_lines(tmp_path / "sft.jsonl", [SFT_ROW] * 2), out, capsys)
    else:
        code, err = evaluate(model, embedded_data(tmp_path / "data"), out, capsys)
    assert code == 1
    assert str(weights) in err and "truncated" in err, err
    assert "Traceback" not in err
    assert not out.exists()


def test_a_hub_id_still_goes_to_the_hub(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert check_model_path("Qwen/Qwen3-0.6B-Base") == "Qwen/Qwen3-0.6B-Base"
    assert check_model_path("gpt2") == "gpt2"
    with pytest.raises(FileNotFoundError, match="no such folder"):
        check_model_path("outputs/run/sft/..")  # a path, not a hub id


# ---------------------------------------------------------------------------------------------------------------------
# Arguments


@pytest.mark.parametrize("flag, value", [("--k", "0"), ("--k", "-2"), ("--limit", "0"), ("--limit", "-1")])
def test_k_and_limit_are_checked_when_parsed(tmp_path, capsys, flag, value):
    """Issue 14.7: --k 0 ran with k = 8 (k = 1 with --responses), --k -2 crashed, --limit -1 dropped the last problem,
    --limit 0 crashed; each crash left an empty folder."""
    responses = write_lines(tmp_path / "r.jsonl", [{"id": "p0", "completion": "1"}])
    data, out = embedded_data(tmp_path / "data"), str(tmp_path / "out")
    commands = [
        ["eval", "--model", "org/model", "--benchmarks", "embedded", "--data-dir", str(data), "--output-dir", out],
        ["eval", "--responses", str(responses), "--benchmarks", "embedded", "--data-dir", str(data),
         "--output-dir", out],
        ["curves", str(tmp_path), "--benchmark", "embedded", "--output-dir", out],
        ["pipeline", "--dry-run", "--output-root", out],
    ]
    for argv in commands:
        name = "--eval-limit" if argv[0] == "pipeline" and flag == "--limit" else flag
        code, err = run_cli(profit_cli.main, [*argv, name, value], capsys)
        assert code == 2, argv
        assert f"argument {name}: expected an integer >= 1, found {int(value)}" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "r.jsonl"]


def test_a_crash_after_the_output_folder_is_made_leaves_no_empty_folder(tiny_model_dir, tmp_path, capsys):
    """Issue 14.7: a model folder with a config but no weights fails in the sampler; the folder it made is removed."""
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text((tiny_model_dir / "config.json").read_text())
    with pytest.raises(OSError):
        evaluate(broken, embedded_data(tmp_path / "data"), tmp_path / "runs" / "out", capsys)
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------------------------------------------------------------
# Shared output folders: one run at a time, no duplicate samples


def child_env() -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def wait_for_lock(folder: Path, processes: list, timeout: float = 300) -> subprocess.Popen:
    """The process whose pid the folder's lock file names, once one of them has taken it."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            pid = json.loads((folder / ".lock").read_text()).get("pid")
        except (FileNotFoundError, json.JSONDecodeError):
            pid = None
        for process in processes:
            if process.pid == pid:
                return process
        assert any(p.poll() is None for p in processes), [p.communicate() for p in processes]
        time.sleep(0.005)
    raise AssertionError(f"{folder} was not locked by any of {[p.pid for p in processes]}")


def sample_keys(path: Path) -> list[tuple]:
    return [(r["problem_id"], r["sample_index"]) for r in map(json.loads, path.read_text().splitlines())]


def test_two_evals_on_one_folder_one_runs_the_other_is_refused(tiny_model_dir, tmp_path):
    """Issue 14.11: two evals started together on one folder. Whichever takes the lock first is paused while it holds it
    (so the race ends the same way on a slow machine); the other stops naming it; the holder finishes; the cache holds
    each sample once."""
    data, out = embedded_data(tmp_path / "data"), tmp_path / "out"
    argv = [sys.executable, "-m", "profit_rl.evals.evaluate", "--model", str(tiny_model_dir), "--benchmarks", "embedded",
            "--data-dir", str(data), "--output-dir", str(out), "--k", "3", "--limit", "4", *FAST]
    processes = [subprocess.Popen(argv, cwd=REPO, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(2)]
    try:
        holder = wait_for_lock(out, processes)
        os.kill(holder.pid, signal.SIGSTOP)  # it keeps the lock while the other one tries
        other = next(p for p in processes if p is not holder)
        _, refused = other.communicate(timeout=300)
        assert other.returncode == 1, refused
        assert f"{out} is in use by pid {holder.pid} on " in refused and "command: profit-rl eval" in refused
        os.kill(holder.pid, signal.SIGCONT)
        _, log = holder.communicate(timeout=300)
        assert holder.returncode == 0, log
    finally:
        for process in processes:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGCONT)
                process.kill()
                process.wait()
    keys = sample_keys(out / "embedded" / "samples.jsonl")
    assert len(keys) == len(set(keys)) == 3 * 4
    assert not (out / ".lock").exists()


def test_a_live_holder_is_named_and_a_dead_ones_lock_is_taken_over(tiny_model_dir, tmp_path, capsys, caplog):
    """Issue 14.11: eval, sft, grpo and the pipeline on a folder another process holds stop naming it; once that process
    is killed, the next run takes the lock over with a log line."""
    out = tmp_path / "outputs" / "embedded"  # also the embedded pipeline's root under --output-root outputs
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from profit_rl.core.folders import acquire;"
         " acquire(sys.argv[1], 'holder-cmd'); print('held', flush=True); time.sleep(600)", str(out)],
        cwd=REPO, env=child_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        data = embedded_data(tmp_path / "data")
        pipeline = ["--smoke", "--output-root", str(out.parent)]
        for code, err in (evaluate(tiny_model_dir, data, out, capsys),
                          sft(tiny_model_dir, write_lines(tmp_path / "sft.jsonl", [SFT_ROW]), out, capsys),
                          grpo(tiny_model_dir, write_lines(tmp_path / "rl.jsonl", [RL_ROW]), out, capsys),
                          run_cli(pipeline_cli.main, pipeline, capsys)):
            assert code == 1
            assert f"{out} is in use by pid {holder.pid} on " in err and "(command: holder-cmd; started 20" in err
    finally:
        holder.kill()
        holder.wait()
    with caplog.at_level("WARNING", logger="profit_rl.core.folders"):
        code, err = evaluate(tiny_model_dir, data, out, capsys)
    assert code == 0, err
    assert f"taking over the lock left by pid {holder.pid} on " in caplog.text and "no longer running" in caplog.text


def test_duplicate_keys_in_a_sample_cache_name_the_line(tiny_model_dir, tmp_path, capsys):
    """Issue 14.11: a cache holding a sample twice (two unlocked runs, or concatenated files) is refused, not loaded."""
    data, out = embedded_data(tmp_path / "data"), tmp_path / "out"
    assert evaluate(tiny_model_dir, data, out, capsys)[0] == 0
    samples = out / "embedded" / "samples.jsonl"
    lines = samples.read_text().splitlines()
    samples.write_text("\n".join([*lines, lines[0]]) + "\n")
    code, err = evaluate(tiny_model_dir, data, out, capsys)
    assert code == 1
    assert (f"{samples}, line {len(lines) + 1}, field 'sample_index': sample 0 of problem 'p0' appears twice "
            "(first at line 1)") in err


# ---------------------------------------------------------------------------------------------------------------------
# Markdown outputs: user strings escaped


def table_rows(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("|")]


def test_labels_and_model_names_cannot_break_the_markdown(tiny_model_dir, tmp_path, capsys):
    """Issue 14.12: a --labels value with `|` and a newline added a cell and a heading to compare.md; a model folder
    name with a backtick and a newline broke results.md."""
    model = tmp_path / "tiny`\n# model"
    shutil.copytree(tiny_model_dir, model)  # a copy: a link would resolve to the fixture's own name
    data = embedded_data(tmp_path / "data")
    runs = [tmp_path / "a", tmp_path / "b"]
    for run in runs:
        assert evaluate(model, data, run, capsys)[0] == 0
    results = (runs[0] / "results.md").read_text()
    assert not any(line.startswith("#") for line in results.splitlines())
    first, _, model_line = results.splitlines()[:3]  # the protocol line comes first
    assert first.startswith("Protocol: `boxed`")
    assert model_line.startswith(f"Model: ``{model.resolve()}``".replace("\n", " "))  # one code span
    out = tmp_path / "compare.md"
    code, err = run_cli(compare_cli.main, [str(runs[0]), str(runs[1]), "--labels", "base|x\n# heading,sft",
                                           "--output", str(out), "--bootstrap", "50"], capsys)
    assert code == 0, err
    text = out.read_text()
    assert not any(line.startswith("#") for line in text.splitlines())
    rows = table_rows(text)
    assert len(rows) == 5 and len({row.replace("\\|", "").count("|") for row in rows}) == 1  # every row, same cells
    assert "A: base\\|x \\# heading" in text


def test_report_escapes_curve_labels(tmp_path):
    from profit_rl.pipeline.report import write_report

    root = tmp_path / "model"
    (root / "curves").mkdir(parents=True)
    (root / "curves" / "curves.csv").write_text("run,step,avg_at_k,pass_at_k\n\"a|b\n# c\",1,0.5,0.5\n")
    (root / "curves" / "curves.png").write_bytes(b"png")
    text = write_report(root, ["profit", "sft"]).read_text()
    assert "| a\\|b \\# c | 1 | 50.0 | 50.0 |" in text


def test_curve_legend_labels_are_literal():
    assert curves_cli.legend_label("$x$") == r"\$x\$"  # not mathtext
    assert curves_cli.legend_label("_hidden") == " _hidden"  # matplotlib hides labels starting with "_"


# ---------------------------------------------------------------------------------------------------------------------
# Names and paths stay inside their roots


def test_model_with_dotdot_writes_inside_outputs_eval(tiny_model_dir, tmp_path, capsys, monkeypatch):
    """Issue 14.13: --model some/sub/.. without --output-dir wrote to outputs/eval/.. (that is, outputs/)."""
    monkeypatch.chdir(tmp_path)
    tiny = shutil.copytree(tiny_model_dir, tmp_path / "models" / "tiny")
    (tiny / "sub").mkdir()
    model = f"{tiny}/sub/.."
    argv = ["eval", "--model", model, "--benchmarks", "embedded", "--data-dir", str(embedded_data(tmp_path / "data")),
            "--k", "1", "--limit", "1", *FAST]
    code, err = run_cli(profit_cli.main, argv, capsys)
    assert code == 0, err
    assert (tmp_path / "outputs" / "eval" / "tiny" / "results.json").is_file()
    assert not (tmp_path / "outputs" / "results.json").exists()
    code, err = run_cli(profit_cli.main, ["eval", "--model", "no/such/..", *argv[3:]], capsys)
    assert code == 1 and "--model no/such/..: no such folder" in err


def test_curves_label_dotdot_is_refused(tiny_model_dir, tmp_path, capsys):
    """Issue 14.13: a curves --labels .. put per-checkpoint samples outside --cache-dir."""
    run = tmp_path / "grpo"
    run.mkdir()
    (run / "checkpoint-1").symlink_to(tiny_model_dir, target_is_directory=True)
    argv = [str(run), "--labels", "..", "--cache-dir", str(tmp_path / "cache"), "--benchmark", "embedded",
            "--data-dir", str(embedded_data(tmp_path / "data")), "--output-dir", str(tmp_path / "curves"), "--k", "1"]
    code, err = run_cli(curves_cli.main, argv, capsys)
    assert code == 1 and "--labels entry '..': cannot name a folder" in err
    assert not (tmp_path / "cache").exists() and not (tmp_path / "curves").exists()


@pytest.mark.parametrize("argv, words", [
    (["--model", "org/.."], "--model org/..: no such folder"),
    (["--methods", "profit ../x"], "--methods entry '../x': expected a plain name"),
    (["--model", "../recipes/Qwen3-0.6B-Base"], "--model ../recipes/Qwen3-0.6B-Base: no such folder"),
])
def test_pipeline_names_with_dotdot_are_refused(tmp_path, capsys, monkeypatch, argv, words):
    """Issue 14.13: a pipeline --model org/.. wrote to outputs/..; a --methods entry with ../ left outputs/<model>."""
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(pipeline_cli.main, [*argv, "--dry-run", "--output-root", str(tmp_path / "outputs")], capsys)
    assert code == 1 and words in err, err
    assert not (tmp_path / "outputs").exists()
