/*
 * The products of inference in reduced precision (lstm_precision): C = A B^T,
 * or C += A B^T, with B (the weights) packed once and A (a step's h, a chunk
 * of steps' x, or the projection's input) rounded or quantized per call.
 *
 * bf16: B and A are rounded to bfloat16 (to nearest, ties to even;
 * subnormals to zero) and every product is summed in float32, two depth
 * values at a time (vdpbf16ps where the CPU has AVX-512 BF16: the odd
 * value's product, then the even one's, each added with one rounding). The
 * portable kernel does the same additions in the same order, so the two
 * differ only where a partial sum falls below 2^-126, which vdpbf16ps
 * flushes to zero.
 *
 * int8: each row of B (an output column: one gate of one unit) is
 * quantized symmetrically, q = round(b / s) in [-127, 127] with
 * s = max |b| / 127; each row of A asymmetrically to uint8 over its own
 * range, u = round(a r) + z in [0, 255], with s_a = (max(a, 0) -
 * min(a, 0)) / 255, r = 1 / s_a and z = round(-min(a, 0) r), which makes
 * 0 exact (all rounding to nearest, ties to even, in float32). The integer sums are exact
 * (vpdpbusd with AVX-512 VNNI, plain integer arithmetic elsewhere: the same
 * bits), and
 *     C[r][j] = (sum_k (u[r][k] - z_r) q[j][k]) * (s_a[r] * s[j])
 * in float32, added to C's value when accumulating. Depths beyond
 * 65,536 are summed in segments of that many, each converted and added in
 * turn, so that no int32 sum can overflow.
 *
 * The layout is the float kernel's (gemm.h): panels of 32 output columns,
 * each a row of 32 four-byte groups per step of the depth, where a group
 * holds 2 bf16 values or 4 int8 ones of consecutive depth (the depth
 * padded with zeros to whole groups).
 */
#ifndef LSTM_LOWP_H
#define LSTM_LOWP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lstm/model.h"

struct pool;

/* B packed for the products, in bf16 or int8. A view of whole panels of
 * columns (lstm__lowp_columns()) shares the memory of the packing. */
typedef struct lowp_weights {
    lstm_precision precision;
    size_t n_out, depth;
    const uint32_t *panels; /* panel p: groups x 32 groups, at p * groups * 32 */
    const float *scales;    /* int8: s of each column, [32 panels] */
    const int32_t *sums;    /* int8: sum of each column's q over each segment of the depth,
                               [segments][sums_stride] */
    size_t sums_stride;
} lowp_weights;

/* Bytes of a packing of n_out columns over depth in the precision (bf16 or
 * int8), its regions 64-byte aligned. */
size_t lstm__lowp_weights_bytes(lstm_precision precision, size_t n_out, size_t depth);

/* The packing of n_out columns over depth in the precision at `memory`
 * (64-byte aligned, lstm__lowp_weights_bytes() long), filled or not. */
lowp_weights lstm__lowp_weights_at(lstm_precision precision, size_t n_out, size_t depth,
                                   void *memory);

/* B's rows (W's, a row per gate unit), n_out x depth with leading
 * dimension ld: float32 values, or values quantized already in the
 * packing's precision (a model loaded from a quantized file, model.h),
 * which are packed as they are. Transposed (bf16 from float32 values
 * only): values holds B^T, depth x n_out, row k at values + k ld (the
 * backward pass: B = W^T, or every step's S for dW). */
typedef struct lowp_source {
    const float *values;  /* unless bf16 or int8 */
    const uint16_t *bf16; /* bf16 bits, or NULL */
    const int8_t *int8;   /* q, or NULL; then scales holds s */
    const float *scales;
    size_t ld;
    bool transposed;
} lowp_source;

/* Fills a packing with B for C = A B^T, split by panels across the pool's
 * threads where that pays (workers may be NULL). */
void lstm__lowp_pack(struct pool *workers, const lowp_source *b, const lowp_weights *weights);

/* The rounding and quantization of weights that the packing makes from
 * float32 values (lowp.h's top): the bf16 bits of v; a row's int8 scale
 * s = max |w| / 127; q = round(w / s) in [-127, 127], 0 where s is. Model
 * files store these (io.c). */
uint16_t lstm__lowp_bf16(float v);
float lstm__lowp_weight_scale(const float *row, size_t count);
int8_t lstm__lowp_weight_q(float w, float s);

/* The columns [first, first + count) of a packing, first a multiple of 32. */
lowp_weights lstm__lowp_columns(const lowp_weights *weights, size_t first, size_t count);

/* A, rounded or quantized for the products. */
typedef struct lowp_rows {
    lstm_precision precision;
    size_t n, depth;
    const uint32_t *groups; /* row r's groups at r * groups(depth) */
    const float *scales;    /* int8: s_a of each row */
    const int32_t *zeros;   /* int8: z of each row */
} lowp_rows;

/* Bytes lstm__lowp_quantize() needs for n rows over depth. */
size_t lstm__lowp_rows_bytes(lstm_precision precision, size_t n, size_t depth);

/* Bytes enough for one row over depth, such that n rows never need more
 * than n times as many: rows quantized from row r's place on
 * (r lstm__lowp_row_bytes()) stay apart from those of earlier rows. */
size_t lstm__lowp_row_bytes(lstm_precision precision, size_t depth);

/* The floats per output column a packing over depth is as large as: what
 * the scheduling thresholds (schedule.h), written for float32, weigh. */
size_t lstm__lowp_float_depth(lstm_precision precision, size_t depth);

/* Rounds (bf16) or quantizes (int8) the n x depth A (leading dimension
 * lda) into `memory` (64-byte aligned, lstm__lowp_rows_bytes() long);
 * *rows describes it. Each row's values depend on that row alone. */
void lstm__lowp_quantize(lstm_precision precision, size_t n, size_t depth, const float *a,
                         size_t lda, void *memory, lowp_rows *rows);

/* lstm__lowp_quantize() in bf16 of A^T: the n rows of A over depth are
 * the columns of a, depth x n with leading dimension lda (a weight
 * gradient's dA^T, backward.c). */
void lstm__lowp_round_columns(size_t n, size_t depth, const float *a, size_t lda, void *memory,
                              lowp_rows *rows);

/*
 * C (rows->n x weights->n_out, leading dimension ldc) = A B^T, or C + A B^T
 * when accumulating, split by panels across the pool's threads where that
 * pays (workers may be NULL). Each element is computed by one thread the
 * same way whatever the split, so the result does not depend on it.
 */
void lstm__lowp_product(struct pool *workers, bool accumulate, const lowp_rows *rows,
                        const lowp_weights *weights, float *c, size_t ldc);

#endif /* LSTM_LOWP_H */
