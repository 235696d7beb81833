"""The one place tests map the library's ops to Value's methods.

Built from microcrad.engine.OPERATORS (every operator its factories made) and the
library's op table (_lib.OPS): each method is applied once and the op of the node it
makes is read back. Tests that enumerate ops iterate over ``OP_METHODS``, so a new op
with a Value method is covered without editing them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from microcrad import _lib, engine
from microcrad.engine import Value


@dataclass(frozen=True)
class OpMethod:
    """One way to make a node of op ``op`` from Python: ``method`` of Value, called as
    ``form`` says: "unary" (``x.relu()``), "values" (``x * y``), "number"
    (``x * 2.0``) or "reflected" (``2.0 * x``)."""

    method: str
    form: str
    op: _lib.Op

    @property
    def operands(self) -> int:
        """How many Values the call takes (numbers are not counted)."""
        return 2 if self.form == "values" else 1

    def apply(self, values: list[Value], number: float = 2.0) -> Value:
        """The node this method makes from ``values`` (and ``number``)."""
        bound: Callable[..., Value] = getattr(values[0], self.method)
        if self.form == "unary":
            return bound()
        if self.form == "values":
            return bound(values[1])
        return bound(number)

    def __str__(self) -> str:
        return f"{self.method}[{self.form}]"


def _forms(kind: str) -> list[str]:
    return {"unary": ["unary"], "binary": ["values", "number"], "reflected": ["reflected"]}[kind]


def _find() -> list[OpMethod]:
    found = []
    for method, kind in engine.OPERATORS.items():
        for form in _forms(kind):
            probe = OpMethod(method, form, _lib.OPS[0])
            node = probe.apply([Value(0.5), Value(1.5)])
            found.append(OpMethod(method, form, _lib.OPS[_lib.op_of(node._ptr)]))
    return found


OP_METHODS: list[OpMethod] = _find()

# Ops made by other means than one operator call (Value(...), Value.sum, the neuron of
# microcrad.nn); every other op of the table must have a method.
STRUCTURAL_OPS = {_lib.OP_LEAF, _lib.OP_CUSTOM, _lib.OP_SUM, _lib.OP_NEURON}
