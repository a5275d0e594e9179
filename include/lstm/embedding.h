/**
 * @file lstm/embedding.h
 * @brief An embedding layer: token ids to vectors, the first layer of a
 *        model over token sequences. PyTorch's nn.Embedding (dense
 *        gradients, its default sparse=False), with its padding_idx.
 *
 * The layer holds one weight matrix W of num_embeddings (V) rows of
 * embedding_dim (E) floats, row-major: row v is the vector of id v.
 * Forward gathers rows, out[k] = W[ids[k]]; backward adds each dout[k] into
 * the gradient of row ids[k], and nothing into the padding row. Every id is
 * checked before anything is written: an id outside [0, V) is an error
 * naming its position, never a read or write out of bounds.
 *
 * A training step with an embedding in front of an LSTM:
 *
 *     lstm_embedding_forward(emb, T * B, ids, x);             (x [T][B][E])
 *     lstm_model_train_forward(model, ws, &seq, &in, &out);   (in.x = x)
 *     ... head, loss, lstm_model_train_backward() with din.dx = dx ...
 *     lstm_embedding_backward(emb, T * B, ids, dx);
 *     lstm_optim_step(opt);
 *
 * The parameters are one buffer W with a gradient buffer of the same
 * layout, so lstm_optim_add_embedding() (or lstm_optim_add_buffer())
 * binds them to the same optimizer as the model. The gradient is dense, zero in the rows no id
 * used, and every optimizer updates every row as torch.optim updates an nn.Embedding with
 * sparse=False: SGD's momentum and Adam's moments keep moving rows that the
 * current batch did not use, and weight decay shrinks every row, the
 * padding row included.
 *
 * Large vocabularies: backward records the rows it touched
 * (lstm_embedding_touched_rows()), and an optimizer created with
 * LSTM_OPTIM_LAZY_ROWS and bound with lstm_optim_add_embedding() updates
 * only those, as torch.optim.SparseAdam (or SGD) updates an
 * nn.Embedding(sparse=True): a step then costs O(touched rows x E), not
 * O(V E).
 *
 * Not supported: nn.Embedding's max_norm (renormalising rows in the
 * forward), scale_grad_by_freq and sparse gradient tensors (the gradient
 * buffer is dense; the touched set says which rows it holds).
 *
 * Thread rules: as for a dense layer. Forward only reads the layer, so any
 * number of threads may run it at once, and lstm_embedding_touched_rows()
 * too; backward, init and both zeroings write it and need it to themselves.
 */
#ifndef LSTM_EMBEDDING_H
#define LSTM_EMBEDDING_H

#include <stddef.h>
#include <stdint.h>

#include "lstm/common.h"
#include "lstm/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Largest accepted num_embeddings (the vocabulary): 2^31 rows. */
#define LSTM_MAX_VOCAB ((size_t)1 << 31)

/** lstm_embedding_config.flags: row padding_idx is the padding row. */
#define LSTM_EMBEDDING_PADDING 0x1u

/**
 * @brief Configuration of an embedding layer.
 *
 * ABI rule: struct_size comes first and the struct only grows at the end;
 * a field left at zero keeps its documented default, so a zeroed struct
 * (with struct_size, num_embeddings and embedding_dim set) has no padding
 * row. Fill it with lstm_embedding_config_init() or
 * LSTM_EMBEDDING_CONFIG_INIT, then set fields.
 *
 * padding_idx: as PyTorch's, an id whose row the gradient never reaches.
 * It takes effect with the flag LSTM_EMBEDDING_PADDING only (a flag rather
 * than a "none" value, so that a zeroed padding_idx never silently makes
 * row 0 the padding row); without the flag it must be 0. With the flag it
 * is in [-V, V), and a negative value counts from the end, as in PyTorch
 * (-1 is row V - 1); lstm_embedding_get_config() gives it back in [0, V).
 * lstm_embedding_init() sets the padding row to zero. Forward gives its
 * values as they are, as PyTorch does: zero unless written through
 * lstm_embedding_params() (or moved by an optimizer's weight decay).
 */
typedef struct lstm_embedding_config {
    size_t struct_size;    /**< sizeof(lstm_embedding_config) as the caller compiled it. */
    size_t num_embeddings; /**< V: rows, the vocabulary, 1 .. LSTM_MAX_VOCAB. */
    size_t embedding_dim;  /**< E: floats per row, 1 .. LSTM_MAX_SIZE. */
    uint32_t flags;        /**< 0 or LSTM_EMBEDDING_PADDING. */
    int64_t padding_idx;   /**< The padding row, with LSTM_EMBEDDING_PADDING; else 0. */
} lstm_embedding_config;

/** Static initializer: no padding row; the sizes must be set before use. */
#define LSTM_EMBEDDING_CONFIG_INIT \
  { \
    sizeof(lstm_embedding_config), 0, 0, 0, 0 \
  }

/**
 * @brief Fill an embedding configuration with its defaults
 *        (LSTM_EMBEDDING_CONFIG_INIT).
 *
 * @param config      the struct to fill; not NULL.
 * @param struct_size sizeof(*config) as the caller compiled it; only that
 *                    many bytes are written.
 * @return LSTM_OK, LSTM_E_NULL, or LSTM_E_ARG when struct_size is smaller
 *         than the first version of the struct or above 64 KiB.
 */
LSTM_API lstm_status lstm_embedding_config_init(lstm_embedding_config *config, size_t struct_size);

/** Opaque embedding layer: the weight matrix W [V][E] and its gradient. */
typedef struct lstm_embedding lstm_embedding;

/**
 * @brief Create an embedding layer with parameters and gradients at zero;
 *        call lstm_embedding_init() or write the parameters through
 *        lstm_embedding_params() to give it weights.
 *
 * @param config read only; not NULL. Not retained.
 * @param out    receives the new layer, owned by the caller and freed with
 *               lstm_embedding_destroy(); not NULL. Untouched on failure.
 * @return LSTM_OK; LSTM_E_NULL; LSTM_E_ARG for a bad struct_size, unknown
 *         flags, or a padding_idx outside [-V, V) (or not 0 without
 *         LSTM_EMBEDDING_PADDING); LSTM_E_SIZE for V or E of 0 or above its
 *         limit; LSTM_E_OVERFLOW when V E floats overflow size_t;
 *         LSTM_E_NOMEM.
 */
LSTM_API lstm_status lstm_embedding_create(const lstm_embedding_config *config,
                                           lstm_embedding **out);

/** @brief Free an embedding layer. NULL is accepted and ignored. */
LSTM_API void lstm_embedding_destroy(lstm_embedding *embedding);

/**
 * @brief Copy the layer's configuration, padding_idx in [0, V).
 *
 * @param config its struct_size must be set by the caller
 *               (lstm_embedding_config_init()); only that many bytes are
 *               written.
 * @return LSTM_OK, LSTM_E_NULL or LSTM_E_ARG (struct_size too small or
 *         above 64 KiB).
 */
LSTM_API lstm_status lstm_embedding_get_config(const lstm_embedding *embedding,
                                               lstm_embedding_config *config);

/** @brief Number of float32 parameters, V E; 0 for NULL. */
LSTM_API size_t lstm_embedding_param_count(const lstm_embedding *embedding);

/**
 * @brief PyTorch's nn.Embedding initialisation: every weight drawn from the
 *        standard normal N(0, 1), then the padding row set to zero.
 *
 * The values come from the library's SplitMix64 stream started at seed
 * (the stream of lstm_model_init()), by the Box-Muller transform, in buffer
 * order: words 2p and 2p + 1 of the stream, a = (w >> 11) 2^-53 each,
 * make values 2p and 2p + 1 as
 *     r = sqrt(-2 ln(1 - a_2p)),  r cos(2 pi a_2p+1),  r sin(2 pi a_2p+1),
 * computed in double and rounded to float (an odd count uses the cosine
 * of its last pair alone). No value is infinite: |value| < 8.6. The same
 * seed gives the same values on every thread and every run; across C
 * libraries whose log, cos or sin differ in the last bit, a rare value may
 * differ in its last bit. Not the values torch's generator gives. No global
 * random state is used or changed; gradients are not touched.
 *
 * @return LSTM_OK or LSTM_E_NULL.
 */
LSTM_API lstm_status lstm_embedding_init(lstm_embedding *embedding, uint64_t seed);

/**
 * @brief Read-write views of the weights W [V][E] (row-major, row v the
 *        vector of id v) and of their gradients (same layout).
 *
 * The buffers are owned by the layer, 64-byte aligned, and stay valid and at
 * the same address until lstm_embedding_destroy(). Writing through them is
 * allowed between calls (an optimizer does this); the library does not check
 * values written this way.
 *
 * @param data  receives the pointer; not NULL.
 * @param count receives lstm_embedding_param_count(); may be NULL.
 * @return LSTM_OK or LSTM_E_NULL.
 */
LSTM_API lstm_status lstm_embedding_params(lstm_embedding *embedding, float **data, size_t *count);
/** @copydoc lstm_embedding_params */
LSTM_API lstm_status lstm_embedding_grads(lstm_embedding *embedding, float **data, size_t *count);

/**
 * @brief Set the accumulated gradients to zero, every row (O(V E)), and
 *        empty the set of touched rows.
 * @return LSTM_OK or LSTM_E_NULL.
 */
LSTM_API lstm_status lstm_embedding_zero_grads(lstm_embedding *embedding);

/**
 * @brief The rows whose gradient lstm_embedding_backward() added to since
 *        the gradients were last zeroed (lstm_embedding_zero_grads() or
 *        lstm_embedding_zero_touched_grads()), or since the layer was
 *        created: each row once, in the order backward first touched it.
 *
 * A row is in the set when an id named it, whatever the values added (a
 * zero dout row too), as a row is in PyTorch's sparse gradient of an
 * nn.Embedding(sparse=True); the padding row never is. Rows outside the set
 * have a zero gradient, unless the caller wrote them through
 * lstm_embedding_grads(), which the set does not see. This is what a lazy
 * optimizer (LSTM_OPTIM_LAZY_ROWS, lstm/optim.h) updates.
 *
 * Cost: backward keeps the set in O(count) time. Its memory, a bit per row
 * and a list of at most V uint32 rows, is allocated by the first backward
 * (so a layer used only for lookups has none); the list grows, doubling,
 * only when a backward may touch more rows than it holds, so repeated
 * training steps allocate nothing.
 *
 * @param rows  receives a pointer to the rows (each in [0, V)), owned by
 *              the layer, valid until the next backward, zeroing or
 *              lstm_embedding_destroy(); NULL or any pointer when the count
 *              is 0; not NULL.
 * @param count receives the number of rows; not NULL.
 * @return LSTM_OK or LSTM_E_NULL. Reads the layer only.
 */
LSTM_API lstm_status lstm_embedding_touched_rows(const lstm_embedding *embedding,
                                                 const uint32_t **rows, size_t *count);

/**
 * @brief Set the gradient of the touched rows (lstm_embedding_touched_rows())
 *        to zero and empty the set, in O(touched rows x E): the same as
 *        lstm_embedding_zero_grads() when only backward wrote the gradients.
 *        Rows written through lstm_embedding_grads() outside the set are
 *        left as they are.
 * @return LSTM_OK or LSTM_E_NULL.
 */
LSTM_API lstm_status lstm_embedding_zero_touched_grads(lstm_embedding *embedding);

/**
 * @brief Look up count ids: out[k] = W[ids[k]], E floats each.
 *
 * @param count >= 1 (0 gives LSTM_E_SIZE, as every size of the library).
 * @param ids   count ids, each in [0, V); not NULL. The padding id is a
 *              valid id and gives the padding row's values.
 * @param out   [count][E], caller-owned; not NULL.
 * @return LSTM_OK; LSTM_E_NULL; LSTM_E_SIZE; LSTM_E_OVERFLOW when count E
 *         floats or count ids overflow size_t; LSTM_E_ARG for an id
 *         outside [0, V), the message naming the first such position
 *         ("ids[k] is v; it must be in [0, V)"). Every id is checked before
 *         out is written: on failure out is untouched.
 */
LSTM_API lstm_status lstm_embedding_forward(const lstm_embedding *embedding, size_t count,
                                            const int64_t *ids, float *out);

/**
 * @brief Backward of lstm_embedding_forward(): adds dout[k] to the gradient
 *        of row ids[k], for k = 0 .. count - 1 in that order (a row used
 *        several times sums its dout rows in order of k, so the result is
 *        the same on every run), except where ids[k] is the padding id,
 *        whose gradient stays as it is (PyTorch's rule). Rows no id names
 *        are not touched.
 *
 * @param ids  as for forward; checked the same way.
 * @param dout [count][E], finite; not NULL.
 * The rows it adds to join the set of touched rows
 * (lstm_embedding_touched_rows()).
 *
 * @return as forward's, LSTM_E_NONFINITE when dout holds NaN or infinity,
 *         and LSTM_E_NOMEM when the touched set's memory cannot be had.
 *         The ids are checked first, then dout, then the memory is
 *         allocated, before any gradient is written: on failure the
 *         gradients and the touched set are unchanged.
 */
LSTM_API lstm_status lstm_embedding_backward(lstm_embedding *embedding, size_t count,
                                             const int64_t *ids, const float *dout);

#ifdef __cplusplus
}
#endif

#endif /* LSTM_EMBEDDING_H */
