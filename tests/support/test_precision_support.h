/*
 * What the tests of reduced precision share, written apart from src/ so
 * that they judge it: bf16 rounding from the text of lstm/model.h, the
 * BLAS's run-time thread setters (the workspace's pool follows them), and
 * N(0, 1) data.
 */
#ifndef LSTM_TEST_PRECISION_SUPPORT_H
#define LSTM_TEST_PRECISION_SUPPORT_H

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "test_rng.h"

/* bf16 of v, from its binary exponent: 8 significant bits, rounded to
 * nearest, ties to even (nearbyint in the default rounding mode); below
 * the normal range, a zero of v's sign. */
static inline float test_bf16(float v)
{
    if (v == 0.0f || fabsf(v) < 0x1p-126f)
        return copysignf(0.0f, v);
    int exponent;
    frexp(v, &exponent); /* v = m 2^exponent, 0.5 <= |m| < 1 */
    const double unit = ldexp(1.0, exponent - 8);
    return (float)(nearbyint(v / unit) * unit);
}

/* The BLAS's run-time thread setters; the one linked answers. */
extern void openblas_set_num_threads(int threads) __attribute__((weak));
extern void bli_thread_set_num_threads(long threads) __attribute__((weak));

/* Sets the BLAS's thread count; false when no known BLAS is linked. */
static inline bool test_set_blas_threads(int threads)
{
    if (openblas_set_num_threads != NULL)
        openblas_set_num_threads(threads);
    else if (bli_thread_set_num_threads != NULL)
        bli_thread_set_num_threads(threads);
    else
        return false;
    return true;
}

/* count values from N(0, 1) by Box-Muller, times scale (malloc'd, one
 * spare; NULL when out of memory). */
static inline float *test_gaussian(size_t count, uint64_t seed, double scale)
{
    rng r = {seed};
    float *v = malloc((count + 1) * sizeof *v);
    for (size_t i = 0; v != NULL && i < count; i++) {
        const double u = rng_double(&r, 0x1p-53, 1.0), w = rng_double(&r, 0.0, 1.0);
        v[i] = (float)(scale * sqrt(-2.0 * log(u)) * cos(6.283185307179586 * w));
    }
    return v;
}

#endif /* LSTM_TEST_PRECISION_SUPPORT_H */
