/*
 * scope.c - scopes (autorelease pools): where the references that library functions
 * hand out go while a scope is open on the calling thread.
 *
 * Every result passes through mc_result(), the one point where a new reference is
 * handed out: to the caller when no scope is open, or else to the innermost scope.
 * mc_node_new() calls it, so an op built on mc_node_new is covered without further
 * thought; functions that build several nodes make them with mc_node_make() (which
 * hands nothing out) and pass only their results to mc_result().
 *
 * A scope records references in chunks that double in size, so recording is a store
 * and an increment, and a scope over millions of nodes takes a few large allocations.
 * Room is reserved before a result is made (mc_results_reserve), so that handing it
 * out cannot fail: an allocation failure is reported before anything is built.
 */
#include "internal.h"

#include <stdint.h>

/* A chunk of recorded references; the newest chunk links to the older ones. */
typedef struct ScopeChunk {
    struct ScopeChunk *older;
    size_t len; /* items in use (the newest chunk's count lives in scope->next) */
    size_t cap;
    Value *items[];
} ScopeChunk;

struct microcrad_scope {
    McHandle handle;        /* MC_MAGIC_SCOPE while open: the scope functions find a scope by
                             * address, but a scope passed where another kind is expected
                             * is refused by its canary (see check.c) */
    microcrad_scope *outer; /* the scope that was innermost when this one opened */
    ScopeChunk *chunk;      /* the newest chunk, or NULL before the first result */
    Value **next, **end;    /* free slots of the newest chunk */
    int64_t size;           /* references recorded in the older chunks */
};

/* Chunk capacities, in references: the first is small (a scope around a few ops stays
 * cheap), each next one twice the last, up to 64 Ki references (512 KiB). */
enum { FIRST_CHUNK = 64, LARGEST_CHUNK = 65536 };

_Thread_local microcrad_scope *mc_innermost_scope MC_TLS_MODEL;

/* Adds a chunk with room for at least `n` more references. */
static int add_chunk(microcrad_scope *scope, size_t n, const char *fn)
{
    size_t cap = FIRST_CHUNK;
    if (scope->chunk) {
        scope->chunk->len = (size_t)(scope->next - scope->chunk->items);
        cap = scope->chunk->cap < LARGEST_CHUNK ? 2 * scope->chunk->cap : LARGEST_CHUNK;
    }
    if (cap < n)
        cap = n;
    ScopeChunk *chunk = mc_alloc_flexible(fn, sizeof *chunk, cap, sizeof chunk->items[0]);
    if (!chunk)
        return MICROCRAD_ERR_NOMEM;
    if (scope->chunk)
        scope->size += (int64_t)scope->chunk->len;
    chunk->older = scope->chunk;
    chunk->len = 0;
    chunk->cap = cap;
    scope->chunk = chunk;
    scope->next = chunk->items;
    scope->end = chunk->items + cap;
    return MICROCRAD_OK;
}

int mc_scope_make_room(microcrad_scope *scope, size_t n, const char *fn)
{
    if (scope->chunk && (size_t)(scope->end - scope->next) >= n)
        return MICROCRAD_OK;
    return add_chunk(scope, n, fn);
}

void mc_scope_record(microcrad_scope *scope, Value *v)
{
    /* Room was made beforehand (mc_results_reserve), so this cannot fail. */
    *scope->next++ = v;
}

microcrad_scope *microcrad_scope_begin(void)
{
    microcrad_scope *scope = mc_alloc(sizeof *scope);
    if (!scope) {
        mc_error(MICROCRAD_ERR_NOMEM, "microcrad_scope_begin: out of memory");
        return NULL;
    }
    *scope = (microcrad_scope){.handle = {.magic = MC_MAGIC_SCOPE}, .outer = mc_innermost_scope};
    mc_innermost_scope = scope;
    return scope;
}

/*
 * Where `scope` is among the scopes open on this thread: 0 for the innermost, 1 for
 * the one outside it, and so on; -1 when it is not open here. Found by walking the
 * thread's own open scopes and comparing addresses, so that a scope that was already
 * ended (freed) or belongs to another thread is never read.
 */
static int depth_here(const microcrad_scope *scope)
{
    int depth = 0;
    for (const microcrad_scope *s = mc_innermost_scope; s; s = s->outer, depth++)
        if (s == scope)
            return depth;
    return -1;
}

static int not_open_here(const microcrad_scope *scope, const char *fn)
{
    if (!scope)
        return mc_error(MICROCRAD_ERR_NULL, "%s: argument 1 is NULL", fn);
    return mc_error(MICROCRAD_ERR_ARGUMENT,
                    "%s: argument 1 is not a scope open on this thread (already ended, "
                    "opened on another thread, or never a scope)",
                    fn);
}

int microcrad_scope_end(microcrad_scope *scope)
{
    static const char fn[] = "microcrad_scope_end";
    int depth = scope ? depth_here(scope) : -1;
    if (depth < 0)
        return not_open_here(scope, fn);
    if (depth > 0)
        return mc_error(MICROCRAD_ERR_ARGUMENT,
                        "%s: argument 1 is not the innermost open scope (%d opened inside it "
                        "are still open; end them first)",
                        fn, depth);

    mc_innermost_scope = scope->outer;
    int result = MICROCRAD_OK;
    ScopeChunk *chunk = scope->chunk;
    Value **top = scope->next;
    while (chunk) {
        /* Newest first: a result is usually released before the operands it holds,
         * which are then freed by its cascade as their own turn comes. */
        while (top != chunk->items) {
            Value *v = *--top;
            if (value_release(v) != MICROCRAD_OK)
                result = MICROCRAD_ERR_RELEASED; /* a program bug, recorded by the check */
        }
        ScopeChunk *older = chunk->older;
        mc_free(chunk);
        chunk = older;
        if (chunk)
            top = chunk->items + chunk->len;
    }
    scope->handle.magic = MC_MAGIC_DEAD(MC_MAGIC_SCOPE);
    mc_free(scope);
    if (result != MICROCRAD_OK)
        return mc_error(result,
                        "%s: the scope held a reference to a Value that was already released "
                        "(value_release on a result that belonged to the scope)",
                        fn);
    return MICROCRAD_OK;
}

int64_t microcrad_scope_size(const microcrad_scope *scope)
{
    if (!scope || depth_here(scope) < 0)
        return not_open_here(scope, "microcrad_scope_size");
    return scope->size + (scope->chunk ? (int64_t)(scope->next - scope->chunk->items) : 0);
}
