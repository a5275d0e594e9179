/*
 * The public API's contract outside the numerics: versions, status texts,
 * configuration, parameter access, initialisation, workspaces, and bad input
 * to every public function (each must return its status and change nothing).
 */
#define _POSIX_C_SOURCE 200809L /* POSIX threads, which ThreadSanitizer understands */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lstm/lstm.h"

enum { I = 3, H = 4, T = 5, B = 2 };
#define PARAMS ((size_t)(4 * H * (H + I) + 4 * H))

static lstm_model *make_model(size_t input_size, size_t hidden_size)
{
    lstm_config config;
    assert_int_equal(lstm_config_init(&config, sizeof config), LSTM_OK);
    config.input_size = input_size;
    config.hidden_size = hidden_size;
    lstm_model *model = NULL;
    assert_int_equal(lstm_model_create(&config, &model), LSTM_OK);
    assert_non_null(model);
    return model;
}

/* Fails the test unless the last call failed with a non-empty detail message. */
static void assert_message(void)
{
    assert_non_null(lstm_error_message());
    assert_true(strlen(lstm_error_message()) > 0);
}

static void test_version(void **state)
{
    (void)state;
    assert_int_equal(lstm_version_number(), LSTM_VERSION_NUMBER);
    assert_string_equal(lstm_version_string(), LSTM_VERSION_STRING);
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", LSTM_VERSION_MAJOR, LSTM_VERSION_MINOR,
             LSTM_VERSION_PATCH);
    assert_string_equal(lstm_version_string(), expected);
}

static void test_strerror(void **state)
{
    (void)state;
    /* Every known status has its own text; unknown ones get a fixed text. */
    const char *seen[LSTM_E_UNSUPPORTED + 1];
    for (int s = LSTM_OK; s <= LSTM_E_UNSUPPORTED; s++) {
        seen[s] = lstm_strerror((lstm_status)s);
        assert_non_null(seen[s]);
        assert_string_not_equal(seen[s], "unknown status");
        for (int other = 0; other < s; other++)
            assert_string_not_equal(seen[s], seen[other]);
    }
    assert_string_equal(lstm_strerror((lstm_status)999), "unknown status");
    assert_string_equal(lstm_strerror((lstm_status)-1), "unknown status");
}

static void test_config(void **state)
{
    (void)state;
    lstm_config config;
    memset(&config, 0xAB, sizeof config);
    assert_int_equal(lstm_config_init(&config, sizeof config), LSTM_OK);
    assert_int_equal(config.struct_size, sizeof config);
    assert_int_equal(config.input_size, 0);
    assert_int_equal(config.hidden_size, 0);
    lstm_config from_macro = LSTM_CONFIG_INIT;
    assert_int_equal(from_macro.struct_size, sizeof from_macro);

    assert_int_equal(lstm_config_init(NULL, sizeof config), LSTM_E_NULL);
    assert_message();
    assert_int_equal(lstm_config_init(&config, 4), LSTM_E_ARG);
    assert_message();

    /* A caller built against a newer, larger struct: unknown fields must be
     * zero, and a non-zero one is refused rather than ignored. */
    struct {
        lstm_config base;
        size_t future_field;
    } newer;
    assert_int_equal(lstm_config_init(&newer.base, sizeof newer), LSTM_OK);
    newer.base.input_size = I;
    newer.base.hidden_size = H;
    lstm_model *model = NULL;
    assert_int_equal(lstm_model_create(&newer.base, &model), LSTM_OK);
    lstm_model_destroy(model);
    model = NULL;
    newer.future_field = 1;
    assert_int_equal(lstm_model_create(&newer.base, &model), LSTM_E_ARG);
    assert_null(model);
}

/* A struct_size above 64 KiB is garbage, not a newer caller: refused, and
 * nothing past the caller's struct read or written. Up to it, a larger
 * struct whose unknown fields are zero is a newer caller. */
static void test_struct_size_cap(void **state)
{
    (void)state;
    enum { CAP = 64 << 10, ROOM = 2 * CAP };
    unsigned char *room = malloc(ROOM);
    assert_non_null(room);
    lstm_config *config = (lstm_config *)(void *)room;
    lstm_optim_options *options = (lstm_optim_options *)(void *)room;
    lstm_model *model = make_model(I, H), *created = NULL;

    memset(room, 0xAB, ROOM);
    assert_int_equal(lstm_config_init(config, (size_t)CAP + 1), LSTM_E_ARG);
    assert_message();
    for (size_t k = 0; k < ROOM; k++)
        assert_int_equal(room[k], 0xAB);
    assert_int_equal(lstm_optim_options_init(options, SIZE_MAX, LSTM_OPTIM_ADAM), LSTM_E_ARG);
    assert_int_equal(room[0], 0xAB);

    /* struct_size read from the caller's struct */
    memset(room, 0, ROOM);
    assert_int_equal(lstm_config_init(config, sizeof *config), LSTM_OK);
    config->input_size = I;
    config->hidden_size = H;
    config->struct_size = CAP;
    assert_int_equal(lstm_model_create(config, &created), LSTM_OK);
    lstm_model_destroy(created);
    created = NULL;
    assert_int_equal(lstm_model_get_config(model, config), LSTM_OK);
    assert_int_equal(config->struct_size, CAP);
    const size_t garbage[] = {(size_t)CAP + 1, SIZE_MAX / 2, SIZE_MAX};
    for (size_t n = 0; n < sizeof garbage / sizeof *garbage; n++) {
        config->struct_size = garbage[n];
        assert_int_equal(lstm_model_create(config, &created), LSTM_E_ARG);
        assert_null(created);
        memset(room + sizeof *config, 0xAB, ROOM - sizeof *config);
        assert_int_equal(lstm_model_get_config(model, config), LSTM_E_ARG);
        assert_int_equal(config->struct_size, garbage[n]);
        for (size_t k = sizeof *config; k < ROOM; k++)
            assert_int_equal(room[k], 0xAB);
        memset(room + sizeof *config, 0, ROOM - sizeof *config);
    }
    lstm_model_destroy(model);
    free(room);
}

static void test_create_bad_input(void **state)
{
    (void)state;
    lstm_config config;
    lstm_config_init(&config, sizeof config);
    config.input_size = I;
    config.hidden_size = H;
    lstm_model *model = (lstm_model *)&config; /* must stay untouched */
    lstm_model *const sentinel = model;

    assert_int_equal(lstm_model_create(NULL, &model), LSTM_E_NULL);
    assert_int_equal(lstm_model_create(&config, NULL), LSTM_E_NULL);
    config.hidden_size = 0;
    assert_int_equal(lstm_model_create(&config, &model), LSTM_E_SIZE);
    assert_message();
    config.hidden_size = H;
    config.input_size = 0;
    assert_int_equal(lstm_model_create(&config, &model), LSTM_E_SIZE);
    config.input_size = LSTM_MAX_SIZE + 1;
    assert_int_equal(lstm_model_create(&config, &model), LSTM_E_SIZE);
    config.input_size = SIZE_MAX;
    assert_int_equal(lstm_model_create(&config, &model), LSTM_E_SIZE);
    config.input_size = I;
    config.struct_size = 0;
    assert_int_equal(lstm_model_create(&config, &model), LSTM_E_ARG);
    assert_ptr_equal(model, sentinel);

    /* The largest accepted sizes are refused by the allocator, cleanly. */
    lstm_config_init(&config, sizeof config);
    config.input_size = LSTM_MAX_SIZE;
    config.hidden_size = LSTM_MAX_SIZE;
    lstm_status status = lstm_model_create(&config, &model);
    assert_true(status == LSTM_E_NOMEM || status == LSTM_E_OVERFLOW);
    assert_ptr_equal(model, sentinel);

    lstm_model_destroy(NULL); /* accepted and ignored */
}

static void test_network_config_is_checked(void **state)
{
    (void)state;
    struct {
        size_t layers, proj;
        uint32_t flags;
        double dropout;
        lstm_status expected;
    } cases[] = {
        {LSTM_MAX_LAYERS + 1, 0, 0, 0.0, LSTM_E_SIZE},
        {2, H, 0, 0.0, LSTM_E_SIZE}, /* proj_size must be below hidden_size */
        {2, H + 5, 0, 0.0, LSTM_E_SIZE},
        {1, 0, 0x80, 0.0, LSTM_E_ARG}, /* unknown flag */
        {2, 0, 0, 1.0, LSTM_E_ARG},    /* dropout in [0, 1) */
        {2, 0, 0, -0.1, LSTM_E_ARG},
        {2, 0, 0, NAN, LSTM_E_ARG},
        {0, 0, 0, 0.0, LSTM_OK}, /* 0 layers means 1 */
        {3, H - 1, LSTM_BIDIRECTIONAL | LSTM_BATCH_FIRST | LSTM_PEEPHOLE, 0.5, LSTM_OK},
    };
    for (size_t n = 0; n < sizeof cases / sizeof cases[0]; n++) {
        lstm_config config;
        lstm_config_init(&config, sizeof config);
        config.input_size = I;
        config.hidden_size = H;
        config.num_layers = cases[n].layers;
        config.proj_size = cases[n].proj;
        config.flags = cases[n].flags;
        config.dropout = cases[n].dropout;
        lstm_model *model = NULL;
        lstm_status status = lstm_model_create(&config, &model);
        if (status != cases[n].expected)
            fail_msg("case %zu: status %d, expected %d (%s)", n, status, cases[n].expected,
                     lstm_error_message());
        if (status == LSTM_OK) {
            lstm_config back;
            lstm_config_init(&back, sizeof back);
            assert_int_equal(lstm_model_get_config(model, &back), LSTM_OK);
            assert_int_equal(back.num_layers, cases[n].layers == 0 ? 1 : cases[n].layers);
            assert_int_equal(back.flags, cases[n].flags);
            assert_int_equal(back.proj_size, cases[n].proj);
        }
        lstm_model_destroy(model);
    }
}

/* The tensors tile the parameter buffer exactly, in the documented order. */
static void test_tensor_layout(void **state)
{
    (void)state;
    const size_t layers = 3, P = 2, D = 2, R = P;
    lstm_config config;
    lstm_config_init(&config, sizeof config);
    config.input_size = I;
    config.hidden_size = H;
    config.num_layers = layers;
    config.proj_size = P;
    config.flags = LSTM_BIDIRECTIONAL | LSTM_PEEPHOLE;
    lstm_model *model;
    assert_int_equal(lstm_model_create(&config, &model), LSTM_OK);
    size_t expected = 0, offset, rows, cols;
    for (size_t layer = 0; layer < layers; layer++) {
        for (size_t d = 0; d < D; d++) {
            const size_t input = layer == 0 ? I : D * R;
            const size_t shapes[4][2] = {{4 * H, R + input}, {4 * H, 1}, {P, H}, {3, H}};
            for (int tensor = 0; tensor < 4; tensor++) {
                assert_int_equal(
                    lstm_model_tensor(model, layer, d, (lstm_tensor)tensor, &offset, &rows, &cols),
                    LSTM_OK);
                assert_int_equal(offset, expected);
                assert_int_equal(rows, shapes[tensor][0]);
                assert_int_equal(cols, shapes[tensor][1]);
                expected += rows * cols;
            }
        }
    }
    assert_int_equal(expected, lstm_model_param_count(model));
    assert_int_equal(lstm_model_tensor(model, layers, 0, LSTM_TENSOR_WEIGHT, &offset, NULL, NULL),
                     LSTM_E_ARG);
    assert_int_equal(lstm_model_tensor(model, 0, 2, LSTM_TENSOR_WEIGHT, &offset, NULL, NULL),
                     LSTM_E_ARG);
    assert_int_equal(lstm_model_tensor(model, 0, 0, (lstm_tensor)9, &offset, NULL, NULL),
                     LSTM_E_ARG);
    assert_int_equal(lstm_model_tensor(model, 0, 0, LSTM_TENSOR_BIAS, NULL, NULL, NULL),
                     LSTM_E_NULL);
    assert_int_equal(lstm_model_tensor(NULL, 0, 0, LSTM_TENSOR_BIAS, &offset, NULL, NULL),
                     LSTM_E_NULL);
    lstm_model_destroy(model);
    /* Without projection or peepholes those tensors do not exist. */
    model = make_model(I, H);
    assert_int_equal(lstm_model_tensor(model, 0, 0, LSTM_TENSOR_PROJECTION, &offset, NULL, NULL),
                     LSTM_E_ARG);
    assert_int_equal(lstm_model_tensor(model, 0, 0, LSTM_TENSOR_PEEPHOLE, &offset, NULL, NULL),
                     LSTM_E_ARG);
    assert_int_equal(lstm_model_tensor(model, 0, 1, LSTM_TENSOR_WEIGHT, &offset, NULL, NULL),
                     LSTM_E_ARG);
    lstm_model_destroy(model);
}

static void test_lengths_are_checked(void **state)
{
    (void)state;
    lstm_model *model = make_model(I, H);
    lstm_workspace *workspace;
    assert_int_equal(lstm_workspace_create(model, &workspace), LSTM_OK);
    float x[T * B * I] = {0}, y[T * B * H];
    const size_t zero[B] = {3, 0}, long_one[B] = {T + 1, 2}, fine[B] = {2, T};
    assert_int_equal(lstm_model_forward(model, workspace, T, B, zero, x, NULL, NULL, y, NULL, NULL),
                     LSTM_E_ARG);
    assert_non_null(strstr(lstm_error_message(), "lengths[1]"));
    assert_int_equal(
        lstm_model_forward_train(model, workspace, T, B, long_one, x, NULL, NULL, y, NULL, NULL),
        LSTM_E_ARG);
    assert_int_equal(lstm_model_forward(model, workspace, T, B, fine, x, NULL, NULL, y, NULL, NULL),
                     LSTM_OK);
    assert_int_equal(lstm_workspace_set_seed(NULL, 1), LSTM_E_NULL);
    assert_int_equal(lstm_workspace_set_seed(workspace, 1), LSTM_OK);
    lstm_workspace_destroy(workspace);
    lstm_model_destroy(model);
}

static void test_get_config(void **state)
{
    (void)state;
    lstm_model *model = make_model(I, H);
    lstm_config config;
    lstm_config_init(&config, sizeof config);
    assert_int_equal(lstm_model_get_config(model, &config), LSTM_OK);
    assert_int_equal(config.input_size, I);
    assert_int_equal(config.hidden_size, H);
    assert_int_equal(lstm_model_get_config(NULL, &config), LSTM_E_NULL);
    assert_int_equal(lstm_model_get_config(model, NULL), LSTM_E_NULL);
    config.struct_size = 1;
    assert_int_equal(lstm_model_get_config(model, &config), LSTM_E_ARG);
    lstm_model_destroy(model);
}

static void test_param_views_and_copies(void **state)
{
    (void)state;
    lstm_model *model = make_model(I, H);
    assert_int_equal(lstm_model_param_count(model), PARAMS);
    assert_int_equal(lstm_model_param_count(NULL), 0);

    float *params = NULL, *grads = NULL;
    size_t count = 0;
    assert_int_equal(lstm_model_params(model, &params, &count), LSTM_OK);
    assert_int_equal(count, PARAMS);
    assert_int_equal((uintptr_t)params % 64, 0);
    assert_int_equal(lstm_model_grads(model, &grads, NULL), LSTM_OK);
    assert_int_equal((uintptr_t)grads % 64, 0);
    assert_ptr_not_equal(params, grads);
    for (size_t k = 0; k < PARAMS; k++) {
        assert_true(params[k] == 0.0f); /* a new model starts at zero */
        assert_true(grads[k] == 0.0f);
    }

    float values[PARAMS], back[PARAMS];
    for (size_t k = 0; k < PARAMS; k++)
        values[k] = (float)k * 0.25f - 3.0f;
    assert_int_equal(lstm_model_set_params(model, values, PARAMS), LSTM_OK);
    assert_memory_equal(params, values, sizeof values); /* the view sees it */
    assert_int_equal(lstm_model_get_params(model, back, PARAMS), LSTM_OK);
    assert_memory_equal(back, values, sizeof values);

    /* Writes through the gradient view show in the copy, zero_grads clears. */
    grads[7] = 2.5f;
    assert_int_equal(lstm_model_get_grads(model, back, PARAMS), LSTM_OK);
    assert_true(back[7] == 2.5f);
    assert_int_equal(lstm_model_zero_grads(model), LSTM_OK);
    assert_true(grads[7] == 0.0f);

    /* Bad input changes nothing. */
    assert_int_equal(lstm_model_params(NULL, &params, &count), LSTM_E_NULL);
    assert_int_equal(lstm_model_params(model, NULL, &count), LSTM_E_NULL);
    assert_int_equal(lstm_model_grads(NULL, &grads, NULL), LSTM_E_NULL);
    assert_int_equal(lstm_model_grads(model, NULL, NULL), LSTM_E_NULL);
    assert_int_equal(lstm_model_get_params(NULL, back, PARAMS), LSTM_E_NULL);
    assert_int_equal(lstm_model_get_params(model, NULL, PARAMS), LSTM_E_NULL);
    assert_int_equal(lstm_model_get_params(model, back, PARAMS - 1), LSTM_E_SHAPE);
    assert_int_equal(lstm_model_get_grads(NULL, back, PARAMS), LSTM_E_NULL);
    assert_int_equal(lstm_model_get_grads(model, back, PARAMS + 1), LSTM_E_SHAPE);
    assert_int_equal(lstm_model_zero_grads(NULL), LSTM_E_NULL);

    float bad[PARAMS];
    memcpy(bad, values, sizeof bad);
    for (size_t k = 0; k < PARAMS; k++)
        bad[k] += 1.0f;
    bad[PARAMS - 1] = NAN;
    assert_int_equal(lstm_model_set_params(model, bad, PARAMS), LSTM_E_NONFINITE);
    assert_non_null(strstr(lstm_error_message(), "src["));
    bad[PARAMS - 1] = -INFINITY;
    assert_int_equal(lstm_model_set_params(model, bad, PARAMS), LSTM_E_NONFINITE);
    assert_int_equal(lstm_model_set_params(model, bad, 3), LSTM_E_SHAPE);
    assert_int_equal(lstm_model_set_params(model, NULL, PARAMS), LSTM_E_NULL);
    assert_int_equal(lstm_model_set_params(NULL, values, PARAMS), LSTM_E_NULL);
    assert_memory_equal(params, values, sizeof values); /* all or nothing */
    lstm_model_destroy(model);
}

static void test_init(void **state)
{
    (void)state;
    const size_t hidden = 64;
    lstm_model *a = make_model(7, hidden), *b = make_model(7, hidden);
    size_t count = lstm_model_param_count(a);
    float *pa, *pb;
    lstm_model_params(a, &pa, NULL);
    lstm_model_params(b, &pb, NULL);

    assert_int_equal(lstm_model_init(a, 42, 0), LSTM_OK);
    assert_int_equal(lstm_model_init(b, 42, 0), LSTM_OK);
    assert_memory_equal(pa, pb, count * sizeof(float)); /* same seed, same values */
    assert_int_equal(lstm_model_init(b, 43, 0), LSTM_OK);
    assert_memory_not_equal(pa, pb, count * sizeof(float));

    /* U(-k, k) with k = 1/sqrt(H): range, mean and variance k^2/3. */
    const double k = 1.0 / sqrt((double)hidden);
    double sum = 0.0, sum_sq = 0.0, lo = 1.0, hi = -1.0;
    for (size_t n = 0; n < count; n++) {
        double v = pa[n];
        assert_true(v >= -k && v <= k);
        sum += v;
        sum_sq += v * v;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    double mean = sum / (double)count, var = sum_sq / (double)count - mean * mean;
    assert_true(fabs(mean) < 0.01 * k);
    assert_true(fabs(var - k * k / 3.0) < 0.02 * k * k);
    assert_true(lo < -0.99 * k && hi > 0.99 * k);

    /* The forget-gate bias is the second block of b; nothing else changes. */
    assert_int_equal(lstm_model_init(b, 42, LSTM_INIT_FORGET_BIAS_ONE), LSTM_OK);
    size_t bias = 4 * hidden * (hidden + 7);
    for (size_t n = 0; n < count; n++) {
        if (n >= bias + hidden && n < bias + 2 * hidden)
            assert_true(pb[n] == 1.0f);
        else
            assert_true(pb[n] == pa[n]);
    }

    assert_int_equal(lstm_model_init(NULL, 1, 0), LSTM_E_NULL);
    assert_int_equal(lstm_model_init(a, 1, 0x80u), LSTM_E_ARG);
    assert_int_equal(lstm_model_init(a, 7, 0), LSTM_OK);
    lstm_model_destroy(a);
    lstm_model_destroy(b);
}

/* The size of a workspace for T steps of `batch` sequences is what the
 * documentation says it keeps, in floats; regions are rounded up to 64
 * bytes and the batch plan adds 2B + 2(T + 1) size_t. */
/* The sizes lstm_workspace_size() documents, for a one-layer model of
 * `inputs` -> `hidden` and sequences of `steps`. */
static void check_documented_size(size_t inputs, size_t hidden, size_t steps, size_t batch)
{
    lstm_model *model = make_model(inputs, hidden);
    const size_t K = hidden + inputs, G = 4 * hidden, R = hidden, rows = steps * batch;
    const size_t plan = (2 * batch + 2 * (steps + 1)) * sizeof(size_t), rounding = 16 * 64;
    size_t bytes = 0;
    /* one packing of W for the per-step products, in panels of 32 output
     * columns: forward (4H outputs over K), backward (K over 4H), or
     * backward with the columns of h and of x apart */
    const size_t panels_forward = (G + 31) / 32 * 32 * K, panels_backward = (K + 31) / 32 * 32 * G;
    const size_t panels_apart = ((R + 31) / 32 + (inputs + 31) / 32) * 32 * G;
    size_t packing = panels_forward > panels_backward ? panels_forward : panels_backward;
    packing = (packing > panels_apart ? packing : panels_apart) * sizeof(float);
    /* inference: S of every step, one step's gates (when the x part is
     * hoisted, batch <= 4 or over 12 MB of W packed for the forward pass,
     * the gates of up to max(batch, 256) rows of whole steps) and c, the
     * layer output */
#ifdef LSTM_STEP_PRODUCTS_BLAS
    const int hoisted = 1; /* the products on the BLAS: every pass hoists */
#else
    const int hoisted = batch <= 4 || panels_forward * sizeof(float) > ((size_t)12 << 20);
#endif
    const size_t chunk = batch > 256 ? batch : 256;
    const size_t gates = (hoisted ? (rows < chunk ? rows : chunk) : batch) * G;
    const size_t infer = (rows * K + gates + batch * hidden + rows * R) * sizeof(float);
    assert_int_equal(lstm_workspace_size(model, LSTM_MODE_INFER, steps, batch, &bytes), LSTM_OK);
    assert_true(bytes >= infer + plan + packing && bytes <= infer + plan + packing + rounding);
    /* Training: stacked, gates, c_t of every step, c_0, the layer output
     * (which backward reuses for its gradient); then one step's scratch dh,
     * dc, [dh_{t-1}, dx_t]. */
    const size_t train =
        (rows * (K + G + hidden + R) + batch * hidden + batch * (R + hidden + K)) * sizeof(float);
    /* and the packings of the weight-gradient product dW += dA^T S: up to
     * 512 of the T B rows of S's panels and of dA^T (or, if larger, 256 rows
     * of the hoisted dx, which share that scratch) */
    const size_t depth = rows < 512 ? rows : 512;
    packing += ((K + 31) / 32 * 32 + G) * depth * sizeof(float);
    assert_int_equal(lstm_workspace_size(model, LSTM_MODE_TRAIN, steps, batch, &bytes), LSTM_OK);
    assert_true(bytes >= train + plan + packing && bytes <= train + plan + packing + rounding);
    lstm_model_destroy(model);
}

static void test_workspace_size(void **state)
{
    (void)state;
    check_documented_size(I, H, T, 1);
    check_documented_size(I, H, T, 2);
    check_documented_size(I, H, T, 4);
    check_documented_size(I, H, T, 5);
    check_documented_size(I, H, T, 200);       /* T B = 1000 > 512 */
    check_documented_size(I, H, 100, 3);       /* hoisted, 300 rows: gates of 256 */
    check_documented_size(512, 512, 20, 64);   /* 8 MB of packed W: not hoisted */
    check_documented_size(1024, 1024, 20, 64); /* 32 MB: hoisted, gates of 256 rows */
    lstm_model *model = make_model(I, H);
    size_t bytes = 0;
    assert_int_equal(lstm_workspace_size(NULL, LSTM_MODE_INFER, T, B, &bytes), LSTM_E_NULL);
    assert_int_equal(lstm_workspace_size(model, LSTM_MODE_INFER, T, B, NULL), LSTM_E_NULL);
    assert_int_equal(lstm_workspace_size(model, LSTM_MODE_INFER, 0, B, &bytes), LSTM_E_SIZE);
    assert_int_equal(lstm_workspace_size(model, LSTM_MODE_INFER, T, 0, &bytes), LSTM_E_SIZE);
    assert_int_equal(lstm_workspace_size(model, (lstm_mode)7, T, B, &bytes), LSTM_E_ARG);
    assert_int_equal(lstm_workspace_size(model, LSTM_MODE_TRAIN, SIZE_MAX, 2, &bytes),
                     LSTM_E_OVERFLOW);
    assert_int_equal(
        lstm_workspace_size(model, LSTM_MODE_TRAIN, (size_t)1 << 20, (size_t)1 << 12, &bytes),
        LSTM_E_OVERFLOW); /* T * B beyond the BLAS index range */
    lstm_model_destroy(model);
}

static void test_workspace_bad_input(void **state)
{
    (void)state;
    lstm_model *model = make_model(I, H), *other = make_model(I + 1, H);
    lstm_workspace *workspace = NULL;
    assert_int_equal(lstm_workspace_create(NULL, &workspace), LSTM_E_NULL);
    assert_int_equal(lstm_workspace_create(model, NULL), LSTM_E_NULL);
    assert_null(workspace);
    assert_int_equal(lstm_workspace_create(model, &workspace), LSTM_OK);

    assert_int_equal(lstm_workspace_reserve(NULL, LSTM_MODE_TRAIN, T, B), LSTM_E_NULL);
    assert_int_equal(lstm_workspace_reserve(workspace, LSTM_MODE_TRAIN, 0, B), LSTM_E_SIZE);
    assert_int_equal(lstm_workspace_reserve(workspace, (lstm_mode)-1, T, B), LSTM_E_ARG);
    assert_int_equal(lstm_workspace_reserve(workspace, LSTM_MODE_TRAIN, SIZE_MAX / 2, SIZE_MAX / 2),
                     LSTM_E_OVERFLOW);
    assert_int_equal(lstm_workspace_reserve(workspace, LSTM_MODE_TRAIN, T, B), LSTM_OK);

    /* An absurd but representable size (tens of terabytes) fails to
     * allocate, and the workspace still works afterwards. */
    lstm_model *big = make_model(1024, 1024);
    lstm_workspace *big_workspace;
    assert_int_equal(lstm_workspace_create(big, &big_workspace), LSTM_OK);
    assert_int_equal(
        lstm_workspace_reserve(big_workspace, LSTM_MODE_TRAIN, (size_t)1 << 20, (size_t)1 << 10),
        LSTM_E_NOMEM);
    assert_message();
    assert_int_equal(lstm_workspace_reserve(big_workspace, LSTM_MODE_TRAIN, 2, 2), LSTM_OK);
    lstm_workspace_destroy(big_workspace);
    lstm_model_destroy(big);

    float x[T * B * (I + 1)], y[T * B * H];
    memset(x, 0, sizeof x);
    /* A workspace serves only models of its own sizes. */
    assert_int_equal(lstm_model_forward(other, workspace, T, B, NULL, x, NULL, NULL, y, NULL, NULL),
                     LSTM_E_SHAPE);
    assert_message();
    lstm_workspace_destroy(workspace);
    lstm_workspace_destroy(NULL);
    lstm_model_destroy(model);
    lstm_model_destroy(other);
}

/* Fills a buffer with values in [-1, 1] from a fixed sequence. */
static void fill(float *values, size_t count, uint32_t seed)
{
    for (size_t k = 0; k < count; k++) {
        seed = seed * 1664525u + 1013904223u;
        values[k] = (float)(seed >> 8) * 0x1p-23f - 1.0f;
    }
}

static void test_forward_bad_input(void **state)
{
    (void)state;
    lstm_model *model = make_model(I, H);
    lstm_model_init(model, 1, 0);
    lstm_workspace *workspace;
    assert_int_equal(lstm_workspace_create(model, &workspace), LSTM_OK);
    float x[T * B * I], h0[B * H], c0[B * H], y[T * B * H], hT[B * H], cT[B * H];
    fill(x, T * B * I, 1);
    fill(h0, B * H, 2);
    fill(c0, B * H, 3);
    const float poison = -12345.0f;
    for (size_t k = 0; k < T * B * H; k++)
        y[k] = poison;
    for (size_t k = 0; k < B * H; k++)
        hT[k] = cT[k] = poison;

    typedef lstm_status (*forward_fn)(const lstm_model *, lstm_workspace *, size_t, size_t,
                                      const size_t *, const float *, const float *, const float *,
                                      float *, float *, float *);
    forward_fn forwards[2] = {lstm_model_forward, lstm_model_forward_train};
    for (int f = 0; f < 2; f++) {
        forward_fn forward = forwards[f];
        assert_int_equal(forward(NULL, workspace, T, B, NULL, x, h0, c0, y, hT, cT), LSTM_E_NULL);
        assert_int_equal(forward(model, NULL, T, B, NULL, x, h0, c0, y, hT, cT), LSTM_E_NULL);
        assert_int_equal(forward(model, workspace, T, B, NULL, NULL, h0, c0, y, hT, cT),
                         LSTM_E_NULL);
        assert_int_equal(forward(model, workspace, 0, B, NULL, x, h0, c0, y, hT, cT), LSTM_E_SIZE);
        assert_int_equal(forward(model, workspace, T, 0, NULL, x, h0, c0, y, hT, cT), LSTM_E_SIZE);
        assert_int_equal(forward(model, workspace, SIZE_MAX, 3, NULL, x, h0, c0, y, hT, cT),
                         LSTM_E_OVERFLOW);
        x[T * B * I - 1] = NAN;
        assert_int_equal(forward(model, workspace, T, B, NULL, x, h0, c0, y, hT, cT),
                         LSTM_E_NONFINITE);
        assert_non_null(strstr(lstm_error_message(), "x at step 4 of sequence 1, feature 2"));
        x[T * B * I - 1] = 0.5f;
        h0[3] = INFINITY;
        assert_int_equal(forward(model, workspace, T, B, NULL, x, h0, c0, y, hT, cT),
                         LSTM_E_NONFINITE);
        h0[3] = 0.5f;
        c0[0] = -INFINITY;
        assert_int_equal(forward(model, workspace, T, B, NULL, x, h0, c0, y, hT, cT),
                         LSTM_E_NONFINITE);
        c0[0] = 0.5f;
        /* No output was written by any failing call. */
        for (size_t k = 0; k < T * B * H; k++)
            assert_true(y[k] == poison);
        for (size_t k = 0; k < B * H; k++)
            assert_true(hT[k] == poison && cT[k] == poison);
    }
    /* And a good call works on the same workspace afterwards. */
    assert_int_equal(lstm_model_forward(model, workspace, T, B, NULL, x, h0, c0, y, hT, cT),
                     LSTM_OK);
    assert_memory_equal(hT, y + (T - 1) * B * H, sizeof hT);
    lstm_workspace_destroy(workspace);
    lstm_model_destroy(model);
}

static void test_backward_bad_input(void **state)
{
    (void)state;
    lstm_model *model = make_model(I, H), *other = make_model(I, H);
    lstm_model_init(model, 1, 0);
    lstm_workspace *workspace;
    assert_int_equal(lstm_workspace_create(model, &workspace), LSTM_OK);
    float x[T * B * I], y[T * B * H], dy[T * B * H], dhT[B * H], dcT[B * H];
    float dx[T * B * I], dh0[B * H], dc0[B * H];
    fill(x, T * B * I, 4);
    fill(dy, T * B * H, 5);
    fill(dhT, B * H, 6);
    fill(dcT, B * H, 7);

    /* Backward before any training forward, or after an inference one. */
    assert_int_equal(lstm_model_backward(model, workspace, dy, dhT, dcT, dx, dh0, dc0),
                     LSTM_E_STATE);
    assert_message();
    assert_int_equal(lstm_model_forward(model, workspace, T, B, NULL, x, NULL, NULL, y, NULL, NULL),
                     LSTM_OK);
    assert_int_equal(lstm_model_backward(model, workspace, dy, dhT, dcT, dx, dh0, dc0),
                     LSTM_E_STATE);

    assert_int_equal(
        lstm_model_forward_train(model, workspace, T, B, NULL, x, NULL, NULL, y, NULL, NULL),
        LSTM_OK);
    assert_int_equal(lstm_model_backward(NULL, workspace, dy, dhT, dcT, dx, dh0, dc0), LSTM_E_NULL);
    assert_int_equal(lstm_model_backward(model, NULL, dy, dhT, dcT, dx, dh0, dc0), LSTM_E_NULL);
    assert_int_equal(lstm_model_backward(other, workspace, dy, dhT, dcT, dx, dh0, dc0),
                     LSTM_E_STATE);
    dy[11] = NAN;
    assert_int_equal(lstm_model_backward(model, workspace, dy, dhT, dcT, dx, dh0, dc0),
                     LSTM_E_NONFINITE);
    dy[11] = 0.0f;
    dhT[0] = INFINITY;
    assert_int_equal(lstm_model_backward(model, workspace, dy, dhT, dcT, dx, dh0, dc0),
                     LSTM_E_NONFINITE);
    dhT[0] = 0.0f;
    dcT[B * H - 1] = NAN;
    assert_int_equal(lstm_model_backward(model, workspace, dy, dhT, dcT, dx, dh0, dc0),
                     LSTM_E_NONFINITE);
    dcT[B * H - 1] = 0.0f;
    /* None of the failures touched the gradients... */
    float *grads;
    lstm_model_grads(model, &grads, NULL);
    for (size_t k = 0; k < PARAMS; k++)
        assert_true(grads[k] == 0.0f);
    /* ...nor consumed the training state. */
    assert_int_equal(lstm_model_backward(model, workspace, dy, dhT, dcT, dx, dh0, dc0), LSTM_OK);
    int nonzero = 0;
    for (size_t k = 0; k < PARAMS; k++)
        nonzero += grads[k] != 0.0f;
    assert_true(nonzero > (int)PARAMS / 2);
    /* A forward call ends the training state held, even one that fails. */
    assert_int_equal(
        lstm_model_forward_train(model, workspace, T, B, NULL, x, NULL, NULL, y, NULL, NULL),
        LSTM_OK);
    assert_int_equal(
        lstm_model_forward(model, workspace, T, B, NULL, NULL, NULL, NULL, y, NULL, NULL),
        LSTM_E_NULL);
    assert_int_equal(lstm_model_backward(model, workspace, dy, dhT, dcT, dx, dh0, dc0),
                     LSTM_E_STATE);
    assert_int_equal(
        lstm_model_forward_train(model, workspace, T, B, NULL, x, NULL, NULL, y, NULL, NULL),
        LSTM_OK);
    assert_int_equal(lstm_model_backward(model, workspace, dy, dhT, dcT, dx, dh0, dc0), LSTM_OK);
    /* Backward consumed the activations: a second one is out of order. */
    assert_int_equal(lstm_model_backward(model, workspace, dy, dhT, dcT, dx, dh0, dc0),
                     LSTM_E_STATE);
    lstm_workspace_destroy(workspace);
    lstm_model_destroy(model);
    lstm_model_destroy(other);
}

/*
 * Destroys *dead and creates a model of hidden size H_new where it was:
 * allocators (glibc's tcache, jemalloc, mimalloc) hand a freed block of a
 * size class back first. Returns NULL when none landed there in a few tries
 * (ASan's quarantine never reuses a block so soon).
 */
static lstm_model *model_in_dead_place(lstm_model **dead, size_t hidden_size)
{
    const uintptr_t place = (uintptr_t)*dead;
    lstm_model_destroy(*dead);
    *dead = NULL;
    lstm_model *tries[16] = {NULL}, *found = NULL;
    for (size_t n = 0; n < 16 && found == NULL; n++) {
        tries[n] = make_model(I, hidden_size);
        if ((uintptr_t)tries[n] == place) {
            found = tries[n];
            tries[n] = NULL;
        }
    }
    for (size_t n = 0; n < 16; n++)
        lstm_model_destroy(tries[n]);
    return found;
}

/* Backward knows the forward's model by its identity, not its address: a
 * model born where the forward's model died, of its shape or another, is
 * another model (LSTM_E_STATE, nothing written). */
static void test_backward_after_model_reused_address(void **state)
{
    (void)state;
    static const size_t hidden_sizes[] = {H, 3 * H};
    for (size_t n = 0; n < 2; n++) {
        lstm_model *model = make_model(I, H);
        lstm_model_init(model, 1, 0);
        lstm_workspace *workspace;
        assert_int_equal(lstm_workspace_create(model, &workspace), LSTM_OK);
        float x[T * B * I], y[T * B * H], dy[T * B * H];
        float dx[T * B * I], dh0[B * H], dc0[B * H];
        fill(x, T * B * I, 4);
        fill(dy, T * B * H, 5);
        assert_int_equal(
            lstm_model_forward_train(model, workspace, T, B, NULL, x, NULL, NULL, y, NULL, NULL),
            LSTM_OK);
        lstm_model *reborn = model_in_dead_place(&model, hidden_sizes[n]);
        if (reborn == NULL) {
            lstm_workspace_destroy(workspace);
            skip();
        }
        float *grads;
        size_t count;
        assert_int_equal(lstm_model_grads(reborn, &grads, &count), LSTM_OK);
        memset(dx, 0x7f, sizeof dx);
        assert_int_equal(lstm_model_backward(reborn, workspace, dy, NULL, NULL, dx, dh0, dc0),
                         LSTM_E_STATE);
        assert_message();
        for (size_t k = 0; k < count; k++)
            assert_true(grads[k] == 0.0f);
        for (size_t k = 0; k < T * B * I; k++)
            assert_true(dx[k] == 0x1.fefefep+127f);
        lstm_workspace_destroy(workspace);
        lstm_model_destroy(reborn);
    }
}

/* Fails one call on another thread and reports that thread's message. */
static void *fail_on_other_thread(void *message_copy)
{
    lstm_model_init(NULL, 0, 0);
    strncpy(message_copy, lstm_error_message(), 127);
    return NULL;
}

static void test_error_message_is_per_thread(void **state)
{
    (void)state;
    lstm_config config;
    lstm_config_init(&config, sizeof config);
    config.input_size = 5;
    config.hidden_size = 0;
    lstm_model *model = NULL;
    assert_int_equal(lstm_model_create(&config, &model), LSTM_E_SIZE);
    assert_string_equal(lstm_error_message(), "hidden_size is 0; it must be at least 1");

    char other[128] = {0};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, fail_on_other_thread, other), 0);
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_string_equal(other, "model is NULL");
    /* This thread's message is untouched by the other thread's failure. */
    assert_string_equal(lstm_error_message(), "hidden_size is 0; it must be at least 1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_create_bad_input),
        cmocka_unit_test(test_network_config_is_checked),
        cmocka_unit_test(test_tensor_layout),
        cmocka_unit_test(test_lengths_are_checked),
        cmocka_unit_test(test_get_config),
        cmocka_unit_test(test_param_views_and_copies),
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_workspace_size),
        cmocka_unit_test(test_workspace_bad_input),
        cmocka_unit_test(test_forward_bad_input),
        cmocka_unit_test(test_backward_bad_input),
        cmocka_unit_test(test_struct_size_cap),
        cmocka_unit_test(test_backward_after_model_reused_address),
        cmocka_unit_test(test_error_message_is_per_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
