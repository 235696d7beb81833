"""Lab 7 - a raw node pointer kept past the life of its Value (Python).

A ``Value`` owns one reference to its C node and gives it back when the object goes
away. This program keeps something of a result "for later" and reads the node through
the private ctypes bindings afterwards.

Caught by: AddressSanitizer under ``tools/memcheck.py asan`` (heap-use-after-free in
value_data, called from ctypes), and in a normal build by the magic canary: the C
function refuses the released node and the bindings raise MicrocradError. Valgrind
would see it too (invalid read). See README.md, lab 7.
"""

from __future__ import annotations

from microcrad import _lib
from microcrad.engine import Value


def main() -> None:
    """Computes a loss, keeps a bare pointer to it, and reads it after it is gone."""
    x = Value(0.25)
    loss = (x * 4 - 3) ** 2
    loss.backward()

    address = loss._ptr
    print(f"d loss/d x = {x.grad}")
    del loss  # the last reference: the node's release waits with other dropped Values'
    _lib.flush_releases()  # as after any count or collection: the node is freed here
    reported = _lib.check_number(_lib.c.value_data(address), address)
    print(f"loss = {reported}")


if __name__ == "__main__":
    main()
