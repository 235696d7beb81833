/*
 * training.h - what the C training examples share: stopping with the library's
 * explanation, the command line's step count, the nodes of one step collected to be
 * given back together, and a network's parameter list.
 *
 * Each example defines EXAMPLE_NAME (its name in messages) before including this.
 */
#ifndef EXAMPLE_TRAINING_H
#define EXAMPLE_TRAINING_H

#include <microcrad.h>

#include <stdio.h>
#include <stdlib.h>

#ifndef EXAMPLE_NAME
#error "define EXAMPLE_NAME before including training.h"
#endif

/* Stops the program with the library's explanation of what went wrong. */
static void fail(const char *what)
{
    fprintf(stderr, EXAMPLE_NAME ": %s: %s\n", what, microcrad_last_error());
    exit(1);
}

/* The number of training steps: the first argument, or `default_steps`. Stops the
 * program with a usage message when it is not a number from 1 to 1000000. */
static long steps_argument(int argc, char **argv, long default_steps)
{
    long steps = default_steps;
    char *end = NULL;
    if (argc > 1)
        steps = strtol(argv[1], &end, 10);
    /* A whole argument that is all digits: "5x" or "" is a usage error, not 5 or 0. */
    if (steps < 1 || steps > 1000000 || (end && (end == argv[1] || *end != '\0'))) {
        fprintf(stderr, "usage: " EXAMPLE_NAME " [steps]   (1 to 1000000, default %ld)\n",
                default_steps);
        exit(2);
    }
    return steps;
}

/*
 * Every operation returns a new reference, and each node holds references to its
 * operands, so the loss keeps its whole graph alive. The program only has to give
 * back the handles it was handed: keep() collects them during a step and
 * drop_all() returns them once the step is over.
 */
typedef struct Nodes {
    Value **items;
    size_t len, cap;
} Nodes;

/* Adds `v`, a node just made, to `nodes` and returns it; stops the program if the
 * operation that made it failed (v is NULL). */
static Value *keep(Nodes *nodes, Value *v)
{
    if (!v)
        fail("building the graph");
    if (nodes->len == nodes->cap) {
        size_t cap = nodes->cap ? 2 * nodes->cap : 1024;
        Value **items = realloc(nodes->items, cap * sizeof *items);
        if (!items)
            fail("out of memory");
        nodes->items = items;
        nodes->cap = cap;
    }
    nodes->items[nodes->len++] = v;
    return v;
}

/* Gives back every node kept since the last call; the list can be filled again. */
static void drop_all(Nodes *nodes)
{
    for (size_t i = 0; i < nodes->len; i++)
        value_release(nodes->items[i]);
    nodes->len = 0;
}

/* The parameters of `model` in a new array (borrowed pointers: the model holds them),
 * which the caller frees; their number in *n_params. */
static Value **mlp_parameter_list(const microcrad_mlp *model, int32_t *n_params)
{
    *n_params = (int32_t)microcrad_mlp_n_parameters(model);
    Value **params = malloc((size_t)*n_params * sizeof *params);
    if (!params || microcrad_mlp_parameters(model, params, *n_params) != *n_params)
        fail("listing the parameters");
    return params;
}

/* Whether every node has been freed; says how many were not when some are left. */
static int all_values_freed(void)
{
    long long live = (long long)microcrad_live_values();
    if (live != 0)
        fprintf(stderr, EXAMPLE_NAME ": %lld Values were not freed\n", live);
    return live == 0;
}

#endif /* EXAMPLE_TRAINING_H */
