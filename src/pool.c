/* Persistent worker threads: a generation counter starts work, a remaining
 * counter ends it; both are spun on briefly before sleeping on a condition. */
#if defined(__linux__)
#  define _GNU_SOURCE /* sched_getcpu, sched_setaffinity */
#else
#  define _POSIX_C_SOURCE 200809L /* sched_yield */
#endif

/* POSIX threads rather than C11 <threads.h>: ThreadSanitizer understands
 * only the former, and the pool is what it most needs to see. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "alloc.h"
#include "pool.h"

/*
 * Waiting, in three stages: PAUSES busy polls (longer than one step's work,
 * so that a worker is awake for the next step's hand-over), then YIELDS
 * polls that give the core to other runnable threads (the BLAS's own, say),
 * then sleep on a condition variable. Waking a sleeping thread can cost as
 * much as a whole step of a small LSTM, on a virtual machine above all
 * (docs/scheduling.md).
 */
enum { MAX_THREADS = 16, PAUSES = 1 << 12, YIELDS = 200 };

/* A hint to the core that this is a busy-wait loop. */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

typedef struct worker {
    struct pool *owner;
    size_t part;
} worker;

struct pool {
    size_t threads; /* the caller's included */
    size_t started; /* workers running */
    pthread_t handles[MAX_THREADS];
    worker workers[MAX_THREADS];
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    atomic_uint_fast64_t generation;
    atomic_size_t remaining;
    atomic_size_t sleepers; /* threads in pthread_cond_wait, or about to be */
    atomic_int caller_cpu;  /* where lstm__pool_run()'s caller runs, or -1 */
    atomic_bool stop;
    pool_fn fn;
    void *context;
};

/* Polls a condition, then sleeps on condvar until it holds. */
#define WAIT_UNTIL(owner, cond, condvar) \
  do { \
    for (int spins_ = 0; !(cond) && spins_ < PAUSES; spins_++) \
      cpu_relax(); \
    for (int spins_ = 0; !(cond) && spins_ < YIELDS; spins_++) \
      sched_yield(); \
    if (!(cond)) { \
      pthread_mutex_lock(&(owner)->lock); \
      atomic_fetch_add(&(owner)->sleepers, 1); \
      while (!(cond)) \
        pthread_cond_wait(&(owner)->condvar, &(owner)->lock); \
      atomic_fetch_sub(&(owner)->sleepers, 1); \
      pthread_mutex_unlock(&(owner)->lock); \
    } \
  } while (0)

/*
 * Wakes the sleepers on condvar after the caller has made their condition
 * true. The sleeper counts itself before its last look at the condition and
 * the caller looks at the count after changing it (both sequentially
 * consistent), so either the sleeper sees the change or the caller sees the
 * sleeper; the lock then holds the broadcast until the sleeper is waiting.
 * Without sleepers, which is the case between the steps of a pass, no lock
 * is taken.
 */
static void wake_sleepers(pool *owner, pthread_cond_t *condvar)
{
    if (atomic_load(&owner->sleepers) == 0)
        return;
    pthread_mutex_lock(&owner->lock);
    pthread_cond_broadcast(condvar);
    pthread_mutex_unlock(&owner->lock);
}

/* The CPU this thread runs on, or -1 where that cannot be known. */
static int current_cpu(void)
{
#if defined(__linux__)
    return sched_getcpu();
#else
    return -1;
#endif
}

/*
 * Moves this worker off the caller's CPU if it shares it. Linux may wake a
 * sleeping worker on the CPU of the thread that woke it, and then leave
 * both there, taking turns, for tens of milliseconds while the other CPU
 * idles, which can double a pass's time (docs/scheduling.md). Taking the
 * caller's CPU out of the worker's affinity for a moment migrates it at
 * once; the affinity is then given back whole.
 */
static void leave_cpu(int cpu)
{
#if defined(__linux__)
    if (cpu < 0 || sched_getcpu() != cpu)
        return;
    cpu_set_t allowed, elsewhere;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0)
        return;
    elsewhere = allowed;
    CPU_CLR((size_t)cpu, &elsewhere);
    if (CPU_COUNT(&elsewhere) > 0 && sched_setaffinity(0, sizeof elsewhere, &elsewhere) == 0)
        sched_setaffinity(0, sizeof allowed, &allowed);
#else
    (void)cpu;
#endif
}

static void *worker_main(void *arg)
{
    worker *self = arg;
    pool *owner = self->owner;
    uint_fast64_t seen = 0;
    for (;;) {
        WAIT_UNTIL(owner, atomic_load(&owner->generation) != seen || atomic_load(&owner->stop),
                   wake);
        if (atomic_load(&owner->stop))
            return NULL;
        seen = atomic_load(&owner->generation);
        leave_cpu(atomic_load(&owner->caller_cpu));
        owner->fn(owner->context, self->part, owner->threads);
        if (atomic_fetch_sub(&owner->remaining, 1) == 1)
            wake_sleepers(owner, &owner->done);
    }
}

static void stop_workers(pool *workers)
{
    pthread_mutex_lock(&workers->lock);
    atomic_store(&workers->stop, true);
    pthread_cond_broadcast(&workers->wake);
    pthread_mutex_unlock(&workers->lock);
    for (size_t n = 0; n < workers->started; n++)
        pthread_join(workers->handles[n], NULL);
}

pool *lstm__pool_create(size_t threads)
{
    if (threads < 2)
        return NULL;
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    pool *workers = lstm__mem_alloc(sizeof *workers);
    if (workers == NULL)
        return NULL;
    workers->threads = threads;
    workers->started = 0;
    atomic_init(&workers->generation, 0);
    atomic_init(&workers->remaining, 0);
    atomic_init(&workers->sleepers, 0);
    atomic_init(&workers->caller_cpu, -1);
    atomic_init(&workers->stop, false);
    if (pthread_mutex_init(&workers->lock, NULL) != 0) {
        lstm__mem_free(workers);
        return NULL;
    }
    if (pthread_cond_init(&workers->wake, NULL) != 0) {
        pthread_mutex_destroy(&workers->lock);
        lstm__mem_free(workers);
        return NULL;
    }
    if (pthread_cond_init(&workers->done, NULL) != 0) {
        pthread_cond_destroy(&workers->wake);
        pthread_mutex_destroy(&workers->lock);
        lstm__mem_free(workers);
        return NULL;
    }
    for (size_t part = 1; part < threads; part++) {
        workers->workers[part - 1] = (worker){workers, part};
        if (lstm__fault_point() || pthread_create(&workers->handles[part - 1], NULL, worker_main,
                                                  &workers->workers[part - 1]) != 0) {
            lstm__pool_destroy(workers); /* joins the ones started */
            return NULL;
        }
        workers->started++;
    }
    return workers;
}

void lstm__pool_destroy(pool *workers)
{
    if (workers == NULL)
        return;
    stop_workers(workers);
    pthread_cond_destroy(&workers->wake);
    pthread_cond_destroy(&workers->done);
    pthread_mutex_destroy(&workers->lock);
    lstm__mem_free(workers);
}

size_t lstm__pool_threads(const pool *workers)
{
    return workers == NULL ? 1 : workers->threads;
}

void lstm__pool_run(pool *workers, pool_fn fn, void *context)
{
    if (workers == NULL) {
        fn(context, 0, 1);
        return;
    }
    workers->fn = fn;
    workers->context = context;
    atomic_store(&workers->caller_cpu, current_cpu());
    atomic_store(&workers->remaining, workers->threads - 1);
    atomic_fetch_add(&workers->generation, 1);
    wake_sleepers(workers, &workers->wake);
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

void lstm__pool_share(size_t count, size_t unit, size_t part, size_t parts, size_t *first,
                      size_t *last)
{
    const size_t units = (count + unit - 1) / unit;
    *first = units * part / parts * unit;
    *last = units * (part + 1) / parts * unit;
    *first = *first < count ? *first : count;
    *last = *last < count ? *last : count;
}

static void rows_part(void *context, size_t part, size_t parts)
{
    const rows_job *job = context;
    size_t first, last;
    lstm__pool_share(job->rows, 1, part, parts, &first, &last);
    if (first < last)
        job->fn(job->context, first, last);
}

void lstm__run_rows(pool *workers, size_t rows, size_t cost_per_row, rows_fn fn, void *context)
{
    if (workers == NULL || rows < 2 || rows * cost_per_row < PARALLEL_MIN_ELEMENTS) {
        fn(context, 0, rows);
        return;
    }
    rows_job job = {rows, fn, context};
    lstm__pool_run(workers, rows_part, &job);
}
