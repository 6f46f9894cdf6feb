"""Write Math-Verify's own (gold, prediction, expected) test cases to tests/fixtures/math_verify_cases.jsonl.

    python bench/extract_math_verify_cases.py MATH_VERIFY_TESTS_DIR [--out tests/fixtures/math_verify_cases.jsonl]

MATH_VERIFY_TESTS_DIR is the tests/ folder of a Math-Verify checkout (GitHub huggingface/Math-Verify) or of its
release archive (`pip download math-verify==0.9.0 --no-binary :all: --no-deps`). This reads the test files as
syntax trees and evaluates only the argument lists of their `pytest.mark.parametrize` decorators: it runs none of
their code. One JSON line per case: gold, pred, expected (0 or 1), where it comes from (file::test), and the settings
that test passes to math-verify beyond the defaults (for reading the expected value). Run once; the fixture and its
PROVENANCE.md are what the tests and bench/math_verify_parity.py read. See tests/fixtures/PROVENANCE.md for the set.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
from pathlib import Path

# The files whose cases form the 270 of the issue (#22): every parametrized case with a gold, a prediction and an
# expected verdict. test_boxed.py (3 cases) and test_strict.py (2, the `strict` flag) are left out of that set.
FILES = ("test_all.py", "test_numina_cases.py", "test_open_thoughts.py", "test_yujianll.py")
# What a test passes to its helper beyond the helper's defaults, by test function. test_all.py's `compare_strings`
# (used by test_numina_cases.py and test_open_thoughts.py too) parses with match_types=["latex", "expr"] (its latex
# config has boxed_match_priority=0) and verifies with precision 6; test_yujianll.py calls plain parse and verify.
# The expected value is what the test asserts under its settings.
SETTINGS = {
    "test_number_extraction": {"match_types": ["expr"]},
    "test_latex_notation": {"match_types": ["latex"]},
    "test_latex_notation_math": {"match_types": ["latex"]},
    "test_relations_math": {"match_types": ["latex"]},
    "test_matrix_extraction": {"match_types": ["latex"]},
    "test_set_rel_assymetry": {"match_types": ["latex"]},
    "test_float_precision": {"precision": 5},
    "test_sqrt_precision": {"precision": 5},
    "test_symbols": {"precision": 5},
}
EXTRA_ARGS = ("precision", "strict", "allow_set_relation_comp", "match_types")


def parametrized_cases(path: Path):
    """(test name, argument dict) for every parametrized case of one test file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            if not (isinstance(decorator, ast.Call) and getattr(decorator.func, "attr", "") == "parametrize"):
                continue
            names = ast.literal_eval(decorator.args[0])
            names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
            # The lists are literals, except one f-string that formats math.sqrt(17): evaluate the list expression
            # alone, with `math` and no builtins.
            values = eval(compile(ast.Expression(decorator.args[1]), str(path), "eval"),  # noqa: S307
                          {"__builtins__": {}, "math": math})
            for value in values:
                # One entry of test_open_thoughts.py holds six values for three names; pytest pairs names and values
                # by position, so its first three are the case.
                yield node.name, dict(zip(names, value))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tests_dir", type=Path)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "math_verify_cases.jsonl")
    args = parser.parse_args()
    rows = []
    for name in FILES:
        for test, case in parametrized_cases(args.tests_dir / name):
            expected = case.get("expected", case.get("result"))
            if "gold" not in case or "pred" not in case or expected is None:
                continue
            settings = dict(SETTINGS.get(test, {}))
            settings.update({k: case[k] for k in EXTRA_ARGS if k in case})
            rows.append({"gold": case["gold"], "pred": case["pred"], "expected": int(expected),
                         "source": f"tests/{name}::{test}", "settings": settings})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(rows)} cases -> {args.out}")


if __name__ == "__main__":
    main()
