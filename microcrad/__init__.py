"""microcrad: a scalar reverse-mode autodiff engine with a C core.

A drop-in replacement for micrograd::

    from microcrad.engine import Value

    x = Value(-4.0)
    y = (x * x + 2 * x).relu()
    y.backward()
    print(x.grad)
"""

from microcrad._lib import MicrocradError, library_version, live_values
from microcrad._lib import ReleasedValueError
from microcrad.engine import Value
from microcrad.tape import Tape

__all__ = ["Value", "Tape", "live_values", "MicrocradError", "__version__"]
__all__ += ["ReleasedValueError"]

# The package and its C library are versioned together; the loaded library says which.
__version__: str = library_version()
