"""Inputs that are not real numbers, numbers too large for a double, and failures of
the C library: each must raise a clear Python exception and change nothing."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

import microcrad
from microcrad import MicrocradError, _lib
from microcrad.engine import Value

NOT_NUMBERS = ["3", None, 2j, [1.0], (1.0,), {"x": 1}, Decimal("1.5"), object()]
NOT_NUMBER_IDS = [type(x).__name__ for x in NOT_NUMBERS]
HUGE = 10**400


@pytest.mark.parametrize("thing", NOT_NUMBERS, ids=NOT_NUMBER_IDS)
def test_constructor_rejects_non_numbers_naming_the_type(thing: Any) -> None:
    with pytest.raises(TypeError, match=repr(type(thing).__name__)):
        Value(thing)


def test_constructor_rejects_a_value_as_data() -> None:
    with pytest.raises(TypeError, match="'Value'"):
        Value(Value(1.0))  # type: ignore[arg-type]


BINARY_OPERATORS = [operator.add, operator.sub, operator.mul, operator.truediv, operator.pow]


@pytest.mark.parametrize("thing", NOT_NUMBERS, ids=NOT_NUMBER_IDS)
@pytest.mark.parametrize("op", BINARY_OPERATORS, ids=lambda op: op.__name__)
def test_operators_reject_non_numbers_on_either_side(
    op: Callable[[Any, Any], Any], thing: Any
) -> None:
    x = Value(2.0)
    with pytest.raises(TypeError):
        op(x, thing)
    with pytest.raises(TypeError):
        op(thing, x)


def test_operator_errors_are_pythons_own_naming_both_types() -> None:
    with pytest.raises(TypeError, match=r"unsupported operand type\(s\) for \+: 'Value' and 'str'"):
        Value(1.0) + "x"  # type: ignore[operator]
    both = r"unsupported operand type\(s\) for \*: 'NoneType' and 'Value'"
    with pytest.raises(TypeError, match=both):
        None * Value(1.0)  # type: ignore[operator]


@pytest.mark.parametrize("thing", NOT_NUMBERS, ids=NOT_NUMBER_IDS)
def test_setters_reject_non_numbers(thing: Any) -> None:
    x = Value(2.0)
    with pytest.raises(TypeError, match=repr(type(thing).__name__)):
        x.data = thing
    with pytest.raises(TypeError, match=repr(type(thing).__name__)):
        x.grad = thing
    assert (x.data, x.grad) == (2.0, 0.0)


@pytest.mark.parametrize("thing", NOT_NUMBERS, ids=NOT_NUMBER_IDS)
def test_sum_rejects_non_numbers(thing: Any) -> None:
    with pytest.raises(TypeError, match=repr(type(thing).__name__)):
        Value.sum([Value(1.0), 2.0, thing])


def test_children_must_be_values() -> None:
    with pytest.raises(TypeError, match="_children must be Values, got 'float'"):
        Value(1.0, (Value(2.0), 3.0))  # type: ignore[arg-type]


def test_op_and_label_must_be_text() -> None:
    with pytest.raises(TypeError, match="_op"):
        Value(1.0, (), 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="label"):
        Value(1.0, label=None)  # type: ignore[arg-type]
    x = Value(1.0)
    with pytest.raises(TypeError, match="label"):
        x.label = 3  # type: ignore[assignment]


def test_bool_is_a_number_like_in_python() -> None:
    assert (Value(True) + False).data == 1.0


# ---------------------------------------------------------------------------------
# Numbers too large for a double
# ---------------------------------------------------------------------------------


def test_huge_int_in_constructor() -> None:
    with pytest.raises(OverflowError):
        Value(HUGE)


@pytest.mark.parametrize("op", BINARY_OPERATORS, ids=lambda op: op.__name__)
def test_huge_int_in_operators(op: Callable[[Any, Any], Any]) -> None:
    x = Value(2.0)
    with pytest.raises(OverflowError):
        op(x, HUGE)
    with pytest.raises(OverflowError):
        op(HUGE, x)


def test_huge_int_in_setters() -> None:
    x = Value(2.0)
    with pytest.raises(OverflowError):
        x.data = HUGE
    with pytest.raises(OverflowError):
        x.grad = -HUGE
    assert x.data == 2.0


def test_largest_finite_double_is_fine() -> None:
    assert Value(int(1.7976931348623157e308)).data == 1.7976931348623157e308


def test_non_finite_floats_are_numbers() -> None:
    assert Value(math.inf).data == math.inf
    assert math.isnan(Value(math.nan).data)


# ---------------------------------------------------------------------------------
# Failures inside the C library
# ---------------------------------------------------------------------------------


@pytest.fixture
def fail_next_allocation():
    """Makes the C library's next allocation fail, and cancels it afterwards if unused."""
    status = _lib.c.microcrad_fail_allocation(1)
    assert status == 0
    yield
    _lib.c.microcrad_fail_allocation(0)


@pytest.mark.parametrize(
    "make",
    [
        lambda x: Value(1.0),
        lambda x: x * x,
        lambda x: x + 1,
        lambda x: 1 - x,
        lambda x: x**2,
        lambda x: x.tanh(),
        lambda x: Value.sum([x, x]),
        lambda x: Value(1.0, (x,), "custom"),
    ],
    ids=["leaf", "mul", "add_number", "rsub_number", "pow_const", "tanh", "sum", "children"],
)
def test_out_of_memory_is_a_memory_error_and_changes_nothing(make, request) -> None:
    x = Value(3.0)
    before = microcrad.live_values()
    request.getfixturevalue("fail_next_allocation")
    with pytest.raises(MemoryError, match="out of memory"):
        make(x)
    assert microcrad.live_values() == before
    assert (x * x).data == 9.0  # the library works again


@pytest.mark.parametrize("make", [lambda x: x + 1, lambda x: 2**x, lambda x: Value.sum([x, 1])])
def test_out_of_memory_after_a_temporary_leaf_releases_the_leaf(make) -> None:
    x = Value(3.0)
    before = microcrad.live_values()
    _lib.c.microcrad_fail_allocation(2)  # the leaf for the number succeeds, the op fails
    try:
        with pytest.raises(MemoryError):
            make(x)
    finally:
        _lib.c.microcrad_fail_allocation(0)
    assert microcrad.live_values() == before


def test_backward_out_of_memory_changes_no_gradient() -> None:
    x = Value(3.0)
    y = (x * x).tanh() * x
    y.backward()
    grads = (x.grad, y.grad)
    # Fail each allocation that backward makes, one at a time, until it succeeds.
    for n in range(1, 10):
        _lib.c.microcrad_fail_allocation(n)
        try:
            y.backward()
        except MemoryError:
            assert (x.grad, y.grad) == grads
            continue
        finally:
            _lib.c.microcrad_fail_allocation(0)
        break
    else:
        pytest.fail("backward kept failing")
    assert n > 1, "backward never allocated: the hook did not reach it"
    assert x.grad == 2 * grads[0]


def test_errors_are_not_echoed_on_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    x = Value(3.0)
    _lib.c.microcrad_fail_allocation(1)
    with pytest.raises(MemoryError):
        x * x
    assert capfd.readouterr().err == ""


def test_invalid_pointers_raise_microcrad_error() -> None:
    # Python code cannot reach this path; it is checked through the bridge directly.
    with pytest.raises(MicrocradError, match="NULL"):
        _lib.check_status(_lib.c.value_retain(None))
    with pytest.raises(MicrocradError, match="NULL"):
        _lib.node_or_raise(_lib.c.value_neg(None), 0)
    assert issubclass(MicrocradError, RuntimeError)


def test_nan_data_is_not_mistaken_for_an_error() -> None:
    x = Value(math.nan)
    x.grad = math.nan
    assert math.isnan(x.data) and math.isnan(x.grad)


def test_argument_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="invalid|negative|>= 0"):
        _lib.check_status(_lib.c.microcrad_fail_allocation(-1))


@pytest.mark.parametrize(
    "status, exception",
    [
        (_lib.ERR_NULL, MicrocradError),
        (_lib.ERR_RELEASED, MicrocradError),
        (_lib.ERR_FOREIGN, MicrocradError),
        (_lib.ERR_NOMEM, MemoryError),
        (_lib.ERR_ARGUMENT, ValueError),
        (_lib.ERR_OVERFLOW, OverflowError),
        (_lib.ERR_IO, OSError),
        (-1000, MicrocradError),  # a status this version does not know
    ],
)
def test_every_status_has_its_exception(status: int, exception: type[Exception]) -> None:
    with pytest.raises(exception):
        _lib.check_status(status)
