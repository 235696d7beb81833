/*
 * test_node.c - reference counts and lifetimes.
 *
 * The rule under test: every returned Value is one reference for the caller, each node
 * holds one reference per operand slot, and a node is freed when its last reference
 * goes. microcrad_live_values() is the witness that nothing leaks and nothing is freed
 * early; it must return to its starting value after every scenario.
 *
 * Usage: test_node [iterations per thread, default 1000000]
 */
#define _POSIX_C_SOURCE 200809L

#include "check.h"

#include <microcrad.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

enum { THREADS = 4 };

static long iterations = 1000000;

/* ------------------------------------------------------------------------------ */

static void test_counts_after_ops(void)
{
    printf("counts after ops\n");
    int64_t live0 = microcrad_live_values();
    Value *a = value_create_leaf(2.0);
    Value *b = value_create_leaf(3.0);
    CHECK_INT(value_ref_count(a), 1);
    CHECK_INT(microcrad_live_values(), live0 + 2);

    Value *c = value_add(a, b);
    CHECK_INT(value_ref_count(c), 1);
    CHECK_INT(value_ref_count(a), 2);
    CHECK_INT(value_ref_count(b), 2);

    /* a is now an operand of two ops: one reference each, plus the caller's. */
    Value *d = value_mul(a, c);
    CHECK_INT(value_ref_count(a), 3);
    CHECK_INT(value_ref_count(c), 2);
    CHECK_INT(value_ref_count(d), 1);
    CHECK_INT(microcrad_live_values(), live0 + 4);

    /* The same node in both slots is two references. */
    Value *e = value_mul(b, b);
    CHECK_INT(value_ref_count(b), 4);

    /* n-ary nodes hold one reference per slot, repeated or not. */
    Value *terms[4] = {a, b, a, a};
    Value *s = value_sum(4, terms);
    CHECK_INT(value_ref_count(a), 6);
    CHECK_INT(value_ref_count(b), 5);
    Value *prevs[3] = {b, a, b};
    Value *k = value_create(1.0, 3, prevs);
    CHECK_INT(value_ref_count(a), 7);
    CHECK_INT(value_ref_count(b), 7);

    /* value_prev borrows: reading operands changes no count. */
    for (uint32_t i = 0; i < 4; i++)
        CHECK(value_prev(s, i) == terms[i]);
    CHECK(value_prev(d, 1) == c);
    CHECK_INT(value_ref_count(a), 7);
    CHECK_INT(value_ref_count(c), 2);

    /* retain and release move the count by one. */
    CHECK_INT(value_retain(d), MICROCRAD_OK);
    CHECK_INT(value_ref_count(d), 2);
    CHECK_INT(value_release(d), MICROCRAD_OK);
    CHECK_INT(value_ref_count(d), 1);
    CHECK_INT(microcrad_live_values(), live0 + 7);

    /* Releasing a node gives back its operand references. */
    value_release(k);
    CHECK_INT(value_ref_count(a), 6);
    CHECK_INT(value_ref_count(b), 5);
    value_release(s);
    CHECK_INT(value_ref_count(a), 3);
    CHECK_INT(value_ref_count(b), 4);
    value_release(e);
    CHECK_INT(value_ref_count(b), 2);
    value_release(d);
    CHECK_INT(value_ref_count(a), 2);
    CHECK_INT(value_ref_count(c), 1);
    value_release(c);
    CHECK_INT(value_ref_count(a), 1);
    CHECK_INT(value_ref_count(b), 1);
    value_release(a);
    value_release(b);
    CHECK_INT(microcrad_live_values(), live0);
}

/* The result keeps its operands alive after the caller let go of them. */
static void test_result_keeps_operands(void)
{
    printf("result keeps operands alive\n");
    int64_t live0 = microcrad_live_values();
    Value *a = value_create_leaf(1.5);
    Value *b = value_create_leaf(-4.0);
    Value *c = value_mul(a, b);
    CHECK_INT(value_release(a), MICROCRAD_OK);
    CHECK_INT(value_release(b), MICROCRAD_OK);
    CHECK_INT(microcrad_live_values(), live0 + 3);

    /* The operands are still there, reachable through the result, with one reference. */
    Value *pa = value_prev(c, 0), *pb = value_prev(c, 1);
    CHECK(pa == a && pb == b);
    CHECK_INT(value_ref_count(pa), 1);
    CHECK_SAME(value_data(pa), 1.5);
    CHECK_SAME(value_data(pb), -4.0);
    /* A graph built on top still works and back-propagates into them. */
    Value *d = value_tanh(c);
    value_release(c);
    CHECK_INT(microcrad_live_values(), live0 + 4);
    CHECK_INT(value_backward(d), MICROCRAD_OK);
    double t = tanh(1.5 * -4.0);
    CHECK_NEAR(pa->grad, (1.0 - t * t) * -4.0, 1e-14);

    /* The last handle takes the whole graph with it. */
    CHECK_INT(value_release(d), MICROCRAD_OK);
    CHECK_INT(microcrad_live_values(), live0);
}

/*
 * Every order of releasing the caller's four handles to
 *   c = a * b,  d = c + a
 * After each step, a node is alive when the caller still holds it or a live node
 * holds it; its count is the caller's handle plus one per live consumer slot.
 */
static void test_release_orders(void)
{
    printf("release orders\n");
    int64_t live0 = microcrad_live_values();
    int perm[4] = {0, 1, 2, 3};
    int orders = 0;
    /* Every four-digit code in base 4 whose digits are all different is one order. */
    for (int code = 0; code < 256; code++) {
        int seen = 0;
        for (int i = 0; i < 4; i++) {
            perm[i] = (code >> (2 * i)) & 3;
            seen |= 1 << perm[i];
        }
        if (seen != 15)
            continue;
        orders++;

        Value *v[4];
        v[0] = value_create_leaf(2.0);   /* a */
        v[1] = value_create_leaf(5.0);   /* b */
        v[2] = value_mul(v[0], v[1]);    /* c */
        v[3] = value_add(v[2], v[0]);    /* d */
        int held[4] = {1, 1, 1, 1};
        for (int step = 0; step < 4; step++) {
            CHECK_INT(value_release(v[perm[step]]), MICROCRAD_OK);
            held[perm[step]] = 0;
            int d_alive = held[3];
            int c_alive = held[2] || d_alive;
            int a_alive = held[0] || c_alive || d_alive;
            int b_alive = held[1] || c_alive;
            CHECK_INT(microcrad_live_values(), live0 + a_alive + b_alive + c_alive + d_alive);
            if (a_alive)
                CHECK_INT(value_ref_count(v[0]), held[0] + c_alive + d_alive);
            if (b_alive)
                CHECK_INT(value_ref_count(v[1]), held[1] + c_alive);
            if (c_alive)
                CHECK_INT(value_ref_count(v[2]), held[2] + d_alive);
            if (d_alive)
                CHECK_INT(value_ref_count(v[3]), held[3]);
            /* The data of what is still alive is intact. */
            if (d_alive)
                CHECK_SAME(value_data(v[3]), 2.0 * 5.0 + 2.0);
        }
        CHECK_INT(microcrad_live_values(), live0);
    }
    CHECK_INT(orders, 24);
}

/*
 * The reference-count limit: a count at UINT32_MAX cannot be raised, and an op that
 * would need to raise it fails without changing anything. Four billion retains would
 * take too long, so the count is set directly: the one place where a test writes a
 * field the library manages.
 */
static void test_count_overflow(void)
{
    printf("count overflow\n");
    int64_t live0 = microcrad_live_values();
    int quiet = microcrad_set_quiet(1);
    Value *a = value_create_leaf(1.0);
    Value *b = value_create_leaf(2.0);

    __atomic_store_n(&a->ref_count, UINT32_MAX - 1, __ATOMIC_RELAXED);
    CHECK_INT(value_retain(a), MICROCRAD_OK);
    CHECK_INT(value_ref_count(a), UINT32_MAX);
    CHECK_INT(value_retain(a), MICROCRAD_ERR_OVERFLOW);
    CHECK_INT(value_ref_count(a), UINT32_MAX);

    /* An op over b then a must not keep the reference it took to b. */
    Value *terms[2] = {b, a};
    CHECK(value_sum(2, terms) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "value_sum: reference count of operand 2 would overflow");
    CHECK(value_add(b, a) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "value_add: reference count of operand 2 would overflow");
    CHECK(value_mul(a, b) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "value_mul: reference count of operand 1 would overflow");
    CHECK(value_create(0.0, 2, terms) == NULL);
    CHECK_INT(value_ref_count(b), 1);
    CHECK_INT(value_ref_count(a), UINT32_MAX);
    CHECK_INT(microcrad_live_values(), live0 + 2);

    /* One slot left but two needed: neither is taken. */
    __atomic_store_n(&a->ref_count, UINT32_MAX - 1, __ATOMIC_RELAXED);
    CHECK(value_mul(a, a) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "value_mul: reference count of operand 2 would overflow");
    CHECK_INT(value_ref_count(a), UINT32_MAX - 1);
    Value *one = value_pow_const(a, 2.0); /* one slot is enough */
    CHECK(one != NULL);
    CHECK_INT(value_ref_count(a), UINT32_MAX);
    value_release(one);
    CHECK_INT(value_ref_count(a), UINT32_MAX - 1);

    /* The functions that retain a full node name themselves and the slot at fault:
     * the optimizer's rollback once wrapped the index it printed ("params[1844...]"),
     * and the tape passed on value_retain's message. */
    __atomic_store_n(&a->ref_count, UINT32_MAX, __ATOMIC_RELAXED);
    Value *params[2] = {b, a};
    microcrad_clear_error();
    CHECK(microcrad_sgd_create(2, params, 0.1, 0.0, 0.0) == NULL);
    CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_OVERFLOW);
    CHECK_CONTAINS(microcrad_last_error(), "microcrad_sgd_create: cannot retain params[1]");
    CHECK(microcrad_adam_create(2, params, 0.1, 0.9, 0.999, 1e-8, 0.0) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "microcrad_adam_create: cannot retain params[1]");
    CHECK_INT(value_ref_count(b), 1); /* the retain of params[0] was rolled back */
    Value *root = value_pow_const(b, 2.0);
    __atomic_store_n(&root->ref_count, UINT32_MAX, __ATOMIC_RELAXED);
    microcrad_clear_error();
    CHECK(microcrad_tape_create(root) == NULL);
    CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_OVERFLOW);
    CHECK_CONTAINS(microcrad_last_error(), "microcrad_tape_create");
    CHECK_INT(value_ref_count(root), UINT32_MAX);
    __atomic_store_n(&root->ref_count, 1, __ATOMIC_RELAXED);
    value_release(root);

    __atomic_store_n(&a->ref_count, 1, __ATOMIC_RELAXED);
    value_release(a);
    value_release(b);
    CHECK_INT(microcrad_live_values(), live0);
    microcrad_set_quiet(quiet);
}

/* ------------------------------------------------------------------------------ */
/* Threads                                                                         */
/* ------------------------------------------------------------------------------ */

typedef struct job {
    Value *node;
    long n;
    int mode;
    long failures;
} job;

enum { RETAIN_RELEASE_PAIRS, RETAIN_ONLY, RELEASE_ONLY, RELEASE_ONCE, OPS_ON_SHARED };

static void *worker(void *arg)
{
    job *j = arg;
    for (long i = 0; i < j->n; i++) {
        switch (j->mode) {
        case RETAIN_RELEASE_PAIRS:
            j->failures += value_retain(j->node) != MICROCRAD_OK;
            j->failures += value_release(j->node) != MICROCRAD_OK;
            break;
        case RETAIN_ONLY:
            j->failures += value_retain(j->node) != MICROCRAD_OK;
            break;
        case RELEASE_ONLY:
        case RELEASE_ONCE:
            j->failures += value_release(j->node) != MICROCRAD_OK;
            break;
        case OPS_ON_SHARED: {
            /* Each op retains the shared node from this thread, and frees its own
             * nodes here, some of which may have been made by the pool of another. */
            Value *own = value_create_leaf((double)i);
            Value *y = value_mul(j->node, own);
            j->failures += y == NULL;
            j->failures += value_release(own) != MICROCRAD_OK;
            j->failures += value_release(y) != MICROCRAD_OK;
            break;
        }
        }
    }
    return NULL;
}

/* Runs `mode` on `node` in THREADS threads at once; returns the total failures. */
static long run_threads(Value *node, long n, int mode)
{
    pthread_t t[THREADS];
    job jobs[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (job){node, n, mode, 0};
        if (pthread_create(&t[i], NULL, worker, &jobs[i]) != 0) {
            CHECK(!"pthread_create failed");
            jobs[i].failures = 0;
            worker(&jobs[i]); /* still do the work, so the counts stay as expected */
            t[i] = pthread_self();
        }
    }
    long failures = 0;
    for (int i = 0; i < THREADS; i++) {
        if (!pthread_equal(t[i], pthread_self()))
            pthread_join(t[i], NULL);
        failures += jobs[i].failures;
    }
    return failures;
}

static void test_threads(void)
{
    printf("threads: %d x %ld retain/release\n", THREADS, iterations);
    int64_t live0 = microcrad_live_values();
    Value *a = value_create_leaf(1.0);
    Value *b = value_create_leaf(2.0);
    Value *node = value_add(a, b);

    /* Interleaved pairs: a lost update in either direction would leave the count off. */
    CHECK_INT(run_threads(node, iterations, RETAIN_RELEASE_PAIRS), 0);
    CHECK_INT(value_ref_count(node), 1);

    /* All retains at once, then all releases at once. */
    CHECK_INT(run_threads(node, iterations, RETAIN_ONLY), 0);
    CHECK_INT(value_ref_count(node), 1 + (long long)THREADS * iterations);
    CHECK_INT(run_threads(node, iterations, RELEASE_ONLY), 0);
    CHECK_INT(value_ref_count(node), 1);
    CHECK_INT(microcrad_live_values(), live0 + 3);

    /* Ops from several threads on one shared operand. */
    long op_iterations = iterations / 10;
    CHECK_INT(run_threads(node, op_iterations, OPS_ON_SHARED), 0);
    CHECK_INT(value_ref_count(node), 1);
    CHECK_INT(microcrad_live_values(), live0 + 3);

    /* The last reference dropped on other threads frees the graph exactly once. */
    value_release(a);
    value_release(b);
    for (int i = 0; i < THREADS; i++)
        value_retain(node);
    CHECK_INT(value_release(node), MICROCRAD_OK); /* the caller's own handle */
    CHECK_INT(run_threads(node, 1, RELEASE_ONCE), 0);
    CHECK_INT(microcrad_live_values(), live0);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        iterations = strtol(argv[1], NULL, 10);
        if (iterations < 10) {
            fprintf(stderr, "usage: %s [iterations per thread >= 10]\n", argv[0]);
            return 2;
        }
    }
    int64_t live_at_start = microcrad_live_values();
    test_counts_after_ops();
    test_result_keeps_operands();
    test_release_orders();
    test_count_overflow();
    test_threads();
    CHECK_INT(microcrad_live_values(), live_at_start);
    return check_summary();
}
