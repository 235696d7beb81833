"""Custom ops defined in Python (``out._backward = f``) under threads, re-assignment,
wrapping, unusual ways of holding the node, and tapes: the cases where a Python
function runs in the middle of a library walk."""

from __future__ import annotations

import copy
import functools
import gc
import math
import sys
import threading
import time
import types
import warnings
from collections.abc import Callable, Iterator

import numpy as np
import pytest

import microcrad
from microcrad import Tape, Value


def _collect() -> None:
    # Twice: a function that names itself (re-assigning itself) is a cycle that
    # becomes garbage only once the collection that frees its node has run.
    gc.collect()
    gc.collect()


@pytest.fixture(autouse=True)
def _no_nodes_left() -> Iterator[None]:
    _collect()
    before = microcrad.live_values()
    yield
    _collect()
    assert microcrad.live_values() == before


def _sin(x: Value, pause: Callable[[], object] = lambda: None) -> Value:
    """micrograd's way of adding an op; ``pause`` runs inside the backward function."""
    out = Value(math.sin(x.data), (x,), "sin")

    def _backward() -> None:
        pause()
        x.grad += math.cos(x.data) * out.grad

    out._backward = _backward
    return out


def _run_threads(work: Callable[[], None], count: int = 2, timeout: float = 60.0) -> None:
    threads = [threading.Thread(target=work, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "threads did not finish"


# ---------------------------------------------------------------------------------------
# Threads: walks take turns, also while a callback has let the GIL go
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pause", [lambda: time.sleep(0.0005), lambda: sum(range(20000))], ids=["sleep", "busy"]
)
def test_threads_back_propagating_through_shared_python_ops_get_exact_gradients(
    pause: Callable[[], object],
) -> None:
    x = Value(0.3)
    root = _sin(_sin(x * 2, pause) * 3, pause)
    root.backward()
    one = x.grad
    x.grad = 0.0
    calls = 25

    def work() -> None:
        for _ in range(calls):
            root.backward()

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        _run_threads(work)
    finally:
        sys.setswitchinterval(old)
    assert x.grad == pytest.approx(2 * calls * one, rel=1e-12)


def test_zero_grad_and_optimizer_wait_for_a_walk_suspended_in_a_callback() -> None:
    x = Value(0.3)
    entered, release = threading.Event(), threading.Event()

    def pause() -> None:
        entered.set()
        release.wait(5)

    root = _sin(x, pause) * 2
    thread = threading.Thread(target=root.backward, daemon=True)
    thread.start()
    assert entered.wait(5)
    done = threading.Event()

    def zero() -> None:
        root.zero_grad()
        done.set()

    other = threading.Thread(target=zero, daemon=True)
    other.start()
    # zero_grad waits while the walk is suspended: it must not run into its marks.
    assert not done.wait(0.2)
    release.set()
    thread.join(5)
    other.join(5)
    assert done.is_set() and x.grad == 0.0 and root.grad == 0.0


def test_assigning_backward_while_another_thread_back_propagates() -> None:
    y = Value(0.5)
    out = Value(math.sin(y.data), (y,), "sin")

    def make() -> Callable[[], None]:
        def _backward() -> None:
            y.grad += math.cos(y.data) * out.grad

        return _backward

    out._backward = make()
    top = out * 2
    stop = threading.Event()
    errors: list[BaseException] = []

    def setter() -> None:
        while not stop.is_set():
            out._backward = make()

    def runner() -> None:
        for _ in range(2000):
            try:
                top.backward()
            except BaseException as error:  # noqa: BLE001 - every failure is the bug
                errors.append(error)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        writer = threading.Thread(target=setter, daemon=True)
        writer.start()
        _run_threads(runner, count=1)
        stop.set()
        writer.join(10)
    finally:
        sys.setswitchinterval(old)
    assert errors == []
    assert y.grad == pytest.approx(2000 * 2 * math.cos(0.5))


def test_a_callback_may_use_its_tape_and_closing_it_there_is_refused() -> None:
    x = Value(0.5)
    seen: list[object] = []
    tape: Tape

    def look() -> None:
        seen.extend([len(tape), tape.data, repr(tape)])

    root = _sin(x, look) * 2
    tape = Tape(root)
    _run_threads(tape.backward, count=1, timeout=10)  # a thread: a deadlock fails the test
    assert seen[0] == len(tape) and seen[1] == root.data
    assert x.grad == pytest.approx(2 * math.cos(0.5))

    def close() -> None:
        tape.close()

    root2 = _sin(x, close) * 2
    tape2 = Tape(root2)
    tape = tape2
    with pytest.raises(RuntimeError, match="inside its own backward"):
        tape2.backward()
    assert len(tape2) > 0  # still open
    tape2.close()


def test_tape_and_value_backward_on_two_threads_with_a_callback_using_the_tape() -> None:
    x = Value(0.5)
    tape: Tape

    def look() -> None:
        time.sleep(0.0005)
        len(tape)

    root = _sin(x, look) * 2
    tape = Tape(root)

    def with_tape() -> None:
        for _ in range(20):
            tape.backward()

    def without() -> None:
        for _ in range(20):
            root.backward()

    threads = [threading.Thread(target=f, daemon=True) for f in (with_tape, without)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads), "deadlock"
    assert x.grad == pytest.approx(40 * 2 * math.cos(0.5))
    tape.close()


# ---------------------------------------------------------------------------------------
# Re-assigning and wrapping _backward, as micrograd allows
# ---------------------------------------------------------------------------------------


def test_wrapping_the_backward_function_of_a_node() -> None:
    x = Value(0.5)
    y = _sin(x)
    inner = y._backward
    seen: list[float] = []

    def hooked() -> None:
        seen.append(y.grad)
        inner()

    y._backward = hooked
    y.backward()
    assert seen == [1.0]
    assert x.grad == pytest.approx(math.cos(0.5))
    (y * 3).backward()  # still works later, every time
    assert x.grad == pytest.approx(4 * math.cos(0.5))


@pytest.mark.parametrize("how", ["reassign", "delete", "replace"])
def test_changing_backward_from_inside_the_running_function(how: str) -> None:
    x = Value(0.5)
    out = Value(math.sin(x.data), (x,), "sin")

    def _backward() -> None:
        if how == "reassign":
            out._backward = _backward
        elif how == "delete":
            del out._backward
        else:
            out._backward = lambda: None
        x.grad += math.cos(x.data) * out.grad

    out._backward = _backward
    out.backward()
    assert x.grad == pytest.approx(math.cos(0.5))
    x.grad = 0.0
    (out * 2).backward()
    expected = 2 * math.cos(0.5) if how == "reassign" else 0.0
    assert x.grad == pytest.approx(expected)


def test_a_kept_backward_function_reports_its_node_freed_instead_of_crashing() -> None:
    x = Value(0.5)
    y = _sin(x)
    kept = y._backward
    y._backward = lambda: None
    del y
    gc.collect()
    with pytest.raises(microcrad.ReleasedValueError):
        kept()


# ---------------------------------------------------------------------------------------
# Ways to hold the node in its own backward function: no node is kept forever
# ---------------------------------------------------------------------------------------


def _nested(x: Value) -> Value:
    out = Value(math.sin(x.data), (x,), "sin")

    def g() -> float:
        return out.grad

    def _backward() -> None:
        x.grad += math.cos(x.data) * g()

    out._backward = _backward
    return out


def _default_argument(x: Value) -> Value:
    out = Value(math.sin(x.data), (x,), "sin")

    def _backward(out: Value = out) -> None:
        x.grad += math.cos(x.data) * out.grad

    out._backward = _backward
    return out


def _keyword_default(x: Value) -> Value:
    out = Value(math.sin(x.data), (x,), "sin")

    def _backward(*, out: Value = out) -> None:
        x.grad += math.cos(x.data) * out.grad

    out._backward = _backward
    return out


def _partial(x: Value) -> Value:
    out = Value(math.sin(x.data), (x,), "sin")

    def step(o: Value) -> None:
        x.grad += math.cos(x.data) * o.grad

    out._backward = functools.partial(step, out)
    return out


def _own_method(x: Value) -> Value:
    out = Value(math.sin(x.data), (x,), "sin")
    out.x = x
    out._backward = functools.partial(lambda o: setattr(o.x, "grad", o.x.grad + math.cos(o.x.data) * o.grad), out)
    return out


def _bound_method_of_handle(x: Value) -> Value:
    out = Value(math.sin(x.data), (x,), "sin")
    out.x = x
    out._backward = types.MethodType(_step_of_handle, out)
    return out


def _step_of_handle(self: Value) -> None:
    self.x.grad += math.cos(self.x.data) * self.grad


@pytest.mark.parametrize(
    "op",
    [_nested, _default_argument, _keyword_default, _partial, _own_method, _bound_method_of_handle],
    ids=["nested-closure", "default-argument", "keyword-default", "partial", "attributes", "method"],
)
def test_backward_functions_holding_their_node_do_not_keep_it(op: Callable[[Value], Value]) -> None:
    gc.collect()
    before = microcrad.live_values()
    for _ in range(200):
        x = Value(0.5)
        y = op(x)
        y.backward()
        assert x.grad == pytest.approx(math.cos(0.5))
        del x, y
    gc.collect()
    assert microcrad.live_values() == before


class _SinObject:
    def __init__(self, x: Value) -> None:
        self.x = x
        self.out = Value(math.sin(x.data), (x,), "sin")
        self.out._backward = self.backward

    def backward(self) -> None:
        self.x.grad += math.cos(self.x.data) * self.out.grad


class _SinOfValue(Value):
    """An op as a Value subclass whose backward function is its own method."""

    def __init__(self, x: Value) -> None:
        super().__init__(math.sin(x.data), (x,), "sin")
        self.x = x
        self._backward = self.step

    def step(self) -> None:
        self.x.grad += math.cos(self.x.data) * self.grad


def test_a_value_subclass_whose_method_is_its_backward_is_reported() -> None:
    x = Value(0.5)
    with pytest.warns(ResourceWarning, match="keep each other alive"):
        y = _SinOfValue(x)
    y.backward()
    assert x.grad == pytest.approx(math.cos(0.5))
    del y._backward  # breaks the cycle, so the fixture's check holds


def test_a_node_held_inside_another_object_is_reported() -> None:
    x = Value(0.5)
    with pytest.warns(ResourceWarning, match="keep each other alive"):
        op = _SinObject(x)
    op.out.backward()
    assert x.grad == pytest.approx(math.cos(0.5))
    del op.out._backward  # breaks the cycle, so the fixture's check holds


def test_the_usual_closure_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _sin(Value(0.5)).backward()


# ---------------------------------------------------------------------------------------
# _ptr, NumPy numbers, copies
# ---------------------------------------------------------------------------------------


def test_ptr_cannot_be_written() -> None:
    x = Value(2.0)
    node = x._ptr
    with pytest.raises(AttributeError, match="read-only"):
        x._ptr = 12345
    with pytest.raises(AttributeError):
        del x._ptr
    assert x._ptr == node and x.data == 2.0
    assert "_ptr" not in vars(x)


@pytest.mark.parametrize(
    "data, expected",
    [(np.bool_(True), 1.0), (np.array(2.0), 2.0), (np.array(3, dtype=np.int8), 3.0)],
)
def test_numpy_bools_and_zero_dimensional_arrays_are_data(data: object, expected: float) -> None:
    assert Value(data).data == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("data", [np.array([1.0]), np.array("a"), np.array(1j)])
def test_other_arrays_are_not_data(data: object) -> None:
    with pytest.raises(TypeError):
        Value(data)  # type: ignore[arg-type]


class _Named(Value):
    pass


class _Slotted(Value):
    __slots__ = ("tag",)


@pytest.mark.parametrize("copier", [copy.copy, copy.deepcopy], ids=["copy", "deepcopy"])
def test_copies_of_a_subclass_keep_the_subclass(copier: Callable[[Value], Value]) -> None:
    named = _Named(1.5)
    named.note = "n"
    slotted = _Slotted(2.5)
    slotted.tag = ["t"]
    named_copy, slotted_copy = copier(named), copier(slotted)
    assert type(named_copy) is _Named and named_copy.note == "n" and named_copy.data == 1.5
    assert type(slotted_copy) is _Slotted and slotted_copy.tag == ["t"]
    assert slotted_copy.data == 2.5
