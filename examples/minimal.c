/* minimal.c: create an LSTM, initialise it, run a batch, print the result.
 * Build: cc minimal.c $(pkg-config --cflags --libs lstm) */
#include <stdio.h>

#include <lstm/lstm.h>

enum { T = 5, B = 2, I = 3, H = 4 }; /* steps, batch, input size, hidden size */

/* On failure, say which call failed and why, then go to the cleanup. */
#define CHECK(call) \
  do { \
    lstm_status status_ = (call); \
    if (status_ != LSTM_OK) { \
      fprintf(stderr, "%s: %s: %s\n", #call, lstm_strerror(status_), lstm_error_message()); \
      goto out; \
    } \
  } while (0)

int main(void)
{
    lstm_config config;
    lstm_model *model = NULL;
    lstm_workspace *workspace = NULL;
    float x[T * B * I], h_last[B * H]; /* input [T][B][I], final hidden state [B][H] */
    /* Fields left out are zero, their defaults: the model's layout (here
     * time-major), zero initial states, no y and no cT. */
    const lstm_sequences sequences = {
        .struct_size = sizeof(lstm_sequences), .steps = T, .batch = B};
    const lstm_inputs inputs = {.struct_size = sizeof(lstm_inputs), .x = x};
    const lstm_outputs outputs = {.struct_size = sizeof(lstm_outputs), .hT = h_last};
    int exit_code = 1;

    for (int k = 0; k < T * B * I; k++)
        x[k] = (float)(k % 7) / 7.0f - 0.5f;

    CHECK(lstm_config_init(&config, sizeof config));
    config.input_size = I;
    config.hidden_size = H;
    CHECK(lstm_model_create(&config, &model));
    CHECK(lstm_model_init(model, 42, LSTM_INIT_FORGET_BIAS_ONE));
    CHECK(lstm_workspace_create(model, &workspace));
    CHECK(lstm_model_infer(model, workspace, &sequences, &inputs, &outputs));

    for (int k = 0; k < B * H; k++)
        printf("%+.4f%s", (double)h_last[k], k % H == H - 1 ? "\n" : " ");
    exit_code = 0;
out:
    lstm_workspace_destroy(workspace);
    lstm_model_destroy(model);
    return exit_code;
}
