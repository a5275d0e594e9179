/* A network's embedding and head in a reduced precision (network_lowp.h). */
#include <string.h>

#include "check.h"
#include "head_internal.h"
#include "lowp.h"
#include "network_lowp.h"

/* Whether row `row` is stored, and its float32 values are still q s: the
 * loader's dequantization, the same product in float32. */
static bool stored_current(const stored_rows *stored, size_t row, const float *values, size_t cols)
{
    if (stored->q == NULL)
        return false;
    const int8_t *q = stored->q + row * cols;
    const float s = stored->scales[row];
    for (size_t k = 0; k < cols; k++)
        if (values[k] != (float)q[k] * s)
            return false;
    return true;
}

float lstm__network_int8_row(const stored_rows *stored, size_t row, const float *values,
                             size_t cols, int8_t *q)
{
    if (stored_current(stored, row, values, cols)) {
        if (q != NULL)
            memcpy(q, stored->q + row * cols, cols);
        return stored->scales[row];
    }
    /* s = max |w| / 127, q = round(w / s) in [-127, 127]: lowp.h's weights */
    const float s = lstm__lowp_weight_scale(values, cols);
    for (size_t k = 0; q != NULL && k < cols; k++)
        q[k] = lstm__lowp_weight_q(values[k], s);
    return s;
}

/* The float32 value of v's bf16 rounding. */
static float bf16_value(float v)
{
    const uint32_t wide = (uint32_t)lstm__lowp_bf16(v) << 16;
    float out;
    memcpy(&out, &wide, sizeof out);
    return out;
}

void lstm__network_embedded_in(const lstm_network *network, lstm_precision precision, size_t count,
                               const int64_t *ids, float *x)
{
    const size_t E = network->model->input_size;
    if (precision == LSTM_PRECISION_BF16) {
        for (size_t k = 0; k < count * E; k++)
            x[k] = bf16_value(x[k]);
        return;
    }
    if (precision != LSTM_PRECISION_INT8)
        return;
    for (size_t n = 0; n < count; n++) {
        float *row = x + n * E;
        /* a stored row's values are q s already */
        if (stored_current(&network->stored_embedding, (size_t)ids[n], row, E))
            continue;
        /* x_k = q_k s, s = max |x| / 127, q_k = round(x_k / s) */
        const float s = lstm__lowp_weight_scale(row, E);
        for (size_t k = 0; k < E; k++)
            row[k] = (float)lstm__lowp_weight_q(row[k], s) * s;
    }
}

void lstm__network_head_carve(carver *c, const lstm_network *network, lstm_precision precision,
                              size_t rows, head_scratch *scratch)
{
    const size_t O = network->output_size, K = network->lstm_output_size;
    void *packing = lstm__carve(c, 1, lstm__lowp_weights_bytes(precision, O, K), 1);
    /* an int8 file's rows: packed from their q and s, stored or quantized */
    const bool stored = precision == LSTM_PRECISION_INT8 && network->stored_head.q != NULL;
    int8_t *q = stored ? lstm__carve(c, O, K, sizeof(int8_t)) : NULL;
    float *scales = stored ? lstm__carve(c, O, 1, sizeof(float)) : NULL;
    size_t row_bytes;
    if (!size_mul(rows, lstm__lowp_row_bytes(precision, K), &row_bytes))
        c->overflow = true;
    /* n rows never need more than n times one row's bytes (lowp.h) */
    void *quantized = lstm__carve(c, 1, row_bytes, 1);
    *scratch = (head_scratch){packing, q, scales, quantized};
}

lstm_status lstm__network_head_forward(const lstm_network *network, lstm_precision precision,
                                       struct pool *workers, const head_scratch *scratch,
                                       bool packed, size_t rows, const float *x, float *z)
{
    const size_t O = network->output_size, K = network->lstm_output_size;
    lstm_status status = lstm__check_finite("x", x, rows * K);
    if (status != LSTM_OK)
        return status;
    const float *W = lstm__dense_values(network->head), *bias = W + O * K;
    const lowp_weights weights = lstm__lowp_weights_at(precision, O, K, scratch->packing);
    if (!packed) {
        /* W rounded or quantized as the packing does (lowp.h): bf16 gives
         * a bf16 file's values back; an int8 file's rows from their q and
         * s, stored or quantized */
        lowp_source source = {.values = W, .ld = K};
        if (scratch->q != NULL) {
            for (size_t j = 0; j < O; j++)
                scratch->scales[j] = lstm__network_int8_row(&network->stored_head, j, W + j * K, K,
                                                            scratch->q + j * K);
            source.int8 = scratch->q;
            source.scales = scratch->scales;
        }
        lstm__lowp_pack(workers, &source, &weights);
    }
    /* z = x W^T, each row of x rounded or quantized alone */
    lowp_rows quantized;
    lstm__lowp_quantize(precision, rows, K, x, K, scratch->rows, &quantized);
    lstm__lowp_product(workers, false, &quantized, &weights, z, O);
    /* z += b, row by row, in float32 */
    for (size_t r = 0; r < rows; r++) {
        float *z_row = z + r * O;
        for (size_t j = 0; j < O; j++)
            z_row[j] += bias[j];
    }
    return LSTM_OK;
}
