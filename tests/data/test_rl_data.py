"""profit_rl.data.rl: loading MATH-style RL data, row errors, decontamination, prompts."""

import json

import pytest

from profit_rl.core.io import DataError
from profit_rl.data.rl import (
    decontaminate,
    load_math_rows,
    load_reference_problems,
    load_rl_dataset,
    normalize_problem,
)
from profit_rl.rewards.answers import BOXED_INSTRUCTION, math_user_message


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_fields_and_gold_forms(tmp_path):
    path = write_jsonl(
        tmp_path / "train.jsonl",
        [
            {"problem": "p1", "answer": "025"},
            {"question": "p2", "answer": "so <<2*3=6>>6\n#### 6"},  # GSM8K layout
            {"problem": "p3", "solution": "Thus $x = \\boxed{\\dfrac{1}{2}}$."},  # MATH layout without `answer`
            {"problem": "p4", "answer": 12},  # numbers are accepted as gold
        ],
    )
    rows = load_math_rows(str(path))
    assert [(r.problem, r.answer, r.row) for r in rows] == [("p1", "25", 1), ("p2", "6", 2), ("p3", "\\frac{1}{2}", 3), ("p4", "12", 4)]
    assert load_math_rows(str(tmp_path), split="train")[0].source == str(path)  # a folder: <split>.jsonl


@pytest.mark.parametrize(
    "bad_line, row, field_name, message",
    [
        ('{"answer": "1"}', 2, "problem or question or prompt", "the field is missing"),
        ('{"problem": "p"}', 2, "answer or solution", "the field is missing"),
        ('{"problem": 3, "answer": "1"}', 2, "problem", "non-empty string, found int 3"),
        ('{"problem": "p", "answer": ["1"]}', 2, "answer", "expected a gold answer .* found list"),
        ('{"problem": "p", "answer": "1"', 2, None, "not valid JSON"),
        ('["p", "1"]', 2, None, "expected a JSON object, found list"),
    ],
)
def test_bad_rows_name_file_row_field(tmp_path, bad_line, row, field_name, message):
    path = write_jsonl(tmp_path / "bad.jsonl", ['{"problem": "ok", "answer": "1"}', bad_line])
    with pytest.raises(DataError, match=message) as info:
        load_math_rows(str(path))
    err = info.value
    assert (err.source, err.row, err.field) == (str(path), row, field_name)
    assert str(path) in str(err) and f"line {row}" in str(err)


def test_empty_gold_is_dropped_loudly_or_an_error(tmp_path, caplog):
    path = write_jsonl(tmp_path / "g.jsonl", [{"problem": "a", "answer": "1"}, {"problem": "b", "solution": "so $\\boxed{}$"}])
    rows, report = load_rl_dataset(str(path), decontaminate_against=[])
    assert len(rows) == 1 and report.bad_gold == [2] and report.loaded == 2 and report.kept == 1
    assert "line 2" in caplog.text and "solution" in caplog.text
    with pytest.raises(DataError, match="line 2, field 'solution'"):
        load_math_rows(str(path), bad_gold="error")


def test_decontamination_and_prompts(tmp_path):
    train = write_jsonl(
        tmp_path / "train.jsonl",
        [{"problem": "What is $\\dfrac{1}{2}+1$?", "answer": "1.5"}, {"problem": "Compute 2+2.", "answer": "4"}],
    )
    test = write_jsonl(tmp_path / "test.jsonl", [{"problem": "what is  \\frac{1}{2} + 1 ?", "answer": "1.5"}])
    rows, report = load_rl_dataset(str(train), decontaminate_against=[str(test)])
    assert report.decontaminated == 1 and report.kept == 1
    assert rows == [{"prompt": [{"role": "user", "content": math_user_message("Compute 2+2.")}], "answer": "4"}]
    assert math_user_message("Compute 2+2.") == f"Compute 2+2.\n{BOXED_INSTRUCTION}"  # the one math prompt (evals, SFT)
    plain, _ = load_rl_dataset(str(train), decontaminate_against=[], prompt_format="plain", max_rows=1)
    assert plain[0]["prompt"].startswith("Problem: What is") and plain[0]["prompt"].endswith("Solution:")


def test_math_train_against_math500(shared_data):
    """The local MATH 12k split excludes MATH-500 by id; one problem is still a textual duplicate of a test one."""
    rows = load_math_rows(str(shared_data / "math_train12k" / "train.jsonl"))
    assert len(rows) == 12000 - 2  # two rows have an empty \boxed{} in the MATH source
    reference = load_reference_problems([str(shared_data / "math500" / "test.jsonl")])
    assert len(reference) == 500
    kept, dropped = decontaminate(rows, reference)
    assert dropped == 1 and len(kept) == len(rows) - 1
    assert normalize_problem("A $\\left( x \\right)$") == normalize_problem("a (x)")
