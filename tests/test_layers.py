"""The package's layers hold: no module imports upward, training and evals never import each other, every module
states its one job in its docstring's first line and stays under MAX_LINES (scripts/import_graph.py reads the graph)."""

from __future__ import annotations

import ast
import importlib.util
import sys

from tests.test_docstrings import REPO

spec = importlib.util.spec_from_file_location("import_graph", REPO / "scripts" / "import_graph.py")
import_graph = importlib.util.module_from_spec(spec)
sys.modules["import_graph"] = import_graph
spec.loader.exec_module(import_graph)

MAX_LINES = 450
# A module over MAX_LINES is one concept that reads best in one piece; each says why.
LONG_ON_PURPOSE: dict[str, str] = {}


def test_no_import_breaks_a_layer_rule():
    assert import_graph.violations() == []


def test_the_rules_catch_an_upward_and_a_sideways_import():
    graph = import_graph.import_graph()
    graph["profit_rl.core.io"] = graph["profit_rl.core.io"] | {"profit_rl.pipeline.report"}
    graph["profit_rl.sft"] = graph["profit_rl.sft"] | {"profit_rl.evals.metrics"}
    found = import_graph.violations(graph)
    assert any(line.startswith("profit_rl.core.io -> profit_rl.pipeline.report: imports upward") for line in found)
    assert any(line.startswith("profit_rl.sft -> profit_rl.evals.metrics:") and "never import" in line for line in found)


def test_training_code_imports_nothing_from_evals():
    graph = import_graph.import_graph()
    training = [m for m in graph if (import_graph.layer_of(m) or (0, ""))[1] in ("rules", "data", "training")]
    assert training, "no training modules found: the layer table is out of date"
    assert {m: sorted(t for t in graph[m] if t.startswith("profit_rl.evals")) for m in training
            if any(t.startswith("profit_rl.evals") for t in graph[m])} == {}


def test_every_module_states_its_job_and_stays_short():
    problems = []
    for module, path in import_graph.module_files().items():
        text = path.read_text(encoding="utf-8")
        doc = ast.get_docstring(ast.parse(text))
        if not doc or not doc.strip().splitlines()[0].strip():
            problems.append(f"{module}: no docstring stating its job")
        lines = text.count("\n")
        if lines > MAX_LINES and module not in LONG_ON_PURPOSE:
            problems.append(f"{module}: {lines} lines (over {MAX_LINES}); split it or say why in LONG_ON_PURPOSE")
    assert problems == []


def test_module_names_are_distinct():
    """No two modules share a file name (a reader who hears `runner.py` knows which), outside `__init__`/`__main__`."""
    seen: dict[str, list[str]] = {}
    for module, path in import_graph.module_files().items():
        if path.name not in ("__init__.py", "__main__.py"):
            seen.setdefault(path.name, []).append(module)
    assert {name: mods for name, mods in seen.items() if len(mods) > 1} == {}
