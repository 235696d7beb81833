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

#ifndef MICROCRAD_PLAIN_MALLOC
typedef union Block Block;
#endif

/*
 * Everything the allocator keeps per thread, in one thread-local object. In a shared
 * library each access to a thread-local variable can cost a call to the dynamic
 * linker's __tls_get_addr; one object, whose address each function takes once, pays
 * that once per allocation or free instead of once per variable.
 *
 * The allocation counter and the failure countdown belong to the calling thread: a test
 * walks the allocation sites of its own calls, and the hot path pays no atomic
 * read-modify-write for a feature only tests use.
 */
typedef struct ThreadState {
    int64_t allocation_count;
    int64_t fail_countdown;             /* allocations left before one fails; 0: none */
    atomic_int_least64_t *live_slot;    /* see count_live; NULL until first used */
#ifndef MICROCRAD_PLAIN_MALLOC
    Block *free_blocks;                 /* this thread's free pool blocks */
    uint32_t chunk_blocks;              /* the size of this thread's next chunk */
    int exit_hook_set;
#endif
} ThreadState;

static _Thread_local ThreadState thread_state;

/*
 * The calling thread's state. The empty asm statement hides where the pointer came
 * from: without it the optimiser treats the address as a constant and recomputes it,
 * with another call to __tls_get_addr, at each use.
 */
static inline ThreadState *current_thread(void)
{
    ThreadState *t = &thread_state;
#if defined(__GNUC__)
    __asm__("" : "+r"(t));
#endif
    return t;
}

/* The gate every allocation passes: counts it and says whether it may proceed. */
static int allocation_allowed(ThreadState *t)
{
    t->allocation_count++;
    if (t->fail_countdown == 0)
        return 1;
    return --t->fail_countdown != 0; /* only the allocation that reaches 0 fails */
}

int microcrad_fail_allocation(int64_t n)
{
    if (n < 0)
        return mc_error(MICROCRAD_ERR_ARGUMENT,
                        "microcrad_fail_allocation: n must be >= 0, got %lld", (long long)n);
    thread_state.fail_countdown = n;
    return MICROCRAD_OK;
}

int64_t microcrad_allocation_count(void) { return thread_state.allocation_count; }

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
static void count_live(ThreadState *t, int64_t delta)
{
    atomic_int_least64_t *slot = t->live_slot;
    if (!slot) {
        int index = atomic_fetch_add_explicit(&slots_claimed, 1, memory_order_relaxed);
        slot = t->live_slot = index < LIVE_SLOTS ? &live_slots[index] : &live_overflow;
    }
    if (slot == &live_overflow) {
        atomic_fetch_add_explicit(&live_overflow, delta, memory_order_relaxed);
        return;
    }
    /* Only this thread writes its slot: a load and a store, no locked instruction. */
    int64_t current = atomic_load_explicit(slot, memory_order_relaxed);
    atomic_store_explicit(slot, current + delta, memory_order_relaxed);
}

int64_t microcrad_live_values(void)
{
    int64_t total = atomic_load_explicit(&live_overflow, memory_order_relaxed);
    for (int i = 0; i < LIVE_SLOTS; i++)
        total += atomic_load_explicit(&live_slots[i], memory_order_relaxed);
    return total;
}

void *mc_alloc(size_t bytes) { return allocation_allowed(&thread_state) ? malloc(bytes) : NULL; }

void *mc_realloc(void *p, size_t bytes)
{
    return allocation_allowed(&thread_state) ? realloc(p, bytes) : NULL;
}

void mc_free(void *p) { free(p); }

static size_t node_bytes(uint32_t n) { return sizeof(Value) + (size_t)n * sizeof(Value *); }

#ifndef MICROCRAD_PLAIN_MALLOC

enum { POOL_OPERANDS = 2, POOL_BLOCK = sizeof(Value) + POOL_OPERANDS * sizeof(Value *) };

/*
 * Chunk sizes, in blocks: a thread's first chunk is small (64 KiB), and each next one
 * twice the last, up to 2 MiB, so that a program with a few nodes stays small while a
 * large graph takes few, large allocations. Chunks are 64-byte aligned, so that on
 * 64-bit platforms, where a block is 64 bytes, a node never straddles two cache lines.
 *
 * Transparent huge pages (madvise MADV_HUGEPAGE) were tried for the large chunks: they
 * make first touching fresh memory several times cheaper when the kernel has huge
 * pages at hand, and many times dearer when it must compact memory to find one, which
 * is the usual state of a machine that has been up for a while. Predictable costs won.
 */
enum { FIRST_CHUNK_BLOCKS = 1024, LARGEST_CHUNK_BLOCKS = 32768, BLOCK_ALIGN = 64 };

union Block {
    struct {
        union Block *next_free; /* while on a free list */
        union Block *next_list; /* in a list's first block, while the list is an orphan */
    } link;
    unsigned char bytes[POOL_BLOCK]; /* while holding a node */
    max_align_t align_;
};

/* A chunk's first block holds this header; the others hold nodes. */
typedef struct Chunk {
    struct Chunk *next;
} Chunk;

/* Every chunk ever made: only ever pushed, so a CAS push has no ABA problem. */
static _Atomic(Chunk *) chunks;

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

static void hand_over_free_list(void *list_of_exiting_thread)
{
    Block *list = *(Block **)list_of_exiting_thread;
    /* Later exit-time code on this thread (another library's hook releasing nodes)
     * must start a new list, and arm the hook again, rather than use this one. */
    *(Block **)list_of_exiting_thread = NULL;
    thread_state.exit_hook_set = 0;
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
static void ensure_exit_hook(ThreadState *t)
{
    if (t->exit_hook_set)
        return;
    call_once(&pool_setup_once, setup_pool);
    /* The hook runs only for a non-NULL value: the address of this thread's list. */
    t->exit_hook_set = tss_set(exit_hook, &t->free_blocks) == thrd_success;
}

/* Gives the calling thread an orphaned list, if any. */
static int adopt_orphans(ThreadState *t)
{
    mtx_lock(&orphans_lock);
    Block *list = orphans;
    if (list)
        orphans = list->link.next_list;
    mtx_unlock(&orphans_lock);
    t->free_blocks = list;
    return list != NULL;
}

/* Memory for a chunk of `blocks` blocks (its header included). aligned_alloc wants a
 * size that is a multiple of the alignment: 1024 blocks and its multiples are. */
static void *new_chunk(size_t blocks) { return aligned_alloc(BLOCK_ALIGN, blocks * POOL_BLOCK); }

/* Gives the calling thread a fresh chunk's worth of free blocks. */
static int grow_pool(ThreadState *t)
{
    size_t blocks = t->chunk_blocks ? t->chunk_blocks : FIRST_CHUNK_BLOCKS;
    Block *first = new_chunk(blocks);
    if (!first)
        return 0;
    if (blocks < LARGEST_CHUNK_BLOCKS)
        t->chunk_blocks = (uint32_t)(2 * blocks);
    else
        t->chunk_blocks = LARGEST_CHUNK_BLOCKS;
    /* Block 0 is the header; blocks 1 .. blocks-1 are threaded in address order, so
     * that a fresh chunk hands out consecutive memory. */
    for (size_t i = 1; i < blocks - 1; i++)
        first[i].link.next_free = &first[i + 1];
    first[blocks - 1].link.next_free = NULL;
    t->free_blocks = &first[1];
    Chunk *chunk = (Chunk *)(void *)first;
    chunk->next = atomic_load_explicit(&chunks, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&chunks, &chunk->next, chunk,
                                                  memory_order_release, memory_order_relaxed))
        ;
    return 1;
}

static void *storage_for(ThreadState *t, uint32_t n)
{
    if (n > POOL_OPERANDS)
        return malloc(node_bytes(n));
    Block *b = t->free_blocks;
    if (!b) {
        ensure_exit_hook(t);
        if (!adopt_orphans(t) && !grow_pool(t))
            return NULL;
        b = t->free_blocks;
    }
    t->free_blocks = b->link.next_free;
    return b;
}

static void return_storage(ThreadState *t, Value *v)
{
    if (v->n_prevs > POOL_OPERANDS) {
        free(v);
        return;
    }
    if (!t->free_blocks)
        ensure_exit_hook(t);
    Block *b = (Block *)(void *)v;
    /* The links overlay `data` and `grad`; the DEAD canary further in stays readable. */
    b->link.next_free = t->free_blocks;
    t->free_blocks = b;
}

#else /* MICROCRAD_PLAIN_MALLOC */

static void *storage_for(ThreadState *t, uint32_t n)
{
    (void)t;
    return malloc(node_bytes(n));
}
static void return_storage(ThreadState *t, Value *v)
{
    (void)t;
    free(v);
}

#endif

Value *mc_node_alloc(uint32_t n)
{
#if SIZE_MAX <= UINT32_MAX
    /* Where size_t is 32 bits, a huge operand count would wrap the size computation. */
    if (n > (SIZE_MAX - sizeof(Value)) / sizeof(Value *))
        return NULL;
#endif
    ThreadState *t = current_thread();
    if (!allocation_allowed(t))
        return NULL;
    Value *v = storage_for(t, n);
    if (v)
        count_live(t, +1);
    return v;
}

void mc_node_free(Value *v)
{
    ThreadState *t = current_thread();
    v->magic = MICROCRAD_MAGIC_DEAD;
    count_live(t, -1);
    return_storage(t, v);
}
