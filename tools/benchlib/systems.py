"""The systems compared, each imported if it is installed (None otherwise: the
variants that need it are reported as skipped), and PyTorch's shared set-up."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import microcrad
from microcrad.engine import Value as McValue
from microcrad.tape import Tape, ValueArray

try:
    import micrograd
    import micrograd.nn as micrograd_nn
    from micrograd.engine import Value as MgValue
except ImportError:
    micrograd = None
    micrograd_nn = None
    MgValue = None

try:
    import torch
except ImportError:
    torch = None

try:
    from sklearn.datasets import make_moons
except ImportError:  # the moons part needs scikit-learn's data set
    make_moons = None

try:
    from microcrad.losses import svm_max_margin
    from microcrad.nn import MLP as McMLP
    from microcrad.optim import SGD as McSGD
except ImportError:
    McMLP = None
    McSGD = None
    svm_max_margin = None

__all__ = [
    "microcrad",
    "McValue",
    "Tape",
    "ValueArray",
    "micrograd",
    "micrograd_nn",
    "MgValue",
    "torch",
    "make_moons",
    "McMLP",
    "McSGD",
    "svm_max_margin",
    "torch_scalar",
    "torch_mlp",
    "torch_sgd_update",
    "torch_warm_up",
]


def torch_scalar(x: float) -> Any:
    """A float64 scalar tensor that requires grad: one autograd node per number."""
    return torch.tensor(float(x), dtype=torch.float64, requires_grad=True)


def torch_mlp(layers: Sequence[tuple[list[list[float]], int]]) -> tuple[list[Any], list[Any]]:
    """Float64 weight matrices (given, as ``micrograd_weights`` draws them) and zero
    biases that require grad, one pair per layer: ``(weights, biases)``."""
    weights = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w, _ in layers]
    biases = [torch.zeros(n, dtype=torch.float64, requires_grad=True) for _, n in layers]
    return weights, biases


def torch_sgd_update(params: Sequence[Any], learning_rate: float) -> None:
    """``p -= learning_rate * p.grad`` for every parameter, outside autograd."""
    with torch.no_grad():
        for p in params:
            p -= learning_rate * p.grad


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
