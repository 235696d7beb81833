"""abs(Value): |x| with gradient g * sign(x), where sign is 0 at 0 (either sign) and at
NaN, as in PyTorch; checked at the IEEE corners against PyTorch float64 when it is
installed, and against that rule written out otherwise."""

from __future__ import annotations

import math

import pytest

import microcrad
from microcrad.engine import Value

CORNERS = [-0.0, 0.0, math.nan, math.inf, -math.inf, -2.5, 3.0, -1e-310, 1e-310, 1e300]
UPSTREAM = [1.0, -1.5, math.inf]


def same(a: float, b: float) -> bool:
    """Equal as IEEE values (any NaN equals any NaN; the sign of a zero is ignored,
    since microcrad's gradients start at +0.0 where PyTorch assigns -0.0)."""
    return (math.isnan(a) and math.isnan(b)) or a == b


def abs_and_grad(x: float, g: float) -> tuple[float, float]:
    leaf = Value(x)
    out = abs(leaf) * g
    out.backward()
    return abs(leaf).data, leaf.grad


def test_abs_is_a_value_of_op_abs() -> None:
    x = Value(-4.0)
    y = abs(x)
    assert isinstance(y, Value)
    assert y.data == 4.0
    assert y._prev == {x}
    y.backward()
    assert x.grad == -1.0


def test_abs_of_negative_zero_is_positive_zero() -> None:
    y = abs(Value(-0.0))
    assert y.data == 0.0 and math.copysign(1.0, y.data) == 1.0


@pytest.mark.parametrize("x", CORNERS)
@pytest.mark.parametrize("g", UPSTREAM)
def test_abs_follows_the_rule(x: float, g: float) -> None:
    sign = (x > 0) - (x < 0)  # 0 at +-0.0 and at NaN
    data, grad = abs_and_grad(x, g)
    assert same(data, math.fabs(x))
    assert same(grad, g * sign)


@pytest.mark.parametrize("x", CORNERS)
@pytest.mark.parametrize("g", UPSTREAM)
def test_abs_agrees_with_pytorch(x: float, g: float) -> None:
    torch = pytest.importorskip("torch")
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    y = t.abs()
    y.backward(torch.tensor(g, dtype=torch.float64))
    data, grad = abs_and_grad(x, g)
    assert same(data, y.item())
    assert same(grad, t.grad.item())


def test_abs_leaves_nothing_behind() -> None:
    before = microcrad.live_values()
    for x in CORNERS:
        abs_and_grad(x, 2.0)
    assert microcrad.live_values() == before
