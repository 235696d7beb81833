"""The first hour of Karpathy's micrograd lecture, step by step, as a learner types it.

Each test runs on microcrad and, wherever micrograd 0.1.0 (the pip release) has the
feature, on micrograd too: the same code must give the same answers on both. What
micrograd lacks is said next to the test that skips it (the label argument of the
constructor, tanh and exp, graphs deeper than Python's recursion limit, recomputed
interior gradients).
"""

from __future__ import annotations

import gc
import math
import random
import subprocess
import sys
import types
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import microcrad
import microcrad.engine
import microcrad.nn
from microcrad import viz

micrograd_engine = pytest.importorskip("micrograd.engine")
micrograd_nn = pytest.importorskip("micrograd.nn")

ENGINES = {
    "micrograd": types.SimpleNamespace(Value=micrograd_engine.Value, nn=micrograd_nn),
    "microcrad": types.SimpleNamespace(Value=microcrad.engine.Value, nn=microcrad.nn),
}


@pytest.fixture(params=sorted(ENGINES))
def engine(request: pytest.FixtureRequest) -> types.SimpleNamespace:
    """The engine under test: its Value class and its nn module."""
    return ENGINES[request.param]


def microcrad_only(engine: types.SimpleNamespace, why: str) -> None:
    if engine.Value is not microcrad.engine.Value:
        pytest.skip(f"micrograd 0.1.0 {why}")


# ---------------------------------------------------------------------------------
# Helpers a learner writes in the lecture, in this project's words
# ---------------------------------------------------------------------------------


def nodes_and_edges(root: Any) -> tuple[list[Any], list[tuple[Any, Any]]]:
    """Every node reachable through ``_prev`` and every (operand, result) edge: what
    the lecture's drawing function collects. Keyed by id(), as the lecture does."""
    seen: dict[int, Any] = {id(root): root}
    edges = []
    stack = [root]
    while stack:
        node = stack.pop()
        for child in node._prev:
            edges.append((child, node))
            if id(child) not in seen:
                seen[id(child)] = child
                stack.append(child)
    return list(seen.values()), edges


def picture(root: Any) -> set[tuple[str, str, float, float]]:
    """The drawing's content: (label, op, data, grad) for each node."""
    nodes, _ = nodes_and_edges(root)
    return {(n.label, n._op, float(n.data), float(n.grad)) for n in nodes}


def reverse_topological(root: Any) -> list[Any]:
    """Every node after all the nodes computed from it (the root first), built without
    recursion so that deep graphs work too."""
    order: list[Any] = []
    visited: set[int] = set()
    stack: list[tuple[Any, Iterator[Any]]] = [(root, iter(root._prev))]
    visited.add(id(root))
    while stack:
        node, children = stack[-1]
        child = next(children, None)
        if child is None:
            order.append(node)
            stack.pop()
        elif id(child) not in visited:
            visited.add(id(child))
            stack.append((child, iter(child._prev)))
    return order[::-1]


def expression(Value: Any, labelled_in_constructor: bool) -> Any:
    """The lecture's first expression L = (a*b + c) * f, every node labelled, of which
    only L is returned."""
    if labelled_in_constructor:
        a = Value(2.0, label="a")
        b = Value(-3.0, label="b")
        c = Value(10.0, label="c")
        f = Value(-2.0, label="f")
    else:
        a, b, c, f = Value(2.0), Value(-3.0), Value(10.0), Value(-2.0)
        a.label, b.label, c.label, f.label = "a", "b", "c", "f"
    e = a * b
    e.label = "e"
    d = e + c
    d.label = "d"
    L = d * f
    L.label = "L"
    return L


def sin(self: Any) -> Any:
    """A new op, defined as micrograd is extended (the node's own _backward)."""
    out = type(self)(math.sin(self.data), (self,), "sin")

    def _backward() -> None:
        self.grad += math.cos(self.data) * out.grad

    out._backward = _backward
    return out


def tanh(self: Any) -> Any:
    """tanh as the lecture first writes it: one op, with its derivative 1 - t**2."""
    x = self.data
    t = (math.exp(2 * x) - 1) / (math.exp(2 * x) + 1)
    out = type(self)(t, (self,), "tanh")

    def _backward() -> None:
        self.grad += (1 - t**2) * out.grad

    out._backward = _backward
    return out


# ---------------------------------------------------------------------------------
# Labels and the drawing
# ---------------------------------------------------------------------------------


def test_labels_set_as_attributes_survive_when_only_the_root_remains(
    engine: types.SimpleNamespace,
) -> None:
    L = expression(engine.Value, labelled_in_constructor=False)
    gc.collect()
    L.backward()
    labels = {label: (op, data, grad) for label, op, data, grad in picture(L)}
    assert sorted(labels) == ["L", "a", "b", "c", "d", "e", "f"]
    assert labels["e"] == ("*", -6.0, -2.0)
    assert labels["d"] == ("+", 4.0, -2.0)
    assert labels["a"] == ("", 2.0, 6.0)
    assert labels["L"] == ("*", -8.0, 1.0)


def test_labels_given_to_the_constructor_are_drawn_after_only_the_root_remains(
    engine: types.SimpleNamespace,
) -> None:
    microcrad_only(engine, "has no label argument")
    L = expression(engine.Value, labelled_in_constructor=True)
    gc.collect()
    other = expression(engine.Value, labelled_in_constructor=False)
    assert picture(L) == picture(other)
    # Both pictures microcrad draws show every label.
    text = viz.to_dot(L)
    for label in "abcdefL":
        assert f"{{ {label} | data " in text
    graph = viz.draw_dot(L)
    assert sum(f"{{ {label} | data" in line for line in graph.body for label in "abcdefL") == 7


def test_a_hand_made_op_text_is_kept_by_every_handle(engine: types.SimpleNamespace) -> None:
    x = engine.Value(3.0)
    square = engine.Value(9.0, (x,), "square")
    (twin,) = [n for n in nodes_and_edges(square + 1)[0] if n._op == "square"]
    assert twin._op == "square"
    del square
    gc.collect()
    y = twin * 2
    del twin
    gc.collect()
    assert sorted(n._op for n in nodes_and_edges(y)[0]) == ["", "", "*", "square"]


# ---------------------------------------------------------------------------------
# Back-propagation by hand, one node's _backward() at a time
# ---------------------------------------------------------------------------------


def manual_backward(root: Any) -> None:
    """The lecture's manual pass: the root's grad set to 1, then every node's own
    _backward() in reverse topological order."""
    root.grad = 1.0
    for node in reverse_topological(root):
        node._backward()


def test_manual_backward_steps_match_backward(engine: types.SimpleNamespace) -> None:
    by_hand = expression(engine.Value, labelled_in_constructor=False)
    automatic = expression(engine.Value, labelled_in_constructor=False)
    manual_backward(by_hand)
    automatic.backward()
    assert picture(by_hand) == picture(automatic)


def test_manual_steps_one_by_one_as_the_lecture_does(engine: types.SimpleNamespace) -> None:
    Value = engine.Value
    a, b, c, f = Value(2.0), Value(-3.0), Value(10.0), Value(-2.0)
    e = a * b
    d = e + c
    L = d * f
    L.grad = 1.0
    L._backward()
    assert (d.grad, f.grad) == (-2.0, 4.0)
    d._backward()
    assert (e.grad, c.grad) == (-2.0, -2.0)
    e._backward()
    assert (a.grad, b.grad) == (6.0, -4.0)
    for leaf in (a, b, c, f):
        leaf._backward()  # a leaf's step does nothing
    assert [v.grad for v in (a, b, c, f)] == [6.0, -4.0, -2.0, 4.0]


def test_manual_backward_through_a_network(engine: types.SimpleNamespace) -> None:
    random.seed(7)
    model = engine.nn.MLP(3, [4, 4, 1])
    xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5]]

    def loss() -> Any:
        return sum((model(x) - y) ** 2 for x, y in zip(xs, [1.0, -1.0]))

    manual_backward(loss())
    by_hand = [p.grad for p in model.parameters()]
    model.zero_grad()
    loss().backward()
    assert [p.grad for p in model.parameters()] == pytest.approx(by_hand, rel=1e-12)


# ---------------------------------------------------------------------------------
# The manual neuron with tanh
# ---------------------------------------------------------------------------------


def neuron(Value: Any, activation: Callable[[Any], Any]) -> tuple[Any, list[Any]]:
    """The lecture's two-input neuron, o = tanh(x1*w1 + x2*w2 + b)."""
    x1, x2 = Value(2.0, (), ""), Value(0.0)
    w1, w2 = Value(-3.0), Value(1.0)
    b = Value(6.8813735870195432)
    x1w1 = x1 * w1
    x2w2 = x2 * w2
    n = x1w1 + x2w2 + b
    return activation(n), [x1, w1, x2, w2]


def test_the_manual_neuron_with_tanh_as_a_custom_op(engine: types.SimpleNamespace) -> None:
    o, (x1, w1, x2, w2) = neuron(engine.Value, tanh)
    assert o._op == "tanh"
    assert o.data == pytest.approx(math.sqrt(0.5), rel=1e-12)
    o.backward()
    local = 1 - o.data**2
    assert x1.grad == pytest.approx(w1.data * local)
    assert w1.grad == pytest.approx(x1.data * local)
    assert x2.grad == pytest.approx(w2.data * local)
    assert w2.grad == 0.0


def test_the_manual_neuron_built_in_and_by_hand_agree(engine: types.SimpleNamespace) -> None:
    microcrad_only(engine, "has no tanh and no exp")
    built_in, params_built_in = neuron(engine.Value, lambda n: n.tanh())
    custom, params_custom = neuron(engine.Value, tanh)

    def via_exp(n: Any) -> Any:  # the lecture's second version: tanh through exp
        e = (2 * n).exp()
        return (e - 1) / (e + 1)

    through_exp, params_exp = neuron(engine.Value, via_exp)
    for root in (built_in, custom, through_exp):
        manual_backward(root)
    assert built_in.data == pytest.approx(custom.data, rel=1e-15)
    assert through_exp.data == pytest.approx(custom.data, rel=1e-15)
    for p, q, r in zip(params_built_in, params_custom, params_exp):
        assert p.grad == pytest.approx(q.grad, rel=1e-12, abs=1e-15)
        assert r.grad == pytest.approx(q.grad, rel=1e-12, abs=1e-15)


# ---------------------------------------------------------------------------------
# New ops defined in Python
# ---------------------------------------------------------------------------------


@pytest.fixture
def with_sin(engine: types.SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The engine's Value with a sin method, added as a learner adds it."""
    monkeypatch.setattr(engine.Value, "sin", sin, raising=False)
    return engine.Value


def test_a_custom_op(with_sin: Any) -> None:
    x = with_sin(0.5)
    y = x.sin() * 3 + x
    y.backward()
    assert x.grad == pytest.approx(3 * math.cos(0.5) + 1, rel=1e-15)
    (s,) = [n for n in nodes_and_edges(y)[0] if n._op == "sin"]
    assert s.data == math.sin(0.5)


def test_a_custom_op_used_twice_in_one_graph(with_sin: Any) -> None:
    x = with_sin(0.25)
    s = x.sin()
    y = s * s  # d/dx sin(x)**2 = 2 sin cos
    y.backward()
    assert x.grad == pytest.approx(2 * math.sin(0.25) * math.cos(0.25), rel=1e-15)


def test_a_custom_op_3000_deep(engine: types.SimpleNamespace, with_sin: Any) -> None:
    microcrad_only(engine, "sorts the graph recursively: 3,000 levels pass Python's recursion limit")
    x = with_sin(0.3)
    y, expected, value = x, 1.0, 0.3
    for _ in range(3000):
        y = y.sin()
        expected *= math.cos(value)
        value = math.sin(value)
    y.backward()
    assert y.data == pytest.approx(value, rel=1e-12)
    assert x.grad == pytest.approx(expected, rel=1e-9)


def test_a_second_backward_recomputes_a_custom_op_like_a_built_in_one(
    engine: types.SimpleNamespace, with_sin: Any
) -> None:
    microcrad_only(engine, "adds each pass to the interior gradients")
    x = with_sin(0.5)
    s = x.sin()
    y = s * 3
    y.backward()
    first = (x.grad, s.grad)
    y.backward()
    assert s.grad == first[1] == 3.0, "interior: recomputed"
    assert x.grad == 2 * first[0], "leaf: accumulated"


def test_an_exception_in_a_custom_op_propagates_as_itself(
    engine: types.SimpleNamespace, with_sin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    Value = engine.Value
    failure = ArithmeticError("from inside _backward")
    armed = [True]

    def fragile(self: Any) -> Any:
        out = Value(2 * self.data, (self,), "fragile")

        def _backward() -> None:
            if armed[0]:
                raise failure
            self.grad += 2 * out.grad

        out._backward = _backward
        return out

    monkeypatch.setattr(Value, "fragile", fragile, raising=False)
    x = Value(1.5)
    y = (x.sin().fragile() * x).fragile()
    with pytest.raises(ArithmeticError) as raised:
        y.backward()
    assert raised.value is failure
    # The raised exception's traceback holds y (backward's frame), and _backward holds
    # the exception: a cycle through the C node, which Python's collector cannot
    # break (README, "Differences from micrograd"). Dropping the traceback breaks it.
    failure.__traceback__ = None
    del raised
    armed[0] = False
    if Value is microcrad.engine.Value:
        # Nothing of the failed pass is left behind: a new pass gives exactly what a
        # fresh graph gives.
        x.grad = 0.0
        y.backward()
        fresh_x = Value(1.5)
        fresh = (fresh_x.sin().fragile() * fresh_x).fragile()
        fresh.backward()
        assert picture(y) == picture(fresh)
        assert x.grad == fresh_x.grad
        # and no function outlives its node
        from microcrad._lib import _nodes as _custom_ops

        kept = len(_custom_ops._functions)
        del y, fresh
        microcrad._lib.flush_releases()  # the dropped Values' releases are batched
        assert len(_custom_ops._functions) == kept - 6  # sin and two fragile, twice
    else:
        y.backward()  # later passes run
        assert x.grad != 0.0


def test_a_custom_op_frees_its_function_with_its_node(engine: types.SimpleNamespace) -> None:
    microcrad_only(engine, "keeps its nodes in reference cycles, freed only by the collector")
    Value = engine.Value
    base = microcrad.live_values()
    gc.collect()
    gc.disable()
    try:
        x = Value(0.5)
        out = sin(x)
        function = weakref.ref(out._backward)
        root = out * 2 + 1
        del out
        root.backward()
        assert function() is not None, "the graph holds the node, the node its function"
        del root
        microcrad._lib.flush_releases()  # the dropped Values' releases are batched
        assert function() is None, "freed with the node, without the cycle collector"
        assert microcrad.live_values() == base + 1  # x
        del x
        assert microcrad.live_values() == base
    finally:
        gc.enable()


def test_custom_ops_deep_graphs_leave_no_function_behind(engine: types.SimpleNamespace) -> None:
    microcrad_only(engine, "keeps its nodes in reference cycles, freed only by the collector")
    from microcrad._lib import _nodes as _custom_ops

    base, functions = microcrad.live_values(), len(_custom_ops._functions)
    x = engine.Value(0.1)
    y = x
    for _ in range(3000):
        y = sin(y)
    y.backward()
    assert len(_custom_ops._functions) == functions + 3000
    del y
    assert (microcrad.live_values(), len(_custom_ops._functions)) == (base + 1, functions)


def test_a_custom_op_replays_on_a_tape(engine: types.SimpleNamespace) -> None:
    microcrad_only(engine, "has no tape")
    x = engine.Value(0.5)
    y = sin(x) * 3
    tape = microcrad.Tape(y)
    tape.backward()
    assert x.grad == pytest.approx(3 * math.cos(0.5), rel=1e-15)
    tape.close()


def test_what_cannot_take_a_backward_function_says_why(engine: types.SimpleNamespace) -> None:
    microcrad_only(engine, "lets any node take one")
    x = engine.Value(1.0)
    with pytest.raises(ValueError, match="leaf"):
        x._backward = lambda: None
    with pytest.raises(ValueError, match="built-in op"):
        (x * 2)._backward = lambda: None
    with pytest.raises(TypeError, match="callable"):
        engine.Value(1.0, (x,), "op")._backward = 3
    with pytest.raises(TypeError, match="deep-copy"):
        import copy

        copy.deepcopy(sin(x))


def test_a_walk_from_inside_a_custom_op_is_refused(engine: types.SimpleNamespace) -> None:
    microcrad_only(engine, "has no traversal marks to protect")
    x = engine.Value(1.0)
    out = engine.Value(1.0, (x,), "walks")

    def _backward() -> None:
        x.backward()

    out._backward = _backward
    with pytest.raises(ValueError, match="inside a backward callback"):
        out.backward()
    x.grad = 0.0
    del out._backward
    out.backward()
    assert x.grad == 0.0  # without a function, nothing flows


# ---------------------------------------------------------------------------------
# Attributes: optimizer state and visualisation marks on parameters
# ---------------------------------------------------------------------------------


def train_with_momentum(engine: types.SimpleNamespace, steps: int) -> list[float]:
    """A hand-written momentum SGD that keeps its velocity on each parameter, as
    optimizers written for micrograd do. Returns the losses."""
    random.seed(1337)
    model = engine.nn.MLP(2, [8, 1])
    xs = [[1.0, -1.0], [-0.5, 2.0], [0.3, 0.7], [-1.2, -0.4]]
    ys = [1.0, -1.0, 1.0, -1.0]
    for p in model.parameters():
        p.velocity = 0.0
        p._vis_color = "red"
    losses = []
    for _ in range(steps):
        loss = sum((model(x) - y) ** 2 for x, y in zip(xs, ys))
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.velocity = 0.9 * p.velocity - 0.05 * p.grad
            p.data += p.velocity
        losses.append(loss.data)
    assert all(p._vis_color == "red" for p in model.parameters())
    return losses


def test_optimizer_state_lives_on_the_parameters(engine: types.SimpleNamespace) -> None:
    losses = train_with_momentum(engine, steps=15)
    assert losses[-1] < losses[0]


def test_optimizer_state_trains_exactly_as_on_micrograd() -> None:
    mine = train_with_momentum(ENGINES["microcrad"], steps=10)
    theirs = train_with_momentum(ENGINES["micrograd"], steps=10)
    assert mine == pytest.approx(theirs, rel=1e-12)


def test_vars_shows_data_and_grad_and_set_attributes(engine: types.SimpleNamespace) -> None:
    v = engine.Value(2.0)
    w = v * 3
    w.backward()
    v.m = 0.25
    attributes = vars(v)
    assert attributes is not None and v.__dict__ == attributes
    assert (attributes["data"], attributes["grad"], attributes["m"]) == (2.0, 3.0, 0.25)
    assert {"data", "grad", "m"} <= set(attributes)
    assert {"data", "grad", "m", "backward"} <= set(dir(v))
    vars(v)["m"] = 0.5
    vars(v)["note"] = "set through vars()"
    assert (v.m, v.note) == (0.5, "set through vars()")
    del v.m
    assert "m" not in vars(v) and not hasattr(v, "m")
    assert vars(w)["_op"] == "*"


def test_vars_writes_data_through_to_the_node(engine: types.SimpleNamespace) -> None:
    microcrad_only(engine, "keeps data in the dictionary itself")
    v = engine.Value(2.0)
    vars(v)["data"] = 5.0
    assert v.data == 5.0
    vars(v).update(grad=1.5, m=2)
    assert (v.grad, v.m) == (1.5, 2)
    assert repr(vars(v)).startswith("{'data': 5.0, 'grad': 1.5")
    with pytest.raises(TypeError):
        del vars(v)["data"]


def test_attributes_belong_to_the_object(engine: types.SimpleNamespace) -> None:
    microcrad_only(engine, "has one object per node")
    import copy

    v = engine.Value(2.0, label="v")
    v.m = [1.0]
    (handle,) = (v * v)._prev  # the node's handle that _prev gives out: v itself
    assert handle is v
    twin = copy.copy(v)
    assert twin.m is v.m and twin.label == "v"
    clone = copy.deepcopy(v)
    assert clone.m == v.m and clone.m is not v.m and clone.label == "v"


# ---------------------------------------------------------------------------------
# Value.__init__ runs once (issue: a Neuron kept a stale weight after it ran again)
# ---------------------------------------------------------------------------------


def test_a_weight_cannot_be_reinitialised_under_a_neuron() -> None:
    random.seed(3)
    n = microcrad.nn.Neuron(2)
    w0 = n.w[0]
    before = n([1.0, 0.0]).data
    with pytest.raises(TypeError, match="cannot be called again"):
        w0.__init__(5.0)  # type: ignore[misc]
    assert n([1.0, 0.0]).data == before
    w0.data = 5.0  # the way to change a weight: the neuron sees it
    assert n([1.0, 0.0]).data == max(0.0, 5.0)


def test_custom_ops_on_several_threads_keep_their_own_exceptions() -> None:
    import threading

    Value = microcrad.engine.Value
    results: dict[int, object] = {}

    def work(index: int) -> None:
        failure = LookupError(f"thread {index}")
        x = Value(0.5)
        out = Value(1.0, (x,), "maybe")

        def _backward() -> None:
            if index % 2:
                raise failure
            x.grad += out.grad

        out._backward = _backward
        y = out * 2
        for _ in range(200):
            try:
                y.backward()
            except LookupError as error:
                results[index] = error is failure
                error.__traceback__ = None
                continue
            results[index] = x.grad

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {0: 400.0, 1: True, 2: 400.0, 3: True}


def test_a_script_with_custom_ops_is_freed_at_exit(tmp_path: Path) -> None:
    # A graph with a custom op left in a script's globals: shutdown must still clear
    # the script's globals (the sentinel's __del__ runs), as for any other script.
    script = tmp_path / "script.py"
    script.write_text(
        "import math, sys\n"
        f"sys.path.insert(0, {str(Path(microcrad.__file__).parent.parent)!r})\n"
        "from microcrad.engine import Value\n"
        "def sin(self):\n"
        "    out = Value(math.sin(self.data), (self,), 'sin')\n"
        "    def _backward():\n"
        "        self.grad += math.cos(self.data) * out.grad\n"
        "    out._backward = _backward\n"
        "    return out\n"
        "class Sentinel:\n"
        "    def __del__(self):\n"
        "        print('globals cleared', flush=True)\n"
        "x = Value(0.5)\n"
        "root = sin(x) * 2\n"
        "root.backward()\n"
        "sentinel = Sentinel()\n"
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "globals cleared" in result.stdout
