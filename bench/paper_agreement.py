"""Does `--protocol paper` give the reference's verdict and prompt? Agreement counts against OpenCompass's own code.

    python bench/paper_agreement.py --data-dir ../shared/data --opencompass-python /tmp/ocvenv/bin/python \
        [--model ../shared/models/qwen3-base-twin]

1. A corpus of responses is built from the shared data: for sampled problems of GSM8K, MATH-500, AIME'24 and
   GPQA-Diamond, responses in the formats models write and the reference reads in its own way (a box, two boxes, a
   box holding a final period, an unclosed box, "The answer is N", inline math, a runaway "Question:", commas in
   numbers, `ANSWER:` twice, "Answer: Consider ...", a lower-case letter, ...), right and wrong, seeded.
2. Each response is scored by `get_benchmark(name, "paper").score_many` and by OpenCompass's own scorers
   (bench/opencompass_oracle.py, run by the interpreter of a separate environment that has the OpenCompass package;
   its docstring says how to make one).
3. Every problem of the five benchmarks gets its message list from both; with --model, both are rendered with that
   tokenizer's chat template (ours through the samplers' own path, the reference's as its model class calls the
   template).

Prints agreement counts per benchmark and the first disagreements (never GPQA text: the GPQA authors ask that it is
not published; the corpus and the oracle's output live in a temporary folder that is deleted).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from profit_rl.evals.benchmarks import get_benchmark  # noqa: E402

WRONG_NUMBERS = ["7", "12", "0", "-3", "1000"]


def math_responses(gold: str, rng: random.Random) -> list[str]:
    """Varied responses for a math problem with final answer `gold` (a LaTeX string)."""
    wrong = rng.choice(WRONG_NUMBERS)
    work = "We compute step by step. First, $x + 1 = 2$, so the setup holds.\n"
    forms = [
        f"{work}Therefore the final answer is $\\boxed{{{gold}}}$.",
        f"{work}The answer is {gold}",
        f"{work}The answer is ${gold}$.",
        f"{work}So we get $\\boxed{{{wrong}}}$. Wait, that is wrong; recomputing gives $\\boxed{{{gold}}}$.",
        f"{work}\\boxed{{{gold}}} and \\boxed{{{wrong}}}",
        f"{work}Final answer: \\boxed{{{gold}.}}",
        f"{work}Final answer: \\boxed{{{gold}",
        f"{work}**Final Answer**\n\\[\n\\boxed{{{gold}}}\n\\]",
        f"{work}Answer: {gold}",
        f"{work}The result is \\({gold}\\).",
        f"{work}$\\boxed{{{wrong}}}$",
        f"{work}\\boxed{{\\text{{{gold}}}}}",
        f"{work}So $x = {gold}$.",
        f"{work}The answer is $\\boxed{{{gold}}}$.\n\nQuestion: what is $2+2$? The answer is $\\boxed{{4}}$.",
        f"{work}I cannot determine the answer.",
        f"$\\boxed{{{gold}}}$",
    ]
    return forms


def gsm8k_responses(gold: str, rng: random.Random) -> list[str]:
    number = int(gold) if gold.lstrip("-").isdigit() else 0
    wrong = str(number + rng.choice([1, 2, 10, -1]))
    with_commas = f"{number:,}"
    return [
        f"She has 3 + 4 = 7 apples.\nThe answer is {gold}",
        f"Step 1: 2 * 3 = 6.\nThe answer is {gold}.\n\nQuestion: Tom has 5 cars. How many?\nAnswer: 5",
        f"The total is ${with_commas}.",
        f"The answer is {gold} dollars for 2 days.",
        f"So the answer is \\boxed{{{gold}}}.",
        f"The answer is {gold}.0",
        f"The answer is {wrong}",
        f"#### {gold}",
        f"We get {gold}, then subtract 0.5 to get {number - 0.5}",
        "I am not sure.",
        f"The answer is -{gold}",
        f"Answer: {gold}\nQuestion: next",
    ]


def gpqa_responses(gold: str, rng: random.Random) -> list[str]:
    other = rng.choice([c for c in "ABCD" if c != gold])
    return [
        f"Reasoning about the options.\nANSWER: {gold}",
        f"Answer: Consider the energies first.\nANSWER: {gold}",
        f"ANSWER: {other}\nOn reflection the right one is {gold}.\nANSWER: {gold}",
        f"ANSWER: {gold.lower()}",
        f"The answer is \\boxed{{{gold}}}",
        f"The answer is ({gold}).",
        f"**Answer:** {gold}",
        f"answer:{gold}",
        f"ANSWER: ${gold}$",
        f"ANSWER: ({gold})",
        f"Final answer: {other}",
        "I cannot decide between the options.",
        f"ANSWER : {gold}",
        f"Answer:\n{gold}",
    ]


def build_corpus(data_dir: str, seed: int = 0, per_benchmark: dict | None = None) -> list[dict]:
    """[{benchmark, row, response}]: `row` is the problem's 0-based position in its file."""
    rng = random.Random(seed)
    sizes = per_benchmark or {"gsm8k": 100, "math500": 110, "aime24": 30, "gpqa": 198}
    corpus = []
    for name, n in sizes.items():
        problems = get_benchmark(name, "paper").load(data_dir)
        rows = sorted(rng.sample(range(len(problems)), min(n, len(problems))))
        for row in rows:
            problem = problems[row]
            if name == "gsm8k":
                forms = gsm8k_responses(problem.gold, rng)
            elif name == "gpqa":
                forms = gpqa_responses(problem.gold, rng)
            else:
                forms = math_responses(str(problem.gold), rng)
                if name == "math500":
                    forms = rng.sample(forms, 7)
            corpus += [{"benchmark": name, "row": row, "response": text} for text in forms]
    return corpus


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--opencompass-python", required=True, help="python of an environment with the OpenCompass package")
    p.add_argument("--model", default=None, help="a tokenizer folder: also compare the rendered prompts")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--show", type=int, default=5, help="disagreements to print per benchmark (never GPQA text)")
    args = p.parse_args(argv)

    corpus = build_corpus(args.data_dir, args.seed)
    benchmarks = {name: get_benchmark(name, "paper") for name in ("gsm8k", "math500", "aime24", "gpqa", "ifeval")}
    problems = {name: bench.load(args.data_dir) for name, bench in benchmarks.items()}
    start = time.perf_counter()
    ours = []
    for name in ("gsm8k", "math500", "aime24", "gpqa"):
        items = [c for c in corpus if c["benchmark"] == name]
        scored = benchmarks[name].score_many([(problems[name][c["row"]], c["response"]) for c in items])
        ours += [(c, extracted, score, error) for c, (extracted, score, error) in zip(items, scored)]
    ours_s = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as tmp:  # the corpus holds no GPQA text, the oracle's messages do
        src, dst = Path(tmp) / "in.json", Path(tmp) / "out.json"
        src.write_text(json.dumps({"data_dir": str(Path(args.data_dir).resolve()),
                                   "items": [c for c, *_ in ours]}), encoding="utf-8")
        start = time.perf_counter()
        subprocess.run([args.opencompass_python, str(Path(__file__).with_name("opencompass_oracle.py")), str(src),
                        str(dst)], check=True, stderr=subprocess.DEVNULL)
        ref_s = time.perf_counter() - start
        reference = json.loads(dst.read_text(encoding="utf-8"))

    print(f"responses: {len(ours)} (ours scored in {ours_s:.0f} s, the reference's in {ref_s:.0f} s)")
    agree, total, correct_ours, correct_ref = Counter(), Counter(), Counter(), Counter()
    shown = Counter()
    for (item, extracted, score, error), ref_score, ref_pred in zip(ours, reference["scores"], reference["extracted"]):
        name = item["benchmark"]
        total[name] += 1
        correct_ours[name] += score
        correct_ref[name] += ref_score
        if score == ref_score:
            agree[name] += 1
        elif shown[name] < args.show:
            shown[name] += 1
            text = "(GPQA response, not shown)" if name == "gpqa" else repr(item["response"][-160:])
            print(f"  DISAGREE {name} row {item['row']}: ours {score} ({extracted!r}, {error}) reference {ref_score} "
                  f"({ref_pred!r}): {text}")
    for name in total:
        print(f"{name:8s} verdicts agree on {agree[name]} of {total[name]}; correct: ours {correct_ours[name]:.0f}, "
              f"reference {correct_ref[name]:.0f}")
    print(f"all      verdicts agree on {sum(agree.values())} of {sum(total.values())}")

    tokenizer = None
    if args.model:
        from transformers import AutoTokenizer

        from profit_rl.evals.sampling import render_prompt

        tokenizer = AutoTokenizer.from_pretrained(args.model)
    for name, bench in benchmarks.items():
        same_messages = same_text = 0
        for problem, theirs in zip(problems[name], reference["messages"][name]):
            mine = bench.prompt(problem)
            same_messages += mine == theirs
            if tokenizer is not None:
                rendered = render_prompt(tokenizer, mine, opencompass=True)
                same_text += rendered == tokenizer.apply_chat_template(theirs, add_generation_prompt=True,
                                                                       tokenize=False)
        line = f"{name:8s} message lists identical on {same_messages} of {len(problems[name])} problems"
        if tokenizer is not None:
            line += f"; rendered text identical on {same_text} of {len(problems[name])}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
