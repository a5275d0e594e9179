/*
 * Plain double-precision LSTM reference for the tests.
 *
 * Written straight from the equations in lstm/model.h with simple loops: no
 * BLAS and nothing shared with src/, so that it can judge the library. It
 * uses the library's layouts, in double:
 *
 *   W   4H rows x (H + I) columns, row-major, gate blocks i, f, g, o;
 *       columns [h part | x part].
 *   b   4H, gate blocks i, f, g, o.
 *   x   [T][B][I] time-major, y and dy [T][B][H], states [B][H].
 *
 * Not part of the library and not installed.
 */
#ifndef LSTM_TESTS_REFERENCE_H
#define LSTM_TESTS_REFERENCE_H

#include <stddef.h>

/*
 * Doubles in a forward cache: the activated gates [T][B][4H] (blocks
 * i, f, g, o), c_t [T][B][H] and h_t [T][B][H].
 */
size_t ref_cache_len(size_t T, size_t B, size_t H);

/*
 * Forward pass.
 *
 * h0, c0      [B][H] initial states, or NULL for zeros.
 * y           [T][B][H] receives h_t of every step, or NULL.
 * hT, cT      [B][H] receive the final states, or NULL.
 * cache       ref_cache_len() doubles that receive what ref_backward()
 *             needs, or NULL.
 * Returns 0, or -1 when the scratch state cannot be allocated (then no
 * output is written). The scratch is freed before returning.
 */
int ref_forward(size_t T, size_t B, size_t I, size_t H, const double *W,
                const double *b, const double *x, const double *h0,
                const double *c0, double *y, double *hT, double *cT,
                double *cache);

/*
 * Backpropagation through time of
 *     L = sum(y * dy) + sum(hT * dhT) + sum(cT * dcT).
 *
 * W, b, x, h0, c0 are the forward's inputs (h0, c0 NULL for zeros).
 * cache       filled by ref_forward() with the same inputs, or NULL to have
 *             the forward recomputed here into a temporary buffer.
 * dy, dhT, dcT  [T][B][H], [B][H], [B][H], or NULL for zeros.
 * dx, dh0, dc0, dW, db  receive the gradients (overwritten, not
 *             accumulated); each may be NULL if not wanted.
 * Returns 0, or -1 when the temporary buffers cannot be allocated (then no
 * output is written). Everything allocated is freed before returning.
 */
int ref_backward(size_t T, size_t B, size_t I, size_t H, const double *W,
                 const double *b, const double *x, const double *h0,
                 const double *c0, const double *cache, const double *dy,
                 const double *dhT, const double *dcT, double *dx,
                 double *dh0, double *dc0, double *dW, double *db);

#endif /* LSTM_TESTS_REFERENCE_H */
