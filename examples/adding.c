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
 * Model: one lstm_network (lstm/network.h) from liblstm: float features in
 * (I = 2), one LSTM layer (hidden H), a dense head H -> 1 on each sequence's
 * last step (LSTM_HEAD_LAST_STEP) and mean squared error loss
 * (LSTM_LOSS_MSE), so that a training step is one forward and one backward
 * call. One Adam optimizer updates the whole network
 * (lstm_optim_add_network), with the global gradient norm clipped to 1.
 *
 * Initialisation: PyTorch's uniform initialisation (lstm_network_init) with
 * forget-gate biases of 1, then chrono initialisation (Tallec & Ollivier
 * 2018) of the network's LSTM: per unit b_f = log(u), u ~ U(1, T - 1), and
 * b_i = -b_f, so that the units start with memories spread over time scales
 * up to T instead of forgetting within a few steps. --no-chrono keeps b_f = 1.
 *
 * Training data are fresh random sequences at every step; the test set is
 * a fixed set of 1000 sequences from a separate random stream.
 *
 * Model file: at the end the whole network goes to one file
 * (lstm_network_save) with metadata entries "description", "task" (with T)
 * and "target" (what the output means), and is loaded back
 * (lstm_network_load): it must give the same test MSE, bit for bit, and
 * the same metadata. Then the test MSE is measured again by the same
 * network in bf16 and in int8 (lstm_workspace_set_precision: the LSTM
 * layer's products and the head's) and the three are printed on
 * one line.
 *
 * Usage: adding [--steps T] [--batch B] [--hidden H] [--max-sequences N]
 *               [--seed S] [--csv FILE] [--predictions FILE] [--model FILE]
 *               [--no-chrono] [--train-precision fp32|bf16] [--smoke]
 *   --csv FILE          write the loss curve, one row per test:
 *                       sequences,train_mse,test_mse (no train MSE at 0)
 *   --predictions FILE  write the final answers on the test set:
 *                       target,lstm (one row per test sequence)
 *   --model FILE        where to save the trained network (replaced if it
 *                       exists); default adding.lstm in the current directory
 *   --train-precision P  the arithmetic of training: fp32 (default) or bf16
 *                       (lstm_workspace_set_training_precision: every
 *                       product of the forward and backward passes in
 *                       bf16, sums, weights and Adam's state in float32)
 *   --smoke  a short run (T = 20, H = 32, at most 300000 sequences, a few
 *            seconds) that must end with a test MSE below 0.05, far under
 *            the 0.167 baseline; for ctest.
 * Training stops at the first test (every 10000 sequences, 2000 with
 * --smoke) with an MSE below 0.01, or after N sequences.
 * Exit status: 0 when the final test MSE is below the target (0.01, or 0.05
 * with --smoke), the reloaded network passes its check and (--smoke) the
 * bf16 and int8 test MSEs are within SMOKE_PRECISION_RELATIVE of
 * float32's; 1 when not or on any error.
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lstm/lstm.h>

#include "example.h"

enum {
    INPUTS = 2, /* I: value and marker */
    TEST_SEQUENCES = 1000
};

static const double LEARNING_RATE = 1e-3;     /* Adam */
static const double CLIP_NORM = 1.0;          /* global gradient-norm clip */
static const double BASELINE_MSE = 1.0 / 6.0; /* always answering 1.0 */
static const double SOLVED_MSE = 0.01;
static const double SMOKE_MSE = 0.05;
/* The bound for reduced precision (relative to float32's test
 * MSE), and the smoke run's looser one. */
static const double PRECISION_RELATIVE = 0.01, SMOKE_PRECISION_RELATIVE = 0.10;

/*
 * A batch of sequences: x [T][B][2] (time-major, the library's default
 * layout; sequence b is column b of every step), the targets [B] and the
 * network's answers z [B], in one block, with the network calls' arguments
 * that point at them, set once: the buffers never move.
 */
typedef struct sequence_batch {
    float *x, *target, *z;
    lstm_sequences sequences;
    lstm_network_inputs inputs;
    lstm_network_outputs outputs;
    lstm_targets targets;
} sequence_batch;

static int batch_create(sequence_batch *set, size_t seq_len, size_t batch)
{
    set->x = malloc((seq_len * INPUTS + 2) * batch * sizeof *set->x);
    if (!set->x) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    set->target = set->x + seq_len * batch * INPUTS;
    set->z = set->target + batch;
    set->sequences =
        (lstm_sequences){.struct_size = sizeof set->sequences, .steps = seq_len, .batch = batch};
    set->inputs = (lstm_network_inputs){.struct_size = sizeof set->inputs, .features = set->x};
    set->outputs = (lstm_network_outputs){.struct_size = sizeof set->outputs, .output = set->z};
    set->targets = (lstm_targets){.struct_size = sizeof set->targets, .values = set->target};
    return 0;
}

/* Fill a batch with fresh sequences and their targets. */
static void make_batch(uint64_t *rng, const sequence_batch *set)
{
    size_t seq_len = set->sequences.steps, batch = set->sequences.batch, half = seq_len / 2;
    for (size_t b = 0; b < batch; b++) {
        size_t first = ex_random_below(rng, half);                   /* in [0, T/2) */
        size_t second = half + ex_random_below(rng, seq_len - half); /* in [T/2, T) */
        double sum = 0.0;
        for (size_t t = 0; t < seq_len; t++) {
            float *step = set->x + (t * batch + b) * INPUTS;
            step[0] = (float)ex_random_unit(rng);
            step[1] = (t == first || t == second) ? 1.0f : 0.0f;
            if (t == first || t == second)
                sum += (double)step[0];
        }
        set->target[b] = (float)sum;
    }
}

/* Command-line settings. */
typedef struct settings {
    size_t seq_len, batch, hidden;
    uint64_t max_sequences, report_every, seed;
    const char *csv_path, *predictions_path, *model_path;
    int chrono, smoke;
    lstm_precision train_precision; /* of the training calls */
} settings;

/* Everything the demo owns, so that main has one cleanup path. */
typedef struct demo {
    lstm_network *network;      /* LSTM, last-step dense head, MSE loss */
    lstm_workspace *workspace;  /* of the network's LSTM */
    lstm_optim *optim;          /* updates the whole network */
    sequence_batch train, test; /* a fresh batch per step; the fixed test set */
    FILE *csv;
} demo;

static void usage(FILE *to)
{
    fprintf(to, "usage: adding [--steps T] [--batch B] [--hidden H] [--max-sequences N]\n"
                "              [--seed S] [--csv FILE] [--predictions FILE] [--model FILE]\n"
                "              [--no-chrono] [--train-precision fp32|bf16] [--smoke]\n");
}

static int parse_args(int argc, char **argv, settings *s)
{
    uint64_t value;

    /* Zero: not given (T, H and N have smoke defaults, set after the loop). */
    *s = (settings){.batch = 32, .seed = 20240601u, .model_path = "adding.lstm", .chrono = 1};
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
            if (ex_parse_count(arg, next, 2, 1000000, &value))
                return 1;
            s->seq_len = (size_t)value;
        } else if (strcmp(arg, "--batch") == 0) {
            if (ex_parse_count(arg, next, 1, 65536, &value))
                return 1;
            s->batch = (size_t)value;
        } else if (strcmp(arg, "--hidden") == 0) {
            if (ex_parse_count(arg, next, 1, 65536, &value))
                return 1;
            s->hidden = (size_t)value;
        } else if (strcmp(arg, "--max-sequences") == 0) {
            if (ex_parse_count(arg, next, 1, UINT64_MAX / 2, &s->max_sequences))
                return 1;
        } else if (strcmp(arg, "--seed") == 0) {
            if (ex_parse_count(arg, next, 0, UINT64_MAX, &s->seed))
                return 1;
        } else if (strcmp(arg, "--csv") == 0) {
            s->csv_path = next;
        } else if (strcmp(arg, "--predictions") == 0) {
            s->predictions_path = next;
        } else if (strcmp(arg, "--model") == 0) {
            s->model_path = next;
        } else if (strcmp(arg, "--train-precision") == 0) {
            if (ex_parse_training_precision(next, &s->train_precision))
                return 1;
        } else {
            usage(stderr);
            return 1;
        }
    }
    /* Defaults: T = 100 until solved or two million sequences; the smoke
     * run has short sequences, a small network and a few seconds. */
    if (!s->seq_len)
        s->seq_len = s->smoke ? 20 : 100;
    if (!s->hidden)
        s->hidden = s->smoke ? 32 : 128;
    if (!s->max_sequences)
        s->max_sequences = s->smoke ? 300000 : 2000000;
    /* Report (and test) about 50 times over the run, in whole batches. */
    uint64_t every = s->smoke ? 2000 : 10000;
    if (every > s->max_sequences / 10)
        every = s->max_sequences / 10;
    s->report_every = every < s->batch ? s->batch : every;
    return 0;
}

/*
 * Chrono initialisation (Tallec & Ollivier, "Can recurrent neural networks
 * warp time?", 2018; see the top of the file). A unit whose forget gate
 * starts near sigmoid(log u) = u / (1 + u) keeps its cell for about u steps.
 */
static int chrono_init(lstm_model *model, size_t seq_len, size_t hidden, uint64_t seed)
{
    float *params;
    size_t offset;
    uint64_t rng = seed ^ 0xC4405u;
    double top = seq_len > 2 ? (double)(seq_len - 1) : 2.0;
    if (ex_failed(lstm_model_params(model, &params, NULL), "lstm_model_params") ||
        ex_failed(lstm_model_tensor(model, 0, 0, LSTM_TENSOR_BIAS, &offset, NULL, NULL),
                  "lstm_model_tensor"))
        return 1;
    float *b_i = params + offset; /* gate blocks of H: i, f, g, o */
    float *b_f = params + offset + hidden;
    for (size_t k = 0; k < hidden; k++) {
        double u = 1.0 + (top - 1.0) * ex_random_unit(&rng);
        b_f[k] = (float)log(u);
        b_i[k] = -b_f[k];
    }
    return 0;
}

static int setup(demo *d, const settings *s)
{
    size_t T = s->seq_len, H = s->hidden;
    lstm_config lstm = {.struct_size = sizeof lstm, .input_size = INPUTS, .hidden_size = H};
    lstm_network_config config = {.struct_size = sizeof config,
                                  .lstm = &lstm,
                                  .head = LSTM_HEAD_LAST_STEP,
                                  .loss = LSTM_LOSS_MSE,
                                  .head_size = 1};
    lstm_optim_options options;

    /* The test set has its own stream, so it does not depend on the batch size. */
    uint64_t test_rng = s->seed ^ 0x7E57u;
    if (batch_create(&d->train, T, s->batch) || batch_create(&d->test, T, TEST_SEQUENCES))
        return 1;
    make_batch(&test_rng, &d->test);
    if (ex_failed(lstm_network_create(&config, &d->network), "lstm_network_create") ||
        ex_failed(lstm_network_init(d->network, s->seed, LSTM_INIT_FORGET_BIAS_ONE),
                  "lstm_network_init") ||
        (s->chrono && chrono_init(lstm_network_model(d->network), T, H, s->seed)) ||
        ex_failed(lstm_workspace_create(lstm_network_model(d->network), &d->workspace),
                  "lstm_workspace_create") ||
        ex_set_training_precision(d->workspace, s->train_precision) ||
        ex_failed(lstm_optim_options_init(&options, sizeof options, LSTM_OPTIM_ADAM),
                  "lstm_optim_options_init"))
        return 1;
    options.lr = LEARNING_RATE;
    /* The workspace grows at the first training step and the first test,
     * then allocates no more. */
    return ex_failed(lstm_optim_create(&options, &d->optim), "lstm_optim_create") ||
           ex_failed(lstm_optim_add_network(d->optim, d->network), "lstm_optim_add_network") ||
           ex_failed(lstm_optim_zero_grads(d->optim), "lstm_optim_zero_grads");
}

static void teardown(demo *d)
{
    if (d->csv)
        fclose(d->csv);
    lstm_optim_destroy(d->optim);
    lstm_workspace_destroy(d->workspace);
    lstm_network_destroy(d->network);
    free(d->train.x);
    free(d->test.x);
}

/* One Adam step on a fresh batch; *loss receives its MSE. */
static int train_batch(demo *d, uint64_t *rng, double *loss)
{
    make_batch(rng, &d->train);
    /* z = dense(LSTM(x) at step T - 1), then the MSE and its gradient back
     * through the head and the LSTM, which the loss reaches only at T - 1. */
    if (ex_failed(lstm_network_train_forward(d->network, d->workspace, &d->train.sequences,
                                             &d->train.inputs, NULL),
                  "lstm_network_train_forward") ||
        ex_failed(lstm_network_train_backward(d->network, d->workspace, &d->train.targets, loss),
                  "lstm_network_train_backward"))
        return 1;
    /* The gradient through a long lag can jump when the network first
     * latches onto a marker; clipping keeps that step from undoing it. */
    return ex_failed(lstm_optim_clip_grad_norm(d->optim, CLIP_NORM, NULL),
                     "lstm_optim_clip_grad_norm") ||
           ex_failed(lstm_optim_step(d->optim), "lstm_optim_step") ||
           ex_failed(lstm_optim_zero_grads(d->optim), "lstm_optim_zero_grads");
}

/* Test MSE of a network over the fixed test set, as one inference batch;
 * its answers go to d->test.z. */
static int test_mse(demo *d, const lstm_network *network, double *mse)
{
    const sequence_batch *test = &d->test;
    return ex_failed(lstm_network_infer(network, d->workspace, &test->sequences, &test->inputs,
                                        &test->outputs),
                     "lstm_network_infer") ||
           ex_failed(lstm_network_loss(network, &test->sequences, test->z, &test->targets, mse),
                     "lstm_network_loss");
}

/* The trained network's test MSE in the precision of d->workspace
 * (ex_evaluate_precisions). */
static int precision_mse(void *context, double *metric)
{
    demo *d = context;
    return test_mse(d, d->network, metric);
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
        fprintf(csv, "%.6f,%.6f\n", (double)d->test.target[b], (double)d->test.z[b]);
    if (fclose(csv) != 0) {
        perror(path);
        return 1;
    }
    return 0;
}

/*
 * Save the network with its metadata to one file, load it back, and check
 * that the loaded network gives the same test MSE, bit for bit, and the
 * same metadata. Returns 0 when it does.
 */
static int save_and_check(demo *d, const settings *s, double mse)
{
    char task[64];
    snprintf(task, sizeof task, "adding problem, T=%zu (markers in each half)", s->seq_len);
    const char *meta[3][2] = {
        {"description", "liblstm examples/adding.c: LSTM, last-step dense head, MSE"},
        {"task", task},
        {"target", "the sum of the two marked values (inputs per step: value, marker)"}};
    lstm_network *loaded = NULL;
    double reloaded;
    int same = 0;
    for (size_t k = 0; k < 3; k++)
        if (ex_set_meta_text(d->network, meta[k][0], meta[k][1]))
            return 1;
    if (ex_failed(lstm_network_save(d->network, NULL, s->model_path), "lstm_network_save") ||
        ex_failed(lstm_network_load(s->model_path, &loaded), "lstm_network_load") ||
        test_mse(d, loaded, &reloaded)) /* d's workspace serves the same configuration */
        goto out;
    same = memcmp(&reloaded, &mse, sizeof mse) == 0;
    printf("saved %s, loaded it back: test MSE %.6f, %s; metadata:\n", s->model_path, reloaded,
           same ? "bit for bit the same" : "DIFFERENT");
    for (size_t k = 0; k < 3; k++) {
        uint32_t kind = LSTM_META_BYTES;
        const void *value = "(none)";
        size_t size = 0;
        lstm_network_get_meta(loaded, meta[k][0], &kind, &value, &size); /* checked below */
        int match = kind == LSTM_META_TEXT && size == strlen(meta[k][1]) &&
                    memcmp(value, meta[k][1], size) == 0;
        printf("  %s: %s%s\n", meta[k][0], (const char *)value, match ? "" : " [DIFFERENT]");
        same = same && match;
    }
out:
    lstm_network_destroy(loaded);
    return !same;
}

int main(int argc, char **argv)
{
    settings s;
    demo d = {0};
    struct timespec start;
    int exit_code = 1;

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
    printf("network: LSTM I=%d H=%zu, last-step dense %zu->1, MSE (%zu parameters); %s init; "
           "Adam lr=%g, clip %g, batch %zu, seed %llu; training in %s\n",
           INPUTS, s.hidden, s.hidden, lstm_network_param_count(d.network),
           s.chrono ? "chrono" : "forget-bias-1", LEARNING_RATE, CLIP_NORM, s.batch,
           (unsigned long long)s.seed, ex_precision_name(s.train_precision));

    double mse;
    if (test_mse(&d, d.network, &mse))
        goto out;
    printf("%10s  %9s  %9s  %8s  %s\n", "sequences", "train MSE", "test MSE", "seq/s",
           "left (to cap)");
    printf("%10d  %9s  %9.4f\n", 0, "-", mse);
    if (d.csv)
        fprintf(d.csv, "0,,%.6f\n", mse);

    uint64_t rng = s.seed;
    uint64_t seen = 0, next_report = s.report_every;
    double loss_sum = 0.0;
    size_t loss_batches = 0;
    while (seen < s.max_sequences) {
        double loss;
        if (train_batch(&d, &rng, &loss))
            goto out;
        seen += s.batch;
        loss_sum += loss;
        loss_batches++;
        if (seen < next_report && seen < s.max_sequences)
            continue;
        next_report += s.report_every;

        if (test_mse(&d, d.network, &mse))
            goto out;
        double rate = (double)seen / ex_seconds_since(&start);
        double left = seen < s.max_sequences ? (double)(s.max_sequences - seen) / rate : 0.0;
        double train = loss_sum / (double)loss_batches;
        char left_text[32];
        ex_format_duration(left, left_text, sizeof left_text);
        printf("%10llu  %9.4f  %9.4f  %8.0f  %s\n", (unsigned long long)seen, train, mse, rate,
               left_text);
        fflush(stdout);
        if (d.csv)
            fprintf(d.csv, "%llu,%.6f,%.6f\n", (unsigned long long)seen, train, mse);
        loss_sum = 0.0;
        loss_batches = 0;
        /* Solved: stop at the first test below 0.01 (the last test is at the cap). */
        if (mse < SOLVED_MSE)
            break;
    }

    printf("final test MSE %.4f vs baseline %.4f (always answering 1.0, the variance of the sum "
           "of two U(0,1))\n",
           mse, BASELINE_MSE);
    printf("%s (test MSE < %.2f) %s %llu training sequences, training in %s\n",
           mse < SOLVED_MSE ? "solved" : "not solved", SOLVED_MSE,
           mse < SOLVED_MSE ? "after" : "within", (unsigned long long)seen,
           ex_precision_name(s.train_precision));
    printf("total %.1f s\n", ex_seconds_since(&start));
    FILE *csv = d.csv;
    d.csv = NULL;
    if (csv && fclose(csv) != 0) {
        perror(s.csv_path);
        goto out;
    }
    if ((s.predictions_path && write_predictions(&d, s.predictions_path)) ||
        save_and_check(&d, &s, mse))
        goto out;
    /* After the predictions: the answers in d->test.z are overwritten. */
    double metrics[EX_PRECISIONS];
    if (ex_evaluate_precisions(d.workspace, NULL, precision_mse, &d, metrics))
        goto out;
    ex_print_precisions("held-out MSE", metrics, 6, "");
    ex_print_precision_bound(metrics, PRECISION_RELATIVE, 1, "1%");
    int precision_kept = !s.smoke || ex_print_precision_bound(metrics, SMOKE_PRECISION_RELATIVE, 1,
                                                              "10% (the smoke run's bound)");
    exit_code = mse < (s.smoke ? SMOKE_MSE : SOLVED_MSE) && precision_kept ? 0 : 1;
    if (s.smoke)
        printf("smoke: test MSE %.4f %s %.2f\n", mse, exit_code == 0 ? "<" : ">=", SMOKE_MSE);
out:
    teardown(&d);
    return exit_code;
}
