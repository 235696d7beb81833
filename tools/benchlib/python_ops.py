"""Part 4, Python, one node per operation: W1 from Python, in µs per operation and in
bare ctypes calls per operation.

The workload: P products ``a * b`` of leaves made beforehand (and kept, as a model's
parameters are), summed by a balanced tree of ``+`` (pairs added level by level, left
to right, an odd one out carried up): 2P - 1 operations, each making one node. Then
``root.backward()``, then every handle is dropped. Each phase is timed on its own;
every handle of the graph stays alive until the release phase, so that phase holds
all of the releasing. The tree (depth about log2 P) rather than a chain, because
micrograd's recursive topological sort cannot walk a 100,000-deep chain.

The yardstick, measured in the same run: a bare ctypes call into the same library,
a pointer in and a double out (``value_data`` on a live node, through the package's
own declared function). microcrad's cost per operation divided by that call's cost
is "ctypes calls per operation".

micrograd runs the same workload for reference. Its Values sit in reference cycles,
so dropping them frees nothing until the cyclic collector runs: the collections that
run during its build are in its build time; the one after its release phase (as
before every repetition of every engine) is not timed.

Repetitions are interleaved (the call, microcrad, micrograd, again), and the least
of each is reported.
"""

from __future__ import annotations

import gc
import time
from itertools import repeat
from typing import Any

from benchlib.runs import progress
from benchlib.systems import McValue, MgValue, microcrad
from microcrad import _lib

PHASES = ("build", "backward", "release")


def leaf_values(products: int) -> tuple[list[float], list[float]]:
    """The numbers of the leaves a_i and b_i (exact in binary, so that every engine
    computes the same bits)."""
    return (
        [0.5 + 0.25 * (i % 7) for i in range(products)],
        [1.0 - 0.125 * (i % 5) for i in range(products)],
    )


def run_once(
    a: list[Any], b: list[Any], settle: Any = None
) -> tuple[dict[str, float], float]:
    """One repetition over the leaves ``a`` and ``b`` (Values of any micrograd-style
    class): seconds per phase, and the root's value. ``settle``, when given, is called
    at the end of the release phase, inside its time: microcrad's pending releases
    (dropped Values give their nodes back in batches), so that every node is freed in
    the phase."""
    gc.collect()
    started = time.perf_counter()
    level = [x * y for x, y in zip(a, b)]
    levels = [level]
    while len(level) > 1:
        pairs = [level[i] + level[i + 1] for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            pairs.append(level[-1])
        level = pairs
        levels.append(level)
    root = level[0]
    built = time.perf_counter()
    root.backward()
    back = time.perf_counter()
    root_data = root.data
    del root, level, pairs, levels
    if settle is not None:
        settle()
    released = time.perf_counter()
    return {
        "build": built - started,
        "backward": back - built,
        "release": released - back,
    }, root_data


def bare_call_seconds(calls: int) -> float:
    """Seconds per bare ctypes call (``value_data`` on a live node)."""
    value_data = _lib.c.value_data
    leaf = McValue(1.5)
    node = leaf._ptr
    started = time.perf_counter()
    for _ in repeat(None, calls):
        value_data(node)
    return (time.perf_counter() - started) / calls


def least(reps: list[dict[str, float]]) -> dict[str, float] | None:
    """The repetition with the least total, or None."""
    return min(reps, key=lambda rep: sum(rep.values()), default=None)


def bench_python_ops(quick: bool) -> dict[str, Any]:
    """The Python per-operation table's numbers (see the module's docstring)."""
    products = 2_000 if quick else 50_000
    ops = 2 * products - 1
    reps, micrograd_reps = (1, 1) if quick else (5, 2)
    av, bv = leaf_values(products)
    systems: list[tuple[str, Any]] = [("microcrad", McValue)]
    if MgValue is not None:
        systems.append(("micrograd", MgValue))
    leaves = {name: ([cls(x) for x in av], [cls(x) for x in bv]) for name, cls in systems}

    call_reps: list[float] = []
    phases: dict[str, list[dict[str, float]]] = {name: [] for name, _ in systems}
    roots: dict[str, float] = {}
    grads: dict[str, float] = {}
    live_leaked: int | None = None
    for rep in range(reps):
        progress(f"Python ops: repetition {rep + 1}/{reps} ({ops:,} operations)")
        call_reps.append(bare_call_seconds(ops))
        for name, _ in systems:
            if name == "micrograd" and rep >= micrograd_reps:
                continue
            a, b = leaves[name]
            live_before = microcrad.live_values() if name == "microcrad" else 0
            settle = _lib.flush_releases if name == "microcrad" else None
            seconds, roots[name] = run_once(a, b, settle)
            phases[name].append(seconds)
            if name == "microcrad":
                gc.collect()
                leaked = microcrad.live_values() - live_before
                live_leaked = max(live_leaked or 0, leaked)
            if rep == 0:
                # Leaf gradients accumulate over repetitions: compared after the first.
                grads[name] = sum(x.grad for x in a) + sum(y.grad for y in b)

    call = min(call_reps)
    rows: dict[str, Any] = {}
    for name, _ in systems:
        best = least(phases[name])
        assert best is not None
        per_op = {phase: 1e6 * best[phase] / ops for phase in PHASES}
        per_op["total"] = sum(per_op.values())
        rows[name] = {
            "us_per_op": per_op,
            "calls_per_op": per_op["total"] / (1e6 * call),
            "repetitions": len(phases[name]),
            "root_data": roots[name],
            "grad_checksum": grads[name],
        }
    agrees: bool | None = None
    if "micrograd" in rows:
        agrees = all(
            rows["microcrad"][key] == rows["micrograd"][key] for key in ("root_data", "grad_checksum")
        )
    return {
        "products": products,
        "operations": ops,
        "bare_call_us": 1e6 * call,
        "bare_call": "value_data (a pointer in, a double out), declared by microcrad._lib",
        "rows": rows,
        "agrees_with_micrograd": agrees,
        "live_values_leaked": live_leaked,
        "micrograd": "not installed" if MgValue is None else "installed",
    }
