"""Configuring and building the CMake preset of a tool."""

from __future__ import annotations

import fcntl
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .paths import ROOT, die

def build_dir(tool: str) -> Path:
    """The preset's binary directory (CMakePresets.json: build/<preset>)."""
    return ROOT / "build" / tool


def build(tool: str, targets: Sequence[str] = ()) -> str:
    """Configures the preset if it has never been configured, then builds it (all of
    it, or only `targets`). Returns the build's output (its warnings, say); on failure
    prints it and stops (exit status 2).

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
        output = []
        for step in steps:
            result = subprocess.run(step, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            if result.returncode != 0:
                sys.stdout.write(result.stdout)
                die(f"'{shlex.join(step)}' failed (status {result.returncode})")
            output.append(result.stdout)
    return "".join(output)


