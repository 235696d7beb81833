"""Regressions of the Python layer's lifetimes (issue 8): operands that must stay alive
while C reads them, copies of objects that own C memory, use and close() from several
threads, Values reached after garbage collection released them, and ValueArray's
input checks.

Each test here failed before the fix: sums over generators read freed nodes, copies
shared (and then double-freed) C handles, an optimizer could be freed in the middle of
a step, a released Value gave "TypeError: integer expected", and
``ValueArray.set_data(b"ab")`` set 97 and 98.
"""

from __future__ import annotations

import copy
import gc
import pickle
import threading
from typing import Any, Callable

import numpy as np
import pytest

import microcrad
from microcrad import _lib
from microcrad.engine import Value
from microcrad.nn import MLP, Layer, Neuron
from microcrad.optim import SGD, Adam
from microcrad.tape import Tape, ValueArray

# ---------------------------------------------------------------------------------
# Defect 1: operands stay alive until C has them
# ---------------------------------------------------------------------------------


def test_sum_of_a_generator_of_temporaries_keeps_them_alive() -> None:
    params = [Value(-1.0), Value(2.0), Value(-3.0)]
    total = Value.sum(p if p.data >= 0 else -p for p in params)
    assert total.data == 6.0
    total.backward()
    assert [p.grad for p in params] == [-1.0, 1.0, -1.0]


def test_sum_of_products_from_zip() -> None:
    ws = [Value(float(i)) for i in range(1, 6)]
    xs = [Value(float(i)) for i in range(1, 6)]
    total = Value.sum(w * x for w, x in zip(ws, xs))
    assert total.data == 1 + 4 + 9 + 16 + 25
    total.backward()
    assert [w.grad for w in ws] == [x.data for x in xs]


def test_sum_of_sums_made_by_a_generator() -> None:
    # Each inner sum is dropped by the generator as soon as the next one is made:
    # before the fix the outer sum read a freed node (or a new one at its address).
    x = Value(1.0)
    total = Value.sum(Value.sum([x] * (k + 1)) for k in range(3))
    assert total.data == 1.0 + 2.0 + 3.0
    total.backward()
    assert x.grad == 6.0


@pytest.mark.slow
def test_sum_of_two_huge_temporary_sums() -> None:
    # The reproducer, which segfaulted.
    x = Value(1.0)
    total = Value.sum(Value.sum([x] * 4_500_000) for _ in range(2))
    assert total.data == 9_000_000.0


def test_sum_of_a_map_mixing_numbers_and_values() -> None:
    xs = [Value(2.0), Value(3.0)]
    total = Value.sum(map(lambda v: v * v, xs))
    assert total.data == 13.0
    assert Value.sum(iter([1, Value(2.0), 3.5])).data == 6.5


def test_children_from_a_generator_of_temporaries() -> None:
    xs = [Value(1.0), Value(2.0)]
    node = Value(7.0, _children=(x * 2 for x in xs), _op="custom")
    assert sorted(child.data for child in node._prev) == [2.0, 4.0]


def test_network_optimizer_and_array_take_generators_of_temporaries() -> None:
    model = MLP(3, [4, 1])
    out = model(Value(float(i)) * 1.0 for i in range(3))
    reference = model([0.0, 1.0, 2.0])
    assert isinstance(out, Value) and out.data == reference.data
    opt = SGD((p for p in model.parameters()), lr=0.5)
    out.backward()
    before = [p.data - 0.5 * p.grad for p in model.parameters()]
    opt.step()
    assert [p.data for p in model.parameters()] == before
    array = ValueArray(Value(float(i)) for i in range(3))
    array.set_data(map(float, range(10, 13)))
    assert array.data() == [10.0, 11.0, 12.0]


def test_pin_rejects_what_is_not_a_value() -> None:
    with pytest.raises(TypeError, match="unsupported term type"):
        Value.sum([Value(1.0), "2"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="ValueArray holds Values"):
        ValueArray([Value(1.0), 2.0])  # type: ignore[list-item]


# ---------------------------------------------------------------------------------
# Defect 2: copies of objects that own C memory
# ---------------------------------------------------------------------------------


def _sgd() -> tuple[SGD, Value]:
    p = Value(1.0)
    p.grad = 1.0
    return SGD([p], lr=0.5), p


def _adam() -> tuple[Adam, Value]:
    p = Value(1.0)
    p.grad = 1.0
    return Adam([p], lr=0.5), p


@pytest.mark.parametrize("make", [_sgd, _adam], ids=["SGD", "Adam"])
@pytest.mark.parametrize("how", ["copy", "deep-copy", "pickle"])
def test_an_optimizer_refuses_to_be_copied(make: Callable[[], Any], how: str) -> None:
    opt, p = make()
    name = type(opt).__name__
    action: Callable[[Any], Any] = {
        "copy": copy.copy,
        "deep-copy": copy.deepcopy,
        "pickle": pickle.dumps,
    }[how]
    with pytest.raises(TypeError, match=f"cannot {how} a microcrad {name}"):
        action(opt)
    opt.step()  # the original is untouched and works
    assert p.data == 0.5 if name == "SGD" else p.data < 1.0


def _graph() -> tuple[Value, Value]:
    x = Value(3.0)
    return x, (x * x + 1.0).relu()


def test_a_copied_tape_has_its_own_recording() -> None:
    x, root = _graph()
    tape = Tape(root)
    twin = copy.copy(tape)
    tape.close()
    del tape
    gc.collect()
    x.data = 4.0
    twin.forward()
    assert twin.data == 17.0 and len(twin) == 5
    twin.backward()
    assert x.grad == 8.0
    twin.close()


def test_a_deep_copied_tape_replays_a_copy_of_the_graph() -> None:
    x, root = _graph()
    tape = Tape(root)
    twin = copy.deepcopy(tape)
    x.data = 5.0
    tape.forward()
    twin.forward()
    assert tape.data == 26.0 and twin.data == 10.0  # the copy kept x = 3
    twin.backward()
    assert x.grad == 0.0


def test_a_copied_closed_tape_is_closed_and_a_tape_refuses_pickling() -> None:
    _, root = _graph()
    tape = Tape(root)
    with pytest.raises(TypeError, match="cannot pickle a microcrad Tape"):
        pickle.dumps(tape)
    tape.close()
    for twin in (copy.copy(tape), copy.deepcopy(tape)):
        with pytest.raises(ValueError, match="closed"):
            twin.forward()


def test_a_closed_tape_raises_instead_of_returning_nan() -> None:
    _, root = _graph()
    tape = Tape(root)
    twin = copy.copy(tape)
    tape.close()
    with pytest.raises(ValueError, match="closed"):
        tape.data
    assert twin.data == 10.0


def test_value_array_copies_are_independent() -> None:
    xs = [Value(1.0), Value(2.0)]
    array = ValueArray(xs)
    shallow, deep = copy.copy(array), copy.deepcopy(array)
    deep.set_data([7.0, 8.0])
    assert [x.data for x in xs] == [1.0, 2.0], "a deep copy writes to its own nodes"
    assert deep.data() == [v.data for v in deep.values] == [7.0, 8.0]
    del array
    gc.collect()
    shallow.set_data([5.0, 6.0])
    assert [x.data for x in xs] == [5.0, 6.0]
    with pytest.raises(TypeError, match="cannot pickle a microcrad ValueArray"):
        pickle.dumps(shallow)


@pytest.mark.parametrize("make", [lambda: Neuron(2), lambda: Layer(2, 2), lambda: MLP(2, [2, 1])])
def test_modules_copy_deep_copy_and_refuse_pickling(make: Callable[[], Any]) -> None:
    model = make()
    with pytest.raises(TypeError, match=f"cannot pickle a microcrad {type(model).__name__}"):
        pickle.dumps(model)
    deep = copy.deepcopy(model)
    shallow = copy.copy(model)
    for p in deep.parameters():
        p.data += 1.0
    assert [p.data + 1.0 for p in model.parameters()] == [p.data for p in deep.parameters()]
    assert [id(p) for p in shallow.parameters()] == [id(p) for p in model.parameters()]
    assert deep([1.0, 2.0]) is not None and shallow([1.0, 2.0]) is not None


@pytest.mark.parametrize("how", [copy.copy, copy.deepcopy, pickle.dumps])
def test_internal_arrays_refuse_copies(how: Callable[[Any], Any]) -> None:
    xs = [Value(1.0), Value(2.0)]
    pinned = _lib.pin(xs, Value)
    for thing in (pinned, _lib.NodeArray(pinned), _lib.BulkNodes(pinned)):
        with pytest.raises(TypeError, match=f"microcrad {type(thing).__name__}"):
            how(thing)


# ---------------------------------------------------------------------------------
# Defect 4: use and close() from several threads
# ---------------------------------------------------------------------------------


def test_close_waits_for_a_step_in_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    # A step is held in the middle (after it has read the handle, before its C call)
    # while another thread closes the optimizer: close() must wait for the step,
    # which must still see its own optimizer open. Before the fix close() went
    # ahead and the step used a freed handle.
    opt, p = _sgd()
    closed = threading.Event()
    seen: list[bool] = []
    real_step = _lib.optimizer_step

    def step_held_open(handle: int) -> None:
        closer = threading.Thread(target=lambda: (opt.close(), closed.set()))
        closer.start()
        closed.wait(timeout=0.5)  # returns at once if close() did not wait
        seen.append(opt._handle == handle)
        if seen[-1]:
            real_step(handle)
        closer_threads.append(closer)

    closer_threads: list[threading.Thread] = []
    monkeypatch.setattr(_lib, "optimizer_step", step_held_open)
    opt.step()
    for thread in closer_threads:
        thread.join()
    assert seen == [True], "close() freed the optimizer in the middle of a step"
    assert p.data == 0.5
    with pytest.raises(ValueError, match="closed"):
        opt.step()


@pytest.mark.parametrize("kind", ["SGD", "Adam", "Tape"])
def test_threads_step_and_close_without_crashing(kind: str) -> None:
    for _ in range(20):
        params = [Value(float(i)) for i in range(4)]
        for p in params:
            p.grad = 1.0
        thing: Any
        if kind == "Tape":
            thing = Tape(Value.sum(p * p for p in params))
            use = thing.forward
        else:
            thing = (SGD if kind == "SGD" else Adam)(params, lr=0.1)
            use = thing.step
        errors: list[BaseException] = []

        def worker() -> None:
            for _ in range(20):
                try:
                    use()
                except ValueError as error:
                    if "closed" not in str(error):  # the only error allowed
                        errors.append(error)
                    return
                except BaseException as error:  # noqa: BLE001 - reported below
                    errors.append(error)
                    return

        threads = [threading.Thread(target=worker) for _ in range(3)]
        threads.append(threading.Thread(target=thing.close))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []


# ---------------------------------------------------------------------------------
# Defect 7: a Value reached after garbage collection released it
# ---------------------------------------------------------------------------------


def _released_value() -> Value:
    value = Value(3.0)
    value.__del__()  # what cyclic garbage collection does before another __del__ runs
    return value


@pytest.mark.parametrize(
    "use",
    [
        lambda v: v.data,
        lambda v: v.grad,
        lambda v: setattr(v, "data", 1.0),
        lambda v: setattr(v, "grad", 1.0),
        lambda v: v + 1.0,
        lambda v: v * v,
        lambda v: v.relu(),
        lambda v: v.backward(),
        lambda v: Value.sum([v]),
        lambda v: ValueArray([v]),
        lambda v: SGD([v], lr=0.1),
        lambda v: Tape(v),
        lambda v: copy.copy(v),
    ],
)
def test_a_released_value_names_the_cause(use: Callable[[Value], Any]) -> None:
    value = _released_value()
    with pytest.raises(microcrad.ReleasedValueError, match="released during garbage collection"):
        use(value)


def test_a_value_reached_from_del_during_cyclic_gc() -> None:
    outcomes: list[object] = []

    class Holder:
        value: Value
        cycle: Holder

        def __del__(self) -> None:
            try:
                outcomes.append(self.value.data)
            except Exception as error:  # noqa: BLE001 - recorded and checked below
                outcomes.append(error)

    gc.disable()
    try:
        for _ in range(5):
            # The Value first: the collector finalizes a cycle's objects in the order
            # they were made, so the Value's __del__ runs before the holder's.
            value = Value(3.0)
            holder = Holder()
            holder.value = value
            holder.cycle = holder
            del holder, value
        gc.collect()
    finally:
        gc.enable()
    assert len(outcomes) == 5
    for outcome in outcomes:
        assert outcome == 3.0 or isinstance(outcome, microcrad.ReleasedValueError), outcome


# ---------------------------------------------------------------------------------
# Defect 7: what ValueArray.set_data accepts
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [b"ab", bytearray(b"ab"), "ab"])
def test_set_data_refuses_bytes_and_text(text: object) -> None:
    array = ValueArray([Value(0.0), Value(0.0)])
    with pytest.raises(TypeError, match="sequence of numbers"):
        array.set_data(text)
    assert array.data() == [0.0, 0.0]


def test_set_data_refuses_complex_arrays() -> None:
    array = ValueArray([Value(0.0), Value(0.0)])
    with pytest.raises(TypeError, match="complex"):
        array.set_data(np.array([1 + 2j, 3j]))
    assert array.data() == [0.0, 0.0]


def test_set_data_takes_big_endian_and_other_numeric_arrays() -> None:
    array = ValueArray([Value(0.0), Value(0.0)])
    array.set_data(np.array([1.5, -2.25], dtype=">f8"))
    assert array.data() == [1.5, -2.25]
    array.set_data(np.array([3, 4], dtype=np.int16))
    assert array.data() == [3.0, 4.0]
    array.set_data(np.array([0.5, 0.25], dtype=np.float32))
    assert array.data() == [0.5, 0.25]


def test_set_data_shapes() -> None:
    array = ValueArray([Value(0.0), Value(0.0)])
    with pytest.raises(TypeError, match="0-d array"):
        array.set_data(np.array(1.0))
    with pytest.raises(ValueError, match="2-d array"):
        array.set_data(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="expected 2 numbers, got 3"):
        array.set_data(np.zeros(3, dtype=">f8"))
