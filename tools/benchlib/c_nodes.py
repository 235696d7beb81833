"""Part 3, C alone: tools/bench_nodes.c, built with CMake's release preset, reports
nanoseconds per node to build, back-propagate and release a deep chain and a wide
tree, and bytes per node."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from benchlib.runs import progress

REPO = Path(__file__).resolve().parent.parent.parent


def bench_c(quick: bool) -> dict[str, Any]:
    """Builds tools/bench_nodes.c with CMake's release preset and runs it; its JSON
    report, or ``{"skipped": why}``."""
    cmake = shutil.which("cmake")
    if cmake is None:
        return {"skipped": "cmake is not installed"}
    build = REPO / "build" / "release"
    try:
        if not (build / "CMakeCache.txt").exists():
            progress("C: configuring the release preset")
            subprocess.run(
                [cmake, "--preset", "release"], cwd=REPO, check=True, capture_output=True, text=True
            )
        progress("C: building bench_nodes")
        subprocess.run(
            [cmake, "--build", "--preset", "release", "--target", "bench_nodes"],
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError as error:
        return {"skipped": f"building bench_nodes failed: {error.stderr.strip()[-400:]}"}
    program = build / "bench" / "bench_nodes"
    size = ["--chain", "200000", "--wide", "200000", "--reps", "3"] if quick else []
    progress("C: running bench_nodes " + " ".join(size))
    result = subprocess.run(
        [str(program), "--json", *size], check=True, capture_output=True, text=True
    )
    data: dict[str, Any] = json.loads(result.stdout)
    return data
