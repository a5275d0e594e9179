/*
 * The optimizer module's contract outside the torch.optim trajectories
 * (test_optim_parity) and end-to-end training (test_optim_train): defaults,
 * option checks, all-or-nothing steps, state save/restore validation,
 * thread-count independence, and bad input to every function.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lstm/lstm.h"

enum { N = 300 };

static void fill(float *values, size_t count, uint32_t seed)
{
    for (size_t k = 0; k < count; k++) {
        seed = seed * 1664525u + 1013904223u;
        values[k] = (float)(seed >> 8) * 0x1p-23f - 1.0f;
    }
}

static lstm_optim *make_optim(lstm_optim_kind kind, uint32_t flags, double momentum)
{
    lstm_optim_options options;
    assert_int_equal(lstm_optim_options_init(&options, sizeof options, kind), LSTM_OK);
    options.flags = flags;
    options.momentum = momentum;
    lstm_optim *optim = NULL;
    assert_int_equal(lstm_optim_create(&options, &optim), LSTM_OK);
    return optim;
}

static void test_defaults_are_pytorchs(void **state)
{
    (void)state;
    lstm_optim_options o;
    assert_int_equal(lstm_optim_options_init(&o, sizeof o, LSTM_OPTIM_ADAM), LSTM_OK);
    assert_int_equal(o.struct_size, sizeof o);
    assert_true(o.lr == 1e-3 && o.beta1 == 0.9 && o.beta2 == 0.999 && o.eps == 1e-8);
    assert_true(o.weight_decay == 0.0 && o.flags == 0 && o.threads == 0);
    assert_int_equal(lstm_optim_options_init(&o, sizeof o, LSTM_OPTIM_ADAMW), LSTM_OK);
    assert_true(o.lr == 1e-3 && o.weight_decay == 1e-2);
    assert_int_equal(lstm_optim_options_init(&o, sizeof o, LSTM_OPTIM_ADAGRAD), LSTM_OK);
    assert_true(o.lr == 1e-2 && o.eps == 1e-10 && o.lr_decay == 0.0 &&
                o.initial_accumulator_value == 0.0);
    assert_int_equal(lstm_optim_options_init(&o, sizeof o, LSTM_OPTIM_RMSPROP), LSTM_OK);
    assert_true(o.lr == 1e-2 && o.alpha == 0.99 && o.eps == 1e-8 && o.momentum == 0.0);
    assert_int_equal(lstm_optim_options_init(&o, sizeof o, LSTM_OPTIM_SGD), LSTM_OK);
    assert_true(o.momentum == 0.0 && o.dampening == 0.0);

    assert_int_equal(lstm_optim_options_init(NULL, sizeof o, LSTM_OPTIM_SGD), LSTM_E_NULL);
    assert_int_equal(lstm_optim_options_init(&o, 8, LSTM_OPTIM_SGD), LSTM_E_ARG);
    assert_int_equal(lstm_optim_options_init(&o, sizeof o, (lstm_optim_kind)9), LSTM_E_ARG);
}

static void test_options_are_checked(void **state)
{
    (void)state;
    struct {
        lstm_optim_kind kind;
        const char *field;
        double value;
        uint32_t flags;
    } bad[] = {
        {LSTM_OPTIM_SGD, "lr", -0.1, 0},
        {LSTM_OPTIM_SGD, "lr", NAN, 0},
        {LSTM_OPTIM_SGD, "momentum", -0.5, 0},
        {LSTM_OPTIM_SGD, "weight_decay", -1.0, 0},
        {LSTM_OPTIM_SGD, "momentum", 0.0, LSTM_OPTIM_NESTEROV}, /* Nesterov without momentum */
        {LSTM_OPTIM_SGD, "dampening", 0.5, LSTM_OPTIM_NESTEROV},
        {LSTM_OPTIM_ADAGRAD, "lr_decay", -1.0, 0},
        {LSTM_OPTIM_ADAGRAD, "initial_accumulator_value", -1.0, 0},
        {LSTM_OPTIM_RMSPROP, "alpha", -0.1, 0},
        {LSTM_OPTIM_RMSPROP, "eps", -1e-8, 0},
        {LSTM_OPTIM_ADAM, "beta1", 1.0, 0},
        {LSTM_OPTIM_ADAM, "beta2", -0.1, 0},
        {LSTM_OPTIM_ADAMW, "eps", INFINITY, 0},
        {LSTM_OPTIM_ADAM, "lr", 1e-3, 0x100}, /* unknown flag */
    };
    for (size_t n = 0; n < sizeof bad / sizeof bad[0]; n++) {
        lstm_optim_options o;
        lstm_optim_options_init(&o, sizeof o, bad[n].kind);
        o.flags = bad[n].flags;
        if (bad[n].flags & LSTM_OPTIM_NESTEROV)
            o.momentum = 0.9;
        double *field = strcmp(bad[n].field, "lr") == 0 ? &o.lr
                        : strcmp(bad[n].field, "momentum") == 0 ? &o.momentum
                        : strcmp(bad[n].field, "weight_decay") == 0 ? &o.weight_decay
                        : strcmp(bad[n].field, "dampening") == 0 ? &o.dampening
                        : strcmp(bad[n].field, "lr_decay") == 0 ? &o.lr_decay
                        : strcmp(bad[n].field, "initial_accumulator_value") == 0
                            ? &o.initial_accumulator_value
                        : strcmp(bad[n].field, "alpha") == 0 ? &o.alpha
                        : strcmp(bad[n].field, "eps") == 0 ? &o.eps
                        : strcmp(bad[n].field, "beta1") == 0 ? &o.beta1
                                                             : &o.beta2;
        *field = bad[n].value;
        lstm_optim *optim = NULL;
        if (lstm_optim_create(&o, &optim) != LSTM_E_ARG)
            fail_msg("case %zu (%s = %g) was accepted", n, bad[n].field, bad[n].value);
        assert_null(optim);
    }
    lstm_optim_options o;
    lstm_optim_options_init(&o, sizeof o, LSTM_OPTIM_SGD);
    o.kind = (lstm_optim_kind)42;
    lstm_optim *optim = NULL;
    assert_int_equal(lstm_optim_create(&o, &optim), LSTM_E_ARG);
    assert_int_equal(lstm_optim_create(NULL, &optim), LSTM_E_NULL);
    lstm_optim_options_init(&o, sizeof o, LSTM_OPTIM_SGD);
    assert_int_equal(lstm_optim_create(&o, NULL), LSTM_E_NULL);
    o.struct_size = 3;
    assert_int_equal(lstm_optim_create(&o, &optim), LSTM_E_ARG);
    assert_null(optim);

    /* Fields a kind does not use are ignored: SGD has no eps, beta1, alpha,
     * lr_decay or initial_accumulator_value (found by tests/fuzz/fuzz_api.c:
     * eps was checked for every kind). */
    lstm_optim_options_init(&o, sizeof o, LSTM_OPTIM_SGD);
    o.eps = -1e-8;
    o.beta1 = NAN;
    o.alpha = -1.0;
    o.lr_decay = INFINITY;
    o.initial_accumulator_value = -1.0;
    assert_int_equal(lstm_optim_create(&o, &optim), LSTM_OK);
    lstm_optim_destroy(optim);
}

static void test_binding(void **state)
{
    (void)state;
    float *buffer = calloc(4 * N, sizeof(float));
    float *p = buffer, *g = buffer + N, *p2 = buffer + 2 * N, *g2 = buffer + 3 * N;
    lstm_optim *optim = make_optim(LSTM_OPTIM_ADAM, 0, 0.0);
    assert_int_equal(lstm_optim_step(optim), LSTM_E_STATE); /* nothing bound */
    assert_int_equal(lstm_optim_add_buffer(NULL, p, g, N), LSTM_E_NULL);
    assert_int_equal(lstm_optim_add_buffer(optim, NULL, g, N), LSTM_E_NULL);
    assert_int_equal(lstm_optim_add_buffer(optim, p, NULL, N), LSTM_E_NULL);
    assert_int_equal(lstm_optim_add_buffer(optim, p, g, 0), LSTM_E_SIZE);
    assert_int_equal(lstm_optim_add_buffer(optim, p, p + 10, N), LSTM_E_ARG); /* overlap */
    assert_int_equal(lstm_optim_add_buffer(optim, p, g, SIZE_MAX), LSTM_E_OVERFLOW);
    assert_int_equal(lstm_optim_param_count(optim), 0);
    assert_int_equal(lstm_optim_add_buffer(optim, p, g, N), LSTM_OK);
    assert_int_equal(lstm_optim_add_buffer(optim, p2, g + 5, 10), LSTM_E_ARG); /* overlaps g */
    assert_int_equal(lstm_optim_add_buffer(optim, p2, g2, N), LSTM_OK);
    assert_int_equal(lstm_optim_param_count(optim), 2 * N);
    assert_int_equal(lstm_optim_param_count(NULL), 0);
    assert_int_equal(lstm_optim_step(optim), LSTM_OK);
    /* The state layout is fixed by the first step: no binding after it. */
    float p3[4], g3[4];
    assert_int_equal(lstm_optim_add_buffer(optim, p3, g3, 4), LSTM_E_STATE);

    lstm_config config;
    lstm_config_init(&config, sizeof config);
    config.input_size = 3;
    config.hidden_size = 2;
    lstm_model *model;
    assert_int_equal(lstm_model_create(&config, &model), LSTM_OK);
    lstm_optim *second = make_optim(LSTM_OPTIM_SGD, 0, 0.0);
    assert_int_equal(lstm_optim_add_model(second, NULL), LSTM_E_NULL);
    assert_int_equal(lstm_optim_add_model(NULL, model), LSTM_E_NULL);
    assert_int_equal(lstm_optim_add_model(second, model), LSTM_OK);
    assert_int_equal(lstm_optim_param_count(second), lstm_model_param_count(model));
    assert_int_equal(lstm_optim_add_model(second, model), LSTM_E_ARG); /* bound already */
    lstm_optim_destroy(second);
    lstm_model_destroy(model);
    lstm_optim_destroy(optim);
    lstm_optim_destroy(NULL);
    free(buffer);
}

/* A NaN or infinity anywhere in the gradients changes nothing at all. */
static void test_step_is_all_or_nothing(void **state)
{
    (void)state;
    const lstm_optim_kind kinds[] = {LSTM_OPTIM_SGD, LSTM_OPTIM_ADAGRAD, LSTM_OPTIM_RMSPROP,
                                     LSTM_OPTIM_ADAM, LSTM_OPTIM_ADAMW};
    for (size_t n = 0; n < sizeof kinds / sizeof kinds[0]; n++) {
        float p[N], g[N], p2[N], g2[N];
        fill(p, N, 1);
        fill(g, N, 2);
        fill(p2, N, 3);
        fill(g2, N, 4);
        lstm_optim *optim = make_optim(kinds[n], 0, 0.5);
        assert_int_equal(lstm_optim_add_buffer(optim, p, g, N), LSTM_OK);
        assert_int_equal(lstm_optim_add_buffer(optim, p2, g2, N), LSTM_OK);
        assert_int_equal(lstm_optim_step(optim), LSTM_OK);

        size_t bytes;
        assert_int_equal(lstm_optim_state_size(optim, &bytes), LSTM_OK);
        unsigned char *before = malloc(bytes), *after = malloc(bytes);
        float p_before[N], p2_before[N];
        assert_int_equal(lstm_optim_save_state(optim, before, bytes), LSTM_OK);
        memcpy(p_before, p, sizeof p);
        memcpy(p2_before, p2, sizeof p2);

        const float poison[] = {NAN, INFINITY, -INFINITY};
        for (size_t q = 0; q < 3; q++) {
            g2[N - 1 - q] = poison[q]; /* in the second buffer, past the first */
            assert_int_equal(lstm_optim_step(optim), LSTM_E_NONFINITE);
            assert_non_null(strstr(lstm_error_message(), "buffer 1"));
            assert_int_equal(lstm_optim_clip_grad_value(optim, 0.1), LSTM_E_NONFINITE);
            assert_int_equal(lstm_optim_clip_grad_norm(optim, 0.1, NULL), LSTM_E_NONFINITE);
            g2[N - 1 - q] = 0.25f;
        }
        assert_memory_equal(p, p_before, sizeof p);
        assert_memory_equal(p2, p2_before, sizeof p2);
        assert_int_equal(lstm_optim_save_state(optim, after, bytes), LSTM_OK);
        assert_memory_equal(before, after, bytes); /* moments and step count too */
        uint64_t steps;
        assert_int_equal(lstm_optim_step_count(optim, &steps), LSTM_OK);
        assert_int_equal(steps, 1);
        free(before);
        free(after);
        lstm_optim_destroy(optim);
    }
}

static void test_state_is_validated(void **state)
{
    (void)state;
    float p[N], g[N];
    fill(p, N, 5);
    fill(g, N, 6);
    lstm_optim *optim = make_optim(LSTM_OPTIM_ADAM, LSTM_OPTIM_AMSGRAD, 0.0);
    assert_int_equal(lstm_optim_add_buffer(optim, p, g, N), LSTM_OK);
    assert_int_equal(lstm_optim_step(optim), LSTM_OK);
    size_t bytes;
    assert_int_equal(lstm_optim_state_size(optim, &bytes), LSTM_OK);
    assert_int_equal(bytes, 40 + 3 * N * sizeof(float));
    unsigned char *saved = malloc(bytes), *copy = malloc(bytes), *check = malloc(bytes);
    assert_int_equal(lstm_optim_save_state(optim, saved, bytes), LSTM_OK);
    uint32_t magic;
    uint64_t steps;
    memcpy(&magic, saved, 4);
    memcpy(&steps, saved + 16, 8);
    assert_int_equal(magic, 0x4C4F5054u);
    assert_int_equal(steps, 1);

    assert_int_equal(lstm_optim_save_state(optim, saved, bytes - 1), LSTM_E_SHAPE);
    assert_int_equal(lstm_optim_save_state(optim, NULL, bytes), LSTM_E_NULL);
    assert_int_equal(lstm_optim_save_state(NULL, saved, bytes), LSTM_E_NULL);
    assert_int_equal(lstm_optim_state_size(NULL, &bytes), LSTM_E_NULL);
    assert_int_equal(lstm_optim_state_size(optim, NULL), LSTM_E_NULL);

    /* Each kind of damage is refused and leaves the optimizer as it was. */
    struct {
        size_t offset;
        unsigned char value;
        size_t length;
        lstm_status expected;
    } damage[] = {
        {0, 0x00, 0, LSTM_E_ARG},                /* magic */
        {4, 0x07, 0, LSTM_E_ARG},                /* version */
        {8, LSTM_OPTIM_ADAMW, 0, LSTM_E_ARG},    /* kind */
        {12, 0x00, 0, LSTM_E_ARG},               /* flags */
        {24, 0x01, 0, LSTM_E_SHAPE},             /* N */
        {32, 0x02, 0, LSTM_E_SHAPE},             /* S */
        {43, 0x7F, 0, LSTM_E_NONFINITE},         /* first value's exponent: NaN */
        {0, 0x00, 39, LSTM_E_SHAPE},             /* truncated header */
        {0, 0x00, 41, LSTM_E_SHAPE},             /* truncated arrays */
    };
    for (size_t n = 0; n < sizeof damage / sizeof damage[0]; n++) {
        memcpy(copy, saved, bytes);
        size_t length = damage[n].length ? damage[n].length : bytes;
        if (!damage[n].length) {
            copy[damage[n].offset] = damage[n].value;
            if (damage[n].offset == 43)
                copy[42] = 0xC0;
        }
        lstm_status status = lstm_optim_load_state(optim, copy, length);
        if (status != damage[n].expected)
            fail_msg("damage %zu: status %d, expected %d", n, status, damage[n].expected);
        assert_int_equal(lstm_optim_save_state(optim, check, bytes), LSTM_OK);
        assert_memory_equal(check, saved, bytes);
    }
    assert_int_equal(lstm_optim_load_state(NULL, saved, bytes), LSTM_E_NULL);
    assert_int_equal(lstm_optim_load_state(optim, NULL, bytes), LSTM_E_NULL);
    assert_int_equal(lstm_optim_load_state(optim, saved, bytes), LSTM_OK);
    free(saved);
    free(copy);
    free(check);
    lstm_optim_destroy(optim);
}

/* Splitting a step across threads changes nothing, to the bit. */
static void test_threads_do_not_change_results(void **state)
{
    (void)state;
    const size_t count = 100003; /* uneven shares */
    float *p1 = malloc(count * sizeof(float)), *p2 = malloc(count * sizeof(float));
    float *g1 = malloc(count * sizeof(float)), *g2 = malloc(count * sizeof(float));
    fill(p1, count, 7);
    memcpy(p2, p1, count * sizeof(float));
    lstm_optim *optims[2];
    for (int n = 0; n < 2; n++) {
        lstm_optim_options o;
        lstm_optim_options_init(&o, sizeof o, LSTM_OPTIM_RMSPROP);
        o.flags = LSTM_OPTIM_CENTERED;
        o.momentum = 0.5;
        o.threads = n == 0 ? 1 : 3;
        assert_int_equal(lstm_optim_create(&o, &optims[n]), LSTM_OK);
    }
    assert_int_equal(lstm_optim_add_buffer(optims[0], p1, g1, count), LSTM_OK);
    assert_int_equal(lstm_optim_add_buffer(optims[1], p2, g2, count), LSTM_OK);
    for (uint32_t step = 0; step < 5; step++) {
        fill(g1, count, 100 + step);
        memcpy(g2, g1, count * sizeof(float));
        double n1, n2;
        assert_int_equal(lstm_optim_clip_grad_norm(optims[0], 50.0, &n1), LSTM_OK);
        assert_int_equal(lstm_optim_clip_grad_norm(optims[1], 50.0, &n2), LSTM_OK);
        assert_true(n1 == n2);
        assert_int_equal(lstm_optim_step(optims[0]), LSTM_OK);
        assert_int_equal(lstm_optim_step(optims[1]), LSTM_OK);
    }
    assert_memory_equal(p1, p2, count * sizeof(float));
    lstm_optim_destroy(optims[0]);
    lstm_optim_destroy(optims[1]);
    free(p1);
    free(p2);
    free(g1);
    free(g2);
}

static void test_lr_zeroing_and_clipping_arguments(void **state)
{
    (void)state;
    float p[N], g[N];
    fill(p, N, 8);
    fill(g, N, 9);
    lstm_optim *optim = make_optim(LSTM_OPTIM_SGD, 0, 0.0);
    assert_int_equal(lstm_optim_add_buffer(optim, p, g, N), LSTM_OK);
    double lr;
    assert_int_equal(lstm_optim_get_lr(optim, &lr), LSTM_OK);
    assert_true(lr == 0.01);
    assert_int_equal(lstm_optim_set_lr(optim, 0.5), LSTM_OK);
    assert_int_equal(lstm_optim_get_lr(optim, &lr), LSTM_OK);
    assert_true(lr == 0.5);
    assert_int_equal(lstm_optim_set_lr(optim, -0.5), LSTM_E_ARG);
    assert_int_equal(lstm_optim_set_lr(optim, NAN), LSTM_E_ARG);
    assert_int_equal(lstm_optim_set_lr(NULL, 0.5), LSTM_E_NULL);
    assert_int_equal(lstm_optim_get_lr(NULL, &lr), LSTM_E_NULL);
    assert_int_equal(lstm_optim_get_lr(optim, NULL), LSTM_E_NULL);
    assert_true(lr == 0.5);

    /* SGD with lr 0.5 and no momentum: p -= 0.5 g exactly. */
    float expected[N];
    for (size_t k = 0; k < N; k++)
        expected[k] = p[k] + -0.5f * g[k];
    assert_int_equal(lstm_optim_step(optim), LSTM_OK);
    assert_memory_equal(p, expected, sizeof p);

    assert_int_equal(lstm_optim_clip_grad_norm(optim, 0.0, NULL), LSTM_E_ARG);
    assert_int_equal(lstm_optim_clip_grad_norm(optim, -1.0, NULL), LSTM_E_ARG);
    assert_int_equal(lstm_optim_clip_grad_norm(optim, INFINITY, NULL), LSTM_E_ARG);
    assert_int_equal(lstm_optim_clip_grad_norm(NULL, 1.0, NULL), LSTM_E_NULL);
    assert_int_equal(lstm_optim_clip_grad_value(optim, -1.0), LSTM_E_ARG);
    assert_int_equal(lstm_optim_clip_grad_value(optim, NAN), LSTM_E_ARG);
    assert_int_equal(lstm_optim_clip_grad_value(NULL, 1.0), LSTM_E_NULL);

    /* Clip by norm: the result has norm max_norm (to float rounding). */
    double before;
    assert_int_equal(lstm_optim_clip_grad_norm(optim, 0.5, &before), LSTM_OK);
    double sum = 0.0;
    for (size_t k = 0; k < N; k++)
        sum += (double)g[k] * g[k];
    assert_true(before > 1.0);
    assert_true(fabs(sqrt(sum) - 0.5) < 1e-6);

    assert_int_equal(lstm_optim_zero_grads(optim), LSTM_OK);
    for (size_t k = 0; k < N; k++)
        assert_true(g[k] == 0.0f);
    assert_int_equal(lstm_optim_zero_grads(NULL), LSTM_E_NULL);
    uint64_t steps;
    assert_int_equal(lstm_optim_step_count(NULL, &steps), LSTM_E_NULL);
    assert_int_equal(lstm_optim_step_count(optim, NULL), LSTM_E_NULL);
    assert_int_equal(lstm_optim_step(NULL), LSTM_E_NULL);
    lstm_optim_destroy(optim);
}

static void test_schedules(void **state)
{
    (void)state;
    double lr;
    assert_int_equal(lstm_schedule_step(0.1, 0.5, 3, 7, &lr), LSTM_OK);
    assert_true(lr == 0.1 * 0.25);
    assert_int_equal(lstm_schedule_cosine(0.1, 0.0, 10, 10, &lr), LSTM_OK);
    assert_true(fabs(lr) < 1e-17);
    assert_int_equal(lstm_schedule_cosine(0.1, 0.01, 10, 0, &lr), LSTM_OK);
    assert_true(lr == 0.1);
    assert_int_equal(lstm_schedule_cosine(0.1, 0.02, 10, 5, &lr), LSTM_OK);
    assert_true(fabs(lr - 0.06) < 1e-15);
    /* Rates near DBL_MAX give a finite rate, not an overflowed product
     * (found by tests/fuzz/fuzz_api.c: they gave -inf and inf). */
    assert_int_equal(lstm_schedule_cosine(0.5, DBL_MAX, 4, 0, &lr), LSTM_OK);
    assert_true(isfinite(lr));
    assert_int_equal(lstm_schedule_cosine(DBL_MAX, 0.0, 4, 0, &lr), LSTM_OK);
    assert_true(lr == DBL_MAX);
    assert_int_equal(lstm_schedule_step(0.1, 0.5, 0, 7, &lr), LSTM_E_SIZE);
    assert_int_equal(lstm_schedule_step(0.1, -0.5, 3, 7, &lr), LSTM_E_ARG);
    assert_int_equal(lstm_schedule_step(NAN, 0.5, 3, 7, &lr), LSTM_E_ARG);
    assert_int_equal(lstm_schedule_step(0.1, 0.5, 3, 7, NULL), LSTM_E_NULL);
    assert_int_equal(lstm_schedule_cosine(0.1, 0.0, 0, 1, &lr), LSTM_E_SIZE);
    assert_int_equal(lstm_schedule_cosine(INFINITY, 0.0, 3, 1, &lr), LSTM_E_ARG);
    assert_int_equal(lstm_schedule_cosine(0.1, 0.0, 3, 1, NULL), LSTM_E_NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_pytorchs),
        cmocka_unit_test(test_options_are_checked),
        cmocka_unit_test(test_binding),
        cmocka_unit_test(test_step_is_all_or_nothing),
        cmocka_unit_test(test_state_is_validated),
        cmocka_unit_test(test_threads_do_not_change_results),
        cmocka_unit_test(test_lr_zeroing_and_clipping_arguments),
        cmocka_unit_test(test_schedules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
