/**
 * @file lstm/ctc.h
 * @brief Connectionist temporal classification (Graves et al., ICML 2006):
 *        the loss of unsegmented label sequences over every-step outputs,
 *        its gradient, and a greedy (best-path) decoder.
 *
 * CTC scores a label sequence l (length S, no blanks) against T steps of
 * scores over C classes, one of them the blank. An alignment is a path of
 * T classes that becomes l once repeats are merged and blanks removed; the
 * loss is -log of the summed probability of every such path,
 *
 *     loss = -log sum_{paths pi -> l} prod_t y[t][pi_t],   y[t] = softmax(z[t]),
 *
 * computed by the forward-backward recursion over the extended label
 * l' = (blank, l_1, blank, l_2, ..., l_S, blank) of 2S + 1 symbols, in log
 * space so long sequences do not underflow.
 *
 * The scores are logits z (the output of an every-step head), not
 * log-probabilities: the log-softmax is taken inside, and the gradient is
 * with respect to the logits, ready to pass as lstm_targets.grad to a
 * network whose loss is LSTM_LOSS_NONE. It equals PyTorch's
 * torch.nn.functional.ctc_loss(z.log_softmax(2), targets, input_lengths,
 * target_lengths, blank, reduction, zero_infinity) and that expression's
 * gradient with respect to z, with one difference: without zero_infinity
 * the gradient of a sequence that has no alignment (infinite loss) is NaN
 * in PyTorch and zero here, so one impossible label in a batch does not
 * turn every parameter into NaN (the loss is +infinity in both).
 *
 * Thread rules: the calls only read their inputs; any number may run at
 * once on different outputs.
 */
#ifndef LSTM_CTC_H
#define LSTM_CTC_H

#include <stddef.h>
#include <stdint.h>

#include "lstm/common.h"
#include "lstm/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/** How the per-sequence losses become one. Values are explicit and never renumbered. */
typedef enum lstm_ctc_reduction {
    LSTM_CTC_MEAN = 0, /**< The mean over the batch of each loss divided by its label
                            length (1 for an empty label): PyTorch's 'mean'. */
    LSTM_CTC_SUM = 1   /**< The sum over the batch: PyTorch's 'sum'. */
} lstm_ctc_reduction;

/** lstm_ctc_config.flags: an impossible alignment (a label longer than its
 *  input allows) counts 0 with a zero gradient instead of +infinity:
 *  PyTorch's zero_infinity=True. */
#define LSTM_CTC_ZERO_INFINITY 0x1u

/**
 * @brief What the CTC calls need besides the data.
 *
 * ABI rule: as for lstm_config (struct_size first, growth only at the end,
 * zero keeps the default).
 */
typedef struct lstm_ctc_config {
    size_t struct_size; /**< sizeof(lstm_ctc_config) as the caller compiled it. */
    size_t classes;     /**< C >= 2: the classes of each step, the blank included. */
    size_t blank;       /**< The blank's class, in [0, C); 0 by default, as PyTorch's. */
    uint32_t reduction; /**< An lstm_ctc_reduction; LSTM_CTC_MEAN by default. */
    uint32_t flags;     /**< LSTM_CTC_ZERO_INFINITY, or 0. */
} lstm_ctc_config;

/** Static initializer: classes must be set before use. */
#define LSTM_CTC_CONFIG_INIT \
  { \
    sizeof(lstm_ctc_config), 0, 0, 0, 0 \
  }

/** @copydoc lstm_sequences_init */
LSTM_API lstm_status lstm_ctc_config_init(lstm_ctc_config *config, size_t struct_size);

/**
 * @brief Where lstm_ctc_loss() writes: the loss, and optionally the
 *        per-sequence losses and the gradient.
 *
 * ABI rule: as for lstm_sequences (struct_size first, growth only at the
 * end). A struct rather than three more parameters: loss and losses are
 * both double pointers, which the compiler could not tell apart.
 */
typedef struct lstm_ctc_outputs {
    size_t struct_size; /**< sizeof(lstm_ctc_outputs) as the caller compiled it. */
    double *loss;       /**< Receives the reduced loss; required. +infinity when a
                             sequence has no alignment, unless LSTM_CTC_ZERO_INFINITY. */
    double *losses;     /**< Receives the B unreduced losses (PyTorch's
                             reduction='none'), or NULL. */
    float *grad;        /**< Receives d loss / d logits, same shape and layout as
                             logits, zero past each sequence's end; or NULL for the
                             loss alone (which needs less scratch). */
} lstm_ctc_outputs;

/** Static initializer: loss must be set before use. */
#define LSTM_CTC_OUTPUTS_INIT \
  { \
    sizeof(lstm_ctc_outputs), 0, 0, 0 \
  }

/** @copydoc lstm_sequences_init */
LSTM_API lstm_status lstm_ctc_outputs_init(lstm_ctc_outputs *args, size_t struct_size);

/**
 * @brief The CTC loss of a batch and, optionally, its gradient.
 *
 * @param config    classes, blank, reduction, flags; not NULL.
 * @param sequences T, B, the input lengths (NULL: every sequence has T steps)
 *                  and the layout of logits and grad: LSTM_LAYOUT_MODEL
 *                  (there is no model here) and LSTM_LAYOUT_TIME_MAJOR are
 *                  [T][B][C], LSTM_LAYOUT_BATCH_MAJOR is [B][T][C].
 * @param logits    [T][B][C] (batch-major [B][T][C]), finite where a sequence
 *                  runs; steps past a sequence's end are never read.
 * @param labels    the B label sequences one after another (sum of
 *                  label_lengths entries), each label in [0, C) and not the
 *                  blank; may be NULL when every label length is 0.
 * @param label_lengths B lengths, each <= LSTM_MAX_SIZE; 0 is an empty label
 *                  (its only alignment is all blanks). A label longer than
 *                  its input allows (S plus the number of equal labels in a
 *                  row, which need a blank between them, above the input
 *                  length) has no alignment: not an error, an infinite loss.
 * @param outputs   where the loss, the per-sequence losses and the gradient
 *                  go; not NULL, outputs->loss not NULL. Without
 *                  LSTM_CTC_ZERO_INFINITY, the gradient rows of a sequence
 *                  without an alignment are zero, where PyTorch gives NaN;
 *                  with it, zero as PyTorch's.
 * @return LSTM_OK; LSTM_E_NULL (labels NULL with a label length above 0);
 *         LSTM_E_ARG (a struct_size, blank, reduction, flags, layout, an
 *         input length outside [1, T] as for every sequence call, a label
 *         out of range or equal to the blank, the message naming its
 *         sequence and position); LSTM_E_SIZE (C < 2 or above LSTM_MAX_SIZE,
 *         T or B zero or above LSTM_MAX_SIZE, a label length above
 *         LSTM_MAX_SIZE); LSTM_E_OVERFLOW; LSTM_E_NONFINITE (a logit, naming
 *         its index); LSTM_E_NOMEM (the call's one scratch allocation, of
 *         about 8 (T C + T (2 S + 1)) bytes for the longest sequence, or
 *         8 (T C + 2 (2 S + 1)) for the loss alone). On failure nothing in
 *         outputs is written.
 *
 * Numbers: the log-softmax, both recursions and the loss are computed in
 * double, in log space; the gradient is rounded once to float.
 */
LSTM_API lstm_status lstm_ctc_loss(const lstm_ctc_config *config, const lstm_sequences *sequences,
                                   const float *logits, const int32_t *labels,
                                   const size_t *label_lengths, const lstm_ctc_outputs *outputs);

/**
 * @brief Greedy (best-path) decoding: each step's most likely class, repeats
 *        merged, blanks removed.
 *
 * @param config    classes and blank (reduction and flags are not read).
 * @param sequences T, B, lengths and layout of logits, as for lstm_ctc_loss().
 * @param logits    as for lstm_ctc_loss() (probabilities or log-probabilities
 *                  give the same result: only the largest score counts; the
 *                  first class wins a tie).
 * @param labels    receives sequence b's labels at labels[b * T]; room for
 *                  B T entries; entries past a sequence's label length are
 *                  not written.
 * @param label_lengths receives the B label lengths.
 * @return LSTM_OK; LSTM_E_NULL; LSTM_E_ARG; LSTM_E_SIZE; LSTM_E_OVERFLOW;
 *         LSTM_E_NONFINITE, as lstm_ctc_loss(); it allocates nothing. On
 *         failure labels and label_lengths are untouched.
 */
LSTM_API lstm_status lstm_ctc_greedy_decode(const lstm_ctc_config *config,
                                            const lstm_sequences *sequences, const float *logits,
                                            int32_t *labels, size_t *label_lengths);

#ifdef __cplusplus
}
#endif

#endif /* LSTM_CTC_H */
