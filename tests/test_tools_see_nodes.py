"""Valgrind and AddressSanitizer see nodes of the normal library.

Users run the tools on the library they installed, not on a special build. The normal
(release) library takes nodes from a pool, which would hide them from the tools; it
therefore uses plain malloc when it finds itself under Valgrind or in a process with
ASan or LSan. Two programs with one bug each (tests/tool_programs/) are compiled
against the release build and run under each tool, and the report must name the
program's own file and line:

* leaked_node.c: a node never released, reported as definitely lost (Valgrind) or as a
  direct leak (LeakSanitizer) at the line that created it;
* read_after_release.c: a node read after its release, reported as an invalid read
  (Valgrind) or a heap-use-after-free (ASan) at the line of the read, with the line of
  the release in the stack of the free.

The release library is ``build/release/libmicrocrad.so`` (built with CMake's release
preset if it is not there yet) or ``$MICROCRAD_RELEASE_LIB``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ROOT / "tests" / "tool_programs"
CC = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
VALGRIND = shutil.which("valgrind")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what a sanitizer run of the test suite adds
    (a preloaded runtime, its options, the pool switch): the compiler, CMake and the
    programs under test must run as a user would run them."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("LD_PRELOAD", "MICROCRAD_NO_POOL")
        and not key.endswith("SAN_OPTIONS")
    }
    env.update(extra)
    return env


def marked_line(source: Path, mark: str) -> int:
    """The 1-based number of the line of `source` whose comment starts with `mark`."""
    for number, line in enumerate(source.read_text().splitlines(), start=1):
        if f"/* {mark}" in line:
            return number
    raise AssertionError(f"{source.name} has no line marked {mark}")


@pytest.fixture(scope="module")
def release_library() -> Path:
    """The normal library, built with the release preset when it is not there yet."""
    configured = os.environ.get("MICROCRAD_RELEASE_LIB")
    if configured:
        return Path(configured)
    library = ROOT / "build" / "release" / "libmicrocrad.so"
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.skip("cmake is not installed")
    if not (ROOT / "build" / "release" / "CMakeCache.txt").exists():
        subprocess.run(
            [cmake, "--preset", "release"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            env=clean_env(),
        )
    subprocess.run(
        [cmake, "--build", "--preset", "release", "--target", "microcrad"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        env=clean_env(),
    )
    return library


def compile_program(name: str, library: Path, out_dir: Path, *flags: str) -> Path:
    """tests/tool_programs/<name>.c linked against `library`, with debug information."""
    if CC is None:
        pytest.skip("no C compiler")
    program = out_dir / (name + ("_asan" if flags else ""))
    subprocess.run(
        [
            CC,
            "-std=c11",
            "-g",
            "-O0",
            *flags,
            "-I",
            str(ROOT / "c" / "include"),
            str(PROGRAMS / f"{name}.c"),
            "-o",
            str(program),
            str(library),
            f"-Wl,-rpath,{library.parent}",
        ],
        check=True,
        capture_output=True,
        text=True,
        env=clean_env(),
    )
    return program


def run_tool(command: list[str], env_extra: dict[str, str]) -> str:
    """Runs `command` and returns what it printed on stderr (where the tools report).
    The library must decide by itself whether a tool is watching."""
    result = subprocess.run(
        command, capture_output=True, text=True, env=clean_env(**env_extra), timeout=300
    )
    return result.stderr


def asan_available(tmp_path: Path) -> bool:
    """Whether the compiler can build and run an ASan program here."""
    if CC is None:
        return False
    probe = tmp_path / "probe.c"
    probe.write_text("int main(void) { return 0; }\n")
    built = subprocess.run(
        [CC, "-fsanitize=address", str(probe), "-o", str(tmp_path / "probe")],
        capture_output=True,
        env=clean_env(),
    )
    return built.returncode == 0


# ---- Valgrind ----------------------------------------------------------------------


@pytest.mark.skipif(VALGRIND is None, reason="valgrind is not installed")
def test_valgrind_reports_a_leaked_node_at_the_programs_line(
    release_library: Path, tmp_path: Path
) -> None:
    program = compile_program("leaked_node", release_library, tmp_path)
    report = run_tool(
        [str(VALGRIND), "--leak-check=full", "--show-leak-kinds=definite", str(program)], {}
    )
    line = marked_line(PROGRAMS / "leaked_node.c", "LEAKED")
    assert re.search(r"definitely lost: [1-9]", report), report
    assert f"leaked_node.c:{line}" in report, report


@pytest.mark.skipif(VALGRIND is None, reason="valgrind is not installed")
def test_valgrind_reports_a_read_after_release_at_the_programs_lines(
    release_library: Path, tmp_path: Path
) -> None:
    program = compile_program("read_after_release", release_library, tmp_path)
    report = run_tool([str(VALGRIND), str(program)], {})
    source = PROGRAMS / "read_after_release.c"
    read, released = marked_line(source, "READ"), marked_line(source, "RELEASED")
    assert "Invalid read" in report, report
    invalid_read = report[report.index("Invalid read") :]
    assert f"read_after_release.c:{read}" in invalid_read, report
    assert "free'd" in invalid_read, report
    freed = invalid_read[invalid_read.index("free'd") :]
    assert f"read_after_release.c:{released}" in freed, report


# ---- AddressSanitizer and LeakSanitizer ---------------------------------------------


def test_leak_sanitizer_reports_a_leaked_node_at_the_programs_line(
    release_library: Path, tmp_path: Path
) -> None:
    if not asan_available(tmp_path):
        pytest.skip("the compiler cannot build ASan programs here")
    program = compile_program(
        "leaked_node", release_library, tmp_path, "-fsanitize=address", "-fno-omit-frame-pointer"
    )
    report = run_tool([str(program)], {"ASAN_OPTIONS": "detect_leaks=1"})
    line = marked_line(PROGRAMS / "leaked_node.c", "LEAKED")
    assert "detected memory leaks" in report, report
    assert re.search(r"Direct leak of \d+ byte", report), report
    assert f"leaked_node.c:{line}" in report, report


def test_asan_reports_a_read_after_release_at_the_programs_lines(
    release_library: Path, tmp_path: Path
) -> None:
    if not asan_available(tmp_path):
        pytest.skip("the compiler cannot build ASan programs here")
    program = compile_program(
        "read_after_release",
        release_library,
        tmp_path,
        "-fsanitize=address",
        "-fno-omit-frame-pointer",
    )
    report = run_tool([str(program)], {"ASAN_OPTIONS": "detect_leaks=0"})
    source = PROGRAMS / "read_after_release.c"
    read, released = marked_line(source, "READ"), marked_line(source, "RELEASED")
    assert "heap-use-after-free" in report, report
    assert f"read_after_release.c:{read}" in report, report
    freed = report[report.index("freed by thread") :]
    assert f"read_after_release.c:{released}" in freed.split("previously allocated")[0], report
