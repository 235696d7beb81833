/*
 * training.h - what the C training examples share: stopping with the library's
 * explanation, the command line's step count, a check on the nodes built, and a
 * network's parameter list. The nodes a training step builds need no bookkeeping
 * here: each step runs inside a microcrad scope, which gives them all back.
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

/* Stops the program if `v`, a node just made, is NULL (the operation failed), else
 * returns it. Inside a scope an operation given NULL fails too, so a whole
 * expression can be checked once, at its end. */
static Value *must(Value *v)
{
    if (!v)
        fail("building the graph");
    return v;
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
