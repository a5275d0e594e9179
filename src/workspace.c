/* Workspaces: sizing, growth, the batch plan, and the carving of one arena. */
#include <string.h>

#include "alloc.h"
#include "blas.h"
#include "check.h"
#include "error.h"
#include "gemm.h"
#include "lowp.h"
#include "pool.h"
#include "schedule.h"
#include "model_internal.h"
#include "workspace.h"
#include "lstm/train.h"

void *lstm__carve(carver *c, size_t count, size_t cols, size_t element_size)
{
    size_t elements, bytes, aligned;
    if (!size_mul(count, cols, &elements) || !size_mul(elements, element_size, &bytes) ||
        ((aligned = lstm__align_up(bytes)) == 0 && bytes != 0)) {
        c->overflow = true;
        return NULL;
    }
    void *region = c->base != NULL ? c->base + c->used : NULL;
    if (!size_add(c->used, aligned, &c->used))
        c->overflow = true;
    return region;
}

static float *take_floats(carver *c, size_t rows, size_t cols)
{
    return lstm__carve(c, rows, cols, sizeof(float));
}

size_t lstm__workspace_lowp_block_bytes(const lstm_model *model, const layer_block *block,
                                        lstm_precision precision)
{
    const size_t H = model->hidden_size, R = model->state_size, P = model->proj_size;
    return lstm__lowp_weights_bytes(precision, 4 * H, R) +
           lstm__lowp_weights_bytes(precision, 4 * H, block->stacked_size - R) +
           (P != 0 ? lstm__lowp_weights_bytes(precision, P, H) : 0);
}

/* Floats that hold a layer and direction's weights packed for inference in
 * any precision (reduced ones need more than float32 only for the
 * smallest depths). */
static size_t block_floats_any_precision(const lstm_model *m, const layer_block *block,
                                         size_t fp32_floats)
{
    size_t floats = fp32_floats;
    const lstm_precision reduced[] = {LSTM_PRECISION_BF16, LSTM_PRECISION_INT8};
    for (size_t n = 0; n < sizeof reduced / sizeof reduced[0]; n++) {
        const size_t bytes = lstm__workspace_lowp_block_bytes(m, block, reduced[n]);
        const size_t needed = (bytes + sizeof(float) - 1) / sizeof(float);
        floats = needed > floats ? needed : floats;
    }
    return floats;
}

/* Bytes of one layer and direction's weights packed in bf16 for a
 * training backward pass (backward.c): W_h^T (R x 4H), W_x^T (I_l x 4H)
 * and, with P, W_hr^T (H x P), one after another. */
static size_t backward_lowp_block_bytes(const lstm_model *model, const layer_block *block)
{
    const size_t H = model->hidden_size, R = model->state_size, P = model->proj_size;
    const lstm_precision bf16 = LSTM_PRECISION_BF16;
    return lstm__lowp_weights_bytes(bf16, R, 4 * H) +
           lstm__lowp_weights_bytes(bf16, block->stacked_size - R, 4 * H) +
           (P != 0 ? lstm__lowp_weights_bytes(bf16, H, P) : 0);
}

/* The rows a bf16 backward pass rounds at once (backward.c), the largest
 * of: a step's dA_t (and dh_t with P); a hoisted chunk's dA for dx; and a
 * block of the weight gradients' depth, dA^T and dh^T rounded with S and
 * the projection's inputs packed. */
static size_t backward_lowp_rows_bytes(const lstm_model *m, size_t rows, size_t B)
{
    const size_t H = m->hidden_size, P = m->proj_size, G = 4 * H, K = model_max_stacked(m);
    const lstm_precision bf16 = LSTM_PRECISION_BF16;
    const size_t hoisted = rows < SCHEDULE_HOIST_ROWS ? rows : SCHEDULE_HOIST_ROWS;
    const size_t depth = rows < SCHEDULE_GRADIENT_ROWS ? rows : SCHEDULE_GRADIENT_ROWS;
    size_t bytes = lstm__lowp_rows_bytes(bf16, B, G) + lstm__lowp_rows_bytes(bf16, B, P);
    const size_t dx = lstm__lowp_rows_bytes(bf16, hoisted, G);
    const size_t dw =
        lstm__lowp_rows_bytes(bf16, G, depth) + lstm__lowp_weights_bytes(bf16, K, depth);
    const size_t dw_hr =
        P != 0 ? lstm__lowp_rows_bytes(bf16, P, depth) + lstm__lowp_weights_bytes(bf16, H, depth)
               : 0;
    bytes = dx > bytes ? dx : bytes;
    bytes = dw > bytes ? dw : bytes;
    return dw_hr > bytes ? dw_hr : bytes;
}

/*
 * Carves the regions of a call (rows = T B, the most a plan can need) in a
 * precision (inference's, or training's: float32 or bf16). With a
 * workspace, sets its pointers too; without, only sizes.
 */
static void carve(carver *c, lstm_workspace *ws, const lstm_model *m, lstm_mode mode,
                  lstm_precision precision, size_t T, size_t B)
{
    const size_t H = m->hidden_size, R = m->state_size, P = m->proj_size, G = 4 * H;
    const size_t D = m->directions, rows = T * B, out_cols = D * R;
    const bool train = mode == LSTM_MODE_TRAIN;
    /* Reduced precision always hoists the input's products (forward.c). */
    const bool reduced = precision != LSTM_PRECISION_FP32;
    batch_plan plan = {.seq_len = T, .batch = B};
    plan.order = lstm__carve(c, B, 1, sizeof(size_t));
    plan.length = lstm__carve(c, B, 1, sizeof(size_t));
    plan.active = lstm__carve(c, T + 1, 1, sizeof(size_t));
    plan.offset = lstm__carve(c, T + 1, 1, sizeof(size_t));

    const size_t sets = train ? m->num_layers * D : D;
    for (size_t n = 0; n < sets; n++) {
        direction_buffers set;
        size_t K = train ? m->blocks[n].stacked_size : model_max_stacked(m);
        set.stacked = take_floats(c, rows, K);
        const bool hoist = lstm__schedule_hoist_input(B, G, model_max_stacked(m), false);
        const size_t infer_gates = hoist || reduced ? hoisted_gate_rows(rows, B) : B;
        set.gates = take_floats(c, train ? rows : infer_gates, G);
        set.cells = take_floats(c, train ? B + rows : B, H);
        set.projected = P != 0 ? take_floats(c, train ? rows : B, H) : NULL;
        if (ws != NULL)
            ws->directions[n] = set;
    }
    float *layer_out = take_floats(c, rows, out_cols);
    /* One packing of W at a time: the largest of any layer, either way round. */
    size_t packed = 0;
    for (size_t n = 0; n < m->num_layers * D; n++) {
        const size_t K = m->blocks[n].stacked_size;
        const size_t R_and_I = lstm__gemm_packed_size(R, G) + lstm__gemm_packed_size(K - R, G);
        size_t forward = lstm__gemm_packed_size(G, K), backward = lstm__gemm_packed_size(K, G);
        backward = R_and_I > backward ? R_and_I : backward; /* W_h, W_x apart */
        size_t larger = forward > backward ? forward : backward;
        if (reduced && !train) /* W_h, W_x and W_hr, one after another */
            larger = block_floats_any_precision(m, &m->blocks[n], larger);
        if (reduced && train) { /* the same in bf16, then transposed for backward */
            const size_t forward_bytes =
                lstm__workspace_lowp_block_bytes(m, &m->blocks[n], precision);
            const size_t backward_bytes = backward_lowp_block_bytes(m, &m->blocks[n]);
            const size_t bytes = forward_bytes > backward_bytes ? forward_bytes : backward_bytes;
            const size_t floats = (bytes + sizeof(float) - 1) / sizeof(float);
            larger = floats > larger ? floats : larger;
        }
        packed = larger > packed ? larger : packed;
    }
    float *packed_weight = take_floats(c, packed, 1);
    float *packed_projection = NULL;
    if (P != 0) {
        size_t forward = lstm__gemm_packed_size(P, H), backward = lstm__gemm_packed_size(H, P);
        packed_projection = take_floats(c, forward > backward ? forward : backward, 1);
    }
    /* The rows of a reduced-precision product, rounded or quantized: a
     * hoisted chunk's x, or a step's h_{t-1} or projection input. */
    void *quantized = NULL;
    if (reduced) {
        size_t widest_input = 0;
        for (size_t n = 0; n < m->num_layers * D; n++) {
            const size_t I = m->blocks[n].stacked_size - R;
            widest_input = I > widest_input ? I : widest_input;
        }
        const size_t chunk =
            lstm__lowp_rows_bytes(precision, hoisted_gate_rows(rows, B), widest_input);
        /* each group of sequences quantizes its rows at its own place */
        const size_t step = B * lstm__lowp_row_bytes(precision, R > H ? R : H);
        size_t bytes = chunk > step ? chunk : step;
        if (train) {
            const size_t backward = backward_lowp_rows_bytes(m, rows, B);
            bytes = backward > bytes ? backward : bytes;
        }
        quantized = lstm__carve(c, bytes, 1, 1);
    }
    float *dlayer_out = NULL, *dlayer_in = NULL, *dprojected = NULL, *dh = NULL, *dc = NULL;
    float *dstacked = NULL, *dcell_out = NULL, *gradient_scratch = NULL;
    if (train) {
        /* The forward pass is done with layer_out once it has written y and
         * the final states, so backward reuses it for dlayer_out. */
        dlayer_out = layer_out;
        dlayer_in = m->num_layers > 1 ? take_floats(c, rows, out_cols) : NULL;
        dprojected = P != 0 ? take_floats(c, rows, P) : NULL;
        dh = take_floats(c, B, R);
        dc = take_floats(c, B, H);
        dstacked = take_floats(c, B, model_max_stacked(m));
        dcell_out = P != 0 ? take_floats(c, B, H) : NULL;
        /* dW is 4H x K, dW_hr P x H (P < H) */
        const size_t K = model_max_stacked(m), widest = K > H ? K : H;
        const size_t at_b = lstm__gemm_at_b_scratch_size(G, widest, rows);
        const size_t dx_rows = (rows < SCHEDULE_HOIST_ROWS ? rows : SCHEDULE_HOIST_ROWS) * K;
        gradient_scratch = take_floats(c, at_b > dx_rows ? at_b : dx_rows, 1);
    }
    if (ws != NULL) {
        ws->plan = plan;
        ws->layer_out = layer_out;
        ws->packed_weight = packed_weight;
        ws->packed_projection = packed_projection;
        ws->quantized = quantized;
        ws->dlayer_out = dlayer_out;
        ws->dlayer_in = dlayer_in;
        ws->dprojected = dprojected;
        ws->dh = dh;
        ws->dc = dc;
        ws->dstacked = dstacked;
        ws->dcell_out = dcell_out;
        ws->gradient_scratch = gradient_scratch;
    }
}

static lstm_status check_shape(lstm_mode mode, size_t T, size_t B)
{
    if (T == 0 || B == 0)
        return lstm__fail(LSTM_E_SIZE, "%s is 0; it must be at least 1",
                          T == 0 ? "seq_len" : "batch");
    if (mode != LSTM_MODE_INFER && mode != LSTM_MODE_TRAIN)
        return lstm__fail(LSTM_E_ARG, "mode %d is neither LSTM_MODE_INFER nor LSTM_MODE_TRAIN",
                          (int)mode);
    /* T * B bounds the inner dimension of the weight-gradient GEMM. */
    size_t rows;
    if (!size_mul(T, B, &rows) || rows > BLAS_MAX_DIM)
        return lstm__fail(LSTM_E_OVERFLOW, "seq_len %zu x batch %zu exceeds the BLAS index range",
                          T, B);
    return LSTM_OK;
}

/* Bytes of a call's regions, or LSTM_E_OVERFLOW. */
static lstm_status measure(const lstm_model *m, lstm_mode mode, lstm_precision precision, size_t T,
                           size_t B, size_t *bytes)
{
    lstm_status status = check_shape(mode, T, B);
    if (status != LSTM_OK)
        return status;
    carver c = {NULL, 0, false};
    carve(&c, NULL, m, mode, precision, T, B);
    if (c.overflow)
        return lstm__fail(LSTM_E_OVERFLOW,
                          "a workspace for seq_len %zu and batch %zu overflows size_t", T, B);
    *bytes = c.used;
    return LSTM_OK;
}

/* The configurations agree on everything that shapes a workspace. */
static bool same_shape(const lstm_config *a, const lstm_config *b)
{
    return a->input_size == b->input_size && a->hidden_size == b->hidden_size &&
           a->num_layers == b->num_layers && a->proj_size == b->proj_size &&
           (a->flags & LSTM_BIDIRECTIONAL) == (b->flags & LSTM_BIDIRECTIONAL);
}

lstm_status lstm__workspace_check_model(const lstm_workspace *workspace, const lstm_model *model)
{
    if (!same_shape(&workspace->shape.config, &model->config))
        return lstm__fail(LSTM_E_SHAPE, "the workspace was created for a model of another "
                                        "configuration");
    return LSTM_OK;
}

LSTM_API lstm_status lstm_workspace_create(const lstm_model *model, lstm_workspace **out)
{
    if (model == NULL || out == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", model == NULL ? "model" : "out");
    const size_t sets = model->num_layers * model->directions;
    lstm_workspace *workspace = lstm__mem_alloc(sizeof *workspace);
    direction_buffers *directions = lstm__mem_alloc(sets * sizeof *directions);
    layer_block *blocks = lstm__mem_alloc(sets * sizeof *blocks);
    if (workspace == NULL || directions == NULL || blocks == NULL) {
        lstm__mem_free(workspace);
        lstm__mem_free(directions);
        lstm__mem_free(blocks);
        return lstm__fail(LSTM_E_NOMEM, "allocating a workspace");
    }
    memset(workspace, 0, sizeof *workspace);
    memset(directions, 0, sets * sizeof *directions);
    memcpy(blocks, model->blocks, sets * sizeof *blocks);
    workspace->shape = *model;
    workspace->shape.blocks = blocks;
    workspace->shape.params = NULL;
    workspace->shape.grads = NULL;
    workspace->shape.stored = (stored_weights){0};
    workspace->directions = directions;
    *out = workspace;
    return LSTM_OK;
}

size_t lstm__workspace_kept_block_floats(const lstm_model *model, const layer_block *block)
{
    const size_t G = 4 * model->hidden_size, P = model->proj_size;
    const size_t fp32 = lstm__gemm_packed_size(G, block->stacked_size) +
                        (P != 0 ? lstm__gemm_packed_size(P, model->hidden_size) : 0);
    return block_floats_any_precision(model, block, fp32);
}

void lstm__workspace_kept_weights(lstm_workspace *workspace, const lstm_model *model, size_t batch,
                                  float **kept, bool *ready)
{
    *kept = workspace->kept_weights;
    /* generations are unique to a model and its parameters (lstm__model_touch()) */
    *ready = workspace->kept_generation == model->generation && workspace->kept_batch == batch;
    if (!*ready)
        workspace->kept_generation = 0; /* until the packing is done */
}

void lstm__workspace_kept_weights_done(lstm_workspace *workspace, const lstm_model *model,
                                       size_t batch)
{
    workspace->kept_generation = model->generation;
    workspace->kept_batch = batch;
}

LSTM_API lstm_status lstm_workspace_keep_weights(lstm_workspace *workspace, int keep)
{
    if (workspace == NULL)
        return lstm__fail(LSTM_E_NULL, "workspace is NULL");
    workspace->kept_generation = 0;
    if (keep && workspace->kept_weights == NULL) {
        /* a few panels more than the parameters, which fit in memory */
        const lstm_model *shape = &workspace->shape;
        size_t floats = 0;
        for (size_t n = 0; n < shape->num_layers * shape->directions; n++)
            floats += lstm__workspace_kept_block_floats(shape, &shape->blocks[n]);
        float *kept = lstm__mem_alloc(floats * sizeof(float));
        if (kept == NULL)
            return lstm__fail(LSTM_E_NOMEM, "allocating %zu floats of packed weights to keep",
                              floats);
        workspace->kept_weights = kept;
    } else if (!keep) {
        lstm__mem_free(workspace->kept_weights);
        workspace->kept_weights = NULL;
    }
    return LSTM_OK;
}

LSTM_API void lstm_workspace_destroy(lstm_workspace *workspace)
{
    if (workspace == NULL)
        return;
    lstm__pool_destroy(workspace->workers);
    lstm__mem_free(workspace->kept_weights);
    lstm__mem_free(workspace->arena);
    lstm__mem_free(workspace->scratch);
    lstm__mem_free(workspace->directions);
    lstm__mem_free(workspace->shape.blocks);
    lstm__mem_free(workspace);
}

LSTM_API lstm_status lstm_workspace_size(const lstm_model *model, lstm_mode mode, size_t seq_len,
                                         size_t batch, size_t *bytes)
{
    if (model == NULL || bytes == NULL)
        return lstm__fail(LSTM_E_NULL, "%s is NULL", model == NULL ? "model" : "bytes");
    return measure(model, mode, LSTM_PRECISION_FP32, seq_len, batch, bytes);
}

lstm_status lstm__workspace_check_lengths(const size_t *lengths, size_t T, size_t B)
{
    for (size_t b = 0; lengths != NULL && b < B; b++)
        if (lengths[b] == 0 || lengths[b] > T)
            return lstm__fail(LSTM_E_ARG, "lengths[%zu] is %zu; it must be in 1 .. seq_len %zu", b,
                              lengths[b], T);
    return LSTM_OK;
}

/* Sorts the sequences by length, longest first and stable (a counting sort),
 * then counts the rows running at each step. */
static void plan_build(batch_plan *plan, const size_t *lengths)
{
    const size_t T = plan->seq_len, B = plan->batch;
    size_t *start = plan->offset; /* scratch until the offsets are computed */
    memset(start, 0, (T + 1) * sizeof *start);
    for (size_t b = 0; b < B; b++)
        start[lengths != NULL ? lengths[b] : T]++;
    /* start[v]: the first sorted row of length v; longer sequences come first */
    size_t next = 0;
    for (size_t v = T + 1; v-- > 0;) {
        size_t count = start[v];
        start[v] = next;
        next += count;
    }
    for (size_t b = 0; b < B; b++) {
        size_t len = lengths != NULL ? lengths[b] : T;
        size_t r = start[len]++;
        plan->order[r] = b;
        plan->length[r] = len;
    }
    /* n_t = rows with length > t; offsets are their running sum */
    size_t running = B;
    plan->offset[0] = 0;
    for (size_t t = 0; t <= T; t++) {
        while (running > 0 && plan->length[running - 1] <= t)
            running--;
        plan->active[t] = running;
        if (t < T)
            plan->offset[t + 1] = plan->offset[t] + running;
    }
    plan->rows = plan->offset[T];
}

/* The first sorted row with at least rows p / parts of the packed rows
 * (steps of sequences) before it; B for p = parts. */
static size_t plan_boundary(const batch_plan *plan, size_t p, size_t parts)
{
    if (p >= parts)
        return plan->batch;
    const size_t target = p * plan->rows / parts; /* rows <= BLAS_MAX_DIM: no overflow */
    size_t r = 0, before = 0;
    while (r < plan->batch && before < target)
        before += plan->length[r++];
    return r;
}

typedef struct groups_job {
    const batch_plan *plan;
    rows_fn fn;
    void *context;
} groups_job;

static void group_part(void *context, size_t part, size_t parts)
{
    const groups_job *job = context;
    const size_t first = plan_boundary(job->plan, part, parts);
    const size_t last = plan_boundary(job->plan, part + 1, parts);
    if (first < last)
        job->fn(job->context, first, last);
}

void lstm__plan_run_groups(struct pool *workers, const batch_plan *plan, rows_fn fn, void *context)
{
    groups_job job = {plan, fn, context};
    lstm__pool_run(workers, group_part, &job);
}

lstm_status lstm__workspace_prepare(lstm_workspace *workspace, const lstm_model *model,
                                    lstm_mode mode, size_t seq_len, size_t batch,
                                    const size_t *lengths)
{
    lstm_status status = lstm__workspace_check_model(workspace, model);
    if (status != LSTM_OK)
        return status;
    size_t bytes = 0;
    const lstm_precision precision =
        mode == LSTM_MODE_INFER ? workspace->precision : workspace->training_precision;
    if ((status = measure(model, mode, precision, seq_len, batch, &bytes)) != LSTM_OK ||
        (status = lstm__workspace_check_lengths(lengths, seq_len, batch)) != LSTM_OK)
        return status;
    workspace->trained_identity = 0;
    workspace->trained_network = 0;
    if (bytes > workspace->capacity) {
        void *arena = lstm__mem_alloc(bytes);
        if (arena == NULL)
            return lstm__fail(LSTM_E_NOMEM, "growing a workspace to %zu bytes", bytes);
        lstm__mem_free(workspace->arena);
        workspace->arena = arena;
        workspace->capacity = bytes;
    }
    /* The per-step products use as many threads as the BLAS is set to; a
     * pool that cannot be had just means one thread. */
    const size_t threads = lstm__blas_thread_count();
    if (lstm__pool_threads(workspace->workers) != threads) {
        lstm__pool_destroy(workspace->workers);
        workspace->workers = lstm__pool_create(threads);
    }
    carver c = {workspace->arena, 0, false};
    carve(&c, workspace, model, mode, precision, seq_len, batch);
    plan_build(&workspace->plan, lengths);
    return LSTM_OK;
}

lstm_status lstm__workspace_scratch(lstm_workspace *workspace, size_t bytes, void **out)
{
    void *scratch = workspace->scratch;
    if (bytes > workspace->scratch_capacity && (scratch = lstm__mem_alloc(bytes)) == NULL)
        return lstm__fail(LSTM_E_NOMEM, "growing a workspace's scratch to %zu bytes", bytes);
    *out = scratch;
    return LSTM_OK;
}

void lstm__workspace_scratch_done(lstm_workspace *workspace, void *scratch, size_t bytes,
                                  bool succeeded)
{
    if (scratch == workspace->scratch)
        return;
    if (!succeeded) {
        lstm__mem_free(scratch);
        return;
    }
    lstm__mem_free(workspace->scratch);
    workspace->scratch = scratch;
    workspace->scratch_capacity = bytes;
}

LSTM_API lstm_status lstm_workspace_reserve(lstm_workspace *workspace, lstm_mode mode,
                                            size_t seq_len, size_t batch)
{
    if (workspace == NULL)
        return lstm__fail(LSTM_E_NULL, "workspace is NULL");
    return lstm__workspace_prepare(workspace, &workspace->shape, mode, seq_len, batch, NULL);
}

LSTM_API lstm_status lstm_workspace_set_precision(lstm_workspace *workspace,
                                                  lstm_precision precision)
{
    if (workspace == NULL)
        return lstm__fail(LSTM_E_NULL, "workspace is NULL");
    if (precision != LSTM_PRECISION_FP32 && precision != LSTM_PRECISION_BF16 &&
        precision != LSTM_PRECISION_INT8)
        return lstm__fail(LSTM_E_ARG,
                          "precision %d is none of LSTM_PRECISION_FP32, _BF16 and _INT8",
                          (int)precision);
    if (precision != workspace->precision)
        workspace->kept_generation = 0; /* the kept packing is of the old precision */
    workspace->precision = precision;
    return LSTM_OK;
}

LSTM_API lstm_status lstm_workspace_set_training_precision(lstm_workspace *workspace,
                                                           lstm_precision precision)
{
    if (workspace == NULL)
        return lstm__fail(LSTM_E_NULL, "workspace is NULL");
    if (precision == LSTM_PRECISION_INT8)
        return lstm__fail(LSTM_E_ARG, "training runs in LSTM_PRECISION_FP32 or _BF16; "
                                      "LSTM_PRECISION_INT8 is for inference only");
    if (precision != LSTM_PRECISION_FP32 && precision != LSTM_PRECISION_BF16)
        return lstm__fail(LSTM_E_ARG, "precision %d is neither LSTM_PRECISION_FP32 nor _BF16",
                          (int)precision);
    if (precision != workspace->training_precision) {
        /* a training forward held was run in the other precision */
        workspace->trained_identity = 0;
        workspace->trained_network = 0;
    }
    workspace->training_precision = precision;
    return LSTM_OK;
}

LSTM_API lstm_status lstm_workspace_set_seed(lstm_workspace *workspace, uint64_t seed)
{
    if (workspace == NULL)
        return lstm__fail(LSTM_E_NULL, "workspace is NULL");
    workspace->dropout_seed = seed;
    workspace->dropout_calls = 0;
    return LSTM_OK;
}
