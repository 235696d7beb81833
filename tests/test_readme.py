"""The README's examples run and print what the README says they print."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_python_example_prints_the_numbers_in_its_comment(tmp_path: Path) -> None:
    (block,) = [b for b in code_blocks("python") if "backward()" in b]
    expected = re.search(r"# ([-\d.]+), ([-\d.]+), ([-\d.]+)", block)
    assert expected, "the example states its output in a comment"
    # Only the engine part: MLP lines need no output check here (tests/test_nn.py).
    # Run outside the repository, whose source folder would shadow the installed package.
    result = subprocess.run(
        [sys.executable, "-c", block], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert result.stdout.split("\n")[0] == ", ".join(expected.groups())


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
@pytest.mark.parametrize("style", ["explicit releases", "scope"])
def test_c_example_builds_runs_and_frees_everything(tmp_path: Path, style: str) -> None:
    """Both C examples (one releases by hand, one uses a scope) compute the same."""
    blocks = code_blocks("c")
    assert len(blocks) == 2, "the README has one C example of each style"
    block = blocks[0] if style == "explicit releases" else blocks[1]
    assert ("microcrad_scope_begin" in block) == (style == "scope")
    source = tmp_path / "demo.c"
    source.write_text(block, encoding="utf-8")
    import microcrad

    library_dir = Path(microcrad._lib.c._name).resolve().parent
    program = tmp_path / "demo"
    subprocess.run(
        ["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'c' / 'include'}",
         str(source), f"-L{library_dir}", "-l:libmicrocrad.so", f"-Wl,-rpath,{library_dir}",
         "-o", str(program)],
        check=True,
    )
    result = subprocess.run([str(program)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr  # non-zero: a node was still alive
    # out = tanh(x*y) at x = 2, y = -3; d tanh(u)/du = 1 - tanh(u)^2.
    out = math.tanh(2.0 * -3.0)
    slope = 1.0 - out * out
    assert result.stdout == f"out={out:f} dx={slope * -3.0:f} dy={slope * 2.0:f}\n"
