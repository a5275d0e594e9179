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
 * Model: an lstm_network of one LSTM layer (hidden H) on the features and a
 * dense head H -> 1 on every step, trained on its mean squared error
 * (LSTM_LOSS_MSE) against the next step's value, with the first few steps
 * of each window, a warm-up, left out by the targets' mask
 * (lstm_targets.mask). Adam, the global gradient norm clipped to 1, a
 * cosine learning-rate decay.
 * At the end the network is saved (lstm_network_save) with metadata:
 * "series", "window", "description" and "normalisation" (the mean, std and
 * transform); loaded back, with the inputs made by that normalisation alone,
 * it must forecast the test period to the same bits.
 * The trained network's test RMSE is printed in float32, bf16 and int8
 * (lstm_workspace_set_precision: the LSTM layer's products and the
 * head's), the same network each time.
 *
 * Usage: forecast --series sunspots|co2 [--csv FILE] [--predictions FILE]
 *                 [--model FILE] [--smoke] [--seed S] [--epochs N] [--data FILE]
 *                 [--train-precision fp32|bf16]
 *   --csv FILE          write the loss curve, one row per epoch:
 *                       epoch,train_mse,test_rmse (train MSE in normalised
 *                       units, test RMSE in the series' units)
 *   --predictions FILE  write the test period's forecasts:
 *                       time,actual,lstm,last_value,last_season
 *   --model FILE        save the network there (default forecast-SERIES.lstm).
 *   --data FILE         read the series from FILE instead of the built-in path.
 *   --train-precision P training's arithmetic: fp32 (default) or bf16
 *                       (lstm_workspace_set_training_precision: every
 *                       product of the forward and backward passes in
 *                       bf16, sums, weights and Adam's state in float32)
 *   --smoke             a short run (fewer epochs, a second); for ctest.
 * Exit status: 0 when the LSTM's test RMSE is below 0.9 times the last-value
 * baseline's, the loaded network's forecasts are the same, and (the smoke
 * run) the bf16 and int8 RMSEs are within SMOKE_PRECISION_RELATIVE of
 * float32's; 1 when not or on any error.
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

#include "example.h"

#ifndef SUNSPOTS_CSV
#  define SUNSPOTS_CSV "examples/data/sunspots.csv"
#endif
#ifndef CO2_CSV
#  define CO2_CSV "examples/data/co2.csv"
#endif

enum { MAX_ROWS = 100000, MAX_INPUTS = 3 };

static const double CLIP_NORM = 1.0; /* global gradient-norm clip */
static const double MARGIN = 0.9;    /* pass: test RMSE < 0.9 x last value's */
static const double PI = 3.14159265358979323846;
/* The bound for reduced precision (relative to float32's RMSE),
 * and the smoke run's looser one. */
static const double PRECISION_RELATIVE = 0.01, SMOKE_PRECISION_RELATIVE = 0.05;

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

/* Command-line settings. */
typedef struct settings {
    const series_spec *spec;
    const char *data_path, *csv_path, *predictions_path, *model_path;
    char default_model_path[64];
    size_t epochs;
    uint64_t seed;
    int smoke;
    lstm_precision train_precision; /* of the training calls */
} settings;

/* How the series becomes the network's input and its output a forecast:
 * what a user of the saved network needs, so it goes into the metadata. */
typedef struct transform {
    double mean, std; /* of the modelled quantity over the training period */
    int difference;   /* the quantity is v[k] - v[k-1], else v[k] */
    int time_of_year; /* inputs 2 and 3: (sin, cos) of the time of year */
} transform;

/* Everything the demo owns, so that main has one cleanup path. */
typedef struct demo {
    lstm_network *network;
    lstm_workspace *workspace; /* of the network's model; serves the loaded one too */
    lstm_optim *optim;
    long times[MAX_ROWS];                   /* YEAR or YYYYMMDD */
    double raw[MAX_ROWS];                   /* values, gaps filled */
    unsigned char observed[MAX_ROWS];       /* 0 where the file had no value */
    float signal[MAX_ROWS * MAX_INPUTS];    /* [rows][inputs]; column 0 the normalised quantity */
    size_t rows, train_rows, inputs, first; /* first row with a defined signal */
    size_t starts[MAX_ROWS], windows;       /* [windows] training windows' first rows, first .. */
    double forecast[MAX_ROWS];              /* [tests] series units: the trained network's */
    double reloaded[MAX_ROWS];              /* [tests] the loaded network's */
    transform tf;
    /* A batch: training [T][B], or the test period's [T][tests], in one block. x has I
     * floats a row; y one: the training targets, or the test period's outputs. */
    float *x, *y;
    uint8_t *mask; /* [rows], after y: training, 0 on the warm-up steps */
} demo;

static void usage(FILE *to)
{
    fprintf(to, "usage: forecast --series sunspots|co2 [--csv FILE] [--predictions FILE]\n"
                "                [--model FILE] [--smoke] [--seed S] [--epochs N] [--data FILE]\n"
                "                [--train-precision fp32|bf16]\n");
}

static int parse_args(int argc, char **argv, settings *s)
{
    const char *series = NULL, *train_precision = NULL;
    uint64_t epochs = 0; /* 0: the series' default */
    const ex_option options[] = {{.name = "--series", .text = &series},
                                 {.name = "--train-precision", .text = &train_precision},
                                 {.name = "--epochs", .number = &epochs, .min = 1, .max = 1000000},
                                 {.name = "--seed", .number = &s->seed, .max = UINT64_MAX},
                                 {.name = "--csv", .text = &s->csv_path},
                                 {.name = "--predictions", .text = &s->predictions_path},
                                 {.name = "--model", .text = &s->model_path},
                                 {.name = "--data", .text = &s->data_path}};
    const size_t count = sizeof options / sizeof options[0];
    memset(s, 0, sizeof *s);
    s->seed = 20240601u;
    for (int k = 1; k < argc; k++) {
        if (strcmp(argv[k], "--smoke") == 0) {
            s->smoke = 1;
        } else if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
            usage(stdout);
            exit(0);
        } else {
            int taken = ex_take_option(options, count, argc, argv, &k);
            if (taken <= 0) {
                if (taken == 0)
                    usage(stderr);
                return 1;
            }
        }
    }
    for (size_t j = 0; series && j < sizeof SERIES / sizeof SERIES[0]; j++)
        if (strcmp(series, SERIES[j].name) == 0)
            s->spec = &SERIES[j];
    if (!s->spec) {
        if (series)
            fprintf(stderr, "--series: unknown series \"%s\"\n", series);
        else
            usage(stderr);
        return 1;
    }
    if (ex_parse_training_precision(train_precision, &s->train_precision))
        return 1;
    s->epochs = epochs ? (size_t)epochs : s->smoke ? s->spec->smoke_epochs : s->spec->epochs;
    if (!s->data_path)
        s->data_path = s->spec->default_path;
    if (!s->model_path) {
        snprintf(s->default_model_path, sizeof s->default_model_path, "forecast-%s.lstm",
                 s->spec->name);
        s->model_path = s->default_model_path;
    }
    return 0;
}

/*
 * Read "TIME,VALUE" rows after a header line into d->times, raw and
 * observed; an empty VALUE is a gap (observed = 0). Returns the row count,
 * or 0 on error.
 */
static size_t read_series(demo *d, const char *path)
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
        if (rows == MAX_ROWS) {
            fprintf(stderr, "%s: more than %d rows\n", path, MAX_ROWS);
            goto fail;
        }
        d->times[rows] = strtol(line, &end, 10);
        if (end == line || *end != ',')
            goto unparsed;
        errno = 0;
        d->raw[rows] = strtod(end + 1, &value_end);
        d->observed[rows] = value_end != end + 1;
        if (errno != 0 || (d->observed[rows] && !isfinite(d->raw[rows])) ||
            (*value_end != '\0' && *value_end != '\n' && *value_end != '\r'))
            goto unparsed;
        rows++;
    }
    fclose(file);
    return rows;
unparsed:
    fprintf(stderr, "%s:%zu: cannot parse \"%s\"\n", path, line_number, line);
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
    size_t previous = 0; /* the last observed row so far */
    while (previous < rows && !observed[previous])
        previous++;
    if (previous == rows) {
        fprintf(stderr, "the series has no values\n");
        return 1;
    }
    for (size_t j = 0; j < previous; j++)
        values[j] = values[previous];
    for (size_t k = previous + 1; k < rows; k++) {
        if (!observed[k])
            continue;
        for (size_t j = previous + 1; j < k; j++) {
            double weight = (double)(j - previous) / (double)(k - previous);
            values[j] = values[previous] + weight * (values[k] - values[previous]);
        }
        previous = k;
    }
    for (size_t j = previous + 1; j < rows; j++)
        values[j] = values[previous];
    return 0;
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

/* The quantity the network forecasts at row k (before normalisation). */
static double quantity(const demo *d, const transform *tf, size_t k)
{
    return tf->difference ? d->raw[k] - d->raw[k - 1] : d->raw[k];
}

/* Split and fill the series; the transform from the training period. */
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
    transform *tf = &d->tf;
    double sum = 0.0, squares = 0.0;
    size_t count = d->train_rows - d->first;
    tf->difference = spec->difference;
    tf->time_of_year = spec->calendar;
    for (size_t k = d->first; k < d->train_rows; k++)
        sum += quantity(d, tf, k);
    tf->mean = sum / (double)count;
    for (size_t k = d->first; k < d->train_rows; k++) {
        double centred = quantity(d, tf, k) - tf->mean;
        squares += centred * centred;
    }
    tf->std = sqrt(squares / (double)count);
    if (!(tf->std > 0.0)) {
        fprintf(stderr, "%s: the training period is constant\n", s->data_path);
        return 1;
    }
    d->inputs = spec->calendar ? 3 : 1;
    return 0;
}

/* The network's input at every row, under a transform. */
static void build_inputs(demo *d, const transform *tf)
{
    size_t I = d->inputs;
    for (size_t k = tf->difference ? 1 : 0; k < d->rows; k++) {
        float *row = d->signal + k * I;
        row[0] = (float)((quantity(d, tf, k) - tf->mean) / tf->std);
        if (tf->time_of_year) {
            double phase = 2.0 * PI * day_of_year(d->times[k]) / 365.25;
            row[1] = (float)sin(phase);
            row[2] = (float)cos(phase);
        }
    }
}

static int setup(demo *d, const settings *s)
{
    const series_spec *spec = s->spec;
    size_t T = spec->window, B = spec->batch, I = d->inputs, tests = d->rows - d->train_rows;
    size_t rows = T * (B > tests ? B : tests);
    const lstm_config config = {
        .struct_size = sizeof config, .input_size = I, .hidden_size = spec->hidden};
    lstm_network_config network_config = {.struct_size = sizeof network_config,
                                          .lstm = &config,
                                          .head = LSTM_HEAD_EVERY_STEP,
                                          .loss = LSTM_LOSS_MSE,
                                          .head_size = 1};
    lstm_optim_options options;

    d->x = malloc(rows * ((I + 1) * sizeof *d->x + sizeof *d->mask));
    if (!d->x) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    d->y = d->x + rows * I;
    d->mask = (uint8_t *)(d->y + rows);
    /* Window starts first .. train_rows - T - 1: the last target is the
     * last training row. */
    d->windows = d->train_rows - T - d->first;
    for (size_t k = 0; k < d->windows; k++)
        d->starts[k] = d->first + k;
    build_inputs(d, &d->tf);

    /* Each part from the seed it had before there were networks (not
     * lstm_network_init()'s seed + 1 and seed + 2), for the same weights. */
    if (ex_failed(lstm_network_create(&network_config, &d->network), "lstm_network_create") ||
        ex_failed(
            lstm_model_init(lstm_network_model(d->network), s->seed, LSTM_INIT_FORGET_BIAS_ONE),
            "lstm_model_init") ||
        ex_failed(lstm_dense_init(lstm_network_head(d->network), s->seed ^ 0xDE45Eu),
                  "lstm_dense_init") ||
        ex_failed(lstm_workspace_create(lstm_network_model(d->network), &d->workspace),
                  "lstm_workspace_create") ||
        ex_set_training_precision(d->workspace, s->train_precision) ||
        ex_failed(lstm_optim_options_init(&options, sizeof options, LSTM_OPTIM_ADAM),
                  "lstm_optim_options_init"))
        return 1;
    options.lr = spec->learning_rate;
    /* The network starts with zero gradients. The workspace grows in the
     * first training and test calls, and never after. */
    return ex_failed(lstm_optim_create(&options, &d->optim), "lstm_optim_create") ||
           ex_failed(lstm_optim_add_network(d->optim, d->network), "lstm_optim_add_network");
}

/*
 * One Adam step on the windows starting at starts[0..batch-1]. Window b
 * covers rows starts[b] .. starts[b] + T - 1; at step t the target is the
 * next row's value. Steps t < warmup, with little history, are not scored:
 * the mask leaves them out of the loss (a mean over the other rows) and its
 * gradient.
 */
static int train_batch(demo *d, const settings *s, const size_t *starts, size_t batch,
                       uint64_t step, uint64_t total_steps, double *loss)
{
    const series_spec *spec = s->spec;
    size_t T = spec->window, I = d->inputs;
    for (size_t t = 0; t < T; t++) {
        for (size_t b = 0; b < batch; b++) {
            size_t row = t * batch + b, k = starts[b] + t;
            memcpy(d->x + row * I, d->signal + k * I, I * sizeof *d->x);
            d->y[row] = d->signal[(k + 1) * I];
            d->mask[row] = t >= spec->warmup;
        }
    }
    const lstm_sequences sequences = {.struct_size = sizeof sequences, .steps = T, .batch = batch};
    const lstm_network_inputs inputs = {.struct_size = sizeof inputs, .features = d->x};
    const lstm_targets targets = {.struct_size = sizeof targets, .values = d->y, .mask = d->mask};
    /* No output wanted: the loss reads the one the workspace keeps. Clipping
     * keeps the first steps, when the forecasts are far off, from
     * overshooting; the cosine decay lets the final parameters settle. */
    double lr;
    if (ex_failed(lstm_network_train_forward(d->network, d->workspace, &sequences, &inputs, NULL),
                  "lstm_network_train_forward") ||
        ex_failed(lstm_network_train_backward(d->network, d->workspace, &targets, loss),
                  "lstm_network_train_backward") ||
        ex_failed(lstm_optim_clip_grad_norm(d->optim, CLIP_NORM, NULL),
                  "lstm_optim_clip_grad_norm") ||
        ex_failed(lstm_schedule_cosine(spec->learning_rate, 0.0, total_steps, step, &lr),
                  "lstm_schedule_cosine") ||
        ex_failed(lstm_optim_set_lr(d->optim, lr), "lstm_optim_set_lr") ||
        ex_failed(lstm_optim_step(d->optim), "lstm_optim_step"))
        return 1;
    return ex_failed(lstm_optim_zero_grads(d->optim), "lstm_optim_zero_grads");
}

/*
 * Forecast every test row from the WINDOW rows before it (the output's last
 * step), as one inference batch, undoing the transform.
 */
static int forecast_test(demo *d, const lstm_network *network, const transform *tf, size_t T,
                         double *forecast)
{
    size_t I = d->inputs, tests = d->rows - d->train_rows;
    for (size_t t = 0; t < T; t++)
        for (size_t b = 0; b < tests; b++)
            memcpy(d->x + (t * tests + b) * I, d->signal + (d->train_rows - T + b + t) * I,
                   I * sizeof *d->x);
    const lstm_sequences sequences = {.struct_size = sizeof sequences, .steps = T, .batch = tests};
    const lstm_network_inputs inputs = {.struct_size = sizeof inputs, .features = d->x};
    const lstm_network_outputs outputs = {.struct_size = sizeof outputs, .output = d->y};
    if (ex_failed(lstm_network_infer(network, d->workspace, &sequences, &inputs, &outputs),
                  "lstm_network_infer"))
        return 1;
    for (size_t b = 0; b < tests; b++) {
        size_t k = d->train_rows + b;
        double predicted = tf->mean + tf->std * (double)d->y[(T - 1) * tests + b];
        forecast[b] = tf->difference ? d->raw[k - 1] + predicted : predicted;
    }
    return 0;
}

/* RMSE over the observed test rows of the forecasts, or of v[k - lag]. */
static double test_rmse(const demo *d, const double *forecast, size_t lag)
{
    double sum = 0.0;
    size_t scored = 0;
    for (size_t k = d->train_rows; k < d->rows; k++) {
        if (!d->observed[k])
            continue;
        double err = (forecast ? forecast[k - d->train_rows] : d->raw[k - lag]) - d->raw[k];
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

/* The held-out evaluation: the trained network's test RMSE, in the
 * precision d->workspace is set to (ex_evaluate_precisions); d->reloaded is
 * free until save_and_check(). */
typedef struct evaluation {
    demo *d;
    size_t window;
} evaluation;

static int precision_rmse(void *context, double *metric)
{
    evaluation *e = context;
    demo *d = e->d;
    if (forecast_test(d, d->network, &d->tf, e->window, d->reloaded))
        return 1;
    *metric = test_rmse(d, d->reloaded, 0);
    return 0;
}

/*
 * Save the network with what its user needs in its metadata, load it back,
 * and forecast the test period again from the loaded network, with inputs
 * made by the normalisation read from its metadata alone. *same: the
 * forecasts are the trained network's, bit for bit.
 */
static int save_and_check(demo *d, const settings *s, int *same)
{
    const series_spec *spec = s->spec;
    char window[32], normalisation[160], description[512];
    lstm_network *loaded = NULL;
    const void *text;
    transform tf;
    int status = 1;
    snprintf(window, sizeof window, "%zu", spec->window);
    snprintf(normalisation, sizeof normalisation,
             "mean=%.17g;std=%.17g;difference=%d;time_of_year=%d", d->tf.mean, d->tf.std,
             d->tf.difference, d->tf.time_of_year);
    snprintf(description, sizeof description,
             "examples/forecast.c, %s (%s) one step ahead: inputs (q - mean) / std%s, q = %s; "
             "output at every step: the next q, normalised",
             spec->name, spec->unit, d->tf.time_of_year ? ", sin and cos of 2 pi day/365.25" : "",
             d->tf.difference ? "v[k] - v[k-1]" : "v[k]");
    const char *meta[][2] = {{"series", spec->name},
                             {"window", window},
                             {"normalisation", normalisation},
                             {"description", description}};
    for (size_t k = 0; k < sizeof meta / sizeof meta[0]; k++)
        if (ex_set_meta_text(d->network, meta[k][0], meta[k][1]))
            return 1;
    if (ex_failed(lstm_network_save(d->network, NULL, s->model_path), "lstm_network_save") ||
        ex_failed(lstm_network_load(s->model_path, &loaded), "lstm_network_load") ||
        ex_failed(lstm_network_get_meta(loaded, "normalisation", NULL, &text, NULL),
                  "lstm_network_get_meta"))
        goto out;
    if (sscanf(text, "mean=%lf;std=%lf;difference=%d;time_of_year=%d", &tf.mean, &tf.std,
               &tf.difference, &tf.time_of_year) != 4 ||
        d->inputs != (tf.time_of_year ? 3u : 1u)) {
        fprintf(stderr, "%s: unexpected normalisation \"%s\"\n", s->model_path, (const char *)text);
        goto out;
    }
    build_inputs(d, &tf);
    if (forecast_test(d, loaded, &tf, spec->window, d->reloaded))
        goto out;
    *same = memcmp(d->forecast, d->reloaded, (d->rows - d->train_rows) * sizeof *d->forecast) == 0;
    printf("saved %s; loaded, with %s from its metadata: forecasts %s\n", s->model_path,
           (const char *)text, *same ? "identical" : "DIFFERENT");
    status = 0;
out:
    lstm_network_destroy(loaded);
    return status;
}

static int run(demo *d, const settings *s, FILE *curve, const struct timespec *start, int *passed)
{
    const series_spec *spec = s->spec;
    size_t T = spec->window, B = spec->batch, windows = d->windows;
    printf("liblstm %s: %s, %zu rows %ld-%ld; train %ld-%ld (%zu windows of %zu), "
           "test %ld-%ld (%zu rows)%s\n",
           lstm_version_string(), spec->name, d->rows, d->times[0], d->times[d->rows - 1],
           d->times[0], d->times[d->train_rows - 1], windows, T, d->times[d->train_rows],
           d->times[d->rows - 1], d->rows - d->train_rows, s->smoke ? " [smoke]" : "");
    printf("network: I=%zu, LSTM H=%zu, dense %zu->1 every step (%zu parameters), loss on steps "
           "%zu..%zu; Adam lr=%g cosine, clip %g, batch %zu, %zu epochs, seed %llu; training in "
           "%s\n",
           d->inputs, spec->hidden, spec->hidden, lstm_network_param_count(d->network),
           spec->warmup, T - 1, spec->learning_rate, CLIP_NORM, B, s->epochs,
           (unsigned long long)s->seed, ex_precision_name(s->train_precision));
    printf("%6s  %10s  %9s  %8s  %s\n", "epoch", "train MSE", "test RMSE", "seq/s", "left");

    uint64_t rng = s->seed;
    uint64_t total_steps = (uint64_t)s->epochs * ((windows + B - 1) / B), step = 0;
    size_t report_every = s->epochs >= 12 ? s->epochs / 12 : 1;
    double rmse = 0.0;
    for (size_t epoch = 1; epoch <= s->epochs; epoch++) {
        double epoch_loss = 0.0;
        ex_shuffle(d->starts, windows, &rng);
        for (size_t first = 0; first < windows; first += B) {
            size_t batch = windows - first < B ? windows - first : B;
            double loss;
            if (train_batch(d, s, d->starts + first, batch, step++, total_steps, &loss))
                return 1;
            epoch_loss += loss * (double)batch;
        }
        /* The test forecasts are one inference batch: cheap next to an epoch. */
        if (forecast_test(d, d->network, &d->tf, T, d->forecast))
            return 1;
        rmse = test_rmse(d, d->forecast, 0);
        if (curve)
            fprintf(curve, "%zu,%.6f,%.6f\n", epoch, epoch_loss / (double)windows, rmse);
        if (epoch % report_every != 0 && epoch != s->epochs)
            continue;
        double elapsed = ex_seconds_since(start);
        double rate = (double)(epoch * windows) / elapsed;
        char left[32];
        ex_format_duration(elapsed / (double)epoch * (double)(s->epochs - epoch), left,
                           sizeof left);
        printf("%6zu  %10.4f  %9.3f  %8.0f  %s\n", epoch, epoch_loss / (double)windows, rmse, rate,
               left);
        fflush(stdout);
    }

    double last_value = test_rmse(d, NULL, 1);
    double last_season = test_rmse(d, NULL, spec->season);
    printf("test RMSE %ld-%ld (%s, one step ahead):\n", d->times[d->train_rows],
           d->times[d->rows - 1], spec->unit);
    printf("  LSTM                         %8.3f\n", rmse);
    printf("  last value (persistence)     %8.3f\n", last_value);
    printf("  last season (%3zu rows back)  %8.3f\n", spec->season, last_season);
    int beats = rmse < MARGIN * last_value, same = 0;
    printf("LSTM / last value = %.3f, %s %.1f: %s\n", rmse / last_value, beats ? "<" : ">=", MARGIN,
           beats ? "the LSTM beats the baseline" : "the LSTM does NOT beat the baseline");
    evaluation e = {d, T};
    double metrics[EX_PRECISIONS];
    if (ex_evaluate_precisions(d->workspace, NULL, precision_rmse, &e, metrics))
        return 1;
    ex_print_precisions("held-out RMSE", metrics, 4, "");
    ex_print_precision_bound(metrics, PRECISION_RELATIVE, 1, "1%");
    if (s->smoke)
        beats = ex_print_precision_bound(metrics, SMOKE_PRECISION_RELATIVE, 1,
                                         "5% (the smoke run's bound)") &&
                beats;
    if ((s->predictions_path && write_predictions(d, s)) || save_and_check(d, s, &same))
        return 1;
    *passed = beats && same;
    printf("total %.1f s\n", ex_seconds_since(start));
    return 0;
}

int main(int argc, char **argv)
{
    settings s;
    static demo d; /* zero, and too large for the stack */
    FILE *curve = NULL;
    struct timespec start;
    int passed = 0;

    if (parse_args(argc, argv, &s))
        return 1;
    clock_gettime(CLOCK_MONOTONIC, &start);
    if (s.csv_path) {
        curve = fopen(s.csv_path, "w");
        if (!curve) {
            perror(s.csv_path);
            return 1;
        }
        fprintf(curve, "epoch,train_mse,test_rmse\n");
    }
    d.rows = read_series(&d, s.data_path);
    if (d.rows == 0 || prepare(&d, &s) || setup(&d, &s) || run(&d, &s, curve, &start, &passed))
        passed = 0;
    if (curve && fclose(curve) != 0) {
        perror(s.csv_path);
        passed = 0;
    }
    lstm_optim_destroy(d.optim);
    lstm_workspace_destroy(d.workspace);
    lstm_network_destroy(d.network);
    free(d.x);
    return passed ? 0 : 1;
}
