/*
 * Backpropagation through time, mirroring the forward pass.
 *
 * Layers are visited from the last to the first, and each direction's steps
 * in the reverse of the order the forward pass ran them. Per step t the
 * elementwise pass turns dh_t and dc_t of the n_t running sequences into the
 * gate pre-activation gradients dA_t (written over the gates the forward pass
 * kept, which are not needed again), then one product gives
 * [dh_{t-1}, dx_t] = dA_t W for all of them. After the loop,
 * dW += sum_t dA_t^T S_t is a single product over every packed row,
 * because both dA and S are stored step after step. With threads, as in the
 * forward pass, each takes a group of whole sequences through every step
 * when the packed W is small (lstm__schedule_sequences_pay(): no
 * hand-over between steps), else whole panels of hidden units, so that a
 * step needs one hand-over (see units_part()).
 *
 * With up to four rows per step (lstm__schedule_hoist_input(), as in the
 * forward pass) the loop computes only dh_{t-1} = dA_t W_h, and dx_t = dA_t W_x
 * waits for the end: one product over every row, on half of W or less per
 * step.
 *
 * In bf16 (lstm_workspace_set_training_precision()) every product runs on
 * lowp.h's kernel: W_h^T, W_x^T and W_hr^T packed in bf16, each product's
 * rows (dA_t, dh_t) rounded to bf16 just before it, dx always hoisted, and
 * dW += dA^T S a block of rows at a time with both rounded; sums, the
 * cells' gradients and dW itself stay float32. The threads then share
 * each product by panels (the per-step schedules above are the float
 * kernel's).
 */
#include <string.h>

#include "activation.h"
#include "args.h"
#include "compiler.h"
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
 * The elementwise part of one step for one row and `units` of its hidden
 * units; every pointer is offset to the first of those units, and the gate
 * blocks (and p's, dp's) lie H apart. i, f, g, o hold the activated gates
 * on entry and their pre-activation gradients da_i, da_f, da_g, da_o on
 * exit. dc holds dc_t on entry and dc_{t-1} on exit. dout is
 * dL/d(o * tanh(c_t)), complete. With peepholes, p is [p_i; p_f; p_o] and
 * dp receives their gradients (added). No two buffers overlap. Written
 * once; `fused` (the activation's multiply-adds, activation.h) and
 * `peephole` are constants at each call site, so each variant's loop has
 * no branch and vectorises.
 */
LSTM__ALWAYS_INLINE void
cell_backward_kernel(bool fused, size_t units, size_t H, float *restrict i, float *restrict f,
                     float *restrict g, float *restrict o, const float *restrict c_t,
                     const float *restrict c_prev, const float *restrict dout, float *restrict dc,
                     bool peephole, const float *restrict p, float *restrict dp)
{
    for (size_t j = 0; j < units; j++) {
        const float gi = i[j], gf = f[j], gg = g[j], go = o[j];
        /* out = o * tanh(c_t): do = dout tanh(c_t) */
        const float tanh_c = act_tanh(fused, c_t[j]);
        const float d_o = dout[j] * tanh_c;
        const float da_o = d_o * go * (1.0f - go); /* sigmoid' = s (1 - s) */
        /* dc_t += dout o (1 - tanh^2(c_t)) [+ da_o p_o: o saw p_o c_t] */
        float d_c = dc[j] + dout[j] * go * (1.0f - tanh_c * tanh_c);
        if (peephole)
            d_c += da_o * p[2 * H + j];
        /* c_t = f * c_{t-1} + i * g */
        const float d_i = d_c * gg, d_f = d_c * c_prev[j], d_g = d_c * gi;
        const float da_i = d_i * gi * (1.0f - gi), da_f = d_f * gf * (1.0f - gf);
        /* dc_{t-1} = dc_t f [+ da_i p_i + da_f p_f: i and f saw c_{t-1}] */
        float d_c_prev = d_c * gf;
        if (peephole) {
            d_c_prev += da_i * p[j] + da_f * p[H + j];
            dp[j] += da_i * c_prev[j];
            dp[H + j] += da_f * c_prev[j];
            dp[2 * H + j] += da_o * c_t[j];
        }
        dc[j] = d_c_prev;
        i[j] = da_i;
        f[j] = da_f;
        g[j] = d_g * (1.0f - gg * gg); /* tanh' = 1 - t^2 */
        o[j] = da_o;
    }
}

/* The kernel's variant for these peepholes (p, dp or NULL). */
LSTM__ALWAYS_INLINE void cell_backward_variant(bool fused, size_t units, size_t H, float *gates,
                                               const float *c_t, const float *c_prev,
                                               const float *dout, float *dc, const float *p,
                                               float *dp)
{
    float *i = gates, *f = gates + H, *g = gates + 2 * H, *o = gates + 3 * H;
    if (p != NULL)
        cell_backward_kernel(fused, units, H, i, f, g, o, c_t, c_prev, dout, dc, true, p, dp);
    else
        cell_backward_kernel(fused, units, H, i, f, g, o, c_t, c_prev, dout, dc, false, NULL, NULL);
}

LSTM__ALWAYS_INLINE void cell_backward_any(size_t units, size_t H, float *gates, const float *c_t,
                                           const float *c_prev, const float *dout, float *dc,
                                           const float *p, float *dp)
{
    if (cell_fused())
        cell_backward_variant(true, units, H, gates, c_t, c_prev, dout, dc, p, dp);
    else
        cell_backward_variant(false, units, H, gates, c_t, c_prev, dout, dc, p, dp);
}

LSTM__DISPATCH(cell_backward, cell_backward_any,
               (size_t units, size_t H, float *gates, const float *c_t, const float *c_prev,
                const float *dout, float *dc, const float *p, float *dp),
               (units, H, gates, c_t, c_prev, dout, dc, p, dp))

/* Everything one layer and direction's backward pass reads and writes. */
typedef struct direction_grad {
    lstm_model *model;
    const batch_plan *plan;
    const layer_block *block;
    direction_buffers *buffers;
    lstm_workspace *workspace;
    size_t layer, direction;
    float *dinput;          /* dL/d(layer input): dlayer_in for l > 0, the caller's dx for 0 */
    const float *dhT, *dcT; /* [B][R], [B][H] in batch order, or NULL */
    float *dh0, *dc0;       /* the same, outputs */
} direction_grad;

/* dL/dh_t = dL/d(output at t) + what flows back from step t + 1, for the
 * sorted rows [r0, r1) and in columns [first, last) of the running dh. */
static void gather_dh(const direction_grad *pass, size_t t, size_t r0, size_t r1, size_t first,
                      size_t last)
{
    const batch_plan *plan = pass->plan;
    const size_t R = pass->model->state_size, out_cols = pass->model->directions * R;
    const float *dout_t =
        pass->workspace->dlayer_out + plan->offset[t] * out_cols + pass->direction * R;
    for (size_t r = r0; r < r1; r++)
        add_to(pass->workspace->dh + r * R + first, dout_t + r * out_cols + first, last - first);
}

/* The elementwise work of step t for rows [first, last) and hidden units
 * [u0, u0 + units): dout (dL/d(o * tanh(c_t)), [n][H]) and dc_t to dA_t,
 * written over the gates kept, and dc_{t-1}. */
static void cells_backward(const direction_grad *pass, size_t t, const float *dout, size_t first,
                           size_t last, size_t u0, size_t units)
{
    const lstm_model *m = pass->model;
    const size_t H = m->hidden_size, G = 4 * H, B = pass->plan->batch;
    const float *all_cells = pass->buffers->cells;
    const float *cells_t = all_cells + (B + pass->plan->offset[t]) * H;
    float *dgates_t = pass->buffers->gates + pass->plan->offset[t] * G;
    const float *p = m->peephole ? m->params + pass->block->peephole_offset + u0 : NULL;
    float *dp = m->peephole ? m->grads + pass->block->peephole_offset + u0 : NULL;
    for (size_t r = first; r < last; r++) {
        /* c_{t-1} as the forward pass used it */
        const float *c_prev = plan_previous_cell(pass->plan, all_cells, H, pass->direction, t, r);
        cell_backward(units, H, dgates_t + r * G + u0, cells_t + r * H + u0, c_prev + u0,
                      dout + r * H + u0, pass->workspace->dc + r * H + u0, p, dp);
    }
}

/* The row of the layer's input gradient for sorted row r at step t: its
 * packed row above layer 0, the caller's dx row at layer 0. */
static float *input_gradient_row(const direction_grad *pass, size_t t, size_t r)
{
    const lstm_model *m = pass->model;
    const batch_plan *plan = pass->plan;
    if (pass->layer > 0)
        return pass->dinput + (plan->offset[t] + r) * m->directions * m->state_size;
    const bool batch_first = plan->batch_first;
    return pass->dinput + sequence_row(batch_first, plan->seq_len, plan->batch, t, plan->order[r]) *
                              pass->block->input_size;
}

/* Columns [first, last) of step t's [dh_{t-1}, dx_t], in dstacked, for the
 * sorted rows [r0, r1): the h columns become the running dh, the x columns
 * are added to the layer's input gradient. */
static void take_product(const direction_grad *pass, size_t t, size_t r0, size_t r1, size_t first,
                         size_t last)
{
    const size_t R = pass->model->state_size, K = pass->block->stacked_size;
    const float *dstacked = pass->workspace->dstacked;
    if (first < R)
        copy_block(pass->workspace->dh + r0 * R + first, R, dstacked + r0 * K + first, K, r1 - r0,
                   (last < R ? last : R) - first);
    if (last <= R)
        return;
    const size_t x0 = first > R ? first - R : 0, x1 = last - R;
    for (size_t r = r0; r < r1; r++)
        add_to(input_gradient_row(pass, t, r) + x0, dstacked + r * K + R + x0, x1 - x0);
}

/* Columns [first, last) of step t's [dh_{t-1}, dx_t] = dA_t W (W's first
 * columns packed), for every running row, taken as above. */
static void product_columns(const direction_grad *pass, size_t t, const float *packed, size_t first,
                            size_t last)
{
    if (first >= last)
        return;
    const size_t G = 4 * pass->model->hidden_size, K = pass->block->stacked_size;
    lstm__gemm_packed(pass->plan->active[t], last - first, G, 0,
                      pass->buffers->gates + pass->plan->offset[t] * G, G, packed + first * G,
                      pass->workspace->dstacked + first, K);
    take_product(pass, t, 0, pass->plan->active[t], first, last);
}

/* What every step of a backward pass uses. */
typedef struct backward_setup {
    const direction_grad *pass;
    const float *packed, *packed_projection;
    size_t cols; /* the per-step product's columns: R, or K with dx */
    /* In bf16: W_h^T, W_x^T and W_hr^T packed, and the memory of a
     * product's rows, rounded */
    bool reduced;
    lowp_weights reduced_h, reduced_x, reduced_projection;
    void *quantized;
} backward_setup;

/*
 * C (n x n_out, ldc) = A (n x depth, lda) times one of the pass's packed
 * B: the float kernel's `packed`, or in bf16 `reduced`, A rounded first.
 */
static void backward_product(const backward_setup *setup, struct pool *workers, size_t n,
                             size_t n_out, size_t depth, const float *a, size_t lda,
                             const float *packed, const lowp_weights *reduced, float *c, size_t ldc)
{
    if (!setup->reduced) {
        lstm__gemm_packed_threads(workers, n, n_out, depth, 0, a, lda, packed, c, ldc);
        return;
    }
    lowp_rows rows;
    lstm__lowp_quantize(LSTM_PRECISION_BF16, n, depth, a, lda, setup->quantized, &rows);
    lstm__lowp_product(workers, false, &rows, reduced, c, ldc);
}

/* The elementwise work of one step, for rows split across threads. */
typedef struct step_rows {
    const direction_grad *pass;
    size_t t, first; /* the step, and the sorted row the rows count from */
    const float *dout;
} step_rows;

static void cell_rows(void *context, size_t first, size_t last)
{
    const step_rows *job = context;
    cells_backward(job->pass, job->t, job->dout, job->first + first, job->first + last, 0,
                   job->pass->model->hidden_size);
}

/*
 * With threads, each takes whole panels of hidden units [u0, u1) and a share
 * of the x columns, and one hand-over per step suffices: the job of step t
 * first ends the product of the step processed before it (its columns of
 * [dh, dx], which need every unit's dA), then runs step t's cells for its
 * own units, whose dh columns it has just computed. Needs H in whole
 * panels and no projection, as in the forward pass.
 */
enum { NO_STEP = -1 };

typedef struct step_units {
    const direction_grad *pass;
    const float *packed;
    size_t cols;         /* the product's columns: R, or K with dx */
    ptrdiff_t product_t; /* the step whose product to end, or NO_STEP */
    ptrdiff_t t;         /* the step whose cells to run, or NO_STEP */
} step_units;

static void units_part(void *context, size_t part, size_t parts)
{
    const step_units *job = context;
    const direction_grad *pass = job->pass;
    const size_t R = pass->model->state_size;
    size_t u0, u1, x0, x1;
    lstm__pool_share(R, GEMM_PANEL, part, parts, &u0, &u1);
    lstm__pool_share(job->cols - R, GEMM_PANEL, part, parts, &x0, &x1);
    if (job->product_t != NO_STEP) {
        product_columns(pass, (size_t)job->product_t, job->packed, u0, u1);
        product_columns(pass, (size_t)job->product_t, job->packed, R + x0, R + x1);
    }
    if (job->t != NO_STEP && u0 < u1) {
        gather_dh(pass, (size_t)job->t, 0, pass->plan->active[job->t], u0, u1);
        cells_backward(pass, (size_t)job->t, pass->workspace->dh, 0, pass->plan->active[job->t], u0,
                       u1 - u0);
    }
}

/*
 * The hoisted dx_t = dA_t W_x, for every step's rows at once,
 * SCHEDULE_HOIST_ROWS rows at a time through the gradient scratch (free until
 * dW), each added to its row of the layer's input gradient as
 * take_product() adds it (so the bits are the same).
 */
static void hoisted_input_gradient(const backward_setup *setup, const float *packed_x)
{
    const direction_grad *pass = setup->pass;
    const batch_plan *plan = pass->plan;
    const size_t G = 4 * pass->model->hidden_size, I = pass->block->input_size;
    float *dx_rows = pass->workspace->gradient_scratch;
    size_t t = 0, r = 0; /* the step and sorted row of the packed row first + k */
    for (size_t first = 0; first < plan->rows; first += SCHEDULE_HOIST_ROWS) {
        const size_t n =
            plan->rows - first < SCHEDULE_HOIST_ROWS ? plan->rows - first : SCHEDULE_HOIST_ROWS;
        backward_product(setup, pass->workspace->workers, n, I, G, pass->buffers->gates + first * G,
                         G, packed_x, &setup->reduced_x, dx_rows, I);
        for (size_t k = 0; k < n; k++, r++) {
            while (r == plan->active[t]) {
                t++;
                r = 0;
            }
            add_to(input_gradient_row(pass, t, r), dx_rows + k * I, I);
        }
    }
}

/*
 * The steps of a backward pass for the sorted rows [first, last): a group
 * of whole sequences, which needs nothing from the other rows. workers
 * share each step's work (NULL: the calling thread does it all).
 */
static void run_steps(const backward_setup *setup, struct pool *workers, size_t first, size_t last)
{
    const direction_grad *pass = setup->pass;
    const lstm_model *m = pass->model;
    lstm_workspace *ws = pass->workspace;
    const batch_plan *plan = pass->plan;
    const size_t H = m->hidden_size, R = m->state_size, P = m->proj_size, G = 4 * H;
    const size_t T = plan->seq_len, K = pass->block->stacked_size;
    for (size_t s = 0; s < T; s++) {
        const size_t t = plan_step(plan, 1 - pass->direction, s);
        if (plan->active[t] <= first)
            continue; /* none of the group's sequences runs at step t */
        /* the group's running rows: sorted rows first .. end - 1 */
        const size_t end = plan->active[t] < last ? plan->active[t] : last, n = end - first;
        gather_dh(pass, t, first, end, 0, R);
        const float *dcell_out = ws->dh;
        if (P != 0) {
            /* h_t = W_hr m_t: keep dh_t for dW_hr, and dm_t = dh_t W_hr */
            float *dprojected_t = ws->dprojected + (plan->offset[t] + first) * P;
            memcpy(dprojected_t, ws->dh + first * P, n * P * sizeof(float));
            backward_product(setup, workers, n, H, P, dprojected_t, P, setup->packed_projection,
                             &setup->reduced_projection, ws->dcell_out + first * H, H);
            dcell_out = ws->dcell_out;
        }
        /* Rows split across threads, except with peepholes, whose
         * gradient every row adds to. */
        step_rows cells = {pass, t, first, dcell_out};
        lstm__run_rows(m->peephole ? NULL : workers, n, G, cell_rows, &cells);
        /* [dh_{t-1}, dx_t] = dA_t W */
        const float *dgates_t = pass->buffers->gates + (plan->offset[t] + first) * G;
        backward_product(setup, workers, n, setup->cols, G, dgates_t, G, setup->packed,
                         &setup->reduced_h, ws->dstacked + first * K, K);
        take_product(pass, t, first, end, 0, setup->cols);
    }
}

/* A thread's group of whole sequences, through every step. */
static void sequence_group(void *context, size_t first, size_t last)
{
    run_steps(context, NULL, first, last);
}

/*
 * In bf16, W_h^T (R outputs over the 4H gates), W_x^T and W_hr^T (H outputs
 * over P) packed one after another at memory, for [dh_{t-1}, dx_t] =
 * dA_t W and dm_t = dh_t W_hr.
 */
static void pack_transposed(const direction_grad *pass, backward_setup *setup,
                            unsigned char *memory)
{
    const lstm_model *m = pass->model;
    const lstm_precision bf16 = LSTM_PRECISION_BF16;
    const size_t H = m->hidden_size, R = m->state_size, P = m->proj_size, G = 4 * H;
    const size_t K = pass->block->stacked_size, I = pass->block->input_size;
    setup->reduced_h = lstm__lowp_weights_at(bf16, R, G, memory);
    memory += lstm__lowp_weights_bytes(bf16, R, G);
    setup->reduced_x = lstm__lowp_weights_at(bf16, I, G, memory);
    memory += lstm__lowp_weights_bytes(bf16, I, G);
    setup->reduced_projection = lstm__lowp_weights_at(bf16, H, P, memory);
    setup->quantized = pass->workspace->quantized;
    const float *weight = m->params + pass->block->weight_offset;
    const lowp_source h = {.values = weight, .ld = K, .transposed = true};
    const lowp_source x = {.values = weight + R, .ld = K, .transposed = true};
    const lowp_source w_hr = {
        .values = m->params + pass->block->projection_offset, .ld = H, .transposed = true};
    struct pool *workers = pass->workspace->workers;
    lstm__lowp_pack(workers, &h, &setup->reduced_h);
    if (pass->dinput != NULL)
        lstm__lowp_pack(workers, &x, &setup->reduced_x);
    if (P != 0)
        lstm__lowp_pack(workers, &w_hr, &setup->reduced_projection);
}

/*
 * C (m x n, leading dimension n) += A^T B and, unless a_sums is NULL,
 * a_sums += the sum of A's rows, A being rows x m (lda) and B rows x n
 * (ldb), in bf16: SCHEDULE_GRADIENT_ROWS rows of the depth at a time, A^T
 * rounded and B packed at memory, then added to C by lowp.h's product.
 */
static void weight_gradient_bf16(struct pool *workers, size_t m, size_t n, size_t rows,
                                 const float *a, size_t lda, const float *b, size_t ldb, float *c,
                                 float *a_sums, void *memory)
{
    const lstm_precision bf16 = LSTM_PRECISION_BF16;
    for (size_t first = 0; first < rows; first += SCHEDULE_GRADIENT_ROWS) {
        const size_t depth =
            rows - first < SCHEDULE_GRADIENT_ROWS ? rows - first : SCHEDULE_GRADIENT_ROWS;
        lowp_rows a_rows;
        lstm__lowp_round_columns(m, depth, a + first * lda, lda, memory, &a_rows);
        const lowp_weights b_packed = lstm__lowp_weights_at(
            bf16, n, depth, (unsigned char *)memory + lstm__lowp_rows_bytes(bf16, m, depth));
        const lowp_source source = {.values = b + first * ldb, .ld = ldb, .transposed = true};
        lstm__lowp_pack(workers, &source, &b_packed);
        lstm__lowp_product(workers, true, &a_rows, &b_packed, c, n);
    }
    for (size_t r = 0; a_sums != NULL && r < rows; r++)
        add_to(a_sums, a + r * lda, m);
}

static void run_direction_backward(const direction_grad *pass)
{
    lstm_model *m = pass->model;
    lstm_workspace *ws = pass->workspace;
    const batch_plan *plan = pass->plan;
    const size_t H = m->hidden_size, R = m->state_size, P = m->proj_size, G = 4 * H;
    const size_t T = plan->seq_len, B = plan->batch, K = pass->block->stacked_size;
    const float *weight = m->params + pass->block->weight_offset;
    const float *projection = m->params + pass->block->projection_offset;
    direction_buffers *buf = pass->buffers;
    float *dh = ws->dh, *dc = ws->dc;
    const bool reduced = ws->training_precision != LSTM_PRECISION_FP32;
    /* The steps' product takes only the dh_{t-1} columns without dx (layer
     * 0, not wanted) or with dx hoisted out of the loop (always in bf16). */
    const bool hoist =
        pass->dinput != NULL && (reduced || lstm__schedule_hoist_input(B, G, K, true));
    const size_t cols = pass->dinput != NULL && !hoist ? K : R;

    /* W's first cols columns (W_x's after them when hoisting, and W_hr)
     * packed once for all the steps; in bf16 W_h^T, W_x^T and W_hr^T one
     * after another. */
    float *packed = ws->packed_weight, *packed_projection = ws->packed_projection;
    float *packed_x = packed + lstm__gemm_packed_size(R, G);
    struct pool *workers = ws->workers;
    backward_setup setup = {.pass = pass,
                            .packed = packed,
                            .packed_projection = packed_projection,
                            .cols = cols,
                            .reduced = reduced};
    if (reduced) {
        pack_transposed(pass, &setup, (unsigned char *)packed);
    } else {
        lstm__gemm_pack_threads(workers, false, weight, K, cols, G, packed);
        if (hoist)
            lstm__gemm_pack_threads(workers, false, weight + R, K, pass->block->input_size, G,
                                    packed_x);
        if (P != 0)
            lstm__gemm_pack_threads(workers, false, projection, H, H, P, packed_projection);
    }

    /* The running dh and dc start from the final states' gradients. */
    for (size_t r = 0; r < B; r++) {
        const size_t b = plan->order[r];
        load_or_zero(dh + r * R, pass->dhT != NULL ? pass->dhT + b * R : NULL, R);
        load_or_zero(dc + r * H, pass->dcT != NULL ? pass->dcT + b * H : NULL, H);
    }

    if (!reduced && !m->peephole && !hoist && lstm__schedule_sequences_pay(workers, B, cols, G)) {
        lstm__plan_run_groups(workers, plan, sequence_group, &setup);
    } else if (!reduced && P == 0 && lstm__schedule_units_pay(workers, H, B, cols, G)) {
        /* T + 1 hand-overs: the last ends the product of the last step. */
        step_units job = {pass, packed, cols, NO_STEP, NO_STEP};
        for (size_t s = 0; s <= T; s++) {
            job.product_t = job.t;
            job.t = s == T ? NO_STEP : (ptrdiff_t)plan_step(plan, 1 - pass->direction, s);
            lstm__pool_run(workers, units_part, &job);
        }
    } else {
        run_steps(&setup, lstm__schedule_step_workers(workers), 0, B);
    }
    if (hoist)
        hoisted_input_gradient(&setup, packed_x);
    /* Every row's last backward step was its first forward step: dh and dc
     * now hold dL/dh_0 and dL/dc_0. */
    for (size_t r = 0; r < B; r++) {
        const size_t b = plan->order[r];
        if (pass->dh0 != NULL)
            memcpy(pass->dh0 + b * R, dh + r * R, R * sizeof(float));
        if (pass->dc0 != NULL)
            memcpy(pass->dc0 + b * H, dc + r * H, H * sizeof(float));
    }

    /* dW += dA^T S over every packed row at once: (4H x rows) (rows x K),
     * and db += the sum of dA over every packed row */
    float *dw = m->grads + pass->block->weight_offset, *db = m->grads + pass->block->bias_offset;
    if (reduced)
        weight_gradient_bf16(workers, G, K, plan->rows, buf->gates, G, buf->stacked, K, dw, db,
                             ws->quantized);
    else
        lstm__gemm_accumulate_at_b(workers, G, K, plan->rows, buf->gates, G, buf->stacked, K, dw, K,
                                   db, ws->gradient_scratch);
    /* dW_hr += dh^T m over every packed row: (P x rows) (rows x H) */
    float *dw_hr = m->grads + pass->block->projection_offset;
    if (P != 0 && reduced)
        weight_gradient_bf16(workers, P, H, plan->rows, ws->dprojected, P, buf->projected, H, dw_hr,
                             NULL, ws->quantized);
    else if (P != 0)
        lstm__gemm_accumulate_at_b(workers, P, H, plan->rows, ws->dprojected, P, buf->projected, H,
                                   dw_hr, H, NULL, ws->gradient_scratch);
}

/* Checks that the workspace holds this model's training forward and that
 * the gradients given are finite where they are read. */
static lstm_status check_backward(const lstm_model *model, const lstm_workspace *workspace,
                                  const float *dy, const float *dhT, const float *dcT)
{
    if (model == NULL || workspace == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", model == NULL ? "model" : "workspace");
    if (workspace->trained_identity == 0)
        return lstm__fail(LSTM_E_STATE,
                          "the workspace holds no training forward to go back through");
    if (workspace->trained_identity != model->identity)
        return lstm__fail(LSTM_E_STATE,
                          "the workspace's training forward was run on another model");
    lstm_status status = lstm__workspace_check_model(workspace, model);
    if (status != LSTM_OK)
        return status;
    const batch_plan *plan = &workspace->plan;
    const size_t T = plan->seq_len, B = plan->batch,
                 states = model->num_layers * model->directions * B;
    const size_t out_cols = model->directions * model->state_size;
    const bool batch_first = plan->batch_first;
    if ((status = lstm__check_finite("dhT", dhT, states * model->state_size)) != LSTM_OK ||
        (status = lstm__check_finite("dcT", dcT, states * model->hidden_size)) != LSTM_OK)
        return status;
    for (size_t t = 0; dy != NULL && t < T; t++) {
        for (size_t r = 0; r < plan->active[t]; r++) {
            const size_t b = plan->order[r];
            const float *row = dy + sequence_row(batch_first, T, B, t, b) * out_cols;
            size_t bad = lstm__find_nonfinite(row, out_cols);
            if (bad < out_cols)
                return lstm__fail(LSTM_E_NONFINITE,
                                  "dy at step %zu of sequence %zu, feature %zu, is %g", t, b, bad,
                                  (double)row[bad]);
        }
    }
    return LSTM_OK;
}

/* dL/d(last layer's output) in packed rows, from the caller's dy. */
static void gather_output_gradient(const lstm_model *model, const batch_plan *plan, const float *dy,
                                   float *dlayer_out)
{
    const size_t T = plan->seq_len, B = plan->batch;
    const size_t out_cols = model->directions * model->state_size;
    const bool batch_first = plan->batch_first;
    for (size_t t = 0; t < T; t++)
        for (size_t r = 0; r < plan->active[t]; r++)
            load_or_zero(dlayer_out + (plan->offset[t] + r) * out_cols,
                         dy != NULL
                             ? dy + sequence_row(batch_first, T, B, t, plan->order[r]) * out_cols
                             : NULL,
                         out_cols);
}

/* The forward pass fed layer l mask * (layer l - 1's output), so
 * dL/d(layer l - 1's output) = mask * dL/d(layer l's input). */
static void apply_dropout_gradient(const lstm_model *model, lstm_workspace *workspace, size_t layer)
{
    const batch_plan *plan = &workspace->plan;
    const size_t T = plan->seq_len, B = plan->batch;
    const size_t features = model->directions * model->state_size;
    const float p = (float)model->config.dropout, keep_scale = 1.0f / (1.0f - p);
    for (size_t t = 0; t < T; t++) {
        for (size_t r = 0; r < plan->active[t]; r++) {
            float *row = workspace->dlayer_in + (plan->offset[t] + r) * features;
            for (size_t j = 0; j < features; j++)
                row[j] *= dropout_factor(
                    workspace->dropout_key,
                    dropout_index(layer - 1, T, B, features, t, plan->order[r], j), p, keep_scale);
        }
    }
}

LSTM_API lstm_status lstm_model_train_backward(lstm_model *model, lstm_workspace *workspace,
                                               const lstm_output_grads *output_grads,
                                               const lstm_input_grads *input_grads)
{
    lstm_output_grads dout;
    lstm_input_grads din;
    lstm_status status = lstm__args_read_gradients(output_grads, input_grads, &dout, &din);
    if (status != LSTM_OK)
        return status;
    const float *dy = dout.dy, *dhT = dout.dhT, *dcT = dout.dcT;
    float *dx = din.dx, *dh0 = din.dh0, *dc0 = din.dc0;
    if ((status = check_backward(model, workspace, dy, dhT, dcT)) != LSTM_OK)
        return status;
    const batch_plan *plan = &workspace->plan;
    const size_t L = model->num_layers, D = model->directions, B = plan->batch;
    const size_t H = model->hidden_size, R = model->state_size, out_cols = D * R;
    if (dx != NULL) /* both directions of layer 0 add into it; padding stays zero */
        memset(dx, 0, plan->seq_len * B * model->input_size * sizeof(float));
    gather_output_gradient(model, plan, dy, workspace->dlayer_out);

    for (size_t layer = L; layer-- > 0;) {
        float *dinput = layer > 0 ? workspace->dlayer_in : dx;
        if (layer > 0)
            memset(dinput, 0, plan->rows * out_cols * sizeof(float));
        for (size_t d = 0; d < D; d++) {
            const size_t index = layer * D + d;
            direction_grad pass = {
                .model = model,
                .plan = plan,
                .block = model_block(model, layer, d),
                .buffers = &workspace->directions[index],
                .workspace = workspace,
                .layer = layer,
                .direction = d,
                .dinput = dinput,
                .dhT = dhT != NULL ? dhT + index * B * R : NULL,
                .dcT = dcT != NULL ? dcT + index * B * H : NULL,
                .dh0 = dh0 != NULL ? dh0 + index * B * R : NULL,
                .dc0 = dc0 != NULL ? dc0 + index * B * H : NULL,
            };
            run_direction_backward(&pass);
        }
        if (layer > 0 && model->config.dropout > 0.0)
            apply_dropout_gradient(model, workspace, layer);
        /* This layer's input gradient is the previous layer's output gradient. */
        float *swap = workspace->dlayer_out;
        workspace->dlayer_out = workspace->dlayer_in;
        workspace->dlayer_in = swap;
    }
    workspace->trained_identity = 0; /* the gates are now gradients */
    workspace->trained_network = 0;
    return LSTM_OK;
}

/* The older, positional form (LSTM_1.0). */
LSTM_API lstm_status lstm_model_backward(lstm_model *model, lstm_workspace *workspace,
                                         const float *dy, const float *dhT, const float *dcT,
                                         float *dx, float *dh0, float *dc0)
{
    const lstm_output_grads output_grads = {sizeof output_grads, dy, dhT, dcT};
    const lstm_input_grads input_grads = {sizeof input_grads, dx, dh0, dc0};
    return lstm_model_train_backward(model, workspace, &output_grads, &input_grads);
}
