/*
 * sunspots.c: train an LSTM to forecast next year's sunspot number.
 *
 * Data: yearly sunspot numbers 1700-2008 (examples/data/sunspots.csv).
 * Model: one LSTM layer (input 1, hidden 32) from liblstm, followed by a
 * linear read-out head pred_t = w . h_t + b written in this file.
 * Training: 1700-1958, as windows of 30 consecutive years; at every step
 * after the first 5 the model predicts the next year, and the loss is the
 * mean squared error of those predictions (normalised units). One liblstm
 * Adam optimizer updates both the LSTM (lstm_optim_add_model) and the head
 * (lstm_optim_add_buffer), with global gradient-norm clipping and a cosine
 * learning-rate schedule.
 * Test: 1959-2008, one-step-ahead forecasts from the 30 true years before
 * each target, compared with the persistence forecast "next year = this year".
 *
 * Usage: sunspots [path/to/sunspots.csv]
 * Exit status: 0 when the LSTM beats persistence on the test years, else 1.
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lstm/lstm.h>

#ifndef SUNSPOTS_CSV
#define SUNSPOTS_CSV "examples/data/sunspots.csv"
#endif

enum {
    MAX_YEARS = 1024,
    FIRST_TEST_YEAR = 1959,
    HIDDEN = 32,      /* H */
    WINDOW = 30,      /* T: years of history the model sees */
    WARMUP = 5,       /* steps of a window excluded from the loss */
    BATCH = 32,       /* windows per training step */
    EPOCHS = 60,
    REPORT_EVERY = 5
};

static const uint64_t SEED = 20240601u;
static const double LEARNING_RATE = 5e-3; /* peak; decays to 0 on a cosine */
static const double CLIP_NORM = 1.0; /* global gradient-norm clip */

/* ---- deterministic random numbers (SplitMix64), no rand() ---- */

static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double random_unit(uint64_t *state)
{
    return (double)(next_random(state) >> 11) * (1.0 / 9007199254740992.0);
}

/* Fisher-Yates shuffle. */
static void shuffle(size_t *items, size_t count, uint64_t *state)
{
    for (size_t k = count; k > 1; k--) {
        size_t j = (size_t)(next_random(state) % k);
        size_t tmp = items[k - 1];
        items[k - 1] = items[j];
        items[j] = tmp;
    }
}

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + 1e-9 * (double)(now.tv_nsec - start->tv_nsec);
}

/* Print a failed liblstm call; returns 1 on failure, 0 on success. */
static int failed(lstm_status status, const char *call)
{
    if (status == LSTM_OK)
        return 0;
    fprintf(stderr, "%s failed: %s: %s\n", call, lstm_strerror(status), lstm_error_message());
    return 1;
}

/* Read "YEAR,VALUE" rows after a header line. Returns the row count, or 0. */
static size_t read_series(const char *path, int *years, double *values, size_t max_rows)
{
    char line[256];
    size_t rows = 0;
    FILE *file = fopen(path, "r");
    if (!file) {
        perror(path);
        return 0;
    }
    if (!fgets(line, sizeof line, file)) /* header */
        goto out;
    while (rows < max_rows && fgets(line, sizeof line, file)) {
        char *end;
        long year = strtol(line, &end, 10);
        if (end == line || *end != ',') {
            if (line[0] == '\n' || line[0] == '\r')
                continue;
            fprintf(stderr, "%s:%zu: cannot parse \"%s\"\n", path, rows + 2, line);
            rows = 0;
            goto out;
        }
        years[rows] = (int)year;
        values[rows] = strtod(end + 1, NULL);
        rows++;
    }
out:
    fclose(file);
    return rows;
}

/* ---- the read-out head: pred = w . h + b, parameters head[0..H-1] = w, head[H] = b ---- */

static float head_predict(const float *head, const float *h)
{
    float sum = head[HIDDEN];
    for (size_t k = 0; k < HIDDEN; k++)
        sum += head[k] * h[k];
    return sum;
}

/*
 * Loss of a batch of windows and its gradients.
 * y [T][B][H] LSTM outputs, target [T][B] next-year values (normalised).
 * loss = mean over steps t >= WARMUP and windows b of (pred - target)^2.
 * Writes dy [T][B][H] = dloss/dy and adds dloss/dhead to head_grad.
 */
static double head_loss(const float *head, const float *y, const float *target, size_t batch,
                        float *dy, float *head_grad)
{
    size_t terms = (size_t)(WINDOW - WARMUP) * batch;
    double loss = 0.0;
    memset(dy, 0, (size_t)WINDOW * batch * HIDDEN * sizeof *dy);
    for (size_t t = WARMUP; t < WINDOW; t++) {
        for (size_t b = 0; b < batch; b++) {
            const float *h = y + (t * batch + b) * HIDDEN;
            float *dh = dy + (t * batch + b) * HIDDEN;
            float err = head_predict(head, h) - target[t * batch + b];
            /* d(err^2 / terms) / dpred */
            float dpred = 2.0f * err / (float)terms;
            loss += (double)err * (double)err;
            for (size_t k = 0; k < HIDDEN; k++) {
                dh[k] = dpred * head[k];
                head_grad[k] += dpred * h[k];
            }
            head_grad[HIDDEN] += dpred;
        }
    }
    return loss / (double)terms;
}

/* Everything the demo owns, so that main has one cleanup path. */
typedef struct demo {
    lstm_model *model;
    lstm_workspace *workspace;
    lstm_optim *optim; /* updates the LSTM and the head together */
    float head[HIDDEN + 1], head_grad[HIDDEN + 1];
    uint64_t step, total_steps;
    float *x, *target, *y, *dy, *last_h; /* batch buffers, sized for max_batch */
    size_t max_batch;
    float *series;   /* normalised values */
    double *raw;     /* sunspot numbers */
    size_t years;    /* length of the series */
    size_t train_years;
    double mean, scale;
} demo;

/* One training step on the windows starting at starts[0..batch-1]. */
static int train_batch(demo *d, const size_t *starts, size_t batch, double *loss)
{
    for (size_t t = 0; t < WINDOW; t++) {
        for (size_t b = 0; b < batch; b++) {
            d->x[t * batch + b] = d->series[starts[b] + t];
            d->target[t * batch + b] = d->series[starts[b] + t + 1];
        }
    }
    if (failed(lstm_model_forward_train(d->model, d->workspace, WINDOW, batch, NULL, d->x, NULL, NULL,
                                        d->y, NULL, NULL),
               "lstm_model_forward_train"))
        return 1;
    *loss = head_loss(d->head, d->y, d->target, batch, d->dy, d->head_grad);
    if (failed(lstm_model_backward(d->model, d->workspace, d->dy, NULL, NULL, NULL, NULL, NULL),
               "lstm_model_backward"))
        return 1;

    /* Clip the global gradient norm (LSTM and head together): keeps the
     * first steps, when the forecasts are far off, from overshooting. */
    if (failed(lstm_optim_clip_grad_norm(d->optim, CLIP_NORM, NULL), "lstm_optim_clip_grad_norm"))
        return 1;

    /* Cosine decay: large steps early, small ones at the end so that the
     * final parameters settle instead of bouncing around a minimum. */
    double lr;
    if (failed(lstm_schedule_cosine(LEARNING_RATE, 0.0, d->total_steps, d->step++, &lr),
               "lstm_schedule_cosine") ||
        failed(lstm_optim_set_lr(d->optim, lr), "lstm_optim_set_lr") ||
        failed(lstm_optim_step(d->optim), "lstm_optim_step"))
        return 1;
    return failed(lstm_optim_zero_grads(d->optim), "lstm_optim_zero_grads");
}

/*
 * Test RMSE in sunspot units: for every test year k, feed the WINDOW true
 * values before it and read the forecast from the last hidden state.
 */
static int test_rmse(demo *d, double *rmse)
{
    size_t batch = d->years - d->train_years;
    for (size_t t = 0; t < WINDOW; t++)
        for (size_t b = 0; b < batch; b++)
            d->x[t * batch + b] = d->series[d->train_years + b - WINDOW + t];
    if (failed(lstm_model_forward(d->model, d->workspace, WINDOW, batch, NULL, d->x, NULL, NULL, NULL,
                                  d->last_h, NULL),
               "lstm_model_forward"))
        return 1;
    double sum = 0.0;
    for (size_t b = 0; b < batch; b++) {
        float prediction = head_predict(d->head, d->last_h + b * HIDDEN);
        double forecast = d->mean + d->scale * (double)prediction; /* undo the normalisation */
        double err = forecast - d->raw[d->train_years + b];
        sum += err * err;
    }
    *rmse = sqrt(sum / (double)batch);
    return 0;
}

static int setup(demo *d, const int *years)
{
    lstm_config config;
    size_t n = 0;
    for (size_t k = 1; k < d->years; k++) {
        if (years[k] != years[k - 1] + 1) {
            fprintf(stderr, "years must be consecutive: %d follows %d\n", years[k],
                    years[k - 1]);
            return 1;
        }
    }
    while (n < d->years && years[n] < FIRST_TEST_YEAR)
        n++;
    d->train_years = n;
    if (n <= WINDOW || n == d->years) {
        fprintf(stderr, "need more than %d training years and some test years\n", WINDOW + 1);
        return 1;
    }
    /* Normalise with training-period statistics only: the test years must
     * not leak into the model through the mean or the scale. */
    double sum = 0.0, sq = 0.0;
    for (size_t k = 0; k < n; k++)
        sum += d->raw[k];
    d->mean = sum / (double)n;
    for (size_t k = 0; k < n; k++)
        sq += (d->raw[k] - d->mean) * (d->raw[k] - d->mean);
    d->scale = sqrt(sq / (double)n);

    d->max_batch = d->years - n > BATCH ? d->years - n : BATCH;
    d->series = malloc(d->years * sizeof *d->series);
    d->x = malloc((size_t)WINDOW * d->max_batch * sizeof *d->x);
    d->target = malloc((size_t)WINDOW * d->max_batch * sizeof *d->target);
    d->y = malloc((size_t)WINDOW * d->max_batch * HIDDEN * sizeof *d->y);
    d->dy = malloc((size_t)WINDOW * d->max_batch * HIDDEN * sizeof *d->dy);
    d->last_h = malloc(d->max_batch * HIDDEN * sizeof *d->last_h);
    if (!d->series || !d->x || !d->target || !d->y || !d->dy || !d->last_h) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (size_t k = 0; k < d->years; k++)
        d->series[k] = (float)((d->raw[k] - d->mean) / d->scale);

    if (failed(lstm_config_init(&config, sizeof config), "lstm_config_init"))
        return 1;
    config.input_size = 1;
    config.hidden_size = HIDDEN;
    lstm_optim_options options;
    if (failed(lstm_model_create(&config, &d->model), "lstm_model_create") ||
        failed(lstm_model_init(d->model, SEED, LSTM_INIT_FORGET_BIAS_ONE), "lstm_model_init") ||
        failed(lstm_workspace_create(d->model, &d->workspace), "lstm_workspace_create") ||
        failed(lstm_optim_options_init(&options, sizeof options, LSTM_OPTIM_ADAM),
               "lstm_optim_options_init"))
        return 1;
    options.lr = LEARNING_RATE;
    if (failed(lstm_optim_create(&options, &d->optim), "lstm_optim_create") ||
        failed(lstm_optim_add_model(d->optim, d->model), "lstm_optim_add_model") ||
        failed(lstm_optim_add_buffer(d->optim, d->head, d->head_grad, HIDDEN + 1),
               "lstm_optim_add_buffer") ||
        failed(lstm_optim_zero_grads(d->optim), "lstm_optim_zero_grads"))
        return 1;

    /* Head initialised like a PyTorch Linear layer: U(-1/sqrt(H), 1/sqrt(H)). */
    uint64_t rng = SEED ^ 0x5EEDu;
    double bound = 1.0 / sqrt((double)HIDDEN);
    for (size_t k = 0; k <= HIDDEN; k++)
        d->head[k] = (float)(bound * (2.0 * random_unit(&rng) - 1.0));
    return 0;
}

static void teardown(demo *d)
{
    lstm_workspace_destroy(d->workspace);
    lstm_optim_destroy(d->optim);
    lstm_model_destroy(d->model);
    free(d->series);
    free(d->x);
    free(d->target);
    free(d->y);
    free(d->dy);
    free(d->last_h);
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : SUNSPOTS_CSV;
    static int years[MAX_YEARS];
    static double raw[MAX_YEARS];
    demo d;
    size_t *starts = NULL;
    int beats_baseline = 0;
    struct timespec start;

    memset(&d, 0, sizeof d);
    clock_gettime(CLOCK_MONOTONIC, &start);
    d.raw = raw;
    d.years = read_series(path, years, raw, MAX_YEARS);
    if (d.years == 0 || setup(&d, years))
        goto out;

    size_t windows = d.train_years - WINDOW; /* starts 0 .. n-T-1; the last target is year n-1 */
    starts = malloc(windows * sizeof *starts);
    if (!starts) {
        fprintf(stderr, "out of memory\n");
        goto out;
    }
    for (size_t k = 0; k < windows; k++)
        starts[k] = k;
    d.total_steps = (uint64_t)(EPOCHS * ((windows + BATCH - 1) / BATCH));

    printf("liblstm %s: sunspots %d-%d, train %d-%d (%zu windows of %d years), test %d-%d\n",
           lstm_version_string(), years[0], years[d.years - 1], years[0],
           years[d.train_years - 1], windows, WINDOW, years[d.train_years],
           years[d.years - 1]);
    printf("LSTM I=1 H=%d (%zu parameters) + linear head; Adam lr=%g with cosine decay, "
           "batch %d, %d epochs\n",
           HIDDEN, lstm_model_param_count(d.model), LEARNING_RATE, BATCH, EPOCHS);

    uint64_t rng = SEED;
    double rmse = 0.0;
    for (int epoch = 1; epoch <= EPOCHS; epoch++) {
        double epoch_loss = 0.0;
        shuffle(starts, windows, &rng);
        for (size_t first = 0; first < windows; first += BATCH) {
            size_t batch = windows - first < BATCH ? windows - first : BATCH;
            double loss;
            if (train_batch(&d, starts + first, batch, &loss))
                goto out;
            epoch_loss += loss * (double)batch;
        }
        if (epoch == 1 || epoch % REPORT_EVERY == 0) {
            if (test_rmse(&d, &rmse))
                goto out;
            printf("epoch %4d  train MSE %.4f  test RMSE %6.2f  %.1f s\n", epoch,
                   epoch_loss / (double)windows, rmse, seconds_since(&start));
        }
    }
    if (test_rmse(&d, &rmse))
        goto out;

    /* Persistence: forecast year k with the value of year k-1. */
    double sum = 0.0;
    for (size_t k = d.train_years; k < d.years; k++)
        sum += (raw[k] - raw[k - 1]) * (raw[k] - raw[k - 1]);
    double persistence = sqrt(sum / (double)(d.years - d.train_years));

    beats_baseline = rmse < persistence;
    printf("test RMSE %d-%d: LSTM %.2f, persistence (next year = this year) %.2f: %s\n",
           years[d.train_years], years[d.years - 1], rmse, persistence,
           beats_baseline ? "LSTM is better" : "LSTM does NOT beat the baseline");
    printf("total %.1f s\n", seconds_since(&start));
out:
    free(starts);
    teardown(&d);
    return beats_baseline ? 0 : 1;
}
