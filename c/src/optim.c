/*
 * optim.c - optimizers: SGD (with momentum and weight decay) and Adam, following
 * torch.optim's update formulas operation by operation.
 *
 * An optimizer holds a reference to each of its parameters, so they cannot be freed
 * under it, and a per-parameter state array (momentum buffers, or Adam's two moment
 * estimates) allocated once at creation: a step allocates nothing.
 */
#include "internal.h"

#include <math.h>
#include <stdio.h>

typedef enum OptimizerKind { KIND_SGD, KIND_ADAM } OptimizerKind;

struct microcrad_optimizer {
    Value **params;    /* n_params parameters, one reference held to each */
    double *state;     /* SGD: n momentum buffers; Adam: n first moments, then n second */
    uint32_t magic;    /* MC_MAGIC_OPTIMIZER while alive (see internal.h for its place) */
    uint32_t n_params;
    OptimizerKind kind;
    int64_t steps;     /* updates done so far: Adam's t, and SGD's "first step" test */
    double lr, weight_decay;
    double momentum;   /* SGD */
    double beta1, beta2, eps; /* Adam */
};

#define CHECK_OPTIMIZER(opt, fn) \
    MC_CHECK_HANDLE((opt), MC_MAGIC_OPTIMIZER, "optimizer", (fn), 1)

/* A hyper-parameter that must be finite and >= 0 (NaN fails both tests). */
static int check_non_negative(const char *fn, const char *name, double x)
{
    if (x >= 0.0 && isfinite(x))
        return MICROCRAD_OK;
    return mc_error(MICROCRAD_ERR_ARGUMENT, "%s: %s must be finite and >= 0, got %g", fn, name, x);
}

/* Checks the parameter list given to a constructor. */
static int check_params(const char *fn, int32_t n_params, Value *const *params)
{
    if (n_params < 0)
        return mc_error(MICROCRAD_ERR_ARGUMENT, "%s: n_params must be >= 0, got %ld", fn,
                        (long)n_params);
    if (n_params > 0 && !params)
        return mc_error(MICROCRAD_ERR_NULL, "%s: params is NULL but n_params is %ld", fn,
                        (long)n_params);
    for (int32_t i = 0; i < n_params; i++) {
        if (params[i] && params[i]->magic == MICROCRAD_MAGIC_LIVE)
            continue;
        char where[96]; /* names the slot in the message */
        snprintf(where, sizeof where, "%s (params[%ld])", fn, (long)i);
        return mc_check_value(params[i], where, 2);
    }
    return MICROCRAD_OK;
}

/*
 * The part both constructors share, called once the arguments are checked: allocates
 * the optimizer with `state_per_param` zeroed doubles per parameter and retains the
 * parameters. Returns NULL (error recorded, nothing retained) on failure.
 */
static microcrad_optimizer *optimizer_new(const char *fn, OptimizerKind kind, int32_t n_params,
                                          Value *const *params, size_t state_per_param)
{
    size_t n = (size_t)n_params;
    if (n > SIZE_MAX / sizeof(double) / (state_per_param ? state_per_param : 1)) {
        mc_error(MICROCRAD_ERR_NOMEM, "%s: %ld parameters are too many", fn, (long)n_params);
        return NULL;
    }
    microcrad_optimizer *opt = mc_alloc(sizeof *opt);
    if (!opt)
        goto out_of_memory;
    *opt = (microcrad_optimizer){.kind = kind, .n_params = (uint32_t)n_params};
    /* malloc(0) may return NULL, so empty arrays are simply not allocated. */
    if (n > 0) {
        opt->params = mc_alloc(n * sizeof *opt->params);
        if (!opt->params)
            goto out_of_memory;
    }
    if (n > 0 && state_per_param > 0) {
        opt->state = mc_alloc(n * state_per_param * sizeof *opt->state);
        if (!opt->state)
            goto out_of_memory;
        for (size_t i = 0; i < n * state_per_param; i++)
            opt->state[i] = 0.0;
    }
    for (size_t i = 0; i < n; i++) {
        int status = value_retain(params[i]);
        if (status != MICROCRAD_OK) {
            while (i-- > 0)
                value_release(params[i]);
            mc_free(opt->state);
            mc_free(opt->params);
            mc_free(opt);
            mc_error(status, "%s: cannot retain params[%lu]", fn, (unsigned long)i);
            return NULL;
        }
        opt->params[i] = params[i];
    }
    opt->magic = MC_MAGIC_OPTIMIZER;
    return opt;

out_of_memory:
    if (opt) {
        mc_free(opt->state);
        mc_free(opt->params);
        mc_free(opt);
    }
    mc_error(MICROCRAD_ERR_NOMEM, "%s: out of memory", fn);
    return NULL;
}

microcrad_optimizer *microcrad_sgd_create(int32_t n_params, Value *const *params, double lr,
                                          double momentum, double weight_decay)
{
    const char *fn = "microcrad_sgd_create";
    if (check_params(fn, n_params, params) != MICROCRAD_OK ||
        check_non_negative(fn, "lr", lr) != MICROCRAD_OK ||
        check_non_negative(fn, "momentum", momentum) != MICROCRAD_OK ||
        check_non_negative(fn, "weight_decay", weight_decay) != MICROCRAD_OK)
        return NULL;
    /* Plain SGD keeps no state; with momentum, one buffer per parameter. */
    microcrad_optimizer *opt =
        optimizer_new(fn, KIND_SGD, n_params, params, momentum != 0.0 ? 1 : 0);
    if (opt) {
        opt->lr = lr;
        opt->momentum = momentum;
        opt->weight_decay = weight_decay;
    }
    return opt;
}

/* A beta must lie in [0, 1) (NaN fails the test). */
static int check_beta(const char *fn, const char *name, double beta)
{
    if (beta >= 0.0 && beta < 1.0)
        return MICROCRAD_OK;
    return mc_error(MICROCRAD_ERR_ARGUMENT, "%s: %s must be in [0, 1), got %g", fn, name, beta);
}

microcrad_optimizer *microcrad_adam_create(int32_t n_params, Value *const *params, double lr,
                                           double beta1, double beta2, double eps,
                                           double weight_decay)
{
    const char *fn = "microcrad_adam_create";
    if (check_params(fn, n_params, params) != MICROCRAD_OK ||
        check_non_negative(fn, "lr", lr) != MICROCRAD_OK ||
        check_beta(fn, "beta1", beta1) != MICROCRAD_OK ||
        check_beta(fn, "beta2", beta2) != MICROCRAD_OK ||
        check_non_negative(fn, "eps", eps) != MICROCRAD_OK ||
        check_non_negative(fn, "weight_decay", weight_decay) != MICROCRAD_OK)
        return NULL;
    microcrad_optimizer *opt = optimizer_new(fn, KIND_ADAM, n_params, params, 2);
    if (opt) {
        opt->lr = lr;
        opt->beta1 = beta1;
        opt->beta2 = beta2;
        opt->eps = eps;
        opt->weight_decay = weight_decay;
    }
    return opt;
}

/*
 * The parameters are retained, so they can only have died if someone released them
 * more often than they retained them. Checking them all before touching any keeps the
 * promise that nothing changes on error.
 */
static int check_live_params(const microcrad_optimizer *opt, const char *fn)
{
    for (uint32_t i = 0; i < opt->n_params; i++) {
        const Value *p = opt->params[i];
        if (p->magic != MICROCRAD_MAGIC_LIVE)
            return mc_error(p->magic == MICROCRAD_MAGIC_DEAD ? MICROCRAD_ERR_RELEASED
                                                             : MICROCRAD_ERR_FOREIGN,
                            "%s: parameter %u is no longer a live Value (released by someone "
                            "who did not own a reference?)",
                            fn, (unsigned)i);
    }
    return MICROCRAD_OK;
}

/* torch.optim.SGD with dampening 0 and no Nesterov, one parameter at a time. */
static void sgd_step(microcrad_optimizer *opt)
{
    for (uint32_t i = 0; i < opt->n_params; i++) {
        Value *p = opt->params[i];
        double g = p->grad;
        /* torch skips the term when weight_decay is 0, which matters for inf data. */
        if (opt->weight_decay != 0.0)
            g = g + opt->weight_decay * p->data;
        if (opt->momentum != 0.0) {
            double *buf = &opt->state[i];
            *buf = opt->steps == 1 ? g : opt->momentum * *buf + g;
            g = *buf;
        }
        p->data = p->data - opt->lr * g;
    }
}

/* torch.optim.Adam without amsgrad: bias-corrected first and second moments. */
static void adam_step(microcrad_optimizer *opt)
{
    double t = (double)opt->steps;
    double step_size = opt->lr / (1.0 - pow(opt->beta1, t));
    double bias_correction2_sqrt = sqrt(1.0 - pow(opt->beta2, t));
    double *m = opt->state, *v = opt->state + opt->n_params;
    for (uint32_t i = 0; i < opt->n_params; i++) {
        Value *p = opt->params[i];
        double g = p->grad;
        if (opt->weight_decay != 0.0)
            g = g + opt->weight_decay * p->data;
        m[i] = opt->beta1 * m[i] + (1.0 - opt->beta1) * g;
        v[i] = opt->beta2 * v[i] + (1.0 - opt->beta2) * g * g;
        double denom = sqrt(v[i]) / bias_correction2_sqrt + opt->eps;
        p->data = p->data - step_size * m[i] / denom;
    }
}

int microcrad_optimizer_step(microcrad_optimizer *opt)
{
    const char *fn = "microcrad_optimizer_step";
    int status = CHECK_OPTIMIZER(opt, fn);
    if (status == MICROCRAD_OK)
        status = check_live_params(opt, fn);
    if (status != MICROCRAD_OK)
        return status;
    opt->steps++;
    if (opt->kind == KIND_SGD)
        sgd_step(opt);
    else
        adam_step(opt);
    return MICROCRAD_OK;
}

int microcrad_optimizer_zero_grad(microcrad_optimizer *opt)
{
    const char *fn = "microcrad_optimizer_zero_grad";
    int status = CHECK_OPTIMIZER(opt, fn);
    if (status == MICROCRAD_OK)
        status = check_live_params(opt, fn);
    if (status != MICROCRAD_OK)
        return status;
    for (uint32_t i = 0; i < opt->n_params; i++)
        opt->params[i]->grad = 0.0;
    return MICROCRAD_OK;
}

int microcrad_optimizer_set_lr(microcrad_optimizer *opt, double lr)
{
    const char *fn = "microcrad_optimizer_set_lr";
    int status = CHECK_OPTIMIZER(opt, fn);
    if (status == MICROCRAD_OK)
        status = check_non_negative(fn, "lr", lr);
    if (status == MICROCRAD_OK)
        opt->lr = lr;
    return status;
}

double microcrad_optimizer_lr(const microcrad_optimizer *opt)
{
    return CHECK_OPTIMIZER(opt, "microcrad_optimizer_lr") == MICROCRAD_OK ? opt->lr : NAN;
}

void microcrad_optimizer_free(microcrad_optimizer *opt)
{
    if (!opt || CHECK_OPTIMIZER(opt, "microcrad_optimizer_free") != MICROCRAD_OK)
        return;
    for (uint32_t i = 0; i < opt->n_params; i++)
        value_release(opt->params[i]);
    mc_free(opt->state);
    mc_free(opt->params);
    opt->magic = MC_HANDLE_DEAD(MC_MAGIC_OPTIMIZER);
    mc_free(opt);
}
