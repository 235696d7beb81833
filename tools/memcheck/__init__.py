"""memcheck: run a command under AddressSanitizer, ThreadSanitizer or Valgrind, and judge it.

Usage:
    tools/memcheck.py {asan,tsan,valgrind} [options] -- COMMAND [ARG...]
    tools/memcheck.py {asan,tsan,valgrind} [options] --each -- PROGRAM [PROGRAM...]
    tools/memcheck.py {asan,tsan,valgrind} --build-only

Examples:
    tools/memcheck.py asan -- .venv/bin/pytest -q
    tools/memcheck.py valgrind -- build/valgrind/tests/test_ops
    tools/memcheck.py valgrind --build-only &&
        tools/memcheck.py valgrind --no-build --each -- build/valgrind/tests/test_*
      (the shell expands the pattern before memcheck runs, so build the preset first)
    tools/memcheck.py tsan -- build/tsan/tests/test_node_threads

What it does:
  1. configures (once) and builds the CMake preset of the same name, so that
     build/<preset>/libmicrocrad.so and the programs next to it are current;
  2. prepares the environment. For a Python command it runs the real interpreter
     (not a pyenv shim or a shell wrapper) with the sanitizer runtime in
     LD_PRELOAD, PYTHONMALLOC=malloc (pymalloc hides frees from the tools) and
     MICROCRAD_LIB pointing at the sanitizer build of the library; for pytest it
     also loads the leak_attribution plugin (tests/leak_attribution.py), which
     runs a leak check after every test file (or, with --leak-check test, after
     every test) and names the tests that leaked; when a file leaked, memcheck
     runs that file again checking after every test, to name the one test;
  3. sends every report to files in a per-run directory (the sanitizers'
     log_path, Valgrind's XML), so that pytest's output capture cannot swallow
     them, and copies the command's stderr there too;
  4. parses those files and prints a verdict: each error and leak, attributed
     to the program (a frame of the code being checked: the user's program, or
     this repository's tests, examples and labs), to microcrad (frames of the
     library only) or to something else (the interpreter, libc, third parties).
     The verdict line points at the first frame outside the library (where the
     program called it, or its own faulty line) and, for a Python program
     stopped by an error, at the Python line too (from faulthandler).

The exit status is 0 when the command succeeded and nothing was attributed to
the program or microcrad; 1 otherwise; 2 for a usage or build problem. The sanitizers are set
up so that they never replace the command's own exit status (a leak report
does not turn a passing run into exit code 23, nor a failing one into a pass):
an ASan or UBSan error aborts the command (SIGABRT), leaks and races are
judged from the reports alone.

The sanitizer runtime can itself fail: LeakSanitizer's check stops every thread
from a tracer thread, which can crash ("Tracer caught signal 11", then
"LeakSanitizer has encountered a fatal error"); the runtime then aborts the process
whatever the program did. Its known cause with gcc up to 13, a misread thread-local
block, is switched off (intercept_tls_get_addr=0, see launch.py). The verdict names
such a failure apart from the findings ("the sanitizer itself failed: ..."). A
single command (not --each) stopped that way, with nothing found against the
program or microcrad, runs once more, its reports in <log dir>/rerun; the verdict
is the second run's, and a second failure fails.

The package (tools/memcheck/): paths (where things are), attribution (whose code a
stack frame is), findings (parsing the reports), build (the CMake presets), launch
(preparing and running the command), verdict (judging and printing), cli (the
command line). tools/memcheck.py is the command and loads this package.
"""

from __future__ import annotations

from .attribution import foreign_prefixes, frame_owner
from .build import build, build_dir
from .cli import main
from .findings import (Finding, attribute, collect_findings, parse_sanitizer_text,
                       parse_valgrind_xml, python_line_at_fault, valgrind_suppressions)
from .launch import Command, environment, prepare_command, run, valgrind_prefix
from .paths import ROOT, SUPPRESSIONS, TOOLS, die
from .verdict import Verdict, judge, pin_leaks, print_verdict

__all__ = [
    "Command", "Finding", "ROOT", "SUPPRESSIONS", "TOOLS", "Verdict", "attribute", "build",
    "build_dir", "collect_findings", "die", "environment", "foreign_prefixes",
    "frame_owner", "judge", "main", "parse_sanitizer_text", "parse_valgrind_xml",
    "pin_leaks", "prepare_command", "print_verdict", "python_line_at_fault", "run",
    "valgrind_prefix", "valgrind_suppressions",
]
