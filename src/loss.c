/*
 * Losses with PyTorch's definitions and reduction "mean": the value in
 * double, the gradient that starts backpropagation in float.
 */
#include <math.h>
#include <string.h>

#include "check.h"
#include "error.h"
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

LSTM_API lstm_status lstm_loss_cross_entropy(size_t rows, size_t classes, const float *logits,
                                             const int32_t *targets, int32_t ignore_index,
                                             double *loss, float *dlogits)
{
    if (logits == NULL || targets == NULL || loss == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL",
                          logits == NULL    ? "logits"
                          : targets == NULL ? "targets"
                                            : "loss");
    if (rows == 0 || classes == 0)
        return lstm__fail(LSTM_E_SIZE, "%s is 0; it must be at least 1",
                          rows == 0 ? "rows" : "classes");
    if (classes > LSTM_MAX_SIZE)
        return lstm__fail(LSTM_E_SIZE, "classes is %zu; the limit is %zu", classes, LSTM_MAX_SIZE);
    size_t elements, bytes;
    if (!size_mul(rows, classes, &elements) || !size_mul(elements, sizeof(float), &bytes))
        return lstm__fail(LSTM_E_OVERFLOW, "rows %zu x classes %zu overflows size_t", rows,
                          classes);
    size_t valid = 0;
    for (size_t r = 0; r < rows; r++) {
        if (targets[r] == ignore_index)
            continue;
        if (targets[r] < 0 || (size_t)targets[r] >= classes)
            return lstm__fail(LSTM_E_ARG,
                              "targets[%zu] is %ld; it must be in 0 .. %zu or "
                              "ignore_index %ld",
                              r, (long)targets[r], classes - 1, (long)ignore_index);
        valid++;
    }
    lstm_status status = lstm__check_finite("logits", logits, elements);
    if (status != LSTM_OK)
        return status;

    /* Every row ignored: PyTorch divides 0 by 0; the loss is 0 here. */
    const double scale = valid == 0 ? 0.0 : 1.0 / (double)valid;
    double total = 0.0;
    for (size_t r = 0; r < rows; r++) {
        const float *z = logits + r * classes;
        float *dz = dlogits == NULL ? NULL : dlogits + r * classes;
        if (targets[r] == ignore_index) {
            if (dz != NULL)
                memset(dz, 0, classes * sizeof(float));
            continue;
        }
        const size_t target = (size_t)targets[r];
        /* lse = m + log sum_c exp(z_c - m), m = max_c z_c: no exp overflows. */
        double m = z[0];
        for (size_t c = 1; c < classes; c++)
            m = z[c] > m ? z[c] : m;
        double sum = 0.0;
        for (size_t c = 0; c < classes; c++)
            sum += exp((double)z[c] - m);
        const double lse = m + log(sum);
        /* loss_r = lse - z_target */
        total += lse - (double)z[target];
        if (dz == NULL)
            continue;
        /* dz_c = (softmax_c - [c == target]) / valid */
        for (size_t c = 0; c < classes; c++) {
            double softmax = exp((double)z[c] - lse);
            dz[c] = (float)((softmax - (c == target ? 1.0 : 0.0)) * scale);
        }
    }
    *loss = total * scale;
    return LSTM_OK;
}

LSTM_API lstm_status lstm_loss_bce_with_logits(size_t count, const float *logits,
                                               const float *targets, double *loss, float *dlogits)
{
    if (logits == NULL || targets == NULL || loss == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL",
                          logits == NULL    ? "logits"
                          : targets == NULL ? "targets"
                                            : "loss");
    lstm_status status;
    if ((status = check_count("count", count)) != LSTM_OK ||
        (status = lstm__check_finite("logits", logits, count)) != LSTM_OK ||
        (status = lstm__check_finite("targets", targets, count)) != LSTM_OK)
        return status;
    for (size_t k = 0; k < count; k++)
        if (!(targets[k] >= 0.0f && targets[k] <= 1.0f))
            return lstm__fail(LSTM_E_ARG, "targets[%zu] is %g; it must be in [0, 1]", k,
                              (double)targets[k]);

    const double scale = 1.0 / (double)count;
    double total = 0.0;
    for (size_t k = 0; k < count; k++) {
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
    *loss = total * scale;
    return LSTM_OK;
}

LSTM_API lstm_status lstm_loss_mse(size_t count, const float *predictions, const float *targets,
                                   double *loss, float *dpredictions)
{
    if (predictions == NULL || targets == NULL || loss == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL",
                          predictions == NULL ? "predictions"
                          : targets == NULL   ? "targets"
                                              : "loss");
    lstm_status status;
    if ((status = check_count("count", count)) != LSTM_OK ||
        (status = lstm__check_finite("predictions", predictions, count)) != LSTM_OK ||
        (status = lstm__check_finite("targets", targets, count)) != LSTM_OK)
        return status;

    const double scale = 1.0 / (double)count;
    double total = 0.0;
    for (size_t k = 0; k < count; k++) {
        /* (p - t)^2 in double: a float difference can overflow when squared. */
        const double diff = (double)predictions[k] - (double)targets[k];
        total += diff * diff;
        if (dpredictions != NULL)
            dpredictions[k] = (float)(2.0 * diff * scale);
    }
    *loss = total * scale;
    return LSTM_OK;
}
