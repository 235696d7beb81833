"""A Hypothesis state machine over microcrad's public Python API, checked against a
pure-Python model of every node (issue 8).

It drives the Python layer the way the bugs of issue 8 were found, which the graph
state machine (test_graph_state_machine.py, one level down) cannot:

* every call that takes an iterable gets a list, a generator, a ``map`` or a generator
  of temporaries (new Values that nothing else holds): ``Value.sum``, ``Value(...,
  _children=...)``, networks, optimizers, ``ValueArray`` and its ``set_data``;
* every public object is copied, deep-copied and pickled: a copy must be independent
  and correct, or the attempt a TypeError;
* Python threads build graphs, step and replay, close and release at the same time;
* after every step each held Value's data and grad must equal the model's, and
  ``live_values()`` must count exactly the nodes reachable from what the test holds
  (none leaked, none freed early).

The operations are every Value method of the library's op table (tests/op_methods.py),
in every form (``x * y``, ``x * 2``, ``2 * x``). The model has the formulas of the ops
it knows; for any other op it runs the op's own forward and backward rule on fresh
leaves (tests/op_reference.py: exact, so every check around the op stays exact), and
checks them, as each such node is made, against a reference (Python's math/operator or
PyTorch by the method's name) and against central differences where the op is smooth.
"""

from __future__ import annotations

import array
import copy
import gc
import math
import pickle
import random
import threading
from collections.abc import Iterable
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from microcrad import _lib, live_values
from microcrad.engine import Value
from microcrad.nn import MLP
from microcrad.optim import SGD
from microcrad.tape import Tape, ValueArray

import op_reference
from op_methods import OP_METHODS, STRUCTURAL_OPS, OpMethod

# ---------------------------------------------------------------------------------
# The model: one M per C node, with the op's forward and backward rules in Python
# ---------------------------------------------------------------------------------


class M:
    """The model of one node: its op, operands, data and grad. ``op`` is "table" for
    an op of the table the model has no formula for: ``code`` and ``param`` say which
    op, with which constant."""

    __slots__ = ("op", "prev", "data", "grad", "code", "param")

    def __init__(self, op: str, prev: list[M], data: float, code: int = -1,
                 param: float = 0.0) -> None:
        self.op, self.prev, self.data, self.grad = op, prev, data, 0.0
        self.code, self.param = code, param

    @staticmethod
    def leaf(data: float) -> M:
        return M("leaf", [], float(data))

    @staticmethod
    def of(op: str, *prev: M) -> M:
        node = M(op, list(prev), 0.0)
        node.forward()
        return node

    def forward(self) -> None:
        """Recomputes data from the operands (leaves and custom nodes keep theirs)."""
        p = [q.data for q in self.prev]
        if self.op == "+":
            self.data = p[0] + p[1]
        elif self.op == "-":
            self.data = p[0] - p[1]
        elif self.op == "*":
            self.data = p[0] * p[1]
        elif self.op == "neg":
            self.data = -p[0]
        elif self.op == "relu":  # as the library: nan and -0.0 pass through
            self.data = 0.0 if p[0] < 0 else p[0]
        elif self.op == "table":
            self.data = op_reference.forward(self.code, p, self.param)
        elif self.op == "sum":  # left to right, as value_sum
            total = p[0] if p else 0.0
            for term in p[1:]:
                total = total + term
            self.data = total
        elif self.op == "neuron":  # bias, w0, x0, w1, x1, ...: micrograd's order
            total = p[0]
            for w, x in zip(p[1::2], p[2::2]):
                total = total + w * x
            self.data = total

    def local_grads(self) -> list[float]:
        """d(self)/d(operand) for each operand."""
        p = [q.data for q in self.prev]
        if self.op == "+":
            return [1.0, 1.0]
        if self.op == "-":
            return [1.0, -1.0]
        if self.op == "*":
            return [p[1], p[0]]
        if self.op == "neg":
            return [-1.0]
        if self.op == "relu":
            return [0.0 if self.data <= 0 else 1.0]
        if self.op == "table":
            return op_reference.slopes(self.code, p, self.param, self.data)
        if self.op == "sum":
            return [1.0] * len(p)
        if self.op == "neuron":
            grads = [1.0]
            for w, x in zip(p[1::2], p[2::2]):
                grads += [x, w]
            return grads
        raise AssertionError(f"no gradient through {self.op}")


def topo(root: M) -> list[M]:
    """Every node below root, operands first (without recursion)."""
    order: list[M] = []
    seen: set[int] = set()
    stack: list[tuple[M, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((q, False) for q in reversed(node.prev))
    return order


def model_backward(root: M) -> None:
    """value_backward's rule: interior grads recomputed, leaf grads accumulated."""
    order = topo(root)
    for node in order:
        if node.prev:
            node.grad = 0.0
    root.grad += 1.0
    for node in reversed(order):
        if node.prev:
            for operand, local in zip(node.prev, node.local_grads()):
                operand.grad += local * node.grad


def model_deepcopy(root: M, memo: dict[int, M]) -> M:
    for node in topo(root):
        if id(node) not in memo:
            twin = M(node.op, [memo[id(q)] for q in node.prev], node.data, node.code,
                     node.param)
            twin.grad = node.grad
            memo[id(node)] = twin
    return memo[id(root)]


def has_custom(root: M) -> bool:
    return any(node.op == "custom" for node in topo(root))


def same(a: float, b: float) -> bool:
    """Equal up to rounding (the model does the C library's operations in the same
    order; the tolerance only allows for a compiler's contraction of a*b+c)."""
    if a == b or (math.isnan(a) and math.isnan(b)):
        return True
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


# ---------------------------------------------------------------------------------
# Ways to hand an iterable to the API
# ---------------------------------------------------------------------------------

FORMS = ("list", "generator", "map", "temporaries")


def as_form(items: list[Any], form: str) -> Iterable[Any]:
    """``items`` as the given kind of iterable. "temporaries" makes each Value a new
    ``v + 0.0`` that nothing else holds (see ``model_form``)."""
    if form == "list":
        return list(items)
    if form == "generator":
        return (item for item in items)
    if form == "map":
        return map(lambda item: item, items)
    return (item + 0.0 if isinstance(item, Value) else item for item in items)


def model_form(models: list[M | float], form: str) -> list[M]:
    """The model of what ``as_form`` hands over: numbers become leaves, and each Value
    of "temporaries" an addition of a 0.0 leaf."""
    out = []
    for m in models:
        if not isinstance(m, M):
            out.append(M.leaf(m))
        elif form == "temporaries":
            out.append(M.of("+", m, M.leaf(0.0)))
        else:
            out.append(m)
    return out


numbers = st.floats(min_value=-3.0, max_value=3.0, allow_nan=False).map(lambda x: round(x, 3))

# The ops of the table whose formulas the model knows, by the name it gives them.
KNOWN = {_lib.OP_ADD: "+", _lib.OP_SUB: "-", _lib.OP_MUL: "*", _lib.OP_NEG: "neg",
         _lib.OP_RELU: "relu"}
UNARY_METHODS = [method for method in OP_METHODS if method.form == "unary"]
OTHER_METHODS = [method for method in OP_METHODS if method.form != "unary"]
op_reference.import_reference_for(m for m in OP_METHODS if m.op.code not in KNOWN)
# The ops made by rules of their own: leaves, sums, custom nodes, networks' neurons.
STRUCTURAL_RULES = {_lib.OP_LEAF: "leaf", _lib.OP_SUM: "sum", _lib.OP_CUSTOM: "custom",
                    _lib.OP_NEURON: "forward"}


def model_of(method: OpMethod, operands: list[M], number: float, made: Value) -> M:
    """The model of the node ``made`` by ``method`` from Values modelled by
    ``operands`` (and ``number``): a known op by its formula; any other op by its own
    rules on leaves, once checked against the reference and finite differences."""
    param = 0.0
    if method.form == "number" and method.op.takes_param:
        param = number  # x ** 2.0: the exponent is the op's constant
    elif method.form == "number":
        operands = operands + [M.leaf(number)]
    elif method.form == "reflected":
        operands = [M.leaf(number)] + operands
    if method.op.code in KNOWN:
        return M.of(KNOWN[method.op.code], *operands)
    node = M("table", operands, 0.0, method.op.code, param)
    node.forward()
    op_reference.check_op(method.op, [q.data for q in operands], param, made.data)
    return node


def test_the_machine_draws_every_op_of_the_table() -> None:
    """Its rules make every op of the library's op table: every Value method of
    tests/op_methods.py, and the others by rules of their own."""
    assert {str(m) for m in UNARY_METHODS + OTHER_METHODS} == {str(m) for m in OP_METHODS}
    assert all(callable(getattr(PythonAPIMachine, rule)) for rule in STRUCTURAL_RULES.values())
    assert set(STRUCTURAL_RULES) == STRUCTURAL_OPS
    drawn = {method.op.code for method in OP_METHODS} | set(STRUCTURAL_RULES)
    assert drawn == {op.code for op in _lib.OPS}


# ---------------------------------------------------------------------------------
# The machine
# ---------------------------------------------------------------------------------


class PythonAPIMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        gc.collect()
        self.baseline = live_values()
        self.held: list[tuple[Value, M]] = []
        self.models: list[tuple[MLP, list[M]]] = []
        self.optimizers: list[tuple[SGD, list[M], float]] = []
        self.tapes: list[tuple[Tape, M]] = []
        self.arrays: list[tuple[ValueArray, list[M]]] = []

    def teardown(self) -> None:
        self._close_all()
        self.held.clear()
        self.models.clear()
        self.optimizers.clear()
        self.tapes.clear()
        self.arrays.clear()
        gc.collect()
        assert live_values() == self.baseline, "nodes left alive once everything is dropped"

    def _close_all(self) -> None:
        # A method of its own, so that its loop variables are gone before the count.
        for opt, _, _ in self.optimizers:
            opt.close()
        for tape, _ in self.tapes:
            tape.close()

    # -- picking ------------------------------------------------------------------

    def _pick(self, data: st.DataObject, count: int = 1) -> list[tuple[Value, M]]:
        return [self.held[data.draw(st.integers(0, len(self.held) - 1))] for _ in range(count)]

    @staticmethod
    def _one_of(data: st.DataObject, pool: list[Any]) -> Any:
        return pool[data.draw(st.integers(0, len(pool) - 1))] if pool else None

    def _operands(self, data: st.DataObject, max_size: int) -> tuple[list[Any], list[Any]]:
        """Terms to hand over: held Values or numbers, with their models."""
        values: list[Any] = []
        models: list[Any] = []
        for _ in range(data.draw(st.integers(0, max_size))):
            if self.held and data.draw(st.booleans()):
                value, model = self._pick(data)[0]
                values.append(value)
                models.append(model)
            else:
                x = data.draw(numbers)
                values.append(x)
                models.append(x)
        return values, models

    def _leaves(self, data: st.DataObject, max_size: int) -> tuple[list[Value], list[M]]:
        """Distinct held leaves (by node)."""
        chosen: dict[int, tuple[Value, M]] = {}
        leaves = [pair for pair in self.held if pair[1].op == "leaf"]
        if leaves:
            for _ in range(data.draw(st.integers(1, max_size))):
                value, model = leaves[data.draw(st.integers(0, len(leaves) - 1))]
                chosen[id(model)] = (value, model)
        return [v for v, _ in chosen.values()], [m for _, m in chosen.values()]

    # -- building -----------------------------------------------------------------

    @initialize(x=numbers)
    def first_leaf(self, x: float) -> None:
        self.leaf(x)

    @rule(x=numbers)
    def leaf(self, x: float) -> None:
        self.held.append((Value(x), M.leaf(x)))

    @precondition(lambda self: self.held)
    @rule(data=st.data(), method=st.sampled_from(OTHER_METHODS))
    def binary(self, data: st.DataObject, method: OpMethod) -> None:
        """Two Values (``x * y``), or a Value and a number on either side (``x * 2``,
        ``2 * x``)."""
        pairs = self._pick(data, method.operands)
        number = data.draw(numbers) if method.operands == 1 else 2.0
        result = method.apply([v for v, _ in pairs], number)
        self.held.append((result, model_of(method, [m for _, m in pairs], number, result)))

    @precondition(lambda self: self.held)
    @rule(data=st.data(), method=st.sampled_from(UNARY_METHODS))
    def unary(self, data: st.DataObject, method: OpMethod) -> None:
        (a, ma), = self._pick(data)
        result = method.apply([a])
        self.held.append((result, model_of(method, [ma], 0.0, result)))

    @rule(data=st.data(), form=st.sampled_from(FORMS))
    def sum(self, data: st.DataObject, form: str) -> None:
        values, models = self._operands(data, 5)
        total = Value.sum(as_form(values, form))
        self.held.append((total, M.of("sum", *model_form(models, form))))

    @precondition(lambda self: self.held)
    @rule(data=st.data(), x=numbers, form=st.sampled_from(FORMS))
    def custom(self, data: st.DataObject, x: float, form: str) -> None:
        pairs = self._pick(data, data.draw(st.integers(1, 3)))
        node = Value(x, _children=as_form([v for v, _ in pairs], form), _op="f")
        self.held.append((node, M("custom", model_form([m for _, m in pairs], form), x)))

    @rule(nin=st.integers(1, 3), sizes=st.lists(st.integers(1, 3), min_size=1, max_size=2),
          seed=st.integers(0, 2**16))
    def network(self, nin: int, sizes: list[int], seed: int) -> None:
        random.seed(seed)
        model = MLP(nin, sizes)
        self.models.append((model, [M.leaf(p.data) for p in model.parameters()]))

    @precondition(lambda self: self.models)
    @rule(data=st.data(), form=st.sampled_from(FORMS))
    def forward(self, data: st.DataObject, form: str) -> None:
        model, params = self.models[data.draw(st.integers(0, len(self.models) - 1))]
        nin = len(model.layers[0].neurons[0].w)
        values, models = [], []
        while len(values) < nin:
            more_values, more_models = self._operands(data, nin - len(values))
            values += more_values
            models += more_models
        out = model(as_form(values, form))
        # The model: one neuron node (and a relu for hidden layers) per neuron.
        xs = model_form(models, form)
        k = 0
        for index, layer in enumerate(model.layers):
            outs = []
            for neuron in layer.neurons:
                n = len(neuron.w)
                w, b = params[k : k + n], params[k + n]
                k += n + 1
                pre = M.of("neuron", b, *[q for pair in zip(w, xs) for q in pair])
                outs.append(M.of("relu", pre) if index < len(model.layers) - 1 else pre)
            xs = outs
        results = out if isinstance(out, list) else [out]
        assert len(results) == len(xs)
        self.held += list(zip(results, xs))

    # -- gradients ----------------------------------------------------------------

    @precondition(lambda self: self.held)
    @rule(data=st.data(), zero=st.booleans())
    def backward(self, data: st.DataObject, zero: bool) -> None:
        (root, m), = self._pick(data)
        if has_custom(m):
            return
        if zero:
            root.zero_grad()
            for node in topo(m):
                node.grad = 0.0
        else:
            root.backward()
            model_backward(m)

    # -- optimizers ---------------------------------------------------------------

    @precondition(lambda self: any(m.op == "leaf" for _, m in self.held))
    @rule(data=st.data(), form=st.sampled_from(("list", "generator", "map")),
          lr=st.sampled_from([0.5, 0.125]))
    def optimizer(self, data: st.DataObject, form: str, lr: float) -> None:
        values, models = self._leaves(data, 4)
        self.optimizers.append((SGD(as_form(values, form), lr=lr), models, lr))

    @precondition(lambda self: self.optimizers)
    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        opt, models, lr = self.optimizers[data.draw(st.integers(0, len(self.optimizers) - 1))]
        try:
            opt.step()
        except ValueError:
            assert opt._handle is None  # closed
            return
        for m in models:
            m.data = m.data - lr * m.grad

    @precondition(lambda self: self.optimizers)
    @rule(data=st.data())
    def close_optimizer(self, data: st.DataObject) -> None:
        self.optimizers[data.draw(st.integers(0, len(self.optimizers) - 1))][0].close()

    # -- tapes and bulk access ----------------------------------------------------

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def record(self, data: st.DataObject) -> None:
        (root, m), = self._pick(data)
        self.tapes.append((Tape(root), m))

    @precondition(lambda self: self.tapes)
    @rule(data=st.data(), backward=st.booleans())
    def replay(self, data: st.DataObject, backward: bool) -> None:
        tape, m = self.tapes[data.draw(st.integers(0, len(self.tapes) - 1))]
        try:
            tape.forward()
            if backward and not has_custom(m):
                tape.backward()
        except ValueError:
            assert tape._handle is None  # closed
            return
        for node in topo(m):
            node.forward()
        if backward and not has_custom(m):
            model_backward(m)
        assert same(tape.data, m.data)

    @precondition(lambda self: self.tapes)
    @rule(data=st.data())
    def close_tape(self, data: st.DataObject) -> None:
        self.tapes[data.draw(st.integers(0, len(self.tapes) - 1))][0].close()

    @precondition(lambda self: any(m.op == "leaf" for _, m in self.held))
    @rule(data=st.data(), form=st.sampled_from(("list", "generator", "map")))
    def value_array(self, data: st.DataObject, form: str) -> None:
        values, models = self._leaves(data, 4)
        self.arrays.append((ValueArray(as_form(values, form)), models))

    @precondition(lambda self: self.arrays)
    @rule(data=st.data(), form=st.sampled_from(("list", "generator", "map", "numpy", "array")))
    def set_data(self, data: st.DataObject, form: str) -> None:
        va, models = self.arrays[data.draw(st.integers(0, len(self.arrays) - 1))]
        xs = data.draw(st.lists(numbers, min_size=len(models), max_size=len(models)))
        given: Any = (
            np.array(xs) if form == "numpy" else array.array("d", xs) if form == "array"
            else as_form(xs, form)
        )
        va.set_data(given)
        for m, x in zip(models, xs):
            m.data = x
        assert va.data() == xs

    # -- copies -------------------------------------------------------------------

    @precondition(lambda self: self.held)
    @rule(data=st.data(), how=st.sampled_from(["copy", "deepcopy", "pickle"]),
          what=st.sampled_from(["value", "network", "optimizer", "tape", "array"]))
    def duplicate(self, data: st.DataObject, how: str, what: str) -> None:
        pool: list[Any] = {
            "value": self.held, "network": self.models, "optimizer": self.optimizers,
            "tape": self.tapes, "array": self.arrays,
        }[what]
        if not pool:
            return
        entry = pool[data.draw(st.integers(0, len(pool) - 1))]
        thing = entry[0]
        if how == "pickle" or what == "optimizer":
            with pytest.raises(TypeError, match=f"microcrad {type(thing).__name__}"):
                {"copy": copy.copy, "deepcopy": copy.deepcopy, "pickle": pickle.dumps}[how](thing)
            return
        memo: dict[int, M] = {}
        twin = copy.copy(thing) if how == "copy" else copy.deepcopy(thing)
        if what == "value":
            m = entry[1] if how == "copy" else model_deepcopy(entry[1], memo)
            self.held.append((twin, m))
        elif what == "network":
            ms = entry[1] if how == "copy" else [model_deepcopy(p, memo) for p in entry[1]]
            self.models.append((twin, ms))
        elif what == "tape":
            if thing._handle is None:  # a closed tape's copy is closed
                with pytest.raises(ValueError, match="closed"):
                    twin.forward()
                return
            m = entry[1] if how == "copy" else model_deepcopy(entry[1], memo)
            self.tapes.append((twin, m))
        else:
            ms = entry[1] if how == "copy" else [model_deepcopy(p, memo) for p in entry[1]]
            self.arrays.append((twin, ms))

    # -- releasing ----------------------------------------------------------------

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        del self.held[data.draw(st.integers(0, len(self.held) - 1))]

    @rule(what=st.sampled_from(["network", "optimizer", "tape", "array"]), data=st.data())
    def drop(self, what: str, data: st.DataObject) -> None:
        pool: list[Any] = {
            "network": self.models, "optimizer": self.optimizers,
            "tape": self.tapes, "array": self.arrays,
        }[what]
        if pool:
            del pool[data.draw(st.integers(0, len(pool) - 1))]

    # -- threads ------------------------------------------------------------------

    @precondition(lambda self: self.held)
    @rule(data=st.data(), steps=st.integers(1, 4))
    def threads(self, data: st.DataObject, steps: int) -> None:
        """At once: one thread steps an optimizer while another closes it, one
        replays a tape while another closes it, one builds sums over generators of
        temporaries and releases them, one releases held Values."""
        errors: list[BaseException] = []
        counts = {"steps": 0, "replays": 0}
        opt_entry = self._one_of(data, self.optimizers)
        tape_entry = self._one_of(data, self.tapes)
        changing = {id(m) for m in opt_entry[1]} if opt_entry is not None else set()
        if tape_entry is not None and {id(m) for m in topo(tape_entry[1])} & changing:
            tape_entry = None  # its replays would race the steps: no model for that
        if tape_entry is not None:
            changing |= {id(m) for m in topo(tape_entry[1])}
        # Sums over Values that no other thread changes.
        stable = [(v, m) for v, m in self._pick(data, 3) if not {id(q) for q in topo(m)} & changing]
        doomed = [self.held.pop(data.draw(st.integers(0, len(self.held) - 1)))[0]
                  for _ in range(min(2, len(self.held)))]
        tape_closes = data.draw(st.booleans())
        sums: list[float] = []

        def guarded(work: Callable[[], None]) -> Callable[[], None]:
            def run() -> None:
                try:
                    work()
                except BaseException as error:  # noqa: BLE001 - reported below
                    errors.append(error)
            return run

        def step_optimizer() -> None:
            assert opt_entry is not None
            for _ in range(steps):
                try:
                    opt_entry[0].step()
                except ValueError:
                    return  # closed by the other thread
                counts["steps"] += 1

        def replay() -> None:
            assert tape_entry is not None
            for _ in range(steps):
                try:
                    tape_entry[0].forward()
                except ValueError:
                    return  # closed by the other thread
                counts["replays"] += 1

        def build() -> None:
            for _ in range(steps):
                sums.append(Value.sum(v * 1.0 for v, _ in stable).data)

        def release() -> None:
            while doomed:
                doomed.pop()

        work: list[Callable[[], None]] = [build, release]
        if opt_entry is not None:
            work += [step_optimizer, opt_entry[0].close]
        if tape_entry is not None:
            work += [replay] + ([tape_entry[0].close] if tape_closes else [])
        threads = [threading.Thread(target=guarded(w)) for w in work]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        expected = M.of("sum", *[M.of("*", m, M.leaf(1.0)) for _, m in stable]).data
        assert all(same(total, expected) for total in sums), (sums, expected)
        if opt_entry is not None:
            _, models, lr = opt_entry
            for _ in range(counts["steps"]):
                for m in models:
                    m.data = m.data - lr * m.grad
        if tape_entry is not None and counts["replays"]:
            for node in topo(tape_entry[1]):
                node.forward()

    # -- invariants ---------------------------------------------------------------

    @invariant()
    def values_match_the_model(self) -> None:
        for value, m in self.held:
            assert same(value.data, m.data), (value, m.op, m.data)
            assert same(value.grad, m.grad), (value, m.op, m.grad)
        for model, params in self.models:
            for p, m in zip(model.parameters(), params):
                assert same(p.data, m.data) and same(p.grad, m.grad)

    @invariant()
    def live_values_counts_exactly_what_is_reachable(self) -> None:
        roots: list[Value] = [v for v, _ in self.held]
        for model, _ in self.models:
            roots += model.parameters()
        for opt, _, _ in self.optimizers:
            roots += opt.params
        for tape, _ in self.tapes:
            if tape._handle is not None:
                roots.append(tape.root)
        for va, _ in self.arrays:
            roots += va.values
        seen: set[int] = set()
        pending = [v._ptr for v in roots]
        while pending:
            node = pending.pop()
            if node not in seen:
                seen.add(node)
                pending += _lib.prev(node)
        assert live_values() - self.baseline == len(seen)


PythonAPIMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=30, deadline=None
)
test_python_api_state_machine = PythonAPIMachine.TestCase
