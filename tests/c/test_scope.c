/*
 * test_scope.c - scopes (autorelease pools): microcrad_scope_begin / microcrad_scope_end.
 *
 * Every function that returns a new reference hands it to the innermost scope open on
 * the calling thread; ending the scope gives them all back, and nodes referenced from
 * elsewhere survive. Ending anything but the innermost scope of the calling thread is
 * an error that changes nothing. A training step needs no release call at all.
 *
 * tests/test_scope_coverage.py checks that the table in test_every_result_goes_to_the_scope
 * names every function of the header that returns a new reference.
 */
#include "check.h"

#include <microcrad.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------ */
/* Every function that returns a new reference                                       */
/* ------------------------------------------------------------------------------ */

/* What the calls are given: leaves and networks made outside any scope. */
typedef struct inputs {
    Value *a, *b, *w[2], *x[2];
    microcrad_neuron *neuron;
    microcrad_layer *layer;
    microcrad_mlp *mlp;
} inputs;

enum { LAYER_OUT = 3, MLP_OUT = 2 };

/* Makes one call; writes its results to out[] and returns how many there are. */
typedef int (*call_fn)(const inputs *in, Value **out);

#define ONE(name, expr)                                                                 \
    static int call_##name(const inputs *in, Value **out)                               \
    {                                                                                   \
        (void)in;                                                                       \
        out[0] = (expr);                                                                \
        return 1;                                                                       \
    }

ONE(value_create, value_create(1.0, 2, (Value **)in->w))
ONE(value_create_op, value_create_op(MICROCRAD_OP_POW_CONST, 3.0, 1, &in->a))
ONE(value_create_leaf, value_create_leaf(2.0))
ONE(value_add, value_add(in->a, in->b))
ONE(value_sub, value_sub(in->a, in->b))
ONE(value_mul, value_mul(in->a, in->b))
ONE(value_div, value_div(in->a, in->b))
ONE(value_neg, value_neg(in->a))
ONE(value_pow, value_pow(in->a, in->b))
ONE(value_pow_const, value_pow_const(in->a, 3.0))
ONE(value_exp, value_exp(in->a))
ONE(value_log, value_log(in->a))
ONE(value_relu, value_relu(in->a))
ONE(value_tanh, value_tanh(in->a))
ONE(value_sigmoid, value_sigmoid(in->a))
ONE(value_add_scalar, value_add_scalar(in->a, 2.0))
ONE(value_sub_scalar, value_sub_scalar(in->a, 2.0))
ONE(value_mul_scalar, value_mul_scalar(in->a, 2.0))
ONE(value_div_scalar, value_div_scalar(in->a, 2.0))
ONE(value_scalar_add, value_scalar_add(2.0, in->a))
ONE(value_scalar_sub, value_scalar_sub(2.0, in->a))
ONE(value_scalar_mul, value_scalar_mul(2.0, in->a))
ONE(value_scalar_div, value_scalar_div(2.0, in->a))
ONE(value_scalar_pow, value_scalar_pow(2.0, in->a))
ONE(value_sum, value_sum(2, in->x))
ONE(value_neuron, value_neuron(2, in->w, in->x, in->b))
ONE(value_neuron_activation, value_neuron_activation(2, in->w, in->x, in->b, MICROCRAD_ACT_TANH))
ONE(microcrad_neuron_forward, microcrad_neuron_forward(in->neuron, in->x))

static int call_microcrad_layer_forward(const inputs *in, Value **out)
{
    return microcrad_layer_forward(in->layer, in->x, out) == MICROCRAD_OK ? LAYER_OUT : 0;
}

static int call_microcrad_mlp_forward(const inputs *in, Value **out)
{
    return microcrad_mlp_forward(in->mlp, in->x, out) == MICROCRAD_OK ? MLP_OUT : 0;
}

#define CALL(name) {#name, call_##name}
static const struct {
    const char *name;
    call_fn call;
} calls[] = {
    CALL(value_create), CALL(value_create_op), CALL(value_create_leaf), CALL(value_add), CALL(value_sub),
    CALL(value_mul), CALL(value_div), CALL(value_neg), CALL(value_pow), CALL(value_pow_const),
    CALL(value_exp), CALL(value_log), CALL(value_relu), CALL(value_tanh), CALL(value_sigmoid),
    CALL(value_add_scalar), CALL(value_sub_scalar), CALL(value_mul_scalar),
    CALL(value_div_scalar), CALL(value_scalar_add), CALL(value_scalar_sub),
    CALL(value_scalar_mul), CALL(value_scalar_div), CALL(value_scalar_pow), CALL(value_sum),
    CALL(value_neuron), CALL(value_neuron_activation), CALL(microcrad_neuron_forward),
    CALL(microcrad_layer_forward), CALL(microcrad_mlp_forward),
};

static inputs make_inputs(void)
{
    inputs in;
    in.a = value_create_leaf(0.75);
    in.b = value_create_leaf(-1.5);
    for (int i = 0; i < 2; i++) {
        in.w[i] = value_create_leaf(0.5 + i);
        in.x[i] = value_create_leaf(-0.25 * (i + 1));
    }
    uint64_t rng = 42;
    const int32_t sizes[2] = {4, MLP_OUT};
    in.neuron = microcrad_neuron_create(2, MICROCRAD_ACT_RELU, &rng);
    in.layer = microcrad_layer_create(2, LAYER_OUT, MICROCRAD_ACT_TANH, &rng);
    in.mlp = microcrad_mlp_create(2, 2, sizes, MICROCRAD_ACT_RELU, MICROCRAD_ACT_LINEAR, &rng);
    CHECK(in.a && in.b && in.w[1] && in.x[1] && in.neuron && in.layer && in.mlp);
    return in;
}

static void free_inputs(inputs *in)
{
    value_release(in->a);
    value_release(in->b);
    for (int i = 0; i < 2; i++) {
        value_release(in->w[i]);
        value_release(in->x[i]);
    }
    microcrad_neuron_free(in->neuron);
    microcrad_layer_free(in->layer);
    microcrad_mlp_free(in->mlp);
}

/* The public constructor of op `op` (microcrad_op_constructor), found by name in the
 * loaded library, or NULL. */
static void *op_constructor(int op)
{
    static void *self; /* the program and the libraries it loaded, microcrad's included */
    if (!self)
        self = dlopen(NULL, RTLD_LAZY);
    const char *name = microcrad_op_constructor(op);
    return self && name ? dlsym(self, name) : NULL;
}

/* Every op of fixed arity, built by its own constructor (found through the op table,
 * so a new op is covered without editing this file): the result goes to the scope as
 * its only reference, and ending the scope frees it. tests/test_scope_coverage.py
 * counts these constructors as covered. */
static void test_every_op_constructor_goes_to_the_scope(void)
{
    printf("every op's own constructor hands its result to the scope\n");
    Value *a = value_create_leaf(0.75), *b = value_create_leaf(1.5);
    int64_t live0 = microcrad_live_values();
    int covered = 0;
    for (int op = 0; op < microcrad_op_count(); op++) {
        int arity = microcrad_op_arity(op), takes_param = microcrad_op_takes_param(op);
        if (arity < 1 || arity > 2)
            continue; /* leaf and n-ary constructors: in the calls table above */
        void *symbol = op_constructor(op);
        if (!CHECK(symbol != NULL)) {
            fprintf(stderr, "    no function %s\n", microcrad_op_constructor(op));
            continue;
        }
        microcrad_scope *scope = microcrad_scope_begin();
        Value *v = NULL;
        if (takes_param) {
            Value *(*make)(Value *, double);
            memcpy(&make, &symbol, sizeof make);
            v = make(a, 2.0);
        } else if (arity == 1) {
            Value *(*make)(Value *);
            memcpy(&make, &symbol, sizeof make);
            v = make(a);
        } else {
            Value *(*make)(Value *, Value *);
            memcpy(&make, &symbol, sizeof make);
            v = make(a, b);
        }
        if (CHECK(v != NULL)) {
            CHECK_INT(value_op(v), op);
            CHECK_INT(value_ref_count(v), 1);
            CHECK_INT(microcrad_scope_size(scope), 1);
        }
        CHECK_INT(microcrad_scope_end(scope), MICROCRAD_OK);
        CHECK_INT(microcrad_live_values(), live0);
        covered++;
    }
    CHECK(covered >= 10); /* add .. sigmoid at least */
    value_release(a);
    value_release(b);
}

/* Each result belongs to the scope (its only reference), and ending the scope frees
 * exactly what the call built; the inputs keep their single reference. */
static void test_every_result_goes_to_the_scope(void)
{
    printf("every result goes to the innermost scope\n");
    inputs in = make_inputs();
    int64_t live0 = microcrad_live_values();
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        microcrad_scope *scope = microcrad_scope_begin();
        if (!CHECK(scope != NULL))
            return;
        Value *out[4] = {NULL, NULL, NULL, NULL};
        int n = calls[i].call(&in, out);
        if (!CHECK(n >= 1))
            fprintf(stderr, "    %s failed: %s\n", calls[i].name, microcrad_last_error());
        if (!CHECK_INT(microcrad_scope_size(scope), n))
            fprintf(stderr, "    %s: the scope holds the wrong number of references\n",
                    calls[i].name);
        for (int j = 0; j < n; j++)
            if (!CHECK_INT(value_ref_count(out[j]), 1)) /* the scope's, and no other */
                fprintf(stderr, "    %s: result %d\n", calls[i].name, j);
        CHECK(microcrad_live_values() > live0);
        CHECK_INT(microcrad_scope_end(scope), MICROCRAD_OK);
        if (!CHECK_INT(microcrad_live_values(), live0))
            fprintf(stderr, "    %s left nodes behind after its scope ended\n", calls[i].name);
        CHECK_INT(value_ref_count(in.a), 1);
        CHECK_INT(value_ref_count(in.x[0]), 1);
    }

    /* Without a scope the same calls hand the caller its reference, as before. */
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        Value *out[4] = {NULL, NULL, NULL, NULL};
        int n = calls[i].call(&in, out);
        for (int j = 0; j < n; j++)
            CHECK_INT(value_release(out[j]), MICROCRAD_OK);
        CHECK_INT(microcrad_live_values(), live0);
    }
    free_inputs(&in);
}

/* ------------------------------------------------------------------------------ */
/* Lifetimes                                                                        */
/* ------------------------------------------------------------------------------ */

static void test_survivors_and_retained_nodes(void)
{
    printf("nodes referenced elsewhere survive; value_retain keeps a result\n");
    int64_t live0 = microcrad_live_values();
    Value *w = value_create_leaf(3.0); /* outside: the caller's */

    microcrad_scope *scope = microcrad_scope_begin();
    Value *x = value_create_leaf(2.0);
    Value *wx = value_mul(w, x);
    Value *kept = value_add_scalar(wx, 1.0);
    CHECK_INT(value_retain(kept), MICROCRAD_OK);
    Value *dropped = value_tanh(wx);
    CHECK(dropped != NULL);
    CHECK_INT(microcrad_scope_size(scope), 4);
    CHECK_INT(value_ref_count(w), 2); /* the caller's and wx's */
    CHECK_INT(microcrad_scope_end(scope), MICROCRAD_OK);

    /* kept survives with the reference the program took, and keeps wx and x alive;
     * dropped and its leaf are gone. */
    CHECK_INT(microcrad_live_values(), live0 + 5); /* w, x, wx, kept's leaf, kept */
    CHECK_INT(value_ref_count(kept), 1);
    CHECK_SAME(value_data(kept), 7.0);
    CHECK_INT(value_backward(kept), MICROCRAD_OK);
    CHECK_SAME(w->grad, 2.0);
    CHECK_INT(value_release(kept), MICROCRAD_OK);
    CHECK_INT(value_ref_count(w), 1);
    CHECK_INT(value_release(w), MICROCRAD_OK);
    CHECK_INT(microcrad_live_values(), live0);

    /* An empty scope, and value_release(NULL) inside one. */
    scope = microcrad_scope_begin();
    CHECK_INT(microcrad_scope_size(scope), 0);
    CHECK_INT(value_release(NULL), MICROCRAD_OK);
    CHECK_INT(microcrad_scope_end(scope), MICROCRAD_OK);
}

static void test_nesting(void)
{
    printf("scopes nest\n");
    int64_t live0 = microcrad_live_values();
    microcrad_scope *outer = microcrad_scope_begin();
    Value *a = value_create_leaf(1.0);
    microcrad_scope *inner = microcrad_scope_begin();
    Value *b = value_add_scalar(a, 1.0); /* inner's; holds a */
    Value *c = value_create_leaf(5.0);
    CHECK_INT(microcrad_scope_size(outer), 1);
    CHECK_INT(microcrad_scope_size(inner), 2);
    CHECK_SAME(value_data(b), 2.0);
    (void)c;

    /* Not the innermost: refused, and nothing changes. */
    microcrad_clear_error();
    CHECK_INT(microcrad_scope_end(outer), MICROCRAD_ERR_ARGUMENT);
    CHECK_CONTAINS(microcrad_last_error(), "innermost");
    CHECK_INT(microcrad_scope_size(outer), 1);
    CHECK_INT(microcrad_scope_size(inner), 2);
    CHECK_INT(microcrad_live_values(), live0 + 4);
    Value *d = value_create_leaf(6.0); /* still goes to inner */
    CHECK_INT(microcrad_scope_size(inner), 3);
    (void)d;

    CHECK_INT(microcrad_scope_end(inner), MICROCRAD_OK);
    CHECK_INT(microcrad_live_values(), live0 + 1); /* a, in outer */
    CHECK_INT(value_ref_count(a), 1);
    Value *e = value_neg(a); /* back to outer */
    CHECK(e != NULL);
    CHECK_INT(microcrad_scope_size(outer), 2);

    /* Ending twice: refused without reading the freed scope (ASan would see it). */
    microcrad_clear_error();
    CHECK_INT(microcrad_scope_end(inner), MICROCRAD_ERR_ARGUMENT);
    CHECK_CONTAINS(microcrad_last_error(), "not a scope open on this thread");
    CHECK(microcrad_scope_size(inner) < 0);
    CHECK_INT(microcrad_scope_size(outer), 2);
    CHECK_INT(microcrad_scope_end(NULL), MICROCRAD_ERR_NULL);
    CHECK_INT(microcrad_scope_end(outer), MICROCRAD_OK);
    CHECK_INT(microcrad_scope_end(outer), MICROCRAD_ERR_ARGUMENT);
    CHECK_INT(microcrad_live_values(), live0);

    /* With no scope open, results are the caller's again. */
    Value *f = value_create_leaf(1.0);
    CHECK_INT(value_ref_count(f), 1);
    CHECK_INT(value_release(f), MICROCRAD_OK);
    CHECK_INT(microcrad_live_values(), live0);
}

/* ------------------------------------------------------------------------------ */
/* Threads                                                                          */
/* ------------------------------------------------------------------------------ */

typedef struct end_attempt {
    microcrad_scope *scope;
    int status;
    int64_t size;
    int results_in_own_scope;
} end_attempt;

/* On another thread: the main thread's scope cannot be ended or read from here, and
 * results made here do not go to it. */
static void *end_from_another_thread(void *arg)
{
    end_attempt *attempt = arg;
    attempt->status = microcrad_scope_end(attempt->scope);
    attempt->size = microcrad_scope_size(attempt->scope);
    microcrad_scope *own = microcrad_scope_begin();
    Value *v = value_create_leaf(1.0);
    attempt->results_in_own_scope = v && microcrad_scope_size(own) == 1;
    microcrad_scope_end(own);
    return NULL;
}

static void test_another_thread_cannot_end_it(void)
{
    printf("a scope belongs to its thread\n");
    int64_t live0 = microcrad_live_values();
    microcrad_scope *scope = microcrad_scope_begin();
    Value *v = value_create_leaf(4.0);
    end_attempt attempt = {.scope = scope};
    pthread_t thread;
    if (!CHECK(pthread_create(&thread, NULL, end_from_another_thread, &attempt) == 0))
        return;
    pthread_join(thread, NULL);
    CHECK_INT(attempt.status, MICROCRAD_ERR_ARGUMENT);
    CHECK(attempt.size < 0);
    CHECK(attempt.results_in_own_scope);
    /* Nothing changed here. */
    CHECK_INT(microcrad_scope_size(scope), 1);
    CHECK_SAME(value_data(v), 4.0);
    CHECK_INT(microcrad_live_values(), live0 + 1);
    CHECK_INT(microcrad_scope_end(scope), MICROCRAD_OK);
    CHECK_INT(microcrad_live_values(), live0);
}

enum { THREADS = 4, ROUNDS = 50, OPS = 200 };

typedef struct worker_job {
    Value *const *shared; /* leaves made on the main thread, used by every worker */
    int failures;
} worker_job;

/* Each worker opens nested scopes in a loop and builds on the shared leaves, whose
 * counts every thread changes at once (ThreadSanitizer watches these). */
static void *scoped_worker(void *arg)
{
    worker_job *job = arg;
    for (int round = 0; round < ROUNDS; round++) {
        microcrad_scope *outer = microcrad_scope_begin();
        Value *acc = value_mul(job->shared[0], job->shared[1]);
        microcrad_scope *inner = microcrad_scope_begin();
        for (int i = 0; i < OPS; i++)
            acc = value_add(acc, job->shared[i % 2]);
        job->failures += value_retain(acc) != MICROCRAD_OK; /* outlive the inner scope */
        job->failures += microcrad_scope_end(inner) != MICROCRAD_OK;
        job->failures += microcrad_scope_size(outer) != 1;
        job->failures += !acc || value_ref_count(acc) != 1;
        job->failures += value_release(acc) != MICROCRAD_OK;
        job->failures += microcrad_scope_end(outer) != MICROCRAD_OK;
    }
    return NULL;
}

static void test_threads(void)
{
    printf("%d threads, each with its own nested scopes over shared leaves\n", THREADS);
    int64_t live0 = microcrad_live_values();
    Value *shared[2] = {value_create_leaf(0.5), value_create_leaf(-2.0)};
    pthread_t threads[THREADS];
    worker_job jobs[THREADS];
    int started = 0;
    for (; started < THREADS; started++) {
        jobs[started] = (worker_job){.shared = shared};
        if (pthread_create(&threads[started], NULL, scoped_worker, &jobs[started]) != 0)
            break;
    }
    CHECK_INT(started, THREADS);
    for (int i = 0; i < started; i++) {
        pthread_join(threads[i], NULL);
        CHECK_INT(jobs[i].failures, 0);
    }
    CHECK_INT(value_ref_count(shared[0]), 1);
    CHECK_INT(value_ref_count(shared[1]), 1);
    value_release(shared[0]);
    value_release(shared[1]);
    CHECK_INT(microcrad_live_values(), live0);
}

/* ------------------------------------------------------------------------------ */
/* Many nodes, and a training step                                                 */
/* ------------------------------------------------------------------------------ */

/* A million results in one scope, a chain where each holds the one before: recorded
 * in chunks, released newest first without recursion. */
static void test_a_million_nodes(void)
{
    enum { N = 1000000 };
    printf("%d nodes in one scope\n", N);
    int64_t live0 = microcrad_live_values();
    microcrad_scope *scope = microcrad_scope_begin();
    Value *c = value_create_leaf(1.0);
    Value *x = value_create_leaf(0.0);
    for (int i = 1; i < N - 1; i++)
        x = value_add(x, c);
    CHECK(x != NULL);
    CHECK_SAME(value_data(x), (double)(N - 2));
    CHECK_INT(microcrad_scope_size(scope), N);
    CHECK_INT(microcrad_live_values(), live0 + N);
    CHECK_INT(value_backward(x), MICROCRAD_OK);
    CHECK_SAME(c->grad, (double)(N - 2));
    CHECK_INT(microcrad_scope_end(scope), MICROCRAD_OK);
    CHECK_INT(microcrad_live_values(), live0);
}

/*
 * The training step of the issue, in C with no release call: the parameters live
 * outside the scopes; each step opens a scope, builds the loss from leaves and ops,
 * back-propagates, updates the parameters and ends the scope. The live count is back
 * to the parameters after every step.
 */
static void test_training_step_without_releases(void)
{
    printf("training steps without a release call\n");
    int64_t live0 = microcrad_live_values();
    uint64_t rng = 7;
    const int32_t sizes[2] = {8, 1};
    microcrad_mlp *model =
        microcrad_mlp_create(2, 2, sizes, MICROCRAD_ACT_TANH, MICROCRAD_ACT_LINEAR, &rng);
    Value *params[64];
    int64_t n_params = microcrad_mlp_parameters(model, params, 64);
    CHECK_INT(n_params, 8 * 3 + 9);
    microcrad_optimizer *sgd = microcrad_sgd_create((int32_t)n_params, params, 0.1, 0.0, 0.0);
    int64_t with_params = microcrad_live_values();
    CHECK_INT(with_params, live0 + n_params);

    static const double xs[4][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}};
    static const double ys[4] = {-1, 1, 1, -1};
    double first = 0.0, last = 0.0;
    for (int step = 0; step < 30; step++) {
        microcrad_scope *scope = microcrad_scope_begin();
        Value *terms[4];
        for (int i = 0; i < 4; i++) {
            Value *x[2] = {value_create_leaf(xs[i][0]), value_create_leaf(xs[i][1])};
            Value *score;
            CHECK_INT(microcrad_mlp_forward(model, x, &score), MICROCRAD_OK);
            terms[i] = value_pow_const(value_sub_scalar(score, ys[i]), 2.0);
        }
        Value *loss = value_mul_scalar(value_sum(4, terms), 0.25);
        CHECK(loss != NULL);
        CHECK_INT(microcrad_optimizer_zero_grad(sgd), MICROCRAD_OK);
        CHECK_INT(value_backward(loss), MICROCRAD_OK);
        CHECK_INT(microcrad_optimizer_step(sgd), MICROCRAD_OK);
        if (step == 0)
            first = value_data(loss);
        last = value_data(loss);
        CHECK_INT(microcrad_scope_end(scope), MICROCRAD_OK);
        CHECK_INT(microcrad_live_values(), with_params);
    }
    CHECK(last < first);
    microcrad_optimizer_free(sgd);
    microcrad_mlp_free(model);
    CHECK_INT(microcrad_live_values(), live0);
}

/* A program that releases a result its scope owns (a double release): in a build with
 * the node pool the canary catches it when the scope ends, which reports it. (In
 * sanitizer and Valgrind builds the tools report it instead: lab 2.) */
static void test_released_result_is_reported(void)
{
    if (microcrad_build_features() & MICROCRAD_BUILD_VALGRIND)
        return; /* plain malloc: the second release would read freed memory */
    printf("a scope's result released by the program is reported\n");
    int64_t live0 = microcrad_live_values();
    int quiet = microcrad_set_quiet(1);
    microcrad_scope *scope = microcrad_scope_begin();
    Value *keep = value_create_leaf(2.0);
    Value *v = value_create_leaf(1.0);
    CHECK_INT(value_release(v), MICROCRAD_OK); /* the bug; nothing reuses v's memory */
    (void)keep;
    CHECK_INT(microcrad_scope_end(scope), MICROCRAD_ERR_RELEASED);
    CHECK_CONTAINS(microcrad_last_error(), "already released");
    CHECK_INT(microcrad_live_values(), live0); /* the rest was released all the same */
    microcrad_set_quiet(quiet);
}

/*
 * A call that fails on its arguments takes no room in the scope: it allocates nothing,
 * so even with the next allocation set to fail it reports its own error, not
 * MICROCRAD_ERR_NOMEM. (The ops once reserved their scope slot first: in a fresh
 * scope value_add(a, NULL) allocated a chunk, and failed as out of memory when that
 * allocation failed.)
 */
static Value *bad_args_a;
static microcrad_layer *bad_args_layer;
static microcrad_mlp *bad_args_mlp;

/* A call's status: OK for a node, the recorded status for NULL. */
#define STATUS_OF(call) ((call) ? MICROCRAD_OK : microcrad_last_status())
static int bad_add(void) { return STATUS_OF(value_add(bad_args_a, NULL)); }
static int bad_mul(void) { return STATUS_OF(value_mul(NULL, bad_args_a)); }
static int bad_relu(void) { return STATUS_OF(value_relu(NULL)); }
static int bad_pow(void) { return STATUS_OF(value_pow(bad_args_a, NULL)); }
static int bad_create(void)
{
    Value *prev[2] = {bad_args_a, NULL};
    return STATUS_OF(value_create(1.0, 2, prev));
}
static int bad_sum(void)
{
    Value *terms[3] = {bad_args_a, bad_args_a, NULL};
    return STATUS_OF(value_sum(3, terms));
}
static int bad_neuron_n(void)
{
    return STATUS_OF(value_neuron(-1, NULL, NULL, bad_args_a));
}
static int bad_neuron_x(void)
{
    Value *w[1] = {bad_args_a}, *x[1] = {NULL};
    return STATUS_OF(value_neuron(1, w, x, bad_args_a));
}
static int bad_neuron_act_n(void)
{
    Value *r = value_neuron_activation(-1, NULL, NULL, bad_args_a, MICROCRAD_ACT_TANH);
    return STATUS_OF(r);
}
static int bad_neuron_act_b(void)
{
    Value *w[1] = {bad_args_a}, *x[1] = {bad_args_a};
    Value *r = value_neuron_activation(1, w, x, NULL, MICROCRAD_ACT_RELU);
    return STATUS_OF(r);
}
static int bad_layer_overlap(void)
{
    Value *xs[2] = {bad_args_a, bad_args_a};
    return microcrad_layer_forward(bad_args_layer, xs, xs);
}
static int bad_mlp_overlap(void)
{
    Value *xs[2] = {bad_args_a, bad_args_a};
    return microcrad_mlp_forward(bad_args_mlp, xs, xs + 1);
}

static void test_bad_arguments_take_no_room(void)
{
    printf("a call that fails on its arguments takes no room in the scope\n");
    static const struct {
        const char *name;
        int (*call)(void);
        int status;
    } calls[] = {
        {"value_add(a, NULL)", bad_add, MICROCRAD_ERR_NULL},
        {"value_mul(NULL, a)", bad_mul, MICROCRAD_ERR_NULL},
        {"value_relu(NULL)", bad_relu, MICROCRAD_ERR_NULL},
        {"value_pow(a, NULL)", bad_pow, MICROCRAD_ERR_NULL},
        {"value_create with a NULL operand", bad_create, MICROCRAD_ERR_NULL},
        {"value_sum with a NULL term", bad_sum, MICROCRAD_ERR_NULL},
        {"value_neuron(-1, ...)", bad_neuron_n, MICROCRAD_ERR_ARGUMENT},
        {"value_neuron with a NULL input", bad_neuron_x, MICROCRAD_ERR_NULL},
        {"value_neuron_activation(-1, ...)", bad_neuron_act_n, MICROCRAD_ERR_ARGUMENT},
        {"value_neuron_activation with b NULL", bad_neuron_act_b, MICROCRAD_ERR_NULL},
        {"microcrad_layer_forward(l, xs, xs)", bad_layer_overlap, MICROCRAD_ERR_ARGUMENT},
        {"microcrad_mlp_forward(m, xs, xs + 1)", bad_mlp_overlap, MICROCRAD_ERR_ARGUMENT},
    };
    int64_t live0 = microcrad_live_values();
    uint64_t rng = 3;
    const int32_t sizes[1] = {1};
    bad_args_a = value_create_leaf(1.0);
    bad_args_layer = microcrad_layer_create(2, 2, MICROCRAD_ACT_TANH, &rng);
    bad_args_mlp = microcrad_mlp_create(2, 1, sizes, MICROCRAD_ACT_RELU, MICROCRAD_ACT_LINEAR,
                                        &rng);
    CHECK(bad_args_a && bad_args_layer && bad_args_mlp);
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        for (int fail_next = 0; fail_next <= 1; fail_next++) {
            microcrad_scope *scope = microcrad_scope_begin(); /* fresh: no room yet */
            int64_t allocations = microcrad_allocation_count();
            microcrad_fail_allocation(fail_next);
            microcrad_clear_error();
            int status = calls[i].call();
            microcrad_fail_allocation(0);
            if (!CHECK_INT(status, calls[i].status))
                fprintf(stderr, "    %s (next allocation %s)\n", calls[i].name,
                        fail_next ? "failing" : "allowed");
            if (!CHECK_INT(microcrad_allocation_count() - allocations, 0))
                fprintf(stderr, "    %s allocated\n", calls[i].name);
            CHECK_INT(microcrad_scope_size(scope), 0);
            CHECK_INT(microcrad_scope_end(scope), MICROCRAD_OK);
        }
    }
    CHECK_INT(value_ref_count(bad_args_a), 1);
    microcrad_mlp_free(bad_args_mlp);
    microcrad_layer_free(bad_args_layer);
    value_release(bad_args_a);
    CHECK_INT(microcrad_live_values(), live0);
}

int main(void)
{
    int64_t live_at_start = microcrad_live_values();
    microcrad_set_quiet(1);
    test_every_result_goes_to_the_scope();
    test_every_op_constructor_goes_to_the_scope();
    test_survivors_and_retained_nodes();
    test_nesting();
    test_another_thread_cannot_end_it();
    test_threads();
    test_a_million_nodes();
    test_training_step_without_releases();
    test_released_result_is_reported();
    test_bad_arguments_take_no_room();
    CHECK_INT(microcrad_live_values(), live_at_start);
    return check_summary();
}
