/*
 * test_node_threads.c - many threads sharing nodes, under the documented rules.
 *
 * The rules (microcrad.h, "Threads"): reference counts are atomic, so any thread may
 * retain or release any node, and operations may retain shared operands concurrently;
 * whatever writes to nodes (value_backward, value_zero_grad, ...) must be serialised
 * by the caller when graphs share nodes. Here THREADS threads share a set of leaves
 * and, for ITERATIONS rounds each:
 *
 *   - take and give back extra references to random shared leaves;
 *   - build a graph of their own from shared leaves (every op retains its shared
 *     operands while other threads do the same);
 *   - run value_backward on it holding `backward_lock` (it writes the shared leaves'
 *     grad and traversal marks) and check, inside the lock, that each leaf's grad grew
 *     by exactly its partial derivative in this graph;
 *   - release the graph, or hand it to another thread through a mailbox, so that
 *     graphs are freed on threads other than the one that made them (with the node
 *     pool, those blocks join the freeing thread's free list).
 *
 * At the end every shared leaf must have exactly the one reference main holds, and
 * the live count must be exactly the shared leaves; then zero. Run under TSan
 * (tools/memcheck.py tsan), any missing synchronisation inside the library shows up
 * as a data race report; in any build, a lost reference count update shows up as a
 * wrong count.
 *
 * Optional argument: iterations per thread (default ITERATIONS).
 */
#include "check.h"

#include <microcrad.h>

#include <pthread.h>
#include <stdlib.h>

enum {
    THREADS = 4,
    SHARED = 8,           /* shared leaves */
    TERMS = 6,            /* products per graph */
    ITERATIONS = 20000,   /* rounds per thread: about 0.1 s plain, 1-2 s under TSan */
    EXTRA_REFERENCES = 3, /* extra retains per round */
};

static Value *shared[SHARED];
static double shared_data[SHARED]; /* the leaves' data, never written after setup */
static pthread_mutex_t backward_lock = PTHREAD_MUTEX_INITIALIZER;

/* A one-slot mailbox: a thread leaves a graph root here for another thread to free. */
static pthread_mutex_t mailbox_lock = PTHREAD_MUTEX_INITIALIZER;
static Value *mailbox;

static int iterations = ITERATIONS;

/* Holds the workers until all have started, so that they really overlap. */
static pthread_barrier_t start_line;

typedef struct worker {
    unsigned long long rng;
    long failures; /* counted here, reported by main: check.h is not thread-safe */
} worker;

/* xorshift64*: a per-thread generator, so threads need no shared random state. */
static unsigned next_random(worker *w, unsigned bound)
{
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return (unsigned)((w->rng * 2685821657736338717ULL) >> 33) % bound;
}

/* Swaps `root` into the mailbox and returns what was there (NULL if empty). */
static Value *swap_mailbox(Value *root)
{
    pthread_mutex_lock(&mailbox_lock);
    Value *previous = mailbox;
    mailbox = root;
    pthread_mutex_unlock(&mailbox_lock);
    return previous;
}

/*
 * One round: root = sum_k shared[i_k] * shared[j_k], possibly passed through tanh.
 * d root/d shared[i] = f' * sum over terms of the other factor (twice the leaf's data
 * for a square), computed alongside for the check.
 */
static void round_of(worker *w)
{
    /* Extra references, taken and given back while other threads do the same. */
    int extra[EXTRA_REFERENCES];
    for (int e = 0; e < EXTRA_REFERENCES; e++) {
        extra[e] = (int)next_random(w, SHARED);
        if (value_retain(shared[extra[e]]) != MICROCRAD_OK)
            w->failures++;
    }

    Value *products[TERMS];
    double partial[SHARED] = {0};
    double sum = 0.0;
    for (int k = 0; k < TERMS; k++) {
        unsigned i = next_random(w, SHARED), j = next_random(w, SHARED);
        products[k] = value_mul(shared[i], shared[j]);
        if (!products[k]) {
            w->failures++;
            return;
        }
        partial[i] += shared_data[j];
        partial[j] += shared_data[i];
        sum += shared_data[i] * shared_data[j];
    }
    Value *root = value_sum(TERMS, products);
    for (int k = 0; k < TERMS; k++)
        value_release(products[k]); /* the sum node holds them now */
    if (!root) {
        w->failures++;
        return;
    }
    double scale = 1.0;
    if (next_random(w, 2)) {
        Value *squashed = value_tanh(root);
        value_release(root);
        if (!(root = squashed)) {
            w->failures++;
            return;
        }
        double t = tanh(sum);
        scale = 1.0 - t * t;
    }

    pthread_mutex_lock(&backward_lock);
    double before[SHARED];
    for (int s = 0; s < SHARED; s++)
        before[s] = shared[s]->grad;
    if (value_backward(root) != MICROCRAD_OK)
        w->failures++;
    for (int s = 0; s < SHARED; s++) {
        double grown = shared[s]->grad - before[s];
        if (!check_near_double(grown, scale * partial[s], 1e-9))
            w->failures++;
    }
    pthread_mutex_unlock(&backward_lock);

    /* Half the graphs are freed by whichever thread next finds them in the mailbox. */
    if (next_random(w, 2))
        root = swap_mailbox(root);
    if (root && value_release(root) != MICROCRAD_OK)
        w->failures++;

    for (int e = 0; e < EXTRA_REFERENCES; e++)
        if (value_release(shared[extra[e]]) != MICROCRAD_OK)
            w->failures++;
}

static void *work(void *arg)
{
    worker *w = arg;
    pthread_barrier_wait(&start_line);
    for (int n = 0; n < iterations; n++)
        round_of(w);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        iterations = atoi(argv[1]);
    printf("%d threads x %d rounds over %d shared leaves\n", THREADS, iterations, SHARED);

    const int64_t baseline = microcrad_live_values();
    for (int s = 0; s < SHARED; s++) {
        /* Small magnitudes keep the leaves' accumulated grads well inside double range
         * and tanh away from saturation. */
        shared_data[s] = 0.25 * (s - SHARED / 2) / SHARED;
        shared[s] = value_create_leaf(shared_data[s]);
        CHECK(shared[s] != NULL);
    }

    worker workers[THREADS];
    pthread_t threads[THREADS];
    CHECK_INT(pthread_barrier_init(&start_line, NULL, THREADS), 0);
    for (int t = 0; t < THREADS; t++) {
        workers[t] = (worker){.rng = 0x9E3779B97F4A7C15ULL * (unsigned)(t + 1)};
        CHECK_INT(pthread_create(&threads[t], NULL, work, &workers[t]), 0);
    }
    long failures = 0;
    for (int t = 0; t < THREADS; t++) {
        CHECK_INT(pthread_join(threads[t], NULL), 0);
        failures += workers[t].failures;
    }
    CHECK_INT(failures, 0); /* wrong grads, failed calls */
    pthread_barrier_destroy(&start_line);

    /* The last graph left in the mailbox still holds shared leaves. */
    Value *left = swap_mailbox(NULL);
    if (left)
        CHECK_INT(value_release(left), MICROCRAD_OK);

    /* Exactly main's reference is left on each leaf, and nothing else is alive. */
    for (int s = 0; s < SHARED; s++)
        CHECK_INT(value_ref_count(shared[s]), 1);
    CHECK_INT(microcrad_live_values() - baseline, SHARED);

    for (int s = 0; s < SHARED; s++)
        CHECK_INT(value_release(shared[s]), MICROCRAD_OK);
    CHECK_INT(microcrad_live_values(), baseline);
    return check_summary();
}
