"""GPQA-Diamond (Idavidrein/gpqa, config gpqa_diamond; gated): 198 four-choice science questions.

The dataset stores the correct answer first, so the options are put in another order:
- `paper`: OpenCompass's GPQADataset order, which the reference uses: data row r (1-based) takes the rotation
  ABCD/BCDA/CDAB/DABC numbered r mod 4, so the correct option lands on D, C, B, A, D, ... down the file. It matches the
  reference's letters when the rows are in the order of the file OpenCompass reads (the official CSV's);
- `boxed`: a shuffle seeded by the question id, the same in every run and on every machine, correct letter uniform.

Prompts: `paper` uses the simple-evals prompt of gpqa_openai_simple_evals_gen_5aeece ("... The last line of your
response should be of the following format: 'ANSWER: $LETTER' ..."), filled and sent as the reference does
(`opencompass.fill`, `opencompass.reference_messages`); `boxed` asks for the letter in a \\boxed{}.

Scoring:
- `paper`: the reference's GPQA_Simple_Eval_postprocess and GPQAEvaluator (`opencompass.gpqa_letter`): the FIRST
  `(?i)ANSWER\\s*:\\s*([A-D])` anywhere in the response, compared with the gold letter as written;
- `boxed`: the toolkit's own judgement: only the final committed letter counts (`committed_letter`).

Do not print or commit question text: the GPQA authors ask that examples are not revealed online.
"""

from __future__ import annotations

import hashlib
import random
import re

from .base import Benchmark, Budget, Problem, Row

LETTERS = "ABCD"
SHUFFLE_SALT = "profit-rl-gpqa-v1"  # part of the permutation seed; changing it changes every question's letter order
ROTATIONS = ("ABCD", "BCDA", "CDAB", "DABC")  # OpenCompass's circular patterns, indexed by (1-based row) mod 4
SIMPLE_EVALS_PROMPT = (
    "Answer the following multiple choice question. The last line of your response should be of the following "
    "format: 'ANSWER: $LETTER' (without quotes) where LETTER is one of ABCD. Think step by step before answering."
    "\n\n{question}\n\nA) {A}\nB) {B}\nC) {C}\nD) {D}"
)


def choice_order(question_id: str) -> list[int]:
    """`boxed`: permutation of [correct, wrong1, wrong2, wrong3] for this question (independent of PYTHONHASHSEED)."""
    seed = int.from_bytes(hashlib.sha256(f"{SHUFFLE_SALT}:{question_id}".encode()).digest()[:8], "big")
    order = [0, 1, 2, 3]
    random.Random(seed).shuffle(order)
    return order


def rotation_order(row: int) -> list[int]:
    """`paper`: which of [correct, wrong1, wrong2, wrong3] each letter shows for 0-based data row `row`."""
    return [LETTERS.index(c) for c in ROTATIONS[(row + 1) % 4]]


# ---- the committed letter ----------------------------------------------------------------------------------------
# A letter commits only where it stands alone: not followed by another letter ("B or C", "A/B", "A, B"), nor by a verb
# that makes it the subject of a remark ("Answer: B is incorrect"), nor by more letters of a word ("Answer: Both").
_ALONE = (r"\)?(?![A-Za-z0-9])"
          r"(?!\s*(?:or|and|nor|vs\.?|versus|is|are|was|were|isn't|seems?|appears?|could|might|may|would|can|cannot"
          r"|can't|does|doesn't|did|didn't|fails?|looks?|has|have|had|must|should|will|won't)\b)"
          r"(?!\s*[/&,]\s*\(?[A-D]\b)(?!\s*-\s*\(?[A-D]\b)")
_COMMITMENTS = [
    # the simple-evals form: "ANSWER: B", "Final answer: (B)", "**Answer:** B"
    re.compile(r"(?i:\banswer)\s*:\s*\$?\(?\s*([A-D])" + _ALONE),
    # "the answer is (B)", "the correct option is B", "the final answer would be: B"
    re.compile(r"(?i:\b(?:answer|option|choice)\s+(?:is|would\s+be|should\s+be|must\s+be)\s*:?\s*"
               r"(?:option\s+|choice\s+)?)\(?\s*([A-D])" + _ALONE),
    # a box holding only a letter: \boxed{B}, \boxed{(B)}, \boxed{\text{B}}
    re.compile(r"\\boxed\s*\{\s*(?:\\text(?:bf)?\s*\{\s*)?\(?\s*([A-D])\s*\)?\s*\}?\s*\}"),
]
_BOXED_TEXT = re.compile(r"\\boxed\s*\{((?:[^{}]|\{[^{}]*\})*)\}")
# After the sentence that commits, any of these naming ANOTHER letter reopens the question: (C), C), option C, boxed C,
# "maybe C", a line that is only "C". Bare capitals are not counted: "vitamin D", "the C=O bond" are not options.
_LATER_MENTIONS = re.compile(
    r"\(\s*([A-D])\s*\)|\b([A-D])\)|(?i:\b(?:option|choice|answer)s?)\s*\(?([A-D])\b|\\boxed\s*\{[^{}]*?\b([A-D])\b"
    r"|(?i:\b(?:maybe|perhaps|possibly|probably|actually|rather|instead|or)\s+)\(?([A-D])\b|^\s*([A-D])[.)]?\s*$",
    re.M,
)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")


def _normalise(text: str) -> str:
    return re.sub(r"[\s$\\{}]|\\text", "", str(text)).lower()


def committed_letter(completion: str, choices: list[str] | None = None) -> str | None:
    """The letter a response finally commits to, or None.

    A commitment is `ANSWER: X`, "the answer is (X)" (or "the correct option is X"), or a box holding X or the exact
    text of one option. The last commitment counts, and only if the response then leaves it alone: a later sentence
    that names another option ("(C)", "option C", "maybe C") makes the response non-committal. Mentions before the
    commitment, or in its own sentence, are reasoning and do not matter."""
    text = completion.replace("**", "").replace("__", "")
    found = []  # (end offset, letter)
    for pattern in _COMMITMENTS:
        found += [(m.end(), m.group(1)) for m in pattern.finditer(text)]
    if choices:
        for m in _BOXED_TEXT.finditer(text):
            value = _normalise(m.group(1))
            hits = [LETTERS[i] for i, c in enumerate(choices) if _normalise(c) == value]
            if len(hits) == 1:
                found.append((m.end(), hits[0]))
    if not found:
        return None
    end, letter = max(found)
    sentence_end = _SENTENCE_END.search(text, end)
    rest = text[sentence_end.end():] if sentence_end else ""
    for m in _LATER_MENTIONS.finditer(rest):
        if next(g for g in m.groups() if g) != letter:
            return None
    return letter


class GPQADiamond(Benchmark):
    """GPQA-Diamond: four-choice questions whose options each protocol orders its own way (see the module docstring);
    gated on the hub."""

    name = "gpqa"
    title = "GPQA-Diamond"
    hub_id = "Idavidrein/gpqa"
    hub_config = "gpqa_diamond"
    hub_split = "train"  # the hub dataset has one split
    local_path = "gpqa_diamond/gpqa_diamond.jsonl"
    gated = True
    budgets = {"paper": Budget(8, 8192), "boxed": Budget(8, 4096)}

    @property
    def scorer(self) -> str:
        """Names GPQA's scoring rule: OpenCompass's first `ANSWER: X` under `paper`, `committed_letter` under
        `boxed`."""
        if self.protocol == "paper":
            return "opencompass.GPQA_Simple_Eval_postprocess+GPQAEvaluator-v1"
        return "gpqa.committed_letter-v2"

    def to_problem(self, index: int, row: Row) -> Problem:
        """GPQA's row: the four options in the protocol's order (`paper`: the rotation of the row's number, `boxed`: a
        shuffle seeded by the id); the gold is the correct option's letter."""
        qid = row.scalar("id", "Record ID")
        options = [
            row.scalar("correct_answer", "Correct Answer"),
            row.scalar("incorrect_answer_1", "Incorrect Answer 1"),
            row.scalar("incorrect_answer_2", "Incorrect Answer 2"),
            row.scalar("incorrect_answer_3", "Incorrect Answer 3"),
        ]
        question = row.text("question", "Question")
        if self.protocol == "paper":
            # OpenCompass formats the CSV's values as they are, and numbers the rows in file order
            order = rotation_order(row.integer("index", minimum=0) if "index" in row else index)
            choices = [options[i] for i in order]
            gold = next(LETTERS[i] for i, c in enumerate(choices) if c == options[0])
        else:
            order = choice_order(qid)
            choices = [options[i].strip() for i in order]
            gold = LETTERS[order.index(0)]
            question = question.strip()
        # `paper`: GPQADataset's row (opencompass/datasets/gpqa.py): question, A-D, then the gold letter
        fields = [("question", question), *zip(LETTERS, choices), ("answer", gold)]
        return Problem(id=qid, question=question, gold=gold,
                       meta={"choices": choices, "domain": row.get("high_level_domain", row.get("High-level domain")),
                             "fields": fields})

    def prompt(self, problem: Problem) -> list[dict]:
        """`paper`: the simple-evals prompt, filled and sent as the reference does; `boxed`: the question, the lettered
        options and a request for the letter in a \\boxed{}."""
        choices = problem.meta["choices"]
        if self.protocol == "paper":
            from .opencompass import fill, reference_messages

            fields = problem.meta.get("fields") or [("question", problem.question), *zip(LETTERS, choices)]
            return reference_messages([(fill(SIMPLE_EVALS_PROMPT, fields, "answer"), None)])
        options = "\n".join(f"{letter}) {choice}" for letter, choice in zip(LETTERS, choices))
        return [{
            "role": "user",
            "content": f"{problem.question}\n\n{options}\n\nPlease reason step by step, and put the letter of your "
                       "final answer (A, B, C or D) within \\boxed{}.",
        }]

    def extract(self, problem: Problem, completion: str) -> str | None:
        """The answer letter: under `paper` the first `ANSWER: X` (in the case written), under `boxed` the letter the
        response finally commits to (`committed_letter`)."""
        if self.protocol == "paper":
            from .opencompass import gpqa_letter

            return gpqa_letter(completion)
        return committed_letter(completion, problem.meta.get("choices"))

    def score(self, problem: Problem, completion: str) -> float:
        """1.0 when the extracted letter is the gold letter exactly."""
        return float(self.extract(problem, completion) == problem.gold)
