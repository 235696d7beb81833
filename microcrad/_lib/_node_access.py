"""How a Value reads and writes its node's ``data`` and ``grad``: the property
functions of ``Value.data`` and ``Value.grad``, made by ``node_accessors``.

Normally in place, through a ``NodeView`` of the node's struct, at about half the cost
of a checked call into the library. That is safe because a Value owns a reference to
its node, so the node is alive whenever the view is used. In a library built for
AddressSanitizer, ThreadSanitizer, UBSan or Valgrind (``DIRECT_ACCESS`` is then False)
every access goes through the checked C accessors instead, so that those tools see
each one: Python's own reads are not instrumented, and a read past a node's life
would go unnoticed.

The variant is chosen once, when the library is loaded. Writing ``data`` does not
recompute the nodes computed from it, as in micrograd.
"""

from __future__ import annotations

from typing import Any, Callable

from microcrad._lib._errors import ReleasedValueError, check_number, check_status
from microcrad._lib._loading import c
from microcrad._lib._node_view import DIRECT_ACCESS, NodeView

# A getter takes a Value (anything with the node's address in ``_ptr``); a setter also
# takes the number.
Getter = Callable[[Any], float]
Setter = Callable[[Any, Any], None]


def node_accessors(to_float: Callable[[Any, str], float]) -> tuple[Getter, Setter, Getter, Setter]:
    """``(get_data, set_data, get_grad, set_grad)`` for ``Value``'s properties.

    ``to_float(number, role)`` turns what a user assigns into a double, raising
    TypeError for what is not a real number (the engine's own rule, passed in so that
    this package need not import the engine's modules).
    """
    if DIRECT_ACCESS:
        view_of = NodeView.from_address

        # A released Value (reached during garbage collection after its finalizer
        # ran) has _ptr None, which from_address rejects with a TypeError; the
        # handler, which costs nothing until it runs, names the cause instead.

        def get_data(value: Any) -> float:
            try:
                return view_of(value._ptr).data  # type: ignore[no-any-return]
            except TypeError:
                if value._ptr is None:
                    raise ReleasedValueError() from None
                raise

        def set_data(value: Any, number: Any) -> None:
            if type(number) is not float:
                number = to_float(number, "data")
            try:
                view_of(value._ptr).data = number
            except TypeError:
                if value._ptr is None:
                    raise ReleasedValueError() from None
                raise

        def get_grad(value: Any) -> float:
            try:
                return view_of(value._ptr).grad  # type: ignore[no-any-return]
            except TypeError:
                if value._ptr is None:
                    raise ReleasedValueError() from None
                raise

        def set_grad(value: Any, number: Any) -> None:
            if type(number) is not float:
                number = to_float(number, "grad")
            try:
                view_of(value._ptr).grad = number
            except TypeError:
                if value._ptr is None:
                    raise ReleasedValueError() from None
                raise

        return get_data, set_data, get_grad, set_grad

    value_data, value_grad = c.value_data, c.value_grad
    value_set_data, value_set_grad = c.value_set_data, c.value_set_grad

    def checked_get_data(value: Any) -> float:
        node = value._ptr
        return check_number(value_data(node), node)

    def checked_set_data(value: Any, number: Any) -> None:
        check_status(value_set_data(value._ptr, to_float(number, "data")))

    def checked_get_grad(value: Any) -> float:
        node = value._ptr
        return check_number(value_grad(node), node)

    def checked_set_grad(value: Any, number: Any) -> None:
        check_status(value_set_grad(value._ptr, to_float(number, "grad")))

    return checked_get_data, checked_set_data, checked_get_grad, checked_set_grad
