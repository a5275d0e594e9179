/*
 * Networks: an input (an embedding of token ids, or float features), the
 * LSTM stack and a dense head joined behind one handle. This file holds
 * the handle (creating it from its parts' configurations, its parts, the
 * calls that go to every part) and its passes, each made of the parts' own
 * calls: lstm_embedding_forward(), the model's forward, lstm_dense_forward()
 * and a loss of loss.h, then their backward calls in reverse.
 */
#include <string.h>

#include "abi.h"
#include "alloc.h"
#include "args.h"
#include "check.h"
#include "embedding_internal.h"
#include "error.h"
#include "head_internal.h"
#include "loss.h"
#include "network_internal.h"
#include "network_lowp.h"
#include "state.h"
#include "workspace.h"
#include "lstm/train.h"

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
    lstm__mem_free(network->stored_memory);
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

/* ---- the passes ---- */

/*
 * A pass's memory, in the workspace's scratch (lstm__workspace_scratch()),
 * this record first: a network is only read by its forward calls, so any
 * number of threads may share one. A training forward leaves it for
 * backward (workspace->trained_network says whose it is).
 */
typedef struct pass_memory {
    row_mask steps;           /* T, B, layout and lengths (the copy below) of the call */
    size_t *lengths;          /* [B] the call's lengths, or NULL */
    int64_t *ids;             /* [T B] training, token networks: the valid positions' ids */
    float *x;                 /* [T B][I] token networks: the embedded ids; backward: dx */
    float *y;                 /* [T B][D R] the LSTM's output */
    float *hT, *cT;           /* [L D][B][R], [L D][B][H] */
    float *last;              /* [B][D R] the last-step head's input */
    float *z;                 /* [rows][O] the head's output (y without a head) */
    float *dz;                /* training: [rows][O] dL/dz */
    float *dy;                /* training with a head: every step dL/dy [T B][D R]; last step
                                 dL/dhT [L D][B][R] */
    float *dlast;             /* training, last step: [B][D R] */
    lstm_precision precision; /* of the call's products: inference's, or float32 */
    head_scratch head_lowp;   /* a reduced precision's head product */
    bool head_packed;         /* head_lowp.packing holds W, kept from an earlier call */
} pass_memory;

/* Rows of the network's output: B with a last-step head, else T B. */
static size_t output_rows(const lstm_network *network, size_t T, size_t B)
{
    return network->config.head == LSTM_HEAD_LAST_STEP ? B : T * B;
}

/* Carves a pass's memory for T and B (rows = T B fits, checked before)
 * in the precision of its products (float32 when training). */
static pass_memory *carve_pass(carver *c, const lstm_network *network, size_t T, size_t B,
                               bool train, lstm_precision precision)
{
    const lstm_model *model = network->model;
    const size_t rows = T * B, Y = network->lstm_output_size, O = network->output_size;
    const size_t states = model->num_layers * model->directions * B;
    const bool tokens = network->embedding != NULL;
    const uint32_t head = network->config.head;
    const size_t out_rows = output_rows(network, T, B);
    /* a reduced precision's head first: its packing may stay from one call
     * to the next at the scratch memory's start (head_kept()) */
    head_scratch head_lowp = {NULL, NULL, NULL, NULL};
    if (head != LSTM_HEAD_NONE && precision != LSTM_PRECISION_FP32)
        lstm__network_head_carve(c, network, precision, out_rows, &head_lowp);
    pass_memory *m = lstm__carve(c, 1, 1, sizeof(pass_memory));
    size_t *lengths = lstm__carve(c, B, 1, sizeof(size_t));
    int64_t *ids = tokens && train ? lstm__carve(c, rows, 1, sizeof(int64_t)) : NULL;
    float *x = tokens ? lstm__carve(c, rows, model->input_size, sizeof(float)) : NULL;
    float *y = lstm__carve(c, rows, Y, sizeof(float));
    float *hT = lstm__carve(c, states, model->state_size, sizeof(float));
    float *cT = lstm__carve(c, states, model->hidden_size, sizeof(float));
    float *last = head == LSTM_HEAD_LAST_STEP ? lstm__carve(c, B, Y, sizeof(float)) : NULL;
    float *z = head != LSTM_HEAD_NONE ? lstm__carve(c, out_rows, O, sizeof(float)) : y;
    float *dz = train ? lstm__carve(c, out_rows, O, sizeof(float)) : NULL;
    float *dy = NULL, *dlast = NULL;
    if (train && head == LSTM_HEAD_EVERY_STEP)
        dy = lstm__carve(c, rows, Y, sizeof(float));
    if (train && head == LSTM_HEAD_LAST_STEP) {
        dy = lstm__carve(c, states, model->state_size, sizeof(float));
        dlast = lstm__carve(c, B, Y, sizeof(float));
    }
    if (m != NULL)
        *m = (pass_memory){.lengths = lengths,
                           .ids = ids,
                           .x = x,
                           .y = y,
                           .hT = hT,
                           .cT = cT,
                           .last = last,
                           .z = z,
                           .dz = dz,
                           .dy = dy,
                           .dlast = dlast,
                           .precision = precision,
                           .head_lowp = head_lowp};
    return m;
}

/* The next run of positions from *next on that are all within their
 * sequence, or all past its end: [*first, *next). Whether within. */
static bool next_run(const row_mask *steps, size_t rows, size_t *first, size_t *next)
{
    *first = *next;
    const bool valid = row_mask_kept(steps, *first);
    size_t p = *first + 1;
    while (p < rows && row_mask_kept(steps, p) == valid)
        p++;
    *next = p;
    return valid;
}

/* Every token within its sequence in [0, V); the others are never read. */
static lstm_status check_tokens(const lstm_network *network, const row_mask *steps,
                                const int64_t *tokens)
{
    const size_t V = network->embedding_config.num_embeddings;
    const size_t T = steps->seq_len, B = steps->batch;
    for (size_t p = 0; p < T * B; p++) {
        if (!row_mask_kept(steps, p) || (tokens[p] >= 0 && (uint64_t)tokens[p] < V))
            continue;
        const size_t t = steps->batch_first ? p % T : p / B;
        const size_t b = steps->batch_first ? p / T : p % B;
        return lstm__fail(LSTM_E_ARG,
                          "inputs->tokens[%zu] (step %zu of sequence %zu) is %lld; it must be "
                          "in [0, %zu)",
                          p, t, b, (long long)tokens[p], V);
    }
    return LSTM_OK;
}

/* x = the embedding of the valid positions' tokens, zero past each
 * sequence's end, in the pass's precision (network_lowp.h); training keeps
 * the ids for backward. */
static lstm_status embed_tokens(const lstm_network *network, const pass_memory *m,
                                const int64_t *tokens)
{
    const size_t rows = m->steps.seq_len * m->steps.batch, E = network->model->input_size;
    lstm_status status = LSTM_OK;
    for (size_t first, next = 0; status == LSTM_OK && next < rows;) {
        if (next_run(&m->steps, rows, &first, &next)) {
            status = lstm_embedding_forward(network->embedding, next - first, tokens + first,
                                            m->x + first * E);
            if (status == LSTM_OK)
                lstm__network_embedded_in(network, m->precision, next - first, tokens + first,
                                          m->x + first * E);
            if (m->ids != NULL)
                memcpy(m->ids + first, tokens + first, (next - first) * sizeof(int64_t));
        } else {
            memset(m->x + first * E, 0, (next - first) * E * sizeof(float));
            /* id 0 exists (V >= 1): backward can bound its rows over all T B */
            if (m->ids != NULL)
                memset(m->ids + first, 0, (next - first) * sizeof(int64_t));
        }
    }
    return status;
}

/* The input the network's kind reads, and not the other. */
static lstm_status check_input(const lstm_network *network, const lstm_network_inputs *inputs)
{
    const bool tokens = network->embedding != NULL;
    const void *wanted = tokens ? (const void *)inputs->tokens : (const void *)inputs->features;
    const void *other = tokens ? (const void *)inputs->features : (const void *)inputs->tokens;
    if (wanted == NULL)
        return lstm__fail(LSTM_E_NULL, "inputs->%s is NULL", tokens ? "tokens" : "features");
    if (other != NULL)
        return lstm__fail(LSTM_E_ARG, "inputs->%s is set; a %s network reads inputs->%s only",
                          tokens ? "features" : "tokens", tokens ? "token" : "features",
                          tokens ? "tokens" : "features");
    return LSTM_OK;
}

/* T and B at least 1, T B rows addressable, every length in [1, T]. */
static lstm_status check_steps(const lstm_sequences *sequences)
{
    const size_t T = sequences->steps, B = sequences->batch;
    size_t rows;
    if (T == 0 || B == 0)
        return lstm__fail(LSTM_E_SIZE, "sequences->%s is 0; it must be at least 1",
                          T == 0 ? "steps" : "batch");
    if (!size_mul(T, B, &rows))
        return lstm__fail(LSTM_E_OVERFLOW, "steps %zu x batch %zu overflows size_t", T, B);
    return lstm__workspace_check_lengths(sequences->lengths, T, B);
}

/* The top layer's final hidden state of each direction, side by side:
 * last[b] = [hT[(L-1) D + 0][b], ..., hT[(L-1) D + D-1][b]]. */
static void gather_last(const lstm_model *model, size_t B, const float *hT, float *last)
{
    const size_t D = model->directions, R = model->state_size;
    const float *top = hT + (model->num_layers - 1) * D * B * R;
    for (size_t b = 0; b < B; b++)
        for (size_t d = 0; d < D; d++)
            memcpy(last + (b * D + d) * R, top + (d * B + b) * R, R * sizeof(float));
}

/* Backward of gather_last(): dL/dhT, zero but in the top layer. */
static void scatter_last(const lstm_model *model, size_t B, const float *dlast, float *dhT)
{
    const size_t D = model->directions, R = model->state_size;
    const size_t below = (model->num_layers - 1) * D * B * R;
    memset(dhT, 0, below * sizeof(float));
    for (size_t b = 0; b < B; b++)
        for (size_t d = 0; d < D; d++)
            memcpy(dhT + below + (d * B + b) * R, dlast + (b * D + d) * R, R * sizeof(float));
}

/* The head on the LSTM's outputs: z = y W^T + b every step (zero past each
 * sequence's end), or z = last W^T + b; in the pass's precision. */
static lstm_status run_head(const lstm_network *network, const lstm_workspace *workspace,
                            const pass_memory *m)
{
    const size_t T = m->steps.seq_len, B = m->steps.batch, O = network->output_size;
    const bool last = network->config.head == LSTM_HEAD_LAST_STEP;
    const size_t rows = last ? B : T * B;
    const float *x = last ? m->last : m->y;
    lstm_status status;
    if (m->precision == LSTM_PRECISION_FP32)
        status = lstm_dense_forward(network->head, rows, x, m->z);
    else
        status = lstm__network_head_forward(network, m->precision, workspace->workers,
                                            &m->head_lowp, m->head_packed, rows, x, m->z);
    if (last)
        return status;
    for (size_t r = 0; status == LSTM_OK && r < T * B; r++)
        if (!row_mask_kept(&m->steps, r))
            memset(m->z + r * O, 0, O * sizeof(float));
    return status;
}

typedef enum pass_kind { PASS_INFER, PASS_TRAIN, PASS_CHUNK, PASS_STREAM } pass_kind;

/* The LSTM of a pass: one of the model's four forward calls. */
static lstm_status run_model(const lstm_network *network, lstm_workspace *workspace,
                             lstm_state *state, pass_kind kind, const network_call *call,
                             const float *x, const pass_memory *m)
{
    const lstm_inputs inputs = {sizeof inputs, x, call->inputs.h0, call->inputs.c0};
    const lstm_outputs outputs = {sizeof outputs, m->y, m->hT, m->cT};
    const lstm_model *model = network->model;
    switch (kind) {
    case PASS_TRAIN:
        return lstm_model_train_forward(model, workspace, &call->sequences, &inputs, &outputs);
    case PASS_CHUNK:
        return lstm_model_train_chunk(model, workspace, state, &call->sequences, &inputs, &outputs);
    case PASS_STREAM:
        return lstm_model_infer_stream(model, state, &call->sequences, &inputs, &outputs);
    case PASS_INFER: break;
    }
    return lstm_model_infer(model, workspace, &call->sequences, &inputs, &outputs);
}

/* Copies a pass's results to the caller's outputs, each when wanted. */
static void write_outputs(const lstm_network *network, const pass_memory *m,
                          const lstm_network_outputs *outputs)
{
    const lstm_model *model = network->model;
    const size_t B = m->steps.batch, states = model->num_layers * model->directions * B;
    const size_t out_rows = output_rows(network, m->steps.seq_len, B);
    if (outputs->output != NULL)
        memcpy(outputs->output, m->z, out_rows * network->output_size * sizeof(float));
    if (outputs->hT != NULL)
        memcpy(outputs->hT, m->hT, states * model->state_size * sizeof(float));
    if (outputs->cT != NULL)
        memcpy(outputs->cT, m->cT, states * model->hidden_size * sizeof(float));
}

/*
 * A pass in scratch memory: input, LSTM, head; the outputs are written only
 * once every part has succeeded.
 */
static lstm_status run_pass(const lstm_network *network, lstm_workspace *workspace,
                            lstm_state *state, pass_kind kind, const network_call *call,
                            lstm_precision precision, bool head_packed, void *scratch)
{
    const size_t T = call->sequences.steps, B = call->sequences.batch;
    const bool train = kind == PASS_TRAIN || kind == PASS_CHUNK;
    carver c = {scratch, 0, false};
    pass_memory *m = carve_pass(&c, network, T, B, train, precision);
    m->head_packed = head_packed;
    const size_t *lengths = call->sequences.lengths;
    if (lengths != NULL)
        memcpy(m->lengths, lengths, B * sizeof(size_t));
    m->steps =
        (row_mask){T, B, lstm__args_batch_first(&call->sequences, network->lstm_config.flags),
                   lengths != NULL ? m->lengths : NULL, NULL};

    lstm_status status;
    const float *x = call->inputs.features;
    if (network->embedding != NULL) {
        if ((status = check_tokens(network, &m->steps, call->inputs.tokens)) != LSTM_OK ||
            (status = embed_tokens(network, m, call->inputs.tokens)) != LSTM_OK)
            return status;
        x = m->x;
    }
    if ((status = run_model(network, workspace, state, kind, call, x, m)) != LSTM_OK)
        return status;
    if (network->config.head == LSTM_HEAD_LAST_STEP)
        gather_last(network->model, B, m->hT, m->last);
    if (network->head != NULL && (train || call->outputs.output != NULL) &&
        (status = run_head(network, workspace, m)) != LSTM_OK)
        return status;
    write_outputs(network, m, &call->outputs);
    return LSTM_OK;
}

/*
 * Whether the head's packing in a reduced precision at the start of the
 * scratch memory holds this network's W from an earlier call: only while
 * the workspace keeps weights (lstm_workspace_keep_weights(),
 * lstm_state_keep_weights()), and under their rules, as the LSTM's
 * packing is kept: that must be ready for this call too (the same model
 * and generation, the batch: any call of lstm_workspace_keep_weights(),
 * a change of the model or of the precision make both pack again); the
 * head's parameters unchanged since (head_internal.h); the same memory.
 */
static bool head_kept(const lstm_network *network, const lstm_workspace *workspace,
                      lstm_precision precision, size_t batch, const void *scratch)
{
    const lstm_model *model = network->model;
    const kept_head *kept = &workspace->kept_head;
    return workspace->kept_weights != NULL && workspace->kept_generation == model->generation &&
           workspace->kept_batch == batch && kept->identity == model->identity &&
           kept->generation == lstm__dense_generation(network->head) &&
           kept->precision == precision && kept->memory == scratch;
}

/* Every forward call: the checks, then the pass in the workspace's scratch. */
static lstm_status forward_pass(const lstm_network *network, lstm_workspace *workspace,
                                lstm_state *state, pass_kind kind, const lstm_sequences *sequences,
                                const lstm_network_inputs *inputs,
                                const lstm_network_outputs *outputs)
{
    if (workspace != NULL) /* any forward call ends the training state held */
        workspace->trained_network = 0;
    if (network == NULL)
        return lstm__fail(LSTM_E_NULL, "network is NULL");
    if ((kind == PASS_CHUNK || kind == PASS_STREAM) && state == NULL)
        return lstm__fail(LSTM_E_NULL, "state is NULL");
    if (workspace == NULL)
        return lstm__fail(LSTM_E_NULL, "workspace is NULL");
    network_call call;
    const bool train = kind == PASS_TRAIN || kind == PASS_CHUNK;
    size_t model_bytes; /* T and B within the model's limits before any memory is had */
    lstm_status status = lstm__args_read_network_call(sequences, inputs, outputs, &call);
    if (status != LSTM_OK || (status = check_input(network, &call.inputs)) != LSTM_OK ||
        (status = lstm_workspace_size(network->model, train ? LSTM_MODE_TRAIN : LSTM_MODE_INFER,
                                      call.sequences.steps, call.sequences.batch, &model_bytes)) !=
            LSTM_OK ||
        (status = check_steps(&call.sequences)) != LSTM_OK)
        return status;
    const size_t T = call.sequences.steps, B = call.sequences.batch;
    /* inference runs in the workspace's precision (a state's is its
     * workspace's), training in float32 */
    const lstm_precision precision = train ? LSTM_PRECISION_FP32 : workspace->precision;
    carver sizes = {NULL, 0, false};
    carve_pass(&sizes, network, T, B, train, precision);
    if (sizes.overflow)
        return lstm__fail(LSTM_E_OVERFLOW,
                          "a network pass of %zu steps and batch %zu overflows size_t", T, B);
    void *scratch = NULL;
    if ((status = lstm__workspace_scratch(workspace, sizes.used, &scratch)) != LSTM_OK)
        return status;
    const bool reduced_head = precision != LSTM_PRECISION_FP32 && network->head != NULL;
    const bool packed = reduced_head && head_kept(network, workspace, precision, B, scratch);
    /* any pass may write over a kept packing; a successful one keeps its own */
    workspace->kept_head = (kept_head){0, 0, LSTM_PRECISION_FP32, NULL};
    status = run_pass(network, workspace, state, kind, &call, precision, packed, scratch);
    lstm__workspace_scratch_done(workspace, scratch, sizes.used, status == LSTM_OK);
    if (status == LSTM_OK && reduced_head && workspace->kept_weights != NULL)
        workspace->kept_head = (kept_head){
            network->model->identity, lstm__dense_generation(network->head), precision, scratch};
    if (status == LSTM_OK && train)
        workspace->trained_network = network->model->identity;
    return status;
}

LSTM_API lstm_status lstm_network_infer(const lstm_network *network, lstm_workspace *workspace,
                                        const lstm_sequences *sequences,
                                        const lstm_network_inputs *inputs,
                                        const lstm_network_outputs *outputs)
{
    return forward_pass(network, workspace, NULL, PASS_INFER, sequences, inputs, outputs);
}

LSTM_API lstm_status lstm_network_train_forward(const lstm_network *network,
                                                lstm_workspace *workspace,
                                                const lstm_sequences *sequences,
                                                const lstm_network_inputs *inputs,
                                                const lstm_network_outputs *outputs)
{
    return forward_pass(network, workspace, NULL, PASS_TRAIN, sequences, inputs, outputs);
}

LSTM_API lstm_status lstm_network_train_chunk(const lstm_network *network,
                                              lstm_workspace *workspace, lstm_state *state,
                                              const lstm_sequences *sequences,
                                              const lstm_network_inputs *inputs,
                                              const lstm_network_outputs *outputs)
{
    return forward_pass(network, workspace, state, PASS_CHUNK, sequences, inputs, outputs);
}

LSTM_API lstm_status lstm_network_infer_stream(const lstm_network *network, lstm_state *state,
                                               const lstm_sequences *sequences,
                                               const lstm_network_inputs *inputs,
                                               const lstm_network_outputs *outputs)
{
    return forward_pass(network, lstm__state_workspace(state), state, PASS_STREAM, sequences,
                        inputs, outputs);
}

/*
 * The network's loss of rows of output against targets (rows the mask
 * leaves out never read), and dL/d(output) when doutput is not NULL. With
 * LSTM_LOSS_NONE (backward only), dL/d(output) is targets->grad.
 */
static lstm_status network_loss(const lstm_network *network, const lstm_targets *targets,
                                const row_mask *mask, size_t rows, const float *output,
                                double *loss, float *doutput)
{
    loss_rows all = {rows, network->output_size, *mask, "output", NULL};
    switch (network->config.loss) {
    case LSTM_LOSS_CROSS_ENTROPY:
        if (targets->classes == NULL)
            return lstm__fail(LSTM_E_NULL, "targets->classes is NULL");
        all.targets = "targets->classes";
        return lstm__loss_cross_entropy(&all, output, targets->classes, -1, true, loss, doutput);
    case LSTM_LOSS_BCE_WITH_LOGITS:
    case LSTM_LOSS_MSE:
        if (targets->values == NULL)
            return lstm__fail(LSTM_E_NULL, "targets->values is NULL");
        all.targets = "targets->values";
        return network->config.loss == LSTM_LOSS_MSE
                   ? lstm__loss_mse(&all, output, targets->values, loss, doutput)
                   : lstm__loss_bce_with_logits(&all, output, targets->values, loss, doutput);
    default: break;
    }
    if (doutput == NULL)
        return lstm__fail(LSTM_E_ARG, "the network has no loss (LSTM_LOSS_NONE)");
    if (targets->grad == NULL)
        return lstm__fail(LSTM_E_NULL, "targets->grad is NULL");
    all.targets = "targets->grad";
    *loss = 0.0;
    return lstm__loss_given(&all, targets->grad, doutput);
}

/* The rows of the output the loss reads: all B of a last-step head. */
/* The output's rows that count in the loss: within their sequence (every
 * step) or every sequence (last step), and kept by the targets' mask. */
static row_mask output_mask(const lstm_network *network, const row_mask *steps,
                            const lstm_targets *targets)
{
    row_mask mask = *steps;
    if (network->config.head == LSTM_HEAD_LAST_STEP)
        mask = (row_mask){1, steps->batch, false, NULL, NULL};
    mask.keep = targets->mask;
    return mask;
}

LSTM_API lstm_status lstm_network_loss(const lstm_network *network, const lstm_sequences *sequences,
                                       const float *output, const lstm_targets *targets,
                                       double *loss)
{
    if (network == NULL || output == NULL || loss == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL",
                          network == NULL  ? "network"
                          : output == NULL ? "output"
                                           : "loss");
    lstm_sequences known;
    lstm_targets read_targets;
    lstm_status status = lstm__args_read_sequences(sequences, &known);
    if (status != LSTM_OK || (status = check_steps(&known)) != LSTM_OK ||
        (status = lstm__args_read_targets(targets, &read_targets)) != LSTM_OK)
        return status;
    if (network->config.loss == LSTM_LOSS_NONE)
        return lstm__fail(LSTM_E_ARG, "the network has no loss (LSTM_LOSS_NONE)");
    const size_t T = known.steps, B = known.batch, rows = output_rows(network, T, B);
    size_t elements;
    if (!size_mul(rows, network->output_size, &elements) ||
        !size_mul(elements, sizeof(float), &elements))
        return lstm__fail(LSTM_E_OVERFLOW, "%zu rows of %zu outputs overflow size_t", rows,
                          network->output_size);
    const row_mask steps = {T, B, lstm__args_batch_first(&known, network->lstm_config.flags),
                            known.lengths, NULL};
    const row_mask mask = output_mask(network, &steps, &read_targets);
    double value = 0.0;
    if ((status = network_loss(network, &read_targets, &mask, rows, output, &value, NULL)) !=
        LSTM_OK)
        return status;
    *loss = value;
    return LSTM_OK;
}

/* The workspace holds this network's training forward. */
static lstm_status check_trained(const lstm_network *network, const lstm_workspace *workspace)
{
    if (workspace->trained_network == 0)
        return lstm__fail(LSTM_E_STATE, "the workspace holds no network's training forward to "
                                        "go back through");
    /* the model's forward is the network's own unless a model call came
     * between, which drops both */
    if (workspace->trained_network != network->model->identity ||
        workspace->trained_identity != network->model->identity)
        return lstm__fail(LSTM_E_STATE,
                          "the workspace's training forward was run on another network");
    return LSTM_OK;
}

/* dL/dx of the valid positions into the embedding's gradient. */
static lstm_status embedding_backward(lstm_network *network, const pass_memory *m)
{
    const size_t rows = m->steps.seq_len * m->steps.batch, E = network->model->input_size;
    lstm_status status = LSTM_OK;
    for (size_t first, next = 0; status == LSTM_OK && next < rows;)
        if (next_run(&m->steps, rows, &first, &next))
            status = lstm_embedding_backward(network->embedding, next - first, m->ids + first,
                                             m->x + first * E);
    return status;
}

LSTM_API lstm_status lstm_network_train_backward(lstm_network *network, lstm_workspace *workspace,
                                                 const lstm_targets *targets, double *loss)
{
    if (network == NULL || workspace == NULL || targets == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL",
                          network == NULL     ? "network"
                          : workspace == NULL ? "workspace"
                                              : "targets");
    lstm_targets known;
    lstm_status status = lstm__args_read_targets(targets, &known);
    if (status != LSTM_OK || (status = check_trained(network, workspace)) != LSTM_OK)
        return status;
    const pass_memory *m = workspace->scratch;
    const size_t T = m->steps.seq_len, B = m->steps.batch;
    const row_mask mask = output_mask(network, &m->steps, &known);
    /* The loss and dL/dz first, and the embedding's room for the rows its
     * backward touches: bad targets and a lack of memory fail before any
     * gradient moves. */
    double value = 0.0;
    status = network_loss(network, &known, &mask, output_rows(network, T, B), m->z, &value, m->dz);
    if (status == LSTM_OK && network->embedding != NULL)
        status = lstm__embedding_reserve_touched(network->embedding, T * B, m->ids);
    if (status != LSTM_OK)
        return status;

    lstm_output_grads dout = {sizeof dout, NULL, NULL, NULL};
    switch (network->config.head) {
    case LSTM_HEAD_EVERY_STEP:
        /* dy = dz W, dW += dz^T y, db += sum dz */
        status = lstm_dense_backward(network->head, T * B, m->y, m->dz, m->dy);
        dout.dy = m->dy;
        break;
    case LSTM_HEAD_LAST_STEP:
        /* dlast = dz W, dW += dz^T last, db += sum dz; then into dhT */
        status = lstm_dense_backward(network->head, B, m->last, m->dz, m->dlast);
        if (status == LSTM_OK)
            scatter_last(network->model, B, m->dlast, m->dy);
        dout.dhT = m->dy;
        break;
    default: dout.dy = m->dz; /* the output is y */
    }
    if (status != LSTM_OK)
        return status;
    /* dL/dx only for the embedding's backward */
    const lstm_input_grads din = {sizeof din, network->embedding != NULL ? m->x : NULL, NULL, NULL};
    if ((status = lstm_model_train_backward(network->model, workspace, &dout, &din)) != LSTM_OK)
        return status;
    if (network->embedding != NULL && (status = embedding_backward(network, m)) != LSTM_OK)
        return status;
    if (loss != NULL)
        *loss = value;
    return LSTM_OK;
}
