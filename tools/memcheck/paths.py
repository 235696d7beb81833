"""Where things are, and how memcheck gives up."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parent.parent.parent
SUPPRESSIONS = ROOT / "tools" / "suppressions"
TOOLS = ("asan", "tsan", "valgrind")


def die(message: str) -> NoReturn:
    """Stops with exit status 2: memcheck itself could not do its job."""
    print(f"memcheck: {message}", file=sys.stderr)
    raise SystemExit(2)
