"""The memory-safety labs are caught by their tools, and their fixed twins run clean.

Each lab in examples/labs has one deliberate bug (see examples/labs/README.md). Every
case below runs a lab under one tool through tools/memcheck.py (or, for the magic
canary, plainly on the debug build) and checks the *kind* of report: a lab whose bug
stops being caught, or is caught as something else, fails here. The fixed twin of
each lab runs under the same tool and must produce no finding at all in microcrad.

The last test proves the per-test leak attribution of tests/leak_attribution.py: a
throwaway test file with one leaking test is run under ASan, and the leak must be
pinned on that test and no other.

Tools: ASan, TSan (gcc's libasan, libtsan) and Valgrind. A case is skipped only when
its tool is not installed, with the package to install in the reason.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Optional

import pytest

import microcrad

ROOT = Path(__file__).resolve().parent.parent
MEMCHECK = ROOT / "tools" / "memcheck.py"
LABS = ROOT / "examples" / "labs"
# The microcrad package this test run imports; Python labs run with the same one.
PACKAGE_PARENT = str(Path(microcrad.__file__).resolve().parent.parent)

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("MICROCRAD_MEMCHECK")),
    reason="running under tools/memcheck.py already; the labs start their own checkers, "
    "which do not nest (they run in the ordinary pytest run)",
)


def _load_memcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("microcrad_memcheck", MEMCHECK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs: its dataclasses look their module up by name.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


memcheck = _load_memcheck()


def _missing_tool(tool: str) -> Optional[str]:
    """Why `tool` cannot run here (a skip reason), or None when it can."""
    if tool == "valgrind" and shutil.which("valgrind") is None:
        return "valgrind is not installed (apt-get install valgrind)"
    runtime = {"asan": "libasan.so", "tsan": "libtsan.so"}.get(tool)
    if runtime:
        compiler = os.environ.get("CC", "gcc")
        found = subprocess.run([compiler, f"-print-file-name={runtime}"],
                               stdout=subprocess.PIPE, text=True).stdout.strip()
        if not os.path.isabs(found):
            return (f"{compiler} has no {runtime} "
                    "(apt-get install libasan8 libtsan2, part of gcc on Debian)")
    return None


@pytest.fixture(scope="session")
def built_presets() -> Callable[[str], Path]:
    """Builds a preset's labs (once per session) and returns its build directory."""
    done: dict[str, Path] = {}

    def build(preset: str) -> Path:
        if preset not in done:
            reason = _missing_tool(preset)
            if reason:
                pytest.skip(reason)
            # A failure here (no `labs` target: examples/labs not added to the build)
            # is an error of the test, not a skip.
            memcheck.build(preset, ["labs"])
            done[preset] = memcheck.build_dir(preset)
        return done[preset]

    return build


@dataclasses.dataclass(frozen=True)
class Case:
    lab: str  # the program's name; a .py name is a Python lab
    tool: str  # "asan", "tsan", "valgrind", or "canary" (a normal build)
    kind: str  # the finding's kind in memcheck's verdict (unused for the canary)
    phrase: str  # words the report must contain

    @property
    def python(self) -> bool:
        return self.lab.endswith(".py")

    def __str__(self) -> str:
        return f"{self.lab}-{self.tool}"


CANARY_PHRASE = "is a released Value"

CASES = [
    Case("lab1_forgotten_release", "asan", "leak", "Direct leak of"),
    Case("lab1_forgotten_release", "valgrind", "Leak_DefinitelyLost", "definitely lost"),
    Case("lab2_double_release", "canary", "", CANARY_PHRASE),
    Case("lab2_double_release", "asan", "heap-use-after-free", "heap-use-after-free"),
    Case("lab3_use_after_release", "asan", "heap-use-after-free", "heap-use-after-free"),
    Case("lab3_use_after_release", "valgrind", "InvalidRead", "Invalid read"),
    Case("lab3_use_after_release", "canary", "", CANARY_PHRASE),
    Case("lab4_borrowed_prev", "asan", "heap-use-after-free", "heap-use-after-free"),
    Case("lab4_borrowed_prev", "valgrind", "InvalidRead", "Invalid read"),
    Case("lab5_prev_overflow", "asan", "heap-buffer-overflow", "heap-buffer-overflow"),
    Case("lab6_backward_race", "tsan", "data race", "data race"),
    Case("lab7_stale_pointer.py", "asan", "heap-use-after-free", "heap-use-after-free"),
    Case("lab7_stale_pointer.py", "canary", "", CANARY_PHRASE),
    Case("lab8_leak_without_scope", "asan", "leak", "Direct leak of"),
    Case("lab8_leak_without_scope", "valgrind", "Leak_DefinitelyLost", "definitely lost"),
    Case("lab9_use_after_scope", "asan", "heap-use-after-free", "heap-use-after-free"),
    Case("lab9_use_after_scope", "canary", "", CANARY_PHRASE),
]


def _twin(lab: str) -> str:
    stem, dot, suffix = lab.partition(".")
    return f"{stem}_fixed{dot}{suffix}"


def _python_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_PARENT] + [
        p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.update(extra)
    return env


def _command(case: Case, lab: str, build_dir: Path) -> list[str]:
    if case.python:
        return [sys.executable, str(LABS / lab)]
    return [str(build_dir / "labs" / lab)]


@dataclasses.dataclass
class Outcome:
    status: int
    output: str  # stdout and stderr together
    verdict: Optional[dict[str, Any]]  # memcheck's JSON verdict (None for the canary)


def _run(case: Case, lab: str, build: Callable[[str], Path], tmp_path: Path) -> Outcome:
    if case.tool == "canary":
        build_dir = build("debug")
        env = _python_env(MICROCRAD_LIB=str(build_dir / "libmicrocrad.so"))
        result = subprocess.run(_command(case, lab, build_dir), env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, timeout=120)
        return Outcome(result.returncode, result.stdout, None)
    build_dir = build(case.tool)
    verdict_file = tmp_path / "verdict.json"
    result = subprocess.run(
        [sys.executable, str(MEMCHECK), case.tool, "--no-build", "--json", str(verdict_file),
         "--log-dir", str(tmp_path / "logs"), "--", *_command(case, lab, build_dir)],
        env=_python_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=300)
    verdict = json.loads(verdict_file.read_text()) if verdict_file.exists() else None
    return Outcome(result.returncode, result.stdout, verdict)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bug_is_caught(case: Case, built_presets: Callable[[str], Path],
                       tmp_path: Path) -> None:
    outcome = _run(case, case.lab, built_presets, tmp_path)
    assert case.phrase in outcome.output, outcome.output
    if case.tool == "canary":
        # The program sees the error (a status, NaN or MicrocradError) and fails.
        assert outcome.status != 0, outcome.output
        return
    assert outcome.status == 1, outcome.output  # memcheck's "failed"
    assert outcome.verdict is not None, outcome.output
    ours = [f for f in outcome.verdict["findings"] if f["ours"]]
    assert ours, outcome.output
    matching = [f for f in ours if f["kind"] == case.kind]
    assert matching, outcome.output
    # The report points at the lab's own code (for the Python lab: at the C function
    # that the stale pointer was handed to).
    where = "value_data" if case.python else case.lab + ".c"
    assert any(where in frame for frame in matching[0]["frames"]), outcome.output


@pytest.mark.parametrize("case", CASES, ids=str)
def test_fixed_twin_is_clean(case: Case, built_presets: Callable[[str], Path],
                             tmp_path: Path) -> None:
    outcome = _run(case, _twin(case.lab), built_presets, tmp_path)
    assert outcome.status == 0, outcome.output
    assert CANARY_PHRASE not in outcome.output, outcome.output
    if outcome.verdict is not None:
        assert outcome.verdict["passed"], outcome.output
        assert not [f for f in outcome.verdict["findings"] if f["ours"]], outcome.output


LEAKY_TESTS = '''
from microcrad import _lib


def test_clean_before():
    leaf = _lib.c.value_create_leaf(1.0)
    _lib.c.value_release(leaf)


def test_leaks():
    # Three nodes whose only handle is dropped: the sum (direct) and two leaves.
    a = _lib.c.value_create_leaf(2.0)
    b = _lib.c.value_create_leaf(3.0)
    total = _lib.c.value_add(a, b)
    _lib.c.value_release(a)
    _lib.c.value_release(b)
    del total


def test_clean_after():
    leaf = _lib.c.value_create_leaf(4.0)
    _lib.c.value_release(leaf)
'''


@pytest.mark.parametrize("leak_check", ["test", "module"])
def test_leak_attribution_names_the_leaking_test(
        leak_check: str, built_presets: Callable[[str], Path], tmp_path: Path) -> None:
    """A deliberately leaking test is named by tests/leak_attribution.py.

    With a check after every test the plugin pins the leak directly; with a check per
    file, memcheck runs the file again to pin it.
    """
    built_presets("asan")
    project = tmp_path / "project"
    project.mkdir()
    # An ini file of its own keeps pytest from adopting some enclosing configuration.
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "test_leaky.py").write_text(textwrap.dedent(LEAKY_TESTS))
    verdict_file = tmp_path / "verdict.json"
    result = subprocess.run(
        [sys.executable, str(MEMCHECK), "asan", "--no-build", "--json", str(verdict_file),
         "--log-dir", str(tmp_path / "logs"), "--leak-check", leak_check, "--",
         sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_leaky.py"],
        cwd=project, env=_python_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=300)
    output = result.stdout
    assert result.returncode == 1, output

    # pytest itself failed one test at teardown (the test bodies all passed): the
    # leaking one, or with one check per file, the file's last test.
    blamed = "test_leaks" if leak_check == "test" else "test_clean_after"
    assert f"ERROR at teardown of {blamed}" in output, output
    assert "3 passed, 1 error" in output, output

    # memcheck's verdict pins the leak on that test.
    verdict = json.loads(verdict_file.read_text())
    leaks = [f for f in verdict["findings"] if f["ours"] and f["tool"] == "lsan"]
    assert leaks, output
    direct = [f for f in leaks if f["headline"].startswith("Direct leak")]
    assert direct, output
    for finding in leaks:
        assert finding["tests"] == ["test_leaky.py::test_leaks"], output
