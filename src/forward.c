/*
 * The forward pass of a network, for inference and for training.
 *
 * Layers run one after another; within a layer, each direction runs over
 * the whole sequence. Per step t the stacked matrix S_t = [h_{t-1}, x_t] of
 * the n_t sequences still running (rows sorted by length, see workspace.h)
 * meets the weights W (4H rows of K = R + I_l) in one matrix product:
 * A_t = S_t W^T, all four gates' pre-activations at once (W is packed
 * once per pass for it, see gemm.h). The x part of every
 * S_t is placed once before the loop; step t writes h_t straight into the
 * h part of the next step's S.
 *
 * With up to four rows per step (lstm__schedule_hoist_input()), streaming
 * W is the cost of a step, so the product is split at the line between h
 * and x: A_t = x_t W_x^T + h_{t-1} W_h^T. The x halves of every step are one
 * product over all the rows, before the loop, into the gates; each step
 * then adds only h_{t-1} W_h^T, streaming half of W or less. Either way
 * each pre-activation is one chain of multiply-adds over x_t's columns,
 * then h_{t-1}'s (gemm.h), so the bits are the same: a sequence's result
 * does not depend on the batch it runs in.
 *
 * In a reduced precision (lstm_precision: bf16 or int8 in inference, bf16
 * in training) the products run on W_h, W_x and W_hr packed in it
 * (lowp.h), the input's share always hoisted, and each product's rows are
 * rounded or quantized just before it: a chunk of steps' x, then each
 * step's h_{t-1} and projection input. Everything else is the float32
 * pass; training keeps S_t, the gates and c_t in float32 as ever.
 *
 * With threads, each takes a group of whole sequences through every step
 * when the packed W stays in a core's cache
 * (lstm__schedule_sequences_pay()): the groups need nothing from each
 * other. Otherwise the threads share each
 * step, each taking whole panels of hidden units (units_part()) or, with a
 * projection, a share of each product and of the rows of the cells.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "activation.h"
#include "args.h"
#include "compiler.h"
#include "blas.h"
#include "check.h"
#include "dropout.h"
#include "error.h"
#include "gemm.h"
#include "lowp.h"
#include "matrix.h"
#include "pool.h"
#include "schedule.h"
#include "model_internal.h"
#include "workspace.h"
#include "lstm/train.h"

/*
 * The cell for one row and `count` (up to ACT_BLOCK) of its hidden units,
 * in two passes over the row (cell_forward_kernel()): cell_state_block()
 * gives i, f, g and c_t, then cell_output_block() o and h_t. Every
 * pointer is offset to the first of those units, and the gate blocks lie
 * H apart. gates holds a = S W^T on entry and the activated i, f, g, o on
 * exit (training keeps them for backward). c_prev and c_next may be the
 * same buffer (inference updates c in place). peephole is [p_i; p_f; p_o]
 * (with `peep`). out and out2 receive o * tanh(c_t): h_t, or the input of
 * the projection (they may be the same). fused: the activations'
 * multiply-adds (activation.h).
 * Each block is read into local arrays and written back after, so that
 * nothing a loop writes can alias what it reads: GCC then vectorises it
 * whole, every value in registers from the load to the store, with the
 * same bits as a pass per operation.
 */
LSTM__ALWAYS_INLINE void cell_state_block(bool fused, bool peep, size_t count, size_t H,
                                          const float *bias, const float *peephole, float *gates,
                                          const float *c_prev, float *c_next)
{
    float a[3][ACT_BLOCK], c_in[ACT_BLOCK], c_out[ACT_BLOCK];
    for (size_t q = 0; q < 3; q++)
        memcpy(a[q], gates + q * H, count * sizeof(float));
    memcpy(c_in, c_prev, count * sizeof(float));
    for (size_t j = 0; j < count; j++) {
        /* a += b;  a_i += p_i * c_{t-1}, a_f += p_f * c_{t-1} */
        float a_i = a[0][j] + bias[j], a_f = a[1][j] + bias[H + j];
        const float a_g = a[2][j] + bias[2 * H + j];
        if (peep) {
            a_i += peephole[j] * c_in[j];
            a_f += peephole[H + j] * c_in[j];
        }
        /* i = sigmoid(a_i), f = sigmoid(a_f), g = tanh(a_g) */
        const float i = act_sigmoid(fused, a_i), f = act_sigmoid(fused, a_f);
        const float g = act_tanh(fused, a_g);
        a[0][j] = i;
        a[1][j] = f;
        a[2][j] = g;
        /* c_t = f * c_{t-1} + i * g */
        c_out[j] = f * c_in[j] + i * g;
    }
    for (size_t q = 0; q < 3; q++)
        memcpy(gates + q * H, a[q], count * sizeof(float));
    memcpy(c_next, c_out, count * sizeof(float));
}

LSTM__ALWAYS_INLINE void cell_output_block(bool fused, bool peep, size_t count, size_t H,
                                           const float *bias, const float *peephole, float *gates,
                                           const float *c_next, float *out, float *out2)
{
    float a_o[ACT_BLOCK], c[ACT_BLOCK], h[ACT_BLOCK];
    memcpy(a_o, gates + 3 * H, count * sizeof(float));
    memcpy(c, c_next, count * sizeof(float));
    for (size_t j = 0; j < count; j++) {
        /* o = sigmoid(a_o + b_o [+ p_o * c_t]) */
        float a = a_o[j] + bias[3 * H + j];
        if (peep)
            a += peephole[2 * H + j] * c[j];
        a_o[j] = act_sigmoid(fused, a);
        /* h_t = o * tanh(c_t) */
        h[j] = a_o[j] * act_tanh(fused, c[j]);
    }
    memcpy(gates + 3 * H, a_o, count * sizeof(float));
    memcpy(out, h, count * sizeof(float));
    memcpy(out2, h, count * sizeof(float));
}

/*
 * The cells of `units` units of a row, ACT_BLOCK at a time (a fixed
 * count, so that GCC vectorises them even at -O2; the rest through the
 * same code): c_t for every block, then h_t. A block in one pass was a
 * single chain of dependent operations, through the gates' activations,
 * c_t and tanh(c_t), longer than the core could overlap with the next
 * block's. Two passes give the core independent work to overlap, with the
 * same bits (docs/scheduling.md: the timings).
 */
LSTM__ALWAYS_INLINE void cell_forward_kernel(bool fused, bool peep, size_t units, size_t H,
                                             const float *bias, const float *peephole, float *gates,
                                             const float *c_prev, float *c_next, float *out,
                                             float *out2)
{
    size_t j = 0;
    for (; j + ACT_BLOCK <= units; j += ACT_BLOCK)
        cell_state_block(fused, peep, ACT_BLOCK, H, bias + j, peep ? peephole + j : NULL, gates + j,
                         c_prev + j, c_next + j);
    if (j < units)
        cell_state_block(fused, peep, units - j, H, bias + j, peep ? peephole + j : NULL, gates + j,
                         c_prev + j, c_next + j);
    for (j = 0; j + ACT_BLOCK <= units; j += ACT_BLOCK)
        cell_output_block(fused, peep, ACT_BLOCK, H, bias + j, peep ? peephole + j : NULL,
                          gates + j, c_next + j, out + j, out2 + j);
    if (j < units)
        cell_output_block(fused, peep, units - j, H, bias + j, peep ? peephole + j : NULL,
                          gates + j, c_next + j, out + j, out2 + j);
}

/* One row's cells for `units` units: h_t into out and, unless next_h is
 * NULL, into the h part of the next step's S as well. */
LSTM__ALWAYS_INLINE void cell_forward_any(size_t units, size_t H, const float *bias,
                                          const float *peephole, float *gates, const float *c_prev,
                                          float *c_next, float *out, float *next_h)
{
    float *out2 = next_h != NULL ? next_h : out;
    const bool fused = cell_fused(), peep = peephole != NULL;
    if (fused && peep)
        cell_forward_kernel(true, true, units, H, bias, peephole, gates, c_prev, c_next, out, out2);
    else if (fused)
        cell_forward_kernel(true, false, units, H, bias, NULL, gates, c_prev, c_next, out, out2);
    else if (peep)
        cell_forward_kernel(false, true, units, H, bias, peephole, gates, c_prev, c_next, out,
                            out2);
    else
        cell_forward_kernel(false, false, units, H, bias, NULL, gates, c_prev, c_next, out, out2);
}

LSTM__DISPATCH(cell_forward, cell_forward_any,
               (size_t units, size_t H, const float *bias, const float *peephole, float *gates,
                const float *c_prev, float *c_next, float *out, float *next_h),
               (units, H, bias, peephole, gates, c_prev, c_next, out, next_h))

/* Everything one layer and direction's pass reads and writes. */
typedef struct direction_pass {
    const lstm_model *model;
    lstm_workspace *workspace;
    const batch_plan *plan;
    const layer_block *block;
    direction_buffers *buffers;
    size_t layer, direction;
    bool keep;                /* training: keep every step's gates and c_t */
    lstm_precision precision; /* of the products: the workspace's for inference or training */
    float *kept;              /* this block's packed weights kept between calls, or NULL */
    bool kept_ready;          /* kept holds them packed already */
    const float *layer_in;    /* layer > 0: the layer below's output, [rows][D R] */
    float *layer_out;         /* [rows][D R]; this direction writes columns d R .. */
    const float *h0;          /* [B][R] in batch order, or NULL */
    const float *c0;          /* [B][H] in batch order, or NULL */
    float dropout;            /* p applied to this layer's input (training, layer > 0), or 0 */
    uint64_t dropout_key;
} direction_pass;

/* c_{t-1} of sorted row r at step t (plan_previous_cell() in training). */
static const float *previous_cell(const direction_pass *pass, size_t t, size_t r)
{
    const size_t H = pass->model->hidden_size;
    if (!pass->keep)
        return pass->buffers->cells + r * H; /* the running c, updated in place */
    return plan_previous_cell(pass->plan, pass->buffers->cells, H, pass->direction, t, r);
}

/* The first step of sorted row r in processing order: 0 forward, its own
 * last step in reverse. */
static size_t first_step(const direction_pass *pass, size_t r)
{
    return pass->direction == 0 ? 0 : pass->plan->length[r] - 1;
}

/* The elementwise work of one step, for rows split across threads. Without
 * a projection h_t also goes straight into the h part of the next step's
 * S, for the first next_rows rows (next_stacked: their first, or NULL). */
typedef struct step_cells {
    const direction_pass *pass;
    size_t t, first; /* the sorted row of gates_t's first row */
    float *gates_t, *out_t, *projected_t;
    const float *bias, *peephole;
    float *next_stacked;
    size_t next_rows;
} step_cells;

static void cell_rows(void *context, size_t first, size_t last)
{
    const step_cells *job = context;
    const direction_pass *pass = job->pass;
    const lstm_model *m = pass->model;
    const batch_plan *plan = pass->plan;
    const size_t H = m->hidden_size, G = 4 * H, B = plan->batch;
    const size_t K = pass->block->stacked_size, out_cols = m->directions * m->state_size;
    for (size_t i = first; i < last; i++) {
        const size_t r = job->first + i; /* sorted row */
        float *c_next = pass->buffers->cells + (pass->keep ? B + plan->offset[job->t] + r : r) * H;
        float *cell_out =
            job->projected_t != NULL ? job->projected_t + i * H : job->out_t + i * out_cols;
        float *next_h =
            job->next_stacked != NULL && i < job->next_rows ? job->next_stacked + i * K : NULL;
        cell_forward(H, H, job->bias, job->peephole, job->gates_t + i * G,
                     previous_cell(pass, job->t, r), c_next, cell_out, next_h);
    }
}

/*
 * A whole step for the hidden units [u0, u0 + units) of every row: their
 * four gates' columns of the product, their cells, and their h_t into the
 * output and the next step's S. Threads taking disjoint units need one
 * hand-over per step, and each finds the gates it computed in its own
 * cache. Needs H in whole panels (so that each gate's columns of W are
 * panels of their own) and no projection (which needs every unit's cell).
 */
typedef struct step_units {
    const direction_pass *pass;
    size_t t, n, next_rows;
    size_t depth; /* of the product: K, or R when the x part is hoisted */
    const float *stacked_t, *packed, *bias, *peephole;
    float *gates_t, *out_t, *next_stacked; /* next_stacked: the first of next_rows, or NULL */
    const lowp_weights *reduced_h;         /* in a reduced precision: W_h packed, else NULL */
    const lowp_rows *h_rows;               /* and h_{t-1}, quantized */
} step_units;

static void units_part(void *context, size_t part, size_t parts)
{
    const step_units *job = context;
    const direction_pass *pass = job->pass;
    const lstm_model *m = pass->model;
    const size_t H = m->hidden_size, G = 4 * H, K = pass->block->stacked_size;
    const size_t out_cols = m->directions * m->state_size;
    size_t u0, end;
    lstm__pool_share(H, GEMM_PANEL, part, parts, &u0, &end);
    const size_t units = end - u0;
    if (units == 0)
        return;
    /* a_q = S_t W_q^T for this part's units of each gate q, or
     * a_q += h_{t-1} W_hq^T when the x part is in a_q already */
    for (size_t q = 0; q < 4; q++) {
        const float *panels = job->packed + (q * H + u0) * job->depth;
        if (job->reduced_h != NULL) {
            const lowp_weights units_q = lstm__lowp_columns(job->reduced_h, q * H + u0, units);
            lstm__lowp_product(NULL, true, job->h_rows, &units_q, job->gates_t + q * H + u0, G);
        } else if (job->depth < K)
            lstm__gemm_packed_add(job->n, units, job->depth, job->stacked_t, K, panels,
                                  job->gates_t + q * H + u0, G);
        else
            lstm__gemm_packed(job->n, units, K, m->state_size, job->stacked_t, K, panels,
                              job->gates_t + q * H + u0, G);
    }
    for (size_t r = 0; r < job->n; r++) {
        const size_t B = pass->plan->batch;
        float *c_next =
            pass->buffers->cells + (pass->keep ? B + pass->plan->offset[job->t] + r : r) * H;
        float *next_h =
            job->next_stacked != NULL && r < job->next_rows ? job->next_stacked + r * K + u0 : NULL;
        cell_forward(units, H, job->bias + u0, job->peephole ? job->peephole + u0 : NULL,
                     job->gates_t + r * G + u0, previous_cell(pass, job->t, r) + u0, c_next + u0,
                     job->out_t + r * out_cols + u0, next_h);
    }
}

/* What every step of a pass uses, set up once by run_direction(). */
typedef struct pass_setup {
    const direction_pass *pass;
    bool hoist;            /* the x part of the products is out of the loop */
    bool by_units;         /* threads take panels of units through each step */
    size_t depth;          /* of the per-step product: K, or R when hoisting */
    size_t s_begin, s_end; /* the steps to run, in the pass's order */
    size_t gates_origin;   /* the packed row whose gates the buffer starts with
                              (hoisting in inference: a chunk of steps) */
    const float *bias, *peephole, *packed, *packed_projection;
    /* A reduced precision: the products' weights, and the memory of their
     * rows, rounded or quantized */
    bool reduced;
    lowp_weights reduced_h, reduced_x, reduced_projection;
    unsigned char *quantized;
    size_t quantized_row_bytes; /* each group of sequences quantizes its rows from
                                   `first` of these on (lstm__lowp_row_bytes()) */
    bool by_sequences;          /* threads take groups of whole sequences */
} pass_setup;

/*
 * The steps [s_begin, s_end) of a pass for the sorted rows [first, last):
 * a group of whole sequences, which needs nothing from the other rows.
 * workers share each step's work (NULL: the calling thread does it all).
 */
static void run_steps(const pass_setup *setup, struct pool *workers, size_t first, size_t last)
{
    const direction_pass *pass = setup->pass;
    const lstm_model *m = pass->model;
    const batch_plan *plan = pass->plan;
    const size_t H = m->hidden_size, R = m->state_size, P = m->proj_size, G = 4 * H;
    const size_t T = plan->seq_len, K = pass->block->stacked_size;
    const size_t out_cols = m->directions * R, column = pass->direction * R;
    const bool reverse = pass->direction == 1;
    direction_buffers *buf = pass->buffers;

    for (size_t s = setup->s_begin; s < setup->s_end; s++) {
        const size_t t = plan_step(plan, pass->direction, s);
        if (plan->active[t] <= first)
            continue; /* none of the group's sequences runs at step t */
        /* the group's running rows: sorted rows first .. first + n - 1 */
        const size_t n = (plan->active[t] < last ? plan->active[t] : last) - first;
        const size_t row = plan->offset[t] + first;
        const float *stacked_t = buf->stacked + row * K;
        float *gates_t =
            buf->gates + (pass->keep || setup->hoist ? row - setup->gates_origin : first) * G;
        float *out_t = pass->layer_out + row * out_cols + column;
        float *projected_t = P != 0 ? buf->projected + (pass->keep ? row : first) * H : NULL;

        /* The group's rows that run at the next step, into whose h part of
         * S h_t goes: forward, those among the first n_{t+1}; reverse, all
         * n (none at the last step). */
        const bool last_step = reverse ? t == 0 : t + 1 == T;
        const size_t next = reverse ? t - !last_step : t + !last_step;
        float *next_stacked = NULL;
        size_t next_rows = 0;
        if (!last_step && plan->active[next] > first) {
            next_rows = (plan->active[next] < last ? plan->active[next] : last) - first;
            next_rows = next_rows < n ? next_rows : n;
            next_stacked = buf->stacked + (plan->offset[next] + first) * K;
        }

        /* h_{t-1} rounded or quantized, for every thread's share */
        lowp_rows h_rows;
        unsigned char *quantized =
            setup->reduced ? setup->quantized + first * setup->quantized_row_bytes : NULL;
        if (setup->reduced)
            lstm__lowp_quantize(pass->precision, n, R, stacked_t, K, quantized, &h_rows);
        /* With threads, each takes whole panels of units through the step */
        if (setup->by_units) {
            step_units job = {pass,
                              t,
                              n,
                              next_rows,
                              setup->depth,
                              stacked_t,
                              setup->packed,
                              setup->bias,
                              setup->peephole,
                              gates_t,
                              out_t,
                              next_stacked,
                              setup->reduced ? &setup->reduced_h : NULL,
                              &h_rows};
            lstm__pool_run(workers, units_part, &job);
            continue;
        }
        /* A_t = S_t W^T: every gate of every running sequence, one product
         * summed from x_t's columns (A_t += h_{t-1} W_h^T when A_t holds
         * x_t W_x^T already) */
        if (setup->reduced)
            lstm__lowp_product(workers, true, &h_rows, &setup->reduced_h, gates_t, G);
        else if (setup->hoist)
            lstm__gemm_packed_add_threads(workers, n, G, R, stacked_t, K, setup->packed, gates_t,
                                          G);
        else
            lstm__gemm_packed_threads(workers, n, G, K, R, stacked_t, K, setup->packed, gates_t, G);
        step_cells cells = {pass,
                            t,
                            first,
                            gates_t,
                            out_t,
                            projected_t,
                            setup->bias,
                            setup->peephole,
                            P == 0 ? next_stacked : NULL,
                            next_rows};
        lstm__run_rows(workers, n, G, cell_rows, &cells);
        /* LSTMP: h_t = W_hr (o * tanh(c_t)), then into the next step's S */
        if (P != 0 && setup->reduced) {
            lowp_rows projected_rows;
            lstm__lowp_quantize(pass->precision, n, H, projected_t, H, quantized, &projected_rows);
            lstm__lowp_product(workers, false, &projected_rows, &setup->reduced_projection, out_t,
                               out_cols);
        } else if (P != 0) {
            lstm__gemm_packed_threads(workers, n, P, H, 0, projected_t, H, setup->packed_projection,
                                      out_t, out_cols);
        }
        if (P != 0 && next_stacked != NULL)
            copy_block(next_stacked, K, out_t, out_cols, next_rows, R);
    }
}

/* A thread's group of whole sequences, through every step. */
static void sequence_group(void *context, size_t first, size_t last)
{
    run_steps(context, NULL, first, last);
}

/*
 * Inference with the x part hoisted: the steps a chunk at a time, each
 * chunk's A_x = X W_x^T (its whole steps, at most schedule_hoist_chunk(B)
 * rows) computed into the gates first, so that the gates never hold more.
 * In a reduced precision the threads may then take groups of whole
 * sequences through the chunk's steps: one hand-over per chunk, not per
 * step.
 */
static void run_hoisted_chunks(pass_setup *setup, const float *packed_x)
{
    const direction_pass *pass = setup->pass;
    const batch_plan *plan = pass->plan;
    const size_t T = plan->seq_len, B = plan->batch, R = pass->model->state_size;
    const size_t G = 4 * pass->model->hidden_size, K = pass->block->stacked_size;
    const size_t I = pass->block->input_size, capacity = schedule_hoist_chunk(B);
    const bool reverse = pass->direction == 1;
    struct pool *workers = pass->workspace->workers;
    for (size_t s0 = 0, s1; s0 < T; s0 = s1) {
        size_t rows = 0;
        for (s1 = s0; s1 < T; s1++) {
            const size_t n = plan->active[plan_step(plan, pass->direction, s1)];
            if (rows + n > capacity)
                break;
            rows += n;
        }
        /* the chunk's steps are consecutive, and so are their rows */
        const size_t origin = plan->offset[reverse ? T - s1 : s0];
        const float *x_chunk = pass->buffers->stacked + origin * K + R;
        if (setup->reduced) {
            lowp_rows x_rows;
            lstm__lowp_quantize(pass->precision, rows, I, x_chunk, K, setup->quantized, &x_rows);
            lstm__lowp_product(workers, false, &x_rows, &setup->reduced_x, pass->buffers->gates, G);
        } else {
            lstm__gemm_packed_threads(workers, rows, G, I, 0, x_chunk, K, packed_x,
                                      pass->buffers->gates, G);
        }
        setup->s_begin = s0;
        setup->s_end = s1;
        setup->gates_origin = origin;
        if (setup->by_sequences)
            lstm__plan_run_groups(workers, plan, sequence_group, setup);
        else
            run_steps(setup, lstm__schedule_step_workers(workers), 0, B);
    }
}

/*
 * A reduced precision's W_h, W_x and W_hr, one after another at memory:
 * described in setup, and packed there unless kept from an earlier call;
 * from the float32 parameters, or from the weights a quantized file stored
 * in this precision while they are the model's (model_stored()).
 */
static void pack_reduced(const direction_pass *pass, pass_setup *setup, unsigned char *memory)
{
    const lstm_model *m = pass->model;
    const lstm_precision precision = pass->precision;
    const size_t H = m->hidden_size, R = m->state_size, P = m->proj_size, G = 4 * H;
    const size_t K = pass->block->stacked_size, I = pass->block->input_size;
    setup->reduced_h = lstm__lowp_weights_at(precision, G, R, memory);
    memory += lstm__lowp_weights_bytes(precision, G, R);
    setup->reduced_x = lstm__lowp_weights_at(precision, G, I, memory);
    memory += lstm__lowp_weights_bytes(precision, G, I);
    setup->reduced_projection = lstm__lowp_weights_at(precision, P, H, memory);
    if (pass->kept_ready)
        return;
    const float *weight = m->params + pass->block->weight_offset;
    lowp_source h = {.values = weight, .ld = K}, x = {.values = weight + R, .ld = K};
    lowp_source w_hr = {.values = m->params + pass->block->projection_offset, .ld = H};
    const stored_block *stored =
        model_stored(m, precision, pass->layer * m->directions + pass->direction);
    if (stored != NULL && precision == LSTM_PRECISION_INT8) {
        h.int8 = stored->weight;
        h.scales = stored->weight_scales;
        x.int8 = h.int8 + R;
        x.scales = h.scales + G; /* W_x's row scales follow W_h's */
        w_hr.int8 = stored->projection;
        w_hr.scales = stored->projection_scales;
    } else if (stored != NULL) {
        h.bf16 = stored->weight;
        x.bf16 = h.bf16 + R;
        w_hr.bf16 = stored->projection;
    }
    struct pool *workers = pass->workspace->workers;
    lstm__lowp_pack(workers, &h, &setup->reduced_h);
    lstm__lowp_pack(workers, &x, &setup->reduced_x);
    if (P != 0)
        lstm__lowp_pack(workers, &w_hr, &setup->reduced_projection);
}

static void run_direction(const direction_pass *pass)
{
    const lstm_model *m = pass->model;
    const batch_plan *plan = pass->plan;
    const size_t H = m->hidden_size, R = m->state_size, P = m->proj_size, G = 4 * H;
    const size_t T = plan->seq_len, B = plan->batch, K = pass->block->stacked_size;
    const float *weight = m->params + pass->block->weight_offset;
    const float *projection = m->params + pass->block->projection_offset;
    direction_buffers *buf = pass->buffers;
    /* W, then W_hr, packed for this call, or kept from an earlier one */
    float *packed = pass->kept != NULL ? pass->kept : pass->workspace->packed_weight;
    float *packed_x = packed + lstm__gemm_packed_size(G, R);
    float *packed_projection = pass->kept != NULL ? pass->kept + lstm__gemm_packed_size(G, K)
                                                  : pass->workspace->packed_projection;

    struct pool *workers = pass->workspace->workers;
    const bool reduced = pass->precision != LSTM_PRECISION_FP32;
    /* The per-step product's depth: all of S_t, or h_{t-1} alone. */
    const bool hoist = reduced || lstm__schedule_hoist_input(B, G, K, pass->keep);
    const size_t depth = hoist ? R : K, I = pass->block->input_size;
    /* (a reduced precision's W takes lstm__lowp_float_depth() floats per
     * column: its packing's size in the schedule's terms) */
    const bool by_sequences =
        reduced ? lstm__schedule_sequences_pay(workers, B, G,
                                               lstm__lowp_float_depth(pass->precision, K))
                : !hoist && lstm__schedule_sequences_pay(workers, B, G, K);
    pass_setup setup = {
        .pass = pass,
        .hoist = hoist,
        .by_units =
            !by_sequences && P == 0 &&
            lstm__schedule_units_pay(workers, H, B, G,
                                     reduced ? lstm__lowp_float_depth(pass->precision, R) : depth),
        .depth = depth,
        .s_begin = 0,
        .s_end = T,
        .gates_origin = 0,
        .bias = m->params + pass->block->bias_offset,
        .peephole = m->peephole ? m->params + pass->block->peephole_offset : NULL,
        .packed = packed,
        .packed_projection = packed_projection,
        .reduced = reduced,
        .quantized = pass->workspace->quantized,
        .quantized_row_bytes = reduced ? lstm__lowp_row_bytes(pass->precision, R > H ? R : H) : 0,
        .by_sequences = by_sequences,
    };

    /* W (and W_hr) packed once for all the steps of this pass: W_h^T then
     * W_x^T apart when hoisting, else all of W^T; in a reduced precision,
     * W_h, W_x and W_hr one after another. */
    if (reduced) {
        pack_reduced(pass, &setup, (unsigned char *)packed);
    } else if (!pass->kept_ready) {
        if (hoist) {
            lstm__gemm_pack_threads(workers, true, weight, K, G, R, packed);
            lstm__gemm_pack_threads(workers, true, weight + R, K, G, I, packed_x);
        } else {
            lstm__gemm_pack_threads(workers, true, weight, K, G, K, packed);
        }
        if (P != 0)
            lstm__gemm_pack_threads(workers, true, projection, H, P, H, packed_projection);
    }

    /* Each row starts from h_0 in the stacked matrix of its first step, and
     * from c_0 in the first B rows of cells. */
    for (size_t r = 0; r < B; r++) {
        const size_t b = plan->order[r];
        load_or_zero(buf->stacked + (plan->offset[first_step(pass, r)] + r) * K,
                     pass->h0 != NULL ? pass->h0 + b * R : NULL, R);
        load_or_zero(buf->cells + r * H, pass->c0 != NULL ? pass->c0 + b * H : NULL, H);
    }

    if (hoist && !pass->keep) {
        run_hoisted_chunks(&setup, packed_x);
        return;
    }
    /* Training keeps every step's gates: A_x = X W_x^T for every row at
     * once, or in a reduced precision a chunk of rows at a time through the
     * memory of their rounded x. */
    if (hoist && !reduced)
        lstm__gemm_packed_threads(workers, plan->rows, G, I, 0, buf->stacked + R, K, packed_x,
                                  buf->gates, G);
    for (size_t first = 0; hoist && reduced && first < plan->rows; first += SCHEDULE_HOIST_ROWS) {
        const size_t n =
            plan->rows - first < SCHEDULE_HOIST_ROWS ? plan->rows - first : SCHEDULE_HOIST_ROWS;
        lowp_rows x_rows;
        lstm__lowp_quantize(pass->precision, n, I, buf->stacked + first * K + R, K, setup.quantized,
                            &x_rows);
        lstm__lowp_product(workers, false, &x_rows, &setup.reduced_x, buf->gates + first * G, G);
    }
    if (by_sequences)
        lstm__plan_run_groups(workers, plan, sequence_group, &setup);
    else
        run_steps(&setup, lstm__schedule_step_workers(workers), 0, B);
}

/* Writes one layer and direction's final h and c, taken at each sequence's
 * own last step (forward) or first step (reverse), in batch order. */
static void write_final_states(const direction_pass *pass, float *hT, float *cT)
{
    const lstm_model *m = pass->model;
    const batch_plan *plan = pass->plan;
    const size_t H = m->hidden_size, R = m->state_size, B = plan->batch;
    const size_t out_cols = m->directions * R,
                 index = pass->layer * m->directions + pass->direction;
    for (size_t r = 0; r < B; r++) {
        const size_t b = plan->order[r];
        const size_t t = pass->direction == 0 ? plan->length[r] - 1 : 0;
        if (hT != NULL)
            memcpy(hT + (index * B + b) * R,
                   pass->layer_out + (plan->offset[t] + r) * out_cols + pass->direction * R,
                   R * sizeof(float));
        if (cT != NULL) {
            const float *c = pass->buffers->cells + (pass->keep ? B + plan->offset[t] + r : r) * H;
            memcpy(cT + (index * B + b) * H, c, H * sizeof(float));
        }
    }
}

/* Placing a layer's inputs, steps split across threads (place_inputs()). */
typedef struct input_steps {
    const direction_pass *pass;
    const float *x;
    atomic_size_t first_bad; /* the packed row of the first non-finite x, or SIZE_MAX */
} input_steps;

static void place_steps(void *context, size_t first, size_t last)
{
    input_steps *job = context;
    const direction_pass *pass = job->pass;
    const lstm_model *m = pass->model;
    const batch_plan *plan = pass->plan;
    const size_t T = plan->seq_len, B = plan->batch, R = m->state_size;
    const size_t K = pass->block->stacked_size, I = pass->block->input_size;
    const size_t out_cols = m->directions * R;
    const bool batch_first = plan->batch_first;
    const float keep_scale = 1.0f / (1.0f - pass->dropout);
    for (size_t t = first; t < last; t++) {
        for (size_t r = 0; r < plan->active[t]; r++) {
            const size_t row = plan->offset[t] + r, b = plan->order[r];
            float *x_part = pass->buffers->stacked + row * K + R;
            const float *below = pass->layer_in + row * out_cols;
            if (pass->layer == 0) {
                const float *x_row = job->x + sequence_row(batch_first, T, B, t, b) * I;
                if (lstm__copy_finite(x_part, x_row, I) == I)
                    continue;
                /* keep the least such row: the one a serial scan finds */
                size_t seen = atomic_load(&job->first_bad);
                while (row < seen && !atomic_compare_exchange_weak(&job->first_bad, &seen, row))
                    ;
                return;
            }
            if (pass->dropout == 0.0f) {
                memcpy(x_part, below, I * sizeof(float));
                continue;
            }
            /* inverted dropout on the layer below's output */
            for (size_t j = 0; j < I; j++)
                x_part[j] =
                    below[j] * dropout_factor(pass->dropout_key,
                                              dropout_index(pass->layer - 1, T, B, I, t, b, j),
                                              pass->dropout, keep_scale);
        }
    }
}

/*
 * Places the input of a layer into the x part of every S_t of a direction:
 * the caller's x for layer 0 (checked for NaN and infinity on the way,
 * padding never read), the previous layer's output for the others.
 */
static lstm_status place_inputs(const direction_pass *pass, const float *x)
{
    const batch_plan *plan = pass->plan;
    const size_t I = pass->block->input_size;
    input_steps job = {.pass = pass, .x = x};
    atomic_init(&job.first_bad, SIZE_MAX);
    lstm__run_rows(pass->workspace->workers, plan->seq_len, plan->batch * I, place_steps, &job);
    const size_t row = atomic_load(&job.first_bad);
    if (row == SIZE_MAX)
        return LSTM_OK;
    size_t t = 0;
    while (row >= plan->offset[t] + plan->active[t])
        t++;
    const size_t b = plan->order[row - plan->offset[t]];
    const bool batch_first = plan->batch_first;
    const float *x_row = x + sequence_row(batch_first, plan->seq_len, plan->batch, t, b) * I;
    const size_t bad = lstm__find_nonfinite(x_row, I);
    return lstm__fail(LSTM_E_NONFINITE, "x at step %zu of sequence %zu, feature %zu, is %g", t, b,
                      bad, (double)x_row[bad]);
}

/* Writing y, steps split across threads (write_output()). */
typedef struct output_steps {
    const lstm_model *model;
    const batch_plan *plan;
    const float *layer_out;
    float *y;
} output_steps;

static void output_rows(void *context, size_t first, size_t last)
{
    const output_steps *job = context;
    const batch_plan *plan = job->plan;
    const size_t T = plan->seq_len, B = plan->batch;
    const size_t out_cols = job->model->directions * job->model->state_size;
    const bool batch_first = plan->batch_first;
    for (size_t t = first; t < last; t++) {
        for (size_t r = 0; r < B; r++) {
            float *y_row = job->y + sequence_row(batch_first, T, B, t, plan->order[r]) * out_cols;
            if (r < plan->active[t])
                memcpy(y_row, job->layer_out + (plan->offset[t] + r) * out_cols,
                       out_cols * sizeof(float));
            else
                memset(y_row, 0, out_cols * sizeof(float));
        }
    }
}

/* y in the caller's layout from the last layer's packed output; zero past
 * each sequence's end. */
static void write_output(const lstm_model *m, lstm_workspace *workspace, float *y)
{
    const batch_plan *plan = &workspace->plan;
    output_steps job = {m, plan, workspace->layer_out, y};
    lstm__run_rows(workspace->workers, plan->seq_len, plan->batch * m->directions * m->state_size,
                   output_rows, &job);
}

static lstm_status forward_pass(const lstm_model *model, lstm_workspace *workspace, lstm_mode mode,
                                const lstm_sequences *sequences, const lstm_inputs *inputs,
                                const lstm_outputs *outputs)
{
    if (workspace != NULL) { /* any forward call ends the training state held */
        workspace->trained_identity = 0;
        workspace->trained_network = 0;
    }
    if (model == NULL || workspace == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", model == NULL ? "model" : "workspace");
    sequence_call call;
    lstm_status status = lstm__args_read_sequence_call(sequences, inputs, outputs, &call);
    if (status != LSTM_OK)
        return status;
    const float *x = call.inputs.x, *h0 = call.inputs.h0, *c0 = call.inputs.c0;
    float *y = call.outputs.y, *hT = call.outputs.hT, *cT = call.outputs.cT;
    if (x == NULL)
        return lstm__fail(LSTM_E_NULL, "inputs->x is NULL");
    const size_t T = call.sequences.steps, B = call.sequences.batch;
    status = lstm__workspace_prepare(workspace, model, mode, T, B, call.sequences.lengths);
    if (status != LSTM_OK)
        return status;
    workspace->plan.batch_first = lstm__args_batch_first(&call.sequences, model->config.flags);
    const size_t L = model->num_layers, D = model->directions;
    const size_t H = model->hidden_size, R = model->state_size;
    if ((status = lstm__check_finite("h0", h0, L * D * B * R)) != LSTM_OK ||
        (status = lstm__check_finite("c0", c0, L * D * B * H)) != LSTM_OK)
        return status;

    const bool keep = mode == LSTM_MODE_TRAIN;
    /* Inference that keeps its packed weights between calls
     * (lstm_workspace_keep_weights()) */
    float *kept = NULL;
    bool kept_ready = false;
    if (!keep)
        lstm__workspace_kept_weights(workspace, model, B, &kept, &kept_ready);
    size_t kept_offset = 0;
    /* Dropout acts in training only; each training call draws new masks. */
    const float dropout = keep ? (float)model->config.dropout : 0.0f;
    if (dropout > 0.0f)
        workspace->dropout_key = dropout_key(workspace->dropout_seed, workspace->dropout_calls);
    /* Where every sequence runs every step, time-major, y's rows are the
     * packed rows: the last layer writes its output there itself. */
    const bool y_in_place =
        y != NULL && workspace->plan.rows == T * B && !workspace->plan.batch_first;
    direction_pass passes[2];
    for (size_t layer = 0; layer < L; layer++) {
        /* Both directions read this layer's input before either overwrites
         * layer_out with its output. */
        for (size_t d = 0; d < D; d++) {
            const size_t index = layer * D + d;
            passes[d] = (direction_pass){
                .model = model,
                .workspace = workspace,
                .plan = &workspace->plan,
                .block = model_block(model, layer, d),
                .buffers = &workspace->directions[keep ? index : d],
                .layer = layer,
                .direction = d,
                .keep = keep,
                .precision = keep ? workspace->training_precision : workspace->precision,
                .kept = kept != NULL ? kept + kept_offset : NULL,
                .kept_ready = kept_ready,
                .layer_in = workspace->layer_out,
                .layer_out = layer + 1 == L && y_in_place ? y : workspace->layer_out,
                .h0 = h0 != NULL ? h0 + index * B * R : NULL,
                .c0 = c0 != NULL ? c0 + index * B * H : NULL,
                .dropout = layer > 0 ? dropout : 0.0f,
                .dropout_key = workspace->dropout_key,
            };
            kept_offset += lstm__workspace_kept_block_floats(model, passes[d].block);
            if ((status = place_inputs(&passes[d], x)) != LSTM_OK)
                return status;
        }
        for (size_t d = 0; d < D; d++) {
            run_direction(&passes[d]);
            write_final_states(&passes[d], hT, cT);
        }
    }
    if (y != NULL && !y_in_place)
        write_output(model, workspace, y);
    if (kept != NULL && !kept_ready)
        lstm__workspace_kept_weights_done(workspace, model, B);
    if (keep)
        workspace->trained_identity = model->identity;
    if (dropout > 0.0f) /* only a call that succeeded uses up its masks */
        workspace->dropout_calls++;
    return LSTM_OK;
}

LSTM_API lstm_status lstm_model_infer(const lstm_model *model, lstm_workspace *workspace,
                                      const lstm_sequences *sequences, const lstm_inputs *inputs,
                                      const lstm_outputs *outputs)
{
    return forward_pass(model, workspace, LSTM_MODE_INFER, sequences, inputs, outputs);
}

LSTM_API lstm_status lstm_model_train_forward(const lstm_model *model, lstm_workspace *workspace,
                                              const lstm_sequences *sequences,
                                              const lstm_inputs *inputs,
                                              const lstm_outputs *outputs)
{
    return forward_pass(model, workspace, LSTM_MODE_TRAIN, sequences, inputs, outputs);
}

/* The older, positional forms (LSTM_1.0). */

LSTM_API lstm_status lstm_model_forward(const lstm_model *model, lstm_workspace *workspace,
                                        size_t seq_len, size_t batch, const size_t *lengths,
                                        const float *x, const float *h0, const float *c0, float *y,
                                        float *hT, float *cT)
{
    const lstm_sequences sequences = {sizeof sequences, seq_len, batch, LSTM_LAYOUT_MODEL, lengths};
    const lstm_inputs inputs = {sizeof inputs, x, h0, c0};
    const lstm_outputs outputs = {sizeof outputs, y, hT, cT};
    return lstm_model_infer(model, workspace, &sequences, &inputs, &outputs);
}

LSTM_API lstm_status lstm_model_forward_train(const lstm_model *model, lstm_workspace *workspace,
                                              size_t seq_len, size_t batch, const size_t *lengths,
                                              const float *x, const float *h0, const float *c0,
                                              float *y, float *hT, float *cT)
{
    const lstm_sequences sequences = {sizeof sequences, seq_len, batch, LSTM_LAYOUT_MODEL, lengths};
    const lstm_inputs inputs = {sizeof inputs, x, h0, c0};
    const lstm_outputs outputs = {sizeof outputs, y, hT, cT};
    return lstm_model_train_forward(model, workspace, &sequences, &inputs, &outputs);
}
