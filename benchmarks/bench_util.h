/* Helpers shared by the benchmark programs. */
#ifndef LSTM_BENCH_UTIL_H
#define LSTM_BENCH_UTIL_H

#include <stdio.h>
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

#endif /* LSTM_BENCH_UTIL_H */
