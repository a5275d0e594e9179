/* Small row-major matrix helpers shared by the forward and backward passes. */
#ifndef LSTM_MATRIX_H
#define LSTM_MATRIX_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* rows x cols floats from src (rows ld_src apart) to dst (rows ld_dst apart). */
static inline void copy_block(float *dst, size_t ld_dst, const float *src, size_t ld_src,
                              size_t rows, size_t cols)
{
    for (size_t r = 0; r < rows; r++)
        memcpy(dst + r * ld_dst, src + r * ld_src, cols * sizeof(float));
}

/* dst = src, or zeros when src is NULL (an optional input). */
static inline void load_or_zero(float *dst, const float *src, size_t count)
{
    if (src != NULL)
        memcpy(dst, src, count * sizeof(float));
    else
        memset(dst, 0, count * sizeof(float));
}

/* dst += src, count floats. */
static inline void add_to(float *restrict dst, const float *restrict src, size_t count)
{
    for (size_t k = 0; k < count; k++)
        dst[k] += src[k];
}

/* Index of step t of sequence b among T x B rows, time-major or batch-first. */
static inline size_t sequence_row(bool batch_first, size_t T, size_t B, size_t t, size_t b)
{
    return batch_first ? b * T + t : t * B + b;
}

#endif /* LSTM_MATRIX_H */
