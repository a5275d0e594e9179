/*
 * A network's embedding and head in a reduced precision (lstm_precision):
 * what its inference in bf16 or int8 looks up and multiplies, and what a
 * quantized network file stores of them (io_network.c). Both use the one
 * rounding below, so that a network saved in a precision and loaded again
 * runs in it to the bits it ran before.
 *
 * bf16: every value rounded as lowp.h rounds weights (to nearest, ties to
 * even, subnormals to zero). int8: each row (an embedding's vocabulary
 * entry, a head's output unit) quantized symmetrically as lowp.h quantizes
 * a row of weights, s = max |w| / 127 and q = round(w / s) in [-127, 127],
 * the row's values then q s in float32; a row an int8 file stored
 * (network_internal.h) keeps the file's q and s while its float32 values
 * are still q s.
 *
 * The embedding: a lookup in the precision gives the LSTM the row's values
 * in it (its bf16 values, or q s), which the LSTM's products then round or
 * quantize per row as they do any input. The head: z = x W^T + b with W
 * packed in the precision (lowp.h: at each call, or kept from an earlier
 * one, network.c) and x rounded or quantized per row, sums in float32, b
 * in float32.
 */
#ifndef LSTM_NETWORK_LOWP_H
#define LSTM_NETWORK_LOWP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "network_internal.h"
#include "workspace.h"

/*
 * Row `row` of a matrix in int8: its scale s, and its q (cols of them) when
 * q is not NULL; the stored ones while the row's float32 values are still
 * their q s, else quantized from the values.
 */
float lstm__network_int8_row(const stored_rows *stored, size_t row, const float *values,
                             size_t cols, int8_t *q);

/* The embedding's rows of ids [count], looked up into x [count][E], made
 * the precision's values (nothing to do in float32). */
void lstm__network_embedded_in(const lstm_network *network, lstm_precision precision, size_t count,
                               const int64_t *ids, float *x);

/* Memory of the head's product in a reduced precision over `rows` rows. */
typedef struct head_scratch {
    void *packing; /* W packed (lowp.h) */
    int8_t *q;     /* int8 with stored rows: W's q [O][K], else NULL */
    float *scales; /* with q: W's s [O] */
    void *rows;    /* the rows of x rounded or quantized */
} head_scratch;

/* Carves (or, with c->base NULL, only counts) that memory, the packing
 * first: at the carver's start, its place depends on the precision and the
 * network alone. */
void lstm__network_head_carve(carver *c, const lstm_network *network, lstm_precision precision,
                              size_t rows, head_scratch *scratch);

/*
 * z [rows][O] = x [rows][K] W^T + b in a reduced precision, split across
 * the pool's threads where that pays (workers may be NULL); W packed first
 * unless `packed` says the packing holds it already.
 * LSTM_E_NONFINITE when x holds NaN or infinity, as lstm_dense_forward().
 */
lstm_status lstm__network_head_forward(const lstm_network *network, lstm_precision precision,
                                       struct pool *workers, const head_scratch *scratch,
                                       bool packed, size_t rows, const float *x, float *z);

#endif /* LSTM_NETWORK_LOWP_H */
