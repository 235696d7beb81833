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

import threading
from collections.abc import Iterable
from typing import Any

from microcrad import _lib
from microcrad._numbers import as_float
from microcrad.engine import Value

__all__ = ["Tape", "ValueArray"]

_c = _lib.c


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
        self._lock = threading.Lock()
        handle = _c.microcrad_tape_create(root._ptr)
        if handle is None:
            raise _lib.last_failure()
        self._handle: int | None = handle
        self._root = root

    def _live(self) -> int:
        handle = self._handle
        if handle is None:
            raise ValueError("the tape is closed")
        return handle

    @property
    def root(self) -> Value:
        """The recorded root (until the tape is closed)."""
        self._live()
        return self._root

    def forward(self) -> None:
        """Recomputes every node's data from its operands, operands first, from the
        current leaf data."""
        with self._lock:
            _lib.check_status(_c.microcrad_tape_forward(self._live()))

    def backward(self) -> None:
        """Back-propagates from the root, as ``root.backward()`` would: interior
        gradients are recomputed, leaf gradients accumulate. A custom op's
        ``_backward`` runs, and an exception it raises propagates from here."""
        with self._lock:
            _lib.check_backward(_c.microcrad_tape_backward(self._live()))

    def zero_grad(self) -> None:
        """Sets the gradient of every recorded node to 0."""
        with self._lock:
            _lib.check_status(_c.microcrad_tape_zero_grad(self._live()))

    @property
    def data(self) -> float:
        """The root's data: after ``forward()``, the recomputed result."""
        with self._lock:
            return float(_c.microcrad_tape_data(self._live()))

    def __len__(self) -> int:
        """The number of recorded nodes (leaves included)."""
        with self._lock:
            size: int = _c.microcrad_tape_size(self._live())
        _lib.check_status(size)
        return size

    def close(self) -> None:
        """Frees the recording and gives back its reference to the root. Calling it
        again does nothing; any other use afterwards raises ValueError."""
        with self._lock:
            handle, self._handle = self._handle, None
            self._root = None  # type: ignore[assignment]
            if handle is not None:
                _c.microcrad_tape_free(handle)

    def __enter__(self) -> Tape:
        self._live()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self, _free: Any = _c.microcrad_tape_free) -> None:
        # _free is bound early: at interpreter shutdown the module globals may be gone.
        # No lock: nothing else can be using an object that is being destroyed.
        handle = getattr(self, "_handle", None)
        if handle is not None:
            self._handle = None
            _free(handle)

    def __repr__(self) -> str:
        if self._handle is None:
            return "Tape(closed)"
        return f"Tape({len(self)} nodes, data={self.data})"


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
        items = list(values)
        for item in items:
            if not isinstance(item, Value):
                raise TypeError(f"a ValueArray holds Values, not {type(item).__name__!r}")
        if len(items) > 2**31 - 1:
            raise ValueError(f"too many Values for one array: {len(items)}")
        self._values = items
        self._nodes = _lib.BulkNodes([item._ptr for item in items])

    def __len__(self) -> int:
        return len(self._values)

    def __getitem__(self, index: int) -> Value:
        return self._values[index]

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

    def __repr__(self) -> str:
        return f"ValueArray({len(self._values)} values)"
