/*
 * The per-step products on packed weights (src/gemm.c): against a plain
 * double-precision product on awkward shapes, both packings, a row alone bit
 * for bit equal to the same row among others, a sum begun mid-depth equal
 * to its two parts run apart (the forward pass's hoisting), the same with
 * weights large enough that the kernel fetches them ahead, and split
 * across a thread pool bit for bit equal to one thread; the same for the packing of W and for the
 * weight gradient's product over many rows. White-box.
 *
 * Built with LSTM_STEP_PRODUCTS=blas the same calls run on the BLAS
 * (gemm.h), which sums in its own order: the comparisons with the plain
 * product still run, with the same tolerances; the bit-for-bit equalities
 * that follow from the kernel's order of the sums (a row alone and among
 * others, the split sum and the whole) are the kernel's alone and are
 * left out (GEMM_OWN_KERNEL).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "gemm.h"
#include "pool.h"

static void fill(float *values, size_t count, uint32_t seed)
{
    for (size_t k = 0; k < count; k++) {
        seed = seed * 1664525u + 1013904223u;
        values[k] = (float)(seed >> 8) * 0x1p-23f - 1.0f;
    }
}

/* Largest |C - A B^T| over the largest |A B^T|, B given n_out x depth. */
static double error_transposed(size_t n, size_t n_out, size_t depth, const float *a, const float *b,
                               const float *c)
{
    double worst = 0.0, scale = 1e-30;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n_out; j++) {
            double sum = 0.0;
            for (size_t k = 0; k < depth; k++)
                sum += (double)a[i * depth + k] * (double)b[j * depth + k];
            worst = fmax(worst, fabs(sum - (double)c[i * n_out + j]));
            scale = fmax(scale, fabs(sum));
        }
    }
    return worst / scale;
}

static void test_against_a_plain_product(void **state)
{
    (void)state;
    const size_t rows[] = {1, 2, 3, 4, 5, 7, 8, 9, 16, 17};
    const size_t outs[] = {1, 31, 32, 33, 64, 65, 96, 100};
    const size_t depths[] = {1, 2, 17, 64, 129};
    for (size_t r = 0; r < sizeof rows / sizeof *rows; r++) {
        for (size_t o = 0; o < sizeof outs / sizeof *outs; o++) {
            for (size_t d = 0; d < sizeof depths / sizeof *depths; d++) {
                const size_t n = rows[r], n_out = outs[o], depth = depths[d];
                float *a = malloc(n * depth * sizeof(float));
                float *b = malloc(n_out * depth * sizeof(float));
                float *bt = malloc(n_out * depth * sizeof(float)); /* b as depth x n_out */
                float *c = malloc(n * n_out * sizeof(float));
                float *c2 = malloc(n * n_out * sizeof(float));
                float *packed =
                    lstm__mem_alloc(lstm__gemm_packed_size(n_out, depth) * sizeof(float));
                fill(a, n * depth, (uint32_t)(n * 7 + depth));
                fill(b, n_out * depth, (uint32_t)(n_out * 13 + depth));
                for (size_t j = 0; j < n_out; j++)
                    for (size_t k = 0; k < depth; k++)
                        bt[k * n_out + j] = b[j * depth + k];
                for (size_t first_k = 0; first_k < depth; first_k += depth / 2 + 1) {
                    /* C = A B^T, B packed from its rows */
                    lstm__gemm_pack_transposed(b, depth, n_out, depth, packed);
                    lstm__gemm_packed(n, n_out, depth, first_k, a, depth, packed, c, n_out);
                    double err = error_transposed(n, n_out, depth, a, b, c);
                    if (err > 1e-6)
                        fail_msg("n %zu, n_out %zu, depth %zu from %zu: error %g", n, n_out, depth,
                                 first_k, err);
                    /* the same product with B given the other way round */
                    lstm__gemm_pack(bt, n_out, depth, n_out, packed);
                    lstm__gemm_packed(n, n_out, depth, first_k, a, depth, packed, c2, n_out);
                    assert_memory_equal(c, c2, n * n_out * sizeof(float));
                    /* each row alone gives the bits it gave among the others */
                    for (size_t i = 0; GEMM_OWN_KERNEL && i < n; i++) {
                        lstm__gemm_packed(1, n_out, depth, first_k, a + i * depth, depth, packed,
                                          c2, n_out);
                        assert_memory_equal(c + i * n_out, c2, n_out * sizeof(float));
                    }
                }
                free(a);
                free(b);
                free(bt);
                free(c);
                free(c2);
                lstm__mem_free(packed);
            }
        }
    }
}

/*
 * Weights too large for the caches to keep from step to step (over 8 MB
 * packed), where each block of rows fetches the next panel ahead and, with
 * several blocks, the depth goes in parts of 1024 (gemm.c's STREAM_DEPTH):
 * 64 rows against the plain product, from k = 0 and from two columns
 * mid-depth (three parts each, one across the end of the depth), and
 * fewer rows (one block, which runs the depth whole and fetches nothing,
 * and whole blocks with a part block) bit for bit equal to the same rows
 * among the 64; C += A B from zero equals C = A B.
 */
static void test_streamed_weights(void **state)
{
    (void)state;
    const size_t n = 64, n_out = 1040, depth = 2100;
    const size_t fewer[] = {8, 16, 20, 40};
    assert_true(lstm__gemm_packed_size(n_out, depth) * sizeof(float) > ((size_t)8 << 20));
    float *a = malloc(n * depth * sizeof(float));
    float *b = malloc(n_out * depth * sizeof(float));
    float *c = malloc(n * n_out * sizeof(float)), *c2 = calloc(n * n_out, sizeof(float));
    float *packed = lstm__mem_alloc(lstm__gemm_packed_size(n_out, depth) * sizeof(float));
    assert_true(a && b && c && c2 && packed);
    fill(a, n * depth, 5);
    fill(b, n_out * depth, 6);
    lstm__gemm_pack_transposed(b, depth, n_out, depth, packed);
    for (size_t first_k = 0; first_k < depth; first_k += 1001) {
        lstm__gemm_packed(n, n_out, depth, first_k, a, depth, packed, c, n_out);
        /* chains of 2100 float multiply-adds (a k left out: ~1e-2) */
        const double err = error_transposed(n, n_out, depth, a, b, c);
        if (err > 1e-5)
            fail_msg("from %zu: error %g", first_k, err);
        for (size_t f = 0; GEMM_OWN_KERNEL && f < sizeof fewer / sizeof *fewer; f++) {
            lstm__gemm_packed(fewer[f], n_out, depth, first_k, a, depth, packed, c2, n_out);
            assert_memory_equal(c, c2, fewer[f] * n_out * sizeof(float));
        }
    }
    lstm__gemm_packed(n, n_out, depth, 0, a, depth, packed, c, n_out);
    memset(c2, 0, n * n_out * sizeof(float));
    lstm__gemm_packed_add(n, n_out, depth, a, depth, packed, c2, n_out);
    assert_memory_equal(c, c2, n * n_out * sizeof(float));
    free(a);
    free(b);
    free(c);
    free(c2);
    lstm__mem_free(packed);
}

/* The product of a step on a pool of threads equals one thread's, to the
 * bit, for every thread count; so does C += A B after it. */
static void test_threads_change_nothing(void **state)
{
    (void)state;
    const size_t n = 13, n_out = 2048 + 7, depth = 300, ldc = n_out + 5, first_k = 7;
    const size_t bytes = n * ldc * sizeof(float);
    float *a = malloc(n * depth * sizeof(float));
    float *b = malloc(n_out * depth * sizeof(float));
    float *one = calloc(n * ldc, sizeof(float)), *one_added = calloc(n * ldc, sizeof(float));
    float *many = calloc(n * ldc, sizeof(float));
    float *packed = lstm__mem_alloc(lstm__gemm_packed_size(n_out, depth) * sizeof(float));
    assert_true(a && b && one && one_added && many && packed);
    fill(a, n * depth, 3);
    fill(b, n_out * depth, 4);
    lstm__gemm_pack_transposed(b, depth, n_out, depth, packed);
    lstm__gemm_packed_threads(NULL, n, n_out, depth, first_k, a, depth, packed, one, ldc);
    memcpy(one_added, one, bytes);
    lstm__gemm_packed_add_threads(NULL, n, n_out, depth, a, depth, packed, one_added, ldc);
    assert_memory_not_equal(one, one_added, bytes);
    for (size_t threads = 2; threads <= 5; threads++) {
        pool *workers = lstm__pool_create(threads);
        assert_non_null(workers);
        assert_int_equal(lstm__pool_threads(workers), threads);
        for (int repeat = 0; repeat < 20; repeat++) {
            memset(many, 0, bytes);
            lstm__gemm_packed_threads(workers, n, n_out, depth, first_k, a, depth, packed, many,
                                      ldc);
            assert_memory_equal(one, many, bytes);
            lstm__gemm_packed_add_threads(workers, n, n_out, depth, a, depth, packed, many, ldc);
            assert_memory_equal(one_added, many, bytes);
        }
        lstm__pool_destroy(workers);
    }
    assert_null(lstm__pool_create(1)); /* one thread needs no pool */
    free(a);
    free(b);
    free(one);
    free(one_added);
    free(many);
    lstm__mem_free(packed);
}

/*
 * The forward pass's hoisting (forward.c): A = [H, X] times W^T, summed
 * from X's first column, equals X W_x^T (W_x packed alone, for all rows at
 * once) followed, row block by row block, by C += H W_h^T, to the bit (on
 * the kernel); and both are A W^T to within rounding.
 */
static void test_split_sum_gives_the_same_bits(void **state)
{
    (void)state;
    const size_t hs[] = {1, 5, 32, 40}, xs[] = {1, 3, 64, 70}, ns[] = {1, 2, 3, 9};
    for (size_t v = 0; v < sizeof hs / sizeof *hs; v++) {
        const size_t h = hs[v], x = xs[v], depth = h + x, n_out = 4 * h + 1;
        for (size_t q = 0; q < sizeof ns / sizeof *ns; q++) {
            const size_t n = ns[q];
            float *a = malloc(n * depth * sizeof(float)),
                  *w = malloc(n_out * depth * sizeof(float));
            float *whole = malloc(n * n_out * sizeof(float));
            float *split = malloc(n * n_out * sizeof(float));
            float *packed = lstm__mem_alloc(lstm__gemm_packed_size(n_out, depth) * sizeof(float));
            float *packed_h = lstm__mem_alloc(lstm__gemm_packed_size(n_out, h) * sizeof(float));
            float *packed_x = lstm__mem_alloc(lstm__gemm_packed_size(n_out, x) * sizeof(float));
            assert_true(a && w && whole && split && packed && packed_h && packed_x);
            fill(a, n * depth, (uint32_t)(31 * n + h));
            fill(w, n_out * depth, (uint32_t)(17 * x + h));
            lstm__gemm_pack_transposed(w, depth, n_out, depth, packed);
            lstm__gemm_packed(n, n_out, depth, h, a, depth, packed, whole, n_out);
            double err = error_transposed(n, n_out, depth, a, w, whole);
            if (err > 1e-6)
                fail_msg("h %zu, x %zu, n %zu: error %g", h, x, n, err);
            lstm__gemm_pack_transposed(w, depth, n_out, h, packed_h);
            lstm__gemm_pack_transposed(w + h, depth, n_out, x, packed_x);
            lstm__gemm_packed(n, n_out, x, 0, a + h, depth, packed_x, split, n_out);
            for (size_t r = 0; r < n; r += 2) /* a step of up to 2 rows at a time */
                lstm__gemm_packed_add(n - r < 2 ? n - r : 2, n_out, h, a + r * depth, depth,
                                      packed_h, split + r * n_out, n_out);
            err = error_transposed(n, n_out, depth, a, w, split);
            if (err > 1e-6)
                fail_msg("h %zu, x %zu, n %zu, split: error %g", h, x, n, err);
            if (GEMM_OWN_KERNEL)
                assert_memory_equal(whole, split, n * n_out * sizeof(float));
            free(a);
            free(w);
            free(whole);
            free(split);
            lstm__mem_free(packed);
            lstm__mem_free(packed_h);
            lstm__mem_free(packed_x);
        }
    }
}

/* Packing on a pool of threads gives the packing of one thread, to the
 * bit, both ways (with a last panel short and several panels per thread):
 * the panels and their zeros past n_out, or on the BLAS the n_out dense
 * rows. */
static void test_threaded_packing(void **state)
{
    (void)state;
    const size_t n_out = 32 * 9 + 5, depth = 211, ldb = 300 + 3;
    const size_t count = lstm__gemm_packed_size(n_out > depth ? n_out : depth, ldb);
    const size_t written = GEMM_OWN_KERNEL ? lstm__gemm_packed_size(n_out, depth) : n_out * depth;
    float *b = malloc(ldb * ldb * sizeof(float));
    float *one = lstm__mem_alloc(count * sizeof(float)),
          *many = lstm__mem_alloc(count * sizeof(float));
    assert_true(b != NULL && one != NULL && many != NULL);
    fill(b, ldb * ldb, 5);
    for (int transposed = 0; transposed <= 1; transposed++) {
        if (transposed)
            lstm__gemm_pack_transposed(b, ldb, n_out, depth, one);
        else
            lstm__gemm_pack(b, ldb, depth, n_out, one);
        for (size_t threads = 1; threads <= 4; threads++) {
            pool *workers = lstm__pool_create(threads);
            memset(many, 0xff, count * sizeof(float));
            lstm__gemm_pack_threads(workers, transposed, b, ldb, n_out, depth, many);
            assert_memory_equal(one, many, written * sizeof(float));
            lstm__pool_destroy(workers);
        }
    }
    free(b);
    lstm__mem_free(one);
    lstm__mem_free(many);
}

/* The weight gradient's product, C += A^T B over a long depth: against a
 * double-precision sum on awkward sizes (partial tiles of 16, depth blocks
 * of 512 and a short last one, leading dimensions past the sizes, C not
 * zero), and bit for bit the same on a pool of threads. The sums of A's
 * rows it adds on the way (the bias gradient) are those of a plain loop
 * over the rows in order, to the bit, whatever the threads. */
static void test_accumulate_at_b(void **state)
{
    (void)state;
    const size_t ms[] = {1, 15, 16, 17, 40};
    const size_t ns[] = {1, 31, 33, 70};
    const size_t depths[] = {1, 15, 17, 512, 1100};
    for (size_t i = 0; i < sizeof ms / sizeof *ms; i++) {
        for (size_t j = 0; j < sizeof ns / sizeof *ns; j++) {
            for (size_t d = 0; d < sizeof depths / sizeof *depths; d++) {
                const size_t m = ms[i], n = ns[j], depth = depths[d];
                const size_t lda = m + 3, ldb = n + 5, ldc = n + 2;
                float *a = malloc(depth * lda * sizeof(float));
                float *b = malloc(depth * ldb * sizeof(float));
                float *c0 = malloc(m * ldc * sizeof(float));
                float *c = malloc(m * ldc * sizeof(float));
                float *c2 = malloc(m * ldc * sizeof(float));
                float *sums = malloc(m * sizeof(float)), *sums2 = malloc(m * sizeof(float));
                float *expected_sums = malloc(m * sizeof(float));
                float *scratch =
                    lstm__mem_alloc(lstm__gemm_at_b_scratch_size(m, n, depth) * sizeof(float));
                assert_true(a && b && c0 && c && c2 && sums && sums2 && expected_sums && scratch);
                fill(a, depth * lda, 7);
                fill(b, depth * ldb, 8);
                fill(c0, m * ldc, 9);
                fill(expected_sums, m, 10);
                memcpy(sums, expected_sums, m * sizeof(float));
                for (size_t k = 0; k < depth; k++)
                    for (size_t r = 0; r < m; r++)
                        expected_sums[r] += a[k * lda + r];
                memcpy(c, c0, m * ldc * sizeof(float));
                lstm__gemm_accumulate_at_b(NULL, m, n, depth, a, lda, b, ldb, c, ldc, sums,
                                           scratch);
                assert_memory_equal(sums, expected_sums, m * sizeof(float));
                double worst = 0.0, scale = 1e-30;
                for (size_t r = 0; r < m; r++) {
                    for (size_t q = 0; q < n; q++) {
                        double sum = (double)c0[r * ldc + q];
                        for (size_t k = 0; k < depth; k++)
                            sum += (double)a[k * lda + r] * (double)b[k * ldb + q];
                        worst = fmax(worst, fabs(sum - (double)c[r * ldc + q]));
                        scale = fmax(scale, fabs(sum));
                    }
                    /* past n, C is left alone */
                    assert_memory_equal(c + r * ldc + n, c0 + r * ldc + n,
                                        (ldc - n) * sizeof(float));
                }
                if (worst / scale > 1e-5)
                    fail_msg("m=%zu n=%zu depth=%zu: relative error %g", m, n, depth,
                             worst / scale);
                for (size_t threads = 2; threads <= 3; threads++) {
                    pool *workers = lstm__pool_create(threads);
                    memcpy(c2, c0, m * ldc * sizeof(float));
                    fill(sums2, m, 10);
                    lstm__gemm_accumulate_at_b(workers, m, n, depth, a, lda, b, ldb, c2, ldc, sums2,
                                               scratch);
                    assert_memory_equal(c, c2, m * ldc * sizeof(float));
                    assert_memory_equal(sums, sums2, m * sizeof(float));
                    lstm__pool_destroy(workers);
                }
                free(a);
                free(b);
                free(c0);
                free(c);
                free(c2);
                free(sums);
                free(sums2);
                free(expected_sums);
                lstm__mem_free(scratch);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_a_plain_product),
        cmocka_unit_test(test_split_sum_gives_the_same_bits),
        cmocka_unit_test(test_streamed_weights),
        cmocka_unit_test(test_threads_change_nothing),
        cmocka_unit_test(test_threaded_packing),
        cmocka_unit_test(test_accumulate_at_b),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
