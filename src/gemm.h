/*
 * The per-step products of the forward and backward passes, on weights
 * packed once per call. A general BLAS packs its operands again on every
 * call, and for the small row counts of one LSTM step (the batch) that
 * packing of W costs as much as the multiplication itself
 * (docs/scheduling.md). Here W is packed once, into panels of GEMM_PANEL
 * output columns, and every step runs a register-blocked kernel (4 or 8
 * rows x 32 columns) straight over the panels. When the products leave
 * the recurrence and how threads share them is schedule.h's to decide.
 *
 * Built with LSTM_STEP_PRODUCTS=blas (CMake; what `auto` picks on CPUs
 * other than x86-64, for which the library has no kernel tuned of its
 * own), the same calls run on the linked BLAS instead: a packing is a
 * dense copy of B^T, n_out rows of depth floats (so that output column j
 * starts at packed + j depth, where the panels put it too), and each
 * product is one cblas_sgemm (blas.h) on it, which the BLAS threads
 * itself. What the comments below promise about the order of the sums,
 * first_k and the threads then holds for the kernel only: the BLAS sums in
 * its own order, which may change with the shape, the BLAS and its thread
 * count (docs/scheduling.md).
 */
#ifndef LSTM_GEMM_H
#define LSTM_GEMM_H

#include <stdbool.h>
#include <stddef.h>

/* 1 where the products run on the library's kernel, 0 where on the BLAS
 * (LSTM_STEP_PRODUCTS=blas): the one switch between the two. */
#if defined(LSTM_STEP_PRODUCTS_BLAS)
#  define GEMM_OWN_KERNEL 0
#else
#  define GEMM_OWN_KERNEL 1
#endif

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
 * split by panels across a pool's threads where
 * lstm__schedule_packing_threads_pay() says so (workers may be NULL). */
void lstm__gemm_pack_threads(struct pool *workers, bool transposed, const float *b, size_t ldb,
                             size_t n_out, size_t depth, float *packed);

/*
 * C (n x n_out, leading dimension ldc) = A (n x depth, lda) times the
 * packed B. Each element is one chain of multiply-adds over k = first_k,
 * ..., depth - 1, then 0, ..., first_k - 1 (first_k = 0: in order), the
 * same whatever the number of rows and threads. (The forward pass sums
 * S_t = [h_{t-1}, x_t] from x_t's first column on, so that the products
 * of lstm__schedule_hoist_input() give the same bits: see forward.c.)
 */
void lstm__gemm_packed(size_t n, size_t n_out, size_t depth, size_t first_k, const float *a,
                       size_t lda, const float *packed, float *c, size_t ldc);

/* C += A times the packed B: each element's chain of multiply-adds over
 * k = 0 .. depth - 1 goes on from C's value. */
void lstm__gemm_packed_add(size_t n, size_t n_out, size_t depth, const float *a, size_t lda,
                           const float *packed, float *c, size_t ldc);

/*
 * lstm__gemm_packed() split by panels across a pool's threads where
 * lstm__schedule_threads_pay() says so (workers may be NULL: one thread).
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

/* Floats of scratch lstm__gemm_accumulate_at_b() needs for C of m x n over up to
 * `depth` rows: min(512, depth) rows of B's panels and of A^T. (The BLAS
 * build uses none, but keeps the size lstm_workspace_size() documents.) */
size_t lstm__gemm_at_b_scratch_size(size_t m, size_t n, size_t depth);

/*
 * C (m x n, leading dimension ldc) += A^T B, A being depth x m (lda) and B
 * depth x n (ldb): a weight gradient over every step's rows at once, split
 * by rows of C across the pool's threads (workers may be NULL). Each
 * element is one chain of multiply-adds from C's value, in order of the
 * depth, by one thread, whatever the thread count (the split:
 * lstm__schedule_gradient_threads_pay()). Unless a_sums is NULL,
 * a_sums[j] += A[k][j] for every k in order too (a bias gradient, from the
 * same read of A).
 */
void lstm__gemm_accumulate_at_b(struct pool *workers, size_t m, size_t n, size_t depth,
                                const float *a, size_t lda, const float *b, size_t ldb, float *c,
                                size_t ldc, float *a_sums, float *scratch);

#endif /* LSTM_GEMM_H */
