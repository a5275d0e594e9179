/* Helpers shared by the benchmark programs. */
#ifndef LSTM_BENCH_UTIL_H
#define LSTM_BENCH_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lstm/lstm.h>

/* Prints the failing call with the library's status text and detail; 1 on failure. */
static inline int failed(lstm_status status, const char *call)
{
    if (status == LSTM_OK)
        return 0;
    fprintf(stderr, "%s failed: %s: %s\n", call, lstm_strerror(status), lstm_error_message());
    return 1;
}

static inline double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Values in [-1, 1) from a fixed xorshift sequence, so runs are comparable. */
static inline void fill_random(float *values, size_t count, uint32_t seed)
{
    uint32_t state = seed ? seed : 1u;
    for (size_t k = 0; k < count; k++) {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        values[k] = (float)(state >> 8) * (2.0f / 16777216.0f) - 1.0f;
    }
}

/*
 * Values from N(0, 1), by Box-Muller on pairs of the same xorshift sequence:
 * the inputs of the accuracy measurements (benchmarks/README.md, Accuracy).
 */
static inline void fill_normal(float *values, size_t count, uint32_t seed)
{
    uint32_t state = seed ? seed : 1u;
    for (size_t k = 0; k < count; k += 2) {
        double u[2];
        for (int j = 0; j < 2; j++) {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            u[j] = ((double)(state >> 8) + 0.5) / 16777216.0; /* (0, 1): log(u) is finite */
        }
        /* z0 = sqrt(-2 ln u0) cos(2 pi u1), z1 = sqrt(-2 ln u0) sin(2 pi u1) */
        const double radius = sqrt(-2.0 * log(u[0])), angle = 6.283185307179586 * u[1];
        values[k] = (float)(radius * cos(angle));
        if (k + 1 < count)
            values[k + 1] = (float)(radius * sin(angle));
    }
}

/* ||got - want||_2 / ||want||_2, in double: the accuracy figure relerr=. */
static inline double relative_l2_error(const float *got, const float *want, size_t count)
{
    double error = 0.0, norm = 0.0;
    for (size_t k = 0; k < count; k++) {
        const double difference = (double)got[k] - (double)want[k];
        error += difference * difference;
        norm += (double)want[k] * (double)want[k];
    }
    return norm > 0.0 ? sqrt(error / norm) : sqrt(error);
}

/* The --precision argument's names, in lstm_precision's order. */
static const char *const precision_names[] = {"fp32", "bf16", "int8"};

/* 0 .. 2 for "fp32", "bf16", "int8"; -1 (with a message naming the program) otherwise. */
static inline int parse_precision(const char *program, const char *text)
{
    for (int k = 0; k < 3; k++)
        if (strcmp(text, precision_names[k]) == 0)
            return k;
    fprintf(stderr, "%s: --precision must be fp32, bf16 or int8, not \"%s\"\n", program, text);
    return -1;
}

/* qsort order for doubles, for medians. */
static inline int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A positive integer argument; 1 (with a message naming the program) if not. */
static inline int parse_size(const char *program, const char *text, size_t *out)
{
    char *end;
    unsigned long long value = strtoull(text, &end, 10);
    if (end == text || *end != '\0' || value == 0 || value > SIZE_MAX) {
        fprintf(stderr, "%s: \"%s\" is not a positive integer\n", program, text);
        return 1;
    }
    *out = (size_t)value;
    return 0;
}

/*
 * The number of layers (1 .. LSTM_MAX_LAYERS) and directions (1, or 2 for
 * bidirectional) from their arguments, either NULL for 1; 1 (with a message
 * naming the program) when one is out of range.
 */
static inline int parse_network(const char *program, const char *layers_text,
                                const char *directions_text, size_t *layers, size_t *directions)
{
    *layers = 1;
    *directions = 1;
    if ((layers_text && parse_size(program, layers_text, layers)) ||
        (directions_text && parse_size(program, directions_text, directions)))
        return 1;
    if (*layers > LSTM_MAX_LAYERS || *directions > 2) {
        fprintf(stderr, "%s: layers must be 1 .. %zu and directions 1 or 2\n", program,
                (size_t)LSTM_MAX_LAYERS);
        return 1;
    }
    return 0;
}

/*
 * FLOPs of one forward pass of every layer and direction: the gate products,
 * T * 2 * B * 4H * (H + I_l) for each, where layer 0 reads the input
 * (I_0 = I) and each later layer both directions' outputs of the one below
 * (I_l = D H). Every program here counts a training step as 3 x this
 * (the forward, dA W for [dh, dx], and dW).
 */
static inline double forward_flops(size_t T, size_t B, size_t I, size_t H, size_t layers,
                                   size_t directions)
{
    double flops = 0.0;
    for (size_t l = 0; l < layers; l++) {
        const size_t input = l == 0 ? I : directions * H;
        flops += (double)directions * (double)T * 2.0 * (double)B * 4.0 * (double)H *
                 (double)(H + input);
    }
    return flops;
}

#endif /* LSTM_BENCH_UTIL_H */
