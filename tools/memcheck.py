#!/usr/bin/env python3
"""Run a command under AddressSanitizer, ThreadSanitizer or Valgrind, and judge it.

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
    tools/memcheck.py tsan -- build/tsan/tests/test_thread_stress

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
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import fcntl
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from pathlib import Path
from typing import IO, NoReturn, Optional

ROOT = Path(__file__).resolve().parent.parent
SUPPRESSIONS = ROOT / "tools" / "suppressions"
TOOLS = ("asan", "tsan", "valgrind")

# Where a finding counts as microcrad's own: the library file, or any source file
# of this repository (library, tests, examples, labs, fuzz harness). Paths below
# these folders are vendored or installed code, not ours.
_NOT_OURS_UNDER = (".venv", "build")

# Frames of the sanitizer runtimes themselves (interceptors, allocator) say
# nothing about who is at fault and are skipped when naming the culprit frame.
_RUNTIME_FRAME = re.compile(
    r"libsanitizer|__interceptor_|__asan_|__tsan_|__lsan_|__ubsan_|"
    r"vg_replace_malloc|/valgrind/|_start\b|__libc_start"
)

# The library's own frames: its shared object, or its sources (c/ in this tree).
_LIBRARY_SOURCES = str(ROOT / "c") + os.sep

# Absolute paths that belong to the system, an interpreter or installed packages: a
# frame there is neither the library nor the program under test. The interpreter
# running a Python command adds its own prefixes (see foreign_prefixes).
_FOREIGN_PATH = re.compile(r"^/(usr|lib|lib32|lib64|bin|sbin|opt|snap|nix)/|"
                           r"/(site|dist)-packages/|/\.venv/|/\.pyenv/|/ld-linux|"
                           r"/python-build\.|/Python-\d")  # CPython's sources (pyenv)
_FOREIGN_PREFIXES: set[str] = {sys.prefix, sys.base_prefix}
_ABSOLUTE_PATH = re.compile(r"(?:^|[\s(])(/[^\s:()+]+)")


def foreign_prefixes(*prefixes: str) -> None:
    """Adds installation prefixes (an interpreter's sys.prefix...) whose frames are
    third-party code, neither the library nor the program under test."""
    _FOREIGN_PREFIXES.update(p.rstrip(os.sep) for p in prefixes if p)


def frame_owner(frame: str) -> str:
    """Who a stack frame belongs to: "runtime" (the sanitizer or Valgrind itself),
    "library" (libmicrocrad), "program" (the code being checked: a source file or an
    executable of the user's, anywhere outside system and package folders, this
    repository's tests, examples and labs included) or "elsewhere" (libc, the
    interpreter and its extensions, third-party packages, frames with no path)."""
    if _RUNTIME_FRAME.search(frame):
        return "runtime"
    if "libmicrocrad" in frame or _LIBRARY_SOURCES in frame:
        return "library"
    match = _ABSOLUTE_PATH.search(frame)
    if match is None:
        return "elsewhere"  # relative paths come from prebuilt code (CPython's sources)
    path = match.group(1)
    if path.startswith(str(ROOT) + os.sep):
        # This repository: its tests, examples and labs are programs; its .venv is not.
        return "elsewhere" if _is_vendored(path) else "program"
    if _FOREIGN_PATH.search(path) or any(
            path.startswith(prefix + os.sep) for prefix in _FOREIGN_PREFIXES):
        return "elsewhere"
    return "program"


def _is_vendored(path: str) -> bool:
    relative = path[len(str(ROOT)) + 1:]
    return relative.startswith(".venv" + os.sep)


def _is_ours(location: str) -> bool:
    """Whether a frame's text (function, file, module) points into microcrad."""
    if "libmicrocrad" in location:
        return True
    root = str(ROOT) + os.sep
    index = location.find(root)
    if index < 0:
        return False
    relative = location[index + len(root):]
    return not relative.startswith(tuple(d + os.sep for d in _NOT_OURS_UNDER))


def die(message: str) -> NoReturn:
    """Stops with exit status 2: memcheck itself could not do its job."""
    print(f"memcheck: {message}", file=sys.stderr)
    raise SystemExit(2)


# ---------------------------------------------------------------------------------
# Findings
# ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Finding:
    """One error or leak found in a report."""

    tool: str  # "asan", "lsan", "ubsan", "tsan" or "valgrind"
    kind: str  # e.g. "heap-use-after-free", "leak", "data race", "InvalidRead"
    headline: str  # the report's own one-line description
    stacks: list[list[str]]  # each stack is a list of frames ("func file:line (module)")
    report: str  # the raw text of the report
    log: str  # the file it came from
    # From tests/leak_attribution.py: the tests that made this leak, when known...
    tests: list[str] = dataclasses.field(default_factory=list)
    # ... or else the test files during whose tests it appeared.
    suspects: list[str] = dataclasses.field(default_factory=list)
    # A leak that appeared only while a pytest process shut down (see
    # tests/leak_attribution.py, final_check): reported, but not counted as ours.
    at_shutdown: bool = False
    # For a Python program: the innermost Python line running when the error stopped
    # the process (from faulthandler's traceback), e.g. 'File "lab.py", line 30 in main'.
    python_line: str = ""

    @property
    def is_leak(self) -> bool:
        return self.tool == "lsan" or self.kind.startswith("Leak_")

    @property
    def in_microcrad(self) -> bool:
        """Whether a stack frame of the report is in microcrad."""
        return any(_is_ours(frame) for stack in self.stacks for frame in stack)

    @property
    def in_program(self) -> bool:
        """Whether a stack frame of the report is in the program being checked."""
        return bool(self.python_line) or any(
            frame_owner(frame) == "program" for stack in self.stacks for frame in stack)

    @property
    def in_library(self) -> bool:
        return any(frame_owner(frame) == "library" for stack in self.stacks for frame in stack)

    @property
    def ours(self) -> bool:
        """Whether the finding counts against the run: a frame of it is in the library
        or in the program being checked."""
        return (self.in_microcrad or self.in_program or self.in_library) and not self.at_shutdown

    @property
    def owner(self) -> str:
        """Whom the verdict blames: "program" when the report reaches the program's
        own code (the library only carried out what the program asked for),
        "microcrad" when only library frames are involved, "at shutdown" or
        "elsewhere" when it does not count."""
        if self.at_shutdown:
            return "at shutdown"
        if self.in_program:
            return "program"
        if self.in_library or self.in_microcrad:
            return "microcrad"
        return "elsewhere"

    def signature(self) -> tuple[str, str, tuple[str, ...]]:
        """Identity across repeated reports of the same problem.

        LeakSanitizer reports every leak again at each check (the plugin checks after
        every test, and once more at exit), with counts that may have grown, so a
        leak is identified by its kind and allocation stack, not by its byte count.
        """
        first = tuple(self.stacks[0]) if self.stacks else (self.headline,)
        kind = self.headline.split(" ", 1)[0] if self.tool == "lsan" else self.kind
        return (self.tool, kind, first)

    def culprit(self) -> str:
        """The frame to show: the first one of the first stack outside the sanitizer
        runtime and outside the library (the program's call into the library, or its
        own faulty line), else the first outside the runtime."""
        frames = [f for stack in self.stacks[:1] for f in stack]
        for frame in frames:
            if frame_owner(frame) == "program":
                return frame
        if self.python_line:
            return f"{self.python_line} (the Python line that called the library)"
        for frame in frames:
            if frame_owner(frame) not in ("runtime", "library"):
                return frame
        for frame in frames:
            if frame_owner(frame) != "runtime":
                return frame
        return frames[0] if frames else "(no stack)"

    def to_json(self) -> dict[str, object]:
        return {
            "tool": self.tool,
            "kind": self.kind,
            "headline": self.headline,
            "ours": self.ours,
            "owner": self.owner,
            "python_line": self.python_line,
            "at_shutdown": self.at_shutdown,
            "culprit": self.culprit(),
            "frames": [frame for stack in self.stacks for frame in stack],
            "tests": self.tests,
            "suspects": self.suspects,
            "log": self.log,
        }


# ---------------------------------------------------------------------------------
# Parsing sanitizer text reports (ASan, LSan, UBSan, TSan)
# ---------------------------------------------------------------------------------

_ASAN_ERROR = re.compile(r"==\d+==ERROR: AddressSanitizer: (?:attempting )?([\w-]+)(.*)$")
_ASAN_ACCESS = re.compile(r"^((?:READ|WRITE) of size \d+) at ")
# The sanitizer runtime itself gave up (an internal consistency check failed).
_RUNTIME_CHECK = re.compile(r"(AddressSanitizer|ThreadSanitizer|LeakSanitizer): CHECK failed: (.*)$")
_LSAN_START = re.compile(r"==\d+==ERROR: LeakSanitizer: detected memory leaks")
_LEAK_BLOCK = re.compile(
    r"^(Direct|Indirect) leak of (\d+) byte\(s\) in (\d+) object\(s\) allocated from:"
)
_TSAN_WARNING = re.compile(r"WARNING: ThreadSanitizer: (.+?)(?: \(pid=\d+\))?\s*$")
_TSAN_ACCESS = re.compile(r"^\s+(.+? of size \d+) at 0x[0-9a-f]+ by (.+?):?$")
_UBSAN_ERROR = re.compile(r"^(\S+?:\d+(?::\d+)?): runtime error: (.*)$")
_FRAME = re.compile(r"^\s+#\d+\s+(?:0x[0-9a-fA-F]+\s+)?(?:in\s+)?(.*\S)\s*$")
_SUMMARY = re.compile(r"^SUMMARY: (\w+Sanitizer): ")
_PSEUDO_MODULE_OFFSET = re.compile(r"(?<=\])\+0x[0-9a-f]+\)$")


def parse_sanitizer_text(text: str, log: str) -> list[Finding]:
    """Splits the text of sanitizer logs into findings, one per error or leak block.

    Frames are kept as "function file:line" or "(module+offset)" strings; a stack
    ends at the first line that is not a frame, so the access, free and allocation
    stacks of an ASan report become separate stacks.
    """
    findings: list[Finding] = []
    current: Optional[Finding] = None
    lines: list[str] = []
    in_stack = False
    in_leak_report = False

    def finish() -> None:
        nonlocal current, lines
        if current is not None:
            current.report = "\n".join(lines).rstrip() + "\n"
            findings.append(current)
        current, lines = None, []

    def start(finding: Finding, line: str) -> None:
        nonlocal current, lines, in_stack
        finish()
        current, lines, in_stack = finding, [line], False

    for line in text.splitlines():
        if match := _ASAN_ERROR.search(line):
            in_leak_report = False
            kind, detail = match.group(1), match.group(2)
            # "on address 0x... at pc 0x... bp ... sp ..." says nothing to a reader;
            # the access line that follows ("READ of size 4 ...") replaces it.
            headline = kind + re.sub(r" at pc .*| on (unknown )?address .*", "", detail)
            start(Finding("asan", kind, headline, [], "", log), line)
        elif current is not None and current.tool == "asan" and not current.stacks and (
                match := _ASAN_ACCESS.match(line)):
            current.headline = match.group(1)
            lines.append(line)
        elif match := _RUNTIME_CHECK.search(line):
            in_leak_report = False
            tool = "tsan" if match.group(1) == "ThreadSanitizer" else "asan"
            start(Finding(tool, "runtime-check-failed", match.group(2), [], "", log), line)
        elif _LSAN_START.search(line):
            finish()
            in_leak_report = True
        elif in_leak_report and (match := _LEAK_BLOCK.match(line)):
            start(Finding("lsan", "leak", line.rstrip(":").replace(" allocated from", ""),
                          [], "", log), line)
        elif match := _TSAN_WARNING.search(line):
            in_leak_report = False
            start(Finding("tsan", match.group(1), match.group(1), [], "", log), line)
        elif current is not None and current.tool == "tsan" and not current.stacks and (
                match := _TSAN_ACCESS.match(line)):
            # "Read of size 8 at 0x... by thread T2:" -> "Read of size 8 by thread T2"
            current.headline = f"{match.group(1)} by {match.group(2)}"
            lines.append(line)
        elif match := _UBSAN_ERROR.match(line):
            in_leak_report = False
            # Without print_stacktrace the location in the message is all there is.
            start(Finding("ubsan", "undefined-behavior", line.strip(), [[match.group(1)]],
                          "", log), line)
        elif current is not None:
            lines.append(line)
            frame = _FRAME.match(line)
            if frame:
                if not in_stack:
                    current.stacks.append([])
                    in_stack = True
                # "([stack]+0x1c76f)": the offset changes from run to run.
                current.stacks[-1].append(_PSEUDO_MODULE_OFFSET.sub(")", frame.group(1)))
            else:
                in_stack = False
                if _SUMMARY.match(line) or line.startswith("=" * 10):
                    if current.tool != "lsan":
                        finish()
                    elif _SUMMARY.match(line):
                        finish()
                        in_leak_report = False
    finish()
    return findings


# ---------------------------------------------------------------------------------
# Parsing Valgrind's XML
# ---------------------------------------------------------------------------------


def _valgrind_frame(frame: ElementTree.Element) -> str:
    function = frame.findtext("fn") or "???"
    directory, file, line = frame.findtext("dir"), frame.findtext("file"), frame.findtext("line")
    if file:
        path = os.path.join(directory, file) if directory else file
        return f"{function} {path}:{line}"
    return f"{function} ({frame.findtext('obj') or '?'})"


def parse_valgrind_xml(path: Path) -> list[Finding]:
    """The <error> elements of one Valgrind XML file as findings."""
    try:
        tree = ElementTree.parse(path)
    except ElementTree.ParseError:
        # A process killed mid-run leaves its XML unterminated; close it and retry.
        text = path.read_text(errors="replace")
        try:
            tree = ElementTree.ElementTree(ElementTree.fromstring(text + "</valgrindoutput>\n"))
        except ElementTree.ParseError:
            return [Finding("valgrind", "unreadable-log", f"cannot parse {path}", [], "",
                            str(path))]
    findings = []
    for error in tree.getroot().iter("error"):
        kind = error.findtext("kind") or "?"
        headline = error.findtext("what") or error.findtext("xwhat/text") or kind
        stacks = [[_valgrind_frame(f) for f in stack.iter("frame")]
                  for stack in error.iter("stack")]
        raw = [headline]
        for aux, stack in zip([None] + [a.text for a in error.iter("auxwhat")], stacks):
            if aux:
                raw.append(aux)
            raw.extend("    " + frame for frame in stack)
        findings.append(Finding("valgrind", kind, headline, stacks, "\n".join(raw) + "\n",
                                str(path)))
    return findings


def valgrind_suppressions(path: Path) -> list[str]:
    """The suppressions Valgrind proposes (--gen-suppressions=all) in one XML file."""
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError:
        return []
    return [raw.text for raw in root.iter("rawtext") if raw.text]


# ---------------------------------------------------------------------------------
# Collecting a run's findings
# ---------------------------------------------------------------------------------


_FAULTHANDLER_THREAD = re.compile(r"^(Current thread|Thread) 0x[0-9a-f]+ .*most recent call first")
_FAULTHANDLER_FRAME = re.compile(r'^\s+File "(.+)", line (\d+) in (\S+)')


def python_line_at_fault(log_dir: Path) -> str:
    """The Python line that was running when a sanitizer error stopped a Python
    program: the innermost frame of the current thread in the traceback that
    faulthandler (PYTHONFAULTHANDLER=1, set by memcheck) writes to stderr when the
    sanitizer aborts the process. "" when there is none."""
    stderr = log_dir / "stderr.txt"
    if not stderr.is_file():
        return ""
    in_current = False
    for line in stderr.read_text(errors="replace").splitlines():
        if match := _FAULTHANDLER_THREAD.match(line):
            in_current = match.group(1) == "Current thread"
        elif in_current and (match := _FAULTHANDLER_FRAME.match(line)):
            return f"{match.group(1)}:{match.group(2)} in {match.group(3)}"
    return ""


def collect_findings(log_dir: Path) -> list[Finding]:
    """Every finding in a run directory, duplicates merged, with tests attributed."""
    findings: list[Finding] = []
    for path in sorted(log_dir.iterdir()):
        if path.name.startswith(("asan.", "ubsan.", "tsan.")) or path.name == "stderr.txt":
            findings += parse_sanitizer_text(path.read_text(errors="replace"), str(path))
        elif path.name.startswith("valgrind.") and path.suffix == ".xml":
            findings += parse_valgrind_xml(path)

    python_line = python_line_at_fault(log_dir)
    if python_line:
        for finding in findings:
            if not finding.is_leak:
                finding.python_line = python_line

    merged: dict[tuple[str, str, tuple[str, ...]], Finding] = {}
    for finding in findings:
        key = finding.signature()
        if key not in merged:
            merged[key] = finding
        elif finding.is_leak:
            # Later reports of a leak carry the counts as they grew: keep the last.
            merged[key].headline = finding.headline

    attribute(merged, log_dir)
    return list(merged.values())


def attribute(findings: dict[tuple[str, str, tuple[str, ...]], Finding], log_dir: Path) -> int:
    """Adds the leak_attribution plugin's records in log_dir to the matching findings.

    Returns how many records were exact (pinned on one test).
    """
    exact = 0
    for path in sorted(log_dir.glob("leak-attribution.*.jsonl")):
        pid = path.name.split(".")[1]
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            if entry.get("final"):
                # The plugin checked once all tests were done: any leak of this process
                # it has no record of appeared during interpreter shutdown.
                for candidate in findings.values():
                    if (candidate.is_leak and candidate.in_microcrad
                            and Path(candidate.log).name.endswith("." + pid)
                            and not candidate.tests and not candidate.suspects):
                        candidate.at_shutdown = True
                continue
            finding = findings.get((entry["tool"], entry["kind"], tuple(entry["stack"])))
            if finding is None:
                continue
            if entry["exact"]:
                exact += 1
                finding.tests += [t for t in entry["tests"] if t not in finding.tests]
            elif entry["module"] not in finding.suspects:
                finding.suspects.append(entry["module"])
    return exact


# ---------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------


def build_dir(tool: str) -> Path:
    """The preset's binary directory (CMakePresets.json: build/<preset>)."""
    return ROOT / "build" / tool


def build(tool: str, targets: Sequence[str] = ()) -> None:
    """Configures the preset if it has never been configured, then builds it (all of
    it, or only `targets`).

    A lock file serialises concurrent runs (parallel test workers, two stages) on the
    same build directory; the build itself is incremental and quick when current.
    """
    directory = build_dir(tool)
    directory.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
    for variable in ("LD_PRELOAD", "ASAN_OPTIONS", "TSAN_OPTIONS", "PYTHONMALLOC"):
        env.pop(variable, None)  # the compiler must not run under a sanitizer
    with open(directory.parent / f".memcheck-{tool}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        steps = []
        if not (directory / "CMakeCache.txt").is_file():
            steps.append(["cmake", "--preset", tool])
        steps.append(["cmake", "--build", "--preset", tool]
                     + [arg for target in targets for arg in ("--target", target)])
        for step in steps:
            result = subprocess.run(step, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            if result.returncode != 0:
                sys.stdout.write(result.stdout)
                die(f"'{shlex.join(step)}' failed (status {result.returncode})")


# ---------------------------------------------------------------------------------
# Preparing the command
# ---------------------------------------------------------------------------------

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
    suppressions = SUPPRESSIONS / "lsan.supp"
    env["ASAN_OPTIONS"] = _options(
        log_path=log_dir / "asan", exitcode=0, abort_on_error=1, detect_leaks=1,
        halt_on_error=1, check_initialization_order=1,
        detect_stack_use_after_return=1, disable_coredump=1)
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


# ---------------------------------------------------------------------------------
# The verdict
# ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Verdict:
    tool: str
    statuses: list[int]
    findings: list[Finding]
    log_dir: Path

    @property
    def ours(self) -> list[Finding]:
        return [f for f in self.findings if f.ours]

    @property
    def command_failed(self) -> bool:
        return any(status != 0 for status in self.statuses)

    @property
    def passed(self) -> bool:
        return not self.command_failed and not self.ours

    def to_json(self) -> dict[str, object]:
        return {
            "tool": self.tool,
            "passed": self.passed,
            "statuses": self.statuses,
            "log_dir": str(self.log_dir),
            "findings": [f.to_json() for f in self.findings],
        }


def judge(tool: str, statuses: list[int], log_dir: Path) -> Verdict:
    return Verdict(tool, statuses, collect_findings(log_dir), log_dir)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def print_verdict(verdict: Verdict, programs: Sequence[str], out: IO[str],
                  full_reports: int = 3, elsewhere_lines: int = 8) -> None:
    """A short summary, then the full text of the first few reports against microcrad."""
    errors = [f for f in verdict.findings if not f.is_leak]
    leaks = [f for f in verdict.findings if f.is_leak]
    ours = verdict.ours
    elsewhere = [f for f in verdict.findings if not f.ours]
    print(f"\n===== memcheck {verdict.tool}: verdict =====", file=out)
    for program, status in zip(programs, verdict.statuses):
        how = f"killed by signal {-status}" if status < 0 else f"exit status {status}"
        print(f"command {how}: {program}", file=out)
    in_program = [f for f in ours if f.owner == "program"]
    print(f"{_plural(len(errors), 'error')} and {_plural(len(leaks), 'leak')}: "
          f"{len(in_program)} in the program, {len(ours) - len(in_program)} in microcrad, "
          f"{len(elsewhere)} elsewhere", file=out)
    for finding in ours + elsewhere[:elsewhere_lines]:
        print(f"  [{finding.owner}] {finding.tool} {finding.kind}: {finding.headline}",
              file=out)
        print(f"      at {finding.culprit()}", file=out)
        if finding.python_line and finding.python_line not in finding.culprit():
            print(f"      Python line: {finding.python_line}", file=out)
        if not finding.ours:
            continue  # which test made a third party leak is of no interest here
        for test in finding.tests:
            print(f"      leaked by test {test}", file=out)
        if not finding.tests:
            for module in finding.suspects:
                print(f"      leaked during the tests of {module} (not pinned to one)",
                      file=out)
    if len(elsewhere) > elsewhere_lines:
        print(f"  ... and {len(elsewhere) - elsewhere_lines} more elsewhere", file=out)
    for finding in ours[:full_reports]:
        print(f"\n----- report from {finding.log} -----\n{finding.report}", end="", file=out)
    if len(ours) > full_reports:
        print(f"\n({len(ours) - full_reports} more reports in {verdict.log_dir})", file=out)
    if any(f.at_shutdown for f in elsewhere):
        print("\n[at shutdown]: nodes leaked only as the Python process exited, after the "
              "last test; objects alive at exit are not guaranteed to be finalized, so these "
              "do not fail the run", file=out)
    if elsewhere:
        supp = "valgrind-python.supp" if verdict.tool == "valgrind" else "lsan.supp"
        print(f"\nfindings elsewhere do not fail the run; if one is known noise, add a "
              f"narrow entry to tools/suppressions/{supp}", file=out)
        if verdict.tool == "valgrind":
            print(f"(Valgrind's proposed suppressions: {verdict.log_dir}/proposed.supp)",
                  file=out)
    if verdict.passed:
        print(f"memcheck {verdict.tool}: PASSED", file=out)
    else:
        reasons = []
        if verdict.command_failed:
            reasons.append("the command failed")
        if ours:
            reasons.append(f"{_plural(len(ours), 'finding')} in the program or microcrad")
        print(f"memcheck {verdict.tool}: FAILED ({', '.join(reasons)}); "
              f"logs in {verdict.log_dir}", file=out)


def pin_leaks(verdict: Verdict, command: Command) -> None:
    """Runs pytest again on the files whose tests leaked, checking after every test.

    A whole-suite run checks for leaks once per test file (a check after every test
    would cost more than the tests). When a leak of ours turns up there, this second
    run names the test: same interpreter and pytest, only the suspect files, and
    $MICROCRAD_LEAK_CHECK=test. Its records are added to the verdict's findings.
    """
    modules = sorted({m for f in verdict.ours if f.is_leak and not f.tests for m in f.suspects})
    if not modules or not command.pytest_prefix:
        return
    print(f"\nmemcheck: leaks in microcrad during the tests of {', '.join(modules)}; "
          f"running those files again with a leak check after every test", flush=True)
    pin_dir = verdict.log_dir / "pin"
    pin_dir.mkdir(exist_ok=True)
    with open(pin_dir / "output.txt", "wb") as output:
        run(verdict.tool, Command(command.pytest_prefix + ["-q", "-p", "no:cacheprovider",
                                                           *modules],
                                  python=True, pytest=True),
            pin_dir, leak_check="test", stdout=output)
    pinned_findings = {f.signature(): f for f in verdict.findings}
    if attribute(pinned_findings, pin_dir) == 0:
        print(f"memcheck: the second run pinned nothing (its output: {pin_dir}/output.txt)")


def _write_proposed_suppressions(log_dir: Path) -> None:
    proposals: list[str] = []
    for path in sorted(log_dir.glob("valgrind.*.xml")):
        proposals += valgrind_suppressions(path)
    if proposals:
        (log_dir / "proposed.supp").write_text("\n".join(proposals) + "\n")


# ---------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------


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
    if prepared is not None and prepared.pytest and args.tool == "asan":
        pin_leaks(verdict, prepared)
    sys.stderr.flush()
    print_verdict(verdict, programs, sys.stdout)
    if args.json:
        args.json.write_text(json.dumps(verdict.to_json(), indent=2) + "\n")
    if verdict.passed and not verdict.findings and not keep_logs:
        shutil.rmtree(log_dir, ignore_errors=True)
    return 0 if verdict.passed else 1


if __name__ == "__main__":
    sys.exit(main())
