/*
 * test_dot.c - value_write_dot, the Graphviz picture of a graph.
 *
 * The text is written to a temporary file, read back and taken apart line by line:
 * every Value must be declared exactly once however often it is used, every edge must
 * appear once, and the labels must show each node's data, grad and op.
 */
#include "check.h"

#include <microcrad.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Writes the graph below root to a temporary file and returns the text (malloc'd,
 * NUL-terminated), or NULL when writing failed. */
static char *dot_text(Value *root)
{
    FILE *f = tmpfile();
    if (!CHECK(f != NULL))
        return NULL;
    char *text = NULL;
    if (CHECK_INT(value_write_dot(root, f), MICROCRAD_OK)) {
        long size = ftell(f);
        rewind(f);
        text = malloc((size_t)size + 1);
        if (CHECK(text != NULL)) {
            size_t got = fread(text, 1, (size_t)size, f);
            CHECK_INT(got, size);
            text[got] = '\0';
        }
    }
    fclose(f);
    return text;
}

/* How many lines of `text` contain `part`. */
static int count_lines(const char *text, const char *part)
{
    int count = 0;
    size_t len = strlen(part);
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t line_len = end ? (size_t)(end - line) : strlen(line);
        for (size_t i = 0; i + len <= line_len; i++)
            if (memcmp(line + i, part, len) == 0) {
                count++;
                break;
            }
        line += line_len + (end ? 1 : 0);
    }
    return count;
}

/* The DOT name of a Value's record, as the writer forms it from the address. */
static void record_name(char *buf, size_t size, const Value *v)
{
    snprintf(buf, size, "\"n%" PRIxPTR "\" [shape=record", (uintptr_t)(const void *)v);
}

/*
 * a = 2, b = 3, c = a*b = 6, d = c + a = 8, e = d*d = 64, f = e**2 = 4096.
 * a is used twice (by c and d) and d twice by the same node (e), so a walk that does
 * not remember what it has seen would list them twice.
 */
static void test_shared_graph(void)
{
    printf("shared nodes\n");
    Value *a = value_create_leaf(2.0), *b = value_create_leaf(3.0);
    Value *c = value_mul(a, b), *d = value_add(c, a), *e = value_mul(d, d);
    Value *f = value_pow_const(e, 2.0);
    CHECK_INT(value_backward(f), MICROCRAD_OK);
    char *text = dot_text(f);
    if (!text)
        goto out;

    CHECK(strncmp(text, "digraph {\n  rankdir=LR;\n", 24) == 0);
    CHECK(strlen(text) >= 2 && strcmp(text + strlen(text) - 2, "}\n") == 0);

    /* Six Values, each declared once. */
    CHECK_INT(count_lines(text, "shape=record"), 6);
    const Value *nodes[6] = {a, b, c, d, e, f};
    for (int i = 0; i < 6; i++) {
        char name[64];
        record_name(name, sizeof name, nodes[i]);
        CHECK_INT(count_lines(text, name), 1);
    }
    /* Four op nodes, one per non-leaf, with micrograd's symbols. */
    CHECK_INT(count_lines(text, "_op\" [label="), 4);
    CHECK_INT(count_lines(text, "_op\" [label=\"*\"]"), 2);
    CHECK_INT(count_lines(text, "_op\" [label=\"+\"]"), 1);
    CHECK_INT(count_lines(text, "_op\" [label=\"**2\"]"), 1);
    /* Edges: op -> result for each of the 4 ops, and operand -> op once per distinct
     * operand: c <- a, b; d <- c, a; e <- d (used twice, drawn once); f <- e. */
    CHECK_INT(count_lines(text, "->"), 4 + 6);
    /* Data and gradients: df/da = 2e * 2d * (b + 1) = 128 * 16 * 4 = 8192. */
    CHECK_CONTAINS(text, "{ data 4096.0000 | grad 1.0000 }");
    CHECK_CONTAINS(text, "{ data 64.0000 | grad 128.0000 }");
    CHECK_CONTAINS(text, "{ data 8.0000 | grad 2048.0000 }");
    CHECK_CONTAINS(text, "{ data 2.0000 | grad 8192.0000 }");
    CHECK_CONTAINS(text, "{ data 3.0000 | grad 4096.0000 }");

    /* The walk cleared its marks: gradients come out the same again. */
    value_zero_grad(f);
    CHECK_INT(value_backward(f), MICROCRAD_OK);
    CHECK_SAME(a->grad, 8192.0);
    free(text);
out:
    value_release(f);
    value_release(e);
    value_release(d);
    value_release(c);
    value_release(b);
    value_release(a);
}

/* Exponents print in their shortest form; a neuron node shows its name. */
static void test_labels(void)
{
    printf("labels\n");
    Value *x = value_create_leaf(-1.5);
    Value *w = value_create_leaf(0.25), *bias = value_create_leaf(0.125);
    Value *p = value_pow_const(x, 0.5);
    Value *n = value_neuron(1, &w, &x, bias);
    Value *parts[2] = {p, n};
    Value *s = value_sum(2, parts);
    char *text = dot_text(s);
    if (text) {
        CHECK_CONTAINS(text, "[label=\"**0.5\"]");
        CHECK_CONTAINS(text, "[label=\"neuron\"]");
        CHECK_CONTAINS(text, "[label=\"sum\"]");
        CHECK_CONTAINS(text, "{ data nan | grad 0.0000 }"); /* (-1.5)**0.5 */
        CHECK_CONTAINS(text, "{ data -0.2500 | grad 0.0000 }");
        CHECK_INT(count_lines(text, "shape=record"), 6);
        /* ops: p, n, s (3 edges into results); operands: x; w, x, bias; p, n. */
        CHECK_INT(count_lines(text, "->"), 3 + 1 + 3 + 2);
        free(text);
    }
    /* A leaf alone is one record and no edge. */
    text = dot_text(x);
    if (text) {
        CHECK_INT(count_lines(text, "shape=record"), 1);
        CHECK_INT(count_lines(text, "->"), 0);
        free(text);
    }
    value_release(s);
    value_release(n);
    value_release(p);
    value_release(bias);
    value_release(w);
    value_release(x);
}

/* A chain far deeper than any recursion could follow. */
static void test_deep_chain(void)
{
    enum { DEPTH = 50000 };
    printf("a chain of %d nodes\n", DEPTH);
    Value *v = value_create_leaf(0.0);
    for (int i = 0; i < DEPTH; i++) {
        Value *next = value_neg(v);
        value_release(v);
        v = next;
        if (!v)
            break;
    }
    if (CHECK(v != NULL)) {
        char *text = dot_text(v);
        if (text) {
            CHECK_INT(count_lines(text, "shape=record"), DEPTH + 1);
            CHECK_INT(count_lines(text, "->"), 2 * DEPTH);
            free(text);
        }
    }
    value_release(v);
}

static void test_errors(void)
{
    printf("errors\n");
    Value *a = value_create_leaf(1.0), *b = value_create_leaf(2.0);
    Value *c = value_add(a, b);
    FILE *f = tmpfile();
    CHECK_INT(value_write_dot(NULL, f), MICROCRAD_ERR_NULL);
    CHECK_INT(value_write_dot(c, NULL), MICROCRAD_ERR_NULL);
    CHECK_CONTAINS(microcrad_last_error(), "value_write_dot");
    Value fake;
    memset(&fake, 0x3C, sizeof fake);
    CHECK_INT(value_write_dot(&fake, f), MICROCRAD_ERR_FOREIGN);
    if (f)
        fclose(f);

    /* A stream that cannot be written to. */
    FILE *read_only = fopen("/dev/null", "r");
    if (read_only) {
        microcrad_clear_error();
        CHECK_INT(value_write_dot(c, read_only), MICROCRAD_ERR_IO);
        CHECK_CONTAINS(microcrad_last_error(), "writing");
        fclose(read_only);
    }
    /* A full device: the write is buffered, so only the flush can report it. */
    FILE *full = fopen("/dev/full", "w");
    if (full) {
        CHECK_INT(value_write_dot(c, full), MICROCRAD_ERR_IO);
        fclose(full);
    }

    /* Every allocation failing in turn: NOMEM, no marks left behind (the next write
     * is complete), nothing allocated. */
    int64_t live0 = microcrad_live_values();
    f = tmpfile();
    int64_t start = microcrad_allocation_count();
    CHECK_INT(value_write_dot(c, f), MICROCRAD_OK);
    int64_t k = microcrad_allocation_count() - start;
    printf("allocation failures: %lld allocation(s)\n", (long long)k);
    CHECK(k >= 1);
    for (int64_t fail = 1; fail <= k; fail++) {
        CHECK_INT(microcrad_fail_allocation(fail), MICROCRAD_OK);
        int status = value_write_dot(c, f);
        microcrad_fail_allocation(0);
        CHECK_INT(status, MICROCRAD_ERR_NOMEM);
        CHECK_CONTAINS(microcrad_last_error(), "memory");
        CHECK_INT(microcrad_live_values(), live0);
    }
    if (f)
        fclose(f);
    char *text = dot_text(c);
    if (text) {
        CHECK_INT(count_lines(text, "shape=record"), 3);
        CHECK_INT(count_lines(text, "->"), 3);
        free(text);
    }
    value_release(c);
    value_release(b);
    value_release(a);
}

int main(void)
{
    microcrad_set_quiet(1);
    int64_t live0 = microcrad_live_values();
    test_shared_graph();
    test_labels();
    test_deep_chain();
    test_errors();
    CHECK_INT(microcrad_live_values(), live0);
    return check_summary();
}
