"""rewards.answers: the one answer extractor shared by rewards and evals."""

import json
import time

import pytest

from profit_rl.rewards.answers import (
    MAX_COMPLETION_CHARS,
    extract_answer,
    gold_answer,
    last_boxed,
    normalize_answer,
    strip_units,
)


@pytest.mark.parametrize(
    "completion, expected",
    [
        ("so the answer is $\\boxed{5}$.", "5"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("nested \\boxed{\\frac{\\sqrt{2}}{2}} end", "\\frac{\\sqrt{2}}{2}"),
        ("first \\boxed{3} then corrected \\boxed{4}", "4"),  # several boxes: the last one
        ("\\boxed{\\boxed{7}}", "7"),  # a box that only wraps a box
        ("\\fbox{12}", "12"),
        ("\\boxed {x+1}", "x+1"),
        ("\\boxed 5$", "5"),  # TeX's one-token argument
        ("set: \\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),  # escaped braces are literal, not grouping
        ("\\boxed{$\\pi$}", "\\pi"),
        ("\\boxed{1} and later \\boxed{2", None),  # last box cut off mid-answer: no answer, no earlier box
        ("\\boxed{}", None),
        ("Natalia sold 48/2 = <<48/2=24>>24 clips.\n#### 72", "72"),
        ("#### 1,000\n", "1,000"),
        ("The final answer is $\\frac{3}{4}$.", "\\frac{3}{4}"),
        ("Answer: 42", "42"),
        ("we get 3 apples and then 17 pears", "17"),  # last-number fallback
        ("no digits here at all", None),
        ("", None),
    ],
)
def test_extract_answer(completion, expected):
    assert extract_answer(completion) == expected


def test_fallback_levels():
    text = "We compute 3 + 4 = 7. So the answer is 7 apples"
    assert extract_answer(text, fallback="none") is None
    assert extract_answer(text, fallback="answer_is") == "7 apples"
    assert extract_answer("it is 12", fallback="answer_is") is None
    assert extract_answer("it is 12", fallback="last_number") == "12"
    # the last phrase wins, also on one line
    assert extract_answer("The answer is $\\frac12$... wait, the final answer is $5$.", fallback="answer_is") == "5"
    assert extract_answer("The answer is 5.\nAnswer:", fallback="answer_is") == "5"
    with pytest.raises(ValueError, match="fallback"):
        extract_answer("x", fallback="sometimes")


def test_box_beats_every_fallback():
    assert extract_answer("#### 3\n the answer is 4, then \\boxed{5} and 6") == "5"


@pytest.mark.parametrize(
    "gold, expected",
    [
        ("025", "25"),  # AIME zero padding
        ("000", "0"),
        ("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs.\n#### 18", "18"),  # GSM8K solution
        ("#### 1,234", "1234"),
        ("We have $x = \\boxed{\\dfrac{1}{2}}$.", "\\frac{1}{2}"),  # MATH solution: last box
        ("5\\text{ cm}", "5"),
        ("864 \\mbox{ inches}^2", "864"),
        ("90^\\circ", "90"),
        ("90^{\\circ}", "90"),
        ("\\frac{270}7\\text{ degrees}", "\\frac{270}7"),
        ("\\$32,\\!348", "32348"),
        ("11,\\! 111,\\! 111,\\! 100", "11111111100"),
        ("\\text{Evelyn}", "Evelyn"),
        ("\\text{(C)}", "(C)"),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "( 3, \\frac{\\pi}{2} )"),
        ("0.5", "0.5"),  # not an integer: no zero stripping
        ("x \\in [1, 2)", "x \\in [1, 2)"),
        (12, "12"),
    ],
)
def test_gold_answer(gold, expected):
    assert gold_answer(gold) == expected


def test_strip_units_keeps_values():
    assert strip_units("\\sqrt{2}") == "\\sqrt{2}"
    assert strip_units("x\\text{ if } y") == "x\\text{ if } y"  # text in the middle is not a unit
    assert strip_units("(1, 2)") == "(1, 2)"
    assert normalize_answer("\\left(\\frac{3}{5},\\frac{8}{3}\\right]") == "(\\frac{3}{5},\\frac{8}{3}]"
    assert normalize_answer("\\rightarrow 5") == "\\rightarrow 5"  # \right only as a whole command


def test_long_completion_is_cut_to_its_tail():
    junk = "{" * (2 * MAX_COMPLETION_CHARS)  # an unclosed brace storm before the answer
    start = time.perf_counter()
    assert extract_answer(junk + " final \\boxed{9}") == "9"
    assert extract_answer("\\boxed{1}" + "x" * (2 * MAX_COMPLETION_CHARS)) is None  # the box fell off the 64 KB tail
    assert extract_answer("\\boxed{" * 300_000) is None  # deep unclosed nesting, 2.1 MB
    assert extract_answer("\\boxed{" * 3 + "1" + "}" * 3) == "1"
    deep = extract_answer("\\boxed{" * 8_000 + "1" + "}" * 8_000)  # 56 KB, unwrapped a bounded number of times
    assert deep is not None and deep.startswith("\\boxed{") and deep.endswith("1" + "}" * (8_000 - 5))
    assert time.perf_counter() - start < 2.0  # linear scans: far below any reward deadline


def test_last_boxed_skips_nested_boxes():
    assert last_boxed("\\boxed{a \\boxed{b} c}") == "a \\boxed{b} c"
    assert last_boxed("no box") is None


def test_matches_every_math500_answer(shared_data):
    """MATH-500's `answer` field is the last box of its `solution`: the extractor must agree on all 500 rows."""
    rows = [json.loads(line) for line in (shared_data / "math500" / "test.jsonl").open()]
    assert len(rows) == 500
    mismatches = [r["unique_id"] for r in rows if extract_answer(r["solution"]) != r["answer"]]
    assert mismatches == []


def test_gsm8k_and_aime_golds(shared_data):
    gsm8k = [json.loads(line) for line in (shared_data / "gsm8k" / "test.jsonl").open()]
    golds = [gold_answer(r["answer"]) for r in gsm8k]
    assert all(g.lstrip("-").replace(".", "", 1).isdigit() for g in golds), [g for g in golds if not g.isdigit()][:5]
    aime = [json.loads(line) for line in (shared_data / "aime24" / "test.jsonl").open()]
    assert [gold_answer(r["answer"]) for r in aime] == [str(int(r["answer"])) for r in aime]
