"""Loading the C library: the ``$MICROCRAD_LIB`` override, and clear errors when the
library is missing or is not microcrad's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import microcrad
from microcrad import _lib

LOADED_LIBRARY = _lib.c._name


def run_python(code: str, library: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ, MICROCRAD_LIB=library)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_override_loads_the_given_library(tmp_path: Path) -> None:
    code = (
        "import microcrad; from microcrad.engine import Value\n"
        "x = Value(3.0); y = x * x; y.backward()\n"
        "print(microcrad._lib.c._name, y.data, x.grad)"
    )
    result = run_python(code, LOADED_LIBRARY, tmp_path)
    assert result.stderr == ""
    assert result.stdout.split() == [LOADED_LIBRARY, "9.0", "6.0"]


def test_override_with_a_missing_file_says_what_is_wrong(tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere" / "libmicrocrad.so")
    result = run_python("import microcrad", missing, tmp_path)
    assert result.returncode != 0
    assert "ImportError: cannot load the microcrad C library" in result.stderr
    assert "$MICROCRAD_LIB" in result.stderr and missing in result.stderr


def test_override_with_a_file_that_is_not_a_library(tmp_path: Path) -> None:
    not_a_library = tmp_path / "libmicrocrad.so"
    not_a_library.write_text("not an ELF file")
    result = run_python("import microcrad", str(not_a_library), tmp_path)
    assert result.returncode != 0
    assert "ImportError: cannot load the microcrad C library from" in result.stderr


def test_override_with_a_library_that_is_not_microcrad(tmp_path: Path) -> None:
    import _ctypes  # a shared library that surely exists, and exports none of ours

    result = run_python("import microcrad", _ctypes.__file__, tmp_path)
    assert result.returncode != 0
    assert "does not export value_create()" in result.stderr


def test_version_comes_from_the_library() -> None:
    parts = microcrad.__version__.split(".")
    assert len(parts) == 3 and all(part.isdigit() for part in parts)
    assert microcrad.__version__ == _lib.c.microcrad_version().decode()
