/*
 * The losses' one implementation (loss.c), serving the public lstm_loss_*
 * calls and networks (network.c), whose rows past a sequence's end do not
 * count: the loss is the mean over the rows kept (times their width for
 * the element-wise losses), and the gradient is zero in the rows left out.
 */
#ifndef LSTM_LOSS_H
#define LSTM_LOSS_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lstm/common.h"

/*
 * The rows of a [T][B] (or batch-major [B][T]) array that lie within their
 * sequence: with lengths NULL every row; else row r, step t of sequence b
 * (r = t B + b, or r = b T + t batch-major), when t < lengths[b]. A
 * caller's keep array (lstm_targets.mask) leaves out the rows where it is 0.
 */
typedef struct row_mask {
    size_t seq_len, batch; /* T, B, with lengths */
    bool batch_first;
    const size_t *lengths;
    const uint8_t *keep; /* [rows], or NULL */
} row_mask;

static inline bool row_mask_kept(const row_mask *mask, size_t r)
{
    if (mask->keep != NULL && mask->keep[r] == 0)
        return false;
    if (mask->lengths == NULL)
        return true;
    const size_t t = mask->batch_first ? r % mask->seq_len : r / mask->batch;
    const size_t b = mask->batch_first ? r / mask->seq_len : r % mask->batch;
    return t < mask->lengths[b];
}

/* lse = m + log sum_c exp(z_c - m), m = max_c z_c, over count >= 1 logits,
 * in double: no exp overflows. The softmax losses' one log-sum-exp. */
static inline double loss_log_sum_exp(const float *z, size_t count)
{
    double m = z[0];
    for (size_t c = 1; c < count; c++)
        m = z[c] > m ? z[c] : m;
    double sum = 0.0;
    for (size_t c = 0; c < count; c++)
        sum += exp((double)z[c] - m);
    return m + log(sum);
}

/*
 * rows rows of width values each, of which those the mask keeps count:
 * rows that do not count are never read. input and targets name the
 * arrays in error messages.
 */
typedef struct loss_rows {
    size_t rows;
    size_t width;
    row_mask mask;
    const char *input;   /* "logits", "output" */
    const char *targets; /* "targets", "targets->classes" */
} loss_rows;

static inline bool loss_row_kept(const loss_rows *rows, size_t r)
{
    return row_mask_kept(&rows->mask, r);
}

/*
 * Softmax cross-entropy, rows of width classes, one class per row: a row
 * whose class is ignore_index (or any negative class, with
 * ignore_negative) is left out. Checks every kept row's class, then its
 * logits, before anything is written. loss not NULL; dlogits may be NULL.
 */
lstm_status lstm__loss_cross_entropy(const loss_rows *rows, const float *logits,
                                     const int32_t *classes, int32_t ignore_index,
                                     bool ignore_negative, double *loss, float *dlogits);

/* Binary cross-entropy on logits, element-wise over the kept rows. */
lstm_status lstm__loss_bce_with_logits(const loss_rows *rows, const float *logits,
                                       const float *targets, double *loss, float *dlogits);

/* Mean squared error, element-wise over the kept rows. */
lstm_status lstm__loss_mse(const loss_rows *rows, const float *predictions, const float *targets,
                           double *loss, float *dpredictions);

/* A caller's own loss gradient: grad's kept rows (checked finite) copied
 * to dinput, whose other rows are zeroed. */
lstm_status lstm__loss_given(const loss_rows *rows, const float *grad, float *dinput);

#endif /* LSTM_LOSS_H */
