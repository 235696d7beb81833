/*
 * internal.h - declarations shared by the library's source files; not installed.
 */
#ifndef MICROCRAD_INTERNAL_H
#define MICROCRAD_INTERNAL_H

#include "microcrad.h"

#include <stddef.h>
#include <stdint.h>

/* ---- ops (op_table.c, ops_*.c) ---------------------------------------------- */

/*
 * How one op computes its result and passes gradient back. `forward` reads the node's
 * operands and param and returns the node's data; `backward` adds the node's grad,
 * scaled by the local derivative, to each operand's grad. Each ops_*.c file defines
 * the rules of its ops right next to their public constructors.
 */
typedef struct OpRule {
    const char *name;                   /* micrograd's symbol: "+", "*", "ReLU", ... */
    double (*forward)(const Value *v);  /* NULL: data is given at creation (leaf, custom) */
    void (*backward)(Value *v);         /* NULL: no gradient flows to the operands */
} OpRule;

/* The rule of op `op`, or NULL when `op` is not an op. */
const OpRule *mc_op_rule(int op);

/* The rule of every op, by op code (op_table.c). */
extern const OpRule *const mc_rules[MICROCRAD_OP_COUNT_];

/* The rule of a live node's op, without mc_op_rule's range check (the op of a node is
 * always valid): inlined into the loops that run once per node. */
static inline const OpRule *mc_rule(uint16_t op) { return mc_rules[op]; }

extern const OpRule mc_rule_leaf, mc_rule_custom;
extern const OpRule mc_rule_add, mc_rule_sub, mc_rule_mul, mc_rule_div, mc_rule_neg,
    mc_rule_sum;
extern const OpRule mc_rule_pow, mc_rule_pow_const, mc_rule_exp, mc_rule_log;
extern const OpRule mc_rule_relu, mc_rule_tanh, mc_rule_sigmoid;
extern const OpRule mc_rule_neuron;

/* The most neuron nodes mc_neuron_forward_group computes at once. */
#define MC_NEURON_GROUP 4

/* Computes the data of k neuron nodes (2 <= k <= MC_NEURON_GROUP) that have the same
 * number of operands and do not depend on each other, their sums interleaved: the
 * results are those of each node's own forward rule (ops_nn.c). */
void mc_neuron_forward_group(Value *const *nodes, size_t k);

/* ---- nodes (node.c) ---------------------------------------------------------- */

/*
 * Creates a node of op `op` over `n` operands, retaining each. The caller names itself
 * in `fn` for error messages. For ops with a forward rule the data is computed;
 * otherwise it is `data`. Returns NULL (error recorded, nothing changed) when an
 * operand is not a live Value, a count would overflow, or memory runs out.
 */
Value *mc_node_new(const char *fn, microcrad_op op, double data, double param, uint32_t n,
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

/* Checks that `v` is a live Value. Returns MICROCRAD_OK, or records an error naming `fn`
 * and argument number `arg` (1-based) and returns the status. */
int mc_check_value(const Value *v, const char *fn, int arg);

/* ---- memory (alloc.c) -------------------------------------------------------- */

/* Storage for a node with n operand slots, counted by the failure hook and the live
 * counter. NULL when the allocation fails (no error is recorded here). */
Value *mc_node_alloc(uint32_t n);
/* Marks the node DEAD and returns its storage. */
void mc_node_free(Value *v);

/* malloc/realloc/free for the library's temporary arrays, counted by the failure hook. */
void *mc_alloc(size_t bytes);
void *mc_realloc(void *p, size_t bytes);
void mc_free(void *p);

/* ---- opaque handles (handle.c) ---------------------------------------------- */

/*
 * Optimizers and networks carry a canary like nodes do, each kind its own LIVE value
 * (ASCII tags), overwritten with MC_HANDLE_DEAD(live) just before the memory is freed.
 * The canary is not the first field: a freed block's first 16 bytes are where malloc
 * keeps its free-list links, so further in the DEAD mark usually survives the free.
 */
#define MC_MAGIC_OPTIMIZER 0x6D636F70u /* "mcop" */
#define MC_MAGIC_NEURON 0x6D636E65u    /* "mcne" */
#define MC_MAGIC_LAYER 0x6D636C61u     /* "mcla" */
#define MC_MAGIC_MLP 0x6D636D6Cu       /* "mcml" */
#define MC_HANDLE_DEAD(live) (~(uint32_t)(live))

/* Checks a handle of kind `type` ("optimizer", ...) whose canary reads `magic` (pass 0
 * for a NULL handle, which is then reported as NULL). Returns MICROCRAD_OK, or records
 * an error naming `fn` and argument `arg` (1-based) and returns the status. */
int mc_check_handle(const void *handle, uint32_t magic, uint32_t live, const char *type,
                    const char *fn, int arg);

/* Reads the canary of a possibly NULL handle and checks it. */
#define MC_CHECK_HANDLE(h, live, type, fn, arg) \
    mc_check_handle((h), (h) ? (h)->magic : 0u, (live), (type), (fn), (arg))

/* The *_parameters contract: checks that `count` parameter pointers may be written to
 * out[0..capacity-1], or that this is the query form (out NULL, capacity 0). Returns
 * MICROCRAD_OK, or records an error naming `fn` and returns the status. */
int mc_check_capacity(const char *fn, const void *out, int64_t capacity, int64_t count);

/* mc_check_value for slot `i` of array `name` ("x", "params", ...), argument `arg` of
 * `fn`: the message names the slot. Inline, so that checking every slot of a long
 * array costs a load and a compare each; only a failure makes the call. */
int mc_slot_error(const Value *v, const char *fn, int arg, const char *name, int32_t i);
static inline int mc_check_slot(const Value *v, const char *fn, int arg, const char *name,
                                int32_t i)
{
    if (v && v->magic == MICROCRAD_MAGIC_LIVE)
        return MICROCRAD_OK;
    return mc_slot_error(v, fn, arg, name, i);
}

/* mc_alloc for a struct of `header` bytes followed by a flexible array of `count` items
 * of `item` bytes (a neuron's weights, a layer's neurons, ...). On failure, a size that
 * would overflow included, records an out-of-memory error naming `fn` and returns NULL. */
void *mc_alloc_flexible(const char *fn, size_t header, size_t count, size_t item);

/* ---- networks (neuron.c, layer.c, mlp.c) --------------------------------------- */

/* Checks that `act` (argument `arg` of `fn`) is a microcrad_activation. */
int mc_check_activation(microcrad_activation act, const char *fn, int arg);

/* Checks that x[0..n-1], argument `arg` of `fn`, are live Values. */
int mc_check_inputs(int32_t n, Value *const *x, const char *fn, int arg);

/* Checks the random state argument `arg` of `fn`. */
int mc_check_rng(const uint64_t *rng, const char *fn, int arg);

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
