/*
 * side_record.c - what only a few nodes carry: a label, a hand-made op text, a backward
 * callback (a custom op).
 *
 * A node is 48 bytes and a binary one fits a 64-byte pool block with its two operand
 * pointers; a field for these rare extras would push every node past that. So they
 * live in a side record, in a hash table keyed by the node's address, and the node
 * carries only the MC_FLAG_SIDE_RECORD bit saying whether it has one. Ordinary ops
 * never look at the table; freeing a node tests the bit, and only a node that has a
 * record pays for the lookup (node.c calls mc_side_record_drop before it frees a node).
 *
 * The table is shared by all threads and guarded by one lock. Callbacks and release
 * functions always run with the lock free: they may create and free nodes, which
 * takes the lock again.
 */
#include "internal.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct SideRecord {
    const Value *node;
    struct SideRecord *next; /* the next record of the same bucket */
    char *label;             /* NULL: none */
    char *op_text;           /* NULL: none */
    microcrad_backward_fn backward;
    void *context;
    microcrad_release_fn release;
} SideRecord;

/* Chained buckets, a power of two of them, grown when records outnumber buckets. */
static SideRecord **buckets;
static size_t bucket_mask; /* number of buckets - 1; buckets NULL while it is 0 */
static size_t record_count;
/*
 * A spin lock rather than C11's mtx_t: glibc's mtx_lock does not pass through the
 * pthread functions that ThreadSanitizer intercepts, so TSan would not see the lock
 * and would report every access it guards. Critical sections are a few loads and
 * stores (never a callback), so spinning is short.
 */
static atomic_flag table_lock = ATOMIC_FLAG_INIT;

static void lock(void)
{
    while (atomic_flag_test_and_set_explicit(&table_lock, memory_order_acquire))
        ;
}

static void unlock(void) { atomic_flag_clear_explicit(&table_lock, memory_order_release); }

/* Fibonacci hashing of the address; nodes are at least 48 bytes apart. */
static size_t bucket_of(const Value *v, size_t mask)
{
    uint64_t h = (uint64_t)(uintptr_t)v * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h >> 32) & mask;
}

/* The record of `v` (with the lock held), or NULL. */
static SideRecord *find(const Value *v)
{
    if (!buckets)
        return NULL;
    for (SideRecord *r = buckets[bucket_of(v, bucket_mask)]; r; r = r->next)
        if (r->node == v)
            return r;
    return NULL;
}

/* Doubles the buckets (64 at first). Returns 0 when memory runs out; the table is
 * then unchanged and still usable. */
static int grow_table(void)
{
    size_t count = buckets ? 2 * (bucket_mask + 1) : 64;
    if (count > SIZE_MAX / sizeof *buckets)
        return 0;
    SideRecord **bigger = mc_alloc(count * sizeof *bigger);
    if (!bigger)
        return 0;
    for (size_t i = 0; i < count; i++)
        bigger[i] = NULL;
    if (buckets) {
        for (size_t i = 0; i <= bucket_mask; i++) {
            SideRecord *r = buckets[i];
            while (r) {
                SideRecord *next = r->next;
                size_t b = bucket_of(r->node, count - 1);
                r->next = bigger[b];
                bigger[b] = r;
                r = next;
            }
        }
        mc_free(buckets);
    }
    buckets = bigger;
    bucket_mask = count - 1;
    return 1;
}

/* The record of `v`, made (and the node's flag set) if it has none. With the lock
 * held. NULL when memory runs out. */
static SideRecord *find_or_add(Value *v)
{
    SideRecord *r = find(v);
    if (r)
        return r;
    if ((!buckets || record_count > bucket_mask) && !grow_table() && !buckets)
        return NULL; /* a table that cannot grow still takes records, only slower */
    r = mc_alloc(sizeof *r);
    if (!r)
        return NULL;
    *r = (SideRecord){.node = v};
    size_t b = bucket_of(v, bucket_mask);
    r->next = buckets[b];
    buckets[b] = r;
    record_count++;
    v->flags |= MC_FLAG_SIDE_RECORD;
    return r;
}

/* Takes `v`'s record out of the table and clears the node's flag. With the lock held. */
static SideRecord *unlink_record(Value *v)
{
    if (!buckets)
        return NULL;
    SideRecord **link = &buckets[bucket_of(v, bucket_mask)];
    while (*link && (*link)->node != v)
        link = &(*link)->next;
    SideRecord *r = *link;
    if (r) {
        *link = r->next;
        record_count--;
        v->flags &= (uint16_t)~MC_FLAG_SIDE_RECORD;
    }
    return r;
}

/* Removes `v`'s record when it no longer holds anything. With the lock held. */
static void drop_if_empty(Value *v, SideRecord *r)
{
    if (!r->label && !r->op_text && !r->backward) {
        unlink_record(v);
        mc_free(r);
    }
}

/* A copy of `text` (NULL for NULL), or NULL with *failed set when memory runs out. */
static char *copy_text(const char *text, int *failed)
{
    if (!text)
        return NULL;
    size_t n = strlen(text) + 1;
    char *copy = mc_alloc(n);
    if (!copy) {
        *failed = 1;
        return NULL;
    }
    memcpy(copy, text, n);
    return copy;
}

/* Sets the text field at `offset` of `v`'s record to a copy of `text` (NULL removes it).
 * `fn` names the public function in errors. */
static int set_text(Value *v, const char *text, size_t offset, const char *fn)
{
    int status = mc_check(v, MC_KIND_VALUE, fn, 1);
    if (status != MICROCRAD_OK)
        return status;
    int failed = 0;
    char *copy = copy_text(text, &failed);
    if (failed)
        return mc_error(MICROCRAD_ERR_NOMEM, "%s: out of memory", fn);
    lock();
    SideRecord *r = copy || (v->flags & MC_FLAG_SIDE_RECORD) ? find_or_add(v) : NULL;
    if (copy && !r) {
        unlock();
        mc_free(copy);
        return mc_error(MICROCRAD_ERR_NOMEM, "%s: out of memory", fn);
    }
    char *old = NULL;
    if (r) {
        char **field = (char **)(void *)((unsigned char *)r + offset);
        old = *field;
        *field = copy;
        drop_if_empty(v, r);
    }
    unlock();
    mc_free(old);
    return MICROCRAD_OK;
}

int value_set_label(Value *v, const char *label)
{
    return set_text(v, label && *label ? label : NULL, offsetof(SideRecord, label),
                    "value_set_label");
}

int value_set_op_text(Value *v, const char *text)
{
    return set_text(v, text, offsetof(SideRecord, op_text), "value_set_op_text");
}

const char *value_label(const Value *v)
{
    if (mc_check(v, MC_KIND_VALUE, "value_label", 1) != MICROCRAD_OK)
        return NULL;
    if (!(v->flags & MC_FLAG_SIDE_RECORD))
        return "";
    lock();
    SideRecord *r = find(v);
    const char *label = r && r->label ? r->label : "";
    unlock();
    return label;
}

const char *value_op_text(const Value *v)
{
    if (mc_check(v, MC_KIND_VALUE, "value_op_text", 1) != MICROCRAD_OK)
        return NULL;
    if (!(v->flags & MC_FLAG_SIDE_RECORD))
        return NULL;
    lock();
    SideRecord *r = find(v);
    const char *text = r ? r->op_text : NULL;
    unlock();
    return text;
}

int value_set_backward(Value *v, microcrad_backward_fn backward, void *context,
                       microcrad_release_fn release)
{
    int status = mc_check(v, MC_KIND_VALUE, "value_set_backward", 1);
    if (status != MICROCRAD_OK)
        return status;
    if (v->op != MICROCRAD_OP_CUSTOM)
        return mc_error(MICROCRAD_ERR_ARGUMENT,
                        "value_set_backward: only a node made by value_create with operands "
                        "takes a backward function (this one is %s)",
                        v->op == MICROCRAD_OP_LEAF ? "a leaf" : "a built-in op with its own rule");
    lock();
    SideRecord *r = backward || (v->flags & MC_FLAG_SIDE_RECORD) ? find_or_add(v) : NULL;
    if (backward && !r) {
        unlock();
        return mc_error(MICROCRAD_ERR_NOMEM, "value_set_backward: out of memory");
    }
    void *old_context = NULL;
    microcrad_release_fn old_release = NULL;
    if (r) {
        if (r->backward) {
            old_context = r->context;
            old_release = r->release;
        }
        r->backward = backward;
        r->context = backward ? context : NULL;
        r->release = backward ? release : NULL;
        drop_if_empty(v, r);
    }
    unlock();
    if (old_release)
        old_release(old_context);
    return MICROCRAD_OK;
}

/* How deep the calling thread is in backward callbacks (the graph walks refuse to run
 * inside one: their traversal marks would mix with the outer walk's). */
static _Thread_local int callback_depth;

int mc_in_backward_callback(void) { return callback_depth > 0; }

int mc_run_backward_callback(Value *v, const char *fn)
{
    lock();
    SideRecord *r = find(v);
    microcrad_backward_fn backward = r ? r->backward : NULL;
    void *context = r ? r->context : NULL;
    unlock();
    if (!backward)
        return MICROCRAD_OK;
    callback_depth++;
    int result = backward(v, context);
    callback_depth--;
    if (result != 0)
        return mc_error(MICROCRAD_ERR_CALLBACK, "%s: a backward callback failed (it returned %d)",
                        fn, result);
    return MICROCRAD_OK;
}

void mc_side_record_drop(Value *v)
{
    lock();
    SideRecord *r = unlink_record(v);
    unlock();
    if (!r)
        return;
    mc_free(r->label);
    mc_free(r->op_text);
    microcrad_release_fn release = r->backward ? r->release : NULL;
    void *context = r->context;
    mc_free(r);
    if (release)
        release(context);
}

int mc_side_record_label(const Value *v, char **label, char **op_text)
{
    *label = *op_text = NULL;
    if (!(v->flags & MC_FLAG_SIDE_RECORD))
        return MICROCRAD_OK;
    lock();
    SideRecord *r = find(v);
    int failed = 0;
    if (r) {
        *label = copy_text(r->label, &failed);
        *op_text = copy_text(r->op_text, &failed);
    }
    unlock();
    if (failed) {
        mc_free(*label);
        mc_free(*op_text);
        *label = *op_text = NULL;
        return MICROCRAD_ERR_NOMEM;
    }
    return MICROCRAD_OK;
}
