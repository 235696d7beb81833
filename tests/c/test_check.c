/*
 * test_check.c - the one pointer check (c/src/check.c): every public function that
 * takes a pointer of one kind (Value, tape, optimizer, neuron, layer, MLP, scope) is
 * given pointers of every kind that it must refuse:
 *
 *   - a live object of each other kind,
 *   - each kind's object, freed (not in ASan and Valgrind builds, where reading freed
 *     memory is the tool's finding: there the tool is the detector),
 *   - each kind's live object, misaligned by one byte,
 *   - a live object crafted to mimic the expected kind: a Value whose every field a
 *     caller can set (data, grad, and a constant power's exponent) holds the bytes the
 *     expected kind has at the same offset, or that kind's canary; and, for functions
 *     that take a Value, an optimizer whose settings hold a Value's canary,
 *   - NULL.
 *
 * Scopes are the one kind the functions that take them recognise by address, never by
 * reading the pointer (microcrad_scope_end and microcrad_scope_size): given anything
 * but a scope open on the calling thread they return MICROCRAD_ERR_ARGUMENT (NULL:
 * MICROCRAD_ERR_NULL). A scope passed where another kind is expected is refused by its
 * canary like any other kind (it once had none, and the check read past its end).
 *
 * Each call must return its documented error (NULL, NaN, 0, or the right negative
 * status), record that status for microcrad_last_status(), and change nothing: the
 * live count, the good operand, and the bytes of the object it was given.
 *
 * Then, one by one, the defects this check replaced: a freed tape reported as FOREIGN,
 * a leaf accepted as a tape, a constant power accepted as an optimizer, a misaligned
 * pointer read before it was checked.
 */
#define _POSIX_C_SOURCE 200809L

#include "check.h"

#include <microcrad.h>

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef enum kind {
    K_VALUE, K_TAPE, K_OPTIMIZER, K_NEURON, K_LAYER, K_MLP, K_SCOPE, K_COUNT
} kind;

static const char *const kind_name[K_COUNT] = {"Value", "tape", "optimizer", "neuron",
                                               "layer", "MLP",  "scope"};

/*
 * The live scope: a scope is open on the thread that opened it until that thread ends
 * it, and every result made on that thread while it is open goes into it. So it is
 * opened on a thread of its own, which waits (without touching it) until the test is
 * done and then ends it.
 */
static struct scope_thread {
    pthread_t thread;
    pthread_barrier_t opened, done;
    microcrad_scope *scope;
    int64_t size_at_end;
    int end_status;
} scope_thread;

static void *hold_a_scope(void *arg)
{
    (void)arg;
    scope_thread.scope = microcrad_scope_begin();
    pthread_barrier_wait(&scope_thread.opened);
    pthread_barrier_wait(&scope_thread.done);
    scope_thread.size_at_end = microcrad_scope_size(scope_thread.scope);
    scope_thread.end_status = microcrad_scope_end(scope_thread.scope);
    return NULL;
}

static microcrad_scope *open_scope_on_another_thread(void)
{
    pthread_barrier_init(&scope_thread.opened, NULL, 2);
    pthread_barrier_init(&scope_thread.done, NULL, 2);
    if (pthread_create(&scope_thread.thread, NULL, hold_a_scope, NULL) != 0)
        return NULL;
    pthread_barrier_wait(&scope_thread.opened);
    return scope_thread.scope;
}

static void end_scope_on_its_thread(void)
{
    pthread_barrier_wait(&scope_thread.done);
    pthread_join(scope_thread.thread, NULL);
    pthread_barrier_destroy(&scope_thread.opened);
    pthread_barrier_destroy(&scope_thread.done);
    CHECK_INT(scope_thread.size_at_end, 0); /* nothing the calls did went into it */
    CHECK_INT(scope_thread.end_status, MICROCRAD_OK);
}

/* What the calls need besides the bad pointer, made once up front: a good leaf (data
 * 2.5, grad -1.5, one reference) and one live object of each kind over two inputs. */
static struct context {
    Value *good;
    void *live[K_COUNT];
    FILE *dot;
} ctx;

static void context_create(void)
{
    uint64_t rng = 7;
    const int32_t sizes[2] = {3, 1};
    ctx.good = value_create_leaf(2.5);
    value_set_grad(ctx.good, -1.5);
    Value *leaf = value_create_leaf(1.0);
    Value *root = value_mul(leaf, leaf);
    ctx.live[K_VALUE] = leaf;
    ctx.live[K_TAPE] = microcrad_tape_create(root);
    value_release(root);
    Value *params[1] = {leaf};
    ctx.live[K_OPTIMIZER] = microcrad_sgd_create(1, params, 0.1, 0.0, 0.0);
    ctx.live[K_NEURON] = microcrad_neuron_create(2, MICROCRAD_ACT_TANH, &rng);
    ctx.live[K_LAYER] = microcrad_layer_create(2, 2, MICROCRAD_ACT_RELU, &rng);
    ctx.live[K_MLP] = microcrad_mlp_create(2, 2, sizes, MICROCRAD_ACT_RELU,
                                           MICROCRAD_ACT_LINEAR, &rng);
    ctx.live[K_SCOPE] = open_scope_on_another_thread();
    ctx.dot = tmpfile();
    for (int k = 0; k < K_COUNT; k++)
        CHECK(ctx.live[k] != NULL);
    CHECK(ctx.good && ctx.dot);
}

static void free_object(kind k, void *p)
{
    switch (k) {
    case K_VALUE: value_release(p); break;
    case K_TAPE: microcrad_tape_free(p); break;
    case K_OPTIMIZER: microcrad_optimizer_free(p); break;
    case K_NEURON: microcrad_neuron_free(p); break;
    case K_LAYER: microcrad_layer_free(p); break;
    case K_MLP: microcrad_mlp_free(p); break;
    case K_SCOPE:
        if (p == ctx.live[K_SCOPE])
            end_scope_on_its_thread();
        else
            microcrad_scope_end(p);
        break;
    case K_COUNT: break;
    }
}

static void context_free(void)
{
    /* The optimizer and tape hold the leaf: free them first, the leaf last. */
    for (int k = K_COUNT; k-- > 0;)
        free_object((kind)k, ctx.live[k]);
    value_release(ctx.good);
    if (ctx.dot)
        fclose(ctx.dot);
}

/* The canary of a live object: the header promises that every kind keeps it at the
 * offset of a Value's magic. */
static uint32_t canary_of(const void *p)
{
    uint32_t canary;
    memcpy(&canary, (const unsigned char *)p + offsetof(Value, magic), sizeof canary);
    return canary;
}

/* ------------------------------------------------------------------------------ */
/* Every public function that takes a pointer, by the kind it takes                 */
/* ------------------------------------------------------------------------------ */

typedef struct call {
    kind takes;
    const char *name;
    /* Makes the call with `bad` and says whether it failed the documented way. */
    int (*fails)(void *bad, int status);
} call;

/* A Value * result: NULL. (A non-NULL one is released, to keep the books straight.) */
static int null_node(Value *r)
{
    if (r)
        value_release(r);
    return r == NULL;
}

#define GOOD ctx.good
#define NODE_CALL(fn_name, expr)                                 \
    static int fn_name(void *bad, int status)                    \
    {                                                            \
        (void)status;                                            \
        return null_node(expr);                                  \
    }
#define STATUS_CALL(fn_name, expr)                               \
    static int fn_name(void *bad, int status) { return (expr) == status; }
#define NAN_CALL(fn_name, expr)                                  \
    static int fn_name(void *bad, int status)                    \
    {                                                            \
        (void)status;                                            \
        return isnan(expr);                                      \
    }
/* A void *_free: it can only record the status. */
#define FREE_CALL(fn_name, expr)                                 \
    static int fn_name(void *bad, int status)                    \
    {                                                            \
        microcrad_clear_error();                                 \
        expr;                                                    \
        return microcrad_last_status() == status;                \
    }

static Value *create_with(void *bad)
{
    Value *prev[2] = {GOOD, bad};
    return value_create(1.0, 2, prev);
}
static Value *sum_with(void *bad)
{
    Value *terms[3] = {GOOD, GOOD, bad};
    return value_sum(3, terms);
}
/* value_neuron and value_neuron_activation with `bad` as b (slot 0), w[1] (1) or x[0] (2). */
static Value *neuron_with(void *bad, int slot, int activation)
{
    Value *w[2] = {GOOD, slot == 1 ? bad : GOOD}, *x[2] = {slot == 2 ? bad : GOOD, GOOD};
    Value *b = slot == 0 ? bad : GOOD;
    return activation ? value_neuron_activation(2, w, x, b, MICROCRAD_ACT_TANH)
                      : value_neuron(2, w, x, b);
}
static int many_with(void *bad, int status, int which)
{
    Value *values[3] = {GOOD, bad, GOOD};
    double data[3] = {7.0, 7.0, 7.0};
    int r = which == 0   ? value_set_data_many(3, values, data)
            : which == 1 ? value_get_data_many(3, values, data)
                         : value_get_grad_many(3, values, data);
    return r == status;
}
static int dot_with(void *bad, int status)
{
    int ok = value_write_dot(bad, ctx.dot) == status;
    fflush(ctx.dot);
    return ok && ftell(ctx.dot) == 0; /* not a byte written */
}
static int tape_create_with(void *bad, int status)
{
    (void)status;
    microcrad_tape *tape = microcrad_tape_create(bad);
    if (tape)
        microcrad_tape_free(tape);
    return tape == NULL;
}
static int optimizer_create_with(void *bad, int adam)
{
    Value *params[2] = {GOOD, bad};
    microcrad_optimizer *opt = adam ? microcrad_adam_create(2, params, 0.1, 0.9, 0.999, 1e-8, 0)
                                    : microcrad_sgd_create(2, params, 0.1, 0.0, 0.0);
    if (opt)
        microcrad_optimizer_free(opt);
    return opt == NULL;
}
/* The networks' forward functions with `bad` as input x[1]; on error every output slot
 * is NULL. */
static int network_forward_with(void *bad, int status, kind k)
{
    Value *x[2] = {GOOD, bad};
    Value *out[2] = {GOOD, GOOD};
    if (k == K_NEURON)
        return null_node(microcrad_neuron_forward(ctx.live[K_NEURON], x));
    int r = k == K_LAYER ? microcrad_layer_forward(ctx.live[K_LAYER], x, out)
                         : microcrad_mlp_forward(ctx.live[K_MLP], x, out);
    return r == status && out[0] == NULL && (k == K_MLP || out[1] == NULL);
}

/* Every op of the op table through value_create_op, `bad` in each operand slot in
 * turn: each call must fail with `status` (a new op is covered without editing this
 * test). */
static int create_op_with(void *bad, int status)
{
    int ok = 1;
    for (int op = 0; op < microcrad_op_count(); op++) {
        int arity = microcrad_op_arity(op);
        int32_t n = arity >= 0 ? arity : 3; /* 3 suits every n-ary op */
        for (int32_t slot = 0; slot < n; slot++) {
            Value *operands[3] = {GOOD, GOOD, GOOD};
            operands[slot] = bad;
            microcrad_clear_error();
            ok &= null_node(value_create_op(op, 2.0, n, operands)) &&
                  microcrad_last_status() == status;
        }
    }
    return ok;
}

/* Functions that take a Value. */
NODE_CALL(v_create, create_with(bad))
NODE_CALL(v_add_a, value_add(bad, GOOD))
NODE_CALL(v_add_b, value_add(GOOD, bad))
NODE_CALL(v_sub_a, value_sub(bad, GOOD))
NODE_CALL(v_sub_b, value_sub(GOOD, bad))
NODE_CALL(v_mul_a, value_mul(bad, GOOD))
NODE_CALL(v_mul_b, value_mul(GOOD, bad))
NODE_CALL(v_div_a, value_div(bad, GOOD))
NODE_CALL(v_div_b, value_div(GOOD, bad))
NODE_CALL(v_neg, value_neg(bad))
NODE_CALL(v_pow_a, value_pow(bad, GOOD))
NODE_CALL(v_pow_b, value_pow(GOOD, bad))
NODE_CALL(v_pow_const, value_pow_const(bad, 2.0))
NODE_CALL(v_exp, value_exp(bad))
NODE_CALL(v_log, value_log(bad))
NODE_CALL(v_relu, value_relu(bad))
NODE_CALL(v_tanh, value_tanh(bad))
NODE_CALL(v_sigmoid, value_sigmoid(bad))
NODE_CALL(v_add_scalar, value_add_scalar(bad, 1.0))
NODE_CALL(v_sub_scalar, value_sub_scalar(bad, 1.0))
NODE_CALL(v_mul_scalar, value_mul_scalar(bad, 1.0))
NODE_CALL(v_div_scalar, value_div_scalar(bad, 1.0))
NODE_CALL(v_scalar_add, value_scalar_add(1.0, bad))
NODE_CALL(v_scalar_sub, value_scalar_sub(1.0, bad))
NODE_CALL(v_scalar_mul, value_scalar_mul(1.0, bad))
NODE_CALL(v_scalar_div, value_scalar_div(1.0, bad))
NODE_CALL(v_scalar_pow, value_scalar_pow(1.0, bad))
NODE_CALL(v_sum, sum_with(bad))
NODE_CALL(v_neuron_b, neuron_with(bad, 0, 0))
NODE_CALL(v_neuron_w, neuron_with(bad, 1, 0))
NODE_CALL(v_neuron_x, neuron_with(bad, 2, 0))
NODE_CALL(v_neuron_act_b, neuron_with(bad, 0, 1))
NODE_CALL(v_neuron_act_w, neuron_with(bad, 1, 1))
NODE_CALL(v_neuron_act_x, neuron_with(bad, 2, 1))
NODE_CALL(v_prev, value_prev(bad, 0))
STATUS_CALL(v_retain, value_retain(bad))
STATUS_CALL(v_release, value_release(bad))
/* value_release_many with `bad` after a NULL entry (a live entry would be released
 * all the same: the call leaves only the bad one alone). */
static int v_release_many(void *bad, int status)
{
    Value *nodes[2] = {NULL, bad};
    return value_release_many(2, nodes) == status;
}
STATUS_CALL(v_backward, value_backward(bad))
STATUS_CALL(v_zero_grad, value_zero_grad(bad))
STATUS_CALL(v_set_data, value_set_data(bad, 7.0))
STATUS_CALL(v_set_grad, value_set_grad(bad, 7.0))
STATUS_CALL(v_op, value_op(bad))
STATUS_CALL(v_n_prevs, value_n_prevs(bad))
NAN_CALL(v_data, value_data(bad))
NAN_CALL(v_grad, value_grad(bad))
NAN_CALL(v_param, value_param(bad))
static int v_ref_count(void *bad, int status) { (void)status; return value_ref_count(bad) == 0; }
static int v_set_data_many(void *bad, int status) { return many_with(bad, status, 0); }
static int v_get_data_many(void *bad, int status) { return many_with(bad, status, 1); }
static int v_get_grad_many(void *bad, int status) { return many_with(bad, status, 2); }
static int v_sgd_create(void *bad, int s) { (void)s; return optimizer_create_with(bad, 0); }
static int v_adam_create(void *bad, int s) { (void)s; return optimizer_create_with(bad, 1); }
static int v_neuron_forward(void *bad, int s) { return network_forward_with(bad, s, K_NEURON); }
static int v_layer_forward(void *bad, int s) { return network_forward_with(bad, s, K_LAYER); }
static int v_mlp_forward(void *bad, int s) { return network_forward_with(bad, s, K_MLP); }

/* Functions that take a tape. */
STATUS_CALL(t_forward, microcrad_tape_forward(bad))
STATUS_CALL(t_backward, microcrad_tape_backward(bad))
STATUS_CALL(t_zero_grad, microcrad_tape_zero_grad(bad))
STATUS_CALL(t_size, microcrad_tape_size(bad))
NAN_CALL(t_data, microcrad_tape_data(bad))
FREE_CALL(t_free, microcrad_tape_free(bad))

/* Functions that take an optimizer. */
STATUS_CALL(o_step, microcrad_optimizer_step(bad))
STATUS_CALL(o_zero_grad, microcrad_optimizer_zero_grad(bad))
STATUS_CALL(o_step_zero_grad, microcrad_optimizer_step_zero_grad(bad))
STATUS_CALL(o_set_lr, microcrad_optimizer_set_lr(bad, 0.5))
NAN_CALL(o_lr, microcrad_optimizer_lr(bad))
FREE_CALL(o_free, microcrad_optimizer_free(bad))

/* Functions that take a network. */
static int n_forward(void *bad, int status)
{
    (void)status;
    Value *x[2] = {GOOD, GOOD};
    return null_node(microcrad_neuron_forward(bad, x));
}
static int l_forward(void *bad, int status)
{
    Value *x[2] = {GOOD, GOOD}, *out[2] = {GOOD, GOOD};
    /* The output slots are left alone: the layer's width is unknown. */
    return microcrad_layer_forward(bad, x, out) == status && out[0] == GOOD;
}
static int m_forward(void *bad, int status)
{
    Value *x[2] = {GOOD, GOOD}, *out[1] = {GOOD};
    return microcrad_mlp_forward(bad, x, out) == status && out[0] == GOOD;
}
static int parameters_with(void *bad, int status, kind k)
{
    Value *out[16];
    int64_t r = k == K_NEURON  ? microcrad_neuron_parameters(bad, out, 16)
                : k == K_LAYER ? microcrad_layer_parameters(bad, out, 16)
                               : microcrad_mlp_parameters(bad, out, 16);
    return r == status;
}
static int n_parameters(void *bad, int s) { return parameters_with(bad, s, K_NEURON); }
static int l_parameters(void *bad, int s) { return parameters_with(bad, s, K_LAYER); }
static int m_parameters(void *bad, int s) { return parameters_with(bad, s, K_MLP); }
STATUS_CALL(n_n_parameters, microcrad_neuron_n_parameters(bad))
STATUS_CALL(l_n_parameters, microcrad_layer_n_parameters(bad))
STATUS_CALL(m_n_parameters, microcrad_mlp_n_parameters(bad))
FREE_CALL(n_free, microcrad_neuron_free(bad))
FREE_CALL(l_free, microcrad_layer_free(bad))
FREE_CALL(m_free, microcrad_mlp_free(bad))

/* Functions that take a scope. */
STATUS_CALL(s_end, microcrad_scope_end(bad))
STATUS_CALL(s_size, microcrad_scope_size(bad))

#define V(fn, name) {K_VALUE, name, fn}
static const call calls[] = {
    V(v_create, "value_create"), V(create_op_with, "value_create_op"), V(v_add_a, "value_add"), V(v_add_b, "value_add"),
    V(v_sub_a, "value_sub"), V(v_sub_b, "value_sub"), V(v_mul_a, "value_mul"),
    V(v_mul_b, "value_mul"), V(v_div_a, "value_div"), V(v_div_b, "value_div"),
    V(v_neg, "value_neg"), V(v_pow_a, "value_pow"), V(v_pow_b, "value_pow"),
    V(v_pow_const, "value_pow_const"), V(v_exp, "value_exp"), V(v_log, "value_log"),
    V(v_relu, "value_relu"), V(v_tanh, "value_tanh"), V(v_sigmoid, "value_sigmoid"),
    V(v_add_scalar, "value_add_scalar"), V(v_sub_scalar, "value_sub_scalar"),
    V(v_mul_scalar, "value_mul_scalar"), V(v_div_scalar, "value_div_scalar"),
    V(v_scalar_add, "value_scalar_add"), V(v_scalar_sub, "value_scalar_sub"),
    V(v_scalar_mul, "value_scalar_mul"), V(v_scalar_div, "value_scalar_div"),
    V(v_scalar_pow, "value_scalar_pow"), V(v_sum, "value_sum"),
    V(v_neuron_b, "value_neuron"), V(v_neuron_w, "value_neuron"), V(v_neuron_x, "value_neuron"),
    V(v_neuron_act_b, "value_neuron_activation"), V(v_neuron_act_w, "value_neuron_activation"),
    V(v_neuron_act_x, "value_neuron_activation"), V(v_prev, "value_prev"),
    V(v_retain, "value_retain"), V(v_release, "value_release"),
    V(v_release_many, "value_release_many"),
    V(v_ref_count, "value_ref_count"), V(v_backward, "value_backward"),
    V(v_zero_grad, "value_zero_grad"), V(v_set_data, "value_set_data"),
    V(v_set_grad, "value_set_grad"), V(v_op, "value_op"), V(v_n_prevs, "value_n_prevs"),
    V(v_data, "value_data"), V(v_grad, "value_grad"), V(v_param, "value_param"),
    V(v_set_data_many, "value_set_data_many"), V(v_get_data_many, "value_get_data_many"),
    V(v_get_grad_many, "value_get_grad_many"), V(dot_with, "value_write_dot"),
    V(tape_create_with, "microcrad_tape_create"), V(v_sgd_create, "microcrad_sgd_create"),
    V(v_adam_create, "microcrad_adam_create"), V(v_neuron_forward, "microcrad_neuron_forward"),
    V(v_layer_forward, "microcrad_layer_forward"), V(v_mlp_forward, "microcrad_mlp_forward"),
    {K_TAPE, "microcrad_tape_forward", t_forward},
    {K_TAPE, "microcrad_tape_backward", t_backward},
    {K_TAPE, "microcrad_tape_zero_grad", t_zero_grad},
    {K_TAPE, "microcrad_tape_size", t_size},
    {K_TAPE, "microcrad_tape_data", t_data},
    {K_TAPE, "microcrad_tape_free", t_free},
    {K_OPTIMIZER, "microcrad_optimizer_step", o_step},
    {K_OPTIMIZER, "microcrad_optimizer_zero_grad", o_zero_grad},
    {K_OPTIMIZER, "microcrad_optimizer_step_zero_grad", o_step_zero_grad},
    {K_OPTIMIZER, "microcrad_optimizer_set_lr", o_set_lr},
    {K_OPTIMIZER, "microcrad_optimizer_lr", o_lr},
    {K_OPTIMIZER, "microcrad_optimizer_free", o_free},
    {K_NEURON, "microcrad_neuron_forward", n_forward},
    {K_NEURON, "microcrad_neuron_parameters", n_parameters},
    {K_NEURON, "microcrad_neuron_n_parameters", n_n_parameters},
    {K_NEURON, "microcrad_neuron_free", n_free},
    {K_LAYER, "microcrad_layer_forward", l_forward},
    {K_LAYER, "microcrad_layer_parameters", l_parameters},
    {K_LAYER, "microcrad_layer_n_parameters", l_n_parameters},
    {K_LAYER, "microcrad_layer_free", l_free},
    {K_MLP, "microcrad_mlp_forward", m_forward},
    {K_MLP, "microcrad_mlp_parameters", m_parameters},
    {K_MLP, "microcrad_mlp_n_parameters", m_n_parameters},
    {K_MLP, "microcrad_mlp_free", m_free},
    {K_SCOPE, "microcrad_scope_end", s_end},
    {K_SCOPE, "microcrad_scope_size", s_size},
};
enum { N_CALLS = sizeof calls / sizeof calls[0] };

/* ------------------------------------------------------------------------------ */
/* The matrix                                                                       */
/* ------------------------------------------------------------------------------ */

/*
 * Every function that takes kind `k`, called with `bad` (described by `what`); each
 * must fail with `status` and change nothing. `bytes`, when not NULL, is memory that
 * must keep its contents: the first `n_bytes` of the object `bad` points into.
 */
static void refuse_all(kind k, const char *what, void *bad, int status, const void *bytes,
                       size_t n_bytes)
{
    unsigned char snapshot[64];
    if (bytes)
        memcpy(snapshot, bytes, n_bytes);
    int64_t live0 = microcrad_live_values();
    for (int i = 0; i < N_CALLS; i++) {
        if (calls[i].takes != k)
            continue;
        /* The *_free functions and value_release ignore NULL, like free(NULL): no error. */
        int ignored = bad == NULL && (strstr(calls[i].name, "_free") != NULL ||
                                      strcmp(calls[i].name, "value_release") == 0 ||
                                      strcmp(calls[i].name, "value_release_many") == 0);
        int expected = ignored ? MICROCRAD_OK : status;
        /* The scope functions find scopes by address: whatever is not a scope open on
         * this thread is an argument error to them, not a foreign or freed object. */
        if (k == K_SCOPE && bad != NULL)
            expected = MICROCRAD_ERR_ARGUMENT;
        microcrad_clear_error();
        if (!CHECK(calls[i].fails(bad, expected)))
            fprintf(stderr, "    %s given %s did not fail as documented\n", calls[i].name, what);
        if (!CHECK_INT(microcrad_last_status(), expected))
            fprintf(stderr, "    (%s given %s)\n", calls[i].name, what);
        if (!ignored && !CHECK_CONTAINS(microcrad_last_error(), calls[i].name))
            fprintf(stderr, "    (%s given %s)\n", calls[i].name, what);
        CHECK_INT(microcrad_live_values(), live0);
        CHECK_INT(value_ref_count(GOOD), 1);
        CHECK_SAME(GOOD->data, 2.5);
        CHECK_SAME(GOOD->grad, -1.5);
        if (bytes && !CHECK(memcmp(snapshot, bytes, n_bytes) == 0))
            fprintf(stderr, "    %s changed the bytes of %s\n", calls[i].name, what);
    }
}

/* The bytes of an object that refuse_all compares: up to and including the canary,
 * which every kind has (what follows may be padding, which is never written). */
#define SNAPSHOT_BYTES (offsetof(Value, magic) + sizeof(uint32_t))

/*
 * A Value crafted to mimic `target`: each field a caller can set (data, grad, and the
 * exponent of a constant power, stored in `param`) holds the bytes `target` has at the
 * same offset, or, with `use_canary`, the target's canary in both halves. A check that
 * read its canary from any of those fields would take the Value for the target.
 */
static Value *mimic(const void *target, int use_canary)
{
    unsigned char fields[sizeof(Value)];
    memcpy(fields, target, sizeof fields);
    if (use_canary) {
        uint32_t canary = canary_of(target);
        for (size_t i = 0; i + sizeof canary <= sizeof fields; i += sizeof canary)
            memcpy(fields + i, &canary, sizeof canary);
    }
    double data, grad, param;
    memcpy(&data, fields + offsetof(Value, data), sizeof data);
    memcpy(&grad, fields + offsetof(Value, grad), sizeof grad);
    memcpy(&param, fields + offsetof(Value, param), sizeof param);
    Value *base = value_create_leaf(1.0);
    Value *v = value_pow_const(base, param);
    value_release(base);
    if (v) {
        v->data = data; /* a caller may write any node's fields through the struct */
        v->grad = grad;
    }
    return v;
}

/* An optimizer crafted to mimic a Value: every setting holds a Value's canary in both
 * halves (a finite, positive double). */
static microcrad_optimizer *optimizer_mimicking_a_value(void)
{
    uint64_t bits = ((uint64_t)MICROCRAD_MAGIC_LIVE << 32) | MICROCRAD_MAGIC_LIVE;
    double x;
    memcpy(&x, &bits, sizeof x);
    Value *p = value_create_leaf(x);
    microcrad_optimizer *opt = microcrad_sgd_create(1, &p, x, x, x);
    value_release(p);
    return opt;
}

/* A freed object of each kind, or NULL where reading one is the tool's finding. */
static void *freed[K_COUNT];

static int tools_report_freed_memory(void)
{
    /* TSan too reports a read of freed malloc memory (the handles are malloc blocks). */
    unsigned tools = MICROCRAD_BUILD_ASAN | MICROCRAD_BUILD_VALGRIND | MICROCRAD_BUILD_TSAN;
    return (microcrad_build_features() & tools) != 0;
}

static void make_freed_objects(void)
{
    if (tools_report_freed_memory())
        return;
    uint64_t rng = 11;
    const int32_t sizes[1] = {1};
    Value *leaf = value_create_leaf(3.0);
    Value *root = value_add(leaf, leaf);
    freed[K_TAPE] = microcrad_tape_create(root);
    freed[K_OPTIMIZER] = microcrad_adam_create(1, &leaf, 0.1, 0.9, 0.999, 1e-8, 0.0);
    freed[K_NEURON] = microcrad_neuron_create(3, MICROCRAD_ACT_RELU, &rng);
    freed[K_LAYER] = microcrad_layer_create(1, 2, MICROCRAD_ACT_TANH, &rng);
    freed[K_MLP] = microcrad_mlp_create(1, 1, sizes, MICROCRAD_ACT_RELU, MICROCRAD_ACT_LINEAR,
                                        &rng);
    freed[K_SCOPE] = microcrad_scope_begin(); /* ended below, with nothing in it */
    for (int k = K_COUNT; k-- > K_TAPE;)
        free_object((kind)k, freed[k]);
    value_release(root);
    value_release(leaf); /* the last reference: freed */
    freed[K_VALUE] = leaf;
}

static void test_matrix(void)
{
    char what[96];
    for (int k = 0; k < K_COUNT; k++) {
        printf("functions that take a pointer of kind %s\n", kind_name[k]);
        /* Freed just now: the calls below allocate nothing before the freed ones are
         * used (the mimics, made after, would take their memory). */
        make_freed_objects();
        refuse_all((kind)k, "NULL", NULL, MICROCRAD_ERR_NULL, NULL, 0);
        for (int j = 0; j < K_COUNT; j++) {
            void *object = ctx.live[j];
            if (j != k) {
                snprintf(what, sizeof what, "a live %s", kind_name[j]);
                refuse_all((kind)k, what, object, MICROCRAD_ERR_FOREIGN, object, SNAPSHOT_BYTES);
            }
            snprintf(what, sizeof what, "a live %s, misaligned", kind_name[j]);
            refuse_all((kind)k, what, (unsigned char *)object + 1, MICROCRAD_ERR_FOREIGN, object,
                       SNAPSHOT_BYTES);
            if (freed[j]) {
                snprintf(what, sizeof what, "a freed %s", kind_name[j]);
                refuse_all((kind)k, what, freed[j],
                           j == k ? MICROCRAD_ERR_RELEASED : MICROCRAD_ERR_FOREIGN, NULL, 0);
            }
        }
        if (k == K_VALUE) {
            microcrad_optimizer *opt = optimizer_mimicking_a_value();
            CHECK(opt != NULL);
            refuse_all((kind)k, "an optimizer mimicking a Value", opt, MICROCRAD_ERR_FOREIGN, opt,
                       SNAPSHOT_BYTES);
            microcrad_optimizer_free(opt);
            continue;
        }
        for (int use_canary = 0; use_canary <= 1; use_canary++) {
            Value *fake = mimic(ctx.live[k], use_canary);
            CHECK(fake != NULL);
            snprintf(what, sizeof what, "a Value mimicking a %s (%s)", kind_name[k],
                     use_canary ? "its canary" : "its bytes");
            refuse_all((kind)k, what, fake, MICROCRAD_ERR_FOREIGN, fake, SNAPSHOT_BYTES);
            value_release(fake);
        }
    }
    if (!freed[K_VALUE])
        printf("freed objects: skipped (the sanitizer or Valgrind build reports them)\n");
}

/* ------------------------------------------------------------------------------ */
/* The canaries, and each defect the one check fixed                                */
/* ------------------------------------------------------------------------------ */

static int bits_apart(uint32_t a, uint32_t b)
{
    int n = 0;
    for (uint32_t x = a ^ b; x; x &= x - 1)
        n++;
    return n;
}

/* LIVE and DEAD of every kind: twelve values, any two at least three bits apart. */
static void test_canaries_are_far_apart(void)
{
    printf("canaries\n");
    make_freed_objects();
    uint32_t values[2 * K_COUNT];
    for (int k = 0; k < K_COUNT; k++) {
        values[2 * k] = canary_of(ctx.live[k]);
        values[2 * k + 1] = ~values[2 * k]; /* DEAD: every bit of LIVE flipped */
        if (freed[k]) /* and a freed object really reads DEAD */
            CHECK_INT(canary_of(freed[k]), values[2 * k + 1]);
    }
    CHECK_INT(values[0], MICROCRAD_MAGIC_LIVE);
    for (int i = 0; i < 2 * K_COUNT; i++)
        for (int j = 0; j < i; j++)
            if (!CHECK(bits_apart(values[i], values[j]) >= 3))
                fprintf(stderr, "    0x%08x and 0x%08x\n", (unsigned)values[i],
                        (unsigned)values[j]);
}

/* A freed tape reads as freed: its canary is clear of malloc's free-list links. */
static void test_freed_tape_is_released(void)
{
    make_freed_objects();
    if (!freed[K_TAPE])
        return;
    printf("a freed tape\n");
    microcrad_clear_error();
    CHECK_INT(microcrad_tape_size(freed[K_TAPE]), MICROCRAD_ERR_RELEASED);
    CHECK_CONTAINS(microcrad_last_error(), "freed tape");
    CHECK(isnan(microcrad_tape_data(freed[K_TAPE])));
    CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_RELEASED);
}

/* A leaf whose data holds a tape's first bytes (or its canary) is a Value, not a tape. */
static void test_leaf_is_not_a_tape(void)
{
    printf("a leaf is not a tape\n");
    for (int use_canary = 0; use_canary <= 1; use_canary++) {
        Value *fake = mimic(ctx.live[K_TAPE], use_canary);
        microcrad_clear_error();
        CHECK_INT(microcrad_tape_size((microcrad_tape *)(void *)fake), MICROCRAD_ERR_FOREIGN);
        CHECK_CONTAINS(microcrad_last_error(), "it is a Value");
        value_release(fake);
    }
}

/* A constant power whose exponent holds an optimizer's bytes is not an optimizer. */
static void test_pow_const_is_not_an_optimizer(void)
{
    printf("a constant power is not an optimizer\n");
    for (int use_canary = 0; use_canary <= 1; use_canary++) {
        Value *fake = mimic(ctx.live[K_OPTIMIZER], use_canary);
        CHECK_INT(value_op(fake), MICROCRAD_OP_POW_CONST);
        microcrad_optimizer *opt = (microcrad_optimizer *)(void *)fake;
        microcrad_clear_error();
        CHECK(isnan(microcrad_optimizer_lr(opt)));
        CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_FOREIGN);
        CHECK_INT(microcrad_optimizer_set_lr(opt, 0.5), MICROCRAD_ERR_FOREIGN);
        value_release(fake);
    }
}

/* A misaligned pointer is refused before anything is read through it, even when the
 * bytes where its canary would be read are a live canary. */
static void test_misaligned_is_refused_unread(void)
{
    printf("misaligned pointers\n");
    _Alignas(Value) unsigned char buffer[2 * sizeof(Value)];
    memset(buffer, 0, sizeof buffer);
    for (size_t shift = 1; shift < _Alignof(Value); shift++) {
        unsigned char *p = buffer + shift;
        /* Not scopes: the functions that take one never read the pointer. */
        for (int k = 0; k < K_SCOPE; k++) {
            uint32_t canary = canary_of(ctx.live[k]);
            memcpy(p + offsetof(Value, magic), &canary, sizeof canary);
            microcrad_clear_error();
            int status = k == K_VALUE    ? value_op((Value *)(void *)p)
                         : k == K_TAPE   ? (int)microcrad_tape_size((microcrad_tape *)(void *)p)
                         : k == K_OPTIMIZER
                             ? microcrad_optimizer_zero_grad((microcrad_optimizer *)(void *)p)
                         : k == K_NEURON
                             ? (int)microcrad_neuron_n_parameters((microcrad_neuron *)(void *)p)
                         : k == K_LAYER
                             ? (int)microcrad_layer_n_parameters((microcrad_layer *)(void *)p)
                             : (int)microcrad_mlp_n_parameters((microcrad_mlp *)(void *)p);
            CHECK_INT(status, MICROCRAD_ERR_FOREIGN);
            CHECK_CONTAINS(microcrad_last_error(), "misaligned");
        }
        CHECK(isnan(value_data((Value *)(void *)p)));
    }
}

/* Every kind refuses every other kind by name: the message says what was given. */
static void test_messages_name_the_kind_given(void)
{
    printf("messages\n");
    make_freed_objects();
    microcrad_clear_error();
    CHECK_INT(microcrad_tape_forward(ctx.live[K_OPTIMIZER]), MICROCRAD_ERR_FOREIGN);
    CHECK_CONTAINS(microcrad_last_error(), "microcrad_tape_forward: argument 1 is not a "
                                           "microcrad tape: it is an optimizer");
    CHECK_INT(value_release(ctx.live[K_MLP]), MICROCRAD_ERR_FOREIGN);
    CHECK_CONTAINS(microcrad_last_error(), "not a microcrad Value: it is an MLP");
    CHECK_INT(microcrad_layer_n_parameters(ctx.live[K_SCOPE]), MICROCRAD_ERR_FOREIGN);
    CHECK_CONTAINS(microcrad_last_error(), "not a microcrad layer: it is a scope");
    if (freed[K_SCOPE]) {
        CHECK_INT(value_op(freed[K_SCOPE]), MICROCRAD_ERR_FOREIGN);
        CHECK_CONTAINS(microcrad_last_error(), "it is a freed scope");
    }
    if (freed[K_LAYER]) {
        CHECK_INT(microcrad_mlp_n_parameters(freed[K_LAYER]), MICROCRAD_ERR_FOREIGN);
        CHECK_CONTAINS(microcrad_last_error(), "it is a freed layer");
    }
}

int main(void)
{
    microcrad_set_quiet(1);
    int64_t live_at_start = microcrad_live_values();
    context_create();

    test_canaries_are_far_apart();
    test_freed_tape_is_released();
    test_leaf_is_not_a_tape();
    test_pow_const_is_not_an_optimizer();
    test_misaligned_is_refused_unread();
    test_messages_name_the_kind_given();
    test_matrix();

    /* Every live object survived being passed where it did not belong. */
    CHECK_INT(microcrad_tape_size(ctx.live[K_TAPE]), 2);
    CHECK_INT(microcrad_tape_forward(ctx.live[K_TAPE]), MICROCRAD_OK);
    CHECK_SAME(microcrad_optimizer_lr(ctx.live[K_OPTIMIZER]), 0.1);
    CHECK_INT(microcrad_neuron_n_parameters(ctx.live[K_NEURON]), 3);
    CHECK_INT(microcrad_layer_n_parameters(ctx.live[K_LAYER]), 6);
    CHECK_INT(microcrad_mlp_n_parameters(ctx.live[K_MLP]), 13);
    context_free();
    CHECK_INT(microcrad_live_values(), live_at_start);
    return check_summary();
}
