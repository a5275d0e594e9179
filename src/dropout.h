/*
 * Inverted dropout between layers, with masks drawn from a counter-based
 * hash instead of stored: the backward pass recomputes exactly the mask the
 * forward pass used, and a mask depends only on the seed, the training call,
 * and the (layer, step, sequence, feature) it applies to, never on thread
 * count or on the internal sorting of the batch.
 */
#ifndef LSTM_DROPOUT_H
#define LSTM_DROPOUT_H

#include <stddef.h>
#include <stdint.h>

#include "random.h"

/* The key of the masks of one training call. */
static inline uint64_t dropout_key(uint64_t seed, uint64_t call)
{
    return random_mix(seed ^ random_mix(call + RANDOM_GAMMA));
}

/* The factor of element `index`: 0 with probability p, else 1 / (1 - p). */
static inline float dropout_factor(uint64_t key, uint64_t index, float p, float keep_scale)
{
    uint64_t z = random_mix(key + index * RANDOM_GAMMA);
    return random_unit(z) < p ? 0.0f : keep_scale;
}

/* Element j of the output of `layer` at step t of sequence b. */
static inline uint64_t dropout_index(size_t layer, size_t T, size_t B, size_t features, size_t t,
                                     size_t b, size_t j)
{
    return (((uint64_t)layer * T + t) * B + b) * features + j;
}

#endif /* LSTM_DROPOUT_H */
