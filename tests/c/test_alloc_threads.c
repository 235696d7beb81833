/*
 * test_alloc_threads.c - a thread that exits hands its heap over: nodes it made that are
 * still alive keep their memory, and once released that memory serves the next thread.
 *
 * Without the hand-over, memory of short-lived threads (Python threads calling through
 * ctypes, worker pools) would be stranded and the process would grow without bound.
 * The check: a thread makes one node, hands it to main and exits; main releases it (the
 * block goes back to the exited thread's heap); a brand-new thread then gets exactly
 * that block as its first one (it adopts the orphaned heap, takes the block back, and
 * the now empty chunk hands out its blocks from the start again).
 */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "microcrad.h"

#include <pthread.h>

static void *make_one_node(void *address_out)
{
    *(Value **)address_out = value_create_leaf(1.0);
    return NULL;
}

static void *take_one_node(void *address_out)
{
    Value *v = value_create_leaf(2.0);
    *(Value **)address_out = v;
    value_release(v);
    return NULL;
}

int main(void)
{
    if (microcrad_build_features() & MICROCRAD_BUILD_VALGRIND) {
        printf("plain-malloc build: there is no pool to hand over; nothing to check\n");
        return check_summary();
    }
    int64_t live_at_start = microcrad_live_values();
    for (int round = 0; round < 3; round++) {
        Value *made_by_first = NULL, *taken_by_second = NULL;
        pthread_t first, second;
        CHECK(pthread_create(&first, NULL, make_one_node, &made_by_first) == 0);
        CHECK(pthread_join(first, NULL) == 0);
        CHECK(made_by_first != NULL);
        CHECK_INT(microcrad_live_values(), live_at_start + 1);
        CHECK_INT(value_release(made_by_first), MICROCRAD_OK); /* here, not on its thread */
        CHECK(pthread_create(&second, NULL, take_one_node, &taken_by_second) == 0);
        CHECK(pthread_join(second, NULL) == 0);
        CHECK(taken_by_second == made_by_first);
    }
    CHECK_INT(microcrad_live_values(), live_at_start);
    return check_summary();
}
