/*
 * Every allocation of the library goes through here: 64-byte aligned blocks
 * (a cache line, and the widest SIMD load), counted so that tests can prove
 * that repeated calls allocate nothing.
 */
#ifndef LSTM_ALLOC_H
#define LSTM_ALLOC_H

#include <stddef.h>

#define LSTM_ALIGNMENT ((size_t)64)

/* Rounds bytes up to a multiple of LSTM_ALIGNMENT; 0 when that overflows. */
size_t align_up(size_t bytes);

/* NULL on failure or when bytes is 0. Memory is uninitialised. */
void *mem_alloc(size_t bytes);
void mem_free(void *block);

/* Number of successful mem_alloc() calls since the process started. */
size_t mem_alloc_count(void);

#endif /* LSTM_ALLOC_H */
