"""Pictures of computation graphs, as in micrograd's notebooks.

* ``draw_dot(root)`` builds a ``graphviz.Digraph`` (needs the ``graphviz`` Python
  package; rendering it to an image needs Graphviz's ``dot`` program). In a notebook
  the returned object displays itself.
* ``to_dot(root)`` returns the DOT text written by the C library, with no dependency
  at all; feed it to ``dot -Tsvg`` or any Graphviz viewer.

Both draw one record per node, showing its data and grad, and a small node for the
operation that produced it. A node used several times (``a + a``, or a weight shared by
many examples) is drawn once, with an edge to each use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Optional

from microcrad import _lib
from microcrad.engine import Value

if TYPE_CHECKING:
    import graphviz  # type: ignore[import-not-found]  # ships no type information

__all__ = ["draw_dot", "to_dot", "topological_order"]

_RANKDIRS = ("LR", "TB", "RL", "BT")


def _graphviz() -> Any:
    try:
        import graphviz
    except ImportError as error:
        raise ImportError(
            "draw_dot needs the 'graphviz' Python package: pip install graphviz "
            "(and, to render images, the Graphviz programs, e.g. apt-get install graphviz); "
            "microcrad.viz.to_dot gives the DOT text without it"
        ) from error
    return graphviz


def _check_root(root: object) -> Value:
    if not isinstance(root, Value):
        raise TypeError(f"root must be a Value, not {type(root).__name__!r}")
    return root


def _trace(root: Value) -> tuple[dict[Value, str], set[tuple[Value, Value]]]:
    """Every node reachable from ``root`` with a DOT name, and the (operand, result)
    edges.

    Values compare and hash by their C node, so a node reached along several paths is
    entered once. The walk uses an explicit stack: graphs can be far deeper than
    Python's recursion limit.
    """
    names: dict[Value, str] = {root: "n0"}
    edges: set[tuple[Value, Value]] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        for child in node._prev:
            edges.add((child, node))
            if child not in names:
                names[child] = f"n{len(names)}"
                stack.append(child)
    return names, edges


def topological_order(root: Value) -> list[Value]:
    """The nodes below ``root``, each after all of its operands (leaves first, the
    root last): the order of the forward computation. ``backward`` visits it in
    reverse. Operands are taken in operand order, so the order is the same on every
    run; the walk is iterative, like the library's own sort, so any depth works."""
    from microcrad import engine  # the handles of nodes reached from the root

    root = _check_root(root)
    order: list[int] = []
    expanded: set[int] = set()
    # (node, False): visit its operands first; (node, True): they are all done. A node
    # is expanded once, when first popped, so that it follows every one of its
    # operands even when another path pushed it earlier.
    stack: list[tuple[int, bool]] = [(root._ptr, False)]
    while stack:
        node, operands_done = stack.pop()
        if operands_done:
            order.append(node)
            continue
        if node in expanded:
            continue
        expanded.add(node)
        stack.append((node, True))
        for child in reversed(_lib.prev(node)):  # the first operand is visited first
            if child not in expanded:
                stack.append((child, False))
    handles = {root._ptr: root}
    return [handles.get(node) or engine._shared_handles.handle_of(node) for node in order]


def _record_label(node: Value, extra: str = "", grad: Optional[float] = None) -> str:
    shown = node.grad if grad is None else grad
    fields = f"data {node.data:.4f} | grad {shown:.4f}{extra}"
    # A label holds the user's text: escape what a record label gives meaning to.
    label = node.label
    if label:
        for special in '\\{}|<>"':
            label = label.replace(special, "\\" + special)
        fields = f"{label} | {fields}"
    return "{ " + fields + " }"


def draw_dot(root: Value, format: str = "svg", rankdir: str = "LR", *,
             show_refcount: bool = False, show_order: bool = False,
             highlight: Optional[Value] = None,
             grads: Optional[Mapping[Value, float]] = None,
             notes: Optional[Mapping[Value, str]] = None) -> graphviz.Digraph:
    """The graph below ``root`` as a ``graphviz.Digraph``, drawn like micrograd's
    ``draw_dot``: a record ``{ label | data | grad }`` per node (the label only when the
    Value has one) and an op node between each result and its operands.

    Args:
        root: the Value whose graph to draw.
        format: the image format that ``render()`` produces ("svg", "png", ...).
        rankdir: the direction of the edges: "LR" (left to right), "TB", "RL" or "BT".
        show_refcount: add each node's reference count ("refs N"): the references
            its consumers in the graph hold, plus one per Python handle of it.
        show_order: add each node's position in the topological order ("topo i",
            0 for the first node computed; backward visits them from the last).
        highlight: a node to fill in colour (the step-through marks the node whose
            backward step runs).
        grads: gradients to show instead of the nodes' own (a snapshot).
        notes: a line of text to add to some nodes' records.

    Raises:
        ImportError: the graphviz Python package is not installed.
        TypeError: root is not a Value.
        ValueError: rankdir is not one of the four directions.
    """
    graphviz = _graphviz()
    root = _check_root(root)
    if rankdir not in _RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(_RANKDIRS)}, got {rankdir!r}")
    names, edges = _trace(root)
    position = ({node: i for i, node in enumerate(topological_order(root))}
                if show_order else {})
    dot = graphviz.Digraph(format=format, graph_attr={"rankdir": rankdir})
    for node, name in names.items():
        extra = ""
        if show_refcount:
            extra += f" | refs {_lib.ref_count(node._ptr)}"
        if show_order:
            extra += f" | topo {position[node]}"
        if notes and node in notes:
            extra += " | " + notes[node]
        attributes = ({"style": "filled", "fillcolor": "gold"} if highlight is not None
                      and node == highlight else {})
        dot.node(name=name, label=_record_label(node, extra, None if grads is None
                                                else grads.get(node)),
                 shape="record", **attributes)
        op = node._op
        if op:
            dot.node(name=name + "_op", label=op)
            dot.edge(name + "_op", name)
    # Sorted, so that the same graph always gives the same text.
    for child, parent in sorted(edges, key=lambda edge: (names[edge[1]], names[edge[0]])):
        dot.edge(names[child], names[parent] + "_op")
    return dot


def to_dot(root: Value) -> str:
    """The graph below ``root`` as Graphviz DOT text, written by the C library
    (``value_write_dot``): a record ``{ label | data | grad }`` per node (the label only
    when the node has one) and an op node between each result and its operands, left to
    right. Needs no Python package.

    Raises:
        TypeError: root is not a Value.
    """
    return _lib.dot_text(_check_root(root)._ptr)
