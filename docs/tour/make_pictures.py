"""Draws the pictures of docs/tour.md into a folder (default: docs/tour/).

    python docs/tour/make_pictures.py [FOLDER]

Needs the graphviz Python package and Graphviz's dot program.
tests/test_tour.py runs it into a temporary folder and compares the result with the
committed pictures, so they show what the code draws.
"""

from __future__ import annotations

import sys
from pathlib import Path

from microcrad import Value, stepthrough, viz


def multiplication() -> tuple[Value, Value, Value]:
    """c = a * b, after backward: the tour's first graph (a label lives on its Value,
    so the leaves are returned too, to keep them)."""
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    c = a * b
    c.label = "c"
    c.backward()
    return c, a, b


def shared_use() -> tuple[Value, Value]:
    """y = x * x + x: a node used twice, for the step-through."""
    x = Value(3.0, label="x")
    y = x * x + x
    y.label = "y"
    return y, x


def draw(folder: Path) -> list[Path]:
    """Writes the pictures; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    c, a, b = multiplication()
    svg = viz.draw_dot(c, show_refcount=True, show_order=True).pipe(format="svg")
    made.append(folder / "multiplication.svg")
    made[-1].write_bytes(svg)
    y, x = shared_use()
    made.append(folder / "backward.html")
    made[-1].write_text(stepthrough.render_html(y, title="backward through y = x * x + x"))
    return made


if __name__ == "__main__":
    for path in draw(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent):
        print(path)
