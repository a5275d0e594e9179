/* BLAS backend for any CBLAS: OpenBLAS (default), BLIS or netlib's. */
#include <cblas.h>

#include "blas.h"
#include "compiler.h"

void lstm__blas_sgemm(bool trans_a, bool trans_b, size_t m, size_t n, size_t k, float alpha,
                      const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c,
                      size_t ldc)
{
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, alpha, a, (int)lda, b,
                (int)ldb, beta, c, (int)ldc);
}

void lstm__blas_sgemv(bool trans, size_t m, size_t n, float alpha, const float *a, size_t lda,
                      const float *x, float beta, float *y)
{
    cblas_sgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, (int)m, (int)n, alpha, a,
                (int)lda, x, 1, beta, y, 1);
}

/* Each CBLAS has its own way to tell its thread count; whichever is linked
 * answers (weak references stay NULL for the others). */
extern int openblas_get_num_threads(void) LSTM__WEAK;
extern int bli_thread_get_num_threads(void) LSTM__WEAK;

size_t lstm__blas_thread_count(void)
{
    int threads = 1;
    if (openblas_get_num_threads != NULL)
        threads = openblas_get_num_threads();
    else if (bli_thread_get_num_threads != NULL)
        threads = bli_thread_get_num_threads();
    return threads > 1 ? (size_t)threads : 1;
}
