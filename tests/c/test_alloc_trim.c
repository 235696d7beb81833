/*
 * test_alloc_trim.c - idle node-pool memory goes back to the system: on request
 * (microcrad_trim) and when a thread exits.
 *
 * Each case makes NODES leaves (about 26 MB of pool), releases them, and checks the
 * resident set against a level measured before, with slack for everything else:
 *
 *   1. trim after free: main makes and releases them, then microcrad_trim();
 *   2. thread exit: a thread makes and releases them, then exits (no trim call);
 *   3. released elsewhere: main makes them, a thread releases them, main trims
 *      (the blocks must first go back to main's heap);
 *   4. orphans: a thread makes them and exits while they are alive, main releases
 *      them later, then trims (the exited thread's heap is trimmed too).
 *
 * microcrad_trim() must also report the bytes it gave back. In builds where nodes come
 * from plain malloc (sanitizers, Valgrind) it returns 0 and there is no pool to check:
 * the cases run for their live counts only.
 */
#include "check.h"

#include <microcrad.h>

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include "resident.h"

enum { NODES = 400000 };
#define POOL_BYTES ((long long)NODES * 64)
/* What may stay resident after a case: the pool's bookkeeping, a partly used chunk,
 * the C library's own caches. Far below POOL_BYTES. */
#define SLACK (6LL << 20)

static Value *nodes[NODES];
static int pooled;
static int n_nodes = NODES; /* plain-malloc builds check no memory: a twentieth will do */


static void *make_all(void *unused)
{
    (void)unused;
    for (int i = 0; i < n_nodes; i++)
        nodes[i] = value_create_leaf((double)i);
    return NULL;
}

/* Failed releases, counted here and checked by main: check.h is not thread-safe. */
static long failed_releases;

static void *release_all(void *unused)
{
    (void)unused;
    for (int i = 0; i < n_nodes; i++)
        failed_releases += value_release(nodes[i]) != MICROCRAD_OK;
    return NULL;
}

static long long thread_peak; /* the resident set after make_and_release_all made them */

static void *make_and_release_all(void *unused)
{
    (void)unused;
    make_all(NULL);
    thread_peak = resident_bytes();
    release_all(NULL);
    return NULL;
}

static void on_thread(void *(*work)(void *))
{
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, work, NULL) == 0);
    CHECK(pthread_join(thread, NULL) == 0);
}

/* The resident set is back near `base`, and was well above it at `peak`. */
static void check_returned(const char *name, long long base, long long peak, long long now)
{
    printf("%s: resident set %.1f MB before, %.1f MB at the peak, %.1f MB after\n", name,
           (double)base / 1048576.0, (double)peak / 1048576.0, (double)now / 1048576.0);
    if (!pooled || base < 0)
        return;
    CHECK(peak - base > POOL_BYTES / 2); /* the case did use the pool */
    CHECK(now - base < SLACK);
}

int main(void)
{
    pooled = !(microcrad_build_features() & MICROCRAD_BUILD_VALGRIND);
    if (!pooled)
        n_nodes = NODES / 20;
    const int64_t live0 = microcrad_live_values();
    /* Touch the array of handles first, so that its pages are in every baseline. */
    Value *volatile *touch = nodes;
    for (int i = 0; i < NODES; i++)
        touch[i] = NULL;
    microcrad_trim();

    /* 1. trim after free */
    long long base = resident_bytes();
    make_all(NULL);
    long long peak = resident_bytes();
    release_all(NULL);
    int64_t given_back = microcrad_trim();
    check_returned("trim after free", base, peak, resident_bytes());
    CHECK_INT(microcrad_live_values(), live0);
    if (pooled)
        CHECK(given_back >= POOL_BYTES);
    else
        CHECK_INT(given_back, 0);
    CHECK_INT(microcrad_trim(), 0); /* nothing left to give */

    /* 2. thread exit */
    base = resident_bytes();
    on_thread(make_and_release_all);
    check_returned("thread exit", base, thread_peak, resident_bytes());
    CHECK_INT(microcrad_live_values(), live0);

    /* 3. made here, released on another thread, then trimmed here */
    base = resident_bytes();
    make_all(NULL);
    peak = resident_bytes();
    on_thread(release_all);
    given_back = microcrad_trim();
    check_returned("released on another thread", base, peak, resident_bytes());
    CHECK_INT(microcrad_live_values(), live0);
    if (pooled)
        CHECK(given_back >= POOL_BYTES);

    /* 4. made on a thread that exits, released here, then trimmed */
    base = resident_bytes();
    on_thread(make_all);
    peak = resident_bytes();
    release_all(NULL);
    given_back = microcrad_trim();
    check_returned("made by an exited thread", base, peak, resident_bytes());
    CHECK_INT(microcrad_live_values(), live0);
    if (pooled)
        CHECK(given_back >= POOL_BYTES);

    CHECK_INT(failed_releases, 0);
    return check_summary();
}
