/*
 * The reduced-precision products (src/lowp.h), white box, against this
 * file's own reading of what lowp.h documents:
 *
 *   - bf16: W is rounded to bfloat16 to nearest, ties to even, subnormals
 *     to zero. Multiplying by the unit rows e_k gives each rounded weight
 *     alone (one exact product), compared bit for bit with a rounding
 *     written here in double arithmetic. Products of random rows are within
 *     float32 summation error of the exact sum of the rounded operands.
 *   - int8: C = (sum_k (u - z) q) s_a s, with this file's quantization of
 *     W (per row, symmetric) and of A (per row, uint8 over its range, at
 *     lengths that take the vector path, the scalar one, and both),
 *     integer sums in int64 and the same float32 operations after them:
 *     compared bit for bit, accumulating or not, over depths that span two
 *     of the 65,536-deep segments, on column views, and split across two
 *     threads.
 *
 * CMake runs this program once per kernel, LSTM_CPU_DISABLE taking away
 * the CPU's instructions one by one (VNNI and BF16, then AVX-512, then
 * AVX2): each kernel is judged against the same expectations, so they
 * agree with each other too. (On a CPU without some instruction, the runs
 * that disable it repeat a kernel.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "lowp.h"
#include "pool.h"
#include "test_precision_support.h"
#include "test_rng.h"

/* Memory for a packing or quantized rows, 64-byte aligned. */
static void *aligned(size_t bytes)
{
    void *memory = lstm__mem_alloc(bytes > 0 ? bytes : 1);
    assert_non_null(memory);
    return memory;
}

static float *random_matrix(rng *r, size_t rows, size_t cols, float scale)
{
    float *m = malloc((rows * cols + 1) * sizeof *m);
    assert_non_null(m);
    for (size_t i = 0; i < rows * cols; i++)
        m[i] = scale * rng_float(r, -1.0f, 1.0f);
    return m;
}

/* C (n x n_out, ldc) = A B^T or C + A B^T in the precision, workers may be NULL. */
static void product(pool *workers, lstm_precision precision, bool accumulate, size_t n,
                    size_t n_out, size_t depth, const float *a, const float *b, float *c,
                    size_t ldc)
{
    void *packing = aligned(lstm__lowp_weights_bytes(precision, n_out, depth));
    void *rows_memory = aligned(lstm__lowp_rows_bytes(precision, n, depth));
    const lowp_weights w = lstm__lowp_weights_at(precision, n_out, depth, packing);
    const lowp_source source = {.values = b, .ld = depth};
    lstm__lowp_pack(workers, &source, &w);
    lowp_rows rows;
    lstm__lowp_quantize(precision, n, depth, a, depth, rows_memory, &rows);
    lstm__lowp_product(workers, accumulate, &rows, &w, c, ldc);
    lstm__mem_free(packing);
    lstm__mem_free(rows_memory);
}

static void test_bf16_rounds_each_weight(void **state)
{
    (void)state;
    rng r = {7};
    const size_t n_out = 37, depth = 9;
    float *b = random_matrix(&r, n_out, depth, 3.0f);
    /* the hard cases: ties both ways, a subnormal, the largest finite
     * values that round down and up */
    b[0] = 1.0f + 0x1p-8f;            /* a tie, to the even 1 */
    b[1] = 1.0f + 3 * 0x1p-8f;        /* a tie, to the even 1 + 2^-6 */
    b[2] = 0x1p-130f;                 /* subnormal: zero */
    b[3] = -0x1p-127f;                /* subnormal: -0 */
    b[4] = 1.0f + 0x1p-8f + 0x1p-20f; /* above the tie: up */
    b[5] = 0x1.fefffep127f;           /* rounds down */
    float *identity = calloc(depth * depth, sizeof *identity);
    for (size_t k = 0; k < depth; k++)
        identity[k * depth + k] = 1.0f;
    float *c = calloc(depth * n_out, sizeof *c);
    product(NULL, LSTM_PRECISION_BF16, false, depth, n_out, depth, identity, b, c, n_out);
    for (size_t k = 0; k < depth; k++)
        for (size_t j = 0; j < n_out; j++) {
            const float expected = test_bf16(b[j * depth + k]);
            if (memcmp(&c[k * n_out + j], &expected, sizeof expected) != 0 &&
                !(expected == 0.0f && c[k * n_out + j] == 0.0f))
                fail_msg("bf16 of W[%zu][%zu] = %a: %a, expected %a", j, k,
                         (double)b[j * depth + k], (double)c[k * n_out + j], (double)expected);
        }
    free(b);
    free(identity);
    free(c);
}

/* Random products in bf16 against the exact sums of the rounded operands:
 * each of the depth additions rounds once, so the error is at most
 * depth 2^-24 of the sum of the products' magnitudes (plus C's value
 * when accumulating). */
static void check_bf16_product(size_t n, size_t n_out, size_t depth, bool accumulate)
{
    rng r = {n * 1000 + n_out * 10 + depth};
    float *a = random_matrix(&r, n, depth, 2.0f), *b = random_matrix(&r, n_out, depth, 0.1f);
    float *c = random_matrix(&r, n, n_out, 1.0f), *before = malloc(n * n_out * sizeof *before);
    memcpy(before, c, n * n_out * sizeof *c);
    product(NULL, LSTM_PRECISION_BF16, accumulate, n, n_out, depth, a, b, c, n_out);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n_out; j++) {
            double exact = accumulate ? before[i * n_out + j] : 0.0, magnitude = fabs(exact);
            for (size_t k = 0; k < depth; k++) {
                const double term =
                    (double)test_bf16(a[i * depth + k]) * (double)test_bf16(b[j * depth + k]);
                exact += term;
                magnitude += fabs(term);
            }
            const double bound = (double)(depth + 1) * 0x1p-24 * magnitude + 1e-30;
            if (fabs(c[i * n_out + j] - exact) > bound)
                fail_msg("bf16 %zu x %zu over %zu, C[%zu][%zu] = %.9g, exact %.9g, bound %.3g", n,
                         n_out, depth, i, j, (double)c[i * n_out + j], exact, bound);
        }
    free(a);
    free(b);
    free(c);
    free(before);
}

static void test_bf16_products(void **state)
{
    (void)state;
    const size_t rows[] = {1, 2, 3, 8, 9, 17}, outs[] = {1, 31, 32, 33, 100};
    const size_t depths[] = {1, 2, 3, 64, 129};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        for (size_t j = 0; j < sizeof outs / sizeof outs[0]; j++)
            for (size_t k = 0; k < sizeof depths / sizeof depths[0]; k++) {
                check_bf16_product(rows[i], outs[j], depths[k], false);
                check_bf16_product(rows[i], outs[j], depths[k], true);
            }
}

/* ---- int8 ---- */

static float clampf(float x, float lo, float hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

/* W's row j: q and s as lowp.h defines them. */
static float quantize_weights(const float *row, size_t depth, int32_t *q)
{
    float largest = 0.0f;
    for (size_t k = 0; k < depth; k++)
        largest = fmaxf(largest, fabsf(row[k]));
    const float s = largest / 127.0f;
    for (size_t k = 0; k < depth; k++)
        q[k] = s > 0.0f ? (int32_t)nearbyintf(clampf(row[k] / s, -127.0f, 127.0f)) : 0;
    return s;
}

/* A's row: u, z and s_a as lowp.h defines them. */
static float quantize_row(const float *row, size_t depth, int32_t *u, int32_t *z)
{
    float lo = 0.0f, hi = 0.0f;
    for (size_t k = 0; k < depth; k++) {
        lo = fminf(lo, row[k]);
        hi = fmaxf(hi, row[k]);
    }
    if (hi - lo < 1e-30f) {
        *z = 0;
        for (size_t k = 0; k < depth; k++)
            u[k] = 0;
        return 0.0f;
    }
    const float s = (hi - lo) / 255.0f, r = 1.0f / s;
    const float zero = nearbyintf(clampf(-lo * r, 0.0f, 255.0f));
    *z = (int32_t)zero;
    for (size_t k = 0; k < depth; k++)
        u[k] = (int32_t)clampf(nearbyintf(row[k] * r) + zero, 0.0f, 255.0f);
    return s;
}

/* The expected C: per segment of 65,536, the exact integer sum, converted,
 * times s_a s, added to C (or C's start) in float. */
static void expected_int8(size_t n, size_t n_out, size_t depth, const float *a, const float *b,
                          bool accumulate, float *c, size_t ldc)
{
    int32_t *q = malloc(n_out * depth * sizeof *q), *u = malloc(depth * sizeof *u);
    float *s = malloc(n_out * sizeof *s);
    for (size_t j = 0; j < n_out; j++)
        s[j] = quantize_weights(b + j * depth, depth, q + j * depth);
    for (size_t i = 0; i < n; i++) {
        int32_t z;
        const float s_a = quantize_row(a + i * depth, depth, u, &z);
        for (size_t j = 0; j < n_out; j++) {
            float value = accumulate ? c[i * ldc + j] : 0.0f;
            for (size_t k0 = 0; k0 < depth || k0 == 0; k0 += 65536) {
                int64_t sum = 0;
                for (size_t k = k0; k < depth && k < k0 + 65536; k++)
                    sum += (int64_t)(u[k] - z) * q[j * depth + k];
                const float term = (float)sum * (s_a * s[j]);
                value = (k0 == 0 && !accumulate) ? term : value + term;
                if (depth == 0)
                    break;
            }
            c[i * ldc + j] = value;
        }
    }
    free(q);
    free(u);
    free(s);
}

static void check_int8_product(pool *workers, size_t n, size_t n_out, size_t depth, bool accumulate,
                               rng *r)
{
    float *a = random_matrix(r, n, depth, 3.0f), *b = random_matrix(r, n_out, depth, 0.2f);
    /* rows that are all zero, all positive, all negative, and tiny */
    if (n > 3) {
        memset(a, 0, depth * sizeof *a);
        for (size_t k = 0; k < depth; k++) {
            a[depth + k] = fabsf(a[depth + k]) + 0.5f;
            a[2 * depth + k] = -fabsf(a[2 * depth + k]);
            a[3 * depth + k] *= 1e-20f;
        }
    }
    float *c = random_matrix(r, n, n_out, 1.0f), *expected = malloc(n * n_out * sizeof *expected);
    memcpy(expected, c, n * n_out * sizeof *c);
    expected_int8(n, n_out, depth, a, b, accumulate, expected, n_out);
    product(workers, LSTM_PRECISION_INT8, accumulate, n, n_out, depth, a, b, c, n_out);
    for (size_t i = 0; i < n * n_out; i++)
        if (memcmp(&c[i], &expected[i], sizeof c[i]) != 0)
            fail_msg("int8 %zu x %zu over %zu%s: C[%zu][%zu] = %a, expected %a", n, n_out, depth,
                     accumulate ? " (accumulating)" : "", i / n_out, i % n_out, (double)c[i],
                     (double)expected[i]);
    free(a);
    free(b);
    free(c);
    free(expected);
}

static void test_int8_products_bit_for_bit(void **state)
{
    (void)state;
    rng r = {11};
    const size_t rows[] = {1, 2, 3, 5, 8, 9, 17}, outs[] = {1, 31, 32, 33, 100};
    const size_t depths[] = {1, 2, 3, 4, 5, 7, 16, 17, 64, 129};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        for (size_t j = 0; j < sizeof outs / sizeof outs[0]; j++)
            for (size_t k = 0; k < sizeof depths / sizeof depths[0]; k++) {
                check_int8_product(NULL, rows[i], outs[j], depths[k], false, &r);
                check_int8_product(NULL, rows[i], outs[j], depths[k], true, &r);
            }
}

/* Two segments of the depth, each summed exactly in int32 on its own. */
static void test_int8_deep_products(void **state)
{
    (void)state;
    rng r = {12};
    check_int8_product(NULL, 3, 40, 65536 + 1000, false, &r);
    check_int8_product(NULL, 1, 33, 2 * 65536 + 3, true, &r);
}

/* Split across two threads, and on a view of whole panels of columns. */
static void test_threads_and_views(void **state)
{
    (void)state;
    pool *workers = lstm__pool_create(2);
    assert_non_null(workers);
    rng r = {13};
    check_int8_product(workers, 16, 4 * 256, 512, false, &r);
    check_int8_product(workers, 2, 4 * 256, 512, true, &r);

    const size_t n = 4, n_out = 96, depth = 40, first = 32, count = 64;
    const lstm_precision precisions[] = {LSTM_PRECISION_BF16, LSTM_PRECISION_INT8};
    for (size_t p = 0; p < 2; p++) {
        float *a = random_matrix(&r, n, depth, 1.0f), *b = random_matrix(&r, n_out, depth, 1.0f);
        float *whole = calloc(n * n_out, sizeof *whole), *part = calloc(n * count, sizeof *part);
        product(workers, precisions[p], false, n, n_out, depth, a, b, whole, n_out);
        void *packing = aligned(lstm__lowp_weights_bytes(precisions[p], n_out, depth));
        void *rows_memory = aligned(lstm__lowp_rows_bytes(precisions[p], n, depth));
        const lowp_weights w = lstm__lowp_weights_at(precisions[p], n_out, depth, packing);
        const lowp_source source = {.values = b, .ld = depth};
        lstm__lowp_pack(NULL, &source, &w);
        const lowp_weights view = lstm__lowp_columns(&w, first, count);
        lowp_rows rows;
        lstm__lowp_quantize(precisions[p], n, depth, a, depth, rows_memory, &rows);
        lstm__lowp_product(NULL, false, &rows, &view, part, count);
        for (size_t i = 0; i < n; i++)
            assert_memory_equal(part + i * count, whole + i * n_out + first, count * sizeof(float));
        lstm__mem_free(packing);
        lstm__mem_free(rows_memory);
        free(a);
        free(b);
        free(whole);
        free(part);
    }
    lstm__pool_destroy(workers);
}

int main(void)
{
    const char *disabled = getenv("LSTM_CPU_DISABLE");
    printf("kernels: LSTM_CPU_DISABLE=%s\n", disabled != NULL ? disabled : "(unset)");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bf16_rounds_each_weight),   cmocka_unit_test(test_bf16_products),
        cmocka_unit_test(test_int8_products_bit_for_bit), cmocka_unit_test(test_int8_deep_products),
        cmocka_unit_test(test_threads_and_views),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
