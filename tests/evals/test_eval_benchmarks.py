"""Benchmark loaders and scorers: hand-written rows, the shared data files, the missing-data error.

GPQA rows here are made up (the GPQA authors ask that real questions are never put in public files); the real file
is only read at run time from ../shared/data, and no question text is printed.
"""

import json
from collections import Counter

import pytest

from profit_rl.evals.benchmarks import DataError, MissingDataError, Problem, get_benchmark
from profit_rl.evals.benchmarks.gpqa import choice_order, committed_letter
from profit_rl.core.io import Row


def score(name, gold, completion, **meta):
    bench = get_benchmark(name)
    problem = Problem(id="x", question="q", gold=gold, meta=meta)
    (extracted, value, error), = bench.score_many([(problem, completion)])
    assert error is None
    return extracted, value


@pytest.mark.parametrize("gold, completion, expected", [
    ("\\frac{1}{2}", "so the answer is \\boxed{0.5}", 1.0),
    ("\\frac{1}{2}", "first \\boxed{0.5} then, on reflection, \\boxed{\\frac{1}{3}}", 0.0),  # the LAST box counts
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "$\\boxed{(3, \\pi/2)}$", 1.0),
    ("10\\sqrt{2}", "\\boxed{10 \\sqrt 2}", 1.0),
    ("x^2+2x", "\\boxed{x(x+2)}", 1.0),
    ("5", "I give up", 0.0),
    ("5", "the answer is \\boxed{5", 0.0),  # a box cut off mid-answer is no answer
])
def test_math500_scorer(gold, completion, expected):
    assert score("math500", gold, completion)[1] == expected


@pytest.mark.parametrize("gold, completion, expected", [
    ("18", "She makes 9 * 2 = $18.\n#### 18", 1.0),
    ("70000", "The profit is \\boxed{70,000} dollars.", 1.0),
    ("70000", "The profit is $70,000.", 1.0),  # no box: the last number, as GSM8K's usual protocol
    ("3", "so 2 bolts. #### 2", 0.0),
])
def test_gsm8k_scorer(gold, completion, expected):
    assert score("gsm8k", gold, completion)[1] == expected


@pytest.mark.parametrize("gold, completion, expected", [
    ("25", "\\boxed{025}", 1.0),
    ("25", "\\boxed{25}", 1.0),
    ("204", "so 204 minutes: \\boxed{204}", 1.0),
    ("204", "\\boxed{240}", 0.0),
])
def test_aime_scorer(gold, completion, expected):
    assert score("aime24", gold, completion)[1] == expected


@pytest.mark.parametrize("completion, letter", [
    ("... so the answer is \\boxed{C}", "C"),
    ("\\boxed{(B)}", "B"),
    ("\\boxed{\\text{D}}", "D"),
    ("Reasoning about A and B.\nAnswer: D", "D"),
    ("The correct answer is (A).", "A"),
    ("**Answer:** B", "B"),
    ("Options A and C are wrong.\n(B)", None),  # a bare letter on the last line is not one of the committed forms
    ("It could be A. Or maybe B.", None),  # nothing commits: no answer, not a guess
    ("\\boxed{4.2 eV}", "C"),  # the boxed text of an option maps to its letter
])
def test_gpqa_letter_extraction(completion, letter):
    choices = ["1.0 eV", "2.5 eV", "4.2 eV", "7 eV"]
    assert committed_letter(completion, choices) == letter


def test_gpqa_shuffle_is_reproducible_and_balanced():
    bench = get_benchmark("gpqa")
    rows = [{"id": f"rec{i}", "question": "made-up question?", "correct_answer": "right",
             "incorrect_answer_1": "w1", "incorrect_answer_2": "w2", "incorrect_answer_3": "w3"} for i in range(400)]
    problems = [bench.to_problem(i, Row(r, "gpqa.jsonl", i + 1)) for i, r in enumerate(rows)]
    again = [bench.to_problem(i, Row(r, "gpqa.jsonl", i + 1)) for i, r in enumerate(rows)]
    assert [p.meta["choices"] for p in problems] == [p.meta["choices"] for p in again]
    for p in problems:
        assert p.meta["choices"]["ABCD".index(p.gold)] == "right"
    counts = Counter(p.gold for p in problems)
    assert set(counts) == set("ABCD") and min(counts.values()) > 60  # roughly uniform over 400 questions
    assert choice_order("rec1") == choice_order("rec1")
    # hub spelling of the fields gives the same problem
    hub_row = {"Record ID": "rec7", "Question": "made-up question?", "Correct Answer": "right",
               "Incorrect Answer 1": "w1", "Incorrect Answer 2": "w2", "Incorrect Answer 3": "w3"}
    hub = bench.to_problem(0, Row(hub_row, "Idavidrein/gpqa[train]", 1, "row"))
    assert (hub.id, hub.gold, hub.meta["choices"]) == (problems[7].id, problems[7].gold, problems[7].meta["choices"])
    (extracted, value, error), = bench.score_many([(hub, f"\\boxed{{{hub.gold}}}")])
    assert value == 1.0 and extracted == hub.gold


def test_shared_data_loads(shared_data):
    expected = {"math500": 500, "gsm8k": 1319, "aime24": 30, "gpqa": 198}
    for name, n in expected.items():
        bench = get_benchmark(name)
        problems = bench.load(shared_data)
        assert len(problems) == n and len({p.id for p in problems}) == n
        assert all(p.question and p.gold not in (None, "") for p in problems)
        prompt = bench.prompt(problems[0])
        assert prompt[-1]["role"] == "user" and "\\boxed{}" in prompt[-1]["content"]
    gsm = get_benchmark("gsm8k").load(shared_data)
    assert gsm[0].gold == "18"
    aime = get_benchmark("aime24").load(shared_data)
    assert all(p.gold == str(int(p.gold)) for p in aime)  # "025" -> "25"
    gpqa = get_benchmark("gpqa").load(shared_data)
    assert Counter(p.gold for p in gpqa).keys() == set("ABCD")


def test_missing_data_error_names_benchmark_path_and_remedy(tmp_path):
    with pytest.raises(MissingDataError) as info:
        get_benchmark("gpqa").load(tmp_path)
    message = str(info.value)
    assert "GPQA-Diamond (gpqa)" in message
    assert str(tmp_path / "gpqa_diamond" / "gpqa_diamond.jsonl") in message
    assert "Idavidrein/gpqa" in message and "gated" in message and "--data-dir" in message


def test_offline_hub_error_says_how_to_get_data(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MissingDataError, match=r"(?s)MATH-500 \(math500\).*HuggingFaceH4/MATH-500.*--data-dir"):
        get_benchmark("math500").load(None)


def test_bad_row_names_file_row_and_field(tmp_path):
    path = tmp_path / "gsm8k" / "test.jsonl"
    path.parent.mkdir()
    path.write_text(json.dumps({"question": "q", "answer": "#### 1"}) + "\n" + json.dumps({"question": "q2"}) + "\n")
    with pytest.raises(DataError, match=r"test.jsonl, line 2, field 'answer': expected a non-empty string, the field is"):
        get_benchmark("gsm8k").load(tmp_path)
    path.write_text(json.dumps({"question": "q", "answer": "no final answer"}) + "\n")
    with pytest.raises(DataError, match=r"line 1, field 'answer': expected a solution ending in '#### <number>'"):
        get_benchmark("gsm8k").load(tmp_path)


def test_scoring_failure_scores_zero_and_is_recorded():
    bench = get_benchmark("gpqa")
    problem = Problem(id="x", question="q", gold="A", meta={"choices": None})
    (extracted, value, error), = bench.score_many([(problem, None)])  # not a string: the scorer raises
    assert value == 0.0 and error and "Error" in error


def test_ifeval_through_the_benchmark_interface(shared_data, tmp_path):
    bench = get_benchmark("ifeval")
    problems = {p.id: p for p in bench.load(shared_data)}
    assert len(problems) == 541
    no_comma = problems["1001"]  # a single punctuation:no_comma instruction
    assert bench.prompt(no_comma) == [{"role": "user", "content": no_comma.question}]
    results = bench.score_many([(no_comma, "Day one: Tokyo and Kyoto"), (no_comma, "Day one, Tokyo"), (no_comma, None)])
    assert [r[1] for r in results] == [1.0, 0.0, 0.0]
    assert results[0][0] == "strict 1/1 loose 1/1" and results[2][2]  # a non-string response is an error, scored 0
    with pytest.raises(MissingDataError, match=r"IFEval \(ifeval\)"):
        bench.load(tmp_path)


def test_a_verifier_timeout_scores_zero_and_is_recorded_on_its_sample():
    from profit_rl.rewards.pool import configure_default_pool

    configure_default_pool(timeout=1.0)
    try:
        bench = get_benchmark("math500")
        problem = Problem(id="x", question="q", gold="5")
        hang = "\\boxed{2^{2^{2^{2^{2^{2}}}}}}"  # sympy computes a giant integer in one C call (Math-Verify #65)
        (ext_bad, bad, err_bad), (ext_ok, ok, err_ok) = bench.score_many([(problem, hang), (problem, "\\boxed{5}")])
        assert bad == 0.0 and err_bad and "timeout" in err_bad
        assert ok == 1.0 and err_ok is None
    finally:
        configure_default_pool()
