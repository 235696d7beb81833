"""Runs a Python lab the way tools/labs.py observes C labs (support/lab_harness.c).

    python run_python_lab.py LAB.py [ARG...]

runs LAB.py as ``__main__``; with ``MICROCRAD_LABS_REPORT=FILE`` it then drops the
lab's globals, collects garbage and writes the number of nodes still alive to FILE
("live_values N"); with ``MICROCRAD_LABS_FAIL_ALLOCATION=N`` it first makes the
N-th allocation of the library fail (a MemoryError in the lab).
"""

from __future__ import annotations

import gc
import os
import runpy
import sys
import traceback


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    path = sys.argv[1]
    sys.argv = sys.argv[1:]
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))

    import microcrad
    from microcrad import _lib

    fail = os.environ.get("MICROCRAD_LABS_FAIL_ALLOCATION")
    if fail:
        _lib.c.microcrad_fail_allocation(int(fail))
    status = 0
    try:
        lab_globals = runpy.run_path(path, run_name="__main__")
        lab_globals.clear()
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except Exception:  # the lab failed: show why, as Python would, and still count
        traceback.print_exc()
        status = 1
    gc.collect()
    report = os.environ.get("MICROCRAD_LABS_REPORT")
    if report:
        with open(report, "w") as file:
            file.write(f"live_values {microcrad.live_values()}\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
