"""Lab 7, fixed: keep the ``Value`` itself (which owns a reference), not its address.

Reading ``loss.data`` goes through the same C accessor, but the node is guaranteed
to be alive for as long as ``loss`` is. See lab7_stale_pointer.py and README.md.
"""

from __future__ import annotations

from microcrad.engine import Value


def main() -> None:
    """Computes a loss and reads it while its Value is alive."""
    x = Value(0.25)
    loss = (x * 4 - 3) ** 2
    loss.backward()

    kept = loss  # FIX: another reference to the Value keeps the node alive
    print(f"d loss/d x = {x.grad}")
    del loss

    print(f"loss = {kept.data}")


if __name__ == "__main__":
    main()
