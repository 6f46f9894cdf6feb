"""`--protocol paper` is the reference's OpenCompass code, bug for bug: rendered prompts, stop words, verdicts.

The expected texts are written here from the reference's configs (gsm8k_gen_1d7fe4, math_500_gen, aime2024_gen_17d799,
gpqa_openai_simple_evals_gen_5aeece, IFEval_gen_353ae7) and from how its model class renders them: OpenCompass's chat
meta template joins each HUMAN turn with the round's empty SYSTEM turn by "\\n", and `apply_chat_template` gets no
`enable_thinking`. bench/paper_agreement.py checks every problem and > 2,000 responses against OpenCompass's own code.
GPQA text is read from ../shared/data at run time and never printed; the GPQA responses below are made up.
"""

import csv
import json
import time

import pytest
from conftest import SHARED_DATA

from profit_rl.evals import evaluate
from profit_rl.evals.benchmarks import Problem, get_benchmark
from profit_rl.rewards.deadline_runner import DeadlineRunner
from profit_rl.evals.benchmarks.opencompass import fill, gpqa_letter, reference_messages
from profit_rl.evals.benchmarks.opencompass import OpenCompassChat
from profit_rl.evals.sampling import SamplingSettings, render_prompt
from tests.helpers_qwen3 import ENDOFTEXT, IM_END, SAY_HELLO

TWIN = SHARED_DATA.parent / "models" / "qwen3-base-twin"
MATH_INSTRUCTION = "\nPlease reason step by step, and put your final answer within \\boxed{}."
USER, ASSISTANT, END = "<|im_start|>user\n", "<|im_start|>assistant\n", "<|im_end|>\n"


@pytest.fixture(scope="module")
def twin_tokenizer():
    if not TWIN.exists():
        pytest.skip(f"the Qwen3 tokenizer twin is not at {TWIN}")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(TWIN)


def first_rendered(name, shared_data, tokenizer):
    bench = get_benchmark(name, "paper")
    return render_prompt(tokenizer, bench.prompt(bench.load(shared_data)[0]), opencompass=True)


def first_row(path):
    with open(path, encoding="utf-8") as f:
        return json.loads(f.readline())


@pytest.mark.parametrize("name, path, column", [("math500", "math500/test.jsonl", "problem"),
                                                ("aime24", "aime24/test.jsonl", "question"),
                                                ("ifeval", "ifeval/input_data.jsonl", "prompt")])
def test_paper_renders_the_first_prompt_byte_for_byte(name, path, column, shared_data, twin_tokenizer):
    text = first_row(shared_data / path)[column] + ("" if name == "ifeval" else MATH_INSTRUCTION)
    # one extra "\n" (the empty SYSTEM turn), the turn's end, and the generation prompt with no think block
    assert first_rendered(name, shared_data, twin_tokenizer) == f"{USER}{text}\n{END}{ASSISTANT}"


def test_paper_renders_gsm8k_few_shot_turns_byte_for_byte(shared_data, twin_tokenizer):
    from tests.evals.test_protocol import GSM8K_SHOTS

    question = first_row(shared_data / "gsm8k" / "test.jsonl")["question"]
    turn = "Question: {}\nLet's think step by step\nAnswer:\n"
    expected = "".join(f"{USER}{turn.format(q)}{END}{ASSISTANT}{a}{END}" for q, a in GSM8K_SHOTS)
    expected += f"{USER}{turn.format(question)}{END}{ASSISTANT}"
    assert first_rendered("gsm8k", shared_data, twin_tokenizer) == expected


def test_paper_renders_gpqa_first_prompt_byte_for_byte(shared_data, twin_tokenizer):
    with open(shared_data / "gpqa_diamond" / "gpqa_diamond.csv", encoding="utf-8") as f:
        row = next(r for r in csv.reader(f) if r[7] != "Question")
    question, correct, wrong1, wrong2, wrong3 = row[7:12]
    # GPQADataset: the first data row is rotated BCDA, so the correct option is D
    text = ("Answer the following multiple choice question. The last line of your response should be of the following "
            f"format: 'ANSWER: $LETTER' (without quotes) where LETTER is one of ABCD. Think step by step before "
            f"answering.\n\n{question}\n\nA) {wrong1}\nB) {wrong2}\nC) {wrong3}\nD) {correct}")
    assert first_rendered("gpqa", shared_data, twin_tokenizer) == f"{USER}{text}\n{END}{ASSISTANT}"


def test_boxed_keeps_its_own_rendering(shared_data, twin_tokenizer):
    bench = get_benchmark("math500", "boxed")
    text = render_prompt(twin_tokenizer, bench.prompt(bench.load(shared_data)[0]))
    assert text.endswith(f"{MATH_INSTRUCTION}{END}{ASSISTANT}<think>\n\n</think>\n\n")


def test_fields_fill_one_after_another_as_opencompass_does():
    fields = [("question", "Is {A} right?"), ("A", "x{B}"), ("B", "y"), ("answer", "A")]
    assert fill("{question} A) {A} B) {B} [{answer}]", fields, "answer") == "Is xy right? A) xy B) y []"
    assert reference_messages([("q1", "a1"), ("q2", None)]) == [{"role": "user", "content": "q1\n"},
                                                                 {"role": "assistant", "content": "a1"},
                                                                 {"role": "user", "content": "q2\n"}]


def test_paper_stops_only_at_the_reference_stop_words(qwen3_twin_dir, tmp_path):
    """Qwen3-Base's folder names <|endoftext|> twice (generation config and tokenizer): under `paper` a turn's
    <|im_end|> does not stop generation; under `boxed` it does. The rigged twin says Hello <|im_end|> world Hello ..."""
    from profit_rl.core.chat import ChatFormat
    from profit_rl.evals.sampling import TransformersSampler
    from tests.helpers_qwen3 import rig

    rigged = str(rig(qwen3_twin_dir, tmp_path / "rigged"))
    greedy = dict(temperature=0.0, max_new_tokens=5)
    paper = TransformersSampler(rigged, SamplingSettings(opencompass_chat=True, **greedy), device="cpu")
    boxed = TransformersSampler(rigged, SamplingSettings(**greedy), device="cpu")
    assert paper.stop_ids == [ENDOFTEXT] and boxed.stop_ids == [IM_END, ENDOFTEXT]
    prompt = ChatFormat(boxed.tokenizer).prompt(SAY_HELLO)  # the rig answers after this prompt's last token
    assert boxed.generate([prompt], 1, boxed.settings) == [["Hello"]]
    # Hello <|im_end|> world Hello <|im_end|>: the end of the turn is skipped in the text, and generation goes on
    assert paper.generate([prompt], 1, paper.settings) == [["Hello worldHello"]]
    assert not paper.render(SAY_HELLO).endswith("</think>\n\n")
    assert SamplingSettings(opencompass_chat=True).fingerprint()["stop"] != SamplingSettings().fingerprint()["stop"]
    # a folder without generation_config.json: only the tokenizer's EOS, as _get_potential_stop_words collects
    (tmp_path / "rigged" / "generation_config.json").unlink()
    assert OpenCompassChat(paper.tokenizer, rigged).stop_token_ids() == [ENDOFTEXT]


# ---- GPQA: the first ANSWER: anywhere, the letter as written --------------------------------------------------------
@pytest.mark.parametrize("response, letter", [
    ("ANSWER: B", "B"),
    ("Answer: Consider the spin first.\nANSWER: B", "C"),  # "Consider" reads C
    ("ANSWER: A\nWait, that ignores spin.\nANSWER: B", "A"),  # the first one wins
    ("ANSWER: b", "b"),  # the case as written: GPQAEvaluator's == counts it wrong
    ("answer:B", "B"),
    ("ANSWER : B", "B"),
    ("Answer:\nB", "B"),  # \s spans the newline
    ("ANSWER: $B$", None),
    ("ANSWER: (B)", None),
    ("**Answer:** B", None),  # "**" stands between the colon and the letter
    ("The answer is \\boxed{B}", None),
    ("The answer is (B).", None),
])
def test_gpqa_paper_reads_the_first_answer_line(response, letter):
    problem = Problem(id="x", question="made-up?", gold="B", meta={"choices": ["1", "2", "3", "4"]})
    assert gpqa_letter(response) == letter
    (extracted, score, error), = get_benchmark("gpqa", "paper").score_many([(problem, response)])
    assert (extracted, score, error) == (letter, float(letter == "B"), None)


def test_gpqa_boxed_keeps_the_committed_letter():
    problem = Problem(id="x", question="made-up?", gold="B", meta={"choices": ["1", "2", "3", "4"]})
    pairs = [(problem, "ANSWER: A\nWait, that ignores spin.\nANSWER: B"), (problem, "The answer is \\boxed{B}")]
    assert [s for _, s, _ in get_benchmark("gpqa", "boxed").score_many(pairs)] == [1.0, 1.0]
    assert [s for _, s, _ in get_benchmark("gpqa", "paper").score_many(pairs)] == [0.0, 0.0]


# ---- MATH-500 / AIME'24: MATHVerifyEvaluator over the whole response ------------------------------------------------
def test_math_paper_is_math_verify_over_the_whole_response(shared_data):
    aime = get_benchmark("aime24", "paper")
    problem = aime.load(shared_data)[0]  # gold "204" (answer column)
    responses = ["so \\boxed{204}", "The answer is 204", "The answer is $204$.", "\\boxed{204} and \\boxed{7}",
                 "Final answer: \\boxed{7}", "\\boxed{204.}"]
    scores = [s for _, s, _ in aime.score_many([(problem, r) for r in responses])]
    boxed = [s for _, s, _ in get_benchmark("aime24", "boxed").score_many([(problem, r) for r in responses])]
    assert scores[:5] == [1.0, 0.0, 1.0, 0.0, 0.0]  # no anchor: no answer; two boxes: one set {204, 7}
    assert boxed[:5] == [1.0, 1.0, 1.0, 0.0, 0.0]  # the toolkit's own: "the answer is" counts, the last box wins
    math500 = get_benchmark("math500", "paper")
    first = math500.load(shared_data)[0]  # the gold the reference parses is the solution's last box
    assert first.meta["reference_gold"].endswith("$\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}.$")
    (_, score, error), = math500.score_many([(first, "\\boxed{\\left(3, \\frac{\\pi}{2}\\right)}")])
    assert (score, error) == (1.0, None)


def test_a_response_that_outlasts_its_deadline_scores_zero_and_the_rest_go_on():
    runner = DeadlineRunner("time:sleep", timeout_s=1.0, num_workers=1)
    try:
        start = time.monotonic()
        results = runner.run([(0.0,), (30,), (0.0,), ("not a number",)])
        assert time.monotonic() - start < 20
    finally:
        runner.close()
    assert [outcome for outcome, _ in results] == ["ok", "timeout", "ok", "error"]
    assert runner.counts == {"ok": 2, "timeout": 1, "error": 1}


# ---- score again without sampling again ---------------------------------------------------------------------------
def test_rescore_scores_saved_completions_under_both_protocols(shared_data, tmp_path):
    gsm = get_benchmark("gsm8k", "boxed").load(shared_data)[:2]
    gpqa = get_benchmark("gpqa", "boxed").load(shared_data)[:2]
    rows = [{"benchmark": "gsm8k", "id": gsm[0].id, "completions": [f"The answer is \\boxed{{{gsm[0].gold}}}, 5 left",
                                                                     f"The answer is {gsm[0].gold}"]},
            {"benchmark": "gsm8k", "id": gsm[1].id, "completions": ["no idea", "no idea"]},
            {"benchmark": "gpqa", "id": gpqa[0].id, "completions": [f"\\boxed{{{gpqa[0].gold}}}",
                                                                    f"ANSWER: {gpqa[0].gold}"]},
            {"benchmark": "gpqa", "id": gpqa[1].id, "completions": ["ANSWER: Z", "none"]}]
    responses = tmp_path / "responses.jsonl"
    responses.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = tmp_path / "run"
    assert evaluate.main(["--responses", str(responses), "--benchmarks", "gsm8k,gpqa", "--protocol", "boxed",
                     "--data-dir", str(shared_data), "--output-dir", str(run), "--bootstrap", "20"]) == 0
    # the saved samples carry no recorded protocol (scored from a file): GPQA's letter order is then unknown
    assert evaluate.main(["--rescore", str(run), "--data-dir", str(shared_data), "--bootstrap", "20"]) == 1
    for bench in ("gsm8k", "gpqa"):  # as `profit-rl eval` records it
        path = run / bench / "samples.jsonl"
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        path.write_text("".join(json.dumps({**r, "settings": {**r["settings"], "protocol": "boxed"}}) + "\n"
                                for r in lines))
    assert evaluate.main(["--rescore", str(run), "--data-dir", str(shared_data), "--bootstrap", "20"]) == 0
    table = (run / "rescore" / "comparison.md").read_text()
    # gsm8k: boxed credits the box (1, 1), paper the last number (0: "5 left", then 1); gpqa: boxed credits the box
    assert "| gsm8k | boxed | 4 | 25.0 | 50.0 | 1 | 0 | 1 |" in table
    assert "| gpqa | boxed | 4 | 25.0 | 50.0 | 1 | 0 | 1 |" in table
    for protocol in ("paper", "boxed"):
        first = (run / "rescore" / protocol / "results.md").read_text().splitlines()[0]
        assert first.startswith(f"Protocol: `{protocol}`") and "rescored from" in first
    # a rerun gives the same files
    before = (run / "rescore" / "paper" / "gsm8k" / "results.json").read_text()
    assert evaluate.main(["--rescore", str(run), "--data-dir", str(shared_data), "--bootstrap", "20"]) == 0
    assert (run / "rescore" / "paper" / "gsm8k" / "results.json").read_text() == before


def test_print_prompts_shows_each_protocols_stop_words_and_rendering(shared_data, capsys):
    if not TWIN.exists():
        pytest.skip(f"the Qwen3 tokenizer twin is not at {TWIN}")
    for protocol, stops, text_end in (("paper", "'<|endoftext|>'\n", f"{END}{ASSISTANT}"),
                                      ("boxed", "'<|im_end|>', '<|endoftext|>'\n", "<think>\n\n</think>\n\n")):
        assert evaluate.main(["--protocol", protocol, "--print-prompts", "--data-dir", str(shared_data), "--benchmarks",
                         "math500", "--model", str(TWIN)]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"generation stops at: {stops}") and out.endswith(text_end + "\n\n"), protocol


def test_a_response_that_hangs_math_verify_scores_zero_with_its_reason(monkeypatch):
    """A tower of exponents makes sympy compute a giant integer in one C call, which math-verify's own signal timeout
    cannot stop: the worker is killed at the deadline, the sample scores 0 with the reason, the next one is scored."""
    from profit_rl.evals.benchmarks.mathlike import PAPER_VERDICT
    from profit_rl.rewards import deadline_runner as deadline

    runner = DeadlineRunner(PAPER_VERDICT, timeout_s=3.0, num_workers=1)
    monkeypatch.setitem(deadline._RUNNERS, PAPER_VERDICT, runner)
    problem = Problem(id="0", question="q", gold="5")
    try:
        out = get_benchmark("math500", "paper").score_many(
            [(problem, "\\boxed{5}"), (problem, "\\boxed{2^{2^{2^{2^{2^{2}}}}}}"), (problem, "so $\\boxed{5}$")])
    finally:
        runner.close()
    assert [score for _, score, _ in out] == [1.0, 0.0, 1.0]
    assert out[1][2].startswith("math-verify timeout: no verdict within 3 s") and out[0][2] is None
