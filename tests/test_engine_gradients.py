"""Gradients of whole graphs: small cases worked out by hand, repeated backward passes,
and random expression DAGs (with shared and reused nodes) checked against central
finite differences and, when PyTorch is installed, against torch.autograd.

The random DAGs draw every op of the library's op table: each Value method of
tests/op_methods.py that no hand-written step below exercises gets a step of its own,
with its operands mapped into a range where every op is smooth, so a new op is drawn
without an edit here."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from hypothesis import assume, given, note
from hypothesis import strategies as st

from microcrad import _lib
from microcrad.engine import Value

from op_methods import OP_METHODS, STRUCTURAL_OPS, OpMethod
from op_reference import reference_or_library

try:
    import torch
except ImportError:  # PyTorch is optional: its comparison is skipped without it
    torch = None


# ---------------------------------------------------------------------------------
# Small graphs worked out by hand
# ---------------------------------------------------------------------------------


def test_reused_node() -> None:
    # b = 2a, c = b^2 = 4a^2, so dc/da = 8a and dc/db = 2b.
    a = Value(3.0)
    b = a + a
    c = b * b
    c.backward()
    assert c.data == 36.0
    assert a.grad == 24.0
    assert b.grad == 12.0
    assert c.grad == 1.0


def test_diamond() -> None:
    # d = (2a) * (a + 1) = 2a^2 + 2a, so dd/da = 4a + 2.
    a = Value(1.5)
    left = a * 2
    right = a + 1
    d = left * right
    d.backward()
    assert d.data == 7.5
    assert a.grad == 8.0
    assert left.grad == 2.5
    assert right.grad == 3.0


def test_second_backward_accumulates_leaves_and_recomputes_the_rest() -> None:
    # out = (ab)^2 + a: d/da = 2ab*b + 1 = 37, d/db = 2ab*a = -24, d/d(ab) = 2ab = -12,
    # all exact in binary floating point.
    a, b = Value(2.0), Value(-3.0)
    product = a * b
    out = product * product + a
    out.backward()
    assert (a.grad, b.grad, product.grad, out.grad) == (37.0, -24.0, -12.0, 1.0)
    out.backward()
    assert (a.grad, b.grad) == (74.0, -48.0)
    assert (product.grad, out.grad) == (-12.0, 1.0)


def test_zero_grad_resets_every_node() -> None:
    a, b = Value(2.0), Value(-3.0)
    product = a * b
    out = product + a
    out.backward()
    assert a.grad != 0.0 and product.grad != 0.0
    out.zero_grad()
    assert (a.grad, b.grad, product.grad, out.grad) == (0.0, 0.0, 0.0, 0.0)
    out.backward()
    assert (a.grad, b.grad) == (b.data + 1.0, a.data)


def test_grad_can_be_reset_by_assignment_as_in_micrograd() -> None:
    a = Value(2.0)
    out = a * a
    out.backward()
    a.grad = 0
    out.backward()
    assert a.grad == 4.0


def test_backward_of_a_leaf_sets_its_own_gradient() -> None:
    a = Value(5.0)
    a.backward()
    assert a.grad == 1.0


def test_only_nodes_below_the_root_get_gradients() -> None:
    a, b = Value(2.0), Value(3.0)
    out = a * 2
    unrelated = b * 2
    out.backward()
    assert a.grad == 2.0
    assert (b.grad, unrelated.grad) == (0.0, 0.0)


def test_micrograd_neuron_matches_micrograd() -> None:
    micrograd_engine = pytest.importorskip("micrograd.engine")

    def neuron(make: Callable[[float], Any]) -> tuple[Any, list[Any]]:
        weights = [make(w) for w in (0.5, -1.25, 2.0)]
        inputs = [make(x) for x in (1.0, 3.0, -0.5)]
        activation = sum((w * x for w, x in zip(weights, inputs)), make(0.1))
        return activation.relu() * activation + activation**2 / 3, weights

    theirs, their_weights = neuron(micrograd_engine.Value)
    ours, our_weights = neuron(Value)
    theirs.backward()
    ours.backward()
    assert ours.data == pytest.approx(theirs.data, rel=1e-15)
    for mine, reference in zip(our_weights, their_weights):
        assert mine.grad == pytest.approx(reference.grad, rel=1e-14)


# ---------------------------------------------------------------------------------
# Random DAGs
# ---------------------------------------------------------------------------------


class Reference:
    """A plain float with micrograd's operators, computed with ``math``: the reference
    forward pass for the finite differences. Records the inputs of every relu so that
    a difference that crosses a kink can be recognised and skipped."""

    relu_inputs: ClassVar[list[float]] = []

    def __init__(self, x: float) -> None:
        self.x = x

    @staticmethod
    def _x(other: Any) -> float:
        return other.x if isinstance(other, Reference) else float(other)

    def __add__(self, o: Any) -> Reference:
        return Reference(self.x + self._x(o))

    def __radd__(self, o: Any) -> Reference:
        return Reference(self._x(o) + self.x)

    def __sub__(self, o: Any) -> Reference:
        return Reference(self.x - self._x(o))

    def __rsub__(self, o: Any) -> Reference:
        return Reference(self._x(o) - self.x)

    def __mul__(self, o: Any) -> Reference:
        return Reference(self.x * self._x(o))

    def __rmul__(self, o: Any) -> Reference:
        return Reference(self._x(o) * self.x)

    def __truediv__(self, o: Any) -> Reference:
        return Reference(self.x / self._x(o))

    def __rtruediv__(self, o: Any) -> Reference:
        return Reference(self._x(o) / self.x)

    def __pow__(self, o: Any) -> Reference:
        return Reference(math.pow(self.x, self._x(o)))

    def __rpow__(self, o: Any) -> Reference:
        return Reference(math.pow(self._x(o), self.x))

    def __neg__(self) -> Reference:
        return Reference(-self.x)

    def tanh(self) -> Reference:
        return Reference(math.tanh(self.x))

    def exp(self) -> Reference:
        return Reference(math.exp(self.x))

    def log(self) -> Reference:
        return Reference(math.log(self.x))

    def sigmoid(self) -> Reference:
        return Reference(1 / (1 + math.exp(-self.x)))

    def relu(self) -> Reference:
        Reference.relu_inputs.append(self.x)
        return Reference(max(self.x, 0.0))

    def __getattr__(self, name: str) -> Callable[..., Reference]:
        """Any other Value method of the op table (a new op's), computed by
        tests/op_reference.py: by ``math`` or ``operator`` of the same name, else
        PyTorch, else the library's own forward on leaves."""
        forms = {m.form: m for m in OP_METHODS if m.method == name}
        if not forms:
            raise AttributeError(name)

        def apply(*arguments: Any) -> Reference:
            if not arguments:
                method, point, number = forms["unary"], [self.x], 2.0
            elif isinstance(arguments[0], Reference):
                method, point, number = forms["values"], [self.x, arguments[0].x], 2.0
            else:
                method = forms.get("reflected") or forms["number"]
                point, number = [self.x], float(arguments[0])
            return Reference(reference_or_library(method, point, number))

        return apply


# Each op takes its operands and a constant; domains are kept well-conditioned by
# construction (log and powers of something >= 0.5, divisions by something >= 1, exp
# of something in [-2, 2]) so that every random graph has a finite, smooth gradient.
@dataclass(frozen=True)
class Op:
    arity: int
    apply: Callable[..., Any]
    method: str = ""  # the Value method of tests/op_methods.py it exercises ("" for sum)


def _sum3(a: Any, b: Any, c: Any) -> Any:
    if isinstance(a, Value):
        return Value.sum([a, b, c])
    return a + b + c  # left to right, as Value.sum adds


HAND_WRITTEN: dict[str, Op] = {
    "add": Op(2, lambda a, b, k: a + b, "__add__[values]"),
    "sub": Op(2, lambda a, b, k: a - b, "__sub__[values]"),
    "mul": Op(2, lambda a, b, k: a * b, "__mul__[values]"),
    "div": Op(2, lambda a, b, k: a / (b * b + 1), "__truediv__[values]"),
    "neg": Op(1, lambda a, k: -a, "__neg__[unary]"),
    "add_number": Op(1, lambda a, k: k + a, "__radd__[reflected]"),
    "sub_from_number": Op(1, lambda a, k: k - a, "__rsub__[reflected]"),
    "mul_number": Op(1, lambda a, k: k * a, "__rmul__[reflected]"),
    "number_over": Op(1, lambda a, k: k / (a * a + 1), "__rtruediv__[reflected]"),
    "number_to_the": Op(1, lambda a, k: 2.5 ** a.tanh(), "__rpow__[reflected]"),
    "pow_const": Op(1, lambda a, k: (a * a + 0.5) ** k, "__pow__[number]"),
    "pow": Op(2, lambda a, b, k: (a * a + 0.5) ** b.tanh(), "__pow__[values]"),
    "exp": Op(1, lambda a, k: (a.tanh() * 2).exp(), "exp[unary]"),
    "log": Op(1, lambda a, k: (a * a + 0.5).log(), "log[unary]"),
    "relu": Op(1, lambda a, k: a.relu(), "relu[unary]"),
    "tanh": Op(1, lambda a, k: a.tanh(), "tanh[unary]"),
    "sigmoid": Op(1, lambda a, k: a.sigmoid(), "sigmoid[unary]"),
    "sum": Op(3, lambda a, b, c, k: _sum3(a, b, c)),
}


def _generic_step(method: OpMethod) -> Op:
    """A step applying ``method`` to its operands mapped into (0.25, 2.25) by
    tanh(a) + 1.25, and a number |k| + 0.5: a range where every op is smooth (positive,
    away from the kinks of relu and abs at 0) and bounded."""

    def apply(*operands: Any) -> Any:
        *values, k = operands
        return method.apply([value.tanh() + 1.25 for value in values], abs(k) + 0.5)

    return Op(method.operands, apply, str(method))


# Every Value method that no hand-written step exercises gets a generic step.
OPS: dict[str, Op] = dict(HAND_WRITTEN)
OPS.update(
    (str(method), _generic_step(method))
    for method in OP_METHODS
    if str(method) not in {op.method for op in HAND_WRITTEN.values()}
)

# Ops of the table that the random DAGs leave out, and the tests that check them.
OTHER_TESTS = {
    _lib.OP_NEURON: "tests/test_nn.py (networks against micrograd)",
    _lib.OP_CUSTOM: "tests/test_engine_graph.py (custom nodes)",
}


def _ops_in_graph(root: Value) -> set[int]:
    codes, pending, seen = set(), [root._ptr], set()
    while pending:
        node = pending.pop()
        if node not in seen:
            seen.add(node)
            codes.add(_lib.op_of(node))
            pending += _lib.prev(node)
    return codes


def test_the_random_dags_draw_every_op_of_the_table() -> None:
    """Each step makes the op its method makes, every Value method has a step, and the
    steps make every op of the table but those named with their own tests."""
    methods = {str(method): method for method in OP_METHODS}
    drawn: set[int] = set()
    for name, op in OPS.items():
        leaves = [Value(x) for x in (0.3, 0.9, 1.7)[: op.arity]]
        codes = _ops_in_graph(op.apply(*leaves, 2.0))
        if op.method:
            assert methods[op.method].op.code in codes, name
        drawn |= codes
    assert set(methods) <= {op.method for op in OPS.values()}
    assert drawn | set(OTHER_TESTS) == {op.code for op in _lib.OPS}
    assert set(OTHER_TESTS) < STRUCTURAL_OPS


@dataclass(frozen=True)
class Step:
    op: str
    operands: tuple[int, ...]  # indices of earlier nodes (leaves first)
    constant: float


@dataclass(frozen=True)
class Program:
    leaves: tuple[float, ...]
    steps: tuple[Step, ...]

    def run(self, leaves: Sequence[Any]) -> Any:
        """Builds the graph over ``leaves``; the root adds up every node, so that every
        node (and every way a node is reused) affects the result."""
        nodes = list(leaves)
        for step in self.steps:
            operands = [nodes[i] for i in step.operands]
            nodes.append(OPS[step.op].apply(*operands, step.constant))
        root = nodes[0]
        for node in nodes[1:]:
            root = root + node
        return root


@st.composite
def programs(draw: st.DrawFn) -> Program:
    numbers = st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False)
    leaves = draw(st.lists(numbers, min_size=1, max_size=4))
    steps = []
    for index in range(draw(st.integers(1, 12))):
        name = draw(st.sampled_from(sorted(OPS)))
        available = len(leaves) + index
        # Drawing indices independently makes a node reuse an operand (x * x) and
        # later nodes share earlier ones (diamonds).
        operands = tuple(draw(st.integers(0, available - 1)) for _ in range(OPS[name].arity))
        constant = draw(st.sampled_from([-1.5, -1, -0.5, 0, 0.5, 2, 3]))
        steps.append(Step(name, operands, float(constant)))
    return Program(tuple(leaves), tuple(steps))


def reference_value(program: Program, leaves: Sequence[float]) -> tuple[float, tuple[bool, ...]]:
    """The root computed with ``math``, and which side of 0 each relu input fell on."""
    Reference.relu_inputs = []
    root = program.run([Reference(x) for x in leaves])
    return root.x, tuple(x > 0 for x in Reference.relu_inputs)


def microcrad_gradients(program: Program) -> tuple[float, list[float]]:
    leaves = [Value(x) for x in program.leaves]
    root = program.run(leaves)
    root.backward()
    return root.data, [leaf.grad for leaf in leaves]


@given(programs())
def test_forward_matches_math(program: Program) -> None:
    expected, _ = reference_value(program, program.leaves)
    value, _ = microcrad_gradients(program)
    assert value == pytest.approx(expected, rel=1e-12, abs=1e-12)


@given(programs())
def test_gradients_match_finite_differences(program: Program) -> None:
    value, gradients = microcrad_gradients(program)
    assume(math.isfinite(value) and abs(value) < 1e8)
    _, kinks = reference_value(program, program.leaves)
    checked = 0
    for i, x in enumerate(program.leaves):
        h = 1e-6 * max(1.0, abs(x))
        shifted = list(program.leaves)
        shifted[i] = x + h
        above, kinks_above = reference_value(program, shifted)
        shifted[i] = x - h
        below, kinks_below = reference_value(program, shifted)
        if kinks_above != kinks or kinks_below != kinks:
            continue  # the step crosses a relu kink: no derivative to compare with
        estimate = (above - below) / (2 * h)
        note(f"leaf {i}: finite difference {estimate!r}, backward {gradients[i]!r}")
        tolerance = 1e-5 * max(1.0, abs(estimate), abs(value))
        assert abs(gradients[i] - estimate) <= tolerance
        checked += 1
    assume(checked > 0)


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
@given(programs())
def test_gradients_match_pytorch(program: Program) -> None:
    value, gradients = microcrad_gradients(program)
    leaves = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in program.leaves]
    root = program.run(leaves)
    root.backward()
    assert value == pytest.approx(root.item(), rel=1e-12, abs=1e-12)
    for mine, theirs in zip(gradients, leaves):
        reference = theirs.grad.item() if theirs.grad is not None else 0.0
        assert mine == pytest.approx(reference, rel=1e-9, abs=1e-12 * max(1.0, abs(value)))
