/* Small row-major matrix helpers shared by the forward and backward passes. */
#ifndef LSTM_MATRIX_H
#define LSTM_MATRIX_H

#include <stddef.h>
#include <string.h>

/* Copies rows x cols floats from src, whose rows are ld apart, to dense dst. */
static inline void copy_rows(float *dst, const float *src, size_t rows, size_t cols, size_t ld)
{
    for (size_t r = 0; r < rows; r++)
        memcpy(dst + r * cols, src + r * ld, cols * sizeof(float));
}

/* dst = src, or zeros when src is NULL (an optional input). */
static inline void load_or_zero(float *dst, const float *src, size_t count)
{
    if (src != NULL)
        memcpy(dst, src, count * sizeof(float));
    else
        memset(dst, 0, count * sizeof(float));
}

#endif /* LSTM_MATRIX_H */
