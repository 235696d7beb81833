"""Replay: record a graph once, then re-run it forward and backward as often as needed.

Building a graph costs a library call and a Python object per operation; a training
loop that builds the same computation every step pays that again and again. A
``Tape`` records the order of a graph's nodes once; afterwards each step only changes
leaf data (new inputs, parameters updated by an optimizer) and replays::

    loss = compute_loss(model, inputs)          # built once, as usual
    tape = Tape(loss)
    optimizer = SGD(model.parameters(), lr=0.1)
    for step in range(steps):
        inputs_array.set_data(next_batch())     # new leaf data (a ValueArray)
        tape.forward()                          # every node recomputed, in C
        optimizer.zero_grad()
        tape.backward()                         # gradients, as loss.backward() would
        optimizer.step()
        print(tape.data)

What is frozen: the operations themselves. A graph records what the program did with
the data it had when it was built, so any choice the program made from the data is
replayed as it was made then: an ``if x.data > 0`` branch, a loop whose length
depended on a value, a ``max`` picked in Python. ``relu`` and the other ops are not
choices of the program: they are recomputed from the new data. Constants (numbers in
expressions, leaves the program never updates) keep their values.

Results are bit-identical to building the graph again from the same leaf data, and
gradients follow ``Value.backward()``: interior gradients are recomputed by each
``backward()`` while leaf gradients accumulate, so zero the parameters' gradients
between steps (``zero_grad()`` here zeroes every node of the tape).

The tape holds a reference to the graph's root, which keeps the whole graph alive
until the tape is closed (``close()``, the end of a ``with`` block, or the object
going away). Every call into the library holds the GIL, so replays from several
Python threads take turns rather than race, as ``Value.backward()`` calls do.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable
from typing import Any, NoReturn

from microcrad import _lib
from microcrad._numbers import as_float
from microcrad.engine import Value

__all__ = ["Tape", "ValueArray"]

_graph_lock = _lib.graph_lock


class Tape:
    """A graph recorded from its root, replayed forward and backward in C.

    Args:
        root: the Value whose graph to record (typically a loss).

    Raises:
        TypeError: ``root`` is not a Value.
        MemoryError: the recording does not fit in memory.
    """

    def __init__(self, root: Value) -> None:
        if not isinstance(root, Value):
            raise TypeError(f"a Tape records a Value, not {type(root).__name__!r}")
        # Serialises use against close(): another thread could close the tape between
        # a method reading the handle and its C call, which would then use freed memory.
        # Re-entrant, because a custom op's _backward runs inside backward() and may use
        # the tape (len, data, repr); _replaying makes close() refuse meanwhile.
        self._lock = threading.RLock()
        self._replaying = 0
        self._handle: int | None = _lib.tape_create(root._ptr)
        self._root = root

    def _live(self) -> int:
        handle = self._handle
        if handle is None:
            raise ValueError("the tape is closed")
        return handle

    @property
    def root(self) -> Value:
        """The recorded root (until the tape is closed)."""
        with self._lock:
            self._live()
            return self._root

    def forward(self) -> None:
        """Recomputes every node's data from its operands, operands first, from the
        current leaf data. A custom op's data (a node made as ``Value(data, children,
        op)``) stays as recorded: its forward rule is Python code the tape does not
        have, so nodes computed from it see that recorded data."""
        with _graph_lock, self._lock:
            _lib.tape_forward(self._live())

    def backward(self) -> None:
        """Back-propagates from the root, as ``root.backward()`` would: interior
        gradients are recomputed, leaf gradients accumulate. A custom op's
        ``_backward`` runs, and an exception it raises propagates from here."""
        # The graph lock first, as everywhere: a callback of another thread's walk
        # (which holds it) may be waiting for this tape's lock.
        with _graph_lock, self._lock:
            handle = self._live()
            self._replaying += 1
            try:
                _lib.tape_backward(handle)
            finally:
                self._replaying -= 1

    def zero_grad(self) -> None:
        """Sets the gradient of every recorded node to 0."""
        with _graph_lock, self._lock:
            _lib.tape_zero_grad(self._live())

    @property
    def data(self) -> float:
        """The root's data: after ``forward()``, the recomputed result."""
        with self._lock:
            self._live()
            # The root's own data (which is what microcrad_tape_data reads): NaN is then
            # only ever the result, never a failure to tell apart from it.
            data: float = self._root.data
            return data

    def __len__(self) -> int:
        """The number of recorded nodes (leaves included)."""
        with self._lock:
            return _lib.tape_size(self._live())

    def close(self) -> None:
        """Frees the recording and gives back its reference to the root. Calling it
        again does nothing; any other use afterwards raises ValueError.

        Raises:
            RuntimeError: called from a custom op's ``_backward`` while this tape's
                ``backward()`` runs it (the replay still needs the recording).
        """
        with self._lock:
            if self._replaying:
                raise RuntimeError(
                    "cannot close a tape from inside its own backward(): close it after "
                    "backward() returns"
                )
            handle, self._handle = self._handle, None
            self._root = None  # type: ignore[assignment]
            if handle is not None:
                _lib.tape_free(handle)

    def __enter__(self) -> Tape:
        self._live()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self, _free: Any = _lib.tape_free) -> None:
        # _free is bound early: at interpreter shutdown the module globals may be gone.
        # No lock: nothing else can be using an object that is being destroyed.
        handle = getattr(self, "_handle", None)
        if handle is not None:
            self._handle = None
            _free(handle)

    # Copies: a copy records the same graph again (a tape of its own, over the same
    # nodes), a deep copy records a deep copy of the graph (so, within one
    # copy.deepcopy call, over the copied model's parameters). A copy of a closed
    # tape is closed. Pickling raises TypeError, as a Value's does.

    def _closed_twin(self) -> Tape:
        twin: Tape = object.__new__(Tape)
        twin._lock = threading.RLock()
        twin._replaying = 0
        twin._handle = None
        twin._root = None  # type: ignore[assignment]
        return twin

    def __copy__(self) -> Tape:
        with self._lock:
            root = self._root if self._handle is not None else None
        return self._closed_twin() if root is None else Tape(root)

    def __deepcopy__(self, memo: dict[int, Any]) -> Tape:
        with self._lock:
            root = self._root if self._handle is not None else None
        twin = self._closed_twin() if root is None else Tape(copy.deepcopy(root, memo))
        memo[id(self)] = twin
        return twin

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError(
            "cannot pickle a microcrad Tape: it records a graph in the C library's "
            "memory; rebuild the graph and record it again instead"
        )

    def __reduce__(self) -> NoReturn:
        self.__reduce_ex__(None)

    def __repr__(self) -> str:
        # One lock for both numbers: another thread may close the tape in between.
        with self._lock:
            handle = self._handle
            if handle is None:
                return "Tape(closed)"
            size = _lib.tape_size(handle)
            data = self._root.data
        return f"Tape({size} nodes, data={data})"


def _not_a_value(item: object) -> TypeError:
    return TypeError(f"a ValueArray holds Values, not {type(item).__name__!r}")


class ValueArray:
    """A fixed sequence of Values whose data is written or read in one library call.

    For feeding a replayed graph: the input leaves of a network, set from each new
    example at once (value_set_data_many) instead of one assignment per number. The
    array holds the Values, so their nodes stay alive while it does.

    Args:
        values: the Values, in the order of the numbers that ``set_data`` will take.

    Raises:
        TypeError: an item is not a Value.
    """

    __slots__ = ("_values", "_nodes")

    def __init__(self, values: Iterable[Value]) -> None:
        pinned = _lib.pin(values, Value, reject=_not_a_value)
        if None in pinned.nodes:  # no C call checks them before the first use
            raise _lib.ReleasedValueError()
        self._values = pinned.values
        self._nodes = _lib.BulkNodes(pinned)

    def __len__(self) -> int:
        return len(self._values)

    def __getitem__(self, index: int) -> Value:
        value: Value = self._values[index]
        return value

    @property
    def values(self) -> list[Value]:
        """The Values (a copy of the list)."""
        return list(self._values)

    def set_data(self, numbers: Any) -> None:
        """Sets ``values[i].data = numbers[i]`` for every i, in one call.

        ``numbers``: a sequence of ``len(self)`` real numbers; a contiguous float64
        buffer (a NumPy array, ``array.array('d')``) is taken without conversion.
        Nodes computed from these are not recomputed (that is ``Tape.forward``).

        Raises:
            ValueError: ``numbers`` does not have ``len(self)`` items.
            TypeError: an item is not a number.
        """
        self._nodes.set_data(numbers, lambda item: as_float(item, "data"))

    def data(self) -> list[float]:
        """Every Value's data, in one call."""
        return self._nodes.data()

    def grad(self) -> list[float]:
        """Every Value's grad, in one call."""
        return self._nodes.grad()

    # A copy holds the same Values, a deep copy copies of them (as copying a list of
    # Values would); each has a C array of its own. Pickling raises TypeError.

    def __copy__(self) -> ValueArray:
        return ValueArray(self._values)

    def __deepcopy__(self, memo: dict[int, Any]) -> ValueArray:
        twin = ValueArray(copy.deepcopy(self._values, memo))
        memo[id(self)] = twin
        return twin

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError(
            "cannot pickle a microcrad ValueArray: it holds Values, handles of nodes in "
            "the C library's memory; save its data() instead"
        )

    def __reduce__(self) -> NoReturn:
        self.__reduce_ex__(None)

    def __repr__(self) -> str:
        return f"ValueArray({len(self._values)} values)"
