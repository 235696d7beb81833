"""microcrad: a scalar reverse-mode autodiff engine with a C core.

A drop-in replacement for micrograd::

    from microcrad.engine import Value

    x = Value(-4.0)
    y = (x * x + 2 * x).relu()
    y.backward()
    print(x.grad)
"""

from microcrad._lib import MicrocradError, library_version, live_values, trim
from microcrad.engine import Value
from microcrad.tape import Tape

__all__ = ["Value", "Tape", "live_values", "trim", "MicrocradError", "__version__"]

# The package and its C library are versioned together; the loaded library says which.
__version__: str = library_version()

# Raised when a Value is used after garbage collection has released it (a Value reached
# from another object's __del__ in a reference cycle).
from microcrad._lib import ReleasedValueError  # noqa: E402

__all__ += ["ReleasedValueError"]
