/*
 * charlm.c: a character-level language model, one lstm_network.
 *
 * Data: any text file (default /usr/share/common-licenses/GPL-3, present on
 * every Debian machine). The vocabulary is the set of distinct bytes of the
 * text (at most 256); token k is the k-th of them in byte order. The first
 * 90% of the text trains the model; the last 10% is held out.
 * Model: one lstm_network (lstm/network.h): the tokens through an embedding
 * (E = 32 by default), one or two LSTM layers, and a dense head (H ->
 * vocabulary) on every step, trained with its softmax cross-entropy
 * (LSTM_LOSS_CROSS_ENTROPY) to predict the next byte.
 * Training: backpropagation through random windows of the training text,
 * each from a zero state, a batch of them per step
 * (lstm_network_train_forward, lstm_network_train_backward), with liblstm's
 * Adam, global gradient-norm clipping and a cosine learning-rate schedule.
 * Evaluation: bits per character (mean cross-entropy / ln 2) on the held-out
 * text, read as a few long streams chunk by chunk through an lstm_state
 * (lstm_network_infer_stream, lstm_network_loss). Compared with the unigram
 * baseline: the entropy of the training text's byte frequencies, what a
 * model that ignores context would get.
 * At the end the network is saved to one file (lstm_network_save) with the
 * vocabulary in its metadata ("vocabulary", the bytes in token order), loaded
 * back, its vocabulary rebuilt from the file alone, checked to give the same
 * held-out loss bit for bit, and it writes a sample, one byte at a time
 * (lstm_network_infer_stream with steps = 1), from a prompt.
 *
 * Usage: charlm [--smoke] [--text FILE] [--model FILE] [--csv FILE]
 *               [--steps N] [--embedding-dim E] [--hidden H] [--layers 1|2]
 *               [--batch B] [--seq-len T] [--lr RATE] [--dropout P]
 *               [--seed N] [--temperature TAU] [--prompt TEXT]
 *               [--sample-length N] [--train-precision fp32|bf16]
 * --train-precision bf16 runs every product of training's forward and
 * backward passes in bf16, with float32 sums, weights and Adam state
 * (lstm_workspace_set_training_precision); fp32 by default.
 * --csv FILE writes the loss curve, one row per report:
 * step,train_bpc,heldout_bpc,unigram_bpc.
 * --smoke is a short run (H = 64, a few hundred steps) for the test suite.
 * Exit status: 0 when the held-out bits per character are below 0.9 times
 * the unigram baseline and the reloaded network gives the same held-out
 * loss, else 1.
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

#define DEFAULT_TEXT "/usr/share/common-licenses/GPL-3"

enum {
    MAX_VOCAB = 256,
    EVAL_CHUNK = 64,       /* steps per lstm_network_infer_stream() call in evaluation */
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
    size_t steps, embedding_dim, hidden, layers, batch, seq_len, report_every, sample_length;
    double lr, dropout, temperature;
    uint64_t seed;
    int smoke;
    lstm_precision train_precision; /* of the training calls */
} settings;

/* The byte vocabulary: token k is byte bytes[k]. */
typedef struct vocabulary {
    unsigned char bytes[MAX_VOCAB];
    int16_t token_of[MAX_VOCAB]; /* byte -> token, -1 when absent */
    size_t size;
} vocabulary;

/* Everything the program owns, so that main has one cleanup path. */
typedef struct charlm {
    settings set;
    unsigned char *text;          /* the text's bytes */
    size_t text_size, train_size; /* train: text[0, train_size), held out: the rest */
    vocabulary vocab;
    double unigram_bits;

    lstm_network *net;
    lstm_workspace *workspace;
    lstm_optim *optim;

    int64_t *tokens; /* one training batch [T][B], sized once */
    int32_t *targets;
} charlm;

/* Give the vocabulary's bytes (their tokens in order) the reverse map;
 * 1 when a byte appears twice. */
static int index_vocabulary(vocabulary *vocab)
{
    memset(vocab->token_of, 0xFF, sizeof vocab->token_of); /* -1 */
    for (size_t k = 0; k < vocab->size; k++) {
        if (vocab->token_of[vocab->bytes[k]] >= 0)
            return 1;
        vocab->token_of[vocab->bytes[k]] = (int16_t)k;
    }
    return 0;
}

/* Build the vocabulary of the text and the unigram entropy of its training
 * part in bits per character, H = -sum p log2 p. */
static void build_vocabulary(charlm *c)
{
    size_t counts[MAX_VOCAB] = {0}, train_counts[MAX_VOCAB] = {0};
    for (size_t k = 0; k < c->text_size; k++)
        counts[c->text[k]]++;
    for (size_t k = 0; k < c->train_size; k++)
        train_counts[c->text[k]]++;
    c->vocab.size = 0;
    c->unigram_bits = 0.0;
    for (size_t byte = 0; byte < MAX_VOCAB; byte++) {
        if (counts[byte] > 0)
            c->vocab.bytes[c->vocab.size++] = (unsigned char)byte;
        double p = (double)train_counts[byte] / (double)c->train_size;
        if (p > 0.0)
            c->unigram_bits -= p * log2(p);
    }
    index_vocabulary(&c->vocab);
}

/*
 * One training step on `batch` random windows of the training text.
 * Window b covers text[s_b .. s_b + T]: the inputs are its first T bytes
 * and the targets the T bytes after each of them.
 */
static int train_step(charlm *c, uint64_t *rng, uint64_t step, double *loss)
{
    const size_t T = c->set.seq_len, B = c->set.batch;
    const lstm_sequences sequences = {.struct_size = sizeof sequences, .steps = T, .batch = B};
    const lstm_network_inputs inputs = {.struct_size = sizeof inputs, .tokens = c->tokens};
    const lstm_targets targets = {.struct_size = sizeof targets, .classes = c->targets};
    size_t windows = c->train_size - T; /* starts 0 .. train_size - T - 1 */
    for (size_t b = 0; b < B; b++) {
        size_t start = (size_t)(ex_random(rng) % windows);
        for (size_t t = 0; t < T; t++) {
            c->tokens[t * B + b] = c->vocab.token_of[c->text[start + t]];
            c->targets[t * B + b] = c->vocab.token_of[c->text[start + t + 1]];
        }
    }
    /* No output wanted: the loss is computed from the workspace. Clip the
     * global gradient norm: exploding gradients through long windows would
     * otherwise throw training off. */
    double lr;
    if (ex_failed(lstm_network_train_forward(c->net, c->workspace, &sequences, &inputs, NULL),
                  "lstm_network_train_forward") ||
        ex_failed(lstm_network_train_backward(c->net, c->workspace, &targets, loss),
                  "lstm_network_train_backward") ||
        ex_failed(lstm_optim_clip_grad_norm(c->optim, CLIP_NORM, NULL),
                  "lstm_optim_clip_grad_norm") ||
        ex_failed(
            lstm_schedule_cosine(c->set.lr, c->set.lr * MIN_LR_FRACTION, c->set.steps, step, &lr),
            "lstm_schedule_cosine") ||
        ex_failed(lstm_optim_set_lr(c->optim, lr), "lstm_optim_set_lr") ||
        ex_failed(lstm_optim_step(c->optim), "lstm_optim_step"))
        return 1;
    return ex_failed(lstm_optim_zero_grads(c->optim), "lstm_optim_zero_grads");
}

/*
 * Mean cross-entropy (nats per character) of a network on the held-out
 * text, its bytes read through vocab. The held-out text is cut into
 * `streams` equal segments read side by side as a batch of streams,
 * EVAL_CHUNK steps per call, each from a zero state: every byte after a
 * segment's first is predicted from all the bytes of its segment before it.
 */
static int heldout_loss(const charlm *c, lstm_network *net, const vocabulary *vocab, double *loss)
{
    const size_t V = vocab->size;
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
    int64_t *tokens = malloc(rows * sizeof *tokens);
    int32_t *targets = malloc(rows * sizeof *targets);
    float *logits = malloc(rows * V * sizeof *logits);
    /* Every chunk but the last has EVAL_CHUNK steps; the buffers stay put. */
    lstm_sequences sequences = {.struct_size = sizeof sequences, .batch = streams};
    const lstm_network_inputs inputs = {.struct_size = sizeof inputs, .tokens = tokens};
    const lstm_network_outputs outputs = {.struct_size = sizeof outputs, .output = logits};
    const lstm_targets chunk_targets = {.struct_size = sizeof chunk_targets, .classes = targets};
    double sum = 0.0;
    int rc = 1;

    if (!tokens || !targets || !logits) {
        fprintf(stderr, "out of memory\n");
        goto out;
    }
    if (ex_failed(lstm_state_create(lstm_network_model(net), streams, &state), "lstm_state_create"))
        goto out;
    for (size_t first = 0; first + 1 < segment; first += EVAL_CHUNK) {
        size_t steps = segment - 1 - first < EVAL_CHUNK ? segment - 1 - first : EVAL_CHUNK;
        double chunk_loss;
        for (size_t t = 0; t < steps; t++) {
            for (size_t b = 0; b < streams; b++) {
                const unsigned char *at = heldout + b * segment + first + t;
                tokens[t * streams + b] = vocab->token_of[at[0]];
                targets[t * streams + b] = vocab->token_of[at[1]];
            }
        }
        sequences.steps = steps;
        if (ex_failed(lstm_network_infer_stream(net, state, &sequences, &inputs, &outputs),
                      "lstm_network_infer_stream") ||
            ex_failed(lstm_network_loss(net, &sequences, logits, &chunk_targets, &chunk_loss),
                      "lstm_network_loss"))
            goto out;
        sum += chunk_loss * (double)(steps * streams); /* the loss is a mean over rows */
    }
    *loss = sum / (double)((segment - 1) * streams);
    rc = 0;
out:
    lstm_state_destroy(state);
    free(tokens);
    free(targets);
    free(logits);
    return rc;
}

/* Rebuild the vocabulary from a network's metadata alone: the entry
 * "vocabulary" holds the bytes in token order, one per embedding row. */
static int read_vocabulary(const lstm_network *net, vocabulary *vocab)
{
    lstm_network_config config = LSTM_NETWORK_CONFIG_INIT;
    const void *value;
    uint32_t kind;
    size_t size;
    if (ex_failed(lstm_network_get_meta(net, "vocabulary", &kind, &value, &size),
                  "lstm_network_get_meta(\"vocabulary\")") ||
        ex_failed(lstm_network_get_config(net, &config), "lstm_network_get_config"))
        return 1;
    int fits = kind == LSTM_META_BYTES && size <= MAX_VOCAB && config.embedding &&
               config.embedding->num_embeddings == size;
    if (fits) {
        memcpy(vocab->bytes, value, size);
        vocab->size = size;
        fits = !index_vocabulary(vocab);
    }
    if (!fits)
        fprintf(stderr, "the model file's vocabulary does not fit its embedding\n");
    return !fits;
}

/* Draw a token from softmax(logits / temperature). */
static size_t sample_token(const float *logits, size_t count, double temperature, uint64_t *rng)
{
    double probs[MAX_VOCAB], total = 0.0, max = logits[0];
    for (size_t v = 1; v < count; v++)
        if (logits[v] > max)
            max = logits[v];
    for (size_t v = 0; v < count; v++) {
        probs[v] = exp(((double)logits[v] - max) / temperature);
        total += probs[v];
    }
    double u = ex_random_unit(rng) * total;
    for (size_t v = 0; v < count; v++) {
        if (u < probs[v])
            return v;
        u -= probs[v];
    }
    return count - 1;
}

/* Feed one token to a stream of batch 1; logits receives the next byte's. */
static int feed(const lstm_network *net, lstm_state *state, int64_t token, float *logits)
{
    const lstm_sequences one_step = {.struct_size = sizeof one_step, .steps = 1, .batch = 1};
    const lstm_network_inputs inputs = {.struct_size = sizeof inputs, .tokens = &token};
    const lstm_network_outputs outputs = {.struct_size = sizeof outputs, .output = logits};
    return ex_failed(lstm_network_infer_stream(net, state, &one_step, &inputs, &outputs),
                     "lstm_network_infer_stream");
}

/*
 * Feed the prompt one byte at a time, then draw `length` bytes, each fed
 * back as the next input, and print prompt and sample. Bytes of the prompt
 * that are not in the vocabulary are skipped.
 */
static int generate(const charlm *c, lstm_network *net, const vocabulary *vocab, uint64_t seed)
{
    size_t length = c->set.sample_length;
    lstm_state *state = NULL;
    float logits[MAX_VOCAB];
    unsigned char *out = malloc(length);
    uint64_t rng = seed;
    int fed = 0, rc = 1;

    if (!out) {
        fprintf(stderr, "out of memory\n");
        goto out;
    }
    if (ex_failed(lstm_state_create(lstm_network_model(net), 1, &state), "lstm_state_create"))
        goto out;
    printf("--- sample (temperature %.2f) ---\n", c->set.temperature);
    for (const char *p = c->set.prompt; *p; p++) {
        int16_t token = vocab->token_of[(unsigned char)*p];
        if (token < 0)
            continue;
        if (feed(net, state, token, logits))
            goto out;
        fputc(*p, stdout);
        fed = 1;
    }
    if (!fed) { /* no usable prompt: start from the text's first byte */
        if (feed(net, state, vocab->token_of[c->text[0]], logits))
            goto out;
        fputc(c->text[0], stdout);
    }
    for (size_t k = 0; k < length; k++) {
        size_t token = sample_token(logits, vocab->size, c->set.temperature, &rng);
        out[k] = vocab->bytes[token];
        if (feed(net, state, (int64_t)token, logits))
            goto out;
    }
    fwrite(out, 1, length, stdout);
    printf("\n--- end of sample ---\n");
    rc = 0;
out:
    lstm_state_destroy(state);
    free(out);
    return rc;
}

static int setup(charlm *c)
{
    const settings *s = &c->set;
    const size_t T = s->seq_len, B = s->batch;
    lstm_embedding_config embedding = LSTM_EMBEDDING_CONFIG_INIT;
    lstm_config lstm;
    lstm_network_config config = LSTM_NETWORK_CONFIG_INIT;
    lstm_optim_options options;

    char *text;
    if (ex_read_file(s->text_path, &text, &c->text_size))
        return 1;
    c->text = (unsigned char *)text;
    c->train_size = c->text_size - c->text_size / 10;
    if (c->train_size < 2 * T + 2 || c->text_size - c->train_size < 2) {
        fprintf(stderr, "%s: %zu bytes is too short for windows of %zu\n", s->text_path,
                c->text_size, T);
        return 1;
    }
    build_vocabulary(c);

    c->tokens = malloc(T * B * sizeof *c->tokens);
    c->targets = malloc(T * B * sizeof *c->targets);
    if (!c->tokens || !c->targets) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }

    if (ex_failed(lstm_config_init(&lstm, sizeof lstm), "lstm_config_init"))
        return 1;
    embedding.num_embeddings = c->vocab.size;
    embedding.embedding_dim = s->embedding_dim;
    lstm.input_size = s->embedding_dim;
    lstm.hidden_size = s->hidden;
    lstm.num_layers = s->layers;
    lstm.dropout = s->layers > 1 ? s->dropout : 0.0;
    config.embedding = &embedding;
    config.lstm = &lstm;
    config.head = LSTM_HEAD_EVERY_STEP;
    config.loss = LSTM_LOSS_CROSS_ENTROPY;
    config.head_size = c->vocab.size;
    if (ex_failed(lstm_network_create(&config, &c->net), "lstm_network_create") ||
        ex_failed(lstm_network_init(c->net, s->seed, LSTM_INIT_FORGET_BIAS_ONE),
                  "lstm_network_init") ||
        ex_failed(lstm_workspace_create(lstm_network_model(c->net), &c->workspace),
                  "lstm_workspace_create") ||
        ex_failed(lstm_workspace_reserve(c->workspace, LSTM_MODE_TRAIN, T, B),
                  "lstm_workspace_reserve") ||
        ex_failed(lstm_workspace_set_seed(c->workspace, s->seed ^ 0xD0u),
                  "lstm_workspace_set_seed") ||
        ex_set_training_precision(c->workspace, s->train_precision) ||
        ex_failed(lstm_optim_options_init(&options, sizeof options, LSTM_OPTIM_ADAM),
                  "lstm_optim_options_init"))
        return 1;
    options.lr = s->lr;
    return ex_failed(lstm_optim_create(&options, &c->optim), "lstm_optim_create") ||
           ex_failed(lstm_optim_add_network(c->optim, c->net), "lstm_optim_add_network") ||
           ex_failed(lstm_optim_zero_grads(c->optim), "lstm_optim_zero_grads");
}

/* Save the network with what a user of the file needs to read it: the
 * vocabulary (token k is byte k of the entry) and where it came from. */
static int save(const charlm *c)
{
    const char *description = "charlm: a character-level language model (examples/charlm.c). "
                              "Token k is byte k of \"vocabulary\"; the head's output at each "
                              "step gives the logits of the next byte's token.";
    return ex_failed(lstm_network_set_meta(c->net, "vocabulary", LSTM_META_BYTES, c->vocab.bytes,
                                           c->vocab.size),
                     "lstm_network_set_meta(\"vocabulary\")") ||
           ex_set_meta_text(c->net, "description", description) ||
           ex_set_meta_text(c->net, "text", c->set.text_path) ||
           ex_failed(lstm_network_save(c->net, NULL, c->set.model_path), "lstm_network_save");
}

static void teardown(charlm *c)
{
    lstm_optim_destroy(c->optim);
    lstm_workspace_destroy(c->workspace);
    lstm_network_destroy(c->net);
    free(c->text);
    free(c->tokens);
    free(c->targets);
}

/* Parse a positive integer option value; 0 on error. */
static size_t parse_size(const char *name, const char *value)
{
    uint64_t n;
    return ex_parse_count(name, value, 1, (uint64_t)1 << 30, &n) ? 0 : (size_t)n;
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
    s->embedding_dim = 32; /* a learned code of the bytes, half as wide as one-hot */
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
                   "       [--embedding-dim E] [--hidden H] [--layers 1|2] [--batch B]\n"
                   "       [--seq-len T] [--lr RATE] [--dropout P] [--seed N]\n"
                   "       [--temperature TAU] [--prompt TEXT] [--sample-length N]\n"
                   "       [--train-precision fp32|bf16]\n",
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
        else if (strcmp(name, "--train-precision") == 0) {
            if (ex_parse_training_precision(value, &s->train_precision))
                return 1;
        } else if (strcmp(name, "--steps") == 0) {
            if ((s->steps = parse_size(name, value)) == 0)
                return 1;
        } else if (strcmp(name, "--embedding-dim") == 0) {
            if ((s->embedding_dim = parse_size(name, value)) == 0)
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
            if (ex_parse_double(name, value, 1e-6, 1.0, &s->lr))
                return 1;
        } else if (strcmp(name, "--dropout") == 0) {
            if (ex_parse_double(name, value, 0.0, 0.9, &s->dropout))
                return 1;
        } else if (strcmp(name, "--temperature") == 0) {
            if (ex_parse_double(name, value, 0.01, 10.0, &s->temperature))
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
    lstm_network *loaded = NULL;
    vocabulary loaded_vocab;
    FILE *csv = NULL;
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
           c.text_size - c.train_size, c.vocab.size);
    printf("embedding %zu x %zu (%zu parameters) + LSTM H=%zu layers=%zu (%zu) + dense %zu->%zu "
           "(%zu); Adam lr=%g cosine, clip %g, batch %zu x %zu steps, %zu steps, training in "
           "%s%s\n",
           c.vocab.size, s->embedding_dim,
           lstm_embedding_param_count(lstm_network_embedding(c.net)), s->hidden, s->layers,
           lstm_model_param_count(lstm_network_model(c.net)), s->hidden, c.vocab.size,
           lstm_dense_param_count(lstm_network_head(c.net)), s->lr, CLIP_NORM, s->batch, s->seq_len,
           s->steps, ex_precision_name(s->train_precision), s->smoke ? " (smoke)" : "");
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
            double elapsed = ex_seconds_since(&start);
            double train_bpc = train_sum / (double)train_count / LN2;
            if (heldout_loss(&c, c.net, &c.vocab, &heldout))
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

    /* Save, load back, rebuild the vocabulary from the file alone, and check
     * that the loaded network gives the same loss, bit for bit. */
    double reloaded;
    if (save(&c) || ex_failed(lstm_network_load(s->model_path, &loaded), "lstm_network_load") ||
        read_vocabulary(loaded, &loaded_vocab) ||
        heldout_loss(&c, loaded, &loaded_vocab, &reloaded))
        goto out;
    int same = reloaded == heldout;
    printf("saved %s (%zu metadata entries, vocabulary %zu bytes); reloaded held-out bpc %.6f "
           "(difference %.2g): %s\n",
           s->model_path, lstm_network_meta_count(loaded), loaded_vocab.size, reloaded / LN2,
           (reloaded - heldout) / LN2, same ? "same" : "DIFFERENT");

    if (generate(&c, loaded, &loaded_vocab, s->seed ^ 0x5A3Bu))
        goto out;

    int beats = bpc < SMOKE_MARGIN * c.unigram_bits;
    printf("held-out bpc %.3f %s %.1f x unigram (%.3f); reload check %s\n", bpc,
           beats ? "<" : ">=", SMOKE_MARGIN, SMOKE_MARGIN * c.unigram_bits,
           same ? "passed" : "FAILED");
    printf("total %.1f s\n", ex_seconds_since(&start));
    passed = beats && same;
out:
    if (csv && fclose(csv) != 0) {
        perror(c.set.csv_path);
        passed = 0;
    }
    lstm_network_destroy(loaded);
    teardown(&c);
    return passed ? 0 : 1;
}
