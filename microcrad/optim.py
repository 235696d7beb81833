"""Optimizers: ``SGD`` and ``Adam``, with torch.optim's update formulas.

An optimizer is made once over a fixed list of parameters; ``step()`` then updates all
of them in one C call, instead of a Python loop doing ``p.data -= lr * p.grad`` one
parameter (and two or three C calls) at a time::

    optimizer = SGD(model.parameters(), lr=0.1)
    for k in range(steps):
        loss = ...
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

The C optimizer holds a reference to each parameter, and gives them back when the
Python object goes away (or on ``close()``).
"""

from __future__ import annotations

import math
import numbers
import threading
from collections.abc import Iterable
from typing import Any

from microcrad import _lib
from microcrad.engine import Value

__all__ = ["Optimizer", "SGD", "Adam"]


def _hyperparameter(x: object, name: str) -> float:
    """``x`` as a float that is finite and >= 0, or the matching exception."""
    if not isinstance(x, numbers.Real) or isinstance(x, bool):
        raise TypeError(f"{name} must be a number, not {type(x).__name__!r}")
    value = float(x)
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"{name} must be finite and >= 0, got {x!r}")
    return value


def _beta(x: object, name: str) -> float:
    value = _hyperparameter(x, name)
    if not value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {x!r}")
    return value


def _parameter_list(params: Iterable[Value]) -> list[Value]:
    if isinstance(params, Value) or not isinstance(params, Iterable):
        raise TypeError(
            f"params must be an iterable of Values (e.g. model.parameters()), "
            f"not {type(params).__name__!r}"
        )
    values = list(params)
    if not values:
        raise ValueError("the optimizer got an empty parameter list")
    seen: set[Value] = set()
    for p in values:
        if not isinstance(p, Value):
            raise TypeError(f"params must be Values, not {type(p).__name__!r}")
        # Values hash by node, so two handles of one node count as the same parameter,
        # which would otherwise be updated twice per step.
        if p in seen:
            raise ValueError(f"a parameter appears more than once in params: {p!r}")
        seen.add(p)
    return values


class Optimizer(_lib.Uncopyable):
    """The base of ``SGD`` and ``Adam``: a C optimizer over fixed parameters.

    Not meant to be made directly; the subclasses create the C object. Its methods and
    ``close()`` may be called from several threads: a lock makes each call see the
    optimizer either open or closed, never freed in the middle of a step. Copying,
    deep-copying and pickling raise TypeError: the state (momentum buffers, Adam's
    moments) lives in the C library, which has no way to duplicate it.

    Attributes:
        params: the parameters, in the order given (the list the optimizer updates;
            changing the list does not change what the C optimizer updates).
    """

    _handle: int | None = None
    _copy_advice = "make a new optimizer over the parameters you want it to update"

    def __init__(self, params: list[Value], handle: int) -> None:
        # Serialises use against close(): without it, another thread could free the
        # handle between a method reading it and its C call, which would then step a
        # freed optimizer, or a new one that malloc put at the same address.
        self._lock = threading.Lock()
        self._handle = handle
        self.params = params

    def _live_handle(self) -> int:
        # Called with self._lock held.
        if self._handle is None:
            raise ValueError(f"the {type(self).__name__} optimizer is closed")
        return self._handle

    def step(self) -> None:
        """Updates every parameter once from its gradient, in one C call."""
        with _lib.graph_lock, self._lock:
            _lib.optimizer_step(self._live_handle())

    def zero_grad(self) -> None:
        """Sets the gradient of every parameter to 0, in one C call."""
        with _lib.graph_lock, self._lock:
            _lib.optimizer_zero_grad(self._live_handle())

    def step_zero_grad(self) -> None:
        """``step()`` then ``zero_grad()`` in one pass over the parameters (one C call):
        the usual end of a training step when the next backward accumulates into them."""
        with _lib.graph_lock, self._lock:
            _lib.optimizer_step_zero_grad(self._live_handle())

    @property
    def lr(self) -> float:
        """The learning rate; set it between steps for a schedule."""
        with self._lock:
            return _lib.optimizer_lr(self._live_handle())

    @lr.setter
    def lr(self, value: float) -> None:
        rate = _hyperparameter(value, "lr")
        with self._lock:
            _lib.optimizer_set_lr(self._live_handle(), rate)

    def close(self) -> None:
        """Frees the C optimizer and gives back its references to the parameters.

        Happens by itself when the object goes away; afterwards the optimizer can no
        longer be used. Calling it again does nothing.
        """
        with self._lock:
            handle, self._handle = self._handle, None
            if handle is not None:
                _lib.optimizer_free(handle)

    def __del__(self, _free: Any = _lib.optimizer_free) -> None:
        # _free is bound early: at interpreter shutdown the module globals may be gone.
        # No lock: nothing else can be using an object that is being destroyed.
        handle = self._handle
        if handle is not None:
            self._handle = None
            _free(handle)

    def __enter__(self) -> Optimizer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SGD(Optimizer):
    """Stochastic gradient descent, as ``torch.optim.SGD`` (no dampening, no Nesterov).

    Each step, for each parameter p: ``g = p.grad + weight_decay * p.data``; with
    momentum, ``buf = g`` on the first step and ``buf = momentum * buf + g`` after,
    and ``g = buf``; then ``p.data -= lr * g``. Without momentum and weight decay this
    is exactly micrograd's ``p.data -= learning_rate * p.grad``.

    Args:
        params: the parameters to train (e.g. ``model.parameters()``).
        lr: the learning rate.
        momentum: the momentum factor (0 for none).
        weight_decay: the L2 penalty factor (0 for none).

    Raises:
        TypeError: params is not an iterable of Values, or a hyper-parameter is not a
            number.
        ValueError: params is empty or repeats a parameter, or a hyper-parameter is
            negative or not finite.
    """

    def __init__(
        self, params: Iterable[Value], lr: float, momentum: float = 0.0, weight_decay: float = 0.0
    ) -> None:
        values = _parameter_list(params)
        self.momentum = _hyperparameter(momentum, "momentum")
        self.weight_decay = _hyperparameter(weight_decay, "weight_decay")
        rate = _hyperparameter(lr, "lr")
        handle = _lib.sgd_create(_lib.pin(values, Value), rate, self.momentum, self.weight_decay)
        super().__init__(values, handle)

    def __repr__(self) -> str:
        if self._handle is None:
            return f"SGD({len(self.params)} parameters, closed)"
        return (
            f"SGD({len(self.params)} parameters, lr={self.lr}, momentum={self.momentum}, "
            f"weight_decay={self.weight_decay})"
        )


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (no amsgrad).

    Each step t (from 1), for each parameter p: ``g = p.grad + weight_decay * p.data``;
    ``m = beta1*m + (1-beta1)*g``; ``v = beta2*v + (1-beta2)*g*g``;
    ``p.data -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)``.

    Args:
        params: the parameters to train (e.g. ``model.parameters()``).
        lr: the learning rate.
        betas: the decay rates (beta1, beta2) of the moment estimates, each in [0, 1).
        eps: added to the denominator, for stability.
        weight_decay: the L2 penalty factor (0 for none).

    Raises:
        TypeError: params is not an iterable of Values, or a hyper-parameter is not a
            number.
        ValueError: params is empty or repeats a parameter, or a hyper-parameter is
            out of range.
    """

    def __init__(
        self,
        params: Iterable[Value],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        values = _parameter_list(params)
        try:
            beta1, beta2 = betas
        except (TypeError, ValueError):
            raise TypeError(f"betas must be a pair of numbers, got {betas!r}") from None
        self.betas = (_beta(beta1, "betas[0]"), _beta(beta2, "betas[1]"))
        self.eps = _hyperparameter(eps, "eps")
        self.weight_decay = _hyperparameter(weight_decay, "weight_decay")
        rate = _hyperparameter(lr, "lr")
        handle = _lib.adam_create(
            _lib.pin(values, Value), rate, *self.betas, self.eps, self.weight_decay
        )
        super().__init__(values, handle)

    def __repr__(self) -> str:
        if self._handle is None:
            return f"Adam({len(self.params)} parameters, closed)"
        return (
            f"Adam({len(self.params)} parameters, lr={self.lr}, betas={self.betas}, "
            f"eps={self.eps}, weight_decay={self.weight_decay})"
        )
