/*
 * A program that links the static liblstm.a and defines, for its own use,
 * functions named as the library's internal ones once were (fail, crc32c,
 * mem_alloc, ...). It links only if every internal name of the archive
 * carries the reserved prefix lstm__, and it checks that its own functions,
 * not the library's, answer to these names while it trains one step.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <lstm/lstm.h>

int fail(int code);
unsigned crc32c(unsigned crc, const void *data, size_t size);
void *mem_alloc(size_t bytes);
void *pool_create(size_t threads);
size_t align_up(size_t bytes);
int check_finite(const float *values, size_t count);
int run_rows(int rows);
int model_plan(int layers);

int fail(int code)
{
    return code + 1000;
}
unsigned crc32c(unsigned crc, const void *data, size_t size)
{
    (void)data;
    return crc + (unsigned)size;
}
void *mem_alloc(size_t bytes)
{
    return malloc(bytes);
}
void *pool_create(size_t threads)
{
    return threads == 0 ? NULL : &threads;
}
size_t align_up(size_t bytes)
{
    return (bytes + 7) & ~(size_t)7;
}
int check_finite(const float *values, size_t count)
{
    return values != NULL && count > 0;
}
int run_rows(int rows)
{
    return 2 * rows;
}
int model_plan(int layers)
{
    return layers + 1;
}

enum { T = 3, B = 2, I = 3, H = 4 };

/* One training step: forward, backward with dL/dy = y, an SGD step. */
static lstm_status train_step(lstm_model *model, lstm_workspace *workspace, lstm_optim *optim)
{
    float x[T * B * I], y[T * B * H];
    for (size_t k = 0; k < T * B * I; k++)
        x[k] = (float)k / 10.0f - 0.8f;
    lstm_status status =
        lstm_model_forward_train(model, workspace, T, B, NULL, x, NULL, NULL, y, NULL, NULL);
    if (status == LSTM_OK)
        status = lstm_model_backward(model, workspace, y, NULL, NULL, NULL, NULL, NULL);
    if (status == LSTM_OK)
        status = lstm_optim_step(optim);
    return status;
}

int main(void)
{
    lstm_config config;
    lstm_optim_options options;
    lstm_model *model = NULL;
    lstm_workspace *workspace = NULL;
    lstm_optim *optim = NULL;
    lstm_config_init(&config, sizeof config);
    config.input_size = I;
    config.hidden_size = H;
    lstm_optim_options_init(&options, sizeof options, LSTM_OPTIM_SGD);
    lstm_status status = lstm_model_create(&config, &model);
    if (status == LSTM_OK)
        status = lstm_model_init(model, 7, LSTM_INIT_FORGET_BIAS_ONE);
    if (status == LSTM_OK)
        status = lstm_workspace_create(model, &workspace);
    if (status == LSTM_OK)
        status = lstm_optim_create(&options, &optim);
    if (status == LSTM_OK)
        status = lstm_optim_add_model(optim, model);
    if (status == LSTM_OK)
        status = train_step(model, workspace, optim);
    /* a failing call goes through the library's own error path, not fail() above */
    lstm_status refused = lstm_model_create(NULL, &model);
    uint64_t steps = 0;
    lstm_optim_step_count(optim, &steps);
    const int own = fail(1) == 1001 && crc32c(1, "", 2) == 3 && align_up(9) == 16 &&
                    run_rows(4) == 8 && model_plan(2) == 3 && check_finite(NULL, 0) == 0 &&
                    pool_create(0) == NULL;
    void *block = mem_alloc(16);
    free(block);
    lstm_optim_destroy(optim);
    lstm_workspace_destroy(workspace);
    lstm_model_destroy(model);
    if (status != LSTM_OK || refused != LSTM_E_NULL || steps != 1 || !own || block == NULL) {
        fprintf(stderr, "clash: status %d, refused %d, steps %llu, own functions %d\n", (int)status,
                (int)refused, (unsigned long long)steps, own);
        return 1;
    }
    printf("clash: a training step through liblstm.a beside fail, crc32c, mem_alloc, ... of "
           "its own\n");
    return 0;
}
