/*
 * Training in bf16 (lstm_workspace_set_training_precision()), through the
 * public API:
 *
 *   - The scheme: one layer's y, final states and every gradient (dx, dh0,
 *     dc0, dW, db) agree with this file's emulation of what lstm/train.h
 *     documents, written from the text: every product's two operands
 *     rounded to bf16 (W and S_t = [h_{t-1}, x_t] for the gates; dA_t and
 *     W for [dh_{t-1}, dx_t]; dA and S for dW), sums, cells and db in
 *     double. The library is EMULATION_TOLERANCE from it, an order of
 *     magnitude closer than to the unrounded reference, which a scheme
 *     that left any one product in float32 (or rounded only one operand)
 *     would be as close to as the library is to the emulation.
 *   - The accuracy: against the double-precision reference
 *     (tests/support/reference.c) each of those tensors, and W_hr's and
 *     the peepholes' gradients, stays within BF16_TOLERANCE (relative L2);
 *     float32 training within FP32_TOLERANCE on the same data, and bf16
 *     is further than BF16_FLOOR from it (so the products did round).
 *   - Every feature of training runs in it, close to float32's gradients:
 *     two bidirectional layers with projection and peepholes, variable
 *     lengths, dropout's masks; its training forward gives the bits of
 *     bf16 inference; one and two threads give the same bits.
 *   - The precision's rules: float32 stays the default and bit for bit
 *     what it was; a change of precision drops the training forward held
 *     (backward then LSTM_E_STATE); int8, other values and NULL refused.
 *
 * Convergence on the adding problem and the language model against
 * float32 is the examples' (--train-precision, docs/precision.md).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lstm/lstm.h"
#include "reference.h"
#include "test_precision_support.h"
#include "test_rng.h"

#define check(call) \
  do { \
    const lstm_status status_ = (call); \
    if (status_ != LSTM_OK) \
      fail_msg("%s: %s", #call, lstm_error_message()); \
  } while (0)

/* Relative L2 bounds; the measured values are printed by each test. */
#define EMULATION_TOLERANCE 1e-5
#define BF16_TOLERANCE 1e-2
#define BF16_FLOOR 1e-4
#define FP32_TOLERANCE 1e-5
#define FEATURES_TOLERANCE 1e-2

typedef struct shape {
    size_t steps, batch, input, hidden, layers, proj;
    uint32_t flags;
    double dropout;
} shape;

static lstm_model *model_new(shape z, uint64_t seed)
{
    lstm_config config;
    check(lstm_config_init(&config, sizeof config));
    config.input_size = z.input;
    config.hidden_size = z.hidden;
    config.num_layers = z.layers > 0 ? z.layers : 1;
    config.proj_size = z.proj;
    config.flags = z.flags;
    config.dropout = z.dropout;
    lstm_model *model = NULL;
    check(lstm_model_create(&config, &model));
    check(lstm_model_init(model, seed, 0));
    return model;
}

/* N(0, 1) times scale */
static float *gaussian(size_t count, uint64_t seed, double scale)
{
    float *v = test_gaussian(count, seed, scale);
    assert_non_null(v);
    return v;
}

static double relative_l2(const float *v, const double *reference, size_t count)
{
    double error = 0.0, norm = 0.0;
    for (size_t i = 0; i < count; i++) {
        error += (v[i] - reference[i]) * (v[i] - reference[i]);
        norm += reference[i] * reference[i];
    }
    return sqrt(error / (norm > 0.0 ? norm : 1.0));
}

static double relative_l2_float(const float *v, const float *reference, size_t count)
{
    double error = 0.0, norm = 0.0;
    for (size_t i = 0; i < count; i++) {
        error += ((double)v[i] - reference[i]) * ((double)v[i] - reference[i]);
        norm += (double)reference[i] * reference[i];
    }
    return sqrt(error / (norm > 0.0 ? norm : 1.0));
}

static double *widen(const float *v, size_t count)
{
    double *d = malloc((count + 1) * sizeof *d);
    assert_non_null(d);
    for (size_t i = 0; i < count; i++)
        d[i] = v[i];
    return d;
}

/* What one training step gives: the forward's outputs, the input
 * gradients and the model's gradient buffer. */
typedef struct step_result {
    float *y, *hT, *cT, *dx, *dh0, *dc0, *grads;
    size_t y_count, state_count, cell_count, x_count, param_count;
} step_result;

static void step_result_free(step_result *r)
{
    free(r->y);
    free(r->hT);
    free(r->cT);
    free(r->dx);
    free(r->dh0);
    free(r->dc0);
    free(r->grads);
}

/* Everything a step reads: x, h0, c0 and the loss's gradients. */
typedef struct step_data {
    const float *x, *h0, *c0, *dy, *dhT, *dcT;
    const size_t *lengths;
} step_data;

static size_t state_size(shape z)
{
    return z.proj != 0 ? z.proj : z.hidden;
}

static size_t directions(shape z)
{
    return z.flags & LSTM_BIDIRECTIONAL ? 2 : 1;
}

/* A training forward and backward in the precision on a new workspace
 * (or on `workspace` when given), gradients from zero. */
static step_result train_step(lstm_model *model, lstm_workspace *workspace,
                              lstm_precision precision, shape z, const step_data *data)
{
    const size_t L = z.layers > 0 ? z.layers : 1, D = directions(z), R = state_size(z);
    step_result r = {0};
    r.y_count = z.steps * z.batch * D * R;
    r.state_count = L * D * z.batch * R;
    r.cell_count = L * D * z.batch * z.hidden;
    r.x_count = z.steps * z.batch * z.input;
    r.param_count = lstm_model_param_count(model);
    r.y = malloc(r.y_count * sizeof *r.y);
    r.hT = malloc(r.state_count * sizeof *r.hT);
    r.cT = malloc(r.cell_count * sizeof *r.cT);
    r.dx = malloc(r.x_count * sizeof *r.dx);
    r.dh0 = malloc(r.state_count * sizeof *r.dh0);
    r.dc0 = malloc(r.cell_count * sizeof *r.dc0);
    r.grads = malloc(r.param_count * sizeof *r.grads);
    assert_true(r.y && r.hT && r.cT && r.dx && r.dh0 && r.dc0 && r.grads);

    lstm_workspace *own = NULL;
    if (workspace == NULL) {
        check(lstm_workspace_create(model, &own));
        workspace = own;
    }
    check(lstm_workspace_set_training_precision(workspace, precision));
    check(lstm_workspace_set_seed(workspace, 7));
    check(lstm_model_zero_grads(model));
    const lstm_sequences sequences = {sizeof sequences, z.steps, z.batch, LSTM_LAYOUT_MODEL,
                                      data->lengths};
    const lstm_inputs inputs = {sizeof inputs, data->x, data->h0, data->c0};
    const lstm_outputs outputs = {sizeof outputs, r.y, r.hT, r.cT};
    check(lstm_model_train_forward(model, workspace, &sequences, &inputs, &outputs));
    const lstm_output_grads output_grads = {sizeof output_grads, data->dy, data->dhT, data->dcT};
    const lstm_input_grads input_grads = {sizeof input_grads, r.dx, r.dh0, r.dc0};
    check(lstm_model_train_backward(model, workspace, &output_grads, &input_grads));
    float *grads = NULL;
    size_t count = 0;
    check(lstm_model_grads(model, &grads, &count));
    memcpy(r.grads, grads, r.param_count * sizeof *r.grads);
    lstm_workspace_destroy(own);
    return r;
}

/* Random x, states and loss gradients for the shape. */
typedef struct step_inputs {
    float *x, *h0, *c0, *dy, *dhT, *dcT;
} step_inputs;

static step_inputs inputs_new(shape z, uint64_t seed)
{
    const size_t L = z.layers > 0 ? z.layers : 1, D = directions(z), R = state_size(z);
    const size_t states = L * D * z.batch;
    return (step_inputs){
        gaussian(z.steps * z.batch * z.input, seed, 1.0),
        gaussian(states * R, seed + 1, 0.5),
        gaussian(states * z.hidden, seed + 2, 0.5),
        gaussian(z.steps * z.batch * D * R, seed + 3, 1.0),
        gaussian(states * R, seed + 4, 1.0),
        gaussian(states * z.hidden, seed + 5, 1.0),
    };
}

static void inputs_free(step_inputs *in)
{
    free(in->x);
    free(in->h0);
    free(in->c0);
    free(in->dy);
    free(in->dhT);
    free(in->dcT);
}

static step_data data_of(const step_inputs *in, const size_t *lengths)
{
    return (step_data){in->x, in->h0, in->c0, in->dy, in->dhT, in->dcT, lengths};
}

/* ---- the emulation of lstm/train.h's bf16 scheme: one layer ---- */

static double bf(double v)
{
    return test_bf16((float)v);
}

static double sigmoid(double v)
{
    return 1.0 / (1.0 + exp(-v));
}

/*
 * One layer without projection or peepholes, time-major, every sequence
 * running every step: the forward and backward passes with each product's
 * operands rounded to bf16 (bf()), everything else in double. Outputs as
 * the reference's: y [T][B][H], hT, cT, dx [T][B][I], dh0, dc0, dW [4H][K],
 * db [4H].
 */
typedef struct emulated {
    double *y, *hT, *cT, *dx, *dh0, *dc0, *dW, *db;
} emulated;

static emulated emulate(size_t T, size_t B, size_t I, size_t H, const float *W, const float *b,
                        const step_data *data)
{
    const size_t G = 4 * H, K = H + I;
    emulated e = {calloc(T * B * H, 8), calloc(B * H, 8), calloc(B * H, 8), calloc(T * B * I, 8),
                  calloc(B * H, 8),     calloc(B * H, 8), calloc(G * K, 8), calloc(G, 8)};
    double *S = calloc(T * B * K, 8), *gates = calloc(T * B * G, 8);
    double *c = calloc((T + 1) * B * H, 8); /* c_0, then c_t */
    double *dh = calloc(B * H, 8), *dc = calloc(B * H, 8), *da = calloc(G, 8);
    assert_true(e.y && e.dW && S && gates && c && dh && dc && da);
    for (size_t n = 0; n < B * H; n++)
        c[n] = data->c0[n];
    for (size_t t = 0; t < T; t++) {
        for (size_t n = 0; n < B; n++) {
            double *s = S + (t * B + n) * K, *a = gates + (t * B + n) * G;
            for (size_t j = 0; j < H; j++)
                s[j] = t == 0 ? data->h0[n * H + j] : e.y[((t - 1) * B + n) * H + j];
            for (size_t k = 0; k < I; k++)
                s[H + k] = data->x[(t * B + n) * I + k];
            /* a = b + bf(W) bf(s) */
            for (size_t r = 0; r < G; r++) {
                double sum = 0.0;
                for (size_t k = 0; k < K; k++)
                    sum += bf(W[r * K + k]) * bf(s[k]);
                a[r] = b[r] + sum;
            }
            const double *c_prev = c + (t * B + n) * H;
            double *c_t = c + ((t + 1) * B + n) * H;
            for (size_t j = 0; j < H; j++) {
                const double i = sigmoid(a[j]), f = sigmoid(a[H + j]), g = tanh(a[2 * H + j]);
                const double o = sigmoid(a[3 * H + j]);
                a[j] = i;
                a[H + j] = f;
                a[2 * H + j] = g;
                a[3 * H + j] = o;
                c_t[j] = f * c_prev[j] + i * g;
                e.y[(t * B + n) * H + j] = o * tanh(c_t[j]);
            }
        }
    }
    for (size_t n = 0; n < B * H; n++) {
        e.hT[n] = e.y[((T - 1) * B) * H + n];
        e.cT[n] = c[T * B * H + n];
        dh[n] = data->dhT[n];
        dc[n] = data->dcT[n];
    }
    for (size_t t = T; t-- > 0;) {
        for (size_t n = 0; n < B; n++) {
            const double *a = gates + (t * B + n) * G, *s = S + (t * B + n) * K;
            const double *c_prev = c + (t * B + n) * H, *c_t = c + ((t + 1) * B + n) * H;
            for (size_t j = 0; j < H; j++) {
                const double i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j];
                const double d_h = dh[n * H + j] + data->dy[(t * B + n) * H + j];
                const double tanh_c = tanh(c_t[j]);
                const double d_c = dc[n * H + j] + d_h * o * (1.0 - tanh_c * tanh_c);
                da[j] = d_c * g * i * (1.0 - i);
                da[H + j] = d_c * c_prev[j] * f * (1.0 - f);
                da[2 * H + j] = d_c * i * (1.0 - g * g);
                da[3 * H + j] = d_h * tanh_c * o * (1.0 - o);
                dc[n * H + j] = d_c * f;
            }
            /* [dh_{t-1}, dx_t] = bf(dA) bf(W); dW += bf(dA)^T bf(S); db += dA */
            for (size_t k = 0; k < K; k++) {
                double sum = 0.0;
                for (size_t r = 0; r < G; r++)
                    sum += bf(da[r]) * bf(W[r * K + k]);
                if (k < H)
                    dh[n * H + k] = sum;
                else
                    e.dx[(t * B + n) * I + k - H] = sum;
            }
            for (size_t r = 0; r < G; r++) {
                for (size_t k = 0; k < K; k++)
                    e.dW[r * K + k] += bf(da[r]) * bf(s[k]);
                e.db[r] += da[r];
            }
        }
    }
    memcpy(e.dh0, dh, B * H * sizeof *dh);
    memcpy(e.dc0, dc, B * H * sizeof *dc);
    free(S);
    free(gates);
    free(c);
    free(dh);
    free(dc);
    free(da);
    return e;
}

static void emulated_free(emulated *e)
{
    double **all[] = {&e->y, &e->hT, &e->cT, &e->dx, &e->dh0, &e->dc0, &e->dW, &e->db};
    for (size_t n = 0; n < sizeof all / sizeof all[0]; n++)
        free(*all[n]);
}

static void test_scheme_is_the_documented_one(void **state)
{
    (void)state;
    const shape z = {12, 5, 40, 48, 1, 0, 0, 0.0};
    const size_t T = z.steps, B = z.batch, I = z.input, H = z.hidden, G = 4 * H, K = H + I;
    lstm_model *model = model_new(z, 3);
    step_inputs in = inputs_new(z, 30);
    const step_data data = data_of(&in, NULL);
    size_t w_at, b_at, rows, cols;
    check(lstm_model_tensor(model, 0, 0, LSTM_TENSOR_WEIGHT, &w_at, &rows, &cols));
    check(lstm_model_tensor(model, 0, 0, LSTM_TENSOR_BIAS, &b_at, &rows, &cols));
    float *params = NULL;
    size_t count = 0;
    check(lstm_model_params(model, &params, &count));
    emulated e = emulate(T, B, I, H, params + w_at, params + b_at, &data);

    /* the unrounded reference, on the same float values */
    double *W = widen(params + w_at, G * K), *bias = widen(params + b_at, G);
    double *x = widen(in.x, T * B * I), *h0 = widen(in.h0, B * H), *c0 = widen(in.c0, B * H);
    double *dy = widen(in.dy, T * B * H), *dhT = widen(in.dhT, B * H), *dcT = widen(in.dcT, B * H);
    double *y = malloc(T * B * H * 8), *hT = malloc(B * H * 8), *cT = malloc(B * H * 8);
    double *dx = malloc(T * B * I * 8), *dh0 = malloc(B * H * 8), *dc0 = malloc(B * H * 8);
    double *dW = malloc(G * K * 8), *db = malloc(G * 8);
    assert_int_equal(ref_forward(T, B, I, H, W, bias, x, h0, c0, y, hT, cT, NULL), 0);
    assert_int_equal(
        ref_backward(T, B, I, H, W, bias, x, h0, c0, NULL, dy, dhT, dcT, dx, dh0, dc0, dW, db), 0);

    step_result r = train_step(model, NULL, LSTM_PRECISION_BF16, z, &data);
    const struct {
        const char *name;
        const float *library;
        const double *emulated, *reference;
        size_t count;
    } tensors[] = {
        {"y", r.y, e.y, y, T * B * H},           {"hT", r.hT, e.hT, hT, B * H},
        {"cT", r.cT, e.cT, cT, B * H},           {"dx", r.dx, e.dx, dx, T * B * I},
        {"dh0", r.dh0, e.dh0, dh0, B * H},       {"dc0", r.dc0, e.dc0, dc0, B * H},
        {"dW", r.grads + w_at, e.dW, dW, G * K}, {"db", r.grads + b_at, e.db, db, G},
    };
    for (size_t n = 0; n < sizeof tensors / sizeof tensors[0]; n++) {
        const double to_emulation =
            relative_l2(tensors[n].library, tensors[n].emulated, tensors[n].count);
        const double to_reference =
            relative_l2(tensors[n].library, tensors[n].reference, tensors[n].count);
        printf("bf16 training %-3s: %.2e from the emulation, %.2e from the reference\n",
               tensors[n].name, to_emulation, to_reference);
        assert_true(to_emulation < EMULATION_TOLERANCE);
        assert_true(to_emulation * 100.0 < to_reference);
    }
    step_result_free(&r);
    emulated_free(&e);
    double *all[] = {W, bias, x, h0, c0, dy, dhT, dcT, y, hT, cT, dx, dh0, dc0, dW, db};
    for (size_t n = 0; n < sizeof all / sizeof all[0]; n++)
        free(all[n]);
    inputs_free(&in);
    lstm_model_destroy(model);
}

/* The tensors of one layer and direction as the reference's doubles. */
static double *tensor_of(lstm_model *model, lstm_tensor tensor, size_t *count)
{
    size_t at, rows, cols;
    check(lstm_model_tensor(model, 0, 0, tensor, &at, &rows, &cols));
    float *params = NULL;
    size_t total = 0;
    check(lstm_model_params(model, &params, &total));
    *count = rows * cols;
    return widen(params + at, rows * cols);
}

static const float *grad_of(lstm_model *model, const step_result *r, lstm_tensor tensor)
{
    size_t at, rows, cols;
    check(lstm_model_tensor(model, 0, 0, tensor, &at, &rows, &cols));
    return r->grads + at;
}

static void test_accuracy_with_peepholes_and_projection(void **state)
{
    (void)state;
    const shape z = {10, 4, 24, 40, 1, 24, LSTM_PEEPHOLE, 0.0};
    const size_t T = z.steps, B = z.batch, I = z.input, H = z.hidden, R = z.proj, G = 4 * H;
    lstm_model *model = model_new(z, 5);
    /* peepholes large enough to matter */
    size_t at, rows, cols, total;
    float *params = NULL;
    check(lstm_model_params(model, &params, &total));
    check(lstm_model_tensor(model, 0, 0, LSTM_TENSOR_PEEPHOLE, &at, &rows, &cols));
    float *peep = gaussian(3 * H, 50, 0.3);
    memcpy(params + at, peep, 3 * H * sizeof *peep);
    free(peep);
    step_inputs in = inputs_new(z, 60);
    const step_data data = data_of(&in, NULL);

    size_t n_w, n_b, n_p, n_hr;
    double *W = tensor_of(model, LSTM_TENSOR_WEIGHT, &n_w),
           *b = tensor_of(model, LSTM_TENSOR_BIAS, &n_b);
    double *p = tensor_of(model, LSTM_TENSOR_PEEPHOLE, &n_p);
    double *Whr = tensor_of(model, LSTM_TENSOR_PROJECTION, &n_hr);
    const struct ref_layer layer = {T, B, I, H, R, W, b, p, Whr};
    double *x = widen(in.x, T * B * I), *h0 = widen(in.h0, B * R), *c0 = widen(in.c0, B * H);
    double *dy = widen(in.dy, T * B * R), *dhT = widen(in.dhT, B * R), *dcT = widen(in.dcT, B * H);
    double *y = malloc(T * B * R * 8), *hT = malloc(B * R * 8), *cT = malloc(B * H * 8);
    double *dx = malloc(T * B * I * 8), *dh0 = malloc(B * R * 8), *dc0 = malloc(B * H * 8);
    double *dW = malloc(n_w * 8), *db = malloc(G * 8), *dp = malloc(3 * H * 8);
    double *dWhr = malloc(n_hr * 8);
    assert_int_equal(ref_forward_ex(&layer, x, h0, c0, y, hT, cT, NULL), 0);
    assert_int_equal(
        ref_backward_ex(&layer, x, h0, c0, NULL, dy, dhT, dcT, dx, dh0, dc0, dW, db, dp, dWhr), 0);

    for (int bf16 = 0; bf16 < 2; bf16++) {
        step_result r =
            train_step(model, NULL, bf16 ? LSTM_PRECISION_BF16 : LSTM_PRECISION_FP32, z, &data);
        const struct {
            const char *name;
            const float *library;
            const double *reference;
            size_t count;
        } tensors[] = {
            {"y", r.y, y, T * B * R},
            {"hT", r.hT, hT, B * R},
            {"cT", r.cT, cT, B * H},
            {"dx", r.dx, dx, T * B * I},
            {"dh0", r.dh0, dh0, B * R},
            {"dc0", r.dc0, dc0, B * H},
            {"dW", grad_of(model, &r, LSTM_TENSOR_WEIGHT), dW, n_w},
            {"db", grad_of(model, &r, LSTM_TENSOR_BIAS), db, G},
            {"dp", grad_of(model, &r, LSTM_TENSOR_PEEPHOLE), dp, 3 * H},
            {"dWhr", grad_of(model, &r, LSTM_TENSOR_PROJECTION), dWhr, n_hr},
        };
        for (size_t n = 0; n < sizeof tensors / sizeof tensors[0]; n++) {
            const double error =
                relative_l2(tensors[n].library, tensors[n].reference, tensors[n].count);
            printf("%s training %-4s: %.2e from the reference\n", bf16 ? "bf16" : "fp32",
                   tensors[n].name, error);
            if (bf16)
                assert_true(error < BF16_TOLERANCE && error > BF16_FLOOR);
            else
                assert_true(error < FP32_TOLERANCE);
        }
        step_result_free(&r);
    }
    double *all[] = {W, b,  p,  Whr, x,   h0,  c0, dy, dhT, dcT,
                     y, hT, cT, dx,  dh0, dc0, dW, db, dp,  dWhr};
    for (size_t n = 0; n < sizeof all / sizeof all[0]; n++)
        free(all[n]);
    inputs_free(&in);
    lstm_model_destroy(model);
}

/* Every output and gradient of two steps, within FEATURES_TOLERANCE. */
static void check_close(const step_result *bf16, const step_result *fp32)
{
    const struct {
        const char *name;
        const float *a, *b;
        size_t count;
    } parts[] = {
        {"y", bf16->y, fp32->y, fp32->y_count},
        {"hT", bf16->hT, fp32->hT, fp32->state_count},
        {"cT", bf16->cT, fp32->cT, fp32->cell_count},
        {"dx", bf16->dx, fp32->dx, fp32->x_count},
        {"dh0", bf16->dh0, fp32->dh0, fp32->state_count},
        {"dc0", bf16->dc0, fp32->dc0, fp32->cell_count},
        {"grads", bf16->grads, fp32->grads, fp32->param_count},
    };
    for (size_t n = 0; n < sizeof parts / sizeof parts[0]; n++) {
        const double error = relative_l2_float(parts[n].a, parts[n].b, parts[n].count);
        printf("every feature, bf16 against fp32 %-5s: %.2e\n", parts[n].name, error);
        assert_true(error < FEATURES_TOLERANCE && error > BF16_FLOOR);
    }
}

static void test_every_feature_runs(void **state)
{
    (void)state;
    /* two bidirectional layers with projection and peepholes, dropout
     * between them, variable lengths */
    const shape z = {15, 6, 20, 32, 2, 16, LSTM_BIDIRECTIONAL | LSTM_PEEPHOLE, 0.25};
    const size_t lengths[] = {15, 3, 9, 15, 1, 12};
    lstm_model *model = model_new(z, 8);
    step_inputs in = inputs_new(z, 80);
    /* no gradient flows in from past a sequence's end */
    const size_t out_cols = 2 * z.proj;
    for (size_t t = 0; t < z.steps; t++)
        for (size_t b = 0; b < z.batch; b++)
            if (t >= lengths[b])
                memset(in.dy + (t * z.batch + b) * out_cols, 0, out_cols * sizeof(float));
    const step_data data = data_of(&in, lengths);
    step_result fp32 = train_step(model, NULL, LSTM_PRECISION_FP32, z, &data);
    step_result bf16 = train_step(model, NULL, LSTM_PRECISION_BF16, z, &data);
    check_close(&bf16, &fp32);
    /* y and dx are zero past each sequence's end */
    for (size_t t = 0; t < z.steps; t++) {
        for (size_t b = 0; b < z.batch; b++) {
            if (t < lengths[b])
                continue;
            for (size_t j = 0; j < out_cols; j++)
                assert_true(bf16.y[(t * z.batch + b) * out_cols + j] == 0.0f);
            for (size_t j = 0; j < z.input; j++)
                assert_true(bf16.dx[(t * z.batch + b) * z.input + j] == 0.0f);
        }
    }
    step_result_free(&fp32);
    step_result_free(&bf16);
    inputs_free(&in);
    lstm_model_destroy(model);
}

/* The training forward in bf16 gives bf16 inference's bits; one and two
 * threads give the same bits of everything. */
static void test_same_bits_every_way(void **state)
{
    (void)state;
    const shape z = {10, 16, 64, 128, 2, 0, 0, 0.0};
    lstm_model *model = model_new(z, 9);
    step_inputs in = inputs_new(z, 90);
    const step_data data = data_of(&in, NULL);
    test_set_blas_threads(1);
    step_result one = train_step(model, NULL, LSTM_PRECISION_BF16, z, &data);
    test_set_blas_threads(2);
    step_result two = train_step(model, NULL, LSTM_PRECISION_BF16, z, &data);
    assert_memory_equal(one.y, two.y, one.y_count * sizeof(float));
    assert_memory_equal(one.dx, two.dx, one.x_count * sizeof(float));
    assert_memory_equal(one.dh0, two.dh0, one.state_count * sizeof(float));
    assert_memory_equal(one.dc0, two.dc0, one.cell_count * sizeof(float));
    assert_memory_equal(one.grads, two.grads, one.param_count * sizeof(float));

    float *y = malloc(one.y_count * sizeof *y);
    lstm_workspace *workspace = NULL;
    check(lstm_workspace_create(model, &workspace));
    check(lstm_workspace_set_precision(workspace, LSTM_PRECISION_BF16));
    const lstm_sequences sequences = {sizeof sequences, z.steps, z.batch, LSTM_LAYOUT_MODEL, NULL};
    const lstm_inputs inputs = {sizeof inputs, in.x, in.h0, in.c0};
    const lstm_outputs outputs = {sizeof outputs, y, NULL, NULL};
    check(lstm_model_infer(model, workspace, &sequences, &inputs, &outputs));
    assert_memory_equal(one.y, y, one.y_count * sizeof *y);
    lstm_workspace_destroy(workspace);
    free(y);
    step_result_free(&one);
    step_result_free(&two);
    inputs_free(&in);
    lstm_model_destroy(model);
}

static void test_rules(void **state)
{
    (void)state;
    const shape z = {6, 3, 8, 16, 1, 0, 0, 0.0};
    lstm_model *model = model_new(z, 11);
    step_inputs in = inputs_new(z, 110);
    const step_data data = data_of(&in, NULL);
    lstm_workspace *workspace = NULL;
    check(lstm_workspace_create(model, &workspace));

    /* float32 is the default, and back to it is what it was */
    step_result fresh = train_step(model, NULL, LSTM_PRECISION_FP32, z, &data);
    check(lstm_workspace_set_training_precision(workspace, LSTM_PRECISION_BF16));
    step_result back = train_step(model, workspace, LSTM_PRECISION_FP32, z, &data);
    assert_memory_equal(fresh.y, back.y, fresh.y_count * sizeof(float));
    assert_memory_equal(fresh.dx, back.dx, fresh.x_count * sizeof(float));
    assert_memory_equal(fresh.grads, back.grads, fresh.param_count * sizeof(float));

    /* a change of precision drops the training forward held; setting the
     * same one again does not */
    const lstm_sequences sequences = {sizeof sequences, z.steps, z.batch, LSTM_LAYOUT_MODEL, NULL};
    const lstm_inputs inputs = {sizeof inputs, in.x, NULL, NULL};
    const lstm_outputs outputs = {sizeof outputs, fresh.y, NULL, NULL};
    const lstm_output_grads output_grads = {sizeof output_grads, in.dy, NULL, NULL};
    const lstm_input_grads input_grads = {sizeof input_grads, NULL, NULL, NULL};
    check(lstm_model_train_forward(model, workspace, &sequences, &inputs, &outputs));
    check(lstm_workspace_set_training_precision(workspace, LSTM_PRECISION_FP32));
    check(lstm_model_train_backward(model, workspace, &output_grads, &input_grads));
    check(lstm_model_train_forward(model, workspace, &sequences, &inputs, &outputs));
    check(lstm_workspace_set_training_precision(workspace, LSTM_PRECISION_BF16));
    assert_int_equal(lstm_model_train_backward(model, workspace, &output_grads, &input_grads),
                     LSTM_E_STATE);

    /* refusals, the precision left as it was */
    assert_int_equal(lstm_workspace_set_training_precision(workspace, LSTM_PRECISION_INT8),
                     LSTM_E_ARG);
    assert_non_null(strstr(lstm_error_message(), "inference only"));
    assert_int_equal(lstm_workspace_set_training_precision(workspace, (lstm_precision)7),
                     LSTM_E_ARG);
    assert_int_equal(lstm_workspace_set_training_precision(NULL, LSTM_PRECISION_BF16), LSTM_E_NULL);
    check(lstm_model_train_forward(model, workspace, &sequences, &inputs, &outputs));
    check(lstm_model_train_backward(model, workspace, &output_grads, &input_grads));

    step_result_free(&fresh);
    step_result_free(&back);
    lstm_workspace_destroy(workspace);
    inputs_free(&in);
    lstm_model_destroy(model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scheme_is_the_documented_one),
        cmocka_unit_test(test_accuracy_with_peepholes_and_projection),
        cmocka_unit_test(test_every_feature_runs),
        cmocka_unit_test(test_same_bits_every_way),
        cmocka_unit_test(test_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
