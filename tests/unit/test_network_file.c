/*
 * A network's metadata (lstm_network_set_meta() and its kin) and the model
 * file of a whole network (format 1.1, docs/model-format.md: NETW, EMBD,
 * HEAD, META), white box:
 *
 *   1. the metadata calls: text and bytes, replacing, removing, listing in
 *      the keys' byte order, the limits, strict UTF-8 and bad arguments;
 *   2. round trips of token and features networks with every head placement
 *      and loss, bidirectional, projected and peephole LSTMs, metadata and
 *      an optimizer's state: every parameter bit for bit, the same bytes
 *      when saved again; the layout checked against the spec with this
 *      test's own decoder;
 *   3. compatibility: the 1.0 file model-v1.lstm as a network, a network's
 *      file through lstm_model_load() and lstm_optim_load_buffer();
 *   4. hostile files: truncation at every byte, and every field of the new
 *      sections altered with the checksums recomputed, each refused with
 *      LSTM_E_FORMAT and a message that names it, nothing leaked.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "crc32c.h"
#include "lstm/lstm.h"

#ifndef DATA_DIR
#  error "DATA_DIR must be defined as the path of tests/unit/data"
#endif

#define OK(call) assert_int_equal((call), LSTM_OK)

/* ---- little-endian fields, written independently of src/bytes.h ---------- */

static void put32(unsigned char *p, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        p[k] = (unsigned char)(v >> (8 * k));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int k = 0; k < 8; k++)
        p[k] = (unsigned char)(v >> (8 * k));
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* count little-endian float32 values at p against values, bit for bit, on
 * any host. */
static void assert_floats_le(const unsigned char *p, const float *values, size_t count)
{
    for (size_t k = 0; k < count; k++) {
        uint32_t bits;
        memcpy(&bits, &values[k], sizeof bits);
        assert_int_equal(get32(p + 4 * k), bits);
    }
}

static void *checked_malloc(size_t bytes)
{
    void *block = malloc(bytes != 0 ? bytes : 1);
    assert_non_null(block);
    return block;
}

/* ---- networks ------------------------------------------------------------- */

static lstm_config lstm_shape(size_t input_size, size_t hidden_size, size_t layers, size_t proj,
                              uint32_t flags)
{
    lstm_config config;
    OK(lstm_config_init(&config, sizeof config));
    config.input_size = input_size;
    config.hidden_size = hidden_size;
    config.num_layers = layers;
    config.proj_size = proj;
    config.flags = flags;
    return config;
}

typedef struct net_spec {
    lstm_config lstm;
    size_t vocab; /* 0: features */
    bool padding;
    int64_t padding_idx;
    uint32_t head, loss;
    size_t head_size;
} net_spec;

static lstm_network *network_new(const net_spec *spec, uint64_t seed)
{
    lstm_embedding_config embedding;
    OK(lstm_embedding_config_init(&embedding, sizeof embedding));
    embedding.num_embeddings = spec->vocab;
    embedding.embedding_dim = spec->lstm.input_size;
    embedding.flags = spec->padding ? LSTM_EMBEDDING_PADDING : 0;
    embedding.padding_idx = spec->padding_idx;
    lstm_network_config config;
    OK(lstm_network_config_init(&config, sizeof config));
    config.lstm = &spec->lstm;
    config.embedding = spec->vocab != 0 ? &embedding : NULL;
    config.head = spec->head;
    config.loss = spec->loss;
    config.head_size = spec->head_size;
    lstm_network *network = NULL;
    OK(lstm_network_create(&config, &network));
    OK(lstm_network_init(network, seed, 0));
    return network;
}

/* A small token network with a last-step head and two metadata entries. */
static net_spec small_spec(void)
{
    net_spec spec = {lstm_shape(2, 3, 1, 0, 0), 4, true, 1, LSTM_HEAD_LAST_STEP,
                     LSTM_LOSS_CROSS_ENTROPY,   2};
    return spec;
}

static lstm_network *small_network(void)
{
    const net_spec spec = small_spec();
    lstm_network *network = network_new(&spec, 7);
    OK(lstm_network_set_meta(network, "labels", LSTM_META_TEXT, "no\nyes", 6));
    OK(lstm_network_set_meta(network, "blob", LSTM_META_BYTES, "\0\1\2", 3));
    return network;
}

static unsigned char *network_bytes(const lstm_network *network, const lstm_optim *optim,
                                    size_t *size)
{
    OK(lstm_network_save_buffer(network, optim, NULL, 0, size));
    unsigned char *bytes = checked_malloc(*size);
    size_t written = 0;
    OK(lstm_network_save_buffer(network, optim, bytes, *size, &written));
    assert_int_equal(written, *size);
    return bytes;
}

/* Every parameter of a part, as a copy. */
static void assert_floats_bits_equal(const float *a, size_t a_count, const float *b, size_t b_count)
{
    assert_int_equal(a_count, b_count);
    if (a_count != 0)
        assert_memory_equal(a, b, a_count * sizeof *a);
}

static void assert_networks_equal(lstm_network *a, lstm_network *b)
{
    lstm_network_config ca, cb;
    OK(lstm_network_config_init(&ca, sizeof ca));
    OK(lstm_network_config_init(&cb, sizeof cb));
    OK(lstm_network_get_config(a, &ca));
    OK(lstm_network_get_config(b, &cb));
    assert_int_equal(ca.head, cb.head);
    assert_int_equal(ca.loss, cb.loss);
    assert_int_equal(ca.head_size, cb.head_size);
    assert_int_equal(ca.lstm->input_size, cb.lstm->input_size);
    assert_int_equal(ca.lstm->hidden_size, cb.lstm->hidden_size);
    assert_int_equal(ca.lstm->num_layers, cb.lstm->num_layers);
    assert_int_equal(ca.lstm->proj_size, cb.lstm->proj_size);
    assert_int_equal(ca.lstm->flags, cb.lstm->flags);
    assert_memory_equal(&ca.lstm->dropout, &cb.lstm->dropout, sizeof(double));
    assert_int_equal(ca.embedding == NULL, cb.embedding == NULL);
    if (ca.embedding != NULL) {
        assert_int_equal(ca.embedding->num_embeddings, cb.embedding->num_embeddings);
        assert_int_equal(ca.embedding->embedding_dim, cb.embedding->embedding_dim);
        assert_int_equal(ca.embedding->flags, cb.embedding->flags);
        assert_int_equal(ca.embedding->padding_idx, cb.embedding->padding_idx);
    }
    float *pa, *pb;
    size_t na, nb;
    OK(lstm_model_params(lstm_network_model(a), &pa, &na));
    OK(lstm_model_params(lstm_network_model(b), &pb, &nb));
    assert_floats_bits_equal(pa, na, pb, nb);
    assert_int_equal(lstm_network_embedding(a) == NULL, lstm_network_embedding(b) == NULL);
    if (lstm_network_embedding(a) != NULL) {
        OK(lstm_embedding_params(lstm_network_embedding(a), &pa, &na));
        OK(lstm_embedding_params(lstm_network_embedding(b), &pb, &nb));
        assert_floats_bits_equal(pa, na, pb, nb);
    }
    assert_int_equal(lstm_network_head(a) == NULL, lstm_network_head(b) == NULL);
    if (lstm_network_head(a) != NULL) {
        OK(lstm_dense_params(lstm_network_head(a), &pa, &na));
        OK(lstm_dense_params(lstm_network_head(b), &pb, &nb));
        assert_floats_bits_equal(pa, na, pb, nb);
    }
    assert_int_equal(lstm_network_param_count(a), lstm_network_param_count(b));
    const size_t entries = lstm_network_meta_count(a);
    assert_int_equal(entries, lstm_network_meta_count(b));
    for (size_t n = 0; n < entries; n++) {
        const char *ka, *kb;
        OK(lstm_network_meta_key(a, n, &ka));
        OK(lstm_network_meta_key(b, n, &kb));
        assert_string_equal(ka, kb);
        uint32_t kind_a, kind_b;
        const void *va, *vb;
        size_t sa, sb;
        OK(lstm_network_get_meta(a, ka, &kind_a, &va, &sa));
        OK(lstm_network_get_meta(b, kb, &kind_b, &vb, &sb));
        assert_int_equal(kind_a, kind_b);
        assert_int_equal(sa, sb);
        if (sa != 0)
            assert_memory_equal(va, vb, sa);
        assert_int_equal(((const unsigned char *)vb)[sb], 0);
    }
}

/* Saved, loaded, compared, saved again to the same bytes. */
static void round_trip(lstm_network *network, const lstm_optim *optim)
{
    size_t size, again_size;
    unsigned char *bytes = network_bytes(network, optim, &size);
    lstm_network *loaded = NULL;
    OK(lstm_network_load_buffer(bytes, size, &loaded));
    assert_networks_equal(network, loaded);
    unsigned char *again = network_bytes(loaded, optim, &again_size);
    assert_int_equal(again_size, size);
    assert_memory_equal(again, bytes, size);
    /* the LSTM alone, through the model's loader */
    lstm_model *model = NULL;
    OK(lstm_model_load_buffer(bytes, size, &model));
    float *pa, *pb;
    size_t na, nb;
    OK(lstm_model_params(model, &pa, &na));
    OK(lstm_model_params(lstm_network_model(network), &pb, &nb));
    assert_floats_bits_equal(pa, na, pb, nb);
    lstm_model_destroy(model);
    lstm_network_destroy(loaded);
    free(again);
    free(bytes);
}

/* ---- 1. metadata ---------------------------------------------------------- */

static void expect_meta(lstm_network *network, const char *key, uint32_t kind, const void *value,
                        size_t size)
{
    uint32_t got_kind = 99;
    const void *got = NULL;
    size_t got_size = 99;
    OK(lstm_network_get_meta(network, key, &got_kind, &got, &got_size));
    assert_int_equal(got_kind, kind);
    assert_int_equal(got_size, size);
    if (size != 0)
        assert_memory_equal(got, value, size);
    assert_int_equal(((const unsigned char *)got)[size], 0); /* a NUL after it */
}

static void test_meta_calls(void **state)
{
    (void)state;
    const size_t live = lstm__mem_live_count();
    const net_spec spec = {lstm_shape(2, 3, 1, 0, 0), 0, false, 0, 0, 0, 0};
    lstm_network *network = network_new(&spec, 1);
    assert_int_equal(lstm_network_meta_count(network), 0);
    assert_int_equal(lstm_network_meta_count(NULL), 0);

    OK(lstm_network_set_meta(network, "description", LSTM_META_TEXT, "a test", 6));
    OK(lstm_network_set_meta(network, "bytes", LSTM_META_BYTES, "\0\xff\0", 3));
    OK(lstm_network_set_meta(network, "empty", LSTM_META_TEXT, NULL, 0));
    OK(lstm_network_set_meta(network, "empty bytes", LSTM_META_BYTES, "x", 0));
    OK(lstm_network_set_meta(network, "\xc3\xa9t\xc3\xa9", LSTM_META_TEXT, "\xe2\x82\xac", 3));
    OK(lstm_network_set_meta(network, "a", LSTM_META_TEXT, "1", 1));
    OK(lstm_network_set_meta(network, "ab", LSTM_META_TEXT, "2", 1));
    assert_int_equal(lstm_network_meta_count(network), 7);
    expect_meta(network, "description", LSTM_META_TEXT, "a test", 6);
    expect_meta(network, "bytes", LSTM_META_BYTES, "\0\xff\0", 3);
    expect_meta(network, "empty", LSTM_META_TEXT, "", 0);
    expect_meta(network, "empty bytes", LSTM_META_BYTES, "", 0);
    expect_meta(network, "\xc3\xa9t\xc3\xa9", LSTM_META_TEXT, "\xe2\x82\xac", 3);
    const void *value = NULL;
    OK(lstm_network_get_meta(network, "a", NULL, &value, NULL)); /* kind and size may be NULL */
    assert_string_equal(value, "1");

    /* listed in the order of the keys' bytes (unsigned: 0xC3 after ASCII; a
     * prefix first) */
    static const char *const order[] = {
        "a", "ab", "bytes", "description", "empty", "empty bytes", "\xc3\xa9t\xc3\xa9"};
    for (size_t n = 0; n < 7; n++) {
        const char *key = NULL;
        OK(lstm_network_meta_key(network, n, &key));
        assert_string_equal(key, order[n]);
    }
    const char *key = "untouched";
    assert_int_equal(lstm_network_meta_key(network, 7, &key), LSTM_E_ARG);
    assert_string_equal(key, "untouched");
    assert_non_null(strstr(lstm_error_message(), "index is 7"));

    /* replacing keeps the count and may change the kind */
    OK(lstm_network_set_meta(network, "description", LSTM_META_BYTES, "new", 3));
    assert_int_equal(lstm_network_meta_count(network), 7);
    expect_meta(network, "description", LSTM_META_BYTES, "new", 3);

    /* missing keys: nothing written */
    uint32_t kind = 77;
    size_t size = 77;
    value = &kind;
    assert_int_equal(lstm_network_get_meta(network, "missing", &kind, &value, &size),
                     LSTM_E_NOT_FOUND);
    assert_ptr_equal(value, &kind);
    assert_int_equal(kind, 77);
    assert_int_equal(size, 77);
    assert_non_null(strstr(lstm_error_message(), "missing"));
    assert_int_equal(lstm_network_get_meta(network, "", &kind, &value, &size), LSTM_E_NOT_FOUND);
    assert_int_equal(lstm_network_remove_meta(network, "missing"), LSTM_E_NOT_FOUND);
    assert_int_equal(lstm_network_remove_meta(network, "abc"), LSTM_E_NOT_FOUND);
    char long_key[400];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    assert_int_equal(lstm_network_get_meta(network, long_key, &kind, &value, &size),
                     LSTM_E_NOT_FOUND);

    /* removing */
    OK(lstm_network_remove_meta(network, "ab"));
    assert_int_equal(lstm_network_meta_count(network), 6);
    assert_int_equal(lstm_network_get_meta(network, "ab", NULL, &value, NULL), LSTM_E_NOT_FOUND);
    OK(lstm_network_meta_key(network, 1, &key));
    assert_string_equal(key, "bytes");
    OK(lstm_network_remove_meta(network, "\xc3\xa9t\xc3\xa9")); /* the last */
    OK(lstm_network_remove_meta(network, "a"));                 /* the first */
    assert_int_equal(lstm_network_meta_count(network), 4);
    OK(lstm_network_meta_key(network, 0, &key));
    assert_string_equal(key, "bytes");
    OK(lstm_network_set_meta(network, "a", LSTM_META_TEXT, "again", 5));
    expect_meta(network, "a", LSTM_META_TEXT, "again", 5);

    /* NULLs */
    assert_int_equal(lstm_network_set_meta(NULL, "k", 0, "v", 1), LSTM_E_NULL);
    assert_int_equal(lstm_network_set_meta(network, NULL, 0, "v", 1), LSTM_E_NULL);
    assert_int_equal(lstm_network_set_meta(network, "k", 0, NULL, 1), LSTM_E_NULL);
    assert_int_equal(lstm_network_get_meta(NULL, "a", NULL, &value, NULL), LSTM_E_NULL);
    assert_int_equal(lstm_network_get_meta(network, NULL, NULL, &value, NULL), LSTM_E_NULL);
    assert_int_equal(lstm_network_get_meta(network, "a", NULL, NULL, NULL), LSTM_E_NULL);
    assert_int_equal(lstm_network_remove_meta(NULL, "a"), LSTM_E_NULL);
    assert_int_equal(lstm_network_remove_meta(network, NULL), LSTM_E_NULL);
    assert_int_equal(lstm_network_meta_key(NULL, 0, &key), LSTM_E_NULL);
    assert_int_equal(lstm_network_meta_key(network, 0, NULL), LSTM_E_NULL);

    /* limits: a key of 1 .. 255 bytes, values up to 1 GiB, known kinds */
    char key255[256];
    memset(key255, 'z', 255);
    key255[255] = '\0';
    OK(lstm_network_set_meta(network, key255, LSTM_META_TEXT, "max", 3));
    expect_meta(network, key255, LSTM_META_TEXT, "max", 3);
    assert_int_equal(lstm_network_set_meta(network, long_key, 0, "v", 1), LSTM_E_SIZE);
    char key256[257];
    memset(key256, 'y', 256);
    key256[256] = '\0';
    assert_int_equal(lstm_network_set_meta(network, key256, 0, "v", 1), LSTM_E_SIZE);
    assert_int_equal(lstm_network_set_meta(network, "", 0, "v", 1), LSTM_E_SIZE);
    /* the size is refused before the value is read */
    assert_int_equal(lstm_network_set_meta(network, "big", 1, "v", LSTM_META_MAX_VALUE + 1),
                     LSTM_E_SIZE);
    assert_int_equal(lstm_network_set_meta(network, "big", 1, "v", SIZE_MAX), LSTM_E_SIZE);
    assert_int_equal(lstm_network_set_meta(network, "k", 2, "v", 1), LSTM_E_ARG);
    assert_non_null(strstr(lstm_error_message(), "kind is 2"));
    assert_int_equal(lstm_network_set_meta(network, "k", 0xFFFFFFFFu, "v", 1), LSTM_E_ARG);
    assert_int_equal(lstm_network_meta_count(network), 6);
    expect_meta(network, "a", LSTM_META_TEXT, "again", 5);

    lstm_network_destroy(network);
    assert_int_equal(lstm__mem_live_count(), live);
}

/* Strings that are not UTF-8 without NUL (RFC 3629), and ones that are. */
typedef struct utf8_case {
    const char *bytes;
    size_t length;
    const char *what;
} utf8_case;

#define CASE(literal, what) \
  { \
    literal, sizeof literal - 1, what \
  }

static const utf8_case bad_utf8[] = {
    CASE("\x80", "a lone continuation byte"),
    CASE("ab\xbf", "a continuation byte after ASCII"),
    CASE("\xc0\x80", "an overlong NUL"),
    CASE("\xc1\xbf", "an overlong two-byte form"),
    CASE("\xe0\x80\x80", "an overlong three-byte form"),
    CASE("\xe0\x9f\xbf", "an overlong U+07FF"),
    CASE("\xf0\x80\x80\x80", "an overlong four-byte form"),
    CASE("\xf0\x8f\xbf\xbf", "an overlong U+FFFF"),
    CASE("\xed\xa0\x80", "the surrogate U+D800"),
    CASE("\xed\xbf\xbf", "the surrogate U+DFFF"),
    CASE("\xf4\x90\x80\x80", "U+110000"),
    CASE("\xf5\x80\x80\x80", "a lead byte F5"),
    CASE("\xf8\x88\x80\x80\x80", "a five-byte form"),
    CASE("\xfe", "the byte FE"),
    CASE("\xff", "the byte FF"),
    CASE("\xc3", "a two-byte sequence cut short"),
    CASE("\xe2\x82", "a three-byte sequence cut short"),
    CASE("\xf0\x9f\x98", "a four-byte sequence cut short"),
    CASE("\xe2\x28\xa1", "a bad second byte"),
    CASE("\xe2\x82\x28", "a bad third byte"),
    CASE("\xf0\x9f\x98\x28", "a bad fourth byte"),
    CASE("a\0b", "a NUL"),
};

static const utf8_case good_utf8[] = {
    CASE("\x7f", "U+007F"),
    CASE("\xc2\x80", "U+0080"),
    CASE("\xdf\xbf", "U+07FF"),
    CASE("\xe0\xa0\x80", "U+0800"),
    CASE("\xed\x9f\xbf", "U+D7FF"),
    CASE("\xee\x80\x80", "U+E000"),
    CASE("\xef\xbf\xbf", "U+FFFF"),
    CASE("\xf0\x90\x80\x80", "U+10000"),
    CASE("\xf4\x8f\xbf\xbf", "U+10FFFF"),
    CASE("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "a mix"),
};

static void test_meta_utf8(void **state)
{
    (void)state;
    const net_spec spec = {lstm_shape(2, 3, 1, 0, 0), 0, false, 0, 0, 0, 0};
    lstm_network *network = network_new(&spec, 1);
    char key[16];
    for (size_t n = 0; n < sizeof bad_utf8 / sizeof bad_utf8[0]; n++) {
        const utf8_case *c = &bad_utf8[n];
        /* as a text value: refused; as bytes: kept */
        if (lstm_network_set_meta(network, "text", LSTM_META_TEXT, c->bytes, c->length) !=
            LSTM_E_ARG)
            fail_msg("a text value with %s was not refused", c->what);
        assert_non_null(strstr(lstm_error_message(), "text value"));
        OK(lstm_network_set_meta(network, "bytes", LSTM_META_BYTES, c->bytes, c->length));
        /* as a key (NUL-terminated: the case's bytes up to its NUL) */
        if (memchr(c->bytes, 0, c->length) == NULL) {
            snprintf(key, sizeof key, "k%s", c->bytes);
            if (lstm_network_set_meta(network, key, LSTM_META_TEXT, "v", 1) != LSTM_E_ARG)
                fail_msg("a key with %s was not refused", c->what);
            assert_non_null(strstr(lstm_error_message(), "the key"));
        }
    }
    assert_int_equal(lstm_network_meta_count(network), 1);
    for (size_t n = 0; n < sizeof good_utf8 / sizeof good_utf8[0]; n++) {
        const utf8_case *c = &good_utf8[n];
        if (lstm_network_set_meta(network, "text", LSTM_META_TEXT, c->bytes, c->length) != LSTM_OK)
            fail_msg("a text value of %s was refused: %s", c->what, lstm_error_message());
        snprintf(key, sizeof key, "k%s", c->bytes);
        if (lstm_network_set_meta(network, key, LSTM_META_TEXT, c->bytes, c->length) != LSTM_OK)
            fail_msg("a key of %s was refused: %s", c->what, lstm_error_message());
        expect_meta(network, key, LSTM_META_TEXT, c->bytes, c->length);
    }
    lstm_network_destroy(network);
}

/* LSTM_META_MAX_ENTRIES entries, and not one more; they save and load. */
static void test_meta_entry_limit(void **state)
{
    (void)state;
    const net_spec spec = {lstm_shape(1, 1, 1, 0, 0), 0, false, 0, 0, 0, 0};
    lstm_network *network = network_new(&spec, 1);
    char key[24];
    /* in descending order, so that every entry goes in at the front */
    for (size_t n = LSTM_META_MAX_ENTRIES; n-- > 0;) {
        snprintf(key, sizeof key, "%05zu", n);
        OK(lstm_network_set_meta(network, key, LSTM_META_BYTES, &n, n % 3));
    }
    assert_int_equal(lstm_network_meta_count(network), LSTM_META_MAX_ENTRIES);
    assert_int_equal(lstm_network_set_meta(network, "one more", LSTM_META_TEXT, "x", 1),
                     LSTM_E_SIZE);
    assert_int_equal(lstm_network_meta_count(network), LSTM_META_MAX_ENTRIES);
    /* replacing one is still fine */
    OK(lstm_network_set_meta(network, "00000", LSTM_META_TEXT, "x", 1));
    const char *first = NULL, *last = NULL;
    OK(lstm_network_meta_key(network, 0, &first));
    OK(lstm_network_meta_key(network, LSTM_META_MAX_ENTRIES - 1, &last));
    assert_string_equal(first, "00000");
    assert_string_equal(last, "65535");
    round_trip(network, NULL);

    /* a file with one META section more is refused */
    size_t size;
    unsigned char *bytes = network_bytes(network, NULL, &size);
    /* the last META section ("65535", a value of 65535 % 3 = 0 bytes),
     * repeated with a greater key before END */
    const size_t section = 20 + 16 + 5, end = size - 20, meta = end - section;
    assert_memory_equal(bytes + meta, "META", 4);
    assert_memory_equal(bytes + meta + 16 + 16, "65535", 5);
    unsigned char *more = checked_malloc(size + section);
    memcpy(more, bytes, end);
    memcpy(more + end, bytes + meta, section);
    memcpy(more + end + section, bytes + end, 20);
    memcpy(more + end + 16 + 16, "65536", 5);
    put32(more + end + section - 4, lstm__crc32c(0, more + end, section - 4));
    lstm_network *loaded = NULL;
    assert_int_equal(lstm_network_load_buffer(more, size + section, &loaded), LSTM_E_FORMAT);
    assert_null(loaded);
    assert_non_null(strstr(lstm_error_message(), "limit of 65536"));
    free(more);
    free(bytes);
    lstm_network_destroy(network);
}

/* ---- 2. round trips ------------------------------------------------------- */

static void test_round_trip_every_kind(void **state)
{
    (void)state;
    const size_t live = lstm__mem_live_count();
    const lstm_config shapes[] = {
        lstm_shape(3, 4, 1, 0, 0),
        lstm_shape(3, 5, 2, 2, LSTM_BIDIRECTIONAL | LSTM_PEEPHOLE),
        lstm_shape(2, 3, 3, 0, LSTM_BATCH_FIRST | LSTM_PEEPHOLE),
    };
    static const uint32_t heads[] = {LSTM_HEAD_NONE, LSTM_HEAD_EVERY_STEP, LSTM_HEAD_LAST_STEP};
    static const uint32_t losses[] = {LSTM_LOSS_NONE, LSTM_LOSS_CROSS_ENTROPY,
                                      LSTM_LOSS_BCE_WITH_LOGITS, LSTM_LOSS_MSE};
    size_t trips = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t vocab = 0; vocab <= 9; vocab += 9)
            for (size_t h = 0; h < 3; h++)
                for (size_t l = 0; l < 4; l++) {
                    if (heads[h] == LSTM_HEAD_NONE && losses[l] == LSTM_LOSS_CROSS_ENTROPY)
                        continue;
                    net_spec spec = {shapes[s], vocab,     s == 1, s == 1 ? 8 : 0,
                                     heads[h],  losses[l], 0};
                    spec.lstm.dropout = s == 2 ? 0.125 : 0.0;
                    if (heads[h] != LSTM_HEAD_NONE)
                        spec.head_size = (size_t)(1 + (l != 0)) + s;
                    lstm_network *network = network_new(&spec, 100 + trips);
                    if (trips % 2 == 0)
                        OK(lstm_network_set_meta(network, "description", LSTM_META_TEXT,
                                                 "round trip", 10));
                    round_trip(network, NULL);
                    lstm_network_destroy(network);
                    trips++;
                }
    assert_int_equal(trips, 3 * 2 * 11);
    assert_int_equal(lstm__mem_live_count(), live);
}

/* A vocabulary-like text of 20000 lines, empty values, the longest key. */
static void test_round_trip_metadata(void **state)
{
    (void)state;
    const net_spec spec = {lstm_shape(4, 3, 1, 0, 0), 20000, true, 0, LSTM_HEAD_EVERY_STEP,
                           LSTM_LOSS_CROSS_ENTROPY,   20000};
    lstm_network *network = network_new(&spec, 5);
    size_t capacity = 20000 * 16, length = 0;
    char *vocabulary = checked_malloc(capacity);
    for (size_t id = 0; id < 20000; id++)
        length += (size_t)snprintf(vocabulary + length, capacity - length, "%s%zu\xc3\xa9\n",
                                   id == 0 ? "<pad>" : "tok", id);
    OK(lstm_network_set_meta(network, "vocabulary", LSTM_META_TEXT, vocabulary, length));
    OK(lstm_network_set_meta(network, "empty text", LSTM_META_TEXT, "", 0));
    OK(lstm_network_set_meta(network, "empty bytes", LSTM_META_BYTES, NULL, 0));
    unsigned char all_bytes[256];
    for (int k = 0; k < 256; k++)
        all_bytes[k] = (unsigned char)k;
    OK(lstm_network_set_meta(network, "all bytes", LSTM_META_BYTES, all_bytes, sizeof all_bytes));
    char key255[256];
    memset(key255, 0, sizeof key255);
    for (size_t k = 0; k + 2 <= 254; k += 2)
        memcpy(key255 + k, "\xc3\xa9", 2); /* 254 bytes of é, then one ASCII */
    key255[254] = 'x';
    assert_int_equal(strlen(key255), 255);
    OK(lstm_network_set_meta(network, key255, LSTM_META_TEXT, "longest key", 11));
    round_trip(network, NULL);

    size_t size;
    unsigned char *bytes = network_bytes(network, NULL, &size);
    lstm_network *loaded = NULL;
    OK(lstm_network_load_buffer(bytes, size, &loaded));
    expect_meta(loaded, "vocabulary", LSTM_META_TEXT, vocabulary, length);
    expect_meta(loaded, "empty text", LSTM_META_TEXT, "", 0);
    expect_meta(loaded, "empty bytes", LSTM_META_BYTES, "", 0);
    expect_meta(loaded, "all bytes", LSTM_META_BYTES, all_bytes, sizeof all_bytes);
    expect_meta(loaded, key255, LSTM_META_TEXT, "longest key", 11);
    lstm_network_destroy(loaded);
    free(bytes);
    free(vocabulary);
    lstm_network_destroy(network);
}

/* The bytes of a saved network read with this test's own decoder, against
 * the spec: the sections in the writer's order and every field. */
static void test_layout_against_spec(void **state)
{
    (void)state;
    lstm_network *network = small_network();
    size_t size;
    unsigned char *bytes = network_bytes(network, NULL, &size);
    assert_memory_equal(bytes, "LSTMFILE\1\0\1\0", 12); /* format 1.1 */
    assert_int_equal(get32(bytes + 12), lstm__crc32c(0, bytes, 12));
    static const char *const tags[] = {"CONF", "NETW", "EMBD", "TENS", "TENS",
                                       "HEAD", "META", "META", "END "};
    static const uint32_t flags[] = {1, 1, 1, 1, 1, 1, 0, 0, 1};
    size_t at = 16;
    float *values;
    size_t count;
    for (size_t n = 0; n < sizeof tags / sizeof tags[0]; n++) {
        assert_true(at + 20 <= size);
        if (memcmp(bytes + at, tags[n], 4) != 0)
            fail_msg("section %zu is \"%.4s\"; expected \"%s\"", n, (const char *)(bytes + at),
                     tags[n]);
        assert_int_equal(get32(bytes + at + 4), flags[n]);
        const uint64_t length = get64(bytes + at + 8);
        assert_true(length <= size - at - 20);
        assert_int_equal(get32(bytes + at + 16 + length),
                         lstm__crc32c(0, bytes + at, 16 + (size_t)length));
        const unsigned char *p = bytes + at + 16;
        if (n == 1) { /* NETW: tokens, last step, cross-entropy, reserved, O */
            assert_int_equal(length, 24);
            assert_int_equal(get32(p), 1);
            assert_int_equal(get32(p + 4), 2);
            assert_int_equal(get32(p + 8), 1);
            assert_int_equal(get32(p + 12), 0);
            assert_int_equal(get64(p + 16), 2);
        } else if (n == 2) { /* EMBD: V, E, padding flag, reserved, padding_idx, W */
            assert_int_equal(length, 32 + 4 * 4 * 2);
            assert_int_equal(get64(p), 4);
            assert_int_equal(get64(p + 8), 2);
            assert_int_equal(get32(p + 16), 1);
            assert_int_equal(get32(p + 20), 0);
            assert_int_equal(get64(p + 24), 1);
            OK(lstm_embedding_params(lstm_network_embedding(network), &values, &count));
            assert_int_equal(count, 8);
            assert_floats_le(p + 32, values, 8);
        } else if (n == 5) { /* HEAD: O, K = R, W, b */
            assert_int_equal(length, 16 + 4 * (2 * 3 + 2));
            assert_int_equal(get64(p), 2);
            assert_int_equal(get64(p + 8), 3);
            OK(lstm_dense_params(lstm_network_head(network), &values, &count));
            assert_int_equal(count, 8);
            assert_floats_le(p + 16, values, 8);
        } else if (n == 6) { /* META "blob": bytes, sorted first */
            assert_int_equal(length, 16 + 4 + 3);
            assert_int_equal(get32(p), 1);
            assert_int_equal(get32(p + 4), 4);
            assert_int_equal(get64(p + 8), 3);
            assert_memory_equal(p + 16, "blob\0\1\2", 7);
        } else if (n == 7) { /* META "labels": text */
            assert_int_equal(length, 16 + 6 + 6);
            assert_int_equal(get32(p), 0);
            assert_int_equal(get32(p + 4), 6);
            assert_int_equal(get64(p + 8), 6);
            assert_memory_equal(p + 16, "labelsno\nyes", 12);
        }
        at += 20 + (size_t)length;
    }
    assert_int_equal(at, size);

    /* a model's file: the 1.0 sections, header minor 1 */
    lstm_model *model = lstm_network_model(network);
    OK(lstm_model_save_buffer(model, NULL, NULL, 0, &size));
    unsigned char *model_bytes = checked_malloc(size);
    OK(lstm_model_save_buffer(model, NULL, model_bytes, size, &size));
    assert_memory_equal(model_bytes, "LSTMFILE\1\0\1\0", 12);
    assert_memory_equal(model_bytes + 16, "CONF", 4);
    assert_memory_equal(model_bytes + 16 + 68, "TENS", 4);
    assert_memory_equal(model_bytes + size - 20, "END ", 4);
    for (size_t k = 0; k + 4 <= size; k++)
        assert_true(memcmp(model_bytes + k, "NETW", 4) != 0 && memcmp(model_bytes + k, "META", 4));
    /* which loads as a features network of the same LSTM, without a head */
    lstm_network *plain = NULL;
    OK(lstm_network_load_buffer(model_bytes, size, &plain));
    assert_null(lstm_network_embedding(plain));
    assert_null(lstm_network_head(plain));
    assert_int_equal(lstm_network_meta_count(plain), 0);
    OK(lstm_model_params(model, &values, &count));
    float *plain_values;
    size_t plain_count;
    OK(lstm_model_params(lstm_network_model(plain), &plain_values, &plain_count));
    assert_floats_bits_equal(values, count, plain_values, plain_count);
    lstm_network_destroy(plain);
    free(model_bytes);
    free(bytes);
    lstm_network_destroy(network);
}

/* Adam over every part (bound by buffers), two steps, saved with the
 * network: a second Adam bound the same way to the loaded network takes
 * the same state. */
static lstm_optim *adam_over(lstm_network *network)
{
    lstm_optim_options options;
    OK(lstm_optim_options_init(&options, sizeof options, LSTM_OPTIM_ADAM));
    options.lr = 0.01;
    lstm_optim *optim = NULL;
    OK(lstm_optim_create(&options, &optim));
    float *params, *grads;
    size_t count;
    OK(lstm_embedding_params(lstm_network_embedding(network), &params, &count));
    OK(lstm_embedding_grads(lstm_network_embedding(network), &grads, NULL));
    OK(lstm_optim_add_buffer(optim, params, grads, count));
    OK(lstm_optim_add_model(optim, lstm_network_model(network)));
    OK(lstm_dense_params(lstm_network_head(network), &params, &count));
    OK(lstm_dense_grads(lstm_network_head(network), &grads, NULL));
    OK(lstm_optim_add_buffer(optim, params, grads, count));
    return optim;
}

static void set_grads(lstm_network *network, uint32_t seed)
{
    float *grads;
    size_t count;
    OK(lstm_embedding_grads(lstm_network_embedding(network), &grads, &count));
    for (size_t k = 0; k < count; k++)
        grads[k] = (float)((k * 7 + seed) % 13) / 16.0f - 0.375f;
    OK(lstm_model_grads(lstm_network_model(network), &grads, &count));
    for (size_t k = 0; k < count; k++)
        grads[k] = (float)((k * 5 + seed) % 11) / 16.0f - 0.25f;
    OK(lstm_dense_grads(lstm_network_head(network), &grads, &count));
    for (size_t k = 0; k < count; k++)
        grads[k] = (float)((k * 3 + seed) % 7) / 8.0f - 0.375f;
}

static unsigned char *state_of(const lstm_optim *optim, size_t *bytes)
{
    OK(lstm_optim_state_size(optim, bytes));
    unsigned char *state = checked_malloc(*bytes);
    OK(lstm_optim_save_state(optim, state, *bytes));
    return state;
}

static void test_round_trip_optimizer(void **state)
{
    (void)state;
    const net_spec spec = {lstm_shape(3, 4, 2, 2, LSTM_BIDIRECTIONAL | LSTM_PEEPHOLE),
                           6,
                           true,
                           5,
                           LSTM_HEAD_EVERY_STEP,
                           LSTM_LOSS_MSE,
                           3};
    lstm_network *network = network_new(&spec, 9);
    OK(lstm_network_set_meta(network, "source", LSTM_META_TEXT, "torch", 5));
    lstm_optim *optim = adam_over(network);
    for (uint32_t step = 0; step < 2; step++) {
        set_grads(network, step);
        OK(lstm_optim_step(optim));
    }
    round_trip(network, optim);

    size_t size, state_bytes, loaded_bytes;
    unsigned char *bytes = network_bytes(network, optim, &size);
    lstm_network *loaded = NULL;
    OK(lstm_network_load_buffer(bytes, size, &loaded));
    assert_networks_equal(network, loaded);
    lstm_optim *resumed = adam_over(loaded);
    OK(lstm_optim_load_buffer(resumed, bytes, size));
    unsigned char *saved = state_of(optim, &state_bytes);
    unsigned char *restored = state_of(resumed, &loaded_bytes);
    assert_int_equal(loaded_bytes, state_bytes);
    assert_memory_equal(restored, saved, state_bytes);
    /* and both take the same next step */
    set_grads(network, 5);
    set_grads(loaded, 5);
    OK(lstm_optim_step(optim));
    OK(lstm_optim_step(resumed));
    assert_networks_equal(network, loaded);

    /* the path calls too */
    char directory[] = "/tmp/lstm-netfile-XXXXXX", path[64];
    assert_non_null(mkdtemp(directory));
    snprintf(path, sizeof path, "%s/network.lstm", directory);
    OK(lstm_network_save(network, optim, path));
    lstm_network *from_disk = NULL;
    OK(lstm_network_load(path, &from_disk));
    assert_networks_equal(network, from_disk);
    lstm_model *model = NULL;
    OK(lstm_model_load(path, &model));
    lstm_model_destroy(model);
    lstm_network_destroy(from_disk);
    unlink(path);
    rmdir(directory);

    lstm_optim_destroy(resumed);
    lstm_optim_destroy(optim);
    lstm_network_destroy(loaded);
    lstm_network_destroy(network);
    free(saved);
    free(restored);
    free(bytes);
}

/* Saving refuses what a loader would refuse, and bad arguments. */
static void test_save_arguments(void **state)
{
    (void)state;
    lstm_network *network = small_network();
    size_t size = 0;
    assert_int_equal(lstm_network_save_buffer(NULL, NULL, NULL, 0, &size), LSTM_E_NULL);
    assert_int_equal(lstm_network_save_buffer(network, NULL, NULL, 0, NULL), LSTM_E_NULL);
    assert_int_equal(lstm_network_save(NULL, NULL, "/tmp/x"), LSTM_E_NULL);
    assert_int_equal(lstm_network_save(network, NULL, NULL), LSTM_E_NULL);
    lstm_network *out = NULL;
    assert_int_equal(lstm_network_load_buffer(NULL, 0, &out), LSTM_E_NULL);
    assert_int_equal(lstm_network_load_buffer("x", 1, NULL), LSTM_E_NULL);
    assert_int_equal(lstm_network_load(NULL, &out), LSTM_E_NULL);
    assert_int_equal(lstm_network_load("/tmp/x", NULL), LSTM_E_NULL);
    assert_int_equal(lstm_network_load("/nonexistent/network.lstm", &out), LSTM_E_IO);
    assert_null(out);

    OK(lstm_network_save_buffer(network, NULL, NULL, 0, &size));
    unsigned char *bytes = checked_malloc(size);
    memset(bytes, 0xA5, size);
    size_t got = 0;
    assert_int_equal(lstm_network_save_buffer(network, NULL, bytes, size - 1, &got), LSTM_E_SHAPE);
    assert_int_equal(got, size);
    assert_int_equal(bytes[0], 0xA5);

    float *values;
    size_t count;
    OK(lstm_embedding_params(lstm_network_embedding(network), &values, &count));
    values[3] = NAN;
    assert_int_equal(lstm_network_save_buffer(network, NULL, bytes, size, &got), LSTM_E_NONFINITE);
    assert_non_null(strstr(lstm_error_message(), "embedding"));
    values[3] = 0.0f;
    OK(lstm_dense_params(lstm_network_head(network), &values, &count));
    values[count - 1] = INFINITY;
    assert_int_equal(lstm_network_save_buffer(network, NULL, bytes, size, &got), LSTM_E_NONFINITE);
    assert_non_null(strstr(lstm_error_message(), "head"));
    values[count - 1] = 0.0f;
    OK(lstm_model_params(lstm_network_model(network), &values, &count));
    values[0] = -INFINITY;
    assert_int_equal(lstm_network_save_buffer(network, NULL, bytes, size, &got), LSTM_E_NONFINITE);
    assert_int_equal(bytes[0], 0xA5);
    free(bytes);
    lstm_network_destroy(network);
}

/* ---- 3. compatibility ----------------------------------------------------- */

static void test_old_file_as_network(void **state)
{
    (void)state;
    const size_t live = lstm__mem_live_count();
    lstm_network *network = NULL;
    OK(lstm_network_load(DATA_DIR "/model-v1.lstm", &network));
    lstm_model *model = NULL;
    OK(lstm_model_load(DATA_DIR "/model-v1.lstm", &model));
    lstm_network_config config;
    OK(lstm_network_config_init(&config, sizeof config));
    OK(lstm_network_get_config(network, &config));
    assert_null(config.embedding);
    assert_int_equal(config.head, LSTM_HEAD_NONE);
    assert_int_equal(config.loss, LSTM_LOSS_NONE);
    assert_int_equal(config.head_size, 0);
    assert_null(lstm_network_embedding(network));
    assert_null(lstm_network_head(network));
    assert_int_equal(lstm_network_meta_count(network), 0);
    assert_int_equal(config.lstm->input_size, 3);
    assert_int_equal(config.lstm->flags, LSTM_BIDIRECTIONAL | LSTM_PEEPHOLE);
    float *a, *b;
    size_t na, nb;
    OK(lstm_model_params(model, &a, &na));
    OK(lstm_model_params(lstm_network_model(network), &b, &nb));
    assert_int_equal(na, 496);
    assert_floats_bits_equal(a, na, b, nb);
    /* saved as a network: NETW with features, no head; loads the same */
    round_trip(network, NULL);
    lstm_model_destroy(model);
    lstm_network_destroy(network);
    assert_int_equal(lstm__mem_live_count(), live);
}

/* ---- 4. hostile files ----------------------------------------------------- */

static void test_truncated_everywhere(void **state)
{
    (void)state;
    lstm_network *network = small_network();
    size_t size;
    unsigned char *bytes = network_bytes(network, NULL, &size);
    const size_t live = lstm__mem_live_count();
    for (size_t n = 0; n < size; n++) {
        unsigned char *cut = checked_malloc(n); /* exactly n bytes, for ASan */
        memcpy(cut, bytes, n);
        lstm_network *loaded = (lstm_network *)&n;
        lstm_model *model = (lstm_model *)&n;
        if (lstm_network_load_buffer(cut, n, &loaded) != LSTM_E_FORMAT)
            fail_msg("the file cut to %zu bytes was not refused as LSTM_E_FORMAT", n);
        assert_ptr_equal(loaded, &n);
        assert_int_equal(lstm_model_load_buffer(cut, n, &model), LSTM_E_FORMAT);
        assert_ptr_equal(model, &n);
        assert_int_equal(lstm__mem_live_count(), live);
        free(cut);
    }
    free(bytes);
    lstm_network_destroy(network);
}

/* A file as its list of sections, to alter and rebuild with valid CRCs. */
typedef struct section {
    char tag[4];
    uint32_t flags;
    unsigned char *payload;
    size_t length;
} section;

typedef struct image {
    unsigned char header[16];
    section sections[32];
    size_t count;
} image;

static void image_parse(image *img, const unsigned char *bytes, size_t size)
{
    memcpy(img->header, bytes, 16);
    img->count = 0;
    for (size_t at = 16; at < size;) {
        assert_true(img->count < 32);
        section *s = &img->sections[img->count++];
        memcpy(s->tag, bytes + at, 4);
        s->flags = get32(bytes + at + 4);
        s->length = (size_t)get64(bytes + at + 8);
        s->payload = checked_malloc(s->length);
        memcpy(s->payload, bytes + at + 16, s->length);
        at += 20 + s->length;
    }
}

static void image_free(image *img)
{
    for (size_t n = 0; n < img->count; n++)
        free(img->sections[n].payload);
    img->count = 0;
}

static unsigned char *image_build(const image *img, size_t *size)
{
    *size = 16;
    for (size_t n = 0; n < img->count; n++)
        *size += 20 + img->sections[n].length;
    unsigned char *bytes = checked_malloc(*size);
    memcpy(bytes, img->header, 16);
    size_t at = 16;
    for (size_t n = 0; n < img->count; n++) {
        const section *s = &img->sections[n];
        memcpy(bytes + at, s->tag, 4);
        put32(bytes + at + 4, s->flags);
        put64(bytes + at + 8, s->length);
        if (s->length != 0)
            memcpy(bytes + at + 16, s->payload, s->length);
        put32(bytes + at + 16 + s->length, lstm__crc32c(0, bytes + at, 16 + s->length));
        at += 20 + s->length;
    }
    return bytes;
}

/* The index of the nth section with this tag. */
static size_t image_find(const image *img, const char tag[4], size_t nth)
{
    for (size_t n = 0; n < img->count; n++)
        if (memcmp(img->sections[n].tag, tag, 4) == 0 && nth-- == 0)
            return n;
    fail_msg("no section %.4s", tag);
    return 0;
}

static void image_remove(image *img, size_t index)
{
    free(img->sections[index].payload);
    memmove(&img->sections[index], &img->sections[index + 1],
            (img->count - index - 1) * sizeof img->sections[0]);
    img->count--;
}

/* A copy of section `from` inserted at index. */
static void image_duplicate(image *img, size_t from, size_t index)
{
    assert_true(img->count < 32);
    section copy = img->sections[from];
    copy.payload = checked_malloc(copy.length);
    memcpy(copy.payload, img->sections[from].payload, copy.length);
    memmove(&img->sections[index + 1], &img->sections[index],
            (img->count - index) * sizeof img->sections[0]);
    img->sections[index] = copy;
    img->count++;
}

static void image_resize(image *img, size_t index, size_t length)
{
    section *s = &img->sections[index];
    unsigned char *payload = checked_malloc(length);
    memset(payload, 0, length);
    memcpy(payload, s->payload, length < s->length ? length : s->length);
    free(s->payload);
    s->payload = payload;
    s->length = length;
}

/* The image must be refused as LSTM_E_FORMAT by every loader, with a
 * message holding `why`, leaking nothing. */
static void expect_refused(const char *what, const image *img, const char *why)
{
    size_t size;
    unsigned char *bytes = image_build(img, &size);
    const size_t live = lstm__mem_live_count();
    lstm_network *network = NULL;
    lstm_status status = lstm_network_load_buffer(bytes, size, &network);
    if (status != LSTM_E_FORMAT)
        fail_msg("%s: lstm_network_load_buffer gave %d (%s), not LSTM_E_FORMAT", what, status,
                 lstm_error_message());
    if (strstr(lstm_error_message(), why) == NULL)
        fail_msg("%s: the message \"%s\" does not say \"%s\"", what, lstm_error_message(), why);
    assert_null(network);
    lstm_model *model = NULL;
    assert_int_equal(lstm_model_load_buffer(bytes, size, &model), LSTM_E_FORMAT);
    assert_null(model);
    assert_int_equal(lstm__mem_live_count(), live);
    free(bytes);
}

static void expect_loads(const char *what, const image *img)
{
    size_t size;
    unsigned char *bytes = image_build(img, &size);
    lstm_network *network = NULL;
    if (lstm_network_load_buffer(bytes, size, &network) != LSTM_OK)
        fail_msg("%s: refused: %s", what, lstm_error_message());
    lstm_network_destroy(network);
    free(bytes);
}

/* Runs `change` on a fresh image of the small network and expects it
 * refused. */
#define REFUSED(what, why, change) \
  do { \
    image img; \
    image_parse(&img, base, base_size); \
    change; \
    expect_refused(what, &img, why); \
    image_free(&img); \
  } while (0)

#define LOADS(what, change) \
  do { \
    image img; \
    image_parse(&img, base, base_size); \
    change; \
    expect_loads(what, &img); \
    image_free(&img); \
  } while (0)

#define FIELD32(tag, offset, value) \
  put32(img.sections[image_find(&img, tag, 0)].payload + (offset), (value))
#define FIELD64(tag, offset, value) \
  put64(img.sections[image_find(&img, tag, 0)].payload + (offset), (value))

static void test_hostile_sections(void **state)
{
    (void)state;
    lstm_network *network = small_network();
    size_t base_size;
    unsigned char *base = network_bytes(network, NULL, &base_size);
    const float nan = NAN;
    uint32_t nan_bits;
    memcpy(&nan_bits, &nan, 4);

    LOADS("the file as written", (void)0);
    /* sections anywhere after CONF */
    LOADS("NETW after the tensors", image_duplicate(&img, 1, 5); image_remove(&img, 1));
    LOADS("META before the tensors", image_duplicate(&img, 6, 1); image_duplicate(&img, 8, 2);
          image_remove(&img, 8); image_remove(&img, 8));

    /* NETW */
    REFUSED("NETW reserved", "NETW section at byte 84 has its reserved field set",
            FIELD32("NETW", 12, 1));
    REFUSED("NETW input 2", "input 2", FIELD32("NETW", 0, 2));
    REFUSED("NETW head 3", "head 3", FIELD32("NETW", 4, 3));
    REFUSED("NETW loss 4", "loss 4", FIELD32("NETW", 8, 4));
    REFUSED("NETW head_size 0", "head_size 0", FIELD64("NETW", 16, 0));
    REFUSED("NETW head_size past 2^24", "head_size 16777217", FIELD64("NETW", 16, (1u << 24) + 1));
    REFUSED("NETW head_size 1 with cross-entropy", "cross-entropy", FIELD64("NETW", 16, 1));
    REFUSED("NETW cross-entropy without a head", "cross-entropy", FIELD32("NETW", 4, 0);
            FIELD64("NETW", 16, 0));
    REFUSED("NETW head_size without a head", "without a head", FIELD32("NETW", 4, 0);
            FIELD32("NETW", 8, 0));
    REFUSED("NETW head_size 3 but HEAD 2", "NETW gives head_size 3", FIELD64("NETW", 16, 3));
    REFUSED("NETW length 23", "NETW section at byte 84 is 23 bytes", image_resize(&img, 1, 23));
    REFUSED("NETW length 32", "is 32 bytes", image_resize(&img, 1, 32));
    REFUSED("NETW twice", "a second NETW", image_duplicate(&img, 1, 2));
    REFUSED("NETW optional", "lacks the required flag", img.sections[1].flags = 0);
    REFUSED("NETW flag bit 1", "reserved flags", img.sections[1].flags = 3);
    REFUSED("NETW before CONF", "before the configuration", image_duplicate(&img, 1, 0);
            image_remove(&img, 2));
    REFUSED("EMBD without NETW", "no NETW section", image_remove(&img, 1));

    /* EMBD */
    REFUSED("EMBD V + 1", "EMBD section at byte 128 is 64 bytes long", FIELD64("EMBD", 0, 5));
    REFUSED("EMBD V 0", "num_embeddings 0", FIELD64("EMBD", 0, 0));
    REFUSED("EMBD V 2^31 + 1", "num_embeddings 2147483649", FIELD64("EMBD", 0, (1ull << 31) + 1));
    REFUSED("EMBD V 2^64 - 1", "num_embeddings 18446744073709551615",
            FIELD64("EMBD", 0, UINT64_MAX));
    REFUSED("EMBD E != input_size", "embedding_dim 3; it must be the LSTM's input_size, 2",
            FIELD64("EMBD", 8, 3));
    REFUSED("EMBD V E overflowing", "is 64 bytes long", FIELD64("EMBD", 0, 1ull << 31);
            FIELD64("EMBD", 8, 2));
    REFUSED("EMBD padding_idx = V", "padding_idx 4", FIELD64("EMBD", 24, 4));
    REFUSED("EMBD padding_idx negative", "padding_idx -1", FIELD64("EMBD", 24, UINT64_MAX));
    REFUSED("EMBD padding_idx without the flag", "padding_idx 1", FIELD32("EMBD", 16, 0));
    REFUSED("EMBD unknown flag", "unknown flags", FIELD32("EMBD", 16, 3));
    REFUSED("EMBD reserved", "reserved field", FIELD32("EMBD", 20, 1));
    REFUSED("EMBD NaN", "EMBD section at byte 128 holds NaN or infinity (value 5)",
            FIELD32("EMBD", 32 + 4 * 5, nan_bits));
    REFUSED("EMBD infinity", "(value 7)", FIELD32("EMBD", 32 + 4 * 7, 0x7F800000u));
    REFUSED("EMBD short", "too short", image_resize(&img, 2, 31));
    REFUSED("EMBD twice", "a second EMBD", image_duplicate(&img, 2, 3));
    REFUSED("EMBD missing", "has no EMBD section", image_remove(&img, 2));
    REFUSED("EMBD with input 0", "NETW input 0", FIELD32("NETW", 0, 0));
    REFUSED("EMBD optional", "EMBD section at byte 128 lacks the required flag",
            img.sections[2].flags = 0);

    /* HEAD */
    REFUSED("HEAD O 0", "out_features 0", FIELD64("HEAD", 0, 0));
    REFUSED("HEAD O past 2^24", "out_features 16777217", FIELD64("HEAD", 0, (1u << 24) + 1));
    REFUSED("HEAD O 3", "bytes long", FIELD64("HEAD", 0, 3));
    REFUSED("HEAD K != D R", "in_features 4; the LSTM gives 3", FIELD64("HEAD", 8, 4));
    REFUSED("HEAD K huge", "in_features 18446744073709551615", FIELD64("HEAD", 8, UINT64_MAX));
    REFUSED("HEAD one value short", "HEAD section", image_resize(&img, 5, 16 + 4 * 7));
    REFUSED("HEAD NaN weight", "HEAD section at byte", FIELD32("HEAD", 16, nan_bits));
    REFUSED("HEAD infinite bias", "(value 7)", FIELD32("HEAD", 16 + 4 * 7, 0xFF800000u));
    REFUSED("HEAD short", "too short", image_resize(&img, 5, 15));
    REFUSED("HEAD twice", "a second HEAD", image_duplicate(&img, 5, 6));
    REFUSED("HEAD missing", "no HEAD section", image_remove(&img, 5));
    REFUSED("HEAD without a head", "NETW head 0", FIELD32("NETW", 4, 0); FIELD32("NETW", 8, 0);
            FIELD64("NETW", 16, 0));
    REFUSED("HEAD optional", "lacks the required flag", img.sections[5].flags = 0);

    /* META: sections 6 ("blob", bytes) and 7 ("labels", text) */
    REFUSED("META not ascending", "strictly ascending", image_duplicate(&img, 6, 8);
            image_remove(&img, 6));
    REFUSED("META repeated", "strictly ascending", image_duplicate(&img, 6, 7));
    REFUSED("META required", "META section at byte", img.sections[6].flags = 1);
    REFUSED("META kind 2", "kind is 2", FIELD32("META", 0, 2));
    REFUSED("META key_length 0", "key_length 0", FIELD32("META", 4, 0));
    REFUSED("META key_length 256", "key_length 256", FIELD32("META", 4, 256));
    REFUSED("META key_length past the section", "a key of 5 bytes", FIELD32("META", 4, 5));
    REFUSED("META value_length past the section", "bytes long", FIELD64("META", 8, 4));
    REFUSED("META value_length 2^30 + 1", "value_length 1073741825",
            FIELD64("META", 8, (1u << 30) + 1));
    REFUSED("META value_length 2^64 - 1", "value_length", FIELD64("META", 8, UINT64_MAX));
    REFUSED("META short", "too short", image_resize(&img, 6, 15));
    REFUSED("META key with bad UTF-8", "key is not valid UTF-8 at byte 1",
            img.sections[6].payload[16 + 1] = 0xC0);
    REFUSED("META key with a NUL", "key holds a NUL byte at byte 3",
            img.sections[6].payload[16 + 3] = 0);
    REFUSED("META text with a surrogate", "text value is not valid UTF-8 at byte 0",
            memcpy(img.sections[7].payload + 16 + 6, "\xed\xa0\x80", 3));
    REFUSED("META text cut", "text value is not valid UTF-8 at byte 5",
            img.sections[7].payload[16 + 6 + 5] = 0xE2);
    REFUSED("META text with a NUL", "text value holds a NUL byte at byte 2",
            img.sections[7].payload[16 + 6 + 2] = 0);
    LOADS("META bytes with anything", memcpy(img.sections[6].payload + 16 + 4, "\xed\xa0\0", 3));
    REFUSED("META text made of bytes", "text value is not valid UTF-8", FIELD32("META", 0, 0);
            memcpy(img.sections[6].payload + 16 + 4, "\xff\0\0", 3));

    free(base);
    lstm_network_destroy(network);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_meta_calls),           cmocka_unit_test(test_meta_utf8),
        cmocka_unit_test(test_meta_entry_limit),     cmocka_unit_test(test_round_trip_every_kind),
        cmocka_unit_test(test_round_trip_metadata),  cmocka_unit_test(test_layout_against_spec),
        cmocka_unit_test(test_round_trip_optimizer), cmocka_unit_test(test_save_arguments),
        cmocka_unit_test(test_old_file_as_network),  cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_hostile_sections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
