"""``vars(value)`` and ``value.__dict__`` for a ``Value``: a live view that shows what
micrograd's Value keeps in its ``__dict__`` (``data``, ``grad``, ``_backward``,
``_prev``, ``_op``, ``label``) next to the attributes code has set on the object
(``p.m = 0.0``).

The numbers live in the C node, not in the object, so the view reads them when asked.
Writing through the view is writing the attribute: ``vars(v)["data"] = 3.0`` sets the
node's data, ``vars(v)["m"] = 0.0`` sets an ordinary attribute.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

# What micrograd's Value.__init__ puts in its __dict__, in its order.
NODE_ATTRIBUTES = ("data", "grad", "_backward", "_prev", "_op", "label")


class ValueAttributes(MutableMapping[str, Any]):
    """The attributes of one Value: its node's (``NODE_ATTRIBUTES``), then its own.

    Args:
        value: the Value.
        own: the object's real instance dictionary (the attributes set on it).
    """

    __slots__ = ("_value", "_own")

    def __init__(self, value: object, own: dict[str, Any]) -> None:
        self._value = value
        self._own = own

    def __getitem__(self, key: str) -> Any:
        if key in NODE_ATTRIBUTES:
            return getattr(self._value, key)
        return self._own[key]

    def __setitem__(self, key: str, item: Any) -> None:
        if key in NODE_ATTRIBUTES:
            setattr(self._value, key, item)
        else:
            self._own[key] = item

    def __delitem__(self, key: str) -> None:
        if key in NODE_ATTRIBUTES:
            raise TypeError(f"cannot delete {key!r}: every Value has it")
        del self._own[key]

    def __iter__(self) -> Iterator[str]:
        yield from NODE_ATTRIBUTES
        yield from self._own

    def __len__(self) -> int:
        return len(NODE_ATTRIBUTES) + len(self._own)

    def __contains__(self, key: object) -> bool:
        return key in NODE_ATTRIBUTES or key in self._own

    def __repr__(self) -> str:
        return repr(dict(self))
