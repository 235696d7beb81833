"""Turning the C library's failures into Python exceptions.

* a function returning ``Value *`` (or another handle) signals failure with NULL
  (``None`` through ctypes),
* a function returning ``double`` with NaN,
* a function returning ``int`` with a negative ``microcrad_status``;

in every case ``microcrad_last_error()`` holds the message, which becomes the text of
the exception. Status codes map to exceptions as follows:

* out of memory -> ``MemoryError``,
* an invalid argument -> ``ValueError``,
* a reference count that would pass its maximum -> ``OverflowError``,
* a failed write -> ``OSError``,
* a failed backward callback -> ``RuntimeError`` (a Python callback's own exception
  is raised instead: ``_nodes.check_backward``),
* a released or foreign pointer -> ``MicrocradError``, which always means a bug in
  microcrad itself, since Python code cannot get hold of a raw pointer;
* a NULL node -> ``ReleasedValueError`` (a ``MicrocradError`` and a
  ``ReferenceError``): the only NULL that Python code can pass is the
  node of a Value that has already given it back, which happens to a Value reached
  from another object's ``__del__`` during cyclic garbage collection.
"""

from __future__ import annotations

from microcrad._lib._loading import (
    ERR_ARGUMENT,
    ERR_CALLBACK,
    ERR_IO,
    ERR_NOMEM,
    ERR_NULL,
    ERR_OVERFLOW,
    c,
)


class MicrocradError(RuntimeError):
    """The C library was handed a NULL, released or foreign node pointer.

    Python code cannot produce such a pointer on its own, so this error means that
    microcrad's bookkeeping of references is broken; please report it. The one
    exception is its subclass ``ReleasedValueError``, which names its cause.
    """

    # The name it is known by (tracebacks print it, pickling looks it up).
    __module__ = "microcrad._lib"


class ReleasedValueError(MicrocradError, ReferenceError):
    """A Value was used after it gave its node back to the library.

    A Value gives its node back in its finalizer (``__del__``). Normally nothing can
    reach it afterwards, but when a reference cycle is garbage-collected every object
    in it is finalized first and freed after: another object's ``__del__`` in the same
    cycle may then still reach a Value whose finalizer has run. Its data, grad and
    operations are gone; read what is needed before the cycle becomes garbage (or keep
    the Value out of the cycle).
    """

    __module__ = "microcrad._lib"

    def __init__(self, message: str = "") -> None:
        text = (
            "this Value was released during garbage collection: it was reached (for "
            "example from another object's __del__ in a reference cycle) after its own "
            "finalizer had given its node back, so it has no data, grad or graph any more"
        )
        super().__init__(f"{text} ({message})" if message else text)


def last_error_message() -> str:
    """The message of the last failure on this thread."""
    message: bytes = c.microcrad_last_error()
    return message.decode("utf-8", errors="replace")


def exception_for_status(status: int, message: str) -> Exception:
    """The exception for a negative ``microcrad_status``, with ``message`` as its text."""
    if status == ERR_NOMEM:
        return MemoryError(message)
    if status == ERR_ARGUMENT:
        return ValueError(message)
    if status == ERR_OVERFLOW:
        return OverflowError(message)
    if status == ERR_IO:
        return OSError(message)
    if status == ERR_NULL:
        return ReleasedValueError(message)
    if status == ERR_CALLBACK:
        return RuntimeError(message)
    # ERR_NULL, ERR_RELEASED, ERR_FOREIGN, or a code this version does not know.
    return MicrocradError(message)


def last_failure() -> Exception:
    """The exception for the constructor that has just returned NULL on this thread:
    the failing call recorded its status (microcrad_last_status) and message.

    For hot paths that test the result for None themselves, so that a successful call
    costs no extra function call.
    """
    return exception_for_status(c.microcrad_last_status(), last_error_message())


def node_or_raise(result: int | None, *operands: int) -> int:
    """Returns the node pointer ``result`` of a constructor called on ``operands``.

    Raises the matching exception when ``result`` is NULL.
    """
    if result is None:
        raise last_failure()
    return result


def check_status(status: int) -> None:
    """Raises the exception matching a negative ``microcrad_status``."""
    if status < 0:
        raise exception_for_status(status, last_error_message())


def check_number(result: float, node: int) -> float:
    """Returns a ``double`` read from ``node``, raising if the read failed.

    NaN is both the error signal and an ordinary value a node may hold, so on NaN the
    node is checked again to tell the two apart.
    """
    if result != result:  # NaN: cheaper than math.isnan on the hot path
        message = last_error_message()
        status = c.value_op(node)
        if status < 0:
            raise exception_for_status(status, message)
    return result
