/*
 * SplitMix64 (Steele, Lea and Flood 2014), the library's one generator
 * (private): the stream of lstm_model_init(), lstm_dense_init() and
 * lstm_embedding_init() (its pairs of words, by Box-Muller), and
 * the mix of the dropout masks' counter-based hash (dropout.h).
 */
#ifndef LSTM_RANDOM_H
#define LSTM_RANDOM_H

#include <stddef.h>
#include <stdint.h>

/* The golden-ratio increment of the state. */
#define RANDOM_GAMMA UINT64_C(0x9E3779B97F4A7C15)

/* SplitMix64's finaliser: a bijective mix of all 64 bits. */
static inline uint64_t random_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* The next word of the stream: one state word, full period. */
static inline uint64_t random_next(uint64_t *state)
{
    return random_mix(*state += RANDOM_GAMMA);
}

/* A uniform in [0, 1) from a word's top 24 bits, which float holds
 * exactly. */
static inline float random_unit(uint64_t word)
{
    return (float)(word >> 40) * 0x1p-24f;
}

/* values[k] ~ U(-bound, bound), the stream from `seed` in order of k. */
static inline void random_fill_uniform(float *values, size_t count, uint64_t seed, float bound)
{
    uint64_t state = seed;
    for (size_t k = 0; k < count; k++)
        values[k] = (2.0f * random_unit(random_next(&state)) - 1.0f) * bound;
}

#endif /* LSTM_RANDOM_H */
