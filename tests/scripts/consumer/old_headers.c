/*
 * A program built against the headers of liblstm 0.1.0 (kept verbatim in
 * tests/scripts/consumer/lstm-0.1.0), run against this tree's library: the
 * positional calls of LSTM_1.0 must keep working as they did, whatever the
 * library has added since.
 *
 * It checks, on a one-layer model (I = 3, H = 4, T = 5, B = 2, the second
 * sequence 3 steps long), against a double-precision LSTM written here from
 * the 0.1.0 header's equations and parameter layout:
 *  - lstm_model_forward(): y, hT and cT;
 *  - lstm_model_forward_train() and lstm_model_backward() with dy = 1
 *    everywhere: the parameters' gradients against central differences of
 *    sum(y) in double precision, and dh0 likewise;
 *  - lstm_model_stream() and lstm_model_step() (B = 2, every step) and
 *    lstm_model_forward_train_chunk(): the bits of the whole call;
 *  - an SGD step (lr = 0.5): parameters - 0.5 gradients, exactly;
 *  - lstm_model_save_buffer(), lstm_model_load_buffer(),
 *    lstm_optim_load_buffer(): the same parameters and optimizer state;
 *  - the 0.1.0 status codes for a NULL x, a zero batch, a NaN input.
 * Exit status 0 when everything holds; otherwise it names what failed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lstm/lstm.h>

#if LSTM_VERSION_NUMBER != 100
#  error "this program must be built against the 0.1.0 headers of tests/scripts/consumer"
#endif

enum { I = 3, H = 4, T = 5, B = 2, K = H + I, G = 4 * H, PARAMS = G * K + G };

static const size_t lengths[B] = {5, 3};
static int failures;

#define CHECK(cond, ...) \
  do { \
    if (!(cond)) { \
      fprintf(stderr, "old_headers: " __VA_ARGS__); \
      fprintf(stderr, " (line %d; %s)\n", __LINE__, lstm_error_message()); \
      failures++; \
    } \
  } while (0)

static double sigmoid(double v)
{
    return 1.0 / (1.0 + exp(-v));
}

/* sum of y over every running step of every sequence, y itself, and the
 * final states, for parameters p (0.1.0's layout: W = [W_h | W_x], 4H rows
 * in gate order i, f, g, o, then b) from h0 (or zeros). */
static double reference(const double *p, const float *x, const double *h0, double *y, double *hT,
                        double *cT)
{
    const double *W = p, *bias = p + G * K;
    double sum = 0.0;
    for (size_t b = 0; b < B; b++) {
        double h[H], c[H] = {0};
        for (size_t j = 0; j < H; j++)
            h[j] = h0 != NULL ? h0[b * H + j] : 0.0;
        for (size_t t = 0; t < T; t++) {
            if (t >= lengths[b]) {
                for (size_t j = 0; j < H && y != NULL; j++)
                    y[(t * B + b) * H + j] = 0.0;
                continue;
            }
            double s[K], a[G];
            memcpy(s, h, sizeof h);
            for (size_t k = 0; k < I; k++)
                s[H + k] = x[(t * B + b) * I + k];
            for (size_t r = 0; r < G; r++) {
                a[r] = bias[r];
                for (size_t k = 0; k < K; k++)
                    a[r] += W[r * K + k] * s[k];
            }
            for (size_t j = 0; j < H; j++) {
                const double in = sigmoid(a[j]), forget = sigmoid(a[H + j]);
                const double g = tanh(a[2 * H + j]), out = sigmoid(a[3 * H + j]);
                c[j] = forget * c[j] + in * g;
                h[j] = out * tanh(c[j]);
                sum += h[j];
                if (y != NULL)
                    y[(t * B + b) * H + j] = h[j];
            }
        }
        for (size_t j = 0; j < H; j++) {
            if (hT != NULL)
                hT[b * H + j] = h[j];
            if (cT != NULL)
                cT[b * H + j] = c[j];
        }
    }
    return sum;
}

static void expect_close(const char *what, const float *got, const double *want, size_t n,
                         double tolerance)
{
    for (size_t k = 0; k < n; k++)
        CHECK(fabs(got[k] - want[k]) <= tolerance * (1.0 + fabs(want[k])),
              "%s[%zu] is %.7g, the reference %.7g", what, k, (double)got[k], want[k]);
}

static void expect_same(const char *what, const float *got, const float *want, size_t n)
{
    CHECK(memcmp(got, want, n * sizeof(float)) == 0, "%s differs from the whole call", what);
}

int main(void)
{
    CHECK(lstm_version_number() >= LSTM_VERSION_NUMBER, "library %s older than its headers",
          lstm_version_string());
    lstm_config config;
    lstm_model *model = NULL;
    lstm_workspace *workspace = NULL;
    CHECK(lstm_config_init(&config, sizeof config) == LSTM_OK, "lstm_config_init");
    config.input_size = I;
    config.hidden_size = H;
    if (lstm_model_create(&config, &model) != LSTM_OK ||
        lstm_model_init(model, 7, LSTM_INIT_FORGET_BIAS_ONE) != LSTM_OK ||
        lstm_workspace_create(model, &workspace) != LSTM_OK) {
        fprintf(stderr, "old_headers: setting up: %s\n", lstm_error_message());
        return 1;
    }
    CHECK(lstm_model_param_count(model) == PARAMS, "param count %zu",
          lstm_model_param_count(model));

    float x[T * B * I], params[PARAMS];
    for (size_t k = 0; k < T * B * I; k++)
        x[k] = (float)sin(0.7 * (double)k + 0.3);
    CHECK(lstm_model_get_params(model, params, PARAMS) == LSTM_OK, "get params");
    double p[PARAMS];
    for (size_t k = 0; k < PARAMS; k++)
        p[k] = params[k];

    /* inference */
    float y[T * B * H], hT[B * H], cT[B * H];
    double y_ref[T * B * H], hT_ref[B * H], cT_ref[B * H];
    reference(p, x, NULL, y_ref, hT_ref, cT_ref);
    CHECK(lstm_model_forward(model, workspace, T, B, lengths, x, NULL, NULL, y, hT, cT) == LSTM_OK,
          "lstm_model_forward");
    expect_close("y", y, y_ref, T * B * H, 1e-5);
    expect_close("hT", hT, hT_ref, B * H, 1e-5);
    expect_close("cT", cT, cT_ref, B * H, 1e-5);

    /* training: dy = 1 everywhere, so the gradients are those of sum(y) */
    float ones[T * B * H], y_train[T * B * H], grads[PARAMS], dh0[B * H];
    for (size_t k = 0; k < T * B * H; k++)
        ones[k] = 1.0f;
    CHECK(lstm_model_zero_grads(model) == LSTM_OK, "zero grads");
    CHECK(lstm_model_forward_train(model, workspace, T, B, lengths, x, NULL, NULL, y_train, NULL,
                                   NULL) == LSTM_OK,
          "lstm_model_forward_train");
    expect_same("the training forward's y", y_train, y, T * B * H);
    CHECK(lstm_model_backward(model, workspace, ones, NULL, NULL, NULL, dh0, NULL) == LSTM_OK,
          "lstm_model_backward");
    CHECK(lstm_model_get_grads(model, grads, PARAMS) == LSTM_OK, "get grads");
    double numeric[PARAMS], dh0_numeric[B * H], h0[B * H] = {0};
    for (size_t k = 0; k < PARAMS; k++) {
        const double step = 1e-6, saved = p[k];
        p[k] = saved + step;
        const double up = reference(p, x, NULL, NULL, NULL, NULL);
        p[k] = saved - step;
        numeric[k] = (up - reference(p, x, NULL, NULL, NULL, NULL)) / (2 * step);
        p[k] = saved;
    }
    for (size_t k = 0; k < B * H; k++) {
        h0[k] = 1e-6;
        const double up = reference(p, x, h0, NULL, NULL, NULL);
        h0[k] = -1e-6;
        dh0_numeric[k] = (up - reference(p, x, h0, NULL, NULL, NULL)) / 2e-6;
        h0[k] = 0.0;
    }
    expect_close("the gradient", grads, numeric, PARAMS, 1e-3);
    expect_close("dh0", dh0, dh0_numeric, B * H, 1e-3);

    /* streams, every sequence running every step: the whole call's bits */
    float y_all[T * B * H], y_chunks[T * B * H], h_all[B * H], h_state[B * H], c_state[B * H];
    CHECK(lstm_model_forward(model, workspace, T, B, NULL, x, NULL, NULL, y_all, h_all, NULL) ==
              LSTM_OK,
          "lstm_model_forward, whole");
    lstm_state *state = NULL;
    CHECK(lstm_state_create(model, B, &state) == LSTM_OK, "lstm_state_create");
    CHECK(lstm_model_stream(model, state, 3, x, y_chunks) == LSTM_OK, "lstm_model_stream");
    for (size_t t = 3; t < T; t++)
        CHECK(lstm_model_step(model, state, x + t * B * I, y_chunks + t * B * H) == LSTM_OK,
              "lstm_model_step");
    CHECK(lstm_state_get(state, h_state, c_state) == LSTM_OK, "lstm_state_get");
    expect_same("the streamed y", y_chunks, y_all, T * B * H);
    expect_same("the streamed state", h_state, h_all, B * H);
    CHECK(lstm_state_reset(state) == LSTM_OK, "lstm_state_reset");
    CHECK(lstm_model_forward_train_chunk(model, workspace, state, T, x, y_chunks) == LSTM_OK,
          "lstm_model_forward_train_chunk");
    expect_same("the training chunk's y", y_chunks, y_all, T * B * H);
    lstm_state_destroy(state);

    /* an SGD step with the gradients of the training forward above */
    lstm_optim_options options;
    lstm_optim *optim = NULL;
    CHECK(lstm_optim_options_init(&options, sizeof options, LSTM_OPTIM_SGD) == LSTM_OK,
          "lstm_optim_options_init");
    options.lr = 0.5;
    options.momentum = 0.9;
    CHECK(lstm_optim_create(&options, &optim) == LSTM_OK, "lstm_optim_create");
    CHECK(lstm_optim_add_model(optim, model) == LSTM_OK, "lstm_optim_add_model");
    CHECK(lstm_model_zero_grads(model) == LSTM_OK, "zero grads");
    CHECK(lstm_model_forward_train(model, workspace, T, B, lengths, x, NULL, NULL, NULL, NULL,
                                   NULL) == LSTM_OK &&
              lstm_model_backward(model, workspace, ones, NULL, NULL, NULL, NULL, NULL) == LSTM_OK,
          "training again");
    CHECK(lstm_optim_step(optim) == LSTM_OK, "lstm_optim_step");
    float stepped[PARAMS];
    CHECK(lstm_model_get_params(model, stepped, PARAMS) == LSTM_OK, "get params");
    for (size_t k = 0; k < PARAMS; k++)
        CHECK(stepped[k] == params[k] - 0.5f * grads[k], "parameter %zu after the step", k);

    /* a model file with its optimizer, through memory */
    size_t size = 0;
    CHECK(lstm_model_save_buffer(model, optim, NULL, 0, &size) == LSTM_OK && size > 0,
          "lstm_model_save_buffer, sizing");
    unsigned char *file = malloc(size);
    lstm_model *loaded = NULL;
    lstm_optim *resumed = NULL;
    CHECK(file != NULL && lstm_model_save_buffer(model, optim, file, size, &size) == LSTM_OK,
          "lstm_model_save_buffer");
    CHECK(lstm_model_load_buffer(file, size, &loaded) == LSTM_OK, "lstm_model_load_buffer");
    CHECK(lstm_optim_create(&options, &resumed) == LSTM_OK &&
              lstm_optim_add_model(resumed, loaded) == LSTM_OK &&
              lstm_optim_load_buffer(resumed, file, size) == LSTM_OK,
          "lstm_optim_load_buffer");
    float reloaded[PARAMS];
    CHECK(lstm_model_get_params(loaded, reloaded, PARAMS) == LSTM_OK, "get params");
    expect_same("the loaded parameters", reloaded, stepped, PARAMS);
    size_t state_bytes = 0, resumed_bytes = 0;
    CHECK(lstm_optim_state_size(optim, &state_bytes) == LSTM_OK &&
              lstm_optim_state_size(resumed, &resumed_bytes) == LSTM_OK &&
              state_bytes == resumed_bytes,
          "optimizer state sizes");
    unsigned char *saved = malloc(state_bytes), *restored = malloc(state_bytes);
    CHECK(saved != NULL && restored != NULL &&
              lstm_optim_save_state(optim, saved, state_bytes) == LSTM_OK &&
              lstm_optim_save_state(resumed, restored, state_bytes) == LSTM_OK &&
              memcmp(saved, restored, state_bytes) == 0,
          "the loaded optimizer state");
    free(saved), free(restored), free(file);
    lstm_optim_destroy(resumed);
    lstm_model_destroy(loaded);
    lstm_optim_destroy(optim);

    /* the status codes 0.1.0 documents */
    CHECK(lstm_model_forward(model, workspace, T, B, NULL, NULL, NULL, NULL, y, NULL, NULL) ==
              LSTM_E_NULL,
          "a NULL x");
    CHECK(lstm_model_forward(model, workspace, T, 0, NULL, x, NULL, NULL, y, NULL, NULL) ==
              LSTM_E_SIZE,
          "a zero batch");
    x[4] = NAN;
    CHECK(lstm_model_forward(model, workspace, T, B, NULL, x, NULL, NULL, y, NULL, NULL) ==
              LSTM_E_NONFINITE,
          "a NaN in x");
    CHECK(lstm_model_backward(model, workspace, NULL, NULL, NULL, NULL, NULL, NULL) == LSTM_E_STATE,
          "a backward without a training forward");

    lstm_workspace_destroy(workspace);
    lstm_model_destroy(model);
    if (failures == 0)
        printf("old_headers: liblstm %s runs a program built with the 0.1.0 headers\n",
               lstm_version_string());
    return failures == 0 ? 0 : 1;
}
