"""IFEval: the 25 checkers, strict/loose scoring, metrics, data validation, `python -m profit_rl.evals.ifeval`."""

import json
import subprocess
import sys

import pytest

from profit_rl.evals.ifeval import (
    INSTRUCTION_IDS,
    IFEvalDataError,
    IFEvalPrompt,
    InstructionError,
    aggregate,
    build_checker,
    load_prompts,
    loose_variants,
    read_responses,
    score_response,
)
from profit_rl.evals.ifeval import text
from profit_rl.evals.ifeval.__main__ import main as ifeval_main
from tests.helpers_ifeval import CHECKER_CASES

from conftest import REPO  # noqa: E402  (the repository root, defined once)
GPT4_FIXTURE = REPO / "tests" / "fixtures" / "ifeval_gpt4_reference.jsonl"


def _prompt(instruction_ids, kwargs, key=1, prompt="p"):
    return IFEvalPrompt(key=key, prompt=prompt, instruction_id_list=list(instruction_ids), kwargs=list(kwargs))


# --- the checkers -------------------------------------------------------------------------------------------------


def test_registry_is_the_reference_25():
    assert len(INSTRUCTION_IDS) == 25
    assert {case[0] for case in CHECKER_CASES} == set(INSTRUCTION_IDS)


def test_every_instruction_has_a_followed_and_a_not_followed_case():
    outcomes = {}
    for instruction_id, _, _, expected in CHECKER_CASES:
        outcomes.setdefault(instruction_id, set()).add(expected)
    assert all(seen == {True, False} for seen in outcomes.values()), outcomes


@pytest.mark.parametrize(
    "instruction_id,kwargs,response,expected", CHECKER_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CHECKER_CASES)]
)
def test_checker(instruction_id, kwargs, response, expected):
    score = score_response(_prompt([instruction_id], [kwargs]), response)
    assert score.strict == [expected]
    assert score.errors == []


def test_blank_response_follows_nothing_even_a_vacuous_instruction():
    # "no commas" holds for "", but the reference requires a non-blank response first.
    score = score_response(_prompt(["punctuation:no_comma"], [{}]), "  \n ")
    assert score.strict == [False] and score.loose == [False]


def test_non_letter_falls_back_to_a_seeded_letter():
    # Prompt 1122 asks for at least 4 "#": the reference replaces "#" by a random letter; ours is seeded ("q").
    check = build_checker("keywords:letter_frequency", {"letter": "#", "let_frequency": 4, "let_relation": "at least"})
    assert not check("#tag #tag #tag #tag")
    assert check("qqqq")


@pytest.mark.parametrize(
    "instruction_id,kwargs,message",
    [
        ("keywords:unknown", {}, "unknown instruction id"),
        ("keywords:frequency", {"keyword": "a", "frequency": 2}, "missing parameter"),
        ("keywords:frequency", {"keyword": "a", "frequency": 2, "relation": "at most"}, "must be one of"),
        ("length_constraints:number_words", {"num_words": "3", "relation": "at least"}, "non-negative integer"),
        ("punctuation:no_comma", {"letter": "a"}, "unexpected parameter"),
    ],
)
def test_bad_instruction_parameters_fail_loudly(instruction_id, kwargs, message):
    with pytest.raises(InstructionError, match=message):
        build_checker(instruction_id, kwargs)


def test_hub_style_null_kwargs_are_ignored():
    check = build_checker("detectable_format:title", {"num_words": None, "keyword": None})
    assert check("<<t>>")


# --- text tools ---------------------------------------------------------------------------------------------------


def test_punkt_tables_are_nltks_english_punkt_tab():
    assert text.punkt_tables_fingerprint() == text.PUNKT_ENGLISH_FINGERPRINT


def test_sentence_and_word_splitting_match_nltk():
    # Expected splits from nltk.sent_tokenize / nltk.word_tokenize with NLTK's own punkt_tab data.
    assert text.split_sentences("Mr. Smith paid $4.50 at 3 p.m. today. It was cheap! Was it? Yes.") == [
        "Mr. Smith paid $4.50 at 3 p.m. today.",
        "It was cheap!",
        "Was it?",
        "Yes.",
    ]
    assert text.word_tokenize("I can't go. NASA's CEO said \"no\".") == [
        "I", "ca", "n't", "go", ".", "NASA", "'s", "CEO", "said", "``", "no", "''", ".",
    ]  # fmt: skip
    assert text.count_words("It's 3.5 km, isn't it?") == 8


def test_splitting_is_the_pinned_reference_nltk():
    # nltk 3.8.1 and 3.9.1 (the reference behaviour) keep `.”` inside a sentence and "'FINE" whole; 3.10.4 does neither.
    curly = "Is it “Happy Birthday.”\n\nYour answer must contain one of the following phrases:\nMy answer is yes."
    assert text.count_sentences(curly) == 1
    assert text.word_tokenize("IT'S 'FINE' SHI'A") == ["IT", "'S", "'FINE", "'", "SHI", "'", "A"]


def test_the_reference_checks_refuse_other_tables(monkeypatch):
    """nltk 3.10's curly-quote Punkt rule (or any other table change) fails the probe check; changed Punkt tables fail
    the fingerprint check. nltk is a floor, not a pin: these checks, not its version, keep the reference's splits."""
    import re

    from nltk.tokenize.punkt import PunktSentenceTokenizer

    sentence_tokenizer, _, word_tokenizer = text._tokenizers()
    reference_vars = type(sentence_tokenizer._lang_vars)

    class Nltk310Vars(reference_vars):  # nltk 3.10.4's change: a curly quote after a period closes the sentence
        re_boundary_realignment = re.compile(r'["\')\]}\u2018\u2019\u201c\u201d\xab\xbb]+?(?:\s+|(?=--)|$)', re.M)

        @property
        def _re_non_word_chars(self):
            return r"(?:[)\";}\]\*:@\'\({\[\u2018\u2019\u201c\u201d\xab\xbb%s])" % re.escape("?!")

    text.check_reference_splits(sentence_tokenizer, word_tokenizer)  # the tables in use pass
    with pytest.raises(text.ReferenceMismatch, match="does not split text as the reference"):
        text.check_reference_splits(PunktSentenceTokenizer(sentence_tokenizer._params, lang_vars=Nltk310Vars()),
                                    word_tokenizer)
    english = text._english_punkt_module()
    monkeypatch.setattr(english, "SENT_STARTERS", [*english.SENT_STARTERS, "however"])
    with pytest.raises(text.ReferenceMismatch, match="are not NLTK's punkt_tab/english"):
        text.check_punkt_tables()


def test_language_detection_is_deterministic():
    borderline = "ok ja nein si oui da"
    assert len({text.detect_language(borderline) for _ in range(5)}) == 1


# --- loose scoring and metrics ------------------------------------------------------------------------------------


def test_loose_variants_are_the_reference_eight():
    variants = loose_variants("Sure:\n*A* b\nBye")
    assert variants == ["Sure:\n*A* b\nBye", "Sure:\nA b\nBye", "*A* b\nBye", "Sure:\n*A* b", "*A* b",
                        "A b\nBye", "Sure:\nA b", "A b"]  # fmt: skip


def test_loose_forgives_a_chatty_first_line_and_markdown_stars():
    prompt = _prompt(
        ["combination:repeat_prompt", "startend:end_checker", "startend:quotation"],
        [{"prompt_to_repeat": "Say hi."}, {"end_phrase": "Bye."}, {}],
    )
    score = score_response(prompt, 'Sure! Here it is:\nSay hi. Hi!\n**Bye.**')
    assert score.strict == [False, False, False]
    assert score.loose == [True, True, False]
    assert not score.strict_all and not score.loose_all


def test_aggregate_gives_the_four_metrics():
    prompts = [
        _prompt(["punctuation:no_comma", "detectable_format:title"], [{}, {}], key=1),
        _prompt(["punctuation:no_comma"], [{}], key=2),
    ]
    scores = [score_response(prompts[0], "<<T>> no commas"), score_response(prompts[1], "*a, b*\nx")]
    metrics = aggregate(scores)
    assert metrics["prompt_level_strict_acc"] == pytest.approx(1 / 2)
    assert metrics["inst_level_strict_acc"] == pytest.approx(2 / 3)
    assert metrics["prompt_level_loose_acc"] == pytest.approx(2 / 2)  # dropping the first line removes the comma
    assert metrics["inst_level_loose_acc"] == pytest.approx(3 / 3)
    assert (metrics["num_prompts"], metrics["num_instructions"]) == (2, 3)
    with pytest.raises(ValueError):
        aggregate([])


def test_a_crashing_checker_scores_zero_and_is_counted(monkeypatch):
    prompt = _prompt(["punctuation:no_comma"], [{}])

    def boom(response):
        raise RuntimeError("bug")

    monkeypatch.setattr(prompt, "checkers", lambda: [boom])
    score = score_response(prompt, "fine")
    assert score.strict == [False] and score.loose == [False]
    # the response and its star-free copy are checked (the other variants are blank): two crashes, both counted
    assert aggregate([score])["num_checker_errors"] == len(score.errors) == 2


# --- data ---------------------------------------------------------------------------------------------------------


def test_load_real_prompts(shared_data):
    prompts = load_prompts(shared_data / "ifeval" / "input_data.jsonl")
    assert len(prompts) == 541
    assert sum(len(p.instruction_id_list) for p in prompts) == 834
    assert {i for p in prompts for i in p.instruction_id_list} == set(INSTRUCTION_IDS)
    assert all(len(p.checkers()) == len(p.instruction_id_list) for p in prompts)  # every row builds
    assert load_prompts(shared_data / "ifeval")[0].key == prompts[0].key  # a directory works too


def test_bad_prompt_rows_name_file_row_and_field(tmp_path):
    path = tmp_path / "input_data.jsonl"
    good = {"key": 1, "prompt": "p", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}
    bad = {**good, "key": 2, "prompt": "q", "kwargs": [{"letter": "a"}]}
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(IFEvalDataError, match=r"input_data.jsonl, line 2, field 'kwargs\[0\]'"):
        load_prompts(path)
    path.write_text(json.dumps({**good, "kwargs": []}) + "\n")
    expected = r", line 1, field 'kwargs': expected one entry per instruction \(1 in 'instruction_id_list'\), found 0"
    with pytest.raises(IFEvalDataError, match=expected):
        load_prompts(path)
    with pytest.raises(FileNotFoundError):
        load_prompts(tmp_path / "missing.jsonl")


def test_unreachable_hub_dataset_points_to_a_local_copy(capsys, tmp_path):
    (tmp_path / "r.jsonl").write_text(json.dumps({"prompt": "p", "response": "r"}) + "\n")
    args = ["--responses", str(tmp_path / "r.jsonl"), "--input-data", "no-such-org/no-such-ifeval"]
    assert ifeval_main(args) == 2  # HF_HUB_OFFLINE=1 in tests
    assert "could not load hub dataset 'no-such-org/no-such-ifeval'" in capsys.readouterr().err


def test_bad_response_rows_name_file_row_and_field(tmp_path):
    path = tmp_path / "responses.jsonl"
    path.write_text(json.dumps({"prompt": "p", "response": "r"}) + "\n" + json.dumps({"prompt": "q"}) + "\n")
    with pytest.raises(IFEvalDataError, match=r"responses.jsonl, line 2, field 'response': expected a string, the field is"):
        read_responses(path)
    path.write_text(json.dumps({"prompt": "p", "response": None}) + "\n")
    with pytest.raises(IFEvalDataError, match=r", line 1, field 'response': expected a string, found null"):
        read_responses(path)


# --- the entry point, end to end ----------------------------------------------------------------------------------


def _write_responses(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_entry_point_scores_real_prompts(tmp_path, shared_data, capsys):
    source = shared_data / "ifeval" / "input_data.jsonl"
    rows = [json.loads(line) for line in source.read_text().splitlines()[:4]]
    input_path = tmp_path / "input_data.jsonl"
    input_path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    # Prompt 1 is "no commas" (follow it), prompt 2 "12 placeholders" (only 1), prompt 3 repeats the request + title.
    responses = [
        {"prompt": rows[1]["prompt"], "response": "Hark thee to Kyoto and Nara and Osaka"},
        {"prompt": rows[2]["prompt"], "response": "Name: [name]"},
        {"prompt": rows[3]["prompt"], "response": rows[3]["prompt"] + "\n<<Goodbye>>\nDear boss, I quit."},
        {"prompt": rows[0]["prompt"], "response": "Short, with a comma."},
        {"prompt": "not an IFEval prompt", "response": "ignored, and counted"},
    ]
    _write_responses(tmp_path / "responses.jsonl", responses)
    out = tmp_path / "out.json"
    assert ifeval_main(["--responses", str(tmp_path / "responses.jsonl"), "--input-data", str(input_path),
                        "--output", str(out), "--output-dir", str(tmp_path / "ref")]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    for name in ("prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc", "inst_level_loose_acc"):
        assert name in printed and name in result
    assert result["prompt_level_strict_acc"] == pytest.approx(2 / 4)
    assert result["inst_level_strict_acc"] == pytest.approx(3 / 7)
    assert result["num_unmatched_responses"] == 1
    by_key = {row["key"]: row for row in result["rows"]}
    assert by_key[rows[0]["key"]]["strict"]["follow_instruction_list"] == [False, False, False]
    assert by_key[rows[3]["key"]]["strict"] == {"follow_all_instructions": True, "follow_instruction_list": [True] * 2}
    strict_file = tmp_path / "ref" / "eval_results_strict.jsonl"
    strict_lines = [json.loads(line) for line in strict_file.read_text().splitlines()]
    assert list(strict_lines[0]) == ["follow_all_instructions", "follow_instruction_list", "instruction_id_list",
                                     "prompt", "response"]  # the reference's own output rows  # fmt: skip
    assert [line["follow_all_instructions"] for line in strict_lines] == [False, True, False, True]


def test_entry_point_fails_loudly_on_missing_responses(tmp_path, shared_data, capsys):
    source = shared_data / "ifeval" / "input_data.jsonl"
    first = json.loads(source.read_text().splitlines()[0])
    _write_responses(tmp_path / "responses.jsonl", [{"prompt": first["prompt"], "response": "x"}])
    args = ["--responses", str(tmp_path / "responses.jsonl"), "--data-dir", str(shared_data)]
    assert ifeval_main(args) == 2
    assert "no response for 540 of 541 prompts" in capsys.readouterr().err
    assert ifeval_main(args + ["--allow-missing", "--output", str(tmp_path / "o.json")]) == 0
    assert json.loads((tmp_path / "o.json").read_text())["num_missing_responses"] == 540


@pytest.mark.slow
def test_module_entry_point_runs_as_a_script(tmp_path, shared_data):
    source = shared_data / "ifeval" / "input_data.jsonl"
    first = json.loads(source.read_text().splitlines()[1])
    input_path = tmp_path / "input_data.jsonl"
    input_path.write_text(json.dumps(first) + "\n")
    _write_responses(tmp_path / "r.jsonl", [{"prompt": first["prompt"], "response": "No commas at all"}])
    command = [sys.executable, "-m", "profit_rl.evals.ifeval", "--responses", str(tmp_path / "r.jsonl"),
               "--input-data", str(input_path)]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "prompt_level_strict_acc" in done.stdout and "100.00" in done.stdout


# --- published reference results -----------------------------------------------------------------------------------


def test_matches_published_gpt4_reference_results():
    """Hand-picked rows of google-research's GPT-4 responses with the reference's own strict/loose verdicts.

    Responses: google-research instruction_following_eval/data/input_response_data_gpt4_20231107_145030.jsonl
    (Apache-2.0). Verdicts: the reference's eval_results_{strict,loose}.jsonl for them, as kept in
    Podtech-AI/IFEval@5bdf377 data/test_output/. Loose verdicts are given where the reference's is not random.
    """
    rows = [json.loads(line) for line in GPT4_FIXTURE.read_text().splitlines()]
    assert rows
    for row in rows:
        prompt = IFEvalPrompt(row["key"], row["prompt"], row["instruction_id_list"], row["kwargs"])
        score = score_response(prompt, row["response"])
        assert score.strict == row["strict_follow_instruction_list"], row["key"]
        if "loose_follow_instruction_list" in row:
            assert score.loose == row["loose_follow_instruction_list"], row["key"]
