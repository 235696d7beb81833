/*
 * test_check_canary.c - bad pointers are reported, never crashed on, and change nothing.
 *
 * Every public function that takes a Value (the node functions, and the bulk, DOT,
 * tape, optimizer and network calls that take Values as inputs) is called with NULL,
 * with two kinds of foreign pointer (a zeroed struct carrying a wrong canary, and a
 * struct full of random bytes) and with a released node, in each argument position.
 * Each call must return its documented error (NULL, NaN, 0 or the right negative
 * status), leave a message naming the function in microcrad_last_error(), and change
 * nothing: the live count, the good operand's count, data and gradient, and the bad
 * struct's bytes.
 */
#define _POSIX_C_SOURCE 200809L

#include "check.h"

#include <microcrad.h>

#include <pthread.h>
#include <stdlib.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <string.h>
#include <unistd.h>

/* Each way of calling a public function with one bad Value and otherwise good ones. */
typedef enum call_id {
    C_CREATE,
    C_ADD_A, C_ADD_B, C_SUB_A, C_SUB_B, C_MUL_A, C_MUL_B, C_DIV_A, C_DIV_B,
    C_NEG, C_POW_A, C_POW_B, C_POW_CONST, C_EXP, C_LOG, C_RELU, C_TANH, C_SIGMOID,
    C_SUM, C_NEURON_B, C_NEURON_W, C_NEURON_X,
    C_RETAIN, C_RELEASE, C_REF_COUNT, C_BACKWARD, C_ZERO_GRAD,
    C_DATA, C_GRAD, C_SET_DATA, C_SET_GRAD, C_OP, C_PARAM, C_N_PREVS, C_PREV,
    C_SET_DATA_MANY, C_GET_DATA_MANY, C_GET_GRAD_MANY,
    C_WRITE_DOT, C_TAPE_CREATE, C_SGD_CREATE, C_ADAM_CREATE,
    C_NEURON_FORWARD, C_LAYER_FORWARD, C_MLP_FORWARD,
    C_COUNT
} call_id;

/* The function each call goes to, as its error message must name it. */
static const char *const call_name[C_COUNT] = {
    [C_CREATE] = "value_create",
    [C_ADD_A] = "value_add", [C_ADD_B] = "value_add",
    [C_SUB_A] = "value_sub", [C_SUB_B] = "value_sub",
    [C_MUL_A] = "value_mul", [C_MUL_B] = "value_mul",
    [C_DIV_A] = "value_div", [C_DIV_B] = "value_div",
    [C_NEG] = "value_neg",
    [C_POW_A] = "value_pow", [C_POW_B] = "value_pow",
    [C_POW_CONST] = "value_pow_const",
    [C_EXP] = "value_exp", [C_LOG] = "value_log", [C_RELU] = "value_relu",
    [C_TANH] = "value_tanh", [C_SIGMOID] = "value_sigmoid",
    [C_SUM] = "value_sum",
    [C_NEURON_B] = "value_neuron", [C_NEURON_W] = "value_neuron", [C_NEURON_X] = "value_neuron",
    [C_RETAIN] = "value_retain", [C_RELEASE] = "value_release",
    [C_REF_COUNT] = "value_ref_count",
    [C_BACKWARD] = "value_backward", [C_ZERO_GRAD] = "value_zero_grad",
    [C_DATA] = "value_data", [C_GRAD] = "value_grad",
    [C_SET_DATA] = "value_set_data", [C_SET_GRAD] = "value_set_grad",
    [C_OP] = "value_op", [C_PARAM] = "value_param", [C_N_PREVS] = "value_n_prevs",
    [C_PREV] = "value_prev",
    [C_SET_DATA_MANY] = "value_set_data_many", [C_GET_DATA_MANY] = "value_get_data_many",
    [C_GET_GRAD_MANY] = "value_get_grad_many",
    [C_WRITE_DOT] = "value_write_dot", [C_TAPE_CREATE] = "microcrad_tape_create",
    [C_SGD_CREATE] = "microcrad_sgd_create", [C_ADAM_CREATE] = "microcrad_adam_create",
    [C_NEURON_FORWARD] = "microcrad_neuron_forward",
    [C_LAYER_FORWARD] = "microcrad_layer_forward", [C_MLP_FORWARD] = "microcrad_mlp_forward",
};

/*
 * What the calls need besides the bad pointer: a live leaf (data 2.5, grad -1.5, one
 * reference) and small networks with two inputs. All are made once, up front, so that
 * no allocation happens between releasing a node and testing it.
 */
static struct context {
    Value *good;
    microcrad_neuron *neuron;
    microcrad_layer *layer; /* 2 outputs */
    microcrad_mlp *mlp;     /* 1 output */
    FILE *dot;              /* where value_write_dot must write nothing */
} ctx;

static void context_create(void)
{
    uint64_t rng = 42;
    const int32_t sizes[2] = {3, 1};
    ctx.good = value_create_leaf(2.5);
    value_set_grad(ctx.good, -1.5);
    ctx.neuron = microcrad_neuron_create(2, MICROCRAD_ACT_TANH, &rng);
    ctx.layer = microcrad_layer_create(2, 2, MICROCRAD_ACT_RELU, &rng);
    ctx.mlp = microcrad_mlp_create(2, 2, sizes, MICROCRAD_ACT_RELU, MICROCRAD_ACT_LINEAR, &rng);
    ctx.dot = tmpfile();
    CHECK(ctx.good && ctx.neuron && ctx.layer && ctx.mlp && ctx.dot);
}

static void context_free(void)
{
    value_release(ctx.good);
    microcrad_neuron_free(ctx.neuron);
    microcrad_layer_free(ctx.layer);
    microcrad_mlp_free(ctx.mlp);
    if (ctx.dot)
        fclose(ctx.dot);
}

/*
 * Makes the call and says whether it reported an error the documented way:
 * `Value *` results NULL, `double` results NaN, value_ref_count 0, and `int` results
 * exactly `status`.
 */
static int call_fails(call_id id, Value *bad, int status)
{
    Value *good = ctx.good;
    Value *r = NULL;
    switch (id) {
    case C_CREATE: {
        Value *prev[3] = {good, bad, good};
        r = value_create(1.0, 3, prev);
        break;
    }
    case C_ADD_A: r = value_add(bad, good); break;
    case C_ADD_B: r = value_add(good, bad); break;
    case C_SUB_A: r = value_sub(bad, good); break;
    case C_SUB_B: r = value_sub(good, bad); break;
    case C_MUL_A: r = value_mul(bad, good); break;
    case C_MUL_B: r = value_mul(good, bad); break;
    case C_DIV_A: r = value_div(bad, good); break;
    case C_DIV_B: r = value_div(good, bad); break;
    case C_NEG: r = value_neg(bad); break;
    case C_POW_A: r = value_pow(bad, good); break;
    case C_POW_B: r = value_pow(good, bad); break;
    case C_POW_CONST: r = value_pow_const(bad, 2.0); break;
    case C_EXP: r = value_exp(bad); break;
    case C_LOG: r = value_log(bad); break;
    case C_RELU: r = value_relu(bad); break;
    case C_TANH: r = value_tanh(bad); break;
    case C_SIGMOID: r = value_sigmoid(bad); break;
    case C_SUM: {
        Value *terms[3] = {good, good, bad};
        r = value_sum(3, terms);
        break;
    }
    case C_NEURON_B: {
        Value *w[2] = {good, good}, *x[2] = {good, good};
        r = value_neuron(2, w, x, bad);
        break;
    }
    case C_NEURON_W: {
        Value *w[2] = {good, bad}, *x[2] = {good, good};
        r = value_neuron(2, w, x, good);
        break;
    }
    case C_NEURON_X: {
        Value *w[2] = {good, good}, *x[2] = {bad, good};
        r = value_neuron(2, w, x, good);
        break;
    }
    case C_RETAIN: return value_retain(bad) == status;
    /* value_release(NULL) succeeds, like free(NULL) (see test_release_null). */
    case C_RELEASE: return value_release(bad) == (bad ? status : MICROCRAD_OK);
    case C_REF_COUNT: return value_ref_count(bad) == 0;
    case C_BACKWARD: return value_backward(bad) == status;
    case C_ZERO_GRAD: return value_zero_grad(bad) == status;
    case C_DATA: return isnan(value_data(bad));
    case C_GRAD: return isnan(value_grad(bad));
    case C_SET_DATA: return value_set_data(bad, 7.0) == status;
    case C_SET_GRAD: return value_set_grad(bad, 7.0) == status;
    case C_OP: return value_op(bad) == status;
    case C_PARAM: return isnan(value_param(bad));
    case C_N_PREVS: return value_n_prevs(bad) == status;
    case C_PREV: return value_prev(bad, 0) == NULL;
    case C_SET_DATA_MANY: {
        /* Checked first, changed never: good's data must survive (checked below). */
        Value *values[3] = {good, bad, good};
        const double data[3] = {7.0, 7.0, 7.0};
        return value_set_data_many(3, values, data) == status;
    }
    case C_GET_DATA_MANY: {
        Value *values[2] = {good, bad};
        double out[2];
        return value_get_data_many(2, values, out) == status;
    }
    case C_GET_GRAD_MANY: {
        Value *values[2] = {bad, good};
        double out[2];
        return value_get_grad_many(2, values, out) == status;
    }
    case C_WRITE_DOT: {
        int ok = value_write_dot(bad, ctx.dot) == status;
        fflush(ctx.dot);
        return ok && ftell(ctx.dot) == 0; /* not a byte written */
    }
    case C_TAPE_CREATE: {
        microcrad_tape *tape = microcrad_tape_create(bad);
        if (tape)
            microcrad_tape_free(tape);
        return tape == NULL;
    }
    case C_SGD_CREATE: {
        Value *params[2] = {good, bad};
        microcrad_optimizer *opt = microcrad_sgd_create(2, params, 0.1, 0.0, 0.0);
        if (opt)
            microcrad_optimizer_free(opt);
        return opt == NULL;
    }
    case C_ADAM_CREATE: {
        Value *params[2] = {bad, good};
        microcrad_optimizer *opt = microcrad_adam_create(2, params, 0.1, 0.9, 0.999, 1e-8, 0.0);
        if (opt)
            microcrad_optimizer_free(opt);
        return opt == NULL;
    }
    case C_NEURON_FORWARD: {
        Value *x[2] = {good, bad};
        r = microcrad_neuron_forward(ctx.neuron, x);
        break;
    }
    case C_LAYER_FORWARD: {
        /* On error every output slot is set to NULL. */
        Value *x[2] = {good, bad};
        Value *out[2] = {good, good};
        int ok = microcrad_layer_forward(ctx.layer, x, out) == status;
        return ok && out[0] == NULL && out[1] == NULL;
    }
    case C_MLP_FORWARD: {
        Value *x[2] = {bad, good};
        Value *out[1] = {good};
        int ok = microcrad_mlp_forward(ctx.mlp, x, out) == status;
        return ok && out[0] == NULL;
    }
    case C_COUNT: break;
    }
    if (r != NULL)
        value_release(r); /* keep the books straight even when the check fails */
    return r == NULL;
}

/* Every op of the op table, through value_create_op, with `bad` in each operand slot
 * in turn: refused with `status`, the message naming the slot, nothing changed. A new
 * op is covered here without editing this test. */
static void check_every_op_slot(const char *what, Value *bad, int status)
{
    Value *good = ctx.good;
    int64_t live0 = microcrad_live_values();
    for (int op = 0; op < microcrad_op_count(); op++) {
        int arity = microcrad_op_arity(op);
        int32_t n = arity >= 0 ? arity : 3; /* 3 suits every n-ary op */
        for (int32_t slot = 0; slot < n; slot++) {
            Value *operands[3] = {good, good, good};
            operands[slot] = bad;
            microcrad_clear_error();
            Value *r = value_create_op(op, 2.0, n, operands);
            if (!CHECK(r == NULL)) {
                value_release(r);
                fprintf(stderr, "    op %s, slot %ld, with %s\n", microcrad_op_name(op),
                        (long)slot, what);
                continue;
            }
            CHECK_CONTAINS(microcrad_last_error(), "value_create_op");
            CHECK_CONTAINS(microcrad_last_error(), "operands");
            CHECK_INT(microcrad_last_status(), status);
            CHECK_INT(microcrad_live_values(), live0);
            CHECK_INT(value_ref_count(good), 1);
        }
    }
}

/*
 * Runs every call with `bad`; `what` names the kind of bad pointer in messages.
 * `bad_bytes`, when not NULL, is the memory `bad` points to, which must not change.
 */
static void check_all_calls(const char *what, Value *bad, int status, const void *bad_bytes,
                            size_t n_bad_bytes)
{
    Value *good = ctx.good;
    printf("%s\n", what);
    unsigned char snapshot[sizeof(Value)];
    if (bad_bytes)
        memcpy(snapshot, bad_bytes, n_bad_bytes);

    int64_t live0 = microcrad_live_values();
    for (int id = 0; id < C_COUNT; id++) {
        microcrad_clear_error();
        int failed = call_fails((call_id)id, bad, status);
        if (!CHECK(failed))
            fprintf(stderr, "    %s with %s did not fail as documented\n", call_name[id], what);
        if (id == C_RELEASE && bad == NULL) {
            /* Not an error at all: nothing recorded (see test_release_null). */
            CHECK_INT(microcrad_last_status(), MICROCRAD_OK);
            CHECK(strcmp(microcrad_last_error(), "") == 0);
            continue;
        }
        const char *msg = microcrad_last_error();
        if (!CHECK_CONTAINS(msg, call_name[id]))
            fprintf(stderr, "    (%s with %s)\n", call_name[id], what);
        /* The status a NULL or NaN result stands for is kept as well. */
        if (!CHECK_INT(microcrad_last_status(), status))
            fprintf(stderr, "    (%s with %s)\n", call_name[id], what);
        /* Nothing changed. */
        CHECK_INT(microcrad_live_values(), live0);
        CHECK_INT(value_ref_count(good), 1);
        CHECK_SAME(good->data, 2.5);
        CHECK_SAME(good->grad, -1.5);
        if (bad_bytes && !CHECK(memcmp(snapshot, bad_bytes, n_bad_bytes) == 0))
            fprintf(stderr, "    %s changed the bytes of %s\n", call_name[id], what);
    }
    check_every_op_slot(what, bad, status);
    if (bad_bytes && !CHECK(memcmp(snapshot, bad_bytes, n_bad_bytes) == 0))
        fprintf(stderr, "    value_create_op changed the bytes of %s\n", what);
}


/* ------------------------------------------------------------------------------ */

/* Arguments other than Values that are out of range. */
static void test_bad_arguments(void)
{
    printf("bad non-Value arguments\n");
    Value *good = value_create_leaf(1.0);
    int64_t live0 = microcrad_live_values();

    microcrad_clear_error();
    CHECK(value_create(1.0, -1, &good) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "value_create");
    CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_ARGUMENT);
    microcrad_clear_error();
    CHECK(value_create(1.0, 2, NULL) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "value_create");
    CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_NULL);
    microcrad_clear_error();
    CHECK(value_sum(-1, &good) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "value_sum");
    CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_ARGUMENT);
    microcrad_clear_error();
    CHECK(value_sum(2, NULL) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "value_sum");
    CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_NULL);
    microcrad_clear_error();
    CHECK(value_neuron(-1, &good, &good, good) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "value_neuron");
    CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_ARGUMENT);
    microcrad_clear_error();
    CHECK(value_neuron(1, NULL, &good, good) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "value_neuron");
    CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_NULL);
    microcrad_clear_error();
    CHECK(value_neuron(1, &good, NULL, good) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "value_neuron");
    CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_NULL);
    microcrad_clear_error();
    CHECK(value_prev(good, 0) == NULL); /* a leaf has no operand 0 */
    CHECK(value_prev(good, UINT32_MAX) == NULL);
    microcrad_clear_error();
    CHECK_INT(microcrad_fail_allocation(-1), MICROCRAD_ERR_ARGUMENT);
    CHECK_CONTAINS(microcrad_last_error(), "microcrad_fail_allocation");

    CHECK_INT(microcrad_live_values(), live0);
    CHECK_INT(value_ref_count(good), 1);
    value_release(good);
}

/* value_release(NULL) is a no-op that succeeds, like free(NULL): cleanup code can
 * release whatever it has, NULL included, without testing first. It records no error
 * and prints nothing, even when errors are not silenced. */
static void test_release_null(void)
{
    printf("value_release(NULL)\n");
    int quiet = microcrad_set_quiet(0);
    microcrad_clear_error();
    int64_t live0 = microcrad_live_values();
    CHECK_INT(value_release(NULL), MICROCRAD_OK);
    CHECK_INT(microcrad_last_status(), MICROCRAD_OK);
    CHECK(strcmp(microcrad_last_error(), "") == 0);
    CHECK_INT(microcrad_live_values(), live0);
    microcrad_set_quiet(quiet);
    /* Other functions keep refusing NULL. */
    microcrad_set_quiet(1);
    CHECK_INT(value_retain(NULL), MICROCRAD_ERR_NULL);
    microcrad_set_quiet(quiet);
}

/* A node freed by a cascade (its last holder released) reads as released, and a
 * double release is refused without touching the count of anything. */
static void test_released(void)
{
    /* Reading a freed node's canary is what this checks, and with plain malloc that
     * read is itself a use-after-free. Under AddressSanitizer and Valgrind the tool
     * reports it first, rightly: there the tool is the detector, so these checks run
     * only in builds without them. (With the default node pool a freed node's block
     * stays the library's, so the canary is readable.) Only leaves and binary nodes
     * are used, and nothing is allocated between a release and the checks, so the
     * freed block cannot have been handed out again. */
    unsigned features = microcrad_build_features();
    if (features & (MICROCRAD_BUILD_ASAN | MICROCRAD_BUILD_VALGRIND)) {
        printf("released nodes: skipped (the sanitizer or Valgrind build reports them)\n");
        return;
    }
    int64_t live0 = microcrad_live_values();
    Value *dead = value_create_leaf(3.0);
    CHECK_INT(value_release(dead), MICROCRAD_OK);
    CHECK_INT(microcrad_live_values(), live0);
    CHECK_INT(dead->magic, MICROCRAD_MAGIC_DEAD);
    check_all_calls("a released node", dead, MICROCRAD_ERR_RELEASED, NULL, 0);

    /* Freed through the graph: c held the last references to a and b. */
    Value *a = value_create_leaf(1.0);
    Value *b = value_create_leaf(2.0);
    Value *c = value_mul(a, b);
    value_release(a);
    value_release(b);
    CHECK_INT(value_release(c), MICROCRAD_OK);
    CHECK_INT(microcrad_live_values(), live0);
    CHECK_INT(value_op(a), MICROCRAD_ERR_RELEASED);
    CHECK_INT(value_op(b), MICROCRAD_ERR_RELEASED);
    CHECK_INT(value_op(c), MICROCRAD_ERR_RELEASED);
    CHECK_INT(value_release(c), MICROCRAD_ERR_RELEASED);
    CHECK_INT(value_release(a), MICROCRAD_ERR_RELEASED);
    CHECK_INT(microcrad_live_values(), live0);
}

/*
 * A released node with many operands reads as released too. Such a node was once one
 * malloc block, header and operands together, and glibc's free unmaps a block above
 * its mmap threshold: the check of the released pointer then faulted. The threshold is
 * pinned low (glibc adapts it to earlier frees, which would make the sizes below
 * depend on what ran before), so a few thousand operands cross it.
 */
static void test_released_large(void)
{
    if (microcrad_build_features() & (MICROCRAD_BUILD_ASAN | MICROCRAD_BUILD_VALGRIND)) {
        printf("released large nodes: skipped (the sanitizer or Valgrind build reports them)\n");
        return;
    }
    printf("released large nodes\n");
#if defined(M_MMAP_THRESHOLD)
    mallopt(M_MMAP_THRESHOLD, 16 * 1024);
#endif
    enum { N = 20000 };
    static Value *terms[N], *w[N];
    int64_t live0 = microcrad_live_values();
    Value *x = value_create_leaf(1.0);
    for (int i = 0; i < N; i++)
        terms[i] = w[i] = x;
    Value *sum = value_sum(N, terms);
    Value *neuron = value_neuron(N, w, terms, x);
    Value *activated = value_neuron_activation(N, w, terms, x, MICROCRAD_ACT_TANH);
    Value *custom = value_create(0.0, N, terms);
    Value *large[] = {sum, neuron, activated, custom};
    for (size_t i = 0; i < sizeof large / sizeof large[0]; i++) {
        CHECK(large[i] != NULL);
        CHECK_INT(value_release(large[i]), MICROCRAD_OK);
    }
    CHECK_INT(value_ref_count(x), 1);
    for (size_t i = 0; i < sizeof large / sizeof large[0]; i++) {
        microcrad_clear_error();
        CHECK(isnan(value_data(large[i])));
        CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_RELEASED);
        CHECK_INT(value_release(large[i]), MICROCRAD_ERR_RELEASED);
        CHECK_INT(value_n_prevs(large[i]), MICROCRAD_ERR_RELEASED);
    }
    CHECK_INT(value_ref_count(x), 1);
    value_release(x);
    CHECK_INT(microcrad_live_values(), live0);
}

/* Printing to stderr follows microcrad_set_quiet; the message is recorded either way. */
static size_t stderr_bytes_of_an_error(void)
{
    fflush(stderr);
    FILE *capture = tmpfile();
    int saved = dup(STDERR_FILENO);
    if (!capture || saved < 0) {
        CHECK(!"cannot capture stderr");
        if (capture)
            fclose(capture);
        if (saved >= 0)
            close(saved);
        return 0;
    }
    dup2(fileno(capture), STDERR_FILENO);
    microcrad_clear_error();
    CHECK(isnan(value_data(NULL)));
    CHECK_CONTAINS(microcrad_last_error(), "value_data");
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    long size = ftell(capture);
    fclose(capture);
    return size > 0 ? (size_t)size : 0;
}

static void test_quiet(void)
{
    printf("quiet\n");
    int before = microcrad_set_quiet(0);
    CHECK(stderr_bytes_of_an_error() > 0);
    CHECK_INT(microcrad_set_quiet(1), 0);
    CHECK_INT(stderr_bytes_of_an_error(), 0);
    CHECK(microcrad_set_quiet(1) != 0);
    CHECK(microcrad_set_quiet(0) != 0);
    CHECK_INT(microcrad_set_quiet(before), 0);
}

/* The last error belongs to the thread that raised it. */
static void *other_thread(void *arg)
{
    int *ok = arg;
    *ok = strcmp(microcrad_last_error(), "") == 0;
    value_grad(NULL);
    *ok = *ok && strstr(microcrad_last_error(), "value_grad") != NULL;
    return NULL;
}

static void test_error_is_per_thread(void)
{
    printf("errors are per thread\n");
    microcrad_clear_error();
    CHECK(isnan(value_param(NULL)));
    char mine[256];
    snprintf(mine, sizeof mine, "%s", microcrad_last_error());
    CHECK_CONTAINS(mine, "value_param");

    pthread_t t;
    int ok = 0;
    if (CHECK(pthread_create(&t, NULL, other_thread, &ok) == 0)) {
        pthread_join(t, NULL);
        CHECK(ok);
    }
    CHECK(strcmp(microcrad_last_error(), mine) == 0);
    CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_NULL);
    microcrad_clear_error();
    CHECK(strcmp(microcrad_last_error(), "") == 0);
    CHECK_INT(microcrad_last_status(), MICROCRAD_OK);
}

static void test_strings(void)
{
    printf("status strings, version\n");
    const int statuses[] = {MICROCRAD_OK, MICROCRAD_ERR_NULL, MICROCRAD_ERR_RELEASED,
                            MICROCRAD_ERR_FOREIGN, MICROCRAD_ERR_NOMEM,
                            MICROCRAD_ERR_ARGUMENT, MICROCRAD_ERR_OVERFLOW,
                            MICROCRAD_ERR_IO};
    const int n = (int)(sizeof statuses / sizeof statuses[0]);
    for (int i = 0; i < n; i++) {
        const char *s = microcrad_status_string(statuses[i]);
        CHECK(s != NULL && s[0] != '\0');
        for (int j = 0; j < i; j++)
            CHECK(strcmp(s, microcrad_status_string(statuses[j])) != 0);
    }
    CHECK_CONTAINS(microcrad_status_string(MICROCRAD_ERR_NOMEM), "memory");
    const char *unknown = microcrad_status_string(-1000);
    CHECK(unknown != NULL && unknown[0] != '\0');
    CHECK(microcrad_status_string(1) != NULL);

    int major = -1, minor = -1, patch = -1;
    const char *v = microcrad_version();
    CHECK(v != NULL && sscanf(v, "%d.%d.%d", &major, &minor, &patch) == 3);
    CHECK(major >= 0 && minor >= 0 && patch >= 0);
}

int main(void)
{
    /* Before any error the message is empty and the status OK. */
    CHECK(strcmp(microcrad_last_error(), "") == 0);
    CHECK_INT(microcrad_last_status(), MICROCRAD_OK);
    test_quiet(); /* first, while the default (not quiet) is still in place */
    microcrad_set_quiet(1);
    int64_t live_at_start = microcrad_live_values();

    context_create();
    check_all_calls("NULL", NULL, MICROCRAD_ERR_NULL, NULL, 0);

    /* A struct that is not a node: zeros with a canary that is neither live nor dead. */
    Value fake = {.magic = 0x12345678u};
    check_all_calls("a zeroed struct with a wrong canary", &fake, MICROCRAD_ERR_FOREIGN, &fake,
                    sizeof fake);

    /* Random bytes (a fixed generator, so a failure reproduces). */
    Value noise;
    unsigned char *bytes = (unsigned char *)&noise;
    uint32_t state = 0x9E3779B9u;
    for (size_t i = 0; i < sizeof noise; i++) {
        state = state * 1664525u + 1013904223u;
        bytes[i] = (unsigned char)(state >> 24);
    }
    if (noise.magic == MICROCRAD_MAGIC_LIVE || noise.magic == MICROCRAD_MAGIC_DEAD)
        noise.magic ^= 1u; /* astronomically unlikely, but then it would not be foreign */
    check_all_calls("a buffer of random bytes", &noise, MICROCRAD_ERR_FOREIGN, &noise,
                    sizeof noise);

    test_released();
    test_released_large();
    test_release_null();
    context_free();
    test_bad_arguments();
    test_error_is_per_thread();
    test_strings();

    CHECK_INT(microcrad_live_values(), live_at_start);
    return check_summary();
}
