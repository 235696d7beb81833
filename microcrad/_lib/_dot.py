"""A graph as Graphviz DOT text, for microcrad.viz: value_write_dot into an in-memory
stream of the C runtime, so that no file is made."""

from __future__ import annotations

import ctypes
import os
from ctypes import c_int, c_void_p

from microcrad._lib._errors import check_status
from microcrad._lib._loading import c

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
