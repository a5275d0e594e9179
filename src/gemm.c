/*
 * Packed-weight products for the per-step calls (see gemm.h).
 *
 * Layout of a packing: panel p holds output columns [32 p, 32 p + 32), as
 * depth rows of 32 floats (64-byte aligned), zero past n_out. The kernel
 * keeps a block of up to 8 rows x 32 columns of C in registers (2 vectors
 * of 16 per row) and streams one panel row per step of the depth loop:
 * 2 vector loads, then per row a broadcast and 2 multiply-adds. With
 * AVX-512's 32 registers a block has 8 rows (16 sums: with 4 rows the
 * loads left the multiply-add units idle part of the time); with AVX2's
 * 16 it has 4. One or two rows take two panels at once instead, so that
 * there are enough independent sums to hide the latency. The measurements
 * behind these choices, and behind the fetching and blocking below, are
 * in docs/scheduling.md.
 * The vector extensions of GCC and clang give the same code SSE2, AVX2+FMA
 * and AVX-512 bodies (LSTM__DISPATCH, compiler.h); the widest the CPU has
 * runs, chosen by its features, not its model.
 *
 * Every output is one chain of multiply-adds in a fixed order of k, in
 * every kernel, so a row's result does not depend on how many rows share
 * its step (nor on the threads).
 * Unlike the elementwise kernels, this file lets the compiler contract a * b + c
 * into a fused multiply-add where the CPU has one, as BLAS kernels do; so
 * the last bits of a product may differ between CPUs, never between runs.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "blas.h"
#include "compiler.h"
#include "gemm.h"
#include "pool.h"
#include "schedule.h"

typedef float v16 LSTM__VECTOR(64);

enum { MAX_ROWS = 8, TILE = 16 };

static size_t panel_count(size_t n_out)
{
    return (n_out + GEMM_PANEL - 1) / GEMM_PANEL;
}

size_t lstm__gemm_packed_size(size_t n_out, size_t depth)
{
    return panel_count(n_out) * GEMM_PANEL * depth;
}

#if LSTM__HAS_ISA_VARIANTS
/* The shuffles of transpose_tile_avx512(), round d: index 16 + i is the
 * second row's i. EVEN_d makes the first row, ODD_d the second. */
#  define EVEN_1 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30
#  define ODD_1 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31
#  define EVEN_2 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29
#  define ODD_2 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31
#  define EVEN_4 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27
#  define ODD_4 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31
#  define EVEN_8 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23
#  define ODD_8 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31
/* The pairs (j, j + d) of each block of 2 d rows; the indices must be
 * literal for clang, hence a macro and not a loop over rounds. */
#  define TRANSPOSE_ROUND(d, even, odd) \
    for (size_t block = 0; block < TILE; block += 2 * (d)) \
      for (size_t j = block; j < block + (d); j++) { \
        const v16 first = m[j], second = m[j + (d)]; \
        m[j] = __builtin_shufflevector(first, second, even); \
        m[j + (d)] = __builtin_shufflevector(first, second, odd); \
      }

/*
 * transpose_tile() with AVX-512: the 16 rows in registers, then four rounds
 * of two-vector shuffles. Each round pairs rows d apart (d = 1, 2, 4, 8)
 * and cuts both into blocks of d elements: the first row becomes the even
 * blocks of the two, taken in turn, the second row the odd ones.
 */
LSTM__TARGET_AVX512 static void transpose_tile_avx512(const float *src, size_t lds, float *dst,
                                                      size_t ldd)
{
    v16 m[TILE];
    for (size_t r = 0; r < TILE; r++)
        memcpy(&m[r], src + r * lds, sizeof m[r]);
    TRANSPOSE_ROUND(1, EVEN_1, ODD_1)
    TRANSPOSE_ROUND(2, EVEN_2, ODD_2)
    TRANSPOSE_ROUND(4, EVEN_4, ODD_4)
    TRANSPOSE_ROUND(8, EVEN_8, ODD_8)
    for (size_t c = 0; c < TILE; c++)
        memcpy(dst + c * ldd, &m[c], sizeof m[c]);
}
#endif

/* dst[c][r] = src[r][c] for a TILE x TILE tile (rows lds and ldd apart):
 * the packings' transposes, in registers with AVX-512, where that beats
 * element by element even though they are bound by reading their source
 * from memory. */
static void transpose_tile(const float *src, size_t lds, float *dst, size_t ldd)
{
#if LSTM__HAS_ISA_VARIANTS
    if (lstm__cpu_isa() == LSTM__ISA_AVX512) {
        transpose_tile_avx512(src, lds, dst, ldd);
        return;
    }
#endif
    for (size_t r = 0; r < TILE; r++)
        for (size_t c = 0; c < TILE; c++)
            dst[c * ldd + r] = src[r * lds + c];
}

/* The BLAS build's packing (gemm.h) of B given n_out x depth: its rows. */
static void pack_dense_transposed(const float *b, size_t ldb, size_t n_out, size_t depth,
                                  float *packed)
{
    for (size_t j = 0; j < n_out; j++)
        memcpy(packed + j * depth, b + j * ldb, depth * sizeof(float));
}

/* The BLAS build's packing of B given depth x n_out: B^T, packed[j][k] =
 * B[k][j], whole tiles through transpose_tile(), then the edges. */
static void pack_dense(const float *b, size_t ldb, size_t depth, size_t n_out, float *packed)
{
    for (size_t k0 = 0; k0 < depth; k0 += TILE) {
        const size_t k1 = depth - k0 < TILE ? depth : k0 + TILE;
        size_t j0 = 0;
        for (; k1 - k0 == TILE && n_out - j0 >= TILE; j0 += TILE)
            transpose_tile(b + k0 * ldb + j0, ldb, packed + j0 * depth + k0, depth);
        for (size_t j = j0; j < n_out; j++)
            for (size_t k = k0; k < k1; k++)
                packed[j * depth + k] = b[k * ldb + j];
    }
}

void lstm__gemm_pack_transposed(const float *b, size_t ldb, size_t n_out, size_t depth,
                                float *packed)
{
    if (!GEMM_OWN_KERNEL) {
        pack_dense_transposed(b, ldb, n_out, depth, packed);
        return;
    }
    for (size_t p = 0; p < panel_count(n_out); p++) {
        float *panel = packed + p * depth * GEMM_PANEL;
        const size_t first = p * GEMM_PANEL;
        const size_t width = n_out - first < GEMM_PANEL ? n_out - first : GEMM_PANEL;
        /* A transpose in tiles of TILE columns of the panel's rows of B: a
         * tile reads one cache line of each row and writes TILE whole panel
         * rows. (Reading all of depth for 32 rows at once would keep 32
         * lines in flight that, with ldb a power of two, share a cache set,
         * and evict each other.) */
        for (size_t k0 = 0; k0 < depth; k0 += TILE) {
            const size_t k1 = depth - k0 < TILE ? depth : k0 + TILE;
            if (width == GEMM_PANEL && k1 - k0 == TILE) {
                for (size_t j0 = 0; j0 < GEMM_PANEL; j0 += TILE)
                    transpose_tile(b + (first + j0) * ldb + k0, ldb, panel + k0 * GEMM_PANEL + j0,
                                   GEMM_PANEL);
                continue;
            }
            for (size_t j = 0; j < width; j++) {
                const float *row = b + (first + j) * ldb;
                for (size_t k = k0; k < k1; k++)
                    panel[k * GEMM_PANEL + j] = row[k];
            }
            for (size_t k = k0; k < k1; k++)
                for (size_t j = width; j < GEMM_PANEL; j++)
                    panel[k * GEMM_PANEL + j] = 0.0f;
        }
    }
}

void lstm__gemm_pack(const float *b, size_t ldb, size_t depth, size_t n_out, float *packed)
{
    if (!GEMM_OWN_KERNEL) {
        pack_dense(b, ldb, depth, n_out, packed);
        return;
    }
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

typedef struct packing {
    bool transposed;
    const float *b;
    size_t ldb, n_out, depth;
    float *packed;
} packing;

/* Part `part` packs a contiguous range of whole panels. */
static void packing_part(void *context, size_t part, size_t parts)
{
    const packing *job = context;
    size_t first, last;
    lstm__pool_share(job->n_out, GEMM_PANEL, part, parts, &first, &last);
    if (first >= last)
        return;
    float *packed = job->packed + first * job->depth;
    if (job->transposed) /* output columns are rows of B */
        lstm__gemm_pack_transposed(job->b + first * job->ldb, job->ldb, last - first, job->depth,
                                   packed);
    else
        lstm__gemm_pack(job->b + first, job->ldb, job->depth, last - first, packed);
}

void lstm__gemm_pack_threads(struct pool *workers, bool transposed, const float *b, size_t ldb,
                             size_t n_out, size_t depth, float *packed)
{
    packing job = {transposed, b, ldb, n_out, depth, packed};
    if (lstm__schedule_packing_threads_pay(workers, n_out, depth))
        lstm__pool_run(workers, packing_part, &job);
    else
        packing_part(&job, 0, 1);
}

/* Rows per block: 8 where the vector registers hold 16 sums, else 4. */
static size_t block_rows(void)
{
#if LSTM__HAS_ISA_VARIANTS
    return lstm__cpu_isa() == LSTM__ISA_AVX512 ? MAX_ROWS : 4;
#else
    return 4;
#endif
}

/*
 * The next panel's lines a block of rows fetches ahead while it runs over
 * its own panel: `lines` cache lines (16 floats each) from `first` on, one
 * every `every` steps of the depth (none when lines is 0).
 */
typedef struct fetch_ahead {
    const float *first;
    size_t lines, every;
} fetch_ahead;

/* sum[r][q] += A[r][k] B[k][16 q .. 16 q + 16) for k in [k0, k1): the
 * block's multiply-add chains (B's columns 32 .. 63 from panel1), in
 * chunks of `every` steps that each fetch a line ahead. */
LSTM__ALWAYS_INLINE void multiply_add_range(size_t rows, size_t vectors, size_t k0, size_t k1,
                                            const float *a, size_t lda, const float *panel,
                                            const float *panel1, fetch_ahead ahead,
                                            v16 sum[MAX_ROWS][4])
{
    size_t line = k0 / ahead.every;
    for (size_t k = k0; k < k1;) {
        const size_t chunk_end = k1 - k > ahead.every ? k + ahead.every : k1;
        if (line < ahead.lines)
            __builtin_prefetch(ahead.first + line++ * 16, 0, 3);
        for (; k < chunk_end; k++) {
            v16 b[4];
            for (size_t q = 0; q < vectors; q++)
                memcpy(&b[q], (q < 2 ? panel : panel1) + k * GEMM_PANEL + q % 2 * 16, sizeof b[q]);
                /* C[r][j] += A[r][k] B[k][j] */
#pragma GCC unroll 8
            for (size_t r = 0; r < rows; r++) {
                const float x = a[r * lda + k];
                for (size_t q = 0; q < vectors; q++)
                    sum[r][q] += x * b[q];
            }
        }
    }
}

/*
 * The sums of a block of up to MAX_ROWS rows of C, `vectors` vectors of
 * 16 per row: 2 for one panel, or 4 for two panels at once (one or two
 * rows, so that there are enough independent sums to hide the latency).
 * Each sum starts from zero, or from C when accumulating, and takes the
 * multiply-adds over k = first_k .. depth - 1 and then 0 .. first_k - 1,
 * one chain per element (see gemm.h). C is written over [0 .. width) of
 * each row. Always inlined, with rows and vectors constants at every call
 * site: each variant of packed_product() gets its own copy, the sums in
 * registers of its width.
 */
LSTM__ALWAYS_INLINE void kernel(size_t rows, size_t vectors, bool accumulate, size_t width,
                                size_t depth, size_t first_k, const float *a, size_t lda,
                                const float *panel, float *c, size_t ldc, fetch_ahead ahead)
{
    const float *panel1 = panel + depth * GEMM_PANEL;
    v16 sum[MAX_ROWS][4];
    for (size_t r = 0; r < rows; r++) {
        if (!accumulate) {
            for (size_t q = 0; q < vectors; q++)
                sum[r][q] = (v16){0};
        } else if (width == vectors * 16) {
            /* whole vectors (a copy through a buffer would stall on
             * store-to-load forwarding, a cost dW pays on every block) */
            for (size_t q = 0; q < vectors; q++)
                memcpy(&sum[r][q], c + r * ldc + 16 * q, sizeof sum[r][q]);
        } else {
            float row[2 * GEMM_PANEL] = {0};
            memcpy(row, c + r * ldc, width * sizeof(float));
            memcpy(sum[r], row, vectors * sizeof sum[r][0]);
        }
    }
    multiply_add_range(rows, vectors, first_k, depth, a, lda, panel, panel1, ahead, sum);
    multiply_add_range(rows, vectors, 0, first_k, a, lda, panel, panel1, ahead, sum);
    if (width == vectors * 16) {
        /* whole vectors, straight from the registers (a copy of a
         * variable width went through the stack and `rep movsq`, which
         * cost a shallow product as much as many steps of its depth) */
        for (size_t r = 0; r < rows; r++)
            for (size_t q = 0; q < vectors; q++)
                memcpy(c + r * ldc + 16 * q, &sum[r][q], sizeof sum[r][q]);
    } else {
        for (size_t r = 0; r < rows; r++)
            memcpy(c + r * ldc, sum[r], width * sizeof(float));
    }
}

/* Fetches `rows` rows of a block of C (32 floats each, ldc apart) into the
 * cache, to be written. */
LSTM__ALWAYS_INLINE void fetch_c_rows(const float *c, size_t ldc, size_t rows)
{
    for (size_t r = 0; r < rows; r++) {
        __builtin_prefetch(c + r * ldc, 1, 3);
        __builtin_prefetch(c + r * ldc + 16, 1, 3);
    }
}

/*
 * The rows of one panel, in blocks of `block` rows, fetching the next panel
 * (if not NULL) into the cache on the way. The first block of rows reads
 * the panel from wherever it is, the others from the core's L2. With more
 * packed weights than the caches keep from step to step, the first block
 * would wait on main memory, which cannot stream a panel as fast as the
 * kernel reads it (2 vectors every 16 multiply-adds). So every block
 * fetches its share of the next panel ahead, spread over its run (a line
 * every `every` steps of the depth), and the panel reaches memory's pace
 * behind the whole panel's blocks instead of one. A single block fetches
 * nothing: it reads its panel once in order, which the hardware
 * prefetchers follow better than our fetches.
 *
 * With c_after (the next panel's block of C, or NULL), each block first
 * fetches the rows of C the block after it adds to, the last block
 * c_after's: a weight gradient's C is far larger than the caches, and its
 * rows lie ldc apart, which the hardware prefetchers do not follow, so
 * each block would otherwise start by waiting on them.
 * (docs/scheduling.md: the fetching ahead, with its measurements.)
 */
LSTM__ALWAYS_INLINE void panel_product(size_t n, size_t block, bool accumulate, size_t width,
                                       size_t depth, size_t first_k, const float *a, size_t lda,
                                       const float *panel, const float *next, float *c, size_t ldc,
                                       const float *c_after)
{
    /* each whole block fetches its share of the next panel's 2 depth lines */
    const size_t blocks = n / block, panel_lines = 2 * depth;
    const size_t share = blocks > 1 ? (panel_lines + blocks - 1) / blocks : 0;
    const size_t every = share > 0 && depth / share > 1 ? depth / share : 1;
    for (size_t m = 0; m < n; m += block) {
        const float *a_m = a + m * lda;
        float *c_m = c + m * ldc;
        const size_t first_line = m / block * share;
        const bool fetch = next != NULL && share > 0 && n - m >= block && first_line < panel_lines;
        const size_t lines =
            fetch && panel_lines - first_line < share ? panel_lines - first_line : share;
        const fetch_ahead ahead = {fetch ? next + first_line * 16 : NULL, fetch ? lines : 0,
                                   fetch ? every : SIZE_MAX};
        if (c_after != NULL) {
            /* the rows past this block: the next block's, else c_after's */
            const size_t after = n - m - (n - m < block ? n - m : block);
            if (after > 0)
                fetch_c_rows(c_m + block * ldc, ldc, after < block ? after : block);
            else
                fetch_c_rows(c_after, ldc, n < block ? n : block);
        }
#define KERNEL(rows) \
  kernel(rows, 2, accumulate, width, depth, first_k, a_m, lda, panel, c_m, ldc, ahead)
        switch (n - m < block ? n - m : block) {
        case 1: KERNEL(1); break;
        case 2: KERNEL(2); break;
        case 3: KERNEL(3); break;
        case 4: KERNEL(4); break;
        case 5: KERNEL(5); break;
        case 6: KERNEL(6); break;
        case 7: KERNEL(7); break;
        default: KERNEL(MAX_ROWS); break;
        }
#undef KERNEL
    }
}

/* Whether a product over so many packed weights fetches its panels ahead:
 * where they stream from main memory at every step. Below that they stay
 * in the shared L3 from one step to the next (the machine measured's
 * holds four times as much), and fetching ahead gains nothing there. */
#define FETCH_AHEAD_MIN_PACKED_BYTES ((size_t)8 << 20)

static bool weights_stream(size_t n_out, size_t depth)
{
    return lstm__gemm_packed_size(n_out, depth) * sizeof(float) > FETCH_AHEAD_MIN_PACKED_BYTES;
}

/*
 * Where the weights stream from memory and a panel has several blocks of
 * rows, the depth is taken STREAM_DEPTH at a time, every panel's part in
 * turn, each sum carried through C from one part to the next (the same
 * chain of multiply-adds, so the same bits). A block of rows then reads
 * 1024 of A's columns, not all of them: with whole panels, 64 rows of A
 * 2048 to 4096 deep (0.5 to 1 MB) share the core's L2 with the panel and
 * the next one coming in, and are read again from L3 for every panel.
 * With W in L3, or a single block of rows (which reads its panel once, in
 * order, for the hardware prefetchers), parts are slower, so they are
 * used only where the weights stream. (docs/scheduling.md: the timings.)
 */
#define STREAM_DEPTH ((size_t)1024)

/* The first column of the depth part after the one at k0 (of length
 * `part`), in the order first_k .. depth - 1, 0 .. first_k - 1; depth once
 * every part is done. */
static size_t next_part(size_t k0, size_t part, size_t depth, size_t first_k)
{
    const size_t k1 = k0 + part;
    if (k1 == depth)
        return first_k == 0 ? depth : 0;
    return k1 == first_k ? depth : k1;
}

/* C = A B over the packed B, or C + A B when accumulating, each element
 * summed from k = first_k round to first_k - 1; with `fetch`, each panel's
 * blocks of rows fetch the next panel ahead (see panel_product()), and
 * the depth goes in parts where that pays (see STREAM_DEPTH). */
LSTM__ALWAYS_INLINE void packed_product_any(bool accumulate, bool fetch, size_t n, size_t n_out,
                                            size_t depth, size_t first_k, const float *a,
                                            size_t lda, const float *packed, float *c, size_t ldc)
{
    const size_t panels = panel_count(n_out), block = block_rows();
    size_t p = 0;
    /* One or two rows: two panels at a time while there are two. */
    for (; n <= 2 && p + 1 < panels; p += 2) {
        const size_t first = p * GEMM_PANEL;
        const size_t width = n_out - first < 2 * GEMM_PANEL ? n_out - first : 2 * GEMM_PANEL;
        const float *panel = packed + p * depth * GEMM_PANEL;
        const fetch_ahead none = {NULL, 0, SIZE_MAX}; /* (reads each panel once) */
        if (n == 1)
            kernel(1, 4, accumulate, width, depth, first_k, a, lda, panel, c + first, ldc, none);
        else
            kernel(2, 4, accumulate, width, depth, first_k, a, lda, panel, c + first, ldc, none);
    }
    /* A panel's part of the depth stays in cache while every row block of
     * the step passes over it: the whole depth, summed from first_k, in one
     * part; or, in parts (see STREAM_DEPTH), k = first_k .. depth - 1 and
     * 0 .. first_k - 1 STREAM_DEPTH at a time, each summed on from C. */
    const bool in_parts = fetch && n > block && depth > STREAM_DEPTH;
    const size_t first_panel = p, k_first = in_parts ? first_k : 0;
    for (size_t k0 = k_first;;) {
        const size_t end = k0 < first_k ? first_k : depth;
        const size_t part = !in_parts ? depth : end - k0 < STREAM_DEPTH ? end - k0 : STREAM_DEPTH;
        const size_t k_next = in_parts ? next_part(k0, part, depth, first_k) : depth;
        for (p = first_panel; p < panels; p++) {
            const size_t first = p * GEMM_PANEL;
            const size_t width = n_out - first < GEMM_PANEL ? n_out - first : GEMM_PANEL;
            const float *panel = packed + p * depth * GEMM_PANEL + k0 * GEMM_PANEL;
            /* the next panel's part, or the first panel's next part */
            const float *next = !fetch           ? NULL
                                : p + 1 < panels ? panel + depth * GEMM_PANEL
                                : k_next < depth ? packed + k_next * GEMM_PANEL
                                                 : NULL;
            panel_product(n, block, accumulate || k0 != k_first, width, part,
                          in_parts ? 0 : first_k, a + k0, lda, panel, next, c + first, ldc, NULL);
        }
        if (k_next >= depth)
            return;
        k0 = k_next;
    }
}

LSTM__DISPATCH(packed_product, packed_product_any,
               (bool accumulate, bool fetch, size_t n, size_t n_out, size_t depth, size_t first_k,
                const float *a, size_t lda, const float *packed, float *c, size_t ldc),
               (accumulate, fetch, n, n_out, depth, first_k, a, lda, packed, c, ldc))

/* packed_product() on the kernel; on the BLAS (gemm.h), one call on the
 * dense B^T, summed in the BLAS's own order (first_k and fetch unused). */
static void product(bool accumulate, bool fetch, size_t n, size_t n_out, size_t depth,
                    size_t first_k, const float *a, size_t lda, const float *packed, float *c,
                    size_t ldc)
{
    if (!GEMM_OWN_KERNEL) {
        if (n > 0)
            lstm__blas_sgemm(false, true, n, n_out, depth, 1.0f, a, lda, packed, depth,
                             accumulate ? 1.0f : 0.0f, c, ldc);
        return;
    }
    packed_product(accumulate, fetch, n, n_out, depth, first_k, a, lda, packed, c, ldc);
}

void lstm__gemm_packed(size_t n, size_t n_out, size_t depth, size_t first_k, const float *a,
                       size_t lda, const float *packed, float *c, size_t ldc)
{
    product(false, weights_stream(n_out, depth), n, n_out, depth, first_k, a, lda, packed, c, ldc);
}

void lstm__gemm_packed_add(size_t n, size_t n_out, size_t depth, const float *a, size_t lda,
                           const float *packed, float *c, size_t ldc)
{
    product(true, weights_stream(n_out, depth), n, n_out, depth, 0, a, lda, packed, c, ldc);
}

typedef struct product_job {
    bool accumulate;
    size_t n, n_out, depth, first_k, lda, ldc;
    const float *a, *packed;
    float *c;
} product_job;

/* Part `part` of `parts` takes a contiguous range of whole panels. */
static void product_part(void *context, size_t part, size_t parts)
{
    const product_job *job = context;
    size_t first, last;
    lstm__pool_share(job->n_out, GEMM_PANEL, part, parts, &first, &last);
    if (first < last)
        product(job->accumulate, weights_stream(job->n_out, job->depth), job->n, last - first,
                job->depth, job->first_k, job->a, job->lda, job->packed + first * job->depth,
                job->c + first, job->ldc);
}

static void product_threads(struct pool *workers, bool accumulate, size_t n, size_t n_out,
                            size_t depth, size_t first_k, const float *a, size_t lda,
                            const float *packed, float *c, size_t ldc)
{
    product_job job = {accumulate, n, n_out, depth, first_k, lda, ldc, a, packed, c};
    if (lstm__schedule_threads_pay(workers, n, n_out, depth))
        lstm__pool_run(workers, product_part, &job);
    else
        product_part(&job, 0, 1);
}

void lstm__gemm_packed_threads(struct pool *workers, size_t n, size_t n_out, size_t depth,
                               size_t first_k, const float *a, size_t lda, const float *packed,
                               float *c, size_t ldc)
{
    product_threads(workers, false, n, n_out, depth, first_k, a, lda, packed, c, ldc);
}

void lstm__gemm_packed_add_threads(struct pool *workers, size_t n, size_t n_out, size_t depth,
                                   const float *a, size_t lda, const float *packed, float *c,
                                   size_t ldc)
{
    product_threads(workers, true, n, n_out, depth, 0, a, lda, packed, c, ldc);
}

/*
 * The weight gradient, C += A^T B over every step at once. The depth (the
 * steps' rows, thousands) is taken AT_B_DEPTH at a time: the threads first
 * pack that block of B into panels and of A into rows of A^T, then each
 * runs the per-step kernel over its own rows of C, AT_B_ROWS at a time
 * (256 KB of A^T, which stays in its core's L2 while every panel passes).
 * Each block of the depth reads and writes C once more, which deeper
 * blocks do less often (docs/scheduling.md).
 */
enum { AT_B_DEPTH = 512, AT_B_ROWS = 128 };

static size_t at_b_depth(size_t depth)
{
    return depth < AT_B_DEPTH ? depth : AT_B_DEPTH;
}

size_t lstm__gemm_at_b_scratch_size(size_t m, size_t n, size_t depth)
{
    return lstm__gemm_packed_size(n, at_b_depth(depth)) + m * at_b_depth(depth);
}

typedef struct at_b {
    size_t m, n, lda, ldb, ldc;
    size_t first_k, depth; /* the block of the depth being added */
    const float *a, *b;
    float *c, *b_packed, *a_packed;
    float *a_sums; /* [m], or NULL */
} at_b;

/* A^T's rows [first, last) for the depth block, as packed[row][k] (A being
 * depth x m, lda). A is read TILE rows at a time, each from first to last:
 * a few sequential streams, which the prefetchers follow (A, every step's
 * dA, is usually in main memory by now, and reading it a column of tiles
 * at a time, a line from each of its rows, defeats them). Each tile is
 * turned in L1 and written a whole line per row of A^T. With a_sums, the
 * TILE rows of A just read are then added to them, in order of k, so that
 * dA is read from memory once for both dW and db. */
static void pack_a_transposed(const at_b *job, size_t first, size_t last)
{
    const float *a = job->a + job->first_k * job->lda;
    const size_t depth = job->depth, lda = job->lda;
    float *packed = job->a_packed, *sums = job->a_sums;
    for (size_t k0 = 0; k0 < depth; k0 += TILE) {
        size_t r0 = first;
        if (depth - k0 >= TILE) {
            for (; last - r0 >= TILE; r0 += TILE)
                transpose_tile(a + k0 * lda + r0, lda, packed + r0 * depth + k0, depth);
        }
        /* the edges: a last short tile of rows or of the depth */
        const size_t k1 = depth - k0 < TILE ? depth : k0 + TILE;
        for (size_t k = k0; k < k1; k++)
            for (size_t r = r0; r < last; r++)
                packed[r * depth + k] = a[k * lda + r];
        for (size_t k = k0; sums != NULL && k < k1; k++)
            for (size_t r = first; r < last; r++)
                sums[r] += a[k * lda + r];
    }
}

/* Part `part` packs its share of B's panels and of A^T's rows. */
static void at_b_pack_part(void *context, size_t part, size_t parts)
{
    const at_b *job = context;
    size_t first, last;
    lstm__pool_share(job->n, GEMM_PANEL, part, parts, &first, &last);
    if (first < last)
        lstm__gemm_pack(job->b + job->first_k * job->ldb + first, job->ldb, job->depth,
                        last - first, job->b_packed + first * job->depth);
    lstm__pool_share(job->m, 1, part, parts, &first, &last);
    pack_a_transposed(job, first, last);
}

/* C[rows][n] += packed A^T (rows x depth) times every packed panel of B. */
LSTM__ALWAYS_INLINE void at_b_block_any(size_t rows, size_t n, size_t depth, const float *a_packed,
                                        const float *b_packed, float *c, size_t ldc)
{
    const size_t block = block_rows();
    for (size_t p = 0; p < panel_count(n); p++) {
        const size_t first = p * GEMM_PANEL;
        const size_t width = n - first < GEMM_PANEL ? n - first : GEMM_PANEL;
        panel_product(rows, block, true, width, depth, 0, a_packed, depth,
                      b_packed + p * depth * GEMM_PANEL, NULL, c + first, ldc,
                      p + 1 < panel_count(n) ? c + first + GEMM_PANEL : NULL);
    }
}

LSTM__DISPATCH(at_b_block, at_b_block_any,
               (size_t rows, size_t n, size_t depth, const float *a_packed, const float *b_packed,
                float *c, size_t ldc),
               (rows, n, depth, a_packed, b_packed, c, ldc))

/* Part `part` adds into its own rows of C, whole blocks of MAX_ROWS. */
static void at_b_product_part(void *context, size_t part, size_t parts)
{
    const at_b *job = context;
    size_t first, last;
    lstm__pool_share(job->m, MAX_ROWS, part, parts, &first, &last);
    for (size_t row = first; row < last; row += AT_B_ROWS) {
        const size_t rows = last - row < AT_B_ROWS ? last - row : AT_B_ROWS;
        at_b_block(rows, job->n, job->depth, job->a_packed + row * job->depth, job->b_packed,
                   job->c + row * job->ldc, job->ldc);
    }
}

void lstm__gemm_accumulate_at_b(struct pool *workers, size_t m, size_t n, size_t depth,
                                const float *a, size_t lda, const float *b, size_t ldb, float *c,
                                size_t ldc, float *a_sums, float *scratch)
{
    if (!GEMM_OWN_KERNEL) {
        /* one call, which the BLAS threads itself; then the sums, in
         * order of k: a_sums[j] += A[k][j] */
        lstm__blas_sgemm(true, false, m, n, depth, 1.0f, a, lda, b, ldb, 1.0f, c, ldc);
        for (size_t k = 0; a_sums != NULL && k < depth; k++)
            for (size_t j = 0; j < m; j++)
                a_sums[j] += a[k * lda + j];
        return;
    }
    at_b job = {.m = m,
                .n = n,
                .lda = lda,
                .ldb = ldb,
                .ldc = ldc,
                .a = a,
                .b = b,
                .c = c,
                .b_packed = scratch,
                .a_sums = a_sums};
    job.a_packed = scratch + lstm__gemm_packed_size(n, at_b_depth(depth));
    for (job.first_k = 0; job.first_k < depth; job.first_k += AT_B_DEPTH) {
        job.depth = at_b_depth(depth - job.first_k);
        if (lstm__schedule_gradient_threads_pay(workers, m, n, job.depth)) {
            lstm__pool_run(workers, at_b_pack_part, &job);
            lstm__pool_run(workers, at_b_product_part, &job);
        } else {
            at_b_pack_part(&job, 0, 1);
            at_b_product_part(&job, 0, 1);
        }
    }
}
