/*
 * The scheduling thresholds (see schedule.h). Each constant's comment says
 * what it trades; the measurements that placed it, and the machine, are in
 * docs/scheduling.md under the constant's name.
 */
#include "gemm.h"
#include "pool.h"
#include "schedule.h"

/* Up to this many rows a step's product is bound by streaming the packed
 * weights, not by arithmetic: each panel row loaded serves only these few
 * rows. The gain shrinks as the rows grow towards a kernel block. */
#define HOIST_MAX_BATCH ((size_t)4)

/* Packed weights above this many bytes are hoisted in inference: the
 * caches no longer keep them from one step to the next, so every step
 * reads all of W from memory, and reading only W_h per step saves more
 * than the separate product costs. */
#define HOIST_MIN_PACKED_BYTES ((size_t)12 << 20)

/* On the BLAS (gemm.h) always: each call packs its share of W again, so
 * a step pays for every weight it multiplies by, whatever the batch, and
 * the input's share becomes one large product, which a BLAS runs at its
 * best. */
bool lstm__schedule_hoist_input(size_t batch, size_t n_out, size_t depth, bool training)
{
    return !GEMM_OWN_KERNEL || batch <= HOIST_MAX_BATCH ||
           (!training &&
            lstm__gemm_packed_size(n_out, depth) * sizeof(float) > HOIST_MIN_PACKED_BYTES);
}

static size_t panel_count(size_t n_out)
{
    return (n_out + GEMM_PANEL - 1) / GEMM_PANEL;
}

/* Below this many floats a packing stays on one thread: it is over in
 * microseconds, and a split would save less than the hand-over costs. */
#define PARALLEL_MIN_PACKING ((size_t)1 << 15)

bool lstm__schedule_packing_threads_pay(const struct pool *workers, size_t n_out, size_t depth)
{
    return workers != NULL && n_out * depth >= PARALLEL_MIN_PACKING &&
           panel_count(n_out) >= lstm__pool_threads(workers);
}

/*
 * Below this much work a product stays on one thread: handing work over
 * costs about as much as a small product. Work counts rows in whole blocks
 * of 4, since with fewer rows (B = 1, 2, 3) the kernel is bound by loading
 * the panels, which costs as much as for a full block; split across
 * threads, each thread's share of the weights also stays in its own core's
 * cache from one step to the next.
 */
#define PARALLEL_MIN_WORK ((size_t)1 << 18)

/* On the BLAS (gemm.h) no product is split, nor run beside another on the
 * pool's threads: the BLAS splits each call across its own threads, as
 * many as the pool has, and would otherwise contend with them for the
 * cores. */
bool lstm__schedule_threads_pay(const struct pool *workers, size_t n, size_t n_out, size_t depth)
{
    const size_t rows_costed = (n + 3) / 4 * 4;
    return GEMM_OWN_KERNEL && workers != NULL && rows_costed * n_out * depth >= PARALLEL_MIN_WORK &&
           panel_count(n_out) >= lstm__pool_threads(workers);
}

/* On the BLAS the pool's threads, spinning for the next step's hand-over,
 * would take the cores from the BLAS's threads, and the BLAS's, spinning
 * for its next call, would take them from the pool's cells. The cells are
 * a small part of a step next to its product. */
struct pool *lstm__schedule_step_workers(struct pool *workers)
{
    return GEMM_OWN_KERNEL ? workers : NULL;
}

bool lstm__schedule_gradient_threads_pay(const struct pool *workers, size_t m, size_t n,
                                         size_t depth)
{
    return workers != NULL && m * n * depth >= PARALLEL_MIN_WORK;
}

/* Each thread's share of the packed weights, for units to pay: up to a
 * core's L2 (the size of the machine measured), where it stays from one
 * step to the next. With more, one product split by panels, then the
 * cells split by rows, takes less time, increasingly so as W grows. */
#define UNITS_MAX_SHARE_BYTES ((size_t)1 << 20)

bool lstm__schedule_units_pay(const struct pool *workers, size_t units, size_t n, size_t n_out,
                              size_t depth)
{
    const size_t share =
        lstm__gemm_packed_size(n_out, depth) * sizeof(float) / lstm__pool_threads(workers);
    return units % GEMM_PANEL == 0 && units / GEMM_PANEL >= lstm__pool_threads(workers) &&
           share <= UNITS_MAX_SHARE_BYTES && lstm__schedule_threads_pay(workers, n, n_out, depth);
}

/* Packed weights up to half a core's L2 (of the machine measured) stay in
 * it from step to step alongside a group's rows; with more, sharing each
 * step by units is faster. */
#define SEQUENCES_MAX_PACKED_BYTES ((size_t)512 << 10)
/* A group has at least a 4-row block for the kernel. */
#define SEQUENCES_MIN_ROWS ((size_t)4)

/* Never on the BLAS, whose calls would run side by side, each on the
 * BLAS's threads (see lstm__schedule_threads_pay()). */
bool lstm__schedule_sequences_pay(const struct pool *workers, size_t batch, size_t n_out,
                                  size_t depth)
{
    return GEMM_OWN_KERNEL && workers != NULL &&
           batch >= SEQUENCES_MIN_ROWS * lstm__pool_threads(workers) &&
           lstm__gemm_packed_size(n_out, depth) * sizeof(float) <= SEQUENCES_MAX_PACKED_BYTES;
}
