#!/usr/bin/env python3
"""Benchmarks microcrad against micrograd, PyTorch and the floor, all measured in one run.

Usage::

    .venv/bin/python tools/bench.py [--quick] [--json out.json] [--no-moons] [--no-mnist]
                                    [--no-c] [--no-callgrind] [--no-python-ops] [--profile]

Four parts, each printed as Markdown tables:

1. Moons: the training step of micrograd's demo notebook (100 points of
   ``make_moons(n_samples=100, noise=0.1)`` after seeding NumPy and ``random`` with 1337,
   ``MLP(2, [16, 16, 1])``, SVM max-margin loss plus 1e-4 L2, SGD with learning rate
   ``1.0 - 0.9*k/100``), timed per step for
     * micrograd itself (micrograd.nn on micrograd.engine.Value);
     * PyTorch with one autograd node per number (the same code on float64 scalars);
     * PyTorch with batched float64 tensors (one matrix product per layer);
     * microcrad per-op: the notebook's loop unchanged, micrograd's nn code on
       microcrad's Value;
     * microcrad fused nn: microcrad.nn.MLP (one C node per neuron), microcrad.losses,
       microcrad.optim.SGD;
     * microcrad replay: the loss graph built once, then per step Tape.forward(),
       Tape.backward() and one C call for the SGD update and the zeroing of the
       gradients.
   Every microcrad variant must retrace micrograd's losses, step for step (to 1e-9),
   for the steps micrograd ran; the run fails otherwise.
2. MNIST-shaped: MLP(784, [50, 10]) trained one image at a time on synthetic data
   (random 784-pixel images, 10 classes) with a multiclass hinge loss written in
   micrograd's operations (micrograd has no exp or log), in images per second, with
   the same loss check.
3. W1 in C (benchlib/w1.py; tools/bench_nodes.c, built with CMake's release preset):
   build a graph, run backward from its root, release it, on a chain of 50,000
   alternating ``x*c``, ``x+c``, on 32,768 products ``a*b`` summed by a balanced tree
   (65,535 nodes) and on the same tree with 999,999 nodes; for microcrad, for the
   floor (tools/bench_floor.c, a bump-arena engine with no reference counts and no
   checks) and for the floor with thread-safe reference counts ("floor-atomic",
   tools/bench_floor_atomic.c: the floor plus atomic counts kept as microcrad keeps
   them, nothing else); both floors are measuring sticks only. ns per node per phase,
   cold (fresh memory) and warm (memory reused), instructions per node from callgrind
   (skipped when valgrind is missing), the ratios microcrad / floor (the goals),
   floor-atomic / floor (what thread-safe counts alone cost, printed as information)
   and microcrad / floor-atomic, and the size ratio (big tree / 65k tree per node,
   warm). All three engines must compute the same bits; the run fails otherwise.
4. Python, one node per operation (benchlib/python_ops.py): 99,999 ``*`` and ``+``
   built, back-propagated and dropped, in µs per operation and in bare ctypes calls
   (a pointer in, a double out) per operation, measured in the same run; micrograd on
   the same workload for reference.

Per-step times are medians over the steps run, W1 times each phase's least over
interleaved repetitions, Python times the least of interleaved repetitions (the
machine may be shared and noisy; instruction counts are not). Everything runs on one thread (PyTorch is set to one). A reference system that
is not installed is reported as skipped; nothing is estimated. ``--quick`` runs a few
steps of everything at small sizes, as a smoke test. The goals are printed at the end
as measured, then lines of information. ``--profile`` adds, for the chain and the 65k
tree on each engine, the
instructions per node of each function, per phase (callgrind; for finding where the
cost is, not part of the goals).

The parts live in tools/benchlib/ (one module each, and the reporting in
benchlib/report.py); this file runs them and prints the results.

Exit status: 0 when every check passed (losses against micrograd, W1's engines
agreeing), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchlib.mnist import bench_mnist
from benchlib.moons import bench_moons
from benchlib.python_ops import bench_python_ops
from benchlib.report import (
    by_name,
    environment,
    goals,
    mnist_table,
    moons_table,
    profile_tables,
    python_ops_table,
    w1_information,
    w1_tables,
)
from benchlib.runs import Run, compare_losses
from benchlib.systems import torch
from benchlib.w1 import bench_w1, profile_functions


def main(argv: Sequence[str] | None = None) -> int:
    """Runs everything, prints the tables and the goals, writes the JSON; returns the
    exit status (0 when every loss check passed)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few steps of everything")
    parser.add_argument("--json", metavar="PATH", help="also write the results here as JSON")
    parser.add_argument("--no-moons", action="store_true", help="skip the moons part")
    parser.add_argument("--no-mnist", action="store_true", help="skip the MNIST-shaped part")
    parser.add_argument("--no-c", action="store_true", help="skip W1 in C")
    parser.add_argument(
        "--no-callgrind", action="store_true", help="skip W1's instruction counts"
    )
    parser.add_argument(
        "--no-python-ops", action="store_true", help="skip the Python per-operation part"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also show where W1's instructions go, by function and phase (callgrind)",
    )
    args = parser.parse_args(argv)

    if torch is not None:
        # Every other system here computes on one thread. PyTorch's second thread buys
        # nothing for tensors this small, and on a busy machine a parallel region that
        # waits for a core to come free costs milliseconds.
        torch.set_num_threads(1)
    env = environment()
    moons: list[Run] = [] if args.no_moons else bench_moons(args.quick)
    mnist: list[Run] = [] if args.no_mnist else bench_mnist(args.quick)
    w1: dict[str, Any] = (
        {"skipped": "--no-c"} if args.no_c else bench_w1(args.quick, not args.no_callgrind)
    )
    py: dict[str, Any] = (
        {"skipped": "--no-python-ops"} if args.no_python_ops else bench_python_ops(args.quick)
    )
    profiles: dict[str, Any] | None = profile_functions(args.quick) if args.profile else None

    checks_ok = True
    for runs in (moons, mnist):
        if not runs:
            continue
        reference = by_name(runs, "micrograd")
        for run in runs:
            if run.name.startswith("microcrad"):
                checks_ok &= compare_losses(run, reference)
            elif run is not reference and not run.skipped:
                # PyTorch sums in other orders (matrix products), so its losses drift
                # from micrograd's by roundings: shown for information, not judged.
                compare_losses(run, reference)
                run.check = "info: " + run.check.split(": ", 1)[-1]
    w1_ok = not w1.get("check_failures")
    measured_goals = goals(moons, mnist, w1, py)
    information = w1_information(w1)

    print(f"microcrad {env['microcrad']} ({'quick run' if args.quick else 'full run'}), "
          f"Python {env['python']}, {env.get('cpu', env['machine'])}, {env['cpus']} CPUs; "
          f"micrograd {env['micrograd'] or 'not installed'}, "
          f"PyTorch {env['torch'] or 'not installed'}"
          + (f" on {env['torch_threads']} thread(s)" if env["torch"] else ""))
    print()
    print("\n".join(moons_table(moons)) if moons else "Moons skipped: --no-moons")
    print()
    print("\n".join(mnist_table(mnist)) if mnist else "MNIST skipped: --no-mnist")
    print()
    print("\n".join(w1_tables(w1)))
    print()
    print("\n".join(python_ops_table(py)))
    print()
    if profiles is not None:
        print("\n".join(profile_tables(profiles)))
        print()
    for key, goal in measured_goals.items():
        measured = goal["measured"]
        shown = "-" if measured is None else f"{measured:,.2f}"
        verdict = "not measured" if goal["met"] is None else ("met" if goal["met"] else "NOT met")
        print(f"goal: {key}: {shown} ({verdict})")
    for line in information:
        print(line)
    if moons or mnist:
        print(f"loss checks against micrograd: {'PASS' if checks_ok else 'FAIL'}")
    if "skipped" not in w1:
        print(
            "W1 checks (microcrad, the floor and floor-atomic agree): "
            + ("PASS" if w1_ok else "FAIL")
        )

    if args.json:
        report = {
            "quick": args.quick,
            "environment": env,
            "moons": [run.as_json() for run in moons],
            "mnist": [run.as_json() for run in mnist],
            "w1": w1,
            "python_ops": py,
            "w1_profile": profiles,
            "goals": measured_goals,
            "information": information,
            "loss_checks_passed": checks_ok,
            "w1_checks_passed": w1_ok,
        }
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if checks_ok and w1_ok else 1


if __name__ == "__main__":
    sys.exit(main())
