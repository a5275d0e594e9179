/**
 * @file lstm/train.h
 * @brief Training: a forward pass that keeps activations, and
 *        backpropagation through time.
 *
 * A training step is lstm_model_forward_train(), then computing the loss
 * gradient dy from y (outside the library), then lstm_model_backward(),
 * which accumulates dW and db into the model's gradient buffer
 * (lstm_model_grads()) and returns the gradients of the inputs. Zero the
 * gradients with lstm_model_zero_grads() when starting a new accumulation.
 *
 * Per step of each layer and direction, the backward pass computes the gate
 * pre-activation gradients dA_t = [da_i, da_f, da_g, da_o] of the whole
 * batch and gets [dh_{t-1}, dx_t] = dA_t W from one matrix product. dW for
 * the whole sequence is one product over all steps:
 * dW += sum_t dA_t^T [h_{t-1}, x_t]. Both run on the library's own kernel
 * (weights packed once per call) and neither depends on the thread count;
 * in a library built with LSTM_STEP_PRODUCTS=blas both are SGEMM calls on
 * the BLAS (lstm/common.h, Determinism).
 *
 * Thread rules: lstm_model_forward_train() only reads the model, like
 * lstm_model_forward(); lstm_model_backward() writes the model's gradients
 * and needs exclusive access to the model. Both write the workspace, which
 * belongs to one thread at a time.
 */
#ifndef LSTM_TRAIN_H
#define LSTM_TRAIN_H

#include "lstm/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief Forward pass that keeps what lstm_model_backward() needs.
 *
 * Arguments and outputs are those of lstm_model_forward(). The workspace
 * keeps the activations (see lstm_workspace_size() with LSTM_MODE_TRAIN)
 * until the next forward call on it. The model is only read; its parameters
 * must not change before the matching backward call.
 */
LSTM_API lstm_status lstm_model_forward_train(const lstm_model *model,
                                              lstm_workspace *workspace, size_t seq_len,
                                              size_t batch, const size_t *lengths,
                                              const float *x, const float *h0, const float *c0,
                                              float *y, float *hT, float *cT);

/**
 * @brief Truncated BPTT: a training forward over the next chunk of a long
 *        series, continuing from a state.
 *
 * The same as lstm_model_forward_train() with h0 and c0 taken from the
 * state; afterwards the state holds the chunk's final h and c, detached:
 * the following lstm_model_backward() stops at this chunk's first step (pass
 * NULL for dhT and dcT). Memory is bounded by the chunk length, not by the
 * series. lengths is NULL: every stream runs every step.
 *
 * @param state  of the model's configuration and of batch B; unidirectional.
 * @param steps  the chunk length k >= 1.
 * @param x, y   as for lstm_model_stream().
 * On failure the state is unchanged.
 */
LSTM_API lstm_status lstm_model_forward_train_chunk(const lstm_model *model,
                                                    lstm_workspace *workspace, lstm_state *state,
                                                    size_t steps, const float *x, float *y);

/**
 * @brief Backpropagation through time for the last training forward on
 *        this workspace.
 *
 * Shapes are those of that forward call (T, B). Gradients of the model's
 * parameters are added to its gradient buffer; the input gradients are
 * written (not added) to dx, dh0 and dc0.
 *
 * @param model     the model given to lstm_model_forward_train(), else
 *                  LSTM_E_STATE.
 * @param workspace holds the training forward's activations, else
 *                  LSTM_E_STATE. Backward consumes them (the gate buffer is
 *                  overwritten with the gate gradients to save memory), so a
 *                  second backward needs a new training forward.
 * Shapes and layouts are those of y, hT, cT, x, h0 and c0 (lstm/model.h).
 * @param dy        gradient of the loss with respect to y, or NULL for zeros;
 *                  must be finite where a sequence runs (padding is ignored).
 * @param dhT, dcT  gradients with respect to the final states, or NULL for
 *                  zeros; must be finite.
 * @param dx        receives dL/dx (zero in the padding), or NULL if not
 *                  wanted (skipping it saves a third of layer 0's per-step
 *                  work when I = H).
 * @param dh0, dc0  receive dL/dh0 and dL/dc0, or NULL.
 * On failure neither the outputs nor the model's gradients are changed.
 */
LSTM_API lstm_status lstm_model_backward(lstm_model *model, lstm_workspace *workspace,
                                         const float *dy, const float *dhT,
                                         const float *dcT, float *dx, float *dh0,
                                         float *dc0);

#ifdef __cplusplus
}
#endif

#endif /* LSTM_TRAIN_H */
