/*
 * The output head (lstm/head.h): the dense layer, the last-step gather and
 * the three losses against PyTorch (tests/parity/golden/head/head_golden.h, from
 * tests/parity/gen_head_golden.py), an LSTM + dense head + cross-entropy trained
 * end to end with the library's Adam, and every function's refusal of bad
 * input without touching its outputs.
 *
 * Tolerances: a loss within 1e-6 relative of torch's float64 value, a
 * tensor within 1e-6 of its largest reference magnitude. The worst errors
 * met are printed at the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lstm/lstm.h"
#include "lstm/head.h"

#include "golden/head/head_golden.h"
#include "test_rng.h"

#define LOSS_TOLERANCE 1e-6
#define TENSOR_TOLERANCE 1e-6
#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

/* Worst errors met, by kind, for the summary. */
static double worst_dense, worst_ce_loss, worst_ce_grad, worst_bce_loss, worst_bce_grad,
    worst_mse_loss, worst_mse_grad, worst_last;

/* max |got - ref| / max |ref| (absolute when ref is all zero). */
static double tensor_error(const float *got, const float *ref, size_t count)
{
    double scale = 0.0, worst = 0.0;
    for (size_t k = 0; k < count; k++) {
        double magnitude = fabs((double)ref[k]);
        scale = magnitude > scale ? magnitude : scale;
    }
    for (size_t k = 0; k < count; k++) {
        double diff = fabs((double)got[k] - (double)ref[k]);
        worst = diff > worst ? diff : worst;
    }
    return scale > 0.0 ? worst / scale : worst;
}

static void check_tensor(const char *what, const char *name, const float *got, const float *ref,
                         size_t count, double *worst)
{
    double error = tensor_error(got, ref, count);
    if (error > *worst)
        *worst = error;
    if (!(error <= TENSOR_TOLERANCE))
        fail_msg("%s %s: error %.3g of max|ref| exceeds %.1g", name, what, error, TENSOR_TOLERANCE);
}

static void check_loss(const char *name, double got, double ref, double *worst)
{
    double error = fabs(got - ref) / (fabs(ref) > 0.0 ? fabs(ref) : 1.0);
    if (error > *worst)
        *worst = error;
    if (!(error <= LOSS_TOLERANCE))
        fail_msg("%s loss %.17g, torch %.17g: relative error %.3g", name, got, ref, error);
}

static void *checked_malloc(size_t bytes)
{
    void *block = malloc(bytes);
    assert_non_null(block);
    return block;
}

/* ---- PyTorch parity ---- */

static void test_dense_parity(void **unused)
{
    (void)unused;
    for (size_t n = 0; n < COUNT(head_dense_cases); n++) {
        const struct head_dense_case *c = &head_dense_cases[n];
        const size_t I = c->in_features, O = c->out_features, rows = c->rows;
        lstm_dense *dense = NULL;
        assert_int_equal(lstm_dense_create(I, O, &dense), LSTM_OK);
        assert_int_equal(lstm_dense_param_count(dense), O * I + O);
        float *params, *grads;
        size_t count = 0;
        assert_int_equal(lstm_dense_params(dense, &params, &count), LSTM_OK);
        assert_int_equal(count, O * I + O);
        assert_int_equal(lstm_dense_grads(dense, &grads, NULL), LSTM_OK);
        memcpy(params, c->W, O * I * sizeof(float));
        memcpy(params + O * I, c->b, O * sizeof(float));

        float *z = checked_malloc(rows * O * sizeof(float));
        float *dx = checked_malloc(rows * I * sizeof(float));
        assert_int_equal(lstm_dense_forward(dense, rows, c->x, z), LSTM_OK);
        check_tensor("z", c->name, z, c->z, rows * O, &worst_dense);
        assert_int_equal(lstm_dense_backward(dense, rows, c->x, c->dz, dx), LSTM_OK);
        check_tensor("dx", c->name, dx, c->dx, rows * I, &worst_dense);
        check_tensor("dW", c->name, grads, c->dW, O * I, &worst_dense);
        check_tensor("db", c->name, grads + O * I, c->db, O, &worst_dense);

        /* Gradients accumulate; dx may be skipped. */
        assert_int_equal(lstm_dense_backward(dense, rows, c->x, c->dz, NULL), LSTM_OK);
        float *twice = checked_malloc(count * sizeof(float));
        for (size_t k = 0; k < O * I; k++)
            twice[k] = 2.0f * c->dW[k];
        for (size_t k = 0; k < O; k++)
            twice[O * I + k] = 2.0f * c->db[k];
        check_tensor("2 dW, 2 db", c->name, grads, twice, count, &worst_dense);
        assert_int_equal(lstm_dense_zero_grads(dense), LSTM_OK);
        for (size_t k = 0; k < count; k++)
            assert_true(grads[k] == 0.0f);
        free(twice);
        free(z);
        free(dx);
        lstm_dense_destroy(dense);
    }
}

static void test_cross_entropy_parity(void **unused)
{
    (void)unused;
    for (size_t n = 0; n < COUNT(head_ce_cases); n++) {
        const struct head_ce_case *c = &head_ce_cases[n];
        const size_t elements = c->rows * c->classes;
        float *dlogits = checked_malloc(elements * sizeof(float));
        double loss = -1.0, loss_only = -2.0;
        assert_int_equal(lstm_loss_cross_entropy(c->rows, c->classes, c->logits, c->targets,
                                                 c->ignore_index, &loss, dlogits),
                         LSTM_OK);
        check_loss(c->name, loss, c->loss, &worst_ce_loss);
        check_tensor("dlogits", c->name, dlogits, c->dlogits, elements, &worst_ce_grad);
        assert_int_equal(lstm_loss_cross_entropy(c->rows, c->classes, c->logits, c->targets,
                                                 c->ignore_index, &loss_only, NULL),
                         LSTM_OK);
        assert_true(loss_only == loss);
        free(dlogits);
    }
}

static void test_bce_parity(void **unused)
{
    (void)unused;
    for (size_t n = 0; n < COUNT(head_bce_cases); n++) {
        const struct head_pointwise_case *c = &head_bce_cases[n];
        float *grad = checked_malloc(c->count * sizeof(float));
        double loss = -1.0, loss_only = -2.0;
        assert_int_equal(lstm_loss_bce_with_logits(c->count, c->inputs, c->targets, &loss, grad),
                         LSTM_OK);
        check_loss(c->name, loss, c->loss, &worst_bce_loss);
        check_tensor("dlogits", c->name, grad, c->dinputs, c->count, &worst_bce_grad);
        assert_int_equal(
            lstm_loss_bce_with_logits(c->count, c->inputs, c->targets, &loss_only, NULL), LSTM_OK);
        assert_true(loss_only == loss);
        free(grad);
    }
}

static void test_mse_parity(void **unused)
{
    (void)unused;
    for (size_t n = 0; n < COUNT(head_mse_cases); n++) {
        const struct head_pointwise_case *c = &head_mse_cases[n];
        float *grad = checked_malloc(c->count * sizeof(float));
        double loss = -1.0, loss_only = -2.0;
        assert_int_equal(lstm_loss_mse(c->count, c->inputs, c->targets, &loss, grad), LSTM_OK);
        check_loss(c->name, loss, c->loss, &worst_mse_loss);
        check_tensor("dpredictions", c->name, grad, c->dinputs, c->count, &worst_mse_grad);
        assert_int_equal(lstm_loss_mse(c->count, c->inputs, c->targets, &loss_only, NULL), LSTM_OK);
        assert_true(loss_only == loss);
        free(grad);
    }
}

static void test_sequence_last_parity(void **unused)
{
    (void)unused;
    for (size_t n = 0; n < COUNT(head_last_cases); n++) {
        const struct head_last_case *c = &head_last_cases[n];
        const size_t all = c->seq_len * c->batch * c->features, out = c->batch * c->features;
        const uint32_t flags = c->batch_first ? LSTM_BATCH_FIRST : 0u;
        float *last = checked_malloc(out * sizeof(float));
        float *dy = checked_malloc(all * sizeof(float));
        for (size_t k = 0; k < all; k++)
            dy[k] = 12345.0f; /* every element must be written */
        assert_int_equal(
            lstm_sequence_last(c->seq_len, c->batch, c->features, flags, c->lengths, c->y, last),
            LSTM_OK);
        check_tensor("last", c->name, last, c->last, out, &worst_last);
        assert_memory_equal(last, c->last, out * sizeof(float)); /* a copy: exact */
        assert_int_equal(lstm_sequence_last_backward(c->seq_len, c->batch, c->features, flags,
                                                     c->lengths, c->dlast, dy),
                         LSTM_OK);
        check_tensor("dy", c->name, dy, c->dy, all, &worst_last);
        assert_memory_equal(dy, c->dy, all * sizeof(float));
        free(last);
        free(dy);
    }
}

/* ---- Behaviour beyond the golden cases ---- */

static void test_cross_entropy_all_ignored(void **unused)
{
    (void)unused;
    const float logits[6] = {1.0f, 2.0f, 3.0f, -1.0f, 0.5f, 0.25f};
    const int32_t targets[2] = {7, 7};
    float dlogits[6];
    for (size_t k = 0; k < 6; k++)
        dlogits[k] = 99.0f;
    double loss = -1.0;
    assert_int_equal(lstm_loss_cross_entropy(2, 3, logits, targets, 7, &loss, dlogits), LSTM_OK);
    assert_true(loss == 0.0);
    for (size_t k = 0; k < 6; k++)
        assert_true(dlogits[k] == 0.0f);
}

static void test_dense_init(void **unused)
{
    (void)unused;
    const size_t I = 9, O = 4;
    lstm_dense *dense = NULL;
    assert_int_equal(lstm_dense_create(I, O, &dense), LSTM_OK);
    float *params;
    size_t count;
    assert_int_equal(lstm_dense_params(dense, &params, &count), LSTM_OK);
    for (size_t k = 0; k < count; k++)
        assert_true(params[k] == 0.0f);
    assert_int_equal(lstm_dense_init(dense, 42), LSTM_OK);
    const float bound = (float)(1.0 / sqrt((double)I));
    rng r = {42}; /* the stream of lstm_model_init() */
    for (size_t k = 0; k < count; k++) {
        float expected = (2.0f * rng_unit(&r) - 1.0f) * bound;
        assert_true(params[k] == expected);
        assert_true(params[k] >= -bound && params[k] < bound);
    }
    lstm_dense_destroy(dense);
    lstm_dense_destroy(NULL);
    assert_int_equal(lstm_dense_param_count(NULL), 0);
}

/* ---- End to end: LSTM + dense head on the last step + cross-entropy ---- */

enum {
    E2E_INPUT = 2,
    E2E_HIDDEN = 12,
    E2E_SEQ = 8,
    E2E_BATCH = 24,
    E2E_CLASSES = 3,
    E2E_STEPS = 40
};

/* Class c's inputs are noise around a mean vector; lengths vary. */
static void e2e_make(float *x, size_t *lengths, int32_t *targets)
{
    static const float means[E2E_CLASSES][E2E_INPUT] = {{0.6f, 0.0f}, {-0.6f, 0.0f}, {0.0f, 0.6f}};
    rng r = {UINT64_C(2718281828)};
    for (size_t b = 0; b < E2E_BATCH; b++) {
        targets[b] = (int32_t)(b % E2E_CLASSES);
        lengths[b] = 3 + (size_t)(rng_unit(&r) * (float)(E2E_SEQ - 2));
        if (lengths[b] > E2E_SEQ)
            lengths[b] = E2E_SEQ;
    }
    /* x is [T][B][I]; the padding holds zeros. */
    for (size_t t = 0; t < E2E_SEQ; t++)
        for (size_t b = 0; b < E2E_BATCH; b++)
            for (size_t i = 0; i < E2E_INPUT; i++) {
                float noise = rng_unit(&r) - 0.5f;
                x[(t * E2E_BATCH + b) * E2E_INPUT + i] =
                    t < lengths[b] ? means[targets[b]][i] + noise : 0.0f;
            }
}

static void test_end_to_end_training(void **unused)
{
    (void)unused;
    static float x[E2E_SEQ * E2E_BATCH * E2E_INPUT];
    static float y[E2E_SEQ * E2E_BATCH * E2E_HIDDEN], dy[E2E_SEQ * E2E_BATCH * E2E_HIDDEN];
    float last[E2E_BATCH * E2E_HIDDEN], dlast[E2E_BATCH * E2E_HIDDEN];
    float z[E2E_BATCH * E2E_CLASSES], dz[E2E_BATCH * E2E_CLASSES];
    size_t lengths[E2E_BATCH];
    int32_t targets[E2E_BATCH];
    e2e_make(x, lengths, targets);

    lstm_config config;
    assert_int_equal(lstm_config_init(&config, sizeof config), LSTM_OK);
    config.input_size = E2E_INPUT;
    config.hidden_size = E2E_HIDDEN;
    lstm_model *model = NULL;
    lstm_workspace *workspace = NULL;
    lstm_dense *head = NULL;
    lstm_optim *optim = NULL;
    assert_int_equal(lstm_model_create(&config, &model), LSTM_OK);
    assert_int_equal(lstm_model_init(model, 11, LSTM_INIT_FORGET_BIAS_ONE), LSTM_OK);
    assert_int_equal(lstm_workspace_create(model, &workspace), LSTM_OK);
    assert_int_equal(lstm_dense_create(E2E_HIDDEN, E2E_CLASSES, &head), LSTM_OK);
    assert_int_equal(lstm_dense_init(head, 12), LSTM_OK);
    float *head_params, *head_grads;
    size_t head_count;
    assert_int_equal(lstm_dense_params(head, &head_params, &head_count), LSTM_OK);
    assert_int_equal(lstm_dense_grads(head, &head_grads, NULL), LSTM_OK);

    lstm_optim_options options;
    assert_int_equal(lstm_optim_options_init(&options, sizeof options, LSTM_OPTIM_ADAM), LSTM_OK);
    options.lr = 0.03;
    assert_int_equal(lstm_optim_create(&options, &optim), LSTM_OK);
    assert_int_equal(lstm_optim_add_model(optim, model), LSTM_OK);
    assert_int_equal(lstm_optim_add_buffer(optim, head_params, head_grads, head_count), LSTM_OK);

    double first = 0.0, loss = 0.0;
    size_t correct = 0;
    for (int step = 0; step <= E2E_STEPS; step++) {
        assert_int_equal(lstm_optim_zero_grads(optim), LSTM_OK);
        assert_int_equal(lstm_model_forward_train(model, workspace, E2E_SEQ, E2E_BATCH, lengths, x,
                                                  NULL, NULL, y, NULL, NULL),
                         LSTM_OK);
        assert_int_equal(lstm_sequence_last(E2E_SEQ, E2E_BATCH, E2E_HIDDEN, 0, lengths, y, last),
                         LSTM_OK);
        assert_int_equal(lstm_dense_forward(head, E2E_BATCH, last, z), LSTM_OK);
        assert_int_equal(
            lstm_loss_cross_entropy(E2E_BATCH, E2E_CLASSES, z, targets, -100, &loss, dz), LSTM_OK);
        if (step == 0)
            first = loss;
        if (step == E2E_STEPS) {
            for (size_t b = 0; b < E2E_BATCH; b++) {
                const float *row = z + b * E2E_CLASSES;
                size_t best = 0;
                for (size_t c = 1; c < E2E_CLASSES; c++)
                    best = row[c] > row[best] ? c : best;
                correct += best == (size_t)targets[b];
            }
            break;
        }
        assert_int_equal(lstm_dense_backward(head, E2E_BATCH, last, dz, dlast), LSTM_OK);
        assert_int_equal(
            lstm_sequence_last_backward(E2E_SEQ, E2E_BATCH, E2E_HIDDEN, 0, lengths, dlast, dy),
            LSTM_OK);
        assert_int_equal(lstm_model_backward(model, workspace, dy, NULL, NULL, NULL, NULL, NULL),
                         LSTM_OK);
        assert_int_equal(lstm_optim_step(optim), LSTM_OK);
    }
    printf("end to end: cross-entropy %.4f -> %.4f after %d Adam steps, %zu/%d correct\n", first,
           loss, E2E_STEPS, correct, E2E_BATCH);
    assert_true(first > 0.9 && first < 1.3); /* about log 3 at the start */
    assert_true(loss < 0.25 * first);
    assert_true(correct >= E2E_BATCH - 2);

    lstm_optim_destroy(optim);
    lstm_dense_destroy(head);
    lstm_workspace_destroy(workspace);
    lstm_model_destroy(model);
}

/* ---- Bad input: the right status and nothing changed ---- */

#define SENTINEL 777.0f

static void fill(float *values, size_t count)
{
    for (size_t k = 0; k < count; k++)
        values[k] = SENTINEL;
}

static void assert_untouched(const float *values, size_t count)
{
    for (size_t k = 0; k < count; k++)
        assert_true(values[k] == SENTINEL);
}

static void expect(lstm_status got, lstm_status want)
{
    assert_int_equal(got, want);
    assert_true(lstm_error_message()[0] != '\0');
}

static void test_bad_dense(void **unused)
{
    (void)unused;
    lstm_dense *dense = (lstm_dense *)&dense; /* a sentinel pointer */
    lstm_dense *const before = dense;
    expect(lstm_dense_create(3, 2, NULL), LSTM_E_NULL);
    expect(lstm_dense_create(0, 2, &dense), LSTM_E_SIZE);
    expect(lstm_dense_create(3, 0, &dense), LSTM_E_SIZE);
    expect(lstm_dense_create(LSTM_MAX_SIZE + 1, 2, &dense), LSTM_E_SIZE);
    expect(lstm_dense_create(3, LSTM_MAX_SIZE + 1, &dense), LSTM_E_SIZE);
    assert_ptr_equal(dense, before);
    expect(lstm_dense_init(NULL, 1), LSTM_E_NULL);
    float *view = NULL;
    expect(lstm_dense_params(NULL, &view, NULL), LSTM_E_NULL);
    expect(lstm_dense_grads(NULL, &view, NULL), LSTM_E_NULL);
    expect(lstm_dense_zero_grads(NULL), LSTM_E_NULL);

    assert_int_equal(lstm_dense_create(3, 2, &dense), LSTM_OK);
    expect(lstm_dense_params(dense, NULL, NULL), LSTM_E_NULL);
    expect(lstm_dense_grads(dense, NULL, NULL), LSTM_E_NULL);
    assert_int_equal(lstm_dense_init(dense, 5), LSTM_OK);
    float *grads, *params;
    assert_int_equal(lstm_dense_grads(dense, &grads, NULL), LSTM_OK);
    assert_int_equal(lstm_dense_params(dense, &params, NULL), LSTM_OK);
    float saved[8];
    memcpy(saved, params, sizeof saved);
    fill(grads, 8);

    float x[4 * 3], dz[4 * 2], z[4 * 2], dx[4 * 3];
    for (size_t k = 0; k < 12; k++)
        x[k] = (float)k * 0.1f;
    for (size_t k = 0; k < 8; k++)
        dz[k] = 0.5f - (float)k * 0.1f;
    fill(z, 8);
    fill(dx, 12);
    const size_t beyond_blas = (size_t)INT_MAX + 1, huge = SIZE_MAX / 2;

    expect(lstm_dense_forward(NULL, 4, x, z), LSTM_E_NULL);
    expect(lstm_dense_forward(dense, 4, NULL, z), LSTM_E_NULL);
    expect(lstm_dense_forward(dense, 4, x, NULL), LSTM_E_NULL);
    expect(lstm_dense_forward(dense, 0, x, z), LSTM_E_SIZE);
    expect(lstm_dense_forward(dense, beyond_blas, x, z), LSTM_E_OVERFLOW);
    expect(lstm_dense_forward(dense, huge, x, z), LSTM_E_OVERFLOW);
    x[5] = NAN;
    expect(lstm_dense_forward(dense, 4, x, z), LSTM_E_NONFINITE);
    x[5] = INFINITY;
    expect(lstm_dense_forward(dense, 4, x, z), LSTM_E_NONFINITE);
    assert_untouched(z, 8);

    expect(lstm_dense_backward(dense, 4, x, dz, dx), LSTM_E_NONFINITE);
    x[5] = 0.5f;
    expect(lstm_dense_backward(NULL, 4, x, dz, dx), LSTM_E_NULL);
    expect(lstm_dense_backward(dense, 4, NULL, dz, dx), LSTM_E_NULL);
    expect(lstm_dense_backward(dense, 4, x, NULL, dx), LSTM_E_NULL);
    expect(lstm_dense_backward(dense, 0, x, dz, dx), LSTM_E_SIZE);
    expect(lstm_dense_backward(dense, beyond_blas, x, dz, dx), LSTM_E_OVERFLOW);
    expect(lstm_dense_backward(dense, huge, x, dz, NULL), LSTM_E_OVERFLOW);
    dz[7] = NAN;
    expect(lstm_dense_backward(dense, 4, x, dz, dx), LSTM_E_NONFINITE);
    expect(lstm_dense_backward(dense, 4, x, dz, NULL), LSTM_E_NONFINITE);
    assert_untouched(dx, 12);
    assert_untouched(grads, 8);
    assert_memory_equal(params, saved, sizeof saved);
    lstm_dense_destroy(dense);
}

static void test_bad_sequence_last(void **unused)
{
    (void)unused;
    enum { T = 3, B = 2, F = 2 };
    float y[T * B * F], last[B * F], dlast[B * F], dy[T * B * F];
    for (size_t k = 0; k < T * B * F; k++)
        y[k] = (float)k;
    for (size_t k = 0; k < B * F; k++)
        dlast[k] = 1.0f;
    fill(last, B * F);
    fill(dy, T * B * F);
    size_t lengths[B] = {3, 1};
    const size_t zero_length[B] = {3, 0}, long_length[B] = {4, 1}, huge = SIZE_MAX / 2;

    for (int backward = 0; backward < 2; backward++) {
        const float *src = backward ? dlast : y;
        float *dst = backward ? dy : last;
#define CALL(t, b, f, flags, lens, s, d) \
  (backward ? lstm_sequence_last_backward(t, b, f, flags, lens, s, d) \
            : lstm_sequence_last(t, b, f, flags, lens, s, d))
        expect(CALL(T, B, F, 0, lengths, NULL, dst), LSTM_E_NULL);
        expect(CALL(T, B, F, 0, lengths, src, NULL), LSTM_E_NULL);
        expect(CALL(0, B, F, 0, lengths, src, dst), LSTM_E_SIZE);
        expect(CALL(T, 0, F, 0, lengths, src, dst), LSTM_E_SIZE);
        expect(CALL(T, B, 0, 0, lengths, src, dst), LSTM_E_SIZE);
        expect(CALL(T, B, LSTM_MAX_SIZE + 1, 0, lengths, src, dst), LSTM_E_SIZE);
        expect(CALL(huge, B, F, 0, NULL, src, dst), LSTM_E_OVERFLOW);
        expect(CALL(T, B, F, 0x1u, lengths, src, dst), LSTM_E_ARG);
        expect(CALL(T, B, F, LSTM_BATCH_FIRST | 0x100u, lengths, src, dst), LSTM_E_ARG);
        expect(CALL(T, B, F, 0, zero_length, src, dst), LSTM_E_ARG);
        expect(CALL(T, B, F, LSTM_BATCH_FIRST, long_length, src, dst), LSTM_E_ARG);
#undef CALL
    }
    dlast[3] = NAN;
    expect(lstm_sequence_last_backward(T, B, F, 0, lengths, dlast, dy), LSTM_E_NONFINITE);
    assert_untouched(last, B * F);
    assert_untouched(dy, T * B * F);
}

static void test_bad_losses(void **unused)
{
    (void)unused;
    enum { ROWS = 3, CLASSES = 4 };
    float logits[ROWS * CLASSES], grad[ROWS * CLASSES];
    for (size_t k = 0; k < ROWS * CLASSES; k++)
        logits[k] = (float)k * 0.25f - 1.0f;
    fill(grad, ROWS * CLASSES);
    int32_t targets[ROWS] = {0, -100, 3};
    const double untouched_loss = 4242.0;
    double loss = untouched_loss;
    const size_t huge = SIZE_MAX / 2;

    /* Cross-entropy. */
    expect(lstm_loss_cross_entropy(ROWS, CLASSES, NULL, targets, -100, &loss, grad), LSTM_E_NULL);
    expect(lstm_loss_cross_entropy(ROWS, CLASSES, logits, NULL, -100, &loss, grad), LSTM_E_NULL);
    expect(lstm_loss_cross_entropy(ROWS, CLASSES, logits, targets, -100, NULL, grad), LSTM_E_NULL);
    expect(lstm_loss_cross_entropy(0, CLASSES, logits, targets, -100, &loss, grad), LSTM_E_SIZE);
    expect(lstm_loss_cross_entropy(ROWS, 0, logits, targets, -100, &loss, grad), LSTM_E_SIZE);
    expect(lstm_loss_cross_entropy(ROWS, LSTM_MAX_SIZE + 1, logits, targets, -100, &loss, grad),
           LSTM_E_SIZE);
    expect(lstm_loss_cross_entropy(huge, CLASSES, logits, targets, -100, &loss, grad),
           LSTM_E_OVERFLOW);
    targets[1] = -1; /* negative, not ignore_index */
    expect(lstm_loss_cross_entropy(ROWS, CLASSES, logits, targets, -100, &loss, grad), LSTM_E_ARG);
    targets[1] = CLASSES;
    expect(lstm_loss_cross_entropy(ROWS, CLASSES, logits, targets, -100, &loss, grad), LSTM_E_ARG);
    targets[1] = -100;
    expect(lstm_loss_cross_entropy(ROWS, CLASSES, logits, targets, 2, &loss, grad), LSTM_E_ARG);
    logits[10] = NAN;
    expect(lstm_loss_cross_entropy(ROWS, CLASSES, logits, targets, -100, &loss, grad),
           LSTM_E_NONFINITE);
    logits[10] = -INFINITY;
    expect(lstm_loss_cross_entropy(ROWS, CLASSES, logits, targets, -100, &loss, grad),
           LSTM_E_NONFINITE);
    logits[10] = 0.0f;
    assert_true(loss == untouched_loss);
    assert_untouched(grad, ROWS * CLASSES);

    /* BCE with logits. */
    enum { N = 5 };
    float z[N] = {-3.0f, -0.5f, 0.0f, 0.5f, 3.0f}, t[N] = {0.0f, 0.25f, 0.5f, 1.0f, 1.0f};
    expect(lstm_loss_bce_with_logits(N, NULL, t, &loss, grad), LSTM_E_NULL);
    expect(lstm_loss_bce_with_logits(N, z, NULL, &loss, grad), LSTM_E_NULL);
    expect(lstm_loss_bce_with_logits(N, z, t, NULL, grad), LSTM_E_NULL);
    expect(lstm_loss_bce_with_logits(0, z, t, &loss, grad), LSTM_E_SIZE);
    expect(lstm_loss_bce_with_logits(SIZE_MAX, z, t, &loss, grad), LSTM_E_OVERFLOW);
    t[3] = 1.5f;
    expect(lstm_loss_bce_with_logits(N, z, t, &loss, grad), LSTM_E_ARG);
    t[3] = -0.01f;
    expect(lstm_loss_bce_with_logits(N, z, t, &loss, grad), LSTM_E_ARG);
    t[3] = NAN;
    expect(lstm_loss_bce_with_logits(N, z, t, &loss, grad), LSTM_E_NONFINITE);
    t[3] = 1.0f;
    z[0] = INFINITY;
    expect(lstm_loss_bce_with_logits(N, z, t, &loss, grad), LSTM_E_NONFINITE);
    z[0] = -3.0f;
    assert_true(loss == untouched_loss);
    assert_untouched(grad, ROWS * CLASSES);

    /* MSE. */
    expect(lstm_loss_mse(N, NULL, t, &loss, grad), LSTM_E_NULL);
    expect(lstm_loss_mse(N, z, NULL, &loss, grad), LSTM_E_NULL);
    expect(lstm_loss_mse(N, z, t, NULL, grad), LSTM_E_NULL);
    expect(lstm_loss_mse(0, z, t, &loss, grad), LSTM_E_SIZE);
    expect(lstm_loss_mse(SIZE_MAX, z, t, &loss, grad), LSTM_E_OVERFLOW);
    z[4] = NAN;
    expect(lstm_loss_mse(N, z, t, &loss, grad), LSTM_E_NONFINITE);
    z[4] = 3.0f;
    t[0] = -INFINITY;
    expect(lstm_loss_mse(N, z, t, &loss, grad), LSTM_E_NONFINITE);
    assert_true(loss == untouched_loss);
    assert_untouched(grad, ROWS * CLASSES);
}

static void test_summary(void **unused)
{
    (void)unused;
    printf("worst errors (tensors: of max|ref|; losses: relative)\n"
           "  dense z/dx/dW/db %.3g\n"
           "  cross-entropy loss %.3g, dlogits %.3g\n"
           "  bce-with-logits loss %.3g, dlogits %.3g\n"
           "  mse loss %.3g, dpredictions %.3g\n"
           "  sequence_last / backward %.3g\n",
           worst_dense, worst_ce_loss, worst_ce_grad, worst_bce_loss, worst_bce_grad,
           worst_mse_loss, worst_mse_grad, worst_last);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_parity),
        cmocka_unit_test(test_cross_entropy_parity),
        cmocka_unit_test(test_bce_parity),
        cmocka_unit_test(test_mse_parity),
        cmocka_unit_test(test_sequence_last_parity),
        cmocka_unit_test(test_cross_entropy_all_ignored),
        cmocka_unit_test(test_dense_init),
        cmocka_unit_test(test_end_to_end_training),
        cmocka_unit_test(test_bad_dense),
        cmocka_unit_test(test_bad_sequence_last),
        cmocka_unit_test(test_bad_losses),
        cmocka_unit_test(test_summary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
