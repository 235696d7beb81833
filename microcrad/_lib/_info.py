"""What the loaded library says about itself: its version, how it was built, and how
many nodes it holds."""

from __future__ import annotations

from microcrad._lib._loading import c


def live_values() -> int:
    """How many nodes the C library has allocated and not yet freed, in this process.

    A graph is freed as soon as nothing refers to its root, so after the Python
    objects of a computation are gone (and ``gc.collect()`` has run, if they were part
    of reference cycles) this returns to its earlier value.
    """
    count: int = c.microcrad_live_values()
    return count


def trim() -> int:
    """Returns idle node-pool memory to the system; the number of bytes given back.

    Frees every pool chunk that holds no live node among the calling thread's chunks
    (after taking back the nodes other threads released into them) and those of threads
    that have exited. Useful after dropping a large graph in a long-running process. In
    builds and processes where nodes come from plain malloc (sanitizers, Valgrind) it
    returns 0.
    """
    released: int = c.microcrad_trim()
    return released


def library_version() -> str:
    """The version of the loaded C library, "MAJOR.MINOR.PATCH"."""
    version: bytes = c.microcrad_version()
    return version.decode("ascii")


def build_features() -> int:
    """The ``MICROCRAD_BUILD_*`` bits of the loaded library (sanitizers, ...)."""
    features: int = c.microcrad_build_features()
    return features
