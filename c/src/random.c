/*
 * random.c - the small deterministic generator that initialises networks.
 *
 * splitmix64 (Steele, Lea and Flood, 2014): one 64-bit word of state, any seed
 * valid, good enough statistics for drawing weights, and the same sequence on every
 * platform, so a network made from a seed is the same everywhere.
 */
#include "internal.h"

#include <math.h>

static uint64_t splitmix64_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

double microcrad_random_uniform(uint64_t *rng, double low, double high)
{
    if (!rng) {
        mc_error(MICROCRAD_ERR_NULL, "microcrad_random_uniform: argument 1 is NULL");
        return NAN;
    }
    /* The top 53 bits make a double in [0, 1) with every value equally likely. */
    double unit = (double)(splitmix64_next(rng) >> 11) * 0x1.0p-53;
    return low + (high - low) * unit;
}
