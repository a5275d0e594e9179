/*
 * The forward pass, for inference and for training.
 *
 * Per step t the batch's stacked matrix S_t = [h_{t-1}, x_t] (B rows of
 * K = H + I) meets the packed weights W (G = 4H rows of K) in one BLAS call:
 * A_t = S_t W^T, all four gates' pre-activations at once. The x part of every
 * S_t is placed once before the loop; step t writes h_t straight into the h
 * part of S_{t+1}.
 */
#include <string.h>

#include "activation.h"
#include "blas.h"
#include "check.h"
#include "error.h"
#include "matrix.h"
#include "model_internal.h"
#include "workspace.h"
#include "lstm/train.h"

/* A_t = S_t W^T: B x 4H pre-activations (bias not yet added). */
static void gate_preactivations(const lstm_model *model, size_t batch, const float *stacked_t,
                                float *gates_t)
{
    const size_t K = model->hidden_size + model->input_size, G = 4 * model->hidden_size;
    if (batch == 1) /* a matrix-vector product: sgemv beats sgemm with N = 1 */
        blas_sgemv(false, G, K, 1.0f, model_weight(model), K, stacked_t, 0.0f, gates_t);
    else
        blas_sgemm(false, true, batch, G, K, 1.0f, stacked_t, K, model_weight(model), K, 0.0f,
                   gates_t, G);
}

/*
 * The elementwise part of one step for one batch row, in one pass over it.
 * gates holds a = S W^T on entry and the activated i, f, g, o on exit
 * (training keeps them for backward). c_prev and c_next may be the same
 * buffer (inference updates c in place).
 */
static void cell_forward(size_t H, const float *bias, float *gates, const float *c_prev,
                         float *c_next, float *h_next)
{
    /* a += b */
    for (size_t k = 0; k < 4 * H; k++)
        gates[k] += bias[k];
    /* i = sigmoid(a_i), f = sigmoid(a_f); g = tanh(a_g); o = sigmoid(a_o) */
    act_sigmoid_array(gates, 2 * H);
    act_tanh_array(gates + 2 * H, H);
    act_sigmoid_array(gates + 3 * H, H);
    const float *i = gates, *f = gates + H, *g = gates + 2 * H, *o = gates + 3 * H;
    /* c_t = f * c_{t-1} + i * g */
    for (size_t j = 0; j < H; j++) {
        float c = f[j] * c_prev[j] + i[j] * g[j];
        c_next[j] = c;
        h_next[j] = c;
    }
    /* h_t = o * tanh(c_t), in place in h_next (simple passes vectorise) */
    act_tanh_array(h_next, H);
    for (size_t j = 0; j < H; j++)
        h_next[j] *= o[j];
}

/*
 * Places x into the x part of every S_t and h0 (or zeros) into the h part
 * of S_0, checking x for NaN and infinity on the way.
 */
static lstm_status place_inputs(size_t H, size_t I, size_t rows, size_t batch, const float *x,
                                const float *h0, float *stacked)
{
    const size_t K = H + I;
    for (size_t r = 0; r < rows; r++) {
        float *x_part = stacked + r * K + H;
        memcpy(x_part, x + r * I, I * sizeof(float));
        size_t bad = find_nonfinite(x_part, I);
        if (bad < I)
            return fail(LSTM_E_NONFINITE, "x[%zu][%zu][%zu] is %g", r / batch, r % batch, bad,
                        (double)x_part[bad]);
    }
    for (size_t b = 0; b < batch; b++)
        load_or_zero(stacked + b * K, h0 != NULL ? h0 + b * H : NULL, H);
    return LSTM_OK;
}

static lstm_status forward_pass(const lstm_model *model, lstm_workspace *workspace,
                                lstm_mode mode, size_t T, size_t B, const float *x,
                                const float *h0, const float *c0, float *y, float *hT, float *cT)
{
    if (model == NULL || workspace == NULL || x == NULL)
        return fail(LSTM_E_NULL, "%s is NULL",
                    model == NULL ? "model" : workspace == NULL ? "workspace" : "x");
    const size_t H = model->hidden_size, I = model->input_size;
    if (workspace->hidden_size != H || workspace->input_size != I)
        return fail(LSTM_E_SHAPE,
                    "the workspace is for input_size %zu, hidden_size %zu; the model has %zu, %zu",
                    workspace->input_size, workspace->hidden_size, I, H);
    lstm_status status = workspace_prepare(workspace, mode, T, B);
    if (status != LSTM_OK)
        return status;
    if ((status = check_finite("h0", h0, B * H)) != LSTM_OK ||
        (status = check_finite("c0", c0, B * H)) != LSTM_OK ||
        (status = place_inputs(H, I, T * B, B, x, h0, workspace->stacked)) != LSTM_OK)
        return status;

    /* Training keeps every step's gates and c_t; inference reuses one slot. */
    const bool keep = mode == LSTM_MODE_TRAIN;
    const size_t K = H + I, G = 4 * H;
    const float *bias = model_bias(model);
    float *cells = workspace->cells;
    load_or_zero(cells, c0, B * H);

    for (size_t t = 0; t < T; t++) {
        const float *stacked_t = workspace->stacked + t * B * K;
        float *gates_t = keep ? workspace->gates + t * B * G : workspace->gates;
        const float *c_prev = keep ? cells + t * B * H : cells;
        float *c_next = keep ? cells + (t + 1) * B * H : cells;
        /* h_t goes into the h part of S_{t+1}; the last one into h_last. */
        bool last = t + 1 == T;
        float *h_next = last ? workspace->h_last : workspace->stacked + (t + 1) * B * K;
        size_t ld_h = last ? H : K;

        gate_preactivations(model, B, stacked_t, gates_t);
        for (size_t b = 0; b < B; b++)
            cell_forward(H, bias, gates_t + b * G, c_prev + b * H, c_next + b * H,
                         h_next + b * ld_h);
        if (y != NULL)
            copy_rows(y + t * B * H, h_next, B, H, ld_h);
    }
    if (hT != NULL)
        memcpy(hT, workspace->h_last, B * H * sizeof(float));
    if (cT != NULL)
        memcpy(cT, keep ? cells + T * B * H : cells, B * H * sizeof(float));
    if (keep) {
        workspace->trained_model = model;
        workspace->seq_len = T;
        workspace->batch = B;
    }
    return LSTM_OK;
}

LSTM_API lstm_status lstm_model_forward(const lstm_model *model, lstm_workspace *workspace,
                                        size_t seq_len, size_t batch, const float *x,
                                        const float *h0, const float *c0, float *y, float *hT,
                                        float *cT)
{
    return forward_pass(model, workspace, LSTM_MODE_INFER, seq_len, batch, x, h0, c0, y, hT,
                        cT);
}

LSTM_API lstm_status lstm_model_forward_train(const lstm_model *model,
                                              lstm_workspace *workspace, size_t seq_len,
                                              size_t batch, const float *x, const float *h0,
                                              const float *c0, float *y, float *hT, float *cT)
{
    return forward_pass(model, workspace, LSTM_MODE_TRAIN, seq_len, batch, x, h0, c0, y, hT,
                        cT);
}
