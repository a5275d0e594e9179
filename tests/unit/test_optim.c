/*
 * The optimizer module's contract outside the torch.optim trajectories
 * (test_optim_parity) and end-to-end training (test_optim_train): defaults,
 * option checks, all-or-nothing steps, state save/restore validation,
 * thread-count independence, threads started once (not per step), and
 * bad input to every function.
 *
 * Issue 21: finite values that overflow, for every kind and variant, and
 * the limit on the step count. A step either leaves every parameter and
 * state value finite or changes nothing and returns LSTM_E_NONFINITE.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep, sysconf */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lstm/lstm.h"

enum { N = 300 };

/* The saved state is little-endian on every host (lstm/optim.h): its
 * fields are read and written here byte by byte, never with memcpy. */
static uint64_t get_le(const unsigned char *p, size_t width)
{
    uint64_t v = 0;
    for (size_t k = 0; k < width; k++)
        v |= (uint64_t)p[k] << (8 * k);
    return v;
}

static void put_le(unsigned char *p, size_t width, uint64_t v)
{
    for (size_t k = 0; k < width; k++)
        p[k] = (unsigned char)(v >> (8 * k));
}

static void put_le_float(unsigned char *p, float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    put_le(p, 4, bits);
}

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
        double *field = strcmp(bad[n].field, "lr") == 0             ? &o.lr
                        : strcmp(bad[n].field, "momentum") == 0     ? &o.momentum
                        : strcmp(bad[n].field, "weight_decay") == 0 ? &o.weight_decay
                        : strcmp(bad[n].field, "dampening") == 0    ? &o.dampening
                        : strcmp(bad[n].field, "lr_decay") == 0     ? &o.lr_decay
                        : strcmp(bad[n].field, "initial_accumulator_value") == 0
                            ? &o.initial_accumulator_value
                        : strcmp(bad[n].field, "alpha") == 0 ? &o.alpha
                        : strcmp(bad[n].field, "eps") == 0   ? &o.eps
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
    /* little-endian, whatever the host: the magic's low byte first */
    const unsigned char magic[4] = {0x54, 0x50, 0x4F, 0x4C};
    assert_memory_equal(saved, magic, 4);
    assert_int_equal(get_le(saved + 4, 4), 1);
    assert_int_equal(get_le(saved + 8, 4), LSTM_OPTIM_ADAM);
    assert_int_equal(get_le(saved + 12, 4), LSTM_OPTIM_AMSGRAD);
    assert_int_equal(get_le(saved + 16, 8), 1);
    assert_int_equal(get_le(saved + 24, 8), N);
    assert_int_equal(get_le(saved + 32, 8), 3);

    assert_int_equal(lstm_optim_save_state(optim, saved, bytes - 1), LSTM_E_SHAPE);
    assert_int_equal(lstm_optim_save_state(optim, NULL, bytes), LSTM_E_NULL);
    assert_int_equal(lstm_optim_save_state(NULL, saved, bytes), LSTM_E_NULL);
    assert_int_equal(lstm_optim_state_size(NULL, &bytes), LSTM_E_NULL);
    assert_int_equal(lstm_optim_state_size(optim, NULL), LSTM_E_NULL);

    /* Each kind of damage is refused and leaves the optimizer as it was.
     * Each field is written whole, little-endian. */
    struct {
        size_t offset, width; /* width 0: the state truncated to offset bytes */
        uint64_t value;
        lstm_status expected;
    } damage[] = {
        {0, 4, 0x4C4F5000u, LSTM_E_ARG},        /* magic */
        {4, 4, 7, LSTM_E_ARG},                  /* version */
        {8, 4, LSTM_OPTIM_ADAMW, LSTM_E_ARG},   /* kind */
        {12, 4, 0, LSTM_E_ARG},                 /* flags */
        {24, 8, N + 1, LSTM_E_SHAPE},           /* N */
        {32, 8, 2, LSTM_E_SHAPE},               /* S */
        {40, 4, 0x7FC00000u, LSTM_E_NONFINITE}, /* first value: NaN */
        {39, 0, 0, LSTM_E_SHAPE},               /* truncated header */
        {41, 0, 0, LSTM_E_SHAPE},               /* truncated arrays */
    };
    for (size_t n = 0; n < sizeof damage / sizeof damage[0]; n++) {
        memcpy(copy, saved, bytes);
        size_t length = damage[n].width ? bytes : damage[n].offset;
        if (damage[n].width != 0)
            put_le(copy + damage[n].offset, damage[n].width, damage[n].value);
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

/* ---- the optimizer's threads: started once, not per step ------------------ */

enum { MAX_LISTED_THREADS = 256 };

/* The ids of this process's threads, sorted. */
typedef struct thread_set {
    size_t count;
    long ids[MAX_LISTED_THREADS];
} thread_set;

static int compare_ids(const void *a, const void *b)
{
    const long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* From /proc/self/task (Linux); false where it cannot be read. */
static bool list_threads(thread_set *set)
{
    DIR *dir = opendir("/proc/self/task");
    if (dir == NULL)
        return false;
    set->count = 0;
    for (struct dirent *entry; (entry = readdir(dir)) != NULL;)
        if (entry->d_name[0] != '.' && set->count < MAX_LISTED_THREADS)
            set->ids[set->count++] = strtol(entry->d_name, NULL, 10);
    closedir(dir);
    qsort(set->ids, set->count, sizeof set->ids[0], compare_ids);
    return true;
}

static bool same_threads(const thread_set *a, const thread_set *b)
{
    return a->count == b->count && memcmp(a->ids, b->ids, a->count * sizeof a->ids[0]) == 0;
}

/* The threads of `now` that `before` does not list. */
static size_t threads_added(const thread_set *now, const thread_set *before)
{
    size_t added = 0;
    for (size_t i = 0; i < now->count; i++)
        added += bsearch(&now->ids[i], before->ids, before->count, sizeof before->ids[0],
                         compare_ids) == NULL;
    return added;
}

/* The threads listed once none beyond `before`'s are: a joined thread can
 * stay listed a moment after pthread_join() returns. Gives up after 2 s. */
static void settled_to(thread_set *set, const thread_set *before)
{
    const struct timespec pause = {0, 1000000};
    for (int tries = 0; tries < 2000; tries++) {
        assert_true(list_threads(set));
        if (threads_added(set, before) == 0)
            return;
        nanosleep(&pause, NULL);
    }
}

/* The threads once `count` of them are listed: a joined thread can stay
 * listed a moment after pthread_join() returns. Gives up after 2 s. */
static void settled_threads(thread_set *set, size_t count)
{
    const struct timespec pause = {0, 1000000};
    for (int tries = 0; tries < 2000; tries++) {
        assert_true(list_threads(set));
        if (set->count == count)
            return;
        nanosleep(&pause, NULL);
    }
}

/* Steps, clipping and a refused step, with the threads listed after each:
 * always exactly `expected`. */
static void steps_keep_threads(lstm_optim *optim, float *g, size_t count,
                               const thread_set *expected)
{
    thread_set now;
    for (uint32_t step = 0; step < 40; step++) {
        fill(g, count, 300 + step);
        double norm;
        assert_int_equal(lstm_optim_clip_grad_norm(optim, 1.0, &norm), LSTM_OK);
        assert_int_equal(lstm_optim_clip_grad_value(optim, 0.01), LSTM_OK);
        if (step == 20) {
            g[count / 2] = NAN;
            assert_int_equal(lstm_optim_step(optim), LSTM_E_NONFINITE);
            fill(g, count, 300 + step);
        }
        assert_int_equal(lstm_optim_step(optim), LSTM_OK);
        assert_true(list_threads(&now));
        if (!same_threads(&now, expected))
            fail_msg("after step %u: %zu threads, expected the same %zu as before it", step,
                     now.count, expected->count);
    }
}

/*
 * The optimizer's threads start once, at create (threads > 1) or at the
 * binding that first asks for them (threads = 0 and 2^20 parameters), and
 * are the same threads at every step until destroy ends them. A step that
 * started its own threads, as before issue 22, had none between steps.
 * (That it starts none even for the step's duration, and allocates nothing,
 * test_alloc_failure shows: a step passes no fault point.)
 */
static void test_threads_start_once(void **state)
{
    (void)state;
    thread_set before, started;
    if (!list_threads(&before))
        skip(); /* no /proc/self/task: not Linux */
    settled_threads(&before, before.count);
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    const size_t big = (size_t)1 << 20; /* PARALLEL_MIN_PARAMS of optim.c */
    float *p = malloc(big * sizeof(float)), *g = malloc(big * sizeof(float));
    assert_non_null(p);
    assert_non_null(g);
    const struct {
        uint32_t threads;
        size_t count;
        size_t at_create, at_binding; /* threads added */
    } cases[] = {
        {3, N, 2, 2},
        {1, N, 0, 0},
        {0, N, 0, 0},
        {0, big, 0, online < 2 ? 0 : (online < 8 ? (size_t)online : 8) - 1},
    };
    for (size_t n = 0; n < sizeof cases / sizeof cases[0]; n++) {
        lstm_optim_options o;
        assert_int_equal(lstm_optim_options_init(&o, sizeof o, LSTM_OPTIM_ADAM), LSTM_OK);
        o.threads = cases[n].threads;
        lstm_optim *optim = NULL;
        assert_int_equal(lstm_optim_create(&o, &optim), LSTM_OK);
        /* counted as threads `before` does not list: one an earlier test
         * joined may still be listed there, and leave the list meanwhile
         * (seen under qemu-user) */
        assert_true(list_threads(&started));
        assert_int_equal(threads_added(&started, &before), cases[n].at_create);
        fill(p, cases[n].count, 31);
        assert_int_equal(lstm_optim_add_buffer(optim, p, g, cases[n].count), LSTM_OK);
        assert_true(list_threads(&started));
        assert_int_equal(threads_added(&started, &before), cases[n].at_binding);
        steps_keep_threads(optim, g, cases[n].count, &started);
        lstm_optim_destroy(optim);
        thread_set after;
        settled_to(&after, &before);
        assert_int_equal(threads_added(&after, &before), 0);
    }
    free(p);
    free(g);
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

/* ---- issue 21: overflow of finite values, the step count's limit ------------------ */

/* One configuration of a kind; zero fields keep lstm_optim_options_init()'s defaults. */
typedef struct variant {
    const char *name;
    lstm_optim_kind kind;
    uint32_t flags;
    double lr, momentum, dampening, weight_decay, lr_decay;
    uint32_t threads;
} variant;

/* Every kind and variant; three threads split the N values of a buffer. */
static const variant variants[] = {
    {.name = "SGD", .kind = LSTM_OPTIM_SGD},
    {.name = "SGD momentum", .kind = LSTM_OPTIM_SGD, .momentum = 0.9, .threads = 3},
    {.name = "SGD momentum dampening", .kind = LSTM_OPTIM_SGD, .momentum = 0.9, .dampening = 0.5},
    {.name = "SGD Nesterov",
     .kind = LSTM_OPTIM_SGD,
     .flags = LSTM_OPTIM_NESTEROV,
     .momentum = 0.9,
     .threads = 3},
    {.name = "SGD Nesterov weight_decay maximize lr 1",
     .kind = LSTM_OPTIM_SGD,
     .flags = LSTM_OPTIM_NESTEROV | LSTM_OPTIM_MAXIMIZE,
     .lr = 1.0,
     .momentum = 0.9,
     .weight_decay = 0.5},
    {.name = "Adagrad", .kind = LSTM_OPTIM_ADAGRAD, .threads = 3},
    {.name = "Adagrad lr_decay 1", .kind = LSTM_OPTIM_ADAGRAD, .lr_decay = 1.0},
    {.name = "Adagrad weight_decay maximize",
     .kind = LSTM_OPTIM_ADAGRAD,
     .flags = LSTM_OPTIM_MAXIMIZE,
     .weight_decay = 0.5},
    {.name = "RMSprop", .kind = LSTM_OPTIM_RMSPROP},
    {.name = "RMSprop centered",
     .kind = LSTM_OPTIM_RMSPROP,
     .flags = LSTM_OPTIM_CENTERED,
     .threads = 3},
    {.name = "RMSprop momentum", .kind = LSTM_OPTIM_RMSPROP, .momentum = 0.9},
    {.name = "RMSprop centered momentum",
     .kind = LSTM_OPTIM_RMSPROP,
     .flags = LSTM_OPTIM_CENTERED,
     .momentum = 0.9,
     .threads = 3},
    {.name = "RMSprop centered momentum weight_decay maximize",
     .kind = LSTM_OPTIM_RMSPROP,
     .flags = LSTM_OPTIM_CENTERED | LSTM_OPTIM_MAXIMIZE,
     .momentum = 0.9,
     .weight_decay = 0.5},
    {.name = "Adam", .kind = LSTM_OPTIM_ADAM, .threads = 3},
    {.name = "Adam amsgrad", .kind = LSTM_OPTIM_ADAM, .flags = LSTM_OPTIM_AMSGRAD},
    {.name = "Adam weight_decay maximize lr 1",
     .kind = LSTM_OPTIM_ADAM,
     .flags = LSTM_OPTIM_MAXIMIZE,
     .lr = 1.0,
     .weight_decay = 0.5},
    {.name = "AdamW", .kind = LSTM_OPTIM_ADAMW},
    {.name = "AdamW amsgrad maximize",
     .kind = LSTM_OPTIM_ADAMW,
     .flags = LSTM_OPTIM_AMSGRAD | LSTM_OPTIM_MAXIMIZE,
     .threads = 3},
};

enum { VARIANTS = sizeof variants / sizeof variants[0] };

static lstm_optim *make_variant(const variant *v)
{
    lstm_optim_options options;
    assert_int_equal(lstm_optim_options_init(&options, sizeof options, v->kind), LSTM_OK);
    options.flags = v->flags;
    if (v->lr != 0.0)
        options.lr = v->lr;
    options.momentum = v->momentum;
    options.dampening = v->dampening;
    if (v->weight_decay != 0.0)
        options.weight_decay = v->weight_decay;
    options.lr_decay = v->lr_decay;
    options.threads = v->threads;
    lstm_optim *optim = NULL;
    assert_int_equal(lstm_optim_create(&options, &optim), LSTM_OK);
    return optim;
}

/* Two bound buffers, so that a value can sit in the second one, in the last
 * thread's share, and everything a step may change. */
typedef struct trial {
    lstm_optim *optim;
    float p[2][N], g[2][N];
    size_t bytes;
    unsigned char *state; /* saved before a step */
    float p_before[2][N];
} trial;

/* Where the large values go: one in each buffer, the second in the last share. */
static const size_t spots[2] = {5, N - 3};

static void trial_start(trial *t, const variant *v)
{
    t->optim = make_variant(v);
    for (size_t b = 0; b < 2; b++) {
        fill(t->p[b], N, 10 + (uint32_t)b);
        fill(t->g[b], N, 20 + (uint32_t)b);
        assert_int_equal(lstm_optim_add_buffer(t->optim, t->p[b], t->g[b], N), LSTM_OK);
    }
    assert_int_equal(lstm_optim_state_size(t->optim, &t->bytes), LSTM_OK);
    t->state = malloc(t->bytes);
    assert_non_null(t->state);
}

static void trial_end(trial *t)
{
    lstm_optim_destroy(t->optim);
    free(t->state);
}

static bool all_finite(const float *values, size_t count)
{
    for (size_t k = 0; k < count; k++)
        if (!isfinite(values[k]))
            return false;
    return true;
}

/*
 * One step under the rule of issue 21: LSTM_OK with every parameter and
 * state value finite, or LSTM_E_NONFINITE with parameters, state and step
 * count unchanged to the bit. Returns NULL, or what broke the rule.
 */
static const char *step_under_the_rule(trial *t, lstm_status *status)
{
    uint64_t steps_before, steps;
    *status = LSTM_E_STATE; /* no step taken */
    if (lstm_optim_save_state(t->optim, t->state, t->bytes) != LSTM_OK)
        return "the state before the step is not finite";
    memcpy(t->p_before, t->p, sizeof t->p);
    assert_int_equal(lstm_optim_step_count(t->optim, &steps_before), LSTM_OK);
    *status = lstm_optim_step(t->optim);
    unsigned char *after = malloc(t->bytes);
    assert_non_null(after);
    lstm_status saved = lstm_optim_save_state(t->optim, after, t->bytes);
    bool same_state = saved == LSTM_OK && memcmp(after, t->state, t->bytes) == 0;
    free(after);
    assert_int_equal(lstm_optim_step_count(t->optim, &steps), LSTM_OK);
    if (*status == LSTM_OK) {
        if (!all_finite(&t->p[0][0], 2 * N))
            return "LSTM_OK with a parameter NaN or infinite";
        if (saved != LSTM_OK)
            return "LSTM_OK with a state value NaN or infinite (save_state refuses it)";
        if (steps != steps_before + 1)
            return "LSTM_OK without counting the step";
        return NULL;
    }
    if (*status != LSTM_E_NONFINITE)
        return "a status other than LSTM_OK and LSTM_E_NONFINITE";
    if (memcmp(t->p, t->p_before, sizeof t->p) != 0)
        return "LSTM_E_NONFINITE with a parameter changed";
    if (!same_state)
        return "LSTM_E_NONFINITE with the state changed";
    if (steps != steps_before)
        return "LSTM_E_NONFINITE with the step count changed";
    return NULL;
}

/* Sets every state array at the spots to +value and -value (through a load). */
static void set_state(trial *t, float value)
{
    assert_int_equal(lstm_optim_save_state(t->optim, t->state, t->bytes), LSTM_OK);
    size_t arrays = (t->bytes - 40) / (2 * N * sizeof(float));
    for (size_t s = 0; s < arrays; s++) {
        for (size_t b = 0; b < 2; b++) {
            float signed_value = b == 0 ? value : -value;
            size_t at = 40 + ((s * 2 + b) * N + spots[b]) * sizeof(float);
            put_le_float(t->state + at, signed_value);
        }
    }
    assert_int_equal(lstm_optim_load_state(t->optim, t->state, t->bytes), LSTM_OK);
}

/* Huge finite gradients, parameters and state, for every kind and variant,
 * from the first step and from the third, three steps in a row. */
static void test_huge_finite_values_never_make_nonfinite_ones(void **state)
{
    (void)state;
    const float gradients[] = {0.5f, 1e19f, 2e21f, 1e30f, 3e38f, -3e38f, FLT_MAX, -FLT_MAX};
    const float large[] = {0.0f, 1e30f, 3e38f, -3e38f, FLT_MAX};
    enum { GRADIENTS = sizeof gradients / sizeof gradients[0] };
    enum { LARGE = sizeof large / sizeof large[0] };
    size_t trials = 0, broken = 0, refused = 0;
    for (size_t n = 0; n < VARIANTS; n++) {
        const size_t broken_before = broken;
        for (int warmup = 0; warmup <= 2; warmup += 2) {
            /* gradient x (parameter or state, at most one of them large) */
            for (size_t gi = 0; gi < GRADIENTS; gi++) {
                for (size_t li = 0; li < 2 * LARGE - 1; li++) {
                    const bool on_state = li >= LARGE;
                    const float value = large[on_state ? li - LARGE + 1 : li];
                    trial t;
                    trial_start(&t, &variants[n]);
                    for (int k = 0; k < warmup; k++)
                        assert_int_equal(lstm_optim_step(t.optim), LSTM_OK);
                    for (size_t b = 0; b < 2; b++) {
                        t.g[b][spots[b]] = b == 0 ? gradients[gi] : -gradients[gi];
                        if (!on_state && value != 0.0f)
                            t.p[b][spots[b]] = b == 0 ? value : -value;
                    }
                    if (on_state)
                        set_state(&t, value);
                    for (int step = 0; step < 3; step++) {
                        lstm_status status;
                        const char *why = step_under_the_rule(&t, &status);
                        refused += status == LSTM_E_NONFINITE;
                        if (why == NULL)
                            continue;
                        if (broken++ < 12)
                            print_message("%s, after %d steps, gradient %g, %s %g, step %d: "
                                          "%s\n",
                                          variants[n].name, warmup, (double)gradients[gi],
                                          on_state ? "state" : "parameter", (double)value, step + 1,
                                          why);
                        break;
                    }
                    trials++;
                    trial_end(&t);
                }
            }
        }
        if (broken > broken_before)
            print_message("%s: %zu of %d trials broke the rule\n", variants[n].name,
                          broken - broken_before, 2 * GRADIENTS * (2 * LARGE - 1));
    }
    print_message("%zu trials, %zu steps refused, %zu broke the rule\n", trials, refused, broken);
    assert_int_equal(broken, 0);
    assert_true(refused > 0);
}

/* NULL when the step is refused with LSTM_E_NONFINITE, naming `named`, and
 * changes nothing; else what went wrong. */
static const char *refused_step(trial *t, const char *named)
{
    lstm_status status;
    const char *why = step_under_the_rule(t, &status);
    if (why != NULL)
        return why;
    if (status != LSTM_E_NONFINITE)
        return "the step is taken";
    if (strstr(lstm_error_message(), named) == NULL)
        return lstm_error_message();
    return NULL;
}

/* The cases of issue 21, each reported. */
static void test_issue_21_overflows_are_refused(void **state)
{
    (void)state;
    const struct {
        const char *what;
        variant v;
        size_t buffer, index; /* index N: the whole buffer */
        float gradient;
        int finite_steps; /* steps that stay finite before the one refused */
        const char *named;
    } cases[] = {
        {"centred RMSprop at 2e21: sq - ga * ga was inf - inf, every parameter NaN",
         {.kind = LSTM_OPTIM_RMSPROP, .flags = LSTM_OPTIM_CENTERED},
         0,
         N,
         2e21f,
         0,
         "parameter 0 of buffer 0"},
        {"SGD momentum at 3e38: the second step made the buffer, then the parameter, infinite",
         {.kind = LSTM_OPTIM_SGD, .momentum = 0.9},
         1,
         N - 3,
         3e38f,
         1,
         "parameter 297 of buffer 1"},
        {"SGD Nesterov at -3e38: d + momentum buf overflowed on the first step",
         {.kind = LSTM_OPTIM_SGD, .flags = LSTM_OPTIM_NESTEROV, .momentum = 0.9, .threads = 3},
         1,
         N - 3,
         -3e38f,
         0,
         "parameter 297 of buffer 1"},
        {"Adam at 1e30: v overflowed (|g| > 1.8e19), the state could no longer be saved",
         {.kind = LSTM_OPTIM_ADAM},
         0,
         7,
         1e30f,
         0,
         "parameter 7 of buffer 0"},
    };
    size_t failed = 0;
    for (size_t n = 0; n < sizeof cases / sizeof cases[0]; n++) {
        trial t;
        trial_start(&t, &cases[n].v);
        for (size_t k = 0; k < N; k++)
            if (cases[n].index == N || k == cases[n].index)
                t.g[cases[n].buffer][k] = cases[n].gradient;
        lstm_status status = LSTM_OK;
        for (int k = 0; k < cases[n].finite_steps; k++)
            assert_null(step_under_the_rule(&t, &status));
        assert_int_equal(status, LSTM_OK);
        const char *why = refused_step(&t, cases[n].named);
        if (why != NULL) {
            print_message("%s: %s\n", cases[n].what, why);
            failed++;
        }
        trial_end(&t);
    }
    assert_int_equal(failed, 0);

    /* A NaN gradient is named as before, even after an overflow. */
    trial t;
    trial_start(&t, &(variant){.kind = LSTM_OPTIM_ADAM});
    t.g[0][7] = 1e30f;
    t.g[1][3] = NAN;
    assert_null(refused_step(&t, "gradient 3 of buffer 1"));
    trial_end(&t);
}

/* The step count as a loaded state gives it: patched in a saved state. */
static lstm_status load_steps(trial *t, const unsigned char *saved, uint64_t steps)
{
    unsigned char *copy = malloc(t->bytes);
    assert_non_null(copy);
    memcpy(copy, saved, t->bytes);
    put_le(copy + 16, 8, steps);
    lstm_status status = lstm_optim_load_state(t->optim, copy, t->bytes);
    free(copy);
    return status;
}

/*
 * The limit on the step count, for the variants that went wrong at
 * t = 2^64 - 1 + 1 = 0: 1 - beta^0 = 0 made Adam's and AdamW's parameters
 * NaN, Adagrad's lr / (1 + (t - 1) lr_decay) = lr / 0 made them -inf. A
 * state beyond the limit does not load; the step that reaches it is
 * taken, the next is refused and changes nothing.
 */
static void test_step_count_limit(void **state)
{
    (void)state;
    const variant counted[] = {
        {.name = "Adam", .kind = LSTM_OPTIM_ADAM},
        {.name = "AdamW", .kind = LSTM_OPTIM_ADAMW},
        {.name = "Adagrad lr_decay 1", .kind = LSTM_OPTIM_ADAGRAD, .lr_decay = 1.0},
    };
    size_t failed = 0;
    for (size_t n = 0; n < sizeof counted / sizeof counted[0]; n++) {
        trial t;
        trial_start(&t, &counted[n]);
        assert_int_equal(lstm_optim_step(t.optim), LSTM_OK);
        unsigned char *saved = malloc(t.bytes), *check = malloc(t.bytes);
        assert_int_equal(lstm_optim_save_state(t.optim, saved, t.bytes), LSTM_OK);
        const uint64_t beyond[] = {UINT64_MAX, LSTM_OPTIM_MAX_STEPS + 1};
        for (size_t b = 0; b < 2; b++) {
            lstm_status status = load_steps(&t, saved, beyond[b]);
            if (status != LSTM_E_ARG) {
                print_message("%s: a state of %llu steps loads with status %d\n", counted[n].name,
                              (unsigned long long)beyond[b], status);
                failed++;
                assert_int_equal(load_steps(&t, saved, 1), LSTM_OK);
            }
            assert_int_equal(lstm_optim_save_state(t.optim, check, t.bytes), LSTM_OK);
            assert_memory_equal(check, saved, t.bytes);
        }

        assert_int_equal(load_steps(&t, saved, LSTM_OPTIM_MAX_STEPS - 1), LSTM_OK);
        lstm_status status;
        assert_null(step_under_the_rule(&t, &status));
        assert_int_equal(status, LSTM_OK);
        assert_int_equal(lstm_optim_save_state(t.optim, saved, t.bytes), LSTM_OK);
        assert_true(get_le(saved + 16, 8) == LSTM_OPTIM_MAX_STEPS);
        assert_int_equal(lstm_optim_load_state(t.optim, saved, t.bytes), LSTM_OK);
        memcpy(t.p_before, t.p, sizeof t.p);
        status = lstm_optim_step(t.optim);
        bool unchanged = memcmp(t.p, t.p_before, sizeof t.p) == 0 &&
                         lstm_optim_save_state(t.optim, check, t.bytes) == LSTM_OK &&
                         memcmp(check, saved, t.bytes) == 0; /* the count included */
        if (status != LSTM_E_STATE || !unchanged) {
            print_message("%s: a step at the limit returns %d, %s\n", counted[n].name, status,
                          unchanged ? "changing nothing" : "changing the optimizer");
            failed++;
        }
        free(saved);
        free(check);
        trial_end(&t);
    }
    assert_int_equal(failed, 0);
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
        cmocka_unit_test(test_threads_start_once),
        cmocka_unit_test(test_lr_zeroing_and_clipping_arguments),
        cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_huge_finite_values_never_make_nonfinite_ones),
        cmocka_unit_test(test_issue_21_overflows_are_refused),
        cmocka_unit_test(test_step_count_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
