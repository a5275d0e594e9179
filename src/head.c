/* The dense output layer and the gather of each sequence's last valid step. */
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "alloc.h"
#include "blas.h"
#include "check.h"
#include "error.h"
#include "head_internal.h"
#include "random.h"

struct lstm_dense {
    size_t in_features;  /* I */
    size_t out_features; /* O */
    size_t param_count;  /* O I + O */
    float *params;       /* [W (O x I) | b (O)] */
    float *grads;        /* same layout */
    uint64_t generation; /* new whenever a call may have changed params (head_internal.h) */
};

/* A number no call has had before, from 1 on. */
static uint64_t next_generation(void)
{
    static atomic_uint_least64_t counter;
    return atomic_fetch_add(&counter, 1) + 1;
}

static lstm_status check_dimension(const char *name, size_t value)
{
    if (value == 0)
        return lstm__fail(LSTM_E_SIZE, "%s is 0; it must be at least 1", name);
    if (value > LSTM_MAX_SIZE)
        return lstm__fail(LSTM_E_SIZE, "%s is %zu; the limit is %zu", name, value, LSTM_MAX_SIZE);
    return LSTM_OK;
}

LSTM_API lstm_status lstm_dense_create(size_t in_features, size_t out_features, lstm_dense **out)
{
    if (out == NULL)
        return lstm__fail(LSTM_E_NULL, "out is NULL");
    lstm_status status;
    if ((status = check_dimension("in_features", in_features)) != LSTM_OK ||
        (status = check_dimension("out_features", out_features)) != LSTM_OK)
        return status;
    size_t weights, count, bytes;
    if (!size_mul(out_features, in_features, &weights) ||
        !size_add(weights, out_features, &count) || !size_mul(count, sizeof(float), &bytes) ||
        lstm__align_up(bytes) == 0)
        return lstm__fail(LSTM_E_OVERFLOW,
                          "in_features %zu x out_features %zu give too many "
                          "parameters",
                          in_features, out_features);

    lstm_dense *dense = lstm__mem_alloc(sizeof *dense);
    float *params = lstm__mem_alloc(bytes);
    float *grads = lstm__mem_alloc(bytes);
    if (dense == NULL || params == NULL || grads == NULL) {
        lstm__mem_free(dense);
        lstm__mem_free(params);
        lstm__mem_free(grads);
        return lstm__fail(LSTM_E_NOMEM,
                          "allocating a dense layer of %zu parameters (2 x %zu bytes)", count,
                          bytes);
    }
    memset(params, 0, bytes);
    memset(grads, 0, bytes);
    dense->in_features = in_features;
    dense->out_features = out_features;
    dense->param_count = count;
    dense->params = params;
    dense->grads = grads;
    dense->generation = next_generation();
    *out = dense;
    return LSTM_OK;
}

LSTM_API void lstm_dense_destroy(lstm_dense *dense)
{
    if (dense == NULL)
        return;
    lstm__mem_free(dense->params);
    lstm__mem_free(dense->grads);
    lstm__mem_free(dense);
}

LSTM_API size_t lstm_dense_param_count(const lstm_dense *dense)
{
    return dense == NULL ? 0 : dense->param_count;
}

LSTM_API lstm_status lstm_dense_init(lstm_dense *dense, uint64_t seed)
{
    if (dense == NULL)
        return lstm__fail(LSTM_E_NULL, "dense is NULL");
    /* nn.Linear: kaiming_uniform(a = sqrt(5)) on W is U(-k, k), k = 1 / sqrt(in),
     * and b ~ U(-k, k) with the same k (fan_in = in). */
    const float bound = (float)(1.0 / sqrt((double)dense->in_features));
    /* the stream of lstm_model_init() (random.h) */
    random_fill_uniform(dense->params, dense->param_count, seed, bound);
    dense->generation = next_generation();
    return LSTM_OK;
}

static lstm_status buffer_view(const lstm_dense *dense, float *buffer, float **data, size_t *count)
{
    if (data == NULL)
        return lstm__fail(LSTM_E_NULL, "data is NULL");
    *data = buffer;
    if (count != NULL)
        *count = dense->param_count;
    return LSTM_OK;
}

LSTM_API lstm_status lstm_dense_params(lstm_dense *dense, float **data, size_t *count)
{
    if (dense == NULL)
        return lstm__fail(LSTM_E_NULL, "dense is NULL");
    lstm_status status = buffer_view(dense, dense->params, data, count);
    if (status == LSTM_OK)
        dense->generation = next_generation(); /* the caller may write through the view */
    return status;
}

const float *lstm__dense_values(const lstm_dense *dense)
{
    return dense->params;
}

uint64_t lstm__dense_generation(const lstm_dense *dense)
{
    return dense->generation;
}

LSTM_API lstm_status lstm_dense_grads(lstm_dense *dense, float **data, size_t *count)
{
    if (dense == NULL)
        return lstm__fail(LSTM_E_NULL, "dense is NULL");
    return buffer_view(dense, dense->grads, data, count);
}

LSTM_API lstm_status lstm_dense_zero_grads(lstm_dense *dense)
{
    if (dense == NULL)
        return lstm__fail(LSTM_E_NULL, "dense is NULL");
    memset(dense->grads, 0, dense->param_count * sizeof(float));
    return LSTM_OK;
}

/* Shared checks of forward and backward: rows and the BLAS index range. */
static lstm_status check_rows(const lstm_dense *dense, size_t rows)
{
    if (rows == 0)
        return lstm__fail(LSTM_E_SIZE, "rows is 0; it must be at least 1");
    size_t in_elements, out_elements;
    if (rows > BLAS_MAX_DIM || !size_mul(rows, dense->in_features, &in_elements) ||
        !size_mul(rows, dense->out_features, &out_elements) ||
        !size_mul(in_elements, sizeof(float), &in_elements) ||
        !size_mul(out_elements, sizeof(float), &out_elements))
        return lstm__fail(LSTM_E_OVERFLOW,
                          "rows %zu exceeds the BLAS index range or overflows "
                          "size_t with %zu x %zu features",
                          rows, dense->in_features, dense->out_features);
    return LSTM_OK;
}

LSTM_API lstm_status lstm_dense_forward(const lstm_dense *dense, size_t rows, const float *x,
                                        float *z)
{
    if (dense == NULL || x == NULL || z == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL",
                          dense == NULL ? "dense"
                          : x == NULL   ? "x"
                                        : "z");
    lstm_status status;
    if ((status = check_rows(dense, rows)) != LSTM_OK ||
        (status = lstm__check_finite("x", x, rows * dense->in_features)) != LSTM_OK)
        return status;

    const size_t I = dense->in_features, O = dense->out_features;
    const float *W = dense->params, *bias = dense->params + O * I;
    /* z = x W^T */
    lstm__blas_sgemm(false, true, rows, O, I, 1.0f, x, I, W, I, 0.0f, z, O);
    /* z += b, row by row */
    for (size_t r = 0; r < rows; r++) {
        float *z_row = z + r * O;
        for (size_t j = 0; j < O; j++)
            z_row[j] += bias[j];
    }
    return LSTM_OK;
}

LSTM_API lstm_status lstm_dense_backward(lstm_dense *dense, size_t rows, const float *x,
                                         const float *dz, float *dx)
{
    if (dense == NULL || x == NULL || dz == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL",
                          dense == NULL ? "dense"
                          : x == NULL   ? "x"
                                        : "dz");
    lstm_status status;
    if ((status = check_rows(dense, rows)) != LSTM_OK ||
        (status = lstm__check_finite("x", x, rows * dense->in_features)) != LSTM_OK ||
        (status = lstm__check_finite("dz", dz, rows * dense->out_features)) != LSTM_OK)
        return status;

    const size_t I = dense->in_features, O = dense->out_features;
    const float *W = dense->params;
    float *dW = dense->grads, *db = dense->grads + O * I;
    /* dx = dz W */
    if (dx != NULL)
        lstm__blas_sgemm(false, false, rows, I, O, 1.0f, dz, O, W, I, 0.0f, dx, I);
    /* dW += dz^T x */
    lstm__blas_sgemm(true, false, O, I, rows, 1.0f, dz, O, x, I, 1.0f, dW, I);
    /* db += sum over rows of dz */
    for (size_t r = 0; r < rows; r++) {
        const float *dz_row = dz + r * O;
        for (size_t j = 0; j < O; j++)
            db[j] += dz_row[j];
    }
    return LSTM_OK;
}

/* Shared checks of the gather and its backward. */
static lstm_status check_sequences(size_t T, size_t B, size_t features, uint32_t flags,
                                   const size_t *lengths, const void *src, const char *src_name,
                                   const void *dst, const char *dst_name)
{
    if (src == NULL || dst == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", src == NULL ? src_name : dst_name);
    if (T == 0 || B == 0)
        return lstm__fail(LSTM_E_SIZE, "%s is 0; it must be at least 1",
                          T == 0 ? "seq_len" : "batch");
    lstm_status status = check_dimension("features", features);
    if (status != LSTM_OK)
        return status;
    size_t elements;
    if (!size_mul(T, B, &elements) || !size_mul(elements, features, &elements) ||
        !size_mul(elements, sizeof(float), &elements))
        return lstm__fail(LSTM_E_OVERFLOW,
                          "seq_len %zu x batch %zu x features %zu overflows size_t", T, B,
                          features);
    if ((flags & ~LSTM_BATCH_FIRST) != 0)
        return lstm__fail(LSTM_E_ARG, "flags 0x%x holds unknown bits", (unsigned)flags);
    if (lengths != NULL)
        for (size_t b = 0; b < B; b++)
            if (lengths[b] == 0 || lengths[b] > T)
                return lstm__fail(LSTM_E_ARG, "lengths[%zu] is %zu; it must be in 1 .. seq_len %zu",
                                  b, lengths[b], T);
    return LSTM_OK;
}

/* Index of the row (of features floats) holding sequence b's last valid step. */
static size_t last_row(size_t T, size_t B, uint32_t flags, const size_t *lengths, size_t b)
{
    const size_t t = (lengths != NULL ? lengths[b] : T) - 1;
    return (flags & LSTM_BATCH_FIRST) ? b * T + t : t * B + b;
}

LSTM_API lstm_status lstm_sequence_last(size_t seq_len, size_t batch, size_t features,
                                        uint32_t flags, const size_t *lengths, const float *y,
                                        float *last)
{
    lstm_status status =
        check_sequences(seq_len, batch, features, flags, lengths, y, "y", last, "last");
    if (status != LSTM_OK)
        return status;
    /* Only the rows gathered are read, and checked before any is written. */
    for (size_t b = 0; b < batch; b++) {
        const float *row = y + last_row(seq_len, batch, flags, lengths, b) * features;
        size_t bad = lstm__find_nonfinite(row, features);
        if (bad < features)
            return lstm__fail(LSTM_E_NONFINITE,
                              "y at the last step of sequence %zu, feature %zu, "
                              "is %g",
                              b, bad, (double)row[bad]);
    }
    for (size_t b = 0; b < batch; b++)
        memcpy(last + b * features, y + last_row(seq_len, batch, flags, lengths, b) * features,
               features * sizeof(float));
    return LSTM_OK;
}

LSTM_API lstm_status lstm_sequence_last_backward(size_t seq_len, size_t batch, size_t features,
                                                 uint32_t flags, const size_t *lengths,
                                                 const float *dlast, float *dy)
{
    lstm_status status =
        check_sequences(seq_len, batch, features, flags, lengths, dlast, "dlast", dy, "dy");
    if (status != LSTM_OK ||
        (status = lstm__check_finite("dlast", dlast, batch * features)) != LSTM_OK)
        return status;
    memset(dy, 0, seq_len * batch * features * sizeof(float));
    for (size_t b = 0; b < batch; b++)
        memcpy(dy + last_row(seq_len, batch, flags, lengths, b) * features, dlast + b * features,
               features * sizeof(float));
    return LSTM_OK;
}
