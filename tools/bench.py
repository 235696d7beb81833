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
installed is reported as skipped; nothing is estimated. ``--quick`` runs a few steps of everything, as a smoke test.

Exit status: 0 when every loss check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import microcrad
from microcrad import _lib
from microcrad.engine import Value as McValue
from microcrad.tape import Tape, ValueArray

REPO = Path(__file__).resolve().parent.parent
TOLERANCE = 1e-9  # relative, on each step's loss

try:
    import micrograd
    import micrograd.nn as micrograd_nn
    from micrograd.engine import Value as MgValue
except ImportError:  # reported as skipped
    micrograd = None

try:
    import torch
except ImportError:  # reported as skipped
    torch = None

try:
    from sklearn.datasets import make_moons
except ImportError:  # the moons part needs scikit-learn's data set
    make_moons = None

try:
    from microcrad.losses import svm_max_margin
    from microcrad.nn import MLP as McMLP
    from microcrad.optim import SGD as McSGD
except ImportError:  # reported as skipped
    McMLP = None


# ---------------------------------------------------------------------------------
# micrograd's nn code, for any Value class
# ---------------------------------------------------------------------------------


def micrograd_style_nn(value_class: Callable[[float], Any]) -> type:
    """micrograd 0.1.0's ``nn`` module (Neuron, Layer, MLP), line for line, with
    ``Value`` replaced by ``value_class``: the per-op path runs exactly the code that
    micrograd runs."""

    class Module:
        def zero_grad(self) -> None:
            for p in self.parameters():
                p.grad = 0

        def parameters(self) -> list[Any]:
            return []

    class Neuron(Module):
        def __init__(self, nin: int, nonlin: bool = True) -> None:
            self.w = [value_class(random.uniform(-1, 1)) for _ in range(nin)]
            self.b = value_class(0)
            self.nonlin = nonlin

        def __call__(self, x: Sequence[Any]) -> Any:
            act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
            return act.relu() if self.nonlin else act

        def parameters(self) -> list[Any]:
            return self.w + [self.b]

    class Layer(Module):
        def __init__(self, nin: int, nout: int, **kwargs: Any) -> None:
            self.neurons = [Neuron(nin, **kwargs) for _ in range(nout)]

        def __call__(self, x: Sequence[Any]) -> Any:
            out = [n(x) for n in self.neurons]
            return out[0] if len(out) == 1 else out

        def parameters(self) -> list[Any]:
            return [p for n in self.neurons for p in n.parameters()]

    class MLP(Module):
        def __init__(self, nin: int, nouts: list[int]) -> None:
            sz = [nin] + nouts
            self.layers = [
                Layer(sz[i], sz[i + 1], nonlin=i != len(nouts) - 1) for i in range(len(nouts))
            ]

        def __call__(self, x: Sequence[Any]) -> Any:
            for layer in self.layers:
                x = layer(x)
            return x

        def parameters(self) -> list[Any]:
            return [p for layer in self.layers for p in layer.parameters()]

    return MLP


def torch_scalar(x: float) -> Any:
    """A float64 scalar tensor that requires grad: one autograd node per number."""
    return torch.tensor(float(x), dtype=torch.float64, requires_grad=True)


def micrograd_weights(sizes: Sequence[int]) -> list[tuple[list[list[float]], int]]:
    """The initial weights micrograd's MLP(sizes[0], sizes[1:]) draws from ``random``,
    in its order, as one matrix (rows = neurons) per layer with its output count."""
    layers = []
    for nin, nout in zip(sizes, sizes[1:]):
        layers.append(([[random.uniform(-1, 1) for _ in range(nin)] for _ in range(nout)], nout))
    return layers


# ---------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------


@dataclass
class Run:
    """One variant's measurements: its losses and the time of each step."""

    name: str
    losses: list[float] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    setup: float = 0.0  # one-time work before the first step (recording a tape, ...)
    skipped: str = ""  # why the variant did not run, if it did not
    check: str = ""  # the loss check against micrograd: "", "pass ..." or "FAIL ..."

    @property
    def per_step(self) -> float:
        """The median seconds per step."""
        return statistics.median(self.times) if self.times else math.nan

    def record(self, started: float, loss: float) -> None:
        """Adds a step that began at ``started`` (perf_counter) and had this loss."""
        self.times.append(time.perf_counter() - started)
        self.losses.append(float(loss))

    def as_json(self) -> dict[str, Any]:
        """The run for the JSON report."""
        return {
            "name": self.name,
            "skipped": self.skipped or None,
            "steps": len(self.times),
            "median_step_seconds": None if not self.times else self.per_step,
            "setup_seconds": self.setup,
            "losses": self.losses,
            "check": self.check or None,
        }


def skipped(name: str, why: str) -> Run:
    """A variant that did not run, and why."""
    return Run(name, skipped=why)


def compare_losses(run: Run, reference: Run) -> bool:
    """Checks ``run``'s losses against ``reference``'s for the steps both ran, to
    TOLERANCE (relative); records the verdict in ``run.check``. Returns whether it
    passed (True when there is nothing to compare against)."""
    if run.skipped:
        return True
    if reference.skipped or not reference.losses:
        run.check = f"not checked ({reference.name} did not run)"
        return True
    steps = min(len(run.losses), len(reference.losses))
    worst = 0.0
    for mine, theirs in zip(run.losses[:steps], reference.losses[:steps]):
        worst = max(worst, abs(mine - theirs) / max(1.0, abs(theirs)))
    ok = worst <= TOLERANCE
    run.check = f"{'pass' if ok else 'FAIL'}: {steps} step(s), max rel. diff {worst:.1e}"
    return ok


# ---------------------------------------------------------------------------------
# Part 1: moons
# ---------------------------------------------------------------------------------

MOONS_SEED = 1337
MOONS_SIZES = [2, 16, 16, 1]
ALPHA = 1e-4


def moons_data() -> tuple[np.ndarray, list[int]]:
    """The notebook's data, seeding NumPy and ``random`` in the notebook's order (the
    caller builds the model next, which draws from ``random``). Labels become plain
    ints -1/+1, identical numbers to the notebook's NumPy ints and the same for every
    system."""
    np.random.seed(MOONS_SEED)
    random.seed(MOONS_SEED)
    X, y = make_moons(n_samples=100, noise=0.1)
    return X, [int(v) for v in y * 2 - 1]


def moons_karpathy(value_class: Any, model_class: Callable[..., Any], steps: int, name: str) -> Run:
    """The notebook's training loop, unchanged, for a micrograd-style Value class."""
    X, y = moons_data()
    model = model_class(2, MOONS_SIZES[1:])
    run = Run(name)

    def loss() -> tuple[Any, float]:
        inputs = [list(map(value_class, xrow)) for xrow in X]
        scores = list(map(model, inputs))
        losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        alpha = ALPHA
        reg_loss = alpha * sum((p * p for p in model.parameters()))
        total_loss = data_loss + reg_loss
        accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(y, scores)]
        return total_loss, sum(accuracy) / len(accuracy)

    def step(k: int) -> float:
        total_loss, acc = loss()
        model.zero_grad()
        total_loss.backward()
        learning_rate = 1.0 - 0.9 * k / 100
        for p in model.parameters():
            p.data -= learning_rate * p.grad
        return float(total_loss.data)

    for k in range(steps):
        started = time.perf_counter()
        value = step(k)  # the step's graph is released when step() returns
        run.record(started, value)
    return run


def moons_micrograd(steps: int) -> Run:
    """micrograd itself: micrograd.nn on micrograd.engine.Value."""
    name = "micrograd"
    if micrograd is None:
        return skipped(name, "micrograd is not installed")
    return moons_karpathy(MgValue, micrograd_nn.MLP, steps, name)


def moons_per_op(steps: int) -> Run:
    """The notebook's loop unchanged on microcrad's Value (micrograd's nn code)."""
    return moons_karpathy(McValue, micrograd_style_nn(McValue), steps, "microcrad per-op")


def moons_torch_scalars(steps: int) -> Run:
    """The notebook's loop on float64 scalar tensors: PyTorch building one autograd node
    per number, as micrograd does."""
    name = "PyTorch, one node per number"
    if torch is None:
        return skipped(name, "torch is not installed")
    X, y = moons_data()
    model = micrograd_style_nn(torch_scalar)(2, MOONS_SIZES[1:])
    params = model.parameters()
    run = Run(name)

    def step(k: int) -> float:
        inputs = [[torch.tensor(float(v), dtype=torch.float64) for v in xrow] for xrow in X]
        scores = list(map(model, inputs))
        losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        reg_loss = ALPHA * sum((p * p for p in params))
        total_loss = data_loss + reg_loss
        accuracy = [(yi > 0) == (scorei.item() > 0) for yi, scorei in zip(y, scores)]
        _ = sum(accuracy) / len(accuracy)
        for p in params:
            p.grad = None
        total_loss.backward()
        learning_rate = 1.0 - 0.9 * k / 100
        with torch.no_grad():
            for p in params:
                p -= learning_rate * p.grad
        return total_loss.item()

    for k in range(steps):
        started = time.perf_counter()
        value = step(k)
        run.record(started, value)
    return run


def torch_warm_up(step: Callable[[], object], seconds: float = 1.0) -> float:
    """Runs ``step`` (which must not change the model) until PyTorch's one-time costs
    are paid (its thread pool starting, kernels chosen on first use; the first calls
    take tens of milliseconds here): for ``seconds``, and at least 10 times. Returns
    the time spent, reported as the variant's set-up."""
    started = time.perf_counter()
    count = 0
    while count < 10 or time.perf_counter() - started < seconds:
        step()
        count += 1
    return time.perf_counter() - started


def moons_torch_batched(steps: int) -> Run:
    """The same network and loss on float64 tensors: one matrix product per layer over
    all 100 points, micrograd's initial weights."""
    name = "PyTorch, batched tensors"
    if torch is None:
        return skipped(name, "torch is not installed")
    X, y = moons_data()
    layers = micrograd_weights(MOONS_SIZES)
    weights = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w, _ in layers]
    biases = [torch.zeros(n, dtype=torch.float64, requires_grad=True) for _, n in layers]
    params = [t for pair in zip(weights, biases) for t in pair]
    inputs = torch.tensor(X, dtype=torch.float64)
    labels = torch.tensor(y, dtype=torch.float64)
    run = Run(name)

    def step(k: int, update: bool = True) -> float:
        h = inputs
        for i, (w, b) in enumerate(zip(weights, biases)):
            h = h @ w.T + b
            if i < len(weights) - 1:
                h = h.relu()
        scores = h[:, 0]
        data_loss = (1 - labels * scores).relu().mean()
        reg_loss = ALPHA * sum((p * p).sum() for p in params)
        total_loss = data_loss + reg_loss
        _ = ((labels > 0) == (scores > 0)).double().mean()
        for p in params:
            p.grad = None
        total_loss.backward()
        if update:
            learning_rate = 1.0 - 0.9 * k / 100
            with torch.no_grad():
                for p in params:
                    p -= learning_rate * p.grad
        return total_loss.item()

    run.setup = torch_warm_up(lambda: step(0, update=False))
    for k in range(steps):
        started = time.perf_counter()
        value = step(k)
        run.record(started, value)
    return run


def fused_moons_loss(model: Any, X: np.ndarray, y: list[int]) -> tuple[McValue, list[McValue]]:
    """The notebook's loss written with microcrad's fused pieces: one node per neuron
    (microcrad.nn), the loss from microcrad.losses, one n-ary sum for the L2 term.
    Returns the loss and the scores."""
    scores = [model(xrow) for xrow in X]  # numbers become leaves inside the network
    data_loss = svm_max_margin(scores, y)
    reg_loss = ALPHA * McValue.sum([p * p for p in model.parameters()])
    return data_loss + reg_loss, scores


def moons_fused(steps: int) -> Run:
    """microcrad.nn (one node per neuron), microcrad.losses and microcrad.optim.SGD;
    the graph is built every step."""
    name = "microcrad fused nn"
    if McMLP is None or make_moons is None:
        return skipped(name, "microcrad.nn, microcrad.optim or microcrad.losses is missing")
    X, y = moons_data()
    model = McMLP(2, MOONS_SIZES[1:])
    optimizer = McSGD(model.parameters(), lr=1.0)
    run = Run(name)

    def step(k: int) -> float:
        total_loss, scores = fused_moons_loss(model, X, y)
        accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(y, scores)]
        _ = sum(accuracy) / len(accuracy)
        optimizer.zero_grad()
        total_loss.backward()
        optimizer.lr = 1.0 - 0.9 * k / 100
        optimizer.step()
        return total_loss.data

    for k in range(steps):
        started = time.perf_counter()
        value = step(k)
        run.record(started, value)
    optimizer.close()
    return run


def step_and_zero_grad(optimizer: Any) -> Callable[[], None]:
    """One C call that updates every parameter and zeroes its gradient (the next
    replayed backward accumulates into the leaves)."""
    return optimizer.step_zero_grad  # type: ignore[no-any-return]


def moons_replay(steps: int) -> Run:
    """The loss graph built once (as the fused variant builds it) and replayed: per
    step one forward, one backward and one fused update-and-zero of the parameters."""
    name = "microcrad replay"
    if McMLP is None or make_moons is None:
        return skipped(name, "microcrad.nn, microcrad.optim or microcrad.losses is missing")
    X, y = moons_data()
    model = McMLP(2, MOONS_SIZES[1:])
    optimizer = McSGD(model.parameters(), lr=1.0)
    run = Run(name)
    started = time.perf_counter()
    total_loss, scores = fused_moons_loss(model, X, y)
    tape = Tape(total_loss)
    score_array = ValueArray(scores)
    update = step_and_zero_grad(optimizer)
    optimizer.zero_grad()
    run.setup = time.perf_counter() - started

    for k in range(steps):
        started = time.perf_counter()
        tape.forward()
        loss = tape.data
        accuracy = [(yi > 0) == (s > 0) for yi, s in zip(y, score_array.data())]
        _ = sum(accuracy) / len(accuracy)
        tape.backward()
        optimizer.lr = 1.0 - 0.9 * k / 100
        update()
        run.record(started, loss)
    tape.close()
    optimizer.close()
    return run


def bench_moons(quick: bool) -> list[Run]:
    """Every moons variant, with the loss check against micrograd."""
    if make_moons is None:
        why = "scikit-learn (make_moons) is not installed"
        names = [
            "micrograd",
            "PyTorch, one node per number",
            "PyTorch, batched tensors",
            "microcrad per-op",
            "microcrad fused nn",
            "microcrad replay",
        ]
        return [skipped(name, why) for name in names]
    steps = (
        {"mg": 1, "ts": 1, "tb": 20, "op": 3, "fu": 5, "re": 20}
        if quick
        else {"mg": 3, "ts": 3, "tb": 100, "op": 20, "fu": 100, "re": 100}
    )
    runs = []
    for label, bench, n in [
        ("micrograd", moons_micrograd, steps["mg"]),
        ("torch scalars", moons_torch_scalars, steps["ts"]),
        ("torch batched", moons_torch_batched, steps["tb"]),
        ("microcrad per-op", moons_per_op, steps["op"]),
        ("microcrad fused", moons_fused, steps["fu"]),
        ("microcrad replay", moons_replay, steps["re"]),
    ]:
        progress(f"moons: {label}, {n} step(s)")
        gc.collect()
        runs.append(bench(n))
    return runs


# ---------------------------------------------------------------------------------
# Part 2: an MNIST-shaped network
# ---------------------------------------------------------------------------------

MNIST_SIZES = [784, 50, 10]
MNIST_LR = 1e-3
MNIST_SEED = 0
MNIST_POOL = 3000  # examples drawn; each variant trains on the first ones


def mnist_data(count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` synthetic examples: 784 pixels in [0, 1) and a label 0-9
    each. Always drawn as one pool of MNIST_POOL, so that every variant sees the same
    examples however many it uses."""
    if count > MNIST_POOL:
        raise ValueError(f"at most {MNIST_POOL} examples, not {count}")
    rng = np.random.default_rng(MNIST_SEED)
    pixels, labels = rng.random((MNIST_POOL, MNIST_SIZES[0])), rng.integers(0, 10, MNIST_POOL)
    return pixels[:count], labels[:count]


def hinge_loss(scores: Sequence[Any], targets: Sequence[Any]) -> Any:
    """The multiclass hinge loss sum_j (1 - t_j) * relu(s_j - s_y + 1), with the label y
    given as one-hot targets t (Values, or numbers), so that the graph's shape does not
    depend on the label and a recorded graph serves every example, the targets being
    leaves that are set anew. Only micrograd's operations; s_y = sum_j t_j * s_j is
    exact (the other terms are zeros)."""
    s_y = sum((tj * sj for tj, sj in zip(targets, scores)), 0.0)
    return sum(((1 - tj) * (sj - s_y + 1).relu() for tj, sj in zip(targets, scores)), 0.0)


def one_hot(label: int) -> list[float]:
    """The targets of an example of class ``label``."""
    return [1.0 if j == label else 0.0 for j in range(MNIST_SIZES[-1])]


def mnist_per_image(value_class: Any, model_class: Callable[..., Any], images: int, name: str) -> Run:
    """micrograd-style SGD, one image per step, for a micrograd-style Value class."""
    pixels, labels = mnist_data(images)
    random.seed(MNIST_SEED)
    model = model_class(MNIST_SIZES[0], MNIST_SIZES[1:])
    run = Run(name)

    def step(i: int) -> float:
        x = [value_class(float(p)) for p in pixels[i]]
        t = [value_class(v) for v in one_hot(int(labels[i]))]
        loss = hinge_loss(model(x), t)
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= MNIST_LR * p.grad
        return float(loss.data)

    for i in range(images):
        started = time.perf_counter()
        value = step(i)
        run.record(started, value)
    return run


def mnist_micrograd(images: int) -> Run:
    """micrograd itself, one image per step."""
    name = "micrograd"
    if micrograd is None:
        return skipped(name, "micrograd is not installed")
    return mnist_per_image(MgValue, micrograd_nn.MLP, images, name)


def mnist_per_op(images: int) -> Run:
    """micrograd's nn code on microcrad's Value, one image per step."""
    return mnist_per_image(McValue, micrograd_style_nn(McValue), images, "microcrad per-op")


def mnist_torch(images: int) -> Run:
    """PyTorch on float64 tensors, one image per step (a batch of one)."""
    name = "PyTorch, tensors (batch of 1)"
    if torch is None:
        return skipped(name, "torch is not installed")
    pixels, labels = mnist_data(images)
    random.seed(MNIST_SEED)
    layers = micrograd_weights(MNIST_SIZES)
    weights = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w, _ in layers]
    biases = [torch.zeros(n, dtype=torch.float64, requires_grad=True) for _, n in layers]
    params = [t for pair in zip(weights, biases) for t in pair]
    images_t = torch.tensor(pixels, dtype=torch.float64)
    targets_t = torch.tensor([one_hot(int(v)) for v in labels], dtype=torch.float64)
    run = Run(name)

    def step(i: int, update: bool = True) -> float:
        h = images_t[i]
        for j, (w, b) in enumerate(zip(weights, biases)):
            h = w @ h + b
            if j < len(weights) - 1:
                h = h.relu()
        t = targets_t[i]
        s_y = (t * h).sum()
        loss = ((1 - t) * (h - s_y + 1).relu()).sum()
        for p in params:
            p.grad = None
        loss.backward()
        if update:
            with torch.no_grad():
                for p in params:
                    p -= MNIST_LR * p.grad
        return loss.item()

    run.setup = torch_warm_up(lambda: step(0, update=False))
    for i in range(images):
        started = time.perf_counter()
        value = step(i)
        run.record(started, value)
    return run


def mnist_fused(images: int) -> Run:
    """microcrad.nn and microcrad.optim.SGD, the graph built for every image."""
    name = "microcrad fused nn"
    if McMLP is None:
        return skipped(name, "microcrad.nn or microcrad.optim is missing")
    pixels, labels = mnist_data(images)
    random.seed(MNIST_SEED)
    model = McMLP(MNIST_SIZES[0], MNIST_SIZES[1:])
    optimizer = McSGD(model.parameters(), lr=MNIST_LR)
    run = Run(name)

    def step(i: int) -> float:
        # Numbers, not Values: the network makes its inputs leaves in one go, and the
        # targets enter the loss as constants (the same arithmetic, so the same loss).
        loss = hinge_loss(model(pixels[i]), one_hot(int(labels[i])))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.data

    for i in range(images):
        started = time.perf_counter()
        value = step(i)
        run.record(started, value)
    optimizer.close()
    return run


def mnist_replay(images: int) -> Run:
    """The graph built once over input and target leaves, then per image: the leaves
    set in one call each, one forward, one backward, one fused update-and-zero."""
    name = "microcrad replay"
    if McMLP is None:
        return skipped(name, "microcrad.nn or microcrad.optim is missing")
    pixels, labels = mnist_data(images)
    targets = np.array([one_hot(int(v)) for v in labels])
    random.seed(MNIST_SEED)
    model = McMLP(MNIST_SIZES[0], MNIST_SIZES[1:])
    optimizer = McSGD(model.parameters(), lr=MNIST_LR)
    run = Run(name)
    started = time.perf_counter()
    x = [McValue(0.0) for _ in range(MNIST_SIZES[0])]
    t = [McValue(0.0) for _ in range(MNIST_SIZES[-1])]
    tape = Tape(hinge_loss(model(x), t))
    inputs, onehots = ValueArray(x), ValueArray(t)
    update = step_and_zero_grad(optimizer)
    optimizer.zero_grad()
    run.setup = time.perf_counter() - started

    for i in range(images):
        started = time.perf_counter()
        inputs.set_data(pixels[i])
        onehots.set_data(targets[i])
        tape.forward()
        loss = tape.data
        tape.backward()
        update()
        run.record(started, loss)
    tape.close()
    optimizer.close()
    return run


def bench_mnist(quick: bool) -> list[Run]:
    """Every MNIST-shaped variant (the loss check is made by the caller)."""
    images = (
        {"mg": 1, "to": 20, "op": 2, "fu": 10, "re": 200}
        if quick
        else {"mg": 3, "to": 300, "op": 10, "fu": 100, "re": 3000}
    )
    runs = []
    for label, bench, n in [
        ("micrograd", mnist_micrograd, images["mg"]),
        ("torch", mnist_torch, images["to"]),
        ("microcrad per-op", mnist_per_op, images["op"]),
        ("microcrad fused", mnist_fused, images["fu"]),
        ("microcrad replay", mnist_replay, images["re"]),
    ]:
        progress(f"mnist: {label}, {n} image(s)")
        gc.collect()
        runs.append(bench(n))
    return runs


# ---------------------------------------------------------------------------------
# Part 3: C alone
# ---------------------------------------------------------------------------------


def bench_c(quick: bool) -> dict[str, Any]:
    """Builds tools/bench_nodes.c with CMake's release preset and runs it."""
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


# ---------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------


def progress(message: str) -> None:
    """Reports what is running, on stderr (the tables go to stdout)."""
    print(f"... {message}", file=sys.stderr, flush=True)


def format_time(seconds: float) -> str:
    """A duration in s, ms or µs, whichever reads best."""
    if math.isnan(seconds):
        return "-"
    if seconds >= 1.0:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.0f} µs"


def format_ratio(ratio: float) -> str:
    """A speed-up as "12.3x"; a slow-down as "1/12.3" (that many times slower)."""
    if math.isnan(ratio):
        return "-"
    if ratio < 0.95:
        return "1/" + format_ratio(1.0 / ratio).rstrip("x")
    if ratio >= 100:
        return f"{ratio:,.0f}x"
    return f"{ratio:.1f}x"


def ratio(slow: Run, fast: Run) -> float:
    """How many times faster per step ``fast`` is than ``slow`` (NaN if either did not
    run)."""
    if slow.skipped or fast.skipped or not slow.times or not fast.times:
        return math.nan
    return slow.per_step / fast.per_step


def by_name(runs: list[Run], name: str) -> Run:
    """The run called ``name``."""
    return next(run for run in runs if run.name == name)


def moons_table(runs: list[Run]) -> list[str]:
    """The moons results as the lines of a Markdown table."""
    reference = by_name(runs, "micrograd")
    batched = by_name(runs, "PyTorch, batched tensors")
    lines = [
        "| moons step (100 points, MLP(2, [16, 16, 1])) | time per step | vs micrograd "
        "| vs PyTorch batched | losses vs micrograd |",
        "|---|---:|---:|---:|---|",
    ]
    for run in runs:
        if run.skipped:
            lines.append(f"| {run.name} | skipped: {run.skipped} | | | |")
            continue
        check = run.check or ("reference" if run is reference else "")
        time_text = format_time(run.per_step)
        if run.setup:
            time_text += f" (+ {format_time(run.setup)} once)"
        lines.append(
            f"| {run.name} | {time_text} | {format_ratio(ratio(reference, run))} "
            f"| {format_ratio(ratio(batched, run))} | {check} |"
        )
    return lines


def mnist_table(runs: list[Run]) -> list[str]:
    """The MNIST-shaped results as the lines of a Markdown table."""
    reference = by_name(runs, "micrograd")
    lines = [
        "| MLP(784, [50, 10]), one image per SGD step | images/s | time per image "
        "| vs micrograd | losses vs micrograd |",
        "|---|---:|---:|---:|---|",
    ]
    for run in runs:
        if run.skipped:
            lines.append(f"| {run.name} | skipped: {run.skipped} | | | |")
            continue
        check = run.check or ("reference" if run is reference else "")
        lines.append(
            f"| {run.name} | {1.0 / run.per_step:,.1f} | {format_time(run.per_step)} "
            f"| {format_ratio(ratio(reference, run))} | {check} |"
        )
    return lines


def c_table(c: dict[str, Any]) -> list[str]:
    """bench_nodes's results as the lines of a Markdown table."""
    if "skipped" in c:
        return [f"C benchmark skipped: {c['skipped']}"]
    lines = [
        "| C, ns per node | build | backward | release | total |",
        "|---|---:|---:|---:|---:|",
    ]
    rows = [
        ("chain_cold", f"chain of {c['chain_nodes']:,} links, fresh memory"),
        ("chain_warm", f"chain of {c['chain_nodes']:,} links, warm pool (median)"),
        ("wide_warm", f"balanced tree over {c['wide_leaves']:,} leaves, warm pool (median)"),
    ]
    for key, label in rows:
        r = c[key]
        lines.append(
            f"| {label} | {r['build_ns']:.1f} | {r['backward_ns']:.1f} "
            f"| {r['release_ns']:.1f} | {r['total_ns']:.1f} |"
        )
    lines.append(
        f"| bytes per binary node | {c['binary_node_bytes']} (struct "
        f"{c['value_struct_bytes']} + 2 operand pointers) | resident-set growth "
        f"{c['rss_bytes_per_chain_node']:.1f} per chain node | | |"
    )
    return lines


def targets(moons: list[Run], mnist: list[Run], c: dict[str, Any]) -> dict[str, Any]:
    """The goals of the fast paths, measured in this run."""
    mg = by_name(moons, "micrograd")
    result = {
        "moons per-op vs micrograd >= 10x": ratio(mg, by_name(moons, "microcrad per-op")),
        "moons fused nn vs micrograd >= 100x": ratio(mg, by_name(moons, "microcrad fused nn")),
        "moons replay vs PyTorch batched > 1x": ratio(
            by_name(moons, "PyTorch, batched tensors"), by_name(moons, "microcrad replay")
        ),
        "MNIST replay vs micrograd >= 7500x": ratio(
            by_name(mnist, "micrograd"), by_name(mnist, "microcrad replay")
        ),
    }
    goals = {
        "moons per-op vs micrograd >= 10x": 10.0,
        "moons fused nn vs micrograd >= 100x": 100.0,
        "moons replay vs PyTorch batched > 1x": 1.0,
        "MNIST replay vs micrograd >= 7500x": 7500.0,
    }
    out: dict[str, Any] = {}
    for key, value in result.items():
        out[key] = {
            "measured": None if math.isnan(value) else value,
            "met": None if math.isnan(value) else value >= goals[key],
        }
    if "skipped" not in c:
        total = c["chain_warm"]["total_ns"]
        out["C chain <= 20 ns per node (warm)"] = {"measured": total, "met": total <= 20.0}
        size = c["binary_node_bytes"]
        out["C binary node <= 64 bytes"] = {"measured": size, "met": size <= 64}
    return out


def environment() -> dict[str, Any]:
    """Versions and machine, for the report."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpus": os.cpu_count(),
        "microcrad": microcrad.__version__,
        "microcrad_library": _lib.c._name,
        "direct_data_access": _lib.DIRECT_ACCESS,
        "micrograd": getattr(micrograd, "__version__", "installed") if micrograd else None,
        "torch": torch.__version__ if torch else None,
        "torch_threads": torch.get_num_threads() if torch else None,
    }
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


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
    goals = targets(moons, mnist, c)

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
    for key, goal in goals.items():
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
            "goals": goals,
            "loss_checks_passed": checks_ok,
        }
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if checks_ok else 1


if __name__ == "__main__":
    sys.exit(main())
