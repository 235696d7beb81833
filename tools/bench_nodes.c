/*
 * bench_nodes.c - what a node costs in C: time to build, back-propagate and release,
 * and memory.
 *
 * Two graphs, both built through the public API the way a C program would:
 *
 *   chain: x_{k+1} = x_k * c, N links over one shared constant c, each handle given
 *          back as soon as the next link holds it (test_deep_chain's pattern). As deep
 *          as it is long, so every walk is iterative.
 *   wide:  a balanced tree of additions over N leaves (N - 1 binary nodes, depth
 *          log2 N): a graph with many leaves and short paths.
 *
 * Every phase is timed on its own (build, value_backward, the final value_release),
 * and reported per node of the graph (the chain: N links, the tree: N leaves and N - 1
 * additions); "total" is their sum. The first repetition
 * runs on fresh memory, so it pays the page faults of first touching the node pool
 * ("cold"); later repetitions reuse the pool, as a training loop that rebuilds its
 * graph every step does ("warm", the median is reported).
 *
 * Memory: the size of the node struct and of a binary node's block, and the growth of
 * the resident set while the first chain is built, divided by N (Linux only: read from
 * /proc/self/statm; reported as -1 elsewhere).
 *
 * Usage: bench_nodes [--json] [--chain N] [--wide N] [--reps R]
 * The results are information: nothing here passes or fails on time.
 */
#include <microcrad.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Resident set size in bytes, or -1 where /proc/self/statm does not exist. */
static long long resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    long long pages_total, pages_resident;
    int ok = fscanf(f, "%lld %lld", &pages_total, &pages_resident) == 2;
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return ok && page > 0 ? pages_resident * page : -1;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_nodes: %s failed: %s\n", what, microcrad_last_error());
    exit(1);
}

/* Seconds spent in each phase of one repetition. */
typedef struct Phases {
    double build, backward, release;
} Phases;

/* One chain of n links: built, back-propagated from its end, released. *rss_growth
 * (when not NULL) receives the resident-set growth over the build. */
static Phases run_chain(long n, long long *rss_growth)
{
    Phases p;
    long long rss0 = rss_growth ? resident_bytes() : -1;
    double t = now_seconds();
    Value *c = value_create_leaf(1.0 + 1.0 / (double)n);
    Value *x = value_create_leaf(0.5);
    if (!c || !x)
        die("value_create_leaf");
    for (long k = 0; k < n; k++) {
        Value *next = value_mul(x, c);
        if (!next)
            die("value_mul");
        value_release(x);
        x = next;
    }
    p.build = now_seconds() - t;
    if (rss_growth)
        *rss_growth = rss0 < 0 ? -1 : resident_bytes() - rss0;

    t = now_seconds();
    if (value_backward(x) != MICROCRAD_OK)
        die("value_backward");
    p.backward = now_seconds() - t;
    /* Uses the result, so the work cannot be thought away; dx_n/dc = n x_0 c^(n-1). */
    if (!(c->grad > 0.0))
        die("the chain's gradient check");

    t = now_seconds();
    value_release(x);
    p.release = now_seconds() - t;
    value_release(c);
    return p;
}

/* A balanced addition tree over n leaves. `level` is scratch space for n pointers. */
static Phases run_wide(long n, Value **level)
{
    Phases p;
    double t = now_seconds();
    for (long i = 0; i < n; i++) {
        level[i] = value_create_leaf((double)(i % 7) - 3.0);
        if (!level[i])
            die("value_create_leaf");
    }
    for (long width = n; width > 1;) {
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

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of the warm repetitions (all but the first), or the only one. */
static Phases median_warm(const Phases *runs, int reps)
{
    if (reps == 1)
        return runs[0];
    int m = reps - 1;
    double *column = malloc((size_t)m * sizeof *column);
    if (!column) {
        fprintf(stderr, "bench_nodes: out of memory\n");
        exit(1);
    }
    Phases out;
    double *fields[3] = {&out.build, &out.backward, &out.release};
    for (int f = 0; f < 3; f++) {
        for (int i = 0; i < m; i++) {
            const double *in[3] = {&runs[i + 1].build, &runs[i + 1].backward,
                                   &runs[i + 1].release};
            column[i] = *in[f];
        }
        qsort(column, (size_t)m, sizeof *column, compare_doubles);
        *fields[f] = m % 2 ? column[m / 2] : 0.5 * (column[m / 2 - 1] + column[m / 2]);
    }
    free(column);
    return out;
}

static double ns_per(double seconds, long nodes) { return 1e9 * seconds / (double)nodes; }

static void print_phases(int json, const char *name, const char *kind, Phases p, long nodes,
                         int last)
{
    double total = p.build + p.backward + p.release;
    if (json)
        printf("    \"%s_%s\": {\"build_ns\": %.2f, \"backward_ns\": %.2f, \"release_ns\": %.2f, "
               "\"total_ns\": %.2f}%s\n",
               name, kind, ns_per(p.build, nodes), ns_per(p.backward, nodes),
               ns_per(p.release, nodes), ns_per(total, nodes), last ? "" : ",");
    else
        printf("%-6s %-5s %10.1f %10.1f %10.1f %10.1f\n", name, kind, ns_per(p.build, nodes),
               ns_per(p.backward, nodes), ns_per(p.release, nodes), ns_per(total, nodes));
}

static long parse_count(const char *text, const char *flag)
{
    char *end;
    long n = strtol(text, &end, 10);
    if (*end != '\0' || n < 2 || n > INT32_MAX) {
        fprintf(stderr, "bench_nodes: %s needs a count from 2 to 2^31-1, got '%s'\n", flag, text);
        exit(2);
    }
    return n;
}

int main(int argc, char **argv)
{
    int json = 0, reps = 5;
    long chain = 1000000, wide = 1000000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--chain") == 0 && i + 1 < argc)
            chain = parse_count(argv[++i], "--chain");
        else if (strcmp(argv[i], "--wide") == 0 && i + 1 < argc)
            wide = parse_count(argv[++i], "--wide");
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = (int)parse_count(argv[++i], "--reps");
        else {
            fprintf(stderr, "usage: %s [--json] [--chain N] [--wide N] [--reps R]\n", argv[0]);
            return 2;
        }
    }
    microcrad_set_quiet(1);
    Phases *runs = malloc((size_t)reps * sizeof *runs);
    Value **level = malloc((size_t)wide * sizeof *level);
    if (!runs || !level) {
        fprintf(stderr, "bench_nodes: out of memory\n");
        return 1;
    }

    /* The chain first, on fresh memory: its build measures the resident-set growth. */
    long long rss_growth = -1;
    for (int r = 0; r < reps; r++)
        runs[r] = run_chain(chain, r == 0 ? &rss_growth : NULL);
    Phases chain_cold = runs[0], chain_warm = median_warm(runs, reps);
    /* The pool is warm now: the wide tree's first run reuses the chain's blocks. */
    for (int r = 0; r < reps; r++)
        runs[r] = run_wide(wide, level);
    Phases wide_warm = median_warm(runs, reps);
    long wide_nodes = 2 * wide - 1; /* the leaves and the additions */

    unsigned features = microcrad_build_features();
    int pooled = !(features & MICROCRAD_BUILD_VALGRIND);
    /* A binary node: the struct and its two operand pointers, one pool block. */
    size_t binary_bytes = sizeof(Value) + 2 * sizeof(Value *);
    double rss_per_node = rss_growth < 0 ? -1.0 : (double)rss_growth / (double)chain;

    if (json) {
        printf("{\n");
        printf("    \"version\": \"%s\",\n", microcrad_version());
        printf("    \"pooled\": %s,\n", pooled ? "true" : "false");
        printf("    \"chain_nodes\": %ld,\n    \"wide_leaves\": %ld,\n    \"reps\": %d,\n", chain,
               wide, reps);
        printf("    \"value_struct_bytes\": %zu,\n    \"binary_node_bytes\": %zu,\n",
               sizeof(Value), binary_bytes);
        printf("    \"rss_bytes_per_chain_node\": %.2f,\n", rss_per_node);
        print_phases(1, "chain", "cold", chain_cold, chain, 0);
        print_phases(1, "chain", "warm", chain_warm, chain, 0);
        print_phases(1, "wide", "warm", wide_warm, wide_nodes, 1);
        printf("}\n");
    } else {
        printf("microcrad %s, %s; chain of %ld links, tree over %ld leaves, %d repetitions\n",
               microcrad_version(), pooled ? "node pool" : "plain malloc", chain, wide, reps);
        printf("ns per node:\n");
        printf("%-6s %-5s %10s %10s %10s %10s\n", "graph", "pool", "build", "backward", "release",
               "total");
        print_phases(0, "chain", "cold", chain_cold, chain, 0);
        print_phases(0, "chain", "warm", chain_warm, chain, 0);
        print_phases(0, "wide", "warm", wide_warm, wide_nodes, 0);
        printf("bytes per binary node: %zu (struct %zu + 2 operand pointers); "
               "resident-set growth per chain node: %.1f\n",
               binary_bytes, sizeof(Value), rss_per_node);
    }
    free(level);
    free(runs);
    return 0;
}
