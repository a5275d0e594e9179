/*
 * Every allocation of the library goes through here: 64-byte aligned blocks
 * (a cache line, and the widest SIMD load), counted so that tests can prove
 * that repeated calls allocate nothing and that failed calls leak nothing.
 */
#ifndef LSTM_ALLOC_H
#define LSTM_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LSTM_ALIGNMENT ((size_t)64)

/* Rounds bytes up to a multiple of LSTM_ALIGNMENT; 0 when that overflows. */
size_t lstm__align_up(size_t bytes);

/* NULL on failure or when bytes is 0. Memory is uninitialised. */
void *lstm__mem_alloc(size_t bytes);
void lstm__mem_free(void *block);

/* Number of successful lstm__mem_alloc() calls since the process started. */
size_t lstm__mem_alloc_count(void);

/* Blocks allocated and not yet freed. */
size_t lstm__mem_live_count(void);

/*
 * Fault injection, for tests/unit/test_alloc_failure.c. Every acquisition of a
 * resource the system may refuse is a fault point: each lstm__mem_alloc(), and
 * each start of a thread (the pools of workspaces and optimizers, pool.c),
 * which asks lstm__fault_point() first. After lstm__fault_fail_at(n), the n-th point
 * from then on fails as if the system had refused, once; 0 disarms. The
 * countdown is process-wide: a test arms it around one call on one thread.
 */
bool lstm__fault_point(void);
void lstm__fault_fail_at(uint64_t n);
/* Fault points passed since the process started. */
uint64_t lstm__fault_point_count(void);

#endif /* LSTM_ALLOC_H */
