/*
 * Workspaces are sized once and reused: after the first call of a shape,
 * forward and backward calls allocate nothing, and neither do optimizer
 * steps. A white-box test: it counts the library's own allocations through
 * alloc.h. It also checks how lstm__plan_run_groups() shares sequences between
 * threads (workspace.h), and that kept packed weights allocate only in
 * lstm_workspace_keep_weights().
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdlib.h>

#include "alloc.h"
#include "pool.h"
#include "workspace.h"
#include "lstm/lstm.h"

enum { I = 6, H = 9, T = 11, B = 4 };

typedef struct fixture {
    lstm_model *model;
    lstm_workspace *workspace;
    float x[T * B * I], y[T * B * H], hT[B * H], cT[B * H];
    float dy[T * B * H], dx[T * B * I], dh0[B * H], dc0[B * H];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    lstm_config config;
    if (f == NULL || lstm_config_init(&config, sizeof config) != LSTM_OK)
        return -1;
    config.input_size = I;
    config.hidden_size = H;
    if (lstm_model_create(&config, &f->model) != LSTM_OK ||
        lstm_model_init(f->model, 9, 0) != LSTM_OK ||
        lstm_workspace_create(f->model, &f->workspace) != LSTM_OK)
        return -1;
    for (size_t k = 0; k < T * B * I; k++)
        f->x[k] = (float)(k % 13) * 0.1f - 0.6f;
    for (size_t k = 0; k < T * B * H; k++)
        f->dy[k] = (float)(k % 7) * 0.1f - 0.3f;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    lstm_workspace_destroy(f->workspace);
    lstm_model_destroy(f->model);
    free(f);
    return 0;
}

static void train_step(fixture *f, size_t seq_len, size_t batch)
{
    assert_int_equal(lstm_model_forward_train(f->model, f->workspace, seq_len, batch, NULL, f->x,
                                              NULL, NULL, f->y, f->hT, f->cT),
                     LSTM_OK);
    assert_int_equal(
        lstm_model_backward(f->model, f->workspace, f->dy, NULL, NULL, f->dx, f->dh0, f->dc0),
        LSTM_OK);
}

static void infer(fixture *f, size_t seq_len, size_t batch)
{
    assert_int_equal(lstm_model_forward(f->model, f->workspace, seq_len, batch, NULL, f->x, NULL,
                                        NULL, f->y, f->hT, f->cT),
                     LSTM_OK);
}

static void test_repeated_calls_allocate_nothing(void **state)
{
    fixture *f = *state;
    infer(f, T, B);
    size_t before = lstm__mem_alloc_count();
    for (int n = 0; n < 5; n++)
        infer(f, T, B);
    infer(f, T - 3, B); /* smaller shapes fit too */
    infer(f, T, 1);
    assert_int_equal(lstm__mem_alloc_count(), before);

    train_step(f, T, B); /* training needs more: one growth */
    assert_int_equal(lstm__mem_alloc_count(), before + 1);
    before = lstm__mem_alloc_count();
    for (int n = 0; n < 5; n++)
        train_step(f, T, B);
    train_step(f, 1, 1);
    infer(f, T, B); /* a training-sized workspace serves inference */
    assert_int_equal(lstm__mem_alloc_count(), before);
}

/* Keeping the packed weights allocates their room once, in the keep call;
 * the calls that pack there and reuse them allocate nothing, and stopping
 * frees it. */
static void test_kept_weights_allocate_once(void **state)
{
    fixture *f = *state;
    infer(f, T, B);
    const size_t before = lstm__mem_alloc_count(), live = lstm__mem_live_count();
    assert_int_equal(lstm_workspace_keep_weights(f->workspace, 1), LSTM_OK);
    assert_int_equal(lstm__mem_alloc_count(), before + 1);
    assert_int_equal(lstm_workspace_keep_weights(f->workspace, 1), LSTM_OK); /* has it */
    for (int n = 0; n < 3; n++)
        infer(f, T, B);
    infer(f, T, 1); /* another batch: packed again, in the same room */
    assert_int_equal(lstm__mem_alloc_count(), before + 1);
    assert_int_equal(lstm_workspace_keep_weights(f->workspace, 0), LSTM_OK);
    assert_int_equal(lstm__mem_live_count(), live);
}

static void test_reserve_then_nothing(void **state)
{
    fixture *f = *state;
    size_t before = lstm__mem_alloc_count();
    assert_int_equal(lstm_workspace_reserve(f->workspace, LSTM_MODE_TRAIN, T, B), LSTM_OK);
    /* the arena, and the thread pool when the BLAS runs several threads */
    assert_true(lstm__mem_alloc_count() == before + 1 || lstm__mem_alloc_count() == before + 2);
    before = lstm__mem_alloc_count();
    for (size_t t = 1; t <= T; t++) {
        train_step(f, t, B);
        infer(f, t, B);
    }
    assert_int_equal(lstm__mem_alloc_count(), before);
}

static void test_size_query_matches_growth(void **state)
{
    fixture *f = *state;
    size_t bytes = 0;
    assert_int_equal(lstm_workspace_size(f->model, LSTM_MODE_TRAIN, T, B, &bytes), LSTM_OK);
    /* The training activations alone are T*B*(6H + I) floats. */
    assert_true(bytes >= (size_t)T * B * (6 * H + I) * sizeof(float));
    /* ... plus one packing of W (at most (4H + 31)(H + I + 31) floats) and
     * the weight gradient's packings (at most 512 (4H + H + I + 31) floats) */
    const size_t packing = (size_t)(4 * H + 31) * (H + I + 31) * sizeof(float) +
                           (size_t)512 * (5 * H + I + 31) * sizeof(float);
    assert_true(bytes <= (size_t)(T + 1) * B * (6 * H + I) * sizeof(float) + packing + 4096);
}

static void test_optimizer_steps_allocate_nothing(void **state)
{
    fixture *f = *state;
    lstm_optim_options options;
    lstm_optim *optim;
    assert_int_equal(lstm_optim_options_init(&options, sizeof options, LSTM_OPTIM_ADAM), LSTM_OK);
    options.flags = LSTM_OPTIM_AMSGRAD;
    options.threads = 2;
    assert_int_equal(lstm_optim_create(&options, &optim), LSTM_OK);
    assert_int_equal(lstm_optim_add_model(optim, f->model), LSTM_OK);
    train_step(f, T, B); /* the workspace's one growth */
    size_t before = lstm__mem_alloc_count();
    for (int n = 0; n < 5; n++) {
        assert_int_equal(lstm_optim_zero_grads(optim), LSTM_OK);
        train_step(f, T, B);
        assert_int_equal(lstm_optim_clip_grad_norm(optim, 1.0, NULL), LSTM_OK);
        assert_int_equal(lstm_optim_clip_grad_value(optim, 0.5), LSTM_OK);
        assert_int_equal(lstm_optim_step(optim), LSTM_OK);
    }
    assert_int_equal(lstm__mem_alloc_count(), before);
    lstm_optim_destroy(optim);
}

/* ---- groups of whole sequences for threads ---------------------------- */

enum { GROUP_PARTS = 3 };

/* The ranges the parts were given, in the order they ran. */
typedef struct group_record {
    atomic_size_t count;
    size_t first[GROUP_PARTS], last[GROUP_PARTS];
} group_record;

static void record_group(void *context, size_t first, size_t last)
{
    group_record *record = context;
    const size_t k = atomic_fetch_add(&record->count, 1);
    if (k < GROUP_PARTS) {
        record->first[k] = first;
        record->last[k] = last;
    }
}

static void test_groups_share_steps_evenly(void **state)
{
    (void)state;
    /* sorted longest first, as plans are: 48 steps in all */
    size_t length[] = {16, 10, 8, 6, 4, 2, 1, 1};
    enum { ROWS = 8 };
    size_t order[ROWS] = {0}, active[17] = {0}, offset[17] = {0};
    batch_plan plan = {.seq_len = 16,
                       .batch = ROWS,
                       .rows = 48,
                       .order = order,
                       .length = length,
                       .active = active,
                       .offset = offset};
    pool *workers = lstm__pool_create(GROUP_PARTS);
    if (workers == NULL)
        skip();
    group_record record = {.count = 0};
    lstm__plan_run_groups(workers, &plan, record_group, &record);
    lstm__pool_destroy(workers);
    /* About 16 steps each: row 0 alone (16); rows 1 and 2 (18); the rest
     * (14). Equal counts of rows would have given 26, 18 and 4. */
    const size_t want_first[GROUP_PARTS] = {0, 1, 3}, want_last[GROUP_PARTS] = {1, 3, ROWS};
    assert_int_equal(atomic_load(&record.count), GROUP_PARTS);
    for (size_t k = 0; k < GROUP_PARTS; k++) {
        /* the parts may have run in any order: find the one starting where
         * group k should */
        size_t j = 0;
        while (j < GROUP_PARTS && record.first[j] != want_first[k])
            j++;
        assert_true(j < GROUP_PARTS);
        assert_int_equal(record.last[j], want_last[k]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_repeated_calls_allocate_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kept_weights_allocate_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reserve_then_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_query_matches_growth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_optimizer_steps_allocate_nothing, setup, teardown),
        cmocka_unit_test(test_groups_share_steps_evenly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
