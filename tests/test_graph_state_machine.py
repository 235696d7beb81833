"""Random programs of C API calls against a pure-Python model of the same graph.

Hypothesis drives sequences of calls through the package's private ctypes bindings
(``microcrad._lib``): creating leaves, every operation (the one-call forms with a
number, value_sum and value_neuron included), custom nodes, retaining and releasing
references, backward passes, zeroing, overwriting data and grads, DOT output, and
calls whose allocation is made to fail. The model keeps, for every
node it believes alive, its operands, its data, its reference count (references the
test holds plus uses as an operand by live nodes) and its gradient, computed by a
model backward with the library's semantics (interior gradients recomputed, leaf
gradients accumulated).

After every step the library must agree with the model: the live-node count, every
node's reference count, data and gradient. When the last reference to a node goes,
the model frees it and, transitively, the operands it held, exactly as the library
should; a wrong count shows up as a live-count or reference-count mismatch, and under
ASan (``tools/memcheck.py asan``) as a use-after-free or leak report. At the end
every reference is released and the live count must be back where it started.

The ops come from the library's op table (tests/op_reference.py): every op of one or
two operands is drawn, made by its own constructor or by value_create_op, and its
number forms (value_X_scalar, value_scalar_X) are found by name. The model has the
formulas of the ops it knows; for any other op it runs the op's own forward and
backward rule on fresh leaves (exact, so every check around the op stays exact) and
checks them, as each such node is made, against a reference (Python's math/operator or
PyTorch by the op's method name) and against central differences where the op is
smooth. A test checks that the rules draw every op of the table.

Forward values are compared with a relative tolerance of 1e-12 (the model calls the
same libm functions; the tolerance only allows an equivalent reformulation).
Gradients are sums of contributions whose order is an implementation detail, so they
are compared with a tolerance scaled by a bound on the magnitudes summed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Callable, Optional

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from microcrad import _lib

import op_reference
from op_reference import FIXED_ARITY_OPS

c = _lib.c

# The model computes with the same C functions as the library, not Python's math
# module, whose exp, log and pow raise on overflow and domain errors instead of
# returning inf and nan.
_libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
for _name in ("exp", "log", "tanh", "pow"):
    getattr(_libm, _name).restype = ctypes.c_double
    getattr(_libm, _name).argtypes = [ctypes.c_double] * (2 if _name == "pow" else 1)
exp, log, tanh, power = _libm.exp, _libm.log, _libm.tanh, _libm.pow

NAN = math.nan
FORWARD_TOLERANCE = 1e-12
GRAD_TOLERANCE = 1e-9


def divide(a: float, b: float) -> float:
    """a / b with IEEE semantics (Python raises ZeroDivisionError instead)."""
    try:
        return a / b
    except ZeroDivisionError:
        if math.isnan(a) or a == 0.0:
            return NAN
        return math.copysign(math.inf, a) * math.copysign(1.0, b)


def same_number(actual: float, expected: float, tolerance: float) -> bool:
    """Equal up to a relative tolerance; NaN equals NaN, infinities must match."""
    if math.isnan(actual) or math.isnan(expected):
        return math.isnan(actual) and math.isnan(expected)
    if math.isinf(actual) or math.isinf(expected):
        return actual == expected
    return abs(actual - expected) <= tolerance * max(abs(actual), abs(expected))


# ---------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------


@dataclass(eq=False)
class Node:
    """What the model knows about one C node."""

    ptr: int
    op: int
    operands: list[Node]
    data: float
    param: float = 0.0
    tickets: int = 0  # references held by the test
    users: int = 0  # uses as an operand by live nodes (one per occurrence)
    grad: float = 0.0
    # A bound on the magnitudes summed into grad: the rounding error of the library's
    # summation order (which may differ from the model's) is below GRAD_TOLERANCE times
    # this. Not finite (inf, nan) when some contribution overflowed.
    scale: float = 0.0
    alive: bool = True

    @property
    def ref_count(self) -> int:
        return self.tickets + self.users


@dataclass(eq=False)
class Ticket:
    """One reference owned by the test (the bundle holds one entry per reference)."""

    node: Node


def _slope(a: float, p: float) -> float:
    """d(a^p)/da, with the library's convention that it is 0 for p == 0."""
    return 0.0 if p == 0.0 else p * power(a, p - 1.0)


def local_gradients(node: Node) -> Iterator[tuple[Node, float]]:
    """(operand, d node / d operand) for each operand occurrence, as the library
    computes them (the same formulas, so the same special cases: relu'(0) = 0, the
    masked exponent gradient of pow at a zero base)."""
    ops = node.operands
    if node.op == _lib.OP_ADD:
        yield ops[0], 1.0
        yield ops[1], 1.0
    elif node.op == _lib.OP_SUB:
        yield ops[0], 1.0
        yield ops[1], -1.0
    elif node.op == _lib.OP_MUL:
        yield ops[0], ops[1].data
        yield ops[1], ops[0].data
    elif node.op == _lib.OP_DIV:
        a, b = ops[0].data, ops[1].data
        yield ops[0], divide(1.0, b)
        # As the library (and PyTorch) computes it: (a / b) / b, not a / (b * b), whose
        # b * b loses precision when it is subnormal (b about 1e-160).
        yield ops[1], -divide(divide(a, b), b)
    elif node.op == _lib.OP_NEG:
        yield ops[0], -1.0
    elif node.op == _lib.OP_POW:
        a, p = ops[0].data, ops[1].data
        yield ops[0], _slope(a, p)
        yield ops[1], 0.0 if (a == 0.0 and p >= 0.0) else node.data * log(a)
    elif node.op == _lib.OP_POW_CONST:
        yield ops[0], _slope(ops[0].data, node.param)
    elif node.op == _lib.OP_EXP:
        yield ops[0], node.data
    elif node.op == _lib.OP_LOG:
        yield ops[0], divide(1.0, ops[0].data)
    elif node.op == _lib.OP_RELU:
        yield ops[0], 0.0 if node.data <= 0.0 else 1.0
    elif node.op == _lib.OP_TANH:
        yield ops[0], 1.0 - node.data * node.data
    elif node.op == _lib.OP_SIGMOID:
        yield ops[0], node.data * (1.0 - node.data)
    elif node.op == _lib.OP_SUM:
        for operand in ops:
            yield operand, 1.0
    elif node.op == _lib.OP_NEURON:
        yield ops[0], 1.0
        for w, x in zip(ops[1::2], ops[2::2]):
            yield w, x.data
            yield x, w.data
    elif node.op in GENERIC_OPS:  # the op's own rule, checked when the node was made
        rule = op_reference.slopes(node.op, [o.data for o in ops], node.param, node.data)
        yield from zip(ops, rule)
    # Leaves and custom nodes pass no gradient on.


def topological_order(root: Node) -> list[Node]:
    """Every node reachable from root, each after its operands."""
    order: list[Node] = []
    seen: set[int] = set()
    stack: list[tuple[Node, Iterator[Node]]] = [(root, iter(root.operands))]
    seen.add(id(root))
    while stack:
        node, operands = stack[-1]
        operand = next(operands, None)
        if operand is None:
            order.append(node)
            stack.pop()
        elif id(operand) not in seen:
            seen.add(id(operand))
            stack.append((operand, iter(operand.operands)))
    return order


def sigmoid(a: float) -> float:
    if a >= 0.0:
        return 1.0 / (1.0 + exp(-a))
    e = exp(a)
    return e / (1.0 + e)


def relu(a: float) -> float:
    return a if a > 0.0 or math.isnan(a) else 0.0


# The forward of each op of one or two operands that the model knows (POW_CONST's
# takes its constant as a second argument).
FORWARD: dict[int, Callable[..., float]] = {
    _lib.OP_NEG: lambda a: -a,
    _lib.OP_EXP: exp,
    _lib.OP_LOG: log,
    _lib.OP_RELU: relu,
    _lib.OP_TANH: tanh,
    _lib.OP_SIGMOID: sigmoid,
    _lib.OP_ADD: lambda a, b: a + b,
    _lib.OP_SUB: lambda a, b: a - b,
    _lib.OP_MUL: lambda a, b: a * b,
    _lib.OP_DIV: divide,
    _lib.OP_POW: power,
    _lib.OP_POW_CONST: power,
}

# The ops of the table with one or two operands that the model does not know: it
# runs their own rules on leaves (op_reference), checked as each node is made.
GENERIC_OPS = {op.code for op in FIXED_ARITY_OPS} - set(FORWARD)
op_reference.import_reference_for(op_reference.method_of(_lib.OPS[code]) for code in GENERIC_OPS)

UNARY = [op for op in FIXED_ARITY_OPS if op.arity == 1 and not op.takes_param]
BINARY = [op for op in FIXED_ARITY_OPS if op.arity == 2]
WITH_CONSTANT = [op for op in FIXED_ARITY_OPS if op.takes_param]
_SHAPE = {(1, False): "node", (2, False): "node_node", (1, True): "node_number"}
# Each op's own constructor (microcrad_op_constructor), declared by its shape.
CONSTRUCTORS: dict[int, Callable[..., Optional[int]]] = {
    op.code: _lib.op_constructor(c.microcrad_op_constructor(op.code).decode(),
                                 _SHAPE[op.arity, op.takes_param])
    for op in FIXED_ARITY_OPS
}


def _number_forms() -> dict[str, tuple[int, Callable[..., Optional[int]], bool]]:
    """name: (op, constructor, whether the number is the first operand), for every
    number form the library exports for a two-operand op: value_X_scalar(a, c) and
    value_scalar_X(c, a) for the op's constructor value_X."""
    forms = {}
    for op in BINARY:
        stem = c.microcrad_op_constructor(op.code).decode().removeprefix("value_")
        for name, shape, first in ((f"{stem}_scalar", "node_number", False),
                                   (f"scalar_{stem}", "number_node", True)):
            try:
                forms[name] = (op.code, _lib.op_constructor(f"value_{name}", shape), first)
            except ImportError:
                continue  # no such form (pow's number exponent is value_pow_const)
    return forms


SCALAR = _number_forms()

# The ops made by rules of their own rather than drawn from the table above.
STRUCTURAL_RULES = {_lib.OP_LEAF: "leaf", _lib.OP_SUM: "n_ary_sum",
                    _lib.OP_NEURON: "neuron", _lib.OP_CUSTOM: "custom"}


def make(op: _lib.Op, operands: list[Node], param: float, generic: bool) -> Optional[int]:
    """A node of ``op`` over ``operands`` from its own constructor, or from
    value_create_op when ``generic``; None when it fails (as the constructor says)."""
    if generic:
        pinned = _lib.pin_nodes([n.ptr for n in operands], operands)
        return c.value_create_op(op.code, param, pinned.count, pinned.array)
    arguments: list[object] = [n.ptr for n in operands] + ([param] if op.takes_param else [])
    return CONSTRUCTORS[op.code](*arguments)


# Leaf values: small, so that chains of operations stay mostly finite, with the
# special points of the ops (0 for relu, log, pow and division) well represented.
numbers = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, 2.0, -2.0]),
    st.floats(min_value=-3.0, max_value=3.0, allow_nan=False),
)
exponents = st.sampled_from([0.0, 1.0, 2.0, 3.0, -1.0, -2.0, 0.5, 1.5, -0.5])


class GraphMachine(RuleBasedStateMachine):
    """The state machine: rules call the library and update the model to match."""

    tickets = Bundle("tickets")

    def __init__(self) -> None:
        super().__init__()
        self.baseline = _lib.live_values()
        self.live: list[Node] = []

    # --- model bookkeeping ----------------------------------------------------------

    def _adopt(self, ptr: Optional[int], op: int, operands: list[Node], data: float,
               param: float = 0.0) -> Node:
        """Records a node the library has just made, with one ticket for the test."""
        assert ptr is not None, _lib.c.microcrad_last_error()
        actual = c.value_data(ptr)
        assert same_number(actual, data, FORWARD_TOLERANCE), (actual, data)
        node = Node(ptr, op, operands, actual, param, tickets=1)
        for operand in operands:
            operand.users += 1
        self.live.append(node)
        return node

    def _drop(self, node: Node) -> None:
        """Frees node in the model if nothing refers to it any more, and transitively
        the operands it was the last user of."""
        pending = [node]
        while pending:
            current = pending.pop()
            if current.ref_count > 0 or not current.alive:
                continue
            current.alive = False
            self.live.remove(current)
            for operand in current.operands:
                operand.users -= 1
                pending.append(operand)

    # --- creating nodes -------------------------------------------------------------

    @initialize(target=tickets, values=st.lists(numbers, min_size=1, max_size=3))
    def first_leaves(self, values: list[float]) -> object:
        """A few leaves to start from, so that the first steps have operands."""
        return multiple(*(self._new_leaf(value) for value in values))

    def _new_leaf(self, data: float) -> Ticket:
        return Ticket(self._adopt(c.value_create_leaf(data), _lib.OP_LEAF, [], data))

    @rule(target=tickets, data=numbers)
    def leaf(self, data: float) -> Ticket:
        return self._new_leaf(data)

    def _expected(self, op: _lib.Op, operands: list[Node], param: float) -> float:
        """What the model says a new node of ``op`` holds: the formula it knows, or for
        another op its own forward on leaves, once checked against the reference and
        its backward rule against finite differences."""
        datas = [n.data for n in operands]
        if op.code in FORWARD:
            return FORWARD[op.code](*datas, *([param] if op.takes_param else []))
        data = op_reference.forward(op.code, datas, param)
        op_reference.check_op(op, datas, param, data)
        return data

    def _operation(self, op: _lib.Op, operands: list[Node], param: float,
                   generic: bool) -> Ticket:
        ptr = make(op, operands, param, generic)
        return Ticket(self._adopt(ptr, op.code, operands, self._expected(op, operands, param),
                                  param=param))

    @rule(target=tickets, op=st.sampled_from(UNARY), a=tickets, generic=st.booleans())
    def unary(self, op: _lib.Op, a: Ticket, generic: bool) -> Ticket:
        return self._operation(op, [a.node], 0.0, generic)

    @rule(target=tickets, op=st.sampled_from(BINARY), a=tickets, b=tickets,
          generic=st.booleans())
    def binary(self, op: _lib.Op, a: Ticket, b: Ticket, generic: bool) -> Ticket:
        return self._operation(op, [a.node, b.node], 0.0, generic)

    @rule(target=tickets, op=st.sampled_from(WITH_CONSTANT), a=tickets, exponent=exponents,
          generic=st.booleans())
    def pow_const(self, op: _lib.Op, a: Ticket, exponent: float, generic: bool) -> Ticket:
        """An op with a constant (POW_CONST: a ** exponent)."""
        return self._operation(op, [a.node], exponent, generic)

    @rule(target=tickets, name=st.sampled_from(sorted(SCALAR)), a=tickets, constant=numbers)
    def scalar_op(self, name: str, a: Ticket, constant: float) -> Ticket:
        """An operation with a number (value_mul_scalar(a, c), value_scalar_sub(c, a),
        ...): the library makes the number's leaf itself and hands its only reference
        to the new node."""
        op, make_it, constant_first = SCALAR[name]
        ptr = make_it(constant, a.node.ptr) if constant_first else make_it(a.node.ptr, constant)
        assert ptr is not None, c.microcrad_last_error()
        hidden = Node(_lib.prev(ptr)[0 if constant_first else 1], _lib.OP_LEAF, [], constant)
        self.live.append(hidden)
        operands = [hidden, a.node] if constant_first else [a.node, hidden]
        node = self._adopt(ptr, op, operands, self._expected(_lib.OPS[op], operands, 0.0))
        # The leaf is held by the new node only: it goes when the node goes.
        assert hidden.ref_count == 1
        return Ticket(node)

    @rule(target=tickets, terms=st.lists(tickets, max_size=4))
    def n_ary_sum(self, terms: list[Ticket]) -> Ticket:
        nodes = [t.node for t in terms]
        total = 0.0
        for i, node in enumerate(nodes):
            total = node.data if i == 0 else total + node.data
        return Ticket(self._adopt(_lib.sum_of(_lib.pin_nodes([n.ptr for n in nodes], nodes)), _lib.OP_SUM, nodes,
                                  total))

    @rule(target=tickets, pairs=st.lists(st.tuples(tickets, tickets), max_size=3),
          bias=tickets)
    def neuron(self, pairs: list[tuple[Ticket, Ticket]], bias: Ticket) -> Ticket:
        weights = [w.node for w, _ in pairs]
        inputs = [x.node for _, x in pairs]
        total = bias.node.data
        for w, x in zip(weights, inputs):
            total = total + w.data * x.data
        ptr = _lib.neuron(_lib.pin_nodes([n.ptr for n in weights], weights),
                          _lib.pin_nodes([n.ptr for n in inputs], inputs),
                          _lib.pin_nodes([bias.node.ptr], bias))
        operands = [bias.node] + [n for pair in zip(weights, inputs) for n in pair]
        return Ticket(self._adopt(ptr, _lib.OP_NEURON, operands, total))

    @rule(target=tickets, data=numbers, operands=st.lists(tickets, min_size=1, max_size=3))
    def custom(self, data: float, operands: list[Ticket]) -> Ticket:
        nodes = [t.node for t in operands]
        return Ticket(self._adopt(_lib.create(data, _lib.pin_nodes([n.ptr for n in nodes], nodes)), _lib.OP_CUSTOM,
                                  nodes, data))

    # --- references -----------------------------------------------------------------

    @rule(target=tickets, t=tickets)
    def retain(self, t: Ticket) -> Ticket:
        assert c.value_retain(t.node.ptr) == _lib.OK
        t.node.tickets += 1
        return Ticket(t.node)

    @rule(t=consumes(tickets))
    def release(self, t: Ticket) -> None:
        assert c.value_release(t.node.ptr) == _lib.OK
        t.node.tickets -= 1
        self._drop(t.node)

    # --- gradients ------------------------------------------------------------------

    @rule(t=tickets)
    def backward(self, t: Ticket) -> None:
        assert c.value_backward(t.node.ptr) == _lib.OK
        self._model_backward(t.node)

    def _model_backward(self, root: Node) -> None:
        order = topological_order(root)
        for node in order:
            if node.operands:  # interior nodes are recomputed, leaves accumulate
                node.grad, node.scale = 0.0, 0.0
        root.grad += 1.0
        root.scale += 1.0
        for node in reversed(order):
            for operand, slope in local_gradients(node):
                operand.grad += node.grad * slope
                operand.scale += node.scale * abs(slope)

    @rule(t=tickets)
    def zero_grad(self, t: Ticket) -> None:
        assert c.value_zero_grad(t.node.ptr) == _lib.OK
        self._model_zero_grad(t.node)

    def _model_zero_grad(self, root: Node) -> None:
        for node in topological_order(root):
            node.grad, node.scale = 0.0, 0.0

    @rule(t=tickets, grad=numbers)
    def set_grad(self, t: Ticket, grad: float) -> None:
        assert c.value_set_grad(t.node.ptr, grad) == _lib.OK
        t.node.grad, t.node.scale = grad, abs(grad)

    @rule(t=tickets, data=numbers)
    def set_data(self, t: Ticket, data: float) -> None:
        """Overwrites a node's data; nodes computed from it keep theirs (documented)."""
        assert c.value_set_data(t.node.ptr, data) == _lib.OK
        t.node.data = data

    @rule(t=tickets)
    def dot(self, t: Ticket) -> None:
        text = _lib.dot_text(t.node.ptr)
        assert text.lstrip().startswith("digraph"), text[:80]

    # --- allocation failures ----------------------------------------------------------

    @precondition(lambda self: self.live)
    @rule(target=tickets,
          what=st.sampled_from(["leaf", "mul", "op", "sum", "backward", "zero_grad"]),
          data=st.data())
    def failed_allocation(self, what: str, data: st.DataObject) -> object:
        """The next allocation fails: a call that reaches it reports MICROCRAD_ERR_NOMEM
        and changes nothing; a call that allocates nothing (backward from a leaf, say)
        is unaffected and must behave as usual."""
        node = data.draw(st.sampled_from(self.live))
        if what == "op":  # any op of the table, by its constructor or value_create_op
            op = data.draw(st.sampled_from(FIXED_ARITY_OPS))
            param = data.draw(exponents) if op.takes_param else 0.0
            generic = data.draw(st.booleans())
        grads_before = [c.value_grad(n.ptr) for n in self.live]
        live_before = _lib.live_values()
        allocations_before = c.microcrad_allocation_count()
        assert c.microcrad_fail_allocation(1) == _lib.OK
        try:
            if what == "leaf":
                result = c.value_create_leaf(1.0)
            elif what == "mul":
                result = c.value_mul(node.ptr, node.ptr)
            elif what == "op":
                result = make(op, [node] * op.arity, param, generic)
            elif what == "sum":
                result = c.value_sum(1, _lib.pin_nodes([node.ptr], node).array)
            elif what == "backward":
                result = c.value_backward(node.ptr)
            else:
                result = c.value_zero_grad(node.ptr)
        finally:
            c.microcrad_fail_allocation(0)  # cancel it, whether or not it was used
        failed = result is None or (isinstance(result, int) and result < 0 and
                                    what in ("backward", "zero_grad"))
        # It failed exactly when it tried to allocate.
        assert failed == (c.microcrad_allocation_count() > allocations_before), (what, result)
        if not failed:
            return self._succeeded(what, node, result)
        if what == "op":
            assert result is None
        assert result is None or result == _lib.ERR_NOMEM
        assert c.microcrad_last_status() == _lib.ERR_NOMEM
        assert _lib.live_values() == live_before
        grads_after = [c.value_grad(n.ptr) for n in self.live]
        assert all(same_number(a, b, 0.0) for a, b in zip(grads_after, grads_before))
        return multiple()

    def _succeeded(self, what: str, node: Node, result: int) -> object:
        """Model bookkeeping for a call of failed_allocation that did not allocate."""
        if what == "backward":
            self._model_backward(node)
        elif what == "zero_grad":
            self._model_zero_grad(node)
        elif what == "leaf":
            return multiple(Ticket(self._adopt(result, _lib.OP_LEAF, [], 1.0)))
        elif what == "mul":
            return multiple(Ticket(self._adopt(result, _lib.OP_MUL, [node, node],
                                               node.data * node.data)))
        elif what == "op":
            raise AssertionError("a node was made without an allocation")
        else:
            return multiple(Ticket(self._adopt(result, _lib.OP_SUM, [node], node.data)))
        return multiple()

    # --- invariants -----------------------------------------------------------------

    @invariant()
    def live_count_matches(self) -> None:
        assert _lib.live_values() - self.baseline == len(self.live)

    @invariant()
    def nodes_match(self) -> None:
        for node in self.live:
            assert c.value_ref_count(node.ptr) == node.ref_count, node
            assert c.value_op(node.ptr) == node.op, node
            assert same_number(c.value_data(node.ptr), node.data, 0.0), node
            grad = c.value_grad(node.ptr)
            if not math.isfinite(node.scale) or node.scale > 1e300:
                continue  # an overflowed sum: its value depends on the summation order
            assert abs(grad - node.grad) <= GRAD_TOLERANCE * node.scale, (grad, node)

    def teardown(self) -> None:
        """Gives back every reference the test holds: everything must then be freed."""
        for node in list(self.live):
            for _ in range(node.tickets):
                assert c.value_release(node.ptr) == _lib.OK
                node.tickets -= 1
            self._drop(node)
        assert not self.live
        assert _lib.live_values() == self.baseline


def test_the_machine_draws_every_op_of_the_table() -> None:
    """Its rules make every op of the library's op table: those of one or two operands
    drawn from the table itself, the others by rules of their own."""
    drawn = {op.code for op in UNARY + BINARY + WITH_CONSTANT}
    assert drawn == {op.code for op in FIXED_ARITY_OPS}
    assert all(callable(getattr(GraphMachine, rule)) for rule in STRUCTURAL_RULES.values())
    assert drawn | set(STRUCTURAL_RULES) == {op.code for op in _lib.OPS}
    # The number forms are found for every two-operand op that has them.
    assert {"add_scalar", "scalar_add", "sub_scalar", "scalar_sub", "mul_scalar", "scalar_mul",
            "div_scalar", "scalar_div", "scalar_pow"} <= set(SCALAR)


TestGraphStateMachine = GraphMachine.TestCase
# 50 steps per program (Hypothesis' default), the number of programs from the loaded
# profile (tests/conftest.py: 200 in CI).
TestGraphStateMachine.settings = settings(settings(), stateful_step_count=50)
