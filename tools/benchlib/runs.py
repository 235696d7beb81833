"""One variant's measurements (``Run``), the loss check against micrograd, and running
the variants of a part in turn."""

from __future__ import annotations

import gc
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

TOLERANCE = 1e-9  # relative, on each step's loss


@dataclass
class Run:
    """One variant's measurements: its losses and the time of each step."""

    name: str
    losses: list[float] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    setup: float = 0.0  # one-time work before the first step (recording a tape, ...)
    skipped: str = ""  # why the variant did not run, if it did not
    check: str = ""  # the loss check against micrograd: "", "pass ..." or "FAIL ..."

    @property
    def per_step(self) -> float:
        """The median seconds per step."""
        return statistics.median(self.times) if self.times else math.nan

    def record(self, started: float, loss: float) -> None:
        """Adds a step that began at ``started`` (perf_counter) and had this loss."""
        self.times.append(time.perf_counter() - started)
        self.losses.append(float(loss))

    def time_steps(self, step: Callable[[int], float], count: int) -> Run:
        """Runs ``step(0)``, ..., ``step(count - 1)``, each returning its loss, and
        records each; returns the run. What a step builds is released when it returns,
        within its time."""
        for k in range(count):
            started = time.perf_counter()
            loss = step(k)
            self.record(started, loss)
        return self

    def as_json(self) -> dict[str, Any]:
        """The run for the JSON report."""
        return {
            "name": self.name,
            "skipped": self.skipped or None,
            "steps": len(self.times),
            "median_step_seconds": None if not self.times else self.per_step,
            "setup_seconds": self.setup,
            "losses": self.losses,
            "check": self.check or None,
        }


def skipped(name: str, why: str) -> Run:
    """A variant that did not run, and why."""
    return Run(name, skipped=why)


def compare_losses(run: Run, reference: Run) -> bool:
    """Checks ``run``'s losses against ``reference``'s for the steps both ran, to
    TOLERANCE (relative); records the verdict in ``run.check``. Returns whether it
    passed (True when there is nothing to compare against)."""
    if run.skipped:
        return True
    if reference.skipped or not reference.losses:
        run.check = f"not checked ({reference.name} did not run)"
        return True
    steps = min(len(run.losses), len(reference.losses))
    worst = 0.0
    for mine, theirs in zip(run.losses[:steps], reference.losses[:steps]):
        worst = max(worst, abs(mine - theirs) / max(1.0, abs(theirs)))
    ok = worst <= TOLERANCE
    run.check = f"{'pass' if ok else 'FAIL'}: {steps} step(s), max rel. diff {worst:.1e}"
    return ok


def progress(message: str) -> None:
    """Reports what is running, on stderr (the tables go to stdout)."""
    print(f"... {message}", file=sys.stderr, flush=True)


def run_variants(
    part: str, unit: str, variants: Sequence[tuple[str, Callable[[int], Run], int]]
) -> list[Run]:
    """Runs each ``(label, variant, count)`` of ``part`` in turn, ``variant(count)``
    after a garbage collection (so that one variant's garbage is not another's cost),
    saying on stderr what runs."""
    runs = []
    for label, variant, count in variants:
        progress(f"{part}: {label}, {count} {unit}(s)")
        gc.collect()
        runs.append(variant(count))
    return runs
