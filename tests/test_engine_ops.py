"""Each operation on its own: the forward value against Python's ``math`` and the
gradient against the derivative worked out by hand, including the IEEE-754 edge cases
where PyTorch's conventions apply.

The ops with a test of their own below are the ones known when it was written; every
op of the library's op table (tests/op_methods.py) is also checked by the tests at the
end, which know no op by name: a new op is covered by them without an edit here. Their
reference is Python's math/operator function of the op's name, else the library's
forward on leaves; this file does without PyTorch (test_op_table.py compares every op
with it), as it is also the Valgrind smoke test, where importing PyTorch alone takes
over a minute."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from microcrad import _lib
from microcrad.engine import Value

from op_methods import OP_METHODS, STRUCTURAL_OPS, OpMethod
from op_reference import (
    FIXED_ARITY_OPS,
    finite_difference_slopes,
    forward,
    method_of,
    reference,
    reference_or_library,
    same_as_reference,
    slopes,
    slopes_agree,
)

INPUTS = [-3.5, -1.0, -0.25, 0.0, 0.5, 1.0, 2.75, 10.0]
PAIRS = [(-3.5, 2.0), (-1.0, -0.25), (0.0, 1.5), (0.5, -4.0), (2.75, 3.0), (10.0, 0.125)]
POSITIVE = [1e-3, 0.25, 1.0, 2.0, 7.5]


def grads_of(result: Value, *leaves: Value) -> list[float]:
    result.backward()
    return [leaf.grad for leaf in leaves]


# ---------------------------------------------------------------------------------
# Binary arithmetic: IEEE results are exact, so compare with ==
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("a, b", PAIRS)
def test_add(a: float, b: float) -> None:
    x, y = Value(a), Value(b)
    z = x + y
    assert z.data == a + b
    assert grads_of(z, x, y) == [1.0, 1.0]


@pytest.mark.parametrize("a, b", PAIRS)
def test_sub(a: float, b: float) -> None:
    x, y = Value(a), Value(b)
    z = x - y
    assert z.data == a - b
    assert grads_of(z, x, y) == [1.0, -1.0]


@pytest.mark.parametrize("a, b", PAIRS)
def test_mul(a: float, b: float) -> None:
    x, y = Value(a), Value(b)
    z = x * y
    assert z.data == a * b
    assert grads_of(z, x, y) == [b, a]


@pytest.mark.parametrize("a, b", PAIRS)
def test_div(a: float, b: float) -> None:
    x, y = Value(a), Value(b)
    z = x / y
    assert z.data == a / b
    dx, dy = grads_of(z, x, y)
    assert dx == pytest.approx(1 / b, rel=1e-15)
    assert dy == pytest.approx(-a / b**2, rel=1e-15, abs=1e-300)


@pytest.mark.parametrize("a", INPUTS)
def test_neg(a: float) -> None:
    x = Value(a)
    z = -x
    assert z.data == -a
    assert grads_of(z, x) == [-1.0]


# ---------------------------------------------------------------------------------
# Numbers on either side, as micrograd allows
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression, expected, slope",
    [
        (lambda x: x + 2, 5.0, 1.0),
        (lambda x: 2 + x, 5.0, 1.0),
        (lambda x: x - 2, 1.0, 1.0),
        (lambda x: 2 - x, -1.0, -1.0),
        (lambda x: x * 2, 6.0, 2.0),
        (lambda x: 2 * x, 6.0, 2.0),
        (lambda x: x / 2, 1.5, 0.5),
        (lambda x: 2 / x, 2 / 3, -2 / 9),
        (lambda x: x**2, 9.0, 6.0),
        (lambda x: 2**x, 8.0, 8 * math.log(2)),
    ],
    ids=["x+2", "2+x", "x-2", "2-x", "x*2", "2*x", "x/2", "2/x", "x**2", "2**x"],
)
def test_numbers_on_either_side(expression, expected: float, slope: float) -> None:
    x = Value(3.0)
    z = expression(x)
    assert isinstance(z, Value)
    assert z.data == pytest.approx(expected, rel=1e-15)
    assert grads_of(z, x)[0] == pytest.approx(slope, rel=1e-15)


@pytest.mark.parametrize(
    "number",
    [2, 2.0, True, Fraction(1, 4), np.float64(0.5), np.float32(0.5), np.int64(3), np.int8(-2)],
    ids=lambda n: type(n).__name__,
)
def test_every_kind_of_real_number_is_accepted(number) -> None:
    x = Value(number)
    assert x.data == float(number)
    assert (x + number).data == 2 * float(number)
    assert (number * Value(2.0)).data == 2 * float(number)


# ---------------------------------------------------------------------------------
# Powers
# ---------------------------------------------------------------------------------


# Negative bases only with integral exponents: the others are nan (see below).
@pytest.mark.parametrize(
    "a, p",
    [(a, p) for a in POSITIVE for p in (2, 3, -1, 0.5, -1.5, 0)]
    + [(a, p) for a in (-2.0, -0.5) for p in (2, 3, -1, 0)],
)
def test_pow_const(a: float, p: float) -> None:
    x = Value(a)
    z = x**p
    assert z.data == math.pow(a, p)
    slope = 0.0 if p == 0 else p * math.pow(a, p - 1)
    assert grads_of(z, x)[0] == pytest.approx(slope, rel=1e-14)


@pytest.mark.parametrize("a", POSITIVE)
@pytest.mark.parametrize("b", [-1.5, 0.0, 0.5, 2.0, 3.0])
def test_pow_with_value_exponent(a: float, b: float) -> None:
    x, y = Value(a), Value(b)
    z = x**y
    assert z.data == math.pow(a, b)
    dx, dy = grads_of(z, x, y)
    assert dx == pytest.approx(b * math.pow(a, b - 1), rel=1e-14)
    assert dy == pytest.approx(math.pow(a, b) * math.log(a), rel=1e-14, abs=1e-300)


def test_pow_of_negative_base() -> None:
    assert math.isnan((Value(-2.0) ** 0.5).data)
    assert (Value(-2.0) ** 3).data == -8.0


def test_zero_to_the_zero_is_one_with_zero_gradients() -> None:
    # PyTorch: pow(0, 0) = 1, and both partial derivatives are taken as 0 there.
    base, exponent = Value(0.0), Value(0.0)
    z = base**exponent
    assert z.data == 1.0
    assert grads_of(z, base, exponent) == [0.0, 0.0]


def test_constant_zero_power_has_zero_gradient_even_at_zero() -> None:
    x = Value(0.0)
    z = x**0
    assert z.data == 1.0
    assert grads_of(z, x) == [0.0]


def test_exponent_gradient_is_zero_at_zero_base() -> None:
    # d(0**p)/dp would be 0 * log(0) = nan; PyTorch masks it to 0 for p >= 0.
    base, exponent = Value(0.0), Value(2.0)
    z = base**exponent
    assert z.data == 0.0
    assert grads_of(z, base, exponent) == [0.0, 0.0]


# ---------------------------------------------------------------------------------
# Functions
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("a", INPUTS)
def test_exp(a: float) -> None:
    x = Value(a)
    z = x.exp()
    assert z.data == math.exp(a)
    assert grads_of(z, x)[0] == math.exp(a)


@pytest.mark.parametrize("a", POSITIVE)
def test_log(a: float) -> None:
    x = Value(a)
    z = x.log()
    assert z.data == math.log(a)
    assert grads_of(z, x)[0] == pytest.approx(1 / a, rel=1e-15)


@pytest.mark.parametrize("a", INPUTS)
def test_relu(a: float) -> None:
    x = Value(a)
    z = x.relu()
    assert z.data == max(a, 0.0)
    assert grads_of(z, x) == [1.0 if a > 0 else 0.0]


@pytest.mark.parametrize("a", INPUTS)
def test_tanh(a: float) -> None:
    x = Value(a)
    z = x.tanh()
    assert z.data == math.tanh(a)
    assert grads_of(z, x)[0] == pytest.approx(1 - math.tanh(a) ** 2, rel=1e-14)


@pytest.mark.parametrize("a", INPUTS)
def test_sigmoid(a: float) -> None:
    x = Value(a)
    z = x.sigmoid()
    expected = 1 / (1 + math.exp(-a))
    assert z.data == pytest.approx(expected, rel=1e-15)
    assert grads_of(z, x)[0] == pytest.approx(expected * (1 - expected), rel=1e-14)


@pytest.mark.parametrize("terms", [[1.0], [1.0, 2.0, 3.5], [0.1] * 10, [-2.0, 5.0, -3.0]])
def test_sum(terms: list[float]) -> None:
    leaves = [Value(t) for t in terms]
    z = Value.sum(leaves)
    expected = 0.0
    for t in terms:  # left to right, exactly like the library promises
        expected += t
    assert z.data == expected
    assert grads_of(z, *leaves) == [1.0] * len(terms)


def test_sum_of_nothing_is_zero() -> None:
    assert Value.sum([]).data == 0.0


def test_sum_counts_a_repeated_term_each_time() -> None:
    x = Value(2.0)
    z = Value.sum([x, x, 3, x])
    assert z.data == 9.0
    assert grads_of(z, x) == [3.0]


def test_python_sum_works_as_in_micrograd() -> None:
    xs = [Value(1.0), Value(2.0), Value(4.0)]
    z = sum(xs)
    assert z.data == 7.0
    assert grads_of(z, *xs) == [1.0, 1.0, 1.0]


# ---------------------------------------------------------------------------------
# IEEE-754 edge cases, with PyTorch's conventions
# ---------------------------------------------------------------------------------


def test_log_of_zero_is_minus_infinity_with_infinite_slope() -> None:
    x = Value(0.0)
    z = x.log()
    assert z.data == -math.inf
    assert grads_of(z, x) == [math.inf]


def test_log_of_negative_is_nan_with_pytorchs_slope() -> None:
    x = Value(-1.0)
    z = x.log()
    assert math.isnan(z.data)
    # PyTorch's rule is grad / a whatever the sign of a, so the slope at -1 is -1.
    assert grads_of(z, x) == [-1.0]


@pytest.mark.parametrize("a, expected", [(1.0, math.inf), (-1.0, -math.inf)])
def test_division_by_zero_is_infinite(a: float, expected: float) -> None:
    assert (Value(a) / Value(0.0)).data == expected
    assert (Value(a) / 0).data == expected


def test_zero_over_zero_is_nan() -> None:
    assert math.isnan((Value(0.0) / 0.0).data)


def test_relu_slope_at_zero_is_zero() -> None:
    x = Value(0.0)
    z = x.relu()
    assert z.data == 0.0
    assert grads_of(z, x) == [0.0]


def test_exp_overflow_is_infinite() -> None:
    x = Value(1000.0)
    z = x.exp()
    assert z.data == math.inf
    assert grads_of(z, x) == [math.inf]


def test_exp_underflow_is_zero() -> None:
    assert (Value(-1000.0).exp()).data == 0.0


@pytest.mark.parametrize("a, expected", [(1000.0, 1.0), (-1000.0, 0.0), (710.0, 1.0)])
def test_sigmoid_saturates_without_overflow(a: float, expected: float) -> None:
    x = Value(a)
    z = x.sigmoid()
    assert z.data == expected
    slope = grads_of(z, x)[0]
    assert slope == 0.0 or (0.0 < slope < 1e-300)


def test_sigmoid_of_very_negative_input_keeps_its_tiny_value() -> None:
    # sigmoid(-710) is about exp(-710), a subnormal double; the naive 1 / (1 + exp(710))
    # overflows exp and gives 0 instead.
    assert (Value(-710.0).sigmoid()).data == pytest.approx(math.exp(-710.0), rel=1e-12)


@pytest.mark.parametrize("a, expected", [(1000.0, 1.0), (-1000.0, -1.0)])
def test_tanh_saturates(a: float, expected: float) -> None:
    x = Value(a)
    z = x.tanh()
    assert z.data == expected
    assert grads_of(z, x) == [0.0]


def test_infinities_and_nan_pass_through() -> None:
    assert (Value(math.inf) + 1).data == math.inf
    assert math.isnan((Value(math.inf) - math.inf).data)
    assert math.isnan((Value(math.nan) * 0).data)
    # relu of nan: PyTorch and micrograd propagate nan (a naive max would give 0).
    assert math.isnan(Value(math.nan).relu().data)


def test_negative_zero_is_kept() -> None:
    z = -Value(0.0)
    assert z.data == 0.0 and math.copysign(1.0, z.data) == -1.0


# ---------------------------------------------------------------------------------
# Every op of the table, by its Value methods: no op named
# ---------------------------------------------------------------------------------

# Points where every op is smooth and defined: positive (log, powers) and away from 0
# (the kinks of relu and abs).
SMOOTH_POINTS = [(0.3,), (0.7,), (1.3,), (2.1,)]
SMOOTH_PAIRS = [(0.7, 1.3), (1.9, 0.45), (0.3, 2.2)]
NUMBERS = [2.0, 0.75]

# Ops of the table that no single Value method makes, and the tests that check them.
OTHER_TESTS = {
    _lib.OP_LEAF: "every test here",
    _lib.OP_SUM: "test_sum and its neighbours here",
    _lib.OP_NEURON: "tests/test_nn.py (networks against micrograd)",
    _lib.OP_CUSTOM: "tests/test_engine_graph.py (custom nodes)",
}


def test_every_op_of_the_table_is_checked_here_or_named_with_its_test() -> None:
    by_method = {method.op.code for method in OP_METHODS}
    assert by_method | set(OTHER_TESTS) == {op.code for op in _lib.OPS}
    assert set(OTHER_TESTS) == STRUCTURAL_OPS
    # Every op of one or two operands has a method that takes just its operands.
    assert {op.code for op in FIXED_ARITY_OPS} <= by_method


@pytest.mark.parametrize("method", OP_METHODS, ids=str)
def test_every_op_method_matches_its_reference_and_finite_differences(method: OpMethod) -> None:
    points = SMOOTH_PAIRS if method.operands == 2 else SMOOTH_POINTS
    numbers = [2.0] if method.form in ("unary", "values") else NUMBERS
    for point, number in itertools.product(points, numbers):
        values = [Value(x) for x in point]
        out = method.apply(values, number)
        assert _lib.op_of(out._ptr) == method.op.code
        expected = reference_or_library(method, point, number, use_torch=False)
        assert out.data == pytest.approx(expected, rel=1e-12), (point, number)
        out.backward()
        differences = finite_difference_slopes(
            lambda xs: method.apply([Value(x) for x in xs], number).data, point
        )
        for value, difference in zip(values, differences):
            assert difference is not None, f"{method} is not smooth at {point}"
            assert abs(value.grad - difference.slope) <= difference.tolerance, (
                point, number, value.grad, difference
            )


# Special points: signed zeros, ones, small and huge magnitudes, infinities, nan.
SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, -2.0, 1e-300, 1e300, -1e300, math.inf, -math.inf, math.nan]
EXPONENTS = [0.0, 1.0, 2.0, 3.0, -1.0, -2.0, 0.5, -0.5]


@pytest.mark.parametrize("op", FIXED_ARITY_OPS, ids=lambda op: f"{op.name}/{op.arity}")
def test_every_op_at_special_points_matches_its_reference(op: _lib.Op) -> None:
    """Forward against the reference (inf and nan where C's libm gives them), and the
    backward rule against finite differences wherever the op is smooth."""
    method = method_of(op)
    assert method is not None, f"op {op.name!r} has no Value method"
    params = EXPONENTS if op.takes_param else [0.0]
    smooth = 0
    for point in itertools.product(SPECIAL, repeat=op.arity):
        for param in params:
            data = forward(op.code, point, param)
            expected = reference(method, point, param, use_torch=False)
            assert same_as_reference(data, expected), (point, param, data, expected)
            smooth += slopes_agree(op.code, point, param, slopes(op.code, point, param))
    assert smooth > 0
