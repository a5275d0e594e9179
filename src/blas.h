/*
 * The only door to BLAS: the library's BLAS calls (the dense layer's
 * products, and the LSTM's in a build with LSTM_STEP_PRODUCTS=blas, gemm.h)
 * go through here, so another BLAS backend is one new .c file, and no BLAS
 * type appears outside blas_*.c. By default the LSTM's products use the
 * library's own kernel on packed weights (gemm.h). Matrices are
 * row-major float32; callers have already checked that every dimension and
 * leading dimension fits the BLAS integer type (see BLAS_MAX_DIM).
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
size_t lstm__blas_thread_count(void);

/* C[m x n] = alpha * op(A) op(B) + beta * C, op(X) = X or X^T. */
void lstm__blas_sgemm(bool trans_a, bool trans_b, size_t m, size_t n, size_t k, float alpha,
                      const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c,
                      size_t ldc);

/* y = alpha * op(A) x + beta * y, A is m x n; y has n entries when trans. */
void lstm__blas_sgemv(bool trans, size_t m, size_t n, float alpha, const float *a, size_t lda,
                      const float *x, float beta, float *y);

#endif /* LSTM_BLAS_H */
