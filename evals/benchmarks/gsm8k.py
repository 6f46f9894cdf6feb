"""GSM8K (openai/gsm8k, main/test): grade-school word problems; the gold is the number after the last `####`.

Under `paper` it is OpenCompass's gsm8k_gen_1d7fe4, the config the ProFit reference evaluates with:
- the prompt: four worked examples from GSM8K's train split as alternating chat turns ("Question: ...\\nLet's think
  step by step\\nAnswer:" from the user, a chain of thought ending "The answer is N" from the assistant), then the test
  question in the same form, as the reference's message list (`opencompass.reference_messages`: every user turn ends
  with one extra "\\n");
- the gold: `gsm8k_dataset_postprocess`, the text between the first "#### " and the next, commas removed;
- the answer: the last number (`-?\\d+\\.\\d+|-?\\d+`) in the text before any "Question:" (a model that goes on to
  invent the next exercise is cut there), equal to the gold when the strings match or the numbers differ by < 1e-6
  (OpenCompass's gsm8k_postprocess and Gsm8kEvaluator). Commas are not removed, as there: "1,234" reads as 234.
Under `boxed`: 0-shot, the math prompt and the shared extractor (a box, "####", "the answer is", the last number).
"""

from __future__ import annotations

import re

from .base import Budget, Problem, Row
from .mathlike import MathBenchmark

# OpenCompass's four exemplars: GSM8K train questions word for word, with its own shortened solutions.
FEW_SHOT = (
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
)
_NUMBER = re.compile(r"-?\d+\.\d+|-?\d+")


def question_turn(question: str) -> str:
    """One user turn in gsm8k_gen_1d7fe4's form: "Question: ...", then "Let's think step by step" and "Answer:"."""
    return f"Question: {question}\nLet's think step by step\nAnswer:"


def last_number_before_next_question(completion: str) -> str | None:
    """OpenCompass's GSM8K answer: the last number before the first "Question:" (None when there is none)."""
    numbers = _NUMBER.findall(completion.split("Question:")[0])
    return numbers[-1] if numbers else None


def numbers_equal(pred: str | None, gold: str) -> bool:
    """OpenCompass's Gsm8kEvaluator: equal strings, or |pred - gold| < 1e-6 with the gold read as an integer."""
    if pred is None:
        return False
    if pred == gold:
        return True
    try:
        return abs(float(pred) - int(gold)) < 1e-6
    except ValueError:
        return False


class GSM8K(MathBenchmark):
    """GSM8K's test split: OpenCompass's 4-shot gsm8k_gen_1d7fe4 under `paper`, the 0-shot math prompt under `boxed`."""

    name = "gsm8k"
    title = "GSM8K"
    hub_id = "openai/gsm8k"
    hub_config = "main"
    hub_split = "test"
    local_path = "gsm8k/test.jsonl"
    budgets = {"paper": Budget(8, 8192), "boxed": Budget(8, 2048)}

    @property
    def scorer(self) -> str:
        """Names GSM8K's scoring rule: OpenCompass's gsm8k_postprocess and Gsm8kEvaluator under `paper`, the math
        benchmarks' under `boxed`."""
        if self.protocol == "paper":
            return "opencompass.gsm8k_postprocess+Gsm8kEvaluator"
        return super().scorer

    def to_problem(self, index: int, row: Row) -> Problem:
        """GSM8K's gold: the number after the last `####`, commas removed; reference_gold is the reference's reading
        (the text after the first "#### "). The id is the row index unless the row has one."""
        solution = row.text("answer")
        if "####" not in solution:
            raise row.wrong("answer", "a solution ending in '#### <number>'", solution[-60:])
        gold = solution.rsplit("####", 1)[1].strip().replace(",", "")
        parts = solution.split("#### ")
        reference_gold = parts[1].replace(",", "") if len(parts) > 1 else None  # None: the reference itself would fail
        # GSM8K has no ids; the row index in the test split is stable (the hub and the upstream file share the order)
        return Problem(id=row.scalar("id", required=False) or str(index), question=row.text("question"), gold=gold,
                       meta={"reference_gold": reference_gold, "fields": list(row.items())})

    def prompt(self, problem: Problem) -> list[dict]:
        """`paper`: OpenCompass's four worked examples as earlier chat turns, then the question in the same form;
        `boxed`: the math benchmarks' 0-shot prompt."""
        if self.protocol != "paper":
            return super().prompt(problem)
        from .opencompass import fill, reference_messages

        # every turn of the config goes through the row's fields (PromptList.format); only the last one names any
        rounds = [(question_turn(q), a) for q, a in FEW_SHOT] + [(question_turn("{question}"), None)]
        fields = problem.meta.get("fields") or [("question", problem.question)]  # a Problem built by hand
        return reference_messages([(fill(h, fields, "answer"), None if b is None else fill(b, fields, "answer"))
                                   for h, b in rounds])

    def extract(self, problem: Problem, completion: str) -> str | None:
        """`paper`: the last number before any "Question:" (gsm8k_postprocess); `boxed`: the shared math extractor."""
        if self.protocol != "paper":
            return super().extract(problem, completion)
        return last_number_before_next_question(completion)

    def score_many(self, pairs: list[tuple[Problem, str]]) -> list[tuple[str | None, float, str | None]]:
        """`paper`: the last number before any "Question:" against reference_gold by Gsm8kEvaluator's rule
        (`numbers_equal`); `boxed`: the math benchmarks' scoring. A failure scores 0 with its error."""
        if self.protocol != "paper":
            return super().score_many(pairs)
        out = []
        for problem, completion in pairs:
            try:
                extracted = last_number_before_next_question(completion)
                gold = problem.meta.get("reference_gold", problem.gold)
                out.append((extracted, float(gold is not None and numbers_equal(extracted, gold)), None))
            except Exception as err:  # one bad sample never ends a run
                out.append((None, 0.0, f"{type(err).__name__}: {err}"[:500]))
        return out
