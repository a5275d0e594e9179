/*
 * bench_ceiling.c: the matrix products alone, exactly the calls liblstm
 * makes for a one-layer model of the given shape, through the library's own
 * code (src/gemm.h, with its thread pool: the per-step products on packed W
 * and dW in depth blocks). This is the ceiling the library's time is
 * compared with: everything liblstm adds (the elementwise cell, copies,
 * checks) is the difference.
 *
 * Usage: bench_ceiling T B I H [repetitions [impl ...]]
 *   (impl: ceiling, openblas, split; all three by default)
 *   mode=infer  pack W, then T products A_t (B x 4H) = S_t (B x K) W^T
 *   mode=train  the same, then pack W again and T products
 *               [dh, dx] (B x K) = dA_t (B x 4H) W, then one product
 *               dW (4H x K) += dA^T (4H x TB) S (TB x K)
 * impl=ceiling lines time those; impl=openblas lines time the same products
 * as plain BLAS calls (sgemm, or sgemv for B = 1, per step; one SGEMM for
 * dW), as the library made them before it packed W itself.
 *
 * impl=split lines time what the same kernels would cost outside liblstm's
 * design, with the input's part of every step hoisted out of the loop (as
 * oneDNN and cuDNN do): one product A_x = X W_x^T over every step's rows,
 * then per step only h_{t-1} W_h^T (depth H instead of H + I); in training,
 * per step only dh_{t-1} = dA_t W_h, then dX = dA W_x over every row and
 * the same dW. The per-step products then stream 4H x H weights instead of
 * 4H x (H + I). (The adds of A_x into each step's gates are left out.)
 * It measures what the stacked [h, x] product costs on this machine.
 *
 * Output lines have the format of bench_core.c.
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "bench_util.h"
#include "gemm.h"
#include "pool.h"

enum { WARMUP_RUNS = 2, MAX_REPETITIONS = 1000 };

/*
 * C (n x m) = A (n x k) B^T for a B of m x k: one row per running sequence,
 * so a single row, a matrix-vector product, takes sgemv (3-4x faster than
 * sgemm with N = 1 in OpenBLAS).
 */
static void blas_rows_times_transposed(size_t n, size_t m, size_t k, const float *a,
                                              size_t lda, const float *b, size_t ldb, float *c,
                                              size_t ldc)
{
    if (n == 1)
        blas_sgemv(false, m, k, 1.0f, b, ldb, a, 0.0f, c);
    else
        blas_sgemm(false, true, n, m, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
}

/* C (n x m) = A (n x k) B for a B of k x m, with sgemv for a single row. */
static void blas_rows_times(size_t n, size_t m, size_t k, const float *a, size_t lda,
                                   const float *b, size_t ldb, float *c, size_t ldc)
{
    if (n == 1)
        blas_sgemv(true, k, m, 1.0f, b, ldb, a, 0.0f, c);
    else
        blas_sgemm(false, false, n, m, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
}



enum impl { CEILING, OPENBLAS, SPLIT };
static const char *const impl_names[] = {"ceiling", "openblas", "split"};

typedef struct shape {
    size_t T, B, I, H, K, G;
    float *weight, *stacked, *gates, *dweight, *dstacked, *packed, *scratch;
    float *packed_x, *dx; /* SPLIT: W_x packed; dX of every row */
    pool *workers;
    enum impl impl;
} shape;

/* SPLIT's forward: X W_x^T for every row at once, then h_{t-1} W_h^T per step. */
static void split_forward_calls(const shape *s)
{
    gemm_pack_transposed(s->weight + s->H, s->K, s->G, s->I, s->packed_x);
    gemm_pack_transposed(s->weight, s->K, s->G, s->H, s->packed);
    gemm_packed_threads(s->workers, s->T * s->B, s->G, s->I, s->stacked + s->H, s->K,
                        s->packed_x, s->gates, s->G);
    for (size_t t = 0; t < s->T; t++)
        gemm_packed_threads(s->workers, s->B, s->G, s->H, s->stacked + t * s->B * s->K, s->K,
                            s->packed, s->gates + t * s->B * s->G, s->G);
}

/* SPLIT's backward: dA_t W_h per step, then dA W_x and dA^T S over every row. */
static void split_backward_calls(const shape *s)
{
    gemm_pack(s->weight, s->K, s->G, s->H, s->packed);
    for (size_t t = s->T; t-- > 0;)
        gemm_packed_threads(s->workers, s->B, s->H, s->G, s->gates + t * s->B * s->G, s->G,
                            s->packed, s->dstacked, s->K);
    gemm_pack(s->weight + s->H, s->K, s->G, s->I, s->packed_x);
    gemm_packed_threads(s->workers, s->T * s->B, s->I, s->G, s->gates, s->G, s->packed_x,
                        s->dx, s->I);
    gemm_accumulate_at_b(s->workers, s->G, s->K, s->T * s->B, s->gates, s->G, s->stacked, s->K,
                         s->dweight, s->K, s->scratch);
}

static void forward_calls(const shape *s)
{
    if (s->impl == SPLIT) {
        split_forward_calls(s);
        return;
    }
    const bool plain_blas = s->impl == OPENBLAS;
    if (!plain_blas)
        gemm_pack_transposed(s->weight, s->K, s->G, s->K, s->packed);
    for (size_t t = 0; t < s->T; t++) {
        const float *stacked_t = s->stacked + t * s->B * s->K;
        float *gates_t = s->gates + t * s->B * s->G;
        if (plain_blas)
            blas_rows_times_transposed(s->B, s->G, s->K, stacked_t, s->K, s->weight, s->K,
                                       gates_t, s->G);
        else
            gemm_packed_threads(s->workers, s->B, s->G, s->K, stacked_t, s->K, s->packed,
                                gates_t, s->G);
    }
}

static void backward_calls(const shape *s)
{
    if (s->impl == SPLIT) {
        split_backward_calls(s);
        return;
    }
    const bool plain_blas = s->impl == OPENBLAS;
    if (!plain_blas)
        gemm_pack(s->weight, s->K, s->G, s->K, s->packed);
    for (size_t t = s->T; t-- > 0;) {
        const float *dgates_t = s->gates + t * s->B * s->G;
        if (plain_blas)
            blas_rows_times(s->B, s->K, s->G, dgates_t, s->G, s->weight, s->K, s->dstacked,
                            s->K);
        else
            gemm_packed_threads(s->workers, s->B, s->K, s->G, dgates_t, s->G, s->packed,
                                s->dstacked, s->K);
    }
    if (plain_blas)
        blas_sgemm(true, false, s->G, s->K, s->T * s->B, 1.0f, s->gates, s->G, s->stacked,
                   s->K, 1.0f, s->dweight, s->K);
    else
        gemm_accumulate_at_b(s->workers, s->G, s->K, s->T * s->B, s->gates, s->G, s->stacked,
                             s->K, s->dweight, s->K, s->scratch);
}

static double median_ms(const shape *s, int train, size_t repetitions)
{
    double times[MAX_REPETITIONS];
    for (size_t k = 0; k < WARMUP_RUNS + repetitions; k++) {
        double start = now_seconds();
        forward_calls(s);
        if (train)
            backward_calls(s);
        if (k >= WARMUP_RUNS)
            times[k - WARMUP_RUNS] = now_seconds() - start;
    }
    qsort(times, repetitions, sizeof times[0], compare_doubles);
    return 1e3 * (repetitions % 2 ? times[repetitions / 2]
                                  : 0.5 * (times[repetitions / 2 - 1] + times[repetitions / 2]));
}

static float *filled(size_t count)
{
    float *values = malloc(count * sizeof(float));
    for (size_t k = 0; values != NULL && k < count; k++)
        values[k] = (float)((k * 2654435761u) % 2001) * 1e-3f - 1.0f;
    return values;
}

/* Whether impl is among the names given (every impl when none are). */
static bool wanted(int count, char **names, const char *impl)
{
    for (int k = 0; k < count; k++)
        if (strcmp(names[k], impl) == 0)
            return true;
    return count <= 0;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s T B I H [repetitions [ceiling|openblas|split ...]]\n",
                argv[0]);
        return 2;
    }
    shape s;
    s.T = strtoul(argv[1], NULL, 10);
    s.B = strtoul(argv[2], NULL, 10);
    s.I = strtoul(argv[3], NULL, 10);
    s.H = strtoul(argv[4], NULL, 10);
    size_t repetitions = argc >= 6 ? strtoul(argv[5], NULL, 10) : 10;
    if (s.T == 0 || s.B == 0 || s.I == 0 || s.H == 0 || repetitions == 0 ||
        repetitions > MAX_REPETITIONS || s.I > (1u << 20) || s.H > (1u << 20)) {
        fprintf(stderr, "bench_ceiling: sizes must be positive, repetitions 1 .. %d\n",
                MAX_REPETITIONS);
        return 2;
    }
    s.K = s.H + s.I;
    s.G = 4 * s.H;
    s.weight = filled(s.G * s.K);
    s.dweight = filled(s.G * s.K);
    s.stacked = filled(s.T * s.B * s.K);
    s.gates = filled(s.T * s.B * s.G);
    s.dstacked = filled(s.B * s.K);
    size_t packed = gemm_packed_size(s.G, s.K) > gemm_packed_size(s.K, s.G)
                        ? gemm_packed_size(s.G, s.K)
                        : gemm_packed_size(s.K, s.G);
    s.packed = aligned_alloc(64, (packed * sizeof(float) + 63) / 64 * 64);
    const size_t scratch = gemm_at_b_scratch_size(s.G, s.K, s.T * s.B);
    s.scratch = aligned_alloc(64, (scratch * sizeof(float) + 63) / 64 * 64);
    const size_t packed_x = gemm_packed_size(s.G, s.I) > gemm_packed_size(s.I, s.G)
                                ? gemm_packed_size(s.G, s.I)
                                : gemm_packed_size(s.I, s.G);
    s.packed_x = aligned_alloc(64, (packed_x * sizeof(float) + 63) / 64 * 64);
    s.dx = filled(s.T * s.B * s.I);
    s.workers = pool_create(blas_thread_count());
    int status = 1;
    if (s.weight && s.dweight && s.stacked && s.gates && s.dstacked && s.packed && s.scratch &&
        s.packed_x && s.dx) {
        const char *threads = getenv("OPENBLAS_NUM_THREADS");
        const double flops = (double)s.T * 2.0 * (double)s.B * (double)s.G * (double)s.K;
        for (s.impl = CEILING; s.impl <= SPLIT; s.impl++) {
            if (!wanted(argc - 6, argv + 6, impl_names[s.impl]))
                continue;
            for (int train = 0; train <= 1; train++) {
                double ms = median_ms(&s, train, repetitions);
                printf("impl=%s T=%zu B=%zu I=%zu H=%zu mode=%s threads=%s ms=%.3f "
                       "gflops=%.2f workspace_bytes=0\n",
                       impl_names[s.impl], s.T, s.B, s.I, s.H,
                       train ? "train" : "infer", threads ? threads : "default", ms,
                       (train ? 3.0 : 1.0) * flops / ms * 1e-6);
            }
        }
        status = 0;
    }
    pool_destroy(s.workers);
    free(s.packed);
    free(s.packed_x);
    free(s.dx);
    free(s.scratch);
    free(s.weight);
    free(s.dweight);
    free(s.stacked);
    free(s.gates);
    free(s.dstacked);
    return status;
}
