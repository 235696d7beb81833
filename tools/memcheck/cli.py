"""The command line: tools/memcheck.py {asan,tsan,valgrind} [options] -- COMMAND."""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from .build import build, build_dir
from .launch import prepare_command, run
from .paths import TOOLS, die
from .verdict import _write_proposed_suppressions, judge, pin_leaks, print_verdict

def _check_tool_installed(tool: str) -> None:
    if tool == "valgrind" and shutil.which("valgrind") is None:
        die("valgrind is not installed (apt-get install valgrind)")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="memcheck.py",
        description="Run a command under ASan+UBSan, TSan or Valgrind and judge the reports.",
        usage="%(prog)s {asan,tsan,valgrind} [options] -- COMMAND [ARG...]",
        epilog="Everything after -- is the command (with --each: the programs to run).")
    parser.add_argument("tool", choices=TOOLS)
    parser.add_argument("--build-only", action="store_true",
                        help="configure and build the preset, run nothing")
    parser.add_argument("--no-build", action="store_true",
                        help="use the preset's build directory as it is")
    parser.add_argument("--target", action="append", default=[],
                        help="build only this CMake target (repeatable; default: all)")
    parser.add_argument("--each", action="store_true",
                        help="every word after -- is a separate program, run without "
                             "arguments in its own directory")
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2,
                        help="with --each: how many programs run at once")
    parser.add_argument("--log-dir", type=Path,
                        help="where reports go (default: a fresh temporary directory, "
                             "removed after a clean run)")
    parser.add_argument("--json", type=Path, help="also write the verdict as JSON here")
    parser.add_argument("--leak-check", choices=("module", "test", "off"), default="module",
                        help="for pytest under asan: check for leaks after every test file "
                             "(default; files with a leak are then re-run to pin it on "
                             "one test), after every test, or only at exit")
    parser.add_argument("--track-origins", action="store_true",
                        help="valgrind: say where uninitialised values came from "
                             "(--track-origins=yes; about twice as slow)")
    # Everything after the first `--` is the command, untouched by option parsing.
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    command = argv[split + 1:]
    if not command and not args.build_only:
        parser.error("no command given (put it after --)")

    _check_tool_installed(args.tool)
    if not args.no_build:
        build(args.tool, args.target)
    if args.build_only:
        print(f"memcheck: {build_dir(args.tool)} is built")
        return 0

    keep_logs = args.log_dir is not None
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix=f"memcheck-{args.tool}-"))
    log_dir.mkdir(parents=True, exist_ok=True)

    if args.each:
        programs = [os.path.abspath(p) for p in command]
        with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
            statuses = list(pool.map(
                lambda p: run(args.tool, prepare_command([p]), log_dir, cwd=Path(p).parent,
                              track_origins=args.track_origins),
                programs))
        prepared = None
    else:
        programs = [shlex.join(command)]
        prepared = prepare_command(command)
        statuses = [run(args.tool, prepared, log_dir, leak_check=args.leak_check,
                        track_origins=args.track_origins)]

    if args.tool == "valgrind":
        _write_proposed_suppressions(log_dir)
    verdict = judge(args.tool, statuses, log_dir)
    retried = prepared is not None and verdict.sanitizer_gave_up
    if retried:
        # LeakSanitizer's check stops every thread from a tracer thread and scans
        # memory; now and then the tracer itself crashes ("Tracer caught signal 11")
        # and the runtime aborts the process, whatever the program did. That says
        # nothing about the command, so it runs once more; a second failure fails.
        first = verdict.runtime_failures[0]
        rerun_dir = log_dir / "rerun"
        rerun_dir.mkdir()
        print(f"\nmemcheck: the command was stopped by the sanitizer runtime, not by a "
              f"finding: {first.headline} (in {first.log}).\nmemcheck: running it once "
              f"more, with its reports in {rerun_dir}", flush=True)
        statuses = [run(args.tool, prepared, rerun_dir, leak_check=args.leak_check,
                        track_origins=args.track_origins)]
        verdict = judge(args.tool, statuses, rerun_dir)
    if prepared is not None and prepared.pytest and args.tool == "asan":
        pin_leaks(verdict, prepared)
    sys.stderr.flush()
    print_verdict(verdict, programs, sys.stdout)
    if args.json:
        args.json.write_text(json.dumps(verdict.to_json(), indent=2) + "\n")
    if retried:
        print(f"memcheck: the first run's reports, with the sanitizer's failure, are kept "
              f"in {log_dir}")
    if verdict.passed and not verdict.findings and not keep_logs and not retried:
        shutil.rmtree(log_dir, ignore_errors=True)
    return 0 if verdict.passed else 1

