/* Persistent worker threads: a generation counter starts work, a remaining
 * counter ends it; both are spun on briefly before sleeping on a condition. */
#define _POSIX_C_SOURCE 200809L /* sched_yield */

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <threads.h>

#include "alloc.h"
#include "pool.h"

enum { MAX_THREADS = 16, SPINS = 200 };

typedef struct worker {
    struct pool *owner;
    size_t part;
} worker;

struct pool {
    size_t threads; /* the caller's included */
    size_t started; /* workers running */
    thrd_t handles[MAX_THREADS];
    worker workers[MAX_THREADS];
    mtx_t lock;
    cnd_t wake, done;
    atomic_uint_fast64_t generation;
    atomic_size_t remaining;
    atomic_bool stop;
    pool_fn fn;
    void *context;
};

/* Spins on a condition, then sleeps on cond until it holds. */
#define WAIT_UNTIL(owner, cond, condvar)                              \
    do {                                                              \
        for (int spins_ = 0; !(cond) && spins_ < SPINS; spins_++)     \
            sched_yield(); /* let the BLAS's own threads run */      \
        if (!(cond)) {                                                \
            mtx_lock(&(owner)->lock);                                 \
            while (!(cond))                                           \
                cnd_wait(&(owner)->condvar, &(owner)->lock);          \
            mtx_unlock(&(owner)->lock);                               \
        }                                                             \
    } while (0)

static int worker_main(void *arg)
{
    worker *self = arg;
    pool *owner = self->owner;
    uint_fast64_t seen = 0;
    for (;;) {
        WAIT_UNTIL(owner, atomic_load(&owner->generation) != seen || atomic_load(&owner->stop),
                   wake);
        if (atomic_load(&owner->stop))
            return 0;
        seen = atomic_load(&owner->generation);
        owner->fn(owner->context, self->part, owner->threads);
        if (atomic_fetch_sub(&owner->remaining, 1) == 1) {
            mtx_lock(&owner->lock);
            cnd_signal(&owner->done);
            mtx_unlock(&owner->lock);
        }
    }
}

static void stop_workers(pool *workers)
{
    mtx_lock(&workers->lock);
    atomic_store(&workers->stop, true);
    cnd_broadcast(&workers->wake);
    mtx_unlock(&workers->lock);
    for (size_t n = 0; n < workers->started; n++)
        thrd_join(workers->handles[n], NULL);
}

pool *pool_create(size_t threads)
{
    if (threads < 2)
        return NULL;
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    pool *workers = mem_alloc(sizeof *workers);
    if (workers == NULL)
        return NULL;
    workers->threads = threads;
    workers->started = 0;
    atomic_init(&workers->generation, 0);
    atomic_init(&workers->remaining, 0);
    atomic_init(&workers->stop, false);
    if (mtx_init(&workers->lock, mtx_plain) != thrd_success) {
        mem_free(workers);
        return NULL;
    }
    if (cnd_init(&workers->wake) != thrd_success || cnd_init(&workers->done) != thrd_success) {
        mtx_destroy(&workers->lock);
        mem_free(workers);
        return NULL;
    }
    for (size_t part = 1; part < threads; part++) {
        workers->workers[part - 1] = (worker){workers, part};
        if (thrd_create(&workers->handles[part - 1], worker_main,
                        &workers->workers[part - 1]) != thrd_success) {
            pool_destroy(workers); /* joins the ones started */
            return NULL;
        }
        workers->started++;
    }
    return workers;
}

void pool_destroy(pool *workers)
{
    if (workers == NULL)
        return;
    stop_workers(workers);
    cnd_destroy(&workers->wake);
    cnd_destroy(&workers->done);
    mtx_destroy(&workers->lock);
    mem_free(workers);
}

size_t pool_threads(const pool *workers)
{
    return workers == NULL ? 1 : workers->threads;
}

void pool_run(pool *workers, pool_fn fn, void *context)
{
    workers->fn = fn;
    workers->context = context;
    atomic_store(&workers->remaining, workers->threads - 1);
    mtx_lock(&workers->lock);
    atomic_fetch_add(&workers->generation, 1);
    cnd_broadcast(&workers->wake);
    mtx_unlock(&workers->lock);
    fn(context, 0, workers->threads);
    WAIT_UNTIL(workers, atomic_load(&workers->remaining) == 0, done);
}

/* Below this many elements a step's elementwise work stays on one thread. */
#define PARALLEL_MIN_ELEMENTS ((size_t)1 << 14)

typedef struct rows_job {
    size_t rows;
    rows_fn fn;
    void *context;
} rows_job;

static void rows_part(void *context, size_t part, size_t parts)
{
    const rows_job *job = context;
    const size_t first = job->rows * part / parts, last = job->rows * (part + 1) / parts;
    if (first < last)
        job->fn(job->context, first, last);
}

void run_rows(pool *workers, size_t rows, size_t cost_per_row, rows_fn fn, void *context)
{
    if (workers == NULL || rows < 2 || rows * cost_per_row < PARALLEL_MIN_ELEMENTS) {
        fn(context, 0, rows);
        return;
    }
    rows_job job = {rows, fn, context};
    pool_run(workers, rows_part, &job);
}
