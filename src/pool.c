/* Persistent worker threads: a generation counter starts work, a next
 * counter hands its parts out, a remaining counter ends it; the threads
 * spin on the first and the last briefly before sleeping on a condition. */
#if defined(__linux__)
#  define _GNU_SOURCE /* sched_getcpu, sched_setaffinity */
#else
#  define _POSIX_C_SOURCE 200809L /* sched_yield, clock_gettime */
#endif

/* POSIX threads rather than C11 <threads.h>: ThreadSanitizer understands
 * only the former, and the pool is what it most needs to see. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

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

/*
 * Handing work over when the machine is busy (docs/scheduling.md, "Two
 * threads on a busy machine"). With another process on one of two cores,
 * three threads want two cores, and a worker is often not running when a
 * call starts. With the parts fixed to threads, the caller then waited for
 * it, up to a scheduler time slice each time: a (100, 16, 512, 512) training
 * pass took 6.4 times its one-thread time with the competitor pinned to
 * the other core (issue 25 had measured 25 ms for a 1.3 ms pass at B = 1).
 *
 * So parts are claimed, not assigned: the caller runs part 0, then claims,
 * through the counter `next`, any part no worker has started, and waits
 * only for parts a worker has begun. A part's result does not depend on the
 * thread that runs it (each part writes its own outputs, chosen by its part
 * number alone), so the bits are the same whoever runs it.
 *
 * Claiming alone is not enough: a worker that was not running when a call
 * started is runnable, and once it runs it spins for the next call on a
 * core the caller or the competitor needs, and may be descheduled inside
 * the next part it claims, which the caller must then wait for. So when the
 * workers are late (the caller ran a part beyond its own, in LATE_CALLS
 * calls in a row, none of them asleep at the start: waking takes a while on
 * any machine), the following calls run on the caller alone, every part in
 * turn, for a "solo period", and the workers go to sleep. The first period
 * lasts SOLO_MIN_NS; if the workers are late again soon after its end (the
 * calls were handed over for less than SOLO_RESET times its length), the
 * next lasts twice as long, up to SOLO_MAX_NS. On a machine that stays busy
 * the probes (the calls handed over between periods, each of which may cost
 * one wait for a descheduled worker) thus become rare; a machine that
 * becomes quiet gets its threads back within SOLO_MAX_NS; and on a quiet
 * machine an occasional late worker costs one short period.
 */
#define SOLO_MIN_NS ((uint64_t)1000000)   /* 1 ms */
#define SOLO_MAX_NS ((uint64_t)128000000) /* 128 ms */
#define SOLO_RESET 8
/* A worker late in one call only, on a quiet machine, is usually one that
 * the BLAS's own threads kept off its core for a moment (measured: the
 * quiet passes of docs/scheduling.md then began a solo period every
 * hundred or so calls; with two calls in a row, a few per run). */
#define LATE_CALLS 2

typedef struct worker {
    struct pool *owner;
} worker;

struct pool {
    size_t threads; /* the caller's included; also the parts of every call */
    size_t started; /* workers running */
    pthread_t handles[MAX_THREADS];
    worker workers[MAX_THREADS];
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    atomic_uint_fast64_t generation;
    atomic_size_t next;      /* the next part to claim; >= threads: none left */
    atomic_size_t remaining; /* parts of this call not finished */
    atomic_size_t sleepers;  /* threads in pthread_cond_wait, or about to be */
    atomic_int caller_cpu;   /* where lstm__pool_run()'s caller runs, or -1 */
    atomic_bool stop;
    pool_fn fn;
    void *context;
    /* The caller's alone (one caller at a time). */
    bool solo;            /* calls run on the caller alone until solo_end */
    uint64_t solo_end;    /* CLOCK_MONOTONIC ns: of this solo period, or the last */
    uint64_t solo_length; /* ns, of the last solo period; 0: none yet */
    size_t late_calls;    /* calls in a row whose workers were late */
    pool_force force;     /* lstm__pool_force() */
    pool_stats stats;
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

static uint64_t now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
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

/*
 * Runs parts of the current call until none is left to claim; returns how
 * many. A thread that claims part p of a later call than the one it woke
 * for (it was descheduled in between) runs that call's part: the caller
 * wrote fn and context before it published `next`, which the claim reads.
 * The thread that finishes the last part wakes the caller if it sleeps.
 */
static void run_part(pool *owner, size_t part)
{
    owner->fn(owner->context, part, owner->threads);
    if (atomic_fetch_sub(&owner->remaining, 1) == 1)
        wake_sleepers(owner, &owner->done);
}

static size_t claim_parts(pool *owner)
{
    size_t ran = 0;
    for (size_t part; (part = atomic_fetch_add(&owner->next, 1)) < owner->threads; ran++)
        run_part(owner, part);
    return ran;
}

/* The caller's share of a call: part 0, always its own (each thread then
 * finds its share of the weights in its own core's cache from one step to
 * the next), then any part no worker has claimed. */
static size_t run_callers_parts(pool *owner)
{
    run_part(owner, 0);
    return 1 + claim_parts(owner);
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
        claim_parts(owner);
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
    atomic_init(&workers->next, threads);
    atomic_init(&workers->remaining, 0);
    atomic_init(&workers->sleepers, 0);
    atomic_init(&workers->caller_cpu, -1);
    atomic_init(&workers->stop, false);
    workers->solo = false;
    workers->solo_end = 0;
    workers->solo_length = 0;
    workers->late_calls = 0;
    workers->force = POOL_FORCE_NONE;
    workers->stats = (pool_stats){0};
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
    for (size_t n = 0; n + 1 < threads; n++) {
        workers->workers[n] = (worker){workers};
        if (lstm__fault_point() ||
            pthread_create(&workers->handles[n], NULL, worker_main, &workers->workers[n]) != 0) {
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

void lstm__pool_force(pool *workers, pool_force force)
{
    if (workers != NULL)
        workers->force = force;
}

pool_stats lstm__pool_stats(const pool *workers)
{
    return workers == NULL ? (pool_stats){0} : workers->stats;
}

/* Every part in turn on the calling thread: the same parts, the same bits. */
static void run_solo(pool *workers, pool_fn fn, void *context)
{
    for (size_t part = 0; part < workers->threads; part++)
        fn(context, part, workers->threads);
    workers->stats.solo_calls++;
}

/* The workers were late: the calls of the next solo period run solo. */
static void begin_solo(pool *workers)
{
    const uint64_t now = now_ns();
    /* Late again soon after the last solo period (the calls since were
     * handed over for less than SOLO_RESET times its length): the machine
     * is still busy, so wait longer before the next probe. A worker woken
     * for a probe often runs for a few milliseconds before the competitor
     * takes its core back, so "soon" must be longer than that. */
    if (workers->solo_length != 0 && now - workers->solo_end < SOLO_RESET * workers->solo_length)
        workers->solo_length =
            workers->solo_length * 2 < SOLO_MAX_NS ? workers->solo_length * 2 : SOLO_MAX_NS;
    else
        workers->solo_length = SOLO_MIN_NS;
    workers->solo_end = now + workers->solo_length;
    workers->solo = true;
    workers->late_calls = 0;
    workers->stats.solo_periods++;
}

void lstm__pool_run(pool *workers, pool_fn fn, void *context)
{
    if (workers == NULL) {
        fn(context, 0, 1);
        return;
    }
    if (workers->force == POOL_FORCE_SOLO || (workers->solo && now_ns() < workers->solo_end)) {
        run_solo(workers, fn, context);
        return;
    }
    workers->solo = false; /* a probe, if it was: hand over again */
    workers->fn = fn;
    workers->context = context;
    /* A sleeping worker takes a while to wake; its lateness is no sign of a
     * busy machine. */
    const bool asleep = atomic_load(&workers->sleepers) > 0;
    atomic_store(&workers->caller_cpu, current_cpu());
    atomic_store(&workers->remaining, workers->threads);
    atomic_store(&workers->next, 1);
    /* Forced late (the tests): the caller runs every part before the
     * workers know of the call, then wakes them to find nothing left. */
    const bool forced_late = workers->force == POOL_FORCE_LATE;
    size_t ran = forced_late ? run_callers_parts(workers) : 0;
    atomic_fetch_add(&workers->generation, 1);
    wake_sleepers(workers, &workers->wake);
    if (!forced_late)
        ran = run_callers_parts(workers);
    const bool late = ran > 1 && (!asleep || forced_late);
    workers->late_calls = late ? workers->late_calls + 1 : 0;
    if (atomic_load(&workers->remaining) != 0)
        workers->stats.waits++;
    WAIT_UNTIL(workers, atomic_load(&workers->remaining) == 0, done);
    workers->stats.calls++;
    workers->stats.caller_parts += ran - 1;
    if (workers->late_calls >= LATE_CALLS || (late && forced_late))
        begin_solo(workers);
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
