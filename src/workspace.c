/* Workspaces: sizing, growth, and the carving of one arena into regions. */
#include <string.h>

#include "alloc.h"
#include "blas.h"
#include "check.h"
#include "error.h"
#include "model_internal.h"
#include "workspace.h"

enum { REGION_STACKED, REGION_GATES, REGION_CELLS, REGION_H_LAST, REGION_DH, REGION_DC,
       REGION_DSTACKED, REGION_COUNT };

/* Byte offsets of each region in the arena, and the arena's total size. */
typedef struct layout {
    size_t offset[REGION_COUNT];
    size_t total;
} layout;

/* Appends a region of rows x cols floats, 64-byte aligned. */
static int layout_add(layout *plan, int region, size_t rows, size_t cols)
{
    size_t count, bytes;
    if (!size_mul(rows, cols, &count) || !size_mul(count, sizeof(float), &bytes))
        return 0;
    size_t aligned = align_up(bytes);
    if (bytes != 0 && aligned == 0)
        return 0;
    plan->offset[region] = plan->total;
    return size_add(plan->total, aligned, &plan->total);
}

static lstm_status layout_compute(size_t H, size_t I, lstm_mode mode, size_t T, size_t B,
                                  layout *plan)
{
    if (T == 0 || B == 0)
        return fail(LSTM_E_SIZE, "%s is 0; it must be at least 1", T == 0 ? "seq_len" : "batch");
    if (mode != LSTM_MODE_INFER && mode != LSTM_MODE_TRAIN)
        return fail(LSTM_E_ARG, "mode %d is neither LSTM_MODE_INFER nor LSTM_MODE_TRAIN",
                    (int)mode);
    /* T * B is the inner dimension of the weight-gradient GEMM. */
    size_t rows;
    if (!size_mul(T, B, &rows) || rows > BLAS_MAX_DIM)
        return fail(LSTM_E_OVERFLOW, "seq_len %zu x batch %zu exceeds the BLAS index range",
                    T, B);
    const size_t K = H + I, G = 4 * H;
    int ok;
    memset(plan, 0, sizeof *plan);
    if (mode == LSTM_MODE_INFER) {
        ok = layout_add(plan, REGION_STACKED, rows, K) && layout_add(plan, REGION_GATES, B, G) &&
             layout_add(plan, REGION_CELLS, B, H) && layout_add(plan, REGION_H_LAST, B, H);
    } else {
        ok = layout_add(plan, REGION_STACKED, rows, K) &&
             layout_add(plan, REGION_GATES, rows, G) &&
             layout_add(plan, REGION_CELLS, rows + B, H) &&
             layout_add(plan, REGION_H_LAST, B, H) && layout_add(plan, REGION_DH, B, H) &&
             layout_add(plan, REGION_DC, B, H) && layout_add(plan, REGION_DSTACKED, B, K);
    }
    if (!ok)
        return fail(LSTM_E_OVERFLOW, "a workspace for seq_len %zu and batch %zu overflows size_t",
                    T, B);
    return LSTM_OK;
}

LSTM_API lstm_status lstm_workspace_create(const lstm_model *model, lstm_workspace **out)
{
    if (model == NULL || out == NULL)
        return fail(LSTM_E_NULL, "%s is NULL", model == NULL ? "model" : "out");
    lstm_workspace *workspace = mem_alloc(sizeof *workspace);
    if (workspace == NULL)
        return fail(LSTM_E_NOMEM, "allocating a workspace");
    memset(workspace, 0, sizeof *workspace);
    workspace->input_size = model->input_size;
    workspace->hidden_size = model->hidden_size;
    *out = workspace;
    return LSTM_OK;
}

LSTM_API void lstm_workspace_destroy(lstm_workspace *workspace)
{
    if (workspace == NULL)
        return;
    mem_free(workspace->arena);
    mem_free(workspace);
}

LSTM_API lstm_status lstm_workspace_size(const lstm_model *model, lstm_mode mode,
                                         size_t seq_len, size_t batch, size_t *bytes)
{
    if (model == NULL || bytes == NULL)
        return fail(LSTM_E_NULL, "%s is NULL", model == NULL ? "model" : "bytes");
    layout plan;
    lstm_status status =
        layout_compute(model->hidden_size, model->input_size, mode, seq_len, batch, &plan);
    if (status == LSTM_OK)
        *bytes = plan.total;
    return status;
}

lstm_status workspace_prepare(lstm_workspace *workspace, lstm_mode mode, size_t seq_len,
                              size_t batch)
{
    layout plan;
    lstm_status status = layout_compute(workspace->hidden_size, workspace->input_size, mode,
                                        seq_len, batch, &plan);
    if (status != LSTM_OK)
        return status;
    if (plan.total > workspace->capacity) {
        void *arena = mem_alloc(plan.total);
        if (arena == NULL)
            return fail(LSTM_E_NOMEM, "growing a workspace to %zu bytes", plan.total);
        mem_free(workspace->arena);
        workspace->arena = arena;
        workspace->capacity = plan.total;
    }
    unsigned char *base = workspace->arena;
    float **regions[REGION_COUNT] = {
        &workspace->stacked, &workspace->gates, &workspace->cells, &workspace->h_last,
        &workspace->dh,      &workspace->dc,    &workspace->dstacked,
    };
    for (int r = 0; r < REGION_COUNT; r++)
        *regions[r] = (float *)(void *)(base + plan.offset[r]);
    workspace->trained_model = NULL;
    return LSTM_OK;
}

LSTM_API lstm_status lstm_workspace_reserve(lstm_workspace *workspace, lstm_mode mode,
                                            size_t seq_len, size_t batch)
{
    if (workspace == NULL)
        return fail(LSTM_E_NULL, "workspace is NULL");
    return workspace_prepare(workspace, mode, seq_len, batch);
}
