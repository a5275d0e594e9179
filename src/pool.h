/*
 * A small pool of persistent threads for the library's per-step work (a
 * workspace's products, an optimizer's updates), which is too short (tens
 * to hundreds of microseconds) to start threads for. The workers spin
 * briefly between steps, then sleep. One pool per workspace and one per
 * optimizer that uses threads, each used by one thread at a time, like its
 * owner.
 *
 * A call never waits for a thread that is not running: its parts are
 * claimed, not assigned, so the caller runs any part no worker has started;
 * and when the workers were late (another process holds their core), the
 * next calls run on the caller alone for a while (pool.c). A part therefore
 * must not depend on which thread runs it, only on its part number.
 */
#ifndef LSTM_POOL_H
#define LSTM_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pool pool;

/* Runs part `part` of `parts` of some work. */
typedef void (*pool_fn)(void *context, size_t part, size_t parts);

/* A pool running work on `threads` threads (at most 16), the caller's
 * included; NULL when threads < 2, or when its memory or its threads cannot
 * be had (the system's refusal: each is a fault point of alloc.h). */
pool *lstm__pool_create(size_t threads);
void lstm__pool_destroy(pool *workers);
size_t lstm__pool_threads(const pool *workers);

/* Runs fn for every part of lstm__pool_threads(), each once, on whichever
 * thread claims it (the caller does part 0, and any part no worker has
 * started), and returns when all parts are done. workers may be NULL: fn
 * then runs once, as part 0 of 1, on the calling thread
 * (lstm__pool_threads() gives 1 for it), so that an owner without threads
 * runs its work the same way. */
void lstm__pool_run(pool *workers, pool_fn fn, void *context);

/* For the tests: how lstm__pool_run() hands work over. LATE has the caller
 * run every part before the workers hear of the call, as when they are not
 * running, which starts a solo period; SOLO runs every call on the caller
 * alone. Neither may change a result's bits. */
typedef enum pool_force { POOL_FORCE_NONE, POOL_FORCE_LATE, POOL_FORCE_SOLO } pool_force;
void lstm__pool_force(pool *workers, pool_force force);

/* What a pool has done, for the tests and for measuring (docs/scheduling.md). */
typedef struct pool_stats {
    uint64_t calls;        /* handed over to the workers */
    uint64_t caller_parts; /* parts beyond part 0 that the caller ran itself */
    uint64_t waits;        /* calls whose caller then waited for a worker's part */
    uint64_t solo_periods; /* times the workers were found late */
    uint64_t solo_calls;   /* calls run on the caller alone */
} pool_stats;
pool_stats lstm__pool_stats(const pool *workers);

/* The share [first, last) of [0, count) that part `part` of `parts` takes:
 * contiguous, in whole units of `unit` (the last may be short), the same
 * for the same arguments. */
void lstm__pool_share(size_t count, size_t unit, size_t part, size_t parts, size_t *first,
                      size_t *last);

/* Works on rows [first, last) of some per-step work. */
typedef void (*rows_fn)(void *context, size_t first, size_t last);

/*
 * Runs fn over rows [0, rows), split into contiguous ranges across the
 * pool's threads when there is enough work (rows x cost_per_row elements),
 * else on the calling thread alone. workers may be NULL.
 */
void lstm__run_rows(pool *workers, size_t rows, size_t cost_per_row, rows_fn fn, void *context);

#endif /* LSTM_POOL_H */
