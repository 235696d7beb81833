"""Every command shown in examples/labs/README.md and TROUBLESHOOTING.md works, and
prints what the page says.

The README's ```sh blocks hold commands (lines starting with "$ ") each followed by
lines its output must contain. They run here as a student would type them, from the
repository root, with `python3` and the build presets the runner makes itself (the
runner's workspace is a temporary folder, so a real labs-workspace/ is untouched).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "examples" / "labs" / "README.md"
TROUBLESHOOTING = ROOT / "examples" / "labs" / "TROUBLESHOOTING.md"

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("MICROCRAD_MEMCHECK")),
    reason="running under tools/memcheck.py already; the runner starts its own checkers",
)


def readme_commands(page: Path = README) -> list[tuple[str, list[str]]]:
    commands: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```sh\n(.*?)```", page.read_text(), re.DOTALL):
        for line in block.splitlines():
            if line.startswith("$ "):
                commands.append((line[2:], []))
            elif line.strip() and commands:
                commands[-1][1].append(line.strip())
    return commands


COMMANDS = readme_commands()


def test_the_readme_shows_commands() -> None:
    assert len(COMMANDS) >= 6
    assert all(expected for _, expected in COMMANDS)


def test_the_readme_gives_no_fix_away() -> None:
    """Fixes live in the hints and solutions, not under the reports."""
    text = README.read_text()
    assert "The fix" not in text and "**Fix" not in text
    for lab in (ROOT / "examples" / "labs").glob("lab*"):
        if "_fixed" not in lab.name and lab.suffix in (".c", ".py"):
            assert "BUG" not in lab.read_text(), lab


def _program(command: str) -> str:
    """The program a shell command line starts (after any VAR=value words)."""
    words = [w for w in command.split() if not re.match(r"^[A-Z_]+=", w)]
    return words[0] if words else ""


@pytest.mark.skipif(shutil.which("python3") is None, reason="no python3 on PATH")
@pytest.mark.parametrize("page", [README, TROUBLESHOOTING], ids=lambda p: p.name)
def test_every_command_prints_what_the_page_says(page: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MICROCRAD_LIB", "PYTHONPATH", "LD_PRELOAD")}
    env["MICROCRAD_LABS_WORKSPACE"] = str(tmp_path / "workspace")
    commands = readme_commands(page)
    assert commands
    for command, expected in commands:
        if shutil.which(_program(command)) is None and not _program(command).startswith(
                ("build/", "python3")):
            continue  # a tool this machine lacks (strace, ...): nothing to show
        result = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                timeout=600)
        lines = [line.strip() for line in result.stdout.splitlines()]
        for line in expected:
            assert any(line in printed for printed in lines), (command, line, result.stdout)
