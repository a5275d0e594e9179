/*
 * Train in PyTorch, convert, load in C: outputs equal PyTorch's.
 *
 * tests/parity/gen_convert_golden.py trains a float32 torch.nn.LSTM of each
 * configuration below for a few SGD steps, converts it to a model file
 * with bindings/python/lstm/convert.py (NAME.lstm) and records PyTorch's
 * float64 outputs for a fixed input (NAME.expected, format in the
 * generator's docstring). Per case this test
 *  - loads NAME.lstm with lstm_model_load();
 *  - checks the configuration the file gave against the expected file's
 *    (sizes, layers, projection, flags) and the table below (dropout);
 *  - saves the loaded model to memory and checks the bytes are exactly the
 *    converter's: the Python writer and liblstm's agree byte for byte;
 *  - runs lstm_model_forward() on x, h0, c0 and compares y, hT and cT with
 *    PyTorch's, normwise: max_i |a_i - b_i| <= TOL * max_i |b_i|.
 *
 * TOLERANCE. liblstm computes in float32 from exactly the float32 weights
 * the module was trained to, except b, which the converter rounds once from
 * bias_ih + bias_hh (about 1e-8 relative at the outputs). Measured worst
 * over the four cases (gcc 12, Release and Debug with ASan/UBSan,
 * OpenBLAS 0.3.21):
 *     y 1.6e-7 (l2_bi), hT 1.6e-7 (l2_bi), cT 1.9e-7 (l1)   (normwise)
 * The bound, 1e-6, is the requirement; a misplaced tensor or a wrong bias
 * gives errors of 1e-2 and up.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lstm/lstm.h"

#ifndef GOLDEN_CONVERT_DIR
#error "GOLDEN_CONVERT_DIR must be defined as a string: the directory of the golden files"
#endif

#define TOL 1e-6
#define HEADER_BYTES 40u
#define READ_LIMIT ((size_t)1 << 24) /* the golden files are a few KB */

/* The cases of CASES in tests/parity/gen_convert_golden.py. */
typedef struct convert_case {
    const char *name;
    double dropout; /* stored in the model file's configuration */
} convert_case;

static convert_case cases[] = {
    {"l1", 0.0},
    {"l2_bi", 0.0},
    {"l2_proj", 0.25},
    {"l2_bf_bi_proj", 0.0},
};
#define CASE_COUNT (sizeof cases / sizeof cases[0])

/* Worst normwise errors over all cases, for the report at the end. */
static double worst[3];
static const char *worst_case[3];
static const char *const output_names[3] = {"y", "hT", "cT"};

/* One NAME.expected file, decoded. */
typedef struct expected {
    uint32_t flags;
    size_t seq_len, batch, input_size, hidden_size, num_layers, proj_size;
    size_t directions, state_size;
    size_t x_count, h_count, c_count, y_count;
    float *x, *h0, *c0;
    double *y, *hT, *cT;
} expected;

static uint32_t read_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static float read_f32(const unsigned char *p)
{
    uint32_t bits = read_u32(p);
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static double read_f64(const unsigned char *p)
{
    uint64_t bits = 0;
    double v;
    for (unsigned k = 0; k < 8; k++)
        bits |= (uint64_t)p[k] << (8u * k);
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* CRC-32C, reflected polynomial 0x82F63B78, bit by bit. */
static uint32_t crc32c_bits(const unsigned char *data, size_t size)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t k = 0; k < size; k++) {
        crc ^= data[k];
        for (unsigned bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return crc ^ 0xFFFFFFFFu;
}

/* The whole file in a new buffer (caller frees), or NULL. */
static unsigned char *read_file(const char *path, size_t *size)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        return NULL;
    unsigned char *data = malloc(READ_LIMIT);
    size_t got = data != NULL ? fread(data, 1, READ_LIMIT, file) : 0;
    int bad = data == NULL || ferror(file) || got == READ_LIMIT;
    fclose(file);
    if (bad) {
        free(data);
        return NULL;
    }
    *size = got;
    return data;
}

static void case_path(char *path, size_t capacity, const char *name, const char *suffix)
{
    int length = snprintf(path, capacity, "%s/%s%s", GOLDEN_CONVERT_DIR, name, suffix);
    assert_true(length > 0 && (size_t)length < capacity);
}

static float *floats_at(const unsigned char **p, size_t count)
{
    float *out = malloc((count != 0 ? count : 1) * sizeof *out);
    assert_non_null(out);
    for (size_t k = 0; k < count; k++, *p += 4)
        out[k] = read_f32(*p);
    return out;
}

static double *doubles_at(const unsigned char **p, size_t count)
{
    double *out = malloc((count != 0 ? count : 1) * sizeof *out);
    assert_non_null(out);
    for (size_t k = 0; k < count; k++, *p += 8)
        out[k] = read_f64(*p);
    return out;
}

/* Reads and checks NAME.expected: magic, version, sizes, exact length, CRC. */
static void expected_read(expected *e, const char *name)
{
    char path[1024];
    case_path(path, sizeof path, name, ".expected");
    size_t size = 0;
    unsigned char *data = read_file(path, &size);
    if (data == NULL)
        fail_msg("cannot read %s", path);
    assert_true(size >= HEADER_BYTES + 4);
    assert_memory_equal(data, "LSTMCVTX", 8);
    assert_int_equal(read_u32(data + 8), 1);
    e->flags = read_u32(data + 12);
    e->seq_len = read_u32(data + 16);
    e->batch = read_u32(data + 20);
    e->input_size = read_u32(data + 24);
    e->hidden_size = read_u32(data + 28);
    e->num_layers = read_u32(data + 32);
    e->proj_size = read_u32(data + 36);
    assert_int_equal(e->flags & ~(uint32_t)(LSTM_BIDIRECTIONAL | LSTM_BATCH_FIRST), 0);
    assert_true(e->seq_len >= 1 && e->seq_len <= 1000 && e->batch >= 1 && e->batch <= 1000);
    assert_true(e->input_size >= 1 && e->input_size <= 1000);
    assert_true(e->hidden_size >= 1 && e->hidden_size <= 1000);
    assert_true(e->num_layers >= 1 && e->num_layers <= 10);
    assert_true(e->proj_size < e->hidden_size);
    e->directions = (e->flags & LSTM_BIDIRECTIONAL) ? 2 : 1;
    e->state_size = e->proj_size != 0 ? e->proj_size : e->hidden_size;
    const size_t TB = e->seq_len * e->batch, LDB = e->num_layers * e->directions * e->batch;
    e->x_count = TB * e->input_size;
    e->h_count = LDB * e->state_size;
    e->c_count = LDB * e->hidden_size;
    e->y_count = TB * e->directions * e->state_size;
    const size_t want = HEADER_BYTES + 4 * (e->x_count + e->h_count + e->c_count) +
                        8 * (e->y_count + e->h_count + e->c_count) + 4;
    assert_int_equal(size, want);
    assert_int_equal(read_u32(data + size - 4), crc32c_bits(data, size - 4));
    const unsigned char *p = data + HEADER_BYTES;
    e->x = floats_at(&p, e->x_count);
    e->h0 = floats_at(&p, e->h_count);
    e->c0 = floats_at(&p, e->c_count);
    e->y = doubles_at(&p, e->y_count);
    e->hT = doubles_at(&p, e->h_count);
    e->cT = doubles_at(&p, e->c_count);
    assert_ptr_equal(p, data + size - 4);
    free(data);
}

static void expected_free(expected *e)
{
    free(e->x);
    free(e->h0);
    free(e->c0);
    free(e->y);
    free(e->hT);
    free(e->cT);
}

/* max |a - b| / max |b|, checked against TOL; recorded for the report. */
static void compare(const convert_case *c, int which, const float *a, const double *b,
                    size_t count)
{
    double scale = 0.0, diff = 0.0;
    for (size_t k = 0; k < count; k++) {
        assert_true(isfinite(a[k]));
        scale = fmax(scale, fabs(b[k]));
        diff = fmax(diff, fabs((double)a[k] - b[k]));
    }
    assert_true(scale > 0.0);
    const double error = diff / scale;
    if (getenv("CONVERT_REPORT") != NULL)
        printf("  %-15s %-3s %.2e\n", c->name, output_names[which], error);
    if (error > worst[which]) {
        worst[which] = error;
        worst_case[which] = c->name;
    }
    if (error > TOL)
        fail_msg("%s: %s differs from PyTorch by %.3e relative (bound %.1e)", c->name,
                 output_names[which], error, TOL);
}

/* The loaded model's configuration is the one the converter was given. */
static void check_config(const convert_case *c, const expected *e, const lstm_model *model)
{
    lstm_config config;
    assert_int_equal(lstm_config_init(&config, sizeof config), LSTM_OK);
    assert_int_equal(lstm_model_get_config(model, &config), LSTM_OK);
    assert_int_equal(config.input_size, e->input_size);
    assert_int_equal(config.hidden_size, e->hidden_size);
    assert_int_equal(config.num_layers, e->num_layers);
    assert_int_equal(config.proj_size, e->proj_size);
    assert_int_equal(config.flags, e->flags);
    assert_true(config.dropout == c->dropout);
}

/* Saving the loaded model gives back exactly the converter's bytes. */
static void check_same_bytes(const convert_case *c, const lstm_model *model)
{
    char path[1024];
    case_path(path, sizeof path, c->name, ".lstm");
    size_t file_size = 0;
    unsigned char *file = read_file(path, &file_size);
    assert_non_null(file);
    size_t size = 0;
    assert_int_equal(lstm_model_save_buffer(model, NULL, NULL, 0, &size), LSTM_OK);
    assert_int_equal(size, file_size);
    unsigned char *saved = malloc(size);
    assert_non_null(saved);
    assert_int_equal(lstm_model_save_buffer(model, NULL, saved, size, &size), LSTM_OK);
    assert_memory_equal(saved, file, size);
    free(saved);
    free(file);
}

static void test_case(void **state)
{
    const convert_case *c = *state;
    expected e;
    expected_read(&e, c->name);

    char path[1024];
    case_path(path, sizeof path, c->name, ".lstm");
    lstm_model *model = NULL;
    lstm_status status = lstm_model_load(path, &model);
    if (status != LSTM_OK)
        fail_msg("lstm_model_load(%s): %s: %s", path, lstm_strerror(status),
                 lstm_error_message());
    check_config(c, &e, model);
    check_same_bytes(c, model);

    lstm_workspace *workspace = NULL;
    assert_int_equal(lstm_workspace_create(model, &workspace), LSTM_OK);
    float *y = malloc(e.y_count * sizeof *y);
    float *hT = malloc(e.h_count * sizeof *hT);
    float *cT = malloc(e.c_count * sizeof *cT);
    assert_true(y != NULL && hT != NULL && cT != NULL);
    status = lstm_model_forward(model, workspace, e.seq_len, e.batch, NULL, e.x, e.h0, e.c0, y,
                                hT, cT);
    if (status != LSTM_OK)
        fail_msg("lstm_model_forward: %s: %s", lstm_strerror(status), lstm_error_message());
    compare(c, 0, y, e.y, e.y_count);
    compare(c, 1, hT, e.hT, e.h_count);
    compare(c, 2, cT, e.cT, e.c_count);

    free(y);
    free(hT);
    free(cT);
    lstm_workspace_destroy(workspace);
    lstm_model_destroy(model);
    expected_free(&e);
}

int main(void)
{
    struct CMUnitTest tests[CASE_COUNT];
    for (size_t k = 0; k < CASE_COUNT; k++) {
        struct CMUnitTest test = {cases[k].name, test_case, NULL, NULL, &cases[k]};
        tests[k] = test;
    }
    int failed = cmocka_run_group_tests_name("test_convert", tests, NULL, NULL);
    fflush(stderr);
    printf("test_convert: worst normwise error against PyTorch over %zu cases (bound %.0e):\n",
           (size_t)CASE_COUNT, TOL);
    for (int k = 0; k < 3; k++)
        printf("  %-3s %.2e  (%s)\n", output_names[k], worst[k],
               worst_case[k] != NULL ? worst_case[k] : "-");
    return failed;
}
