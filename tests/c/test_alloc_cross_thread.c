/*
 * test_alloc_cross_thread.c - memory stays bounded by the nodes alive when nodes are
 * released on a thread other than the one that made them.
 *
 * Two patterns that used to grow without bound (each freed block joined the free list
 * of the thread that freed it, where the thread that makes nodes never looked):
 *
 *   1. producer/consumer: one thread makes small graphs, another releases them; at most
 *      QUEUE_BATCHES * BATCH graphs are alive at any time;
 *   2. short-lived producers: a thread makes graphs, hands them to main and exits; main
 *      releases them; then the next thread does the same.
 *
 * The check is on the resident set, not only on live counts: after a warm-up, its
 * growth over ITEMS graphs (2 nodes each, 64 bytes a node) must stay below RSS_LIMIT,
 * where the old pool grew by about 128 MB. In builds where nodes come from plain malloc
 * (sanitizers, Valgrind) memory is malloc's business: the workload runs, the live
 * counts are checked, the resident set is not.
 *
 * Optional argument: a divisor for the amount of work (by default TSan runs a quarter
 * of it, plain-malloc builds a twentieth).
 */
#include "check.h"

#include <microcrad.h>

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include "resident.h"

enum {
    BATCH = 256,       /* graphs handed over at once */
    QUEUE_BATCHES = 4, /* batches waiting at most: live graphs <= (QUEUE_BATCHES + 2) * BATCH */
    ITEMS = 1000000,   /* graphs per pattern (2 nodes each) */
    SHORT_THREADS = 40 /* short-lived producers in pattern 2 */
};
#define RSS_LIMIT (24LL << 20)

static long items = ITEMS;


/* A graph of two nodes: a leaf and a + a. Returns the sum; the leaf lives on in it. */
static Value *small_graph(long i)
{
    Value *a = value_create_leaf((double)i);
    Value *sum = a ? value_add(a, a) : NULL;
    value_release(a);
    return sum;
}

/* ---- 1. producer/consumer over a bounded queue of batches ---------------------- */

typedef struct Queue {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    Value *batches[QUEUE_BATCHES][BATCH];
    int head, count, done;
} Queue;

static Queue queue = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {{0}}, 0, 0, 0};

static void *produce(void *failures)
{
    Value *batch[BATCH];
    for (long made = 0; made < items; made += BATCH) {
        for (int i = 0; i < BATCH; i++)
            if (!(batch[i] = small_graph(made + i)))
                ++*(long *)failures;
        pthread_mutex_lock(&queue.lock);
        while (queue.count == QUEUE_BATCHES)
            pthread_cond_wait(&queue.changed, &queue.lock);
        memcpy(queue.batches[(queue.head + queue.count) % QUEUE_BATCHES], batch, sizeof batch);
        queue.count++;
        pthread_cond_broadcast(&queue.changed);
        pthread_mutex_unlock(&queue.lock);
    }
    pthread_mutex_lock(&queue.lock);
    queue.done = 1;
    pthread_cond_broadcast(&queue.changed);
    pthread_mutex_unlock(&queue.lock);
    return NULL;
}

static void *consume(void *unused)
{
    (void)unused;
    Value *batch[BATCH];
    for (;;) {
        pthread_mutex_lock(&queue.lock);
        while (queue.count == 0 && !queue.done)
            pthread_cond_wait(&queue.changed, &queue.lock);
        if (queue.count == 0) {
            pthread_mutex_unlock(&queue.lock);
            return NULL;
        }
        memcpy(batch, queue.batches[queue.head], sizeof batch);
        queue.head = (queue.head + 1) % QUEUE_BATCHES;
        queue.count--;
        pthread_cond_broadcast(&queue.changed);
        pthread_mutex_unlock(&queue.lock);
        for (int i = 0; i < BATCH; i++)
            value_release(batch[i]); /* NULL (a failed graph) is a no-op or an error */
    }
}

static void run_producer_consumer(void)
{
    long failures = 0;
    pthread_t producer, consumer;
    CHECK(pthread_create(&consumer, NULL, consume, NULL) == 0);
    CHECK(pthread_create(&producer, NULL, produce, &failures) == 0);
    CHECK(pthread_join(producer, NULL) == 0);
    CHECK(pthread_join(consumer, NULL) == 0);
    CHECK_INT(failures, 0);
    queue.done = 0;
}

/* ---- 2. short-lived producers, main releases -------------------------------------- */

typedef struct Handover {
    long n;
    Value **graphs;
} Handover;

static void *produce_and_exit(void *arg)
{
    Handover *h = arg;
    for (long i = 0; i < h->n; i++)
        h->graphs[i] = small_graph(i);
    return NULL;
}

static void run_short_lived_producers(Value **graphs, long per_thread)
{
    for (int t = 0; t < SHORT_THREADS; t++) {
        Handover h = {per_thread, graphs};
        pthread_t thread;
        CHECK(pthread_create(&thread, NULL, produce_and_exit, &h) == 0);
        CHECK(pthread_join(thread, NULL) == 0);
        for (long i = 0; i < per_thread; i++) {
            CHECK(graphs[i] != NULL);
            value_release(graphs[i]);
        }
    }
}

int main(int argc, char **argv)
{
    unsigned features = microcrad_build_features();
    /* TSan runs a quarter of the work; plain-malloc builds (ASan, Valgrind), which do
     * not check the resident set, a twentieth. */
    long divisor = argc > 1                                 ? atol(argv[1])
                   : (features & MICROCRAD_BUILD_VALGRIND) ? 20
                   : (features & MICROCRAD_BUILD_TSAN)     ? 4
                                                           : 1;
    if (divisor < 1)
        divisor = 1;
    items = ITEMS / divisor;
    const int pooled = !(features & MICROCRAD_BUILD_VALGRIND);
    microcrad_set_quiet(1);
    const int64_t live0 = microcrad_live_values();

    long long before = -1, growth = 0;

    /* 2. Graphs made by threads that exit before main frees them. First, so that memory
     * stranded by pattern 1 cannot serve it. A warm-up round sets the baseline. */
    long per_thread = items / SHORT_THREADS;
    Value **graphs = malloc((size_t)per_thread * sizeof *graphs);
    CHECK(graphs != NULL);
    if (graphs) {
        Handover warm = {per_thread, graphs};
        pthread_t thread;
        CHECK(pthread_create(&thread, NULL, produce_and_exit, &warm) == 0);
        CHECK(pthread_join(thread, NULL) == 0);
        for (long i = 0; i < per_thread; i++)
            value_release(graphs[i]);
        before = resident_bytes();
        run_short_lived_producers(graphs, per_thread);
        growth = resident_bytes() - before;
        printf("%d short-lived producers, %ld graphs each: resident set grew by %.1f MB\n",
               SHORT_THREADS, per_thread, (double)growth / 1048576.0);
        CHECK_INT(microcrad_live_values(), live0);
        if (pooled && before >= 0)
            CHECK(growth < RSS_LIMIT);
        free(graphs);
    }

    /* 1. Producer/consumer; a warm-up run sets the baseline. */
    long full = items;
    items = 4 * BATCH * QUEUE_BATCHES;
    run_producer_consumer();
    items = full;
    before = resident_bytes();
    run_producer_consumer();
    growth = resident_bytes() - before;
    printf("producer/consumer, %ld graphs: resident set grew by %.1f MB\n", items,
           (double)growth / 1048576.0);
    CHECK_INT(microcrad_live_values(), live0);
    if (pooled && before >= 0)
        CHECK(growth < RSS_LIMIT);

    return check_summary();
}
