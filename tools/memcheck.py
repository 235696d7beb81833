#!/usr/bin/env python3
"""Run a command under AddressSanitizer, ThreadSanitizer or Valgrind, and judge it.

    tools/memcheck.py {asan,tsan,valgrind} [options] -- COMMAND [ARG...]

The command line of the package in tools/memcheck/ (its docstring says what it
does; --help lists the options). Loaded as a module (importlib, by path), this file
gives the package's names, so that tests and tools/labs.py can share its parser,
builder and verdict.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_PACKAGE_DIR = Path(__file__).resolve().parent / "memcheck"
_PACKAGE_NAME = "microcrad_memcheck_package"


def _load_package() -> ModuleType:
    """The package, under a private name (a file named memcheck.py sits next to it,
    and nothing on sys.path is assumed)."""
    if _PACKAGE_NAME in sys.modules:
        return sys.modules[_PACKAGE_NAME]
    spec = importlib.util.spec_from_file_location(
        _PACKAGE_NAME, _PACKAGE_DIR / "__init__.py",
        submodule_search_locations=[str(_PACKAGE_DIR)])
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules[_PACKAGE_NAME] = package
    spec.loader.exec_module(package)
    return package


_package = _load_package()
globals().update({name: getattr(_package, name) for name in _package.__all__})
main = _package.main

if __name__ == "__main__":
    sys.exit(main())
