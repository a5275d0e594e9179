/*
 * Streaming: step-by-step and chunked results equal the whole-sequence call.
 *
 * For unidirectional models (1 and 3 layers, with and without projection,
 * with and without peepholes, time-major and batch-first, B = 1 and B = 4)
 * with random parameters (lstm_model_init) and random x, h0, c0 of T = 12
 * steps, one lstm_model_forward() gives y, hT and cT. Then, through a state
 * (lstm_state_create, lstm_state_set(h0, c0)):
 *  - T calls of lstm_model_step() give every y_t and the final state
 *    (lstm_state_get) bit for bit (memcmp) as the whole call;
 *  - chunks of 5, 5 and 2 steps through lstm_model_stream() likewise;
 *  - after lstm_state_reset() the state reads zeros, and one chunk of T
 *    steps equals lstm_model_forward() with h0 = c0 = NULL;
 *  - a chunk that fails (NaN in x) changes neither the state nor y, and
 *    the stream continues as if it had not happened.
 * With LSTM_BATCH_FIRST a chunk's x is [B][T_chunk][I]; the test gathers
 * each chunk from the whole x in that layout.
 *
 * Threads: four threads share one read-only model, each with its own state
 * and its own inputs, and repeat their streams many times at once; every
 * result equals the same stream run alone, one after another (bit for bit).
 *
 * Kept weights (lstm_state_keep_weights()): a state that keeps its packed
 * weights gives, call after call, the bits of a state that packs them every
 * time, through a second model of the same configuration, new parameters
 * from lstm_model_set_params(), lstm_model_init(), a view taken and written,
 * and an optimizer step; a write through a view taken earlier goes unnoticed
 * (the outputs differ, which shows the packing is kept) until
 * lstm_state_keep_weights() is called again. B = 2 (the input's product
 * hoisted) and 6, with and without a projection, 2 layers. A workspace that
 * keeps them (lstm_workspace_keep_weights()) likewise gives the bits of one
 * that does not, over a bidirectional model with sequences of mixed
 * lengths, through a change of batch size, a training step on the same
 * workspace, another model, new parameters and a view.
 *
 * Errors: bidirectional model (LSTM_E_ARG), batch 0 (LSTM_E_SIZE), batch
 * overflowing size_t (LSTM_E_OVERFLOW), NULL arguments (LSTM_E_NULL),
 * steps 0 (LSTM_E_SIZE), a state used with a model of another configuration
 * (LSTM_E_SHAPE), NaN or infinity in x or in lstm_state_set()
 * (LSTM_E_NONFINITE): in each failing case the state is unchanged
 * (lstm_state_get before and after compared bit for bit).
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
#include "test_rng.h"

#define INPUT_SIZE 5
#define HIDDEN_SIZE 7
#define PROJ_SIZE 3
#define SEQ_LEN 12

/* Written into output buffers before a call, to see what the call writes. */
#define SENTINEL (-7777.0f)

/* ------------------------------------------------------------------------ */
static void fill_uniform(rng *r, float *p, size_t count, float low, float high)
{
    for (size_t k = 0; k < count; k++)
        p[k] = rng_float(r, low, high);
}

static void fill_value(float *p, size_t count, float value)
{
    for (size_t k = 0; k < count; k++)
        p[k] = value;
}

/* ------------------------------------------------------------------------ */
/* Everything a test acquires, released by the teardown even when an assert fails. */

enum { MAX_HELD = 64 };

typedef enum held_kind {
    HELD_MEMORY,
    HELD_MODEL,
    HELD_WORKSPACE,
    HELD_STATE,
    HELD_OPTIM
} held_kind;

static struct {
    held_kind kind[MAX_HELD];
    void *ptr[MAX_HELD];
    size_t count;
} held;

static void hold(held_kind kind, void *ptr)
{
    assert_true(held.count < MAX_HELD);
    held.kind[held.count] = kind;
    held.ptr[held.count] = ptr;
    held.count++;
}

static int release_all(void **unused)
{
    (void)unused;
    while (held.count > 0) {
        held.count--;
        void *p = held.ptr[held.count];
        switch (held.kind[held.count]) {
        case HELD_MEMORY: free(p); break;
        case HELD_MODEL: lstm_model_destroy(p); break;
        case HELD_WORKSPACE: lstm_workspace_destroy(p); break;
        case HELD_STATE: lstm_state_destroy(p); break;
        case HELD_OPTIM: lstm_optim_destroy(p); break;
        }
    }
    return 0;
}

static float *new_floats(size_t count)
{
    float *p = calloc(count > 0 ? count : 1, sizeof(float));
    assert_non_null(p);
    hold(HELD_MEMORY, p);
    return p;
}

static void expect_ok(const char *call, lstm_status status)
{
    if (status != LSTM_OK) {
        print_error("%s failed: %s (%s)\n", call, lstm_strerror(status), lstm_error_message());
        fail();
    }
}

static void expect_status(const char *call, lstm_status got, lstm_status want)
{
    if (got != want) {
        print_error("%s returned %s, expected %s (%s)\n", call, lstm_strerror(got),
                    lstm_strerror(want), lstm_error_message());
        fail();
    }
}

/* Bit-for-bit equality of two float arrays; names the first difference. */
static void expect_same_bits(const char *what, const float *got, const float *want, size_t count)
{
    if (memcmp(got, want, count * sizeof(float)) == 0)
        return;
    for (size_t k = 0; k < count; k++) {
        if (memcmp(&got[k], &want[k], sizeof(float)) != 0) {
            print_error("%s: element %zu of %zu is %.9g, expected %.9g (bit for bit)\n", what, k,
                        count, (double)got[k], (double)want[k]);
            break;
        }
    }
    fail();
}

static void expect_all_zero(const char *what, const float *p, size_t count)
{
    for (size_t k = 0; k < count; k++) {
        if (p[k] != 0.0f || signbit(p[k])) {
            print_error("%s: element %zu is %.9g, expected +0\n", what, k, (double)p[k]);
            fail();
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Models and layouts */

typedef struct stream_case {
    size_t layers;
    size_t proj;
    uint32_t flags; /* LSTM_PEEPHOLE | LSTM_BATCH_FIRST */
    size_t batch;
} stream_case;

typedef struct dims {
    size_t T, B, I, H, R, L;
    int batch_first;
} dims;

static dims case_dims(const stream_case *sc)
{
    dims d;
    d.T = SEQ_LEN;
    d.B = sc->batch;
    d.I = INPUT_SIZE;
    d.H = HIDDEN_SIZE;
    d.R = sc->proj > 0 ? sc->proj : HIDDEN_SIZE;
    d.L = sc->layers;
    d.batch_first = (sc->flags & LSTM_BATCH_FIRST) != 0;
    return d;
}

static lstm_model *new_model(size_t input_size, size_t hidden_size, size_t layers, size_t proj,
                             uint32_t flags, uint64_t seed)
{
    lstm_config config;
    lstm_model *model = NULL;
    expect_ok("lstm_config_init", lstm_config_init(&config, sizeof config));
    config.input_size = input_size;
    config.hidden_size = hidden_size;
    config.num_layers = layers;
    config.proj_size = proj;
    config.flags = flags;
    expect_ok("lstm_model_create", lstm_model_create(&config, &model));
    hold(HELD_MODEL, model);
    expect_ok("lstm_model_init", lstm_model_init(model, seed, 0));
    return model;
}

static lstm_model *case_model(const stream_case *sc, uint64_t seed)
{
    return new_model(INPUT_SIZE, HIDDEN_SIZE, sc->layers, sc->proj, sc->flags, seed);
}

static lstm_workspace *new_workspace(const lstm_model *model)
{
    lstm_workspace *ws = NULL;
    expect_ok("lstm_workspace_create", lstm_workspace_create(model, &ws));
    hold(HELD_WORKSPACE, ws);
    return ws;
}

static lstm_state *new_state(const lstm_model *model, size_t batch)
{
    lstm_state *state = NULL;
    expect_ok("lstm_state_create", lstm_state_create(model, batch, &state));
    assert_non_null(state);
    hold(HELD_STATE, state);
    return state;
}

/* Row of (step t, sequence b) in a [T][B][.] or [B][T][.] tensor of T steps. */
static size_t seq_row(int batch_first, size_t T, size_t B, size_t t, size_t b)
{
    return batch_first ? b * T + t : t * B + b;
}

/*
 * Copies steps [t0, t0 + n) of a whole-sequence tensor (T steps, width
 * floats per row, the case's layout) into a chunk of n steps in the same
 * layout, or back (to_whole).
 */
static void chunk_copy(const dims *d, size_t width, size_t t0, size_t n, float *whole, float *chunk,
                       int to_whole)
{
    for (size_t t = 0; t < n; t++) {
        for (size_t b = 0; b < d->B; b++) {
            float *w = whole + seq_row(d->batch_first, d->T, d->B, t0 + t, b) * width;
            float *c = chunk + seq_row(d->batch_first, n, d->B, t, b) * width;
            if (to_whole)
                memcpy(w, c, width * sizeof(float));
            else
                memcpy(c, w, width * sizeof(float));
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Step by step and chunked against the whole sequence */

static const size_t chunk_lengths[] = {5, 5, 2};
#define CHUNK_COUNT (sizeof chunk_lengths / sizeof chunk_lengths[0])

static void test_stream_case(void **state_arg)
{
    const stream_case *sc = *state_arg;
    const dims d = case_dims(sc);
    const size_t x_count = d.T * d.B * d.I, y_count = d.T * d.B * d.R;
    const size_t h_count = d.L * d.B * d.R, c_count = d.L * d.B * d.H;
    const uint64_t seed = 1000u + sc->layers * 100u + sc->proj * 10u + sc->flags + sc->batch;
    rng r = {seed * 7919u};

    lstm_model *model = case_model(sc, seed);
    lstm_workspace *ws = new_workspace(model);
    float *x = new_floats(x_count), *h0 = new_floats(h_count), *c0 = new_floats(c_count);
    fill_uniform(&r, x, x_count, -2.0f, 2.0f);
    fill_uniform(&r, h0, h_count, -1.0f, 1.0f);
    fill_uniform(&r, c0, c_count, -2.0f, 2.0f);

    /* the whole sequence */
    float *y = new_floats(y_count), *hT = new_floats(h_count), *cT = new_floats(c_count);
    expect_ok("lstm_model_forward",
              lstm_model_forward(model, ws, d.T, d.B, NULL, x, h0, c0, y, hT, cT));

    /* state layout: h [L][B][R], c [L][B][H], as h0/c0 of a unidirectional model */
    lstm_state *st = new_state(model, d.B);
    float *h = new_floats(h_count), *c = new_floats(c_count);
    fill_value(h, h_count, SENTINEL);
    fill_value(c, c_count, SENTINEL);
    expect_ok("lstm_state_get", lstm_state_get(st, h, c));
    expect_all_zero("new state h", h, h_count);
    expect_all_zero("new state c", c, c_count);

    /* step by step */
    expect_ok("lstm_state_set", lstm_state_set(st, h0, c0));
    expect_ok("lstm_state_get", lstm_state_get(st, h, c));
    expect_same_bits("state after set, h", h, h0, h_count);
    expect_same_bits("state after set, c", c, c0, c_count);
    float *x_t = new_floats(d.B * d.I), *y_t = new_floats(d.B * d.R);
    float *y_steps = new_floats(y_count);
    fill_value(y_steps, y_count, SENTINEL);
    for (size_t t = 0; t < d.T; t++) {
        /* x_t is [B][I] and y_t [B][R] in either layout */
        for (size_t b = 0; b < d.B; b++)
            memcpy(x_t + b * d.I, x + seq_row(d.batch_first, d.T, d.B, t, b) * d.I,
                   d.I * sizeof(float));
        fill_value(y_t, d.B * d.R, SENTINEL);
        expect_ok("lstm_model_step", lstm_model_step(model, st, x_t, y_t));
        for (size_t b = 0; b < d.B; b++)
            memcpy(y_steps + seq_row(d.batch_first, d.T, d.B, t, b) * d.R, y_t + b * d.R,
                   d.R * sizeof(float));
    }
    expect_same_bits("y, step by step", y_steps, y, y_count);
    expect_ok("lstm_state_get", lstm_state_get(st, h, c));
    expect_same_bits("final h, step by step", h, hT, h_count);
    expect_same_bits("final c, step by step", c, cT, c_count);

    /* chunks of 5, 5 and 2 */
    expect_ok("lstm_state_set", lstm_state_set(st, h0, c0));
    float *x_chunk = new_floats(d.T * d.B * d.I), *y_chunk = new_floats(d.T * d.B * d.R);
    float *y_chunks = new_floats(y_count);
    fill_value(y_chunks, y_count, SENTINEL);
    size_t t0 = 0;
    for (size_t k = 0; k < CHUNK_COUNT; k++) {
        const size_t n = chunk_lengths[k];
        chunk_copy(&d, d.I, t0, n, x, x_chunk, 0);
        fill_value(y_chunk, n * d.B * d.R, SENTINEL);
        expect_ok("lstm_model_stream", lstm_model_stream(model, st, n, x_chunk, y_chunk));
        chunk_copy(&d, d.R, t0, n, y_chunks, y_chunk, 1);
        t0 += n;
    }
    assert_int_equal(t0, d.T);
    expect_same_bits("y, chunks 5+5+2", y_chunks, y, y_count);
    expect_ok("lstm_state_get", lstm_state_get(st, h, c));
    expect_same_bits("final h, chunks", h, hT, h_count);
    expect_same_bits("final c, chunks", c, cT, c_count);

    /* the same chunks with a failing call in between: a NaN at the last
     * step of the second chunk; the call fails and changes nothing */
    expect_ok("lstm_state_set", lstm_state_set(st, h0, c0));
    fill_value(y_chunks, y_count, SENTINEL);
    float *h_before = new_floats(h_count), *c_before = new_floats(c_count);
    t0 = 0;
    for (size_t k = 0; k < CHUNK_COUNT; k++) {
        const size_t n = chunk_lengths[k];
        chunk_copy(&d, d.I, t0, n, x, x_chunk, 0);
        if (k == 1) {
            const size_t bad = seq_row(d.batch_first, n, d.B, n - 1, d.B - 1) * d.I + 1;
            const float saved = x_chunk[bad];
            x_chunk[bad] = NAN;
            expect_ok("lstm_state_get", lstm_state_get(st, h_before, c_before));
            fill_value(y_chunk, n * d.B * d.R, SENTINEL);
            expect_status("lstm_model_stream(NaN in x)",
                          lstm_model_stream(model, st, n, x_chunk, y_chunk), LSTM_E_NONFINITE);
            for (size_t i = 0; i < n * d.B * d.R; i++)
                assert_true(y_chunk[i] == SENTINEL);
            expect_ok("lstm_state_get", lstm_state_get(st, h, c));
            expect_same_bits("h after a failed chunk", h, h_before, h_count);
            expect_same_bits("c after a failed chunk", c, c_before, c_count);
            x_chunk[bad] = saved;
        }
        expect_ok("lstm_model_stream", lstm_model_stream(model, st, n, x_chunk, y_chunk));
        chunk_copy(&d, d.R, t0, n, y_chunks, y_chunk, 1);
        t0 += n;
    }
    expect_same_bits("y, chunks around a failed call", y_chunks, y, y_count);
    expect_ok("lstm_state_get", lstm_state_get(st, h, c));
    expect_same_bits("final h, chunks around a failed call", h, hT, h_count);
    expect_same_bits("final c, chunks around a failed call", c, cT, c_count);

    /* reset gives zeros; from there one chunk of T steps is the whole call from zeros */
    expect_ok("lstm_state_reset", lstm_state_reset(st));
    fill_value(h, h_count, SENTINEL);
    fill_value(c, c_count, SENTINEL);
    expect_ok("lstm_state_get", lstm_state_get(st, h, c));
    expect_all_zero("h after reset", h, h_count);
    expect_all_zero("c after reset", c, c_count);
    expect_ok("lstm_model_forward",
              lstm_model_forward(model, ws, d.T, d.B, NULL, x, NULL, NULL, y, hT, cT));
    expect_ok("lstm_model_stream", lstm_model_stream(model, st, d.T, x, y_chunks));
    expect_same_bits("y from a reset state", y_chunks, y, y_count);
    expect_ok("lstm_state_get", lstm_state_get(st, h, c));
    expect_same_bits("final h from a reset state", h, hT, h_count);
    expect_same_bits("final c from a reset state", c, cT, c_count);

    /* y may be NULL; the state still advances (stream the first chunk again) */
    expect_ok("lstm_state_reset", lstm_state_reset(st));
    expect_ok("lstm_model_stream(y NULL)", lstm_model_stream(model, st, d.T, x, NULL));
    expect_ok("lstm_state_get", lstm_state_get(st, h, NULL));
    expect_same_bits("final h with y NULL", h, hT, h_count);
    expect_ok("lstm_state_get", lstm_state_get(st, NULL, c));
    expect_same_bits("final c with y NULL", c, cT, c_count);
}

/* ------------------------------------------------------------------------ */
/* Many states sharing one model from several threads */

#define THREAD_COUNT 4
#define THREAD_REPEATS 40
#define THREAD_BATCH 4
#define THREAD_LAYERS 3

typedef struct stream_job {
    const lstm_model *model;
    const float *x, *h0, *c0; /* time-major, SEQ_LEN steps */
    float *y, *h, *c;         /* results of the last repeat */
    int repeats;
    int failures; /* calls that failed or repeats that disagreed */
} stream_job;

enum {
    JOB_X = SEQ_LEN * THREAD_BATCH * INPUT_SIZE,
    JOB_Y = SEQ_LEN * THREAD_BATCH * PROJ_SIZE,
    JOB_H = THREAD_LAYERS * THREAD_BATCH * PROJ_SIZE,
    JOB_C = THREAD_LAYERS * THREAD_BATCH * HIDDEN_SIZE
};

/* One repeat: chunks of 5 and 5 then two single steps. No cmocka calls:
 * they are not thread-safe. Returns 0 on success. */
static int stream_once(const stream_job *job, lstm_state *st, float *y, float *h, float *c)
{
    const size_t row = THREAD_BATCH * INPUT_SIZE, out = THREAD_BATCH * PROJ_SIZE;
    if (lstm_state_set(st, job->h0, job->c0) != LSTM_OK)
        return 1;
    if (lstm_model_stream(job->model, st, 5, job->x, y) != LSTM_OK ||
        lstm_model_stream(job->model, st, 5, job->x + 5 * row, y + 5 * out) != LSTM_OK ||
        lstm_model_step(job->model, st, job->x + 10 * row, y + 10 * out) != LSTM_OK ||
        lstm_model_step(job->model, st, job->x + 11 * row, y + 11 * out) != LSTM_OK)
        return 1;
    return lstm_state_get(st, h, c) != LSTM_OK;
}

static void *stream_job_run(void *arg)
{
    stream_job *job = arg;
    lstm_state *st = NULL;
    float *scratch = malloc((JOB_Y + JOB_H + JOB_C) * sizeof(float));
    if (scratch == NULL || lstm_state_create(job->model, THREAD_BATCH, &st) != LSTM_OK) {
        free(scratch);
        job->failures++;
        return NULL;
    }
    for (int k = 0; k < job->repeats; k++) {
        /* the first repeat writes the results, later ones must agree */
        float *y = k == 0 ? job->y : scratch;
        float *h = k == 0 ? job->h : scratch + JOB_Y;
        float *c = k == 0 ? job->c : scratch + JOB_Y + JOB_H;
        if (stream_once(job, st, y, h, c) != 0) {
            job->failures++;
            continue;
        }
        if (k > 0 && (memcmp(y, job->y, JOB_Y * sizeof(float)) != 0 ||
                      memcmp(h, job->h, JOB_H * sizeof(float)) != 0 ||
                      memcmp(c, job->c, JOB_C * sizeof(float)) != 0))
            job->failures++;
    }
    lstm_state_destroy(st);
    free(scratch);
    return NULL;
}

static void test_threads_share_a_model(void **unused)
{
    (void)unused;
    rng r = {4242};
    lstm_model *model =
        new_model(INPUT_SIZE, HIDDEN_SIZE, THREAD_LAYERS, PROJ_SIZE, LSTM_PEEPHOLE, 77);
    stream_job jobs[THREAD_COUNT], alone[THREAD_COUNT];
    for (size_t j = 0; j < THREAD_COUNT; j++) {
        float *x = new_floats(JOB_X), *h0 = new_floats(JOB_H), *c0 = new_floats(JOB_C);
        fill_uniform(&r, x, JOB_X, -2.0f, 2.0f);
        fill_uniform(&r, h0, JOB_H, -1.0f, 1.0f);
        fill_uniform(&r, c0, JOB_C, -2.0f, 2.0f);
        jobs[j] = (stream_job){
            model,          x, h0, c0, new_floats(JOB_Y), new_floats(JOB_H), new_floats(JOB_C),
            THREAD_REPEATS, 0};
        alone[j] = (stream_job){
            model, x, h0, c0, new_floats(JOB_Y), new_floats(JOB_H), new_floats(JOB_C), 1, 0};
    }

    /* one after another, in this thread */
    for (size_t j = 0; j < THREAD_COUNT; j++) {
        stream_job_run(&alone[j]);
        assert_int_equal(alone[j].failures, 0);
    }

    /* all at once */
    pthread_t threads[THREAD_COUNT];
    for (size_t j = 0; j < THREAD_COUNT; j++)
        assert_int_equal(pthread_create(&threads[j], NULL, stream_job_run, &jobs[j]), 0);
    for (size_t j = 0; j < THREAD_COUNT; j++)
        assert_int_equal(pthread_join(threads[j], NULL), 0);
    for (size_t j = 0; j < THREAD_COUNT; j++) {
        char what[64];
        if (jobs[j].failures != 0) {
            print_error("thread %zu: %d repeats failed or disagreed\n", j, jobs[j].failures);
            fail();
        }
        snprintf(what, sizeof what, "thread %zu, y", j);
        expect_same_bits(what, jobs[j].y, alone[j].y, JOB_Y);
        snprintf(what, sizeof what, "thread %zu, final h", j);
        expect_same_bits(what, jobs[j].h, alone[j].h, JOB_H);
        snprintf(what, sizeof what, "thread %zu, final c", j);
        expect_same_bits(what, jobs[j].c, alone[j].c, JOB_C);
    }
    /* different inputs gave different outputs: the threads did not share a state */
    for (size_t j = 1; j < THREAD_COUNT; j++)
        assert_true(memcmp(alone[j].y, alone[0].y, JOB_Y * sizeof(float)) != 0);
}

/* ------------------------------------------------------------------------ */
/* Bad input */

/* The state's h and c, to check that a failing call left them alone. */
typedef struct snapshot {
    float *h, *c;         /* taken before */
    float *h_now, *c_now; /* scratch for the comparison */
    size_t h_count, c_count;
} snapshot;

static snapshot take_snapshot(const lstm_state *st, size_t h_count, size_t c_count)
{
    snapshot s = {new_floats(h_count),
                  new_floats(c_count),
                  new_floats(h_count),
                  new_floats(c_count),
                  h_count,
                  c_count};
    expect_ok("lstm_state_get", lstm_state_get(st, s.h, s.c));
    return s;
}

static void expect_unchanged(const char *what, const lstm_state *st, const snapshot *before)
{
    char buf[160];
    fill_value(before->h_now, before->h_count, SENTINEL);
    fill_value(before->c_now, before->c_count, SENTINEL);
    expect_ok("lstm_state_get", lstm_state_get(st, before->h_now, before->c_now));
    snprintf(buf, sizeof buf, "%s: h", what);
    expect_same_bits(buf, before->h_now, before->h, before->h_count);
    snprintf(buf, sizeof buf, "%s: c", what);
    expect_same_bits(buf, before->c_now, before->c, before->c_count);
}

static void test_create_bad_input(void **unused)
{
    (void)unused;
    lstm_model *uni = new_model(INPUT_SIZE, HIDDEN_SIZE, 2, 0, 0, 1);
    lstm_model *bidi = new_model(INPUT_SIZE, HIDDEN_SIZE, 2, 0, LSTM_BIDIRECTIONAL, 1);
    lstm_state *st = (lstm_state *)(uintptr_t)1; /* must stay untouched on failure */

    expect_status("lstm_state_create(bidirectional)", lstm_state_create(bidi, 4, &st), LSTM_E_ARG);
    expect_status(
        "lstm_state_create(bidirectional, batch first)",
        lstm_state_create(new_model(3, 4, 1, 0, LSTM_BIDIRECTIONAL | LSTM_BATCH_FIRST, 2), 1, &st),
        LSTM_E_ARG);
    expect_status("lstm_state_create(batch 0)", lstm_state_create(uni, 0, &st), LSTM_E_SIZE);
    expect_status("lstm_state_create(batch SIZE_MAX)", lstm_state_create(uni, SIZE_MAX, &st),
                  LSTM_E_OVERFLOW);
    expect_status("lstm_state_create(model NULL)", lstm_state_create(NULL, 4, &st), LSTM_E_NULL);
    expect_status("lstm_state_create(out NULL)", lstm_state_create(uni, 4, NULL), LSTM_E_NULL);
    assert_true(st == (lstm_state *)(uintptr_t)1);

    /* the other calls refuse NULL handles */
    float buf[64] = {0};
    expect_status("lstm_state_reset(NULL)", lstm_state_reset(NULL), LSTM_E_NULL);
    expect_status("lstm_state_get(NULL)", lstm_state_get(NULL, buf, buf), LSTM_E_NULL);
    expect_status("lstm_state_set(NULL)", lstm_state_set(NULL, buf, buf), LSTM_E_NULL);
    lstm_state_destroy(NULL); /* accepted */
}

static void test_stream_bad_input(void **unused)
{
    (void)unused;
    const size_t B = 3, L = 2, I = INPUT_SIZE, H = HIDDEN_SIZE;
    rng r = {99};
    lstm_model *model = new_model(I, H, L, 0, 0, 5);
    lstm_state *st = new_state(model, B);
    lstm_workspace *ws = new_workspace(model);
    float *x = new_floats(4 * B * I), *y = new_floats(4 * B * H);
    float *h0 = new_floats(L * B * H), *c0 = new_floats(L * B * H);
    fill_uniform(&r, x, 4 * B * I, -1.0f, 1.0f);
    fill_uniform(&r, h0, L * B * H, -1.0f, 1.0f);
    fill_uniform(&r, c0, L * B * H, -1.0f, 1.0f);
    expect_ok("lstm_state_set", lstm_state_set(st, h0, c0));
    expect_ok("lstm_model_stream", lstm_model_stream(model, st, 2, x, y));
    snapshot s = take_snapshot(st, L * B * H, L * B * H);

    /* NULLs */
    expect_status("lstm_model_stream(model NULL)", lstm_model_stream(NULL, st, 2, x, y),
                  LSTM_E_NULL);
    expect_status("lstm_model_stream(state NULL)", lstm_model_stream(model, NULL, 2, x, y),
                  LSTM_E_NULL);
    expect_status("lstm_model_stream(x NULL)", lstm_model_stream(model, st, 2, NULL, y),
                  LSTM_E_NULL);
    expect_status("lstm_model_step(model NULL)", lstm_model_step(NULL, st, x, y), LSTM_E_NULL);
    expect_status("lstm_model_step(state NULL)", lstm_model_step(model, NULL, x, y), LSTM_E_NULL);
    expect_status("lstm_model_step(x_t NULL)", lstm_model_step(model, st, NULL, y), LSTM_E_NULL);
    expect_status("lstm_model_forward_train_chunk(model NULL)",
                  lstm_model_forward_train_chunk(NULL, ws, st, 2, x, y), LSTM_E_NULL);
    expect_status("lstm_model_forward_train_chunk(workspace NULL)",
                  lstm_model_forward_train_chunk(model, NULL, st, 2, x, y), LSTM_E_NULL);
    expect_status("lstm_model_forward_train_chunk(state NULL)",
                  lstm_model_forward_train_chunk(model, ws, NULL, 2, x, y), LSTM_E_NULL);
    expect_status("lstm_model_forward_train_chunk(x NULL)",
                  lstm_model_forward_train_chunk(model, ws, st, 2, NULL, y), LSTM_E_NULL);
    expect_unchanged("after NULL arguments", st, &s);

    /* steps 0 */
    expect_status("lstm_model_stream(steps 0)", lstm_model_stream(model, st, 0, x, y), LSTM_E_SIZE);
    expect_status("lstm_model_forward_train_chunk(steps 0)",
                  lstm_model_forward_train_chunk(model, ws, st, 0, x, y), LSTM_E_SIZE);
    expect_unchanged("after steps 0", st, &s);

    /* NaN and infinity in x, at the first and at the last element of a chunk */
    const float bad_values[3] = {NAN, INFINITY, -INFINITY};
    for (size_t v = 0; v < 3; v++) {
        for (size_t where = 0; where < 2; where++) {
            const size_t idx = where == 0 ? 0 : 3 * B * I - 1;
            const float saved = x[idx];
            x[idx] = bad_values[v];
            fill_value(y, 3 * B * H, SENTINEL);
            expect_status("lstm_model_stream(non-finite x)", lstm_model_stream(model, st, 3, x, y),
                          LSTM_E_NONFINITE);
            for (size_t k = 0; k < 3 * B * H; k++)
                assert_true(y[k] == SENTINEL);
            if (where == 0)
                expect_status("lstm_model_step(non-finite x)", lstm_model_step(model, st, x, y),
                              LSTM_E_NONFINITE);
            expect_status("lstm_model_forward_train_chunk(non-finite x)",
                          lstm_model_forward_train_chunk(model, ws, st, 3, x, y), LSTM_E_NONFINITE);
            x[idx] = saved;
            expect_unchanged("after non-finite x", st, &s);
        }
    }

    /* NaN or infinity in lstm_state_set: all or nothing */
    float *h_bad = new_floats(L * B * H), *c_bad = new_floats(L * B * H);
    fill_uniform(&r, h_bad, L * B * H, -1.0f, 1.0f);
    fill_uniform(&r, c_bad, L * B * H, -1.0f, 1.0f);
    const size_t positions[3] = {0, B * H + 2, L * B * H - 1};
    for (size_t v = 0; v < 3; v++) {
        for (size_t p = 0; p < 3; p++) {
            float saved = h_bad[positions[p]];
            h_bad[positions[p]] = bad_values[v];
            expect_status("lstm_state_set(non-finite h)", lstm_state_set(st, h_bad, c_bad),
                          LSTM_E_NONFINITE);
            expect_status("lstm_state_set(non-finite h, c NULL)", lstm_state_set(st, h_bad, NULL),
                          LSTM_E_NONFINITE);
            h_bad[positions[p]] = saved;
            expect_unchanged("after non-finite h", st, &s);
            saved = c_bad[positions[p]];
            c_bad[positions[p]] = bad_values[v];
            /* h is valid: it must not be written either */
            expect_status("lstm_state_set(non-finite c)", lstm_state_set(st, h_bad, c_bad),
                          LSTM_E_NONFINITE);
            expect_status("lstm_state_set(h NULL, non-finite c)", lstm_state_set(st, NULL, c_bad),
                          LSTM_E_NONFINITE);
            c_bad[positions[p]] = saved;
            expect_unchanged("after non-finite c", st, &s);
        }
    }

    /* set with NULL means zeros */
    expect_ok("lstm_state_set(NULL, c)", lstm_state_set(st, NULL, c0));
    float *h = new_floats(L * B * H), *c = new_floats(L * B * H);
    expect_ok("lstm_state_get", lstm_state_get(st, h, c));
    expect_all_zero("h set from NULL", h, L * B * H);
    expect_same_bits("c set alongside NULL h", c, c0, L * B * H);
    expect_ok("lstm_state_set(h, NULL)", lstm_state_set(st, h0, NULL));
    expect_ok("lstm_state_get", lstm_state_get(st, h, c));
    expect_same_bits("h set alongside NULL c", h, h0, L * B * H);
    expect_all_zero("c set from NULL", c, L * B * H);
    expect_ok("lstm_state_get(NULL, NULL)", lstm_state_get(st, NULL, NULL));
}

static void test_state_of_another_configuration(void **unused)
{
    (void)unused;
    const size_t B = 2, L = 2, I = INPUT_SIZE, H = HIDDEN_SIZE;
    rng r = {7};
    lstm_model *model = new_model(I, H, L, 0, 0, 5);
    lstm_state *st = new_state(model, B);
    float *x = new_floats(4 * B * (I + 1)), *y = new_floats(4 * B * (H + 1));
    fill_uniform(&r, x, 4 * B * (I + 1), -1.0f, 1.0f);
    expect_ok("lstm_model_stream", lstm_model_stream(model, st, 2, x, y));
    snapshot s = take_snapshot(st, L * B * H, L * B * H);

    struct {
        const char *what;
        size_t input, hidden, layers, proj;
        uint32_t flags;
    } others[] = {
        {"hidden_size + 1", I, H + 1, L, 0, 0}, {"input_size + 1", I + 1, H, L, 0, 0},
        {"one layer fewer", I, H, L - 1, 0, 0}, {"one layer more", I, H, L + 1, 0, 0},
        {"with a projection", I, H, L, 3, 0},   {"with peepholes", I, H, L, 0, LSTM_PEEPHOLE},
    };
    for (size_t k = 0; k < sizeof others / sizeof others[0]; k++) {
        lstm_model *other = new_model(others[k].input, others[k].hidden, others[k].layers,
                                      others[k].proj, others[k].flags, 9);
        lstm_workspace *ws = new_workspace(other);
        char what[128];
        snprintf(what, sizeof what, "lstm_model_stream(model with %s)", others[k].what);
        expect_status(what, lstm_model_stream(other, st, 2, x, y), LSTM_E_SHAPE);
        snprintf(what, sizeof what, "lstm_model_step(model with %s)", others[k].what);
        expect_status(what, lstm_model_step(other, st, x, y), LSTM_E_SHAPE);
        snprintf(what, sizeof what, "lstm_model_forward_train_chunk(model with %s)",
                 others[k].what);
        expect_status(what, lstm_model_forward_train_chunk(other, ws, st, 2, x, y), LSTM_E_SHAPE);
        snprintf(what, sizeof what, "state after a model with %s", others[k].what);
        expect_unchanged(what, st, &s);
    }

    /* and a state of a peephole model refuses the same model without them */
    lstm_model *peep = new_model(I, H, L, 0, LSTM_PEEPHOLE, 5);
    lstm_state *peep_state = new_state(peep, B);
    expect_status("lstm_model_stream(peephole state, plain model)",
                  lstm_model_stream(model, peep_state, 2, x, y), LSTM_E_SHAPE);
    /* another model of the same configuration is fine: the state is not tied to one model */
    lstm_model *twin = new_model(I, H, L, 0, 0, 6);
    expect_ok("lstm_model_stream(model of the same configuration)",
              lstm_model_stream(twin, st, 2, x, y));
}

/* ------------------------------------------------------------------------ */
/* Kept weights */

/* One step of the same x through both states: plain packs the weights on
 * every call, kept keeps them (lstm_state_keep_weights()). */
typedef struct kept_pair {
    lstm_state *plain, *kept;
    float *x, *y_plain, *y_kept;
    size_t y_count;
} kept_pair;

static void step_both(kept_pair *p, const lstm_model *model, rng *r, size_t x_count)
{
    fill_uniform(r, p->x, x_count, -1.0f, 1.0f);
    expect_ok("lstm_model_step(plain)", lstm_model_step(model, p->plain, p->x, p->y_plain));
    expect_ok("lstm_model_step(kept)", lstm_model_step(model, p->kept, p->x, p->y_kept));
}

static void expect_both_same(kept_pair *p, const char *after)
{
    char what[160];
    snprintf(what, sizeof what, "y of the kept-weights state after %s", after);
    expect_same_bits(what, p->y_kept, p->y_plain, p->y_count);
}

static void test_kept_weights(void **unused)
{
    (void)unused;
    const size_t batches[2] = {2, 6}, projs[2] = {0, PROJ_SIZE}, L = 2;
    const size_t I = INPUT_SIZE, H = HIDDEN_SIZE;
    expect_status("lstm_state_keep_weights(NULL)", lstm_state_keep_weights(NULL, 1), LSTM_E_NULL);
    for (size_t bi = 0; bi < 2; bi++) {
        for (size_t pi = 0; pi < 2; pi++) {
            const size_t B = batches[bi], R = projs[pi] > 0 ? projs[pi] : H;
            rng r = {100 + 10 * bi + pi};
            lstm_model *model = new_model(I, H, L, projs[pi], 0, 21);
            lstm_model *twin = new_model(I, H, L, projs[pi], 0, 22);
            const size_t count = lstm_model_param_count(model);
            kept_pair p = {new_state(model, B), new_state(model, B), new_floats(B * I),
                           new_floats(B * R),   new_floats(B * R),   B * R};
            float *values = new_floats(count), *h = new_floats(L * B * R),
                  *c = new_floats(L * B * H);
            expect_ok("lstm_state_keep_weights", lstm_state_keep_weights(p.kept, 1));

            for (int k = 0; k < 3; k++) {
                step_both(&p, model, &r, B * I);
                expect_both_same(&p, "steps of one model");
            }
            step_both(&p, twin, &r, B * I);
            expect_both_same(&p, "a step of another model");
            step_both(&p, model, &r, B * I);
            expect_both_same(&p, "a step of the first model again");

            fill_uniform(&r, values, count, -0.5f, 0.5f);
            expect_ok("lstm_model_set_params", lstm_model_set_params(model, values, count));
            step_both(&p, model, &r, B * I);
            expect_both_same(&p, "lstm_model_set_params()");
            expect_ok("lstm_model_init", lstm_model_init(model, 23, LSTM_INIT_FORGET_BIAS_ONE));
            step_both(&p, model, &r, B * I);
            expect_both_same(&p, "lstm_model_init()");

            float *view = NULL, *grads = NULL;
            expect_ok("lstm_model_params", lstm_model_params(model, &view, NULL));
            for (size_t k = 0; k < count; k++)
                view[k] *= 0.75f;
            step_both(&p, model, &r, B * I);
            expect_both_same(&p, "a write through a new view");

            /* a write through that view now, with no call in between, goes
             * unnoticed: the kept state runs the weights it packed */
            for (size_t k = 0; k < count; k++)
                view[k] *= 1.25f;
            step_both(&p, model, &r, B * I);
            if (memcmp(p.y_kept, p.y_plain, p.y_count * sizeof(float)) == 0)
                fail_msg("B %zu, R %zu: a write through an old view changed the kept "
                         "weights' outputs too; were they packed again?",
                         B, R);
            expect_ok("lstm_state_keep_weights(again)", lstm_state_keep_weights(p.kept, 1));
            expect_ok("lstm_state_get", lstm_state_get(p.plain, h, c));
            expect_ok("lstm_state_set", lstm_state_set(p.kept, h, c));
            step_both(&p, model, &r, B * I);
            expect_both_same(&p, "lstm_state_keep_weights() again");

            lstm_optim_options options;
            lstm_optim *optim = NULL;
            expect_ok("lstm_optim_options_init",
                      lstm_optim_options_init(&options, sizeof options, LSTM_OPTIM_SGD));
            options.lr = 0.1;
            expect_ok("lstm_optim_create", lstm_optim_create(&options, &optim));
            hold(HELD_OPTIM, optim);
            expect_ok("lstm_optim_add_model", lstm_optim_add_model(optim, model));
            step_both(&p, model, &r, B * I); /* add_model handed out a view */
            expect_both_same(&p, "lstm_optim_add_model()");
            expect_ok("lstm_model_grads", lstm_model_grads(model, &grads, NULL));
            fill_uniform(&r, grads, count, -1.0f, 1.0f);
            expect_ok("lstm_optim_step", lstm_optim_step(optim));
            step_both(&p, model, &r, B * I);
            expect_both_same(&p, "lstm_optim_step()");

            expect_ok("lstm_state_keep_weights(0)", lstm_state_keep_weights(p.kept, 0));
            step_both(&p, model, &r, B * I);
            expect_both_same(&p, "lstm_state_keep_weights(0)");
        }
    }
}

/* The same inference through a workspace that packs every call and one that
 * keeps its packing (lstm_workspace_keep_weights()). */
typedef struct kept_workspaces {
    lstm_workspace *plain, *kept;
    float *x, *y_plain, *y_kept, *hT_plain, *hT_kept;
    size_t T, I, R, D, L;
} kept_workspaces;

static void forward_both(kept_workspaces *w, const lstm_model *model, rng *r, size_t B,
                         const size_t *lengths, const char *after)
{
    const size_t y_count = w->T * B * w->D * w->R, h_count = w->L * w->D * B * w->R;
    fill_uniform(r, w->x, w->T * B * w->I, -1.0f, 1.0f);
    fill_value(w->y_plain, y_count, SENTINEL);
    fill_value(w->y_kept, y_count, SENTINEL);
    expect_ok("lstm_model_forward(plain)",
              lstm_model_forward(model, w->plain, w->T, B, lengths, w->x, NULL, NULL, w->y_plain,
                                 w->hT_plain, NULL));
    expect_ok("lstm_model_forward(kept)",
              lstm_model_forward(model, w->kept, w->T, B, lengths, w->x, NULL, NULL, w->y_kept,
                                 w->hT_kept, NULL));
    char what[160];
    snprintf(what, sizeof what, "y of the kept-weights workspace after %s", after);
    expect_same_bits(what, w->y_kept, w->y_plain, y_count);
    snprintf(what, sizeof what, "hT of the kept-weights workspace after %s", after);
    expect_same_bits(what, w->hT_kept, w->hT_plain, h_count);
}

static void test_kept_weights_workspace(void **unused)
{
    (void)unused;
    const size_t projs[2] = {0, PROJ_SIZE}, L = 2, D = 2, T = 6, I = INPUT_SIZE;
    /* 4H over 32: W packs into several panels, laid out differently when the
     * input's product is hoisted */
    const size_t H = 13, B = 6, lengths[6] = {6, 2, 5, 6, 1, 3};
    expect_status("lstm_workspace_keep_weights(NULL)", lstm_workspace_keep_weights(NULL, 1),
                  LSTM_E_NULL);
    for (size_t pi = 0; pi < 2; pi++) {
        const size_t R = projs[pi] > 0 ? projs[pi] : H;
        rng r = {300 + pi};
        lstm_model *model = new_model(I, H, L, projs[pi], LSTM_BIDIRECTIONAL, 31);
        lstm_model *twin = new_model(I, H, L, projs[pi], LSTM_BIDIRECTIONAL, 32);
        const size_t count = lstm_model_param_count(model);
        kept_workspaces w = {new_workspace(model),
                             new_workspace(model),
                             new_floats(T * B * I),
                             new_floats(T * B * D * R),
                             new_floats(T * B * D * R),
                             new_floats(L * D * B * R),
                             new_floats(L * D * B * R),
                             T,
                             I,
                             R,
                             D,
                             L};
        expect_ok("lstm_workspace_keep_weights", lstm_workspace_keep_weights(w.kept, 1));

        forward_both(&w, model, &r, B, lengths, "a first call");
        forward_both(&w, model, &r, B, NULL, "a call of the same model");
        /* B = 2 hoists the input's product: other packings */
        forward_both(&w, model, &r, 2, NULL, "a call of another batch size");
        forward_both(&w, model, &r, B, lengths, "a call of the first batch size again");
        forward_both(&w, twin, &r, B, lengths, "a call of another model");
        forward_both(&w, model, &r, B, lengths, "a call of the first model again");

        /* training packs its own copies, which leave the kept ones alone */
        float *dy = new_floats(T * B * D * R);
        fill_uniform(&r, dy, T * B * D * R, -1.0f, 1.0f);
        expect_ok("lstm_model_forward_train",
                  lstm_model_forward_train(model, w.kept, T, B, lengths, w.x, NULL, NULL, w.y_kept,
                                           NULL, NULL));
        expect_ok("lstm_model_backward",
                  lstm_model_backward(model, w.kept, dy, NULL, NULL, NULL, NULL, NULL));
        forward_both(&w, model, &r, B, lengths, "a training step");

        float *values = new_floats(count), *view = NULL;
        fill_uniform(&r, values, count, -0.5f, 0.5f);
        expect_ok("lstm_model_set_params", lstm_model_set_params(model, values, count));
        forward_both(&w, model, &r, B, lengths, "lstm_model_set_params()");
        expect_ok("lstm_model_params", lstm_model_params(model, &view, NULL));
        for (size_t k = 0; k < count; k++)
            view[k] *= 0.75f;
        forward_both(&w, model, &r, B, lengths, "a write through a new view");

        /* a write through that view now goes unnoticed until keep again */
        for (size_t k = 0; k < count; k++)
            view[k] *= 1.25f;
        const size_t y_count = T * B * D * R;
        expect_ok(
            "lstm_model_forward(plain)",
            lstm_model_forward(model, w.plain, T, B, NULL, w.x, NULL, NULL, w.y_plain, NULL, NULL));
        expect_ok("lstm_model_forward(kept)", lstm_model_forward(model, w.kept, T, B, NULL, w.x,
                                                                 NULL, NULL, w.y_kept, NULL, NULL));
        if (memcmp(w.y_kept, w.y_plain, y_count * sizeof(float)) == 0)
            fail_msg("R %zu: a write through an old view changed the kept weights' outputs "
                     "too; were they packed again?",
                     R);
        expect_ok("lstm_workspace_keep_weights(again)", lstm_workspace_keep_weights(w.kept, 1));
        forward_both(&w, model, &r, B, lengths, "lstm_workspace_keep_weights() again");

        expect_ok("lstm_workspace_keep_weights(0)", lstm_workspace_keep_weights(w.kept, 0));
        forward_both(&w, model, &r, B, lengths, "lstm_workspace_keep_weights(0)");
    }
}

/* ------------------------------------------------------------------------ */

static const stream_case *all_cases(size_t *count)
{
    static stream_case cases[32];
    size_t n = 0;
    const size_t layers[2] = {1, 3}, projs[2] = {0, PROJ_SIZE}, batches[2] = {1, 4};
    for (size_t li = 0; li < 2; li++)
        for (size_t pi = 0; pi < 2; pi++)
            for (uint32_t peep = 0; peep < 2; peep++)
                for (uint32_t bf = 0; bf < 2; bf++)
                    for (size_t bi = 0; bi < 2; bi++)
                        cases[n++] = (stream_case){layers[li], projs[pi],
                                                   (peep ? LSTM_PEEPHOLE : 0u) |
                                                       (bf ? LSTM_BATCH_FIRST : 0u),
                                                   batches[bi]};
    *count = n;
    return cases;
}

/* cmocka's initial_state is a void *; the tests only read through it. */
static void *test_state(const void *p)
{
    return (void *)(uintptr_t)p;
}

int main(void)
{
    size_t case_count;
    const stream_case *cases = all_cases(&case_count);
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test_teardown(test_threads_share_a_model, release_all),
        cmocka_unit_test_teardown(test_create_bad_input, release_all),
        cmocka_unit_test_teardown(test_stream_bad_input, release_all),
        cmocka_unit_test_teardown(test_state_of_another_configuration, release_all),
        cmocka_unit_test_teardown(test_kept_weights, release_all),
        cmocka_unit_test_teardown(test_kept_weights_workspace, release_all),
    };
    const size_t fixed_count = sizeof fixed / sizeof fixed[0];
    const size_t count = case_count + fixed_count;
    struct CMUnitTest *tests = calloc(count, sizeof *tests);
    char(*names)[80] = calloc(count, sizeof *names);
    if (tests == NULL || names == NULL) {
        free(tests);
        free(names);
        return 1;
    }
    for (size_t k = 0; k < case_count; k++) {
        const stream_case *sc = &cases[k];
        snprintf(names[k], sizeof names[k], "stream_l%zu_p%zu_%s_%s_b%zu", sc->layers, sc->proj,
                 (sc->flags & LSTM_PEEPHOLE) ? "peep" : "plain",
                 (sc->flags & LSTM_BATCH_FIRST) ? "bf" : "tf", sc->batch);
        tests[k].name = names[k];
        tests[k].test_func = test_stream_case;
        tests[k].teardown_func = release_all;
        tests[k].initial_state = test_state(sc);
    }
    for (size_t k = 0; k < fixed_count; k++)
        tests[case_count + k] = fixed[k];

    /* The table is built at run time so that every case carries its name. */
    int failed = _cmocka_run_group_tests("stream", tests, count, NULL, NULL);
    free(names);
    free(tests);
    return failed;
}
