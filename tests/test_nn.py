"""microcrad.nn against micrograd.nn: same weights, reprs, parameter order, outputs
(bit for bit) and gradients; the activations beyond micrograd against their formulas;
and the errors for bad arguments."""

from __future__ import annotations

import math
import random

import micrograd.engine
import micrograd.nn
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from microcrad import nn
from microcrad.engine import Value

GRAD_TOLERANCE = 1e-12

finite = st.floats(min_value=-3.0, max_value=3.0, allow_nan=False)


def twins(make_ours, make_theirs, seed: int):  # type: ignore[no-untyped-def]
    """The same network built by microcrad and by micrograd from the same seed."""
    random.seed(seed)
    ours = make_ours()
    random.seed(seed)
    theirs = make_theirs()
    return ours, theirs


def mlp_twins(nin: int, nouts: list[int], seed: int = 0) -> tuple[nn.MLP, micrograd.nn.MLP]:
    return twins(lambda: nn.MLP(nin, nouts), lambda: micrograd.nn.MLP(nin, nouts), seed)


def assert_close(ours: float, theirs: float) -> None:
    assert math.isclose(ours, theirs, rel_tol=GRAD_TOLERANCE, abs_tol=GRAD_TOLERANCE), (
        ours,
        theirs,
    )


# ---------------------------------------------------------------------------------
# Construction
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_ours, make_theirs",
    [
        (lambda: nn.Neuron(5), lambda: micrograd.nn.Neuron(5)),
        (lambda: nn.Neuron(3, nonlin=False), lambda: micrograd.nn.Neuron(3, nonlin=False)),
        (lambda: nn.Layer(4, 3), lambda: micrograd.nn.Layer(4, 3)),
        (lambda: nn.Layer(2, 1, nonlin=False), lambda: micrograd.nn.Layer(2, 1, nonlin=False)),
        (lambda: nn.MLP(2, [16, 16, 1]), lambda: micrograd.nn.MLP(2, [16, 16, 1])),
        (lambda: nn.MLP(3, [4, 4, 2]), lambda: micrograd.nn.MLP(3, [4, 4, 2])),
    ],
)
def test_same_seed_gives_the_same_parameters_in_the_same_order(make_ours, make_theirs) -> None:  # type: ignore[no-untyped-def]
    ours, theirs = twins(make_ours, make_theirs, seed=1337)
    assert repr(ours) == repr(theirs)
    ours_data = [p.data for p in ours.parameters()]
    theirs_data = [float(p.data) for p in theirs.parameters()]
    assert ours_data == theirs_data  # bit for bit, and in micrograd's order
    # The random stream is left where micrograd leaves it, too.
    random.seed(5)
    make_ours()
    after_ours = random.random()
    random.seed(5)
    make_theirs()
    assert random.random() == after_ours


def test_parameter_order_is_weights_then_bias_neuron_by_neuron() -> None:
    model = nn.MLP(2, [3, 1])
    expected = []
    for layer in model.layers:
        for neuron in layer.neurons:
            expected += neuron.w + [neuron.b]
    params = model.parameters()
    assert len(params) == (2 + 1) * 3 + (3 + 1) * 1
    assert all(p is q for p, q in zip(params, expected))
    assert all(n.b.data == 0.0 for layer in model.layers for n in layer.neurons)


def test_module_base_class() -> None:
    assert nn.Module().parameters() == []
    nn.Module().zero_grad()  # nothing to do, but allowed


# ---------------------------------------------------------------------------------
# Forward and backward passes against micrograd
# ---------------------------------------------------------------------------------


@given(
    seed=st.integers(0, 2**32 - 1),
    nin=st.integers(1, 5),
    # micrograd cannot feed a hidden layer of one neuron to the next layer.
    hidden=st.lists(st.integers(2, 4), max_size=2),
    nout=st.integers(1, 3),
    batch=st.lists(st.lists(finite, min_size=5, max_size=5), min_size=1, max_size=3),
)
def test_outputs_and_gradients_match_micrograd(
    seed: int, nin: int, hidden: list[int], nout: int, batch: list[list[float]]
) -> None:
    ours, theirs = mlp_twins(nin, hidden + [nout], seed)
    our_inputs = [[Value(x) for x in row[:nin]] for row in batch]
    their_inputs = [[micrograd.engine.Value(x) for x in row[:nin]] for row in batch]

    def outputs(model, inputs):  # type: ignore[no-untyped-def]
        result = []
        for row in inputs:
            out = model(row)
            result += out if isinstance(out, list) else [out]
        return result

    our_out, their_out = outputs(ours, our_inputs), outputs(theirs, their_inputs)
    assert [o.data for o in our_out] == [float(o.data) for o in their_out]  # bit for bit

    # The same loss built with the same operations on both sides.
    our_loss = sum(o * o * (k + 1) for k, o in enumerate(our_out))
    their_loss = sum(o * o * (k + 1) for k, o in enumerate(their_out))
    ours.zero_grad()
    theirs.zero_grad()
    our_loss.backward()
    their_loss.backward()
    for p, q in zip(ours.parameters(), theirs.parameters()):
        assert_close(p.grad, q.grad)
    for row, their_row in zip(our_inputs, their_inputs):
        for x, y in zip(row, their_row):
            assert_close(x.grad, y.grad)


def test_the_demo_network_matches_micrograd_on_numbers() -> None:
    ours, theirs = mlp_twins(2, [16, 16, 1], seed=1337)
    rng = np.random.default_rng(0)
    for row in rng.uniform(-2, 2, size=(20, 2)):
        # Plain numbers (here numpy floats) become leaves, as in micrograd.
        assert ours(row).data == float(theirs(list(row)).data)


def test_a_layer_of_one_neuron_returns_a_value_and_of_several_a_list() -> None:
    single = nn.Layer(3, 1)
    several = nn.Layer(3, 2)
    assert isinstance(single([1, 2, 3]), Value)
    out = several([1, 2, 3])
    assert isinstance(out, list) and len(out) == 2


def test_an_mlp_with_a_hidden_layer_of_one_neuron_works() -> None:
    # micrograd passes a lone Value on to the next layer, which then fails to iterate it.
    model = nn.MLP(2, [1, 3])
    out = model([0.5, -1.0])
    assert isinstance(out, list) and len(out) == 3
    hidden = model.layers[0].neurons[0]
    h = max(0.0, hidden.b.data + hidden.w[0].data * 0.5 + hidden.w[1].data * -1.0)
    for neuron, o in zip(model.layers[1].neurons, out):
        assert o.data == neuron.b.data + neuron.w[0].data * h


def test_a_neuron_is_one_fused_node_and_its_activation() -> None:
    neuron = nn.Neuron(8)
    out = neuron([float(i) for i in range(8)])
    assert out._op == "ReLU"
    (pre,) = out._prev
    assert pre._op == "neuron"
    assert len(pre._prev) == 8 + 8 + 1  # the weights, the inputs and the bias
    assert nn.Neuron(8, nonlin=False)([0.0] * 8)._op == "neuron"


def test_zero_grad_clears_every_parameter() -> None:
    model = nn.MLP(3, [4, 2])
    loss = sum(model([1.0, -2.0, 3.0]), Value(0.0))
    loss.backward()
    assert any(p.grad != 0 for p in model.parameters())
    model.zero_grad()
    assert all(p.grad == 0 for p in model.parameters())


def test_inputs_may_be_any_iterable_of_values_and_numbers() -> None:
    neuron = nn.Neuron(3, nonlin=False)
    expected = neuron([1.0, 2.0, 3.0]).data
    assert neuron((1, 2.0, np.float64(3.0))).data == expected
    assert neuron(np.array([1.0, 2.0, 3.0])).data == expected
    # Values made on the fly live on in the graph.
    out = neuron(Value(float(x)) for x in (1, 2, 3))
    assert out.data == expected
    out.backward()
    assert neuron.w[2].grad == 3.0


def test_replacing_a_weight_or_the_bias_is_seen_by_the_next_call() -> None:
    neuron = nn.Neuron(2, nonlin=False)
    neuron([1.0, 1.0])
    neuron.w[1] = Value(10.0)
    neuron.b = Value(0.5)
    assert neuron([1.0, 2.0]).data == 0.5 + neuron.w[0].data * 1.0 + 10.0 * 2.0
    neuron.w = [Value(1.0), Value(2.0)]
    assert neuron([3.0, 4.0]).data == 0.5 + 3.0 + 8.0


def test_a_neuron_keeps_working_when_only_it_holds_its_parameters() -> None:
    neuron = nn.Neuron(3)
    params = neuron.parameters()
    data = [p.data for p in params]
    del params
    out = neuron([1.0, 1.0, 1.0])
    assert out.data == max(0.0, data[3] + data[0] + data[1] + data[2])


# ---------------------------------------------------------------------------------
# Activations beyond micrograd
# ---------------------------------------------------------------------------------


def pre_activation(neuron: nn.Neuron, x: list[float]) -> float:
    """b + w[0]*x[0] + ..., added in micrograd's order."""
    total = neuron.b.data
    for w, xi in zip(neuron.w, x):
        total = total + w.data * xi
    return total


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


ACTIVATION_FORMULAS = {
    # name: (f, f')
    "relu": (lambda z: max(z, 0.0), lambda z: 1.0 if z > 0 else 0.0),
    "tanh": (math.tanh, lambda z: 1.0 - math.tanh(z) ** 2),
    "sigmoid": (sigmoid, lambda z: sigmoid(z) * (1.0 - sigmoid(z))),
    "linear": (lambda z: z, lambda z: 1.0),
}


@pytest.mark.parametrize("activation", sorted(ACTIVATION_FORMULAS))
@given(x=st.lists(finite, min_size=4, max_size=4), seed=st.integers(0, 1000))
def test_each_activation_follows_its_formula(activation: str, x: list[float], seed: int) -> None:
    random.seed(seed)
    neuron = nn.Neuron(4, activation=activation)
    neuron.b.data = 0.25
    inputs = [Value(xi) for xi in x]
    out = neuron(inputs)
    f, df = ACTIVATION_FORMULAS[activation]
    z = pre_activation(neuron, x)
    assert math.isclose(out.data, f(z), rel_tol=1e-15, abs_tol=1e-15)
    out.backward()
    slope = df(z)
    assert math.isclose(neuron.b.grad, slope, rel_tol=1e-12, abs_tol=1e-15)
    for w, xi, inp in zip(neuron.w, x, inputs):
        assert math.isclose(w.grad, slope * xi, rel_tol=1e-12, abs_tol=1e-15)
        assert math.isclose(inp.grad, slope * w.data, rel_tol=1e-12, abs_tol=1e-15)


def test_activation_names_in_reprs() -> None:
    assert repr(nn.Neuron(3, activation="tanh")) == "TanhNeuron(3)"
    assert repr(nn.Neuron(3, activation="sigmoid")) == "SigmoidNeuron(3)"
    assert repr(nn.Neuron(3, activation="linear")) == "LinearNeuron(3)"
    assert repr(nn.Neuron(3, nonlin=False, activation="tanh")) == "LinearNeuron(3)"
    model = nn.MLP(2, [3, 1], activation="tanh")
    assert repr(model) == (
        "MLP of [Layer of [TanhNeuron(2), TanhNeuron(2), TanhNeuron(2)], "
        "Layer of [LinearNeuron(3)]]"
    )


def test_mlp_activation_applies_to_hidden_layers_only() -> None:
    model = nn.MLP(2, [3, 3, 1], activation="sigmoid")
    out = model([0.3, -0.7])
    assert out._op == "neuron"  # the linear output layer
    hidden = [n([0.3, -0.7]) for n in model.layers[0].neurons]
    assert {h._op for h in hidden} == {"sigmoid"}


def test_the_activation_default_draws_the_same_weights() -> None:
    ours, theirs = twins(
        lambda: nn.MLP(3, [4, 1], activation="tanh"), lambda: micrograd.nn.MLP(3, [4, 1]), 7
    )
    assert [p.data for p in ours.parameters()] == [float(p.data) for p in theirs.parameters()]


# ---------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, error",
    [
        (lambda: nn.Neuron(2, activation="gelu"), ValueError),
        (lambda: nn.Neuron(2, activation="ReLU"), ValueError),
        (lambda: nn.Neuron(2, activation=None), TypeError),
        (lambda: nn.MLP(2, [3, 1], activation="softmax"), ValueError),
        (lambda: nn.Neuron(-1), ValueError),
        (lambda: nn.Neuron(2.0), TypeError),
        (lambda: nn.Neuron(True), TypeError),
        (lambda: nn.Layer(2, 0), ValueError),
        (lambda: nn.Layer(2, "3"), TypeError),
        (lambda: nn.MLP(2, []), ValueError),
        (lambda: nn.MLP(2, 3), TypeError),
        (lambda: nn.MLP(2, [3, 0]), ValueError),
    ],
)
def test_bad_arguments_raise(make, error) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error):
        make()


def test_unknown_activation_message_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="relu.*tanh.*sigmoid.*linear"):
        nn.Neuron(2, activation="swish")


@pytest.mark.parametrize(
    "inputs, error",
    [
        ([1.0], ValueError),  # too few: micrograd would silently use fewer weights
        ([1.0, 2.0, 3.0], ValueError),
        ([1.0, "2"], TypeError),
        ([1.0, None], TypeError),
        (Value(1.0), TypeError),
        (3.0, TypeError),
    ],
)
def test_bad_inputs_raise(inputs: object, error: type[Exception]) -> None:
    neuron = nn.Neuron(2)
    layer = nn.Layer(2, 3)
    model = nn.MLP(2, [3, 1])
    for module in (neuron, layer, model):
        with pytest.raises(error):
            module(inputs)


def test_a_weight_that_is_not_a_value_raises() -> None:
    neuron = nn.Neuron(2)
    neuron.w[0] = 1.5  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="Values"):
        neuron([1.0, 2.0])


def test_a_deep_copy_trains_apart_from_the_original() -> None:
    import copy

    model = nn.MLP(2, [3, 1])
    before = model([1.0, 2.0]).data
    twin = copy.deepcopy(model)
    assert repr(twin) == repr(model)
    assert twin([1.0, 2.0]).data == before
    for p in twin.parameters():
        p.data = 0.0
    assert twin([1.0, 2.0]).data == 0.0
    assert model([1.0, 2.0]).data == before
    shallow = copy.copy(model.layers[0].neurons[0])
    assert shallow.w is model.layers[0].neurons[0].w
