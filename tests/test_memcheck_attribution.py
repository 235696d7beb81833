"""tools/memcheck.py blames the program's own code, not the library it called.

A finding is attributed to the first stack frame outside the sanitizer runtime and
outside libmicrocrad: a student's bug reported with the student's line and as "in
the program", a bug that is the library's alone as "in microcrad", and for a Python
program stopped by an error, the Python line (from faulthandler's traceback).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def _load_memcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("microcrad_memcheck", ROOT / "tools" / "memcheck.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


memcheck = _load_memcheck()

# Stacks as ASan prints them (lab 11: the library writes past the program's array).
LIBRARY_WRITE_FROM_PROGRAM = f"""\
==1==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x6 at pc 0x1 bp 0x2 sp 0x3
WRITE of size 8 at 0x6 thread T0
    #0 0x1 in microcrad_layer_forward {ROOT}/c/src/layer.c:80
    #1 0x2 in main /home/student/labs-workspace/lab11.c:39
    #2 0x3 in __libc_start_call_main ../sysdeps/nptl/libc_start_call_main.h:58

0x6 is located 0 bytes to the right of 24-byte region [0x5,0x6)
allocated by thread T0 here:
    #0 0x4 in __interceptor_malloc ../../../../src/libsanitizer/asan/asan_malloc_linux.cpp:69
    #1 0x5 in main /home/student/labs-workspace/lab11.c:27

SUMMARY: AddressSanitizer: heap-buffer-overflow
"""

LIBRARY_ONLY = f"""\
==1==ERROR: AddressSanitizer: heap-use-after-free on address 0x6 at pc 0x1 bp 0x2 sp 0x3
READ of size 4 at 0x6 thread T0
    #0 0x1 in mc_check_value {ROOT}/c/src/node.c:17
    #1 0x2 in value_data {ROOT}/c/src/accessors.c:9
    #2 0x3 in _call_function_pointer /tmp/python-build.1/Python-3.11.7/Modules/_ctypes/callproc.c:923
    #3 0x4 in ffi_call (/usr/lib/x86_64-linux-gnu/libffi.so.8+0x7e2d)

SUMMARY: AddressSanitizer: heap-use-after-free
"""


def test_a_bug_reached_through_the_library_is_the_programs_and_names_its_line() -> None:
    [finding] = memcheck.parse_sanitizer_text(LIBRARY_WRITE_FROM_PROGRAM, "log")
    assert finding.owner == "program"
    assert finding.ours
    assert finding.culprit() == "main /home/student/labs-workspace/lab11.c:39"


def test_frames_are_sorted_into_runtime_library_program_and_elsewhere() -> None:
    owner = memcheck.frame_owner
    assert owner("__interceptor_malloc ../../src/libsanitizer/asan/x.cpp:69") == "runtime"
    assert owner(f"value_add {ROOT}/c/src/ops_arith.c:25") == "library"
    assert owner("value_add (/usr/local/lib/libmicrocrad.so.0.1+0x1234)") == "library"
    assert owner("main /home/student/lab.c:3") == "program"
    assert owner(f"main {ROOT}/examples/labs/lab1_forgotten_release.c:3") == "program"
    assert owner("(/home/student/a.out+0x11a9)") == "program"
    assert owner("raise (/usr/lib/x86_64-linux-gnu/libc.so.6+0x3c8eb)") == "elsewhere"
    assert owner("printf ./stdio-common/./stdio-common/printf.c:33") == "elsewhere"
    assert owner("ffi_call (/usr/lib/x86_64-linux-gnu/libffi.so.8+0x7e2d)") == "elsewhere"
    assert owner("f /work/.venv/lib/python3.11/site-packages/numpy/core/x.c:1") == "elsewhere"


def test_without_program_frames_a_library_finding_is_microcrads_and_shows_the_python_line(
        tmp_path: Path) -> None:
    [finding] = memcheck.parse_sanitizer_text(LIBRARY_ONLY, "log")
    assert finding.owner == "microcrad"
    # The Python line comes from faulthandler's traceback in the run's stderr.
    (tmp_path / "asan.1").write_text(LIBRARY_ONLY)
    (tmp_path / "stderr.txt").write_text(
        "Fatal Python error: Aborted\n\n"
        "Current thread 0x00007f (most recent call first):\n"
        '  File "/home/student/lab7.py", line 29 in main\n'
        '  File "/home/student/lab7.py", line 34 in <module>\n')
    [finding] = memcheck.collect_findings(tmp_path)
    assert finding.python_line == "/home/student/lab7.py:29 in main"
    assert finding.owner == "program"
    assert "/home/student/lab7.py:29" in finding.culprit()


def test_the_verdict_line_says_in_the_program(tmp_path: Path) -> None:
    import io
    (tmp_path / "asan.1").write_text(LIBRARY_WRITE_FROM_PROGRAM)
    verdict = memcheck.judge("asan", [-6], tmp_path)
    out = io.StringIO()
    memcheck.print_verdict(verdict, ["lab11"], out)
    text = out.getvalue()
    assert "1 in the program, 0 in microcrad" in text
    assert "[program] asan heap-buffer-overflow: WRITE of size 8" in text
    assert "at main /home/student/labs-workspace/lab11.c:39" in text
