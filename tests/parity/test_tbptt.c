/*
 * Truncated BPTT: its gradients equal those of the equivalent detached
 * chunks computed in PyTorch.
 *
 * The golden files (tests/parity/golden/tbptt, written by tests/parity/gen_tbptt_golden.py
 * from a float64 torch.nn.LSTM) hold a series of T = 23 steps cut into
 * chunks of 5, 5, 5, 5 and 3; in PyTorch each chunk continues from the
 * previous chunk's final state, detached, and the parameter gradients
 * accumulate over the chunks. Cases: one layer; two layers; one layer with
 * a projection; two layers with a projection, batch first (B = 3, I = 4,
 * H = 6, P = 3).
 *
 * Per case, the library does the same:
 *
 *     lstm_state_create(model, B); lstm_state_set(h0, c0); lstm_model_zero_grads
 *     per chunk: lstm_model_forward_train_chunk(model, ws, state, k, x_chunk, y)
 *                lstm_model_backward(model, ws, dy_chunk, NULL, NULL, dx, dh0, dc0)
 *
 * on a workspace reserved with lstm_workspace_reserve(ws, LSTM_MODE_TRAIN,
 * 5, B) only. After every chunk it compares y, the state (lstm_state_get),
 * dx, dL/dh0 and dL/dc0 of the chunk's initial state, and the accumulated
 * parameter gradients (lstm_model_get_grads, flat layout, per tensor) with
 * the reference. Further checks:
 *  - the chunked forward equals one whole-series lstm_model_forward_train()
 *    and lstm_model_forward() bit for bit (y and final state);
 *  - a second identical run on the same model, workspace and state gives
 *    bit-identical results;
 *  - memory is bounded by the chunk: lstm_workspace_size(LSTM_MODE_TRAIN,
 *    5, B) is less than for the whole series and is what the run was given;
 *  - a chunk that fails (NaN in x) leaves the state and the gradients as
 *    they were and drops the training state (backward: LSTM_E_STATE);
 *    redone, the series ends exactly as the clean run did;
 *  - a second backward for one chunk forward is LSTM_E_STATE.
 *
 * Tolerance, as in tests/parity/test_parity.c. For each tensor a (liblstm) against
 * b (reference), s = max_i |b_i|:
 *
 *     normwise:    max_i |a_i - b_i|  <=  NORM_TOL * s
 *     elementwise: |a_i - b_i|        <=  ELEM_RTOL * |b_i| + ELEM_FLOOR * s
 *
 * The worst errors over all cases are printed at the end of the run (and,
 * with PARITY_REPORT=1 in the environment, per case, chunk and tensor).
 *
 * The golden file format is documented in tests/parity/gen_tbptt_golden.py;
 * support/golden.c reads it, checking its magic, sizes, CRC-32 and that the
 * inputs are float32 values.
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

#ifndef GOLDEN_TBPTT_DIR
#  error "GOLDEN_TBPTT_DIR must be defined as a string: the directory of the golden files"
#endif

#define NORM_TOL 3e-6
#define ELEM_RTOL 3e-6
#define ELEM_FLOOR 1.5e-6

#define SENTINEL (-7777.0f)

static const char *const case_names[] = {"l1_p0_tf", "l2_p0_tf", "l1_p3_tf", "l2_p3_bf"};
#define CASE_COUNT (sizeof case_names / sizeof case_names[0])

/* ------------------------------------------------------------------------ */
/* Golden files (support/golden.h; format: tests/parity/gen_tbptt_golden.py) */

_Static_assert(LSTM_BATCH_FIRST == NETWORK_GOLDEN_BATCH_FIRST, "config flag values");

static void tbptt_load(const char *name, tbptt_golden *g)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.bin", GOLDEN_TBPTT_DIR, name);
    golden_status status = tbptt_golden_load(path, g);
    if (status != GOLDEN_OK) {
        print_error("%s: %s\n", path, golden_strerror(status));
        fail();
    }
}

/* ------------------------------------------------------------------------ */
/* Worst errors over the run, per tensor kind. */

typedef enum kind {
    KIND_Y,
    KIND_H,
    KIND_C,
    KIND_DX,
    KIND_DH0,
    KIND_DC0,
    KIND_DW,
    KIND_DB,
    KIND_DWHR,
    KIND_COUNT
} kind;

static const char *const kind_names[KIND_COUNT] = {"y",   "h",  "c",  "dx",   "dh0",
                                                   "dc0", "dW", "db", "dW_hr"};

static struct {
    double norm, ratio;
    char norm_where[96], ratio_where[96];
} worst[KIND_COUNT];

static int report_each;

/* ------------------------------------------------------------------------ */
/* Test context: everything one case acquires, released by the teardown. */

enum { MAX_ALLOCS = 256 };

typedef struct tbptt_ctx {
    const char *name;
    tbptt_golden g;
    lstm_model *model;
    lstm_workspace *workspace;
    lstm_state *state;
    void *allocs[MAX_ALLOCS];
    size_t alloc_count;
} tbptt_ctx;

static float *ctx_floats(tbptt_ctx *ctx, size_t count)
{
    float *p;
    assert_true(ctx->alloc_count < MAX_ALLOCS);
    p = calloc(count > 0 ? count : 1, sizeof(float));
    assert_non_null(p);
    ctx->allocs[ctx->alloc_count++] = p;
    return p;
}

static float *ctx_input(tbptt_ctx *ctx, const double *src, size_t count)
{
    float *dst = ctx_floats(ctx, count);
    for (size_t k = 0; k < count; k++)
        dst[k] = (float)src[k];
    return dst;
}

static void check_status(const tbptt_ctx *ctx, const char *call, lstm_status st)
{
    if (st != LSTM_OK) {
        print_error("%s: %s failed: %s (%s)\n", ctx->name, call, lstm_strerror(st),
                    lstm_error_message());
        fail();
    }
}

static void expect_status(const tbptt_ctx *ctx, const char *call, lstm_status got, lstm_status want)
{
    if (got != want) {
        print_error("%s: %s returned %s, expected %s (%s)\n", ctx->name, call, lstm_strerror(got),
                    lstm_strerror(want), lstm_error_message());
        fail();
    }
}

static void expect_same_bits(const tbptt_ctx *ctx, const char *what, const float *got,
                             const float *want, size_t count)
{
    if (memcmp(got, want, count * sizeof(float)) == 0)
        return;
    for (size_t k = 0; k < count; k++) {
        if (memcmp(&got[k], &want[k], sizeof(float)) != 0) {
            print_error("%s: %s: element %zu of %zu is %.9g, expected %.9g (bit for bit)\n",
                        ctx->name, what, k, count, (double)got[k], (double)want[k]);
            break;
        }
    }
    fail();
}

/*
 * Compare a float32 result with the float64 reference; record the worst
 * errors; print the worst offending element and fail when over tolerance.
 */
static void check_tensor(const tbptt_ctx *ctx, size_t chunk, kind which, const char *what,
                         const float *got, const double *want, size_t count)
{
    double s = 0.0, worst_abs = 0.0, worst_ratio = 0.0;
    size_t worst_ratio_idx = 0, worst_abs_idx = 0, elem_fail = 0;
    char where[96];

    for (size_t k = 0; k < count; k++)
        s = fmax(s, fabs(want[k]));
    for (size_t k = 0; k < count; k++) {
        double err = fabs((double)got[k] - want[k]);
        double bound = ELEM_RTOL * fabs(want[k]) + ELEM_FLOOR * s;
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
    const double norm = s > 0.0 ? worst_abs / s : worst_abs;
    snprintf(where, sizeof where, "%s chunk %zu %s", ctx->name, chunk, what);
    if (norm > worst[which].norm) {
        worst[which].norm = norm;
        snprintf(worst[which].norm_where, sizeof worst[which].norm_where, "%s", where);
    }
    if (worst_ratio > worst[which].ratio) {
        worst[which].ratio = worst_ratio;
        snprintf(worst[which].ratio_where, sizeof worst[which].ratio_where, "%s", where);
    }
    if (report_each)
        printf("TBPTT %-9s chunk %zu %-10s normwise %.3e elementwise %.3f (max|ref| %.3g)\n",
               ctx->name, chunk, what, norm, worst_ratio, s);
    if (elem_fail == 0 && worst_abs <= NORM_TOL * s)
        return;
    const size_t shown = elem_fail > 0 ? worst_ratio_idx : worst_abs_idx;
    print_error("%s: element %zu: got %.9g, want %.17g; normwise %.3g (bound %.2g); "
                "%zu of %zu elements over |diff| <= %.2g*|want| + %.2g*max|want| "
                "(max|want| %.6g)\n",
                where, shown, (double)got[shown], want[shown], norm, NORM_TOL, elem_fail, count,
                ELEM_RTOL, ELEM_FLOOR, s);
    fail();
}

/* ------------------------------------------------------------------------ */
/* Layouts */

static size_t seq_row(int batch_first, size_t T, size_t B, size_t t, size_t b)
{
    return batch_first ? b * T + t : t * B + b;
}

/* Steps [t0, t0 + n) of a whole-series tensor (float or double) as a chunk of
 * n steps in the same layout. */
static void chunk_of_floats(const tbptt_golden *g, size_t width, size_t t0, size_t n,
                            const float *whole, float *chunk)
{
    for (size_t t = 0; t < n; t++)
        for (size_t b = 0; b < g->B; b++)
            memcpy(chunk + seq_row(g->batch_first, n, g->B, t, b) * width,
                   whole + seq_row(g->batch_first, g->T, g->B, t0 + t, b) * width,
                   width * sizeof(float));
}

static void chunk_of_doubles(const tbptt_golden *g, size_t width, size_t t0, size_t n,
                             const double *whole, double *chunk)
{
    for (size_t t = 0; t < n; t++)
        for (size_t b = 0; b < g->B; b++)
            memcpy(chunk + seq_row(g->batch_first, n, g->B, t, b) * width,
                   whole + seq_row(g->batch_first, g->T, g->B, t0 + t, b) * width,
                   width * sizeof(double));
}

static void chunk_to_whole(const tbptt_golden *g, size_t width, size_t t0, size_t n,
                           const float *chunk, float *whole)
{
    for (size_t t = 0; t < n; t++)
        for (size_t b = 0; b < g->B; b++)
            memcpy(whole + seq_row(g->batch_first, g->T, g->B, t0 + t, b) * width,
                   chunk + seq_row(g->batch_first, n, g->B, t, b) * width, width * sizeof(float));
}

static size_t longest_chunk(const tbptt_golden *g)
{
    size_t k_max = 0;
    for (size_t k = 0; k < g->K; k++)
        k_max = g->chunks[k] > k_max ? g->chunks[k] : k_max;
    return k_max;
}

/* ------------------------------------------------------------------------ */
/* Setup and teardown */

static int setup_case(void **state)
{
    tbptt_ctx *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL)
        return -1;
    ctx->name = *state;
    *state = ctx;
    return 0;
}

static int teardown_case(void **state)
{
    tbptt_ctx *ctx = *state;
    if (ctx == NULL)
        return 0;
    for (size_t k = 0; k < ctx->alloc_count; k++)
        free(ctx->allocs[k]);
    lstm_state_destroy(ctx->state);
    lstm_workspace_destroy(ctx->workspace);
    lstm_model_destroy(ctx->model);
    tbptt_golden_free(&ctx->g);
    free(ctx);
    return 0;
}

/* Loads the case, creates its model with the golden parameters (each tensor
 * placed where lstm_model_tensor() says, the query checked against the
 * layout rule), a workspace reserved for the longest chunk only, and a state. */
static void open_case(tbptt_ctx *ctx)
{
    tbptt_golden *g = &ctx->g;
    tbptt_load(ctx->name, g);

    lstm_config config;
    check_status(ctx, "lstm_config_init", lstm_config_init(&config, sizeof config));
    config.input_size = g->I;
    config.hidden_size = g->H;
    config.num_layers = g->L;
    config.proj_size = g->P;
    config.flags = g->batch_first ? LSTM_BATCH_FIRST : 0u;
    check_status(ctx, "lstm_model_create", lstm_model_create(&config, &ctx->model));
    assert_int_equal(lstm_model_param_count(ctx->model), g->N);

    float *params = ctx_floats(ctx, g->N);
    size_t rule_offset = 0;
    for (size_t l = 0; l < g->L; l++) {
        const size_t in = l == 0 ? g->I : g->R;
        const struct {
            lstm_tensor which;
            size_t rows, cols;
        } tensors[3] = {{LSTM_TENSOR_WEIGHT, 4 * g->H, g->R + in},
                        {LSTM_TENSOR_BIAS, 4 * g->H, 1},
                        {LSTM_TENSOR_PROJECTION, g->P, g->H}};
        for (size_t k = 0; k < (g->P > 0 ? 3u : 2u); k++) {
            size_t offset = 0, rows = 0, cols = 0;
            check_status(
                ctx, "lstm_model_tensor",
                lstm_model_tensor(ctx->model, l, 0, tensors[k].which, &offset, &rows, &cols));
            assert_int_equal(offset, rule_offset);
            assert_int_equal(rows, tensors[k].rows);
            assert_int_equal(cols, tensors[k].cols);
            for (size_t i = 0; i < rows * cols; i++)
                params[offset + i] = (float)g->params[rule_offset + i];
            rule_offset += rows * cols;
        }
    }
    assert_int_equal(rule_offset, g->N);
    check_status(ctx, "lstm_model_set_params", lstm_model_set_params(ctx->model, params, g->N));

    check_status(ctx, "lstm_workspace_create", lstm_workspace_create(ctx->model, &ctx->workspace));
    check_status(ctx, "lstm_workspace_reserve",
                 lstm_workspace_reserve(ctx->workspace, LSTM_MODE_TRAIN, longest_chunk(g), g->B));
    check_status(ctx, "lstm_state_create", lstm_state_create(ctx->model, g->B, &ctx->state));
}

/* Offsets of each parameter tensor, to compare the gradient per tensor. */
static void check_grads(tbptt_ctx *ctx, size_t chunk, const float *grads, const double *want)
{
    const tbptt_golden *g = &ctx->g;
    const lstm_tensor which[3] = {LSTM_TENSOR_WEIGHT, LSTM_TENSOR_BIAS, LSTM_TENSOR_PROJECTION};
    const kind kinds[3] = {KIND_DW, KIND_DB, KIND_DWHR};
    const char *names[3] = {"dW", "db", "dW_hr"};
    for (size_t l = 0; l < g->L; l++) {
        for (size_t k = 0; k < (g->P > 0 ? 3u : 2u); k++) {
            size_t offset = 0, rows = 0, cols = 0;
            char what[32];
            check_status(ctx, "lstm_model_tensor",
                         lstm_model_tensor(ctx->model, l, 0, which[k], &offset, &rows, &cols));
            snprintf(what, sizeof what, "%s[l%zu]", names[k], l);
            check_tensor(ctx, chunk, kinds[k], what, grads + offset, want + offset, rows * cols);
        }
    }
}

/* The results of one chunked run over the whole series. */
typedef struct run_result {
    float *y, *dx;    /* whole series, the case's layout */
    float *dh0, *dc0; /* [K][L][B][R], [K][L][B][H] */
    float *grads;     /* [K][N], accumulated after each chunk */
    float *h, *c;     /* [K][L][B][R], [K][L][B][H]: state after each chunk */
} run_result;

static run_result new_result(tbptt_ctx *ctx)
{
    const tbptt_golden *g = &ctx->g;
    const size_t hc = g->L * g->B * g->R, cc = g->L * g->B * g->H;
    run_result r = {ctx_floats(ctx, g->T * g->B * g->R), ctx_floats(ctx, g->T * g->B * g->I),
                    ctx_floats(ctx, g->K * hc),          ctx_floats(ctx, g->K * cc),
                    ctx_floats(ctx, g->K * g->N),        ctx_floats(ctx, g->K * hc),
                    ctx_floats(ctx, g->K * cc)};
    return r;
}

/*
 * Runs the series chunk by chunk from (h0, c0) with zeroed gradients and
 * records everything. With fail_chunk < K, that chunk is first tried with a
 * NaN in x: the call must fail and change nothing.
 */
static void run_chunks(tbptt_ctx *ctx, const float *x, const float *dy, run_result *out,
                       size_t fail_chunk)
{
    const tbptt_golden *g = &ctx->g;
    const size_t hc = g->L * g->B * g->R, cc = g->L * g->B * g->H;
    const size_t k_max = longest_chunk(g);
    float *h0 = ctx_input(ctx, g->hs, hc), *c0 = ctx_input(ctx, g->cs, cc);
    float *x_chunk = ctx_floats(ctx, k_max * g->B * g->I);
    float *dy_chunk = ctx_floats(ctx, k_max * g->B * g->R);
    float *y_chunk = ctx_floats(ctx, k_max * g->B * g->R);
    float *dx_chunk = ctx_floats(ctx, k_max * g->B * g->I);
    float *grads_before = ctx_floats(ctx, g->N), *grads_after = ctx_floats(ctx, g->N);
    float *h_before = ctx_floats(ctx, hc), *c_before = ctx_floats(ctx, cc);
    float *h_after = ctx_floats(ctx, hc), *c_after = ctx_floats(ctx, cc);

    check_status(ctx, "lstm_state_set", lstm_state_set(ctx->state, h0, c0));
    check_status(ctx, "lstm_model_zero_grads", lstm_model_zero_grads(ctx->model));
    size_t t0 = 0;
    for (size_t k = 0; k < g->K; k++) {
        const size_t n = g->chunks[k];
        chunk_of_floats(g, g->I, t0, n, x, x_chunk);
        chunk_of_floats(g, g->R, t0, n, dy, dy_chunk);
        if (k == fail_chunk) {
            const size_t bad = seq_row(g->batch_first, n, g->B, n / 2, g->B / 2) * g->I;
            const float saved = x_chunk[bad];
            check_status(ctx, "lstm_state_get", lstm_state_get(ctx->state, h_before, c_before));
            check_status(ctx, "lstm_model_get_grads",
                         lstm_model_get_grads(ctx->model, grads_before, g->N));
            x_chunk[bad] = NAN;
            expect_status(ctx, "lstm_model_forward_train_chunk(NaN in x)",
                          lstm_model_forward_train_chunk(ctx->model, ctx->workspace, ctx->state, n,
                                                         x_chunk, y_chunk),
                          LSTM_E_NONFINITE);
            x_chunk[bad] = saved;
            expect_status(ctx, "lstm_model_backward after a failed chunk",
                          lstm_model_backward(ctx->model, ctx->workspace, dy_chunk, NULL, NULL,
                                              dx_chunk, NULL, NULL),
                          LSTM_E_STATE);
            check_status(ctx, "lstm_state_get", lstm_state_get(ctx->state, h_after, c_after));
            check_status(ctx, "lstm_model_get_grads",
                         lstm_model_get_grads(ctx->model, grads_after, g->N));
            expect_same_bits(ctx, "h after a failed chunk", h_after, h_before, hc);
            expect_same_bits(ctx, "c after a failed chunk", c_after, c_before, cc);
            expect_same_bits(ctx, "grads after a failed chunk", grads_after, grads_before, g->N);
        }
        for (size_t i = 0; i < n * g->B * g->R; i++)
            y_chunk[i] = SENTINEL;
        check_status(ctx, "lstm_model_forward_train_chunk",
                     lstm_model_forward_train_chunk(ctx->model, ctx->workspace, ctx->state, n,
                                                    x_chunk, y_chunk));
        check_status(ctx, "lstm_state_get",
                     lstm_state_get(ctx->state, out->h + k * hc, out->c + k * cc));
        for (size_t i = 0; i < n * g->B * g->I; i++)
            dx_chunk[i] = SENTINEL;
        check_status(ctx, "lstm_model_backward",
                     lstm_model_backward(ctx->model, ctx->workspace, dy_chunk, NULL, NULL, dx_chunk,
                                         out->dh0 + k * hc, out->dc0 + k * cc));
        check_status(ctx, "lstm_model_get_grads",
                     lstm_model_get_grads(ctx->model, out->grads + k * g->N, g->N));
        chunk_to_whole(g, g->R, t0, n, y_chunk, out->y);
        chunk_to_whole(g, g->I, t0, n, dx_chunk, out->dx);
        t0 += n;
    }
}

/* ------------------------------------------------------------------------ */
/* Tests */

static void test_tbptt_case(void **state)
{
    tbptt_ctx *ctx = *state;
    open_case(ctx);
    const tbptt_golden *g = &ctx->g;
    const size_t hc = g->L * g->B * g->R, cc = g->L * g->B * g->H;
    const size_t k_max = longest_chunk(g);
    float *x = ctx_input(ctx, g->x, g->T * g->B * g->I);
    float *dy = ctx_input(ctx, g->dy, g->T * g->B * g->R);

    /* memory is bounded by the chunk, not by the series */
    size_t bytes_chunk = 0, bytes_series = 0, bytes_chunk_again = 0;
    check_status(ctx, "lstm_workspace_size",
                 lstm_workspace_size(ctx->model, LSTM_MODE_TRAIN, k_max, g->B, &bytes_chunk));
    check_status(ctx, "lstm_workspace_size",
                 lstm_workspace_size(ctx->model, LSTM_MODE_TRAIN, g->T, g->B, &bytes_series));
    assert_true(bytes_chunk < bytes_series);
    /* the training activations grow with the steps: several chunks' worth for the series */
    assert_true(2 * bytes_chunk < bytes_series);

    run_result run = new_result(ctx);
    run_chunks(ctx, x, dy, &run, g->K);

    /* against PyTorch, chunk by chunk */
    double *want = calloc(k_max * g->B * (g->I > g->R ? g->I : g->R), sizeof(double));
    float *got = ctx_floats(ctx, k_max * g->B * (g->I > g->R ? g->I : g->R));
    assert_non_null(want);
    size_t t0 = 0;
    for (size_t k = 0; k < g->K; k++) {
        const size_t n = g->chunks[k];
        chunk_of_doubles(g, g->R, t0, n, g->y, want);
        chunk_of_floats(g, g->R, t0, n, run.y, got);
        check_tensor(ctx, k, KIND_Y, "y", got, want, n * g->B * g->R);
        chunk_of_doubles(g, g->I, t0, n, g->dx, want);
        chunk_of_floats(g, g->I, t0, n, run.dx, got);
        check_tensor(ctx, k, KIND_DX, "dx", got, want, n * g->B * g->I);
        check_tensor(ctx, k, KIND_H, "h", run.h + k * hc, g->hs + (k + 1) * hc, hc);
        check_tensor(ctx, k, KIND_C, "c", run.c + k * cc, g->cs + (k + 1) * cc, cc);
        check_tensor(ctx, k, KIND_DH0, "dh0", run.dh0 + k * hc, g->dh0 + k * hc, hc);
        check_tensor(ctx, k, KIND_DC0, "dc0", run.dc0 + k * cc, g->dc0 + k * cc, cc);
        check_grads(ctx, k, run.grads + k * g->N, g->grads + k * g->N);
        t0 += n;
    }
    free(want);

    /* the chunked forward is the whole-series forward, bit for bit */
    lstm_workspace *whole_ws = NULL;
    check_status(ctx, "lstm_workspace_create", lstm_workspace_create(ctx->model, &whole_ws));
    float *h0 = ctx_input(ctx, g->hs, hc), *c0 = ctx_input(ctx, g->cs, cc);
    float *y = ctx_floats(ctx, g->T * g->B * g->R), *hT = ctx_floats(ctx, hc);
    float *cT = ctx_floats(ctx, cc);
    lstm_status st =
        lstm_model_forward_train(ctx->model, whole_ws, g->T, g->B, NULL, x, h0, c0, y, hT, cT);
    lstm_status st2 = st == LSTM_OK ? lstm_model_forward(ctx->model, whole_ws, g->T, g->B, NULL, x,
                                                         h0, c0, NULL, NULL, NULL)
                                    : st;
    lstm_workspace_destroy(whole_ws);
    check_status(ctx, "lstm_model_forward_train (whole series)", st);
    check_status(ctx, "lstm_model_forward (whole series)", st2);
    expect_same_bits(ctx, "chunked y against the whole series", run.y, y, g->T * g->B * g->R);
    expect_same_bits(ctx, "final h against the whole series", run.h + (g->K - 1) * hc, hT, hc);
    expect_same_bits(ctx, "final c against the whole series", run.c + (g->K - 1) * cc, cT, cc);

    /* a second identical run on the same workspace and state: bit-identical,
     * and the workspace still needs no more than the chunk's size */
    run_result again = new_result(ctx);
    run_chunks(ctx, x, dy, &again, g->K);
    expect_same_bits(ctx, "second run: y", again.y, run.y, g->T * g->B * g->R);
    expect_same_bits(ctx, "second run: dx", again.dx, run.dx, g->T * g->B * g->I);
    expect_same_bits(ctx, "second run: dh0", again.dh0, run.dh0, g->K * hc);
    expect_same_bits(ctx, "second run: dc0", again.dc0, run.dc0, g->K * cc);
    expect_same_bits(ctx, "second run: grads", again.grads, run.grads, g->K * g->N);
    expect_same_bits(ctx, "second run: h", again.h, run.h, g->K * hc);
    expect_same_bits(ctx, "second run: c", again.c, run.c, g->K * cc);
    check_status(ctx, "lstm_workspace_size",
                 lstm_workspace_size(ctx->model, LSTM_MODE_TRAIN, k_max, g->B, &bytes_chunk_again));
    assert_int_equal(bytes_chunk_again, bytes_chunk);

    /* a failed chunk in the middle changes nothing: redone, the run ends the same */
    run_result retried = new_result(ctx);
    run_chunks(ctx, x, dy, &retried, g->K / 2);
    expect_same_bits(ctx, "after a failed chunk: y", retried.y, run.y, g->T * g->B * g->R);
    expect_same_bits(ctx, "after a failed chunk: grads", retried.grads, run.grads, g->K * g->N);
    expect_same_bits(ctx, "after a failed chunk: h", retried.h, run.h, g->K * hc);
    expect_same_bits(ctx, "after a failed chunk: c", retried.c, run.c, g->K * cc);
}

/* Backward consumes a chunk's activations; it needs a forward first. */
static void test_backward_order(void **state)
{
    tbptt_ctx *ctx = *state;
    open_case(ctx);
    const tbptt_golden *g = &ctx->g;
    const size_t n = g->chunks[0];
    float *x = ctx_input(ctx, g->x, g->T * g->B * g->I);
    float *dy = ctx_input(ctx, g->dy, g->T * g->B * g->R);
    float *x_chunk = ctx_floats(ctx, n * g->B * g->I), *dy_chunk = ctx_floats(ctx, n * g->B * g->R);
    float *y = ctx_floats(ctx, n * g->B * g->R), *dx = ctx_floats(ctx, n * g->B * g->I);
    float *grads = ctx_floats(ctx, g->N), *grads_after = ctx_floats(ctx, g->N);
    chunk_of_floats(g, g->I, 0, n, x, x_chunk);
    chunk_of_floats(g, g->R, 0, n, dy, dy_chunk);

    check_status(ctx, "lstm_model_zero_grads", lstm_model_zero_grads(ctx->model));
    expect_status(
        ctx, "lstm_model_backward before any forward",
        lstm_model_backward(ctx->model, ctx->workspace, dy_chunk, NULL, NULL, dx, NULL, NULL),
        LSTM_E_STATE);
    check_status(
        ctx, "lstm_model_forward_train_chunk",
        lstm_model_forward_train_chunk(ctx->model, ctx->workspace, ctx->state, n, x_chunk, y));
    check_status(
        ctx, "lstm_model_backward",
        lstm_model_backward(ctx->model, ctx->workspace, dy_chunk, NULL, NULL, dx, NULL, NULL));
    check_status(ctx, "lstm_model_get_grads", lstm_model_get_grads(ctx->model, grads, g->N));
    expect_status(
        ctx, "a second lstm_model_backward",
        lstm_model_backward(ctx->model, ctx->workspace, dy_chunk, NULL, NULL, dx, NULL, NULL),
        LSTM_E_STATE);
    check_status(ctx, "lstm_model_get_grads", lstm_model_get_grads(ctx->model, grads_after, g->N));
    expect_same_bits(ctx, "grads after a refused backward", grads_after, grads, g->N);

    /* backward is for the last training forward on this workspace: an
     * inference chunk streamed through the state in between runs on the
     * state's own scratch memory and does not drop it */
    check_status(
        ctx, "lstm_model_forward_train_chunk",
        lstm_model_forward_train_chunk(ctx->model, ctx->workspace, ctx->state, n, x_chunk, y));
    check_status(ctx, "lstm_model_stream",
                 lstm_model_stream(ctx->model, ctx->state, n, x_chunk, NULL));
    check_status(
        ctx, "lstm_model_backward after a stream on the same state",
        lstm_model_backward(ctx->model, ctx->workspace, dy_chunk, NULL, NULL, dx, NULL, NULL));
}

static int print_summary(void **unused)
{
    (void)unused;
    printf("TBPTT worst errors over all cases (normwise = max|diff|/max|ref|, bound %.1e; "
           "elementwise = max |diff| / (%.1e |ref| + %.1e max|ref|), bound 1):\n",
           NORM_TOL, ELEM_RTOL, ELEM_FLOOR);
    for (size_t k = 0; k < KIND_COUNT; k++)
        if (worst[k].norm_where[0] != '\0' || worst[k].ratio_where[0] != '\0')
            printf("  %-6s normwise %.3e (%s)  elementwise %.3f (%s)\n", kind_names[k],
                   worst[k].norm, worst[k].norm_where, worst[k].ratio, worst[k].ratio_where);
    return 0;
}

static void *test_state(const char *name)
{
    return (void *)(uintptr_t)name;
}

int main(void)
{
    const char *env = getenv("PARITY_REPORT");
    report_each = env != NULL && env[0] == '1';
    struct CMUnitTest tests[CASE_COUNT + 1];
    char names[CASE_COUNT + 1][64];
    for (size_t k = 0; k < CASE_COUNT; k++) {
        snprintf(names[k], sizeof names[k], "tbptt_%s", case_names[k]);
        tests[k] = (struct CMUnitTest){names[k], test_tbptt_case, setup_case, teardown_case,
                                       test_state(case_names[k])};
    }
    snprintf(names[CASE_COUNT], sizeof names[CASE_COUNT], "backward_order");
    tests[CASE_COUNT] = (struct CMUnitTest){names[CASE_COUNT], test_backward_order, setup_case,
                                            teardown_case, test_state(case_names[1])};
    return _cmocka_run_group_tests("tbptt", tests, CASE_COUNT + 1, NULL, print_summary);
}
