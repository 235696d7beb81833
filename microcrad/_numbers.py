"""The numbers a Value combines with: recognising them, and turning them into doubles
(or leaf nodes) with the errors that micrograd-style code expects.

A real number is anything ``numbers.Real`` covers: int, float, bool, Fraction, NumPy
scalars, ... Anything else is a TypeError, or ``NotImplemented`` from an operator so
that Python can try the other operand.
"""

from __future__ import annotations

import numbers
import sys
from typing import Union

from microcrad import _lib

# What a Value can be combined with besides another Value. numbers.Real covers every
# kind at run time; int and float are named for the benefit of static type checkers.
Scalar = Union[int, float, numbers.Real]


def unsupported(thing: object, role: str = "operand") -> TypeError:
    """The TypeError for ``thing``, which is not a real number, used as ``role``."""
    return TypeError(f"unsupported {role} type for Value: {type(thing).__name__!r}")


def as_float(number: object, role: str = "operand") -> float:
    """``number`` as a double; TypeError for anything that is not a real number.

    Raises OverflowError for an int (or Fraction) too large for a double, rather than
    letting it become inf silently.
    """
    if type(number) is float:
        return number
    if isinstance(number, numbers.Real):
        return float(number)
    real = _numpy_real(number)
    if real is not None:
        return real
    raise unsupported(number, role)


def _numpy_real(thing: object) -> float | None:
    """A NumPy bool (``np.bool_``, which is not a ``numbers.Real``) or 0-d array of
    bools or real numbers as a double, as micrograd's Value (and our operators, through
    NumPy) take them; None for anything else."""
    numpy = sys.modules.get("numpy")
    if numpy is None:  # not imported, so ``thing`` cannot be one of its objects
        return None
    if isinstance(thing, numpy.bool_):
        return float(thing)
    if isinstance(thing, numpy.ndarray) and thing.ndim == 0 and thing.dtype.kind in "biuf":
        return float(thing)
    return None


def float_or_none(thing: object) -> float | None:
    """``thing`` as a double when it is a real number, else None (an operator then
    returns NotImplemented).

    Raises OverflowError for an int too large for a double.
    """
    if type(thing) is int or isinstance(thing, numbers.Real):
        return float(thing)
    return None


def temporary_leaf(number: object) -> int | None:
    """A new leaf node holding ``number`` (the caller releases it), or None when
    ``number`` is not a real number."""
    if type(number) is float or isinstance(number, numbers.Real):
        return _lib.leaf(float(number))
    return None


def check_text(text: object, role: str) -> str:
    """``text``, which must be a str (a label, an op name); TypeError otherwise."""
    if not isinstance(text, str):
        raise TypeError(f"{role} must be a str, not {type(text).__name__!r}")
    return text
