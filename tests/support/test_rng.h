/*
 * The tests' deterministic generator: SplitMix64 (Steele, Lea and Flood
 * 2014). Written apart from the library's (src/random.h) on purpose: the
 * tests that draw lstm_model_init()'s stream check it against this copy.
 */
#ifndef LSTM_TEST_RNG_H
#define LSTM_TEST_RNG_H

#include <stdint.h>

typedef struct rng {
    uint64_t state;
} rng;

static inline uint64_t rng_next(rng *r)
{
    uint64_t z = (r->state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* Uniform in [0, 1) from the top 24 bits, as lstm_model_init() draws. */
static inline float rng_unit(rng *r)
{
    return (float)(rng_next(r) >> 40) * 0x1p-24f;
}

/* Uniform in [low, high), a float. */
static inline float rng_float(rng *r, float low, float high)
{
    return low + (high - low) * rng_unit(r);
}

/* Uniform in [low, high) with 53 random bits. */
static inline double rng_double(rng *r, double low, double high)
{
    return low + (high - low) * ((double)(rng_next(r) >> 11) * 0x1p-53);
}

#endif /* LSTM_TEST_RNG_H */
