/*
 * Gradient checks.
 *
 * The loss is L = sum(y * dy) + sum(hT * dhT) + sum(cT * dcT) for fixed
 * random dy, dhT, dcT, so the backward pass seeded with (dy, dhT, dcT)
 * returns exactly dL/d(x, h0, c0, W, b).
 *
 *  1. The double reference (reference.c) against central finite differences
 *     of its own forward, every element of every gradient.
 *  2. The library (float32) against the double reference evaluated on the
 *     same float-rounded values: y, hT, cT and dx, dh0, dc0, dW, db, and
 *     again dh0, dc0, dW, db from a backward with dx = NULL. Shapes with
 *     B = 1 take the library's matrix-vector path.
 *  3. The library's inference forward against its training forward, bit for
 *     bit, on a fresh workspace and on one that holds a training forward.
 *
 * Error measures and bounds:
 *  - finite differences: |analytic - numeric| / max(|analytic|, |numeric|,
 *    FD_FLOOR) <= FD_TOL, i.e. 1e-7 relative, or 1e-9 absolute for
 *    gradients below 1e-2. The floor keeps nearly zero gradients from
 *    turning the rounding noise of the difference quotient (about 3e-10
 *    absolute with a 1e-6 step) into a large relative error. Measured worst
 *    on these shapes: 4.2e-8. Scaling any one gradient term by 1 + 1e-7
 *    already fails the check.
 *  - library vs reference: |lib - ref| / S <= LIB_TOL, where S is the
 *    largest reference magnitude of the tensor's group (forward outputs,
 *    input gradients, parameter gradients; see check_library()). The
 *    float32 activations alone are off by up to 2.4e-7 absolute
 *    (src/activation.h), which sets the floor. Measured worst with the
 *    seeds below and OpenBLAS: 3.9e-7 (db, 30x4x17x33); over 60 other seed
 *    sets 7.2e-7 (cT, 1x1x2x3).
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

/* Central-difference step, applied to every input element in turn. */
#define FD_STEP 1e-6
/* Bound on the finite-difference error measure described above. */
#define FD_TOL 1e-7
#define FD_FLOOR 1e-2
/* Bound on the library's error relative to its group's largest value. */
#define LIB_TOL 1e-6

/* How many mismatches of one tensor are printed before the rest are only counted. */
#define MAX_REPORTED 10

struct shape {
    size_t T, B, I, H;
};

/* ---- one problem: inputs, loss seeds and scratch for the loss ----------- */

struct problem {
    struct shape s;
    size_t nW, nb, nx, ny, nstate;
    double *W, *b, *x, *h0, *c0; /* forward inputs */
    double *dy, *dhT, *dcT;      /* loss seeds */
    double *y, *hT, *cT;         /* scratch for evaluating the loss */
};

static void problem_free(struct problem *p)
{
    free(p->W);
    free(p->b);
    free(p->x);
    free(p->h0);
    free(p->c0);
    free(p->dy);
    free(p->dhT);
    free(p->dcT);
    free(p->y);
    free(p->hT);
    free(p->cT);
    memset(p, 0, sizeof *p);
}

static double *fill_uniform(struct rng *r, size_t n, double scale, int round_to_float)
{
    double *v = malloc(n * sizeof *v);
    assert_non_null(v);
    for (size_t k = 0; k < n; k++) {
        v[k] = rng_double(r, -scale, scale);
        if (round_to_float)
            v[k] = (double)(float)v[k];
    }
    return v;
}

/*
 * Random problem of the given shape. Weights follow PyTorch's scale
 * 1/sqrt(H) so that the gates are neither linear nor saturated; states and
 * inputs are O(1). With round_to_float every value is exactly a float.
 */
static void problem_init(struct problem *p, struct shape s, uint64_t seed, int round_to_float)
{
    struct rng r = {seed};
    double wscale = 1.0 / sqrt((double)s.H);

    memset(p, 0, sizeof *p);
    p->s = s;
    p->nW = 4 * s.H * (s.H + s.I);
    p->nb = 4 * s.H;
    p->nx = s.T * s.B * s.I;
    p->ny = s.T * s.B * s.H;
    p->nstate = s.B * s.H;
    p->W = fill_uniform(&r, p->nW, wscale, round_to_float);
    p->b = fill_uniform(&r, p->nb, wscale, round_to_float);
    p->x = fill_uniform(&r, p->nx, 1.0, round_to_float);
    p->h0 = fill_uniform(&r, p->nstate, 1.0, round_to_float);
    p->c0 = fill_uniform(&r, p->nstate, 1.0, round_to_float);
    p->dy = fill_uniform(&r, p->ny, 1.0, round_to_float);
    p->dhT = fill_uniform(&r, p->nstate, 1.0, round_to_float);
    p->dcT = fill_uniform(&r, p->nstate, 1.0, round_to_float);
    p->y = malloc(p->ny * sizeof *p->y);
    p->hT = malloc(p->nstate * sizeof *p->hT);
    p->cT = malloc(p->nstate * sizeof *p->cT);
    assert_non_null(p->y);
    assert_non_null(p->hT);
    assert_non_null(p->cT);
}

static double dot(const double *a, const double *b, size_t n)
{
    double acc = 0.0;
    for (size_t k = 0; k < n; k++)
        acc += a[k] * b[k];
    return acc;
}

/* L = sum(y * dy) + sum(hT * dhT) + sum(cT * dcT) of the reference forward. */
static double problem_loss(struct problem *p)
{
    const struct shape s = p->s;
    assert_int_equal(
        ref_forward(s.T, s.B, s.I, s.H, p->W, p->b, p->x, p->h0, p->c0, p->y, p->hT, p->cT, NULL),
        0);
    return dot(p->y, p->dy, p->ny) + dot(p->hT, p->dhT, p->nstate) + dot(p->cT, p->dcT, p->nstate);
}

/* ---- comparison --------------------------------------------------------- */

static double max_abs(const double *v, size_t n)
{
    double m = 0.0;
    for (size_t k = 0; k < n; k++) {
        if (fabs(v[k]) > m)
            m = fabs(v[k]);
    }
    return m;
}

/*
 * Compare got against expect element by element with the error measure
 * |got - expect| / max(|got|, |expect|, floor). Prints each mismatch (up to
 * MAX_REPORTED) with tensor name, index and both values, and one summary
 * line with the worst error. Returns the number of mismatches; NaN counts.
 */
static size_t compare(const char *what, const struct shape *s, const char *tensor,
                      const double *expect, const double *got, size_t n, double floor_, double tol,
                      const char *expect_name, const char *got_name)
{
    size_t bad = 0;
    size_t worst_at = 0;
    double worst = 0.0;

    for (size_t k = 0; k < n; k++) {
        double denom = fmax(fmax(fabs(got[k]), fabs(expect[k])), floor_);
        double err = fabs(got[k] - expect[k]) / denom;
        if (!(err <= tol)) {
            if (bad < MAX_REPORTED)
                print_error("%s (T,B,I,H)=(%zu,%zu,%zu,%zu) %s[%zu]: %s %.17g, %s %.17g, "
                            "error %.3g > %.3g\n",
                            what, s->T, s->B, s->I, s->H, tensor, k, expect_name, expect[k],
                            got_name, got[k], err, tol);
            bad++;
        }
        if (!(err <= worst)) {
            worst = err;
            worst_at = k;
        }
    }
    print_message("%s (T,B,I,H)=(%zu,%zu,%zu,%zu) %-13s worst error %.3g at [%zu]%s\n", what, s->T,
                  s->B, s->I, s->H, tensor, worst, worst_at, bad ? " FAILED" : "");
    return bad;
}

/* ---- 1. reference backward vs finite differences ------------------------ */

/*
 * Central differences of the loss with respect to every element of v.
 * The step actually taken is (v + h) - (v - h), not 2h, which removes the
 * representation error of the step from the quotient.
 */
static void numeric_grad(struct problem *p, double *v, size_t n, double *out)
{
    for (size_t k = 0; k < n; k++) {
        double saved = v[k];
        double plus = saved + FD_STEP;
        double minus = saved - FD_STEP;

        v[k] = plus;
        double loss_plus = problem_loss(p);
        v[k] = minus;
        double loss_minus = problem_loss(p);
        v[k] = saved;
        out[k] = (loss_plus - loss_minus) / (plus - minus);
    }
}

static void check_reference_fd(struct shape s, uint64_t seed)
{
    struct problem p;
    size_t bad = 0;

    problem_init(&p, s, seed, 0);

    double *dx = malloc(p.nx * sizeof *dx);
    double *dh0 = malloc(p.nstate * sizeof *dh0);
    double *dc0 = malloc(p.nstate * sizeof *dc0);
    double *dW = malloc(p.nW * sizeof *dW);
    double *db = malloc(p.nb * sizeof *db);
    double *cache = malloc(ref_cache_len(s.T, s.B, s.H) * sizeof *cache);
    double *num = malloc(p.nW * sizeof *num); /* W is the largest tensor here */
    assert_non_null(dx);
    assert_non_null(dh0);
    assert_non_null(dc0);
    assert_non_null(dW);
    assert_non_null(db);
    assert_non_null(cache);
    assert_non_null(num);
    assert_true(p.nW >= p.nx && p.nW >= p.nstate);

    assert_int_equal(
        ref_forward(s.T, s.B, s.I, s.H, p.W, p.b, p.x, p.h0, p.c0, NULL, NULL, NULL, cache), 0);
    assert_int_equal(ref_backward(s.T, s.B, s.I, s.H, p.W, p.b, p.x, p.h0, p.c0, cache, p.dy, p.dhT,
                                  p.dcT, dx, dh0, dc0, dW, db),
                     0);

    const char *what = "reference vs finite differences";
    numeric_grad(&p, p.x, p.nx, num);
    bad += compare(what, &s, "dx", num, dx, p.nx, FD_FLOOR, FD_TOL, "numeric", "analytic");
    numeric_grad(&p, p.h0, p.nstate, num);
    bad += compare(what, &s, "dh0", num, dh0, p.nstate, FD_FLOOR, FD_TOL, "numeric", "analytic");
    numeric_grad(&p, p.c0, p.nstate, num);
    bad += compare(what, &s, "dc0", num, dc0, p.nstate, FD_FLOOR, FD_TOL, "numeric", "analytic");
    numeric_grad(&p, p.W, p.nW, num);
    bad += compare(what, &s, "dW", num, dW, p.nW, FD_FLOOR, FD_TOL, "numeric", "analytic");
    numeric_grad(&p, p.b, p.nb, num);
    bad += compare(what, &s, "db", num, db, p.nb, FD_FLOOR, FD_TOL, "numeric", "analytic");

    /* Without a cache the backward recomputes the forward: same numbers. */
    double *dW2 = malloc(p.nW * sizeof *dW2);
    assert_non_null(dW2);
    assert_int_equal(ref_backward(s.T, s.B, s.I, s.H, p.W, p.b, p.x, p.h0, p.c0, NULL, p.dy, p.dhT,
                                  p.dcT, NULL, NULL, NULL, dW2, NULL),
                     0);
    assert_memory_equal(dW, dW2, p.nW * sizeof *dW);

    free(dW2);
    free(num);
    free(cache);
    free(db);
    free(dW);
    free(dc0);
    free(dh0);
    free(dx);
    problem_free(&p);
    assert_int_equal(bad, 0);
}

static void test_reference_fd_6_3_4_5(void **state)
{
    (void)state;
    check_reference_fd((struct shape){6, 3, 4, 5}, 1);
}

static void test_reference_fd_1_1_2_3(void **state)
{
    (void)state;
    check_reference_fd((struct shape){1, 1, 2, 3}, 2);
}

static void test_reference_fd_8_2_3_7(void **state)
{
    (void)state;
    check_reference_fd((struct shape){8, 2, 3, 7}, 3);
}

/* ---- 2. and 3. library vs reference, inference vs training -------------- */

static float *to_float(const double *v, size_t n)
{
    float *f = malloc((n ? n : 1) * sizeof *f);
    assert_non_null(f);
    for (size_t k = 0; k < n; k++)
        f[k] = (float)v[k];
    return f;
}

static double *to_double(const float *v, size_t n)
{
    double *d = malloc((n ? n : 1) * sizeof *d);
    assert_non_null(d);
    for (size_t k = 0; k < n; k++)
        d[k] = (double)v[k];
    return d;
}

static float *float_buffer(size_t n)
{
    float *f = malloc((n ? n : 1) * sizeof *f);
    assert_non_null(f);
    return f;
}

static double *double_buffer(size_t n)
{
    double *d = malloc((n ? n : 1) * sizeof *d);
    assert_non_null(d);
    return d;
}

/*
 * Library outputs of two forward_train + backward rounds on one workspace:
 * the first with dx, the second (gradients zeroed in between) with
 * dx = NULL, which takes a narrower product for [dh_{t-1}, dx_t].
 */
struct lib_result {
    float *y, *hT, *cT, *dx, *dh0, *dc0, *grads;
    float *nodx_dh0, *nodx_dc0, *nodx_grads;
};

static void lib_result_free(struct lib_result *r)
{
    free(r->y);
    free(r->hT);
    free(r->cT);
    free(r->dx);
    free(r->dh0);
    free(r->dc0);
    free(r->grads);
    free(r->nodx_dh0);
    free(r->nodx_dc0);
    free(r->nodx_grads);
}

static size_t compare_lib(const struct shape *s, const char *tensor, const double *ref,
                          const float *lib, size_t n, double scale)
{
    double *libd = to_double(lib, n);
    size_t bad = compare("library vs reference", s, tensor, ref, libd, n, scale > 0.0 ? scale : 1.0,
                         LIB_TOL, "reference", "library");
    free(libd);
    return bad;
}

/* Bitwise comparison of the inference outputs against the training ones. */
static size_t compare_bits(const struct shape *s, const char *what, const char *tensor,
                           const float *train, const float *infer, size_t n)
{
    size_t bad = 0;
    for (size_t k = 0; k < n; k++) {
        if (memcmp(&train[k], &infer[k], sizeof train[k]) != 0) {
            if (bad < MAX_REPORTED)
                print_error("%s (T,B,I,H)=(%zu,%zu,%zu,%zu) %s[%zu]: training %.9g, "
                            "inference %.9g\n",
                            what, s->T, s->B, s->I, s->H, tensor, k, (double)train[k],
                            (double)infer[k]);
            bad++;
        }
    }
    return bad;
}

/*
 * Run the library on problem p (values already float-exact). With
 * null_states, h0, c0, dhT and dcT are passed as NULL.
 */
static void run_library(const struct problem *p, int null_states, lstm_model **model_out,
                        struct lib_result *r)
{
    const struct shape s = p->s;
    lstm_config cfg;
    lstm_model *model = NULL;
    lstm_workspace *ws = NULL;
    size_t count = 0;

    assert_int_equal(lstm_config_init(&cfg, sizeof cfg), LSTM_OK);
    cfg.input_size = s.I;
    cfg.hidden_size = s.H;
    assert_int_equal(lstm_model_create(&cfg, &model), LSTM_OK);
    count = lstm_model_param_count(model);
    assert_int_equal(count, p->nW + p->nb);

    float *params = float_buffer(count);
    for (size_t k = 0; k < p->nW; k++)
        params[k] = (float)p->W[k];
    for (size_t k = 0; k < p->nb; k++)
        params[p->nW + k] = (float)p->b[k];
    assert_int_equal(lstm_model_set_params(model, params, count), LSTM_OK);
    free(params);

    float *x = to_float(p->x, p->nx);
    float *h0 = null_states ? NULL : to_float(p->h0, p->nstate);
    float *c0 = null_states ? NULL : to_float(p->c0, p->nstate);
    float *dy = to_float(p->dy, p->ny);
    float *dhT = null_states ? NULL : to_float(p->dhT, p->nstate);
    float *dcT = null_states ? NULL : to_float(p->dcT, p->nstate);

    r->y = float_buffer(p->ny);
    r->hT = float_buffer(p->nstate);
    r->cT = float_buffer(p->nstate);
    r->dx = float_buffer(p->nx);
    r->dh0 = float_buffer(p->nstate);
    r->dc0 = float_buffer(p->nstate);
    r->grads = float_buffer(count);
    r->nodx_dh0 = float_buffer(p->nstate);
    r->nodx_dc0 = float_buffer(p->nstate);
    r->nodx_grads = float_buffer(count);

    assert_int_equal(lstm_workspace_create(model, &ws), LSTM_OK);
    assert_int_equal(
        lstm_model_forward_train(model, ws, s.T, s.B, NULL, x, h0, c0, r->y, r->hT, r->cT),
        LSTM_OK);
    assert_int_equal(lstm_model_zero_grads(model), LSTM_OK);
    assert_int_equal(lstm_model_backward(model, ws, dy, dhT, dcT, r->dx, r->dh0, r->dc0), LSTM_OK);
    assert_int_equal(lstm_model_get_grads(model, r->grads, count), LSTM_OK);
    assert_int_equal(
        lstm_model_forward_train(model, ws, s.T, s.B, NULL, x, h0, c0, NULL, NULL, NULL), LSTM_OK);
    assert_int_equal(lstm_model_zero_grads(model), LSTM_OK);
    assert_int_equal(lstm_model_backward(model, ws, dy, dhT, dcT, NULL, r->nodx_dh0, r->nodx_dc0),
                     LSTM_OK);
    assert_int_equal(lstm_model_get_grads(model, r->nodx_grads, count), LSTM_OK);

    lstm_workspace_destroy(ws);
    free(dcT);
    free(dhT);
    free(dy);
    free(c0);
    free(h0);
    free(x);
    *model_out = model;
}

/*
 * 3. Inference must equal the training forward bit for bit, on a fresh
 *    workspace and on one whose training state it discards.
 */
static size_t check_inference(const struct problem *p, int null_states, const lstm_model *model,
                              const struct lib_result *r)
{
    const struct shape s = p->s;
    const char *what = "inference vs training forward";
    lstm_workspace *ws = NULL;
    size_t bad = 0;

    float *x = to_float(p->x, p->nx);
    float *h0 = null_states ? NULL : to_float(p->h0, p->nstate);
    float *c0 = null_states ? NULL : to_float(p->c0, p->nstate);
    float *y = float_buffer(p->ny);
    float *hT = float_buffer(p->nstate);
    float *cT = float_buffer(p->nstate);

    assert_int_equal(lstm_workspace_create(model, &ws), LSTM_OK);
    for (int trained = 0; trained <= 1; trained++) {
        if (trained)
            assert_int_equal(
                lstm_model_forward_train(model, ws, s.T, s.B, NULL, x, h0, c0, NULL, NULL, NULL),
                LSTM_OK);
        memset(y, 0xff, p->ny * sizeof *y);
        assert_int_equal(lstm_model_forward(model, ws, s.T, s.B, NULL, x, h0, c0, y, hT, cT),
                         LSTM_OK);
        bad += compare_bits(&s, what, "y", r->y, y, p->ny);
        bad += compare_bits(&s, what, "hT", r->hT, hT, p->nstate);
        bad += compare_bits(&s, what, "cT", r->cT, cT, p->nstate);
    }
    print_message("%s (T,B,I,H)=(%zu,%zu,%zu,%zu) y, hT, cT: %s\n", what, s.T, s.B, s.I, s.H,
                  bad ? "DIFFER" : "bit-identical");

    lstm_workspace_destroy(ws);
    free(cT);
    free(hT);
    free(y);
    free(c0);
    free(h0);
    free(x);
    return bad;
}

static void check_library(struct shape s, uint64_t seed, int null_states)
{
    struct problem p;
    struct lib_result r;
    lstm_model *model = NULL;
    size_t bad = 0;

    problem_init(&p, s, seed, 1);
    run_library(&p, null_states, &model, &r);

    /* The reference on exactly the values the library saw. */
    const double *h0 = null_states ? NULL : p.h0;
    const double *c0 = null_states ? NULL : p.c0;
    const double *dhT = null_states ? NULL : p.dhT;
    const double *dcT = null_states ? NULL : p.dcT;
    double *dx = double_buffer(p.nx);
    double *dh0 = double_buffer(p.nstate);
    double *dc0 = double_buffer(p.nstate);
    double *dW = double_buffer(p.nW);
    double *db = double_buffer(p.nb);
    double *cache = double_buffer(ref_cache_len(s.T, s.B, s.H));

    assert_int_equal(ref_forward(s.T, s.B, s.I, s.H, p.W, p.b, p.x, h0, c0, p.y, p.hT, p.cT, cache),
                     0);
    assert_int_equal(ref_backward(s.T, s.B, s.I, s.H, p.W, p.b, p.x, h0, c0, cache, p.dy, dhT, dcT,
                                  dx, dh0, dc0, dW, db),
                     0);

    /*
     * Each error is taken relative to the largest reference magnitude of its
     * group: the forward outputs; the input gradients, of which dh0 and dx
     * are two parts of the same product dA_t W and dc0 is fed by dh; the
     * parameter gradients. A per-tensor scale would be fooled by a tensor
     * whose few elements all happen to cancel (dx has 2 elements when I = 2).
     */
    double out_scale =
        fmax(fmax(max_abs(p.y, p.ny), max_abs(p.hT, p.nstate)), max_abs(p.cT, p.nstate));
    double in_scale = fmax(fmax(max_abs(dx, p.nx), max_abs(dh0, p.nstate)), max_abs(dc0, p.nstate));
    double param_scale = fmax(max_abs(dW, p.nW), max_abs(db, p.nb));

    bad += compare_lib(&s, "y", p.y, r.y, p.ny, out_scale);
    bad += compare_lib(&s, "hT", p.hT, r.hT, p.nstate, out_scale);
    bad += compare_lib(&s, "cT", p.cT, r.cT, p.nstate, out_scale);
    bad += compare_lib(&s, "dx", dx, r.dx, p.nx, in_scale);
    bad += compare_lib(&s, "dh0", dh0, r.dh0, p.nstate, in_scale);
    bad += compare_lib(&s, "dc0", dc0, r.dc0, p.nstate, in_scale);
    bad += compare_lib(&s, "dW", dW, r.grads, p.nW, param_scale);
    bad += compare_lib(&s, "db", db, r.grads + p.nW, p.nb, param_scale);
    /* Second backward, without dx. */
    bad += compare_lib(&s, "dh0 (dx=NULL)", dh0, r.nodx_dh0, p.nstate, in_scale);
    bad += compare_lib(&s, "dc0 (dx=NULL)", dc0, r.nodx_dc0, p.nstate, in_scale);
    bad += compare_lib(&s, "dW (dx=NULL)", dW, r.nodx_grads, p.nW, param_scale);
    bad += compare_lib(&s, "db (dx=NULL)", db, r.nodx_grads + p.nW, p.nb, param_scale);

    bad += check_inference(&p, null_states, model, &r);

    free(cache);
    free(db);
    free(dW);
    free(dc0);
    free(dh0);
    free(dx);
    lstm_model_destroy(model);
    lib_result_free(&r);
    problem_free(&p);
    assert_int_equal(bad, 0);
}

static void test_library_6_3_4_5(void **state)
{
    (void)state;
    check_library((struct shape){6, 3, 4, 5}, 11, 0);
}

static void test_library_1_1_2_3(void **state)
{
    (void)state;
    check_library((struct shape){1, 1, 2, 3}, 12, 0);
}

static void test_library_8_2_3_7(void **state)
{
    (void)state;
    check_library((struct shape){8, 2, 3, 7}, 13, 0);
}

static void test_library_30_4_17_33(void **state)
{
    (void)state;
    check_library((struct shape){30, 4, 17, 33}, 14, 0);
}

/* B = 1 takes the library's matrix-vector path. */
static void test_library_batch1_6_1_4_5(void **state)
{
    (void)state;
    check_library((struct shape){6, 1, 4, 5}, 15, 0);
}

static void test_library_batch1_30_1_17_33(void **state)
{
    (void)state;
    check_library((struct shape){30, 1, 17, 33}, 16, 0);
}

/* h0, c0, dhT, dcT passed as NULL (zeros), batched and B = 1. */
static void test_library_null_states_8_2_3_7(void **state)
{
    (void)state;
    check_library((struct shape){8, 2, 3, 7}, 17, 1);
}

static void test_library_null_states_30_1_17_33(void **state)
{
    (void)state;
    check_library((struct shape){30, 1, 17, 33}, 18, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_fd_6_3_4_5),
        cmocka_unit_test(test_reference_fd_1_1_2_3),
        cmocka_unit_test(test_reference_fd_8_2_3_7),
        cmocka_unit_test(test_library_6_3_4_5),
        cmocka_unit_test(test_library_1_1_2_3),
        cmocka_unit_test(test_library_8_2_3_7),
        cmocka_unit_test(test_library_30_4_17_33),
        cmocka_unit_test(test_library_batch1_6_1_4_5),
        cmocka_unit_test(test_library_batch1_30_1_17_33),
        cmocka_unit_test(test_library_null_states_8_2_3_7),
        cmocka_unit_test(test_library_null_states_30_1_17_33),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
