/*
 * NaN and infinity: each rule of the policy in lstm/common.h, for NaN,
 * +infinity and -infinity alike.
 *
 *   - Inputs are refused at the door: every float input of every call that
 *     reads one (forward, training forward, chunk, stream, state, backward,
 *     set_params, dense forward and backward, sequence gather and its
 *     backward, the three losses, an optimizer state) gives
 *     LSTM_E_NONFINITE naming the array, no output written (outputs are
 *     filled with a sentinel first) and every handle unchanged (compared
 *     bit for bit). Model files holding NaN are test_io's.
 *   - Padding past a sequence's end is never read: NaN there changes
 *     nothing.
 *   - A NaN or infinite parameter written through a view propagates:
 *     forward succeeds with NaN outputs, the next call that checks its
 *     input (a dense forward, a loss) refuses them, backward succeeds with
 *     NaN gradients, and the optimizer refuses to step or clip on them,
 *     changing nothing. Restoring the parameter and zeroing the gradients
 *     lets training go on.
 *   - Saving refuses non-finite values: a NaN parameter gives
 *     LSTM_E_NONFINITE and writes nothing, to memory or disk. A finite
 *     gradient of 1e30, which would overflow Adam's second moment, is
 *     refused by the step, so the state stays finite and saves.
 *   - Large finite inputs (1e30) saturate the gates: outputs stay in [-1, 1].
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */

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
#include <unistd.h>

#include "lstm/lstm.h"

enum { I = 3, H = 4, L = 2, T = 5, B = 2, CLASSES = 3, PARAMS_MAX = 512 };

static const size_t lengths[B] = {T, 2};
static const float bad_values[] = {NAN, INFINITY, -INFINITY};
enum { BAD_VALUES = sizeof bad_values / sizeof bad_values[0] };

#define SENTINEL (-7777.0f)

/* ---- helpers -------------------------------------------------------------- */

static void fill(float *values, size_t count, uint32_t seed)
{
    uint32_t state = seed * 2654435761u + 3u;
    for (size_t k = 0; k < count; k++) {
        state = state * 1664525u + 1013904223u;
        values[k] = (float)(state >> 8) * 0x1p-23f - 1.0f;
    }
}

static void fill_sentinel(float *values, size_t count)
{
    for (size_t k = 0; k < count; k++)
        values[k] = SENTINEL;
}

static void expect_untouched(const float *values, size_t count, const char *what)
{
    for (size_t k = 0; k < count; k++)
        if (memcmp(&values[k], &(float){SENTINEL}, sizeof(float)) != 0)
            fail_msg("%s[%zu] was written by a call that failed", what, k);
}

/* The call failed with LSTM_E_NONFINITE and its message names the array. */
static void expect_refused(lstm_status status, const char *name)
{
    if (status != LSTM_E_NONFINITE || strstr(lstm_error_message(), name) == NULL)
        fail_msg("expected LSTM_E_NONFINITE about %s, got %d: %s", name, (int)status,
                 lstm_error_message());
}

static bool all_nan(const float *values, size_t count)
{
    for (size_t k = 0; k < count; k++)
        if (!isnan(values[k]))
            return false;
    return true;
}

static bool any_nonfinite(const float *values, size_t count)
{
    for (size_t k = 0; k < count; k++)
        if (!isfinite(values[k]))
            return true;
    return false;
}

/* Row of x, y or dy holding step t of sequence b (time-major). */
static size_t row(size_t t, size_t b)
{
    return t * B + b;
}

/* ---- the fixture ------------------------------------------------------------- */

typedef struct fixture {
    lstm_model *model;
    lstm_workspace *workspace;
    lstm_state *state;
    lstm_dense *dense;
    lstm_optim *optim; /* Adam over model and dense */
    size_t count;      /* the model's parameters */
    float x[T * B * I], h0[L * B * H], c0[L * B * H], dy[T * B * H];
    float y[T * B * H], hT[L * B * H], cT[L * B * H], dx[T * B * I];
    float grads_before[PARAMS_MAX], params_before[PARAMS_MAX];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    lstm_config config;
    lstm_optim_options options;
    float *params, *grads;
    size_t count;
    if (f == NULL || lstm_config_init(&config, sizeof config) != LSTM_OK)
        return -1;
    config.input_size = I;
    config.hidden_size = H;
    config.num_layers = L;
    if (lstm_model_create(&config, &f->model) != LSTM_OK ||
        lstm_model_init(f->model, 3, 0) != LSTM_OK ||
        lstm_workspace_create(f->model, &f->workspace) != LSTM_OK ||
        lstm_state_create(f->model, B, &f->state) != LSTM_OK ||
        lstm_dense_create(H, CLASSES, &f->dense) != LSTM_OK ||
        lstm_dense_init(f->dense, 4) != LSTM_OK ||
        lstm_optim_options_init(&options, sizeof options, LSTM_OPTIM_ADAM) != LSTM_OK ||
        lstm_optim_create(&options, &f->optim) != LSTM_OK ||
        lstm_optim_add_model(f->optim, f->model) != LSTM_OK ||
        lstm_dense_params(f->dense, &params, &count) != LSTM_OK ||
        lstm_dense_grads(f->dense, &grads, NULL) != LSTM_OK ||
        lstm_optim_add_buffer(f->optim, params, grads, count) != LSTM_OK)
        return -1;
    f->count = lstm_model_param_count(f->model);
    if (f->count > PARAMS_MAX)
        return -1;
    fill(f->x, T * B * I, 1);
    fill(f->h0, L * B * H, 2);
    fill(f->c0, L * B * H, 3);
    fill(f->dy, T * B * H, 4);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    lstm_optim_destroy(f->optim);
    lstm_dense_destroy(f->dense);
    lstm_state_destroy(f->state);
    lstm_workspace_destroy(f->workspace);
    lstm_model_destroy(f->model);
    free(f);
    return 0;
}

static void remember_model(fixture *f)
{
    assert_int_equal(lstm_model_get_params(f->model, f->params_before, f->count), LSTM_OK);
    assert_int_equal(lstm_model_get_grads(f->model, f->grads_before, f->count), LSTM_OK);
}

static void expect_model_unchanged(fixture *f)
{
    float now[PARAMS_MAX];
    assert_int_equal(lstm_model_get_params(f->model, now, f->count), LSTM_OK);
    assert_memory_equal(now, f->params_before, f->count * sizeof(float));
    assert_int_equal(lstm_model_get_grads(f->model, now, f->count), LSTM_OK);
    assert_memory_equal(now, f->grads_before, f->count * sizeof(float));
}

static void clear_outputs(fixture *f)
{
    fill_sentinel(f->y, T * B * H);
    fill_sentinel(f->hT, L * B * H);
    fill_sentinel(f->cT, L * B * H);
    fill_sentinel(f->dx, T * B * I);
}

static void expect_outputs_untouched(fixture *f)
{
    expect_untouched(f->y, T * B * H, "y");
    expect_untouched(f->hT, L * B * H, "hT");
    expect_untouched(f->cT, L * B * H, "cT");
    expect_untouched(f->dx, T * B * I, "dx");
}

/* ---- inputs ------------------------------------------------------------------ */

typedef lstm_status (*forward_fn)(const lstm_model *, lstm_workspace *, size_t, size_t,
                                  const size_t *, const float *, const float *, const float *,
                                  float *, float *, float *);

/* x (at a running step of the short sequence), h0 and c0 of a forward call. */
static void forward_refuses(fixture *f, forward_fn forward, float bad)
{
    float *inputs[] = {f->x, f->h0, f->c0};
    const char *names[] = {"x at step", "h0[", "c0["};
    const size_t places[] = {row(1, 1) * I + 2, B * H + 3, 5};
    for (size_t n = 0; n < 3; n++) {
        const float good = inputs[n][places[n]];
        inputs[n][places[n]] = bad;
        remember_model(f);
        clear_outputs(f);
        expect_refused(
            forward(f->model, f->workspace, T, B, lengths, f->x, f->h0, f->c0, f->y, f->hT, f->cT),
            names[n]);
        expect_outputs_untouched(f);
        expect_model_unchanged(f);
        inputs[n][places[n]] = good;
    }
}

static void test_forward_inputs(void **state)
{
    fixture *f = *state;
    for (size_t v = 0; v < BAD_VALUES; v++) {
        forward_refuses(f, lstm_model_forward, bad_values[v]);
        forward_refuses(f, lstm_model_forward_train, bad_values[v]);
        /* a failed training forward leaves nothing to go back through */
        assert_int_equal(
            lstm_model_backward(f->model, f->workspace, f->dy, NULL, NULL, NULL, NULL, NULL),
            LSTM_E_STATE);
    }
}

/*
 * With enough of x to split its placing across threads (T x B x I of
 * 65536 floats, at the 2 threads CMake sets), the first bad value in
 * (step, sequence) order is the one named, wherever the others lie: here
 * one in each half of the steps, and y is left untouched.
 */
static void test_first_bad_x_is_named(void **unused)
{
    (void)unused;
    enum { BIG_T = 64, BIG_B = 16, BIG_I = 64, BIG_H = 8 };
    lstm_config config;
    assert_int_equal(lstm_config_init(&config, sizeof config), LSTM_OK);
    config.input_size = BIG_I;
    config.hidden_size = BIG_H;
    lstm_model *model = NULL;
    lstm_workspace *workspace = NULL;
    assert_int_equal(lstm_model_create(&config, &model), LSTM_OK);
    assert_int_equal(lstm_model_init(model, 5, 0), LSTM_OK);
    assert_int_equal(lstm_workspace_create(model, &workspace), LSTM_OK);
    const size_t count = (size_t)BIG_T * BIG_B * BIG_I, outputs = (size_t)BIG_T * BIG_B * BIG_H;
    float *x = calloc(count, sizeof(float)), *y = malloc(outputs * sizeof(float));
    assert_true(x != NULL && y != NULL);
    for (size_t k = 0; k < outputs; k++)
        y[k] = SENTINEL;
    const size_t late = (50 * BIG_B + 3) * BIG_I + 7, early = (20 * BIG_B + 9) * BIG_I + 30;
    x[late] = NAN;
    x[early] = -INFINITY;
    const char *expected[] = {"x at step 20 of sequence 9, feature 30,",
                              "x at step 50 of sequence 3, feature 7,"};
    for (size_t k = 0; k < 2; k++) {
        expect_refused(
            lstm_model_forward(model, workspace, BIG_T, BIG_B, NULL, x, NULL, NULL, y, NULL, NULL),
            expected[k]);
        for (size_t j = 0; j < outputs; j++)
            assert_true(y[j] == SENTINEL);
        x[early] = 0.0f; /* the next round finds the late one */
    }
    x[late] = 0.0f;
    assert_int_equal(
        lstm_model_forward(model, workspace, BIG_T, BIG_B, NULL, x, NULL, NULL, y, NULL, NULL),
        LSTM_OK);
    free(x);
    free(y);
    lstm_workspace_destroy(workspace);
    lstm_model_destroy(model);
}

static void expect_state(fixture *f, const float *h, const float *c)
{
    float now_h[L * B * H], now_c[L * B * H];
    assert_int_equal(lstm_state_get(f->state, now_h, now_c), LSTM_OK);
    assert_memory_equal(now_h, h, sizeof now_h);
    assert_memory_equal(now_c, c, sizeof now_c);
}

static void test_stream_inputs(void **state)
{
    fixture *f = *state;
    assert_int_equal(lstm_state_set(f->state, f->h0, f->c0), LSTM_OK);
    for (size_t v = 0; v < BAD_VALUES; v++) {
        const float bad = bad_values[v];
        float h[L * B * H], c[L * B * H];
        memcpy(h, f->h0, sizeof h);
        memcpy(c, f->c0, sizeof c);
        h[7] = bad;
        expect_refused(lstm_state_set(f->state, h, NULL), "h[");
        c[7] = bad;
        expect_refused(lstm_state_set(f->state, f->h0, c), "c[");
        expect_state(f, f->h0, f->c0);

        f->x[row(2, 0) * I] = bad;
        clear_outputs(f);
        expect_refused(lstm_model_stream(f->model, f->state, T, f->x, f->y), "x at step");
        expect_refused(lstm_model_step(f->model, f->state, f->x + 2 * B * I, f->y), "x at step");
        remember_model(f);
        expect_refused(
            lstm_model_forward_train_chunk(f->model, f->workspace, f->state, T, f->x, f->y),
            "x at step");
        expect_model_unchanged(f);
        expect_outputs_untouched(f);
        expect_state(f, f->h0, f->c0);
        fill(f->x, T * B * I, 1);
    }
}

static void test_backward_inputs(void **state)
{
    fixture *f = *state;
    float dhT[L * B * H], dcT[L * B * H], dh0[L * B * H];
    fill(dhT, L * B * H, 5);
    fill(dcT, L * B * H, 6);
    assert_int_equal(lstm_model_forward_train(f->model, f->workspace, T, B, lengths, f->x, f->h0,
                                              f->c0, NULL, NULL, NULL),
                     LSTM_OK);
    for (size_t v = 0; v < BAD_VALUES; v++) {
        float *inputs[] = {f->dy, dhT, dcT};
        const char *names[] = {"dy at step", "dhT[", "dcT["};
        const size_t places[] = {row(1, 1) * H, 9, 0};
        for (size_t n = 0; n < 3; n++) {
            const float good = inputs[n][places[n]];
            inputs[n][places[n]] = bad_values[v];
            remember_model(f);
            clear_outputs(f);
            fill_sentinel(dh0, L * B * H);
            expect_refused(
                lstm_model_backward(f->model, f->workspace, f->dy, dhT, dcT, f->dx, dh0, NULL),
                names[n]);
            expect_outputs_untouched(f);
            expect_untouched(dh0, L * B * H, "dh0");
            expect_model_unchanged(f);
            inputs[n][places[n]] = good;
        }
    }
    /* The training forward is still there: a good backward succeeds. */
    assert_int_equal(lstm_model_backward(f->model, f->workspace, f->dy, dhT, dcT, f->dx, dh0, NULL),
                     LSTM_OK);
}

static void test_set_params_input(void **state)
{
    fixture *f = *state;
    float values[PARAMS_MAX];
    for (size_t v = 0; v < BAD_VALUES; v++) {
        remember_model(f);
        memcpy(values, f->params_before, f->count * sizeof(float));
        values[f->count - 1] = bad_values[v];
        expect_refused(lstm_model_set_params(f->model, values, f->count), "src[");
        expect_model_unchanged(f);
    }
}

static void test_head_inputs(void **state)
{
    fixture *f = *state;
    float x[B * H], dz[B * CLASSES], z[B * CLASSES], dx[B * H], grads_before[64], *grads;
    float last[B * H], dlast[B * H], dy[T * B * H], y[T * B * H];
    size_t count;
    assert_int_equal(lstm_dense_grads(f->dense, &grads, &count), LSTM_OK);
    assert_true(count <= 64);
    memcpy(grads_before, grads, count * sizeof(float));
    for (size_t v = 0; v < BAD_VALUES; v++) {
        const float bad = bad_values[v];
        fill(x, B * H, 7);
        fill(dz, B * CLASSES, 8);
        x[5] = bad;
        fill_sentinel(z, B * CLASSES);
        fill_sentinel(dx, B * H);
        expect_refused(lstm_dense_forward(f->dense, B, x, z), "x[");
        expect_refused(lstm_dense_backward(f->dense, B, x, dz, dx), "x[");
        fill(x, B * H, 7);
        dz[1] = bad;
        expect_refused(lstm_dense_backward(f->dense, B, x, dz, dx), "dz[");
        expect_untouched(z, B * CLASSES, "z");
        expect_untouched(dx, B * H, "dx");
        assert_memory_equal(grads, grads_before, count * sizeof(float));

        /* The gather reads each sequence's last valid row only. */
        fill(y, T * B * H, 9);
        y[row(T - 1, 1) * H] = bad; /* padding of sequence 1 (length 2) */
        fill_sentinel(last, B * H);
        assert_int_equal(lstm_sequence_last(T, B, H, 0, lengths, y, last), LSTM_OK);
        y[row(lengths[1] - 1, 1) * H + 2] = bad;
        fill_sentinel(last, B * H);
        expect_refused(lstm_sequence_last(T, B, H, 0, lengths, y, last), "y at the last step");
        expect_untouched(last, B * H, "last");
        fill(dlast, B * H, 10);
        dlast[3] = bad;
        fill_sentinel(dy, T * B * H);
        expect_refused(lstm_sequence_last_backward(T, B, H, 0, lengths, dlast, dy), "dlast[");
        expect_untouched(dy, T * B * H, "dy");
    }
}

static void test_loss_inputs(void **state)
{
    (void)state;
    const int32_t targets[B] = {0, 2};
    for (size_t v = 0; v < BAD_VALUES; v++) {
        float z[B * CLASSES], t[B * CLASSES], dz[B * CLASSES];
        double loss = -1.0;
        fill(z, B * CLASSES, 11);
        for (size_t k = 0; k < B * CLASSES; k++)
            t[k] = 0.25f;
        z[4] = bad_values[v];
        fill_sentinel(dz, B * CLASSES);
        expect_refused(lstm_loss_cross_entropy(B, CLASSES, z, targets, -1, &loss, dz), "logits[");
        expect_refused(lstm_loss_bce_with_logits(B * CLASSES, z, t, &loss, dz), "logits[");
        expect_refused(lstm_loss_mse(B * CLASSES, z, t, &loss, dz), "predictions[");
        fill(z, B * CLASSES, 11);
        t[2] = bad_values[v];
        expect_refused(lstm_loss_bce_with_logits(B * CLASSES, z, t, &loss, dz), "targets[");
        expect_refused(lstm_loss_mse(B * CLASSES, z, t, &loss, dz), "targets[");
        expect_untouched(dz, B * CLASSES, "dlogits");
        assert_true(loss == -1.0);
    }
}

static void test_optimizer_state_input(void **state)
{
    fixture *f = *state;
    size_t bytes;
    assert_int_equal(lstm_optim_state_size(f->optim, &bytes), LSTM_OK);
    unsigned char *saved = malloc(bytes), *changed = malloc(bytes), *after = malloc(bytes);
    assert_true(saved != NULL && changed != NULL && after != NULL);
    assert_int_equal(lstm_optim_save_state(f->optim, saved, bytes), LSTM_OK);
    for (size_t v = 0; v < BAD_VALUES; v++) {
        memcpy(changed, saved, bytes);
        /* the last value, written little-endian as the state is (lstm/optim.h) */
        uint32_t bits;
        memcpy(&bits, &bad_values[v], sizeof bits);
        for (size_t k = 0; k < sizeof bits; k++)
            changed[bytes - sizeof bits + k] = (unsigned char)(bits >> (8 * k));
        expect_refused(lstm_optim_load_state(f->optim, changed, bytes), "state value");
        assert_int_equal(lstm_optim_save_state(f->optim, after, bytes), LSTM_OK);
        assert_memory_equal(after, saved, bytes);
    }
    free(saved);
    free(changed);
    free(after);
}

static void test_padding_is_never_read(void **state)
{
    fixture *f = *state;
    float y_clean[T * B * H], dx_clean[T * B * I];
    /* clean: zeros in the padding of sequence 1 (steps 2 .. T-1) */
    for (size_t t = lengths[1]; t < T; t++) {
        memset(f->x + row(t, 1) * I, 0, I * sizeof(float));
        memset(f->dy + row(t, 1) * H, 0, H * sizeof(float));
    }
    assert_int_equal(lstm_model_forward_train(f->model, f->workspace, T, B, lengths, f->x, NULL,
                                              NULL, y_clean, NULL, NULL),
                     LSTM_OK);
    assert_int_equal(
        lstm_model_backward(f->model, f->workspace, f->dy, NULL, NULL, dx_clean, NULL, NULL),
        LSTM_OK);
    for (size_t v = 0; v < BAD_VALUES; v++) {
        for (size_t t = lengths[1]; t < T; t++) {
            f->x[row(t, 1) * I + 1] = bad_values[v];
            f->dy[row(t, 1) * H + 2] = bad_values[v];
        }
        assert_int_equal(lstm_model_forward_train(f->model, f->workspace, T, B, lengths, f->x, NULL,
                                                  NULL, f->y, NULL, NULL),
                         LSTM_OK);
        assert_int_equal(
            lstm_model_backward(f->model, f->workspace, f->dy, NULL, NULL, f->dx, NULL, NULL),
            LSTM_OK);
        assert_memory_equal(f->y, y_clean, sizeof y_clean);
        assert_memory_equal(f->dx, dx_clean, sizeof dx_clean);
    }
}

/* ---- parameters and gradients ------------------------------------------------- */

static void test_bad_parameter_propagates_and_stops_at_the_optimizer(void **state)
{
    fixture *f = *state;
    float *params, good_params[PARAMS_MAX], z[T * B * CLASSES];
    size_t count;
    uint64_t steps = 0;
    assert_int_equal(lstm_model_params(f->model, &params, &count), LSTM_OK);
    memcpy(good_params, params, count * sizeof(float));
    for (size_t v = 0; v < BAD_VALUES; v++) {
        assert_int_equal(lstm_optim_zero_grads(f->optim), LSTM_OK);
        params[0] = bad_values[v]; /* layer 0, W_i, the weight of h_{t-1}[0] */

        /* Forward succeeds; from the second step on, every output is NaN. */
        assert_int_equal(lstm_model_forward_train(f->model, f->workspace, T, B, NULL, f->x, NULL,
                                                  NULL, f->y, NULL, NULL),
                         LSTM_OK);
        assert_true(all_nan(f->y + row(1, 0) * H, (T - 1) * B * H));
        /* The next call that checks its input refuses it. */
        expect_refused(lstm_dense_forward(f->dense, T * B, f->y, z), "x[");
        /* Backward succeeds, with non-finite gradients... */
        assert_int_equal(
            lstm_model_backward(f->model, f->workspace, f->dy, NULL, NULL, NULL, NULL, NULL),
            LSTM_OK);
        remember_model(f);
        assert_true(any_nonfinite(f->grads_before, count));
        /* ... which the optimizer will neither apply nor clip. */
        expect_refused(lstm_optim_step(f->optim), "gradient");
        expect_refused(lstm_optim_clip_grad_norm(f->optim, 1.0, NULL), "gradient norm");
        expect_refused(lstm_optim_clip_grad_value(f->optim, 1.0), "gradient");
        expect_model_unchanged(f);
        assert_int_equal(lstm_optim_step_count(f->optim, &steps), LSTM_OK);
        assert_int_equal(steps, 0);
    }
    /* Restore the parameter, zero the gradients, and training goes on. */
    assert_int_equal(lstm_model_set_params(f->model, good_params, count), LSTM_OK);
    assert_int_equal(lstm_optim_zero_grads(f->optim), LSTM_OK);
    assert_int_equal(lstm_model_forward_train(f->model, f->workspace, T, B, NULL, f->x, NULL, NULL,
                                              NULL, NULL, NULL),
                     LSTM_OK);
    assert_int_equal(
        lstm_model_backward(f->model, f->workspace, f->dy, NULL, NULL, NULL, NULL, NULL), LSTM_OK);
    assert_int_equal(lstm_optim_step(f->optim), LSTM_OK);
    assert_false(any_nonfinite(params, count));
}

static void test_bad_dense_parameter_stops_at_the_loss(void **state)
{
    fixture *f = *state;
    float *params, x[B * H], z[B * CLASSES], dz[B * CLASSES];
    const int32_t targets[B] = {1, 2};
    double loss;
    size_t count;
    assert_int_equal(lstm_dense_params(f->dense, &params, &count), LSTM_OK);
    fill(x, B * H, 12);
    for (size_t v = 0; v < BAD_VALUES; v++) {
        const float good = params[count - 1];
        params[count - 1] = bad_values[v]; /* the last bias */
        assert_int_equal(lstm_dense_forward(f->dense, B, x, z), LSTM_OK);
        assert_true(!isfinite(z[CLASSES - 1]) && !isfinite(z[2 * CLASSES - 1]));
        expect_refused(lstm_loss_cross_entropy(B, CLASSES, z, targets, -1, &loss, dz), "logits[");
        params[count - 1] = good;
    }
}

/* ---- saving --------------------------------------------------------------------- */

static void test_saving_refuses_nonfinite(void **state)
{
    fixture *f = *state;
    float *params, good;
    size_t count, size = 12345;
    unsigned char buffer[64];
    char directory[] = "/tmp/lstm-nonfinite-XXXXXX", path[64];
    assert_non_null(mkdtemp(directory));
    snprintf(path, sizeof path, "%s/model.lstm", directory);
    assert_int_equal(lstm_model_params(f->model, &params, &count), LSTM_OK);
    good = params[7];
    for (size_t v = 0; v < BAD_VALUES; v++) {
        params[7] = bad_values[v];
        memset(buffer, 0xA5, sizeof buffer);
        expect_refused(lstm_model_save_buffer(f->model, NULL, NULL, 0, &size), "parameters[");
        expect_refused(lstm_model_save_buffer(f->model, NULL, buffer, sizeof buffer, &size),
                       "parameters[");
        assert_int_equal(size, 12345);
        for (size_t k = 0; k < sizeof buffer; k++)
            assert_int_equal(buffer[k], 0xA5);
        expect_refused(lstm_model_save(f->model, NULL, path), "parameters[");
        assert_int_equal(access(path, F_OK), -1);
    }
    params[7] = good;

    /* A finite gradient of 1e30 would overflow Adam's second moment (d^2
     * in float): the step is refused, nothing changes, and the model and
     * its optimizer state still save (issue 21). */
    float *grads;
    assert_int_equal(lstm_model_grads(f->model, &grads, NULL), LSTM_OK);
    for (size_t k = 0; k < count; k++)
        grads[k] = 1e30f;
    remember_model(f);
    expect_refused(lstm_optim_step(f->optim), "would make parameter 0");
    expect_model_unchanged(f);
    assert_int_equal(lstm_model_save(f->model, f->optim, path), LSTM_OK);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(directory), 0);
}

/* ---- overflow ------------------------------------------------------------------- */

static void test_large_finite_inputs_saturate(void **state)
{
    fixture *f = *state;
    for (size_t k = 0; k < T * B * I; k++)
        f->x[k] = k % 2 == 0 ? 1e30f : -1e30f;
    assert_int_equal(lstm_model_forward(f->model, f->workspace, T, B, NULL, f->x, NULL, NULL, f->y,
                                        f->hT, f->cT),
                     LSTM_OK);
    for (size_t k = 0; k < T * B * H; k++)
        assert_true(f->y[k] >= -1.0f && f->y[k] <= 1.0f);
    assert_false(any_nonfinite(f->cT, L * B * H));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_forward_inputs, setup, teardown),
        cmocka_unit_test(test_first_bad_x_is_named),
        cmocka_unit_test_setup_teardown(test_stream_inputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backward_inputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_params_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_inputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loss_inputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_optimizer_state_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_padding_is_never_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_parameter_propagates_and_stops_at_the_optimizer,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_dense_parameter_stops_at_the_loss, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_saving_refuses_nonfinite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_finite_inputs_saturate, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
