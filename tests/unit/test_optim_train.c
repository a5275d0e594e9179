/*
 * End to end: an LSTM trained with each optimizer lowers its loss on a small
 * sequence task, and an optimizer's saved state resumes training bit for bit.
 *
 * The task: a batch of random input sequences x_t in [-1, 1); the target at
 * step t is the input DELAY steps earlier (0 before that), so the network
 * has to remember. The model is an LSTM layer followed by a linear read-out
 * written here, pred_t = w . h_t + b, trained on the mean squared error over
 * all steps and sequences. The LSTM's parameters are bound to the optimizer
 * with lstm_optim_add_model(), the read-out's with lstm_optim_add_buffer().
 * The trivial baseline is the error of always predicting the targets' mean.
 *
 * Everything is deterministic: the data and the read-out come from a
 * SplitMix64 sequence here, the LSTM from lstm_model_init()'s seed.
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
#include "lstm/optim.h"
#include "test_rng.h"

enum {
    INPUT = 1,   /* I */
    HIDDEN = 16, /* H */
    SEQ = 24,    /* T */
    BATCH = 8,   /* B */
    DELAY = 2,
    HEAD = HIDDEN + 1, /* read-out weights w, then the bias b */
    TRAIN_STEPS = 200,
    RESUME_TOTAL = 30, /* N: steps of the uninterrupted run */
    RESUME_SPLIT = 12  /* k: steps before the state is saved */
};

#define MODEL_SEED UINT64_C(20240601)
#define HEAD_SEED UINT64_C(77)
#define DATA_SEED UINT64_C(12345)

typedef struct task {
    float x[SEQ * BATCH * INPUT]; /* [T][B][I] */
    float target[SEQ * BATCH];    /* [T][B] */
    double baseline;              /* MSE of predicting the targets' mean */
} task;

typedef struct net {
    lstm_model *model;
    lstm_workspace *workspace;
    lstm_optim *optim;
    float head[HEAD];
    float head_grads[HEAD];
    float y[SEQ * BATCH * HIDDEN];  /* [T][B][H] */
    float dy[SEQ * BATCH * HIDDEN]; /* [T][B][H] */
} net;

static void task_make(task *data)
{
    rng r = {DATA_SEED};
    for (size_t k = 0; k < SEQ * BATCH * INPUT; k++)
        data->x[k] = rng_float(&r, -1.0f, 1.0f);
    /* target[t][b] = x[t - DELAY][b][0] */
    for (size_t t = 0; t < SEQ; t++)
        for (size_t b = 0; b < BATCH; b++)
            data->target[t * BATCH + b] =
                t < DELAY ? 0.0f : data->x[((t - DELAY) * BATCH + b) * INPUT];
    double mean = 0.0, variance = 0.0;
    for (size_t k = 0; k < SEQ * BATCH; k++)
        mean += data->target[k];
    mean /= SEQ * BATCH;
    for (size_t k = 0; k < SEQ * BATCH; k++)
        variance += (data->target[k] - mean) * (data->target[k] - mean);
    data->baseline = variance / (SEQ * BATCH);
}

/*
 * A model and read-out bound to a new optimizer: the LSTM first, then the
 * read-out. With params and head NULL they start from the fixed seeds,
 * otherwise from these values.
 */
static net *net_create(const lstm_optim_options *options, const float *params, const float *head)
{
    net *n = calloc(1, sizeof *n);
    assert_non_null(n);
    lstm_config config;
    assert_int_equal(lstm_config_init(&config, sizeof config), LSTM_OK);
    config.input_size = INPUT;
    config.hidden_size = HIDDEN;
    assert_int_equal(lstm_model_create(&config, &n->model), LSTM_OK);
    size_t count = lstm_model_param_count(n->model);
    if (params) {
        assert_int_equal(lstm_model_set_params(n->model, params, count), LSTM_OK);
    } else {
        assert_int_equal(lstm_model_init(n->model, MODEL_SEED, LSTM_INIT_FORGET_BIAS_ONE), LSTM_OK);
    }
    if (head) {
        memcpy(n->head, head, sizeof n->head);
    } else {
        /* PyTorch's nn.Linear range, U(-1/sqrt(H), 1/sqrt(H)). */
        rng r = {HEAD_SEED};
        float scale = 1.0f / sqrtf((float)HIDDEN);
        for (size_t k = 0; k < HEAD; k++)
            n->head[k] = scale * rng_float(&r, -1.0f, 1.0f);
    }
    assert_int_equal(lstm_workspace_create(n->model, &n->workspace), LSTM_OK);
    assert_int_equal(lstm_workspace_reserve(n->workspace, LSTM_MODE_TRAIN, SEQ, BATCH), LSTM_OK);
    assert_int_equal(lstm_optim_create(options, &n->optim), LSTM_OK);
    assert_int_equal(lstm_optim_add_model(n->optim, n->model), LSTM_OK);
    assert_int_equal(lstm_optim_add_buffer(n->optim, n->head, n->head_grads, HEAD), LSTM_OK);
    assert_int_equal(lstm_optim_param_count(n->optim), count + HEAD);
    return n;
}

static void net_destroy(net *n)
{
    if (!n)
        return;
    lstm_optim_destroy(n->optim);
    lstm_workspace_destroy(n->workspace);
    lstm_model_destroy(n->model);
    free(n);
}

/*
 * MSE of the read-out over n->y. With grads set, also writes dL/dy to n->dy
 * and adds dL/dw, dL/db to n->head_grads:
 *     pred = w . h + b,  L = mean (pred - target)^2,
 *     dL/dpred = 2 (pred - target) / (T B),  dL/dh = dL/dpred w.
 */
static double readout_loss(net *n, const task *data, int grads)
{
    double sum = 0.0;
    const float scale = 2.0f / (float)(SEQ * BATCH);
    for (size_t row = 0; row < SEQ * BATCH; row++) {
        const float *h = n->y + row * HIDDEN;
        float pred = n->head[HIDDEN];
        for (size_t k = 0; k < HIDDEN; k++)
            pred += n->head[k] * h[k];
        float err = pred - data->target[row];
        sum += (double)err * (double)err;
        if (!grads)
            continue;
        float dpred = scale * err;
        for (size_t k = 0; k < HIDDEN; k++) {
            n->dy[row * HIDDEN + k] = dpred * n->head[k];
            n->head_grads[k] += dpred * h[k];
        }
        n->head_grads[HIDDEN] += dpred;
    }
    return sum / (SEQ * BATCH);
}

/* The loss at the current parameters, by an inference forward. */
static double net_loss(net *n, const task *data)
{
    assert_int_equal(lstm_model_forward(n->model, n->workspace, SEQ, BATCH, NULL, data->x, NULL,
                                        NULL, n->y, NULL, NULL),
                     LSTM_OK);
    return readout_loss(n, data, 0);
}

/* One full-batch training step; returns the loss before the update. */
static double net_train_step(net *n, const task *data)
{
    assert_int_equal(lstm_optim_zero_grads(n->optim), LSTM_OK);
    assert_int_equal(lstm_model_forward_train(n->model, n->workspace, SEQ, BATCH, NULL, data->x,
                                              NULL, NULL, n->y, NULL, NULL),
                     LSTM_OK);
    double loss = readout_loss(n, data, 1);
    assert_int_equal(
        lstm_model_backward(n->model, n->workspace, n->dy, NULL, NULL, NULL, NULL, NULL), LSTM_OK);
    assert_int_equal(lstm_optim_step(n->optim), LSTM_OK);
    return loss;
}

static lstm_optim_options make_options(lstm_optim_kind kind, double lr)
{
    lstm_optim_options options;
    assert_int_equal(lstm_optim_options_init(&options, sizeof options, kind), LSTM_OK);
    options.lr = lr;
    return options;
}

static void train_and_check(const char *name, const lstm_optim_options *options)
{
    task data;
    task_make(&data);
    net *n = net_create(options, NULL, NULL);
    double initial = net_loss(n, &data);
    for (int step = 0; step < TRAIN_STEPS; step++) {
        double loss = net_train_step(n, &data);
        assert_true(isfinite(loss));
    }
    double final = net_loss(n, &data);
    uint64_t steps = 0;
    assert_int_equal(lstm_optim_step_count(n->optim, &steps), LSTM_OK);
    assert_true(steps == TRAIN_STEPS);
    printf("%-14s steps=%d initial=%.5f final=%.5f baseline=%.5f final/initial=%.3f\n", name,
           TRAIN_STEPS, initial, final, data.baseline, final / initial);
    assert_true(isfinite(final));
    assert_true(final < 0.5 * initial);
    assert_true(final < 0.5 * data.baseline);
    net_destroy(n);
}

static void test_sgd_momentum(void **state)
{
    (void)state;
    lstm_optim_options options = make_options(LSTM_OPTIM_SGD, 0.3);
    options.momentum = 0.9;
    train_and_check("sgd+momentum", &options);
}

static void test_adagrad(void **state)
{
    (void)state;
    lstm_optim_options options = make_options(LSTM_OPTIM_ADAGRAD, 0.05);
    train_and_check("adagrad", &options);
}

static void test_rmsprop(void **state)
{
    (void)state;
    lstm_optim_options options = make_options(LSTM_OPTIM_RMSPROP, 0.003);
    train_and_check("rmsprop", &options);
}

static void test_adam(void **state)
{
    (void)state;
    lstm_optim_options options = make_options(LSTM_OPTIM_ADAM, 0.01);
    train_and_check("adam", &options);
}

static void test_adamw(void **state)
{
    (void)state;
    lstm_optim_options options = make_options(LSTM_OPTIM_ADAMW, 0.01);
    train_and_check("adamw", &options);
}

/*
 * Train RESUME_TOTAL steps in one go; separately train RESUME_SPLIT steps,
 * save the optimizer state and the parameters, throw that run away, and
 * resume in a fresh model, read-out and optimizer. Parameters, state and
 * step count must come out bit for bit the same.
 */
static void check_resume(const lstm_optim_options *options)
{
    task data;
    task_make(&data);

    net *whole = net_create(options, NULL, NULL);
    for (int step = 0; step < RESUME_TOTAL; step++)
        net_train_step(whole, &data);

    net *first = net_create(options, NULL, NULL);
    for (int step = 0; step < RESUME_SPLIT; step++)
        net_train_step(first, &data);
    size_t count = lstm_model_param_count(first->model);
    float *params = malloc(count * sizeof *params);
    assert_non_null(params);
    assert_int_equal(lstm_model_get_params(first->model, params, count), LSTM_OK);
    float head[HEAD];
    memcpy(head, first->head, sizeof head);
    size_t bytes = 0;
    assert_int_equal(lstm_optim_state_size(first->optim, &bytes), LSTM_OK);
    assert_true(bytes >= 40);
    unsigned char *saved = malloc(bytes);
    assert_non_null(saved);
    assert_int_equal(lstm_optim_save_state(first->optim, saved, bytes), LSTM_OK);
    net_destroy(first);

    net *resumed = net_create(options, params, head);
    assert_int_equal(lstm_optim_load_state(resumed->optim, saved, bytes), LSTM_OK);
    uint64_t steps = 0;
    assert_int_equal(lstm_optim_step_count(resumed->optim, &steps), LSTM_OK);
    assert_true(steps == RESUME_SPLIT);
    for (int step = RESUME_SPLIT; step < RESUME_TOTAL; step++)
        net_train_step(resumed, &data);

    float *expected = malloc(count * sizeof *expected);
    assert_non_null(expected);
    assert_int_equal(lstm_model_get_params(whole->model, expected, count), LSTM_OK);
    assert_int_equal(lstm_model_get_params(resumed->model, params, count), LSTM_OK);
    assert_memory_equal(params, expected, count * sizeof *params);
    assert_memory_equal(resumed->head, whole->head, sizeof whole->head);
    assert_int_equal(lstm_optim_step_count(resumed->optim, &steps), LSTM_OK);
    assert_true(steps == RESUME_TOTAL);

    /* The optimizer states agree too, byte for byte. */
    size_t whole_bytes = 0;
    assert_int_equal(lstm_optim_state_size(whole->optim, &whole_bytes), LSTM_OK);
    assert_int_equal(whole_bytes, bytes);
    unsigned char *whole_state = malloc(bytes);
    assert_non_null(whole_state);
    assert_int_equal(lstm_optim_save_state(whole->optim, whole_state, bytes), LSTM_OK);
    assert_int_equal(lstm_optim_save_state(resumed->optim, saved, bytes), LSTM_OK);
    assert_memory_equal(saved, whole_state, bytes);

    free(whole_state);
    free(expected);
    free(saved);
    free(params);
    net_destroy(resumed);
    net_destroy(whole);
}

static void test_resume_adam(void **state)
{
    (void)state;
    lstm_optim_options options = make_options(LSTM_OPTIM_ADAM, 0.01);
    check_resume(&options);
}

/* Three state arrays: square_avg, grad_avg, momentum_buffer. */
static void test_resume_rmsprop_centered_momentum(void **state)
{
    (void)state;
    lstm_optim_options options = make_options(LSTM_OPTIM_RMSPROP, 0.003);
    options.flags = LSTM_OPTIM_CENTERED;
    options.momentum = 0.9;
    options.weight_decay = 1e-4;
    check_resume(&options);
}

static void test_resume_adamw_amsgrad(void **state)
{
    (void)state;
    lstm_optim_options options = make_options(LSTM_OPTIM_ADAMW, 0.01);
    options.flags = LSTM_OPTIM_AMSGRAD;
    check_resume(&options);
}

static void test_resume_sgd_nesterov(void **state)
{
    (void)state;
    lstm_optim_options options = make_options(LSTM_OPTIM_SGD, 0.1);
    options.flags = LSTM_OPTIM_NESTEROV;
    options.momentum = 0.9;
    options.weight_decay = 1e-4;
    check_resume(&options);
}

/* lr_decay makes the update depend on the restored step count. */
static void test_resume_adagrad_lr_decay(void **state)
{
    (void)state;
    lstm_optim_options options = make_options(LSTM_OPTIM_ADAGRAD, 0.05);
    options.lr_decay = 0.01;
    options.initial_accumulator_value = 0.1;
    check_resume(&options);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_momentum),
        cmocka_unit_test(test_adagrad),
        cmocka_unit_test(test_rmsprop),
        cmocka_unit_test(test_adam),
        cmocka_unit_test(test_adamw),
        cmocka_unit_test(test_resume_adam),
        cmocka_unit_test(test_resume_rmsprop_centered_momentum),
        cmocka_unit_test(test_resume_adamw_amsgrad),
        cmocka_unit_test(test_resume_sgd_nesterov),
        cmocka_unit_test(test_resume_adagrad_lr_decay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
