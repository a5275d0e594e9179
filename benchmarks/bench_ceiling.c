/*
 * bench_ceiling.c: the matrix products alone, exactly the calls liblstm
 * makes for a model of the given shape, through the library's own code
 * (src/gemm.h, with its thread pool: the per-step products on packed W and
 * dW in depth blocks). This is the ceiling the library's time is compared
 * with: everything liblstm adds (the elementwise cell, copies, checks) is
 * the difference.
 *
 * Usage: bench_ceiling T B I H [repetitions [layers [directions [impl ...]]]]
 *   (defaults 10 1 1; impl: ceiling, openblas, split; all three by default)
 * For each layer and direction (in liblstm's order: layer by layer, the
 * forward direction first; backward from the last layer down), with K =
 * H + I_l (I_0 = I, I_l = D H for l > 0, the layer below's outputs) and
 * separate weights and kept values for each:
 *   mode=infer  T products A_t (B x 4H) = S_t (B x K) W^T (t from T - 1
 *               down in the reverse direction), on W packed once, before
 *               the timing (bench_core's liblstm keeps its packing between
 *               calls: lstm_workspace_keep_weights())
 *   mode=train  pack W, the same products, then pack W again and T products
 *               [dh, dx] (B x K) = dA_t (B x 4H) W, then one product
 *               dW (4H x K) += dA^T (4H x TB) S (TB x K)
 * The products of every layer and direction are timed together, as one
 * repetition.
 * impl=ceiling lines time those; impl=openblas lines time the same products
 * as plain BLAS calls (sgemm, or sgemv for B = 1, per step; one SGEMM for
 * dW), as the library made them before it packed W itself.
 *
 * impl=split lines time the same kernels with the input's part of every
 * step hoisted out of the loop (as oneDNN and cuDNN do): one product
 * A_x = X W_x^T over every step's rows, then per step only
 * A_t += h_{t-1} W_h^T (depth H instead of H + I); in training, per step
 * only dh_{t-1} = dA_t W_h, then dX = dA W_x over every row and the same
 * dW. The per-step products then stream 4H x H weights instead of
 * 4H x (H + I). In inference, X W_x^T is taken a chunk of steps at a
 * time (schedule_hoist_chunk() rows). liblstm itself does this where
 * lstm__schedule_hoist_input() says so (B <= 4; in inference also W over
 * 12 MB), and
 * there impl=ceiling times these calls too; elsewhere impl=split measures
 * what the stacked [h, x] product costs.
 *
 * impl=bf16 and impl=int8 lines (inference only) time the products of
 * inference in that precision (lstm_workspace_set_precision(), src/lowp.h),
 * as liblstm makes them: always hoisted as impl=split's, on W_h and W_x
 * packed once before the timing, each product's rows rounded or quantized
 * just before it (which is part of a reduced-precision product's cost).
 * Their lines say impl=ceiling precision=bf16 (or int8); the others
 * precision=fp32.
 *
 * Output lines have the format of bench_core.c (FLOPs: forward_flops() in
 * bench_util.h).
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "bench_util.h"
#include "gemm.h"
#include "lowp.h"
#include "pool.h"
#include "schedule.h"

enum { WARMUP_RUNS = 2, MAX_REPETITIONS = 1000 };

/*
 * C (n x m) = A (n x k) B^T for a B of m x k: one row per running sequence,
 * so a single row, a matrix-vector product, takes sgemv (3-4x faster than
 * sgemm with N = 1 in OpenBLAS).
 */
static void blas_rows_times_transposed(size_t n, size_t m, size_t k, const float *a, size_t lda,
                                       const float *b, size_t ldb, float *c, size_t ldc)
{
    if (n == 1)
        lstm__blas_sgemv(false, m, k, 1.0f, b, ldb, a, 0.0f, c);
    else
        lstm__blas_sgemm(false, true, n, m, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
}

/* C (n x m) = A (n x k) B for a B of k x m, with sgemv for a single row. */
static void blas_rows_times(size_t n, size_t m, size_t k, const float *a, size_t lda,
                            const float *b, size_t ldb, float *c, size_t ldc)
{
    if (n == 1)
        lstm__blas_sgemv(true, k, m, 1.0f, b, ldb, a, 0.0f, c);
    else
        lstm__blas_sgemm(false, false, n, m, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
}

enum impl { CEILING, OPENBLAS, SPLIT, BF16, INT8 };
static const char *const impl_names[] = {"ceiling", "openblas", "split", "bf16", "int8"};

/* One layer and direction: its weights and what training keeps for it. */
typedef struct block {
    size_t I, K; /* its input width I_l, and K = H + I_l */
    bool reverse;
    float *weight, *dweight, *stacked, *gates;
    float *kept;                       /* W packed for inference (pack_forward()), once per impl */
    void *reduced;                     /* BF16, INT8: W_h, then W_x, packed in that precision */
    lowp_weights reduced_h, reduced_x; /* ... described */
} block;

typedef struct shape {
    size_t T, B, H, G, count; /* count: layers x directions blocks */
    block *blocks;
    float *dstacked, *packed, *scratch; /* sized for the widest block */
    float *packed_x, *dx;               /* SPLIT: W_x packed; dX of every row */
    pool *workers;
    enum impl impl;
    void *quantized; /* BF16, INT8: a product's rows, rounded or quantized */
} shape;

/* The time of a block's step-th step: its direction's order. */
static size_t step_time(const shape *s, const block *k, size_t step)
{
    return k->reverse ? s->T - 1 - step : step;
}

/* Whether this implementation hoists the x part of a block's products. */
static bool hoists(const shape *s, const block *k, int train)
{
    return s->impl == SPLIT ||
           (s->impl == CEILING && lstm__schedule_hoist_input(s->B, s->G, k->K, train != 0));
}

/* W packed for a block's forward products at packed: W_h^T then W_x^T
 * apart when hoisting (W_x^T from packed_x_offset() on), else W^T whole. */
static size_t packed_x_offset(const shape *s)
{
    return lstm__gemm_packed_size(s->G, s->H);
}

static void pack_forward(const shape *s, const block *k, int train, float *packed)
{
    if (hoists(s, k, train)) {
        lstm__gemm_pack_threads(s->workers, true, k->weight, k->K, s->G, s->H, packed);
        lstm__gemm_pack_threads(s->workers, true, k->weight + s->H, k->K, s->G, k->I,
                                packed + packed_x_offset(s));
    } else {
        lstm__gemm_pack_threads(s->workers, true, k->weight, k->K, s->G, k->K, packed);
    }
}

/* SPLIT's forward: X W_x^T, then h_{t-1} W_h^T per step; X W_x^T for
 * every row at once in training, a chunk of steps at a time in inference
 * (schedule_hoist_chunk(), into the gates' first rows, as liblstm does). */
static void split_forward_calls(const shape *s, const block *k, int train, const float *packed)
{
    const float *packed_x = packed + packed_x_offset(s);
    const size_t chunk = train ? s->T : schedule_hoist_chunk(s->B) / s->B;
    for (size_t step0 = 0; step0 < s->T; step0 += chunk) {
        const size_t steps = s->T - step0 < chunk ? s->T - step0 : chunk;
        /* the chunk's first time step and its rows' place in the gates */
        const size_t t0 = k->reverse ? s->T - step0 - steps : step0, origin = train ? t0 : 0;
        lstm__gemm_packed_threads(s->workers, steps * s->B, s->G, k->I, 0,
                                  k->stacked + t0 * s->B * k->K + s->H, k->K, packed_x,
                                  k->gates + origin * s->B * s->G, s->G);
        for (size_t step = step0; step < step0 + steps; step++) {
            const size_t t = step_time(s, k, step);
            lstm__gemm_packed_add_threads(s->workers, s->B, s->G, s->H,
                                          k->stacked + t * s->B * k->K, k->K, packed,
                                          k->gates + (t - t0 + origin) * s->B * s->G, s->G);
        }
    }
}

/* SPLIT's backward: dA_t W_h per step, then dA W_x and dA^T S over every row. */
static void split_backward_calls(const shape *s, const block *k)
{
    lstm__gemm_pack_threads(s->workers, false, k->weight, k->K, s->H, s->G, s->packed);
    for (size_t step = s->T; step-- > 0;) {
        const size_t t = step_time(s, k, step);
        lstm__gemm_packed_threads(s->workers, s->B, s->H, s->G, 0, k->gates + t * s->B * s->G, s->G,
                                  s->packed, s->dstacked, k->K);
    }
    lstm__gemm_pack_threads(s->workers, false, k->weight + s->H, k->K, k->I, s->G, s->packed_x);
    lstm__gemm_packed_threads(s->workers, s->T * s->B, k->I, s->G, 0, k->gates, s->G, s->packed_x,
                              s->dx, k->I);
    lstm__gemm_accumulate_at_b(s->workers, s->G, k->K, s->T * s->B, k->gates, s->G, k->stacked,
                               k->K, k->dweight, k->K, NULL, s->scratch);
}

static lstm_precision precision_of(enum impl impl)
{
    return impl == BF16 ? LSTM_PRECISION_BF16 : LSTM_PRECISION_INT8;
}

/* W_h and W_x packed in the impl's precision, into the block's memory. */
static void pack_reduced(const shape *s, block *k)
{
    const lstm_precision precision = precision_of(s->impl);
    unsigned char *memory = k->reduced;
    k->reduced_h = lstm__lowp_weights_at(precision, s->G, s->H, memory);
    memory += lstm__lowp_weights_bytes(precision, s->G, s->H);
    k->reduced_x = lstm__lowp_weights_at(precision, s->G, k->I, memory);
    const lowp_source h = {.values = k->weight, .ld = k->K};
    const lowp_source x = {.values = k->weight + s->H, .ld = k->K};
    lstm__lowp_pack(s->workers, &h, &k->reduced_h);
    lstm__lowp_pack(s->workers, &x, &k->reduced_x);
}

/* Inference in bf16 or int8: impl=split's calls, each product's rows
 * rounded or quantized first. */
static void reduced_forward_calls(const shape *s, const block *k)
{
    const lstm_precision precision = precision_of(s->impl);
    const size_t chunk = schedule_hoist_chunk(s->B) / s->B;
    lowp_rows rows;
    for (size_t step0 = 0; step0 < s->T; step0 += chunk) {
        const size_t steps = s->T - step0 < chunk ? s->T - step0 : chunk;
        const size_t t0 = k->reverse ? s->T - step0 - steps : step0;
        lstm__lowp_quantize(precision, steps * s->B, k->I, k->stacked + t0 * s->B * k->K + s->H,
                            k->K, s->quantized, &rows);
        lstm__lowp_product(s->workers, false, &rows, &k->reduced_x, k->gates, s->G);
        for (size_t step = step0; step < step0 + steps; step++) {
            const size_t t = step_time(s, k, step);
            lstm__lowp_quantize(precision, s->B, s->H, k->stacked + t * s->B * k->K, k->K,
                                s->quantized, &rows);
            lstm__lowp_product(s->workers, true, &rows, &k->reduced_h,
                               k->gates + (t - t0) * s->B * s->G, s->G);
        }
    }
}

/* Training packs W in every repetition (the optimizer changes it between
 * steps); inference runs on the block's packing. */
static void forward_calls(const shape *s, const block *k, int train)
{
    if (s->impl == BF16 || s->impl == INT8) {
        reduced_forward_calls(s, k);
        return;
    }
    const bool plain_blas = s->impl == OPENBLAS;
    const float *packed = train ? s->packed : k->kept;
    if (!plain_blas && train)
        pack_forward(s, k, train, s->packed);
    if (hoists(s, k, train)) {
        split_forward_calls(s, k, train, packed);
        return;
    }
    for (size_t step = 0; step < s->T; step++) {
        const size_t t = step_time(s, k, step);
        const float *stacked_t = k->stacked + t * s->B * k->K;
        float *gates_t = k->gates + t * s->B * s->G;
        if (plain_blas)
            blas_rows_times_transposed(s->B, s->G, k->K, stacked_t, k->K, k->weight, k->K, gates_t,
                                       s->G);
        else
            lstm__gemm_packed_threads(s->workers, s->B, s->G, k->K, s->H, stacked_t, k->K, packed,
                                      gates_t, s->G);
    }
}

static void backward_calls(const shape *s, const block *k)
{
    if (hoists(s, k, 1)) {
        split_backward_calls(s, k);
        return;
    }
    const bool plain_blas = s->impl == OPENBLAS;
    if (!plain_blas)
        lstm__gemm_pack_threads(s->workers, false, k->weight, k->K, k->K, s->G, s->packed);
    for (size_t step = s->T; step-- > 0;) {
        const float *dgates_t = k->gates + step_time(s, k, step) * s->B * s->G;
        if (plain_blas)
            blas_rows_times(s->B, k->K, s->G, dgates_t, s->G, k->weight, k->K, s->dstacked, k->K);
        else
            lstm__gemm_packed_threads(s->workers, s->B, k->K, s->G, 0, dgates_t, s->G, s->packed,
                                      s->dstacked, k->K);
    }
    if (plain_blas)
        lstm__blas_sgemm(true, false, s->G, k->K, s->T * s->B, 1.0f, k->gates, s->G, k->stacked,
                         k->K, 1.0f, k->dweight, k->K);
    else
        lstm__gemm_accumulate_at_b(s->workers, s->G, k->K, s->T * s->B, k->gates, s->G, k->stacked,
                                   k->K, k->dweight, k->K, NULL, s->scratch);
}

/* Every block's products, one repetition: the forward pass layer by layer,
 * then (train) backward from the last block down. */
static void network_calls(const shape *s, int train)
{
    for (size_t n = 0; n < s->count; n++)
        forward_calls(s, &s->blocks[n], train);
    for (size_t n = s->count; train && n-- > 0;)
        backward_calls(s, &s->blocks[n]);
}

static double median_ms(const shape *s, int train, size_t repetitions)
{
    double times[MAX_REPETITIONS];
    for (size_t k = 0; k < WARMUP_RUNS + repetitions; k++) {
        double start = now_seconds();
        network_calls(s, train);
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

static float *aligned_floats(size_t count)
{
    return aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64);
}

static size_t larger(size_t a, size_t b)
{
    return a > b ? a : b;
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
    const char *program = "bench_ceiling";
    size_t I, layers, directions, repetitions = 10;
    shape s = {0};
    if (argc < 5) {
        fprintf(stderr,
                "usage: %s T B I H [repetitions [layers [directions "
                "[ceiling|openblas|split|bf16|int8 ...]]]]\n",
                argv[0]);
        return 2;
    }
    if (parse_size(program, argv[1], &s.T) || parse_size(program, argv[2], &s.B) ||
        parse_size(program, argv[3], &I) || parse_size(program, argv[4], &s.H) ||
        (argc >= 6 && parse_size(program, argv[5], &repetitions)) ||
        parse_network(program, argc >= 7 ? argv[6] : NULL, argc >= 8 ? argv[7] : NULL, &layers,
                      &directions))
        return 2;
    if (repetitions > MAX_REPETITIONS || I > (1u << 20) || s.H > (1u << 20)) {
        fprintf(stderr, "bench_ceiling: I and H must be at most 2^20, repetitions 1 .. %d\n",
                MAX_REPETITIONS);
        return 2;
    }
    s.G = 4 * s.H;
    s.count = layers * directions;
    s.blocks = calloc(s.count, sizeof *s.blocks);
    int status = 1;
    if (!s.blocks)
        goto out;
    size_t widest = 0, widest_input = 0; /* K and I_l of the widest block */
    for (size_t n = 0; n < s.count; n++) {
        block *k = &s.blocks[n];
        k->I = n < directions ? I : directions * s.H;
        k->K = s.H + k->I;
        k->reverse = n % directions == 1;
        k->weight = filled(s.G * k->K);
        k->dweight = filled(s.G * k->K);
        k->stacked = filled(s.T * s.B * k->K);
        k->gates = filled(s.T * s.B * s.G);
        k->kept = aligned_floats(lstm__gemm_packed_size(s.G, k->K));
        /* bf16 takes more than int8 */
        k->reduced = aligned_floats((lstm__lowp_weights_bytes(LSTM_PRECISION_BF16, s.G, s.H) +
                                     lstm__lowp_weights_bytes(LSTM_PRECISION_BF16, s.G, k->I) +
                                     sizeof(float) - 1) /
                                    sizeof(float));
        if (!k->weight || !k->dweight || !k->stacked || !k->gates || !k->kept || !k->reduced)
            goto out;
        widest = larger(widest, k->K);
        widest_input = larger(widest_input, k->I);
    }
    s.dstacked = filled(s.B * widest);
    s.packed = aligned_floats(
        larger(lstm__gemm_packed_size(s.G, widest), lstm__gemm_packed_size(widest, s.G)));
    s.scratch = aligned_floats(lstm__gemm_at_b_scratch_size(s.G, widest, s.T * s.B));
    s.packed_x = aligned_floats(larger(lstm__gemm_packed_size(s.G, widest_input),
                                       lstm__gemm_packed_size(widest_input, s.G)));
    s.dx = filled(s.T * s.B * widest_input);
    const size_t chunk_rows = schedule_hoist_chunk(s.B) / s.B * s.B;
    s.quantized = aligned_floats(
        larger(lstm__lowp_rows_bytes(LSTM_PRECISION_BF16, chunk_rows, larger(widest_input, s.H)),
               lstm__lowp_rows_bytes(LSTM_PRECISION_INT8, chunk_rows, larger(widest_input, s.H))) /
            sizeof(float) +
        1);
    if (!s.dstacked || !s.packed || !s.scratch || !s.packed_x || !s.dx || !s.quantized)
        goto out;
    s.workers = lstm__pool_create(lstm__blas_thread_count()); /* NULL: one thread, the caller */

    const char *threads = getenv("OPENBLAS_NUM_THREADS");
    const double flops = forward_flops(s.T, s.B, I, s.H, layers, directions);
    for (s.impl = CEILING; s.impl <= INT8; s.impl++) {
        if (!wanted(argc - 8, argv + 8, impl_names[s.impl]))
            continue;
        const bool reduced = s.impl == BF16 || s.impl == INT8;
        for (size_t n = 0; s.impl != OPENBLAS && n < s.count; n++) {
            if (reduced)
                pack_reduced(&s, &s.blocks[n]);
            else
                pack_forward(&s, &s.blocks[n], 0, s.blocks[n].kept);
        }
        for (int train = 0; train <= (reduced ? 0 : 1); train++) {
            double ms = median_ms(&s, train, repetitions);
            printf("impl=%s precision=%s T=%zu B=%zu I=%zu H=%zu layers=%zu directions=%zu "
                   "mode=%s threads=%s ms=%.3f gflops=%.2f workspace_bytes=0\n",
                   reduced ? "ceiling" : impl_names[s.impl], reduced ? impl_names[s.impl] : "fp32",
                   s.T, s.B, I, s.H, layers, directions, train ? "train" : "infer",
                   threads ? threads : "default", ms, (train ? 3.0 : 1.0) * flops / ms * 1e-6);
        }
    }
    status = 0;
out:
    if (status)
        fprintf(stderr, "bench_ceiling: out of memory\n");
    lstm__pool_destroy(s.workers);
    for (size_t n = 0; s.blocks && n < s.count; n++) {
        free(s.blocks[n].weight);
        free(s.blocks[n].dweight);
        free(s.blocks[n].stacked);
        free(s.blocks[n].gates);
        free(s.blocks[n].kept);
        free(s.blocks[n].reduced);
    }
    free(s.blocks);
    free(s.packed);
    free(s.packed_x);
    free(s.dx);
    free(s.scratch);
    free(s.dstacked);
    free(s.quantized);
    return status;
}
