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

#include "golden.h"
#include "lstm/lstm.h"

#ifndef GOLDEN_CONVERT_DIR
#  error "GOLDEN_CONVERT_DIR must be defined as a string: the directory of the golden files"
#endif

#define TOL 1e-6

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

static void case_path(char *path, size_t capacity, const char *name, const char *suffix)
{
    int length = snprintf(path, capacity, "%s/%s%s", GOLDEN_CONVERT_DIR, name, suffix);
    assert_true(length > 0 && (size_t)length < capacity);
}

/* Reads NAME.expected (support/golden.c checks its magic, sizes and CRC). */
static void expected_read(convert_golden *e, const char *name)
{
    char path[1024];
    case_path(path, sizeof path, name, ".expected");
    golden_status status = convert_golden_load(path, e);
    if (status != GOLDEN_OK)
        fail_msg("%s: %s", path, golden_strerror(status));
}

/* max |a - b| / max |b|, checked against TOL; recorded for the report. */
static void compare(const convert_case *c, int which, const float *a, const double *b, size_t count)
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
static void check_config(const convert_case *c, const convert_golden *e, const lstm_model *model)
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
    unsigned char *file = NULL;
    assert_int_equal(golden_read_file(path, &file, &file_size), GOLDEN_OK);
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
    convert_golden e;
    expected_read(&e, c->name);

    char path[1024];
    case_path(path, sizeof path, c->name, ".lstm");
    lstm_model *model = NULL;
    lstm_status status = lstm_model_load(path, &model);
    if (status != LSTM_OK)
        fail_msg("lstm_model_load(%s): %s: %s", path, lstm_strerror(status), lstm_error_message());
    check_config(c, &e, model);
    check_same_bytes(c, model);

    lstm_workspace *workspace = NULL;
    assert_int_equal(lstm_workspace_create(model, &workspace), LSTM_OK);
    float *y = malloc(e.y_count * sizeof *y);
    float *hT = malloc(e.h_count * sizeof *hT);
    float *cT = malloc(e.c_count * sizeof *cT);
    assert_true(y != NULL && hT != NULL && cT != NULL);
    status =
        lstm_model_forward(model, workspace, e.seq_len, e.batch, NULL, e.x, e.h0, e.c0, y, hT, cT);
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
    convert_golden_free(&e);
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
