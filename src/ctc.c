/*
 * Connectionist temporal classification (lstm/ctc.h): the loss by the
 * forward-backward recursion of Graves et al. (ICML 2006) in log space,
 * its gradient with respect to the logits, and the greedy decoder.
 *
 * Notation, for one sequence of T steps (its own length) and label l of
 * length S:
 *   lp[t][c]  = log y[t][c] = z[t][c] - log sum_k exp(z[t][k])   (double)
 *   l'        = (blank, l_1, blank, l_2, ..., l_S, blank), W = 2S + 1 symbols
 *   alpha[t][s] = log of the summed probability of the path prefixes
 *                 pi_0 .. pi_t that reach l'_s at t, y[t] included
 *   beta[t][s]  = log of the summed probability of the path suffixes
 *                 pi_{t+1} .. pi_{T-1} that finish l' from l'_s at t, y[t]
 *                 excluded (PyTorch's log_beta is beta + lp[t][l'_s])
 *   log p(l|x)  = logsumexp_s (alpha[t][s] + beta[t][s]), for every t
 *
 * Gradient. With gamma[t][c] = exp(logsumexp_{s: l'_s = c} (alpha[t][s] +
 * beta[t][s]) - log p), the share of the probability whose path emits c at
 * t, d(-log p)/d lp[t][c] = -gamma[t][c]; through the log-softmax,
 * d lp[t][k]/d z[t][c] = [k == c] - y[t][c], and sum_k gamma[t][k] = 1 (every
 * path is at one symbol at t), so
 *   d(-log p)/d z[t][c] = y[t][c] - gamma[t][c].
 * The reduction scales it: 1 (sum) or 1 / (B max(S, 1)) (mean).
 *
 * A call validates everything, sizes and takes its one scratch block, and
 * only then writes an output: nothing after the allocation can fail, so a
 * failed call leaves loss, losses and grad untouched.
 */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "abi.h"
#include "alloc.h"
#include "args.h"
#include "check.h"
#include "error.h"
#include "loss.h"
#include "workspace.h"
#include "lstm/ctc.h"

/* The first published structs end after flags and grad. */
#define CONFIG_V1_SIZE (offsetof(lstm_ctc_config, flags) + sizeof(uint32_t))
#define OUTPUTS_V1_SIZE (offsetof(lstm_ctc_outputs, grad) + sizeof(float *))

LSTM_API lstm_status lstm_ctc_config_init(lstm_ctc_config *config, size_t struct_size)
{
    if (config == NULL)
        return lstm__fail(LSTM_E_NULL, "config is NULL");
    static const lstm_ctc_config defaults = LSTM_CTC_CONFIG_INIT;
    return lstm__abi_struct_write(config, struct_size, &defaults, sizeof defaults, CONFIG_V1_SIZE,
                                  "config");
}

LSTM_API lstm_status lstm_ctc_outputs_init(lstm_ctc_outputs *args, size_t struct_size)
{
    if (args == NULL)
        return lstm__fail(LSTM_E_NULL, "outputs is NULL");
    static const lstm_ctc_outputs defaults = LSTM_CTC_OUTPUTS_INIT;
    return lstm__abi_struct_write(args, struct_size, &defaults, sizeof defaults, OUTPUTS_V1_SIZE,
                                  "outputs");
}

/* A call's shape, read and checked. */
typedef struct ctc_batch {
    size_t T, B, C, blank;
    bool batch_first;
    const size_t *lengths; /* NULL: every sequence has T steps */
    const float *logits;
} ctc_batch;

static size_t steps_of(const ctc_batch *batch, size_t b)
{
    return batch->lengths != NULL ? batch->lengths[b] : batch->T;
}

/* Offset of z[t][b][0] (time-major) or z[b][t][0] (batch-major). */
static size_t row_offset(const ctc_batch *batch, size_t b, size_t t)
{
    const size_t row = batch->batch_first ? b * batch->T + t : t * batch->B + b;
    return row * batch->C;
}

/* Reads config and sequences and checks what both calls share: the sizes,
 * the blank, the lengths and that the logits are finite where a sequence
 * runs. */
static lstm_status read_batch(const lstm_ctc_config *config, const lstm_sequences *sequences,
                              const float *logits, lstm_ctc_config *known, ctc_batch *batch)
{
    lstm_sequences seq;
    lstm_status status =
        lstm__abi_struct_read(config, known, sizeof *known, CONFIG_V1_SIZE, "config");
    if (status != LSTM_OK || (status = lstm__args_read_sequences(sequences, &seq)) != LSTM_OK)
        return status;
    const size_t T = seq.steps, B = seq.batch, C = known->classes;
    if (C < 2 || C > LSTM_MAX_SIZE)
        return lstm__fail(LSTM_E_SIZE, "config->classes is %zu; it must be in [2, %zu]", C,
                          LSTM_MAX_SIZE);
    if (T == 0 || B == 0)
        return lstm__fail(LSTM_E_SIZE, "sequences->%s is 0; it must be at least 1",
                          T == 0 ? "steps" : "batch");
    if (T > LSTM_MAX_SIZE || B > LSTM_MAX_SIZE)
        return lstm__fail(LSTM_E_SIZE, "sequences->%s is %zu; the limit is %zu",
                          T > LSTM_MAX_SIZE ? "steps" : "batch", T > LSTM_MAX_SIZE ? T : B,
                          LSTM_MAX_SIZE);
    size_t elements;
    if (!size_mul(T, B, &elements) || !size_mul(elements, C, &elements) ||
        !size_mul(elements, sizeof(float), &elements))
        return lstm__fail(LSTM_E_OVERFLOW, "steps %zu x batch %zu x classes %zu overflows size_t",
                          T, B, C);
    if (known->blank >= C)
        return lstm__fail(LSTM_E_ARG, "config->blank is %zu; it must be below classes %zu",
                          known->blank, C);
    if ((status = lstm__workspace_check_lengths(seq.lengths, T, B)) != LSTM_OK)
        return status;
    *batch =
        (ctc_batch){T, B, C, known->blank, lstm__args_batch_first(&seq, 0), seq.lengths, logits};
    /* Steps past a sequence's end are never read. */
    for (size_t b = 0; b < B; b++) {
        for (size_t t = 0; t < steps_of(batch, b); t++) {
            const size_t offset = row_offset(batch, b, t);
            const size_t bad = lstm__find_nonfinite(logits + offset, C);
            if (bad < C)
                return lstm__fail(LSTM_E_NONFINITE,
                                  "logits[%zu] (sequence %zu, step %zu, class %zu) is %g",
                                  offset + bad, b, t, bad, (double)logits[offset + bad]);
        }
    }
    return LSTM_OK;
}

/* ---- the loss ---- */

/* log(exp(a) + exp(b)), exact for -infinity on either side. */
static double log_add(double a, double b)
{
    const double high = a > b ? a : b;
    if (high == -INFINITY)
        return -INFINITY;
    return high + log1p(exp(-fabs(a - b)));
}

/* One sequence: its label, where its doubles go in the scratch block. */
typedef struct ctc_sequence {
    size_t b, steps;      /* its index, its T */
    const int32_t *label; /* l_1 .. l_S */
    size_t label_length;  /* S */
    double *lp;           /* [T][C] */
    double *alpha;        /* [T][W], or [2][W] for the loss alone */
    double *beta;         /* [2][W] */
    double *gamma;        /* [C] */
} ctc_sequence;

/* l'_s */
static size_t symbol(const ctc_batch *batch, const ctc_sequence *seq, size_t s)
{
    return (s & 1) ? (size_t)seq->label[s / 2] : batch->blank;
}

/* Whether a path may go from l'_{s-2} to l'_s, skipping the blank between:
 * l'_s is a label that differs from the label before it. */
static bool skips_to(const ctc_sequence *seq, size_t s)
{
    return (s & 1) && s >= 3 && seq->label[s / 2] != seq->label[s / 2 - 1];
}

/* Whether any path fits in the steps: each label takes a step, and two
 * equal labels in a row need a blank between them. */
static bool alignable(const ctc_sequence *seq)
{
    size_t needed = seq->label_length;
    for (size_t k = 1; k < seq->label_length; k++)
        needed += seq->label[k] == seq->label[k - 1] ? 1 : 0;
    return needed <= seq->steps;
}

/* lp[t][c] = z[t][c] - log sum_k exp(z[t][k]) */
static void log_softmax(const ctc_batch *batch, const ctc_sequence *seq)
{
    const size_t C = batch->C;
    for (size_t t = 0; t < seq->steps; t++) {
        const float *z = batch->logits + row_offset(batch, seq->b, t);
        double *lp = seq->lp + t * C;
        const double lse = loss_log_sum_exp(z, C);
        for (size_t c = 0; c < C; c++)
            lp[c] = (double)z[c] - lse;
    }
}

/* log(exp(a) + exp(b) + exp(c)), any of them -infinity: the largest is
 * taken out, so no exp overflows and a lone finite term costs nothing. */
static double log_sum3(double a, double b, double c)
{
    double high = a, low1 = b, low2 = c;
    if (b > high) {
        high = b;
        low1 = a;
    }
    if (c > high) {
        low2 = high;
        high = c;
    }
    if (high == -INFINITY)
        return -INFINITY;
    double rest = 0.0;
    if (low1 != -INFINITY)
        rest += exp(low1 - high);
    if (low2 != -INFINITY)
        rest += exp(low2 - high);
    return rest == 0.0 ? high : high + log1p(rest);
}

/* The symbols a path can be at on step t of T and still be a path of l':
 * s <= 2t + 1 (two symbols a step from the start) and s >= W - 2(T - t)
 * (two a step to the end). alpha and beta are -inf elsewhere. */
static void window(size_t W, size_t T, size_t t, size_t *first, size_t *last)
{
    *first = W > 2 * (T - t) ? W - 2 * (T - t) : 0;
    *last = 2 * t + 1 < W - 1 ? 2 * t + 1 : W - 1;
}

/* The forward recursion; returns log p(l|x). alpha keeps every step when
 * all_steps (for the gradient), else its rows alternate. */
static double forward(const ctc_batch *batch, const ctc_sequence *seq, bool all_steps)
{
    const size_t C = batch->C, W = 2 * seq->label_length + 1, T = seq->steps;
    /* alpha[0][0] = lp[0][blank], alpha[0][1] = lp[0][l_1], the rest -inf */
    double *row = seq->alpha;
    for (size_t s = 0; s < W; s++)
        row[s] = s < 2 ? seq->lp[symbol(batch, seq, s)] : -INFINITY;
    for (size_t t = 1; t < T; t++) {
        const double *prev = row;
        row = seq->alpha + (all_steps ? t : t % 2) * W;
        const double *lp = seq->lp + t * C;
        size_t first, last;
        window(W, T, t, &first, &last);
        for (size_t s = 0; s < W; s++)
            row[s] = -INFINITY;
        /* alpha[t][s] = lp[t][l'_s] + logsumexp(alpha[t-1][s], alpha[t-1][s-1],
         *                                       alpha[t-1][s-2] if skips_to(s)) */
        for (size_t s = first; s <= last; s++) {
            const double stay = prev[s], step = s >= 1 ? prev[s - 1] : -INFINITY,
                         skip = skips_to(seq, s) ? prev[s - 2] : -INFINITY;
            row[s] = lp[symbol(batch, seq, s)] + log_sum3(stay, step, skip);
        }
    }
    /* log p = logsumexp(alpha[T-1][W-1], alpha[T-1][W-2]): ending on the
     * last label or the blank after it */
    return W == 1 ? row[0] : log_add(row[W - 1], row[W - 2]);
}

/* The backward recursion and the gradient, step T-1 down to 0, into the
 * sequence's rows of grad. */
static void backward(const ctc_batch *batch, const ctc_sequence *seq, double log_p, double scale,
                     float *grad)
{
    const size_t C = batch->C, W = 2 * seq->label_length + 1, T = seq->steps;
    /* beta[T-1][W-1] = beta[T-1][W-2] = 0 (nothing left to emit), the rest -inf */
    double *row = seq->beta;
    for (size_t s = 0; s < W; s++)
        row[s] = s + 2 >= W ? 0.0 : -INFINITY;
    for (size_t t = T; t-- > 0;) {
        size_t first, last;
        window(W, T, t, &first, &last);
        if (t + 1 < T) {
            const double *next = row;
            const double *lp_next = seq->lp + (t + 1) * C;
            row = next == seq->beta ? seq->beta + W : seq->beta;
            for (size_t s = 0; s < W; s++)
                row[s] = -INFINITY;
            /* beta[t][s] = logsumexp over s' in {s, s+1, s+2 if skips_to(s+2)}
             *              of beta[t+1][s'] + lp[t+1][l'_s'] */
            for (size_t s = first; s <= last; s++) {
                const double stay = next[s] + lp_next[symbol(batch, seq, s)];
                const double step =
                    s + 1 < W ? next[s + 1] + lp_next[symbol(batch, seq, s + 1)] : -INFINITY;
                const double skip = s + 2 < W && skips_to(seq, s + 2)
                                        ? next[s + 2] + lp_next[symbol(batch, seq, s + 2)]
                                        : -INFINITY;
                row[s] = log_sum3(stay, step, skip);
            }
        }
        /* gamma[t][c] = exp(logsumexp_{s: l'_s = c} (alpha[t][s] + beta[t][s]) - log p) */
        const double *alpha = seq->alpha + t * W;
        for (size_t c = 0; c < C; c++)
            seq->gamma[c] = -INFINITY;
        for (size_t s = first; s <= last; s++) {
            const size_t c = symbol(batch, seq, s);
            seq->gamma[c] = log_add(seq->gamma[c], alpha[s] + row[s]);
        }
        /* grad[t][c] = scale (y[t][c] - gamma[t][c]) */
        const double *lp = seq->lp + t * C;
        float *g = grad + row_offset(batch, seq->b, t);
        for (size_t c = 0; c < C; c++)
            g[c] = (float)(scale * (exp(lp[c]) - exp(seq->gamma[c] - log_p)));
    }
}

/* Doubles of scratch sequence seq needs (0 when it has no alignment). */
static bool scratch_doubles(const ctc_batch *batch, const ctc_sequence *seq, bool with_grad,
                            size_t *count)
{
    *count = 0;
    if (!alignable(seq))
        return true;
    const size_t W = 2 * seq->label_length + 1, alpha_rows = with_grad ? seq->steps : 2;
    size_t lp, alpha;
    return size_mul(seq->steps, batch->C, &lp) && size_mul(alpha_rows, W, &alpha) &&
           size_add(lp, alpha, count) && size_add(*count, 2 * W, count) &&
           size_add(*count, batch->C, count);
}

static void carve(const ctc_batch *batch, ctc_sequence *seq, double *scratch, bool with_grad)
{
    const size_t W = 2 * seq->label_length + 1, alpha_rows = with_grad ? seq->steps : 2;
    seq->lp = scratch;
    seq->alpha = seq->lp + seq->steps * batch->C;
    seq->beta = seq->alpha + alpha_rows * W;
    seq->gamma = seq->beta + 2 * W;
}

/* Checks the labels; *doubles receives the scratch the largest sequence needs. */
static lstm_status check_labels(const ctc_batch *batch, const int32_t *labels,
                                const size_t *label_lengths, bool with_grad, size_t *doubles)
{
    size_t total = 0;
    for (size_t b = 0; b < batch->B; b++) {
        if (label_lengths[b] > LSTM_MAX_SIZE)
            return lstm__fail(LSTM_E_SIZE, "label_lengths[%zu] is %zu; the limit is %zu", b,
                              label_lengths[b], LSTM_MAX_SIZE);
        total += label_lengths[b]; /* B, S <= 2^24: no overflow */
    }
    if (total > 0 && labels == NULL)
        return lstm__fail(LSTM_E_NULL, "labels is NULL and the labels hold %zu entries", total);
    *doubles = 0;
    size_t start = 0;
    for (size_t b = 0; b < batch->B; b++) {
        for (size_t k = 0; k < label_lengths[b]; k++) {
            const int32_t label = labels[start + k];
            if (label < 0 || (size_t)label >= batch->C || (size_t)label == batch->blank)
                return lstm__fail(LSTM_E_ARG,
                                  "labels[%zu] (sequence %zu, position %zu) is %ld; it must be "
                                  "in [0, %zu) and not the blank %zu",
                                  start + k, b, k, (long)label, batch->C, batch->blank);
        }
        const ctc_sequence seq = {.b = b,
                                  .steps = steps_of(batch, b),
                                  .label = labels == NULL ? NULL : labels + start,
                                  .label_length = label_lengths[b]};
        size_t count;
        if (!scratch_doubles(batch, &seq, with_grad, &count))
            return lstm__fail(LSTM_E_OVERFLOW,
                              "the scratch of sequence %zu (%zu steps, label length %zu) "
                              "overflows size_t",
                              b, seq.steps, seq.label_length);
        *doubles = count > *doubles ? count : *doubles;
        start += label_lengths[b];
    }
    return LSTM_OK;
}

/* Zeroes grad's rows t in [from, to) of sequence b. */
static void zero_rows(const ctc_batch *batch, size_t b, size_t from, size_t to, float *grad)
{
    for (size_t t = from; t < to; t++)
        memset(grad + row_offset(batch, b, t), 0, batch->C * sizeof(float));
}

/* A loss call's arguments, read and checked. */
typedef struct loss_call {
    ctc_batch batch;
    const int32_t *labels;
    const size_t *label_lengths;
    lstm_ctc_outputs out;
    bool mean, zero_infinity;
    size_t scratch_bytes; /* for the sequence that needs the most */
} loss_call;

static lstm_status read_loss_call(const lstm_ctc_config *config, const lstm_sequences *sequences,
                                  const float *logits, const int32_t *labels,
                                  const size_t *label_lengths, const lstm_ctc_outputs *outputs,
                                  loss_call *call)
{
    if (config == NULL || sequences == NULL || logits == NULL || label_lengths == NULL ||
        outputs == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL",
                          config == NULL          ? "config"
                          : sequences == NULL     ? "sequences"
                          : logits == NULL        ? "logits"
                          : label_lengths == NULL ? "label_lengths"
                                                  : "outputs");
    lstm_status status =
        lstm__abi_struct_read(outputs, &call->out, sizeof call->out, OUTPUTS_V1_SIZE, "outputs");
    if (status != LSTM_OK)
        return status;
    if (call->out.loss == NULL)
        return lstm__fail(LSTM_E_NULL, "outputs->loss is NULL");
    lstm_ctc_config known;
    if ((status = read_batch(config, sequences, logits, &known, &call->batch)) != LSTM_OK)
        return status;
    if (known.reduction != LSTM_CTC_MEAN && known.reduction != LSTM_CTC_SUM)
        return lstm__fail(LSTM_E_ARG,
                          "config->reduction is %u; it must be LSTM_CTC_MEAN or LSTM_CTC_SUM",
                          (unsigned)known.reduction);
    if ((known.flags & ~LSTM_CTC_ZERO_INFINITY) != 0)
        return lstm__fail(LSTM_E_ARG, "config->flags 0x%x holds unknown bits",
                          (unsigned)known.flags);
    size_t doubles = 0;
    if ((status = check_labels(&call->batch, labels, label_lengths, call->out.grad != NULL,
                               &doubles)) != LSTM_OK)
        return status;
    if (!size_mul(doubles, sizeof(double), &call->scratch_bytes) ||
        (call->scratch_bytes > 0 && lstm__align_up(call->scratch_bytes) == 0))
        return lstm__fail(LSTM_E_OVERFLOW, "a scratch of %zu doubles overflows size_t", doubles);
    call->labels = labels;
    call->label_lengths = label_lengths;
    call->mean = known.reduction == LSTM_CTC_MEAN;
    call->zero_infinity = (known.flags & LSTM_CTC_ZERO_INFINITY) != 0;
    return LSTM_OK;
}

/* Sequence seq's loss, and its rows of grad (when not NULL) scaled by scale. */
static double sequence_loss(const loss_call *call, ctc_sequence *seq, double *scratch, double scale,
                            float *grad)
{
    const ctc_batch *batch = &call->batch;
    if (grad != NULL)
        zero_rows(batch, seq->b, seq->steps, batch->T, grad);
    double loss = INFINITY;
    if (alignable(seq)) {
        carve(batch, seq, scratch, grad != NULL);
        log_softmax(batch, seq);
        const double log_p = forward(batch, seq, grad != NULL);
        loss = -log_p;
        if (grad != NULL && isfinite(log_p))
            backward(batch, seq, log_p, scale, grad);
    }
    if (!isfinite(loss)) {
        /* No alignment: +inf, or 0 with zero_infinity; a zero gradient
         * either way (PyTorch's is NaN without zero_infinity). */
        if (call->zero_infinity)
            loss = 0.0;
        if (grad != NULL)
            zero_rows(batch, seq->b, 0, seq->steps, grad);
    }
    return loss;
}

LSTM_API lstm_status lstm_ctc_loss(const lstm_ctc_config *config, const lstm_sequences *sequences,
                                   const float *logits, const int32_t *labels,
                                   const size_t *label_lengths, const lstm_ctc_outputs *outputs)
{
    loss_call call;
    lstm_status status =
        read_loss_call(config, sequences, logits, labels, label_lengths, outputs, &call);
    if (status != LSTM_OK)
        return status;
    double *scratch = NULL;
    if (call.scratch_bytes > 0 && (scratch = lstm__mem_alloc(call.scratch_bytes)) == NULL)
        return lstm__fail(LSTM_E_NOMEM, "allocating the CTC scratch (%zu bytes)",
                          call.scratch_bytes);

    /* Nothing fails from here on. */
    const size_t B = call.batch.B;
    double total = 0.0;
    size_t start = 0;
    for (size_t b = 0; b < B; b++) {
        ctc_sequence seq = {.b = b,
                            .steps = steps_of(&call.batch, b),
                            .label = labels == NULL ? NULL : labels + start,
                            .label_length = label_lengths[b]};
        start += label_lengths[b];
        /* mean: loss_b / max(S, 1), averaged over the batch */
        const size_t divisor = seq.label_length > 0 ? seq.label_length : 1;
        const double scale = call.mean ? 1.0 / ((double)B * (double)divisor) : 1.0;
        const double loss = sequence_loss(&call, &seq, scratch, scale, call.out.grad);
        if (call.out.losses != NULL)
            call.out.losses[b] = loss;
        total += call.mean ? loss / (double)divisor : loss;
    }
    *call.out.loss = call.mean ? total / (double)B : total;
    lstm__mem_free(scratch);
    return LSTM_OK;
}

/* ---- greedy decoding ---- */

LSTM_API lstm_status lstm_ctc_greedy_decode(const lstm_ctc_config *config,
                                            const lstm_sequences *sequences, const float *logits,
                                            int32_t *labels, size_t *label_lengths)
{
    if (config == NULL || sequences == NULL || logits == NULL || labels == NULL ||
        label_lengths == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL",
                          config == NULL      ? "config"
                          : sequences == NULL ? "sequences"
                          : logits == NULL    ? "logits"
                          : labels == NULL    ? "labels"
                                              : "label_lengths");
    lstm_ctc_config known;
    ctc_batch batch;
    lstm_status status = read_batch(config, sequences, logits, &known, &batch);
    if (status != LSTM_OK)
        return status;
    const size_t C = batch.C;
    for (size_t b = 0; b < batch.B; b++) {
        int32_t *out = labels + b * batch.T;
        size_t count = 0, previous = C; /* C: no class yet */
        for (size_t t = 0; t < steps_of(&batch, b); t++) {
            /* best = argmax_c z[t][c], the first on a tie */
            const float *z = logits + row_offset(&batch, b, t);
            size_t best = 0;
            for (size_t c = 1; c < C; c++)
                best = z[c] > z[best] ? c : best;
            /* a class that is not the blank and differs from the step before
             * starts a label */
            if (best != batch.blank && best != previous)
                out[count++] = (int32_t)best;
            previous = best;
        }
        label_lengths[b] = count;
    }
    return LSTM_OK;
}
