"""The graph as micrograd exposes it: ``_prev``, ``_op``, labels, identity of handles,
and micrograd's notebook code (``trace`` and ``draw_dot``) running unchanged."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest

from microcrad.engine import Value

# ---------------------------------------------------------------------------------
# _op
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda a, b: a, ""),
        (lambda a, b: a + b, "+"),
        (lambda a, b: a - b, "-"),
        (lambda a, b: a * b, "*"),
        (lambda a, b: a / b, "/"),
        (lambda a, b: -a, "neg"),
        (lambda a, b: a**b, "**"),
        (lambda a, b: 2**a, "**"),
        (lambda a, b: a**2, "**2"),
        (lambda a, b: a**2.0, "**2"),
        (lambda a, b: a**-1, "**-1"),
        (lambda a, b: a**0.5, "**0.5"),
        (lambda a, b: a**-1.5, "**-1.5"),
        (lambda a, b: a**1e300, "**1e+300"),
        (lambda a, b: a.relu(), "ReLU"),
        (lambda a, b: a.tanh(), "tanh"),
        (lambda a, b: a.exp(), "exp"),
        (lambda a, b: a.log(), "log"),
        (lambda a, b: a.sigmoid(), "sigmoid"),
        (lambda a, b: Value.sum([a, b, a]), "sum"),
    ],
    ids=lambda case: repr(case) if isinstance(case, str) else None,
)
def test_op_names(make: Any, expected: str) -> None:
    assert make(Value(2.0), Value(3.0))._op == expected


def test_op_names_match_micrograds() -> None:
    micrograd_engine = pytest.importorskip("micrograd.engine")

    def expression(make: Any) -> Any:
        x = make(2.0)
        return ((x * 3 + 1).relu() ** 2 + x**0.5) * x

    def ops(root: Any) -> Counter[str]:
        nodes, _ = trace(root)
        return Counter(node._op for node in nodes)

    assert ops(expression(Value)) == ops(expression(micrograd_engine.Value))


def test_custom_node_keeps_the_given_op() -> None:
    a, b = Value(1.0), Value(2.0)
    assert Value(5.0, (a, b), "myop")._op == "myop"
    assert Value(5.0, (a,))._op == ""
    assert Value(5.0, (), "tag")._op == "tag"


# ---------------------------------------------------------------------------------
# _prev
# ---------------------------------------------------------------------------------


def test_prev_of_a_leaf_is_empty() -> None:
    assert Value(1.0)._prev == set()


def test_prev_holds_the_operands() -> None:
    a, b = Value(1.0), Value(2.0)
    assert (a * b)._prev == {a, b}
    assert (a * a)._prev == {a}
    assert (-a)._prev == {a}
    assert Value.sum([a, b, a])._prev == {a, b}


def test_prev_hands_out_the_constructed_objects_themselves() -> None:
    a, b = Value(1.0), Value(2.0)
    assert {id(v) for v in (a + b)._prev} == {id(a), id(b)}


def test_prev_hands_out_one_object_per_node_while_it_is_alive() -> None:
    a = Value(1.0)
    b = a * 2  # an operation result: _prev wraps its node in a handle of its own
    c = b + b.exp()
    first = {v.data: v for v in c._prev}
    again = {v.data: v for v in c._prev}
    assert all(first[key] is again[key] for key in first)
    assert first[2.0] == b and first[2.0] is not b


def test_number_operands_become_leaves_in_prev() -> None:
    a = Value(1.5)
    assert sorted(v.data for v in (a * 4)._prev) == [1.5, 4.0]
    assert sorted(v.data for v in (4 - a)._prev) == [1.5, 4.0]


def test_custom_node_lists_its_children_but_passes_no_gradient() -> None:
    a, b = Value(1.0), Value(2.0)
    node = Value(5.0, [a, b], "myop")
    assert node._prev == {a, b}
    out = node * 2
    out.backward()
    assert node.grad == 2.0
    assert (a.grad, b.grad) == (0.0, 0.0)


# ---------------------------------------------------------------------------------
# Identity, labels, printing
# ---------------------------------------------------------------------------------


def test_handles_of_one_node_are_equal_and_hash_alike() -> None:
    a = Value(1.0)
    twin = copy.copy(a)
    assert a == twin and hash(a) == hash(twin)
    assert len({a, twin}) == 1
    assert a != Value(1.0), "equal data does not make equal nodes"


def test_comparison_with_other_types_is_identity() -> None:
    a = Value(1.0)
    assert a != 1.0
    assert (a == "a") is False


def test_label() -> None:
    assert Value(1.0).label == ""
    a = Value(1.0, label="a")
    assert a.label == "a"
    a.label = "renamed"
    assert a.label == "renamed"


def test_a_labelled_result_is_seen_with_its_label_through_prev() -> None:
    a, b = Value(2.0, label="a"), Value(3.0, label="b")
    e = a * b
    e.label = "e"
    d = e + a
    assert {v.label for v in d._prev} == {"e", "a"}


def test_repr_is_micrograds() -> None:
    x = Value(-4.0)
    y = x * x
    y.backward()
    assert repr(x) == "Value(data=-4.0, grad=-8.0)"
    assert repr(y) == "Value(data=16.0, grad=1.0)"


# ---------------------------------------------------------------------------------
# micrograd's trace_graph notebook, copied unchanged (Digraph is a recording stand-in
# for graphviz's, which may not be installed)
# ---------------------------------------------------------------------------------


class Digraph:
    """Records what draw_dot declares, with graphviz's Digraph methods."""

    def __init__(self, format: str = "svg", graph_attr: dict[str, str] | None = None) -> None:
        self.nodes: dict[str, str] = {}
        self.edges: list[tuple[str, str]] = []

    def node(self, name: str, label: str, shape: str = "") -> None:
        self.nodes[name] = label

    def edge(self, tail: str, head: str) -> None:
        self.edges.append((tail, head))


# fmt: off
def trace(root):
    nodes, edges = set(), set()
    def build(v):
        if v not in nodes:
            nodes.add(v)
            for child in v._prev:
                edges.add((child, v))
                build(child)
    build(root)
    return nodes, edges

def draw_dot(root, format='svg', rankdir='LR'):
    """
    format: png | svg | ...
    rankdir: TB (top to bottom graph) | LR (left to right)
    """
    assert rankdir in ['LR', 'TB']
    nodes, edges = trace(root)
    dot = Digraph(format=format, graph_attr={'rankdir': rankdir}) #, node_attr={'rankdir': 'TB'})

    for n in nodes:
        dot.node(name=str(id(n)), label = "{ data %.4f | grad %.4f }" % (n.data, n.grad), shape='record')
        if n._op:
            dot.node(name=str(id(n)) + n._op, label=n._op)
            dot.edge(str(id(n)) + n._op, str(id(n)))

    for n1, n2 in edges:
        dot.edge(str(id(n1)), str(id(n2)) + n2._op)

    return dot
# fmt: on


def shared_graph() -> Value:
    a = Value(3.0)
    b = a + a
    c = b * b
    d = (c + b).relu() * (2 * b).tanh()
    return d


def test_trace_of_the_notebooks_example() -> None:
    x = Value(1.0)
    y = (x * 2 + 1).relu()
    y.backward()
    nodes, edges = trace(y)
    # x, 2, x*2, 1, x*2+1, relu: the same six nodes and five edges as micrograd.
    assert len(nodes) == 6
    assert len(edges) == 5
    assert Counter(n._op for n in nodes) == Counter({"": 3, "*": 1, "+": 1, "ReLU": 1})


def test_trace_counts_each_shared_node_once() -> None:
    d = shared_graph()
    nodes, edges = trace(d)
    # a, b = a+a, c = b*b, c+b, relu, 2, 2*b, tanh, d
    assert len(nodes) == 9
    # a->b, b->c, c->+, b->+, +->relu, 2->*, b->*, *->tanh, relu->d, tanh->d
    assert len(edges) == 10
    ids = {id(n) for n in nodes}
    assert all(id(child) in ids and id(parent) in ids for child, parent in edges)


def test_draw_dot_declares_every_node_that_an_edge_uses() -> None:
    root = shared_graph()
    root.backward()
    dot = draw_dot(root)
    nodes, _ = trace(root)
    assert len([name for name in dot.nodes if name.isdigit()]) == len(nodes) == 9
    for tail, head in dot.edges:
        assert tail in dot.nodes and head in dot.nodes


def test_draw_dot_renders_with_graphviz() -> None:
    graphviz = pytest.importorskip("graphviz")
    global Digraph
    recording = Digraph
    Digraph = graphviz.Digraph
    try:
        source = draw_dot(shared_graph()).source
    finally:
        Digraph = recording
    assert "ReLU" in source and "tanh" in source
