/*
 * Determinism, as README.md and lstm/lstm.h state it: the same seeds,
 * inputs and thread count give a bit-identical training trajectory from run
 * to run.
 *
 * A trajectory is STEPS training steps of a 2-layer LSTM with dropout and
 * a dense head: forward_train, dense forward, cross-entropy, dense and LSTM
 * backward, clipping by global norm, AdamW on 2 threads. Its record is
 * every step's loss and gradient norm, then the final parameters of both
 * layers and the optimizer's state. The shapes are large enough for the
 * workspace's pool to split the per-step products (the BLAS thread count
 * is 2, set by CMake), so thread scheduling has every chance to show.
 *
 *   - Two trajectories in this process, from fresh handles, agree bit for
 *     bit.
 *   - A trajectory run by a new process (this program started again with
 *     --digest, so other addresses and fresh, never reused memory) has the
 *     same 64-bit FNV-1a digest as this process's.
 *   - The seeds matter: another dropout seed gives another trajectory.
 *   - Inference does not depend on the thread count: a forward pass at 1
 *     and at 2 BLAS threads (OpenBLAS or BLIS, changed at run time) gives
 *     the same bits, since it runs on the library's own kernels only. Nor
 *     does training. Both are checked with many rows per step and with 2
 *     (where the x part of the products leaves the loop).
 *   - Nor does the batch: each sequence of a batch of 6 (one product per
 *     step on all of S_t) gives the bits it gives alone or in a group of 3
 *     (the x part out of the loop), forward and backward.
 *
 * Built with LSTM_STEP_PRODUCTS=blas, the per-step products run on the
 * BLAS, which sums in its own order for each shape of product and thread
 * count: the thread count, the batch, and inference against training
 * (which split the products differently) are then the BLAS's to decide,
 * and those tests are skipped (lstm/common.h says what holds there). Those
 * of one thread count, in this process and in another, still run: they
 * hold wherever the BLAS is deterministic.
 */
#define _POSIX_C_SOURCE 200809L /* posix_spawn, pipes */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lstm/lstm.h"
#include "test_precision_support.h"

extern char **environ;

enum { I = 16, H = 96, L = 2, T = 10, B = 32, CLASSES = 5, STEPS = 8 };

/* Skips a test of what holds on the library's own kernel alone: with
 * LSTM_STEP_PRODUCTS=blas the products' sums follow the BLAS, whose order
 * may change with a product's shape (the batch, the hoisting) and with its
 * thread count (OpenBLAS 0.3.21 blocks a depth of 400 differently on 2
 * threads than on 1, for one). */
static void own_kernel_only(void)
{
#ifdef LSTM_STEP_PRODUCTS_BLAS
    print_message("skipped: the per-step products run on the BLAS (LSTM_STEP_PRODUCTS=blas), "
                  "whose sums may change with a product's shape and thread count\n");
    skip();
#endif
}

/* ---- one trajectory ------------------------------------------------------- */

typedef struct record {
    double loss[STEPS], norm[STEPS];
    float *params; /* the model's, then the dense layer's */
    size_t param_count;
    unsigned char *optim_state;
    size_t optim_bytes;
} record;

static uint32_t next(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

/* count values in [-1, 1) from the generator. */
static void fill_uniform(float *values, size_t count, uint32_t *state)
{
    for (size_t k = 0; k < count; k++)
        values[k] = (float)next(state) * 0x1p-23f - 1.0f;
}

static void check(lstm_status status)
{
    if (status != LSTM_OK)
        fail_msg("status %d: %s", (int)status, lstm_error_message());
}

static void trajectory(uint64_t dropout_seed, record *out)
{
    lstm_config config;
    check(lstm_config_init(&config, sizeof config));
    config.input_size = I;
    config.hidden_size = H;
    config.num_layers = L;
    config.dropout = 0.3;
    lstm_model *model = NULL;
    lstm_workspace *workspace = NULL;
    lstm_dense *dense = NULL;
    lstm_optim *optim = NULL;
    lstm_optim_options options;
    check(lstm_model_create(&config, &model));
    check(lstm_model_init(model, 1234, LSTM_INIT_FORGET_BIAS_ONE));
    check(lstm_workspace_create(model, &workspace));
    check(lstm_workspace_set_seed(workspace, dropout_seed));
    check(lstm_dense_create(H, CLASSES, &dense));
    check(lstm_dense_init(dense, 99));
    check(lstm_optim_options_init(&options, sizeof options, LSTM_OPTIM_ADAMW));
    options.lr = 0.01;
    options.threads = 2;
    check(lstm_optim_create(&options, &optim));
    check(lstm_optim_add_model(optim, model));
    float *dense_params, *dense_grads;
    size_t dense_count;
    check(lstm_dense_params(dense, &dense_params, &dense_count));
    check(lstm_dense_grads(dense, &dense_grads, NULL));
    check(lstm_optim_add_buffer(optim, dense_params, dense_grads, dense_count));

    float *x = malloc(T * B * I * sizeof(float)), *y = malloc(T * B * H * sizeof(float));
    float *dy = malloc(T * B * H * sizeof(float)), *z = malloc(T * B * CLASSES * sizeof(float));
    float *dz = malloc(T * B * CLASSES * sizeof(float));
    int32_t *targets = malloc(T * B * sizeof(int32_t));
    assert_true(x != NULL && y != NULL && dy != NULL && z != NULL && dz != NULL && targets != NULL);
    uint32_t data = 5;
    for (int step = 0; step < STEPS; step++) {
        /* a new batch every step: the class is the sign pattern of two features */
        fill_uniform(x, T * B * I, &data);
        for (size_t row = 0; row < T * B; row++)
            targets[row] = (x[row * I] > 0) + 2 * (x[row * I + 1] > 0) + (row % 3 == 0);
        check(lstm_optim_zero_grads(optim));
        check(lstm_model_forward_train(model, workspace, T, B, NULL, x, NULL, NULL, y, NULL, NULL));
        check(lstm_dense_forward(dense, T * B, y, z));
        check(lstm_loss_cross_entropy(T * B, CLASSES, z, targets, -1, &out->loss[step], dz));
        check(lstm_dense_backward(dense, T * B, y, dz, dy));
        check(lstm_model_backward(model, workspace, dy, NULL, NULL, NULL, NULL, NULL));
        check(lstm_optim_clip_grad_norm(optim, 0.5, &out->norm[step]));
        check(lstm_optim_step(optim));
    }

    const size_t model_count = lstm_model_param_count(model);
    out->param_count = model_count + dense_count;
    out->params = malloc(out->param_count * sizeof(float));
    check(lstm_optim_state_size(optim, &out->optim_bytes));
    out->optim_state = malloc(out->optim_bytes);
    assert_true(out->params != NULL && out->optim_state != NULL);
    check(lstm_model_get_params(model, out->params, model_count));
    memcpy(out->params + model_count, dense_params, dense_count * sizeof(float));
    check(lstm_optim_save_state(optim, out->optim_state, out->optim_bytes));

    free(x);
    free(y);
    free(dy);
    free(z);
    free(dz);
    free(targets);
    lstm_optim_destroy(optim);
    lstm_dense_destroy(dense);
    lstm_workspace_destroy(workspace);
    lstm_model_destroy(model);
}

static void record_free(record *r)
{
    free(r->params);
    free(r->optim_state);
}

static bool same_record(const record *a, const record *b)
{
    return memcmp(a->loss, b->loss, sizeof a->loss) == 0 &&
           memcmp(a->norm, b->norm, sizeof a->norm) == 0 && a->param_count == b->param_count &&
           memcmp(a->params, b->params, a->param_count * sizeof(float)) == 0 &&
           a->optim_bytes == b->optim_bytes &&
           memcmp(a->optim_state, b->optim_state, a->optim_bytes) == 0;
}

/* 64-bit FNV-1a over every byte of a record. */
static uint64_t fnv1a(uint64_t hash, const void *data, size_t size)
{
    const unsigned char *bytes = data;
    for (size_t k = 0; k < size; k++)
        hash = (hash ^ bytes[k]) * 0x100000001B3u;
    return hash;
}

static uint64_t digest(const record *r)
{
    uint64_t hash = 0xCBF29CE484222325u;
    hash = fnv1a(hash, r->loss, sizeof r->loss);
    hash = fnv1a(hash, r->norm, sizeof r->norm);
    hash = fnv1a(hash, r->params, r->param_count * sizeof(float));
    return fnv1a(hash, r->optim_state, r->optim_bytes);
}

/* ---- the tests ------------------------------------------------------------- */

static void test_same_process(void **unused)
{
    (void)unused;
    record first, second, other_seed;
    trajectory(7, &first);
    trajectory(7, &second);
    trajectory(8, &other_seed);
    assert_true(same_record(&first, &second));
    assert_false(same_record(&first, &other_seed));
    /* it learned something: the loss went down */
    assert_true(first.loss[STEPS - 1] < first.loss[0]);
    record_free(&first);
    record_free(&second);
    record_free(&other_seed);
}

/* The digest printed by `self --digest` in a new process. */
static uint64_t digest_of_new_process(void)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    posix_spawn_file_actions_t actions;
    assert_int_equal(posix_spawn_file_actions_init(&actions), 0);
    assert_int_equal(posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO), 0);
    assert_int_equal(posix_spawn_file_actions_addclose(&actions, fds[0]), 0);
    /* The binary by its path (SELF_PATH, from CMake): /proc/self/exe would
     * be valgrind itself under memcheck. */
    char self[] = SELF_PATH, option[] = "--digest";
    char *argv[] = {self, option, NULL};
    pid_t child;
    assert_int_equal(posix_spawn(&child, self, &actions, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    char text[64] = {0};
    size_t got = 0;
    for (ssize_t n;
         got < sizeof text - 1 && (n = read(fds[0], text + got, sizeof text - 1 - got)) > 0;)
        got += (size_t)n;
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    uint64_t value = 0;
    assert_int_equal(sscanf(text, "%" SCNx64, &value), 1);
    return value;
}

static void test_new_process(void **unused)
{
    (void)unused;
    record mine;
    trajectory(7, &mine);
    const uint64_t here = digest(&mine), there = digest_of_new_process();
    print_message("trajectory digest %016" PRIx64 " here, %016" PRIx64 " in a new process\n", here,
                  there);
    assert_true(here == there);
    record_free(&mine);
}

/* The thread-count tests' shapes, one for each way the threads split a
 * pass (src/schedule.h):
 *  - B = 32 with small weights: each thread takes whole sequences
 *    through every step (lstm__schedule_sequences_pay());
 *  - B = 8 with weights over 512 KB (H = 256): the threads share each
 *    step, taking panels of units (lstm__schedule_units_pay()) where each
 *    thread's share is up to 1 MB, and else splitting the product by panels and
 *    the cells by rows (the second layer of a bidirectional network);
 *  - B = 2: the x part of the forward products, and dx, are taken out of
 *    the loop (lstm__schedule_hoist_input()), and H = 128 is the least for
 *    which the pool still pays at so few rows. */
typedef struct sizes {
    size_t hidden, batch;
} sizes;

static const sizes SEQUENCES = {H, B}, UNITS = {256, 8}, FEW_ROWS = {128, 2};
static const sizes *const THREAD_SIZES[] = {&SEQUENCES, &UNITS, &FEW_ROWS};
enum { THREAD_SIZE_COUNT = sizeof THREAD_SIZES / sizeof THREAD_SIZES[0] };

static void forward_at(int threads, sizes z, lstm_model *model, lstm_workspace *workspace,
                       const float *x, float *y)
{
    assert_true(test_set_blas_threads(threads));
    check(lstm_model_forward(model, workspace, T, z.batch, NULL, x, NULL, NULL, y, NULL, NULL));
}

/* An I -> hidden model of `layers` layers with these flags and projection,
 * initialised from seed, and its workspace. */
static void create_model(size_t hidden, size_t layers, uint32_t flags, size_t proj_size,
                         uint64_t seed, lstm_model **model, lstm_workspace **workspace)
{
    lstm_config config;
    check(lstm_config_init(&config, sizeof config));
    config.input_size = I;
    config.hidden_size = hidden;
    config.num_layers = layers;
    config.flags = flags;
    config.proj_size = proj_size;
    check(lstm_model_create(&config, model));
    check(lstm_model_init(*model, seed, 0));
    check(lstm_workspace_create(*model, workspace));
}

static void check_inference_ignores_thread_count(sizes z)
{
    lstm_model *model = NULL;
    lstm_workspace *workspace = NULL;
    create_model(z.hidden, L, 0, 0, 31, &model, &workspace);
    const size_t inputs = T * z.batch * I, outputs = T * z.batch * z.hidden;
    float *x = malloc(inputs * sizeof(float));
    float *one = malloc(outputs * sizeof(float)), *two = malloc(outputs * sizeof(float));
    assert_true(x != NULL && one != NULL && two != NULL);
    uint32_t data = 17;
    fill_uniform(x, inputs, &data);
    forward_at(1, z, model, workspace, x, one);
    forward_at(2, z, model, workspace, x, two);
    assert_memory_equal(one, two, outputs * sizeof(float));
    test_set_blas_threads(2);
    free(x);
    free(one);
    free(two);
    lstm_workspace_destroy(workspace);
    lstm_model_destroy(model);
}

static void test_inference_ignores_thread_count(void **unused)
{
    (void)unused;
    own_kernel_only();
    if (!test_set_blas_threads(2))
        skip(); /* a BLAS without a run-time thread setter */
    for (size_t k = 0; k < THREAD_SIZE_COUNT; k++)
        check_inference_ignores_thread_count(*THREAD_SIZES[k]);
}

/* One training forward and backward at `threads`: y, dx and the LSTM's
 * gradients, one after the other in out (y being [T][batch][out_cols]). */
static void train_at(int threads, sizes z, lstm_model *model, lstm_workspace *workspace,
                     const size_t *lengths, size_t out_cols, const float *x, const float *dy,
                     float *out)
{
    assert_true(test_set_blas_threads(threads));
    float *y = out, *dx = out + T * z.batch * out_cols, *grads = dx + T * z.batch * I;
    check(lstm_model_zero_grads(model));
    check(lstm_model_forward_train(model, workspace, T, z.batch, lengths, x, NULL, NULL, y, NULL,
                                   NULL));
    check(lstm_model_backward(model, workspace, dy, NULL, NULL, dx, NULL, NULL));
    float *data = NULL;
    size_t count = 0;
    check(lstm_model_grads(model, &data, &count));
    memcpy(grads, data, count * sizeof(float));
}

/* Training at 1 and at 2 threads gives the same bits, for a model with
 * these flags and projection, on sequences of these lengths (or NULL). */
static void check_training_ignores_thread_count(sizes z, uint32_t flags, size_t proj_size,
                                                const size_t *lengths)
{
    lstm_model *model = NULL;
    lstm_workspace *workspace = NULL;
    create_model(z.hidden, L, flags, proj_size, 37, &model, &workspace);
    const size_t out_cols =
        ((flags & LSTM_BIDIRECTIONAL) ? 2 : 1) * (proj_size != 0 ? proj_size : z.hidden);
    const size_t params = lstm_model_param_count(model), rows = T * z.batch;
    const size_t count = rows * out_cols + rows * I + params;
    float *x = malloc(rows * I * sizeof(float)), *dy = malloc(rows * out_cols * sizeof(float));
    float *one = malloc(count * sizeof(float)), *two = malloc(count * sizeof(float));
    assert_true(x != NULL && dy != NULL && one != NULL && two != NULL);
    uint32_t data = 23;
    fill_uniform(x, rows * I, &data);
    fill_uniform(dy, rows * out_cols, &data);
    train_at(1, z, model, workspace, lengths, out_cols, x, dy, one);
    train_at(2, z, model, workspace, lengths, out_cols, x, dy, two);
    assert_memory_equal(one, two, count * sizeof(float));
    test_set_blas_threads(2);
    free(x);
    free(dy);
    free(one);
    free(two);
    lstm_workspace_destroy(workspace);
    lstm_model_destroy(model);
}

/* However two threads split a pass (whole sequences each; panels of units
 * through each step; with a projection at B = 8, each product and the rows
 * of the cells), and with the x part in the loop or out of it, the same
 * bits. */
static void test_training_ignores_thread_count(void **unused)
{
    (void)unused;
    own_kernel_only();
    if (!test_set_blas_threads(2))
        skip();
    size_t lengths[B];
    for (size_t b = 0; b < B; b++)
        lengths[b] = 1 + (b * 7) % T;
    for (size_t k = 0; k < THREAD_SIZE_COUNT; k++) {
        const sizes z = *THREAD_SIZES[k];
        check_training_ignores_thread_count(z, 0, 0, NULL);
        check_training_ignores_thread_count(z, LSTM_BIDIRECTIONAL | LSTM_PEEPHOLE, 0, lengths);
        check_training_ignores_thread_count(z, LSTM_BIDIRECTIONAL, 64, lengths);
    }
}

/* ---- a sequence's results do not depend on its batch ---------------------- */

/*
 * Six sequences of different lengths through a 2-layer bidirectional model
 * with peepholes and given states, as one batch (B = 6: each step's
 * product on all of S_t) and in groups of `part` (B = 1 or 3: the x part
 * out of the loop, lstm__schedule_hoist_input()): y, hT, cT and, after
 * backward, dx, dh0 and dc0 are the same bits. Over 100 steps a group of 3 has more
 * rows than the hoisted dx takes at a time (SCHEDULE_HOIST_ROWS, 256).
 */
enum { BATCH = 6, STATES = L * 2 };

typedef struct run_io {
    size_t steps, batch;
    float *x, *h0, *c0, *dy, *dhT, *dcT; /* inputs */
    float *y, *hT, *cT, *dx, *dh0, *dc0; /* outputs */
} run_io;

static void run_io_alloc(run_io *io, size_t steps, size_t batch)
{
    const size_t rows = steps * batch, state = STATES * batch * H;
    io->steps = steps;
    io->batch = batch;
    float **states[] = {&io->h0, &io->c0, &io->dhT, &io->dcT, &io->hT, &io->cT, &io->dh0, &io->dc0};
    for (size_t k = 0; k < sizeof states / sizeof *states; k++)
        assert_non_null(*states[k] = calloc(state, sizeof(float)));
    assert_non_null(io->x = calloc(rows * I, sizeof(float)));
    assert_non_null(io->dx = calloc(rows * I, sizeof(float)));
    assert_non_null(io->y = calloc(rows * 2 * H, sizeof(float)));
    assert_non_null(io->dy = calloc(rows * 2 * H, sizeof(float)));
}

static void run_io_free(run_io *io)
{
    float *all[] = {io->x, io->h0, io->c0, io->dy, io->dhT, io->dcT,
                    io->y, io->hT, io->cT, io->dx, io->dh0, io->dc0};
    for (size_t k = 0; k < sizeof all / sizeof *all; k++)
        free(all[k]);
}

/* Row b of a [steps][batch][width] tensor at step t. */
static float *step_row(float *tensor, const run_io *io, size_t t, size_t b, size_t width)
{
    return tensor + (t * io->batch + b) * width;
}

/* Row b of a [STATES][batch][H] tensor for layer and direction `index`. */
static float *state_row(float *tensor, const run_io *io, size_t index, size_t b)
{
    return tensor + (index * io->batch + b) * H;
}

static void forward_backward(lstm_model *model, lstm_workspace *workspace, const size_t *lengths,
                             run_io *io)
{
    check(lstm_model_forward_train(model, workspace, io->steps, io->batch, lengths, io->x, io->h0,
                                   io->c0, io->y, io->hT, io->cT));
    check(
        lstm_model_backward(model, workspace, io->dy, io->dhT, io->dcT, io->dx, io->dh0, io->dc0));
}

static void check_batch_changes_no_bits(size_t steps, const size_t lengths[BATCH], size_t part)
{
    const size_t Y = 2 * H;
    lstm_model *model = NULL;
    lstm_workspace *workspace = NULL;
    create_model(H, L, LSTM_BIDIRECTIONAL | LSTM_PEEPHOLE, 0, 41, &model, &workspace);
    run_io all, group;
    run_io_alloc(&all, steps, BATCH);
    run_io_alloc(&group, steps, part);
    uint32_t data = 29;
    fill_uniform(all.x, steps * BATCH * I, &data);
    fill_uniform(all.dy, steps * BATCH * Y, &data);
    float *inputs[] = {all.h0, all.c0, all.dhT, all.dcT};
    float *group_inputs[] = {group.h0, group.c0, group.dhT, group.dcT};
    for (size_t k = 0; k < 4; k++)
        fill_uniform(inputs[k], STATES * BATCH * H, &data);
    forward_backward(model, workspace, lengths, &all);
    float *outputs[] = {all.hT, all.cT, all.dh0, all.dc0};
    float *group_outputs[] = {group.hT, group.cT, group.dh0, group.dc0};

    for (size_t first = 0; first < BATCH; first += part) {
        /* the group's inputs, taken from the batch's */
        for (size_t b = 0; b < part; b++) {
            for (size_t t = 0; t < steps; t++) {
                memcpy(step_row(group.x, &group, t, b, I), step_row(all.x, &all, t, first + b, I),
                       I * sizeof(float));
                memcpy(step_row(group.dy, &group, t, b, Y), step_row(all.dy, &all, t, first + b, Y),
                       Y * sizeof(float));
            }
            for (size_t index = 0; index < STATES; index++)
                for (size_t k = 0; k < 4; k++)
                    memcpy(state_row(group_inputs[k], &group, index, b),
                           state_row(inputs[k], &all, index, first + b), H * sizeof(float));
        }
        forward_backward(model, workspace, lengths + first, &group);
        /* its outputs, the batch's bit for bit */
        for (size_t b = 0; b < part; b++) {
            for (size_t t = 0; t < lengths[first + b]; t++) {
                assert_memory_equal(step_row(group.y, &group, t, b, Y),
                                    step_row(all.y, &all, t, first + b, Y), Y * sizeof(float));
                assert_memory_equal(step_row(group.dx, &group, t, b, I),
                                    step_row(all.dx, &all, t, first + b, I), I * sizeof(float));
            }
            for (size_t index = 0; index < STATES; index++)
                for (size_t k = 0; k < 4; k++)
                    assert_memory_equal(state_row(group_outputs[k], &group, index, b),
                                        state_row(outputs[k], &all, index, first + b),
                                        H * sizeof(float));
        }
    }
    run_io_free(&all);
    run_io_free(&group);
    lstm_workspace_destroy(workspace);
    lstm_model_destroy(model);
}

static void test_batch_changes_no_bits(void **unused)
{
    (void)unused;
    own_kernel_only();
    const size_t short_lengths[BATCH] = {T, 3, 7, 1, T, 5};
    const size_t long_lengths[BATCH] = {100, 90, 70, 1, 100, 50};
    check_batch_changes_no_bits(T, short_lengths, 1);
    check_batch_changes_no_bits(T, short_lengths, 3);
    check_batch_changes_no_bits(100, long_lengths, 3); /* 260 rows in the first group */
}

/* ---- inference gives what training gives --------------------------------- */

/*
 * A model's inference and its training forward give the same y, hT and cT,
 * bit for bit, though inference may hoist the x part of its products out
 * of the loop a chunk of whole steps at a time (at most
 * schedule_hoist_chunk() = 256 rows) where training runs them all at once
 * or not at all.
 */
static void check_inference_matches_training(size_t hidden, size_t layers, uint32_t flags,
                                             size_t steps, size_t batch, const size_t *lengths)
{
    lstm_model *model = NULL;
    lstm_workspace *workspace = NULL;
    create_model(hidden, layers, flags, 0, 43, &model, &workspace);
    const size_t directions = (flags & LSTM_BIDIRECTIONAL) ? 2 : 1;
    const size_t outputs = steps * batch * directions * hidden;
    const size_t states = layers * directions * batch * hidden;
    const size_t count = outputs + 2 * states; /* y, hT, cT */
    float *x = malloc(steps * batch * I * sizeof(float));
    float *infer = malloc(count * sizeof(float)), *train = malloc(count * sizeof(float));
    assert_true(x != NULL && infer != NULL && train != NULL);
    uint32_t data = 47;
    fill_uniform(x, steps * batch * I, &data);
    float *results[] = {infer, train};
    for (int training = 0; training <= 1; training++) {
        float *y = results[training], *hT = y + outputs, *cT = hT + states;
        if (training)
            check(lstm_model_forward_train(model, workspace, steps, batch, lengths, x, NULL, NULL,
                                           y, hT, cT));
        else
            check(lstm_model_forward(model, workspace, steps, batch, lengths, x, NULL, NULL, y, hT,
                                     cT));
    }
    assert_memory_equal(infer, train, count * sizeof(float));
    free(x);
    free(infer);
    free(train);
    lstm_workspace_destroy(workspace);
    lstm_model_destroy(model);
}

static void test_inference_matches_training(void **unused)
{
    (void)unused;
    own_kernel_only();
    /* B = 3 hoists in both modes; inference in chunks of at most 256 rows:
     * 96 steps then 4 forward, 97 then 3 in reverse */
    const size_t few[3] = {100, 64, 100};
    check_inference_matches_training(H, L, LSTM_BIDIRECTIONAL | LSTM_PEEPHOLE, 100, 3, few);
    /* 17 MB of packed weights (4H x (H + I), H = 1024): inference hoists,
     * training does not; 264 rows, so two chunks of steps */
    const size_t wide[8] = {40, 38, 36, 34, 32, 30, 28, 26};
    check_inference_matches_training(1024, 1, 0, 40, 8, wide);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--digest") == 0) {
        record mine;
        trajectory(7, &mine);
        printf("%016" PRIx64 "\n", digest(&mine));
        record_free(&mine);
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_process),
        cmocka_unit_test(test_new_process),
        cmocka_unit_test(test_inference_ignores_thread_count),
        cmocka_unit_test(test_training_ignores_thread_count),
        cmocka_unit_test(test_batch_changes_no_bits),
        cmocka_unit_test(test_inference_matches_training),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
