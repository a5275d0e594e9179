/*
 * Allocation failure, white box: every fault point (src/alloc.h: each
 * lstm__mem_alloc() and each thread start) reachable from every public call is
 * made to fail in turn.
 *
 * Each scenario makes one public call on handles made ready by a fixture
 * (a 2-layer model with projection, peepholes and dropout, a bidirectional
 * model, workspaces never sized and one holding a training forward, a
 * stream state, optimizers stepping on 3 threads, one of them lazy on an
 * embedding's touched rows, a dense layer, embedding layers, two networks
 * (one with metadata; a tagger: tokens, an LSTM with projection and
 * dropout, an every-step head, cross-entropy, with a fresh workspace, one
 * holding its training forward and a stream state), a model file and a
 * network's file in memory and on disk). The scenario is
 * run once to count its fault points n and record its outputs. Then, for
 * k = 1 .. n, on a new fixture, the k-th point fails, and the call must
 * either
 *
 *   - return LSTM_E_NOMEM with a new detail message, hold no more blocks
 *     than before it (nothing leaked), leave every output buffer and `out`
 *     pointer unwritten, leave every handle bit for bit as it was (their
 *     parameters, gradients, optimizer states, stream states, the file on
 *     disk and its directory), and then, called again, succeed with the
 *     recorded outputs (the handles are still usable); or
 *   - succeed with exactly the recorded outputs, when what failed was
 *     optional (a worker thread: its share runs on the calling thread).
 *
 * After every fixture is destroyed the library holds no more blocks than
 * before it. Calls that allocate nothing are run too, and the optimizer's
 * per-step calls must show 0 points: they neither allocate nor start a
 * thread (its threads start at create or at a binding, issue 22). A last check reads the version
 * script (src/lstm.map) and fails when an exported function is in no scenario, so a new module
 * cannot skip this test.
 *
 * CMake sets OPENBLAS_NUM_THREADS=3, so that every workspace starts a pool
 * of worker threads (OpenBLAS caps the count at the number of cores).
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "lstm/lstm.h"

#ifndef LSTM_MAP
#  error "LSTM_MAP must be defined as the path of src/lstm.map"
#endif

enum {
    I = 5,
    H = 8,
    P = 3,
    L = 2,
    T = 6,
    B = 3,               /* the models and the calls */
    R = P,               /* the unidirectional model's state size */
    CLASSES = 4,         /* the dense layer's outputs */
    VOCAB = 7,           /* the embedding's rows (2 is the padding row) */
    EMBED = 3,           /* its embedding_dim */
    IDS = 5,             /* ids per lookup */
    OUT_BYTES = 1 << 15, /* room for every scenario's outputs */
    OPTIM_THREADS = 3
};

static const size_t lengths[B] = {T, 4, 1};

/* Written over output buffers before a call, to see what the call writes. */
#define SENTINEL 0xA5
static int not_written_target;
#define NOT_WRITTEN ((void *)&not_written_target)

/* ---- inputs ------------------------------------------------------------- */

static void fill(float *values, size_t count, uint32_t seed)
{
    uint32_t state = seed * 2654435761u + 1u;
    for (size_t k = 0; k < count; k++) {
        state = state * 1664525u + 1013904223u;
        values[k] = (float)(state >> 8) * 0x1p-24f - 0.5f;
    }
}

static float x[T * B * I], h0[L * B * R], c0[L * B * H], dy[T * B * R];
static float x_long[2 * T * B * I]; /* twice as many steps: a workspace must grow */
static float bi_h0[2 * L * B * H], bi_c0[2 * L * B * H];
static float dense_x[B * R], dense_dz[B * CLASSES], targets01[B * CLASSES];
static const int32_t classes[B] = {1, 3, 0};
static const int64_t token_ids[IDS] = {4, 2, 0, 4, 6};
/* The network's tokens [T][B] and classes: garbage past each end (never read). */
static int64_t net_tokens[T * B];
static int32_t net_classes[T * B];
static float embed_dout[IDS * EMBED];

static void make_inputs(void)
{
    fill(x, T * B * I, 1);
    fill(x_long, 2 * T * B * I, 10);
    fill(h0, L * B * R, 2);
    fill(c0, L * B * H, 3);
    fill(dy, T * B * R, 4);
    fill(bi_h0, 2 * L * B * H, 5);
    fill(bi_c0, 2 * L * B * H, 6);
    fill(dense_x, B * R, 7);
    fill(dense_dz, B * CLASSES, 8);
    fill(targets01, B * CLASSES, 9);
    fill(embed_dout, IDS * EMBED, 14);
    for (size_t k = 0; k < B * CLASSES; k++)
        targets01[k] += 0.5f; /* in [0, 1] */
    for (size_t t = 0; t < T; t++) {
        for (size_t b = 0; b < B; b++) {
            const bool valid = t < lengths[b];
            net_tokens[t * B + b] = valid ? (int64_t)((3 * t + b) % VOCAB) : -5;
            net_classes[t * B + b] = valid ? (int32_t)((t + 2 * b) % CLASSES) : 99;
        }
    }
}

static lstm_config uni_config(void)
{
    lstm_config config;
    assert_int_equal(lstm_config_init(&config, sizeof config), LSTM_OK);
    config.input_size = I;
    config.hidden_size = H;
    config.num_layers = L;
    config.proj_size = P;
    config.flags = LSTM_PEEPHOLE;
    config.dropout = 0.25;
    return config;
}

static lstm_config bi_config(void)
{
    lstm_config config;
    assert_int_equal(lstm_config_init(&config, sizeof config), LSTM_OK);
    config.input_size = I;
    config.hidden_size = H;
    config.num_layers = L;
    config.flags = LSTM_BIDIRECTIONAL;
    return config;
}

static lstm_embedding_config embedding_config(void)
{
    lstm_embedding_config config;
    assert_int_equal(lstm_embedding_config_init(&config, sizeof config), LSTM_OK);
    config.num_embeddings = VOCAB;
    config.embedding_dim = EMBED;
    config.flags = LSTM_EMBEDDING_PADDING;
    config.padding_idx = 2;
    return config;
}

/* A token network: embedding VOCAB x I, uni_config()'s LSTM, an every-step
 * head of CLASSES, cross-entropy. */
static lstm_status create_network(lstm_network **out)
{
    const lstm_config lstm = uni_config();
    lstm_embedding_config embedding = embedding_config();
    embedding.embedding_dim = I;
    lstm_network_config config;
    assert_int_equal(lstm_network_config_init(&config, sizeof config), LSTM_OK);
    config.embedding = &embedding;
    config.lstm = &lstm;
    config.head = LSTM_HEAD_EVERY_STEP;
    config.loss = LSTM_LOSS_CROSS_ENTROPY;
    config.head_size = CLASSES;
    return lstm_network_create(&config, out);
}

static lstm_optim_options adam_options(void)
{
    lstm_optim_options options;
    assert_int_equal(lstm_optim_options_init(&options, sizeof options, LSTM_OPTIM_ADAM), LSTM_OK);
    options.lr = 0.01;
    options.threads = OPTIM_THREADS;
    return options;
}

/* ---- the fixture ----------------------------------------------------------- */

static char directory[64];
static char path[128];
static char net_path[128]; /* the network's file */

typedef struct fixture {
    lstm_model *model;           /* uni_config(), initialised, gradients accumulated */
    lstm_model *bi_model;        /* bi_config(), initialised */
    lstm_workspace *fresh;       /* for model, never sized: the next call grows it */
    lstm_workspace *bi_fresh;    /* likewise for bi_model */
    lstm_workspace *trained;     /* holds a training forward of model */
    lstm_state *state;           /* batch B, at h0 and c0; its workspace never sized */
    lstm_optim *optim;           /* Adam on model, OPTIM_THREADS threads, two steps taken */
    lstm_optim *unbound;         /* Adam with nothing bound yet */
    lstm_dense *dense;           /* R -> CLASSES, initialised */
    lstm_embedding *embedding;   /* VOCAB x EMBED, padding row 2, initialised */
    lstm_embedding *touched;     /* the same, after one backward of token_ids (the rows
                                    set holds 3 rows, room for 4) and a lazy step */
    lstm_optim *lazy;            /* Adam, LSTM_OPTIM_LAZY_ROWS, OPTIM_THREADS threads, on
                                    touched and the dense layer, one step taken */
    unsigned char *file;         /* model and optim after the first step, as a file */
    size_t file_size;            /* ... also saved at path */
    lstm_network *network;       /* tokens, uni_config(), a last-step head, META_ENTRIES entries */
    unsigned char *net_file;     /* network as a file, before its metadata changed */
    size_t net_file_size;        /* ... also saved at net_path */
    lstm_network *tagger;        /* create_network(), initialised */
    lstm_workspace *net_fresh;   /* for the tagger's model, never sized */
    lstm_workspace *net_kept;    /* the same, keeping weights */
    lstm_workspace *net_trained; /* holds a training forward of the tagger */
    lstm_state *net_state;       /* batch B, of the tagger's model, never sized */
} fixture;

enum { META_ENTRIES = 8 }; /* a full table: one more entry reallocates it */

static lstm_network *network_new(void)
{
    const lstm_config lstm = uni_config();
    lstm_embedding_config embedding = embedding_config();
    embedding.embedding_dim = I;
    lstm_network_config config;
    assert_int_equal(lstm_network_config_init(&config, sizeof config), LSTM_OK);
    config.embedding = &embedding;
    config.lstm = &lstm;
    config.head = LSTM_HEAD_LAST_STEP;
    config.loss = LSTM_LOSS_CROSS_ENTROPY;
    config.head_size = CLASSES;
    lstm_network *network = NULL;
    assert_int_equal(lstm_network_create(&config, &network), LSTM_OK);
    assert_int_equal(lstm_network_init(network, 21, 0), LSTM_OK);
    return network;
}

static void train_once(fixture *f)
{
    assert_int_equal(
        lstm_model_forward_train(f->model, f->trained, T, B, lengths, x, h0, c0, NULL, NULL, NULL),
        LSTM_OK);
    assert_int_equal(lstm_model_backward(f->model, f->trained, dy, NULL, NULL, NULL, NULL, NULL),
                     LSTM_OK);
    assert_int_equal(lstm_optim_step(f->optim), LSTM_OK);
}

static void fixture_setup(fixture *f)
{
    memset(f, 0, sizeof *f);
    const lstm_config uni = uni_config(), bi = bi_config();
    const lstm_optim_options options = adam_options();
    assert_int_equal(lstm_model_create(&uni, &f->model), LSTM_OK);
    assert_int_equal(lstm_model_init(f->model, 11, 0), LSTM_OK);
    assert_int_equal(lstm_model_create(&bi, &f->bi_model), LSTM_OK);
    assert_int_equal(lstm_model_init(f->bi_model, 12, 0), LSTM_OK);
    assert_int_equal(lstm_workspace_create(f->model, &f->fresh), LSTM_OK);
    assert_int_equal(lstm_workspace_create(f->bi_model, &f->bi_fresh), LSTM_OK);
    assert_int_equal(lstm_workspace_create(f->model, &f->trained), LSTM_OK);
    assert_int_equal(lstm_state_create(f->model, B, &f->state), LSTM_OK);
    assert_int_equal(lstm_state_set(f->state, h0, c0), LSTM_OK);
    assert_int_equal(lstm_optim_create(&options, &f->optim), LSTM_OK);
    assert_int_equal(lstm_optim_add_model(f->optim, f->model), LSTM_OK);
    assert_int_equal(lstm_optim_create(&options, &f->unbound), LSTM_OK);
    assert_int_equal(lstm_dense_create(R, CLASSES, &f->dense), LSTM_OK);
    assert_int_equal(lstm_dense_init(f->dense, 13), LSTM_OK);
    const lstm_embedding_config embedding = embedding_config();
    assert_int_equal(lstm_embedding_create(&embedding, &f->embedding), LSTM_OK);
    assert_int_equal(lstm_embedding_init(f->embedding, 15), LSTM_OK);
    f->network = network_new();
    for (int n = 0; n < META_ENTRIES; n++) {
        char key[8], value[16];
        snprintf(key, sizeof key, "key %d", n);
        snprintf(value, sizeof value, "value %d", n);
        assert_int_equal(
            lstm_network_set_meta(f->network, key, (uint32_t)n % 2, value, strlen(value)), LSTM_OK);
    }
    assert_int_equal(lstm_network_save_buffer(f->network, NULL, NULL, 0, &f->net_file_size),
                     LSTM_OK);
    f->net_file = malloc(f->net_file_size);
    assert_non_null(f->net_file);
    assert_int_equal(lstm_network_save_buffer(f->network, NULL, f->net_file, f->net_file_size,
                                              &f->net_file_size),
                     LSTM_OK);
    assert_int_equal(lstm_network_save(f->network, NULL, net_path), LSTM_OK);
    assert_int_equal(lstm_network_set_meta(f->network, "key 3", LSTM_META_TEXT, "changed", 7),
                     LSTM_OK);
    assert_int_equal(lstm_embedding_create(&embedding, &f->touched), LSTM_OK);
    assert_int_equal(lstm_embedding_init(f->touched, 17), LSTM_OK);
    lstm_optim_options lazy_options = adam_options();
    lazy_options.flags = LSTM_OPTIM_LAZY_ROWS;
    assert_int_equal(lstm_optim_create(&lazy_options, &f->lazy), LSTM_OK);
    assert_int_equal(lstm_optim_add_embedding(f->lazy, f->touched), LSTM_OK);
    float *dense_params, *dense_grads;
    size_t dense_count;
    assert_int_equal(lstm_dense_params(f->dense, &dense_params, &dense_count), LSTM_OK);
    assert_int_equal(lstm_dense_grads(f->dense, &dense_grads, NULL), LSTM_OK);
    assert_int_equal(lstm_optim_add_buffer(f->lazy, dense_params, dense_grads, dense_count),
                     LSTM_OK);
    assert_int_equal(lstm_embedding_backward(f->touched, IDS, token_ids, embed_dout), LSTM_OK);
    assert_int_equal(lstm_optim_step(f->lazy), LSTM_OK);
    assert_int_equal(create_network(&f->tagger), LSTM_OK);
    assert_int_equal(lstm_network_init(f->tagger, 16, 0), LSTM_OK);
    lstm_model *net_model = lstm_network_model(f->tagger);
    assert_int_equal(lstm_workspace_create(net_model, &f->net_fresh), LSTM_OK);
    assert_int_equal(lstm_workspace_create(net_model, &f->net_kept), LSTM_OK);
    assert_int_equal(lstm_workspace_keep_weights(f->net_kept, 1), LSTM_OK);
    assert_int_equal(lstm_workspace_create(net_model, &f->net_trained), LSTM_OK);
    assert_int_equal(lstm_state_create(net_model, B, &f->net_state), LSTM_OK);
    const lstm_sequences sequences = {sizeof sequences, T, B, LSTM_LAYOUT_MODEL, lengths};
    lstm_network_inputs inputs = LSTM_NETWORK_INPUTS_INIT;
    inputs.tokens = net_tokens;
    assert_int_equal(
        lstm_network_train_forward(f->tagger, f->net_trained, &sequences, &inputs, NULL), LSTM_OK);

    /* A file of the state after one step; the handles then move on, so
     * that saving and loading change what they touch. */
    train_once(f);
    assert_int_equal(lstm_model_save_buffer(f->model, f->optim, NULL, 0, &f->file_size), LSTM_OK);
    f->file = malloc(f->file_size);
    assert_non_null(f->file);
    assert_int_equal(
        lstm_model_save_buffer(f->model, f->optim, f->file, f->file_size, &f->file_size), LSTM_OK);
    assert_int_equal(lstm_model_save(f->model, f->optim, path), LSTM_OK);
    train_once(f);
    assert_int_equal(
        lstm_model_forward_train(f->model, f->trained, T, B, lengths, x, h0, c0, NULL, NULL, NULL),
        LSTM_OK);
}

static void fixture_teardown(fixture *f)
{
    lstm_model_destroy(f->model);
    lstm_model_destroy(f->bi_model);
    lstm_workspace_destroy(f->fresh);
    lstm_workspace_destroy(f->bi_fresh);
    lstm_workspace_destroy(f->trained);
    lstm_state_destroy(f->state);
    lstm_optim_destroy(f->optim);
    lstm_optim_destroy(f->unbound);
    lstm_dense_destroy(f->dense);
    lstm_embedding_destroy(f->embedding);
    lstm_embedding_destroy(f->touched);
    lstm_optim_destroy(f->lazy);
    lstm_network_destroy(f->network);
    lstm_network_destroy(f->tagger);
    lstm_workspace_destroy(f->net_fresh);
    lstm_workspace_destroy(f->net_kept);
    lstm_workspace_destroy(f->net_trained);
    lstm_state_destroy(f->net_state);
    free(f->file);
    free(f->net_file);
    unlink(path);
    unlink(net_path);
}

/* ---- what a failed call must leave alone ------------------------------------- */

typedef struct snapshot {
    unsigned char *bytes;
    size_t size, capacity;
} snapshot;

static void record(snapshot *s, const void *data, size_t size)
{
    if (s->size + size > s->capacity) {
        s->capacity = 2 * (s->size + size);
        s->bytes = realloc(s->bytes, s->capacity);
        assert_non_null(s->bytes);
    }
    memcpy(s->bytes + s->size, data, size);
    s->size += size;
}

static void record_model(snapshot *s, lstm_model *model)
{
    float *params, *grads;
    size_t count;
    assert_int_equal(lstm_model_params(model, &params, &count), LSTM_OK);
    assert_int_equal(lstm_model_grads(model, &grads, NULL), LSTM_OK);
    record(s, params, count * sizeof(float));
    record(s, grads, count * sizeof(float));
}

static void record_optim(snapshot *s, const lstm_optim *optim)
{
    size_t bytes;
    double lr;
    assert_int_equal(lstm_optim_state_size(optim, &bytes), LSTM_OK);
    unsigned char *state = malloc(bytes);
    assert_non_null(state);
    assert_int_equal(lstm_optim_save_state(optim, state, bytes), LSTM_OK);
    assert_int_equal(lstm_optim_get_lr(optim, &lr), LSTM_OK);
    record(s, state, bytes);
    record(s, &lr, sizeof lr);
    free(state);
}

/* An embedding's weights, gradients and touched rows. */
static void record_embedding(snapshot *s, lstm_embedding *embedding)
{
    float *params, *grads;
    const uint32_t *rows;
    size_t count, touched;
    assert_int_equal(lstm_embedding_params(embedding, &params, &count), LSTM_OK);
    assert_int_equal(lstm_embedding_grads(embedding, &grads, NULL), LSTM_OK);
    assert_int_equal(lstm_embedding_touched_rows(embedding, &rows, &touched), LSTM_OK);
    record(s, params, count * sizeof(float));
    record(s, grads, count * sizeof(float));
    record(s, &touched, sizeof touched);
    if (touched != 0)
        record(s, rows, touched * sizeof(uint32_t));
}

/* The file at path and the names in its directory (no temporary left). */
static void record_disk(snapshot *s)
{
    FILE *file = fopen(path, "rb");
    assert_non_null(file);
    int c;
    while ((c = fgetc(file)) != EOF) {
        unsigned char byte = (unsigned char)c;
        record(s, &byte, 1);
    }
    fclose(file);
    DIR *dir = opendir(directory);
    assert_non_null(dir);
    for (struct dirent *entry; (entry = readdir(dir)) != NULL;)
        if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0)
            record(s, entry->d_name, strlen(entry->d_name) + 1);
    closedir(dir);
}

/* A network: every part's parameters and gradients, then its metadata. */
static void record_network(snapshot *s, lstm_network *network)
{
    float *data, *grads;
    size_t count;
    assert_int_equal(lstm_embedding_params(lstm_network_embedding(network), &data, &count),
                     LSTM_OK);
    assert_int_equal(lstm_embedding_grads(lstm_network_embedding(network), &grads, NULL), LSTM_OK);
    record(s, data, count * sizeof(float));
    record(s, grads, count * sizeof(float));
    record_model(s, lstm_network_model(network));
    assert_int_equal(lstm_dense_params(lstm_network_head(network), &data, &count), LSTM_OK);
    assert_int_equal(lstm_dense_grads(lstm_network_head(network), &grads, NULL), LSTM_OK);
    record(s, data, count * sizeof(float));
    record(s, grads, count * sizeof(float));
    count = lstm_network_meta_count(network);
    record(s, &count, sizeof count);
    for (size_t n = 0; n < lstm_network_meta_count(network); n++) {
        const char *key;
        const void *value;
        uint32_t kind;
        assert_int_equal(lstm_network_meta_key(network, n, &key), LSTM_OK);
        assert_int_equal(lstm_network_get_meta(network, key, &kind, &value, &count), LSTM_OK);
        record(s, key, strlen(key) + 1);
        record(s, &kind, sizeof kind);
        record(s, &count, sizeof count);
        record(s, value, count);
    }
}

static snapshot take_snapshot(fixture *f)
{
    snapshot s = {NULL, 0, 0};
    float *data, *grads, h[L * B * R], c[L * B * H];
    size_t count;
    record_model(&s, f->model);
    record_model(&s, f->bi_model);
    record_optim(&s, f->optim);
    record_optim(&s, f->unbound);
    count = lstm_optim_param_count(f->unbound);
    record(&s, &count, sizeof count);
    assert_int_equal(lstm_state_get(f->state, h, c), LSTM_OK);
    record(&s, h, sizeof h);
    record(&s, c, sizeof c);
    assert_int_equal(lstm_dense_params(f->dense, &data, &count), LSTM_OK);
    assert_int_equal(lstm_dense_grads(f->dense, &grads, NULL), LSTM_OK);
    record(&s, data, count * sizeof(float));
    record(&s, grads, count * sizeof(float));
    record_embedding(&s, f->embedding);
    record_embedding(&s, f->touched);
    record_optim(&s, f->lazy);
    record_network(&s, f->network);
    record_network(&s, f->tagger);
    assert_int_equal(lstm_state_get(f->net_state, h, c), LSTM_OK);
    record(&s, h, sizeof h);
    record(&s, c, sizeof c);
    record_disk(&s);
    return s;
}

/* ---- the scenarios: one public call each, outputs into out ------------------ */

typedef lstm_status (*scenario_fn)(fixture *f, unsigned char *out);

typedef struct scenario {
    const char *name;
    const char *calls; /* every public function the scenario makes */
    scenario_fn run;
} scenario;

/* out as floats: the outputs of a call one after another. */
static float *floats(unsigned char *out, size_t at)
{
    return (float *)(void *)out + at;
}

static lstm_status save_state_into(const lstm_optim *optim, unsigned char *out)
{
    size_t bytes;
    lstm_status status = lstm_optim_state_size(optim, &bytes);
    assert_true(bytes <= OUT_BYTES);
    return status != LSTM_OK ? status : lstm_optim_save_state(optim, out, bytes);
}

/* The calls that allocate nothing are asserted one by one: they never fail
 * here, and the loop only checks that they pass no fault point. */
#define OK(call) assert_int_equal((call), LSTM_OK)

static lstm_status run_constants(fixture *f, unsigned char *out)
{
    (void)f;
    lstm_config config;
    OK(lstm_config_init(&config, sizeof config));
    snprintf((char *)out, 256, "%u %s %s %s", lstm_version_number(), lstm_version_string(),
             lstm_strerror(LSTM_E_NOMEM), lstm_error_message());
    return LSTM_OK;
}

/* Creates a model, and copies out its initialised parameters. */
static lstm_status create_model(const lstm_config *config, unsigned char *out)
{
    lstm_model *model = NOT_WRITTEN;
    lstm_status status = lstm_model_create(config, &model);
    if (status != LSTM_OK) {
        assert_ptr_equal(model, NOT_WRITTEN);
        return status;
    }
    const size_t count = lstm_model_param_count(model);
    assert_true(count * sizeof(float) <= OUT_BYTES);
    assert_int_equal(lstm_model_init(model, 21, LSTM_INIT_FORGET_BIAS_ONE), LSTM_OK);
    assert_int_equal(lstm_model_get_params(model, floats(out, 0), count), LSTM_OK);
    lstm_model_destroy(model);
    return status;
}

static lstm_status run_model_create(fixture *f, unsigned char *out)
{
    (void)f;
    const lstm_config config = uni_config();
    return create_model(&config, out);
}

static lstm_status run_bi_model_create(fixture *f, unsigned char *out)
{
    (void)f;
    const lstm_config config = bi_config();
    return create_model(&config, out);
}

static lstm_status run_model_accessors(fixture *f, unsigned char *out)
{
    lstm_config config;
    float *params, *grads;
    size_t count, offset, rows, cols;
    OK(lstm_config_init(&config, sizeof config));
    OK(lstm_model_get_config(f->model, &config));
    OK(lstm_model_tensor(f->model, 1, 0, LSTM_TENSOR_PEEPHOLE, &offset, &rows, &cols));
    OK(lstm_model_params(f->model, &params, &count));
    OK(lstm_model_grads(f->model, &grads, NULL));
    assert_int_equal(lstm_model_param_count(f->model), count);
    OK(lstm_model_get_params(f->model, floats(out, 0), count));
    OK(lstm_model_init(f->model, 5, 0));
    OK(lstm_model_set_params(f->model, floats(out, 0), count));
    OK(lstm_model_get_grads(f->model, floats(out, count), count));
    OK(lstm_model_zero_grads(f->model));
    return LSTM_OK;
}

static lstm_status run_workspace_create(fixture *f, unsigned char *out)
{
    (void)out;
    lstm_workspace *workspace = NOT_WRITTEN;
    lstm_status status = lstm_workspace_create(f->bi_model, &workspace);
    if (status != LSTM_OK) {
        assert_ptr_equal(workspace, NOT_WRITTEN);
        return status;
    }
    lstm_workspace_destroy(workspace);
    return status;
}

static lstm_status run_workspace_size_seed(fixture *f, unsigned char *out)
{
    size_t bytes = 0;
    OK(lstm_workspace_size(f->model, LSTM_MODE_TRAIN, T, B, &bytes));
    OK(lstm_workspace_set_seed(f->fresh, 3));
    memcpy(out, &bytes, sizeof bytes);
    return LSTM_OK;
}

static lstm_status run_workspace_reserve(fixture *f, unsigned char *out)
{
    (void)out;
    return lstm_workspace_reserve(f->fresh, LSTM_MODE_TRAIN, T, B);
}

static lstm_status run_forward(fixture *f, unsigned char *out)
{
    return lstm_model_forward(f->model, f->fresh, T, B, lengths, x, h0, c0, floats(out, 0),
                              floats(out, T * B * R), floats(out, T * B * R + L * B * R));
}

static lstm_status run_bi_forward(fixture *f, unsigned char *out)
{
    return lstm_model_forward(f->bi_model, f->bi_fresh, T, B, lengths, x, bi_h0, bi_c0,
                              floats(out, 0), floats(out, T * B * 2 * H),
                              floats(out, T * B * 2 * H + 2 * L * B * H));
}

static lstm_status run_forward_train(fixture *f, unsigned char *out)
{
    return lstm_model_forward_train(f->model, f->fresh, T, B, lengths, x, h0, c0, floats(out, 0),
                                    floats(out, T * B * R), floats(out, T * B * R + L * B * R));
}

/* A workspace that holds memory, a pool and a training forward grows; on
 * failure it keeps its memory. */
static lstm_status run_forward_growing(fixture *f, unsigned char *out)
{
    return lstm_model_forward_train(f->model, f->trained, 2 * T, B, NULL, x_long, NULL, NULL,
                                    floats(out, 0), NULL, NULL);
}

static lstm_status run_backward(fixture *f, unsigned char *out)
{
    lstm_status status =
        lstm_model_backward(f->model, f->trained, dy, NULL, NULL, floats(out, 0),
                            floats(out, T * B * I), floats(out, T * B * I + L * B * R));
    if (status == LSTM_OK)
        assert_int_equal(lstm_model_get_grads(f->model, floats(out, T * B * I + L * B * (R + H)),
                                              lstm_model_param_count(f->model)),
                         LSTM_OK);
    return status;
}

/* The argument-struct forms, each with its structs from the init functions. */
static lstm_status run_infer(fixture *f, unsigned char *out, bool training)
{
    lstm_sequences sequences;
    lstm_inputs inputs;
    lstm_outputs outputs;
    OK(lstm_sequences_init(&sequences, sizeof sequences));
    OK(lstm_inputs_init(&inputs, sizeof inputs));
    OK(lstm_outputs_init(&outputs, sizeof outputs));
    sequences.steps = T;
    sequences.batch = B;
    sequences.lengths = lengths;
    sequences.layout = LSTM_LAYOUT_BATCH_MAJOR;
    inputs.x = x;
    inputs.h0 = h0;
    inputs.c0 = c0;
    outputs.y = floats(out, 0);
    outputs.hT = floats(out, T * B * R);
    outputs.cT = floats(out, T * B * R + L * B * R);
    return training ? lstm_model_train_forward(f->model, f->fresh, &sequences, &inputs, &outputs)
                    : lstm_model_infer(f->model, f->fresh, &sequences, &inputs, &outputs);
}

static lstm_status run_model_infer(fixture *f, unsigned char *out)
{
    return run_infer(f, out, false);
}

static lstm_status run_train_forward(fixture *f, unsigned char *out)
{
    return run_infer(f, out, true);
}

static lstm_status run_train_backward(fixture *f, unsigned char *out)
{
    lstm_output_grads output_grads;
    lstm_input_grads input_grads;
    OK(lstm_output_grads_init(&output_grads, sizeof output_grads));
    OK(lstm_input_grads_init(&input_grads, sizeof input_grads));
    output_grads.dy = dy;
    input_grads.dx = floats(out, 0);
    input_grads.dc0 = floats(out, T * B * I);
    lstm_status status =
        lstm_model_train_backward(f->model, f->trained, &output_grads, &input_grads);
    if (status == LSTM_OK)
        assert_int_equal(lstm_model_get_grads(f->model, floats(out, T * B * I + L * B * H),
                                              lstm_model_param_count(f->model)),
                         LSTM_OK);
    return status;
}

static lstm_status run_state_create(fixture *f, unsigned char *out)
{
    lstm_state *state = NOT_WRITTEN;
    lstm_status status = lstm_state_create(f->model, B, &state);
    if (status != LSTM_OK) {
        assert_ptr_equal(state, NOT_WRITTEN);
        return status;
    }
    assert_int_equal(lstm_state_get(state, floats(out, 0), floats(out, L * B * R)), LSTM_OK);
    lstm_state_destroy(state);
    return status;
}

static lstm_status run_state_accessors(fixture *f, unsigned char *out)
{
    OK(lstm_state_get(f->state, floats(out, 0), floats(out, L * B * R)));
    OK(lstm_state_reset(f->state));
    OK(lstm_state_set(f->state, floats(out, 0), NULL));
    OK(lstm_state_get(f->state, floats(out, L * B * (R + H)), NULL));
    return LSTM_OK;
}

/* The state after a stream call, then its y. */
static lstm_status state_after(fixture *f, lstm_status status, unsigned char *out)
{
    if (status == LSTM_OK)
        assert_int_equal(lstm_state_get(f->state, floats(out, 0), floats(out, L * B * R)), LSTM_OK);
    return status;
}

static lstm_status run_stream(fixture *f, unsigned char *out)
{
    float *y = floats(out, L * B * (R + H));
    return state_after(f, lstm_model_stream(f->model, f->state, T, x, y), out);
}

static lstm_status run_step(fixture *f, unsigned char *out)
{
    float *y = floats(out, L * B * (R + H));
    return state_after(f, lstm_model_step(f->model, f->state, x, y), out);
}

static lstm_status run_keep_weights(fixture *f, unsigned char *out)
{
    (void)out;
    return lstm_state_keep_weights(f->state, 1);
}

static lstm_status run_workspace_keep_weights(fixture *f, unsigned char *out)
{
    (void)out;
    return lstm_workspace_keep_weights(f->bi_fresh, 1);
}

static lstm_status run_train_chunk(fixture *f, unsigned char *out)
{
    float *y = floats(out, L * B * (R + H));
    return state_after(f, lstm_model_forward_train_chunk(f->model, f->fresh, f->state, T, x, y),
                       out);
}

/* A stream chunk through the argument structs, every stream of its own
 * length, the final states copied out too. */
static lstm_status run_chunk(fixture *f, unsigned char *out, bool training)
{
    const lstm_sequences sequences = {sizeof sequences, T, B, LSTM_LAYOUT_MODEL, lengths};
    const lstm_inputs inputs = {sizeof inputs, x, NULL, NULL};
    const lstm_outputs outputs = {sizeof outputs, floats(out, 2 * L * B * (R + H)),
                                  floats(out, L * B * (R + H)), floats(out, L * B * (2 * R + H))};
    lstm_status status =
        training
            ? lstm_model_train_chunk(f->model, f->fresh, f->state, &sequences, &inputs, &outputs)
            : lstm_model_infer_stream(f->model, f->state, &sequences, &inputs, &outputs);
    return state_after(f, status, out);
}

static lstm_status run_infer_stream(fixture *f, unsigned char *out)
{
    return run_chunk(f, out, false);
}

static lstm_status run_train_chunk_args(fixture *f, unsigned char *out)
{
    return run_chunk(f, out, true);
}

/* Inference in int8 on a workspace never sized (its first call in a
 * reduced precision packs W_h, W_x and W_hr and quantizes every step's
 * rows in memory of its own), and a stream chunk in bf16. */
static lstm_status run_infer_int8(fixture *f, unsigned char *out)
{
    OK(lstm_workspace_set_precision(f->fresh, LSTM_PRECISION_INT8));
    return run_infer(f, out, false);
}

static lstm_status run_stream_bf16(fixture *f, unsigned char *out)
{
    OK(lstm_state_set_precision(f->state, LSTM_PRECISION_BF16));
    return run_chunk(f, out, false);
}

/* Training in bf16: its forward grows the workspace (the rounded rows). */
static lstm_status run_forward_train_bf16(fixture *f, unsigned char *out)
{
    OK(lstm_workspace_set_training_precision(f->fresh, LSTM_PRECISION_BF16));
    return run_forward_train(f, out);
}

static lstm_status run_optim_create(fixture *f, unsigned char *out)
{
    (void)f;
    lstm_optim_options options;
    lstm_optim *optim = NOT_WRITTEN;
    assert_int_equal(lstm_optim_options_init(&options, sizeof options, LSTM_OPTIM_RMSPROP),
                     LSTM_OK);
    lstm_status status = lstm_optim_create(&options, &optim);
    if (status != LSTM_OK) {
        assert_ptr_equal(optim, NOT_WRITTEN);
        return status;
    }
    const size_t count = lstm_optim_param_count(optim);
    memcpy(out, &count, sizeof count);
    lstm_optim_destroy(optim);
    return status;
}

/* With threads > 1, create starts the threads of every later step. */
static lstm_status run_optim_create_threads(fixture *f, unsigned char *out)
{
    (void)f;
    lstm_optim_options options = adam_options();
    lstm_optim *optim = NOT_WRITTEN;
    lstm_status status = lstm_optim_create(&options, &optim);
    if (status != LSTM_OK) {
        assert_ptr_equal(optim, NOT_WRITTEN);
        return status;
    }
    const size_t count = lstm_optim_param_count(optim);
    memcpy(out, &count, sizeof count);
    lstm_optim_destroy(optim);
    return status;
}

/* With threads = 0, the binding that reaches 2^20 parameters starts them
 * (one per online CPU: none on a machine with one). */
static lstm_status run_optim_bind_threads(fixture *f, unsigned char *out)
{
    (void)f;
    const size_t count = (size_t)1 << 20;
    lstm_optim_options options = adam_options();
    options.threads = 0;
    lstm_optim *optim;
    lstm_status status = lstm_optim_create(&options, &optim);
    if (status != LSTM_OK)
        return status;
    float *params = calloc(count, sizeof(float)), *grads = calloc(count, sizeof(float));
    assert_non_null(params);
    assert_non_null(grads);
    status = lstm_optim_add_buffer(optim, params, grads, count);
    if (status == LSTM_OK) {
        const size_t bound = lstm_optim_param_count(optim);
        memcpy(out, &bound, sizeof bound);
    }
    lstm_optim_destroy(optim);
    free(params);
    free(grads);
    return status;
}

static lstm_status run_optim_add_model(fixture *f, unsigned char *out)
{
    lstm_status status = lstm_optim_add_model(f->unbound, f->model);
    return status != LSTM_OK ? status : save_state_into(f->unbound, out);
}

static lstm_status run_optim_add_embedding(fixture *f, unsigned char *out)
{
    lstm_status status = lstm_optim_add_embedding(f->unbound, f->embedding);
    return status != LSTM_OK ? status : save_state_into(f->unbound, out);
}

/* Three binds (embedding, LSTM, head): a failure in the second or the third
 * must undo the ones before. */
static lstm_status run_optim_add_network(fixture *f, unsigned char *out)
{
    lstm_status status = lstm_optim_add_network(f->unbound, f->network);
    return status != LSTM_OK ? status : save_state_into(f->unbound, out);
}

static lstm_status run_optim_add_buffer(fixture *f, unsigned char *out)
{
    float *params, *grads;
    size_t count;
    assert_int_equal(lstm_dense_params(f->dense, &params, &count), LSTM_OK);
    assert_int_equal(lstm_dense_grads(f->dense, &grads, NULL), LSTM_OK);
    lstm_status status = lstm_optim_add_buffer(f->unbound, params, grads, count);
    return status != LSTM_OK ? status : save_state_into(f->unbound, out);
}

/* The model's parameters and gradients after an optimizer call. */
static lstm_status model_after(fixture *f, lstm_status status, unsigned char *out)
{
    const size_t count = lstm_model_param_count(f->model);
    if (status == LSTM_OK) {
        assert_int_equal(lstm_model_get_params(f->model, floats(out, 0), count), LSTM_OK);
        assert_int_equal(lstm_model_get_grads(f->model, floats(out, count), count), LSTM_OK);
    }
    return status;
}

static lstm_status run_optim_step(fixture *f, unsigned char *out)
{
    return model_after(f, lstm_optim_step(f->optim), out);
}

static lstm_status run_clip_norm(fixture *f, unsigned char *out)
{
    double norm = 0.0;
    lstm_status status = lstm_optim_clip_grad_norm(f->optim, 1e-3, &norm);
    memcpy(out, &norm, sizeof norm);
    return model_after(f, status, out + sizeof norm);
}

static lstm_status run_clip_value(fixture *f, unsigned char *out)
{
    return model_after(f, lstm_optim_clip_grad_value(f->optim, 1e-3), out);
}

static lstm_status run_optim_accessors(fixture *f, unsigned char *out)
{
    double lr = 0.0;
    uint64_t steps = 0;
    size_t bytes = 0;
    OK(lstm_optim_get_lr(f->optim, &lr));
    OK(lstm_optim_set_lr(f->optim, lr / 2));
    OK(lstm_optim_step_count(f->optim, &steps));
    OK(lstm_optim_state_size(f->optim, &bytes));
    OK(save_state_into(f->optim, out));
    OK(lstm_optim_load_state(f->optim, out, bytes));
    OK(lstm_optim_zero_grads(f->optim));
    memcpy(out + bytes, &steps, sizeof steps);
    return LSTM_OK;
}

static lstm_status run_schedules(fixture *f, unsigned char *out)
{
    (void)f;
    double lr[2];
    OK(lstm_schedule_step(0.1, 0.5, 3, 7, &lr[0]));
    OK(lstm_schedule_cosine(0.1, 0.001, 10, 4, &lr[1]));
    memcpy(out, lr, sizeof lr);
    return LSTM_OK;
}

static lstm_status run_dense_create(fixture *f, unsigned char *out)
{
    (void)f;
    lstm_dense *dense = NOT_WRITTEN;
    lstm_status status = lstm_dense_create(R, CLASSES, &dense);
    if (status != LSTM_OK) {
        assert_ptr_equal(dense, NOT_WRITTEN);
        return status;
    }
    float *params;
    size_t count;
    assert_int_equal(lstm_dense_init(dense, 4), LSTM_OK);
    assert_int_equal(lstm_dense_params(dense, &params, &count), LSTM_OK);
    memcpy(out, params, count * sizeof(float));
    lstm_dense_destroy(dense);
    return status;
}

static lstm_status run_dense(fixture *f, unsigned char *out)
{
    float *params, *grads, *z = floats(out, 0), *dx = floats(out, B * CLASSES);
    size_t count;
    OK(lstm_dense_zero_grads(f->dense));
    OK(lstm_dense_forward(f->dense, B, dense_x, z));
    OK(lstm_dense_backward(f->dense, B, dense_x, dense_dz, dx));
    OK(lstm_dense_params(f->dense, &params, &count));
    OK(lstm_dense_grads(f->dense, &grads, NULL));
    assert_int_equal(lstm_dense_param_count(f->dense), count);
    memcpy(floats(out, B * (CLASSES + R)), grads, count * sizeof(float));
    OK(lstm_dense_init(f->dense, 8));
    return LSTM_OK;
}

static lstm_status run_embedding_create(fixture *f, unsigned char *out)
{
    (void)f;
    const lstm_embedding_config config = embedding_config();
    lstm_embedding *embedding = NOT_WRITTEN;
    lstm_status status = lstm_embedding_create(&config, &embedding);
    if (status != LSTM_OK) {
        assert_ptr_equal(embedding, NOT_WRITTEN);
        return status;
    }
    float *params;
    size_t count;
    assert_int_equal(lstm_embedding_init(embedding, 4), LSTM_OK);
    assert_int_equal(lstm_embedding_params(embedding, &params, &count), LSTM_OK);
    memcpy(out, params, count * sizeof(float));
    lstm_embedding_destroy(embedding);
    return status;
}

/* The touched rows after a backward: the count, then the rows. */
static void touched_into(lstm_embedding *embedding, unsigned char *out)
{
    const uint32_t *rows;
    size_t touched;
    OK(lstm_embedding_touched_rows(embedding, &rows, &touched));
    memcpy(out, &touched, sizeof touched);
    memcpy(out + sizeof touched, rows, touched * sizeof(uint32_t));
}

/* Its first backward allocates the touched set (the only call that may
 * fail, so it comes first: nothing else is written before it). */
static lstm_status run_embedding(fixture *f, unsigned char *out)
{
    float *params, *grads, *looked_up = floats(out, 0);
    size_t count;
    lstm_embedding_config config;
    lstm_status status = lstm_embedding_backward(f->embedding, IDS, token_ids, embed_dout);
    if (status != LSTM_OK)
        return status;
    OK(lstm_embedding_config_init(&config, sizeof config));
    OK(lstm_embedding_get_config(f->embedding, &config));
    OK(lstm_embedding_forward(f->embedding, IDS, token_ids, looked_up));
    OK(lstm_embedding_params(f->embedding, &params, &count));
    OK(lstm_embedding_grads(f->embedding, &grads, NULL));
    assert_int_equal(lstm_embedding_param_count(f->embedding), count);
    memcpy(floats(out, IDS * EMBED), grads, count * sizeof(float));
    const int64_t fields[4] = {(int64_t)config.num_embeddings, (int64_t)config.embedding_dim,
                               (int64_t)config.flags, config.padding_idx};
    memcpy(floats(out, IDS * EMBED + count), fields, sizeof fields);
    touched_into(f->embedding, (unsigned char *)floats(out, IDS * EMBED + count + 8));
    OK(lstm_embedding_zero_touched_grads(f->embedding));
    OK(lstm_embedding_zero_grads(f->embedding));
    OK(lstm_embedding_init(f->embedding, 8));
    return LSTM_OK;
}

/* A backward naming more new rows than the touched list holds grows it. */
static lstm_status run_embedding_growing(fixture *f, unsigned char *out)
{
    static const int64_t new_rows[4] = {1, 3, 5, 1};
    const float dout[4 * EMBED] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    lstm_status status = lstm_embedding_backward(f->touched, 4, new_rows, dout);
    if (status == LSTM_OK)
        touched_into(f->touched, out);
    return status;
}

/* A lazy optimizer's per-step calls: nothing allocated, no thread started. */
static lstm_status run_lazy_step(fixture *f, unsigned char *out)
{
    double norm = 0.0;
    float *params;
    size_t count;
    OK(lstm_embedding_backward(f->touched, IDS, token_ids, embed_dout));
    OK(lstm_optim_clip_grad_norm(f->lazy, 0.5, &norm));
    OK(lstm_optim_clip_grad_value(f->lazy, 0.1));
    OK(lstm_optim_step(f->lazy));
    OK(lstm_optim_zero_grads(f->lazy));
    OK(lstm_embedding_params(f->touched, &params, &count));
    memcpy(out, &norm, sizeof norm);
    memcpy(out + sizeof norm, params, count * sizeof(float));
    touched_into(f->touched, out + sizeof norm + count * sizeof(float));
    return LSTM_OK;
}

static lstm_status run_sequences_losses(fixture *f, unsigned char *out)
{
    (void)f;
    float *last = floats(out, 0), *dy_full = floats(out, B * R);
    float *dz = floats(out, B * R + T * B * R);
    double loss[3];
    OK(lstm_sequence_last(T, B, R, 0, lengths, dy, last));
    OK(lstm_sequence_last_backward(T, B, R, 0, lengths, last, dy_full));
    OK(lstm_loss_cross_entropy(B, CLASSES, dense_dz, classes, -1, &loss[0], dz));
    OK(lstm_loss_bce_with_logits(B * CLASSES, dense_dz, targets01, &loss[1], dz + B * CLASSES));
    OK(lstm_loss_mse(B * CLASSES, dense_dz, targets01, &loss[2], dz + 2 * B * CLASSES));
    memcpy(dz + 3 * B * CLASSES, loss, sizeof loss);
    return LSTM_OK;
}

/* CTC on x read as logits of I classes: one scratch block per loss call;
 * greedy decoding allocates nothing. */
static lstm_status run_ctc(fixture *f, unsigned char *out)
{
    (void)f;
    static const int32_t ctc_labels[] = {1, 1, 2, 3, 4};
    static const size_t ctc_label_lengths[B] = {3, 1, 1};
    lstm_ctc_config config;
    OK(lstm_ctc_config_init(&config, sizeof config));
    config.classes = I;
    lstm_sequences sequences = LSTM_SEQUENCES_INIT;
    sequences.steps = T;
    sequences.batch = B;
    sequences.lengths = lengths;
    double *loss = (double *)(void *)out;
    lstm_ctc_outputs outputs;
    OK(lstm_ctc_outputs_init(&outputs, sizeof outputs));
    outputs.loss = loss;
    outputs.losses = loss + 1;
    outputs.grad = floats(out, (1 + B) * 2);
    lstm_status status =
        lstm_ctc_loss(&config, &sequences, x, ctc_labels, ctc_label_lengths, &outputs);
    if (status != LSTM_OK)
        return status;
    int32_t *decoded = (int32_t *)(void *)(outputs.grad + T * B * I);
    size_t *decoded_lengths = (size_t *)(void *)(decoded + T * B + 2);
    OK(lstm_ctc_greedy_decode(&config, &sequences, x, decoded, decoded_lengths));
    return LSTM_OK;
}

static lstm_status run_network_create(fixture *f, unsigned char *out)
{
    (void)f;
    lstm_network *network = NOT_WRITTEN;
    lstm_status status = create_network(&network);
    if (status != LSTM_OK) {
        assert_ptr_equal(network, NOT_WRITTEN);
        return status;
    }
    lstm_network_config config;
    OK(lstm_network_config_init(&config, sizeof config));
    OK(lstm_network_get_config(network, &config));
    assert_int_equal(config.head_size, CLASSES);
    OK(lstm_network_init(network, 4, 0));
    OK(lstm_network_zero_grads(network));
    float *params;
    size_t count, used = 0;
    OK(lstm_embedding_params(lstm_network_embedding(network), &params, &count));
    memcpy(floats(out, used), params, count * sizeof(float));
    used += count;
    OK(lstm_model_params(lstm_network_model(network), &params, &count));
    memcpy(floats(out, used), params, count * sizeof(float));
    used += count;
    OK(lstm_dense_params(lstm_network_head(network), &params, &count));
    memcpy(floats(out, used), params, count * sizeof(float));
    assert_int_equal(used + count, lstm_network_param_count(network));
    lstm_network_destroy(network);
    return status;
}

static lstm_status net_state_after(fixture *f, lstm_status status, float *out)
{
    if (status == LSTM_OK)
        assert_int_equal(lstm_state_get(f->net_state, out, out + L * B * R), LSTM_OK);
    return status;
}

/* A network forward of every kind, the output, hT and cT into out. */
static lstm_status run_network_forward(fixture *f, unsigned char *out, int kind)
{
    lstm_sequences sequences;
    lstm_network_inputs inputs;
    lstm_network_outputs outputs;
    OK(lstm_sequences_init(&sequences, sizeof sequences));
    OK(lstm_network_inputs_init(&inputs, sizeof inputs));
    OK(lstm_network_outputs_init(&outputs, sizeof outputs));
    sequences.steps = T;
    sequences.batch = B;
    sequences.lengths = lengths;
    inputs.tokens = net_tokens;
    outputs.output = floats(out, 0);
    outputs.hT = floats(out, T * B * CLASSES);
    outputs.cT = floats(out, T * B * CLASSES + L * B * R);
    switch (kind) {
    case 0: return lstm_network_infer(f->tagger, f->net_fresh, &sequences, &inputs, &outputs);
    case 1:
        return lstm_network_train_forward(f->tagger, f->net_fresh, &sequences, &inputs, &outputs);
    case 2:
        return net_state_after(
            f, lstm_network_infer_stream(f->tagger, f->net_state, &sequences, &inputs, &outputs),
            floats(out, T * B * CLASSES + L * B * (R + H)));
    default: break;
    }
    return net_state_after(f,
                           lstm_network_train_chunk(f->tagger, f->net_fresh, f->net_state,
                                                    &sequences, &inputs, &outputs),
                           floats(out, T * B * CLASSES + L * B * (R + H)));
}

static lstm_status run_network_infer(fixture *f, unsigned char *out)
{
    lstm_status status = run_network_forward(f, out, 0);
    if (status != LSTM_OK)
        return status;
    lstm_targets targets;
    OK(lstm_targets_init(&targets, sizeof targets));
    targets.classes = net_classes;
    const lstm_sequences sequences = {sizeof sequences, T, B, LSTM_LAYOUT_MODEL, lengths};
    double loss = 0.0;
    OK(lstm_network_loss(f->tagger, &sequences, floats(out, 0), &targets, &loss));
    memcpy(floats(out, T * B * CLASSES + L * B * (R + H)), &loss, sizeof loss);
    return LSTM_OK;
}

/* A network's inference in int8 and stream in bf16: its embedding's rows
 * and its head's product in the precision too (the head's packing in the
 * pass's scratch). */
static lstm_status run_network_infer_int8(fixture *f, unsigned char *out)
{
    OK(lstm_workspace_set_precision(f->net_fresh, LSTM_PRECISION_INT8));
    return run_network_forward(f, out, 0);
}

/* The same on a workspace that keeps weights: two calls, the second from
 * the LSTM's and the head's packings kept by the first (which allocates
 * all), its output recorded. */
static lstm_status run_network_infer_int8_kept(fixture *f, unsigned char *out)
{
    OK(lstm_workspace_set_precision(f->net_kept, LSTM_PRECISION_INT8));
    const lstm_sequences sequences = {sizeof sequences, T, B, LSTM_LAYOUT_MODEL, lengths};
    lstm_network_inputs inputs = LSTM_NETWORK_INPUTS_INIT;
    inputs.tokens = net_tokens;
    lstm_network_outputs outputs = LSTM_NETWORK_OUTPUTS_INIT;
    outputs.output = floats(out, 0);
    lstm_status status = lstm_network_infer(f->tagger, f->net_kept, &sequences, &inputs, &outputs);
    if (status == LSTM_OK)
        status = lstm_network_infer(f->tagger, f->net_kept, &sequences, &inputs, &outputs);
    return status;
}

static lstm_status run_network_stream_bf16(fixture *f, unsigned char *out)
{
    OK(lstm_state_set_precision(f->net_state, LSTM_PRECISION_BF16));
    return run_network_forward(f, out, 2);
}

static lstm_status run_network_train_forward(fixture *f, unsigned char *out)
{
    return run_network_forward(f, out, 1);
}

static lstm_status run_network_stream(fixture *f, unsigned char *out)
{
    return run_network_forward(f, out, 2);
}

static lstm_status run_network_chunk(fixture *f, unsigned char *out)
{
    return run_network_forward(f, out, 3);
}

static lstm_status run_network_backward(fixture *f, unsigned char *out)
{
    lstm_targets targets;
    OK(lstm_targets_init(&targets, sizeof targets));
    targets.classes = net_classes;
    double loss = 0.0;
    lstm_status status = lstm_network_train_backward(f->tagger, f->net_trained, &targets, &loss);
    if (status != LSTM_OK)
        return status;
    memcpy(out, &loss, sizeof loss);
    float *grads;
    size_t count;
    OK(lstm_model_grads(lstm_network_model(f->tagger), &grads, &count));
    memcpy(floats(out, 2), grads, count * sizeof(float));
    return LSTM_OK;
}

static lstm_status run_save_buffer(fixture *f, unsigned char *out)
{
    size_t size = 0;
    lstm_status status = lstm_model_save_buffer(f->model, f->optim, out, OUT_BYTES, &size);
    assert_true(size <= OUT_BYTES);
    return status;
}

/* Copies the file at path to out. */
static void read_back(unsigned char *out)
{
    FILE *file = fopen(path, "rb");
    assert_non_null(file);
    size_t got = fread(out, 1, OUT_BYTES, file);
    assert_true(got > 0 && got < OUT_BYTES);
    fclose(file);
}

static lstm_status run_save(fixture *f, unsigned char *out)
{
    lstm_status status = lstm_model_save(f->model, f->optim, path);
    if (status == LSTM_OK)
        read_back(out);
    return status;
}

/* The parameters of a loaded model, which is then freed. */
static lstm_status loaded(lstm_status status, lstm_model *model, unsigned char *out)
{
    if (status != LSTM_OK) {
        assert_ptr_equal(model, NOT_WRITTEN);
        return status;
    }
    const size_t count = lstm_model_param_count(model);
    assert_int_equal(lstm_model_get_params(model, floats(out, 0), count), LSTM_OK);
    lstm_model_destroy(model);
    return status;
}

static lstm_status run_load_buffer(fixture *f, unsigned char *out)
{
    lstm_model *model = NOT_WRITTEN;
    lstm_status status = lstm_model_load_buffer(f->file, f->file_size, &model);
    return loaded(status, model, out);
}

static lstm_status run_load(fixture *f, unsigned char *out)
{
    (void)f;
    lstm_model *model = NOT_WRITTEN;
    lstm_status status = lstm_model_load(path, &model);
    return loaded(status, model, out);
}

static lstm_status run_optim_load_buffer(fixture *f, unsigned char *out)
{
    lstm_status status = lstm_optim_load_buffer(f->optim, f->file, f->file_size);
    return status != LSTM_OK ? status : save_state_into(f->optim, out);
}

static lstm_status run_optim_load_file(fixture *f, unsigned char *out)
{
    lstm_status status = lstm_optim_load_file(f->optim, path);
    return status != LSTM_OK ? status : save_state_into(f->optim, out);
}

static lstm_status run_optim_load(fixture *f, unsigned char *out)
{
    lstm_status status = lstm_optim_load(f->optim, path);
    return status != LSTM_OK ? status : save_state_into(f->optim, out);
}

static lstm_status run_network_create_features(fixture *f, unsigned char *out)
{
    (void)f;
    const lstm_config lstm = bi_config();
    lstm_network_config config;
    OK(lstm_network_config_init(&config, sizeof config));
    config.lstm = &lstm;
    config.head = LSTM_HEAD_EVERY_STEP;
    config.loss = LSTM_LOSS_MSE;
    config.head_size = 2;
    lstm_network *network = NOT_WRITTEN;
    lstm_status status = lstm_network_create(&config, &network);
    if (status != LSTM_OK) {
        assert_ptr_equal(network, NOT_WRITTEN);
        return status;
    }
    assert_int_equal(lstm_network_init(network, 3, 0), LSTM_OK);
    const size_t count = lstm_network_param_count(network);
    const size_t lstm_count = lstm_model_param_count(lstm_network_model(network));
    assert_int_equal(lstm_model_get_params(lstm_network_model(network), floats(out, 0), lstm_count),
                     LSTM_OK);
    memcpy(floats(out, lstm_count), &count, sizeof count);
    lstm_network_destroy(network);
    return status;
}

/* Calls that allocate nothing, their results in out. */
static lstm_status run_network_accessors(fixture *f, unsigned char *out)
{
    lstm_network_config config;
    OK(lstm_network_config_init(&config, sizeof config));
    OK(lstm_network_get_config(f->network, &config));
    assert_non_null(config.embedding);
    assert_non_null(lstm_network_embedding(f->network));
    assert_non_null(lstm_network_model(f->network));
    assert_non_null(lstm_network_head(f->network));
    OK(lstm_network_zero_grads(f->network));
    const char *key;
    const void *value;
    size_t size, at = 0;
    for (size_t n = 0; n < lstm_network_meta_count(f->network); n++) {
        OK(lstm_network_meta_key(f->network, n, &key));
        OK(lstm_network_get_meta(f->network, key, NULL, &value, &size));
        memcpy(out + at, value, size);
        at += size;
    }
    assert_int_equal(lstm_network_remove_meta(f->network, "none"), LSTM_E_NOT_FOUND);
    OK(lstm_network_remove_meta(f->network, "key 5"));
    out[at] = (unsigned char)lstm_network_meta_count(f->network);
    return LSTM_OK;
}

/* A network's metadata, one after another in out. */
static void meta_into(lstm_network *network, unsigned char *out)
{
    size_t at = 0;
    for (size_t n = 0; n < lstm_network_meta_count(network); n++) {
        const char *key;
        const void *value;
        size_t size;
        OK(lstm_network_meta_key(network, n, &key));
        OK(lstm_network_get_meta(network, key, NULL, &value, &size));
        memcpy(out + at, key, strlen(key) + 1);
        at += strlen(key) + 1;
        memcpy(out + at, value, size);
        at += size;
    }
}

/* A new key: the table grows. */
static lstm_status run_network_add_meta(fixture *f, unsigned char *out)
{
    lstm_status status = lstm_network_set_meta(f->network, "new", LSTM_META_BYTES, "\1\2", 2);
    if (status == LSTM_OK)
        meta_into(f->network, out);
    return status;
}

/* A key's value replaced. */
static lstm_status run_network_replace_meta(fixture *f, unsigned char *out)
{
    lstm_status status = lstm_network_set_meta(f->network, "key 1", LSTM_META_TEXT, "replaced", 8);
    if (status == LSTM_OK)
        meta_into(f->network, out);
    return status;
}

static lstm_status run_network_save_buffer(fixture *f, unsigned char *out)
{
    size_t size = 0;
    lstm_status status = lstm_network_save_buffer(f->network, f->optim, out, OUT_BYTES, &size);
    assert_true(size <= OUT_BYTES);
    return status;
}

static lstm_status run_network_save(fixture *f, unsigned char *out)
{
    lstm_status status = lstm_network_save(f->network, f->optim, path);
    if (status == LSTM_OK)
        read_back(out);
    return status;
}

/* Quantized files (format 1.2): saved to memory and to a file, and a
 * model's int8 file loaded (its weights kept as stored: one more block). */
static lstm_status run_save_quantized_buffer(fixture *f, unsigned char *out)
{
    size_t size = 0;
    lstm_status status =
        lstm_model_save_quantized_buffer(f->model, LSTM_PRECISION_INT8, out, OUT_BYTES, &size);
    assert_true(size <= OUT_BYTES);
    return status;
}

static lstm_status run_save_quantized(fixture *f, unsigned char *out)
{
    lstm_status status = lstm_model_save_quantized(f->model, LSTM_PRECISION_BF16, path);
    if (status == LSTM_OK)
        read_back(out);
    return status;
}

static lstm_status run_network_save_quantized_buffer(fixture *f, unsigned char *out)
{
    size_t size = 0;
    lstm_status status =
        lstm_network_save_quantized_buffer(f->network, LSTM_PRECISION_BF16, out, OUT_BYTES, &size);
    assert_true(size <= OUT_BYTES);
    return status;
}

static lstm_status run_network_save_quantized(fixture *f, unsigned char *out)
{
    lstm_status status = lstm_network_save_quantized(f->network, LSTM_PRECISION_INT8, path);
    if (status == LSTM_OK)
        read_back(out);
    return status;
}

static lstm_status run_load_quantized(fixture *f, unsigned char *out)
{
    static unsigned char file[OUT_BYTES];
    size_t size = 0;
    lstm_status status =
        lstm_model_save_quantized_buffer(f->model, LSTM_PRECISION_INT8, file, sizeof file, &size);
    if (status != LSTM_OK)
        return status;
    lstm_model *model = NOT_WRITTEN;
    status = lstm_model_load_buffer(file, size, &model);
    return loaded(status, model, out);
}

/* The parameters and metadata of a loaded network, which is then freed. */
static lstm_status network_loaded(lstm_status status, lstm_network *network, unsigned char *out)
{
    if (status != LSTM_OK) {
        assert_ptr_equal(network, NOT_WRITTEN);
        return status;
    }
    snapshot s = {NULL, 0, 0};
    record_network(&s, network);
    assert_true(s.size <= OUT_BYTES);
    memcpy(out, s.bytes, s.size);
    free(s.bytes);
    lstm_network_destroy(network);
    return status;
}

static lstm_status run_network_load_buffer(fixture *f, unsigned char *out)
{
    lstm_network *network = NOT_WRITTEN;
    lstm_status status = lstm_network_load_buffer(f->net_file, f->net_file_size, &network);
    return network_loaded(status, network, out);
}

/* A token network's int8 file (EMBQ, HDQ ): its embedding's and head's
 * rows kept as stored, one more block. */
static lstm_status run_network_load_quantized(fixture *f, unsigned char *out)
{
    static unsigned char file[OUT_BYTES];
    size_t size = 0;
    lstm_status status = lstm_network_save_quantized_buffer(f->tagger, LSTM_PRECISION_INT8, file,
                                                            sizeof file, &size);
    if (status != LSTM_OK)
        return status;
    lstm_network *network = NOT_WRITTEN;
    status = lstm_network_load_buffer(file, size, &network);
    return network_loaded(status, network, out);
}

static lstm_status run_network_load(fixture *f, unsigned char *out)
{
    (void)f;
    lstm_network *network = NOT_WRITTEN;
    lstm_status status = lstm_network_load(net_path, &network);
    return network_loaded(status, network, out);
}

/* A network's file through the model's loader: the LSTM alone. */
static lstm_status run_network_file_as_model(fixture *f, unsigned char *out)
{
    lstm_model *model = NOT_WRITTEN;
    lstm_status status = lstm_model_load_buffer(f->net_file, f->net_file_size, &model);
    return loaded(status, model, out);
}

static const scenario scenarios[] = {
    {"constants",
     "lstm_config_init lstm_version_number lstm_version_string lstm_strerror "
     "lstm_error_message",
     run_constants},
    {"model create", "lstm_model_create lstm_model_destroy", run_model_create},
    {"bidirectional model create", "lstm_model_create", run_bi_model_create},
    {"model accessors",
     "lstm_model_get_config lstm_model_tensor lstm_model_params "
     "lstm_model_grads lstm_model_get_grads lstm_model_zero_grads "
     "lstm_model_init lstm_model_set_params lstm_model_get_params "
     "lstm_model_param_count",
     run_model_accessors},
    {"workspace create", "lstm_workspace_create lstm_workspace_destroy", run_workspace_create},
    {"workspace size, seed", "lstm_workspace_size lstm_workspace_set_seed",
     run_workspace_size_seed},
    {"workspace reserve", "lstm_workspace_reserve", run_workspace_reserve},
    {"forward", "lstm_model_forward", run_forward},
    {"inference, argument structs",
     "lstm_sequences_init lstm_inputs_init lstm_outputs_init "
     "lstm_model_infer",
     run_model_infer},
    {"training forward, argument structs", "lstm_model_train_forward", run_train_forward},
    {"backward, argument structs",
     "lstm_output_grads_init lstm_input_grads_init "
     "lstm_model_train_backward",
     run_train_backward},
    {"stream, argument structs", "lstm_model_infer_stream", run_infer_stream},
    {"inference in int8", "lstm_workspace_set_precision", run_infer_int8},
    {"stream in bf16", "lstm_state_set_precision", run_stream_bf16},
    {"training chunk, argument structs", "lstm_model_train_chunk", run_train_chunk_args},
    {"training forward in bf16", "lstm_workspace_set_training_precision", run_forward_train_bf16},

    {"bidirectional forward", "lstm_model_forward", run_bi_forward},
    {"training forward", "lstm_model_forward_train", run_forward_train},
    {"training forward, growing", "lstm_model_forward_train", run_forward_growing},
    {"backward", "lstm_model_backward", run_backward},
    {"state create", "lstm_state_create lstm_state_destroy", run_state_create},
    {"state accessors", "lstm_state_get lstm_state_reset lstm_state_set", run_state_accessors},
    {"stream", "lstm_model_stream", run_stream},
    {"step", "lstm_model_step", run_step},
    {"keep the packed weights", "lstm_state_keep_weights", run_keep_weights},
    {"keep a workspace's packed weights", "lstm_workspace_keep_weights",
     run_workspace_keep_weights},
    {"training chunk", "lstm_model_forward_train_chunk", run_train_chunk},
    {"optimizer create",
     "lstm_optim_options_init lstm_optim_create lstm_optim_destroy "
     "lstm_optim_param_count",
     run_optim_create},
    {"optimizer create, threads", "lstm_optim_create lstm_optim_destroy", run_optim_create_threads},
    {"optimizer binding, threads",
     "lstm_optim_create lstm_optim_add_buffer "
     "lstm_optim_param_count lstm_optim_destroy",
     run_optim_bind_threads},
    {"optimizer add model", "lstm_optim_add_model", run_optim_add_model},
    {"optimizer add buffer", "lstm_optim_add_buffer", run_optim_add_buffer},
    {"optimizer add embedding", "lstm_optim_add_embedding", run_optim_add_embedding},
    {"optimizer add network", "lstm_optim_add_network", run_optim_add_network},
    {"optimizer step", "lstm_optim_step", run_optim_step},
    {"clip by norm", "lstm_optim_clip_grad_norm", run_clip_norm},
    {"clip by value", "lstm_optim_clip_grad_value", run_clip_value},
    {"optimizer accessors",
     "lstm_optim_get_lr lstm_optim_set_lr lstm_optim_step_count "
     "lstm_optim_state_size lstm_optim_save_state "
     "lstm_optim_load_state lstm_optim_zero_grads",
     run_optim_accessors},
    {"schedules", "lstm_schedule_step lstm_schedule_cosine", run_schedules},
    {"dense create", "lstm_dense_create lstm_dense_destroy lstm_dense_init", run_dense_create},
    {"dense layer",
     "lstm_dense_zero_grads lstm_dense_forward lstm_dense_backward "
     "lstm_dense_params lstm_dense_grads lstm_dense_param_count lstm_dense_init",
     run_dense},
    {"embedding create",
     "lstm_embedding_config_init lstm_embedding_create lstm_embedding_destroy "
     "lstm_embedding_init lstm_embedding_params",
     run_embedding_create},
    {"embedding layer",
     "lstm_embedding_config_init lstm_embedding_get_config lstm_embedding_zero_grads "
     "lstm_embedding_forward lstm_embedding_backward lstm_embedding_params "
     "lstm_embedding_grads lstm_embedding_param_count lstm_embedding_init "
     "lstm_embedding_touched_rows lstm_embedding_zero_touched_grads",
     run_embedding},
    {"embedding backward, growing", "lstm_embedding_backward lstm_embedding_touched_rows",
     run_embedding_growing},
    {"lazy optimizer step",
     "lstm_embedding_backward lstm_optim_clip_grad_norm lstm_optim_clip_grad_value "
     "lstm_optim_step lstm_optim_zero_grads",
     run_lazy_step},
    {"sequences and losses",
     "lstm_sequence_last lstm_sequence_last_backward "
     "lstm_loss_cross_entropy lstm_loss_bce_with_logits lstm_loss_mse",
     run_sequences_losses},
    {"ctc", "lstm_ctc_config_init lstm_ctc_outputs_init lstm_ctc_loss lstm_ctc_greedy_decode",
     run_ctc},
    {"network create",
     "lstm_network_config_init lstm_network_create lstm_network_get_config lstm_network_init "
     "lstm_network_zero_grads lstm_network_embedding lstm_network_model lstm_network_head "
     "lstm_network_param_count lstm_network_destroy",
     run_network_create},
    {"network inference",
     "lstm_network_inputs_init lstm_network_outputs_init lstm_network_infer lstm_targets_init "
     "lstm_network_loss",
     run_network_infer},
    {"network training forward", "lstm_network_train_forward", run_network_train_forward},
    {"network backward", "lstm_targets_init lstm_network_train_backward", run_network_backward},
    {"network stream", "lstm_network_infer_stream", run_network_stream},
    {"network inference in int8", "lstm_network_infer", run_network_infer_int8},
    {"network inference in int8, weights kept", "lstm_network_infer", run_network_infer_int8_kept},
    {"network stream in bf16", "lstm_network_infer_stream", run_network_stream_bf16},
    {"network training chunk", "lstm_network_train_chunk", run_network_chunk},
    {"save to memory", "lstm_model_save_buffer", run_save_buffer},
    {"save to a file", "lstm_model_save", run_save},
    {"load from memory", "lstm_model_load_buffer", run_load_buffer},
    {"load from a file", "lstm_model_load", run_load},
    {"optimizer load from memory", "lstm_optim_load_buffer", run_optim_load_buffer},
    {"optimizer load from a file", "lstm_optim_load_file", run_optim_load_file},
    {"optimizer load", "lstm_optim_load", run_optim_load},
    {"network create (features, bidirectional)",
     "lstm_network_config_init lstm_network_create lstm_network_init "
     "lstm_network_param_count lstm_network_destroy",
     run_network_create_features},
    {"network accessors",
     "lstm_network_get_config lstm_network_embedding lstm_network_model "
     "lstm_network_head lstm_network_zero_grads lstm_network_meta_count "
     "lstm_network_meta_key lstm_network_get_meta lstm_network_remove_meta",
     run_network_accessors},
    {"network metadata, new key", "lstm_network_set_meta", run_network_add_meta},
    {"network metadata, replaced", "lstm_network_set_meta", run_network_replace_meta},
    {"network save to memory", "lstm_network_save_buffer", run_network_save_buffer},
    {"network save to a file", "lstm_network_save", run_network_save},
    {"quantized save to memory", "lstm_model_save_quantized_buffer", run_save_quantized_buffer},
    {"quantized save to a file", "lstm_model_save_quantized", run_save_quantized},
    {"network quantized save to memory", "lstm_network_save_quantized_buffer",
     run_network_save_quantized_buffer},
    {"network quantized save to a file", "lstm_network_save_quantized", run_network_save_quantized},
    {"quantized load", "lstm_model_load_buffer", run_load_quantized},
    {"network load from memory", "lstm_network_load_buffer", run_network_load_buffer},
    {"network quantized load", "lstm_network_load_buffer", run_network_load_quantized},
    {"network load from a file", "lstm_network_load", run_network_load},
    {"network file as a model", "lstm_model_load_buffer", run_network_file_as_model},
};
enum { SCENARIOS = sizeof scenarios / sizeof scenarios[0] };

/* A training step's calls to the optimizer: they must pass no fault point,
 * neither allocating nor starting a thread. */
static bool per_step(const scenario *s)
{
    return s->run == run_optim_step || s->run == run_clip_norm || s->run == run_clip_value ||
           s->run == run_optim_accessors || s->run == run_lazy_step;
}

/* ---- the failure loop -------------------------------------------------------- */

typedef struct tally {
    uint64_t points, out_of_memory, absorbed;
} tally;

/* Sets the detail message to a known text, to see that a failure replaces it. */
static const char *stale_message(void)
{
    assert_int_equal(lstm_model_create(NULL, NULL), LSTM_E_NULL);
    return "config is NULL";
}

static void exercise(const scenario *s, tally *total)
{
    const size_t baseline = lstm__mem_live_count();
    unsigned char *expected = malloc(OUT_BYTES), *out = malloc(OUT_BYTES);
    assert_non_null(expected);
    assert_non_null(out);
    fixture f;

    fixture_setup(&f);
    memset(expected, SENTINEL, OUT_BYTES);
    const uint64_t first = lstm__fault_point_count();
    assert_int_equal(s->run(&f, expected), LSTM_OK);
    const uint64_t points = lstm__fault_point_count() - first;
    fixture_teardown(&f);
    assert_int_equal(lstm__mem_live_count(), baseline);
    if (per_step(s) && points != 0)
        fail_msg("%s: %llu fault points; a step's call must neither allocate nor start a "
                 "thread",
                 s->name, (unsigned long long)points);

    tally mine = {points, 0, 0};
    for (uint64_t k = 1; k <= points; k++) {
        fixture_setup(&f);
        snapshot before = take_snapshot(&f);
        const char *stale = stale_message();
        const size_t live = lstm__mem_live_count();
        memset(out, SENTINEL, OUT_BYTES);

        lstm__fault_fail_at(k);
        lstm_status status = s->run(&f, out);
        lstm__fault_fail_at(0);

        if (status == LSTM_E_NOMEM) {
            mine.out_of_memory++;
            assert_string_not_equal(lstm_error_message(), stale);
            assert_int_equal(lstm__mem_live_count(), live);
            for (size_t n = 0; n < OUT_BYTES; n++)
                if (out[n] != SENTINEL)
                    fail_msg("%s, point %llu: output byte %zu written by a failed call", s->name,
                             (unsigned long long)k, n);
            snapshot after = take_snapshot(&f);
            assert_int_equal(after.size, before.size);
            if (memcmp(after.bytes, before.bytes, before.size) != 0)
                fail_msg("%s, point %llu: a handle changed in a failed call", s->name,
                         (unsigned long long)k);
            free(after.bytes);
            /* Still usable: the same call now succeeds, with the same result. */
            assert_int_equal(s->run(&f, out), LSTM_OK);
        } else {
            if (status != LSTM_OK)
                fail_msg("%s, point %llu: status %d (%s)", s->name, (unsigned long long)k,
                         (int)status, lstm_error_message());
            mine.absorbed++;
        }
        if (memcmp(out, expected, OUT_BYTES) != 0)
            fail_msg("%s, point %llu: the outputs differ from a run without failure", s->name,
                     (unsigned long long)k);
        free(before.bytes);
        fixture_teardown(&f);
        assert_int_equal(lstm__mem_live_count(), baseline);
    }
    print_message("%-28s %3llu points: %3llu out of memory, %3llu optional\n", s->name,
                  (unsigned long long)mine.points, (unsigned long long)mine.out_of_memory,
                  (unsigned long long)mine.absorbed);
    total->points += mine.points;
    total->out_of_memory += mine.out_of_memory;
    total->absorbed += mine.absorbed;
    free(expected);
    free(out);
}

static void test_every_failure_point(void **state)
{
    (void)state;
    tally total = {0, 0, 0};
    for (size_t n = 0; n < SCENARIOS; n++)
        exercise(&scenarios[n], &total);
    print_message("%zu scenarios, %llu failure points exercised: %llu gave LSTM_E_NOMEM, "
                  "%llu were optional (a worker thread) and changed no result\n",
                  (size_t)SCENARIOS, (unsigned long long)total.points,
                  (unsigned long long)total.out_of_memory, (unsigned long long)total.absorbed);
    /* The calls that allocate must have been reached: a model, a
     * workspace, a state, an optimizer, a dense layer and files. */
    assert_true(total.out_of_memory >= 40);
}

/* A name of src/lstm.map appears as a word in some scenario's calls. */
static bool covered(const char *name)
{
    const size_t length = strlen(name);
    for (size_t n = 0; n < SCENARIOS; n++)
        for (const char *at = scenarios[n].calls; (at = strstr(at, name)) != NULL; at += length)
            if ((at == scenarios[n].calls || at[-1] == ' ') &&
                (at[length] == ' ' || at[length] == '\0'))
                return true;
    return false;
}

static void test_every_public_call_is_covered(void **state)
{
    (void)state;
    FILE *map = fopen(LSTM_MAP, "r");
    assert_non_null(map);
    char line[256], name[128];
    size_t names = 0, missing = 0;
    while (fgets(line, sizeof line, map) != NULL) {
        if (sscanf(line, " %127[a-z0-9_];", name) != 1 || strncmp(name, "lstm_", 5) != 0)
            continue;
        names++;
        if (!covered(name)) {
            print_error("%s is exported but in no scenario of this test\n", name);
            missing++;
        }
    }
    fclose(map);
    assert_true(names >= 60);
    assert_int_equal(missing, 0);
}

static int make_directory(void **state)
{
    (void)state;
    make_inputs();
    const char *base = getenv("TMPDIR");
    snprintf(directory, sizeof directory, "%s/lstm-oom-XXXXXX",
             base != NULL && strlen(base) < 32 ? base : "/tmp");
    if (mkdtemp(directory) == NULL)
        return -1;
    snprintf(path, sizeof path, "%s/model.lstm", directory);
    snprintf(net_path, sizeof net_path, "%s/network.lstm", directory);
    return 0;
}

static int remove_directory(void **state)
{
    (void)state;
    unlink(path);
    unlink(net_path);
    return rmdir(directory);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_public_call_is_covered),
        cmocka_unit_test(test_every_failure_point),
    };
    return cmocka_run_group_tests(tests, make_directory, remove_directory);
}
