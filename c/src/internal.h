/*
 * internal.h - declarations shared by the library's source files; not installed.
 */
#ifndef MICROCRAD_INTERNAL_H
#define MICROCRAD_INTERNAL_H

#include "microcrad.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- ops (op_table.c, ops_*.c) ---------------------------------------------- */

/*
 * An op: what generic code (the op table, value_create_op, graph walks, replay, the
 * tests that enumerate ops) needs to know of it. `forward` reads the node's operands
 * and param and returns the node's data; `backward` adds the node's grad, scaled by
 * the local derivative, to each operand's grad. Each ops_*.c file defines the rules of
 * its ops right next to their public constructors; op_table.c lists them by op code.
 */
typedef struct OpRule {
    const char *name;                   /* micrograd's symbol: "+", "*", "ReLU", ... */
    const char *constructor;            /* its public function: "value_add", ... */
    int arity;                          /* the number of operands, or -1: any number
                                         * that count_ok accepts (all when it is NULL) */
    int takes_param;                    /* the op reads the node's param (a constant) */
    int (*count_ok)(int32_t n);         /* for arity -1: whether n operands make a node */
    double (*forward)(const Value *v);  /* NULL: data is given at creation (leaf, custom) */
    void (*backward)(Value *v);         /* NULL: no gradient flows to the operands */
} OpRule;

/* The rule of op `op`, or NULL when `op` is not an op. */
const OpRule *mc_op_rule(int op);

/* The rule of every op, by op code (op_table.c, which alone names each rule). */
extern const OpRule *const mc_rules[MICROCRAD_OP_COUNT_];

/* The rule of a live node's op, without mc_op_rule's range check (the op of a node is
 * always valid): inlined into the loops that run once per node. */
static inline const OpRule *mc_rule(uint16_t op) { return mc_rules[op]; }

/* The most neuron nodes mc_neuron_forward_group computes at once. */
#define MC_NEURON_GROUP 4

/* Computes the data of k neuron nodes (2 <= k <= MC_NEURON_GROUP) that have the same
 * number of operands and do not depend on each other, their sums interleaved: the
 * results are those of each node's own forward rule (ops_nn.c). */
void mc_neuron_forward_group(Value *const *nodes, size_t k);

/* Checks that `act` (argument `arg` of `fn`) is a microcrad_activation (ops_nn.c, which
 * alone maps activations to ops). */
int mc_check_activation(microcrad_activation act, const char *fn, int arg);

/* act(b + w[0]*x[0] + ...): the neuron node, then (unless act is linear) the activation
 * node over it, which alone holds the neuron node. Checks the nodes (not act) and
 * names `fn` in errors; returns a reference owned by the calling code (not handed out
 * with mc_result), or NULL with nothing left allocated. */
Value *mc_neuron_make(const char *fn, int32_t n, Value *const *w, Value *const *x, Value *b,
                      microcrad_activation act);

/* ---- nodes (node.c) ---------------------------------------------------------- */

/*
 * Creates a node of op `op` over `n` operands, retaining each, and hands it out with
 * mc_result (to the innermost scope when one is open): what a public function returns.
 * The caller names itself in `fn` for error messages. For ops with a forward rule the
 * data is computed; otherwise it is `data`. Returns NULL (error recorded, nothing
 * changed) when an operand is not a live Value, a count would overflow, or memory runs
 * out.
 */
Value *mc_node_new(const char *fn, microcrad_op op, double data, double param, uint32_t n,
                   Value *const *operands);

/* mc_node_new for a two-operand op with no data or param given (the op computes its
 * data): the same result and errors, through a path written for two operands. */
Value *mc_binary_new(const char *fn, microcrad_op op, Value *a, Value *b);

/* Takes one more reference to `v`, a live Value, unless its count is at its maximum;
 * returns whether it did. Records no error: for the library's own references, which
 * it can do without (value_backward's hold on the root). */
int mc_retain_quietly(Value *v);

/* mc_node_new without the hand-out: the one reference belongs to the calling code, for
 * nodes the library keeps (a neuron's parameters) or builds on before returning. */
Value *mc_node_make(const char *fn, microcrad_op op, double data, double param, uint32_t n,
                    Value *const *operands);

/*
 * op(a, leaf) or, when constant_first, op(leaf, a), where leaf is a new leaf holding c:
 * the value_*_scalar and value_scalar_* functions, which name themselves in `fn`.
 * Returns the new node, which holds the leaf's only reference, or NULL (error
 * recorded, nothing left allocated).
 */
Value *mc_binary_scalar(const char *fn, microcrad_op op, Value *a, double c, int constant_first);

/* Drops the creator's reference to `v`, a node that the calling thread has just made
 * and that exactly one other node, also just made and not yet handed out, holds: no
 * other thread can know either yet, so no atomic read-modify-write is needed. */
void mc_release_fresh(Value *v);

/* ---- scopes (scope.c) -------------------------------------------------------- */

/* The thread-local model of mc_innermost_scope, read once per op. With glibc,
 * initial-exec makes the read one instruction (a load at a fixed offset from the
 * thread pointer) instead of a call to __tls_get_addr; glibc keeps room for a few
 * such bytes in libraries loaded with dlopen (Python's ctypes). Elsewhere the default
 * model is kept. */
#if defined(__GLIBC__) && defined(__GNUC__)
#define MC_TLS_MODEL __attribute__((tls_model("initial-exec")))
#else
#define MC_TLS_MODEL
#endif

/* The innermost scope open on the calling thread, or NULL. */
extern _Thread_local microcrad_scope *mc_innermost_scope MC_TLS_MODEL;

/* Makes room for `n` more references in `scope`; on failure records an out-of-memory
 * error naming `fn` and returns its status. */
int mc_scope_make_room(microcrad_scope *scope, size_t n, const char *fn);
/* Records `v` in `scope`, where room was made beforehand. */
void mc_scope_record(microcrad_scope *scope, Value *v);

/*
 * Results are handed out in two steps, so that handing out cannot fail once a result
 * is built: before building, mc_results_reserve(n, fn) makes room for n results in the
 * innermost scope (if any; an allocation failure is reported there, naming fn); after,
 * mc_result(v) hands v out, to that scope or (no scope open) to the caller. Every
 * function that returns a new reference returns it through mc_result (mc_node_new
 * does both steps for a single node).
 */
static inline int mc_results_reserve(size_t n, const char *fn)
{
    microcrad_scope *scope = mc_innermost_scope;
    return scope ? mc_scope_make_room(scope, n, fn) : MICROCRAD_OK;
}
static inline Value *mc_result(Value *v)
{
    microcrad_scope *scope = mc_innermost_scope;
    if (scope && v)
        mc_scope_record(scope, v);
    return v;
}

/* ---- memory (alloc.c) -------------------------------------------------------- */

/* Storage for a node with n operand slots, counted by the failure hook and the live
 * counter, with n_prevs and prev (the slots) set. The node's own block is small
 * whatever n (more than two operands go to an array of their own), so a released
 * node's canary stays readable. NULL when the allocation fails (no error recorded). */
Value *mc_node_alloc(uint32_t n);
/* Marks the node DEAD and returns its storage. */
void mc_node_free(Value *v);

/* Whether nodes bypass the pool and come from plain malloc: in builds for sanitizers
 * and Valgrind, and in a process that runs under Valgrind or with ASan or LSan (decided
 * once, when the library is loaded). */
int mc_pool_bypassed(void);

/* malloc/realloc/free for the library's temporary arrays, counted by the failure hook. */
void *mc_alloc(size_t bytes);
void *mc_realloc(void *p, size_t bytes);
void mc_free(void *p);

/* ---- the one pointer check (check.c) ----------------------------------------- */

/*
 * Every pointer the public API takes is one of these kinds. Each kind has a LIVE
 * canary (an ASCII tag), and DEAD = ~LIVE, written just before its memory is freed.
 * Any two of the fourteen values differ in at least four bits (tests/c/test_check.c
 * checks it), so a flipped bit or two never turns one into another.
 *
 * Every kind keeps its canary at the same offset, that of a Value's `magic`: a
 * pointer of one kind passed where another is expected is recognised for what it is
 * ("a Value, not a tape") instead of having some other field read as a canary (a
 * leaf's data, a constant power's exponent). The offset is also clear of the first 16
 * bytes of a block, where malloc keeps its free-list links after a free, so a freed
 * handle reads DEAD while its memory is not reused.
 *
 * Adding a kind of handle: an entry here, its canary below and in mc_live_canary,
 * its names in check.c, `McHandle handle;` as its struct's first member (set to the
 * LIVE canary last thing at creation, to DEAD just before the free), mc_check in every
 * public function that takes it, and the kind in tests/c/test_check.c, which checks
 * the canaries' distances and passes the new kind to every function of every other.
 */
typedef enum mc_kind {
    MC_KIND_VALUE,
    MC_KIND_TAPE,
    MC_KIND_OPTIMIZER,
    MC_KIND_NEURON,
    MC_KIND_LAYER,
    MC_KIND_MLP,
    MC_KIND_SCOPE, /* recognised by address by the scope functions (scope.c); its canary
                    * makes a scope passed where another kind is expected refused */
    MC_KIND_COUNT
} mc_kind;

#define MC_MAGIC_VALUE MICROCRAD_MAGIC_LIVE /* "mcrv" */
#define MC_MAGIC_TAPE 0x6D637470u           /* "mctp" */
#define MC_MAGIC_OPTIMIZER 0x6D636F70u      /* "mcop" */
#define MC_MAGIC_NEURON 0x6D636E65u         /* "mcne" */
#define MC_MAGIC_LAYER 0x6D636C79u          /* "mcly" */
#define MC_MAGIC_MLP 0x6D636D6Cu            /* "mcml" */
#define MC_MAGIC_SCOPE 0x6D637363u          /* "mcsc" */
#define MC_MAGIC_DEAD(live) (~(uint32_t)(live))

/* Where every kind keeps its canary, and the alignment every kind's pointer has. */
#define MC_CANARY_OFFSET offsetof(Value, magic)
#define MC_HANDLE_ALIGNMENT _Alignof(Value)

/*
 * The first member of every handle struct (tape, optimizer, neuron, layer, MLP,
 * scope), which puts its canary at MC_CANARY_OFFSET. The bytes before the canary are left unused:
 * a handle is made once and used many times, so a few bytes are a small price for a
 * canary no field of any kind can impersonate.
 */
typedef struct McHandle {
    unsigned char unused[offsetof(Value, magic)];
    uint32_t magic; /* the kind's LIVE canary while alive, DEAD once freed */
} McHandle;

/* The LIVE canary of `kind` (a constant for a constant kind). */
static inline uint32_t mc_live_canary(mc_kind kind)
{
    switch (kind) {
    case MC_KIND_VALUE: return MC_MAGIC_VALUE;
    case MC_KIND_TAPE: return MC_MAGIC_TAPE;
    case MC_KIND_OPTIMIZER: return MC_MAGIC_OPTIMIZER;
    case MC_KIND_NEURON: return MC_MAGIC_NEURON;
    case MC_KIND_LAYER: return MC_MAGIC_LAYER;
    case MC_KIND_MLP: return MC_MAGIC_MLP;
    case MC_KIND_SCOPE: return MC_MAGIC_SCOPE;
    case MC_KIND_COUNT: break;
    }
    return 0;
}

/* Whether `p` is a live pointer of the kind whose canary is `live`: not NULL,
 * aligned (tested before anything is read through it), and carrying the canary. The
 * fast path of mc_check, inlined where every slot of a long array is checked. */
static inline int mc_is_live(const void *p, uint32_t live)
{
    if (!p || ((uintptr_t)p & (MC_HANDLE_ALIGNMENT - 1)) != 0)
        return 0;
    uint32_t canary;
    memcpy(&canary, (const unsigned char *)p + MC_CANARY_OFFSET, sizeof canary);
    return canary == live;
}

/* mc_check's report: records why `p` is not a live `kind`, naming `fn`, argument
 * `arg` (1-based) and, when `array` is not NULL, its slot array[index]; returns the
 * status (MICROCRAD_ERR_NULL, _RELEASED or _FOREIGN). */
int mc_check_failed(const void *p, mc_kind kind, const char *fn, int arg, const char *array,
                    int64_t index);

/* The status mc_check would return for `p`, without recording an error: for callers
 * that word the message themselves. */
int mc_check_status(const void *p, mc_kind kind);

/*
 * THE check, modelled on SQLite's sqlite3SafetyCheckOk: every public function passes
 * each pointer it is given through it before touching it. Returns MICROCRAD_OK for a
 * live pointer of `kind`. Otherwise records an error naming `fn` and argument `arg`
 * and returns MICROCRAD_ERR_NULL (NULL), MICROCRAD_ERR_RELEASED (a freed one of this
 * kind), or MICROCRAD_ERR_FOREIGN (misaligned, another kind, or no canary at all).
 */
static inline int mc_check(const void *p, mc_kind kind, const char *fn, int arg)
{
    if (mc_is_live(p, mc_live_canary(kind)))
        return MICROCRAD_OK;
    return mc_check_failed(p, kind, fn, arg, NULL, 0);
}

/* mc_check of Value slot `i` of array `name` ("x", "params", ...), argument `arg` of
 * `fn`: the message names the slot. */
static inline int mc_check_slot(const Value *v, const char *fn, int arg, const char *name,
                                int32_t i)
{
    if (mc_is_live(v, MC_MAGIC_VALUE))
        return MICROCRAD_OK;
    return mc_check_failed(v, MC_KIND_VALUE, fn, arg, name, i);
}

/* ---- what the handles share (handle.c) --------------------------------------- */

/* The *_parameters contract: checks that `count` parameter pointers may be written to
 * out[0..capacity-1], or that this is the query form (out NULL, capacity 0). Returns
 * MICROCRAD_OK, or records an error naming `fn` and returns the status. */
int mc_check_capacity(const char *fn, const void *out, int64_t capacity, int64_t count);

/*
 * mc_alloc for a handle's struct (its McHandle first). A handle keeps any array whose
 * size depends on the caller (a neuron's weights, a layer's neurons, ...) in a separate
 * allocation from mc_alloc_array, never as a flexible array member: the struct then
 * stays a small block, which free() keeps mapped (glibc unmaps a block above its mmap
 * threshold), so a freed handle's DEAD canary stays readable. On failure records an
 * out-of-memory error naming `fn` and returns NULL.
 */
void *mc_alloc_handle(const char *fn, size_t bytes);

/* mc_alloc for `count` items of `item` bytes (count may be 0). On failure, a size that
 * would overflow included, records an out-of-memory error naming `fn`, returns NULL. */
void *mc_alloc_array(const char *fn, size_t count, size_t item);

/* mc_alloc for a struct of `header` bytes followed by a flexible array of `count` items
 * of `item` bytes (a neuron's weights, a layer's neurons, ...). On failure, a size that
 * would overflow included, records an out-of-memory error naming `fn` and returns NULL. */
void *mc_alloc_flexible(const char *fn, size_t header, size_t count, size_t item);

/* ---- networks (neuron.c, layer.c, mlp.c) --------------------------------------- */

/* Checks that x[0..n-1], argument `arg` of `fn`, are live Values. */
int mc_check_inputs(int32_t n, Value *const *x, const char *fn, int arg);

/* Checks that out[0..n_out-1], argument 3 of `fn`, shares no slot with x[0..n_in-1]:
 * the outputs are written while the inputs are still read, so an overlap would give a
 * silently wrong result. Returns MICROCRAD_OK, or records an error naming `fn` and
 * returns MICROCRAD_ERR_ARGUMENT (layer.c). */
int mc_check_no_overlap(Value *const *x, int32_t n_in, Value *const *out, int32_t n_out,
                        const char *fn);

/* Checks the random state argument `arg` of `fn`. */
int mc_check_rng(const uint64_t *rng, const char *fn, int arg);

/* The output of a live neuron for checked inputs, owned by the calling code (not
 * handed out with mc_result); NULL when memory runs out (error recorded). */
Value *mc_neuron_output(const microcrad_neuron *neuron, Value *const *x, const char *fn);

/* The outputs of a live layer for checked inputs into out[0..n_out-1], owned by the
 * calling code (not handed out). On failure every out[j] is NULL, nothing is left
 * allocated, and the status is returned (error recorded). */
int mc_layer_outputs(const microcrad_layer *layer, Value *const *x, Value **out, const char *fn);

/* ---- errors (error.c) -------------------------------------------------------- */

/* Records a printf-style message as the thread's last error, prints it to stderr unless
 * quiet, and returns `status` so callers can write `return mc_error(...)`. */
int mc_error(int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---- traversal (graph.c) ----------------------------------------------------- */

/* Internal bit of Value.flags: set on a node while a traversal has seen it. */
#define MC_FLAG_VISITED 1u

/* Every node reachable from `root`, each after all its operands (the root last), in a
 * new array of *len pointers (borrowed) that the caller frees with mc_free.
 * Returns MICROCRAD_OK or MICROCRAD_ERR_NOMEM (no error recorded: callers name
 * themselves in the message). */
int mc_graph_order(Value *root, Value ***order, size_t *len);

/* value_backward's work for `root` over `interior`, its n interior nodes (operands
 * before results, the root last when it is interior; leaves left out): zeroes their
 * gradients, adds 1 to the root's, and applies the backward rules (and callbacks) in
 * reverse order. Returns MICROCRAD_OK, or MICROCRAD_ERR_CALLBACK (error recorded,
 * naming `fn`) when a callback fails: the pass stops there. */
int mc_backpropagate(Value *root, Value *const *interior, size_t n, const char *fn);

/* ---- side records: labels, op texts, backward callbacks (side_record.c) ------- */

/* Internal bit of Value.flags: the node has a side record (a label, an op text or a
 * backward callback) in side_record.c's table. */
#define MC_FLAG_SIDE_RECORD 2u

/* Takes the side record of `v`, a node being freed whose flags have
 * MC_FLAG_SIDE_RECORD, out of the table, frees it, and calls the release function of
 * its callback's context, if any. Called by node.c before it drops the node's
 * operands, so that a context holding references to those operands gives them back
 * while the node still holds its own (no freeing recursion). Never allocates. */
void mc_side_record_drop(Value *v);

/* Runs the backward callback of `v`, if it has one. Returns MICROCRAD_OK, or records an
 * error naming `fn` and returns MICROCRAD_ERR_CALLBACK when the callback reports a
 * failure. */
int mc_run_backward_callback(Value *v, const char *fn);

/* Whether the calling thread is inside a backward callback: graph walks then refuse to
 * start, since their traversal marks would mix with those of the walk that called it. */
int mc_in_backward_callback(void);

/* Copies of `v`'s label and op text into *label and *op_text (NULL where it has none),
 * for the caller to mc_free. MICROCRAD_OK or MICROCRAD_ERR_NOMEM (both NULL then). */
int mc_side_record_label(const Value *v, char **label, char **op_text);

#endif /* MICROCRAD_INTERNAL_H */
