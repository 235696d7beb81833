/*
 * check.c - the one check of every pointer the public API is given, whatever its kind:
 * Value, tape, optimizer, neuron, layer or MLP. Like SQLite's sqlite3SafetyCheckOk, it
 * looks only at the pointer and its canary, so it costs two tests and a load on the way
 * in; this file is its slow path, which works out what the pointer is and says so.
 *
 * The fast path (mc_is_live, mc_check, mc_check_slot in internal.h) tests alignment
 * before it reads anything, so a misaligned pointer is refused without the
 * misaligned load that UBSan (rightly) aborts on.
 */
#include "internal.h"

#include <inttypes.h>

/* How messages name each kind, alone and with its article. */
static const char *const kind_name[MC_KIND_COUNT] = {
    [MC_KIND_VALUE] = "Value",   [MC_KIND_TAPE] = "tape",   [MC_KIND_OPTIMIZER] = "optimizer",
    [MC_KIND_NEURON] = "neuron", [MC_KIND_LAYER] = "layer", [MC_KIND_MLP] = "MLP",
    [MC_KIND_SCOPE] = "scope",
};
static const char *const a_kind[MC_KIND_COUNT] = {
    [MC_KIND_VALUE] = "a Value",       [MC_KIND_TAPE] = "a tape",
    [MC_KIND_OPTIMIZER] = "an optimizer", [MC_KIND_NEURON] = "a neuron",
    [MC_KIND_LAYER] = "a layer",       [MC_KIND_MLP] = "an MLP",
    [MC_KIND_SCOPE] = "a scope",
};

/* The canary of an aligned, non-NULL pointer, read without assuming its type. */
static uint32_t canary_at(const void *p)
{
    uint32_t canary;
    memcpy(&canary, (const unsigned char *)p + MC_CANARY_OFFSET, sizeof canary);
    return canary;
}

static int misaligned(const void *p) { return ((uintptr_t)p & (MC_HANDLE_ALIGNMENT - 1)) != 0; }

/* The kind whose LIVE (*dead = 0) or DEAD (*dead = 1) canary `canary` is, or
 * MC_KIND_COUNT when it is nobody's. */
static mc_kind kind_of_canary(uint32_t canary, int *dead)
{
    for (int k = 0; k < MC_KIND_COUNT; k++) {
        uint32_t live = mc_live_canary((mc_kind)k);
        if (canary == live || canary == MC_MAGIC_DEAD(live)) {
            *dead = canary != live;
            return (mc_kind)k;
        }
    }
    return MC_KIND_COUNT;
}

int mc_check_status(const void *p, mc_kind kind)
{
    if (!p)
        return MICROCRAD_ERR_NULL;
    if (misaligned(p))
        return MICROCRAD_ERR_FOREIGN;
    uint32_t canary = canary_at(p);
    if (canary == mc_live_canary(kind))
        return MICROCRAD_OK;
    return canary == MC_MAGIC_DEAD(mc_live_canary(kind)) ? MICROCRAD_ERR_RELEASED
                                                         : MICROCRAD_ERR_FOREIGN;
}

int mc_check_failed(const void *p, mc_kind kind, const char *fn, int arg, const char *array,
                    int64_t index)
{
    /* "fn: argument 2" or "fn (x[3]): argument 2" */
    char where[160];
    if (array)
        snprintf(where, sizeof where, "%s (%s[%" PRId64 "]): argument %d", fn, array, index,
                 arg);
    else
        snprintf(where, sizeof where, "%s: argument %d", fn, arg);
    const char *expected = kind_name[kind];

    if (!p)
        return mc_error(MICROCRAD_ERR_NULL, "%s is NULL", where);
    if (misaligned(p))
        return mc_error(MICROCRAD_ERR_FOREIGN,
                        "%s is not a microcrad %s (%p is misaligned for any microcrad object)",
                        where, expected, p);

    uint32_t canary = canary_at(p);
    int dead = 0;
    mc_kind found = kind_of_canary(canary, &dead);
    if (found == kind) {
        /* mc_is_live refused it and it is of this kind: it reads DEAD. */
        if (kind == MC_KIND_VALUE)
            return mc_error(MICROCRAD_ERR_RELEASED,
                            "%s is a released Value (used after its last value_release)",
                            where);
        return mc_error(MICROCRAD_ERR_RELEASED, "%s is a freed %s", where, expected);
    }
    if (found != MC_KIND_COUNT && dead)
        return mc_error(MICROCRAD_ERR_FOREIGN, "%s is not a microcrad %s: it is a %s %s", where,
                        expected, found == MC_KIND_VALUE ? "released" : "freed",
                        kind_name[found]);
    if (found != MC_KIND_COUNT)
        return mc_error(MICROCRAD_ERR_FOREIGN, "%s is not a microcrad %s: it is %s", where,
                        expected, a_kind[found]);
    return mc_error(MICROCRAD_ERR_FOREIGN, "%s is not a microcrad %s (canary 0x%08" PRIx32 ")",
                    where, expected, canary);
}
