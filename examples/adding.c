/*
 * adding.c: the adding problem, a long-time-lag task for recurrent networks
 * (Hochreiter & Schmidhuber 1997, experiment 4).
 *
 * Task: every sequence has T steps of two inputs each: a value drawn from
 * U(0, 1) and a marker. The marker is 1 at exactly two steps, one drawn
 * uniformly from the first half [0, T/2) and one from the second half
 * [T/2, T), and 0 elsewhere. This is the variant of Le, Jaitly & Hinton
 * (2015) and Arjovsky, Shah & Bengio (2016); the 1997 original puts the
 * first marker in the first ten steps and uses values in [-1, 1]. After the
 * last step the network must output the sum of the two marked values.
 *
 * Baseline: the sum of two independent U(0, 1) values has mean 1 and
 * variance 1/6, so always answering 1.0 scores a mean squared error of
 * 1/6 = 0.167. A network below 0.01 has learned to find, keep and add the
 * marked values across up to T steps: the task counts as solved.
 *
 * Model: one LSTM layer (I = 2, hidden H) from liblstm; a dense layer H -> 1
 * (lstm_dense) reads the output of the last step (lstm_sequence_last);
 * mean squared error loss (lstm_loss_mse). One Adam optimizer updates the
 * LSTM (lstm_optim_add_model) and the dense layer (lstm_optim_add_buffer),
 * with the global gradient norm clipped to 1.
 *
 * Initialisation: PyTorch's uniform initialisation with forget-gate biases
 * of 1 (LSTM_INIT_FORGET_BIAS_ONE), then chrono initialisation (Tallec &
 * Ollivier 2018): per unit b_f = log(u), u ~ U(1, T - 1), and b_i = -b_f,
 * so that the units start with memories spread over time scales up to T
 * instead of forgetting within a few steps. --no-chrono keeps b_f = 1.
 *
 * Training data are fresh random sequences at every step; the test set is
 * a fixed set of 1000 sequences from a separate random stream.
 *
 * Usage: adding [--steps T] [--batch B] [--hidden H] [--max-sequences N]
 *               [--seed S] [--csv FILE] [--predictions FILE] [--no-chrono]
 *               [--smoke]
 *   --csv FILE          write the loss curve, one row per test:
 *                       sequences,train_mse,test_mse (no train MSE at 0)
 *   --predictions FILE  write the final answers on the test set:
 *                       target,lstm (one row per test sequence)
 *   --smoke  a short run (T = 20, H = 32, at most 300000 sequences, a few
 *            seconds) that must end with a test MSE below 0.05, far under
 *            the 0.167 baseline; for ctest.
 * Training stops at the first test (every 10000 sequences, 2000 with
 * --smoke) with an MSE below 0.01, or after N sequences.
 * Exit status: 0 when the final test MSE is below the target (0.01, or 0.05
 * with --smoke), 1 when it is not or on any error.
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

enum {
    INPUTS = 2, /* I: value and marker */
    TEST_SEQUENCES = 1000
};

static const double LEARNING_RATE = 1e-3;     /* Adam */
static const double CLIP_NORM = 1.0;          /* global gradient-norm clip */
static const double BASELINE_MSE = 1.0 / 6.0; /* always answering 1.0 */
static const double SOLVED_MSE = 0.01;
static const double SMOKE_MSE = 0.05;

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

/* Uniform in [0, n); n >= 1 (the modulo bias is negligible for small n). */
static size_t random_below(uint64_t *state, size_t n)
{
    return (size_t)(next_random(state) % (uint64_t)n);
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

/*
 * Fill a batch of sequences: x [T][batch][2] (time-major, the library's
 * default layout), target [batch]. Sequence b is column b of every step.
 */
static void make_batch(uint64_t *rng, size_t seq_len, size_t batch, float *x, float *target)
{
    size_t half = seq_len / 2;
    for (size_t b = 0; b < batch; b++) {
        size_t first = random_below(rng, half);                   /* in [0, T/2) */
        size_t second = half + random_below(rng, seq_len - half); /* in [T/2, T) */
        double sum = 0.0;
        for (size_t t = 0; t < seq_len; t++) {
            float *step = x + (t * batch + b) * INPUTS;
            step[0] = (float)random_unit(rng);
            step[1] = (t == first || t == second) ? 1.0f : 0.0f;
            if (t == first || t == second)
                sum += (double)step[0];
        }
        target[b] = (float)sum;
    }
}

/* Command-line settings. */
typedef struct settings {
    size_t seq_len, batch, hidden;
    uint64_t max_sequences, report_every, seed;
    const char *csv_path, *predictions_path;
    int chrono, smoke;
} settings;

/* Everything the demo owns, so that main has one cleanup path. */
typedef struct demo {
    lstm_model *model;
    lstm_workspace *workspace;
    lstm_dense *dense;
    lstm_optim *optim; /* updates the LSTM and the dense layer together */
    float *x, *target, *y, *dy, *last, *dlast, *z, *dz; /* training batch */
    float *test_x, *test_target, *test_h, *test_z;      /* the fixed test set */
    /* The LSTM calls' arguments, set once in setup(): the buffers never move. */
    lstm_sequences train_sequences, test_sequences;
    lstm_inputs train_inputs, test_inputs;
    lstm_outputs train_outputs, test_outputs;
    lstm_output_grads train_output_grads;
    FILE *csv;
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
    fprintf(to, "usage: adding [--steps T] [--batch B] [--hidden H] [--max-sequences N]\n"
                "              [--seed S] [--csv FILE] [--predictions FILE] [--no-chrono]\n"
                "              [--smoke]\n");
}

static int parse_args(int argc, char **argv, settings *s)
{
    int steps_set = 0, hidden_set = 0, max_set = 0;
    uint64_t value;

    /* Defaults: T = 100 until solved or two million sequences. */
    s->seq_len = 100;
    s->batch = 32;
    s->hidden = 128;
    s->max_sequences = 2000000;
    s->seed = 20240601u;
    s->csv_path = NULL;
    s->predictions_path = NULL;
    s->chrono = 1;
    s->smoke = 0;
    for (int k = 1; k < argc; k++) {
        const char *arg = argv[k];
        const char *next = k + 1 < argc ? argv[k + 1] : NULL;
        if (strcmp(arg, "--smoke") == 0) {
            s->smoke = 1;
            continue;
        }
        if (strcmp(arg, "--no-chrono") == 0) {
            s->chrono = 0;
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
        if (strcmp(arg, "--steps") == 0) {
            if (parse_count(arg, next, 2, 1000000, &value))
                return 1;
            s->seq_len = (size_t)value;
            steps_set = 1;
        } else if (strcmp(arg, "--batch") == 0) {
            if (parse_count(arg, next, 1, 65536, &value))
                return 1;
            s->batch = (size_t)value;
        } else if (strcmp(arg, "--hidden") == 0) {
            if (parse_count(arg, next, 1, 65536, &value))
                return 1;
            s->hidden = (size_t)value;
            hidden_set = 1;
        } else if (strcmp(arg, "--max-sequences") == 0) {
            if (parse_count(arg, next, 1, UINT64_MAX / 2, &s->max_sequences))
                return 1;
            max_set = 1;
        } else if (strcmp(arg, "--seed") == 0) {
            if (parse_count(arg, next, 0, UINT64_MAX, &s->seed))
                return 1;
        } else if (strcmp(arg, "--csv") == 0) {
            s->csv_path = next;
        } else if (strcmp(arg, "--predictions") == 0) {
            s->predictions_path = next;
        } else {
            usage(stderr);
            return 1;
        }
    }
    /* The smoke run: short sequences, a small network, a few seconds;
     * explicit options still win. */
    if (s->smoke) {
        if (!steps_set)
            s->seq_len = 20;
        if (!hidden_set)
            s->hidden = 32;
        if (!max_set)
            s->max_sequences = 300000;
    }
    /* Report (and test) about 50 times over the run, in whole batches. */
    uint64_t every = s->smoke ? 2000 : 10000;
    if (every > s->max_sequences / 10)
        every = s->max_sequences / 10;
    s->report_every = every < s->batch ? s->batch : every;
    return 0;
}

/*
 * Chrono initialisation (Tallec & Ollivier, "Can recurrent neural networks
 * warp time?", 2018): b_f = log(u) with u ~ U(1, T - 1) and b_i = -b_f,
 * per unit. A unit whose forget gate starts near sigmoid(log u) = u / (1 + u)
 * keeps its cell for about u steps, so the layer starts with time scales
 * spread up to the sequence length.
 */
static int chrono_init(lstm_model *model, size_t seq_len, size_t hidden, uint64_t seed)
{
    float *params;
    size_t offset;
    uint64_t rng = seed ^ 0xC4405u;
    double top = seq_len > 2 ? (double)(seq_len - 1) : 2.0;
    if (failed(lstm_model_params(model, &params, NULL), "lstm_model_params") ||
        failed(lstm_model_tensor(model, 0, 0, LSTM_TENSOR_BIAS, &offset, NULL, NULL),
               "lstm_model_tensor"))
        return 1;
    float *b_i = params + offset; /* gate blocks of H: i, f, g, o */
    float *b_f = params + offset + hidden;
    for (size_t k = 0; k < hidden; k++) {
        double u = 1.0 + (top - 1.0) * random_unit(&rng);
        b_f[k] = (float)log(u);
        b_i[k] = -b_f[k];
    }
    return 0;
}

static int setup(demo *d, const settings *s)
{
    size_t T = s->seq_len, B = s->batch, H = s->hidden;
    lstm_config config;
    lstm_optim_options options;
    float *dense_params, *dense_grads;
    size_t dense_count;

    d->x = malloc(T * B * INPUTS * sizeof *d->x);
    d->target = malloc(B * sizeof *d->target);
    d->y = malloc(T * B * H * sizeof *d->y);
    d->dy = malloc(T * B * H * sizeof *d->dy);
    d->last = malloc(B * H * sizeof *d->last);
    d->dlast = malloc(B * H * sizeof *d->dlast);
    d->z = malloc(B * sizeof *d->z);
    d->dz = malloc(B * sizeof *d->dz);
    d->test_x = malloc(T * TEST_SEQUENCES * INPUTS * sizeof *d->test_x);
    d->test_target = malloc(TEST_SEQUENCES * sizeof *d->test_target);
    d->test_h = malloc(TEST_SEQUENCES * H * sizeof *d->test_h);
    d->test_z = malloc(TEST_SEQUENCES * sizeof *d->test_z);
    if (!d->x || !d->target || !d->y || !d->dy || !d->last || !d->dlast || !d->z || !d->dz ||
        !d->test_x || !d->test_target || !d->test_h || !d->test_z) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    d->train_sequences =
        (lstm_sequences){.struct_size = sizeof(lstm_sequences), .steps = T, .batch = B};
    d->train_inputs = (lstm_inputs){.struct_size = sizeof(lstm_inputs), .x = d->x};
    d->train_outputs = (lstm_outputs){.struct_size = sizeof(lstm_outputs), .y = d->y};
    d->train_output_grads =
        (lstm_output_grads){.struct_size = sizeof(lstm_output_grads), .dy = d->dy};
    d->test_sequences = (lstm_sequences){
        .struct_size = sizeof(lstm_sequences), .steps = T, .batch = TEST_SEQUENCES};
    d->test_inputs = (lstm_inputs){.struct_size = sizeof(lstm_inputs), .x = d->test_x};
    d->test_outputs = (lstm_outputs){.struct_size = sizeof(lstm_outputs), .hT = d->test_h};
    /* The test set has its own stream, so it does not depend on the batch size. */
    uint64_t test_rng = s->seed ^ 0x7E57u;
    make_batch(&test_rng, T, TEST_SEQUENCES, d->test_x, d->test_target);

    if (failed(lstm_config_init(&config, sizeof config), "lstm_config_init"))
        return 1;
    config.input_size = INPUTS;
    config.hidden_size = H;
    if (failed(lstm_model_create(&config, &d->model), "lstm_model_create") ||
        failed(lstm_model_init(d->model, s->seed, LSTM_INIT_FORGET_BIAS_ONE), "lstm_model_init") ||
        (s->chrono && chrono_init(d->model, T, H, s->seed)) ||
        failed(lstm_workspace_create(d->model, &d->workspace), "lstm_workspace_create") ||
        failed(lstm_dense_create(H, 1, &d->dense), "lstm_dense_create") ||
        failed(lstm_dense_init(d->dense, s->seed ^ 0xDE45Eu), "lstm_dense_init") ||
        failed(lstm_dense_params(d->dense, &dense_params, &dense_count), "lstm_dense_params") ||
        failed(lstm_dense_grads(d->dense, &dense_grads, NULL), "lstm_dense_grads") ||
        failed(lstm_optim_options_init(&options, sizeof options, LSTM_OPTIM_ADAM),
               "lstm_optim_options_init"))
        return 1;
    options.lr = LEARNING_RATE;
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
    if (d->csv)
        fclose(d->csv);
    lstm_optim_destroy(d->optim);
    lstm_dense_destroy(d->dense);
    lstm_workspace_destroy(d->workspace);
    lstm_model_destroy(d->model);
    free(d->x);
    free(d->target);
    free(d->y);
    free(d->dy);
    free(d->last);
    free(d->dlast);
    free(d->z);
    free(d->dz);
    free(d->test_x);
    free(d->test_target);
    free(d->test_h);
    free(d->test_z);
}

/* One Adam step on a fresh batch; *loss receives its MSE. */
static int train_batch(demo *d, const settings *s, uint64_t *rng, double *loss)
{
    size_t T = s->seq_len, B = s->batch, H = s->hidden;
    make_batch(rng, T, B, d->x, d->target);
    /* Forward: y = LSTM(x), last = y at step T - 1, z = dense(last). */
    if (failed(lstm_model_train_forward(d->model, d->workspace, &d->train_sequences,
                                        &d->train_inputs, &d->train_outputs),
               "lstm_model_train_forward") ||
        failed(lstm_sequence_last(T, B, H, 0, NULL, d->y, d->last), "lstm_sequence_last") ||
        failed(lstm_dense_forward(d->dense, B, d->last, d->z), "lstm_dense_forward") ||
        failed(lstm_loss_mse(B, d->z, d->target, loss, d->dz), "lstm_loss_mse"))
        return 1;
    /* Backward, in reverse order; the loss reaches the LSTM only at step T - 1. */
    if (failed(lstm_dense_backward(d->dense, B, d->last, d->dz, d->dlast), "lstm_dense_backward") ||
        failed(lstm_sequence_last_backward(T, B, H, 0, NULL, d->dlast, d->dy),
               "lstm_sequence_last_backward") ||
        failed(lstm_model_train_backward(d->model, d->workspace, &d->train_output_grads, NULL),
               "lstm_model_train_backward"))
        return 1;
    /* The gradient through a long lag can jump when the network first
     * latches onto a marker; clipping keeps that step from undoing it. */
    if (failed(lstm_optim_clip_grad_norm(d->optim, CLIP_NORM, NULL), "lstm_optim_clip_grad_norm") ||
        failed(lstm_optim_step(d->optim), "lstm_optim_step"))
        return 1;
    return failed(lstm_optim_zero_grads(d->optim), "lstm_optim_zero_grads");
}

/*
 * Test MSE over the fixed test set, as one inference batch. With a single
 * unidirectional layer the final hidden state hT is the last step's output,
 * so the test needs no [T][B][H] output buffer.
 */
static int test_mse(demo *d, double *mse)
{
    if (failed(lstm_model_infer(d->model, d->workspace, &d->test_sequences, &d->test_inputs,
                                &d->test_outputs),
               "lstm_model_infer") ||
        failed(lstm_dense_forward(d->dense, TEST_SEQUENCES, d->test_h, d->test_z),
               "lstm_dense_forward") ||
        failed(lstm_loss_mse(TEST_SEQUENCES, d->test_z, d->test_target, mse, NULL),
               "lstm_loss_mse"))
        return 1;
    return 0;
}

/* The answers of the last test_mse() beside the targets. */
static int write_predictions(const demo *d, const char *path)
{
    FILE *csv = fopen(path, "w");
    if (!csv) {
        perror(path);
        return 1;
    }
    fprintf(csv, "target,lstm\n");
    for (size_t b = 0; b < TEST_SEQUENCES; b++)
        fprintf(csv, "%.6f,%.6f\n", (double)d->test_target[b], (double)d->test_z[b]);
    if (fclose(csv) != 0) {
        perror(path);
        return 1;
    }
    return 0;
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

int main(int argc, char **argv)
{
    settings s;
    demo d;
    struct timespec start;
    int exit_code = 1;

    memset(&d, 0, sizeof d);
    if (parse_args(argc, argv, &s))
        return 1;
    clock_gettime(CLOCK_MONOTONIC, &start);
    if (setup(&d, &s))
        goto out;
    if (s.csv_path) {
        d.csv = fopen(s.csv_path, "w");
        if (!d.csv) {
            perror(s.csv_path);
            goto out;
        }
        fprintf(d.csv, "sequences,train_mse,test_mse\n");
    }

    printf("liblstm %s: adding problem, T=%zu (markers in each half), %d test sequences%s\n",
           lstm_version_string(), s.seq_len, TEST_SEQUENCES, s.smoke ? " [smoke]" : "");
    printf("LSTM I=%d H=%zu (%zu parameters) + dense %zu->1; %s init; Adam lr=%g, "
           "clip %g, batch %zu, seed %llu\n",
           INPUTS, s.hidden, lstm_model_param_count(d.model), s.hidden,
           s.chrono ? "chrono" : "forget-bias-1", LEARNING_RATE, CLIP_NORM, s.batch,
           (unsigned long long)s.seed);

    double mse;
    if (test_mse(&d, &mse))
        goto out;
    printf("%10s  %9s  %9s  %8s  %s\n", "sequences", "train MSE", "test MSE", "seq/s",
           "left (to cap)");
    printf("%10d  %9s  %9.4f\n", 0, "-", mse);
    if (d.csv)
        fprintf(d.csv, "0,,%.6f\n", mse);

    uint64_t rng = s.seed;
    uint64_t seen = 0, solved_at = 0, next_report = s.report_every;
    double loss_sum = 0.0;
    size_t loss_batches = 0;
    while (seen < s.max_sequences) {
        double loss;
        if (train_batch(&d, &s, &rng, &loss))
            goto out;
        seen += s.batch;
        loss_sum += loss;
        loss_batches++;
        if (seen < next_report && seen < s.max_sequences)
            continue;
        next_report += s.report_every;

        if (test_mse(&d, &mse))
            goto out;
        double elapsed = seconds_since(&start);
        double rate = (double)seen / elapsed;
        double left = seen < s.max_sequences ? (double)(s.max_sequences - seen) / rate : 0.0;
        double train = loss_sum / (double)loss_batches;
        char left_text[32];
        format_duration(left, left_text, sizeof left_text);
        printf("%10llu  %9.4f  %9.4f  %8.0f  %s\n", (unsigned long long)seen, train, mse, rate,
               left_text);
        fflush(stdout);
        if (d.csv)
            fprintf(d.csv, "%llu,%.6f,%.6f\n", (unsigned long long)seen, train, mse);
        loss_sum = 0.0;
        loss_batches = 0;
        /* Solved: stop at the first test below 0.01. */
        if (mse < SOLVED_MSE) {
            solved_at = seen;
            break;
        }
    }

    printf("final test MSE %.4f vs baseline %.4f (always answering 1.0, the variance of the sum "
           "of two U(0,1))\n",
           mse, BASELINE_MSE);
    if (solved_at)
        printf("solved (test MSE < %.2f) after %llu training sequences\n", SOLVED_MSE,
               (unsigned long long)solved_at);
    else
        printf("not solved (test MSE < %.2f) within %llu training sequences\n", SOLVED_MSE,
               (unsigned long long)seen);
    printf("total %.1f s\n", seconds_since(&start));
    if (d.csv) {
        if (fclose(d.csv) != 0) {
            d.csv = NULL;
            perror(s.csv_path);
            goto out;
        }
        d.csv = NULL;
    }
    if (s.predictions_path && write_predictions(&d, s.predictions_path))
        goto out;
    exit_code = mse < (s.smoke ? SMOKE_MSE : SOLVED_MSE) ? 0 : 1;
    if (s.smoke)
        printf("smoke: test MSE %.4f %s %.2f\n", mse, exit_code == 0 ? "<" : ">=", SMOKE_MSE);
out:
    teardown(&d);
    return exit_code;
}
