/*
 * Plain double-precision LSTM forward and backward (BPTT), see reference.h.
 *
 * Deliberately naive: one sample at a time, one dot product per gate row,
 * so that every line can be checked against the equations by eye.
 */
#include "reference.h"

#include <math.h>
#include <stdlib.h>

/* Element k of an optional vector; NULL reads as zeros. */
static double opt_at(const double *v, size_t k)
{
    return v != NULL ? v[k] : 0.0;
}

static double sigmoid(double a)
{
    return 1.0 / (1.0 + exp(-a));
}

size_t ref_cache_len(size_t T, size_t B, size_t H)
{
    return T * B * 6 * H;
}

/* Cache regions: gates [T][B][4H], then c_t [T][B][H], then h_t [T][B][H]. */
static size_t cache_c_offset(size_t T, size_t B, size_t H)
{
    return T * B * 4 * H;
}

static size_t cache_h_offset(size_t T, size_t B, size_t H)
{
    return T * B * 5 * H;
}

int ref_forward(size_t T, size_t B, size_t I, size_t H, const double *W,
                const double *b, const double *x, const double *h0,
                const double *c0, double *y, double *hT, double *cT,
                double *cache)
{
    const size_t S = H + I;
    double *h = malloc(B * H * sizeof *h);
    double *c = malloc(B * H * sizeof *c);
    double *gates = malloc(4 * H * sizeof *gates);
    int status = -1;

    if (h == NULL || c == NULL || gates == NULL)
        goto out;

    for (size_t k = 0; k < B * H; k++) {
        h[k] = opt_at(h0, k);
        c[k] = opt_at(c0, k);
    }

    for (size_t t = 0; t < T; t++) {
        for (size_t n = 0; n < B; n++) {
            double *hn = h + n * H;
            double *cn = c + n * H;
            const double *xt = x + (t * B + n) * I;

            /* a_r = b_r + sum_k W[r][k] s_k, s = [h_{t-1}, x_t] */
            for (size_t r = 0; r < 4 * H; r++) {
                const double *row = W + r * S;
                double a = b[r];
                for (size_t k = 0; k < H; k++)
                    a += row[k] * hn[k];
                for (size_t k = 0; k < I; k++)
                    a += row[H + k] * xt[k];
                gates[r] = a;
            }
            /* i, f, o = sigmoid(a); g = tanh(a) */
            for (size_t j = 0; j < H; j++) {
                gates[j] = sigmoid(gates[j]);
                gates[H + j] = sigmoid(gates[H + j]);
                gates[2 * H + j] = tanh(gates[2 * H + j]);
                gates[3 * H + j] = sigmoid(gates[3 * H + j]);
            }
            /* c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t) */
            for (size_t j = 0; j < H; j++) {
                double gi = gates[j];
                double gf = gates[H + j];
                double gg = gates[2 * H + j];
                double go = gates[3 * H + j];
                cn[j] = gf * cn[j] + gi * gg;
                hn[j] = go * tanh(cn[j]);
            }

            if (y != NULL) {
                for (size_t j = 0; j < H; j++)
                    y[(t * B + n) * H + j] = hn[j];
            }
            if (cache != NULL) {
                double *cg = cache + (t * B + n) * 4 * H;
                double *cc = cache + cache_c_offset(T, B, H) + (t * B + n) * H;
                double *ch = cache + cache_h_offset(T, B, H) + (t * B + n) * H;
                for (size_t r = 0; r < 4 * H; r++)
                    cg[r] = gates[r];
                for (size_t j = 0; j < H; j++) {
                    cc[j] = cn[j];
                    ch[j] = hn[j];
                }
            }
        }
    }

    for (size_t k = 0; k < B * H; k++) {
        if (hT != NULL)
            hT[k] = h[k];
        if (cT != NULL)
            cT[k] = c[k];
    }
    status = 0;
out:
    free(h);
    free(c);
    free(gates);
    return status;
}

/* Scratch of one backward call, allocated together and freed together. */
struct bwd_scratch {
    double *own_cache; /* forward recomputed here when the caller gave none */
    double *dh;        /* [B][H] dL/dh_t flowing back from step t+1 */
    double *dc;        /* [B][H] dL/dc_t flowing back from step t+1 */
    double *dc_t;      /* [H] total dL/dc_t of one sample */
    double *da;        /* [4H] gate pre-activation gradients of one sample */
    double *gW;        /* [4H][H+I] dW accumulator */
    double *gb;        /* [4H] db accumulator */
};

static void bwd_scratch_free(struct bwd_scratch *s)
{
    free(s->own_cache);
    free(s->dh);
    free(s->dc);
    free(s->dc_t);
    free(s->da);
    free(s->gW);
    free(s->gb);
}

static int bwd_scratch_alloc(struct bwd_scratch *s, size_t T, size_t B,
                             size_t I, size_t H, int need_cache)
{
    s->own_cache = need_cache ? malloc(ref_cache_len(T, B, H) * sizeof(double)) : NULL;
    s->dh = malloc(B * H * sizeof(double));
    s->dc = malloc(B * H * sizeof(double));
    s->dc_t = malloc(H * sizeof(double));
    s->da = malloc(4 * H * sizeof(double));
    s->gW = calloc(4 * H * (H + I), sizeof(double));
    s->gb = calloc(4 * H, sizeof(double));
    if ((need_cache && s->own_cache == NULL) || s->dh == NULL || s->dc == NULL ||
        s->dc_t == NULL || s->da == NULL || s->gW == NULL ||
        s->gb == NULL)
        return -1;
    return 0;
}

int ref_backward(size_t T, size_t B, size_t I, size_t H, const double *W,
                 const double *b, const double *x, const double *h0,
                 const double *c0, const double *cache, const double *dy,
                 const double *dhT, const double *dcT, double *dx,
                 double *dh0, double *dc0, double *dW, double *db)
{
    const size_t S = H + I;
    struct bwd_scratch s = { NULL, NULL, NULL, NULL, NULL, NULL, NULL };
    const double *all_gates, *all_c, *all_h;
    int status = -1;

    if (bwd_scratch_alloc(&s, T, B, I, H, cache == NULL) != 0)
        goto out;
    if (cache == NULL) {
        if (ref_forward(T, B, I, H, W, b, x, h0, c0, NULL, NULL, NULL, s.own_cache) != 0)
            goto out;
        cache = s.own_cache;
    }

    all_gates = cache;
    all_c = cache + cache_c_offset(T, B, H);
    all_h = cache + cache_h_offset(T, B, H);

    for (size_t k = 0; k < B * H; k++) {
        s.dh[k] = opt_at(dhT, k);
        s.dc[k] = opt_at(dcT, k);
    }

    for (size_t t = T; t-- > 0;) {
        for (size_t n = 0; n < B; n++) {
            const double *gates = all_gates + (t * B + n) * 4 * H;
            const double *c_cur = all_c + (t * B + n) * H;
            const double *h_prev = t > 0 ? all_h + ((t - 1) * B + n) * H
                                         : (h0 != NULL ? h0 + n * H : NULL);
            const double *c_prev = t > 0 ? all_c + ((t - 1) * B + n) * H
                                         : (c0 != NULL ? c0 + n * H : NULL);
            const double *xt = x + (t * B + n) * I;
            double *dh = s.dh + n * H;
            double *dc = s.dc + n * H;

            for (size_t j = 0; j < H; j++) {
                double gi = gates[j];
                double gf = gates[H + j];
                double gg = gates[2 * H + j];
                double go = gates[3 * H + j];
                double tc = tanh(c_cur[j]);

                /* dh_t = dy_t + (dh_t from step t+1) */
                double dht = dh[j] + opt_at(dy, (t * B + n) * H + j);
                /* dc_t = (dc_t from step t+1) + dh_t * o * (1 - tanh^2(c_t)) */
                double dct = dc[j] + dht * go * (1.0 - tc * tc);

                s.dc_t[j] = dct;
                /* da_i = dc_t * g * i(1-i) */
                s.da[j] = dct * gg * gi * (1.0 - gi);
                /* da_f = dc_t * c_{t-1} * f(1-f) */
                s.da[H + j] = dct * opt_at(c_prev, j) * gf * (1.0 - gf);
                /* da_g = dc_t * i * (1-g^2) */
                s.da[2 * H + j] = dct * gi * (1.0 - gg * gg);
                /* da_o = dh_t * tanh(c_t) * o(1-o) */
                s.da[3 * H + j] = dht * tc * go * (1.0 - go);
            }

            /* dW[r][k] += da_r s_k, db_r += da_r, s = [h_{t-1}, x_t] */
            for (size_t r = 0; r < 4 * H; r++) {
                double *grow = s.gW + r * S;
                for (size_t k = 0; k < H; k++)
                    grow[k] += s.da[r] * opt_at(h_prev, k);
                for (size_t k = 0; k < I; k++)
                    grow[H + k] += s.da[r] * xt[k];
                s.gb[r] += s.da[r];
            }

            /* [dh_{t-1}, dx_t]_k = sum_r da_r W[r][k] */
            for (size_t k = 0; k < S; k++) {
                double acc = 0.0;
                for (size_t r = 0; r < 4 * H; r++)
                    acc += s.da[r] * W[r * S + k];
                if (k < H)
                    dh[k] = acc;
                else if (dx != NULL)
                    dx[(t * B + n) * I + (k - H)] = acc;
            }
            /* dc_{t-1} = dc_t * f */
            for (size_t j = 0; j < H; j++)
                dc[j] = s.dc_t[j] * gates[H + j];
        }
    }

    for (size_t k = 0; k < B * H; k++) {
        if (dh0 != NULL)
            dh0[k] = s.dh[k];
        if (dc0 != NULL)
            dc0[k] = s.dc[k];
    }
    for (size_t k = 0; k < 4 * H * S; k++) {
        if (dW != NULL)
            dW[k] = s.gW[k];
    }
    for (size_t k = 0; k < 4 * H; k++) {
        if (db != NULL)
            db[k] = s.gb[k];
    }
    status = 0;
out:
    bwd_scratch_free(&s);
    return status;
}
