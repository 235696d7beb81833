"""Calls on whole graphs and on the library objects that hold nodes: DOT pictures,
optimizers and tapes. Each such object is an ``int`` handle here."""

from __future__ import annotations

import ctypes
import os
from ctypes import c_int, c_void_p
from typing import Any

from microcrad._lib._arrays import PinnedNodes
from microcrad._lib._errors import check_status, last_failure
from microcrad._lib._loading import c
from microcrad._lib._nodes import check_backward



# -----------------------------------------------------------------------------
# A graph as Graphviz DOT text, for microcrad.viz
# -----------------------------------------------------------------------------

_libc: ctypes.CDLL | None = None


def _c_runtime() -> ctypes.CDLL:
    """The C runtime's stream functions, declared on first use."""
    global _libc
    if _libc is None:
        # The symbols the process already has: on Linux and macOS that includes libc.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.open_memstream.restype = c_void_p
        libc.open_memstream.argtypes = [ctypes.POINTER(c_void_p), ctypes.POINTER(ctypes.c_size_t)]
        libc.fclose.restype = c_int
        libc.fclose.argtypes = [c_void_p]
        libc.free.restype = None
        libc.free.argtypes = [c_void_p]
        _libc = libc
    return _libc


def dot_text(node: int) -> str:
    """The graph below ``node`` as Graphviz DOT text, from value_write_dot.

    Raises:
        OSError: the stream could not be opened, written or closed.
    """
    libc = _c_runtime()
    buffer = c_void_p()
    size = ctypes.c_size_t()
    stream = libc.open_memstream(ctypes.byref(buffer), ctypes.byref(size))
    if not stream:
        errno = ctypes.get_errno()
        raise OSError(errno, f"open_memstream failed: {os.strerror(errno)}")
    try:
        try:
            status = c.value_write_dot(node, stream)
        finally:
            # Closing is what makes buffer and size final.
            closed = libc.fclose(stream)
        check_status(status)
        if closed != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"closing the DOT stream failed: {os.strerror(errno)}")
        return ctypes.string_at(buffer.value, size.value).decode("utf-8")  # type: ignore[arg-type]
    finally:
        libc.free(buffer)


# -----------------------------------------------------------------------------
# The C optimizers behind microcrad.optim
# -----------------------------------------------------------------------------

def sgd_create(params: PinnedNodes, lr: float, momentum: float, weight_decay: float) -> int:
    """A new C SGD optimizer over ``params`` (it retains them); free it with
    ``optimizer_free``."""
    handle: int | None = c.microcrad_sgd_create(
        params.count, params.array, lr, momentum, weight_decay
    )
    if handle is None:
        raise last_failure()
    return handle


def adam_create(
    params: PinnedNodes,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
) -> int:
    """A new C Adam optimizer over ``params`` (it retains them); free it with
    ``optimizer_free``."""
    handle: int | None = c.microcrad_adam_create(
        params.count, params.array, lr, beta1, beta2, eps, weight_decay
    )
    if handle is None:
        raise last_failure()
    return handle


def optimizer_step(handle: int) -> None:
    """One update of every parameter of the optimizer, in one C call."""
    check_status(c.microcrad_optimizer_step(handle))


def optimizer_step_zero_grad(handle: int) -> None:
    """One update of every parameter, then its gradient set to 0, in one C call."""
    check_status(c.microcrad_optimizer_step_zero_grad(handle))


def optimizer_zero_grad(handle: int) -> None:
    """Sets the gradient of every parameter of the optimizer to 0."""
    check_status(c.microcrad_optimizer_zero_grad(handle))


def optimizer_set_lr(handle: int, lr: float) -> None:
    """Changes the optimizer's learning rate."""
    check_status(c.microcrad_optimizer_set_lr(handle, lr))


def optimizer_lr(handle: int) -> float:
    """The optimizer's learning rate."""
    lr: float = c.microcrad_optimizer_lr(handle)
    if lr != lr:  # NaN: a learning rate never is, so the handle was bad
        raise last_failure()
    return lr


def optimizer_free(handle: int, _free: Any = c.microcrad_optimizer_free) -> None:
    """Frees the optimizer and releases its parameters."""
    # _free is bound early so that __del__ methods may call this at interpreter shutdown.
    _free(handle)


# -----------------------------------------------------------------------------
# Tapes behind microcrad.tape: a graph recorded once, replayed in C
# -----------------------------------------------------------------------------


def tape_create(root: int) -> int:
    """A new tape recording the graph below ``root`` (it retains the root); free it
    with ``tape_free``."""
    handle: int | None = c.microcrad_tape_create(root)
    if handle is None:
        raise last_failure()
    return handle


def tape_forward(handle: int) -> None:
    """Recomputes every recorded node's data, operands first."""
    check_status(c.microcrad_tape_forward(handle))


def tape_backward(handle: int) -> None:
    """Back-propagates through the recording; a Python callback's exception propagates."""
    check_backward(c.microcrad_tape_backward(handle))


def tape_zero_grad(handle: int) -> None:
    """Sets the grad of every recorded node to 0."""
    check_status(c.microcrad_tape_zero_grad(handle))


def tape_size(handle: int) -> int:
    """The number of recorded nodes."""
    size: int = c.microcrad_tape_size(handle)
    check_status(size)
    return size


def tape_free(handle: int, _free: Any = c.microcrad_tape_free) -> None:
    """Frees the tape and gives back its reference to the root."""
    # _free is bound early so that __del__ methods may call this at interpreter shutdown.
    _free(handle)
