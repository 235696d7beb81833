"""microcrad.losses: each loss's value against a direct formula (and micrograd or torch
where they have it), its gradient against central finite differences, its stability
for large inputs, and its input validation."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import micrograd.engine
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from microcrad import losses
from microcrad.engine import Value

try:
    import torch
except ImportError:  # the comparisons with torch are skipped
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")

logit = st.floats(min_value=-8.0, max_value=8.0, allow_nan=False)


def loss_and_grads(
    loss: Callable[[list[Value]], Value], xs: Sequence[float]
) -> tuple[float, list[float]]:
    """The loss of fresh leaves holding ``xs``, and the gradient with respect to them."""
    leaves = [Value(x) for x in xs]
    out = loss(leaves)
    out.backward()
    return out.data, [leaf.grad for leaf in leaves]


def finite_differences(
    loss: Callable[[list[Value]], Value], xs: Sequence[float], h: float = 1e-6
) -> list[float]:
    """Central differences of the loss, one input at a time."""
    grads = []
    for i in range(len(xs)):
        up = list(xs)
        down = list(xs)
        up[i] += h
        down[i] -= h
        grads.append(
            (loss([Value(x) for x in up]).data - loss([Value(x) for x in down]).data) / (2 * h)
        )
    return grads


def assert_gradient_matches_finite_differences(loss, xs) -> None:  # type: ignore[no-untyped-def]
    _, grads = loss_and_grads(loss, xs)
    for analytic, numeric in zip(grads, finite_differences(loss, xs)):
        assert math.isclose(analytic, numeric, rel_tol=1e-5, abs_tol=1e-7), (analytic, numeric)


def softplus(z: float) -> float:
    """log(1 + exp(z)) in plain floats."""
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


# ---------------------------------------------------------------------------------
# svm_max_margin
# ---------------------------------------------------------------------------------


@given(
    pairs=st.lists(st.tuples(logit, st.sampled_from([-1, 1])), min_size=1, max_size=8),
)
def test_svm_value_is_micrograds_and_the_formula(pairs: list[tuple[float, int]]) -> None:
    scores = [s for s, _ in pairs]
    labels = [y for _, y in pairs]
    value = losses.svm_max_margin([Value(s) for s in scores], labels).data
    formula = sum(max(0.0, 1.0 - y * s) for s, y in pairs) / len(pairs)
    assert math.isclose(value, formula, rel_tol=1e-14, abs_tol=1e-15)
    # micrograd's demo, verbatim: the same operations, so the same bits.
    mg_scores = [micrograd.engine.Value(s) for s in scores]
    mg_losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(labels, mg_scores)]
    assert value == (sum(mg_losses) * (1.0 / len(mg_losses))).data


@given(pairs=st.lists(st.tuples(logit, st.sampled_from([-1.0, 1.0])), min_size=1, max_size=6))
def test_svm_gradient_matches_finite_differences(pairs: list[tuple[float, float]]) -> None:
    scores = [s for s, _ in pairs]
    labels = [y for _, y in pairs]
    # The hinge has a kink at margin 1, where finite differences straddle two slopes.
    assume(all(abs(1.0 - y * s) > 1e-3 for s, y in pairs))
    assert_gradient_matches_finite_differences(lambda v: losses.svm_max_margin(v, labels), scores)
    _, grads = loss_and_grads(lambda v: losses.svm_max_margin(v, labels), scores)
    for grad, (s, y) in zip(grads, pairs):
        assert grad == pytest.approx(-y / len(pairs) if 1.0 - y * s > 0 else 0.0, rel=1e-15)


def test_svm_accepts_numpy_labels_and_a_single_score() -> None:
    scores = [Value(0.5), Value(-2.0)]
    assert losses.svm_max_margin(scores, np.array([1, -1])).data == 0.25
    assert losses.svm_max_margin(Value(0.5), -1).data == 1.5


# ---------------------------------------------------------------------------------
# mse
# ---------------------------------------------------------------------------------


@given(pairs=st.lists(st.tuples(logit, logit), min_size=1, max_size=8))
def test_mse_value_and_gradient(pairs: list[tuple[float, float]]) -> None:
    predictions = [p for p, _ in pairs]
    targets = [t for _, t in pairs]
    value, grads = loss_and_grads(lambda v: losses.mse(v, targets), predictions)
    assert math.isclose(
        value, sum((p - t) ** 2 for p, t in pairs) / len(pairs), rel_tol=1e-14, abs_tol=1e-15
    )
    for grad, (p, t) in zip(grads, pairs):
        assert math.isclose(grad, 2 * (p - t) / len(pairs), rel_tol=1e-14, abs_tol=1e-15)
    assert_gradient_matches_finite_differences(lambda v: losses.mse(v, targets), predictions)


def test_mse_targets_may_be_values_and_get_gradients() -> None:
    prediction, target = Value(3.0), Value(1.0)
    loss = losses.mse([prediction], [target])
    loss.backward()
    assert loss.data == 4.0
    assert prediction.grad == 4.0 and target.grad == -4.0
    assert losses.mse(Value(2.0), 0.5).data == 2.25


# ---------------------------------------------------------------------------------
# binary_cross_entropy
# ---------------------------------------------------------------------------------


@given(
    pairs=st.lists(st.tuples(st.floats(-40.0, 40.0), st.floats(0.0, 1.0)), min_size=1, max_size=8)
)
def test_bce_value_and_gradient(pairs: list[tuple[float, float]]) -> None:
    logits = [z for z, _ in pairs]
    targets = [t for _, t in pairs]
    value, grads = loss_and_grads(lambda v: losses.binary_cross_entropy(v, targets), logits)

    def direct(z: float, t: float) -> float:
        # -t log(sigmoid z) - (1 - t) log(1 - sigmoid z), with log(sigmoid z) = -softplus(-z).
        return t * softplus(-z) + (1 - t) * softplus(z)

    expected = sum(direct(z, t) for z, t in pairs) / len(pairs)
    assert math.isclose(value, expected, rel_tol=1e-12, abs_tol=1e-14)
    for grad, (z, t) in zip(grads, pairs):
        assert math.isclose(
            grad, (1 / (1 + math.exp(-z)) - t) / len(pairs), rel_tol=1e-12, abs_tol=1e-15
        )
    if all(abs(z) < 10 for z in logits):  # where finite differences can resolve the slope
        assert_gradient_matches_finite_differences(
            lambda v: losses.binary_cross_entropy(v, targets), logits
        )


@needs_torch
@given(
    pairs=st.lists(
        st.tuples(st.floats(-50.0, 50.0), st.sampled_from([0.0, 1.0, 0.3])), min_size=1, max_size=8
    )
)
def test_bce_matches_torch(pairs: list[tuple[float, float]]) -> None:
    logits = [z for z, _ in pairs]
    targets = [t for _, t in pairs]
    value, grads = loss_and_grads(lambda v: losses.binary_cross_entropy(v, targets), logits)
    z = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    reference = torch.nn.functional.binary_cross_entropy_with_logits(
        z, torch.tensor(targets, dtype=torch.float64)
    )
    reference.backward()
    # torch computes log(1 + exp(-|z|)) after cancelling |z| against itself, which costs
    # it about |z| * 1e-16 in absolute accuracy (the formula test above holds ours to
    # 1e-12 relative).
    assert math.isclose(
        value, reference.item(), rel_tol=1e-12, abs_tol=1e-14 * (1 + max(map(abs, logits)))
    )
    for ours, theirs in zip(grads, z.grad.tolist()):
        assert math.isclose(ours, theirs, rel_tol=1e-12, abs_tol=1e-15)


@pytest.mark.parametrize(
    "z, t, expected",
    [(800.0, 0.0, 800.0), (-800.0, 1.0, 800.0), (800.0, 1.0, 0.0), (-800.0, 0.0, 0.0)],
)
def test_bce_is_finite_for_huge_logits(z: float, t: float, expected: float) -> None:
    value, (grad,) = loss_and_grads(lambda v: losses.binary_cross_entropy(v, [t]), [z])
    assert value == expected
    assert grad == (1.0 if z > 0 else 0.0) - t


# ---------------------------------------------------------------------------------
# softmax_cross_entropy
# ---------------------------------------------------------------------------------


def log_softmax(zs: Sequence[float], k: int) -> float:
    m = max(zs)
    return zs[k] - m - math.log(sum(math.exp(z - m) for z in zs))


@given(data=st.data(), zs=st.lists(logit, min_size=1, max_size=8))
def test_softmax_cross_entropy_value_and_gradient(data: st.DataObject, zs: list[float]) -> None:
    k = data.draw(st.integers(0, len(zs) - 1))
    value, grads = loss_and_grads(lambda v: losses.softmax_cross_entropy(v, k), zs)
    assert math.isclose(value, -log_softmax(zs, k), rel_tol=1e-12, abs_tol=1e-14)
    total = sum(math.exp(z) for z in zs)
    for i, grad in enumerate(grads):
        assert math.isclose(grad, math.exp(zs[i]) / total - (i == k), rel_tol=1e-12, abs_tol=1e-14)
    assert_gradient_matches_finite_differences(lambda v: losses.softmax_cross_entropy(v, k), zs)


@needs_torch
@given(data=st.data(), zs=st.lists(st.floats(-100.0, 100.0), min_size=2, max_size=8))
def test_softmax_cross_entropy_matches_torch(data: st.DataObject, zs: list[float]) -> None:
    k = data.draw(st.integers(0, len(zs) - 1))
    value, grads = loss_and_grads(lambda v: losses.softmax_cross_entropy(v, k), zs)
    z = torch.tensor([zs], dtype=torch.float64, requires_grad=True)
    reference = torch.nn.functional.cross_entropy(z, torch.tensor([k]))
    reference.backward()
    assert math.isclose(value, reference.item(), rel_tol=1e-12, abs_tol=1e-14)
    for ours, theirs in zip(grads, z.grad[0].tolist()):
        assert math.isclose(ours, theirs, rel_tol=1e-12, abs_tol=1e-15)


def test_softmax_cross_entropy_is_finite_for_huge_logits() -> None:
    # exp(1000) overflows: only the shift by the largest logit keeps this finite.
    value, grads = loss_and_grads(
        lambda v: losses.softmax_cross_entropy(v, 1), [1000.0, 0.0, -1000.0]
    )
    assert value == 1000.0
    assert grads == [1.0, -1.0, 0.0]
    value, grads = loss_and_grads(lambda v: losses.softmax_cross_entropy(v, 0), [1000.0, 1000.0])
    assert value == pytest.approx(math.log(2), rel=1e-15)
    assert grads == [pytest.approx(-0.5), pytest.approx(0.5)]


@pytest.mark.parametrize("gap", [5.0, 20.0, 35.0, 700.0])
def test_tiny_losses_keep_their_digits(gap: float) -> None:
    # log(1 + e**-gap) would round 1 + e**-gap first and lose e**-gap's low digits.
    expected = math.log1p(math.exp(-gap))
    value, grads = loss_and_grads(lambda v: losses.softmax_cross_entropy(v, 0), [gap, 0.0])
    assert math.isclose(value, expected, rel_tol=1e-15)
    assert grads[1] == pytest.approx(math.exp(-gap) / (1 + math.exp(-gap)), rel=1e-15)
    value, (grad,) = loss_and_grads(lambda v: losses.binary_cross_entropy(v, [1.0]), [gap])
    assert math.isclose(value, expected, rel_tol=1e-15)
    assert grad == pytest.approx(-math.exp(-gap) / (1 + math.exp(-gap)), rel=1e-15)


def test_softmax_cross_entropy_of_one_class_is_zero() -> None:
    value, grads = loss_and_grads(lambda v: losses.softmax_cross_entropy(v, 0), [3.5])
    assert value == 0.0 and grads == [0.0]


# ---------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------


def two() -> list[Value]:
    return [Value(0.5), Value(-0.5)]


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda: losses.svm_max_margin([], []), ValueError),
        (lambda: losses.svm_max_margin(two(), [1]), ValueError),
        (lambda: losses.svm_max_margin(two(), [1, 0]), ValueError),
        (lambda: losses.svm_max_margin(two(), [1, "1"]), TypeError),
        (lambda: losses.svm_max_margin(two(), [1, True]), TypeError),
        (lambda: losses.svm_max_margin([0.5, -0.5], [1, -1]), TypeError),
        (lambda: losses.svm_max_margin("ab", [1, -1]), TypeError),
        (lambda: losses.mse([], []), ValueError),
        (lambda: losses.mse(two(), [1.0, 2.0, 3.0]), ValueError),
        (lambda: losses.mse(two(), [1.0, None]), TypeError),
        (lambda: losses.mse(3.0, 3.0), TypeError),
        (lambda: losses.binary_cross_entropy(two(), [0.0, 1.5]), ValueError),
        (lambda: losses.binary_cross_entropy(two(), [0.0, -0.1]), ValueError),
        (lambda: losses.binary_cross_entropy(two(), [0.0, float("nan")]), ValueError),
        (lambda: losses.binary_cross_entropy(two(), [0.0]), ValueError),
        (lambda: losses.binary_cross_entropy(two(), [Value(0.0), 1.0]), TypeError),
        (lambda: losses.softmax_cross_entropy([], 0), ValueError),
        (lambda: losses.softmax_cross_entropy(two(), 2), ValueError),
        (lambda: losses.softmax_cross_entropy(two(), -1), ValueError),
        (lambda: losses.softmax_cross_entropy(two(), 1.0), TypeError),
        (lambda: losses.softmax_cross_entropy(two(), True), TypeError),
        (lambda: losses.softmax_cross_entropy(Value(1.0), 0), TypeError),
        (lambda: losses.softmax_cross_entropy([1.0, 2.0], 0), TypeError),
    ],
)
def test_bad_inputs_raise(call, error) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error):
        call()


def test_softmax_cross_entropy_accepts_numpy_integer_targets() -> None:
    assert losses.softmax_cross_entropy(two(), np.int64(1)).data == pytest.approx(
        -log_softmax([0.5, -0.5], 1)
    )
