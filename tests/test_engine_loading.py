"""Loading the C library: the ``$MICROCRAD_LIB`` override, and clear errors when the
library is missing or is not microcrad's."""

from __future__ import annotations

import ctypes
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

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


# ---------------------------------------------------------------------------------
# Every function of the header is declared, with the header's types
# ---------------------------------------------------------------------------------

HEADER = Path(__file__).resolve().parent.parent / "c" / "include" / "microcrad.h"

SCALARS = {
    "double": ctypes.c_double,
    "int": ctypes.c_int,
    "unsigned": ctypes.c_uint,
    "int32_t": ctypes.c_int32,
    "int64_t": ctypes.c_int64,
    "uint32_t": ctypes.c_uint32,
    "uint64_t": ctypes.c_uint64,
    "microcrad_activation": ctypes.c_int,  # enums are ints
    # function pointers travel as addresses
    "microcrad_backward_fn": ctypes.c_void_p,
    "microcrad_release_fn": ctypes.c_void_p,
}


def ctypes_type(declaration: str) -> Any:
    """The ctypes type that a C parameter or return type must be declared with."""
    words = [w for w in re.sub(r"\*", " * ", declaration).split() if w != "const"]
    stars = words.count("*")
    base = words[0]
    if stars == 0:
        return None if base == "void" else SCALARS[base]
    if stars == 1 and base == "char":
        return ctypes.c_char_p
    if stars == 1 and base not in SCALARS:
        return ctypes.c_void_p  # a library object (Value, optimizer, ...) or a FILE
    if stars == 1:
        return ctypes.POINTER(SCALARS[base])
    assert stars == 2 and base == "Value", declaration
    return ctypes.POINTER(ctypes.c_void_p)  # an array of nodes


def header_functions() -> dict[str, tuple[Any, list[Any]]]:
    text = re.sub(r"/\*.*?\*/", " ", HEADER.read_text(), flags=re.S)
    text = " ".join(text.split())
    functions = {}
    for returns, name, parameters in re.findall(
        r"MICROCRAD_API ([^;(]*?)\b(\w+)\(([^)]*)\);", text
    ):
        parameters = [] if parameters.strip() == "void" else parameters.split(",")
        # Drop each parameter's name: what is left of "const Value *v" is "const Value *".
        types = [ctypes_type(re.sub(r"\w+$", "", p.strip())) for p in parameters]
        functions[name] = (ctypes_type(returns), types)
    return functions


@pytest.mark.skipif(not HEADER.exists(), reason="needs the source tree's microcrad.h")
def test_every_header_function_is_declared_with_its_types() -> None:
    expected = header_functions()
    assert len(expected) > 60, "the header parser found too few functions"
    declared = {name: (restype, argtypes) for name, restype, argtypes in _lib._SIGNATURES}
    # The constructors of single ops are not listed: microcrad.engine declares each by
    # its shape when it makes the operator that calls it (_lib.op_constructor).
    shapes = list(_lib.OP_CONSTRUCTOR_SHAPES.values())
    unlisted = sorted(set(expected) - set(declared))
    assert sorted(set(declared) - set(expected)) == []
    assert all(name.startswith("value_") and expected[name] in shapes for name in unlisted), [
        name for name in unlisted if expected[name] not in shapes
    ]
    for name, (restype, argtypes) in expected.items():
        function = getattr(_lib.c, name)
        assert function.restype == restype, name
        assert function.argtypes == argtypes, name


ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(
    not (ROOT / "CMakeLists.txt").exists() or (ROOT / "microcrad" / "libmicrocrad.so").exists(),
    reason="needs a source checkout whose ./microcrad holds no compiled library",
)
def test_a_checkout_without_an_install_says_why_and_what_to_run(tmp_path: Path) -> None:
    # -S: no site-packages, so no install of the checkout can supply the library, as
    # for a Python that never ran tools/setup.sh.
    environment = {k: v for k, v in os.environ.items() if k != "MICROCRAD_LIB"}
    result = subprocess.run(
        [sys.executable, "-S", "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r}); import microcrad"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("ImportError: cannot load the microcrad C library")
    assert "source checkout" in message and "no editable install" in message
    assert "tools/setup.sh" in message and "pip install -e ." in message
    assert str(ROOT / "build" / "release" / "libmicrocrad.so") in message
