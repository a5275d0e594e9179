/**
 * @file lstm/train.h
 * @brief Training: a forward pass that keeps activations, and
 *        backpropagation through time.
 *
 * A training step is lstm_model_train_forward(), then computing the loss
 * gradient dy from y (outside the library), then lstm_model_train_backward(),
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
 * Thread rules: lstm_model_train_forward() only reads the model, like
 * lstm_model_infer(); lstm_model_train_backward() writes the model's gradients
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
 * @brief Choose the precision of the training calls that run on this
 *        workspace: LSTM_PRECISION_FP32 (the default) or
 *        LSTM_PRECISION_BF16, mixed precision.
 *
 * In bf16 every matrix product of the training forward and backward
 * passes (the gates' A_t = S_t W^T, [dh_{t-1}, dx_t] = dA_t W, the
 * projection's, and dW += dA^T S) rounds its two operands to bf16 (to
 * nearest, ties to even; subnormals to zero, as lstm_precision says) and
 * sums in float32. The master weights, their gradients (dW, db, and the
 * optimizers' state), the biases, peepholes, cells and states stay
 * float32, and bf16's exponent range is float32's, so no loss scaling is
 * needed. Any CPU runs it; with AVX-512 BF16 on vdpbf16ps. The
 * convergence against float32 is measured in docs/precision.md.
 *
 * A change of precision drops a training forward the workspace holds
 * (lstm_model_train_backward() then gives LSTM_E_STATE). Inference on the
 * workspace keeps its own precision (lstm_workspace_set_precision()). The
 * workspace grows at the first training call in bf16 beyond
 * lstm_workspace_size() (by the rounded rows and packings, less than the
 * float32 packing of W).
 * @return LSTM_OK; LSTM_E_NULL; LSTM_E_ARG for LSTM_PRECISION_INT8 (for
 *         inference only) or a value that is not an lstm_precision.
 * Exported under the version node LSTM_1.7 of liblstm.so.1.
 */
LSTM_API lstm_status lstm_workspace_set_training_precision(lstm_workspace *workspace,
                                                           lstm_precision precision);

/**
 * @brief Forward pass that keeps what lstm_model_train_backward() needs.
 *
 * Arguments and outputs are those of lstm_model_infer(). The workspace
 * keeps the activations (see lstm_workspace_size() with LSTM_MODE_TRAIN),
 * and the sequences' shape and layout, until the next forward call on it.
 * The model is only read; its parameters must not change before the
 * matching backward call.
 * Exported under the version node LSTM_1.2 of liblstm.so.1.
 */
LSTM_API lstm_status lstm_model_train_forward(const lstm_model *model, lstm_workspace *workspace,
                                              const lstm_sequences *sequences,
                                              const lstm_inputs *inputs,
                                              const lstm_outputs *outputs);

/**
 * @brief Truncated BPTT: a training forward over the next chunk of a long
 *        series, continuing from a state.
 *
 * The same as lstm_model_train_forward() with h0 and c0 taken from the
 * state; afterwards the state holds the chunk's final h and c, detached:
 * the following lstm_model_train_backward() stops at this chunk's first
 * step (leave dhT and dcT NULL). Memory is bounded by the chunk length, not
 * by the series.
 *
 * @param state  of the model's configuration and of batch B; unidirectional.
 * @param sequences, inputs, outputs  as for lstm_model_infer_stream().
 * On failure the state is unchanged.
 * Exported under the version node LSTM_1.2 of liblstm.so.1.
 */
LSTM_API lstm_status lstm_model_train_chunk(const lstm_model *model, lstm_workspace *workspace,
                                            lstm_state *state, const lstm_sequences *sequences,
                                            const lstm_inputs *inputs, const lstm_outputs *outputs);

/**
 * @brief What a backward call reads: the gradients of the loss with
 *        respect to the forward's outputs, each NULL for zeros. Shapes and
 *        layouts are those of y, hT and cT in that forward.
 */
typedef struct lstm_output_grads {
    size_t struct_size; /**< sizeof(lstm_output_grads) as the caller compiled it. */
    const float *dy;    /**< dL/dy; finite where a sequence runs (padding is ignored). */
    const float *dhT;   /**< dL/dhT; finite. */
    const float *dcT;   /**< dL/dcT; finite. */
} lstm_output_grads;

/** Static initializer: every gradient zero until set. */
#define LSTM_OUTPUT_GRADS_INIT \
  { \
    sizeof(lstm_output_grads), 0, 0, 0 \
  }

/**
 * @brief Where a backward call writes the gradients with respect to the
 *        forward's inputs: written, not added; each NULL when not wanted.
 *        Shapes and layouts are those of x, h0 and c0.
 */
typedef struct lstm_input_grads {
    size_t struct_size; /**< sizeof(lstm_input_grads) as the caller compiled it. */
    float *dx;          /**< dL/dx, zero in the padding. Leaving it NULL saves a third
                             of layer 0's per-step work when I = H. */
    float *dh0;         /**< dL/dh0. */
    float *dc0;         /**< dL/dc0. */
} lstm_input_grads;

/** Static initializer: no input gradients until set. */
#define LSTM_INPUT_GRADS_INIT \
  { \
    sizeof(lstm_input_grads), 0, 0, 0 \
  }

/** @copydoc lstm_sequences_init */
LSTM_API lstm_status lstm_output_grads_init(lstm_output_grads *args, size_t struct_size);
/** @copydoc lstm_sequences_init */
LSTM_API lstm_status lstm_input_grads_init(lstm_input_grads *args, size_t struct_size);

/**
 * @brief Backpropagation through time for the last training forward on
 *        this workspace.
 *
 * Gradients of the model's parameters are added to its gradient buffer;
 * the input gradients are written to the buffers of @p input_grads.
 *
 * @param model       the model given to lstm_model_train_forward(), else
 *                    LSTM_E_STATE.
 * @param workspace   holds the training forward's activations, else
 *                    LSTM_E_STATE. Backward consumes them (the gate buffer
 *                    is overwritten with the gate gradients to save memory),
 *                    so a second backward needs a new training forward.
 * @param output_grads dy, dhT, dcT; NULL means all zero.
 * @param input_grads  dx, dh0, dc0; NULL means none wanted (the parameters'
 *                    gradients are still accumulated).
 * On failure neither the outputs nor the model's gradients are changed.
 * Exported under the version node LSTM_1.2 of liblstm.so.1.
 */
LSTM_API lstm_status lstm_model_train_backward(lstm_model *model, lstm_workspace *workspace,
                                               const lstm_output_grads *output_grads,
                                               const lstm_input_grads *input_grads);

/**
 * @brief The older, positional forms (LSTM_1.0), kept exported for the
 *        programs built with them. New code should call the argument-struct
 *        forms above, whose named fields cannot be swapped unnoticed.
 *
 * lstm_model_forward_train() is lstm_model_train_forward() with the
 * arguments of lstm_model_forward(); lstm_model_forward_train_chunk() is
 * lstm_model_train_chunk() with those of lstm_model_stream();
 * lstm_model_backward() is lstm_model_train_backward() with dy, dhT, dcT,
 * dx, dh0 and dc0 as arguments.
 */
LSTM_API lstm_status lstm_model_forward_train(const lstm_model *model, lstm_workspace *workspace,
                                              size_t seq_len, size_t batch, const size_t *lengths,
                                              const float *x, const float *h0, const float *c0,
                                              float *y, float *hT, float *cT);
/** @copydoc lstm_model_forward_train */
LSTM_API lstm_status lstm_model_forward_train_chunk(const lstm_model *model,
                                                    lstm_workspace *workspace, lstm_state *state,
                                                    size_t steps, const float *x, float *y);
/** @copydoc lstm_model_forward_train */
LSTM_API lstm_status lstm_model_backward(lstm_model *model, lstm_workspace *workspace,
                                         const float *dy, const float *dhT, const float *dcT,
                                         float *dx, float *dh0, float *dc0);

#ifdef __cplusplus
}
#endif

#endif /* LSTM_TRAIN_H */
