"""Memory of the node pool, seen from Python: bounded when graphs are dropped on another
thread, and given back by ``microcrad.trim()``.

Python releases a node on whichever thread drops the last reference to its ``Value``,
so a worker that consumes graphs built elsewhere frees nodes that another thread made.
These tests look at the resident set (``/proc/self/statm``), not only at
``live_values()``: the live count was always exact, while the memory grew.

In builds and processes where nodes come from plain malloc (sanitizer and Valgrind
builds, or a library that sees such a tool at load time) there is no pool: the
workloads still run and their live counts are checked, the resident set is not.
"""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path

import pytest

import microcrad
from microcrad import _lib
from microcrad.engine import Value

STATM = Path("/proc/self/statm")
POOLED = not (_lib.build_features() & _lib.BUILD_VALGRIND)
MB = 1 << 20
# Without a pool nothing is measured: a tenth of the work checks the live counts.
SCALE = 1 if POOLED else 10

pytestmark = pytest.mark.skipif(not STATM.exists(), reason="needs /proc/self/statm (Linux)")


def resident_bytes() -> int:
    """The resident set of this process, in bytes."""
    return int(STATM.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def chain(links: int) -> Value:
    """A graph of 2 * links + 1 nodes: x * 1.0001 + 0.5, repeated (each constant is a
    node of its own, and every intermediate node lives on in the next)."""
    x = Value(1.0)
    for _ in range(links // 2):
        x = x * 1.0001 + 0.5
    return x


def test_graphs_dropped_by_a_worker_thread_keep_memory_bounded() -> None:
    """Main builds graphs, a worker drops them. Each dropped node goes back to the heap
    of the thread that made it, which reuses it: 700,000 nodes (45 MB had they never
    been reused) leave the resident set nearly where it was."""
    live0 = microcrad.live_values()
    inbox: queue.Queue[Value | None] = queue.Queue(maxsize=16)

    def worker() -> None:
        while (graph := inbox.get()) is not None:
            del graph  # the last reference: the whole graph is released on this thread

    def run(graphs: int) -> None:
        thread = threading.Thread(target=worker)
        thread.start()
        for _ in range(graphs):
            inbox.put(chain(100))
        inbox.put(None)
        thread.join()

    run(200)  # warm-up: the pool's first chunks, the thread's stack
    before = resident_bytes()
    run(3_500 // SCALE)
    growth = resident_bytes() - before
    assert microcrad.live_values() == live0
    if POOLED:
        assert growth < 12 * MB, f"the resident set grew by {growth / MB:.1f} MB"


def test_trim_gives_memory_back_after_a_graph_is_dropped() -> None:
    """A graph of 400,000 nodes is dropped; trim() then gives its pool memory back to
    the system and says how much."""
    live0 = microcrad.live_values()
    microcrad.trim()
    graph = chain(400_000 // SCALE)
    del graph
    assert microcrad.live_values() == live0
    before = resident_bytes()
    released = microcrad.trim()
    after = resident_bytes()
    if POOLED:
        assert released >= 400_000 * 64
        assert before - after >= 20 * MB, f"only {(before - after) / MB:.1f} MB went back"
        assert microcrad.trim() == 0  # nothing left to give back
    else:
        assert released == 0


def test_trim_takes_back_nodes_dropped_on_another_thread() -> None:
    """Nodes made here and dropped by a worker go back to this thread's heap; trim()
    here returns them to the system."""
    live0 = microcrad.live_values()
    microcrad.trim()
    graphs = [chain(400_000 // SCALE)]
    thread = threading.Thread(target=graphs.clear)  # the last reference goes there
    thread.start()
    thread.join()
    assert microcrad.live_values() == live0
    released = microcrad.trim()
    if POOLED:
        assert released >= 400_000 * 64
