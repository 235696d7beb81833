/*
 * alloc.c - where nodes and temporary arrays get their memory.
 *
 * Every allocation passes through one gate that counts it and can be told to fail,
 * so tests can walk each allocation site (microcrad_fail_allocation).
 *
 * Nodes with at most two operands (nearly all of them) come from a pool of 64-byte
 * blocks: a node and its operand pointers in one block, no malloc header, and a free
 * that only pushes onto a list. Freed blocks stay ours, so the canary of a released
 * node can still be read. Free lists are per thread, so the pool needs no lock; a
 * block freed on another thread simply joins that thread's list, and a thread that
 * exits hands its list over to the others. Chunks are never
 * returned to the system (like CPython's arenas) and stay reachable from `chunks`,
 * so leak checkers do not count them.
 *
 * Builds for sanitizers and Valgrind define MICROCRAD_PLAIN_MALLOC: every node is then
 * its own malloc block and every free a real free, so those tools see each
 * use-after-free, double free and leak.
 */
#include "internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#ifndef MICROCRAD_PLAIN_MALLOC
#include <threads.h>
#endif

/*
 * The allocation counter and the failure countdown belong to the calling thread: a
 * test walks the allocation sites of its own calls, and the hot path pays no atomic
 * read-modify-write for a feature only tests use.
 */
static _Thread_local int64_t allocation_count;
static _Thread_local int64_t fail_countdown; /* allocations left before one fails; 0: none */

/* The gate every allocation passes: counts it and says whether it may proceed. */
static int allocation_allowed(void)
{
    allocation_count++;
    if (fail_countdown == 0)
        return 1;
    return --fail_countdown != 0; /* only the allocation that reaches 0 fails */
}

int microcrad_fail_allocation(int64_t n)
{
    if (n < 0)
        return mc_error(MICROCRAD_ERR_ARGUMENT,
                        "microcrad_fail_allocation: n must be >= 0, got %lld", (long long)n);
    fail_countdown = n;
    return MICROCRAD_OK;
}

int64_t microcrad_allocation_count(void) { return allocation_count; }

/*
 * The live-node count, kept per thread so that creating and freeing a node costs no
 * atomic read-modify-write (5 ns each on a typical x86 core, more than the rest of
 * the bookkeeping). Each thread claims one slot of a fixed table the first time it
 * creates or frees a node and then is the only writer of that slot; a reader sums
 * every slot. A node created on one thread and freed on another adds +1 to one slot
 * and -1 to the other, so the sum stays exact. Slots are static storage: claiming one
 * never allocates, which keeps value_release allocation-free. Threads beyond the table
 * share one atomic overflow counter.
 */
enum { LIVE_SLOTS = 256 };
static atomic_int_least64_t live_slots[LIVE_SLOTS];
static atomic_int slots_claimed;
static atomic_int_least64_t live_overflow;
static _Thread_local atomic_int_least64_t *my_live_slot;

static void count_live(int64_t delta)
{
    if (!my_live_slot) {
        int slot = atomic_fetch_add_explicit(&slots_claimed, 1, memory_order_relaxed);
        my_live_slot = slot < LIVE_SLOTS ? &live_slots[slot] : &live_overflow;
    }
    if (my_live_slot == &live_overflow) {
        atomic_fetch_add_explicit(&live_overflow, delta, memory_order_relaxed);
        return;
    }
    /* Only this thread writes its slot: a load and a store, no locked instruction. */
    int64_t current = atomic_load_explicit(my_live_slot, memory_order_relaxed);
    atomic_store_explicit(my_live_slot, current + delta, memory_order_relaxed);
}

int64_t microcrad_live_values(void)
{
    int64_t total = atomic_load_explicit(&live_overflow, memory_order_relaxed);
    for (int i = 0; i < LIVE_SLOTS; i++)
        total += atomic_load_explicit(&live_slots[i], memory_order_relaxed);
    return total;
}

void *mc_alloc(size_t bytes) { return allocation_allowed() ? malloc(bytes) : NULL; }

void *mc_realloc(void *p, size_t bytes) { return allocation_allowed() ? realloc(p, bytes) : NULL; }

void mc_free(void *p) { free(p); }

static size_t node_bytes(uint32_t n) { return sizeof(Value) + (size_t)n * sizeof(Value *); }

#ifndef MICROCRAD_PLAIN_MALLOC

enum { POOL_OPERANDS = 2, POOL_BLOCK = sizeof(Value) + POOL_OPERANDS * sizeof(Value *),
       CHUNK_BLOCKS = 1024 };

typedef union Block {
    struct {
        union Block *next_free; /* while on a free list */
        union Block *next_list; /* in a list's first block, while the list is an orphan */
    } link;
    unsigned char bytes[POOL_BLOCK]; /* while holding a node */
    max_align_t align_;
} Block;

typedef struct Chunk {
    struct Chunk *next;
    Block blocks[CHUNK_BLOCKS];
} Chunk;

/* Every chunk ever made: only ever pushed, so a CAS push has no ABA problem. */
static _Atomic(Chunk *) chunks;
static _Thread_local Block *free_blocks;

/*
 * When a thread exits, its free list would be lost (and a program that frees nodes on
 * short-lived threads would grow without bound). So each thread that touches the
 * pool registers a thread-exit hook that hands its list over to `orphans`, a stack of
 * whole lists under a lock, which any thread takes from before it carves a new chunk.
 * Both the hook and the lock are off the hot path: they run only when a thread's list
 * is empty or the thread ends.
 */
static Block *orphans;
static mtx_t orphans_lock;
static tss_t exit_hook;
static once_flag pool_setup_once = ONCE_FLAG_INIT;
static _Thread_local int exit_hook_set;

static void hand_over_free_list(void *list_of_exiting_thread)
{
    Block *list = *(Block **)list_of_exiting_thread;
    /* Later exit-time code on this thread (another library's hook releasing nodes)
     * must start a new list, and arm the hook again, rather than use this one. */
    *(Block **)list_of_exiting_thread = NULL;
    exit_hook_set = 0;
    if (!list)
        return;
    mtx_lock(&orphans_lock);
    list->link.next_list = orphans;
    orphans = list;
    mtx_unlock(&orphans_lock);
}

static void setup_pool(void)
{
    mtx_init(&orphans_lock, mtx_plain);
    tss_create(&exit_hook, hand_over_free_list);
}

/* Called whenever the calling thread's free list is empty, so before it can hold
 * anything the exit hook would need to save. */
static void ensure_exit_hook(void)
{
    if (exit_hook_set)
        return;
    call_once(&pool_setup_once, setup_pool);
    /* The hook runs only for a non-NULL value: the address of this thread's list. */
    exit_hook_set = tss_set(exit_hook, &free_blocks) == thrd_success;
}

/* Gives the calling thread an orphaned list, if any. */
static int adopt_orphans(void)
{
    mtx_lock(&orphans_lock);
    Block *list = orphans;
    if (list)
        orphans = list->link.next_list;
    mtx_unlock(&orphans_lock);
    free_blocks = list;
    return list != NULL;
}

/* Gives the calling thread a fresh chunk's worth of free blocks. */
static int grow_pool(void)
{
    Chunk *chunk = malloc(sizeof *chunk);
    if (!chunk)
        return 0;
    for (int i = 0; i < CHUNK_BLOCKS - 1; i++)
        chunk->blocks[i].link.next_free = &chunk->blocks[i + 1];
    chunk->blocks[CHUNK_BLOCKS - 1].link.next_free = NULL;
    free_blocks = &chunk->blocks[0];
    chunk->next = atomic_load_explicit(&chunks, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&chunks, &chunk->next, chunk,
                                                  memory_order_release, memory_order_relaxed))
        ;
    return 1;
}

static void *storage_for(uint32_t n)
{
    if (n > POOL_OPERANDS)
        return malloc(node_bytes(n));
    if (!free_blocks) {
        ensure_exit_hook();
        if (!adopt_orphans() && !grow_pool())
            return NULL;
    }
    Block *b = free_blocks;
    free_blocks = b->link.next_free;
    return b;
}

static void return_storage(Value *v)
{
    if (v->n_prevs > POOL_OPERANDS) {
        free(v);
        return;
    }
    if (!free_blocks)
        ensure_exit_hook();
    Block *b = (Block *)(void *)v;
    /* The links overlay `data` and `grad`; the DEAD canary further in stays readable. */
    b->link.next_free = free_blocks;
    free_blocks = b;
}

#else /* MICROCRAD_PLAIN_MALLOC */

static void *storage_for(uint32_t n) { return malloc(node_bytes(n)); }
static void return_storage(Value *v) { free(v); }

#endif

Value *mc_node_alloc(uint32_t n)
{
#if SIZE_MAX <= UINT32_MAX
    /* Where size_t is 32 bits, a huge operand count would wrap the size computation. */
    if (n > (SIZE_MAX - sizeof(Value)) / sizeof(Value *))
        return NULL;
#endif
    if (!allocation_allowed())
        return NULL;
    Value *v = storage_for(n);
    if (v)
        count_live(+1);
    return v;
}

void mc_node_free(Value *v)
{
    v->magic = MICROCRAD_MAGIC_DEAD;
    count_live(-1);
    return_storage(v);
}
