/*
 * bench_pool.c - does a graph cost the same per node whatever its size, when it is
 * rebuilt again and again from a reused node pool?
 *
 * Workload W1: build a graph, run value_backward from its root, release it, and do it
 * again in the same memory. Two shapes:
 *
 *   tree:  P products a*b of fresh leaves, summed pairwise by a balanced tree
 *          (2P leaves, P products, P - 1 sums: 4P - 1 nodes);
 *   chain: N links alternating x*c and x+c over one shared constant c (N + 2 nodes).
 *
 * Every phase is timed on its own, in CPU time of the thread, and reported in ns per
 * node (every node counted, leaves included). "cold" is the first repetition of a
 * shape at a size, which may take fresh memory from the system (the first shape's does;
 * later shapes find the pool warm); "warm" is the fastest of the later repetitions,
 * which reuse the pool. A pool that puts a rebuilt graph back where the first one was,
 * in the same order, keeps the warm cost per node of a large graph close to that of a
 * small one.
 *
 * Usage: bench_pool [--reps R] [--tree P]... [--chain N]...
 *   default: --tree 16384 --tree 250000 --chain 50000 (65,535, 999,999 and 50,002
 *   nodes), 7 repetitions each.
 * The results are information: nothing here passes or fails on time.
 */
#include <microcrad.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The CPU time of this thread, page faults included: on a shared machine, time spent
 * waiting for a core is left out (wall-clock time would count it). */
static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_pool: %s failed: %s\n", what, microcrad_last_error());
    exit(1);
}

typedef struct Phases {
    double build, backward, release;
} Phases;

/* P products of leaf pairs, summed by a balanced tree. `level` holds P pointers. */
static Phases run_tree(long products, Value **level)
{
    Phases p;
    double t = now_seconds();
    for (long i = 0; i < products; i++) {
        Value *a = value_create_leaf((double)(i % 5) - 2.0);
        Value *b = value_create_leaf((double)(i % 3) + 0.5);
        if (!a || !b)
            die("value_create_leaf");
        level[i] = value_mul(a, b);
        if (!level[i])
            die("value_mul");
        value_release(a);
        value_release(b);
    }
    for (long width = products; width > 1;) {
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
    Value *root = level[0];
    p.build = now_seconds() - t;

    t = now_seconds();
    if (value_backward(root) != MICROCRAD_OK)
        die("value_backward");
    p.backward = now_seconds() - t;
    if (root->grad != 1.0)
        die("the tree's gradient check");

    t = now_seconds();
    value_release(root);
    p.release = now_seconds() - t;
    return p;
}

/* N links alternating x*c and x+c over one constant c. */
static Phases run_chain(long links)
{
    Phases p;
    double t = now_seconds();
    Value *c = value_create_leaf(1.0 + 1.0 / (double)links);
    Value *x = value_create_leaf(0.5);
    if (!c || !x)
        die("value_create_leaf");
    for (long k = 0; k < links; k++) {
        Value *next = k % 2 ? value_add(x, c) : value_mul(x, c);
        if (!next)
            die("value_mul/value_add");
        value_release(x);
        x = next;
    }
    p.build = now_seconds() - t;

    t = now_seconds();
    if (value_backward(x) != MICROCRAD_OK)
        die("value_backward");
    p.backward = now_seconds() - t;
    if (!(c->grad > 0.0))
        die("the chain's gradient check");

    t = now_seconds();
    value_release(x);
    p.release = now_seconds() - t;
    value_release(c);
    return p;
}

static double total(Phases p) { return p.build + p.backward + p.release; }

static void report(const char *shape, long size, long nodes, Phases cold, Phases warm)
{
    double k = 1e9 / (double)nodes;
    printf("%-5s %9ld %9ld | cold %6.1f %6.1f %6.1f %6.1f | warm %6.1f %6.1f %6.1f %6.1f\n",
           shape, size, nodes, k * cold.build, k * cold.backward, k * cold.release,
           k * total(cold), k * warm.build, k * warm.backward, k * warm.release, k * total(warm));
}

static long parse_count(const char *text)
{
    char *end;
    long n = strtol(text, &end, 10);
    if (*end != '\0' || n < 2 || n > 100000000) {
        fprintf(stderr, "bench_pool: expected a count from 2 to 1e8, got '%s'\n", text);
        exit(2);
    }
    return n;
}

int main(int argc, char **argv)
{
    int reps = 7;
    long trees[16], chains[16];
    int n_trees = 0, n_chains = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = (int)parse_count(argv[++i]);
        else if (strcmp(argv[i], "--tree") == 0 && i + 1 < argc && n_trees < 16)
            trees[n_trees++] = parse_count(argv[++i]);
        else if (strcmp(argv[i], "--chain") == 0 && i + 1 < argc && n_chains < 16)
            chains[n_chains++] = parse_count(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--reps R] [--tree P]... [--chain N]...\n", argv[0]);
            return 2;
        }
    }
    if (!n_trees && !n_chains) {
        trees[n_trees++] = 16384;
        trees[n_trees++] = 250000;
        chains[n_chains++] = 50000;
    }
    microcrad_set_quiet(1);
    printf("ns per node: build backward release total (warm: fastest of %d reuses)\n", reps - 1);
    for (int s = 0; s < n_trees; s++) {
        Value **level = malloc((size_t)trees[s] * sizeof *level);
        if (!level)
            die("malloc");
        Phases cold = run_tree(trees[s], level), warm = run_tree(trees[s], level);
        for (int r = 2; r < reps; r++) {
            Phases p = run_tree(trees[s], level);
            if (total(p) < total(warm))
                warm = p;
        }
        report("tree", trees[s], 4 * trees[s] - 1, cold, warm);
        free(level);
    }
    for (int s = 0; s < n_chains; s++) {
        Phases cold = run_chain(chains[s]), warm = run_chain(chains[s]);
        for (int r = 2; r < reps; r++) {
            Phases p = run_chain(chains[s]);
            if (total(p) < total(warm))
                warm = p;
        }
        report("chain", chains[s], chains[s] + 2, cold, warm);
    }
    return microcrad_live_values() == 0 ? 0 : 1;
}
