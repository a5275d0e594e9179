/*
 * The CTC loss (lstm/ctc.h) against PyTorch's F.ctc_loss on log_softmax of
 * the logits (tests/parity/golden/ctc/ctc_golden.h, from
 * tests/parity/gen_ctc_golden.py), and the greedy decoder on hand-made
 * inputs whose answers are written out below.
 *
 * Tolerances. Torch computes in float64 on the same float32 logits, and so
 * does liblstm (log-softmax, both recursions): the losses agree to the
 * rounding of a few hundred double log-adds, far below LOSS_TOLERANCE
 * (1e-10 relative). The gradient is rounded once to float32 on each side
 * (2^-24 relative) after the same double computation: GRAD_TOLERANCE, 1e-6
 * of the largest reference magnitude, leaves room for a float32 rounding
 * step or two of difference and would catch any wrong term (each is at
 * least 1e-3 of the scale here). The worst errors met are printed at the
 * end.
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

#include "golden/ctc/ctc_golden.h"

#define LOSS_TOLERANCE 1e-10
#define GRAD_TOLERANCE 1e-6
#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

static double worst_loss, worst_losses, worst_grad;

static void *checked_malloc(size_t bytes)
{
    void *block = malloc(bytes);
    assert_non_null(block);
    return block;
}

/* Relative error; infinities must match exactly. */
static double loss_error(double got, double ref)
{
    if (isinf(ref))
        return got == ref ? 0.0 : INFINITY;
    return fabs(got - ref) / (fabs(ref) > 0.0 ? fabs(ref) : 1.0);
}

static void check_loss(const char *name, const char *what, double got, double ref, double *worst)
{
    double error = loss_error(got, ref);
    if (error > *worst)
        *worst = error;
    if (!(error <= LOSS_TOLERANCE))
        fail_msg("%s %s %.17g, torch %.17g: relative error %.3g", name, what, got, ref, error);
}

/* max |got - ref| / max |ref|. */
static void check_grad(const char *name, const float *got, const float *ref, size_t count)
{
    double scale = 0.0, worst = 0.0;
    for (size_t k = 0; k < count; k++) {
        double magnitude = fabs((double)ref[k]);
        scale = magnitude > scale ? magnitude : scale;
        double diff = fabs((double)got[k] - (double)ref[k]);
        worst = diff > worst ? diff : worst;
    }
    double error = scale > 0.0 ? worst / scale : worst;
    if (error > worst_grad)
        worst_grad = error;
    if (!(error <= GRAD_TOLERANCE))
        fail_msg("%s grad: error %.3g of max|ref| exceeds %.1g", name, error, GRAD_TOLERANCE);
}

static lstm_ctc_config case_config(const struct ctc_case *c)
{
    lstm_ctc_config config = LSTM_CTC_CONFIG_INIT;
    config.classes = c->classes;
    config.blank = c->blank;
    config.reduction = c->reduction;
    config.flags = c->zero_infinity ? LSTM_CTC_ZERO_INFINITY : 0;
    return config;
}

static lstm_sequences case_sequences(const struct ctc_case *c)
{
    lstm_sequences sequences = LSTM_SEQUENCES_INIT;
    sequences.steps = c->steps;
    sequences.batch = c->batch;
    sequences.layout = c->batch_first ? LSTM_LAYOUT_BATCH_MAJOR : LSTM_LAYOUT_MODEL;
    sequences.lengths = c->lengths;
    return sequences;
}

static void test_loss_parity(void **unused)
{
    (void)unused;
    for (size_t n = 0; n < COUNT(ctc_cases); n++) {
        const struct ctc_case *c = &ctc_cases[n];
        const lstm_ctc_config config = case_config(c);
        lstm_sequences sequences = case_sequences(c);
        const size_t elements = c->steps * c->batch * c->classes;
        float *grad = checked_malloc(elements * sizeof(float));
        double *losses = checked_malloc(c->batch * sizeof(double));
        /* NaN everywhere: every entry must be written (zero past the ends) */
        for (size_t k = 0; k < elements; k++)
            grad[k] = NAN;
        double loss = NAN;
        lstm_ctc_outputs outputs = LSTM_CTC_OUTPUTS_INIT;
        outputs.loss = &loss;
        outputs.losses = losses;
        outputs.grad = grad;
        assert_int_equal(
            lstm_ctc_loss(&config, &sequences, c->logits, c->labels, c->label_lengths, &outputs),
            LSTM_OK);
        check_loss(c->name, "loss", loss, c->loss, &worst_loss);
        for (size_t b = 0; b < c->batch; b++)
            check_loss(c->name, "losses[b]", losses[b], c->losses[b], &worst_losses);
        check_grad(c->name, grad, c->grad, elements);

        /* The loss alone (two alpha rows instead of T) is the same value. */
        double loss_only = NAN;
        const lstm_ctc_outputs only = {sizeof only, &loss_only, NULL, NULL};
        assert_int_equal(
            lstm_ctc_loss(&config, &sequences, c->logits, c->labels, c->label_lengths, &only),
            LSTM_OK);
        assert_true(loss_only == loss || (isinf(loss) && loss_only == loss));

        /* lengths NULL reads as T for every sequence. */
        int full = 1;
        for (size_t b = 0; b < c->batch; b++)
            full &= c->lengths[b] == c->steps;
        if (full) {
            sequences.lengths = NULL;
            double loss_null = NAN;
            const lstm_ctc_outputs null_lengths = {sizeof null_lengths, &loss_null, NULL, NULL};
            assert_int_equal(lstm_ctc_loss(&config, &sequences, c->logits, c->labels,
                                           c->label_lengths, &null_lengths),
                             LSTM_OK);
            assert_true(loss_null == loss);
        }
        free(grad);
        free(losses);
    }
}

/* The other reduction from the same run's per-sequence losses, and the
 * time-major / batch-major transposition, agree with the golden. */
static void test_reductions_and_layouts(void **unused)
{
    (void)unused;
    for (size_t n = 0; n < COUNT(ctc_cases); n++) {
        const struct ctc_case *c = &ctc_cases[n];
        lstm_ctc_config config = case_config(c);
        config.reduction = c->reduction == LSTM_CTC_MEAN ? LSTM_CTC_SUM : LSTM_CTC_MEAN;
        const lstm_sequences sequences = case_sequences(c);
        double expected = 0.0;
        for (size_t b = 0; b < c->batch; b++) {
            const size_t divisor = c->label_lengths[b] > 0 ? c->label_lengths[b] : 1;
            expected +=
                config.reduction == LSTM_CTC_MEAN ? c->losses[b] / (double)divisor : c->losses[b];
        }
        if (config.reduction == LSTM_CTC_MEAN)
            expected /= (double)c->batch;
        double loss = NAN;
        lstm_ctc_outputs outputs = {sizeof outputs, &loss, NULL, NULL};
        assert_int_equal(
            lstm_ctc_loss(&config, &sequences, c->logits, c->labels, c->label_lengths, &outputs),
            LSTM_OK);
        check_loss(c->name, "other reduction", loss, expected, &worst_loss);

        /* the same data transposed to the other layout */
        const size_t T = c->steps, B = c->batch, C = c->classes, elements = T * B * C;
        float *moved = checked_malloc(elements * sizeof(float));
        float *grad = checked_malloc(elements * sizeof(float));
        float *grad_back = checked_malloc(elements * sizeof(float));
        for (size_t t = 0; t < T; t++)
            for (size_t b = 0; b < B; b++) {
                const size_t tm = (t * B + b) * C, bm = (b * T + t) * C;
                memcpy(moved + (c->batch_first ? tm : bm), c->logits + (c->batch_first ? bm : tm),
                       C * sizeof(float));
            }
        lstm_sequences other = sequences;
        other.layout = c->batch_first ? LSTM_LAYOUT_TIME_MAJOR : LSTM_LAYOUT_BATCH_MAJOR;
        const lstm_ctc_config same = case_config(c);
        outputs.grad = grad;
        assert_int_equal(lstm_ctc_loss(&same, &other, moved, c->labels, c->label_lengths, &outputs),
                         LSTM_OK);
        check_loss(c->name, "other layout", loss, c->loss, &worst_loss);
        for (size_t t = 0; t < T; t++)
            for (size_t b = 0; b < B; b++) {
                const size_t tm = (t * B + b) * C, bm = (b * T + t) * C;
                memcpy(grad_back + (c->batch_first ? bm : tm), grad + (c->batch_first ? tm : bm),
                       C * sizeof(float));
            }
        check_grad(c->name, grad_back, c->grad, elements);
        free(moved);
        free(grad);
        free(grad_back);
    }
}

/* ---- greedy decoding, answers by hand ---- */

/* One-hot-ish rows: class k scores 1, the others 0 (a tie where two are 1). */
static void set_row(float *row, size_t C, const int *high)
{
    for (size_t c = 0; c < C; c++)
        row[c] = 0.0f;
    for (; *high >= 0; high++)
        row[*high] = 1.0f;
}

static void test_greedy_decode(void **unused)
{
    (void)unused;
    enum { T = 8, B = 3, C = 4 };
    /* best classes per step (blank 0):
     *  b0: 1 1 0 1 2 2 0 3  -> 1 1 2 3 (repeats merged, a blank separates 1 1)
     *  b1: 0 0 3 3 3 0 0 0  -> 3 (length 5: steps 5.. not read)
     *  b2: ties, the first class winning: {1,2} {2,3} {0,1} 2 2 {0,3} 3 {1,3}
     *      reads 1 2 0 2 2 0 3 1 -> 1 2 2 3 1 */
    static const int best[B][T][3] = {
        {{1, -1}, {1, -1}, {0, -1}, {1, -1}, {2, -1}, {2, -1}, {0, -1}, {3, -1}},
        {{0, -1}, {0, -1}, {3, -1}, {3, -1}, {3, -1}, {0, -1}, {0, -1}, {0, -1}},
        {{1, 2, -1}, {2, 3, -1}, {0, 1, -1}, {2, -1}, {2, -1}, {0, 3, -1}, {3, -1}, {1, 3, -1}},
    };
    float logits[T * B * C];
    for (size_t t = 0; t < T; t++)
        for (size_t b = 0; b < B; b++)
            set_row(logits + (t * B + b) * C, C, best[b][t]);
    /* b1's padding past its end holds NaN, never read */
    for (size_t t = 5; t < T; t++)
        logits[(t * B + 1) * C] = NAN;
    const size_t lengths[B] = {T, 5, T};
    lstm_ctc_config config = LSTM_CTC_CONFIG_INIT;
    config.classes = C;
    lstm_sequences sequences = LSTM_SEQUENCES_INIT;
    sequences.steps = T;
    sequences.batch = B;
    sequences.lengths = lengths;
    int32_t labels[B * T];
    for (size_t k = 0; k < B * T; k++)
        labels[k] = -7;
    size_t label_lengths[B] = {99, 99, 99};
    assert_int_equal(lstm_ctc_greedy_decode(&config, &sequences, logits, labels, label_lengths),
                     LSTM_OK);
    static const int32_t expected0[] = {1, 1, 2, 3}, expected1[] = {3},
                         expected2[] = {1, 2, 2, 3, 1};
    assert_int_equal(label_lengths[0], 4);
    assert_int_equal(label_lengths[1], 1);
    assert_int_equal(label_lengths[2], 5);
    assert_memory_equal(labels, expected0, sizeof expected0);
    assert_memory_equal(labels + T, expected1, sizeof expected1);
    assert_memory_equal(labels + 2 * T, expected2, sizeof expected2);
    /* entries past a label's length are not written */
    for (size_t k = 4; k < T; k++)
        assert_int_equal(labels[k], -7);
    for (size_t k = T + 1; k < 2 * T; k++)
        assert_int_equal(labels[k], -7);

    /* Another blank: with blank 1, b0 reads 1 1 0 1 2 2 0 3 -> 0 2 0 3. */
    config.blank = 1;
    assert_int_equal(lstm_ctc_greedy_decode(&config, &sequences, logits, labels, label_lengths),
                     LSTM_OK);
    static const int32_t blank1[] = {0, 2, 0, 3};
    assert_int_equal(label_lengths[0], 4);
    assert_memory_equal(labels, blank1, sizeof blank1);
}

/* Batch-major, log-probabilities, every step the blank: empty labels. */
static void test_greedy_decode_batch_major(void **unused)
{
    (void)unused;
    enum { T = 3, B = 2, C = 3 };
    /* [B][T][C] log-probabilities; b0: 2 2 2 -> 2; b1: blank blank blank -> empty */
    const float logits[B * T * C] = {
        -3.0f, -2.0f, -0.2f, -3.0f, -2.0f, -0.2f, -3.0f, -2.0f, -0.2f,
        -0.1f, -4.0f, -5.0f, -0.1f, -4.0f, -5.0f, -0.1f, -4.0f, -5.0f,
    };
    lstm_ctc_config config = LSTM_CTC_CONFIG_INIT;
    config.classes = C;
    lstm_sequences sequences = LSTM_SEQUENCES_INIT;
    sequences.steps = T;
    sequences.batch = B;
    sequences.layout = LSTM_LAYOUT_BATCH_MAJOR;
    int32_t labels[B * T] = {-1, -1, -1, -1, -1, -1};
    size_t label_lengths[B] = {7, 7};
    assert_int_equal(lstm_ctc_greedy_decode(&config, &sequences, logits, labels, label_lengths),
                     LSTM_OK);
    assert_int_equal(label_lengths[0], 1);
    assert_int_equal(label_lengths[1], 0);
    assert_int_equal(labels[0], 2);
    assert_int_equal(labels[1], -1);
    assert_int_equal(labels[T], -1);
}

static int print_summary(void **unused)
{
    (void)unused;
    printf("worst relative error vs torch: loss %.3g, per-sequence losses %.3g; "
           "gradient %.3g of max|ref|\n",
           worst_loss, worst_losses, worst_grad);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loss_parity),
        cmocka_unit_test(test_reductions_and_layouts),
        cmocka_unit_test(test_greedy_decode),
        cmocka_unit_test(test_greedy_decode_batch_major),
    };
    return cmocka_run_group_tests(tests, NULL, print_summary);
}
