"""Neural networks: a drop-in replacement for micrograd's ``micrograd.nn``.

``Module``, ``Neuron``, ``Layer`` and ``MLP`` behave as micrograd's do: the same
constructors, the same ``repr``, the same parameters in the same order and, after the
same ``random.seed``, the same initial weights (each weight is one
``random.uniform(-1, 1)`` call, in micrograd's order; biases start at 0). Outputs are
bit-for-bit micrograd's.

The difference is in the graph a neuron builds: micrograd makes 2n nodes for
``b + w[0]*x[0] + ... + w[n-1]*x[n-1]``, a product and a sum for each input; here it
is one fused C node (``value_neuron``, which rounds the same operations in the same
order), followed by the activation node. Forward and backward passes then cost a few
C calls per neuron instead of thousands of Python-level operations per layer.

Beyond micrograd, a neuron's non-linearity can be chosen::

    MLP(2, [16, 16, 1], activation="tanh")   # tanh hidden layers, a linear output
    Neuron(3, activation="sigmoid")
"""

from __future__ import annotations

import copy
import numbers
import random
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn, Union

from microcrad import _lib
from microcrad.engine import Value, _adopt

__all__ = ["Module", "Neuron", "Layer", "MLP", "ACTIVATIONS"]

# The activations a neuron can apply, by name, as the library's op codes (OP_LEAF
# stands for "none").
_ACTIVATION_OPS = {
    "relu": _lib.OP_RELU,
    "tanh": _lib.OP_TANH,
    "sigmoid": _lib.OP_SIGMOID,
    "linear": _lib.OP_LEAF,
}
ACTIVATIONS: tuple[str, ...] = tuple(_ACTIVATION_OPS)

# How a neuron's repr names its activation: micrograd's "ReLUNeuron(3)" and
# "LinearNeuron(3)", and likewise for the others.
_REPR_NAMES = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "linear": "Linear"}

Input = Union[Value, int, float, numbers.Real]


def _check_activation(activation: object) -> str:
    if not isinstance(activation, str):
        raise TypeError(f"activation must be a str, not {type(activation).__name__!r}")
    if activation not in _ACTIVATION_OPS:
        known = ", ".join(repr(name) for name in ACTIVATIONS)
        raise ValueError(f"unknown activation {activation!r}; choose one of {known}")
    return activation


def _check_count(count: object, name: str, minimum: int) -> int:
    # bool is an int to Python, but Neuron(True) is surely a mistake.
    if not isinstance(count, numbers.Integral) or isinstance(count, bool):
        raise TypeError(f"{name} must be an int, not {type(count).__name__!r}")
    if count < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {count}")
    return int(count)


def _input_leaf(xi: object) -> Value | None:
    """A number input as a new leaf, as micrograd wraps it in a Value (None for what is
    not a number)."""
    if isinstance(xi, numbers.Real):
        return _adopt(_lib.leaf(float(xi)))
    return None


def _bad_input(xi: object) -> TypeError:
    return TypeError(f"an input must be a Value or a number, not {type(xi).__name__!r}")


def _inputs(x: Iterable[Input]) -> _lib.PinnedNodes:
    """A neuron's inputs as a C array, made once per layer call and shared by its
    neurons; it holds the Values (numbers become new leaves) while it is in use."""
    if isinstance(x, Value):
        raise TypeError("the inputs must be a sequence of Values or numbers, not one Value")
    return _lib.pin(x, Value, _input_leaf, _bad_input)


class Module:
    """The base class of networks: something with parameters that can be trained.

    ``copy.copy`` gives a module sharing the parameters, ``copy.deepcopy`` one with
    parameters of its own (trainable without touching the original's). Pickling raises
    TypeError: the parameters are Values, handles of nodes in the C library's memory.
    """

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __copy__(self) -> Module:
        clone = type(self).__new__(type(self))
        clone.__setstate__(self.__getstate__())
        return clone

    def __deepcopy__(self, memo: dict[int, Any]) -> Module:
        clone = type(self).__new__(type(self))
        memo[id(self)] = clone
        clone.__setstate__(copy.deepcopy(self.__getstate__(), memo))
        return clone

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError(
            f"cannot pickle a microcrad {type(self).__name__}: its parameters are Values, "
            f"handles of nodes in the C library's memory; save "
            f"[p.data for p in model.parameters()] and load them into a new model instead"
        )

    def __reduce__(self) -> NoReturn:
        self.__reduce_ex__(None)

    def zero_grad(self) -> None:
        """Sets the gradient of every parameter to 0."""
        for p in self.parameters():
            p.grad = 0

    def parameters(self) -> list[Value]:
        """The trainable Values, in a fixed order."""
        return []


class Neuron(Module):
    """``act(b + w[0]*x[0] + ... + w[nin-1]*x[nin-1])``.

    Args:
        nin: the number of inputs. The weights are drawn, in order, from
            ``random.uniform(-1, 1)``; the bias starts at 0.
        nonlin: whether to apply the activation (micrograd's flag); False makes the
            neuron linear.
        activation: ``"relu"`` (micrograd's), ``"tanh"``, ``"sigmoid"`` or
            ``"linear"``.

    Raises:
        TypeError: nin is not an int or activation is not a str.
        ValueError: nin is negative or the activation is unknown.
    """

    w: list[Value]
    b: Value

    def __init__(self, nin: int, nonlin: bool = True, activation: str = "relu") -> None:
        nin = _check_count(nin, "nin", 0)
        self.activation = _check_activation(activation)
        self.w = [Value(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(0)
        self.nonlin = nonlin
        self._held_w: list[Value] = []
        self._held_b: Value | None = None
        self._params: _lib.NodeArray | None = self._pack()

    def _pack(self) -> _lib.NodeArray:
        """The parameters as the C array that value_neuron takes, remembering which
        Values it was made from."""
        w, b = self.w, self.b
        if not all(isinstance(wi, Value) for wi in w) or not isinstance(b, Value):
            raise TypeError("a neuron's weights and bias must be Values")
        params = _lib.NodeArray(_lib.pin([*w, b], Value))
        self._held_w, self._held_b = list(w), b
        return params

    def _forward(self, inputs: _lib.PinnedNodes) -> Value:
        # micrograd's w and b are plain attributes that code may replace; the cached
        # array follows such a change. Comparing the lists costs little: their items
        # are compared by identity first.
        params = self._params
        if params is None or self.w != self._held_w or self.b is not self._held_b:
            params = self._params = self._pack()
        activation = _ACTIVATION_OPS[self.activation] if self.nonlin else _lib.OP_LEAF
        return _adopt(_lib.neuron_forward(params, inputs, activation))

    # Copies (copy.copy, copy.deepcopy) leave the C array out and build their own on
    # their first call: a deep copy has new parameters, which the array must point to.
    _CACHE = ("_held_w", "_held_b", "_params")

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in self._CACHE}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._held_w, self._held_b, self._params = [], None, None

    def __call__(self, x: Iterable[Input]) -> Value:
        """The neuron's output for the inputs ``x``: Values, or numbers (which become
        leaves).

        Raises:
            TypeError: an input is neither a Value nor a number.
            ValueError: ``x`` does not have ``nin`` items (micrograd would silently
                use only the first ones).
        """
        return self._forward(_inputs(x))

    def parameters(self) -> list[Value]:
        """The weights, then the bias."""
        return self.w + [self.b]

    def __repr__(self) -> str:
        name = _REPR_NAMES[self.activation] if self.nonlin else "Linear"
        return f"{name}Neuron({len(self.w)})"


class Layer(Module):
    """``nout`` neurons over the same ``nin`` inputs.

    Args:
        nin: the number of inputs.
        nout: the number of neurons (at least 1).
        **kwargs: passed to every ``Neuron`` (``nonlin``, ``activation``).
    """

    def __init__(self, nin: int, nout: int, **kwargs: Any) -> None:
        nout = _check_count(nout, "nout", 1)
        self.neurons = [Neuron(nin, **kwargs) for _ in range(nout)]

    def _forward(self, inputs: _lib.PinnedNodes) -> list[Value]:
        return [n._forward(inputs) for n in self.neurons]

    def __call__(self, x: Iterable[Input]) -> Value | list[Value]:
        """The outputs of the neurons, in order; a single Value when there is one
        neuron (as in micrograd)."""
        out = self._forward(_inputs(x))
        return out[0] if len(out) == 1 else out

    def parameters(self) -> list[Value]:
        """The parameters of neuron 0, then neuron 1, ..."""
        return [p for n in self.neurons for p in n.parameters()]

    def __repr__(self) -> str:
        return f"Layer of [{', '.join(str(n) for n in self.neurons)}]"


class MLP(Module):
    """A multi-layer perceptron: layers of sizes ``nouts`` over ``nin`` inputs.

    Every layer but the last applies ``activation``; the last is linear, as in
    micrograd.

    Args:
        nin: the number of inputs.
        nouts: the number of neurons of each layer, in order (at least one layer).
        activation: the hidden layers' activation: ``"relu"`` (micrograd's),
            ``"tanh"``, ``"sigmoid"`` or ``"linear"``.
    """

    def __init__(self, nin: int, nouts: Sequence[int], activation: str = "relu") -> None:
        if isinstance(nouts, (str, bytes)) or not isinstance(nouts, Iterable):
            raise TypeError(f"nouts must be a sequence of ints, not {type(nouts).__name__!r}")
        sizes = list(nouts)
        if not sizes:
            raise ValueError("an MLP needs at least one layer")
        _check_activation(activation)
        sz = [nin] + sizes
        self.layers = [
            Layer(sz[i], sz[i + 1], nonlin=i != len(sizes) - 1, activation=activation)
            for i in range(len(sizes))
        ]

    def __call__(self, x: Iterable[Input]) -> Value | list[Value]:
        """The last layer's outputs; a single Value when it has one neuron."""
        inputs = _inputs(x)
        for layer in self.layers[:-1]:
            # Inner layers pass their outputs on as a list, so that a layer of one
            # neuron feeds the next one too (micrograd would hand over a bare Value).
            inputs = _inputs(layer._forward(inputs))
        out = self.layers[-1]._forward(inputs)
        return out[0] if len(out) == 1 else out

    def parameters(self) -> list[Value]:
        """The parameters of layer 0, then layer 1, ..."""
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self) -> str:
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"
