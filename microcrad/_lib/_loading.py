"""Finding and opening the C library: ``c``, through which every call is made.

The library is loaded from ``$MICROCRAD_LIB`` when that is set (for example a build
with AddressSanitizer), otherwise from the ``libmicrocrad.so`` installed inside the
package. Its functions are declared (``_signatures``) before anything calls them.
"""

from __future__ import annotations

import ctypes
import importlib.resources
import os
import sys

from microcrad._lib._signatures import declare

# The environment variable that points at a specific build of the library.
LIBRARY_ENV_VAR = "MICROCRAD_LIB"
LIBRARY_FILE_NAME = "libmicrocrad.so"


def library_path() -> str:
    """The path of the shared library to load: ``$MICROCRAD_LIB`` or the packaged copy."""
    override = os.environ.get(LIBRARY_ENV_VAR)
    if override:
        return override
    packaged = importlib.resources.files("microcrad") / LIBRARY_FILE_NAME
    # The wheel installs the library as a real file inside the package directory, so
    # the resource has a file system path that the dynamic loader can open.
    return str(packaged)


def _missing_library_advice(path: str) -> str:
    """Why the packaged library is missing, and what to run.

    The usual case is Python started in a source checkout (the repository root, where
    ``./microcrad`` holds the Python sources but no compiled library) by an interpreter
    that has no editable install of the checkout: ./microcrad then shadows any installed
    copy.
    """
    package = os.path.dirname(path)
    checkout = os.path.dirname(package)
    if not os.path.isfile(os.path.join(checkout, "CMakeLists.txt")):
        return (
            f"{path!r} does not exist; reinstall the package with 'pip install' "
            "(which builds the C library)"
        )
    advice = (
        f"this Python ({sys.executable}) imported microcrad from the source checkout "
        f"{checkout!r}, which holds no compiled library, because it has no editable "
        "install of that checkout. "
    )
    venv_python = os.path.join(checkout, ".venv", "bin", "python")
    if os.path.isfile(venv_python):
        advice += (
            f"The checkout's environment has one: use {venv_python} (or run "
            "'source .venv/bin/activate' first, or pick .venv as the notebook kernel); "
            "after pulling new C code, run 'bash tools/setup.sh' again to rebuild it. "
        )
    else:
        advice += "Run 'bash tools/setup.sh' there and use .venv/bin/python. "
    return advice + (
        "Alternatively: 'pip install -e .' into this Python, or build the library with "
        "'cmake --preset release && cmake --build --preset release' and set "
        f"${LIBRARY_ENV_VAR}={os.path.join(checkout, 'build', 'release', LIBRARY_FILE_NAME)}"
    )


def load() -> ctypes.PyDLL:
    """Opens the library and declares its functions, which are all called with the GIL
    held (``PyDLL``; ``_signatures`` says why).

    Raises:
        ImportError: the file is missing, is not a shared library, or is not
            microcrad's; the message says which, and how to get the right one.
    """
    path = library_path()
    if not os.path.isfile(path):
        if os.environ.get(LIBRARY_ENV_VAR):
            how = f"${LIBRARY_ENV_VAR} is set to {path!r}, which is not a file"
        else:
            how = _missing_library_advice(path)
        raise ImportError(f"cannot load the microcrad C library: {how}")
    try:
        lib = ctypes.PyDLL(path)
    except OSError as error:
        raise ImportError(f"cannot load the microcrad C library from {path!r}: {error}") from error
    declare(lib)
    # Every failure reaches Python as an exception carrying the library's message, so
    # the library's own echo of that message on stderr would only say the same thing
    # twice (and would print even for errors that the caller catches and handles).
    lib.microcrad_set_quiet(1)
    return lib


c = load()
