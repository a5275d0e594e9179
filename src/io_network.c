/*
 * A network's sections of a model file (docs/model-format.md, versions 1.1
 * and 1.3): NETW (how the parts are joined), EMBD (the embedding), HEAD (the
 * dense head), META (one metadata entry each), and in a quantized file
 * EMBQ and HDQ  (the embedding and the head's W in bf16 or int8). io.c
 * frames the file and calls these for the sections it does not hold
 * itself.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include "alloc.h"
#include "check.h"
#include "head_internal.h"
#include "io_format.h"
#include "network_lowp.h"

enum {
    NETW_SIZE = 24,  /* input, head, loss, reserved, head_size */
    EMBD_FIXED = 32, /* num_embeddings, embedding_dim, flags, reserved (EMBQ: precision),
                        padding_idx */
    HEAD_FIXED = 16, /* out_features, in_features */
    HDQ_FIXED = 24,  /* out_features, in_features, precision, reserved */
    META_FIXED = 16, /* kind, key_length, value_length */
    INPUT_FEATURES = 0,
    INPUT_TOKENS = 1
};

bool lstm__network_section_known(const unsigned char *section)
{
    return memcmp(section, "NETW", 4) == 0 || memcmp(section, "EMBD", 4) == 0 ||
           memcmp(section, "HEAD", 4) == 0 || memcmp(section, "META", 4) == 0 ||
           memcmp(section, "EMBQ", 4) == 0 || memcmp(section, "HDQ ", 4) == 0;
}

/* Bytes of rows x cols values in a precision (rows <= 2^31, cols <= 2^25:
 * no overflow in 64 bits): float32; bf16; int8 with a float32 scale per row
 * before the rows of q. */
static uint64_t values_bytes(lstm_precision precision, uint64_t rows, uint64_t cols)
{
    switch (precision) {
    case LSTM_PRECISION_BF16: return 2 * rows * cols;
    case LSTM_PRECISION_INT8: return 4 * rows + rows * cols;
    default: return 4 * rows * cols;
    }
}

/* ---- reading -------------------------------------------------------------- */

/* The index of the first value that is NaN or infinite, or count. */
static size_t first_nonfinite(const unsigned char *values, size_t count)
{
    for (size_t k = 0; k < count; k++)
        if (!isfinite(get_f32(values + 4 * k)))
            return k;
    return count;
}

/*
 * The precision field of an EMBQ or HDQ  section: bf16 or int8, and the
 * file's one precision (that of the quantized sections before it, which
 * it becomes when there are none).
 */
static lstm_status read_precision(uint32_t given, lstm_precision *file, const char *tag, size_t at)
{
    if (given != LSTM_PRECISION_BF16 && given != LSTM_PRECISION_INT8)
        return lstm__fail(LSTM_E_FORMAT,
                          "the %s section at byte %zu has precision %u; it must be 1 (bf16) or 2 "
                          "(int8)",
                          tag, at, (unsigned)given);
    if (*file != LSTM_PRECISION_FP32 && *file != (lstm_precision)given)
        return lstm__fail(LSTM_E_FORMAT,
                          "the %s section at byte %zu is in %s, the file's other quantized "
                          "sections in %s: quantized sections of two precisions",
                          tag, at, given == LSTM_PRECISION_BF16 ? "bf16" : "int8",
                          *file == LSTM_PRECISION_BF16 ? "bf16" : "int8");
    *file = (lstm_precision)given;
    return LSTM_OK;
}

/*
 * rows x cols values of a section in a precision (`what`, and in float32
 * the number of values before them, for the messages), their length
 * checked: float32 values finite; bf16 values
 * finite and not subnormal (as QTNS's: a bf16 rounding would not give a
 * subnormal back); int8 scales finite, not negative, with 128 s finite,
 * and q in [-127, 127], what the writers' symmetric quantization gives.
 */
static lstm_status check_values(lstm_precision precision, const unsigned char *p, size_t rows,
                                size_t cols, const char *tag, const char *what, size_t before,
                                size_t at)
{
    if (precision == LSTM_PRECISION_FP32) {
        const size_t bad = first_nonfinite(p, rows * cols);
        if (bad != rows * cols)
            return lstm__fail(LSTM_E_FORMAT,
                              "the %s section at byte %zu holds NaN or infinity (value %zu)", tag,
                              at, before + bad);
        return LSTM_OK;
    }
    if (precision == LSTM_PRECISION_BF16) {
        for (size_t k = 0; k < rows * cols; k++) {
            const unsigned bits = p[2 * k] | (unsigned)p[2 * k + 1] << 8;
            const unsigned exponent = bits >> 7 & 0xff;
            if (exponent == 0xff || (exponent == 0 && (bits & 0x7f) != 0))
                return lstm__fail(LSTM_E_FORMAT,
                                  "the %s section at byte %zu holds a bf16 %s value %zu that is "
                                  "%s",
                                  tag, at, what, k,
                                  exponent == 0xff ? "NaN or infinite" : "subnormal");
        }
        return LSTM_OK;
    }
    for (size_t j = 0; j < rows; j++) {
        const float scale = get_f32(p + 4 * j);
        if (!(scale >= 0.0f) || !isfinite(128.0f * scale))
            return lstm__fail(LSTM_E_FORMAT,
                              "the %s section at byte %zu has %s row %zu's int8 scale %g; it must "
                              "be finite, not negative, and 128 s finite",
                              tag, at, what, j, (double)scale);
    }
    const unsigned char *q = p + 4 * rows;
    for (size_t k = 0; k < rows * cols; k++)
        if (q[k] == 0x80)
            return lstm__fail(LSTM_E_FORMAT,
                              "the %s section at byte %zu has %s value %zu's q = -128; q must be "
                              "in [-127, 127]",
                              tag, at, what, k);
    return LSTM_OK;
}

static lstm_status read_netw(network_sections *s, const unsigned char *p, uint64_t length,
                             size_t at)
{
    if (s->have_netw)
        return lstm__fail(LSTM_E_FORMAT, "a second NETW section at byte %zu", at);
    if (length != NETW_SIZE)
        return lstm__fail(LSTM_E_FORMAT,
                          "the NETW section at byte %zu is %" PRIu64 " bytes long; it must be %d",
                          at, length, NETW_SIZE);
    const uint32_t input = get_u32(p), head = get_u32(p + 4), loss = get_u32(p + 8);
    const uint64_t head_size = get_u64(p + 16);
    if (get_u32(p + 12) != 0)
        return lstm__fail(LSTM_E_FORMAT, "the NETW section at byte %zu has its reserved field set",
                          at);
    if (input != INPUT_FEATURES && input != INPUT_TOKENS)
        return lstm__fail(LSTM_E_FORMAT,
                          "the NETW section at byte %zu has input %u; it must be 0 (features) "
                          "or 1 (token ids)",
                          at, (unsigned)input);
    if (head > LSTM_HEAD_LAST_STEP)
        return lstm__fail(LSTM_E_FORMAT,
                          "the NETW section at byte %zu has head %u; it must be 0, 1 or 2", at,
                          (unsigned)head);
    if (loss > LSTM_LOSS_MSE)
        return lstm__fail(LSTM_E_FORMAT,
                          "the NETW section at byte %zu has loss %u; it must be 0 .. 3", at,
                          (unsigned)loss);
    /* lstm_network_create()'s rules */
    if (head == LSTM_HEAD_NONE && head_size != 0)
        return lstm__fail(LSTM_E_FORMAT,
                          "the NETW section at byte %zu has head_size %" PRIu64
                          " without a head; it must be 0",
                          at, head_size);
    if (head != LSTM_HEAD_NONE && (head_size == 0 || head_size > LSTM_MAX_SIZE))
        return lstm__fail(LSTM_E_FORMAT,
                          "the NETW section at byte %zu has head_size %" PRIu64
                          "; it must be 1 .. %zu with a head",
                          at, head_size, LSTM_MAX_SIZE);
    if (loss == LSTM_LOSS_CROSS_ENTROPY && head_size < 2)
        return lstm__fail(LSTM_E_FORMAT,
                          "the NETW section at byte %zu has cross-entropy with head_size %" PRIu64
                          "; it needs a head of at least 2 classes",
                          at, head_size);
    s->have_netw = true;
    s->input = input;
    s->head = head;
    s->loss = loss;
    s->head_size = (size_t)head_size;
    return LSTM_OK;
}

/* EMBD, or EMBQ (quantized: its reserved field the precision). */
static lstm_status read_embd(network_sections *s, const lstm_model *shape, const unsigned char *p,
                             uint64_t length, size_t at, bool quantized, lstm_precision *file)
{
    const char *tag = quantized ? "EMBQ" : "EMBD";
    if (s->embedding != NULL)
        return lstm__fail(LSTM_E_FORMAT, "a second %s section at byte %zu (one embedding)", tag,
                          at);
    if (length < EMBD_FIXED)
        return lstm__fail(LSTM_E_FORMAT, "the %s section at byte %zu is too short for its fields",
                          tag, at);
    const uint64_t rows = get_u64(p), dim = get_u64(p + 8);
    const uint32_t flags = get_u32(p + 16);
    const int64_t padding = (int64_t)get_u64(p + 24);
    if (rows == 0 || rows > LSTM_MAX_VOCAB)
        return lstm__fail(LSTM_E_FORMAT,
                          "the %s section at byte %zu has num_embeddings %" PRIu64
                          "; it must be 1 .. %zu",
                          tag, at, rows, LSTM_MAX_VOCAB);
    if (dim != shape->input_size)
        return lstm__fail(LSTM_E_FORMAT,
                          "the %s section at byte %zu has embedding_dim %" PRIu64
                          "; it must be the LSTM's input_size, %zu",
                          tag, at, dim, shape->input_size);
    if ((flags & ~LSTM_EMBEDDING_PADDING) != 0)
        return lstm__fail(LSTM_E_FORMAT,
                          "the %s section at byte %zu has flags 0x%x: unknown flags set", tag, at,
                          (unsigned)flags);
    lstm_precision precision = LSTM_PRECISION_FP32;
    lstm_status status;
    if (!quantized && get_u32(p + 20) != 0)
        return lstm__fail(LSTM_E_FORMAT, "the EMBD section at byte %zu has its reserved field set",
                          at);
    if (quantized && (status = read_precision(get_u32(p + 20), file, tag, at)) != LSTM_OK)
        return status;
    if (quantized)
        precision = *file;
    if ((flags & LSTM_EMBEDDING_PADDING) ? padding < 0 || (uint64_t)padding >= rows : padding != 0)
        return lstm__fail(LSTM_E_FORMAT,
                          "the %s section at byte %zu has padding_idx %" PRId64
                          "; it must be in [0, %" PRIu64 ") with the padding flag, 0 without",
                          tag, at, padding, rows);
    /* rows <= 2^31 and dim <= 2^24: no overflow in 64 bits */
    const uint64_t bytes = values_bytes(precision, rows, dim);
    if (length != EMBD_FIXED + bytes)
        return lstm__fail(LSTM_E_FORMAT,
                          "the %s section at byte %zu is %" PRIu64 " bytes long; %" PRIu64
                          " x %" PRIu64 " values need %" PRIu64,
                          tag, at, length, rows, dim, EMBD_FIXED + bytes);
    /* the values lie in the file: rows and rows x dim fit in size_t */
    if ((status = check_values(precision, p + EMBD_FIXED, (size_t)rows, (size_t)dim, tag,
                               "embedding", 0, at)) != LSTM_OK)
        return status;
    s->embedding_precision = precision;
    lstm_embedding_config_init(&s->embedding_config, sizeof s->embedding_config);
    s->embedding_config.num_embeddings = (size_t)rows;
    s->embedding_config.embedding_dim = (size_t)dim;
    s->embedding_config.flags = flags;
    s->embedding_config.padding_idx = padding;
    s->embedding = p + EMBD_FIXED;
    s->embedding_at = at;
    return LSTM_OK;
}

/* HEAD, or HDQ  (quantized: W in the precision its field gives). */
static lstm_status read_head(network_sections *s, const lstm_model *shape, const unsigned char *p,
                             uint64_t length, size_t at, bool quantized, lstm_precision *file)
{
    const char *tag = quantized ? "HDQ " : "HEAD";
    const size_t fixed = quantized ? HDQ_FIXED : HEAD_FIXED;
    if (s->head_values != NULL)
        return lstm__fail(LSTM_E_FORMAT, "a second %s section at byte %zu (one head)", tag, at);
    if (length < fixed)
        return lstm__fail(LSTM_E_FORMAT, "the %s section at byte %zu is too short for its fields",
                          tag, at);
    const uint64_t out = get_u64(p), in = get_u64(p + 8);
    const size_t lstm_output = shape->directions * shape->state_size;
    if (out == 0 || out > LSTM_MAX_SIZE)
        return lstm__fail(LSTM_E_FORMAT,
                          "the %s section at byte %zu has out_features %" PRIu64
                          "; it must be 1 .. %zu",
                          tag, at, out, LSTM_MAX_SIZE);
    if (in != lstm_output)
        return lstm__fail(LSTM_E_FORMAT,
                          "the %s section at byte %zu has in_features %" PRIu64
                          "; the LSTM gives %zu",
                          tag, at, in, lstm_output);
    lstm_precision precision = LSTM_PRECISION_FP32;
    lstm_status status;
    if (quantized && (status = read_precision(get_u32(p + 16), file, tag, at)) != LSTM_OK)
        return status;
    if (quantized && get_u32(p + 20) != 0)
        return lstm__fail(LSTM_E_FORMAT, "the HDQ  section at byte %zu has its reserved field set",
                          at);
    if (quantized)
        precision = *file;
    /* out <= 2^24 and in <= 2^25: no overflow in 64 bits */
    const uint64_t weight_bytes = values_bytes(precision, out, in);
    if (length != fixed + weight_bytes + 4 * out)
        return lstm__fail(LSTM_E_FORMAT,
                          "the %s section at byte %zu is %" PRIu64 " bytes long; %" PRIu64
                          " x %" PRIu64 " weights and %" PRIu64 " biases need %" PRIu64,
                          tag, at, length, out, in, out, fixed + weight_bytes + 4 * out);
    /* (in float32 the values are counted over W and b, as the file holds them) */
    if ((status = check_values(precision, p + fixed, (size_t)out, (size_t)in, tag, "weight", 0,
                               at)) != LSTM_OK ||
        (status = check_values(LSTM_PRECISION_FP32, p + fixed + weight_bytes, 1, (size_t)out, tag,
                               "bias", (size_t)(out * in), at)) != LSTM_OK)
        return status;
    s->head_values = p + fixed;
    s->head_precision = precision;
    s->head_out = (size_t)out;
    s->head_at = at;
    return LSTM_OK;
}

/* The keys' order: their bytes as unsigned, a prefix before what extends it. */
static int key_order(const unsigned char *a, size_t a_length, const unsigned char *b,
                     size_t b_length)
{
    const int order = memcmp(a, b, a_length < b_length ? a_length : b_length);
    if (order != 0)
        return order;
    return a_length < b_length ? -1 : a_length > b_length;
}

static lstm_status read_meta(network_sections *s, const unsigned char *p, uint64_t length,
                             size_t at)
{
    if (s->meta_count >= LSTM_META_MAX_ENTRIES)
        return lstm__fail(LSTM_E_FORMAT, "a META section at byte %zu past the limit of %zu entries",
                          at, LSTM_META_MAX_ENTRIES);
    if (length < META_FIXED)
        return lstm__fail(LSTM_E_FORMAT, "the META section at byte %zu is too short for its fields",
                          at);
    const uint32_t kind = get_u32(p), key_length = get_u32(p + 4);
    const uint64_t value_length = get_u64(p + 8);
    if (key_length == 0 || key_length > LSTM_META_MAX_KEY)
        return lstm__fail(LSTM_E_FORMAT,
                          "the META section at byte %zu has key_length %u; it must be 1 .. %zu", at,
                          (unsigned)key_length, LSTM_META_MAX_KEY);
    if (value_length > LSTM_META_MAX_VALUE)
        return lstm__fail(LSTM_E_FORMAT,
                          "the META section at byte %zu has value_length %" PRIu64
                          "; the limit is %zu",
                          at, value_length, LSTM_META_MAX_VALUE);
    if (length != META_FIXED + key_length + value_length)
        return lstm__fail(LSTM_E_FORMAT,
                          "the META section at byte %zu is %" PRIu64
                          " bytes long; a key of %u bytes and a value of %" PRIu64 " need %" PRIu64,
                          at, length, (unsigned)key_length, value_length,
                          META_FIXED + key_length + value_length);
    const unsigned char *key = p + META_FIXED;
    if (lstm__meta_check((const char *)key, key_length, kind, key + key_length,
                         (size_t)value_length) != LSTM_OK) {
        char reason[160]; /* the message buffer is about to be rewritten */
        snprintf(reason, sizeof reason, "%s", lstm_error_message());
        return lstm__fail(LSTM_E_FORMAT, "the META section at byte %zu is invalid: %s", at, reason);
    }
    if (s->meta_count != 0) {
        const unsigned char *last = s->meta[s->meta_count - 1];
        if (key_order(last + META_FIXED, get_u32(last + 4), key, key_length) >= 0)
            return lstm__fail(LSTM_E_FORMAT,
                              "the META section at byte %zu does not come after the previous "
                              "one: keys must be strictly ascending",
                              at);
    }
    if (s->meta_count == s->meta_capacity) {
        /* at most one pointer per 37 bytes of the file */
        const size_t capacity = s->meta_capacity == 0 ? 16 : 2 * s->meta_capacity;
        const unsigned char **meta = lstm__mem_alloc(capacity * sizeof *meta);
        if (meta == NULL)
            return lstm__fail(LSTM_E_NOMEM, "allocating the table of %zu META sections", capacity);
        if (s->meta_count != 0)
            memcpy(meta, s->meta, s->meta_count * sizeof *meta);
        lstm__mem_free(s->meta);
        s->meta = meta;
        s->meta_capacity = capacity;
    }
    s->meta[s->meta_count++] = p;
    return LSTM_OK;
}

lstm_status lstm__network_section_read(network_sections *sections, const lstm_model *shape,
                                       lstm_precision *precision, const unsigned char *section,
                                       size_t at)
{
    const uint32_t flags = get_u32(section + 4);
    const uint64_t length = get_u64(section + 8);
    const unsigned char *payload = section + 16;
    const bool meta = memcmp(section, "META", 4) == 0;
    /* NETW, EMBD, HEAD, EMBQ and HDQ  are required (a reader without them
     * cannot run the network); META is not (one can, without the metadata) */
    if ((flags & REQUIRED) != (meta ? 0u : (uint32_t)REQUIRED))
        return lstm__fail(LSTM_E_FORMAT, "the %.4s section at byte %zu %s the required flag",
                          (const char *)section, at, meta ? "has" : "lacks");
    if (meta)
        return read_meta(sections, payload, length, at);
    if (memcmp(section, "NETW", 4) == 0)
        return read_netw(sections, payload, length, at);
    if (memcmp(section, "EMBD", 4) == 0 || memcmp(section, "EMBQ", 4) == 0)
        return read_embd(sections, shape, payload, length, at, section[3] == 'Q', precision);
    return read_head(sections, shape, payload, length, at, section[0] == 'H' && section[1] == 'D',
                     precision);
}

lstm_status lstm__network_sections_check(const network_sections *s)
{
    if (s->input == INPUT_TOKENS && s->embedding == NULL)
        return lstm__fail(LSTM_E_FORMAT, "the file's network takes token ids (NETW input 1) but "
                                         "has no EMBD section (nor EMBQ)");
    if (s->input != INPUT_TOKENS && s->embedding != NULL)
        return lstm__fail(LSTM_E_FORMAT,
                          "the EMBD or EMBQ section at byte %zu is in a file whose network "
                          "takes no token ids (%s)",
                          s->embedding_at, s->have_netw ? "NETW input 0" : "no NETW section");
    if (s->head != LSTM_HEAD_NONE && s->head_values == NULL)
        return lstm__fail(LSTM_E_FORMAT,
                          "the file's network has a head (NETW head %u) but no HEAD section "
                          "(nor HDQ )",
                          (unsigned)s->head);
    if (s->head == LSTM_HEAD_NONE && s->head_values != NULL)
        return lstm__fail(LSTM_E_FORMAT,
                          "the HEAD or HDQ  section at byte %zu is in a file whose network has "
                          "no head (%s)",
                          s->head_at, s->have_netw ? "NETW head 0" : "no NETW section");
    if (s->head_values != NULL && s->head_out != s->head_size)
        return lstm__fail(LSTM_E_FORMAT,
                          "the HEAD or HDQ  section at byte %zu has out_features %zu; NETW "
                          "gives head_size %zu",
                          s->head_at, s->head_out, s->head_size);
    return LSTM_OK;
}

void lstm__network_sections_free(network_sections *sections)
{
    lstm__mem_free(sections->meta);
    sections->meta = NULL;
    sections->meta_count = sections->meta_capacity = 0;
}

/* count float32 values from the file into values. */
static void take_floats(float *values, const unsigned char *bytes, size_t count)
{
    for (size_t k = 0; k < count; k++)
        values[k] = get_f32(bytes + 4 * k);
}

/* Bytes the store of a matrix of an int8 file takes: q, then the scales. */
static size_t stored_bytes(lstm_precision precision, size_t rows, size_t cols)
{
    return precision == LSTM_PRECISION_INT8 ? lstm__align_up(rows * cols) + lstm__align_up(4 * rows)
                                            : 0;
}

/*
 * A checked matrix of the file (rows x cols values in the precision) into
 * float32 values: as they are, the bf16 values, or q s (the same product
 * the model's QTNS gives, and network_lowp.c compares with); an int8
 * matrix also into the store at *next, which it advances.
 */
static void take_matrix(const unsigned char *data, lstm_precision precision, size_t rows,
                        size_t cols, float *values, stored_rows *stored, unsigned char **next)
{
    if (precision == LSTM_PRECISION_FP32) {
        take_floats(values, data, rows * cols);
        return;
    }
    if (precision == LSTM_PRECISION_BF16) {
        for (size_t k = 0; k < rows * cols; k++) {
            const uint32_t wide = (uint32_t)(data[2 * k] | data[2 * k + 1] << 8) << 16;
            memcpy(&values[k], &wide, sizeof wide);
        }
        return;
    }
    int8_t *q = (int8_t *)*next;
    float *scales = (float *)(*next + lstm__align_up(rows * cols));
    *next += stored_bytes(precision, rows, cols);
    for (size_t j = 0; j < rows; j++)
        scales[j] = get_f32(data + 4 * j);
    memcpy(q, data + 4 * rows, rows * cols);
    for (size_t j = 0; j < rows; j++)
        for (size_t k = 0; k < cols; k++)
            values[j * cols + k] = (float)q[j * cols + k] * scales[j];
    *stored = (stored_rows){q, scales};
}

/* The parts' values from the file into a new network; LSTM_E_NOMEM when
 * the store of its int8 rows cannot be had. */
static lstm_status take_parts(const network_sections *s, lstm_network *network)
{
    const size_t E = network->embedding_config.embedding_dim;
    const size_t V = network->embedding_config.num_embeddings;
    const size_t O = network->output_size, K = network->lstm_output_size;
    size_t bytes = 0;
    if (s->embedding != NULL)
        bytes += stored_bytes(s->embedding_precision, V, E);
    if (s->head_values != NULL)
        bytes += stored_bytes(s->head_precision, O, K);
    unsigned char *next = NULL;
    if (bytes != 0 && (next = network->stored_memory = lstm__mem_alloc(bytes)) == NULL)
        return lstm__fail(LSTM_E_NOMEM, "allocating %zu bytes of int8 embedding and head rows",
                          bytes);
    float *values;
    size_t count;
    if (s->embedding != NULL &&
        lstm_embedding_params(network->embedding, &values, &count) == LSTM_OK)
        take_matrix(s->embedding, s->embedding_precision, V, E, values, &network->stored_embedding,
                    &next);
    if (s->head_values != NULL && lstm_dense_params(network->head, &values, &count) == LSTM_OK) {
        /* W in the file's precision, then b in float32 */
        take_matrix(s->head_values, s->head_precision, O, K, values, &network->stored_head, &next);
        take_floats(values + O * K, s->head_values + values_bytes(s->head_precision, O, K), O);
    }
    return LSTM_OK;
}

lstm_status lstm__network_sections_create(const network_sections *s, const lstm_config *lstm,
                                          lstm_network **out)
{
    lstm_network_config config;
    lstm_network_config_init(&config, sizeof config);
    config.lstm = lstm;
    config.embedding = s->embedding != NULL ? &s->embedding_config : NULL;
    config.head = s->head;
    config.loss = s->loss;
    config.head_size = s->head_size;
    lstm_network *network;
    lstm_status status = lstm_network_create(&config, &network);
    if (status == LSTM_E_NOMEM)
        return status;
    if (status != LSTM_OK) { /* the checks above should have seen it */
        char reason[160];
        snprintf(reason, sizeof reason, "%s", lstm_error_message());
        return lstm__fail(LSTM_E_FORMAT, "the file's network is invalid: %s", reason);
    }
    status = take_parts(s, network);
    for (size_t n = 0; n < s->meta_count && status == LSTM_OK; n++) {
        const unsigned char *p = s->meta[n];
        const uint32_t key_length = get_u32(p + 4);
        const unsigned char *key = p + META_FIXED;
        status = lstm__meta_set(&network->meta, (const char *)key, key_length, get_u32(p),
                                key + key_length, (size_t)get_u64(p + 8));
    }
    if (status != LSTM_OK) {
        lstm_network_destroy(network);
        return status;
    }
    *out = network;
    return LSTM_OK;
}

/* ---- writing -------------------------------------------------------------- */

/* LSTM_E_NONFINITE naming the value of what that overflows in the
 * precision (overflows_in()), if any. */
static lstm_status check_quantizable(const char *what, const float *values, size_t count,
                                     lstm_precision precision)
{
    for (size_t k = 0; k < count; k++)
        if (overflows_in(precision, values[k]))
            return lstm__fail(LSTM_E_NONFINITE,
                              "%s %zu (%g) overflows float32 in %s; the file could not be loaded",
                              what, k, (double)values[k],
                              precision == LSTM_PRECISION_BF16 ? "bf16" : "int8");
    return LSTM_OK;
}

lstm_status lstm__network_check_finite(const lstm_network *network, lstm_precision precision)
{
    float *values;
    size_t count;
    lstm_status status = LSTM_OK;
    if (network->embedding != NULL &&
        lstm_embedding_params(network->embedding, &values, &count) == LSTM_OK) {
        status = lstm__check_finite("the embedding's parameters", values, count);
        if (status == LSTM_OK && precision != LSTM_PRECISION_FP32)
            status = check_quantizable("the embedding's parameter", values, count, precision);
    }
    if (status == LSTM_OK && network->head != NULL) {
        const float *head = lstm__dense_values(network->head);
        const size_t weights = network->output_size * network->lstm_output_size;
        status = lstm__check_finite("the head's parameters", head, weights + network->output_size);
        /* W only: b stays float32 */
        if (status == LSTM_OK && precision != LSTM_PRECISION_FP32)
            status = check_quantizable("the head's weight", head, weights, precision);
    }
    return status;
}

bool lstm__network_quantizes(const lstm_network *network, lstm_precision precision)
{
    return precision != LSTM_PRECISION_FP32 &&
           (network->embedding != NULL || network->head != NULL);
}

/*
 * A matrix's rows x cols values in the precision (values_bytes()): float32;
 * bf16, rounded as network_lowp.h rounds; int8, every row's scale, then
 * every row's q, each row as network_lowp.h quantizes it (its stored q and
 * s while they are its values).
 */
static void emit_matrix(writer *w, const float *values, size_t rows, size_t cols,
                        lstm_precision precision, const stored_rows *stored)
{
    if (precision == LSTM_PRECISION_FP32) {
        emit_floats(w, values, rows * cols);
        return;
    }
    if (w->out == NULL) { /* only counting */
        w->size += (size_t)values_bytes(precision, rows, cols);
        return;
    }
    if (precision == LSTM_PRECISION_BF16) {
        for (size_t k = 0; k < rows * cols; k++) {
            const uint16_t v = lstm__lowp_bf16(values[k]);
            const unsigned char le[2] = {(unsigned char)(v & 0xff), (unsigned char)(v >> 8)};
            emit(w, le, 2);
        }
        return;
    }
    for (size_t j = 0; j < rows; j++) {
        put_f32(w->out + w->size, lstm__network_int8_row(stored, j, values + j * cols, cols, NULL));
        w->size += 4;
    }
    for (size_t j = 0; j < rows; j++) {
        lstm__network_int8_row(stored, j, values + j * cols, cols, (int8_t *)(w->out + w->size));
        w->size += cols;
    }
}

void lstm__network_write_front(writer *w, const lstm_network *network, lstm_precision precision)
{
    const lstm_network_config *c = &network->config;
    unsigned char p[EMBD_FIXED] = {0};
    put_u32(p, network->embedding != NULL ? INPUT_TOKENS : INPUT_FEATURES);
    put_u32(p + 4, c->head);
    put_u32(p + 8, c->loss);
    put_u64(p + 16, c->head_size);
    size_t start = section_begin(w, "NETW", REQUIRED, NETW_SIZE);
    emit(w, p, NETW_SIZE);
    section_end(w, start);
    if (network->embedding == NULL)
        return;
    const lstm_embedding_config *e = &network->embedding_config;
    float *values;
    size_t count;
    lstm_embedding_params(network->embedding, &values, &count);
    memset(p, 0, sizeof p);
    put_u64(p, e->num_embeddings);
    put_u64(p + 8, e->embedding_dim);
    put_u32(p + 16, e->flags & LSTM_EMBEDDING_PADDING);
    put_u32(p + 20, (uint32_t)precision); /* EMBD: reserved, 0 */
    put_u64(p + 24, (e->flags & LSTM_EMBEDDING_PADDING) ? (uint64_t)e->padding_idx : 0);
    const size_t V = e->num_embeddings, E = e->embedding_dim;
    start = section_begin(w, precision == LSTM_PRECISION_FP32 ? "EMBD" : "EMBQ", REQUIRED,
                          EMBD_FIXED + values_bytes(precision, V, E));
    emit(w, p, EMBD_FIXED);
    emit_matrix(w, values, V, E, precision, &network->stored_embedding);
    section_end(w, start);
}

void lstm__network_write_back(writer *w, const lstm_network *network, lstm_precision precision)
{
    unsigned char p[HDQ_FIXED] = {0};
    if (network->head != NULL) {
        /* read without a writable view, which would count as a change */
        const float *values = lstm__dense_values(network->head);
        const size_t O = network->output_size, K = network->lstm_output_size;
        const bool quantized = precision != LSTM_PRECISION_FP32;
        const size_t fixed = quantized ? HDQ_FIXED : HEAD_FIXED;
        put_u64(p, O);
        put_u64(p + 8, K);
        put_u32(p + 16, (uint32_t)precision); /* HDQ  only, then reserved */
        size_t start = section_begin(w, quantized ? "HDQ " : "HEAD", REQUIRED,
                                     fixed + values_bytes(precision, O, K) + 4 * (uint64_t)O);
        emit(w, p, fixed);
        emit_matrix(w, values, O, K, precision, &network->stored_head); /* W, then b */
        emit_floats(w, values + O * K, O);
        section_end(w, start);
    }
    for (size_t n = 0; n < network->meta.count; n++) {
        const meta_entry *entry = &network->meta.entries[n];
        put_u32(p, entry->kind);
        put_u32(p + 4, (uint32_t)entry->key_length);
        put_u64(p + 8, entry->size);
        size_t start =
            section_begin(w, "META", 0, (uint64_t)META_FIXED + entry->key_length + entry->size);
        emit(w, p, META_FIXED);
        emit(w, entry->key, entry->key_length);
        emit(w, entry->value, entry->size);
        section_end(w, start);
    }
}
