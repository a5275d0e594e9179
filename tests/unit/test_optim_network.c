/*
 * lstm_optim_add_network() (lstm/network.h): a network's parts bound in the
 * documented order, embedding, LSTM, head, as lstm_optim_add_embedding(),
 * lstm_optim_add_model() and lstm_optim_add_buffer() of the head bind them;
 * the order read back from the saved state's layout (Adam's first moment
 * after one step is (1 - beta1) g, in binding order) and from a step's
 * effect on each part; networks without an embedding or a head; the lazy
 * embedding of an LSTM_OPTIM_LAZY_ROWS optimizer next to the dense LSTM and
 * head, which move as without the flag; and all or nothing: a bind that
 * fails after others leaves the optimizer as it was (every fault point of
 * every bind: test_alloc_failure).
 *
 * A white-box test only because the network's handle calls
 * (lstm_network_create() ...) are not exported yet on this branch; it uses
 * nothing but the public headers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lstm/lstm.h"

enum { V = 9, E = 3, H = 4, O = 5, PADDING = 2 };

static void assert_message_has(const char *text)
{
    if (strstr(lstm_error_message(), text) == NULL)
        fail_msg("message \"%s\" does not contain \"%s\"", lstm_error_message(), text);
}

/* A token network (embedding V x E, padding row 2), a 1-layer LSTM E -> H and
 * an every-step head H -> O, initialised; without_embedding: features,
 * without_head: no head. */
static lstm_network *make_network(bool with_embedding, bool with_head)
{
    lstm_embedding_config embedding;
    lstm_config lstm;
    lstm_network_config config;
    assert_int_equal(lstm_embedding_config_init(&embedding, sizeof embedding), LSTM_OK);
    embedding.num_embeddings = V;
    embedding.embedding_dim = E;
    embedding.flags = LSTM_EMBEDDING_PADDING;
    embedding.padding_idx = PADDING;
    assert_int_equal(lstm_config_init(&lstm, sizeof lstm), LSTM_OK);
    lstm.input_size = E;
    lstm.hidden_size = H;
    assert_int_equal(lstm_network_config_init(&config, sizeof config), LSTM_OK);
    config.embedding = with_embedding ? &embedding : NULL;
    config.lstm = &lstm;
    config.head = with_head ? LSTM_HEAD_EVERY_STEP : LSTM_HEAD_NONE;
    config.head_size = with_head ? O : 0;
    lstm_network *network = NULL;
    assert_int_equal(lstm_network_create(&config, &network), LSTM_OK);
    assert_int_equal(lstm_network_init(network, 31, 0), LSTM_OK);
    return network;
}

static lstm_optim *make_adam(uint32_t flags)
{
    lstm_optim_options options;
    assert_int_equal(lstm_optim_options_init(&options, sizeof options, LSTM_OPTIM_ADAM), LSTM_OK);
    options.flags = flags;
    options.lr = 0.01;
    options.beta1 = 0.5;
    lstm_optim *optim = NULL;
    assert_int_equal(lstm_optim_create(&options, &optim), LSTM_OK);
    return optim;
}

/* A part's parameters and gradients, and how many. */
typedef struct part {
    float *params, *grads;
    size_t count;
} part;

static part embedding_part(lstm_network *network)
{
    part p = {NULL, NULL, 0};
    lstm_embedding *embedding = lstm_network_embedding(network);
    if (embedding != NULL) {
        assert_int_equal(lstm_embedding_params(embedding, &p.params, &p.count), LSTM_OK);
        assert_int_equal(lstm_embedding_grads(embedding, &p.grads, NULL), LSTM_OK);
    }
    return p;
}

static part model_part(lstm_network *network)
{
    part p;
    assert_int_equal(lstm_model_params(lstm_network_model(network), &p.params, &p.count), LSTM_OK);
    assert_int_equal(lstm_model_grads(lstm_network_model(network), &p.grads, NULL), LSTM_OK);
    return p;
}

static part head_part(lstm_network *network)
{
    part p = {NULL, NULL, 0};
    lstm_dense *head = lstm_network_head(network);
    if (head != NULL) {
        assert_int_equal(lstm_dense_params(head, &p.params, &p.count), LSTM_OK);
        assert_int_equal(lstm_dense_grads(head, &p.grads, NULL), LSTM_OK);
    }
    return p;
}

/* The saved state's bytes; the caller frees them. */
static unsigned char *saved_state(const lstm_optim *optim, size_t *bytes)
{
    assert_int_equal(lstm_optim_state_size(optim, bytes), LSTM_OK);
    unsigned char *state = malloc(*bytes);
    assert_non_null(state);
    assert_int_equal(lstm_optim_save_state(optim, state, *bytes), LSTM_OK);
    return state;
}

/* A little-endian float32 of the state at float index k of the arrays. */
static float state_value(const unsigned char *state, size_t k)
{
    const unsigned char *at = state + 40 + 4 * k;
    uint32_t bits =
        (uint32_t)at[0] | (uint32_t)at[1] << 8 | (uint32_t)at[2] << 16 | (uint32_t)at[3] << 24;
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

/* Binds network to a fresh Adam, sets each part's gradient to its own
 * constant (1, 2, 3: embedding, LSTM, head), steps once, and checks the
 * count, the order of the first moment (1 - beta1) g = g / 2 in the state,
 * and that every parameter of every part moved against its gradient. */
static void check_order(bool with_embedding, bool with_head)
{
    lstm_network *network = make_network(with_embedding, with_head);
    const part parts[3] = {embedding_part(network), model_part(network), head_part(network)};
    lstm_optim *optim = make_adam(0);
    assert_int_equal(lstm_optim_add_network(optim, network), LSTM_OK);
    const size_t total = parts[0].count + parts[1].count + parts[2].count;
    assert_int_equal(lstm_optim_param_count(optim), total);
    assert_int_equal(lstm_optim_param_count(optim), lstm_network_param_count(network));

    float *before[3];
    for (int n = 0; n < 3; n++) {
        before[n] = malloc(parts[n].count * sizeof(float) + 1);
        assert_non_null(before[n]);
        for (size_t k = 0; k < parts[n].count; k++)
            parts[n].grads[k] = (float)(n + 1);
        if (parts[n].count != 0)
            memcpy(before[n], parts[n].params, parts[n].count * sizeof(float));
    }
    assert_int_equal(lstm_optim_step(optim), LSTM_OK);
    size_t bytes;
    unsigned char *state = saved_state(optim, &bytes);
    assert_int_equal(bytes, 40 + 2 * total * sizeof(float));
    size_t at = 0;
    for (int n = 0; n < 3; n++) {
        for (size_t k = 0; k < parts[n].count; k++, at++) {
            if (state_value(state, at) != 0.5f * (float)(n + 1))
                fail_msg("exp_avg[%zu] is %g: parameter %zu of part %d is not bound there", at,
                         (double)state_value(state, at), k, n);
            /* Adam's first step moves each parameter by about lr against g */
            const float moved = before[n][k] - parts[n].params[k];
            if (!(fabsf(moved - 0.01f) < 1e-5f))
                fail_msg("part %d parameter %zu moved by %g", n, k, (double)moved);
        }
    }
    assert_int_equal(at, total);
    free(state);
    for (int n = 0; n < 3; n++)
        free(before[n]);
    lstm_optim_destroy(optim);
    lstm_network_destroy(network);
}

static void test_binding_order(void **unused)
{
    (void)unused;
    check_order(true, true);
    check_order(false, true);  /* features: LSTM, head */
    check_order(true, false);  /* embedding, LSTM */
    check_order(false, false); /* the LSTM alone */
}

/* A lazy embedding next to the dense LSTM and head: the embedding moves in
 * its touched rows only, the LSTM and the head as without the flag. */
static void test_lazy_network(void **unused)
{
    (void)unused;
    lstm_network *lazy_net = make_network(true, true), *dense_net = make_network(true, true);
    lstm_optim *lazy = make_adam(LSTM_OPTIM_LAZY_ROWS), *dense = make_adam(0);
    assert_int_equal(lstm_optim_add_network(lazy, lazy_net), LSTM_OK);
    assert_int_equal(lstm_optim_add_network(dense, dense_net), LSTM_OK);
    lstm_network *nets[2] = {lazy_net, dense_net};
    lstm_optim *optims[2] = {lazy, dense};
    const int64_t ids[4] = {5, PADDING, 1, 5};
    float dout[4 * E];
    for (size_t k = 0; k < 4 * E; k++)
        dout[k] = 0.25f * (float)k - 1.0f;
    float W_before[V * E];
    memcpy(W_before, embedding_part(lazy_net).params, sizeof W_before);
    for (int step = 0; step < 3; step++) {
        for (int n = 0; n < 2; n++) {
            assert_int_equal(lstm_optim_zero_grads(optims[n]), LSTM_OK);
            const part model = model_part(nets[n]), head = head_part(nets[n]);
            for (size_t k = 0; k < model.count; k++)
                model.grads[k] = 0.001f * (float)(k % 17) - 0.008f * (float)step;
            for (size_t k = 0; k < head.count; k++)
                head.grads[k] = 0.5f - 0.03f * (float)k;
            /* steps 0 and 2 use the embedding, step 1 does not */
            if (step != 1)
                assert_int_equal(
                    lstm_embedding_backward(lstm_network_embedding(nets[n]), 4, ids, dout),
                    LSTM_OK);
            assert_int_equal(lstm_optim_step(optims[n]), LSTM_OK);
        }
        const part lazy_model = model_part(lazy_net), dense_model = model_part(dense_net);
        const part lazy_head = head_part(lazy_net), dense_head = head_part(dense_net);
        assert_memory_equal(lazy_model.params, dense_model.params,
                            lazy_model.count * sizeof(float));
        assert_memory_equal(lazy_head.params, dense_head.params, lazy_head.count * sizeof(float));
    }
    /* lazily, rows 1 and 5 moved, no other; densely, Adam's moments moved
     * them in step 1 too, so the two differ there */
    const float *W = embedding_part(lazy_net).params, *W_dense = embedding_part(dense_net).params;
    for (size_t row = 0; row < V; row++) {
        const bool used = row == 1 || row == 5;
        const bool moved = memcmp(W + row * E, W_before + row * E, E * sizeof(float)) != 0;
        assert_true(moved == used);
        if (used)
            assert_true(memcmp(W + row * E, W_dense + row * E, E * sizeof(float)) != 0);
    }
    lstm_optim_destroy(lazy);
    lstm_optim_destroy(dense);
    lstm_network_destroy(lazy_net);
    lstm_network_destroy(dense_net);
}

/* A bind that fails after others were made leaves the optimizer as it was. */
static void test_all_or_nothing(void **unused)
{
    (void)unused;
    lstm_network *network = make_network(true, true);
    const part head = head_part(network);
    lstm_optim *optim = make_adam(0);
    assert_int_equal(lstm_optim_add_network(NULL, network), LSTM_E_NULL);
    assert_message_has("optim");
    assert_int_equal(lstm_optim_add_network(optim, NULL), LSTM_E_NULL);
    assert_message_has("network");
    assert_int_equal(lstm_optim_param_count(optim), 0);

    /* the head bound first: the network's third bind overlaps it */
    assert_int_equal(lstm_optim_add_buffer(optim, head.params, head.grads, head.count), LSTM_OK);
    size_t bytes_before;
    unsigned char *before = saved_state(optim, &bytes_before);
    assert_int_equal(lstm_optim_add_network(optim, network), LSTM_E_ARG);
    assert_message_has("overlap");
    assert_int_equal(lstm_optim_param_count(optim), head.count);
    size_t bytes_after;
    unsigned char *after = saved_state(optim, &bytes_after);
    assert_int_equal(bytes_after, bytes_before);
    assert_memory_equal(after, before, bytes_before);
    free(after);

    /* still usable, with the head alone bound: a step moves the head only */
    const part model = model_part(network), embedding = embedding_part(network);
    for (size_t k = 0; k < model.count; k++)
        model.grads[k] = 1.0f;
    for (size_t k = 0; k < embedding.count; k++)
        embedding.grads[k] = 1.0f;
    for (size_t k = 0; k < head.count; k++)
        head.grads[k] = 1.0f;
    float *model_before = malloc(model.count * sizeof(float));
    assert_non_null(model_before);
    memcpy(model_before, model.params, model.count * sizeof(float));
    const float head_first = head.params[0];
    assert_int_equal(lstm_optim_step(optim), LSTM_OK);
    assert_memory_equal(model.params, model_before, model.count * sizeof(float));
    assert_true(head.params[0] != head_first);

    /* after a step the first bind is refused: nothing to undo */
    assert_int_equal(lstm_optim_add_network(optim, network), LSTM_E_STATE);
    assert_int_equal(lstm_optim_param_count(optim), head.count);
    free(model_before);
    free(before);
    lstm_optim_destroy(optim);

    /* a network bound twice to one optimizer: its first bind overlaps */
    optim = make_adam(LSTM_OPTIM_LAZY_ROWS);
    assert_int_equal(lstm_optim_add_network(optim, network), LSTM_OK);
    const size_t count = lstm_optim_param_count(optim);
    assert_int_equal(lstm_optim_add_network(optim, network), LSTM_E_ARG);
    assert_int_equal(lstm_optim_param_count(optim), count);
    lstm_optim_destroy(optim);
    lstm_network_destroy(network);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binding_order),
        cmocka_unit_test(test_lazy_network),
        cmocka_unit_test(test_all_or_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
