"""Pictures for teaching: draw_dot's reference counts and topological positions, and
the step-through of backward (microcrad.stepthrough), rendered as HTML."""

from __future__ import annotations

import math
import shutil

import pytest

from microcrad import _lib, stepthrough, viz
from microcrad.engine import Value

graphviz = pytest.importorskip("graphviz")
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's dot program is not installed")


def test_draw_dot_shows_reference_counts() -> None:
    x = Value(2.0, label="x")
    y = x * x  # y holds two references to x (one per operand slot)
    z = y + x  # and z one more
    source = viz.draw_dot(z, show_refcount=True).source
    # x: two from y, one from z, one from the Python handle `x`.
    assert "{ x | data 2.0000 | grad 0.0000 | refs 4 }" in source
    assert _lib.c.value_ref_count(x._ptr) == 4
    del z
    assert "refs 3" in viz.draw_dot(y, show_refcount=True, show_order=False).source


def test_draw_dot_shows_the_topological_order() -> None:
    a, b = Value(1.0, label="a"), Value(2.0, label="b")
    c = a * b
    c.label = "c"
    d = c + a
    d.label = "d"
    order = viz.topological_order(d)
    assert order[-1] == d and order.index(c) > max(order.index(a), order.index(b))
    source = viz.draw_dot(d, show_order=True).source
    for node in (a, b, c, d):
        assert f"{node.label} | data {node.data:.4f} | grad 0.0000 | topo {order.index(node)} }}" in source


def test_topological_order_of_a_deep_chain_needs_no_recursion() -> None:
    x = Value(0.0)
    for _ in range(5000):
        x = x + 1
    assert len(viz.topological_order(x)) == 10001


def _graph() -> tuple[Value, list[Value]]:
    """A small graph with every kind of edge: a node used twice, unary and binary ops."""
    a, b = Value(0.5, label="a"), Value(-1.5, label="b")
    c = a * b + a.tanh()
    d = (c ** 2 + b.exp() / a - a.relu() + b.sigmoid()).log()
    return d, [a, b, c]


def test_the_step_by_step_backward_ends_where_backward_does() -> None:
    root, nodes = _graph()
    frames = stepthrough.backward_frames(root)
    stepped = [n.grad for n in nodes]
    twin, twin_nodes = _graph()
    twin.backward()
    for mine, theirs in zip(stepped, (n.grad for n in twin_nodes)):
        assert math.isclose(mine, theirs, rel_tol=1e-12, abs_tol=1e-15)
    # A first frame, then one per node; the root goes first, leaves get theirs last.
    order = viz.topological_order(root)
    assert len(frames) == len(order) + 1
    assert frames[0].processed is None and frames[0].grads[root] == 1.0
    assert all(g == 0.0 for n, g in frames[0].grads.items() if n != root)
    assert [f.processed for f in frames[1:]] == list(reversed(order))


def test_each_frame_grows_only_the_processed_nodes_operands() -> None:
    a = Value(3.0, label="a")
    b = a * a  # a's grad grows by 2a * grad(b) in b's step, all at once
    root = b + a
    frames = stepthrough.backward_frames(root)
    by_node = {f.processed: f for f in frames[1:]}
    before_b = frames[frames.index(by_node[b]) - 1]
    assert by_node[b].grads[a] - before_b.grads[a] == pytest.approx(2 * 3.0)
    assert by_node[root].grads[a] == 1.0 and by_node[root].grads[b] == 1.0


def test_the_library_step_and_the_written_out_step_give_the_same_frames() -> None:
    root, _ = _graph()
    by_library = stepthrough.backward_frames(root, step=stepthrough.node_step)
    by_python = stepthrough.backward_frames(root, step=stepthrough.local_step)
    assert [f.processed for f in by_library] == [f.processed for f in by_python]
    for mine, theirs in zip(by_library, by_python):
        for node, grad in mine.grads.items():
            assert math.isclose(grad, theirs.grads[node], rel_tol=1e-12, abs_tol=1e-15)


def test_the_step_is_a_parameter() -> None:
    calls: list[Value] = []
    root = Value(1.0) + Value(2.0)
    stepthrough.backward_frames(root, step=calls.append)
    assert calls == list(reversed(viz.topological_order(root)))


@needs_dot
def test_render_html_is_one_self_contained_page_with_a_picture_per_frame() -> None:
    root, _ = _graph()
    page = stepthrough.render_html(root, show_refcount=True)
    frames = len(viz.topological_order(root)) + 1
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count("<svg") == frames and page.count('class="frame"') == frames
    assert "src=" not in page and "href=\"http" not in page  # nothing to fetch
    assert "passes its grad on" in page and "topo 0" in page and "refs" in page
    assert page.count("fill=\"gold\"") == frames - 1  # one highlighted node per step


def test_topological_order_puts_every_node_after_its_operands() -> None:
    import random

    rng = random.Random(7)
    pool = [Value(rng.uniform(-1, 1)) for _ in range(4)]
    for _ in range(60):  # random reuse: many nodes reachable along several paths
        a, b = rng.choice(pool), rng.choice(pool)
        pool.append(a * b if rng.random() < 0.5 else a + b)
    root = Value.sum(pool[-10:])
    order = viz.topological_order(root)
    position = {node: i for i, node in enumerate(order)}
    assert len(position) == len(order)  # each node once
    for node in order:
        for operand in node._prev:
            assert position[operand] < position[node]
    assert order[-1] == root
    assert order == viz.topological_order(root)  # the same every time
