"""The import graph of profit_rl by layer, and the rules it must keep: `python scripts/import_graph.py [--check|--dot]`.

    python scripts/import_graph.py            # each module's layer and what it imports, bottom layer first
    python scripts/import_graph.py --check    # exit 1 with every import that breaks a rule (tests/test_layers.py)
    python scripts/import_graph.py --dot      # graphviz: modules clustered by layer

The graph is read from the sources with `ast` (nothing is imported), with the repository's evals/ and rewards/ read
as `profit_rl.evals` and `profit_rl.rewards`, the names they install under (pyproject.toml's package-dir). Imports
inside functions count too: a lazy import is still a dependency.

The rules (docs/development.md#layers):
1. A module imports only modules of its own layer or a lower one (LAYERS, bottom first).
2. Training and evals are side by side and never import each other: evals scores any model folder, whoever made it.
3. Importing the `profit_rl` package itself (for `__version__`) is allowed everywhere: every submodule import runs
   it anyway.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCES = {"profit_rl": "profit_rl", "evals": "profit_rl.evals", "rewards": "profit_rl.rewards"}

# Bottom first. A module belongs to the layer of its longest matching prefix.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("profit_rl.core", "profit_rl.deprecated")),
    ("rewards", ("profit_rl.rewards",)),
    ("rules", ("profit_rl.losses", "profit_rl.protected", "profit_rl.configs", "profit_rl.runs", "profit_rl.recipes")),
    ("data", ("profit_rl.data",)),
    ("training", ("profit_rl.trainer", "profit_rl.cards", "profit_rl.sft", "profit_rl.grpo")),
    ("evals", ("profit_rl.evals",)),
    ("tools", ("profit_rl.inspect", "profit_rl.models", "profit_rl.embedded")),
    ("pipeline", ("profit_rl.pipeline",)),
    ("front", ("profit_rl.cli", "profit_rl.env", "profit_rl.guides", "profit_rl.__main__")),
]
# Siblings that never import each other, whatever their layer numbers say.
APART = [({"rules", "data", "training"}, {"evals"})]


def module_files() -> dict[str, Path]:
    """Every module of the package by its installed name."""
    modules = {}
    for folder, package in SOURCES.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = list(path.relative_to(REPO / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    return modules


def _imported_names(node: ast.AST, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    # `from pkg import name` names a submodule when pkg.name is one; else it names an attribute of pkg
    return [f"{target}.{alias.name}" for alias in node.names] + [target]


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (the most specific existing module of each import)."""
    modules = module_files()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        edges = set()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            for name in _imported_names(node, module, path.name == "__init__.py"):
                while name and name not in modules:
                    name = name.rpartition(".")[0]
                if name and name != module:
                    edges.add(name)
        graph[module] = edges
    # `from pkg import a, b` adds pkg itself as well as pkg.a; keep pkg only where no more specific target was found
    for module, edges in graph.items():
        graph[module] = {e for e in edges if not any(o.startswith(e + ".") for o in edges)}
    return graph


def layer_of(module: str) -> tuple[int, str] | None:
    """(index, name) of the module's layer, by its longest matching prefix; None for the package root."""
    best = None
    for index, (name, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[2]:
                    best = (index, name, len(prefix))
    return None if best is None else best[:2]


def violations(graph: dict[str, set[str]] | None = None) -> list[str]:
    """Every import that breaks a rule, as 'A -> B: why'; and every module that belongs to no layer."""
    graph = import_graph() if graph is None else graph
    found = []
    for module in sorted(graph):
        if module == "profit_rl":
            continue
        own = layer_of(module)
        if own is None:
            found.append(f"{module}: in no layer (add it to LAYERS in scripts/import_graph.py)")
            continue
        for target in sorted(graph[module]):
            if target == "profit_rl":
                continue
            theirs = layer_of(target)
            if theirs is None:
                continue
            if theirs[0] > own[0]:
                found.append(f"{module} -> {target}: imports upward ({own[1]} imports {theirs[1]})")
            for left, right in APART:
                if (own[1] in left and theirs[1] in right) or (own[1] in right and theirs[1] in left):
                    found.append(f"{module} -> {target}: {own[1]} and {theirs[1]} never import each other")
    return found


def dot(graph: dict[str, set[str]]) -> str:
    """The graph in graphviz's language, one cluster per layer."""
    lines = ["digraph profit_rl {", "  rankdir=BT; node [shape=box, fontsize=10];"]
    for index, (name, _) in enumerate(LAYERS):
        members = [m for m in graph if (layer_of(m) or (None,))[0] == index]
        lines.append(f'  subgraph cluster_{index} {{ label="{index} {name}"; ' + " ".join(f'"{m}";' for m in members) + " }")
    for module, edges in sorted(graph.items()):
        lines += [f'  "{module}" -> "{target}";' for target in sorted(edges)]
    return "\n".join(lines + ["}"])


def main(argv: list[str] | None = None) -> int:
    """Print the graph by layer, check the rules (--check), or print graphviz (--dot)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 listing every import that breaks a rule")
    parser.add_argument("--dot", action="store_true", help="print the graph in graphviz's language")
    args = parser.parse_args(argv)
    graph = import_graph()
    if args.dot:
        print(dot(graph))
        return 0
    if not args.check:
        by_layer = defaultdict(list)
        for module in sorted(graph):
            by_layer[(layer_of(module) or (-1, "package root"))].append(module)
        for (index, name), members in sorted(by_layer.items()):
            print(f"{index} {name}")
            for module in members:
                print(f"    {module} -> {', '.join(sorted(graph[module])) or '-'}")
    broken = violations(graph)
    for line in broken:
        print(line, file=sys.stderr)
    if args.check and not broken:
        print(f"{len(graph)} modules in {len(LAYERS)} layers: every import points down or sideways")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
