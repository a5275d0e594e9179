/* Argument checks shared by the public entry points. */
#ifndef LSTM_CHECK_H
#define LSTM_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "lstm/common.h"

/* *product = a * b; false when that overflows size_t. */
static inline bool size_mul(size_t a, size_t b, size_t *product)
{
    return !__builtin_mul_overflow(a, b, product);
}

/* *sum = a + b; false when that overflows size_t. */
static inline bool size_add(size_t a, size_t b, size_t *sum)
{
    return !__builtin_add_overflow(a, b, sum);
}

/* Index of the first NaN or infinity in values[0 .. count), or count. */
size_t lstm__find_nonfinite(const float *values, size_t count);

/* dst = src, count floats (no overlap), in one pass that also looks for
 * NaN and infinity: returns the index of the first, or count. */
size_t lstm__copy_finite(float *restrict dst, const float *restrict src, size_t count);

/* LSTM_E_NONFINITE naming name[index] if values (may be NULL) holds NaN or
 * infinity, else LSTM_OK. */
lstm_status lstm__check_finite(const char *name, const float *values, size_t count);

#endif /* LSTM_CHECK_H */
