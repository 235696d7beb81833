"""What the benchmark prints and saves: the Markdown tables, the goals of the fast
paths as measured, and the machine and versions they were measured on."""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Callable
from typing import Any

from benchlib.runs import Run
from benchlib.systems import micrograd, microcrad, torch
from microcrad import _lib


def format_time(seconds: float) -> str:
    """A duration in s, ms or µs, whichever reads best."""
    if math.isnan(seconds):
        return "-"
    if seconds >= 1.0:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.0f} µs"


def format_ratio(ratio: float) -> str:
    """A speed-up as "12.3x"; a slow-down as "1/12.3" (that many times slower)."""
    if math.isnan(ratio):
        return "-"
    if ratio < 0.95:
        return "1/" + format_ratio(1.0 / ratio).rstrip("x")
    if ratio >= 100:
        return f"{ratio:,.0f}x"
    return f"{ratio:.1f}x"


def ratio(slow: Run, fast: Run) -> float:
    """How many times faster per step ``fast`` is than ``slow`` (NaN if either did not
    run)."""
    if slow.skipped or fast.skipped or not slow.times or not fast.times:
        return math.nan
    return slow.per_step / fast.per_step


def by_name(runs: list[Run], name: str) -> Run:
    """The run called ``name``."""
    return next(run for run in runs if run.name == name)


def runs_table(
    runs: list[Run], title: str, columns: str, cells: Callable[[Run, Run], str]
) -> list[str]:
    """The lines of a Markdown table with a row per run: its name, three measurements
    (``columns`` heads them, ``cells(run, reference)`` gives them, both as "a | b | c")
    and its loss check against micrograd's run, the reference."""
    reference = by_name(runs, "micrograd")
    lines = [
        f"| {title} | {columns} | losses vs micrograd |",
        "|---|---:|---:|---:|---|",
    ]
    for run in runs:
        if run.skipped:
            lines.append(f"| {run.name} | skipped: {run.skipped} | | | |")
            continue
        check = run.check or ("reference" if run is reference else "")
        lines.append(f"| {run.name} | {cells(run, reference)} | {check} |")
    return lines


def moons_table(runs: list[Run]) -> list[str]:
    """The moons results as the lines of a Markdown table."""
    batched = by_name(runs, "PyTorch, batched tensors")

    def cells(run: Run, reference: Run) -> str:
        time_text = format_time(run.per_step)
        if run.setup:
            time_text += f" (+ {format_time(run.setup)} once)"
        return (
            f"{time_text} | {format_ratio(ratio(reference, run))} "
            f"| {format_ratio(ratio(batched, run))}"
        )

    return runs_table(
        runs,
        "moons step (100 points, MLP(2, [16, 16, 1]))",
        "time per step | vs micrograd | vs PyTorch batched",
        cells,
    )


def mnist_table(runs: list[Run]) -> list[str]:
    """The MNIST-shaped results as the lines of a Markdown table."""

    def cells(run: Run, reference: Run) -> str:
        return (
            f"{1.0 / run.per_step:,.1f} | {format_time(run.per_step)} "
            f"| {format_ratio(ratio(reference, run))}"
        )

    return runs_table(
        runs,
        "MLP(784, [50, 10]), one image per SGD step",
        "images/s | time per image | vs micrograd",
        cells,
    )


def _ns(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


# W1's engines, in the order of the tables' rows (benchlib.w1 runs them).
W1_ENGINES = ("floor", "floor-atomic", "microcrad")


def w1_tables(w1: dict[str, Any]) -> list[str]:
    """The C results of workload W1 (benchlib.w1) as the lines of four Markdown
    tables, timings, instruction counts, the ratios the goals judge (microcrad / floor)
    and what thread-safe counts alone cost (floor-atomic / floor, microcrad /
    floor-atomic), and lines on the engines and node sizes."""
    if "skipped" in w1:
        return [f"W1 (C) skipped: {w1['skipped']}"]
    shapes = w1["shapes"]
    counted = w1["instructions"]
    lines = [
        f"| W1 in C: build, backward from the root, release; ns per node (each phase's "
        f"least over {w1['rounds']} processes; warm: x {w1['reps_per_process'] - 1} "
        "repetitions each) "
        "| build | backward | release | total | instructions per node |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, shape in shapes.items():
        lines.append(f"| **{shape['label']}** | | | | | |")
        for engine in W1_ENGINES:
            for which in ("warm", "cold"):
                r = shape[engine][f"{which}_ns"] or {}
                instructions = ""
                if which == "warm" and "skipped" not in counted:
                    instructions = f"{counted[key][engine]['total']:,.1f}"
                lines.append(
                    f"| {engine}, {which} | {_ns(r.get('build'))} | {_ns(r.get('backward'))} "
                    f"| {_ns(r.get('release'))} | {_ns(r.get('total'))} | {instructions} |"
                )
    lines.append("")
    if "skipped" in counted:
        lines.append(f"W1 instruction counts skipped: {counted['skipped']}")
    else:
        lines += [
            "| W1 in C, instructions per node (callgrind, one warm repetition) "
            "| nodes counted | build | backward | release | total |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for key, shape in shapes.items():
            for engine in W1_ENGINES:
                c = counted[key][engine]
                lines.append(
                    f"| {shape['short']}: {engine} | {c['nodes']:,} | {c['build']:,.1f} "
                    f"| {c['backward']:,.1f} | {c['release']:,.1f} | {c['total']:,.1f} |"
                )
    lines += [
        "",
        "| W1 in C, microcrad / floor | warm (goal <= 2x) | cold (goal <= 3x) | instructions "
        "| reused memory handed out in order, microcrad / floor |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, shape in shapes.items():
        r = w1["ratios"]["vs_floor"][key]
        in_order = " / ".join(
            f"{100 * shape[e]['adjacent_share']:.1f}%" for e in ("microcrad", "floor")
        )
        lines.append(
            f"| {shape['label']} | {_times(r['warm'])} | {_times(r['cold'])} "
            f"| {_times(r['instructions'])} | {in_order} |"
        )
    size = w1["ratios"]["size"]
    big, small = shapes["tree_big"], shapes["tree"]
    lines.append(
        f"| size: {big['nodes']:,}-node tree / {small['nodes']:,}-node tree, per node, warm "
        f"(goal <= 1.25x) | microcrad {_times(size['microcrad'])} | floor "
        f"{_times(size['floor'])} | floor-atomic {_times(size['floor-atomic'])} | |"
    )
    lines += [
        "",
        "| W1 in C, what thread-safe counts alone cost | floor-atomic / floor, warm | cold "
        "| instructions | microcrad / floor-atomic, warm | cold | instructions |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, shape in shapes.items():
        alone = w1["ratios"]["atomic_vs_floor"][key]
        beyond = w1["ratios"]["vs_floor_atomic"][key]
        lines.append(
            f"| {shape['label']} | {_times(alone['warm'])} | {_times(alone['cold'])} "
            f"| {_times(alone['instructions'])} | {_times(beyond['warm'])} "
            f"| {_times(beyond['cold'])} | {_times(beyond['instructions'])} |"
        )
    sizes = w1["node_sizes"]
    chain = shapes["chain"]
    growth = [f"{e} {_ns(chain[e]['rss_bytes_per_node'])}" for e in W1_ENGINES]
    lines += [
        "",
        "floor: the least an engine can do (tools/bench_floor.c: a bump arena, no reference "
        "counts, no checks). floor-atomic: the floor with thread-safe reference counts and "
        "nothing else (tools/bench_floor_atomic.c: each op retains its two operands with an "
        "atomic compare-and-swap, each handle to an intermediate result is given back, an "
        "atomic decrement, where microcrad's W1 gives it back, and the release drops every "
        "reference as microcrad does). Both are measuring sticks only. The goals compare "
        "microcrad with the floor; floor-atomic / floor is the part of that ratio that "
        "thread-safe counts alone take.",
        "Reused memory handed out in order: after the repetitions, as many nodes as the "
        "graph has are allocated one after another; the share placed right next to the "
        "previous one (100%: a rebuilt graph lies in memory as the first one did).",
        f"Node size: microcrad {sizes['binary_node_bytes']} bytes per binary node (struct "
        f"{sizes['value_struct_bytes']} + 2 operand pointers, "
        f"{'node pool' if sizes['pooled'] else 'plain malloc'}), floor and floor-atomic "
        f"{sizes['floor_node_bytes']}; resident-set growth over the chain's cold build, bytes "
        f"per node: {', '.join(growth)}.",
    ]
    if w1["check_failures"]:
        lines.append("W1 checks FAILED: " + "; ".join(w1["check_failures"]))
    else:
        lines.append(
            "W1 checks: microcrad, the floor and floor-atomic agree bit for bit on every shape."
        )
    return lines


def w1_information(w1: dict[str, Any]) -> list[str]:
    """Lines of information (not goals) on W1: what the floor with thread-safe
    reference counts costs relative to the plain floor, against which the goals judge
    microcrad. Empty when W1 did not run."""
    if "skipped" in w1:
        return []
    alone = w1["ratios"]["atomic_vs_floor"]
    shapes = w1["shapes"]
    warm = ", ".join(f"{shapes[k]['short']} {_times(r['warm'])}" for k, r in alone.items())
    counted = ", ".join(
        f"{shapes[k]['short']} {_times(r['instructions'])}" for k, r in alone.items()
    )
    return [
        f"info: W1 thread-safe counts alone, floor-atomic / floor (the goals allow microcrad "
        f"2x the floor, warm): warm {warm}; instructions {counted}"
    ]


def profile_tables(profiles: dict[str, Any]) -> list[str]:
    """Where W1's instructions go (benchlib.w1.profile_functions), as one Markdown table
    per shape and engine: each function's own instructions per node, per phase."""
    if "skipped" in profiles:
        return [f"W1 profile skipped: {profiles['skipped']}"]
    lines: list[str] = []
    for title, table in profiles.items():
        lines += [
            f"| {title}, instructions per node by function (own code) "
            "| build | backward | release | total |",
            "|---|---:|---:|---:|---:|",
        ]
        rows = [(row["function"], row) for row in table["functions"]]
        if sum(table["others"].values()) >= 0.05:
            rows.append(("(all others)", table["others"]))
        for name, costs in rows:
            per_phase = [costs["build"], costs["backward"], costs["release"]]
            cells = " | ".join(f"{c:,.1f}" if c else "" for c in per_phase)
            lines.append(f"| {name} | {cells} | {sum(per_phase):,.1f} |")
        lines.append("")
    return lines[:-1]


def python_ops_table(py: dict[str, Any]) -> list[str]:
    """The Python per-operation results (benchlib.python_ops) as the lines of a
    Markdown table and a line of checks."""
    if "skipped" in py:
        return [f"Python per-operation benchmark skipped: {py['skipped']}"]
    lines = [
        f"| Python, one node per operation ({py['operations']:,} `*` and `+`: build, backward, "
        "drop), µs per operation | build | backward | release | total | ctypes calls per op |",
        "|---|---:|---:|---:|---:|---:|",
        f"| a bare ctypes call ({py['bare_call'].split(' (')[0]}: a pointer in, a double out) "
        f"| | | | {py['bare_call_us']:.3f} | 1.0 |",
    ]
    for name, row in py["rows"].items():
        us = row["us_per_op"]
        lines.append(
            f"| {name} | {us['build']:.3f} | {us['backward']:.3f} | {us['release']:.3f} "
            f"| {us['total']:.3f} | {row['calls_per_op']:.1f} |"
        )
    agrees = py["agrees_with_micrograd"]
    lines.append(
        "Python checks: "
        + (
            "micrograd not installed"
            if agrees is None
            else f"microcrad {'agrees' if agrees else 'DISAGREES'} with micrograd bit for bit"
        )
        + f"; live values left after dropping the graph: {py['live_values_leaked']}."
    )
    return lines


def goals(
    moons: list[Run], mnist: list[Run], w1: dict[str, Any], py: dict[str, Any]
) -> dict[str, Any]:
    """The performance goals, measured in this run: for each, the measurement and
    whether it met the goal (None for both when it was not measured)."""

    def run_named(runs: list[Run], name: str) -> Run:
        return next((run for run in runs if run.name == name), Run(name, skipped="not run"))

    mg = run_named(moons, "micrograd")
    checks: list[tuple[str, float | None, Callable[[float], bool]]] = [
        (
            "moons per-op vs micrograd >= 10x",
            ratio(mg, run_named(moons, "microcrad per-op")),
            lambda v: v >= 10.0,
        ),
        (
            "moons fused nn vs micrograd >= 100x",
            ratio(mg, run_named(moons, "microcrad fused nn")),
            lambda v: v >= 100.0,
        ),
        (
            "moons replay vs PyTorch batched > 1x",
            ratio(
                run_named(moons, "PyTorch, batched tensors"), run_named(moons, "microcrad replay")
            ),
            lambda v: v > 1.0,
        ),
        (
            "MNIST replay vs micrograd >= 7500x",
            ratio(run_named(mnist, "micrograd"), run_named(mnist, "microcrad replay")),
            lambda v: v >= 7500.0,
        ),
    ]
    if "skipped" not in w1:
        for key, shape in w1["shapes"].items():
            r = w1["ratios"]["vs_floor"][key]
            checks.append(
                (f"W1 {shape['short']}: microcrad <= 2x floor, warm", r["warm"], lambda v: v <= 2.0)
            )
            checks.append(
                (f"W1 {shape['short']}: microcrad <= 3x floor, cold", r["cold"], lambda v: v <= 3.0)
            )
        checks.append(
            (
                f"W1 microcrad per node, {w1['shapes']['tree_big']['short']} <= 1.25x "
                f"{w1['shapes']['tree']['short']} (warm)",
                w1["ratios"]["size"]["microcrad"],
                lambda v: v <= 1.25,
            )
        )
        size = w1["node_sizes"]["binary_node_bytes"]
        checks.append(("C binary node <= 64 bytes", size, lambda v: v <= 64))
    if "skipped" not in py:
        checks.append(
            (
                "Python: <= 2.5 bare ctypes calls per operation",
                py["rows"]["microcrad"]["calls_per_op"],
                lambda v: v <= 2.5,
            )
        )
    out: dict[str, Any] = {}
    for key, value, test in checks:
        measured = None if value is None or math.isnan(value) else value
        out[key] = {"measured": measured, "met": None if measured is None else test(measured)}
    return out


def environment() -> dict[str, Any]:
    """Versions and machine, for the report."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpus": os.cpu_count(),
        "microcrad": microcrad.__version__,
        "microcrad_library": _lib.c._name,
        "direct_data_access": _lib.DIRECT_ACCESS,
        "micrograd": getattr(micrograd, "__version__", "installed") if micrograd else None,
        "torch": torch.__version__ if torch else None,
        "torch_threads": torch.get_num_threads() if torch else None,
    }
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info
