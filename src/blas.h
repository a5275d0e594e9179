/*
 * The only door to BLAS. Everything the library multiplies goes through these
 * two calls, so another BLAS backend is one new .c file, and no BLAS type
 * appears outside blas_*.c. Matrices are row-major float32; callers have
 * already checked that every dimension and leading dimension fits the BLAS
 * integer type (see BLAS_MAX_DIM).
 */
#ifndef LSTM_BLAS_H
#define LSTM_BLAS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

/* Largest dimension or leading dimension the BLAS interface can take. */
#define BLAS_MAX_DIM ((size_t)INT_MAX)

/* The number of threads the BLAS is set to use (OPENBLAS_NUM_THREADS and the
 * like); the library's own per-step products use as many. */
size_t blas_thread_count(void);

/* C[m x n] = alpha * op(A) op(B) + beta * C, op(X) = X or X^T. */
void blas_sgemm(bool trans_a, bool trans_b, size_t m, size_t n, size_t k, float alpha,
                const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c,
                size_t ldc);

/* y = alpha * op(A) x + beta * y, A is m x n; y has n entries when trans. */
void blas_sgemv(bool trans, size_t m, size_t n, float alpha, const float *a, size_t lda,
                const float *x, float beta, float *y);

/*
 * C (n x m) = A (n x k) B^T for a B of m x k: one row per running sequence,
 * so a single row, a matrix-vector product, takes sgemv (3-4x faster than
 * sgemm with N = 1 in OpenBLAS).
 */
static inline void blas_rows_times_transposed(size_t n, size_t m, size_t k, const float *a,
                                              size_t lda, const float *b, size_t ldb, float *c,
                                              size_t ldc)
{
    if (n == 1)
        blas_sgemv(false, m, k, 1.0f, b, ldb, a, 0.0f, c);
    else
        blas_sgemm(false, true, n, m, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
}

/* C (n x m) = A (n x k) B for a B of k x m, with sgemv for a single row. */
static inline void blas_rows_times(size_t n, size_t m, size_t k, const float *a, size_t lda,
                                   const float *b, size_t ldb, float *c, size_t ldc)
{
    if (n == 1)
        blas_sgemv(true, k, m, 1.0f, b, ldb, a, 0.0f, c);
    else
        blas_sgemm(false, false, n, m, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
}

#endif /* LSTM_BLAS_H */
