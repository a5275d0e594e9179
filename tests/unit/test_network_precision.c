/*
 * A whole network in bf16 and int8 (issue 25): inference in a workspace's
 * or a state's reduced precision looks the embedding's rows up in it and
 * runs the head's product in it, and a quantized network file stores the
 * embedding and the head's W in it (format 1.3: EMBQ and HDQ ,
 * docs/model-format.md). White box (the file's checksums are this test's
 * to repair):
 *
 *   1. File sizes: fp32, bf16 and int8 files of one network are exactly
 *      the layout's formula, written out here section by section; the int8
 *      file of V = 1000, E = 64, H = 64, O = 1000 is under 0.3x the float32
 *      one. The EMBQ and HDQ  payloads are this test's own rounding and
 *      quantization of the float32 values (bf16 from the exponent; int8
 *      s = max |w| / 127 and q = round(w / s) per row).
 *   2. Round trips: a network saved in a precision and loaded runs in it to
 *      the bits it ran before (every step and last step heads, lengths),
 *      chunk by chunk through a state as in one call, and saves to the same
 *      bytes; a file whose int8 rows stop short of 127 (as PyTorch's
 *      per-tensor scales leave them) runs its own q and s, until a row's
 *      values change, which then alone is quantized again.
 *   3. The scheme: the embedding rows the LSTM receives are this test's
 *      rounding of the embedding (the LSTM's final states equal, bit for
 *      bit, the model's run on them), and the head's output agrees with a
 *      double-precision emulation of the documented scheme (W per output
 *      row, each row of the head's input per row) to 1e-5, while float32's
 *      head is far from it.
 *   4. Accuracy: on N(0, 1) head weights and inputs the head's output is
 *      within 0.5% (bf16) and 2% (int8) relative L2 of float32's head on
 *      the same input; the whole network's output against float32 is
 *      printed and bounded.
 *   5. Kept packings: with lstm_workspace_keep_weights() (or a state's) the
 *      head's packing is kept between calls, giving the bits of a workspace
 *      that packs at each call, through everything that must make it pack
 *      again: a new view of the head's parameters, another precision, a
 *      call of lstm_workspace_keep_weights() after a write it did not see,
 *      a training pass or another network on the workspace, an optimizer's
 *      step; a state's stream chunk by chunk equals one call.
 *   6. Hostile files: every field of EMBQ and HDQ  broken (precision, two
 *      precisions, scales NaN, negative or too large, q = -128, bf16 NaN or
 *      subnormal, lengths with valid checksums, reserved fields, the
 *      required bit, a float32 LSTM), and the file cut at every byte: each
 *      refused with LSTM_E_FORMAT, a message naming the rule, nothing
 *      returned and nothing leaked.
 */
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

#include "alloc.h"
#include "crc32c.h"
#include "lstm/lstm.h"
#include "test_precision_support.h"
#include "test_rng.h"

#define OK(call) \
  do { \
    const lstm_status status_ = (call); \
    if (status_ != LSTM_OK) \
      fail_msg("%s: %s", #call, lstm_error_message()); \
  } while (0)

static const lstm_precision REDUCED[] = {LSTM_PRECISION_BF16, LSTM_PRECISION_INT8};
static const char *const NAMES[] = {"fp32", "bf16", "int8"};

/* ---- little-endian fields, written apart from src/bytes.h ----------------- */

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

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

static float getf(const unsigned char *p)
{
    const uint32_t bits = get32(p);
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static void putf(unsigned char *p, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    put32(p, bits);
}

static uint32_t bits_of(float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits;
}

static void *checked_malloc(size_t bytes)
{
    void *block = malloc(bytes != 0 ? bytes : 1);
    assert_non_null(block);
    return block;
}

/* ---- the documented roundings, from the text of lstm/model.h -------------- */

static float clampf(float x, float lo, float hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

/* A row's int8 form: s = max |w| / 127 in float32, q = round(w / s)
 * (ties to even) in [-127, 127], all 0 where s is. Returns s. */
static float quantize_row(const float *w, size_t count, int8_t *q)
{
    float largest = 0.0f;
    for (size_t k = 0; k < count; k++)
        largest = fmaxf(largest, fabsf(w[k]));
    const float s = largest / 127.0f;
    for (size_t k = 0; k < count; k++)
        q[k] = s > 0.0f ? (int8_t)nearbyintf(clampf(w[k] / s, -127.0f, 127.0f)) : 0;
    return s;
}

/* A row of the head's input quantized to uint8 over its own range [lo, hi]
 * (0 in it): s_a = (hi - lo) / 255, r = 1 / s_a, z = round(-lo r),
 * u = round(a r) + z; a range below 1e-30 gives zeros. */
static void quantize_activations(const float *a, size_t count, int32_t *u, float *s_a, int32_t *z)
{
    float lo = 0.0f, hi = 0.0f;
    for (size_t k = 0; k < count; k++) {
        lo = fminf(lo, a[k]);
        hi = fmaxf(hi, a[k]);
    }
    const bool flat = hi - lo < 1e-30f;
    const float s = flat ? 0.0f : (hi - lo) / 255.0f, r = flat ? 0.0f : 1.0f / s;
    const float zero = flat ? 0.0f : nearbyintf(clampf(-lo * r, 0.0f, 255.0f));
    for (size_t k = 0; k < count; k++)
        u[k] = flat ? 0 : (int32_t)clampf(nearbyintf(a[k] * r) + zero, 0.0f, 255.0f);
    *s_a = s;
    *z = (int32_t)zero;
}

static uint16_t bf16_bits(float v)
{
    return (uint16_t)(bits_of(test_bf16(v)) >> 16);
}

/* ---- networks ------------------------------------------------------------- */

typedef struct spec {
    size_t vocab, input, hidden, layers, outputs; /* vocab 0: features */
    uint32_t head;
} spec;

static lstm_network *network_new(spec z, uint64_t seed)
{
    lstm_config lstm;
    OK(lstm_config_init(&lstm, sizeof lstm));
    lstm.input_size = z.input;
    lstm.hidden_size = z.hidden;
    lstm.num_layers = z.layers;
    lstm_embedding_config embedding;
    OK(lstm_embedding_config_init(&embedding, sizeof embedding));
    embedding.num_embeddings = z.vocab;
    embedding.embedding_dim = z.input;
    lstm_network_config config;
    OK(lstm_network_config_init(&config, sizeof config));
    config.lstm = &lstm;
    config.embedding = z.vocab != 0 ? &embedding : NULL;
    config.head = z.head;
    config.head_size = z.head != LSTM_HEAD_NONE ? z.outputs : 0;
    lstm_network *network = NULL;
    OK(lstm_network_create(&config, &network));
    OK(lstm_network_init(network, seed, 0));
    return network;
}

/* N(0, 1) by Box-Muller. */
static void gaussian(float *x, size_t count, uint64_t seed)
{
    rng r = {seed};
    for (size_t i = 0; i < count; i++) {
        const double u = rng_double(&r, 0x1p-53, 1.0), v = rng_double(&r, 0.0, 1.0);
        x[i] = (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
    }
}

static int64_t *tokens_new(size_t count, size_t vocab, uint64_t seed)
{
    rng r = {seed};
    int64_t *tokens = checked_malloc(count * sizeof *tokens);
    for (size_t k = 0; k < count; k++)
        tokens[k] = (int64_t)(rng_next(&r) % vocab);
    return tokens;
}

/* A call's sequences and where its results go. */
typedef struct call {
    size_t steps, batch;
    const size_t *lengths;
    const int64_t *tokens;
    const float *features;
    float *output, *hT;
} call;

static lstm_status infer(const lstm_network *network, lstm_workspace *workspace, const call *c)
{
    lstm_sequences sequences = LSTM_SEQUENCES_INIT;
    sequences.steps = c->steps;
    sequences.batch = c->batch;
    sequences.lengths = c->lengths;
    lstm_network_inputs inputs = LSTM_NETWORK_INPUTS_INIT;
    inputs.tokens = c->tokens;
    inputs.features = c->features;
    lstm_network_outputs outputs = LSTM_NETWORK_OUTPUTS_INIT;
    outputs.output = c->output;
    outputs.hT = c->hT;
    return lstm_network_infer(network, workspace, &sequences, &inputs, &outputs);
}

static lstm_workspace *workspace_in(lstm_network *network, lstm_precision precision)
{
    lstm_workspace *workspace = NULL;
    OK(lstm_workspace_create(lstm_network_model(network), &workspace));
    OK(lstm_workspace_set_precision(workspace, precision));
    return workspace;
}

static unsigned char *save(const lstm_network *network, lstm_precision precision, size_t *size)
{
    OK(lstm_network_save_quantized_buffer(network, precision, NULL, 0, size));
    unsigned char *bytes = checked_malloc(*size);
    OK(lstm_network_save_quantized_buffer(network, precision, bytes, *size, size));
    return bytes;
}

static float *params_of(lstm_network *network, bool head, size_t *count)
{
    float *values;
    if (head)
        OK(lstm_dense_params(lstm_network_head(network), &values, count));
    else
        OK(lstm_embedding_params(lstm_network_embedding(network), &values, count));
    return values;
}

static double relative_l2(const float *y, const double *reference, size_t count)
{
    double error = 0.0, norm = 0.0;
    for (size_t k = 0; k < count; k++) {
        error += (y[k] - reference[k]) * (y[k] - reference[k]);
        norm += reference[k] * reference[k];
    }
    return sqrt(error / norm);
}

/* ---- a file's sections ---------------------------------------------------- */

/* The offset of the n-th section with this tag (0 first), or 0. */
static size_t section_at(const unsigned char *bytes, size_t size, const char tag[4], size_t n)
{
    for (size_t at = 16; at + 20 <= size; at += 20 + (size_t)get64(bytes + at + 8))
        if (memcmp(bytes + at, tag, 4) == 0 && n-- == 0)
            return at;
    return 0;
}

/* The tags of a file's sections, one after another. */
static void tags_of(const unsigned char *bytes, size_t size, char *tags, size_t capacity)
{
    size_t used = 0;
    for (size_t at = 16; at + 20 <= size && used + 5 < capacity;
         at += 20 + (size_t)get64(bytes + at + 8)) {
        memcpy(tags + used, bytes + at, 4);
        tags[used + 4] = ' ';
        used += 5;
    }
    tags[used] = '\0';
}

/* Repairs the CRC of the section at `at` after its bytes were edited. */
static void reseal(unsigned char *bytes, size_t at)
{
    const size_t length = (size_t)get64(bytes + at + 8);
    put32(bytes + at + 16 + length, lstm__crc32c(0, bytes + at, 16 + length));
}

/* A copy of a file whose section at `at` has its payload resized to
 * `length` (cut, or padded with zeros), the length and CRC repaired. */
static unsigned char *resize_section(const unsigned char *bytes, size_t size, size_t at,
                                     size_t length, size_t *new_size)
{
    const size_t old = (size_t)get64(bytes + at + 8);
    *new_size = size - old + length;
    unsigned char *out = checked_malloc(*new_size);
    memcpy(out, bytes, at + 16);
    memset(out + at + 16, 0, length);
    memcpy(out + at + 16, bytes + at + 16, old < length ? old : length);
    memcpy(out + at + 20 + length, bytes + at + 20 + old, size - at - 20 - old);
    put64(out + at + 8, length);
    reseal(out, at);
    return out;
}

/* A file the loader must refuse with LSTM_E_FORMAT and a message that
 * says `why`, returning nothing and leaking nothing. */
static void expect_refused(const char *what, const unsigned char *bytes, size_t size,
                           const char *why)
{
    const size_t live = lstm__mem_live_count();
    lstm_network *network = (lstm_network *)(uintptr_t)1;
    const lstm_status status = lstm_network_load_buffer(bytes, size, &network);
    if (status != LSTM_E_FORMAT)
        fail_msg("%s: status %d (%s), not LSTM_E_FORMAT", what, (int)status, lstm_error_message());
    if (strstr(lstm_error_message(), why) == NULL)
        fail_msg("%s: the message \"%s\" does not say \"%s\"", what, lstm_error_message(), why);
    assert_ptr_equal(network, (lstm_network *)(uintptr_t)1);
    /* the model's loader checks the network's sections too */
    lstm_model *model = NULL;
    assert_int_equal(lstm_model_load_buffer(bytes, size, &model), LSTM_E_FORMAT);
    assert_null(model);
    assert_int_equal(lstm__mem_live_count(), live);
}

/* ---- 1. file sizes and payloads ------------------------------------------ */

/* Bytes of a matrix's values in a precision: float32, bf16, or int8 with a
 * float32 scale per row before the rows of q. */
static size_t matrix_bytes(lstm_precision precision, size_t rows, size_t cols)
{
    switch (precision) {
    case LSTM_PRECISION_BF16: return 2 * rows * cols;
    case LSTM_PRECISION_INT8: return 4 * rows + rows * cols;
    default: return 4 * rows * cols;
    }
}

/* The file of a one-layer token network with an every-step head, from
 * docs/model-format.md: header; CONF; NETW; EMBD or EMBQ; W as TENS or
 * QTNS (int8: a scale per row of each of its two parts); b as TENS; HEAD
 * or HDQ ; END. Each section 20 bytes of framing. */
static size_t formula(lstm_precision p, size_t V, size_t E, size_t H, size_t O)
{
    const size_t G = 4 * H, K = H + E;
    const bool q = p != LSTM_PRECISION_FP32;
    size_t bytes = 16 + (20 + 48) + (20 + 24);
    bytes += 20 + 32 + matrix_bytes(p, V, E);
    bytes += q ? 20 + 40 + (p == LSTM_PRECISION_INT8 ? 4 * 2 * G + G * K : 2 * G * K)
               : 20 + 32 + 9 + 4 * G * K; /* "weight_l0" */
    bytes += 20 + 32 + 7 + 4 * G;         /* "bias_l0" */
    bytes += 20 + (q ? 24u : 16u) + matrix_bytes(p, O, H) + 4 * O;
    return bytes + 20;
}

/* A payload's matrix against this test's rounding or quantization of the
 * float32 values, value by value. */
static void check_matrix(const unsigned char *p, lstm_precision precision, const float *values,
                         size_t rows, size_t cols)
{
    int8_t *q = checked_malloc(cols);
    for (size_t j = 0; j < rows; j++) {
        const float *row = values + j * cols;
        if (precision == LSTM_PRECISION_BF16) {
            for (size_t k = 0; k < cols; k++)
                assert_int_equal(p[2 * (j * cols + k)] | p[2 * (j * cols + k) + 1] << 8,
                                 bf16_bits(row[k]));
            continue;
        }
        const float s = quantize_row(row, cols, q);
        assert_int_equal(get32(p + 4 * j), bits_of(s));
        assert_memory_equal(p + 4 * rows + j * cols, q, cols);
    }
    free(q);
}

static void test_file_sizes_and_payloads(void **state)
{
    (void)state;
    const spec z = {1000, 64, 64, 1, 1000, LSTM_HEAD_EVERY_STEP};
    lstm_network *network = network_new(z, 3);
    size_t sizes[3];
    const char *const tags[3] = {"CONF NETW EMBD TENS TENS HEAD END  ",
                                 "CONF NETW EMBQ QTNS TENS HDQ  END  ",
                                 "CONF NETW EMBQ QTNS TENS HDQ  END  "};
    for (size_t p = 0; p < 3; p++) {
        const lstm_precision precision = (lstm_precision)p;
        unsigned char *bytes = save(network, precision, &sizes[p]);
        assert_int_equal(sizes[p], formula(precision, z.vocab, z.input, z.hidden, z.outputs));
        char found[64];
        tags_of(bytes, sizes[p], found, sizeof found);
        assert_string_equal(found, tags[p]);
        /* the lowest minor version holding the sections: 1.1, or 1.3 */
        assert_int_equal(get32(bytes + 8), p == 0 ? 0x00010001u : 0x00030001u);
        if (p != 0) {
            size_t count;
            const size_t embq = section_at(bytes, sizes[p], "EMBQ", 0);
            const unsigned char *e = bytes + embq + 16;
            assert_int_equal(get32(e + 0x14), (uint32_t)precision);
            assert_int_equal(get32(bytes + embq + 4), 1); /* required */
            check_matrix(e + 32, precision, params_of(network, false, &count), z.vocab, z.input);
            const size_t hdq = section_at(bytes, sizes[p], "HDQ ", 0);
            const unsigned char *h = bytes + hdq + 16;
            assert_int_equal(get32(bytes + hdq + 4), 1);
            assert_int_equal(get64(h), z.outputs);
            assert_int_equal(get64(h + 8), z.hidden);
            assert_int_equal(get32(h + 16), (uint32_t)precision);
            assert_int_equal(get32(h + 20), 0);
            const float *head = params_of(network, true, &count);
            check_matrix(h + 24, precision, head, z.outputs, z.hidden);
            const unsigned char *bias = h + 24 + matrix_bytes(precision, z.outputs, z.hidden);
            for (size_t j = 0; j < z.outputs; j++)
                assert_int_equal(get32(bias + 4 * j), bits_of(head[z.outputs * z.hidden + j]));
        }
        free(bytes);
    }
    print_message("V 1000, E 64, H 64, O 1000: fp32 %zu bytes, bf16 %zu (%.3fx), int8 %zu "
                  "(%.3fx)\n",
                  sizes[0], sizes[1], (double)sizes[1] / (double)sizes[0], sizes[2],
                  (double)sizes[2] / (double)sizes[0]);
    assert_true((double)sizes[2] < 0.3 * (double)sizes[0]);
    assert_true((double)sizes[1] < 0.55 * (double)sizes[0]);
    lstm_network_destroy(network);
}

/* ---- 2. round trips -------------------------------------------------------- */

static void check_round_trip(spec z, lstm_precision precision)
{
    const size_t T = 9, B = 5, O = z.outputs;
    const size_t lengths[5] = {9, 4, 7, 1, 9};
    lstm_network *network = network_new(z, 11);
    int64_t *tokens = tokens_new(T * B, z.vocab, 12);
    const size_t rows = z.head == LSTM_HEAD_LAST_STEP ? B : T * B;
    const size_t states = z.layers * B * z.hidden;
    float *before = checked_malloc(rows * O * sizeof(float));
    float *after = checked_malloc(rows * O * sizeof(float));
    float *hT_before = checked_malloc(states * sizeof(float));
    float *hT_after = checked_malloc(states * sizeof(float));
    lstm_workspace *workspace = workspace_in(network, precision);
    OK(infer(network, workspace, &(call){T, B, lengths, tokens, NULL, before, hT_before}));

    size_t size, again_size;
    unsigned char *bytes = save(network, precision, &size);
    lstm_network *loaded = NULL;
    OK(lstm_network_load_buffer(bytes, size, &loaded));
    lstm_workspace *other = workspace_in(loaded, precision);
    OK(infer(loaded, other, &(call){T, B, lengths, tokens, NULL, after, hT_after}));
    assert_memory_equal(after, before, rows * O * sizeof(float));
    assert_memory_equal(hT_after, hT_before, states * sizeof(float));
    unsigned char *again = save(loaded, precision, &again_size);
    assert_int_equal(again_size, size);
    assert_memory_equal(again, bytes, size);

    /* not float32's head: the precision changed the output */
    OK(lstm_workspace_set_precision(other, LSTM_PRECISION_FP32));
    OK(infer(loaded, other, &(call){T, B, lengths, tokens, NULL, after, NULL}));
    assert_memory_not_equal(after, before, rows * O * sizeof(float));

    /* an every-step head chunk by chunk through a state, as in one call */
    if (z.head == LSTM_HEAD_EVERY_STEP) {
        lstm_state *stream = NULL;
        OK(lstm_state_create(lstm_network_model(loaded), B, &stream));
        OK(lstm_state_set_precision(stream, precision));
        OK(lstm_workspace_set_precision(other, precision));
        OK(infer(loaded, other, &(call){T, B, NULL, tokens, NULL, before, NULL}));
        for (size_t first = 0, chunk = 4; first < T; first += chunk) {
            const size_t steps = first + chunk <= T ? chunk : T - first;
            lstm_sequences sequences = LSTM_SEQUENCES_INIT;
            sequences.steps = steps;
            sequences.batch = B;
            lstm_network_inputs inputs = LSTM_NETWORK_INPUTS_INIT;
            inputs.tokens = tokens + first * B;
            lstm_network_outputs outputs = LSTM_NETWORK_OUTPUTS_INIT;
            outputs.output = after + first * B * O;
            OK(lstm_network_infer_stream(loaded, stream, &sequences, &inputs, &outputs));
        }
        assert_memory_equal(after, before, T * B * O * sizeof(float));
        lstm_state_destroy(stream);
    }
    free(again);
    free(bytes);
    free(before);
    free(after);
    free(hT_before);
    free(hT_after);
    free(tokens);
    lstm_workspace_destroy(workspace);
    lstm_workspace_destroy(other);
    lstm_network_destroy(network);
    lstm_network_destroy(loaded);
}

static void test_round_trips_give_the_same_bits(void **state)
{
    (void)state;
    const spec every = {50, 12, 20, 2, 7, LSTM_HEAD_EVERY_STEP};
    const spec last = {30, 8, 16, 1, 3, LSTM_HEAD_LAST_STEP};
    for (size_t p = 0; p < 2; p++) {
        check_round_trip(every, REDUCED[p]);
        check_round_trip(last, REDUCED[p]);
    }
}

/*
 * An int8 file whose rows stop short of 127 (q scaled by 100/127, the
 * scales kept: q s is no longer what quantizing it again gives) runs and
 * saves its own q and s; a row whose values change is quantized again,
 * alone.
 */
static void test_stored_rows_stand_until_changed(void **state)
{
    (void)state;
    const spec z = {20, 8, 12, 1, 6, LSTM_HEAD_EVERY_STEP};
    const size_t T = 5, B = 3, V = z.vocab, E = z.input, O = z.outputs, K = z.hidden;
    lstm_network *network = network_new(z, 21);
    size_t size;
    unsigned char *bytes = save(network, LSTM_PRECISION_INT8, &size);
    lstm_network_destroy(network);
    const size_t embq = section_at(bytes, size, "EMBQ", 0),
                 hdq = section_at(bytes, size, "HDQ ", 0);
    unsigned char *eq = bytes + embq + 16 + 32 + 4 * V, *hq = bytes + hdq + 16 + 24 + 4 * O;
    for (size_t k = 0; k < V * E; k++)
        eq[k] = (unsigned char)(int8_t)nearbyint((int8_t)eq[k] * 100.0 / 127.0);
    for (size_t k = 0; k < O * K; k++)
        hq[k] = (unsigned char)(int8_t)nearbyint((int8_t)hq[k] * 100.0 / 127.0);
    reseal(bytes, embq);
    reseal(bytes, hdq);
    lstm_network *loaded = NULL;
    OK(lstm_network_load_buffer(bytes, size, &loaded));

    /* its float32 values are q s */
    size_t count;
    const float *embedding = params_of(loaded, false, &count),
                *head = params_of(loaded, true, &count);
    for (size_t v = 0; v < V; v++)
        for (size_t k = 0; k < E; k++)
            assert_int_equal(
                bits_of(embedding[v * E + k]),
                bits_of((float)(int8_t)eq[v * E + k] * getf(bytes + embq + 16 + 32 + 4 * v)));
    /* saved again: its own bytes */
    size_t again_size;
    unsigned char *again = save(loaded, LSTM_PRECISION_INT8, &again_size);
    assert_int_equal(again_size, size);
    assert_memory_equal(again, bytes, size);
    free(again);

    /* the embedding's rows reach the LSTM as the file's q s: the final
     * states are the model's on those rows, not on rows quantized again */
    int64_t *tokens = tokens_new(T * B, V, 22);
    float *x = checked_malloc(T * B * E * sizeof(float));
    for (size_t n = 0; n < T * B; n++)
        memcpy(x + n * E, embedding + (size_t)tokens[n] * E, E * sizeof(float));
    float *hT = checked_malloc(B * K * sizeof(float)),
          *hT_model = checked_malloc(B * K * sizeof(float));
    float *z_stored = checked_malloc(T * B * O * sizeof(float));
    lstm_workspace *workspace = workspace_in(loaded, LSTM_PRECISION_INT8);
    OK(infer(loaded, workspace, &(call){T, B, NULL, tokens, NULL, z_stored, hT}));
    lstm_sequences sequences = LSTM_SEQUENCES_INIT;
    sequences.steps = T;
    sequences.batch = B;
    const lstm_inputs inputs = {sizeof inputs, x, NULL, NULL};
    const lstm_outputs outputs = {sizeof outputs, NULL, hT_model, NULL};
    OK(lstm_model_infer(lstm_network_model(loaded), workspace, &sequences, &inputs, &outputs));
    assert_memory_equal(hT, hT_model, B * K * sizeof(float));

    /* one head row changed: saved quantized again from its new values,
     * the other rows as stored */
    float *W = params_of(loaded, true, &count);
    W[2 * K] += 1.0f; /* beyond the row's largest magnitude: a new scale */
    again = save(loaded, LSTM_PRECISION_INT8, &again_size);
    const unsigned char *h = again + hdq + 16 + 24;
    int8_t *q = checked_malloc(K);
    for (size_t j = 0; j < O; j++) {
        if (j != 2) {
            assert_memory_equal(h + 4 * j, bytes + hdq + 16 + 24 + 4 * j, 4);
            assert_memory_equal(h + 4 * O + j * K, hq + j * K, K);
            continue;
        }
        assert_int_equal(get32(h + 4 * j), bits_of(quantize_row(W + j * K, K, q)));
        assert_memory_equal(h + 4 * O + j * K, q, K);
    }
    /* and runs: that row alone differs from the stored run */
    float *z_changed = checked_malloc(T * B * O * sizeof(float));
    OK(infer(loaded, workspace, &(call){T, B, NULL, tokens, NULL, z_changed, NULL}));
    for (size_t r = 0; r < T * B; r++)
        for (size_t j = 0; j < O; j++)
            if (j == 2)
                assert_true(z_changed[r * O + j] != z_stored[r * O + j]);
            else
                assert_int_equal(bits_of(z_changed[r * O + j]), bits_of(z_stored[r * O + j]));
    (void)head;
    free(q);
    free(again);
    free(bytes);
    free(tokens);
    free(x);
    free(hT);
    free(hT_model);
    free(z_stored);
    free(z_changed);
    lstm_workspace_destroy(workspace);
    lstm_network_destroy(loaded);
}

/* ---- 3. the scheme ---------------------------------------------------------- */

/* z = x W^T + b for rows of x in the documented scheme, in double: bf16
 * operands; or W quantized per row, each row of x per row. */
static void emulate_head(lstm_precision precision, const float *x, size_t rows, size_t K,
                         const float *W, size_t O, double *z)
{
    const float *bias = W + O * K;
    int8_t *q = checked_malloc(O * K);
    float *s = checked_malloc(O * sizeof(float));
    int32_t *u = checked_malloc(K * sizeof(int32_t));
    for (size_t j = 0; j < O; j++)
        s[j] = quantize_row(W + j * K, K, q + j * K);
    for (size_t r = 0; r < rows; r++) {
        const float *a = x + r * K;
        float s_a = 0.0f;
        int32_t zero = 0;
        quantize_activations(a, K, u, &s_a, &zero);
        for (size_t j = 0; j < O; j++) {
            double sum = 0.0;
            if (precision == LSTM_PRECISION_BF16) {
                for (size_t k = 0; k < K; k++)
                    sum += (double)test_bf16(W[j * K + k]) * test_bf16(a[k]);
            } else {
                int64_t integer = 0;
                for (size_t k = 0; k < K; k++)
                    integer += (int64_t)(u[k] - zero) * q[j * K + k];
                sum = (double)integer * s_a * s[j];
            }
            z[r * O + j] = sum + bias[j];
        }
    }
    free(q);
    free(s);
    free(u);
}

/* The same product in float32's arithmetic (double): no rounding. */
static void float_head(const float *x, size_t rows, size_t K, const float *W, size_t O, double *z)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < O; j++) {
            double sum = W[O * K + j];
            for (size_t k = 0; k < K; k++)
                sum += (double)x[r * K + k] * W[j * K + k];
            z[r * O + j] = sum;
        }
}

static void test_scheme_is_the_documented_one(void **state)
{
    (void)state;
    const spec z = {40, 16, 24, 1, 30, LSTM_HEAD_EVERY_STEP};
    const size_t T = 6, B = 3, E = z.input, H = z.hidden, O = z.outputs, rows = T * B;
    lstm_network *network = network_new(z, 31);
    int64_t *tokens = tokens_new(rows, z.vocab, 32);
    float *x = checked_malloc(rows * E * sizeof(float)),
          *y = checked_malloc(rows * H * sizeof(float));
    float *hT = checked_malloc(B * H * sizeof(float)),
          *hT_net = checked_malloc(B * H * sizeof(float));
    float *out = checked_malloc(rows * O * sizeof(float));
    double *reference = checked_malloc(rows * O * sizeof(double));
    double *unrounded = checked_malloc(rows * O * sizeof(double));
    int8_t *q = checked_malloc(E);
    size_t count;
    const float *embedding = params_of(network, false, &count),
                *W = params_of(network, true, &count);
    for (size_t p = 0; p < 2; p++) {
        const lstm_precision precision = REDUCED[p];
        /* the rows the LSTM should receive: this test's rounding of each */
        for (size_t n = 0; n < rows; n++) {
            const float *row = embedding + (size_t)tokens[n] * E;
            const float s = quantize_row(row, E, q);
            for (size_t k = 0; k < E; k++)
                x[n * E + k] = precision == LSTM_PRECISION_BF16 ? test_bf16(row[k]) : q[k] * s;
        }
        lstm_workspace *workspace = workspace_in(network, precision);
        lstm_sequences sequences = LSTM_SEQUENCES_INIT;
        sequences.steps = T;
        sequences.batch = B;
        const lstm_inputs inputs = {sizeof inputs, x, NULL, NULL};
        const lstm_outputs outputs = {sizeof outputs, y, hT, NULL};
        OK(lstm_model_infer(lstm_network_model(network), workspace, &sequences, &inputs, &outputs));
        OK(infer(network, workspace, &(call){T, B, NULL, tokens, NULL, out, hT_net}));
        assert_memory_equal(hT_net, hT, B * H * sizeof(float));
        emulate_head(precision, y, rows, H, W, O, reference);
        float_head(y, rows, H, W, O, unrounded);
        const double error = relative_l2(out, reference, rows * O);
        double distance = 0.0, norm = 0.0;
        for (size_t k = 0; k < rows * O; k++) {
            distance += (unrounded[k] - reference[k]) * (unrounded[k] - reference[k]);
            norm += reference[k] * reference[k];
        }
        distance = sqrt(distance / norm);
        print_message("%s head: %.2e from the emulation; float32's head %.2e from it\n",
                      NAMES[precision], error, distance);
        assert_true(error < 1e-5);
        assert_true(distance > 100 * 1e-5);
        lstm_workspace_destroy(workspace);
    }
    free(q);
    free(tokens);
    free(x);
    free(y);
    free(hT);
    free(hT_net);
    free(out);
    free(reference);
    free(unrounded);
    lstm_network_destroy(network);
}

/* ---- 4. accuracy -------------------------------------------------------------- */

static void test_accuracy_against_float32(void **state)
{
    (void)state;
    const spec z = {0, 32, 64, 1, 200, LSTM_HEAD_EVERY_STEP};
    const size_t T = 20, B = 4, I = z.input, H = z.hidden, O = z.outputs, rows = T * B;
    lstm_network *network = network_new(z, 41);
    size_t count;
    float *W = params_of(network, true, &count);
    gaussian(W, count, 42); /* W and b ~ N(0, 1) */
    float *x = checked_malloc(rows * I * sizeof(float)),
          *y = checked_malloc(rows * H * sizeof(float));
    gaussian(x, rows * I, 43);
    float *out = checked_malloc(rows * O * sizeof(float)),
          *out32 = checked_malloc(rows * O * sizeof(float));
    double *reference = checked_malloc(rows * O * sizeof(double));
    lstm_workspace *workspace = workspace_in(network, LSTM_PRECISION_FP32);
    OK(infer(network, workspace, &(call){T, B, NULL, NULL, x, out32, NULL}));
    const double head_bound[2] = {0.005, 0.02}, network_bound[2] = {0.01, 0.04};
    for (size_t p = 0; p < 2; p++) {
        OK(lstm_workspace_set_precision(workspace, REDUCED[p]));
        lstm_sequences sequences = LSTM_SEQUENCES_INIT;
        sequences.steps = T;
        sequences.batch = B;
        const lstm_inputs inputs = {sizeof inputs, x, NULL, NULL};
        const lstm_outputs outputs = {sizeof outputs, y, NULL, NULL};
        OK(lstm_model_infer(lstm_network_model(network), workspace, &sequences, &inputs, &outputs));
        OK(infer(network, workspace, &(call){T, B, NULL, NULL, x, out, NULL}));
        /* the head alone: float32's head on the same input */
        float_head(y, rows, H, W, O, reference);
        const double head = relative_l2(out, reference, rows * O);
        /* the whole network against float32's */
        for (size_t k = 0; k < rows * O; k++)
            reference[k] = out32[k];
        const double whole = relative_l2(out, reference, rows * O);
        print_message("%s: head %.3f%% from float32's on the same input (bound %.1f%%), "
                      "network %.3f%% from float32\n",
                      NAMES[REDUCED[p]], 100 * head, 100 * head_bound[p], 100 * whole);
        assert_true(head > 0.0 && head < head_bound[p]);
        assert_true(whole > 0.0 && whole < network_bound[p]);
    }
    free(x);
    free(y);
    free(out);
    free(out32);
    free(reference);
    lstm_workspace_destroy(workspace);
    lstm_network_destroy(network);
}

/* ---- 5. kept packings ---------------------------------------------------------- */

/* The network's output on a new workspace that packs at each call, as the
 * reference of a kept packing's calls, and that call's output. */
static void expect_fresh(lstm_network *network, lstm_workspace *kept, lstm_precision precision,
                         const call *c, size_t count, const char *what)
{
    float *expected = checked_malloc(count * sizeof(float));
    lstm_workspace *fresh = workspace_in(network, precision);
    OK(infer(network, fresh,
             &(call){c->steps, c->batch, c->lengths, c->tokens, NULL, expected, NULL}));
    OK(infer(network, kept, c));
    if (memcmp(c->output, expected, count * sizeof(float)) != 0)
        fail_msg("%s in %s: the kept workspace's output is not a fresh one's", what,
                 NAMES[precision]);
    lstm_workspace_destroy(fresh);
    free(expected);
}

static void test_kept_head_packing(void **state)
{
    (void)state;
    const spec z = {30, 8, 16, 1, 12, LSTM_HEAD_EVERY_STEP};
    const size_t T = 4, B = 3, O = z.outputs, count = T * B * O;
    lstm_network *network = network_new(z, 61), *other = network_new(z, 62);
    int64_t *tokens = tokens_new(T * B, z.vocab, 63);
    float *out = checked_malloc(count * sizeof(float)),
          *first = checked_malloc(count * sizeof(float));
    const call c = {T, B, NULL, tokens, NULL, out, NULL};
    for (size_t p = 0; p < 2; p++) {
        const lstm_precision precision = REDUCED[p];
        lstm_workspace *kept = workspace_in(network, precision);
        OK(lstm_workspace_keep_weights(kept, 1));
        expect_fresh(network, kept, precision, &c, count, "the first call");
        memcpy(first, out, count * sizeof(float));
        expect_fresh(network, kept, precision, &c, count, "the second call");
        /* a new view of the head's parameters: written, packed again */
        size_t n;
        float *W = params_of(network, true, &n);
        W[0] += 0.5f;
        expect_fresh(network, kept, precision, &c, count, "a changed head");
        assert_memory_not_equal(out, first, count * sizeof(float));
        /* a write the old view made unseen: lstm_workspace_keep_weights()
         * makes the next call pack again */
        W[z.hidden + 1] -= 0.25f; /* row 1 */
        OK(lstm_workspace_keep_weights(kept, 1));
        expect_fresh(network, kept, precision, &c, count, "keep_weights after a write");
        /* another precision and back */
        OK(lstm_workspace_set_precision(kept, REDUCED[1 - p]));
        expect_fresh(network, kept, REDUCED[1 - p], &c, count, "the other precision");
        OK(lstm_workspace_set_precision(kept, precision));
        expect_fresh(network, kept, precision, &c, count, "the precision again");
        /* another network of the same shape on the workspace, then this one */
        expect_fresh(other, kept, precision, &c, count, "another network");
        expect_fresh(network, kept, precision, &c, count, "the network after another");
        /* a training forward writes over the scratch memory */
        lstm_sequences sequences = LSTM_SEQUENCES_INIT;
        sequences.steps = T;
        sequences.batch = B;
        lstm_network_inputs inputs = LSTM_NETWORK_INPUTS_INIT;
        inputs.tokens = tokens;
        OK(lstm_network_train_forward(network, kept, &sequences, &inputs, NULL));
        expect_fresh(network, kept, precision, &c, count, "a training forward");
        /* an optimizer's step over the network (the head bound as a buffer,
         * the model with it) */
        lstm_optim_options options;
        OK(lstm_optim_options_init(&options, sizeof options, LSTM_OPTIM_SGD));
        options.lr = 0.1;
        lstm_optim *optim = NULL;
        OK(lstm_optim_create(&options, &optim));
        OK(lstm_optim_add_network(optim, network));
        expect_fresh(network, kept, precision, &c, count, "a bound network");
        float *grads;
        OK(lstm_dense_grads(lstm_network_head(network), &grads, &n));
        for (size_t k = 0; k < n; k++)
            grads[k] = 1.0f;
        OK(lstm_optim_step(optim));
        expect_fresh(network, kept, precision, &c, count, "an optimizer's step");
        OK(lstm_network_zero_grads(network));
        lstm_optim_destroy(optim);

        /* a state that keeps weights: chunk by chunk as in one call */
        lstm_state *stream = NULL;
        OK(lstm_state_create(lstm_network_model(network), B, &stream));
        OK(lstm_state_set_precision(stream, precision));
        OK(lstm_state_keep_weights(stream, 1));
        OK(infer(network, kept, &(call){T, B, NULL, tokens, NULL, first, NULL}));
        for (size_t t = 0; t < T; t++) {
            lstm_sequences step = LSTM_SEQUENCES_INIT;
            step.steps = 1;
            step.batch = B;
            lstm_network_inputs one = LSTM_NETWORK_INPUTS_INIT;
            one.tokens = tokens + t * B;
            lstm_network_outputs outputs = LSTM_NETWORK_OUTPUTS_INIT;
            outputs.output = out + t * B * O;
            OK(lstm_network_infer_stream(network, stream, &step, &one, &outputs));
        }
        assert_memory_equal(out, first, count * sizeof(float));
        lstm_state_destroy(stream);
        lstm_workspace_destroy(kept);
    }
    free(tokens);
    free(out);
    free(first);
    lstm_network_destroy(network);
    lstm_network_destroy(other);
}

/* ---- 6. hostile files ---------------------------------------------------------- */

/* A copy of a file with `count` bytes at offset `at + offset` of a section
 * (its payload: offset from 16) replaced, the CRC repaired. */
static unsigned char *edited(const unsigned char *bytes, size_t size, size_t at, size_t offset,
                             const void *value, size_t count)
{
    unsigned char *out = checked_malloc(size);
    memcpy(out, bytes, size);
    memcpy(out + at + 16 + offset, value, count);
    reseal(out, at);
    return out;
}

#define REFUSED(what, why, copy, copy_size) \
  do { \
    unsigned char *bad_ = (copy); \
    expect_refused(what, bad_, copy_size, why); \
    free(bad_); \
  } while (0)

static void test_hostile_files_are_refused(void **state)
{
    (void)state;
    const spec z = {6, 4, 5, 1, 3, LSTM_HEAD_LAST_STEP};
    const size_t V = z.vocab, E = z.input, O = z.outputs, K = z.hidden;
    lstm_network *network = network_new(z, 51);
    size_t size8, size16, size32, n;
    unsigned char *int8 = save(network, LSTM_PRECISION_INT8, &size8);
    unsigned char *bf16 = save(network, LSTM_PRECISION_BF16, &size16);
    unsigned char *fp32 = save(network, LSTM_PRECISION_FP32, &size32);
    const size_t embq = section_at(int8, size8, "EMBQ", 0),
                 hdq = section_at(int8, size8, "HDQ ", 0);
    const size_t embq16 = section_at(bf16, size16, "EMBQ", 0);
    const size_t hdq16 = section_at(bf16, size16, "HDQ ", 0);
    unsigned char field[8];
    const float nan = NAN;

    /* the precision field */
    put32(field, 3);
    REFUSED("EMBQ precision 3", "has precision 3", edited(int8, size8, embq, 20, field, 4), size8);
    REFUSED("HDQ precision 3", "has precision 3", edited(int8, size8, hdq, 16, field, 4), size8);
    put32(field, 0);
    REFUSED("EMBQ precision 0", "has precision 0", edited(int8, size8, embq, 20, field, 4), size8);
    put32(field, LSTM_PRECISION_BF16);
    REFUSED("EMBQ in bf16 in an int8 file", "two precisions",
            edited(int8, size8, embq, 20, field, 4), size8);
    REFUSED("HDQ in bf16 in an int8 file", "two precisions", edited(int8, size8, hdq, 16, field, 4),
            size8);
    put32(field, LSTM_PRECISION_INT8);
    REFUSED("HDQ in int8 in a bf16 file", "two precisions",
            edited(bf16, size16, hdq16, 16, field, 4), size16);

    /* int8 scales and q */
    putf(field, nan);
    REFUSED("EMBQ scale NaN", "scale", edited(int8, size8, embq, 32 + 4 * 2, field, 4), size8);
    REFUSED("HDQ scale NaN", "scale", edited(int8, size8, hdq, 24 + 4, field, 4), size8);
    putf(field, -0.25f);
    REFUSED("EMBQ scale negative", "scale", edited(int8, size8, embq, 32, field, 4), size8);
    REFUSED("HDQ scale negative", "scale", edited(int8, size8, hdq, 24, field, 4), size8);
    putf(field, 3e36f);
    REFUSED("EMBQ scale whose q s overflows", "128 s finite",
            edited(int8, size8, embq, 32, field, 4), size8);
    putf(field, INFINITY);
    REFUSED("HDQ scale infinite", "scale", edited(int8, size8, hdq, 24, field, 4), size8);
    field[0] = 0x80;
    REFUSED("EMBQ q = -128", "q = -128", edited(int8, size8, embq, 32 + 4 * V + 7, field, 1),
            size8);
    REFUSED("HDQ q = -128", "q = -128", edited(int8, size8, hdq, 24 + 4 * O + 2, field, 1), size8);
    putf(field, nan);
    REFUSED("HDQ bias NaN", "NaN or infinity",
            edited(int8, size8, hdq, 24 + 4 * O + O * K + 4, field, 4), size8);

    /* bf16 values */
    const uint16_t bad16[3] = {0x7f80, 0xffc1, 0x0001};
    for (n = 0; n < 3; n++) {
        const unsigned char le[2] = {(unsigned char)(bad16[n] & 0xff),
                                     (unsigned char)(bad16[n] >> 8)};
        REFUSED("EMBQ bf16 value", n < 2 ? "NaN or infinite" : "subnormal",
                edited(bf16, size16, embq16, 32 + 2 * 5, le, 2), size16);
        REFUSED("HDQ bf16 value", n < 2 ? "NaN or infinite" : "subnormal",
                edited(bf16, size16, hdq16, 24 + 2 * 3, le, 2), size16);
    }

    /* fields and lengths against each other, the checksums valid */
    put64(field, V + 1);
    REFUSED("EMBQ V + 1", "bytes long", edited(int8, size8, embq, 0, field, 8), size8);
    put64(field, E + 1);
    REFUSED("EMBQ E + 1", "embedding_dim", edited(int8, size8, embq, 8, field, 8), size8);
    put64(field, O + 1);
    REFUSED("HDQ O + 1", "bytes long", edited(int8, size8, hdq, 0, field, 8), size8);
    put64(field, K + 1);
    REFUSED("HDQ K + 1", "in_features", edited(int8, size8, hdq, 8, field, 8), size8);
    put32(field, 1);
    REFUSED("HDQ reserved", "reserved", edited(int8, size8, hdq, 20, field, 4), size8);
    put32(field, 2);
    REFUSED("EMBQ flags", "flags", edited(int8, size8, embq, 16, field, 4), size8);
    size_t bad_size;
    const size_t embq_length = (size_t)get64(int8 + embq + 8),
                 hdq_length = (size_t)get64(int8 + hdq + 8);
    REFUSED("EMBQ a byte short", "bytes long",
            resize_section(int8, size8, embq, embq_length - 1, &bad_size), bad_size);
    REFUSED("EMBQ a byte long", "bytes long",
            resize_section(int8, size8, embq, embq_length + 1, &bad_size), bad_size);
    REFUSED("HDQ a bias short", "bytes long",
            resize_section(int8, size8, hdq, hdq_length - 4, &bad_size), bad_size);
    REFUSED("HDQ fields cut", "too short", resize_section(int8, size8, hdq, 20, &bad_size),
            bad_size);
    REFUSED("EMBQ fields cut", "too short", resize_section(int8, size8, embq, 31, &bad_size),
            bad_size);
    {
        unsigned char *optional = checked_malloc(size8);
        memcpy(optional, int8, size8);
        put32(optional + embq + 4, 0); /* the section's flags */
        reseal(optional, embq);
        REFUSED("EMBQ not required", "lacks the required flag", optional, size8);
    }

    /* EMBQ beside a float32 LSTM: the file's W in TENS */
    {
        const size_t embd = section_at(fp32, size32, "EMBD", 0);
        const size_t old = 20 + (size_t)get64(fp32 + embd + 8), new = 20 + embq_length;
        const size_t length = size32 - old + new;
        unsigned char *mixed = checked_malloc(length);
        memcpy(mixed, fp32, embd);
        memcpy(mixed + embd, int8 + embq, new);
        memcpy(mixed + embd + new, fp32 + embd + old, size32 - embd - old);
        REFUSED("EMBQ with W in float32", "float32 in a quantized file", mixed, length);
    }
    /* EMBD and EMBQ both */
    {
        const size_t length = size8 + 20 + embq_length;
        unsigned char *twice = checked_malloc(length);
        memcpy(twice, int8, embq + 20 + embq_length);
        memcpy(twice + embq + 20 + embq_length, int8 + embq, size8 - embq);
        REFUSED("EMBQ twice", "a second EMBQ", twice, length);
    }
    /* cut at every byte */
    for (size_t cut = 0; cut < size8; cut++) {
        lstm_network *loaded = (lstm_network *)(uintptr_t)1;
        const lstm_status status = lstm_network_load_buffer(int8, cut, &loaded);
        assert_int_equal(status, LSTM_E_FORMAT);
        assert_ptr_equal(loaded, (lstm_network *)(uintptr_t)1);
    }
    /* and the untouched files load */
    lstm_network *loaded = NULL;
    OK(lstm_network_load_buffer(int8, size8, &loaded));
    lstm_network_destroy(loaded);
    OK(lstm_network_load_buffer(bf16, size16, &loaded));
    lstm_network_destroy(loaded);
    free(int8);
    free(bf16);
    free(fp32);
    lstm_network_destroy(network);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_sizes_and_payloads),
        cmocka_unit_test(test_round_trips_give_the_same_bits),
        cmocka_unit_test(test_stored_rows_stand_until_changed),
        cmocka_unit_test(test_scheme_is_the_documented_one),
        cmocka_unit_test(test_accuracy_against_float32),
        cmocka_unit_test(test_kept_head_packing),
        cmocka_unit_test(test_hostile_files_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
