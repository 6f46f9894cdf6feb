"""GPQA-Diamond (Idavidrein/gpqa, config gpqa_diamond; gated): 198 four-choice science questions.

The dataset stores the correct answer first, so choices are shuffled with a seed derived from the question id: the
same question gets the same order in every run and on every machine, and the correct letter is uniform over A-D.

Do not print or commit question text: the GPQA authors ask that examples are not revealed online.
"""

from __future__ import annotations

import hashlib
import random
import re

from .base import Benchmark, Problem, Row

LETTERS = "ABCD"
SHUFFLE_SALT = "profit-rl-gpqa-v1"  # part of the permutation seed; changing it changes every question's letter order


def choice_order(question_id: str) -> list[int]:
    """Permutation of [correct, wrong1, wrong2, wrong3] for this question (independent of PYTHONHASHSEED)."""
    seed = int.from_bytes(hashlib.sha256(f"{SHUFFLE_SALT}:{question_id}".encode()).digest()[:8], "big")
    order = [0, 1, 2, 3]
    random.Random(seed).shuffle(order)
    return order


# Patterns that commit to a letter, strongest first; within one pattern the last match wins (models restate options
# while reasoning and answer at the end).
_LETTER = r"\(?\s*([ABCD])\s*\)?"
_COMMIT_PATTERNS = [
    re.compile(r"\\boxed\s*\{\s*(?:\\text(?:bf)?\s*\{\s*)?\(?\s*([ABCD])\s*\)?\s*\}?\s*\}"),
    re.compile(r"(?i:answer)\s*(?:is|:)?\s*[:\-]?\s*\**\s*(?:option|choice)?\s*\**\s*" + _LETTER + r"(?![A-Za-z])"),
    re.compile(r"(?i:the\s+(?:correct|best|right)\s+(?:answer|option|choice)\s+is)\s*\**\s*" + _LETTER + r"(?![A-Za-z])"),
    re.compile(r"(?i:option|choice)\s+" + _LETTER + r"\s*(?i:is\s+correct)"),
]


def extract_letter(completion: str, choices: list[str] | None = None) -> str | None:
    """The letter a completion commits to: \\boxed{B}, "Answer: B", "the answer is (B)", a final line "(B)", or a
    boxed choice text equal to one option. None when nothing commits."""
    text = completion.replace("**", "")
    for pattern in _COMMIT_PATTERNS:
        matches = pattern.findall(text)
        if matches:
            return matches[-1].upper()
    if choices:  # \boxed{<the text of an option>}
        boxed = re.findall(r"\\boxed\s*\{(.+?)\}\s*$", text.strip(), flags=re.S)
        if boxed:
            value = _normalise(boxed[-1])
            hits = [LETTERS[i] for i, c in enumerate(choices) if _normalise(c) == value]
            if len(hits) == 1:
                return hits[0]
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if lines:
        last = re.fullmatch(r"\(?([ABCD])[\).:]?", lines[-1])
        if last:
            return last.group(1)
    return None


def _normalise(text: str) -> str:
    return re.sub(r"[\s$\\{}]|\\text", "", str(text)).lower()


class GPQADiamond(Benchmark):
    name = "gpqa"
    title = "GPQA-Diamond"
    hub_id = "Idavidrein/gpqa"
    hub_config = "gpqa_diamond"
    hub_split = "train"  # the hub dataset has one split
    local_path = "gpqa_diamond/gpqa_diamond.jsonl"
    gated = True
    max_new_tokens = 4096
    scorer = "gpqa.extract_letter-v1"

    def to_problem(self, index: int, row: Row) -> Problem:
        qid = row.scalar("id", "Record ID")
        options = [
            row.scalar("correct_answer", "Correct Answer"),
            row.scalar("incorrect_answer_1", "Incorrect Answer 1"),
            row.scalar("incorrect_answer_2", "Incorrect Answer 2"),
            row.scalar("incorrect_answer_3", "Incorrect Answer 3"),
        ]
        order = choice_order(qid)
        choices = [options[i].strip() for i in order]
        gold = LETTERS[order.index(0)]
        return Problem(id=qid, question=row.text("question", "Question").strip(), gold=gold,
                       meta={"choices": choices, "domain": row.get("high_level_domain", row.get("High-level domain"))})

    def prompt(self, problem: Problem) -> list[dict]:
        options = "\n".join(f"{letter}) {choice}" for letter, choice in zip(LETTERS, problem.meta["choices"]))
        return [{
            "role": "user",
            "content": f"{problem.question}\n\n{options}\n\nPlease reason step by step, and put the letter of your "
                       "final answer (A, B, C or D) within \\boxed{}.",
        }]

    def extract(self, problem: Problem, completion: str) -> str | None:
        return extract_letter(completion, problem.meta.get("choices"))

    def score(self, problem: Problem, completion: str) -> float:
        return float(self.extract(problem, completion) == problem.gold)
