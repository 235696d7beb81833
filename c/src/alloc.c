/*
 * alloc.c - where nodes and temporary arrays get their memory.
 *
 * Every allocation passes through one gate that counts it and can be told to fail,
 * so tests can walk each allocation site (microcrad_fail_allocation).
 *
 * Every node comes from a pool of 64-byte blocks: a node and (with at most two
 * operands, nearly all of them) its operand pointers in one block, no malloc header,
 * and a free that only pushes onto a list. A node with more operands keeps them in an
 * array of its own (malloc), so that its header is a block like any other. Freed
 * blocks stay in the pool, so the canary of a released node can still be read while
 * its block waits for reuse, whatever its operand count: were a large node one malloc
 * block, free() could unmap it (glibc does above its mmap threshold) and a check of
 * the released pointer would fault instead of reporting MICROCRAD_ERR_RELEASED.
 *
 * The pool's design, and what each part is for:
 *
 *   - Chunks of 1 MiB, aligned to 1 MiB and taken from the system with mmap, their pages
 *     mapped at once (see map_chunk). The first block of a chunk is its header, so the
 *     chunk of any block is its address with the low 20 bits cleared: a free needs no
 *     lookup.
 *   - Heaps. Each thread that makes nodes owns one heap: its chunks and, per chunk, a
 *     free list. Only the owner touches a chunk's free list, so allocating and freeing
 *     on one thread take no lock and no atomic read-modify-write.
 *   - Blocks go back to their owner. A block freed by another thread is pushed onto
 *     its owner heap's `remote` stack (one compare-and-swap; lock-free: many threads
 *     push, only the owner takes, and it takes the whole stack at once, so there is no
 *     ABA problem). The owner takes the stack back whenever it runs out of free blocks
 *     in hand, before it asks the system for a new chunk. So memory is bounded by the
 *     nodes alive, whichever thread frees them.
 *   - Compact rebuilds. A chunk hands out fresh blocks in address order. When its last
 *     node is freed it is reset, so that it hands its blocks out in address order again.
 *     A heap allocates from its oldest chunk that has room (first fit by age, which
 *     also keeps old chunks full and lets new ones empty), and a chunk that still holds
 *     nodes has its free list put in address order when it becomes current again. A
 *     graph that is freed and built again lands in the same memory in the same order,
 *     which keeps a large graph as cheap per node as a small one. (Within the chunk a
 *     thread is allocating from, freed blocks are reused most recently freed first.)
 *   - Memory goes back to the system. microcrad_trim() unmaps the calling thread's
 *     empty chunks and those of threads that have exited; a thread that exits unmaps its
 *     empty chunks and leaves the others, with their heap, on an orphan list. A new
 *     thread adopts an orphaned heap before it makes a heap of its own, and any thread
 *     about to map a new chunk first returns the orphans' empty chunks to the system.
 *
 * The pool uses POSIX (mmap, pthread): pthread mutexes and thread-exit keys, and C11
 * atomics, are what ThreadSanitizer understands, so a TSan build keeps the pool and
 * checks its cross-thread paths.
 *
 * Where the pool would hide nodes from the tools, the library uses plain malloc, one
 * block per node, so that every leak, use after release and double release is
 * reported with its stacks:
 *   - builds for ASan, UBSan and Valgrind define MICROCRAD_PLAIN_MALLOC;
 *     there too the node is a small block and a large operand array another, so the
 *     node's block stays small (never unmapped on free) whatever its operand count;
 *   - any other build decides when it is loaded: under Valgrind (RUNNING_ON_VALGRIND),
 *     in a process with AddressSanitizer or LeakSanitizer (their runtime's interface
 *     functions are present), it allocates with malloc (microcrad_build_features then
 *     reports MICROCRAD_BUILD_VALGRIND). The environment variable MICROCRAD_NO_POOL
 *     overrides the choice: "0" keeps the pool, any other non-empty value asks for
 *     malloc.
 */
#if !defined(MICROCRAD_PLAIN_MALLOC) && !defined(_DEFAULT_SOURCE)
/* mmap's MAP_ANONYMOUS and pthreads: the rest of the library is ISO C. */
#define _DEFAULT_SOURCE 1
#endif
#include "internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#ifndef MICROCRAD_PLAIN_MALLOC
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define MC_HAVE_VALGRIND_H 1
#endif
#endif
#endif

#ifndef MICROCRAD_PLAIN_MALLOC
typedef union Block Block;
typedef struct Chunk Chunk;
typedef struct Heap Heap;
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
    Chunk *current;                     /* the chunk this thread allocates from, or NULL */
    Heap *heap;                         /* this thread's heap, or NULL until it needs one */
#endif
} ThreadState;

/*
 * initial-exec: the state sits at a fixed offset from the thread pointer, so reaching it
 * is one instruction instead of a call to __tls_get_addr on every allocation and free.
 * A library loaded with dlopen (Python's ctypes) takes such a variable from the static
 * TLS space the C library keeps in reserve for this (glibc: 512 bytes by default);
 * this state takes a few dozen.
 */
#if defined(__GNUC__) && !defined(__APPLE__)
#define MC_FAST_TLS __attribute__((tls_model("initial-exec")))
#else
#define MC_FAST_TLS
#endif
static _Thread_local ThreadState thread_state MC_FAST_TLS;

/* The calling thread's state. (An empty asm statement that hid where the pointer came
 * from used to sit here; without it, W1's 65k tree takes fewer instructions per node
 * (callgrind: build 320 instead of 323, release 173 instead of 175) and the same time
 * within noise, so it went.) */
static inline ThreadState *current_thread(void) { return &thread_state; }

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
 *
 * Measured against one shared counter updated with atomic_fetch_add (bench_nodes,
 * release build, least of 4 x 15 warm repetitions, ns per node): build 31.3 vs 37.4 and
 * release 11.2 vs 15.9 on the 50,000-node chain, 32.6 vs 38.7 and 11.5 vs 16.6 on the
 * 65k tree. The shared counter takes fewer instructions (callgrind: 315 vs 323 per
 * node to build the tree) but each locked add costs about 5 ns; the table stays.
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


/* The operands a node keeps in its own block; more go to an array of their own. */
enum { INLINE_OPERANDS = 2 };

/* The bytes of a node's own block with n operands: the node, and its operands when
 * they fit inline. */
static size_t node_bytes(uint32_t n)
{
    return sizeof(Value) + (n <= INLINE_OPERANDS ? (size_t)n * sizeof(Value *) : 0);
}

#ifndef MICROCRAD_PLAIN_MALLOC

enum {
    POOL_BLOCK = sizeof(Value) + INLINE_OPERANDS * sizeof(Value *),
    /* A reused chunk's free list is put in address order when it holds this many blocks
     * at least (see sort_free_list). */
    SORT_AT_LEAST = 256,
};
#define CHUNK_BYTES ((size_t)1 << 20)
/* Blocks per chunk that can hold nodes: the first block is the header. */
#define CHUNK_CAPACITY ((uint32_t)(CHUNK_BYTES / POOL_BLOCK - 1))

union Block {
    Block *next; /* while free: overlays `data`; the DEAD canary further in stays */
    unsigned char bytes[POOL_BLOCK];
};

/*
 * The header of a chunk, in its first block. Every field but `heap` is the owner's.
 * A chunk with room is either its thread's current chunk or in the heap's `available`
 * list; a full chunk is in no list, and is found again through the blocks freed into
 * it (the first one files it as available).
 */
struct Chunk {
    Heap *heap;          /* the owner; set when the chunk is made and never changed */
    Block *free;         /* blocks given back, handed out again before fresh ones */
    Block *fresh;        /* from here to the end: not handed out since the chunk was empty */
    Chunk *next, *prev;  /* in the owner's list of available chunks */
    uint32_t used;       /* blocks handed out and not yet back on `free` */
    uint32_t serial;     /* order of creation in the heap: the oldest chunk with room is used */
};
_Static_assert(sizeof(Chunk) <= POOL_BLOCK, "a chunk's header must fit in its first block");

/*
 * A heap: the chunks of one thread (or, after that thread exited, of nobody until a new
 * thread adopts it). `remote` is written by every thread that frees one of its blocks,
 * so it has a cache line to itself.
 */
struct Heap {
    _Alignas(64) _Atomic(Block *) remote; /* blocks freed by other threads, not yet back */
    _Alignas(64) Chunk *available;         /* chunks with room, but the current one; oldest first */
    size_t chunks;                         /* every chunk of this heap, in a list or not */
    uint32_t next_serial;
    Heap *next_orphan;                     /* in `orphans`, once its thread has exited */
};

/* ---- choosing between the pool and plain malloc, once per process ---------------- */

enum { ALLOCATOR_UNDECIDED, ALLOCATOR_POOL, ALLOCATOR_MALLOC };
static atomic_int allocator;

/* The interface functions of the ASan and LSan runtimes. Declared weak, they resolve
 * to the runtime when one is in the process (linked in, or preloaded) and to NULL
 * otherwise. */
extern void __asan_init(void) __attribute__((weak));
extern void __lsan_ignore_object(const void *p) __attribute__((weak));

/* Whether a tool that watches malloc is looking (or the user asked for malloc). The
 * answer cannot change during the life of the process, so racing callers agree. */
static int tools_watch_malloc(void)
{
    /* MICROCRAD_NO_POOL: "0" keeps the pool even under a tool (to measure the pool
     * with callgrind, say); any other non-empty value asks for malloc. */
    const char *no_pool = getenv("MICROCRAD_NO_POOL");
    if (no_pool && no_pool[0] != '\0')
        return !(no_pool[0] == '0' && no_pool[1] == '\0');
#if defined(MC_HAVE_VALGRIND_H)
    if (RUNNING_ON_VALGRIND)
        return 1;
#endif
    return __asan_init != NULL || __lsan_ignore_object != NULL;
}

static int decide_allocator(void)
{
    int choice = tools_watch_malloc() ? ALLOCATOR_MALLOC : ALLOCATOR_POOL;
    atomic_store_explicit(&allocator, choice, memory_order_relaxed);
    return choice;
}

/* Decided when the library is loaded, before any node exists: a block must be freed
 * the way it was allocated. */
__attribute__((constructor)) static void choose_allocator_at_load(void) { decide_allocator(); }

/* Only for a decision made already (a node exists): a plain load. */
static inline int nodes_use_malloc(void)
{
    return atomic_load_explicit(&allocator, memory_order_relaxed) == ALLOCATOR_MALLOC;
}

static int allocator_is_malloc(void)
{
    int choice = atomic_load_explicit(&allocator, memory_order_relaxed);
    if (choice == ALLOCATOR_UNDECIDED)
        choice = decide_allocator();
    return choice == ALLOCATOR_MALLOC;
}

int mc_pool_bypassed(void) { return allocator_is_malloc(); }

/* ---- chunks ---------------------------------------------------------------------- */

static Chunk *chunk_of(const void *block)
{
    return (Chunk *)((uintptr_t)block & ~(uintptr_t)(CHUNK_BYTES - 1));
}
static Block *first_block(Chunk *c) { return (Block *)(void *)c + 1; }
static Block *chunk_end(Chunk *c) { return first_block(c) + CHUNK_CAPACITY; }

static void list_remove(Chunk **head, Chunk *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        *head = c->next;
    if (c->next)
        c->next->prev = c->prev;
}

/* Starts an empty chunk over: its blocks are handed out in address order again. */
static void reset_chunk(Chunk *c)
{
    c->free = NULL;
    c->fresh = first_block(c);
}

/* Files a chunk that has room among the available ones, oldest first. It happens when a
 * full chunk gets its first block back or the current chunk is set aside: once per
 * chunk each time a graph is freed, against thousands of frees. */
static void file_available(Heap *h, Chunk *c)
{
    Chunk **link = &h->available, *before = NULL;
    while (*link && (*link)->serial < c->serial) {
        before = *link;
        link = &(*link)->next;
    }
    c->next = *link;
    c->prev = before;
    if (*link)
        (*link)->prev = c;
    *link = c;
}

/* Sets aside a chunk that is no thread's current chunk any more. */
static void file_chunk(Heap *h, Chunk *c)
{
    if (c->used == 0)
        reset_chunk(c);
    if (c->used < CHUNK_CAPACITY)
        file_available(h, c); /* a full chunk stays in no list */
}

/*
 * Puts the free list of a chunk that still holds nodes in address order, as it becomes
 * the current chunk again: its holes are then refilled in the order a fresh chunk hands
 * out blocks, so a graph rebuilt around long-lived nodes (parameters made before it)
 * lands where it was. One bit per block marks the free ones (2 KiB on the stack), then
 * the list is rebuilt from the bits: linear in the blocks, once per chunk picked, and
 * only for a list of SORT_AT_LEAST blocks or more.
 */
static void sort_free_list(Chunk *c)
{
    enum { WORDS = (CHUNK_CAPACITY + 63) / 64 };
    uint64_t is_free[WORDS] = {0};
    Block *first = first_block(c);
    for (Block *b = c->free; b; b = b->next) {
        size_t i = (size_t)(b - first);
        is_free[i / 64] |= (uint64_t)1 << (i % 64);
    }
    Block **link = &c->free;
    for (size_t w = 0; w < WORDS; w++) {
        for (uint64_t bits = is_free[w]; bits; bits &= bits - 1) {
            Block *b = first + w * 64 + (size_t)__builtin_ctzll(bits);
            *link = b;
            link = &b->next;
        }
    }
    *link = NULL;
}

/* Every orphaned heap's empty chunks go back to the system before a new one is mapped. */
static atomic_size_t orphan_count;
static int64_t trim_orphans(void);

static Chunk *map_chunk(Heap *h)
{
    if (atomic_load_explicit(&orphan_count, memory_order_relaxed) > 0)
        trim_orphans();
    /* Twice the size, then the unaligned ends are unmapped: an aligned chunk. */
    unsigned char *raw = mmap(NULL, 2 * CHUNK_BYTES, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    unsigned char *start = (unsigned char *)chunk_of(raw + CHUNK_BYTES - 1);
    if (start > raw)
        munmap(raw, (size_t)(start - raw));
    if (start + CHUNK_BYTES < raw + 2 * CHUNK_BYTES)
        munmap(start + CHUNK_BYTES, (size_t)(raw + 2 * CHUNK_BYTES - (start + CHUNK_BYTES)));
#if defined(MADV_POPULATE_WRITE)
    /* A chunk is there to be filled: its pages are mapped now, in one call, instead of
     * by one page fault each as nodes first touch them. W1 on fresh memory (bench.py,
     * cold): build 54 -> 46 ns per node on the chain, 65 -> 58 on the 1M tree. The cost:
     * a thread's first node commits the whole chunk (1 MiB) at once. Where the kernel
     * lacks it (Linux before 5.14) the call fails and pages fault in as before. */
    (void)madvise(start, CHUNK_BYTES, MADV_POPULATE_WRITE);
#endif
    Chunk *c = (Chunk *)(void *)start;
    c->heap = h;
    c->free = NULL;
    c->fresh = first_block(c);
    c->next = c->prev = NULL;
    c->used = 0;
    c->serial = h->next_serial++;
    h->chunks++;
    return c;
}

static void unmap_chunk(Heap *h, Chunk *c)
{
    h->chunks--;
    munmap(c, CHUNK_BYTES);
}

/* Unmaps every empty chunk of `h` (the caller owns h); returns the bytes given back. */
static int64_t release_empty_chunks(Heap *h)
{
    int64_t bytes = 0;
    for (Chunk *c = h->available, *next; c; c = next) {
        next = c->next;
        if (c->used == 0) {
            list_remove(&h->available, c);
            unmap_chunk(h, c);
            bytes += (int64_t)CHUNK_BYTES;
        }
    }
    return bytes;
}

/* ---- giving blocks back ---------------------------------------------------------- */

/* Whether an available chunk is older than the current one `c`, which should then be
 * set aside (allocation goes to the oldest chunk with room). */
static int older_available(const Heap *h, const Chunk *c)
{
    return h->available && h->available->serial < c->serial;
}

/* A chunk has just become not full, or empty: refile it. `*current` is the owner's
 * current chunk (NULL when the heap has no owner running). */
__attribute__((noinline)) static void chunk_changed(Heap *h, Chunk **current, Chunk *c)
{
    if (c != *current) {
        if (c->used == 0)
            reset_chunk(c); /* already available, in its place */
        else
            file_available(h, c); /* it was full */
    } else if (c->used != 0) {
        return; /* the current chunk has room again: nothing to file */
    } else {
        reset_chunk(c);
    }
    /* An older chunk has room now: the next allocation starts there, so that a graph
     * freed and built again takes its chunks in the same order as the first time. */
    if (*current && older_available(h, *current)) {
        file_chunk(h, *current);
        *current = NULL;
    }
}

/* Gives a block back to its chunk; the caller owns the chunk's heap. */
static inline void give_back(Heap *h, Chunk **current, Chunk *c, Block *b)
{
    b->next = c->free;
    c->free = b;
    uint32_t used = --c->used;
    if (used == 0 || used == CHUNK_CAPACITY - 1)
        chunk_changed(h, current, c);
}

/* Pushes a block onto its owner's remote stack (any thread; lock-free). */
static void give_back_remote(Heap *owner, Block *b)
{
    Block *head = atomic_load_explicit(&owner->remote, memory_order_relaxed);
    do
        b->next = head;
    while (!atomic_compare_exchange_weak_explicit(&owner->remote, &head, b, memory_order_release,
                                                  memory_order_relaxed));
}

/* Takes back every block other threads freed into `h` (the caller owns h). */
static void take_back_remote(Heap *h, Chunk **current)
{
    if (!atomic_load_explicit(&h->remote, memory_order_relaxed))
        return;
    Block *b = atomic_exchange_explicit(&h->remote, NULL, memory_order_acquire);
    while (b) {
        Block *next = b->next;
        give_back(h, current, chunk_of(b), b);
        b = next;
    }
}

/* ---- heaps, orphans and thread exit ---------------------------------------------- */

static pthread_mutex_t orphans_lock = PTHREAD_MUTEX_INITIALIZER;
static Heap *orphans; /* heaps whose thread exited while they held nodes */
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;
static int exit_key_made;

static void thread_exits(void *heap);

/* fork() while another thread holds the orphan lock would leave it locked forever in
 * the child (where that thread does not exist): the lock is taken around fork. */
static void lock_orphans(void) { pthread_mutex_lock(&orphans_lock); }
static void unlock_orphans(void) { pthread_mutex_unlock(&orphans_lock); }

static void make_exit_key(void)
{
    exit_key_made = pthread_key_create(&exit_key, thread_exits) == 0;
    pthread_atfork(lock_orphans, unlock_orphans, unlock_orphans);
}

/* An orphaned heap if there is one, else a new heap; NULL when out of memory. */
static Heap *take_heap(void)
{
    pthread_mutex_lock(&orphans_lock);
    Heap *h = orphans;
    if (h) {
        orphans = h->next_orphan;
        atomic_fetch_sub_explicit(&orphan_count, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&orphans_lock);
    if (!h) {
        h = aligned_alloc(_Alignof(Heap), sizeof(Heap));
        if (!h)
            return NULL;
        memset(h, 0, sizeof *h);
        atomic_init(&h->remote, NULL);
    }
    h->next_orphan = NULL;
    /* The thread-exit hook runs for a non-NULL value: the heap to hand over. */
    pthread_once(&exit_key_once, make_exit_key);
    if (exit_key_made)
        pthread_setspecific(exit_key, h);
    return h;
}

/* Frees a heap that has no chunk, or puts it on the orphan list. */
static void orphan_heap(Heap *h)
{
    if (h->chunks == 0) {
        free(h); /* no block of it exists, so no thread can be pushing onto `remote` */
        return;
    }
    pthread_mutex_lock(&orphans_lock);
    h->next_orphan = orphans;
    orphans = h;
    atomic_fetch_add_explicit(&orphan_count, 1, memory_order_relaxed);
    pthread_mutex_unlock(&orphans_lock);
}

/*
 * The exit hook: the heap's current chunk is filed, the blocks other threads freed are
 * taken back, the empty chunks are unmapped, and what still holds nodes is orphaned.
 * Exit-time code that runs later on this thread (another library's hook releasing
 * nodes) finds no heap: its frees go to the owners' remote stacks, and an allocation
 * takes a heap and arms the hook again.
 */
static void thread_exits(void *heap)
{
    ThreadState *t = &thread_state;
    Heap *h = heap;
    Chunk *current = t->current;
    t->current = NULL;
    t->heap = NULL;
    if (current)
        file_chunk(h, current);
    Chunk *none = NULL;
    take_back_remote(h, &none);
    release_empty_chunks(h);
    orphan_heap(h);
}

static int64_t trim_orphans(void)
{
    int64_t bytes = 0;
    pthread_mutex_lock(&orphans_lock);
    Heap **link = &orphans;
    while (*link) {
        Heap *h = *link;
        Chunk *none = NULL;
        take_back_remote(h, &none);
        bytes += release_empty_chunks(h);
        if (h->chunks == 0) {
            *link = h->next_orphan;
            atomic_fetch_sub_explicit(&orphan_count, 1, memory_order_relaxed);
            free(h);
        } else {
            link = &h->next_orphan;
        }
    }
    pthread_mutex_unlock(&orphans_lock);
    return bytes;
}

/* ---- allocating ------------------------------------------------------------------ */

/* The slow path of storage_for: the current chunk is full (or there is none). Kept out
 * of line, so that the fast path saves no registers for it. */
__attribute__((noinline)) static void *refill(ThreadState *t, uint32_t n)
{
    if (allocator_is_malloc())
        return malloc(node_bytes(n));
    Heap *h = t->heap;
    if (!h) {
        h = take_heap();
        if (!h)
            return NULL;
        t->heap = h;
    }
    /* A full current chunk is filed in no list; blocks freed into it file it again. */
    t->current = NULL;
    take_back_remote(h, &t->current);
    Chunk *c = h->available;
    if (c) {
        list_remove(&h->available, c);
        /* Ordering a few holes is not worth a pass over the chunk's bitmap. */
        uint32_t listed = CHUNK_CAPACITY - c->used - (uint32_t)(chunk_end(c) - c->fresh);
        if (listed >= SORT_AT_LEAST)
            sort_free_list(c);
    } else {
        c = map_chunk(h);
        if (!c)
            return NULL;
    }
    t->current = c;
    Block *b = c->free;
    if (b)
        c->free = b->next;
    else
        b = c->fresh++; /* a chunk with room and no free list has fresh blocks */
    c->used++;
    return b;
}

static inline void *storage_for(ThreadState *t, uint32_t n)
{
    Chunk *c = t->current;
    if (c) {
        Block *b = c->free;
        if (b) {
            c->free = b->next;
            c->used++;
            return b;
        }
        b = c->fresh;
        if (b != chunk_end(c)) {
            c->fresh = b + 1;
            c->used++;
            return b;
        }
    }
    return refill(t, n);
}

static inline void return_storage(ThreadState *t, Value *v)
{
    if (nodes_use_malloc()) {
        free(v);
        return;
    }
    Block *b = (Block *)(void *)v;
    Chunk *c = chunk_of(b);
    if (c->heap == t->heap)
        give_back(c->heap, &t->current, c, b);
    else
        give_back_remote(c->heap, b);
}

int64_t microcrad_trim(void)
{
    if (allocator_is_malloc())
        return 0;
    ThreadState *t = current_thread();
    int64_t bytes = 0;
    Heap *h = t->heap;
    if (h) {
        take_back_remote(h, &t->current);
        Chunk *c = t->current;
        if (c && c->used == 0) {
            t->current = NULL;
            unmap_chunk(h, c);
            bytes += (int64_t)CHUNK_BYTES;
        }
        bytes += release_empty_chunks(h);
    }
    return bytes + trim_orphans();
}

#else /* MICROCRAD_PLAIN_MALLOC */

int mc_pool_bypassed(void) { return 1; }

int64_t microcrad_trim(void) { return 0; }

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
    if (n > SIZE_MAX / sizeof(Value *))
        return NULL;
#endif
    ThreadState *t = current_thread();
    if (!allocation_allowed(t))
        return NULL;
    /* One pass through the gate per node: the operand array is part of the node. */
    Value **operands = NULL;
    if (n > INLINE_OPERANDS) {
        operands = malloc((size_t)n * sizeof *operands);
        if (!operands)
            return NULL;
    }
    Value *v = storage_for(t, n);
    if (!v) {
        free(operands);
        return NULL;
    }
    v->n_prevs = n;
    v->prev = operands ? operands : (Value **)(void *)(v + 1);
    count_live(t, +1);
    return v;
}

void mc_node_free(Value *v)
{
    ThreadState *t = current_thread();
    v->magic = MICROCRAD_MAGIC_DEAD;
    if (v->n_prevs > INLINE_OPERANDS)
        free(v->prev);
    count_live(t, -1);
    return_storage(t, v);
}
