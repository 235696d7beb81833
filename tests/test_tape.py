"""Replay (``microcrad.Tape``): recomputing a recorded graph from new leaf data must give
bit for bit what building the graph again from that data gives, for the values and
for the gradients; the tape owns the graph while it lives; misuse raises."""

from __future__ import annotations

import array
import gc
import math
import random
from collections.abc import Callable, Sequence
from fractions import Fraction

import numpy as np
import pytest

import microcrad
from microcrad import Tape, Value
from microcrad.nn import MLP
from microcrad.tape import ValueArray

# ---------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------


def same(a: float, b: float) -> bool:
    """Equal as IEEE values: NaN equals NaN, and the sign of a zero counts."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def all_nodes(root: Value) -> list[Value]:
    """Every node of the graph below ``root``, once each (leaves included)."""
    seen: dict[Value, None] = {}
    pending = [root]
    while pending:
        node = pending.pop()
        if node in seen:
            continue
        seen[node] = None
        pending.extend(node._prev)
    return list(seen)


def expression(x: Sequence[Value]) -> Value:
    """A graph with every op, shared subexpressions, a node used twice by one op, and
    numbers mixed in (which become constant leaves)."""
    a, b, c = x
    ab = a * b
    s = ab + c
    terms = [
        s.relu(),
        ab.tanh(),
        (-(c / b)).exp(),
        s**2,
        a.sigmoid().log(),
        ab * ab,
        2 ** (c * 0.5),
        1 - a / 3,
        (b - 2.5) * 4,
        b**a if b.data > 0 else a**2,  # data-dependent: frozen by the tape
    ]
    return Value.sum(terms) + ab


FIRST = [0.7, 1.3, 0.4]
LATER = [[-0.2, 2.5, 1.1], [1.9, 0.6, -0.75], [0.0, 3.0, 2.0]]

# ---------------------------------------------------------------------------------
# Replay against rebuilding
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("data", LATER)
def test_replay_matches_rebuilding_bit_for_bit(data: list[float]) -> None:
    leaves = [Value(v) for v in FIRST]
    root = expression(leaves)
    with Tape(root) as tape:
        ValueArray(leaves).set_data(data)
        tape.forward()
        tape.backward()
        # The same graph built from the new data (b stays positive in LATER, so the
        # data-dependent branch takes the same side as when recording).
        fresh = [Value(v) for v in data]
        rebuilt = expression(fresh)
        rebuilt.backward()
        assert same(tape.data, rebuilt.data)
        assert same(root.data, rebuilt.data)
        replayed_nodes, rebuilt_nodes = all_nodes(root), all_nodes(rebuilt)
        assert len(replayed_nodes) == len(rebuilt_nodes)
        for ours, theirs in zip(leaves, fresh):
            assert same(ours.grad, theirs.grad)
        assert sorted(n.data for n in replayed_nodes if not math.isnan(n.data)) == sorted(
            n.data for n in rebuilt_nodes if not math.isnan(n.data)
        )


def test_an_mlp_replays_its_forward_and_backward_bit_for_bit() -> None:
    """A neuron-based network (one fused node per neuron): train the same model twice
    for a few steps, rebuilding the graph every step or replaying a tape."""
    rng = np.random.default_rng(3)
    batches = [rng.normal(size=(4, 3)) for _ in range(3)]

    def model() -> MLP:
        random.seed(11)
        return MLP(3, [5, 4, 1])

    def loss_of(net: MLP, inputs: Sequence[Sequence[Value | float]]) -> Value:
        outputs = [net(row) for row in inputs]
        return Value.sum([(out - 0.5) ** 2 for out in outputs])  # type: ignore[operator]

    rebuilt, replayed = model(), model()
    x = [[Value(0.0) for _ in range(3)] for _ in range(4)]
    flat = ValueArray([xi for row in x for xi in row])
    tape = Tape(loss_of(replayed, x))
    for batch in batches:
        fresh = loss_of(rebuilt, batch.tolist())
        for p in rebuilt.parameters():
            p.grad = 0.0
        fresh.backward()

        flat.set_data(batch.ravel())
        tape.forward()
        tape.zero_grad()
        tape.backward()

        assert same(tape.data, fresh.data)
        for p, q in zip(replayed.parameters(), rebuilt.parameters()):
            assert same(p.data, q.data)
            assert same(p.grad, q.grad)
        for p, q in zip(replayed.parameters(), rebuilt.parameters()):
            p.data -= 0.1 * p.grad
            q.data -= 0.1 * q.grad
    tape.close()


def test_backward_accumulates_into_leaves_and_recomputes_interior_nodes() -> None:
    x = Value(3.0)
    y = x * x
    z = y + 1
    tape = Tape(z)
    tape.backward()
    assert (x.grad, y.grad, z.grad) == (6.0, 1.0, 1.0)
    tape.backward()  # as z.backward() would: x accumulates, y and z start over
    assert (x.grad, y.grad, z.grad) == (12.0, 1.0, 1.0)
    tape.zero_grad()
    assert (x.grad, y.grad, z.grad) == (0.0, 0.0, 0.0)
    z.backward()
    tape.backward()
    assert x.grad == 12.0


def test_relu_is_recomputed_but_a_python_branch_is_frozen() -> None:
    x = Value(2.0)
    branch = x * 10 if x.data > 0 else x * -10  # the program's choice: recorded
    root = branch.relu() + x.relu()
    tape = Tape(root)
    x.data = -1.0
    tape.forward()
    # relu sees the new data (0 for -1); the branch stays "x * 10".
    assert tape.data == 0.0 + 0.0
    x.data = 0.5
    tape.forward()
    assert tape.data == 5.0 + 0.5


def test_a_leaf_root_replays_as_a_leaf() -> None:
    x = Value(4.0)
    tape = Tape(x)
    assert len(tape) == 1
    tape.forward()
    assert tape.data == 4.0
    tape.backward()
    tape.backward()
    assert x.grad == 2.0


def test_custom_nodes_keep_their_data() -> None:
    a = Value(2.0)
    custom = Value(7.0, (a,), "custom")
    root = custom * a
    tape = Tape(root)
    a.data = 3.0
    tape.forward()
    assert custom.data == 7.0
    assert tape.data == 21.0
    tape.backward()
    assert a.grad == 7.0  # through the product only: the custom node is opaque


def test_len_counts_every_node_once() -> None:
    a, b = Value(1.0), Value(2.0)
    c = a * b
    root = c + c * a + 3
    tape = Tape(root)
    assert len(tape) == len(all_nodes(root))
    assert repr(tape).startswith(f"Tape({len(tape)} nodes")


def test_root_is_the_recorded_value() -> None:
    x = Value(1.0)
    y = x + 1
    assert Tape(y).root is y


# ---------------------------------------------------------------------------------
# Ownership
# ---------------------------------------------------------------------------------


def test_the_tape_keeps_the_graph_alive_until_closed() -> None:
    gc.collect()
    before = microcrad.live_values()
    x = [Value(v) for v in FIRST]
    tape = Tape(expression(x))
    inputs = ValueArray(x)
    del x
    gc.collect()
    held = microcrad.live_values()
    assert held > before
    inputs.set_data(LATER[0])
    tape.forward()  # every node is still there
    tape.backward()
    assert microcrad.live_values() == held  # replay allocates no node
    del inputs
    tape.close()
    gc.collect()
    assert microcrad.live_values() == before


def test_a_forgotten_tape_frees_its_graph() -> None:
    gc.collect()
    before = microcrad.live_values()
    tape = Tape(Value(1.0) * 2)
    assert microcrad.live_values() == before + 3
    del tape
    gc.collect()
    assert microcrad.live_values() == before


def test_with_closes_the_tape() -> None:
    gc.collect()
    before = microcrad.live_values()
    with Tape(Value(1.0) + 2) as tape:
        tape.forward()
    gc.collect()
    assert microcrad.live_values() == before
    assert repr(tape) == "Tape(closed)"


# ---------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("thing", [1.0, None, "x", [Value(1.0)]])
def test_only_a_value_can_be_recorded(thing: object) -> None:
    with pytest.raises(TypeError, match="Tape records a Value"):
        Tape(thing)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "use",
    [
        lambda t: t.forward(),
        lambda t: t.backward(),
        lambda t: t.zero_grad(),
        lambda t: t.data,
        lambda t: len(t),
        lambda t: t.root,
        lambda t: t.__enter__(),
    ],
    ids=["forward", "backward", "zero_grad", "data", "len", "root", "enter"],
)
def test_a_closed_tape_refuses_every_use(use: Callable[[Tape], object]) -> None:
    tape = Tape(Value(1.0) * 3)
    tape.close()
    tape.close()  # closing twice is fine
    with pytest.raises(ValueError, match="closed"):
        use(tape)


def test_recording_out_of_memory_is_a_memory_error() -> None:
    from microcrad import _lib

    root = Value(1.0) * 3
    before = microcrad.live_values()
    _lib.c.microcrad_fail_allocation(1)
    try:
        with pytest.raises(MemoryError):
            Tape(root)
    finally:
        _lib.c.microcrad_fail_allocation(0)
    assert microcrad.live_values() == before


# ---------------------------------------------------------------------------------
# ValueArray
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "numbers",
    [
        [1.5, -2.0, 3.25],
        (1, 2, 3),
        np.array([1.5, -2.0, 3.25]),
        np.array([1.5, -2.0, 3.25], dtype=np.float32),
        np.array([1, 2, 3]),
        array.array("d", [1.5, -2.0, 3.25]),
        [Fraction(1, 2), np.float64(2.0), True],
        np.array([[1.5, -2.0, 3.25]])[0],
        np.arange(6.0)[::2],  # a strided view
    ],
    ids=["list", "ints", "float64", "float32", "int64", "array", "mixed", "row", "strided"],
)
def test_value_array_sets_and_reads_every_value(numbers: object) -> None:
    values = [Value(0.0) for _ in range(3)]
    block = ValueArray(values)
    block.set_data(numbers)
    expected = [float(v) for v in numbers]  # type: ignore[attr-defined]
    assert [v.data for v in values] == expected
    assert block.data() == expected
    (values[0] * 2 + values[1] * values[2]).backward()
    assert block.grad() == [2.0, expected[2], expected[1]]
    assert len(block) == 3 and block[1] is values[1] and block.values == values


def test_value_array_checks_its_input() -> None:
    block = ValueArray([Value(0.0), Value(0.0)])
    with pytest.raises(ValueError, match="expected 2 numbers, got 3"):
        block.set_data([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="expected 2 numbers, got 1"):
        block.set_data(np.array([1.0]))
    with pytest.raises(TypeError, match="str"):
        block.set_data([1.0, "2"])
    with pytest.raises(TypeError, match="Values"):
        ValueArray([Value(1.0), 2.0])  # type: ignore[list-item]
    assert block.data() == [0.0, 0.0]  # nothing was written by the failed calls
