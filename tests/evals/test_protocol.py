"""The `paper` evaluation protocol against the reference's own configs, and GPQA's committed-letter rule.

The expected prompts are written here from the OpenCompass configs the ProFit reference evaluates with
(github.com/Utaotao/opencompass gsm8k_gen_1d7fe4; open-compass/opencompass math_500_gen,
gpqa_openai_simple_evals_gen_5aeece, IFEval_gen_353ae7), independently of evals/, so a change to a prompt fails here.
GPQA questions are read from ../shared/data at run time and never printed; the GPQA responses below are made up.
"""

import csv
import json
import re

import pytest
from conftest import SHARED_DATA

from profit_rl.evals import evaluate
from profit_rl.evals.benchmarks import Problem, get_benchmark
from profit_rl.evals.benchmarks.gpqa import committed_letter
from profit_rl.evals.protocols import BOXED, PAPER, deviations, header
from profit_rl.evals.benchmark_runner import fingerprint
from profit_rl.evals.sampling import SamplingSettings, context_error, render_prompt

MATH_TEMPLATE = "{problem}\nPlease reason step by step, and put your final answer within \\boxed{{}}."
GSM8K_SHOTS = [
    (
        "Angelo and Melanie want to plan how many hours over the next week they should study together for their test "
        "next week. They have 2 chapters of their textbook to study and 4 worksheets to memorize. They figure out that "
        "they should dedicate 3 hours to each chapter of their textbook and 1.5 hours for each worksheet. If they plan "
        "to study no more than 4 hours each day, how many days should they plan to study total over the next week if "
        "they take a 10-minute break every hour, include 3 10-minute snack breaks each day, and 30 minutes for lunch "
        "each day?",
        "Angelo and Melanie think they should dedicate 3 hours to each of the 2 chapters, 3 hours x 2 chapters = 6 "
        "hours total.\nFor the worksheets they plan to dedicate 1.5 hours for each worksheet, 1.5 hours x 4 worksheets "
        "= 6 hours total.\nAngelo and Melanie need to start with planning 12 hours to study, at 4 hours a day, 12 / 4 "
        "= 3 days.\nHowever, they need to include time for breaks and lunch. Every hour they want to include a "
        "10-minute break, so 12 total hours x 10 minutes = 120 extra minutes for breaks.\nThey also want to include 3 "
        "10-minute snack breaks, 3 x 10 minutes = 30 minutes.\nAnd they want to include 30 minutes for lunch each day, "
        "so 120 minutes for breaks + 30 minutes for snack breaks + 30 minutes for lunch = 180 minutes, or 180 / 60 "
        "minutes per hour = 3 extra hours.\nSo Angelo and Melanie want to plan 12 hours to study + 3 hours of breaks = "
        "15 hours total.\nThey want to study no more than 4 hours each day, 15 hours / 4 hours each day = 3.75\nThey "
        "will need to plan to study 4 days to allow for all the time they need.\nThe answer is 4\n",
    ),
    (
        "Mark's basketball team scores 25 2 pointers, 8 3 pointers and 10 free throws.  Their opponents score double "
        "the 2 pointers but half the 3 pointers and free throws.  What's the total number of points scored by both "
        "teams added together?",
        "Mark's team scores 25 2 pointers, meaning they scored 25*2= 50 points in 2 pointers.\nHis team also scores 6 "
        "3 pointers, meaning they scored 8*3= 24 points in 3 pointers\nThey scored 10 free throws, and free throws "
        "count as one point so they scored 10*1=10 points in free throws.\nAll together his team scored 50+24+10= 84 "
        "points\nMark's opponents scored double his team's number of 2 pointers, meaning they scored 50*2=100 points "
        "in 2 pointers.\nHis opponents scored half his team's number of 3 pointers, meaning they scored 24/2= 12 "
        "points in 3 pointers.\nThey also scored half Mark's team's points in free throws, meaning they scored 10/2=5 "
        "points in free throws.\nAll together Mark's opponents scored 100+12+5=117 points\nThe total score for the "
        "game is both team's scores added together, so it is 84+117=201 points\nThe answer is 201\n",
    ),
    (
        "Bella has two times as many marbles as frisbees. She also has 20 more frisbees than deck cards. If she buys "
        "2/5 times more of each item, what would be the total number of the items she will have if she currently has "
        "60 marbles?",
        "When Bella buys 2/5 times more marbles, she'll have increased the number of marbles by 2/5*60 = 24\nThe total "
        "number of marbles she'll have is 60+24 = 84\nIf Bella currently has 60 marbles, and she has two times as many "
        "marbles as frisbees, she has 60/2 = 30 frisbees.\nIf Bella buys 2/5 times more frisbees, she'll have 2/5*30 = "
        "12 more frisbees.\nThe total number of frisbees she'll have will increase to 30+12 = 42\nBella also has 20 "
        "more frisbees than deck cards, meaning she has 30-20 = 10 deck cards\nIf she buys 2/5 times more deck cards, "
        "she'll have 2/5*10 = 4 more deck cards.\nThe total number of deck cards she'll have is 10+4 = 14\nTogether, "
        "Bella will have a total of 14+42+84 = 140 items\nThe answer is 140\n",
    ),
    (
        "A group of 4 fruit baskets contains 9 apples, 15 oranges, and 14 bananas in the first three baskets and 2 "
        "less of each fruit in the fourth basket. How many fruits are there?",
        "For the first three baskets, the number of apples and oranges in one basket is 9+15=24\nIn total, together "
        "with bananas, the number of fruits in one basket is 24+14=38 for the first three baskets.\nSince there are "
        "three baskets each having 38 fruits, there are 3*38=114 fruits in the first three baskets.\nThe number of "
        "apples in the fourth basket is 9-2=7\nThere are also 15-2=13 oranges in the fourth basket\nThe combined "
        "number of oranges and apples in the fourth basket is 13+7=20\nThe fourth basket also contains 14-2=12 "
        "bananas.\nIn total, the fourth basket has 20+12=32 fruits.\nThe four baskets together have 32+114=146 "
        "fruits.\nThe answer is 146\n",
    ),
]
TWIN = SHARED_DATA.parent / "models" / "qwen3-base-twin"


@pytest.fixture(scope="module")
def qwen3_twin_tokenizer():
    """Qwen3-Base's own tokenizer and chat template (no weights needed here)."""
    if not TWIN.exists():
        pytest.skip(f"the Qwen3 tokenizer twin is not at {TWIN}")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(TWIN)


GPQA_TEMPLATE = ("Answer the following multiple choice question. The last line of your response should be of the "
                 "following format: 'ANSWER: $LETTER' (without quotes) where LETTER is one of ABCD. Think step by step "
                 "before answering.\n\n{question}\n\nA) {A}\nB) {B}\nC) {C}\nD) {D}")


def first_row(path):
    with open(path, encoding="utf-8") as f:
        return json.loads(f.readline())


def first_prompt(name, shared_data):
    bench = get_benchmark(name, "paper")
    return bench.prompt(bench.load(shared_data)[0])


def test_paper_first_prompts_equal_the_reference_configs(shared_data):
    # every user turn carries the "\n" of OpenCompass's empty SYSTEM turn (test_paper_protocol.py renders them)
    gsm = first_row(shared_data / "gsm8k" / "test.jsonl")
    turn = "Question: {}\nLet's think step by step\nAnswer:\n"
    expected = [m for q, a in GSM8K_SHOTS for m in ({"role": "user", "content": turn.format(q)},
                                                    {"role": "assistant", "content": a})]
    assert first_prompt("gsm8k", shared_data) == expected + [{"role": "user", "content": turn.format(gsm["question"])}]

    for name, path in (("math500", "math500/test.jsonl"), ("aime24", "aime24/test.jsonl")):
        problem = first_row(shared_data / path)["problem"]
        assert first_prompt(name, shared_data) == [{"role": "user",
                                                    "content": MATH_TEMPLATE.format(problem=problem) + "\n"}]

    ifeval = first_row(shared_data / "ifeval" / "input_data.jsonl")
    assert first_prompt("ifeval", shared_data) == [{"role": "user", "content": ifeval["prompt"] + "\n"}]

    # GPQA as OpenCompass's GPQADataset reads the CSV: columns 7-11, data row 1 rotated to BCDA (correct option on D)
    with open(shared_data / "gpqa_diamond" / "gpqa_diamond.csv", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f) if r[7] != "Question"]
    question, correct, wrong1, wrong2, wrong3 = rows[0][7:12]
    expected = GPQA_TEMPLATE.format(question=question, A=wrong1, B=wrong2, C=wrong3, D=correct)
    assert first_prompt("gpqa", shared_data) == [{"role": "user", "content": expected + "\n"}]


def test_paper_gpqa_letters_follow_opencompass_rotation(shared_data):
    problems = get_benchmark("gpqa", "paper").load(shared_data)
    with open(shared_data / "gpqa_diamond" / "gpqa_diamond.csv", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f) if r[7] != "Question"]
    assert [p.gold for p in problems] == ["DCBA"[i % 4] for i in range(len(rows))]
    assert all(p.meta["choices"]["ABCD".index(p.gold)] == row[8] for p, row in zip(problems, rows))
    # the boxed protocol keeps its own seeded order: the two differ on most questions
    boxed = get_benchmark("gpqa", "boxed").load(shared_data)
    assert sum(a.gold != b.gold for a, b in zip(problems, boxed)) > 100


def test_paper_gsm8k_shots_are_chat_turns_in_the_template(shared_data, qwen3_twin_tokenizer):
    text = render_prompt(qwen3_twin_tokenizer, first_prompt("gsm8k", shared_data), opencompass=True)
    assert text.count("<|im_start|>user\nQuestion: ") == 5 and text.count("<|im_start|>assistant\n") == 5
    # rendered as the reference's model class renders it: no enable_thinking, so no empty think block
    assert text.endswith("Let's think step by step\nAnswer:\n<|im_end|>\n<|im_start|>assistant\n")
    assert text.count("<think>") == 0
    assert "The answer is 146\n<|im_end|>" in text


def test_print_prompts_dry_run_shows_the_turns_without_a_model(shared_data, capsys):
    assert evaluate.main(["--protocol", "paper", "--print-prompts", "--data-dir", str(shared_data),
                     "--benchmarks", "gsm8k,gpqa"]) == 0
    out = capsys.readouterr().out
    assert out.count("Let's think step by step\nAnswer:") == 5 and out.count("[assistant]") == 4
    assert "'ANSWER: $LETTER' (without quotes)" in out and "max_new_tokens=8192" in out


@pytest.mark.parametrize("protocol, gold, completion, expected", [
    ("paper", "72", "Natalia sold 48/2 = 24 clips in May.\nThe answer is 72", 1.0),
    ("paper", "72", "The answer is 72\n\nQuestion: Weng earns $12 an hour. How much did she earn in 50 minutes?", 1.0),
    ("paper", "72", "... so 72.0 clips in total", 1.0),
    ("paper", "1072", "She sold 1,072 clips", 0.0),  # OpenCompass keeps commas: the last number read is 072
    ("boxed", "1072", "She sold 1,072 clips", 1.0),
    ("paper", "72", "I cannot tell.", 0.0),
    ("paper", "72", "\\boxed{72} clips, from 48 + 24 over 2 months", 0.0),  # the last number wins, not the box
    ("boxed", "72", "\\boxed{72} clips, from 48 + 24 over 2 months", 1.0),
])
def test_gsm8k_answer_rule_per_protocol(protocol, gold, completion, expected):
    bench = get_benchmark("gsm8k", protocol)
    (extracted, value, error), = bench.score_many([(Problem(id="0", question="q", gold=gold), completion)])
    assert error is None and value == expected


@pytest.mark.parametrize("completion, paper, boxed", [
    ("So x = 5.", 0.0, 1.0),  # a bare last number counts only under boxed
    # paper: MATHVerifyEvaluator's first match is the first $...$ (1/2); boxed: the last "the answer is"
    ("The final answer is $\\frac{1}{2}$... wait, the answer is $5$.", 0.0, 1.0),
    ("\\boxed{5}", 1.0, 1.0),
])
def test_math_answer_rule_per_protocol(completion, paper, boxed):
    problem = Problem(id="0", question="q", gold="5")
    for protocol, expected in (("paper", paper), ("boxed", boxed)):
        (_, value, error), = get_benchmark("math500", protocol).score_many([(problem, completion)])
        assert error is None and value == expected, protocol


CHOICES = ["1.0 eV", "2.5 eV", "4.2 eV", "7 eV"]
# Responses that name a letter without committing to it. Each names the gold letter, so a loose extractor that reads
# "a letter after 'answer'" would credit them.
NON_COMMITTAL = [
    ("B", "Answer choice B is incorrect because the energy is too low."),
    ("C", "Let us consider answer C. It fails the symmetry test."),
    ("A", "Option A is wrong since it ignores spin."),
    ("B", "It could be A. Or maybe B."),
    ("C", "The answer is not C."),
    ("B", "The answer is either B or D."),
    ("B", "ANSWER: B or C"),
    ("A", "ANSWER: $LETTER"),
    ("D", "Between B and D, I lean towards D but cannot decide."),
    ("A", "(A) is correct if the reaction is exothermic; (B) otherwise."),
    ("B", "The answer is (B). Wait, let me recheck: option C fits better."),
    ("A", "\\boxed{A}\n\nActually, on reflection, (D) is the right one."),
    ("B", "Answer: B is incorrect, so we are left with A, C and D."),
    ("A", "Answer: A/B"),
    ("A", "ANSWER: A, B"),
    ("B", "\\boxed{B or C}"),
    ("A", "\\boxed{}"),
    ("B", "The final answer is B and C."),
    ("D", "I would eliminate choice D first. Then choice A."),
    ("B", "Answer: Both A and C are plausible."),
    ("C", "The answer is (C)? Let me check option A again."),
    ("C", "ANSWER: C\n\nHmm, on second thought it might be (A)."),
    ("D", "Answer choice (D) looks tempting but is a distractor."),
    ("B", "The question asks which answer is most stable; (B) and (C) both seem stable."),
    ("A", ""),
    ("C", "Options A and C are wrong.\n(B)"),
]
COMMITTED = [
    "ANSWER: B",
    "Reasoning: A and C fail the selection rule.\nANSWER: B",
    "**ANSWER: B**",
    "**Answer:** B",
    "Answer: (B)",
    "ANSWER: B.",
    "\\boxed{B}",
    "So the choice is clear: $\\boxed{B}$",
    "\\boxed{(B)}",
    "\\boxed{\\text{B}}",
    "\\boxed{\\textbf{B}}",
    "The answer is (B).",
    "The answer is B",
    "The correct answer is option B.",
    "Therefore, the final answer is: B",
    "Option A is wrong and (C) fails, so the answer is (B).",
    "The answer is (B), since options A and C violate conservation of charge.",
    "ANSWER: A\n\nWait, that ignores spin. ANSWER: B",
    "ANSWER: B) 2.5 eV",
    "ANSWER: B\n\n(B) is the only option that conserves energy.",
    "\\boxed{2.5 eV}",
]


# The toolkit's own GPQA judgement (`boxed`); `paper` reads the first ANSWER: line as the reference does
# (test_paper_protocol.py).
@pytest.mark.parametrize("gold, completion", NON_COMMITTAL)
def test_gpqa_non_committal_scores_zero(gold, completion):
    for protocol in ("boxed",):
        problem = Problem(id="x", question="made-up?", gold=gold, meta={"choices": CHOICES})
        (extracted, value, error), = get_benchmark("gpqa", protocol).score_many([(problem, completion)])
        assert (extracted, value, error) == (None, 0.0, None), protocol


@pytest.mark.parametrize("completion", COMMITTED)
def test_gpqa_committed_forms_score_one(completion):
    for protocol in ("boxed",):
        problem = Problem(id="x", question="made-up?", gold="B", meta={"choices": CHOICES})
        (extracted, value, error), = get_benchmark("gpqa", protocol).score_many([(problem, completion)])
        assert (extracted, value, error) == ("B", 1.0, None), protocol


def test_enough_adversarial_cases():
    assert len(NON_COMMITTAL) >= 20 and all(committed_letter(c) is None for _, c in NON_COMMITTAL)


def test_paper_run_is_comparable_only_as_prescribed():
    ks = {name: (get_benchmark(name, "paper").default_k,) * 2 for name in PAPER.benchmarks}
    defaults = SamplingSettings().fingerprint()
    assert deviations(PAPER, defaults, ks, None, False) == []
    assert "Comparable to the paper's Table 1" in header("paper", [])
    changed = deviations(PAPER, {**defaults, "temperature": 0.0}, {**ks, "aime24": (8, 32)}, 10, True)
    assert changed == ["temperature=0.0 (paper: 0.7)", "max_new_tokens=None (paper: each benchmark's own)",
                       "aime24 k=8 (paper: 32)", "--limit 10 (paper: every problem)"]
    assert deviations(PAPER, defaults, {"gsm8k": (8, 8), "gpqa": (8, 8)}, None, False) == [
        "the average leaves out math500, aime24, ifeval (paper: gpqa, gsm8k, math500, aime24, ifeval)"]
    assert deviations(BOXED, defaults, ks, None, False) == ["protocol 'boxed' is not the paper's (--protocol paper is)"]
    assert "a\\_b\\|c" in header("paper", ["responses scored from a_b|c"])  # user strings are escaped
    assert header("boxed", ["x"]).startswith("Protocol: `boxed`") and "Not comparable" in header("boxed", ["x"])


def test_results_md_states_the_protocol_first(shared_data, tmp_path):
    responses = tmp_path / "responses.jsonl"
    problems = get_benchmark("gsm8k", "paper").load(shared_data)[:2]
    responses.write_text("".join(json.dumps({"id": p.id, "completion": f"The answer is {p.gold}"}) + "\n"
                                 for p in problems))
    for protocol in ("paper", "boxed"):
        out = tmp_path / protocol
        assert evaluate.main(["--responses", str(responses), "--benchmarks", "gsm8k", "--protocol", protocol,
                         "--data-dir", str(shared_data), "--output-dir", str(out), "--bootstrap", "50"]) == 0
        first = (out / "results.md").read_text().splitlines()[0]
        assert first.startswith(f"Protocol: `{protocol}`") and "Not comparable to the paper's Table 1" in first
        run = json.loads((out / "results.json").read_text())
        assert run["protocol"] == protocol and run["benchmarks"]["gsm8k"]["protocol"] == protocol
        assert run["benchmarks"]["gsm8k"]["avg_at_k"] == 1.0


def test_protocol_is_part_of_the_cache_key_and_embedded_has_no_paper_protocol():
    settings = SamplingSettings(max_new_tokens=8192)
    paper, boxed = (fingerprint(get_benchmark("math500", p), "m", settings) for p in ("paper", "boxed"))
    assert paper["protocol"] == "paper" and paper != boxed
    with pytest.raises(ValueError, match="no 'paper' protocol"):
        get_benchmark("embedded", "paper")
    assert evaluate.main(["--protocol", "paper", "--benchmarks", "embedded", "--print-prompts"]) == 2


def test_prompt_over_the_budget_is_refused_not_cut(qwen3_twin_tokenizer):
    reason = context_error(qwen3_twin_tokenizer, "word " * 5000, None, PAPER.max_prompt_tokens)
    assert re.fullmatch(r"prompt is 500\d tokens, over the protocol's 4096-token prompt budget", reason)
    assert context_error(qwen3_twin_tokenizer, "word " * 100, None, PAPER.max_prompt_tokens) is None


def test_runner_screens_prompts_against_the_protocol_budget(tmp_path):
    class OverBudget:
        """A sampler whose every prompt is over the budget it is given; it must never be asked to sample."""

        budgets = []

        def context_error(self, messages, prompt_budget=None):
            self.budgets.append(prompt_budget)
            return f"prompt is 5000 tokens, over the protocol's {prompt_budget}-token prompt budget"

        def sample(self, *args, **kwargs):
            raise AssertionError("an over-budget prompt must not be sampled")

    from profit_rl.evals.benchmark_runner import run_benchmark

    bench = get_benchmark("math500", "paper")
    problems = [Problem(id="p0", question="What is 2+3?", gold="5")]
    sampler = OverBudget()
    summary = run_benchmark(bench, problems, "m", SamplingSettings(), 2, tmp_path, lambda: sampler, n_boot=10)
    assert sampler.budgets == [4096] and summary["n_errors"] == 2 and summary["avg_at_k"] == 0.0


def test_math500_gold_equals_the_gold_opencompass_parses_from_the_solution(shared_data):
    """OpenCompass's MATHVerifyEvaluator (what `paper` runs) takes its gold from the `solution` text (math-verify, first
    match); `boxed` compares with the `answer` field. math-verify judges the two equal on every MATH-500 row, so the
    two protocols differ in how they read a response, never in the gold."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    rows = [json.loads(line) for line in (shared_data / "math500" / "test.jsonl").read_text().splitlines()]
    differ = []
    for row in rows:
        theirs = parse(f"${row['solution']}$", extraction_mode="first_match",
                       extraction_config=[LatexExtractionConfig(), ExprExtractionConfig()])
        if not (theirs and verify(parse("\\boxed{" + row["answer"] + "}"), theirs)):
            differ.append(row["unique_id"])
    assert len(rows) == 500 and differ == []


def test_report_states_the_protocol_of_its_eval_runs(tmp_path):
    from profit_rl.pipeline.report import protocol_line

    def run(path, protocol, reasons):
        path.mkdir(parents=True)
        (path / "results.json").write_text(json.dumps({"protocol": protocol, "not_comparable_because": reasons,
                                                       "benchmarks": {}}))
        return path

    same = [run(tmp_path / "a", "paper", []), run(tmp_path / "b", "paper", [])]
    assert protocol_line(same) == header("paper", [])
    mixed = same + [run(tmp_path / "c", "boxed", ["x"])]
    assert "differ" in protocol_line(mixed) and "Not comparable" in protocol_line(mixed)
    assert protocol_line([tmp_path / "missing"]) == "Protocol: no eval results yet."


def test_compare_refuses_runs_made_under_different_protocols(tmp_path):
    from profit_rl.evals.compare import compare

    for name, protocol in (("a", "paper"), ("b", "boxed")):
        (tmp_path / name / "gsm8k").mkdir(parents=True)
        (tmp_path / name / "results.json").write_text(json.dumps({"benchmarks": {"gsm8k": {}}}))
        (tmp_path / name / "gsm8k" / "results.json").write_text(json.dumps(
            {"k": 8, "protocol": protocol, "per_problem": {"0": {"avg": 1.0, "pass": 1.0}}, "avg_at_k": 1.0,
             "pass_at_k": 1.0}))
    with pytest.raises(ValueError, match="protocol 'paper' and run B 'boxed'"):
        compare(tmp_path / "a", tmp_path / "b")
