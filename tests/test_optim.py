"""microcrad.optim: SGD and Adam steps against their formulas written out here, against
micrograd's manual update and torch.optim; the learning-rate property, argument
checks and the release of the parameters."""

from __future__ import annotations

import gc
import math
import random

import micrograd.engine
import pytest
from hypothesis import given
from hypothesis import strategies as st

import microcrad
from microcrad.engine import Value
from microcrad.optim import SGD, Adam

try:
    import torch
except ImportError:  # the comparisons with torch are skipped
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")

number = st.floats(min_value=-10.0, max_value=10.0, allow_nan=False)


def gradient_sequence(n_params: int, n_steps: int, seed: int) -> list[list[float]]:
    rng = random.Random(seed)
    return [[rng.uniform(-2, 2) for _ in range(n_params)] for _ in range(n_steps)]


def run(
    optimizer_class, data: list[float], grads: list[list[float]], **options
) -> list[list[float]]:  # type: ignore[no-untyped-def]
    """The parameters after each step, with the gradients set by hand."""
    params = [Value(d) for d in data]
    optimizer = optimizer_class(params, **options)
    history = []
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = g
        optimizer.step()
        history.append([p.data for p in params])
    return history


def assert_close(ours: list[list[float]], theirs: list[list[float]], rel: float) -> None:
    for step, (a, b) in enumerate(zip(ours, theirs)):
        for x, y in zip(a, b):
            assert math.isclose(x, y, rel_tol=rel, abs_tol=rel), (step, x, y)


# ---------------------------------------------------------------------------------
# SGD
# ---------------------------------------------------------------------------------


@given(
    data=st.lists(number, min_size=1, max_size=6), lr=st.floats(0.0, 2.0), seed=st.integers(0, 99)
)
def test_plain_sgd_is_micrograds_update_bit_for_bit(
    data: list[float], lr: float, seed: int
) -> None:
    grads = gradient_sequence(len(data), 3, seed)
    ours = run(SGD, data, grads, lr=lr)
    # micrograd's demo loop: p.data -= learning_rate * p.grad
    params = [micrograd.engine.Value(d) for d in data]
    for step, step_grads in enumerate(grads):
        for p, g in zip(params, step_grads):
            p.grad = g
            p.data -= lr * p.grad
        assert ours[step] == [p.data for p in params]


def sgd_formula(data, grads, lr, momentum, weight_decay):  # type: ignore[no-untyped-def]
    """torch.optim.SGD's documented update (dampening 0, no Nesterov)."""
    data = list(data)
    buffers: list[float | None] = [None] * len(data)
    history = []
    for step_grads in grads:
        for i, g in enumerate(step_grads):
            if weight_decay:
                g = g + weight_decay * data[i]
            if momentum:
                buffers[i] = g if buffers[i] is None else momentum * buffers[i] + g
                g = buffers[i]
            data[i] = data[i] - lr * g
        history.append(list(data))
    return history


@given(
    data=st.lists(number, min_size=1, max_size=6),
    lr=st.floats(0.001, 1.0),
    momentum=st.sampled_from([0.0, 0.5, 0.9]),
    weight_decay=st.sampled_from([0.0, 1e-4, 0.1]),
    seed=st.integers(0, 99),
)
def test_sgd_follows_its_formula(data, lr, momentum, weight_decay, seed) -> None:  # type: ignore[no-untyped-def]
    grads = gradient_sequence(len(data), 5, seed)
    ours = run(SGD, data, grads, lr=lr, momentum=momentum, weight_decay=weight_decay)
    assert_close(ours, sgd_formula(data, grads, lr, momentum, weight_decay), rel=1e-14)


@needs_torch
@pytest.mark.parametrize(
    "momentum, weight_decay", [(0.0, 0.0), (0.9, 0.0), (0.9, 0.01), (0.5, 0.1)]
)
def test_sgd_matches_torch(momentum: float, weight_decay: float) -> None:
    data = [0.5, -1.25, 3.0, 0.0]
    grads = gradient_sequence(len(data), 10, seed=1)
    ours = run(SGD, data, grads, lr=0.1, momentum=momentum, weight_decay=weight_decay)
    tensor = torch.tensor(data, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([tensor], lr=0.1, momentum=momentum, weight_decay=weight_decay)
    theirs = []
    for step_grads in grads:
        tensor.grad = torch.tensor(step_grads, dtype=torch.float64)
        optimizer.step()
        theirs.append(tensor.detach().tolist())
    assert_close(ours, theirs, rel=1e-12)


# ---------------------------------------------------------------------------------
# Adam
# ---------------------------------------------------------------------------------


def adam_formula(data, grads, lr, betas, eps, weight_decay):  # type: ignore[no-untyped-def]
    """Adam as torch.optim.Adam documents it (no amsgrad)."""
    beta1, beta2 = betas
    data = list(data)
    m = [0.0] * len(data)
    v = [0.0] * len(data)
    history = []
    for t, step_grads in enumerate(grads, start=1):
        for i, g in enumerate(step_grads):
            g = g + weight_decay * data[i]
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            m_hat = m[i] / (1 - beta1**t)
            v_hat = v[i] / (1 - beta2**t)
            data[i] = data[i] - lr * m_hat / (math.sqrt(v_hat) + eps)
        history.append(list(data))
    return history


@given(
    data=st.lists(number, min_size=1, max_size=6),
    lr=st.floats(1e-4, 0.5),
    betas=st.sampled_from([(0.9, 0.999), (0.5, 0.9), (0.0, 0.0)]),
    eps=st.sampled_from([1e-8, 1e-3]),
    weight_decay=st.sampled_from([0.0, 0.01]),
    seed=st.integers(0, 99),
)
def test_adam_follows_its_formula(data, lr, betas, eps, weight_decay, seed) -> None:  # type: ignore[no-untyped-def]
    grads = gradient_sequence(len(data), 6, seed)
    ours = run(Adam, data, grads, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    # The bias corrections may be applied in another order, which moves the last bits.
    assert_close(ours, adam_formula(data, grads, lr, betas, eps, weight_decay), rel=1e-12)


@needs_torch
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"lr": 0.01},
        {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.01},
        {"lr": 0.1, "weight_decay": 0.5},
    ],
)
def test_adam_matches_torch(options: dict) -> None:  # type: ignore[type-arg]
    data = [0.5, -1.25, 3.0, 0.0, 1e-3]
    grads = gradient_sequence(len(data), 20, seed=2)
    ours = run(Adam, data, grads, **options)
    tensor = torch.tensor(data, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([tensor], **options)
    theirs = []
    for step_grads in grads:
        tensor.grad = torch.tensor(step_grads, dtype=torch.float64)
        optimizer.step()
        theirs.append(tensor.detach().tolist())
    # torch updates the first moment with lerp and divides in another order: the same
    # formula, rounded differently.
    assert_close(ours, theirs, rel=1e-12)


def test_adam_defaults_are_torchs() -> None:
    optimizer = Adam([Value(1.0)])
    assert optimizer.lr == 1e-3
    assert optimizer.betas == (0.9, 0.999)
    assert optimizer.eps == 1e-8
    assert optimizer.weight_decay == 0.0


def test_adam_first_step_moves_each_parameter_by_lr() -> None:
    # With bias correction, step 1 is lr * g / (|g| + eps): about lr against the sign of g.
    params = [Value(1.0), Value(-1.0)]
    optimizer = Adam(params, lr=0.1)
    params[0].grad = 3.0
    params[1].grad = -0.5
    optimizer.step()
    assert params[0].data == pytest.approx(0.9, rel=1e-8)
    assert params[1].data == pytest.approx(-0.9, rel=1e-8)


# ---------------------------------------------------------------------------------
# zero_grad, lr, lifetime
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.1), lambda ps: Adam(ps)])
def test_zero_grad_clears_every_parameter(make) -> None:  # type: ignore[no-untyped-def]
    params = [Value(float(i)) for i in range(5)]
    loss = Value.sum([p * p for p in params])
    loss.backward()
    optimizer = make(params)
    optimizer.zero_grad()
    assert [p.grad for p in params] == [0.0] * 5


@pytest.mark.parametrize(
    "make", [lambda ps: SGD(ps, lr=0.1, momentum=0.9), lambda ps: Adam(ps, lr=0.01)]
)
def test_step_zero_grad_is_step_then_zero_grad(make) -> None:  # type: ignore[no-untyped-def]
    fused, separate = [Value(0.5), Value(-2.0)], [Value(0.5), Value(-2.0)]
    fused_optimizer, separate_optimizer = make(fused), make(separate)
    for _ in range(3):
        for params in (fused, separate):
            (params[0] * params[1] + params[0] ** 2).backward()
        fused_optimizer.step_zero_grad()
        separate_optimizer.step()
        separate_optimizer.zero_grad()
        assert [p.data for p in fused] == [p.data for p in separate]
        assert [p.grad for p in fused] == [0.0, 0.0]


def test_lr_can_be_read_and_changed_between_steps() -> None:
    p = Value(1.0)
    optimizer = SGD([p], lr=0.5)
    assert optimizer.lr == 0.5
    p.grad = 1.0
    optimizer.step()
    assert p.data == 0.5
    optimizer.lr = 0.25
    assert optimizer.lr == 0.25
    optimizer.step()
    assert p.data == 0.25
    optimizer.lr = 0  # an int is fine
    assert optimizer.lr == 0.0


@pytest.mark.parametrize(
    "bad, error",
    [
        (-0.1, ValueError),
        (math.inf, ValueError),
        (math.nan, ValueError),
        ("0.1", TypeError),
        (None, TypeError),
    ],
)
def test_a_bad_lr_is_refused_and_leaves_the_old_one(bad: object, error: type[Exception]) -> None:
    optimizer = Adam([Value(1.0)], lr=0.01)
    with pytest.raises(error):
        optimizer.lr = bad  # type: ignore[assignment]
    assert optimizer.lr == 0.01


def test_the_optimizer_keeps_its_parameters_alive_until_it_goes() -> None:
    gc.collect()
    before = microcrad.live_values()
    params = [Value(1.0), Value(2.0), Value(3.0)]
    optimizer = Adam(params, lr=0.1)
    for param in params:
        param.grad = 1.0
    del params, param
    optimizer.params.clear()  # leaves the C optimizer's references only
    gc.collect()
    assert microcrad.live_values() == before + 3
    optimizer.step()  # still safe to update
    del optimizer
    gc.collect()
    assert microcrad.live_values() == before


def test_close_frees_at_once_and_forbids_further_use() -> None:
    gc.collect()
    before = microcrad.live_values()
    with SGD([Value(1.0)], lr=0.1) as optimizer:
        optimizer.params.clear()  # only the C optimizer holds the parameter now
        gc.collect()
        assert microcrad.live_values() == before + 1
    assert microcrad.live_values() == before
    for use in (optimizer.step, optimizer.zero_grad, lambda: optimizer.lr):
        with pytest.raises(ValueError, match="closed"):
            use()
    optimizer.close()  # a second close does nothing


def test_reprs() -> None:
    assert (
        repr(SGD([Value(1.0)], lr=0.1, momentum=0.9))
        == "SGD(1 parameters, lr=0.1, momentum=0.9, weight_decay=0.0)"
    )
    assert repr(Adam([Value(1.0), Value(2.0)])) == (
        "Adam(2 parameters, lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0)"
    )


# ---------------------------------------------------------------------------------
# Bad arguments
# ---------------------------------------------------------------------------------

a, b = 1.0, 2.0  # data for the parameters made by each case


@pytest.mark.parametrize(
    "make, error",
    [
        (lambda p: SGD([], lr=0.1), ValueError),
        (lambda p: SGD(p[0], lr=0.1), TypeError),
        (lambda p: SGD([p[0], 1.0], lr=0.1), TypeError),
        (lambda p: SGD(None, lr=0.1), TypeError),
        (lambda p: SGD([p[0], p[1], p[0]], lr=0.1), ValueError),
        (lambda p: SGD(p, lr=-1.0), ValueError),
        (lambda p: SGD(p, lr=math.nan), ValueError),
        (lambda p: SGD(p, lr="fast"), TypeError),
        (lambda p: SGD(p, lr=True), TypeError),
        (lambda p: SGD(p, lr=0.1, momentum=-0.9), ValueError),
        (lambda p: SGD(p, lr=0.1, weight_decay=math.inf), ValueError),
        (lambda p: Adam([]), ValueError),
        (lambda p: Adam(p, lr=-1e-3), ValueError),
        (lambda p: Adam(p, betas=(1.0, 0.999)), ValueError),
        (lambda p: Adam(p, betas=(0.9, -0.1)), ValueError),
        (lambda p: Adam(p, betas=(0.9,)), TypeError),
        (lambda p: Adam(p, betas=0.9), TypeError),
        (lambda p: Adam(p, eps=-1e-8), ValueError),
        (lambda p: Adam(p, weight_decay=-0.1), ValueError),
    ],
)
def test_bad_arguments_raise(make, error) -> None:  # type: ignore[no-untyped-def]
    params = [Value(a), Value(b)]
    with pytest.raises(error):
        make(params)
    # Nothing was retained by the refused optimizer: the leak check after the test
    # would see it.


def test_two_handles_of_one_node_are_the_same_parameter() -> None:
    import copy

    p = Value(1.0)
    with pytest.raises(ValueError, match="more than once"):
        SGD([p, copy.copy(p)], lr=0.1)
