/*
 * dot.c - the graph below a node as Graphviz DOT text, drawn like micrograd's
 * draw_dot: left to right, a record per Value showing its data and grad, and a small
 * node for the op that produced it, between the result and its operands.
 *
 *     digraph {
 *       rankdir=LR;
 *       "n55d0c3a0" [shape=record, label="{ data 2.0000 | grad 0.0000 }"];
 *       "n55d0c3a0_op" [label="*"];
 *       "n55d0c3a0_op" -> "n55d0c3a0";
 *       "n55d0c2f0" -> "n55d0c3a0_op";
 *       ...
 *     }
 *
 * A Value's DOT name is its address, as micrograd uses id(): unique while the graph
 * lives, and needing no table to look up.
 */
#include "internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The shortest %g form that reads back as x, so an exponent of 2 shows as "2". */
static void format_number(char *buf, size_t size, double x)
{
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(buf, size, "%.*g", precision, x);
        if (strtod(buf, NULL) == x)
            return;
    }
}

/* %.4f as Python prints it, which never shows a sign on NaN (C may print "-nan").
 * 320 bytes hold the longest case, -DBL_MAX: 309 digits, a sign, ".0000" and NUL. */
enum { FIXED_SIZE = 320 };
static void format_fixed(char buf[FIXED_SIZE], double x)
{
    if (isnan(x))
        snprintf(buf, FIXED_SIZE, "nan");
    else
        snprintf(buf, FIXED_SIZE, "%.4f", x);
}

/* The op node's label: micrograd's symbol, with the exponent of a constant power. */
static void op_label(char *buf, size_t size, const Value *v)
{
    if (v->op == MICROCRAD_OP_POW_CONST) {
        char number[32];
        format_number(number, sizeof number, v->param);
        snprintf(buf, size, "**%s", number);
    } else {
        snprintf(buf, size, "%s", microcrad_op_name(v->op));
    }
}

static uintptr_t dot_id(const Value *v) { return (uintptr_t)(const void *)v; }

/* Writes `text` with a backslash before each character in `special`: a label is the
 * user's text, and inside a DOT string or record it must not end the string or open a
 * field. Returns whether every write succeeded. */
static int write_escaped(FILE *out, const char *text, const char *special)
{
    for (const char *p = text; *p; p++) {
        if (strchr(special, *p) && fputc('\\', out) == EOF)
            return 0;
        /* A line break would end the DOT line; Graphviz reads the escape "\n". */
        if (*p == '\n' || *p == '\r') {
            if (fputs("\\n", out) == EOF)
                return 0;
            continue;
        }
        if (fputc(*p, out) == EOF)
            return 0;
    }
    return 1;
}

/* What a record label gives meaning to, and what a quoted string does. */
static const char RECORD_SPECIALS[] = "\\{}|<>\"";
static const char STRING_SPECIALS[] = "\\\"";

/*
 * Writes one Value, its op node and the edges into that op node. An operand used
 * several times (x * x) gets one edge, as in micrograd where _prev is a set: the
 * visited mark, clear on every node after mc_graph_order, tells repeats apart and is
 * cleared again before returning. A node with a label shows it first, as micrograd's
 * draw_dot does ({ a | data ... | grad ... }); an op text given to the node replaces
 * its op's symbol. Returns MICROCRAD_OK, MICROCRAD_ERR_IO or MICROCRAD_ERR_NOMEM.
 */
static int write_node(FILE *out, Value *v)
{
    char *label, *op_text;
    if (mc_side_record_label(v, &label, &op_text) != MICROCRAD_OK)
        return MICROCRAD_ERR_NOMEM;
    char data[FIXED_SIZE], grad[FIXED_SIZE];
    format_fixed(data, v->data);
    format_fixed(grad, v->grad);
    int ok = fprintf(out, "  \"n%" PRIxPTR "\" [shape=record, label=\"{ ", dot_id(v)) >= 0;
    if (ok && label)
        ok = write_escaped(out, label, RECORD_SPECIALS) && fputs(" | ", out) != EOF;
    ok = ok && fprintf(out, "data %s | grad %s }\"];\n", data, grad) >= 0;
    if (ok && (v->n_prevs > 0 || (op_text && *op_text))) {
        ok = fprintf(out, "  \"n%" PRIxPTR "_op\" [label=\"", dot_id(v)) >= 0;
        if (op_text) {
            ok = ok && write_escaped(out, op_text, STRING_SPECIALS);
        } else {
            char symbol[64];
            op_label(symbol, sizeof symbol, v);
            ok = ok && fputs(symbol, out) != EOF;
        }
        ok = ok && fprintf(out, "\"];\n") >= 0;
        ok = ok && fprintf(out, "  \"n%" PRIxPTR "_op\" -> \"n%" PRIxPTR "\";\n", dot_id(v),
                           dot_id(v)) >= 0;
    }
    mc_free(label);
    mc_free(op_text);
    for (uint32_t i = 0; i < v->n_prevs; i++) {
        Value *operand = v->prev[i];
        if (operand->flags & MC_FLAG_VISITED)
            continue;
        operand->flags |= MC_FLAG_VISITED;
        ok = ok && fprintf(out, "  \"n%" PRIxPTR "\" -> \"n%" PRIxPTR "_op\";\n", dot_id(operand),
                           dot_id(v)) >= 0;
    }
    for (uint32_t i = 0; i < v->n_prevs; i++)
        v->prev[i]->flags &= (uint16_t)~MC_FLAG_VISITED;
    return ok ? MICROCRAD_OK : MICROCRAD_ERR_IO;
}

int value_write_dot(Value *root, FILE *out)
{
    int status = mc_check(root, MC_KIND_VALUE, "value_write_dot", 1);
    if (status != MICROCRAD_OK)
        return status;
    if (!out)
        return mc_error(MICROCRAD_ERR_NULL, "value_write_dot: argument 2 is NULL");
    if (mc_in_backward_callback())
        return mc_error(MICROCRAD_ERR_ARGUMENT,
                        "value_write_dot: cannot walk a graph from inside a backward callback");
    /* Operands come before their results in this order, so every edge joins nodes
     * that are already declared; each Value is listed exactly once. */
    Value **order;
    size_t len;
    if (mc_graph_order(root, &order, &len) != MICROCRAD_OK)
        return mc_error(MICROCRAD_ERR_NOMEM, "value_write_dot: out of memory walking the graph");
    status = fprintf(out, "digraph {\n  rankdir=LR;\n") >= 0 ? MICROCRAD_OK : MICROCRAD_ERR_IO;
    for (size_t i = 0; i < len && status == MICROCRAD_OK; i++)
        status = write_node(out, order[i]);
    if (status == MICROCRAD_OK && fprintf(out, "}\n") < 0)
        status = MICROCRAD_ERR_IO;
    /* Flush so that a full disk shows up here, not when the caller closes the file. */
    if (status == MICROCRAD_OK && fflush(out) != 0)
        status = MICROCRAD_ERR_IO;
    mc_free(order);
    if (status == MICROCRAD_ERR_NOMEM)
        return mc_error(status, "value_write_dot: out of memory copying a label");
    if (status != MICROCRAD_OK)
        return mc_error(MICROCRAD_ERR_IO, "value_write_dot: writing to the stream failed");
    return MICROCRAD_OK;
}
