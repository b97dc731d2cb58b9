/* rng.h - a seeded PRNG with explicit state (xoshiro128** seeded by
 * splitmix64). No globals: every model, job and test owns its Rng, so the
 * same seed gives the same numbers on every run. */
#ifndef MN_RNG_H
#define MN_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t s[4];
} Rng;

void rng_seed(Rng *r, uint64_t seed);
uint32_t rng_u32(Rng *r);
/* Uniform in [0, 1). */
float rng_uniform(Rng *r);
/* Uniform integer in [0, n), unbiased. */
uint32_t rng_below(Rng *r, uint32_t n);
/* Standard normal (Box-Muller). */
float rng_normal(Rng *r);
/* Fisher-Yates shuffle of idx[0..n). */
void rng_shuffle(Rng *r, uint32_t *idx, size_t n);

#endif
