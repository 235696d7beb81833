"""Part 1, moons: the training step of micrograd's demo notebook, timed per step for
micrograd, PyTorch (one node per number, and batched tensors) and microcrad (per-op,
fused nn, replay).

The notebook's set-up: 100 points of ``make_moons(n_samples=100, noise=0.1)`` after
seeding NumPy and ``random`` with 1337, ``MLP(2, [16, 16, 1])``, SVM max-margin loss
plus 1e-4 L2, SGD with learning rate ``1.0 - 0.9*k/100``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchlib.reference_nn import micrograd_style_nn, micrograd_weights
from benchlib.runs import Run, run_variants, skipped
from benchlib.systems import (
    McMLP,
    McSGD,
    McValue,
    MgValue,
    Tape,
    ValueArray,
    make_moons,
    micrograd,
    micrograd_nn,
    svm_max_margin,
    torch,
    torch_mlp,
    torch_scalar,
    torch_sgd_update,
    torch_warm_up,
)

MOONS_SEED = 1337
MOONS_SIZES = [2, 16, 16, 1]
ALPHA = 1e-4

# The names of the variants, in the order of the table.
NAMES = [
    "micrograd",
    "PyTorch, one node per number",
    "PyTorch, batched tensors",
    "microcrad per-op",
    "microcrad fused nn",
    "microcrad replay",
]


def lr_at(k: int) -> float:
    """The notebook's learning rate at step ``k``."""
    return 1.0 - 0.9 * k / 100


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

    return Run(name).time_steps(step, steps)


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
        torch_sgd_update(params, lr_at(k))
        return total_loss.item()

    return Run(name).time_steps(step, steps)


def moons_torch_batched(steps: int) -> Run:
    """The same network and loss on float64 tensors: one matrix product per layer over
    all 100 points, micrograd's initial weights."""
    name = "PyTorch, batched tensors"
    if torch is None:
        return skipped(name, "torch is not installed")
    X, y = moons_data()
    weights, biases = torch_mlp(micrograd_weights(MOONS_SIZES))
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
            torch_sgd_update(params, lr_at(k))
        return total_loss.item()

    run.setup = torch_warm_up(lambda: step(0, update=False))
    return run.time_steps(step, steps)


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
    if McMLP is None:
        return skipped(name, "microcrad.nn, microcrad.optim or microcrad.losses is missing")
    X, y = moons_data()
    model = McMLP(2, MOONS_SIZES[1:])
    optimizer = McSGD(model.parameters(), lr=1.0)

    def step(k: int) -> float:
        total_loss, scores = fused_moons_loss(model, X, y)
        accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(y, scores)]
        _ = sum(accuracy) / len(accuracy)
        optimizer.zero_grad()
        total_loss.backward()
        optimizer.lr = lr_at(k)
        optimizer.step()
        return total_loss.data

    run = Run(name).time_steps(step, steps)
    optimizer.close()
    return run


def moons_replay(steps: int) -> Run:
    """The loss graph built once (as the fused variant builds it) and replayed: per
    step one forward, one backward and one C call that updates every parameter and
    zeroes its gradient (the next backward accumulates into the leaves)."""
    name = "microcrad replay"
    if McMLP is None:
        return skipped(name, "microcrad.nn, microcrad.optim or microcrad.losses is missing")
    X, y = moons_data()
    model = McMLP(2, MOONS_SIZES[1:])
    optimizer = McSGD(model.parameters(), lr=1.0)
    run = Run(name)
    started = time.perf_counter()
    total_loss, scores = fused_moons_loss(model, X, y)
    tape = Tape(total_loss)
    score_array = ValueArray(scores)
    optimizer.zero_grad()
    run.setup = time.perf_counter() - started

    def step(k: int) -> float:
        tape.forward()
        loss = tape.data
        accuracy = [(yi > 0) == (s > 0) for yi, s in zip(y, score_array.data())]
        _ = sum(accuracy) / len(accuracy)
        tape.backward()
        optimizer.lr = lr_at(k)
        optimizer.step_zero_grad()
        return loss

    run.time_steps(step, steps)
    tape.close()
    optimizer.close()
    return run


def bench_moons(quick: bool) -> list[Run]:
    """Every moons variant (the loss check is made by the caller)."""
    if make_moons is None:
        why = "scikit-learn (make_moons) is not installed"
        return [skipped(name, why) for name in NAMES]
    steps = (
        {"mg": 1, "ts": 1, "tb": 20, "op": 3, "fu": 5, "re": 20}
        if quick
        else {"mg": 3, "ts": 3, "tb": 100, "op": 20, "fu": 100, "re": 100}
    )
    return run_variants(
        "moons",
        "step",
        [
            ("micrograd", moons_micrograd, steps["mg"]),
            ("torch scalars", moons_torch_scalars, steps["ts"]),
            ("torch batched", moons_torch_batched, steps["tb"]),
            ("microcrad per-op", moons_per_op, steps["op"]),
            ("microcrad fused", moons_fused, steps["fu"]),
            ("microcrad replay", moons_replay, steps["re"]),
        ],
    )
