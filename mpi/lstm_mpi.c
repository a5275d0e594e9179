/* Data-parallel training over MPI: shard, average gradients, checkpoint. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lstm_mpi.h"

/* MPI counts are ints: buffers go in chunks of at most this many floats. */
#define CHUNK ((size_t)1 << 30)

enum { MESSAGE_SIZE = 256 };

struct lstm_mpi {
    MPI_Comm comm; /* a duplicate of the caller's, with MPI_ERRORS_RETURN */
    int rank, size;
    lstm_model *model;
    float *model_params, *model_grads;
    size_t model_count;
    float *head_params, *head_grads; /* NULL without a head */
    size_t head_count;
    MPI_Request *head_requests; /* one per chunk of the head's gradients */
    int head_chunks;
    int step_begun;
    float scale; /* w_r / sum(w) of the step begun */
};

static _Thread_local char last_message[MESSAGE_SIZE];

const char *lstm_mpi_error_message(void)
{
    return last_message;
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
static lstm_status
fail(lstm_status status, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(last_message, sizeof last_message, format, args);
    va_end(args);
    return status;
}

/* A liblstm call failed: keep its message. */
static lstm_status failed_call(lstm_status status, const char *call)
{
    return fail(status, "%s: %s: %s", call, lstm_strerror(status), lstm_error_message());
}

static lstm_status failed_mpi(int code, const char *call)
{
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    if (MPI_Error_string(code, text, &length) != MPI_SUCCESS)
        snprintf(text, sizeof text, "MPI error %d", code);
    return fail(LSTM_E_IO, "%s failed: %s", call, text);
}

static int chunk_count(size_t count)
{
    return (int)((count + CHUNK - 1) / CHUNK);
}

static int chunk_length(size_t count, int chunk)
{
    size_t rest = count - (size_t)chunk * CHUNK;
    return (int)(rest < CHUNK ? rest : CHUNK);
}

static lstm_status broadcast_floats(const lstm_mpi *dp, float *data, size_t count)
{
    for (int chunk = 0; chunk < chunk_count(count); chunk++) {
        int code = MPI_Bcast(data + (size_t)chunk * CHUNK, chunk_length(count, chunk), MPI_FLOAT, 0,
                             dp->comm);
        if (code != MPI_SUCCESS)
            return failed_mpi(code, "MPI_Bcast");
    }
    return LSTM_OK;
}

/*
 * Every rank must bind a model of the same shape and the same head size.
 * One reduction gives both the largest value of each (MPI_MAX of v) and the
 * smallest (MPI_MAX of ~v); they differ on some rank exactly when they
 * differ on every rank, so every rank returns the same status.
 */
static lstm_status agree_on_shape(const lstm_mpi *dp)
{
    enum { VALUES = 7 };
    lstm_config config;
    lstm_status status = lstm_config_init(&config, sizeof config);
    if (status == LSTM_OK)
        status = lstm_model_get_config(dp->model, &config);
    if (status != LSTM_OK)
        return failed_call(status, "lstm_model_get_config");
    uint64_t local[2 * VALUES] = {dp->model_count,
                                  dp->head_count,
                                  config.input_size,
                                  config.hidden_size,
                                  config.num_layers == 0 ? 1 : config.num_layers,
                                  config.flags & (LSTM_BIDIRECTIONAL | LSTM_PEEPHOLE),
                                  config.proj_size};
    uint64_t global[2 * VALUES];
    for (int i = 0; i < VALUES; i++)
        local[VALUES + i] = ~local[i];
    int code = MPI_Allreduce(local, global, 2 * VALUES, MPI_UINT64_T, MPI_MAX, dp->comm);
    if (code != MPI_SUCCESS)
        return failed_mpi(code, "MPI_Allreduce");
    for (int i = 0; i < VALUES; i++)
        if (global[i] != ~global[VALUES + i])
            return fail(LSTM_E_SHAPE,
                        "the ranks' models differ: parameter counts %llu to %llu, "
                        "head sizes %llu to %llu, or their configurations",
                        (unsigned long long)~global[VALUES], (unsigned long long)global[0],
                        (unsigned long long)~global[VALUES + 1], (unsigned long long)global[1]);
    return LSTM_OK;
}

/* Takes the model's and head's buffers (views that cannot fail on handles
 * that are not NULL) and allocates the head's requests. */
static lstm_status bind_buffers(lstm_mpi *dp, lstm_model *model, lstm_dense *head)
{
    dp->model = model;
    lstm_model_params(model, &dp->model_params, &dp->model_count);
    lstm_model_grads(model, &dp->model_grads, NULL);
    if (head == NULL)
        return LSTM_OK;
    lstm_dense_params(head, &dp->head_params, &dp->head_count);
    lstm_dense_grads(head, &dp->head_grads, NULL);
    dp->head_chunks = chunk_count(dp->head_count);
    dp->head_requests = malloc((size_t)dp->head_chunks * sizeof *dp->head_requests);
    if (dp->head_requests == NULL)
        return fail(LSTM_E_NOMEM, "allocating %d MPI requests", dp->head_chunks);
    return LSTM_OK;
}

lstm_status lstm_mpi_create(MPI_Comm comm, lstm_model *model, lstm_dense *head, lstm_mpi **out)
{
    if (model == NULL || out == NULL)
        return fail(LSTM_E_NULL, "%s is NULL", model == NULL ? "model" : "out");
    lstm_mpi *dp = calloc(1, sizeof *dp);
    if (dp == NULL)
        return fail(LSTM_E_NOMEM, "allocating the MPI context");
    dp->comm = MPI_COMM_NULL;
    lstm_status status = bind_buffers(dp, model, head);
    if (status != LSTM_OK)
        goto out;
    /* From here on every rank takes the same path. */
    int code = MPI_Comm_dup(comm, &dp->comm);
    if (code != MPI_SUCCESS) {
        dp->comm = MPI_COMM_NULL;
        status = failed_mpi(code, "MPI_Comm_dup");
        goto out;
    }
    if ((code = MPI_Comm_set_errhandler(dp->comm, MPI_ERRORS_RETURN)) != MPI_SUCCESS ||
        (code = MPI_Comm_rank(dp->comm, &dp->rank)) != MPI_SUCCESS ||
        (code = MPI_Comm_size(dp->comm, &dp->size)) != MPI_SUCCESS) {
        status = failed_mpi(code, "setting up the communicator");
        goto out;
    }
    if ((status = agree_on_shape(dp)) != LSTM_OK ||
        (status = broadcast_floats(dp, dp->model_params, dp->model_count)) != LSTM_OK ||
        (status = broadcast_floats(dp, dp->head_params, dp->head_count)) != LSTM_OK)
        goto out;
    *out = dp;
    dp = NULL;
out:
    lstm_mpi_destroy(dp);
    return status;
}

void lstm_mpi_destroy(lstm_mpi *dp)
{
    if (dp == NULL)
        return;
    /* A step begun and never ended leaves its requests to the MPI library:
     * only an error path, ending in MPI_Abort(), does that. */
    if (dp->comm != MPI_COMM_NULL)
        MPI_Comm_free(&dp->comm);
    free(dp->head_requests);
    free(dp);
}

lstm_status lstm_mpi_shard(const lstm_mpi *dp, size_t global_batch, size_t *first, size_t *count)
{
    if (dp == NULL || first == NULL || count == NULL)
        return fail(LSTM_E_NULL, "%s is NULL",
                    dp == NULL      ? "dp"
                    : first == NULL ? "first"
                                    : "count");
    if (global_batch == 0)
        return fail(LSTM_E_SIZE, "global_batch is 0; it must be at least 1");
    /* rank r of n gets q = B / n rows, plus one for the first B mod n ranks */
    const size_t rank = (size_t)dp->rank, size = (size_t)dp->size;
    const size_t rows = global_batch / size, extra = global_batch % size;
    *first = rank * rows + (rank < extra ? rank : extra);
    *count = rows + (rank < extra ? 1 : 0);
    return LSTM_OK;
}

/* g <- s g, the rank's share of the global mean. */
static void scale_floats(float *data, size_t count, float scale)
{
    for (size_t i = 0; i < count; i++)
        data[i] *= scale;
}

lstm_status lstm_mpi_begin_step(lstm_mpi *dp, size_t weight)
{
    if (dp == NULL)
        return fail(LSTM_E_NULL, "dp is NULL");
    if (dp->step_begun)
        return fail(LSTM_E_STATE, "lstm_mpi_begin_step called twice without lstm_mpi_end_step");
    uint64_t local = weight, total = 0;
    int code = MPI_Allreduce(&local, &total, 1, MPI_UINT64_T, MPI_SUM, dp->comm);
    if (code != MPI_SUCCESS)
        return failed_mpi(code, "MPI_Allreduce");
    if (total == 0)
        return fail(LSTM_E_ARG, "every rank's weight is 0: the global batch has no loss terms");
    /* s = w_r / sum(w): the sum over ranks of s g_r is the global batch's mean gradient */
    dp->scale = (float)((double)local / (double)total);
    scale_floats(dp->head_grads, dp->head_count, dp->scale);
    for (int chunk = 0; chunk < dp->head_chunks; chunk++) {
        code = MPI_Iallreduce(MPI_IN_PLACE, dp->head_grads + (size_t)chunk * CHUNK,
                              chunk_length(dp->head_count, chunk), MPI_FLOAT, MPI_SUM, dp->comm,
                              &dp->head_requests[chunk]);
        if (code != MPI_SUCCESS)
            return failed_mpi(code, "MPI_Iallreduce");
    }
    dp->step_begun = 1;
    return LSTM_OK;
}

lstm_status lstm_mpi_end_step(lstm_mpi *dp, lstm_optim *optim)
{
    if (dp == NULL)
        return fail(LSTM_E_NULL, "dp is NULL");
    if (!dp->step_begun)
        return fail(LSTM_E_STATE, "lstm_mpi_end_step without lstm_mpi_begin_step");
    dp->step_begun = 0;
    scale_floats(dp->model_grads, dp->model_count, dp->scale);
    int code;
    for (int chunk = 0; chunk < chunk_count(dp->model_count); chunk++) {
        code = MPI_Allreduce(MPI_IN_PLACE, dp->model_grads + (size_t)chunk * CHUNK,
                             chunk_length(dp->model_count, chunk), MPI_FLOAT, MPI_SUM, dp->comm);
        if (code != MPI_SUCCESS)
            return failed_mpi(code, "MPI_Allreduce");
    }
    if ((code = MPI_Waitall(dp->head_chunks, dp->head_requests, MPI_STATUSES_IGNORE)) !=
        MPI_SUCCESS)
        return failed_mpi(code, "MPI_Waitall");
    if (optim == NULL)
        return LSTM_OK;
    lstm_status status = lstm_optim_step(optim);
    return status == LSTM_OK ? LSTM_OK : failed_call(status, "lstm_optim_step");
}

lstm_status lstm_mpi_save(lstm_mpi *dp, const lstm_optim *optim, const char *path)
{
    if (dp == NULL)
        return fail(LSTM_E_NULL, "dp is NULL");
    lstm_status status = LSTM_OK;
    if (dp->rank == 0 && (status = lstm_model_save(dp->model, optim, path)) != LSTM_OK)
        failed_call(status, "lstm_model_save on rank 0");
    /* rank 0's status and message to all */
    int code = MPI_Bcast(&status, sizeof status, MPI_BYTE, 0, dp->comm);
    if (code == MPI_SUCCESS && status != LSTM_OK)
        code = MPI_Bcast(last_message, MESSAGE_SIZE, MPI_CHAR, 0, dp->comm);
    if (code != MPI_SUCCESS)
        return failed_mpi(code, "MPI_Bcast");
    return status;
}
