/*
 * node.c - creating nodes and reference counting.
 */
#include "internal.h"

#include <assert.h>
#include <string.h>

/*
 * Reference counts are plain uint32_t fields in the public struct (so that the header
 * has no _Atomic and C++ can include it, as GLib does with its counts); every access
 * goes through these GCC/Clang atomic builtins, which ThreadSanitizer understands.
 */
#define COUNT_LOAD(v, order) __atomic_load_n(&(v)->ref_count, order)
#define COUNT_STORE(v, n, order) __atomic_store_n(&(v)->ref_count, (n), order)

static_assert(sizeof(Value *) <= sizeof(double),
              "value_release chains dead nodes through their data field");

/* Adds a reference unless the count is saturated; returns whether it did. */
static int try_retain(Value *v)
{
    uint32_t count = COUNT_LOAD(v, __ATOMIC_RELAXED);
    do {
        if (count == UINT32_MAX)
            return 0;
    } while (!__atomic_compare_exchange_n(&v->ref_count, &count, count + 1, 1, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    return 1;
}

/*
 * Drops a reference; returns whether it was the last. acq_rel: the release half
 * publishes this thread's writes to the node, the acquire half makes the thread that
 * frees it see every other thread's writes before it frees.
 *
 * When the count already reads 1, the reference being dropped is the only one, so no
 * other thread can legitimately touch the count any more (taking a reference needs
 * one, directly or through a node that holds it): the node is freed without the
 * locked read-modify-write. The acquire load still orders the other threads' earlier
 * releases before the free.
 */
static int drop_reference(Value *v)
{
    if (COUNT_LOAD(v, __ATOMIC_ACQUIRE) == 1)
        return 1;
    return __atomic_fetch_sub(&v->ref_count, 1, __ATOMIC_ACQ_REL) == 1;
}

/* The failure of making node `v` when the count of its operand retained[n_retained]
 * is at its maximum: gives back the n_retained operands retained before it, frees `v`
 * and records the error, naming that operand (1-based). */
static Value *operand_overflow(const char *fn, Value *v, Value *const *retained,
                              uint32_t n_retained)
{
    for (uint32_t i = 0; i < n_retained; i++)
        drop_reference(retained[i]); /* cannot reach 0: the caller holds one */
    mc_node_free(v);
    mc_error(MICROCRAD_ERR_OVERFLOW, "%s: reference count of operand %u would overflow", fn,
             (unsigned)n_retained + 1);
    return NULL;
}

/* Everything of a new node but its operands and data: one reference (the creator's),
 * LIVE, no marks. */
static inline void set_header(Value *v, microcrad_op op, double param)
{
    v->grad = 0.0;
    v->param = param;
    COUNT_STORE(v, 1, __ATOMIC_RELAXED); /* not yet seen by any other thread */
    v->magic = MICROCRAD_MAGIC_LIVE;
    v->op = (uint16_t)op;
    v->flags = 0;
}

Value *mc_node_make(const char *fn, microcrad_op op, double data, double param, uint32_t n,
                    Value *const *operands)
{
    for (uint32_t i = 0; i < n; i++)
        if (mc_check(operands[i], MC_KIND_VALUE, fn, (int)i + 1) != MICROCRAD_OK)
            return NULL;

    Value *v = mc_node_alloc(n);
    if (!v) {
        mc_error(MICROCRAD_ERR_NOMEM, "%s: out of memory", fn);
        return NULL;
    }
    /* mc_node_alloc set n_prevs and prev (the operand slots, inline or an array). */
    for (uint32_t i = 0; i < n; i++)
        if (!try_retain(operands[i]))
            return operand_overflow(fn, v, operands, i);
    set_header(v, op, param);
    if (n > 0)
        memcpy(v->prev, operands, n * sizeof *operands);
    const OpRule *rule = mc_rule((uint16_t)op);
    v->data = rule->forward ? rule->forward(v) : data;
    return v;
}

/* A scope is open: the operands are checked first (a call that fails on its arguments
 * takes no room and allocates nothing), then room is made for the result, so that
 * handing it out cannot fail. Kept out of line, so that mc_node_new without a scope is a load, a branch and a
 * tail call. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static Value *scoped_node_new(microcrad_scope *scope, const char *fn, microcrad_op op,
                              double data, double param, uint32_t n, Value *const *operands)
{
    for (uint32_t i = 0; i < n; i++)
        if (mc_check(operands[i], MC_KIND_VALUE, fn, (int)i + 1) != MICROCRAD_OK)
            return NULL;
    if (mc_scope_make_room(scope, 1, fn) != MICROCRAD_OK)
        return NULL;
    Value *v = mc_node_make(fn, op, data, param, n, operands);
    if (v)
        mc_scope_record(scope, v);
    return v;
}

/* The price of scopes to an op when none is open: one thread-local load and a branch. */
Value *mc_node_new(const char *fn, microcrad_op op, double data, double param, uint32_t n,
                   Value *const *operands)
{
    microcrad_scope *scope = mc_innermost_scope;
    if (scope)
        return scoped_node_new(scope, fn, op, data, param, n, operands);
    return mc_node_make(fn, op, data, param, n, operands);
}

/*
 * mc_node_new for a two-operand op: the path of nearly every node a program makes.
 * Anything out of the ordinary (a scope open, an operand that is not a live Value)
 * goes the general way, which reports it; otherwise the same work, written for two:
 * no loops over the operands, no copy of an operand array, one check each.
 * Measured with callgrind on W1's 65k tree (release build), build phase: 237
 * instructions per node through mc_node_new, 173 through this.
 */
Value *mc_binary_new(const char *fn, microcrad_op op, Value *a, Value *b)
{
    if (mc_innermost_scope || !mc_is_live(a, MC_MAGIC_VALUE) || !mc_is_live(b, MC_MAGIC_VALUE)) {
        Value *operands[2] = {a, b};
        return mc_node_new(fn, op, 0.0, 0.0, 2, operands);
    }
    Value *v = mc_node_alloc(2);
    if (!v) {
        mc_error(MICROCRAD_ERR_NOMEM, "%s: out of memory", fn);
        return NULL;
    }
    v->prev[0] = a;
    v->prev[1] = b;
    if (!try_retain(a))
        return operand_overflow(fn, v, v->prev, 0);
    if (!try_retain(b))
        return operand_overflow(fn, v, v->prev, 1);
    set_header(v, op, 0.0);
    v->data = mc_rule((uint16_t)op)->forward(v);
    return v;
}

Value *value_create(double data, int32_t n_prevs, Value **prev)
{
    if (n_prevs < 0) {
        mc_error(MICROCRAD_ERR_ARGUMENT, "value_create: n_prevs must be >= 0, got %ld",
                 (long)n_prevs);
        return NULL;
    }
    if (n_prevs > 0 && !prev) {
        mc_error(MICROCRAD_ERR_NULL, "value_create: prev is NULL but n_prevs is %ld",
                 (long)n_prevs);
        return NULL;
    }
    microcrad_op op = n_prevs == 0 ? MICROCRAD_OP_LEAF : MICROCRAD_OP_CUSTOM;
    return mc_node_new("value_create", op, data, 0.0, (uint32_t)n_prevs, prev);
}

Value *value_create_leaf(double data)
{
    return mc_node_new("value_create_leaf", MICROCRAD_OP_LEAF, data, 0.0, 0, NULL);
}

int mc_retain_quietly(Value *v) { return try_retain(v); }

int value_retain(Value *v)
{
    int status = mc_check(v, MC_KIND_VALUE, "value_retain", 1);
    if (status != MICROCRAD_OK)
        return status;
    if (!try_retain(v))
        return mc_error(MICROCRAD_ERR_OVERFLOW, "value_retain: reference count is at its maximum");
    return MICROCRAD_OK;
}

/* While a node waits to be freed its data is dead, so it holds the list link. This is
 * CPython's "trashcan": the list of pending nodes costs no memory and no recursion. */
static void set_next_pending(Value *v, Value *next) { memcpy(&v->data, &next, sizeof next); }

static Value *next_pending(const Value *v)
{
    Value *next;
    memcpy(&next, &v->data, sizeof next);
    return next;
}

/* Frees `first`, whose count just reached zero, and every operand that it held the
 * last reference to, transitively. */
static void free_unreferenced(Value *first)
{
    set_next_pending(first, NULL);
    Value *pending = first;
    while (pending) {
        Value *v = pending;
        pending = next_pending(v);
        /* A label, op text or callback goes first, while the node still holds its
         * operands: a callback's context (a Python closure) may hold references to
         * them, and giving those back must not free the operands from inside this
         * loop's caller, recursively, once per level of a deep graph. */
        if (v->flags & MC_FLAG_SIDE_RECORD)
            mc_side_record_drop(v);
        for (uint32_t i = 0; i < v->n_prevs; i++) {
            Value *operand = v->prev[i];
            if (drop_reference(operand)) {
                set_next_pending(operand, pending);
                pending = operand;
            }
        }
        mc_node_free(v);
    }
}

int value_release(Value *v)
{
    if (!v)
        return MICROCRAD_OK; /* like free(NULL): cleanup code need not test first */
    int status = mc_check(v, MC_KIND_VALUE, "value_release", 1);
    if (status != MICROCRAD_OK)
        return status;
    if (drop_reference(v))
        free_unreferenced(v);
    return MICROCRAD_OK;
}

uint32_t value_ref_count(const Value *v)
{
    if (mc_check(v, MC_KIND_VALUE, "value_ref_count", 1) != MICROCRAD_OK)
        return 0;
    return COUNT_LOAD(v, __ATOMIC_RELAXED);
}

/*
 * The leaf for c and the op node over it in one call. The caller's reference to the
 * leaf is never handed out, so instead of being given back with value_release (an
 * atomic read-modify-write) it is simply dropped before anyone else can see the leaf.
 */
Value *mc_binary_scalar(const char *fn, microcrad_op op, Value *a, double c, int constant_first)
{
    if (mc_check(a, MC_KIND_VALUE, fn, constant_first ? 2 : 1) != MICROCRAD_OK ||
        mc_results_reserve(1, fn) != MICROCRAD_OK)
        return NULL;
    Value *leaf = mc_node_make(fn, MICROCRAD_OP_LEAF, c, 0.0, 0, NULL);
    if (!leaf)
        return NULL;
    Value *operands[2] = {constant_first ? leaf : a, constant_first ? a : leaf};
    Value *v = mc_node_make(fn, op, 0.0, 0.0, 2, operands);
    if (!v) {
        /* The error (memory, or a's count at its maximum) is recorded; freeing the
         * leaf, live and held by nobody else, records nothing. */
        if (drop_reference(leaf))
            free_unreferenced(leaf);
        return NULL;
    }
    mc_release_fresh(leaf);
    return mc_result(v);
}

void mc_release_fresh(Value *v)
{
    /* No other thread can know `v` yet, so the count is not contended: a plain store
     * takes it from 2 (the creator's and the holder's) to 1 (the holder's). */
    COUNT_STORE(v, 1, __ATOMIC_RELAXED);
}

/*
 * Batched releases: each entry exactly as value_release treats it (NULL skipped, a bad
 * entry reported and left alone, a count reaching zero frees the node), except that a
 * bad entry is reported under this function's name. Each entry is checked once.
 */
int value_release_many(int32_t n, Value *const *nodes)
{
    if (n < 0)
        return mc_error(MICROCRAD_ERR_ARGUMENT, "value_release_many: n must be >= 0, got %ld",
                        (long)n);
    if (n > 0 && !nodes)
        return mc_error(MICROCRAD_ERR_NULL, "value_release_many: nodes is NULL with n = %ld",
                        (long)n);
    int status = MICROCRAD_OK;
    for (int32_t i = 0; i < n; i++) {
        Value *v = nodes[i];
        if (!v)
            continue;
        if (!mc_is_live(v, MC_MAGIC_VALUE)) {
            /* Left alone, as value_release would; the rest are still the caller's
             * references to give back. The first bad entry is the one reported. */
            if (status == MICROCRAD_OK)
                status = mc_check_failed(v, MC_KIND_VALUE, "value_release_many", 2, "nodes", i);
            continue;
        }
        if (drop_reference(v))
            free_unreferenced(v);
    }
    return status;
}
