/*
 * Peephole connections (LSTM_PEEPHOLE).
 *
 * PyTorch has no peepholes, so the judge is the double-precision reference
 * (reference.c, ref_forward_ex/ref_backward_ex), itself checked against
 * finite differences. Networks are built from single-layer reference calls,
 * one sequence at a time: layer l reads layer l-1's y (both directions
 * concatenated), and the reverse direction is the forward reference run on
 * the sequence's own steps in reverse order, so variable lengths come for
 * free. The loss is L = sum(y * dy) + sum(hT * dhT) + sum(cT * dcT) for
 * fixed random dy, dhT, dcT.
 *
 *  1. The single-layer reference, with peepholes (and with peepholes and a
 *     projection), against central finite differences on every element of
 *     dW, db, dp, dWhr, dx, dh0, dc0; and the composed network reference
 *     (2 layers, bidirectional, projection, variable lengths) the same way
 *     on every parameter and every element of x, h0 and c0.
 *  2. The library against the reference evaluated on the same float-rounded
 *     values: y, hT, cT, dx, dh0, dc0 and every gradient tensor of every
 *     layer and direction (W, b, W_hr, p); again dh0, dc0 and the gradients
 *     from a second backward with dx = NULL; then inference against the
 *     training forward, bit for bit, on a fresh workspace and on one holding
 *     a training forward.
 *  3. A peephole model with p = 0 against the same model without
 *     LSTM_PEEPHOLE (same W, b, W_hr): y, hT, cT (inference and training),
 *     dx, dh0, dc0 and dW, db, dWhr identical bit for bit.
 *  4. Bad input: lstm_model_tensor(LSTM_TENSOR_PEEPHOLE) without peepholes.
 *
 * Error measures and bounds:
 *  - finite differences: fourth-order central differences with step
 *    FD_STEP = 1e-3 (see numeric_grad()), error
 *    |analytic - numeric| / max(|analytic|, |numeric|, FD_FLOOR) <= FD_TOL:
 *    1e-8 relative, or 1e-10 absolute for gradients below 1e-2. Measured
 *    worst: 8.4e-11 (the quotient's rounding noise, about 1e-16 |L| / h,
 *    and its h^4 truncation error are both near 1e-12 absolute here).
 *    Scaling any one gradient term (dp_i, da_o, dWhr) by 1 + 1e-7 fails it.
 *  - library vs reference: |lib - ref| / S <= LIB_TOL = 1e-6, where S is the
 *    largest reference magnitude of the tensor's group: the forward outputs
 *    (y, hT, cT); the input gradients (dx, dh0, dc0); the parameter
 *    gradients of one layer and direction (dW, db, dWhr, dp). Measured worst
 *    with these seeds and OpenBLAS: 3.7e-7 (db, L1 T30 B4 I17 H33); dp alone
 *    7.7e-8. Over 60 other seed sets: 6.3e-7.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lstm/lstm.h"
#include "reference.h"
#include "test_rng.h"

#define FD_STEP 1e-3
#define FD_TOL 1e-8
#define FD_FLOOR 1e-2
#define LIB_TOL 1e-6

/* Scale of the random peephole weights: large enough to matter. */
#define PEEPHOLE_SCALE 0.5

#define MAX_REPORTED 10

/* Worst errors over the whole run, printed by the group teardown. */
static double worst_fd;
static double worst_lib;
static char worst_fd_where[160];
static char worst_lib_where[160];

/* Uniform integer in [lo, hi]. */
static size_t rng_range(rng *r, size_t lo, size_t hi)
{
    return lo + (size_t)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

/* ---- small helpers ------------------------------------------------------ */

static void *xmalloc(size_t n)
{
    void *p = malloc(n > 0 ? n : 1);
    assert_non_null(p);
    return p;
}

static double *dalloc(size_t n)
{
    return xmalloc(n * sizeof(double));
}

static double *dzeros(size_t n)
{
    double *v = calloc(n > 0 ? n : 1, sizeof *v);
    assert_non_null(v);
    return v;
}

static float *falloc(size_t n)
{
    return xmalloc(n * sizeof(float));
}

static double max_abs(const double *v, size_t n)
{
    double m = 0.0;
    for (size_t k = 0; k < n; k++) {
        if (fabs(v[k]) > m)
            m = fabs(v[k]);
    }
    return m;
}

static double dot(const double *a, const double *b, size_t n)
{
    double acc = 0.0;
    for (size_t k = 0; k < n; k++)
        acc += a[k] * b[k];
    return acc;
}

static void fill_uniform(struct rng *r, double *v, size_t n, double scale)
{
    for (size_t k = 0; k < n; k++)
        v[k] = (double)(float)rng_double(r, -scale, scale);
}

/* ---- network shape and parameter layout ---------------------------------- */

struct net_shape {
    size_t layers, dirs; /* L, D */
    size_t I, H, P;      /* P = 0: no projection */
    int peephole;
    int batch_first;
};

static size_t net_R(const struct net_shape *net)
{
    return net->P > 0 ? net->P : net->H;
}

/* Offsets of one block's tensors, computed from the layout in lstm/model.h. */
struct block {
    size_t in_size; /* I_l */
    size_t W, b, Whr, p;
};

struct layout {
    struct block *blocks; /* [L D] */
    size_t count;         /* total parameters */
};

static void layout_init(const struct net_shape *net, struct layout *lay)
{
    const size_t H = net->H, R = net_R(net), D = net->dirs;
    size_t next = 0;

    lay->blocks = xmalloc(net->layers * D * sizeof *lay->blocks);
    for (size_t l = 0; l < net->layers; l++) {
        for (size_t d = 0; d < D; d++) {
            struct block *bk = &lay->blocks[l * D + d];
            bk->in_size = l == 0 ? net->I : D * R;
            bk->W = next;
            next += 4 * H * (R + bk->in_size);
            bk->b = next;
            next += 4 * H;
            bk->Whr = next;
            next += net->P > 0 ? R * H : 0;
            bk->p = next;
            next += net->peephole ? 3 * H : 0;
        }
    }
    lay->count = next;
}

/* ---- one problem: network, batch, inputs and loss seeds ------------------ */

struct problem {
    struct net_shape net;
    size_t T, B;
    size_t *lengths; /* B lengths, all T when the sequences are not ragged */
    int ragged;      /* pass lengths to the library */
    int null_states; /* h0, c0, dhT, dcT are NULL (zeros) */
    struct layout lay;
    size_t nx, ny, nh, nc;
    double *params;         /* float-exact, library layout */
    double *x, *h0, *c0;    /* time-major x [T][B][I]; states [L D][B][.] */
    double *dy, *dhT, *dcT; /* time-major dy [T][B][D R] */
};

struct problem_spec {
    size_t layers, dirs, T, B, I, H, P;
    int batch_first, ragged, null_states;
};

static void problem_init(struct problem *pb, const struct problem_spec *sp, uint64_t seed)
{
    struct rng r = {seed};
    const double wscale = 1.0 / sqrt((double)sp->H);

    memset(pb, 0, sizeof *pb);
    pb->net = (struct net_shape){sp->layers, sp->dirs, sp->I, sp->H, sp->P, 1, sp->batch_first};
    pb->T = sp->T;
    pb->B = sp->B;
    pb->ragged = sp->ragged;
    pb->null_states = sp->null_states;
    layout_init(&pb->net, &pb->lay);

    const size_t R = net_R(&pb->net), LD = sp->layers * sp->dirs;
    pb->nx = sp->T * sp->B * sp->I;
    pb->ny = sp->T * sp->B * sp->dirs * R;
    pb->nh = LD * sp->B * R;
    pb->nc = LD * sp->B * sp->H;

    pb->lengths = xmalloc(sp->B * sizeof *pb->lengths);
    for (size_t n = 0; n < sp->B; n++)
        pb->lengths[n] = sp->ragged ? rng_range(&r, 1, sp->T) : sp->T;
    if (sp->ragged) {
        /* Some sequence runs to T, another (when there is one) stops at 1. */
        pb->lengths[sp->B / 2] = sp->T;
        if (sp->B > 1)
            pb->lengths[sp->B - 1] = 1;
    }

    pb->params = dalloc(pb->lay.count);
    for (size_t k = 0; k < LD; k++) {
        const struct block *bk = &pb->lay.blocks[k];
        fill_uniform(&r, pb->params + bk->W, 4 * sp->H * (R + bk->in_size), wscale);
        fill_uniform(&r, pb->params + bk->b, 4 * sp->H, wscale);
        if (sp->P > 0)
            fill_uniform(&r, pb->params + bk->Whr, R * sp->H, wscale);
        fill_uniform(&r, pb->params + bk->p, 3 * sp->H, PEEPHOLE_SCALE);
    }
    /* Padding of x and dy is random too: the library must not read it. */
    pb->x = dalloc(pb->nx);
    fill_uniform(&r, pb->x, pb->nx, 1.0);
    pb->dy = dalloc(pb->ny);
    fill_uniform(&r, pb->dy, pb->ny, 1.0);
    if (!sp->null_states) {
        pb->h0 = dalloc(pb->nh);
        pb->c0 = dalloc(pb->nc);
        pb->dhT = dalloc(pb->nh);
        pb->dcT = dalloc(pb->nc);
        fill_uniform(&r, pb->h0, pb->nh, 1.0);
        fill_uniform(&r, pb->c0, pb->nc, 1.0);
        fill_uniform(&r, pb->dhT, pb->nh, 1.0);
        fill_uniform(&r, pb->dcT, pb->nc, 1.0);
    }
}

static void problem_free(struct problem *pb)
{
    free(pb->lay.blocks);
    free(pb->lengths);
    free(pb->params);
    free(pb->x);
    free(pb->h0);
    free(pb->c0);
    free(pb->dy);
    free(pb->dhT);
    free(pb->dcT);
    memset(pb, 0, sizeof *pb);
}

static void describe(const struct problem *pb, char *buf, size_t size)
{
    snprintf(buf, size, "L%zu D%zu T%zu B%zu I%zu H%zu P%zu%s%s%s", pb->net.layers, pb->net.dirs,
             pb->T, pb->B, pb->net.I, pb->net.H, pb->net.P, pb->ragged ? " ragged" : "",
             pb->net.batch_first ? " batch-first" : "", pb->null_states ? " null-states" : "");
}

/* ---- network reference: chained single-layer reference calls ------------- */

struct net_result {
    double *y, *hT, *cT;            /* time-major y, zero in the padding */
    double *dx, *dh0, *dc0, *grads; /* NULL when only the forward ran */
};

static void net_result_free(struct net_result *res)
{
    free(res->y);
    free(res->hT);
    free(res->cT);
    free(res->dx);
    free(res->dh0);
    free(res->dc0);
    free(res->grads);
    memset(res, 0, sizeof *res);
}

static struct ref_layer block_layer(const struct problem *pb, size_t k, size_t steps)
{
    const struct block *bk = &pb->lay.blocks[k];
    struct ref_layer layer = {
        steps,
        1,
        bk->in_size,
        pb->net.H,
        net_R(&pb->net),
        pb->params + bk->W,
        pb->params + bk->b,
        pb->net.peephole ? pb->params + bk->p : NULL,
        pb->net.P > 0 ? pb->params + bk->Whr : NULL,
    };
    return layer;
}

/* Step of the per-direction sequence that holds network step t. */
static size_t dir_step(size_t d, size_t steps, size_t t)
{
    return d == 0 ? t : steps - 1 - t;
}

static void add_into(double *dst, const double *src, size_t n)
{
    for (size_t k = 0; k < n; k++)
        dst[k] += src[k];
}

/*
 * Backward of one sample n through every layer. seq_in[k] and cache[k] are
 * block k's input sequence (already in its own time order) and forward
 * cache; top is the output of the last layer, [steps][D R].
 */
static void net_backward_sample(const struct problem *pb, size_t n, size_t steps,
                                double *const *seq_in, double *const *cache, struct net_result *res)
{
    const size_t L = pb->net.layers, D = pb->net.dirs, H = pb->net.H, R = net_R(&pb->net);
    const size_t B = pb->B;
    double *dout = dalloc(steps * D * R);

    for (size_t t = 0; t < steps; t++)
        memcpy(dout + t * D * R, pb->dy + (t * B + n) * D * R, D * R * sizeof *dout);

    for (size_t l = L; l-- > 0;) {
        const size_t Il = pb->lay.blocks[l * D].in_size;
        double *din = dzeros(steps * Il);
        for (size_t d = 0; d < D; d++) {
            const size_t k = l * D + d;
            const struct block *bk = &pb->lay.blocks[k];
            const struct ref_layer layer = block_layer(pb, k, steps);
            const size_t nW = 4 * H * (R + Il);
            double *dyd = dalloc(steps * R);
            double *dxd = dalloc(steps * Il);
            double *dW = dalloc(nW), *db = dalloc(4 * H);
            double *dp = dalloc(3 * H), *dWhr = dalloc(R * H);

            for (size_t t = 0; t < steps; t++)
                memcpy(dyd + dir_step(d, steps, t) * R, dout + t * D * R + d * R, R * sizeof *dyd);
            assert_int_equal(ref_backward_ex(&layer, seq_in[k],
                                             pb->h0 ? pb->h0 + (k * B + n) * R : NULL,
                                             pb->c0 ? pb->c0 + (k * B + n) * H : NULL, cache[k],
                                             dyd, pb->dhT ? pb->dhT + (k * B + n) * R : NULL,
                                             pb->dcT ? pb->dcT + (k * B + n) * H : NULL, dxd,
                                             res->dh0 + (k * B + n) * R, res->dc0 + (k * B + n) * H,
                                             dW, db, dp, dWhr),
                             0);
            add_into(res->grads + bk->W, dW, nW);
            add_into(res->grads + bk->b, db, 4 * H);
            if (pb->net.P > 0)
                add_into(res->grads + bk->Whr, dWhr, R * H);
            if (pb->net.peephole)
                add_into(res->grads + bk->p, dp, 3 * H);
            for (size_t t = 0; t < steps; t++)
                add_into(din + t * Il, dxd + dir_step(d, steps, t) * Il, Il);
            free(dWhr);
            free(dp);
            free(db);
            free(dW);
            free(dxd);
            free(dyd);
        }
        free(dout);
        dout = din;
    }
    for (size_t t = 0; t < steps; t++)
        memcpy(res->dx + (t * B + n) * pb->net.I, dout + t * pb->net.I, pb->net.I * sizeof *dout);
    free(dout);
}

/* Forward (and with backward, BPTT) of the whole network on problem pb. */
static void net_reference(const struct problem *pb, int backward, struct net_result *res)
{
    const size_t L = pb->net.layers, D = pb->net.dirs, H = pb->net.H, R = net_R(&pb->net);
    const size_t B = pb->B, I = pb->net.I, LD = L * D;

    res->y = dzeros(pb->ny);
    res->hT = dzeros(pb->nh);
    res->cT = dzeros(pb->nc);
    if (backward) {
        res->dx = dzeros(pb->nx);
        res->dh0 = dzeros(pb->nh);
        res->dc0 = dzeros(pb->nc);
        res->grads = dzeros(pb->lay.count);
    }

    double **seq_in = xmalloc(LD * sizeof *seq_in);
    double **cache = xmalloc(LD * sizeof *cache);
    for (size_t n = 0; n < B; n++) {
        const size_t steps = pb->lengths[n];
        double *in = dalloc(steps * I);
        for (size_t t = 0; t < steps; t++)
            memcpy(in + t * I, pb->x + (t * B + n) * I, I * sizeof *in);

        for (size_t l = 0; l < L; l++) {
            const size_t Il = pb->lay.blocks[l * D].in_size;
            double *out = dalloc(steps * D * R);
            for (size_t d = 0; d < D; d++) {
                const size_t k = l * D + d;
                const struct ref_layer layer = block_layer(pb, k, steps);
                double *yd = dalloc(steps * R);

                seq_in[k] = dalloc(steps * Il);
                for (size_t t = 0; t < steps; t++)
                    memcpy(seq_in[k] + dir_step(d, steps, t) * Il, in + t * Il, Il * sizeof *in);
                cache[k] = dalloc(ref_cache_len_ex(&layer));
                assert_int_equal(
                    ref_forward_ex(&layer, seq_in[k], pb->h0 ? pb->h0 + (k * B + n) * R : NULL,
                                   pb->c0 ? pb->c0 + (k * B + n) * H : NULL, yd,
                                   res->hT + (k * B + n) * R, res->cT + (k * B + n) * H, cache[k]),
                    0);
                for (size_t t = 0; t < steps; t++)
                    memcpy(out + t * D * R + d * R, yd + dir_step(d, steps, t) * R, R * sizeof *yd);
                free(yd);
            }
            free(in);
            in = out;
        }
        for (size_t t = 0; t < steps; t++)
            memcpy(res->y + (t * B + n) * D * R, in + t * D * R, D * R * sizeof *in);
        free(in);

        if (backward)
            net_backward_sample(pb, n, steps, seq_in, cache, res);
        for (size_t k = 0; k < LD; k++) {
            free(seq_in[k]);
            free(cache[k]);
        }
    }
    free(cache);
    free(seq_in);
}

/* The loss, with y's padding (zero in the reference) contributing nothing. */
static double net_loss(const struct problem *pb)
{
    struct net_result res = {0};
    net_reference(pb, 0, &res);
    double loss = dot(res.y, pb->dy, pb->ny);
    if (pb->dhT != NULL)
        loss += dot(res.hT, pb->dhT, pb->nh) + dot(res.cT, pb->dcT, pb->nc);
    net_result_free(&res);
    return loss;
}

/* ---- comparison --------------------------------------------------------- */

/*
 * |got - expect| / max(|got|, |expect|, floor) <= tol element by element.
 * Prints each mismatch (up to MAX_REPORTED) and one summary line; updates
 * the run's worst error. Returns the number of mismatches; NaN counts.
 */
static size_t compare(const char *what, const char *problem, const char *tensor,
                      const double *expect, const double *got, size_t n, double floor_, double tol,
                      double *worst_run, char *worst_run_where)
{
    size_t bad = 0, worst_at = 0;
    double worst = 0.0;

    for (size_t k = 0; k < n; k++) {
        double denom = fmax(fmax(fabs(got[k]), fabs(expect[k])), floor_);
        double err = fabs(got[k] - expect[k]) / denom;
        if (!(err <= tol)) {
            if (bad < MAX_REPORTED)
                print_error("%s [%s] %s[%zu]: expected %.17g, got %.17g, error %.3g > %.3g\n", what,
                            problem, tensor, k, expect[k], got[k], err, tol);
            bad++;
        }
        if (!(err <= worst)) {
            worst = err;
            worst_at = k;
        }
    }
    print_message("%s [%s] %-16s worst error %.3g at [%zu]%s\n", what, problem, tensor, worst,
                  worst_at, bad ? " FAILED" : "");
    if (!(worst <= *worst_run)) {
        *worst_run = worst;
        snprintf(worst_run_where, 160, "%s %s[%zu]", problem, tensor, worst_at);
    }
    return bad;
}

/* ---- 1. references vs finite differences --------------------------------- */

/* Loss of the single-layer reference: L = y.dy + hT.dhT + cT.dcT. */
struct layer_problem {
    struct ref_layer layer;
    double *W, *b, *p, *Whr, *x, *h0, *c0, *dy, *dhT, *dcT;
    double *y, *hT, *cT;
    size_t nW, nx, ny, nh, nc;
};

static double layer_loss(struct layer_problem *lp)
{
    assert_int_equal(ref_forward_ex(&lp->layer, lp->x, lp->h0, lp->c0, lp->y, lp->hT, lp->cT, NULL),
                     0);
    return dot(lp->y, lp->dy, lp->ny) + dot(lp->hT, lp->dhT, lp->nh) + dot(lp->cT, lp->dcT, lp->nc);
}

/*
 * Fourth-order central differences of loss(ctx) with respect to every
 * element of v:
 *     g = (8 (L(v+h) - L(v-h)) - (L(v+2h) - L(v-2h))) / (12 h).
 * Its truncation error is O(h^4), so a step far larger than the O(h^2)
 * quotient allows keeps the rounding noise (about eps |L| / h) small.
 */
static void numeric_grad(double (*loss)(void *), void *ctx, double *v, size_t n, double *out)
{
    for (size_t k = 0; k < n; k++) {
        const double saved = v[k];
        double l_p1, l_m1, l_p2, l_m2;

        v[k] = saved + FD_STEP;
        l_p1 = loss(ctx);
        v[k] = saved - FD_STEP;
        l_m1 = loss(ctx);
        v[k] = saved + 2.0 * FD_STEP;
        l_p2 = loss(ctx);
        v[k] = saved - 2.0 * FD_STEP;
        l_m2 = loss(ctx);
        v[k] = saved;
        out[k] = (8.0 * (l_p1 - l_m1) - (l_p2 - l_m2)) / (12.0 * FD_STEP);
    }
}

static double layer_loss_cb(void *ctx)
{
    return layer_loss(ctx);
}

static double net_loss_cb(void *ctx)
{
    return net_loss(ctx);
}

static size_t fd_compare(void *ctx, double (*loss)(void *), const char *problem, const char *tensor,
                         double *v, size_t n, const double *analytic)
{
    double *num = dalloc(n);
    numeric_grad(loss, ctx, v, n, num);
    size_t bad = compare("reference vs finite differences", problem, tensor, num, analytic, n,
                         FD_FLOOR, FD_TOL, &worst_fd, worst_fd_where);
    free(num);
    return bad;
}

static void check_layer_fd(size_t T, size_t B, size_t I, size_t H, size_t P, uint64_t seed)
{
    struct rng r = {seed};
    struct layer_problem lp;
    const size_t R = P > 0 ? P : H;
    char name[96];
    size_t bad = 0;

    snprintf(name, sizeof name, "layer T%zu B%zu I%zu H%zu P%zu", T, B, I, H, P);
    memset(&lp, 0, sizeof lp);
    lp.nW = 4 * H * (R + I);
    lp.nx = T * B * I;
    lp.ny = T * B * R;
    lp.nh = B * R;
    lp.nc = B * H;
    lp.W = dalloc(lp.nW);
    lp.b = dalloc(4 * H);
    lp.p = dalloc(3 * H);
    lp.Whr = P > 0 ? dalloc(R * H) : NULL;
    lp.x = dalloc(lp.nx);
    lp.h0 = dalloc(lp.nh);
    lp.c0 = dalloc(lp.nc);
    lp.dy = dalloc(lp.ny);
    lp.dhT = dalloc(lp.nh);
    lp.dcT = dalloc(lp.nc);
    lp.y = dalloc(lp.ny);
    lp.hT = dalloc(lp.nh);
    lp.cT = dalloc(lp.nc);
    fill_uniform(&r, lp.W, lp.nW, 1.0 / sqrt((double)H));
    fill_uniform(&r, lp.b, 4 * H, 1.0 / sqrt((double)H));
    fill_uniform(&r, lp.p, 3 * H, PEEPHOLE_SCALE);
    if (P > 0)
        fill_uniform(&r, lp.Whr, R * H, 1.0 / sqrt((double)H));
    fill_uniform(&r, lp.x, lp.nx, 1.0);
    fill_uniform(&r, lp.h0, lp.nh, 1.0);
    fill_uniform(&r, lp.c0, lp.nc, 1.0);
    fill_uniform(&r, lp.dy, lp.ny, 1.0);
    fill_uniform(&r, lp.dhT, lp.nh, 1.0);
    fill_uniform(&r, lp.dcT, lp.nc, 1.0);
    lp.layer = (struct ref_layer){T, B, I, H, R, lp.W, lp.b, lp.p, lp.Whr};

    double *dx = dalloc(lp.nx), *dh0 = dalloc(lp.nh), *dc0 = dalloc(lp.nc);
    double *dW = dalloc(lp.nW), *db = dalloc(4 * H), *dp = dalloc(3 * H);
    double *dWhr = dalloc(R * H);
    double *cache = dalloc(ref_cache_len_ex(&lp.layer));

    assert_int_equal(ref_forward_ex(&lp.layer, lp.x, lp.h0, lp.c0, NULL, NULL, NULL, cache), 0);
    assert_int_equal(ref_backward_ex(&lp.layer, lp.x, lp.h0, lp.c0, cache, lp.dy, lp.dhT, lp.dcT,
                                     dx, dh0, dc0, dW, db, dp, dWhr),
                     0);

    bad += fd_compare(&lp, layer_loss_cb, name, "dx", lp.x, lp.nx, dx);
    bad += fd_compare(&lp, layer_loss_cb, name, "dh0", lp.h0, lp.nh, dh0);
    bad += fd_compare(&lp, layer_loss_cb, name, "dc0", lp.c0, lp.nc, dc0);
    bad += fd_compare(&lp, layer_loss_cb, name, "dW", lp.W, lp.nW, dW);
    bad += fd_compare(&lp, layer_loss_cb, name, "db", lp.b, 4 * H, db);
    bad += fd_compare(&lp, layer_loss_cb, name, "dp", lp.p, 3 * H, dp);
    if (P > 0)
        bad += fd_compare(&lp, layer_loss_cb, name, "dWhr", lp.Whr, R * H, dWhr);

    /* Without a cache the backward recomputes the forward: same numbers. */
    double *dp2 = dalloc(3 * H);
    assert_int_equal(ref_backward_ex(&lp.layer, lp.x, lp.h0, lp.c0, NULL, lp.dy, lp.dhT, lp.dcT,
                                     NULL, NULL, NULL, NULL, NULL, dp2, NULL),
                     0);
    assert_memory_equal(dp, dp2, 3 * H * sizeof *dp);

    /* The peephole terms matter: without p the gradients differ. */
    lp.layer.p = NULL;
    double *dW_nop = dalloc(lp.nW);
    assert_int_equal(ref_backward_ex(&lp.layer, lp.x, lp.h0, lp.c0, NULL, lp.dy, lp.dhT, lp.dcT,
                                     NULL, NULL, NULL, dW_nop, NULL, NULL, NULL),
                     0);
    assert_true(memcmp(dW, dW_nop, lp.nW * sizeof *dW) != 0);

    free(dW_nop);
    free(dp2);
    free(cache);
    free(dWhr);
    free(dp);
    free(db);
    free(dW);
    free(dc0);
    free(dh0);
    free(dx);
    free(lp.cT);
    free(lp.hT);
    free(lp.y);
    free(lp.dcT);
    free(lp.dhT);
    free(lp.dy);
    free(lp.c0);
    free(lp.h0);
    free(lp.x);
    free(lp.Whr);
    free(lp.p);
    free(lp.b);
    free(lp.W);
    assert_int_equal(bad, 0);
}

static void test_reference_fd_layer_6_3_4_5(void **state)
{
    (void)state;
    check_layer_fd(6, 3, 4, 5, 0, 101);
}

static void test_reference_fd_layer_1_1_2_3(void **state)
{
    (void)state;
    check_layer_fd(1, 1, 2, 3, 0, 102);
}

static void test_reference_fd_layer_8_2_3_7(void **state)
{
    (void)state;
    check_layer_fd(8, 2, 3, 7, 0, 103);
}

static void test_reference_fd_layer_proj_5_2_3_4_2(void **state)
{
    (void)state;
    check_layer_fd(5, 2, 3, 4, 2, 104);
}

/* The composed network reference: chaining, reversal, concatenation, lengths. */
static void check_network_fd(const struct problem_spec *sp, uint64_t seed)
{
    struct problem pb;
    struct net_result res = {0};
    char name[128];
    size_t bad = 0;

    problem_init(&pb, sp, seed);
    describe(&pb, name, sizeof name);
    net_reference(&pb, 1, &res);

    bad += fd_compare(&pb, net_loss_cb, name, "dx", pb.x, pb.nx, res.dx);
    if (pb.h0 != NULL) {
        bad += fd_compare(&pb, net_loss_cb, name, "dh0", pb.h0, pb.nh, res.dh0);
        bad += fd_compare(&pb, net_loss_cb, name, "dc0", pb.c0, pb.nc, res.dc0);
    }
    bad += fd_compare(&pb, net_loss_cb, name, "dparams", pb.params, pb.lay.count, res.grads);

    net_result_free(&res);
    problem_free(&pb);
    assert_int_equal(bad, 0);
}

static void test_reference_fd_network_l2_bi_proj_ragged(void **state)
{
    (void)state;
    check_network_fd(&(struct problem_spec){2, 2, 4, 3, 3, 3, 2, 0, 1, 0}, 105);
}

static void test_reference_fd_network_l2_uni(void **state)
{
    (void)state;
    check_network_fd(&(struct problem_spec){2, 1, 5, 2, 3, 4, 0, 0, 0, 0}, 106);
}

/* ---- library side ------------------------------------------------------- */

static lstm_model *make_model(const struct net_shape *net, int peephole)
{
    lstm_config cfg;
    lstm_model *model = NULL;

    assert_int_equal(lstm_config_init(&cfg, sizeof cfg), LSTM_OK);
    cfg.input_size = net->I;
    cfg.hidden_size = net->H;
    cfg.num_layers = net->layers;
    cfg.proj_size = net->P;
    cfg.flags = (net->dirs == 2 ? LSTM_BIDIRECTIONAL : 0u) |
                (net->batch_first ? LSTM_BATCH_FIRST : 0u) | (peephole ? LSTM_PEEPHOLE : 0u);
    assert_int_equal(lstm_model_create(&cfg, &model), LSTM_OK);
    return model;
}

/*
 * Write the parameters of pb (laid out for a peephole model) into model
 * through lstm_model_params() and lstm_model_tensor(), checking every
 * tensor's documented offset and shape on the way. A model without
 * peepholes gets every tensor but p.
 */
static void set_model_params(lstm_model *model, const struct problem *pb, int peephole)
{
    const struct net_shape *net = &pb->net;
    const size_t H = net->H, R = net_R(net), D = net->dirs;
    float *data = NULL;
    size_t count = 0, ours = pb->lay.count;

    assert_int_equal(lstm_model_params(model, &data, &count), LSTM_OK);
    if (!peephole)
        ours -= net->layers * D * 3 * H;
    assert_int_equal(count, ours);
    assert_int_equal(lstm_model_param_count(model), ours);

    for (size_t k = 0; k < net->layers * D; k++) {
        const struct block *bk = &pb->lay.blocks[k];
        const size_t shift = peephole ? 0 : k * 3 * H; /* earlier blocks' missing p */
        const struct {
            lstm_tensor tensor;
            size_t src, rows, cols;
            int present;
        } tensors[] = {
            {LSTM_TENSOR_WEIGHT, bk->W, 4 * H, R + bk->in_size, 1},
            {LSTM_TENSOR_BIAS, bk->b, 4 * H, 1, 1},
            {LSTM_TENSOR_PROJECTION, bk->Whr, R, H, net->P > 0},
            {LSTM_TENSOR_PEEPHOLE, bk->p, 3, H, peephole},
        };
        for (size_t i = 0; i < sizeof tensors / sizeof tensors[0]; i++) {
            size_t offset = 0, rows = 0, cols = 0;
            lstm_status st =
                lstm_model_tensor(model, k / D, k % D, tensors[i].tensor, &offset, &rows, &cols);
            if (!tensors[i].present) {
                assert_int_equal(st, LSTM_E_ARG);
                continue;
            }
            assert_int_equal(st, LSTM_OK);
            assert_int_equal(offset, tensors[i].src - shift);
            assert_int_equal(rows, tensors[i].rows);
            assert_int_equal(cols, tensors[i].cols);
            for (size_t e = 0; e < rows * cols; e++)
                data[offset + e] = (float)pb->params[tensors[i].src + e];
        }
    }
}

/* Index of (step t, sample n, feature k) in the library's sequence layout. */
static size_t seq_index(const struct problem *pb, size_t width, size_t t, size_t n, size_t k)
{
    return pb->net.batch_first ? (n * pb->T + t) * width + k : (t * pb->B + n) * width + k;
}

static float *seq_to_lib(const struct problem *pb, const double *v, size_t width)
{
    float *f = falloc(pb->T * pb->B * width);
    for (size_t t = 0; t < pb->T; t++)
        for (size_t n = 0; n < pb->B; n++)
            for (size_t k = 0; k < width; k++)
                f[seq_index(pb, width, t, n, k)] = (float)v[(t * pb->B + n) * width + k];
    return f;
}

static double *seq_from_lib(const struct problem *pb, const float *f, size_t width)
{
    double *v = dalloc(pb->T * pb->B * width);
    for (size_t t = 0; t < pb->T; t++)
        for (size_t n = 0; n < pb->B; n++)
            for (size_t k = 0; k < width; k++)
                v[(t * pb->B + n) * width + k] = (double)f[seq_index(pb, width, t, n, k)];
    return v;
}

static float *vec_to_float(const double *v, size_t n)
{
    if (v == NULL)
        return NULL;
    float *f = falloc(n);
    for (size_t k = 0; k < n; k++)
        f[k] = (float)v[k];
    return f;
}

static double *vec_to_double(const float *f, size_t n)
{
    double *v = dalloc(n);
    for (size_t k = 0; k < n; k++)
        v[k] = (double)f[k];
    return v;
}

/* Library inputs in float, in the library's layout. */
struct lib_inputs {
    float *x, *h0, *c0, *dy, *dhT, *dcT;
    const size_t *lengths;
};

static void lib_inputs_init(struct lib_inputs *in, const struct problem *pb)
{
    const size_t R = net_R(&pb->net);
    in->x = seq_to_lib(pb, pb->x, pb->net.I);
    in->dy = seq_to_lib(pb, pb->dy, pb->net.dirs * R);
    in->h0 = vec_to_float(pb->h0, pb->nh);
    in->c0 = vec_to_float(pb->c0, pb->nc);
    in->dhT = vec_to_float(pb->dhT, pb->nh);
    in->dcT = vec_to_float(pb->dcT, pb->nc);
    in->lengths = pb->ragged ? pb->lengths : NULL;
}

static void lib_inputs_free(struct lib_inputs *in)
{
    free(in->x);
    free(in->h0);
    free(in->c0);
    free(in->dy);
    free(in->dhT);
    free(in->dcT);
}

/* Library outputs of one forward_train + backward, in the library's layout. */
struct lib_outputs {
    float *y, *hT, *cT, *dx, *dh0, *dc0, *grads;
};

static void lib_outputs_init(struct lib_outputs *o, const struct problem *pb, size_t count)
{
    o->y = falloc(pb->ny);
    o->hT = falloc(pb->nh);
    o->cT = falloc(pb->nc);
    o->dx = falloc(pb->nx);
    o->dh0 = falloc(pb->nh);
    o->dc0 = falloc(pb->nc);
    o->grads = falloc(count);
    /* Poison, so that anything left unwritten shows. */
    memset(o->y, 0xff, pb->ny * sizeof *o->y);
    memset(o->dx, 0xff, pb->nx * sizeof *o->dx);
}

static void lib_outputs_free(struct lib_outputs *o)
{
    free(o->y);
    free(o->hT);
    free(o->cT);
    free(o->dx);
    free(o->dh0);
    free(o->dc0);
    free(o->grads);
}

/* forward_train, zero_grads, backward (with or without dx), get_grads. */
static void lib_train_round(lstm_model *model, lstm_workspace *ws, const struct problem *pb,
                            const struct lib_inputs *in, int want_dx, struct lib_outputs *o)
{
    size_t count = lstm_model_param_count(model);
    assert_int_equal(lstm_model_forward_train(model, ws, pb->T, pb->B, in->lengths, in->x, in->h0,
                                              in->c0, o->y, o->hT, o->cT),
                     LSTM_OK);
    assert_int_equal(lstm_model_zero_grads(model), LSTM_OK);
    assert_int_equal(lstm_model_backward(model, ws, in->dy, in->dhT, in->dcT,
                                         want_dx ? o->dx : NULL, o->dh0, o->dc0),
                     LSTM_OK);
    assert_int_equal(lstm_model_get_grads(model, o->grads, count), LSTM_OK);
}

static size_t compare_lib(const char *problem, const char *tensor, const double *ref,
                          const double *lib, size_t n, double scale)
{
    return compare("library vs reference", problem, tensor, ref, lib, n, scale > 0.0 ? scale : 1.0,
                   LIB_TOL, &worst_lib, worst_lib_where);
}

/* Every parameter gradient tensor of every block, each block its own group. */
static size_t compare_grads(const struct problem *pb, const char *problem, const char *suffix,
                            const double *ref, const float *lib)
{
    const struct net_shape *net = &pb->net;
    const size_t H = net->H, R = net_R(net), D = net->dirs;
    double *libd = vec_to_double(lib, pb->lay.count);
    size_t bad = 0;

    for (size_t k = 0; k < net->layers * D; k++) {
        const struct block *bk = &pb->lay.blocks[k];
        const size_t nW = 4 * H * (R + bk->in_size);
        const size_t end = bk->p + 3 * H; /* the block's last tensor is p */
        const double scale = max_abs(ref + bk->W, end - bk->W);
        char name[64];

        snprintf(name, sizeof name, "dW[l%zu d%zu]%s", k / D, k % D, suffix);
        bad += compare_lib(problem, name, ref + bk->W, libd + bk->W, nW, scale);
        snprintf(name, sizeof name, "db[l%zu d%zu]%s", k / D, k % D, suffix);
        bad += compare_lib(problem, name, ref + bk->b, libd + bk->b, 4 * H, scale);
        if (net->P > 0) {
            snprintf(name, sizeof name, "dWhr[l%zu d%zu]%s", k / D, k % D, suffix);
            bad += compare_lib(problem, name, ref + bk->Whr, libd + bk->Whr, R * H, scale);
        }
        snprintf(name, sizeof name, "dp[l%zu d%zu]%s", k / D, k % D, suffix);
        bad += compare_lib(problem, name, ref + bk->p, libd + bk->p, 3 * H, scale);
    }
    free(libd);
    return bad;
}

static size_t compare_bits(const char *what, const char *problem, const char *tensor,
                           const float *expect, const float *got, size_t n)
{
    size_t bad = 0;
    for (size_t k = 0; k < n; k++) {
        if (memcmp(&expect[k], &got[k], sizeof got[k]) != 0) {
            if (bad < MAX_REPORTED)
                print_error("%s [%s] %s[%zu]: %.9g vs %.9g\n", what, problem, tensor, k,
                            (double)expect[k], (double)got[k]);
            bad++;
        }
    }
    return bad;
}

/* Inference equals the training forward bit for bit, on a fresh workspace
 * and on one that holds a training forward. */
static size_t check_inference(const lstm_model *model, const struct problem *pb,
                              const struct lib_inputs *in, const struct lib_outputs *train,
                              const char *problem)
{
    const char *what = "inference vs training forward";
    lstm_workspace *ws = NULL;
    float *y = falloc(pb->ny), *hT = falloc(pb->nh), *cT = falloc(pb->nc);
    size_t bad = 0;

    assert_int_equal(lstm_workspace_create(model, &ws), LSTM_OK);
    for (int trained = 0; trained <= 1; trained++) {
        if (trained)
            assert_int_equal(lstm_model_forward_train(model, ws, pb->T, pb->B, in->lengths, in->x,
                                                      in->h0, in->c0, NULL, NULL, NULL),
                             LSTM_OK);
        memset(y, 0xff, pb->ny * sizeof *y);
        assert_int_equal(lstm_model_forward(model, ws, pb->T, pb->B, in->lengths, in->x, in->h0,
                                            in->c0, y, hT, cT),
                         LSTM_OK);
        bad += compare_bits(what, problem, "y", train->y, y, pb->ny);
        bad += compare_bits(what, problem, "hT", train->hT, hT, pb->nh);
        bad += compare_bits(what, problem, "cT", train->cT, cT, pb->nc);
    }
    print_message("%s [%s] y, hT, cT: %s\n", what, problem, bad ? "DIFFER" : "bit-identical");
    lstm_workspace_destroy(ws);
    free(cT);
    free(hT);
    free(y);
    return bad;
}

static void check_library(const struct problem_spec *sp, uint64_t seed)
{
    struct problem pb;
    struct net_result ref = {0};
    struct lib_inputs in;
    struct lib_outputs full, nodx;
    lstm_workspace *ws = NULL;
    char name[128];
    size_t bad = 0;
    const size_t R = sp->P > 0 ? sp->P : sp->H;

    problem_init(&pb, sp, seed);
    describe(&pb, name, sizeof name);
    lstm_model *model = make_model(&pb.net, 1);
    set_model_params(model, &pb, 1);
    lib_inputs_init(&in, &pb);
    lib_outputs_init(&full, &pb, pb.lay.count);
    lib_outputs_init(&nodx, &pb, pb.lay.count);

    assert_int_equal(lstm_workspace_create(model, &ws), LSTM_OK);
    lib_train_round(model, ws, &pb, &in, 1, &full);
    lib_train_round(model, ws, &pb, &in, 0, &nodx);
    lstm_workspace_destroy(ws);

    net_reference(&pb, 1, &ref);

    double *y = seq_from_lib(&pb, full.y, pb.net.dirs * R);
    double *dx = seq_from_lib(&pb, full.dx, pb.net.I);
    double *hT = vec_to_double(full.hT, pb.nh), *cT = vec_to_double(full.cT, pb.nc);
    double *dh0 = vec_to_double(full.dh0, pb.nh), *dc0 = vec_to_double(full.dc0, pb.nc);
    double *dh0n = vec_to_double(nodx.dh0, pb.nh), *dc0n = vec_to_double(nodx.dc0, pb.nc);

    double out_scale =
        fmax(fmax(max_abs(ref.y, pb.ny), max_abs(ref.hT, pb.nh)), max_abs(ref.cT, pb.nc));
    double in_scale =
        fmax(fmax(max_abs(ref.dx, pb.nx), max_abs(ref.dh0, pb.nh)), max_abs(ref.dc0, pb.nc));

    bad += compare_lib(name, "y", ref.y, y, pb.ny, out_scale);
    bad += compare_lib(name, "hT", ref.hT, hT, pb.nh, out_scale);
    bad += compare_lib(name, "cT", ref.cT, cT, pb.nc, out_scale);
    bad += compare_lib(name, "dx", ref.dx, dx, pb.nx, in_scale);
    bad += compare_lib(name, "dh0", ref.dh0, dh0, pb.nh, in_scale);
    bad += compare_lib(name, "dc0", ref.dc0, dc0, pb.nc, in_scale);
    bad += compare_grads(&pb, name, "", ref.grads, full.grads);
    bad += compare_lib(name, "dh0 (dx=NULL)", ref.dh0, dh0n, pb.nh, in_scale);
    bad += compare_lib(name, "dc0 (dx=NULL)", ref.dc0, dc0n, pb.nc, in_scale);
    bad += compare_grads(&pb, name, " (dx=NULL)", ref.grads, nodx.grads);

    bad += check_inference(model, &pb, &in, &full, name);

    free(dc0n);
    free(dh0n);
    free(dc0);
    free(dh0);
    free(cT);
    free(hT);
    free(dx);
    free(y);
    net_result_free(&ref);
    lib_outputs_free(&nodx);
    lib_outputs_free(&full);
    lib_inputs_free(&in);
    lstm_model_destroy(model);
    problem_free(&pb);
    assert_int_equal(bad, 0);
}

/* Spec fields: layers, dirs, T, B, I, H, P, batch_first, ragged, null_states. */
#define LIB_TEST(fn, seed, ...) \
  static void fn(void **state) \
  { \
    (void)state; \
    check_library(&(struct problem_spec){__VA_ARGS__}, seed); \
  }

/* (a) one layer, unidirectional; B = 1 takes the matrix-vector path. */
LIB_TEST(test_lib_l1_uni_6_3_4_5, 201, 1, 1, 6, 3, 4, 5, 0, 0, 0, 0)
LIB_TEST(test_lib_l1_uni_t1_b1, 202, 1, 1, 1, 1, 2, 3, 0, 0, 0, 0)
LIB_TEST(test_lib_l1_uni_t1_b4, 203, 1, 1, 1, 4, 3, 5, 0, 0, 0, 0)
LIB_TEST(test_lib_l1_uni_8_2_3_7, 204, 1, 1, 8, 2, 3, 7, 0, 0, 0, 0)
LIB_TEST(test_lib_l1_uni_30_4_17_33, 205, 1, 1, 30, 4, 17, 33, 0, 0, 0, 0)
LIB_TEST(test_lib_l1_uni_b1_6_1_4_5, 206, 1, 1, 6, 1, 4, 5, 0, 0, 0, 0)
LIB_TEST(test_lib_l1_uni_b1_30_1_17_33, 207, 1, 1, 30, 1, 17, 33, 0, 0, 0, 0)
LIB_TEST(test_lib_l1_uni_null_states, 208, 1, 1, 8, 2, 3, 7, 0, 0, 0, 1)
LIB_TEST(test_lib_l1_uni_ragged, 209, 1, 1, 9, 5, 3, 6, 0, 0, 1, 0)
LIB_TEST(test_lib_l1_uni_batch_first, 210, 1, 1, 7, 3, 4, 5, 0, 1, 0, 0)
/* (b) two layers, unidirectional. */
LIB_TEST(test_lib_l2_uni_7_3_4_6, 211, 2, 1, 7, 3, 4, 6, 0, 0, 0, 0)
LIB_TEST(test_lib_l2_uni_b1, 212, 2, 1, 5, 1, 3, 4, 0, 0, 0, 0)
LIB_TEST(test_lib_l2_uni_t1, 213, 2, 1, 1, 3, 3, 4, 0, 0, 0, 0)
LIB_TEST(test_lib_l2_uni_ragged, 214, 2, 1, 9, 4, 5, 8, 0, 0, 1, 0)
LIB_TEST(test_lib_l2_uni_ragged_batch_first, 215, 2, 1, 6, 3, 4, 5, 0, 1, 1, 1)
LIB_TEST(test_lib_l3_uni_20_3_9_16, 216, 3, 1, 20, 3, 9, 16, 0, 0, 0, 0)
/* (c) bidirectional: equal lengths, then ragged and stacked. */
LIB_TEST(test_lib_l1_bi_6_3_4_5, 221, 1, 2, 6, 3, 4, 5, 0, 0, 0, 0)
LIB_TEST(test_lib_l1_bi_t1_b1, 222, 1, 2, 1, 1, 2, 3, 0, 0, 0, 0)
LIB_TEST(test_lib_l1_bi_b1_12_1_5_9, 223, 1, 2, 12, 1, 5, 9, 0, 0, 0, 0)
LIB_TEST(test_lib_l1_bi_20_2_9_16, 224, 1, 2, 20, 2, 9, 16, 0, 0, 0, 0)
LIB_TEST(test_lib_l1_bi_null_states_batch_first, 225, 1, 2, 5, 3, 4, 6, 0, 1, 0, 1)
LIB_TEST(test_lib_l1_bi_ragged, 226, 1, 2, 8, 4, 3, 5, 0, 0, 1, 0)
LIB_TEST(test_lib_l2_bi_6_3_4_5, 227, 2, 2, 6, 3, 4, 5, 0, 0, 0, 0)
LIB_TEST(test_lib_l2_bi_ragged_batch_first, 228, 2, 2, 7, 4, 3, 6, 0, 1, 1, 0)
/* (d) peepholes with a projection. */
LIB_TEST(test_lib_l1_uni_proj, 231, 1, 1, 6, 3, 4, 5, 2, 0, 0, 0)
LIB_TEST(test_lib_l1_uni_proj_b1, 232, 1, 1, 7, 1, 3, 6, 4, 0, 0, 0)
LIB_TEST(test_lib_l2_bi_proj, 233, 2, 2, 7, 2, 3, 6, 3, 0, 0, 0)
LIB_TEST(test_lib_l2_bi_proj_ragged_batch_first, 234, 2, 2, 8, 4, 5, 7, 2, 1, 1, 0)

/* ---- 3. p = 0 is the model without peepholes ----------------------------- */

static size_t compare_exact(const char *problem, const char *tensor, const float *a, const float *b,
                            size_t n)
{
    return compare_bits("peephole p=0 vs no peephole", problem, tensor, a, b, n);
}

static void check_zero_peephole(const struct problem_spec *sp, uint64_t seed)
{
    struct problem pb;
    struct lib_inputs in;
    struct lib_outputs with, without;
    lstm_workspace *ws_with = NULL, *ws_without = NULL;
    char name[128];
    size_t bad = 0;
    const size_t H = sp->H;

    problem_init(&pb, sp, seed);
    describe(&pb, name, sizeof name);
    for (size_t k = 0; k < sp->layers * sp->dirs; k++)
        memset(pb.params + pb.lay.blocks[k].p, 0, 3 * H * sizeof *pb.params);

    lstm_model *peep = make_model(&pb.net, 1);
    lstm_model *plain = make_model(&pb.net, 0);
    set_model_params(peep, &pb, 1);
    set_model_params(plain, &pb, 0);
    lib_inputs_init(&in, &pb);
    lib_outputs_init(&with, &pb, lstm_model_param_count(peep));
    lib_outputs_init(&without, &pb, lstm_model_param_count(plain));
    assert_int_equal(lstm_workspace_create(peep, &ws_with), LSTM_OK);
    assert_int_equal(lstm_workspace_create(plain, &ws_without), LSTM_OK);

    /* Inference. */
    assert_int_equal(lstm_model_forward(peep, ws_with, pb.T, pb.B, in.lengths, in.x, in.h0, in.c0,
                                        with.y, with.hT, with.cT),
                     LSTM_OK);
    assert_int_equal(lstm_model_forward(plain, ws_without, pb.T, pb.B, in.lengths, in.x, in.h0,
                                        in.c0, without.y, without.hT, without.cT),
                     LSTM_OK);
    bad += compare_exact(name, "y (inference)", with.y, without.y, pb.ny);
    bad += compare_exact(name, "hT (inference)", with.hT, without.hT, pb.nh);
    bad += compare_exact(name, "cT (inference)", with.cT, without.cT, pb.nc);

    /* Training forward and backward. */
    lib_train_round(peep, ws_with, &pb, &in, 1, &with);
    lib_train_round(plain, ws_without, &pb, &in, 1, &without);
    bad += compare_exact(name, "y", with.y, without.y, pb.ny);
    bad += compare_exact(name, "hT", with.hT, without.hT, pb.nh);
    bad += compare_exact(name, "cT", with.cT, without.cT, pb.nc);
    bad += compare_exact(name, "dx", with.dx, without.dx, pb.nx);
    bad += compare_exact(name, "dh0", with.dh0, without.dh0, pb.nh);
    bad += compare_exact(name, "dc0", with.dc0, without.dc0, pb.nc);
    for (size_t k = 0; k < sp->layers * sp->dirs; k++) {
        const struct block *bk = &pb.lay.blocks[k];
        const size_t shift = k * 3 * H;
        /* W, b and W_hr are contiguous in both layouts; p follows in peep's. */
        const size_t n = bk->p - bk->W;
        bad += compare_exact(name, "dW, db, dWhr", with.grads + bk->W,
                             without.grads + bk->W - shift, n);
    }
    print_message("peephole p=0 vs no peephole [%s]: %s\n", name, bad ? "DIFFER" : "bit-identical");

    lstm_workspace_destroy(ws_without);
    lstm_workspace_destroy(ws_with);
    lib_outputs_free(&without);
    lib_outputs_free(&with);
    lib_inputs_free(&in);
    lstm_model_destroy(plain);
    lstm_model_destroy(peep);
    problem_free(&pb);
    assert_int_equal(bad, 0);
}

static void test_zero_peephole_l1_uni(void **state)
{
    (void)state;
    check_zero_peephole(&(struct problem_spec){1, 1, 8, 3, 4, 6, 0, 0, 0, 0}, 301);
}

static void test_zero_peephole_l1_uni_b1(void **state)
{
    (void)state;
    check_zero_peephole(&(struct problem_spec){1, 1, 8, 1, 4, 6, 0, 0, 0, 0}, 302);
}

static void test_zero_peephole_l2_bi_proj_ragged(void **state)
{
    (void)state;
    check_zero_peephole(&(struct problem_spec){2, 2, 7, 4, 3, 6, 2, 1, 1, 0}, 303);
}

/* ---- 4. bad input ------------------------------------------------------- */

static void test_tensor_peephole_without_peepholes(void **state)
{
    (void)state;
    const struct net_shape shapes[] = {
        {1, 1, 3, 4, 0, 0, 0},
        {2, 2, 3, 4, 2, 0, 0},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        lstm_model *model = make_model(&shapes[s], 0);
        for (size_t l = 0; l < shapes[s].layers; l++) {
            for (size_t d = 0; d < shapes[s].dirs; d++) {
                size_t offset = 12345, rows = 678, cols = 910;
                assert_int_equal(
                    lstm_model_tensor(model, l, d, LSTM_TENSOR_PEEPHOLE, &offset, &rows, &cols),
                    LSTM_E_ARG);
                /* A failed call changes none of its outputs. */
                assert_int_equal(offset, 12345);
                assert_int_equal(rows, 678);
                assert_int_equal(cols, 910);
                assert_int_equal(
                    lstm_model_tensor(model, l, d, LSTM_TENSOR_PEEPHOLE, &offset, NULL, NULL),
                    LSTM_E_ARG);
                assert_int_equal(
                    lstm_model_tensor(model, l, d, LSTM_TENSOR_WEIGHT, &offset, NULL, NULL),
                    LSTM_OK);
            }
        }
        lstm_model_destroy(model);
    }
}

static void test_tensor_peephole_shape_and_bounds(void **state)
{
    (void)state;
    const struct net_shape net = {2, 1, 3, 4, 0, 1, 0};
    const struct net_shape bi = {2, 2, 3, 4, 2, 1, 0};
    lstm_model *model = make_model(&net, 1);
    lstm_model *plain = make_model(&net, 0);
    lstm_model *model_bi = make_model(&bi, 1);
    lstm_model *plain_bi = make_model(&bi, 0);
    lstm_config cfg;
    size_t offset = 0, rows = 0, cols = 0;

    assert_int_equal(lstm_model_tensor(model, 1, 0, LSTM_TENSOR_PEEPHOLE, &offset, &rows, &cols),
                     LSTM_OK);
    assert_int_equal(rows, 3);
    assert_int_equal(cols, 4);
    /* p is its block's last tensor; the second layer's block ends the buffer. */
    assert_int_equal(offset + 3 * 4, lstm_model_param_count(model));
    assert_int_equal(lstm_model_tensor(model, 0, 1, LSTM_TENSOR_PEEPHOLE, &offset, NULL, NULL),
                     LSTM_E_ARG);
    assert_int_equal(lstm_model_tensor(model, 2, 0, LSTM_TENSOR_PEEPHOLE, &offset, NULL, NULL),
                     LSTM_E_ARG);
    assert_int_equal(lstm_model_tensor(model, 0, 0, LSTM_TENSOR_PEEPHOLE, NULL, NULL, NULL),
                     LSTM_E_NULL);
    assert_int_equal(lstm_model_tensor(NULL, 0, 0, LSTM_TENSOR_PEEPHOLE, &offset, NULL, NULL),
                     LSTM_E_NULL);
    assert_int_equal(lstm_model_tensor(model, 0, 0, (lstm_tensor)4, &offset, NULL, NULL),
                     LSTM_E_ARG);

    /* 3H more parameters per layer and direction. */
    assert_int_equal(lstm_model_param_count(model) - lstm_model_param_count(plain), 2 * 3 * 4);
    assert_int_equal(lstm_model_param_count(model_bi) - lstm_model_param_count(plain_bi),
                     2 * 2 * 3 * 4);

    assert_int_equal(lstm_config_init(&cfg, sizeof cfg), LSTM_OK);
    assert_int_equal(lstm_model_get_config(model_bi, &cfg), LSTM_OK);
    assert_true((cfg.flags & LSTM_PEEPHOLE) != 0);
    assert_int_equal(lstm_model_get_config(plain_bi, &cfg), LSTM_OK);
    assert_true((cfg.flags & LSTM_PEEPHOLE) == 0);

    lstm_model_destroy(plain_bi);
    lstm_model_destroy(model_bi);
    lstm_model_destroy(plain);
    lstm_model_destroy(model);
}

static int print_worst(void **state)
{
    (void)state;
    print_message("worst reference vs finite differences: %.3g (%s), bound %.0e\n", worst_fd,
                  worst_fd_where, FD_TOL);
    print_message("worst library vs reference: %.3g (%s), bound %.0e\n", worst_lib, worst_lib_where,
                  LIB_TOL);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_fd_layer_6_3_4_5),
        cmocka_unit_test(test_reference_fd_layer_1_1_2_3),
        cmocka_unit_test(test_reference_fd_layer_8_2_3_7),
        cmocka_unit_test(test_reference_fd_layer_proj_5_2_3_4_2),
        cmocka_unit_test(test_reference_fd_network_l2_bi_proj_ragged),
        cmocka_unit_test(test_reference_fd_network_l2_uni),
        cmocka_unit_test(test_lib_l1_uni_6_3_4_5),
        cmocka_unit_test(test_lib_l1_uni_t1_b1),
        cmocka_unit_test(test_lib_l1_uni_t1_b4),
        cmocka_unit_test(test_lib_l1_uni_8_2_3_7),
        cmocka_unit_test(test_lib_l1_uni_30_4_17_33),
        cmocka_unit_test(test_lib_l1_uni_b1_6_1_4_5),
        cmocka_unit_test(test_lib_l1_uni_b1_30_1_17_33),
        cmocka_unit_test(test_lib_l1_uni_null_states),
        cmocka_unit_test(test_lib_l1_uni_ragged),
        cmocka_unit_test(test_lib_l1_uni_batch_first),
        cmocka_unit_test(test_lib_l2_uni_7_3_4_6),
        cmocka_unit_test(test_lib_l2_uni_b1),
        cmocka_unit_test(test_lib_l2_uni_t1),
        cmocka_unit_test(test_lib_l2_uni_ragged),
        cmocka_unit_test(test_lib_l2_uni_ragged_batch_first),
        cmocka_unit_test(test_lib_l3_uni_20_3_9_16),
        cmocka_unit_test(test_lib_l1_bi_6_3_4_5),
        cmocka_unit_test(test_lib_l1_bi_t1_b1),
        cmocka_unit_test(test_lib_l1_bi_b1_12_1_5_9),
        cmocka_unit_test(test_lib_l1_bi_20_2_9_16),
        cmocka_unit_test(test_lib_l1_bi_null_states_batch_first),
        cmocka_unit_test(test_lib_l1_bi_ragged),
        cmocka_unit_test(test_lib_l2_bi_6_3_4_5),
        cmocka_unit_test(test_lib_l2_bi_ragged_batch_first),
        cmocka_unit_test(test_lib_l1_uni_proj),
        cmocka_unit_test(test_lib_l1_uni_proj_b1),
        cmocka_unit_test(test_lib_l2_bi_proj),
        cmocka_unit_test(test_lib_l2_bi_proj_ragged_batch_first),
        cmocka_unit_test(test_zero_peephole_l1_uni),
        cmocka_unit_test(test_zero_peephole_l1_uni_b1),
        cmocka_unit_test(test_zero_peephole_l2_bi_proj_ragged),
        cmocka_unit_test(test_tensor_peephole_without_peepholes),
        cmocka_unit_test(test_tensor_peephole_shape_and_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, print_worst);
}
