/*
 * bench_optim.c: one Adam step over many parameters, against the
 * memory-bandwidth bound of the same machine, measured in the same run.
 *
 * Usage: bench_optim [parameter_count [repetitions]]   (default 10000000 20)
 *
 * An Adam step (no AMSGrad) is memory bound: per parameter it reads param,
 * grad, exp_avg and exp_avg_sq and writes param, exp_avg and exp_avg_sq,
 * 7 float streams (the lines written were just read, so there is no extra
 * read for ownership). The all-or-nothing check reads param, grad, exp_avg
 * and exp_avg_sq once more before the update, computing the step without
 * storing it: 11 streams.
 *
 * The bound is bytes moved / copy bandwidth. The copy bandwidth is memcpy
 * of a 400 MB pre-touched buffer counted as read + written bytes (2 x size
 * per copy), split over as many threads as the step may use (1, 2, and for
 * threads=0, "choose", every online CPU). A large memcpy writes with
 * non-temporal stores and so measures a 1:1 read/write mix; a machine may
 * move a read-heavy mix faster. A second, practical reference therefore
 * runs Adam's own pattern (read p, g, m, v; write p, m, v) with trivial
 * arithmetic over buffers of the step's size ("stream7"), on the same
 * thread counts.
 *
 * Each Adam configuration gets a fresh optimizer, 3 warm-up steps, then
 * the median of the timed steps. Output lines are "key=value" pairs:
 *   copy threads=.. mb=.. gbps=..
 *   stream7 params=.. threads=.. ms=.. gbps=..
 *   adam params=.. threads=.. ms=.. gbps=.. copy_gbps=.. bound_ms=.. ratio=..
 *        bound11_ms=.. ratio11=.. stream7_ms=.. ratio_stream7=..
 * where gbps is the 7-stream bytes over the step time, bound_ms and ratio
 * (step / bound) use 7 streams (the minimum), bound11_ms and ratio11 use 11
 * (with the check), and ratio_stream7 is step / stream7 time.
 */
#define _POSIX_C_SOURCE 200112L /* clock_gettime, sysconf */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>
#include <time.h>
#include <unistd.h>

#include <lstm/lstm.h>

#include "bench_util.h"
#include <lstm/optim.h>

enum {
    WARMUP_STEPS = 3,
    DEFAULT_REPETITIONS = 20,
    MAX_REPETITIONS = 1000,
    COPY_REPETITIONS = 7,
    MAX_THREADS = 64,
    ADAM_STREAMS = 7,
    CHECK_STREAMS = 11,
    CONFIGS = 3 /* threads = 1, 0 (choose), 2 */
};

/* 400 MB copied per memcpy: far beyond any last-level cache. */
#define COPY_BYTES ((size_t)400 * 1000 * 1000)
#define ALIGNMENT ((size_t)64)

static double median(double *values, size_t count)
{
    qsort(values, count, sizeof values[0], compare_doubles);
    return count % 2 ? values[count / 2] : 0.5 * (values[count / 2 - 1] + values[count / 2]);
}

/* 64-byte aligned, size rounded up as aligned_alloc requires. */
static void *alloc_aligned(size_t bytes)
{
    size_t rounded = (bytes + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    return aligned_alloc(ALIGNMENT, rounded);
}

/* ---- reference kernels, split over threads ----------------------------- */

/* One thread's share: bytes [begin, end) of a copy, or elements of stream7. */
typedef struct job {
    unsigned char *dst;
    const unsigned char *src;
    float *p, *m, *v;
    const float *g;
    size_t begin, end;
} job;

static int copy_worker(void *arg)
{
    job *share = arg;
    memcpy(share->dst + share->begin, share->src + share->begin, share->end - share->begin);
    return 0;
}

/*
 * Adam's stream pattern with trivial arithmetic: reads p, g, m, v and
 * writes p, m, v (7 streams).
 */
static int stream7_worker(void *arg)
{
    job *share = arg;
    float *restrict p = share->p, *restrict m = share->m, *restrict v = share->v;
    const float *restrict g = share->g;
    for (size_t k = share->begin; k < share->end; k++) {
        float mk = 0.5f * m[k] + g[k];
        float vk = 0.5f * v[k] + g[k] * g[k];
        m[k] = mk;
        v[k] = vk;
        p[k] -= 1e-6f * mk * vk;
    }
    return 0;
}

/*
 * Runs fn over [0, total) split into threads contiguous shares (each a
 * multiple of granule), the caller taking share 0. Returns the wall time
 * in seconds, or < 0 when a thread could not be started.
 */
static double run_split(thrd_start_t fn, const job *base, size_t total, size_t granule,
                        unsigned threads)
{
    job shares[MAX_THREADS];
    thrd_t ids[MAX_THREADS];
    size_t chunk = (total / threads + granule - 1) / granule * granule;
    unsigned started = 0;
    int ok = 1;
    double start = now_seconds();
    for (unsigned k = 0; k < threads; k++) {
        shares[k] = *base;
        shares[k].begin = (size_t)k * chunk < total ? (size_t)k * chunk : total;
        shares[k].end = shares[k].begin + chunk < total ? shares[k].begin + chunk : total;
        if (k == 0)
            continue;
        if (thrd_create(&ids[k], fn, &shares[k]) != thrd_success) {
            ok = 0;
            break;
        }
        started = k;
    }
    fn(&shares[0]);
    for (unsigned k = 1; k <= started; k++)
        thrd_join(ids[k], NULL);
    double seconds = now_seconds() - start;
    if (!ok)
        fprintf(stderr, "bench_optim: thrd_create failed\n");
    return ok ? seconds : -1.0;
}

/* Median time of the kernel over one warm-up and then repetitions runs. */
static int time_split(thrd_start_t fn, const job *base, size_t total, size_t granule,
                      unsigned threads, size_t repetitions, double *seconds)
{
    double times[MAX_REPETITIONS];
    if (run_split(fn, base, total, granule, threads) < 0.0)
        return 1;
    for (size_t k = 0; k < repetitions; k++) {
        times[k] = run_split(fn, base, total, granule, threads);
        if (times[k] < 0.0)
            return 1;
    }
    *seconds = median(times, repetitions);
    return 0;
}

/* ---- the optimizer ---------------------------------------------------- */

/* Median time of one Adam step with a fresh optimizer, in seconds. */
static int time_adam(float *params, float *grads, size_t count, uint32_t threads,
                     size_t repetitions, double *seconds)
{
    double times[MAX_REPETITIONS];
    lstm_optim_options options;
    lstm_optim *optim = NULL;
    int result = 1;

    if (failed(lstm_optim_options_init(&options, sizeof options, LSTM_OPTIM_ADAM),
               "lstm_optim_options_init"))
        return 1;
    options.lr = 1e-3;
    options.threads = threads;
    if (failed(lstm_optim_create(&options, &optim), "lstm_optim_create") ||
        failed(lstm_optim_add_buffer(optim, params, grads, count), "lstm_optim_add_buffer"))
        goto out;
    for (int k = 0; k < WARMUP_STEPS; k++)
        if (failed(lstm_optim_step(optim), "lstm_optim_step"))
            goto out;
    for (size_t k = 0; k < repetitions; k++) {
        double start = now_seconds();
        lstm_status status = lstm_optim_step(optim);
        times[k] = now_seconds() - start;
        if (failed(status, "lstm_optim_step"))
            goto out;
    }
    *seconds = median(times, repetitions);
    result = 0;
out:
    lstm_optim_destroy(optim);
    return result;
}

int main(int argc, char **argv)
{
    size_t count = 10000000, repetitions = DEFAULT_REPETITIONS;
    float *params = NULL, *grads = NULL, *scratch_m = NULL, *scratch_v = NULL;
    unsigned char *copy_src = NULL, *copy_dst = NULL;
    int exit_code = 1;

    if (argc > 3) {
        fprintf(stderr, "usage: %s [parameter_count [repetitions]]\n", argv[0]);
        return 2;
    }
    if (argc >= 2 && parse_size("bench_optim", argv[1], &count))
        return 2;
    if (argc == 3 &&
        (parse_size("bench_optim", argv[2], &repetitions) || repetitions > MAX_REPETITIONS)) {
        fprintf(stderr, "bench_optim: repetitions must be 1 .. %d\n", MAX_REPETITIONS);
        return 2;
    }
    if (count > SIZE_MAX / sizeof(float) / 2) {
        fprintf(stderr, "bench_optim: parameter count too large\n");
        return 2;
    }
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned cpus = online < 1             ? 1u
                    : online > MAX_THREADS ? (unsigned)MAX_THREADS
                                           : (unsigned)online;
    printf("liblstm %s params=%zu repetitions=%zu warmup=%d cpus=%u\n", lstm_version_string(),
           count, repetitions, WARMUP_STEPS, cpus);

    /* The step's configurations, and the thread count each reference uses
     * for it (threads=0 may use every CPU). */
    const uint32_t step_threads[CONFIGS] = {1, 0, 2};
    const unsigned reference_threads[CONFIGS] = {1, cpus, 2};
    double copy_bps[CONFIGS], stream7_seconds[CONFIGS];

    params = alloc_aligned(count * sizeof(float));
    grads = alloc_aligned(count * sizeof(float));
    scratch_m = alloc_aligned(count * sizeof(float));
    scratch_v = alloc_aligned(count * sizeof(float));
    copy_src = alloc_aligned(COPY_BYTES);
    copy_dst = alloc_aligned(COPY_BYTES);
    if (!params || !grads || !scratch_m || !scratch_v || !copy_src || !copy_dst) {
        fprintf(stderr, "bench_optim: out of memory\n");
        goto out;
    }
    fill_random(params, count, 1u); /* also touches every page */
    /* Small gradients, as a loss would give. */
    fill_random(grads, count, 2u);
    for (size_t k = 0; k < count; k++) /* small gradients, as training gives */
        grads[k] *= 1e-3f;
    memset(scratch_m, 0, count * sizeof(float));
    memset(scratch_v, 0, count * sizeof(float));
    memset(copy_src, 1, COPY_BYTES);
    memset(copy_dst, 2, COPY_BYTES);

    const job copy_base = {copy_dst, copy_src, NULL, NULL, NULL, NULL, 0, 0};
    const job stream7_base = {NULL, NULL, params, scratch_m, scratch_v, grads, 0, 0};
    for (size_t c = 0; c < CONFIGS; c++) {
        unsigned threads = reference_threads[c];
        double seconds;
        if (time_split(copy_worker, &copy_base, COPY_BYTES, ALIGNMENT, threads, COPY_REPETITIONS,
                       &seconds))
            goto out;
        copy_bps[c] = 2.0 * (double)COPY_BYTES / seconds;
        printf("copy threads=%u mb=%.0f gbps=%.2f\n", threads, (double)COPY_BYTES * 1e-6,
               copy_bps[c] * 1e-9);
    }
    double bytes7 = (double)ADAM_STREAMS * (double)sizeof(float) * (double)count;
    double bytes11 = (double)CHECK_STREAMS * (double)sizeof(float) * (double)count;
    for (size_t c = 0; c < CONFIGS; c++) {
        unsigned threads = reference_threads[c];
        if (time_split(stream7_worker, &stream7_base, count, ALIGNMENT / sizeof(float), threads,
                       repetitions, &stream7_seconds[c]))
            goto out;
        printf("stream7 params=%zu threads=%u ms=%.3f gbps=%.2f\n", count, threads,
               1e3 * stream7_seconds[c], bytes7 / stream7_seconds[c] * 1e-9);
    }
    free(copy_src);
    free(copy_dst);
    free(scratch_m);
    free(scratch_v);
    copy_src = copy_dst = NULL;
    scratch_m = scratch_v = NULL;

    printf("bytes (minimum, 7 streams)=%.0f bytes (with the check, 11 streams)=%.0f\n", bytes7,
           bytes11);
    for (size_t c = 0; c < CONFIGS; c++) {
        double seconds;
        if (time_adam(params, grads, count, step_threads[c], repetitions, &seconds))
            goto out;
        double bound7 = bytes7 / copy_bps[c], bound11 = bytes11 / copy_bps[c];
        printf("adam params=%zu threads=%u ms=%.3f gbps=%.2f copy_gbps=%.2f bound_ms=%.3f "
               "ratio=%.2f bound11_ms=%.3f ratio11=%.2f stream7_ms=%.3f ratio_stream7=%.2f\n",
               count, (unsigned)step_threads[c], 1e3 * seconds, bytes7 / seconds * 1e-9,
               copy_bps[c] * 1e-9, 1e3 * bound7, seconds / bound7, 1e3 * bound11, seconds / bound11,
               1e3 * stream7_seconds[c], seconds / stream7_seconds[c]);
    }
    exit_code = 0;
out:
    free(params);
    free(grads);
    free(scratch_m);
    free(scratch_v);
    free(copy_src);
    free(copy_dst);
    return exit_code;
}
