/* The model handle: configuration, parameters, gradients, initialisation. */
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "abi.h"
#include "alloc.h"
#include "blas.h"
#include "check.h"
#include "error.h"
#include "model_internal.h"
#include "random.h"

/* The first published lstm_config ended after hidden_size; no caller's
 * struct is ever smaller than that. Fields after it default to zero. */
#define CONFIG_V1_SIZE (offsetof(lstm_config, hidden_size) + sizeof(size_t))

LSTM_API lstm_status lstm_config_init(lstm_config *config, size_t struct_size)
{
    if (config == NULL)
        return lstm__fail(LSTM_E_NULL, "config is NULL");
    lstm_config defaults;
    memset(&defaults, 0, sizeof defaults);
    defaults.struct_size = sizeof defaults;
    return lstm__abi_struct_write(config, struct_size, &defaults, sizeof defaults, CONFIG_V1_SIZE,
                                  "config");
}

static lstm_status check_dimension(const char *name, size_t value)
{
    if (value == 0)
        return lstm__fail(LSTM_E_SIZE, "%s is 0; it must be at least 1", name);
    if (value > LSTM_MAX_SIZE)
        return lstm__fail(LSTM_E_SIZE, "%s is %zu; the limit is %zu", name, value, LSTM_MAX_SIZE);
    return LSTM_OK;
}

/* Checks the configuration's values, LSTM_OK when a model can be built. */
static lstm_status check_config(const lstm_config *c)
{
    lstm_status status;
    if ((status = check_dimension("input_size", c->input_size)) != LSTM_OK ||
        (status = check_dimension("hidden_size", c->hidden_size)) != LSTM_OK)
        return status;
    if (c->num_layers > LSTM_MAX_LAYERS)
        return lstm__fail(LSTM_E_SIZE, "num_layers is %zu; the limit is %zu", c->num_layers,
                          LSTM_MAX_LAYERS);
    if ((c->flags & ~(LSTM_BIDIRECTIONAL | LSTM_BATCH_FIRST | LSTM_PEEPHOLE)) != 0)
        return lstm__fail(LSTM_E_ARG, "flags 0x%x holds unknown bits", (unsigned)c->flags);
    if (!(c->dropout >= 0.0 && c->dropout < 1.0)) /* NaN fails too */
        return lstm__fail(LSTM_E_ARG, "dropout is %g; it must be in [0, 1)", c->dropout);
    if (c->proj_size >= c->hidden_size)
        return lstm__fail(LSTM_E_SIZE,
                          "proj_size is %zu; it must be 0 or less than hidden_size %zu",
                          c->proj_size, c->hidden_size);
    return LSTM_OK;
}

/*
 * Lays out every block's W, b and W_hr one after another and returns the
 * parameter count, or 0 when a size overflows or leaves the BLAS index range.
 */
static size_t layout_blocks(const lstm_model *m, layer_block *blocks)
{
    const size_t H = m->hidden_size, R = m->state_size, P = m->proj_size, G = 4 * H;
    size_t total = 0;
    for (size_t layer = 0; layer < m->num_layers; layer++) {
        for (size_t d = 0; d < m->directions; d++) {
            layer_block *block = &blocks[layer * m->directions + d];
            block->input_size = layer == 0 ? m->input_size : m->directions * R;
            size_t weights, next;
            if (!size_add(R, block->input_size, &block->stacked_size) ||
                block->stacked_size > BLAS_MAX_DIM || G > BLAS_MAX_DIM ||
                !size_mul(G, block->stacked_size, &weights))
                return 0;
            block->weight_offset = total;
            if (!size_add(total, weights, &next))
                return 0;
            block->bias_offset = next;
            if (!size_add(next, G, &next))
                return 0;
            block->projection_offset = next;
            if (!size_add(next, P * H, &next)) /* P, H < 2^24: P H cannot overflow */
                return 0;
            block->peephole_offset = next;
            if (!size_add(next, m->peephole ? 3 * H : 0, &total))
                return 0;
        }
    }
    return total;
}

lstm_status lstm__model_plan(const lstm_config *config, lstm_model *shape)
{
    lstm_config known;
    lstm_status status;
    if ((status = lstm__abi_struct_read(config, &known, sizeof known, CONFIG_V1_SIZE, "config")) !=
            LSTM_OK ||
        (status = check_config(&known)) != LSTM_OK)
        return status;
    if (known.num_layers == 0)
        known.num_layers = 1;

    memset(shape, 0, sizeof *shape);
    shape->config = known;
    shape->config.struct_size = sizeof known;
    shape->input_size = known.input_size;
    shape->hidden_size = known.hidden_size;
    shape->num_layers = known.num_layers;
    shape->directions = (known.flags & LSTM_BIDIRECTIONAL) ? 2 : 1;
    shape->proj_size = known.proj_size;
    shape->state_size = known.proj_size != 0 ? known.proj_size : known.hidden_size;
    shape->peephole = (known.flags & LSTM_PEEPHOLE) != 0;

    const size_t block_count = shape->num_layers * shape->directions;
    shape->blocks = lstm__mem_alloc(block_count * sizeof *shape->blocks);
    if (shape->blocks == NULL)
        return lstm__fail(LSTM_E_NOMEM, "allocating the layout of %zu layers", shape->num_layers);
    size_t bytes;
    shape->param_count = layout_blocks(shape, shape->blocks);
    if (shape->param_count == 0 || !size_mul(shape->param_count, sizeof(float), &bytes) ||
        lstm__align_up(bytes) == 0) {
        lstm__mem_free(shape->blocks);
        shape->blocks = NULL;
        return lstm__fail(LSTM_E_OVERFLOW,
                          "input_size %zu, hidden_size %zu and %zu layers give too "
                          "many parameters",
                          shape->input_size, shape->hidden_size, shape->num_layers);
    }
    return LSTM_OK;
}

/* A number no call has had before, from 1 on: models' identities and
 * generations come from this one counter. */
static uint64_t next_unique(void)
{
    static atomic_uint_least64_t counter;
    return atomic_fetch_add(&counter, 1) + 1;
}

void lstm__model_touch(lstm_model *model)
{
    model->generation = next_unique();
}

LSTM_API lstm_status lstm_model_create(const lstm_config *config, lstm_model **out)
{
    if (config == NULL || out == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", config == NULL ? "config" : "out");
    lstm_model shape;
    lstm_status status = lstm__model_plan(config, &shape);
    if (status != LSTM_OK)
        return status;
    layer_block *blocks = shape.blocks;
    const size_t param_count = shape.param_count, bytes = param_count * sizeof(float);
    lstm_model *model = lstm__mem_alloc(sizeof *model);
    float *params = lstm__mem_alloc(bytes);
    float *grads = lstm__mem_alloc(bytes);
    if (model == NULL || params == NULL || grads == NULL) {
        lstm__mem_free(blocks);
        lstm__mem_free(model);
        lstm__mem_free(params);
        lstm__mem_free(grads);
        return lstm__fail(LSTM_E_NOMEM, "allocating a model of %zu parameters (2 x %zu bytes)",
                          param_count, bytes);
    }
    memset(params, 0, bytes);
    memset(grads, 0, bytes);
    *model = shape;
    model->stored = (stored_weights){0};
    model->params = params;
    model->grads = grads;
    model->identity = next_unique();
    lstm__model_touch(model);
    *out = model;
    return LSTM_OK;
}

LSTM_API void lstm_model_destroy(lstm_model *model)
{
    if (model == NULL)
        return;
    lstm__mem_free(model->blocks);
    lstm__mem_free(model->params);
    lstm__mem_free(model->grads);
    lstm__mem_free(model->stored.blocks);
    lstm__mem_free(model->stored.memory);
    lstm__mem_free(model);
}

LSTM_API lstm_status lstm_model_get_config(const lstm_model *model, lstm_config *config)
{
    if (model == NULL || config == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", model == NULL ? "model" : "config");
    return lstm__abi_struct_write(config, config->struct_size, &model->config, sizeof model->config,
                                  CONFIG_V1_SIZE, "config");
}

LSTM_API lstm_status lstm_model_tensor(const lstm_model *model, size_t layer, size_t direction,
                                       lstm_tensor tensor, size_t *offset, size_t *rows,
                                       size_t *cols)
{
    if (model == NULL || offset == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", model == NULL ? "model" : "offset");
    if (layer >= model->num_layers || direction >= model->directions)
        return lstm__fail(LSTM_E_ARG,
                          "the model has %zu layers of %zu directions; asked for layer "
                          "%zu, direction %zu",
                          model->num_layers, model->directions, layer, direction);
    const layer_block *block = model_block(model, layer, direction);
    const size_t G = 4 * model->hidden_size;
    size_t at, height, width;
    switch (tensor) {
    case LSTM_TENSOR_WEIGHT:
        at = block->weight_offset;
        height = G;
        width = block->stacked_size;
        break;
    case LSTM_TENSOR_BIAS:
        at = block->bias_offset;
        height = G;
        width = 1;
        break;
    case LSTM_TENSOR_PROJECTION:
        if (model->proj_size == 0)
            return lstm__fail(LSTM_E_ARG, "the model has no projection");
        at = block->projection_offset;
        height = model->proj_size;
        width = model->hidden_size;
        break;
    case LSTM_TENSOR_PEEPHOLE:
        if (!model->peephole)
            return lstm__fail(LSTM_E_ARG, "the model has no peephole connections");
        at = block->peephole_offset;
        height = 3;
        width = model->hidden_size;
        break;
    default: return lstm__fail(LSTM_E_ARG, "tensor %d is not an lstm_tensor", (int)tensor);
    }
    *offset = at;
    if (rows != NULL)
        *rows = height;
    if (cols != NULL)
        *cols = width;
    return LSTM_OK;
}

LSTM_API size_t lstm_model_param_count(const lstm_model *model)
{
    return model == NULL ? 0 : model->param_count;
}

static lstm_status buffer_view(lstm_model *model, float *buffer, float **data, size_t *count)
{
    if (data == NULL)
        return lstm__fail(LSTM_E_NULL, "data is NULL");
    *data = buffer;
    if (count != NULL)
        *count = model->param_count;
    return LSTM_OK;
}

LSTM_API lstm_status lstm_model_params(lstm_model *model, float **data, size_t *count)
{
    if (model == NULL)
        return lstm__fail(LSTM_E_NULL, "model is NULL");
    lstm__model_touch(model); /* the caller may write through the view */
    return buffer_view(model, model->params, data, count);
}

LSTM_API lstm_status lstm_model_grads(lstm_model *model, float **data, size_t *count)
{
    if (model == NULL)
        return lstm__fail(LSTM_E_NULL, "model is NULL");
    return buffer_view(model, model->grads, data, count);
}

/* Shared checks of the copy-in/copy-out calls. */
static lstm_status check_copy(const lstm_model *model, const void *buffer, const char *name,
                              size_t count)
{
    if (model == NULL)
        return lstm__fail(LSTM_E_NULL, "model is NULL");
    if (buffer == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", name);
    if (count != model->param_count)
        return lstm__fail(LSTM_E_SHAPE, "count is %zu; the model has %zu parameters", count,
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
    if ((status = lstm__check_finite("src", src, count)) != LSTM_OK)
        return status;
    memcpy(model->params, src, count * sizeof(float));
    lstm__model_touch(model);
    return LSTM_OK;
}

LSTM_API lstm_status lstm_model_zero_grads(lstm_model *model)
{
    if (model == NULL)
        return lstm__fail(LSTM_E_NULL, "model is NULL");
    memset(model->grads, 0, model->param_count * sizeof(float));
    return LSTM_OK;
}

LSTM_API lstm_status lstm_model_init(lstm_model *model, uint64_t seed, uint32_t flags)
{
    if (model == NULL)
        return lstm__fail(LSTM_E_NULL, "model is NULL");
    if ((flags & ~LSTM_INIT_FORGET_BIAS_ONE) != 0)
        return lstm__fail(LSTM_E_ARG, "flags 0x%x holds unknown bits", (unsigned)flags);

    /* PyTorch's default: every parameter ~ U(-k, k), k = 1 / sqrt(H). */
    const float bound = (float)(1.0 / sqrt((double)model->hidden_size));
    random_fill_uniform(model->params, model->param_count, seed, bound);
    lstm__model_touch(model);
    if (flags & LSTM_INIT_FORGET_BIAS_ONE) {
        /* b_f is the second gate block of each b. */
        const size_t H = model->hidden_size;
        for (size_t n = 0; n < model->num_layers * model->directions; n++) {
            float *forget_bias = model->params + model->blocks[n].bias_offset + H;
            for (size_t j = 0; j < H; j++)
                forget_bias[j] = 1.0f;
        }
    }
    return LSTM_OK;
}
