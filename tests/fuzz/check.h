/*
 * The fuzz targets' checks: CHECK(cond, printf-style explanation) aborts,
 * naming the file, line and condition, the explanation and the library's
 * last message, so that libFuzzer keeps the input that broke the promise.
 */
#ifndef LSTM_FUZZ_CHECK_H
#define LSTM_FUZZ_CHECK_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "lstm/lstm.h"

#define CHECK(cond, ...) \
  do { \
    if (!(cond)) \
      check_failed(__FILE__, __LINE__, #cond, __VA_ARGS__); \
  } while (0)

static void check_failed(const char *file, int line, const char *cond, const char *what, ...)
    __attribute__((noreturn, format(printf, 4, 5)));

static void check_failed(const char *file, int line, const char *cond, const char *what, ...)
{
    va_list args;
    va_start(args, what);
    fflush(stdout);
    fprintf(stderr, "%s:%d: check failed: %s\n  ", file, line, cond);
    vfprintf(stderr, what, args);
    fprintf(stderr, "\n  last library message: %s\n", lstm_error_message());
    va_end(args);
    abort();
}

#endif /* LSTM_FUZZ_CHECK_H */
