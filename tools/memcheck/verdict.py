"""The verdict: what was found, whom it is blamed on, and whether the run passed."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from .findings import RUNTIME_FAILED, Finding, attribute, collect_findings, valgrind_suppressions
from .launch import Command, run

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
    def runtime_failures(self) -> list[Finding]:
        """Reports of the sanitizer runtime itself giving up (not about the program)."""
        return [f for f in self.findings if f.kind == RUNTIME_FAILED]

    @property
    def sanitizer_gave_up(self) -> bool:
        """Whether the command failed only because the sanitizer runtime did: it
        stopped the command with nothing found in the program or microcrad."""
        return self.command_failed and bool(self.runtime_failures) and not self.ours

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
    failures = verdict.runtime_failures
    errors = [f for f in verdict.findings if not f.is_leak and f not in failures]
    leaks = [f for f in verdict.findings if f.is_leak]
    ours = verdict.ours
    elsewhere = [f for f in verdict.findings if not f.ours and f not in failures]
    print(f"\n===== memcheck {verdict.tool}: verdict =====", file=out)
    for program, status in zip(programs, verdict.statuses):
        how = f"killed by signal {-status}" if status < 0 else f"exit status {status}"
        print(f"command {how}: {program}", file=out)
    for failure in failures:
        print(f"the sanitizer itself failed: {failure.headline} (in {failure.log})", file=out)
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


