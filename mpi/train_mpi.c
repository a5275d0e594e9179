/*
 * train_mpi.c: data-parallel training of an LSTM over MPI with lstm_mpi.
 *
 *     mpirun -np 2 train_mpi [--batch B] [--seq-len T] [--input I]
 *                            [--hidden H] [--steps N] [--seed S]
 *                            [--save PATH] [--bench] [--smoke]
 *
 * Task: sequences of T steps of I values drawn from U(-1, 1); the target is
 * the scaled running sum of the first input, (x_1[0] + ... + x_T[0]) / sqrt(T),
 * read from the last step. Its variance is 1/3, so always answering 0
 * scores a mean squared error of 0.333: the baseline.
 *
 * Model: one LSTM layer, a dense layer H -> 1 on the last step, the mean
 * squared error, Adam. Every rank trains on its share of each global batch
 * of B sequences (lstm_mpi_shard) and the ranks average their gradients
 * (lstm_mpi_begin_step, lstm_mpi_end_step). Sequence b of step s is drawn
 * from a seed of its own, so the global batches, and so the training, do
 * not depend on the number of ranks: 1, 2 or 4 ranks print the same losses
 * to rounding.
 *
 * --bench  times N steps after 2 warm-up steps and prints sequences per
 *          second and the time spent in lstm_mpi calls (reducing, and waiting
 *          for the slowest rank); no held-out evaluation.
 * --smoke  a short run (80 steps of 32 sequences) that must end below a
 *          tenth of the baseline; for ctest.
 * --save   rank 0 writes the trained LSTM with lstm_model_save() at the end.
 * Exit status: 0 on success (with --smoke, when the target is reached).
 *
 * Any failure ends every rank with MPI_Abort(): a rank that stopped alone
 * would leave the others waiting in a collective.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lstm_mpi.h"

enum { TEST_SEQUENCES = 512, WARMUP_STEPS = 2 };
static const double LEARNING_RATE = 3e-3, BASELINE = 1.0 / 3.0;

typedef struct settings {
    size_t batch, seq_len, input, hidden, steps;
    uint64_t seed;
    const char *save_path;
    int bench, smoke;
} settings;

/* Everything a rank owns. x is [T][rows][I], time-major: the library's default. */
typedef struct trainer {
    lstm_model *model;
    lstm_workspace *workspace;
    lstm_dense *head;
    lstm_optim *optim;
    lstm_mpi *dp;
    size_t first, rows; /* this rank's sequences of each global batch */
    double mpi_seconds; /* in lstm_mpi_begin_step and _end_step: reducing and waiting */
    float *x, *target, *y, *dy, *last, *dlast, *z, *dz;
    /* The LSTM calls' arguments, set once: training and the test share x and y. */
    lstm_sequences train_sequences, test_sequences;
    lstm_inputs inputs;
    lstm_outputs outputs;
    lstm_output_grads output_grads;
} trainer;

static int rank;

/* Report a failed call and end every rank. */
static void check(lstm_status status, const char *call)
{
    if (status == LSTM_OK)
        return;
    fprintf(stderr, "rank %d: %s failed: %s: %s%s\n", rank, call, lstm_strerror(status),
            lstm_error_message(), lstm_mpi_error_message());
    MPI_Abort(MPI_COMM_WORLD, 1);
}

static void *allocate(size_t count, size_t size)
{
    void *p = calloc(count, size);
    if (p == NULL) {
        fprintf(stderr, "rank %d: out of memory\n", rank);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return p;
}

/* SplitMix64 to [-1, 1). */
static float next_uniform(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    z ^= z >> 31;
    return (float)(z >> 40) * (2.0f / 16777216.0f) - 1.0f;
}

/*
 * Sequences [first, first + rows) of global batch `step` into x [T][rows][I]
 * and target [rows]: target = sum_t x_t[0] / sqrt(T).
 */
static void make_rows(const settings *s, uint64_t step, size_t first, size_t rows, float *x,
                      float *target)
{
    const size_t T = s->seq_len, I = s->input;
    for (size_t b = 0; b < rows; b++) {
        uint64_t state = s->seed ^ (step << 32) ^ (first + b) * UINT64_C(0x100000001B3);
        double sum = 0.0;
        for (size_t t = 0; t < T; t++) {
            float *x_t = x + (t * rows + b) * I;
            for (size_t i = 0; i < I; i++)
                x_t[i] = next_uniform(&state);
            sum += (double)x_t[0];
        }
        target[b] = (float)(sum / sqrt((double)T));
    }
}

static void trainer_create(trainer *tr, const settings *s)
{
    const size_t T = s->seq_len, H = s->hidden;
    lstm_config config;
    lstm_optim_options options;
    float *params, *grads;
    size_t count;
    memset(tr, 0, sizeof *tr);
    check(lstm_config_init(&config, sizeof config), "lstm_config_init");
    config.input_size = s->input;
    config.hidden_size = H;
    check(lstm_model_create(&config, &tr->model), "lstm_model_create");
    /* every rank draws its own start; lstm_mpi_create() gives all rank 0's */
    check(lstm_model_init(tr->model, s->seed + (uint64_t)rank, LSTM_INIT_FORGET_BIAS_ONE),
          "lstm_model_init");
    check(lstm_dense_create(H, 1, &tr->head), "lstm_dense_create");
    check(lstm_dense_init(tr->head, s->seed ^ 0xDE45Eu), "lstm_dense_init");
    check(lstm_mpi_create(MPI_COMM_WORLD, tr->model, tr->head, &tr->dp), "lstm_mpi_create");
    check(lstm_mpi_shard(tr->dp, s->batch, &tr->first, &tr->rows), "lstm_mpi_shard");

    check(lstm_optim_options_init(&options, sizeof options, LSTM_OPTIM_ADAM),
          "lstm_optim_options_init");
    options.lr = LEARNING_RATE;
    check(lstm_optim_create(&options, &tr->optim), "lstm_optim_create");
    check(lstm_optim_add_model(tr->optim, tr->model), "lstm_optim_add_model");
    check(lstm_dense_params(tr->head, &params, &count), "lstm_dense_params");
    check(lstm_dense_grads(tr->head, &grads, NULL), "lstm_dense_grads");
    check(lstm_optim_add_buffer(tr->optim, params, grads, count), "lstm_optim_add_buffer");

    /* sized once for the larger of a training shard and the test set */
    const size_t rows = tr->rows > TEST_SEQUENCES ? tr->rows : TEST_SEQUENCES;
    check(lstm_workspace_create(tr->model, &tr->workspace), "lstm_workspace_create");
    if (tr->rows > 0)
        check(lstm_workspace_reserve(tr->workspace, LSTM_MODE_TRAIN, T, tr->rows),
              "lstm_workspace_reserve");
    tr->x = allocate(T * rows * s->input, sizeof *tr->x);
    tr->target = allocate(rows, sizeof *tr->target);
    tr->y = allocate(T * rows * H, sizeof *tr->y);
    tr->dy = allocate(T * rows * H, sizeof *tr->dy);
    tr->last = allocate(rows * H, sizeof *tr->last);
    tr->dlast = allocate(rows * H, sizeof *tr->dlast);
    tr->z = allocate(rows, sizeof *tr->z);
    tr->dz = allocate(rows, sizeof *tr->dz);
    tr->train_sequences =
        (lstm_sequences){.struct_size = sizeof(lstm_sequences), .steps = T, .batch = tr->rows};
    tr->test_sequences = (lstm_sequences){
        .struct_size = sizeof(lstm_sequences), .steps = T, .batch = TEST_SEQUENCES};
    tr->inputs = (lstm_inputs){.struct_size = sizeof(lstm_inputs), .x = tr->x};
    tr->outputs = (lstm_outputs){.struct_size = sizeof(lstm_outputs), .y = tr->y};
    tr->output_grads = (lstm_output_grads){.struct_size = sizeof(lstm_output_grads), .dy = tr->dy};
}

static void trainer_destroy(trainer *tr)
{
    lstm_mpi_destroy(tr->dp);
    lstm_optim_destroy(tr->optim);
    lstm_dense_destroy(tr->head);
    lstm_workspace_destroy(tr->workspace);
    lstm_model_destroy(tr->model);
    free(tr->x), free(tr->target), free(tr->y), free(tr->dy);
    free(tr->last), free(tr->dlast), free(tr->z), free(tr->dz);
}

/* One data-parallel step on global batch `step`; returns the global mean loss. */
static double train_step(trainer *tr, const settings *s, uint64_t step)
{
    const size_t T = s->seq_len, H = s->hidden, B = tr->rows;
    double loss = 0.0;
    check(lstm_optim_zero_grads(tr->optim), "lstm_optim_zero_grads");
    if (B > 0) {
        make_rows(s, step, tr->first, B, tr->x, tr->target);
        check(lstm_model_train_forward(tr->model, tr->workspace, &tr->train_sequences, &tr->inputs,
                                       &tr->outputs),
              "lstm_model_train_forward");
        check(lstm_sequence_last(T, B, H, 0, NULL, tr->y, tr->last), "lstm_sequence_last");
        check(lstm_dense_forward(tr->head, B, tr->last, tr->z), "lstm_dense_forward");
        check(lstm_loss_mse(B, tr->z, tr->target, &loss, tr->dz), "lstm_loss_mse");
        check(lstm_dense_backward(tr->head, B, tr->last, tr->dz, tr->dlast), "lstm_dense_backward");
        check(lstm_sequence_last_backward(T, B, H, 0, NULL, tr->dlast, tr->dy),
              "lstm_sequence_last_backward");
    }
    /* the head's gradients travel while the LSTM's backward runs */
    double start = MPI_Wtime();
    check(lstm_mpi_begin_step(tr->dp, B), "lstm_mpi_begin_step");
    tr->mpi_seconds += MPI_Wtime() - start;
    if (B > 0)
        check(lstm_model_train_backward(tr->model, tr->workspace, &tr->output_grads, NULL),
              "lstm_model_train_backward");
    start = MPI_Wtime();
    check(lstm_mpi_end_step(tr->dp, tr->optim), "lstm_mpi_end_step");
    tr->mpi_seconds += MPI_Wtime() - start;

    /* the global mean: sum over ranks of rows_r loss_r, over B */
    double weighted = loss * (double)B, total = 0.0;
    MPI_Allreduce(&weighted, &total, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    return total / (double)s->batch;
}

/* Mean squared error on a fixed held-out set (global batch UINT32_MAX), on rank 0. */
static double test_loss(trainer *tr, const settings *s)
{
    const size_t T = s->seq_len, H = s->hidden;
    double mse;
    make_rows(s, UINT32_MAX, 0, TEST_SEQUENCES, tr->x, tr->target);
    check(
        lstm_model_infer(tr->model, tr->workspace, &tr->test_sequences, &tr->inputs, &tr->outputs),
        "lstm_model_infer");
    check(lstm_sequence_last(T, TEST_SEQUENCES, H, 0, NULL, tr->y, tr->last), "lstm_sequence_last");
    check(lstm_dense_forward(tr->head, TEST_SEQUENCES, tr->last, tr->z), "lstm_dense_forward");
    check(lstm_loss_mse(TEST_SEQUENCES, tr->z, tr->target, &mse, NULL), "lstm_loss_mse");
    return mse;
}

static int parse(int argc, char **argv, settings *s)
{
    *s = (settings){.batch = 64, .seq_len = 20, .input = 4, .hidden = 32, .steps = 300, .seed = 7};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        size_t *field = strcmp(arg, "--batch") == 0     ? &s->batch
                        : strcmp(arg, "--seq-len") == 0 ? &s->seq_len
                        : strcmp(arg, "--input") == 0   ? &s->input
                        : strcmp(arg, "--hidden") == 0  ? &s->hidden
                        : strcmp(arg, "--steps") == 0   ? &s->steps
                                                        : NULL;
        if (field != NULL && value != NULL) {
            *field = (size_t)strtoull(value, NULL, 10);
            i++;
        } else if (strcmp(arg, "--seed") == 0 && value != NULL) {
            s->seed = strtoull(value, NULL, 10);
            i++;
        } else if (strcmp(arg, "--save") == 0 && value != NULL) {
            s->save_path = value;
            i++;
        } else if (strcmp(arg, "--bench") == 0) {
            s->bench = 1;
        } else if (strcmp(arg, "--smoke") == 0) {
            s->smoke = 1;
        } else {
            return 0;
        }
    }
    if (s->smoke) {
        s->steps = 80;
        s->batch = 32;
    }
    return s->batch > 0 && s->seq_len > 0 && s->input > 0 && s->hidden > 0 && s->steps > 0;
}

int main(int argc, char **argv)
{
    int provided, ranks, status = 0;
    /* liblstm and the BLAS may run threads; only this one calls MPI */
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    settings s;
    if (!parse(argc, argv, &s)) {
        if (rank == 0)
            fprintf(stderr, "usage: train_mpi [--batch B] [--seq-len T] [--input I] "
                            "[--hidden H] [--steps N] [--seed S] [--save PATH] [--bench] "
                            "[--smoke]\n");
        MPI_Finalize();
        return 2;
    }
    trainer tr;
    trainer_create(&tr, &s);
    if (rank == 0)
        printf("liblstm %s: %d ranks, global batch %zu, T %zu, I %zu, H %zu, %zu steps\n",
               lstm_version_string(), ranks, s.batch, s.seq_len, s.input, s.hidden, s.steps);

    if (s.bench) {
        for (uint64_t step = 0; step < WARMUP_STEPS; step++)
            train_step(&tr, &s, step);
        MPI_Barrier(MPI_COMM_WORLD);
        tr.mpi_seconds = 0.0;
        double start = MPI_Wtime();
        for (uint64_t step = 0; step < s.steps; step++)
            train_step(&tr, &s, WARMUP_STEPS + step);
        MPI_Barrier(MPI_COMM_WORLD);
        double seconds = MPI_Wtime() - start;
        if (rank == 0)
            printf("%d ranks: %.1f ms per step (rank 0: %.1f ms of it in lstm_mpi), "
                   "%.1f sequences/s\n",
                   ranks, 1e3 * seconds / (double)s.steps, 1e3 * tr.mpi_seconds / (double)s.steps,
                   (double)(s.steps * s.batch) / seconds);
    } else {
        double loss = 0.0;
        for (uint64_t step = 0; step < s.steps; step++) {
            loss = train_step(&tr, &s, step);
            if (rank == 0 && (step + 1) % 100 == 0)
                printf("step %4llu  training loss %.6f\n", (unsigned long long)step + 1, loss);
        }
        if (rank == 0) {
            double mse = test_loss(&tr, &s);
            printf("held-out MSE %.6f (baseline %.4f)\n", mse, BASELINE);
            status = s.smoke && !(mse < 0.1 * BASELINE);
        }
        MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
    }
    if (s.save_path != NULL) {
        check(lstm_mpi_save(tr.dp, tr.optim, s.save_path), "lstm_mpi_save");
        if (rank == 0)
            printf("saved %s\n", s.save_path);
    }
    trainer_destroy(&tr);
    MPI_Finalize();
    return status;
}
