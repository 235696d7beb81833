/*
 * bench_nodes.c - workload W1 in C, on microcrad, on the floor and on the floor with
 * thread-safe reference counts: build a graph, run backward from its root, release
 * everything.
 *
 * Shapes (`--size` gives N or P):
 *
 *   chain N: x_{k+1} = x_k * c for even k, x_k + c for odd k: N nodes over two leaves
 *            (x_0 and the shared constant c). As deep as it is long.
 *   tree P:  P products a_i * b_i, summed by a balanced tree of additions (pairs added
 *            level by level, left to right, an odd one out carried up): 2P - 1 nodes
 *            over 2P leaves, depth about log2 P.
 *
 * The leaves are made once, before the first repetition, and kept, as a model keeps its
 * parameters and data; each repetition builds the shape's op nodes, back-propagates
 * from the root (the leaves' gradients accumulate) and releases the graph. Each phase
 * is timed on its own; tools/bench.py divides by the number of op nodes.
 *
 * Engines:
 *   microcrad  through its public API, as a C program uses it: the shared library, every
 *              handle to an intermediate result given back with value_release as soon as
 *              the node computed from it holds it.
 *   floor      bench_floor.c, the least an engine can do (a measuring stick only).
 *   floor-atomic
 *              bench_floor_atomic.c, the floor with thread-safe (atomic) reference
 *              counts and nothing else added (a measuring stick only): each op retains
 *              its operands, the handles to intermediate results are given back where
 *              the microcrad engine gives them back, and the release drops the root's
 *              reference and, node by node, every reference to an operand, in the order
 *              microcrad frees, before forgetting the arena. It shows how much of W1
 *              thread-safe counts alone cost.
 *
 * Repetition 0 runs on fresh memory (the process has just started and made only the
 * leaves), so it pays the page faults of first touching the pool or arena: "cold".
 * Later repetitions reuse that memory, as a training loop that rebuilds its graph
 * every step does: "warm".
 *
 * --callgrind runs two repetitions, the phases of the second (warm) one in functions of
 * their own: callgrind_build, callgrind_backward and callgrind_release. Under
 *     valgrind --tool=callgrind --collect-atstart=no --toggle-collect=callgrind_build ...
 * (one --toggle-collect per phase) the inclusive cost of each is the instruction count
 * of that phase of one warm repetition (tools/benchlib/callgrind.py reads it).
 *
 * Usage: bench_nodes --engine microcrad|floor|floor-atomic --shape chain|tree --size N
 *                    [--reps R] [--callgrind]
 * Prints one JSON object: the seconds of each phase of each repetition, the root's
 * value and a checksum of the leaves' gradients after the first repetition (equal
 * between engines when they compute the same), the resident-set growth over the first
 * build, the node sizes, and "adjacent_share": after the repetitions, as many nodes
 * as a graph has are allocated one after the other (untimed), and this is the share
 * that lands right next to the one before. It says, without a clock, whether reused
 * memory is handed out in order (1.0) or scattered, which is what makes a rebuilt
 * graph slower than the first one. The results are information: nothing here passes or fails
 * on time.
 */
#include <microcrad.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_floor.c"
#include "bench_floor_atomic.c"
#include "../tests/c/resident.h"

/* Functions that callgrind must see under their own names (not inlined or cloned). */
#if defined(__clang__)
#define MEASURED __attribute__((noinline))
#elif defined(__GNUC__)
#define MEASURED __attribute__((noipa))
#else
#define MEASURED
#endif

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}


static void die(const char *what)
{
    fprintf(stderr, "bench_nodes: %s failed: %s\n", what, microcrad_last_error());
    exit(1);
}

static void *allocate(size_t count, size_t size)
{
    void *p = calloc(count, size);
    if (!p) {
        fprintf(stderr, "bench_nodes: out of memory\n");
        exit(1);
    }
    return p;
}

enum { CHAIN, TREE };

/* One shape on one engine: its leaves, scratch space and current root. */
typedef struct Workload {
    int shape;
    long size;        /* chain: N; tree: P */
    long nodes;       /* op nodes per graph */
    Value *x0, *c;    /* chain leaves */
    Value **a, **b;   /* tree leaves */
    Value **level;    /* the tree's partial sums */
    Value *root;
    FloorArena leaves, graph;
    FloorNode *fx0, *fc, **fa, **fb, **flevel, *froot;
    size_t died; /* floor-atomic: nodes that died while building (none in W1) */
} Workload;

/* The chain's constant and the tree's leaves: values whose products and sums stay
 * well inside double range, the same for every engine. */
static double chain_constant(long n) { return 1.0 + 1.0 / (double)n; }
static double tree_a(long i) { return 0.5 + 0.25 * (double)(i % 7); }
static double tree_b(long i) { return 1.0 - 0.125 * (double)(i % 5); }

typedef struct Engine {
    const char *name;
    void (*setup)(Workload *w);     /* makes the leaves */
    void (*build)(Workload *w);     /* builds the graph: w's root */
    void (*backward)(Workload *w);  /* back-propagates from the root */
    void (*release)(Workload *w);   /* releases the graph */
    double (*root_data)(const Workload *w);
    double (*grad_checksum)(const Workload *w);
    void (*teardown)(Workload *w);  /* gives the leaves and scratch space back */
    double (*adjacent_share)(Workload *w);
} Engine;

/* The share of `n` consecutive allocations, addresses in `at`, that land right next to
 * the one before (one node size up or down): 1.0 for memory handed out in order. */
static double adjacent(char *const *at, long n, size_t node_bytes)
{
    long next_door = 0;
    for (long i = 1; i < n; i++) {
        ptrdiff_t step = at[i] - at[i - 1];
        next_door += step == (ptrdiff_t)node_bytes || step == -(ptrdiff_t)node_bytes;
    }
    return n > 1 ? (double)next_door / (double)(n - 1) : 1.0;
}

/* ---- microcrad ------------------------------------------------------------------- */

static Value *mc_leaf(double x)
{
    Value *v = value_create_leaf(x);
    if (!v)
        die("value_create_leaf");
    return v;
}

static void mc_setup(Workload *w)
{
    if (w->shape == CHAIN) {
        w->x0 = mc_leaf(0.5);
        w->c = mc_leaf(chain_constant(w->size));
        return;
    }
    w->a = allocate((size_t)w->size, sizeof *w->a);
    w->b = allocate((size_t)w->size, sizeof *w->b);
    w->level = allocate((size_t)w->size, sizeof *w->level);
    for (long i = 0; i < w->size; i++) {
        w->a[i] = mc_leaf(tree_a(i));
        w->b[i] = mc_leaf(tree_b(i));
    }
}

static void mc_build(Workload *w)
{
    if (w->shape == CHAIN) {
        Value *x = value_mul(w->x0, w->c); /* x0 is kept: its handle is not given back */
        if (!x)
            die("value_mul");
        for (long k = 1; k < w->size; k++) {
            Value *next = k % 2 ? value_add(x, w->c) : value_mul(x, w->c);
            if (!next)
                die("a chain op");
            value_release(x);
            x = next;
        }
        w->root = x;
        return;
    }
    Value **level = w->level;
    for (long i = 0; i < w->size; i++)
        if (!(level[i] = value_mul(w->a[i], w->b[i])))
            die("value_mul");
    for (long width = w->size; width > 1;) {
        long half = width / 2;
        for (long i = 0; i < half; i++) {
            Value *sum = value_add(level[2 * i], level[2 * i + 1]);
            if (!sum)
                die("value_add");
            value_release(level[2 * i]);
            value_release(level[2 * i + 1]);
            level[i] = sum;
        }
        if (width % 2)
            level[half++] = level[width - 1];
        width = half;
    }
    w->root = level[0];
}

static void mc_backward(Workload *w)
{
    if (value_backward(w->root) != MICROCRAD_OK)
        die("value_backward");
}

static void mc_release(Workload *w)
{
    value_release(w->root);
    w->root = NULL;
}

static double mc_root_data(const Workload *w) { return w->root->data; }

static double mc_grad_checksum(const Workload *w)
{
    if (w->shape == CHAIN)
        return w->x0->grad + w->c->grad;
    double sum = 0.0;
    for (long i = 0; i < w->size; i++)
        sum += w->a[i]->grad + w->b[i]->grad;
    return sum;
}

static void mc_teardown(Workload *w)
{
    if (w->shape == CHAIN) {
        value_release(w->x0);
        value_release(w->c);
        return;
    }
    for (long i = 0; i < w->size; i++) {
        value_release(w->a[i]);
        value_release(w->b[i]);
    }
    free(w->a);
    free(w->b);
    free(w->level);
}

/* After the repetitions: how the pool hands out as many blocks as a graph has nodes. */
static double mc_adjacent_share(Workload *w)
{
    Value **at = allocate((size_t)w->nodes, sizeof *at);
    for (long i = 0; i < w->nodes; i++)
        at[i] = mc_leaf(0.0);
    double share = adjacent((char *const *)at, w->nodes, sizeof(Value) + 2 * sizeof(Value *));
    for (long i = 0; i < w->nodes; i++)
        value_release(at[i]);
    free(at);
    return share;
}

static const Engine microcrad_engine = {
    .name = "microcrad", .setup = mc_setup, .build = mc_build, .backward = mc_backward,
    .release = mc_release, .root_data = mc_root_data, .grad_checksum = mc_grad_checksum,
    .teardown = mc_teardown, .adjacent_share = mc_adjacent_share};

/* ---- the floor ------------------------------------------------------------------- */

/* A floor's leaf maker: floor_leaf, or floor_atomic_leaf for the counted floor. */
typedef FloorNode *(*FloorLeaf)(FloorArena *arena, double x);

static void floor_setup_with(Workload *w, FloorLeaf leaf)
{
    if (w->shape == CHAIN) {
        w->fx0 = leaf(&w->leaves, 0.5);
        w->fc = leaf(&w->leaves, chain_constant(w->size));
        return;
    }
    w->fa = allocate((size_t)w->size, sizeof *w->fa);
    w->fb = allocate((size_t)w->size, sizeof *w->fb);
    w->flevel = allocate((size_t)w->size, sizeof *w->flevel);
    for (long i = 0; i < w->size; i++) {
        w->fa[i] = leaf(&w->leaves, tree_a(i));
        w->fb[i] = leaf(&w->leaves, tree_b(i));
    }
}

static void floor_setup(Workload *w) { floor_setup_with(w, floor_leaf); }

static void floor_build(Workload *w)
{
    FloorArena *g = &w->graph;
    if (w->shape == CHAIN) {
        FloorNode *x = floor_mul(g, w->fx0, w->fc);
        for (long k = 1; k < w->size; k++)
            x = k % 2 ? floor_add(g, x, w->fc) : floor_mul(g, x, w->fc);
        w->froot = x;
        return;
    }
    FloorNode **level = w->flevel;
    for (long i = 0; i < w->size; i++)
        level[i] = floor_mul(g, w->fa[i], w->fb[i]);
    for (long width = w->size; width > 1;) {
        long half = width / 2;
        for (long i = 0; i < half; i++)
            level[i] = floor_add(g, level[2 * i], level[2 * i + 1]);
        if (width % 2)
            level[half++] = level[width - 1];
        width = half;
    }
    w->froot = level[0];
}

static void floor_backward_phase(Workload *w) { floor_backward(&w->graph, w->froot); }
static void floor_release_phase(Workload *w)
{
    floor_release_all(&w->graph);
    w->froot = NULL;
}
static double floor_root_data(const Workload *w) { return w->froot->data; }

static double floor_grad_checksum(const Workload *w)
{
    if (w->shape == CHAIN)
        return w->fx0->grad + w->fc->grad;
    double sum = 0.0;
    for (long i = 0; i < w->size; i++)
        sum += w->fa[i]->grad + w->fb[i]->grad;
    return sum;
}

static void floor_teardown(Workload *w)
{
    floor_free(&w->leaves);
    floor_free(&w->graph);
    free(w->fa);
    free(w->fb);
    free(w->flevel);
}

static double floor_adjacent_share_with(Workload *w, FloorLeaf leaf)
{
    FloorNode **at = allocate((size_t)w->nodes, sizeof *at);
    for (long i = 0; i < w->nodes; i++)
        at[i] = leaf(&w->graph, 0.0);
    double share = adjacent((char *const *)at, w->nodes, sizeof(FloorNode));
    floor_release_all(&w->graph);
    free(at);
    return share;
}

static double floor_adjacent_share(Workload *w) { return floor_adjacent_share_with(w, floor_leaf); }

static const Engine floor_engine = {
    .name = "floor", .setup = floor_setup, .build = floor_build,
    .backward = floor_backward_phase, .release = floor_release_phase,
    .root_data = floor_root_data, .grad_checksum = floor_grad_checksum,
    .teardown = floor_teardown, .adjacent_share = floor_adjacent_share};

/* ---- the floor with thread-safe reference counts -------------------------------- */
/* The floor's workload, backward pass, checks and arena; the leaves are counted, and
 * building and releasing keep the counts. */

static void floor_atomic_setup(Workload *w) { floor_setup_with(w, floor_atomic_leaf); }

static void floor_atomic_build(Workload *w)
{
    FloorArena *g = &w->graph;
    size_t died = 0; /* a check, not part of the measure: see floor_atomic_release_phase */
    if (w->shape == CHAIN) {
        FloorNode *x = floor_atomic_mul(g, w->fx0, w->fc); /* x0 is kept, as in mc_build */
        for (long k = 1; k < w->size; k++) {
            FloorNode *next = k % 2 ? floor_atomic_add(g, x, w->fc) : floor_atomic_mul(g, x, w->fc);
            died += floor_atomic_release(x);
            x = next;
        }
        w->froot = x;
        w->died = died;
        return;
    }
    FloorNode **level = w->flevel;
    for (long i = 0; i < w->size; i++)
        level[i] = floor_atomic_mul(g, w->fa[i], w->fb[i]);
    for (long width = w->size; width > 1;) {
        long half = width / 2;
        for (long i = 0; i < half; i++) {
            FloorNode *sum = floor_atomic_add(g, level[2 * i], level[2 * i + 1]);
            died += floor_atomic_release(level[2 * i]);
            died += floor_atomic_release(level[2 * i + 1]);
            level[i] = sum;
        }
        if (width % 2)
            level[half++] = level[width - 1];
        width = half;
    }
    w->froot = level[0];
    w->died = died;
}

/* Gives back the root; every node of the graph must then have died, and only then may
 * the arena be forgotten (a wrong count would otherwise go unnoticed). */
static void floor_atomic_release_phase(Workload *w)
{
    size_t died = w->died + floor_atomic_release(w->froot);
    if (died != (size_t)w->nodes) {
        fprintf(stderr, "bench_nodes: floor-atomic: %zu of %ld nodes died\n", died, w->nodes);
        exit(1);
    }
    floor_release_all(&w->graph);
    w->froot = NULL;
    w->died = 0;
}

/* Every retain of a leaf was matched by a drop: its count is back to its holder's 1. */
static void floor_atomic_teardown(Workload *w)
{
    long leaves = w->shape == CHAIN ? 2 : 2 * w->size;
    for (long i = 0; i < leaves; i++) {
        FloorNode *leaf = w->shape == CHAIN ? (i ? w->fc : w->fx0)
                                            : (i % 2 ? w->fb[i / 2] : w->fa[i / 2]);
        if (__atomic_load_n(&leaf->count, __ATOMIC_RELAXED) != 1) {
            fprintf(stderr, "bench_nodes: floor-atomic: a leaf's count is %u, not 1\n",
                    (unsigned)leaf->count);
            exit(1);
        }
    }
    floor_teardown(w);
}

static double floor_atomic_adjacent_share(Workload *w)
{
    return floor_adjacent_share_with(w, floor_atomic_leaf);
}

static const Engine floor_atomic_engine = {
    .name = "floor-atomic", .setup = floor_atomic_setup, .build = floor_atomic_build,
    .backward = floor_backward_phase, .release = floor_atomic_release_phase,
    .root_data = floor_root_data, .grad_checksum = floor_grad_checksum,
    .teardown = floor_atomic_teardown, .adjacent_share = floor_atomic_adjacent_share};

/* ---- repetitions ----------------------------------------------------------------- */

/* Seconds spent in each phase of one repetition. */
typedef struct Phases {
    double build, backward, release;
} Phases;

/* What the first repetition saw, reported as checks. */
typedef struct FirstRun {
    double root_data, grad_checksum;
    long long rss_growth; /* over the build; -1 if unknown */
} FirstRun;

/* The phases of a repetition. Those of the warm repetition that --callgrind measures
 * have names of their own, for callgrind's --toggle-collect. */
typedef void (*Phase)(const Engine *e, Workload *w);
static void phase_build(const Engine *e, Workload *w) { e->build(w); }
static void phase_backward(const Engine *e, Workload *w) { e->backward(w); }
static void phase_release(const Engine *e, Workload *w) { e->release(w); }
MEASURED static void callgrind_build(const Engine *e, Workload *w) { e->build(w); }
MEASURED static void callgrind_backward(const Engine *e, Workload *w) { e->backward(w); }
MEASURED static void callgrind_release(const Engine *e, Workload *w) { e->release(w); }
static const Phase timed_phases[3] = {phase_build, phase_backward, phase_release};
static const Phase callgrind_phases[3] = {callgrind_build, callgrind_backward, callgrind_release};

/* One repetition through `phases`; `first` (when not NULL) receives its checks. */
static Phases repetition(const Engine *e, Workload *w, const Phase phases[3], FirstRun *first)
{
    Phases p;
    long long rss0 = first ? resident_bytes() : -1;
    double t = now_seconds();
    phases[0](e, w);
    p.build = now_seconds() - t;
    if (first) {
        long long rss1 = resident_bytes();
        first->rss_growth = rss0 < 0 || rss1 < 0 ? -1 : rss1 - rss0;
        first->root_data = e->root_data(w);
    }

    t = now_seconds();
    phases[1](e, w);
    p.backward = now_seconds() - t;
    if (first)
        first->grad_checksum = e->grad_checksum(w);

    t = now_seconds();
    phases[2](e, w);
    p.release = now_seconds() - t;
    return p;
}

static long parse_count(const char *text, const char *flag, long least)
{
    char *end;
    long n = strtol(text, &end, 10);
    if (*end != '\0' || n < least || n > INT32_MAX) {
        fprintf(stderr, "bench_nodes: %s needs a count from %ld to 2^31-1, got '%s'\n", flag,
                least, text);
        exit(2);
    }
    return n;
}

static int usage(const char *program)
{
    fprintf(stderr,
            "usage: %s --engine microcrad|floor|floor-atomic --shape chain|tree --size N "
            "[--reps R] [--callgrind]\n",
            program);
    return 2;
}

int main(int argc, char **argv)
{
    const Engine *engine = NULL;
    int shape = -1, callgrind = 0;
    long size = 0, reps = 5;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(arg, "--callgrind") == 0)
            callgrind = 1;
        else if (!next)
            return usage(argv[0]);
        else if (strcmp(arg, "--engine") == 0 && strcmp(next, "microcrad") == 0)
            engine = &microcrad_engine, i++;
        else if (strcmp(arg, "--engine") == 0 && strcmp(next, "floor") == 0)
            engine = &floor_engine, i++;
        else if (strcmp(arg, "--engine") == 0 && strcmp(next, "floor-atomic") == 0)
            engine = &floor_atomic_engine, i++;
        else if (strcmp(arg, "--shape") == 0 && strcmp(next, "chain") == 0)
            shape = CHAIN, i++;
        else if (strcmp(arg, "--shape") == 0 && strcmp(next, "tree") == 0)
            shape = TREE, i++;
        else if (strcmp(arg, "--size") == 0)
            size = parse_count(next, "--size", 2), i++;
        else if (strcmp(arg, "--reps") == 0)
            reps = parse_count(next, "--reps", 1), i++;
        else
            return usage(argv[0]);
    }
    if (!engine || shape < 0 || size == 0)
        return usage(argv[0]);
    if (callgrind)
        reps = 2;
    microcrad_set_quiet(1);

    Workload w = {.shape = shape, .size = size, .nodes = shape == CHAIN ? size : 2 * size - 1};
    engine->setup(&w);
    Phases *runs = allocate((size_t)reps, sizeof *runs);
    FirstRun first;
    runs[0] = repetition(engine, &w, timed_phases, &first);
    for (long r = 1; r < reps; r++)
        runs[r] = repetition(engine, &w, callgrind && r == reps - 1 ? callgrind_phases : timed_phases,
                             NULL);

    double adjacent_share = engine->adjacent_share(&w);
    unsigned features = microcrad_build_features();
    printf("{\"engine\": \"%s\", \"shape\": \"%s\", \"size\": %ld, \"nodes\": %ld, "
           "\"leaves\": %ld, \"callgrind\": %s,\n",
           engine->name, shape == CHAIN ? "chain" : "tree", size, w.nodes,
           shape == CHAIN ? 2 : 2 * size, callgrind ? "true" : "false");
    printf(" \"microcrad_version\": \"%s\", \"pooled\": %s, \"value_struct_bytes\": %zu, "
           "\"binary_node_bytes\": %zu, \"floor_node_bytes\": %zu,\n",
           microcrad_version(), features & MICROCRAD_BUILD_VALGRIND ? "false" : "true",
           sizeof(Value), sizeof(Value) + 2 * sizeof(Value *), sizeof(FloorNode));
    printf(" \"root_data\": %.17g, \"grad_checksum\": %.17g, \"rss_growth_bytes\": %lld,\n",
           first.root_data, first.grad_checksum, first.rss_growth);
    printf(" \"adjacent_share\": %.6f,\n", adjacent_share);
    printf(" \"reps\": [");
    for (long r = 0; r < reps; r++)
        printf("%s\n  {\"build\": %.9g, \"backward\": %.9g, \"release\": %.9g}", r ? "," : "",
               runs[r].build, runs[r].backward, runs[r].release);
    printf("]}\n");
    engine->teardown(&w);
    free(runs);
    return 0;
}
