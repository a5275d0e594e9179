/*
 * Streams: the recurrent state of a batch kept between calls, for inference
 * a step or a chunk at a time and for truncated backpropagation through
 * time. Each chunk is an ordinary forward call whose initial states are the
 * state's and whose final states become the state, so a sequence run chunk
 * by chunk computes exactly what one whole-sequence call computes.
 */
#include <string.h>

#include "alloc.h"
#include "args.h"
#include "check.h"
#include "error.h"
#include "model_internal.h"
#include "state.h"
#include "workspace.h"
#include "lstm/train.h"

struct lstm_state {
    lstm_config config; /* of the models it serves */
    size_t batch;
    size_t h_count, c_count;   /* L B R and L B H floats */
    float *h, *c;              /* the current state */
    float *h_next, *c_next;    /* a chunk's final states, swapped in on success */
    lstm_workspace *workspace; /* for inference chunks */
};

static bool same_configuration(const lstm_config *a, const lstm_config *b)
{
    const uint32_t shape_flags = LSTM_BIDIRECTIONAL | LSTM_PEEPHOLE;
    return a->input_size == b->input_size && a->hidden_size == b->hidden_size &&
           a->num_layers == b->num_layers && a->proj_size == b->proj_size &&
           (a->flags & shape_flags) == (b->flags & shape_flags);
}

LSTM_API lstm_status lstm_state_create(const lstm_model *model, size_t batch, lstm_state **out)
{
    if (model == NULL || out == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", model == NULL ? "model" : "out");
    if (model->directions != 1)
        return lstm__fail(LSTM_E_ARG, "a bidirectional model cannot run a step at a time");
    if (batch == 0)
        return lstm__fail(LSTM_E_SIZE, "batch is 0; it must be at least 1");
    size_t states, h_count, c_count, floats, bytes;
    if (!size_mul(model->num_layers, batch, &states) ||
        !size_mul(states, model->state_size, &h_count) ||
        !size_mul(states, model->hidden_size, &c_count) || !size_add(h_count, c_count, &floats) ||
        !size_mul(floats, 2 * sizeof(float), &bytes))
        return lstm__fail(LSTM_E_OVERFLOW, "a state for batch %zu overflows size_t", batch);

    lstm_state *state = lstm__mem_alloc(sizeof *state);
    float *buffers = lstm__mem_alloc(bytes);
    lstm_workspace *workspace = NULL;
    lstm_status status = state != NULL && buffers != NULL
                             ? lstm_workspace_create(model, &workspace)
                             : lstm__fail(LSTM_E_NOMEM, "allocating a state for batch %zu", batch);
    if (status != LSTM_OK) {
        lstm__mem_free(state);
        lstm__mem_free(buffers);
        return status;
    }
    memset(buffers, 0, bytes);
    state->config = model->config;
    state->batch = batch;
    state->h_count = h_count;
    state->c_count = c_count;
    state->h = buffers;
    state->c = buffers + h_count;
    state->h_next = buffers + h_count + c_count;
    state->c_next = buffers + 2 * h_count + c_count;
    state->workspace = workspace;
    *out = state;
    return LSTM_OK;
}

LSTM_API void lstm_state_destroy(lstm_state *state)
{
    if (state == NULL)
        return;
    lstm_workspace_destroy(state->workspace);
    /* h is the start of the one buffer, whichever half is current */
    lstm__mem_free(state->h < state->h_next ? state->h : state->h_next);
    lstm__mem_free(state);
}

LSTM_API lstm_status lstm_state_reset(lstm_state *state)
{
    if (state == NULL)
        return lstm__fail(LSTM_E_NULL, "state is NULL");
    memset(state->h, 0, state->h_count * sizeof(float));
    memset(state->c, 0, state->c_count * sizeof(float));
    return LSTM_OK;
}

LSTM_API lstm_status lstm_state_get(const lstm_state *state, float *h, float *c)
{
    if (state == NULL)
        return lstm__fail(LSTM_E_NULL, "state is NULL");
    if (h != NULL)
        memcpy(h, state->h, state->h_count * sizeof(float));
    if (c != NULL)
        memcpy(c, state->c, state->c_count * sizeof(float));
    return LSTM_OK;
}

LSTM_API lstm_status lstm_state_set(lstm_state *state, const float *h, const float *c)
{
    if (state == NULL)
        return lstm__fail(LSTM_E_NULL, "state is NULL");
    lstm_status status;
    if ((status = lstm__check_finite("h", h, state->h_count)) != LSTM_OK ||
        (status = lstm__check_finite("c", c, state->c_count)) != LSTM_OK)
        return status;
    if (h != NULL)
        memcpy(state->h, h, state->h_count * sizeof(float));
    else
        memset(state->h, 0, state->h_count * sizeof(float));
    if (c != NULL)
        memcpy(state->c, c, state->c_count * sizeof(float));
    else
        memset(state->c, 0, state->c_count * sizeof(float));
    return LSTM_OK;
}

/* After a successful chunk its final states become the state. */
static void advance(lstm_state *state)
{
    float *h = state->h, *c = state->c;
    state->h = state->h_next;
    state->c = state->c_next;
    state->h_next = h;
    state->c_next = c;
}

static lstm_status check_pair(const lstm_model *model, const lstm_state *state)
{
    if (model == NULL || state == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", model == NULL ? "model" : "state");
    if (!same_configuration(&model->config, &state->config))
        return lstm__fail(LSTM_E_SHAPE,
                          "the state was created for a model of another configuration");
    return LSTM_OK;
}

/*
 * A chunk of every stream: an ordinary forward call (inference or
 * training) from the state's h and c, whose final states become the state.
 */
static lstm_status run_chunk(const lstm_model *model, lstm_workspace *workspace, lstm_state *state,
                             lstm_mode mode, const lstm_sequences *sequences,
                             const lstm_inputs *inputs, const lstm_outputs *outputs)
{
    lstm_status status = check_pair(model, state);
    sequence_call call;
    if (status != LSTM_OK ||
        (status = lstm__args_read_sequence_call(sequences, inputs, outputs, &call)) != LSTM_OK)
        return status;
    if (call.inputs.h0 != NULL || call.inputs.c0 != NULL)
        return lstm__fail(LSTM_E_ARG, "inputs->%s is set; it must be NULL, the state holds it",
                          call.inputs.h0 != NULL ? "h0" : "c0");
    if (call.sequences.batch != state->batch)
        return lstm__fail(LSTM_E_SHAPE, "sequences->batch is %zu; the state has %zu streams",
                          call.sequences.batch, state->batch);
    call.inputs.h0 = state->h;
    call.inputs.c0 = state->c;
    lstm_outputs into_state = {sizeof into_state, call.outputs.y, state->h_next, state->c_next};
    status =
        mode == LSTM_MODE_TRAIN
            ? lstm_model_train_forward(model, workspace, &call.sequences, &call.inputs, &into_state)
            : lstm_model_infer(model, workspace, &call.sequences, &call.inputs, &into_state);
    if (status != LSTM_OK)
        return status;
    advance(state);
    lstm_state_get(state, call.outputs.hT, call.outputs.cT);
    return LSTM_OK;
}

LSTM_API lstm_status lstm_model_infer_stream(const lstm_model *model, lstm_state *state,
                                             const lstm_sequences *sequences,
                                             const lstm_inputs *inputs, const lstm_outputs *outputs)
{
    return run_chunk(model, state != NULL ? state->workspace : NULL, state, LSTM_MODE_INFER,
                     sequences, inputs, outputs);
}

LSTM_API lstm_status lstm_model_train_chunk(const lstm_model *model, lstm_workspace *workspace,
                                            lstm_state *state, const lstm_sequences *sequences,
                                            const lstm_inputs *inputs, const lstm_outputs *outputs)
{
    return run_chunk(model, workspace, state, LSTM_MODE_TRAIN, sequences, inputs, outputs);
}

lstm_workspace *lstm__state_workspace(lstm_state *state)
{
    return state == NULL ? NULL : state->workspace;
}

LSTM_API lstm_status lstm_state_keep_weights(lstm_state *state, int keep)
{
    if (state == NULL)
        return lstm__fail(LSTM_E_NULL, "state is NULL");
    return lstm_workspace_keep_weights(state->workspace, keep);
}

LSTM_API lstm_status lstm_state_set_precision(lstm_state *state, lstm_precision precision)
{
    if (state == NULL)
        return lstm__fail(LSTM_E_NULL, "state is NULL");
    return lstm_workspace_set_precision(state->workspace, precision);
}

/* A chunk given by position: no lengths, the model's layout, no final states copied. */
static lstm_status positional_chunk(const lstm_model *model, lstm_workspace *workspace,
                                    lstm_state *state, lstm_mode mode, size_t steps, const float *x,
                                    float *y)
{
    const lstm_sequences sequences = {sizeof sequences, steps, state != NULL ? state->batch : 0,
                                      LSTM_LAYOUT_MODEL, NULL};
    const lstm_inputs inputs = {sizeof inputs, x, NULL, NULL};
    const lstm_outputs outputs = {sizeof outputs, y, NULL, NULL};
    return run_chunk(model, workspace, state, mode, &sequences, &inputs, &outputs);
}

LSTM_API lstm_status lstm_model_step(const lstm_model *model, lstm_state *state, const float *x_t,
                                     float *y_t)
{
    return positional_chunk(model, state != NULL ? state->workspace : NULL, state, LSTM_MODE_INFER,
                            1, x_t, y_t);
}

/* The older, positional forms (LSTM_1.0). */

LSTM_API lstm_status lstm_model_stream(const lstm_model *model, lstm_state *state, size_t steps,
                                       const float *x, float *y)
{
    return positional_chunk(model, state != NULL ? state->workspace : NULL, state, LSTM_MODE_INFER,
                            steps, x, y);
}

LSTM_API lstm_status lstm_model_forward_train_chunk(const lstm_model *model,
                                                    lstm_workspace *workspace, lstm_state *state,
                                                    size_t steps, const float *x, float *y)
{
    return positional_chunk(model, workspace, state, LSTM_MODE_TRAIN, steps, x, y);
}
