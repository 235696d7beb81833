"""Whose code a stack frame is: the sanitizer runtime, the library, the program
being checked, or something else."""

from __future__ import annotations

import os
import re
import sys

from .paths import ROOT

# Where a finding counts as microcrad's own: the library file, or any source file
# of this repository (library, tests, examples, labs, fuzz harness). Paths below
# these folders are vendored or installed code, not ours.
_NOT_OURS_UNDER = (".venv", "build")

# Frames of the sanitizer runtimes themselves (interceptors, allocator) say
# nothing about who is at fault and are skipped when naming the culprit frame.
_RUNTIME_FRAME = re.compile(
    r"libsanitizer|__interceptor_|__asan_|__tsan_|__lsan_|__ubsan_|"
    r"vg_replace_malloc|/valgrind/|_start\b|__libc_start"
)

# The library's own frames: its shared object, or its sources (c/ in this tree).
_LIBRARY_SOURCES = str(ROOT / "c") + os.sep

# Absolute paths that belong to the system, an interpreter or installed packages: a
# frame there is neither the library nor the program under test. The interpreter
# running a Python command adds its own prefixes (see foreign_prefixes).
_FOREIGN_PATH = re.compile(r"^/(usr|lib|lib32|lib64|bin|sbin|opt|snap|nix)/|"
                           r"/(site|dist)-packages/|/\.venv/|/\.pyenv/|/ld-linux|"
                           r"/python-build\.|/Python-\d")  # CPython's sources (pyenv)
_FOREIGN_PREFIXES: set[str] = {sys.prefix, sys.base_prefix}
_ABSOLUTE_PATH = re.compile(r"(?:^|[\s(])(/[^\s:()+]+)")


def foreign_prefixes(*prefixes: str) -> None:
    """Adds installation prefixes (an interpreter's sys.prefix...) whose frames are
    third-party code, neither the library nor the program under test."""
    _FOREIGN_PREFIXES.update(p.rstrip(os.sep) for p in prefixes if p)


def frame_owner(frame: str) -> str:
    """Who a stack frame belongs to: "runtime" (the sanitizer or Valgrind itself),
    "library" (libmicrocrad), "program" (the code being checked: a source file or an
    executable of the user's, anywhere outside system and package folders, this
    repository's tests, examples and labs included) or "elsewhere" (libc, the
    interpreter and its extensions, third-party packages, frames with no path)."""
    if _RUNTIME_FRAME.search(frame):
        return "runtime"
    if "libmicrocrad" in frame or _LIBRARY_SOURCES in frame:
        return "library"
    match = _ABSOLUTE_PATH.search(frame)
    if match is None:
        return "elsewhere"  # relative paths come from prebuilt code (CPython's sources)
    path = match.group(1)
    if path.startswith(str(ROOT) + os.sep):
        # This repository: its tests, examples and labs are programs; its .venv is not.
        return "elsewhere" if _is_vendored(path) else "program"
    if _FOREIGN_PATH.search(path) or any(
            path.startswith(prefix + os.sep) for prefix in _FOREIGN_PREFIXES):
        return "elsewhere"
    return "program"


def _is_vendored(path: str) -> bool:
    relative = path[len(str(ROOT)) + 1:]
    return relative.startswith(".venv" + os.sep)


def _is_ours(location: str) -> bool:
    """Whether a frame's text (function, file, module) points into microcrad."""
    if "libmicrocrad" in location:
        return True
    root = str(ROOT) + os.sep
    index = location.find(root)
    if index < 0:
        return False
    relative = location[index + len(root):]
    return not relative.startswith(tuple(d + os.sep for d in _NOT_OURS_UNDER))
