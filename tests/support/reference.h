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
int ref_forward(size_t T, size_t B, size_t I, size_t H, const double *W, const double *b,
                const double *x, const double *h0, const double *c0, double *y, double *hT,
                double *cT, double *cache);

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
int ref_backward(size_t T, size_t B, size_t I, size_t H, const double *W, const double *b,
                 const double *x, const double *h0, const double *c0, const double *cache,
                 const double *dy, const double *dhT, const double *dcT, double *dx, double *dh0,
                 double *dc0, double *dW, double *db);

/*
 * ---- extended single layer: peepholes and projection ----------------------
 *
 * One layer and one direction of the equations in lstm/model.h, with the
 * optional terms:
 *
 *   i = sigmoid(W_i s + b_i + p_i * c_{t-1})
 *   f = sigmoid(W_f s + b_f + p_f * c_{t-1})
 *   g = tanh   (W_g s + b_g)
 *   c_t = f * c_{t-1} + i * g
 *   o = sigmoid(W_o s + b_o + p_o * c_t)
 *   m_t = o * tanh(c_t);   h_t = W_hr m_t with a projection, else m_t
 *
 * with s = [h_{t-1}, x_t]. R is the size of h: P with a projection, else H.
 * Multi-layer and bidirectional networks are built by the caller from
 * several calls (a reverse direction is this forward on the time-reversed
 * sequence). ref_forward()/ref_backward() above are this with p = NULL,
 * Whr = NULL.
 */
struct ref_layer {
    size_t T, B, I, H;
    size_t R;          /* size of h: P with a projection; must equal H without */
    const double *W;   /* 4H x (R + I), gate blocks i, f, g, o, columns [h | x] */
    const double *b;   /* 4H */
    const double *p;   /* 3 x H: [p_i; p_f; p_o], or NULL for no peepholes */
    const double *Whr; /* R x H projection, or NULL for none (then R == H) */
};

/*
 * Doubles in a forward cache of ref_forward_ex(): gates [T][B][4H], c_t
 * [T][B][H], h_t [T][B][R] and, with a projection, m_t [T][B][H].
 */
size_t ref_cache_len_ex(const struct ref_layer *layer);

/*
 * Forward pass of one layer.
 *
 * x           [T][B][I].
 * h0, c0      [B][R], [B][H] initial states, or NULL for zeros.
 * y           [T][B][R] receives h_t, or NULL.
 * hT, cT      [B][R], [B][H] final states, or NULL.
 * cache       ref_cache_len_ex() doubles for ref_backward_ex(), or NULL.
 * Returns 0, or -1 on a bad layer description (R != H without a
 * projection) or a failed allocation; then no output is written.
 */
int ref_forward_ex(const struct ref_layer *layer, const double *x, const double *h0,
                   const double *c0, double *y, double *hT, double *cT, double *cache);

/*
 * Backpropagation through time of
 *     L = sum(y * dy) + sum(hT * dhT) + sum(cT * dcT).
 *
 * layer, x, h0, c0  the forward's inputs.
 * cache       filled by ref_forward_ex() with the same inputs, or NULL to
 *             have the forward recomputed here.
 * dy, dhT, dcT  [T][B][R], [B][R], [B][H], or NULL for zeros.
 * dx [T][B][I], dh0 [B][R], dc0 [B][H], dW [4H][R+I], db [4H],
 * dp [3][H] (only read when layer->p != NULL), dWhr [R][H] (only when
 *             layer->Whr != NULL): receive the gradients, overwritten, not
 *             accumulated; each may be NULL if not wanted.
 * Returns 0 or -1 as ref_forward_ex(); on failure no output is written.
 */
int ref_backward_ex(const struct ref_layer *layer, const double *x, const double *h0,
                    const double *c0, const double *cache, const double *dy, const double *dhT,
                    const double *dcT, double *dx, double *dh0, double *dc0, double *dW, double *db,
                    double *dp, double *dWhr);

#endif /* LSTM_TESTS_REFERENCE_H */
