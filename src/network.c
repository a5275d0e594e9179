/*
 * Networks: an input (an embedding of token ids, or float features), the
 * LSTM stack and a dense head joined behind one handle. This file holds
 * the handle: creating it from its parts' configurations, its parts, and
 * the calls that go to every part.
 */
#include <string.h>

#include "abi.h"
#include "alloc.h"
#include "error.h"
#include "network_internal.h"

/* The first published lstm_network_config ends after head_size. */
#define CONFIG_V1_SIZE (offsetof(lstm_network_config, head_size) + sizeof(size_t))

LSTM_API lstm_status lstm_network_config_init(lstm_network_config *config, size_t struct_size)
{
    if (config == NULL)
        return lstm__fail(LSTM_E_NULL, "config is NULL");
    static const lstm_network_config defaults = LSTM_NETWORK_CONFIG_INIT;
    return lstm__abi_struct_write(config, struct_size, &defaults, sizeof defaults, CONFIG_V1_SIZE,
                                  "config");
}

/* How the parts are joined: the head and the loss it can have. */
static lstm_status check_joints(const lstm_network_config *c)
{
    if (c->head != LSTM_HEAD_NONE && c->head != LSTM_HEAD_EVERY_STEP &&
        c->head != LSTM_HEAD_LAST_STEP)
        return lstm__fail(LSTM_E_ARG,
                          "head is %u; it must be LSTM_HEAD_NONE, LSTM_HEAD_EVERY_STEP or "
                          "LSTM_HEAD_LAST_STEP",
                          (unsigned)c->head);
    if (c->loss > LSTM_LOSS_MSE)
        return lstm__fail(LSTM_E_ARG,
                          "loss is %u; it must be LSTM_LOSS_NONE, LSTM_LOSS_CROSS_ENTROPY, "
                          "LSTM_LOSS_BCE_WITH_LOGITS or LSTM_LOSS_MSE",
                          (unsigned)c->loss);
    if (c->head == LSTM_HEAD_NONE) {
        if (c->head_size != 0)
            return lstm__fail(LSTM_E_ARG, "head_size is %zu without a head; it must be 0",
                              c->head_size);
        if (c->loss == LSTM_LOSS_CROSS_ENTROPY)
            return lstm__fail(LSTM_E_ARG, "cross-entropy needs a head to give its classes");
        return LSTM_OK;
    }
    if (c->head_size == 0 || c->head_size > LSTM_MAX_SIZE)
        return lstm__fail(LSTM_E_SIZE, "head_size is %zu; it must be in [1, %zu]", c->head_size,
                          LSTM_MAX_SIZE);
    if (c->loss == LSTM_LOSS_CROSS_ENTROPY && c->head_size < 2)
        return lstm__fail(LSTM_E_ARG, "cross-entropy needs head_size >= 2 classes; it is %zu",
                          c->head_size);
    return LSTM_OK;
}

LSTM_API lstm_status lstm_network_create(const lstm_network_config *config, lstm_network **out)
{
    if (config == NULL || out == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", config == NULL ? "config" : "out");
    lstm_network_config known;
    lstm_status status =
        lstm__abi_struct_read(config, &known, sizeof known, CONFIG_V1_SIZE, "config");
    if (status != LSTM_OK)
        return status;
    if (known.lstm == NULL)
        return lstm__fail(LSTM_E_NULL, "config->lstm is NULL");
    if ((status = check_joints(&known)) != LSTM_OK)
        return status;

    lstm_network *network = lstm__mem_alloc(sizeof *network);
    if (network == NULL)
        return lstm__fail(LSTM_E_NOMEM, "allocating a network");
    memset(network, 0, sizeof *network);
    if ((status = lstm_model_create(known.lstm, &network->model)) != LSTM_OK)
        goto fail;
    lstm_config_init(&network->lstm_config, sizeof network->lstm_config);
    lstm_model_get_config(network->model, &network->lstm_config);
    const lstm_config *lc = &network->lstm_config;
    const size_t directions = (lc->flags & LSTM_BIDIRECTIONAL) ? 2 : 1;
    const size_t state_size = lc->proj_size != 0 ? lc->proj_size : lc->hidden_size;
    network->lstm_output_size = directions * state_size;

    if (known.embedding != NULL) {
        if ((status = lstm_embedding_create(known.embedding, &network->embedding)) != LSTM_OK)
            goto fail;
        lstm_embedding_config_init(&network->embedding_config, sizeof network->embedding_config);
        lstm_embedding_get_config(network->embedding, &network->embedding_config);
        if (network->embedding_config.embedding_dim != lc->input_size) {
            status = lstm__fail(LSTM_E_SHAPE,
                                "the embedding's embedding_dim is %zu; the LSTM's input_size "
                                "is %zu: they must be equal",
                                network->embedding_config.embedding_dim, lc->input_size);
            goto fail;
        }
    }
    if (known.head != LSTM_HEAD_NONE &&
        (status = lstm_dense_create(network->lstm_output_size, known.head_size, &network->head)) !=
            LSTM_OK)
        goto fail;
    network->output_size =
        known.head != LSTM_HEAD_NONE ? known.head_size : network->lstm_output_size;
    network->config = known;
    network->config.struct_size = sizeof network->config;
    network->config.embedding = network->embedding != NULL ? &network->embedding_config : NULL;
    network->config.lstm = &network->lstm_config;
    *out = network;
    return LSTM_OK;
fail:
    lstm_network_destroy(network);
    return status;
}

LSTM_API void lstm_network_destroy(lstm_network *network)
{
    if (network == NULL)
        return;
    lstm_embedding_destroy(network->embedding);
    lstm_model_destroy(network->model);
    lstm_dense_destroy(network->head);
    lstm__meta_clear(&network->meta);
    lstm__mem_free(network);
}

LSTM_API lstm_status lstm_network_get_config(const lstm_network *network,
                                             lstm_network_config *config)
{
    if (network == NULL || config == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", network == NULL ? "network" : "config");
    return lstm__abi_struct_write(config, config->struct_size, &network->config,
                                  sizeof network->config, CONFIG_V1_SIZE, "config");
}

LSTM_API lstm_embedding *lstm_network_embedding(lstm_network *network)
{
    return network == NULL ? NULL : network->embedding;
}

LSTM_API lstm_model *lstm_network_model(lstm_network *network)
{
    return network == NULL ? NULL : network->model;
}

LSTM_API lstm_dense *lstm_network_head(lstm_network *network)
{
    return network == NULL ? NULL : network->head;
}

LSTM_API size_t lstm_network_param_count(const lstm_network *network)
{
    if (network == NULL)
        return 0;
    /* each part's count fits in size_t; their sum is bounded by memory held */
    return lstm_embedding_param_count(network->embedding) + lstm_model_param_count(network->model) +
           lstm_dense_param_count(network->head);
}

LSTM_API lstm_status lstm_network_init(lstm_network *network, uint64_t seed, uint32_t flags)
{
    if (network == NULL)
        return lstm__fail(LSTM_E_NULL, "network is NULL");
    /* the model checks flags before anything is written */
    lstm_status status = lstm_model_init(network->model, seed + 1, flags);
    if (status == LSTM_OK && network->embedding != NULL)
        status = lstm_embedding_init(network->embedding, seed);
    if (status == LSTM_OK && network->head != NULL)
        status = lstm_dense_init(network->head, seed + 2);
    return status;
}

LSTM_API lstm_status lstm_network_zero_grads(lstm_network *network)
{
    if (network == NULL)
        return lstm__fail(LSTM_E_NULL, "network is NULL");
    lstm_model_zero_grads(network->model);
    if (network->embedding != NULL)
        lstm_embedding_zero_grads(network->embedding);
    if (network->head != NULL)
        lstm_dense_zero_grads(network->head);
    return LSTM_OK;
}
