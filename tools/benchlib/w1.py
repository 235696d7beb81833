"""Part 3, C: workload W1 (build a graph, run backward from its root, release it) on
microcrad, on the floor and on the floor with thread-safe reference counts
("floor-atomic"), timed per phase and counted in instructions.

tools/bench_nodes.c does the work (built with CMake's release preset); its header
describes the shapes and the three engines, tools/bench_floor.c the floor and
tools/bench_floor_atomic.c the floor with atomic counts (both measuring sticks only).
The goals compare microcrad with the floor; floor-atomic shows how much of that
budget thread-safe counts alone take (floor-atomic / floor) and what microcrad costs
beyond them (microcrad / floor-atomic). Here:

* Timing: every (shape, engine) runs in a process of its own, so that its first
  repetition meets fresh memory ("cold") and the later ones reuse it ("warm"). The
  processes are interleaved, round after round, the engines taking turns to go first,
  so that a busy spell of the machine hits them all. Reported per node: each phase's least
  time over every repetition of every round (the phases are timed one by one, so a
  busy spell spoils only the phase it falls in), and as total their sum.
* Instructions: one run per (shape, engine) under callgrind, counting one warm
  repetition's phases; the big tree at a reduced size (instruction counts per node do
  not grow with the size; cache misses, which they do not see, do).
* Checks: every engine must compute the same root value and the same leaf gradients,
  bit for bit; otherwise the comparison is not of the same work and the run fails.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchlib.callgrind import run_callgrind, valgrind_missing
from benchlib.runs import progress

REPO = Path(__file__).resolve().parent.parent.parent
ENGINES = ("floor", "floor-atomic", "microcrad")
PHASES = ("build", "backward", "release")
CALLGRIND_PHASES = [f"callgrind_{phase}" for phase in PHASES]


@dataclass(frozen=True)
class Shape:
    """One graph shape of W1."""

    key: str  # the name in the JSON report
    kind: str  # bench_nodes's --shape
    size: int  # bench_nodes's --size: N for the chain, P for the tree
    callgrind_size: int  # the size run under callgrind
    label: str
    short: str  # for the goals

    @property
    def nodes(self) -> int:
        """Op nodes per graph."""
        return self.size if self.kind == "chain" else 2 * self.size - 1


def shapes(quick: bool) -> list[Shape]:
    """W1's three shapes; small ones for --quick."""
    if quick:
        return [
            Shape(
                "chain", "chain", 4_000, 2_000, "chain of 4,000 alternating `x*c`, `x+c`", "chain 4k"
            ),
            Shape(
                "tree",
                "tree",
                2_048,
                1_024,
                "2,048 products `a*b` summed by a balanced tree: 4,095 nodes",
                "tree 4k",
            ),
            Shape("tree_big", "tree", 16_384, 4_096, "the same tree, 32,767 nodes", "tree 32k"),
        ]
    return [
        Shape(
            "chain", "chain", 50_000, 50_000, "chain of 50,000 alternating `x*c`, `x+c`", "chain 50k"
        ),
        Shape(
            "tree",
            "tree",
            32_768,
            32_768,
            "32,768 products `a*b` summed by a balanced tree: 65,535 nodes",
            "tree 65k",
        ),
        Shape("tree_big", "tree", 500_000, 131_072, "the same tree, 999,999 nodes", "tree 1M"),
    ]


def build_program() -> Path | str:
    """Builds bench_nodes with CMake's release preset; its path, or why it could not."""
    cmake = shutil.which("cmake")
    if cmake is None:
        return "cmake is not installed"
    build = REPO / "build" / "release"
    try:
        if not (build / "CMakeCache.txt").exists():
            progress("W1: configuring the release preset")
            subprocess.run(
                [cmake, "--preset", "release"], cwd=REPO, check=True, capture_output=True, text=True
            )
        progress("W1: building bench_nodes")
        subprocess.run(
            [cmake, "--build", "--preset", "release", "--target", "bench_nodes"],
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError as error:
        return f"building bench_nodes failed: {(error.stdout + error.stderr).strip()[-400:]}"
    return build / "bench" / "bench_nodes"


def command(program: Path, engine: str, shape: Shape, size: int) -> list[str]:
    """bench_nodes's command line for one engine and shape."""
    return [str(program), "--engine", engine, "--shape", shape.kind, "--size", str(size)]


def per_node(rep: dict[str, float], nodes: int) -> dict[str, float]:
    """A repetition's seconds per phase as ns per node, with the total."""
    out = {phase: 1e9 * rep[phase] / nodes for phase in PHASES}
    out["total"] = sum(out.values())
    return out


def least(reps: list[dict[str, float]]) -> dict[str, float] | None:
    """Each phase's least time over ``reps``, or None when there are none."""
    if not reps:
        return None
    return {phase: min(rep[phase] for rep in reps) for phase in PHASES}


def time_shapes(
    program: Path, all_shapes: list[Shape], rounds: int, reps: int
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Times every shape on every engine, interleaved over ``rounds`` (each round the
    next engine goes first). Returns the results by shape and engine, and the failed
    checks (empty when all passed)."""
    cold: dict[tuple[str, str], list[dict[str, float]]] = {}
    warm: dict[tuple[str, str], list[dict[str, float]]] = {}
    first: dict[tuple[str, str], dict[str, Any]] = {}
    failures: list[str] = []
    for round_index in range(rounds):
        turn = round_index % len(ENGINES)
        engines = ENGINES[turn:] + ENGINES[:turn]
        for shape in all_shapes:
            progress(f"W1: round {round_index + 1}/{rounds}, {shape.key} ({shape.nodes:,} nodes)")
            for engine in engines:
                result = subprocess.run(
                    command(program, engine, shape, shape.size) + ["--reps", str(reps)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                data = json.loads(result.stdout)
                key = (shape.key, engine)
                cold.setdefault(key, []).append(data["reps"][0])
                warm.setdefault(key, []).extend(data["reps"][1:])
                seen = {name: data[name] for name in ("root_data", "grad_checksum")}
                if key not in first:
                    first[key] = data
                elif any(first[key][name] != value for name, value in seen.items()):
                    failures.append(f"{shape.key}/{engine}: results differ between rounds")
    results: dict[str, dict[str, Any]] = {}
    for shape in all_shapes:
        by_engine: dict[str, Any] = {}
        for engine in ENGINES:
            key = (shape.key, engine)
            data = first[key]
            best_cold, best_warm = least(cold[key]), least(warm[key])
            growth = data["rss_growth_bytes"]
            by_engine[engine] = {
                "cold_ns": per_node(best_cold, shape.nodes) if best_cold else None,
                "warm_ns": per_node(best_warm, shape.nodes) if best_warm else None,
                "cold_samples": len(cold[key]),
                "warm_samples": len(warm[key]),
                "root_data": data["root_data"],
                "grad_checksum": data["grad_checksum"],
                "rss_bytes_per_node": None if growth < 0 else growth / shape.nodes,
                "adjacent_share": data["adjacent_share"],
            }
        floor = by_engine["floor"]
        agree = True
        for engine in ENGINES[1:]:
            other = by_engine[engine]
            if any(floor[name] != other[name] for name in ("root_data", "grad_checksum")):
                agree = False
                failures.append(
                    f"{shape.key}: {engine} and the floor disagree (root "
                    f"{other['root_data']!r} vs {floor['root_data']!r}, gradient checksum "
                    f"{other['grad_checksum']!r} vs {floor['grad_checksum']!r})"
                )
        results[shape.key] = {
            "label": shape.label,
            "short": shape.short,
            "kind": shape.kind,
            "size": shape.size,
            "nodes": shape.nodes,
            "engines_agree": agree,
            **by_engine,
        }
    sizes = first[(all_shapes[0].key, "microcrad")]  # the same in every run
    results["_sizes"] = {
        name: sizes[name]
        for name in (
            "microcrad_version",
            "pooled",
            "value_struct_bytes",
            "binary_node_bytes",
            "floor_node_bytes",
        )
    }
    return results, failures


def count_instructions(program: Path, all_shapes: list[Shape]) -> dict[str, Any]:
    """Instructions per node of one warm repetition, per phase, for every shape and
    engine (callgrind), or ``{"skipped": why}``."""
    missing = valgrind_missing()
    if missing:
        return {"skipped": missing}
    out: dict[str, Any] = {}
    for shape in all_shapes:
        out[shape.key] = {}
        for engine in ENGINES:
            progress(f"W1: callgrind, {shape.key} on {engine} (size {shape.callgrind_size:,})")
            profile, stdout = run_callgrind(
                command(program, engine, shape, shape.callgrind_size) + ["--callgrind"],
                CALLGRIND_PHASES,
            )
            nodes = json.loads(stdout)["nodes"]
            counts = {
                phase: profile.inclusive_of(name) / nodes
                for phase, name in zip(PHASES, CALLGRIND_PHASES)
            }
            counts["total"] = sum(counts.values())
            out[shape.key][engine] = {"nodes": nodes, **counts}
    return out


def profile_functions(quick: bool, top: int = 12) -> dict[str, Any]:
    """Where each engine's instructions go, per shape (the chain and the 65k tree) and
    phase: instructions per node of each function's own code (callgrind, one warm
    repetition, one run per phase), the ``top`` functions by their total over the
    phases. ``{"skipped": why}`` when bench_nodes cannot be built or valgrind is
    missing."""
    missing = valgrind_missing()
    if missing:
        return {"skipped": missing}
    program = build_program()
    if isinstance(program, str):
        return {"skipped": program}
    out: dict[str, Any] = {}
    for shape in shapes(quick)[:2]:
        for engine in ENGINES:
            by_function: dict[str, dict[str, float]] = {}
            for phase, name in zip(PHASES, CALLGRIND_PHASES):
                progress(f"W1 profile: {shape.key} on {engine}, {phase}")
                profile, stdout = run_callgrind(
                    command(program, engine, shape, shape.callgrind_size) + ["--callgrind"],
                    [name],
                )
                nodes = json.loads(stdout)["nodes"]
                for function, cost in profile.self_cost.items():
                    if cost:
                        by_function.setdefault(function, dict.fromkeys(PHASES, 0.0))
                        by_function[function][phase] = cost / nodes
            ranked = sorted(by_function.items(), key=lambda item: -sum(item[1].values()))
            shown = [item for item in ranked[:top] if sum(item[1].values()) >= 0.05]
            out[f"{shape.short}: {engine}"] = {
                "functions": [{"function": f, **costs} for f, costs in shown],
                "others": {
                    phase: sum(costs[phase] for _, costs in ranked[len(shown) :])
                    for phase in PHASES
                },
            }
    return out


def ratios(timed: dict[str, Any], instructions: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """Per shape (warm, cold, instructions): microcrad / floor ("vs_floor", what the
    goals judge), floor-atomic / floor ("atomic_vs_floor", what thread-safe counts alone
    cost) and microcrad / floor-atomic ("vs_floor_atomic", what microcrad costs beyond
    them); and the size ratio (the big tree's warm cost per node over the 65k tree's)
    of each engine."""

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None or b <= 0 else a / b

    def total(engine: dict[str, Any], which: str) -> float | None:
        return engine[which]["total"] if engine[which] else None

    pairs = {
        "vs_floor": ("microcrad", "floor"),
        "atomic_vs_floor": ("floor-atomic", "floor"),
        "vs_floor_atomic": ("microcrad", "floor-atomic"),
    }
    out: dict[str, Any] = {name: {} for name in pairs}
    out["size"] = {}
    for key in keys:
        shape = timed[key]
        counted = instructions.get(key)
        for name, (top, bottom) in pairs.items():
            out[name][key] = {
                "warm": ratio(total(shape[top], "warm_ns"), total(shape[bottom], "warm_ns")),
                "cold": ratio(total(shape[top], "cold_ns"), total(shape[bottom], "cold_ns")),
                "instructions": None
                if counted is None
                else ratio(counted[top]["total"], counted[bottom]["total"]),
            }
    for engine in ENGINES:
        out["size"][engine] = ratio(
            total(timed["tree_big"][engine], "warm_ns"), total(timed["tree"][engine], "warm_ns")
        )
    return out


def bench_w1(quick: bool, callgrind: bool = True) -> dict[str, Any]:
    """W1 on every shape and every engine: timings, instruction counts (unless
    ``callgrind`` is False or valgrind is missing), ratios and checks; or
    ``{"skipped": why}`` when bench_nodes cannot be built."""
    program = build_program()
    if isinstance(program, str):
        return {"skipped": program}
    all_shapes = shapes(quick)
    rounds, reps = (1, 3) if quick else (5, 6)
    timed, failures = time_shapes(program, all_shapes, rounds, reps)
    instructions = (
        count_instructions(program, all_shapes) if callgrind else {"skipped": "--no-callgrind"}
    )
    keys = [shape.key for shape in all_shapes]
    return {
        "shapes": {key: timed[key] for key in keys},
        "node_sizes": timed["_sizes"],
        "rounds": rounds,
        "reps_per_process": reps,
        "instructions": instructions,
        "ratios": ratios(timed, instructions, keys),
        "check_failures": failures,
    }
