"""microcrad.viz: the nodes and edges that draw_dot and to_dot declare, rendering to
SVG with Graphviz, and the errors."""

from __future__ import annotations

import re
import shutil
import sys

import pytest

from microcrad import viz
from microcrad.engine import Value

graphviz = pytest.importorskip("graphviz")
needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz's dot program is not installed"
)


def shared_graph() -> Value:
    """relu((a + a) * (a + a) + (a + a)): five nodes, b = a + a used three times."""
    a = Value(3.0, label="a")
    b = a + a
    c = b * b
    return (c + b).relu()


# Nodes: a, b, c, c + b, relu. Op nodes: the four results'. Edges: an op node into
# its result (4), and an operand into an op node, once per distinct operand: a -> +,
# b -> *, c -> +, b -> +, (c + b) -> relu (5).
N_RECORDS, N_OPS, N_EDGES = 5, 4, 9


def records_ops_edges(lines: list[str]) -> tuple[list[str], list[str], list[str]]:
    records = [line for line in lines if "shape=record" in line]
    edges = [line for line in lines if "->" in line]
    ops = [line for line in lines if "label=" in line and "shape=record" not in line]
    return records, ops, edges


def op_label(line: str) -> str:
    """The label of an op node's line, quoted (C, graphviz) or not (graphviz)."""
    match = re.search(r'label=(?:"([^"]*)"|([^\s\]]+))', line)
    assert match is not None, line
    return match.group(1) if match.group(1) is not None else match.group(2)


# ---------------------------------------------------------------------------------
# draw_dot
# ---------------------------------------------------------------------------------


def test_draw_dot_declares_one_node_per_value_and_its_edges() -> None:
    a = Value(3.0, label="a")  # a label lives on its handle: this one is kept alive
    b = a + a
    root = (b * b + b).relu()
    root.backward()
    dot = viz.draw_dot(root)
    assert isinstance(dot, graphviz.Digraph)
    records, ops, edges = records_ops_edges(dot.body)
    assert (len(records), len(ops), len(edges)) == (N_RECORDS, N_OPS, N_EDGES)
    assert sorted(op_label(op) for op in ops) == ["*", "+", "+", "ReLU"]
    source = dot.source
    assert "rankdir=LR" in source
    assert "{ data 42.0000 | grad 1.0000 }" in source  # the root: 6 * 6 + 6
    assert "{ a | data 3.0000 | grad 26.0000 }" in source  # d/da of (2a)^2 + 2a = 8a + 2


def test_every_edge_joins_declared_nodes() -> None:
    dot = viz.draw_dot(shared_graph())
    names = {line.split()[0] for line in dot.body if "->" not in line}
    for line in dot.body:
        if "->" in line:
            tail, _, head = line.split()[:3]
            assert tail in names and head in names


def test_a_node_repeated_in_one_sum_is_drawn_once() -> None:
    a, b = Value(1.0), Value(2.0)
    total = Value.sum([a, a, b, a])
    records, ops, edges = records_ops_edges(viz.draw_dot(total).body)
    assert (len(records), len(ops), len(edges)) == (3, 1, 3)
    assert "sum" in ops[0]


def test_constant_powers_and_rankdir() -> None:
    x = Value(2.0)
    dot = viz.draw_dot(x**2, format="png", rankdir="TB")
    assert dot.format == "png"
    assert "rankdir=TB" in dot.source
    assert 'label="**2"' in dot.source


def test_labels_with_record_syntax_are_escaped() -> None:
    x = Value(1.0, label="{w|b}")
    assert r"\{w\|b\}" in viz.draw_dot(x).source


def test_a_deep_graph_needs_no_recursion() -> None:
    x = Value(0.0)
    for _ in range(sys.getrecursionlimit() + 100):
        x = x + 1
    records, _, _ = records_ops_edges(viz.draw_dot(x).body)
    assert len(records) == 2 * (sys.getrecursionlimit() + 100) + 1  # each + adds a leaf 1


@needs_dot
def test_draw_dot_renders_to_svg() -> None:
    root = shared_graph()
    root.backward()
    svg = viz.draw_dot(root).pipe(format="svg").decode("utf-8")
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    # Graphviz draws each node as a <g class="node"> and each edge as a <g class="edge">.
    assert svg.count('class="node"') == N_RECORDS + N_OPS
    assert svg.count('class="edge"') == N_EDGES
    assert "ReLU" in svg and "data 36.0000" in svg


def test_draw_dot_errors() -> None:
    with pytest.raises(TypeError):
        viz.draw_dot(3.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rankdir"):
        viz.draw_dot(Value(1.0), rankdir="XY")


def test_without_graphviz_draw_dot_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "graphviz", None)  # makes `import graphviz` fail
    with pytest.raises(ImportError, match="pip install graphviz"):
        viz.draw_dot(Value(1.0))
    assert "digraph" in viz.to_dot(Value(1.0))  # to_dot needs no package


# ---------------------------------------------------------------------------------
# to_dot (the C library's writer)
# ---------------------------------------------------------------------------------


def test_to_dot_text() -> None:
    root = shared_graph()
    root.backward()
    text = viz.to_dot(root)
    lines = text.strip().splitlines()
    assert lines[0] == "digraph {" and lines[1].strip() == "rankdir=LR;" and lines[-1] == "}"
    records, ops, edges = records_ops_edges(lines)
    assert (len(records), len(ops), len(edges)) == (N_RECORDS, N_OPS, N_EDGES)
    assert sorted(op_label(op) for op in ops) == ["*", "+", "+", "ReLU"]
    assert "{ data 42.0000 | grad 1.0000 }" in text
    assert "{ a | data 3.0000 | grad 26.0000 }" in text  # the C picture shows labels too


def test_to_dot_agrees_with_draw_dot_on_the_counts() -> None:
    x = Value(-2.0)
    y = ((x * x).tanh() + x.exp() / 3 - x.sigmoid()) ** 2
    y.backward()
    assert [len(part) for part in records_ops_edges(viz.to_dot(y).splitlines())] == [
        len(part) for part in records_ops_edges(viz.draw_dot(y).body)
    ]


def test_to_dot_of_a_large_graph() -> None:
    x = Value(1.0)
    total = Value.sum([x * i for i in range(5000)])
    text = viz.to_dot(total)
    assert text.count("shape=record") == 1 + 5000 * 2 + 1  # x, each i and x*i, the sum


@needs_dot
def test_to_dot_is_valid_for_graphviz() -> None:
    svg = graphviz.Source(viz.to_dot(shared_graph())).pipe(format="svg").decode("utf-8")
    assert svg.count('class="node"') == N_RECORDS + N_OPS
    assert svg.count('class="edge"') == N_EDGES


def test_to_dot_errors() -> None:
    with pytest.raises(TypeError):
        viz.to_dot("x")  # type: ignore[arg-type]
