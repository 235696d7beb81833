"""What any op of the library's op table should compute, for tests whose models do not
know the op's formula.

A test that enumerates ops (tests/op_methods.py) keeps exact, hand-written formulas for
the ops it knows; for every other op of the table it uses these:

* ``forward`` and ``slopes``: the op's own forward and backward rule, applied through
  ``value_create_op`` to fresh leaves holding the operands' data. Exact (the very
  computation the library does inside a graph), so a model built on them can still
  make exact checks of everything around the op: reference counts, graph walks, the
  sums of gradient contributions.
* ``reference``: the op's value from a source other than the library, by the name of
  the op's Value method: Python's ``math`` or ``operator``, else PyTorch in float64
  (when installed).
* ``finite_difference_slopes``: central differences of ``forward``, for the points
  where the op is smooth.

``check_op`` puts them together: the forward against the reference and the backward
rule against finite differences, so that a wrong rule of a new op is caught by every
test that draws ops from the table, without that test knowing the op.
"""

from __future__ import annotations

import functools
import math
import operator
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Sequence

from microcrad import _lib

from op_methods import OP_METHODS, OpMethod

c = _lib.c


@functools.cache
def _torch() -> Any:
    """PyTorch, imported on first need (it takes seconds, and most ops never need it),
    or None when it is not installed: it is optional."""
    try:
        import torch
    except ImportError:
        return None
    return torch


FIXED_ARITY_OPS: list[_lib.Op] = [op for op in _lib.OPS if op.arity in (1, 2)]
"""Every op of the table with one or two operands (the ones with a Value method that
takes its operands directly; the n-ary sum, the neuron, leaves and custom nodes are
made by other means)."""


def method_of(op: _lib.Op) -> Optional[OpMethod]:
    """The Value method that makes a node of ``op`` from its operands alone (``x.exp()``,
    ``x * y``), or from its operand and constant (``x ** 2.0`` for POW_CONST); None for
    an op that Python has no method for (yet)."""
    form = "number" if op.takes_param else ("unary" if op.arity == 1 else "values")
    for method in OP_METHODS:
        if method.op.code == op.code and method.form == form:
            return method
    return None


# ---------------------------------------------------------------------------------
# The library's own rules on fresh leaves
# ---------------------------------------------------------------------------------


@dataclass
class _OnLeaves:
    """A node of ``op`` over fresh leaves (one per operand), released on exit."""

    op: int
    operands: Sequence[float]
    param: float

    def __enter__(self) -> tuple[int, list[int]]:
        self.leaves: list[int] = []
        try:
            for x in self.operands:
                self.leaves.append(_lib.leaf(x))
            self.node = _lib.create_op(self.op, self.param, _lib.pin_nodes(self.leaves, self))
        except BaseException:
            self._release_leaves()
            raise
        return self.node, self.leaves

    def _release_leaves(self) -> None:
        for leaf in self.leaves:
            _lib.release(leaf)

    def __exit__(self, *_: object) -> None:
        _lib.release(self.node)
        self._release_leaves()


def forward(op: int, operands: Sequence[float], param: float = 0.0) -> float:
    """The data of a node of ``op`` over leaves holding ``operands`` (and constant
    ``param``), as the library computes it."""
    with _OnLeaves(op, operands, param) as (node, _):
        return float(c.value_data(node))


def slopes(op: int, operands: Sequence[float], param: float = 0.0,
           data: Optional[float] = None) -> list[float]:
    """d node / d operand for each operand occurrence, from the op's backward rule run
    once with a gradient of 1 on a node over leaves holding ``operands``. ``data`` is
    the node's own data when it is not the op's forward of the operands (a node whose
    data was overwritten after it was made)."""
    with _OnLeaves(op, operands, param) as (node, leaves):
        if data is not None:
            assert c.value_set_data(node, data) == _lib.OK
        assert c.value_backward(node) == _lib.OK
        return [float(c.value_grad(leaf)) for leaf in leaves]


# ---------------------------------------------------------------------------------
# A reference from outside the library
# ---------------------------------------------------------------------------------


def _float_function(method: OpMethod) -> Optional[Callable[..., float]]:
    """``method`` as a function of floats from ``operator`` (``__add__``, ``__abs__``,
    the reflected ``__radd__`` with its operands swapped) or ``math`` (``exp``), or
    None when neither has it."""
    name = method.method
    if method.form == "reflected":
        direct = getattr(operator, "__" + name[3:], None)
        return None if direct is None else (lambda a, number: direct(number, a))
    return getattr(operator, name, None) or getattr(math, name, None)


def import_reference_for(methods: Iterable[Optional[OpMethod]]) -> None:
    """Imports PyTorch now if one of ``methods`` will need it as its reference (it has
    no function in ``math`` or ``operator``). For a test module to call as it is
    imported: PyTorch's many objects are then made before tests/conftest.py freezes
    the collected objects out of the garbage collector's sight, so that the tests'
    gc.collect() calls stay fast."""
    if any(method is not None and _float_function(method) is None for method in methods):
        _torch()


def reference(method: OpMethod, operands: Sequence[float], number: float = 2.0,
              use_torch: bool = True) -> Optional[float]:
    """What ``method`` gives on Values holding ``operands`` (and ``number``), from
    Python's ``operator`` or ``math`` by the method's name when they have it (they
    follow C's libm, whose special cases the library documents for its functions,
    where PyTorch differs: it takes ``x ** 0.5`` as sqrt, so that (-inf) ** 0.5 is nan),
    else from PyTorch (float64) when installed and ``use_torch``; None when neither can
    say (no such function, or a point where Python raises instead of giving inf or
    nan)."""
    function = _float_function(method)
    if function is not None:
        arguments = list(operands) + ([] if method.form in ("unary", "values") else [number])
        try:
            result = function(*arguments)
        except (ArithmeticError, ValueError):
            return None  # math raises where IEEE gives inf or nan: no reference there
        # A complex power ((-2) ** 0.5) has no real value: C's pow gives nan.
        return math.nan if isinstance(result, complex) else float(result)
    torch = _torch() if use_torch else None
    if torch is None:
        return None
    tensors = [torch.tensor(x, dtype=torch.float64) for x in operands]
    bound = getattr(tensors[0], method.method, None)
    if bound is None:
        return None
    if method.form == "unary":
        return float(bound().item())
    return float(bound(tensors[1] if method.form == "values" else number).item())


def node_operands(method: OpMethod, point: Sequence[float],
                  number: float = 2.0) -> tuple[list[float], float]:
    """The operands and constant of the node that ``method`` makes from Values holding
    ``point`` and from ``number``, in value_create_op's terms: a number becomes a leaf
    operand where the method puts it, or the op's constant (``x ** 2.0``)."""
    if method.form in ("unary", "values"):
        return list(point), 0.0
    if method.op.takes_param:
        return list(point), number
    if method.form == "number":
        return list(point) + [number], 0.0
    return [number] + list(point), 0.0


def reference_or_library(method: OpMethod, point: Sequence[float], number: float = 2.0,
                         use_torch: bool = True) -> float:
    """``reference``, or where there is none the library's forward on leaves."""
    expected = reference(method, point, number, use_torch)
    if expected is None:
        return forward(method.op.code, *node_operands(method, point, number))
    return expected


def reference_of_op(op: _lib.Op, operands: Sequence[float], param: float = 0.0) -> Optional[float]:
    """``reference`` for a node of op ``op`` (its constant ``param`` as the number);
    None for an op without a Value method, whose name says nothing."""
    method = method_of(op)
    return None if method is None else reference(method, operands, param)


# ---------------------------------------------------------------------------------
# Finite differences
# ---------------------------------------------------------------------------------

EPSILON = sys.float_info.epsilon


@dataclass(frozen=True)
class Difference:
    """The central difference of a function in one operand, with a tolerance that
    covers its truncation and rounding errors."""

    slope: float
    tolerance: float


def finite_difference_slopes(function: Callable[[Sequence[float]], float],
                             point: Sequence[float]) -> list[Optional[Difference]]:
    """For each operand of ``point``, the central difference of ``function`` there, or
    None where it says nothing: a value that is not finite, an operand too large for a
    step, or a kink (the one-sided differences disagree, as for relu or abs at 0)."""
    result: list[Optional[Difference]] = []
    centre = function(point)
    for i, x in enumerate(point):
        h = 1e-5 * max(1.0, abs(x))
        if not (math.isfinite(centre) and abs(centre) <= 1e8
                and all(math.isfinite(y) and abs(y) <= 1e6 for y in point)):
            result.append(None)
            continue
        shifted = list(point)
        shifted[i] = x + h
        above = function(shifted)
        shifted[i] = x - h
        below = function(shifted)
        if not (math.isfinite(above) and math.isfinite(below)):
            result.append(None)
            continue
        right, left = (above - centre) / h, (centre - below) / h
        central = (above - below) / (2 * h)
        if abs(right - left) > 1e-3 * max(1.0, abs(central)):
            result.append(None)  # not smooth at this scale
            continue
        rounding = 8 * EPSILON * max(abs(above), abs(below), abs(centre)) / h
        result.append(Difference(central, 1e-5 * max(1.0, abs(central)) + rounding))
    return result


def slopes_agree(op: int, operands: Sequence[float], param: float,
                 rule: Sequence[float]) -> int:
    """Checks each slope of ``rule`` (from the op's backward rule) against the finite
    difference of the op's forward where the op is smooth; returns how many it checked.

    Raises:
        AssertionError: a slope disagrees with its finite difference.
    """
    checked = 0
    differences = finite_difference_slopes(lambda xs: forward(op, xs, param), operands)
    for i, (slope, difference) in enumerate(zip(rule, differences)):
        if difference is None:
            continue
        assert abs(slope - difference.slope) <= difference.tolerance, (
            f"op {_lib.op_name(op)!r} at {list(operands)} (param {param}): backward gives "
            f"d/d operand {i} = {slope!r}, finite differences {difference.slope!r}"
        )
        checked += 1
    return checked


def same_as_reference(actual: float, expected: Optional[float], rel: float = 1e-12) -> bool:
    """Whether ``actual`` is ``expected`` up to ``rel`` (NaN equals NaN, infinities must
    match); True when there is no reference."""
    if expected is None:
        return True
    if math.isnan(actual) or math.isnan(expected):
        return math.isnan(actual) and math.isnan(expected)
    if math.isinf(actual) or math.isinf(expected):
        return actual == expected
    return abs(actual - expected) <= rel * max(abs(actual), abs(expected)) + 1e-300


def check_op(op: _lib.Op, operands: Sequence[float], param: float, data: float) -> None:
    """For a node of ``op`` just made over ``operands`` (and ``param``) and holding
    ``data``: its forward against the reference, and its backward rule against finite
    differences where the op is smooth there.

    Raises:
        AssertionError: either disagrees.
    """
    expected = reference_of_op(op, operands, param)
    assert same_as_reference(data, expected), (
        f"op {op.name!r} at {list(operands)} (param {param}): {data!r}, reference {expected!r}"
    )
    slopes_agree(op.code, operands, param, slopes(op.code, operands, param))
