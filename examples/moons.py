"""Train a small neural net to separate two interleaved half-moons.

This is micrograd's demo notebook on microcrad: 100 noisy points of scikit-learn's
``make_moons`` in two classes (labels -1 and +1), an ``MLP(2, [16, 16, 1])`` with ReLU
hidden layers, the SVM max-margin loss plus L2 regularisation, and SGD whose learning
rate decays linearly from 1.0 towards 0.1. With the notebook's seed (1337) and 100
steps, every loss is the one micrograd computes, and the net reaches 100% accuracy.

The decision boundary is saved as a PNG.

Usage::

    python examples/moons.py [--steps 100] [--seed 1337] [--output moons.png] [--no-plot]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
from sklearn.datasets import make_moons
from tqdm import tqdm

from microcrad.engine import Value
from microcrad.losses import svm_max_margin
from microcrad.nn import MLP
from microcrad.optim import SGD

ALPHA = 1e-4  # the weight of the L2 regularisation, as in the notebook
GRID_STEP = 0.25  # the spacing of the decision-boundary grid, as in the notebook


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100, help="SGD steps (default: 100)")
    parser.add_argument(
        "--seed", type=int, default=1337, help="seed of the data and the weights (default: 1337)"
    )
    parser.add_argument(
        "--output",
        default="moons.png",
        help="where to save the decision boundary (default: moons.png)",
    )
    parser.add_argument("--no-plot", action="store_true", help="do not save the decision boundary")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    return args


def make_data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The notebook's data set: 100 points, labels -1 and +1.

    Seeds NumPy (which make_moons draws from) and Python's ``random`` (which the MLP's
    initial weights come from) in the notebook's order.
    """
    np.random.seed(seed)
    random.seed(seed)
    X, y = make_moons(n_samples=100, noise=0.1)
    return X, y * 2 - 1


def score(model: MLP, point: np.ndarray) -> Value:
    """The model's one output for a point."""
    return cast(Value, model(point))  # an MLP whose last layer has one neuron


def loss(model: MLP, X: np.ndarray, y: np.ndarray) -> tuple[Value, float]:
    """The notebook's loss over the whole data set, and the accuracy of the scores."""
    scores = [score(model, row) for row in X]
    data_loss = svm_max_margin(scores, y)
    reg_loss = ALPHA * Value.sum([p * p for p in model.parameters()])
    total_loss = data_loss + reg_loss
    accuracy = [(yi > 0) == (score.data > 0) for yi, score in zip(y, scores)]
    return total_loss, sum(accuracy) / len(accuracy)


def save_decision_boundary(model: MLP, X: np.ndarray, y: np.ndarray, path: str, title: str) -> None:
    """Colours the plane by the sign of the model's score, with the data on top."""
    # The object-oriented API draws with the Agg canvas: no display, no global state.
    from matplotlib import cm
    from matplotlib.figure import Figure

    x_min, x_max = X[:, 0].min() - 1, X[:, 0].max() + 1
    y_min, y_max = X[:, 1].min() - 1, X[:, 1].max() + 1
    xx, yy = np.meshgrid(np.arange(x_min, x_max, GRID_STEP), np.arange(y_min, y_max, GRID_STEP))
    mesh = np.c_[xx.ravel(), yy.ravel()]
    Z = np.array([score(model, point).data > 0 for point in mesh]).reshape(xx.shape)

    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    ax.contourf(xx, yy, Z, cmap=cm.Spectral, alpha=0.8)
    ax.scatter(X[:, 0], X[:, 1], c=y, s=40, cmap=cm.Spectral, edgecolors="k", linewidths=0.5)
    ax.set_xlim(xx.min(), xx.max())
    ax.set_ylim(yy.min(), yy.max())
    ax.set_title(title)
    fig.savefig(path, dpi=100, bbox_inches="tight")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs the demo; returns the loss and accuracy before each step (``losses``,
    ``accuracies``), the final ones, and where the picture went (``output``)."""
    args = parse_args(argv)
    X, y = make_data(args.seed)
    model = MLP(2, [16, 16, 1])
    print(f"{model}\nnumber of parameters: {len(model.parameters())}")

    optimizer = SGD(model.parameters(), lr=1.0)
    losses: list[float] = []
    accuracies: list[float] = []
    started = time.perf_counter()
    progress = tqdm(range(args.steps), desc="training", unit="step")
    for k in progress:
        total_loss, accuracy = loss(model, X, y)
        optimizer.zero_grad()
        total_loss.backward()
        # The notebook's schedule (written the same way, so the same doubles): 1.0 at
        # the first step down to 0.1 + 0.9/steps at the last.
        optimizer.lr = 1.0 - 0.9 * k / args.steps
        optimizer.step()
        losses.append(total_loss.data)
        accuracies.append(accuracy)
        progress.set_postfix(
            loss=f"{total_loss.data:.4f}", accuracy=f"{accuracy:.0%}", refresh=False
        )
    progress.close()
    seconds = time.perf_counter() - started

    # The model after the last update.
    final_loss, final_accuracy = loss(model, X, y)
    output = None
    if not args.no_plot:
        output = args.output
        title = f"MLP(2, [16, 16, 1]) after {args.steps} steps: accuracy {final_accuracy:.0%}"
        save_decision_boundary(model, X, y, output, title)
    print(
        f"{args.steps} steps in {seconds:.1f} s: loss {losses[0]:.4f} -> {final_loss.data:.4f}, "
        f"accuracy {final_accuracy:.0%}"
        + (f"; decision boundary saved to {output}" if output else "")
    )
    return {
        "losses": losses,
        "accuracies": accuracies,
        "final_loss": final_loss.data,
        "final_accuracy": final_accuracy,
        "seconds": seconds,
        "output": output,
    }


if __name__ == "__main__":
    main(sys.argv[1:])
