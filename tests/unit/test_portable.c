/*
 * Model files are the same bytes on every host (docs/model-format.md), and
 * a file written on one loads on any other, bit for bit. CI runs this test
 * on x86-64, and under qemu-user on aarch64 and on s390x, a big-endian host
 * (tests/scripts/cross.sh), against one file written on x86-64:
 * data/portable/model.lstm, a model and an Adam state whose every value is
 * a closed-form pattern of its index (exact in float32), so that the test
 * knows them without the library. On each host it
 *   - checks the little-endian encoders of src/bytes.h and the CRC-32C of
 *     src/crc32c.c against values known independently (RFC 3720's vectors
 *     and a bit-by-bit CRC here), at every alignment;
 *   - reads the committed file with its own decoder, the format's tables in
 *     hand: every field, every section's CRC, every value;
 *   - loads it with the library: configuration, parameters, optimizer
 *     state and step count, bit for bit, the state that
 *     lstm_optim_save_state() then writes being the file's OPTM payload,
 *     byte for byte (one little-endian encoding, lstm/optim.h);
 *   - builds the same model and state from the patterns, saves them, and
 *     compares the bytes with the committed file, all of them;
 *   - runs a forward pass of the loaded model and compares it with
 *     data/portable/forward.txt, the outputs on x86-64. Those are not
 *     bitwise across CPUs: the library promises the same bits on one CPU
 *     only (lstm/common.h, "Determinism": the products, and on x86-64 with
 *     AVX2 or AVX-512 the activations, use fused multiply-adds where the
 *     CPU has them), so the check has a tolerance; see FORWARD_TOLERANCE.
 *
 * Both files come from this program, run on x86-64 (data/portable/README.md):
 *     test_portable --write tests/unit/data/portable
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

#include "bytes.h"
#include "crc32c.h"
#include "lstm/lstm.h"

#ifndef PORTABLE_DIR
#  error "PORTABLE_DIR (tests/unit/data/portable) must be defined"
#endif

/* The model: 2 bidirectional layers with projections and peepholes, batch
 * first; 348 parameters. */
enum { I = 2, H = 3, P = 2, L = 2, D = 2 };
#define FLAGS (LSTM_BIDIRECTIONAL | LSTM_BATCH_FIRST | LSTM_PEEPHOLE)
#define DROPOUT 0.1 /* 0x3FB999999999999A: eight different bytes */
#define PARAMS ((size_t)348)

/* The optimizer: Adam, maximising (flags not 0), two state arrays, and a
 * step count whose seven low bytes all differ (at most 2^53, the limit). */
#define OPTIM_FLAGS LSTM_OPTIM_MAXIMIZE
#define STATE_ARRAYS ((size_t)2)
#define STEP_COUNT UINT64_C(0x0012345678ABCDEF)
#define STATE_HEADER ((size_t)40)
#define STATE_BYTES (STATE_HEADER + STATE_ARRAYS * PARAMS * sizeof(float))

/* The forward pass: batch first, [B][T][I], sequences of their own lengths. */
enum { T = 5, B = 3 };
static const size_t LENGTHS[B] = {5, 2, 4};
#define Y_COUNT ((size_t)B * T * D * P)
#define HT_COUNT ((size_t)L * D * B * P)
#define CT_COUNT ((size_t)L * D * B * H)
#define OUTPUTS (Y_COUNT + HT_COUNT + CT_COUNT)

/*
 * |this host's output - x86-64's| <= FORWARD_TOLERANCE * max(1, |x86-64's|).
 * The outputs differ in their last bits only, by where the CPU fuses
 * multiply-adds. Measured when forward.txt was written (x86-64 with
 * AVX-512: products and activations fused): aarch64 and s390x (products
 * fused, activations not) gave the same bits as each other and differed
 * in 22 of the 120 values, x86-64 without clones (nothing fused) in 46,
 * all by at most 6e-8. A misplaced byte or a wrong kernel misses by far
 * more.
 */
#define FORWARD_TOLERANCE 2e-6

/* ---- the closed-form patterns ------------------------------------------- */

/* Parameter k: a multiple of 1/64 in [-50/64, 50/64], exact in float32. */
static float param_value(size_t k)
{
    return (float)((int)(k * 37 % 101) - 50) / 64.0f;
}

/* Adam's exp_avg (array 0) and exp_avg_sq (array 1, positive) at k. */
static float state_value(size_t array, size_t k)
{
    if (array == 0)
        return (float)((int)(k * 53 % 97) - 48) / 128.0f;
    return (float)(k * 29 % 89 + 1) / 256.0f;
}

static float input_value(size_t k)
{
    return (float)((int)(k * 13 % 29) - 14) / 16.0f;
}

static float h0_value(size_t k)
{
    return (float)((int)(k * 7 % 11) - 5) / 8.0f;
}

static float c0_value(size_t k)
{
    return (float)((int)(k * 5 % 13) - 6) / 4.0f;
}

/* ---- little-endian reading and CRC-32C, independent of src/ ------------- */

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void put_le(unsigned char *p, uint64_t value, size_t width)
{
    for (size_t k = 0; k < width; k++)
        p[k] = (unsigned char)(value >> (8 * k));
}

static uint32_t float_bits(float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

static uint64_t double_bits(double value)
{
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

/* CRC-32C one bit at a time, straight from the reflected polynomial. */
static uint32_t crc_bitwise(uint32_t crc, const unsigned char *data, size_t size)
{
    crc = ~crc;
    for (size_t n = 0; n < size; n++) {
        crc ^= data[n];
        for (int bit = 0; bit < 8; bit++)
            crc = crc & 1u ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    }
    return ~crc;
}

/* ---- helpers ------------------------------------------------------------- */

static unsigned char *read_file(const char *path, size_t *size)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        fail_msg("cannot open %s", path);
    assert_int_equal(fseek(file, 0, SEEK_END), 0);
    long length = ftell(file);
    assert_true(length > 0);
    rewind(file);
    unsigned char *bytes = malloc((size_t)length);
    assert_non_null(bytes);
    assert_int_equal(fread(bytes, 1, (size_t)length, file), (size_t)length);
    fclose(file);
    *size = (size_t)length;
    return bytes;
}

static void make_config(lstm_config *config)
{
    assert_int_equal(lstm_config_init(config, sizeof *config), LSTM_OK);
    config->input_size = I;
    config->hidden_size = H;
    config->num_layers = L;
    config->proj_size = P;
    config->flags = FLAGS;
    config->dropout = DROPOUT;
}

/* The model with the closed-form parameters. */
static lstm_model *pattern_model(void)
{
    lstm_config config;
    make_config(&config);
    lstm_model *model = NULL;
    assert_int_equal(lstm_model_create(&config, &model), LSTM_OK);
    assert_int_equal(lstm_model_param_count(model), PARAMS);
    float values[PARAMS];
    for (size_t k = 0; k < PARAMS; k++)
        values[k] = param_value(k);
    assert_int_equal(lstm_model_set_params(model, values, PARAMS), LSTM_OK);
    return model;
}

/* An Adam optimizer bound to the model, with no state yet. */
static lstm_optim *adam_for(lstm_model *model)
{
    lstm_optim_options options;
    assert_int_equal(lstm_optim_options_init(&options, sizeof options, LSTM_OPTIM_ADAM), LSTM_OK);
    options.flags = OPTIM_FLAGS;
    lstm_optim *optim = NULL;
    assert_int_equal(lstm_optim_create(&options, &optim), LSTM_OK);
    assert_int_equal(lstm_optim_add_model(optim, model), LSTM_OK);
    return optim;
}

/* The closed-form state, little-endian on every host (lstm/optim.h). */
static void pattern_state(unsigned char state[STATE_BYTES])
{
    const uint32_t words[4] = {0x4C4F5054u, 1u, (uint32_t)LSTM_OPTIM_ADAM, OPTIM_FLAGS};
    const uint64_t counts[3] = {STEP_COUNT, PARAMS, STATE_ARRAYS};
    for (size_t n = 0; n < 4; n++)
        put_le(state + 4 * n, words[n], 4);
    for (size_t n = 0; n < 3; n++)
        put_le(state + 16 + 8 * n, counts[n], 8);
    for (size_t s = 0; s < STATE_ARRAYS; s++)
        for (size_t k = 0; k < PARAMS; k++)
            put_le(state + STATE_HEADER + (s * PARAMS + k) * sizeof(float),
                   float_bits(state_value(s, k)), 4);
}

static void check_state(const unsigned char state[STATE_BYTES])
{
    assert_int_equal(le32(state), 0x4C4F5054u);
    assert_int_equal(le32(state + 4), 1);
    assert_int_equal(le32(state + 8), LSTM_OPTIM_ADAM);
    assert_int_equal(le32(state + 12), OPTIM_FLAGS);
    assert_true(le64(state + 16) == STEP_COUNT);
    assert_true(le64(state + 24) == PARAMS);
    assert_true(le64(state + 32) == STATE_ARRAYS);
    for (size_t s = 0; s < STATE_ARRAYS; s++)
        for (size_t k = 0; k < PARAMS; k++)
            assert_int_equal(le32(state + STATE_HEADER + (s * PARAMS + k) * sizeof(float)),
                             float_bits(state_value(s, k)));
}

/* The forward pass of the test, on a model of the portable configuration. */
static void run_forward(const lstm_model *model, float outputs[OUTPUTS])
{
    float x[B * T * I], h0[L * D * B * P], c0[L * D * B * H];
    for (size_t k = 0; k < B * T * I; k++)
        x[k] = input_value(k);
    for (size_t k = 0; k < L * D * B * P; k++)
        h0[k] = h0_value(k);
    for (size_t k = 0; k < L * D * B * H; k++)
        c0[k] = c0_value(k);
    lstm_workspace *workspace = NULL;
    assert_int_equal(lstm_workspace_create(model, &workspace), LSTM_OK);
    assert_int_equal(lstm_model_forward(model, workspace, T, B, LENGTHS, x, h0, c0, outputs,
                                        outputs + Y_COUNT, outputs + Y_COUNT + HT_COUNT),
                     LSTM_OK);
    lstm_workspace_destroy(workspace);
}

static const char *host_name(void)
{
#if defined(__x86_64__)
    return "x86-64";
#elif defined(__aarch64__)
    return "aarch64";
#elif defined(__s390x__)
    return "s390x";
#else
    return "this host";
#endif
}

/* ---- the encoders and the CRC -------------------------------------------- */

static void test_byte_encoders(void **unused)
{
    (void)unused;
    const uint32_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    print_message("%s is %s-endian\n", host_name(), first == 1 ? "little" : "big");

    /* at every alignment of a buffer, with the bytes around left alone */
    for (size_t at = 0; at < 8; at++) {
        unsigned char buffer[24];
        memset(buffer, 0xEE, sizeof buffer);
        unsigned char *p = buffer + at;
        put_u32(p, 0x0A0B0C0Du);
        const unsigned char u32[4] = {0x0D, 0x0C, 0x0B, 0x0A};
        assert_memory_equal(p, u32, 4);
        assert_int_equal(p[4], 0xEE);
        assert_int_equal(get_u32(p), 0x0A0B0C0Du);

        put_u64(p, UINT64_C(0x0102030405060708));
        const unsigned char u64[8] = {8, 7, 6, 5, 4, 3, 2, 1};
        assert_memory_equal(p, u64, 8);
        assert_true(get_u64(p) == UINT64_C(0x0102030405060708));
        put_u64(p, UINT64_C(0xFEDCBA9876543210));
        assert_true(get_u64(p) == UINT64_C(0xFEDCBA9876543210));
        assert_int_equal(p[7], 0xFE);

        put_f32(p, -1.5f); /* 0xBFC00000 */
        const unsigned char f32[4] = {0x00, 0x00, 0xC0, 0xBF};
        assert_memory_equal(p, f32, 4);
        assert_int_equal(float_bits(get_f32(p)), float_bits(-1.5f));
        put_f32(p, 0x1.234568p-3f);
        assert_int_equal(le32(p), float_bits(0x1.234568p-3f));
        assert_int_equal(float_bits(get_f32(p)), float_bits(0x1.234568p-3f));

        put_f64(p, DROPOUT);
        const unsigned char f64[8] = {0x9A, 0x99, 0x99, 0x99, 0x99, 0x99, 0xB9, 0x3F};
        assert_memory_equal(p, f64, 8);
        assert_true(double_bits(get_f64(p)) == double_bits(DROPOUT));
        assert_int_equal(p[8], 0xEE);
        if (at > 0)
            assert_int_equal(p[-1], 0xEE);
    }
    /* round trips of patterns in every byte */
    for (uint64_t k = 1; k < 200; k++) {
        unsigned char p[8];
        const uint64_t v = k * UINT64_C(0x9E3779B97F4A7C15);
        put_u64(p, v);
        assert_true(le64(p) == v);
        assert_true(get_u64(p) == v);
        put_u32(p, (uint32_t)v);
        assert_int_equal(le32(p), (uint32_t)v);
        assert_int_equal(get_u32(p), (uint32_t)v);
    }
}

static void test_crc32c(void **unused)
{
    (void)unused;
    /* "123456789", and RFC 3720 (iSCSI) B.4's 32-byte vectors */
    assert_int_equal(lstm__crc32c(0, "123456789", 9), 0xE3069283u);
    unsigned char v[32];
    memset(v, 0x00, sizeof v);
    assert_int_equal(lstm__crc32c(0, v, 32), 0x8A9136AAu);
    memset(v, 0xFF, sizeof v);
    assert_int_equal(lstm__crc32c(0, v, 32), 0x62A8AB43u);
    for (int k = 0; k < 32; k++)
        v[k] = (unsigned char)k;
    assert_int_equal(lstm__crc32c(0, v, 32), 0x46DD794Eu);
    for (int k = 0; k < 32; k++)
        v[k] = (unsigned char)(31 - k);
    assert_int_equal(lstm__crc32c(0, v, 32), 0x113FDB5Cu);
    assert_int_equal(crc_bitwise(0, (const unsigned char *)"123456789", 9), 0xE3069283u);

    /* Every start alignment and length through the eight-byte steps and
     * the tail, in one call and split in two, against the bitwise CRC. */
    unsigned char data[160];
    for (size_t k = 0; k < sizeof data; k++)
        data[k] = (unsigned char)(k * 151 + 7);
    for (size_t at = 0; at < 8; at++)
        for (size_t size = 0; size + at <= sizeof data; size++) {
            const uint32_t want = crc_bitwise(0, data + at, size);
            assert_int_equal(lstm__crc32c(0, data + at, size), want);
            const size_t half = size / 3;
            assert_int_equal(
                lstm__crc32c(lstm__crc32c(0, data + at, half), data + at + half, size - half),
                want);
        }
}

/* ---- the committed file -------------------------------------------------- */

/* Section at `at`: checks its CRC and returns its payload length. */
static uint64_t section(const unsigned char *file, size_t size, size_t at, const char tag[4],
                        uint32_t flags)
{
    assert_true(at + 20 <= size);
    if (memcmp(file + at, tag, 4) != 0)
        fail_msg("byte %zu: section \"%.4s\", expected \"%.4s\"", at, (const char *)(file + at),
                 tag);
    assert_int_equal(le32(file + at + 4), flags);
    const uint64_t length = le64(file + at + 8);
    assert_true(length <= size - at - 20);
    assert_int_equal(le32(file + at + 16 + length), crc_bitwise(0, file + at, 16 + length));
    return length;
}

/* The file read with this test's own decoder, against docs/model-format.md
 * and the patterns: what the library is then asked to load and write. */
static void test_committed_file_layout(void **unused)
{
    (void)unused;
    size_t size;
    unsigned char *file = read_file(PORTABLE_DIR "/model.lstm", &size);
    assert_memory_equal(file, "LSTMFILE", 8);
    assert_int_equal(file[8] | file[9] << 8, 1);   /* major */
    assert_int_equal(file[10] | file[11] << 8, 1); /* minor: written by 1.1 */
    assert_int_equal(le32(file + 12), crc_bitwise(0, file, 12));

    size_t at = 16;
    assert_true(section(file, size, at, "CONF", 1) == 48);
    const unsigned char *conf = file + at + 16;
    assert_true(le64(conf) == I && le64(conf + 8) == H && le64(conf + 16) == L &&
                le64(conf + 24) == P);
    assert_int_equal(le32(conf + 32), FLAGS);
    assert_int_equal(le32(conf + 36), 0);
    assert_true(le64(conf + 40) == double_bits(DROPOUT));
    at += 20 + 48;

    /* the tensors, in the writer's order: layer, direction, kind */
    lstm_model *shape = pattern_model();
    static const char *const prefixes[4] = {"weight", "bias", "projection", "peephole"};
    size_t values_seen = 0;
    for (size_t layer = 0; layer < L; layer++)
        for (size_t d = 0; d < D; d++)
            for (size_t kind = 0; kind < 4; kind++) {
                size_t offset, rows, cols;
                assert_int_equal(
                    lstm_model_tensor(shape, layer, d, (lstm_tensor)kind, &offset, &rows, &cols),
                    LSTM_OK);
                char name[32];
                const int name_length = snprintf(name, sizeof name, "%s_l%zu%s", prefixes[kind],
                                                 layer, d ? "_reverse" : "");
                const uint64_t length = section(file, size, at, "TENS", 1);
                assert_true(length == 32 + (uint64_t)name_length + 4 * rows * cols);
                const unsigned char *tens = file + at + 16;
                assert_int_equal(le32(tens), layer);
                assert_int_equal(le32(tens + 4), d);
                assert_int_equal(le32(tens + 8), kind);
                assert_int_equal(le32(tens + 12), name_length);
                assert_true(le64(tens + 16) == rows && le64(tens + 24) == cols);
                assert_memory_equal(tens + 32, name, (size_t)name_length);
                const unsigned char *values = tens + 32 + name_length;
                for (size_t k = 0; k < rows * cols; k++)
                    assert_int_equal(le32(values + 4 * k), float_bits(param_value(offset + k)));
                values_seen += rows * cols;
                at += 20 + (size_t)length;
            }
    assert_int_equal(values_seen, PARAMS);
    lstm_model_destroy(shape);

    const uint64_t state_length = section(file, size, at, "OPTM", 0);
    assert_true(state_length == STATE_BYTES);
    const unsigned char *state = file + at + 16;
    assert_int_equal(le32(state), 0x4C4F5054u);
    assert_int_equal(le32(state + 4), 1);
    assert_int_equal(le32(state + 8), LSTM_OPTIM_ADAM);
    assert_int_equal(le32(state + 12), OPTIM_FLAGS);
    assert_true(le64(state + 16) == STEP_COUNT);
    assert_true(le64(state + 24) == PARAMS);
    assert_true(le64(state + 32) == STATE_ARRAYS);
    for (size_t s = 0; s < STATE_ARRAYS; s++)
        for (size_t k = 0; k < PARAMS; k++)
            assert_int_equal(le32(state + STATE_HEADER + 4 * (s * PARAMS + k)),
                             float_bits(state_value(s, k)));
    at += 20 + (size_t)state_length;

    assert_true(section(file, size, at, "END ", 1) == 0);
    assert_int_equal(at + 20, size);
    free(file);
}

/* The library loads it: configuration, parameters and state, bit for bit. */
static void test_committed_file_loads(void **unused)
{
    (void)unused;
    lstm_model *model = NULL;
    assert_int_equal(lstm_model_load(PORTABLE_DIR "/model.lstm", &model), LSTM_OK);
    lstm_config config;
    assert_int_equal(lstm_config_init(&config, sizeof config), LSTM_OK);
    assert_int_equal(lstm_model_get_config(model, &config), LSTM_OK);
    assert_int_equal(config.input_size, I);
    assert_int_equal(config.hidden_size, H);
    assert_int_equal(config.num_layers, L);
    assert_int_equal(config.proj_size, P);
    assert_int_equal(config.flags, FLAGS);
    assert_true(double_bits(config.dropout) == double_bits(DROPOUT));
    float params[PARAMS];
    assert_int_equal(lstm_model_get_params(model, params, PARAMS), LSTM_OK);
    for (size_t k = 0; k < PARAMS; k++)
        assert_int_equal(float_bits(params[k]), float_bits(param_value(k)));

    lstm_optim *optim = adam_for(model);
    assert_int_equal(lstm_optim_load_file(optim, PORTABLE_DIR "/model.lstm"), LSTM_OK);
    uint64_t steps = 0;
    assert_int_equal(lstm_optim_step_count(optim, &steps), LSTM_OK);
    assert_true(steps == STEP_COUNT);
    size_t bytes = 0;
    assert_int_equal(lstm_optim_state_size(optim, &bytes), LSTM_OK);
    assert_int_equal(bytes, STATE_BYTES);
    static unsigned char state[STATE_BYTES];
    assert_int_equal(lstm_optim_save_state(optim, state, sizeof state), LSTM_OK);
    check_state(state);

    /* and from memory, the same */
    size_t size;
    unsigned char *file = read_file(PORTABLE_DIR "/model.lstm", &size);
    /* One encoding: the state saved on this host is the committed file's
     * OPTM payload, which ends before the OPTM CRC and the END section. */
    assert_true(size >= STATE_BYTES + 4 + 20);
    assert_memory_equal(state, file + size - 20 - 4 - STATE_BYTES, STATE_BYTES);
    lstm_model *again = NULL;
    assert_int_equal(lstm_model_load_buffer(file, size, &again), LSTM_OK);
    float params_again[PARAMS];
    assert_int_equal(lstm_model_get_params(again, params_again, PARAMS), LSTM_OK);
    assert_memory_equal(params_again, params, sizeof params);
    free(file);
    lstm_model_destroy(again);
    lstm_optim_destroy(optim);
    lstm_model_destroy(model);
}

/* The model and state built here from the patterns and saved: the
 * committed file's bytes, all of them (to memory and to a file). */
static void test_saved_bytes_match_committed(void **unused)
{
    (void)unused;
    size_t committed_size;
    unsigned char *committed = read_file(PORTABLE_DIR "/model.lstm", &committed_size);
    lstm_model *model = pattern_model();
    lstm_optim *optim = adam_for(model);
    static unsigned char state[STATE_BYTES];
    pattern_state(state);
    assert_int_equal(lstm_optim_load_state(optim, state, sizeof state), LSTM_OK);

    size_t size = 0;
    assert_int_equal(lstm_model_save_buffer(model, optim, NULL, 0, &size), LSTM_OK);
    assert_int_equal(size, committed_size);
    unsigned char *saved = malloc(size);
    assert_non_null(saved);
    assert_int_equal(lstm_model_save_buffer(model, optim, saved, size, &size), LSTM_OK);
    for (size_t k = 0; k < size; k++)
        if (saved[k] != committed[k])
            fail_msg("%s writes 0x%02x at byte %zu, x86-64 wrote 0x%02x", host_name(), saved[k], k,
                     committed[k]);

    char directory[] = "/tmp/lstm-portable-XXXXXX", path[64];
    assert_non_null(mkdtemp(directory));
    snprintf(path, sizeof path, "%s/model.lstm", directory);
    assert_int_equal(lstm_model_save(model, optim, path), LSTM_OK);
    size_t file_size;
    unsigned char *file = read_file(path, &file_size);
    assert_int_equal(file_size, committed_size);
    assert_memory_equal(file, committed, committed_size);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(directory), 0);

    free(file);
    free(saved);
    free(committed);
    lstm_optim_destroy(optim);
    lstm_model_destroy(model);
}

/* ---- the forward pass ----------------------------------------------------- */

/* The OUTPUTS values of forward.txt: hexadecimal floats, '#' comments. */
static void read_expected(float expected[OUTPUTS])
{
    FILE *file = fopen(PORTABLE_DIR "/forward.txt", "r");
    assert_non_null(file);
    char line[128];
    size_t count = 0;
    while (fgets(line, sizeof line, file) != NULL) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        char *end;
        const float value = strtof(line, &end);
        assert_true(end != line && count < OUTPUTS);
        expected[count++] = value;
    }
    fclose(file);
    assert_int_equal(count, OUTPUTS);
}

static void test_forward_matches_committed(void **unused)
{
    (void)unused;
    lstm_model *model = NULL;
    assert_int_equal(lstm_model_load(PORTABLE_DIR "/model.lstm", &model), LSTM_OK);
    float outputs[OUTPUTS], expected[OUTPUTS];
    run_forward(model, outputs);
    read_expected(expected);

    /* the model built here from the patterns gives the same bits */
    lstm_model *built = pattern_model();
    float outputs_built[OUTPUTS];
    run_forward(built, outputs_built);
    assert_memory_equal(outputs_built, outputs, sizeof outputs);

    static const char *const names[3] = {"y", "hT", "cT"};
    const size_t ends[3] = {Y_COUNT, Y_COUNT + HT_COUNT, OUTPUTS};
    size_t first = 0, differing = 0;
    double worst = 0.0;
    for (int part = 0; part < 3; part++) {
        for (size_t k = first; k < ends[part]; k++) {
            const double got = outputs[k], want = expected[k];
            const double error = fabs(got - want) / fmax(1.0, fabs(want));
            differing += float_bits(outputs[k]) != float_bits(expected[k]);
            if (!(error <= FORWARD_TOLERANCE)) /* NaN too */
                fail_msg("%s[%zu] is %a on %s, %a on x86-64", names[part], k - first,
                         (double)outputs[k], host_name(), (double)expected[k]);
            worst = fmax(worst, error);
        }
        first = ends[part];
    }
    /* padding past each sequence's end is zero */
    for (size_t b = 0; b < B; b++)
        for (size_t t = LENGTHS[b]; t < T; t++)
            for (size_t j = 0; j < D * P; j++)
                assert_int_equal(float_bits(outputs[(b * T + t) * D * P + j]), 0);
    print_message("%s against x86-64: %zu of %zu outputs differ, by at most %.3g\n", host_name(),
                  differing, (size_t)OUTPUTS, worst);
    lstm_model_destroy(built);
    lstm_model_destroy(model);
}

/* ---- --write DIR: the committed files ------------------------------------ */

static int write_files(const char *directory)
{
    char path[4096];
    lstm_model *model = pattern_model();
    lstm_optim *optim = adam_for(model);
    static unsigned char state[STATE_BYTES];
    pattern_state(state);
    lstm_status status = lstm_optim_load_state(optim, state, sizeof state);
    snprintf(path, sizeof path, "%s/model.lstm", directory);
    if (status == LSTM_OK)
        status = lstm_model_save(model, optim, path);
    if (status != LSTM_OK) {
        fprintf(stderr, "%s: %s\n", lstm_strerror(status), lstm_error_message());
        return 1;
    }
    float outputs[OUTPUTS];
    run_forward(model, outputs);
    snprintf(path, sizeof path, "%s/forward.txt", directory);
    FILE *file = fopen(path, "w");
    if (file == NULL) {
        perror(path);
        return 1;
    }
    fprintf(file,
            "# tests/unit/test_portable.c --write, on %s: the forward pass of model.lstm,\n"
            "# y [B=%d][T=%d][D*P=%d], then hT [L*D=%d][B][P=%d], then cT "
            "[L*D][B][H=%d].\n",
            host_name(), B, T, D * P, L * D, P, H);
    for (size_t k = 0; k < OUTPUTS; k++) {
        if (k == 0 || k == Y_COUNT || k == Y_COUNT + HT_COUNT)
            fprintf(file, "# %s\n", k == 0 ? "y" : k == Y_COUNT ? "hT" : "cT");
        fprintf(file, "%a\n", (double)outputs[k]);
    }
    fclose(file);
    lstm_optim_destroy(optim);
    lstm_model_destroy(model);
    printf("wrote %s/model.lstm and %s/forward.txt\n", directory, directory);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write") == 0)
        return write_files(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_byte_encoders),
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_committed_file_layout),
        cmocka_unit_test(test_committed_file_loads),
        cmocka_unit_test(test_saved_bytes_match_committed),
        cmocka_unit_test(test_forward_matches_committed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
