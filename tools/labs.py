#!/usr/bin/env python3
"""The memory-safety labs as exercises: run a lab, fix your copy, check it.

Usage:
    tools/labs.py list                 the labs, their bug classes and tools
    tools/labs.py run N                build lab N as shipped, run it under its tools,
                                       and explain how to read the reports
    tools/labs.py start N [--force]    copy lab N into labs-workspace/ to edit
    tools/labs.py check N              build your copy and run it under the lab's tools
    tools/labs.py hint N               the next hint (each call shows one more)
    tools/labs.py solution N           the diff between lab N and its fixed twin
    tools/labs.py doctor               which of the known tool problems apply here

`check N` passes when three things hold: the tools report nothing, the program's
output is right, and no node is alive at exit; otherwise it says which of them is
still wrong. Your copy is built by the lab's CMake presets (asan, valgrind, tsan,
debug) through tools/memcheck.py, without -Werror.

The labs come from one table, examples/labs/labs.toml. The workspace is
labs-workspace/ in the repository (git-ignored); --workspace DIR or
$MICROCRAD_LABS_WORKSPACE chooses another.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
LABS_DIR = ROOT / "examples" / "labs"
TABLE = LABS_DIR / "labs.toml"
MEMCHECK = ROOT / "tools" / "memcheck.py"
PYTHON_RUNNER = LABS_DIR / "support" / "run_python_lab.py"
DEFAULT_WORKSPACE = ROOT / "labs-workspace"

# The CMake preset each checker runs on; "canary" is the library's own check, in a
# normal (debug) build.
PRESETS = {"asan": "asan", "valgrind": "valgrind", "tsan": "tsan", "canary": "debug"}
TOOL_NAMES = {
    "asan": "AddressSanitizer + LeakSanitizer",
    "valgrind": "Valgrind",
    "tsan": "ThreadSanitizer",
    "canary": "the magic canary (normal build)",
}
# What the library prints on stderr when it refuses a call (a released or foreign
# node), and what the Python package raises then.
_LIBRARY_COMPLAINT = re.compile(r"^(?:microcrad: |\S*MicrocradError: ).*$", re.MULTILINE)
_VERDICT_MARK = "\n===== memcheck "


def _load_memcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("microcrad_memcheck", MEMCHECK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


memcheck = _load_memcheck()


# ---------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Lab:
    number: int
    name: str
    language: str
    bug: str
    tools: tuple[str, ...]
    catches: dict[str, str]
    output: tuple[str, ...]
    hints: tuple[str, ...]

    @property
    def suffix(self) -> str:
        return ".py" if self.language == "python" else ".c"

    @property
    def file_name(self) -> str:
        return self.name + self.suffix

    @property
    def source(self) -> Path:
        return LABS_DIR / self.file_name

    @property
    def fixed(self) -> Path:
        return LABS_DIR / (self.name + "_fixed" + self.suffix)


def _read_toml(path: Path) -> dict[str, object]:
    try:
        import tomllib  # Python 3.11+
    except ImportError:  # pragma: no cover - older Pythons
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            raise SystemExit("labs: reading examples/labs/labs.toml needs Python 3.11 or "
                             "later (or `pip install tomli`)") from None
    with open(path, "rb") as file:
        return tomllib.load(file)


def load_labs(table: Path = TABLE) -> dict[int, Lab]:
    """The labs of the table by number; a malformed entry is an error that says so."""
    entries = _read_toml(table).get("lab", [])
    assert isinstance(entries, list)
    labs: dict[int, Lab] = {}
    for entry in entries:
        try:
            lab = Lab(int(entry["number"]), entry["name"], entry.get("language", "c"),
                      entry["bug"], tuple(entry["tools"]), dict(entry.get("catches", {})),
                      tuple(entry.get("output", ())), tuple(entry.get("hints", ())))
        except KeyError as missing:
            raise SystemExit(f"labs: {table}: a [[lab]] entry has no {missing}") from None
        unknown = [t for t in lab.tools if t not in PRESETS]
        if unknown or lab.language not in ("c", "python") or lab.number in labs:
            raise SystemExit(f"labs: {table}: bad entry for lab {lab.number}")
        labs[lab.number] = lab
    return dict(sorted(labs.items()))


def get_lab(number: int) -> Lab:
    labs = load_labs()
    if number not in labs:
        raise SystemExit(f"labs: there is no lab {number} (labs: "
                         f"{', '.join(str(n) for n in labs)})")
    return labs[number]


# ---------------------------------------------------------------------------------
# Building and running
# ---------------------------------------------------------------------------------


def python_env(preset: str) -> dict[str, str]:
    """The environment of a Python lab: this repository's microcrad package, loading
    the preset's build of the library (memcheck sets MICROCRAD_LIB itself under a
    sanitizer; it is set here for the canary)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["MICROCRAD_LIB"] = str(memcheck.build_dir(preset) / "libmicrocrad.so")
    return env


def build_shipped(lab: Lab, preset: str) -> None:
    """Builds the library and, for a C lab, both shipped programs in a preset."""
    targets = ["microcrad"] + ([lab.name, lab.name + "_fixed"] if lab.language == "c" else [])
    memcheck.build(preset, targets)


def _copy_for_build(source: Path, destination: Path) -> None:
    """Copies the student's file into the build tree, with a #line directive so that
    compiler messages, debug information and so every stack frame name the student's
    own file. Rewritten only when it changed, so an unchanged copy is not rebuilt."""
    text = f'#line 1 "{source.resolve()}"\n' + source.read_text()
    if not destination.is_file() or destination.read_text() != text:
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(text)


class BuildFailed(Exception):
    """The student's copy did not compile (the compiler's messages are in args[0])."""


def build_student(lab: Lab, copy: Path, preset: str) -> Path:
    """Builds the student's copy of a C lab in a preset; returns the program."""
    directory = memcheck.build_dir(preset)
    _copy_for_build(copy, directory / "labs-workspace" / lab.file_name)
    # First the library: configures the preset if needed, and regenerates the build
    # system when the list of labs changed (before that, make does not know the
    # student's target). Both under memcheck's build lock.
    memcheck.build(preset, ["microcrad"])
    try:
        output = memcheck.build(preset, ["student_" + lab.name])
    except SystemExit:  # memcheck has printed the compiler's messages
        raise BuildFailed("") from None
    warnings = [line for line in output.splitlines() if "warning:" in line]
    if warnings:  # shown, not fatal: scratch code is allowed to be untidy
        print("\n".join(["compiler warnings (not errors for your copy):"] + warnings))
    return directory / "labs-workspace" / lab.name


@dataclasses.dataclass
class Run:
    """One run of a lab program under one checker."""

    tool: str
    status: int  # the program's exit status (-N: killed by signal N)
    stdout: str  # what the program printed
    stderr: str  # the program's stderr (and, under memcheck, its verdict)
    findings: list[dict[str, object]]  # the checker's findings against the program
    live_values: Optional[int]  # nodes alive at exit; None if the program never got there
    report: str  # everything to show the user


def _read_report(path: Path) -> Optional[int]:
    if not path.is_file():
        return None
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" ")
        if key == "live_values":
            return int(value)
    return None


def run_program(lab: Lab, tool: str, program: Path,
                extra_env: Optional[dict[str, str]] = None,
                log_dir: Optional[Path] = None) -> Run:
    """Runs one lab program (C binary or Python file) under one checker."""
    scratch = Path(tempfile.mkdtemp(prefix=f"labs-{lab.number}-{tool}-"))
    if log_dir is not None:  # kept after the run: the verdict points there
        shutil.rmtree(log_dir, ignore_errors=True)
        log_dir.mkdir(parents=True)
    report_file = scratch / "report.txt"
    preset = PRESETS[tool]
    env = python_env(preset) if lab.language == "python" else dict(os.environ)
    env["MICROCRAD_LABS_REPORT"] = str(report_file)
    env.update(extra_env or {})
    argv = ([sys.executable, str(PYTHON_RUNNER), str(program)]
            if lab.language == "python" else [str(program)])
    try:
        if tool == "canary":
            result = subprocess.run(argv, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, timeout=300)
            complaints = _LIBRARY_COMPLAINT.findall(result.stderr)
            findings: list[dict[str, object]] = [
                {"tool": "canary", "kind": "refused call", "headline": line, "owner": "program",
                 "culprit": "", "python_line": ""} for line in complaints]
            report = result.stdout + result.stderr
            return Run(tool, result.returncode, result.stdout, result.stderr, findings,
                       _read_report(report_file), report)
        verdict_file = scratch / "verdict.json"
        options = ["--no-build", "--json", str(verdict_file),
                   "--log-dir", str(log_dir or scratch / "logs")]
        if tool == "valgrind" and lab.language == "c":
            options.append("--track-origins")
        result = subprocess.run([sys.executable, str(MEMCHECK), tool, *options, "--", *argv],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, timeout=600)
        stdout, _, verdict_text = result.stdout.partition(_VERDICT_MARK)
        if not verdict_file.is_file():
            raise SystemExit(f"labs: tools/memcheck.py could not run the lab:\n"
                             f"{result.stdout}{result.stderr}")
        verdict = json.loads(verdict_file.read_text())
        status = verdict["statuses"][0]
        findings = [f for f in verdict["findings"] if f["ours"]]
        report = result.stdout + result.stderr
        return Run(tool, status, stdout, result.stderr, findings, _read_report(report_file),
                   report)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# ---------------------------------------------------------------------------------
# Judging a run
# ---------------------------------------------------------------------------------


def output_problem(lab: Lab, run: Run) -> Optional[str]:
    """What is wrong with the program's output, or None when it is right: the
    expected lines, in order, and exit status 0."""
    printed = [line.strip() for line in run.stdout.splitlines()]
    position = 0
    for expected in lab.output:
        try:
            position = printed.index(expected.strip(), position) + 1
        except ValueError:
            shown = "\n".join("      " + line for line in printed[-8:]) or "      (nothing)"
            return (f"the line '{expected}' is missing from its output; it printed:\n{shown}")
    if run.status != 0:
        how = (f"was killed by signal {-run.status}" if run.status < 0
               else f"exited with status {run.status}")
        return f"the program {how}"
    return None


def describe_finding(finding: dict[str, object]) -> str:
    text = f"{finding['tool']} {finding['kind']}: {finding['headline']}"
    if finding.get("culprit"):
        text += f"\n      at {finding['culprit']}"
    if finding.get("python_line"):
        text += f"\n      Python line: {finding['python_line']}"
    return text


@dataclasses.dataclass
class Judgement:
    tool: str
    tool_findings: list[str]
    output: Optional[str]
    live_values: Optional[int]

    @property
    def passed(self) -> bool:
        return not self.tool_findings and self.output is None and self.live_values == 0


def judge(lab: Lab, run: Run) -> Judgement:
    return Judgement(run.tool, [describe_finding(f) for f in run.findings],
                     output_problem(lab, run), run.live_values)


def print_judgements(lab: Lab, judgements: Sequence[Judgement]) -> bool:
    """The three conditions per tool; returns whether all hold."""
    all_passed = True
    for j in judgements:
        name = TOOL_NAMES[j.tool]
        print(f"\n--- lab {lab.number} under {name} ---")
        if j.tool_findings:
            print(f"  [ ] the tool reports nothing: it still reports {len(j.tool_findings)}:")
            for finding in j.tool_findings:
                print(textwrap.indent(finding, "      "))
        else:
            print("  [x] the tool reports nothing")
        if j.output is None:
            print("  [x] the output is right")
        else:
            print(f"  [ ] the output is right: {j.output}")
        if j.live_values == 0:
            print("  [x] no node is alive at exit")
        elif j.live_values is None:
            print("  [ ] no node is alive at exit: the program did not get to its end "
                  "(it crashed or was stopped), so this could not be checked")
        else:
            print(f"  [ ] no node is alive at exit: {j.live_values} still are")
        all_passed &= j.passed
    return all_passed


# ---------------------------------------------------------------------------------
# How to read a report
# ---------------------------------------------------------------------------------

EXPLANATIONS = {
    "heap-use-after-free": """\
AddressSanitizer, heap-use-after-free: three stacks. The first ("READ/WRITE of size
N ... thread T0") is the access to memory that was already freed; "freed by thread
T0 here" is where it was freed; "previously allocated by thread T0 here" is where
the block was made. The bug is usually the free (too early) or the access (too
late): read the first frame of your own code in each stack.""",
    "heap-buffer-overflow": """\
AddressSanitizer, heap-buffer-overflow: the first stack is the access, "N bytes to
the right of an M-byte region" says it lands just past the end of a block of M
bytes, and "allocated by" is the stack that made that block. Compare the index
that was used with the size that was allocated.""",
    "leak": """\
LeakSanitizer: each block is listed with the stack that allocated it. A "Direct
leak" is a block nothing points to any more: the reference that was lost. An
"Indirect leak" is reachable only from leaked blocks (the operands a leaked node
holds); it goes away when the direct one is fixed. The first frame of your code in
the stack is the call that gave you the reference you never gave back.""",
    "data race": """\
ThreadSanitizer, data race: two stacks, two threads. The first is the access TSan
caught, "Previous write/read" the other thread's access to the same address, and
nothing (no lock, no atomic) orders one before the other. "Location is heap
block ... allocated by" says which object they share; "Thread T1 created at" where
each thread was started.""",
    "InvalidRead": """\
Valgrind, invalid read: the first stack is the read; "Address ... is N bytes inside
a block of size M free'd" is followed by the stack that freed it, and "Block was
alloc'd at" by the one that made it. Same three questions as ASan: who read, who
freed, who allocated.""",
    "InvalidWrite": """\
Valgrind, invalid write: the first stack is the write; "Address ... is 0 bytes after
a block of size M alloc'd" means it is just past the end of an M-byte block, made
by the stack that follows.""",
    "Leak_DefinitelyLost": """\
Valgrind, "definitely lost": a block no pointer reaches any more (LeakSanitizer's
direct leak). "(D direct, I indirect)" counts the bytes of the lost block itself
and of the blocks reachable only through it. The stack is where it was allocated.""",
    "UninitCondition": """\
Valgrind, "Conditional jump or move depends on uninitialised value(s)": an if, a
loop condition or a comparison used memory that nothing ever wrote. The stack is
where the decision was taken; "Uninitialised value was created by a heap
allocation" and the stack after it say where that memory came from.""",
    "refused call": """\
The magic canary: the library checked the node it was given, found it freed, and
refused the call (it returned an error status, NaN or NULL, and printed
"argument N is a released Value"). It only works while the freed memory has not
been reused, and only for pointers passed to the library.""",
}


def explain(findings: Sequence[dict[str, object]]) -> None:
    shown: set[str] = set()
    for finding in findings:
        kind = str(finding["kind"])
        if kind in EXPLANATIONS and kind not in shown:
            shown.add(kind)
            print(f"\nHow to read it ({kind}):")
            print(textwrap.indent(EXPLANATIONS[kind], "  "))


# ---------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------


def workspace_dir(args: argparse.Namespace) -> Path:
    chosen = args.workspace or os.environ.get("MICROCRAD_LABS_WORKSPACE")
    return Path(chosen).resolve() if chosen else DEFAULT_WORKSPACE


def command_list(args: argparse.Namespace) -> int:
    labs = load_labs()
    width = max(len(lab.bug) for lab in labs.values())
    print(f"{'lab':>3}  {'bug':<{width}}  caught by")
    for lab in labs.values():
        tools = ", ".join(TOOL_NAMES[t] for t in lab.tools)
        print(f"{lab.number:>3}  {lab.bug:<{width}}  {tools}")
    print("\ntools/labs.py run N shows a lab's bug being caught; start N gives you a copy "
          "to fix; check N grades it.")
    return 0


def command_run(args: argparse.Namespace) -> int:
    lab = get_lab(args.lab)
    print(f"lab {lab.number}: {lab.bug} ({lab.source.relative_to(ROOT)})")
    for tool in lab.tools:
        preset = PRESETS[tool]
        build_shipped(lab, preset)
        program = (lab.source if lab.language == "python"
                   else memcheck.build_dir(preset) / "labs" / lab.name)
        print(f"\n===== {TOOL_NAMES[tool]} (build/{preset}) =====", flush=True)
        run = run_program(lab, tool, program,
                          log_dir=ROOT / "build" / "labs-logs" / f"lab{lab.number}-{tool}")
        print(run.report, end="")
        if not run.findings:
            print(f"\n(no finding: {TOOL_NAMES[tool]} did not catch it this time)")
        explain(run.findings)
    print(f"\nNext: tools/labs.py start {lab.number}, fix your copy, tools/labs.py check "
          f"{lab.number}.")
    return 0


def command_start(args: argparse.Namespace) -> int:
    lab = get_lab(args.lab)
    workspace = workspace_dir(args)
    copy = workspace / lab.file_name
    if copy.exists() and not args.force:
        print(f"labs: {copy} exists already (your work); --force replaces it with the "
              f"original", file=sys.stderr)
        return 1
    workspace.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(lab.source, copy)
    print(f"lab {lab.number} ({lab.bug}): your copy is {copy}")
    print(f"Edit it, then: tools/labs.py check {lab.number}   "
          f"(stuck? tools/labs.py hint {lab.number})")
    return 0


def check_lab(lab: Lab, workspace: Path, quiet: bool = False) -> tuple[bool, list[Judgement]]:
    """Builds and runs the student's copy under each of the lab's tools."""
    copy = workspace / lab.file_name
    if not copy.is_file():
        raise SystemExit(f"labs: no copy of lab {lab.number} in {workspace}; "
                         f"run: tools/labs.py start {lab.number}")
    judgements = []
    for tool in lab.tools:
        preset = PRESETS[tool]
        if lab.language == "python":
            memcheck.build(preset, ["microcrad"])
            program = copy
        else:
            try:
                program = build_student(lab, copy, preset)
            except BuildFailed:
                print(f"labs: your copy of lab {lab.number} does not compile "
                      f"(build/{preset}); the compiler's messages are above")
                return False, judgements
        if not quiet:
            print(f"running your lab {lab.number} under {TOOL_NAMES[tool]}...", flush=True)
        logs = workspace / ".logs" / f"lab{lab.number}-{tool}"
        judgements.append(judge(lab, run_program(lab, tool, program, log_dir=logs)))
    return all(j.passed for j in judgements), judgements


def command_check(args: argparse.Namespace) -> int:
    lab = get_lab(args.lab)
    passed, judgements = check_lab(lab, workspace_dir(args))
    if judgements:
        passed = print_judgements(lab, judgements) and passed
    print()
    if passed:
        print(f"lab {lab.number}: PASSED (the tools report nothing, the output is right, "
              f"no node is alive at exit)")
        return 0
    print(f"lab {lab.number}: not yet (see the unchecked boxes above; "
          f"tools/labs.py hint {lab.number} for a hint)")
    return 1


def command_hint(args: argparse.Namespace) -> int:
    lab = get_lab(args.lab)
    workspace = workspace_dir(args)
    state_file = workspace / ".hints.json"
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    shown = min(int(state.get(str(lab.number), 0)) + 1, len(lab.hints))
    if not lab.hints:
        print(f"lab {lab.number} has no hints")
        return 0
    for index in range(shown):
        print(f"hint {index + 1} of {len(lab.hints)}:")
        print(textwrap.indent(textwrap.fill(lab.hints[index], 76), "  "))
    if shown == len(lab.hints):
        print(f"(that was the last hint; tools/labs.py solution {lab.number} shows the fix)")
    state[str(lab.number)] = shown
    workspace.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps(state) + "\n")
    return 0


def command_solution(args: argparse.Namespace) -> int:
    lab = get_lab(args.lab)
    diff = difflib.unified_diff(
        lab.source.read_text().splitlines(keepends=True),
        lab.fixed.read_text().splitlines(keepends=True),
        fromfile=str(lab.source.relative_to(ROOT)), tofile=str(lab.fixed.relative_to(ROOT)))
    sys.stdout.writelines(diff)
    return 0


def command_doctor(args: argparse.Namespace) -> int:
    """Checks for the problems of examples/labs/TROUBLESHOOTING.md that can be detected."""
    problems = 0

    def say(ok: bool, text: str) -> None:
        nonlocal problems
        problems += not ok
        print(f"  [{'ok' if ok else '!!'}] {text}")

    print("tools/labs.py doctor (see examples/labs/TROUBLESHOOTING.md):")
    say(platform.system() == "Linux",
        f"platform {platform.system()}: LeakSanitizer and the labs' presets need Linux "
        "(macOS: no LSan; use a Linux container or VM)")
    tracer = 0
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("TracerPid:"):
                tracer = int(line.split()[1])
    except OSError:
        pass
    say(tracer == 0, "not running under ptrace (gdb, strace): LeakSanitizer does not work "
        "under ptrace" + (f" (traced by pid {tracer})" if tracer else ""))
    compiler = os.environ.get("CC", "gcc")
    for runtime in ("libasan.so", "libtsan.so"):
        found = subprocess.run([compiler, f"-print-file-name={runtime}"],
                               stdout=subprocess.PIPE, text=True).stdout.strip()
        say(os.path.isabs(found), f"{compiler} has {runtime}"
            + ("" if os.path.isabs(found) else " (install the sanitizer runtimes)"))
    symbolizer = shutil.which("llvm-symbolizer") or shutil.which("addr2line")
    say(bool(symbolizer) or compiler.endswith("gcc"),
        f"a symbolizer for line numbers: {symbolizer or 'none found'} (gcc's runtimes "
        "symbolize by themselves; clang's need llvm-symbolizer on PATH)")
    say(shutil.which("valgrind") is not None, "valgrind is installed")
    say(shutil.which("cmake") is not None, "cmake is installed")
    print("all good" if not problems else f"{problems} problem(s): see "
          "examples/labs/TROUBLESHOOTING.md")
    return 0 if not problems else 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="labs.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", help="where your copies live (default: "
                        "labs-workspace/ in the repository)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the labs").set_defaults(func=command_list)
    for name, func, text in [
            ("run", command_run, "build lab N as shipped and run it under its tools"),
            ("start", command_start, "copy lab N into the workspace"),
            ("check", command_check, "build your copy of lab N and check it"),
            ("hint", command_hint, "the next hint for lab N"),
            ("solution", command_solution, "the diff from lab N to its fixed twin")]:
        sub = commands.add_parser(name, help=text)
        sub.add_argument("lab", type=int, metavar="N")
        sub.set_defaults(func=func)
        if name == "start":
            sub.add_argument("--force", action="store_true",
                             help="replace an existing copy with the original")
    commands.add_parser("doctor", help="known tool problems on this machine").set_defaults(
        func=command_doctor)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
