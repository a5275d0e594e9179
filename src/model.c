/* The model handle: configuration, parameters, gradients, initialisation. */
#include <math.h>
#include <string.h>

#include "abi.h"
#include "alloc.h"
#include "blas.h"
#include "check.h"
#include "error.h"
#include "model_internal.h"

/* The first published lstm_config ends after hidden_size; no caller's struct
 * is ever smaller than that. */
#define CONFIG_V1_SIZE (offsetof(lstm_config, hidden_size) + sizeof(size_t))

LSTM_API lstm_status lstm_config_init(lstm_config *config, size_t struct_size)
{
    if (config == NULL)
        return fail(LSTM_E_NULL, "config is NULL");
    lstm_config defaults = {sizeof defaults, 0, 0};
    return abi_struct_write(config, struct_size, &defaults, sizeof defaults, CONFIG_V1_SIZE,
                            "config");
}

static lstm_status check_dimension(const char *name, size_t value)
{
    if (value == 0)
        return fail(LSTM_E_SIZE, "%s is 0; it must be at least 1", name);
    if (value > LSTM_MAX_SIZE)
        return fail(LSTM_E_SIZE, "%s is %zu; the limit is %zu", name, value, LSTM_MAX_SIZE);
    return LSTM_OK;
}

LSTM_API lstm_status lstm_model_create(const lstm_config *config, lstm_model **out)
{
    lstm_config known;
    lstm_status status;
    if (config == NULL || out == NULL)
        return fail(LSTM_E_NULL, "%s is NULL", config == NULL ? "config" : "out");
    if ((status = abi_struct_read(config, &known, sizeof known, CONFIG_V1_SIZE, "config")) !=
            LSTM_OK ||
        (status = check_dimension("input_size", known.input_size)) != LSTM_OK ||
        (status = check_dimension("hidden_size", known.hidden_size)) != LSTM_OK)
        return status;

    /* With both sizes at most 2^24, 4H and H + I fit the BLAS index type and
     * 4H (H + I) fits size_t; checked anyway, the limit may move. */
    size_t H = known.hidden_size, I = known.input_size;
    size_t gates = 4 * H, stacked = H + I, weight_count, param_count, bytes;
    if (gates > BLAS_MAX_DIM || stacked > BLAS_MAX_DIM || !size_mul(gates, stacked, &weight_count) ||
        !size_add(weight_count, gates, &param_count) ||
        !size_mul(param_count, sizeof(float), &bytes) || align_up(bytes) == 0)
        return fail(LSTM_E_OVERFLOW, "input_size %zu and hidden_size %zu give too many parameters",
                    I, H);

    lstm_model *model = mem_alloc(sizeof *model);
    float *params = mem_alloc(bytes);
    float *grads = mem_alloc(bytes);
    if (model == NULL || params == NULL || grads == NULL) {
        mem_free(model);
        mem_free(params);
        mem_free(grads);
        return fail(LSTM_E_NOMEM, "allocating a model of %zu parameters (2 x %zu bytes)",
                    param_count, bytes);
    }
    memset(params, 0, bytes);
    memset(grads, 0, bytes);
    model->input_size = I;
    model->hidden_size = H;
    model->weight_count = weight_count;
    model->param_count = param_count;
    model->params = params;
    model->grads = grads;
    *out = model;
    return LSTM_OK;
}

LSTM_API void lstm_model_destroy(lstm_model *model)
{
    if (model == NULL)
        return;
    mem_free(model->params);
    mem_free(model->grads);
    mem_free(model);
}

LSTM_API lstm_status lstm_model_get_config(const lstm_model *model, lstm_config *config)
{
    if (model == NULL || config == NULL)
        return fail(LSTM_E_NULL, "%s is NULL", model == NULL ? "model" : "config");
    lstm_config known = {sizeof known, model->input_size, model->hidden_size};
    return abi_struct_write(config, config->struct_size, &known, sizeof known, CONFIG_V1_SIZE,
                            "config");
}

LSTM_API size_t lstm_model_param_count(const lstm_model *model)
{
    return model == NULL ? 0 : model->param_count;
}

static lstm_status buffer_view(lstm_model *model, float *buffer, float **data, size_t *count)
{
    if (data == NULL)
        return fail(LSTM_E_NULL, "data is NULL");
    *data = buffer;
    if (count != NULL)
        *count = model->param_count;
    return LSTM_OK;
}

LSTM_API lstm_status lstm_model_params(lstm_model *model, float **data, size_t *count)
{
    if (model == NULL)
        return fail(LSTM_E_NULL, "model is NULL");
    return buffer_view(model, model->params, data, count);
}

LSTM_API lstm_status lstm_model_grads(lstm_model *model, float **data, size_t *count)
{
    if (model == NULL)
        return fail(LSTM_E_NULL, "model is NULL");
    return buffer_view(model, model->grads, data, count);
}

/* Shared checks of the copy-in/copy-out calls. */
static lstm_status check_copy(const lstm_model *model, const void *buffer, const char *name,
                              size_t count)
{
    if (model == NULL)
        return fail(LSTM_E_NULL, "model is NULL");
    if (buffer == NULL)
        return fail(LSTM_E_NULL, "%s is NULL", name);
    if (count != model->param_count)
        return fail(LSTM_E_SHAPE, "count is %zu; the model has %zu parameters", count,
                    model->param_count);
    return LSTM_OK;
}

LSTM_API lstm_status lstm_model_get_params(const lstm_model *model, float *dst, size_t count)
{
    lstm_status status = check_copy(model, dst, "dst", count);
    if (status == LSTM_OK)
        memcpy(dst, model->params, count * sizeof(float));
    return status;
}

LSTM_API lstm_status lstm_model_get_grads(const lstm_model *model, float *dst, size_t count)
{
    lstm_status status = check_copy(model, dst, "dst", count);
    if (status == LSTM_OK)
        memcpy(dst, model->grads, count * sizeof(float));
    return status;
}

LSTM_API lstm_status lstm_model_set_params(lstm_model *model, const float *src, size_t count)
{
    lstm_status status = check_copy(model, src, "src", count);
    if (status != LSTM_OK)
        return status;
    if ((status = check_finite("src", src, count)) != LSTM_OK)
        return status;
    memcpy(model->params, src, count * sizeof(float));
    return LSTM_OK;
}

LSTM_API lstm_status lstm_model_zero_grads(lstm_model *model)
{
    if (model == NULL)
        return fail(LSTM_E_NULL, "model is NULL");
    memset(model->grads, 0, model->param_count * sizeof(float));
    return LSTM_OK;
}

/* SplitMix64 (Steele, Lea and Flood 2014): one state word, full period. */
static uint64_t splitmix64_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

LSTM_API lstm_status lstm_model_init(lstm_model *model, uint64_t seed, uint32_t flags)
{
    if (model == NULL)
        return fail(LSTM_E_NULL, "model is NULL");
    if ((flags & ~LSTM_INIT_FORGET_BIAS_ONE) != 0)
        return fail(LSTM_E_ARG, "flags 0x%x holds unknown bits", (unsigned)flags);

    /* PyTorch's default: every parameter ~ U(-k, k), k = 1 / sqrt(H). */
    const float bound = (float)(1.0 / sqrt((double)model->hidden_size));
    uint64_t state = seed;
    for (size_t k = 0; k < model->param_count; k++) {
        /* Top 24 bits: a uniform in [0, 1) that float holds exactly. */
        float unit = (float)(splitmix64_next(&state) >> 40) * 0x1p-24f;
        model->params[k] = (2.0f * unit - 1.0f) * bound;
    }
    if (flags & LSTM_INIT_FORGET_BIAS_ONE) {
        /* b_f is the second gate block of b. */
        float *forget_bias = model->params + model->weight_count + model->hidden_size;
        for (size_t j = 0; j < model->hidden_size; j++)
            forget_bias[j] = 1.0f;
    }
    return LSTM_OK;
}
