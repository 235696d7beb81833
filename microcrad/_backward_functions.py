"""A custom op's backward function, made safe to keep with its node.

micrograd defines an op like this::

    out = Value(math.sin(self.data), (self,), 'sin')
    def _backward():
        self.grad += math.cos(self.data) * out.grad
    out._backward = _backward

The node keeps ``_backward`` as long as it lives, and ``_backward`` keeps ``out``, a
handle that owns a reference to that very node: a cycle through C memory, which
Python's garbage collector cannot see, so neither would ever be freed. Hence the
function the node keeps is a copy of ``_backward`` whose closure holds, in place of
each handle of the node itself, a *borrowed* handle: one that reads and writes the
same node but owns no reference. The copy cannot outlive the node (the node frees
it), so the borrowed handle is valid whenever the function can run. Every other
closure variable (``self``, constants, ...) is shared with the original function.
"""

from __future__ import annotations

import types
from typing import Any, Callable


def detach_own_handles(
    function: Callable[[], object],
    node: int,
    is_handle: Callable[[Any], bool],
    borrow: Callable[[int], Any],
) -> tuple[Callable[[], object], list[Any]]:
    """``function``, or a copy of it whose closure cells that held a handle of ``node``
    hold a borrowed handle instead, and the borrowed handles made.

    ``is_handle(x)`` says whether x is a handle of ``node``; ``borrow(node)`` makes a
    borrowed handle of it.
    """
    closure = getattr(function, "__closure__", None)
    if not isinstance(function, types.FunctionType) or not closure:
        return function, []
    cells: list[types.CellType] = []
    borrowed: list[Any] = []
    for cell in closure:
        try:
            content = cell.cell_contents
        except ValueError:  # an empty cell (a variable not yet assigned)
            cells.append(cell)
            continue
        if is_handle(content):
            handle = borrow(node)
            borrowed.append(handle)
            cells.append(types.CellType(handle))
        else:
            cells.append(cell)
    if not borrowed:
        return function, []
    copy = types.FunctionType(
        function.__code__, function.__globals__, function.__name__, function.__defaults__, tuple(cells)
    )
    copy.__kwdefaults__ = function.__kwdefaults__
    copy.__qualname__ = function.__qualname__
    copy.__doc__ = function.__doc__
    copy.__dict__.update(function.__dict__)
    return copy, borrowed
