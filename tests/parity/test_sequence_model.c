/*
 * Whole sequence models (lstm/network.h) against PyTorch: the golden data of
 * tests/parity/golden/sequence_model/sequence_model_golden.h (from
 * tests/parity/gen_sequence_model_golden.py) for three configurations,
 *   a. embedding + 2-layer bidirectional LSTM + last-step head, cross-entropy;
 *   b. embedding with padding_idx + LSTM + every-step head, a language
 *      model's cross-entropy with ignored (negative) targets;
 *   c. float features + 2-layer LSTM with a projection + every-step head,
 *      MSE, batch-first;
 * each on a batch of mixed lengths whose padding holds garbage (token ids
 * outside the vocabulary, features of 1e4, targets out of range or 1e30)
 * that the network must never read.
 *
 * Per configuration: inference and training forward (the output, zero
 * past each sequence's end, the same bits from both), the loss of backward
 * and of lstm_network_loss(), and every parameter's gradient (embedding,
 * LSTM, head) against torch in float64 on the same float32 weights; then
 * SEQUENCE_MODEL_STEPS steps of the library's optimizer (SGD with momentum
 * for a, Adam for b and c), the parts bound with lstm_optim_add_buffer()
 * and lstm_optim_add_model(), against torch.optim: each step's loss and
 * every parameter at the end.
 *
 * Tolerances (measured worst errors are printed at the end): a loss within
 * LOSS_TOLERANCE relative; a tensor within TENSOR_TOLERANCE of its largest
 * reference magnitude (tests/parity/test_parity.c's 3e-6 normwise bound);
 * trained parameters within TRAIN_REL_TOL relative plus TRAIN_FLOOR times
 * the largest magnitude.
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
#include "lstm/network.h"

#include "golden/sequence_model/sequence_model_golden.h"

#define LOSS_TOLERANCE 1e-6
#define TENSOR_TOLERANCE 3e-6
#define TRAIN_REL_TOL 1e-5
#define TRAIN_FLOOR 1e-6
#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

static double worst_output, worst_loss, worst_grad, worst_train_loss, worst_train;

static void *checked_malloc(size_t bytes)
{
    void *block = malloc(bytes);
    assert_non_null(block);
    return block;
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

static void check_tensor(const struct sequence_model_case *c, const char *what, const float *got,
                         const float *ref, size_t count, double *worst)
{
    const double error = tensor_error(got, ref, count);
    *worst = fmax(*worst, error);
    if (!(error <= TENSOR_TOLERANCE))
        fail_msg("%s %s: error %.3g of max|ref| exceeds %.1g", c->name, what, error,
                 TENSOR_TOLERANCE);
}

static void check_loss(const struct sequence_model_case *c, const char *what, double got,
                       double ref, double *worst)
{
    const double error = fabs(got - ref) / fabs(ref);
    *worst = fmax(*worst, error);
    if (!(error <= LOSS_TOLERANCE))
        fail_msg("%s %s: loss %.17g, torch %.17g: relative error %.3g", c->name, what, got, ref,
                 error);
}

static size_t directions(const struct sequence_model_case *c)
{
    return c->bidirectional ? 2 : 1;
}

static size_t state_size(const struct sequence_model_case *c)
{
    return c->P != 0 ? c->P : c->H;
}

static size_t output_rows(const struct sequence_model_case *c)
{
    return c->head == LSTM_HEAD_LAST_STEP ? c->B : c->T * c->B;
}

/* Whether output row r lies within its sequence. */
static int row_valid(const struct sequence_model_case *c, size_t r)
{
    if (c->head == LSTM_HEAD_LAST_STEP)
        return 1;
    const size_t t = c->batch_first ? r % c->T : r / c->B;
    const size_t b = c->batch_first ? r / c->T : r % c->B;
    return t < c->lengths[b];
}

/* The golden file's LSTM tensors, block after block (W, b, W_hr), copied
 * to or from a model buffer at lstm_model_tensor()'s offsets. */
static size_t move_lstm(lstm_model *model, const struct sequence_model_case *c, float *buffer,
                        float *flat, int to_buffer)
{
    size_t used = 0;
    for (size_t layer = 0; layer < c->L; layer++) {
        for (size_t d = 0; d < directions(c); d++) {
            for (int tensor = LSTM_TENSOR_WEIGHT; tensor <= LSTM_TENSOR_PROJECTION; tensor++) {
                if (tensor == LSTM_TENSOR_PROJECTION && c->P == 0)
                    continue;
                size_t offset = 0, rows = 0, cols = 0;
                assert_int_equal(
                    lstm_model_tensor(model, layer, d, (lstm_tensor)tensor, &offset, &rows, &cols),
                    LSTM_OK);
                if (to_buffer)
                    memcpy(buffer + offset, flat + used, rows * cols * sizeof(float));
                else
                    memcpy(flat + used, buffer + offset, rows * cols * sizeof(float));
                used += rows * cols;
            }
        }
    }
    return used;
}

static lstm_network *make_network(const struct sequence_model_case *c)
{
    lstm_config lc;
    assert_int_equal(lstm_config_init(&lc, sizeof lc), LSTM_OK);
    lc.input_size = c->I;
    lc.hidden_size = c->H;
    lc.num_layers = c->L;
    lc.proj_size = c->P;
    lc.flags =
        (c->bidirectional ? LSTM_BIDIRECTIONAL : 0u) | (c->batch_first ? LSTM_BATCH_FIRST : 0u);
    lstm_embedding_config ec;
    assert_int_equal(lstm_embedding_config_init(&ec, sizeof ec), LSTM_OK);
    ec.num_embeddings = c->V;
    ec.embedding_dim = c->E;
    ec.flags = c->has_padding ? LSTM_EMBEDDING_PADDING : 0u;
    ec.padding_idx = c->padding_idx;
    lstm_network_config config;
    assert_int_equal(lstm_network_config_init(&config, sizeof config), LSTM_OK);
    config.embedding = c->tokens ? &ec : NULL;
    config.lstm = &lc;
    config.head = (uint32_t)c->head;
    config.loss = (uint32_t)c->loss;
    config.head_size = c->O;
    lstm_network *network = NULL;
    assert_int_equal(lstm_network_create(&config, &network), LSTM_OK);

    float *params;
    size_t count;
    if (c->tokens) {
        assert_int_equal(lstm_embedding_params(lstm_network_embedding(network), &params, &count),
                         LSTM_OK);
        assert_int_equal(count, c->V * c->E);
        memcpy(params, c->embedding, count * sizeof(float));
    }
    lstm_model *model = lstm_network_model(network);
    assert_int_equal(lstm_model_params(model, &params, &count), LSTM_OK);
    assert_int_equal(move_lstm(model, c, params, (float *)(uintptr_t)c->lstm, 1), count);
    assert_int_equal(lstm_dense_params(lstm_network_head(network), &params, &count), LSTM_OK);
    assert_int_equal(count, c->O * directions(c) * state_size(c) + c->O);
    memcpy(params, c->head_params, count * sizeof(float));
    return network;
}

/* The call's arguments: the golden inputs and lengths, the model's layout. */
static void call_args(const struct sequence_model_case *c, lstm_sequences *sequences,
                      lstm_network_inputs *inputs, lstm_targets *targets)
{
    assert_int_equal(lstm_sequences_init(sequences, sizeof *sequences), LSTM_OK);
    sequences->steps = c->T;
    sequences->batch = c->B;
    sequences->lengths = c->lengths;
    assert_int_equal(lstm_network_inputs_init(inputs, sizeof *inputs), LSTM_OK);
    inputs->tokens = c->ids;
    inputs->features = c->features;
    assert_int_equal(lstm_targets_init(targets, sizeof *targets), LSTM_OK);
    targets->classes = c->classes;
    targets->values = c->values;
}

/* Forward, loss and every gradient against torch. */
static void check_case(const struct sequence_model_case *c)
{
    lstm_network *network = make_network(c);
    lstm_model *model = lstm_network_model(network);
    lstm_workspace *workspace = NULL;
    assert_int_equal(lstm_workspace_create(model, &workspace), LSTM_OK);
    lstm_sequences sequences;
    lstm_network_inputs inputs;
    lstm_targets targets;
    call_args(c, &sequences, &inputs, &targets);

    const size_t rows = output_rows(c), elements = rows * c->O;
    float *inferred = checked_malloc(elements * sizeof(float));
    float *trained = checked_malloc(elements * sizeof(float));
    memset(inferred, 0xA5, elements * sizeof(float)); /* a sentinel the call must overwrite */
    memset(trained, 0x5A, elements * sizeof(float));
    lstm_network_outputs outputs;
    assert_int_equal(lstm_network_outputs_init(&outputs, sizeof outputs), LSTM_OK);
    outputs.output = inferred;
    assert_int_equal(lstm_network_infer(network, workspace, &sequences, &inputs, &outputs),
                     LSTM_OK);
    check_tensor(c, "output", inferred, c->output, elements, &worst_output);
    for (size_t r = 0; r < rows; r++)
        for (size_t o = 0; o < c->O && !row_valid(c, r); o++)
            assert_true(inferred[r * c->O + o] == 0.0f);
    double loss = -1.0;
    assert_int_equal(lstm_network_loss(network, &sequences, inferred, &targets, &loss), LSTM_OK);
    check_loss(c, "lstm_network_loss", loss, c->loss_value, &worst_loss);

    outputs.output = trained;
    assert_int_equal(lstm_network_train_forward(network, workspace, &sequences, &inputs, &outputs),
                     LSTM_OK);
    assert_memory_equal(trained, inferred, elements * sizeof(float));
    double backward_loss = -1.0;
    assert_int_equal(lstm_network_train_backward(network, workspace, &targets, &backward_loss),
                     LSTM_OK);
    assert_true(backward_loss == loss);
    check_loss(c, "backward", backward_loss, c->loss_value, &worst_loss);

    float *grads;
    size_t count;
    if (c->tokens) {
        assert_int_equal(lstm_embedding_grads(lstm_network_embedding(network), &grads, &count),
                         LSTM_OK);
        check_tensor(c, "embedding dW", grads, c->d_embedding, count, &worst_grad);
        if (c->has_padding) /* the padding row's gradient stays zero */
            for (size_t e = 0; e < c->E; e++)
                assert_true(grads[(size_t)c->padding_idx * c->E + e] == 0.0f);
    }
    assert_int_equal(lstm_model_grads(model, &grads, &count), LSTM_OK);
    float *flat = checked_malloc(count * sizeof(float));
    assert_int_equal(move_lstm(model, c, grads, flat, 0), count);
    check_tensor(c, "LSTM gradients", flat, c->d_lstm, count, &worst_grad);
    assert_int_equal(lstm_dense_grads(lstm_network_head(network), &grads, &count), LSTM_OK);
    check_tensor(c, "head gradients", grads, c->d_head, count, &worst_grad);

    free(flat);
    free(inferred);
    free(trained);
    lstm_workspace_destroy(workspace);
    lstm_network_destroy(network);
}

static void test_forward_backward(void **unused)
{
    (void)unused;
    for (size_t n = 0; n < COUNT(sequence_model_cases); n++)
        check_case(&sequence_model_cases[n]);
}

/* Every parameter within the training tolerance of torch's. */
static void check_trained(const struct sequence_model_case *c, const char *what, const float *got,
                          const float *ref, size_t count)
{
    double M = 0.0;
    for (size_t k = 0; k < count; k++)
        M = fmax(M, fabs((double)ref[k]));
    for (size_t k = 0; k < count; k++) {
        const double diff = fabs((double)got[k] - (double)ref[k]);
        worst_train = fmax(worst_train, diff / (fabs((double)ref[k]) + 0.1 * M));
        if (!(diff <= TRAIN_REL_TOL * fabs((double)ref[k]) + TRAIN_FLOOR * M))
            fail_msg("%s %s[%zu] after %d steps is %.9g, torch %.9g", c->name, what, k,
                     SEQUENCE_MODEL_STEPS, (double)got[k], (double)ref[k]);
    }
}

static void train_case(const struct sequence_model_case *c)
{
    lstm_network *network = make_network(c);
    lstm_embedding *embedding = lstm_network_embedding(network);
    lstm_model *model = lstm_network_model(network);
    lstm_dense *head = lstm_network_head(network);
    lstm_workspace *workspace = NULL;
    assert_int_equal(lstm_workspace_create(model, &workspace), LSTM_OK);

    lstm_optim_options options;
    assert_int_equal(
        lstm_optim_options_init(&options, sizeof options, (lstm_optim_kind)c->optim_kind), LSTM_OK);
    options.lr = c->lr;
    if (c->optim_kind == LSTM_OPTIM_SGD)
        options.momentum = c->momentum;
    lstm_optim *optim = NULL;
    assert_int_equal(lstm_optim_create(&options, &optim), LSTM_OK);
    float *params, *grads;
    size_t count;
    if (embedding != NULL) { /* embedding, LSTM, head: lstm_optim_add_network()'s order */
        assert_int_equal(lstm_embedding_params(embedding, &params, &count), LSTM_OK);
        assert_int_equal(lstm_embedding_grads(embedding, &grads, NULL), LSTM_OK);
        assert_int_equal(lstm_optim_add_buffer(optim, params, grads, count), LSTM_OK);
    }
    assert_int_equal(lstm_optim_add_model(optim, model), LSTM_OK);
    assert_int_equal(lstm_dense_params(head, &params, &count), LSTM_OK);
    assert_int_equal(lstm_dense_grads(head, &grads, NULL), LSTM_OK);
    assert_int_equal(lstm_optim_add_buffer(optim, params, grads, count), LSTM_OK);
    assert_int_equal(lstm_optim_param_count(optim), lstm_network_param_count(network));

    lstm_sequences sequences;
    lstm_network_inputs inputs;
    lstm_targets targets;
    call_args(c, &sequences, &inputs, &targets);
    for (int step = 0; step < SEQUENCE_MODEL_STEPS; step++) {
        double loss = -1.0;
        assert_int_equal(lstm_optim_zero_grads(optim), LSTM_OK);
        assert_int_equal(lstm_network_train_forward(network, workspace, &sequences, &inputs, NULL),
                         LSTM_OK);
        assert_int_equal(lstm_network_train_backward(network, workspace, &targets, &loss), LSTM_OK);
        char what[32];
        snprintf(what, sizeof what, "step %d", step);
        check_loss(c, what, loss, c->losses[step], &worst_train_loss);
        assert_int_equal(lstm_optim_step(optim), LSTM_OK);
    }
    if (embedding != NULL) {
        assert_int_equal(lstm_embedding_params(embedding, &params, &count), LSTM_OK);
        check_trained(c, "embedding", params, c->final_embedding, count);
    }
    assert_int_equal(lstm_model_params(model, &params, &count), LSTM_OK);
    float *flat = checked_malloc(count * sizeof(float));
    move_lstm(model, c, params, flat, 0);
    check_trained(c, "LSTM", flat, c->final_lstm, count);
    assert_int_equal(lstm_dense_params(head, &params, &count), LSTM_OK);
    check_trained(c, "head", params, c->final_head, count);
    free(flat);
    lstm_optim_destroy(optim);
    lstm_workspace_destroy(workspace);
    lstm_network_destroy(network);
}

static void test_training(void **unused)
{
    (void)unused;
    for (size_t n = 0; n < COUNT(sequence_model_cases); n++)
        train_case(&sequence_model_cases[n]);
}

static int print_worst(void **unused)
{
    (void)unused;
    printf("worst errors: output %.3g, loss %.3g, gradients %.3g (bound %.1g); training losses "
           "%.3g (bound %.1g), parameters %.3g (relative to |ref| + 0.1 max|ref|)\n",
           worst_output, worst_loss, worst_grad, TENSOR_TOLERANCE, worst_train_loss, LOSS_TOLERANCE,
           worst_train);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_backward),
        cmocka_unit_test(test_training),
    };
    return cmocka_run_group_tests(tests, NULL, print_worst);
}
