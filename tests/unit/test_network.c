/*
 * Networks (lstm/network.h): the contract of the passes, judged by the test
 * itself (tests/parity/test_sequence_model.c holds the parity with PyTorch).
 *
 *  - create refuses what the header lists (embedding_dim not the LSTM's
 *    input_size, cross-entropy without a head or with one output, head_size
 *    0 with a head or set without one, unknown head or loss), out untouched;
 *  - the argument structs' init functions;
 *  - bad calls (NULLs, wrong struct sizes, tokens to a features network and
 *    features to a token network, token ids out of range or negative, named
 *    by position, NaN features, bad lengths and sizes, a workspace of another
 *    model) fail and write no output; garbage past a sequence's end is
 *    never read;
 *  - backward: without a training forward, after an inference, after a
 *    model call on the workspace, with another network, twice: LSTM_E_STATE;
 *    NULL targets, a class out of range, NaN values: the error, and no
 *    gradient changed;
 *  - a stream fed a token at a time equals one whole-sequence inference,
 *    bit for bit (every-step head);
 *  - lstm_network_train_chunk() over two chunks equals the same truncated
 *    BPTT built from the parts' calls (lstm_embedding_forward(),
 *    lstm_model_train_chunk(), lstm_dense_forward(), lstm_loss_cross_entropy()
 *    and the backward calls), bit for bit;
 *  - a last-step head over sequences of mixed lengths (bidirectional,
 *    batch-major) equals each sequence run alone, output and gradients;
 *  - the masked loss of each kind is the public loss of the rows kept, bit
 *    for bit (a negative class left out, rows past each end and rows the
 *    targets' mask leaves out never read), and the head's bias gradient
 *    under MSE is the double-precision sum over the kept rows;
 *  - no head: the output is the LSTM's y, and backward the model's with the
 *    loss's gradient as dy; dropout masks follow the
 *    workspace's seed;
 *  - once a workspace and a state have grown, every pass allocates nothing
 *    (a white-box test: the library's allocation count);
 *  - threads share one network, each with its own workspace: the results
 *    of a thread alone, bit for bit.
 */
#define _POSIX_C_SOURCE 200809L /* POSIX threads */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "lstm/lstm.h"
#include "lstm/network.h"
#include "test_rng.h"

#define SENTINEL 0xA5

typedef struct spec {
    int tokens;
    size_t V, I, H, L, P, O;
    int bidirectional;
    uint32_t head, loss, flags;
    double dropout;
} spec;

static lstm_status create(const spec *s, lstm_network **out)
{
    lstm_config lc;
    assert_int_equal(lstm_config_init(&lc, sizeof lc), LSTM_OK);
    lc.input_size = s->I;
    lc.hidden_size = s->H;
    lc.num_layers = s->L;
    lc.proj_size = s->P;
    lc.dropout = s->dropout;
    lc.flags = s->flags | (s->bidirectional ? LSTM_BIDIRECTIONAL : 0u);
    lstm_embedding_config ec;
    assert_int_equal(lstm_embedding_config_init(&ec, sizeof ec), LSTM_OK);
    ec.num_embeddings = s->V;
    ec.embedding_dim = s->I;
    lstm_network_config config = LSTM_NETWORK_CONFIG_INIT;
    config.embedding = s->tokens ? &ec : NULL;
    config.lstm = &lc;
    config.head = s->head;
    config.loss = s->loss;
    config.head_size = s->O;
    return lstm_network_create(&config, out);
}

static lstm_network *make(const spec *s, uint64_t seed)
{
    lstm_network *network = NULL;
    assert_int_equal(create(s, &network), LSTM_OK);
    assert_int_equal(lstm_network_init(network, seed, 0), LSTM_OK);
    return network;
}

static lstm_workspace *workspace_of(lstm_network *network)
{
    lstm_workspace *workspace = NULL;
    assert_int_equal(lstm_workspace_create(lstm_network_model(network), &workspace), LSTM_OK);
    return workspace;
}

static void fill_ids(int64_t *ids, size_t count, size_t V, uint64_t seed)
{
    rng r = {seed};
    for (size_t k = 0; k < count; k++)
        ids[k] = (int64_t)(rng_next(&r) % V);
}

static void fill_floats(float *values, size_t count, uint64_t seed)
{
    rng r = {seed};
    for (size_t k = 0; k < count; k++)
        values[k] = rng_float(&r, -1.0f, 1.0f);
}

/* Every gradient of the network, concatenated (embedding, LSTM, head). */
static size_t grads_of(lstm_network *network, float *out)
{
    size_t used = 0, count = 0;
    float *data;
    if (lstm_network_embedding(network) != NULL) {
        assert_int_equal(lstm_embedding_grads(lstm_network_embedding(network), &data, &count),
                         LSTM_OK);
        memcpy(out + used, data, count * sizeof(float));
        used += count;
    }
    assert_int_equal(lstm_model_grads(lstm_network_model(network), &data, &count), LSTM_OK);
    memcpy(out + used, data, count * sizeof(float));
    used += count;
    if (lstm_network_head(network) != NULL) {
        assert_int_equal(lstm_dense_grads(lstm_network_head(network), &data, &count), LSTM_OK);
        memcpy(out + used, data, count * sizeof(float));
        used += count;
    }
    assert_int_equal(used, lstm_network_param_count(network));
    return used;
}

static int all_bytes(const void *data, size_t bytes, unsigned char value)
{
    const unsigned char *p = data;
    for (size_t k = 0; k < bytes; k++)
        if (p[k] != value)
            return 0;
    return 1;
}

/* ---- create ---- */

static void test_create_errors(void **unused)
{
    (void)unused;
    const spec good = {1, 7, 3, 4, 1, 0, 5, 0, LSTM_HEAD_EVERY_STEP, LSTM_LOSS_CROSS_ENTROPY, 0, 0};
    lstm_network *network = (lstm_network *)&good; /* a value create must not touch */
    lstm_network *const untouched = network;
    struct {
        spec s;
        lstm_status status;
    } cases[] = {
        {good, LSTM_OK},
        {{0, 0, 3, 4, 1, 0, 0, 0, LSTM_HEAD_NONE, LSTM_LOSS_CROSS_ENTROPY, 0, 0}, LSTM_E_ARG},
        {{1, 7, 3, 4, 1, 0, 1, 0, LSTM_HEAD_LAST_STEP, LSTM_LOSS_CROSS_ENTROPY, 0, 0}, LSTM_E_ARG},
        {{1, 7, 3, 4, 1, 0, 0, 0, LSTM_HEAD_EVERY_STEP, LSTM_LOSS_MSE, 0, 0}, LSTM_E_SIZE},
        {{1, 7, 3, 4, 1, 0, 2, 0, LSTM_HEAD_NONE, LSTM_LOSS_MSE, 0, 0}, LSTM_E_ARG},
        {{1, 7, 3, 4, 1, 0, 2, 0, 3, LSTM_LOSS_MSE, 0, 0}, LSTM_E_ARG},
        {{1, 7, 3, 4, 1, 0, 2, 0, LSTM_HEAD_EVERY_STEP, 4, 0, 0}, LSTM_E_ARG},
    };
    for (size_t n = 0; n < sizeof cases / sizeof cases[0]; n++) {
        network = untouched;
        assert_int_equal(create(&cases[n].s, &network), cases[n].status);
        if (cases[n].status == LSTM_OK)
            lstm_network_destroy(network);
        else
            assert_ptr_equal(network, untouched);
    }

    /* embedding_dim is not the LSTM's input_size */
    lstm_config lc;
    lstm_config_init(&lc, sizeof lc);
    lc.input_size = 3;
    lc.hidden_size = 4;
    lstm_embedding_config ec = LSTM_EMBEDDING_CONFIG_INIT;
    ec.num_embeddings = 5;
    ec.embedding_dim = 4;
    lstm_network_config config = LSTM_NETWORK_CONFIG_INIT;
    config.embedding = &ec;
    config.lstm = &lc;
    network = untouched;
    assert_int_equal(lstm_network_create(&config, &network), LSTM_E_SHAPE);
    assert_ptr_equal(network, untouched);
    assert_non_null(strstr(lstm_error_message(), "embedding_dim"));
    config.embedding = NULL;
    config.lstm = NULL;
    assert_int_equal(lstm_network_create(&config, &network), LSTM_E_NULL);
    assert_int_equal(lstm_network_create(NULL, &network), LSTM_E_NULL);
    config.lstm = &lc;
    config.struct_size = 4;
    assert_int_equal(lstm_network_create(&config, &network), LSTM_E_ARG);
    assert_ptr_equal(network, untouched);
}

static void test_struct_inits(void **unused)
{
    (void)unused;
    lstm_network_inputs inputs;
    lstm_network_outputs outputs;
    lstm_targets targets;
    memset(&inputs, SENTINEL, sizeof inputs);
    memset(&outputs, SENTINEL, sizeof outputs);
    memset(&targets, SENTINEL, sizeof targets);
    assert_int_equal(lstm_network_inputs_init(&inputs, sizeof inputs), LSTM_OK);
    assert_int_equal(lstm_network_outputs_init(&outputs, sizeof outputs), LSTM_OK);
    assert_int_equal(lstm_targets_init(&targets, sizeof targets), LSTM_OK);
    assert_int_equal(inputs.struct_size, sizeof inputs);
    assert_null(inputs.tokens);
    assert_null(inputs.c0);
    assert_int_equal(outputs.struct_size, sizeof outputs);
    assert_null(outputs.output);
    assert_null(outputs.cT);
    assert_int_equal(targets.struct_size, sizeof targets);
    assert_null(targets.classes);
    assert_null(targets.grad);
    assert_int_equal(lstm_network_inputs_init(NULL, sizeof inputs), LSTM_E_NULL);
    assert_int_equal(lstm_network_outputs_init(&outputs, 8), LSTM_E_ARG);
    assert_int_equal(lstm_targets_init(&targets, sizeof targets - 1), LSTM_E_ARG);
    assert_int_equal(lstm_targets_init(&targets, (size_t)1 << 20), LSTM_E_ARG);
}

/* ---- bad calls ---- */

enum { T = 4, B = 3, V = 7, I = 3, H = 5, O = 6 };
static const size_t lengths[B] = {4, 2, 3};

/* tokens [T][B] valid where t < lengths[b]; garbage past each end */
static void bad_call_tokens(int64_t *tokens)
{
    fill_ids(tokens, T * B, V, 3);
    for (size_t t = 0; t < T; t++)
        for (size_t b = 0; b < B; b++)
            if (t >= lengths[b])
                tokens[t * B + b] = (t + b) % 2 ? INT64_MAX : -99;
}

static void test_bad_calls(void **unused)
{
    (void)unused;
    const spec s = {1, V, I, H, 1, 0, O, 0, LSTM_HEAD_EVERY_STEP, LSTM_LOSS_CROSS_ENTROPY, 0, 0};
    lstm_network *network = make(&s, 1);
    lstm_workspace *workspace = workspace_of(network);
    int64_t tokens[T * B];
    bad_call_tokens(tokens);
    float features[T * B * I];
    fill_floats(features, T * B * I, 4);
    float output[T * B * O], hT[B * H], cT[B * H];
    lstm_sequences sequences = LSTM_SEQUENCES_INIT;
    sequences.steps = T;
    sequences.batch = B;
    sequences.lengths = lengths;
    lstm_network_inputs inputs = LSTM_NETWORK_INPUTS_INIT;
    inputs.tokens = tokens;
    lstm_network_outputs outputs = {sizeof outputs, output, hT, cT};
    memset(output, SENTINEL, sizeof output);
    memset(hT, SENTINEL, sizeof hT);
    memset(cT, SENTINEL, sizeof cT);
#define UNWRITTEN() \
  assert_true(all_bytes(output, sizeof output, SENTINEL) && all_bytes(hT, sizeof hT, SENTINEL) && \
              all_bytes(cT, sizeof cT, SENTINEL))

    assert_int_equal(lstm_network_infer(NULL, workspace, &sequences, &inputs, &outputs),
                     LSTM_E_NULL);
    assert_int_equal(lstm_network_infer(network, NULL, &sequences, &inputs, &outputs), LSTM_E_NULL);
    assert_int_equal(lstm_network_infer(network, workspace, NULL, &inputs, &outputs), LSTM_E_NULL);
    assert_int_equal(lstm_network_infer(network, workspace, &sequences, NULL, &outputs),
                     LSTM_E_NULL);
    inputs.struct_size = 3;
    assert_int_equal(lstm_network_infer(network, workspace, &sequences, &inputs, &outputs),
                     LSTM_E_ARG);
    inputs.struct_size = sizeof inputs;
    outputs.struct_size = 3;
    assert_int_equal(lstm_network_train_forward(network, workspace, &sequences, &inputs, &outputs),
                     LSTM_E_ARG);
    outputs.struct_size = sizeof outputs;
    /* features to a token network, and no tokens */
    inputs.features = features;
    assert_int_equal(lstm_network_infer(network, workspace, &sequences, &inputs, &outputs),
                     LSTM_E_ARG);
    assert_non_null(strstr(lstm_error_message(), "features"));
    inputs.tokens = NULL;
    assert_int_equal(lstm_network_infer(network, workspace, &sequences, &inputs, &outputs),
                     LSTM_E_NULL);
    assert_non_null(strstr(lstm_error_message(), "inputs->tokens"));
    inputs.features = NULL;
    assert_int_equal(lstm_network_infer(network, workspace, &sequences, &inputs, &outputs),
                     LSTM_E_NULL);
    inputs.tokens = tokens;
    /* ids out of range within a sequence, named by position */
    tokens[1 * B + 1] = V;
    assert_int_equal(lstm_network_infer(network, workspace, &sequences, &inputs, &outputs),
                     LSTM_E_ARG);
    assert_non_null(strstr(lstm_error_message(), "tokens[4]"));
    tokens[1 * B + 1] = 0;
    tokens[2 * B + 2] = -1;
    assert_int_equal(lstm_network_train_forward(network, workspace, &sequences, &inputs, &outputs),
                     LSTM_E_ARG);
    assert_non_null(strstr(lstm_error_message(), "tokens[8]"));
    assert_non_null(strstr(lstm_error_message(), "-1"));
    tokens[2 * B + 2] = 1;
    /* sizes and lengths */
    sequences.steps = 0;
    assert_int_equal(lstm_network_infer(network, workspace, &sequences, &inputs, &outputs),
                     LSTM_E_SIZE);
    sequences.steps = T;
    const size_t bad_lengths[B] = {4, 0, 3};
    sequences.lengths = bad_lengths;
    assert_int_equal(lstm_network_infer(network, workspace, &sequences, &inputs, &outputs),
                     LSTM_E_ARG);
    sequences.lengths = lengths;
    sequences.layout = 9;
    assert_int_equal(lstm_network_infer(network, workspace, &sequences, &inputs, &outputs),
                     LSTM_E_ARG);
    sequences.layout = LSTM_LAYOUT_MODEL;
    /* a workspace of another model's shape */
    const spec other = {1, V, I, H + 1, 1, 0, O, 0, LSTM_HEAD_EVERY_STEP, LSTM_LOSS_CROSS_ENTROPY,
                        0, 0};
    lstm_network *wider = make(&other, 2);
    lstm_workspace *wider_workspace = workspace_of(wider);
    assert_int_equal(lstm_network_infer(network, wider_workspace, &sequences, &inputs, &outputs),
                     LSTM_E_SHAPE);
    UNWRITTEN();

    /* the garbage past each end is never read */
    assert_int_equal(lstm_network_infer(network, workspace, &sequences, &inputs, &outputs),
                     LSTM_OK);
    for (size_t t = 0; t < T; t++)
        for (size_t b = 0; b < B; b++)
            for (size_t o = 0; o < O && t >= lengths[b]; o++)
                assert_true(output[(t * B + b) * O + o] == 0.0f);

    /* a features network */
    const spec fs = {0, 0, I, H, 1, 0, O, 0, LSTM_HEAD_EVERY_STEP, LSTM_LOSS_MSE, 0, 0};
    lstm_network *fnet = make(&fs, 3);
    memset(output, SENTINEL, sizeof output);
    memset(hT, SENTINEL, sizeof hT);
    memset(cT, SENTINEL, sizeof cT);
    lstm_workspace *fws = workspace_of(fnet);
    inputs.features = features;
    assert_int_equal(lstm_network_infer(fnet, fws, &sequences, &inputs, &outputs), LSTM_E_ARG);
    assert_non_null(strstr(lstm_error_message(), "tokens"));
    inputs.tokens = NULL;
    features[(1 * B + 0) * I + 2] = NAN;
    assert_int_equal(lstm_network_infer(fnet, fws, &sequences, &inputs, &outputs),
                     LSTM_E_NONFINITE);
    UNWRITTEN();
    features[(1 * B + 0) * I + 2] = 0.5f;
    features[(3 * B + 1) * I + 0] = NAN; /* past sequence 1's end */
    assert_int_equal(lstm_network_infer(fnet, fws, &sequences, &inputs, &outputs), LSTM_OK);
#undef UNWRITTEN
    lstm_workspace_destroy(fws);
    lstm_network_destroy(fnet);
    lstm_workspace_destroy(wider_workspace);
    lstm_network_destroy(wider);
    lstm_workspace_destroy(workspace);
    lstm_network_destroy(network);
}

/* ---- backward ---- */

static void test_backward_errors(void **unused)
{
    (void)unused;
    const spec s = {1, V, I, H, 2, 0, O, 0, LSTM_HEAD_EVERY_STEP, LSTM_LOSS_CROSS_ENTROPY, 0, 0};
    lstm_network *network = make(&s, 5), *twin = make(&s, 6);
    lstm_workspace *workspace = workspace_of(network);
    int64_t tokens[T * B];
    bad_call_tokens(tokens);
    int32_t classes[T * B];
    for (size_t k = 0; k < T * B; k++)
        classes[k] = (int32_t)(k % O);
    for (size_t t = 0; t < T; t++)
        for (size_t b = 0; b < B; b++)
            if (t >= lengths[b]) /* never read */
                classes[t * B + b] = 1000;
    classes[0] = -3; /* left out */
    lstm_sequences sequences = {sizeof sequences, T, B, LSTM_LAYOUT_MODEL, lengths};
    lstm_network_inputs inputs = LSTM_NETWORK_INPUTS_INIT;
    inputs.tokens = tokens;
    lstm_targets targets = LSTM_TARGETS_INIT;
    targets.classes = classes;
    const size_t count = lstm_network_param_count(network);
    float *zero = calloc(count, sizeof(float)), *grads = malloc(count * sizeof(float));
    assert_non_null(zero);
    assert_non_null(grads);
    double loss = -1.0;

    assert_int_equal(lstm_network_train_backward(network, workspace, &targets, &loss),
                     LSTM_E_STATE);
    assert_int_equal(lstm_network_infer(network, workspace, &sequences, &inputs, NULL), LSTM_OK);
    assert_int_equal(lstm_network_train_backward(network, workspace, &targets, &loss),
                     LSTM_E_STATE);
    assert_int_equal(lstm_network_train_forward(network, workspace, &sequences, &inputs, NULL),
                     LSTM_OK);
    assert_int_equal(lstm_network_train_backward(twin, workspace, &targets, &loss), LSTM_E_STATE);
    assert_int_equal(lstm_network_train_backward(network, workspace, NULL, &loss), LSTM_E_NULL);
    targets.classes = NULL;
    assert_int_equal(lstm_network_train_backward(network, workspace, &targets, &loss), LSTM_E_NULL);
    targets.classes = classes;
    targets.struct_size = 2;
    assert_int_equal(lstm_network_train_backward(network, workspace, &targets, &loss), LSTM_E_ARG);
    targets.struct_size = sizeof targets;
    classes[2 * B + 0] = O; /* within sequence 0 */
    assert_int_equal(lstm_network_train_backward(network, workspace, &targets, &loss), LSTM_E_ARG);
    assert_non_null(strstr(lstm_error_message(), "classes[6]"));
    assert_true(loss == -1.0);
    grads_of(network, grads);
    assert_memory_equal(grads, zero, count * sizeof(float));
    grads_of(twin, grads);
    assert_memory_equal(grads, zero, count * sizeof(float));
    classes[2 * B + 0] = 2;
    double checked = -2.0;
    float output[T * B * O];
    lstm_network_outputs outputs = {sizeof outputs, output, NULL, NULL};
    assert_int_equal(lstm_network_infer(network, workspace, &sequences, &inputs, &outputs),
                     LSTM_OK);
    assert_int_equal(lstm_network_loss(network, &sequences, output, &targets, &checked), LSTM_OK);
    assert_int_equal(lstm_network_train_forward(network, workspace, &sequences, &inputs, NULL),
                     LSTM_OK);
    assert_int_equal(lstm_network_train_backward(network, workspace, &targets, &loss), LSTM_OK);
    assert_true(loss == checked && loss > 0.0);
    grads_of(network, grads);
    assert_memory_not_equal(grads, zero, count * sizeof(float));
    /* consumed */
    assert_int_equal(lstm_network_train_backward(network, workspace, &targets, &loss),
                     LSTM_E_STATE);
    /* a model call between forward and backward drops the network's forward */
    assert_int_equal(lstm_network_train_forward(network, workspace, &sequences, &inputs, NULL),
                     LSTM_OK);
    float x[T * B * I], y[T * B * H];
    fill_floats(x, T * B * I, 8);
    const lstm_inputs model_inputs = {sizeof model_inputs, x, NULL, NULL};
    const lstm_outputs model_outputs = {sizeof model_outputs, y, NULL, NULL};
    assert_int_equal(lstm_model_train_forward(lstm_network_model(network), workspace, &sequences,
                                              &model_inputs, &model_outputs),
                     LSTM_OK);
    assert_int_equal(lstm_network_train_backward(network, workspace, &targets, &loss),
                     LSTM_E_STATE);

    /* values: NaN within a sequence; LSTM_LOSS_NONE's grad */
    const spec ms = {0, 0, I, H, 1, 0, 2, 0, LSTM_HEAD_EVERY_STEP, LSTM_LOSS_MSE, 0, 0};
    const spec ns = {0, 0, I, H, 1, 0, 2, 0, LSTM_HEAD_EVERY_STEP, LSTM_LOSS_NONE, 0, 0};
    lstm_network *mse = make(&ms, 9), *none = make(&ns, 9);
    lstm_workspace *mws = workspace_of(mse);
    float values[T * B * 2];
    fill_floats(values, T * B * 2, 10);
    values[(3 * B + 1) * 2] = NAN; /* past sequence 1's end: never read */
    values[(1 * B + 2) * 2 + 1] = INFINITY;
    lstm_network_inputs finputs = LSTM_NETWORK_INPUTS_INIT;
    finputs.features = x;
    lstm_targets vtargets = LSTM_TARGETS_INIT;
    vtargets.values = values;
    const size_t mcount = lstm_network_param_count(mse);
    float *mgrads = malloc(mcount * sizeof(float));
    assert_non_null(mgrads);
    assert_int_equal(lstm_network_train_forward(mse, mws, &sequences, &finputs, NULL), LSTM_OK);
    assert_int_equal(lstm_network_train_backward(mse, mws, &vtargets, &loss), LSTM_E_NONFINITE);
    grads_of(mse, mgrads);
    assert_true(all_bytes(mgrads, mcount * sizeof(float), 0));
    values[(1 * B + 2) * 2 + 1] = 0.25f;
    assert_int_equal(lstm_network_train_backward(mse, mws, &vtargets, &loss), LSTM_OK);
    assert_int_equal(lstm_network_loss(none, &sequences, output, &vtargets, &loss), LSTM_E_ARG);
    /* LSTM_LOSS_NONE: the caller's dL/d(output), here MSE's own gradient */
    lstm_workspace *nws = workspace_of(none);
    float *params, *none_params;
    size_t n;
    lstm_model_params(lstm_network_model(mse), &params, &n);
    lstm_model_params(lstm_network_model(none), &none_params, &n);
    memcpy(none_params, params, n * sizeof(float));
    lstm_dense_params(lstm_network_head(mse), &params, &n);
    lstm_dense_params(lstm_network_head(none), &none_params, &n);
    memcpy(none_params, params, n * sizeof(float));
    lstm_network_zero_grads(mse);
    float z[T * B * 2], dz[T * B * 2];
    outputs.output = z;
    assert_int_equal(lstm_network_train_forward(mse, mws, &sequences, &finputs, &outputs), LSTM_OK);
    assert_int_equal(lstm_network_train_backward(mse, mws, &vtargets, &loss), LSTM_OK);
    /* dL/dz of the mean over the 9 valid rows' 2 values */
    for (size_t t = 0; t < T; t++)
        for (size_t b = 0; b < B; b++)
            for (size_t o = 0; o < 2; o++) {
                const size_t k = (t * B + b) * 2 + o;
                dz[k] = t < lengths[b] ? (float)(2.0 * ((double)z[k] - values[k]) / 18.0) : NAN;
            }
    lstm_targets gtargets = LSTM_TARGETS_INIT;
    assert_int_equal(lstm_network_train_forward(none, nws, &sequences, &finputs, NULL), LSTM_OK);
    assert_int_equal(lstm_network_train_backward(none, nws, &gtargets, &loss), LSTM_E_NULL);
    gtargets.grad = dz;
    loss = -1.0;
    assert_int_equal(lstm_network_train_backward(none, nws, &gtargets, &loss), LSTM_OK);
    assert_true(loss == 0.0);
    float *ngrads = malloc(mcount * sizeof(float));
    assert_non_null(ngrads);
    grads_of(mse, mgrads);
    grads_of(none, ngrads);
    assert_memory_equal(mgrads, ngrads, mcount * sizeof(float));

    free(ngrads);
    free(mgrads);
    lstm_workspace_destroy(nws);
    lstm_workspace_destroy(mws);
    lstm_network_destroy(mse);
    lstm_network_destroy(none);
    free(zero);
    free(grads);
    lstm_workspace_destroy(workspace);
    lstm_network_destroy(network);
    lstm_network_destroy(twin);
}

/* ---- streams and chunks ---- */

static void test_stream_equals_whole(void **unused)
{
    (void)unused;
    enum { ST = 7, SB = 2 };
    const spec s = {1, V, I, H, 2, 3, O, 0, LSTM_HEAD_EVERY_STEP, LSTM_LOSS_CROSS_ENTROPY, 0, 0};
    lstm_network *network = make(&s, 11);
    lstm_model *model = lstm_network_model(network);
    lstm_workspace *workspace = workspace_of(network);
    int64_t tokens[ST * SB];
    fill_ids(tokens, ST * SB, V, 12);
    float whole[ST * SB * O], hT[2 * SB * 3], cT[2 * SB * H];
    lstm_sequences sequences = {sizeof sequences, ST, SB, LSTM_LAYOUT_MODEL, NULL};
    lstm_network_inputs inputs = LSTM_NETWORK_INPUTS_INIT;
    inputs.tokens = tokens;
    lstm_network_outputs outputs = {sizeof outputs, whole, hT, cT};
    assert_int_equal(lstm_network_infer(network, workspace, &sequences, &inputs, &outputs),
                     LSTM_OK);

    lstm_state *state = NULL;
    assert_int_equal(lstm_state_create(model, SB, &state), LSTM_OK);
    float step[SB * O], h[2 * SB * 3], c[2 * SB * H];
    lstm_sequences one = {sizeof one, 1, SB, LSTM_LAYOUT_MODEL, NULL};
    for (size_t t = 0; t < ST; t++) {
        lstm_network_inputs token = LSTM_NETWORK_INPUTS_INIT;
        token.tokens = tokens + t * SB;
        lstm_network_outputs out = {sizeof out, step, h, c};
        assert_int_equal(lstm_network_infer_stream(network, state, &one, &token, &out), LSTM_OK);
        assert_memory_equal(step, whole + t * SB * O, sizeof step);
    }
    assert_memory_equal(h, hT, sizeof h);
    assert_memory_equal(c, cT, sizeof c);
    /* a bad id leaves the state as it was */
    float before[2 * SB * 3];
    assert_int_equal(lstm_state_get(state, before, NULL), LSTM_OK);
    int64_t bad[SB] = {0, V};
    lstm_network_inputs token = LSTM_NETWORK_INPUTS_INIT;
    token.tokens = bad;
    assert_int_equal(lstm_network_infer_stream(network, state, &one, &token, NULL), LSTM_E_ARG);
    assert_int_equal(lstm_network_infer_stream(network, NULL, &one, &token, NULL), LSTM_E_NULL);
    assert_int_equal(lstm_state_get(state, h, NULL), LSTM_OK);
    assert_memory_equal(h, before, sizeof h);
    lstm_state_destroy(state);
    lstm_workspace_destroy(workspace);
    lstm_network_destroy(network);
}

/* Truncated BPTT over two chunks through the network, and the same built
 * from the parts' own calls: the same loss and gradients, bit for bit. */
static void test_chunks_equal_parts(void **unused)
{
    (void)unused;
    enum { CB = 2, T1 = 3, T2 = 4 };
    const size_t chunk_steps[2] = {T1, T2};
    const spec s = {1, V, I, H, 1, 0, O, 0, LSTM_HEAD_EVERY_STEP, LSTM_LOSS_CROSS_ENTROPY, 0, 0};
    lstm_network *network = make(&s, 21), *parts = make(&s, 21);
    lstm_model *model = lstm_network_model(parts);
    lstm_embedding *embedding = lstm_network_embedding(parts);
    lstm_dense *head = lstm_network_head(parts);
    lstm_workspace *ws_net = workspace_of(network), *ws_parts = workspace_of(parts);
    lstm_state *st_net = NULL, *st_parts = NULL;
    assert_int_equal(lstm_state_create(lstm_network_model(network), CB, &st_net), LSTM_OK);
    assert_int_equal(lstm_state_create(model, CB, &st_parts), LSTM_OK);
    int64_t tokens[(T1 + T2) * CB];
    int32_t classes[(T1 + T2) * CB];
    fill_ids(tokens, (T1 + T2) * CB, V, 22);
    for (size_t k = 0; k < (T1 + T2) * CB; k++)
        classes[k] = (int32_t)((k * 5 + 1) % O);
    float x[T2 * CB * I], y[T2 * CB * H], z[T2 * CB * O], dz[T2 * CB * O], dy[T2 * CB * H],
        dx[T2 * CB * I], out_net[T2 * CB * O];
    size_t offset = 0;
    for (int chunk = 0; chunk < 2; chunk++) {
        const size_t steps = chunk_steps[chunk], rows = steps * CB;
        const int64_t *ids = tokens + offset * CB;
        const int32_t *cls = classes + offset * CB;
        lstm_sequences sequences = {sizeof sequences, steps, CB, LSTM_LAYOUT_MODEL, NULL};
        lstm_network_inputs inputs = LSTM_NETWORK_INPUTS_INIT;
        inputs.tokens = ids;
        lstm_network_outputs outputs = {sizeof outputs, out_net, NULL, NULL};
        lstm_targets targets = LSTM_TARGETS_INIT;
        targets.classes = cls;
        double loss_net = -1.0, loss_parts = -2.0;
        assert_int_equal(
            lstm_network_train_chunk(network, ws_net, st_net, &sequences, &inputs, &outputs),
            LSTM_OK);
        assert_int_equal(lstm_network_train_backward(network, ws_net, &targets, &loss_net),
                         LSTM_OK);

        assert_int_equal(lstm_embedding_forward(embedding, rows, ids, x), LSTM_OK);
        const lstm_inputs in = {sizeof in, x, NULL, NULL};
        const lstm_outputs out = {sizeof out, y, NULL, NULL};
        assert_int_equal(lstm_model_train_chunk(model, ws_parts, st_parts, &sequences, &in, &out),
                         LSTM_OK);
        assert_int_equal(lstm_dense_forward(head, rows, y, z), LSTM_OK);
        assert_int_equal(lstm_loss_cross_entropy(rows, O, z, cls, -1, &loss_parts, dz), LSTM_OK);
        assert_int_equal(lstm_dense_backward(head, rows, y, dz, dy), LSTM_OK);
        const lstm_output_grads dout = {sizeof dout, dy, NULL, NULL};
        const lstm_input_grads din = {sizeof din, dx, NULL, NULL};
        assert_int_equal(lstm_model_train_backward(model, ws_parts, &dout, &din), LSTM_OK);
        assert_int_equal(lstm_embedding_backward(embedding, rows, ids, dx), LSTM_OK);

        assert_memory_equal(out_net, z, rows * O * sizeof(float));
        assert_true(loss_net == loss_parts);
        offset += steps;
    }
    const size_t count = lstm_network_param_count(network);
    float *a = malloc(count * sizeof(float)), *b = malloc(count * sizeof(float));
    assert_non_null(a);
    assert_non_null(b);
    grads_of(network, a);
    grads_of(parts, b);
    assert_memory_equal(a, b, count * sizeof(float));
    free(a);
    free(b);
    lstm_state_destroy(st_net);
    lstm_state_destroy(st_parts);
    lstm_workspace_destroy(ws_net);
    lstm_workspace_destroy(ws_parts);
    lstm_network_destroy(network);
    lstm_network_destroy(parts);
}

/* ---- last-step head ---- */

static double max_error(const float *got, const float *ref, size_t count)
{
    double scale = 0.0, worst = 0.0;
    for (size_t k = 0; k < count; k++) {
        scale = fmax(scale, fabs((double)ref[k]));
        worst = fmax(worst, fabs((double)got[k] - (double)ref[k]));
    }
    return worst / (scale > 0.0 ? scale : 1.0);
}

static void test_last_step_equals_alone(void **unused)
{
    (void)unused;
    enum { LT = 5, LB = 3, LO = 4 };
    const size_t lens[LB] = {5, 2, 4};
    const spec s = {1, V, I, H, 2, 0, LO, 1, LSTM_HEAD_LAST_STEP, LSTM_LOSS_CROSS_ENTROPY, 0, 0};
    lstm_network *network = make(&s, 31);
    lstm_workspace *workspace = workspace_of(network);
    int64_t tokens[LB * LT]; /* batch-major */
    fill_ids(tokens, LB * LT, V, 32);
    for (size_t b = 0; b < LB; b++)
        for (size_t t = lens[b]; t < LT; t++)
            tokens[b * LT + t] = -7;
    const int32_t classes[LB] = {1, 3, 0};
    lstm_sequences sequences = {sizeof sequences, LT, LB, LSTM_LAYOUT_BATCH_MAJOR, lens};
    lstm_network_inputs inputs = LSTM_NETWORK_INPUTS_INIT;
    inputs.tokens = tokens;
    float whole[LB * LO];
    lstm_network_outputs outputs = {sizeof outputs, whole, NULL, NULL};
    lstm_targets targets = LSTM_TARGETS_INIT;
    targets.classes = classes;
    double loss = 0.0;
    assert_int_equal(lstm_network_train_forward(network, workspace, &sequences, &inputs, &outputs),
                     LSTM_OK);
    assert_int_equal(lstm_network_train_backward(network, workspace, &targets, &loss), LSTM_OK);
    const size_t count = lstm_network_param_count(network);
    float *together = malloc(count * sizeof(float)), *alone = malloc(count * sizeof(float));
    assert_non_null(together);
    assert_non_null(alone);
    grads_of(network, together);
    assert_int_equal(lstm_network_zero_grads(network), LSTM_OK);

    double losses = 0.0;
    for (size_t b = 0; b < LB; b++) {
        float single[LO];
        lstm_sequences one = {sizeof one, lens[b], 1, LSTM_LAYOUT_MODEL, NULL};
        lstm_network_inputs in = LSTM_NETWORK_INPUTS_INIT;
        in.tokens = tokens + b * LT;
        lstm_network_outputs out = {sizeof out, single, NULL, NULL};
        lstm_targets target = LSTM_TARGETS_INIT;
        target.classes = classes + b;
        double single_loss = 0.0;
        assert_int_equal(lstm_network_train_forward(network, workspace, &one, &in, &out), LSTM_OK);
        assert_true(max_error(single, whole + b * LO, LO) <= 1e-6);
        assert_int_equal(lstm_network_train_backward(network, workspace, &target, &single_loss),
                         LSTM_OK);
        losses += single_loss;
    }
    /* the batch's loss is the mean of the sequences' */
    assert_true(fabs(losses / LB - loss) <= 1e-6 * loss);
    grads_of(network, alone);
    for (size_t k = 0; k < count; k++)
        alone[k] /= (float)LB;
    assert_true(max_error(alone, together, count) <= 1e-5);
    free(together);
    free(alone);
    lstm_workspace_destroy(workspace);
    lstm_network_destroy(network);
}

/* ---- losses ---- */

/* lstm_network_loss() and backward's loss over mixed lengths (batch-major),
 * a mask, or both, against the public loss of the rows kept, gathered. */
static void test_masked_losses_equal_public(void **unused)
{
    (void)unused;
    enum { C = 3 };
    const uint32_t losses[3] = {LSTM_LOSS_CROSS_ENTROPY, LSTM_LOSS_BCE_WITH_LOGITS, LSTM_LOSS_MSE};
    for (int case_ = 0; case_ < 9; case_++) {
        const uint32_t loss = losses[case_ % 3];
        const int use_mask = case_ >= 3;   /* also leave out rows the targets' mask names */
        const int use_lengths = case_ < 6; /* the mask alone: every sequence full */
        const size_t *lens = use_lengths ? lengths : NULL;
        const spec s = {0, 0, I, H, 1, 0, C, 0, LSTM_HEAD_EVERY_STEP, loss, 0, 0};
        lstm_network *network = make(&s, 81);
        lstm_workspace *workspace = workspace_of(network);
        float x[B * T * I], output[B * T * C], values[B * T * C], kept_out[B * T * C],
            kept_values[B * T * C];
        int32_t classes[B * T], kept_classes[B * T];
        uint8_t mask[B * T];
        fill_floats(x, B * T * I, 82);
        fill_floats(values, B * T * C, 83);
        size_t kept = 0;
        for (size_t b = 0; b < B; b++) {
            for (size_t t = 0; t < T; t++) {
                const size_t row = b * T + t;
                for (size_t o = 0; o < C; o++)
                    values[row * C + o] = fabsf(values[row * C + o]); /* in [0, 1] */
                classes[row] = (int32_t)((b + t) % (C + 1)) - 1;
                mask[row] = (uint8_t)(use_mask && t % 3 == 1 ? 0 : 1 + row % 2);
                if ((lens != NULL && t >= lens[b]) || mask[row] == 0) { /* never read */
                    values[row * C] = NAN;
                    classes[row] = 99;
                }
            }
        }
        lstm_sequences sequences = {sizeof sequences, T, B, LSTM_LAYOUT_BATCH_MAJOR, lens};
        lstm_network_inputs inputs = LSTM_NETWORK_INPUTS_INIT;
        inputs.features = x;
        lstm_network_outputs outputs = {sizeof outputs, output, NULL, NULL};
        assert_int_equal(
            lstm_network_train_forward(network, workspace, &sequences, &inputs, &outputs), LSTM_OK);
        for (size_t b = 0; b < B; b++) {
            for (size_t t = 0; t < (lens != NULL ? lens[b] : T); t++) {
                const size_t row = b * T + t;
                if (mask[row] == 0)
                    continue;
                memcpy(kept_out + kept * C, output + row * C, C * sizeof(float));
                memcpy(kept_values + kept * C, values + row * C, C * sizeof(float));
                kept_classes[kept++] = classes[row];
            }
        }
        double expected = -1.0, got = -2.0, from_backward = -3.0;
        if (loss == LSTM_LOSS_CROSS_ENTROPY)
            assert_int_equal(
                lstm_loss_cross_entropy(kept, C, kept_out, kept_classes, -1, &expected, NULL),
                LSTM_OK);
        else if (loss == LSTM_LOSS_BCE_WITH_LOGITS)
            assert_int_equal(
                lstm_loss_bce_with_logits(kept * C, kept_out, kept_values, &expected, NULL),
                LSTM_OK);
        else
            assert_int_equal(lstm_loss_mse(kept * C, kept_out, kept_values, &expected, NULL),
                             LSTM_OK);
        lstm_targets targets = LSTM_TARGETS_INIT;
        targets.classes = classes;
        targets.values = values;
        targets.mask = use_mask ? mask : NULL;
        assert_int_equal(lstm_network_loss(network, &sequences, output, &targets, &got), LSTM_OK);
        assert_int_equal(lstm_network_train_backward(network, workspace, &targets, &from_backward),
                         LSTM_OK);
        assert_true(got == expected && from_backward == expected);
        if (loss == LSTM_LOSS_MSE) {
            /* db of the head = sum over the kept rows of 2 (z - t) / (kept C), in double */
            float *grads;
            size_t count;
            assert_int_equal(lstm_dense_grads(lstm_network_head(network), &grads, &count), LSTM_OK);
            for (size_t o = 0; o < C; o++) {
                double db = 0.0;
                for (size_t k = 0; k < kept; k++)
                    db += 2.0 * ((double)kept_out[k * C + o] - kept_values[k * C + o]) /
                          (double)(kept * C);
                assert_true(fabs(grads[count - C + o] - db) <= 1e-6 * (1.0 + fabs(db)));
            }
        }
        lstm_workspace_destroy(workspace);
        lstm_network_destroy(network);
    }
}

/* ---- no head, dropout ---- */

static void test_no_head_outputs_y(void **unused)
{
    (void)unused;
    const spec s = {0, 0, I, H, 2, 0, 0, 1, LSTM_HEAD_NONE, LSTM_LOSS_MSE, 0, 0};
    lstm_network *network = make(&s, 41);
    lstm_workspace *workspace = workspace_of(network);
    float x[T * B * I], y[T * B * 2 * H], output[T * B * 2 * H];
    fill_floats(x, T * B * I, 42);
    memset(output, SENTINEL, sizeof output);
    lstm_sequences sequences = {sizeof sequences, T, B, LSTM_LAYOUT_MODEL, lengths};
    const lstm_inputs in = {sizeof in, x, NULL, NULL};
    const lstm_outputs out = {sizeof out, y, NULL, NULL};
    assert_int_equal(
        lstm_model_infer(lstm_network_model(network), workspace, &sequences, &in, &out), LSTM_OK);
    lstm_network_inputs inputs = LSTM_NETWORK_INPUTS_INIT;
    inputs.features = x;
    lstm_network_outputs outputs = {sizeof outputs, output, NULL, NULL};
    assert_int_equal(lstm_network_infer(network, workspace, &sequences, &inputs, &outputs),
                     LSTM_OK);
    assert_memory_equal(output, y, sizeof y);

    /* backward: the masked MSE's gradient on y, into the model's backward */
    enum { W = 2 * H };
    float target[T * B * W], kept_y[T * B * W], kept_target[T * B * W], dkept[T * B * W];
    float dy[T * B * W];
    fill_floats(target, T * B * W, 43);
    size_t kept = 0;
    for (size_t t = 0; t < T; t++)
        for (size_t b = 0; b < B; b++)
            if (t < lengths[b]) {
                memcpy(kept_y + kept * W, y + (t * B + b) * W, W * sizeof(float));
                memcpy(kept_target + kept * W, target + (t * B + b) * W, W * sizeof(float));
                kept++;
            }
    double expected = 0.0, loss = 0.0;
    assert_int_equal(lstm_loss_mse(kept * W, kept_y, kept_target, &expected, dkept), LSTM_OK);
    memset(dy, 0, sizeof dy);
    kept = 0;
    for (size_t t = 0; t < T; t++)
        for (size_t b = 0; b < B; b++)
            if (t < lengths[b])
                memcpy(dy + (t * B + b) * W, dkept + W * kept++, W * sizeof(float));
    lstm_model *model = lstm_network_model(network);
    assert_int_equal(lstm_model_train_forward(model, workspace, &sequences, &in, &out), LSTM_OK);
    const lstm_output_grads dout = {sizeof dout, dy, NULL, NULL};
    assert_int_equal(lstm_model_train_backward(model, workspace, &dout, NULL), LSTM_OK);
    const size_t count = lstm_network_param_count(network);
    float *by_model = malloc(count * sizeof(float)), *by_network = malloc(count * sizeof(float));
    assert_non_null(by_model);
    assert_non_null(by_network);
    grads_of(network, by_model);
    assert_int_equal(lstm_network_zero_grads(network), LSTM_OK);
    lstm_targets targets = LSTM_TARGETS_INIT;
    targets.values = target;
    assert_int_equal(lstm_network_train_forward(network, workspace, &sequences, &inputs, NULL),
                     LSTM_OK);
    assert_int_equal(lstm_network_train_backward(network, workspace, &targets, &loss), LSTM_OK);
    assert_true(loss == expected);
    grads_of(network, by_network);
    assert_memory_equal(by_network, by_model, count * sizeof(float));
    free(by_model);
    free(by_network);
    lstm_workspace_destroy(workspace);
    lstm_network_destroy(network);
}

static void test_dropout_follows_seed(void **unused)
{
    (void)unused;
    const spec s = {0, 0, I, H, 2, 0, 2, 0, LSTM_HEAD_EVERY_STEP, LSTM_LOSS_MSE, 0, 0.5};
    lstm_network *network = make(&s, 51);
    lstm_workspace *workspace = workspace_of(network);
    float x[T * B * I], first[T * B * 2], again[T * B * 2], other[T * B * 2];
    fill_floats(x, T * B * I, 52);
    lstm_sequences sequences = {sizeof sequences, T, B, LSTM_LAYOUT_MODEL, NULL};
    lstm_network_inputs inputs = LSTM_NETWORK_INPUTS_INIT;
    inputs.features = x;
    float *into[3] = {first, again, other};
    const uint64_t seeds[3] = {7, 7, 8};
    for (int k = 0; k < 3; k++) {
        lstm_network_outputs outputs = {sizeof outputs, into[k], NULL, NULL};
        assert_int_equal(lstm_workspace_set_seed(workspace, seeds[k]), LSTM_OK);
        assert_int_equal(
            lstm_network_train_forward(network, workspace, &sequences, &inputs, &outputs), LSTM_OK);
    }
    assert_memory_equal(first, again, sizeof first);
    assert_memory_not_equal(first, other, sizeof first);
    lstm_workspace_destroy(workspace);
    lstm_network_destroy(network);
}

/* ---- memory and threads ---- */

static void test_steady_state_allocates_nothing(void **unused)
{
    (void)unused;
    const uint32_t heads[2] = {LSTM_HEAD_EVERY_STEP, LSTM_HEAD_LAST_STEP};
    for (int n = 0; n < 2; n++) {
        const spec s = {1, V, I, H, 2, 3, O, 0, heads[n], LSTM_LOSS_CROSS_ENTROPY, 0, 0.25};
        lstm_network *network = make(&s, 61);
        lstm_workspace *workspace = workspace_of(network);
        lstm_state *state = NULL;
        assert_int_equal(lstm_state_create(lstm_network_model(network), B, &state), LSTM_OK);
        int64_t tokens[T * B];
        bad_call_tokens(tokens);
        int32_t classes[T * B];
        for (size_t k = 0; k < T * B; k++)
            classes[k] = (int32_t)(k % O);
        float output[T * B * O];
        lstm_sequences sequences = {sizeof sequences, T, B, LSTM_LAYOUT_MODEL, lengths};
        lstm_network_inputs inputs = LSTM_NETWORK_INPUTS_INIT;
        inputs.tokens = tokens;
        lstm_network_outputs outputs = {sizeof outputs, output, NULL, NULL};
        lstm_targets targets = LSTM_TARGETS_INIT;
        targets.classes = classes;
        size_t allocations = 0;
        for (int round = 0; round < 3; round++) {
            if (round == 1) /* grown by the first round */
                allocations = lstm__mem_alloc_count();
            assert_int_equal(lstm_network_infer(network, workspace, &sequences, &inputs, &outputs),
                             LSTM_OK);
            assert_int_equal(
                lstm_network_train_forward(network, workspace, &sequences, &inputs, &outputs),
                LSTM_OK);
            assert_int_equal(lstm_network_train_backward(network, workspace, &targets, NULL),
                             LSTM_OK);
            assert_int_equal(
                lstm_network_train_chunk(network, workspace, state, &sequences, &inputs, &outputs),
                LSTM_OK);
            assert_int_equal(lstm_network_train_backward(network, workspace, &targets, NULL),
                             LSTM_OK);
            assert_int_equal(
                lstm_network_infer_stream(network, state, &sequences, &inputs, &outputs), LSTM_OK);
        }
        assert_int_equal(lstm__mem_alloc_count(), allocations);
        lstm_state_destroy(state);
        lstm_workspace_destroy(workspace);
        lstm_network_destroy(network);
    }
}

enum { THREADS = 4, REPEATS = 8 };

typedef struct thread_job {
    const lstm_network *network;
    const int64_t *tokens;
    float output[T * B * O];
    int failures;
} thread_job;

static void *thread_run(void *context)
{
    thread_job *job = context;
    lstm_workspace *workspace = NULL;
    if (lstm_workspace_create(lstm_network_model((lstm_network *)(uintptr_t)job->network),
                              &workspace) != LSTM_OK) {
        job->failures++;
        return NULL;
    }
    const lstm_sequences sequences = {sizeof sequences, T, B, LSTM_LAYOUT_MODEL, lengths};
    lstm_network_inputs inputs = LSTM_NETWORK_INPUTS_INIT;
    inputs.tokens = job->tokens;
    const lstm_network_outputs outputs = {sizeof outputs, job->output, NULL, NULL};
    for (int k = 0; k < REPEATS; k++)
        if (lstm_network_infer(job->network, workspace, &sequences, &inputs, &outputs) != LSTM_OK)
            job->failures++;
    lstm_workspace_destroy(workspace);
    return NULL;
}

static void test_threads_share_a_network(void **unused)
{
    (void)unused;
    const spec s = {1, V, I, H, 2, 0, O, 0, LSTM_HEAD_EVERY_STEP, LSTM_LOSS_CROSS_ENTROPY, 0, 0};
    lstm_network *network = make(&s, 71);
    static int64_t tokens[THREADS][T * B];
    static thread_job jobs[THREADS], alone[THREADS];
    for (int j = 0; j < THREADS; j++) {
        fill_ids(tokens[j], T * B, V, 72 + (uint64_t)j);
        alone[j] = (thread_job){.network = network, .tokens = tokens[j]};
        thread_run(&alone[j]);
        assert_int_equal(alone[j].failures, 0);
        jobs[j] = (thread_job){.network = network, .tokens = tokens[j]};
    }
    pthread_t threads[THREADS];
    for (int j = 0; j < THREADS; j++)
        assert_int_equal(pthread_create(&threads[j], NULL, thread_run, &jobs[j]), 0);
    for (int j = 0; j < THREADS; j++)
        assert_int_equal(pthread_join(threads[j], NULL), 0);
    for (int j = 0; j < THREADS; j++) {
        assert_int_equal(jobs[j].failures, 0);
        assert_memory_equal(jobs[j].output, alone[j].output, sizeof jobs[j].output);
    }
    lstm_network_destroy(network);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_struct_inits),
        cmocka_unit_test(test_bad_calls),
        cmocka_unit_test(test_backward_errors),
        cmocka_unit_test(test_stream_equals_whole),
        cmocka_unit_test(test_chunks_equal_parts),
        cmocka_unit_test(test_last_step_equals_alone),
        cmocka_unit_test(test_masked_losses_equal_public),
        cmocka_unit_test(test_no_head_outputs_y),
        cmocka_unit_test(test_dropout_follows_seed),
        cmocka_unit_test(test_steady_state_allocates_nothing),
        cmocka_unit_test(test_threads_share_a_network),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
