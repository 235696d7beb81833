/*
 * regression.c - a small neural net learns the curve y = sin(x) from 40 samples.
 *
 * An MLP(1, [16, 16, 1]) with tanh hidden layers and a linear output is fitted to
 * points of sin(x) on [-3, 3] by minimising the mean squared error with Adam.
 *
 * Usage: regression [steps]      (default 300)
 *
 * Exits 1 unless the final loss is below 1% of the initial loss and below 0.01.
 */
#define EXAMPLE_NAME "regression"
#include "training.h"

#include <math.h>

enum { N_POINTS = 40 };

/* mean((model(x_i) - y_i)^2) over the samples. Called inside a scope, which owns
 * every node built here. */
static Value *mse(const microcrad_mlp *model, Value *const inputs[N_POINTS],
                  const double targets[N_POINTS])
{
    Value *squares[N_POINTS];
    for (int i = 0; i < N_POINTS; i++) {
        Value *prediction;
        if (microcrad_mlp_forward(model, &inputs[i], &prediction) != MICROCRAD_OK)
            fail("forward pass");
        squares[i] = must(value_pow_const(value_sub_scalar(prediction, targets[i]), 2.0));
    }
    return must(value_mul_scalar(value_sum(N_POINTS, squares), 1.0 / N_POINTS));
}

int main(int argc, char **argv)
{
    long steps = steps_argument(argc, argv, 300);

    /* The samples: x evenly spaced on [-3, 3], y = sin(x). */
    Value *inputs[N_POINTS];
    double targets[N_POINTS];
    for (int i = 0; i < N_POINTS; i++) {
        double x = -3.0 + 6.0 * i / (N_POINTS - 1);
        targets[i] = sin(x);
        if (!(inputs[i] = value_create_leaf(x)))
            fail("creating the inputs");
    }

    uint64_t rng = 2718;
    const int32_t sizes[3] = {16, 16, 1};
    microcrad_mlp *model = microcrad_mlp_create(1, 3, sizes, MICROCRAD_ACT_TANH,
                                                MICROCRAD_ACT_LINEAR, &rng);
    if (!model)
        fail("creating the model");
    int32_t n_params;
    Value **params = mlp_parameter_list(model, &n_params);

    /* Adam with PyTorch's default betas and eps. */
    microcrad_optimizer *adam =
        microcrad_adam_create(n_params, params, 0.01, 0.9, 0.999, 1e-8, 0.0);
    if (!adam)
        fail("creating the optimizer");

    double first_loss = 0.0;
    for (long k = 0; k < steps; k++) {
        /* One scope per step: ending it gives back every node the step built. */
        microcrad_scope *step = microcrad_scope_begin();
        if (!step)
            fail("opening a scope");
        Value *loss = mse(model, inputs, targets);
        if (k == 0)
            first_loss = loss->data;
        if (microcrad_optimizer_zero_grad(adam) != MICROCRAD_OK ||
            value_backward(loss) != MICROCRAD_OK || microcrad_optimizer_step(adam) != MICROCRAD_OK)
            fail("training step");
        if (k % 25 == 0 || k == steps - 1)
            printf("step %3ld loss %.6f\n", k, loss->data);
        if (microcrad_scope_end(step) != MICROCRAD_OK)
            fail("ending the step's scope");
    }
    microcrad_scope *last = microcrad_scope_begin();
    if (!last)
        fail("opening a scope");
    double final_loss = mse(model, inputs, targets)->data;
    if (microcrad_scope_end(last) != MICROCRAD_OK)
        fail("ending the scope");
    printf("final    loss %.6f\n", final_loss);

    microcrad_optimizer_free(adam);
    free(params);
    microcrad_mlp_free(model);
    for (int i = 0; i < N_POINTS; i++)
        value_release(inputs[i]);
    if (!all_values_freed())
        return 1;
    if (!(final_loss < 0.01 * first_loss && final_loss < 0.01)) {
        fprintf(stderr, "regression: training failed (loss %.6f -> %.6f)\n", first_loss,
                final_loss);
        return 1;
    }
    return 0;
}
