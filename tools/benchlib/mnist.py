"""Part 2, an MNIST-shaped network: MLP(784, [50, 10]) trained one image at a time on
synthetic data (random 784-pixel images, 10 classes) with a multiclass hinge loss
written in micrograd's operations (micrograd has no exp or log)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
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
    micrograd,
    micrograd_nn,
    torch,
    torch_mlp,
    torch_sgd_update,
    torch_warm_up,
)

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

    def step(i: int) -> float:
        x = [value_class(float(p)) for p in pixels[i]]
        t = [value_class(v) for v in one_hot(int(labels[i]))]
        loss = hinge_loss(model(x), t)
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= MNIST_LR * p.grad
        return float(loss.data)

    return Run(name).time_steps(step, images)


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
    weights, biases = torch_mlp(micrograd_weights(MNIST_SIZES))
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
            torch_sgd_update(params, MNIST_LR)
        return loss.item()

    run.setup = torch_warm_up(lambda: step(0, update=False))
    return run.time_steps(step, images)


def mnist_fused(images: int) -> Run:
    """microcrad.nn and microcrad.optim.SGD, the graph built for every image."""
    name = "microcrad fused nn"
    if McMLP is None:
        return skipped(name, "microcrad.nn or microcrad.optim is missing")
    pixels, labels = mnist_data(images)
    random.seed(MNIST_SEED)
    model = McMLP(MNIST_SIZES[0], MNIST_SIZES[1:])
    optimizer = McSGD(model.parameters(), lr=MNIST_LR)

    def step(i: int) -> float:
        # Numbers, not Values: the network makes its inputs leaves in one go, and the
        # targets enter the loss as constants (the same arithmetic, so the same loss).
        loss = hinge_loss(model(pixels[i]), one_hot(int(labels[i])))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.data

    run = Run(name).time_steps(step, images)
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
    optimizer.zero_grad()
    run.setup = time.perf_counter() - started

    def step(i: int) -> float:
        inputs.set_data(pixels[i])
        onehots.set_data(targets[i])
        tape.forward()
        loss = tape.data
        tape.backward()
        optimizer.step_zero_grad()
        return loss

    run.time_steps(step, images)
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
    return run_variants(
        "mnist",
        "image",
        [
            ("micrograd", mnist_micrograd, images["mg"]),
            ("torch", mnist_torch, images["to"]),
            ("microcrad per-op", mnist_per_op, images["op"]),
            ("microcrad fused", mnist_fused, images["fu"]),
            ("microcrad replay", mnist_replay, images["re"]),
        ],
    )
