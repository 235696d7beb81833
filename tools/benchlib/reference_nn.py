"""micrograd's nn code for any Value class, and the initial weights it draws: what the
per-op variants run, and what the tensor variants start from."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any


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


def micrograd_weights(sizes: Sequence[int]) -> list[tuple[list[list[float]], int]]:
    """The initial weights micrograd's MLP(sizes[0], sizes[1:]) draws from ``random``,
    in its order, as one matrix (rows = neurons) per layer with its output count."""
    layers = []
    for nin, nout in zip(sizes, sizes[1:]):
        layers.append(([[random.uniform(-1, 1) for _ in range(nin)] for _ in range(nout)], nout))
    return layers
