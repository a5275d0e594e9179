/*
 * Model files (docs/model-format.md): a header, then checksummed sections
 * CONF, a network's NETW and EMBD (EMBQ in a quantized file), one TENS per
 * tensor (QTNS for W and W_hr in a quantized file), a network's HEAD (HDQ )
 * and META, an optional OPTM, and END. Everything is little-endian. One
 * writer and one reader serve models and networks (the network's sections
 * in io_network.c): the writer builds the whole file in memory; the reader
 * checks the whole file before it creates anything.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "check.h"
#include "file.h"
#include "io_format.h"
#include "lowp.h"
#include "lstm/io.h"

enum {
    HEADER_SIZE = 16,
    CONF_SIZE = 48,
    TENS_FIXED = 32, /* layer, direction, kind, name length, rows, cols */
    QTNS_FIXED = 40, /* layer, direction, kind, precision, rows, cols, split */
    NAME_MAX_LENGTH = 64,
    TENSOR_KINDS = 4,
    FORMAT_MAJOR = 1,
    FORMAT_MINOR = 1,                  /* 1.1: the network's sections */
    FORMAT_MINOR_QUANTIZED = 2,        /* 1.2: QTNS, written only in quantized files */
    FORMAT_MINOR_QUANTIZED_NETWORK = 3 /* 1.3: EMBQ and HDQ , written only in quantized
                                          files of networks with an embedding or a head */
};

static const unsigned char MAGIC[8] = {'L', 'S', 'T', 'M', 'F', 'I', 'L', 'E'};

/* ---- the tensors of a configuration -------------------------------------- */

/* The canonical name of a tensor: PyTorch's, with _reverse for direction 1. */
static size_t tensor_name(char *name, lstm_tensor kind, size_t layer, size_t direction)
{
    static const char *const prefixes[TENSOR_KINDS] = {"weight", "bias", "projection", "peephole"};
    int length = snprintf(name, NAME_MAX_LENGTH + 1, "%s_l%zu%s", prefixes[kind], layer,
                          direction == 1 ? "_reverse" : "");
    return length > 0 ? (size_t)length : 0;
}

/* Whether the configuration has this kind of tensor. */
static bool has_tensor(const lstm_model *shape, lstm_tensor kind)
{
    return kind == LSTM_TENSOR_WEIGHT || kind == LSTM_TENSOR_BIAS ||
           (kind == LSTM_TENSOR_PROJECTION && shape->proj_size != 0) ||
           (kind == LSTM_TENSOR_PEEPHOLE && shape->peephole);
}

/* Offset and shape of a tensor the configuration has (has_tensor()). A
 * shape without parameters will do: only its layout is read. */
static void tensor_place(const lstm_model *shape, size_t layer, size_t direction, lstm_tensor kind,
                         size_t *offset, size_t *rows, size_t *cols)
{
    lstm_status status = lstm_model_tensor(shape, layer, direction, kind, offset, rows, cols);
    (void)status; /* LSTM_OK: every caller asks for a tensor that exists */
}

/* ---- writing -------------------------------------------------------------- */

static void write_config(writer *w, const lstm_model *model)
{
    const lstm_config *c = &model->config;
    unsigned char p[CONF_SIZE] = {0};
    put_u64(p, c->input_size);
    put_u64(p + 8, c->hidden_size);
    put_u64(p + 16, c->num_layers);
    put_u64(p + 24, c->proj_size);
    put_u32(p + 32, c->flags);
    put_f64(p + 40, c->dropout);
    size_t start = section_begin(w, "CONF", REQUIRED, CONF_SIZE);
    emit(w, p, sizeof p);
    section_end(w, start);
}

static void write_tensor(writer *w, const lstm_model *model, size_t layer, size_t direction,
                         lstm_tensor kind)
{
    size_t offset, rows, cols;
    tensor_place(model, layer, direction, kind, &offset, &rows, &cols);
    char name[NAME_MAX_LENGTH + 1];
    size_t name_length = tensor_name(name, kind, layer, direction);
    unsigned char p[TENS_FIXED];
    put_u32(p, (uint32_t)layer);
    put_u32(p + 4, (uint32_t)direction);
    put_u32(p + 8, (uint32_t)kind);
    put_u32(p + 12, (uint32_t)name_length);
    put_u64(p + 16, rows);
    put_u64(p + 24, cols);
    size_t start = section_begin(w, "TENS", REQUIRED, TENS_FIXED + name_length + 4 * rows * cols);
    emit(w, p, sizeof p);
    emit(w, name, name_length);
    emit_floats(w, model->params + offset, rows * cols);
    section_end(w, start);
}

/* The columns of W's first part (W_h: R) or of all of W_hr; a second part
 * (W_x) takes the rest. Each part has its own int8 scales. */
static size_t quantized_split(const lstm_model *model, lstm_tensor kind, size_t cols)
{
    return kind == LSTM_TENSOR_WEIGHT ? model->state_size : cols;
}

static size_t quantized_bytes(lstm_precision precision, size_t rows, size_t cols, size_t parts)
{
    return precision == LSTM_PRECISION_INT8 ? 4 * rows * parts + rows * cols : 2 * rows * cols;
}

/* Where a stored tensor's values and scales are (model_internal.h). */
static void stored_tensor(const stored_block *stored, lstm_tensor kind, const void **values,
                          const float **scales)
{
    *values = kind == LSTM_TENSOR_WEIGHT ? stored->weight : stored->projection;
    *scales = kind == LSTM_TENSOR_WEIGHT ? stored->weight_scales : stored->projection_scales;
}

/*
 * W or W_hr in bf16 or int8 (QTNS): as the model stores them when it was
 * loaded from a file of that precision and has not changed since, else
 * rounded or quantized from its float32 values exactly as inference in that
 * precision packs them (lowp.h), so that the file runs as the model did.
 */
static void write_quantized(writer *w, const lstm_model *model, size_t layer, size_t direction,
                            lstm_tensor kind, lstm_precision precision)
{
    size_t offset, rows, cols;
    tensor_place(model, layer, direction, kind, &offset, &rows, &cols);
    const size_t split = quantized_split(model, kind, cols), parts = split < cols ? 2 : 1;
    unsigned char p[QTNS_FIXED];
    put_u32(p, (uint32_t)layer);
    put_u32(p + 4, (uint32_t)direction);
    put_u32(p + 8, (uint32_t)kind);
    put_u32(p + 12, (uint32_t)precision);
    put_u64(p + 16, rows);
    put_u64(p + 24, cols);
    put_u64(p + 32, split);
    size_t start = section_begin(w, "QTNS", REQUIRED,
                                 QTNS_FIXED + quantized_bytes(precision, rows, cols, parts));
    emit(w, p, sizeof p);
    const float *values = model->params + offset;
    const stored_block *stored =
        model_stored(model, precision, layer * model->directions + direction);
    const void *stored_values = NULL;
    const float *stored_scales = NULL;
    if (stored != NULL)
        stored_tensor(stored, kind, &stored_values, &stored_scales);
    if (w->out == NULL) { /* only counting */
        w->size += quantized_bytes(precision, rows, cols, parts);
    } else if (precision == LSTM_PRECISION_BF16) {
        const uint16_t *bits = stored_values;
        for (size_t k = 0; k < rows * cols; k++) {
            const uint16_t v = bits != NULL ? bits[k] : lstm__lowp_bf16(values[k]);
            const unsigned char le[2] = {(unsigned char)(v & 0xff), (unsigned char)(v >> 8)};
            emit(w, le, 2);
        }
    } else {
        /* every part's row scales, then the rows of q */
        for (size_t part = 0; part < parts; part++)
            for (size_t j = 0; j < rows; j++) {
                const size_t first = part == 0 ? 0 : split,
                             count = part == 0 ? split : cols - split;
                const float scale = stored_scales != NULL
                                        ? stored_scales[part * rows + j]
                                        : lstm__lowp_weight_scale(values + j * cols + first, count);
                put_f32(w->out + w->size, scale);
                w->size += 4;
            }
        const int8_t *q = stored_values;
        for (size_t j = 0; j < rows; j++)
            for (size_t part = 0; part < parts; part++) {
                const size_t first = part == 0 ? 0 : split,
                             count = part == 0 ? split : cols - split;
                const float *row = values + j * cols + first;
                const float scale = q != NULL ? 0.0f : lstm__lowp_weight_scale(row, count);
                for (size_t k = 0; k < count; k++)
                    w->out[w->size++] =
                        (unsigned char)(q != NULL ? q[j * cols + first + k]
                                                  : lstm__lowp_weight_q(row[k], scale));
            }
    }
    section_end(w, start);
}

/*
 * LSTM_E_NONFINITE unless every W and W_hr stays finite in the precision
 * (overflows_in()): the loader refuses both (read_quantized()), so the
 * writer must not write them.
 */
static lstm_status check_quantizable(const lstm_model *model, lstm_precision precision)
{
    for (size_t n = 0; n < model->num_layers * model->directions; n++)
        for (int kind = 0; kind < TENSOR_KINDS; kind++) {
            if ((kind != LSTM_TENSOR_WEIGHT && kind != LSTM_TENSOR_PROJECTION) ||
                !has_tensor(model, (lstm_tensor)kind))
                continue;
            size_t offset, rows, cols;
            tensor_place(model, n / model->directions, n % model->directions, (lstm_tensor)kind,
                         &offset, &rows, &cols);
            const float *w = model->params + offset;
            for (size_t k = 0; k < rows * cols; k++) {
                if (overflows_in(precision, w[k]))
                    return lstm__fail(LSTM_E_NONFINITE,
                                      "parameter %zu (%g) overflows float32 in %s; the file could "
                                      "not be loaded",
                                      offset + k, (double)w[k],
                                      precision == LSTM_PRECISION_BF16 ? "bf16" : "int8");
            }
        }
    return LSTM_OK;
}

/* The optimizer's state as lstm_optim_save_state() writes it: already the
 * section's little-endian layout, so stored as it is. */
static void write_optimizer(writer *w, const unsigned char *state, size_t bytes)
{
    size_t start = section_begin(w, "OPTM", 0, bytes);
    emit(w, state, bytes);
    section_end(w, start);
}

/* The whole file of a model, or of a network (its model's tensors with its
 * own sections), with an optimizer's state or none; with w->out NULL, only
 * its size. */
static void write_file(writer *w, const lstm_model *model, const lstm_network *network,
                       const unsigned char *state, size_t state_bytes, lstm_precision precision)
{
    unsigned char header[HEADER_SIZE];
    memcpy(header, MAGIC, sizeof MAGIC);
    header[8] = FORMAT_MAJOR;
    header[9] = 0;
    /* the lowest minor version that has the file's sections */
    header[10] = network != NULL && lstm__network_quantizes(network, precision)
                     ? FORMAT_MINOR_QUANTIZED_NETWORK
                 : precision != LSTM_PRECISION_FP32 ? FORMAT_MINOR_QUANTIZED
                                                    : FORMAT_MINOR;
    header[11] = 0;
    put_u32(header + 12, lstm__crc32c(0, header, 12));
    emit(w, header, sizeof header);
    write_config(w, model);
    if (network != NULL)
        lstm__network_write_front(w, network, precision);
    for (size_t layer = 0; layer < model->num_layers; layer++)
        for (size_t d = 0; d < model->directions; d++)
            for (int kind = 0; kind < TENSOR_KINDS; kind++) {
                if (!has_tensor(model, (lstm_tensor)kind))
                    continue;
                if (precision != LSTM_PRECISION_FP32 &&
                    (kind == LSTM_TENSOR_WEIGHT || kind == LSTM_TENSOR_PROJECTION))
                    write_quantized(w, model, layer, d, (lstm_tensor)kind, precision);
                else
                    write_tensor(w, model, layer, d, (lstm_tensor)kind);
            }
    if (network != NULL)
        lstm__network_write_back(w, network, precision);
    if (state != NULL)
        write_optimizer(w, state, state_bytes);
    section_end(w, section_begin(w, "END ", REQUIRED, 0));
}

/* The optimizer's state (the OPTM payload), in a new buffer; NULL state for none. */
static lstm_status optimizer_state(const lstm_optim *optim, unsigned char **state, size_t *bytes)
{
    *state = NULL;
    *bytes = 0;
    if (optim == NULL)
        return LSTM_OK;
    lstm_status status = lstm_optim_state_size(optim, bytes);
    if (status != LSTM_OK)
        return status;
    if ((*state = lstm__mem_alloc(*bytes)) == NULL)
        return lstm__fail(LSTM_E_NOMEM, "allocating %zu bytes of optimizer state", *bytes);
    if ((status = lstm_optim_save_state(optim, *state, *bytes)) != LSTM_OK) {
        lstm__mem_free(*state);
        *state = NULL;
    }
    return status;
}

/* The file of a model, or of a network and its model, into buffer (or
 * only its size); nothing written on failure. */
static lstm_status save_buffer(const lstm_model *model, const lstm_network *network,
                               const lstm_optim *optim, lstm_precision precision, void *buffer,
                               size_t capacity, size_t *size)
{
    if (precision != LSTM_PRECISION_FP32 && precision != LSTM_PRECISION_BF16 &&
        precision != LSTM_PRECISION_INT8)
        return lstm__fail(LSTM_E_ARG,
                          "precision %d is none of LSTM_PRECISION_FP32, _BF16 and _INT8",
                          (int)precision);
    /* A file holds finite values only: the loader would refuse others. */
    lstm_status status = lstm__check_finite("parameters", model->params, model->param_count);
    if (status == LSTM_OK && precision != LSTM_PRECISION_FP32)
        status = check_quantizable(model, precision);
    if (status == LSTM_OK && network != NULL)
        status = lstm__network_check_finite(network, precision);
    unsigned char *state;
    size_t state_bytes;
    if (status != LSTM_OK || (status = optimizer_state(optim, &state, &state_bytes)) != LSTM_OK)
        return status;
    writer counter = {NULL, 0};
    write_file(&counter, model, network, state, state_bytes, precision);
    *size = counter.size;
    if (buffer != NULL && capacity < counter.size)
        status = lstm__fail(LSTM_E_SHAPE, "capacity is %zu; the file is %zu bytes", capacity,
                            counter.size);
    else if (buffer != NULL) {
        writer w = {buffer, 0};
        write_file(&w, model, network, state, state_bytes, precision);
    }
    lstm__mem_free(state);
    return status;
}

/* save_buffer() to a new file at path, atomically. */
static lstm_status save_path(const lstm_model *model, const lstm_network *network,
                             const lstm_optim *optim, lstm_precision precision, const char *path)
{
    size_t size = 0;
    lstm_status status = save_buffer(model, network, optim, precision, NULL, 0, &size);
    if (status != LSTM_OK)
        return status;
    unsigned char *bytes = lstm__mem_alloc(size);
    if (bytes == NULL)
        return lstm__fail(LSTM_E_NOMEM, "allocating %zu bytes to save a %s", size,
                          network != NULL ? "network" : "model");
    if ((status = save_buffer(model, network, optim, precision, bytes, size, &size)) == LSTM_OK)
        status = lstm__file_replace(path, bytes, size);
    lstm__mem_free(bytes);
    return status;
}

LSTM_API lstm_status lstm_model_save_buffer(const lstm_model *model, const lstm_optim *optim,
                                            void *buffer, size_t capacity, size_t *size)
{
    if (model == NULL || size == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", model == NULL ? "model" : "size");
    return save_buffer(model, NULL, optim, LSTM_PRECISION_FP32, buffer, capacity, size);
}

LSTM_API lstm_status lstm_model_save(const lstm_model *model, const lstm_optim *optim,
                                     const char *path)
{
    if (model == NULL || path == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", model == NULL ? "model" : "path");
    return save_path(model, NULL, optim, LSTM_PRECISION_FP32, path);
}

LSTM_API lstm_status lstm_network_save_buffer(const lstm_network *network, const lstm_optim *optim,
                                              void *buffer, size_t capacity, size_t *size)
{
    if (network == NULL || size == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", network == NULL ? "network" : "size");
    return save_buffer(network->model, network, optim, LSTM_PRECISION_FP32, buffer, capacity, size);
}

LSTM_API lstm_status lstm_network_save(const lstm_network *network, const lstm_optim *optim,
                                       const char *path)
{
    if (network == NULL || path == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", network == NULL ? "network" : "path");
    return save_path(network->model, network, optim, LSTM_PRECISION_FP32, path);
}

LSTM_API lstm_status lstm_model_save_quantized_buffer(const lstm_model *model,
                                                      lstm_precision precision, void *buffer,
                                                      size_t capacity, size_t *size)
{
    if (model == NULL || size == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", model == NULL ? "model" : "size");
    return save_buffer(model, NULL, NULL, precision, buffer, capacity, size);
}

LSTM_API lstm_status lstm_model_save_quantized(const lstm_model *model, lstm_precision precision,
                                               const char *path)
{
    if (model == NULL || path == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", model == NULL ? "model" : "path");
    return save_path(model, NULL, NULL, precision, path);
}

LSTM_API lstm_status lstm_network_save_quantized_buffer(const lstm_network *network,
                                                        lstm_precision precision, void *buffer,
                                                        size_t capacity, size_t *size)
{
    if (network == NULL || size == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", network == NULL ? "network" : "size");
    return save_buffer(network->model, network, NULL, precision, buffer, capacity, size);
}

LSTM_API lstm_status lstm_network_save_quantized(const lstm_network *network,
                                                 lstm_precision precision, const char *path)
{
    if (network == NULL || path == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", network == NULL ? "network" : "path");
    return save_path(network->model, network, NULL, precision, path);
}

/* ---- reading -------------------------------------------------------------- */

/* What a checked file holds: its configuration's shape, where each
 * tensor's values and the optimizer's state are, and the network's
 * sections. */
typedef struct parsed {
    lstm_model shape; /* owns shape.blocks once CONF is read */
    bool have_config;
    const unsigned char **tensors;  /* [L D TENSOR_KINDS] values, or NULL */
    bool *quantized;                /* [L D TENSOR_KINDS]: from a QTNS section */
    lstm_precision precision;       /* of the QTNS, EMBQ and HDQ  sections; FP32 when none */
    const unsigned char *optimizer; /* OPTM payload, or NULL */
    size_t optimizer_bytes;
    network_sections network; /* NETW, EMBD, HEAD, META; none in a model's file */
} parsed;

static void parsed_free(parsed *file)
{
    lstm__mem_free(file->shape.blocks);
    lstm__mem_free(file->tensors); /* and file->quantized, in the same block */
    lstm__network_sections_free(&file->network);
}

static lstm_status corrupt(const char *what, size_t offset)
{
    return lstm__fail(LSTM_E_FORMAT, "%s at byte %zu", what, offset);
}

static lstm_status read_config(parsed *file, const unsigned char *p, size_t length, size_t at)
{
    if (file->have_config)
        return corrupt("a second CONF section", at);
    if (length != CONF_SIZE)
        return corrupt("a CONF section of the wrong length", at);
    if (get_u32(p + 36) != 0)
        return corrupt("a CONF section with a reserved field set", at);
    lstm_config config;
    lstm_config_init(&config, sizeof config);
    const uint64_t sizes[4] = {get_u64(p), get_u64(p + 8), get_u64(p + 16), get_u64(p + 24)};
    for (int k = 0; k < 4; k++)
        if (sizes[k] > SIZE_MAX)
            return corrupt("a size too large for this machine", at);
    config.input_size = (size_t)sizes[0];
    config.hidden_size = (size_t)sizes[1];
    config.num_layers = (size_t)sizes[2];
    config.proj_size = (size_t)sizes[3];
    config.flags = get_u32(p + 32);
    config.dropout = get_f64(p + 40);
    lstm_status status = lstm__model_plan(&config, &file->shape);
    if (status == LSTM_E_NOMEM) /* the file may well be fine */
        return status;
    if (status != LSTM_OK) {
        char reason[160]; /* the message buffer is about to be rewritten */
        snprintf(reason, sizeof reason, "%s", lstm_error_message());
        return lstm__fail(LSTM_E_FORMAT, "the configuration at byte %zu is invalid: %s", at,
                          reason);
    }
    file->have_config = true;
    const size_t slots = file->shape.num_layers * file->shape.directions * TENSOR_KINDS;
    /* one block: the values' places, then whether each is quantized */
    const size_t bytes = slots * (sizeof *file->tensors + sizeof *file->quantized);
    if ((file->tensors = lstm__mem_alloc(bytes)) == NULL)
        return lstm__fail(LSTM_E_NOMEM, "allocating the table of %zu tensors", slots);
    memset(file->tensors, 0, bytes);
    file->quantized = (bool *)(file->tensors + slots);
    return LSTM_OK;
}

static lstm_status read_tensor(parsed *file, const unsigned char *p, size_t length, size_t at)
{
    if (!file->have_config)
        return corrupt("a tensor before the configuration", at);
    if (length < TENS_FIXED)
        return corrupt("a TENS section too short", at);
    const lstm_model *shape = &file->shape;
    const uint32_t layer = get_u32(p), direction = get_u32(p + 4), kind = get_u32(p + 8);
    const uint32_t name_length = get_u32(p + 12);
    const uint64_t rows = get_u64(p + 16), cols = get_u64(p + 24);
    if (layer >= shape->num_layers || direction >= shape->directions || kind >= TENSOR_KINDS ||
        !has_tensor(shape, (lstm_tensor)kind))
        return corrupt("a tensor the configuration does not have", at);
    size_t offset, want_rows, want_cols;
    tensor_place(shape, layer, direction, (lstm_tensor)kind, &offset, &want_rows, &want_cols);
    char name[NAME_MAX_LENGTH + 1];
    size_t want_name = tensor_name(name, (lstm_tensor)kind, layer, direction);
    if (rows != want_rows || cols != want_cols)
        return corrupt("a tensor of the wrong shape", at);
    /* rows * cols is the configuration's, so it cannot overflow */
    if (name_length != want_name || length != TENS_FIXED + want_name + 4 * want_rows * want_cols ||
        memcmp(p + TENS_FIXED, name, want_name) != 0)
        return corrupt("a tensor whose name or length does not match it", at);
    const size_t slot = (layer * shape->directions + direction) * TENSOR_KINDS + kind;
    if (file->tensors[slot] != NULL)
        return corrupt("a tensor given twice", at);
    const unsigned char *values = p + TENS_FIXED + want_name;
    for (size_t k = 0; k < want_rows * want_cols; k++)
        if (!isfinite(get_f32(values + 4 * k)))
            return corrupt("a tensor holding NaN or infinity", at);
    file->tensors[slot] = values;
    return LSTM_OK;
}

/*
 * W or W_hr in bf16 or int8 (QTNS). Besides its identity, shape, split and
 * length: one precision in the whole file; int8 scales that are finite, not
 * negative, and small enough that every q s is finite (|q| <= 128); bf16
 * values that are finite and not subnormal (the instruction would flush
 * them to zero, the portable kernel would not).
 */
static lstm_status read_quantized(parsed *file, const unsigned char *p, size_t length, size_t at)
{
    if (!file->have_config)
        return corrupt("a tensor before the configuration", at);
    if (length < QTNS_FIXED)
        return corrupt("a QTNS section too short", at);
    const lstm_model *shape = &file->shape;
    const uint32_t layer = get_u32(p), direction = get_u32(p + 4), kind = get_u32(p + 8);
    const uint32_t precision = get_u32(p + 12);
    const uint64_t rows = get_u64(p + 16), cols = get_u64(p + 24), split = get_u64(p + 32);
    if (layer >= shape->num_layers || direction >= shape->directions ||
        (kind != LSTM_TENSOR_WEIGHT && kind != LSTM_TENSOR_PROJECTION) ||
        !has_tensor(shape, (lstm_tensor)kind))
        return corrupt("a quantized tensor the configuration does not have", at);
    if (precision != LSTM_PRECISION_BF16 && precision != LSTM_PRECISION_INT8)
        return corrupt("a quantized tensor of an unknown precision", at);
    if (file->precision != LSTM_PRECISION_FP32 && file->precision != precision)
        return corrupt("quantized tensors of two precisions", at);
    size_t offset, want_rows, want_cols;
    tensor_place(shape, layer, direction, (lstm_tensor)kind, &offset, &want_rows, &want_cols);
    if (rows != want_rows || cols != want_cols)
        return corrupt("a quantized tensor of the wrong shape", at);
    const size_t want_split = quantized_split(shape, (lstm_tensor)kind, want_cols);
    if (split != want_split)
        return corrupt("a quantized tensor split at the wrong column", at);
    const size_t parts = want_split < want_cols ? 2 : 1;
    /* rows * cols is the configuration's, so it cannot overflow */
    if (length != QTNS_FIXED + quantized_bytes(precision, want_rows, want_cols, parts))
        return corrupt("a QTNS section of the wrong length", at);
    const size_t slot = (layer * shape->directions + direction) * TENSOR_KINDS + kind;
    if (file->tensors[slot] != NULL)
        return corrupt("a tensor given twice", at);
    const unsigned char *values = p + QTNS_FIXED;
    if (precision == LSTM_PRECISION_INT8) {
        for (size_t k = 0; k < parts * want_rows; k++) {
            const float scale = get_f32(values + 4 * k);
            if (!(scale >= 0.0f) || !isfinite(128.0f * scale))
                return corrupt("a quantized tensor with a scale that is negative, NaN or too "
                               "large",
                               at);
        }
    } else {
        for (size_t k = 0; k < want_rows * want_cols; k++) {
            const unsigned bits = values[2 * k] | (unsigned)values[2 * k + 1] << 8;
            const unsigned exponent = bits >> 7 & 0xff;
            if (exponent == 0xff)
                return corrupt("a bf16 tensor holding NaN or infinity", at);
            if (exponent == 0 && (bits & 0x7f) != 0)
                return corrupt("a bf16 tensor holding a subnormal value", at);
        }
    }
    file->tensors[slot] = values;
    file->quantized[slot] = true;
    file->precision = (lstm_precision)precision;
    return LSTM_OK;
}

/* Checks the whole file: header, every section, that every tensor of the
 * configuration is there exactly once, and the network's sections together. */
static lstm_status parse(const unsigned char *data, size_t size, parsed *file)
{
    memset(file, 0, sizeof *file);
    if (size < HEADER_SIZE || memcmp(data, MAGIC, sizeof MAGIC) != 0)
        return lstm__fail(LSTM_E_FORMAT, "not a liblstm model file (no LSTMFILE header)");
    if (get_u32(data + 12) != lstm__crc32c(0, data, 12))
        return corrupt("a header checksum that does not match", 12);
    const unsigned major = data[8] | (unsigned)data[9] << 8;
    if (major != FORMAT_MAJOR)
        return lstm__fail(LSTM_E_UNSUPPORTED,
                          "the file has format version %u; this liblstm reads %d", major,
                          FORMAT_MAJOR);
    size_t at = HEADER_SIZE;
    bool ended = false;
    while (!ended) {
        if (size - at < SECTION_OVERHEAD)
            return corrupt("a file that ends inside a section header", at);
        const unsigned char *section = data + at;
        const uint32_t flags = get_u32(section + 4);
        const uint64_t length = get_u64(section + 8);
        if (length > size - at - SECTION_OVERHEAD)
            return corrupt("a section longer than the rest of the file", at);
        if (get_u32(section + 16 + length) != lstm__crc32c(0, section, 16 + (size_t)length))
            return corrupt("a section whose checksum does not match", at);
        if ((flags & ~(uint32_t)REQUIRED) != 0)
            return corrupt("a section with reserved flags set", at);
        const unsigned char *payload = section + 16;
        lstm_status status = LSTM_OK;
        if (memcmp(section, "CONF", 4) == 0)
            status = read_config(file, payload, (size_t)length, at);
        else if (!file->have_config)
            return corrupt("a section before the configuration", at);
        else if (memcmp(section, "TENS", 4) == 0)
            status = read_tensor(file, payload, (size_t)length, at);
        else if (memcmp(section, "QTNS", 4) == 0)
            status = !(flags & REQUIRED) ? corrupt("a QTNS section not marked required", at)
                                         : read_quantized(file, payload, (size_t)length, at);
        else if (memcmp(section, "OPTM", 4) == 0) {
            if (file->optimizer != NULL)
                return corrupt("a second OPTM section", at);
            file->optimizer = payload;
            file->optimizer_bytes = (size_t)length;
        } else if (memcmp(section, "END ", 4) == 0) {
            if (length != 0)
                return corrupt("an END section with a payload", at);
            ended = true;
        } else if (lstm__network_section_known(section)) {
            status = lstm__network_section_read(&file->network, &file->shape, &file->precision,
                                                section, at);
        } else if (flags & REQUIRED) {
            return lstm__fail(LSTM_E_UNSUPPORTED,
                              "the file needs section \"%.4s\" (byte %zu), "
                              "which this liblstm does not know",
                              (const char *)section, at);
        } /* else: an optional section of a later version, skipped */
        if (status != LSTM_OK)
            return status;
        at += SECTION_OVERHEAD + (size_t)length;
    }
    if (at != size)
        return corrupt("bytes after the END section", at);
    const size_t blocks = file->shape.num_layers * file->shape.directions;
    for (size_t n = 0; n < blocks; n++)
        for (int kind = 0; kind < TENSOR_KINDS; kind++)
            if (has_tensor(&file->shape, (lstm_tensor)kind) &&
                file->tensors[n * TENSOR_KINDS + (size_t)kind] == NULL)
                return lstm__fail(LSTM_E_FORMAT, "tensor %d of layer %zu, direction %zu is missing",
                                  kind, n / file->shape.directions, n % file->shape.directions);
    /* a quantized file has every W and W_hr quantized */
    for (size_t n = 0; n < blocks && file->precision != LSTM_PRECISION_FP32; n++)
        for (int kind = 0; kind < TENSOR_KINDS; kind++)
            if ((kind == LSTM_TENSOR_WEIGHT || kind == LSTM_TENSOR_PROJECTION) &&
                has_tensor(&file->shape, (lstm_tensor)kind) &&
                !file->quantized[n * TENSOR_KINDS + (size_t)kind])
                return lstm__fail(LSTM_E_FORMAT,
                                  "tensor %d of layer %zu, direction %zu is float32 in a "
                                  "quantized file",
                                  kind, n / file->shape.directions, n % file->shape.directions);
    return lstm__network_sections_check(&file->network);
}

/* Bytes of a stored tensor's values and of its scales (int8). */
static size_t stored_value_bytes(lstm_precision precision, size_t rows, size_t cols)
{
    return lstm__align_up((precision == LSTM_PRECISION_INT8 ? 1 : 2) * rows * cols);
}

static size_t stored_scale_bytes(lstm_precision precision, size_t rows, size_t parts)
{
    return precision == LSTM_PRECISION_INT8 ? lstm__align_up(4 * rows * parts) : 0;
}

/*
 * A quantized tensor of the file: its float32 values, q s or the bf16
 * values, into the model's parameters, and its values and scales as they
 * are into `values` and `scales` (the model's store).
 */
static void take_quantized(const parsed *file, const lstm_model *model, lstm_tensor kind,
                           const unsigned char *data, size_t offset, size_t rows, size_t cols,
                           void *values, float *scales)
{
    const size_t split = quantized_split(model, kind, cols), parts = split < cols ? 2 : 1;
    float *params = model->params + offset;
    if (file->precision == LSTM_PRECISION_BF16) {
        uint16_t *bits = values;
        for (size_t k = 0; k < rows * cols; k++) {
            bits[k] = (uint16_t)(data[2 * k] | data[2 * k + 1] << 8);
            const uint32_t wide = (uint32_t)bits[k] << 16;
            memcpy(&params[k], &wide, sizeof wide);
        }
        return;
    }
    for (size_t k = 0; k < parts * rows; k++)
        scales[k] = get_f32(data + 4 * k);
    const int8_t *q = (const int8_t *)(data + 4 * parts * rows);
    memcpy(values, q, rows * cols);
    for (size_t j = 0; j < rows; j++)
        for (size_t k = 0; k < cols; k++)
            params[j * cols + k] = (float)q[j * cols + k] * scales[(k < split ? 0 : rows) + j];
}

/*
 * The file's tensors into a model of its configuration; a quantized file's
 * W and W_hr also into the model's store (model_internal.h), for the
 * model's generation as it is now. LSTM_E_NOMEM when the store cannot be
 * had (the model is then the caller's to destroy).
 */
static lstm_status take_tensors(const parsed *file, lstm_model *model)
{
    const size_t blocks = model->num_layers * model->directions;
    const lstm_precision precision = file->precision;
    size_t bytes = 0;
    for (size_t n = 0; n < blocks && precision != LSTM_PRECISION_FP32; n++) {
        const size_t G = 4 * model->hidden_size, K = model->blocks[n].stacked_size;
        bytes += stored_value_bytes(precision, G, K) + stored_scale_bytes(precision, G, 2);
        if (model->proj_size != 0)
            bytes += stored_value_bytes(precision, model->proj_size, model->hidden_size) +
                     stored_scale_bytes(precision, model->proj_size, 1);
    }
    unsigned char *memory = NULL;
    stored_block *stored = NULL;
    if (precision != LSTM_PRECISION_FP32) {
        memory = lstm__mem_alloc(bytes);
        stored = lstm__mem_alloc(blocks * sizeof *stored);
        if (memory == NULL || stored == NULL) {
            lstm__mem_free(memory);
            lstm__mem_free(stored);
            return lstm__fail(LSTM_E_NOMEM, "allocating %zu bytes of quantized weights", bytes);
        }
    }
    unsigned char *next = memory;
    for (size_t n = 0; n < blocks; n++) {
        for (int kind = 0; kind < TENSOR_KINDS; kind++) {
            const size_t slot = n * TENSOR_KINDS + (size_t)kind;
            const unsigned char *values = file->tensors[slot];
            if (values == NULL)
                continue;
            size_t offset, rows, cols;
            tensor_place(model, n / model->directions, n % model->directions, (lstm_tensor)kind,
                         &offset, &rows, &cols);
            if (!file->quantized[slot]) {
                for (size_t k = 0; k < rows * cols; k++)
                    model->params[offset + k] = get_f32(values + 4 * k);
                continue;
            }
            const bool weight = kind == LSTM_TENSOR_WEIGHT;
            void *stored_values = next;
            float *stored_scales = (float *)(next + stored_value_bytes(precision, rows, cols));
            next += stored_value_bytes(precision, rows, cols) +
                    stored_scale_bytes(precision, rows, weight ? 2 : 1);
            take_quantized(file, model, (lstm_tensor)kind, values, offset, rows, cols,
                           stored_values, stored_scales);
            const float *scales = precision == LSTM_PRECISION_INT8 ? stored_scales : NULL;
            if (weight) {
                stored[n].weight = stored_values;
                stored[n].weight_scales = scales;
            } else {
                stored[n].projection = stored_values;
                stored[n].projection_scales = scales;
            }
        }
    }
    if (precision != LSTM_PRECISION_FP32)
        model->stored = (stored_weights){precision, model->generation, stored, memory};
    return LSTM_OK;
}

LSTM_API lstm_status lstm_model_load_buffer(const void *buffer, size_t size, lstm_model **out)
{
    if (buffer == NULL || out == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", buffer == NULL ? "buffer" : "out");
    parsed file;
    lstm_model *model = NULL;
    lstm_status status = parse(buffer, size, &file);
    if (status == LSTM_OK)
        status = lstm_model_create(&file.shape.config, &model);
    if (status == LSTM_OK && (status = take_tensors(&file, model)) != LSTM_OK)
        lstm_model_destroy(model);
    else if (status == LSTM_OK)
        *out = model;
    parsed_free(&file);
    return status;
}

LSTM_API lstm_status lstm_model_load(const char *path, lstm_model **out)
{
    if (path == NULL || out == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", path == NULL ? "path" : "out");
    unsigned char *data;
    size_t size;
    lstm_status status = lstm__file_read_all(path, &data, &size);
    if (status == LSTM_OK)
        status = lstm_model_load_buffer(data, size, out);
    lstm__mem_free(data);
    return status;
}

LSTM_API lstm_status lstm_network_load_buffer(const void *buffer, size_t size, lstm_network **out)
{
    if (buffer == NULL || out == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", buffer == NULL ? "buffer" : "out");
    parsed file;
    lstm_network *network = NULL;
    lstm_status status = parse(buffer, size, &file);
    if (status == LSTM_OK)
        status = lstm__network_sections_create(&file.network, &file.shape.config, &network);
    if (status == LSTM_OK && (status = take_tensors(&file, network->model)) != LSTM_OK)
        lstm_network_destroy(network);
    else if (status == LSTM_OK)
        *out = network;
    parsed_free(&file);
    return status;
}

LSTM_API lstm_status lstm_network_load(const char *path, lstm_network **out)
{
    if (path == NULL || out == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", path == NULL ? "path" : "out");
    unsigned char *data;
    size_t size;
    lstm_status status = lstm__file_read_all(path, &data, &size);
    if (status == LSTM_OK)
        status = lstm_network_load_buffer(data, size, out);
    lstm__mem_free(data);
    return status;
}

LSTM_API lstm_status lstm_optim_load_buffer(lstm_optim *optim, const void *buffer, size_t size)
{
    if (optim == NULL || buffer == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", optim == NULL ? "optim" : "buffer");
    parsed file;
    lstm_status status = parse(buffer, size, &file);
    if (status == LSTM_OK && file.optimizer == NULL)
        status = lstm__fail(LSTM_E_FORMAT, "the file holds no optimizer state");
    else if (status == LSTM_OK && (file.optimizer_bytes < 40 || file.optimizer_bytes % 4 != 0))
        status = lstm__fail(LSTM_E_FORMAT, "an optimizer state of %zu bytes", file.optimizer_bytes);
    /* the payload is lstm_optim_load_state()'s layout: read where it lies */
    if (status == LSTM_OK)
        status = lstm_optim_load_state(optim, file.optimizer, file.optimizer_bytes);
    parsed_free(&file);
    return status;
}

LSTM_API lstm_status lstm_optim_load(lstm_optim *optim, const char *path)
{
    if (optim == NULL || path == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", optim == NULL ? "optim" : "path");
    unsigned char *data;
    size_t size;
    lstm_status status = lstm__file_read_all(path, &data, &size);
    if (status == LSTM_OK)
        status = lstm_optim_load_buffer(optim, data, size);
    lstm__mem_free(data);
    return status;
}

/* The older name of lstm_optim_load() (LSTM_1.0). */
LSTM_API lstm_status lstm_optim_load_file(lstm_optim *optim, const char *path)
{
    return lstm_optim_load(optim, path);
}
