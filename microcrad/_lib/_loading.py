"""Finding and opening the C library: ``c``, through which every call is made.

The library is loaded from ``$MICROCRAD_LIB`` when that is set (for example a build
with AddressSanitizer), otherwise from the ``libmicrocrad.so`` installed inside the
package. Its functions are declared (``_signatures``) before anything calls them.
"""

from __future__ import annotations

import ctypes
import importlib.resources
import os

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
            how = (
                f"{path!r} does not exist; install the package with "
                "'pip install .' (which builds the C library), or build it with CMake "
                f"and point ${LIBRARY_ENV_VAR} at the resulting {LIBRARY_FILE_NAME}"
            )
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
