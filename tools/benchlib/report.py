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


def c_table(c: dict[str, Any]) -> list[str]:
    """bench_nodes's results as the lines of a Markdown table."""
    if "skipped" in c:
        return [f"C benchmark skipped: {c['skipped']}"]
    lines = [
        "| C, ns per node | build | backward | release | total |",
        "|---|---:|---:|---:|---:|",
    ]
    rows = [
        ("chain_cold", f"chain of {c['chain_nodes']:,} links, fresh memory"),
        ("chain_warm", f"chain of {c['chain_nodes']:,} links, warm pool (median)"),
        ("wide_warm", f"balanced tree over {c['wide_leaves']:,} leaves, warm pool (median)"),
    ]
    for key, label in rows:
        r = c[key]
        lines.append(
            f"| {label} | {r['build_ns']:.1f} | {r['backward_ns']:.1f} "
            f"| {r['release_ns']:.1f} | {r['total_ns']:.1f} |"
        )
    lines.append(
        f"| bytes per binary node | {c['binary_node_bytes']} (struct "
        f"{c['value_struct_bytes']} + 2 operand pointers) | resident-set growth "
        f"{c['rss_bytes_per_chain_node']:.1f} per chain node | | |"
    )
    return lines


def goals(moons: list[Run], mnist: list[Run], c: dict[str, Any]) -> dict[str, Any]:
    """The goals of the fast paths, measured in this run: for each, the measurement
    and whether it met the goal (None for both when it was not measured)."""
    mg = by_name(moons, "micrograd")
    speed_ups = [
        ("moons per-op vs micrograd >= 10x", ratio(mg, by_name(moons, "microcrad per-op")), 10.0),
        (
            "moons fused nn vs micrograd >= 100x",
            ratio(mg, by_name(moons, "microcrad fused nn")),
            100.0,
        ),
        (
            "moons replay vs PyTorch batched > 1x",
            ratio(by_name(moons, "PyTorch, batched tensors"), by_name(moons, "microcrad replay")),
            1.0,
        ),
        (
            "MNIST replay vs micrograd >= 7500x",
            ratio(by_name(mnist, "micrograd"), by_name(mnist, "microcrad replay")),
            7500.0,
        ),
    ]
    out: dict[str, Any] = {}
    for key, value, goal in speed_ups:
        out[key] = {
            "measured": None if math.isnan(value) else value,
            "met": None if math.isnan(value) else value >= goal,
        }
    if "skipped" not in c:
        total = c["chain_warm"]["total_ns"]
        out["C chain <= 20 ns per node (warm)"] = {"measured": total, "met": total <= 20.0}
        size = c["binary_node_bytes"]
        out["C binary node <= 64 bytes"] = {"measured": size, "met": size <= 64}
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
