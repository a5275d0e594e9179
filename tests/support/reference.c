/*
 * Plain double-precision LSTM forward and backward (BPTT), see reference.h.
 *
 * Deliberately naive: one sample at a time, one dot product per gate row,
 * so that every line can be checked against the equations by eye. The
 * plain API (ref_forward, ref_backward) is the extended one with no
 * peepholes and no projection.
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

/* ---- cache layout ------------------------------------------------------- */

/*
 * Cache regions: gates [T][B][4H], c_t [T][B][H], h_t [T][B][R], then with a
 * projection m_t = o * tanh(c_t) [T][B][H]. Without a projection m_t is h_t.
 */
static size_t cache_c_offset(const struct ref_layer *L)
{
    return L->T * L->B * 4 * L->H;
}

static size_t cache_h_offset(const struct ref_layer *L)
{
    return L->T * L->B * 5 * L->H;
}

static size_t cache_m_offset(const struct ref_layer *L)
{
    return L->T * L->B * (5 * L->H + L->R);
}

size_t ref_cache_len_ex(const struct ref_layer *layer)
{
    return cache_m_offset(layer) + (layer->Whr != NULL ? layer->T * layer->B * layer->H : 0);
}

static int layer_ok(const struct ref_layer *L)
{
    return L->Whr != NULL || L->R == L->H;
}

/* ---- forward ------------------------------------------------------------ */

int ref_forward_ex(const struct ref_layer *layer, const double *x, const double *h0,
                   const double *c0, double *y, double *hT, double *cT, double *cache)
{
    const struct ref_layer *L = layer;
    const size_t T = L->T, B = L->B, I = L->I, H = L->H, R = L->R;
    const size_t S = R + I;
    const double *p = L->p;
    double *h = malloc((B * R > 0 ? B * R : 1) * sizeof *h);
    double *c = malloc(B * H * sizeof *c);
    double *gates = malloc(4 * H * sizeof *gates);
    double *m = malloc(H * sizeof *m);
    int status = -1;

    if (!layer_ok(L) || h == NULL || c == NULL || gates == NULL || m == NULL)
        goto out;

    for (size_t k = 0; k < B * R; k++)
        h[k] = opt_at(h0, k);
    for (size_t k = 0; k < B * H; k++)
        c[k] = opt_at(c0, k);

    for (size_t t = 0; t < T; t++) {
        for (size_t n = 0; n < B; n++) {
            double *hn = h + n * R;
            double *cn = c + n * H;
            const double *xt = x + (t * B + n) * I;

            /* a_r = b_r + sum_k W[r][k] s_k, s = [h_{t-1}, x_t] */
            for (size_t r = 0; r < 4 * H; r++) {
                const double *row = L->W + r * S;
                double a = L->b[r];
                for (size_t k = 0; k < R; k++)
                    a += row[k] * hn[k];
                for (size_t k = 0; k < I; k++)
                    a += row[R + k] * xt[k];
                gates[r] = a;
            }
            /* a_i += p_i * c_{t-1};  a_f += p_f * c_{t-1} */
            for (size_t j = 0; j < H; j++) {
                gates[j] += opt_at(p, j) * cn[j];
                gates[H + j] += opt_at(p, H + j) * cn[j];
            }
            /* i, f = sigmoid(a); g = tanh(a) */
            for (size_t j = 0; j < H; j++) {
                gates[j] = sigmoid(gates[j]);
                gates[H + j] = sigmoid(gates[H + j]);
                gates[2 * H + j] = tanh(gates[2 * H + j]);
            }
            /* c_t = f * c_{t-1} + i * g */
            for (size_t j = 0; j < H; j++)
                cn[j] = gates[H + j] * cn[j] + gates[j] * gates[2 * H + j];
            /* o = sigmoid(a_o + p_o * c_t);  m_t = o * tanh(c_t) */
            for (size_t j = 0; j < H; j++) {
                gates[3 * H + j] = sigmoid(gates[3 * H + j] + opt_at(p, 2 * H + j) * cn[j]);
                m[j] = gates[3 * H + j] * tanh(cn[j]);
            }
            /* h_t = W_hr m_t, or m_t */
            for (size_t r = 0; r < R; r++) {
                if (L->Whr != NULL) {
                    double acc = 0.0;
                    for (size_t j = 0; j < H; j++)
                        acc += L->Whr[r * H + j] * m[j];
                    hn[r] = acc;
                } else {
                    hn[r] = m[r];
                }
            }

            if (y != NULL) {
                for (size_t r = 0; r < R; r++)
                    y[(t * B + n) * R + r] = hn[r];
            }
            if (cache != NULL) {
                double *cg = cache + (t * B + n) * 4 * H;
                double *cc = cache + cache_c_offset(L) + (t * B + n) * H;
                double *ch = cache + cache_h_offset(L) + (t * B + n) * R;
                for (size_t r = 0; r < 4 * H; r++)
                    cg[r] = gates[r];
                for (size_t j = 0; j < H; j++)
                    cc[j] = cn[j];
                for (size_t r = 0; r < R; r++)
                    ch[r] = hn[r];
                if (L->Whr != NULL) {
                    double *cm = cache + cache_m_offset(L) + (t * B + n) * H;
                    for (size_t j = 0; j < H; j++)
                        cm[j] = m[j];
                }
            }
        }
    }

    for (size_t k = 0; k < B * R; k++) {
        if (hT != NULL)
            hT[k] = h[k];
    }
    for (size_t k = 0; k < B * H; k++) {
        if (cT != NULL)
            cT[k] = c[k];
    }
    status = 0;
out:
    free(h);
    free(c);
    free(gates);
    free(m);
    return status;
}

/* ---- backward ----------------------------------------------------------- */

/* Scratch of one backward call, allocated together and freed together. */
struct bwd_scratch {
    double *own_cache; /* forward recomputed here when the caller gave none */
    double *dh;        /* [B][R] dL/dh_t flowing back from step t+1 */
    double *dc;        /* [B][H] dL/dc_t flowing back from step t+1 */
    double *dm;        /* [H] dL/dm_t of one sample */
    double *dc_t;      /* [H] total dL/dc_t of one sample */
    double *da;        /* [4H] gate pre-activation gradients of one sample */
    double *gW;        /* [4H][R+I] dW accumulator */
    double *gb;        /* [4H] db accumulator */
    double *gp;        /* [3H] dp accumulator */
    double *gWhr;      /* [R][H] dWhr accumulator */
};

static void bwd_scratch_free(struct bwd_scratch *s)
{
    free(s->own_cache);
    free(s->dh);
    free(s->dc);
    free(s->dm);
    free(s->dc_t);
    free(s->da);
    free(s->gW);
    free(s->gb);
    free(s->gp);
    free(s->gWhr);
}

static int bwd_scratch_alloc(struct bwd_scratch *s, const struct ref_layer *L, int need_cache)
{
    const size_t B = L->B, H = L->H, R = L->R;

    s->own_cache = need_cache ? malloc(ref_cache_len_ex(L) * sizeof(double)) : NULL;
    s->dh = malloc(B * R * sizeof(double));
    s->dc = malloc(B * H * sizeof(double));
    s->dm = malloc(H * sizeof(double));
    s->dc_t = malloc(H * sizeof(double));
    s->da = malloc(4 * H * sizeof(double));
    s->gW = calloc(4 * H * (R + L->I), sizeof(double));
    s->gb = calloc(4 * H, sizeof(double));
    s->gp = calloc(3 * H, sizeof(double));
    s->gWhr = calloc(R * H, sizeof(double));
    if ((need_cache && s->own_cache == NULL) || s->dh == NULL || s->dc == NULL || s->dm == NULL ||
        s->dc_t == NULL || s->da == NULL || s->gW == NULL || s->gb == NULL || s->gp == NULL ||
        s->gWhr == NULL)
        return -1;
    return 0;
}

static void copy_out(double *dst, const double *src, size_t n)
{
    if (dst == NULL)
        return;
    for (size_t k = 0; k < n; k++)
        dst[k] = src[k];
}

int ref_backward_ex(const struct ref_layer *layer, const double *x, const double *h0,
                    const double *c0, const double *cache, const double *dy, const double *dhT,
                    const double *dcT, double *dx, double *dh0, double *dc0, double *dW, double *db,
                    double *dp, double *dWhr)
{
    const struct ref_layer *L = layer;
    const size_t T = L->T, B = L->B, I = L->I, H = L->H, R = L->R;
    const size_t S = R + I;
    const double *p = L->p;
    struct bwd_scratch s = {NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    const double *all_gates, *all_c, *all_h, *all_m;
    int status = -1;

    if (!layer_ok(L) || bwd_scratch_alloc(&s, L, cache == NULL) != 0)
        goto out;
    if (cache == NULL) {
        if (ref_forward_ex(L, x, h0, c0, NULL, NULL, NULL, s.own_cache) != 0)
            goto out;
        cache = s.own_cache;
    }

    all_gates = cache;
    all_c = cache + cache_c_offset(L);
    all_h = cache + cache_h_offset(L);
    all_m = L->Whr != NULL ? cache + cache_m_offset(L) : all_h;

    for (size_t k = 0; k < B * R; k++)
        s.dh[k] = opt_at(dhT, k);
    for (size_t k = 0; k < B * H; k++)
        s.dc[k] = opt_at(dcT, k);

    for (size_t t = T; t-- > 0;) {
        for (size_t n = 0; n < B; n++) {
            const double *gates = all_gates + (t * B + n) * 4 * H;
            const double *c_cur = all_c + (t * B + n) * H;
            const double *m_cur = all_m + (t * B + n) * H;
            const double *h_prev =
                t > 0 ? all_h + ((t - 1) * B + n) * R : (h0 != NULL ? h0 + n * R : NULL);
            const double *c_prev =
                t > 0 ? all_c + ((t - 1) * B + n) * H : (c0 != NULL ? c0 + n * H : NULL);
            const double *xt = x + (t * B + n) * I;
            double *dh = s.dh + n * R;
            double *dc = s.dc + n * H;

            /* dh_t = dy_t + (dh_t from step t+1) */
            for (size_t r = 0; r < R; r++)
                dh[r] += opt_at(dy, (t * B + n) * R + r);
            /* dm_t = W_hr^T dh_t, dWhr[r][j] += dh_t[r] m_t[j]; or dm_t = dh_t */
            for (size_t j = 0; j < H; j++) {
                if (L->Whr != NULL) {
                    double acc = 0.0;
                    for (size_t r = 0; r < R; r++)
                        acc += L->Whr[r * H + j] * dh[r];
                    s.dm[j] = acc;
                } else {
                    s.dm[j] = dh[j];
                }
            }
            if (L->Whr != NULL) {
                for (size_t r = 0; r < R; r++)
                    for (size_t j = 0; j < H; j++)
                        s.gWhr[r * H + j] += dh[r] * m_cur[j];
            }

            for (size_t j = 0; j < H; j++) {
                double gi = gates[j];
                double gf = gates[H + j];
                double gg = gates[2 * H + j];
                double go = gates[3 * H + j];
                double tc = tanh(c_cur[j]);
                double cp = opt_at(c_prev, j);

                /* da_o = dm_t * tanh(c_t) * o(1-o) */
                double dao = s.dm[j] * tc * go * (1.0 - go);
                /* dc_t = (dc_t from step t+1) + dm_t * o * (1 - tanh^2(c_t))
                 *        + da_o * p_o      (o sees c_t through the peephole) */
                double dct = dc[j] + s.dm[j] * go * (1.0 - tc * tc) + dao * opt_at(p, 2 * H + j);

                s.dc_t[j] = dct;
                /* da_i = dc_t * g * i(1-i) */
                s.da[j] = dct * gg * gi * (1.0 - gi);
                /* da_f = dc_t * c_{t-1} * f(1-f) */
                s.da[H + j] = dct * cp * gf * (1.0 - gf);
                /* da_g = dc_t * i * (1-g^2) */
                s.da[2 * H + j] = dct * gi * (1.0 - gg * gg);
                s.da[3 * H + j] = dao;
                /* dp_i += da_i c_{t-1}, dp_f += da_f c_{t-1}, dp_o += da_o c_t */
                s.gp[j] += s.da[j] * cp;
                s.gp[H + j] += s.da[H + j] * cp;
                s.gp[2 * H + j] += dao * c_cur[j];
            }

            /* dW[r][k] += da_r s_k, db_r += da_r, s = [h_{t-1}, x_t] */
            for (size_t r = 0; r < 4 * H; r++) {
                double *grow = s.gW + r * S;
                for (size_t k = 0; k < R; k++)
                    grow[k] += s.da[r] * opt_at(h_prev, k);
                for (size_t k = 0; k < I; k++)
                    grow[R + k] += s.da[r] * xt[k];
                s.gb[r] += s.da[r];
            }

            /* [dh_{t-1}, dx_t]_k = sum_r da_r W[r][k] */
            for (size_t k = 0; k < S; k++) {
                double acc = 0.0;
                for (size_t r = 0; r < 4 * H; r++)
                    acc += s.da[r] * L->W[r * S + k];
                if (k < R)
                    dh[k] = acc;
                else if (dx != NULL)
                    dx[(t * B + n) * I + (k - R)] = acc;
            }
            /* dc_{t-1} = dc_t * f + da_i p_i + da_f p_f */
            for (size_t j = 0; j < H; j++)
                dc[j] = s.dc_t[j] * gates[H + j] + s.da[j] * opt_at(p, j) +
                        s.da[H + j] * opt_at(p, H + j);
        }
    }

    copy_out(dh0, s.dh, B * R);
    copy_out(dc0, s.dc, B * H);
    copy_out(dW, s.gW, 4 * H * S);
    copy_out(db, s.gb, 4 * H);
    if (p != NULL)
        copy_out(dp, s.gp, 3 * H);
    if (L->Whr != NULL)
        copy_out(dWhr, s.gWhr, R * H);
    status = 0;
out:
    bwd_scratch_free(&s);
    return status;
}

/* ---- plain API: no peepholes, no projection ----------------------------- */

static struct ref_layer plain_layer(size_t T, size_t B, size_t I, size_t H, const double *W,
                                    const double *b)
{
    struct ref_layer L = {T, B, I, H, H, W, b, NULL, NULL};
    return L;
}

size_t ref_cache_len(size_t T, size_t B, size_t H)
{
    return T * B * 6 * H;
}

int ref_forward(size_t T, size_t B, size_t I, size_t H, const double *W, const double *b,
                const double *x, const double *h0, const double *c0, double *y, double *hT,
                double *cT, double *cache)
{
    const struct ref_layer L = plain_layer(T, B, I, H, W, b);
    return ref_forward_ex(&L, x, h0, c0, y, hT, cT, cache);
}

int ref_backward(size_t T, size_t B, size_t I, size_t H, const double *W, const double *b,
                 const double *x, const double *h0, const double *c0, const double *cache,
                 const double *dy, const double *dhT, const double *dcT, double *dx, double *dh0,
                 double *dc0, double *dW, double *db)
{
    const struct ref_layer L = plain_layer(T, B, I, H, W, b);
    return ref_backward_ex(&L, x, h0, c0, cache, dy, dhT, dcT, dx, dh0, dc0, dW, db, NULL, NULL);
}
