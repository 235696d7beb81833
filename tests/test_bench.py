"""The measuring tools of tools/bench.py: the W1 program (tools/bench_nodes.c, with the
floor of tools/bench_floor.c and the floor with thread-safe counts of
tools/bench_floor_atomic.c), the callgrind reader, and the W1 and Python
per-operation parts of the report.

Nothing here measures time: the tests check that the tools compute what they say
(every engine of bench_nodes against an independent computation in Python, the
callgrind reader against a profile worked out by hand) and that the report carries
every table. The full W1 run (it builds the release preset and runs callgrind) is
marked slow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "tools"
BENCH = TOOLS / "bench.py"

# The sanitizer settings of tools/memcheck.py are for the Python process under test; a
# bench_nodes built without sanitizers runs without them.
SANITIZER_VARIABLES = ("LD_PRELOAD", "ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS")


def plain_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in SANITIZER_VARIABLES}


def bench_nodes_program() -> Path | None:
    """A bench_nodes built by CMake (tools/test.sh builds the debug preset), if any."""
    for preset in ("debug", "release"):
        program = ROOT / "build" / preset / "bench" / "bench_nodes"
        if program.exists():
            return program
    return None


def run_bench_nodes(*args: str) -> subprocess.CompletedProcess[str]:
    program = bench_nodes_program()
    if program is None:
        pytest.skip("bench_nodes is not built (cmake --preset debug && cmake --build --preset debug)")
    return subprocess.run(
        [str(program), *args], capture_output=True, text=True, timeout=120, env=plain_environment()
    )


# ---------------------------------------------------------------------------------
# bench_nodes: every engine computes W1 exactly as Python's floats do
# ---------------------------------------------------------------------------------


def expected_chain(n: int) -> tuple[float, float]:
    """The chain's root and x0.grad + c.grad, by reverse mode written out in Python
    with the engines' rules (a*b: da += b*g, db += a*g; a+b: da += g, db += g)."""
    c = 1.0 + 1.0 / n
    xs = [0.5]
    for k in range(n):
        xs.append(xs[-1] * c if k % 2 == 0 else xs[-1] + c)
    g, c_grad = 1.0, 0.0
    for k in reversed(range(n)):
        if k % 2 == 0:
            g, c_grad = 0.0 + c * g, c_grad + xs[k] * g
        else:
            g, c_grad = 0.0 + g, c_grad + g
    return xs[-1], g + c_grad


def expected_tree(p: int) -> tuple[float, float]:
    """The tree's root and the sum of its leaves' gradients (each a_i gets b_i, each
    b_i gets a_i: every sum passes its gradient, 1.0, on unchanged)."""
    a = [0.5 + 0.25 * (i % 7) for i in range(p)]
    b = [1.0 - 0.125 * (i % 5) for i in range(p)]
    level = [x * y for x, y in zip(a, b)]
    while len(level) > 1:
        pairs = [level[i] + level[i + 1] for i in range(0, len(level) - 1, 2)]
        level = pairs + ([level[-1]] if len(level) % 2 else [])
    checksum = 0.0
    for x, y in zip(a, b):
        checksum += (0.0 + y * 1.0) + (0.0 + x * 1.0)
    return level[0], checksum


@pytest.mark.parametrize("engine", ["floor", "floor-atomic", "microcrad"])
@pytest.mark.parametrize(
    "shape, size, expected",
    [
        ("chain", 1001, expected_chain(1001)),
        ("tree", 1000, expected_tree(1000)),
        ("tree", 37, expected_tree(37)),  # odd widths: a partial sum carried up a level
    ],
)
def test_bench_nodes_computes_w1_exactly(
    engine: str, shape: str, size: int, expected: tuple[float, float]
) -> None:
    result = run_bench_nodes("--engine", engine, "--shape", shape, "--size", str(size), "--reps", "3")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["engine"], data["shape"], data["size"]) == (engine, shape, size)
    assert data["nodes"] == (size if shape == "chain" else 2 * size - 1)
    assert (data["root_data"], data["grad_checksum"]) == expected
    assert len(data["reps"]) == 3
    assert 0.0 <= data["adjacent_share"] <= 1.0
    if engine.startswith("floor"):  # a bump arena hands out memory in order, chunk boundaries aside
        assert data["adjacent_share"] > 0.99
    for rep in data["reps"]:
        assert all(rep[phase] >= 0.0 for phase in ("build", "backward", "release"))


@pytest.mark.parametrize("shape, size", [("chain", 70_000), ("tree", 40_000)])
def test_the_floor_with_atomic_counts_frees_every_node_and_balances_every_count(
    shape: str, size: int
) -> None:
    # More nodes than one arena chunk holds (32,768). bench_nodes exits with 1 unless
    # each release sees every node of the graph die, and its teardown unless every
    # leaf's count is back to 1: retains and drops must balance on every repetition.
    result = run_bench_nodes(
        "--engine", "floor-atomic", "--shape", shape, "--size", str(size), "--reps", "3"
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["engine"] == "floor-atomic" and len(data["reps"]) == 3
    assert data["floor_node_bytes"] == 40  # the count fits in the floor's node


def test_bench_nodes_callgrind_mode_runs_one_warm_repetition() -> None:
    result = run_bench_nodes("--engine", "microcrad", "--shape", "tree", "--size", "64", "--callgrind")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["callgrind"] is True
    assert len(data["reps"]) == 2  # cold, then the warm one that callgrind counts


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--engine", "floor", "--shape", "chain"],  # no size
        ["--engine", "nothing", "--shape", "chain", "--size", "10"],
        ["--engine", "floor", "--shape", "ring", "--size", "10"],
        ["--engine", "floor", "--shape", "chain", "--size", "1"],
        ["--engine", "floor", "--shape", "chain", "--size", "10x"],
        ["--engine", "floor", "--shape", "chain", "--size", "10", "--reps", "0"],
    ],
)
def test_bench_nodes_rejects_bad_arguments(args: list[str]) -> None:
    result = run_bench_nodes(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "usage" in result.stderr or "needs a count" in result.stderr


# ---------------------------------------------------------------------------------
# The callgrind reader
# ---------------------------------------------------------------------------------


@pytest.fixture()
def callgrind_module() -> Any:
    sys.path.insert(0, str(TOOLS))
    try:
        from benchlib import callgrind

        yield callgrind
    finally:
        sys.path.remove(str(TOOLS))


# main (self 5+2) calls work twice (inclusive 100 in all) and leaf once (7); work
# (self 60+10) calls leaf (30). Names are compressed after their first use; the second
# block of main repeats it by id only.
PROFILE = """# callgrind format
version: 1
positions: line
events: Ir
summary: 112

ob=(1) /bin/prog
fl=(1) prog.c
fn=(1) main
3 5
cfn=(2) work
calls=2 10
4 100
+1 2
fn=(3) leaf
20 7
fn=(2)
10 60
cfn=(3)
calls=3 20
11 30
12 10
fn=(1)
cfn=(3)
calls=1 20
6 7
totals: 112
"""


def test_callgrind_reader_sums_self_and_inclusive_costs(callgrind_module: Any) -> None:
    profile = callgrind_module.parse_profile(PROFILE)
    assert profile.total == 112
    assert dict(profile.self_cost) == {"main": 7, "work": 70, "leaf": 7}
    assert dict(profile.inclusive) == {"main": 114, "work": 100, "leaf": 7}
    assert profile.inclusive_of("work") == 100
    assert profile.inclusive_of("wor") == 0  # a prefix is not a clone
    assert profile.top_self(1) == [("work", 70)]


def test_callgrind_reader_counts_clones_with_their_function(callgrind_module: Any) -> None:
    text = "events: Ir\nfn=(1) phase.constprop.0\n1 40\nfn=(2) phase\n1 2\nfn=(3) phase_x\n1 9\n"
    assert callgrind_module.parse_profile(text).inclusive_of("phase") == 42


@pytest.mark.parametrize("text", ["", "hello\n", "events: Dr\nfn=main\n1 3\n"])
def test_callgrind_reader_rejects_what_is_not_an_ir_profile(callgrind_module: Any, text: str) -> None:
    with pytest.raises(ValueError):
        callgrind_module.parse_profile(text)


# ---------------------------------------------------------------------------------
# The report's new parts, end to end
# ---------------------------------------------------------------------------------


def run_bench(tmp_path: Path, *args: str) -> tuple[str, dict[str, Any]]:
    out = tmp_path / "bench.json"
    # From the temporary directory, so that the source tree's microcrad/ (which has no
    # library in it) cannot shadow the installed package.
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--no-moons", "--no-mnist", "--json", str(out), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout, json.loads(out.read_text())


def test_the_python_per_operation_table(tmp_path: Path) -> None:
    stdout, report = run_bench(tmp_path, "--no-c")
    assert "ctypes calls per op" in stdout
    py = report["python_ops"]
    assert py["operations"] == 2 * py["products"] - 1
    assert py["bare_call_us"] > 0
    assert py["live_values_leaked"] == 0
    microcrad = py["rows"]["microcrad"]
    assert microcrad["us_per_op"]["total"] == pytest.approx(
        sum(microcrad["us_per_op"][p] for p in ("build", "backward", "release"))
    )
    assert microcrad["calls_per_op"] == pytest.approx(
        microcrad["us_per_op"]["total"] / py["bare_call_us"]
    )
    if "micrograd" in py["rows"]:
        assert py["agrees_with_micrograd"] is True
    goal = report["goals"]["Python: <= 2.5 bare ctypes calls per operation"]
    assert goal["measured"] == pytest.approx(microcrad["calls_per_op"])
    assert report["w1"] == {"skipped": "--no-c"}


@pytest.mark.slow
def test_the_w1_tables(tmp_path: Path) -> None:
    stdout, report = run_bench(tmp_path, "--no-python-ops")
    w1 = report["w1"]
    assert "skipped" not in w1, w1
    assert report["w1_checks_passed"] is True and w1["check_failures"] == []
    assert list(w1["shapes"]) == ["chain", "tree", "tree_big"]
    engines = ("floor", "floor-atomic", "microcrad")
    for key, shape in w1["shapes"].items():
        assert shape["engines_agree"] is True
        for engine in engines:
            assert shape[engine]["root_data"] == shape["floor"]["root_data"]
            assert shape[engine]["grad_checksum"] == shape["floor"]["grad_checksum"]
            for which in ("cold_ns", "warm_ns"):
                phases = shape[engine][which]
                assert phases["total"] == pytest.approx(
                    sum(phases[p] for p in ("build", "backward", "release"))
                )
            assert stdout.count(f"| {engine}, warm |") == 3  # a row per shape
        ratios = w1["ratios"]
        for name, (top, bottom) in {
            "vs_floor": ("microcrad", "floor"),
            "atomic_vs_floor": ("floor-atomic", "floor"),
            "vs_floor_atomic": ("microcrad", "floor-atomic"),
        }.items():
            r = ratios[name][key]
            assert set(r) == {"warm", "cold", "instructions"}
            assert r["warm"] == pytest.approx(
                shape[top]["warm_ns"]["total"] / shape[bottom]["warm_ns"]["total"]
            )
        assert f"W1 {shape['short']}: microcrad <= 2x floor, warm" in report["goals"]
        assert f"W1 {shape['short']}: microcrad <= 3x floor, cold" in report["goals"]
        # The goals still judge microcrad against the plain floor.
        goal = report["goals"][f"W1 {shape['short']}: microcrad <= 2x floor, warm"]
        assert goal["measured"] == pytest.approx(ratios["vs_floor"][key]["warm"])
        assert f"{shape['short']} {ratios['atomic_vs_floor'][key]['warm']:.2f}x" in stdout
    assert set(w1["ratios"]["size"]) == set(engines)
    counted = w1["instructions"]
    if "skipped" in counted:
        assert "valgrind" in counted["skipped"]
    else:
        for key in w1["shapes"]:
            for engine in engines:
                c = counted[key][engine]
                assert c["total"] > 0 and c["build"] > 0 and c["backward"] > 0
            # Instruction counts are exact: the counts cost instructions in the build
            # (the retains and the drops) and in the release (the floor does none).
            atomic, floor = counted[key]["floor-atomic"], counted[key]["floor"]
            assert atomic["build"] > floor["build"] and atomic["release"] > floor["release"]
            assert atomic["backward"] == pytest.approx(floor["backward"])  # the same pass
    assert "microcrad / floor" in stdout and "instructions per node" in stdout
    assert "floor-atomic / floor" in stdout and "microcrad / floor-atomic" in stdout
    (info,) = report["information"]
    assert info.startswith("info: W1 thread-safe counts alone, floor-atomic / floor")
    assert info in stdout.splitlines()
    assert "W1 checks (microcrad, the floor and floor-atomic agree): PASS" in stdout


def synthetic_w1(instructions: dict[str, Any]) -> dict[str, Any]:
    """A W1 result of the shape benchlib.w1.bench_w1 returns, with made-up numbers: the
    floor 6 ns per node, floor-atomic twice that, microcrad three times (ratios as
    benchlib.w1.ratios computes them)."""
    from benchlib import w1

    def engine(scale: float) -> dict[str, Any]:
        phases = {"build": scale, "backward": 2.0 * scale, "release": 3.0 * scale}
        phases["total"] = 6.0 * scale
        return {
            "cold_ns": phases,
            "warm_ns": phases,
            "rss_bytes_per_node": 64.0,
            "adjacent_share": 1.0,
            "root_data": 1.0,
            "grad_checksum": 2.0,
        }

    shapes = {
        key: {
            "label": key,
            "short": key,
            "nodes": 3,
            "floor": engine(1.0),
            "floor-atomic": engine(2.0),
            "microcrad": engine(3.0),
        }
        for key in ("chain", "tree", "tree_big")
    }
    return {
        "shapes": shapes,
        "node_sizes": {
            "pooled": True,
            "value_struct_bytes": 48,
            "binary_node_bytes": 64,
            "floor_node_bytes": 40,
        },
        "rounds": 1,
        "reps_per_process": 2,
        "instructions": instructions,
        "ratios": w1.ratios(shapes, instructions, list(shapes)),
        "check_failures": [],
    }


def test_without_valgrind_the_instruction_counts_are_skipped_with_the_reason(
    callgrind_module: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(callgrind_module.shutil, "which", lambda name: None)
    why = callgrind_module.valgrind_missing()
    assert why is not None and "valgrind is not installed" in why
    from benchlib import report, w1

    assert w1.count_instructions(Path("/nonexistent"), w1.shapes(True)) == {"skipped": why}
    text = "\n".join(report.w1_tables(synthetic_w1({"skipped": why})))
    assert f"W1 instruction counts skipped: {why}" in text
    assert "| floor, warm | 1.0 | 2.0 | 3.0 | 6.0 |  |" in text
    assert "| floor-atomic, warm | 2.0 | 4.0 | 6.0 | 12.0 |  |" in text


def test_the_report_shows_what_thread_safe_counts_alone_cost(callgrind_module: Any) -> None:
    from benchlib import report

    w1 = synthetic_w1({"skipped": "valgrind is not installed"})
    assert w1["ratios"]["atomic_vs_floor"]["chain"] == {
        "warm": 2.0,
        "cold": 2.0,
        "instructions": None,
    }
    assert w1["ratios"]["vs_floor_atomic"]["tree"]["warm"] == pytest.approx(1.5)
    text = report.w1_tables(w1)
    header = next(line for line in text if "what thread-safe counts alone cost" in line)
    assert "floor-atomic / floor, warm" in header and "microcrad / floor-atomic, warm" in header
    for key in ("chain", "tree", "tree_big"):
        assert f"| {key} | 2.00x | 2.00x | - | 1.50x | 1.50x | - |" in text
        assert f"| {key} | 3.00x | 3.00x | - | 100.0% / 100.0% |" in text  # microcrad / floor
    # The goals still compare microcrad with the plain floor (3x here), not with
    # floor-atomic (1.5x).
    goals = report.goals([], [], w1, {"skipped": "--no-python-ops"})
    assert goals["W1 chain: microcrad <= 2x floor, warm"] == {"measured": 3.0, "met": False}
    assert report.w1_information(w1) == [
        "info: W1 thread-safe counts alone, floor-atomic / floor (the goals allow microcrad "
        "2x the floor, warm): warm chain 2.00x, tree 2.00x, tree_big 2.00x; instructions "
        "chain -, tree -, tree_big -"
    ]
    assert report.w1_information({"skipped": "--no-c"}) == []
