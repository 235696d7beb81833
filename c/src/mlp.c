/*
 * mlp.c - micrograd's MLP: layers in sequence, each reading the previous one's outputs.
 */
#include "internal.h"

typedef struct MlpLayer {
    microcrad_layer *layer; /* owned */
    int32_t n_out;          /* its width, which the layer handle does not expose */
} MlpLayer;

struct microcrad_mlp {
    McHandle handle;       /* the canary, MC_MAGIC_MLP while alive (see check.c) */
    int32_t n_in, n_out;   /* inputs of the first layer, outputs of the last */
    int64_t n_params;
    int32_t n_layers;
    int32_t widest_hidden; /* widest layer but the last: sizes forward's scratch arrays */
    MlpLayer *layers;      /* n_layers, an array of its own (see mc_alloc_handle) */
};

#define CHECK_MLP(mlp, fn) mc_check((mlp), MC_KIND_MLP, (fn), 1)

/* The arguments of microcrad_mlp_create, checked before anything is allocated. */
static int check_shape(int32_t n_in, int32_t n_layers, const int32_t *sizes, const char *fn)
{
    if (n_in < 0)
        return mc_error(MICROCRAD_ERR_ARGUMENT, "%s: n_in must be >= 0, got %ld", fn, (long)n_in);
    if (n_layers < 1)
        return mc_error(MICROCRAD_ERR_ARGUMENT, "%s: n_layers must be >= 1, got %ld", fn,
                        (long)n_layers);
    if (!sizes)
        return mc_error(MICROCRAD_ERR_NULL, "%s: argument 3 (sizes) is NULL", fn);
    for (int32_t l = 0; l < n_layers; l++)
        if (sizes[l] < 1)
            return mc_error(MICROCRAD_ERR_ARGUMENT, "%s: sizes[%ld] must be >= 1, got %ld", fn,
                            (long)l, (long)sizes[l]);
    return MICROCRAD_OK;
}

microcrad_mlp *microcrad_mlp_create(int32_t n_in, int32_t n_layers, const int32_t *sizes,
                                    microcrad_activation hidden, microcrad_activation output,
                                    uint64_t *rng)
{
    const char *fn = "microcrad_mlp_create";
    if (check_shape(n_in, n_layers, sizes, fn) != MICROCRAD_OK ||
        mc_check_activation(hidden, fn, 4) != MICROCRAD_OK ||
        mc_check_activation(output, fn, 5) != MICROCRAD_OK || mc_check_rng(rng, fn, 6) != MICROCRAD_OK)
        return NULL;
    microcrad_mlp *mlp = mc_alloc_handle(fn, sizeof *mlp);
    if (!mlp)
        return NULL;
    MlpLayer *layers = mc_alloc_array(fn, (size_t)n_layers, sizeof layers[0]);
    if (!layers) {
        mc_free(mlp);
        return NULL;
    }
    *mlp = (microcrad_mlp){
        .n_in = n_in, .n_out = sizes[n_layers - 1], .n_layers = n_layers, .layers = layers};
    /* Draw from a copy, so that a failure leaves the caller's generator untouched. */
    uint64_t state = *rng;
    for (int32_t l = 0; l < n_layers; l++) {
        int last = l == n_layers - 1;
        int32_t layer_in = l == 0 ? n_in : sizes[l - 1];
        microcrad_layer *layer = microcrad_layer_create(layer_in, sizes[l], last ? output : hidden,
                                                        &state);
        if (!layer) {
            while (l-- > 0)
                microcrad_layer_free(mlp->layers[l].layer);
            mc_free(mlp->layers);
            mc_free(mlp);
            return NULL;
        }
        mlp->layers[l] = (MlpLayer){layer, sizes[l]};
        mlp->n_params += microcrad_layer_n_parameters(layer);
        if (!last && sizes[l] > mlp->widest_hidden)
            mlp->widest_hidden = sizes[l];
    }
    mlp->handle = (McHandle){.magic = MC_MAGIC_MLP}; /* the unused bytes zeroed too */
    *rng = state;
    return mlp;
}

int microcrad_mlp_forward(const microcrad_mlp *mlp, Value *const *x, Value **out)
{
    const char *fn = "microcrad_mlp_forward";
    int status = CHECK_MLP(mlp, fn);
    if (status != MICROCRAD_OK)
        return status;
    status = mc_check_inputs(mlp->n_in, x, fn, 2);
    if (status == MICROCRAD_OK && !out)
        status = mc_error(MICROCRAD_ERR_NULL, "%s: argument 3 is NULL", fn);
    /* Overlapping: out is left as it is, since clearing it would clear inputs too. */
    if (status == MICROCRAD_OK &&
        mc_check_no_overlap(x, mlp->n_in, out, mlp->n_out, fn) != MICROCRAD_OK)
        return MICROCRAD_ERR_ARGUMENT;
    /* Room for the outputs in the innermost scope, if one is open. */
    if (status == MICROCRAD_OK)
        status = mc_results_reserve((size_t)mlp->n_out, fn);
    /* Hidden layers write into two halves of one scratch array in turn; the last
     * writes straight into out. */
    Value **scratch = NULL;
    if (status == MICROCRAD_OK && mlp->n_layers > 1) {
        scratch = mc_alloc(2 * (size_t)mlp->widest_hidden * sizeof *scratch);
        if (!scratch)
            status = mc_error(MICROCRAD_ERR_NOMEM, "%s: out of memory", fn);
    }
    Value *const *in = x;
    for (int32_t l = 0; l < mlp->n_layers && status == MICROCRAD_OK; l++) {
        Value **dst = l == mlp->n_layers - 1 ? out : scratch + (l % 2) * mlp->widest_hidden;
        status = mc_layer_outputs(mlp->layers[l].layer, in, dst, fn);
        /* The previous layer's outputs are done with: the new nodes hold what they use. */
        if (l > 0)
            for (int32_t j = 0; j < mlp->layers[l - 1].n_out; j++)
                value_release(in[j]);
        in = dst;
    }
    mc_free(scratch);
    if (status != MICROCRAD_OK && out)
        for (int32_t j = 0; j < mlp->n_out; j++)
            out[j] = NULL;
    if (status == MICROCRAD_OK)
        for (int32_t j = 0; j < mlp->n_out; j++)
            mc_result(out[j]); /* only the outputs are handed out */
    return status;
}

int64_t microcrad_mlp_parameters(const microcrad_mlp *mlp, Value **out, int64_t capacity)
{
    const char *fn = "microcrad_mlp_parameters";
    int status = CHECK_MLP(mlp, fn);
    if (status != MICROCRAD_OK)
        return status;
    status = mc_check_capacity(fn, out, capacity, mlp->n_params);
    if (status != MICROCRAD_OK)
        return status;
    if (out) {
        int64_t written = 0;
        for (int32_t l = 0; l < mlp->n_layers; l++)
            written += microcrad_layer_parameters(mlp->layers[l].layer, out + written,
                                                  capacity - written);
    }
    return mlp->n_params;
}

int64_t microcrad_mlp_n_parameters(const microcrad_mlp *mlp)
{
    int status = CHECK_MLP(mlp, "microcrad_mlp_n_parameters");
    return status == MICROCRAD_OK ? mlp->n_params : status;
}

void microcrad_mlp_free(microcrad_mlp *mlp)
{
    if (!mlp || CHECK_MLP(mlp, "microcrad_mlp_free") != MICROCRAD_OK)
        return;
    for (int32_t l = 0; l < mlp->n_layers; l++)
        microcrad_layer_free(mlp->layers[l].layer);
    mlp->handle.magic = MC_MAGIC_DEAD(MC_MAGIC_MLP);
    mc_free(mlp->layers);
    mc_free(mlp);
}
