/*
 * bench_core.c: time an LSTM network's inference and training step.
 *
 * Usage: bench_core [--no-mixed] [--pack-every-call] [--precision fp32|bf16|int8]
 *                   [T B I H [repetitions [layers [directions]]]]
 *   (default 100 16 512 512 10 1 1, fp32)
 *
 * --precision bf16 or int8 sets it on the workspace for inference
 * (lstm_workspace_set_precision()) and, bf16, for training
 * (lstm_workspace_set_training_precision(); int8 times inference alone:
 * training has no int8). Then x is drawn from N(0, 1) (the weights are
 * lstm_model_init()'s, uniform in +-1/sqrt(H)), untimed float32 calls on
 * the same x give the reference y and dx, and each line carries relerr=:
 * ||y - y_fp32|| / ||y_fp32|| over the whole of y (infer), or the same of
 * dx (train).
 *
 * The model has `layers` stacked layers of `directions` directions (2:
 * LSTM_BIDIRECTIONAL, both directions' outputs concatenated, so y is
 * T x B x 2H and layers past the first read 2H inputs). For each mode, runs
 * 2 warm-up calls, then reports the median wall time of the timed
 * repetitions:
 *   mode=infer  lstm_model_infer (y for every step and final states), with
 *               the weights packed once and kept between calls
 *               (lstm_workspace_keep_weights(), as oneDNN's weights are
 *               reordered once, outside its timing); --pack-every-call
 *               packs them in every call instead
 *   mode=train  lstm_model_train_forward + lstm_model_train_backward (dx requested)
 *   mode=infer_mixed, train_mixed  the same batch with lengths spread evenly
 *               from T down to 1 (padded, about half the steps real): the
 *               cost should follow the real steps, reported as active=.
 *               --no-mixed leaves these two out.
 * FLOP counts (forward_flops() in bench_util.h): forward = the sum over
 * layers and directions of T * 2 * B * 4H * (H + I_l) (the gate GEMMs), a
 * training step = 3 x forward (forward, dA W for [dh, dx], and dW).
 * Output lines are "key=value" pairs, one line per mode, in the format every
 * benchmark program here shares (impl, T, B, I, H, layers, directions, mode,
 * threads, ms, gflops, workspace_bytes, kept_per_step_row: the training
 * workspace's growth per step and batch row, every layer and direction
 * together), plus active= (the fraction of real steps), precision= and,
 * below float32, relerr=.
 * The BLAS thread count is the BLAS's own setting (OPENBLAS_NUM_THREADS).
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lstm/lstm.h>

#include "bench_util.h"

enum { WARMUP_RUNS = 2, DEFAULT_REPETITIONS = 10, MAX_REPETITIONS = 1000 };

typedef enum bench_mode { BENCH_INFER, BENCH_TRAIN } bench_mode;

typedef struct bench {
    size_t seq_len, batch, input_size, hidden_size, layers, directions;
    lstm_model *model;
    lstm_workspace *workspace;
    const size_t *lengths; /* NULL: every sequence has T steps */
    float *x, *y, *h_last, *c_last, *dy, *dx;
    float *y_fp32;  /* below float32: the float32 y of the same x */
    float *dx_fp32; /* and the float32 dx of a training step */
} bench;

static int run_once(bench *b, bench_mode mode)
{
    const lstm_sequences sequences = {.struct_size = sizeof(lstm_sequences),
                                      .steps = b->seq_len,
                                      .batch = b->batch,
                                      .lengths = b->lengths};
    const lstm_inputs inputs = {.struct_size = sizeof(lstm_inputs), .x = b->x};
    const lstm_outputs outputs = {
        .struct_size = sizeof(lstm_outputs), .y = b->y, .hT = b->h_last, .cT = b->c_last};
    if (mode == BENCH_INFER)
        return failed(lstm_model_infer(b->model, b->workspace, &sequences, &inputs, &outputs),
                      "lstm_model_infer");
    const lstm_output_grads output_grads = {.struct_size = sizeof(lstm_output_grads), .dy = b->dy};
    const lstm_input_grads input_grads = {.struct_size = sizeof(lstm_input_grads), .dx = b->dx};
    if (failed(lstm_model_train_forward(b->model, b->workspace, &sequences, &inputs, &outputs),
               "lstm_model_train_forward"))
        return 1;
    return failed(lstm_model_train_backward(b->model, b->workspace, &output_grads, &input_grads),
                  "lstm_model_train_backward");
}

/* Median wall time of one call of the mode, in seconds. */
static int time_mode(bench *b, bench_mode mode, size_t repetitions, double *median)
{
    double times[MAX_REPETITIONS];
    for (int k = 0; k < WARMUP_RUNS; k++)
        if (run_once(b, mode))
            return 1;
    for (size_t k = 0; k < repetitions; k++) {
        double start = now_seconds();
        if (run_once(b, mode))
            return 1;
        times[k] = now_seconds() - start;
    }
    /* Training accumulates; keep the gradients bounded across runs. */
    if (mode == BENCH_TRAIN && failed(lstm_model_zero_grads(b->model), "lstm_model_zero_grads"))
        return 1;
    qsort(times, repetitions, sizeof times[0], compare_doubles);
    *median = repetitions % 2 ? times[repetitions / 2]
                              : 0.5 * (times[repetitions / 2 - 1] + times[repetitions / 2]);
    return 0;
}

int main(int argc, char **argv)
{
    bench b = {.seq_len = 100,
               .batch = 16,
               .input_size = 512,
               .hidden_size = 512,
               .layers = 1,
               .directions = 1};
    size_t *mixed = NULL;
    size_t repetitions = DEFAULT_REPETITIONS;
    lstm_config config;
    size_t train_bytes = 0, infer_bytes = 0, saturated_bytes = 0, longer_bytes = 0;
    int exit_code = 1;

    /* The mixed-length modes cost run time that benchmarks/run does not report. */
    int mixed_modes = 1, keep_weights = 1, first = 1, precision = LSTM_PRECISION_FP32;
    for (; first < argc && strncmp(argv[first], "--", 2) == 0; first++) {
        if (strcmp(argv[first], "--no-mixed") == 0)
            mixed_modes = 0;
        else if (strcmp(argv[first], "--pack-every-call") == 0)
            keep_weights = 0;
        else if (strcmp(argv[first], "--precision") == 0 && first + 1 < argc) {
            if ((precision = parse_precision("bench_core", argv[++first])) < 0)
                return 2;
        } else
            break;
    }
    char **args = argv + first;
    const int count = argc - first;
    if (count != 0 && (count < 4 || count > 7)) {
        fprintf(stderr,
                "usage: %s [--no-mixed] [--pack-every-call] [--precision fp32|bf16|int8] "
                "[T B I H [repetitions [layers [directions]]]]\n",
                argv[0]);
        return 2;
    }
    const char *program = "bench_core";
    if (count >= 4 &&
        (parse_size(program, args[0], &b.seq_len) || parse_size(program, args[1], &b.batch) ||
         parse_size(program, args[2], &b.input_size) ||
         parse_size(program, args[3], &b.hidden_size)))
        return 2;
    if (count >= 5 &&
        (parse_size(program, args[4], &repetitions) || repetitions > MAX_REPETITIONS)) {
        fprintf(stderr, "bench_core: repetitions must be 1 .. %d\n", MAX_REPETITIONS);
        return 2;
    }
    if (parse_network(program, count >= 6 ? args[5] : NULL, count >= 7 ? args[6] : NULL, &b.layers,
                      &b.directions))
        return 2;
    const char *threads = getenv("OPENBLAS_NUM_THREADS");
    printf("liblstm %s OPENBLAS_NUM_THREADS=%s repetitions=%zu warmup=%d\n", lstm_version_string(),
           threads ? threads : "(unset)", repetitions, WARMUP_RUNS);

    size_t T = b.seq_len, B = b.batch, I = b.input_size, H = b.hidden_size;
    size_t L = b.layers, D = b.directions;
    /* The library checks its own limits; these guard the buffers allocated here:
     * x and y (the wider one's T*B rows) and the final states (L*D*B*H floats). */
    const size_t widest = I > D * H ? I : D * H;
    if (I > LSTM_MAX_SIZE || H > LSTM_MAX_SIZE || T > SIZE_MAX / 4 / B / widest ||
        L * D > SIZE_MAX / 4 / B / H) {
        fprintf(stderr,
                "bench_core: I and H must be at most %zu, and T*B*max(I, D*H) "
                "and L*D*B*H floats must fit in memory\n",
                (size_t)LSTM_MAX_SIZE);
        return 2;
    }
    b.x = malloc(T * B * I * sizeof(float));
    b.dx = malloc(T * B * I * sizeof(float));
    b.y = malloc(T * B * D * H * sizeof(float));
    b.dy = malloc(T * B * D * H * sizeof(float));
    b.h_last = malloc(L * D * B * H * sizeof(float));
    b.c_last = malloc(L * D * B * H * sizeof(float));
    mixed = malloc(B * sizeof *mixed);
    if (precision != LSTM_PRECISION_FP32) {
        b.y_fp32 = malloc(T * B * D * H * sizeof(float));
        b.dx_fp32 = malloc(T * B * I * sizeof(float));
    }
    if (!b.x || !b.dx || !b.y || !b.dy || !b.h_last || !b.c_last || !mixed ||
        (precision != LSTM_PRECISION_FP32 && (!b.y_fp32 || !b.dx_fp32))) {
        fprintf(stderr, "bench_core: out of memory\n");
        goto out;
    }
    /* The accuracy measurement's inputs are N(0, 1); float32's timing keeps
     * the uniform ones of earlier runs (the values do not change its speed). */
    if (precision == LSTM_PRECISION_FP32)
        fill_random(b.x, T * B * I, 1u);
    else
        fill_normal(b.x, T * B * I, 1u);
    /* Small output gradients, as a loss would give. */
    fill_random(b.dy, T * B * D * H, 2u);
    for (size_t k = 0; k < T * B * D * H; k++)
        b.dy[k] *= 1e-3f;

    /* What training keeps per (step x row) for the backward pass, over every
     * layer and direction, is the workspace's growth with T, measured (by
     * size queries) past the T at which the fixed parts stop growing: packed
     * weights, one step's scratch, and the weight gradient's packings of up
     * to 512 rows (T B of them; one scratch serves every layer). */
    const size_t saturated = 512 / B + 1;
    if (failed(lstm_config_init(&config, sizeof config), "lstm_config_init"))
        goto out;
    config.input_size = I;
    config.hidden_size = H;
    config.num_layers = L;
    if (D == 2)
        config.flags |= LSTM_BIDIRECTIONAL;
    if (failed(lstm_model_create(&config, &b.model), "lstm_model_create") ||
        failed(lstm_model_init(b.model, 1234u, LSTM_INIT_FORGET_BIAS_ONE), "lstm_model_init") ||
        failed(lstm_workspace_create(b.model, &b.workspace), "lstm_workspace_create") ||
        failed(lstm_workspace_size(b.model, LSTM_MODE_INFER, T, B, &infer_bytes),
               "lstm_workspace_size") ||
        failed(lstm_workspace_size(b.model, LSTM_MODE_TRAIN, T, B, &train_bytes),
               "lstm_workspace_size") ||
        failed(lstm_workspace_size(b.model, LSTM_MODE_TRAIN, saturated, B, &saturated_bytes),
               "lstm_workspace_size") ||
        failed(lstm_workspace_size(b.model, LSTM_MODE_TRAIN, saturated + T, B, &longer_bytes),
               "lstm_workspace_size") ||
        failed(lstm_workspace_reserve(b.workspace, LSTM_MODE_TRAIN, T, B),
               "lstm_workspace_reserve") ||
        failed(lstm_workspace_reserve(b.workspace, LSTM_MODE_INFER, T, B),
               "lstm_workspace_reserve") ||
        failed(lstm_workspace_keep_weights(b.workspace, keep_weights),
               "lstm_workspace_keep_weights"))
        goto out;

    /* Below float32: the float32 y and dx of the same x first, untimed,
     * then the precision for every call after them. */
    if (precision != LSTM_PRECISION_FP32) {
        if (run_once(&b, BENCH_INFER))
            goto out;
        memcpy(b.y_fp32, b.y, T * B * D * H * sizeof(float));
        if (run_once(&b, BENCH_TRAIN))
            goto out;
        memcpy(b.dx_fp32, b.dx, T * B * I * sizeof(float));
        if (failed(lstm_workspace_set_precision(b.workspace, (lstm_precision)precision),
                   "lstm_workspace_set_precision") ||
            (precision == LSTM_PRECISION_BF16 &&
             failed(lstm_workspace_set_training_precision(b.workspace, LSTM_PRECISION_BF16),
                    "lstm_workspace_set_training_precision")))
            goto out;
    }

    const double kept_per_step_row =
        (double)(longer_bytes - saturated_bytes) / (double)T / (double)B;

    /* Lengths spread evenly from T down to 1. */
    size_t real_steps = 0;
    for (size_t k = 0; k < B; k++) {
        mixed[k] = B == 1 ? T : T - k * (T - 1) / (B - 1);
        real_steps += mixed[k];
    }
    const double active = (double)real_steps / ((double)T * (double)B);
    const double flops = forward_flops(T, B, I, H, L, D);
    const struct {
        bench_mode mode;
        const char *name;
        const size_t *lengths;
        double flops; /* of the real steps */
        size_t bytes;
    } modes[] = {
        {BENCH_INFER, "infer", NULL, flops, infer_bytes},
        {BENCH_TRAIN, "train", NULL, 3.0 * flops, train_bytes},
        /* The mixed modes last, so that --no-mixed stops before them. */
        {BENCH_INFER, "infer_mixed", mixed, active * flops, infer_bytes},
        {BENCH_TRAIN, "train_mixed", mixed, 3.0 * active * flops, train_bytes},
    };
    const size_t mode_count = mixed_modes ? sizeof modes / sizeof modes[0] : 2;
    for (size_t m = 0; m < mode_count; m++) {
        double seconds;
        /* Training has no int8. */
        if (precision == LSTM_PRECISION_INT8 && modes[m].mode == BENCH_TRAIN)
            continue;
        b.lengths = modes[m].lengths;
        if (time_mode(&b, modes[m].mode, repetitions, &seconds))
            goto out;
        printf("impl=liblstm T=%zu B=%zu I=%zu H=%zu layers=%zu directions=%zu mode=%s "
               "threads=%s ms=%.3f gflops=%.2f workspace_bytes=%zu kept_per_step_row=%.0f "
               "active=%.3f precision=%s",
               T, B, I, H, L, D, modes[m].name, threads ? threads : "default", 1e3 * seconds,
               modes[m].flops / seconds * 1e-9, modes[m].bytes, kept_per_step_row,
               modes[m].lengths ? active : 1.0, precision_names[precision]);
        /* y or dx of the last timed call: every step of every sequence
         * (mode=infer, train). */
        if (precision != LSTM_PRECISION_FP32 && !modes[m].lengths)
            printf(" relerr=%.6f", modes[m].mode == BENCH_INFER
                                       ? relative_l2_error(b.y, b.y_fp32, T * B * D * H)
                                       : relative_l2_error(b.dx, b.dx_fp32, T * B * I));
        printf("\n");
    }
    exit_code = 0;
out:
    lstm_workspace_destroy(b.workspace);
    lstm_model_destroy(b.model);
    free(b.x);
    free(b.dx);
    free(b.y);
    free(b.dy);
    free(b.h_last);
    free(b.c_last);
    free(b.y_fp32);
    free(b.dx_fp32);
    free(mixed);
    return exit_code;
}
