"""The fast paths: one library call per operation with a number (the constant still a
leaf of the graph), data and grad read in place outside sanitizer builds, the GIL kept
for quick calls and released for long ones, the fused neuron-with-activation and
step-and-zero-grad calls, and the benchmark's own smoke run.

Nothing here measures time: tools/bench.py does, these tests check results."""

from __future__ import annotations

import ctypes
import json
import math
import operator
import subprocess
import sys
import threading
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import microcrad
from microcrad import _lib
from microcrad.engine import Value

# ---------------------------------------------------------------------------------
# Numbers as operands
# ---------------------------------------------------------------------------------

BINARY = [
    ("+", operator.add),
    ("-", operator.sub),
    ("*", operator.mul),
    ("/", operator.truediv),
]
NUMBERS = [2.5, -3, 0.0, True, Fraction(1, 4), np.float64(1.5), np.int64(-2), np.float32(0.5)]


def leaf_operand(node: Value, number: float, other: Value) -> Value:
    """The constant leaf among ``node``'s operands: the one that is not ``other``."""
    (leaf,) = [v for v in node._prev if v != other]
    assert v_is_leaf_holding(leaf, number)
    return leaf


def v_is_leaf_holding(v: Value, number: float) -> bool:
    return v._op == "" and len(v._prev) == 0 and (v.data == number or math.isnan(number))


@pytest.mark.parametrize("symbol, op", BINARY)
@pytest.mark.parametrize("number", NUMBERS, ids=repr)
@pytest.mark.parametrize("reflected", [False, True], ids=["value_first", "number_first"])
def test_a_number_becomes_a_leaf_operand_as_with_two_values(
    symbol: str, op: Callable[[object, object], Value], number: object, reflected: bool
) -> None:
    x, twin = Value(1.75), Value(1.75)
    constant = Value(float(number))  # type: ignore[arg-type]
    fast = op(number, x) if reflected else op(x, number)
    slow = op(constant, twin) if reflected else op(twin, constant)
    assert fast._op == slow._op == symbol
    assert math.isnan(fast.data) and math.isnan(slow.data) or fast.data == slow.data
    leaf = leaf_operand(fast, float(number), x)  # type: ignore[arg-type]
    assert x in fast._prev and len(fast._prev) == 2
    fast.backward()
    slow.backward()
    assert (x.grad, leaf.grad) == (twin.grad, constant.grad) or math.isnan(x.grad)


@pytest.mark.parametrize("number", NUMBERS, ids=repr)
def test_a_number_base_is_a_leaf_of_the_power(number: object) -> None:
    x = Value(0.5)
    y = number**x  # type: ignore[operator]
    assert y._op == "**"
    assert y.data == float(number) ** 0.5 or math.isnan(y.data)  # type: ignore[arg-type]
    assert leaf_operand(y, float(number), x) in y._prev  # type: ignore[arg-type]


def test_the_operand_order_is_the_written_order() -> None:
    x = Value(3.0)
    for node, first_is_x in [(x - 1, True), (1 - x, False), (x / 2, True), (2 / x, False)]:
        first = _lib.c.value_prev(node._ptr, 0)
        assert (first == x._ptr) is first_is_x


def test_the_leaf_of_a_number_lives_exactly_as_long_as_its_node() -> None:
    x = Value(1.0)
    before = microcrad.live_values()
    y = x * 4
    assert microcrad.live_values() == before + 2
    leaf = leaf_operand(y, 4.0, x)
    assert _lib.c.value_ref_count(leaf._ptr) == 2  # y's reference and this handle's
    del leaf
    assert _lib.c.value_ref_count(x._ptr) == 2
    del y
    assert microcrad.live_values() == before


@pytest.mark.parametrize("symbol, op", BINARY + [("**", operator.pow)])
def test_a_number_too_large_for_a_double_is_an_overflow_error(
    symbol: str, op: Callable[[object, object], Value]
) -> None:
    x = Value(1.0)
    before = microcrad.live_values()
    with pytest.raises(OverflowError):
        op(x, 10**400)
    with pytest.raises(OverflowError):
        op(10**400, x)
    assert microcrad.live_values() == before


@pytest.mark.parametrize("symbol, op", BINARY + [("**", operator.pow)])
@pytest.mark.parametrize("thing", ["2", None, [1.0], 1j])
def test_anything_else_is_a_type_error(
    symbol: str, op: Callable[[object, object], Value], thing: object
) -> None:
    x = Value(1.0)
    with pytest.raises(TypeError):
        op(x, thing)
    with pytest.raises(TypeError):
        op(thing, x)


# ---------------------------------------------------------------------------------
# data and grad in place
# ---------------------------------------------------------------------------------

CHECKING_BUILD = _lib.BUILD_ASAN | _lib.BUILD_TSAN | _lib.BUILD_UBSAN | _lib.BUILD_VALGRIND


def test_direct_access_is_used_exactly_outside_checking_builds() -> None:
    assert _lib.DIRECT_ACCESS is (not (_lib.build_features() & CHECKING_BUILD))


def test_the_node_view_matches_the_struct() -> None:
    assert ctypes.sizeof(_lib.NodeView) == 48
    x = Value(2.5)
    y = x * 3
    view = _lib.NodeView.from_address(y._ptr)
    assert view.data == 7.5 and view.magic == _lib.MAGIC_LIVE
    assert view.op == _lib.OP_MUL and view.n_prevs == 2
    assert view.ref_count == _lib.c.value_ref_count(y._ptr)


@pytest.mark.parametrize("number", [0.25, -0.0, math.inf, math.nan, 3, True, Fraction(1, 8)])
def test_data_and_grad_read_and_write_the_node(number: object) -> None:
    x = Value(0.0)
    x.data = number  # type: ignore[assignment]
    x.grad = number  # type: ignore[assignment]
    expected = float(number)  # type: ignore[arg-type]
    for read in (x.data, x.grad, _lib.c.value_data(x._ptr), _lib.c.value_grad(x._ptr)):
        assert (math.isnan(read) and math.isnan(expected)) or (
            read == expected and math.copysign(1, read) == math.copysign(1, expected)
        )


@pytest.mark.parametrize("bad", ["1.0", None, [1.0], 1j])
def test_setting_data_or_grad_to_a_non_number_is_a_type_error(bad: object) -> None:
    x = Value(1.0)
    with pytest.raises(TypeError):
        x.data = bad  # type: ignore[assignment]
    with pytest.raises(TypeError):
        x.grad = bad  # type: ignore[assignment]
    assert (x.data, x.grad) == (1.0, 0.0)


# ---------------------------------------------------------------------------------
# The GIL
# ---------------------------------------------------------------------------------


def test_every_call_holds_the_gil() -> None:
    for name, _, _ in _lib._SIGNATURES:
        function = getattr(_lib.c, name)
        assert function._flags_ & ctypes._FUNCFLAG_PYTHONAPI, name  # type: ignore[attr-defined]


def test_threads_back_propagating_into_a_shared_leaf_lose_no_update() -> None:
    """Each backward adds 1.0 to the shared leaf's grad once per term; were two threads'
    backward passes to overlap, their read-add-write of that grad would lose updates.
    Every call holds the GIL, so the total is exact (integers are exact in a double)."""
    shared = Value(0.5)
    terms, passes, n_threads = 20_000, 5, 4
    errors: list[BaseException] = []

    def work() -> None:
        try:
            total = Value.sum([shared * 1.0 for _ in range(terms)])
            for _ in range(passes):
                total.backward()
        except BaseException as error:  # reported below
            errors.append(error)

    before = microcrad.live_values()
    threads = [threading.Thread(target=work) for _ in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert shared.grad == float(terms * passes * n_threads)
    assert microcrad.live_values() == before


# ---------------------------------------------------------------------------------
# Fused calls
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("op", [_lib.OP_LEAF, _lib.OP_RELU, _lib.OP_TANH, _lib.OP_SIGMOID])
def test_neuron_forward_is_a_neuron_node_and_its_activation(op: int) -> None:
    w = [Value(v) for v in (0.5, -1.25, 2.0)]
    x = [Value(v) for v in (1.0, 0.75, -0.5)]
    b = Value(0.125)
    params = _lib.NodeArray(_lib.pin([*w, b], Value))
    node = Value.__new__(Value)
    node._Value__node = _lib.neuron_forward(params, _lib.pin(x, Value), op)
    pre = b + w[0] * x[0] + w[1] * x[1] + w[2] * x[2]
    expected = {
        _lib.OP_LEAF: pre,
        _lib.OP_RELU: pre.relu(),
        _lib.OP_TANH: pre.tanh(),
        _lib.OP_SIGMOID: pre.sigmoid(),
    }[op]
    assert node.data == expected.data
    inner = node if op == _lib.OP_LEAF else next(iter(node._prev))
    assert _lib.op_of(inner._ptr) == _lib.OP_NEURON
    if op != _lib.OP_LEAF:
        assert _lib.c.value_ref_count(inner._ptr) == 2  # the activation's and this handle's


def test_step_zero_grad_is_step_then_zero_grad() -> None:
    fused = [Value(v) for v in (1.0, -2.0, 0.5)]
    pair = [Value(v) for v in (1.0, -2.0, 0.5)]
    a = _lib.adam_create(_lib.pin(fused, Value), 0.1, 0.9, 0.999, 1e-8, 0.01)
    b = _lib.adam_create(_lib.pin(pair, Value), 0.1, 0.9, 0.999, 1e-8, 0.01)
    try:
        for step in range(3):
            for i, (p, q) in enumerate(zip(fused, pair)):
                p.grad = q.grad = (i - 1) * 0.5 + step
            _lib.check_status(_lib.c.microcrad_optimizer_step_zero_grad(a))
            _lib.optimizer_step(b)
            _lib.optimizer_zero_grad(b)
            assert [p.data for p in fused] == [q.data for q in pair]
            assert [p.grad for p in fused] == [0.0, 0.0, 0.0]
    finally:
        _lib.optimizer_free(a)
        _lib.optimizer_free(b)


# ---------------------------------------------------------------------------------
# The benchmark runs, and its microcrad variants retrace micrograd
# ---------------------------------------------------------------------------------

BENCH = Path(__file__).resolve().parent.parent / "tools" / "bench.py"


@pytest.mark.skipif(not BENCH.exists(), reason="needs the source tree's tools/bench.py")
def test_the_quick_benchmark_runs_and_retraces_micrograd(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    pytest.importorskip("micrograd")
    out = tmp_path / "bench.json"
    # From the temporary directory, so that the source tree's microcrad/ (which has no
    # library in it) cannot shadow the installed package.
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--no-c", "--json", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "loss checks against micrograd: PASS" in result.stdout
    report = json.loads(out.read_text())
    assert report["loss_checks_passed"] is True
    for part in ("moons", "mnist"):
        runs = {run["name"]: run for run in report[part]}
        for name in ("microcrad per-op", "microcrad fused nn", "microcrad replay"):
            assert runs[name]["check"].startswith("pass"), (part, name, runs[name])
            assert runs[name]["steps"] >= 1
