/*
 * Parity of liblstm's networks with PyTorch: every golden file of
 * tests/parity/golden/network (written by tests/parity/gen_network_golden.py from a
 * float64 torch.nn.LSTM with num_layers, bidirectional, proj_size,
 * batch_first and packed variable-length batches) is run through the
 * library's inference forward, training forward and backward, and every
 * output and gradient is compared with the float64 reference.
 *
 * Per case:
 *  - the model is created from the case's configuration; each torch tensor
 *    (W, b, W_hr of every layer and direction) is placed where
 *    lstm_model_tensor() says, and the query is checked against the layout
 *    rule of include/lstm/model.h (network_golden_tensor()), including that
 *    the tensors tile the buffer exactly and that absent tensors are refused;
 *  - inference: y, hT, cT against the reference; y exactly zero past each
 *    sequence's end (output buffers are pre-filled with a sentinel);
 *  - training forward: y, hT, cT bit-identical to inference;
 *  - backward: dx (exactly zero in the padding), dh0, dc0 and every
 *    parameter gradient tensor of the flat gradient buffer;
 *  - backward with dx = NULL: dh0, dc0 and gradients unchanged (to tolerance);
 *  - two forward/backward pairs without zeroing: twice the gradients.
 * Padded positions of x and dy hold garbage of magnitude 1e4..1e5 in the
 * golden files: using any of it shows up as a gross error.
 *
 * A further test runs each sequence of the larger bidirectional, projected
 * case alone (B = 1, its own length as T) and compares with the padded
 * batch: y, hT, cT, dx, dh0, dc0, and the parameter gradients summed over
 * the solo runs.
 *
 * Tolerance, as in tests/parity/test_parity.c. liblstm computes in float32 and the
 * golden inputs are exact float32 values, so the difference is liblstm's own
 * rounding. Each tensor a (liblstm) against b (reference), s = max_i |b_i|:
 *
 *     normwise:    max_i |a_i - b_i|  <=  NORM_TOL * s
 *     elementwise: |a_i - b_i|        <=  ELEM_RTOL * |b_i| + ELEM_FLOOR * s
 *
 * A tensor with s = 0 must be exactly 0. The measured worst errors over all
 * cases are printed at the end of the run (and, with PARITY_REPORT=1 in the
 * environment, per case, stage and tensor).
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
#include "golden.h"

#ifndef GOLDEN_NETWORK_DIR
#  error "GOLDEN_NETWORK_DIR must be defined as a string: the directory of the golden files"
#endif

/*
 * TOLERANCE (same bounds as tests/parity/test_parity.c; required: 1e-5 relative).
 *
 * Measured worst over all 69 cases and every stage (inference, training
 * forward, backward, backward without dx, two accumulated backward passes),
 * liblstm at commit 4fb5122, gcc 12 Debug and Release and
 * clang 14 with ASan/UBSan, OpenBLAS 0.3.21 with 1 and 2 threads:
 *
 *            normwise   worst case                  elementwise ratio
 *     y      2.3e-7     l2_bi_p11_i13_h37_len       0.06
 *     hT     2.8e-7     l3_uni_p3_tf_len_noinit     0.18
 *     cT     1.8e-7     l2_bi_p3_bare_len           0.08
 *     dx     4.6e-7     l2_bi_p3_bare_len           0.22
 *     dh0    3.3e-7     l2_uni_p3_bf_full           0.16
 *     dc0    2.2e-7     l2_bi_p3_b1_len             0.09
 *     dW     3.7e-7     l2_uni_p3_nody              0.18
 *     db     3.4e-7     l2_bi_p11_i13_h37_len       0.13
 *     dW_hr  3.8e-7     l3_uni_p3_tf_len_noinit     0.20
 *     solo vs batch: 4.0e-7 of max (bound SOLO_TOL = 1e-6)
 *
 * The bounds sit about 6x above the worst of these and 3x inside the
 * requirement; a real defect (a wrong direction, a misplaced tensor, padding
 * read, a lost accumulation) gives errors of 1e-2 and up.
 */
#define NORM_TOL 3e-6
#define ELEM_RTOL 3e-6
#define ELEM_FLOOR 1.5e-6

/* Solo runs against the padded batch: |a - b| <= SOLO_TOL * max|b| per tensor. */
#define SOLO_TOL 1e-6

/* Written into output buffers before each call, to see what the library writes. */
#define SENTINEL (-7777.0f)

_Static_assert(LSTM_BIDIRECTIONAL == NETWORK_GOLDEN_BIDIRECTIONAL, "config flag values");
_Static_assert(LSTM_BATCH_FIRST == NETWORK_GOLDEN_BATCH_FIRST, "config flag values");

/* The golden files, as listed in CASES of tests/parity/gen_network_golden.py. */
static const char *const case_names[] = {
    "l1_uni_p0_tf_full",
    "l1_uni_p0_tf_len",
    "l1_uni_p0_bf_full_nofinal",
    "l1_uni_p0_bf_len",
    "l1_uni_p3_tf_full",
    "l1_uni_p3_tf_len_noinit",
    "l1_uni_p3_bf_full",
    "l1_uni_p3_bf_len",
    "l1_bi_p0_tf_full",
    "l1_bi_p0_tf_len",
    "l1_bi_p0_bf_full_nofinal",
    "l1_bi_p0_bf_len",
    "l1_bi_p3_tf_full",
    "l1_bi_p3_tf_len_noinit",
    "l1_bi_p3_bf_full",
    "l1_bi_p3_bf_len",
    "l2_uni_p0_tf_full",
    "l2_uni_p0_tf_len",
    "l2_uni_p0_bf_full_nofinal",
    "l2_uni_p0_bf_len",
    "l2_uni_p3_tf_full",
    "l2_uni_p3_tf_len_noinit",
    "l2_uni_p3_bf_full",
    "l2_uni_p3_bf_len",
    "l2_bi_p0_tf_full",
    "l2_bi_p0_tf_len",
    "l2_bi_p0_bf_full_nofinal",
    "l2_bi_p0_bf_len",
    "l2_bi_p3_tf_full",
    "l2_bi_p3_tf_len_noinit",
    "l2_bi_p3_bf_full",
    "l2_bi_p3_bf_len",
    "l3_uni_p0_tf_full",
    "l3_uni_p0_tf_len",
    "l3_uni_p0_bf_full_nofinal",
    "l3_uni_p0_bf_len",
    "l3_uni_p3_tf_full",
    "l3_uni_p3_tf_len_noinit",
    "l3_uni_p3_bf_full",
    "l3_uni_p3_bf_len",
    "l3_bi_p0_tf_full",
    "l3_bi_p0_tf_len",
    "l3_bi_p0_bf_full_nofinal",
    "l3_bi_p0_bf_len",
    "l3_bi_p3_tf_full",
    "l3_bi_p3_tf_len_noinit",
    "l3_bi_p3_bf_full",
    "l3_bi_p3_bf_len",
    "l2_bi_p3_len1635",
    "l2_bi_p3_len6111",
    "l3_uni_p0_len1161_bf",
    "l2_bi_p3_b1",
    "l2_bi_p3_b1_len",
    "l2_bi_p0_b1_len_bf",
    "l3_uni_p2_b1",
    "l2_bi_p3_t1",
    "l2_bi_p3_t1_len_bf",
    "l3_bi_p2_t1_b1",
    "l2_bi_p3_lenall",
    "l2_bi_p3_short_bf",
    "l2_bi_p0_h1",
    "l2_bi_p1_h2",
    "l2_bi_p3_partial",
    "l2_uni_p3_nody",
    "l2_bi_p3_bare_len",
    "l2_bi_p3_sat_len",
    "l2_uni_p8_h32_len",
    "l2_bi_p11_i13_h37_len",
    "l2_bi_p0_i7_h16_len_bf",
};
#define CASE_COUNT (sizeof case_names / sizeof case_names[0])

/* The case run sequence by sequence in test_solo_equals_batch. */
#define SOLO_CASE "l2_bi_p11_i13_h37_len"

/* ------------------------------------------------------------------------ */
/* Worst errors over the run, per tensor kind. */

typedef enum kind {
    KIND_Y,
    KIND_HT,
    KIND_CT,
    KIND_DX,
    KIND_DH0,
    KIND_DC0,
    KIND_DW,
    KIND_DB,
    KIND_DWHR,
    KIND_COUNT
} kind;

static const char *const kind_names[KIND_COUNT] = {"y",   "hT", "cT", "dx",   "dh0",
                                                   "dc0", "dW", "db", "dW_hr"};

typedef struct worst_entry {
    double norm, ratio;
    char norm_where[96], ratio_where[96];
} worst_entry;

static worst_entry worst[KIND_COUNT];
static double worst_solo;
static char worst_solo_where[96];

/* ------------------------------------------------------------------------ */
/* Test context: everything a test allocates, freed by the teardown. */

enum { MAX_ALLOCS = 64 };

typedef struct net_ctx {
    const char *name;
    network_golden gc;
    lstm_model *model;
    lstm_workspace *workspace;
    void *allocs[MAX_ALLOCS];
    size_t alloc_count;
    int report;
} net_ctx;

static void *ctx_alloc(net_ctx *ctx, size_t count, size_t size)
{
    void *p;
    assert_true(ctx->alloc_count < MAX_ALLOCS);
    p = calloc(count > 0 ? count : 1, size);
    assert_non_null(p);
    ctx->allocs[ctx->alloc_count++] = p;
    return p;
}

static float *ctx_floats(net_ctx *ctx, size_t count)
{
    return ctx_alloc(ctx, count, sizeof(float));
}

/* A float32 copy of a golden input (exact: the loader checked it); NULL stays NULL. */
static float *ctx_input(net_ctx *ctx, const double *src, size_t count)
{
    float *dst;
    if (src == NULL)
        return NULL;
    dst = ctx_floats(ctx, count);
    for (size_t k = 0; k < count; k++)
        dst[k] = (float)src[k];
    return dst;
}

static void fill_sentinel(float *p, size_t count)
{
    for (size_t k = 0; k < count; k++)
        p[k] = SENTINEL;
}

static void check_status(const net_ctx *ctx, const char *call, lstm_status st)
{
    if (st != LSTM_OK) {
        print_error("%s: %s failed: %s (%s)\n", ctx->name, call, lstm_strerror(st),
                    lstm_error_message());
        fail();
    }
}

/* ------------------------------------------------------------------------ */
/* Shapes, to print a failing index as coordinates. */

typedef enum shape_kind {
    SHAPE_X,       /* [T][B][I] or [B][T][I] */
    SHAPE_Y,       /* [T][B][D R] or [B][T][D R] */
    SHAPE_STATE_H, /* [L D][B][R] */
    SHAPE_STATE_C, /* [L D][B][H] */
    SHAPE_WEIGHT,  /* [4H][R + I_l] */
    SHAPE_BIAS,    /* [4H] */
    SHAPE_PROJ     /* [P][H] */
} shape_kind;

static const char *gate_name(size_t gate)
{
    static const char *const names[4] = {"i", "f", "g", "o"};
    return gate < 4 ? names[gate] : "?";
}

static int batch_first(const network_golden *gc)
{
    return (gc->config_flags & NETWORK_GOLDEN_BATCH_FIRST) != 0;
}

/* Index of element k of step t of sequence b in a sequence tensor of the case's layout. */
static size_t seq_index(const network_golden *gc, size_t t, size_t b, size_t width, size_t k)
{
    if (batch_first(gc))
        return (b * gc->seq_len + t) * width + k;
    return (t * gc->batch + b) * width + k;
}

static size_t seq_length(const network_golden *gc, size_t b)
{
    return gc->lengths != NULL ? gc->lengths[b] : gc->seq_len;
}

static void describe_seq(const network_golden *gc, size_t idx, size_t width, int is_y, char *buf,
                         size_t size)
{
    size_t k = idx % width, outer = idx / width, t, b;
    if (batch_first(gc)) {
        b = outer / gc->seq_len;
        t = outer % gc->seq_len;
    } else {
        t = outer / gc->batch;
        b = outer % gc->batch;
    }
    if (is_y && gc->directions == 2)
        snprintf(buf, size, "[t=%zu][b=%zu][%s %zu] (len %zu)", t, b,
                 k < gc->state_size ? "fwd" : "rev", k % gc->state_size, seq_length(gc, b));
    else
        snprintf(buf, size, "[t=%zu][b=%zu][%zu] (len %zu)", t, b, k, seq_length(gc, b));
}

static void describe_index(const network_golden *gc, shape_kind shape, size_t layer, size_t idx,
                           char *buf, size_t size)
{
    size_t H = gc->hidden_size, R = gc->state_size, B = gc->batch;
    switch (shape) {
    case SHAPE_X: describe_seq(gc, idx, gc->input_size, 0, buf, size); break;
    case SHAPE_Y: describe_seq(gc, idx, gc->directions * R, 1, buf, size); break;
    case SHAPE_STATE_H:
    case SHAPE_STATE_C: {
        size_t width = shape == SHAPE_STATE_H ? R : H;
        size_t ld = idx / (B * width);
        snprintf(buf, size, "[layer %zu %s][b=%zu][%zu]", ld / gc->directions,
                 ld % gc->directions == 0 ? "fwd" : "rev", idx / width % B, idx % width);
        break;
    }
    case SHAPE_WEIGHT: {
        size_t cols = R + network_golden_layer_input(gc, layer);
        size_t row = idx / cols, col = idx % cols;
        if (col < R)
            snprintf(buf, size, "[gate %s, unit %zu][h col %zu]", gate_name(row / H), row % H, col);
        else
            snprintf(buf, size, "[gate %s, unit %zu][x col %zu]", gate_name(row / H), row % H,
                     col - R);
        break;
    }
    case SHAPE_BIAS: snprintf(buf, size, "[gate %s, unit %zu]", gate_name(idx / H), idx % H); break;
    case SHAPE_PROJ: snprintf(buf, size, "[%zu][%zu]", idx / H, idx % H); break;
    }
}

/* ------------------------------------------------------------------------ */
/* Comparisons */

static void note_worst(kind which, const char *where, double norm, double ratio)
{
    worst_entry *w = &worst[which];
    if (norm > w->norm) {
        w->norm = norm;
        snprintf(w->norm_where, sizeof w->norm_where, "%s", where);
    }
    if (ratio > w->ratio) {
        w->ratio = ratio;
        snprintf(w->ratio_where, sizeof w->ratio_where, "%s", where);
    }
}

/*
 * Compare a float32 result with the float64 reference times @p scale (1 or
 * 2). Prints the worst offending element and returns 1 on failure.
 */
static int check_tensor(const net_ctx *ctx, const char *stage, kind which, const char *what,
                        shape_kind shape, size_t layer, const float *got, const double *want,
                        double scale, size_t count)
{
    double s = 0.0, worst_abs = 0.0, worst_ratio = 0.0, norm;
    size_t worst_abs_idx = 0, worst_ratio_idx = 0, elem_fail = 0, shown;
    char where[128], label[96];

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
    norm = s > 0.0 ? worst_abs / s : worst_abs;
    snprintf(label, sizeof label, "%s %s %s", ctx->name, stage, what);
    note_worst(which, label, norm, worst_ratio);
    if (ctx->report)
        printf("PARITY %-26s %-9s %-13s normwise %.3e elementwise %.3f (max|ref| %.3g)\n",
               ctx->name, stage, what, norm, worst_ratio, s);
    if (elem_fail == 0 && worst_abs <= NORM_TOL * s)
        return 0;
    /* Show the element furthest over its own bound, or else the largest error. */
    shown = elem_fail > 0 ? worst_ratio_idx : worst_abs_idx;
    describe_index(&ctx->gc, shape, layer, shown, where, sizeof where);
    print_error("%s: %s: %s%s (flat index %zu): got %.9g, want %.17g, |diff| %.3g; "
                "normwise %.3g (bound %.2g); %zu of %zu elements over "
                "|diff| <= %.2g*|want| + %.2g*max|want| (max|want| %.6g)\n",
                ctx->name, stage, what, where, shown, (double)got[shown], scale * want[shown],
                fabs((double)got[shown] - scale * want[shown]), norm, NORM_TOL, elem_fail, count,
                ELEM_RTOL, ELEM_FLOOR, s);
    return 1;
}

/* Bitwise equality of two float32 results that must come from the same arithmetic. */
static int check_identical(const net_ctx *ctx, const char *what, const float *a, const float *b,
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

/* A sequence tensor must be exactly zero past each sequence's end. */
static int check_padding_zero(const net_ctx *ctx, const char *what, shape_kind shape,
                              const float *p, size_t width)
{
    const network_golden *gc = &ctx->gc;
    for (size_t b = 0; b < gc->batch; b++) {
        for (size_t t = seq_length(gc, b); t < gc->seq_len; t++) {
            for (size_t k = 0; k < width; k++) {
                size_t idx = seq_index(gc, t, b, width, k);
                if (p[idx] != 0.0f) {
                    char where[128];
                    describe_index(gc, shape, 0, idx, where, sizeof where);
                    print_error("%s: %s%s is %.9g in the padding; must be exactly 0\n", ctx->name,
                                what, where, (double)p[idx]);
                    return 1;
                }
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Model */

static const char *const tensor_names[3] = {"W", "b", "W_hr"};

static size_t tensor_kinds(const network_golden *gc)
{
    return gc->proj_size > 0 ? 3 : 2;
}

/*
 * Check lstm_model_tensor() of every tensor against the layout rule, and
 * that the tensors tile [0, N) exactly. Returns the number of failures.
 */
static int check_layout(net_ctx *ctx)
{
    const network_golden *gc = &ctx->gc;
    unsigned char *covered = ctx_alloc(ctx, gc->param_count, 1);
    size_t offset, rows, cols, goffset, grows, gcols;
    int failures = 0;

    for (size_t l = 0; l < gc->num_layers; l++) {
        for (size_t d = 0; d < gc->directions; d++) {
            for (size_t t = 0; t < tensor_kinds(gc); t++) {
                check_status(
                    ctx, "lstm_model_tensor",
                    lstm_model_tensor(ctx->model, l, d, (lstm_tensor)t, &offset, &rows, &cols));
                assert_int_equal(network_golden_tensor(gc, l, d, (network_golden_tensor_kind)t,
                                                       &goffset, &grows, &gcols),
                                 0);
                if (offset != goffset || rows != grows || cols != gcols) {
                    print_error("%s: lstm_model_tensor(layer %zu, dir %zu, %s) = offset %zu, "
                                "%zu x %zu; the layout rule gives offset %zu, %zu x %zu\n",
                                ctx->name, l, d, tensor_names[t], offset, rows, cols, goffset,
                                grows, gcols);
                    failures++;
                    continue;
                }
                for (size_t k = 0; k < rows * cols; k++) {
                    assert_true(offset + k < gc->param_count);
                    if (covered[offset + k]++ != 0)
                        failures++;
                }
            }
        }
    }
    for (size_t k = 0; k < gc->param_count; k++) {
        if (covered[k] != 1) {
            print_error("%s: parameter %zu is covered by %u tensors\n", ctx->name, k,
                        (unsigned)covered[k]);
            failures++;
            break;
        }
    }
    /* Tensors the model does not have are refused. */
    assert_int_equal(
        lstm_model_tensor(ctx->model, gc->num_layers, 0, LSTM_TENSOR_WEIGHT, &offset, NULL, NULL),
        LSTM_E_ARG);
    assert_int_equal(
        lstm_model_tensor(ctx->model, 0, gc->directions, LSTM_TENSOR_BIAS, &offset, NULL, NULL),
        LSTM_E_ARG);
    if (gc->proj_size == 0)
        assert_int_equal(
            lstm_model_tensor(ctx->model, 0, 0, LSTM_TENSOR_PROJECTION, &offset, NULL, NULL),
            LSTM_E_ARG);
    return failures;
}

/* The model of a case, its parameters placed through lstm_model_tensor(). */
static void make_model(net_ctx *ctx)
{
    const network_golden *gc = &ctx->gc;
    lstm_config config;
    float *params;
    size_t count = 0;

    check_status(ctx, "lstm_config_init", lstm_config_init(&config, sizeof config));
    config.input_size = gc->input_size;
    config.hidden_size = gc->hidden_size;
    config.num_layers = gc->num_layers;
    config.flags = gc->config_flags;
    config.proj_size = gc->proj_size;
    check_status(ctx, "lstm_model_create", lstm_model_create(&config, &ctx->model));
    assert_int_equal(lstm_model_param_count(ctx->model), gc->param_count);
    assert_int_equal(check_layout(ctx), 0);

    params = ctx_floats(ctx, gc->param_count);
    for (size_t k = 0; k < gc->param_count; k++)
        params[k] = NAN; /* every element must be overwritten below */
    for (size_t l = 0; l < gc->num_layers; l++) {
        for (size_t d = 0; d < gc->directions; d++) {
            for (size_t t = 0; t < tensor_kinds(gc); t++) {
                size_t offset, rows, cols, goffset;
                check_status(
                    ctx, "lstm_model_tensor",
                    lstm_model_tensor(ctx->model, l, d, (lstm_tensor)t, &offset, &rows, &cols));
                assert_int_equal(network_golden_tensor(gc, l, d, (network_golden_tensor_kind)t,
                                                       &goffset, NULL, NULL),
                                 0);
                for (size_t k = 0; k < rows * cols; k++)
                    params[offset + k] = (float)gc->params[goffset + k];
                count += rows * cols;
            }
        }
    }
    assert_int_equal(count, gc->param_count);
    check_status(ctx, "lstm_model_set_params",
                 lstm_model_set_params(ctx->model, params, gc->param_count));
    check_status(ctx, "lstm_workspace_create", lstm_workspace_create(ctx->model, &ctx->workspace));
}

/*
 * Every parameter gradient tensor of the library's buffer (found through
 * lstm_model_tensor()) against the reference (by the layout rule) times scale.
 */
static int check_grads(const net_ctx *ctx, const char *stage, const float *grads,
                       const double *want, double scale)
{
    static const kind kinds[3] = {KIND_DW, KIND_DB, KIND_DWHR};
    static const shape_kind shapes[3] = {SHAPE_WEIGHT, SHAPE_BIAS, SHAPE_PROJ};
    const network_golden *gc = &ctx->gc;
    int failures = 0;

    for (size_t l = 0; l < gc->num_layers; l++) {
        for (size_t d = 0; d < gc->directions; d++) {
            for (size_t t = 0; t < tensor_kinds(gc); t++) {
                size_t offset, rows, cols, goffset;
                char what[48];
                check_status(
                    ctx, "lstm_model_tensor",
                    lstm_model_tensor(ctx->model, l, d, (lstm_tensor)t, &offset, &rows, &cols));
                assert_int_equal(network_golden_tensor(gc, l, d, (network_golden_tensor_kind)t,
                                                       &goffset, NULL, NULL),
                                 0);
                snprintf(what, sizeof what, "d%s l%zu %s", tensor_names[t], l,
                         d == 0 ? "fwd" : "rev");
                failures += check_tensor(ctx, stage, kinds[t], what, shapes[t], l, grads + offset,
                                         want + goffset, scale, rows * cols);
            }
        }
    }
    return failures;
}

/* ------------------------------------------------------------------------ */
/* Setup and teardown */

static int setup_case(void **state)
{
    net_ctx *ctx = calloc(1, sizeof *ctx);
    char path[1024];
    golden_status st;
    const char *report = getenv("PARITY_REPORT");

    if (ctx == NULL)
        return -1;
    ctx->name = *state;
    ctx->report = report != NULL && report[0] != '\0' && strcmp(report, "0") != 0;
    snprintf(path, sizeof path, "%s/%s.bin", GOLDEN_NETWORK_DIR, ctx->name);
    st = network_golden_load(path, &ctx->gc);
    if (st != GOLDEN_OK) {
        print_error("%s: cannot load: %s\n", path, golden_strerror(st));
        free(ctx);
        return -1;
    }
    *state = ctx;
    return 0;
}

static int teardown_case(void **state)
{
    net_ctx *ctx = *state;
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

/* ------------------------------------------------------------------------ */
/* One golden case */

typedef struct case_io {
    size_t xs, ys, hs, cs, np;
    const float *x, *h0, *c0, *dy, *dhT, *dcT;
} case_io;

static void case_inputs(net_ctx *ctx, case_io *io)
{
    const network_golden *gc = &ctx->gc;
    io->xs = network_golden_x_count(gc);
    io->ys = network_golden_y_count(gc);
    io->hs = network_golden_h_count(gc);
    io->cs = network_golden_c_count(gc);
    io->np = gc->param_count;
    /* float32 inputs; absent optional tensors stay NULL, as the API allows. */
    io->x = ctx_input(ctx, gc->x, io->xs);
    io->h0 = ctx_input(ctx, gc->h0, io->hs);
    io->c0 = ctx_input(ctx, gc->c0, io->cs);
    io->dy = ctx_input(ctx, gc->dy, io->ys);
    io->dhT = ctx_input(ctx, gc->dhT, io->hs);
    io->dcT = ctx_input(ctx, gc->dcT, io->cs);
}

static int check_forward(const net_ctx *ctx, const char *stage, const float *y, const float *hT,
                         const float *cT, const case_io *io)
{
    const network_golden *gc = &ctx->gc;
    int failures = 0;
    failures += check_tensor(ctx, stage, KIND_Y, "y", SHAPE_Y, 0, y, gc->y, 1.0, io->ys);
    failures += check_tensor(ctx, stage, KIND_HT, "hT", SHAPE_STATE_H, 0, hT, gc->hT, 1.0, io->hs);
    failures += check_tensor(ctx, stage, KIND_CT, "cT", SHAPE_STATE_C, 0, cT, gc->cT, 1.0, io->cs);
    failures += check_padding_zero(ctx, "y", SHAPE_Y, y, gc->directions * gc->state_size);
    return failures;
}

static int run_forward_checks(net_ctx *ctx, const case_io *io, float *y_tr, float *hT_tr,
                              float *cT_tr)
{
    const network_golden *gc = &ctx->gc;
    size_t T = gc->seq_len, B = gc->batch;
    float *y_inf = ctx_floats(ctx, io->ys), *hT_inf = ctx_floats(ctx, io->hs);
    float *cT_inf = ctx_floats(ctx, io->cs);
    int failures = 0;

    /* Inference. */
    fill_sentinel(y_inf, io->ys);
    fill_sentinel(hT_inf, io->hs);
    fill_sentinel(cT_inf, io->cs);
    check_status(ctx, "lstm_model_forward",
                 lstm_model_forward(ctx->model, ctx->workspace, T, B, gc->lengths, io->x, io->h0,
                                    io->c0, y_inf, hT_inf, cT_inf));
    failures += check_forward(ctx, "infer", y_inf, hT_inf, cT_inf, io);

    /* Training forward: same numbers as inference, to the bit. */
    fill_sentinel(y_tr, io->ys);
    fill_sentinel(hT_tr, io->hs);
    fill_sentinel(cT_tr, io->cs);
    check_status(ctx, "lstm_model_zero_grads", lstm_model_zero_grads(ctx->model));
    check_status(ctx, "lstm_model_forward_train",
                 lstm_model_forward_train(ctx->model, ctx->workspace, T, B, gc->lengths, io->x,
                                          io->h0, io->c0, y_tr, hT_tr, cT_tr));
    failures += check_forward(ctx, "train", y_tr, hT_tr, cT_tr, io);
    failures += check_identical(ctx, "y of inference vs training forward", y_inf, y_tr, io->ys);
    failures += check_identical(ctx, "hT of inference vs training forward", hT_inf, hT_tr, io->hs);
    failures += check_identical(ctx, "cT of inference vs training forward", cT_inf, cT_tr, io->cs);
    return failures;
}

static void test_case(void **state)
{
    net_ctx *ctx = *state;
    const network_golden *gc = &ctx->gc;
    size_t T = gc->seq_len, B = gc->batch;
    case_io io;
    float *y_tr, *hT_tr, *cT_tr, *dx, *dh0, *dc0, *grads, *grads_once, *dh0_nodx, *dc0_nodx;
    int failures = 0;

    case_inputs(ctx, &io);
    y_tr = ctx_floats(ctx, io.ys);
    hT_tr = ctx_floats(ctx, io.hs);
    cT_tr = ctx_floats(ctx, io.cs);
    dx = ctx_floats(ctx, io.xs);
    dh0 = ctx_floats(ctx, io.hs);
    dc0 = ctx_floats(ctx, io.cs);
    dh0_nodx = ctx_floats(ctx, io.hs);
    dc0_nodx = ctx_floats(ctx, io.cs);
    grads = ctx_floats(ctx, io.np);
    grads_once = ctx_floats(ctx, io.np);

    make_model(ctx);
    failures += run_forward_checks(ctx, &io, y_tr, hT_tr, cT_tr);

    /* Backward with every output, after the training forward above. */
    fill_sentinel(dx, io.xs);
    fill_sentinel(dh0, io.hs);
    fill_sentinel(dc0, io.cs);
    check_status(
        ctx, "lstm_model_backward",
        lstm_model_backward(ctx->model, ctx->workspace, io.dy, io.dhT, io.dcT, dx, dh0, dc0));
    check_status(ctx, "lstm_model_get_grads", lstm_model_get_grads(ctx->model, grads, io.np));
    failures += check_tensor(ctx, "backward", KIND_DX, "dx", SHAPE_X, 0, dx, gc->dx, 1.0, io.xs);
    failures += check_padding_zero(ctx, "dx", SHAPE_X, dx, gc->input_size);
    failures +=
        check_tensor(ctx, "backward", KIND_DH0, "dh0", SHAPE_STATE_H, 0, dh0, gc->dh0, 1.0, io.hs);
    failures +=
        check_tensor(ctx, "backward", KIND_DC0, "dc0", SHAPE_STATE_C, 0, dc0, gc->dc0, 1.0, io.cs);
    failures += check_grads(ctx, "backward", grads, gc->grads, 1.0);

    /* Backward without dx: the other gradients must not change. */
    check_status(ctx, "lstm_model_zero_grads", lstm_model_zero_grads(ctx->model));
    check_status(ctx, "lstm_model_forward_train (again)",
                 lstm_model_forward_train(ctx->model, ctx->workspace, T, B, gc->lengths, io.x,
                                          io.h0, io.c0, y_tr, hT_tr, cT_tr));
    check_status(ctx, "lstm_model_backward(dx=NULL)",
                 lstm_model_backward(ctx->model, ctx->workspace, io.dy, io.dhT, io.dcT, NULL,
                                     dh0_nodx, dc0_nodx));
    check_status(ctx, "lstm_model_get_grads", lstm_model_get_grads(ctx->model, grads_once, io.np));
    failures += check_tensor(ctx, "no-dx", KIND_DH0, "dh0", SHAPE_STATE_H, 0, dh0_nodx, gc->dh0,
                             1.0, io.hs);
    failures += check_tensor(ctx, "no-dx", KIND_DC0, "dc0", SHAPE_STATE_C, 0, dc0_nodx, gc->dc0,
                             1.0, io.cs);
    failures += check_grads(ctx, "no-dx", grads_once, gc->grads, 1.0);

    /* Two forward/backward pairs without zeroing accumulate twice the gradients. */
    check_status(ctx, "lstm_model_zero_grads", lstm_model_zero_grads(ctx->model));
    for (int pass = 0; pass < 2; pass++) {
        check_status(ctx, "lstm_model_forward_train (twice)",
                     lstm_model_forward_train(ctx->model, ctx->workspace, T, B, gc->lengths, io.x,
                                              io.h0, io.c0, NULL, NULL, NULL));
        check_status(ctx, "lstm_model_backward (twice)",
                     lstm_model_backward(ctx->model, ctx->workspace, io.dy, io.dhT, io.dcT, NULL,
                                         NULL, NULL));
    }
    check_status(ctx, "lstm_model_get_grads", lstm_model_get_grads(ctx->model, grads_once, io.np));
    failures += check_grads(ctx, "twice", grads_once, gc->grads, 2.0);

    assert_int_equal(failures, 0);
}

/* ------------------------------------------------------------------------ */
/* Each sequence alone against the padded batch */

/* |got - want| <= SOLO_TOL * max|want| over count elements; 1 on failure. */
static int check_close(const net_ctx *ctx, const char *what, const float *got, const float *want,
                       size_t count)
{
    double s = 0.0, worst_err = 0.0;
    size_t worst_idx = 0;
    for (size_t k = 0; k < count; k++)
        s = fmax(s, fabs((double)want[k]));
    for (size_t k = 0; k < count; k++) {
        double err = fabs((double)got[k] - (double)want[k]);
        if (!(err <= worst_err)) { /* also catches NaN */
            worst_err = err;
            worst_idx = k;
        }
    }
    if (s > 0.0 && worst_err / s > worst_solo) {
        worst_solo = worst_err / s;
        snprintf(worst_solo_where, sizeof worst_solo_where, "%s", what);
    }
    if (ctx->report)
        printf("SOLO   %-28s %.3e (max %.3g)\n", what, s > 0.0 ? worst_err / s : worst_err, s);
    if (worst_err <= SOLO_TOL * s)
        return 0;
    print_error("%s: %s[%zu]: alone %.9g, in the batch %.9g; |diff| %.3g > %.1g * max %.6g\n",
                ctx->name, what, worst_idx, (double)got[worst_idx], (double)want[worst_idx],
                worst_err, SOLO_TOL, s);
    return 1;
}

static int check_seq_close(const net_ctx *ctx, const char *tensor, size_t seq, const float *got,
                           const float *want, size_t count)
{
    char what[48];
    snprintf(what, sizeof what, "%s of sequence %zu", tensor, seq);
    return check_close(ctx, what, got, want, count);
}

/* Copy sequence b's first n steps of a [T][B][w] / [B][T][w] tensor to [n][1][w]. */
static void gather_seq(const network_golden *gc, const float *src, size_t b, size_t n, size_t width,
                       float *dst)
{
    for (size_t t = 0; t < n; t++)
        memcpy(dst + t * width, src + seq_index(gc, t, b, width, 0), width * sizeof *dst);
}

/* Copy batch row b of a [L D][B][w] state to [L D][1][w]. */
static void gather_state(const network_golden *gc, const float *src, size_t b, size_t width,
                         float *dst)
{
    size_t LD = gc->num_layers * gc->directions;
    for (size_t k = 0; k < LD; k++)
        memcpy(dst + k * width, src + (k * gc->batch + b) * width, width * sizeof *dst);
}

typedef struct solo_bufs {
    float *x, *h0, *c0, *dy, *dhT, *dcT;                         /* inputs of one sequence */
    float *y, *hT, *cT, *dx, *dh0, *dc0;                         /* its outputs */
    float *y_ref, *hT_ref, *cT_ref, *dx_ref, *dh0_ref, *dc0_ref; /* batch rows */
    float *y_inf;
} solo_bufs;

static void solo_alloc(net_ctx *ctx, solo_bufs *s)
{
    const network_golden *gc = &ctx->gc;
    size_t T = gc->seq_len, I = gc->input_size, Y = gc->directions * gc->state_size;
    size_t LD = gc->num_layers * gc->directions;
    size_t R = gc->state_size, H = gc->hidden_size;
    s->x = ctx_floats(ctx, T * I);
    s->dx = ctx_floats(ctx, T * I);
    s->dx_ref = ctx_floats(ctx, T * I);
    s->y = ctx_floats(ctx, T * Y);
    s->y_inf = ctx_floats(ctx, T * Y);
    s->y_ref = ctx_floats(ctx, T * Y);
    s->dy = ctx_floats(ctx, T * Y);
    s->h0 = ctx_floats(ctx, LD * R);
    s->hT = ctx_floats(ctx, LD * R);
    s->hT_ref = ctx_floats(ctx, LD * R);
    s->dhT = ctx_floats(ctx, LD * R);
    s->dh0 = ctx_floats(ctx, LD * R);
    s->dh0_ref = ctx_floats(ctx, LD * R);
    s->c0 = ctx_floats(ctx, LD * H);
    s->cT = ctx_floats(ctx, LD * H);
    s->cT_ref = ctx_floats(ctx, LD * H);
    s->dcT = ctx_floats(ctx, LD * H);
    s->dc0 = ctx_floats(ctx, LD * H);
    s->dc0_ref = ctx_floats(ctx, LD * H);
}

static int setup_solo(void **state)
{
    *state = (void *)(uintptr_t)SOLO_CASE;
    return setup_case(state);
}

static void test_solo_equals_batch(void **state)
{
    net_ctx *ctx = *state;
    const network_golden *gc = &ctx->gc;
    size_t T = gc->seq_len, B = gc->batch, I = gc->input_size, H = gc->hidden_size;
    size_t R = gc->state_size, Y = gc->directions * R;
    case_io io;
    solo_bufs s;
    float *y, *hT, *cT, *dx, *dh0, *dc0, *grads_batch, *grads_solo;
    int failures = 0;

    /* The case must have what this test slices. */
    assert_non_null(gc->lengths);
    assert_non_null(gc->h0);
    assert_non_null(gc->c0);
    assert_non_null(gc->dy);
    assert_non_null(gc->dhT);
    assert_non_null(gc->dcT);

    case_inputs(ctx, &io);
    y = ctx_floats(ctx, io.ys);
    hT = ctx_floats(ctx, io.hs);
    cT = ctx_floats(ctx, io.cs);
    dx = ctx_floats(ctx, io.xs);
    dh0 = ctx_floats(ctx, io.hs);
    dc0 = ctx_floats(ctx, io.cs);
    grads_batch = ctx_floats(ctx, io.np);
    grads_solo = ctx_floats(ctx, io.np);
    solo_alloc(ctx, &s);
    make_model(ctx);

    /* The padded batch. */
    check_status(ctx, "lstm_model_zero_grads", lstm_model_zero_grads(ctx->model));
    check_status(ctx, "lstm_model_forward_train",
                 lstm_model_forward_train(ctx->model, ctx->workspace, T, B, gc->lengths, io.x,
                                          io.h0, io.c0, y, hT, cT));
    check_status(
        ctx, "lstm_model_backward",
        lstm_model_backward(ctx->model, ctx->workspace, io.dy, io.dhT, io.dcT, dx, dh0, dc0));
    check_status(ctx, "lstm_model_get_grads", lstm_model_get_grads(ctx->model, grads_batch, io.np));

    /* Each sequence alone, T = its length, B = 1, no lengths; gradients accumulate. */
    check_status(ctx, "lstm_model_zero_grads", lstm_model_zero_grads(ctx->model));
    for (size_t b = 0; b < B; b++) {
        size_t n = gc->lengths[b];
        gather_seq(gc, io.x, b, n, I, s.x);
        gather_seq(gc, io.dy, b, n, Y, s.dy);
        gather_state(gc, io.h0, b, R, s.h0);
        gather_state(gc, io.c0, b, H, s.c0);
        gather_state(gc, io.dhT, b, R, s.dhT);
        gather_state(gc, io.dcT, b, H, s.dcT);
        check_status(ctx, "lstm_model_forward (solo)",
                     lstm_model_forward(ctx->model, ctx->workspace, n, 1, NULL, s.x, s.h0, s.c0,
                                        s.y_inf, NULL, NULL));
        check_status(ctx, "lstm_model_forward_train (solo)",
                     lstm_model_forward_train(ctx->model, ctx->workspace, n, 1, NULL, s.x, s.h0,
                                              s.c0, s.y, s.hT, s.cT));
        check_status(ctx, "lstm_model_backward (solo)",
                     lstm_model_backward(ctx->model, ctx->workspace, s.dy, s.dhT, s.dcT, s.dx,
                                         s.dh0, s.dc0));
        gather_seq(gc, y, b, n, Y, s.y_ref);
        gather_seq(gc, dx, b, n, I, s.dx_ref);
        gather_state(gc, hT, b, R, s.hT_ref);
        gather_state(gc, cT, b, H, s.cT_ref);
        gather_state(gc, dh0, b, R, s.dh0_ref);
        gather_state(gc, dc0, b, H, s.dc0_ref);
        failures += check_seq_close(ctx, "y (infer)", b, s.y_inf, s.y_ref, n * Y);
        failures += check_seq_close(ctx, "y", b, s.y, s.y_ref, n * Y);
        failures += check_seq_close(ctx, "hT", b, s.hT, s.hT_ref, io.hs / B);
        failures += check_seq_close(ctx, "cT", b, s.cT, s.cT_ref, io.cs / B);
        failures += check_seq_close(ctx, "dx", b, s.dx, s.dx_ref, n * I);
        failures += check_seq_close(ctx, "dh0", b, s.dh0, s.dh0_ref, io.hs / B);
        failures += check_seq_close(ctx, "dc0", b, s.dc0, s.dc0_ref, io.cs / B);
    }
    check_status(ctx, "lstm_model_get_grads", lstm_model_get_grads(ctx->model, grads_solo, io.np));
    for (size_t l = 0; l < gc->num_layers; l++) {
        for (size_t d = 0; d < gc->directions; d++) {
            for (size_t t = 0; t < tensor_kinds(gc); t++) {
                size_t offset, rows, cols;
                char what[48];
                check_status(
                    ctx, "lstm_model_tensor",
                    lstm_model_tensor(ctx->model, l, d, (lstm_tensor)t, &offset, &rows, &cols));
                snprintf(what, sizeof what, "summed d%s l%zu %s", tensor_names[t], l,
                         d == 0 ? "fwd" : "rev");
                failures +=
                    check_close(ctx, what, grads_solo + offset, grads_batch + offset, rows * cols);
            }
        }
    }
    assert_int_equal(failures, 0);
}

/* ------------------------------------------------------------------------ */
/* The loader */

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
    /* Small, with lengths and an odd batch (so with the padding word). */
    snprintf(path, sizeof path, "%s/%s.bin", GOLDEN_NETWORK_DIR, "l2_bi_p0_h1");
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
    assert_non_null(gc.lengths);
    assert_int_equal(gc.lengths[0], 3);
    assert_int_equal(gc.lengths[1], 1);
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
    assert_int_equal(network_golden_load(GOLDEN_NETWORK_DIR "/no-such-case.bin", &gc), GOLDEN_E_IO);
    assert_int_equal(network_golden_parse(NULL, 0, &gc), GOLDEN_E_ARG);
    free(copy);
    free(buf);
}

/* ------------------------------------------------------------------------ */

static int print_worst(void **state)
{
    (void)state;
    printf("Worst errors against PyTorch (normwise |a-b|_inf/|b|_inf, bound %.1g; "
           "elementwise ratio, bound 1):\n",
           NORM_TOL);
    for (size_t k = 0; k < KIND_COUNT; k++) {
        if (worst[k].norm_where[0] == '\0' && worst[k].ratio_where[0] == '\0')
            continue;
        printf("  %-6s normwise %.3e (%s)\n         elementwise %.3f (%s)\n", kind_names[k],
               worst[k].norm, worst[k].norm_where, worst[k].ratio, worst[k].ratio_where);
    }
    if (worst_solo_where[0] != '\0')
        printf("Solo vs batch: worst |a-b|/max|b| %.3e (%s), bound %.1g\n", worst_solo,
               worst_solo_where, SOLO_TOL);
    return 0;
}

int main(void)
{
    struct CMUnitTest tests[CASE_COUNT + 2];

    for (size_t k = 0; k < CASE_COUNT; k++) {
        tests[k].name = case_names[k];
        tests[k].test_func = test_case;
        tests[k].setup_func = setup_case;
        tests[k].teardown_func = teardown_case;
        tests[k].initial_state = (void *)(uintptr_t)case_names[k];
    }
    tests[CASE_COUNT] = (struct CMUnitTest)cmocka_unit_test_setup_teardown(
        test_solo_equals_batch, setup_solo, teardown_case);
    tests[CASE_COUNT].name = "padded batch equals each sequence run alone";
    tests[CASE_COUNT + 1] = (struct CMUnitTest)cmocka_unit_test(test_loader_rejects_damage);
    return _cmocka_run_group_tests("network_parity", tests, CASE_COUNT + 2, NULL, print_worst);
}
