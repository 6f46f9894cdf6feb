"""The synthetic task of the embedded default: seeded, correct by construction, disjoint splits, single references."""

import itertools
import random
import re

import pytest

from profit_rl.embedded import task as T

CONFIG = T.TaskConfig()
EQUATION = re.compile(r"(\d+) ([+-]) (\d+) = (\d+)")


def test_same_seed_same_data_and_other_seed_other_data():
    a = T.make_splits(0, CONFIG, 20, 20, 50)
    b = T.make_splits(0, CONFIG, 20, 20, 50)
    c = T.make_splits(1, CONFIG, 20, 20, 50)
    assert a == b and [p.statement for p in a.sft] == [p.statement for p in b.sft]
    assert T.sft_examples(a.sft, 0) == T.sft_examples(b.sft, 0)
    assert list(T.pretraining_corpus(0, CONFIG, 30, set())) == list(T.pretraining_corpus(0, CONFIG, 30, set()))
    assert [p.key for p in a.test] != [p.key for p in c.test]
    # the reference phrasing is drawn from the seed too
    assert [e.row for e in T.sft_examples(a.sft, 0)] != [e.row for e in T.sft_examples(a.sft, 1)]


def test_growing_sft_or_grpo_never_changes_the_test_set():
    small = T.make_splits(0, CONFIG, 30, 10, 10)
    large = T.make_splits(0, CONFIG, 30, 200, 500)
    assert small.test == large.test


def test_answers_are_correct_by_construction():
    splits = T.make_splits(3, CONFIG, 50, 50, 200)
    rng = random.Random(0)
    for problem in splits.test + splits.grpo + splits.sft:
        # The statement names the start and each event's amount, in order, each event by its own verb.
        numbers = [int(n) for n in re.findall(r"\d+", problem.statement)]
        assert numbers == [problem.start] + [b for _, b in problem.events]
        verbs = re.findall(r"finds|loses|buys|gives away|wins|sells", problem.statement)
        assert verbs == [role for role, _ in problem.events]
        roles = [role for role, _ in problem.events]
        assert roles == sorted(set(roles), key=T.ROLE_ORDER.index)  # distinct roles, canonical order
        expected = problem.start
        for op, b in problem.ops:
            expected = expected + b if op == "+" else expected - b
            assert 0 <= expected <= CONFIG.max_value
        assert problem.answer == expected
        assert CONFIG.min_ops <= len(problem.ops) <= CONFIG.max_ops
        # Every phrasing's arithmetic is right, chained, and boxed once, at the end.
        text = T.solution_text(T.render_solution(problem, rng))
        equations = EQUATION.findall(text)
        assert len(equations) == len(problem.ops)
        previous = problem.start
        for (a, op, b, c), (true_op, true_b) in zip(equations, problem.ops):
            a, b, c = int(a), int(b), int(c)
            assert (a, op, b) == (previous, true_op, true_b)
            assert c == (a + b if op == "+" else a - b)
            previous = c
        assert re.findall(r"\\boxed\{(\d+)\}", text) == [str(problem.answer)]


def test_core_segments_hold_all_the_math_and_trivial_ones_none():
    rng = random.Random(1)
    for problem in T.make_splits(0, CONFIG, 0, 0, 100).sft:
        segments = T.render_solution(problem, rng)
        text = T.solution_text(segments)
        mask = T.segment_core_chars(segments)
        assert len(mask) == len(text)
        for ch, core in zip(text, mask):
            if ch.isdigit() or ch in "+=\\{}":
                assert core, (ch, text)
        for seg, core in segments:
            if not core:
                assert not re.search(r"\d|\\boxed|finds|loses|buys|gives away|wins|sells", seg), seg
        # every decision is a core token: each step opens with the pronoun, the conclusion with "So"
        core_segments = [seg for seg, core in segments if core]
        assert core_segments.count(problem.pron.capitalize()) == len(problem.events) and "So" in core_segments
        # each event of the problem appears literally, as core text, in problem order
        core_text = " | ".join(seg for seg, core in segments if core)
        assert re.findall(r"(?:finds|loses|buys|gives away|wins|sells) \d+", core_text) == [
            f"{role} {b}" for role, b in problem.events
        ]


def test_splits_are_disjoint_and_corpus_avoids_them():
    splits = T.make_splits(0, CONFIG, 200, 1000, 2000)
    keys = [{p.key for p in part} for part in (splits.test, splits.grpo, splits.sft)]
    assert [len(k) for k in keys] == [200, 1000, 2000]  # no duplicates inside a split either
    for a, b in itertools.combinations(keys, 2):
        assert not a & b
    reserved = set().union(*keys)
    corpus = list(itertools.islice(T.corpus_problems(0, CONFIG, reserved), 5000))
    assert not {p.key for p in corpus} & reserved
    ids = [p.id for p in splits.test + splits.grpo + splits.sft]
    assert len(set(ids)) == len(ids)


def test_sft_set_has_one_reference_per_problem_in_many_phrasings():
    problems = T.make_splits(0, CONFIG, 0, 0, 300).sft
    examples = T.sft_examples(problems, 0)
    rows = [e.row for e in examples]
    assert len(rows) == len(problems)
    assert len({r["prompt"][0]["content"] for r in rows}) == len(rows)  # each problem once: a single reference
    for row, problem in zip(rows, problems):
        assert row["prompt"] == [{"role": "user", "content": T.user_message(problem.statement)}]
        assert [m["role"] for m in row["completion"]] == ["assistant"]
    # The references are phrased in many ways: openings vary across rows.
    openings = {r["completion"][0]["content"].split(". ")[0] for r in rows}
    assert len(openings) >= 12
    # each row carries the segments its completion was written from (the premise measurement relies on it)
    assert [T.solution_text(e.segments) for e in examples] == [r["completion"][0]["content"] for r in rows]


def test_grpo_and_test_rows_carry_statement_and_gold_answer():
    splits = T.make_splits(0, CONFIG, 5, 5, 0)
    for rows, problems in ((T.grpo_rows(splits.grpo), splits.grpo), (T.test_rows(splits.test), splits.test)):
        for row, problem in zip(rows, problems):
            assert row == {"id": problem.id, "problem": problem.statement, "answer": str(problem.answer)}


def test_bad_config_fails_loudly():
    with pytest.raises(ValueError, match="min_ops"):
        T.TaskConfig(min_ops=3, max_ops=2)
    with pytest.raises(ValueError, match="max_ops"):
        T.TaskConfig(max_ops=7)
    with pytest.raises(ValueError, match="distinct problems"):
        T.make_splits(0, T.TaskConfig(min_ops=1, max_ops=1, start_min=2, start_max=2, max_value=3), 0, 0, 50)
