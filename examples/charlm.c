/*
 * charlm.c: a character-level language model.
 *
 * Data: any text file (default /usr/share/common-licenses/GPL-3, present on
 * every Debian machine). The vocabulary is the set of distinct bytes of the
 * text (at most 256), each fed to the LSTM as a one-hot vector. The first
 * 90% of the text trains the model; the last 10% is held out.
 * Model: one or two LSTM layers from liblstm, then a dense layer (H ->
 * vocabulary) at every step, trained with softmax cross-entropy to predict
 * the next byte (lstm_dense_*, lstm_loss_cross_entropy).
 * Training: truncated BPTT over random windows of the training text, a
 * batch of them per step, with liblstm's Adam, global gradient-norm clipping
 * and a cosine learning-rate schedule.
 * Evaluation: bits per character (mean cross-entropy / ln 2) on the held-out
 * text, read as a few long streams chunk by chunk through an lstm_state.
 * Compared with the unigram baseline: the entropy of the training text's
 * byte frequencies, what a model that ignores context would get.
 * At the end the model is saved, loaded back and checked to give the same
 * held-out loss, and it writes a sample, one byte at a time
 * (lstm_model_step), from a prompt.
 *
 * The model file (lstm_model_save) holds the LSTM only; the dense layer and
 * the vocabulary go to a small file of this program's own beside it,
 * FILE.head (see save_head).
 *
 * Usage: charlm [--smoke] [--text FILE] [--model FILE] [--csv FILE]
 *               [--steps N] [--hidden H] [--layers 1|2] [--batch B]
 *               [--seq-len T] [--lr RATE] [--dropout P] [--seed N]
 *               [--temperature TAU] [--prompt TEXT] [--sample-length N]
 * --csv FILE writes the loss curve, one row per report:
 * step,train_bpc,heldout_bpc,unigram_bpc.
 * --smoke is a short run (H = 64, a few hundred steps) for the test suite.
 * Exit status: 0 when the held-out bits per character are below 0.9 times
 * the unigram baseline and the reloaded model gives the same held-out loss,
 * else 1.
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lstm/lstm.h>

#define DEFAULT_TEXT "/usr/share/common-licenses/GPL-3"

enum {
    MAX_VOCAB = 256,
    EVAL_CHUNK = 64,       /* steps per lstm_model_infer_stream() call in evaluation */
    EVAL_MIN_STREAM = 512, /* held-out bytes per evaluation stream, at least */
    EVAL_MAX_STREAMS = 64,
    MAX_SAMPLE = 100000
};

static const double LN2 = 0.69314718055994530942;
static const double CLIP_NORM = 1.0;
static const double MIN_LR_FRACTION = 0.05; /* the cosine schedule ends at 5% of the peak */
static const double SMOKE_MARGIN = 0.9;     /* smoke: bpc must be below 0.9 x unigram */

/* Run settings; main fills them from the defaults and the command line. */
typedef struct settings {
    const char *text_path, *model_path, *csv_path, *prompt;
    size_t steps, hidden, layers, batch, seq_len, report_every, sample_length;
    double lr, dropout, temperature;
    uint64_t seed;
    int smoke;
} settings;

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

/* Read a whole file into a new buffer. Returns its size, or 0 on failure. */
static size_t read_file(const char *path, unsigned char **out)
{
    size_t size = 0, capacity = 1 << 16;
    unsigned char *data = malloc(capacity);
    FILE *file = fopen(path, "rb");
    if (!file || !data) {
        if (!file)
            perror(path);
        else
            fprintf(stderr, "out of memory\n");
        goto fail;
    }
    for (;;) {
        size_t got = fread(data + size, 1, capacity - size, file);
        size += got;
        if (got == 0)
            break;
        if (size == capacity) {
            unsigned char *bigger = realloc(data, capacity * 2);
            if (!bigger) {
                fprintf(stderr, "out of memory\n");
                goto fail;
            }
            data = bigger;
            capacity *= 2;
        }
    }
    if (ferror(file)) {
        perror(path);
        goto fail;
    }
    fclose(file);
    *out = data;
    return size;
fail:
    if (file)
        fclose(file);
    free(data);
    return 0;
}

/* Everything the program owns, so that main has one cleanup path. */
typedef struct charlm {
    settings set;
    unsigned char *text;            /* the text as vocabulary indices */
    size_t text_size, train_size;   /* train: text[0, train_size), held out: the rest */
    unsigned char vocab[MAX_VOCAB]; /* index -> byte */
    int16_t index_of[MAX_VOCAB];    /* byte -> index, -1 when absent */
    size_t vocab_size;
    double unigram_bits;

    lstm_model *model;
    lstm_workspace *workspace;
    lstm_dense *head;
    lstm_optim *optim; /* updates the LSTM and the head together */

    /* Training buffers for one batch [T][B][...], sized once. */
    float *x, *y, *logits, *dlogits, *dy;
    int32_t *targets;
    size_t *starts;
    /* The training calls' arguments, set once in setup(): the buffers never move. */
    lstm_sequences train_sequences;
    lstm_inputs train_inputs;
    lstm_outputs train_outputs;
    lstm_output_grads train_output_grads;
} charlm;

/* Build the vocabulary, map the text to indices, and compute the unigram
 * entropy of the training part in bits per character. */
static void build_vocab(charlm *c)
{
    size_t counts[MAX_VOCAB] = {0};
    for (size_t k = 0; k < c->text_size; k++)
        counts[c->text[k]]++;
    c->vocab_size = 0;
    for (size_t byte = 0; byte < MAX_VOCAB; byte++) {
        c->index_of[byte] = -1;
        if (counts[byte] > 0) {
            c->index_of[byte] = (int16_t)c->vocab_size;
            c->vocab[c->vocab_size++] = (unsigned char)byte;
        }
    }
    for (size_t k = 0; k < c->text_size; k++)
        c->text[k] = (unsigned char)c->index_of[c->text[k]];

    /* H = -sum p log2 p over the training text's byte frequencies. */
    size_t train_counts[MAX_VOCAB] = {0};
    for (size_t k = 0; k < c->train_size; k++)
        train_counts[c->text[k]]++;
    c->unigram_bits = 0.0;
    for (size_t v = 0; v < c->vocab_size; v++) {
        if (train_counts[v] == 0)
            continue;
        double p = (double)train_counts[v] / (double)c->train_size;
        c->unigram_bits -= p * log2(p);
    }
}

/* Write a one-hot vector of the vocabulary index v. */
static void one_hot(float *x, size_t vocab_size, size_t v)
{
    memset(x, 0, vocab_size * sizeof *x);
    x[v] = 1.0f;
}

/*
 * One training step on `batch` random windows of the training text.
 * Window b covers text[s_b .. s_b + T]: the inputs are its first T bytes
 * and the targets the T bytes after each of them.
 */
static int train_step(charlm *c, uint64_t *rng, uint64_t step, double *loss)
{
    const size_t T = c->set.seq_len, B = c->set.batch, V = c->vocab_size;
    size_t windows = c->train_size - T; /* starts 0 .. train_size - T - 1 */
    for (size_t b = 0; b < B; b++)
        c->starts[b] = (size_t)(next_random(rng) % windows);
    for (size_t t = 0; t < T; t++) {
        for (size_t b = 0; b < B; b++) {
            size_t at = c->starts[b] + t;
            one_hot(c->x + (t * B + b) * V, V, c->text[at]);
            c->targets[t * B + b] = c->text[at + 1];
        }
    }
    /* Forward: LSTM over the windows, then the head at every step; the
     * rows of y [T][B][H] are the T * B rows the dense layer sees. */
    if (failed(lstm_model_train_forward(c->model, c->workspace, &c->train_sequences,
                                        &c->train_inputs, &c->train_outputs),
               "lstm_model_train_forward") ||
        failed(lstm_dense_forward(c->head, T * B, c->y, c->logits), "lstm_dense_forward") ||
        failed(lstm_loss_cross_entropy(T * B, V, c->logits, c->targets, -1, loss, c->dlogits),
               "lstm_loss_cross_entropy") ||
        failed(lstm_dense_backward(c->head, T * B, c->y, c->dlogits, c->dy),
               "lstm_dense_backward") ||
        failed(lstm_model_train_backward(c->model, c->workspace, &c->train_output_grads, NULL),
               "lstm_model_train_backward"))
        return 1;

    /* Clip the global gradient norm (LSTM and head together): exploding
     * gradients through long windows would otherwise throw training off. */
    double lr;
    if (failed(lstm_optim_clip_grad_norm(c->optim, CLIP_NORM, NULL), "lstm_optim_clip_grad_norm") ||
        failed(
            lstm_schedule_cosine(c->set.lr, c->set.lr * MIN_LR_FRACTION, c->set.steps, step, &lr),
            "lstm_schedule_cosine") ||
        failed(lstm_optim_set_lr(c->optim, lr), "lstm_optim_set_lr") ||
        failed(lstm_optim_step(c->optim), "lstm_optim_step"))
        return 1;
    return failed(lstm_optim_zero_grads(c->optim), "lstm_optim_zero_grads");
}

/*
 * Mean cross-entropy (nats per character) of a model and head on the
 * held-out text. The held-out text is cut into `streams` equal segments
 * read side by side as a batch of streams, EVAL_CHUNK steps per call, each
 * from a zero state: every byte after a segment's first is predicted from
 * all the bytes of its segment before it.
 */
static int heldout_loss(const charlm *c, const lstm_model *model, const lstm_dense *head,
                        double *loss)
{
    const size_t V = c->vocab_size, H = c->set.hidden;
    const unsigned char *heldout = c->text + c->train_size;
    size_t size = c->text_size - c->train_size;
    size_t streams = size / EVAL_MIN_STREAM;
    if (streams < 1)
        streams = 1;
    if (streams > EVAL_MAX_STREAMS)
        streams = EVAL_MAX_STREAMS;
    size_t segment = size / streams; /* bytes per stream; segment - 1 predictions */
    size_t rows = EVAL_CHUNK * streams;
    lstm_state *state = NULL;
    float *x = malloc(rows * V * sizeof *x);
    float *y = malloc(rows * H * sizeof *y);
    float *logits = malloc(rows * V * sizeof *logits);
    int32_t *targets = malloc(rows * sizeof *targets);
    /* Every chunk but the last has EVAL_CHUNK steps; x and y stay put. */
    lstm_sequences sequences = {.struct_size = sizeof(lstm_sequences), .batch = streams};
    const lstm_inputs inputs = {.struct_size = sizeof(lstm_inputs), .x = x};
    const lstm_outputs outputs = {.struct_size = sizeof(lstm_outputs), .y = y};
    double sum = 0.0;
    int rc = 1;

    if (!x || !y || !logits || !targets) {
        fprintf(stderr, "out of memory\n");
        goto out;
    }
    if (failed(lstm_state_create(model, streams, &state), "lstm_state_create"))
        goto out;
    for (size_t first = 0; first + 1 < segment; first += EVAL_CHUNK) {
        size_t steps = segment - 1 - first < EVAL_CHUNK ? segment - 1 - first : EVAL_CHUNK;
        double chunk_loss;
        for (size_t t = 0; t < steps; t++) {
            for (size_t b = 0; b < streams; b++) {
                const unsigned char *at = heldout + b * segment + first + t;
                one_hot(x + (t * streams + b) * V, V, at[0]);
                targets[t * streams + b] = at[1];
            }
        }
        sequences.steps = steps;
        if (failed(lstm_model_infer_stream(model, state, &sequences, &inputs, &outputs),
                   "lstm_model_infer_stream") ||
            failed(lstm_dense_forward(head, steps * streams, y, logits), "lstm_dense_forward") ||
            failed(
                lstm_loss_cross_entropy(steps * streams, V, logits, targets, -1, &chunk_loss, NULL),
                "lstm_loss_cross_entropy"))
            goto out;
        sum += chunk_loss * (double)(steps * streams); /* the loss is a mean over rows */
    }
    *loss = sum / (double)((segment - 1) * streams);
    rc = 0;
out:
    lstm_state_destroy(state);
    free(x);
    free(y);
    free(logits);
    free(targets);
    return rc;
}

/*
 * The head file: what lstm_model_save() does not hold. Host byte order:
 *     "CLMH", uint32 vocab size V, uint32 hidden size H, V vocabulary bytes,
 *     then the dense layer's V * H + V floats [W | b].
 * Written to FILE.tmp and renamed over FILE, so a failure leaves any
 * previous file intact.
 */
static int save_head(const charlm *c, const char *path)
{
    char tmp[4096];
    float *params;
    size_t count;
    uint32_t sizes[2] = {(uint32_t)c->vocab_size, (uint32_t)c->set.hidden};
    if (failed(lstm_dense_params(c->head, &params, &count), "lstm_dense_params"))
        return 1;
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
        fprintf(stderr, "%s: path too long\n", path);
        return 1;
    }
    FILE *file = fopen(tmp, "wb");
    if (!file) {
        perror(tmp);
        return 1;
    }
    int ok = fwrite("CLMH", 1, 4, file) == 4 && fwrite(sizes, sizeof sizes, 1, file) == 1 &&
             fwrite(c->vocab, 1, c->vocab_size, file) == c->vocab_size &&
             fwrite(params, sizeof *params, count, file) == count;
    if (fclose(file) != 0)
        ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        perror(path);
        remove(tmp);
        return 1;
    }
    return 0;
}

/* Load a head file written by save_head into a new dense layer, checking
 * that it matches this text's vocabulary and the model's hidden size. */
static int load_head(const charlm *c, const char *path, lstm_dense **out)
{
    char magic[4];
    uint32_t sizes[2];
    unsigned char vocab[MAX_VOCAB];
    lstm_dense *head = NULL;
    float *params;
    size_t count;
    int rc = 1;
    FILE *file = fopen(path, "rb");
    if (!file) {
        perror(path);
        return 1;
    }
    if (fread(magic, 1, 4, file) != 4 || memcmp(magic, "CLMH", 4) != 0 ||
        fread(sizes, sizeof sizes, 1, file) != 1 || sizes[0] != c->vocab_size ||
        sizes[1] != c->set.hidden || fread(vocab, 1, c->vocab_size, file) != c->vocab_size ||
        memcmp(vocab, c->vocab, c->vocab_size) != 0) {
        fprintf(stderr, "%s: not a head file for this text and model\n", path);
        goto out;
    }
    if (failed(lstm_dense_create(c->set.hidden, c->vocab_size, &head), "lstm_dense_create") ||
        failed(lstm_dense_params(head, &params, &count), "lstm_dense_params"))
        goto out;
    if (fread(params, sizeof *params, count, file) != count || fgetc(file) != EOF) {
        fprintf(stderr, "%s: wrong size\n", path);
        goto out;
    }
    *out = head;
    head = NULL;
    rc = 0;
out:
    lstm_dense_destroy(head);
    fclose(file);
    return rc;
}

/* Draw an index from softmax(logits / temperature). */
static size_t sample_index(const float *logits, size_t count, double temperature, uint64_t *rng)
{
    double probs[MAX_VOCAB], total = 0.0, max = logits[0];
    for (size_t v = 1; v < count; v++)
        if (logits[v] > max)
            max = logits[v];
    for (size_t v = 0; v < count; v++) {
        probs[v] = exp(((double)logits[v] - max) / temperature);
        total += probs[v];
    }
    double u = random_unit(rng) * total;
    for (size_t v = 0; v < count; v++) {
        if (u < probs[v])
            return v;
        u -= probs[v];
    }
    return count - 1;
}

/*
 * Feed the prompt one byte at a time, then draw `length` bytes, each fed
 * back as the next input, and print prompt and sample. Bytes of the prompt
 * that are not in the vocabulary are skipped.
 */
static int generate(const charlm *c, const lstm_model *model, const lstm_dense *head, uint64_t seed)
{
    const size_t V = c->vocab_size, H = c->set.hidden;
    size_t length = c->set.sample_length;
    lstm_state *state = NULL;
    float x[MAX_VOCAB], logits[MAX_VOCAB];
    float *h = malloc(H * sizeof *h);
    unsigned char *out = malloc(length + 1);
    uint64_t rng = seed;
    size_t fed = 0, next = 0;
    int rc = 1;

    if (!h || !out) {
        fprintf(stderr, "out of memory\n");
        goto out;
    }
    if (failed(lstm_state_create(model, 1, &state), "lstm_state_create"))
        goto out;
    printf("--- sample (temperature %.2f) ---\n", c->set.temperature);
    for (const char *p = c->set.prompt; *p; p++) {
        int16_t v = c->index_of[(unsigned char)*p];
        if (v < 0)
            continue;
        one_hot(x, V, (size_t)v);
        if (failed(lstm_model_step(model, state, x, h), "lstm_model_step"))
            goto out;
        fputc(*p, stdout);
        fed++;
    }
    if (fed == 0) { /* no usable prompt: start from the text's first byte */
        one_hot(x, V, c->text[0]);
        if (failed(lstm_model_step(model, state, x, h), "lstm_model_step"))
            goto out;
        fputc(c->vocab[c->text[0]], stdout);
    }
    for (size_t k = 0; k < length; k++) {
        if (failed(lstm_dense_forward(head, 1, h, logits), "lstm_dense_forward"))
            goto out;
        next = sample_index(logits, V, c->set.temperature, &rng);
        out[k] = c->vocab[next];
        one_hot(x, V, next);
        if (failed(lstm_model_step(model, state, x, h), "lstm_model_step"))
            goto out;
    }
    fwrite(out, 1, length, stdout);
    printf("\n--- end of sample ---\n");
    rc = 0;
out:
    lstm_state_destroy(state);
    free(h);
    free(out);
    return rc;
}

static int setup(charlm *c)
{
    const settings *s = &c->set;
    const size_t T = s->seq_len, B = s->batch, H = s->hidden;
    lstm_config config;
    lstm_optim_options options;
    float *params, *grads;
    size_t count;

    c->text_size = read_file(s->text_path, &c->text);
    if (c->text_size == 0)
        return 1;
    c->train_size = c->text_size - c->text_size / 10;
    if (c->train_size < 2 * T + 2 || c->text_size - c->train_size < 2) {
        fprintf(stderr, "%s: %zu bytes is too short for windows of %zu\n", s->text_path,
                c->text_size, T);
        return 1;
    }
    build_vocab(c);
    const size_t V = c->vocab_size;

    c->x = malloc(T * B * V * sizeof *c->x);
    c->y = malloc(T * B * H * sizeof *c->y);
    c->dy = malloc(T * B * H * sizeof *c->dy);
    c->logits = malloc(T * B * V * sizeof *c->logits);
    c->dlogits = malloc(T * B * V * sizeof *c->dlogits);
    c->targets = malloc(T * B * sizeof *c->targets);
    c->starts = malloc(B * sizeof *c->starts);
    if (!c->x || !c->y || !c->dy || !c->logits || !c->dlogits || !c->targets || !c->starts) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    c->train_sequences =
        (lstm_sequences){.struct_size = sizeof(lstm_sequences), .steps = T, .batch = B};
    c->train_inputs = (lstm_inputs){.struct_size = sizeof(lstm_inputs), .x = c->x};
    c->train_outputs = (lstm_outputs){.struct_size = sizeof(lstm_outputs), .y = c->y};
    c->train_output_grads =
        (lstm_output_grads){.struct_size = sizeof(lstm_output_grads), .dy = c->dy};

    if (failed(lstm_config_init(&config, sizeof config), "lstm_config_init"))
        return 1;
    config.input_size = V;
    config.hidden_size = H;
    config.num_layers = s->layers;
    config.dropout = s->layers > 1 ? s->dropout : 0.0;
    if (failed(lstm_model_create(&config, &c->model), "lstm_model_create") ||
        failed(lstm_model_init(c->model, s->seed, LSTM_INIT_FORGET_BIAS_ONE), "lstm_model_init") ||
        failed(lstm_workspace_create(c->model, &c->workspace), "lstm_workspace_create") ||
        failed(lstm_workspace_reserve(c->workspace, LSTM_MODE_TRAIN, T, B),
               "lstm_workspace_reserve") ||
        failed(lstm_workspace_set_seed(c->workspace, s->seed ^ 0xD0u), "lstm_workspace_set_seed") ||
        failed(lstm_dense_create(H, V, &c->head), "lstm_dense_create") ||
        failed(lstm_dense_init(c->head, s->seed ^ 0x5EEDu), "lstm_dense_init") ||
        failed(lstm_dense_params(c->head, &params, &count), "lstm_dense_params") ||
        failed(lstm_dense_grads(c->head, &grads, NULL), "lstm_dense_grads") ||
        failed(lstm_optim_options_init(&options, sizeof options, LSTM_OPTIM_ADAM),
               "lstm_optim_options_init"))
        return 1;
    options.lr = s->lr;
    if (failed(lstm_optim_create(&options, &c->optim), "lstm_optim_create") ||
        failed(lstm_optim_add_model(c->optim, c->model), "lstm_optim_add_model") ||
        failed(lstm_optim_add_buffer(c->optim, params, grads, count), "lstm_optim_add_buffer") ||
        failed(lstm_optim_zero_grads(c->optim), "lstm_optim_zero_grads"))
        return 1;
    return 0;
}

static void teardown(charlm *c)
{
    lstm_optim_destroy(c->optim);
    lstm_dense_destroy(c->head);
    lstm_workspace_destroy(c->workspace);
    lstm_model_destroy(c->model);
    free(c->text);
    free(c->x);
    free(c->y);
    free(c->dy);
    free(c->logits);
    free(c->dlogits);
    free(c->targets);
    free(c->starts);
}

/* Parse a positive integer option value; 0 on error. */
static size_t parse_size(const char *name, const char *value)
{
    char *end;
    unsigned long long n = strtoull(value, &end, 10);
    if (end == value || *end != '\0' || n == 0 || n > (1ull << 30)) {
        fprintf(stderr, "%s: expected a positive integer, got \"%s\"\n", name, value);
        return 0;
    }
    return (size_t)n;
}

static int parse_double(const char *name, const char *value, double low, double high, double *out)
{
    char *end;
    double d = strtod(value, &end);
    if (end == value || *end != '\0' || !(d >= low && d <= high)) {
        fprintf(stderr, "%s: expected a number in [%g, %g], got \"%s\"\n", name, low, high, value);
        return 1;
    }
    *out = d;
    return 0;
}

static int parse_args(int argc, char **argv, settings *s)
{
    /* Defaults: the full run. --smoke is applied first, so that other
     * options still override it whatever their order. */
    s->text_path = DEFAULT_TEXT;
    s->model_path = "charlm.lstm";
    s->csv_path = NULL;
    s->prompt = "This License ";
    s->steps = 1200;
    s->hidden = 128;
    s->layers = 2;
    s->batch = 32;
    s->seq_len = 96;
    s->report_every = 100;
    s->sample_length = 300;
    s->lr = 5e-3;
    s->dropout = 0.3;
    s->temperature = 0.8;
    s->seed = 20240601u;
    for (int k = 1; k < argc; k++) {
        if (strcmp(argv[k], "--smoke") == 0) {
            s->smoke = 1;
            s->steps = 500;
            s->hidden = 64;
            s->layers = 1;
            s->seq_len = 64;
            s->report_every = 50;
            s->lr = 2e-2;
        }
    }
    for (int k = 1; k < argc; k++) {
        const char *name = argv[k], *value = k + 1 < argc ? argv[k + 1] : NULL;
        if (strcmp(name, "--smoke") == 0)
            continue;
        if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
            printf("usage: %s [--smoke] [--text FILE] [--model FILE] [--csv FILE] [--steps N]\n"
                   "       [--hidden H] [--layers 1|2] [--batch B] [--seq-len T] [--lr RATE]\n"
                   "       [--dropout P] [--seed N] [--temperature TAU] [--prompt TEXT]\n"
                   "       [--sample-length N]\n",
                   argv[0]);
            exit(0);
        }
        if (!value) {
            fprintf(stderr, "unknown option or missing value: %s (try --help)\n", name);
            return 1;
        }
        k++;
        if (strcmp(name, "--text") == 0)
            s->text_path = value;
        else if (strcmp(name, "--model") == 0)
            s->model_path = value;
        else if (strcmp(name, "--csv") == 0)
            s->csv_path = value;
        else if (strcmp(name, "--prompt") == 0)
            s->prompt = value;
        else if (strcmp(name, "--steps") == 0) {
            if ((s->steps = parse_size(name, value)) == 0)
                return 1;
        } else if (strcmp(name, "--hidden") == 0) {
            if ((s->hidden = parse_size(name, value)) == 0)
                return 1;
        } else if (strcmp(name, "--layers") == 0) {
            if ((s->layers = parse_size(name, value)) == 0 || s->layers > 2) {
                fprintf(stderr, "--layers: 1 or 2\n");
                return 1;
            }
        } else if (strcmp(name, "--batch") == 0) {
            if ((s->batch = parse_size(name, value)) == 0)
                return 1;
        } else if (strcmp(name, "--seq-len") == 0) {
            if ((s->seq_len = parse_size(name, value)) == 0)
                return 1;
        } else if (strcmp(name, "--sample-length") == 0) {
            if ((s->sample_length = parse_size(name, value)) == 0 ||
                s->sample_length > MAX_SAMPLE) {
                fprintf(stderr, "--sample-length: 1 .. %d\n", MAX_SAMPLE);
                return 1;
            }
        } else if (strcmp(name, "--seed") == 0) {
            size_t seed = parse_size(name, value);
            if (seed == 0)
                return 1;
            s->seed = (uint64_t)seed;
        } else if (strcmp(name, "--lr") == 0) {
            if (parse_double(name, value, 1e-6, 1.0, &s->lr))
                return 1;
        } else if (strcmp(name, "--dropout") == 0) {
            if (parse_double(name, value, 0.0, 0.9, &s->dropout))
                return 1;
        } else if (strcmp(name, "--temperature") == 0) {
            if (parse_double(name, value, 0.01, 10.0, &s->temperature))
                return 1;
        } else {
            fprintf(stderr, "unknown option: %s (try --help)\n", name);
            return 1;
        }
    }
    s->report_every = s->steps < s->report_every ? s->steps : s->report_every;
    return 0;
}

int main(int argc, char **argv)
{
    charlm c;
    lstm_model *loaded = NULL;
    lstm_dense *loaded_head = NULL;
    FILE *csv = NULL;
    char head_path[4096];
    struct timespec start;
    int passed = 0;

    memset(&c, 0, sizeof c);
    clock_gettime(CLOCK_MONOTONIC, &start);
    if (parse_args(argc, argv, &c.set) || setup(&c))
        goto out;
    const settings *s = &c.set;
    if (s->csv_path) {
        csv = fopen(s->csv_path, "w");
        if (!csv) {
            perror(s->csv_path);
            goto out;
        }
        fprintf(csv, "step,train_bpc,heldout_bpc,unigram_bpc\n");
    }

    printf("liblstm %s: %s, %zu bytes (train %zu, held out %zu), vocabulary %zu bytes\n",
           lstm_version_string(), s->text_path, c.text_size, c.train_size,
           c.text_size - c.train_size, c.vocab_size);
    printf("LSTM I=%zu H=%zu layers=%zu (%zu parameters) + dense %zu->%zu (%zu); "
           "Adam lr=%g cosine, clip %g, batch %zu x %zu steps, %zu steps%s\n",
           c.vocab_size, s->hidden, s->layers, lstm_model_param_count(c.model), s->hidden,
           c.vocab_size, lstm_dense_param_count(c.head), s->lr, CLIP_NORM, s->batch, s->seq_len,
           s->steps, s->smoke ? " (smoke)" : "");
    printf("unigram baseline (training text's byte entropy): %.3f bits per character\n",
           c.unigram_bits);

    uint64_t rng = s->seed;
    double train_sum = 0.0, heldout = 0.0;
    size_t train_count = 0;
    for (uint64_t step = 0; step < s->steps; step++) {
        double loss;
        if (train_step(&c, &rng, step, &loss))
            goto out;
        train_sum += loss;
        train_count++;
        if ((step + 1) % s->report_every == 0 || step + 1 == s->steps) {
            double elapsed = seconds_since(&start);
            double train_bpc = train_sum / (double)train_count / LN2;
            if (heldout_loss(&c, c.model, c.head, &heldout))
                goto out;
            double rate = (double)((step + 1) * s->batch) / elapsed;
            double left = elapsed / (double)(step + 1) * (double)(s->steps - step - 1);
            printf("step %6llu/%zu  train bpc %.3f  held-out bpc %.3f  %6.1f seqs/s  "
                   "elapsed %6.1f s  left %6.1f s\n",
                   (unsigned long long)(step + 1), s->steps, train_bpc, heldout / LN2, rate,
                   elapsed, left);
            fflush(stdout);
            if (csv)
                fprintf(csv, "%llu,%.6f,%.6f,%.6f\n", (unsigned long long)(step + 1), train_bpc,
                        heldout / LN2, c.unigram_bits);
            train_sum = 0.0;
            train_count = 0;
        }
    }
    double bpc = heldout / LN2;
    printf("held-out: %.4f bits per character (unigram baseline %.4f, ratio %.3f)\n", bpc,
           c.unigram_bits, bpc / c.unigram_bits);

    /* Save, load back, and check the loaded model gives the same loss. */
    if ((size_t)snprintf(head_path, sizeof head_path, "%s.head", s->model_path) >=
        sizeof head_path) {
        fprintf(stderr, "%s: path too long\n", s->model_path);
        goto out;
    }
    double reloaded;
    if (failed(lstm_model_save(c.model, NULL, s->model_path), "lstm_model_save") ||
        save_head(&c, head_path) ||
        failed(lstm_model_load(s->model_path, &loaded), "lstm_model_load") ||
        load_head(&c, head_path, &loaded_head) || heldout_loss(&c, loaded, loaded_head, &reloaded))
        goto out;
    int same = fabs(reloaded - heldout) <= 1e-6 * fabs(heldout);
    printf("saved %s and %s; reloaded held-out bpc %.6f (difference %.2g): %s\n", s->model_path,
           head_path, reloaded / LN2, (reloaded - heldout) / LN2, same ? "same" : "DIFFERENT");

    if (generate(&c, loaded, loaded_head, s->seed ^ 0x5A3Bu))
        goto out;

    int beats = bpc < SMOKE_MARGIN * c.unigram_bits;
    printf("held-out bpc %.3f %s %.1f x unigram (%.3f); reload check %s\n", bpc,
           beats ? "<" : ">=", SMOKE_MARGIN, SMOKE_MARGIN * c.unigram_bits,
           same ? "passed" : "FAILED");
    printf("total %.1f s\n", seconds_since(&start));
    passed = beats && same;
out:
    if (csv && fclose(csv) != 0) {
        perror(c.set.csv_path);
        passed = 0;
    }
    lstm_dense_destroy(loaded_head);
    lstm_model_destroy(loaded);
    teardown(&c);
    return passed ? 0 : 1;
}
