"""Instruction counts from Valgrind's callgrind: running a program under it and
reading the profile it writes.

Instruction counts are what this noisy shared machine cannot disturb: the same
program on the same input executes the same instructions, run after run. They do not
see cache misses or page faults (which the timings do), so the two complement each
other.

The reader follows callgrind's profile format (Valgrind manual, "Callgrind Format
Specification"): ``fn=`` starts the costs of a function, a cost line is a position
followed by event counts, and the cost line after a ``calls=`` line is the inclusive
cost of that call. So a function's self cost is the sum of its plain cost lines, and
its inclusive cost that plus the cost lines of its calls. Names may be compressed as
``(id) name`` on first use and ``(id)`` after.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Profile:
    """One callgrind profile's instruction counts (the first event, Ir)."""

    total: int = 0
    self_cost: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    inclusive: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def inclusive_of(self, name: str) -> int:
        """The inclusive instructions of function ``name`` (and of its compiler clones,
        ``name.constprop.0`` and the like); 0 when it was never collected."""
        return sum(
            cost for fn, cost in self.inclusive.items() if fn == name or fn.startswith(name + ".")
        )

    def top_self(self, count: int) -> list[tuple[str, int]]:
        """The ``count`` functions with the most instructions of their own, most first."""
        ranked = sorted(self.self_cost.items(), key=lambda item: -item[1])
        return [(fn, cost) for fn, cost in ranked[:count] if cost > 0]


def _resolve(spec: str, names: dict[str, str]) -> str:
    """The name of a compressed ``(id) name`` / ``(id)`` or plain ``name`` spec."""
    spec = spec.strip()
    if spec.startswith("("):
        close = spec.find(")")
        key, rest = spec[1:close], spec[close + 1 :].strip()
        if rest:
            names[key] = rest
        return names.get(key, f"({key})")
    return spec


def parse_profile(text: str) -> Profile:
    """Reads a callgrind profile (the text of a ``callgrind.out`` file).

    Raises:
        ValueError: the text is not a callgrind profile with an Ir event.
    """
    profile = Profile()
    fn_names: dict[str, str] = {}
    positions = 1
    current = "???"
    call_pending = False
    saw_events = False
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head = line[0]
        if head.isdigit() or head in "+-*":
            fields = line.split()
            cost = int(fields[positions]) if len(fields) > positions else 0
            profile.inclusive[current] += cost
            if not call_pending:
                profile.self_cost[current] += cost
            call_pending = False
            continue
        key, _, value = line.partition("=")
        if key == "fn":
            current = _resolve(value, fn_names)
        elif key == "cfn":
            _resolve(value, fn_names)  # may define a name used later
        elif key == "calls":
            call_pending = True
        elif line.startswith("positions:"):
            positions = len(line.split(":", 1)[1].split())
        elif line.startswith("events:"):
            events = line.split(":", 1)[1].split()
            if not events or events[0] != "Ir":
                raise ValueError(f"expected Ir as the first event, got {events}")
            saw_events = True
        elif line.startswith(("totals:", "summary:")):
            profile.total = int(line.split(":", 1)[1].split()[0])
    if not saw_events:
        raise ValueError("not a callgrind profile (no 'events:' line)")
    return profile


def valgrind_missing() -> str | None:
    """Why callgrind cannot run here, or None when it can."""
    if shutil.which("valgrind") is None:
        return "valgrind is not installed (apt-get install valgrind): no instruction counts"
    return None


def run_callgrind(command: Sequence[str], toggle: Sequence[str]) -> tuple[Profile, str]:
    """Runs ``command`` under callgrind, collecting only inside the functions named in
    ``toggle`` (each switches collection on at its entry and off at its exit, so they
    must not call each other). Returns the profile and the program's stdout.

    Raises:
        RuntimeError: valgrind or the program failed (with valgrind's last words).
    """
    with tempfile.TemporaryDirectory(prefix="microcrad-callgrind-") as scratch:
        out = os.path.join(scratch, "callgrind.out")
        result = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                "--collect-atstart=no",
                *(f"--toggle-collect={name}" for name in toggle),
                *command,
            ],
            capture_output=True,
            text=True,
            # Under Valgrind the library allocates nodes with plain malloc so that
            # memcheck sees them; the pool is what is measured here, so keep it.
            env={**os.environ, "MICROCRAD_NO_POOL": "0"},
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"callgrind run of {command[0]} failed ({result.returncode}): "
                + result.stderr.strip()[-600:]
            )
        with open(out, encoding="utf-8", errors="replace") as profile_file:
            return parse_profile(profile_file.read()), result.stdout
