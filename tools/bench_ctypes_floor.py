#!/usr/bin/env python3
"""How little a Python operation can cost through ctypes: the floor under the Python
per-operation table of tools/bench.py.

Usage::

    .venv/bin/python tools/bench_ctypes_floor.py [REPETITIONS]

Runs the table's workload (benchlib/python_ops.py: products ``a * b`` summed by a
balanced tree of ``+``, backward, drop) on microcrad's Value and on minimal wrapper
classes over the same library, in bare ctypes calls per operation (the least of
interleaved repetitions):

* a minimal class: one slot, each operator one ctypes call and a new object, and a
  ``__del__`` that only queues the node (handed to value_release_many 256 at a time,
  as microcrad's Value does);
* the same with an instance dictionary and weak references, as Value has them
  (attributes such as ``p.m``; the handles ``_prev`` shares);
* the minimal class without ``__del__``: it never releases its nodes (they leak), the
  cost of an operation with no release at all;
* no library: operators that return their left operand, the cost of the loop that
  builds the tree.

The minimal classes are measuring sticks only, not usable engines (no checks, no
number operands, and the last one leaks).
"""

from __future__ import annotations

import array
import sys
from ctypes import c_int, c_int32, c_void_p
from typing import Any, Callable

from benchlib.python_ops import bare_call_seconds, leaf_values, run_once
from microcrad import _lib
from microcrad.engine import Value

c = _lib.c
BOUND = 256

_release_many = c["value_release_many"]
_release_many.restype = c_int
_release_many.argtypes = [c_int32, c_void_p]


def _queue_releases() -> tuple[Callable[[int], None], Any, Callable[[], None]]:
    """A pending list's append, the list, and the function that hands it over."""
    pending = array.array("L")

    def hand_over() -> None:
        count = len(pending)
        taken = pending.tobytes()
        del pending[:count]
        _release_many(count, taken)

    return pending.append, pending, hand_over


def _minimal_class(name: str, slots: tuple[str, ...], releases: bool) -> type:
    """A wrapper class: ``n`` holds the node; ``*`` and ``+`` are one ctypes call each."""
    namespace: dict[str, Any] = {"__slots__": ("n",) + slots}

    def __init__(self: Any, x: float) -> None:
        self.n = c.value_create_leaf(x)

    namespace["__init__"] = __init__
    namespace["data"] = property(lambda self: c.value_data(self.n))
    namespace["grad"] = property(lambda self: c.value_grad(self.n))
    namespace["backward"] = lambda self: c.value_backward(self.n)
    if releases:
        append, pending, hand_over = _queue_releases()

        def __del__(self: Any, _a: Any = append, _p: Any = pending, _h: Any = hand_over) -> None:
            _a(self.n)
            if len(_p) >= BOUND:
                _h()

        namespace["__del__"] = __del__
    cls = type(name, (), namespace)
    for method, c_name in (("__mul__", "value_mul"), ("__add__", "value_add")):
        function = c[c_name]
        function.restype = c_void_p
        function.argtypes = [c_void_p, c_void_p]

        def operator(self: Any, other: Any, f: Any = function, new: Any = object.__new__,
                     cls: type = cls) -> Any:
            result = new(cls)
            result.n = f(self.n, other.n)
            return result

        setattr(cls, method, operator)
    return cls


class NoLibrary:
    """Operators that return their left operand: the loop's own cost."""

    __slots__ = ("x",)

    def __init__(self, x: float) -> None:
        self.x = x

    data = property(lambda self: self.x)
    grad = property(lambda self: 0.0)

    def backward(self) -> None:
        pass

    def __mul__(self, other: Any) -> NoLibrary:
        return self

    __add__ = __mul__


def main() -> None:
    repetitions = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    products = 50_000
    ops = 2 * products - 1
    systems: dict[str, Any] = {
        "microcrad Value": Value,
        "minimal class, __del__ queues the release": _minimal_class("Minimal", (), True),
        "  the same with __dict__ and __weakref__": _minimal_class(
            "MinimalDict", ("__dict__", "__weakref__"), True
        ),
        "minimal class, never releases (leaks)": _minimal_class("Leaking", (), False),
        "no library: operators return self": NoLibrary,
    }
    av, bv = leaf_values(products)
    leaves = {name: ([cls(x) for x in av], [cls(x) for x in bv]) for name, cls in systems.items()}
    best: dict[str, dict[str, float]] = {}
    calls = []
    for _ in range(repetitions):
        calls.append(bare_call_seconds(ops))
        for name, (a, b) in leaves.items():
            settle = _lib.flush_releases if systems[name] is Value else None
            seconds, _ = run_once(a, b, settle)
            if name not in best or sum(seconds.values()) < sum(best[name].values()):
                best[name] = seconds
    call = min(calls)
    print(f"bare ctypes call (value_data): {call * 1e6:.3f} us")
    print("| bare ctypes calls per operation | build | backward | release | total |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds in best.items():
        per = {phase: value / ops / call for phase, value in seconds.items()}
        print(f"| {name} | {per['build']:.2f} | {per['backward']:.2f} | "
              f"{per['release']:.2f} | {sum(per.values()):.2f} |")


if __name__ == "__main__":
    main()
