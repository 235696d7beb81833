"""How a Value reads and writes its node's ``data`` and ``grad``: the property
functions of ``Value.data`` and ``Value.grad``.

Normally in place, through a ctypes view of the node's struct (``_lib.NodeView``), at
about half the cost of a checked call into the library. That is safe because a Value
owns a reference to its node, so the node is alive whenever the view is used. In a
library built for AddressSanitizer, ThreadSanitizer, UBSan or Valgrind
(``_lib.DIRECT_ACCESS`` is then False) every access goes through the checked C
accessors instead, so that those tools see each one: Python's own reads are not
instrumented, and a read past a node's life would go unnoticed.

The variant is chosen once, when this module is imported. Writing ``data`` does not
recompute the nodes computed from it, as in micrograd.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from microcrad import _lib
from microcrad._numbers import Scalar, as_float

if TYPE_CHECKING:
    from microcrad.engine import Value

__all__ = ["get_data", "set_data", "get_grad", "set_grad"]

if _lib.DIRECT_ACCESS:
    _view_of = _lib.NodeView.from_address

    def get_data(value: Value) -> float:
        return _view_of(value._ptr).data  # type: ignore[no-any-return]

    def set_data(value: Value, number: Scalar) -> None:
        _view_of(value._ptr).data = number if type(number) is float else as_float(number, "data")

    def get_grad(value: Value) -> float:
        return _view_of(value._ptr).grad  # type: ignore[no-any-return]

    def set_grad(value: Value, number: Scalar) -> None:
        _view_of(value._ptr).grad = number if type(number) is float else as_float(number, "grad")

else:
    _value_data = _lib.c.value_data
    _value_grad = _lib.c.value_grad
    _value_set_data = _lib.c.value_set_data
    _value_set_grad = _lib.c.value_set_grad
    _check_number = _lib.check_number
    _check_status = _lib.check_status

    def get_data(value: Value) -> float:
        node = value._ptr
        return _check_number(_value_data(node), node)

    def set_data(value: Value, number: Scalar) -> None:
        _check_status(_value_set_data(value._ptr, as_float(number, "data")))

    def get_grad(value: Value) -> float:
        node = value._ptr
        return _check_number(_value_grad(node), node)

    def set_grad(value: Value, number: Scalar) -> None:
        _check_status(_value_set_grad(value._ptr, as_float(number, "grad")))
