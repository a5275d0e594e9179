/*
 * A network's sections of a model file (docs/model-format.md, version 1.1):
 * NETW (how the parts are joined), EMBD (the embedding), HEAD (the dense
 * head) and META (one metadata entry each). io.c frames the file and calls
 * these for the sections it does not hold itself.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include "alloc.h"
#include "check.h"
#include "io_format.h"

enum {
    NETW_SIZE = 24,  /* input, head, loss, reserved, head_size */
    EMBD_FIXED = 32, /* num_embeddings, embedding_dim, flags, reserved, padding_idx */
    HEAD_FIXED = 16, /* out_features, in_features */
    META_FIXED = 16, /* kind, key_length, value_length */
    INPUT_FEATURES = 0,
    INPUT_TOKENS = 1
};

bool lstm__network_section_known(const unsigned char *section)
{
    return memcmp(section, "NETW", 4) == 0 || memcmp(section, "EMBD", 4) == 0 ||
           memcmp(section, "HEAD", 4) == 0 || memcmp(section, "META", 4) == 0;
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

static lstm_status read_embd(network_sections *s, const lstm_model *shape, const unsigned char *p,
                             uint64_t length, size_t at)
{
    if (s->embedding != NULL)
        return lstm__fail(LSTM_E_FORMAT, "a second EMBD section at byte %zu", at);
    if (length < EMBD_FIXED)
        return lstm__fail(LSTM_E_FORMAT, "the EMBD section at byte %zu is too short for its fields",
                          at);
    const uint64_t rows = get_u64(p), dim = get_u64(p + 8);
    const uint32_t flags = get_u32(p + 16);
    const int64_t padding = (int64_t)get_u64(p + 24);
    if (rows == 0 || rows > LSTM_MAX_VOCAB)
        return lstm__fail(LSTM_E_FORMAT,
                          "the EMBD section at byte %zu has num_embeddings %" PRIu64
                          "; it must be 1 .. %zu",
                          at, rows, LSTM_MAX_VOCAB);
    if (dim != shape->input_size)
        return lstm__fail(LSTM_E_FORMAT,
                          "the EMBD section at byte %zu has embedding_dim %" PRIu64
                          "; it must be the LSTM's input_size, %zu",
                          at, dim, shape->input_size);
    if ((flags & ~LSTM_EMBEDDING_PADDING) != 0)
        return lstm__fail(LSTM_E_FORMAT,
                          "the EMBD section at byte %zu has flags 0x%x: unknown flags set", at,
                          (unsigned)flags);
    if (get_u32(p + 20) != 0)
        return lstm__fail(LSTM_E_FORMAT, "the EMBD section at byte %zu has its reserved field set",
                          at);
    if ((flags & LSTM_EMBEDDING_PADDING) ? padding < 0 || (uint64_t)padding >= rows : padding != 0)
        return lstm__fail(LSTM_E_FORMAT,
                          "the EMBD section at byte %zu has padding_idx %" PRId64
                          "; it must be in [0, %" PRIu64 ") with the padding flag, 0 without",
                          at, padding, rows);
    /* rows <= 2^31 and dim <= 2^24: no overflow in 64 bits */
    const uint64_t count = rows * dim;
    if (length != EMBD_FIXED + 4 * count)
        return lstm__fail(LSTM_E_FORMAT,
                          "the EMBD section at byte %zu is %" PRIu64 " bytes long; %" PRIu64
                          " x %" PRIu64 " values need %" PRIu64,
                          at, length, rows, dim, EMBD_FIXED + 4 * count);
    /* the values lie in the file: count fits in size_t */
    const size_t bad = first_nonfinite(p + EMBD_FIXED, (size_t)count);
    if (bad != count)
        return lstm__fail(LSTM_E_FORMAT,
                          "the EMBD section at byte %zu holds NaN or infinity (value %zu)", at,
                          bad);
    lstm_embedding_config_init(&s->embedding_config, sizeof s->embedding_config);
    s->embedding_config.num_embeddings = (size_t)rows;
    s->embedding_config.embedding_dim = (size_t)dim;
    s->embedding_config.flags = flags;
    s->embedding_config.padding_idx = padding;
    s->embedding = p + EMBD_FIXED;
    s->embedding_at = at;
    return LSTM_OK;
}

static lstm_status read_head(network_sections *s, const lstm_model *shape, const unsigned char *p,
                             uint64_t length, size_t at)
{
    if (s->head_values != NULL)
        return lstm__fail(LSTM_E_FORMAT, "a second HEAD section at byte %zu", at);
    if (length < HEAD_FIXED)
        return lstm__fail(LSTM_E_FORMAT, "the HEAD section at byte %zu is too short for its fields",
                          at);
    const uint64_t out = get_u64(p), in = get_u64(p + 8);
    const size_t lstm_output = shape->directions * shape->state_size;
    if (out == 0 || out > LSTM_MAX_SIZE)
        return lstm__fail(LSTM_E_FORMAT,
                          "the HEAD section at byte %zu has out_features %" PRIu64
                          "; it must be 1 .. %zu",
                          at, out, LSTM_MAX_SIZE);
    if (in != lstm_output)
        return lstm__fail(LSTM_E_FORMAT,
                          "the HEAD section at byte %zu has in_features %" PRIu64
                          "; the LSTM gives %zu",
                          at, in, lstm_output);
    /* out <= 2^24 and in <= 2^25: no overflow in 64 bits */
    const uint64_t count = out * in + out;
    if (length != HEAD_FIXED + 4 * count)
        return lstm__fail(LSTM_E_FORMAT,
                          "the HEAD section at byte %zu is %" PRIu64 " bytes long; %" PRIu64
                          " x %" PRIu64 " weights and %" PRIu64 " biases need %" PRIu64,
                          at, length, out, in, out, HEAD_FIXED + 4 * count);
    const size_t bad = first_nonfinite(p + HEAD_FIXED, (size_t)count);
    if (bad != count)
        return lstm__fail(LSTM_E_FORMAT,
                          "the HEAD section at byte %zu holds NaN or infinity (value %zu)", at,
                          bad);
    s->head_values = p + HEAD_FIXED;
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
                                       const unsigned char *section, size_t at)
{
    const uint32_t flags = get_u32(section + 4);
    const uint64_t length = get_u64(section + 8);
    const unsigned char *payload = section + 16;
    const bool meta = memcmp(section, "META", 4) == 0;
    /* NETW, EMBD and HEAD are required (a reader without them cannot run the
     * network); META is not (one can, without the metadata) */
    if ((flags & REQUIRED) != (meta ? 0u : (uint32_t)REQUIRED))
        return lstm__fail(LSTM_E_FORMAT, "the %.4s section at byte %zu %s the required flag",
                          (const char *)section, at, meta ? "has" : "lacks");
    if (meta)
        return read_meta(sections, payload, length, at);
    if (memcmp(section, "NETW", 4) == 0)
        return read_netw(sections, payload, length, at);
    if (memcmp(section, "EMBD", 4) == 0)
        return read_embd(sections, shape, payload, length, at);
    return read_head(sections, shape, payload, length, at);
}

lstm_status lstm__network_sections_check(const network_sections *s)
{
    if (s->input == INPUT_TOKENS && s->embedding == NULL)
        return lstm__fail(LSTM_E_FORMAT, "the file's network takes token ids (NETW input 1) but "
                                         "has no EMBD section");
    if (s->input != INPUT_TOKENS && s->embedding != NULL)
        return lstm__fail(LSTM_E_FORMAT,
                          "the EMBD section at byte %zu is in a file whose network takes no "
                          "token ids (%s)",
                          s->embedding_at, s->have_netw ? "NETW input 0" : "no NETW section");
    if (s->head != LSTM_HEAD_NONE && s->head_values == NULL)
        return lstm__fail(LSTM_E_FORMAT,
                          "the file's network has a head (NETW head %u) but no HEAD section",
                          (unsigned)s->head);
    if (s->head == LSTM_HEAD_NONE && s->head_values != NULL)
        return lstm__fail(LSTM_E_FORMAT,
                          "the HEAD section at byte %zu is in a file whose network has no head "
                          "(%s)",
                          s->head_at, s->have_netw ? "NETW head 0" : "no NETW section");
    if (s->head_values != NULL && s->head_out != s->head_size)
        return lstm__fail(LSTM_E_FORMAT,
                          "the HEAD section at byte %zu has out_features %zu; NETW gives "
                          "head_size %zu",
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
    float *values;
    size_t count;
    if (s->embedding != NULL &&
        lstm_embedding_params(network->embedding, &values, &count) == LSTM_OK)
        take_floats(values, s->embedding, count);
    if (s->head_values != NULL && lstm_dense_params(network->head, &values, &count) == LSTM_OK)
        take_floats(values, s->head_values, count); /* [W | b], as in the file */
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

lstm_status lstm__network_check_finite(const lstm_network *network)
{
    float *values;
    size_t count;
    lstm_status status = LSTM_OK;
    if (network->embedding != NULL &&
        lstm_embedding_params(network->embedding, &values, &count) == LSTM_OK)
        status = lstm__check_finite("the embedding's parameters", values, count);
    if (status == LSTM_OK && network->head != NULL &&
        lstm_dense_params(network->head, &values, &count) == LSTM_OK)
        status = lstm__check_finite("the head's parameters", values, count);
    return status;
}

void lstm__network_write_front(writer *w, const lstm_network *network)
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
    put_u64(p + 24, (e->flags & LSTM_EMBEDDING_PADDING) ? (uint64_t)e->padding_idx : 0);
    start = section_begin(w, "EMBD", REQUIRED, EMBD_FIXED + 4 * (uint64_t)count);
    emit(w, p, EMBD_FIXED);
    emit_floats(w, values, count);
    section_end(w, start);
}

void lstm__network_write_back(writer *w, const lstm_network *network)
{
    unsigned char p[META_FIXED];
    if (network->head != NULL) {
        float *values;
        size_t count;
        lstm_dense_params(network->head, &values, &count);
        put_u64(p, network->config.head_size);
        put_u64(p + 8, network->lstm_output_size);
        size_t start = section_begin(w, "HEAD", REQUIRED, HEAD_FIXED + 4 * (uint64_t)count);
        emit(w, p, HEAD_FIXED);
        emit_floats(w, values, count); /* W then b */
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
