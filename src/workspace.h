/*
 * The workspace's private state. One arena holds every buffer of a call;
 * lstm__workspace_prepare() carves it into the regions below for a given mode and
 * shape, growing it first if needed. Nothing else allocates.
 *
 * Rows are "packed" as in PyTorch's PackedSequence: the sequences are sorted
 * by length, longest first, so that the n_t sequences still running at step
 * t are the first n_t rows; step t's rows follow step t-1's, and a region of
 * T*B rows holds every (step, sequence) pair that exists.
 */
#ifndef LSTM_WORKSPACE_H
#define LSTM_WORKSPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pool.h"
#include "schedule.h"
#include "lstm/model.h"

/* Which sequences run at which step, in sorted order. */
typedef struct batch_plan {
    size_t seq_len;   /* T */
    size_t batch;     /* B */
    size_t rows;      /* packed rows: the sum of the lengths */
    bool batch_first; /* the caller's x, y, dx and dy are [B][T][...] */
    size_t *order;    /* [B] sorted row r is batch entry order[r] */
    size_t *length;   /* [B] length of sorted row r, non-increasing */
    size_t *active;   /* [T + 1] n_t, rows running at step t; n_T = 0 */
    size_t *offset;   /* [T + 1] first packed row of step t; offset[T] = rows */
} batch_plan;

/*
 * c_{t-1} of sorted row r at step t in a training layout (cells holds c_0 in
 * its first B rows, then c_t of every step packed). The forward direction
 * continues from step t - 1; the reverse direction from step t + 1, except
 * for the rows that start at step t (their own last step), which begin from
 * c_0.
 */
static inline const float *plan_previous_cell(const batch_plan *plan, const float *cells,
                                              size_t hidden, size_t direction, size_t t, size_t r)
{
    const size_t B = plan->batch;
    if (direction == 0)
        return t == 0 ? cells + r * hidden : cells + (B + plan->offset[t - 1] + r) * hidden;
    if (t + 1 < plan->seq_len && r < plan->active[t + 1])
        return cells + (B + plan->offset[t + 1] + r) * hidden;
    return cells + r * hidden;
}

/* The time step a direction's forward pass runs s-th: t = s forward, and
 * T - 1 - s in the reverse direction (direction 1). Its backward pass runs
 * them in the opposite order: plan_step(plan, 1 - direction, s). */
static inline size_t plan_step(const batch_plan *plan, size_t direction, size_t s)
{
    return direction == 1 ? plan->seq_len - 1 - s : s;
}

/*
 * Runs fn on groups of whole sequences, one per thread of the pool: each a
 * contiguous range [first, last) of the sorted rows with about the same
 * number of steps (the rows are sorted longest first, so equal counts of
 * rows would give the first group the most work). The same groups for the
 * same plan and thread count.
 */
void lstm__plan_run_groups(struct pool *workers, const batch_plan *plan, rows_fn fn, void *context);

/* Hands out 64-byte aligned regions of an arena, or only counts them when
 * base is NULL (a size query); overflow is set when the sizes overflow. */
typedef struct carver {
    unsigned char *base;
    size_t used;
    bool overflow;
} carver;

/* The next region of count x cols elements of element_size bytes (NULL
 * when only counting). */
void *lstm__carve(carver *c, size_t count, size_t cols, size_t element_size);

/* The per-step buffers of one layer and direction (training keeps one set
 * per layer and direction; inference one per direction, reused by layers). */
typedef struct direction_buffers {
    float *stacked;   /* [rows][K]   S_t = [h_{t-1}, x_t], packed */
    float *gates;     /* train [rows][4H] activated i, f, g, o, then dA;
                         infer [B][4H] one step, or hoisted_gate_rows()
                         rows when x_t W_x^T is hoisted
                         (lstm__schedule_hoist_input()) */
    float *cells;     /* train [B + rows][H]: c_0, then c_t packed;
                         infer [B][H] running c */
    float *projected; /* with P: train [rows][H], infer [B][H]: o * tanh(c_t) */
} direction_buffers;

#include "model_internal.h"

/* What a network's head packed in a reduced precision at the start of the
 * scratch memory is (network.c), or all 0: nothing kept. */
typedef struct kept_head {
    uint64_t identity;   /* the network's model's */
    uint64_t generation; /* of the head's parameters (head_internal.h) */
    lstm_precision precision;
    const void *memory; /* the scratch memory it is in */
} kept_head;

struct lstm_workspace {
    lstm_model shape; /* the sizes of the models it serves; no parameters */
    void *arena;
    size_t capacity; /* bytes of arena */

    batch_plan plan;
    direction_buffers *directions; /* [L * D], set by lstm__workspace_prepare */
    float *layer_out;              /* [rows][D R] the current layer's output, packed */
    float *packed_weight;          /* W of the direction running, packed for the per-step
                                      products (gemm.h): forward B^T, backward B */
    float *packed_projection;      /* W_hr likewise, with P */
    void *quantized;               /* reduced precision: the rows of a product, rounded or
                                      quantized (lowp.h); in bf16 training also the packing
                                      of S for dW */
    struct pool *workers;          /* threads for the per-step products, or NULL */
    lstm_precision precision;      /* of inference's products (lstm_workspace_set_precision()) */
    lstm_precision training_precision; /* of training's (lstm_workspace_set_training_precision()) */
    /* backward scratch (training only) */
    float *dlayer_out;       /* [rows][D R] dL/d(layer output); shares layer_out's memory */
    float *dlayer_in;        /* [rows][D R] dL/d(previous layer's output) */
    float *dprojected;       /* [rows][P] dL/dh_t of every step, for dW_hr */
    float *dh;               /* [B][R] running dL/dh */
    float *dc;               /* [B][H] running dL/dc */
    float *dstacked;         /* [B][K] [dh_{t-1}, dx_t] of one step */
    float *dcell_out;        /* [B][H] dL/d(o * tanh(c_t)) of one step, with P */
    float *gradient_scratch; /* packings for the weight-gradient products (gemm.h);
                                before them, hoisted dx rows (backward.c) */

    /* Dropout: the seed, the training calls since it was set, and the key
     * of the masks of the training forward held. */
    uint64_t dropout_seed;
    uint64_t dropout_calls;
    uint64_t dropout_key;

    /* Training state: set by a training forward, consumed by backward: the
     * identity of the model it ran (0 when none is held: identities start
     * at 1). */
    uint64_t trained_identity;
    /* The same for a network's training forward on top of the model's: its
     * model's identity (lstm/network.h: the network owns that model alone),
     * 0 when none is held. Every forward call and backward drops it, as
     * trained_identity. */
    uint64_t trained_network;

    /* Memory of the calls above the model (network.c): grown by
     * lstm__workspace_scratch(), never shrunk, and apart from the arena so
     * that the model's calls may grow the arena without moving it. */
    void *scratch;
    size_t scratch_capacity; /* bytes */

    /* Packed weights kept from one inference call to the next
     * (lstm_workspace_keep_weights()), or NULL: every layer and direction's W
     * and W_hr, packed as run_direction() packs them, for the model
     * generation kept_generation (0 when they are not packed yet: models'
     * generations start at 1) and batch kept_batch. */
    float *kept_weights;
    uint64_t kept_generation;
    size_t kept_batch;
    /* With kept weights, a network's head packed in a reduced precision
     * too (network.c): in the scratch memory, which only a network's calls
     * use; all 0 when none. */
    kept_head kept_head;
};

/* The gates an inference pass that hoists holds: a chunk of whole steps
 * (schedule_hoist_chunk()), at most every row. */
static inline size_t hoisted_gate_rows(size_t rows, size_t batch)
{
    const size_t chunk = schedule_hoist_chunk(batch);
    return rows < chunk ? rows : chunk;
}

/* Floats of one layer and direction's packed weights among the kept ones:
 * W, then W_hr with P, in float32; or W_h, W_x, then W_hr in a reduced
 * precision (enough for either). */
size_t lstm__workspace_kept_block_floats(const lstm_model *model, const layer_block *block);

/* Bytes of one layer and direction's weights packed in a reduced precision:
 * W_h (4H x R), W_x (4H x I_l) and, with P, W_hr (P x H), one after another. */
size_t lstm__workspace_lowp_block_bytes(const lstm_model *model, const layer_block *block,
                                        lstm_precision precision);

/*
 * For an inference call: *kept receives the packings kept between calls, of
 * every block one after another (NULL when the workspace keeps none), and
 * *ready whether they hold this model's weights of its current generation
 * for batch B already. Otherwise the call packs them there, then calls
 * lstm__workspace_kept_weights_done().
 */
void lstm__workspace_kept_weights(lstm_workspace *workspace, const lstm_model *model, size_t batch,
                                  float **kept, bool *ready);
void lstm__workspace_kept_weights_done(lstm_workspace *workspace, const lstm_model *model,
                                       size_t batch);

/*
 * *out receives at least bytes (>= 1) of scratch memory, 64-byte aligned:
 * the workspace's own when it is large enough, else a new block (the old
 * one kept until lstm__workspace_scratch_done()). LSTM_E_NOMEM.
 */
lstm_status lstm__workspace_scratch(lstm_workspace *workspace, size_t bytes, void **out);

/* Ends a call's use of lstm__workspace_scratch()'s block: a new block
 * becomes the workspace's when the call succeeded and is freed when it
 * failed, so that a failed call leaves the workspace's memory as it was. */
void lstm__workspace_scratch_done(lstm_workspace *workspace, void *scratch, size_t bytes,
                                  bool succeeded);

/* LSTM_E_ARG unless every length is in [1, T] (lengths may be NULL). */
lstm_status lstm__workspace_check_lengths(const size_t *lengths, size_t seq_len, size_t batch);

/* LSTM_E_SHAPE unless the workspace was created for a model of model's shape,
 * which its carving depends on. */
lstm_status lstm__workspace_check_model(const lstm_workspace *workspace, const lstm_model *model);

/*
 * Checks T, B and the lengths, sizes the regions for mode, grows the arena
 * if it is too small (keeping the old one on failure), sets the region
 * pointers and builds the batch plan. Drops any training state.
 */
lstm_status lstm__workspace_prepare(lstm_workspace *workspace, const lstm_model *model,
                                    lstm_mode mode, size_t seq_len, size_t batch,
                                    const size_t *lengths);

#endif /* LSTM_WORKSPACE_H */
