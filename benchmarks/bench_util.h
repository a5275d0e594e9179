/* Helpers shared by the benchmark programs. */
#ifndef LSTM_BENCH_UTIL_H
#define LSTM_BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

#endif /* LSTM_BENCH_UTIL_H */
