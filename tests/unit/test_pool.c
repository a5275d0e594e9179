/*
 * The thread pool (pool.h): every part of a call runs exactly once, whoever
 * claims it, and the ways a call can be handed over (to running workers; to
 * workers that are late, whose parts the caller takes; to the caller alone,
 * in a solo period) give a whole pass the same bits. The late and solo
 * paths depend on the machine's load, so the tests force them
 * (lstm__pool_force()); nothing here is timed. A white-box test: it reaches
 * a workspace's pool through workspace.h.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "workspace.h"
#include "lstm/lstm.h"

enum { THREADS = 3, CALLS = 2000 };

typedef struct counted {
    atomic_size_t runs[THREADS];
    atomic_size_t wrong_parts; /* calls with parts != THREADS */
} counted;

static void count_part(void *context, size_t part, size_t parts)
{
    counted *c = context;
    if (parts != THREADS || part >= THREADS) {
        atomic_fetch_add(&c->wrong_parts, 1);
        return;
    }
    atomic_fetch_add(&c->runs[part], 1);
}

/* CALLS calls under `force`: each part ran once per call. */
static pool_stats run_counted(pool_force force)
{
    pool *workers = lstm__pool_create(THREADS);
    if (workers == NULL)
        skip();
    lstm__pool_force(workers, force);
    counted c = {.wrong_parts = 0};
    for (size_t p = 0; p < THREADS; p++)
        atomic_init(&c.runs[p], 0);
    for (size_t call = 0; call < CALLS; call++)
        lstm__pool_run(workers, count_part, &c);
    const pool_stats stats = lstm__pool_stats(workers);
    lstm__pool_destroy(workers);
    assert_int_equal(atomic_load(&c.wrong_parts), 0);
    for (size_t p = 0; p < THREADS; p++)
        assert_int_equal(atomic_load(&c.runs[p]), CALLS);
    return stats;
}

static void test_every_part_once(void **unused)
{
    (void)unused;
    const pool_stats stats = run_counted(POOL_FORCE_NONE);
    assert_int_equal(stats.calls + stats.solo_calls, CALLS);
}

/* Late workers: the caller ran every part of every handed-over call, each
 * such call began a solo period, and the calls within one ran solo. */
static void test_late_workers(void **unused)
{
    (void)unused;
    const pool_stats stats = run_counted(POOL_FORCE_LATE);
    assert_true(stats.calls >= 1);
    assert_int_equal(stats.calls + stats.solo_calls, CALLS);
    assert_int_equal(stats.caller_parts, stats.calls * (THREADS - 1));
    assert_int_equal(stats.solo_periods, stats.calls);
    assert_int_equal(stats.waits, 0);
}

static void test_solo(void **unused)
{
    (void)unused;
    const pool_stats stats = run_counted(POOL_FORCE_SOLO);
    assert_int_equal(stats.calls, 0);
    assert_int_equal(stats.solo_calls, CALLS);
}

/* The BLAS's run-time thread setters; the one linked answers. */
extern void openblas_set_num_threads(int threads) __attribute__((weak));
extern void bli_thread_set_num_threads(long threads) __attribute__((weak));

static bool set_blas_threads(int threads)
{
    if (openblas_set_num_threads != NULL)
        openblas_set_num_threads(threads);
    else if (bli_thread_set_num_threads != NULL)
        bli_thread_set_num_threads(threads);
    else
        return false;
    return true;
}

enum { I = 7, T = 9, L = 2 };

static void fill(float *values, size_t count, uint32_t seed)
{
    for (size_t k = 0; k < count; k++) {
        seed = seed * 1664525u + 1013904223u;
        values[k] = (float)(seed >> 8) / (float)(1u << 24) - 0.5f;
    }
}

/*
 * A training forward and backward, then an inference, under `force`: y,
 * dx, the gradients and the inference's y, one after the other in out.
 * Shapes as test_determinism's, one for each way two threads split a pass:
 * whole sequences (H = 16, B = 32), panels of units (H = 256, B = 8), the x
 * part out of the loop (H = 128, B = 2).
 */
static void pass_under(pool_force force, size_t hidden, size_t batch, lstm_model *model,
                       lstm_workspace *workspace, float *out)
{
    const size_t rows = T * batch, params = lstm_model_param_count(model);
    float *x = malloc(rows * I * sizeof(float)), *dy = malloc(rows * hidden * sizeof(float));
    assert_true(x != NULL && dy != NULL);
    fill(x, rows * I, 5);
    fill(dy, rows * hidden, 6);
    /* a first call makes the workspace's pool */
    assert_int_equal(
        lstm_model_forward(model, workspace, T, batch, NULL, x, NULL, NULL, out, NULL, NULL),
        LSTM_OK);
    if (workspace->workers == NULL) {
        free(x);
        free(dy);
        skip();
    }
    lstm__pool_force(workspace->workers, force);
    float *y = out, *dx = y + rows * hidden, *grads = dx + rows * I, *inferred = grads + params;
    assert_int_equal(lstm_model_zero_grads(model), LSTM_OK);
    assert_int_equal(
        lstm_model_forward_train(model, workspace, T, batch, NULL, x, NULL, NULL, y, NULL, NULL),
        LSTM_OK);
    assert_int_equal(lstm_model_backward(model, workspace, dy, NULL, NULL, dx, NULL, NULL),
                     LSTM_OK);
    float *data = NULL;
    size_t count = 0;
    assert_int_equal(lstm_model_grads(model, &data, &count), LSTM_OK);
    memcpy(grads, data, count * sizeof(float));
    assert_int_equal(
        lstm_model_forward(model, workspace, T, batch, NULL, x, NULL, NULL, inferred, NULL, NULL),
        LSTM_OK);
    lstm__pool_force(workspace->workers, POOL_FORCE_NONE);
    free(x);
    free(dy);
}

static void check_same_bits(size_t hidden, size_t batch)
{
    lstm_config config;
    assert_int_equal(lstm_config_init(&config, sizeof config), LSTM_OK);
    config.input_size = I;
    config.hidden_size = hidden;
    config.num_layers = L;
    lstm_model *model = NULL;
    lstm_workspace *workspace = NULL;
    assert_int_equal(lstm_model_create(&config, &model), LSTM_OK);
    assert_int_equal(lstm_model_init(model, 41, 0), LSTM_OK);
    assert_int_equal(lstm_workspace_create(model, &workspace), LSTM_OK);
    const size_t rows = T * batch;
    const size_t count = 2 * rows * hidden + rows * I + lstm_model_param_count(model);
    float *handed = malloc(count * sizeof(float)), *late = malloc(count * sizeof(float));
    float *solo = malloc(count * sizeof(float));
    assert_true(handed != NULL && late != NULL && solo != NULL);
    pass_under(POOL_FORCE_NONE, hidden, batch, model, workspace, handed);
    pass_under(POOL_FORCE_LATE, hidden, batch, model, workspace, late);
    pass_under(POOL_FORCE_SOLO, hidden, batch, model, workspace, solo);
    assert_memory_equal(handed, late, count * sizeof(float));
    assert_memory_equal(handed, solo, count * sizeof(float));
    free(handed);
    free(late);
    free(solo);
    lstm_workspace_destroy(workspace);
    lstm_model_destroy(model);
}

static void test_passes_same_bits(void **unused)
{
    (void)unused;
    if (!set_blas_threads(2))
        skip(); /* a BLAS without a run-time thread setter */
    check_same_bits(16, 32);
    check_same_bits(256, 8);
    check_same_bits(128, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_part_once),
        cmocka_unit_test(test_late_workers),
        cmocka_unit_test(test_solo),
        cmocka_unit_test(test_passes_same_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
