"""Backward, one node at a time: the frames of a step-through, and an HTML page of them.

``backward_frames(root, step)`` does what ``root.backward()`` does, but by hand, as
the lecture does it: every gradient is set to 0, the root's to 1, and then ``step``
is called on each node in reverse topological order. ``step(v)`` applies v's local
chain rule once: it adds v's local derivatives times ``v.grad`` to the grads of v's
operands. After each step the gradients of every node are recorded, so the frames
show which node was processed and how each gradient grew.

By default the step is the node's own ``_backward()``, the library's backward rule
for one node, exactly as the lecture calls it by hand; ``local_step`` is the same step
written out in Python from each op's derivative, to read (and to check the other).
``render_html(root)`` turns the frames into one self-contained HTML page, one
picture per frame (needs Graphviz's ``dot``), with buttons to move through them.
"""

from __future__ import annotations

import dataclasses
import html
import math
from collections.abc import Callable

from microcrad import _lib
from microcrad import engine as _engine
from microcrad.engine import Value
from microcrad.viz import draw_dot, topological_order

__all__ = ["Frame", "backward_frames", "local_step", "node_step", "render_html"]

Step = Callable[[Value], None]


def _operands(node: Value) -> list[Value]:
    """The node's operands in operand order, repeats included (``a * a`` has two)."""
    return [_engine._shared_handles.handle_of(operand) for operand in _lib.prev(node._ptr)]


def node_step(node: Value) -> None:
    """Applies ``node``'s local chain rule once, with the library's own rule: the
    lecture's ``node._backward()``."""
    node._backward()


def local_step(node: Value) -> None:
    """Applies ``node``'s local chain rule once: for each operand p,
    ``p.grad += d node / d p * node.grad``. A leaf has no operands and nothing to do.

    The derivatives are those of the C library's backward rules (c/src/ops_*.c),
    computed here from the data of the node and its operands.
    """
    g = node.grad
    out = node.data
    operands = _operands(node)
    if not operands:
        return
    op = _lib.op_of(node._ptr)
    name = _lib.op_name(op)
    if op == _lib.OP_POW_CONST:
        (a,) = operands
        k = _lib.param_of(node._ptr)
        a.grad += k * a.data ** (k - 1) * g
    elif name in ("+", "sum"):
        for p in operands:
            p.grad += g
    elif name == "-":
        a, b = operands
        a.grad += g
        b.grad -= g
    elif name == "*":
        a, b = operands
        a_data, b_data = a.data, b.data
        a.grad += b_data * g
        b.grad += a_data * g
    elif name == "/":
        a, b = operands
        a_data, b_data = a.data, b.data
        a.grad += g / b_data
        b.grad += -a_data / (b_data * b_data) * g
    elif name == "neg":
        operands[0].grad -= g
    elif name == "**":  # a Value exponent
        a, b = operands
        a_data, b_data = a.data, b.data
        a.grad += b_data * a_data ** (b_data - 1) * g
        b.grad += math.log(a_data) * out * g if a_data > 0 else 0.0
    elif name == "exp":
        operands[0].grad += out * g
    elif name == "log":
        operands[0].grad += g / operands[0].data
    elif name == "ReLU":
        operands[0].grad += (1.0 if out > 0 else 0.0) * g
    elif name == "tanh":
        operands[0].grad += (1 - out * out) * g
    elif name == "sigmoid":
        operands[0].grad += out * (1 - out) * g
    elif name == "neuron":  # operands: b, w0, x0, w1, x1, ...
        operands[0].grad += g
        for w, x in zip(operands[1::2], operands[2::2]):
            w_data, x_data = w.data, x.data
            w.grad += x_data * g
            x.grad += w_data * g
    else:  # value_create with operands: no gradient flows through it
        return


@dataclasses.dataclass(frozen=True)
class Frame:
    """The state after one step: the node just processed (None for the start, when
    only the root's gradient is set) and every node's gradient at that moment."""

    processed: Value | None
    grads: dict[Value, float]


def backward_frames(root: Value, step: Step = node_step) -> list[Frame]:
    """Back-propagates from ``root`` one node at a time and records each step.

    Sets every gradient below ``root`` to 0 (leaves included: a step-through starts
    from scratch), the root's to 1, then calls ``step`` on each node in reverse
    topological order. Returns the first frame (before any step) and one frame per
    step; afterwards the gradients are those ``root.backward()`` gives on fresh
    leaves.

    Raises:
        TypeError: root is not a Value.
    """
    order = topological_order(root)
    root.zero_grad()
    root.grad = 1.0

    def snapshot(processed: Value | None) -> Frame:
        return Frame(processed, {node: node.grad for node in order})

    frames = [snapshot(None)]
    for node in reversed(order):
        step(node)
        frames.append(snapshot(node))
    return frames


def _caption(index: int, frame: Frame, previous: Frame | None) -> str:
    if frame.processed is None:
        return "start: every grad is 0, the root's is 1 (d root / d root)"
    node = frame.processed
    op = node._op or "leaf"
    grown = [(n, frame.grads[n] - previous.grads[n]) for n in frame.grads
             if previous is not None and frame.grads[n] != previous.grads[n]]
    if not grown:
        return f"step {index}: {op} node (data {node.data:.4f}): nothing to pass on"
    changes = ", ".join(f"{(n.label or 'data ' + format(n.data, '.4f'))} grad "
                        f"{delta:+.4f}" for n, delta in grown)
    return f"step {index}: {op} node (data {node.data:.4f}) passes its grad on: {changes}"


def render_html(root: Value, step: Step = node_step, title: str = "backward, step by step",
                show_refcount: bool = False) -> str:
    """A self-contained HTML page that steps through backward from ``root``: one
    SVG picture per frame (the processed node in colour, each grad as it is then,
    the topological position of every node), a caption saying which gradients
    grew, and Previous / Next buttons (or the arrow keys).

    Needs the graphviz Python package and Graphviz's dot program. Leaves the graph's
    gradients as ``backward_frames`` leaves them.
    """
    frames = backward_frames(root, step)
    pictures = []
    for index, frame in enumerate(frames):
        previous = frames[index - 1] if index else None
        dot = draw_dot(root, show_order=True, show_refcount=show_refcount,
                       highlight=frame.processed, grads=frame.grads)
        svg = dot.pipe(format="svg").decode("utf-8")
        svg = svg[svg.index("<svg"):]  # drop the XML prologue: inline SVG
        pictures.append((_caption(index, frame, previous), svg))
    sections = "\n".join(
        f'<section class="frame" id="frame{i}"{"" if i == 0 else " hidden"}>'
        f"<p>{html.escape(caption)}</p>{svg}</section>"
        for i, (caption, svg) in enumerate(pictures))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:1em}} svg{{max-width:100%;height:auto}}</style>
</head><body>
<h1>{html.escape(title)}</h1>
<p><button id="previous">Previous</button> <button id="next">Next</button>
frame <span id="number">0</span> of {len(pictures) - 1}
(the coloured node is the one whose backward step just ran; topo = its position in
the topological order, backward goes from the last to the first)</p>
{sections}
<script>
let current = 0;
const frames = document.querySelectorAll(".frame");
function show(i) {{
  current = Math.max(0, Math.min(frames.length - 1, i));
  frames.forEach((f, j) => f.hidden = j !== current);
  document.getElementById("number").textContent = current;
}}
document.getElementById("previous").onclick = () => show(current - 1);
document.getElementById("next").onclick = () => show(current + 1);
document.addEventListener("keydown", e => {{
  if (e.key === "ArrowLeft") show(current - 1);
  if (e.key === "ArrowRight") show(current + 1);
}});
</script>
</body></html>
"""
