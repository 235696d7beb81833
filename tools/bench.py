#!/usr/bin/env python3
"""Benchmarks microcrad against micrograd and PyTorch, all measured in one run.

Usage::

    .venv/bin/python tools/bench.py [--quick] [--json out.json] [--no-c]

Three parts, each printed as a Markdown table:

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
3. C alone (tools/bench_nodes.c, built with CMake's release preset): nanoseconds per
   node to build, back-propagate and release a deep chain and a wide tree, and bytes
   per node.

Per-step times are medians over the steps run (the machine may be shared and noisy).
Everything runs on one thread (PyTorch is set to one). A reference system that is not
installed is reported as skipped; nothing is estimated. ``--quick`` runs a few steps
of everything, as a smoke test.

The parts live in tools/benchlib/ (one module each, and the reporting in
benchlib/report.py); this file runs them and prints the results.

Exit status: 0 when every loss check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from benchlib.c_nodes import bench_c
from benchlib.mnist import bench_mnist
from benchlib.moons import bench_moons
from benchlib.report import by_name, c_table, environment, goals, mnist_table, moons_table
from benchlib.runs import compare_losses
from benchlib.systems import torch


def main(argv: Sequence[str] | None = None) -> int:
    """Runs everything, prints the tables and the goals, writes the JSON; returns the
    exit status (0 when every loss check passed)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few steps of everything")
    parser.add_argument("--json", metavar="PATH", help="also write the results here as JSON")
    parser.add_argument("--no-c", action="store_true", help="skip the C benchmark")
    args = parser.parse_args(argv)

    if torch is not None:
        # Every other system here computes on one thread. PyTorch's second thread buys
        # nothing for tensors this small, and on a busy machine a parallel region that
        # waits for a core to come free costs milliseconds.
        torch.set_num_threads(1)
    env = environment()
    moons = bench_moons(args.quick)
    mnist = bench_mnist(args.quick)
    c = {"skipped": "--no-c"} if args.no_c else bench_c(args.quick)

    checks_ok = True
    for runs in (moons, mnist):
        reference = by_name(runs, "micrograd")
        for run in runs:
            if run.name.startswith("microcrad"):
                checks_ok &= compare_losses(run, reference)
            elif run is not reference and not run.skipped:
                # PyTorch sums in other orders (matrix products), so its losses drift
                # from micrograd's by roundings: shown for information, not judged.
                compare_losses(run, reference)
                run.check = "info: " + run.check.split(": ", 1)[-1]
    measured_goals = goals(moons, mnist, c)

    print(f"microcrad {env['microcrad']} ({'quick run' if args.quick else 'full run'}), "
          f"Python {env['python']}, {env.get('cpu', env['machine'])}, {env['cpus']} CPUs; "
          f"micrograd {env['micrograd'] or 'not installed'}, "
          f"PyTorch {env['torch'] or 'not installed'}"
          + (f" on {env['torch_threads']} thread(s)" if env["torch"] else ""))
    print()
    print("\n".join(moons_table(moons)))
    print()
    print("\n".join(mnist_table(mnist)))
    print()
    print("\n".join(c_table(c)))
    print()
    for key, goal in measured_goals.items():
        measured = goal["measured"]
        shown = "-" if measured is None else (f"{measured:,.1f}")
        verdict = "not measured" if goal["met"] is None else ("met" if goal["met"] else "NOT met")
        print(f"goal: {key}: {shown} ({verdict})")
    print(f"loss checks against micrograd: {'PASS' if checks_ok else 'FAIL'}")

    if args.json:
        report = {
            "quick": args.quick,
            "environment": env,
            "moons": [run.as_json() for run in moons],
            "mnist": [run.as_json() for run in mnist],
            "c": c,
            "goals": measured_goals,
            "loss_checks_passed": checks_ok,
        }
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if checks_ok else 1


if __name__ == "__main__":
    sys.exit(main())
