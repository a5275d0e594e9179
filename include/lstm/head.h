/**
 * @file lstm/head.h
 * @brief Output heads and losses: a dense layer over the LSTM's outputs (at
 *        every step, or at each sequence's last valid step), and the losses
 *        that turn its outputs into a loss and the gradient that starts
 *        backpropagation. Forward and backward for each; PyTorch's
 *        definitions (nn.Linear, nn.CrossEntropyLoss, nn.BCEWithLogitsLoss,
 *        nn.MSELoss, each with reduction "mean").
 *
 * A training step with a head:
 *
 *     lstm_model_train_forward(model, ws, &seq, &in, &out);  (out.y = y)
 *     lstm_dense_forward(head, T * B, y, z);                  (every step)
 *     lstm_loss_cross_entropy(T * B, classes, z, targets, -1, &loss, dz);
 *     lstm_dense_backward(head, T * B, y, dz, dy);           (dy for the LSTM)
 *     lstm_model_train_backward(model, ws, &dout, NULL);     (dout.dy = dy)
 *
 * The dense layer's parameters are one buffer [W | b] with a gradient buffer
 * of the same layout, so lstm_optim_add_buffer() binds them to the same
 * optimizer as the model.
 *
 * Thread rules: as for a model. Forward only reads the layer; backward
 * writes its gradients. Losses are pure functions.
 */
#ifndef LSTM_HEAD_H
#define LSTM_HEAD_H

#include <stddef.h>
#include <stdint.h>

#include "lstm/common.h"
#include "lstm/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque dense layer z = x W^T + b; W is out x in row-major, b is out. */
typedef struct lstm_dense lstm_dense;

/**
 * @brief Create a dense layer with parameters and gradients at zero.
 * @param in_features, out_features 1 .. LSTM_MAX_SIZE.
 */
LSTM_API lstm_status lstm_dense_create(size_t in_features, size_t out_features, lstm_dense **out);

/** @brief Free a dense layer. NULL is accepted and ignored. */
LSTM_API void lstm_dense_destroy(lstm_dense *dense);

/** @brief in_features * out_features + out_features; 0 for NULL. */
LSTM_API size_t lstm_dense_param_count(const lstm_dense *dense);

/**
 * @brief PyTorch's nn.Linear initialisation: W and b uniform in
 *        [-1/sqrt(in), 1/sqrt(in)], from the library's SplitMix64 stream at
 *        seed (values drawn in buffer order: W, then b).
 */
LSTM_API lstm_status lstm_dense_init(lstm_dense *dense, uint64_t seed);

/**
 * @brief Read-write views of the parameters [W | b] and of their gradients
 *        (same layout), valid until lstm_dense_destroy().
 * @param count receives lstm_dense_param_count(); may be NULL.
 */
LSTM_API lstm_status lstm_dense_params(lstm_dense *dense, float **data, size_t *count);
LSTM_API lstm_status lstm_dense_grads(lstm_dense *dense, float **data, size_t *count);

/** @brief Set the accumulated gradients to zero. */
LSTM_API lstm_status lstm_dense_zero_grads(lstm_dense *dense);

/**
 * @brief z = x W^T + b for rows of x.
 * @param rows >= 1.  @param x [rows][in], finite.  @param z [rows][out].
 */
LSTM_API lstm_status lstm_dense_forward(const lstm_dense *dense, size_t rows, const float *x,
                                        float *z);

/**
 * @brief Backward of lstm_dense_forward(): adds dW += dz^T x and db += sum dz
 *        to the layer's gradients, and writes dx = dz W (not added).
 * @param x  the forward's input [rows][in].  @param dz [rows][out], finite.
 * @param dx [rows][in], or NULL if not wanted.
 */
LSTM_API lstm_status lstm_dense_backward(lstm_dense *dense, size_t rows, const float *x,
                                         const float *dz, float *dx);

/**
 * @brief Gather each sequence's output at its last valid step:
 *        last[b] = y at step lengths[b] - 1 (T - 1 when lengths is NULL).
 * @param flags   0, or LSTM_BATCH_FIRST when y is [B][T][features] instead
 *                of [T][B][features]; other bits give LSTM_E_ARG.
 * @param lengths B lengths in [1, T], or NULL.
 * @param y [T][B][features] (or batch-first), finite in the rows gathered.
 * @param last [B][features].
 */
LSTM_API lstm_status lstm_sequence_last(size_t seq_len, size_t batch, size_t features,
                                        uint32_t flags, const size_t *lengths, const float *y,
                                        float *last);

/**
 * @brief Backward of lstm_sequence_last(): dy is zero except at each
 *        sequence's last valid step, where it is dlast[b].
 */
LSTM_API lstm_status lstm_sequence_last_backward(size_t seq_len, size_t batch, size_t features,
                                                 uint32_t flags, const size_t *lengths,
                                                 const float *dlast, float *dy);

/**
 * @brief Softmax cross-entropy with class indices, averaged over the rows
 *        whose target is not ignore_index (nn.CrossEntropyLoss). Computed
 *        with log-sum-exp, stable for any finite logits.
 * @param logits  [rows][classes], finite.
 * @param targets rows class indices in [0, classes), or ignore_index.
 * @param loss    receives the mean (0 when every row is ignored); not NULL.
 * @param dlogits [rows][classes] receives dloss/dlogits (zero on ignored
 *                rows), or NULL.
 */
LSTM_API lstm_status lstm_loss_cross_entropy(size_t rows, size_t classes, const float *logits,
                                             const int32_t *targets, int32_t ignore_index,
                                             double *loss, float *dlogits);

/**
 * @brief Binary cross-entropy on logits, averaged over all elements
 *        (nn.BCEWithLogitsLoss): max(z, 0) - z t + log(1 + exp(-|z|)).
 * @param targets in [0, 1].
 */
LSTM_API lstm_status lstm_loss_bce_with_logits(size_t count, const float *logits,
                                               const float *targets, double *loss, float *dlogits);

/** @brief Mean squared error over all elements (nn.MSELoss). */
LSTM_API lstm_status lstm_loss_mse(size_t count, const float *predictions, const float *targets,
                                   double *loss, float *dpredictions);

#ifdef __cplusplus
}
#endif

#endif /* LSTM_HEAD_H */
