/*
 * Soak test: many thousands of training steps with every feature at once,
 * checking that memory does not grow.
 *
 *     lstm_soak [STEPS]            (default 100000; tests/soak/run.sh builds and runs it)
 *
 * Each step trains two models:
 *   - a classifier: two bidirectional LSTM layers with projection, peepholes,
 *     dropout and batch-first data, on a batch of sequences of random lengths
 *     (and a random T), the last valid step of each sequence (gather) through
 *     a dense head into a cross-entropy loss, with gradient clipping, Adam
 *     (the LSTM and the head bound to one optimizer) and a cosine schedule;
 *   - a forecaster: a one-layer LSTM trained by truncated BPTT, chunk after
 *     chunk of a long series through a stream state, with an MSE loss and
 *     SGD with momentum, and run one step at a time for inference through a
 *     second state.
 * Every SAVE_EVERY steps both are saved to memory with their optimizer
 * states and loaded back into new handles, which are then freed.
 *
 * Every SAMPLE_EVERY steps it records the resident set size (/proc/self/
 * statm), the heap in use (glibc's mallinfo2: every live malloc'd byte) and
 * the library's allocation count (alloc.h; this program is linked to the
 * library's objects to read it). After the warm-up (the first tenth of the
 * steps, at least 1000), it fails when
 *   - the resident set grows by more than RSS_BOUND_KB,
 *   - the heap in use grows by more than HEAP_BOUND_BYTES,
 *   - any training step allocates through the library (workspaces are sized
 *     once; nothing is allocated per step), or
 *   - a save/load cycle allocates a different number of blocks than the
 *     first one did,
 * or when a loss stops being finite. It prints the samples and a summary.
 */
#define _POSIX_C_SOURCE 200809L /* sysconf, clock_gettime */

#include <malloc.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "lstm/lstm.h"

enum {
    INPUT = 8,
    HIDDEN = 32,
    PROJ = 16,
    LAYERS = 2,
    OUT = 2 * PROJ, /* both directions of the last layer */
    MAX_T = 24,
    BATCH = 8,
    CLASSES = 3,
    SERIES_HIDDEN = 24,
    STREAMS = 4,
    CHUNK = 8,
    SAVE_EVERY = 1000,
    SAMPLE_EVERY = 500,
    MAX_SAMPLES = 4096
};

#define RSS_BOUND_KB ((size_t)2048)
#define HEAP_BOUND_BYTES ((size_t)64 * 1024)

#define CHECK_OK(call) \
  do { \
    lstm_status status_ = (call); \
    if (status_ != LSTM_OK) { \
      fprintf(stderr, "soak.c:%d: %s: %s (%s)\n", __LINE__, #call, lstm_strerror(status_), \
              lstm_error_message()); \
      exit(2); \
    } \
  } while (0)

/* ---- measurements -------------------------------------------------------- */

static size_t rss_kb(void)
{
    unsigned long pages = 0, resident = 0;
    FILE *statm = fopen("/proc/self/statm", "r");
    if (statm == NULL || fscanf(statm, "%lu %lu", &pages, &resident) != 2) {
        fprintf(stderr, "soak: cannot read /proc/self/statm\n");
        exit(2);
    }
    fclose(statm);
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE) / 1024;
}

/* Bytes malloc has handed out and not had back, over every arena. */
static size_t heap_in_use(void)
{
    struct mallinfo2 info = mallinfo2();
    return info.uordblks + info.hblkhd;
}

static double seconds_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

typedef struct sample {
    size_t step, rss_kb, heap, allocations;
    double loss, series_loss;
} sample;

/* ---- data ------------------------------------------------------------------ */

static uint64_t rng_state = 20241121u;

static uint64_t next_random(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static float uniform(float lo, float hi)
{
    return lo + (hi - lo) * (float)(next_random() >> 40) * 0x1p-24f;
}

/* A batch [B][T][I] (batch-first) of random lengths; the class of a sequence
 * is where the mean of its first feature falls: below -0.1, above 0.1, between. */
static void make_batch(size_t T, float *x, size_t *lengths, int32_t *targets)
{
    for (size_t b = 0; b < BATCH; b++) {
        lengths[b] = 1 + (size_t)(next_random() % T);
        const float drift = uniform(-0.3f, 0.3f);
        double sum = 0.0;
        for (size_t t = 0; t < T; t++) {
            float *row = x + (b * T + t) * INPUT;
            for (size_t i = 0; i < INPUT; i++)
                row[i] = uniform(-1.0f, 1.0f) + (i == 0 ? drift : 0.0f);
            if (t < lengths[b])
                sum += row[0];
        }
        const double mean = sum / (double)lengths[b];
        targets[b] = mean < -0.1 ? 0 : mean > 0.1 ? 2 : 1;
    }
}

/* The forecaster's series: STREAMS sine waves of different periods, noisy. */
static float series_value(size_t stream, size_t t)
{
    return sinf(0.07f * (float)(stream + 1) * (float)t) + uniform(-0.05f, 0.05f);
}

/* ---- the two models --------------------------------------------------------- */

typedef struct classifier {
    lstm_model *model;
    lstm_workspace *workspace;
    lstm_dense *head;
    lstm_optim *optim;
    float x[BATCH * MAX_T * INPUT], y[BATCH * MAX_T * OUT], dy[BATCH * MAX_T * OUT];
    float last[BATCH * OUT], dlast[BATCH * OUT], logits[BATCH * CLASSES], dlogits[BATCH * CLASSES];
    size_t lengths[BATCH];
    int32_t targets[BATCH];
} classifier;

typedef struct forecaster {
    lstm_model *model;
    lstm_workspace *workspace;
    lstm_state *train_state, *infer_state;
    lstm_optim *optim;
    size_t t; /* the series position */
    float x[CHUNK * STREAMS], y[CHUNK * STREAMS * SERIES_HIDDEN],
        dy[CHUNK * STREAMS * SERIES_HIDDEN], target[CHUNK * STREAMS * SERIES_HIDDEN];
    float x_t[STREAMS], y_t[STREAMS * SERIES_HIDDEN];
} forecaster;

static lstm_optim *new_optim(lstm_optim_kind kind, double lr, double momentum)
{
    lstm_optim_options options;
    lstm_optim *optim = NULL;
    CHECK_OK(lstm_optim_options_init(&options, sizeof options, kind));
    options.lr = lr;
    options.momentum = momentum;
    CHECK_OK(lstm_optim_create(&options, &optim));
    return optim;
}

static void classifier_create(classifier *c)
{
    lstm_config config;
    CHECK_OK(lstm_config_init(&config, sizeof config));
    config.input_size = INPUT;
    config.hidden_size = HIDDEN;
    config.proj_size = PROJ;
    config.num_layers = LAYERS;
    config.flags = LSTM_BIDIRECTIONAL | LSTM_BATCH_FIRST | LSTM_PEEPHOLE;
    config.dropout = 0.1;
    CHECK_OK(lstm_model_create(&config, &c->model));
    CHECK_OK(lstm_model_init(c->model, 1, LSTM_INIT_FORGET_BIAS_ONE));
    CHECK_OK(lstm_workspace_create(c->model, &c->workspace));
    CHECK_OK(lstm_workspace_set_seed(c->workspace, 7));
    CHECK_OK(lstm_dense_create(OUT, CLASSES, &c->head));
    CHECK_OK(lstm_dense_init(c->head, 2));
    c->optim = new_optim(LSTM_OPTIM_ADAM, 3e-3, 0.0);
    CHECK_OK(lstm_optim_add_model(c->optim, c->model));
    float *params, *grads;
    size_t count;
    CHECK_OK(lstm_dense_params(c->head, &params, &count));
    CHECK_OK(lstm_dense_grads(c->head, &grads, NULL));
    CHECK_OK(lstm_optim_add_buffer(c->optim, params, grads, count));
}

static void forecaster_create(forecaster *f)
{
    lstm_config config;
    CHECK_OK(lstm_config_init(&config, sizeof config));
    config.input_size = 1;
    config.hidden_size = SERIES_HIDDEN;
    CHECK_OK(lstm_model_create(&config, &f->model));
    CHECK_OK(lstm_model_init(f->model, 3, 0));
    CHECK_OK(lstm_workspace_create(f->model, &f->workspace));
    CHECK_OK(lstm_state_create(f->model, STREAMS, &f->train_state));
    CHECK_OK(lstm_state_create(f->model, STREAMS, &f->infer_state));
    f->optim = new_optim(LSTM_OPTIM_SGD, 0.05, 0.9);
    CHECK_OK(lstm_optim_add_model(f->optim, f->model));
}

/* One training step of the classifier; returns its loss. */
static double classifier_step(classifier *c, size_t step, size_t steps)
{
    /* a random T, the largest first so that the workspace grows once */
    const size_t T = step == 0 ? MAX_T : MAX_T / 2 + (size_t)(next_random() % (MAX_T / 2 + 1));
    make_batch(T, c->x, c->lengths, c->targets);
    double lr, loss, norm;
    CHECK_OK(lstm_schedule_cosine(3e-3, 3e-4, steps, step, &lr));
    CHECK_OK(lstm_optim_set_lr(c->optim, lr));
    CHECK_OK(lstm_optim_zero_grads(c->optim));
    CHECK_OK(lstm_model_forward_train(c->model, c->workspace, T, BATCH, c->lengths, c->x, NULL,
                                      NULL, c->y, NULL, NULL));
    CHECK_OK(lstm_sequence_last(T, BATCH, OUT, LSTM_BATCH_FIRST, c->lengths, c->y, c->last));
    CHECK_OK(lstm_dense_forward(c->head, BATCH, c->last, c->logits));
    CHECK_OK(lstm_loss_cross_entropy(BATCH, CLASSES, c->logits, c->targets, -1, &loss, c->dlogits));
    CHECK_OK(lstm_dense_backward(c->head, BATCH, c->last, c->dlogits, c->dlast));
    CHECK_OK(
        lstm_sequence_last_backward(T, BATCH, OUT, LSTM_BATCH_FIRST, c->lengths, c->dlast, c->dy));
    CHECK_OK(lstm_model_backward(c->model, c->workspace, c->dy, NULL, NULL, NULL, NULL, NULL));
    CHECK_OK(lstm_optim_clip_grad_norm(c->optim, 1.0, &norm));
    CHECK_OK(lstm_optim_step(c->optim));
    return loss;
}

/*
 * One chunk of truncated BPTT: the first hidden unit of h_t is trained to
 * predict x_{t+1} (MSE on that unit only: dy is zero elsewhere); then one
 * inference step through the second state. Returns the chunk's loss.
 */
static double forecaster_step(forecaster *f)
{
    for (size_t t = 0; t < CHUNK; t++)
        for (size_t s = 0; s < STREAMS; s++)
            f->x[t * STREAMS + s] = series_value(s, f->t + t);
    CHECK_OK(lstm_optim_zero_grads(f->optim));
    CHECK_OK(
        lstm_model_forward_train_chunk(f->model, f->workspace, f->train_state, CHUNK, f->x, f->y));
    /* the target of every unit is its own output, except unit 0's: x_{t+1} */
    memcpy(f->target, f->y, sizeof f->target);
    for (size_t t = 0; t < CHUNK; t++)
        for (size_t s = 0; s < STREAMS; s++)
            f->target[(t * STREAMS + s) * SERIES_HIDDEN] = 0.5f * series_value(s, f->t + t + 1);
    double loss;
    CHECK_OK(lstm_loss_mse(CHUNK * STREAMS * SERIES_HIDDEN, f->y, f->target, &loss, f->dy));
    CHECK_OK(lstm_model_backward(f->model, f->workspace, f->dy, NULL, NULL, NULL, NULL, NULL));
    CHECK_OK(lstm_optim_step(f->optim));

    for (size_t s = 0; s < STREAMS; s++)
        f->x_t[s] = series_value(s, f->t);
    CHECK_OK(lstm_model_step(f->model, f->infer_state, f->x_t, f->y_t));
    f->t += CHUNK;
    if (f->t % (100 * CHUNK) == 0) { /* a new series now and then */
        CHECK_OK(lstm_state_reset(f->train_state));
        CHECK_OK(lstm_state_reset(f->infer_state));
    }
    return loss * SERIES_HIDDEN; /* the mean over unit 0 alone */
}

/* Saves a model and its optimizer to memory, loads both into new handles,
 * checks the copy, and frees it. */
static void save_and_load(lstm_model *model, lstm_optim *optim, lstm_optim_kind kind,
                          double momentum, lstm_dense *head)
{
    size_t size;
    CHECK_OK(lstm_model_save_buffer(model, optim, NULL, 0, &size));
    unsigned char *file = malloc(size);
    if (file == NULL) {
        fprintf(stderr, "soak: out of memory\n");
        exit(2);
    }
    CHECK_OK(lstm_model_save_buffer(model, optim, file, size, &size));
    lstm_model *copy = NULL;
    CHECK_OK(lstm_model_load_buffer(file, size, &copy));
    lstm_optim *optim_copy = new_optim(kind, 0.01, momentum);
    CHECK_OK(lstm_optim_add_model(optim_copy, copy));
    lstm_dense *head_copy = NULL;
    if (head != NULL) { /* the head's buffer is bound after the model's */
        float *params, *grads;
        size_t count;
        CHECK_OK(lstm_dense_create(OUT, CLASSES, &head_copy));
        CHECK_OK(lstm_dense_params(head_copy, &params, &count));
        CHECK_OK(lstm_dense_grads(head_copy, &grads, NULL));
        CHECK_OK(lstm_optim_add_buffer(optim_copy, params, grads, count));
    }
    CHECK_OK(lstm_optim_load_buffer(optim_copy, file, size));
    uint64_t steps, copy_steps;
    CHECK_OK(lstm_optim_step_count(optim, &steps));
    CHECK_OK(lstm_optim_step_count(optim_copy, &copy_steps));
    if (lstm_model_param_count(copy) != lstm_model_param_count(model) || steps != copy_steps) {
        fprintf(stderr, "soak: a loaded copy differs from its model\n");
        exit(2);
    }
    lstm_optim_destroy(optim_copy);
    lstm_dense_destroy(head_copy);
    lstm_model_destroy(copy);
    free(file);
}

/* ---- the run ----------------------------------------------------------------- */

int main(int argc, char **argv)
{
    const long steps_arg = argc > 1 ? strtol(argv[1], NULL, 10) : 100000;
    if (argc > 2 || steps_arg < 2000) {
        fprintf(stderr, "usage: %s [STEPS]   (STEPS >= 2000, default 100000)\n", argv[0]);
        return 2;
    }
    const size_t steps = (size_t)steps_arg;
    const size_t warmup = steps / 10 > 1000 ? steps / 10 : 1000;

    static classifier c;
    static forecaster f;
    classifier_create(&c);
    forecaster_create(&f);

    static sample samples[MAX_SAMPLES];
    size_t sample_count = 0, allocating_steps = 0, save_cycles = 0;
    size_t first_save_allocations = 0, odd_save_cycles = 0;
    double loss_sum = 0.0, series_loss_sum = 0.0, first_loss = NAN, first_series_loss = NAN;
    const double start = seconds_now();
    for (size_t step = 0; step < steps; step++) {
        const size_t before = lstm__mem_alloc_count();
        const double loss = classifier_step(&c, step, steps);
        const double series_loss = forecaster_step(&f);
        if (step >= warmup && lstm__mem_alloc_count() != before)
            allocating_steps++;
        if (!isfinite(loss) || !isfinite(series_loss)) {
            fprintf(stderr, "soak: step %zu: loss %g, series loss %g\n", step, loss, series_loss);
            return 1;
        }
        loss_sum += loss;
        series_loss_sum += series_loss;

        if ((step + 1) % SAVE_EVERY == 0) {
            const size_t save_before = lstm__mem_alloc_count();
            save_and_load(c.model, c.optim, LSTM_OPTIM_ADAM, 0.0, c.head);
            save_and_load(f.model, f.optim, LSTM_OPTIM_SGD, 0.9, NULL);
            const size_t made = lstm__mem_alloc_count() - save_before;
            if (save_cycles++ == 0)
                first_save_allocations = made;
            else if (made != first_save_allocations)
                odd_save_cycles++;
        }
        if ((step + 1) % SAMPLE_EVERY == 0 && sample_count < MAX_SAMPLES) {
            const double mean = loss_sum / SAMPLE_EVERY;
            const double series_mean = series_loss_sum / SAMPLE_EVERY;
            if (sample_count == 0) {
                first_loss = mean;
                first_series_loss = series_mean;
            }
            samples[sample_count++] = (sample){
                step + 1, rss_kb(), heap_in_use(), lstm__mem_alloc_count(), mean, series_mean};
            loss_sum = series_loss_sum = 0.0;
        }
    }
    const double elapsed = seconds_now() - start;

    /* about 40 rows of the samples (all of them are checked) */
    printf("%8s %10s %12s %12s %10s %10s\n", "step", "RSS KB", "heap bytes", "lib allocs",
           "CE loss", "MSE loss");
    const size_t stride = (sample_count + 39) / 40;
    for (size_t n = 0; n < sample_count; n++)
        if (n % stride == 0 || n + 1 == sample_count)
            printf("%8zu %10zu %12zu %12zu %10.4f %10.5f\n", samples[n].step, samples[n].rss_kb,
                   samples[n].heap, samples[n].allocations, samples[n].loss,
                   samples[n].series_loss);

    /* the first sample at or after the warm-up is the reference */
    size_t ref = 0;
    while (ref + 1 < sample_count && samples[ref].step < warmup)
        ref++;
    size_t rss_max = samples[ref].rss_kb, heap_max = samples[ref].heap;
    for (size_t n = ref; n < sample_count; n++) {
        rss_max = samples[n].rss_kb > rss_max ? samples[n].rss_kb : rss_max;
        heap_max = samples[n].heap > heap_max ? samples[n].heap : heap_max;
    }
    const size_t rss_growth = rss_max - samples[ref].rss_kb;
    const size_t heap_growth = heap_max - samples[ref].heap;
    const sample *last = &samples[sample_count - 1];
    printf("soak: %zu steps in %.1f s (%.2f ms/step), warm-up %zu steps\n", steps, elapsed,
           1e3 * elapsed / (double)steps, warmup);
    printf("soak: RSS %zu KB at step %zu, at most %zu KB after (growth %zu KB, bound %zu KB), "
           "%zu KB at the end\n",
           samples[ref].rss_kb, samples[ref].step, rss_max, rss_growth, RSS_BOUND_KB, last->rss_kb);
    printf("soak: heap in use %zu bytes at step %zu, at most %zu after (growth %zu, bound %zu)\n",
           samples[ref].heap, samples[ref].step, heap_max, heap_growth, HEAP_BOUND_BYTES);
    printf("soak: library allocations: %zu in all; training steps after the warm-up that "
           "allocated: %zu; %zu per save/load cycle (%zu cycles, %zu different)\n",
           last->allocations, allocating_steps, first_save_allocations, save_cycles,
           odd_save_cycles);
    printf("soak: mean loss over the first and last %d steps: cross-entropy %.4f -> %.4f, "
           "forecast MSE %.5f -> %.5f\n",
           SAMPLE_EVERY, first_loss, last->loss, first_series_loss, last->series_loss);

    const bool ok = rss_growth <= RSS_BOUND_KB && heap_growth <= HEAP_BOUND_BYTES &&
                    allocating_steps == 0 && odd_save_cycles == 0;
    printf("soak: %s\n", ok ? "PASSED" : "FAILED");

    lstm_optim_destroy(c.optim);
    lstm_dense_destroy(c.head);
    lstm_workspace_destroy(c.workspace);
    lstm_model_destroy(c.model);
    lstm_optim_destroy(f.optim);
    lstm_state_destroy(f.train_state);
    lstm_state_destroy(f.infer_state);
    lstm_workspace_destroy(f.workspace);
    lstm_model_destroy(f.model);
    return ok ? 0 : 1;
}
