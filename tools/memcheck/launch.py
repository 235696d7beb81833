"""Preparing a command (the real interpreter, the sanitizer runtime, the options)
and running it with its reports sent to a log directory."""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Optional

from .attribution import foreign_prefixes
from .build import build_dir
from .paths import ROOT, SUPPRESSIONS, die

_PYTHON_NAME = re.compile(r"^python(\d+(\.\d+)*)?$")


def _shebang(path: str) -> Optional[list[str]]:
    """The interpreter line of a script, split into words, or None for a binary."""
    try:
        with open(path, "rb") as file:
            head = file.readline(512)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    return head[2:].decode(errors="replace").split()


def _real_python(python: str) -> str:
    """The interpreter a `python` command really runs.

    A pyenv shim is a shell script; preloading a sanitizer into it would instrument
    bash and every helper it starts, and a venv's python is a link whose target must
    still be started through the link (that is how it finds its venv). Asking the
    interpreter for sys.executable answers both: the real binary for a shim, the venv
    path for a venv.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "PYTHONMALLOC")}
    result = subprocess.run(
        [python, "-c", "import sys; print(sys.executable); print(sys.prefix); "
         "print(sys.base_prefix)"], env=env, stdout=subprocess.PIPE, text=True, check=True)
    executable, *prefixes = result.stdout.splitlines()
    foreign_prefixes(*prefixes)  # the interpreter's own frames are not the program's
    return executable


@dataclasses.dataclass
class Command:
    argv: list[str]
    python: bool  # whether argv[0] is a Python interpreter
    pytest: bool  # whether it runs pytest
    # For pytest: the start of argv up to its own arguments (interpreter, script or
    # -m pytest, and the plugin), for running pytest again on other files.
    pytest_prefix: list[str] = dataclasses.field(default_factory=list)


def prepare_command(argv: Sequence[str]) -> Command:
    """Resolves the program to run and recognises Python and pytest commands."""
    program = shutil.which(argv[0]) or argv[0]
    if not os.path.isfile(program) or not os.access(program, os.X_OK):
        die(f"not an executable program: {argv[0]}")
    rest = list(argv[1:])
    interpreter = _shebang(program)
    if interpreter:
        # `#!/usr/bin/env python3` or `#!/path/to/venv/bin/python`: run the script
        # with its interpreter explicitly, so the sanitizer sees only that process.
        if os.path.basename(interpreter[0]) == "env" and len(interpreter) > 1:
            interpreter = [shutil.which(interpreter[1]) or interpreter[1]] + interpreter[2:]
        if _PYTHON_NAME.match(os.path.basename(interpreter[0])):
            rest = interpreter[1:] + [program] + rest
            program = interpreter[0]
        elif _PYTHON_NAME.match(os.path.basename(program)):
            pass  # a pyenv shim named python: resolved below
        else:
            return Command([program] + rest, python=False, pytest=False)
    if not _PYTHON_NAME.match(os.path.basename(program)):
        return Command([program] + rest, python=False, pytest=False)

    program = _real_python(program)
    pytest = False
    for index, arg in enumerate(rest):
        if arg == "-m" and index + 1 < len(rest) and rest[index + 1] == "pytest":
            pytest, insert_at = True, index + 2
            break
        if not arg.startswith("-"):  # the script: pytest's console script, or another
            pytest = os.path.basename(arg) in ("pytest", "py.test")
            insert_at = index + 1
            break
    if not pytest:
        return Command([program] + rest, python=True, pytest=False)
    rest[insert_at:insert_at] = ["-p", "leak_attribution"]
    return Command([program] + rest, python=True, pytest=True,
                   pytest_prefix=[program] + rest[:insert_at + 2])


def _options(**options: object) -> str:
    return ":".join(f"{key}={value}" for key, value in options.items())


def _runtime(name: str) -> str:
    """The path of a gcc sanitizer runtime (libasan.so, libtsan.so)."""
    compiler = os.environ.get("CC", "gcc")
    path = subprocess.run([compiler, f"-print-file-name={name}"], stdout=subprocess.PIPE,
                          text=True, check=True).stdout.strip()
    if not os.path.isabs(path):
        die(f"{compiler} does not know {name}; install the sanitizer runtimes "
            "(gcc's libasan, libtsan)")
    return path


def environment(tool: str, command: Command, log_dir: Path,
                leak_check: str = "module") -> dict[str, str]:
    """The command's environment: sanitizer options, and for Python the preload."""
    env = dict(os.environ)
    for variable in ("LD_PRELOAD", "ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS",
                     "TSAN_OPTIONS"):
        env.pop(variable, None)
    # Read by tests that must behave differently under a checker (for instance to
    # skip work that the checker makes too slow), and by the leak_attribution plugin.
    env["MICROCRAD_MEMCHECK"] = tool
    env["MICROCRAD_MEMCHECK_DIR"] = str(log_dir)

    # exitcode=0 with abort_on_error=1: an error still kills the command (SIGABRT),
    # but a leak report at exit no longer replaces the command's exit status, so a
    # failing test run stays failing and a third-party leak does not fail a passing
    # run by itself. Leaks are judged from the logs.
    #
    # intercept_tls_get_addr=0: up to gcc 13 (and LLVM 16) the runtime's __tls_get_addr
    # interceptor takes a dynamic TLS block whose address is 16 bytes past a page
    # boundary for one with a pre-2.25 glibc header, and reads the two words before it
    # as a range to scan; LeakSanitizer's tracer then crashes on that range ("Tracer
    # caught signal 11") and the runtime aborts. Whether a block lands there depends
    # on the malloc layout, so on the paths and environment: one machine never sees
    # it, another every run. Python loads many libraries with dynamic TLS (numpy,
    # PyTorch). microcrad's own thread-locals use the initial-exec model, so their
    # pointers are still scanned as static TLS.
    suppressions = SUPPRESSIONS / "lsan.supp"
    env["ASAN_OPTIONS"] = _options(
        log_path=log_dir / "asan", exitcode=0, abort_on_error=1, detect_leaks=1,
        halt_on_error=1, check_initialization_order=1,
        detect_stack_use_after_return=1, disable_coredump=1, intercept_tls_get_addr=0)
    env["LSAN_OPTIONS"] = _options(suppressions=suppressions, print_suppressions=0)
    # With gcc, UBSan in an ASan build is a separate runtime that ignores log_path:
    # its reports go to stderr, which memcheck copies into the log directory.
    env["UBSAN_OPTIONS"] = _options(
        log_path=log_dir / "ubsan", print_stacktrace=1, halt_on_error=1, abort_on_error=1,
        suppressions=SUPPRESSIONS / "ubsan.supp")
    env["TSAN_OPTIONS"] = _options(
        log_path=log_dir / "tsan", exitcode=0, halt_on_error=0, second_deadlock_stack=1,
        suppressions=SUPPRESSIONS / "tsan.supp")

    if command.python:
        env["PYTHONMALLOC"] = "malloc"  # pymalloc's arenas hide frees from every tool
        # When a sanitizer aborts the interpreter, faulthandler prints the Python
        # stack, and the verdict shows the Python line that made the bad call.
        env["PYTHONFAULTHANDLER"] = "1"
        env["MICROCRAD_LIB"] = str(build_dir(tool) / "libmicrocrad.so")
        if tool in ("asan", "tsan"):
            # libstdc++ too: the sanitizer's __cxa_throw interceptor looks the real
            # function up when the sanitizer starts, and python itself does not link
            # libstdc++; without it the first C++ exception in an extension module
            # (matplotlib's, say) stops the process with "CHECK failed ...
            # real___cxa_throw".
            runtime = _runtime("libasan.so" if tool == "asan" else "libtsan.so")
            env["LD_PRELOAD"] = f"{runtime} {_runtime('libstdc++.so')}"
        if command.pytest:
            env["MICROCRAD_LEAK_CHECK"] = leak_check
            # The plugin lives in tests/; put that folder first on the import path so
            # `-p leak_attribution` finds it before pytest collects anything.
            paths = [str(ROOT / "tests")] + [p for p in env.get("PYTHONPATH", "").split(
                os.pathsep) if p]
            env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def valgrind_prefix(command: Command, log_dir: Path, track_origins: bool = False) -> list[str]:
    """Valgrind's command line for one run.

    There is no --error-exitcode: Valgrind would then replace the command's own exit
    status whenever it reports anything (even a third-party leak), and a failing
    command could look like a Valgrind finding and vice versa. The findings are read
    from the XML instead, where each one can be attributed.
    """
    prefix = [
        "valgrind",
        "--tool=memcheck",
        "--leak-check=full",
        "--show-leak-kinds=definite,indirect",
        "--errors-for-leak-kinds=definite,indirect",
        "--num-callers=40",
        "--gen-suppressions=all",
        "--xml=yes",
        f"--xml-file={log_dir / 'valgrind.%p.xml'}",
    ]
    if track_origins:
        # Says where uninitialised memory came from (about twice as slow).
        prefix.append("--track-origins=yes")
    if command.python:
        prefix.append(f"--suppressions={SUPPRESSIONS / 'valgrind-python.supp'}")
        # CPython 3.11 itself trips Valgrind's uninitialised-value checks (int objects
        # built by _PyLong_FromByteArray read an unset digit, and the "undefined"
        # small int it picks then taints the eval loop and the GC): hundreds of reports
        # per run, none of which a narrow suppression can cover. Under Python, the run
        # is for invalid accesses, bad frees and leaks; the C tests run under Valgrind
        # with every check on.
        prefix.append("--undef-value-errors=no")
    return prefix


# ---------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------


def _tee(source: IO[bytes], sinks: Sequence[IO[bytes]]) -> None:
    for chunk in iter(lambda: source.read1(65536), b""):  # type: ignore[attr-defined]
        for sink in sinks:
            sink.write(chunk)
            sink.flush()


def run(tool: str, command: Command, log_dir: Path, cwd: Optional[Path] = None,
        leak_check: str = "module", stdout: Optional[IO[bytes]] = None,
        track_origins: bool = False) -> int:
    """Runs one command with the tool; returns its exit status (-N for signal N).

    The command's stderr is passed through (or, with `stdout`, sent there too) and
    copied to stderr.txt in the log directory, where UBSan reports (which ignore
    log_path in ASan builds) are found.
    """
    env = environment(tool, command, log_dir, leak_check)
    full = (valgrind_prefix(command, log_dir, track_origins) if tool == "valgrind"
            else []) + command.argv
    with open(log_dir / "command.txt", "a") as file:
        file.write(shlex.join(full) + "\n")
    with open(log_dir / "stderr.txt", "ab") as copy:
        process = subprocess.Popen(full, env=env, cwd=cwd, stdout=stdout,
                                   stderr=subprocess.PIPE)
        assert process.stderr is not None
        copier = threading.Thread(target=_tee, args=(process.stderr,
                                                     [stdout or sys.stderr.buffer, copy]))
        copier.start()
        status = process.wait()
        copier.join()
    return status


