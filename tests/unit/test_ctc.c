/*
 * The CTC loss and decoder (lstm/ctc.h) judged without PyTorch:
 *  - against a brute force that enumerates every path of C^T classes for
 *    tiny T and C, keeps those that collapse to the label, and sums their
 *    probabilities (the loss) and, per step and class, the share of that
 *    sum whose path emits the class there (gamma; the gradient is
 *    y - gamma), all in double;
 *  - against central finite differences of the library's own loss;
 *  - on every refusal the header lists: the exact status, and outputs
 *    left as they were.
 * tests/parity/test_ctc_parity.c holds the comparison with PyTorch.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "lstm/lstm.h"

#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

/* Logits in [-2, 2), multiples of 2^-8, from a fixed LCG: a logit plus or
 * minus 2^-10 is exact in float. */
static void fill_logits(float *values, size_t count, uint32_t seed)
{
    uint32_t state = seed * 2654435761u + 1u;
    for (size_t k = 0; k < count; k++) {
        state = state * 1664525u + 1013904223u;
        values[k] = (float)(int)((state >> 22) % 1024) * 0x1p-8f - 2.0f;
    }
}

static lstm_ctc_config make_config(size_t classes, size_t blank, uint32_t reduction)
{
    lstm_ctc_config config;
    assert_int_equal(lstm_ctc_config_init(&config, sizeof config), LSTM_OK);
    config.classes = classes;
    config.blank = blank;
    config.reduction = reduction;
    return config;
}

static lstm_sequences make_sequences(size_t steps, size_t batch, const size_t *lengths)
{
    lstm_sequences sequences;
    assert_int_equal(lstm_sequences_init(&sequences, sizeof sequences), LSTM_OK);
    sequences.steps = steps;
    sequences.batch = batch;
    sequences.lengths = lengths;
    return sequences;
}

/* ---- brute force ---- */

enum { MAX_T = 6, MAX_C = 4 };

/* Whether path (T classes) collapses to label: repeats merged, blanks removed. */
static bool collapses_to(const size_t *path, size_t T, size_t blank, const int32_t *label, size_t S)
{
    size_t n = 0;
    for (size_t t = 0; t < T; t++) {
        if (path[t] == blank || (t > 0 && path[t] == path[t - 1]))
            continue;
        if (n == S || (size_t)label[n] != path[t])
            return false;
        n++;
    }
    return n == S;
}

/* -log p(label | z) for one sequence z [T][C], and gamma [T][C]; +inf
 * when no path collapses to the label (gamma then all 0). */
static double brute_force(const float *z, size_t T, size_t C, size_t blank, const int32_t *label,
                          size_t S, double gamma[MAX_T][MAX_C])
{
    double y[MAX_T][MAX_C];
    for (size_t t = 0; t < T; t++) {
        double sum = 0.0;
        for (size_t c = 0; c < C; c++)
            sum += exp((double)z[t * C + c]);
        for (size_t c = 0; c < C; c++)
            y[t][c] = exp((double)z[t * C + c]) / sum;
    }
    memset(gamma, 0, sizeof(double) * MAX_T * MAX_C);
    size_t paths = 1;
    for (size_t t = 0; t < T; t++)
        paths *= C;
    double p = 0.0;
    for (size_t number = 0; number < paths; number++) {
        size_t path[MAX_T], rest = number;
        for (size_t t = 0; t < T; t++) {
            path[t] = rest % C;
            rest /= C;
        }
        if (!collapses_to(path, T, blank, label, S))
            continue;
        double probability = 1.0;
        for (size_t t = 0; t < T; t++)
            probability *= y[t][path[t]];
        p += probability;
        for (size_t t = 0; t < T; t++)
            gamma[t][path[t]] += probability;
    }
    if (p == 0.0)
        return INFINITY;
    for (size_t t = 0; t < T; t++)
        for (size_t c = 0; c < C; c++)
            gamma[t][c] /= p;
    return -log(p);
}

static void test_brute_force(void **unused)
{
    (void)unused;
    /* T, C, blank, label */
    static const struct {
        size_t T, C, blank, S;
        int32_t label[4];
    } cases[] = {
        {4, 3, 0, 0, {0}},          {4, 3, 0, 1, {1}},          {4, 3, 0, 2, {1, 1}},
        {4, 3, 0, 2, {1, 2}},       {4, 3, 0, 3, {2, 1, 2}},    {4, 3, 0, 3, {1, 1, 2}},
        {4, 3, 0, 4, {1, 2, 1, 2}}, {4, 3, 0, 3, {1, 1, 1}}, /* needs 5 steps: +inf */
        {1, 2, 1, 1, {0}},          {5, 4, 2, 2, {3, 3}},       {5, 4, 2, 3, {0, 1, 0}},
        {6, 3, 1, 2, {0, 2}},       {6, 4, 3, 4, {0, 0, 1, 1}},
    };
    double worst_loss = 0.0, worst_grad = 0.0;
    for (size_t n = 0; n < COUNT(cases); n++) {
        const size_t T = cases[n].T, C = cases[n].C, S = cases[n].S;
        float z[MAX_T * MAX_C];
        fill_logits(z, T * C, (uint32_t)n + 1);
        double gamma[MAX_T][MAX_C];
        const double expected = brute_force(z, T, C, cases[n].blank, cases[n].label, S, gamma);

        const lstm_ctc_config config = make_config(C, cases[n].blank, LSTM_CTC_SUM);
        const lstm_sequences sequences = make_sequences(T, 1, NULL);
        double loss = NAN;
        float grad[MAX_T * MAX_C];
        lstm_ctc_outputs outputs;
        assert_int_equal(lstm_ctc_outputs_init(&outputs, sizeof outputs), LSTM_OK);
        outputs.loss = &loss;
        outputs.grad = grad;
        assert_int_equal(lstm_ctc_loss(&config, &sequences, z, cases[n].label, &S, &outputs),
                         LSTM_OK);
        if (isinf(expected)) {
            assert_true(loss == INFINITY);
            for (size_t k = 0; k < T * C; k++)
                assert_true(grad[k] == 0.0f);
            continue;
        }
        const double loss_error = fabs(loss - expected) / fabs(expected);
        worst_loss = loss_error > worst_loss ? loss_error : worst_loss;
        if (!(loss_error <= 1e-13))
            fail_msg("case %zu: loss %.17g, brute force %.17g", n, loss, expected);
        /* grad = y - gamma, rounded to float: within a float's rounding of 1 */
        for (size_t t = 0; t < T; t++) {
            double sum = 0.0;
            for (size_t c = 0; c < C; c++)
                sum += exp((double)z[t * C + c]);
            for (size_t c = 0; c < C; c++) {
                const double want = exp((double)z[t * C + c]) / sum - gamma[t][c];
                const double error = fabs((double)grad[t * C + c] - want);
                worst_grad = error > worst_grad ? error : worst_grad;
                if (!(error <= 1e-7))
                    fail_msg("case %zu: grad[%zu][%zu] %.9g, brute force %.9g", n, t, c,
                             (double)grad[t * C + c], want);
            }
        }
    }
    print_message("brute force: worst loss error %.3g relative, gradient %.3g absolute\n",
                  worst_loss, worst_grad);
}

/* ---- finite differences ---- */

static double loss_at(const lstm_ctc_config *config, const lstm_sequences *sequences,
                      const float *z, const int32_t *labels, const size_t *label_lengths)
{
    double loss = NAN;
    const lstm_ctc_outputs outputs = {sizeof outputs, &loss, NULL, NULL};
    assert_int_equal(lstm_ctc_loss(config, sequences, z, labels, label_lengths, &outputs), LSTM_OK);
    return loss;
}

static void finite_differences(uint32_t reduction, uint32_t layout, size_t blank)
{
    enum { T = 7, B = 3, C = 5 };
    float z[T * B * C];
    fill_logits(z, T * B * C, 77 + reduction + 3 * layout);
    const size_t lengths[B] = {7, 4, 6};
    /* labels avoid the blank: classes other than blank, by position */
    int32_t labels[6];
    const int32_t raw[6] = {0, 0, 1, 2, 3, 1}; /* [0 0 1] [] [2 3 1] after the shift */
    for (size_t k = 0; k < 6; k++)
        labels[k] = raw[k] >= (int32_t)blank ? raw[k] + 1 : raw[k];
    const size_t label_lengths[B] = {3, 0, 3};
    const lstm_ctc_config config = make_config(C, blank, reduction);
    lstm_sequences sequences = make_sequences(T, B, lengths);
    sequences.layout = layout;
    const bool batch_first = layout == LSTM_LAYOUT_BATCH_MAJOR;

    float grad[T * B * C];
    double loss = NAN;
    const lstm_ctc_outputs outputs = {sizeof outputs, &loss, NULL, grad};
    assert_int_equal(lstm_ctc_loss(&config, &sequences, z, labels, label_lengths, &outputs),
                     LSTM_OK);
    assert_true(isfinite(loss));
    const float h = 0x1p-10f;
    double worst = 0.0;
    for (size_t k = 0; k < T * B * C; k++) {
        const size_t row = k / C;
        const size_t t = batch_first ? row % T : row / B, b = batch_first ? row / T : row % B;
        if (t >= lengths[b]) {
            assert_true(grad[k] == 0.0f); /* past the end */
            continue;
        }
        const float saved = z[k];
        z[k] = saved + h;
        const double plus = loss_at(&config, &sequences, z, labels, label_lengths);
        z[k] = saved - h;
        const double minus = loss_at(&config, &sequences, z, labels, label_lengths);
        z[k] = saved;
        /* (L(z + h) - L(z - h)) / 2h = dL/dz + O(h^2) */
        const double numeric = (plus - minus) / (2.0 * (double)h);
        const double error = fabs(numeric - (double)grad[k]);
        worst = error > worst ? error : worst;
        if (!(error <= 1e-6))
            fail_msg("grad[%zu] %.9g, finite difference %.9g", k, (double)grad[k], numeric);
    }
    print_message("finite differences (reduction %u, layout %u, blank %zu): worst error %.3g\n",
                  (unsigned)reduction, (unsigned)layout, blank, worst);
}

static void test_finite_differences(void **unused)
{
    (void)unused;
    finite_differences(LSTM_CTC_MEAN, LSTM_LAYOUT_MODEL, 0);
    finite_differences(LSTM_CTC_SUM, LSTM_LAYOUT_BATCH_MAJOR, 2);
    finite_differences(LSTM_CTC_MEAN, LSTM_LAYOUT_TIME_MAJOR, 4);
}

/* A long sequence whose probability underflows double (-log p above 745):
 * the log space keeps the loss finite, and each gradient row sums to zero
 * (sum_c y = sum_c gamma = 1). */
static void test_long_sequence(void **unused)
{
    (void)unused;
    enum { T = 2000, C = 6, S = 300 };
    static float z[T * C], grad[T * C];
    fill_logits(z, T * C, 5);
    for (size_t k = 0; k < T * C; k++)
        z[k] *= 4.0f;
    int32_t labels[S];
    for (size_t k = 0; k < S; k++)
        labels[k] = (int32_t)(1 + (k * 7 / 3) % (C - 1));
    const size_t label_length = S;
    const lstm_ctc_config config = make_config(C, 0, LSTM_CTC_SUM);
    const lstm_sequences sequences = make_sequences(T, 1, NULL);
    double loss = NAN;
    const lstm_ctc_outputs outputs = {sizeof outputs, &loss, NULL, grad};
    assert_int_equal(lstm_ctc_loss(&config, &sequences, z, labels, &label_length, &outputs),
                     LSTM_OK);
    assert_true(isfinite(loss) && loss > 745.0); /* exp(-loss) underflows double */
    for (size_t t = 0; t < T; t++) {
        double sum = 0.0;
        for (size_t c = 0; c < C; c++) {
            assert_true(isfinite(grad[t * C + c]));
            sum += grad[t * C + c];
        }
        assert_true(fabs(sum) <= 1e-6);
    }
}

/* ---- refusals ---- */

enum { VT = 4, VB = 2, VC = 3 };

/* A valid call's arguments, which each refusal spoils one way. */
typedef struct call {
    lstm_ctc_config config;
    lstm_sequences sequences;
    size_t lengths[VB];
    float logits[VT * VB * VC];
    int32_t labels[3];
    size_t label_lengths[VB];
    double loss, losses[VB];
    float grad[VT * VB * VC];
    lstm_ctc_outputs outputs;
} call;

static void valid_call(call *c)
{
    memset(c, 0, sizeof *c);
    c->config = make_config(VC, 0, LSTM_CTC_MEAN);
    c->lengths[0] = VT;
    c->lengths[1] = 3;
    c->sequences = make_sequences(VT, VB, c->lengths);
    fill_logits(c->logits, VT * VB * VC, 3);
    c->labels[0] = 1;
    c->labels[1] = 2;
    c->labels[2] = 2;
    c->label_lengths[0] = 2;
    c->label_lengths[1] = 1;
    c->loss = 12345.0;
    c->losses[0] = c->losses[1] = 678.0;
    for (size_t k = 0; k < VT * VB * VC; k++)
        c->grad[k] = 9.0f;
    assert_int_equal(lstm_ctc_outputs_init(&c->outputs, sizeof c->outputs), LSTM_OK);
    c->outputs.loss = &c->loss;
    c->outputs.losses = c->losses;
    c->outputs.grad = c->grad;
}

static lstm_status run(call *c)
{
    return lstm_ctc_loss(&c->config, &c->sequences, c->logits, c->labels, c->label_lengths,
                         &c->outputs);
}

static void assert_untouched(const call *c)
{
    assert_true(c->loss == 12345.0);
    assert_true(c->losses[0] == 678.0 && c->losses[1] == 678.0);
    for (size_t k = 0; k < VT * VB * VC; k++)
        assert_true(c->grad[k] == 9.0f);
}

/* Expect status from the spoiled call, outputs untouched, and a message
 * holding needle. */
static void expect(call *c, lstm_status status, const char *needle)
{
    assert_int_equal(run(c), status);
    assert_untouched(c);
    if (strstr(lstm_error_message(), needle) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", lstm_error_message(), needle);
}

static void test_loss_refusals(void **unused)
{
    (void)unused;
    call c;
    valid_call(&c);
    assert_int_equal(run(&c), LSTM_OK);
    assert_true(isfinite(c.loss) && c.grad[0] != 9.0f);

    /* NULL pointers */
    valid_call(&c);
    assert_int_equal(
        lstm_ctc_loss(NULL, &c.sequences, c.logits, c.labels, c.label_lengths, &c.outputs),
        LSTM_E_NULL);
    assert_int_equal(
        lstm_ctc_loss(&c.config, NULL, c.logits, c.labels, c.label_lengths, &c.outputs),
        LSTM_E_NULL);
    assert_int_equal(
        lstm_ctc_loss(&c.config, &c.sequences, NULL, c.labels, c.label_lengths, &c.outputs),
        LSTM_E_NULL);
    assert_int_equal(lstm_ctc_loss(&c.config, &c.sequences, c.logits, c.labels, NULL, &c.outputs),
                     LSTM_E_NULL);
    assert_int_equal(
        lstm_ctc_loss(&c.config, &c.sequences, c.logits, c.labels, c.label_lengths, NULL),
        LSTM_E_NULL);
    assert_string_equal(lstm_error_message(), "outputs is NULL");
    assert_untouched(&c);
    c.outputs.loss = NULL;
    assert_int_equal(run(&c), LSTM_E_NULL);
    assert_string_equal(lstm_error_message(), "outputs->loss is NULL");
    valid_call(&c);
    assert_int_equal(
        lstm_ctc_loss(&c.config, &c.sequences, c.logits, NULL, c.label_lengths, &c.outputs),
        LSTM_E_NULL);
    assert_untouched(&c);
    /* labels may be NULL when every label is empty */
    c.label_lengths[0] = c.label_lengths[1] = 0;
    assert_int_equal(
        lstm_ctc_loss(&c.config, &c.sequences, c.logits, NULL, c.label_lengths, &c.outputs),
        LSTM_OK);

    /* struct sizes */
    valid_call(&c);
    c.config.struct_size = 8;
    expect(&c, LSTM_E_ARG, "config->struct_size is 8");
    valid_call(&c);
    c.sequences.struct_size = 1 << 20;
    expect(&c, LSTM_E_ARG, "sequences->struct_size");
    valid_call(&c);
    c.outputs.struct_size = 0;
    expect(&c, LSTM_E_ARG, "outputs->struct_size");

    /* sizes */
    valid_call(&c);
    c.config.classes = 1;
    expect(&c, LSTM_E_SIZE, "classes is 1");
    valid_call(&c);
    c.config.classes = LSTM_MAX_SIZE + 1;
    expect(&c, LSTM_E_SIZE, "classes");
    valid_call(&c);
    c.sequences.steps = 0;
    expect(&c, LSTM_E_SIZE, "steps is 0");
    valid_call(&c);
    c.sequences.batch = 0;
    expect(&c, LSTM_E_SIZE, "batch is 0");
    valid_call(&c);
    c.sequences.steps = LSTM_MAX_SIZE + 1;
    expect(&c, LSTM_E_SIZE, "steps");
    valid_call(&c);
    c.sequences.steps = LSTM_MAX_SIZE;
    c.sequences.batch = LSTM_MAX_SIZE;
    c.config.classes = LSTM_MAX_SIZE;
    c.sequences.lengths = NULL;
    if (sizeof(size_t) >= 8)
        expect(&c, LSTM_E_OVERFLOW, "overflows");
    valid_call(&c);
    c.label_lengths[1] = LSTM_MAX_SIZE + 1;
    expect(&c, LSTM_E_SIZE, "label_lengths[1]");

    /* input lengths, as every sequence call checks them */
    valid_call(&c);
    c.lengths[1] = 0;
    expect(&c, LSTM_E_ARG, "lengths[1] is 0");
    valid_call(&c);
    c.lengths[0] = VT + 1;
    expect(&c, LSTM_E_ARG, "lengths[0] is 5");

    /* values */
    valid_call(&c);
    c.config.blank = VC;
    expect(&c, LSTM_E_ARG, "blank is 3");
    valid_call(&c);
    c.config.reduction = 2;
    expect(&c, LSTM_E_ARG, "reduction is 2");
    valid_call(&c);
    c.config.flags = 0x2;
    expect(&c, LSTM_E_ARG, "flags 0x2");
    valid_call(&c);
    c.sequences.layout = 3;
    expect(&c, LSTM_E_ARG, "layout is 3");
    valid_call(&c);
    c.labels[2] = 0; /* the blank */
    expect(&c, LSTM_E_ARG, "labels[2] (sequence 1, position 0) is 0");
    valid_call(&c);
    c.labels[1] = VC;
    expect(&c, LSTM_E_ARG, "labels[1] (sequence 0, position 1) is 3");
    valid_call(&c);
    c.labels[0] = -1;
    expect(&c, LSTM_E_ARG, "labels[0] (sequence 0, position 0) is -1");
    valid_call(&c);
    c.config.blank = 2; /* now labels[1] and labels[2] are the blank */
    expect(&c, LSTM_E_ARG, "labels[1]");

    /* NaN and infinity where a sequence runs; padding is never read */
    valid_call(&c);
    c.logits[(2 * VB + 1) * VC + 1] = NAN; /* step 2, sequence 1, class 1 */
    expect(&c, LSTM_E_NONFINITE, "logits[16] (sequence 1, step 2, class 1)");
    valid_call(&c);
    c.logits[0] = -INFINITY;
    expect(&c, LSTM_E_NONFINITE, "logits[0]");
    valid_call(&c);
    c.logits[(3 * VB + 1) * VC] = NAN; /* step 3 of sequence 1, which has 3 steps */
    assert_int_equal(run(&c), LSTM_OK);
    for (size_t k = (3 * VB + 1) * VC; k < (3 * VB + 2) * VC; k++)
        assert_true(c.grad[k] == 0.0f);
}

/* An impossible label: +inf, zero gradient rows; with zero_infinity 0. */
static void test_impossible(void **unused)
{
    (void)unused;
    call c;
    valid_call(&c);
    c.labels[0] = c.labels[1] = 1; /* "1 1" needs 3 steps */
    c.lengths[0] = 2;
    assert_int_equal(run(&c), LSTM_OK);
    assert_true(c.loss == INFINITY && c.losses[0] == INFINITY && isfinite(c.losses[1]));
    for (size_t t = 0; t < VT; t++)
        for (size_t k = 0; k < VC; k++)
            assert_true(c.grad[(t * VB) * VC + k] == 0.0f);
    const double other = c.losses[1];
    c.config.flags = LSTM_CTC_ZERO_INFINITY;
    assert_int_equal(run(&c), LSTM_OK);
    assert_true(c.losses[0] == 0.0 && c.losses[1] == other);
    /* mean: (0 / 2 + other / 1) / 2 */
    assert_true(fabs(c.loss - other / 2.0) <= 1e-15 * other);
    for (size_t t = 0; t < VT; t++)
        for (size_t k = 0; k < VC; k++)
            assert_true(c.grad[(t * VB) * VC + k] == 0.0f);
    /* with one more step it has exactly one path, "1 blank 1" */
    c.lengths[0] = 3;
    c.config.flags = 0;
    assert_int_equal(run(&c), LSTM_OK);
    assert_true(isfinite(c.losses[0]));
}

static void test_decode_refusals(void **unused)
{
    (void)unused;
    call c;
    valid_call(&c);
    int32_t labels[VT * VB];
    size_t lengths[VB] = {77, 77};
    for (size_t k = 0; k < VT * VB; k++)
        labels[k] = -3;
    assert_int_equal(lstm_ctc_greedy_decode(NULL, &c.sequences, c.logits, labels, lengths),
                     LSTM_E_NULL);
    assert_int_equal(lstm_ctc_greedy_decode(&c.config, NULL, c.logits, labels, lengths),
                     LSTM_E_NULL);
    assert_int_equal(lstm_ctc_greedy_decode(&c.config, &c.sequences, NULL, labels, lengths),
                     LSTM_E_NULL);
    assert_int_equal(lstm_ctc_greedy_decode(&c.config, &c.sequences, c.logits, NULL, lengths),
                     LSTM_E_NULL);
    assert_int_equal(lstm_ctc_greedy_decode(&c.config, &c.sequences, c.logits, labels, NULL),
                     LSTM_E_NULL);
    c.config.blank = VC;
    assert_int_equal(lstm_ctc_greedy_decode(&c.config, &c.sequences, c.logits, labels, lengths),
                     LSTM_E_ARG);
    valid_call(&c);
    c.config.classes = 1;
    assert_int_equal(lstm_ctc_greedy_decode(&c.config, &c.sequences, c.logits, labels, lengths),
                     LSTM_E_SIZE);
    valid_call(&c);
    c.lengths[0] = 0;
    assert_int_equal(lstm_ctc_greedy_decode(&c.config, &c.sequences, c.logits, labels, lengths),
                     LSTM_E_ARG);
    valid_call(&c);
    c.logits[VT * VB * VC - 4] = NAN; /* the last step of sequence 0 */
    assert_int_equal(lstm_ctc_greedy_decode(&c.config, &c.sequences, c.logits, labels, lengths),
                     LSTM_E_NONFINITE);
    for (size_t k = 0; k < VT * VB; k++)
        assert_int_equal(labels[k], -3);
    assert_true(lengths[0] == 77 && lengths[1] == 77);
    /* reduction and flags are not read by the decoder */
    valid_call(&c);
    c.config.reduction = 9;
    c.config.flags = 0x80;
    assert_int_equal(lstm_ctc_greedy_decode(&c.config, &c.sequences, c.logits, labels, lengths),
                     LSTM_OK);
}

static void test_init(void **unused)
{
    (void)unused;
    lstm_ctc_config config;
    memset(&config, 0xff, sizeof config);
    assert_int_equal(lstm_ctc_config_init(&config, sizeof config), LSTM_OK);
    const lstm_ctc_config expected = LSTM_CTC_CONFIG_INIT;
    assert_memory_equal(&config, &expected, sizeof config);
    assert_int_equal(lstm_ctc_config_init(NULL, sizeof config), LSTM_E_NULL);
    assert_int_equal(lstm_ctc_config_init(&config, 4), LSTM_E_ARG);
    lstm_ctc_outputs outputs;
    memset(&outputs, 0xff, sizeof outputs);
    assert_int_equal(lstm_ctc_outputs_init(&outputs, sizeof outputs), LSTM_OK);
    assert_int_equal(outputs.struct_size, sizeof outputs);
    assert_null(outputs.loss);
    assert_null(outputs.losses);
    assert_null(outputs.grad);
    assert_int_equal(lstm_ctc_outputs_init(NULL, sizeof outputs), LSTM_E_NULL);
    assert_int_equal(lstm_ctc_outputs_init(&outputs, 3), LSTM_E_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_brute_force),   cmocka_unit_test(test_finite_differences),
        cmocka_unit_test(test_long_sequence), cmocka_unit_test(test_loss_refusals),
        cmocka_unit_test(test_impossible),    cmocka_unit_test(test_decode_refusals),
        cmocka_unit_test(test_init),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
