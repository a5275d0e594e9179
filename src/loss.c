/*
 * Losses with PyTorch's definitions and reduction "mean": the value in
 * double, the gradient that starts backpropagation in float. One
 * implementation over rows that may be masked by sequence lengths
 * (loss.h); the public calls are its unmasked case.
 */
#include <math.h>
#include <string.h>

#include "check.h"
#include "error.h"
#include "loss.h"
#include "lstm/head.h"

/* count >= 1 and count floats addressable. */
static lstm_status check_count(const char *name, size_t count)
{
    size_t bytes;
    if (count == 0)
        return lstm__fail(LSTM_E_SIZE, "%s is 0; it must be at least 1", name);
    if (!size_mul(count, sizeof(float), &bytes))
        return lstm__fail(LSTM_E_OVERFLOW, "%s %zu floats overflow size_t", name, count);
    return LSTM_OK;
}

/* Neither lengths nor a caller's mask leaves a row out. */
static bool every_row_kept(const loss_rows *rows)
{
    return rows->mask.lengths == NULL && rows->mask.keep == NULL;
}

/* NaN and infinity in the kept rows of values, named by their index. */
static lstm_status check_kept_finite(const loss_rows *rows, const char *name, const float *values)
{
    if (every_row_kept(rows))
        return lstm__check_finite(name, values, rows->rows * rows->width);
    const size_t width = rows->width;
    for (size_t r = 0; r < rows->rows; r++) {
        if (!loss_row_kept(rows, r))
            continue;
        size_t bad = lstm__find_nonfinite(values + r * width, width);
        if (bad < width)
            return lstm__fail(LSTM_E_NONFINITE, "%s[%zu] is %g", name, r * width + bad,
                              (double)values[r * width + bad]);
    }
    return LSTM_OK;
}

/* Rows left out of the loss get a zero gradient. */
static void zero_row(float *grad, size_t r, size_t width)
{
    if (grad != NULL)
        memset(grad + r * width, 0, width * sizeof(float));
}

static bool class_ignored(int32_t target, int32_t ignore_index, bool ignore_negative)
{
    return target == ignore_index || (ignore_negative && target < 0);
}

lstm_status lstm__loss_cross_entropy(const loss_rows *rows, const float *logits,
                                     const int32_t *classes, int32_t ignore_index,
                                     bool ignore_negative, double *loss, float *dlogits)
{
    const size_t width = rows->width;
    size_t valid = 0;
    for (size_t r = 0; r < rows->rows; r++) {
        if (!loss_row_kept(rows, r) || class_ignored(classes[r], ignore_index, ignore_negative))
            continue;
        if (classes[r] < 0 || (size_t)classes[r] >= width) {
            if (ignore_negative)
                return lstm__fail(LSTM_E_ARG,
                                  "%s[%zu] is %ld; it must be in 0 .. %zu, or negative to "
                                  "leave its row out",
                                  rows->targets, r, (long)classes[r], width - 1);
            return lstm__fail(LSTM_E_ARG,
                              "%s[%zu] is %ld; it must be in 0 .. %zu or "
                              "ignore_index %ld",
                              rows->targets, r, (long)classes[r], width - 1, (long)ignore_index);
        }
        valid++;
    }
    lstm_status status = check_kept_finite(rows, rows->input, logits);
    if (status != LSTM_OK)
        return status;

    /* Every row ignored: PyTorch divides 0 by 0; the loss is 0 here. */
    const double scale = valid == 0 ? 0.0 : 1.0 / (double)valid;
    double total = 0.0;
    for (size_t r = 0; r < rows->rows; r++) {
        if (!loss_row_kept(rows, r) || class_ignored(classes[r], ignore_index, ignore_negative)) {
            zero_row(dlogits, r, width);
            continue;
        }
        const float *z = logits + r * width;
        float *dz = dlogits == NULL ? NULL : dlogits + r * width;
        const size_t target = (size_t)classes[r];
        const double lse = loss_log_sum_exp(z, width);
        /* loss_r = lse - z_target */
        total += lse - (double)z[target];
        if (dz == NULL)
            continue;
        /* dz_c = (softmax_c - [c == target]) / valid */
        for (size_t c = 0; c < width; c++) {
            double softmax = exp((double)z[c] - lse);
            dz[c] = (float)((softmax - (c == target ? 1.0 : 0.0)) * scale);
        }
    }
    *loss = total * scale;
    return LSTM_OK;
}

/* Values counted by an element-wise loss: kept rows times their width. */
static size_t kept_values(const loss_rows *rows)
{
    if (every_row_kept(rows))
        return rows->rows * rows->width;
    size_t kept = 0;
    for (size_t r = 0; r < rows->rows; r++)
        kept += loss_row_kept(rows, r) ? 1 : 0;
    return kept * rows->width;
}

lstm_status lstm__loss_bce_with_logits(const loss_rows *rows, const float *logits,
                                       const float *targets, double *loss, float *dlogits)
{
    lstm_status status;
    if ((status = check_kept_finite(rows, rows->input, logits)) != LSTM_OK ||
        (status = check_kept_finite(rows, rows->targets, targets)) != LSTM_OK)
        return status;
    const size_t width = rows->width;
    for (size_t r = 0; r < rows->rows; r++) {
        if (!loss_row_kept(rows, r))
            continue;
        for (size_t k = r * width; k < (r + 1) * width; k++)
            if (!(targets[k] >= 0.0f && targets[k] <= 1.0f))
                return lstm__fail(LSTM_E_ARG, "%s[%zu] is %g; it must be in [0, 1]", rows->targets,
                                  k, (double)targets[k]);
    }

    const double scale = 1.0 / (double)kept_values(rows);
    double total = 0.0;
    for (size_t r = 0; r < rows->rows; r++) {
        if (!loss_row_kept(rows, r)) {
            zero_row(dlogits, r, width);
            continue;
        }
        for (size_t k = r * width; k < (r + 1) * width; k++) {
            const double z = logits[k], t = targets[k];
            /* max(z, 0) - z t + log(1 + exp(-|z|)): exp never overflows. */
            total += (z > 0.0 ? z : 0.0) - z * t + log1p(exp(-fabs(z)));
            if (dlogits == NULL)
                continue;
            /* sigmoid(z), from exp(-|z|) <= 1 on both sides. */
            const double e = exp(-fabs(z));
            const double sigmoid = z >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
            dlogits[k] = (float)((sigmoid - t) * scale);
        }
    }
    *loss = total * scale;
    return LSTM_OK;
}

lstm_status lstm__loss_mse(const loss_rows *rows, const float *predictions, const float *targets,
                           double *loss, float *dpredictions)
{
    lstm_status status;
    if ((status = check_kept_finite(rows, rows->input, predictions)) != LSTM_OK ||
        (status = check_kept_finite(rows, rows->targets, targets)) != LSTM_OK)
        return status;

    const size_t width = rows->width;
    const double scale = 1.0 / (double)kept_values(rows);
    double total = 0.0;
    for (size_t r = 0; r < rows->rows; r++) {
        if (!loss_row_kept(rows, r)) {
            zero_row(dpredictions, r, width);
            continue;
        }
        for (size_t k = r * width; k < (r + 1) * width; k++) {
            /* (p - t)^2 in double: a float difference can overflow when squared. */
            const double diff = (double)predictions[k] - (double)targets[k];
            total += diff * diff;
            if (dpredictions != NULL)
                dpredictions[k] = (float)(2.0 * diff * scale);
        }
    }
    *loss = total * scale;
    return LSTM_OK;
}

lstm_status lstm__loss_given(const loss_rows *rows, const float *grad, float *dinput)
{
    lstm_status status = check_kept_finite(rows, rows->targets, grad);
    if (status != LSTM_OK)
        return status;
    const size_t width = rows->width;
    for (size_t r = 0; r < rows->rows; r++) {
        if (loss_row_kept(rows, r))
            memcpy(dinput + r * width, grad + r * width, width * sizeof(float));
        else
            zero_row(dinput, r, width);
    }
    return LSTM_OK;
}

/* ---- the public calls: every row counts ---- */

static lstm_status check_pointers(const float *input, const void *targets, const double *loss,
                                  const char *input_name)
{
    if (input == NULL || targets == NULL || loss == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL",
                          input == NULL     ? input_name
                          : targets == NULL ? "targets"
                                            : "loss");
    return LSTM_OK;
}

LSTM_API lstm_status lstm_loss_cross_entropy(size_t rows, size_t classes, const float *logits,
                                             const int32_t *targets, int32_t ignore_index,
                                             double *loss, float *dlogits)
{
    lstm_status status = check_pointers(logits, targets, loss, "logits");
    if (status != LSTM_OK)
        return status;
    if (rows == 0 || classes == 0)
        return lstm__fail(LSTM_E_SIZE, "%s is 0; it must be at least 1",
                          rows == 0 ? "rows" : "classes");
    if (classes > LSTM_MAX_SIZE)
        return lstm__fail(LSTM_E_SIZE, "classes is %zu; the limit is %zu", classes, LSTM_MAX_SIZE);
    size_t elements, bytes;
    if (!size_mul(rows, classes, &elements) || !size_mul(elements, sizeof(float), &bytes))
        return lstm__fail(LSTM_E_OVERFLOW, "rows %zu x classes %zu overflows size_t", rows,
                          classes);
    const loss_rows all = {.rows = rows, .width = classes, .input = "logits", .targets = "targets"};
    return lstm__loss_cross_entropy(&all, logits, targets, ignore_index, false, loss, dlogits);
}

LSTM_API lstm_status lstm_loss_bce_with_logits(size_t count, const float *logits,
                                               const float *targets, double *loss, float *dlogits)
{
    lstm_status status = check_pointers(logits, targets, loss, "logits");
    if (status != LSTM_OK || (status = check_count("count", count)) != LSTM_OK)
        return status;
    const loss_rows all = {.rows = count, .width = 1, .input = "logits", .targets = "targets"};
    return lstm__loss_bce_with_logits(&all, logits, targets, loss, dlogits);
}

LSTM_API lstm_status lstm_loss_mse(size_t count, const float *predictions, const float *targets,
                                   double *loss, float *dpredictions)
{
    lstm_status status = check_pointers(predictions, targets, loss, "predictions");
    if (status != LSTM_OK || (status = check_count("count", count)) != LSTM_OK)
        return status;
    const loss_rows all = {.rows = count, .width = 1, .input = "predictions", .targets = "targets"};
    return lstm__loss_mse(&all, predictions, targets, loss, dpredictions);
}
