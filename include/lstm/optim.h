/**
 * @file lstm/optim.h
 * @brief Optimizers (SGD, Adagrad, RMSprop, Adam, AdamW), gradient clipping
 *        and learning-rate schedules, with torch.optim's exact update rules.
 *
 * An optimizer updates float32 parameter buffers from gradient buffers of
 * the same length. It works on any buffers: a model's (bind them all with
 * lstm_optim_add_model()), an embedding's (lstm_optim_add_embedding(),
 * which can update only the rows a batch used: LSTM_OPTIM_LAZY_ROWS), an
 * output layer's, or the caller's own. It only uses the public views of
 * lstm/model.h and lstm/embedding.h.
 *
 * A training step, with gradients accumulated by lstm_model_train_backward():
 *
 *     lstm_optim_zero_grads(opt);
 *     ... forward, loss, backward ...
 *     lstm_optim_clip_grad_norm(opt, 1.0, &norm);    (optional)
 *     lstm_optim_step(opt);
 *
 * Steps are all or nothing: a step either leaves every parameter and every
 * state value finite, or returns LSTM_E_NONFINITE and changes no parameter
 * and no optimizer state (the step count included). It is refused when a
 * bound gradient or parameter holds NaN or infinity, and when finite values
 * would give one: a gradient beyond about 1e19 squared into Adam's second
 * moment, a momentum that outgrows FLT_MAX, a parameter near FLT_MAX pushed
 * past it, 0 / 0 from a zero gradient and state with eps = 0. torch.optim
 * takes such a step and writes NaN or infinity; here a bad value never
 * reaches a parameter through training. Clipping the gradients
 * (lstm_optim_clip_grad_norm()) keeps them in range.
 *
 * Thread rules: an optimizer and the buffers bound to it belong to one
 * thread at a time. A step may use extra threads internally (see
 * lstm_optim_options.threads); it returns only when they are done. The
 * optimizer starts those threads once, in lstm_optim_create() or in the
 * binding that first asks for them, and keeps them, asleep between steps,
 * until lstm_optim_destroy(): a step, clipping and zeroing start no thread
 * and allocate nothing.
 */
#ifndef LSTM_OPTIM_H
#define LSTM_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "lstm/common.h"
#include "lstm/embedding.h"
#include "lstm/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The update rule. Values are explicit and never renumbered. */
typedef enum lstm_optim_kind {
    LSTM_OPTIM_SGD = 0,     /**< torch.optim.SGD */
    LSTM_OPTIM_ADAGRAD = 1, /**< torch.optim.Adagrad */
    LSTM_OPTIM_RMSPROP = 2, /**< torch.optim.RMSprop */
    LSTM_OPTIM_ADAM = 3,    /**< torch.optim.Adam */
    LSTM_OPTIM_ADAMW = 4    /**< torch.optim.AdamW */
} lstm_optim_kind;

/** SGD: Nesterov momentum (needs momentum > 0 and dampening = 0). */
#define LSTM_OPTIM_NESTEROV 0x1u
/** RMSprop: normalise by the centred second moment (an estimate of the variance). */
#define LSTM_OPTIM_CENTERED 0x2u
/** Adam, AdamW: the AMSGrad variant (keep the maximum second moment). */
#define LSTM_OPTIM_AMSGRAD 0x4u
/** Any kind: maximise the objective instead of minimising it. */
#define LSTM_OPTIM_MAXIMIZE 0x8u
/**
 * SGD, Adam: embeddings bound with lstm_optim_add_embedding() (or
 * lstm_optim_add_network(), which binds a network's that way) are updated
 * lazily, only in the rows their backward touched since the gradients were
 * last zeroed (lstm_embedding_touched_rows()), as torch.optim updates an
 * nn.Embedding(sparse=True): a step, a zeroing and clipping cost
 * O(touched rows x E) for them, not O(V E). Every other binding (buffers,
 * models, dense layers) is updated as without the flag, so one optimizer
 * trains a whole network as PyTorch's pair SparseAdam (embedding) + Adam
 * (the rest) does, or SGD + SGD.
 *
 *  - Adam: the touched rows follow torch.optim.SparseAdam: their moments
 *    move, m += (1 - beta1)(d - m), v += (1 - beta2)(d^2 - v), and
 *    p -= lr sqrt(1 - beta2^t) / (1 - beta1^t) m / (sqrt(v) + eps), with
 *    t the optimizer's step count (SparseAdam counts the steps at which
 *    the embedding had a gradient, empty or not: the same count once its
 *    first backward came before the first step); the moments of the other
 *    rows are not decayed and those rows do not move. SparseAdam has no weight decay
 *    and no AMSGrad: with this flag, weight_decay must be 0 and
 *    LSTM_OPTIM_AMSGRAD unset (LSTM_E_ARG at create; use a second
 *    optimizer for dense parameters that need them).
 *  - SGD: p -= lr g on the touched rows, which is exactly the dense update
 *    (the other rows have a zero gradient). Momentum and weight decay
 *    would move untouched rows too (torch.optim.SGD's momentum over a
 *    sparse gradient keeps moving every row it ever saw), so momentum and
 *    weight_decay must be 0 (LSTM_E_ARG at create).
 *  - Adagrad, RMSprop, AdamW: refused (LSTM_E_ARG at create).
 *
 * The rows outside the touched set are taken to have a zero gradient: a
 * value written there through lstm_embedding_grads() is neither applied,
 * clipped nor zeroed. The state keeps its layout (every row has its
 * moments); the flag is saved with it, and a state loads only into an
 * optimizer created with the same flags.
 */
#define LSTM_OPTIM_LAZY_ROWS 0x10u

/**
 * @brief Options of an optimizer, with PyTorch's names and meanings.
 *
 * ABI rule: struct_size first, the struct only grows at the end; a
 * struct_size above 64 KiB is refused (LSTM_E_ARG). Fill it
 * with lstm_optim_options_init(), which sets PyTorch's defaults for the
 * kind, then change what you need. Fields a kind does not use are ignored.
 */
typedef struct lstm_optim_options {
    size_t struct_size;   /**< sizeof(lstm_optim_options) as the caller compiled it. */
    lstm_optim_kind kind; /**< The update rule. */
    uint32_t flags;       /**< LSTM_OPTIM_NESTEROV | _CENTERED | _AMSGRAD | _MAXIMIZE
                               | _LAZY_ROWS. */
    double lr;            /**< Learning rate, >= 0. Defaults: SGD 0.01 (PyTorch has none),
                               Adagrad 0.01, RMSprop 0.01, Adam 0.001, AdamW 0.001. */
    double weight_decay;  /**< L2 penalty (decoupled for AdamW), >= 0. Default 0; AdamW 0.01. */
    double momentum;      /**< SGD, RMSprop: >= 0. Default 0. */
    double dampening;     /**< SGD: >= 0. Default 0. */
    double alpha;         /**< RMSprop smoothing constant, >= 0. Default 0.99. */
    double beta1;         /**< Adam, AdamW: in [0, 1). Default 0.9. */
    double beta2;         /**< Adam, AdamW: in [0, 1). Default 0.999. */
    double eps;           /**< Adagrad 1e-10, RMSprop/Adam/AdamW 1e-8; >= 0. */
    double lr_decay;      /**< Adagrad: >= 0. Default 0. */
    double initial_accumulator_value; /**< Adagrad: >= 0. Default 0. */
    uint32_t threads;                 /**< Threads a step may use: 0 = choose (1 for small
                                           buffers), 1 = the calling thread only. Started
                                           by lstm_optim_create() (with 0: by the binding
                                           that makes the buffers large), kept until
                                           lstm_optim_destroy(). */
} lstm_optim_options;

/**
 * @brief Fill options with PyTorch's defaults for a kind.
 * @param struct_size sizeof(*options) as the caller compiled it.
 * @return LSTM_OK, LSTM_E_NULL, or LSTM_E_ARG (unknown kind, or struct_size
 *         smaller than the first version of the struct or above 64 KiB).
 */
LSTM_API lstm_status lstm_optim_options_init(lstm_optim_options *options, size_t struct_size,
                                             lstm_optim_kind kind);

/**
 * The largest step count, 2^53. The bias corrections 1 - beta^t and
 * Adagrad's 1 + (t - 1) lr_decay are computed in double from t, which
 * holds every count up to 2^53 exactly; beyond, t would be rounded, and a
 * count that wraps to t = 0 would divide by zero. lstm_optim_step() refuses
 * to go past it, lstm_optim_load_state() refuses a state beyond it.
 */
#define LSTM_OPTIM_MAX_STEPS ((uint64_t)1 << 53)

/** Opaque optimizer: options, bound buffers, per-parameter state, step count. */
typedef struct lstm_optim lstm_optim;

/**
 * @brief Create an optimizer with no buffers bound yet.
 * @param options read only, not retained; every value is checked as
 *                PyTorch checks it (LSTM_E_ARG with the field named).
 * @param out     receives the optimizer, freed with lstm_optim_destroy().
 * @return LSTM_E_NOMEM, nothing created, when memory or the threads asked
 *         for (options.threads > 1) cannot be had.
 */
LSTM_API lstm_status lstm_optim_create(const lstm_optim_options *options, lstm_optim **out);

/** @brief Free an optimizer (not the buffers bound to it). NULL is ignored. */
LSTM_API void lstm_optim_destroy(lstm_optim *optim);

/**
 * @brief Bind a parameter buffer and its gradient buffer.
 *
 * The optimizer keeps the two pointers (not copies): they must stay valid
 * and must not overlap each other or any other bound buffer while the
 * optimizer uses them. Its state for them starts at zero (Adagrad: at
 * initial_accumulator_value). Buffers are bound in order; the state layout
 * follows that order. Binding is refused once a step has been taken.
 *
 * @param params, grads count floats each; not NULL.
 * @param count         >= 1.
 * @return LSTM_E_NOMEM, the optimizer unchanged, when the state's memory,
 *         or with options.threads = 0 the threads that large buffers get,
 *         cannot be had.
 */
LSTM_API lstm_status lstm_optim_add_buffer(lstm_optim *optim, float *params, float *grads,
                                           size_t count);

/**
 * @brief Bind all of a model's parameters and gradients: the same as
 *        lstm_optim_add_buffer() with lstm_model_params() and lstm_model_grads().
 *        The model must outlive the optimizer's use of it.
 */
LSTM_API lstm_status lstm_optim_add_model(lstm_optim *optim, lstm_model *model);

/**
 * @brief Bind an embedding layer's weights and gradients
 *        (lstm_embedding_params(), lstm_embedding_grads()).
 *
 * Without LSTM_OPTIM_LAZY_ROWS: exactly lstm_optim_add_buffer() with those
 * views (every row updated as torch.optim updates an nn.Embedding with
 * sparse=False), except that lstm_optim_zero_grads() zeroes them with
 * lstm_embedding_zero_grads(), which also empties the touched set. With
 * the flag: the rows are updated lazily (see LSTM_OPTIM_LAZY_ROWS), and
 * lstm_optim_zero_grads() calls lstm_embedding_zero_touched_grads().
 *
 * The state and its layout are those of lstm_optim_add_buffer() with V E
 * parameters. The embedding must outlive the optimizer's use of it.
 *
 * @return as lstm_optim_add_buffer(); LSTM_E_NULL for a NULL embedding.
 */
LSTM_API lstm_status lstm_optim_add_embedding(lstm_optim *optim, lstm_embedding *embedding);

/** @brief Total number of bound parameters; 0 for NULL. */
LSTM_API size_t lstm_optim_param_count(const lstm_optim *optim);

/**
 * @brief One update of every bound parameter from its gradient.
 * @return LSTM_OK; LSTM_E_STATE when no buffer is bound or the step count
 *         has reached LSTM_OPTIM_MAX_STEPS; LSTM_E_NONFINITE (nothing
 *         changed) when a gradient holds NaN or infinity, or when the update
 *         would make a parameter or a state value NaN or infinite (see the
 *         top of this file). lstm_error_message() names the first such
 *         gradient, or else the first such parameter.
 */
LSTM_API lstm_status lstm_optim_step(lstm_optim *optim);

/**
 * @brief Set every bound gradient to zero (of a lazy embedding binding:
 *        the touched rows, whose set it empties).
 */
LSTM_API lstm_status lstm_optim_zero_grads(lstm_optim *optim);

/**
 * @brief Scale all bound gradients so that their global L2 norm is at most
 *        max_norm, as torch.nn.utils.clip_grad_norm_ does: with the norm n
 *        of all gradients together, each is multiplied by
 *        min(1, max_norm / (n + 1e-6)).
 * @param max_norm   > 0 and finite.
 * @param total_norm receives n, the norm before clipping; may be NULL.
 * @return LSTM_E_NONFINITE (gradients unchanged) when the norm is not finite.
 */
LSTM_API lstm_status lstm_optim_clip_grad_norm(lstm_optim *optim, double max_norm,
                                               double *total_norm);

/**
 * @brief Clamp every bound gradient to [-clip_value, clip_value], as
 *        torch.nn.utils.clip_grad_value_ does.
 * @param clip_value >= 0 and finite.
 */
LSTM_API lstm_status lstm_optim_clip_grad_value(lstm_optim *optim, double clip_value);

/** @brief The current learning rate. @param lr not NULL. */
LSTM_API lstm_status lstm_optim_get_lr(const lstm_optim *optim, double *lr);

/** @brief Change the learning rate for the following steps; lr >= 0 and finite. */
LSTM_API lstm_status lstm_optim_set_lr(lstm_optim *optim, double lr);

/** @brief Number of steps taken (PyTorch's state "step"). @param steps not NULL. */
LSTM_API lstm_status lstm_optim_step_count(const lstm_optim *optim, uint64_t *steps);

/**
 * @brief Bytes of the optimizer's state as lstm_optim_save_state() writes it.
 *
 * Layout, little-endian whatever the host (integers and IEEE 754 binary32
 * values, no padding; the buffer needs no alignment). These are exactly the
 * bytes of the OPTM section of a model file (lstm_model_save(),
 * docs/model-format.md), so a state is portable between hosts and can be
 * moved between a buffer and a file as it is.
 *
 *     offset  0  uint32  magic 0x4C4F5054: bytes 54 50 4F 4C ("TPOL")
 *     offset  4  uint32  layout version, 1
 *     offset  8  uint32  kind (lstm_optim_kind)
 *     offset 12  uint32  flags the optimizer was created with
 *     offset 16  uint64  step count, at most LSTM_OPTIM_MAX_STEPS
 *     offset 24  uint64  N, the number of bound parameters
 *     offset 32  uint64  S, the number of state arrays
 *     offset 40  float32 S arrays of N values each. Each array runs over the
 *                        bound buffers in binding order. The arrays are, by kind:
 *                 SGD      momentum_buffer (S = 1 when momentum != 0, else 0)
 *                 Adagrad  sum
 *                 RMSprop  square_avg, then grad_avg if CENTERED, then
 *                          momentum_buffer if momentum > 0
 *                 Adam(W)  exp_avg, exp_avg_sq, then max_exp_avg_sq if AMSGRAD
 *
 * These are PyTorch's state names; the values are those torch.optim holds.
 *
 * liblstm 0.2.0 and earlier wrote this buffer in the host's byte order,
 * which is the same bytes on a little-endian host: nothing changes there.
 * On a big-endian host, a buffer saved by those versions is refused by
 * lstm_optim_load_state() (LSTM_E_ARG: its magic reads byte-swapped), and
 * swapping the bytes of each field (four uint32, three uint64, then each
 * float32) converts it; a program that reads the buffer's fields itself
 * must decode them little-endian there. Model files were always
 * little-endian and are not affected.
 */
LSTM_API lstm_status lstm_optim_state_size(const lstm_optim *optim, size_t *bytes);

/**
 * @brief Write the state (layout above) to dst.
 * @param bytes must equal lstm_optim_state_size(), else LSTM_E_SHAPE.
 * @return LSTM_E_NONFINITE, nothing written, when a state value is NaN or
 *         infinite, which lstm_optim_load_state() would refuse. Steps and
 *         loads keep every value finite, so this is a guard only.
 */
LSTM_API lstm_status lstm_optim_save_state(const lstm_optim *optim, void *dst, size_t bytes);

/**
 * @brief Restore a state saved by an optimizer of the same kind, flags and
 *        bound sizes, so that training resumes exactly where it stopped.
 *
 * Everything is checked before anything is changed: magic, version, kind,
 * flags, a step count of at most LSTM_OPTIM_MAX_STEPS (LSTM_E_ARG), sizes
 * (LSTM_E_SHAPE), and that every value is finite (LSTM_E_NONFINITE). On
 * failure the optimizer is unchanged.
 */
LSTM_API lstm_status lstm_optim_load_state(lstm_optim *optim, const void *src, size_t bytes);

/**
 * @brief Step decay (torch.optim.lr_scheduler.StepLR):
 *        lr = base_lr * gamma^floor(epoch / step_size).
 * @param step_size >= 1. @param gamma >= 0 and finite. @param lr not NULL.
 */
LSTM_API lstm_status lstm_schedule_step(double base_lr, double gamma, uint64_t step_size,
                                        uint64_t epoch, double *lr);

/**
 * @brief Cosine annealing (torch.optim.lr_scheduler.CosineAnnealingLR, its
 *        closed form): lr = eta_min + (base_lr - eta_min) (1 + cos(pi epoch / t_max)) / 2.
 * @param t_max >= 1. @param lr not NULL.
 */
LSTM_API lstm_status lstm_schedule_cosine(double base_lr, double eta_min, uint64_t t_max,
                                          uint64_t epoch, double *lr);

#ifdef __cplusplus
}
#endif

#endif /* LSTM_OPTIM_H */
