/*
 * The embedding layer (lstm/embedding.h) against PyTorch
 * (tests/parity/golden/embedding/embedding_golden.h, from
 * tests/parity/gen_embedding_golden.py), and its contract:
 *
 *  - lookup parity: nn.Embedding's forward, bit for bit (a gather), and its
 *    dense weight gradient (repeated ids summed, nothing into the padding
 *    row) within 1e-6 of the largest reference magnitude; a second
 *    backward doubles it; rows no id used stay exactly zero;
 *  - training parity: 5 steps of SGD (momentum; Nesterov with weight
 *    decay), Adam and AdamW bound with lstm_optim_add_buffer(), through
 *    lstm_loss_mse(), against torch.optim on an nn.Embedding (float32,
 *    sparse=False): each loss within 1e-6 relative, every weight after
 *    every step within 1e-6 |torch| + 1e-7 M (M the largest |torch| weight
 *    of the case), the bound of test_optim_parity;
 *  - lazy training parity (LSTM_OPTIM_LAZY_ROWS, lstm_optim_add_embedding()):
 *    6 steps against torch.optim.SparseAdam and SGD on an
 *    nn.Embedding(sparse=True), one step touching only the padding row, with
 *    the bound above; rows outside a step's touched set keep their bits;
 *    one optimizer with a lazy and a dense embedding against torch's
 *    SparseAdam + Adam pair, its dense buffer bit for bit as without the
 *    flag; lstm_optim_add_embedding() without the flag bit for bit as
 *    lstm_optim_add_buffer();
 *  - the touched rows (lstm_embedding_touched_rows()): first-touched
 *    order, no padding row, each row once, accumulation, both zeroings, a
 *    failed backward changing nothing, growth over many backwards; the
 *    lazy binding's clipping, zeroing, refused steps and saved state; the
 *    options LSTM_OPTIM_LAZY_ROWS refuses, with their messages;
 *  - the contract: ids outside [0, V) refused with their position named
 *    and nothing written, count 0, NULL pointers, NaN in dout, the
 *    configuration's limits and struct_size rules, backward's order of
 *    summation (the same bits as a sequential float sum), init against an
 *    independent copy of the documented Box-Muller stream, its padding row,
 *    and its distribution (mean, variance and the share within 1 and 2 of
 *    the mean over 100000 values).
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

#include "lstm/lstm.h"

#include "golden/embedding/embedding_golden.h"
#include "test_rng.h"

#define TENSOR_TOLERANCE 1e-6
#define LOSS_TOLERANCE 1e-6
#define TRAIN_REL_TOL 1e-6
#define TRAIN_FLOOR 1e-7
#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

static double worst_dW, worst_loss, worst_train;

static void *checked_malloc(size_t bytes)
{
    void *block = malloc(bytes);
    assert_non_null(block);
    return block;
}

static void assert_message_has(const char *text)
{
    if (strstr(lstm_error_message(), text) == NULL)
        fail_msg("message \"%s\" does not contain \"%s\"", lstm_error_message(), text);
}

static lstm_embedding *make_embedding(size_t V, size_t E, int has_padding, int64_t padding_idx)
{
    lstm_embedding_config config;
    assert_int_equal(lstm_embedding_config_init(&config, sizeof config), LSTM_OK);
    config.num_embeddings = V;
    config.embedding_dim = E;
    if (has_padding) {
        config.flags = LSTM_EMBEDDING_PADDING;
        config.padding_idx = padding_idx;
    }
    lstm_embedding *embedding = NULL;
    assert_int_equal(lstm_embedding_create(&config, &embedding), LSTM_OK);
    assert_non_null(embedding);
    return embedding;
}

static float *params_of(lstm_embedding *embedding)
{
    float *data = NULL;
    assert_int_equal(lstm_embedding_params(embedding, &data, NULL), LSTM_OK);
    return data;
}

static float *grads_of(lstm_embedding *embedding)
{
    float *data = NULL;
    assert_int_equal(lstm_embedding_grads(embedding, &data, NULL), LSTM_OK);
    return data;
}

/* max |got - ref| / max |ref| (absolute when ref is all zero). */
static double tensor_error(const float *got, const float *ref, size_t count)
{
    double scale = 0.0, worst = 0.0;
    for (size_t k = 0; k < count; k++) {
        scale = fmax(scale, fabs((double)ref[k]));
        worst = fmax(worst, fabs((double)got[k] - (double)ref[k]));
    }
    return scale > 0.0 ? worst / scale : worst;
}

/* ---- PyTorch parity: lookups ---- */

static void test_lookup_parity(void **unused)
{
    (void)unused;
    for (size_t n = 0; n < COUNT(embedding_lookup_cases); n++) {
        const struct embedding_lookup_case *c = &embedding_lookup_cases[n];
        const size_t V = c->num_embeddings, E = c->embedding_dim, count = c->count;
        lstm_embedding *embedding = make_embedding(V, E, c->has_padding, c->padding_idx);
        size_t param_count = 0;
        float *W = NULL, *dW = grads_of(embedding);
        assert_int_equal(lstm_embedding_params(embedding, &W, &param_count), LSTM_OK);
        assert_int_equal(param_count, V * E);
        assert_int_equal(lstm_embedding_param_count(embedding), V * E);
        memcpy(W, c->W, V * E * sizeof(float));

        float *out = checked_malloc(count * E * sizeof(float));
        assert_int_equal(lstm_embedding_forward(embedding, count, c->ids, out), LSTM_OK);
        /* A gather: torch's float64 values are the float32 rows themselves. */
        if (memcmp(out, c->out, count * E * sizeof(float)) != 0)
            fail_msg("%s: forward differs from torch", c->name);

        assert_int_equal(lstm_embedding_backward(embedding, count, c->ids, c->dout), LSTM_OK);
        const double error = tensor_error(dW, c->dW, V * E);
        worst_dW = fmax(worst_dW, error);
        if (!(error <= TENSOR_TOLERANCE))
            fail_msg("%s: dW error %.3g of max|ref| exceeds %.1g", c->name, error,
                     TENSOR_TOLERANCE);
        /* Rows torch leaves at zero (unused, or the padding row) are exactly zero. */
        for (size_t k = 0; k < V * E; k++)
            if (c->dW[k] == 0.0f && dW[k] != 0.0f)
                fail_msg("%s: dW[%zu] is %g where torch has 0", c->name, k, (double)dW[k]);

        /* Gradients accumulate. */
        float *twice = checked_malloc(V * E * sizeof(float));
        for (size_t k = 0; k < V * E; k++)
            twice[k] = 2.0f * c->dW[k];
        assert_int_equal(lstm_embedding_backward(embedding, count, c->ids, c->dout), LSTM_OK);
        const double error2 = tensor_error(dW, twice, V * E);
        worst_dW = fmax(worst_dW, error2);
        assert_true(error2 <= TENSOR_TOLERANCE);
        assert_int_equal(lstm_embedding_zero_grads(embedding), LSTM_OK);
        for (size_t k = 0; k < V * E; k++)
            assert_true(dW[k] == 0.0f);

        /* The configuration comes back with padding_idx in [0, V). */
        lstm_embedding_config config;
        assert_int_equal(lstm_embedding_config_init(&config, sizeof config), LSTM_OK);
        assert_int_equal(lstm_embedding_get_config(embedding, &config), LSTM_OK);
        assert_int_equal(config.struct_size, sizeof config);
        assert_int_equal(config.num_embeddings, V);
        assert_int_equal(config.embedding_dim, E);
        assert_int_equal(config.flags, c->has_padding ? LSTM_EMBEDDING_PADDING : 0u);
        const int64_t normalised =
            c->has_padding ? (c->padding_idx < 0 ? (int64_t)V + c->padding_idx : c->padding_idx)
                           : 0;
        assert_true(config.padding_idx == normalised);
        free(twice);
        free(out);
        lstm_embedding_destroy(embedding);
    }
}

/* ---- PyTorch parity: training with torch.optim ---- */

static void train_case(const struct embedding_train_case *c, int threads)
{
    enum { V = EMBEDDING_TRAIN_V, E = EMBEDDING_TRAIN_E, N = EMBEDDING_TRAIN_COUNT };
    lstm_embedding *embedding = make_embedding(V, E, c->has_padding, c->padding_idx);
    float *W = params_of(embedding), *dW = grads_of(embedding);
    memcpy(W, c->W0, sizeof(float) * V * E);

    lstm_optim_options options;
    assert_int_equal(lstm_optim_options_init(&options, sizeof options, c->kind), LSTM_OK);
    options.lr = c->lr;
    options.weight_decay = c->weight_decay;
    options.flags = c->flags;
    options.threads = (uint32_t)threads;
    if (c->kind == LSTM_OPTIM_SGD) {
        options.momentum = c->momentum;
    } else {
        options.beta1 = c->beta1;
        options.beta2 = c->beta2;
        options.eps = c->eps;
    }
    lstm_optim *optim = NULL;
    assert_int_equal(lstm_optim_create(&options, &optim), LSTM_OK);
    assert_int_equal(lstm_optim_add_buffer(optim, W, dW, lstm_embedding_param_count(embedding)),
                     LSTM_OK);

    double M = 0.0;
    for (size_t k = 0; k < (size_t)EMBEDDING_TRAIN_STEPS * V * E; k++)
        M = fmax(M, fabs((double)c->W[k]));
    float out[N * E], dout[N * E];
    for (int t = 0; t < EMBEDDING_TRAIN_STEPS; t++) {
        const int64_t *ids = train_ids + t * N;
        const float *target = train_targets + t * N * E;
        double loss = -1.0;
        assert_int_equal(lstm_optim_zero_grads(optim), LSTM_OK);
        assert_int_equal(lstm_embedding_forward(embedding, N, ids, out), LSTM_OK);
        assert_int_equal(lstm_loss_mse(N * E, out, target, &loss, dout), LSTM_OK);
        assert_int_equal(lstm_embedding_backward(embedding, N, ids, dout), LSTM_OK);
        assert_int_equal(lstm_optim_step(optim), LSTM_OK);

        const double torch_loss = c->losses[t];
        const double loss_error = fabs(loss - torch_loss) / fabs(torch_loss);
        worst_loss = fmax(worst_loss, loss_error);
        if (!(loss_error <= LOSS_TOLERANCE))
            fail_msg("%s step %d: loss %.9g, torch %.9g", c->name, t, loss, torch_loss);
        const float *ref = c->W + (size_t)t * V * E;
        for (size_t k = 0; k < (size_t)V * E; k++) {
            const double diff = fabs((double)W[k] - (double)ref[k]);
            const double bound = TRAIN_REL_TOL * fabs((double)ref[k]) + TRAIN_FLOOR * M;
            worst_train = fmax(worst_train, diff / (fabs((double)ref[k]) + 0.1 * M));
            if (!(diff <= bound))
                fail_msg("%s (%d threads) after step %d: W[%zu][%zu] is %.9g, torch %.9g", c->name,
                         threads, t, k / E, k % E, (double)W[k], (double)ref[k]);
        }
    }
    uint64_t steps = 0;
    assert_int_equal(lstm_optim_step_count(optim, &steps), LSTM_OK);
    assert_int_equal(steps, EMBEDDING_TRAIN_STEPS);
    lstm_optim_destroy(optim);
    lstm_embedding_destroy(embedding);
}

static void test_training_parity(void **unused)
{
    (void)unused;
    for (size_t n = 0; n < COUNT(embedding_train_cases); n++) {
        train_case(&embedding_train_cases[n], 0);
        train_case(&embedding_train_cases[n], 2);
    }
}

/* ---- lazy rows: LSTM_OPTIM_LAZY_ROWS against SparseAdam and sparse SGD ---- */

static lstm_optim *make_lazy_optim(lstm_optim_kind kind, uint32_t flags, double lr, double beta1,
                                   double beta2, double eps, int threads)
{
    lstm_optim_options options;
    assert_int_equal(lstm_optim_options_init(&options, sizeof options, kind), LSTM_OK);
    options.flags = flags;
    options.lr = lr;
    options.threads = (uint32_t)threads;
    if (kind == LSTM_OPTIM_ADAM) {
        options.beta1 = beta1;
        options.beta2 = beta2;
        options.eps = eps;
    }
    lstm_optim *optim = NULL;
    assert_int_equal(lstm_optim_create(&options, &optim), LSTM_OK);
    return optim;
}

/* The golden loop's lookup, MSE and backward. */
static void add_gradient(lstm_embedding *embedding, const int64_t *ids, const float *target)
{
    enum { N = EMBEDDING_TRAIN_COUNT, E = EMBEDDING_TRAIN_E };
    float out[N * E], dout[N * E];
    double loss;
    assert_int_equal(lstm_embedding_forward(embedding, N, ids, out), LSTM_OK);
    assert_int_equal(lstm_loss_mse(N * E, out, target, &loss, dout), LSTM_OK);
    assert_int_equal(lstm_embedding_backward(embedding, N, ids, dout), LSTM_OK);
}

/* One training step of the golden loop before the step: zero, then the gradient. */
static void lazy_backward(lstm_optim *optim, lstm_embedding *embedding, const int64_t *ids,
                          const float *target)
{
    assert_int_equal(lstm_optim_zero_grads(optim), LSTM_OK);
    add_gradient(embedding, ids, target);
}

/* Every weight within the training bound of torch's; M from the whole trajectory. */
static void compare_weights(const char *name, int step, const float *W, const float *ref,
                            const float *trajectory, size_t steps)
{
    enum { V = EMBEDDING_TRAIN_V, E = EMBEDDING_TRAIN_E };
    double M = 0.0;
    for (size_t k = 0; k < steps * V * E; k++)
        M = fmax(M, fabs((double)trajectory[k]));
    for (size_t k = 0; k < (size_t)V * E; k++) {
        const double diff = fabs((double)W[k] - (double)ref[k]);
        const double bound = TRAIN_REL_TOL * fabs((double)ref[k]) + TRAIN_FLOOR * M;
        worst_train = fmax(worst_train, diff / (fabs((double)ref[k]) + 0.1 * M));
        if (!(diff <= bound))
            fail_msg("%s after step %d: W[%zu][%zu] is %.9g, torch %.9g", name, step, k / E, k % E,
                     (double)W[k], (double)ref[k]);
    }
}

static bool row_in(const uint32_t *rows, size_t count, size_t row)
{
    for (size_t n = 0; n < count; n++)
        if (rows[n] == row)
            return true;
    return false;
}

static void lazy_case(const struct embedding_lazy_case *c, int threads)
{
    enum { V = EMBEDDING_TRAIN_V, E = EMBEDDING_TRAIN_E, N = EMBEDDING_TRAIN_COUNT };
    lstm_embedding *embedding = make_embedding(V, E, c->has_padding, c->padding_idx);
    float *W = params_of(embedding), before[V * E];
    memcpy(W, lazy_W0, sizeof before); /* the padding row is not zero */
    lstm_optim *optim = make_lazy_optim(c->kind, c->flags | LSTM_OPTIM_LAZY_ROWS, c->lr, c->beta1,
                                        c->beta2, c->eps, threads);
    assert_int_equal(lstm_optim_add_embedding(optim, embedding), LSTM_OK);
    assert_int_equal(lstm_optim_param_count(optim), V * E);
    for (int t = 0; t < EMBEDDING_LAZY_STEPS; t++) {
        memcpy(before, W, sizeof before);
        lazy_backward(optim, embedding, lazy_ids + t * N, lazy_targets + t * N * E);
        const uint32_t *rows;
        size_t touched;
        assert_int_equal(lstm_embedding_touched_rows(embedding, &rows, &touched), LSTM_OK);
        assert_int_equal(lstm_optim_step(optim), LSTM_OK);
        compare_weights(c->name, t, W, c->W + (size_t)t * V * E, c->W, EMBEDDING_LAZY_STEPS);
        /* the rows outside the touched set keep their bits */
        for (size_t row = 0; row < V; row++)
            if (!row_in(rows, touched, row) &&
                memcmp(W + row * E, before + row * E, E * sizeof(float)) != 0)
                fail_msg("%s step %d: untouched row %zu moved", c->name, t, row);
    }
    lstm_optim_destroy(optim);
    lstm_embedding_destroy(embedding);
}

static void test_lazy_training_parity(void **unused)
{
    (void)unused;
    for (size_t n = 0; n < COUNT(embedding_lazy_cases); n++) {
        lazy_case(&embedding_lazy_cases[n], 0);
        lazy_case(&embedding_lazy_cases[n], 2);
    }
}

static const struct embedding_train_case *train_case_named(const char *name)
{
    for (size_t n = 0; n < COUNT(embedding_train_cases); n++)
        if (strcmp(embedding_train_cases[n].name, name) == 0)
            return &embedding_train_cases[n];
    fail_msg("no training case %s", name);
    return NULL;
}

static const struct embedding_lazy_case *lazy_case_named(const char *name)
{
    for (size_t n = 0; n < COUNT(embedding_lazy_cases); n++)
        if (strcmp(embedding_lazy_cases[n].name, name) == 0)
            return &embedding_lazy_cases[n];
    fail_msg("no lazy case %s", name);
    return NULL;
}

/*
 * One optimizer, LSTM_OPTIM_LAZY_ROWS, binds a lazy embedding and a dense
 * one (lstm_optim_add_buffer()): the first follows SparseAdam, the second
 * Adam, as torch's pair of optimizers does, and the dense one's bits are
 * those of an optimizer without the flag.
 */
static void test_lazy_and_dense_in_one_optimizer(void **unused)
{
    (void)unused;
    enum { V = EMBEDDING_TRAIN_V, E = EMBEDDING_TRAIN_E, N = EMBEDDING_TRAIN_COUNT };
    const struct embedding_lazy_case *lazy = lazy_case_named("sparse_adam");
    const struct embedding_train_case *dense = train_case_named("adam");
    assert_true(lazy->lr == dense->lr && lazy->beta1 == dense->beta1 &&
                lazy->beta2 == dense->beta2 && lazy->eps == dense->eps);
    lstm_embedding *sparse_emb = make_embedding(V, E, lazy->has_padding, lazy->padding_idx);
    lstm_embedding *dense_emb = make_embedding(V, E, dense->has_padding, dense->padding_idx);
    lstm_embedding *alone_emb = make_embedding(V, E, dense->has_padding, dense->padding_idx);
    memcpy(params_of(sparse_emb), lazy_W0, sizeof(float) * V * E);
    memcpy(params_of(dense_emb), dense->W0, sizeof(float) * V * E);
    memcpy(params_of(alone_emb), dense->W0, sizeof(float) * V * E);

    lstm_optim *both = make_lazy_optim(LSTM_OPTIM_ADAM, LSTM_OPTIM_LAZY_ROWS, lazy->lr, lazy->beta1,
                                       lazy->beta2, lazy->eps, 0);
    lstm_optim *alone =
        make_lazy_optim(LSTM_OPTIM_ADAM, 0, dense->lr, dense->beta1, dense->beta2, dense->eps, 0);
    assert_int_equal(lstm_optim_add_embedding(both, sparse_emb), LSTM_OK);
    assert_int_equal(lstm_optim_add_buffer(both, params_of(dense_emb), grads_of(dense_emb), V * E),
                     LSTM_OK);
    assert_int_equal(lstm_optim_add_buffer(alone, params_of(alone_emb), grads_of(alone_emb), V * E),
                     LSTM_OK);
    assert_int_equal(lstm_optim_param_count(both), 2 * V * E);
    for (int t = 0; t < EMBEDDING_TRAIN_STEPS; t++) {
        lazy_backward(both, sparse_emb, lazy_ids + t * N, lazy_targets + t * N * E);
        add_gradient(dense_emb, train_ids + t * N, train_targets + t * N * E);
        lazy_backward(alone, alone_emb, train_ids + t * N, train_targets + t * N * E);
        assert_int_equal(lstm_optim_step(both), LSTM_OK);
        assert_int_equal(lstm_optim_step(alone), LSTM_OK);
        compare_weights("SparseAdam of the pair", t, params_of(sparse_emb),
                        lazy->W + (size_t)t * V * E, lazy->W, EMBEDDING_LAZY_STEPS);
        compare_weights("Adam of the pair", t, params_of(dense_emb), dense->W + (size_t)t * V * E,
                        dense->W, EMBEDDING_TRAIN_STEPS);
        assert_memory_equal(params_of(dense_emb), params_of(alone_emb), sizeof(float) * V * E);
    }
    lstm_optim_destroy(both);
    lstm_optim_destroy(alone);
    lstm_embedding_destroy(sparse_emb);
    lstm_embedding_destroy(dense_emb);
    lstm_embedding_destroy(alone_emb);
}

/* Without the flag, lstm_optim_add_embedding() is lstm_optim_add_buffer(), bit for bit. */
static void test_dense_embedding_binding(void **unused)
{
    (void)unused;
    enum { V = EMBEDDING_TRAIN_V, E = EMBEDDING_TRAIN_E, N = EMBEDDING_TRAIN_COUNT };
    for (size_t n = 0; n < COUNT(embedding_train_cases); n++) {
        const struct embedding_train_case *c = &embedding_train_cases[n];
        lstm_embedding *bound = make_embedding(V, E, c->has_padding, c->padding_idx);
        lstm_embedding *buffer = make_embedding(V, E, c->has_padding, c->padding_idx);
        memcpy(params_of(bound), c->W0, sizeof(float) * V * E);
        memcpy(params_of(buffer), c->W0, sizeof(float) * V * E);
        lstm_optim_options options;
        assert_int_equal(lstm_optim_options_init(&options, sizeof options, c->kind), LSTM_OK);
        options.lr = c->lr;
        options.weight_decay = c->weight_decay;
        options.flags = c->flags;
        if (c->kind == LSTM_OPTIM_SGD) {
            options.momentum = c->momentum;
        } else {
            options.beta1 = c->beta1;
            options.beta2 = c->beta2;
            options.eps = c->eps;
        }
        lstm_optim *a = NULL, *b = NULL;
        assert_int_equal(lstm_optim_create(&options, &a), LSTM_OK);
        assert_int_equal(lstm_optim_create(&options, &b), LSTM_OK);
        assert_int_equal(lstm_optim_add_embedding(a, bound), LSTM_OK);
        assert_int_equal(lstm_optim_add_buffer(b, params_of(buffer), grads_of(buffer), V * E),
                         LSTM_OK);
        for (int t = 0; t < EMBEDDING_TRAIN_STEPS; t++) {
            lazy_backward(a, bound, train_ids + t * N, train_targets + t * N * E);
            lazy_backward(b, buffer, train_ids + t * N, train_targets + t * N * E);
            assert_int_equal(lstm_optim_step(a), LSTM_OK);
            assert_int_equal(lstm_optim_step(b), LSTM_OK);
            assert_memory_equal(params_of(bound), params_of(buffer), sizeof(float) * V * E);
            compare_weights(c->name, t, params_of(bound), c->W + (size_t)t * V * E, c->W,
                            EMBEDDING_TRAIN_STEPS);
        }
        /* its zeroing is lstm_embedding_zero_grads(): every row, and the set */
        const uint32_t *rows;
        size_t touched = 99;
        grads_of(bound)[(V - 1) * E] = 1.0f; /* a row no backward touched */
        assert_int_equal(lstm_optim_zero_grads(a), LSTM_OK);
        assert_int_equal(lstm_embedding_touched_rows(bound, &rows, &touched), LSTM_OK);
        assert_int_equal(touched, 0);
        for (size_t k = 0; k < V * E; k++)
            assert_true(grads_of(bound)[k] == 0.0f);
        lstm_optim_destroy(a);
        lstm_optim_destroy(b);
        lstm_embedding_destroy(bound);
        lstm_embedding_destroy(buffer);
    }
}

static void expect_rows(lstm_embedding *embedding, const uint32_t *expected, size_t count)
{
    const uint32_t *rows = NULL;
    size_t touched = SIZE_MAX;
    assert_int_equal(lstm_embedding_touched_rows(embedding, &rows, &touched), LSTM_OK);
    assert_int_equal(touched, count);
    if (count != 0)
        assert_memory_equal(rows, expected, count * sizeof(uint32_t));
}

static void test_touched_rows(void **unused)
{
    (void)unused;
    enum { V = 10, E = 2 };
    lstm_embedding *embedding = make_embedding(V, E, 1, 4);
    float *dW = grads_of(embedding);
    float dout[8 * E];
    for (size_t k = 0; k < 8 * E; k++)
        dout[k] = 0.5f + (float)k;

    /* a layer only used for lookups has an empty set */
    expect_rows(embedding, NULL, 0);
    const uint32_t *rows;
    size_t count;
    assert_int_equal(lstm_embedding_touched_rows(NULL, &rows, &count), LSTM_E_NULL);
    assert_message_has("embedding");
    assert_int_equal(lstm_embedding_touched_rows(embedding, NULL, &count), LSTM_E_NULL);
    assert_message_has("rows");
    assert_int_equal(lstm_embedding_touched_rows(embedding, &rows, NULL), LSTM_E_NULL);
    assert_message_has("count");
    assert_int_equal(lstm_embedding_zero_touched_grads(NULL), LSTM_E_NULL);

    /* first-touched order, each row once, never the padding row 4 */
    const int64_t first[6] = {7, 4, 2, 7, 0, 2};
    assert_int_equal(lstm_embedding_backward(embedding, 6, first, dout), LSTM_OK);
    const uint32_t after_first[3] = {7, 2, 0};
    expect_rows(embedding, after_first, 3);
    /* accumulation adds the new rows at the end */
    const int64_t second[4] = {4, 9, 0, 3};
    assert_int_equal(lstm_embedding_backward(embedding, 4, second, dout), LSTM_OK);
    const uint32_t after_second[5] = {7, 2, 0, 9, 3};
    expect_rows(embedding, after_second, 5);
    /* a zero dout row still touches its row, as in torch's sparse gradient */
    float zeros[E] = {0.0f, 0.0f};
    const int64_t six = 6;
    assert_int_equal(lstm_embedding_backward(embedding, 1, &six, zeros), LSTM_OK);
    const uint32_t with_six[6] = {7, 2, 0, 9, 3, 6};
    expect_rows(embedding, with_six, 6);

    /* failed backwards change neither the gradients nor the set */
    float dW_before[V * E];
    memcpy(dW_before, dW, sizeof dW_before);
    const int64_t bad[2] = {1, V};
    assert_int_equal(lstm_embedding_backward(embedding, 2, bad, dout), LSTM_E_ARG);
    const int64_t new_rows[2] = {1, 5};
    dout[3] = NAN;
    assert_int_equal(lstm_embedding_backward(embedding, 2, new_rows, dout), LSTM_E_NONFINITE);
    dout[3] = 1.0f;
    expect_rows(embedding, with_six, 6);
    assert_memory_equal(dW, dW_before, sizeof dW_before);

    /* zeroing the touched rows: those rows only, and the set */
    dW[1 * E] = 3.0f; /* written through the view, outside the set: left alone */
    assert_int_equal(lstm_embedding_zero_touched_grads(embedding), LSTM_OK);
    expect_rows(embedding, NULL, 0);
    for (size_t k = 0; k < V * E; k++)
        assert_true(dW[k] == (k == 1 * E ? 3.0f : 0.0f));
    /* the set starts again; zero_grads zeroes every row and empties it */
    assert_int_equal(lstm_embedding_backward(embedding, 2, new_rows, dout), LSTM_OK);
    const uint32_t again[2] = {1, 5};
    expect_rows(embedding, again, 2);
    assert_int_equal(lstm_embedding_zero_grads(embedding), LSTM_OK);
    expect_rows(embedding, NULL, 0);
    for (size_t k = 0; k < V * E; k++)
        assert_true(dW[k] == 0.0f);
    /* an all-padding backward touches nothing */
    const int64_t padding[3] = {4, 4, 4};
    assert_int_equal(lstm_embedding_backward(embedding, 3, padding, dout), LSTM_OK);
    expect_rows(embedding, NULL, 0);
    lstm_embedding_destroy(embedding);

    /* Many backwards without zeroing, one new row at a time (the list grows
     * to V - 1 rows, the padding row never), on a large vocabulary. */
    enum { BIG_V = 1 << 16 };
    embedding = make_embedding(BIG_V, 1, 1, BIG_V - 1);
    const float one = 1.0f;
    for (int64_t row = BIG_V - 1; row >= 0; row--)
        assert_int_equal(lstm_embedding_backward(embedding, 1, &row, &one), LSTM_OK);
    assert_int_equal(lstm_embedding_touched_rows(embedding, &rows, &count), LSTM_OK);
    assert_int_equal(count, BIG_V - 1);
    for (size_t n = 0; n < count; n++)
        assert_int_equal(rows[n], BIG_V - 2 - n);
    assert_int_equal(lstm_embedding_zero_touched_grads(embedding), LSTM_OK);
    for (size_t k = 0; k < BIG_V; k++)
        assert_true(grads_of(embedding)[k] == 0.0f);
    lstm_embedding_destroy(embedding);
}

/* create() refuses LSTM_OPTIM_LAZY_ROWS where it is not defined, naming why. */
static void lazy_refused(lstm_optim_kind kind, uint32_t flags, double momentum, double weight_decay,
                         const char *first, const char *second)
{
    lstm_optim_options options;
    assert_int_equal(lstm_optim_options_init(&options, sizeof options, kind), LSTM_OK);
    options.flags = flags | LSTM_OPTIM_LAZY_ROWS;
    options.momentum = momentum;
    options.weight_decay = weight_decay;
    lstm_optim *const sentinel = (lstm_optim *)(void *)&worst_train;
    lstm_optim *optim = sentinel;
    assert_int_equal(lstm_optim_create(&options, &optim), LSTM_E_ARG);
    assert_ptr_equal(optim, sentinel);
    assert_message_has("LSTM_OPTIM_LAZY_ROWS");
    assert_message_has(first);
    if (second != NULL)
        assert_message_has(second);
}

static void test_lazy_refusals(void **unused)
{
    (void)unused;
    lazy_refused(LSTM_OPTIM_SGD, 0, 0.9, 0.0, "momentum", NULL);
    lazy_refused(LSTM_OPTIM_SGD, LSTM_OPTIM_NESTEROV, 0.9, 0.0, "momentum", NULL);
    lazy_refused(LSTM_OPTIM_SGD, 0, 0.0, 0.01, "weight_decay", NULL);
    lazy_refused(LSTM_OPTIM_ADAM, 0, 0.0, 0.01, "weight_decay", "SparseAdam");
    lazy_refused(LSTM_OPTIM_ADAM, LSTM_OPTIM_AMSGRAD, 0.0, 0.0, "AMSGRAD", "SparseAdam");
    lazy_refused(LSTM_OPTIM_ADAMW, 0, 0.0, 0.0, "SGD and LSTM_OPTIM_ADAM only", NULL);
    lazy_refused(LSTM_OPTIM_ADAGRAD, 0, 0.0, 0.0, "SGD and LSTM_OPTIM_ADAM only", NULL);
    lazy_refused(LSTM_OPTIM_RMSPROP, 0, 0.0, 0.0, "SGD and LSTM_OPTIM_ADAM only", NULL);

    /* accepted: SGD without momentum and weight decay, Adam (maximising too) */
    lstm_optim *optim = make_lazy_optim(LSTM_OPTIM_SGD, LSTM_OPTIM_LAZY_ROWS | LSTM_OPTIM_MAXIMIZE,
                                        0.1, 0.0, 0.0, 0.0, 1);
    lstm_embedding *embedding = make_embedding(4, 2, 0, 0);
    assert_int_equal(lstm_optim_add_embedding(NULL, embedding), LSTM_E_NULL);
    assert_message_has("optim");
    assert_int_equal(lstm_optim_add_embedding(optim, NULL), LSTM_E_NULL);
    assert_message_has("embedding");
    assert_int_equal(lstm_optim_param_count(optim), 0);
    assert_int_equal(lstm_optim_add_embedding(optim, embedding), LSTM_OK);
    /* the same buffers twice overlap */
    assert_int_equal(lstm_optim_add_embedding(optim, embedding), LSTM_E_ARG);
    assert_message_has("overlap");
    assert_int_equal(lstm_optim_step(optim), LSTM_OK); /* nothing touched: nothing moves */
    lstm_embedding *late = make_embedding(2, 2, 0, 0);
    assert_int_equal(lstm_optim_add_embedding(optim, late), LSTM_E_STATE);
    assert_int_equal(lstm_optim_param_count(optim), 8);
    lstm_optim_destroy(optim);
    lstm_embedding_destroy(embedding);
    lstm_embedding_destroy(late);
}

/* A lazy Adam after `steps` golden steps from lazy_W0 (case sparse_adam). */
static void lazy_adam_run(lstm_embedding *embedding, lstm_optim *optim, int first, int last)
{
    enum { E = EMBEDDING_TRAIN_E, N = EMBEDDING_TRAIN_COUNT };
    for (int t = first; t < last; t++) {
        lazy_backward(optim, embedding, lazy_ids + t * N, lazy_targets + t * N * E);
        assert_int_equal(lstm_optim_step(optim), LSTM_OK);
    }
}

/* The saved state round-trips with the flag: a resumed run has the bits of
 * an uninterrupted one; a state loads only where the flags are the same. */
static void test_lazy_state_round_trip(void **unused)
{
    (void)unused;
    enum { V = EMBEDDING_TRAIN_V, E = EMBEDDING_TRAIN_E };
    const struct embedding_lazy_case *c = lazy_case_named("sparse_adam");
    lstm_embedding *straight = make_embedding(V, E, c->has_padding, c->padding_idx);
    lstm_embedding *resumed = make_embedding(V, E, c->has_padding, c->padding_idx);
    memcpy(params_of(straight), lazy_W0, sizeof(float) * V * E);
    const uint32_t flags = LSTM_OPTIM_LAZY_ROWS;
    lstm_optim *a = make_lazy_optim(LSTM_OPTIM_ADAM, flags, c->lr, c->beta1, c->beta2, c->eps, 0);
    lstm_optim *b = make_lazy_optim(LSTM_OPTIM_ADAM, flags, c->lr, c->beta1, c->beta2, c->eps, 0);
    lstm_optim *dense = make_lazy_optim(LSTM_OPTIM_ADAM, 0, c->lr, c->beta1, c->beta2, c->eps, 0);
    assert_int_equal(lstm_optim_add_embedding(a, straight), LSTM_OK);
    assert_int_equal(lstm_optim_add_embedding(b, resumed), LSTM_OK);
    assert_int_equal(lstm_optim_add_embedding(dense, resumed), LSTM_OK);
    lazy_adam_run(straight, a, 0, 3);

    size_t bytes = 0, dense_bytes = 0;
    assert_int_equal(lstm_optim_state_size(a, &bytes), LSTM_OK);
    assert_int_equal(lstm_optim_state_size(dense, &dense_bytes), LSTM_OK);
    assert_int_equal(bytes, 40 + 2 * V * E * sizeof(float)); /* the layout of a dense binding */
    assert_int_equal(dense_bytes, bytes);
    unsigned char *state = checked_malloc(bytes);
    assert_int_equal(lstm_optim_save_state(a, state, bytes), LSTM_OK);
    assert_true(state[12] == LSTM_OPTIM_LAZY_ROWS); /* the flags, little-endian */
    /* the moments of rows 9, 10, 11 (never touched) are still 0 */
    float value;
    memcpy(&value, state + 40 + (9 * E) * sizeof(float), sizeof value);
    assert_true(value == 0.0f);
    assert_int_equal(lstm_optim_load_state(dense, state, bytes), LSTM_E_ARG);
    assert_message_has("flags");

    memcpy(params_of(resumed), params_of(straight), sizeof(float) * V * E);
    assert_int_equal(lstm_optim_load_state(b, state, bytes), LSTM_OK);
    uint64_t steps = 0;
    assert_int_equal(lstm_optim_step_count(b, &steps), LSTM_OK);
    assert_int_equal(steps, 3);
    lazy_adam_run(straight, a, 3, EMBEDDING_LAZY_STEPS);
    lazy_adam_run(resumed, b, 3, EMBEDDING_LAZY_STEPS);
    assert_memory_equal(params_of(straight), params_of(resumed), sizeof(float) * V * E);
    compare_weights("resumed SparseAdam", EMBEDDING_LAZY_STEPS - 1, params_of(resumed),
                    c->W + (size_t)(EMBEDDING_LAZY_STEPS - 1) * V * E, c->W, EMBEDDING_LAZY_STEPS);
    unsigned char *state_b = checked_malloc(bytes);
    assert_int_equal(lstm_optim_save_state(a, state, bytes), LSTM_OK);
    assert_int_equal(lstm_optim_save_state(b, state_b, bytes), LSTM_OK);
    assert_memory_equal(state, state_b, bytes);
    free(state);
    free(state_b);
    lstm_optim_destroy(a);
    lstm_optim_destroy(b);
    lstm_optim_destroy(dense);
    lstm_embedding_destroy(straight);
    lstm_embedding_destroy(resumed);
}

/* Clipping a lazy binding reads and writes its touched rows, whose norm is
 * the whole gradient's; a step that would give NaN changes nothing. */
static void test_lazy_clip_and_refused_step(void **unused)
{
    (void)unused;
    enum { V = 300, E = 5, N = 40 };
    lstm_embedding *embedding = make_embedding(V, E, 1, 0);
    assert_int_equal(lstm_embedding_init(embedding, 9), LSTM_OK);
    lstm_optim *optim =
        make_lazy_optim(LSTM_OPTIM_ADAM, LSTM_OPTIM_LAZY_ROWS, 0.01, 0.9, 0.999, 1e-8, 2);
    assert_int_equal(lstm_optim_add_embedding(optim, embedding), LSTM_OK);
    rng r = {77};
    int64_t ids[N];
    float dout[N * E];
    for (size_t k = 0; k < N; k++)
        ids[k] = (int64_t)(rng_next(&r) % 60); /* rows 60 .. 299 never, 0 the padding row */
    for (size_t k = 0; k < N * E; k++)
        dout[k] = rng_float(&r, -3.0f, 3.0f);
    assert_int_equal(lstm_embedding_backward(embedding, N, ids, dout), LSTM_OK);
    float *dW = grads_of(embedding), before[V * E];
    memcpy(before, dW, sizeof before);
    double expected = 0.0;
    for (size_t k = 0; k < V * E; k++)
        expected += (double)dW[k] * (double)dW[k];
    expected = sqrt(expected);
    double norm = 0.0;
    assert_int_equal(lstm_optim_clip_grad_norm(optim, 1.0, &norm), LSTM_OK);
    assert_true(fabs(norm - expected) <= 1e-12 * expected);
    const float factor = (float)(1.0 / (norm + 1e-6));
    for (size_t k = 0; k < V * E; k++)
        assert_true(dW[k] == before[k] * factor);
    assert_int_equal(lstm_optim_clip_grad_norm(optim, 1.0, &norm), LSTM_OK);
    assert_true(fabs(norm - 1.0) < 1e-5);
    assert_int_equal(lstm_optim_clip_grad_value(optim, 0.01), LSTM_OK);
    for (size_t k = 0; k < V * E; k++)
        assert_true(fabsf(dW[k]) <= 0.01f);

    /* a NaN gradient in a touched row: refused, named, nothing changed */
    const uint32_t *rows;
    size_t count;
    assert_int_equal(lstm_embedding_touched_rows(embedding, &rows, &count), LSTM_OK);
    const size_t bad = (size_t)rows[count - 1] * E + 2;
    dW[bad] = NAN;
    float *W = params_of(embedding), W_before[V * E];
    memcpy(W_before, W, sizeof W_before);
    assert_int_equal(lstm_optim_step(optim), LSTM_E_NONFINITE);
    char expected_message[64];
    snprintf(expected_message, sizeof expected_message, "gradient %zu of buffer 0", bad);
    assert_message_has(expected_message);
    assert_memory_equal(W, W_before, sizeof W_before);
    uint64_t steps = 1;
    assert_int_equal(lstm_optim_step_count(optim, &steps), LSTM_OK);
    assert_int_equal(steps, 0);
    /* a parameter near FLT_MAX pushed past it */
    dW[bad] = -1.0f;
    W[bad] = 3.4e38f;
    memcpy(W_before, W, sizeof W_before);
    assert_int_equal(lstm_optim_set_lr(optim, 1e38), LSTM_OK);
    assert_int_equal(lstm_optim_step(optim), LSTM_E_NONFINITE);
    snprintf(expected_message, sizeof expected_message, "parameter %zu of buffer 0", bad);
    assert_message_has(expected_message);
    assert_memory_equal(W, W_before, sizeof W_before);

    /* zeroing: the touched rows only (the rows outside are zero already; a
     * value written there through the view is left, as documented) */
    dW[(V - 1) * E] = 5.0f;
    assert_int_equal(lstm_optim_zero_grads(optim), LSTM_OK);
    assert_int_equal(lstm_embedding_touched_rows(embedding, &rows, &count), LSTM_OK);
    assert_int_equal(count, 0);
    for (size_t k = 0; k < V * E; k++)
        assert_true(dW[k] == (k == (V - 1) * E ? 5.0f : 0.0f));
    lstm_optim_destroy(optim);
    lstm_embedding_destroy(embedding);
}

/* ---- the contract ---- */

static void test_config_init(void **unused)
{
    (void)unused;
    const lstm_embedding_config static_init = LSTM_EMBEDDING_CONFIG_INIT;
    unsigned char bytes[sizeof(lstm_embedding_config) + 16];
    memset(bytes, 0xCC, sizeof bytes);
    assert_int_equal(lstm_embedding_config_init((lstm_embedding_config *)(void *)bytes,
                                                sizeof(lstm_embedding_config) + 8),
                     LSTM_OK);
    lstm_embedding_config config;
    memcpy(&config, bytes, sizeof config);
    assert_int_equal(config.struct_size, sizeof(lstm_embedding_config) + 8);
    assert_int_equal(config.num_embeddings, 0);
    assert_int_equal(config.embedding_dim, 0);
    assert_int_equal(config.flags, 0);
    assert_true(config.padding_idx == 0);
    assert_int_equal(static_init.struct_size, sizeof static_init);
    assert_int_equal(static_init.flags, 0);
    for (size_t k = sizeof config; k < sizeof config + 8; k++)
        assert_int_equal(bytes[k], 0); /* a newer caller's fields: zero */
    for (size_t k = sizeof config + 8; k < sizeof bytes; k++)
        assert_int_equal(bytes[k], 0xCC); /* never past struct_size */

    memset(bytes, 0xCC, sizeof bytes);
    assert_int_equal(lstm_embedding_config_init((lstm_embedding_config *)(void *)bytes, 8),
                     LSTM_E_ARG);
    for (size_t k = 0; k < sizeof bytes; k++)
        assert_int_equal(bytes[k], 0xCC);
    assert_int_equal(lstm_embedding_config_init(NULL, sizeof config), LSTM_E_NULL);
    assert_int_equal(lstm_embedding_config_init(&config, (size_t)1 << 20), LSTM_E_ARG);
}

/* create(config) fails with status, names `what`, and leaves out alone. */
static void refused(const lstm_embedding_config *config, lstm_status status, const char *what)
{
    lstm_embedding *const sentinel = (lstm_embedding *)(void *)&worst_dW;
    lstm_embedding *embedding = sentinel;
    assert_int_equal(lstm_embedding_create(config, &embedding), status);
    assert_ptr_equal(embedding, sentinel);
    assert_message_has(what);
}

static void test_create_checks_config(void **unused)
{
    (void)unused;
    lstm_embedding_config good, c;
    assert_int_equal(lstm_embedding_config_init(&good, sizeof good), LSTM_OK);
    good.num_embeddings = 5;
    good.embedding_dim = 3;
    lstm_embedding *embedding = NULL;

    assert_int_equal(lstm_embedding_create(NULL, &embedding), LSTM_E_NULL);
    assert_message_has("config");
    assert_int_equal(lstm_embedding_create(&good, NULL), LSTM_E_NULL);
    assert_message_has("out");

    c = good, c.num_embeddings = 0;
    refused(&c, LSTM_E_SIZE, "num_embeddings");
    c = good, c.embedding_dim = 0;
    refused(&c, LSTM_E_SIZE, "embedding_dim");
    c = good, c.num_embeddings = LSTM_MAX_VOCAB + 1;
    refused(&c, LSTM_E_SIZE, "num_embeddings");
    c = good, c.num_embeddings = SIZE_MAX;
    refused(&c, LSTM_E_SIZE, "num_embeddings");
    c = good, c.embedding_dim = LSTM_MAX_SIZE + 1;
    refused(&c, LSTM_E_SIZE, "embedding_dim");
    c = good, c.flags = 0x2u;
    refused(&c, LSTM_E_ARG, "flags");
    c = good, c.padding_idx = 1; /* without the flag */
    refused(&c, LSTM_E_ARG, "padding_idx");
    c = good, c.flags = LSTM_EMBEDDING_PADDING, c.padding_idx = 5;
    refused(&c, LSTM_E_ARG, "padding_idx");
    c = good, c.flags = LSTM_EMBEDDING_PADDING, c.padding_idx = -6;
    refused(&c, LSTM_E_ARG, "padding_idx");
    c = good, c.flags = LSTM_EMBEDDING_PADDING, c.padding_idx = INT64_MIN;
    refused(&c, LSTM_E_ARG, "padding_idx");
    c = good, c.struct_size = 8;
    refused(&c, LSTM_E_ARG, "struct_size");
    c = good, c.struct_size = (size_t)1 << 20;
    refused(&c, LSTM_E_ARG, "struct_size");

    /* A newer caller's struct: extra bytes zero are fine, set ones refused. */
    struct {
        lstm_embedding_config config;
        unsigned char newer[8];
    } newer;
    memset(&newer, 0, sizeof newer);
    newer.config = good;
    newer.config.struct_size = sizeof newer;
    assert_int_equal(lstm_embedding_create(&newer.config, &embedding), LSTM_OK);
    lstm_embedding_destroy(embedding);
    newer.newer[3] = 1;
    refused(&newer.config, LSTM_E_ARG, "does not know");

    /* The ends of the padding range: -V is row 0, V - 1 the last. */
    const int64_t ends[2][2] = {{-5, 0}, {4, 4}};
    for (int n = 0; n < 2; n++) {
        c = good, c.flags = LSTM_EMBEDDING_PADDING, c.padding_idx = ends[n][0];
        assert_int_equal(lstm_embedding_create(&c, &embedding), LSTM_OK);
        lstm_embedding_config got;
        assert_int_equal(lstm_embedding_config_init(&got, sizeof got), LSTM_OK);
        assert_int_equal(lstm_embedding_get_config(embedding, &got), LSTM_OK);
        assert_true(got.padding_idx == ends[n][1]);
        lstm_embedding_destroy(embedding);
    }

    /* The largest accepted sizes are refused by the allocator, cleanly
     * (V E floats, 2^57 bytes, cannot overflow a 64-bit size_t). */
    c = good, c.num_embeddings = LSTM_MAX_VOCAB, c.embedding_dim = LSTM_MAX_SIZE;
    lstm_embedding *const sentinel = (lstm_embedding *)(void *)&worst_dW;
    embedding = sentinel;
    lstm_status status = lstm_embedding_create(&c, &embedding);
    assert_true(status == LSTM_E_NOMEM || status == LSTM_E_OVERFLOW);
    assert_ptr_equal(embedding, sentinel);

    lstm_embedding_destroy(NULL); /* accepted and ignored */
    assert_int_equal(lstm_embedding_param_count(NULL), 0);
}

static void test_get_config_and_views(void **unused)
{
    (void)unused;
    lstm_embedding *embedding = make_embedding(7, 5, 1, -1);
    lstm_embedding_config config;
    assert_int_equal(lstm_embedding_get_config(NULL, &config), LSTM_E_NULL);
    assert_int_equal(lstm_embedding_get_config(embedding, NULL), LSTM_E_NULL);
    unsigned char bytes[sizeof config + 8];
    memset(bytes, 0xCC, sizeof bytes);
    size_t small = 16; /* below the first version */
    memcpy(bytes, &small, sizeof small);
    assert_int_equal(lstm_embedding_get_config(embedding, (lstm_embedding_config *)(void *)bytes),
                     LSTM_E_ARG);
    assert_message_has("struct_size");
    config.struct_size = sizeof config;
    assert_int_equal(lstm_embedding_get_config(embedding, &config), LSTM_OK);
    assert_true(config.padding_idx == 6);

    float *data = NULL;
    size_t count = 0;
    assert_int_equal(lstm_embedding_params(NULL, &data, &count), LSTM_E_NULL);
    assert_int_equal(lstm_embedding_params(embedding, NULL, &count), LSTM_E_NULL);
    assert_int_equal(lstm_embedding_grads(NULL, &data, &count), LSTM_E_NULL);
    assert_int_equal(lstm_embedding_grads(embedding, NULL, &count), LSTM_E_NULL);
    assert_int_equal(lstm_embedding_zero_grads(NULL), LSTM_E_NULL);
    assert_int_equal(lstm_embedding_init(NULL, 1), LSTM_E_NULL);
    assert_int_equal(lstm_embedding_params(embedding, &data, &count), LSTM_OK);
    assert_int_equal(count, 35);
    assert_int_equal((uintptr_t)data % 64, 0);
    for (size_t k = 0; k < count; k++)
        assert_true(data[k] == 0.0f); /* created at zero */
    float *grads = NULL;
    assert_int_equal(lstm_embedding_grads(embedding, &grads, NULL), LSTM_OK);
    assert_int_equal((uintptr_t)grads % 64, 0);
    assert_ptr_not_equal(grads, data);
    for (size_t k = 0; k < count; k++)
        assert_true(grads[k] == 0.0f);
    lstm_embedding_destroy(embedding);
}

/* The forward and backward refusals: nothing written, the status and the message. */
static void test_bad_lookups(void **unused)
{
    (void)unused;
    enum { V = 6, E = 4, N = 5 };
    lstm_embedding *embedding = make_embedding(V, E, 1, 2);
    assert_int_equal(lstm_embedding_init(embedding, 3), LSTM_OK);
    float *dW = grads_of(embedding);
    for (size_t k = 0; k < V * E; k++)
        dW[k] = (float)k; /* gradients already there must survive a failure */
    float dW_before[V * E];
    memcpy(dW_before, dW, sizeof dW_before);

    const int64_t good[N] = {0, 5, 2, 2, 1};
    float out[N * E], dout[N * E];
    for (size_t k = 0; k < N * E; k++)
        dout[k] = 0.25f * (float)k;
    const float canary = -1234.5f;

    static const int64_t bad_values[] = {V, -1, V + 1000, INT64_MIN, INT64_MAX, -V};
    for (size_t b = 0; b < COUNT(bad_values); b++) {
        for (size_t at = 0; at < N; at += 3) { /* the first and a later position */
            int64_t ids[N];
            memcpy(ids, good, sizeof ids);
            ids[at] = bad_values[b];
            char expected[96];
            snprintf(expected, sizeof expected, "ids[%zu] is %lld; it must be in [0, %d)", at,
                     (long long)bad_values[b], V);
            for (size_t k = 0; k < N * E; k++)
                out[k] = canary;
            assert_int_equal(lstm_embedding_forward(embedding, N, ids, out), LSTM_E_ARG);
            assert_string_equal(lstm_error_message(), expected);
            for (size_t k = 0; k < N * E; k++)
                assert_true(out[k] == canary);
            assert_int_equal(lstm_embedding_backward(embedding, N, ids, dout), LSTM_E_ARG);
            assert_string_equal(lstm_error_message(), expected);
            assert_memory_equal(dW, dW_before, sizeof dW_before);
        }
    }

    /* NaN or infinity in dout: nothing added; bad ids are reported first. */
    dout[7] = NAN;
    assert_int_equal(lstm_embedding_backward(embedding, N, good, dout), LSTM_E_NONFINITE);
    assert_message_has("dout[7]");
    assert_memory_equal(dW, dW_before, sizeof dW_before);
    dout[7] = 0.0f;
    dout[N * E - 1] = -INFINITY;
    assert_int_equal(lstm_embedding_backward(embedding, N, good, dout), LSTM_E_NONFINITE);
    assert_message_has("dout[19]");
    const int64_t one_bad[N] = {0, 5, 2, 6, 1};
    assert_int_equal(lstm_embedding_backward(embedding, N, one_bad, dout), LSTM_E_ARG);
    assert_message_has("ids[3] is 6");
    assert_memory_equal(dW, dW_before, sizeof dW_before);
    dout[N * E - 1] = 1.0f;

    /* count 0, NULL pointers, counts whose sizes overflow */
    for (size_t k = 0; k < N * E; k++)
        out[k] = canary;
    assert_int_equal(lstm_embedding_forward(embedding, 0, good, out), LSTM_E_SIZE);
    assert_message_has("count is 0");
    assert_int_equal(lstm_embedding_backward(embedding, 0, good, dout), LSTM_E_SIZE);
    assert_int_equal(lstm_embedding_forward(NULL, N, good, out), LSTM_E_NULL);
    assert_message_has("embedding");
    assert_int_equal(lstm_embedding_forward(embedding, N, NULL, out), LSTM_E_NULL);
    assert_message_has("ids");
    assert_int_equal(lstm_embedding_forward(embedding, N, good, NULL), LSTM_E_NULL);
    assert_message_has("out");
    assert_int_equal(lstm_embedding_backward(NULL, N, good, dout), LSTM_E_NULL);
    assert_int_equal(lstm_embedding_backward(embedding, N, NULL, dout), LSTM_E_NULL);
    assert_int_equal(lstm_embedding_backward(embedding, N, good, NULL), LSTM_E_NULL);
    assert_message_has("dout");
    const size_t huge[] = {SIZE_MAX, SIZE_MAX / 8 + 1, SIZE_MAX / (4 * E) + 1};
    for (size_t h = 0; h < COUNT(huge); h++) {
        /* refused before a single id or float is read */
        assert_int_equal(lstm_embedding_forward(embedding, huge[h], good, out), LSTM_E_OVERFLOW);
        assert_message_has("count");
        assert_int_equal(lstm_embedding_backward(embedding, huge[h], good, dout), LSTM_E_OVERFLOW);
    }
    for (size_t k = 0; k < N * E; k++)
        assert_true(out[k] == canary);
    assert_memory_equal(dW, dW_before, sizeof dW_before);

    /* the padding id is a valid id: forward gives its row, as it is */
    float *W = params_of(embedding);
    W[2 * E + 1] = 7.0f;
    assert_int_equal(lstm_embedding_forward(embedding, N, good, out), LSTM_OK);
    assert_true(out[2 * E + 1] == 7.0f && out[3 * E + 1] == 7.0f && out[2 * E] == 0.0f);
    lstm_embedding_destroy(embedding);
}

/* Backward sums in order of k, in float: the bits of a plain sequential sum. */
static void test_backward_order(void **unused)
{
    (void)unused;
    enum { V = 9, E = 7, N = 300 };
    lstm_embedding *embedding = make_embedding(V, E, 1, 4);
    float *dW = grads_of(embedding);
    rng r = {2024};
    int64_t ids[N];
    float dout[N * E], expected[V * E], first[V * E];
    for (size_t k = 0; k < N; k++)
        ids[k] = (int64_t)(rng_next(&r) % 6); /* rows 6, 7 and 8 never used */
    for (size_t k = 0; k < N * E; k++)
        dout[k] = rng_float(&r, -1.0f, 1.0f) * (k % 5 == 0 ? 1e4f : 1.0f);
    for (size_t k = 0; k < V * E; k++)
        dW[k] = expected[k] = (float)k - 20.0f; /* padding row 4 not zero */
    for (size_t k = 0; k < N; k++) {
        if (ids[k] == 4)
            continue;
        for (size_t j = 0; j < E; j++)
            expected[(size_t)ids[k] * E + j] += dout[k * E + j];
    }
    assert_int_equal(lstm_embedding_backward(embedding, N, ids, dout), LSTM_OK);
    assert_memory_equal(dW, expected, sizeof expected);
    for (size_t j = 0; j < E; j++) /* the padding row and the rows not used: as they were */
        assert_true(dW[4 * E + j] == (float)(4 * E + j) - 20.0f &&
                    dW[8 * E + j] == (float)(8 * E + j) - 20.0f);
    memcpy(first, dW, sizeof first);
    for (size_t k = 0; k < V * E; k++)
        dW[k] = (float)k - 20.0f;
    assert_int_equal(lstm_embedding_backward(embedding, N, ids, dout), LSTM_OK);
    assert_memory_equal(dW, first, sizeof first);
    lstm_embedding_destroy(embedding);
}

/* The documented stream, computed here independently (test_rng.h). */
static void box_muller(uint64_t seed, float *values, size_t count)
{
    rng r = {seed};
    for (size_t k = 0; k < count; k += 2) {
        const double a1 = (double)(rng_next(&r) >> 11) * 0x1p-53;
        const double a2 = (double)(rng_next(&r) >> 11) * 0x1p-53;
        const double radius = sqrt(-2.0 * log(1.0 - a1));
        const double angle = 2.0 * 3.14159265358979323846 * a2;
        values[k] = (float)(radius * cos(angle));
        if (k + 1 < count)
            values[k + 1] = (float)(radius * sin(angle));
    }
}

static void test_init(void **unused)
{
    (void)unused;
    enum { V = 2001, E = 50 }; /* an odd count: the last pair gives its cosine only */
    const size_t count = (size_t)V * E, pad = 1000;
    lstm_embedding *embedding = make_embedding(V, E, 1, (int64_t)pad);
    float *W = params_of(embedding), *dW = grads_of(embedding);
    dW[3] = 5.0f;
    assert_int_equal(lstm_embedding_init(embedding, 42), LSTM_OK);
    assert_true(dW[3] == 5.0f); /* gradients untouched */

    float *expected = checked_malloc(count * sizeof(float));
    box_muller(42, expected, count);
    size_t differ = 0;
    for (size_t k = 0; k < count; k++) {
        const bool in_pad = k / E == pad;
        const float want = in_pad ? 0.0f : expected[k];
        /* the bits of the documented stream, up to a last-bit libm difference */
        if (W[k] != want) {
            differ++;
            assert_false(in_pad);
            assert_true(fabsf(W[k] - want) <= 2e-7f * fabsf(want));
        }
    }
    assert_true(differ <= 2);

    /* The same seed gives the same bits; another seed other values. */
    float *again = checked_malloc(count * sizeof(float));
    memcpy(again, W, count * sizeof(float));
    assert_int_equal(lstm_embedding_init(embedding, 42), LSTM_OK);
    assert_memory_equal(W, again, count * sizeof(float));
    assert_int_equal(lstm_embedding_init(embedding, 43), LSTM_OK);
    size_t same = 0;
    for (size_t k = 0; k < count; k++)
        if (W[k] == again[k])
            same++;
    assert_true(same == E); /* the padding row only */

    /* N(0, 1): mean, variance, and the shares within 1 and 2 (68.27%, 95.45%),
     * each within about 5 standard errors over the 100000 values. */
    double sum = 0.0, squares = 0.0, largest = 0.0;
    size_t within1 = 0, within2 = 0, n = 0;
    for (size_t k = 0; k < count; k++) {
        if (k / E == pad) {
            assert_true(W[k] == 0.0f);
            continue;
        }
        const double v = W[k];
        assert_true(isfinite(v));
        sum += v;
        squares += v * v;
        largest = fmax(largest, fabs(v));
        if (fabs(v) < 1.0)
            within1++;
        if (fabs(v) < 2.0)
            within2++;
        n++;
    }
    const double mean = sum / (double)n, variance = squares / (double)n - mean * mean;
    print_message("init: mean %.4f, variance %.4f, within 1: %.4f, within 2: %.4f, max %.2f\n",
                  mean, variance, (double)within1 / (double)n, (double)within2 / (double)n,
                  largest);
    assert_true(fabs(mean) < 5.0 / sqrt((double)n));
    assert_true(fabs(variance - 1.0) < 5.0 * sqrt(2.0 / (double)n));
    assert_true(fabs((double)within1 / (double)n - 0.682689) < 0.0075);
    assert_true(fabs((double)within2 / (double)n - 0.954500) < 0.0035);
    assert_true(largest < 8.6 && largest > 3.0);
    free(again);
    free(expected);
    lstm_embedding_destroy(embedding);
}

static void test_summary(void **unused)
{
    (void)unused;
    print_message("worst errors: dW %.3g (bound %.0e), loss %.3g (bound %.0e), weights in "
                  "training %.3g (of |torch| + 0.1 M; bound %.0e)\n",
                  worst_dW, TENSOR_TOLERANCE, worst_loss, LOSS_TOLERANCE, worst_train,
                  TRAIN_REL_TOL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_parity),
        cmocka_unit_test(test_training_parity),
        cmocka_unit_test(test_lazy_training_parity),
        cmocka_unit_test(test_lazy_and_dense_in_one_optimizer),
        cmocka_unit_test(test_dense_embedding_binding),
        cmocka_unit_test(test_touched_rows),
        cmocka_unit_test(test_lazy_refusals),
        cmocka_unit_test(test_lazy_state_round_trip),
        cmocka_unit_test(test_lazy_clip_and_refused_step),
        cmocka_unit_test(test_config_init),
        cmocka_unit_test(test_create_checks_config),
        cmocka_unit_test(test_get_config_and_views),
        cmocka_unit_test(test_bad_lookups),
        cmocka_unit_test(test_backward_order),
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_summary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
