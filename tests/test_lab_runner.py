"""tools/labs.py, the lab runner, grades every lab as a student's exercise.

For every lab of examples/labs/labs.toml:

* ``start N`` then ``check N`` on the untouched copy fails, and the lab's tools
  report the kind of finding the table says they catch;
* after the copy is replaced by the fixed twin, ``check N`` passes: every tool
  silent, the output right, no node alive at exit.

Also: the runner's other commands (list, hint, solution), that a student's copy
with a warning still builds (no -Werror), and that a copy that does not compile is
reported as such. The tests use a workspace of their own, never labs-workspace/.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
LABS_PY = ROOT / "tools" / "labs.py"

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("MICROCRAD_MEMCHECK")),
    reason="running under tools/memcheck.py already; the runner starts its own checkers",
)


def _load_labs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("microcrad_labs_runner", LABS_PY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


labs = _load_labs()
LABS = labs.load_labs()


def _missing(tool: str) -> str | None:
    if tool == "valgrind" and shutil.which("valgrind") is None:
        return "valgrind is not installed (apt-get install valgrind)"
    runtime = {"asan": "libasan.so", "tsan": "libtsan.so"}.get(tool)
    if runtime:
        found = subprocess.run([os.environ.get("CC", "gcc"), f"-print-file-name={runtime}"],
                               stdout=subprocess.PIPE, text=True).stdout.strip()
        if not os.path.isabs(found):
            return f"no {runtime} (apt-get install libasan8 libtsan2)"
    return None


def _runner(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(LABS_PY), "--workspace", str(workspace), *args],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=900)


def test_the_table_lists_at_least_ten_labs_with_both_programs() -> None:
    assert len(LABS) >= 10
    assert {10, 11, 12} <= set(LABS)
    for lab in LABS.values():
        assert lab.source.is_file() and lab.fixed.is_file(), lab
        assert lab.hints and lab.output and lab.tools, lab
        for tool in lab.tools:
            assert tool == "canary" or tool in lab.catches, (lab.number, tool)


def test_every_lab_program_has_an_entry_in_the_table() -> None:
    """A lab added to examples/labs needs its [[lab]] entry in labs.toml (tools, output,
    hints), or the runner and these tests would not know it."""
    names = {lab.name for lab in LABS.values()}
    shipped = {path.stem for path in labs.LABS_DIR.glob("lab*")
               if path.suffix in (".c", ".py") and not path.stem.endswith("_fixed")}
    assert shipped - names == set(), "add these labs to examples/labs/labs.toml"


@pytest.mark.parametrize("number", sorted(LABS), ids=lambda n: f"lab{n}")
def test_check_fails_on_the_untouched_copy_and_passes_on_the_fixed_twin(
        number: int, tmp_path: Path) -> None:
    lab = LABS[number]
    for tool in lab.tools:
        reason = _missing(tool)
        if reason:
            pytest.skip(reason)
    workspace = tmp_path / "workspace"

    started = _runner(workspace, "start", str(number))
    assert started.returncode == 0, started.stdout
    copy = workspace / lab.file_name
    assert copy.read_text() == lab.source.read_text()

    # The untouched copy: each tool reports its kind of finding, and check fails.
    passed, judgements = labs.check_lab(lab, workspace, quiet=True)
    assert not passed
    assert [j.tool for j in judgements] == list(lab.tools)
    for judgement in judgements:
        if judgement.tool == "canary":
            assert any("is a released Value" in f for f in judgement.tool_findings), judgement
        else:
            kind = lab.catches[judgement.tool]
            assert any(f" {kind}:" in f for f in judgement.tool_findings), judgement
            # The verdict points at the student's own copy (its first frame outside the
            # library, or for Python its line), not at the library.
            assert any(f"{workspace}/{lab.file_name}:" in f
                       for f in judgement.tool_findings), judgement

    # The same verdict through the command line, which names what is wrong.
    checked = _runner(workspace, "check", str(number))
    assert checked.returncode == 1, checked.stdout
    assert "[ ] the tool reports nothing" in checked.stdout, checked.stdout
    assert f"lab {number}: not yet" in checked.stdout

    # The copy made equal to the fixed twin passes, all three conditions, every tool.
    shutil.copyfile(lab.fixed, copy)
    checked = _runner(workspace, "check", str(number))
    assert checked.returncode == 0, checked.stdout
    assert f"lab {number}: PASSED" in checked.stdout
    assert checked.stdout.count("[x] no node is alive at exit") == len(lab.tools)
    assert "[ ]" not in checked.stdout


def test_list_names_every_lab_and_its_tools(tmp_path: Path) -> None:
    listed = _runner(tmp_path, "list")
    assert listed.returncode == 0
    for lab in LABS.values():
        assert any(line.split()[:1] == [str(lab.number)] and lab.bug in line
                   for line in listed.stdout.splitlines()), lab.number
    assert "ThreadSanitizer" in listed.stdout and "Valgrind" in listed.stdout


def test_hints_come_one_at_a_time_and_stop_at_the_last(tmp_path: Path) -> None:
    lab = LABS[10]
    for shown in range(1, len(lab.hints) + 2):
        result = _runner(tmp_path, "hint", "10")
        assert result.returncode == 0
        expected = min(shown, len(lab.hints))
        assert result.stdout.count("hint ") - result.stdout.count("no hints") >= expected
        assert f"hint {expected} of {len(lab.hints)}" in result.stdout
        assert f"hint {expected + 1} of" not in result.stdout
    assert "last hint" in result.stdout


def test_solution_is_the_diff_to_the_fixed_twin(tmp_path: Path) -> None:
    result = _runner(tmp_path, "solution", "11")
    assert result.returncode == 0
    assert result.stdout.startswith("--- examples/labs/lab11_output_array_overflow.c")
    assert "-    Value **outputs = malloc(INPUTS * sizeof *outputs);" in result.stdout
    assert "+    Value **outputs = malloc(OUTPUTS" in result.stdout


def test_start_does_not_overwrite_a_students_work(tmp_path: Path) -> None:
    assert _runner(tmp_path, "start", "1").returncode == 0
    copy = tmp_path / LABS[1].file_name
    copy.write_text(copy.read_text() + "/* my notes */\n")
    again = _runner(tmp_path, "start", "1")
    assert again.returncode == 1 and "--force" in again.stdout
    assert copy.read_text().endswith("/* my notes */\n")
    assert _runner(tmp_path, "start", "1", "--force").returncode == 0
    assert copy.read_text() == LABS[1].source.read_text()


def test_a_warning_in_a_students_copy_does_not_stop_the_build(tmp_path: Path) -> None:
    """The project builds with -Werror; a student's scratch code must not."""
    if _missing("asan"):
        pytest.skip(str(_missing("asan")))
    lab = LABS[5]
    tmp_path.mkdir(exist_ok=True)
    fixed = lab.fixed.read_text().replace("int main(void)\n{",
                                          "int main(void)\n{\n    int unused_scratch = 1;")
    assert "unused_scratch" in fixed
    (tmp_path / lab.file_name).write_text(fixed)
    result = _runner(tmp_path, "check", "5")
    assert result.returncode == 0, result.stdout
    assert "lab 5: PASSED" in result.stdout


def test_a_copy_that_does_not_compile_is_reported(tmp_path: Path) -> None:
    if _missing("asan"):
        pytest.skip(str(_missing("asan")))
    lab = LABS[5]
    (tmp_path / lab.file_name).write_text(lab.source.read_text() + "\nthis is not C\n")
    result = _runner(tmp_path, "check", "5")
    assert result.returncode == 1
    assert "does not compile" in result.stdout
    assert lab.file_name in result.stdout  # the compiler names the student's own file


def _allocations(lab: "labs.Lab", program: Path) -> int:
    """How many allocations the fixed twin's main thread makes in a normal run."""
    if lab.language == "python":
        # The Python package allocates through the library too; count by trying:
        # the first n for which the failure hook is never reached ends the walk.
        return 0
    report = program.parent / f".{lab.name}.report"
    env = dict(os.environ, MICROCRAD_LABS_REPORT=str(report))
    subprocess.run([str(program)], env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=120, check=True)
    counts = dict(line.split() for line in report.read_text().splitlines())
    report.unlink()
    return int(counts["allocations"])


@pytest.mark.parametrize("number", sorted(LABS), ids=lambda n: f"lab{n}")
def test_fixed_twin_leaks_nothing_when_any_allocation_fails(number: int) -> None:
    """Each allocation of the fixed twin is made to fail in turn (the library's
    microcrad_fail_allocation hook, through support/lab_harness.c or
    support/run_python_lab.py); under ASan + LSan every such run must end with
    nothing leaked and no error, whatever the program prints or returns."""
    lab = LABS[number]
    reason = _missing("asan")
    if reason:
        pytest.skip(reason)
    labs.build_shipped(lab, "asan")
    build = labs.memcheck.build_dir("asan")
    program = lab.fixed if lab.language == "python" else build / "labs" / (lab.name + "_fixed")
    total = _allocations(lab, program)
    failures = range(1, total + 1) if total else range(1, 40)
    tried = 0
    for n in failures:
        run = labs.run_program(lab, "asan", program,
                               extra_env={"MICROCRAD_LABS_FAIL_ALLOCATION": str(n)})
        tried += 1
        assert not run.findings, (n, run.report)
        assert run.live_values in (0, None), (n, run.report)
        if lab.language == "python" and run.status == 0:
            break  # allocation n was never reached: every earlier one has been failed
    assert tried >= 1
