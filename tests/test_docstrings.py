"""Every public callable of profit_rl, profit_rl.evals and profit_rl.rewards has a docstring.

The check parses the sources with `ast` (nothing is imported, so it takes well under a second). Public means:
module-level functions and classes whose names do not start with "_", and the methods of those classes whose names do
not start with "_" (dunders and private methods are skipped), except a property's setter or deleter and an
`@overload`. Every module needs a module docstring too. `python tests/test_docstrings.py` prints the counts.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# evals/ and rewards/ install as profit_rl.evals and profit_rl.rewards (pyproject.toml's package-dir)
PACKAGES = ("profit_rl", "evals", "rewards")

def _modules() -> list[Path]:
    found = []
    for package in PACKAGES:
        for root, dirs, files in os.walk(REPO / package):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            found.extend(Path(root) / f for f in sorted(files) if f.endswith(".py"))
    return found


def _decorator_names(node: ast.AST) -> set[str]:
    names = set()
    for d in getattr(node, "decorator_list", []):
        if isinstance(d, ast.Call):
            d = d.func
        if isinstance(d, ast.Attribute):
            names.add(d.attr)  # typing.overload -> "overload", x.setter -> "setter"
        elif isinstance(d, ast.Name):
            names.add(d.id)
    return names


def _top_level(body: list[ast.stmt]):
    """Yields the statements of a body, looking inside module-level if/try blocks (e.g. optional imports)."""
    for node in body:
        if isinstance(node, ast.If):
            yield from _top_level(node.body)
            yield from _top_level(node.orelse)
        elif isinstance(node, ast.Try):
            for part in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                yield from _top_level(part)
        else:
            yield node


_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _public_defs(body: list[ast.stmt], prefix: str = ""):
    """Yields (node, dotted name) for each public def in a module or class body, and in public classes within it."""
    for node in _top_level(body):
        if not isinstance(node, _DEFS) or node.name.startswith("_"):
            continue
        if {"overload", "setter", "deleter"} & _decorator_names(node):
            continue
        yield node, prefix + node.name
        if isinstance(node, ast.ClassDef):
            yield from _public_defs(node.body, prefix + node.name + ".")


def audit() -> tuple[int, int, list[str]]:
    """Returns (public callables, how many have a docstring, "path:line name" for each one that lacks one or for a
    module without a docstring), over every module of PACKAGES."""
    total = documented = 0
    missing = []
    for path in _modules():
        rel = path.relative_to(REPO).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        if ast.get_docstring(tree) is None:
            missing.append(f"{rel}:1 (module docstring)")
        for node, name in _public_defs(tree.body):
            total += 1
            if ast.get_docstring(node) is None:
                missing.append(f"{rel}:{node.lineno} {name}")
            else:
                documented += 1
    return total, documented, missing


def test_every_public_callable_has_a_docstring():
    total, documented, missing = audit()
    assert total > 300, f"the walk found only {total} public callables: is it looking in the right folders?"
    assert not missing, f"{len(missing)} missing docstring(s) ({documented} of {total} callables have one):\n" + (
        "\n".join(missing)
    )


if __name__ == "__main__":
    total, documented, missing = audit()
    print(f"{documented} of {total} public callables have a docstring; {len(missing)} missing (modules included)")
    print("\n".join(missing))
