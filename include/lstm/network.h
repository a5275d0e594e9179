/**
 * @file lstm/network.h
 * @brief Whole sequence models: an input (token ids through an embedding,
 *        or float features), the LSTM stack, an optional dense head (on
 *        every step, or on each sequence's last step) and a loss, behind
 *        one handle, with one forward, one backward and one file.
 *
 * A network is made of the library's building blocks, which stay usable
 * alone: an lstm_embedding (token networks only), an lstm_model and an
 * lstm_dense head (lstm_network_embedding(), lstm_network_model(),
 * lstm_network_head() give them, owned by the network). The data flow,
 * per call of T steps and B sequences:
 *
 *     tokens [T][B] --embedding--> x [T][B][I]     (or features x given)
 *     x --LSTM stack--> y [T][B][D R], hT, cT
 *     every step:  z = y W^T + b         [T][B][O]  (rows past a sequence's end: 0)
 *     last step:   z = last W^T + b      [B][O],   last[b] = the top layer's
 *                  hT of each direction, side by side: the forward direction
 *                  at the sequence's own last step, the reverse direction at
 *                  its step 0 (PyTorch's torch.cat((h_n[-2], h_n[-1]), 1))
 *     loss(z, targets), averaged over the rows that lengths keep
 *
 * (a network without a head outputs y itself, O = D R, every step). All
 * [T][B] arrays are [B][T] instead in the batch-major layout
 * (lstm_sequences.layout, or LSTM_BATCH_FIRST in the LSTM's configuration).
 *
 * A training step:
 *
 *     lstm_optim_add_network(opt, net);                        (once)
 *     lstm_network_train_forward(net, ws, &seq, &in, &out);
 *     lstm_network_train_backward(net, ws, &targets, &loss);
 *     lstm_optim_step(opt);
 *     lstm_optim_zero_grads(opt);
 *
 * The workspace is an lstm_workspace of the network's model
 * (lstm_workspace_create(lstm_network_model(net), &ws)); streams use an
 * lstm_state of it (lstm_state_create(lstm_network_model(net), B, &state)).
 *
 * Inference in a reduced precision (lstm_workspace_set_precision(),
 * lstm_state_set_precision(): bf16 or int8) runs the whole network in it:
 *
 *     x      each token's embedding row in the precision: its values
 *            rounded to bf16, or in int8 the row quantized symmetrically
 *            (s = max |w| / 127, q = round(w / s) in [-127, 127]) and
 *            its values q s in float32: what a quantized file stores
 *     LSTM   its products in the precision (lstm_precision)
 *     z      = y W^T + b with W in the precision (int8: one scale per
 *            output row), each row of y rounded to bf16 or quantized to
 *            uint8 over its own range, sums in float32, b in float32; W
 *            packed at each call, or kept between calls with the LSTM's
 *            (lstm_workspace_keep_weights(), lstm_state_keep_weights())
 *
 * so that a network saved in a precision (lstm_network_save_quantized())
 * and loaded again runs in it to the bits it ran before. Training always
 * runs in float32. On random N(0, 1) head weights and inputs the head's
 * output stays within about 0.15% (bf16) and 0.5% (int8) of float32's on
 * the same input (tests/unit/test_network_precision.c).
 *
 * A network also holds metadata: key -> value entries that travel with it
 * in its model file (a vocabulary, label names, normalisation constants, a
 * description).
 *
 * Thread rules: as for a model. Inference and stream calls only read the
 * network (each thread with its own workspace or state); backward, init,
 * zero_grads, the metadata setters and an optimizer step write it.
 */
#ifndef LSTM_NETWORK_H
#define LSTM_NETWORK_H

#include <stddef.h>
#include <stdint.h>

#include "lstm/common.h"
#include "lstm/model.h"
#include "lstm/train.h"
#include "lstm/optim.h"
#include "lstm/head.h"
#include "lstm/embedding.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Where a network's head sits. Values are explicit and never renumbered. */
typedef enum lstm_head_placement {
    LSTM_HEAD_NONE = 0,       /**< No head: the output is the LSTM's y, every step. */
    LSTM_HEAD_EVERY_STEP = 1, /**< A dense layer on every step's y (tagging, language models,
                                   forecasting): output [T][B][O]. */
    LSTM_HEAD_LAST_STEP = 2   /**< A dense layer on each sequence's final hidden state
                                   (classification): output [B][O]. */
} lstm_head_placement;

/** A network's loss. Values are explicit and never renumbered. */
typedef enum lstm_loss_kind {
    LSTM_LOSS_NONE = 0,            /**< No loss: backward takes dL/d(output) (lstm_targets.grad). */
    LSTM_LOSS_CROSS_ENTROPY = 1,   /**< Softmax cross-entropy over O classes, one class per
                                        row (nn.CrossEntropyLoss). */
    LSTM_LOSS_BCE_WITH_LOGITS = 2, /**< Binary cross-entropy on each output
                                        (nn.BCEWithLogitsLoss). */
    LSTM_LOSS_MSE = 3              /**< Mean squared error on each output (nn.MSELoss). */
} lstm_loss_kind;

/**
 * @brief Configuration of a network: its parts' configurations and how
 *        they are joined.
 *
 * ABI rule: as for lstm_config (struct_size first, growth only at the end,
 * zero keeps the default). The pointed-to configurations are read by
 * lstm_network_create() and not retained.
 */
typedef struct lstm_network_config {
    size_t struct_size; /**< sizeof(lstm_network_config) as the caller compiled it. */
    const lstm_embedding_config *embedding; /**< Token input: the embedding, whose
                                                 embedding_dim must be the LSTM's
                                                 input_size. NULL: float features. */
    const lstm_config *lstm;                /**< The LSTM stack; required. */
    uint32_t head;                          /**< An lstm_head_placement. */
    uint32_t loss;                          /**< An lstm_loss_kind. */
    size_t head_size; /**< O, the head's outputs (classes, targets), 1 .. LSTM_MAX_SIZE
                           with a head; 0 without one. BCE and MSE compare each output
                           with a target; cross-entropy needs O >= 2 classes. */
} lstm_network_config;

/** Static initializer: lstm (and head, loss, head_size as needed) must be set. */
#define LSTM_NETWORK_CONFIG_INIT \
  { \
    sizeof(lstm_network_config), 0, 0, 0, 0, 0 \
  }

/** @copydoc lstm_sequences_init */
LSTM_API lstm_status lstm_network_config_init(lstm_network_config *config, size_t struct_size);

/** Opaque network: its parts, how they are joined, and its metadata. */
typedef struct lstm_network lstm_network;

/**
 * @brief Create a network with every parameter and gradient at zero; call
 *        lstm_network_init(), or write the parts' parameters, to give it
 *        weights.
 *
 * @param config read only; not NULL.
 * @param out    receives the network, freed with lstm_network_destroy();
 *               untouched on failure.
 * @return LSTM_OK; LSTM_E_NULL; LSTM_E_ARG (a struct_size, an unknown head
 *         or loss, a loss the head cannot have: cross-entropy with one output
 *         or without a head, head_size set without a head); LSTM_E_SHAPE
 *         (embedding_dim is not the LSTM's input_size); and the parts'
 *         create errors (LSTM_E_SIZE, LSTM_E_OVERFLOW, LSTM_E_NOMEM).
 */
LSTM_API lstm_status lstm_network_create(const lstm_network_config *config, lstm_network **out);

/** @brief Free a network and its parts. NULL is accepted and ignored. */
LSTM_API void lstm_network_destroy(lstm_network *network);

/**
 * @brief Copy the network's configuration. config->embedding and
 *        config->lstm are set to the network's own copies of its parts'
 *        configurations (embedding NULL for a features network), valid
 *        until lstm_network_destroy().
 * @param config its struct_size set by the caller; only that many bytes
 *               are written.
 */
LSTM_API lstm_status lstm_network_get_config(const lstm_network *network,
                                             lstm_network_config *config);

/**
 * @brief The network's parts, owned by it and valid until
 *        lstm_network_destroy(): use them for their parameters, tensors and
 *        gradients (an optimizer step through them is a step of the
 *        network). NULL for a part the network does not have (and for a
 *        NULL network).
 */
LSTM_API lstm_embedding *lstm_network_embedding(lstm_network *network);
/** @copydoc lstm_network_embedding */
LSTM_API lstm_model *lstm_network_model(lstm_network *network);
/** @copydoc lstm_network_embedding */
LSTM_API lstm_dense *lstm_network_head(lstm_network *network);

/** @brief Parameters of every part, summed; 0 for NULL. */
LSTM_API size_t lstm_network_param_count(const lstm_network *network);

/**
 * @brief Initialise every part as PyTorch does (lstm_embedding_init(),
 *        lstm_model_init(), lstm_dense_init()), each from its own stream:
 *        the embedding at seed, the LSTM at seed + 1, the head at seed + 2.
 * @param flags as for lstm_model_init().
 */
LSTM_API lstm_status lstm_network_init(lstm_network *network, uint64_t seed, uint32_t flags);

/** @brief Set the accumulated gradients of every part to zero. */
LSTM_API lstm_status lstm_network_zero_grads(lstm_network *network);

/**
 * @brief Bind every parameter of the network to an optimizer, in the order
 *        embedding, LSTM, head: all or nothing (on failure the optimizer
 *        is unchanged). The network must outlive the optimizer's use of it.
 */
LSTM_API lstm_status lstm_optim_add_network(lstm_optim *optim, lstm_network *network);

/**
 * @brief What a network call reads: the input, and optionally the initial
 *        states (lstm_inputs' h0 and c0, same layouts).
 */
typedef struct lstm_network_inputs {
    size_t struct_size;    /**< sizeof(lstm_network_inputs) as the caller compiled it. */
    const int64_t *tokens; /**< Token networks: [T][B] ids in [0, V) (batch-major [B][T]);
                                positions past a sequence's end are never read. */
    const float *features; /**< Features networks: [T][B][I] (batch-major [B][T][I]). */
    const float *h0;       /**< Initial hidden states [L D][B][R], or NULL for zeros. */
    const float *c0;       /**< Initial cell states [L D][B][H], or NULL for zeros. */
} lstm_network_inputs;

/** Static initializer: tokens or features must be set before use. */
#define LSTM_NETWORK_INPUTS_INIT \
  { \
    sizeof(lstm_network_inputs), 0, 0, 0, 0 \
  }

/** @brief Where a network call writes; each NULL when not wanted. */
typedef struct lstm_network_outputs {
    size_t struct_size; /**< sizeof(lstm_network_outputs) as the caller compiled it. */
    float *output;      /**< The head's output (logits): every step [T][B][O] in the call's
                             layout, zero past each sequence's end; last step [B][O].
                             Without a head, the LSTM's y. */
    float *hT;          /**< The LSTM's final hidden states [L D][B][R]. */
    float *cT;          /**< The LSTM's final cell states [L D][B][H]. */
} lstm_network_outputs;

/** Static initializer: no outputs until set. */
#define LSTM_NETWORK_OUTPUTS_INIT \
  { \
    sizeof(lstm_network_outputs), 0, 0, 0 \
  }

/**
 * @brief What the loss compares the output with. Rows are the output's:
 *        T B (in the call's layout) with an every-step head or none, B
 *        with a last-step head. Rows past a sequence's end, and rows the
 *        mask leaves out, are never read.
 */
typedef struct lstm_targets {
    size_t struct_size;     /**< sizeof(lstm_targets) as the caller compiled it. */
    const int32_t *classes; /**< Cross-entropy: one class in [0, O) per row; a negative
                                 class leaves its row out of the loss (PyTorch's
                                 ignore_index, for any negative value). */
    const float *values;    /**< BCE (values in [0, 1]) and MSE: [rows][O], finite. */
    const float *grad;      /**< LSTM_LOSS_NONE: dL/d(output), [rows][O], finite; the
                                 caller's own loss. */
    const uint8_t *mask;    /**< [rows]: 0 leaves the row out of the loss and its
                                 gradient (a warm-up, unscored steps), nonzero keeps it;
                                 NULL keeps every row within its sequence. */
} lstm_targets;

/** Static initializer: the field the network's loss reads must be set. */
#define LSTM_TARGETS_INIT \
  { \
    sizeof(lstm_targets), 0, 0, 0, 0 \
  }

/** @copydoc lstm_sequences_init */
LSTM_API lstm_status lstm_network_inputs_init(lstm_network_inputs *args, size_t struct_size);
/** @copydoc lstm_sequences_init */
LSTM_API lstm_status lstm_network_outputs_init(lstm_network_outputs *args, size_t struct_size);
/** @copydoc lstm_sequences_init */
LSTM_API lstm_status lstm_targets_init(lstm_targets *args, size_t struct_size);

/**
 * @brief Inference over a batch of sequences: input, LSTM, head.
 *
 * @param network   read only; may be shared across threads.
 * @param workspace of the network's model; one thread at a time.
 * @param sequences steps, batch, lengths and layout, as for lstm_model_infer().
 * @param inputs    tokens (token networks) or features (features networks),
 *                  h0 and c0 or NULL; the other input must be NULL.
 * @param outputs   output, hT, cT, each or all NULL when not wanted (outputs
 *                  itself may be NULL: a training forward needs none).
 * @return as lstm_model_infer(), and LSTM_E_ARG for a token outside
 *         [0, V) (the message names its position), writing no output.
 */
LSTM_API lstm_status lstm_network_infer(const lstm_network *network, lstm_workspace *workspace,
                                        const lstm_sequences *sequences,
                                        const lstm_network_inputs *inputs,
                                        const lstm_network_outputs *outputs);

/**
 * @brief The network's loss of an output (from lstm_network_infer() with
 *        the same sequences) against targets, averaged as the network's
 *        training does: over the rows lengths and the mask keep (and, for
 *        cross-entropy, whose class is not negative); for BCE and MSE, over
 *        those rows' O values each. 0 when no row counts.
 * @return LSTM_E_ARG for a network without a loss, or a target out of range.
 */
LSTM_API lstm_status lstm_network_loss(const lstm_network *network, const lstm_sequences *sequences,
                                       const float *output, const lstm_targets *targets,
                                       double *loss);

/**
 * @brief Training forward: lstm_network_infer() that keeps what
 *        lstm_network_train_backward() needs in the workspace (dropout
 *        included, as lstm_model_train_forward()).
 */
LSTM_API lstm_status lstm_network_train_forward(const lstm_network *network,
                                                lstm_workspace *workspace,
                                                const lstm_sequences *sequences,
                                                const lstm_network_inputs *inputs,
                                                const lstm_network_outputs *outputs);

/**
 * @brief Truncated BPTT over a network: lstm_network_train_forward() of
 *        the next chunk of long series, continuing from a state
 *        (lstm_model_train_chunk()'s rules: h0 and c0 NULL; afterwards the
 *        state holds the chunk's end, detached).
 */
LSTM_API lstm_status lstm_network_train_chunk(const lstm_network *network,
                                              lstm_workspace *workspace, lstm_state *state,
                                              const lstm_sequences *sequences,
                                              const lstm_network_inputs *inputs,
                                              const lstm_network_outputs *outputs);

/**
 * @brief Backward of the last training forward (or chunk) on the
 *        workspace: the loss and its gradient, then back through the head,
 *        the LSTM and the embedding, adding every parameter's gradient to
 *        its part's gradient buffer.
 *
 * @param network the one given to the forward, else LSTM_E_STATE.
 * @param targets read by the network's loss (classes, values, or grad for
 *                LSTM_LOSS_NONE); not NULL.
 * @param loss    receives the loss (the mean of lstm_network_loss()); may
 *                be NULL (and is 0 with LSTM_LOSS_NONE).
 * On failure no gradient is changed.
 */
LSTM_API lstm_status lstm_network_train_backward(lstm_network *network, lstm_workspace *workspace,
                                                 const lstm_targets *targets, double *loss);

/**
 * @brief Streams: the next chunk (a token at a time, for sampling) of every
 *        stream of a state, continuing from it, as lstm_model_infer_stream()
 *        (unidirectional networks). The output is the chunk's: every step
 *        [T][B][O]; a last-step head gives [B][O] at each stream's last
 *        step of this chunk.
 */
LSTM_API lstm_status lstm_network_infer_stream(const lstm_network *network, lstm_state *state,
                                               const lstm_sequences *sequences,
                                               const lstm_network_inputs *inputs,
                                               const lstm_network_outputs *outputs);

/** Metadata value kinds. Values are explicit and never renumbered. */
typedef enum lstm_meta_kind {
    LSTM_META_TEXT = 0, /**< UTF-8 text without NUL bytes. */
    LSTM_META_BYTES = 1 /**< Any bytes. */
} lstm_meta_kind;

/** Longest metadata key, in bytes. */
#define LSTM_META_MAX_KEY ((size_t)255)
/** Largest metadata value, in bytes: 1 GiB. */
#define LSTM_META_MAX_VALUE ((size_t)1 << 30)
/** Most metadata entries a network holds. */
#define LSTM_META_MAX_ENTRIES ((size_t)65536)

/**
 * @brief Set a metadata entry, replacing one of the same key.
 *
 * @param key   1 .. LSTM_META_MAX_KEY bytes of UTF-8 without NUL, then a
 *              NUL; not NULL. Copied.
 * @param kind  LSTM_META_TEXT (the value must be valid UTF-8 without NUL
 *              bytes) or LSTM_META_BYTES.
 * @param value size bytes, copied; may be NULL when size is 0.
 * @param size  0 .. LSTM_META_MAX_VALUE.
 * @return LSTM_OK, LSTM_E_NULL, LSTM_E_ARG (a key or text that is not
 *         UTF-8, an unknown kind), LSTM_E_SIZE (an empty or long key, a
 *         large value, too many entries), LSTM_E_NOMEM; on failure the
 *         metadata is unchanged.
 */
LSTM_API lstm_status lstm_network_set_meta(lstm_network *network, const char *key, uint32_t kind,
                                           const void *value, size_t size);

/**
 * @brief Read a metadata entry.
 *
 * @param kind  receives its kind; may be NULL.
 * @param value receives a pointer to its bytes, owned by the network,
 *              followed by a NUL byte that size does not count (so text
 *              can be used as a C string); valid until the entry is set or
 *              removed or the network destroyed; not NULL.
 * @param size  receives its size in bytes; may be NULL.
 * @return LSTM_OK, LSTM_E_NULL, or LSTM_E_NOT_FOUND when there is no such
 *         key (nothing written).
 */
LSTM_API lstm_status lstm_network_get_meta(const lstm_network *network, const char *key,
                                           uint32_t *kind, const void **value, size_t *size);

/** @brief Remove a metadata entry; LSTM_E_NOT_FOUND when there is none. */
LSTM_API lstm_status lstm_network_remove_meta(lstm_network *network, const char *key);

/** @brief Number of metadata entries; 0 for NULL. */
LSTM_API size_t lstm_network_meta_count(const lstm_network *network);

/**
 * @brief The key of entry @p index, 0 .. count - 1, in the order of the
 *        keys' bytes (the order of the file), for listing entries; the
 *        pointer lives as lstm_network_get_meta()'s does.
 * @return LSTM_OK, LSTM_E_NULL, or LSTM_E_ARG for an index past the end.
 */
LSTM_API lstm_status lstm_network_meta_key(const lstm_network *network, size_t index,
                                           const char **key);

/**
 * @brief Serialise a network (its parts, how they are joined, its metadata)
 *        and optionally an optimizer's state, as lstm_model_save_buffer().
 */
LSTM_API lstm_status lstm_network_save_buffer(const lstm_network *network, const lstm_optim *optim,
                                              void *buffer, size_t capacity, size_t *size);

/**
 * @brief Serialise a network for inference in bf16 or int8, as
 *        lstm_model_save_quantized_buffer() does a model: its LSTM's W and
 *        W_hr, its embedding and its head's W in that precision, as
 *        inference in it runs them (above); the biases, the metadata and
 *        the rest as lstm_network_save_buffer() writes them; no optimizer.
 *
 * The file (docs/model-format.md: QTNS, EMBQ, HDQ , format 1.3 when the
 * network has an embedding or a head) holds the embedding as V x E bf16
 * values, or int8 q with one float32 scale per row (vocabulary entry),
 * and the head's W likewise with a scale per output row: a token network
 * whose embedding and head dominate its size is about 2x (bf16) or 3.7x
 * (int8) smaller than in float32. A network loaded from it holds the
 * values dequantized (the bf16 values, or q s) as its parts' float32
 * parameters, and keeps an int8 file's rows as stored while those values
 * are unchanged (row by row: lstm_embedding_params() and
 * lstm_dense_params() do not count as a change, a write that changes a
 * row's values does), so that inference and saving in the file's
 * precision give the bits of the network that was saved. The LSTM's
 * weights follow lstm_model_save_quantized_buffer()'s rules.
 * @return as lstm_model_save_quantized_buffer(); LSTM_E_NONFINITE also
 *         for an embedding value or head weight that would overflow in the
 *         precision.
 * Exported under the version node LSTM_1.6 of liblstm.so.1.
 */
LSTM_API lstm_status lstm_network_save_quantized_buffer(const lstm_network *network,
                                                        lstm_precision precision, void *buffer,
                                                        size_t capacity, size_t *size);

/** @brief lstm_network_save_quantized_buffer()'s file, saved atomically as
 *         lstm_model_save() saves.
 *  Exported under the version node LSTM_1.6 of liblstm.so.1. */
LSTM_API lstm_status lstm_network_save_quantized(const lstm_network *network,
                                                 lstm_precision precision, const char *path);

/** @brief Save a network to a file, atomically, as lstm_model_save(). */
LSTM_API lstm_status lstm_network_save(const lstm_network *network, const lstm_optim *optim,
                                       const char *path);

/**
 * @brief Create a network from a model file's bytes. A file with only an
 *        LSTM (any file an older version wrote) gives a features network
 *        without a head or loss. Validated as strictly as lstm_model_load().
 */
LSTM_API lstm_status lstm_network_load_buffer(const void *buffer, size_t size, lstm_network **out);

/** @brief Create a network from a model file, as lstm_model_load(). */
LSTM_API lstm_status lstm_network_load(const char *path, lstm_network **out);

#ifdef __cplusplus
}
#endif

#endif /* LSTM_NETWORK_H */
