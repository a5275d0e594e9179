/*
 * Thread safety, as lstm/lstm.h states it: eight threads share one model
 * and one dense layer that they only read, each with its own workspace and
 * its own stream state, all running at once; every result must be bit for
 * bit what one thread computes alone.
 *
 * Thread j works on inputs of its own (x, h0, c0, sequence lengths) and,
 * REPEATS times over, runs
 *   - lstm_model_forward()          -> y, hT, cT
 *   - lstm_model_forward_train()    -> y
 *   - lstm_model_stream() in two chunks on its state -> y, then the state
 *   - lstm_dense_forward() on the shared layer -> z
 *   - lstm_model_save_buffer()      -> the file's bytes
 * The references come from the main thread, one job after another, before
 * any thread starts. Each thread also makes one call fail with a message of
 * its own, which must still be its message at the end: messages are per
 * thread, and successful calls do not clear them.
 *
 * The shapes make every per-step product large enough (B 4H (R + I) = 3.1
 * million multiply-adds) for the workspaces' pools to split it, so under
 * ThreadSanitizer (tests/run.sh) the pools' hand-offs are checked along
 * with the sharing. CMake runs it with OPENBLAS_NUM_THREADS=2, so each
 * workspace has a pool of 2 threads: 8 callers, 16 threads. (Built with
 * LSTM_STEP_PRODUCTS=blas, the per-step products are OpenBLAS calls from
 * the eight callers at once, each on the BLAS's 2 threads as the main
 * thread's were, so the bits are still the main thread's.)
 */
#define _POSIX_C_SOURCE 200809L /* POSIX threads and barriers */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lstm/lstm.h"

enum {
    THREADS = 8,
    REPEATS = 2,
    I = 64,
    H = 128,
    L = 2,
    T = 5,
    B = 32,
    CLASSES = 10,
    X = T * B * I,
    Y = T * B * H,
    STATE = L * B * H,
    Z = B * CLASSES
};

/* One thread's inputs and what it computed. */
typedef struct job {
    size_t index;
    const lstm_model *model;
    const lstm_dense *dense;
    float *x, *h0, *c0;
    size_t lengths[B];
    float *y, *hT, *cT; /* lstm_model_forward */
    float *y_train;     /* lstm_model_forward_train */
    float *y_stream, *h_stream, *c_stream;
    float *z; /* lstm_dense_forward on the last step of y */
    unsigned char *file;
    size_t file_size;
    int failures;      /* calls that failed or results that disagreed */
    char message[160]; /* this thread's own error message, at the end */
} job;

static float *floats(size_t count)
{
    float *values = malloc(count * sizeof(float));
    assert_non_null(values);
    return values;
}

static void fill(float *values, size_t count, uint32_t seed)
{
    uint32_t state = seed * 2654435761u + 7u;
    for (size_t k = 0; k < count; k++) {
        state = state * 1664525u + 1013904223u;
        values[k] = (float)(state >> 8) * 0x1p-23f - 1.0f;
    }
}

static void job_init(job *j, size_t index, const lstm_model *model, const lstm_dense *dense,
                     size_t file_size)
{
    memset(j, 0, sizeof *j);
    j->index = index;
    j->model = model;
    j->dense = dense;
    j->x = floats(X);
    j->h0 = floats(STATE);
    j->c0 = floats(STATE);
    fill(j->x, X, (uint32_t)(3 * index + 1));
    fill(j->h0, STATE, (uint32_t)(3 * index + 2));
    fill(j->c0, STATE, (uint32_t)(3 * index + 3));
    for (size_t b = 0; b < B; b++)
        j->lengths[b] = 1 + (b * 7 + index) % T;
    j->y = floats(Y);
    j->hT = floats(STATE);
    j->cT = floats(STATE);
    j->y_train = floats(Y);
    j->y_stream = floats(Y);
    j->h_stream = floats(STATE);
    j->c_stream = floats(STATE);
    j->z = floats(Z);
    j->file_size = file_size;
    j->file = malloc(file_size);
    assert_non_null(j->file);
}

static void job_free(job *j)
{
    float *buffers[] = {j->x,       j->h0,       j->c0,       j->y,        j->hT, j->cT,
                        j->y_train, j->y_stream, j->h_stream, j->c_stream, j->z};
    for (size_t n = 0; n < sizeof buffers / sizeof buffers[0]; n++)
        free(buffers[n]);
    free(j->file);
}

/* Every call of a job once, writing into out (a job of the same inputs).
 * Returns the number of calls that failed. */
static int run_once(const job *in, job *out, lstm_workspace *workspace, lstm_state *state)
{
    int failed = 0;
    failed += lstm_model_forward(in->model, workspace, T, B, in->lengths, in->x, in->h0, in->c0,
                                 out->y, out->hT, out->cT) != LSTM_OK;
    failed += lstm_model_forward_train(in->model, workspace, T, B, in->lengths, in->x, in->h0,
                                       in->c0, out->y_train, NULL, NULL) != LSTM_OK;
    /* two chunks, 2 and T - 2 steps, continuing from h0 and c0 */
    failed += lstm_state_set(state, in->h0, in->c0) != LSTM_OK;
    failed += lstm_model_stream(in->model, state, 2, in->x, out->y_stream) != LSTM_OK;
    failed += lstm_model_stream(in->model, state, T - 2, in->x + 2 * B * I,
                                out->y_stream + 2 * B * H) != LSTM_OK;
    failed += lstm_state_get(state, out->h_stream, out->c_stream) != LSTM_OK;
    failed += lstm_dense_forward(in->dense, B, out->y_stream + (T - 1) * B * H, out->z) != LSTM_OK;
    size_t size = 0;
    failed += lstm_model_save_buffer(in->model, NULL, out->file, out->file_size, &size) != LSTM_OK;
    failed += size != out->file_size;
    return failed;
}

static int same(const void *a, const void *b, size_t bytes)
{
    return memcmp(a, b, bytes) == 0;
}

/* The results of b agree with a's, bit for bit. */
static int same_results(const job *a, const job *b)
{
    return same(a->y, b->y, Y * sizeof(float)) && same(a->hT, b->hT, STATE * sizeof(float)) &&
           same(a->cT, b->cT, STATE * sizeof(float)) &&
           same(a->y_train, b->y_train, Y * sizeof(float)) &&
           same(a->y_stream, b->y_stream, Y * sizeof(float)) &&
           same(a->h_stream, b->h_stream, STATE * sizeof(float)) &&
           same(a->c_stream, b->c_stream, STATE * sizeof(float)) &&
           same(a->z, b->z, Z * sizeof(float)) && same(a->file, b->file, a->file_size);
}

static pthread_barrier_t start_together;

/* Runs jobs[0] REPEATS times, the later repeats into jobs[1], compared. */
static void *thread_main(void *arg)
{
    job *j = arg, *scratch = j + THREADS;
    lstm_workspace *workspace = NULL;
    lstm_state *state = NULL;
    /* A failure with a message of this thread's own: layer 100 + index. */
    size_t offset;
    if (lstm_model_tensor(j->model, 100 + j->index, 0, LSTM_TENSOR_BIAS, &offset, NULL, NULL) !=
        LSTM_E_ARG)
        j->failures++;
    pthread_barrier_wait(&start_together);
    if (lstm_workspace_create(j->model, &workspace) != LSTM_OK ||
        lstm_state_create(j->model, B, &state) != LSTM_OK) {
        j->failures++;
    } else {
        j->failures += run_once(j, j, workspace, state);
        for (int k = 1; k < REPEATS; k++) {
            j->failures += run_once(j, scratch, workspace, state);
            j->failures += !same_results(j, scratch);
        }
    }
    snprintf(j->message, sizeof j->message, "%s", lstm_error_message());
    lstm_state_destroy(state);
    lstm_workspace_destroy(workspace);
    return NULL;
}

static void test_eight_threads_share_one_model(void **unused)
{
    (void)unused;
    lstm_config config;
    lstm_model *model = NULL;
    lstm_dense *dense = NULL;
    assert_int_equal(lstm_config_init(&config, sizeof config), LSTM_OK);
    config.input_size = I;
    config.hidden_size = H;
    config.num_layers = L;
    config.flags = LSTM_PEEPHOLE;
    assert_int_equal(lstm_model_create(&config, &model), LSTM_OK);
    assert_int_equal(lstm_model_init(model, 2024, LSTM_INIT_FORGET_BIAS_ONE), LSTM_OK);
    assert_int_equal(lstm_dense_create(H, CLASSES, &dense), LSTM_OK);
    assert_int_equal(lstm_dense_init(dense, 7), LSTM_OK);
    size_t file_size = 0;
    assert_int_equal(lstm_model_save_buffer(model, NULL, NULL, 0, &file_size), LSTM_OK);

    /* Alone: the main thread, one job after another. */
    job alone[THREADS], jobs[2 * THREADS]; /* each thread's, then its scratch */
    lstm_workspace *workspace = NULL;
    lstm_state *state = NULL;
    assert_int_equal(lstm_workspace_create(model, &workspace), LSTM_OK);
    assert_int_equal(lstm_state_create(model, B, &state), LSTM_OK);
    for (size_t n = 0; n < THREADS; n++) {
        job_init(&alone[n], n, model, dense, file_size);
        assert_int_equal(run_once(&alone[n], &alone[n], workspace, state), 0);
    }
    lstm_state_destroy(state);
    lstm_workspace_destroy(workspace);
    /* The jobs differ: a thread that computed another's job would be caught. */
    assert_false(same(alone[0].y, alone[1].y, Y * sizeof(float)));

    /* Together. */
    pthread_t threads[THREADS];
    assert_int_equal(pthread_barrier_init(&start_together, NULL, THREADS), 0);
    for (size_t n = 0; n < 2 * THREADS; n++)
        job_init(&jobs[n], n % THREADS, model, dense, file_size);
    for (size_t n = 0; n < THREADS; n++)
        assert_int_equal(pthread_create(&threads[n], NULL, thread_main, &jobs[n]), 0);
    for (size_t n = 0; n < THREADS; n++)
        assert_int_equal(pthread_join(threads[n], NULL), 0);
    pthread_barrier_destroy(&start_together);

    for (size_t n = 0; n < THREADS; n++) {
        char expected[64];
        snprintf(expected, sizeof expected, "layer %zu,", 100 + n);
        if (jobs[n].failures != 0 || !same_results(&alone[n], &jobs[n]) ||
            strstr(jobs[n].message, expected) == NULL)
            fail_msg("thread %zu: %d failed calls or repeats that disagreed; results %s the "
                     "single thread's; message \"%s\"",
                     n, jobs[n].failures,
                     same_results(&alone[n], &jobs[n]) ? "equal" : "differ from", jobs[n].message);
        job_free(&jobs[n]);
        job_free(&jobs[THREADS + n]);
        job_free(&alone[n]);
    }
    lstm_dense_destroy(dense);
    lstm_model_destroy(model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eight_threads_share_one_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
