/**
 * @file
 * microcrad.h - the public API of microcrad, a scalar reverse-mode autodiff engine.
 *
 * Every number is a Value node. A node records the operation that produced it and
 * holds one reference to each of its operands, so a graph stays alive exactly as
 * long as something refers to its root.
 *
 * Ownership, in one rule: every function that returns a `Value *` hands the caller
 * one new reference, and the caller gives it back with value_release(). Operations
 * retain their operands themselves; a caller may release its own handle to an
 * operand as soon as the operation has returned. Pointers obtained from value_prev()
 * are borrowed: they stay valid while the node that holds them is alive.
 *
 * Two styles, which can be mixed:
 *  - explicit releases: give back each result with value_release() when done;
 *  - scopes: between microcrad_scope_begin() and microcrad_scope_end() on a thread,
 *    the new reference of every result goes to that scope instead of to the caller,
 *    and microcrad_scope_end() gives them all back at once (see "Scopes" below). Keep
 *    a node past its scope with value_retain(), and release that reference later.
 *
 * Errors: no function crashes or returns a silently wrong answer on a NULL, released
 * or foreign pointer. Functions returning `Value *` return NULL, functions returning
 * `double` return NaN, functions returning `int` return a negative
 * `microcrad_status`; in every case microcrad_last_error() then describes what went
 * wrong (and, unless silenced with microcrad_set_quiet(), the message is also printed
 * to stderr). On error nothing is allocated, retained or changed.
 *
 * Numbers are IEEE-754 doubles with PyTorch's semantics: log(0) = -inf,
 * log(-1) = nan, 1/0 = inf, and gradients follow the same rules (d log(x)/dx at 0 is
 * inf). relu'(0) = 0, as in micrograd. Compile-time contraction of a*b+c into fused
 * multiply-adds is disabled, so results are reproducible bit for bit.
 *
 * Threads: reference counts change atomically, so any thread may retain or release
 * any node at any time. Everything else that writes to nodes (value_backward,
 * value_zero_grad, value_set_data, value_set_grad, value_set_data_many, an
 * optimizer's step or zero_grad, a tape's forward, backward or zero_grad) must not
 * run concurrently on graphs that share nodes: the caller serialises those, for
 * example with a mutex.
 *
 * The magic canary: a live node carries MICROCRAD_MAGIC_LIVE; just before its memory
 * is returned, a freed node is overwritten with MICROCRAD_MAGIC_DEAD (every bit
 * flipped). Every public function checks it, which catches a released node as long
 * as its memory has not been handed out again, and most pointers that never were a
 * Value. It cannot catch a pointer to memory that has since been reused for a new
 * node, nor protect against a pointer to unmapped memory (that still faults). Under
 * AddressSanitizer, ASan's own heap-use-after-free report fires first and is the
 * detector to rely on.
 *
 * Whatever its operand count, a node's canary sits in a small block of its own (more
 * than two operands are kept in a separate array, freed with the node), so a
 * released node's block stays mapped: in the node pool until the block is handed out
 * for a new node (then the pointer reads as that node) or microcrad_trim() returns
 * its chunk, once empty, to the system (then it faults); with plain malloc, as long
 * as malloc keeps the freed block mapped, which it does for a small block unless it
 * trims the top of its heap. The same holds for every handle below: its canary is in
 * a small block apart from its arrays.
 *
 * Every other kind of handle (tape, optimizer, neuron, layer, MLP, scope) carries a
 * canary of its own kind at the same offset as a Value's `magic`, LIVE while alive and DEAD
 * (every bit flipped) once freed, and all public functions check every pointer they
 * are given with the same check: a pointer of the wrong kind (a Value passed as a
 * tape, a tape as a Value) is reported as MICROCRAD_ERR_FOREIGN, a freed handle as
 * MICROCRAD_ERR_RELEASED, and a pointer not aligned for any microcrad object is
 * refused before anything is read through it. (The scope functions themselves find a
 * scope by address, never by reading the pointer: see microcrad_scope_end.)
 */
#ifndef MICROCRAD_H
#define MICROCRAD_H

#include <stdint.h>
#include <stdio.h>

/* C++ can include this header: it declares C functions and plain structs only (no
 * _Atomic: the library updates reference counts with atomic builtins). */
#ifdef __cplusplus
extern "C" {
#endif

/** Marks the functions the library exports; everything else in it is internal. */
#if defined(_WIN32)
#define MICROCRAD_API __declspec(dllexport)
#else
#define MICROCRAD_API __attribute__((visibility("default")))
#endif

/* ------------------------------------------------------------------------------ */
/* The node                                                                        */
/* ------------------------------------------------------------------------------ */

/** Canary of a live node: "mcrv". */
#define MICROCRAD_MAGIC_LIVE 0x6D637276u
/** Canary written into a node as it is freed: every bit of the live value flipped. */
#define MICROCRAD_MAGIC_DEAD (~MICROCRAD_MAGIC_LIVE & 0xFFFFFFFFu)

/** The operation that produced a node. */
typedef enum microcrad_op {
    MICROCRAD_OP_LEAF = 0,   /**< a leaf: value_create_leaf, or value_create with no operands */
    MICROCRAD_OP_CUSTOM,     /**< value_create with operands: gradient flows only through a value_set_backward callback */
    MICROCRAD_OP_ADD,        /**< a + b */
    MICROCRAD_OP_SUB,        /**< a - b */
    MICROCRAD_OP_MUL,        /**< a * b */
    MICROCRAD_OP_DIV,        /**< a / b */
    MICROCRAD_OP_NEG,        /**< -a */
    MICROCRAD_OP_POW,        /**< a ** b, b a Value */
    MICROCRAD_OP_POW_CONST,  /**< a ** param, param a constant */
    MICROCRAD_OP_EXP,        /**< exp(a) */
    MICROCRAD_OP_LOG,        /**< natural log(a) */
    MICROCRAD_OP_RELU,       /**< max(a, 0) */
    MICROCRAD_OP_TANH,       /**< tanh(a) */
    MICROCRAD_OP_SIGMOID,    /**< 1 / (1 + exp(-a)) */
    MICROCRAD_OP_SUM,        /**< a0 + a1 + ... (n-ary, left to right) */
    MICROCRAD_OP_NEURON,     /**< b + w0*x0 + w1*x1 + ... (value_neuron; operands b, w0, x0, w1, x1, ...) */
    MICROCRAD_OP_ABS,        /**< |a| (value_abs) */
    MICROCRAD_OP_COUNT_      /**< number of ops; not an op */
} microcrad_op;

/**
 * A node of the graph. C programs may read `data` and `grad` directly and may write
 * `data` of a leaf; everything else is managed by the library and must only be
 * changed through the functions below.
 *
 * Layout (48 bytes on 64-bit platforms; up to two operand pointers are stored right
 * after it in the same 64-byte block, and more in an array of their own that `prev`
 * points to):
 */
typedef struct Value Value;
/** The node itself: see Value. */
struct Value {
    double data;                /**< result of the forward computation */
    double grad;                /**< d(root)/d(this node), filled in by value_backward */
    Value **prev;               /**< the n_prevs operands; the node owns one reference to each */
    double param;               /**< the op's constant parameter (the exponent of POW_CONST) */
    uint32_t ref_count;         /**< references held to this node: read it with value_ref_count
                                     (the library changes it atomically; never write it) */
    uint32_t n_prevs;           /**< number of operands */
    uint32_t magic;             /**< MICROCRAD_MAGIC_LIVE while alive */
    uint16_t op;                /**< a microcrad_op */
    uint16_t flags;             /**< internal traversal marks; do not touch */
};

/** Status codes returned by the functions that return `int`. */
typedef enum microcrad_status {
    MICROCRAD_OK = 0,
    MICROCRAD_ERR_NULL = -1,      /**< a required pointer argument was NULL */
    MICROCRAD_ERR_RELEASED = -2,  /**< a Value (or handle) was already freed (canary reads DEAD) */
    MICROCRAD_ERR_FOREIGN = -3,   /**< a pointer that is not of the kind expected: another
                                       kind of handle, misaligned, or no canary at all */
    MICROCRAD_ERR_NOMEM = -4,     /**< an allocation failed */
    MICROCRAD_ERR_ARGUMENT = -5,  /**< an argument is out of range (a negative count, ...) */
    MICROCRAD_ERR_OVERFLOW = -6,  /**< a reference count would pass UINT32_MAX */
    MICROCRAD_ERR_IO = -7         /**< writing to a stream failed */
} microcrad_status;

/* ------------------------------------------------------------------------------ */
/* Creating nodes                                                                  */
/* ------------------------------------------------------------------------------ */

/**
 * The general constructor: a node holding `data`, with `n_prevs` operands taken from
 * `prev[0..n_prevs-1]`, each of which is retained. With no operands the node is a
 * leaf (op MICROCRAD_OP_LEAF); with operands it is a MICROCRAD_OP_CUSTOM node that
 * keeps its operands alive and passes gradient to them only through the callback
 * given with value_set_backward (a custom op; see "Labels and custom ops").
 * `prev` is copied; the caller keeps ownership of the array and of its references.
 *
 * Returns a new node (one reference, owned by the caller), or NULL when n_prevs is
 * negative, prev is NULL while n_prevs > 0, an operand is not a live Value, an
 * operand's reference count would overflow, or memory runs out.
 */
MICROCRAD_API Value *value_create(double data, int32_t n_prevs, Value **prev);

/** A leaf holding `data`. Returns a new node (one reference), or NULL when memory runs out. */
MICROCRAD_API Value *value_create_leaf(double data);

/*
 * Operations. Each returns a new node owning one reference for the caller; the node
 * retains its operands. On a NULL, released or foreign operand, or when memory runs
 * out, each returns NULL and changes nothing. The same node may be passed for both
 * operands (value_mul(a, a) is a squared).
 */
MICROCRAD_API Value *value_add(Value *a, Value *b);         /**< a + b */
MICROCRAD_API Value *value_sub(Value *a, Value *b);         /**< a - b */
MICROCRAD_API Value *value_mul(Value *a, Value *b);         /**< a * b */
/** a / b (1/0 = inf, 0/0 = nan). Gradients as PyTorch's: g / b, and -g * ((a / b) / b),
 *  which stays finite where b * b would overflow or underflow. */
MICROCRAD_API Value *value_div(Value *a, Value *b);
MICROCRAD_API Value *value_neg(Value *a);                   /**< -a */
/** base ** exponent, both Values. As in PyTorch, the base's gradient
 *  g * exponent * base**(exponent-1) is 0 where exponent == 0, whatever the incoming
 *  gradient g (even inf or NaN); the exponent's gradient is g * (base**exponent *
 *  log(base)) with the factor in parentheses taken as 0 where base == 0 and
 *  exponent >= 0 (so an inf or NaN g still gives NaN there). */
MICROCRAD_API Value *value_pow(Value *base, Value *exponent);
/** base ** exponent for a constant exponent, stored in the node's `param`; the base's
 *  gradient is 0 where exponent == 0, as with value_pow. */
MICROCRAD_API Value *value_pow_const(Value *base, double exponent);
MICROCRAD_API Value *value_exp(Value *a);                   /**< e ** a */
MICROCRAD_API Value *value_log(Value *a);                   /**< natural log: log(0) = -inf, log(<0) = nan */
/** max(a, 0) as micrograd computes it (0 if a < 0 else a), so -0.0 and NaN pass
 *  through unchanged, as in PyTorch; gradient 0 at a == 0. */
MICROCRAD_API Value *value_relu(Value *a);
MICROCRAD_API Value *value_tanh(Value *a);                  /**< tanh(a) */
/** 1 / (1 + exp(-a)), as PyTorch computes it (0 for a below about -709, never NaN);
 *  gradient (g * (1 - y)) * y for the result y, in PyTorch's order. */
MICROCRAD_API Value *value_sigmoid(Value *a);
/** |a|, as fabs (|-0.0| = 0.0, |NaN| = NaN). Gradient g * sign(a), PyTorch's formula, with
 *  sign(a) = 0 where a is 0 (of either sign) or NaN: so the gradient is 0 there, or NaN
 *  when g is inf or NaN. */
MICROCRAD_API Value *value_abs(Value *a);

/*
 * A binary op with a number operand, in one call: value_mul_scalar(a, c) is what
 * value_create_leaf(c) and then value_mul(a, leaf) build, value_scalar_sub(c, a) what
 * value_sub(leaf, a) builds, and so on. The graph is exactly that one, the constant a
 * leaf operand like any other (so d/dc lands in the leaf's grad); the new node holds the
 * only reference to the leaf. For callers to whom each call is costly (Python's `x * 2`,
 * `1 - x`). Each returns a new node (one reference), or NULL when a is not a live
 * Value, a's reference count would overflow, or memory runs out (nothing is then left
 * allocated).
 */
MICROCRAD_API Value *value_add_scalar(Value *a, double c);  /**< a + c */
MICROCRAD_API Value *value_sub_scalar(Value *a, double c);  /**< a - c */
MICROCRAD_API Value *value_mul_scalar(Value *a, double c);  /**< a * c */
MICROCRAD_API Value *value_div_scalar(Value *a, double c);  /**< a / c */
MICROCRAD_API Value *value_scalar_add(double c, Value *a);  /**< c + a */
MICROCRAD_API Value *value_scalar_sub(double c, Value *a);  /**< c - a */
MICROCRAD_API Value *value_scalar_mul(double c, Value *a);  /**< c * a */
MICROCRAD_API Value *value_scalar_div(double c, Value *a);  /**< c / a */
MICROCRAD_API Value *value_scalar_pow(double c, Value *a);  /**< c ** a */

/**
 * The n-ary sum terms[0] + terms[1] + ... + terms[n-1], added left to right, as one
 * node with n operands. A node may appear several times. n == 0 gives a node holding
 * 0. Returns NULL when n is negative, terms is NULL while n > 0, a term is not a live
 * Value, or memory runs out. `terms` is copied.
 */
MICROCRAD_API Value *value_sum(int32_t n, Value *const *terms);

/**
 * A neuron's pre-activation as one node: b + w[0]*x[0] + w[1]*x[1] + ... + w[n-1]*x[n-1],
 * each product rounded and then added left to right, starting from b: exactly the
 * order of micrograd's `sum((wi*xi for wi, xi in zip(w, x)), b)`, so results agree bit
 * for bit with the 2n nodes that expression builds. The node's operands are
 * b, w[0], x[0], w[1], x[1], ... (2n + 1 of them); its op is MICROCRAD_OP_NEURON.
 * Gradients: d/db = 1, d/dw[i] = x[i], d/dx[i] = w[i].
 * Returns a new node (one reference), or NULL when n is negative, w or x is NULL while
 * n > 0, b or any weight or input is not a live Value, or memory runs out.
 */
MICROCRAD_API Value *value_neuron(int32_t n, Value *const *w, Value *const *x, Value *b);

/* ------------------------------------------------------------------------------ */
/* References                                                                      */
/* ------------------------------------------------------------------------------ */

/**
 * Takes one more reference to `v`. Returns MICROCRAD_OK, or a negative status when v is
 * NULL, released or foreign, or when its count is already UINT32_MAX (the count is then
 * left unchanged).
 */
MICROCRAD_API int value_retain(Value *v);

/**
 * Gives back one reference. When the last one goes, the node is freed and releases its
 * operands in turn, which may free them as well. Freeing is iterative and allocates
 * nothing, so a chain of any length is released without deep recursion and even when
 * memory is exhausted. value_release(NULL) does nothing and returns MICROCRAD_OK, like
 * free(NULL). Returns MICROCRAD_OK, or a negative status when v is released or foreign
 * (nothing is then changed). Do not release a reference that a scope holds: the
 * scope gives it back itself when it ends.
 */
MICROCRAD_API int value_release(Value *v);

/**
 * value_release() of nodes[0], nodes[1], ..., nodes[n-1], in that order, in one call:
 * for callers where each call is costly (the Python package gives back the references
 * of dropped Values in batches this way). Each entry is one reference the caller gives
 * back, so a node may appear as many times as the caller holds references to it. NULL
 * entries are skipped, as value_release(NULL) does nothing; n == 0 does nothing (nodes
 * may then be NULL).
 *
 * Each entry is treated as value_release() treats it: one that is not a live Value
 * (released or foreign) is left alone and the others are still released, so a bad
 * entry costs only itself, as it would in a loop of value_release() calls. The first
 * bad entry's status is returned and its error names it ("nodes[i]"). A node freed
 * during the call by the release of an earlier entry (the array holds more references
 * to it than the caller owned) is the caller's error, as a second value_release() of
 * it would be.
 *
 * Releasing may free nodes and run their release callbacks (value_set_backward), which
 * may release nodes in turn, with value_release() or value_release_many().
 * Returns MICROCRAD_OK, MICROCRAD_ERR_ARGUMENT when n is negative, MICROCRAD_ERR_NULL
 * when nodes is NULL while n > 0 (nothing is released in either case), or the status
 * of the first entry that is not a live Value (every live one is still released).
 * The array itself is only read.
 */
MICROCRAD_API int value_release_many(int32_t n, Value *const *nodes);

/** The number of references held to `v`, or 0 (with an error) when v is not a live Value. */
MICROCRAD_API uint32_t value_ref_count(const Value *v);

/* ------------------------------------------------------------------------------ */
/* Scopes                                                                          */
/* ------------------------------------------------------------------------------ */

/**
 * A scope (an autorelease pool) collects the references that library functions hand
 * out, so that a program can give them all back with one call instead of one
 * value_release() per result.
 *
 * While a scope is open on a thread, every new reference that a library function
 * returns on that thread (every `Value *` result: ops, leaves, the scalar forms,
 * value_sum, value_neuron, the outputs of *_forward) belongs to the innermost open
 * scope, not to the caller: do not release it. microcrad_scope_end() releases them
 * all; a node that is still referenced elsewhere (by a node outside the scope, an
 * optimizer, a network, or a reference the caller took with value_retain()) survives.
 * Borrowed pointers (value_prev, *_parameters) are not references and are not
 * collected. Scopes belong to the thread that opened them and nest: ending one
 * returns the thread to the scope that was innermost before it. A scope still open
 * when its thread exits is never ended (its references leak). The Python package
 * manages its references one by one: do not call into it on a thread while a C
 * scope is open there.
 *
 * A scope records its references in chunks of growing size, so it takes a few
 * bytes per result and stays fast with millions of nodes. When no scope is open, the
 * cost to each operation is one thread-local load and a branch.
 *
 * A training step without a single release:
 * @code
 * microcrad_scope *step = microcrad_scope_begin();
 * Value *loss = value_pow_const(value_sub(value_mul(w, x), y), 2.0);
 * value_backward(loss);
 * microcrad_optimizer_step(opt);   // w, x, y were created before the scope
 * microcrad_scope_end(step);       // frees the three nodes the step built
 * @endcode
 */
typedef struct microcrad_scope microcrad_scope;

/**
 * Opens a scope on the calling thread, inside the scope that is open there (if any).
 * Returns the new scope, which the caller ends with microcrad_scope_end() on the same
 * thread, or NULL when memory runs out (no scope is then opened).
 */
MICROCRAD_API microcrad_scope *microcrad_scope_begin(void);

/**
 * Ends `scope`, the innermost scope open on the calling thread, and releases every
 * reference it holds (newest first); nodes referenced elsewhere survive. Returns
 * MICROCRAD_OK, or a negative status, changing nothing, when scope is NULL
 * (MICROCRAD_ERR_NULL), is open on this thread but not the innermost one (end the
 * scopes opened inside it first; MICROCRAD_ERR_ARGUMENT), or is not open on this
 * thread: already ended, opened on another thread, or never a scope
 * (MICROCRAD_ERR_ARGUMENT). Scopes are recognised by address among the calling
 * thread's open scopes, never by reading the pointer, so a stale one is safe to pass
 * (unless its memory has since been reused for a scope open on this thread, which it
 * then is). If a node the scope holds was released by the
 * program (a bug: the scope owned that reference), the scope still ends, and
 * MICROCRAD_ERR_RELEASED is returned, with the caveat of the canary (see the top of
 * this header): only as long as the released node's memory has not been reused. Once
 * a new node has taken it (in the node pool the next node made on the thread often
 * does), the scope's entry points to that node, which the scope then releases in its
 * place: MICROCRAD_OK is returned, and the new node loses a reference it never gave
 * the scope (freed early if that was its last).
 */
MICROCRAD_API int microcrad_scope_end(microcrad_scope *scope);

/** How many references `scope`, open on the calling thread, holds; a negative status
 *  when it is not a scope open on this thread (the pointer is not read then either). */
MICROCRAD_API int64_t microcrad_scope_size(const microcrad_scope *scope);

/* ------------------------------------------------------------------------------ */
/* Gradients                                                                       */
/* ------------------------------------------------------------------------------ */

/**
 * Back-propagates from `root`: orders the graph topologically (iteratively, so depth is
 * limited only by memory), sets the gradient of every interior node to 0, adds 1 to
 * the root's gradient and applies each op's backward rule in reverse order.
 *
 * Calling it again on the same graph gives the same interior gradients (they are
 * recomputed, never doubled) while leaf gradients accumulate, as in micrograd and
 * PyTorch; reset them with value_zero_grad(). The root's own gradient is 1 after the
 * call when the root is an interior node; a leaf root accumulates like any leaf.
 *
 * Returns MICROCRAD_OK, or a negative status when root is not a live Value or when the
 * temporary arrays (8 to 24 bytes a node) cannot be allocated; no gradient is changed
 * on error.
 */
MICROCRAD_API int value_backward(Value *root);

/**
 * Sets the gradient of every node reachable from `root` (the root included) to 0.
 * Returns MICROCRAD_OK, or a negative status when root is not a live Value or memory
 * runs out (no gradient is changed on error).
 */
MICROCRAD_API int value_zero_grad(Value *root);

/* ------------------------------------------------------------------------------ */
/* Graph pictures                                                                  */
/* ------------------------------------------------------------------------------ */

/**
 * Writes the graph below `root` to `out` as Graphviz DOT text, in the style of
 * micrograd's notebook: one record node per Value showing its label (when it has one,
 * see value_set_label), data and grad, and an op node between each result and its
 * operands, showing the op's symbol or the text given with value_set_op_text. Each node appears once, however many
 * times it is used. Iterative, so any depth works. Returns MICROCRAD_OK, or a negative
 * status when root is not a live Value, out is NULL, memory runs out, or writing fails
 * (MICROCRAD_ERR_IO; the stream is flushed so a full disk is reported here).
 */
MICROCRAD_API int value_write_dot(Value *root, FILE *out);

/* ------------------------------------------------------------------------------ */
/* Optimizers                                                                      */
/* ------------------------------------------------------------------------------ */

/**
 * An optimizer updates the data of a fixed list of parameters from their gradients,
 * in one call over all of them. It retains each parameter when created and releases
 * them when freed, so the parameters outlive it only if the caller holds them too.
 * Updates follow torch.optim's formulas exactly (see each constructor). The handle
 * carries a canary like a Value does (see "Neural networks in C" below for what it
 * catches), so a freed or foreign handle gets an error, not a crash. Besides a pointer
 * per parameter, an optimizer keeps 16 to 48 bytes per parameter: its state (SGD's
 * momentum buffer, Adam's two moments) and a record of what a step overwrites, which
 * lets a step that meets a released parameter put everything back.
 */
typedef struct microcrad_optimizer microcrad_optimizer;

/**
 * Stochastic gradient descent as torch.optim.SGD (dampening 0, no Nesterov):
 * g = grad + weight_decay * data; with momentum != 0, buf = g on the first step and
 * buf = momentum * buf + g after, and g = buf; then data -= lr * g.
 * Returns a new optimizer owned by the caller (free it with microcrad_optimizer_free),
 * or NULL when n_params < 0, params is NULL while n_params > 0, a parameter is not a
 * live Value, lr/momentum/weight_decay is negative or not finite, or memory runs out.
 */
MICROCRAD_API microcrad_optimizer *microcrad_sgd_create(int32_t n_params, Value *const *params,
                                                        double lr, double momentum,
                                                        double weight_decay);

/**
 * Adam as torch.optim.Adam (no amsgrad): g = grad + weight_decay * data;
 * m = beta1*m + (1-beta1)*g; v = beta2*v + (1-beta2)*g*g; at step t,
 * data -= (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
 * Returns a new optimizer, or NULL on the same conditions as microcrad_sgd_create or when
 * a beta is outside [0, 1) or eps is negative or not finite.
 */
MICROCRAD_API microcrad_optimizer *microcrad_adam_create(int32_t n_params, Value *const *params,
                                                         double lr, double beta1, double beta2,
                                                         double eps, double weight_decay);

/** Applies one update to every parameter. Returns MICROCRAD_OK or a negative status
 *  (opt NULL or not an optimizer, or a parameter found released). */
MICROCRAD_API int microcrad_optimizer_step(microcrad_optimizer *opt);

/** Sets every parameter's grad to 0. Returns MICROCRAD_OK or a negative status. */
MICROCRAD_API int microcrad_optimizer_zero_grad(microcrad_optimizer *opt);

/**
 * microcrad_optimizer_step, then microcrad_optimizer_zero_grad, with the same results
 * and errors, in one pass over the parameters, where the two calls read each
 * parameter's memory again: for training loops that zero the gradients right after
 * each update, such as a replayed tape's (leaf gradients accumulate, so they must be
 * zeroed before the next backward). Worth it when the parameters take more memory than
 * the cache holds, where each pass is paid in memory traffic.
 */
MICROCRAD_API int microcrad_optimizer_step_zero_grad(microcrad_optimizer *opt);

/** Changes the learning rate (for schedules). Returns MICROCRAD_OK, or a negative status
 *  for a bad optimizer or a negative or non-finite lr. */
MICROCRAD_API int microcrad_optimizer_set_lr(microcrad_optimizer *opt, double lr);

/** The current learning rate, or NaN (with an error) for a bad optimizer. */
MICROCRAD_API double microcrad_optimizer_lr(const microcrad_optimizer *opt);

/** Releases the parameters and frees the optimizer. NULL is accepted and ignored, like
 *  free(NULL); anything else that is not a live optimizer is reported as an error. */
MICROCRAD_API void microcrad_optimizer_free(microcrad_optimizer *opt);

/* ------------------------------------------------------------------------------ */
/* Neural networks in C (neuron, layer, MLP)                                       */
/* ------------------------------------------------------------------------------ */

/*
 * micrograd's nn module: a Neuron computes act(b + w.x), a Layer is n_out neurons over
 * the same inputs, an MLP is layers in sequence.
 *
 * Ownership: a neuron holds one reference to each of its parameters (its weights and
 * bias, leaves made when it is created); a layer owns its neurons, an MLP its layers.
 * *_free gives those references back, so a parameter outlives its network only while
 * something else holds it: a graph built by *_forward, an optimizer, or the caller
 * after value_retain. *_forward returns new references; *_parameters lends borrowed
 * pointers.
 *
 * Handles carry a canary like Values, each kind its own, with the same caveats: a
 * freed or bogus handle is reported as an error (NULL, NaN or a negative status)
 * as long as its memory has not been reused.
 */

/** What a neuron applies to its pre-activation b + w.x. */
typedef enum microcrad_activation {
    MICROCRAD_ACT_LINEAR = 0, /**< nothing: the output is b + w.x itself */
    MICROCRAD_ACT_RELU,       /**< value_relu (micrograd's nonlin=True) */
    MICROCRAD_ACT_TANH,       /**< value_tanh */
    MICROCRAD_ACT_SIGMOID     /**< value_sigmoid */
} microcrad_activation;

/**
 * act(value_neuron(n, w, x, b)) in one call: the neuron node, then (unless act is
 * MICROCRAD_ACT_LINEAR) the activation node over it, exactly the nodes that
 * value_neuron followed by value_relu (or value_tanh, value_sigmoid) build. Only the
 * activation node holds the neuron node. For callers to whom each call is costly.
 * Returns a new node (one reference), or NULL on the conditions of value_neuron or
 * when act is not a microcrad_activation (nothing is then left allocated).
 */
MICROCRAD_API Value *value_neuron_activation(int32_t n, Value *const *w, Value *const *x,
                                             Value *b, microcrad_activation act);

typedef struct microcrad_neuron microcrad_neuron; /**< a neuron: n_in weights and a bias */
typedef struct microcrad_layer microcrad_layer;   /**< a layer: n_out neurons over the same inputs */
typedef struct microcrad_mlp microcrad_mlp;       /**< a multi-layer perceptron: layers in sequence */

/**
 * A number drawn uniformly from [low, high) by the splitmix64 generator whose state is
 * *rng, which the call advances. Any seed is a valid state, and a seed gives the same
 * sequence on every platform. Returns NaN (with an error) when rng is NULL.
 */
MICROCRAD_API double microcrad_random_uniform(uint64_t *rng, double low, double high);

/**
 * A neuron with n_in inputs, as micrograd's Neuron: weights w[0], w[1], ... drawn in
 * that order from microcrad_random_uniform(rng, -1, 1), bias 0.
 * Returns a new neuron owned by the caller (free it with microcrad_neuron_free), or
 * NULL when n_in < 0, act is not a microcrad_activation, rng is NULL or memory runs
 * out; *rng is advanced only on success.
 */
MICROCRAD_API microcrad_neuron *microcrad_neuron_create(int32_t n_in, microcrad_activation act,
                                                        uint64_t *rng);

/**
 * act(b + w[0]*x[0] + ... + w[n_in-1]*x[n_in-1]) for the inputs x[0..n_in-1]: one
 * value_neuron node, then one activation node unless the neuron is linear.
 * Returns a new reference owned by the caller (the graph retains the parameters and
 * inputs it uses), or NULL when the neuron is not live, x is NULL while n_in > 0, an
 * input is not a live Value, or memory runs out.
 */
MICROCRAD_API Value *microcrad_neuron_forward(const microcrad_neuron *neuron, Value *const *x);

/**
 * Lends the parameters in micrograd's order, w[0], ..., w[n_in-1], b, as pointers
 * written to out[0..count-1] (borrowed: no reference is added; they stay valid while
 * the neuron lives). Returns count, n_in + 1. The query form, out NULL with capacity 0,
 * writes nothing and returns the count. Returns a negative status (writing nothing)
 * when the neuron is not live, capacity < 0, out is NULL with capacity > 0, or
 * capacity is less than the count.
 */
MICROCRAD_API int64_t microcrad_neuron_parameters(const microcrad_neuron *neuron, Value **out,
                                                  int64_t capacity);

/** The number of parameters, n_in + 1, or a negative status when the neuron is not live. */
MICROCRAD_API int64_t microcrad_neuron_n_parameters(const microcrad_neuron *neuron);

/** Releases the parameters and frees the neuron. NULL is ignored, like free(NULL);
 *  anything else that is not a live neuron is reported as an error. */
MICROCRAD_API void microcrad_neuron_free(microcrad_neuron *neuron);

/**
 * A layer of n_out neurons with n_in inputs each, all with activation act, as
 * micrograd's Layer: the neurons are created in order, each drawing its weights from
 * *rng. Returns a new layer owned by the caller (free it with microcrad_layer_free), or
 * NULL when n_in < 0, n_out < 1, act is not a microcrad_activation, rng is NULL or
 * memory runs out; *rng is advanced only on success.
 */
MICROCRAD_API microcrad_layer *microcrad_layer_create(int32_t n_in, int32_t n_out,
                                                      microcrad_activation act, uint64_t *rng);

/**
 * Applies every neuron to the inputs x[0..n_in-1] and writes neuron j's output to
 * out[j] for j < n_out: n_out new references, owned by the caller. Returns
 * MICROCRAD_OK, or a negative status when the layer is not live, x is NULL while
 * n_in > 0, out is NULL, an input is not a live Value or memory runs out. On error
 * nothing is left allocated, and every out[j] is set to NULL when the layer is live
 * and out is not NULL. out[0..n_out-1] must not overlap x[0..n_in-1] (layer_forward(l,
 * xs, xs)): the outputs would overwrite inputs still to be read, so an overlap is
 * refused with MICROCRAD_ERR_ARGUMENT, leaving out (and so x) as it was.
 */
MICROCRAD_API int microcrad_layer_forward(const microcrad_layer *layer, Value *const *x,
                                          Value **out);

/** The parameters of neuron 0, then neuron 1, ..., each neuron's as
 *  microcrad_neuron_parameters lists them; count n_out * (n_in + 1). Same contract
 *  (borrowed pointers, query form, errors) as microcrad_neuron_parameters. */
MICROCRAD_API int64_t microcrad_layer_parameters(const microcrad_layer *layer, Value **out,
                                                 int64_t capacity);

/** The number of parameters, n_out * (n_in + 1), or a negative status when the layer
 *  is not live. */
MICROCRAD_API int64_t microcrad_layer_n_parameters(const microcrad_layer *layer);

/** Frees the layer and its neurons (releasing their parameters). NULL is ignored;
 *  anything else that is not a live layer is reported as an error. */
MICROCRAD_API void microcrad_layer_free(microcrad_layer *layer);

/**
 * A multi-layer perceptron with n_in inputs and n_layers layers, layer i having
 * sizes[i] neurons, as micrograd's MLP(n_in, sizes): every layer but the last uses
 * activation `hidden`, the last uses `output` (micrograd: RELU and LINEAR). Layers
 * are created in order from *rng. `sizes` is copied. Returns a new MLP owned by the
 * caller (free it with microcrad_mlp_free), or NULL when n_in < 0, n_layers < 1,
 * sizes is NULL, a size is < 1, an activation is not a microcrad_activation, rng is
 * NULL or memory runs out; *rng is advanced only on success.
 */
MICROCRAD_API microcrad_mlp *microcrad_mlp_create(int32_t n_in, int32_t n_layers,
                                                  const int32_t *sizes,
                                                  microcrad_activation hidden,
                                                  microcrad_activation output, uint64_t *rng);

/**
 * Runs the inputs x[0..n_in-1] through every layer and writes the last layer's
 * outputs to out[0..sizes[n_layers-1]-1]: new references, owned by the caller (the
 * intermediate layers' outputs live on inside the graph). Returns MICROCRAD_OK, or a
 * negative status on the same conditions as microcrad_layer_forward, with the same
 * promise: nothing left allocated, and out[j] set to NULL when the MLP is live. Like
 * there, out must not overlap x[0..n_in-1] (MICROCRAD_ERR_ARGUMENT, out left as it was).
 */
MICROCRAD_API int microcrad_mlp_forward(const microcrad_mlp *mlp, Value *const *x, Value **out);

/** The parameters of layer 0, then layer 1, ..., each layer's as
 *  microcrad_layer_parameters lists them. Same contract as
 *  microcrad_neuron_parameters. */
MICROCRAD_API int64_t microcrad_mlp_parameters(const microcrad_mlp *mlp, Value **out,
                                               int64_t capacity);

/** The number of parameters, or a negative status when the MLP is not live. */
MICROCRAD_API int64_t microcrad_mlp_n_parameters(const microcrad_mlp *mlp);

/** Frees the MLP and its layers (releasing every parameter). NULL is ignored;
 *  anything else that is not a live MLP is reported as an error. */
MICROCRAD_API void microcrad_mlp_free(microcrad_mlp *mlp);

/* ------------------------------------------------------------------------------ */
/* Replay                                                                          */
/* ------------------------------------------------------------------------------ */

/**
 * A tape records the topological order of a graph once, so that the same computation
 * can be re-run after leaf data changes (new inputs, updated parameters) without
 * building new nodes: microcrad_tape_forward recomputes every node's data from its
 * operands, microcrad_tape_backward back-propagates exactly like value_backward. Neither
 * allocates. The tape holds one reference to the root, so the whole graph stays alive
 * while the tape does.
 *
 * The tape replays the operations that were recorded: a choice the program made from
 * the data while building the graph (say, a branch on a sign) is frozen. Results and
 * gradients are bit-identical to rebuilding the same graph with the same leaf data.
 * As with value_backward, replays of graphs that share nodes must not run concurrently.
 */
typedef struct microcrad_tape microcrad_tape;

/** Records the graph below `root`. Returns a new tape owned by the caller (free it with
 *  microcrad_tape_free), or NULL when root is not a live Value or memory runs out. */
MICROCRAD_API microcrad_tape *microcrad_tape_create(Value *root);
/** Recomputes every node's data from its operands, operands first. Leaves and custom
 *  nodes keep their data. Returns MICROCRAD_OK or a negative status for a bad tape. */
MICROCRAD_API int microcrad_tape_forward(microcrad_tape *tape);
/** Back-propagates from the root with value_backward's semantics (interior gradients
 *  recomputed, leaf gradients accumulated). Returns MICROCRAD_OK or a negative status. */
MICROCRAD_API int microcrad_tape_backward(microcrad_tape *tape);
/** Sets every recorded node's grad to 0. Returns MICROCRAD_OK or a negative status. */
MICROCRAD_API int microcrad_tape_zero_grad(microcrad_tape *tape);
/** The number of recorded nodes, or a negative status for a bad tape. */
MICROCRAD_API int64_t microcrad_tape_size(const microcrad_tape *tape);
/** The root's data (after microcrad_tape_forward: the recomputed result), or NaN. */
MICROCRAD_API double microcrad_tape_data(const microcrad_tape *tape);
/** Releases the root and frees the tape. NULL is ignored, like free(NULL); a freed or
 *  foreign tape is reported as an error and left alone. */
MICROCRAD_API void microcrad_tape_free(microcrad_tape *tape);

/* ------------------------------------------------------------------------------ */
/* Bulk access: one call for many nodes, for callers where each call is costly      */
/* (Python through ctypes).                                                         */
/* ------------------------------------------------------------------------------ */

/** Sets values[i]->data = data[i] for i < n. Checks every node first and changes nothing
 *  unless all are live. Returns MICROCRAD_OK or a negative status (n < 0, NULL arrays
 *  while n > 0, a node not live). */
MICROCRAD_API int value_set_data_many(int32_t n, Value *const *values, const double *data);
/** out[i] = values[i]->data for i < n, with the same checks. */
MICROCRAD_API int value_get_data_many(int32_t n, Value *const *values, double *out);
/** out[i] = values[i]->grad for i < n, with the same checks. */
MICROCRAD_API int value_get_grad_many(int32_t n, Value *const *values, double *out);

/* ------------------------------------------------------------------------------ */
/* Accessors: checked reads and writes, for callers that cannot use the struct.     */
/* ------------------------------------------------------------------------------ */

/** v->data, or NaN (with an error) when v is not a live Value. */
MICROCRAD_API double value_data(const Value *v);
/** v->grad, or NaN (with an error) when v is not a live Value. */
MICROCRAD_API double value_grad(const Value *v);
/** Sets v->data. The node's result is overwritten as given; nodes computed from it are
 *  not recomputed. Returns MICROCRAD_OK or a negative status. */
MICROCRAD_API int value_set_data(Value *v, double data);
/** Sets v->grad. Returns MICROCRAD_OK or a negative status. */
MICROCRAD_API int value_set_grad(Value *v, double grad);
/** The node's microcrad_op, or a negative status when v is not a live Value. */
MICROCRAD_API int value_op(const Value *v);
/** The node's op parameter (the constant exponent of POW_CONST, else 0), or NaN on error. */
MICROCRAD_API double value_param(const Value *v);
/** The number of operands, or a negative status when v is not a live Value. */
MICROCRAD_API int64_t value_n_prevs(const Value *v);
/** Operand i, borrowed (no reference is added), or NULL when v is not a live Value or
 *  i >= n_prevs. */
MICROCRAD_API Value *value_prev(const Value *v, uint32_t i);
/** A short symbol for an op ("+", "*", "**", "exp", "ReLU", ...), as micrograd names
 *  them; "" for a leaf; "?" for a number that is not an op. Static storage. */
MICROCRAD_API const char *microcrad_op_name(int op);

/*
 * Ops by number: the op table, for code that handles every op alike (bindings that
 * derive their tables from the library, tests and fuzzers that enumerate ops, graph
 * copies). Op codes run from 0 to microcrad_op_count() - 1.
 */

/** The number of ops: MICROCRAD_OP_COUNT_ of the library as built. */
MICROCRAD_API int microcrad_op_count(void);

/** The number of operands op `op` takes: 0 for a leaf, 1 for neg, exp, ..., 2 for
 *  add, pow, ...; -1 for an op with any number of them (sum: n >= 0; neuron: an odd
 *  n, b then (w, x) pairs; custom: n >= 1). MICROCRAD_ERR_ARGUMENT when `op` is not an
 *  op (no error recorded). */
MICROCRAD_API int microcrad_op_arity(int op);

/** The name of the public function that builds a node of op `op` ("value_add",
 *  "value_pow_const", "value_create_leaf", ...): for bindings and tests that reach
 *  every op's own constructor by name. For an op of fixed arity that takes no param
 *  its signature is `Value *f(Value *, ...)` with `arity` operands; with a param,
 *  `Value *f(Value *, double)`. NULL when `op` is not an op. Static storage. */
MICROCRAD_API const char *microcrad_op_constructor(int op);

/** 1 when op `op` reads a constant parameter (POW_CONST's exponent), 0 when not;
 *  MICROCRAD_ERR_ARGUMENT when `op` is not an op (no error recorded). */
MICROCRAD_API int microcrad_op_takes_param(int op);

/**
 * A node of any op: what the op's own constructor builds from the same operands
 * (value_create_op(MICROCRAD_OP_MUL, 0, 2, (Value *[]){a, b}) is value_mul(a, b)), handed
 * out the same way (to the innermost scope when one is open). `param` is the op's
 * constant for an op that takes one (microcrad_op_takes_param), the node's data for a
 * leaf or a custom node (as value_create's `data`), and ignored otherwise (the node's
 * param is then 0). The node retains each of operands[0..n-1]; `operands` is copied.
 *
 * Returns a new node (one reference, owned by the caller), or NULL with the status in
 * microcrad_last_status(): MICROCRAD_ERR_ARGUMENT when `op` is not an op or n is not a
 * count it takes (microcrad_op_arity); MICROCRAD_ERR_NULL when operands is NULL while
 * n > 0, or an operand is NULL; MICROCRAD_ERR_RELEASED or MICROCRAD_ERR_FOREIGN for
 * an operand that is not a live Value; MICROCRAD_ERR_OVERFLOW when an operand's
 * reference count would overflow; MICROCRAD_ERR_NOMEM when memory runs out. Nothing
 * is changed or left allocated then.
 */
MICROCRAD_API Value *value_create_op(int op, double param, int32_t n, Value *const *operands);

/* ------------------------------------------------------------------------------ */
/* Labels and custom ops                                                           */
/* ------------------------------------------------------------------------------ */

/*
 * A node may carry a label (a name for pictures, as in micrograd's notebooks), an op
 * text (what micrograd's `_op` shows for a hand-made node: "tanh", "sin", ...) and,
 * when value_create made it with operands, a backward callback: a custom op. These
 * live beside the node, not in it, and are freed with it. Setting them writes to the
 * node: like value_set_data, it must not run concurrently with anything that reads or
 * writes the same node.
 */

/** A backward callback reported failure (value_backward, value_backward_step,
 *  microcrad_tape_backward). */
#define MICROCRAD_ERR_CALLBACK (-8)

/**
 * Sets the node's label to a copy of `label` (UTF-8 text); NULL or "" removes it.
 * value_write_dot shows it. Returns MICROCRAD_OK, or a negative status when v is not a
 * live Value or memory runs out (the label is then unchanged).
 */
MICROCRAD_API int value_set_label(Value *v, const char *label);

/**
 * The node's label, "" when it has none, or NULL (with an error) when v is not a live
 * Value. Borrowed: valid until the label is set again or the node is freed.
 */
MICROCRAD_API const char *value_label(const Value *v);

/**
 * Sets the text shown for the node's op (by value_write_dot, and by Python's `_op`) to a
 * copy of `text`, "" included; NULL removes it, and the op's own symbol is shown again.
 * Returns MICROCRAD_OK, or a negative status when v is not a live Value or memory runs
 * out (the text is then unchanged).
 */
MICROCRAD_API int value_set_op_text(Value *v, const char *text);

/**
 * The text given to value_set_op_text, or NULL when none was given. Also NULL, with an
 * error recorded, when v is not a live Value. Borrowed: valid until the text is set
 * again or the node is freed.
 */
MICROCRAD_API const char *value_op_text(const Value *v);

/**
 * A custom op's backward step: adds the node's grad, times the local derivative, to
 * each operand's grad (read them with value_prev(node, i)). Returns 0 on success;
 * anything else reports a failure, which stops the backward pass that called it.
 */
typedef int (*microcrad_backward_fn)(Value *node, void *context);

/** Gives back a callback's context: called once, when the node is freed or the
 *  callback is replaced. It must not use the node. */
typedef void (*microcrad_release_fn)(void *context);

/**
 * Makes `v`, a node made by value_create with operands, a custom op: value_backward,
 * value_backward_step and microcrad_tape_backward call backward(v, context) at the
 * node's place in topological order (after every node computed from it), exactly
 * where a built-in op applies its rule. Interior gradients are recomputed on every
 * backward pass and leaf gradients accumulate, as for built-in ops.
 *
 * Ownership: on success the node owns `context` and calls release(context) (unless
 * release is NULL) when the node is freed or the callback is replaced; a context may
 * hold references to the operands. backward NULL removes the callback (releasing its
 * context). On error nothing changes and the caller keeps `context`.
 *
 * Inside a callback: read and write grads, data and labels, create and release nodes,
 * call value_backward_step; do not start a graph walk (value_backward, value_zero_grad,
 * value_write_dot, microcrad_tape_create fail with MICROCRAD_ERR_ARGUMENT there). When a
 * callback fails, value_backward returns MICROCRAD_ERR_CALLBACK at once: the gradients
 * applied so far stay, no traversal mark is left on the graph, and a later pass works.
 *
 * Returns MICROCRAD_OK, or a negative status when v is not a live Value,
 * MICROCRAD_ERR_ARGUMENT when v is a leaf or a built-in op (those have their own rule),
 * or MICROCRAD_ERR_NOMEM.
 */
MICROCRAD_API int value_set_backward(Value *v, microcrad_backward_fn backward, void *context,
                                     microcrad_release_fn release);

/**
 * One node's step of back-propagation, as micrograd's `node._backward()`: applies v's
 * own chain rule once, adding v's grad times the local derivative to each operand's
 * grad (a custom op runs its callback). Nothing else is visited or zeroed; a leaf does
 * nothing. Calling it on every node in reverse topological order, after setting the
 * root's grad to 1 and the others to 0, gives what value_backward gives. Returns
 * MICROCRAD_OK, a negative status when v is not a live Value, or
 * MICROCRAD_ERR_CALLBACK when its callback fails.
 */
MICROCRAD_API int value_backward_step(Value *v);

/* ------------------------------------------------------------------------------ */
/* Library state                                                                   */
/* ------------------------------------------------------------------------------ */

/** How many nodes are allocated and not yet freed, over all threads. */
MICROCRAD_API int64_t microcrad_live_values(void);

/**
 * Memory. Nodes come from a node pool of 64-byte blocks in 1 MiB chunks, each
 * owned by the thread that made its nodes. A node released on another thread goes back
 * to its owner (which takes it back before it asks the system for more), so memory is
 * bounded by the nodes alive, whichever threads create and release them. A graph that
 * is released and built again reuses the same memory in the same order. When a thread
 * exits, its chunks that hold no node go back to the system and the others are handed
 * to a thread created later. A node with more than two operands keeps them in an array
 * of its own, from malloc.
 *
 * Under Valgrind, or in a process with AddressSanitizer or LeakSanitizer, the library
 * uses plain malloc for every node instead of the pool (decided when it is loaded), so
 * that those tools report each leaked node and each use after release with the
 * program's own stacks. microcrad_build_features() then reports
 * MICROCRAD_BUILD_VALGRIND. The environment variable MICROCRAD_NO_POOL, read when the
 * library is loaded, overrides the choice: "0" keeps the pool even under a tool (to
 * measure it with callgrind), any other non-empty value asks for plain malloc.
 */

/**
 * Returns idle pool memory to the system: every chunk that holds no live node among
 * the calling thread's chunks (after taking back the nodes other threads released into
 * them) and among those of threads that have exited. Chunks of other running threads
 * are returned when those threads call microcrad_trim() or exit. Never fails; any
 * thread may call it at any time. Returns the number of bytes given back (0 when nodes
 * come from plain malloc).
 */
MICROCRAD_API int64_t microcrad_trim(void);

/**
 * The message of the last error raised on the calling thread ("" if none yet). The text
 * lives in thread-local storage and is overwritten by the next error on that thread.
 */
MICROCRAD_API const char *microcrad_last_error(void);

/** The status code of the last error raised on the calling thread (MICROCRAD_OK if none
 *  yet): what a function that returns NULL or NaN would have returned as a status. */
MICROCRAD_API int microcrad_last_status(void);

/** Clears the calling thread's last error and status. */
MICROCRAD_API void microcrad_clear_error(void);

/** quiet != 0 stops errors being printed to stderr (they are still recorded for
 *  microcrad_last_error). Returns the previous setting. Applies to all threads. */
MICROCRAD_API int microcrad_set_quiet(int quiet);

/** The human-readable name of a status code ("out of memory", ...). Static storage. */
MICROCRAD_API const char *microcrad_status_string(int status);

/** The library version, "MAJOR.MINOR.PATCH". Static storage. */
MICROCRAD_API const char *microcrad_version(void);

/** Bits of MICROCRAD_BUILD_* saying how this copy of the library was compiled. */
MICROCRAD_API unsigned microcrad_build_features(void);
#define MICROCRAD_BUILD_ASAN 1u     /**< built with AddressSanitizer */
#define MICROCRAD_BUILD_TSAN 2u     /**< built with ThreadSanitizer */
#define MICROCRAD_BUILD_UBSAN 4u    /**< built with UndefinedBehaviorSanitizer */
#define MICROCRAD_BUILD_VALGRIND 8u /**< plain malloc, no node pool (Valgrind and sanitizer builds,
                                        or chosen at load time under Valgrind, ASan or LSan) */

/* ------------------------------------------------------------------------------ */
/* Test hooks                                                                      */
/* ------------------------------------------------------------------------------ */

/**
 * Makes the n-th allocation the calling thread makes from now fail (n >= 1), once;
 * n == 0 cancels a pending failure. Together with microcrad_allocation_count() this lets
 * a test walk every allocation site of an operation. Per thread, so that other
 * threads are unaffected and the hot path needs no atomics. Returns MICROCRAD_OK, or
 * MICROCRAD_ERR_ARGUMENT for a negative n.
 */
MICROCRAD_API int microcrad_fail_allocation(int64_t n);

/** How many allocations the library has attempted on the calling thread (a counter
 *  that only grows; failed attempts count too). */
MICROCRAD_API int64_t microcrad_allocation_count(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* MICROCRAD_H */
