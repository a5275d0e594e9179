/*
 * Fuzz target for the model-file loader (docs/model-format.md).
 *
 * Each input is given to lstm_model_load_buffer() twice: as it is, which
 * mostly exercises the header and checksum checks, and with every CRC-32C
 * recomputed, so that mutations reach the section, configuration, tensor
 * and optimizer-state checks behind the checksums. On failure the loader
 * must return a documented status, leave its output untouched and leave a
 * detail message. On success the model must satisfy the invariants of
 * lstm/model.h (parameter count, tensor layout, the values the file holds),
 * run a one-step forward, survive a save/load round trip unchanged, and an
 * Adam optimizer bound to it must restore the file's optimizer state or
 * refuse it and stay unchanged. The same bytes go to lstm_network_load_buffer(),
 * which must agree with the model's loader; a loaded network must hold the
 * file's embedding, head and metadata (read by its getters) and survive a
 * save/load round trip.
 *
 * Built with -DLSTM_FUZZ_LIBFUZZER and -fsanitize=fuzzer it is a libFuzzer
 * target (tests/fuzz/run.sh). Built without, it is a plain program:
 *
 *     fuzz_load FILE|DIR...          run every file (every file of each
 *                                    DIR) once, as the fuzzer would
 *     fuzz_load --make-corpus DIR    write the seed corpus into DIR
 *
 * An invariant that does not hold is reported on stderr and abort()s, which
 * libFuzzer records as a crash.
 */
#define _POSIX_C_SOURCE 200809L /* dirent, stat */

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lstm/lstm.h"

#include "check.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
    HEADER_SIZE = 16,
    SECTION_OVERHEAD = 20, /* tag, flags, length, then the CRC */
    TENS_FIXED = 32,
    QTNS_FIXED = 40, /* layer, direction, kind, precision, rows, cols, split */
    EMBD_FIXED = 32, /* EMBQ's too, its reserved field the precision */
    HEAD_FIXED = 16,
    HDQ_FIXED = 24,
    META_FIXED = 16,
    TENSOR_KINDS = 4,
    OPTM_HEADER = 40,
    LAST_STATUS = LSTM_E_UNSUPPORTED
};

/* Parameters above this magnitude may overflow float32 in a forward. */
#define TAME_PARAM 1.0e6f

/* ---- little-endian fields and CRC-32C, written independently of src/ ------ */

static uint32_t read_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t read_u64(const uint8_t *p)
{
    return (uint64_t)read_u32(p) | (uint64_t)read_u32(p + 4) << 32;
}

static void write_u32(uint8_t *p, uint32_t value)
{
    for (int k = 0; k < 4; k++)
        p[k] = (uint8_t)(value >> (8 * k));
}

static uint32_t crc_table[256];

/* Castagnoli, reflected: polynomial 0x1EDC6F41 reversed is 0x82F63B78. */
static void crc_table_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t crc = n;
        for (int bit = 0; bit < 8; bit++)
            crc = (crc & 1u) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        crc_table[n] = crc;
    }
}

static uint32_t crc32c_of(const uint8_t *data, size_t size)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t k = 0; k < size; k++)
        crc = crc_table[(crc ^ data[k]) & 0xFFu] ^ (crc >> 8);
    return crc ^ 0xFFFFFFFFu;
}

/*
 * Rewrites the header CRC and the CRC of every section whose length fits in
 * the bytes that remain, walking the sections as the loader does; the rest
 * is left alone. Returns whether any byte changed.
 */
static bool fix_checksums(uint8_t *file, size_t size)
{
    bool changed = false;
    if (size < HEADER_SIZE)
        return false;
    uint32_t crc = crc32c_of(file, 12);
    changed |= read_u32(file + 12) != crc;
    write_u32(file + 12, crc);
    size_t at = HEADER_SIZE;
    while (size - at >= SECTION_OVERHEAD) {
        const uint64_t length = read_u64(file + at + 8);
        if (length > size - at - SECTION_OVERHEAD)
            break;
        crc = crc32c_of(file + at, 16 + (size_t)length);
        changed |= read_u32(file + at + 16 + length) != crc;
        write_u32(file + at + 16 + (size_t)length, crc);
        at += SECTION_OVERHEAD + (size_t)length;
    }
    return changed;
}

/* ---- invariants of a loaded model ----------------------------------------- */

/* The shape a configuration gives, from lstm/model.h's own words. */
typedef struct shape {
    lstm_config config;
    size_t layers, directions, state_size; /* L, D, R */
} shape;

static shape shape_of(const lstm_model *model)
{
    shape s;
    CHECK(lstm_config_init(&s.config, sizeof s.config) == LSTM_OK, "lstm_config_init");
    CHECK(lstm_model_get_config(model, &s.config) == LSTM_OK, "lstm_model_get_config");
    CHECK(s.config.struct_size == sizeof s.config, "struct_size %zu", s.config.struct_size);
    s.layers = s.config.num_layers == 0 ? 1 : s.config.num_layers;
    s.directions = (s.config.flags & LSTM_BIDIRECTIONAL) ? 2 : 1;
    s.state_size = s.config.proj_size != 0 ? s.config.proj_size : s.config.hidden_size;
    CHECK(s.config.input_size >= 1 && s.config.hidden_size >= 1 &&
              s.config.proj_size < s.config.hidden_size && s.layers <= LSTM_MAX_LAYERS &&
              (s.config.flags &
               ~(uint32_t)(LSTM_BIDIRECTIONAL | LSTM_BATCH_FIRST | LSTM_PEEPHOLE)) == 0 &&
              s.config.dropout >= 0.0 && s.config.dropout < 1.0,
          "a loaded configuration lstm_model_create would refuse: I %zu H %zu L %zu P %zu "
          "flags 0x%x dropout %g",
          s.config.input_size, s.config.hidden_size, s.config.num_layers, s.config.proj_size,
          s.config.flags, s.config.dropout);
    return s;
}

static bool has_kind(const shape *s, int kind)
{
    return kind == LSTM_TENSOR_WEIGHT || kind == LSTM_TENSOR_BIAS ||
           (kind == LSTM_TENSOR_PROJECTION && s->config.proj_size != 0) ||
           (kind == LSTM_TENSOR_PEEPHOLE && (s->config.flags & LSTM_PEEPHOLE) != 0);
}

/* Every tensor sits where lstm/model.h's layout puts it, and the blocks
 * tile the parameter buffer exactly. Returns the number of tensors. */
static size_t check_layout(const lstm_model *model, const shape *s)
{
    const size_t H = s->config.hidden_size, R = s->state_size;
    size_t expected_offset = 0, tensors = 0;
    for (size_t layer = 0; layer < s->layers; layer++) {
        const size_t layer_input = layer == 0 ? s->config.input_size : s->directions * R;
        for (size_t d = 0; d < s->directions; d++) {
            for (int kind = 0; kind < TENSOR_KINDS; kind++) {
                const size_t want_rows[TENSOR_KINDS] = {4 * H, 4 * H, s->config.proj_size, 3};
                const size_t want_cols[TENSOR_KINDS] = {R + layer_input, 1, H, H};
                size_t offset = 0, rows = 0, cols = 0;
                lstm_status status =
                    lstm_model_tensor(model, layer, d, (lstm_tensor)kind, &offset, &rows, &cols);
                if (!has_kind(s, kind)) {
                    CHECK(status == LSTM_E_ARG, "tensor %d of layer %zu exists: %d", kind, layer,
                          (int)status);
                    continue;
                }
                CHECK(status == LSTM_OK, "tensor %d of layer %zu dir %zu: %d", kind, layer, d,
                      (int)status);
                CHECK(offset == expected_offset && rows == want_rows[kind] &&
                          cols == want_cols[kind],
                      "tensor %d of layer %zu dir %zu at %zu, %zu x %zu; expected at %zu, "
                      "%zu x %zu",
                      kind, layer, d, offset, rows, cols, expected_offset, want_rows[kind],
                      want_cols[kind]);
                expected_offset += rows * cols;
                tensors++;
            }
        }
    }
    CHECK(expected_offset == lstm_model_param_count(model), "blocks hold %zu, param_count %zu",
          expected_offset, lstm_model_param_count(model));
    return tensors;
}

static bool same_bits(float a, float b)
{
    uint32_t x, y;
    memcpy(&x, &a, sizeof x);
    memcpy(&y, &b, sizeof y);
    return x == y;
}

/* The model's parameters, copied: lstm_model_get_params() leaves the model as
 * it is, where lstm_model_params() would mark its parameters changed, and a
 * model loaded from a quantized file would stop running (and saving) its
 * weights as stored. NULL when memory runs out. */
static float *params_copy(const lstm_model *model)
{
    const size_t count = lstm_model_param_count(model);
    float *copy = malloc(count * sizeof *copy);
    if (copy != NULL)
        CHECK(lstm_model_get_params(model, copy, count) == LSTM_OK, "lstm_model_get_params");
    return copy;
}

static float float_of(uint32_t bits)
{
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

/*
 * Value k (row-major) of a well-formed QTNS payload, dequantized as
 * docs/model-format.md says: bf16, its u16 << 16; int8, q s, with s the
 * scale of the row's part (part 0 the columns [0, split), part 1 the rest).
 */
static float qtns_value(const uint8_t *p, size_t k)
{
    const uint64_t rows = read_u64(p + 16), cols = read_u64(p + 24), split = read_u64(p + 32);
    const uint8_t *values = p + QTNS_FIXED;
    if (read_u32(p + 12) == LSTM_PRECISION_BF16)
        return float_of((uint32_t)(values[2 * k] | values[2 * k + 1] << 8) << 16);
    const size_t parts = split < cols ? 2 : 1, row = k / cols, part = k % cols < split ? 0 : 1;
    const float scale = float_of(read_u32(values + 4 * (part * rows + row)));
    return (float)(int8_t)values[4 * parts * rows + k] * scale;
}

/* W and W_hr of each block: the tensors a quantized file stores in QTNS. */
static size_t weight_count(const shape *s)
{
    return s->layers * s->directions * (s->config.proj_size != 0 ? 2 : 1);
}

/*
 * The model holds, bit for bit, the values of every TENS section of the file
 * and the dequantized values of every QTNS section (the file loaded, so its
 * sections are well formed); a file with QTNS has them for every W and W_hr,
 * all of one precision. Returns that precision (LSTM_PRECISION_FP32 without
 * QTNS).
 */
static lstm_precision check_values(const lstm_model *model, const shape *s, const float *params,
                                   const uint8_t *file, size_t size, size_t tensors)
{
    size_t seen = 0, quantized = 0;
    lstm_precision precision = LSTM_PRECISION_FP32;
    for (size_t at = HEADER_SIZE; size - at >= SECTION_OVERHEAD;) {
        const uint8_t *section = file + at, *p = section + 16;
        const uint64_t length = read_u64(section + 8);
        CHECK(length <= size - at - SECTION_OVERHEAD, "a loaded file with a section too long");
        const bool tens = memcmp(section, "TENS", 4) == 0, qtns = memcmp(section, "QTNS", 4) == 0;
        size_t offset = 0, rows = 0, cols = 0;
        if (tens || qtns)
            CHECK(lstm_model_tensor(model, read_u32(p), read_u32(p + 4),
                                    (lstm_tensor)read_u32(p + 8), &offset, &rows, &cols) == LSTM_OK,
                  "a loaded %.4s section at byte %zu names no tensor of the model", section, at);
        if (tens) {
            const uint8_t *values = p + TENS_FIXED + read_u32(p + 12);
            for (size_t k = 0; k < rows * cols; k++) {
                const float value = float_of(read_u32(values + 4 * k));
                CHECK(same_bits(params[offset + k], value),
                      "parameter %zu is %a; the file (TENS at byte %zu) holds %a", offset + k,
                      (double)params[offset + k], at, (double)value);
            }
            seen++;
        } else if (qtns) {
            const uint32_t kind = read_u32(p + 8), given = read_u32(p + 12);
            CHECK(kind == LSTM_TENSOR_WEIGHT || kind == LSTM_TENSOR_PROJECTION,
                  "a loaded QTNS at byte %zu of kind %u", at, (unsigned)kind);
            CHECK((given == LSTM_PRECISION_BF16 || given == LSTM_PRECISION_INT8) &&
                      (precision == LSTM_PRECISION_FP32 || given == (uint32_t)precision),
                  "a loaded QTNS at byte %zu of precision %u (the file's: %d)", at, (unsigned)given,
                  (int)precision);
            CHECK(read_u64(p + 16) == rows && read_u64(p + 24) == cols,
                  "a loaded QTNS at byte %zu of another shape", at);
            precision = (lstm_precision)given;
            for (size_t k = 0; k < rows * cols; k++) {
                const float value = qtns_value(p, k);
                CHECK(same_bits(params[offset + k], value),
                      "parameter %zu is %a; the file (QTNS at byte %zu) holds %a", offset + k,
                      (double)params[offset + k], at, (double)value);
            }
            seen++;
            quantized++;
        }
        at += SECTION_OVERHEAD + (size_t)length;
        if (memcmp(section, "END ", 4) == 0)
            break;
    }
    CHECK(seen == tensors, "the file holds %zu tensors, the model %zu", seen, tensors);
    CHECK(quantized == 0 || quantized == weight_count(s),
          "a loaded file with %zu of its %zu W and W_hr quantized", quantized, weight_count(s));
    return precision;
}

/* What one_step() writes: y [D R], then hT [L D R], then cT [L D H]. */
static size_t step_outputs(const shape *s)
{
    const size_t blocks = s->layers * s->directions;
    return s->directions * s->state_size + blocks * (s->state_size + s->config.hidden_size);
}

/* One step of one sequence, x_k = ((k mod 5) - 2) / 2, from zero states, in
 * a precision (set on a new workspace), into out (step_outputs()). */
static lstm_status one_step(const lstm_model *model, const shape *s, lstm_precision precision,
                            float *out)
{
    const size_t R = s->state_size, D = s->directions, blocks = s->layers * D;
    lstm_workspace *workspace = NULL;
    lstm_status status = lstm_workspace_create(model, &workspace);
    CHECK(status == LSTM_OK || status == LSTM_E_NOMEM, "lstm_workspace_create: %d", (int)status);
    float *x = malloc(s->config.input_size * sizeof *x);
    if (workspace == NULL || x == NULL) {
        status = LSTM_E_NOMEM;
        goto out;
    }
    for (size_t k = 0; k < s->config.input_size; k++)
        x[k] = (float)((int)(k % 5) - 2) / 2.0f;
    status = lstm_workspace_set_precision(workspace, precision);
    CHECK(status == LSTM_OK, "lstm_workspace_set_precision(%d): %d", (int)precision, (int)status);
    const lstm_sequences sequences = {
        .struct_size = sizeof(lstm_sequences), .steps = 1, .batch = 1};
    const lstm_inputs inputs = {.struct_size = sizeof(lstm_inputs), .x = x};
    const lstm_outputs outputs = {.struct_size = sizeof(lstm_outputs),
                                  .y = out,
                                  .hT = out + D * R,
                                  .cT = out + D * R + blocks * R};
    status = lstm_model_infer(model, workspace, &sequences, &inputs, &outputs);
    CHECK(status == LSTM_OK || status == LSTM_E_NOMEM, "lstm_model_infer in precision %d: %d (%s)",
          (int)precision, (int)status, lstm_strerror(status));
out:
    lstm_workspace_destroy(workspace);
    free(x);
    return status;
}

/* One step (one_step()) in a precision: a clean status, and on success
 * outputs that the equations bound whatever the precision of the products
 * (with c0 = 0 and T = 1, c = i g, so |c| <= 1; without a projection
 * |h| <= 1) and y equal to the last layer's final h. */
static void check_forward(const lstm_model *model, const shape *s, const float *params,
                          lstm_precision precision)
{
    const size_t H = s->config.hidden_size, R = s->state_size, D = s->directions;
    const size_t blocks = s->layers * D;
    float *out = malloc(step_outputs(s) * sizeof *out);
    if (out == NULL || one_step(model, s, precision, out) != LSTM_OK)
        goto out;
    const float *y = out, *h_final = out + D * R, *c_final = out + D * R + blocks * R;
    float largest = 0.0f;
    for (size_t k = 0; k < lstm_model_param_count(model); k++)
        largest = fmaxf(largest, fabsf(params[k]));
    const float bound = 1.0f + 1e-6f;
    for (size_t k = 0; k < blocks * H; k++)
        CHECK(!(fabsf(c_final[k]) > bound), "cT[%zu] is %g in precision %d", k, (double)c_final[k],
              (int)precision);
    for (size_t k = 0; k < blocks * R; k++) {
        CHECK(s->config.proj_size != 0 || !(fabsf(h_final[k]) > bound),
              "hT[%zu] is %g in precision %d", k, (double)h_final[k], (int)precision);
        CHECK(largest > TAME_PARAM || isfinite(h_final[k]),
              "hT[%zu] is %g in precision %d, largest |w| %g", k, (double)h_final[k],
              (int)precision, (double)largest);
    }
    for (size_t k = 0; k < D * R; k++)
        CHECK(same_bits(y[k], h_final[(blocks - D) * R + k]),
              "y[%zu] %g != its final h %g in precision %d", k, (double)y[k],
              (double)h_final[(blocks - D) * R + k], (int)precision);
out:
    free(out);
}

/* A model's file, in a new buffer (NULL when memory runs out). */
static uint8_t *save_model(const lstm_model *model, const lstm_optim *optim, size_t *size)
{
    CHECK(lstm_model_save_buffer(model, optim, NULL, 0, size) == LSTM_OK, "size query");
    uint8_t *bytes = malloc(*size);
    if (bytes == NULL)
        return NULL;
    size_t written = 0;
    CHECK(lstm_model_save_buffer(model, optim, bytes, *size, &written) == LSTM_OK &&
              written == *size,
          "lstm_model_save_buffer wrote %zu of %zu", written, *size);
    return bytes;
}

/* save(load(file)) loads to the same model, and saves to the same bytes. */
static void check_round_trip(const lstm_model *model, const shape *s)
{
    size_t size, size_again;
    lstm_model *again = NULL;
    uint8_t *bytes = save_model(model, NULL, &size), *bytes_again = NULL;
    if (bytes == NULL)
        return;
    lstm_status status = lstm_model_load_buffer(bytes, size, &again);
    CHECK(status == LSTM_OK || status == LSTM_E_NOMEM, "reloading a saved model: %d (%s)",
          (int)status, lstm_error_message());
    if (status != LSTM_OK)
        goto out;
    shape t = shape_of(again);
    CHECK(s->config.input_size == t.config.input_size &&
              s->config.hidden_size == t.config.hidden_size &&
              s->config.num_layers == t.config.num_layers &&
              s->config.proj_size == t.config.proj_size && s->config.flags == t.config.flags &&
              memcmp(&s->config.dropout, &t.config.dropout, sizeof t.config.dropout) == 0,
          "the configuration changed in a round trip");
    bytes_again = save_model(again, NULL, &size_again);
    CHECK(bytes_again == NULL || (size_again == size && memcmp(bytes, bytes_again, size) == 0),
          "saving a reloaded model gives other bytes (%zu, then %zu)", size, size_again);
out:
    lstm_model_destroy(again);
    free(bytes);
    free(bytes_again);
}

/* ---- quantized files (format 1.2, QTNS) ----------------------------------- */

/* Whether some parameter is at least 3.3e38 in magnitude, near enough to
 * FLT_MAX to overflow in bf16 (from 0x1.ffp127) or in an int8 scale (128 s
 * beyond float32 from about 3.38e38): the writers refuse such a model with
 * LSTM_E_NONFINITE rather than write a file the loader would refuse. */
static bool near_float_max(const lstm_model *model)
{
    const size_t count = lstm_model_param_count(model);
    float *params = malloc(count * sizeof *params + 1);
    bool near = false;
    if (params != NULL && lstm_model_get_params(model, params, count) == LSTM_OK)
        for (size_t k = 0; k < count && !near; k++)
            near = fabsf(params[k]) >= 3.3e38f;
    free(params);
    return near;
}

/* The same of a network's embedding and head W, which its quantized file
 * holds in the precision too (the head's b stays float32). */
static bool parts_near_float_max(const lstm_network *network)
{
    float *values;
    size_t count;
    bool near = false;
    lstm_embedding *embedding = lstm_network_embedding((lstm_network *)network);
    lstm_dense *head = lstm_network_head((lstm_network *)network);
    if (embedding != NULL && lstm_embedding_params(embedding, &values, &count) == LSTM_OK)
        for (size_t k = 0; k < count && !near; k++)
            near = fabsf(values[k]) >= 3.3e38f;
    if (head != NULL && lstm_dense_params(head, &values, &count) == LSTM_OK) {
        lstm_network_config config;
        lstm_network_config_init(&config, sizeof config);
        lstm_network_get_config(network, &config);
        for (size_t k = 0; k < count - config.head_size && !near; k++)
            near = fabsf(values[k]) >= 3.3e38f;
    }
    return near;
}

/* A model's (network NULL) or a network's file in a precision, in a new
 * buffer (NULL when memory runs out, or when the writer refuses weights
 * that overflow in the precision). */
static uint8_t *save_quantized(const lstm_model *model, const lstm_network *network,
                               lstm_precision precision, size_t *size)
{
    lstm_status status = network != NULL
                             ? lstm_network_save_quantized_buffer(network, precision, NULL, 0, size)
                             : lstm_model_save_quantized_buffer(model, precision, NULL, 0, size);
    if (status == LSTM_E_NONFINITE) {
        CHECK(
            near_float_max(network != NULL ? lstm_network_model((lstm_network *)network) : model) ||
                (network != NULL && parts_near_float_max(network)),
            "a quantized save refused a model without weights near FLT_MAX: %s",
            lstm_error_message());
        return NULL;
    }
    CHECK(status == LSTM_OK, "the size of a loaded %s in precision %d: %d (%s)",
          network != NULL ? "network" : "model", (int)precision, (int)status, lstm_error_message());
    uint8_t *bytes = malloc(*size);
    if (bytes == NULL)
        return NULL;
    size_t written = 0;
    status = network != NULL
                 ? lstm_network_save_quantized_buffer(network, precision, bytes, *size, &written)
                 : lstm_model_save_quantized_buffer(model, precision, bytes, *size, &written);
    CHECK(status == LSTM_OK && written == *size, "saving in precision %d: %d, %zu of %zu bytes",
          (int)precision, (int)status, written, *size);
    return bytes;
}

/* The QTNS section of a well-formed file whose layer, direction and kind
 * are those of `identity` (a QTNS payload), or NULL. */
static const uint8_t *find_qtns(const uint8_t *file, size_t size, const uint8_t *identity)
{
    for (size_t at = HEADER_SIZE; size - at >= SECTION_OVERHEAD;) {
        const uint8_t *section = file + at;
        if (memcmp(section, "END ", 4) == 0)
            break;
        if (memcmp(section, "QTNS", 4) == 0 && memcmp(section + 16, identity, 12) == 0)
            return section;
        at += SECTION_OVERHEAD + (size_t)read_u64(section + 8);
    }
    return NULL;
}

/* How many QTNS sections a well-formed file holds. */
static size_t count_qtns(const uint8_t *file, size_t size)
{
    size_t count = 0;
    for (size_t at = HEADER_SIZE; size - at >= SECTION_OVERHEAD;) {
        const uint8_t *section = file + at;
        if (memcmp(section, "END ", 4) == 0)
            break;
        count += memcmp(section, "QTNS", 4) == 0;
        at += SECTION_OVERHEAD + (size_t)read_u64(section + 8);
    }
    return count;
}

/* The model of a loaded model file or network file. */
static const lstm_model *model_of(const lstm_model *model, const lstm_network *network)
{
    return network != NULL ? lstm_network_model((lstm_network *)network) : model;
}

/* Loads a file the library wrote, as a model (network NULL) or a network:
 * it must load (or run out of memory). */
static lstm_status load_written(const uint8_t *bytes, size_t size, bool network, lstm_model **model,
                                lstm_network **loaded_network, lstm_precision precision)
{
    *model = NULL;
    *loaded_network = NULL;
    lstm_status status = network ? lstm_network_load_buffer(bytes, size, loaded_network)
                                 : lstm_model_load_buffer(bytes, size, model);
    CHECK(status == LSTM_OK || status == LSTM_E_NOMEM,
          "a %s file the library wrote in precision %d does not load: %d (%s)",
          network ? "network" : "model", (int)precision, (int)status, lstm_error_message());
    return status;
}

/*
 * A model (or network) loaded from a quantized file keeps its weights as the
 * file stores them: saved in the file's precision it gives every QTNS
 * payload of the file byte for byte (found by layer, direction and kind:
 * the writer orders sections its own way) and no other, and that file
 * loads, holds the same parameters, runs a step to the bits of the model
 * that was saved, and saves to the same bytes again. Nothing here may mark
 * the parameters changed (params_copy()).
 */
static void check_stored(const lstm_model *model, const lstm_network *network, const shape *s,
                         const uint8_t *file, size_t size, lstm_precision precision)
{
    const lstm_model *own = model_of(model, network);
    size_t saved_size = 0, again_size = 0;
    uint8_t *saved = save_quantized(own, network, precision, &saved_size), *again = NULL;
    lstm_model *loaded = NULL;
    lstm_network *loaded_network = NULL;
    float *params = NULL, *loaded_params = NULL, *steps = NULL, *loaded_steps = NULL;
    if (saved == NULL)
        goto out;
    /* 1.3 when the file holds EMBQ or HDQ  (a network with an embedding or
     * a head), else 1.2 */
    const bool parts =
        network != NULL && (lstm_network_embedding((lstm_network *)network) != NULL ||
                            lstm_network_head((lstm_network *)network) != NULL);
    CHECK(saved_size >= HEADER_SIZE && saved[10] == (parts ? 3 : 2) && saved[11] == 0,
          "a quantized file saved with minor version %u", (unsigned)saved[10]);
    for (size_t at = HEADER_SIZE; size - at >= SECTION_OVERHEAD;) {
        const uint8_t *section = file + at;
        const uint64_t length = read_u64(section + 8);
        if (memcmp(section, "END ", 4) == 0)
            break;
        at += SECTION_OVERHEAD + (size_t)length;
        if (memcmp(section, "QTNS", 4) != 0)
            continue;
        const uint8_t *written = find_qtns(saved, saved_size, section + 16);
        CHECK(written != NULL && read_u64(written + 8) == length &&
                  memcmp(written + 16, section + 16, (size_t)length) == 0,
              "the QTNS at byte %zu (layer %u, direction %u, kind %u) is not saved as the file "
              "holds it",
              at - SECTION_OVERHEAD - (size_t)length, (unsigned)read_u32(section + 16),
              (unsigned)read_u32(section + 20), (unsigned)read_u32(section + 24));
    }
    CHECK(count_qtns(saved, saved_size) == weight_count(s), "%zu QTNS saved for %zu weights",
          count_qtns(saved, saved_size), weight_count(s));

    if (load_written(saved, saved_size, network != NULL, &loaded, &loaded_network, precision) !=
        LSTM_OK)
        goto out;
    const lstm_model *reloaded = model_of(loaded, loaded_network);
    const size_t count = lstm_model_param_count(own), outputs = step_outputs(s);
    CHECK(lstm_model_param_count(reloaded) == count, "a reloaded quantized model's size");
    params = params_copy(own);
    loaded_params = params_copy(reloaded);
    steps = malloc(outputs * sizeof *steps);
    loaded_steps = malloc(outputs * sizeof *loaded_steps);
    if (params == NULL || loaded_params == NULL || steps == NULL || loaded_steps == NULL)
        goto out;
    CHECK(memcmp(params, loaded_params, count * sizeof *params) == 0,
          "a quantized model saved and reloaded has other parameters");
    if (one_step(own, s, precision, steps) == LSTM_OK &&
        one_step(reloaded, s, precision, loaded_steps) == LSTM_OK)
        CHECK(memcmp(steps, loaded_steps, outputs * sizeof *steps) == 0,
              "a quantized model saved and reloaded runs other bits in precision %d",
              (int)precision);
    again = save_quantized(reloaded, loaded_network, precision, &again_size);
    CHECK(again == NULL || (again_size == saved_size && memcmp(again, saved, saved_size) == 0),
          "a reloaded quantized file saves to other bytes (%zu, then %zu)", saved_size, again_size);
out:
    lstm_model_destroy(loaded);
    lstm_network_destroy(loaded_network);
    free(saved);
    free(again);
    free(params);
    free(loaded_params);
    free(steps);
    free(loaded_steps);
}

/* bf16 as docs/model-format.md has writers round: to nearest, ties to even,
 * subnormals to zero (of their sign). */
static uint16_t bf16_of(float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    if ((bits & 0x7F800000u) == 0)
        return (uint16_t)(bits >> 16 & 0x8000u);
    return (uint16_t)((bits + 0x7FFFu + (bits >> 16 & 1u)) >> 16);
}

/* int8 as writers quantize a row's part: s = max |w| / 127, q = round(w / s)
 * in [-127, 127], ties to even; all 0 where s is 0. */
static float int8_scale(const float *w, size_t count)
{
    float largest = 0.0f;
    for (size_t k = 0; k < count; k++)
        largest = fmaxf(largest, fabsf(w[k]));
    return largest / 127.0f;
}

static int8_t int8_of(float w, float scale)
{
    return scale > 0.0f ? (int8_t)rintf(fminf(fmaxf(w / scale, -127.0f), 127.0f)) : 0;
}

/* The values of a QTNS payload for the float32 tensor w [rows][cols]. */
static void quantize(const float *w, size_t rows, size_t cols, size_t split,
                     lstm_precision precision, uint8_t *out)
{
    if (precision == LSTM_PRECISION_BF16) {
        for (size_t k = 0; k < rows * cols; k++) {
            const uint16_t half = bf16_of(w[k]);
            out[2 * k] = (uint8_t)half;
            out[2 * k + 1] = (uint8_t)(half >> 8);
        }
        return;
    }
    const size_t parts = split < cols ? 2 : 1;
    for (size_t part = 0; part < parts; part++)
        for (size_t j = 0; j < rows; j++) {
            const size_t first = part == 0 ? 0 : split, count = part == 0 ? split : cols - split;
            const float scale = int8_scale(w + j * cols + first, count);
            uint32_t bits;
            memcpy(&bits, &scale, sizeof bits);
            write_u32(out + 4 * (part * rows + j), bits);
        }
    uint8_t *q = out + 4 * parts * rows;
    for (size_t j = 0; j < rows; j++)
        for (size_t k = 0; k < cols; k++) {
            const size_t first = k < split ? 0 : split, count = k < split ? split : cols - split;
            q[j * cols + k] =
                (uint8_t)int8_of(w[j * cols + k], int8_scale(w + j * cols + first, count));
        }
}

/*
 * Saved in bf16 and in int8 (but the precision it stores: check_stored()),
 * a loaded model's W and W_hr are the harness's own rounding or
 * quantization of its float32 parameters, as docs/model-format.md says
 * writers do, in QTNS sections of the documented fields, under a 1.2 header;
 * and the file loads, holding those values dequantized.
 */
static void check_requantized(const lstm_model *model, const shape *s, const float *params,
                              lstm_precision stored)
{
    static const lstm_precision precisions[] = {LSTM_PRECISION_BF16, LSTM_PRECISION_INT8};
    for (size_t n = 0; n < 2; n++) {
        const lstm_precision precision = precisions[n];
        if (precision == stored)
            continue;
        size_t size = 0;
        uint8_t *saved = save_quantized(model, NULL, precision, &size), *expected = NULL;
        lstm_model *loaded = NULL;
        lstm_network *unused = NULL;
        float *loaded_params = NULL;
        if (saved == NULL)
            continue;
        CHECK(size >= HEADER_SIZE && saved[10] == 2, "a quantized file of minor version %u",
              (unsigned)saved[10]);
        for (size_t at = HEADER_SIZE; size - at >= SECTION_OVERHEAD;) {
            const uint8_t *section = saved + at, *p = section + 16;
            const uint64_t length = read_u64(section + 8);
            if (memcmp(section, "END ", 4) == 0)
                break;
            at += SECTION_OVERHEAD + (size_t)length;
            if (memcmp(section, "QTNS", 4) != 0)
                continue;
            CHECK(read_u32(section + 4) == 1, "a QTNS written without the required bit");
            const uint32_t kind = read_u32(p + 8);
            size_t offset, rows, cols;
            CHECK((kind == LSTM_TENSOR_WEIGHT || kind == LSTM_TENSOR_PROJECTION) &&
                      lstm_model_tensor(model, read_u32(p), read_u32(p + 4), (lstm_tensor)kind,
                                        &offset, &rows, &cols) == LSTM_OK,
                  "a written QTNS names no weight of the model");
            const size_t split = kind == LSTM_TENSOR_WEIGHT ? s->state_size : cols;
            const size_t parts = split < cols ? 2 : 1;
            const size_t bytes =
                precision == LSTM_PRECISION_BF16 ? 2 * rows * cols : 4 * rows * parts + rows * cols;
            CHECK(read_u32(p + 12) == (uint32_t)precision && read_u64(p + 16) == rows &&
                      read_u64(p + 24) == cols && read_u64(p + 32) == split &&
                      length == QTNS_FIXED + bytes,
                  "a written QTNS with other fields than the format's");
            free(expected);
            expected = malloc(bytes);
            if (expected == NULL)
                goto next;
            quantize(params + offset, rows, cols, split, precision, expected);
            CHECK(memcmp(p + QTNS_FIXED, expected, bytes) == 0,
                  "W or W_hr (layer %u, direction %u, kind %u) in precision %d are not the "
                  "format's rounding or quantization of the parameters",
                  (unsigned)read_u32(p), (unsigned)read_u32(p + 4), (unsigned)kind, (int)precision);
        }
        CHECK(count_qtns(saved, size) == weight_count(s), "%zu QTNS written for %zu weights",
              count_qtns(saved, size), weight_count(s));
        if (load_written(saved, size, false, &loaded, &unused, precision) == LSTM_OK &&
            (loaded_params = params_copy(loaded)) != NULL) {
            shape t = shape_of(loaded);
            CHECK(check_values(loaded, &t, loaded_params, saved, size, check_layout(loaded, &t)) ==
                      precision,
                  "a file saved in precision %d loads as another", (int)precision);
        }
    next:
        lstm_model_destroy(loaded);
        free(loaded_params);
        free(saved);
        free(expected);
    }
}

/* ---- the optimizer -------------------------------------------------------- */

static lstm_optim *new_adam(lstm_model *model)
{
    lstm_optim_options options;
    lstm_optim *optim = NULL;
    CHECK(lstm_optim_options_init(&options, sizeof options, LSTM_OPTIM_ADAM) == LSTM_OK, "init");
    options.threads = 1;
    lstm_status status = lstm_optim_create(&options, &optim);
    CHECK(status == LSTM_OK || status == LSTM_E_NOMEM, "lstm_optim_create: %d", (int)status);
    if (status == LSTM_OK && (status = lstm_optim_add_model(optim, model)) != LSTM_OK) {
        CHECK(status == LSTM_E_NOMEM, "lstm_optim_add_model: %d", (int)status);
        lstm_optim_destroy(optim);
        optim = NULL;
    }
    return optim;
}

/* The optimizer's state in a new buffer (NULL when memory runs out). */
static uint8_t *optim_state(const lstm_optim *optim, size_t *bytes)
{
    CHECK(lstm_optim_state_size(optim, bytes) == LSTM_OK, "lstm_optim_state_size");
    uint8_t *state = malloc(*bytes);
    if (state != NULL)
        CHECK(lstm_optim_save_state(optim, state, *bytes) == LSTM_OK, "lstm_optim_save_state");
    return state;
}

/*
 * A fresh Adam bound to the model either takes the file's state or refuses
 * it and is unchanged. A taken state survives saving it with the model and
 * loading it into another Adam, and a step on it returns a status.
 */
static lstm_status check_optimizer(lstm_model *model, const uint8_t *file, size_t size)
{
    lstm_optim *optim = new_adam(model), *other = NULL;
    uint8_t *before = NULL, *after = NULL, *saved = NULL, *restored = NULL;
    size_t before_bytes = 0, after_bytes = 0, saved_size = 0, restored_bytes = 0;
    lstm_status status = LSTM_E_NOMEM;
    if (optim == NULL || (before = optim_state(optim, &before_bytes)) == NULL)
        goto out;

    status = lstm_optim_load_buffer(optim, file, size);
    CHECK((int)status >= LSTM_OK && (int)status <= LAST_STATUS, "lstm_optim_load_buffer: %d",
          (int)status);
    CHECK(status != LSTM_E_NULL && status != LSTM_E_IO, "lstm_optim_load_buffer: %d", (int)status);
    if ((after = optim_state(optim, &after_bytes)) == NULL)
        goto out;
    if (status != LSTM_OK) {
        CHECK(lstm_error_message()[0] != '\0', "no message for status %d", (int)status);
        CHECK(after_bytes == before_bytes && memcmp(before, after, after_bytes) == 0,
              "a refused optimizer state (%d) changed the optimizer", (int)status);
        goto out;
    }

    if ((saved = save_model(model, optim, &saved_size)) == NULL ||
        (other = new_adam(model)) == NULL)
        goto out;
    lstm_status again = lstm_optim_load_buffer(other, saved, saved_size);
    CHECK(again == LSTM_OK || again == LSTM_E_NOMEM, "reloading a saved state: %d (%s)", (int)again,
          lstm_error_message());
    if (again == LSTM_OK && (restored = optim_state(other, &restored_bytes)) != NULL)
        CHECK(restored_bytes == after_bytes && memcmp(restored, after, after_bytes) == 0,
              "an optimizer state changed in a save/load round trip");
    /* LSTM_E_STATE: a count of exactly LSTM_OPTIM_MAX_STEPS loads but takes no step */
    lstm_status step = lstm_optim_step(optim);
    CHECK(step == LSTM_OK || step == LSTM_E_NONFINITE || step == LSTM_E_NOMEM ||
              step == LSTM_E_STATE,
          "lstm_optim_step on a loaded state: %d", (int)step);
out:
    lstm_optim_destroy(optim);
    lstm_optim_destroy(other);
    free(before);
    free(after);
    free(saved);
    free(restored);
    return status;
}

/* ---- the network -------------------------------------------------------- */

/* What a loaded file's network sections say (the file loaded, so they are
 * well formed), read by this harness. */
typedef struct network_file {
    uint32_t input, head, loss; /* NETW's, 0 without it */
    uint64_t head_size;
    const uint8_t *embd, *head_section; /* EMBD or EMBQ, HEAD or HDQ  payloads, or NULL */
    lstm_precision embd_precision;      /* FP32 for EMBD, else EMBQ's */
    lstm_precision head_precision;      /* FP32 for HEAD, else HDQ 's */
    size_t meta_count;
} network_file;

static network_file read_network_file(const uint8_t *file, size_t size)
{
    network_file n = {0, 0, 0, 0, NULL, NULL, LSTM_PRECISION_FP32, LSTM_PRECISION_FP32, 0};
    for (size_t at = HEADER_SIZE; size - at >= SECTION_OVERHEAD;) {
        const uint8_t *section = file + at, *p = section + 16;
        if (memcmp(section, "NETW", 4) == 0) {
            n.input = read_u32(p);
            n.head = read_u32(p + 4);
            n.loss = read_u32(p + 8);
            n.head_size = read_u64(p + 16);
        } else if (memcmp(section, "EMBD", 4) == 0)
            n.embd = p;
        else if (memcmp(section, "HEAD", 4) == 0)
            n.head_section = p;
        else if (memcmp(section, "EMBQ", 4) == 0) {
            n.embd = p;
            n.embd_precision = (lstm_precision)read_u32(p + 20);
        } else if (memcmp(section, "HDQ ", 4) == 0) {
            n.head_section = p;
            n.head_precision = (lstm_precision)read_u32(p + 16);
        } else if (memcmp(section, "META", 4) == 0)
            n.meta_count++;
        else if (memcmp(section, "END ", 4) == 0)
            break;
        at += SECTION_OVERHEAD + (size_t)read_u64(section + 8);
    }
    return n;
}

/* Bytes of a matrix's values in an EMBD/HEAD (float32) or EMBQ/HDQ  section:
 * bf16; int8 with a float32 scale per row before the rows of q. */
static size_t part_bytes(lstm_precision precision, size_t rows, size_t cols)
{
    return precision == LSTM_PRECISION_BF16   ? 2 * rows * cols
           : precision == LSTM_PRECISION_INT8 ? 4 * rows + rows * cols
                                              : 4 * rows * cols;
}

/* Value k (row-major) of such a matrix, as docs/model-format.md has a
 * loader take it: the float32; the bf16's u16 << 16; q s with the row's s. */
static float part_value(const uint8_t *values, lstm_precision precision, size_t rows, size_t cols,
                        size_t k)
{
    if (precision == LSTM_PRECISION_BF16)
        return float_of((uint32_t)(values[2 * k] | values[2 * k + 1] << 8) << 16);
    if (precision == LSTM_PRECISION_INT8)
        return (float)(int8_t)values[4 * rows + k] * float_of(read_u32(values + 4 * (k / cols)));
    return float_of(read_u32(values + 4 * k));
}

/* rows x cols parameters are, bit for bit, a section's values. */
static void check_part(const char *what, const float *params, const uint8_t *values,
                       lstm_precision precision, size_t rows, size_t cols)
{
    for (size_t k = 0; k < rows * cols; k++) {
        const float value = part_value(values, precision, rows, cols, k);
        CHECK(same_bits(params[k], value), "%s[%zu] is %a; the file holds %a (precision %d)", what,
              k, (double)params[k], (double)value, (int)precision);
    }
}

/* count float32 values of the file are, bit for bit, values[]. */
static void check_floats(const char *what, const float *values, size_t count, const uint8_t *file)
{
    for (size_t k = 0; k < count; k++) {
        const uint32_t bits = read_u32(file + 4 * k);
        float value;
        memcpy(&value, &bits, sizeof value);
        CHECK(same_bits(values[k], value), "%s[%zu] is %a; the file holds %a", what, k,
              (double)values[k], (double)value);
    }
}

/* The network's metadata are the file's META sections, in their order. */
static void check_metadata(const lstm_network *network, const uint8_t *file, size_t size)
{
    size_t index = 0;
    for (size_t at = HEADER_SIZE; size - at >= SECTION_OVERHEAD;) {
        const uint8_t *section = file + at, *p = section + 16;
        if (memcmp(section, "END ", 4) == 0)
            break;
        at += SECTION_OVERHEAD + (size_t)read_u64(section + 8);
        if (memcmp(section, "META", 4) != 0)
            continue;
        const uint32_t kind = read_u32(p), key_length = read_u32(p + 4);
        const uint64_t value_length = read_u64(p + 8);
        const char *key = NULL;
        CHECK(lstm_network_meta_key(network, index, &key) == LSTM_OK, "meta_key(%zu)", index);
        CHECK(strlen(key) == key_length && memcmp(key, p + META_FIXED, key_length) == 0,
              "metadata key %zu is not the file's", index);
        if (index > 0) {
            const char *previous = NULL;
            CHECK(lstm_network_meta_key(network, index - 1, &previous) == LSTM_OK, "meta_key");
            CHECK(strcmp(previous, key) < 0, "metadata keys %zu and %zu not ascending", index - 1,
                  index);
        }
        uint32_t got_kind = 99;
        const void *value = NULL;
        size_t got_size = 0;
        CHECK(lstm_network_get_meta(network, key, &got_kind, &value, &got_size) == LSTM_OK,
              "get_meta(%zu)", index);
        CHECK(got_kind == kind && got_size == value_length &&
                  (got_size == 0 ||
                   memcmp(value, p + META_FIXED + key_length, (size_t)value_length) == 0) &&
                  ((const uint8_t *)value)[got_size] == 0,
              "metadata value %zu is not the file's", index);
        CHECK(kind == LSTM_META_BYTES || strlen(value) == got_size, "a text value holds NUL");
        index++;
    }
    CHECK(index == lstm_network_meta_count(network), "the file holds %zu META, the network %zu",
          index, lstm_network_meta_count(network));
    const char *key = NULL;
    CHECK(lstm_network_meta_key(network, index, &key) == LSTM_E_ARG && key == NULL,
          "meta_key past the end");
}

/* A network's file, in a new buffer (NULL when memory runs out). */
static uint8_t *save_network(const lstm_network *network, size_t *size)
{
    CHECK(lstm_network_save_buffer(network, NULL, NULL, 0, size) == LSTM_OK, "size query");
    uint8_t *bytes = malloc(*size);
    if (bytes == NULL)
        return NULL;
    size_t written = 0;
    CHECK(lstm_network_save_buffer(network, NULL, bytes, *size, &written) == LSTM_OK &&
              written == *size,
          "lstm_network_save_buffer wrote %zu of %zu", written, *size);
    return bytes;
}

/* save(load(save(network))) is save(network). */
static void check_network_round_trip(const lstm_network *network)
{
    size_t size, size_again;
    lstm_network *again = NULL;
    uint8_t *bytes = save_network(network, &size), *bytes_again = NULL;
    if (bytes == NULL)
        return;
    lstm_status status = lstm_network_load_buffer(bytes, size, &again);
    CHECK(status == LSTM_OK || status == LSTM_E_NOMEM, "reloading a saved network: %d (%s)",
          (int)status, lstm_error_message());
    if (status == LSTM_OK) {
        bytes_again = save_network(again, &size_again);
        CHECK(bytes_again == NULL || (size_again == size && memcmp(bytes, bytes_again, size) == 0),
              "saving a reloaded network gives other bytes (%zu, then %zu)", size, size_again);
        CHECK(lstm_network_meta_count(again) == lstm_network_meta_count(network),
              "metadata lost in a round trip");
    }
    lstm_network_destroy(again);
    free(bytes);
    free(bytes_again);
}

/* The precision of a loaded file's QTNS sections; LSTM_PRECISION_FP32 without. */
static lstm_precision file_precision(const uint8_t *file, size_t size)
{
    for (size_t at = HEADER_SIZE; size - at >= SECTION_OVERHEAD;) {
        const uint8_t *section = file + at;
        if (memcmp(section, "END ", 4) == 0)
            break;
        if (memcmp(section, "QTNS", 4) == 0)
            return (lstm_precision)read_u32(section + 16 + 12);
        at += SECTION_OVERHEAD + (size_t)read_u64(section + 8);
    }
    return LSTM_PRECISION_FP32;
}

/* One step of one sequence through a network in a precision (token 0, or
 * the features of one_step()), its output into out [O]; the status. */
static lstm_status network_step(const lstm_network *network, lstm_precision precision, float *out)
{
    lstm_network_config config;
    lstm_network_config_init(&config, sizeof config);
    lstm_network_get_config(network, &config);
    lstm_workspace *workspace = NULL;
    lstm_status status =
        lstm_workspace_create(lstm_network_model((lstm_network *)network), &workspace);
    CHECK(status == LSTM_OK || status == LSTM_E_NOMEM, "lstm_workspace_create: %d", (int)status);
    const int64_t token = 0;
    float *x = malloc(config.lstm->input_size * sizeof *x);
    if (workspace == NULL || x == NULL) {
        status = LSTM_E_NOMEM;
        goto out;
    }
    for (size_t k = 0; k < config.lstm->input_size; k++)
        x[k] = (float)((int)(k % 5) - 2) / 2.0f;
    CHECK(lstm_workspace_set_precision(workspace, precision) == LSTM_OK, "set_precision");
    const lstm_sequences sequences = {
        .struct_size = sizeof(lstm_sequences), .steps = 1, .batch = 1};
    const lstm_network_inputs inputs = {.struct_size = sizeof(lstm_network_inputs),
                                        .tokens = config.embedding != NULL ? &token : NULL,
                                        .features = config.embedding != NULL ? NULL : x};
    const lstm_network_outputs outputs = {.struct_size = sizeof(lstm_network_outputs),
                                          .output = out};
    status = lstm_network_infer(network, workspace, &sequences, &inputs, &outputs);
    /* NONFINITE: the head refuses an LSTM output that overflowed */
    CHECK(status == LSTM_OK || status == LSTM_E_NOMEM || status == LSTM_E_NONFINITE,
          "lstm_network_infer in precision %d: %d (%s)", (int)precision, (int)status,
          lstm_strerror(status));
out:
    lstm_workspace_destroy(workspace);
    free(x);
    return status;
}

/* The section of a well-formed file with this tag, or NULL. */
static const uint8_t *find_section(const uint8_t *file, size_t size, const char tag[4])
{
    for (size_t at = HEADER_SIZE; size - at >= SECTION_OVERHEAD;) {
        const uint8_t *section = file + at;
        if (memcmp(section, tag, 4) == 0)
            return section;
        if (memcmp(section, "END ", 4) == 0)
            break;
        at += SECTION_OVERHEAD + (size_t)read_u64(section + 8);
    }
    return NULL;
}

/*
 * A network's embedding or head W in a quantized file it wrote, in
 * precision (EMBQ or HDQ , required bit set): as the loaded file stored
 * it, when the file held it in that precision (its q and s kept, q s
 * unchanged since); else the harness's own rounding or quantization of
 * the network's float32 values, one part per row (quantize()).
 */
static void check_written_part(const char *what, const uint8_t *section, const float *params,
                               size_t rows, size_t cols, size_t fixed, lstm_precision precision,
                               const uint8_t *stored, lstm_precision stored_precision)
{
    const size_t bytes = part_bytes(precision, rows, cols);
    CHECK(section != NULL && read_u32(section + 4) == 1, "no %s section with the required bit",
          what);
    const uint8_t *values = section + 16 + fixed;
    if (stored != NULL && stored_precision == precision) {
        CHECK(memcmp(values, stored, bytes) == 0, "the %s is not saved as the file stores it",
              what);
        return;
    }
    uint8_t *expected = malloc(bytes);
    if (expected == NULL)
        return;
    quantize(params, rows, cols, cols, precision, expected);
    CHECK(memcmp(values, expected, bytes) == 0,
          "the %s in precision %d is not the format's rounding or quantization of its values", what,
          (int)precision);
    free(expected);
}

/*
 * A loaded network saved in a precision: its embedding and head W in EMBQ
 * and HDQ  of the documented fields and lengths, each as the file stored
 * it or quantized from its values (check_written_part()), no EMBD or HEAD,
 * under a 1.3 header when it has either; that file loads, holding their
 * values dequantized, and runs a step in the precision to the bits of the
 * network that was saved.
 */
static void check_network_quantized(const lstm_network *network, const network_file *n,
                                    lstm_precision precision)
{
    size_t size = 0;
    uint8_t *saved = save_quantized(NULL, network, precision, &size);
    lstm_network *loaded = NULL;
    float *ran = NULL, *loaded_ran = NULL;
    if (saved == NULL)
        return;
    lstm_network_config config;
    lstm_network_config_init(&config, sizeof config);
    lstm_network_get_config(network, &config);
    lstm_embedding *embedding = lstm_network_embedding((lstm_network *)network);
    lstm_dense *head = lstm_network_head((lstm_network *)network);
    CHECK(saved[10] == (embedding != NULL || head != NULL ? 3 : 2),
          "a quantized network file of minor version %u", (unsigned)saved[10]);
    CHECK(find_section(saved, size, "EMBD") == NULL && find_section(saved, size, "HEAD") == NULL,
          "a quantized network file with a float32 embedding or head");
    const uint8_t *embq = find_section(saved, size, "EMBQ"),
                  *hdq = find_section(saved, size, "HDQ ");
    CHECK((embq != NULL) == (embedding != NULL) && (hdq != NULL) == (head != NULL),
          "EMBQ and HDQ  are not the network's parts");
    float *values;
    size_t count;
    if (embedding != NULL && lstm_embedding_params(embedding, &values, &count) == LSTM_OK) {
        const size_t V = config.embedding->num_embeddings, E = config.embedding->embedding_dim;
        CHECK(read_u64(embq + 16) == V && read_u64(embq + 24) == E &&
                  read_u32(embq + 16 + 20) == (uint32_t)precision &&
                  read_u64(embq + 8) == EMBD_FIXED + part_bytes(precision, V, E),
              "an EMBQ with other fields than the format's");
        check_written_part("embedding", embq, values, V, E, EMBD_FIXED, precision,
                           n->embd + EMBD_FIXED, n->embd_precision);
    }
    if (head != NULL && lstm_dense_params(head, &values, &count) == LSTM_OK) {
        const size_t O = config.head_size, K = count / O - 1;
        const uint8_t *p = hdq + 16;
        CHECK(read_u64(p) == O && read_u64(p + 8) == K && read_u32(p + 16) == (uint32_t)precision &&
                  read_u32(p + 20) == 0 &&
                  read_u64(hdq + 8) == HDQ_FIXED + part_bytes(precision, O, K) + 4 * O,
              "an HDQ  with other fields than the format's");
        check_written_part("head W", hdq, values, O, K, HDQ_FIXED, precision,
                           n->head_section + HDQ_FIXED, n->head_precision);
        check_floats("head b written", values + O * K, O,
                     p + HDQ_FIXED + part_bytes(precision, O, K));
    }
    lstm_status status = lstm_network_load_buffer(saved, size, &loaded);
    CHECK(status == LSTM_OK || status == LSTM_E_NOMEM,
          "a network file the library wrote in precision %d does not load: %d (%s)", (int)precision,
          (int)status, lstm_error_message());
    if (status != LSTM_OK)
        goto out;
    embedding = lstm_network_embedding(loaded);
    head = lstm_network_head(loaded);
    if (embedding != NULL && lstm_embedding_params(embedding, &values, &count) == LSTM_OK)
        check_part("a reloaded embedding", values, embq + 16 + EMBD_FIXED, precision,
                   config.embedding->num_embeddings, config.embedding->embedding_dim);
    if (head != NULL && lstm_dense_params(head, &values, &count) == LSTM_OK)
        check_part("a reloaded head W", values, hdq + 16 + HDQ_FIXED, precision, config.head_size,
                   count / config.head_size - 1);
    /* the output: O, or without a head the LSTM's D R */
    const size_t D = (config.lstm->flags & LSTM_BIDIRECTIONAL) ? 2 : 1;
    const size_t R =
        config.lstm->proj_size != 0 ? config.lstm->proj_size : config.lstm->hidden_size;
    const size_t O = head != NULL ? config.head_size : D * R;
    ran = malloc(O * sizeof *ran);
    loaded_ran = malloc(O * sizeof *loaded_ran);
    if (ran == NULL || loaded_ran == NULL)
        goto out;
    const lstm_status first = network_step(network, precision, ran);
    const lstm_status second = network_step(loaded, precision, loaded_ran);
    if (first != LSTM_E_NOMEM && second != LSTM_E_NOMEM)
        CHECK(first == second &&
                  (first != LSTM_OK || memcmp(ran, loaded_ran, O * sizeof *ran) == 0),
              "a network saved in precision %d and reloaded runs other bits in it (%d, %d)",
              (int)precision, (int)first, (int)second);
out:
    lstm_network_destroy(loaded);
    free(saved);
    free(ran);
    free(loaded_ran);
}

static char network_sentinel; /* what the network loader's output holds until it succeeds */
#define NETWORK_UNTOUCHED ((lstm_network *)(void *)&network_sentinel)

/* The network's loader on the same bytes: it agrees with the model's
 * (model_status), and a network it gives holds the file's parts. */
static void check_network(const uint8_t *data, size_t size, lstm_status model_status,
                          lstm_model *model)
{
    lstm_network *network = NETWORK_UNTOUCHED;
    lstm_status status = lstm_network_load_buffer(data, size, &network);
    CHECK(status == model_status || status == LSTM_E_NOMEM || model_status == LSTM_E_NOMEM,
          "lstm_network_load_buffer gave %d (%s); lstm_model_load_buffer %d", (int)status,
          lstm_error_message(), (int)model_status);
    if (status != LSTM_OK) {
        CHECK(network == NETWORK_UNTOUCHED, "a failed network load wrote its output");
        CHECK(lstm_error_message()[0] != '\0', "no message for status %d", (int)status);
        return;
    }
    CHECK(network != NETWORK_UNTOUCHED && network != NULL, "a network load returned nothing");
    const network_file n = read_network_file(data, size);
    lstm_network_config config;
    CHECK(lstm_network_config_init(&config, sizeof config) == LSTM_OK, "config_init");
    CHECK(lstm_network_get_config(network, &config) == LSTM_OK, "get_config");
    CHECK(config.head == n.head && config.loss == n.loss && config.head_size == n.head_size &&
              (config.embedding != NULL) == (n.input == 1) && config.lstm != NULL,
          "the network's configuration is not the file's NETW");
    const lstm_model *inner = lstm_network_model(network);
    const lstm_precision precision = file_precision(data, size);
    if (precision != LSTM_PRECISION_FP32) {
        const shape inner_shape = shape_of(inner);
        check_stored(NULL, network, &inner_shape, data, size, precision);
    }
    float *values;
    size_t count = lstm_model_param_count(inner);
    if (model != NULL) {
        float *inner_values = params_copy(inner), *model_values = params_copy(model);
        CHECK(inner_values == NULL || model_values == NULL ||
                  (count == lstm_model_param_count(model) &&
                   memcmp(inner_values, model_values, count * sizeof *inner_values) == 0),
              "the network's LSTM is not the model's loader's");
        free(inner_values);
        free(model_values);
    }
    lstm_embedding *embedding = lstm_network_embedding(network);
    CHECK((embedding != NULL) == (n.embd != NULL), "an embedding the file does not have");
    size_t total = count;
    if (embedding != NULL) {
        CHECK(lstm_embedding_params(embedding, &values, &count) == LSTM_OK, "embedding params");
        CHECK(count == read_u64(n.embd) * read_u64(n.embd + 8) &&
                  config.embedding->num_embeddings == read_u64(n.embd) &&
                  config.embedding->embedding_dim == config.lstm->input_size,
              "the embedding's shape is not the file's");
        check_part("embedding", values, n.embd + EMBD_FIXED, n.embd_precision,
                   config.embedding->num_embeddings, config.embedding->embedding_dim);
        total += count;
    }
    lstm_dense *head = lstm_network_head(network);
    CHECK((head != NULL) == (n.head_section != NULL), "a head the file does not have");
    if (head != NULL) {
        CHECK(lstm_dense_params(head, &values, &count) == LSTM_OK, "head params");
        const uint64_t out = read_u64(n.head_section), in = read_u64(n.head_section + 8);
        CHECK(count == out * in + out && out == n.head_size, "the head's shape is not the file's");
        const uint8_t *W =
            n.head_section + (n.head_precision == LSTM_PRECISION_FP32 ? HEAD_FIXED : HDQ_FIXED);
        check_part("head W", values, W, n.head_precision, (size_t)out, (size_t)in);
        check_floats("head b", values + out * in, (size_t)out,
                     W + part_bytes(n.head_precision, (size_t)out, (size_t)in));
        total += count;
    }
    CHECK(lstm_network_param_count(network) == total, "param_count %zu, parts %zu",
          lstm_network_param_count(network), total);
    CHECK(lstm_network_meta_count(network) == n.meta_count, "META count");
    check_metadata(network, data, size);
    check_network_round_trip(network);
    for (int p = LSTM_PRECISION_BF16; p <= LSTM_PRECISION_INT8; p++)
        check_network_quantized(network, &n, (lstm_precision)p);
    lstm_network_destroy(network);
}

/* ---- one input ------------------------------------------------------------ */

static char sentinel; /* what the loader's output holds until it succeeds */
#define UNTOUCHED ((lstm_model *)(void *)&sentinel)

/* Loads one buffer and checks everything; the statuses are for the driver. */
static lstm_status load_and_check(const uint8_t *data, size_t size, lstm_status *optim_status)
{
    lstm_model *model = UNTOUCHED;
    lstm_status status = lstm_model_load_buffer(data, size, &model);
    *optim_status = LSTM_E_STATE; /* not tried */
    if (status != LSTM_OK) {
        CHECK(status == LSTM_E_FORMAT || status == LSTM_E_UNSUPPORTED || status == LSTM_E_NOMEM,
              "lstm_model_load_buffer returned %d (%s), not a documented status", (int)status,
              lstm_strerror(status));
        CHECK(model == UNTOUCHED, "a failed load wrote its output");
        CHECK(lstm_error_message()[0] != '\0', "no message for status %d", (int)status);
        check_network(data, size, status, NULL);
        return status;
    }
    CHECK(model != UNTOUCHED && model != NULL, "a successful load returned no model");
    CHECK(lstm_model_param_count(model) > 0, "a loaded model has no parameters");
    shape s = shape_of(model);
    size_t tensors = check_layout(model, &s);
    float *params = params_copy(model); /* the model left as loaded */
    if (params != NULL) {
        const lstm_precision precision = check_values(model, &s, params, data, size, tensors);
        if (precision != LSTM_PRECISION_FP32)
            check_stored(model, NULL, &s, data, size, precision);
        for (int p = LSTM_PRECISION_FP32; p <= LSTM_PRECISION_INT8; p++)
            check_forward(model, &s, params, (lstm_precision)p);
        check_requantized(model, &s, params, precision);
        free(params);
    }
    check_round_trip(model, &s);
    check_network(data, size, status, model); /* before an optimizer step changes the model */
    *optim_status = check_optimizer(model, data, size);
    lstm_model_destroy(model);
    return status;
}

/* The input as it is, then with its checksums repaired when that changes it. */
static void run_input(const uint8_t *data, size_t size, lstm_status statuses[4])
{
    statuses[0] = load_and_check(data, size, &statuses[1]);
    statuses[2] = statuses[0];
    statuses[3] = statuses[1];
    uint8_t *fixed = malloc(size != 0 ? size : 1);
    if (fixed == NULL)
        return;
    if (size != 0)
        memcpy(fixed, data, size);
    if (fix_checksums(fixed, size)) {
        CHECK(statuses[0] != LSTM_OK, "a file with wrong checksums loaded");
        statuses[2] = load_and_check(fixed, size, &statuses[3]);
    }
    free(fixed);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    crc_table_init();
    static const uint8_t check_value[] = "123456789";
    CHECK(crc32c_of(check_value, 9) == 0xE3069283u, "CRC-32C of \"123456789\"");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lstm_status statuses[4];
    run_input(data, size, statuses);
    return 0;
}

#ifndef LSTM_FUZZ_LIBFUZZER
/* ---- the plain driver: replay files, write the seed corpus ---------------- */

#  include <sys/stat.h>

static void write_u64(uint8_t *p, uint64_t value)
{
    for (int k = 0; k < 8; k++)
        p[k] = (uint8_t)(value >> (8 * k));
}

/* A growing byte buffer; exits on allocation failure (a test tool). */
typedef struct bytes {
    uint8_t *data;
    size_t size;
} bytes;

static void append(bytes *b, const void *data, size_t size)
{
    uint8_t *grown = realloc(b->data, b->size + size + 1);
    if (grown == NULL) {
        fprintf(stderr, "fuzz_load: out of memory\n");
        exit(2);
    }
    b->data = grown;
    if (size != 0)
        memcpy(b->data + b->size, data, size);
    b->size += size;
}

static bool write_seed(const char *directory, const char *name, const uint8_t *data, size_t size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", directory, name);
    FILE *file = fopen(path, "wb");
    bool ok = file != NULL && (size == 0 || fwrite(data, 1, size, file) == size);
    ok = file != NULL && fclose(file) == 0 && ok;
    if (!ok)
        fprintf(stderr, "fuzz_load: cannot write %s\n", path);
    else
        printf("%6zu  %s\n", size, path);
    return ok;
}

typedef struct seed_model {
    const char *name;
    size_t input_size, hidden_size, num_layers, proj_size;
    uint32_t flags;
    double dropout;
    int optimizer; /* -1 none, else an lstm_optim_kind, with two steps taken */
    uint32_t optim_flags;
} seed_model;

/* A seed model's file: parameters from lstm_model_init(), and for an
 * optimizer two steps on made-up gradients, so that its state is not zero. */
static bytes make_seed(const seed_model *seed)
{
    lstm_config config;
    lstm_model *model = NULL;
    lstm_optim *optim = NULL;
    bytes file = {NULL, 0};
    lstm_config_init(&config, sizeof config);
    config.input_size = seed->input_size;
    config.hidden_size = seed->hidden_size;
    config.num_layers = seed->num_layers;
    config.proj_size = seed->proj_size;
    config.flags = seed->flags;
    config.dropout = seed->dropout;
    CHECK(lstm_model_create(&config, &model) == LSTM_OK, "%s: %s", seed->name,
          lstm_error_message());
    CHECK(lstm_model_init(model, 20240601u, LSTM_INIT_FORGET_BIAS_ONE) == LSTM_OK, "init");
    if (seed->optimizer >= 0) {
        lstm_optim_options options;
        lstm_optim_options_init(&options, sizeof options, (lstm_optim_kind)seed->optimizer);
        options.flags = seed->optim_flags;
        options.threads = 1;
        if (seed->optimizer == LSTM_OPTIM_SGD)
            options.momentum = 0.9;
        CHECK(lstm_optim_create(&options, &optim) == LSTM_OK, "%s", lstm_error_message());
        CHECK(lstm_optim_add_model(optim, model) == LSTM_OK, "%s", lstm_error_message());
        for (int step = 0; step < 2; step++) {
            float *grads;
            size_t count;
            lstm_model_grads(model, &grads, &count);
            for (size_t k = 0; k < count; k++)
                grads[k] = 0.01f * (float)((k * 7 + (size_t)step * 3) % 11) - 0.05f;
            CHECK(lstm_optim_step(optim) == LSTM_OK, "%s", lstm_error_message());
        }
    }
    size_t size;
    uint8_t *data = save_model(model, optim, &size);
    CHECK(data != NULL, "out of memory");
    file.data = data;
    file.size = size;
    lstm_optim_destroy(optim);
    lstm_model_destroy(model);
    return file;
}

/* A seed model's file in bf16 or int8 (no optimizer: a quantized file has none). */
static bytes make_quantized_seed(const seed_model *seed, lstm_precision precision)
{
    lstm_config config;
    lstm_model *model = NULL;
    lstm_config_init(&config, sizeof config);
    config.input_size = seed->input_size;
    config.hidden_size = seed->hidden_size;
    config.num_layers = seed->num_layers;
    config.proj_size = seed->proj_size;
    config.flags = seed->flags;
    config.dropout = seed->dropout;
    CHECK(lstm_model_create(&config, &model) == LSTM_OK, "%s: %s", seed->name,
          lstm_error_message());
    CHECK(lstm_model_init(model, 20240601u, LSTM_INIT_FORGET_BIAS_ONE) == LSTM_OK, "init");
    bytes file = {NULL, 0};
    file.data = save_quantized(model, NULL, precision, &file.size);
    CHECK(file.data != NULL, "out of memory");
    lstm_model_destroy(model);
    return file;
}

typedef struct seed_network {
    const char *name;
    size_t input_size, hidden_size, proj_size;
    uint32_t flags;
    size_t vocab; /* 0: features */
    uint32_t head, loss;
    size_t head_size;
    int metadata; /* entries */
} seed_network;

/* A seed network's file: lstm_network_init() parameters and a few metadata
 * entries, text and bytes. */
static bytes make_network_seed(const seed_network *seed, lstm_precision precision)
{
    lstm_config lstm;
    lstm_config_init(&lstm, sizeof lstm);
    lstm.input_size = seed->input_size;
    lstm.hidden_size = seed->hidden_size;
    lstm.proj_size = seed->proj_size;
    lstm.flags = seed->flags;
    lstm_embedding_config embedding;
    lstm_embedding_config_init(&embedding, sizeof embedding);
    embedding.num_embeddings = seed->vocab;
    embedding.embedding_dim = seed->input_size;
    embedding.flags = LSTM_EMBEDDING_PADDING;
    lstm_network_config config;
    lstm_network_config_init(&config, sizeof config);
    config.lstm = &lstm;
    config.embedding = seed->vocab != 0 ? &embedding : NULL;
    config.head = seed->head;
    config.loss = seed->loss;
    config.head_size = seed->head_size;
    lstm_network *network = NULL;
    CHECK(lstm_network_create(&config, &network) == LSTM_OK, "%s: %s", seed->name,
          lstm_error_message());
    CHECK(lstm_network_init(network, 20261207u, 0) == LSTM_OK, "init");
    static const char *const keys[] = {"description", "labels", "source", "vocabulary"};
    static const char *const texts[] = {"a seed", "no\nyes", "torch", "<pad>\na\nb\nc\xc3\xa9"};
    for (int k = 0; k < seed->metadata && k < 4; k++)
        CHECK(lstm_network_set_meta(network, keys[k], LSTM_META_TEXT, texts[k], strlen(texts[k])) ==
                  LSTM_OK,
              "%s", lstm_error_message());
    if (seed->metadata > 4)
        CHECK(lstm_network_set_meta(network, "bytes", LSTM_META_BYTES, "\0\1\377", 3) == LSTM_OK,
              "%s", lstm_error_message());
    size_t size;
    bytes file = {precision == LSTM_PRECISION_FP32
                      ? save_network(network, &size)
                      : save_quantized(NULL, network, precision, &size),
                  0};
    CHECK(file.data != NULL, "out of memory");
    file.size = size;
    lstm_network_destroy(network);
    return file;
}

/* Where each section of a well-formed file starts, and how many there are. */
static size_t find_sections(const bytes *file, size_t *starts, size_t capacity)
{
    size_t count = 0;
    for (size_t at = HEADER_SIZE; at < file->size && count < capacity; count++) {
        starts[count] = at;
        at += SECTION_OVERHEAD + (size_t)read_u64(file->data + at + 8);
    }
    return count;
}

#  define NO_SECTION SIZE_MAX

/* The file with section `drop` left out (NO_SECTION: none), section
 * `twice` written twice, and `extra` (a whole section) inserted before END. */
static bytes rebuild(const bytes *file, size_t drop, size_t twice, const bytes *extra)
{
    size_t starts[64];
    const size_t count = find_sections(file, starts, 64);
    bytes out = {NULL, 0};
    append(&out, file->data, HEADER_SIZE);
    for (size_t n = 0; n < count; n++) {
        const size_t length = (n + 1 < count ? starts[n + 1] : file->size) - starts[n];
        if (n + 1 == count && extra != NULL)
            append(&out, extra->data, extra->size);
        for (size_t copies = n == twice ? 2 : 1; n != drop && copies > 0; copies--)
            append(&out, file->data + starts[n], length);
    }
    return out;
}

/* A section with a valid CRC. */
static bytes section(const char tag[4], uint32_t flags, const void *payload, size_t length)
{
    bytes out = {NULL, 0};
    uint8_t head[16];
    memcpy(head, tag, 4);
    write_u32(head + 4, flags);
    write_u64(head + 8, length);
    append(&out, head, sizeof head);
    append(&out, payload, length);
    uint8_t crc[4];
    write_u32(crc, crc32c_of(out.data, out.size));
    append(&out, crc, sizeof crc);
    return out;
}

static bool emit(const char *directory, const char *name, bytes *file)
{
    bool ok = write_seed(directory, name, file->data, file->size);
    free(file->data);
    file->data = NULL;
    return ok;
}

/* The file with its section n replaced by `replacement` (a whole section). */
static bytes replace_section(const bytes *file, size_t n, const uint8_t *replacement, size_t size)
{
    size_t starts[64];
    const size_t count = find_sections(file, starts, 64);
    CHECK(n < count, "section %zu of %zu", n, count);
    const size_t end = n + 1 < count ? starts[n + 1] : file->size;
    bytes out = {NULL, 0};
    append(&out, file->data, starts[n]);
    append(&out, replacement, size);
    append(&out, file->data + end, file->size - end);
    return out;
}

/* A copy of a file. */
static bytes copy_of(const bytes *file)
{
    bytes out = {NULL, 0};
    append(&out, file->data, file->size);
    return out;
}

static uint32_t bits_of(float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

/*
 * Quantized files (format 1.2): int8 and bf16 models of two bidirectional
 * layers with projection and peepholes (`model_seed`, whose sections are
 * 0 CONF, then per block W (QTNS), b, W_hr (QTNS), p, then END), two
 * valid edge cases (a q of -128, the largest scale),
 * and a file breaking each QTNS rule, all from the library's own writer
 * with the harness's fields edited and CRCs repaired.
 */
static bool make_quantized_corpus(const char *directory, const seed_model *model_seed)
{
    bool ok = true;
    bytes file;
    const bytes int8 = make_quantized_seed(model_seed, LSTM_PRECISION_INT8);
    const bytes bf16 = make_quantized_seed(model_seed, LSTM_PRECISION_BF16);
    const bytes float32 = make_seed(model_seed);
    size_t starts[32], bf16_starts[32], float_starts[32];
    CHECK(find_sections(&int8, starts, 32) == 18 && find_sections(&bf16, bf16_starts, 32) == 18 &&
              find_sections(&float32, float_starts, 32) == 18,
          "sections of the quantized seeds");
    /* section 1: W of layer 0, direction 0, 12 x 2 split at 1; its payload */
    uint8_t *const w = int8.data + starts[1] + 16;
    const size_t w_length = (size_t)read_u64(int8.data + starts[1] + 8);
    CHECK(memcmp(int8.data + starts[1], "QTNS", 4) == 0 && read_u64(w + 16) == 12 &&
              read_u64(w + 24) == 2 && read_u64(w + 32) == 1,
          "the int8 seed's first QTNS");
    const size_t q_at = QTNS_FIXED + 4 * 2 * 12; /* its first q */

    file = copy_of(&int8);
    ok &= emit(directory, "model-q-int8-l2-bidir-proj-peep.lstm", &file);
    file = copy_of(&bf16);
    ok &= emit(directory, "model-q-bf16-l2-bidir-proj-peep.lstm", &file);

    file = copy_of(&int8);
    file.data[starts[1] + 16 + q_at] = 0x80; /* q = -128: read, never written */
    fix_checksums(file.data, file.size);
    ok &= emit(directory, "model-q-int8-q-minus-128.lstm", &file);

    file = copy_of(&int8);
    write_u32(file.data + starts[1] + 16 + QTNS_FIXED,
              bits_of(FLT_MAX / 128.0f)); /* 128 s finite */
    fix_checksums(file.data, file.size);
    ok &= emit(directory, "model-q-int8-largest-scale.lstm", &file);

    file = copy_of(&int8);
    write_u32(file.data + starts[1] + 16 + 12, 3); /* precision 3 */
    fix_checksums(file.data, file.size);
    ok &= emit(directory, "bad-qtns-unknown-precision.lstm", &file);

    /* W_hr of layer 0, direction 0 in bf16 in an int8 file */
    const size_t bf16_end = bf16_starts[4];
    file = replace_section(&int8, 3, bf16.data + bf16_starts[3], bf16_end - bf16_starts[3]);
    ok &= emit(directory, "bad-qtns-two-precisions.lstm", &file);

    /* W of layer 0, direction 0 as a float32 TENS in an int8 file */
    file = replace_section(&int8, 1, float32.data + float_starts[1],
                           float_starts[2] - float_starts[1]);
    ok &= emit(directory, "bad-qtns-float32-weight.lstm", &file);

    static const struct {
        const char *name;
        float scale;
    } scales[] = {{"bad-qtns-scale-nan.lstm", NAN},
                  {"bad-qtns-scale-negative.lstm", -1.0f},
                  {"bad-qtns-scale-too-large.lstm", FLT_MAX / 64.0f}};
    for (size_t n = 0; n < 3; n++) {
        file = copy_of(&int8);
        write_u32(file.data + starts[1] + 16 + QTNS_FIXED + 4 * 13, bits_of(scales[n].scale));
        fix_checksums(file.data, file.size);
        ok &= emit(directory, scales[n].name, &file);
    }

    static const struct {
        const char *name;
        uint16_t value;
    } halves[] = {{"bad-qtns-bf16-subnormal.lstm", 0x8001},
                  {"bad-qtns-bf16-infinite.lstm", 0x7F80}};
    for (size_t n = 0; n < 2; n++) {
        file = copy_of(&bf16);
        uint8_t *value = file.data + bf16_starts[1] + 16 + QTNS_FIXED + 2 * 5;
        value[0] = (uint8_t)halves[n].value;
        value[1] = (uint8_t)(halves[n].value >> 8);
        fix_checksums(file.data, file.size);
        ok &= emit(directory, halves[n].name, &file);
    }

    file = copy_of(&int8);
    write_u64(file.data + starts[1] + 16 + 32, 2); /* split 2 = cols: one part */
    fix_checksums(file.data, file.size);
    ok &= emit(directory, "bad-qtns-wrong-split.lstm", &file);

    bytes shorter = section("QTNS", 1, w, w_length - 1);
    file = replace_section(&int8, 1, shorter.data, shorter.size);
    ok &= emit(directory, "bad-qtns-wrong-length.lstm", &file);
    free(shorter.data);

    file = copy_of(&int8);
    write_u32(file.data + starts[1] + 4, 0); /* required bit clear */
    fix_checksums(file.data, file.size);
    ok &= emit(directory, "bad-qtns-not-required.lstm", &file);

    free(int8.data);
    free(bf16.data);
    free(float32.data);
    return ok;
}

/*
 * Quantized networks (format 1.3): the token network in int8 and bf16
 * (sections 0 CONF, 1 NETW, 2 EMBQ, 3 QTNS, 4 TENS, 5 HDQ , 6 .. 10 META,
 * 11 END); as liblstm 0.7.0 wrote it (1.2: EMBD and HEAD in float32 beside
 * the QTNS, spliced from the float32 file); a valid edge case, its int8
 * rows short of 127 (q scaled by 100 / 127: kept as stored); and a file
 * breaking each EMBQ and HDQ  rule, edited with the CRCs repaired.
 */
static bool make_quantized_network_corpus(const char *directory, const seed_network *seed)
{
    bool ok = true;
    bytes file;
    const bytes int8 = make_network_seed(seed, LSTM_PRECISION_INT8);
    const bytes bf16 = make_network_seed(seed, LSTM_PRECISION_BF16);
    const bytes float32 = make_network_seed(seed, LSTM_PRECISION_FP32);
    size_t starts[16], bf16_starts[16], float_starts[16];
    CHECK(find_sections(&int8, starts, 16) == 12 && find_sections(&bf16, bf16_starts, 16) == 12 &&
              find_sections(&float32, float_starts, 16) == 12 &&
              memcmp(int8.data + starts[2], "EMBQ", 4) == 0 &&
              memcmp(int8.data + starts[5], "HDQ ", 4) == 0,
          "sections of the quantized network seeds");
    const size_t V = seed->vocab, E = seed->input_size, O = seed->head_size;
    const uint8_t *const embq = int8.data + starts[2] + 16;
    const size_t embq_length = (size_t)read_u64(int8.data + starts[2] + 8);

    file = copy_of(&int8);
    ok &= emit(directory, "network-q-int8-tokens-last-ce-meta.lstm", &file);
    file = copy_of(&bf16);
    ok &= emit(directory, "network-q-bf16-tokens-last-ce-meta.lstm", &file);

    /* 1.2: the float32 EMBD and HEAD in place of EMBQ and HDQ  */
    file = replace_section(&int8, 5, float32.data + float_starts[5],
                           float_starts[6] - float_starts[5]);
    bytes old = replace_section(&file, 2, float32.data + float_starts[2],
                                float_starts[3] - float_starts[2]);
    free(file.data);
    old.data[10] = 2;
    fix_checksums(old.data, old.size);
    ok &= emit(directory, "network-q12-int8-tokens-last-ce-meta.lstm", &old);

    file = copy_of(&int8);
    for (size_t k = 0; k < V * E; k++) {
        uint8_t *q = file.data + starts[2] + 16 + EMBD_FIXED + 4 * V + k;
        *q = (uint8_t)(int8_t)lrint((int8_t)*q * 100.0 / 127.0);
    }
    fix_checksums(file.data, file.size);
    ok &= emit(directory, "network-q-int8-stored-rows.lstm", &file);

    file = copy_of(&int8);
    write_u32(file.data + starts[2] + 16 + 20, 3); /* precision 3 */
    fix_checksums(file.data, file.size);
    ok &= emit(directory, "bad-embq-unknown-precision.lstm", &file);

    file = copy_of(&int8);
    write_u32(file.data + starts[5] + 16 + 16, LSTM_PRECISION_BF16); /* after an int8 QTNS */
    fix_checksums(file.data, file.size);
    ok &= emit(directory, "bad-hdq-two-precisions.lstm", &file);

    file = copy_of(&int8);
    write_u32(file.data + starts[2] + 16 + EMBD_FIXED + 4, bits_of(NAN));
    fix_checksums(file.data, file.size);
    ok &= emit(directory, "bad-embq-scale-nan.lstm", &file);

    file = copy_of(&int8);
    write_u32(file.data + starts[5] + 16 + HDQ_FIXED, bits_of(-1.0f));
    fix_checksums(file.data, file.size);
    ok &= emit(directory, "bad-hdq-scale-negative.lstm", &file);

    file = copy_of(&int8);
    file.data[starts[2] + 16 + EMBD_FIXED + 4 * V + 3] = 0x80; /* q = -128 */
    fix_checksums(file.data, file.size);
    ok &= emit(directory, "bad-embq-q-minus-128.lstm", &file);

    file = copy_of(&int8);
    file.data[starts[5] + 16 + HDQ_FIXED + 4 * O + 1] = 0x80;
    fix_checksums(file.data, file.size);
    ok &= emit(directory, "bad-hdq-q-minus-128.lstm", &file);

    file = copy_of(&int8);
    write_u32(file.data + starts[5] + 16 + 20, 1); /* reserved */
    fix_checksums(file.data, file.size);
    ok &= emit(directory, "bad-hdq-reserved.lstm", &file);

    file = copy_of(&int8);
    write_u32(file.data + starts[6] - 4 - 4, bits_of(NAN)); /* its last bias */
    fix_checksums(file.data, file.size);
    ok &= emit(directory, "bad-hdq-bias-nan.lstm", &file);

    file = copy_of(&bf16);
    file.data[bf16_starts[2] + 16 + EMBD_FIXED + 2] = 0x01; /* a subnormal */
    file.data[bf16_starts[2] + 16 + EMBD_FIXED + 3] = 0x00;
    fix_checksums(file.data, file.size);
    ok &= emit(directory, "bad-embq-bf16-subnormal.lstm", &file);

    bytes shorter = section("EMBQ", 1, embq, embq_length - 1);
    file = replace_section(&int8, 2, shorter.data, shorter.size);
    ok &= emit(directory, "bad-embq-wrong-length.lstm", &file);
    free(shorter.data);

    file = copy_of(&int8);
    write_u32(file.data + starts[2] + 4, 0); /* required bit clear */
    fix_checksums(file.data, file.size);
    ok &= emit(directory, "bad-embq-not-required.lstm", &file);

    /* EMBQ in a file whose LSTM is float32 */
    file = replace_section(&float32, 2, int8.data + starts[2], starts[3] - starts[2]);
    ok &= emit(directory, "bad-embq-float32-lstm.lstm", &file);

    free(int8.data);
    free(bf16.data);
    free(float32.data);
    return ok;
}

static int make_corpus(const char *directory)
{
    enum { NONE = -1 };
    static const seed_model models[] = {
        {"model-l1.lstm", 3, 4, 1, 0, 0, 0.0, NONE, 0},
        {"model-l1-adam.lstm", 3, 4, 1, 0, 0, 0.0, LSTM_OPTIM_ADAM, 0},
        {"model-l1-sgd-momentum.lstm", 2, 2, 1, 0, 0, 0.0, LSTM_OPTIM_SGD, 0},
        {"model-l1-adam-amsgrad.lstm", 2, 2, 1, 0, LSTM_PEEPHOLE, 0.0, LSTM_OPTIM_ADAM,
         LSTM_OPTIM_AMSGRAD},
        {"model-l2-bidir-proj-peep.lstm", 1, 3, 2, 1, LSTM_BIDIRECTIONAL | LSTM_PEEPHOLE, 0.0, NONE,
         0},
        {"model-l2-bidir-proj-peep-adam.lstm", 1, 3, 2, 1, LSTM_BIDIRECTIONAL | LSTM_PEEPHOLE, 0.0,
         LSTM_OPTIM_ADAM, 0},
        {"model-l3-proj-batchfirst-dropout.lstm", 2, 3, 3, 2, LSTM_BATCH_FIRST, 0.25, NONE, 0},
    };
    bool ok = true;
    for (size_t n = 0; n < sizeof models / sizeof models[0]; n++) {
        bytes file = make_seed(&models[n]);
        ok &= emit(directory, models[n].name, &file);
    }

    /* Variations of the one-layer model: sections 0 CONF, 1 weight, 2 bias, 3 END. */
    const seed_model base = models[0];
    bytes file;
    const bytes valid = make_seed(&base);

    file = (bytes){NULL, 0};
    append(&file, valid.data, 11);
    ok &= emit(directory, "bad-truncated-header.lstm", &file);

    file = (bytes){NULL, 0};
    append(&file, valid.data, HEADER_SIZE + 68 + 100);
    ok &= emit(directory, "bad-truncated-tensor.lstm", &file);

    file = (bytes){NULL, 0};
    append(&file, valid.data, valid.size);
    file.data[12] ^= 0x01;
    ok &= emit(directory, "bad-header-crc.lstm", &file);

    size_t starts[8];
    find_sections(&valid, starts, 8);
    file = (bytes){NULL, 0};
    append(&file, valid.data, valid.size);
    file.data[starts[1] + 16 + TENS_FIXED + 9 + 5] ^= 0x40; /* a float of weight_l0 */
    ok &= emit(directory, "bad-section-crc.lstm", &file);

    file = (bytes){NULL, 0};
    append(&file, valid.data, valid.size);
    write_u32(file.data + starts[1] + 16 + TENS_FIXED + 9, 0x7FC00000u); /* a NaN */
    fix_checksums(file.data, file.size);
    ok &= emit(directory, "bad-tensor-nan.lstm", &file);

    file = (bytes){NULL, 0};
    append(&file, valid.data, valid.size);
    file.data[8] = 2; /* major version 2, with a valid header CRC */
    fix_checksums(file.data, file.size);
    ok &= emit(directory, "bad-major-version.lstm", &file);

    file = (bytes){NULL, 0};
    append(&file, valid.data, valid.size);
    file.data[10] = 7; /* minor version 7: still loads */
    fix_checksums(file.data, file.size);
    ok &= emit(directory, "model-minor-version.lstm", &file);

    static const char note[] = "from a later version";
    bytes extra = section("XTRA", 0, note, sizeof note - 1);
    file = rebuild(&valid, NO_SECTION, NO_SECTION, &extra);
    ok &= emit(directory, "model-unknown-optional-section.lstm", &file);
    free(extra.data);

    extra = section("XREQ", 1, note, sizeof note - 1);
    file = rebuild(&valid, NO_SECTION, NO_SECTION, &extra);
    ok &= emit(directory, "bad-unknown-required-section.lstm", &file);
    free(extra.data);

    file = rebuild(&valid, 2, NO_SECTION, NULL);
    ok &= emit(directory, "bad-missing-tensor.lstm", &file);

    file = rebuild(&valid, NO_SECTION, 2, NULL);
    ok &= emit(directory, "bad-repeated-tensor.lstm", &file);

    file = (bytes){NULL, 0};
    append(&file, valid.data, valid.size);
    append(&file, "junk", 4);
    ok &= emit(directory, "bad-bytes-after-end.lstm", &file);

    uint8_t state[OPTM_HEADER - 4] = {0};
    write_u32(state, 0x4C4F5054u);
    write_u32(state + 4, 1);
    write_u32(state + 8, LSTM_OPTIM_ADAM);
    extra = section("OPTM", 0, state, sizeof state);
    file = rebuild(&valid, NO_SECTION, NO_SECTION, &extra);
    ok &= emit(directory, "bad-optimizer-state-short.lstm", &file);
    free(extra.data);

    ok &= write_seed(directory, "bad-empty.lstm", (const uint8_t *)"", 0);

    /* Networks (format 1.1): NETW, EMBD, HEAD, META. */
    static const seed_network networks[] = {
        {"network-tokens-last-ce-meta.lstm", 2, 3, 0, 0, 5, LSTM_HEAD_LAST_STEP,
         LSTM_LOSS_CROSS_ENTROPY, 3, 5},
        {"network-features-bidir-every-mse.lstm", 2, 3, 1, LSTM_BIDIRECTIONAL | LSTM_PEEPHOLE, 0,
         LSTM_HEAD_EVERY_STEP, LSTM_LOSS_MSE, 2, 1},
        {"network-features-plain.lstm", 1, 2, 0, 0, 0, LSTM_HEAD_NONE, LSTM_LOSS_NONE, 0, 0},
    };
    for (size_t n = 0; n < sizeof networks / sizeof networks[0]; n++) {
        file = make_network_seed(&networks[n], LSTM_PRECISION_FP32);
        ok &= emit(directory, networks[n].name, &file);
    }
    /* The first one's sections: 0 CONF, 1 NETW, 2 EMBD, 3 weight, 4 bias,
     * 5 HEAD, 6 .. 10 META, 11 END. */
    const bytes network = make_network_seed(&networks[0], LSTM_PRECISION_FP32);
    file = rebuild(&network, 2, NO_SECTION, NULL);
    ok &= emit(directory, "bad-network-missing-embd.lstm", &file);
    file = rebuild(&network, NO_SECTION, 5, NULL);
    ok &= emit(directory, "bad-network-repeated-head.lstm", &file);
    file = rebuild(&network, NO_SECTION, 7, NULL);
    ok &= emit(directory, "bad-network-repeated-meta.lstm", &file);
    size_t network_starts[16];
    CHECK(find_sections(&network, network_starts, 16) == 12, "sections of the network seed");
    file = (bytes){NULL, 0};
    append(&file, network.data, network.size);
    write_u32(file.data + network_starts[2] + 16 + EMBD_FIXED + 4, 0x7FC00000u); /* a NaN */
    fix_checksums(file.data, file.size);
    ok &= emit(directory, "bad-network-embedding-nan.lstm", &file);
    file = (bytes){NULL, 0};
    append(&file, network.data, network.size);
    file.data[network_starts[7] + 16 + META_FIXED + 1] = 0xC0; /* a key not UTF-8 */
    fix_checksums(file.data, file.size);
    ok &= emit(directory, "bad-network-meta-key-utf8.lstm", &file);
    free(network.data);

    ok &= make_quantized_corpus(directory, &models[4]);
    ok &= make_quantized_network_corpus(directory, &networks[0]);
    free(valid.data);
    return ok ? 0 : 1;
}

static const char *status_name(lstm_status status)
{
    static const char *const names[] = {"OK",    "NULL", "SIZE",      "OVERFLOW",
                                        "SHAPE", "ARG",  "NONFINITE", "NOMEM",
                                        "STATE", "IO",   "FORMAT",    "UNSUPPORTED"};
    return (int)status >= LSTM_OK && (int)status <= LAST_STATUS ? names[status] : "?";
}

static bool replay_file(const char *path)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        fprintf(stderr, "fuzz_load: cannot open %s\n", path);
        return false;
    }
    bytes data = {NULL, 0};
    uint8_t chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, file)) > 0)
        append(&data, chunk, got);
    bool ok = !ferror(file);
    fclose(file);
    if (!ok) {
        fprintf(stderr, "fuzz_load: cannot read %s\n", path);
        free(data.data);
        return false;
    }
    lstm_status statuses[4];
    run_input(data.data != NULL ? data.data : (const uint8_t *)"", data.size, statuses);
    /* model status, then the optimizer's ("-" when no model loaded), as given
     * and with checksums repaired */
    printf("%-11s %-9s %-11s %-9s %6zu  %s\n", status_name(statuses[0]),
           statuses[0] == LSTM_OK ? status_name(statuses[1]) : "-", status_name(statuses[2]),
           statuses[2] == LSTM_OK ? status_name(statuses[3]) : "-", data.size, path);
    free(data.data);
    return true;
}

#  include "replay.h"

int main(int argc, char **argv)
{
    LLVMFuzzerInitialize(&argc, &argv);
    if (argc == 3 && strcmp(argv[1], "--make-corpus") == 0)
        return make_corpus(argv[2]);
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr,
                "usage: %s FILE|DIR...        run each input once\n"
                "       %s --make-corpus DIR  write the seed corpus\n",
                argv[0], argv[0]);
        return 2;
    }
    printf("%-11s %-9s %-11s %-9s %6s  %s\n", "model", "optim", "model*", "optim*", "bytes",
           "input (* = checksums repaired)");
    bool ok = true;
    for (int n = 1; n < argc; n++)
        ok &= replay_path("fuzz_load", argv[n], replay_file);
    return ok ? 0 : 1;
}
#endif /* LSTM_FUZZ_LIBFUZZER */
