/*
 * forecast.c: forecast a real time series with an LSTM, trained on the past
 * and tested on a held-out final period, against two naive baselines.
 *
 * Series (--series):
 *   sunspots  yearly sunspot numbers 1700-2008 (examples/data/sunspots.csv,
 *             YEAR,SUNACTIVITY). Train 1700-1958, test 1959-2008. The model
 *             sees the normalised values. Season: one solar cycle, 11 years.
 *   co2       weekly CO2 at Mauna Loa 1958-2001 in ppm (examples/data/co2.csv,
 *             date as YYYYMMDD, empty value = missing week). Missing weeks
 *             are filled by linear interpolation between the observed weeks
 *             on either side (all of them lie in the training period of
 *             this file); the test RMSE counts only observed weeks. Test:
 *             the last 208 weeks (4 years); train on everything before.
 *             The model sees the weekly change v[k] - v[k-1] (normalised),
 *             which removes the trend, plus the time of year as
 *             (sin, cos) of 2 pi day/365.25, and predicts next week's
 *             change; the forecast is last week's value plus that change.
 *             Season: 52 weeks.
 * Normalisation (mean, standard deviation) uses the training period only.
 *
 * Forecasts are one step ahead: the value at k from the WINDOW true values
 * before k. Baselines: last value (v[k-1], persistence) and last season
 * (v[k-season]). Errors are RMSE in the series' units.
 *
 * Model: one LSTM layer (hidden H) from liblstm; a dense layer H -> 1
 * (lstm_dense) on the output of every step of a training window after a
 * few warm-up steps, mean squared error (lstm_loss_mse) against the next
 * step's value. One Adam optimizer updates the LSTM (lstm_optim_add_model)
 * and the dense layer (lstm_optim_add_buffer), with the global gradient
 * norm clipped to 1 and a cosine learning-rate decay.
 *
 * Usage: forecast --series sunspots|co2 [--csv FILE] [--predictions FILE]
 *                 [--smoke] [--seed S] [--epochs N] [--data FILE]
 *   --csv FILE          write the loss curve, one row per epoch:
 *                       epoch,train_mse,test_rmse (train MSE in normalised
 *                       units, test RMSE in the series' units)
 *   --predictions FILE  write the test period's forecasts:
 *                       time,actual,lstm,last_value,last_season
 *   --data FILE         read the series from FILE instead of the built-in path.
 *   --smoke             a short run (fewer epochs, a second); for ctest.
 * Exit status: 0 when the LSTM's test RMSE is below 0.9 times the last-value
 * baseline's, 1 when it is not or on any error.
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lstm/lstm.h>

#ifndef SUNSPOTS_CSV
#  define SUNSPOTS_CSV "examples/data/sunspots.csv"
#endif
#ifndef CO2_CSV
#  define CO2_CSV "examples/data/co2.csv"
#endif

enum { MAX_ROWS = 100000 };

static const double CLIP_NORM = 1.0; /* global gradient-norm clip */
static const double MARGIN = 0.9;    /* pass: test RMSE < 0.9 x last value's */
static const double PI = 3.14159265358979323846;

/* What differs between the series. */
typedef struct series_spec {
    const char *name;
    const char *default_path;
    const char *unit;
    long first_test_time; /* test from this time on (sunspots), or 0 */
    size_t test_count;    /* else the last test_count rows */
    size_t season;        /* rows per season, for the last-season baseline */
    int difference;       /* model v[k] - v[k-1] instead of v[k] */
    int calendar;         /* time is YYYYMMDD: add the time of year as inputs */
    size_t window, warmup, hidden, batch, epochs, smoke_epochs;
    double learning_rate; /* peak; decays to 0 on a cosine */
} series_spec;

static const series_spec SERIES[] = {
    {"sunspots", SUNSPOTS_CSV, "sunspot number", 1959, 0, 11, 0, 0, 30, 5, 32, 32, 60, 25, 5e-3},
    {"co2", CO2_CSV, "ppm", 0, 208, 52, 1, 1, 64, 8, 16, 32, 20, 4, 3e-3},
};

/* ---- deterministic random numbers (SplitMix64), no rand() ---- */

static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
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

/* Format a duration as "1h02m", "3m07s" or "12s". */
static void format_duration(double seconds, char *out, size_t size)
{
    long total = seconds > 0.0 ? (long)(seconds + 0.5) : 0;
    if (total >= 3600)
        snprintf(out, size, "%ldh%02ldm", total / 3600, (total / 60) % 60);
    else if (total >= 60)
        snprintf(out, size, "%ldm%02lds", total / 60, total % 60);
    else
        snprintf(out, size, "%lds", total);
}

/* Print a failed liblstm call; returns 1 on failure, 0 on success. */
static int failed(lstm_status status, const char *call)
{
    if (status == LSTM_OK)
        return 0;
    fprintf(stderr, "%s failed: %s: %s\n", call, lstm_strerror(status), lstm_error_message());
    return 1;
}

/* Command-line settings. */
typedef struct settings {
    const series_spec *spec;
    const char *data_path, *csv_path, *predictions_path;
    size_t epochs;
    uint64_t seed;
    int smoke;
} settings;

/* Everything the demo owns, so that main has one cleanup path. */
typedef struct demo {
    lstm_model *model;
    lstm_workspace *workspace;
    lstm_dense *dense;
    lstm_optim *optim;       /* updates the LSTM and the dense layer together */
    long *times;             /* [rows] YEAR or YYYYMMDD */
    double *raw;             /* [rows] values, gaps filled */
    unsigned char *observed; /* [rows] 0 where the file had no value */
    float *signal;           /* [rows] model inputs [rows][inputs]; column 0 the normalised value */
    size_t rows, train_rows, inputs, first; /* first row with a defined signal */
    double mean, scale;
    float *x, *target, *y, *dy, *z, *dz; /* training batch */
    float *test_x, *test_h, *test_z;     /* the test period as one batch */
    double *forecast;                    /* [test rows] LSTM forecasts, series units */
    /* The LSTM calls' arguments, set once in setup(): the buffers never move.
     * train_batch() sets the batch size, smaller at the end of an epoch. */
    lstm_sequences train_sequences, test_sequences;
    lstm_inputs train_inputs, test_inputs;
    lstm_outputs train_outputs, test_outputs;
    lstm_output_grads train_output_grads;
} demo;

/* Parse a whole decimal number in [min, max]; returns 0 on success. */
static int parse_count(const char *name, const char *text, uint64_t min, uint64_t max,
                       uint64_t *value)
{
    char *end;
    errno = 0;
    unsigned long long parsed = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || parsed < min ||
        parsed > max) {
        fprintf(stderr, "%s: \"%s\" is not a whole number in [%llu, %llu]\n", name, text,
                (unsigned long long)min, (unsigned long long)max);
        return 1;
    }
    *value = (uint64_t)parsed;
    return 0;
}

static void usage(FILE *to)
{
    fprintf(to, "usage: forecast --series sunspots|co2 [--csv FILE] [--predictions FILE]\n"
                "                [--smoke] [--seed S] [--epochs N] [--data FILE]\n");
}

static int parse_args(int argc, char **argv, settings *s)
{
    uint64_t value;
    int epochs_set = 0;
    memset(s, 0, sizeof *s);
    s->seed = 20240601u;
    for (int k = 1; k < argc; k++) {
        const char *arg = argv[k];
        const char *next = k + 1 < argc ? argv[k + 1] : NULL;
        if (strcmp(arg, "--smoke") == 0) {
            s->smoke = 1;
            continue;
        }
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (!next) {
            usage(stderr);
            return 1;
        }
        k++;
        if (strcmp(arg, "--series") == 0) {
            for (size_t j = 0; j < sizeof SERIES / sizeof SERIES[0]; j++)
                if (strcmp(next, SERIES[j].name) == 0)
                    s->spec = &SERIES[j];
            if (!s->spec) {
                fprintf(stderr, "--series: unknown series \"%s\"\n", next);
                return 1;
            }
        } else if (strcmp(arg, "--epochs") == 0) {
            if (parse_count(arg, next, 1, 1000000, &value))
                return 1;
            s->epochs = (size_t)value;
            epochs_set = 1;
        } else if (strcmp(arg, "--seed") == 0) {
            if (parse_count(arg, next, 0, UINT64_MAX, &s->seed))
                return 1;
        } else if (strcmp(arg, "--csv") == 0) {
            s->csv_path = next;
        } else if (strcmp(arg, "--predictions") == 0) {
            s->predictions_path = next;
        } else if (strcmp(arg, "--data") == 0) {
            s->data_path = next;
        } else {
            usage(stderr);
            return 1;
        }
    }
    if (!s->spec) {
        usage(stderr);
        return 1;
    }
    if (!s->data_path)
        s->data_path = s->spec->default_path;
    if (!epochs_set)
        s->epochs = s->smoke ? s->spec->smoke_epochs : s->spec->epochs;
    return 0;
}

/*
 * Read "TIME,VALUE" rows after a header line; an empty VALUE is a gap
 * (observed = 0). Returns the row count, or 0 on error.
 */
static size_t read_series(const char *path, long *times, double *values, unsigned char *observed,
                          size_t max_rows)
{
    char line[256];
    size_t rows = 0, line_number = 1;
    FILE *file = fopen(path, "r");
    if (!file) {
        perror(path);
        return 0;
    }
    if (!fgets(line, sizeof line, file)) /* header */
        goto fail;
    while (fgets(line, sizeof line, file)) {
        char *end, *value_end;
        line_number++;
        if (line[0] == '\n' || line[0] == '\r')
            continue;
        if (rows == max_rows) {
            fprintf(stderr, "%s: more than %zu rows\n", path, max_rows);
            goto fail;
        }
        times[rows] = strtol(line, &end, 10);
        if (end == line || *end != ',') {
            fprintf(stderr, "%s:%zu: cannot parse \"%s\"\n", path, line_number, line);
            goto fail;
        }
        errno = 0;
        values[rows] = strtod(end + 1, &value_end);
        observed[rows] = value_end != end + 1;
        if (errno != 0 || (observed[rows] && !isfinite(values[rows])) ||
            (*value_end != '\0' && *value_end != '\n' && *value_end != '\r')) {
            fprintf(stderr, "%s:%zu: cannot parse \"%s\"\n", path, line_number, line);
            goto fail;
        }
        rows++;
    }
    fclose(file);
    return rows;
fail:
    fclose(file);
    return 0;
}

/*
 * Fill gaps by linear interpolation between the observed rows on either
 * side (constant before the first and after the last observation).
 */
static int fill_gaps(double *values, const unsigned char *observed, size_t rows)
{
    size_t previous = rows; /* last observed row so far; rows = none yet */
    for (size_t k = 0; k < rows; k++) {
        if (!observed[k])
            continue;
        if (previous == rows) {
            for (size_t j = 0; j < k; j++)
                values[j] = values[k];
        } else {
            for (size_t j = previous + 1; j < k; j++) {
                double weight = (double)(j - previous) / (double)(k - previous);
                values[j] = values[previous] + weight * (values[k] - values[previous]);
            }
        }
        previous = k;
    }
    if (previous == rows) {
        fprintf(stderr, "the series has no values\n");
        return 1;
    }
    for (size_t j = previous + 1; j < rows; j++)
        values[j] = values[previous];
    return 0;
}

/* The quantity the model forecasts at row k (before normalisation). */
static double model_quantity(const demo *d, const series_spec *spec, size_t k)
{
    return spec->difference ? d->raw[k] - d->raw[k - 1] : d->raw[k];
}

/* Day of the year (0-based, approximate) of a YYYYMMDD date. */
static double day_of_year(long date)
{
    static const int month_start[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    long month = (date / 100) % 100, day = date % 100;
    if (month < 1 || month > 12)
        month = 1;
    return (double)month_start[month - 1] + (double)day - 1.0;
}

/* Split, normalise and build the model inputs. */
static int prepare(demo *d, const settings *s)
{
    const series_spec *spec = s->spec;
    size_t n = d->rows;
    if (spec->first_test_time) {
        size_t k = 0;
        while (k < n && d->times[k] < spec->first_test_time)
            k++;
        d->train_rows = k;
    } else {
        d->train_rows = n > spec->test_count ? n - spec->test_count : 0;
    }
    d->first = spec->difference ? 1 : 0;
    if (d->train_rows < d->first + spec->window + spec->batch || d->train_rows == n ||
        d->train_rows < spec->season) {
        fprintf(stderr, "%s: too few rows for training (%zu) or testing (%zu)\n", s->data_path,
                d->train_rows, n - d->train_rows);
        return 1;
    }
    if (fill_gaps(d->raw, d->observed, n))
        return 1;

    /* Training statistics only: the test period must not leak into the
     * model through the mean or the scale. */
    double sum = 0.0, squares = 0.0;
    size_t count = d->train_rows - d->first;
    for (size_t k = d->first; k < d->train_rows; k++)
        sum += model_quantity(d, spec, k);
    d->mean = sum / (double)count;
    for (size_t k = d->first; k < d->train_rows; k++) {
        double centred = model_quantity(d, spec, k) - d->mean;
        squares += centred * centred;
    }
    d->scale = sqrt(squares / (double)count);
    if (!(d->scale > 0.0)) {
        fprintf(stderr, "%s: the training period is constant\n", s->data_path);
        return 1;
    }

    d->inputs = spec->calendar ? 3 : 1;
    d->signal = calloc(n * d->inputs, sizeof *d->signal);
    if (!d->signal) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (size_t k = d->first; k < n; k++) {
        float *row = d->signal + k * d->inputs;
        row[0] = (float)((model_quantity(d, spec, k) - d->mean) / d->scale);
        if (spec->calendar) {
            double phase = 2.0 * PI * day_of_year(d->times[k]) / 365.25;
            row[1] = (float)sin(phase);
            row[2] = (float)cos(phase);
        }
    }
    return 0;
}

static int setup(demo *d, const settings *s)
{
    const series_spec *spec = s->spec;
    size_t T = spec->window, B = spec->batch, H = spec->hidden, I = d->inputs;
    size_t scored = (T - spec->warmup) * B;
    size_t tests = d->rows - d->train_rows;
    lstm_config config;
    lstm_optim_options options;
    float *dense_params, *dense_grads;
    size_t dense_count;

    d->x = malloc(T * B * I * sizeof *d->x);
    d->target = malloc(scored * sizeof *d->target);
    d->y = malloc(T * B * H * sizeof *d->y);
    d->dy = malloc(T * B * H * sizeof *d->dy);
    d->z = malloc(scored * sizeof *d->z);
    d->dz = malloc(scored * sizeof *d->dz);
    d->test_x = malloc(T * tests * I * sizeof *d->test_x);
    d->test_h = malloc(tests * H * sizeof *d->test_h);
    d->test_z = malloc(tests * sizeof *d->test_z);
    d->forecast = malloc(tests * sizeof *d->forecast);
    if (!d->x || !d->target || !d->y || !d->dy || !d->z || !d->dz || !d->test_x || !d->test_h ||
        !d->test_z || !d->forecast) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    d->train_sequences =
        (lstm_sequences){.struct_size = sizeof(lstm_sequences), .steps = T, .batch = B};
    d->train_inputs = (lstm_inputs){.struct_size = sizeof(lstm_inputs), .x = d->x};
    d->train_outputs = (lstm_outputs){.struct_size = sizeof(lstm_outputs), .y = d->y};
    d->train_output_grads =
        (lstm_output_grads){.struct_size = sizeof(lstm_output_grads), .dy = d->dy};
    d->test_sequences =
        (lstm_sequences){.struct_size = sizeof(lstm_sequences), .steps = T, .batch = tests};
    d->test_inputs = (lstm_inputs){.struct_size = sizeof(lstm_inputs), .x = d->test_x};
    d->test_outputs = (lstm_outputs){.struct_size = sizeof(lstm_outputs), .hT = d->test_h};
    /* The test inputs never change: the WINDOW rows before each test row. */
    for (size_t t = 0; t < T; t++)
        for (size_t b = 0; b < tests; b++)
            memcpy(d->test_x + (t * tests + b) * I, d->signal + (d->train_rows + b - T + t) * I,
                   I * sizeof *d->test_x);

    if (failed(lstm_config_init(&config, sizeof config), "lstm_config_init"))
        return 1;
    config.input_size = I;
    config.hidden_size = H;
    if (failed(lstm_model_create(&config, &d->model), "lstm_model_create") ||
        failed(lstm_model_init(d->model, s->seed, LSTM_INIT_FORGET_BIAS_ONE), "lstm_model_init") ||
        failed(lstm_workspace_create(d->model, &d->workspace), "lstm_workspace_create") ||
        failed(lstm_dense_create(H, 1, &d->dense), "lstm_dense_create") ||
        failed(lstm_dense_init(d->dense, s->seed ^ 0xDE45Eu), "lstm_dense_init") ||
        failed(lstm_dense_params(d->dense, &dense_params, &dense_count), "lstm_dense_params") ||
        failed(lstm_dense_grads(d->dense, &dense_grads, NULL), "lstm_dense_grads") ||
        failed(lstm_optim_options_init(&options, sizeof options, LSTM_OPTIM_ADAM),
               "lstm_optim_options_init"))
        return 1;
    options.lr = spec->learning_rate;
    if (failed(lstm_optim_create(&options, &d->optim), "lstm_optim_create") ||
        failed(lstm_optim_add_model(d->optim, d->model), "lstm_optim_add_model") ||
        failed(lstm_optim_add_buffer(d->optim, dense_params, dense_grads, dense_count),
               "lstm_optim_add_buffer") ||
        failed(lstm_optim_zero_grads(d->optim), "lstm_optim_zero_grads"))
        return 1;
    /* Size the training memory now, so that no step allocates. */
    return failed(lstm_workspace_reserve(d->workspace, LSTM_MODE_TRAIN, T, B),
                  "lstm_workspace_reserve");
}

static void teardown(demo *d)
{
    lstm_optim_destroy(d->optim);
    lstm_dense_destroy(d->dense);
    lstm_workspace_destroy(d->workspace);
    lstm_model_destroy(d->model);
    free(d->signal);
    free(d->x);
    free(d->target);
    free(d->y);
    free(d->dy);
    free(d->z);
    free(d->dz);
    free(d->test_x);
    free(d->test_h);
    free(d->test_z);
    free(d->forecast);
}

/*
 * One Adam step on the windows starting at starts[0..batch-1]. Window b
 * covers rows starts[b] .. starts[b] + T - 1; at step t the target is the
 * next row's value. Steps t < warmup, with little history, are not scored.
 */
static int train_batch(demo *d, const settings *s, const size_t *starts, size_t batch,
                       uint64_t step, uint64_t total_steps, double *loss)
{
    const series_spec *spec = s->spec;
    size_t T = spec->window, W = spec->warmup, H = spec->hidden, I = d->inputs;
    size_t scored = (T - W) * batch;
    for (size_t t = 0; t < T; t++) {
        for (size_t b = 0; b < batch; b++) {
            memcpy(d->x + (t * batch + b) * I, d->signal + (starts[b] + t) * I, I * sizeof *d->x);
            if (t >= W)
                d->target[(t - W) * batch + b] = d->signal[(starts[b] + t + 1) * I];
        }
    }
    /* Time-major layout: the scored steps W .. T-1 are one block of rows. */
    float *y_scored = d->y + W * batch * H;
    float *dy_scored = d->dy + W * batch * H;
    memset(d->dy, 0, W * batch * H * sizeof *d->dy);
    d->train_sequences.batch = batch;
    if (failed(lstm_model_train_forward(d->model, d->workspace, &d->train_sequences,
                                        &d->train_inputs, &d->train_outputs),
               "lstm_model_train_forward") ||
        failed(lstm_dense_forward(d->dense, scored, y_scored, d->z), "lstm_dense_forward") ||
        failed(lstm_loss_mse(scored, d->z, d->target, loss, d->dz), "lstm_loss_mse") ||
        failed(lstm_dense_backward(d->dense, scored, y_scored, d->dz, dy_scored),
               "lstm_dense_backward") ||
        failed(lstm_model_train_backward(d->model, d->workspace, &d->train_output_grads, NULL),
               "lstm_model_train_backward"))
        return 1;
    /* Clipping keeps the first steps, when the forecasts are far off, from
     * overshooting; the cosine decay lets the final parameters settle. */
    double lr;
    if (failed(lstm_optim_clip_grad_norm(d->optim, CLIP_NORM, NULL), "lstm_optim_clip_grad_norm") ||
        failed(lstm_schedule_cosine(spec->learning_rate, 0.0, total_steps, step, &lr),
               "lstm_schedule_cosine") ||
        failed(lstm_optim_set_lr(d->optim, lr), "lstm_optim_set_lr") ||
        failed(lstm_optim_step(d->optim), "lstm_optim_step"))
        return 1;
    return failed(lstm_optim_zero_grads(d->optim), "lstm_optim_zero_grads");
}

/*
 * Forecast every test row from the WINDOW rows before it, as one inference
 * batch (the final hidden state of a one-layer LSTM is its last output), and
 * return the RMSE over the observed test rows, in series units.
 */
static int test_rmse(demo *d, const settings *s, double *rmse)
{
    const series_spec *spec = s->spec;
    size_t tests = d->rows - d->train_rows, scored = 0;
    double sum = 0.0;
    if (failed(lstm_model_infer(d->model, d->workspace, &d->test_sequences, &d->test_inputs,
                                &d->test_outputs),
               "lstm_model_infer") ||
        failed(lstm_dense_forward(d->dense, tests, d->test_h, d->test_z), "lstm_dense_forward"))
        return 1;
    for (size_t b = 0; b < tests; b++) {
        size_t k = d->train_rows + b;
        /* Undo the normalisation (and the differencing). */
        double predicted = d->mean + d->scale * (double)d->test_z[b];
        d->forecast[b] = spec->difference ? d->raw[k - 1] + predicted : predicted;
        if (!d->observed[k])
            continue;
        double err = d->forecast[b] - d->raw[k];
        sum += err * err;
        scored++;
    }
    *rmse = scored ? sqrt(sum / (double)scored) : 0.0;
    return 0;
}

/* RMSE over the observed test rows of the forecast v[k - lag]. */
static double baseline_rmse(const demo *d, size_t lag)
{
    double sum = 0.0;
    size_t scored = 0;
    for (size_t k = d->train_rows; k < d->rows; k++) {
        if (!d->observed[k])
            continue;
        double err = d->raw[k - lag] - d->raw[k];
        sum += err * err;
        scored++;
    }
    return scored ? sqrt(sum / (double)scored) : 0.0;
}

static int write_predictions(const demo *d, const settings *s)
{
    FILE *csv = fopen(s->predictions_path, "w");
    if (!csv) {
        perror(s->predictions_path);
        return 1;
    }
    fprintf(csv, "time,actual,lstm,last_value,last_season\n");
    for (size_t k = d->train_rows; k < d->rows; k++) {
        fprintf(csv, "%ld,", d->times[k]);
        if (d->observed[k])
            fprintf(csv, "%.4f", d->raw[k]);
        fprintf(csv, ",%.4f,%.4f,%.4f\n", d->forecast[k - d->train_rows], d->raw[k - 1],
                d->raw[k - s->spec->season]);
    }
    if (fclose(csv) != 0) {
        perror(s->predictions_path);
        return 1;
    }
    return 0;
}

static int run(demo *d, const settings *s, FILE *curve, const struct timespec *start, int *beats)
{
    const series_spec *spec = s->spec;
    size_t T = spec->window, B = spec->batch;
    /* Window starts first .. train_rows - T - 1: the last target is the
     * last training row. */
    size_t windows = d->train_rows - T - d->first;
    size_t *starts = malloc(windows * sizeof *starts);
    int status = 1;
    if (!starts) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (size_t k = 0; k < windows; k++)
        starts[k] = d->first + k;

    printf("liblstm %s: %s, %zu rows %ld-%ld; train %ld-%ld (%zu windows of %zu), "
           "test %ld-%ld (%zu rows)%s\n",
           lstm_version_string(), spec->name, d->rows, d->times[0], d->times[d->rows - 1],
           d->times[0], d->times[d->train_rows - 1], windows, T, d->times[d->train_rows],
           d->times[d->rows - 1], d->rows - d->train_rows, s->smoke ? " [smoke]" : "");
    printf("LSTM I=%zu H=%zu (%zu parameters) + dense %zu->1 on steps %zu..%zu; Adam lr=%g "
           "cosine, clip %g, batch %zu, %zu epochs, seed %llu\n",
           d->inputs, spec->hidden, lstm_model_param_count(d->model), spec->hidden, spec->warmup,
           T - 1, spec->learning_rate, CLIP_NORM, B, s->epochs, (unsigned long long)s->seed);
    printf("%6s  %10s  %9s  %8s  %s\n", "epoch", "train MSE", "test RMSE", "seq/s", "left");

    uint64_t rng = s->seed;
    uint64_t batches_per_epoch = (windows + B - 1) / B;
    uint64_t total_steps = (uint64_t)s->epochs * batches_per_epoch, step = 0;
    size_t report_every = s->epochs >= 12 ? s->epochs / 12 : 1;
    double rmse = 0.0;
    for (size_t epoch = 1; epoch <= s->epochs; epoch++) {
        double epoch_loss = 0.0;
        shuffle(starts, windows, &rng);
        for (size_t first = 0; first < windows; first += B) {
            size_t batch = windows - first < B ? windows - first : B;
            double loss;
            if (train_batch(d, s, starts + first, batch, step++, total_steps, &loss))
                goto out;
            epoch_loss += loss * (double)batch;
        }
        /* The test forecasts are one inference batch: cheap next to an epoch. */
        if (test_rmse(d, s, &rmse))
            goto out;
        if (curve)
            fprintf(curve, "%zu,%.6f,%.6f\n", epoch, epoch_loss / (double)windows, rmse);
        if (epoch % report_every != 0 && epoch != s->epochs)
            continue;
        double elapsed = seconds_since(start);
        double rate = (double)(epoch * windows) / elapsed;
        char left[32];
        format_duration(elapsed / (double)epoch * (double)(s->epochs - epoch), left, sizeof left);
        printf("%6zu  %10.4f  %9.3f  %8.0f  %s\n", epoch, epoch_loss / (double)windows, rmse, rate,
               left);
        fflush(stdout);
    }

    double last_value = baseline_rmse(d, 1);
    double last_season = baseline_rmse(d, spec->season);
    printf("test RMSE %ld-%ld (%s, one step ahead):\n", d->times[d->train_rows],
           d->times[d->rows - 1], spec->unit);
    printf("  LSTM                         %8.3f\n", rmse);
    printf("  last value (persistence)     %8.3f\n", last_value);
    printf("  last season (%3zu rows back)  %8.3f\n", spec->season, last_season);
    *beats = rmse < MARGIN * last_value;
    printf("LSTM / last value = %.3f, %s %.1f: %s\n", rmse / last_value,
           *beats ? "<" : ">=", MARGIN,
           *beats ? "the LSTM beats the baseline" : "the LSTM does NOT beat the baseline");
    if (s->predictions_path && write_predictions(d, s))
        goto out;
    printf("total %.1f s\n", seconds_since(start));
    status = 0;
out:
    free(starts);
    return status;
}

int main(int argc, char **argv)
{
    settings s;
    demo d;
    FILE *curve = NULL;
    struct timespec start;
    int beats = 0;
    static long times[MAX_ROWS];
    static double raw[MAX_ROWS];
    static unsigned char observed[MAX_ROWS];

    memset(&d, 0, sizeof d);
    if (parse_args(argc, argv, &s))
        return 1;
    clock_gettime(CLOCK_MONOTONIC, &start);
    d.times = times;
    d.raw = raw;
    d.observed = observed;
    if (s.csv_path) {
        curve = fopen(s.csv_path, "w");
        if (!curve) {
            perror(s.csv_path);
            return 1;
        }
        fprintf(curve, "epoch,train_mse,test_rmse\n");
    }
    d.rows = read_series(s.data_path, times, raw, observed, MAX_ROWS);
    if (d.rows == 0 || prepare(&d, &s) || setup(&d, &s) || run(&d, &s, curve, &start, &beats))
        beats = 0;
    if (curve && fclose(curve) != 0) {
        perror(s.csv_path);
        beats = 0;
    }
    teardown(&d);
    return beats ? 0 : 1;
}
