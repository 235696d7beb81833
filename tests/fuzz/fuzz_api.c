/*
 * fuzz_api.c - libFuzzer harness: the input bytes are a program of microcrad API calls.
 *
 * Each input is read as a sequence of instructions: an opcode byte, then the bytes
 * its operands need (which owned reference to use, a number, a count). Instructions
 * create leaves and every operation, custom nodes, n-ary sums and neurons; retain and
 * release references; run backward and zero_grad; overwrite data and grads; write DOT
 * text; drive optimizers, tapes, C neurons and MLPs; and make an allocation fail in
 * the middle of any of those. Reading past the end of the input yields zero bytes, so
 * every input is a valid program.
 *
 * The harness keeps a model of the references it owns (one slot per reference), so it
 * never releases more than it owns: anything ASan, UBSan or LeakSanitizer reports is a
 * bug in the library. It also checks the API's promises and abort()s when one breaks:
 *
 *   - a call on live arguments with no allocation failure pending succeeds;
 *   - a call that fails because an allocation failed reports MICROCRAD_ERR_NOMEM and
 *     changes nothing: same live-node count, same reference counts of its operands;
 *   - every owned node's reference count is at least the number of slots holding it;
 *   - no node is left with a traversal mark (MC_FLAG_VISITED) after a call returns,
 *     failed calls included (a stale mark makes later walks skip the node);
 *   - after the program, once every reference and handle is given back, the live
 *     count is exactly what it was before.
 *
 * Each program runs twice: as it is, and inside a scope (microcrad_scope_begin), where
 * every result belongs to the scope and the harness takes a reference of its own to
 * each result it keeps. The second run also checks that the scope holds exactly one
 * reference per result, that a failed call adds nothing to it, and that ending it
 * leaves the live count where it was.
 *
 * Built and run by tests/fuzz/run.sh (clang, -fsanitize=fuzzer,address,undefined).
 */
#include <microcrad.h>

/* White-box: the traversal mark, which no call may leave set on any node. */
#include "internal.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum {
    MAX_OWNED = 48,   /* owned references; a new one beyond this is released at once */
    MAX_OPERANDS = 6, /* operands of one sum, custom node or neuron */
    MAX_HANDLES = 3,  /* optimizers, tapes, neurons, MLPs kept at a time (each kind) */
};

/* ---- reading the input ------------------------------------------------------- */

typedef struct Input {
    const uint8_t *bytes;
    size_t size, pos;
} Input;

static unsigned next_byte(Input *in) { return in->pos < in->size ? in->bytes[in->pos++] : 0u; }

/* A number: the special values every op must survive, or a small one on a 1/16 grid. */
static double next_number(Input *in)
{
    static const double special[] = {0.0,  -0.0,     1.0,      -1.0,     0.5,     2.0,
                                     -2.0, 3.0,      1e-300,   -1e-300,  1e300,   -1e300,
                                     1e-8, HUGE_VAL, -HUGE_VAL, (double)NAN};
    unsigned b = next_byte(in);
    if (b < sizeof special / sizeof *special)
        return special[b];
    return (double)(int8_t)b / 16.0;
}

/* ---- the harness's state ------------------------------------------------------ */

typedef struct State {
    Value *owned[MAX_OWNED]; /* one slot per reference the harness owns */
    int n_owned;
    microcrad_optimizer *optimizers[MAX_HANDLES];
    microcrad_tape *tapes[MAX_HANDLES];
    microcrad_neuron *neurons[MAX_HANDLES];
    microcrad_mlp *mlps[MAX_HANDLES];
    uint64_t rng;
    /* Set while an allocation failure is armed: calls may then fail with NOMEM. */
    int failure_armed;
    /* The scope the program runs in (the second run), and the results it should hold. */
    microcrad_scope *scope;
    int64_t scope_results;
} State;

/* Stops the fuzzer with a message: libFuzzer saves the input as a crash. */
#define REQUIRE(cond)                                                                     \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "fuzz_api: %s:%d: broken promise: %s (last error: %s)\n",    \
                    __FILE__, __LINE__, #cond, microcrad_last_error());                  \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

/* An owned node chosen by the next byte, or NULL when the harness owns none. */
static Value *pick(State *s, Input *in)
{
    return s->n_owned > 0 ? s->owned[next_byte(in) % (unsigned)s->n_owned] : NULL;
}

/* Takes ownership of a reference the harness already holds (it retained it). */
static void adopt(State *s, Value *v)
{
    if (s->n_owned < MAX_OWNED)
        s->owned[s->n_owned++] = v;
    else
        REQUIRE(value_release(v) == MICROCRAD_OK);
}

/* Takes ownership of a result. Inside a scope the result's reference is the scope's,
 * so the harness takes one of its own (or, with no room, leaves it to the scope). */
static void keep(State *s, Value *v)
{
    if (!v)
        return;
    if (!s->scope) {
        adopt(s, v);
        return;
    }
    s->scope_results++;
    REQUIRE(value_ref_count(v) >= 1);
    if (s->n_owned < MAX_OWNED) {
        REQUIRE(value_retain(v) == MICROCRAD_OK);
        s->owned[s->n_owned++] = v;
    }
}

/* Gives back the reference in slot i. */
static void drop(State *s, int i)
{
    REQUIRE(value_release(s->owned[i]) == MICROCRAD_OK);
    s->owned[i] = s->owned[--s->n_owned];
}

/*
 * Checks the result of a call that makes something: success unless an allocation
 * failure is armed, and on failure the right status. Returns whether it succeeded.
 */
static int made(const State *s, const void *result)
{
    if (result)
        return 1;
    REQUIRE(s->failure_armed);
    REQUIRE(microcrad_last_status() == MICROCRAD_ERR_NOMEM);
    return 0;
}

/* Checks the status of a call that may allocate: OK unless a failure is armed. */
static void succeeded(const State *s, int status)
{
    REQUIRE(status == MICROCRAD_OK || (s->failure_armed && status == MICROCRAD_ERR_NOMEM));
}

/* n owned nodes (repeats allowed) into out; returns 0 when the harness owns none. */
static int pick_many(State *s, Input *in, int n, Value **out)
{
    if (s->n_owned == 0)
        return 0;
    for (int i = 0; i < n; i++)
        out[i] = pick(s, in);
    return 1;
}

/* ---- instructions ---------------------------------------------------------------- */

typedef enum Opcode {
    LEAF,
    BINARY,      /* add, sub, mul, div, pow */
    UNARY,       /* neg, exp, log, relu, tanh, sigmoid */
    POW_CONST,
    SCALAR,      /* value_add_scalar ... value_scalar_pow */
    SUM,
    NEURON_NODE, /* value_neuron */
    CUSTOM,
    RETAIN,
    RELEASE,
    BACKWARD,
    ZERO_GRAD,
    SET_NUMBERS, /* value_set_data, value_set_grad, value_set_data_many */
    READ,        /* accessors, value_prev, bulk reads: check counts and borrowing */
    DOT,
    OPTIMIZER,   /* create, step, zero_grad, set_lr, free */
    TAPE,        /* create, forward, backward, zero_grad, free */
    NN,          /* C neurons and MLPs: create, forward, parameters, free */
    FAIL_NEXT,   /* the next instruction runs with its k-th allocation failing */
    BY_NUMBER,   /* value_create_op: any op of the op table, any operand count */
    OPCODE_COUNT
} Opcode;

static void run_instruction(State *s, Input *in, Opcode op);

static void binary(State *s, Input *in)
{
    static Value *(*const make[])(Value *, Value *) = {value_add, value_sub, value_mul,
                                                      value_div, value_pow};
    unsigned which = next_byte(in) % 5;
    Value *a = pick(s, in), *b = pick(s, in);
    if (a && b && made(s, a = make[which](a, b)))
        keep(s, a);
}

static void unary(State *s, Input *in)
{
    static Value *(*const make[])(Value *) = {value_neg,  value_exp,  value_log,
                                             value_relu, value_tanh, value_sigmoid};
    unsigned which = next_byte(in) % 6;
    Value *a = pick(s, in);
    if (a && made(s, a = make[which](a)))
        keep(s, a);
}

static void scalar(State *s, Input *in)
{
    static Value *(*const right[])(Value *, double) = {value_add_scalar, value_sub_scalar,
                                                      value_mul_scalar, value_div_scalar};
    static Value *(*const left[])(double, Value *) = {value_scalar_add, value_scalar_sub,
                                                     value_scalar_mul, value_scalar_div,
                                                     value_scalar_pow};
    unsigned which = next_byte(in) % 9;
    double c = next_number(in);
    Value *a = pick(s, in);
    if (!a)
        return;
    Value *v = which < 4 ? right[which](a, c) : left[which - 4](c, a);
    if (made(s, v))
        keep(s, v);
}

static void n_ary(State *s, Input *in, Opcode op)
{
    Value *operands[2 * MAX_OPERANDS + 1];
    int n = (int)(next_byte(in) % (MAX_OPERANDS + 1));
    if (!pick_many(s, in, op == NEURON_NODE ? 2 * n + 1 : n, operands))
        return;
    Value *v;
    if (op == SUM) {
        v = value_sum(n, operands);
    } else if (op == CUSTOM) {
        v = value_create(next_number(in), n, operands);
    } else {
        Value *w[MAX_OPERANDS], *x[MAX_OPERANDS];
        for (int i = 0; i < n; i++) {
            w[i] = operands[1 + i];
            x[i] = operands[1 + n + i];
        }
        v = value_neuron(n, w, x, operands[0]);
    }
    if (made(s, v))
        keep(s, v);
}

/* Any op of the op table, so a new op is fuzzed without editing this file: with a
 * count it takes the node is made (or memory ran out); with another count, or a
 * number that is not an op, the call is refused with MICROCRAD_ERR_ARGUMENT. */
static void by_number(State *s, Input *in)
{
    Value *operands[2 * MAX_OPERANDS + 1];
    int op = (int)(next_byte(in) % (unsigned)(microcrad_op_count() + 1)); /* one past: not an op */
    int n = (int)(next_byte(in) % (2 * MAX_OPERANDS + 2));
    if (n > 0 && !pick_many(s, in, n, operands))
        return;
    int arity = microcrad_op_arity(op);
    Value *v = value_create_op(op, next_number(in), n, operands);
    if (v) {
        REQUIRE(arity == n || arity == -1);
        REQUIRE(value_op(v) == op && value_n_prevs(v) == n);
        keep(s, v);
    } else if (arity == n || (arity == -1 && microcrad_last_status() != MICROCRAD_ERR_ARGUMENT)) {
        REQUIRE(made(s, v) == 0); /* only memory may fail a count the op takes */
    } else {
        REQUIRE(microcrad_last_status() == MICROCRAD_ERR_ARGUMENT);
    }
}

static void read_back(State *s, Input *in)
{
    if (s->n_owned == 0)
        return;
    unsigned i = next_byte(in) % (unsigned)s->n_owned;
    Value *v = s->owned[i];
    /* Every slot holding v is a reference, so the count is at least that many. */
    uint32_t slots = 0;
    for (int j = 0; j < s->n_owned; j++)
        slots += s->owned[j] == v;
    REQUIRE(value_ref_count(v) >= slots);
    int64_t n = value_n_prevs(v);
    REQUIRE(n >= 0 && value_op(v) >= 0);
    REQUIRE(!(v->flags & MC_FLAG_VISITED));
    /* Borrowed operands are live nodes, and the node holds a reference to each. */
    for (int64_t k = 0; k < n; k++) {
        Value *operand = value_prev(v, (uint32_t)k);
        REQUIRE(operand != NULL && value_ref_count(operand) >= 1);
        REQUIRE(!(operand->flags & MC_FLAG_VISITED));
        (void)value_data(operand);
    }
    REQUIRE(value_prev(v, (uint32_t)n) == NULL); /* one past the end is refused */
    Value *some[4];
    double out[4];
    pick_many(s, in, 4, some);
    REQUIRE(value_get_data_many(4, some, out) == MICROCRAD_OK);
    REQUIRE(value_get_grad_many(4, some, out) == MICROCRAD_OK);
}

static void set_numbers(State *s, Input *in)
{
    Value *v = pick(s, in);
    if (!v)
        return;
    switch (next_byte(in) % 3) {
    case 0:
        REQUIRE(value_set_data(v, next_number(in)) == MICROCRAD_OK);
        break;
    case 1:
        REQUIRE(value_set_grad(v, next_number(in)) == MICROCRAD_OK);
        break;
    default: {
        Value *some[3];
        double data[3] = {next_number(in), next_number(in), next_number(in)};
        pick_many(s, in, 3, some);
        REQUIRE(value_set_data_many(3, some, data) == MICROCRAD_OK);
    }
    }
}

static void dot(State *s, Input *in)
{
    static FILE *sink; /* opened once, kept for the fuzzer's whole life */
    if (!sink && !(sink = fopen("/dev/null", "w")))
        return;
    Value *v = pick(s, in);
    if (v)
        succeeded(s, value_write_dot(v, sink));
}

static void optimizer(State *s, Input *in)
{
    unsigned slot = next_byte(in) % MAX_HANDLES;
    microcrad_optimizer *opt = s->optimizers[slot];
    switch (next_byte(in) % 4) {
    case 0: { /* create over some owned nodes (the optimizer retains them) */
        Value *params[MAX_OPERANDS];
        int n = 1 + (int)(next_byte(in) % MAX_OPERANDS);
        if (!pick_many(s, in, n, params))
            return;
        microcrad_optimizer_free(opt);
        s->optimizers[slot] = NULL;
        opt = next_byte(in) % 2
                  ? microcrad_sgd_create(n, params, 0.1, 0.9, 1e-4)
                  : microcrad_adam_create(n, params, 1e-3, 0.9, 0.999, 1e-8, 0.0);
        if (made(s, opt))
            s->optimizers[slot] = opt;
        break;
    }
    case 1:
        if (opt)
            REQUIRE(microcrad_optimizer_step(opt) == MICROCRAD_OK);
        break;
    case 2:
        if (opt) {
            REQUIRE(microcrad_optimizer_zero_grad(opt) == MICROCRAD_OK);
            REQUIRE(microcrad_optimizer_set_lr(opt, 0.01) == MICROCRAD_OK);
            REQUIRE(microcrad_optimizer_lr(opt) == 0.01);
        }
        break;
    default:
        microcrad_optimizer_free(opt);
        s->optimizers[slot] = NULL;
    }
}

static void tape(State *s, Input *in)
{
    unsigned slot = next_byte(in) % MAX_HANDLES;
    microcrad_tape *t = s->tapes[slot];
    switch (next_byte(in) % 3) {
    case 0: {
        Value *root = pick(s, in);
        if (!root)
            return;
        microcrad_tape_free(t);
        s->tapes[slot] = NULL;
        t = microcrad_tape_create(root);
        if (made(s, t))
            s->tapes[slot] = t;
        break;
    }
    case 1: /* replays allocate nothing: they must succeed even with a failure armed */
        if (t) {
            REQUIRE(microcrad_tape_forward(t) == MICROCRAD_OK);
            REQUIRE(microcrad_tape_backward(t) == MICROCRAD_OK);
            REQUIRE(microcrad_tape_size(t) >= 1);
            (void)microcrad_tape_data(t);
            if (next_byte(in) % 2)
                REQUIRE(microcrad_tape_zero_grad(t) == MICROCRAD_OK);
        }
        break;
    default:
        microcrad_tape_free(t);
        s->tapes[slot] = NULL;
    }
}

static void nn(State *s, Input *in)
{
    unsigned slot = next_byte(in) % MAX_HANDLES;
    microcrad_activation act = (microcrad_activation)(next_byte(in) % 4);
    int32_t n_in = (int32_t)(next_byte(in) % 4);
    Value *x[4];
    switch (next_byte(in) % 4) {
    case 0: /* a neuron, applied to owned inputs */
        microcrad_neuron_free(s->neurons[slot]);
        s->neurons[slot] = microcrad_neuron_create(n_in, act, &s->rng);
        if (made(s, s->neurons[slot]) && pick_many(s, in, n_in, x)) {
            Value *out = microcrad_neuron_forward(s->neurons[slot], x);
            if (made(s, out))
                keep(s, out);
        }
        break;
    case 1: { /* an MLP, applied to owned inputs */
        int32_t sizes[3];
        int32_t n_layers = 1 + (int32_t)(next_byte(in) % 3);
        for (int i = 0; i < n_layers; i++)
            sizes[i] = 1 + (int32_t)(next_byte(in) % 3);
        microcrad_mlp_free(s->mlps[slot]);
        s->mlps[slot] = microcrad_mlp_create(n_in, n_layers, sizes, act,
                                             MICROCRAD_ACT_LINEAR, &s->rng);
        Value *out[3];
        if (made(s, s->mlps[slot]) && pick_many(s, in, n_in, x)) {
            int status = microcrad_mlp_forward(s->mlps[slot], x, out);
            succeeded(s, status);
            for (int j = 0; status == MICROCRAD_OK && j < sizes[n_layers - 1]; j++)
                keep(s, out[j]);
        }
        break;
    }
    case 2: /* borrow a network's parameters and take references of our own */
        if (s->mlps[slot]) {
            Value *params[64];
            int64_t count = microcrad_mlp_parameters(s->mlps[slot], NULL, 0);
            REQUIRE(count >= 1 && count <= 64);
            REQUIRE(microcrad_mlp_parameters(s->mlps[slot], params, 64) == count);
            Value *p = params[next_byte(in) % (unsigned)count];
            REQUIRE(value_retain(p) == MICROCRAD_OK);
            adopt(s, p);
        }
        break;
    default:
        microcrad_neuron_free(s->neurons[slot]);
        s->neurons[slot] = NULL;
        microcrad_mlp_free(s->mlps[slot]);
        s->mlps[slot] = NULL;
    }
}

/*
 * Runs the next instruction with its k-th allocation (k = 1..8) set to fail, then
 * checks that a failure changed nothing: no node made or freed, operands' counts as
 * they were. An instruction that needs fewer than k allocations just succeeds.
 */
static void fail_next(State *s, Input *in)
{
    int64_t k = 1 + next_byte(in) % 8;
    Opcode op = (Opcode)(next_byte(in) % OPCODE_COUNT);
    if (op == FAIL_NEXT)
        return;
    /* These free or release things on purpose before they allocate, so "nothing
     * changed" is not theirs to promise; they still run, to exercise their errors. */
    int checkable = op != RELEASE && op != RETAIN && op != NN && op != OPTIMIZER && op != TAPE;
    int64_t live = microcrad_live_values();
    uint32_t counts[MAX_OWNED];
    for (int i = 0; i < s->n_owned; i++)
        counts[i] = value_ref_count(s->owned[i]);
    int owned = s->n_owned;
    int64_t in_scope = s->scope ? microcrad_scope_size(s->scope) : 0;
    int64_t before = microcrad_allocation_count();

    microcrad_clear_error();
    REQUIRE(microcrad_fail_allocation(k) == MICROCRAD_OK);
    s->failure_armed = 1;
    run_instruction(s, in, op);
    s->failure_armed = 0;
    REQUIRE(microcrad_fail_allocation(0) == MICROCRAD_OK);

    for (int i = 0; i < s->n_owned; i++)
        REQUIRE(!(s->owned[i]->flags & MC_FLAG_VISITED));
    int failed = microcrad_allocation_count() - before >= k &&
                 microcrad_last_status() == MICROCRAD_ERR_NOMEM;
    if (checkable && failed && s->n_owned == owned) {
        REQUIRE(microcrad_live_values() == live);
        REQUIRE(!s->scope || microcrad_scope_size(s->scope) == in_scope);
        for (int i = 0; i < s->n_owned; i++)
            REQUIRE(value_ref_count(s->owned[i]) == counts[i]);
    }
}

static void run_instruction(State *s, Input *in, Opcode op)
{
    switch (op) {
    case LEAF: {
        Value *v = value_create_leaf(next_number(in));
        if (made(s, v))
            keep(s, v);
        break;
    }
    case BINARY:
        binary(s, in);
        break;
    case UNARY:
        unary(s, in);
        break;
    case POW_CONST: {
        double p = next_number(in);
        Value *a = pick(s, in);
        if (a && made(s, a = value_pow_const(a, p)))
            keep(s, a);
        break;
    }
    case SCALAR:
        scalar(s, in);
        break;
    case SUM:
    case NEURON_NODE:
    case CUSTOM:
        n_ary(s, in, op);
        break;
    case RETAIN: {
        Value *v = pick(s, in);
        if (v && s->n_owned < MAX_OWNED) {
            REQUIRE(value_retain(v) == MICROCRAD_OK);
            adopt(s, v);
        }
        break;
    }
    case RELEASE:
        if (s->n_owned > 0)
            drop(s, (int)(next_byte(in) % (unsigned)s->n_owned));
        break;
    case BACKWARD:
    case ZERO_GRAD: {
        Value *v = pick(s, in);
        if (v)
            succeeded(s, op == BACKWARD ? value_backward(v) : value_zero_grad(v));
        break;
    }
    case SET_NUMBERS:
        set_numbers(s, in);
        break;
    case READ:
        read_back(s, in);
        break;
    case DOT:
        dot(s, in);
        break;
    case OPTIMIZER:
        optimizer(s, in);
        break;
    case TAPE:
        tape(s, in);
        break;
    case NN:
        nn(s, in);
        break;
    case FAIL_NEXT:
        fail_next(s, in);
        break;
    case BY_NUMBER:
        by_number(s, in);
        break;
    case OPCODE_COUNT:
        break;
    }
}

/* Runs the program of `data`, inside a scope when `in_scope`. */
static void run_program(const uint8_t *data, size_t size, int in_scope)
{
    const int64_t live_before = microcrad_live_values();
    State s = {.rng = 0x5EEDu};
    if (in_scope)
        REQUIRE((s.scope = microcrad_scope_begin()) != NULL);
    Input in = {data, size, 0};
    while (in.pos < in.size)
        run_instruction(&s, &in, (Opcode)(next_byte(&in) % OPCODE_COUNT));

    /* Everything the program holds is given back; then nothing may be left. */
    for (int i = 0; i < MAX_HANDLES; i++) {
        microcrad_optimizer_free(s.optimizers[i]);
        microcrad_tape_free(s.tapes[i]);
        microcrad_neuron_free(s.neurons[i]);
        microcrad_mlp_free(s.mlps[i]);
    }
    while (s.n_owned > 0)
        drop(&s, s.n_owned - 1);
    if (s.scope) {
        REQUIRE(microcrad_scope_size(s.scope) == s.scope_results);
        REQUIRE(microcrad_scope_end(s.scope) == MICROCRAD_OK);
    }
    REQUIRE(microcrad_live_values() == live_before);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int initialised;
    if (!initialised) {
        /* Expected errors (NULL operands, NOMEM) would flood the fuzzer's output. */
        microcrad_set_quiet(1);
        initialised = 1;
    }
    run_program(data, size, 0);
    run_program(data, size, 1);
    return 0;
}
