"""Loss functions: each takes model outputs (Values) and targets and returns one Value
to call ``backward()`` on.

* ``svm_max_margin``: micrograd's demo loss for labels -1/+1.
* ``mse``: mean squared error, for regression.
* ``binary_cross_entropy``: two classes, from logits (no sigmoid needed first).
* ``softmax_cross_entropy``: several classes, from logits (no softmax needed first).

The cross-entropies are computed in forms that neither overflow nor lose the loss to
rounding for large logits, and whose value is as accurate as ``math.log1p`` makes it
even when the loss is tiny. The form, and that last correction (a constant), are
chosen from the logits when the graph is built; a graph replayed with other data
keeps them.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Union

from microcrad.engine import Value

__all__ = ["svm_max_margin", "mse", "binary_cross_entropy", "softmax_cross_entropy"]

Number = Union[int, float, numbers.Real]


def _values(outputs: Value | Iterable[Value], name: str) -> list[Value]:
    """``outputs`` (one Value or an iterable of them) as a non-empty list of Values."""
    items = [outputs] if isinstance(outputs, Value) else _as_list(outputs, name)
    if not items:
        raise ValueError(f"{name} is empty")
    values: list[Value] = []
    for item in items:
        if not isinstance(item, Value):
            raise TypeError(f"{name} must hold Values, not {type(item).__name__!r}")
        values.append(item)
    return values


def _as_list(items: object, name: str) -> list[object]:
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise TypeError(f"{name} must be a sequence, not {type(items).__name__!r}")
    return list(items)


def _number(x: object, name: str) -> float:
    # bool is a number to Python, but a label True is more likely a slip than a 1.
    if not isinstance(x, numbers.Real) or isinstance(x, bool):
        raise TypeError(f"{name} must hold numbers, not {type(x).__name__!r}")
    return float(x)


def _targets(targets: object, count: int, name: str) -> list[object]:
    """``targets`` (one item or a sequence) as a list of ``count`` items."""
    items: list[object] = (
        [targets] if isinstance(targets, (Value, numbers.Real)) else _as_list(targets, name)
    )
    if len(items) != count:
        raise ValueError(f"{count} outputs but {len(items)} {name}")
    return items


def _corrected(out: Value, exact: float) -> Value:
    """``out`` with its value moved to ``exact`` by adding a constant, which leaves its
    gradient untouched. For logs of 1 + tiny: rounding 1 + tiny drops the tiny's low
    digits (for tiny = 1e-8, about 1e-8 of the result), which ``math.log1p`` keeps."""
    error = exact - out.data
    # A non-finite correction would only turn an inf into a nan.
    if error == 0.0 or not math.isfinite(error):
        return out
    shifted: Value = out + error
    return shifted


def _log1p(u: Value) -> Value:
    """``log(1 + u)`` with ``math.log1p``'s accuracy; its gradient is 1 / (1 + u)."""
    return _corrected((1 + u).log(), math.log1p(u.data))


def svm_max_margin(scores: Value | Sequence[Value], labels: Number | Sequence[Number]) -> Value:
    """The mean hinge ("max-margin") loss ``mean(relu(1 - y * score))`` for labels y
    of -1 or +1, as in micrograd's demo.

    A score counts as right once it has the label's sign with a margin of at least 1;
    only the wrong or unsure scores contribute. The terms are built exactly as the demo
    builds them (``(1 + -yi*scorei).relu()``, then the sum times ``1.0 / n``), so the
    loss is bit-for-bit micrograd's.

    Args:
        scores: the model's outputs, one Value per example (or a single Value).
        labels: -1 or +1 for each example.

    Raises:
        TypeError: a score is not a Value or a label is not a number.
        ValueError: no scores, a different number of labels, or a label other than
            -1 and +1.
    """
    items = _values(scores, "scores")
    terms = []
    for score, label in zip(items, _targets(labels, len(items), "labels")):
        y = _number(label, "labels")
        if y not in (-1.0, 1.0):
            raise ValueError(f"labels must be -1 or +1, got {label!r}")
        terms.append((1 + -y * score).relu())
    return Value.sum(terms) * (1.0 / len(terms))


def mse(
    predictions: Value | Sequence[Value], targets: Number | Value | Sequence[Number | Value]
) -> Value:
    """The mean squared error ``mean((prediction - target) ** 2)``.

    Args:
        predictions: the model's outputs (or a single Value).
        targets: a number or a Value for each prediction.

    Raises:
        TypeError: a prediction is not a Value or a target is neither a Value nor a
            number.
        ValueError: no predictions, or a different number of targets.
    """
    items = _values(predictions, "predictions")
    terms = []
    for prediction, target in zip(items, _targets(targets, len(items), "targets")):
        if not isinstance(target, Value):
            target = _number(target, "targets")
        terms.append((prediction - target) ** 2)
    return Value.sum(terms) / len(terms)


def binary_cross_entropy(
    logits: Value | Sequence[Value], targets: Number | Sequence[Number]
) -> Value:
    """The mean binary cross-entropy of ``sigmoid(logit)`` against targets in [0, 1],
    computed from the logits.

    Each term is ``-t*log(sigmoid(z)) - (1-t)*log(1 - sigmoid(z))``, evaluated as
    ``z*(1-t) + log(1 + exp(-z))`` when z >= 0 and ``log(1 + exp(z)) - z*t`` when
    z < 0: exp never overflows, a confident wrong answer costs about |z| instead of
    inf, and the gradient is ``sigmoid(z) - t``. The log is given ``math.log1p``'s
    accuracy, so a tiny loss keeps its digits too.

    Args:
        logits: the model's raw outputs z (or a single Value).
        targets: the probability of class 1 for each example: 0 or 1 for hard labels.

    Raises:
        TypeError: a logit is not a Value or a target is not a number.
        ValueError: no logits, a different number of targets, or a target outside
            [0, 1].
    """
    items = _values(logits, "logits")
    terms = []
    for z, target in zip(items, _targets(targets, len(items), "targets")):
        t = _number(target, "targets")
        if not 0.0 <= t <= 1.0:
            raise ValueError(f"targets must lie in [0, 1], got {target!r}")
        if z.data >= 0:
            terms.append(z * (1.0 - t) + _log1p((-z).exp()))
        else:
            terms.append(_log1p(z.exp()) - z * t)
    return Value.sum(terms) / len(terms)


def softmax_cross_entropy(logits: Sequence[Value], target_index: int) -> Value:
    """The cross-entropy ``-log(softmax(logits)[target_index])`` of one example.

    Computed as ``log(sum(exp(z - m))) - (z[target_index] - m)`` where m is the largest
    logit, taken as a constant: every exp is at most 1, so nothing overflows, and the
    sum is at least 1, so the log is finite (and, being ``log1p`` of the other terms,
    is given ``math.log1p``'s accuracy). The gradient is
    ``softmax(logits) - onehot(target_index)``. Average the losses of a batch with
    ``Value.sum(losses) / len(losses)``.

    Args:
        logits: one Value per class (at least one).
        target_index: the index of the right class.

    Raises:
        TypeError: a logit is not a Value or target_index is not an int.
        ValueError: no logits, or target_index out of range.
    """
    if isinstance(logits, Value):
        raise TypeError("logits must be a sequence of Values, one per class")
    items = _values(logits, "logits")
    if not isinstance(target_index, numbers.Integral) or isinstance(target_index, bool):
        raise TypeError(f"target_index must be an int, not {type(target_index).__name__!r}")
    if not 0 <= target_index < len(items):
        raise ValueError(f"target_index {target_index} is out of range for {len(items)} classes")
    data = [z.data for z in items]
    # The largest finite logit; an inf or nan makes the loss nan (or inf) as it should.
    finite = [i for i, d in enumerate(data) if math.isfinite(d)]
    top = max(finite, key=data.__getitem__) if finite else 0
    shifted = [z - data[top] for z in items] if finite else items
    exps = [s.exp() for s in shifted]
    log_sum_exp = Value.sum(exps).log()
    if finite:
        # The sum is exp(0) = 1 plus the rest, so its log is log1p of the rest.
        rest = math.fsum(e.data for i, e in enumerate(exps) if i != top)
        log_sum_exp = _corrected(log_sum_exp, math.log1p(rest))
    return log_sum_exp - shifted[int(target_index)]
