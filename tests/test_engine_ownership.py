"""Who keeps which C node alive: every Value owns one reference, graphs are freed when
their last Value goes, nothing is released twice, and very deep graphs and interpreter
shutdown are handled without crashes or noise."""

from __future__ import annotations

import copy
import gc
import math
import pickle
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import microcrad
from microcrad.engine import Value


def live() -> int:
    # No gc.collect(): Values form no reference cycles, so a node must be freed the
    # moment its last handle goes.
    return microcrad.live_values()


def test_each_new_node_is_counted_and_freed_with_its_last_value() -> None:
    base = live()
    a, b = Value(1.0), Value(2.0)
    c = a * b
    assert live() == base + 3
    d = a + 1  # the number becomes a leaf node of its own, as in micrograd
    assert live() == base + 5
    del a, b
    assert live() == base + 5, "c and d still hold a and b"
    del c
    assert live() == base + 3, "c and b are gone, a is still held by d"
    del d
    assert live() == base


def test_a_big_graph_is_freed_after_backward() -> None:
    base = live()
    xs = [Value(float(i)) for i in range(100)]
    total = Value(0.0)
    for x in xs:
        total = total + (x * x).tanh()
    total.backward()
    assert live() == base + 100 + 1 + 3 * 100
    del total
    assert live() == base + 100
    del xs, x
    assert live() == base


def test_operands_outlive_a_deleted_parent_through_prev() -> None:
    base = live()
    product = Value(3.0) * Value(4.0)
    operands = product._prev
    del product
    assert live() == base + 2
    assert sorted(v.data for v in operands) == [3.0, 4.0]
    del operands
    assert live() == base


def test_copy_is_another_handle_of_the_same_node() -> None:
    base = live()
    a = Value(2.0, label="a")
    twin = copy.copy(a)
    assert twin == a and twin is not a
    assert twin.label == "a"
    twin.data = 5.0
    assert a.data == 5.0
    assert live() == base + 1
    del a
    assert twin.data == 5.0
    del twin
    assert live() == base


def test_deepcopy_copies_the_whole_graph() -> None:
    a = Value(2.0)
    b = a * a + 1
    b.backward()
    base = live()
    clone = copy.deepcopy(b)
    assert clone != b
    assert live() == base + 4, "a, the leaf 1, a*a and the sum, copied once each"
    assert (clone.data, clone.grad) == (b.data, b.grad)
    (square,) = [p for p in clone._prev if p._op == "*"]
    (operand_a,) = square._prev
    assert operand_a != a and operand_a.data == 2.0 and operand_a.grad == a.grad
    operand_a.data = 100.0
    assert a.data == 2.0, "the copy is independent of the original"
    del clone, square, operand_a
    assert live() == base


def test_deepcopy_keeps_sharing_across_one_call() -> None:
    a = Value(2.0)
    model = {"weights": [a, copy.copy(a)], "out": a * 3}
    clone = copy.deepcopy(model)
    first, second = clone["weights"]
    assert first == second != a
    assert clone["out"]._prev >= {first}


def test_deepcopy_keeps_overwritten_data_and_custom_ops() -> None:
    a = Value(2.0)
    b = Value(5.0, (a,), "myop")
    c = a * 3
    c.data = 7.0  # nodes keep data written after their forward computation
    clone_b, clone_c = copy.deepcopy([b, c])
    assert (clone_b.data, clone_b._op) == (5.0, "myop")
    assert clone_c.data == 7.0


def test_deepcopy_of_a_neuron_node() -> None:
    # Neuron nodes are made by microcrad's nn module, through the bridge.
    from microcrad import _lib
    from microcrad.engine import _adopt

    weights, inputs, bias = [Value(0.5), Value(-2.0)], [Value(3.0), Value(1.0)], Value(0.25)
    node = _adopt(
        _lib.neuron(_lib.pin(weights, Value), _lib.pin(inputs, Value), _lib.pin([bias], Value))
    )
    clone = copy.deepcopy(node)
    assert clone.data == node.data == 0.25 + 0.5 * 3.0 - 2.0 * 1.0
    clone.backward()
    assert sorted(p.grad for p in clone._prev) == [-2.0, 0.5, 1.0, 1.0, 3.0]
    assert all(w.grad == 0.0 for w in weights), "the original is untouched"


def test_deepcopy_of_a_deep_chain_does_not_recurse() -> None:
    x = Value(0.5)
    for _ in range(50_000):
        x = x.tanh()
    clone = copy.deepcopy(x)
    assert clone.data == x.data


def test_pickling_is_refused_clearly() -> None:
    with pytest.raises(TypeError, match="cannot pickle a microcrad Value"):
        pickle.dumps(Value(1.0))


@pytest.mark.parametrize("seed", range(5))
def test_deleting_in_any_order(seed: int) -> None:
    base = live()
    a, b = Value(1.5), Value(-2.0)
    nodes = [a, b, a * b, a + a]
    nodes += [nodes[2] * nodes[3], nodes[3].tanh(), Value.sum(nodes), nodes[2] ** 2]
    nodes += [nodes[-1] + nodes[-2] + nodes[4]]
    nodes[-1].backward()
    expected = [(v.data, v.grad) for v in nodes]
    order = list(range(len(nodes)))
    random.Random(seed).shuffle(order)
    handles = dict(enumerate(nodes))
    del nodes, a, b
    count = live()
    for index in order:
        del handles[index]
        assert live() <= count
        count = live()
        for other in handles:  # the others are intact
            assert (handles[other].data, handles[other].grad) == expected[other]
    assert live() == base


def test_initialising_a_value_again_is_refused_and_changes_nothing() -> None:
    # A network, optimizer or tape holding x's node would keep working on it while x
    # moved to a new one: re-initialising is refused (assign .data instead).
    base = live()
    x = Value(1.0, label="x")
    with pytest.raises(TypeError, match="cannot be called again"):
        x.__init__(2.0)  # type: ignore[misc]
    assert (x.data, x.label) == (1.0, "x")
    assert live() == base + 1


def test_failed_or_skipped_initialisation_is_silent() -> None:
    reports: list[object] = []
    previous_hook = sys.unraisablehook
    sys.unraisablehook = reports.append
    try:
        with pytest.raises(TypeError):
            Value("not a number")  # type: ignore[arg-type]
        bare = Value.__new__(Value)  # never initialised: owns no node
        del bare
        gc.collect()
    finally:
        sys.unraisablehook = previous_hook
    assert reports == []


def test_deep_chain_backpropagates_and_frees() -> None:
    base = live()
    steps = 100_000
    x0 = Value(1.0)
    x = x0
    for _ in range(steps):
        x = x * 1.0001 + 0.0001
    assert live() == base + 1 + 4 * steps
    x.backward()
    assert x0.grad == pytest.approx(math.pow(1.0001, steps), rel=1e-9)
    # Each step maps x to 1.0001 x + 0.0001, so x + 1 grows by 1.0001 per step.
    assert x.data == pytest.approx(2 * math.pow(1.0001, steps) - 1, rel=1e-9)
    del x
    assert live() == base + 1


# ---------------------------------------------------------------------------------
# Interpreter shutdown
# ---------------------------------------------------------------------------------

SHUTDOWN_SCRIPTS = {
    "value in sys.modules": """
        from microcrad.engine import Value
        a = Value(1)
        b = a * a
        import sys
        sys.modules["x"] = b
    """,
    "values in a reference cycle at module level": """
        from microcrad.engine import Value
        class Holder:
            pass
        holder = Holder()
        holder.self = holder
        holder.values = [Value(i) for i in range(10)]
        holder.total = sum(holder.values)
        holder.total.backward()
    """,
    "value stored on the Value class": """
        from microcrad.engine import Value
        Value.kept = Value(2.0) ** 3
        Value.kept.backward()
    """,
    "value stored inside microcrad's own modules": """
        import microcrad, microcrad.engine, microcrad._lib
        from microcrad.engine import Value
        microcrad.engine.kept = Value(1.0).exp()
        microcrad._lib.kept = [Value(2.0) * 2, Value(3.0)._prev]
        microcrad.kept = copy = __import__("copy").deepcopy(microcrad.engine.kept)
    """,
    "a deep graph left behind": """
        from microcrad.engine import Value
        x = Value(1.0)
        for _ in range(100_000):
            x = x + 1
    """,
}


@pytest.mark.parametrize("script", SHUTDOWN_SCRIPTS.values(), ids=SHUTDOWN_SCRIPTS.keys())
def test_interpreter_shutdown_is_silent(script: str, tmp_path: Path) -> None:
    code = textwrap.dedent(script) + "\nprint('done')\n"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.stderr == ""
    assert result.returncode == 0
    assert result.stdout == "done\n"
