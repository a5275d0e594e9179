/*
 * Parity of liblstm with PyTorch: every golden file of tests/parity/golden (written
 * by tests/parity/gen_golden.py from a float64 torch.nn.LSTM) is run through the
 * library's inference forward, training forward and backward, and every
 * output and gradient is compared with the float64 reference.
 *
 * Tolerance. liblstm computes in float32 and the golden inputs are exact
 * float32 values, so the difference is liblstm's own rounding. Rounding of
 * a dot product is bounded by eps * sum|terms|, not eps * |result|: an
 * element that comes out small by cancellation has an error on the scale of
 * the whole tensor, not of itself. So each tensor a (liblstm) against b
 * (reference), with s = max_i |b_i|, must meet both
 *
 *     normwise:    max_i |a_i - b_i|  <=  NORM_TOL * s
 *     elementwise: |a_i - b_i|        <=  ELEM_RTOL * |b_i| + ELEM_FLOOR * s
 *
 * The normwise bound is the requirement (relative error of the tensor);
 * the elementwise one additionally holds large elements to their own
 * relative precision, while elements below (ELEM_FLOOR / ELEM_RTOL) * s
 * are held to the absolute floor. A tensor with s = 0 must be exactly 0.
 *
 * See the TOLERANCE comment below for the bounds and the measured errors.
 *
 * Set PARITY_REPORT=1 in the environment to print, per case and tensor,
 * the measured normwise error |a-b|_inf / s and the largest elementwise
 * ratio |a_i-b_i| / (ELEM_RTOL |b_i| + ELEM_FLOOR s) (1.0 = at the bound).
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

#include "golden.h"
#include "lstm/lstm.h"

#ifndef GOLDEN_DIR
#  error "GOLDEN_DIR must be defined as a string: the directory of the golden files"
#endif

/*
 * TOLERANCE (required: 1e-5 relative).
 *
 * Measured worst errors over all 8 cases, for every stage that produces the
 * tensor (inference, training forward, backward with and without dx, two
 * accumulated backward passes), liblstm core of 2025-11-21 built with gcc 12
 * -O2 on x86-64, the vectorised activations of src/activation.h:
 *
 *               normwise |a-b|_inf / |b|_inf          elementwise ratio
 *               OpenBLAS 0.3.21  OpenBLAS 1 thr  netlib BLAS   (bounds below)
 *     y         3.7e-7 (sat)     3.7e-7          3.1e-7       <= 0.20
 *     hT        2.3e-7           2.3e-7          1.9e-7       <= 0.11
 *     cT        1.6e-7           2.1e-7          1.8e-7       <= 0.09
 *     dx        4.5e-7           4.7e-7          4.0e-7       <= 0.17
 *     dh0       6.1e-7           7.8e-7          9.2e-7       <= 0.25
 *     dc0       1.6e-7           1.6e-7          1.7e-7       <= 0.09
 *     dW        4.4e-7           4.4e-7          4.9e-7       <= 0.15
 *     db        3.1e-7           3.1e-7          2.6e-7       <= 0.09
 *
 * The bounds sit about 3x above the worst of these (9.2e-7 normwise;
 * elementwise ratio 0.25) and about 3x inside the requirement, so a
 * different BLAS, thread count or vectorised activation passes while a
 * real defect (a wrong gate, a dropped term, a missing accumulation: errors
 * of 1e-3 and up) cannot hide.
 */
#define NORM_TOL 3e-6
#define ELEM_RTOL 3e-6
#define ELEM_FLOOR 1.5e-6

/* The golden files, as listed in CASES of tests/parity/gen_golden.py. */
static const char *const case_names[] = {
    "t23_b5_i13_h37", "t1_b1_i1_h1",       "t1_b1_i4_h3",       "t7_b1_i8_h16",
    "t12_b3_i5_h64",  "t5_b8_i32_h16_sat", "t9_b2_i6_h10_nody", "t4_b16_i3_h128",
};
#define CASE_COUNT (sizeof case_names / sizeof case_names[0])

/* Tensor shapes, to print a failing index as coordinates. */
typedef enum shape_kind {
    SHAPE_SEQ_H, /* [T][B][H] */
    SHAPE_SEQ_I, /* [T][B][I] */
    SHAPE_STATE, /* [B][H] */
    SHAPE_W,     /* [4H][H+I] */
    SHAPE_BIAS   /* [4H] */
} shape_kind;

enum { MAX_ALLOCS = 32 };

typedef struct parity_ctx {
    const char *name;
    network_golden gc;
    lstm_model *model;
    lstm_workspace *workspace;
    void *allocs[MAX_ALLOCS];
    size_t alloc_count;
    int report;
} parity_ctx;

static float *ctx_floats(parity_ctx *ctx, size_t count)
{
    float *p;
    assert_true(ctx->alloc_count < MAX_ALLOCS);
    p = calloc(count, sizeof *p);
    assert_non_null(p);
    ctx->allocs[ctx->alloc_count++] = p;
    return p;
}

/* A float32 copy of a golden input (exact: the loader checked it); NULL stays NULL. */
static float *ctx_input(parity_ctx *ctx, const double *src, size_t count)
{
    float *dst;
    if (src == NULL)
        return NULL;
    dst = ctx_floats(ctx, count);
    for (size_t k = 0; k < count; k++)
        dst[k] = (float)src[k];
    return dst;
}

static const char *gate_name(size_t gate)
{
    static const char *const names[4] = {"i", "f", "g", "o"};
    return gate < 4 ? names[gate] : "?";
}

static void describe_index(const network_golden *gc, shape_kind shape, size_t idx, char *buf,
                           size_t size)
{
    size_t B = gc->batch, I = gc->input_size, H = gc->hidden_size;
    switch (shape) {
    case SHAPE_SEQ_H:
        snprintf(buf, size, "[t=%zu][b=%zu][h=%zu]", idx / (B * H), idx / H % B, idx % H);
        break;
    case SHAPE_SEQ_I:
        snprintf(buf, size, "[t=%zu][b=%zu][i=%zu]", idx / (B * I), idx / I % B, idx % I);
        break;
    case SHAPE_STATE: snprintf(buf, size, "[b=%zu][h=%zu]", idx / H, idx % H); break;
    case SHAPE_W: {
        size_t row = idx / (H + I), col = idx % (H + I);
        if (col < H)
            snprintf(buf, size, "[gate %s, unit %zu][h col %zu]", gate_name(row / H), row % H, col);
        else
            snprintf(buf, size, "[gate %s, unit %zu][x col %zu]", gate_name(row / H), row % H,
                     col - H);
        break;
    }
    case SHAPE_BIAS: snprintf(buf, size, "[gate %s, unit %zu]", gate_name(idx / H), idx % H); break;
    }
}

/*
 * Compare a float32 result with the float64 reference times @p scale (1 or
 * 2). Prints the worst offending element and returns 1 on failure.
 */
static int check_tensor(const parity_ctx *ctx, const char *stage, const char *what,
                        shape_kind shape, const float *got, const double *want, double scale,
                        size_t count)
{
    double s = 0.0, worst_abs = 0.0, worst_ratio = 0.0;
    size_t worst_abs_idx = 0, worst_ratio_idx = 0, elem_fail = 0, shown;
    char where[96];

    for (size_t k = 0; k < count; k++)
        s = fmax(s, fabs(scale * want[k]));
    for (size_t k = 0; k < count; k++) {
        double ref = scale * want[k];
        double err = fabs((double)got[k] - ref);
        double bound = ELEM_RTOL * fabs(ref) + ELEM_FLOOR * s;
        double ratio = bound > 0.0 ? err / bound : (err > 0.0 ? INFINITY : 0.0);
        if (!(err <= bound)) /* also catches NaN */
            elem_fail++;
        if (!(ratio <= worst_ratio)) {
            worst_ratio = ratio;
            worst_ratio_idx = k;
        }
        if (!(err <= worst_abs)) {
            worst_abs = err;
            worst_abs_idx = k;
        }
    }
    if (ctx->report)
        printf("PARITY %-18s %-11s %-4s normwise %.3e elementwise %.3f (max|ref| %.3g)\n",
               ctx->name, stage, what, s > 0.0 ? worst_abs / s : worst_abs, worst_ratio, s);
    if (elem_fail == 0 && worst_abs <= NORM_TOL * s)
        return 0;
    /* Show the element furthest over its own bound, or else the largest error. */
    shown = elem_fail > 0 ? worst_ratio_idx : worst_abs_idx;
    describe_index(&ctx->gc, shape, shown, where, sizeof where);
    print_error("%s: %s: %s%s: got %.9g, want %.17g, |diff| %.3g; "
                "normwise %.3g (bound %.2g); %zu of %zu elements over "
                "|diff| <= %.2g*|want| + %.2g*max|want| (max|want| %.6g)\n",
                ctx->name, stage, what, where, (double)got[shown], scale * want[shown],
                fabs((double)got[shown] - scale * want[shown]), s > 0.0 ? worst_abs / s : worst_abs,
                NORM_TOL, elem_fail, count, ELEM_RTOL, ELEM_FLOOR, s);
    return 1;
}

/* Bitwise equality of two float32 results that must come from the same arithmetic. */
static int check_identical(const parity_ctx *ctx, const char *what, const float *a, const float *b,
                           size_t count)
{
    for (size_t k = 0; k < count; k++) {
        if (memcmp(&a[k], &b[k], sizeof a[k]) != 0) {
            print_error("%s: %s: element %zu differs: %.9g vs %.9g (must be bit-identical)\n",
                        ctx->name, what, k, (double)a[k], (double)b[k]);
            return 1;
        }
    }
    return 0;
}

static void check_status(const parity_ctx *ctx, const char *call, lstm_status st)
{
    if (st != LSTM_OK) {
        print_error("%s: %s failed: %s (%s)\n", ctx->name, call, lstm_strerror(st),
                    lstm_error_message());
        fail();
    }
}

/* The golden files of this test are networks of one layer, one direction
 * and no projection (support/golden.h): params is W [4H][H+I], then b [4H];
 * grads is dW, then db. */
static size_t weight_count(const network_golden *gc)
{
    return 4 * gc->hidden_size * (gc->hidden_size + gc->input_size);
}

static const double *golden_db(const network_golden *gc)
{
    return gc->grads + weight_count(gc);
}

static int setup_case(void **state)
{
    parity_ctx *ctx = calloc(1, sizeof *ctx);
    char path[1024];
    golden_status st;
    const char *report = getenv("PARITY_REPORT");

    if (ctx == NULL)
        return -1;
    ctx->name = *state;
    ctx->report = report != NULL && report[0] != '\0' && strcmp(report, "0") != 0;
    snprintf(path, sizeof path, "%s/%s.bin", GOLDEN_DIR, ctx->name);
    st = network_golden_load(path, &ctx->gc);
    if (st != GOLDEN_OK) {
        print_error("%s: cannot load: %s\n", path, golden_strerror(st));
        free(ctx);
        return -1;
    }
    if (ctx->gc.num_layers != 1 || ctx->gc.directions != 1 || ctx->gc.proj_size != 0 ||
        ctx->gc.config_flags != 0 || ctx->gc.lengths != NULL) {
        print_error("%s: not a one-layer, unidirectional, time-major case\n", path);
        network_golden_free(&ctx->gc);
        free(ctx);
        return -1;
    }
    *state = ctx;
    return 0;
}

static int teardown_case(void **state)
{
    parity_ctx *ctx = *state;
    if (ctx == NULL)
        return 0;
    lstm_workspace_destroy(ctx->workspace);
    lstm_model_destroy(ctx->model);
    for (size_t k = 0; k < ctx->alloc_count; k++)
        free(ctx->allocs[k]);
    network_golden_free(&ctx->gc);
    free(ctx);
    *state = NULL;
    return 0;
}

/* The model of a case: created, parameters set from the golden W and b. */
static void make_model(parity_ctx *ctx)
{
    const network_golden *gc = &ctx->gc;
    size_t weights = weight_count(gc);
    size_t bias = 4 * gc->hidden_size;
    float *params = ctx_floats(ctx, weights + bias);
    lstm_config config;

    for (size_t k = 0; k < weights + bias; k++)
        params[k] = (float)gc->params[k];

    check_status(ctx, "lstm_config_init", lstm_config_init(&config, sizeof config));
    config.input_size = gc->input_size;
    config.hidden_size = gc->hidden_size;
    check_status(ctx, "lstm_model_create", lstm_model_create(&config, &ctx->model));
    assert_int_equal(lstm_model_param_count(ctx->model), weights + bias);
    check_status(ctx, "lstm_model_set_params",
                 lstm_model_set_params(ctx->model, params, weights + bias));
    check_status(ctx, "lstm_workspace_create", lstm_workspace_create(ctx->model, &ctx->workspace));
}

/* The packed gradient buffer [dW | db] against reference dW and db times scale. */
static int check_grads(const parity_ctx *ctx, const char *stage, const float *grads,
                       const double *dW, const double *db, double scale)
{
    const network_golden *gc = &ctx->gc;
    size_t weights = weight_count(gc);
    int failures = 0;
    failures += check_tensor(ctx, stage, "dW", SHAPE_W, grads, dW, scale, weights);
    failures +=
        check_tensor(ctx, stage, "db", SHAPE_BIAS, grads + weights, db, scale, 4 * gc->hidden_size);
    return failures;
}

static void test_case(void **state)
{
    parity_ctx *ctx = *state;
    const network_golden *gc = &ctx->gc;
    size_t T = gc->seq_len, B = gc->batch;
    size_t xs = network_golden_x_count(gc), ys = network_golden_y_count(gc);
    size_t hs = network_golden_h_count(gc);
    size_t np = weight_count(gc) + 4 * gc->hidden_size;
    int failures = 0;

    /* float32 inputs; absent optional tensors stay NULL, as the API allows. */
    const float *x = ctx_input(ctx, gc->x, xs);
    const float *h0 = ctx_input(ctx, gc->h0, hs);
    const float *c0 = ctx_input(ctx, gc->c0, hs);
    const float *dy = ctx_input(ctx, gc->dy, ys);
    const float *dhT = ctx_input(ctx, gc->dhT, hs);
    const float *dcT = ctx_input(ctx, gc->dcT, hs);

    float *y_inf = ctx_floats(ctx, ys), *hT_inf = ctx_floats(ctx, hs);
    float *cT_inf = ctx_floats(ctx, hs);
    float *y_tr = ctx_floats(ctx, ys), *hT_tr = ctx_floats(ctx, hs);
    float *cT_tr = ctx_floats(ctx, hs);
    float *dx = ctx_floats(ctx, xs), *dh0 = ctx_floats(ctx, hs), *dc0 = ctx_floats(ctx, hs);
    float *grads = ctx_floats(ctx, np);
    float *dh0_nodx = ctx_floats(ctx, hs), *dc0_nodx = ctx_floats(ctx, hs);
    float *grads_nodx = ctx_floats(ctx, np);
    float *dx_twice = ctx_floats(ctx, xs), *grads_twice = ctx_floats(ctx, np);

    make_model(ctx);

    /* Inference. */
    check_status(ctx, "lstm_model_forward",
                 lstm_model_forward(ctx->model, ctx->workspace, T, B, NULL, x, h0, c0, y_inf,
                                    hT_inf, cT_inf));
    failures += check_tensor(ctx, "infer", "y", SHAPE_SEQ_H, y_inf, gc->y, 1.0, ys);
    failures += check_tensor(ctx, "infer", "hT", SHAPE_STATE, hT_inf, gc->hT, 1.0, hs);
    failures += check_tensor(ctx, "infer", "cT", SHAPE_STATE, cT_inf, gc->cT, 1.0, hs);

    /* Training forward: same numbers as inference, to the bit. */
    check_status(ctx, "lstm_model_zero_grads", lstm_model_zero_grads(ctx->model));
    check_status(ctx, "lstm_model_forward_train",
                 lstm_model_forward_train(ctx->model, ctx->workspace, T, B, NULL, x, h0, c0, y_tr,
                                          hT_tr, cT_tr));
    failures += check_tensor(ctx, "train", "y", SHAPE_SEQ_H, y_tr, gc->y, 1.0, ys);
    failures += check_tensor(ctx, "train", "hT", SHAPE_STATE, hT_tr, gc->hT, 1.0, hs);
    failures += check_tensor(ctx, "train", "cT", SHAPE_STATE, cT_tr, gc->cT, 1.0, hs);
    failures += check_identical(ctx, "y of inference vs training forward", y_inf, y_tr, ys);
    failures += check_identical(ctx, "hT of inference vs training forward", hT_inf, hT_tr, hs);
    failures += check_identical(ctx, "cT of inference vs training forward", cT_inf, cT_tr, hs);

    /* Backward with every output. */
    check_status(ctx, "lstm_model_backward",
                 lstm_model_backward(ctx->model, ctx->workspace, dy, dhT, dcT, dx, dh0, dc0));
    check_status(ctx, "lstm_model_get_grads", lstm_model_get_grads(ctx->model, grads, np));
    failures += check_tensor(ctx, "backward", "dx", SHAPE_SEQ_I, dx, gc->dx, 1.0, xs);
    failures += check_tensor(ctx, "backward", "dh0", SHAPE_STATE, dh0, gc->dh0, 1.0, hs);
    failures += check_tensor(ctx, "backward", "dc0", SHAPE_STATE, dc0, gc->dc0, 1.0, hs);
    failures += check_grads(ctx, "backward", grads, gc->grads, golden_db(gc), 1.0);

    /* Backward without dx: the other gradients must not change. Backward
     * consumes the training forward's activations, so each backward below
     * follows a training forward of its own. */
    check_status(ctx, "lstm_model_zero_grads", lstm_model_zero_grads(ctx->model));
    check_status(ctx, "lstm_model_forward_train (again)",
                 lstm_model_forward_train(ctx->model, ctx->workspace, T, B, NULL, x, h0, c0, y_tr,
                                          hT_tr, cT_tr));
    check_status(
        ctx, "lstm_model_backward(dx=NULL)",
        lstm_model_backward(ctx->model, ctx->workspace, dy, dhT, dcT, NULL, dh0_nodx, dc0_nodx));
    check_status(ctx, "lstm_model_get_grads", lstm_model_get_grads(ctx->model, grads_nodx, np));
    failures += check_tensor(ctx, "no-dx", "dh0", SHAPE_STATE, dh0_nodx, gc->dh0, 1.0, hs);
    failures += check_tensor(ctx, "no-dx", "dc0", SHAPE_STATE, dc0_nodx, gc->dc0, 1.0, hs);
    failures += check_grads(ctx, "no-dx", grads_nodx, gc->grads, golden_db(gc), 1.0);
    /* Skipping dx changes the shape of the BLAS call that yields dh_{t-1}, which
     * may round differently (OpenBLAS does), so agreement is to tolerance,
     * not to the bit. */
    {
        double *with_dx = malloc((2 * hs + np) * sizeof *with_dx);
        assert_non_null(with_dx);
        for (size_t k = 0; k < hs; k++) {
            with_dx[k] = (double)dh0[k];
            with_dx[hs + k] = (double)dc0[k];
        }
        for (size_t k = 0; k < np; k++)
            with_dx[2 * hs + k] = (double)grads[k];
        failures += check_tensor(ctx, "no-dx/dx", "dh0", SHAPE_STATE, dh0_nodx, with_dx, 1.0, hs);
        failures +=
            check_tensor(ctx, "no-dx/dx", "dc0", SHAPE_STATE, dc0_nodx, with_dx + hs, 1.0, hs);
        failures += check_grads(ctx, "no-dx/dx", grads_nodx, with_dx + 2 * hs,
                                with_dx + 2 * hs + weight_count(gc), 1.0);
        free(with_dx);
    }

    /* Two backward calls accumulate twice the gradients; dx is written, not added. */
    check_status(ctx, "lstm_model_zero_grads", lstm_model_zero_grads(ctx->model));
    check_status(ctx, "lstm_model_forward_train (again)",
                 lstm_model_forward_train(ctx->model, ctx->workspace, T, B, NULL, x, h0, c0, y_tr,
                                          hT_tr, cT_tr));
    check_status(
        ctx, "lstm_model_backward (1 of 2)",
        lstm_model_backward(ctx->model, ctx->workspace, dy, dhT, dcT, dx_twice, NULL, NULL));
    check_status(ctx, "lstm_model_forward_train (again)",
                 lstm_model_forward_train(ctx->model, ctx->workspace, T, B, NULL, x, h0, c0, y_tr,
                                          hT_tr, cT_tr));
    check_status(
        ctx, "lstm_model_backward (2 of 2)",
        lstm_model_backward(ctx->model, ctx->workspace, dy, dhT, dcT, dx_twice, NULL, NULL));
    check_status(ctx, "lstm_model_get_grads", lstm_model_get_grads(ctx->model, grads_twice, np));
    failures += check_grads(ctx, "twice", grads_twice, gc->grads, golden_db(gc), 2.0);
    failures += check_tensor(ctx, "twice", "dx", SHAPE_SEQ_I, dx_twice, gc->dx, 1.0, xs);
    /* Against the library's own single pass too: 2*g is exact in float32, but
     * the library may round its in-place accumulation g + g' differently. */
    {
        double *once = malloc(np * sizeof *once);
        assert_non_null(once);
        for (size_t k = 0; k < np; k++)
            once[k] = (double)grads[k];
        failures += check_grads(ctx, "twice/once", grads_twice, once, once + weight_count(gc), 2.0);
        free(once);
    }

    assert_int_equal(failures, 0);
}

/* A corrupted or truncated golden file must be refused, with nothing allocated. */
static void test_loader_rejects_damage(void **state)
{
    char path[1024];
    FILE *file;
    unsigned char *buf, *copy;
    long length;
    size_t size;
    network_golden gc;

    (void)state;
    snprintf(path, sizeof path, "%s/%s.bin", GOLDEN_DIR, "t1_b1_i4_h3");
    file = fopen(path, "rb");
    assert_non_null(file);
    assert_int_equal(fseek(file, 0, SEEK_END), 0);
    length = ftell(file);
    assert_true(length > 0);
    rewind(file);
    size = (size_t)length;
    buf = malloc(size + 1);
    copy = malloc(size + 1);
    assert_non_null(buf);
    assert_non_null(copy);
    assert_int_equal(fread(buf, 1, size, file), size);
    fclose(file);

    assert_int_equal(network_golden_parse(buf, size, &gc), GOLDEN_OK);
    network_golden_free(&gc);
    assert_null(gc.storage);

    for (size_t len = 0; len < size; len++) {
        assert_int_not_equal(network_golden_parse(buf, len, &gc), GOLDEN_OK);
        assert_null(gc.storage);
    }
    memcpy(copy, buf, size);
    copy[size] = 0;
    assert_int_equal(network_golden_parse(copy, size + 1, &gc), GOLDEN_E_SIZE);
    for (size_t pos = 0; pos < size; pos++) {
        memcpy(copy, buf, size);
        copy[pos] ^= 0x5A;
        assert_int_not_equal(network_golden_parse(copy, size, &gc), GOLDEN_OK);
        assert_null(gc.storage);
    }
    assert_int_equal(network_golden_load(GOLDEN_DIR "/no-such-case.bin", &gc), GOLDEN_E_IO);
    assert_int_equal(network_golden_parse(NULL, 0, &gc), GOLDEN_E_ARG);
    free(copy);
    free(buf);
}

int main(void)
{
    struct CMUnitTest tests[CASE_COUNT + 1];

    for (size_t k = 0; k < CASE_COUNT; k++) {
        tests[k].name = case_names[k];
        tests[k].test_func = test_case;
        tests[k].setup_func = setup_case;
        tests[k].teardown_func = teardown_case;
        tests[k].initial_state = (void *)(uintptr_t)case_names[k];
    }
    tests[CASE_COUNT] = (struct CMUnitTest)cmocka_unit_test(test_loader_rejects_damage);
    return _cmocka_run_group_tests("parity", tests, CASE_COUNT + 1, NULL, NULL);
}
