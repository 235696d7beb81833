"""Classify handwritten digits with a small MLP, softmax cross-entropy and Adam.

The data is scikit-learn's bundled 8x8 digits (1797 images, no download): 64 pixel
intensities in 0..16 per image, scaled to [0, 1], and a label 0..9. A quarter of the
images, stratified by digit, is held out; an ``MLP(64, [32, 10])`` (ReLU hidden layer,
one logit per digit) is trained on the rest in mini-batches, and its accuracy on the
held-out images is reported with their confusion matrix. The full run reaches about
97% test accuracy in well under a minute: each neuron is one fused C node, so a
forward pass costs a few C calls per neuron, not two per weight.

Usage::

    python examples/digits.py [--epochs 15] [--batch-size 32] [--lr 0.01]
                              [--hidden 32] [--limit N] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import train_test_split
from tqdm import tqdm

from microcrad.engine import Value
from microcrad.losses import softmax_cross_entropy
from microcrad.nn import MLP
from microcrad.optim import Adam

N_CLASSES = 10


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--epochs", type=int, default=15, help="passes over the training set (default: 15)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=32, help="examples per Adam step (default: 32)"
    )
    parser.add_argument(
        "--lr", type=float, default=0.01, help="Adam's learning rate (default: 0.01)"
    )
    parser.add_argument(
        "--hidden", type=int, default=32, help="neurons in the hidden layer (default: 32)"
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="train on only the first N training images (for a quick run)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the split, the weights and the batches"
    )
    parser.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size", "hidden"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.limit is not None and args.limit < N_CLASSES:
        parser.error(f"--limit must be at least {N_CLASSES}")
    if not args.lr > 0:
        parser.error("--lr must be positive")
    return args


def load(seed: int, limit: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The images scaled to [0, 1] and split 3:1 into training and test sets, each
    digit in the same proportion in both."""
    digits = load_digits()
    X = digits.data / 16.0
    X_train, X_test, y_train, y_test = train_test_split(
        X, digits.target, test_size=0.25, random_state=seed, stratify=digits.target
    )
    if limit is not None:
        X_train, y_train = X_train[:limit], y_train[:limit]
    return X_train, X_test, y_train, y_test


def as_values(X: np.ndarray) -> list[list[Value]]:
    """Every image as a row of leaves, made once instead of at every forward pass."""
    return [[Value(pixel) for pixel in row] for row in X.tolist()]


def logits(model: MLP, row: list[Value]) -> list[Value]:
    """The model's ten outputs for an image."""
    return cast(list[Value], model(row))  # an MLP whose last layer has ten neurons


def predict(model: MLP, rows: list[list[Value]]) -> np.ndarray:
    """The most likely digit for each image."""
    return np.array([int(np.argmax([logit.data for logit in logits(model, row)])) for row in rows])


def format_confusion(matrix: np.ndarray) -> str:
    """The confusion matrix as a table: a row per true digit, a column per prediction."""
    width = max(3, len(str(matrix.max())) + 1)
    header = "true\\pred" + "".join(f"{digit:>{width}}" for digit in range(N_CLASSES))
    rows = [
        f"{digit:>9}" + "".join(f"{count:>{width}}" for count in row)
        for digit, row in enumerate(matrix)
    ]
    return "\n".join([header, *rows])


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Trains and evaluates; returns the mean training loss of each epoch
    (``epoch_losses``), the test accuracy and the confusion matrix."""
    args = parse_args(argv)
    X_train, X_test, y_train, y_test = load(args.seed, args.limit)
    train_rows, test_rows = as_values(X_train), as_values(X_test)
    labels = y_train.tolist()

    random.seed(args.seed)  # the initial weights
    model = MLP(X_train.shape[1], [args.hidden, N_CLASSES])
    optimizer = Adam(model.parameters(), lr=args.lr)
    print(
        f"{len(train_rows)} training and {len(test_rows)} test images; "
        f"MLP(64, [{args.hidden}, {N_CLASSES}]) with {len(model.parameters())} parameters"
    )

    shuffle = np.random.default_rng(args.seed)
    epoch_losses: list[float] = []
    started = time.perf_counter()
    n_batches = -(-len(train_rows) // args.batch_size)
    progress = tqdm(
        total=args.epochs * n_batches, desc="training", unit="batch", disable=args.no_progress
    )
    for epoch in range(args.epochs):
        order = shuffle.permutation(len(train_rows))
        total = 0.0
        for start in range(0, len(order), args.batch_size):
            batch = order[start : start + args.batch_size]
            losses = [softmax_cross_entropy(logits(model, train_rows[i]), labels[i]) for i in batch]
            loss = Value.sum(losses) / len(losses)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.data * len(batch)
            progress.update()
            progress.set_postfix(epoch=epoch + 1, loss=f"{loss.data:.4f}", refresh=False)
        epoch_losses.append(total / len(order))
    progress.close()
    seconds = time.perf_counter() - started

    predicted = predict(model, test_rows)
    accuracy = float(np.mean(predicted == y_test))
    matrix = confusion_matrix(y_test, predicted, labels=range(N_CLASSES))
    print(f"confusion matrix on the {len(test_rows)} test images:")
    print(format_confusion(matrix))
    print(
        f"{args.epochs} epochs in {seconds:.1f} s: training loss {epoch_losses[0]:.4f} -> "
        f"{epoch_losses[-1]:.4f}, test accuracy {accuracy:.1%}"
    )
    return {
        "epoch_losses": epoch_losses,
        "test_accuracy": accuracy,
        "confusion_matrix": matrix,
        "seconds": seconds,
    }


if __name__ == "__main__":
    main(sys.argv[1:])
