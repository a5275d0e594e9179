/*
 * Dropout: same seed gives the same masks; the expected fraction is
 * dropped; off at inference.
 *
 * Two-layer models (T = 8, B = 16, I = 16, H = 32) with dropout 0.3 and 0.5.
 * The masks are not visible through the API, so each property is observed
 * through behaviour:
 *  (a) inference: y, hT and cT equal, bit for bit, those of the same model
 *      with dropout 0, also after training calls on the same workspace;
 *      in training, layer 0's final state equals inference (dropout acts
 *      between layers only) and a one-layer model is not affected at all
 *      (the last layer's output is never dropped);
 *  (b) training forward: the same seed on two workspaces gives bit-identical
 *      y; another seed gives another y; consecutive calls on one workspace
 *      give different masks, and re-setting the seed repeats the sequence;
 *      inference calls in between draw no masks;
 *  (c) the fraction dropped and the scale of the kept values, measured
 *      directly: layer 1 is made a pass-through of its input (every weight
 *      zero but g_j <- alpha x_j, with i = o = 1 and f = 0 by saturated
 *      biases), so that y1 = tanh(tanh(alpha u)) with u = mask * y0, where
 *      y0 is layer 0's output (computed by a one-layer model with layer 0's
 *      parameters). Inverting gives every mask element: 0 (dropped) or
 *      1 / (1 - p) (kept, checked to 1e-5). The dropped count over four
 *      training calls, and in each call, must be within 5 binomial standard
 *      deviations of pN, and so must the counts of disjoint pairs dropped
 *      together (p^2), which show the masks are independent across calls,
 *      steps, sequences and features;
 *  (d) backward applies the forward's mask: with the seed re-set before
 *      every forward (so the masks repeat), the gradient of
 *      L = sum(y * dy) from lstm_model_backward() matches central
 *      differences of L for parameters of layer 0 (and of layer 1's input
 *      weights); the gradient of the unmasked model and that of another seed
 *      are checked to miss, so the comparison can tell masks apart;
 *  (e) dropout 1.0, 1.5, -0.1, NaN or infinity: lstm_model_create returns
 *      LSTM_E_ARG; 0 and 0.999 are accepted and read back.
 * Also: the masks do not depend on the batch plan (sequences sorted by
 * length): with variable lengths, each sequence's outputs equal those of
 * the full-length run on its own steps.
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
#include "test_rng.h"

#define SEQ_LEN 8
#define BATCH 16
#define INPUT_SIZE 16
#define HIDDEN_SIZE 32

#define X_COUNT (SEQ_LEN * BATCH * INPUT_SIZE)
#define Y_COUNT (SEQ_LEN * BATCH * HIDDEN_SIZE)
#define STATE_COUNT (2 * BATCH * HIDDEN_SIZE) /* two layers: [L][B][H] */

static const double dropout_values[2] = {0.3, 0.5};

/* ------------------------------------------------------------------------ */
static void fill_uniform(rng *r, float *p, size_t count, float low, float high)
{
    for (size_t k = 0; k < count; k++)
        p[k] = rng_float(r, low, high);
}

/* ------------------------------------------------------------------------ */
/* Everything a test acquires, released by the teardown even when an assert fails. */

enum { MAX_HELD = 128 };

typedef enum held_kind { HELD_MEMORY, HELD_MODEL, HELD_WORKSPACE } held_kind;

static struct {
    held_kind kind[MAX_HELD];
    void *ptr[MAX_HELD];
    size_t count;
} held;

static void hold(held_kind kind, void *ptr)
{
    assert_true(held.count < MAX_HELD);
    held.kind[held.count] = kind;
    held.ptr[held.count] = ptr;
    held.count++;
}

static int release_all(void **unused)
{
    (void)unused;
    while (held.count > 0) {
        held.count--;
        void *p = held.ptr[held.count];
        switch (held.kind[held.count]) {
        case HELD_MEMORY: free(p); break;
        case HELD_MODEL: lstm_model_destroy(p); break;
        case HELD_WORKSPACE: lstm_workspace_destroy(p); break;
        }
    }
    return 0;
}

static float *new_floats(size_t count)
{
    float *p = calloc(count > 0 ? count : 1, sizeof(float));
    assert_non_null(p);
    hold(HELD_MEMORY, p);
    return p;
}

static void expect_ok(const char *call, lstm_status status)
{
    if (status != LSTM_OK) {
        print_error("%s failed: %s (%s)\n", call, lstm_strerror(status), lstm_error_message());
        fail();
    }
}

static int same_bits(const float *a, const float *b, size_t count)
{
    return memcmp(a, b, count * sizeof(float)) == 0;
}

static void expect_same_bits(const char *what, const float *got, const float *want, size_t count)
{
    if (same_bits(got, want, count))
        return;
    for (size_t k = 0; k < count; k++) {
        if (memcmp(&got[k], &want[k], sizeof(float)) != 0) {
            print_error("%s: element %zu of %zu is %.9g, expected %.9g (bit for bit)\n", what, k,
                        count, (double)got[k], (double)want[k]);
            break;
        }
    }
    fail();
}

static void expect_different(const char *what, const float *a, const float *b, size_t count)
{
    if (same_bits(a, b, count)) {
        print_error("%s: the two results are identical; they should differ\n", what);
        fail();
    }
}

/* ------------------------------------------------------------------------ */
/* Models */

static lstm_model *new_model(size_t layers, double dropout, uint64_t seed)
{
    lstm_config config;
    lstm_model *model = NULL;
    expect_ok("lstm_config_init", lstm_config_init(&config, sizeof config));
    config.input_size = INPUT_SIZE;
    config.hidden_size = HIDDEN_SIZE;
    config.num_layers = layers;
    config.dropout = dropout;
    expect_ok("lstm_model_create", lstm_model_create(&config, &model));
    hold(HELD_MODEL, model);
    expect_ok("lstm_model_init", lstm_model_init(model, seed, 0));
    return model;
}

static lstm_workspace *new_workspace(const lstm_model *model)
{
    lstm_workspace *ws = NULL;
    expect_ok("lstm_workspace_create", lstm_workspace_create(model, &ws));
    hold(HELD_WORKSPACE, ws);
    return ws;
}

static float *random_floats(rng *r, size_t count, float low, float high)
{
    float *p = new_floats(count);
    fill_uniform(r, p, count, low, high);
    return p;
}

static double dropout_of(void **state)
{
    return *(const double *)*state;
}

/* ------------------------------------------------------------------------ */
/* (e) configuration */

static void test_config_rejects_bad_dropout(void **unused)
{
    (void)unused;
    const double bad[] = {1.0, 1.5, -0.1, -0.0 - 1e-300, NAN, INFINITY, -INFINITY};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        lstm_config config;
        lstm_model *model = (lstm_model *)(uintptr_t)1;
        expect_ok("lstm_config_init", lstm_config_init(&config, sizeof config));
        config.input_size = INPUT_SIZE;
        config.hidden_size = HIDDEN_SIZE;
        config.num_layers = 2;
        config.dropout = bad[k];
        lstm_status st = lstm_model_create(&config, &model);
        if (st != LSTM_E_ARG) {
            print_error("dropout %g: lstm_model_create returned %s, expected %s\n", bad[k],
                        lstm_strerror(st), lstm_strerror(LSTM_E_ARG));
            if (st == LSTM_OK)
                lstm_model_destroy(model);
            fail();
        }
        assert_true(model == (lstm_model *)(uintptr_t)1); /* untouched on failure */
    }
    const double good[] = {0.0, -0.0, 0.3, 0.999};
    for (size_t k = 0; k < sizeof good / sizeof good[0]; k++) {
        lstm_model *model = new_model(2, good[k], 1);
        lstm_config back;
        expect_ok("lstm_config_init", lstm_config_init(&back, sizeof back));
        expect_ok("lstm_model_get_config", lstm_model_get_config(model, &back));
        assert_true(back.dropout == good[k]);
    }
}

/* ------------------------------------------------------------------------ */
/* (a) off at inference */

static void test_inference_ignores_dropout(void **state)
{
    const double p = dropout_of(state);
    rng r = {11};
    lstm_model *with = new_model(2, p, 21), *without = new_model(2, 0.0, 21);
    lstm_workspace *ws_with = new_workspace(with), *ws_without = new_workspace(without);
    float *x = random_floats(&r, X_COUNT, -1.0f, 1.0f);
    float *h0 = random_floats(&r, STATE_COUNT, -0.5f, 0.5f);
    float *c0 = random_floats(&r, STATE_COUNT, -0.5f, 0.5f);
    float *y1 = new_floats(Y_COUNT), *h1 = new_floats(STATE_COUNT), *c1 = new_floats(STATE_COUNT);
    float *y0 = new_floats(Y_COUNT), *h0_out = new_floats(STATE_COUNT);
    float *c0_out = new_floats(STATE_COUNT);
    float *yt = new_floats(Y_COUNT), *ht = new_floats(STATE_COUNT), *ct = new_floats(STATE_COUNT);

    expect_ok("lstm_model_forward", lstm_model_forward(without, ws_without, SEQ_LEN, BATCH, NULL, x,
                                                       h0, c0, y0, h0_out, c0_out));
    expect_ok("lstm_model_forward",
              lstm_model_forward(with, ws_with, SEQ_LEN, BATCH, NULL, x, h0, c0, y1, h1, c1));
    expect_same_bits("inference y, dropout against none", y1, y0, Y_COUNT);
    expect_same_bits("inference hT, dropout against none", h1, h0_out, STATE_COUNT);
    expect_same_bits("inference cT, dropout against none", c1, c0_out, STATE_COUNT);

    /* training draws masks ... */
    expect_ok("lstm_workspace_set_seed", lstm_workspace_set_seed(ws_with, 5));
    expect_ok("lstm_model_forward_train",
              lstm_model_forward_train(with, ws_with, SEQ_LEN, BATCH, NULL, x, h0, c0, yt, ht, ct));
    expect_different("training y, dropout against none", yt, y0, Y_COUNT);
    /* ... between layers only: layer 0 (the first B H floats of hT and cT) is untouched */
    const size_t layer_floats = BATCH * HIDDEN_SIZE;
    expect_same_bits("training hT of layer 0", ht, h0_out, layer_floats);
    expect_same_bits("training cT of layer 0", ct, c0_out, layer_floats);
    expect_different("training hT of layer 1", ht + layer_floats, h0_out + layer_floats,
                     layer_floats);

    /* ... and inference after training on the same workspace is still mask-free */
    expect_ok("lstm_model_forward",
              lstm_model_forward(with, ws_with, SEQ_LEN, BATCH, NULL, x, h0, c0, y1, h1, c1));
    expect_same_bits("inference y after training", y1, y0, Y_COUNT);
    expect_same_bits("inference cT after training", c1, c0_out, STATE_COUNT);

    /* one layer: the last layer's output is never dropped */
    lstm_model *single = new_model(1, p, 22);
    lstm_workspace *ws_single = new_workspace(single);
    const size_t single_state = BATCH * HIDDEN_SIZE;
    expect_ok("lstm_model_forward", lstm_model_forward(single, ws_single, SEQ_LEN, BATCH, NULL, x,
                                                       NULL, NULL, y0, h0_out, c0_out));
    expect_ok("lstm_workspace_set_seed", lstm_workspace_set_seed(ws_single, 5));
    expect_ok("lstm_model_forward_train",
              lstm_model_forward_train(single, ws_single, SEQ_LEN, BATCH, NULL, x, NULL, NULL, yt,
                                       ht, ct));
    expect_same_bits("one layer: training y against inference", yt, y0, Y_COUNT);
    expect_same_bits("one layer: training hT against inference", ht, h0_out, single_state);
    expect_same_bits("one layer: training cT against inference", ct, c0_out, single_state);
}

/* ------------------------------------------------------------------------ */
/* (b) seeds */

static void train_y(lstm_model *model, lstm_workspace *ws, const float *x, float *y)
{
    expect_ok("lstm_model_forward_train", lstm_model_forward_train(model, ws, SEQ_LEN, BATCH, NULL,
                                                                   x, NULL, NULL, y, NULL, NULL));
}

static void test_same_seed_same_masks(void **state)
{
    const double p = dropout_of(state);
    rng r = {12};
    lstm_model *model = new_model(2, p, 31);
    lstm_workspace *a = new_workspace(model), *b = new_workspace(model);
    float *x = random_floats(&r, X_COUNT, -1.0f, 1.0f);
    float *ya1 = new_floats(Y_COUNT), *ya2 = new_floats(Y_COUNT), *ya3 = new_floats(Y_COUNT);
    float *yb = new_floats(Y_COUNT), *yc = new_floats(Y_COUNT);

    /* two workspaces, one seed: the same masks */
    expect_ok("lstm_workspace_set_seed", lstm_workspace_set_seed(a, 1234));
    expect_ok("lstm_workspace_set_seed", lstm_workspace_set_seed(b, 1234));
    train_y(model, a, x, ya1);
    train_y(model, b, x, yb);
    expect_same_bits("same seed, two workspaces", yb, ya1, Y_COUNT);

    /* consecutive calls draw new masks */
    train_y(model, a, x, ya2);
    train_y(model, a, x, ya3);
    expect_different("first and second call after a seed", ya2, ya1, Y_COUNT);
    expect_different("second and third call after a seed", ya3, ya2, Y_COUNT);
    expect_different("first and third call after a seed", ya3, ya1, Y_COUNT);
    train_y(model, b, x, yb);
    expect_same_bits("second call, two workspaces", yb, ya2, Y_COUNT);

    /* re-setting the seed repeats the sequence */
    expect_ok("lstm_workspace_set_seed", lstm_workspace_set_seed(a, 1234));
    train_y(model, a, x, yc);
    expect_same_bits("first call after re-seeding", yc, ya1, Y_COUNT);
    /* an inference call in between draws no masks */
    expect_ok("lstm_model_forward",
              lstm_model_forward(model, a, SEQ_LEN, BATCH, NULL, x, NULL, NULL, yc, NULL, NULL));
    train_y(model, a, x, yc);
    expect_same_bits("second call after re-seeding, inference in between", yc, ya2, Y_COUNT);
    train_y(model, a, x, yc);
    expect_same_bits("third call after re-seeding", yc, ya3, Y_COUNT);

    /* another seed, other masks */
    expect_ok("lstm_workspace_set_seed", lstm_workspace_set_seed(b, 1235));
    train_y(model, b, x, yb);
    expect_different("seeds 1234 and 1235", yb, ya1, Y_COUNT);
    expect_different("seed 1235 against the second call of 1234", yb, ya2, Y_COUNT);

    /* a new workspace starts from seed 0 */
    lstm_workspace *fresh = new_workspace(model);
    train_y(model, fresh, x, yb);
    expect_ok("lstm_workspace_set_seed", lstm_workspace_set_seed(a, 0));
    train_y(model, a, x, yc);
    expect_same_bits("a new workspace against seed 0", yb, yc, Y_COUNT);
}

/* ------------------------------------------------------------------------ */
/* (c) the fraction dropped and the scale of the kept values */

#define PASS_ALPHA 0.5f  /* g_j = tanh(alpha u_j) */
#define PASS_BIAS 200.0f /* sigmoid(+-200) saturates to 1 and 0 in float */
#define MASK_CALLS 4

/* |count - n p| <= 5 sqrt(n p (1 - p)) */
static void expect_binomial(const char *what, double count, double n, double p)
{
    const double mean = n * p, sigma = sqrt(n * p * (1.0 - p));
    printf("  %-38s %7.0f of %7.0f (expected %8.1f +- %5.1f; %+.2f sigma)\n", what, count, n, mean,
           sigma, (count - mean) / sigma);
    if (!(fabs(count - mean) <= 5.0 * sigma)) {
        print_error("%s: %.0f of %.0f, expected %.1f within 5 sigma = %.1f\n", what, count, n, mean,
                    5.0 * sigma);
        fail();
    }
}

static void test_mask_fraction_and_scale(void **state)
{
    const double p = dropout_of(state);
    const size_t H = HIDDEN_SIZE, R = HIDDEN_SIZE;
    rng r = {13};
    lstm_model *model = new_model(2, p, 41);

    /* layer 1: a pass-through of its input */
    float *params = NULL;
    size_t count = 0, w_off = 0, w_rows = 0, w_cols = 0, b_off = 0;
    expect_ok("lstm_model_params", lstm_model_params(model, &params, &count));
    expect_ok("lstm_model_tensor",
              lstm_model_tensor(model, 1, 0, LSTM_TENSOR_WEIGHT, &w_off, &w_rows, &w_cols));
    expect_ok("lstm_model_tensor",
              lstm_model_tensor(model, 1, 0, LSTM_TENSOR_BIAS, &b_off, NULL, NULL));
    assert_int_equal(w_rows, 4 * H);
    assert_int_equal(w_cols, R + H);
    memset(params + w_off, 0, w_rows * w_cols * sizeof(float));
    for (size_t j = 0; j < H; j++) {
        params[w_off + (2 * H + j) * w_cols + R + j] = PASS_ALPHA; /* g_j <- alpha x_j */
        params[b_off + j] = PASS_BIAS;                             /* i = 1 */
        params[b_off + H + j] = -PASS_BIAS;                        /* f = 0 */
        params[b_off + 2 * H + j] = 0.0f;
        params[b_off + 3 * H + j] = PASS_BIAS; /* o = 1 */
    }

    /* layer 0 alone: a one-layer model with layer 0's parameters gives y0 */
    lstm_model *lower = new_model(1, 0.0, 1);
    float *lower_params = NULL;
    size_t lower_count = 0, l0_off = 0;
    expect_ok("lstm_model_params", lstm_model_params(lower, &lower_params, &lower_count));
    expect_ok("lstm_model_tensor",
              lstm_model_tensor(model, 0, 0, LSTM_TENSOR_WEIGHT, &l0_off, NULL, NULL));
    assert_int_equal(l0_off, 0);
    assert_true(lower_count < count);
    memcpy(lower_params, params, lower_count * sizeof(float)); /* layer 0's block comes first */

    float *x = random_floats(&r, X_COUNT, -1.5f, 1.5f);
    float *y0 = new_floats(Y_COUNT), *y1 = new_floats(Y_COUNT);
    lstm_workspace *ws = new_workspace(model), *ws_lower = new_workspace(lower);
    expect_ok("lstm_model_forward", lstm_model_forward(lower, ws_lower, SEQ_LEN, BATCH, NULL, x,
                                                       NULL, NULL, y0, NULL, NULL));

    /* the pass-through works: at inference u = y0 */
    expect_ok("lstm_model_forward",
              lstm_model_forward(model, ws, SEQ_LEN, BATCH, NULL, x, NULL, NULL, y1, NULL, NULL));
    double worst_pass = 0.0;
    for (size_t k = 0; k < Y_COUNT; k++) {
        double u = atanh(atanh((double)y1[k])) / PASS_ALPHA;
        worst_pass = fmax(worst_pass, fabs(u - y0[k]) / (fabs((double)y0[k]) + 1e-6));
    }
    if (!(worst_pass <= 1e-5)) {
        print_error("pass-through layer: relative error %.3g at inference\n", worst_pass);
        fail();
    }

    /* masks of MASK_CALLS consecutive training calls: 1 dropped, 0 kept, -1 unknown */
    signed char *mask = calloc(MASK_CALLS * Y_COUNT, 1);
    assert_non_null(mask);
    hold(HELD_MEMORY, mask);
    const double keep_scale = (double)(1.0f / (1.0f - (float)p));
    double worst_scale = 0.0;
    size_t unknown = 0;
    expect_ok("lstm_workspace_set_seed", lstm_workspace_set_seed(ws, 2024));
    for (size_t call = 0; call < MASK_CALLS; call++) {
        expect_ok("lstm_model_forward_train",
                  lstm_model_forward_train(model, ws, SEQ_LEN, BATCH, NULL, x, NULL, NULL, y1, NULL,
                                           NULL));
        for (size_t k = 0; k < Y_COUNT; k++) {
            const double u = atanh(atanh((double)y1[k])) / PASS_ALPHA;
            const double kept = keep_scale * (double)y0[k];
            signed char *m = &mask[call * Y_COUNT + k];
            if (fabs(kept) < 1e-6) {
                *m = -1; /* too small to tell */
                unknown++;
            } else if (fabs(u) <= 1e-12) {
                *m = 1;
            } else if (fabs(u - kept) <= 1e-5 * fabs(kept)) {
                *m = 0;
                worst_scale = fmax(worst_scale, fabs(u - kept) / fabs(kept));
            } else {
                print_error("call %zu, element %zu: u = %.9g is neither 0 nor y0 / (1 - p) = "
                            "%.9g (y0 = %.9g)\n",
                            call, k, u, kept, (double)y0[k]);
                fail();
            }
        }
    }
    printf("  p = %.2f: pass-through error %.2e at inference, kept values scaled by "
           "1/(1-p) to %.2e; %zu elements too small to classify\n",
           p, worst_pass, worst_scale, unknown);
    assert_true(unknown <= MASK_CALLS * Y_COUNT / 1000);

    /* the fraction dropped */
    double n = 0.0, dropped = 0.0;
    for (size_t k = 0; k < MASK_CALLS * Y_COUNT; k++) {
        n += mask[k] >= 0;
        dropped += mask[k] == 1;
    }
    expect_binomial("dropped", dropped, n, p);
    for (size_t call = 0; call < MASK_CALLS; call++) {
        double n_call = 0.0, d_call = 0.0;
        char what[64];
        for (size_t k = 0; k < Y_COUNT; k++) {
            n_call += mask[call * Y_COUNT + k] >= 0;
            d_call += mask[call * Y_COUNT + k] == 1;
        }
        snprintf(what, sizeof what, "dropped in call %zu", call);
        expect_binomial(what, d_call, n_call, p);
    }

    /* Independence: pairs that should both be dropped with probability p^2.
     * The pairs are disjoint (calls 0-1 and 2-3; even t with t + 1, even b
     * with b + 1, even j with j + 1), so each count is binomial. */
    double n_pairs = 0.0, both = 0.0;
    for (size_t call = 0; call + 1 < MASK_CALLS; call += 2) {
        for (size_t k = 0; k < Y_COUNT; k++) {
            signed char a = mask[call * Y_COUNT + k], b = mask[(call + 1) * Y_COUNT + k];
            if (a >= 0 && b >= 0) {
                n_pairs += 1.0;
                both += a == 1 && b == 1;
            }
        }
    }
    expect_binomial("dropped in calls 2c and 2c+1", both, n_pairs, p * p);

    /* y is [T][B][H]: element k is (t, b, j) = (k / (B H), k / H % B, k % H) */
    const size_t strides[3] = {BATCH * HIDDEN_SIZE, HIDDEN_SIZE, 1};
    const size_t extents[3] = {SEQ_LEN, BATCH, HIDDEN_SIZE};
    const char *axis_names[3] = {"dropped at steps 2t and 2t+1", "dropped in sequences 2b and 2b+1",
                                 "dropped at features 2j and 2j+1"};
    for (size_t axis = 0; axis < 3; axis++) {
        double n_adj = 0.0, both_adj = 0.0;
        const size_t stride = strides[axis];
        for (size_t call = 0; call < MASK_CALLS; call++) {
            for (size_t k = 0; k < Y_COUNT; k++) {
                const size_t coordinate = k / stride % extents[axis];
                if (coordinate % 2 != 0 || coordinate + 1 >= extents[axis])
                    continue;
                signed char a = mask[call * Y_COUNT + k], b = mask[call * Y_COUNT + k + stride];
                if (a >= 0 && b >= 0) {
                    n_adj += 1.0;
                    both_adj += a == 1 && b == 1;
                }
            }
        }
        expect_binomial(axis_names[axis], both_adj, n_adj, p * p);
    }
}

/* ------------------------------------------------------------------------ */
/* (d) backward applies the forward's masks */

#define FD_SEED 777u
#define FD_EPS 4e-3f
#define FD_RTOL 1e-2
#define FD_FLOOR 1e-3
#define FD_PICKS 12

typedef struct fd_setup {
    lstm_model *model;
    lstm_workspace *ws;
    const float *x, *dy;
    float *y;
} fd_setup;

/* L = sum(y * dy) of a training forward with the masks of seed FD_SEED's first call. */
static double fd_loss(const fd_setup *s)
{
    expect_ok("lstm_workspace_set_seed", lstm_workspace_set_seed(s->ws, FD_SEED));
    expect_ok("lstm_model_forward_train",
              lstm_model_forward_train(s->model, s->ws, SEQ_LEN, BATCH, NULL, s->x, NULL, NULL,
                                       s->y, NULL, NULL));
    double loss = 0.0;
    for (size_t k = 0; k < Y_COUNT; k++)
        loss += (double)s->y[k] * (double)s->dy[k];
    return loss;
}

/* Analytic gradient of L with the masks of `seed`'s first call, into grads. */
static void analytic_grads(lstm_model *model, lstm_workspace *ws, uint64_t seed, const float *x,
                           const float *dy, float *y, float *grads, size_t count)
{
    expect_ok("lstm_model_zero_grads", lstm_model_zero_grads(model));
    expect_ok("lstm_workspace_set_seed", lstm_workspace_set_seed(ws, seed));
    expect_ok("lstm_model_forward_train", lstm_model_forward_train(model, ws, SEQ_LEN, BATCH, NULL,
                                                                   x, NULL, NULL, y, NULL, NULL));
    expect_ok("lstm_model_backward",
              lstm_model_backward(model, ws, dy, NULL, NULL, NULL, NULL, NULL));
    expect_ok("lstm_model_get_grads", lstm_model_get_grads(model, grads, count));
}

/* Parameters to check: FD_PICKS of layer 0's W and b and a few of layer 1's
 * input weights, each with a gradient of at least 5% of its tensor's largest. */
static size_t pick_parameters(const lstm_model *model, const float *grads, rng *r, size_t *picks)
{
    const struct {
        size_t layer;
        lstm_tensor tensor;
        size_t wanted;
        int x_columns_only;
    } plan[3] = {{0, LSTM_TENSOR_WEIGHT, FD_PICKS - 4, 0},
                 {0, LSTM_TENSOR_BIAS, 2, 0},
                 {1, LSTM_TENSOR_WEIGHT, 2, 1}};
    size_t n = 0;
    for (size_t t = 0; t < 3; t++) {
        size_t off = 0, rows = 0, cols = 0;
        expect_ok("lstm_model_tensor",
                  lstm_model_tensor(model, plan[t].layer, 0, plan[t].tensor, &off, &rows, &cols));
        double largest = 0.0;
        for (size_t k = 0; k < rows * cols; k++)
            largest = fmax(largest, fabs((double)grads[off + k]));
        size_t got = 0;
        for (size_t attempt = 0; attempt < 100000 && got < plan[t].wanted; attempt++) {
            size_t k = (size_t)(rng_next(r) % (rows * cols));
            if (plan[t].x_columns_only && k % cols < HIDDEN_SIZE)
                continue; /* layer 1's input columns: the masked path */
            if (fabs((double)grads[off + k]) < 0.05 * largest)
                continue;
            int seen = 0;
            for (size_t i = 0; i < n; i++)
                seen |= picks[i] == off + k;
            if (seen)
                continue;
            picks[n++] = off + k;
            got++;
        }
        assert_int_equal(got, plan[t].wanted);
    }
    return n;
}

static void test_backward_uses_the_same_masks(void **state)
{
    const double p = dropout_of(state);
    rng r = {14};
    lstm_model *model = new_model(2, p, 51);
    lstm_model *unmasked = new_model(2, 0.0, 51); /* same parameters, no dropout */
    lstm_workspace *ws = new_workspace(model), *ws_unmasked = new_workspace(unmasked);
    const size_t count = lstm_model_param_count(model);
    float *x = random_floats(&r, X_COUNT, -1.0f, 1.0f);
    float *dy = random_floats(&r, Y_COUNT, -1.0f, 1.0f);
    float *y = new_floats(Y_COUNT);
    float *grads = new_floats(count), *grads_other_seed = new_floats(count);
    float *grads_unmasked = new_floats(count);

    analytic_grads(model, ws, FD_SEED, x, dy, y, grads, count);
    analytic_grads(model, ws, FD_SEED + 1, x, dy, y, grads_other_seed, count);
    analytic_grads(unmasked, ws_unmasked, 0, x, dy, y, grads_unmasked, count);

    /* scale for the floor: the largest gradient of layer 0 */
    size_t l0_count = 0, l1_off = 0;
    expect_ok("lstm_model_tensor",
              lstm_model_tensor(model, 1, 0, LSTM_TENSOR_WEIGHT, &l1_off, NULL, NULL));
    l0_count = l1_off;
    double g_max = 0.0;
    for (size_t k = 0; k < l0_count; k++)
        g_max = fmax(g_max, fabs((double)grads[k]));

    size_t picks[FD_PICKS];
    const size_t n_picks = pick_parameters(model, grads, &r, picks);

    float *params = NULL;
    expect_ok("lstm_model_params", lstm_model_params(model, &params, NULL));
    fd_setup s = {model, ws, x, dy, y};
    double worst = 0.0, worst_other = 0.0, worst_unmasked = 0.0;
    for (size_t i = 0; i < n_picks; i++) {
        const size_t k = picks[i];
        const float saved = params[k];
        const float up = saved + FD_EPS, down = saved - FD_EPS;
        params[k] = up;
        const double loss_up = fd_loss(&s);
        params[k] = down;
        const double loss_down = fd_loss(&s);
        params[k] = saved;
        const double fd = (loss_up - loss_down) / ((double)up - (double)down);
        const double bound = FD_RTOL * fabs(fd) + FD_FLOOR * g_max;
        const double ratio = fabs((double)grads[k] - fd) / bound;
        const double ratio_other = fabs((double)grads_other_seed[k] - fd) / bound;
        const double ratio_unmasked = fabs((double)grads_unmasked[k] - fd) / bound;
        printf("  p = %.2f param %5zu: backward %+.6e  central difference %+.6e  rel %.2e"
               "   (other seed %+.4e, no mask %+.4e)\n",
               p, k, (double)grads[k], fd, fabs((double)grads[k] - fd) / fabs(fd),
               (double)grads_other_seed[k], (double)grads_unmasked[k]);
        worst = fmax(worst, ratio);
        worst_other = fmax(worst_other, ratio_other);
        worst_unmasked = fmax(worst_unmasked, ratio_unmasked);
        if (!(ratio <= 1.0)) {
            print_error("param %zu: backward %.9g, central difference %.9g: "
                        "|diff| %.3g over %.2g |fd| + %.2g max|g| = %.3g\n",
                        k, (double)grads[k], fd, fabs((double)grads[k] - fd), FD_RTOL, FD_FLOOR,
                        bound);
            fail();
        }
    }
    /* the check can tell masks apart: other masks, or none, miss by far */
    printf("  p = %.2f: worst |backward - fd| / bound %.3f; with another seed's masks %.1f, "
           "without masks %.1f\n",
           p, worst, worst_other, worst_unmasked);
    assert_true(worst_other > 10.0);
    assert_true(worst_unmasked > 10.0);
}

/* ------------------------------------------------------------------------ */
/* The masks do not depend on the batch plan */

static void test_masks_ignore_the_batch_plan(void **state)
{
    const double p = dropout_of(state);
    rng r = {15};
    lstm_model *model = new_model(2, p, 61);
    lstm_workspace *ws = new_workspace(model);
    float *x = random_floats(&r, X_COUNT, -1.0f, 1.0f);
    float *y_full = new_floats(Y_COUNT), *y_var = new_floats(Y_COUNT);
    size_t lengths[BATCH];
    for (size_t b = 0; b < BATCH; b++)
        lengths[b] = 1 + (b * 5 + 3) % SEQ_LEN; /* every length, unsorted */

    expect_ok("lstm_workspace_set_seed", lstm_workspace_set_seed(ws, 99));
    expect_ok("lstm_model_forward_train",
              lstm_model_forward_train(model, ws, SEQ_LEN, BATCH, NULL, x, NULL, NULL, y_full, NULL,
                                       NULL));
    expect_ok("lstm_workspace_set_seed", lstm_workspace_set_seed(ws, 99));
    expect_ok("lstm_model_forward_train",
              lstm_model_forward_train(model, ws, SEQ_LEN, BATCH, lengths, x, NULL, NULL, y_var,
                                       NULL, NULL));
    /* a sequence's first len steps do not depend on its later steps, so with the
     * same masks they agree; other masks would change them by O(1) */
    double worst = 0.0, scale = 0.0;
    for (size_t t = 0; t < SEQ_LEN; t++) {
        for (size_t b = 0; b < BATCH; b++) {
            for (size_t j = 0; j < HIDDEN_SIZE; j++) {
                const size_t k = (t * BATCH + b) * HIDDEN_SIZE + j;
                if (t < lengths[b]) {
                    worst = fmax(worst, fabs((double)y_var[k] - (double)y_full[k]));
                    scale = fmax(scale, fabs((double)y_full[k]));
                } else {
                    assert_true(y_var[k] == 0.0f);
                }
            }
        }
    }
    if (!(worst <= 1e-6 * scale)) {
        print_error("variable lengths against full length with the same seed: max |diff| %.3g "
                    "(max |y| %.3g)\n",
                    worst, scale);
        fail();
    }
}

/* ------------------------------------------------------------------------ */

static void *test_state(const double *p)
{
    return (void *)(uintptr_t)p;
}

int main(void)
{
    typedef void (*test_fn)(void **);
    const struct {
        const char *name;
        test_fn fn;
    } per_p[] = {
        {"inference_ignores_dropout", test_inference_ignores_dropout},
        {"same_seed_same_masks", test_same_seed_same_masks},
        {"mask_fraction_and_scale", test_mask_fraction_and_scale},
        {"backward_uses_the_same_masks", test_backward_uses_the_same_masks},
        {"masks_ignore_the_batch_plan", test_masks_ignore_the_batch_plan},
    };
    enum { PER_P = sizeof per_p / sizeof per_p[0], P_COUNT = 2, COUNT = 1 + PER_P * P_COUNT };
    struct CMUnitTest tests[COUNT];
    char names[COUNT][64];
    size_t t = 0;
    snprintf(names[t], sizeof names[t], "config_rejects_bad_dropout");
    tests[t] =
        (struct CMUnitTest){names[t], test_config_rejects_bad_dropout, NULL, release_all, NULL};
    t++;
    for (size_t i = 0; i < PER_P; i++) {
        for (size_t k = 0; k < P_COUNT; k++, t++) {
            snprintf(names[t], sizeof names[t], "%s_p%.1f", per_p[i].name, dropout_values[k]);
            tests[t] = (struct CMUnitTest){names[t], per_p[i].fn, NULL, release_all,
                                           test_state(&dropout_values[k])};
        }
    }
    return _cmocka_run_group_tests("dropout", tests, COUNT, NULL, NULL);
}
