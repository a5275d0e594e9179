/*
 * activation.h - branch-free float32 sigmoid and tanh (private).
 *
 * Written so GCC and Clang vectorise the array loops for plain SSE2 and
 * for AVX2/FMA without intrinsics: no libm calls, selects instead of
 * branches, and 2^n built through the exponent bits.
 *
 * Every function takes `fused`, a constant at each call site: 0 rounds
 * each product and sum apart (the only way on the x86-64 baseline), 1
 * fuses the multiply-adds of the range reduction and the polynomials
 * (fmaf: one instruction where the CPU has FMA, a quarter fewer
 * operations; elsewhere a libm call, exact but slow). The two differ in
 * their last bits; each is the same wherever it runs, in vector and
 * scalar code alike, since no contraction is left to the compiler (the
 * files using these are compiled with -ffp-contract=off).
 *
 * Accuracy, measured exhaustively over all 2^32 inputs against libm in
 * double (SSE2 -O2, and AVX2 -O3 with FMA contraction; both give the
 * same maxima).  "ulp" is the float spacing at the true value, 2^-149
 * for subnormal results.  Stated bounds, with the measured maximum:
 *
 *   act_tanh     <= 2 ulp     (1.51)      everywhere, tiny and subnormal x
 *                                         included (there tanh(x) = x);
 *                rel <= 1.8e-7 (1.50e-7)  everywhere;
 *                abs <= 1e-7  (8.99e-8).
 *   act_sigmoid  <= 3 ulp     (2.40)      everywhere, subnormal results
 *                                         (x < -87.3) included;
 *                rel <= 2.4e-7 (1.78e-7)  for x >= -87.3 (normal results);
 *                abs <= 1e-7  (8.93e-8).
 *
 * tests/unit/test_activation.c asserts these bounds for both forms, plain and
 * fused, on a strided walk over the bit patterns plus dense runs around
 * the regime changes (the fused form's maxima there are within the
 * plain form's).
 *
 * Special values: tanh(+-0) = +-0, tanh(+-inf) = +-1, sigmoid(0) = 0.5,
 * sigmoid(+inf) = 1, sigmoid(-inf) = 0, NaN in gives NaN out.  Large
 * inputs saturate; nothing overflows.
 */
#ifndef LSTM_ACTIVATION_H
#define LSTM_ACTIVATION_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "compiler.h"

/* Every function here is always inlined, so that each multi-versioned
 * kernel (compiler.h) gets its own copy for its target: a copy left out of
 * line would be compiled for the baseline, where fused multiply-adds are
 * libm calls. */

/* Below this exp() of the argument is under 2^-150 and rounds to 0. */
#define ACT_EXP_MIN_ARG (-104.0f)

/* Below this |x| tanh uses its odd polynomial (Cephes tanhf). */
#define ACT_TANH_POLY_MAX 0.625f

/* Iterations per block of the array loops and of the forward cell's
 * (forward.c); a multiple of every vector width, so GCC's -O2 "very cheap"
 * cost model accepts the inner loop. */
#define ACT_BLOCK 16

LSTM__ALWAYS_INLINE uint32_t act_float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

LSTM__ALWAYS_INLINE float act_bits_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/*
 * cond ? if_true : if_false, as a bit blend.  A C ternary becomes a
 * branch in GCC's IR; when one arm is a constant, PRE folds the math
 * downstream of it on that path and leaves the rest inside a branch,
 * which the vectoriser then rejects ("control flow in loop").  A blend
 * has no path to fold along.
 */
/* a * b + c, with one rounding when fused. */
LSTM__ALWAYS_INLINE float act_mul_add(int fused, float a, float b, float c)
{
    return fused ? __builtin_fmaf(a, b, c) : a * b + c;
}

LSTM__ALWAYS_INLINE float act_select(int cond, float if_true, float if_false)
{
    uint32_t mask = 0u - (uint32_t)cond;
    return act_bits_float((act_float_bits(if_true) & mask) | (act_float_bits(if_false) & ~mask));
}

/*
 * e^a for a <= 0 (a NaN gives NaN).  Cephes expf: a = n ln2 + r with
 * |r| <= ln2 / 2, e^r by a degree-6 polynomial, then scaled by 2^n.
 * 2^n is applied as 2^(n+64) * 2^-64 so that results down to 2^-149
 * come out as correctly scaled subnormals with one rounding.
 */
LSTM__ALWAYS_INLINE float act_exp_nonpos(int fused, float a)
{
    /* 1.5 * 2^23: adding it rounds a value of magnitude < 2^22 to an
     * integer held in the low mantissa bits. */
    const float round_magic = 12582912.0f;
    const float log2e = 1.44269504088896341f;
    /* ln2 split in two; n * ln2_hi is exact for |n| < 2^15. */
    const float ln2_hi = 0.693359375f;
    const float ln2_lo = -2.12194440e-4f;

    a = act_select(a < ACT_EXP_MIN_ARG, ACT_EXP_MIN_ARG, a);

    /* n = round(a / ln2) */
    float t = act_mul_add(fused, a, log2e, round_magic);
    float n = t - round_magic;
    uint32_t n_bits = act_float_bits(t) - act_float_bits(round_magic);

    /* r = a - n ln2 */
    float r = act_mul_add(fused, -n, ln2_hi, a);
    r = act_mul_add(fused, -n, ln2_lo, r);

    /* e^r = 1 + r + r^2 p(r) */
    float r2 = r * r;
    float p = 1.9875691500e-4f;
    p = act_mul_add(fused, p, r, 1.3981999507e-3f);
    p = act_mul_add(fused, p, r, 8.3334519073e-3f);
    p = act_mul_add(fused, p, r, 4.1665795894e-2f);
    p = act_mul_add(fused, p, r, 1.6666665459e-1f);
    p = act_mul_add(fused, p, r, 5.0000001201e-1f);
    float er = act_mul_add(fused, p, r2, r) + 1.0f;

    /* 2^(n+64): n is in [-150, 0], so the biased exponent n + 64 + 127
     * is in [41, 191].  Unsigned arithmetic keeps a NaN's junk defined. */
    float scale = act_bits_float((n_bits + 191u) << 23);
    return er * scale * 0x1p-64f;
}

/*
 * sigmoid(x) = 1 / (1 + e^-x).  With e = e^-|x| in (0, 1]:
 * x >= 0: 1 / (1 + e);   x < 0: e / (1 + e).
 * Keeping e <= 1 avoids overflow and keeps relative accuracy for x < 0.
 */
LSTM__ALWAYS_INLINE float act_sigmoid(int fused, float x)
{
    float e = act_exp_nonpos(fused, -fabsf(x));
    float num = act_select(x < 0.0f, e, 1.0f);
    return num / (1.0f + e);
}

/*
 * tanh(x) = sign(x) tanh(|x|).  With a = |x|:
 * a < 0.625: a + a^3 q(a^2) (Cephes tanhf);
 * otherwise, with e = e^-2a: (1 - e) / (1 + e).
 * Both magnitudes are >= 0.  The sign goes on last, so tanh(-0) = -0
 * (x + x^3 q would sum -0 and +0 to +0).
 */
LSTM__ALWAYS_INLINE float act_tanh(int fused, float x)
{
    float ax = fabsf(x);
    int small = ax < ACT_TANH_POLY_MAX;

    /* Only the small branch's result is used for small x; feeding it 0
     * otherwise keeps a*a from overflowing for huge x. */
    float as = act_select(small, ax, 0.0f);
    float z = as * as;
    float q = -5.70498872745e-3f;
    q = act_mul_add(fused, q, z, 2.06390887954e-2f);
    q = act_mul_add(fused, q, z, -5.37397155531e-2f);
    q = act_mul_add(fused, q, z, 1.33314422036e-1f);
    q = act_mul_add(fused, q, z, -3.33332819422e-1f);
    float t_small = act_mul_add(fused, q * z, as, as);

    float e = act_exp_nonpos(fused, -2.0f * ax);
    float t_large = (1.0f - e) / (1.0f + e);

    /* copysignf by hand: GCC at -O0 calls libm for it. */
    float mag = act_select(small, t_small, t_large);
    return act_bits_float(act_float_bits(mag) | (act_float_bits(x) & 0x80000000u));
}

/*
 * The array forms run full blocks of ACT_BLOCK through a fixed-count
 * inner loop (which GCC vectorises even at -O2) and the tail through the
 * same scalar code, so results match act_sigmoid/act_tanh bit for bit.
 * The forward cell runs the scalar functions in blocks of its own the
 * same way; tests/unit/test_activation.c checks the vectorised code through
 * these forms.
 */
LSTM__ALWAYS_INLINE void act_sigmoid_array(int fused, float *v, size_t n)
{
    size_t k = 0;
    for (; k + ACT_BLOCK <= n; k += ACT_BLOCK) {
        float *blk = v + k;
        for (size_t j = 0; j < ACT_BLOCK; j++)
            blk[j] = act_sigmoid(fused, blk[j]);
    }
    for (; k < n; k++)
        v[k] = act_sigmoid(fused, v[k]);
}

LSTM__ALWAYS_INLINE void act_tanh_array(int fused, float *v, size_t n)
{
    size_t k = 0;
    for (; k + ACT_BLOCK <= n; k += ACT_BLOCK) {
        float *blk = v + k;
        for (size_t j = 0; j < ACT_BLOCK; j++)
            blk[j] = act_tanh(fused, blk[j]);
    }
    for (; k < n; k++)
        v[k] = act_tanh(fused, v[k]);
}

#endif /* LSTM_ACTIVATION_H */
