/**
 * @file lstm/model.h
 * @brief LSTM networks: configuration, parameters, workspaces and inference.
 *
 * A model is a stack of num_layers LSTM layers (L), each with one direction
 * or two (D = 2 when bidirectional), of hidden size H, optionally with a
 * projection to P < H (LSTMP, PyTorch's proj_size). R, the size of the
 * recurrent state h, is P with a projection and H without. Layer 0 reads
 * the input (I_0 = input_size); layer l > 0 reads the outputs of layer l - 1,
 * both directions concatenated (I_l = D R).
 *
 * For each step t of one layer and direction, with the stacked row vector
 * s_t = [h_{t-1}, x_t] of length R + I_l:
 *
 *     i_t = sigmoid(W_i s_t + b_i [+ p_i * c_{t-1}])   input gate
 *     f_t = sigmoid(W_f s_t + b_f [+ p_f * c_{t-1}])   forget gate
 *     g_t = tanh   (W_g s_t + b_g)                     candidate
 *     c_t = f_t * c_{t-1} + i_t * g_t
 *     o_t = sigmoid(W_o s_t + b_o [+ p_o * c_t])       output gate
 *     h_t = o_t * tanh(c_t)        (with projection: W_hr (o_t * tanh(c_t)))
 *
 * (the bracketed terms with LSTM_PEEPHOLE only)
 *
 * The four gate pre-activations of a whole batch come from one matrix
 * product (SGEMM) per step against the packed weight matrix W. The reverse direction runs
 * each sequence from its own last step back to its first.
 *
 * Parameter layout: one contiguous float32 buffer of lstm_model_param_count()
 * values (lstm_model_params()), made of one block per layer and direction in
 * the order (layer 0, forward), (layer 0, reverse), (layer 1, forward), ...
 * Each block holds, in this order:
 *
 *     W     4H rows x (R + I_l) columns, row-major. Rows are gate blocks of H
 *           in the order i, f, g, o (PyTorch's order). Within a row, the
 *           first R columns multiply h_{t-1}, the next I_l multiply x_t.
 *           PyTorch: W = [weight_hh_l{l}{_reverse} | weight_ih_l{l}{_reverse}].
 *     b     4H values, gate blocks i, f, g, o.
 *           PyTorch: b = bias_ih_l{l}{_reverse} + bias_hh_l{l}{_reverse}.
 *     W_hr  P rows x H columns, only with a projection.
 *           PyTorch: weight_hr_l{l}{_reverse}.
 *     p     3 rows x H: the peephole weights p_i, p_f, p_o, only with
 *           LSTM_PEEPHOLE (PyTorch has none).
 *
 * lstm_model_tensor() gives each tensor's offset and shape, so no caller
 * needs to compute offsets. The gradient buffer (lstm_model_grads()) has
 * exactly the same layout.
 *
 * Data layout: every tensor is float32, dense and row-major.
 *   x   [T][B][I_0], or [B][T][I_0] batch-major (LSTM_BATCH_FIRST, or
 *       the call's lstm_sequences.layout)
 *   y   [T][B][D R], or [B][T][D R]: both directions' h_t side by side
 *       (forward first), as PyTorch concatenates them
 *   h0, hT   [L D][B][R]      c0, cT   [L D][B][H]
 *       (index l D + d: layer l, direction d; PyTorch's order)
 * With sequence lengths, y and dx are zero past each sequence's end, and
 * the final states are taken at each sequence's own last step.
 *
 * Thread rules (the whole contract is in lstm/common.h): a model may be
 * shared by any number of threads that only read it (the forward and
 * stream calls, lstm_model_train_forward(), the getters, saving), each
 * with its own workspace or state. Calls that write a model
 * (lstm_model_set_params(), lstm_model_init(), lstm_model_zero_grads(),
 * lstm_model_train_backward(), an optimizer step, writes through the views) need
 * it to themselves. A workspace or a state belongs to one thread at a
 * time. The BLAS library's thread count is process-wide and is set through
 * the BLAS itself (for OpenBLAS, OPENBLAS_NUM_THREADS); each workspace runs
 * a pool of that many threads.
 */
#ifndef LSTM_MODEL_H
#define LSTM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "lstm/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Largest accepted input_size, hidden_size and proj_size. */
#define LSTM_MAX_SIZE ((size_t)1 << 24)
/** Largest accepted num_layers. */
#define LSTM_MAX_LAYERS ((size_t)1024)

/** lstm_config.flags: every layer has a forward and a reverse direction. */
#define LSTM_BIDIRECTIONAL 0x1u
/** lstm_config.flags: x, y, dx and dy are [B][T][...] instead of [T][B][...]. */
#define LSTM_BATCH_FIRST 0x2u
/** lstm_config.flags: peephole connections (as in oneDNN and TensorFlow):
 *  i and f also see p_i * c_{t-1} and p_f * c_{t-1}, o sees p_o * c_t,
 *  through diagonal weights p (LSTM_TENSOR_PEEPHOLE). */
#define LSTM_PEEPHOLE 0x4u

/**
 * @brief Configuration of a model.
 *
 * ABI rule: struct_size comes first and the struct only grows at the end;
 * a field left at zero keeps its documented default. A struct_size above
 * 64 KiB is refused (LSTM_E_ARG) as garbage, never read or written. Fill it with
 * lstm_config_init() (or LSTM_CONFIG_INIT), then set fields.
 */
typedef struct lstm_config {
    size_t struct_size; /**< sizeof(lstm_config) as the caller compiled it. */
    size_t input_size;  /**< I: features per step, 1 .. LSTM_MAX_SIZE. */
    size_t hidden_size; /**< H: hidden units, 1 .. LSTM_MAX_SIZE. */
    size_t num_layers;  /**< L: stacked layers, 1 .. LSTM_MAX_LAYERS; 0 means 1. */
    uint32_t flags;     /**< LSTM_BIDIRECTIONAL | LSTM_BATCH_FIRST | LSTM_PEEPHOLE. */
    size_t proj_size;   /**< P: projection size, 0 (none) or 1 .. H - 1. */
    double dropout;     /**< Probability in [0, 1) of zeroing each output of every layer
                             but the last, in training only (PyTorch's dropout);
                             kept values are scaled by 1 / (1 - dropout). Masks come
                             from lstm_workspace_set_seed(). */
} lstm_config;

/** Static initializer: sizes left at 0 must be set before use. */
#define LSTM_CONFIG_INIT \
  { \
    sizeof(lstm_config), 0, 0, 0, 0, 0, 0.0 \
  }

/**
 * @brief Fill a configuration with its defaults.
 *
 * @param config      the struct to fill; not NULL.
 * @param struct_size sizeof(*config) as the caller compiled it, so that a
 *                    program built against an older, smaller lstm_config
 *                    is never written past its end.
 * @return LSTM_OK, LSTM_E_NULL, or LSTM_E_ARG when struct_size is smaller
 *         than the first version of the struct or above 64 KiB.
 */
LSTM_API lstm_status lstm_config_init(lstm_config *config, size_t struct_size);

/** Opaque model: configuration, parameters and accumulated gradients. */
typedef struct lstm_model lstm_model;

/**
 * @brief Create a model. Parameters and gradients start at zero; call
 *        lstm_model_init() or lstm_model_set_params() to give it weights.
 *
 * @param config read only; not NULL. Not retained.
 * @param out    receives the new model, owned by the caller and freed with
 *               lstm_model_destroy(); not NULL. Untouched on failure.
 * @return LSTM_OK, LSTM_E_NULL, LSTM_E_ARG (struct_size), LSTM_E_SIZE,
 *         LSTM_E_OVERFLOW or LSTM_E_NOMEM.
 */
LSTM_API lstm_status lstm_model_create(const lstm_config *config, lstm_model **out);

/** @brief Free a model. NULL is accepted and ignored. */
LSTM_API void lstm_model_destroy(lstm_model *model);

/**
 * @brief Copy the model's configuration.
 *
 * @param config its struct_size must be set by the caller (lstm_config_init());
 *               only that many bytes are written.
 * @return LSTM_OK, LSTM_E_NULL or LSTM_E_ARG (struct_size too small or above 64 KiB).
 */
LSTM_API lstm_status lstm_model_get_config(const lstm_model *model, lstm_config *config);

/** @brief Number of float32 parameters, the sum of every block's; 0 for NULL. */
LSTM_API size_t lstm_model_param_count(const lstm_model *model);

/** A named tensor of one layer and direction, for lstm_model_tensor(). */
typedef enum lstm_tensor {
    LSTM_TENSOR_WEIGHT = 0,     /**< W, 4H x (R + I_l) */
    LSTM_TENSOR_BIAS = 1,       /**< b, 4H x 1 */
    LSTM_TENSOR_PROJECTION = 2, /**< W_hr, P x H; only with a projection */
    LSTM_TENSOR_PEEPHOLE = 3    /**< [p_i; p_f; p_o], 3 x H; only with LSTM_PEEPHOLE */
} lstm_tensor;

/**
 * @brief Where a tensor lives in the parameter (and gradient) buffer.
 *
 * @param layer     0 .. L - 1.   @param direction 0 (forward) or 1 (reverse,
 *                  bidirectional models only).
 * @param offset    receives the index of its first float; not NULL.
 * @param rows, cols receive its row-major shape (a bias is 4H x 1); may be NULL.
 * @return LSTM_OK, LSTM_E_NULL, or LSTM_E_ARG for a layer, direction or
 *         tensor the model does not have.
 */
LSTM_API lstm_status lstm_model_tensor(const lstm_model *model, size_t layer, size_t direction,
                                       lstm_tensor tensor, size_t *offset, size_t *rows,
                                       size_t *cols);

/**
 * @brief Direct read-write view of the parameter buffer (layout above).
 *
 * The buffer is owned by the model, 64-byte aligned, and stays valid and at
 * the same address until lstm_model_destroy(). Writing through it is allowed
 * between calls (an optimizer does this); the library does not check values
 * written this way.
 *
 * @param data  receives the pointer; not NULL.
 * @param count receives lstm_model_param_count(); may be NULL.
 */
LSTM_API lstm_status lstm_model_params(lstm_model *model, float **data, size_t *count);

/**
 * @brief Direct read-write view of the gradient buffer, same layout and
 *        lifetime rules as lstm_model_params(). Training accumulates into it.
 */
LSTM_API lstm_status lstm_model_grads(lstm_model *model, float **data, size_t *count);

/**
 * @brief Copy all parameters out.
 * @param dst   count floats, caller-owned; not NULL.
 * @param count must equal lstm_model_param_count(), else LSTM_E_SHAPE.
 */
LSTM_API lstm_status lstm_model_get_params(const lstm_model *model, float *dst, size_t count);

/**
 * @brief Replace all parameters, all or nothing.
 * @param src   count floats; not NULL. Every value must be finite, else
 *              LSTM_E_NONFINITE and the model is unchanged.
 * @param count must equal lstm_model_param_count(), else LSTM_E_SHAPE.
 */
LSTM_API lstm_status lstm_model_set_params(lstm_model *model, const float *src, size_t count);

/** @brief Copy all accumulated gradients out; same rules as get_params. */
LSTM_API lstm_status lstm_model_get_grads(const lstm_model *model, float *dst, size_t count);

/** @brief Set every accumulated gradient to zero. */
LSTM_API lstm_status lstm_model_zero_grads(lstm_model *model);

/** Flag for lstm_model_init(): set every forget-gate bias b_f to 1.0. */
#define LSTM_INIT_FORGET_BIAS_ONE 0x1u

/**
 * @brief Initialise parameters as PyTorch does: every weight, bias,
 *        projection and peephole weight drawn uniformly from
 *        [-1/sqrt(H), 1/sqrt(H)].
 *
 * Values are drawn in buffer order from the library's own SplitMix64
 * sequence started at seed (the top 24 bits of each 64-bit draw make one
 * uniform value), so the same seed gives the same parameters on every
 * platform and thread. No global random state is used or changed.
 * Gradients are not touched.
 *
 * @param flags 0 or LSTM_INIT_FORGET_BIAS_ONE; other bits give LSTM_E_ARG.
 */
LSTM_API lstm_status lstm_model_init(lstm_model *model, uint64_t seed, uint32_t flags);

/** What a workspace is sized for. */
typedef enum lstm_mode {
    LSTM_MODE_INFER = 0, /**< lstm_model_infer(). */
    LSTM_MODE_TRAIN = 1  /**< lstm_model_train_forward() and lstm_model_train_backward(). */
} lstm_mode;

/**
 * @brief Opaque workspace: the scratch memory of forward passes and the
 *        activations a training forward keeps for backward.
 *
 * A workspace is tied to the configuration of the model it was created for
 * and may serve any model of the same configuration. It grows (once, at the
 * start of a call, never inside the per-step loop) when a call needs more
 * than any earlier call did; calls with shapes seen before allocate nothing.
 */
typedef struct lstm_workspace lstm_workspace;

/**
 * @brief Create an empty workspace for models shaped like @p model.
 * @param out receives the workspace, freed with lstm_workspace_destroy().
 */
LSTM_API lstm_status lstm_workspace_create(const lstm_model *model, lstm_workspace **out);

/** @brief Free a workspace. NULL is accepted and ignored. */
LSTM_API void lstm_workspace_destroy(lstm_workspace *workspace);

/**
 * @brief Bytes a workspace needs for a call of the given mode and shape
 *        (with every sequence of length seq_len: the largest case).
 *
 * Training keeps, for every layer and direction and every step of every
 * sequence, the stacked input [h_{t-1}, x_t] (R + I_l floats), the four
 * activated gates (4H) and c_t (H), plus o * tanh(c_t) (H) with a
 * projection; and each layer's output (D R) for the next layer and for
 * backward. Inference keeps only what the current layer needs: every
 * step's stacked input, the running state, and one step's gates; where the
 * input's part of the gates is computed ahead for many steps at once
 * (batch <= 4, or a layer's W over 12 MB; always in a library built with
 * LSTM_STEP_PRODUCTS=blas, whose products run on the BLAS), the gates of up to
 * max(batch, 256) rows of whole steps (4H floats per row). Both also
 * hold one packed copy of a layer's W (about 4H (R + I_l) floats, in
 * panels of 32 columns) for the per-step products; training adds
 * min(512, T B) (4H + R + I_l) floats of packings for the weight-gradient
 * product.
 *
 * @param bytes receives the size; not NULL.
 */
LSTM_API lstm_status lstm_workspace_size(const lstm_model *model, lstm_mode mode, size_t seq_len,
                                         size_t batch, size_t *bytes);

/**
 * @brief Grow a workspace now so that calls up to this shape allocate nothing.
 *
 * A training state the workspace held is discarded (a following backward
 * returns LSTM_E_STATE). On failure the workspace keeps its previous memory.
 */
LSTM_API lstm_status lstm_workspace_reserve(lstm_workspace *workspace, lstm_mode mode,
                                            size_t seq_len, size_t batch);

/**
 * @brief Seed the dropout masks of the training forwards that follow.
 *
 * Each training forward on this workspace draws its masks from the seed
 * and the number of training forwards since the seed was set, so the same
 * seed and the same calls give the same masks, whatever the thread count.
 * A new workspace starts from seed 0.
 */
LSTM_API lstm_status lstm_workspace_set_seed(lstm_workspace *workspace, uint64_t seed);

/** lstm_sequences.layout: how x, y, dx and dy are laid out in memory. */
typedef enum lstm_layout {
    LSTM_LAYOUT_MODEL = 0,      /**< As the model's configuration says: batch-major
                                     with LSTM_BATCH_FIRST, else time-major. */
    LSTM_LAYOUT_TIME_MAJOR = 1, /**< [T][B][features], whatever the configuration. */
    LSTM_LAYOUT_BATCH_MAJOR = 2 /**< [B][T][features], whatever the configuration. */
} lstm_layout;

/**
 * @brief The batch of sequences a call runs: how many steps and sequences,
 *        how long each is, and how they are laid out.
 *
 * This and the other argument structs (lstm_inputs, lstm_outputs,
 * lstm_output_grads, lstm_input_grads) follow the ABI rule of lstm_config:
 * struct_size first, growth only at the end, a field left at zero keeping
 * its documented default. Start from the _INIT macro or the _init()
 * function, then set the fields the call needs; the library only reads
 * them and keeps none of their pointers past the call.
 */
typedef struct lstm_sequences {
    size_t struct_size;    /**< sizeof(lstm_sequences) as the caller compiled it. */
    size_t steps;          /**< T >= 1: the steps of the longest sequence. */
    size_t batch;          /**< B >= 1: the number of sequences. */
    uint32_t layout;       /**< An lstm_layout; 0 (LSTM_LAYOUT_MODEL) by default. */
    const size_t *lengths; /**< B lengths in [1, T], in any order, or NULL when every
                                sequence has T steps (PyTorch's PackedSequence). Steps
                                past a sequence's end cost nothing. */
} lstm_sequences;

/** Static initializer: steps and batch must be set before use. */
#define LSTM_SEQUENCES_INIT \
  { \
    sizeof(lstm_sequences), 0, 0, 0, 0 \
  }

/**
 * @brief What a forward call reads: the input sequences and, optionally,
 *        the initial states (layouts at the top of this file).
 */
typedef struct lstm_inputs {
    size_t struct_size; /**< sizeof(lstm_inputs) as the caller compiled it. */
    const float *x;     /**< Input; required; finite where a sequence runs
                             (padding is never read). */
    const float *h0;    /**< Initial hidden states, or NULL for zeros; finite. */
    const float *c0;    /**< Initial cell states, or NULL for zeros; finite. */
} lstm_inputs;

/** Static initializer: x must be set before use. */
#define LSTM_INPUTS_INIT \
  { \
    sizeof(lstm_inputs), 0, 0, 0 \
  }

/**
 * @brief Where a forward call writes: each buffer NULL when not wanted.
 *        Buffers must not overlap the inputs.
 */
typedef struct lstm_outputs {
    size_t struct_size; /**< sizeof(lstm_outputs) as the caller compiled it. */
    float *y;           /**< Output of the last layer, zero past each sequence's end. */
    float *hT;          /**< Final hidden states, each at its sequence's own last step. */
    float *cT;          /**< Final cell states, likewise. */
} lstm_outputs;

/** Static initializer: no outputs until set. */
#define LSTM_OUTPUTS_INIT \
  { \
    sizeof(lstm_outputs), 0, 0, 0 \
  }

/**
 * @brief Fill an argument struct with its defaults (the _INIT macro's
 *        values) and the caller's struct_size.
 *
 * @param struct_size sizeof(*args) as the caller compiled it.
 * @return LSTM_OK, LSTM_E_NULL, or LSTM_E_ARG when struct_size is smaller
 *         than the first version of the struct or above 64 KiB.
 * Exported under the version node LSTM_1.2 of liblstm.so.1.
 */
LSTM_API lstm_status lstm_sequences_init(lstm_sequences *args, size_t struct_size);
/** @copydoc lstm_sequences_init */
LSTM_API lstm_status lstm_inputs_init(lstm_inputs *args, size_t struct_size);
/** @copydoc lstm_sequences_init */
LSTM_API lstm_status lstm_outputs_init(lstm_outputs *args, size_t struct_size);

/**
 * @brief Inference over a batch of sequences.
 *
 * @code
 *     lstm_sequences seq = LSTM_SEQUENCES_INIT;
 *     seq.steps = T;
 *     seq.batch = B;
 *     lstm_inputs in = LSTM_INPUTS_INIT;
 *     in.x = x;
 *     lstm_outputs out = LSTM_OUTPUTS_INIT;
 *     out.y = y;
 *     status = lstm_model_infer(model, workspace, &seq, &in, &out);
 * @endcode
 *
 * @param model     read only; may be shared across threads.
 * @param workspace created for this model's configuration; one thread at a
 *                  time. A training state it held is discarded, even when
 *                  the call fails.
 * @param sequences steps, batch, lengths and layout; not NULL.
 * @param inputs    x, and h0 and c0 or NULL; not NULL.
 * @param outputs   y, hT and cT, each or all NULL when not wanted (outputs
 *                  itself may be NULL).
 * @return LSTM_OK; LSTM_E_NULL, LSTM_E_ARG (a struct_size or a layout),
 *         LSTM_E_SIZE, LSTM_E_OVERFLOW, LSTM_E_NONFINITE or LSTM_E_NOMEM,
 *         writing no output.
 * Exported under the version node LSTM_1.2 of liblstm.so.1.
 */
LSTM_API lstm_status lstm_model_infer(const lstm_model *model, lstm_workspace *workspace,
                                      const lstm_sequences *sequences, const lstm_inputs *inputs,
                                      const lstm_outputs *outputs);

/**
 * @brief The older, positional form of lstm_model_infer() (LSTM_1.0), kept
 *        exported for the programs built with it: the same call with the
 *        sequences (seq_len, batch, lengths; the model's layout), the inputs
 *        (x, h0, c0) and the outputs (y, hT, cT) as arguments. New code
 *        should call lstm_model_infer(), whose named fields cannot be
 *        swapped unnoticed.
 */
LSTM_API lstm_status lstm_model_forward(const lstm_model *model, lstm_workspace *workspace,
                                        size_t seq_len, size_t batch, const size_t *lengths,
                                        const float *x, const float *h0, const float *c0, float *y,
                                        float *hT, float *cT);

/**
 * @brief Let the workspace keep the model's weights packed from one
 *        lstm_model_infer() call to the next.
 *
 * Each inference call first packs every layer's weights for its per-step
 * products, which costs about as much as a step or two of the call, and
 * more than the step itself at B = 1 (benchmarks/README.md has the
 * measurements). With @p keep nonzero, the next call
 * packs them into memory of the workspace's own (about the parameters'
 * size) and later calls reuse them, for as long as they run the same model
 * at the same batch size and its parameters have not changed through the
 * library: lstm_model_init(), lstm_model_set_params(), lstm_model_params()
 * (its view may be written) and a step of an optimizer that
 * lstm_optim_add_model() bound it to each make the next call pack again.
 * Writes through a view taken earlier, or through a buffer bound with
 * lstm_optim_add_buffer(), go unnoticed: call this function again after
 * them (any call of it makes the next call pack). The results are the same to the bit either way.
 * Training calls neither use nor disturb the kept packing. A network's
 * inference in a reduced precision (lstm/network.h) keeps its head's
 * packing too, under the same rules, for as long as its LSTM's is kept and
 * the head's parameters have not changed through lstm_dense_init() or
 * lstm_dense_params() (its view), nor by a step of an optimizer that
 * lstm_optim_add_network() bound the network to; a network's training
 * call on the workspace (in the memory it shares) makes it pack again.
 * @p keep = 0, the default, packs on every call and frees that memory.
 * @return LSTM_E_NOMEM, changing nothing, when that memory is not there.
 * Exported under the version node LSTM_1.1 of liblstm.so.1.
 */
LSTM_API lstm_status lstm_workspace_keep_weights(lstm_workspace *workspace, int keep);

/**
 * @brief The arithmetic of the matrix products of inference
 *        (lstm_workspace_set_precision(), lstm_state_set_precision()) and
 *        of training (lstm_workspace_set_training_precision(): float32 or
 *        bf16).
 *
 * In every precision the cells (gates' activations, c_t, h_t), the
 * states, the biases and peepholes, and each product's sums stay in
 * float32; only the operands of the products change. Their accuracy and
 * speed against float32, oneDNN and PyTorch are measured in
 * benchmarks/README.md.
 */
typedef enum lstm_precision {
    /** float32: the default, bit for bit what earlier releases computed. */
    LSTM_PRECISION_FP32 = 0,
    /** bfloat16 operands: W and each product's input rounded to bf16 (to
     *  nearest, ties to even; subnormals to zero), products summed in
     *  float32 two at a time. On CPUs without AVX-512 BF16 a portable
     *  kernel makes the same additions in the same order; the two differ
     *  only where a partial sum falls below 2^-126 (flushed to zero by the
     *  instruction). */
    LSTM_PRECISION_BF16 = 1,
    /** int8 operands: W quantized symmetrically per row (one gate of one
     *  unit: q = round(w / s), s = max |w| / 127, separately for the input
     *  weights W_x, the recurrent W_h and the projection W_hr), each
     *  product's input quantized to uint8 per row over that row's own
     *  range at every step (dynamic quantization), sums exact in int32.
     *  Every CPU gives the same bits, with VNNI or without. */
    LSTM_PRECISION_INT8 = 2
} lstm_precision;

/**
 * @brief Choose the precision of the inference calls that run on this
 *        workspace (lstm_model_infer(), lstm_network_infer(): a network's
 *        embedding lookups and head too, lstm/network.h).
 *
 * Training calls on the workspace run in the training precision
 * (lstm_workspace_set_training_precision(), float32 by default). A reduced
 * precision packs the weights in it at each call, or once with
 * lstm_workspace_keep_weights(), from the model's float32 parameters; the
 * workspace grows at its first call in it beyond lstm_workspace_size()
 * (by the rows of one product, rounded or quantized). Any CPU runs any
 * precision: without the instructions, slower.
 * @return LSTM_OK; LSTM_E_NULL; LSTM_E_ARG for a value that is not an
 *         lstm_precision.
 * Exported under the version node LSTM_1.6 of liblstm.so.1.
 */
LSTM_API lstm_status lstm_workspace_set_precision(lstm_workspace *workspace,
                                                  lstm_precision precision);

/**
 * @brief Opaque recurrent state of a batch of streams: h and c of every
 *        layer, for a model run a step or a chunk at a time.
 *
 * A state is separate from the model: a read-only model may serve any number
 * of states, from any number of threads (one thread per state at a time).
 * Running a sequence chunk by chunk through a state gives exactly, bit for
 * bit, what one whole-sequence call gives (on the library's own kernel:
 * with LSTM_STEP_PRODUCTS=blas, as the BLAS's sums allow; see lstm/common.h,
 * Determinism). Unidirectional models only: the reverse direction needs
 * the end of the sequence first.
 */
typedef struct lstm_state lstm_state;

/**
 * @brief Create a state for batch streams of models shaped like @p model,
 *        at zero (as after lstm_state_reset()). It serves any model of the
 *        same sizes, layers, projection and peepholes.
 * @return LSTM_E_ARG for a bidirectional model.
 */
LSTM_API lstm_status lstm_state_create(const lstm_model *model, size_t batch, lstm_state **out);

/** @brief Free a state. NULL is accepted and ignored. */
LSTM_API void lstm_state_destroy(lstm_state *state);

/** @brief Set h and c of every stream to zero. */
LSTM_API lstm_status lstm_state_reset(lstm_state *state);

/**
 * @brief Copy the state out: h [L][B][R] and c [L][B][H]; either may be NULL.
 */
LSTM_API lstm_status lstm_state_get(const lstm_state *state, float *h, float *c);

/**
 * @brief Replace the state: h [L][B][R] and c [L][B][H], each NULL for
 *        zeros; values must be finite (all or nothing).
 */
LSTM_API lstm_status lstm_state_set(lstm_state *state, const float *h, const float *c);

/**
 * @brief Run a chunk of steps of every stream, continuing from the state and
 *        leaving the state at the chunk's end.
 *
 * @param model     of the state's configuration; read only.
 * @param sequences steps T >= 1 of this chunk; batch, the state's B; lengths,
 *                  NULL (every stream runs T steps) or how many steps each
 *                  stream runs in this chunk, its state then taken at its own
 *                  last step; the layout.
 * @param inputs    x; h0 and c0 must be NULL, since the state holds them.
 * @param outputs   y receives h_t of the last layer ([T][B][R] or
 *                  [B][T][R]), hT and cT the state after the chunk; each or
 *                  all NULL when not wanted.
 * On failure the state is unchanged.
 * Exported under the version node LSTM_1.2 of liblstm.so.1.
 */
LSTM_API lstm_status lstm_model_infer_stream(const lstm_model *model, lstm_state *state,
                                             const lstm_sequences *sequences,
                                             const lstm_inputs *inputs,
                                             const lstm_outputs *outputs);

/**
 * @brief The older form of lstm_model_infer_stream() (LSTM_1.0): @p steps
 *        steps of every stream, x [T][B][I] in the model's layout, y or NULL.
 */
LSTM_API lstm_status lstm_model_stream(const lstm_model *model, lstm_state *state, size_t steps,
                                       const float *x, float *y);

/** @brief One step of every stream, the shorthand of
 *         lstm_model_infer_stream() with one step and no lengths;
 *         x_t is [B][I], y_t [B][R] or NULL. */
LSTM_API lstm_status lstm_model_step(const lstm_model *model, lstm_state *state, const float *x_t,
                                     float *y_t);

/**
 * @brief Let the state keep the model's weights packed from one
 *        lstm_model_infer_stream() or lstm_model_step() call to the next, as
 *        lstm_workspace_keep_weights() does for lstm_model_infer(), under
 *        the same rules.
 *
 * Each call packs the weights for its products first, which at small
 * batches costs more than the steps themselves (benchmarks/README.md has
 * the measurements).
 * Exported under the version node LSTM_1.1 of liblstm.so.1.
 */
LSTM_API lstm_status lstm_state_keep_weights(lstm_state *state, int keep);

/**
 * @brief Choose the precision of the calls that run the state
 *        (lstm_model_infer_stream(), lstm_model_step(),
 *        lstm_network_infer_stream()), as lstm_workspace_set_precision()
 *        does for a workspace. A stream run chunk by chunk in a precision
 *        gives what one whole-sequence call in it gives, bit for bit.
 * Exported under the version node LSTM_1.6 of liblstm.so.1.
 */
LSTM_API lstm_status lstm_state_set_precision(lstm_state *state, lstm_precision precision);

#ifdef __cplusplus
}
#endif

#endif /* LSTM_MODEL_H */
