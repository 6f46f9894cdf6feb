"""A synthetic math task that reproduces ProFit's premise in miniature: many phrasings, one determined answer.

Each problem is a short chain of additions and subtractions told as a story ("Mia has 7 marbles. She finds 5 more.
Then she gives away 3. How many marbles does Mia have now?"). Its solution is rendered from a bank of interchangeable
phrasings: every connective, verb and sentence frame is drawn at random, so those words are *trivial* tokens (any
choice is equally right, so a model that learned the distribution gives each one a low probability), while the
numbers, operators and the boxed answer are *core* tokens (fully determined by the problem). This is the paper's
premise: in a single reference answer the low-probability tokens are mostly phrasing, the high-probability ones are the
substance.

Everything here is pure and seeded: the same `TaskConfig` and seed give the same problems, texts and splits, on any
machine. The splits (test, GRPO, SFT, pretraining corpus) never share a problem: identity is the arithmetic itself
(start value and operation chain), not the story's name or item.

Answers are integers written in `\\boxed{}`, the last box of the completion, so the math-verify reward and the shared
answer extractor score this task exactly as they score MATH-500.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from profit_rl.rewards.answers import math_user_message

# The user turn of the SFT set is `user_message(statement)` = `rewards.answers.math_user_message`: the statement, a
# newline, then Qwen's boxed instruction, exactly what the GRPO loader and the evals build from the bare statement
# that the GRPO and test sets carry, so a model is evaluated on the prompt it was trained on.

NAMES = [
    ("Mia", "she"), ("Noah", "he"), ("Ava", "she"), ("Liam", "he"), ("Zoe", "she"), ("Omar", "he"), ("Lena", "she"),
    ("Ben", "he"), ("Ivy", "she"), ("Sam", "he"), ("Nora", "she"), ("Leo", "he"), ("Ella", "she"), ("Max", "he"),
    ("Ruby", "she"), ("Tom", "he"), ("Anna", "she"), ("Eli", "he"), ("Maya", "she"), ("Jack", "he"),
]
ITEMS = [
    "apples", "marbles", "stickers", "coins", "books", "pencils", "cards", "shells", "stamps", "cookies", "buttons",
    "beads", "eggs", "flowers", "toys", "candies", "balloons", "rocks", "tickets", "boxes",
]

# Events. Each problem uses `TaskConfig.min_ops` to `max_ops` of these six roles, always in this order, each at most
# once; the statement says "She <verb> <b>." and every solution step repeats "<verb> <b>" literally, inside freely
# phrased words. That makes the operand a copy of what follows the same verb in the prompt (an induction copy), which a
# tiny transformer learns; events named by synonyms ("a search turns up 4" for "finds 4") or located only by their
# position leave it at chance on the operand (docs/embedded.md, "Design facts").
ROLES = {"finds": "+", "loses": "-", "buys": "+", "gives away": "-", "wins": "+", "sells": "-"}
STATEMENT_EVENT = "{Pron} {event}."
ROLE_ORDER = list(ROLES)
STATEMENT_START = ["{Name} has {a} {items}."]
STATEMENT_THEN = ["", "Then "]
STATEMENT_QUESTION = ["How many {items} does {name} have now?"]

# Solution wording: the trivial tokens. Every slot is an independent uniform choice among 10 to 16 options, most with
# distinct first words, so a model that has learned the distribution gives a slot's first token p of about 1/10 to
# 1/16, at or below ProFit's tau = 0.1.
#
# The core tokens are everything the problem determines, and every *decision* the solution makes is carried by one:
# each step opens with the pronoun ("She", the decision to continue), the conclusion with "So" (the decision to stop),
# and no free slot ever sits right before a core token without at least one word of its own (an optional slot would
# make the next core token compete with the slot's options and put it in the low-p tail too). A free connective
# opening each step ("Then", "Next", ...) or a free closer ("Therefore", ...) would put the stop/continue decision in
# low-p phrasing tokens, which ProFit drops by design, and ProFit SFT would then stop after the wrong number of steps:
# the paper's premise failing, not holding (docs/embedded.md, "Design facts"). The layout below is one where it holds.
OPENINGS = [
    "Let's solve it step by step. ", "We go through it in order. ", "Okay, let's count. ", "Here is how it goes. ",
    "First, read the story. ", "To find out, we track each change. ", "Start from the beginning. ",
    "Just follow the {items}. ", "This is a counting problem. ", "One step at a time. ", "Good question. ",
    "I will keep a running total. ", "Time to count. ", "Each event changes the amount. ", "Simple enough. ",
    "Careful bookkeeping solves this. ",
]
STARTS = [
    "{Name} starts with {a} {items}. ", "At first, {name} has {a} {items}. ", "In the beginning there are {a}. ",
    "{Pron} has {a} {items} to begin with. ", "The starting amount is {a}. ", "Initially, the count is {a}. ",
    "We begin with {a} {items}. ", "Originally {name} owns {a}. ", "Before anything happens, {pron} holds {a}. ",
    "Our total starts at {a}. ", "Count {a} {items} first. ", "There are {a} {items} at the start. ",
]
ADVERBS = [
    "simply", "then", "next", "also", "luckily", "later", "quickly", "happily", "now", "soon", "just", "suddenly",
]
LINKS = [
    ", so ", ", which gives ", ", and ", " and now ", ", making ", ": ", ", hence ", ", that is ", "; thus ",
    ", meaning ", " to get ", ", leaving ",
]
CONCLUSIONS = [
    ", {name} has {box} {items}.", ", the answer is {box}.", ", there are {box} {items} left.", ", we get {box}.",
    ", the total is {box}.", ", {pron} ends with {box}.", " the count is {box}.", " in the end, {box} remain.",
    ", it comes to {box}.", " our result: {box}.", " finally {pron} holds {box}.", " altogether that makes {box}.",
]


@dataclass(frozen=True)
class TaskConfig:
    """What a problem looks like; every field changes the task (and so the embedded model's cache key).

    Args:
        min_ops, max_ops: number of events (distinct roles, at most 6) in a chain; accuracy compounds over them,
            so this is the difficulty knob (with max_value, which sets how many steps carry or borrow).
        start_min, start_max: range of the starting amount.
        operand_min, operand_max: range of each added or removed amount.
        max_value: no intermediate value exceeds it (and none goes below 0), which bounds the arithmetic facts the
            model must learn.
        phrasings_per_problem: how many independently drawn solution phrasings each pretraining problem gets, one
            document each, adjacent in the packed corpus. Two make the events and equations recur literally, which
            is what the copying circuit learns from (with one, learning to copy is a seed-dependent phase transition;
            docs/embedded.md, "Design facts").
        terse_fraction: share of pretraining documents whose solution is terse ("loses 4: 17 - 4 = 13. ..."), no
            phrasing at all; they carry the same copying and arithmetic in a third of the tokens.
    """

    min_ops: int = 2
    max_ops: int = 5
    start_min: int = 100
    start_max: int = 900
    operand_min: int = 1
    operand_max: int = 9   # one digit: two-digit amounts delay learning to copy them past the pretraining budget
    max_value: int = 999   # three digits: carries leave SFT errors to learn from; two-digit arithmetic leaves none
    phrasings_per_problem: int = 2
    terse_fraction: float = 0.0

    def __post_init__(self):
        if not 1 <= self.min_ops <= self.max_ops <= len(ROLES):
            raise ValueError(f"need 1 <= min_ops <= max_ops <= {len(ROLES)}, got {self.min_ops}, {self.max_ops}")
        if not 0 <= self.start_min <= self.start_max <= self.max_value:
            raise ValueError(f"need 0 <= start_min <= start_max <= max_value, got {self}")
        if not 1 <= self.operand_min <= self.operand_max:
            raise ValueError(f"need 1 <= operand_min <= operand_max, got {self}")


@dataclass(frozen=True)
class Problem:
    """One story problem. `key` is its arithmetic identity, the unit of split disjointness."""

    start: int
    events: tuple[tuple[str, int], ...]  # (("finds", 5), ("sells", 3), ...), in ROLE_ORDER
    name: str
    pron: str
    items: str
    statement: str = field(compare=False)

    @property
    def key(self) -> tuple:
        """The arithmetic identity (start, events): problems with the same key are the same problem in other words."""
        return (self.start, self.events)

    @property
    def ops(self) -> tuple[tuple[str, int], ...]:
        """The arithmetic: (("+", 5), ("-", 3), ...)."""
        return tuple((ROLES[role], b) for role, b in self.events)

    @property
    def values(self) -> list[int]:
        """The running amount after each step, starting value first."""
        out = [self.start]
        for op, b in self.ops:
            out.append(out[-1] + b if op == "+" else out[-1] - b)
        return out

    @property
    def answer(self) -> int:
        """The final amount: the last running value."""
        return self.values[-1]

    @property
    def id(self) -> str:
        """A readable id that spells out the arithmetic, e.g. `emb-s7-finds5-sells3`."""
        steps = [f"s{self.start}"] + [f"{role.split()[0]}{b}" for role, b in self.events]
        return "emb-" + "-".join(steps)


def _fill(template: str, **kw) -> str:
    kw = dict(kw)
    if "name" in kw:
        kw["Name"] = kw["name"]
    if "pron" in kw:
        kw["Pron"] = kw["pron"].capitalize()
    return template.format(**kw)


def sample_problem(rng: random.Random, config: TaskConfig) -> Problem:
    """Draw one problem: `min_ops` to `max_ops` distinct roles in ROLE_ORDER, amounts keeping every running value in
    [0, max_value]."""
    n_ops = rng.randint(config.min_ops, config.max_ops)
    roles = [ROLE_ORDER[i] for i in sorted(rng.sample(range(len(ROLES)), n_ops))]
    operands = range(config.operand_min, config.operand_max + 1)
    while True:  # rejection: a start that leaves room for every step (few retries: max_value is generous)
        value = start = rng.randint(config.start_min, config.start_max)
        events = []
        for role in roles:
            sign = ROLES[role]
            choices = [b for b in operands if 0 <= (value + b if sign == "+" else value - b) <= config.max_value]
            if not choices:
                break
            b = rng.choice(choices)
            value = value + b if sign == "+" else value - b
            events.append((role, b))
        if len(events) == n_ops:
            break
    name, pron = rng.choice(NAMES)
    items = rng.choice(ITEMS)
    return state_problem(rng, start, tuple(events), name, pron, items)


def state_problem(rng: random.Random, start: int, events: tuple[tuple[str, int], ...], name: str, pron: str,
                  items: str, starts: list[str] = STATEMENT_START, questions: list[str] = STATEMENT_QUESTION) -> Problem:
    """The problem told as a story: a start sentence, one sentence per event, the question. `starts` and
    `questions` are the task's own by default; the unseen-surface probe (`embedded.probe_sets`) passes others."""
    kw = dict(name=name, pron=pron, items=items)
    sentences = [_fill(rng.choice(starts), a=start, **kw)]
    for i, (role, b) in enumerate(events):
        event = _fill(STATEMENT_EVENT, event=f"{role} {b}", **kw)
        then = rng.choice(STATEMENT_THEN) if i else ""
        sentences.append(then + (event[0].lower() + event[1:] if then else event))
    sentences.append(_fill(rng.choice(questions), **kw))
    return Problem(start=start, events=events, name=name, pron=pron, items=items, statement=" ".join(sentences))


def render_solution(problem: Problem, rng: random.Random) -> list[tuple[str, bool]]:
    """One phrasing of the solution, as (text, is_core) segments whose concatenation is the completion.

    Core segments are what the problem determines: each step's opening pronoun, its event ("finds 4"), the numbers,
    operators, `=`, the concluding "So" and the boxed answer. Everything else (openings, start frames, adverbs, links,
    conclusion frames, and the names and items some frames mention) is a free phrasing choice.
    """
    kw = dict(name=problem.name, pron=problem.pron, items=problem.items)
    segments: list[tuple[str, bool]] = []

    def add_template(template: str, core_values: dict) -> None:
        # Split the template at its core placeholders so that each number becomes its own core segment.
        rest = template
        while rest:
            positions = [(rest.find("{" + k + "}"), k) for k in core_values if "{" + k + "}" in rest]
            if not positions:
                segments.append((_fill(rest, **kw), False))
                break
            pos, key = min(positions)
            if pos:
                segments.append((_fill(rest[:pos], **kw), False))
            segments.append((str(core_values[key]), True))
            rest = rest[pos + len(key) + 2 :]

    add_template(rng.choice(OPENINGS), {})
    values = problem.values
    add_template(rng.choice(STARTS), {"a": values[0]})
    for i, ((role, b), (op, _)) in enumerate(zip(problem.events, problem.ops)):
        segments.append((problem.pron.capitalize(), True))
        segments.append((" " + rng.choice(ADVERBS) + " ", False))
        segments.append((f"{role} {b}", True))
        add_template(rng.choice(LINKS), {})
        segments.append((f"{values[i]} {op} {b} = {values[i + 1]}", True))
        segments.append((". ", False))
    segments.append(("So", True))
    add_template(rng.choice(CONCLUSIONS), {"box": f"\\boxed{{{problem.answer}}}"})
    # Merge neighbours of the same kind so callers see clean spans.
    merged: list[tuple[str, bool]] = []
    for text, core in segments:
        if merged and merged[-1][1] == core:
            merged[-1] = (merged[-1][0] + text, core)
        elif text:
            merged.append((text, core))
    if merged[-1][0].endswith(" "):
        merged[-1] = (merged[-1][0].rstrip(), merged[-1][1])
    return merged


def terse_solution(problem: Problem) -> str:
    """The solution with no phrasing: events, equations and the box only (pretraining documents only)."""
    values = problem.values
    steps = [
        f"{role} {b}: {values[i]} {op} {b} = {values[i + 1]}."
        for i, ((role, b), (op, _)) in enumerate(zip(problem.events, problem.ops))
    ]
    return f"Start {values[0]}. " + " ".join(steps) + f" \\boxed{{{problem.answer}}}"


def solution_text(segments: list[tuple[str, bool]]) -> str:
    """The solution's text: its segments joined."""
    return "".join(text for text, _ in segments)


def segment_core_chars(segments: list[tuple[str, bool]]) -> list[bool]:
    """Per character of `solution_text(segments)`: True where it belongs to a core segment (the exact labels the
    task knows; `inspect.stats.core_char_mask` guesses core characters from any text)."""
    return [core for text, core in segments for _ in text]


def user_message(problem_statement: str) -> str:
    """The user turn: the statement, then the math instruction."""
    return math_user_message(problem_statement)


def pretraining_prompt(statement: str) -> str:
    """The start of a pretraining document, up to where its solution begins: the base model's own prompt layout."""
    return f"Problem: {statement}\nSolution:"


def pretraining_document(problem: Problem, solution: str) -> str:
    """Plain text, no chat markup: the base model learns the math and the phrasings, SFT teaches the chat format."""
    return f"{pretraining_prompt(problem.statement)} {solution}"


@dataclass(frozen=True)
class Splits:
    """The disjoint problem sets of one seed."""

    test: list[Problem]
    grpo: list[Problem]
    sft: list[Problem]


def make_splits(seed: int, config: TaskConfig, n_test: int, n_grpo: int, n_sft: int) -> Splits:
    """Draw `n_test + n_grpo + n_sft` problems with pairwise distinct keys, in that order (test first, so growing the
    SFT or GRPO set never changes the test set)."""
    rng = random.Random(f"embedded-splits-{seed}")
    seen: set[tuple] = set()
    drawn: list[Problem] = []
    total = n_test + n_grpo + n_sft
    attempts = 0
    while len(drawn) < total:
        attempts += 1
        if attempts > 50 * total + 1000:
            raise ValueError(f"cannot draw {total} distinct problems from {config}; widen the ranges or raise max_ops")
        problem = sample_problem(rng, config)
        if problem.key not in seen:
            seen.add(problem.key)
            drawn.append(problem)
    return Splits(test=drawn[:n_test], grpo=drawn[n_test : n_test + n_grpo], sft=drawn[n_test + n_grpo :])


def corpus_problems(seed: int, config: TaskConfig, exclude: set[tuple]) -> Iterator[Problem]:
    """An endless seeded stream of pretraining problems whose keys are not in `exclude`."""
    rng = random.Random(f"embedded-corpus-problems-{seed}")
    while True:
        problem = sample_problem(rng, config)
        if problem.key not in exclude:
            yield problem


def pretraining_corpus(seed: int, config: TaskConfig, n_documents: int, exclude: set[tuple]) -> Iterator[str]:
    """`n_documents` plain-text documents on problems whose keys are not in `exclude` (the SFT, GRPO and test
    problems), each problem written `config.phrasings_per_problem` times in independently drawn phrasings."""
    rng = random.Random(f"embedded-corpus-phrasings-{seed}")
    made = 0
    for problem in corpus_problems(seed, config, exclude):
        for _ in range(config.phrasings_per_problem):
            if made == n_documents:
                return
            if rng.random() < config.terse_fraction:
                yield pretraining_document(problem, terse_solution(problem))
            else:
                yield pretraining_document(problem, solution_text(render_solution(problem, rng)))
            made += 1


@dataclass(frozen=True)
class SftExample:
    """One single-reference SFT row, and the core/trivial segments its completion is made of."""

    row: dict  # TRL's conversational prompt/completion form
    segments: list[tuple[str, bool]]  # `render_solution` output: their concatenation is the completion


def sft_examples(problems: list[Problem], seed: int) -> list[SftExample]:
    """The single-reference SFT set: one drawn phrasing per problem, each row with the segments it was written from."""
    rng = random.Random(f"embedded-sft-{seed}")
    examples = []
    for p in problems:
        segments = render_solution(p, rng)
        examples.append(SftExample(
            row={"prompt": [{"role": "user", "content": user_message(p.statement)}],
                 "completion": [{"role": "assistant", "content": solution_text(segments)}]},
            segments=segments,
        ))
    return examples


def grpo_rows(problems: list[Problem]) -> list[dict]:
    """RL problems: `problem` (the statement), gold `answer`, `id`. The GRPO loader builds the chat prompt from
    `problem` and the instruction, as the evals do."""
    return [{"id": p.id, "problem": p.statement, "answer": str(p.answer)} for p in problems]


def test_rows(problems: list[Problem]) -> list[dict]:
    """The held-out test set, in the same layout as the GRPO set."""
    return grpo_rows(problems)
