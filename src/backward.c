/*
 * Backpropagation through time, mirroring the forward pass.
 *
 * Per step t, from the last to the first, the elementwise pass turns dh_t
 * and dc_t into the gate pre-activation gradients dA_t (written over the
 * gates the forward pass kept, which are not needed again), then one BLAS
 * call gives [dh_{t-1}, dx_t] = dA_t W for the whole batch. After the loop,
 * dW += sum_t dA_t^T S_t is a single SGEMM over all T*B rows, because both
 * dA and S are stored step after step.
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

/*
 * The elementwise part of one step of one batch row. i, f, g, o (each H
 * long) hold the activated gates on entry and their pre-activation
 * gradients da_i, da_f, da_g, da_o on exit. dc holds dc_t on entry and
 * dc_{t-1} on exit. dh is dL/dh_t, complete. No two buffers overlap.
 */
static void cell_backward(size_t H, float *restrict i, float *restrict f, float *restrict g,
                          float *restrict o, const float *restrict c_t,
                          const float *restrict c_prev, const float *restrict dh,
                          float *restrict dc)
{
    for (size_t j = 0; j < H; j++) {
        const float gi = i[j], gf = f[j], gg = g[j], go = o[j];
        /* h_t = o * tanh(c_t): do = dh * tanh(c_t), dc_t += dh * o * (1 - tanh^2(c_t)) */
        const float tanh_c = act_tanh(c_t[j]);
        const float d_o = dh[j] * tanh_c;
        const float d_c = dc[j] + dh[j] * go * (1.0f - tanh_c * tanh_c);
        /* c_t = f * c_{t-1} + i * g */
        const float d_i = d_c * gg, d_f = d_c * c_prev[j], d_g = d_c * gi;
        dc[j] = d_c * gf;
        /* through the activations: sigmoid' = s (1 - s), tanh' = 1 - t^2 */
        i[j] = d_i * gi * (1.0f - gi);
        f[j] = d_f * gf * (1.0f - gf);
        g[j] = d_g * (1.0f - gg * gg);
        o[j] = d_o * go * (1.0f - go);
    }
}

/* dS = dA_t W, restricted to the first cols columns of W (H: only dh_{t-1}). */
static void stacked_gradient(const lstm_model *model, size_t batch, size_t cols,
                             const float *dgates_t, float *dstacked)
{
    const size_t K = model->hidden_size + model->input_size, G = 4 * model->hidden_size;
    if (batch == 1) /* dS^T = W^T dA^T, a matrix-vector product */
        blas_sgemv(true, G, cols, 1.0f, model_weight(model), K, dgates_t, 0.0f, dstacked);
    else
        blas_sgemm(false, false, batch, cols, G, 1.0f, dgates_t, G, model_weight(model), K,
                   0.0f, dstacked, K);
}

static lstm_status check_backward(const lstm_model *model, const lstm_workspace *workspace,
                                  const float *dy, const float *dhT, const float *dcT)
{
    if (model == NULL || workspace == NULL)
        return fail(LSTM_E_NULL, "%s is NULL", model == NULL ? "model" : "workspace");
    if (workspace->trained_model == NULL)
        return fail(LSTM_E_STATE, "the workspace holds no training forward to go back through");
    if (workspace->trained_model != model)
        return fail(LSTM_E_STATE, "the workspace's training forward was run on another model");
    const size_t BH = workspace->batch * model->hidden_size;
    lstm_status status;
    if ((status = check_finite("dy", dy, workspace->seq_len * BH)) != LSTM_OK ||
        (status = check_finite("dhT", dhT, BH)) != LSTM_OK ||
        (status = check_finite("dcT", dcT, BH)) != LSTM_OK)
        return status;
    return LSTM_OK;
}

LSTM_API lstm_status lstm_model_backward(lstm_model *model, lstm_workspace *workspace,
                                         const float *dy, const float *dhT, const float *dcT,
                                         float *dx, float *dh0, float *dc0)
{
    lstm_status status = check_backward(model, workspace, dy, dhT, dcT);
    if (status != LSTM_OK)
        return status;
    const size_t T = workspace->seq_len, B = workspace->batch;
    const size_t H = model->hidden_size, I = model->input_size, K = H + I, G = 4 * H;
    float *dgates = workspace->gates, *dstacked = workspace->dstacked, *dc = workspace->dc;
    const float *cells = workspace->cells;
    /* Without dx, only the dh_{t-1} columns of [dh_{t-1}, dx_t] are needed. */
    const size_t cols = dx != NULL ? K : H;

    /* dh_t arrives from dhT for the last step, then from the h part of dS. */
    float *dh = workspace->dh;
    size_t ld_dh = H;
    load_or_zero(dh, dhT, B * H);
    load_or_zero(dc, dcT, B * H);

    for (size_t t = T; t-- > 0;) {
        float *dgates_t = dgates + t * B * G;
        for (size_t b = 0; b < B; b++) {
            float *dh_b = dh + b * ld_dh;
            /* dL/dh_t = dy_t + what flows back from step t + 1 */
            if (dy != NULL) {
                const float *dy_b = dy + (t * B + b) * H;
                for (size_t j = 0; j < H; j++)
                    dh_b[j] += dy_b[j];
            }
            float *gates_b = dgates_t + b * G;
            cell_backward(H, gates_b, gates_b + H, gates_b + 2 * H, gates_b + 3 * H,
                          cells + ((t + 1) * B + b) * H, cells + (t * B + b) * H, dh_b,
                          dc + b * H);
        }
        if (t == 0 && dx == NULL && dh0 == NULL)
            break; /* dh_{-1} and dx_0 are not wanted */
        /* [dh_{t-1}, dx_t] = dA_t W */
        stacked_gradient(model, B, cols, dgates_t, dstacked);
        if (dx != NULL)
            copy_rows(dx + t * B * I, dstacked + H, B, I, K);
        dh = dstacked;
        ld_dh = K;
    }
    if (dh0 != NULL)
        copy_rows(dh0, dh, B, H, ld_dh);
    if (dc0 != NULL)
        memcpy(dc0, dc, B * H * sizeof(float));

    /* db += sum over steps and rows of dA */
    float *dweight = model->grads, *dbias = model->grads + model->weight_count;
    for (size_t r = 0; r < T * B; r++) {
        const float *dgates_r = dgates + r * G;
        for (size_t k = 0; k < G; k++)
            dbias[k] += dgates_r[k];
    }
    /* dW += dA^T S over all T*B rows at once: (4H x TB) (TB x K) */
    blas_sgemm(true, false, G, K, T * B, 1.0f, dgates, G, workspace->stacked, K, 1.0f, dweight,
               K);
    workspace->trained_model = NULL; /* the gates are now gradients */
    return LSTM_OK;
}
