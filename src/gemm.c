/*
 * Packed-weight products for the per-step calls (see gemm.h).
 *
 * Layout of a packing: panel p holds output columns [32 p, 32 p + 32), as
 * depth rows of 32 floats (64-byte aligned), zero past n_out. The kernel
 * keeps a 4 x 32 block of C in registers (8 vectors of 16) and streams one
 * panel row per step of the depth loop: 2 vector loads, 4 broadcasts and
 * 8 multiply-adds. GCC's vector extensions give the same code SSE2, AVX2
 * and AVX-512 bodies; the loader picks one once.
 *
 * Unlike the elementwise kernels, this file lets GCC contract a * b + c
 * into a fused multiply-add where the CPU has one, as BLAS kernels do; so
 * the last bits of a product may differ between CPUs, never between runs.
 */
#include <string.h>

#include "gemm.h"
#include "pool.h"

typedef float v16 __attribute__((vector_size(64)));

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__ELF__) && \
    !defined(LSTM_NO_CLONES)
#  define GEMM_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))
#else
#  define GEMM_CLONES
#endif

enum { ROWS = 4 };

static size_t panel_count(size_t n_out)
{
    return (n_out + GEMM_PANEL - 1) / GEMM_PANEL;
}

size_t gemm_packed_size(size_t n_out, size_t depth)
{
    return panel_count(n_out) * GEMM_PANEL * depth;
}

void gemm_pack_transposed(const float *b, size_t ldb, size_t n_out, size_t depth,
                          float *packed)
{
    for (size_t p = 0; p < panel_count(n_out); p++) {
        float *panel = packed + p * depth * GEMM_PANEL;
        const size_t first = p * GEMM_PANEL;
        const size_t width = n_out - first < GEMM_PANEL ? n_out - first : GEMM_PANEL;
        /* 32 rows of B read side by side, the panel written in order */
        for (size_t k = 0; k < depth; k++) {
            float *out = panel + k * GEMM_PANEL;
            for (size_t j = 0; j < width; j++)
                out[j] = b[(first + j) * ldb + k];
            for (size_t j = width; j < GEMM_PANEL; j++)
                out[j] = 0.0f;
        }
    }
}

void gemm_pack(const float *b, size_t ldb, size_t depth, size_t n_out, float *packed)
{
    for (size_t p = 0; p < panel_count(n_out); p++) {
        float *panel = packed + p * depth * GEMM_PANEL;
        const size_t first = p * GEMM_PANEL;
        const size_t width = n_out - first < GEMM_PANEL ? n_out - first : GEMM_PANEL;
        for (size_t k = 0; k < depth; k++) {
            memcpy(panel + k * GEMM_PANEL, b + k * ldb + first, width * sizeof(float));
            memset(panel + k * GEMM_PANEL + width, 0, (GEMM_PANEL - width) * sizeof(float));
        }
    }
}

/* C[rows][0 .. width) for up to 4 rows of A against one panel. */
/* Always inlined: each clone of gemm_packed() must get its own copy, with
 * the vectors in registers of its width. */
static inline __attribute__((always_inline)) void kernel(size_t rows, size_t width,
                                                         size_t depth, const float *a,
                                                         size_t lda, const float *panel,
                                                         float *c, size_t ldc)
{
    const float *a0 = a, *a1 = a + (rows > 1 ? lda : 0), *a2 = a + (rows > 2 ? 2 * lda : 0),
                *a3 = a + (rows > 3 ? 3 * lda : 0);
    v16 c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0};
    /* rows is a constant at every call site: the rows beyond it vanish. */
    for (size_t k = 0; k < depth; k++) {
        v16 b0, b1;
        memcpy(&b0, panel + k * GEMM_PANEL, sizeof b0);
        memcpy(&b1, panel + k * GEMM_PANEL + 16, sizeof b1);
        const float x0 = a0[k];
        c00 += x0 * b0;
        c01 += x0 * b1;
        if (rows > 1) {
            const float x1 = a1[k];
            c10 += x1 * b0;
            c11 += x1 * b1;
        }
        if (rows > 2) {
            const float x2 = a2[k];
            c20 += x2 * b0;
            c21 += x2 * b1;
        }
        if (rows > 3) {
            const float x3 = a3[k];
            c30 += x3 * b0;
            c31 += x3 * b1;
        }
    }
    const v16 block[ROWS][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
    for (size_t r = 0; r < rows; r++)
        memcpy(c + r * ldc, block[r], width * sizeof(float));
}

GEMM_CLONES void gemm_packed(size_t n, size_t n_out, size_t depth, const float *a, size_t lda,
                             const float *packed, float *c, size_t ldc)
{
    /* A panel (depth x 32 floats) stays in cache while every row block of
     * the step passes over it. */
    for (size_t p = 0; p < panel_count(n_out); p++) {
        const size_t first = p * GEMM_PANEL;
        const size_t width = n_out - first < GEMM_PANEL ? n_out - first : GEMM_PANEL;
        const float *panel = packed + p * depth * GEMM_PANEL;
        for (size_t m = 0; m < n; m += ROWS) {
            const float *a_m = a + m * lda;
            float *c_m = c + m * ldc + first;
            switch (n - m) {
            case 1: kernel(1, width, depth, a_m, lda, panel, c_m, ldc); break;
            case 2: kernel(2, width, depth, a_m, lda, panel, c_m, ldc); break;
            case 3: kernel(3, width, depth, a_m, lda, panel, c_m, ldc); break;
            default: kernel(ROWS, width, depth, a_m, lda, panel, c_m, ldc); break;
            }
        }
    }
}

/* Below this many multiply-adds a step stays on one thread: handing work
 * over costs a few microseconds. */
#define PARALLEL_MIN_WORK ((size_t)1 << 20)

typedef struct product {
    size_t n, n_out, depth, lda, ldc;
    const float *a, *packed;
    float *c;
} product;

/* Part `part` of `parts` takes a contiguous range of whole panels. */
static void product_part(void *context, size_t part, size_t parts)
{
    const product *job = context;
    const size_t panels = panel_count(job->n_out);
    const size_t first = panels * part / parts, last = panels * (part + 1) / parts;
    if (first == last)
        return;
    const size_t column = first * GEMM_PANEL;
    const size_t end = last * GEMM_PANEL < job->n_out ? last * GEMM_PANEL : job->n_out;
    gemm_packed(job->n, end - column, job->depth, job->a, job->lda,
                job->packed + first * job->depth * GEMM_PANEL, job->c + column, job->ldc);
}

void gemm_packed_threads(struct pool *workers, size_t n, size_t n_out, size_t depth,
                         const float *a, size_t lda, const float *packed, float *c,
                         size_t ldc)
{
    if (workers == NULL || n * n_out * depth < PARALLEL_MIN_WORK ||
        panel_count(n_out) < pool_threads(workers)) {
        gemm_packed(n, n_out, depth, a, lda, packed, c, ldc);
        return;
    }
    product job = {n, n_out, depth, lda, ldc, a, packed, c};
    pool_run(workers, product_part, &job);
}
