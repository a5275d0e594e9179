/*
 * Reduced-precision products (see lowp.h).
 *
 * The kernel is the float one's (gemm.c) with wider steps of the depth: a
 * block of up to 8 rows x 32 columns of C in registers (16 sums), and per
 * step one 4-byte group of each row of A broadcast against a panel row of
 * 32 groups (128 bytes, two vectors). With AVX-512 BF16 one step is a
 * vdpbf16ps per vector (32 multiply-adds), with AVX-512 VNNI a vpdpbusd (64);
 * elsewhere the portable kernel widens the groups and multiplies in float or
 * int32 vectors (GCC's vector extensions, compiled for SSE2, AVX2 and
 * AVX-512 as the float kernel is), with the same results (lowp.h).
 *
 * This file keeps the default -ffp-contract=off: the int8 results are
 * bit-identical across kernels only because every float operation after
 * the integer sums is the same, unfused, in all of them.
 */
#include <string.h>

#include "compiler.h"
#include "lowp.h"
#include "pool.h"
#include "schedule.h"

#if LSTM__HAS_ISA_VARIANTS
#  include <immintrin.h>
#endif

typedef float vf LSTM__VECTOR(64);
typedef int32_t vi LSTM__VECTOR(64);
typedef uint32_t vu LSTM__VECTOR(64);

enum {
    PANEL = 32,            /* output columns per panel */
    MAX_ROWS = 8,          /* rows of a block */
    SEGMENT_GROUPS = 16384 /* int8: 65,536 depth values, whose int32 sums cannot overflow:
                              65,536 x 255 x 127 < 2^31 */
};

static size_t per_group(lstm_precision precision)
{
    return precision == LSTM_PRECISION_BF16 ? 2 : 4;
}

static size_t group_count(lstm_precision precision, size_t depth)
{
    return (depth + per_group(precision) - 1) / per_group(precision);
}

static size_t panel_count(size_t n_out)
{
    return (n_out + PANEL - 1) / PANEL;
}

static size_t segment_count(size_t groups)
{
    return groups <= SEGMENT_GROUPS ? 1 : (groups + SEGMENT_GROUPS - 1) / SEGMENT_GROUPS;
}

static size_t align64(size_t bytes)
{
    return (bytes + 63) / 64 * 64;
}

/* bf16 bits of v: rounded to nearest, ties to even; subnormals become a
 * signed zero, as vdpbf16ps would read them. (v is finite.) */
static uint32_t bf16_bits(float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    if ((u & 0x7f800000u) == 0)
        return (u >> 16) & 0x8000u;
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

/* x rounded to the nearest integer, ties to even, for |x| <= 2^22: adding
 * 1.5 x 2^23 leaves no bits below the units (the same in vector code,
 * unlike a call of nearbyintf). */
static float round_even(float x)
{
    const float magic = 12582912.0f;
    return (x + magic) - magic;
}

/* x within [lo, hi]; NaN (an overflowed activation: a model with absurd
 * weights) becomes lo, so that its conversion to an integer is defined. */
static float clamp(float x, float lo, float hi)
{
    return !(x >= lo) ? lo : x > hi ? hi : x;
}

/* The four-byte group of values v[0 .. count) (count <= per_group), zero
 * padded: bf16 as 16-bit halves, int8 as bytes, the first value lowest. */
static uint32_t bf16_group(const float *v, size_t count)
{
    return bf16_bits(v[0]) | (count > 1 ? bf16_bits(v[1]) << 16 : 0u);
}

static uint32_t byte_group(const uint8_t *bytes)
{
    return (uint32_t)bytes[0] | (uint32_t)bytes[1] << 8 | (uint32_t)bytes[2] << 16 |
           (uint32_t)bytes[3] << 24;
}

/* bf16_bits() of 16 floats' bits at once: rounded, or a signed zero for
 * subnormals. A macro for the reason SELECT_FLOAT is one (below). */
#define BF16_BITS(u) \
  SELECT_BITS(((u)&0x7f800000u) != 0, ((u) + 0x7fffu + (((u) >> 16) & 1u)) >> 16, \
              ((u) >> 16) & 0x8000u)

/* The lanes of a where mask is set, of b elsewhere (vectors of floats, or
 * of bits). A macro: a function taking or returning 64-byte vectors would
 * change its calling convention between the variants. */
#define SELECT_FLOAT(mask, a, b) ((vf)(((vi)(a) & (mask)) | ((vi)(b) & ~(mask))))
#define SELECT_BITS(mask, a, b) (((a) & (vu)(mask)) | ((b) & ~(vu)(mask)))

typedef int32_t v4i LSTM__VECTOR(16);
typedef uint8_t v16b LSTM__VECTOR(16);
typedef int8_t v16c LSTM__VECTOR(16);
typedef uint32_t v8u LSTM__VECTOR(32);

/* Values a packing from float32 rounds or quantizes at a time, in
 * vectors, before laying them out in the panels: whole groups, and a
 * block never straddles two segments of the depth. */
enum { PACK_BLOCK = 256 };
_Static_assert(PACK_BLOCK % 4 == 0 && (4 * SEGMENT_GROUPS) % PACK_BLOCK == 0,
               "a block of the packing is whole groups within one segment");

/* One row of A to bf16 groups: 16 values at a time in vectors, the rest
 * through bf16_group(), with the same operations. */
LSTM__ALWAYS_INLINE void round_bf16_row(const float *a, size_t depth, uint32_t *groups)
{
    size_t k = 0;
    for (; k + 16 <= depth; k += 16) {
        vu u;
        memcpy(&u, a + k, sizeof u);
        const vu bits = BF16_BITS(u);
        const v8u even = __builtin_shufflevector(bits, bits, 0, 2, 4, 6, 8, 10, 12, 14);
        const v8u odd = __builtin_shufflevector(bits, bits, 1, 3, 5, 7, 9, 11, 13, 15);
        const v8u pairs = even | odd << 16;
        memcpy(groups + k / 2, &pairs, sizeof pairs);
    }
    for (; k < depth; k += 2)
        groups[k / 2] = bf16_group(a + k, depth - k < 2 ? depth - k : 2);
}

/* ---- packing B ---- */

/* Where the regions of a packing lie in memory (NULL: only their size),
 * and the bytes they take. */
static size_t lay_out(lstm_precision precision, size_t n_out, size_t depth, unsigned char *memory,
                      lowp_weights *weights)
{
    const size_t groups = group_count(precision, depth), columns = panel_count(n_out) * PANEL;
    size_t bytes = align64(columns * groups * sizeof(uint32_t));
    const size_t scales_at = bytes;
    size_t sums_at = bytes;
    if (precision == LSTM_PRECISION_INT8) {
        bytes += align64(columns * sizeof(float));
        sums_at = bytes;
        bytes += align64(segment_count(groups) * columns * sizeof(int32_t));
    }
    if (memory != NULL)
        *weights = (lowp_weights){
            .precision = precision,
            .n_out = n_out,
            .depth = depth,
            .panels = (const uint32_t *)memory,
            .scales = precision == LSTM_PRECISION_INT8 ? (const float *)(memory + scales_at) : NULL,
            .sums = precision == LSTM_PRECISION_INT8 ? (const int32_t *)(memory + sums_at) : NULL,
            .sums_stride = columns,
        };
    return bytes;
}

size_t lstm__lowp_weights_bytes(lstm_precision precision, size_t n_out, size_t depth)
{
    return lay_out(precision, n_out, depth, NULL, NULL);
}

uint16_t lstm__lowp_bf16(float v)
{
    return (uint16_t)bf16_bits(v);
}

/* The largest |w| of a row (NaN ignored), 16 lanes at a time (the maximum
 * is exact in any order), then the rest. */
LSTM__ALWAYS_INLINE void largest_magnitude_any(const float *row, size_t count, float *out)
{
    vu lanes = {0};
    size_t k = 0;
    for (; k + 16 <= count; k += 16) {
        vu u;
        memcpy(&u, row + k, sizeof u);
        u &= 0x7fffffffu; /* |w|: magnitudes order as their bits; NaN ignored, as below */
        lanes = SELECT_BITS((u > lanes) & (u <= 0x7f800000u), u, lanes);
    }
    float largest = 0.0f, magnitudes[16];
    memcpy(magnitudes, &lanes, sizeof magnitudes);
    for (size_t lane = 0; lane < 16; lane++)
        largest = magnitudes[lane] > largest ? magnitudes[lane] : largest;
    for (; k < count; k++) {
        const float magnitude = row[k] < 0.0f ? -row[k] : row[k];
        largest = magnitude > largest ? magnitude : largest;
    }
    *out = largest;
}

LSTM__DISPATCH(largest_magnitude, largest_magnitude_any,
               (const float *row, size_t count, float *out), (row, count, out))

float lstm__lowp_weight_scale(const float *row, size_t count)
{
    float largest;
    largest_magnitude(row, count, &largest);
    return largest / 127.0f;
}

int8_t lstm__lowp_weight_q(float w, float s)
{
    return s > 0.0f ? (int8_t)round_even(clamp(w / s, -127, 127)) : 0;
}

/* q of count weights (lstm__lowp_weight_q()), 16 at a time in vectors
 * with the same operations, the rest one by one. */
LSTM__ALWAYS_INLINE void quantize_weights_any(const float *w, size_t count, float s, int8_t *q)
{
    size_t k = 0;
    const float magic = 12582912.0f; /* round_even() */
    for (; s > 0.0f && k + 16 <= count; k += 16) {
        vf v;
        memcpy(&v, w + k, sizeof v);
        v = v / s;
        v = SELECT_FLOAT(v >= -127.0f, v, (vf){0} - 127.0f); /* NaN too, as clamp() */
        v = SELECT_FLOAT(v > 127.0f, (vf){0} + 127.0f, v);
        v = (v + magic) - magic;
        const v16c narrow = __builtin_convertvector(__builtin_convertvector(v, vi), v16c);
        memcpy(q + k, &narrow, sizeof narrow);
    }
    for (; k < count; k++)
        q[k] = lstm__lowp_weight_q(w[k], s);
}

LSTM__DISPATCH(quantize_weights, quantize_weights_any,
               (const float *w, size_t count, float s, int8_t *q), (w, count, s, q))

/* Column j's groups (row j of B) into its place in the panels: rounded
 * from the float row a block at a time (round_bf16_row()), or the stored
 * bf16 values. */
static void pack_bf16_column(const lowp_source *b, size_t j, size_t depth, uint32_t *panel_column)
{
    const size_t groups = group_count(LSTM_PRECISION_BF16, depth);
    if (b->bf16 != NULL) {
        const uint16_t *stored = b->bf16 + j * b->ld;
        for (size_t g = 0; g < groups; g++) {
            const size_t k = 2 * g, count = depth - k < 2 ? depth - k : 2;
            panel_column[g * PANEL] = stored[k] | (count > 1 ? (uint32_t)stored[k + 1] << 16 : 0u);
        }
        return;
    }
    const float *row = b->values + j * b->ld;
    uint32_t rounded[PACK_BLOCK / 2];
    for (size_t k0 = 0; k0 < depth; k0 += PACK_BLOCK) {
        const size_t count = depth - k0 < PACK_BLOCK ? depth - k0 : PACK_BLOCK;
        round_bf16_row(row + k0, count, rounded);
        for (size_t g = 0; g < group_count(LSTM_PRECISION_BF16, count); g++)
            panel_column[(k0 / 2 + g) * PANEL] = rounded[g];
    }
}

/*
 * Column j quantized (lstm__lowp_weight_scale(), lstm__lowp_weight_q()), or
 * the stored q and s, into its place in the panels, with s and the sums of
 * q over each segment of the depth.
 */
static void pack_int8_column(const lowp_source *b, size_t j, size_t depth, uint32_t *panel_column,
                             float *scale, int32_t *sums, size_t sums_stride)
{
    const float *row = b->values + j * b->ld;
    const int8_t *stored = b->int8 != NULL ? b->int8 + j * b->ld : NULL;
    const float s = stored != NULL ? b->scales[j] : lstm__lowp_weight_scale(row, depth);
    *scale = s;
    const size_t groups = group_count(LSTM_PRECISION_INT8, depth);
    for (size_t segment = 0; segment < segment_count(groups); segment++)
        sums[segment * sums_stride] = 0;
    int8_t block[PACK_BLOCK];
    for (size_t k0 = 0; k0 < depth; k0 += PACK_BLOCK) {
        const size_t count = depth - k0 < PACK_BLOCK ? depth - k0 : PACK_BLOCK;
        if (stored != NULL)
            memcpy(block, stored + k0, count);
        else
            quantize_weights(row + k0, count, s, block);
        memset(block + count, 0, (4 - count % 4) % 4); /* the last group's padding */
        int32_t sum = 0; /* of the block's groups: one segment holds them all */
        for (size_t g = 0; g < group_count(LSTM_PRECISION_INT8, count); g++) {
            const uint8_t *bytes = (const uint8_t *)block + 4 * g;
            panel_column[(k0 / 4 + g) * PANEL] = byte_group(bytes);
            sum += block[4 * g] + block[4 * g + 1] + block[4 * g + 2] + block[4 * g + 3];
        }
        sums[k0 / 4 / SEGMENT_GROUPS * sums_stride] += sum;
    }
}

typedef struct pack_job {
    const lowp_source *b;
    const lowp_weights *weights;
} pack_job;

/* Panel p from B^T (a transposed source, bf16): each group's two rows of
 * B^T read as they lie, 32 columns at a time, so that the source streams
 * through once (a column at a time would stride through all of it). */
static void pack_bf16_panel_transposed(const lowp_source *b, const lowp_weights *w, size_t p,
                                       uint32_t *panel)
{
    const size_t first = p * PANEL, count = w->n_out - first < PANEL ? w->n_out - first : PANEL;
    for (size_t g = 0; g < group_count(LSTM_PRECISION_BF16, w->depth); g++) {
        const float *even = b->values + 2 * g * b->ld + first;
        const float *odd = 2 * g + 1 < w->depth ? even + b->ld : NULL;
        size_t j = 0;
        for (; j + 16 <= count; j += 16) { /* 16 columns' pairs in vectors */
            vu e, o = {0};
            memcpy(&e, even + j, sizeof e);
            if (odd != NULL)
                memcpy(&o, odd + j, sizeof o);
            const vu pairs = BF16_BITS(e) | (odd != NULL ? BF16_BITS(o) << 16 : (vu){0});
            memcpy(panel + g * PANEL + j, &pairs, sizeof pairs);
        }
        for (; j < count; j++)
            panel[g * PANEL + j] =
                bf16_bits(even[j]) | (odd != NULL ? bf16_bits(odd[j]) << 16 : 0u);
        for (; j < PANEL; j++)
            panel[g * PANEL + j] = 0; /* padding: zero weights */
    }
}

/* Part `part` packs a contiguous range of whole panels. (The packing's
 * memory is the caller's: lowp_weights only shows it as const to the
 * products.) */
static void pack_part(void *context, size_t part, size_t parts)
{
    const pack_job *job = context;
    const lowp_weights *w = job->weights;
    const size_t groups = group_count(w->precision, w->depth);
    size_t first, last;
    lstm__pool_share(panel_count(w->n_out), 1, part, parts, &first, &last);
    for (size_t p = first; p < last; p++) {
        uint32_t *panel = (uint32_t *)w->panels + p * groups * PANEL;
        if (job->b->transposed) {
            pack_bf16_panel_transposed(job->b, w, p, panel);
            continue;
        }
        for (size_t j = 0; j < PANEL; j++) {
            const size_t column = p * PANEL + j;
            if (column >= w->n_out) { /* padding: zero weights, scales and sums */
                for (size_t g = 0; g < groups; g++)
                    panel[g * PANEL + j] = 0;
                if (w->precision == LSTM_PRECISION_INT8) {
                    ((float *)w->scales)[column] = 0.0f;
                    for (size_t segment = 0; segment < segment_count(groups); segment++)
                        ((int32_t *)w->sums)[segment * w->sums_stride + column] = 0;
                }
                continue;
            }
            if (w->precision == LSTM_PRECISION_BF16)
                pack_bf16_column(job->b, column, w->depth, panel + j);
            else
                pack_int8_column(job->b, column, w->depth, panel + j, (float *)w->scales + column,
                                 (int32_t *)w->sums + column, w->sums_stride);
        }
    }
}

lowp_weights lstm__lowp_weights_at(lstm_precision precision, size_t n_out, size_t depth,
                                   void *memory)
{
    lowp_weights weights;
    lay_out(precision, n_out, depth, memory, &weights);
    return weights;
}

void lstm__lowp_pack(struct pool *workers, const lowp_source *b, const lowp_weights *weights)
{
    pack_job job = {b, weights};
    if (lstm__schedule_packing_threads_pay(workers, weights->n_out, weights->depth))
        lstm__pool_run(workers, pack_part, &job);
    else
        pack_part(&job, 0, 1);
}

lowp_weights lstm__lowp_columns(const lowp_weights *weights, size_t first, size_t count)
{
    lowp_weights view = *weights;
    view.n_out = count;
    view.panels += first * group_count(weights->precision, weights->depth);
    if (view.scales != NULL) {
        view.scales += first;
        view.sums += first;
    }
    return view;
}

/* ---- quantizing A ---- */

size_t lstm__lowp_rows_bytes(lstm_precision precision, size_t n, size_t depth)
{
    size_t bytes = align64(n * group_count(precision, depth) * sizeof(uint32_t));
    if (precision == LSTM_PRECISION_INT8)
        bytes += align64(n * sizeof(float)) + align64(n * sizeof(int32_t));
    return bytes;
}

size_t lstm__lowp_row_bytes(lstm_precision precision, size_t depth)
{
    return lstm__lowp_rows_bytes(precision, 1, depth);
}

size_t lstm__lowp_float_depth(lstm_precision precision, size_t depth)
{
    return group_count(precision, depth);
}

/*
 * One row of A to uint8: its range [lo, hi] (with 0 in it) in 255 steps of
 * s_a, u = round(a r) + z with r = 1 / s_a and z = round(-lo r), so that 0
 * is exactly z. A row whose range is below 1e-30 (zeros, in practice) gets
 * s_a = r = 0, so u = z = 0: it adds nothing. 16 values at a time in
 * vectors, the rest one by one with the same operations.
 */
LSTM__ALWAYS_INLINE void quantize_int8_row(const float *a, size_t depth, uint32_t *groups,
                                           float *scale, int32_t *zero)
{
    vf lo_lanes = {0}, hi_lanes = {0};
    size_t k = 0;
    for (; k + 16 <= depth; k += 16) {
        vf v;
        memcpy(&v, a + k, sizeof v);
        lo_lanes = SELECT_FLOAT(v < lo_lanes, v, lo_lanes);
        hi_lanes = SELECT_FLOAT(v > hi_lanes, v, hi_lanes);
    }
    float lo = 0.0f, hi = 0.0f;
    for (size_t lane = 0; lane < 16; lane++) {
        lo = lo_lanes[lane] < lo ? lo_lanes[lane] : lo;
        hi = hi_lanes[lane] > hi ? hi_lanes[lane] : hi;
    }
    for (size_t tail = k; tail < depth; tail++) {
        lo = a[tail] < lo ? a[tail] : lo;
        hi = a[tail] > hi ? a[tail] : hi;
    }
    const bool flat = hi - lo < 1e-30f;
    const float s = flat ? 0.0f : (hi - lo) / 255.0f, r = flat ? 0.0f : 1.0f / s;
    const float z = round_even(clamp(-lo * r, 0, 255));
    *scale = s;
    *zero = (int32_t)z;
    const float magic = 12582912.0f; /* round_even() */
    for (k = 0; k + 16 <= depth; k += 16) {
        vf v;
        memcpy(&v, a + k, sizeof v);
        vf u = ((v * r + magic) - magic) + z;
        u = SELECT_FLOAT(u >= 0.0f, u, (vf){0}); /* NaN too, as clamp() */
        u = SELECT_FLOAT(u > 255.0f, (vf){0} + 255.0f, u);
        const vi bytes = __builtin_convertvector(u, vi);
        /* group g of the four: bytes 4g .. 4g + 3, the first lowest. On a
         * little-endian CPU that is their order in memory, one narrowing
         * (vpmovdb); elsewhere the groups are put together by shifts. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        const v16b narrow = __builtin_convertvector(bytes, v16b);
        memcpy(groups + k / 4, &narrow, sizeof narrow);
#else
        const v4i group = __builtin_shufflevector(bytes, bytes, 0, 4, 8, 12) |
                          __builtin_shufflevector(bytes, bytes, 1, 5, 9, 13) << 8 |
                          __builtin_shufflevector(bytes, bytes, 2, 6, 10, 14) << 16 |
                          __builtin_shufflevector(bytes, bytes, 3, 7, 11, 15) << 24;
        memcpy(groups + k / 4, &group, sizeof group);
#endif
    }
    for (; k < depth; k += 4) {
        uint8_t bytes[4] = {0};
        for (size_t i = 0; i < 4 && k + i < depth; i++)
            bytes[i] = (uint8_t)clamp(round_even(a[k + i] * r) + z, 0, 255);
        groups[k / 4] = byte_group(bytes);
    }
}

LSTM__ALWAYS_INLINE void quantize_rows_any(lstm_precision precision, size_t n, size_t depth,
                                           const float *a, size_t lda, uint32_t *data,
                                           float *scales, int32_t *zeros)
{
    const size_t groups = group_count(precision, depth);
    for (size_t r = 0; r < n; r++) {
        if (precision == LSTM_PRECISION_INT8)
            quantize_int8_row(a + r * lda, depth, data + r * groups, scales + r, zeros + r);
        else
            round_bf16_row(a + r * lda, depth, data + r * groups);
    }
}

LSTM__DISPATCH(quantize_rows, quantize_rows_any,
               (lstm_precision precision, size_t n, size_t depth, const float *a, size_t lda,
                uint32_t *data, float *scales, int32_t *zeros),
               (precision, n, depth, a, lda, data, scales, zeros))

void lstm__lowp_quantize(lstm_precision precision, size_t n, size_t depth, const float *a,
                         size_t lda, void *memory, lowp_rows *rows)
{
    unsigned char *bytes = memory;
    uint32_t *data = memory;
    float *scales = NULL;
    int32_t *zeros = NULL;
    if (precision == LSTM_PRECISION_INT8) {
        const size_t data_bytes = align64(n * group_count(precision, depth) * sizeof(uint32_t));
        scales = (float *)(bytes + data_bytes);
        zeros = (int32_t *)(bytes + data_bytes + align64(n * sizeof(float)));
    }
    quantize_rows(precision, n, depth, a, lda, data, scales, zeros);
    *rows = (lowp_rows){precision, n, depth, data, scales, zeros};
}

/*
 * The columns of a as bf16 rows: a tile of 16 columns by 16 groups (32 of
 * a's rows) at a time, read along a's rows and written along the
 * output's, so that neither side strides through memory a value at a time.
 */
void lstm__lowp_round_columns(size_t n, size_t depth, const float *a, size_t lda, void *memory,
                              lowp_rows *rows)
{
    enum { TILE = 16 };
    const size_t groups = group_count(LSTM_PRECISION_BF16, depth);
    uint32_t *data = memory;
    for (size_t r0 = 0; r0 < n; r0 += TILE) {
        const size_t width = n - r0 < TILE ? n - r0 : TILE;
        for (size_t g0 = 0; g0 < groups; g0 += TILE) {
            const size_t height = groups - g0 < TILE ? groups - g0 : TILE;
            uint32_t tile[TILE][TILE]; /* [group][column] */
            for (size_t g = 0; g < height; g++) {
                const size_t k = 2 * (g0 + g);
                const float *even = a + k * lda + r0, *odd = k + 1 < depth ? even + lda : NULL;
                for (size_t i = 0; i < width; i++)
                    tile[g][i] = bf16_bits(even[i]) | (odd != NULL ? bf16_bits(odd[i]) << 16 : 0u);
            }
            for (size_t i = 0; i < width; i++)
                for (size_t g = 0; g < height; g++)
                    data[(r0 + i) * groups + g0 + g] = tile[g][i];
        }
    }
    *rows = (lowp_rows){LSTM_PRECISION_BF16, n, depth, data, NULL, NULL};
}

/* ---- the kernels ---- */

/* What a block of the product reads and writes: one segment of the depth,
 * groups [g0, g1), of the rows and panels. */
typedef struct block_args {
    bool accumulate; /* C + the segment's sums */
    size_t g0, g1, groups;
    const lowp_rows *a;
    const lowp_weights *w;
    const int32_t *sums; /* int8: the segment's column sums */
    float *c;
    size_t ldc;
} block_args;

/* C's block (rows from `row`, columns from panel p's first: `vectors`
 * vectors of 16 per row) = the sums, or C + the sums; only C's columns
 * below n_out are written. */
LSTM__ALWAYS_INLINE void store_block(size_t rows, size_t vectors, const block_args *x, size_t p,
                                     size_t row, vf value[MAX_ROWS][4])
{
    const size_t first = p * PANEL, left = x->w->n_out - first;
    const size_t width = left < vectors * 16 ? left : vectors * 16;
    for (size_t r = 0; r < rows; r++) {
        float *c = x->c + (row + r) * x->ldc + first;
        if (width == vectors * 16) { /* whole vectors, straight from the registers */
            for (size_t q = 0; q < vectors; q++) {
                vf out = value[r][q];
                if (x->accumulate) {
                    vf before;
                    memcpy(&before, c + 16 * q, sizeof before);
                    out = before + out;
                }
                memcpy(c + 16 * q, &out, sizeof out);
            }
            continue;
        }
        float out[4 * 16];
        memcpy(out, value[r], vectors * sizeof(vf));
        for (size_t j = 0; j < width; j++)
            c[j] = x->accumulate ? c[j] + out[j] : out[j];
    }
}

/* int8: the exact sums of (u - z) q, converted, times s_a s (lowp.h). */
LSTM__ALWAYS_INLINE void store_int8_block(size_t rows, size_t vectors, const block_args *x,
                                          size_t p, size_t row, vi sum[MAX_ROWS][4])
{
    vf value[MAX_ROWS][4];
    for (size_t q = 0; q < vectors; q++) {
        /* the panel's columns, or the next panel's for vectors 2 and 3 */
        const size_t column = p * PANEL + q * 16;
        vi column_sums;
        vf scales;
        memcpy(&column_sums, x->sums + column, sizeof column_sums);
        memcpy(&scales, x->w->scales + column, sizeof scales);
        for (size_t r = 0; r < rows; r++) {
            const vi exact = sum[r][q] - x->a->zeros[row + r] * column_sums;
            value[r][q] = __builtin_convertvector(exact, vf) * (x->a->scales[row + r] * scales);
        }
    }
    store_block(rows, vectors, x, p, row, value);
}

/* The group g of a panel row for vector q (of 16 columns): the panel p's
 * first two vectors, the next panel's for q = 2, 3. */
LSTM__ALWAYS_INLINE const uint32_t *panel_groups(const block_args *x, size_t p, size_t q, size_t g)
{
    return x->w->panels + ((p + q / 2) * x->groups + g) * PANEL + q % 2 * 16;
}

/*
 * The portable blocks: bf16 groups widened to floats (a bf16 is the high
 * half of a float), odd value first as vdpbf16ps adds them; int8 groups
 * widened to int32 by shifts. Each product of two bf16 values is exact in
 * float, so the multiply and the add round once together, as a fused
 * multiply-add would.
 */
LSTM__ALWAYS_INLINE void bf16_portable_block(size_t rows, size_t vectors, const block_args *x,
                                             size_t p, size_t row)
{
    vf sum[MAX_ROWS][4];
    for (size_t r = 0; r < rows; r++)
        for (size_t q = 0; q < vectors; q++)
            sum[r][q] = (vf){0};
    const uint32_t *a = x->a->groups + row * x->groups;
    for (size_t g = x->g0; g < x->g1; g++) {
        vf w_even[4], w_odd[4];
        for (size_t q = 0; q < vectors; q++) {
            vu w;
            memcpy(&w, panel_groups(x, p, q, g), sizeof w);
            w_even[q] = (vf)(w << 16);
            w_odd[q] = (vf)(w & 0xffff0000u);
        }
#pragma GCC unroll 8
        for (size_t r = 0; r < rows; r++) {
            const uint32_t pair = a[r * x->groups + g], even_bits = pair << 16,
                           odd_bits = pair & 0xffff0000u;
            float even, odd;
            memcpy(&even, &even_bits, sizeof even);
            memcpy(&odd, &odd_bits, sizeof odd);
            for (size_t q = 0; q < vectors; q++) {
                sum[r][q] += odd * w_odd[q];
                sum[r][q] += even * w_even[q];
            }
        }
    }
    store_block(rows, vectors, x, p, row, sum);
}

LSTM__ALWAYS_INLINE void int8_portable_block(size_t rows, size_t vectors, const block_args *x,
                                             size_t p, size_t row)
{
    vi sum[MAX_ROWS][4];
    for (size_t r = 0; r < rows; r++)
        for (size_t q = 0; q < vectors; q++)
            sum[r][q] = (vi){0};
    const uint32_t *a = x->a->groups + row * x->groups;
    for (size_t g = x->g0; g < x->g1; g++) {
        vi w[4][4]; /* [q][i]: value i of each column's group, sign extended */
        for (size_t q = 0; q < vectors; q++) {
            vu bytes;
            memcpy(&bytes, panel_groups(x, p, q, g), sizeof bytes);
            w[q][0] = (vi)(bytes << 24) >> 24;
            w[q][1] = (vi)(bytes << 16) >> 24;
            w[q][2] = (vi)(bytes << 8) >> 24;
            w[q][3] = (vi)bytes >> 24;
        }
#pragma GCC unroll 8
        for (size_t r = 0; r < rows; r++) {
            const uint32_t u = a[r * x->groups + g];
            const int32_t u0 = (int32_t)(u & 255u), u1 = (int32_t)(u >> 8 & 255u),
                          u2 = (int32_t)(u >> 16 & 255u), u3 = (int32_t)(u >> 24);
            /* sum += u . q over the group's four values */
            for (size_t q = 0; q < vectors; q++)
                sum[r][q] += u0 * w[q][0] + u1 * w[q][1] + u2 * w[q][2] + u3 * w[q][3];
        }
    }
    store_int8_block(rows, vectors, x, p, row, sum);
}

#if LSTM__HAS_ISA_VARIANTS
/* The same blocks on vdpbf16ps and vpdpbusd. */
LSTM__TARGET_AVX512_BF16 LSTM__ALWAYS_INLINE void
bf16_native_block(size_t rows, size_t vectors, const block_args *x, size_t p, size_t row)
{
    vf sum[MAX_ROWS][4];
    for (size_t r = 0; r < rows; r++)
        for (size_t q = 0; q < vectors; q++)
            sum[r][q] = (vf){0};
    const uint32_t *a = x->a->groups + row * x->groups;
    for (size_t g = x->g0; g < x->g1; g++) {
        __m512bh w[4];
        for (size_t q = 0; q < vectors; q++)
            memcpy(&w[q], panel_groups(x, p, q, g), sizeof w[q]);
#  pragma GCC unroll 8
        for (size_t r = 0; r < rows; r++) {
            const __m512bh pair = (__m512bh)_mm512_set1_epi32((int)a[r * x->groups + g]);
            for (size_t q = 0; q < vectors; q++)
                sum[r][q] = (vf)_mm512_dpbf16_ps((__m512)sum[r][q], pair, w[q]);
        }
    }
    store_block(rows, vectors, x, p, row, sum);
}

LSTM__TARGET_AVX512_VNNI LSTM__ALWAYS_INLINE void
int8_native_block(size_t rows, size_t vectors, const block_args *x, size_t p, size_t row)
{
    vi sum[MAX_ROWS][4];
    for (size_t r = 0; r < rows; r++)
        for (size_t q = 0; q < vectors; q++)
            sum[r][q] = (vi){0};
    const uint32_t *a = x->a->groups + row * x->groups;
    for (size_t g = x->g0; g < x->g1; g++) {
        __m512i w[4];
        for (size_t q = 0; q < vectors; q++)
            memcpy(&w[q], panel_groups(x, p, q, g), sizeof w[q]);
#  pragma GCC unroll 8
        for (size_t r = 0; r < rows; r++) {
            const __m512i u = _mm512_set1_epi32((int)a[r * x->groups + g]);
            for (size_t q = 0; q < vectors; q++)
                sum[r][q] = (vi)_mm512_dpbusd_epi32((__m512i)sum[r][q], u, w[q]);
        }
    }
    store_int8_block(rows, vectors, x, p, row, sum);
}
#endif

/* The arguments of one segment of the depth. */
static block_args segment_args(const lowp_rows *a, const lowp_weights *w, bool accumulate,
                               size_t segment, float *c, size_t ldc)
{
    const size_t groups = group_count(w->precision, w->depth), g0 = segment * SEGMENT_GROUPS;
    return (block_args){
        .accumulate = accumulate || segment > 0,
        .g0 = g0,
        .g1 = groups - g0 < SEGMENT_GROUPS ? groups : g0 + SEGMENT_GROUPS,
        .groups = groups,
        .a = a,
        .w = w,
        .sums = w->sums != NULL ? w->sums + segment * w->sums_stride : NULL,
        .c = c,
        .ldc = ldc,
    };
}

/*
 * Defines `static void name(a, w, accumulate, first, last, c, ldc)`, the
 * panels [first, last) of C by the block kernel `block`, compiled for
 * `target` (a kernel on instructions of its own can only be inlined into a
 * function compiled for them, hence a macro and not an inline driver). One
 * or two rows take two panels at once, so that four vectors of sums hide
 * the latency; more rows go in blocks of max_rows over each panel, which
 * then stays in cache for all of them.
 */
#define DEFINE_PRODUCT(name, target, block, max_rows) \
  target static void name(const lowp_rows *a, const lowp_weights *w, bool accumulate, \
                          size_t first, size_t last, float *c, size_t ldc) \
  { \
    const size_t n = a->n, groups = group_count(w->precision, w->depth); \
    for (size_t segment = 0; segment < segment_count(groups); segment++) { \
      const block_args x = segment_args(a, w, accumulate, segment, c, ldc); \
      size_t p = first; \
      for (; n <= 2 && p + 1 < last; p += 2) { \
        if (n == 1) \
          block(1, 4, &x, p, 0); \
        else \
          block(2, 4, &x, p, 0); \
      } \
      for (; p < last; p++) \
        for (size_t row = 0; row < n; row += (max_rows)) { \
          switch (n - row < (max_rows) ? n - row : (max_rows)) { \
          case 1: block(1, 2, &x, p, row); break; \
          case 2: block(2, 2, &x, p, row); break; \
          case 3: block(3, 2, &x, p, row); break; \
          case 4: block(4, 2, &x, p, row); break; \
          case 5: block(5, 2, &x, p, row); break; \
          case 6: block(6, 2, &x, p, row); break; \
          case 7: block(7, 2, &x, p, row); break; \
          default: block(MAX_ROWS, 2, &x, p, row); break; \
          } \
        } \
    } \
  }

typedef void product_fn(const lowp_rows *a, const lowp_weights *w, bool accumulate, size_t first,
                        size_t last, float *c, size_t ldc);

DEFINE_PRODUCT(bf16_portable, , bf16_portable_block, 4)
DEFINE_PRODUCT(int8_portable, , int8_portable_block, 4)
#if LSTM__HAS_ISA_VARIANTS
DEFINE_PRODUCT(bf16_portable_avx2, LSTM__TARGET_AVX2, bf16_portable_block, 4)
DEFINE_PRODUCT(int8_portable_avx2, LSTM__TARGET_AVX2, int8_portable_block, 4)
DEFINE_PRODUCT(bf16_portable_avx512, LSTM__TARGET_AVX512, bf16_portable_block, MAX_ROWS)
DEFINE_PRODUCT(int8_portable_avx512, LSTM__TARGET_AVX512, int8_portable_block, MAX_ROWS)
DEFINE_PRODUCT(bf16_native, LSTM__TARGET_AVX512_BF16, bf16_native_block, MAX_ROWS)
DEFINE_PRODUCT(int8_native, LSTM__TARGET_AVX512_VNNI, int8_native_block, MAX_ROWS)
#endif

/* The kernel this CPU runs for the precision: its own instructions where
 * it has them, else the portable kernel at the widest vectors it has. */
static product_fn *kernel_for(lstm_precision precision)
{
    const bool bf16 = precision == LSTM_PRECISION_BF16;
#if LSTM__HAS_ISA_VARIANTS
    const unsigned features = lstm__cpu_features();
    if (bf16 && (features & LSTM__CPU_AVX512_BF16))
        return bf16_native;
    if (!bf16 && (features & LSTM__CPU_AVX512_VNNI))
        return int8_native;
    switch (lstm__cpu_isa()) {
    case LSTM__ISA_AVX512: return bf16 ? bf16_portable_avx512 : int8_portable_avx512;
    case LSTM__ISA_AVX2: return bf16 ? bf16_portable_avx2 : int8_portable_avx2;
    case LSTM__ISA_BASELINE: break;
    }
#endif
    return bf16 ? bf16_portable : int8_portable;
}

typedef struct product_job {
    product_fn *kernel;
    bool accumulate;
    const lowp_rows *a;
    const lowp_weights *w;
    float *c;
    size_t ldc;
} product_job;

/* Part `part` of `parts` takes a contiguous range of whole panels. */
static void product_part(void *context, size_t part, size_t parts)
{
    const product_job *job = context;
    size_t first, last;
    lstm__pool_share(panel_count(job->w->n_out), 1, part, parts, &first, &last);
    if (first < last && job->a->n > 0)
        job->kernel(job->a, job->w, job->accumulate, first, last, job->c, job->ldc);
}

void lstm__lowp_product(struct pool *workers, bool accumulate, const lowp_rows *rows,
                        const lowp_weights *weights, float *c, size_t ldc)
{
    product_job job = {kernel_for(weights->precision), accumulate, rows, weights, c, ldc};
    /* A split pays for the same work as in float: the multiply-adds, which
     * here go per_group() to a step of the kernel. */
    const size_t float_depth = lstm__lowp_float_depth(weights->precision, weights->depth);
    if (lstm__schedule_threads_pay(workers, rows->n, weights->n_out, float_depth))
        lstm__pool_run(workers, product_part, &job);
    else
        product_part(&job, 0, 1);
}
