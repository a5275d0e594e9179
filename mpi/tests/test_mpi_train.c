/*
 * Multi-rank tests of lstm_mpi, run under mpirun (2 and 4 ranks in ctest).
 *
 * Equivalence: n ranks training one model data-parallel end each step with
 * parameters that are (1) bit for bit the same on every rank and (2) equal,
 * to float rounding, to those of one process (no MPI) training the same
 * model on the whole global batch; the averaged gradients are compared to
 * that process's after every step. Three global batches: one that splits
 * evenly, one that does not (weighting by rows), and one smaller than the
 * number of ranks (a rank with no rows). Every rank starts from its own
 * random initialisation, so agreement also shows the broadcast from rank 0.
 * The model is a 2-layer bidirectional LSTM over sequences of varied
 * lengths, then a dense head on each sequence's last step and a
 * cross-entropy loss; SGD with momentum, whose update is linear in the
 * gradient, so the single-process difference stays at rounding level.
 *
 * Then: a checkpoint from rank 0 loads back on every rank; a checkpoint
 * that cannot be written fails on every rank; ranks whose models differ
 * all get LSTM_E_SHAPE; a step where every weight is 0 fails on all ranks.
 *
 * Plain checks instead of CMocka: a failed CMocka assertion would unwind one
 * rank out of its test while the others wait for it in a collective. Here
 * every rank runs every check and counts its failures, and the verdict is
 * one reduction at the end; rank 0 prints "N passed, M failed".
 *
 * --fail-rank R --fail-step S --fail-how abort|exit: the failure test
 * (run_failure.sh). Ranks train for up to 100000 steps; at step S rank R
 * either gets a non-finite input, reports liblstm's error and calls
 * MPI_Abort() (abort), or dies without a word to MPI (exit). The others
 * must then be ended by the MPI runtime instead of waiting forever.
 *
 * Usage: mpirun -np N test_mpi_train CHECKPOINT_PATH [--fail-...]
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lstm_mpi.h"

enum {
    INPUT = 3,  /* I */
    HIDDEN = 5, /* H */
    LAYERS = 2,
    FEATURES = 2 * HIDDEN, /* D H: both directions */
    CLASSES = 4,
    SEQ = 7, /* T */
    MAX_BATCH = 12,
    STEPS = 6
};

#define MODEL_SEED UINT64_C(1000) /* rank r starts from MODEL_SEED + r */
#define HEAD_SEED UINT64_C(2000)
static const double LEARNING_RATE = 0.1, MOMENTUM = 0.9, CLIP_NORM = 0.5;
/* |a - b| <= TOLERANCE (1 + |b|) for the data-parallel against the
 * single-process values: differences are those of the summation order. */
static const double TOLERANCE = 1e-5;

static int rank, ranks, checks, failures;

static void check(int ok, const char *what)
{
    checks++;
    if (!ok) {
        failures++;
        fprintf(stderr, "rank %d: FAILED: %s\n", rank, what);
    }
}

static int ok_call(lstm_status status, const char *call)
{
    if (status == LSTM_OK)
        return 1;
    fprintf(stderr, "rank %d: %s: %s: %s %s\n", rank, call, lstm_strerror(status),
            lstm_error_message(), lstm_mpi_error_message());
    check(0, call);
    return 0;
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

/* The global batch of a step, the same on every rank: x [B][T][I]. */
typedef struct batch {
    float x[MAX_BATCH * SEQ * INPUT];
    size_t lengths[MAX_BATCH];
    int32_t targets[MAX_BATCH];
} batch;

static void batch_make(batch *data, size_t global_batch, uint64_t step)
{
    uint64_t state = UINT64_C(0xDA7A) + step;
    for (size_t k = 0; k < global_batch * SEQ * INPUT; k++)
        data->x[k] = next_uniform(&state);
    for (size_t b = 0; b < global_batch; b++) {
        data->lengths[b] = 1 + (b + step) % SEQ;
        data->targets[b] = (int32_t)((b * 7 + step) % CLASSES);
    }
}

/* A model, its head and optimizer, and the activations of one batch. */
typedef struct net {
    lstm_model *model;
    lstm_workspace *workspace;
    lstm_dense *head;
    lstm_optim *optim;
    float y[MAX_BATCH * SEQ * FEATURES], dy[MAX_BATCH * SEQ * FEATURES]; /* [B][T][D H] */
    float last[MAX_BATCH * FEATURES], dlast[MAX_BATCH * FEATURES];
    float z[MAX_BATCH * CLASSES], dz[MAX_BATCH * CLASSES];
} net;

static void net_destroy(net *n)
{
    lstm_optim_destroy(n->optim);
    lstm_dense_destroy(n->head);
    lstm_workspace_destroy(n->workspace);
    lstm_model_destroy(n->model);
    memset(n, 0, sizeof *n);
}

/* Models differ by hidden size only when a test wants them to; with_head 0
 * leaves the head out. */
static int net_create(net *n, size_t hidden, int with_head, uint64_t seed_offset)
{
    lstm_config config;
    lstm_optim_options options;
    float *params, *grads;
    size_t count;
    memset(n, 0, sizeof *n);
    if (!ok_call(lstm_config_init(&config, sizeof config), "lstm_config_init"))
        return 0;
    config.input_size = INPUT;
    config.hidden_size = hidden;
    config.num_layers = LAYERS;
    config.flags = LSTM_BIDIRECTIONAL | LSTM_BATCH_FIRST;
    if (!ok_call(lstm_model_create(&config, &n->model), "lstm_model_create") ||
        !ok_call(lstm_model_init(n->model, MODEL_SEED + seed_offset, 0), "lstm_model_init") ||
        !ok_call(lstm_workspace_create(n->model, &n->workspace), "lstm_workspace_create") ||
        !ok_call(lstm_optim_options_init(&options, sizeof options, LSTM_OPTIM_SGD),
                 "lstm_optim_options_init"))
        return 0;
    options.lr = LEARNING_RATE;
    options.momentum = MOMENTUM;
    if (!ok_call(lstm_optim_create(&options, &n->optim), "lstm_optim_create") ||
        !ok_call(lstm_optim_add_model(n->optim, n->model), "lstm_optim_add_model"))
        return 0;
    if (!with_head)
        return 1;
    return ok_call(lstm_dense_create(2 * hidden, CLASSES, &n->head), "lstm_dense_create") &&
           ok_call(lstm_dense_init(n->head, HEAD_SEED + seed_offset), "lstm_dense_init") &&
           ok_call(lstm_dense_params(n->head, &params, &count), "lstm_dense_params") &&
           ok_call(lstm_dense_grads(n->head, &grads, NULL), "lstm_dense_grads") &&
           ok_call(lstm_optim_add_buffer(n->optim, params, grads, count), "lstm_optim_add_buffer");
}

/*
 * Rows [first, first + rows) of the batch: zero the gradients, forward,
 * loss (the mean over these rows), and the head's backward, leaving dy
 * for the LSTM's backward.
 */
static int net_forward(net *n, const batch *data, size_t first, size_t rows)
{
    if (!ok_call(lstm_optim_zero_grads(n->optim), "lstm_optim_zero_grads"))
        return 0;
    if (rows == 0)
        return 1;
    const size_t *lengths = data->lengths + first;
    const lstm_sequences sequences = {
        .struct_size = sizeof(lstm_sequences), .steps = SEQ, .batch = rows, .lengths = lengths};
    const lstm_inputs inputs = {.struct_size = sizeof(lstm_inputs),
                                .x = data->x + first * SEQ * INPUT};
    const lstm_outputs outputs = {.struct_size = sizeof(lstm_outputs), .y = n->y};
    double loss;
    return ok_call(lstm_model_train_forward(n->model, n->workspace, &sequences, &inputs, &outputs),
                   "lstm_model_train_forward") &&
           ok_call(
               lstm_sequence_last(SEQ, rows, FEATURES, LSTM_BATCH_FIRST, lengths, n->y, n->last),
               "lstm_sequence_last") &&
           ok_call(lstm_dense_forward(n->head, rows, n->last, n->z), "lstm_dense_forward") &&
           ok_call(lstm_loss_cross_entropy(rows, CLASSES, n->z, data->targets + first, -1, &loss,
                                           n->dz),
                   "lstm_loss_cross_entropy") &&
           ok_call(lstm_dense_backward(n->head, rows, n->last, n->dz, n->dlast),
                   "lstm_dense_backward") &&
           ok_call(lstm_sequence_last_backward(SEQ, rows, FEATURES, LSTM_BATCH_FIRST, lengths,
                                               n->dlast, n->dy),
                   "lstm_sequence_last_backward");
}

static int net_backward(net *n, size_t rows)
{
    const lstm_output_grads output_grads = {.struct_size = sizeof(lstm_output_grads), .dy = n->dy};
    return rows == 0 ||
           ok_call(lstm_model_train_backward(n->model, n->workspace, &output_grads, NULL),
                   "lstm_model_train_backward");
}

/* The optimizer step, clipped or not (identical on every rank). */
static int net_step(net *n, int clip)
{
    return (!clip || ok_call(lstm_optim_clip_grad_norm(n->optim, CLIP_NORM, NULL),
                             "lstm_optim_clip_grad_norm")) &&
           ok_call(lstm_optim_step(n->optim), "lstm_optim_step");
}

enum { MAX_VALUES = 4096 };

/* Model then head, parameters or gradients, into out[MAX_VALUES]. */
static size_t net_values(net *n, int grads, float *out)
{
    float *data;
    size_t count, head_count;
    if (grads)
        lstm_model_grads(n->model, &data, &count);
    else
        lstm_model_params(n->model, &data, &count);
    if (count + lstm_dense_param_count(n->head) > MAX_VALUES) {
        fprintf(stderr, "rank %d: MAX_VALUES is too small for the test's model\n", rank);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    memcpy(out, data, count * sizeof *out);
    if (grads)
        lstm_dense_grads(n->head, &data, &head_count);
    else
        lstm_dense_params(n->head, &data, &head_count);
    memcpy(out + count, data, head_count * sizeof *out);
    return count + head_count;
}

/* Largest |a - b| / (1 + |b|). */
static double max_difference(const float *a, const float *b, size_t count)
{
    double worst = 0.0;
    for (size_t i = 0; i < count; i++) {
        double d = fabs((double)a[i] - (double)b[i]) / (1.0 + fabs((double)b[i]));
        if (!(d <= worst)) /* NaN counts as worst */
            worst = isnan(d) ? INFINITY : d;
    }
    return worst;
}

/* Every rank holds the same count floats, bit for bit (NaN fails too). */
static int same_on_every_rank(const float *values, size_t count, float *scratch)
{
    int same = 1;
    MPI_Allreduce(values, scratch, (int)count, MPI_FLOAT, MPI_MAX, MPI_COMM_WORLD);
    for (size_t i = 0; i < count; i++)
        same &= memcmp(&scratch[i], &values[i], sizeof *values) == 0;
    MPI_Allreduce(values, scratch, (int)count, MPI_FLOAT, MPI_MIN, MPI_COMM_WORLD);
    for (size_t i = 0; i < count; i++)
        same &= memcmp(&scratch[i], &values[i], sizeof *values) == 0;
    int all = 0;
    MPI_Allreduce(&same, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
    return all;
}

/*
 * Trains `ranked` data-parallel and `single` on the whole batch for STEPS
 * steps, checking agreement after each. clip: pass NULL to end_step, then
 * clip and step by hand.
 */
static void check_equivalence(size_t global_batch, int clip, const char *name)
{
    static float mine[MAX_VALUES], reference[MAX_VALUES], initial[MAX_VALUES], scratch[MAX_VALUES];
    static batch data;
    net ranked, single;
    lstm_mpi *dp = NULL;
    size_t first = 0, rows = 0;
    char what[160];
    double worst_grads = 0.0, worst_params = 0.0;
    int ok = net_create(&ranked, HIDDEN, 1, (uint64_t)rank) && net_create(&single, HIDDEN, 1, 0) &&
             ok_call(lstm_mpi_create(MPI_COMM_WORLD, ranked.model, ranked.head, &dp),
                     "lstm_mpi_create") &&
             ok_call(lstm_mpi_shard(dp, global_batch, &first, &rows), "lstm_mpi_shard");
    if (ok) {
        /* rank 0's initialisation everywhere, and it is single's */
        size_t count = net_values(&ranked, 0, mine);
        net_values(&single, 0, initial);
        snprintf(what, sizeof what, "%s: rank 0's parameters broadcast", name);
        check(memcmp(mine, initial, count * sizeof *mine) == 0, what);
    }
    for (uint64_t step = 0; ok && step < STEPS; step++) {
        batch_make(&data, global_batch, step);
        ok = net_forward(&ranked, &data, first, rows) &&
             ok_call(lstm_mpi_begin_step(dp, rows), "lstm_mpi_begin_step") &&
             net_backward(&ranked, rows) &&
             ok_call(lstm_mpi_end_step(dp, clip ? NULL : ranked.optim), "lstm_mpi_end_step") &&
             net_forward(&single, &data, 0, global_batch) && net_backward(&single, global_batch);
        if (!ok)
            break;
        /* the averaged gradients are the global batch's (clipping rescales them after) */
        size_t count = net_values(&ranked, 1, mine);
        net_values(&single, 1, reference);
        double d = max_difference(mine, reference, count);
        worst_grads = d > worst_grads ? d : worst_grads;
        ok = (!clip || net_step(&ranked, 1)) && net_step(&single, clip);
    }
    if (ok) {
        size_t count = net_values(&ranked, 0, mine);
        net_values(&single, 0, reference);
        worst_params = max_difference(mine, reference, count);
        snprintf(what, sizeof what, "%s: parameters bit for bit the same on every rank", name);
        check(same_on_every_rank(mine, count, scratch), what);
        snprintf(what, sizeof what, "%s: gradients as one process's (worst %.3g)", name,
                 worst_grads);
        check(worst_grads <= TOLERANCE, what);
        snprintf(what, sizeof what, "%s: parameters as one process's (worst %.3g)", name,
                 worst_params);
        check(worst_params <= TOLERANCE, what);
        /* the training moved them, so agreement says something */
        snprintf(what, sizeof what, "%s: parameters moved from their initial values", name);
        check(max_difference(mine, initial, count) > 100 * TOLERANCE, what);
        if (rank == 0)
            printf("%s: B = %zu on %d ranks, %d steps: largest relative difference to one "
                   "process: gradients %.3g, parameters %.3g\n",
                   name, global_batch, ranks, STEPS, worst_grads, worst_params);
    }
    lstm_mpi_destroy(dp);
    net_destroy(&ranked);
    net_destroy(&single);
}

/* Rank 0 writes the file; every rank loads it and finds its own parameters. */
static void check_checkpoint(const char *path)
{
    static batch data;
    net n;
    lstm_mpi *dp = NULL;
    lstm_model *loaded = NULL;
    size_t first, rows;
    batch_make(&data, MAX_BATCH, 0);
    if (net_create(&n, HIDDEN, 1, (uint64_t)rank) &&
        ok_call(lstm_mpi_create(MPI_COMM_WORLD, n.model, n.head, &dp), "lstm_mpi_create") &&
        ok_call(lstm_mpi_shard(dp, MAX_BATCH, &first, &rows), "lstm_mpi_shard") &&
        net_forward(&n, &data, first, rows) &&
        ok_call(lstm_mpi_begin_step(dp, rows), "lstm_mpi_begin_step") && net_backward(&n, rows) &&
        ok_call(lstm_mpi_end_step(dp, n.optim), "lstm_mpi_end_step") &&
        ok_call(lstm_mpi_save(dp, n.optim, rank == 0 ? path : NULL), "lstm_mpi_save") &&
        ok_call(lstm_model_load(path, &loaded), "lstm_model_load on every rank")) {
        size_t count = lstm_model_param_count(n.model);
        float *mine, *theirs;
        lstm_model_params(n.model, &mine, NULL);
        lstm_model_params(loaded, &theirs, NULL);
        check(lstm_model_param_count(loaded) == count &&
                  memcmp(mine, theirs, count * sizeof *mine) == 0,
              "checkpoint: the file holds this rank's parameters");

        lstm_status status = lstm_mpi_save(dp, NULL, "/nonexistent-directory/model.lstm");
        check(status == LSTM_E_IO, "checkpoint: an unwritable path fails on every rank");
        check(strstr(lstm_mpi_error_message(), "rank 0") != NULL,
              "checkpoint: every rank gets rank 0's message");
    }
    lstm_model_destroy(loaded);
    lstm_mpi_destroy(dp);
    net_destroy(&n);
}

/* Collective failures come back on every rank with the same status. */
static void check_collective_failures(void)
{
    net n;
    lstm_mpi *dp = NULL;
    /* rank 0's hidden size differs from the others' */
    if (net_create(&n, rank == 0 ? HIDDEN : HIDDEN + 1, 1, 0)) {
        lstm_status status = lstm_mpi_create(MPI_COMM_WORLD, n.model, n.head, &dp);
        check(status == LSTM_E_SHAPE && dp == NULL, "models of other shapes: LSTM_E_SHAPE");
    }
    net_destroy(&n);
    /* only rank 0 has a head */
    if (net_create(&n, HIDDEN, rank == 0, 0)) {
        lstm_status status = lstm_mpi_create(MPI_COMM_WORLD, n.model, n.head, &dp);
        check(status == LSTM_E_SHAPE && dp == NULL, "a head on some ranks: LSTM_E_SHAPE");
    }
    net_destroy(&n);
    /* every weight 0: nothing to average */
    if (net_create(&n, HIDDEN, 1, 0) &&
        ok_call(lstm_mpi_create(MPI_COMM_WORLD, n.model, n.head, &dp), "lstm_mpi_create")) {
        check(lstm_mpi_begin_step(dp, 0) == LSTM_E_ARG, "all weights 0: LSTM_E_ARG");
        check(lstm_mpi_end_step(dp, NULL) == LSTM_E_STATE, "end without begin: LSTM_E_STATE");
    }
    lstm_mpi_destroy(dp);
    net_destroy(&n);
}

/* The failure test: train until rank fail_rank fails at fail_step. */
static void run_until_failure(int fail_rank, uint64_t fail_step, const char *how)
{
    static batch data;
    net n;
    lstm_mpi *dp = NULL;
    size_t first, rows;
    if (!net_create(&n, HIDDEN, 1, 0) ||
        !ok_call(lstm_mpi_create(MPI_COMM_WORLD, n.model, n.head, &dp), "lstm_mpi_create") ||
        !ok_call(lstm_mpi_shard(dp, MAX_BATCH, &first, &rows), "lstm_mpi_shard"))
        MPI_Abort(MPI_COMM_WORLD, 1);
    for (uint64_t step = 0; step < 100000; step++) {
        batch_make(&data, MAX_BATCH, step);
        if (rank == fail_rank && step == fail_step) {
            printf("rank %d fails at step %llu (%s)\n", rank, (unsigned long long)step, how);
            fflush(stdout);
            if (strcmp(how, "exit") == 0)
                _exit(3);
            data.x[first * SEQ * INPUT] = NAN;
        }
        lstm_status status = LSTM_OK;
        if (!net_forward(&n, &data, first, rows) ||
            (status = lstm_mpi_begin_step(dp, rows)) != LSTM_OK || !net_backward(&n, rows) ||
            (status = lstm_mpi_end_step(dp, n.optim)) != LSTM_OK) {
            /* the pattern for a program: report, then end every rank */
            fprintf(stderr, "rank %d: step %llu failed: %s\n", rank, (unsigned long long)step,
                    status != LSTM_OK ? lstm_mpi_error_message() : lstm_error_message());
            MPI_Abort(MPI_COMM_WORLD, 2);
        }
    }
    printf("rank %d: completed without a failure\n", rank);
    lstm_mpi_destroy(dp);
    net_destroy(&n);
}

int main(int argc, char **argv)
{
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    if (argc == 8 && strcmp(argv[2], "--fail-rank") == 0 && strcmp(argv[4], "--fail-step") == 0 &&
        strcmp(argv[6], "--fail-how") == 0) {
        run_until_failure(atoi(argv[3]), strtoull(argv[5], NULL, 10), argv[7]);
        MPI_Finalize();
        return 1; /* reaching here means nobody failed */
    }
    if (argc != 2) {
        if (rank == 0)
            fprintf(stderr, "usage: test_mpi_train CHECKPOINT_PATH "
                            "[--fail-rank R --fail-step S --fail-how abort|exit]\n");
        MPI_Finalize();
        return 2;
    }
    check_equivalence(MAX_BATCH, 0, "even split");
    check_equivalence(MAX_BATCH - 1, 1, "uneven split, clipped");
    check_equivalence((size_t)ranks - 1, 0, "fewer rows than ranks");
    check_checkpoint(argv[1]);
    check_collective_failures();

    int counts[2] = {checks, failures}, totals[2];
    MPI_Allreduce(counts, totals, 2, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) {
        unlink(argv[1]);
        printf("%d passed, %d failed\n", totals[0] - totals[1], totals[1]);
    }
    MPI_Finalize();
    return totals[1] == 0 ? 0 : 1;
}
