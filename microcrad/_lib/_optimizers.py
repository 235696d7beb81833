"""The C optimizers behind microcrad.optim: creating them over a parameter list,
stepping, and freeing them. An optimizer is an ``int`` handle here."""

from __future__ import annotations

from typing import Any

from microcrad._lib._arrays import PinnedNodes
from microcrad._lib._errors import check_status, last_failure
from microcrad._lib._loading import c


def sgd_create(params: PinnedNodes, lr: float, momentum: float, weight_decay: float) -> int:
    """A new C SGD optimizer over ``params`` (it retains them); free it with
    ``optimizer_free``."""
    handle: int | None = c.microcrad_sgd_create(
        params.count, params.array, lr, momentum, weight_decay
    )
    if handle is None:
        raise last_failure()
    return handle


def adam_create(
    params: PinnedNodes,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
) -> int:
    """A new C Adam optimizer over ``params`` (it retains them); free it with
    ``optimizer_free``."""
    handle: int | None = c.microcrad_adam_create(
        params.count, params.array, lr, beta1, beta2, eps, weight_decay
    )
    if handle is None:
        raise last_failure()
    return handle


def optimizer_step(handle: int) -> None:
    """One update of every parameter of the optimizer, in one C call."""
    check_status(c.microcrad_optimizer_step(handle))


def optimizer_step_zero_grad(handle: int) -> None:
    """One update of every parameter, then its gradient set to 0, in one C call."""
    check_status(c.microcrad_optimizer_step_zero_grad(handle))


def optimizer_zero_grad(handle: int) -> None:
    """Sets the gradient of every parameter of the optimizer to 0."""
    check_status(c.microcrad_optimizer_zero_grad(handle))


def optimizer_set_lr(handle: int, lr: float) -> None:
    """Changes the optimizer's learning rate."""
    check_status(c.microcrad_optimizer_set_lr(handle, lr))


def optimizer_lr(handle: int) -> float:
    """The optimizer's learning rate."""
    lr: float = c.microcrad_optimizer_lr(handle)
    if lr != lr:  # NaN: a learning rate never is, so the handle was bad
        raise last_failure()
    return lr


def optimizer_free(handle: int, _free: Any = c.microcrad_optimizer_free) -> None:
    """Frees the optimizer and releases its parameters."""
    # _free is bound early so that __del__ methods may call this at interpreter shutdown.
    _free(handle)
