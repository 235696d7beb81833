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
same node but owns no reference. A borrowed handle points at the node until the node
is freed (then it reads as released), so it is valid whenever the function can run,
also when code kept the function to wrap it. Every other closure variable (``self``,
constants, ...) is shared with the original function.

The handle is found, and replaced in a copy, wherever Python code commonly puts it:
a closure variable, a default argument (``def _backward(out=out)``), a helper
function's closure (a nested closure), ``functools.partial`` arguments, the ``self``
of a bound method, any mix of these, to a few levels. It cannot be replaced inside an
arbitrary object (``self.out`` of an op object whose bound method is the function)
without changing that object: ``reaches_handle`` detects that case, and the engine
warns, because the node and the object then keep each other alive forever.
"""

from __future__ import annotations

import functools
import gc
import types
from typing import Any, Callable

# How deeply functions, partials and methods are looked into; the objects searched
# for a handle left behind.
_MAX_DEPTH = 8
_MAX_SEARCHED = 500

# Referents never searched: they cannot hold a handle of a node made at run time, or
# they are shared by everything (a module's globals keep what a script keeps anyway).
_OPAQUE = (type, types.ModuleType, types.CodeType, str, bytes, int, float, complex, bool)


class _Detacher:
    """Copies a backward function with every handle of one node replaced by a
    borrowed one (see the module's docstring)."""

    def __init__(self, is_handle: Callable[[Any], bool], borrow: Callable[[Any], Any]):
        self.is_handle = is_handle
        self.borrow = borrow
        self.borrowed: list[Any] = []
        self.done: dict[int, Any] = {}  # id(original) -> its replacement (or itself)

    def replace(self, item: Any, depth: int) -> Any:
        """``item``, or a copy of it holding borrowed handles in place of the node's."""
        if self.is_handle(item):
            handle = self.borrow(item)
            self.borrowed.append(handle)
            return handle
        if depth > _MAX_DEPTH or not isinstance(
            item, (types.FunctionType, types.MethodType, functools.partial)
        ):
            return item
        key = id(item)
        if key in self.done:
            return self.done[key]
        self.done[key] = item  # a function reaching itself keeps itself
        if isinstance(item, types.FunctionType):
            result = self._function(item, depth)
        elif isinstance(item, types.MethodType):
            function = self.replace(item.__func__, depth + 1)
            owner = self.replace(item.__self__, depth + 1)
            changed = function is not item.__func__ or owner is not item.__self__
            result = types.MethodType(function, owner) if changed else item
        else:
            result = self._partial(item, depth)
        self.done[key] = result
        return result

    def _function(self, function: types.FunctionType, depth: int) -> Any:
        # The copy is made first, with cells of its own, so that a function reaching
        # itself (a closure variable naming it, as when it re-assigns itself) reaches
        # the copy, not the original that holds the node's handle.
        cells = function.__closure__ or ()
        copy = types.FunctionType(
            function.__code__,
            function.__globals__,
            function.__name__,
            function.__defaults__,
            tuple(types.CellType() for _ in cells),
        )
        self.done[id(function)] = copy
        changed = False
        for cell, new_cell in zip(cells, copy.__closure__ or ()):
            try:
                content = cell.cell_contents
            except ValueError:  # an empty cell (a variable not yet assigned)
                continue
            replacement = self.replace(content, depth + 1)
            new_cell.cell_contents = replacement
            changed = changed or replacement is not content
        defaults = function.__defaults__
        if defaults:
            new_defaults = tuple(self.replace(d, depth + 1) for d in defaults)
            if any(a is not b for a, b in zip(new_defaults, defaults)):
                copy.__defaults__, changed = new_defaults, True
        kwdefaults = function.__kwdefaults__
        if kwdefaults:
            new_kwdefaults = {k: self.replace(d, depth + 1) for k, d in kwdefaults.items()}
            if any(new_kwdefaults[k] is not d for k, d in kwdefaults.items()):
                kwdefaults, changed = new_kwdefaults, True
        if not changed:
            return function
        copy.__kwdefaults__ = kwdefaults
        copy.__qualname__ = function.__qualname__
        copy.__doc__ = function.__doc__
        copy.__dict__.update(function.__dict__)
        return copy

    def _partial(self, partial: functools.partial[Any], depth: int) -> Any:
        function = self.replace(partial.func, depth + 1)
        args = tuple(self.replace(a, depth + 1) for a in partial.args)
        keywords = {k: self.replace(v, depth + 1) for k, v in partial.keywords.items()}
        if (
            function is partial.func
            and all(a is b for a, b in zip(args, partial.args))
            and all(keywords[k] is v for k, v in partial.keywords.items())
        ):
            return partial
        return functools.partial(function, *args, **keywords)


def detach_own_handles(
    function: Callable[[], object],
    is_handle: Callable[[Any], bool],
    borrow: Callable[[Any], Any],
) -> tuple[Callable[[], object], list[Any]]:
    """``function``, or a copy of it in which every handle of the node it holds (in
    closures, default arguments, partials, bound methods) is a borrowed handle, and
    the borrowed handles made.

    ``is_handle(x)`` says whether x is a handle of the node to replace; ``borrow(x)``
    makes a borrowed handle standing for x.
    """
    detacher = _Detacher(is_handle, borrow)
    return detacher.replace(function, 0), detacher.borrowed


def reaches_handle(function: Callable[[], object], is_handle: Callable[[Any], bool]) -> bool:
    """Whether a handle ``is_handle`` accepts is reachable from ``function`` (through
    objects, lists, dicts, ..., not through module globals), searching a few hundred
    objects at most."""
    seen: set[int] = set()
    pending: list[Any] = [function]
    while pending and len(seen) < _MAX_SEARCHED:
        item = pending.pop()
        if id(item) in seen or isinstance(item, _OPAQUE):
            continue
        seen.add(id(item))
        if is_handle(item):
            return True
        if isinstance(item, types.FunctionType):
            # Not its module's globals nor the builtins: shared by everything.
            skip = (item.__globals__, item.__builtins__)
            pending.extend(r for r in gc.get_referents(item) if r is not skip[0] and r is not skip[1])
        else:
            pending.extend(gc.get_referents(item))
    return False
