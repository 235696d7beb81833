/*
 * moons.c - a small neural net learns to separate two interleaved half-moons.
 *
 * This is micrograd's demo notebook in C: 100 noisy points in two classes (labels
 * -1 and +1), an MLP(2, [16, 16, 1]) with ReLU hidden layers, the SVM max-margin
 * loss with L2 regularisation, and SGD whose learning rate decays from 1.0 to 0.1.
 *
 * Usage: moons [steps]      (default 100)
 *
 * Exits 1 unless the loss fell and the final accuracy is at least 95%.
 */
#define EXAMPLE_NAME "moons"
#include "training.h"

#include <math.h>

enum { N_POINTS = 100 };
static const double ALPHA = 1e-4; /* weight of the L2 regularisation */
static const double PI = 3.14159265358979323846; /* M_PI is not standard C */

/* ---- the data ------------------------------------------------------------------ */

/* A normally distributed number (Box-Muller), from the library's uniform generator. */
static double gaussian(uint64_t *rng)
{
    double u1 = 1.0 - microcrad_random_uniform(rng, 0.0, 1.0); /* in (0, 1]: log is finite */
    double u2 = microcrad_random_uniform(rng, 0.0, 1.0);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * PI * u2);
}

/* Two half circles, one above the other and shifted so they interlock, with gaussian
 * noise of standard deviation `noise` on each coordinate: sklearn's make_moons. */
static void make_moons(double x[N_POINTS][2], double y[N_POINTS], double noise, uint64_t *rng)
{
    const int n_upper = N_POINTS / 2, n_lower = N_POINTS - n_upper;
    for (int i = 0; i < N_POINTS; i++) {
        int upper = i < n_upper;
        int k = upper ? i : i - n_upper;
        double angle = PI * k / ((upper ? n_upper : n_lower) - 1);
        x[i][0] = upper ? cos(angle) : 1.0 - cos(angle);
        x[i][1] = upper ? sin(angle) : 0.5 - sin(angle);
        y[i] = upper ? -1.0 : 1.0;
        x[i][0] += noise * gaussian(rng);
        x[i][1] += noise * gaussian(rng);
    }
}

/* ---- the loss ----------------------------------------------------------------------- */

/*
 * micrograd's loss(): mean(relu(1 - y_i * score_i)) + ALPHA * sum(p * p), and the
 * fraction of points on the right side of 0. Called inside a scope, which owns every
 * node built here: nothing is released by hand.
 */
static Value *loss(const microcrad_mlp *model, Value *inputs[N_POINTS][2],
                   const double labels[N_POINTS], Value *const *params, int32_t n_params,
                   double *accuracy)
{
    Value *margins[N_POINTS];
    int correct = 0;
    for (int i = 0; i < N_POINTS; i++) {
        Value *score;
        if (microcrad_mlp_forward(model, inputs[i], &score) != MICROCRAD_OK)
            fail("forward pass");
        /* relu(1 - y * score) */
        margins[i] = must(value_relu(value_scalar_sub(1.0, value_mul_scalar(score, labels[i]))));
        correct += (labels[i] > 0.0) == (score->data > 0.0);
    }
    Value *data_loss = must(value_mul_scalar(value_sum(N_POINTS, margins), 1.0 / N_POINTS));

    Value **squares = malloc((size_t)n_params * sizeof *squares);
    if (!squares)
        fail("out of memory");
    for (int32_t i = 0; i < n_params; i++)
        squares[i] = must(value_mul(params[i], params[i]));
    Value *reg_loss = must(value_mul_scalar(value_sum(n_params, squares), ALPHA));
    free(squares);

    *accuracy = (double)correct / N_POINTS;
    return must(value_add(data_loss, reg_loss));
}

/* ---- training ------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    long steps = steps_argument(argc, argv, 100);

    uint64_t rng = 1337;
    double x[N_POINTS][2], y[N_POINTS];
    make_moons(x, y, 0.1, &rng);
    Value *inputs[N_POINTS][2];
    for (int i = 0; i < N_POINTS; i++)
        for (int j = 0; j < 2; j++)
            if (!(inputs[i][j] = value_create_leaf(x[i][j])))
                fail("creating the inputs");

    const int32_t sizes[3] = {16, 16, 1};
    microcrad_mlp *model = microcrad_mlp_create(2, 3, sizes, MICROCRAD_ACT_RELU,
                                                MICROCRAD_ACT_LINEAR, &rng);
    if (!model)
        fail("creating the model");
    int32_t n_params;
    Value **params = mlp_parameter_list(model, &n_params);
    printf("MLP(2, [16, 16, 1]): %ld parameters\n", (long)n_params);

    /* Plain SGD: p.data -= lr * p.grad, as micrograd's loop writes it. */
    microcrad_optimizer *sgd = microcrad_sgd_create(n_params, params, 1.0, 0.0, 0.0);
    if (!sgd)
        fail("creating the optimizer");

    double first_loss = 0.0, accuracy;
    for (long k = 0; k < steps; k++) {
        /* One scope per step: ending it gives back every node the step built. */
        microcrad_scope *step = microcrad_scope_begin();
        if (!step)
            fail("opening a scope");
        Value *total = loss(model, inputs, y, params, n_params, &accuracy);
        if (k == 0)
            first_loss = total->data;
        if (microcrad_optimizer_zero_grad(sgd) != MICROCRAD_OK ||
            value_backward(total) != MICROCRAD_OK ||
            microcrad_optimizer_set_lr(sgd, 1.0 - 0.9 * (double)k / (double)steps) != MICROCRAD_OK ||
            microcrad_optimizer_step(sgd) != MICROCRAD_OK)
            fail("training step");
        if (k % 10 == 0 || k == steps - 1)
            printf("step %3ld loss %.6f, accuracy %.0f%%\n", k, total->data, accuracy * 100.0);
        if (microcrad_scope_end(step) != MICROCRAD_OK)
            fail("ending the step's scope");
    }

    microcrad_scope *last = microcrad_scope_begin();
    if (!last)
        fail("opening a scope");
    double final_loss = loss(model, inputs, y, params, n_params, &accuracy)->data;
    if (microcrad_scope_end(last) != MICROCRAD_OK)
        fail("ending the scope");
    printf("final    loss %.6f, accuracy %.0f%%\n", final_loss, accuracy * 100.0);

    microcrad_optimizer_free(sgd);
    free(params);
    microcrad_mlp_free(model);
    for (int i = 0; i < N_POINTS; i++)
        for (int j = 0; j < 2; j++)
            value_release(inputs[i][j]);
    if (!all_values_freed())
        return 1;
    if (!(final_loss < first_loss) || accuracy < 0.95) {
        fprintf(stderr, "moons: training failed (loss %.6f -> %.6f, accuracy %.0f%%)\n",
                first_loss, final_loss, accuracy * 100.0);
        return 1;
    }
    return 0;
}
