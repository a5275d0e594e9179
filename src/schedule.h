/*
 * How the passes are scheduled, apart from the products themselves
 * (gemm.h): whether the input's share of the per-step products leaves the
 * recurrence, and whether and how the workspace's threads share a piece of
 * work, by splitting each product, by panels of hidden units through every
 * step, or by groups of whole sequences. On the library's kernel none of
 * these choices changes a bit of a result: every product sums each element
 * in one order whatever the split (gemm.h). They change only the time. On
 * the BLAS (LSTM_STEP_PRODUCTS=blas, gemm.h) the library's threads never
 * touch a product and every pass hoists. Each threshold was
 * measured on one machine; docs/scheduling.md gives the numbers and the
 * conditions, and is the place to start when moving one.
 */
#ifndef LSTM_SCHEDULE_H
#define LSTM_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>

struct pool;

/*
 * Whether a pass whose steps have at most `batch` rows, with per-step
 * products of n_out (4H) outputs over depth (H + I), takes the input's
 * share of its products out of the recurrence. Split as S_t W^T =
 * h_{t-1} W_h^T + x_t W_x^T, the x part of many steps is one product over
 * all their rows, which reuses each panel of W_x for every row, and each
 * step streams only W_h (4H x H). That pays where a step's product is
 * bound by streaming the packed weights: with few rows, and in inference
 * with W too large for the caches to keep between steps. Training gains
 * nothing from the latter (the backward's hoisted dx costs what the
 * forward's saves), so it keeps its stacked products. On the kernel the
 * results are the same to the bit either way. On the BLAS (gemm.h) every
 * pass hoists.
 */
bool lstm__schedule_hoist_input(size_t batch, size_t n_out, size_t depth, bool training);

/* Rows the hoisted products take at a time: the backward's dx = dA W_x
 * (through a scratch of so many rows), and in inference the forward's
 * X W_x^T, a chunk of whole steps at a time, so with at least `batch`.
 * Enough rows for the kernel to reuse each panel many times, few enough
 * for the chunk's gates to stay small. */
#define SCHEDULE_HOIST_ROWS ((size_t)256)

/* The rows of the depth of a weight gradient dW += dA^T S that a bf16
 * backward pass rounds and packs at once (backward.c): each block's
 * dA^T and S stay in the L2 of the machine measured while their product
 * runs. */
#define SCHEDULE_GRADIENT_ROWS ((size_t)256)

static inline size_t schedule_hoist_chunk(size_t batch)
{
    return batch > SCHEDULE_HOIST_ROWS ? batch : SCHEDULE_HOIST_ROWS;
}

/* Whether packing n_out output columns over depth is split by panels
 * across the pool's threads (false without workers). */
bool lstm__schedule_packing_threads_pay(const struct pool *workers, size_t n_out, size_t depth);

/* Whether splitting a product of n rows, n_out outputs over depth, by
 * panels across the pool's threads pays for the hand-over (false without
 * workers). */
bool lstm__schedule_threads_pay(const struct pool *workers, size_t n, size_t n_out, size_t depth);

/* Whether a weight gradient's C (m x n) += A^T B over depth rows is split
 * by rows of C across the pool's threads (false without workers). */
bool lstm__schedule_gradient_threads_pay(const struct pool *workers, size_t m, size_t n,
                                         size_t depth);

/* Whether the threads should each take whole panels of `units` hidden
 * units through every step of a pass whose per-step product is n x n_out
 * over depth: units in whole panels, at least one panel per thread, each
 * thread's share of the packed weights small enough to stay in its core's
 * cache, and a product that pays for the hand-over. */
bool lstm__schedule_units_pay(const struct pool *workers, size_t units, size_t n, size_t n_out,
                              size_t depth);

/* The pool that shares the work of each step of a pass (the elementwise
 * work, and the products where lstm__schedule_threads_pay() says so):
 * workers, or NULL on the BLAS, where the calling thread does it between
 * the BLAS's calls, which keep the BLAS's own threads busy. */
struct pool *lstm__schedule_step_workers(struct pool *workers);

/*
 * Whether the threads should each take a group of whole sequences (batch
 * rows) through every step of a pass, each with all of the packed weights,
 * rather than share each step: the groups need no hand-over between steps,
 * and each sequence's h_t stays in its own core's cache. It pays when every
 * core's cache holds the packed weights (n_out x depth) and every thread
 * gets enough rows.
 */
bool lstm__schedule_sequences_pay(const struct pool *workers, size_t batch, size_t n_out,
                                  size_t depth);

#endif /* LSTM_SCHEDULE_H */
