/*
 * The per-step products of the forward and backward passes, on weights
 * packed once per call. A general BLAS packs its operands again on every
 * call, and for the small row counts of one LSTM step (the batch) that
 * packing of W costs as much as the multiplication itself (55% of a
 * training step at B = 16 with OpenBLAS). Here W is packed once, into
 * panels of GEMM_PANEL output columns, and every step runs a register-
 * blocked kernel (4 rows x 32 columns) straight over the panels.
 */
#ifndef LSTM_GEMM_H
#define LSTM_GEMM_H

#include <stdbool.h>
#include <stddef.h>

/* Output columns per packed panel. */
#define GEMM_PANEL ((size_t)32)

/* Floats a packing of n_out output columns over depth needs. */
size_t lstm__gemm_packed_size(size_t n_out, size_t depth);

/*
 * Packs B^T for C = A B^T, B being n_out x depth row-major with leading
 * dimension ldb (the forward pass: B = W, a row per gate unit).
 */
void lstm__gemm_pack_transposed(const float *b, size_t ldb, size_t n_out, size_t depth,
                                float *packed);

/*
 * Packs B for C = A B, B being depth x n_out row-major with leading
 * dimension ldb (the backward pass: B = W's first n_out columns).
 */
void lstm__gemm_pack(const float *b, size_t ldb, size_t depth, size_t n_out, float *packed);

struct pool;

/* The packing of n_out output columns over depth by lstm__gemm_pack_transposed()
 * (transposed: B is n_out x depth) or lstm__gemm_pack() (B is depth x n_out),
 * split by panels across a pool's threads when B is large enough (workers
 * may be NULL). */
void lstm__gemm_pack_threads(struct pool *workers, bool transposed, const float *b, size_t ldb,
                             size_t n_out, size_t depth, float *packed);

/*
 * C (n x n_out, leading dimension ldc) = A (n x depth, lda) times the
 * packed B. Each element is one chain of multiply-adds over k = first_k,
 * ..., depth - 1, then 0, ..., first_k - 1 (first_k = 0: in order), the
 * same whatever the number of rows and threads. (The forward pass sums
 * S_t = [h_{t-1}, x_t] from x_t's first column on, so that the products
 * of gemm_hoist_input() give the same bits: see forward.c.)
 */
void lstm__gemm_packed(size_t n, size_t n_out, size_t depth, size_t first_k, const float *a,
                       size_t lda, const float *packed, float *c, size_t ldc);

/* C += A times the packed B: each element's chain of multiply-adds over
 * k = 0 .. depth - 1 goes on from C's value. */
void lstm__gemm_packed_add(size_t n, size_t n_out, size_t depth, const float *a, size_t lda,
                           const float *packed, float *c, size_t ldc);

/* Whether splitting such a product across the pool's threads pays for the
 * hand-over (false without workers). */
bool lstm__gemm_threads_pay(const struct pool *workers, size_t n, size_t n_out, size_t depth);

/* Whether the threads should each take whole panels of `units` hidden
 * units through every step of a pass whose per-step product is n x n_out
 * over depth: units in whole panels, at least one panel per thread, each
 * thread's share of the packed weights small enough to stay in its core's
 * cache, and a product that pays for the hand-over. */
bool lstm__gemm_units_pay(const struct pool *workers, size_t units, size_t n, size_t n_out,
                          size_t depth);

/*
 * Whether the threads should each take a group of whole sequences (batch
 * rows) through every step of a pass, each with all of the packed weights,
 * rather than share each step: the groups need no hand-over between steps,
 * and each sequence's h_t stays in its own core's cache. It pays when every
 * core's cache holds the packed weights (n_out x depth) and every thread
 * gets enough rows.
 */
bool lstm__gemm_sequences_pay(const struct pool *workers, size_t batch, size_t n_out, size_t depth);

/*
 * lstm__gemm_packed() split by panels across a pool's threads when the product is
 * large enough to pay for the hand-over (workers may be NULL: one thread).
 * Every element is computed by one thread with the same kernel, so the
 * result does not depend on the thread count.
 */
void lstm__gemm_packed_threads(struct pool *workers, size_t n, size_t n_out, size_t depth,
                               size_t first_k, const float *a, size_t lda, const float *packed,
                               float *c, size_t ldc);

/* lstm__gemm_packed_add() split across the threads in the same way. */
void lstm__gemm_packed_add_threads(struct pool *workers, size_t n, size_t n_out, size_t depth,
                                   const float *a, size_t lda, const float *packed, float *c,
                                   size_t ldc);

/* Packed weights above this many bytes are hoisted in inference. */
#define GEMM_HOIST_MIN_PACKED_BYTES ((size_t)12 << 20)

/*
 * Whether a pass whose steps have at most `batch` rows, with per-step
 * products of n_out (4H) outputs over depth (H + I), takes the input's
 * share of its products out of the recurrence. Split as S_t W^T =
 * h_{t-1} W_h^T + x_t W_x^T, the x part of many steps is one product over
 * all their rows, which reuses each panel of W_x for every row, and each
 * step streams only W_h (4H x H). That pays where a step's product is
 * bound by streaming the packed weights:
 *  - with few rows: measured here (bench_ceiling, T = 100, I = H), the
 *    products took 0.5-0.6x the time at B = 1 and 2 (H = 256), 0.66-0.86x
 *    at B = 3 and 0.84-0.95x at B = 4 (H = 256, 512), and the same at
 *    B = 6;
 *  - in inference, with W too large for the caches to keep between steps:
 *    at B = 64 the products took 0.85-0.95x the time with 13-32 MB of
 *    packed W (H = 640 to 1024), 1.01-1.05x with 8 MB (H = 512). Training
 *    gained nothing there (the backward's hoisted dx costs what the
 *    forward's saves), so it keeps its stacked products.
 * The results are the same to the bit either way.
 */
static inline bool gemm_hoist_input(size_t batch, size_t n_out, size_t depth, bool training)
{
    return batch <= 4 || (!training && lstm__gemm_packed_size(n_out, depth) * sizeof(float) >
                                           GEMM_HOIST_MIN_PACKED_BYTES);
}

/* Rows the hoisted products take at a time: the backward's dx = dA W_x
 * (through a scratch of so many rows), and in inference the forward's
 * X W_x^T, a chunk of whole steps at a time, so with at least `batch`. */
#define GEMM_HOIST_ROWS ((size_t)256)

static inline size_t gemm_hoist_chunk(size_t batch)
{
    return batch > GEMM_HOIST_ROWS ? batch : GEMM_HOIST_ROWS;
}

/* Floats of scratch lstm__gemm_accumulate_at_b() needs for C of m x n over up to
 * `depth` rows: min(512, depth) rows of B's panels and of A^T. */
size_t lstm__gemm_at_b_scratch_size(size_t m, size_t n, size_t depth);

/*
 * C (m x n, leading dimension ldc) += A^T B, A being depth x m (lda) and B
 * depth x n (ldb): a weight gradient over every step's rows at once, split
 * by rows of C across the pool's threads (workers may be NULL). Each
 * element is one chain of multiply-adds from C's value, in order of the
 * depth, by one thread, whatever the thread count. Unless a_sums is NULL,
 * a_sums[j] += A[k][j] for every k in order too (a bias gradient, from the
 * same read of A).
 */
void lstm__gemm_accumulate_at_b(struct pool *workers, size_t m, size_t n, size_t depth,
                                const float *a, size_t lda, const float *b, size_t ldb, float *c,
                                size_t ldc, float *a_sums, float *scratch);

#endif /* LSTM_GEMM_H */
