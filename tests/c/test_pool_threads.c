/*
 * test_pool_threads.c - a thread that exits hands its free pool blocks to the others.
 *
 * Without the hand-over, memory freed on short-lived threads (Python threads calling
 * through ctypes, worker pools) would be stranded and the process would grow without
 * bound. The check: a node freed on a thread that has since exited is the first block
 * a brand-new thread gets (each thread's list is a stack, and a thread with an empty
 * list adopts the most recently orphaned one before carving a new chunk).
 */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "microcrad.h"

#include <pthread.h>

static void *free_one_node(void *address_out)
{
    Value *v = value_create_leaf(1.0);
    *(Value **)address_out = v;
    value_release(v);
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
        Value *freed_by_first = NULL, *taken_by_second = NULL;
        pthread_t first, second;
        CHECK(pthread_create(&first, NULL, free_one_node, &freed_by_first) == 0);
        CHECK(pthread_join(first, NULL) == 0);
        CHECK(pthread_create(&second, NULL, take_one_node, &taken_by_second) == 0);
        CHECK(pthread_join(second, NULL) == 0);
        CHECK(freed_by_first != NULL);
        CHECK(taken_by_second == freed_by_first);
    }
    CHECK_INT(microcrad_live_values(), live_at_start);
    return check_summary();
}
