/*
 * test_neuron_layer_mlp.c - the C networks: random initialisation, neuron, layer and MLP.
 *
 *   - the generator reproduces splitmix64's published outputs;
 *   - parameters come out in micrograd's order (per neuron: weights, then bias) and
 *     hold exactly the numbers the generator gives, in creation order;
 *   - every forward pass equals, bit for bit, a graph built here by hand from the
 *     same parameters with value_mul, value_add and the activation, as micrograd
 *     builds it;
 *   - a few steps of training lower a loss;
 *   - bad arguments, freed handles and failed allocations give errors with nothing
 *     leaked, and microcrad_live_values() ends where it started.
 */
#include "check.h"

#include <microcrad.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

/* ------------------------------------------------------------------------------ */
/* Reference graphs, built node by node as micrograd does                           */
/* ------------------------------------------------------------------------------ */

static Value *apply(microcrad_activation act, Value *z)
{
    Value *y = z;
    if (act == MICROCRAD_ACT_RELU)
        y = value_relu(z);
    else if (act == MICROCRAD_ACT_TANH)
        y = value_tanh(z);
    else if (act == MICROCRAD_ACT_SIGMOID)
        y = value_sigmoid(z);
    else
        return z;
    value_release(z);
    return y;
}

/* act(sum((wi*xi for wi, xi in zip(w, x)), b)) */
static Value *ref_neuron(int32_t n_in, Value *const *w, Value *b, Value *const *x,
                         microcrad_activation act)
{
    Value *acc = b;
    value_retain(b);
    for (int32_t i = 0; i < n_in; i++) {
        Value *product = value_mul(w[i], x[i]);
        Value *sum = value_add(acc, product);
        value_release(product);
        value_release(acc);
        acc = sum;
    }
    return apply(act, acc);
}

/* A layer from its parameter list (neuron j's weights at params[j*(n_in+1)], its bias
 * right after), writing n_out new references to out. */
static void ref_layer(int32_t n_in, int32_t n_out, Value *const *params, Value *const *x,
                      microcrad_activation act, Value **out)
{
    for (int32_t j = 0; j < n_out; j++) {
        Value *const *w = params + (size_t)j * (size_t)(n_in + 1);
        out[j] = ref_neuron(n_in, w, w[n_in], x, act);
    }
}

static Value **make_inputs(int32_t n, uint64_t *rng)
{
    Value **x = malloc((size_t)(n > 0 ? n : 1) * sizeof *x);
    for (int32_t i = 0; i < n; i++)
        x[i] = value_create_leaf(microcrad_random_uniform(rng, -2.0, 2.0));
    return x;
}

static void release_all(Value **v, int32_t n)
{
    for (int32_t i = 0; i < n; i++)
        value_release(v[i]);
}

static Value **parameters_of_mlp(const microcrad_mlp *mlp, int64_t *count)
{
    *count = microcrad_mlp_n_parameters(mlp);
    Value **params = malloc((size_t)*count * sizeof *params);
    CHECK_INT(microcrad_mlp_parameters(mlp, params, *count), *count);
    return params;
}

/* ------------------------------------------------------------------------------ */

static void test_random(void)
{
    printf("random\n");
    /* splitmix64's reference outputs for the seed 1234567. */
    const uint64_t expected[3] = {6457827717110365317u, 3203168211198807973u,
                                  9817491932198370423u};
    uint64_t rng = 1234567;
    for (int i = 0; i < 3; i++)
        CHECK_SAME(microcrad_random_uniform(&rng, 0.0, 1.0), (double)(expected[i] >> 11) * 0x1.0p-53);
    rng = 1234567;
    CHECK_SAME(microcrad_random_uniform(&rng, -1.0, 1.0),
               -1.0 + 2.0 * ((double)(expected[0] >> 11) * 0x1.0p-53));

    /* In range, and spread over it. */
    rng = 42;
    double sum = 0.0, lo = 1.0, hi = -1.0;
    for (int i = 0; i < 10000; i++) {
        double u = microcrad_random_uniform(&rng, -1.0, 1.0);
        sum += u;
        lo = fmin(lo, u);
        hi = fmax(hi, u);
    }
    CHECK(lo >= -1.0 && hi < 1.0);
    CHECK(lo < -0.99 && hi > 0.99);
    CHECK(fabs(sum / 10000) < 0.05);

    microcrad_clear_error();
    CHECK(isnan(microcrad_random_uniform(NULL, 0.0, 1.0)));
    CHECK_CONTAINS(microcrad_last_error(), "microcrad_random_uniform");
}

static void test_neuron(void)
{
    printf("neuron\n");
    int64_t live0 = microcrad_live_values();
    const uint64_t seed = 7;
    uint64_t rng = seed, replay = seed;
    microcrad_neuron *neuron = microcrad_neuron_create(3, MICROCRAD_ACT_RELU, &rng);
    if (!CHECK(neuron != NULL))
        return;
    CHECK_INT(microcrad_live_values(), live0 + 4);
    CHECK_INT(microcrad_neuron_n_parameters(neuron), 4);
    CHECK_INT(microcrad_neuron_parameters(neuron, NULL, 0), 4);

    Value *params[5] = {NULL, NULL, NULL, NULL, NULL};
    CHECK_INT(microcrad_neuron_parameters(neuron, params, 5), 4);
    CHECK(params[4] == NULL);
    for (int i = 0; i < 3; i++)
        CHECK_SAME(params[i]->data, microcrad_random_uniform(&replay, -1.0, 1.0));
    CHECK_SAME(params[3]->data, 0.0);
    CHECK(rng == replay); /* exactly n_in draws */
    for (int i = 0; i < 4; i++)
        CHECK_INT(value_ref_count(params[i]), 1); /* borrowed: no reference added */

    /* Too small an array is refused and left untouched. */
    Value *small[3] = {NULL, NULL, NULL};
    CHECK_INT(microcrad_neuron_parameters(neuron, small, 3), MICROCRAD_ERR_ARGUMENT);
    CHECK(small[0] == NULL);
    CHECK_INT(microcrad_neuron_parameters(neuron, small, -1), MICROCRAD_ERR_ARGUMENT);
    CHECK_INT(microcrad_neuron_parameters(neuron, NULL, 4), MICROCRAD_ERR_NULL);

    /* Forward, for every activation, against micrograd's graph. */
    uint64_t data_rng = 99;
    Value **x = make_inputs(3, &data_rng);
    for (int act = MICROCRAD_ACT_LINEAR; act <= MICROCRAD_ACT_SIGMOID; act++) {
        uint64_t r = seed;
        microcrad_neuron *n = microcrad_neuron_create(3, (microcrad_activation)act, &r);
        Value *p[4];
        microcrad_neuron_parameters(n, p, 4);
        value_set_data(p[3], 0.375); /* a non-zero bias, so that it is seen */
        Value *y = microcrad_neuron_forward(n, x);
        Value *ref = ref_neuron(3, p, p[3], x, (microcrad_activation)act);
        if (CHECK(y && ref)) {
            CHECK_SAME(y->data, ref->data);
            CHECK_INT(value_op(y), act == MICROCRAD_ACT_LINEAR ? MICROCRAD_OP_NEURON
                                                               : value_op(ref));
            /* Same gradients too. */
            double grads[4];
            CHECK_INT(value_backward(ref), MICROCRAD_OK);
            for (int i = 0; i < 4; i++) {
                grads[i] = p[i]->grad;
                p[i]->grad = 0.0;
            }
            CHECK_INT(value_backward(y), MICROCRAD_OK);
            for (int i = 0; i < 4; i++)
                CHECK_SAME(p[i]->grad, grads[i]);
        }
        value_release(y);
        value_release(ref);
        microcrad_neuron_free(n);
    }
    release_all(x, 3);
    free(x);

    /* No inputs: the bias alone. */
    microcrad_neuron *empty = microcrad_neuron_create(0, MICROCRAD_ACT_TANH, &rng);
    Value *y = microcrad_neuron_forward(empty, NULL);
    if (CHECK(y != NULL))
        CHECK_SAME(y->data, 0.0);
    value_release(y);
    CHECK_INT(microcrad_neuron_n_parameters(empty), 1);
    microcrad_neuron_free(empty);

    microcrad_neuron_free(neuron);
    CHECK_INT(microcrad_live_values(), live0);
}

static void test_layer(void)
{
    printf("layer\n");
    int64_t live0 = microcrad_live_values();
    const uint64_t seed = 2024;
    uint64_t rng = seed, replay = seed;
    microcrad_layer *layer = microcrad_layer_create(3, 4, MICROCRAD_ACT_TANH, &rng);
    if (!CHECK(layer != NULL))
        return;
    CHECK_INT(microcrad_layer_n_parameters(layer), 16);
    CHECK_INT(microcrad_layer_parameters(layer, NULL, 0), 16);
    Value *params[16];
    CHECK_INT(microcrad_layer_parameters(layer, params, 15), MICROCRAD_ERR_ARGUMENT);
    CHECK_INT(microcrad_layer_parameters(layer, params, 16), 16);
    /* Neuron by neuron: three weights in draw order, then a zero bias. */
    for (int j = 0; j < 4; j++) {
        for (int i = 0; i < 3; i++)
            CHECK_SAME(params[4 * j + i]->data, microcrad_random_uniform(&replay, -1.0, 1.0));
        CHECK_SAME(params[4 * j + 3]->data, 0.0);
    }
    CHECK(rng == replay);
    for (int j = 0; j < 4; j++)
        value_set_data(params[4 * j + 3], 0.1 * (j + 1));

    uint64_t data_rng = 5;
    Value **x = make_inputs(3, &data_rng);
    Value *out[4], *ref[4];
    CHECK_INT(microcrad_layer_forward(layer, x, out), MICROCRAD_OK);
    ref_layer(3, 4, params, x, MICROCRAD_ACT_TANH, ref);
    for (int j = 0; j < 4; j++) {
        CHECK_SAME(out[j]->data, ref[j]->data);
        CHECK_INT(value_ref_count(out[j]), 1);
    }
    release_all(out, 4);
    release_all(ref, 4);
    release_all(x, 3);
    free(x);
    microcrad_layer_free(layer);
    CHECK_INT(microcrad_live_values(), live0);
}

/* Runs the MLP and the hand-built graph on the same inputs and compares outputs. */
static void check_mlp_forward(int32_t n_in, int32_t n_layers, const int32_t *sizes,
                              microcrad_activation hidden, microcrad_activation output)
{
    int64_t live0 = microcrad_live_values();
    uint64_t rng = 31337;
    microcrad_mlp *mlp = microcrad_mlp_create(n_in, n_layers, sizes, hidden, output, &rng);
    if (!CHECK(mlp != NULL))
        return;
    int64_t count, expected_count = 0;
    for (int32_t l = 0, width = n_in; l < n_layers; width = sizes[l], l++)
        expected_count += (int64_t)sizes[l] * (width + 1);
    Value **params = parameters_of_mlp(mlp, &count);
    CHECK_INT(count, expected_count);
    /* All weights in draw order, layer after layer; all biases 0. */
    uint64_t replay = 31337;
    int64_t k = 0;
    for (int32_t l = 0, width = n_in; l < n_layers; width = sizes[l], l++)
        for (int32_t j = 0; j < sizes[l]; j++) {
            for (int32_t i = 0; i < width; i++)
                CHECK_SAME(params[k++]->data, microcrad_random_uniform(&replay, -1.0, 1.0));
            CHECK_SAME(params[k++]->data, 0.0);
        }
    CHECK(replay == rng);
    for (int64_t i = 0; i < count; i++) /* non-zero biases, so they matter */
        if (params[i]->data == 0.0)
            value_set_data(params[i], 0.01 * (double)(i % 7));

    uint64_t data_rng = 8;
    Value **x = make_inputs(n_in, &data_rng);
    int32_t n_out = sizes[n_layers - 1];
    Value **out = malloc((size_t)n_out * sizeof *out);
    CHECK_INT(microcrad_mlp_forward(mlp, x, out), MICROCRAD_OK);

    /* micrograd's MLP.__call__: x = layer(x) for each layer. */
    Value **in = x;
    int32_t width = n_in;
    Value *const *p = params;
    for (int32_t l = 0; l < n_layers; l++) {
        Value **next = malloc((size_t)sizes[l] * sizeof *next);
        ref_layer(width, sizes[l], p, in, l == n_layers - 1 ? output : hidden, next);
        p += (size_t)sizes[l] * (size_t)(width + 1);
        if (l > 0) {
            release_all(in, width);
            free(in);
        }
        in = next;
        width = sizes[l];
    }
    for (int32_t j = 0; j < n_out; j++)
        CHECK_SAME(out[j]->data, in[j]->data);
    release_all(in, n_out);
    free(in);
    release_all(out, n_out);
    free(out);
    release_all(x, n_in);
    free(x);
    free(params);
    microcrad_mlp_free(mlp);
    CHECK_INT(microcrad_live_values(), live0);
}

static void test_mlp(void)
{
    printf("mlp\n");
    const int32_t moons[3] = {16, 16, 1};
    check_mlp_forward(2, 3, moons, MICROCRAD_ACT_RELU, MICROCRAD_ACT_LINEAR);
    uint64_t rng = 1;
    microcrad_mlp *mlp = microcrad_mlp_create(2, 3, moons, MICROCRAD_ACT_RELU,
                                              MICROCRAD_ACT_LINEAR, &rng);
    CHECK_INT(microcrad_mlp_n_parameters(mlp), 16 * 3 + 16 * 17 + 17); /* 337 */
    microcrad_mlp_free(mlp);

    const int32_t one[1] = {3};
    check_mlp_forward(4, 1, one, MICROCRAD_ACT_TANH, MICROCRAD_ACT_SIGMOID);
    const int32_t narrow_wide[4] = {1, 9, 2, 5};
    check_mlp_forward(3, 4, narrow_wide, MICROCRAD_ACT_TANH, MICROCRAD_ACT_RELU);
}

/* The squared error of an MLP(2, [8, 1]) over four points, as one Value. */
static Value *mse_loss(const microcrad_mlp *mlp, Value *inputs[4][2], const double *targets)
{
    Value *terms[4];
    for (int i = 0; i < 4; i++) {
        Value *score;
        CHECK_INT(microcrad_mlp_forward(mlp, inputs[i], &score), MICROCRAD_OK);
        Value *target = value_create_leaf(targets[i]);
        Value *diff = value_sub(score, target);
        terms[i] = value_pow_const(diff, 2.0);
        value_release(diff);
        value_release(target);
        value_release(score);
    }
    Value *loss = value_sum(4, terms);
    release_all(terms, 4);
    return loss;
}

static void test_training(void)
{
    printf("training lowers the loss\n");
    int64_t live0 = microcrad_live_values();
    uint64_t rng = 3;
    const int32_t sizes[2] = {8, 1};
    microcrad_mlp *mlp = microcrad_mlp_create(2, 2, sizes, MICROCRAD_ACT_TANH,
                                              MICROCRAD_ACT_LINEAR, &rng);
    int64_t count;
    Value **params = parameters_of_mlp(mlp, &count);
    microcrad_optimizer *opt = microcrad_sgd_create((int32_t)count, params, 0.05, 0.0, 0.0);
    const double xs[4][2] = {{0.5, 1.0}, {-1.0, 0.25}, {2.0, -0.5}, {0.0, -1.5}};
    const double ys[4] = {1.0, -1.0, 0.5, -0.5};
    Value *inputs[4][2];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 2; j++)
            inputs[i][j] = value_create_leaf(xs[i][j]);

    double first = NAN, last = NAN;
    for (int step = 0; step < 20; step++) {
        Value *loss = mse_loss(mlp, inputs, ys);
        if (!CHECK(loss != NULL))
            break;
        CHECK_INT(microcrad_optimizer_zero_grad(opt), MICROCRAD_OK);
        CHECK_INT(value_backward(loss), MICROCRAD_OK);
        CHECK_INT(microcrad_optimizer_step(opt), MICROCRAD_OK);
        if (step == 0)
            first = loss->data;
        else if (!CHECK(loss->data < last)) /* a small step downhill always helps */
            fprintf(stderr, "    step %d: %g after %g\n", step, loss->data, last);
        last = loss->data;
        value_release(loss);
    }
    printf("    loss %.6f -> %.6f\n", first, last);
    CHECK(last < 0.5 * first);

    microcrad_optimizer_free(opt);
    free(params);
    for (int i = 0; i < 4; i++)
        release_all(inputs[i], 2);
    microcrad_mlp_free(mlp);
    CHECK_INT(microcrad_live_values(), live0);
}

/* A graph keeps the parameters it uses alive after the network is freed. */
static void test_lifetimes(void)
{
    printf("lifetimes\n");
    int64_t live0 = microcrad_live_values();
    uint64_t rng = 11;
    const int32_t sizes[2] = {3, 1};
    microcrad_mlp *mlp = microcrad_mlp_create(2, 2, sizes, MICROCRAD_ACT_RELU,
                                              MICROCRAD_ACT_LINEAR, &rng);
    Value *x[2] = {value_create_leaf(1.0), value_create_leaf(-2.0)};
    Value *y;
    CHECK_INT(microcrad_mlp_forward(mlp, x, &y), MICROCRAD_OK);
    double data = y->data;
    microcrad_mlp_free(mlp);
    CHECK(microcrad_live_values() > live0 + 3); /* the graph still holds parameters */
    CHECK_SAME(value_data(y), data);
    CHECK_INT(value_backward(y), MICROCRAD_OK);
    value_release(y);
    release_all(x, 2);
    CHECK_INT(microcrad_live_values(), live0);
}

/* ------------------------------------------------------------------------------ */
/* Errors                                                                          */
/* ------------------------------------------------------------------------------ */

static void test_bad_arguments(void)
{
    printf("bad arguments\n");
    int64_t live0 = microcrad_live_values();
    uint64_t rng = 5;
    const int32_t sizes[2] = {2, 1}, bad_sizes[2] = {2, 0};

    CHECK(microcrad_neuron_create(-1, MICROCRAD_ACT_RELU, &rng) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "microcrad_neuron_create");
    CHECK(microcrad_neuron_create(2, (microcrad_activation)4, &rng) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "microcrad_activation");
    CHECK(microcrad_neuron_create(2, (microcrad_activation)-1, &rng) == NULL);
    CHECK(microcrad_neuron_create(2, MICROCRAD_ACT_RELU, NULL) == NULL);
    CHECK(microcrad_layer_create(-1, 2, MICROCRAD_ACT_RELU, &rng) == NULL);
    CHECK(microcrad_layer_create(2, 0, MICROCRAD_ACT_RELU, &rng) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "microcrad_layer_create");
    CHECK(microcrad_layer_create(2, 2, (microcrad_activation)9, &rng) == NULL);
    CHECK(microcrad_layer_create(2, 2, MICROCRAD_ACT_RELU, NULL) == NULL);
    CHECK(microcrad_mlp_create(-1, 2, sizes, MICROCRAD_ACT_RELU, MICROCRAD_ACT_LINEAR, &rng) == NULL);
    CHECK(microcrad_mlp_create(2, 0, sizes, MICROCRAD_ACT_RELU, MICROCRAD_ACT_LINEAR, &rng) == NULL);
    CHECK(microcrad_mlp_create(2, 2, NULL, MICROCRAD_ACT_RELU, MICROCRAD_ACT_LINEAR, &rng) == NULL);
    CHECK(microcrad_mlp_create(2, 2, bad_sizes, MICROCRAD_ACT_RELU, MICROCRAD_ACT_LINEAR, &rng) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "sizes[1]");
    CHECK(microcrad_mlp_create(2, 2, sizes, (microcrad_activation)7, MICROCRAD_ACT_LINEAR, &rng) == NULL);
    CHECK(microcrad_mlp_create(2, 2, sizes, MICROCRAD_ACT_RELU, (microcrad_activation)7, &rng) == NULL);
    CHECK(microcrad_mlp_create(2, 2, sizes, MICROCRAD_ACT_RELU, MICROCRAD_ACT_LINEAR, NULL) == NULL);
    CHECK(rng == 5); /* no failed call drew a number */
    CHECK_INT(microcrad_live_values(), live0);

    /* Forward with bad inputs: an error, and every output slot NULL. */
    microcrad_mlp *mlp = microcrad_mlp_create(2, 2, sizes, MICROCRAD_ACT_RELU,
                                              MICROCRAD_ACT_LINEAR, &rng);
    microcrad_layer *layer = microcrad_layer_create(2, 2, MICROCRAD_ACT_RELU, &rng);
    microcrad_neuron *neuron = microcrad_neuron_create(2, MICROCRAD_ACT_RELU, &rng);
    Value fake;
    memset(&fake, 0x77, sizeof fake);
    Value *good = value_create_leaf(1.0);
    Value *x_bad[2] = {good, &fake}, *x_null[2] = {NULL, good};
    Value *out[2] = {&fake, &fake};
    CHECK_INT(microcrad_mlp_forward(mlp, x_bad, out), MICROCRAD_ERR_FOREIGN);
    CHECK_CONTAINS(microcrad_last_error(), "x[1]");
    CHECK(out[0] == NULL);
    CHECK_INT(microcrad_mlp_forward(mlp, NULL, out), MICROCRAD_ERR_NULL);
    CHECK_INT(microcrad_mlp_forward(mlp, x_bad, NULL), MICROCRAD_ERR_FOREIGN);
    CHECK_INT(microcrad_mlp_forward(NULL, x_bad, out), MICROCRAD_ERR_NULL);
    out[0] = out[1] = &fake;
    CHECK_INT(microcrad_layer_forward(layer, x_null, out), MICROCRAD_ERR_NULL);
    CHECK(out[0] == NULL && out[1] == NULL);
    CHECK_INT(microcrad_layer_forward(layer, x_bad, NULL), MICROCRAD_ERR_FOREIGN);
    Value *x_good[2] = {good, good};
    CHECK_INT(microcrad_layer_forward(layer, x_good, NULL), MICROCRAD_ERR_NULL);
    CHECK(microcrad_neuron_forward(neuron, x_bad) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "microcrad_neuron_forward");
    CHECK(microcrad_neuron_forward(neuron, NULL) == NULL);
    CHECK(microcrad_neuron_forward(NULL, x_good) == NULL);
    CHECK_INT(value_ref_count(good), 1);

    /* Handles of the wrong kind or none at all. */
    CHECK_INT(microcrad_mlp_n_parameters(NULL), MICROCRAD_ERR_NULL);
    CHECK_INT(microcrad_layer_n_parameters(NULL), MICROCRAD_ERR_NULL);
    CHECK_INT(microcrad_neuron_n_parameters(NULL), MICROCRAD_ERR_NULL);
    CHECK_INT(microcrad_mlp_parameters(NULL, NULL, 0), MICROCRAD_ERR_NULL);
    CHECK_INT(microcrad_mlp_n_parameters((microcrad_mlp *)(void *)layer), MICROCRAD_ERR_FOREIGN);
    CHECK_CONTAINS(microcrad_last_error(), "not a microcrad MLP");
    CHECK_INT(microcrad_layer_n_parameters((microcrad_layer *)(void *)neuron), MICROCRAD_ERR_FOREIGN);
    CHECK_INT(microcrad_neuron_n_parameters((microcrad_neuron *)(void *)mlp), MICROCRAD_ERR_FOREIGN);
    unsigned char *junk = malloc(256);
    if (CHECK(junk != NULL)) {
        memset(junk, 0xC3, 256);
        CHECK_INT(microcrad_mlp_n_parameters((microcrad_mlp *)(void *)junk), MICROCRAD_ERR_FOREIGN);
        microcrad_clear_error();
        microcrad_mlp_free((microcrad_mlp *)(void *)junk); /* reported, nothing freed */
        CHECK_CONTAINS(microcrad_last_error(), "microcrad_mlp_free");
        microcrad_layer_free((microcrad_layer *)(void *)junk);
        microcrad_neuron_free((microcrad_neuron *)(void *)junk);
        free(junk);
    }
    microcrad_mlp_free(NULL); /* ignored, like free(NULL) */
    microcrad_layer_free(NULL);
    microcrad_neuron_free(NULL);

    value_release(good);
    microcrad_neuron_free(neuron);
    microcrad_layer_free(layer);
    microcrad_mlp_free(mlp);
    CHECK_INT(microcrad_live_values(), live0);
}

/*
 * Large handles, freed, read as freed (run by test_freed_handles, in the same builds). A handle whose arrays (a neuron's weights, a
 * layer's neurons, an MLP's layers) shared its malloc block was unmapped by glibc's
 * free above the mmap threshold, and checking the freed pointer faulted instead of
 * returning MICROCRAD_ERR_RELEASED; a second free crashed the same way. The threshold
 * is pinned low, so that the sizes below cross it whatever ran before.
 */
static void test_freed_large_handles(void)
{
    printf("freed large handles\n");
#if defined(M_MMAP_THRESHOLD)
    mallopt(M_MMAP_THRESHOLD, 16 * 1024);
#endif
    enum { N = 20000 };
    int64_t live0 = microcrad_live_values();
    uint64_t rng = 5;
    microcrad_neuron *neuron = microcrad_neuron_create(N, MICROCRAD_ACT_RELU, &rng);
    microcrad_layer *layer = microcrad_layer_create(0, N, MICROCRAD_ACT_LINEAR, &rng);
    static int32_t sizes[N];
    for (int i = 0; i < N; i++)
        sizes[i] = 1;
    microcrad_mlp *mlp =
        microcrad_mlp_create(1, N, sizes, MICROCRAD_ACT_RELU, MICROCRAD_ACT_LINEAR, &rng);
    CHECK(neuron && layer && mlp);
    microcrad_neuron_free(neuron);
    microcrad_layer_free(layer);
    microcrad_mlp_free(mlp);
    CHECK_INT(microcrad_live_values(), live0);
    CHECK_INT(microcrad_neuron_n_parameters(neuron), MICROCRAD_ERR_RELEASED);
    CHECK_INT(microcrad_layer_n_parameters(layer), MICROCRAD_ERR_RELEASED);
    CHECK_INT(microcrad_mlp_n_parameters(mlp), MICROCRAD_ERR_RELEASED);
    microcrad_clear_error();
    microcrad_layer_free(layer); /* a double free is reported, not a crash */
    CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_RELEASED);
    microcrad_neuron_free(neuron);
    CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_RELEASED);
    microcrad_mlp_free(mlp);
    CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_RELEASED);
}

/*
 * layer_forward(l, xs, xs): the outputs share slots with the inputs, and writing
 * output j while later inputs are still read gave a silently wrong result. Every
 * overlap is refused, leaving the arrays as they were; arrays side by side in one
 * buffer are fine.
 */
static void test_overlapping_outputs(void)
{
    printf("overlapping inputs and outputs\n");
    int64_t live0 = microcrad_live_values();
    uint64_t rng = 9;
    const int32_t sizes[2] = {3, 2};
    microcrad_layer *layer = microcrad_layer_create(2, 2, MICROCRAD_ACT_LINEAR, &rng);
    microcrad_mlp *mlp =
        microcrad_mlp_create(2, 2, sizes, MICROCRAD_ACT_TANH, MICROCRAD_ACT_LINEAR, &rng);
    Value *a = value_create_leaf(1.0), *b = value_create_leaf(2.0);
    Value *buf[4] = {a, b, a, b};
    int64_t live1 = microcrad_live_values();
    /* out at buf + k for k = -1 .. 1 overlaps x = buf + 1 (two slots each way). */
    for (int k = 0; k <= 2; k++) {
        Value *x0 = buf[1], *x1 = buf[2];
        microcrad_clear_error();
        CHECK_INT(microcrad_layer_forward(layer, buf + 1, buf + k), MICROCRAD_ERR_ARGUMENT);
        CHECK_CONTAINS(microcrad_last_error(), "microcrad_layer_forward: out (argument 3) overlaps");
        CHECK_INT(microcrad_mlp_forward(mlp, buf + 1, buf + k), MICROCRAD_ERR_ARGUMENT);
        CHECK_CONTAINS(microcrad_last_error(), "microcrad_mlp_forward: out (argument 3) overlaps");
        CHECK(buf[1] == x0 && buf[2] == x1); /* the inputs are left as they were */
    }
    CHECK(buf[0] == a && buf[3] == b);
    CHECK_INT(microcrad_live_values(), live1); /* and nothing was built */

    /* Side by side in one buffer: allowed, and the same as separate arrays. */
    Value *separate[2];
    CHECK_INT(microcrad_layer_forward(layer, buf, separate), MICROCRAD_OK);
    CHECK_INT(microcrad_layer_forward(layer, buf, buf + 2), MICROCRAD_OK);
    for (int j = 0; j < 2; j++) {
        CHECK_SAME(value_data(buf[2 + j]), value_data(separate[j]));
        value_release(buf[2 + j]);
        value_release(separate[j]);
    }
    Value *x[2] = {a, b};
    Value *mlp_out[4] = {NULL, NULL, NULL, NULL};
    CHECK_INT(microcrad_mlp_forward(mlp, x, mlp_out + 2), MICROCRAD_OK);
    release_all(mlp_out + 2, 2);

    value_release(a);
    value_release(b);
    microcrad_layer_free(layer);
    microcrad_mlp_free(mlp);
    CHECK_INT(microcrad_live_values(), live0);
}

/* Freed handles read as freed, as long as their memory is not reused; reading freed
 * memory is what ASan and Valgrind report, so only builds without them check this
 * (TSan too reports a read of freed malloc memory). */
static void test_freed_handles(void)
{
    if (microcrad_build_features() &
        (MICROCRAD_BUILD_ASAN | MICROCRAD_BUILD_TSAN | MICROCRAD_BUILD_VALGRIND)) {
        printf("freed handles: skipped (the sanitizer or Valgrind build reports them)\n");
        return;
    }
    printf("freed handles\n");
    uint64_t rng = 1;
    const int32_t sizes[1] = {2};
    microcrad_mlp *mlp = microcrad_mlp_create(2, 1, sizes, MICROCRAD_ACT_RELU,
                                              MICROCRAD_ACT_LINEAR, &rng);
    microcrad_mlp_free(mlp);
    int64_t status = microcrad_mlp_n_parameters(mlp);
    CHECK(status == MICROCRAD_ERR_RELEASED || status == MICROCRAD_ERR_FOREIGN);
    microcrad_neuron *neuron = microcrad_neuron_create(2, MICROCRAD_ACT_RELU, &rng);
    microcrad_neuron_free(neuron);
    status = microcrad_neuron_n_parameters(neuron);
    CHECK(status == MICROCRAD_ERR_RELEASED || status == MICROCRAD_ERR_FOREIGN);
    test_freed_large_handles();
}

/* Fails each allocation of a call in turn; `call` returns whether it succeeded. */
typedef int (*call_fn)(void *ctx);

static void walk_allocations(const char *name, call_fn call, void *ctx, uint64_t *rng)
{
    int64_t live0 = microcrad_live_values();
    uint64_t rng0 = rng ? *rng : 0;
    int64_t start = microcrad_allocation_count();
    CHECK(call(ctx));
    int64_t k = microcrad_allocation_count() - start;
    printf("allocation failures, %s: %lld allocation(s)\n", name, (long long)k);
    CHECK_INT(microcrad_live_values(), live0);
    if (rng)
        *rng = rng0;
    for (int64_t fail = 1; fail <= k; fail++) {
        CHECK_INT(microcrad_fail_allocation(fail), MICROCRAD_OK);
        microcrad_clear_error();
        int ok = call(ctx);
        microcrad_fail_allocation(0);
        if (!CHECK(!ok))
            fprintf(stderr, "    %s succeeded although allocation %lld failed\n", name,
                    (long long)fail);
        CHECK_CONTAINS(microcrad_last_error(), "memory");
        CHECK_INT(microcrad_live_values(), live0);
        if (rng)
            CHECK(*rng == rng0);
    }
}

static uint64_t walk_rng;

static int make_neuron(void *ctx)
{
    (void)ctx;
    microcrad_neuron *n = microcrad_neuron_create(3, MICROCRAD_ACT_TANH, &walk_rng);
    microcrad_neuron_free(n);
    return n != NULL;
}

static int make_layer(void *ctx)
{
    (void)ctx;
    microcrad_layer *l = microcrad_layer_create(2, 3, MICROCRAD_ACT_TANH, &walk_rng);
    microcrad_layer_free(l);
    return l != NULL;
}

static int make_mlp(void *ctx)
{
    (void)ctx;
    const int32_t sizes[3] = {3, 2, 1};
    microcrad_mlp *m = microcrad_mlp_create(2, 3, sizes, MICROCRAD_ACT_RELU, MICROCRAD_ACT_LINEAR,
                                            &walk_rng);
    microcrad_mlp_free(m);
    return m != NULL;
}

typedef struct forward_ctx {
    microcrad_mlp *mlp;
    Value *x[2];
} forward_ctx;

static int run_forward(void *ctx)
{
    forward_ctx *f = ctx;
    Value *out[2] = {f->x[0], f->x[0]};
    int status = microcrad_mlp_forward(f->mlp, f->x, out);
    if (status != MICROCRAD_OK) {
        CHECK(out[0] == NULL && out[1] == NULL);
        return 0;
    }
    release_all(out, 2);
    return 1;
}

static void test_allocation_failures(void)
{
    walk_rng = 17;
    walk_allocations("microcrad_neuron_create", make_neuron, NULL, &walk_rng);
    walk_allocations("microcrad_layer_create", make_layer, NULL, &walk_rng);
    walk_allocations("microcrad_mlp_create", make_mlp, NULL, &walk_rng);

    uint64_t rng = 23;
    const int32_t sizes[3] = {3, 4, 2};
    forward_ctx f = {microcrad_mlp_create(2, 3, sizes, MICROCRAD_ACT_TANH, MICROCRAD_ACT_LINEAR,
                                          &rng),
                     {value_create_leaf(0.5), value_create_leaf(-0.5)}};
    int64_t count;
    Value **params = parameters_of_mlp(f.mlp, &count);
    walk_allocations("microcrad_mlp_forward", run_forward, &f, NULL);
    for (int64_t i = 0; i < count; i++)
        CHECK_INT(value_ref_count(params[i]), 1); /* no reference left behind */
    free(params);
    release_all(f.x, 2);
    microcrad_mlp_free(f.mlp);
}

int main(void)
{
    microcrad_set_quiet(1);
    int64_t live0 = microcrad_live_values();
    test_random();
    test_neuron();
    test_layer();
    test_mlp();
    test_training();
    test_lifetimes();
    test_bad_arguments();
    test_overlapping_outputs();
    test_freed_handles();
    test_allocation_failures();
    CHECK_INT(microcrad_live_values(), live0);
    return check_summary();
}
