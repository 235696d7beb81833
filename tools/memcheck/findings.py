"""Findings: the errors and leaks in sanitizer logs and Valgrind's XML, parsed,
merged and attributed."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Optional

from .attribution import _is_ours, frame_owner

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
        or in the program being checked (never for the runtime's own failure)."""
        if self.kind == RUNTIME_FAILED:
            return False
        return (self.in_microcrad or self.in_program or self.in_library) and not self.at_shutdown

    @property
    def owner(self) -> str:
        """Whom the verdict blames: "program" when the report reaches the program's
        own code (the library only carried out what the program asked for),
        "microcrad" when only library frames are involved, "at shutdown" or
        "elsewhere" when it does not count."""
        if self.at_shutdown:
            return "at shutdown"
        if self.kind == RUNTIME_FAILED:
            return "the sanitizer"
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

# The kind of a finding that says the sanitizer runtime itself failed, not the program.
RUNTIME_FAILED = "runtime-failed"

_ASAN_ERROR = re.compile(r"==\d+==ERROR: AddressSanitizer: (?:attempting )?([\w-]+)(.*)$")
_ASAN_ACCESS = re.compile(r"^((?:READ|WRITE) of size \d+) at ")
# The sanitizer runtime itself gave up (an internal consistency check failed).
_RUNTIME_CHECK = re.compile(r"(AddressSanitizer|ThreadSanitizer|LeakSanitizer): CHECK failed: (.*)$")
# The runtime could not go on: LeakSanitizer's tracer thread, which stops every other
# thread and scans memory, crashed ("Tracer caught signal 11: ...", printed first) or
# could not stop the threads. Nothing is known about the program then.
_RUNTIME_FATAL = re.compile(r"==\d+==(\w+Sanitizer) has encountered a fatal error")
_TRACER_SIGNAL = re.compile(r"^Tracer caught signal \d+.*$")
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
    tracer_signal = ""  # the "Tracer caught signal" line before a fatal error

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
        elif match := _TRACER_SIGNAL.match(line):
            tracer_signal = match.group(0).strip()
        elif match := _RUNTIME_FATAL.search(line):
            in_leak_report = False
            headline = f"{match.group(1)} has encountered a fatal error"
            if tracer_signal:
                headline += f" ({tracer_signal})"
            tool = "tsan" if match.group(1) == "ThreadSanitizer" else "asan"
            start(Finding(tool, RUNTIME_FAILED, headline, [], "", log), line)
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
            if not finding.is_leak and finding.kind != RUNTIME_FAILED:
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


